// The mirror images of flip averaging (aet augment --flips): torch-free, so that the CLI checks
// --flips in every build, and the network code (network.hpp) uses the same rule.
#pragma once

#include <cstdint>
#include <vector>

#include "aet/core/array.hpp"

namespace aet::nn {

// The mirror images flip averaging uses, in order: a bit mask each (1 = x, 2 = y, 4 = z reversed,
// index i -> n - 1 - i). 2 gives {none, xyz}, 4 {none, xy, xz, yz}, 8 all. InputError otherwise.
std::vector<int> flip_masks(int flips);

// The automatic choice (a flips setting of 0): 8 mirror images, halved while flips x voxels
// exceeds kAutoFlipBudget, i.e. 8 up to 160^3 voxels, 4 up to 201^3, 2 up to 253^3 and 1 beyond
// (a 290^3 particle of 20,000 atoms): the network then never costs more than 8 passes of a
// 160^3 volume, while the refinement that follows it removes most of what the averaging gains
// (docs/network.md).
constexpr double kAutoFlipBudget = 8.0 * 160 * 160 * 160;
int auto_flips(std::int64_t voxels);
// `flips`, or auto_flips(voxels) when it is 0.
inline int resolve_flips(int flips, std::int64_t voxels) {
  return flips > 0 ? flips : auto_flips(voxels);
}
// `volume` with the axes in `mask` reversed (its own inverse).
Array3 flip_volume(const Array3& volume, int mask);

}  // namespace aet::nn
