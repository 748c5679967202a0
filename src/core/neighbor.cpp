#include "aet/core/neighbor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"

namespace aet {

NeighborSearch::NeighborSearch(const std::vector<Vec3>& points, double cell, double max_cells)
    : pts_(points), h_(cell) {
  if (points.size() > std::numeric_limits<std::uint32_t>::max())
    fail_input("neighbour search: " + std::to_string(points.size()) +
               " points are more than it can index");
  if (points.empty()) return;
  Vec3 hi = points.front();
  origin_ = points.front();
  for (const auto& p : points) {
    origin_ = origin_.cwiseMin(p);
    hi = hi.cwiseMax(p);
  }
  if (!(h_ > 0) || !std::isfinite(h_)) h_ = 1.0 + (hi - origin_).maxCoeff();
  for (;;) {
    double total = 1;
    for (int a = 0; a < 3; ++a) {
      n_[a] = static_cast<std::int64_t>(std::floor((hi[a] - origin_[a]) / h_)) + 1;
      total *= static_cast<double>(n_[a]);
    }
    if (!(max_cells > 0) || total <= max_cells) break;
    h_ *= std::cbrt(total / max_cells) * 1.01;
  }
  const std::int64_t ncell = n_[0] * n_[1] * n_[2];
  start_.assign(static_cast<std::size_t>(ncell) + 1, 0);
  std::vector<std::size_t> cell_of(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::int64_t c[3];
    for (int a = 0; a < 3; ++a)
      c[a] = std::clamp<std::int64_t>(
          static_cast<std::int64_t>(std::floor((points[i][a] - origin_[a]) / h_)), 0, n_[a] - 1);
    cell_of[i] = static_cast<std::size_t>((c[2] * n_[1] + c[1]) * n_[0] + c[0]);
    ++start_[cell_of[i] + 1];
  }
  for (std::size_t c = 0; c < static_cast<std::size_t>(ncell); ++c) start_[c + 1] += start_[c];
  // Filled in index order, so each cell lists its points in increasing index order.
  items_.resize(points.size());
  std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
  for (std::size_t i = 0; i < points.size(); ++i)
    items_[fill[cell_of[i]]++] = static_cast<std::uint32_t>(i);
}

std::int64_t NeighborSearch::nearest(const Vec3& q, double r, double* d2_out,
                                     std::int64_t skip) const {
  std::int64_t best = -1;
  double best_d2 = 0;
  for_each(q, r, [&](std::size_t j, double d2) {
    const auto k = static_cast<std::int64_t>(j);
    if (k == skip) return;
    if (best < 0 || d2 < best_d2 || (d2 == best_d2 && k < best)) {
      best = k;
      best_d2 = d2;
    }
  });
  if (d2_out) *d2_out = best_d2;
  return best;
}

double median_nearest_distance(const std::vector<Vec3>& p) {
  if (p.size() < 2) fail_input("the nearest-neighbour distance needs at least 2 atoms");
  Vec3 lo = p.front(), hi = p.front();
  for (const auto& q : p) {
    lo = lo.cwiseMin(q);
    hi = hi.cwiseMax(q);
  }
  const double span = std::max((hi - lo).norm(), 1e-6);
  const double cell =
      std::min(span, std::max(span / std::cbrt(static_cast<double>(p.size())), 1.0));
  const NeighborSearch grid(p, cell, NeighborSearch::default_max_cells(p.size()));
  std::vector<double> d(p.size(), 0.0);
  parallel_for(static_cast<std::int64_t>(p.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      for (double r = grid.cell_size();; r *= 2) {
        double d2 = 0;
        if (grid.nearest(p[i], r, &d2, i) >= 0) {
          d[i] = std::sqrt(d2);
          break;
        }
        if (r > 4 * span) break;
      }
  });
  return median_of(std::move(d));
}

}  // namespace aet
