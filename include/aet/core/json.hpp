// Minimal JSON writing for the metadata and metrics files (objects of scalars and arrays), shared
// by the library (aet evaluate's result) and the command line.
#pragma once

#include <string>
#include <vector>

namespace aet {

// `s` as a quoted JSON string: quotes, backslashes and control characters escaped.
std::string json_escape(const std::string& s);
// A finite number with 10 significant digits; NaN and infinities (undefined scores) as null.
std::string json_number(double v);
std::string json_array(const std::vector<double>& v);

}  // namespace aet
