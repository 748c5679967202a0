// Surface atoms of the truth (docs/evaluation.md): coordination within a cutoff between the first
// and second neighbour shells, against the bulk coordination of the particle.
#include "evaluate_detail.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"

namespace aet::detail {

Surface find_surface(const std::vector<Vec3>& pts, const NeighborSearch& grid, double cutoff,
                     int threshold) {
  const std::size_t n = pts.size();
  Surface s;
  if (cutoff <= 0) {
    // 1.2 x the median nearest-neighbour distance lies between the first and second shells of
    // fcc/hcp (ratio 1.41) and includes bcc's second shell (ratio 1.15), whatever the element.
    std::vector<double> nn;
    Vec3 lo = pts.front(), hi = pts.front();
    for (const auto& p : pts) {
      lo = lo.cwiseMin(p);
      hi = hi.cwiseMax(p);
    }
    const double span = std::max((hi - lo).norm(), grid.cell_size());
    std::vector<double> d(n, std::numeric_limits<double>::quiet_NaN());
    parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i)
        for (double r = grid.cell_size(); r <= 2 * span; r *= 2) {
          double d2 = 0;
          if (grid.nearest(pts[i], r, &d2, i) >= 0) {
            d[i] = std::sqrt(d2);
            break;
          }
        }
    });
    for (double v : d)
      if (std::isfinite(v)) nn.push_back(v);
    if (!nn.empty()) cutoff = 1.2 * median_of(std::move(nn));
  }
  s.cutoff = cutoff;
  std::vector<int> coord(n, 0);
  if (cutoff > 0)
    parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i)
        grid.for_each(pts[i], cutoff, [&](std::size_t j, double) {
          if (static_cast<std::int64_t>(j) != i) ++coord[i];
        });
    });
  if (threshold <= 0) {
    // Bulk coordination: the most common value in the better-coordinated half. A small particle
    // can have more surface than bulk atoms (162 of 309 in a cuboctahedron), so a plain mode or
    // median would pick a surface value.
    std::vector<int> sorted = coord;
    std::sort(sorted.begin(), sorted.end());
    const int median = sorted[n / 2];
    int bulk = median, best_count = 0;
    for (std::size_t k = 0; k < n;) {
      std::size_t e = k;
      while (e < n && sorted[e] == sorted[k]) ++e;
      if (sorted[k] >= median && static_cast<int>(e - k) >= best_count) {
        best_count = static_cast<int>(e - k);
        bulk = sorted[k];
      }
      k = e;
    }
    // Two below bulk: an atom beside one or two vacancies stays bulk, while every fcc surface
    // site (at most 9 neighbours, on a (111) facet) is below 10.
    threshold = std::max(1, bulk - 2);
  }
  s.threshold = threshold;
  s.is_surface.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.is_surface[i] = coord[i] < threshold;
  return s;
}

}  // namespace aet::detail
