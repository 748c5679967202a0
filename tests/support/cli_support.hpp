// Running the built `aet` binary. Only the cli test executables link this part (and build after
// the aet target), so the unit tests build and run without the binary.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace aet::test {

// Runs the built `aet` binary (AET_TEST_BINARY, which this library's users see too) with the given
// argument string.
RunResult run_aet(const std::string& args);

// The aet binary started directly (not through a shell, which would start it with SIGINT
// ignored), its stdout and stderr in `log`; -1 if it could not be started.
pid_t start_aet(const std::vector<std::string>& args, const std::string& log);
// Waits up to five minutes for `path` to exist while process `pid` runs; false if it never did.
bool wait_for(const std::string& path, pid_t pid);
// Sends `sig` and returns the exit code (-1 if it died of a signal instead of exiting).
int stop_with(pid_t pid, int sig);

}  // namespace aet::test
