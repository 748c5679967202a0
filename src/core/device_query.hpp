// The CUDA device query behind cuda_devices() (cuda/core/device_query.cu; CUDA builds only).
#pragma once

#include <vector>

#include "aet/core/device.hpp"

namespace aet::detail {

// The visible devices; empty when there is no driver or no device.
std::vector<CudaDeviceInfo> query_cuda_devices();

}  // namespace aet::detail
