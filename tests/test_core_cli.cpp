// Device selection seen from a child process: `aet info --devices` with every CUDA device masked
// falls back to the CPU and names the CPU projector's walk.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "support/cli_support.hpp"

TEST(Core, DeviceAutoHonoursCudaVisibleDevices) {
  // With every device masked, auto must fall back to the CPU. The runtime reads the variable at
  // initialisation, so check in a child process.
  // It also names the CPU projector's walk, here the one the environment asks for.
  const std::string cmd = std::string("CUDA_VISIBLE_DEVICES= AET_CPU_PROJECTOR=scalar '") +
                          AET_TEST_BINARY + "' info --devices";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  std::string out;
  while (fgets(buf, sizeof buf, p)) out += buf;
  EXPECT_EQ(pclose(p), 0);
  EXPECT_NE(out.find("no CUDA device visible"), std::string::npos) << out;
  EXPECT_NE(out.find("projector walk scalar"), std::string::npos) << out;
}
