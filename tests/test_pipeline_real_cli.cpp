// The pipeline on a real measured series (../shared/data/ta_film_area1, an amorphous Ta film
// aligned by its authors), scored against the authors' published atomic model of the same
// sub-area in the interior box |x| < 19.9, |y| < 8.6, |z| < 14 A (both models cut to it, one-to-one
// matching within 1 A, no registration: the models share the volume's frame). The default chain
// must never do worse than a plain reconstruction traced (docs/results.md has the figures).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <string>

#include "aet/analysis/evaluate.hpp"
#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

using test::run_aet;
using test::TempDir;

AtomModel interior(const AtomModel& m) {
  AtomModel box;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const Vec3& p = m.positions[i];
    if (std::abs(p.x()) < 19.9 && std::abs(p.y()) < 8.6 && std::abs(p.z()) < 14)
      box.add(m.species[i], p);
  }
  return box;
}

EvaluationResult score(const std::string& xyz, const AtomModel& truth) {
  EvaluateOptions o;
  o.register_models = false;
  return evaluate(interior(read_xyz(xyz)), truth, o);
}

TEST(PipelineReal, TaFilmNoWorseThanReconstructAndTrace) {
  const std::string dir = std::string(AET_SHARED_DATA) + "/ta_film_area1/";
  ASSERT_TRUE(test::file_exists(dir + "published_atomic_model.xyz")) << "no " << dir;
  const AtomModel truth = interior(read_xyz(dir + "published_atomic_model.xyz"));
  ASSERT_EQ(truth.size(), 470u);
  TempDir tmp;
  const std::string input =
      "--tilts " + dir + "projections.mrc --angles " + dir + "angles.txt --quiet ";
  auto r = run_aet("reconstruct " + input + "--out " + tmp.file("plain.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_aet("trace --volume " + tmp.file("plain.mrc") + " --elements Ta --quiet --out " +
              tmp.file("plain.xyz"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_aet("pipeline " + input + "--elements Ta --no-report --out " + tmp.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string metrics = test::read_text(tmp.file("run/metrics.json"));
  // Detected as a film, found aligned already, solved as an extended object, and the shipped
  // network (trained on isolated particles) not applied to it.
  EXPECT_NE(metrics.find("\"kind\": \"film\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"already_aligned\": true"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"extended_volume\": ["), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"momentum\": true"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("\"used\": true"), std::string::npos) << metrics;

  const EvaluationResult plain = score(tmp.file("plain.xyz"), truth);
  const EvaluationResult chain = score(tmp.file("run/atoms.xyz"), truth);
  std::printf("reconstruct + trace: recall %.3f precision %.3f RMSD %.1f pm\n", plain.recall,
              plain.precision, plain.rmsd_pm);
  std::printf("pipeline:            recall %.3f precision %.3f RMSD %.1f pm\n", chain.recall,
              chain.precision, chain.rmsd_pm);
  EXPECT_GE(chain.recall, plain.recall - 0.005);
  EXPECT_GE(chain.precision, plain.precision - 0.005);
  EXPECT_LE(chain.rmsd_pm, plain.rmsd_pm + 0.5);
  // What both chains reach today (docs/results.md: plain 0.887 / 0.762 / 32.5 pm, the pipeline
  // 0.904 / 0.908 / 28.7 pm): a regression in either shows here.
  EXPECT_GE(plain.recall, 0.88);
  EXPECT_LE(plain.rmsd_pm, 33.0);
  EXPECT_GE(chain.recall, 0.89);
  EXPECT_GE(chain.precision, 0.89);
  EXPECT_LE(chain.rmsd_pm, 29.5);
}

// The small measured field: the atoms whose images reach its top and bottom rows would take up
// the film beyond it and make the classification remove most of the others; they are kept as
// traced, so the refined model is kept and fits the views better than the voxel reconstruction.
TEST(PipelineReal, TaFilmExampleKeepsItsRefinedModel) {
  const std::string dir = std::string(AET_SHARED_DATA) + "/ta_film_example/";
  ASSERT_TRUE(test::file_exists(dir + "projections.mrc")) << "no " << dir;
  TempDir tmp;
  const std::string input =
      "--tilts " + dir + "projections.mrc --angles " + dir + "angles.txt --quiet ";
  auto r = run_aet("reconstruct " + input + "--out " + tmp.file("plain.mrc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto plain = nlohmann::json::parse(test::read_text(tmp.file("plain.json")));
  r = run_aet("pipeline " + input + "--elements Ta --no-report --out " + tmp.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = nlohmann::json::parse(test::read_text(tmp.file("run/metrics.json")));
  const auto& refinement = m.at("refinement");
  EXPECT_TRUE(refinement.at("kept").get<bool>()) << refinement.dump();
  EXPECT_GT(refinement.at("edge_atoms_kept_as_traced").get<int>(), 0) << refinement.dump();
  EXPECT_LT(refinement.at("atoms_removed").get<int>(), 10) << refinement.dump();
  EXPECT_LT(refinement.at("r1_final").get<double>(), plain.at("r1_final").get<double>())
      << refinement.dump();
}

}  // namespace
}  // namespace aet
