// Thread count for CPU kernels (--threads), and a static-partition parallel loop.
// Work is split into fixed chunks so results never depend on scheduling.
#pragma once

#include <cstdint>
#include <functional>

namespace aet {

// 0 = all hardware threads. Set once by the CLI; read by every CPU kernel.
void set_num_threads(int n);
int num_threads();

// Calls body(begin, end) on disjoint ranges covering [0, n) from up to num_threads() threads.
// Exceptions from the body are rethrown in the caller (the first one).
void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace aet
