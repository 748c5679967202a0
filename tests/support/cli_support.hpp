// Running the built `aet` binary. Only the cli test executables link this part (and build after
// the aet target), so the unit tests build and run without the binary.
#pragma once

#include <string>

#include "support/test_support.hpp"

namespace aet::test {

// Runs the built `aet` binary (AET_TEST_BINARY, which this library's users see too) with the given
// argument string.
RunResult run_aet(const std::string& args);

}  // namespace aet::test
