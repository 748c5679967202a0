// PLACEHOLDER (being written): GENFIRE.
#include "aet/core/error.hpp"
#include "recon_detail.hpp"

namespace aet::detail {
ReconResult run_genfire(const Array3&, const TiltGeometry&, const ReconOptions&, std::int64_t,
                        std::int64_t, std::int64_t) {
  throw InternalError("GENFIRE: not written yet");
}
}  // namespace aet::detail
