// The network commands end to end: aet make-training-set -> aet train -> aet augment, and the bad
// input each of them must refuse without leaving output. The pipeline's network stage (--model,
// --no-network, the with/without comparison) is in test_network_cli_slow.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "aet/core/array.hpp"
#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"
#include "support/network_cli_fixture.hpp"

namespace aet::test {
namespace {

#if AET_WITH_TORCH

TEST_F(NetworkCli, TrainWritesModelMetricsAndCheckpoint) {
  for (const char* f : {"model.h5", "metrics.json", "train.log", "checkpoint.h5"})
    EXPECT_TRUE(file_exists(dir_->file(std::string("run/") + f))) << f;
  const std::string js = read_text(dir_->file("run/metrics.json"));
  EXPECT_NE(js.find("\"steps\": 2"), std::string::npos) << js;
  EXPECT_NE(js.find("\"validation\": ["), std::string::npos);
  // aet info shows the architecture and the provenance, including the training voxel size that
  // the pipeline and aet augment check.
  const auto info = run_aet("info " + dir_->file("run/model.h5"));
  EXPECT_NE(info.output.find("@format                        aet-unet"), std::string::npos)
      << info.output;
  EXPECT_NE(info.output.find("@metadata/training.voxel_size_A"), std::string::npos) << info.output;
  // The width of the atoms it outputs (make-training-set's default target).
  EXPECT_NE(info.output.find("@metadata/training.target_sigma_A 0.35\n"), std::string::npos)
      << info.output;
  // The input recipe, copied from the training set, that the pipeline reproduces.
  EXPECT_NE(info.output.find("@metadata/training.input_iterations 4\n"), std::string::npos)
      << info.output;
  EXPECT_NE(info.output.find("@metadata/training.input_step  1\n"), std::string::npos)
      << info.output;
}

// Several --data files are trained on together; a missing one is named and nothing is written.
TEST_F(NetworkCli, TrainReadsSeveralDataFiles) {
  const std::string set = dir_->file("set.h5");
  auto r = run_aet("train --data " + set + " --data " + set +
                   " --steps 1 --batch 1 --patch 16 --base-channels 4 --levels 2 "
                   "--validation-fraction 0.5 --validate-every 1 --quiet --out " +
                   dir_->file("run2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string js = read_text(dir_->file("run2/metrics.json"));
  EXPECT_NE(js.find("\"training_samples\": 2"), std::string::npos) << js;  // 4 read, 2 held out
  r = run_aet("train --data " + set + " --data " + dir_->file("absent.h5") +
              " --steps 1 --quiet --out " + dir_->file("run3"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("absent.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(file_exists(dir_->file("run3")));
  // Targets of another width: the model could not learn one output width from both.
  r = run_aet(
      "make-training-set --count 1 --radius-min 4 --radius-max 5 --seed 4 --iterations 4 --step 1 "
      "--target-sigma 0.5 --quiet --out " +
      dir_->file("wide.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_aet("train --data " + set + " --data " + dir_->file("wide.h5") +
              " --steps 1 --quiet --out " + dir_->file("run4"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("wide.h5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("target atoms of sigma 0.5 A"), std::string::npos) << r.output;
  EXPECT_FALSE(file_exists(dir_->file("run4")));
}

// A recipe chosen after training (aet model-input) takes precedence over the training inputs'
// one, in what aet augment checks; --clear restores the training one; bad use leaves the file.
TEST_F(NetworkCli, ModelInputSetsAndClearsTheChosenRecipe) {
  const std::string model = dir_->file("recipe.h5");
  write_text(model, read_text(dir_->file("run/model.h5")));
  auto r = run_aet("model-input --model " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("training inputs: RESIRE, 4 iterations, step 1"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("chosen input:    not recorded"), std::string::npos) << r.output;
  r = run_aet("model-input --model " + model + " --iterations 7 --step 1.5 --note held-out");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("used:            RESIRE, 7 iterations, step 1.5"), std::string::npos)
      << r.output;
  const auto info = run_aet("info " + model);
  EXPECT_NE(info.output.find("@metadata/input.note"), std::string::npos) << info.output;

  // aet augment now expects 7 iterations at step 1.5: a volume labelled with 4 at step 1 is
  // warned about, one labelled with the chosen recipe is not.
  Array3 v(16, 16, 16, 0.5f);
  v.voxel_size = VoxelSize{0.35, 0.35, 0.35};
  write_mrc(dir_->file("r4s1.mrc"), v, MrcKind::volume,
            {"aet recipe: resire, 4 iterations, step 1"});
  write_mrc(dir_->file("r7.mrc"), v, MrcKind::volume,
            {"aet recipe: resire, 7 iterations, step 1.5"});
  r = run_aet("augment --volume " + dir_->file("r4s1.mrc") + " --flips 1 --model " + model +
              " --out " + dir_->file("x.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("aet reconstruct --iterations 7 --step 1.5"), std::string::npos)
      << r.output;
  r = run_aet("augment --volume " + dir_->file("r7.mrc") + " --flips 1 --model " + model +
              " --out " + dir_->file("x.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;

  // Half a recipe, a bad step, --clear with a recipe, a missing file: exit 2, file unchanged.
  const std::string before = read_text(model);
  for (const std::string& bad : {std::string(" --iterations 5"), std::string(" -n 5 --step 2.5"),
                                 std::string(" -n 5 --step 1 --clear"), std::string(" --note x")}) {
    r = run_aet("model-input --model " + model + bad);
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.output;
  }
  EXPECT_EQ(read_text(model), before);
  const std::string checkpoint = dir_->file("run/checkpoint.h5"), saved = read_text(checkpoint);
  r = run_aet("model-input --model " + checkpoint + " -n 5 --step 1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("checkpoint.h5: is a training checkpoint"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_text(checkpoint), saved);
  r = run_aet("model-input --model " + dir_->file("absent.h5") + " -n 5 --step 1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("absent.h5"), std::string::npos) << r.output;

  // Fine-tuning from these weights drops the recipe chosen for them.
  r = run_aet("train --data " + dir_->file("set.h5") + " --init " + model +
              " --steps 1 --batch 1 --patch 16 --validation-fraction 0.5 --quiet --out " +
              dir_->file("tuned"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_aet("model-input --model " + dir_->file("tuned/model.h5"));
  EXPECT_NE(r.output.find("chosen input:    not recorded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("used:            RESIRE, 4 iterations, step 1"), std::string::npos)
      << r.output;

  r = run_aet("model-input --model " + model + " --clear");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("used:            RESIRE, 4 iterations, step 1"), std::string::npos)
      << r.output;
}

// The number after the first `key` at or after `from` in `text` (NaN when absent).
double number_after(const std::string& text, const std::string& key, std::size_t from = 0) {
  const std::size_t at = text.find(key, from);
  return at == std::string::npos ? std::nan("") : std::atof(text.c_str() + at + key.size());
}

// aet score-network traces each sample with and without the network and scores both against its
// truth; the summary is the mean of the samples' changes. A model meant for another input recipe
// is warned about; bad input leaves no JSON.
TEST_F(NetworkCli, ScoreNetworkScoresEachSampleWithAndWithoutTheNetwork) {
  const std::string set = dir_->file("set.h5"), model = dir_->file("run/model.h5");
  const std::string json = dir_->file("score.json");
  auto r =
      run_aet("score-network --data " + set + " --model " + model + " --flips 2 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("not meant for"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("all: 2 samples, mean RMSD change"), std::string::npos) << r.output;
  const std::string js = read_text(json);
  double changes = 0;
  std::size_t at = 0;
  for (int i = 0; i < 2; ++i) {
    at = js.find("{\"index\": " + std::to_string(i), at);
    ASSERT_NE(at, std::string::npos) << js;
    const double change = number_after(js, "\"rmsd_change\": ", at);
    const std::size_t without = js.find("\"without\": {", at), with = js.find("\"with\": {", at);
    ASSERT_NE(without, std::string::npos);
    ASSERT_NE(with, std::string::npos);
    const double plain = number_after(js, "\"rmsd_pm\": ", without);
    const double net = number_after(js, "\"rmsd_pm\": ", with);
    ASSERT_TRUE(plain > 0 && net > 0) << js;
    EXPECT_NEAR(change, net / plain - 1, 1e-6);
    for (std::size_t part : {without, with}) {
      const double recall = number_after(js, "\"recall\": ", part);
      EXPECT_TRUE(recall > 0 && recall <= 1) << js;
    }
    changes += change;
    at = with;
  }
  EXPECT_EQ(js.find("{\"index\": 2"), std::string::npos);
  EXPECT_NEAR(number_after(js, "\"mean_rmsd_change\": "), changes / 2, 1e-6);
  EXPECT_NE(js.find("\"model_input_recipe\": {\"iterations\": 4, \"step\": 1}"), std::string::npos)
      << js;

  // A model meant for another recipe: scored, with a warning that names both.
  const std::string other = dir_->file("other_recipe.h5");
  write_text(other, read_text(model));
  ASSERT_EQ(run_aet("model-input --model " + other + " --iterations 7 --step 1.5").exit_code, 0);
  r = run_aet("score-network --data " + set + " --model " + other + " --count 1 --flips 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("inputs of 4 iterations at step 1, but the model is meant for 7 at step "
                          "1.5"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("all: 1 samples"), std::string::npos) << r.output;

  // Bad input: exit 2, the file named, no JSON.
  const std::string bad_json = dir_->file("bad.json");
  r = run_aet("score-network --data " + dir_->file("absent.h5") + " --model " + model + " --json " +
              bad_json);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("absent.h5"), std::string::npos) << r.output;
  r = run_aet("score-network --data " + set + " --model " + model + " --count -1 --json " +
              bad_json);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--count"), std::string::npos) << r.output;
  r = run_aet("score-network --data " + set + " --model " + model + " --flips 3 --json " +
              bad_json);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--flips"), std::string::npos) << r.output;
  // A set at another voxel size is outside the model's domain.
  r = run_aet(
      "make-training-set --count 1 --radius-min 4 --radius-max 5 --seed 5 --iterations 4 --step 1 "
      "--pixel 0.7 --quiet --out " +
      dir_->file("coarse_set.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_aet("score-network --data " + dir_->file("coarse_set.h5") + " --model " + model +
              " --json " + bad_json);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("coarse_set.h5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("trained at"), std::string::npos) << r.output;
  const std::string bytes = read_text(model);
  write_text(dir_->file("cut_model.h5"), bytes.substr(0, bytes.size() / 2));
  r = run_aet("score-network --data " + set + " --model " + dir_->file("cut_model.h5") +
              " --json " + bad_json);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("cut_model.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(file_exists(bad_json));
}

TEST_F(NetworkCli, AugmentKeepsTheGridAndRefusesBadInput) {
  // Any volume size: an odd, non-cubic one at the training voxel size.
  Array3 v(21, 18, 25);
  v.voxel_size = VoxelSize{0.35, 0.35, 0.35};
  for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = static_cast<float>((i * 7919) % 13);
  write_mrc(dir_->file("v.mrc"), v, MrcKind::volume, {"test"});
  const std::string model = " --model " + dir_->file("run/model.h5");
  auto r = run_aet("augment --volume " + dir_->file("v.mrc") + " --out " + dir_->file("a.mrc") +
                   model + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Array3 a = read_mrc(dir_->file("a.mrc"));
  EXPECT_EQ(a.nx(), 21);
  EXPECT_EQ(a.ny(), 18);
  EXPECT_EQ(a.nz(), 25);
  EXPECT_NEAR(a.voxel_size.x, 0.35, 1e-6);
  for (float x : a.vector()) ASSERT_TRUE(std::isfinite(x));
  // The mirror-image passes report their progress (what a stopped run names as where it was).
  r = run_aet("augment --volume " + dir_->file("v.mrc") + " --out " + dir_->file("a2.mrc") +
              model + " --flips 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("network: 50%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("network: 100%"), std::string::npos) << r.output;

  // Missing volume, truncated model, wrong voxel size: exit 2, the file named, nothing written.
  r = run_aet("augment --volume " + dir_->file("none.mrc") + " --out " + dir_->file("b.mrc") +
              model);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("none.mrc"), std::string::npos) << r.output;
  const std::string bytes = read_text(dir_->file("run/model.h5"));
  write_text(dir_->file("cut.h5"), bytes.substr(0, bytes.size() / 2));
  r = run_aet("augment --volume " + dir_->file("v.mrc") + " --out " + dir_->file("b.mrc") +
              " --model " + dir_->file("cut.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("cut.h5"), std::string::npos) << r.output;
  v.voxel_size = VoxelSize{0.7, 0.7, 0.7};
  write_mrc(dir_->file("coarse.mrc"), v, MrcKind::volume, {"test"});
  r = run_aet("augment --volume " + dir_->file("coarse.mrc") + " --out " + dir_->file("b.mrc") +
              model);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("trained at"), std::string::npos) << r.output;
  r = run_aet("augment --volume " + dir_->file("v.mrc") + " --out " + dir_->file("b.mrc") + model +
              " --flips 3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--flips"), std::string::npos) << r.output;
  EXPECT_FALSE(file_exists(dir_->file("b.mrc")));
}

// LibTorch's libraries export copies of libstdc++ functions (the 2.11 wheel's libtorch.so has a
// std::filesystem::remove_all that jumps to address 0), so a binary that links them must find the
// system libstdc++ first in its lookup order, which follows its DT_NEEDED list.
TEST(NetworkBinary, LooksUpTheSystemLibstdcxxBeforeLibTorch) {
  const auto r = run_command(std::string("readelf -d '") + AET_TEST_BINARY + "'");
  if (r.exit_code == 127) GTEST_SKIP() << "readelf is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::size_t stdcxx = std::string::npos, torch = std::string::npos, k = 0;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    if (stdcxx == std::string::npos && line.find("[libstdc++") != std::string::npos) stdcxx = k;
    if (torch == std::string::npos &&
        (line.find("[libtorch") != std::string::npos || line.find("[libc10") != std::string::npos))
      torch = k;
    ++k;
  }
  ASSERT_NE(torch, std::string::npos) << "aet does not link LibTorch:\n" << r.output;
  ASSERT_NE(stdcxx, std::string::npos) << r.output;
  EXPECT_LT(stdcxx, torch) << r.output;
}

#endif  // AET_WITH_TORCH

TEST(NetworkCliInput, BadInputLeavesNothing) {
  TempDir tmp;
  // A model file that is not there: refused before any computation, no output directory.
  auto r = run_aet("pipeline --phantom pt-cuboctahedron-309 --model " + tmp.file("nope.h5") +
                   " --out " + tmp.file("out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
#if AET_WITH_TORCH
  EXPECT_NE(r.output.find("nope.h5"), std::string::npos) << r.output;
#else
  EXPECT_NE(r.output.find("no LibTorch"), std::string::npos) << r.output;
#endif
  r = run_aet("pipeline --no-network --model " + tmp.file("nope.h5") + " --out " + tmp.file("out"));
  EXPECT_EQ(r.exit_code, 2);
  // A flip count the network cannot average: refused before the reconstruction, in every build.
  r = run_aet("pipeline --phantom pt-cuboctahedron-309 --flips 3 --out " + tmp.file("out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--flips must be 1, 2, 4 or 8 (got 3)"), std::string::npos) << r.output;
  r = run_aet("train --data " + tmp.file("missing.h5") + " --out " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 2);
#if AET_WITH_TORCH
  EXPECT_NE(r.output.find("missing.h5"), std::string::npos) << r.output;
#endif
  r = run_aet("train --data " + tmp.file("missing.h5") + " --steps 0 --out " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 2);
  r = run_aet("augment --volume " + tmp.file("v.mrc"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(list_dir(tmp.path()).empty());
}

}  // namespace
}  // namespace aet::test
