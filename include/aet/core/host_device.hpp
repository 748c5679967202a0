// One spelling for functions that both the host compiler and nvcc compile, so that a CPU
// reference and a CUDA kernel can share literally the same arithmetic.
#pragma once

#if defined(__CUDACC__)
#define AET_HOST_DEVICE __host__ __device__
#else
#define AET_HOST_DEVICE
#endif
