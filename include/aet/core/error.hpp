// Error types and the one helper that names the offending file.
// Library code throws; only main() turns exceptions into exit codes:
//   InputError -> 2 (bad input or usage), QualityError -> 3 (a result failed its check under
//   --strict), ExternalError and anything else -> 1 (a program aet ran failed; internal failure).
#pragma once

#include <stdexcept>
#include <string>

namespace aet {

// Bad input from the user: a file that cannot be read or is malformed, an invalid option.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A stage's result failed its check (e.g. the refinement removed most of the atoms) and the run
// was asked to treat that as an error (--strict) rather than keep the better result with a warning.
class QualityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A program aet depends on refused or failed (sbatch could not reach the Slurm controller, ...):
// not aet's fault and not bad input; the message carries the program's own words.
class ExternalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something went wrong inside aet (a bug, a failed CUDA call, out of memory...).
class InternalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws InputError "PATH: what". Every reader reports through this so messages look alike.
[[noreturn]] inline void fail_file(const std::string& path, const std::string& what) {
  throw InputError(path + ": " + what);
}

// Throws InputError with a plain message (bad option values and the like).
[[noreturn]] inline void fail_input(const std::string& what) {
  throw InputError(what);
}

}  // namespace aet
