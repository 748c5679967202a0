// Device memory planning for the CUDA solvers: how much a solve will hold, decided before any
// allocation, so that a problem too large for the card gets batching of the views or a clear
// error instead of an out-of-memory crash halfway through.
#pragma once

#include <cstdint>
#include <string>

#include "aet/recon/solvers.hpp"

namespace aet {

struct ReconProblemSize {
  std::int64_t nx = 0, ny = 0, nz = 0;                   // volume
  std::int64_t view_nx = 0, view_ny = 0, n_views = 0;   // view stack
  Algorithm algorithm = Algorithm::resire;
  bool support = false;
  double genfire_oversampling = 2.0;  // GENFIRE only
};

struct ReconMemoryPlan {
  std::int64_t views_per_batch = 0;  // == n_views when the whole stack is resident
  std::int64_t batches = 1;
  std::uint64_t device_bytes = 0;    // planned peak allocation of the solve
  std::string summary;               // one line for logs: sizes in MiB, batching
};

// Plans a solve for `available_bytes` of free device memory (a safety margin is kept inside).
// Throws InputError naming the sizes (GiB) when even one view per batch does not fit.
ReconMemoryPlan plan_recon_memory(const ReconProblemSize& size, std::uint64_t available_bytes);

}  // namespace aet
