// PLACEHOLDER (being written): device-resident RESIRE / SIRT.
#include "aet/core/error.hpp"
#include "../../src/recon/recon_detail.hpp"

namespace aet::detail {
ReconResult run_iterative_cuda(const Array3&, const TiltGeometry&, const ReconOptions&,
                               std::int64_t, std::int64_t, std::int64_t) {
  throw InternalError("CUDA solvers: not written yet");
}
}  // namespace aet::detail
