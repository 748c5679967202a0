// Kernels of the CUDA Joseph projector pair, shared by projector.cu (host arrays in and out) and
// solvers.cu (device-resident RESIRE and SIRT).
//
// Both kernels reproduce the CPU reference (src/recon/projector_cpu.cpp) operation for operation:
// the per-view ray parameters come from the same make_rays() on the host, sample positions are
// computed in double in the CPU's order and the interpolation weights in float, all with the
// explicitly rounded intrinsics (__dadd_rn, __fmul_rn, ...) so that nvcc cannot contract them into
// FMAs. The x86-64 reference is compiled without FMA, so the samples and weights are the same
// bits on both sides, and the results differ only where the summation order does.
//
// forward_kernel: one thread per detector pixel (threads along i, one block row per pixel row,
// blockIdx.z the view); each thread walks its ray through the planes of the dominant axis and
// sums the bilinear samples in double, like the CPU. Optionally it also accumulates <b, p> and
// <p, p> for the R factors (block reduction in double, one atomicAdd per block).
//
// gather_kernel: the back projection as a gather, one thread per voxel (x fastest), all views
// looped inside the kernel: no atomics, deterministic, and each voxel sums its contributions in
// the CPU scatter's order (view, pixel row, pixel), so it is the exact transpose of
// forward_kernel. In plane m of a view the voxel (x1, x2) receives from pixel (i, j) iff
// floor(a1) is x1 - 1 or x1 and floor(a2) is x2 - 1 or x2, a = base + i di + j dj + m slope. The
// candidates are the pixels in the bounding box of the preimage of [x1-1, x1+1] x [x2-1, x2+1]
// under the 2x2 affine map (i, j) -> a; each is then tested exactly. The box only has to contain
// every pixel that passes the test, so it is widened by kBoxMargin against rounding in the
// inverse map (its error is ~1e-12 pixel) rather than by a whole pixel, which would double the
// candidates.
#pragma once

#ifndef EIGEN_NO_CUDA
#define EIGEN_NO_CUDA  // Eigen is used on the host side only
#endif

#include <cuda_runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/cuda_check.cuh"
#include "aet/core/error.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/recon/memory_plan.hpp"
#include "joseph_rays.hpp"  // src/recon: the CPU's ray parametrisation

namespace aet::cuda::recon {

constexpr int kForwardThreads = 128;        // pixels per forward block (one pixel row)
constexpr int kGatherX = 32, kGatherY = 8;  // voxels per gather block
constexpr int kReduceThreads = 256;         // element-wise and reduction kernels
constexpr long long kMaxGridYZ = 65535;     // CUDA limit on gridDim.y and gridDim.z
constexpr double kBoxMargin = 1e-3;         // pixels, see the file comment

// One view's rays as the kernels need them (built on the host from joseph::make_rays).
struct DeviceRays {
  double base[2], di[2], dj[2], slope[2];  // as joseph::ViewRays
  double weight;                           // path length between planes
  double inv[4];            // inverse of [[di0, dj0], [di1, dj1]], row-major (gather only)
  double half_i, half_j;    // half widths in (i, j) of the preimage of a square of half width 1
  long long n_d, n_1, n_2;  // volume size along the dominant axis and the in-plane axes
  long long s_d, s_1, s_2;  // volume strides along the same axes
  int axis_d, axis_1, axis_2;
  int invertible;  // 0: no candidate box, the gather scans the whole view (never for rotations)
};

struct Shape {
  long long nx, ny, nz;  // volume
  long long vnx, vny;    // one view
  long long voxels() const { return nx * ny * nz; }
  long long pixels() const { return vnx * vny; }
};

// Launch limits of the kernels' grids: InputError instead of a failed launch.
inline void check_shape(const Shape& s) {
  if (s.vny > kMaxGridYZ)
    fail_input("the CUDA projector handles views up to " + std::to_string(kMaxGridYZ) +
               " pixels high, got " + std::to_string(s.vny));
  if (s.nz > kMaxGridYZ || (s.ny + kGatherY - 1) / kGatherY > kMaxGridYZ)
    fail_input("the CUDA projector handles volumes up to " + std::to_string(kMaxGridYZ) +
               " voxels deep, got " + std::to_string(s.nx) + " x " + std::to_string(s.ny) + " x " +
               std::to_string(s.nz));
}

inline std::vector<DeviceRays> make_device_rays(const TiltGeometry& geometry, const Shape& s,
                                                double pixel) {
  const detail::joseph::VolumeShape vol = detail::joseph::shape_of(s.nx, s.ny, s.nz);
  std::vector<DeviceRays> out;
  out.reserve(geometry.size());
  for (const ViewGeometry& g : geometry) {
    const detail::joseph::ViewRays r = detail::joseph::make_rays(g, vol, s.vnx, s.vny, pixel);
    DeviceRays d{};
    for (int a = 0; a < 2; ++a) {
      d.base[a] = r.base[a];
      d.di[a] = r.di[a];
      d.dj[a] = r.dj[a];
      d.slope[a] = r.slope[a];
    }
    d.weight = r.weight;
    d.axis_d = r.axis_d;
    d.axis_1 = r.axis_1;
    d.axis_2 = r.axis_2;
    d.n_d = vol.n[r.axis_d];
    d.n_1 = vol.n[r.axis_1];
    d.n_2 = vol.n[r.axis_2];
    d.s_d = vol.stride[r.axis_d];
    d.s_1 = vol.stride[r.axis_1];
    d.s_2 = vol.stride[r.axis_2];
    // |det| = 1 / |d_D| >= 1 for a rotation (D is the dominant axis), so this guard never fires
    // for valid geometry; without it a degenerate map would give an empty box and lose rays.
    const double det = r.di[0] * r.dj[1] - r.dj[0] * r.di[1];
    d.invertible = std::isfinite(det) && std::abs(det) > 1e-9 ? 1 : 0;
    if (d.invertible) {
      d.inv[0] = r.dj[1] / det;
      d.inv[1] = -r.dj[0] / det;
      d.inv[2] = -r.di[1] / det;
      d.inv[3] = r.di[0] / det;
      d.half_i = std::abs(d.inv[0]) + std::abs(d.inv[1]);
      d.half_j = std::abs(d.inv[2]) + std::abs(d.inv[3]);
      if (!std::isfinite(d.half_i) || !std::isfinite(d.half_j)) d.invertible = 0;
    }
    out.push_back(d);
  }
  return out;
}

// ---- device helpers ------------------------------------------------------------------------

// floor() as the CPU's floor_index (truncate, then step down for negative non-integers).
__device__ __forceinline__ long long floor_ll(double a) {
  const long long t = static_cast<long long>(a);
  return t - (a < static_cast<double>(t) ? 1 : 0);
}

// base + i di + j dj + m slope, rounded exactly as the CPU's (base + i di + j dj) + m slope.
__device__ __forceinline__ double ray_coord(double base, double di, double dj, double slope,
                                            double i, double j, double m) {
  const double off = __dadd_rn(__dadd_rn(base, __dmul_rn(i, di)), __dmul_rn(j, dj));
  return __dadd_rn(off, __dmul_rn(m, slope));
}

// (1 - w) a + w b in the CPU's float operations.
__device__ __forceinline__ float lerp_f(float w, float a, float b) {
  return __fadd_rn(__fmul_rn(__fsub_rn(1.0f, w), a), __fmul_rn(w, b));
}

__device__ __forceinline__ long long min_ll(long long a, long long b) {
  return a < b ? a : b;
}
__device__ __forceinline__ long long max_ll(long long a, long long b) {
  return a > b ? a : b;
}

// The device twin of joseph::clip_planes (a superset of planes is harmless: samples outside the
// volume add exactly zero).
__device__ __forceinline__ void clip_planes_d(double off, double slope, double lower, double upper,
                                              long long& lo, long long& hi) {
  if (slope == 0.0) {
    if (!(off > lower && off < upper)) hi = lo - 1;
    return;
  }
  double t0 = (lower - off) / slope, t1 = (upper - off) / slope;
  if (t0 > t1) {
    const double t = t0;
    t0 = t1;
    t1 = t;
  }
  const double big = 4.0e18;
  t0 = fmax(-big, fmin(big, t0));
  t1 = fmax(-big, fmin(big, t1));
  lo = max_ll(lo, static_cast<long long>(floor(t0)));
  hi = min_ll(hi, static_cast<long long>(ceil(t1)));
}

// Index along `axis` (0 x, 1 y, 2 z) without a local array (which would live in local memory).
__device__ __forceinline__ long long pick_axis(int axis, long long x, long long y, long long z) {
  return axis == 0 ? x : (axis == 1 ? y : z);
}

// Converts a double bound to an index clamped to [lo, hi] before the conversion (no overflow).
__device__ __forceinline__ long long clamp_index(double t, long long lo, long long hi) {
  t = fmin(fmax(t, static_cast<double>(lo)), static_cast<double>(hi));
  return static_cast<long long>(t);
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

// Line integral of pixel (i, j) of view r through vol: forward_project_cpu's inner loop.
__device__ __forceinline__ float project_ray(const float* __restrict__ vol, const DeviceRays& r,
                                             long long i, long long j) {
  const double fi = static_cast<double>(i), fj = static_cast<double>(j);
  const double off1 =
      __dadd_rn(__dadd_rn(r.base[0], __dmul_rn(fi, r.di[0])), __dmul_rn(fj, r.dj[0]));
  const double off2 =
      __dadd_rn(__dadd_rn(r.base[1], __dmul_rn(fi, r.di[1])), __dmul_rn(fj, r.dj[1]));
  const long long nD = r.n_d, n1 = r.n_1, n2 = r.n_2;
  const long long sD = r.s_d, s1 = r.s_1, s2 = r.s_2;
  const double slope1 = r.slope[0], slope2 = r.slope[1];
  long long lo = 0, hi = nD - 1;
  clip_planes_d(off1, slope1, -1.0, static_cast<double>(n1), lo, hi);
  clip_planes_d(off2, slope2, -1.0, static_cast<double>(n2), lo, hi);
  lo = max_ll(lo, 0);
  hi = min_ll(hi, nD - 1);
  // Interior test: both neighbours inside when 0 <= i < n - 1 (unsigned compare).
  const unsigned long long last1 = static_cast<unsigned long long>(n1 - 1),
                           last2 = static_cast<unsigned long long>(n2 - 1);
  double acc = 0.0;
  for (long long m = lo; m <= hi; ++m) {
    const double fm = static_cast<double>(m);
    const double a1 = __dadd_rn(off1, __dmul_rn(fm, slope1));
    const double a2 = __dadd_rn(off2, __dmul_rn(fm, slope2));
    const long long i1 = floor_ll(a1), i2 = floor_ll(a2);
    const float w1 = __double2float_rn(__dsub_rn(a1, static_cast<double>(i1)));
    const float w2 = __double2float_rn(__dsub_rn(a2, static_cast<double>(i2)));
    // Signed offset: only neighbours inside the volume are read.
    const long long at = m * sD + i1 * s1 + i2 * s2;
    float v;
    if (static_cast<unsigned long long>(i1) < last1 &&
        static_cast<unsigned long long>(i2) < last2) {
      v = lerp_f(w1, __ldg(vol + at), __ldg(vol + at + s1));
      if (w2 != 0.0f)
        v = lerp_f(w2, v, lerp_f(w1, __ldg(vol + at + s2), __ldg(vol + at + s1 + s2)));
    } else {
      const bool lo1 = i1 >= 0 && i1 < n1, hi1 = i1 + 1 >= 0 && i1 + 1 < n1;
      const bool lo2 = i2 >= 0 && i2 < n2, hi2 = i2 + 1 >= 0 && i2 + 1 < n2;
      float row0 = 0.0f, row1 = 0.0f;
      if (lo2) {
        if (lo1) row0 = __fadd_rn(row0, __fmul_rn(__fsub_rn(1.0f, w1), __ldg(vol + at)));
        if (hi1) row0 = __fadd_rn(row0, __fmul_rn(w1, __ldg(vol + at + s1)));
      }
      if (hi2) {
        if (lo1) row1 = __fadd_rn(row1, __fmul_rn(__fsub_rn(1.0f, w1), __ldg(vol + at + s2)));
        if (hi1) row1 = __fadd_rn(row1, __fmul_rn(w1, __ldg(vol + at + s1 + s2)));
      }
      v = lerp_f(w2, row0, row1);
    }
    acc = __dadd_rn(acc, static_cast<double>(v));
  }
  return __double2float_rn(__dmul_rn(acc, r.weight));
}

// ---- forward projection --------------------------------------------------------------------

// out[k] = view k of vol for the views of `rays`; with kMoments also moments[0] += <b, p> and
// moments[1] += <p, p> (b = measured, same layout as out).
template <bool kMoments>
__global__ void __launch_bounds__(kForwardThreads)
    forward_kernel(const float* __restrict__ vol, const DeviceRays* __restrict__ rays,
                   long long vnx, long long vny, float* __restrict__ out,
                   const float* __restrict__ measured, double* __restrict__ moments) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const long long j = blockIdx.y;
  const long long k = blockIdx.z;
  double bp = 0.0, pp = 0.0;
  if (i < vnx) {
    const float p = project_ray(vol, rays[k], i, j);
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

// Forward projection of the n_views views whose rays start at `rays` into `out` (view-major);
// with `measured` (same layout) also accumulates moments[0..1] (see forward_kernel).
inline void launch_forward(const float* vol, const DeviceRays* rays, long long n_views,
                           const Shape& s, float* out, const float* measured, double* moments,
                           cudaStream_t stream) {
  const long long npix = s.pixels();
  const dim3 block(kForwardThreads, 1, 1);
  for (long long first = 0; first < n_views; first += kMaxGridYZ) {
    const long long count = n_views - first < kMaxGridYZ ? n_views - first : kMaxGridYZ;
    const dim3 grid(static_cast<unsigned>((s.vnx + kForwardThreads - 1) / kForwardThreads),
                    static_cast<unsigned>(s.vny), static_cast<unsigned>(count));
    if (measured) {
      forward_kernel<true><<<grid, block, 0, stream>>>(
          vol, rays + first, s.vnx, s.vny, out + first * npix, measured + first * npix, moments);
    } else {
      forward_kernel<false><<<grid, block, 0, stream>>>(vol, rays + first, s.vnx, s.vny,
                                                        out + first * npix, nullptr, nullptr);
    }
    AET_CUDA_CHECK(cudaGetLastError());
  }
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

template <int kMode>
__global__ void __launch_bounds__(kGatherX* kGatherY)
    gather_kernel(const float* __restrict__ views, const DeviceRays* __restrict__ rays,
                  long long n_views, long long vnx, long long vny, long long nx, long long ny,
                  float* __restrict__ out, const float* __restrict__ col,
                  const unsigned char* __restrict__ mask, float step, bool positivity) {
  const long long x = static_cast<long long>(blockIdx.x) * kGatherX + threadIdx.x;
  const long long y = static_cast<long long>(blockIdx.y) * kGatherY + threadIdx.y;
  const long long z = blockIdx.z;
  if (x >= nx || y >= ny) return;  // no block-wide synchronisation in this kernel
  const long long npix = vnx * vny;
  float sum = 0.0f;
  for (long long k = 0; k < n_views; ++k) {
    const DeviceRays& r = rays[k];
    const long long m = pick_axis(r.axis_d, x, y, z);
    const long long x1 = pick_axis(r.axis_1, x, y, z), x2 = pick_axis(r.axis_2, x, y, z);
    const double fm = static_cast<double>(m);
    // Candidate pixels: the box around the preimage of the voxel's 2 x 2 neighbourhood.
    long long i_lo = 0, i_hi = vnx - 1, j_lo = 0, j_hi = vny - 1;
    if (r.invertible) {
      const double e1 = static_cast<double>(x1) - (r.base[0] + fm * r.slope[0]);
      const double e2 = static_cast<double>(x2) - (r.base[1] + fm * r.slope[1]);
      const double ic = r.inv[0] * e1 + r.inv[1] * e2;
      const double jc = r.inv[2] * e1 + r.inv[3] * e2;
      i_lo = clamp_index(ceil(ic - r.half_i - kBoxMargin), 0, vnx);
      i_hi = clamp_index(floor(ic + r.half_i + kBoxMargin), -1, vnx - 1);
      j_lo = clamp_index(ceil(jc - r.half_j - kBoxMargin), 0, vny);
      j_hi = clamp_index(floor(jc + r.half_j + kBoxMargin), -1, vny - 1);
    }
    const float* view = views + k * npix;
    for (long long j = j_lo; j <= j_hi; ++j) {
      const double fj = static_cast<double>(j);
      for (long long i = i_lo; i <= i_hi; ++i) {
        const double fi = static_cast<double>(i);
        // The exact test, on the same bits as the forward projector's sample position.
        const double a2 = ray_coord(r.base[1], r.di[1], r.dj[1], r.slope[1], fi, fj, fm);
        const long long f2 = floor_ll(a2);
        const long long d2 = x2 - f2;  // 0: the voxel is the lower neighbour, 1: the upper
        if (d2 != 0 && d2 != 1) continue;
        const double a1 = ray_coord(r.base[0], r.di[0], r.dj[0], r.slope[0], fi, fj, fm);
        const long long f1 = floor_ll(a1);
        const long long d1 = x1 - f1;
        if (d1 != 0 && d1 != 1) continue;
        const float w1 = __double2float_rn(__dsub_rn(a1, static_cast<double>(f1)));
        const float w2 = __double2float_rn(__dsub_rn(a2, static_cast<double>(f2)));
        // back_project_cpu's weights: val = view * weight; r0 = (1 - w2) val, r1 = w2 val.
        const float val =
            __double2float_rn(__dmul_rn(static_cast<double>(__ldg(view + j * vnx + i)), r.weight));
        const float r0 = __fmul_rn(__fsub_rn(1.0f, w2), val), r1 = __fmul_rn(w2, val);
        sum = __fadd_rn(sum, __fmul_rn(d1 == 0 ? __fsub_rn(1.0f, w1) : w1, d2 == 0 ? r0 : r1));
      }
    }
  }
  const long long v = (z * ny + y) * nx + x;
  if (kMode == static_cast<int>(GatherMode::accumulate))
    out[v] = __fadd_rn(out[v], sum);
  else
    out[v] = updated_voxel<kMode>(out[v], sum, col, mask, v, step, positivity);
}

// Back projection of the n_views views at `views` (rays from `rays`) into out, as `mode` says.
// col (sirt) and mask (optional) are volumes like out.
inline void launch_gather(const float* views, const DeviceRays* rays, long long n_views,
                          const Shape& s, float* out, GatherMode mode, const float* col,
                          const unsigned char* mask, float step, bool positivity,
                          cudaStream_t stream) {
  const dim3 block(kGatherX, kGatherY, 1);
  const dim3 grid(static_cast<unsigned>((s.nx + kGatherX - 1) / kGatherX),
                  static_cast<unsigned>((s.ny + kGatherY - 1) / kGatherY),
                  static_cast<unsigned>(s.nz));
  switch (mode) {
    case GatherMode::accumulate:
      gather_kernel<0><<<grid, block, 0, stream>>>(views, rays, n_views, s.vnx, s.vny, s.nx, s.ny,
                                                   out, col, mask, step, positivity);
      break;
    case GatherMode::resire:
      gather_kernel<1><<<grid, block, 0, stream>>>(views, rays, n_views, s.vnx, s.vny, s.nx, s.ny,
                                                   out, col, mask, step, positivity);
      break;
    case GatherMode::sirt:
      gather_kernel<2><<<grid, block, 0, stream>>>(views, rays, n_views, s.vnx, s.vny, s.nx, s.ny,
                                                   out, col, mask, step, positivity);
      break;
  }
  AET_CUDA_CHECK(cudaGetLastError());
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
