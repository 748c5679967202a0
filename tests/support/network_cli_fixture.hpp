// The fixture of the network command tests (test_network_cli, test_network_cli_slow).
#pragma once

#include <gtest/gtest.h>

#include "support/cli_support.hpp"

namespace aet::test {

// A tiny model trained for two steps on two small samples (`aet make-training-set`, `aet train`),
// made once per test suite: enough to run every command path.
class NetworkCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = run_aet(
        "make-training-set --count 2 --radius-min 4 --radius-max 5 --seed 3 "
        "--iterations 4 --step 1 --quiet --out " +
        dir_->file("set.h5"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto t = run_aet("train --data " + dir_->file("set.h5") +
                           " --steps 2 --batch 1 --patch 16 --base-channels 4 --levels 2 "
                           "--validation-fraction 0.5 --validate-every 1 --quiet --out " +
                           dir_->file("run"));
    ASSERT_EQ(t.exit_code, 0) << t.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  inline static TempDir* dir_ = nullptr;
};

}  // namespace aet::test
