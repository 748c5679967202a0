// The mirror images of flip averaging (aet augment --flips): torch-free, so that the CLI checks
// --flips in every build, and the network code (network.hpp) uses the same rule.
#pragma once

#include <vector>

#include "aet/core/array.hpp"

namespace aet::nn {

// The mirror images flip averaging uses, in order: a bit mask each (1 = x, 2 = y, 4 = z reversed,
// index i -> n - 1 - i). 2 gives {none, xyz}, 4 {none, xy, xz, yz}, 8 all. InputError otherwise.
std::vector<int> flip_masks(int flips);
// `volume` with the axes in `mask` reversed (its own inverse).
Array3 flip_volume(const Array3& volume, int mask);

}  // namespace aet::nn
