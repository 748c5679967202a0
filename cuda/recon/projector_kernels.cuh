// Kernels of the CUDA Joseph projector pair, shared by projector.cu (host arrays in and out) and
// solvers.cu (device-resident RESIRE and SIRT). The per-thread code, in both arithmetics
// (Precision::reference, bit-identical to the CPU; Precision::single, the default), is in
// projector_math.cuh, where the tests run it on the CPU as well.
//
// forward_kernel: one thread per detector pixel (threads along i, one block row per pixel row,
// blockIdx.z the view); each thread walks its ray through the planes of the dominant axis and
// sums the bilinear samples in double, like the CPU. Optionally it also accumulates <b, p> and
// <p, p> for the R factors (block reduction in double, one atomicAdd per block).
//
// gather_kernel: the back projection as a gather, one thread per voxel (x fastest), all views
// looped inside the kernel: no atomics, deterministic, the exact transpose of forward_kernel in
// the same arithmetic.
#pragma once

#ifndef EIGEN_NO_CUDA
#define EIGEN_NO_CUDA  // Eigen is used on the host side only
#endif

#include <cuda_runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/recon/memory_plan.hpp"
#include "cuda_check.cuh"
#include "projector_math.cuh"

namespace aet::cuda::recon {

constexpr int kForwardThreads = 128;  // pixels per forward block (one pixel row)
constexpr int kGatherX = 32;          // voxels per gather block row (kGatherY rows)
constexpr int kReduceThreads = 256;   // element-wise and reduction kernels

// The arithmetic the projector pair uses on the GPU: single (the default) unless
// AET_CUDA_PROJECTOR=reference asks for the CPU's double-precision operations (bit-identical to
// the CPU reference; for checking and for measuring the difference), or the shape is too large
// for single's exact float coordinates.
inline Precision projector_precision(const Shape& s) {
  Precision p = Precision::single;
  if (const char* env = std::getenv("AET_CUDA_PROJECTOR"); env && *env) {
    if (std::strcmp(env, "reference") == 0)
      p = Precision::reference;
    else if (std::strcmp(env, "single") != 0)
      fail_input(std::string("AET_CUDA_PROJECTOR must be 'single' or 'reference', got '") + env +
                 "'");
  }
  if (p == Precision::single && !single_precision_fits(s)) p = Precision::reference;
  return p;
}

// Sums a and b over a 1D block (blockDim.x a multiple of 32, at most 1024) and adds the block's
// totals to target[0], target[1]. Every thread of the block must call it.
__device__ __forceinline__ void block_add2(double a, double b, double* target) {
  __shared__ double partial[2][32];
  const unsigned full = 0xffffffffu;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = static_cast<int>(blockDim.x + 31) >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_down_sync(full, a, o);
    b += __shfl_down_sync(full, b, o);
  }
  if (lane == 0) {
    partial[0][warp] = a;
    partial[1][warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < n_warps ? partial[0][lane] : 0.0;
    b = lane < n_warps ? partial[1][lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_down_sync(full, a, o);
      b += __shfl_down_sync(full, b, o);
    }
    if (lane == 0) {
      atomicAdd(target, a);
      atomicAdd(target + 1, b);
    }
  }
}

// ---- forward projection --------------------------------------------------------------------

// out[k] = view k of vol for the views of `rays`; with kMoments also moments[0] += <b, p> and
// moments[1] += <p, p> (b = measured, same layout as out).
template <bool kMoments, Precision kPrecision>
__global__ void __launch_bounds__(kForwardThreads)
    forward_kernel(const float* __restrict__ vol, const DeviceRays* __restrict__ rays,
                   long long vnx, long long vny, float* __restrict__ out,
                   const float* __restrict__ measured, double* __restrict__ moments) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const long long j = blockIdx.y;
  const long long k = blockIdx.z;
  double bp = 0.0, pp = 0.0;
  if (i < vnx) {
    const float p = project_ray<kPrecision>(vol, rays[k], i, j);
    const long long at = (k * vny + j) * vnx + i;
    out[at] = p;
    if (kMoments) {
      const double b = __ldg(measured + at);
      bp = b * static_cast<double>(p);
      pp = static_cast<double>(p) * static_cast<double>(p);
    }
  }
  if (kMoments) block_add2(bp, pp, moments);  // no early return above: all threads get here
}

template <Precision kPrecision>
void launch_forward_as(const float* vol, const DeviceRays* rays, long long n_views, const Shape& s,
                       float* out, const float* measured, double* moments, cudaStream_t stream) {
  const long long npix = s.pixels();
  const dim3 block(kForwardThreads, 1, 1);
  for (long long first = 0; first < n_views; first += kMaxGridYZ) {
    const long long count = n_views - first < kMaxGridYZ ? n_views - first : kMaxGridYZ;
    const dim3 grid(static_cast<unsigned>((s.vnx + kForwardThreads - 1) / kForwardThreads),
                    static_cast<unsigned>(s.vny), static_cast<unsigned>(count));
    if (measured) {
      forward_kernel<true, kPrecision><<<grid, block, 0, stream>>>(
          vol, rays + first, s.vnx, s.vny, out + first * npix, measured + first * npix, moments);
    } else {
      forward_kernel<false, kPrecision><<<grid, block, 0, stream>>>(
          vol, rays + first, s.vnx, s.vny, out + first * npix, nullptr, nullptr);
    }
    AET_CUDA_CHECK(cudaGetLastError());
  }
}

// Forward projection of the n_views views whose rays start at `rays` into `out` (view-major);
// with `measured` (same layout) also accumulates moments[0..1] (see forward_kernel).
inline void launch_forward(Precision precision, const float* vol, const DeviceRays* rays,
                           long long n_views, const Shape& s, float* out, const float* measured,
                           double* moments, cudaStream_t stream) {
  if (precision == Precision::single)
    launch_forward_as<Precision::single>(vol, rays, n_views, s, out, measured, moments, stream);
  else
    launch_forward_as<Precision::reference>(vol, rays, n_views, s, out, measured, moments, stream);
}

// ---- back projection (gather) --------------------------------------------------------------

// What the gather does with a voxel's back projection u.
enum class GatherMode : int {
  accumulate = 0,  // out += u
  resire = 1,      // x = constrain(x + step u)
  sirt = 2         // x = constrain(x + step col_inv u)
};

// The solvers' update of one voxel, in the CPU's float operations (solvers.cpp).
template <int kMode>
__device__ __forceinline__ float updated_voxel(float x, float u, const float* __restrict__ col,
                                               const unsigned char* __restrict__ mask, long long v,
                                               float step, bool positivity) {
  if (kMode == static_cast<int>(GatherMode::resire))
    x = __fadd_rn(x, __fmul_rn(step, u));
  else
    x = __fadd_rn(x, __fmul_rn(__fmul_rn(step, __ldg(col + v)), u));
  if (positivity && x < 0.0f) x = 0.0f;
  if (mask && mask[v] == 0) x = 0.0f;
  return x;
}

template <int kMode, Precision kPrecision>
__global__ void __launch_bounds__(kGatherX* kGatherY)
    gather_kernel(const float* __restrict__ views, const DeviceRays* __restrict__ rays,
                  long long n_views, long long vnx, long long vny, long long nx, long long ny,
                  float* __restrict__ out, const float* __restrict__ col,
                  const unsigned char* __restrict__ mask, float step, bool positivity) {
  const long long x = static_cast<long long>(blockIdx.x) * kGatherX + threadIdx.x;
  const long long y = static_cast<long long>(blockIdx.y) * kGatherY + threadIdx.y;
  const long long z = blockIdx.z;
  if (x >= nx || y >= ny) return;  // no block-wide synchronisation in this kernel
  const float sum = gather_voxel<kPrecision>(views, rays, n_views, vnx, vny, x, y, z);
  const long long v = (z * ny + y) * nx + x;
  if (kMode == static_cast<int>(GatherMode::accumulate))
    out[v] = __fadd_rn(out[v], sum);
  else
    out[v] = updated_voxel<kMode>(out[v], sum, col, mask, v, step, positivity);
}

template <Precision kPrecision>
void launch_gather_as(const float* views, const DeviceRays* rays, long long n_views, const Shape& s,
                      float* out, GatherMode mode, const float* col, const unsigned char* mask,
                      float step, bool positivity, cudaStream_t stream) {
  const dim3 block(kGatherX, kGatherY, 1);
  const dim3 grid(static_cast<unsigned>((s.nx + kGatherX - 1) / kGatherX),
                  static_cast<unsigned>((s.ny + kGatherY - 1) / kGatherY),
                  static_cast<unsigned>(s.nz));
  switch (mode) {
    case GatherMode::accumulate:
      gather_kernel<0, kPrecision><<<grid, block, 0, stream>>>(
          views, rays, n_views, s.vnx, s.vny, s.nx, s.ny, out, col, mask, step, positivity);
      break;
    case GatherMode::resire:
      gather_kernel<1, kPrecision><<<grid, block, 0, stream>>>(
          views, rays, n_views, s.vnx, s.vny, s.nx, s.ny, out, col, mask, step, positivity);
      break;
    case GatherMode::sirt:
      gather_kernel<2, kPrecision><<<grid, block, 0, stream>>>(
          views, rays, n_views, s.vnx, s.vny, s.nx, s.ny, out, col, mask, step, positivity);
      break;
  }
  AET_CUDA_CHECK(cudaGetLastError());
}

// Back projection of the n_views views at `views` (rays from `rays`) into out, as `mode` says.
// col (sirt) and mask (optional) are volumes like out.
inline void launch_gather(Precision precision, const float* views, const DeviceRays* rays,
                          long long n_views, const Shape& s, float* out, GatherMode mode,
                          const float* col, const unsigned char* mask, float step, bool positivity,
                          cudaStream_t stream) {
  if (precision == Precision::single)
    launch_gather_as<Precision::single>(views, rays, n_views, s, out, mode, col, mask, step,
                                        positivity, stream);
  else
    launch_gather_as<Precision::reference>(views, rays, n_views, s, out, mode, col, mask, step,
                                           positivity, stream);
}

// ---- devices and memory --------------------------------------------------------------------

// `index` after checking that such a device is visible (CUDA_VISIBLE_DEVICES applies).
inline int checked_device(int index) {
  return cuda::checked_device(index);
}

// Free memory of the current device, capped by AET_CUDA_MEMORY_LIMIT (bytes) when set: tests
// and shared GPUs use it to make the planner batch.
inline std::uint64_t available_device_bytes() {
  std::uint64_t limit = UINT64_MAX;
  if (const char* env = std::getenv("AET_CUDA_MEMORY_LIMIT"); env && *env) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno != 0 || end == env || *end != '\0' || env[0] == '-')
      fail_input(std::string("AET_CUDA_MEMORY_LIMIT must be a number of bytes, got '") + env + "'");
    limit = v;
  }
  std::size_t free_bytes = 0, total_bytes = 0;
  AET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes < limit ? static_cast<std::uint64_t>(free_bytes) : limit;
}

}  // namespace aet::cuda::recon
