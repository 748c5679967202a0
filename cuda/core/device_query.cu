// Lists the visible CUDA devices for --device auto and `aet info --devices`.
#include <cuda_runtime.h>

#include <vector>

#include "device_query.hpp"

namespace aet::detail {

std::vector<CudaDeviceInfo> query_cuda_devices() {
  std::vector<CudaDeviceInfo> out;
  int count = 0;
  // No driver, no device or a masked device all mean "no GPU": not an error for auto.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_memory = p.totalGlobalMem;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    int previous = 0;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(i) == cudaSuccess) {
      std::size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) d.free_memory = free_b;
      cudaSetDevice(previous);
    }
    out.push_back(d);
  }
  cudaGetLastError();
  return out;
}

}  // namespace aet::detail
