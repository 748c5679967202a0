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

}  // namespace
}  // namespace aet
