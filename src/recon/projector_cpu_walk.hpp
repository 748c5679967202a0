// The pieces of the CPU projector's walks (projector_cpu.cpp): one view's rays against a box of
// the volume (RayBox, whose sample and scatter are the scalar walk), one pixel row's rays
// (RowRays), and the vector walks' entry points (projector_cpu_simd.cpp). Every file that holds
// this arithmetic is compiled with -ffp-contract=off (CMakeLists.txt), so that the walks keep the
// reference's bits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "joseph_rays.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define AET_PROJECTOR_SIMD 1
#endif

namespace aet::detail::cpu_walk {

using joseph::clip_planes;
using joseph::floor_index;
using joseph::ViewRays;
using joseph::VolumeShape;

// One view's rays against a box of the volume: the planes of the dominant axis and the in-plane
// index bounds [b_lo, b_hi) (the whole volume, or a thread's slab in the back projection).
struct RayBox {
  const ViewRays* r;
  std::int64_t sD, s1, s2;
  std::int64_t b1_lo, b1_hi, b2_lo, b2_hi;
  std::uint64_t last1, last2;  // interior test: both neighbours inside (unsigned compare)

  RayBox(const ViewRays& rays, const VolumeShape& vol, std::int64_t b1_lo_, std::int64_t b1_hi_,
         std::int64_t b2_lo_, std::int64_t b2_hi_)
      : r(&rays),
        sD(vol.stride[rays.axis_d]),
        s1(vol.stride[rays.axis_1]),
        s2(vol.stride[rays.axis_2]),
        b1_lo(b1_lo_),
        b1_hi(b1_hi_),
        b2_lo(b2_lo_),
        b2_hi(b2_hi_),
        last1(static_cast<std::uint64_t>(b1_hi_ - b1_lo_ - 1)),
        last2(static_cast<std::uint64_t>(b2_hi_ - b2_lo_ - 1)) {}

  // Pixel (i, j)'s ray: its crossing offsets and the planes [lo, hi] (within [d_lo, d_hi]) where
  // it may touch the box.
  void ray(std::int64_t i, std::int64_t j, std::int64_t d_lo, std::int64_t d_hi, double& off1,
           double& off2, std::int64_t& lo, std::int64_t& hi) const {
    off1 = r->base[0] + i * r->di[0] + j * r->dj[0];
    off2 = r->base[1] + i * r->di[1] + j * r->dj[1];
    lo = d_lo - 1;
    hi = d_hi + 1;
    clip_planes(off1, r->slope[0], static_cast<double>(b1_lo) - 1.0, static_cast<double>(b1_hi), lo,
                hi);
    clip_planes(off2, r->slope[1], static_cast<double>(b2_lo) - 1.0, static_cast<double>(b2_hi), lo,
                hi);
    lo = std::max(lo, d_lo);
    hi = std::min(hi, d_hi);
  }

  // The crossing of a ray with plane m: its lower neighbour (i1, i2) at offset `at`, the
  // interpolation weights, and whether all four neighbours are inside the box.
  struct Crossing {
    std::int64_t i1, i2, at;
    float w1, w2;
    bool interior;
  };
  Crossing cross(double off1, double off2, std::int64_t m) const {
    const double a1 = off1 + m * r->slope[0], a2 = off2 + m * r->slope[1];
    Crossing c;
    c.i1 = floor_index(a1);
    c.i2 = floor_index(a2);
    c.w1 = static_cast<float>(a1 - c.i1);
    c.w2 = static_cast<float>(a2 - c.i2);
    // Signed offset: only neighbours inside the box are dereferenced.
    c.at = m * sD + c.i1 * s1 + c.i2 * s2;
    c.interior = static_cast<std::uint64_t>(c.i1 - b1_lo) < last1 &&
                 static_cast<std::uint64_t>(c.i2 - b2_lo) < last2;
    return c;
  }
  bool inside1(std::int64_t i) const { return i >= b1_lo && i < b1_hi; }
  bool inside2(std::int64_t i) const { return i >= b2_lo && i < b2_hi; }

  // The bilinear interpolation of src at the ray's crossing of plane m (zero outside the box).
  float sample(const float* src, double off1, double off2, std::int64_t m) const {
    const Crossing c = cross(off1, off2, m);
    const float w1 = c.w1, w2 = c.w2;
    const std::int64_t at = c.at;
    if (c.interior) {
      float v = (1.0f - w1) * src[at] + w1 * src[at + s1];
      // Single-axis rays sit exactly on a plane of axis 2 (w2 = 0, the same for every sample of
      // the ray, so the branch is predictable): half the reads.
      if (w2 != 0.0f)
        v = (1.0f - w2) * v + w2 * ((1.0f - w1) * src[at + s2] + w1 * src[at + s1 + s2]);
      return v;
    }
    const bool lo1 = inside1(c.i1), hi1 = inside1(c.i1 + 1);
    float row0 = 0.0f, row1 = 0.0f;
    if (inside2(c.i2)) {
      if (lo1) row0 += (1.0f - w1) * src[at];
      if (hi1) row0 += w1 * src[at + s1];
    }
    if (inside2(c.i2 + 1)) {
      if (lo1) row1 += (1.0f - w1) * src[at + s2];
      if (hi1) row1 += w1 * src[at + s1 + s2];
    }
    return (1.0f - w2) * row0 + w2 * row1;
  }

  // The transpose of sample: val spread over the same neighbours with the same weights.
  void scatter(float* dst, double off1, double off2, std::int64_t m, float val) const {
    const Crossing c = cross(off1, off2, m);
    const float w1 = c.w1;
    const std::int64_t at = c.at;
    const float r0 = (1.0f - c.w2) * val, r1 = c.w2 * val;
    if (c.interior) {
      dst[at] += (1.0f - w1) * r0;
      dst[at + s1] += w1 * r0;
      if (c.w2 != 0.0f) {
        dst[at + s2] += (1.0f - w1) * r1;
        dst[at + s1 + s2] += w1 * r1;
      }
      return;
    }
    const bool lo1 = inside1(c.i1), hi1 = inside1(c.i1 + 1);
    if (inside2(c.i2)) {
      if (lo1) dst[at] += (1.0f - w1) * r0;
      if (hi1) dst[at + s1] += w1 * r0;
    }
    if (inside2(c.i2 + 1)) {
      if (lo1) dst[at + s2] += (1.0f - w1) * r1;
      if (hi1) dst[at + s1 + s2] += w1 * r1;
    }
  }
};

// One pixel row's rays: each ray's offsets and plane range [lo, hi] (empty for skipped pixels),
// and the union of the ranges; walk() visits every sample of the row in the loop order of the
// file comment.
struct RowRays {
  std::vector<double> off1, off2;
  std::vector<std::int64_t> lo, hi;
  std::int64_t m_lo = 0, m_hi = -1;

  explicit RowRays(std::int64_t n) : off1(n), off2(n), lo(n), hi(n) {}

  // The rays of row j within planes [d_lo, d_hi]; pixels i with skip(i) get none.
  template <class Skip>
  void fill(const RayBox& box, std::int64_t j, std::int64_t d_lo, std::int64_t d_hi, Skip skip) {
    m_lo = std::numeric_limits<std::int64_t>::max();
    m_hi = std::numeric_limits<std::int64_t>::min();
    for (std::size_t i = 0; i < lo.size(); ++i) {
      if (skip(i)) {
        lo[i] = 0;
        hi[i] = -1;
        continue;
      }
      box.ray(static_cast<std::int64_t>(i), j, d_lo, d_hi, off1[i], off2[i], lo[i], hi[i]);
      if (lo[i] > hi[i]) continue;
      m_lo = std::min(m_lo, lo[i]);
      m_hi = std::max(m_hi, hi[i]);
    }
  }

  // visit(i, m) for every sample: ray by ray when the planes are adjacent in memory, plane by
  // plane otherwise; each ray's samples in plane order either way.
  template <class Visit>
  void walk(bool ray_by_ray, Visit visit) const {
    const std::size_t n = lo.size();
    if (ray_by_ray) {
      for (std::size_t i = 0; i < n; ++i)
        for (std::int64_t m = lo[i]; m <= hi[i]; ++m) visit(i, m);
      return;
    }
    for (std::int64_t m = m_lo; m <= m_hi; ++m)
      for (std::size_t i = 0; i < n; ++i)
        if (m >= lo[i] && m <= hi[i]) visit(i, m);
  }
};

#ifdef AET_PROJECTOR_SIMD
// The vector walks (projector_cpu_simd.cpp): the same samples as RayBox::sample and
// RayBox::scatter, in the same order of every sum.

// acc[i] += sample of ray i in plane m, for every ray i of the row that crosses plane m.
__attribute__((target("avx2"))) void forward_plane_avx2(const RayBox& box, const RowRays& rows,
                                                        std::int64_t m, const float* src,
                                                        double* acc);
// forward_plane_avx2 eight rays at a time (AVX-512).
__attribute__((target("avx512f,avx512vl,avx512dq"))) void forward_plane_avx512(
    const RayBox& box, const RowRays& rows, std::int64_t m, const float* src, double* acc);
// The transpose of forward_plane_avx2: vals[i] spread over ray i's neighbours in plane m.
__attribute__((target("avx2"))) void back_plane_avx2(const RayBox& box, const RowRays& rows,
                                                     std::int64_t m, const float* vals, float* dst);
// The same for the row's rays one at a time, four planes at a time (rays along x).
__attribute__((target("avx2"))) void back_rays_avx2(const RayBox& box, const RowRays& rows,
                                                    const float* vals, float* dst);
#endif

}  // namespace aet::detail::cpu_walk
