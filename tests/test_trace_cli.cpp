// `aet trace` on volumes of planted Gaussian atoms (trace_fixtures.hpp): the traced file, its
// provenance, the voxel-size override and bad input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"
#include "support/trace_fixtures.hpp"

namespace aet {
namespace {

using test::match;
using test::Planted;
using test::pt_particle;

TEST(TraceCli, TracesAnMrcVolume) {
  test::TempDir dir;
  const Planted p = pt_particle(0.0, 71);
  write_mrc(dir.file("vol.mrc"), p.volume, MrcKind::volume);
  const auto r = test::run_aet("trace --volume " + dir.file("vol.mrc") + " --out " +
                               dir.file("atoms.xyz") + " --seed 3 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const AtomModel traced = read_xyz(dir.file("atoms.xyz"));
  EXPECT_EQ(traced.size(), p.atoms.positions.size());
  EXPECT_LE(match(p, traced).rms, 0.03);
  ASSERT_TRUE(traced.find_info("seed"));
  EXPECT_EQ(*traced.find_info("seed"), "3");
  ASSERT_TRUE(traced.find_info("source_volume"));
  EXPECT_EQ(*traced.find_info("source_volume"), dir.file("vol.mrc"));
  // --fit gaussian-axes reaches the per-axis fit, and records which fit and the shape it found.
  const auto ra = test::run_aet("trace --volume " + dir.file("vol.mrc") + " --out " +
                                dir.file("axes.xyz") + " --fit gaussian-axes --quiet");
  ASSERT_EQ(ra.exit_code, 0) << ra.output;
  const AtomModel axes = read_xyz(dir.file("axes.xyz"));
  EXPECT_EQ(axes.size(), p.atoms.positions.size());
  EXPECT_LE(match(p, axes).rms, 0.03);
  ASSERT_TRUE(axes.find_info("trace_fit"));
  EXPECT_EQ(*axes.find_info("trace_fit"), "gaussian-axes");
  ASSERT_TRUE(axes.find_info("trace_atom_shape"));
  const auto bad = test::run_aet("trace --volume " + dir.file("vol.mrc") + " --out " +
                                 dir.file("bad.xyz") + " --fit gaussian-axis");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("gaussian-axes"), std::string::npos) << bad.output;  // valid names
  EXPECT_FALSE(test::file_exists(dir.file("bad.xyz")));
}

TEST(TraceCli, VoxelSizeOverride) {
  test::TempDir dir;
  const Planted p = pt_particle(0.0, 72);
  Array3 vol = p.volume;
  vol.voxel_size = VoxelSize{1.0, 1.0, 1.0};  // a header that lost the voxel size
  write_mrc(dir.file("vol.mrc"), vol, MrcKind::volume);
  const auto r = test::run_aet("trace --volume " + dir.file("vol.mrc") + " --out " +
                               dir.file("atoms.xyz") + " --voxel-size 0.35 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LE(match(p, read_xyz(dir.file("atoms.xyz"))).rms, 0.03);
}

TEST(TraceCli, BadInputExitsTwoAndWritesNothing) {
  test::TempDir dir;
  const std::string missing = dir.file("nope.mrc");
  auto r = test::run_aet("trace --volume " + missing + " --out " + dir.file("atoms.xyz"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;
  EXPECT_FALSE(test::file_exists(dir.file("atoms.xyz")));

  const Planted p = pt_particle(0.0, 73);
  write_mrc(dir.file("vol.mrc"), p.volume, MrcKind::volume);
  for (const std::string bad : {"--elements Pt,Xx", "--min-distance 0", "--fit cubic",
                                "--threshold 2", "--voxel-size -1"}) {
    r = test::run_aet("trace --volume " + dir.file("vol.mrc") + " --out " + dir.file("atoms.xyz") +
                      " " + bad);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
    EXPECT_FALSE(test::file_exists(dir.file("atoms.xyz"))) << bad;
  }
  r = test::run_aet("trace --out " + dir.file("atoms.xyz"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"vol.mrc"});
}

}  // namespace
}  // namespace aet
