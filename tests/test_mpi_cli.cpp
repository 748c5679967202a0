// `aet reconstruct` under `mpirun -np 2` (docs/hpc.md): the distributed solve gives the volume and
// the R factors of one process, in slab mode (a single-axis series) and in view mode (a tilted
// axis), for RESIRE with and without momentum, SIRT and FBP; bad input exits 2 with one message
// and no hang. Skips only in a build without MPI or where mpirun is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

// The reason to skip, or "" when mpirun can run the binary.
std::string mpi_missing() {
  if (!AET_BUILT_WITH_MPI) return "this build has no MPI (AET_WITH_MPI off)";
  if (test::run_command("command -v mpirun").exit_code != 0) return "mpirun is not installed";
  return "";
}

// aet under mpirun with two ranks on however many cores (root allowed, as in CI containers,
// where ptrace-based single-copy transfers between ranks are often forbidden: plain copies); the
// timeout turns a hang into a failure.
test::RunResult run_mpi(const std::string& args) {
  return test::run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
      "OMPI_MCA_btl_vader_single_copy_mechanism=none timeout -k 5 90 mpirun -np 2 "
      "--oversubscribe --allow-run-as-root '" +
      std::string(AET_TEST_BINARY) + "' " + args + " 2>&1");
}

class MpiCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!mpi_missing().empty()) return;
    dir_ = new test::TempDir;
    // 20 views of 32 px: a single-axis series (slab mode) and one about a tilted axis (view mode).
    auto r = test::run_aet("simulate --size 32 --tilt-range -60:60:6.3 --dose 0 --quiet --out " +
                           dir_->file("axis"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string euler;
    for (int k = 0; k < 20; ++k) euler += "4 " + std::to_string(-60 + 6.3 * k) + " 0\n";
    test::write_text(dir_->file("euler.txt"), euler);
    r = test::run_aet("simulate --size 32 --angles " + dir_->file("euler.txt") +
                      " --dose 0 --quiet --out " + dir_->file("tilted"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    const std::string why = mpi_missing();
    if (!why.empty()) GTEST_SKIP() << why;
  }

  // One process and two ranks on `series` with `options`: equal volumes and R1, the mode logged
  // and recorded.
  static void expect_same(const std::string& series, const std::string& angles,
                          const std::string& options, const std::string& mode) {
    SCOPED_TRACE(series + " " + options);
    const std::string in = "reconstruct --tilts " + dir_->file(series + "/tilts.mrc") +
                           " --angles " + dir_->file(series + "/" + angles) + " " + options;
    const std::string one = dir_->file("one.mrc"), two = dir_->file("two.mrc");
    auto r = test::run_aet(in + " --out " + one);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = run_mpi(in + " --out " + two);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string logged = mode == "gridding" ? "GENFIRE's gridding over 2 MPI ranks"
                                                  : "reconstruct: 2 MPI ranks, " + mode + " mode";
    EXPECT_NE(r.output.find(logged), std::string::npos) << r.output;
    const Array3 a = read_mrc(one), b = read_mrc(two);
    ASSERT_EQ(a.size(), b.size());
    float peak = 0.0f, diff = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) {
      peak = std::max(peak, std::abs(a.data()[i]));
      diff = std::max(diff, std::abs(a.data()[i] - b.data()[i]));
    }
    ASSERT_GT(peak, 0.0f);
    EXPECT_LE(diff, 1e-5f * peak);
    const auto ja = nlohmann::json::parse(test::read_text(dir_->file("one.json")));
    const auto jb = nlohmann::json::parse(test::read_text(dir_->file("two.json")));
    const auto r1a = ja.at("r1").get<std::vector<double>>();
    const auto r1b = jb.at("r1").get<std::vector<double>>();
    ASSERT_EQ(r1a.size(), r1b.size());
    for (std::size_t k = 0; k < r1a.size(); ++k) EXPECT_NEAR(r1a[k], r1b[k], 1e-6) << k;
    EXPECT_EQ(ja.at("mpi_ranks").get<int>(), 1);
    EXPECT_EQ(jb.at("mpi_ranks").get<int>(), 2);
    EXPECT_EQ(jb.at("mpi_mode").get<std::string>(), mode);
  }

  static test::TempDir* dir_;
};

test::TempDir* MpiCli::dir_ = nullptr;

TEST_F(MpiCli, SlabModeEqualsOneProcess) {
  expect_same("axis", "tilts.tlt", "--iterations 8", "slab");
  expect_same("axis", "tilts.tlt", "--iterations 8 --accelerate", "slab");
  expect_same("axis", "tilts.tlt", "--algorithm sirt --iterations 8", "slab");
  expect_same("axis", "tilts.tlt", "--algorithm fbp", "slab");
}

TEST_F(MpiCli, ViewModeEqualsOneProcess) {
  expect_same("tilted", "angles.txt", "--iterations 8", "view");
  expect_same("tilted", "angles.txt", "--iterations 8 --accelerate", "view");
  expect_same("tilted", "angles.txt", "--algorithm sirt --iterations 8", "view");
  expect_same("tilted", "angles.txt", "--algorithm fbp", "view");
}

// GENFIRE: the ranks grid interleaved views and add their sums (in another order than one
// process: equal within float rounding), rank 0 iterates; R_free as well.
TEST_F(MpiCli, GenfireGriddingEqualsOneProcess) {
  expect_same("axis", "tilts.tlt", "--algorithm genfire --iterations 10", "gridding");
  expect_same("tilted", "angles.txt", "--algorithm genfire --iterations 10", "gridding");
  const auto ja = nlohmann::json::parse(test::read_text(dir_->file("one.json")));
  const auto jb = nlohmann::json::parse(test::read_text(dir_->file("two.json")));
  ASSERT_TRUE(ja.contains("r_free")) << ja.dump();
  const auto fa = ja.at("r_free").get<std::vector<double>>();
  const auto fb = jb.at("r_free").get<std::vector<double>>();
  ASSERT_EQ(fa.size(), fb.size());
  for (std::size_t k = 0; k < fa.size(); ++k) EXPECT_NEAR(fa[k], fb[k], 1e-6) << k;
}

TEST_F(MpiCli, BadInputExitsTwoWithOneMessage) {
  const std::string out = dir_->file("bad.mrc");
  const auto r = run_mpi("reconstruct --tilts " + dir_->file("missing.mrc") + " --angles " +
                         dir_->file("axis/tilts.tlt") + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const std::string message = "aet reconstruct: error:";
  const std::size_t first = r.output.find(message);
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(message, first + 1), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.mrc"), std::string::npos) << r.output;
  EXPECT_FALSE(test::file_exists(out));
}

}  // namespace
}  // namespace aet
