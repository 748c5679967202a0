// Angle files: IMOD .tlt/.rawtlt, 1-column text with comments, 3-column Euler text; the
// geometry they define; every rejected input; exact round trips of the writers.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/angles.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

using test::TempDir;

TEST(Angles, ImodTlt) {
  TempDir dir;
  const std::string path = dir.file("series.tlt");
  test::write_text(path, "  -60.00\n  -57.50\n   0.00\n  57.5\n  60.01\n");
  const AngleFile af = read_angles(path);
  EXPECT_EQ(af.format, AngleFormat::tilt);
  ASSERT_EQ(af.views.size(), 5u);
  EXPECT_DOUBLE_EQ(af.views[0].theta, -60.0);
  EXPECT_DOUBLE_EQ(af.views[4].theta, 60.01);
  for (const Euler& e : af.views) {
    EXPECT_EQ(e.phi, 0.0);
    EXPECT_EQ(e.psi, 0.0);
  }
}

TEST(Angles, ImodRawtltWithCrlf) {
  TempDir dir;
  const std::string path = dir.file("series.rawtlt");
  test::write_text(path, "-45\r\n-30\r\n-15\r\n0\r\n+15\r\n");
  const AngleFile af = read_angles(path, 5);
  EXPECT_EQ(af.format, AngleFormat::tilt);
  EXPECT_DOUBLE_EQ(af.views[4].theta, 15.0);
  EXPECT_DOUBLE_EQ(af.views[0].theta, -45.0);
}

TEST(Angles, ByteOrderMarkIsIgnored) {
  TempDir dir;
  const std::string path = dir.file("bom.tlt");
  test::write_text(path, "\xEF\xBB\xBF-20\n20\n");
  const AngleFile af = read_angles(path, 2);
  EXPECT_DOUBLE_EQ(af.views[0].theta, -20.0);
}

TEST(Angles, OneColumnWithCommentsAndBlankLines) {
  TempDir dir;
  const std::string path = dir.file("a.txt");
  test::write_text(path,
                   "# tilt angles in degrees\n\n  -10.5   # first view\n\n#  5\n"
                   "0\n\t10.5e0\n\n");
  const AngleFile af = read_angles(path);
  ASSERT_EQ(af.views.size(), 3u);
  EXPECT_DOUBLE_EQ(af.views[0].theta, -10.5);
  EXPECT_DOUBLE_EQ(af.views[1].theta, 0.0);
  EXPECT_DOUBLE_EQ(af.views[2].theta, 10.5);
}

TEST(Angles, ThreeColumnEulerWithComments) {
  TempDir dir;
  const std::string path = dir.file("euler.txt");
  test::write_text(path,
                   "# phi theta psi (degrees)\n-0.2 -63.000469 0.2\n"
                   "0 -60.4 0   # second\n\n1.5e1 10 -20\n");
  const AngleFile af = read_angles(path, 3);
  EXPECT_EQ(af.format, AngleFormat::euler);
  ASSERT_EQ(af.views.size(), 3u);
  EXPECT_DOUBLE_EQ(af.views[0].phi, -0.2);
  EXPECT_DOUBLE_EQ(af.views[0].theta, -63.000469);
  EXPECT_DOUBLE_EQ(af.views[0].psi, 0.2);
  EXPECT_DOUBLE_EQ(af.views[2].phi, 15.0);
  EXPECT_DOUBLE_EQ(af.views[2].psi, -20.0);
}

TEST(Angles, GeometryIsRotationFromEuler) {
  TempDir dir;
  const std::string path = dir.file("euler.txt");
  test::write_text(path, "10 20 30\n-5 45 0\n");
  const AngleFile af = read_angles(path);
  const TiltGeometry g = af.geometry();
  ASSERT_EQ(g.size(), 2u);
  for (std::size_t i = 0; i < g.size(); ++i) {
    EXPECT_TRUE(g[i].R.isApprox(rotation_from_euler(af.views[i]), 1e-14));
    EXPECT_TRUE(g[i].shift.isZero());
  }
  // A single-axis file gives pure tilts about y: u = x cos(theta) - z sin(theta).
  const std::string tlt = dir.file("t.tlt");
  test::write_text(tlt, "30\n");
  const TiltGeometry t = read_angles(tlt).geometry();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(t[0].is_single_axis());
  const Vec3 q = t[0].map(Vec3(1.0, 2.0, 3.0));
  const double c = std::cos(30.0 * M_PI / 180.0), s = std::sin(30.0 * M_PI / 180.0);
  EXPECT_NEAR(q.x(), 1.0 * c - 3.0 * s, 1e-12);
  EXPECT_NEAR(q.y(), 2.0, 1e-12);
}

#if AET_HAVE_SHARED_DATA
TEST(Angles, ReadsSharedRealDataAngles) {
  const std::string path = std::string(AET_SHARED_DATA) + "/ta_film_example/angles.txt";
  ASSERT_TRUE(test::file_exists(path)) << "shared data file missing: " << path;
  const AngleFile af = read_angles(path, 59);
  EXPECT_EQ(af.format, AngleFormat::euler);
  EXPECT_NEAR(af.views[0].theta, -74.298973, 1e-9);
}
#endif

TEST(Angles, TiltWriterRoundTrip) {
  TempDir dir;
  const std::vector<double> tilts = {-70.0, -1.0 / 3.0, 0.0, 12.3456789, 0.1, 69.999999, 359.5};
  const std::string path = dir.file("out.tlt");
  write_tilt_angles(path, tilts);
  const AngleFile af = read_angles(path, static_cast<long>(tilts.size()));
  EXPECT_EQ(af.format, AngleFormat::tilt);
  for (std::size_t i = 0; i < tilts.size(); ++i) EXPECT_NEAR(af.views[i].theta, tilts[i], 1e-6);
  EXPECT_EQ(af.views[3].theta, 12.3456789);  // exact, not only to 1e-6
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"out.tlt"});
  EXPECT_EQ(test::read_text(path).substr(0, 11), "-70.000000\n");
}

TEST(Angles, EulerWriterRoundTrip) {
  TempDir dir;
  const std::vector<Euler> views = {
      {0.0, -63.000469, 0.0}, {-0.2, 10.0 / 7.0, 0.2}, {179.9, 0.0, -179.9}};
  const std::string path = dir.file("out.txt");
  write_euler_angles(path, views, "made by a test\nsecond comment line");
  const std::string text = test::read_text(path);
  EXPECT_EQ(text.rfind("# made by a test\n# second comment line\n", 0), 0u) << text;
  const AngleFile af = read_angles(path, 3);
  EXPECT_EQ(af.format, AngleFormat::euler);
  for (std::size_t i = 0; i < views.size(); ++i) {
    EXPECT_NEAR(af.views[i].phi, views[i].phi, 1e-6);
    EXPECT_NEAR(af.views[i].theta, views[i].theta, 1e-6);
    EXPECT_NEAR(af.views[i].psi, views[i].psi, 1e-6);
  }
  EXPECT_EQ(af.views[1].theta, 10.0 / 7.0);
}

TEST(Angles, WritersRejectUnwritableInput) {
  TempDir dir;
  EXPECT_THROW(write_tilt_angles(dir.file("e.tlt"), {}), InternalError);
  EXPECT_THROW(write_tilt_angles(dir.file("n.tlt"), {1.0, std::nan("")}), InternalError);
  EXPECT_THROW(write_tilt_angles(dir.file("missing/dir/x.tlt"), {1.0}), InputError);
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

// ---- bad input ---------------------------------------------------------------------------

TEST(AnglesBadInput, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("none.tlt");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "not found");
}

TEST(AnglesBadInput, EmptyAndCommentOnlyFiles) {
  TempDir dir;
  const std::string empty = dir.file("empty.tlt"), comments = dir.file("c.tlt");
  test::write_text(empty, "");
  test::write_text(comments, "# nothing here\n\n   \n# still nothing\n");
  test::expect_input_error(
      empty, [&] { read_angles(empty); }, "no angles");
  test::expect_input_error(
      comments, [&] { read_angles(comments); }, "no angles");
}

TEST(AnglesBadInput, UnparsableTokenGivesLine) {
  TempDir dir;
  const std::string path = dir.file("bad.tlt");
  test::write_text(path, "# header\n10\n20\n3O\n40\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 4: cannot parse '3O'");
  test::write_text(path, "10 20 abc\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 1: cannot parse 'abc'");
  test::write_text(path, "1.5.2\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "cannot parse");
}

TEST(AnglesBadInput, NaNAndInf) {
  TempDir dir;
  const std::string path = dir.file("nan.tlt");
  test::write_text(path, "10\nnan\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 2");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "not finite");
  test::write_text(path, "10 -inf 0\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "not finite");
  test::write_text(path, "10\nInfinity\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "not finite");
}

TEST(AnglesBadInput, AngleOutOfRange) {
  TempDir dir;
  const std::string path = dir.file("range.tlt");
  test::write_text(path, "10\n360\n-360.5\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 3: angle -360.5 is out of range");
}

TEST(AnglesBadInput, InconsistentColumns) {
  TempDir dir;
  const std::string path = dir.file("cols.txt");
  test::write_text(path, "0 10 0\n0 20 0\n30\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 3: 1 columns but line 1 has 3");
  test::write_text(path, "10\n# x\n0 20 0\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "line 3: 3 columns but line 1 has 1");
}

TEST(AnglesBadInput, TwoOrFourPlusColumns) {
  TempDir dir;
  const std::string path = dir.file("cols.txt");
  test::write_text(path, "10 20\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "2 columns");
  test::write_text(path, "1 2 3 4\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "4 columns");
  test::write_text(path, "1 2 3 4 5 6\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "6 columns");
}

TEST(AnglesBadInput, CountMismatch) {
  TempDir dir;
  const std::string path = dir.file("n.tlt");
  test::write_text(path, "-10\n0\n10\n");
  test::expect_input_error(
      path, [&] { read_angles(path, 41); }, "3 angles but 41 views");
  EXPECT_NO_THROW(read_angles(path, 3));
  EXPECT_NO_THROW(read_angles(path, -1));
}

TEST(AnglesBadInput, DirectoryInsteadOfFile) {
  TempDir dir;
  test::expect_input_error(
      dir.path(), [&] { read_angles(dir.path()); }, "directory");
}

TEST(Angles, GeometryFileCarriesShiftsAndRoundTrips) {
  aet::test::TempDir tmp;
  TiltGeometry g;
  g.push_back(ViewGeometry::from_euler({1.5, -60.0, -0.5}, Vec2(2.25, -1.0)));
  g.push_back(ViewGeometry::from_euler({0.0, 0.0, 0.0}, Vec2(0.0, 0.0)));
  g.push_back(ViewGeometry::from_euler({-2.0, 55.5, 0.25}, Vec2(-3.5, 0.125)));
  const std::string path = tmp.file("geometry.txt");
  write_geometry(path, g, "test");
  const AngleFile af = read_angles(path, 3);
  EXPECT_EQ(af.format, AngleFormat::geometry);
  const TiltGeometry back = af.geometry();
  ASSERT_EQ(back.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(back[i].R.isApprox(g[i].R, 1e-9)) << i;
    EXPECT_NEAR(back[i].shift.x(), g[i].shift.x(), 1e-9);
    EXPECT_NEAR(back[i].shift.y(), g[i].shift.y(), 1e-9);
  }
  // Shifts must be finite and plausible.
  aet::test::write_text(tmp.file("bad.txt"), "0 10 0 1 nan\n");
  EXPECT_THROW(read_angles(tmp.file("bad.txt")), InputError);
  aet::test::write_text(tmp.file("huge.txt"), "0 10 0 1 5e9\n");
  EXPECT_THROW(read_angles(tmp.file("huge.txt")), InputError);
}

// A .tlt in radians (every tilt within +-pi/2) is refused, not read as a series of a few
// degrees; a short list and an all-zero one are not judged.
TEST(AnglesBadInput, RadiansAreRefused) {
  TempDir dir;
  const std::string path = dir.file("rad.tlt");
  test::write_text(path, "-1.0472\n-0.5236\n0\n0.5236\n1.0472\n1.2217\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "look like radians");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "all 6 tilt angles lie within +-1.2217");
  test::write_text(path, "-1.5708\n-0.7854\n0\n0.7854\n1.5708\n");
  test::expect_input_error(
      path, [&] { read_angles(path); }, "radians");
  test::write_text(path, "-1\n0\n1\n");  // too few views to judge
  EXPECT_EQ(read_angles(path).views.size(), 3u);
  test::write_text(path, "0\n0\n0\n0\n0\n0\n");
  EXPECT_EQ(read_angles(path).views.size(), 6u);
  test::write_text(path, "-2\n-1\n0\n1\n2\n");  // degrees: beyond the radian range
  EXPECT_EQ(read_angles(path).views.back().theta, 2.0);
}

// A count mismatch names the angle file, both counts and the file the views came from.
TEST(AnglesBadInput, CountMismatchNamesBothFiles) {
  TempDir dir;
  const std::string path = dir.file("a.tlt");
  test::write_text(path, "-30\n0\n30\n");
  test::expect_input_error(
      path, [&] { read_angles(path, 4, "/data/views.mrc"); },
      "3 angles but 4 views in /data/views.mrc");
}

}  // namespace
}  // namespace aet
