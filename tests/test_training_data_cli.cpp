// `aet make-training-set`: a set that reads back with its spec, seeds and provenance, and bad
// options that exit 2 and write nothing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aet/io/hdf5_result.hpp"
#include "aet/networks/normalisation.hpp"
#include "aet/networks/training_data.hpp"
#include "aet/networks/training_set.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

using nn::TrainingDataSpec;
using test::TempDir;

TEST(TrainingSetCli, WritesAReadableSetAndRefusesBadOptions) {
  TempDir dir;
  const std::string out = dir.file("set.h5");
  const std::string fast = " --radius-min 4 --radius-max 5 --iterations 5 --threads 2";
  auto r = test::run_aet("make-training-set --count 2 --seed 3 --out " + out + fast);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"set.h5"});
  TrainingDataSpec spec;
  const auto samples = nn::read_training_set(out, &spec);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].seed, nn::training_sample_seed(3, 0));
  EXPECT_EQ(samples[1].seed, nn::training_sample_seed(3, 1));
  EXPECT_EQ(spec.iterations, 5);
  EXPECT_EQ(spec.radius_max, 5.0);
  for (const auto& s : samples) {
    EXPECT_GT(s.truth.size(), 0u);
    EXPECT_NEAR(nn::normalisation_scale(s.input), 1.0, 1e-6);
  }
  const auto summary = read_result_summary(out);
  bool has_command_line = false;
  for (const auto& kv : summary.attributes)
    if (kv.first == "command_line" && kv.second.find("make-training-set") != std::string::npos)
      has_command_line = true;
  EXPECT_TRUE(has_command_line);

  r = test::run_aet("make-training-set --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("Usage: aet make-training-set"), std::string::npos);

  TempDir empty;
  const std::string bad = empty.file("bad.h5");
  const std::vector<std::string> bad_args = {
      "--count 0 --out " + bad,
      "--count 2",
      "--out " + bad,
      "--count 1 --out " + bad + " --tilt-min 80 --tilt-max 60",
      "--count 1 --out " + bad + " --elements Pt,Xx",
      "--count 1 --out " + bad + " --shapes blob",
      "--count 1 --out " + bad + " --radius-min -1",
      "--count 1 --out " + bad + " --tilt-steps 2,abc",
      "--count 1 --out " + bad + " --step 2.5",
      "--count 1 --out " + bad + " --no-such-option",
      "--count 1 --out " + empty.file("no/dir/x.h5") + fast};
  for (const std::string& args : bad_args) {
    r = test::run_aet("make-training-set " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_TRUE(test::list_dir(empty.path()).empty()) << args;
  }
}

// --series: a sample from each listed series (paths relative to the list), after the simulated
// ones; a list line that is not three paths, a missing file or views of another pixel are refused
// naming the file, and no set is written.
TEST(TrainingSetCli, GivenSeriesJoinTheSet) {
  TempDir dir;
  auto r = test::run_aet("simulate --phantom pt-cuboctahedron-309 --tilt-range -70:70:10 --out " +
                         dir.file("sim") + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  test::write_text(dir.file("list.txt"),
                   "# a series of aet simulate\nsim/tilts.mrc sim/tilts.tlt sim/truth.xyz\n");
  const std::string fast = " --iterations 5 --threads 2 --radius-min 4 --radius-max 5";
  r = test::run_aet("make-training-set --count 1 --series " + dir.file("list.txt") + " --out " +
                    dir.file("set.h5") + fast);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto samples = nn::read_training_set(dir.file("set.h5"));
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[1].truth.size(), 309u);
  EXPECT_NEAR(samples[1].tilt_max, 70.0, 1e-6);
  EXPECT_NEAR(samples[1].tilt_step, 10.0, 1e-6);
  EXPECT_NEAR(nn::normalisation_scale(samples[1].input), 1.0, 1e-6);
  // Only series: --count may be left out.
  r = test::run_aet("make-training-set --series " + dir.file("list.txt") + " --out " +
                    dir.file("only.h5") + fast);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nn::read_training_set(dir.file("only.h5")).size(), 1u);

  test::write_text(dir.file("two.txt"), "sim/tilts.mrc sim/tilts.tlt\n");
  test::write_text(dir.file("gone.txt"), "sim/tilts.mrc sim/tilts.tlt sim/none.xyz\n");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--series " + dir.file("two.txt"), dir.file("two.txt") + ": line 1: expected TILTS"},
      {"--series " + dir.file("gone.txt"), "cannot open " + dir.file("sim/none.xyz")},
      {"--series " + dir.file("list.txt") + " --pixel 0.4",
       dir.file("sim/tilts.mrc") + ": training sample: the views' pixel is 0.35 A"}};
  for (const auto& [args, named] : bad) {
    r = test::run_aet("make-training-set " + args + " --out " + dir.file("bad.h5") + fast);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << r.output;
    EXPECT_FALSE(test::file_exists(dir.file("bad.h5"))) << args;
  }
}

}  // namespace
}  // namespace aet
