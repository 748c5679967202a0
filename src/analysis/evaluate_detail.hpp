// The parts of evaluate() (docs/evaluation.md): the registration search with its matching, and
// the surface atoms of the truth. Internal to aet_analysis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::detail {

struct Pair {
  std::uint32_t i, j;  // traced, truth
  double d2;
};

// Greedy one-to-one matching of moved traced points to truth points (those of `grid`) within r,
// by increasing distance (ties by index, so the result never depends on thread scheduling).
std::vector<Pair> match_greedy(const std::vector<Vec3>& moved, const NeighborSearch& grid,
                               std::size_t n_truth, double r);

// R p + t for every p of src.
std::vector<Vec3> transform(const std::vector<Vec3>& src, const Mat3& R, const Vec3& t);

// The rigid motion that registers traced positions `src` onto the truth `dst` (indexed by
// `grid`): the best of the signed axis permutations (or the identity alone, per opt), each with
// translation votes and ICP through the shrinking `radii`, which end at opt.match_radius.
struct Registration {
  Mat3 rotation = Mat3::Identity();
  Vec3 translation = Vec3::Zero();
  std::string permutation;  // EvaluationResult::permutation
};
Registration find_registration(const std::vector<Vec3>& src, const std::vector<Vec3>& dst,
                               const NeighborSearch& grid, const std::vector<double>& radii,
                               const EvaluateOptions& opt);

// Coordination of each truth atom and the surface threshold (auto values resolved).
struct Surface {
  std::vector<char> is_surface;
  double cutoff = 0;
  int threshold = 0;
};

// Surface atoms of `pts` (indexed by `grid`): fewer than `threshold` neighbours within `cutoff`;
// 0 picks either automatically (EvaluateOptions).
Surface find_surface(const std::vector<Vec3>& pts, const NeighborSearch& grid, double cutoff,
                     int threshold);

}  // namespace aet::detail
