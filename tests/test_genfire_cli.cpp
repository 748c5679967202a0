// GENFIRE through `aet reconstruct`: the volume, R_free in the log and the metadata, and bad
// GENFIRE options that exit 2 and write nothing.
#include <gtest/gtest.h>

#include <string>

#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

TEST(GenfireCli, ReconstructsAndRecordsRfree) {
  test::TempDir tmp;
  const std::string sim = tmp.file("sim");
  auto r = test::run_aet(
      "simulate --phantom pt-cuboctahedron-309 --pixel 0.8 --size 36 "
      "--tilt-range -60:60:15 --dose 0 --quiet --out " +
      sim);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string out = tmp.file("rec/vol.mrc");
  r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                    "/tilts.tlt --algorithm genfire --iterations 4 --oversampling 1.5 "
                    "--interp-radius 0.4 --rfree-fraction 0.1 --no-resolution-extension "
                    "--device cpu --out " +
                    out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("R_free"), std::string::npos) << r.output;
  const Array3 v = read_mrc(out);
  EXPECT_EQ(v.nx(), 36);
  EXPECT_NEAR(v.voxel_size.x, 0.8, 1e-5);
  const std::string meta = test::read_text(tmp.file("rec/vol.json"));
  for (const char* key : {"\"r_free\": [", "\"r_free_final\"", "\"genfire\"",
                          "\"oversampling\": 1.5", "\"interpolation_radius\": 0.4",
                          "\"rfree_fraction\": 0.1", "\"resolution_extension\": false"})
    EXPECT_NE(meta.find(key), std::string::npos) << key << " in " << meta;

  // Bad GENFIRE options exit with 2 and write nothing.
  for (const char* bad : {"--oversampling 0.5", "--interp-radius 0", "--rfree-fraction 0.6"}) {
    const std::string out2 = tmp.file("bad.mrc");
    r = test::run_aet("reconstruct --tilts " + sim + "/tilts.mrc --angles " + sim +
                      "/tilts.tlt --algorithm genfire " + bad + " --out " + out2);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
    EXPECT_FALSE(test::file_exists(out2)) << bad;
  }
  r = test::run_aet("reconstruct --help");
  EXPECT_NE(r.output.find("genfire"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--rfree-fraction"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace aet
