// Small text helpers shared by every module: one number in a printf format, a number with a given
// count of significant digits, a byte count in GiB, a median, a word quoted for the shell.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aet {

// One number printed with a printf format ("%.3f"), for log lines and reports.
std::string fmt(const char* format, double v);
// `v` with `digits` significant digits ("%.*g"; 6 is what a default std::ostream prints).
std::string fmt_g(double v, int digits = 6);
// A byte count as "1.5 GiB" (3 significant digits).
std::string gib(std::uint64_t bytes);

// The median (the upper one for an even count) of `v`, which it reorders; 0 for an empty vector.
double median_of(std::vector<double> v);

// `s` as one word of a POSIX shell command: as is when made only of characters no shell treats
// specially, else single-quoted (a quote inside as '\\''). The empty string gives ''.
std::string shell_quote(const std::string& s);

}  // namespace aet
