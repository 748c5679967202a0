// The pipeline's network stage end to end (slow: three pipeline runs): --model and --no-network,
// the with/without comparison, the network's input taken from the solve's snapshot, and `aet
// augment` on the same recipe giving the pipeline's augmented volume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "aet/core/array.hpp"
#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"
#include "support/network_cli_fixture.hpp"

namespace aet::test {
namespace {

#if AET_WITH_TORCH

// max |a - b| / max |b| over two volumes of the same grid.
double max_relative_difference(const Array3& a, const Array3& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(double(a.data()[i]) - b.data()[i]));
    norm = std::max(norm, std::abs(double(b.data()[i])));
  }
  return diff / norm;
}

TEST_F(NetworkCli, PipelineReportsWithAndWithoutTheNetwork) {
  const std::string out = dir_->file("pipe");
  const auto r =
      run_aet("pipeline --phantom pt-cuboctahedron-309 --iterations 10 --quiet --model " +
              dir_->file("run/model.h5") + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(file_exists(out + "/augmented.mrc"));
  const std::string js = read_text(out + "/metrics.json");
  EXPECT_NE(js.find("\"used\": true"), std::string::npos) << js;
  EXPECT_NE(js.find("\"flips\": 8"), std::string::npos) << js;
  EXPECT_NE(js.find("\"evaluation_without_network\""), std::string::npos) << js;
  // Both chains are refined too, so the network's effect on the final model is reported.
  EXPECT_NE(js.find("\"evaluation_refined\""), std::string::npos) << js;
  EXPECT_NE(js.find("\"evaluation_refined_without_network\""), std::string::npos) << js;

  const std::string plain = dir_->file("plain");
  const auto n = run_aet(
      "pipeline --phantom pt-cuboctahedron-309 --iterations 10 --quiet "
      "--no-network --out " +
      plain);
  ASSERT_EQ(n.exit_code, 0) << n.output;
  EXPECT_FALSE(file_exists(plain + "/augmented.mrc"));
  EXPECT_NE(read_text(plain + "/metrics.json").find("\"used\": false"), std::string::npos);

  // The model was trained on RESIRE of 4 iterations at step 1: the pipeline feeds it the
  // 4-iteration snapshot of its own solve, and the solve going on from there ends on the volume of
  // the uninterrupted run.
  EXPECT_NE(js.find("\"input\": {\"iterations\": 4, \"step\": 1, \"source\": \"snapshot\"}"),
            std::string::npos)
      << js;
  EXPECT_LE(max_relative_difference(read_mrc(out + "/reconstruction.mrc"),
                                    read_mrc(plain + "/reconstruction.mrc")),
            1e-5);

  // The network's input is the same volume aet reconstruct makes with the recipe: augmenting
  // that gives the pipeline's augmented volume.
  auto rc = run_aet("reconstruct --tilts " + out + "/tilts.mrc --angles " + out +
                    "/tilts.tlt --iterations 4 --step 1 --quiet --out " + dir_->file("r4.mrc"));
  ASSERT_EQ(rc.exit_code, 0) << rc.output;
  rc = run_aet("augment --volume " + dir_->file("r4.mrc") + " --model " +
               dir_->file("run/model.h5") + " --out " + dir_->file("a4.mrc"));
  ASSERT_EQ(rc.exit_code, 0) << rc.output;
  EXPECT_EQ(rc.output.find("warning"), std::string::npos) << rc.output;
  EXPECT_LE(
      max_relative_difference(read_mrc(dir_->file("a4.mrc")), read_mrc(out + "/augmented.mrc")),
      1e-4);

  // aet augment warns when the volume's label records another recipe, and says how to make one.
  rc = run_aet("augment --volume " + out + "/reconstruction.mrc --model " +
               dir_->file("run/model.h5") + " --out " + dir_->file("a10.mrc"));
  ASSERT_EQ(rc.exit_code, 0) << rc.output;
  EXPECT_NE(rc.output.find("10 iterations at step 1, but the model is meant for 4"),
            std::string::npos)
      << rc.output;
  EXPECT_NE(rc.output.find("aet reconstruct --iterations 4 --step 1"), std::string::npos)
      << rc.output;

  // Fewer iterations than the recipe: the network's input is a solve of its own.
  const auto s = run_aet("pipeline --phantom pt-cuboctahedron-309 --iterations 3 --quiet --model " +
                         dir_->file("run/model.h5") + " --out " + dir_->file("pipe3"));
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(read_text(dir_->file("pipe3/metrics.json")).find("\"source\": \"separate\""),
            std::string::npos);
}

#endif  // AET_WITH_TORCH

}  // namespace
}  // namespace aet::test
