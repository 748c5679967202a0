// `aet refine`: the refined model and geometry it writes, --elements, and bad input refused
// (refine_fixtures.hpp: the particle and its series).
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"
#include "support/refine_fixtures.hpp"

namespace aet {
namespace {

using test::Case;
using test::displaced;
using test::make_case;
using test::position_error_pm;

// `aet refine`: the refined model and geometry are written; a bad model file, a NaN view or an
// angle count that differs from the view count exits 2 naming the file and writes nothing.
TEST(RefineCli, WritesTheRefinedModelAndRejectsBadInput) {
  const Case c = make_case("Pt", 51);
  test::TempDir dir;
  write_mrc(dir.file("t.mrc"), c.series.views, MrcKind::stack);
  write_geometry(dir.file("g.txt"), c.series.truth, "truth");
  AtomModel start = c.truth;
  start.positions = displaced(c.truth.positions, 0.1, 52);
  write_xyz(dir.file("start.xyz"), start);
  const auto ok =
      test::run_aet("refine --tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") +
                    " --atoms " + dir.file("start.xyz") + " --out " + dir.file("out") + " --quiet");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  for (const char* f : {"refined.xyz", "geometry.txt", "refine.log", "refine.json"})
    EXPECT_TRUE(test::file_exists(dir.file("out/") + f)) << f;
  const AtomModel refined = read_xyz(dir.file("out/refined.xyz"));
  ASSERT_EQ(refined.size(), c.truth.size());
  EXPECT_NE(refined.find_property("model_weight"), nullptr);
  // Trust per atom (docs/refinement.md): sigma per axis in Angstrom, intensity SNR, weak flag.
  for (const char* name : {"sigma_x", "sigma_y", "sigma_z", "weight_snr", "weak"})
    ASSERT_NE(refined.find_property(name), nullptr) << name;
  for (std::size_t i = 0; i < refined.size(); ++i) {
    EXPECT_GT((*refined.find_property("sigma_z"))[i], 0.001) << i;
    EXPECT_LT((*refined.find_property("sigma_z"))[i], 0.05) << i;
    EXPECT_EQ((*refined.find_property("weak"))[i], 0.0) << i;
  }
  EXPECT_EQ(refined.find_property("sigma_boot_x"), nullptr);  // no bootstrap asked for
  const std::string ok_js = test::read_text(dir.file("out/refine.json"));
  EXPECT_NE(ok_js.find("\"trust\": {"), std::string::npos) << ok_js;
  EXPECT_NE(ok_js.find("\"weak_atoms\": 0"), std::string::npos) << ok_js;
  EXPECT_LT(position_error_pm(refined.positions, c.truth.positions, Mat3::Identity()),
            0.3 * position_error_pm(start.positions, c.truth.positions, Mat3::Identity()));
  EXPECT_EQ(read_angles(dir.file("out/geometry.txt"), c.series.views.nz()).format,
            AngleFormat::geometry);
  // --elements classifies the refined atoms again: a clean Pt particle keeps every atom.
  const auto cls =
      test::run_aet("refine --tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") +
                    " --atoms " + dir.file("start.xyz") +
                    " --elements Pt --bootstrap 2 --seed 7 --out " + dir.file("out2") + " --quiet");
  ASSERT_EQ(cls.exit_code, 0) << cls.output;
  const AtomModel classified = read_xyz(dir.file("out2/refined.xyz"));
  EXPECT_EQ(classified.size(), c.truth.size());
  EXPECT_NE(classified.find_property("sigma_boot_z"), nullptr);
  EXPECT_NE(classified.find_property("sigma_curv_z"), nullptr);
  const std::string js = test::read_text(dir.file("out2/refine.json"));
  EXPECT_NE(js.find("\"atoms_removed\": 0"), std::string::npos) << js;
  EXPECT_NE(js.find("\"position_prior_angstrom\": 0.05"), std::string::npos) << js;
  EXPECT_NE(js.find("\"bootstrap_replicates\": 2"), std::string::npos) << js;
  EXPECT_NE(js.find("\"probe_tail\": null"), std::string::npos) << js;
  // --probe-tail: the simulator's tail (0.111 of the core at 4 A) in refine.json and the log.
  const auto tail = test::run_aet("refine --tilts " + dir.file("t.mrc") + " --angles " +
                                  dir.file("g.txt") + " --atoms " + dir.file("start.xyz") +
                                  " --probe-tail --out " + dir.file("out3") + " --quiet");
  ASSERT_EQ(tail.exit_code, 0) << tail.output;
  const std::string tail_js = test::read_text(dir.file("out3/refine.json"));
  const std::string key = "\"probe_tail\": {\"amplitude\": ";
  const auto tail_at = tail_js.find(key);
  ASSERT_NE(tail_at, std::string::npos) << tail_js;
  EXPECT_NEAR(std::stod(tail_js.substr(tail_at + key.size())), 0.111, 0.02) << tail_js;
  EXPECT_NE(test::read_text(dir.file("out3/refine.log")).find("probe tail 0.1"), std::string::npos);

  auto refuse = [&](const std::string& args, const std::string& named) {
    const auto r = test::run_aet("refine " + args + " --out " + dir.file("bad") + " --quiet");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << r.output;
    EXPECT_FALSE(test::file_exists(dir.file("bad")));
  };
  test::write_text(dir.file("trunc.xyz"), "12\ncomment\nPt 0 0 0\n");
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("trunc.xyz"),
         dir.file("trunc.xyz"));
  test::write_text(dir.file("short.tlt"), "0\n10\n");
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("short.tlt") + " --atoms " +
             dir.file("start.xyz"),
         dir.file("short.tlt"));
  // A NaN in the data (the writer refuses one: a marker value is overwritten in the file).
  Array3 nan_views = c.series.views;
  const float marker = 12345.678f, nan = std::numeric_limits<float>::quiet_NaN();
  nan_views.slice(3)[100] = marker;
  write_mrc(dir.file("nan.mrc"), nan_views, MrcKind::stack);
  std::string bytes = test::read_text(dir.file("nan.mrc"));
  const auto at = bytes.rfind(std::string(reinterpret_cast<const char*>(&marker), 4));
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 4, std::string(reinterpret_cast<const char*>(&nan), 4));
  test::write_text(dir.file("nan.mrc"), bytes);
  refuse("--tilts " + dir.file("nan.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("start.xyz"),
         dir.file("nan.mrc"));
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("start.xyz") + " --elements Pt,Xq",
         "Xq");
  // A search of the views' rotations with the geometry held fixed is a contradiction.
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("start.xyz") + " --angle-search 5",
         "--geometry");
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("start.xyz") + " --position-prior=-0.05",
         "--position-prior");
  // One replicate has no spread.
  refuse("--tilts " + dir.file("t.mrc") + " --angles " + dir.file("g.txt") + " --atoms " +
             dir.file("start.xyz") + " --bootstrap 1",
         "--bootstrap");
}

}  // namespace
}  // namespace aet
