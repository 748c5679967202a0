// The intensity normalisation of the network's volumes: the median height of the strongest local
// maxima, found with order statistics only.
#include "aet/networks/normalisation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "aet/core/error.hpp"

namespace aet::nn {

double normalisation_scale(const Array3& v) {
  if (v.empty()) fail_input("normalisation: the volume is empty");
  for (float x : v.vector())
    if (!std::isfinite(x)) fail_input("normalisation: the volume holds non-finite values");
  const std::int64_t nx = v.nx(), ny = v.ny(), nz = v.nz();
  // Local maxima: positive and >= every neighbour, where an equal neighbour earlier in memory
  // wins, so that a plateau counts once.
  std::vector<float> peaks;
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const float c = v(x, y, z);
        if (!(c > 0.0f)) continue;
        bool is_max = true;
        for (std::int64_t dz = -1; dz <= 1 && is_max; ++dz) {
          const std::int64_t zz = z + dz;
          if (zz < 0 || zz >= nz) continue;
          for (std::int64_t dy = -1; dy <= 1 && is_max; ++dy) {
            const std::int64_t yy = y + dy;
            if (yy < 0 || yy >= ny) continue;
            for (std::int64_t dx = -1; dx <= 1; ++dx) {
              const std::int64_t xx = x + dx;
              if (xx < 0 || xx >= nx || (dx == 0 && dy == 0 && dz == 0)) continue;
              const float o = v(xx, yy, zz);
              const bool earlier = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
              if (o > c || (o == c && earlier)) {
                is_max = false;
                break;
              }
            }
          }
        }
        if (is_max) peaks.push_back(c);
      }
  if (peaks.empty()) fail_input("normalisation: the volume has no positive voxel");
  std::sort(peaks.begin(), peaks.end(), [](float a, float b) { return a > b; });
  // The 4th highest peak as reference: up to three isolated hot voxels cannot set the scale.
  const double reference = peaks[std::min<std::size_t>(3, peaks.size() - 1)];
  std::size_t strong = 0;
  while (strong < peaks.size() && peaks[strong] >= 0.5 * reference) ++strong;
  // Median of the strong peaks (sorted in descending order).
  const std::size_t mid = strong / 2;
  return strong % 2 == 1 ? static_cast<double>(peaks[mid])
                         : 0.5 * (static_cast<double>(peaks[mid - 1]) + peaks[mid]);
}

double normalise_volume(Array3& v) {
  const double scale = normalisation_scale(v);
  const double inv = 1.0 / scale;
  for (float& x : v.vector()) x = static_cast<float>(x * inv);
  return scale;
}

}  // namespace aet::nn
