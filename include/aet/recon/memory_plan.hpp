// Device memory planning for the CUDA solvers: how much a solve will hold, decided before any
// allocation, so that a problem too large for the card gets batching of the views or a clear
// error instead of an out-of-memory crash halfway through.
#pragma once

#include <cstdint>
#include <string>

#include "aet/recon/solvers.hpp"

namespace aet {

struct ReconProblemSize {
  std::int64_t nx = 0, ny = 0, nz = 0;                 // volume
  std::int64_t view_nx = 0, view_ny = 0, n_views = 0;  // view stack
  Algorithm algorithm = Algorithm::resire;
  bool support = false;
  bool accelerate = false;  // RESIRE / SIRT with FISTA momentum: one more volume (x_{k-1})
  double genfire_oversampling = 2.0;  // GENFIRE only
};

struct ReconMemoryPlan {
  std::int64_t views_per_batch = 0;  // == n_views when the whole stack is resident
  std::int64_t batches = 1;
  std::uint64_t device_bytes = 0;  // planned peak allocation of the solve
  std::uint64_t usable_bytes = 0;  // what the plan could use: available minus the margin
  std::string summary;             // one line for logs: sizes in MiB, batching
  bool batched() const { return batches > 1; }
};

// Plans a solve for `available_bytes` of free device memory (a safety margin is kept inside).
// Throws InputError naming the sizes (GiB) when even one view per batch does not fit, and for
// non-positive sizes.
//
// Bytes (f = 4, one float; V = nx ny nz f; S(k) = k view_nx view_ny f):
//   RESIRE resident   V (x) + S(n) (views b) + S(n) (residual) [+ nx ny nz bytes: support mask]
//   SIRT resident     RESIRE + V (column sums) + S(n) (row sums)
//   batched           the same with S(views_per_batch) and one more V (the update volume)
//   accelerated       RESIRE / SIRT + V (the previous iterate of the momentum)
//   FBP               V + S(n), or V + S(views_per_batch) (the back projection accumulates)
//   GENFIRE           2 complex-float grids of prod round(oversampling n) + a 1-byte mask per
//                     grid element + 2 V; never batched
ReconMemoryPlan plan_recon_memory(const ReconProblemSize& size, std::uint64_t available_bytes);

// The part of `available_bytes` a plan may fill: a safety margin of 5% + 64 MiB (allocator
// granularity and fragmentation, kernel stacks, library workspaces) is kept back.
std::uint64_t usable_device_bytes(std::uint64_t available_bytes);

}  // namespace aet
