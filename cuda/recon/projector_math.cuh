// Per-thread code of the CUDA Joseph projector pair: the line integral of one detector pixel
// (project_ray) and the back projection into one voxel (gather_voxel), in two arithmetics.
// projector_kernels.cuh wraps them in kernels; tests/test_projector_kernels.cpp compiles this
// header as plain C++ (cuda/core/device_function.cuh) and runs them on the CPU against the CPU
// reference, so every build checks the kernels' arithmetic and indexing.
//
// Precision::reference reproduces the CPU reference (src/recon/projector_cpu.cpp) operation for
// operation: the per-view ray parameters come from the same make_rays() on the host, sample
// positions are computed in double in the CPU's order and the interpolation weights in float, all
// with the explicitly rounded intrinsics (__dadd_rn, __fmul_rn, ...) so that nvcc cannot contract
// them into FMAs. The x86-64 reference is compiled without FMA, so the samples and weights are the
// same bits on both sides, and the results differ only where the summation order does.
//
// Precision::single computes the sample positions in float, relative to each view's pivot (the
// crossing of the central pixel's ray with the central plane, split into an integer part and a
// fraction), so their error stays near 1e-5 voxel for volumes up to 512^3 (float rounding of
// coordinates of at most a few hundred voxels). Its forward projection and gather evaluate the same
// float expressions, so the GPU pair is still an exact transpose; against the CPU reference the
// weights differ by the coordinates' rounding (1e-5 relative in the tests). It exists for speed:
// the GPU runs float arithmetic at twice the double rate and 32-bit integer arithmetic natively.
//
// gather_voxel is the back projection as a gather, one voxel per thread, all views looped inside:
// no atomics, deterministic, and each voxel sums its contributions in the CPU scatter's order
// (view, pixel row, pixel). In plane m of a view the voxel (x1, x2) receives from pixel (i, j) iff
// floor(a1) is x1 - 1 or x1 and floor(a2) is x2 - 1 or x2, a = the sample position of the pixel's
// ray in plane m. The candidates are the pixels in the bounding box of the preimage of
// [x1-1, x1+1] x [x2-1, x2+1] under the 2x2 affine map (i, j) -> a; each is then tested exactly.
// The box only has to contain every pixel that passes the test, so it is widened by a margin
// against rounding in the inverse map (~1e-12 pixel in double, ~1e-4 in float) rather than by a
// whole pixel, which would double the candidates.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/geometry/rotation.hpp"
#include "device_function.cuh"
#include "joseph_rays.hpp"  // src/recon: the CPU's ray parametrisation

namespace aet::cuda::recon {

constexpr long long kMaxGridYZ = 65535;    // CUDA limit on gridDim.y and gridDim.z
constexpr int kGatherY = 8;                // voxel rows per gather block (see check_shape)
constexpr double kBoxMargin = 1e-3;        // pixels, reference arithmetic (see the file comment)
constexpr float kBoxMarginSingle = 1e-2f;  // pixels, single arithmetic
// Pivot-relative coordinates and plane indices must be exact in float (24-bit mantissa).
constexpr long long kMaxSingleExtent = 1LL << 23;

// The arithmetic of the projector pair on the GPU (see the file comment).
enum class Precision : int { reference = 0, single = 1 };

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
  // Precision::single: the crossing of pixel (i, j)'s ray with plane m along in-plane axis a is
  // whole[a] + (((frac[a] + (i - pivot_i) f_di[a]) + (j - pivot_j) f_dj[a]) + (m - pivot_m)
  // f_slope[a]), the bracket in float.
  float frac[2], f_di[2], f_dj[2], f_slope[2];
  float f_weight;
  float f_inv[4], f_half_i, f_half_j;  // as inv, half_i, half_j
  int whole[2];
  int pivot_i, pivot_j, pivot_m;
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

// Whether Precision::single fits this shape: float represents every coordinate exactly, and
// 32-bit offsets reach every voxel and the neighbours of samples just outside the volume.
inline bool single_precision_fits(const Shape& s) {
  const long long extent = std::max({s.nx, s.ny, s.nz, s.vnx, s.vny});
  const long long reach = 4 * (s.nx * s.ny + s.nx + 1);
  return extent < kMaxSingleExtent && s.voxels() + reach < (1LL << 31);
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
    // Single precision: the pivot is the central pixel and plane.
    d.pivot_i = static_cast<int>(s.vnx / 2);
    d.pivot_j = static_cast<int>(s.vny / 2);
    d.pivot_m = static_cast<int>(d.n_d / 2);
    for (int a = 0; a < 2; ++a) {
      const double p =
          r.base[a] + d.pivot_i * r.di[a] + d.pivot_j * r.dj[a] + d.pivot_m * r.slope[a];
      const double w = std::floor(p);
      // A view shifted this far misses the volume; it is refused rather than mis-projected.
      if (!(std::abs(w) < static_cast<double>(kMaxSingleExtent)))
        fail_input("the CUDA projector: view " + std::to_string(out.size()) +
                   " is shifted too far from the volume (" + std::to_string(p) + " voxels)");
      d.whole[a] = static_cast<int>(w);
      d.frac[a] = static_cast<float>(p - w);
      d.f_di[a] = static_cast<float>(r.di[a]);
      d.f_dj[a] = static_cast<float>(r.dj[a]);
      d.f_slope[a] = static_cast<float>(r.slope[a]);
    }
    d.f_weight = static_cast<float>(r.weight);
    for (int e = 0; e < 4; ++e) d.f_inv[e] = static_cast<float>(d.inv[e]);
    d.f_half_i = static_cast<float>(d.half_i);
    d.f_half_j = static_cast<float>(d.half_j);
    out.push_back(d);
  }
  return out;
}

// ---- helpers -------------------------------------------------------------------------------

// floor() as the CPU's floor_index (truncate, then step down for negative non-integers).
AET_DEVICE_FN long long floor_ll(double a) {
  const long long t = static_cast<long long>(a);
  return t - (a < static_cast<double>(t) ? 1 : 0);
}

// base + i di + j dj + m slope, rounded exactly as the CPU's (base + i di + j dj) + m slope.
AET_DEVICE_FN double ray_coord(double base, double di, double dj, double slope, double i, double j,
                               double m) {
  const double off = __dadd_rn(__dadd_rn(base, __dmul_rn(i, di)), __dmul_rn(j, dj));
  return __dadd_rn(off, __dmul_rn(m, slope));
}

// Precision::single: the pivot-relative offset of pixel (fi, fj)'s ray along in-plane axis a, and
// its crossing of plane fm (both relative to the pivot), in the one order both kernels use.
AET_DEVICE_FN float single_offset(const DeviceRays& r, int a, float fi, float fj) {
  return __fadd_rn(__fadd_rn(r.frac[a], __fmul_rn(fi, r.f_di[a])), __fmul_rn(fj, r.f_dj[a]));
}
AET_DEVICE_FN float single_crossing(float offset, float slope, float fm) {
  return __fadd_rn(offset, __fmul_rn(fm, slope));
}

// (1 - w) a + w b in the CPU's float operations.
AET_DEVICE_FN float lerp_f(float w, float a, float b) {
  return __fadd_rn(__fmul_rn(__fsub_rn(1.0f, w), a), __fmul_rn(w, b));
}

// The linear interpolation weight of a neighbour at distance t: max(0, 1 - |t|).
AET_DEVICE_FN float hat(float t) {
  return fmaxf(0.0f, __fsub_rn(1.0f, fabsf(t)));
}

AET_DEVICE_FN long long min_ll(long long a, long long b) {
  return a < b ? a : b;
}
AET_DEVICE_FN long long max_ll(long long a, long long b) {
  return a > b ? a : b;
}

// The device twin of joseph::clip_planes (a superset of planes is harmless: samples outside the
// volume add exactly zero).
AET_DEVICE_FN void clip_planes_d(double off, double slope, double lower, double upper,
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
AET_DEVICE_FN long long pick_axis(int axis, long long x, long long y, long long z) {
  return axis == 0 ? x : (axis == 1 ? y : z);
}

// Converts a double bound to an index clamped to [lo, hi] before the conversion (no overflow).
AET_DEVICE_FN long long clamp_index(double t, long long lo, long long hi) {
  t = fmin(fmax(t, static_cast<double>(lo)), static_cast<double>(hi));
  return static_cast<long long>(t);
}

// The same in float for Precision::single: t (a whole number) + offset, clamped to [lo, hi]
// (exact: both below 2^23 in magnitude when not clamped).
AET_DEVICE_FN int clamp_index_f(float t, int offset, long long lo, long long hi) {
  t = fminf(fmaxf(t + static_cast<float>(offset), static_cast<float>(lo)), static_cast<float>(hi));
  return static_cast<int>(t);
}

// Bilinear sample of plane position (i1 + w1, i2 + w2) at vol[at] (the (i1, i2) neighbour), zero
// outside [0, n1) x [0, n2): the CPU's float operations, upper row skipped when w2 is 0. Index is
// long long (reference) or int (single, whose shapes keep every offset below 2^31).
template <typename Index>
AET_DEVICE_FN float bilinear_sample(const float* __restrict__ vol, Index at, Index s1, Index s2,
                                    Index i1, Index i2, Index n1, Index n2, float w1, float w2) {
  using Unsigned = std::make_unsigned_t<Index>;
  // Interior test: both neighbours inside when 0 <= i < n - 1 (unsigned compare).
  if (static_cast<Unsigned>(i1) < static_cast<Unsigned>(n1 - 1) &&
      static_cast<Unsigned>(i2) < static_cast<Unsigned>(n2 - 1)) {
    float v = lerp_f(w1, __ldg(vol + at), __ldg(vol + at + s1));
    if (w2 != 0.0f) v = lerp_f(w2, v, lerp_f(w1, __ldg(vol + at + s2), __ldg(vol + at + s1 + s2)));
    return v;
  }
  // Signed offset: only neighbours inside the volume are read.
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
  return lerp_f(w2, row0, row1);
}

// ---- forward projection: one detector pixel ------------------------------------------------

// Line integral of pixel (i, j) of view r through vol: forward_project_cpu's inner loop.
AET_DEVICE_FN float project_ray_reference(const float* __restrict__ vol, const DeviceRays& r,
                                          long long i, long long j) {
  const double fi = static_cast<double>(i), fj = static_cast<double>(j);
  const double off1 =
      __dadd_rn(__dadd_rn(r.base[0], __dmul_rn(fi, r.di[0])), __dmul_rn(fj, r.dj[0]));
  const double off2 =
      __dadd_rn(__dadd_rn(r.base[1], __dmul_rn(fi, r.di[1])), __dmul_rn(fj, r.dj[1]));
  const long long nD = r.n_d, n1 = r.n_1, n2 = r.n_2;
  long long lo = 0, hi = nD - 1;
  clip_planes_d(off1, r.slope[0], -1.0, static_cast<double>(n1), lo, hi);
  clip_planes_d(off2, r.slope[1], -1.0, static_cast<double>(n2), lo, hi);
  lo = max_ll(lo, 0);
  hi = min_ll(hi, nD - 1);
  double acc = 0.0;
  for (long long m = lo; m <= hi; ++m) {
    const double fm = static_cast<double>(m);
    const double a1 = __dadd_rn(off1, __dmul_rn(fm, r.slope[0]));
    const double a2 = __dadd_rn(off2, __dmul_rn(fm, r.slope[1]));
    const long long i1 = floor_ll(a1), i2 = floor_ll(a2);
    const float w1 = __double2float_rn(__dsub_rn(a1, static_cast<double>(i1)));
    const float w2 = __double2float_rn(__dsub_rn(a2, static_cast<double>(i2)));
    const float v = bilinear_sample<long long>(vol, m * r.s_d + i1 * r.s_1 + i2 * r.s_2, r.s_1,
                                               r.s_2, i1, i2, n1, n2, w1, w2);
    acc = __dadd_rn(acc, static_cast<double>(v));
  }
  return __double2float_rn(__dmul_rn(acc, r.weight));
}

// The same integral with Precision::single sample positions (summed in double), 32-bit offsets.
AET_DEVICE_FN float project_ray_single(const float* __restrict__ vol, const DeviceRays& r,
                                       long long i, long long j) {
  const float fi = static_cast<float>(i - r.pivot_i), fj = static_cast<float>(j - r.pivot_j);
  const float off1 = single_offset(r, 0, fi, fj), off2 = single_offset(r, 1, fi, fj);
  const int nD = static_cast<int>(r.n_d), n1 = static_cast<int>(r.n_1),
            n2 = static_cast<int>(r.n_2);
  const int sD = static_cast<int>(r.s_d), s1 = static_cast<int>(r.s_1),
            s2 = static_cast<int>(r.s_2);
  // The crossings in double (exact: an integer below 2^23 plus a float) at plane 0.
  const double pm = static_cast<double>(r.pivot_m);
  const double b1 = r.whole[0] + static_cast<double>(off1) - pm * r.f_slope[0];
  const double b2 = r.whole[1] + static_cast<double>(off2) - pm * r.f_slope[1];
  // A ray parallel to the planes of an in-plane axis has the same float crossing on every plane:
  // outside (-1, n) it touches no voxel, exactly.
  if ((r.f_slope[0] == 0.0f && !(b1 > -1.0 && b1 < n1)) ||
      (r.f_slope[1] == 0.0f && !(b2 > -1.0 && b2 < n2)))
    return 0.0f;
  // Planes one wider on each side than the double clip says: a sample outside the volume adds
  // exactly zero, while a plane lost to the float rounding would break the adjoint. The extra
  // samples lie within a voxel or two of the volume (|slope| <= 1), so the offsets stay small.
  long long lo = 0, hi = nD - 1;
  clip_planes_d(b1, r.f_slope[0], -1.0, static_cast<double>(n1), lo, hi);
  clip_planes_d(b2, r.f_slope[1], -1.0, static_cast<double>(n2), lo, hi);
  // Clamped before narrowing: a ray that misses has bounds far outside [0, nD).
  const int m_lo = static_cast<int>(min_ll(max_ll(lo - 1, 0), nD));
  const int m_hi = static_cast<int>(max_ll(min_ll(hi + 1, nD - 1), -1));
  double acc = 0.0;
  for (int m = m_lo; m <= m_hi; ++m) {
    const float fm = static_cast<float>(m - r.pivot_m);
    const float a1 = single_crossing(off1, r.f_slope[0], fm);
    const float a2 = single_crossing(off2, r.f_slope[1], fm);
    const float fl1 = floorf(a1), fl2 = floorf(a2);
    const int i1 = r.whole[0] + static_cast<int>(fl1), i2 = r.whole[1] + static_cast<int>(fl2);
    const float w1 = __fsub_rn(a1, fl1), w2 = __fsub_rn(a2, fl2);  // exact in float
    const float v =
        bilinear_sample(vol, m * sD + i1 * s1 + i2 * s2, s1, s2, i1, i2, n1, n2, w1, w2);
    acc = __dadd_rn(acc, static_cast<double>(v));
  }
  return __double2float_rn(__dmul_rn(acc, r.weight));
}

template <Precision kPrecision>
AET_DEVICE_FN float project_ray(const float* __restrict__ vol, const DeviceRays& r, long long i,
                                long long j) {
  if (kPrecision == Precision::single) return project_ray_single(vol, r, i, j);
  return project_ray_reference(vol, r, i, j);
}

// ---- back projection: one voxel ------------------------------------------------------------

// Sum of the back projections of views[0 .. n_views) (rays from `rays`) into voxel (x, y, z):
// back_project_cpu's contributions to that voxel, in its order.
AET_DEVICE_FN float gather_voxel_reference(const float* __restrict__ views,
                                           const DeviceRays* __restrict__ rays, long long n_views,
                                           long long vnx, long long vny, long long x, long long y,
                                           long long z) {
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
  return sum;
}

// The same gather with Precision::single positions: the exact transpose of project_ray_single.
AET_DEVICE_FN float gather_voxel_single(const float* __restrict__ views,
                                        const DeviceRays* __restrict__ rays, long long n_views,
                                        long long vnx, long long vny, long long x, long long y,
                                        long long z) {
  const long long npix = vnx * vny;
  float sum = 0.0f;
  for (long long k = 0; k < n_views; ++k) {
    const DeviceRays& r = rays[k];
    const int m = static_cast<int>(pick_axis(r.axis_d, x, y, z));
    // The voxel relative to the whole part of the pivot's crossing.
    const int x1 = static_cast<int>(pick_axis(r.axis_1, x, y, z)) - r.whole[0];
    const int x2 = static_cast<int>(pick_axis(r.axis_2, x, y, z)) - r.whole[1];
    const float fm = static_cast<float>(m - r.pivot_m);
    int i_lo = 0, i_hi = static_cast<int>(vnx) - 1, j_lo = 0, j_hi = static_cast<int>(vny) - 1;
    if (r.invertible) {
      const float e1 =
          __fsub_rn(static_cast<float>(x1), single_crossing(r.frac[0], r.f_slope[0], fm));
      const float e2 =
          __fsub_rn(static_cast<float>(x2), single_crossing(r.frac[1], r.f_slope[1], fm));
      const float ic = __fadd_rn(__fmul_rn(r.f_inv[0], e1), __fmul_rn(r.f_inv[1], e2));
      const float jc = __fadd_rn(__fmul_rn(r.f_inv[2], e1), __fmul_rn(r.f_inv[3], e2));
      i_lo = clamp_index_f(ceilf(ic - r.f_half_i - kBoxMarginSingle), r.pivot_i, 0, vnx);
      i_hi = clamp_index_f(floorf(ic + r.f_half_i + kBoxMarginSingle), r.pivot_i, -1, vnx - 1);
      j_lo = clamp_index_f(ceilf(jc - r.f_half_j - kBoxMarginSingle), r.pivot_j, 0, vny);
      j_hi = clamp_index_f(floorf(jc + r.f_half_j + kBoxMarginSingle), r.pivot_j, -1, vny - 1);
    }
    const float* view = views + k * npix;
    const float fx1 = static_cast<float>(x1), fx2 = static_cast<float>(x2);
    float view_sum = 0.0f;  // times the path length once per view, as the forward does
    for (int j = j_lo; j <= j_hi; ++j) {
      const float fj = static_cast<float>(j - r.pivot_j);
      const float* row = view + static_cast<long long>(j) * vnx;
      for (int i = i_lo; i <= i_hi; ++i) {
        const float fi = static_cast<float>(i - r.pivot_i);
        // project_ray_single's sample position, on the same bits; the voxel's weight is the hat
        // 1 - |a - x| on each axis (the forward's 1 - w for the lower neighbour, w for the upper,
        // to float rounding), zero outside: no branches, so a warp does not diverge.
        const float a1 = single_crossing(single_offset(r, 0, fi, fj), r.f_slope[0], fm);
        const float a2 = single_crossing(single_offset(r, 1, fi, fj), r.f_slope[1], fm);
        const float h1 = hat(__fsub_rn(a1, fx1)), h2 = hat(__fsub_rn(a2, fx2));
        view_sum = __fadd_rn(view_sum, __fmul_rn(h1, __fmul_rn(h2, __ldg(row + i))));
      }
    }
    sum = __fadd_rn(sum, __fmul_rn(view_sum, r.f_weight));
  }
  return sum;
}

template <Precision kPrecision>
AET_DEVICE_FN float gather_voxel(const float* __restrict__ views,
                                 const DeviceRays* __restrict__ rays, long long n_views,
                                 long long vnx, long long vny, long long x, long long y,
                                 long long z) {
  if (kPrecision == Precision::single)
    return gather_voxel_single(views, rays, n_views, vnx, vny, x, y, z);
  return gather_voxel_reference(views, rays, n_views, vnx, vny, x, y, z);
}

}  // namespace aet::cuda::recon
