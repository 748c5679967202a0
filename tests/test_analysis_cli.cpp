// `aet analyze`: a strained particle analysed through the binary (the XYZ columns, analysis.json
// and the volumes it writes), and bad input refused with nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "aet/core/json.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

TEST(AnalyzeCli, StrainedParticleGivesItsStrainInEveryOutput) {
  test::TempDir tmp;
  phantoms::ParticleSpec s;
  s.element = "Pt";
  s.shape = phantoms::Shape::truncated_octahedron;
  s.size = 12.5;
  AtomModel m = phantoms::build_particle(s);
  const double a = std::stod(*m.find_info("lattice_a"));
  for (auto& p : m.positions) p = Vec3(p.x() * 1.01 + 0.005 * p.y(), p.y() + 0.005 * p.x(), p.z());
  write_xyz(tmp.file("in.xyz"), m);
  const std::string out = tmp.file("out");
  auto r = test::run_aet("analyze --quiet --atoms " + tmp.file("in.xyz") + " --out " + out +
                         " --lattice fcc --a " + std::to_string(a) + " --voxel 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const AtomModel got = read_xyz(out + "/atoms.xyz");
  ASSERT_EQ(got.size(), m.size());
  const auto* xx = got.find_property("strain_xx");
  const auto* xy = got.find_property("strain_xy");
  const auto* yy = got.find_property("strain_yy");
  ASSERT_TRUE(xx && xy && yy && got.find_property("surface") && got.find_property("facet_h") &&
              got.find_property("q6") && got.find_property("coordination"));
  // --a was given as printed (6 decimals): the reference differs from the truth by < 1e-6.
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR((*xx)[i], 0.01, 2e-6);
    EXPECT_NEAR((*xy)[i], 0.005, 2e-6);
    EXPECT_NEAR((*yy)[i], 0.0, 2e-6);
  }
  const std::string js = test::read_text(out + "/analysis.json");
  EXPECT_NE(js.find("\"type\": \"fcc\""), std::string::npos) << js;
  EXPECT_NE(js.find("\"{111}\""), std::string::npos) << js;
  EXPECT_NE(js.find("\"{100}\""), std::string::npos) << js;
  const Array3 vol = read_mrc(out + "/strain_xx.mrc");
  EXPECT_EQ(vol.nx() % 2, 1);
  const std::int64_t c = vol.nx() / 2;
  EXPECT_NEAR(vol(c, c, c), 0.01, 1e-5);  // the centre voxel, inside the particle
  EXPECT_EQ(vol(0, 0, 0), 0.0f);          // outside
  EXPECT_TRUE(test::file_exists(out + "/facets.mrc"));
}

TEST(AnalyzeCli, BadInputIsRefusedAndNothingWritten) {
  test::TempDir tmp;
  test::write_text(tmp.file("one.xyz"), "1\n\nPt 0 0 0\n");
  test::write_text(tmp.file("far.xyz"), "4\n\nPt 0 0 0\nPt 30 0 0\nPt 0 30 0\nPt 0 0 30\n");
  test::write_text(tmp.file("nan.xyz"), "4\n\nPt 0 0 0\nPt 2.7 0 0\nPt 0 nan 0\nPt 0 0 2.7\n");
  const std::string out = tmp.file("out");
  for (const std::string f : {"one.xyz", "far.xyz", "nan.xyz"}) {
    const auto r = test::run_aet("analyze --atoms " + tmp.file(f) + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(f), std::string::npos) << r.output;  // the message names the file
    EXPECT_FALSE(test::file_exists(out)) << f;
  }
  phantoms::ParticleSpec s;
  s.shape = phantoms::Shape::sphere;
  s.size = 8;
  write_xyz(tmp.file("pt.xyz"), phantoms::build_particle(s));
  auto r =
      test::run_aet("analyze --atoms " + tmp.file("pt.xyz") + " --out " + out + " --lattice fcp");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown lattice 'fcp'"), std::string::npos) << r.output;
  r = test::run_aet("analyze --atoms " + tmp.file("pt.xyz") + " --out " + out + " --sigma -1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(test::file_exists(out));
}

// Random points at least 2.5 A apart in a 12 A sphere: an amorphous model. It has no lattice, so
// no strain or facets, and that is the answer, not a degraded one: no warning, --strict passes.
// A lattice asked for is fitted, and its poor fit is a warning that --strict refuses.
TEST(AnalyzeCli, AnAmorphousModelHasNoLatticeAndAnAskedForLatticeWarns) {
  test::TempDir tmp;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-12, 12);
  AtomModel m;
  for (int tries = 0; tries < 200000 && m.size() < 400; ++tries) {
    const Vec3 p(u(rng), u(rng), u(rng));
    if (p.norm() > 12) continue;
    bool ok = true;
    for (const auto& q : m.positions) ok = ok && (q - p).norm() >= 2.5;
    if (ok) m.add("Ta", p);
  }
  write_xyz(tmp.file("a.xyz"), m);
  const std::string out = tmp.file("out");
  auto r = test::run_aet("analyze --atoms " + tmp.file("a.xyz") + " --out " + out + " --strict");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("amorphous"), std::string::npos) << r.output;
  const Json j = Json::parse(test::read_text(out + "/analysis.json"));
  EXPECT_TRUE(j["lattice"].is_null());
  EXPECT_EQ(j["structure"]["kind"], "amorphous");
  EXPECT_TRUE(j["warnings"].empty());
  EXPECT_FALSE(test::file_exists(out + "/strain_xx.mrc"));
  const AtomModel written = read_xyz(out + "/atoms.xyz");
  EXPECT_EQ(*written.find_info("sample_structure"), "amorphous");
  EXPECT_EQ(written.find_info("lattice"), nullptr);

  const std::string fitted = tmp.file("fitted");
  r = test::run_aet("analyze --atoms " + tmp.file("a.xyz") + " --out " + fitted +
                    " --lattice bcc --no-volumes --strict");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_FALSE(test::file_exists(fitted));
  r = test::run_aet("analyze --atoms " + tmp.file("a.xyz") + " --out " + fitted +
                    " --lattice bcc --no-volumes");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fitted"), std::string::npos) << r.output;  // the warning
  const std::string js = test::read_text(fitted + "/analysis.json");
  EXPECT_NE(js.find("\"warnings\": [\"analysis: only"), std::string::npos) << js;
}

}  // namespace
}  // namespace aet
