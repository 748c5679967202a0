// `aet align`: the files it writes, and bad input (an angle count that differs from the view count,
// an angle search beyond its range, one view, an all-zero view) exits 2 and writes nothing.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "support/align_fixtures.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

using test::small_series;

// The series as a user gives it: t.mrc and t.tlt in `dir`.
void write_series(const test::TempDir& dir, const phantoms::TiltSeries& s) {
  write_mrc(dir.file("t.mrc"), s.views, MrcKind::stack);
  std::string tlt;
  for (const auto& e : s.nominal) tlt += std::to_string(e.theta) + "\n";
  test::write_text(dir.file("t.tlt"), tlt);
}

TEST(AlignCli, WritesOutputsAndRejectsBadInput) {
  const phantoms::TiltSeries s = small_series(3.0, 0, 51, 12);
  test::TempDir dir;
  write_series(dir, s);
  const auto ok = test::run_aet("align --tilts " + dir.file("t.mrc") + " --angles " +
                                dir.file("t.tlt") + " --out " + dir.file("out") +
                                " --rounds 1 --iterations 3 --no-angles --no-axis --quiet");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  for (const char* f : {"aligned.mrc", "aligned_angles.txt", "aligned.tlt", "geometry.txt",
                        "shifts.xf", "preprocessed.mrc", "align.log", "align.json"})
    EXPECT_TRUE(test::file_exists(dir.file("out/") + f)) << f;
  const AngleFile g = read_angles(dir.file("out/geometry.txt"), s.views.nz());
  EXPECT_EQ(g.format, AngleFormat::geometry);
  const Array3 aligned = read_mrc(dir.file("out/aligned.mrc"));
  EXPECT_EQ(aligned.nz(), s.views.nz());

  // An angle count that differs from the view count: exit 2 and nothing written.
  test::write_text(dir.file("short.tlt"), "0\n10\n");
  const auto bad = test::run_aet("align --tilts " + dir.file("t.mrc") + " --angles " +
                                 dir.file("short.tlt") + " --out " + dir.file("bad") + " --quiet");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_FALSE(test::file_exists(dir.file("bad")));
  // An angle search beyond its range.
  const auto wide =
      test::run_aet("align --tilts " + dir.file("t.mrc") + " --angles " + dir.file("t.tlt") +
                    " --refine-angles --angle-search 60 --out " + dir.file("bad") + " --quiet");
  EXPECT_EQ(wide.exit_code, 2) << wide.output;
  EXPECT_NE(wide.output.find("--angle-search"), std::string::npos) << wide.output;
  EXPECT_FALSE(test::file_exists(dir.file("bad")));
  // One view and an all-zero view.
  Array3 one(48, 48, 1, 1.0f);
  write_mrc(dir.file("one.mrc"), one, MrcKind::stack);
  test::write_text(dir.file("one.tlt"), "0\n");
  EXPECT_EQ(test::run_aet("align --tilts " + dir.file("one.mrc") + " --angles " +
                          dir.file("one.tlt") + " --out " + dir.file("bad") + " --quiet")
                .exit_code,
            2);
  Array3 z = s.views;
  for (std::int64_t i = 0; i < 48 * 48; ++i) z.slice(2)[i] = 0;
  write_mrc(dir.file("z.mrc"), z, MrcKind::stack);
  EXPECT_EQ(test::run_aet("align --tilts " + dir.file("z.mrc") + " --angles " + dir.file("t.tlt") +
                          " --out " + dir.file("bad") + " --quiet")
                .exit_code,
            2);
  EXPECT_FALSE(test::file_exists(dir.file("bad")));
}

// aet align --checkpoint: the progress after each round is kept in the folder, and a run that
// stopped before it finished (here: the finished run's key removed) goes on after its last
// round, ending with the geometry of a run without checkpoints; a finished alignment is taken.
TEST(AlignCli, CheckpointsKeepTheRoundsAndTheResult) {
  const phantoms::TiltSeries s = small_series(3.0, 1.0, 54, 12);
  test::TempDir dir;
  write_series(dir, s);
  const std::string base = "align --tilts " + dir.file("t.mrc") + " --angles " + dir.file("t.tlt") +
                           " --rounds 2 --iterations 5 --no-angles --threads 1";
  const std::string ck = dir.file("ck");
  auto r = test::run_aet(base + " --checkpoint " + ck + " --out " + dir.file("a") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::file_exists(ck + "/align.progress_key"));
  ASSERT_TRUE(test::file_exists(ck + "/align.key"));
  std::remove((ck + "/align.key").c_str());
  r = test::run_aet(base + " --checkpoint " + ck + " --out " + dir.file("b") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("going on after round 2 of the checkpoint"), std::string::npos)
      << r.output;
  r = test::run_aet(base + " --out " + dir.file("c") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_aet(base + " --checkpoint " + ck + " --out " + dir.file("d") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("taken from the checkpoint"), std::string::npos) << r.output;
  const std::string geometry = test::read_text(dir.file("c/geometry.txt"));
  for (const char* run : {"a", "b", "d"})
    EXPECT_EQ(test::read_text(dir.file(std::string(run) + "/geometry.txt")), geometry) << run;
  for (const char* f : {"aligned.mrc", "preprocessed.mrc"})
    EXPECT_EQ(read_mrc(dir.file(std::string("d/") + f)).vector(),
              read_mrc(dir.file(std::string("c/") + f)).vector())
        << f;
  // Another setting: nothing is taken.
  r = test::run_aet(base + " --no-axis --checkpoint " + ck + " --out " + dir.file("e") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("checkpoint in"), std::string::npos) << r.output;
  // The checkpoint folder inside --out would go with a stopped run's output folder.
  r = test::run_aet(base + " --checkpoint " + dir.file("f/ck") + " --out " + dir.file("f") +
                    " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace aet
