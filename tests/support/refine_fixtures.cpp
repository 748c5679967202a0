// Particles, series and scores for the model-refinement tests (refine_fixtures.hpp).
#include "support/refine_fixtures.hpp"

#include <cmath>

#include "aet/core/device.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "support/recon_fixtures.hpp"

namespace aet::test {
namespace {

const Device kCpu{};

}  // namespace

Case make_case(const std::string& element, std::uint64_t seed) {
  Case c;
  phantoms::ParticleSpec spec;
  spec.element = element;
  spec.shape = element == "FePt" ? phantoms::Shape::sphere : phantoms::Shape::cuboctahedron;
  spec.shells = 3;                 // 147 atoms
  spec.size = 7.0;                 // FePt sphere: about 120 atoms
  spec.random_orientation = true;  // off the zone axes, like a real particle
  spec.b_factor = 5.0;
  spec.seed = seed;
  c.truth = phantoms::build_particle(spec);
  c.series =
      phantoms::simulate_tilt_series(c.truth, test::tilt_series_spec(0.5, 56, 5, seed, true), kCpu);
  return c;
}

double position_error_pm(const std::vector<Vec3>& est, const std::vector<Vec3>& truth,
                         const Mat3& Q) {
  Vec3 t = Vec3::Zero();
  for (std::size_t i = 0; i < est.size(); ++i) t += est[i] - Q * truth[i];
  t /= static_cast<double>(est.size());
  double s = 0;
  for (std::size_t i = 0; i < est.size(); ++i) s += (est[i] - Q * truth[i] - t).squaredNorm();
  return 100.0 * std::sqrt(s / est.size());
}

std::vector<Vec3> displaced(const std::vector<Vec3>& p, double sd, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<Vec3> out = p;
  for (auto& x : out) x += Vec3(rng.normal(0, sd), rng.normal(0, sd), rng.normal(0, sd));
  return out;
}

}  // namespace aet::test
