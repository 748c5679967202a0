// Model evaluation: registration across shifts, axis permutations and mirror images, one-to-one
// matching with missing and extra atoms, error statistics, species and surface recall (the
// `aet evaluate` command: test_evaluate_cli.cpp).
#include <gtest/gtest.h>

#include <Eigen/LU>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/error.hpp"
#include "support/evaluate_fixtures.hpp"

namespace aet {
namespace {

using test::blob;
using test::kA;
using test::mapped;
using test::rows;

// The 309-atom fcc cuboctahedron: sites (i, j, k) in units of a/2 with i + j + k even,
// |i| + |j| + |k| <= 8 and max(|i|, |j|, |k|) <= 4. It has 162 surface and 147 bulk atoms.
AtomModel cuboctahedron() {
  AtomModel m;
  for (int i = -4; i <= 4; ++i)
    for (int j = -4; j <= 4; ++j)
      for (int k = -4; k <= 4; ++k)
        if (((i + j + k) % 2 + 2) % 2 == 0 && std::abs(i) + std::abs(j) + std::abs(k) <= 8)
          m.add("Pt", Vec3(i, j, k) * (kA / 2));
  return m;
}

// Checks that the registration maps traced back onto truth exactly.
void expect_exact_registration(const EvaluationResult& r, const Mat3& to_traced,
                               const Vec3& shift) {
  // traced = M truth + s, so truth = M^T traced - M^T s.
  EXPECT_LT((r.rotation - to_traced.transpose()).norm(), 1e-9) << r.rotation;
  EXPECT_LT((r.translation + to_traced.transpose() * shift).norm(), 1e-6) << r.translation;
}

TEST(Evaluate, IdenticalModelsScorePerfectly) {
  const AtomModel truth = blob(200);
  const EvaluationResult r = evaluate(truth, truth);
  EXPECT_EQ(r.truth_atoms, 200u);
  EXPECT_EQ(r.traced_atoms, 200u);
  EXPECT_EQ(r.matched, 200u);
  EXPECT_DOUBLE_EQ(r.recall, 1.0);
  EXPECT_DOUBLE_EQ(r.precision, 1.0);
  EXPECT_NEAR(r.rmsd_pm, 0.0, 1e-6);
  EXPECT_NEAR(r.max_error_pm, 0.0, 1e-6);
  EXPECT_DOUBLE_EQ(r.species_accuracy, 1.0);
  EXPECT_EQ(r.permutation, "x y z");
  expect_exact_registration(r, Mat3::Identity(), Vec3::Zero());
}

TEST(Evaluate, SymmetricParticlePrefersThePlainRegistration) {
  // All 48 permutations fit a cuboctahedron equally well; the identity must win the tie.
  const AtomModel truth = cuboctahedron();
  ASSERT_EQ(truth.size(), 309u);
  const EvaluationResult r = evaluate(truth, truth);
  EXPECT_EQ(r.matched, 309u);
  EXPECT_EQ(r.permutation, "x y z");
  EXPECT_NEAR(r.rmsd_pm, 0.0, 1e-6);
}

TEST(Evaluate, RecoversAKnownShift) {
  const AtomModel truth = blob(200);
  for (const Vec3& s : {Vec3(12.3, -4.1, 7.7), Vec3(-20.0, 31.5, 0.6), Vec3(1.4, 1.4, 0.0)}) {
    const EvaluationResult r = evaluate(mapped(truth, Mat3::Identity(), s), truth);
    EXPECT_DOUBLE_EQ(r.recall, 1.0) << s.transpose();
    EXPECT_EQ(r.permutation, "x y z");
    EXPECT_NEAR(r.rmsd_pm, 0.0, 1e-4);
    expect_exact_registration(r, Mat3::Identity(), s);
  }
}

TEST(Evaluate, RecoversAxisPermutationsAndMirrorImages) {
  const AtomModel truth = blob(200);
  struct Case {
    Mat3 m;
    const char* name;
  };
  // (x, y, z) -> (y, -x, z): traced x' = y and y' = -x, so truth x = -y', y = x'.
  const Case cases[] = {
      {rows(Vec3(0, 1, 0), Vec3(-1, 0, 0), Vec3(0, 0, 1)), "-y x z"},
      {rows(Vec3(-1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1)), "-x y z"},  // mirror image
      {rows(Vec3(0, 0, 1), Vec3(1, 0, 0), Vec3(0, -1, 0)), "y -z x"},
  };
  const Vec3 s(5.5, -17.25, 3.0);
  for (const auto& c : cases) {
    const EvaluationResult r = evaluate(mapped(truth, c.m, s), truth);
    EXPECT_DOUBLE_EQ(r.recall, 1.0) << c.name;
    EXPECT_EQ(r.permutation, c.name);
    expect_exact_registration(r, c.m, s);
  }
}

TEST(Evaluate, RefinesASmallRotationOnTopOfAPermutation) {
  const AtomModel truth = blob(400);
  const Mat3 mirror = rows(Vec3(0, 1, 0), Vec3(1, 0, 0), Vec3(0, 0, 1));  // improper: x <-> y
  const Mat3 M = rot_z(4.0) * rot_x(-3.0) * mirror;
  const Vec3 s(-8.0, 2.5, 11.0);
  const EvaluationResult r = evaluate(mapped(truth, M, s), truth);
  EXPECT_DOUBLE_EQ(r.recall, 1.0);
  EXPECT_EQ(r.permutation, "y x z");
  EXPECT_LT(r.rmsd_pm, 1e-3);
  expect_exact_registration(r, M, s);
}

TEST(Evaluate, MissingAtomsLowerRecallOnly) {
  const AtomModel truth = blob(200);
  AtomModel traced = mapped(truth, Mat3::Identity(), Vec3(3.0, -2.0, 9.0));
  std::vector<bool> keep(200, true);
  for (int i : {0, 17, 64, 111, 199}) keep[i] = false;
  traced.filter(keep);
  const EvaluationResult r = evaluate(traced, truth);
  EXPECT_EQ(r.matched, 195u);
  EXPECT_DOUBLE_EQ(r.recall, 195.0 / 200.0);
  EXPECT_DOUBLE_EQ(r.precision, 1.0);
  EXPECT_NEAR(r.rmsd_pm, 0.0, 1e-4);
}

TEST(Evaluate, ExtraAtomsLowerPrecisionOnly) {
  const AtomModel truth = blob(200);
  AtomModel traced = truth;
  // Four at tetrahedral interstitial sites (1.70 A from their nearest atoms), three far away.
  for (const Vec3& p : {Vec3(1, 1, 1), Vec3(1, -1, 1), Vec3(-1, 1, -1), Vec3(3, 1, -1)})
    traced.add("Pt", p * (kA / 4));
  for (const Vec3& p : {Vec3(40, 0, 0), Vec3(0, -35, 10), Vec3(25, 25, 25)}) traced.add("Pt", p);
  const Vec3 s(-6.5, 4.0, 2.0);
  const EvaluationResult r = evaluate(mapped(traced, Mat3::Identity(), s), truth);
  EXPECT_EQ(r.matched, 200u);
  EXPECT_DOUBLE_EQ(r.recall, 1.0);
  EXPECT_DOUBLE_EQ(r.precision, 200.0 / 207.0);
  expect_exact_registration(r, Mat3::Identity(), s);
}

TEST(Evaluate, JitterGivesTheExpectedRmsd) {
  const AtomModel truth = blob(500);
  AtomModel traced =
      mapped(truth, rows(Vec3(0, 0, -1), Vec3(0, 1, 0), Vec3(1, 0, 0)), Vec3(2.0, 7.0, -3.0));
  std::mt19937_64 rng(42);
  std::normal_distribution<double> g(0.0, 0.10);  // 10 pm per coordinate
  for (auto& p : traced.positions) p += Vec3(g(rng), g(rng), g(rng));
  const EvaluationResult r = evaluate(traced, truth);
  EXPECT_DOUBLE_EQ(r.recall, 1.0);
  const double expected = 10.0 * std::sqrt(3.0);
  EXPECT_NEAR(r.rmsd_pm, expected, 0.15 * expected);
  EXPECT_LE(r.mean_error_pm, r.rmsd_pm);
  EXPECT_GE(r.max_error_pm, r.rmsd_pm);
  EXPECT_LT(r.max_error_pm, 100.0);
}

// The error broken down where a user looks for the missing wedge: per axis of the truth's frame
// (through a registration that permutes the axes), per species and for surface and interior.
TEST(Evaluate, BreaksTheErrorDownByAxisSpeciesAndSurface) {
  AtomModel truth = blob(600);
  for (std::size_t i = 0; i < truth.size(); i += 50) truth.species[i] = "Au";  // none traced
  std::mt19937_64 rng(7);
  std::normal_distribution<double> g(0.0, 1.0);
  AtomModel jittered;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth.species[i] == "Au") continue;
    // Ni atoms 20 pm along z, 5 pm across; Pt atoms 5 pm along every axis.
    const double sz = truth.species[i] == "Ni" ? 0.20 : 0.05;
    jittered.species.push_back(truth.species[i]);
    jittered.positions.push_back(truth.positions[i] +
                                 Vec3(0.05 * g(rng), 0.05 * g(rng), sz * g(rng)));
  }
  // The traced model's x is the truth's z: the breakdown must come back in the truth's frame.
  const AtomModel traced =
      mapped(jittered, rows(Vec3(0, 0, 1), Vec3(0, 1, 0), Vec3(-1, 0, 0)), Vec3(3.0, -1.0, 2.0));
  const EvaluationResult r = evaluate(traced, truth);
  ASSERT_EQ(r.matched, traced.size());
  const double ni = static_cast<double>(r.by_species.at("Ni").matched) / r.matched;
  EXPECT_NEAR(r.rmsd_axis_pm.x(), 5.0, 0.75);
  EXPECT_NEAR(r.rmsd_axis_pm.y(), 5.0, 0.75);
  const double z = std::sqrt(ni * 400.0 + (1 - ni) * 25.0);
  EXPECT_NEAR(r.rmsd_axis_pm.z(), z, 0.15 * z);
  EXPECT_NEAR(r.rmsd_axis_pm.squaredNorm(), r.rmsd_pm * r.rmsd_pm, 1e-9 * r.rmsd_pm * r.rmsd_pm);

  ASSERT_EQ(r.by_species.size(), 3u);
  EXPECT_NEAR(r.by_species.at("Pt").rmsd_pm, std::sqrt(75.0), 0.15 * std::sqrt(75.0));
  EXPECT_NEAR(r.by_species.at("Ni").rmsd_pm, std::sqrt(450.0), 0.15 * std::sqrt(450.0));
  EXPECT_EQ(r.by_species.at("Au").matched, 0u);
  EXPECT_TRUE(std::isnan(r.by_species.at("Au").rmsd_pm));
  EXPECT_EQ(r.by_species.at("Pt").matched + r.by_species.at("Ni").matched, r.matched);

  const std::size_t interior = r.matched - r.surface_matched;
  EXPECT_GT(r.surface_matched, 0u);
  EXPECT_GT(interior, 0u);
  const double total2 = r.surface_matched * std::pow(r.surface_rmsd_pm, 2) +
                        interior * std::pow(r.interior_rmsd_pm, 2);
  EXPECT_NEAR(total2, r.matched * r.rmsd_pm * r.rmsd_pm, 1e-9 * total2);

  const std::string js = r.to_json();
  EXPECT_NE(js.find("\"Au\": {\"matched\": 0, \"rmsd_pm\": null}"), std::string::npos) << js;
  EXPECT_NE(js.find("\"rmsd_axis_pm\": ["), std::string::npos) << js;
}

TEST(Evaluate, CountsSpeciesSwaps) {
  const AtomModel truth = blob(200);
  AtomModel traced = truth;
  int swapped = 0;
  for (std::size_t i = 0; i < traced.size() && swapped < 10; i += 13, ++swapped)
    traced.species[i] = traced.species[i] == "Pt" ? "Ni" : "Pt";
  const EvaluationResult r = evaluate(traced, truth);
  EXPECT_EQ(r.matched, 200u);
  EXPECT_DOUBLE_EQ(r.species_accuracy, 190.0 / 200.0);
}

TEST(Evaluate, SurfaceRecallSeesMissingSurfaceAtoms) {
  const AtomModel truth = cuboctahedron();
  const EvaluationResult full = evaluate(truth, truth);
  EXPECT_NEAR(full.surface_cutoff, 1.2 * kA / std::sqrt(2.0), 1e-9);
  EXPECT_EQ(full.surface_max_coordination, 10);  // bulk fcc 12, minus two
  EXPECT_EQ(full.surface_atoms, 162u);
  EXPECT_DOUBLE_EQ(full.surface_recall, 1.0);

  // Remove 20 surface atoms (those on the outer shell, |i|+|j|+|k| = 8 or max = 4).
  AtomModel traced = truth;
  std::vector<bool> keep(traced.size(), true);
  int removed = 0;
  for (std::size_t a = 0; a < traced.size() && removed < 20; ++a) {
    const Vec3 u = traced.positions[a] / (kA / 2);
    const double l1 = std::abs(u.x()) + std::abs(u.y()) + std::abs(u.z());
    const double linf = u.cwiseAbs().maxCoeff();
    if (l1 > 7.5 || linf > 3.5) {
      keep[a] = false;
      ++removed;
    }
  }
  traced.filter(keep);
  const EvaluationResult r =
      evaluate(mapped(traced, Mat3::Identity(), Vec3(0.7, -9.0, 4.4)), truth);
  EXPECT_EQ(r.matched, 289u);
  EXPECT_EQ(r.surface_atoms, 162u);
  EXPECT_EQ(r.surface_matched, 142u);
  EXPECT_DOUBLE_EQ(r.surface_recall, 142.0 / 162.0);
  EXPECT_EQ(r.matched - r.surface_matched, 147u);  // every bulk atom found

  // Explicit settings override the automatic ones.
  EvaluateOptions opt;
  opt.surface_cutoff = 3.0;
  opt.surface_max_coordination = 12;
  const EvaluationResult e = evaluate(truth, truth, opt);
  EXPECT_DOUBLE_EQ(e.surface_cutoff, 3.0);
  EXPECT_EQ(e.surface_max_coordination, 12);
  EXPECT_EQ(e.surface_atoms, 162u);
}

TEST(Evaluate, OptionsDisablePermutationsAndRegistration) {
  const AtomModel truth = blob(200);
  const Mat3 M = rows(Vec3(0, 1, 0), Vec3(-1, 0, 0), Vec3(0, 0, 1));
  const AtomModel traced = mapped(truth, M, Vec3(4.0, 1.0, -2.0));
  EvaluateOptions opt;
  opt.allow_axis_permutations = false;
  const EvaluationResult r = evaluate(traced, truth, opt);
  EXPECT_EQ(r.permutation, "x y z");
  EXPECT_LT(r.recall, 0.95);  // a crystal overlaps itself partly after a 90 degree turn
  EXPECT_GT(r.rotation.determinant(), 0.0);

  opt.register_models = false;
  const AtomModel shifted = mapped(truth, Mat3::Identity(), Vec3(120.3, -4.1, 7.7));
  const EvaluationResult n = evaluate(shifted, truth, opt);
  EXPECT_EQ(n.matched, 0u);
  EXPECT_TRUE(std::isnan(n.rmsd_pm));
  EXPECT_TRUE(n.rotation.isIdentity());
  EXPECT_TRUE(n.translation.isZero());
  const EvaluationResult same = evaluate(truth, truth, opt);
  EXPECT_EQ(same.matched, 200u);
}

TEST(Evaluate, JsonHoldsEveryKey) {
  const AtomModel truth = blob(100);
  const std::string js = evaluate(truth, truth).to_json();
  for (const char* key : {"truth_atoms",     "traced_atoms",
                          "matched",         "recall",
                          "precision",       "rmsd_pm",
                          "mean_error_pm",   "max_error_pm",
                          "rmsd_axis_pm",    "by_species",
                          "surface_rmsd_pm", "interior_rmsd_pm",
                          "surface_atoms",   "surface_matched",
                          "surface_recall",  "species_accuracy",
                          "rotation",        "translation",
                          "permutation",     "match_radius",
                          "surface_cutoff",  "surface_max_coordination"})
    EXPECT_NE(js.find(std::string("\"") + key + "\":"), std::string::npos) << key;
  EXPECT_EQ(js.front(), '{');
  EXPECT_NE(js.find("\"permutation\": \"x y z\""), std::string::npos) << js;
  EXPECT_EQ(js.find("nan"), std::string::npos) << js;
}

TEST(Evaluate, RejectsBadInput) {
  const AtomModel truth = blob(50);
  EXPECT_THROW(evaluate(AtomModel{}, truth), InputError);
  EXPECT_THROW(evaluate(truth, AtomModel{}), InputError);
  AtomModel bad = truth;
  bad.positions[3].x() = std::nan("");
  EXPECT_THROW(evaluate(bad, truth), InputError);
  EvaluateOptions opt;
  opt.match_radius = 0;
  EXPECT_THROW(evaluate(truth, truth, opt), InputError);
  opt.match_radius = 1;
  opt.surface_cutoff = -1;
  EXPECT_THROW(evaluate(truth, truth, opt), InputError);
}

// A large model (the scale of a real particle) registers and matches completely; how fast is a
// benchmark's question (benchmarks/), not a test's.
TEST(Evaluate, LargeModelRegisters) {
  const AtomModel truth = blob(30000);
  const Mat3 M = rot_y(2.0) * rows(Vec3(0, 0, 1), Vec3(0, -1, 0), Vec3(1, 0, 0));
  AtomModel traced = mapped(truth, M, Vec3(25.0, -3.0, 14.0));
  std::vector<bool> keep(traced.size(), true);
  for (std::size_t i = 0; i < keep.size(); i += 50) keep[i] = false;  // 2 % missing
  traced.filter(keep);
  const EvaluationResult r = evaluate(traced, truth);
  EXPECT_EQ(r.matched, traced.size());
  EXPECT_EQ(r.truth_atoms, truth.size());
  EXPECT_EQ(r.permutation, "z -y x");
  EXPECT_LT(r.rmsd_pm, 1e-3);
}

}  // namespace
}  // namespace aet
