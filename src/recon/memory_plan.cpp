// PLACEHOLDER (being written): device memory planning.
#include "aet/recon/memory_plan.hpp"

namespace aet {
ReconMemoryPlan plan_recon_memory(const ReconProblemSize&, std::uint64_t) {
  throw InternalError("plan_recon_memory: not written yet");
}
}  // namespace aet
