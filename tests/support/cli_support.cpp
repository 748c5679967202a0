#include "support/cli_support.hpp"

namespace aet::test {

RunResult run_aet(const std::string& args) {
  return run_command(std::string("'") + AET_TEST_BINARY + "' " + args);
}

}  // namespace aet::test
