// Fixed-radius neighbour search over a point set (Angstrom), after gemmi's NeighborSearch: a
// uniform grid of cubic cells (a cell list). A query reports every point within the radius, in an
// order fixed by the points and the cell size alone: cell by cell (z slowest, x fastest), then by
// increasing index within a cell. Callers that sum over neighbours therefore get the same bits on
// every run and with any thread count, as long as they keep the cell size.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aet/geometry/rotation.hpp"

namespace aet {

class NeighborSearch {
 public:
  // Cells of edge `cell` from the smallest coordinates of `points`, which must outlive the search
  // (it keeps a reference). With `max_cells` > 0 the cells grow, by the same factor on every axis,
  // until the grid has at most that many, so that a few far outliers cannot make it huge; queries
  // stay exact, only the visiting order follows the grown cells. A cell edge that is not positive
  // and finite gives a single cell. Throws InputError for 2^32 points or more.
  NeighborSearch(const std::vector<Vec3>& points, double cell, double max_cells = 0);

  // The usual cell limit: about 8 cells per point, and 4096 for a handful of points.
  static double default_max_cells(std::size_t n_points) {
    return 8.0 * static_cast<double>(n_points) + 4096.0;
  }

  double cell_size() const { return h_; }  // after any growth
  std::size_t size() const { return pts_.size(); }

  // Calls f(j, d2) for every point j with d2 = (points[j] - q).squaredNorm() <= r * r, in the
  // order above. Any r >= 0; r <= cell_size() looks at 3 x 3 x 3 cells at most.
  template <class F>
  void for_each(const Vec3& q, double r, F&& f) const {
    if (pts_.empty()) return;
    std::int64_t lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      // The cells of q - r and q + r, widened by far more than the rounding of these sums and of
      // the distance test, so that every point passing the test lies in the cells visited.
      const double s = r + 1e-9 * (r + std::abs(q[a]));
      const double fl = std::floor((q[a] - s - origin_[a]) / h_);
      const double fh = std::floor((q[a] + s - origin_[a]) / h_);
      if (!(fh >= 0) || !(fl <= static_cast<double>(n_[a] - 1))) return;  // outside the grid
      lo[a] = static_cast<std::int64_t>(std::max(fl, 0.0));
      hi[a] = static_cast<std::int64_t>(std::min(fh, static_cast<double>(n_[a] - 1)));
    }
    const double r2 = r * r;
    for (std::int64_t z = lo[2]; z <= hi[2]; ++z)
      for (std::int64_t y = lo[1]; y <= hi[1]; ++y) {
        // The cells of a row are adjacent in items_: one run covers lo[0] .. hi[0].
        const auto row = static_cast<std::size_t>((z * n_[1] + y) * n_[0]);
        const std::uint32_t end = start_[row + static_cast<std::size_t>(hi[0]) + 1];
        for (std::uint32_t k = start_[row + static_cast<std::size_t>(lo[0])]; k < end; ++k) {
          const std::uint32_t j = items_[k];
          const double d2 = (pts_[j] - q).squaredNorm();
          if (d2 <= r2) f(static_cast<std::size_t>(j), d2);
        }
      }
  }

  // Index of the nearest point within r other than `skip` (ties to the lower index), or -1;
  // *d2_out gets its squared distance (0 when there is none).
  std::int64_t nearest(const Vec3& q, double r, double* d2_out = nullptr,
                       std::int64_t skip = -1) const;

 private:
  const std::vector<Vec3>& pts_;
  Vec3 origin_ = Vec3::Zero();
  double h_ = 1;
  std::int64_t n_[3] = {1, 1, 1};
  // Counting sort of the point indices by cell: cell c holds items_[start_[c] .. start_[c + 1]),
  // in increasing index order.
  std::vector<std::uint32_t> start_, items_;
};

// Median nearest-neighbour distance (Angstrom); throws InputError for fewer than 2 points.
double median_nearest_distance(const std::vector<Vec3>& positions);

}  // namespace aet
