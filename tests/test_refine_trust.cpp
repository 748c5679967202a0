// Trust per atom of the refinement (AtomTrust, docs/refinement.md "Trust per atom"): sigmas that
// follow the dose and the missing wedge, that cover the true errors of a simulated particle, a
// reproducible bootstrap and the weak-support flag, on series simulated by phantoms/ with shot
// noise and the probe tail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/refine/model_refinement.hpp"
#include "support/recon_fixtures.hpp"
#include "support/refine_fixtures.hpp"

namespace aet {
namespace {

const Device kCpu{};
using test::Case;
using test::displaced;

// The tests' particle (refine_fixtures: a 147-atom Pt cuboctahedron, randomly oriented) simulated
// at `dose` over tilts -range..range in 5 degree steps, with the probe tail.
Case make_series(std::uint64_t seed, double dose, double range) {
  Case c;
  phantoms::ParticleSpec spec;
  spec.element = "Pt";
  spec.shape = phantoms::Shape::cuboctahedron;
  spec.shells = 3;
  spec.random_orientation = true;
  spec.b_factor = 5.0;
  spec.seed = seed;
  c.truth = phantoms::build_particle(spec);
  phantoms::SimulationSpec sim = test::tilt_series_spec(0.5, 56, 5, seed, true);
  sim.nominal.clear();
  for (double t = -range; t <= range + 1e-9; t += 5) sim.nominal.push_back(Euler{0, t, 0});
  sim.dose = dose;
  c.series = phantoms::simulate_tilt_series(c.truth, sim, kCpu);
  return c;
}

// Refines the truth, started 5 pm per axis off, against the series (the geometry fixed).
ModelRefineResult refine(const Case& c, std::uint64_t seed, int bootstrap = 0) {
  AtomModel start = c.truth;
  start.properties.clear();
  start.positions = displaced(c.truth.positions, 0.05, seed);
  ModelRefineOptions opt;
  opt.refine_shifts = opt.refine_angles = false;
  opt.bootstrap = bootstrap;
  opt.seed = seed;
  return refine_atomic_model(c.series.views, c.series.truth, start, opt);
}

double median_axis(const std::vector<Vec3>& s, int axis) {
  std::vector<double> v;
  for (const auto& x : s) v.push_back(x[axis]);
  return median_of(v);
}

// Fraction of (atom, axis) pairs whose true error is within 2 sigma.
double coverage(const ModelRefineResult& r, const AtomModel& truth,
                const std::vector<Vec3>& sigma) {
  int in = 0, n = 0;
  for (std::size_t i = 0; i < truth.size(); ++i)
    for (int d = 0; d < 3; ++d, ++n)
      in += std::abs(r.model.positions[i][d] - truth.positions[i][d]) <= 2 * sigma[i][d];
  return static_cast<double>(in) / n;
}

// Shot noise: 4x the dose halves the noise's standard deviation relative to the signal, and the
// sigmas follow it (measured 0.504-0.506 on the three axes; the probe tail's misfit, which does
// not fall with the dose, is small beside the noise at these doses).
TEST(RefineTrust, SigmaShrinksWithTheDose) {
  const Case low = make_series(301, 1e4, 70), high = make_series(301, 4e4, 70);
  const ModelRefineResult a = refine(low, 302), b = refine(high, 302);
  for (int d = 0; d < 3; ++d) {
    const double ratio =
        median_axis(b.trust.sigma_curvature, d) / median_axis(a.trust.sigma_curvature, d);
    std::printf("axis %d: median sigma %.2f pm at 1e4, %.2f pm at 4e4, ratio %.3f\n", d,
                100 * median_axis(a.trust.sigma_curvature, d),
                100 * median_axis(b.trust.sigma_curvature, d), ratio);
    EXPECT_GT(ratio, 0.45);
    EXPECT_LT(ratio, 0.62);
  }
  // Without a bootstrap the reported sigma is the curvature's, and the columns hold it.
  EXPECT_EQ(a.trust.sigma[5], a.trust.sigma_curvature[5]);
  EXPECT_DOUBLE_EQ((*a.model.find_property("sigma_z"))[5], a.trust.sigma[5].z());
  EXPECT_EQ(a.model.find_property("sigma_boot_x"), nullptr);
}

// The missing wedge: a +-60 degree series about y sees z at most at sin 60 while x is seen by
// every view, so z is the least certain axis; y (along the tilt axis) the most.
TEST(RefineTrust, MissingWedgeShowsAsALargerSigmaZ) {
  const Case c = make_series(311, 5e4, 60);
  const ModelRefineResult r = refine(c, 312);
  const double sx = median_axis(r.trust.sigma, 0), sy = median_axis(r.trust.sigma, 1),
               sz = median_axis(r.trust.sigma, 2);
  std::printf("+-60: median sigma %.2f %.2f %.2f pm\n", 100 * sx, 100 * sy, 100 * sz);
  EXPECT_GT(sz, 1.3 * sx);
  EXPECT_LT(sy, sx);
  EXPECT_EQ(r.trust.median_sigma, Vec3(sx, sy, sz));
}

// Calibration on a particle and seed the docs do not use: the true errors lie within the
// reported 2 sigma for 85-99 % of (atom, axis) pairs, with the curvature alone and with the
// bootstrap (docs/refinement.md has the table on larger particles).
TEST(RefineTrust, TrueErrorsLieWithinTwoSigma) {
  const Case c = make_series(321, 5e4, 70);
  const ModelRefineResult r = refine(c, 322, 6);
  const double curv = coverage(r, c.truth, r.trust.sigma_curvature);
  const double boot = coverage(r, c.truth, r.trust.sigma_bootstrap);
  const double reported = coverage(r, c.truth, r.trust.sigma);
  std::printf("within 2 sigma: curvature %.1f %%, bootstrap %.1f %%, reported %.1f %%\n",
              100 * curv, 100 * boot, 100 * reported);
  EXPECT_GT(curv, 0.80);
  EXPECT_LT(curv, 0.98);
  EXPECT_GT(reported, 0.85);
  EXPECT_LT(reported, 0.99);
  // The reported sigma is the larger of the two, axis by axis.
  EXPECT_EQ(r.trust.sigma[7], r.trust.sigma_curvature[7].cwiseMax(r.trust.sigma_bootstrap[7]));
  EXPECT_EQ(r.trust.bootstrap, 6);
  EXPECT_EQ(r.trust.weak_count, 0u);
  for (double snr : r.trust.weight_snr) EXPECT_GT(snr, 50.0);
}

// The bootstrap draws its views from the seed: the same seed gives the same sigmas, another seed
// others; its spread is of the size of the curvature's (both measure the same noise).
TEST(RefineTrust, BootstrapIsDeterministicPerSeed) {
  const Case c = make_series(331, 5e4, 70);
  const ModelRefineResult a = refine(c, 332, 4), b = refine(c, 332, 4), d = refine(c, 333, 4);
  ASSERT_EQ(a.trust.sigma_bootstrap.size(), c.truth.size());
  EXPECT_EQ(a.trust.sigma_bootstrap, b.trust.sigma_bootstrap);
  EXPECT_EQ(a.trust.sigma, b.trust.sigma);
  EXPECT_NE(a.trust.sigma_bootstrap, d.trust.sigma_bootstrap);
  for (int axis = 0; axis < 3; ++axis) {
    const double ratio =
        median_axis(a.trust.sigma_bootstrap, axis) / median_axis(a.trust.sigma_curvature, axis);
    EXPECT_GT(ratio, 0.4) << axis;
    EXPECT_LT(ratio, 2.5) << axis;
  }
  // The columns of the XYZ: the reported sigmas and, with a bootstrap, both parts.
  for (const char* name :
       {"sigma_x", "sigma_y", "sigma_z", "weight_snr", "weak", "sigma_curv_x", "sigma_boot_z"})
    EXPECT_NE(a.model.find_property(name), nullptr) << name;
  ModelRefineOptions bad;
  bad.bootstrap = -1;
  EXPECT_THROW(refine_atomic_model(c.series.views, c.series.truth, c.truth, bad), InputError);
}

// An atom the views do not show (put in a gap of the particle) is flagged weak, the real ones are
// not; a model with more than 10 % weak atoms gets the warning.
TEST(RefineTrust, AtomsTheViewsDoNotSupportAreFlaggedWeak) {
  const Case c = make_series(341, 5e4, 70);
  AtomModel start = c.truth;
  start.properties.clear();
  Rng rng(342);
  int added = 0;
  while (added < 3) {
    const Vec3 p(rng.normal(0, 4), rng.normal(0, 4), rng.normal(0, 4));
    double nearest = 1e300;
    for (const auto& q : c.truth.positions) nearest = std::min(nearest, (p - q).norm());
    if (nearest < 2.0 || nearest > 3.0) continue;
    start.add("Pt", p);
    ++added;
  }
  ModelRefineOptions opt;
  opt.refine_shifts = opt.refine_angles = false;
  const ModelRefineResult r = refine_atomic_model(c.series.views, c.series.truth, start, opt);
  const auto& weak = *r.model.find_property("weak");
  const auto& snr = *r.model.find_property("weight_snr");
  double lowest_real = 1e300;
  for (std::size_t i = 0; i < c.truth.size(); ++i) {
    EXPECT_EQ(weak[i], 0.0) << i;
    lowest_real = std::min(lowest_real, snr[i]);
  }
  for (std::size_t i = c.truth.size(); i < start.size(); ++i) {
    std::printf("spurious atom: weight_snr %.2f (lowest real atom %.1f)\n", snr[i], lowest_real);
    EXPECT_EQ(weak[i], 1.0) << i;
  }
  EXPECT_EQ(r.trust.weak_count, 3u);
  EXPECT_EQ(trust_warning(r.model), "");  // 3 of 150: under 10 %
  const Json js = trust_json(r.model, 0);
  EXPECT_EQ(js["weak_atoms"].get<int>(), 3);
  AtomModel few = r.model;
  std::vector<bool> keep(few.size(), false);
  for (std::size_t i = 0; i < 20; ++i) keep[i] = true;
  for (std::size_t i = c.truth.size(); i < start.size(); ++i) keep[i] = true;
  few.filter(keep);  // 3 weak of 23
  EXPECT_NE(trust_warning(few).find("3 of 23 refined atoms"), std::string::npos)
      << trust_warning(few);
}

}  // namespace
}  // namespace aet
