// Mirror images for flip averaging (include/aet/networks/flips.hpp).
#include "aet/networks/flips.hpp"

#include <algorithm>
#include <string>

#include "aet/core/error.hpp"

namespace aet::nn {

std::vector<int> flip_masks(int flips) {
  switch (flips) {
    case 1:
      return {0};
    case 2:
      return {0, 7};
    case 4:
      return {0, 3, 5, 6};
    case 8:
      return {0, 1, 2, 3, 4, 5, 6, 7};
    default:
      fail_input("flips must be 1, 2, 4 or 8 (got " + std::to_string(flips) + ")");
  }
}

int auto_flips(std::int64_t voxels) {
  int flips = 8;
  while (flips > 1 && static_cast<double>(flips) * static_cast<double>(voxels) > kAutoFlipBudget)
    flips /= 2;
  return flips;
}

Array3 flip_volume(const Array3& volume, int mask) {
  Array3 out(volume.nx(), volume.ny(), volume.nz());
  out.voxel_size = volume.voxel_size;
  std::copy(volume.origin, volume.origin + 3, out.origin);
  const std::int64_t nx = volume.nx(), ny = volume.ny(), nz = volume.nz();
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y) {
      const float* src =
          volume.data() + volume.index(0, (mask & 2) ? ny - 1 - y : y, (mask & 4) ? nz - 1 - z : z);
      float* dst = out.data() + out.index(0, y, z);
      if (mask & 1)
        std::reverse_copy(src, src + nx, dst);
      else
        std::copy(src, src + nx, dst);
    }
  return out;
}

}  // namespace aet::nn
