// `aet reconstruct` on a series that `aet simulate` writes: RESIRE, a warm start and FBP through
// the command line, and bad input that exits 2 and writes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

TEST(ReconstructCli, ReconstructsASimulatedSeries) {
  test::TempDir tmp;
  const std::string sim = tmp.file("sim");
  auto r = test::run_aet(
      "simulate --phantom pt-cuboctahedron-309 --pixel 0.8 --size 36 "
      "--tilt-range -60:60:15 --dose 0 --quiet --out " +
      sim);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string out = tmp.file("rec/vol.mrc");
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --algorithm resire --iterations 3 --size 36,30,20 --device cpu "
                    "--out " +
                    out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(test::file_exists(out));
  MrcHeader h;
  const Array3 v = read_mrc(out, &h);
  EXPECT_EQ(v.nx(), 36);
  EXPECT_EQ(v.ny(), 30);
  EXPECT_EQ(v.nz(), 20);
  EXPECT_NEAR(v.voxel_size.x, 0.8, 1e-5);
  EXPECT_NEAR(v.voxel_size.z, 0.8, 1e-5);
  const std::string meta = test::read_text(tmp.file("rec/vol.json"));
  EXPECT_NE(meta.find("\"r1\""), std::string::npos) << meta;
  EXPECT_NE(meta.find("resire"), std::string::npos) << meta;
  // Plain RESIRE records its recipe for aet augment; a warm start does not claim one.
  EXPECT_NE(std::find(h.labels.begin(), h.labels.end(), "aet recipe: resire, 3 iterations, step 1"),
            h.labels.end());
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --iterations 2 --size 36,30,20 --initial " + out +
                    " --quiet --out " + tmp.file("warm.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  MrcHeader hw;
  read_mrc(tmp.file("warm.mrc"), &hw);
  for (const std::string& l : hw.labels) EXPECT_EQ(l.find("aet recipe"), std::string::npos) << l;

  // FBP through the CLI too.
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --algorithm fbp --out " + tmp.file("fbp.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::file_exists(tmp.file("fbp.mrc")));
}

TEST(ReconstructCli, BadInputsExitTwoAndWriteNothing) {
  test::TempDir tmp;
  const std::string sim = tmp.file("sim");
  auto r = test::run_aet(
      "simulate --phantom pt-cuboctahedron-309 --pixel 0.8 --size 36 "
      "--tilt-range -60:60:15 --dose 0 --quiet --out " +
      sim);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 9 views, 8 angles.
  test::write_text(tmp.file("short.tlt"), "-60\n-45\n-30\n-15\n0\n15\n30\n45\n");
  const std::string out = tmp.file("vol.mrc");
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + tmp.file("short.tlt") +
                    " --iterations 2 --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("short.tlt"), std::string::npos) << r.output;
  EXPECT_FALSE(test::file_exists(out));
  EXPECT_FALSE(test::file_exists(tmp.file("vol.json")));

  r = test::run_aet("reconstruct --tilts " + tmp.file("missing.mrc") + " --angles " + sim +
                    "/tilts.tlt --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("missing.mrc"), std::string::npos) << r.output;
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --algorithm art --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --size 10,10 --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // A starting volume of the wrong size is named; --accelerate does not apply to FBP.
  Array3 small(20, 20, 20);
  small.voxel_size = VoxelSize{0.8, 0.8, 0.8};
  write_mrc(tmp.file("start.mrc"), small, MrcKind::volume, {});
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --iterations 2 --initial " + tmp.file("start.mrc") + " --out " +
                    out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("start.mrc"), std::string::npos) << r.output;
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --algorithm fbp --accelerate --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(test::file_exists(out));
}

}  // namespace
}  // namespace aet
