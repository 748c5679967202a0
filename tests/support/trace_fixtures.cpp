// Planted-atom volumes for the tracing tests (trace_fixtures.hpp).
#include "support/trace_fixtures.hpp"

#include <algorithm>
#include <cmath>

namespace aet::test {

double z_weight(const std::string& symbol) {
  const int z = symbol == "Fe" ? 26 : symbol == "Pt" ? 78 : 0;
  return std::pow(static_cast<double>(z) / 78.0, 1.7);
}

std::vector<Vec3> jittered_fcc(double a, double radius, double jitter, Rng& rng) {
  const Vec3 origin(rng.uniform(-0.5, 0.5) * kVoxel, rng.uniform(-0.5, 0.5) * kVoxel,
                    rng.uniform(-0.5, 0.5) * kVoxel);
  const Vec3 basis[4] = {Vec3(0, 0, 0), Vec3(0.5, 0.5, 0), Vec3(0.5, 0, 0.5), Vec3(0, 0.5, 0.5)};
  std::vector<Vec3> out;
  const int m = static_cast<int>(std::ceil(radius / a)) + 1;
  for (int i = -m; i <= m; ++i)
    for (int j = -m; j <= m; ++j)
      for (int k = -m; k <= m; ++k)
        for (const auto& b : basis) {
          const Vec3 p = a * (Vec3(i, j, k) + b);
          if (p.norm() > radius) continue;
          out.push_back(origin + p + jitter * Vec3(rng.normal(), rng.normal(), rng.normal()));
        }
  return out;
}

Planted make_volume(const std::vector<Vec3>& pos, const std::vector<std::string>& species,
                    std::int64_t n, double noise_sd, std::uint64_t seed) {
  Planted p;
  p.species = species;
  p.atoms.positions = pos;
  for (const auto& s : species) {
    p.atoms.weight.push_back(z_weight(s));
    p.atoms.sigma.push_back(kSigma);
  }
  p.volume = phantoms::ideal_volume(p.atoms, n, n, n, kVoxel);
  if (noise_sd > 0) {
    float top = 0;
    for (float v : p.volume.vector()) top = std::max(top, v);
    Rng rng(seed);
    for (float& v : p.volume.vector()) v += static_cast<float>(noise_sd * top * rng.normal());
  }
  return p;
}

Match match(const Planted& truth, const AtomModel& traced) {
  Match m;
  std::vector<bool> used(traced.size(), false);
  double se = 0;
  for (std::size_t i = 0; i < truth.atoms.positions.size(); ++i) {
    double best = 0.7;
    std::size_t bj = traced.size();
    for (std::size_t j = 0; j < traced.size(); ++j) {
      const double d = (traced.positions[j] - truth.atoms.positions[i]).norm();
      if (!used[j] && d < best) {
        best = d;
        bj = j;
      }
    }
    if (bj == traced.size()) {
      ++m.missing;
      continue;
    }
    used[bj] = true;
    ++m.matched;
    se += best * best;
    if (traced.species[bj] == truth.species[i]) ++m.species_ok;
  }
  for (bool u : used) m.extra += !u;
  m.rms = m.matched ? std::sqrt(se / static_cast<double>(m.matched)) : 0.0;
  return m;
}

Planted pt_particle(double noise_sd, std::uint64_t seed) {
  Rng rng(seed);
  // a = 3.6 A: nearest neighbours 2.55 A apart, closer than Pt's 2.77 so tails overlap more.
  const auto pos = jittered_fcc(3.6, 7.5, 0.05, rng);
  return make_volume(pos, std::vector<std::string>(pos.size(), "Pt"), 56, noise_sd, seed + 1);
}

}  // namespace aet::test
