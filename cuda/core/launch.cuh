// Launch sizes of the grid-stride kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace aet::cuda {

// Blocks of `block` threads for a grid-stride loop over n items: one thread per item, at least
// one block and at most max_blocks (the threads then stride over the rest).
inline unsigned blocks_for(std::int64_t n, int block, std::int64_t max_blocks) {
  const std::int64_t blocks = (n + block - 1) / block;
  return static_cast<unsigned>(std::min(std::max<std::int64_t>(blocks, 1), max_blocks));
}

}  // namespace aet::cuda
