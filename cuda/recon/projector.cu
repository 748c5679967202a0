// PLACEHOLDER (being written): CUDA projector pair.
#include "aet/recon/projector.hpp"

namespace aet::detail {
Array3 forward_project_cuda(const Array3&, const TiltGeometry&, std::int64_t, std::int64_t, int) {
  throw InternalError("CUDA projector: not written yet");
}
Array3 back_project_cuda(const Array3&, const TiltGeometry&, std::int64_t, std::int64_t,
                         std::int64_t, int) {
  throw InternalError("CUDA projector: not written yet");
}
}  // namespace aet::detail
