// The element-wise kernels of the device-resident RESIRE and SIRT plans (grid-stride, 64-bit
// indices) and their launches; included by solvers.cu only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "projector_kernels.cuh"

namespace aet::cuda::recon {

constexpr std::int64_t kMaxBlocks = 8192;  // grid-stride beyond

__global__ void fill_kernel(float* __restrict__ a, long long n, float value) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride)
    a[e] = value;
}

// *peak_bits = max(*peak_bits, bits of the largest positive element). Non-negative floats order
// like their bit patterns, so an unsigned atomicMax finds the float maximum.
__global__ void max_positive_kernel(const float* __restrict__ a, long long n,
                                    unsigned* __restrict__ peak_bits) {
  unsigned best = 0;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float v = a[e];
    if (v > 0.0f) {
      const unsigned bits = __float_as_uint(v);
      best = bits > best ? bits : best;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned other = __shfl_down_sync(0xffffffffu, best, o);
    best = other > best ? other : best;
  }
  if ((threadIdx.x & 31) == 0 && best != 0) atomicMax(peak_bits, best);
}

// detail::invert_sums (solvers.cpp) on the device: 1 / v above 1e-6 of the peak, 0 elsewhere.
__global__ void invert_kernel(float* __restrict__ a, long long n,
                              const unsigned* __restrict__ peak_bits) {
  const float floor_value = __fmul_rn(__uint_as_float(*peak_bits), 1e-6f);
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float v = a[e];
    a[e] = v > floor_value ? __fdiv_rn(1.0f, v) : 0.0f;
  }
}

// r holds p = A x. With moments (whose [0], [1] hold <b, p>, <p, p>), adds sum |b - l p| and
// sum (b - l p)^2 to moments[2], [3]. With write, turns r into b - p, times row when given.
__global__ void residual_kernel(const float* __restrict__ b, float* __restrict__ r,
                                const float* __restrict__ row, long long n,
                                double* __restrict__ moments, bool write) {
  double l = 0.0;
  if (moments) l = moments[1] > 0.0 ? moments[0] / moments[1] : 0.0;
  double diff = 0.0, square = 0.0;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float bv = b[e], pv = r[e];
    if (moments) {
      const double d = static_cast<double>(bv) - l * static_cast<double>(pv);
      diff += fabs(d);
      square += d * d;
    }
    if (write) {
      float res = __fsub_rn(bv, pv);
      if (row) res = __fmul_rn(res, row[e]);
      r[e] = res;
    }
  }
  if (moments) cuda::recon::block_add2(diff, square, moments + 2);  // uniform branch
}

// The batched plan's update from the summed back projection u.
template <int kMode>
__global__ void update_kernel(float* __restrict__ x, const float* __restrict__ u,
                              const float* __restrict__ col, const unsigned char* __restrict__ mask,
                              long long n, float step, bool positivity) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride)
    x[e] = cuda::recon::updated_voxel<kMode>(x[e], u[e], col, mask, e, step, positivity);
}

inline void fill(float* a, long long n, float value, cudaStream_t s) {
  const unsigned grid = cuda::blocks_for(n, kReduceThreads, kMaxBlocks);
  fill_kernel<<<grid, kReduceThreads, 0, s>>>(a, n, value);
  AET_CUDA_CHECK(cudaGetLastError());
}

// detail::invert_sums on a device array; `peak` is one unsigned of scratch.
inline void invert_sums_device(float* a, long long n, unsigned* peak, cudaStream_t s) {
  const unsigned grid = cuda::blocks_for(n, kReduceThreads, kMaxBlocks);
  AET_CUDA_CHECK(cudaMemsetAsync(peak, 0, sizeof(unsigned), s));
  max_positive_kernel<<<grid, kReduceThreads, 0, s>>>(a, n, peak);
  AET_CUDA_CHECK(cudaGetLastError());
  invert_kernel<<<grid, kReduceThreads, 0, s>>>(a, n, peak);
  AET_CUDA_CHECK(cudaGetLastError());
}

inline void launch_residual(const float* b, float* r, const float* row, long long n,
                            double* moments, bool write, cudaStream_t s) {
  const unsigned grid = cuda::blocks_for(n, kReduceThreads, kMaxBlocks);
  residual_kernel<<<grid, kReduceThreads, 0, s>>>(b, r, row, n, moments, write);
  AET_CUDA_CHECK(cudaGetLastError());
}

// FISTA extrapolation (solvers.cpp's Momentum): prev <- x_{k+1}, x <- x_{k+1} + beta (x_{k+1} -
// x_k).
__global__ void momentum_kernel(float* __restrict__ x, float* __restrict__ prev, long long n,
                                float beta) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float xn = x[i];
    x[i] = __fadd_rn(xn, __fmul_rn(beta, __fsub_rn(xn, prev[i])));  // no FMA: as the CPU
    prev[i] = xn;
  }
}

}  // namespace aet::cuda::recon
