// CPU reference projector pair (Joseph's method), see projector.hpp for the model and
// joseph_rays.hpp for the ray parametrisation (shared with the CUDA back end). forward_project sums
// the bilinear interpolation of each ray's plane crossings; back_project scatters exactly the same
// weights. To make the scatter race-free and deterministic, each thread owns a slab of y planes of
// the output and walks every ray but only the crossings (and only the voxels) inside its slab: each
// voxel then receives its contributions in the same order (view, pixel row, pixel, plane) whatever
// the number of threads.
//
// Loop order: a ray marches through the planes of its dominant axis D. When D is x the planes are
// adjacent in memory and each row of rays is walked ray by ray. Otherwise consecutive planes are a
// row or a slice apart, so a row of rays is walked plane by plane instead, every ray's sample in
// plane m before any in m + 1: neighbouring pixels then read (or write) neighbouring voxels of the
// same plane. Each ray still sums its samples in plane order, and a voxel lies in one plane of D
// only, so it still receives its contributions in pixel order: both orders give the same bits.
//
// Where the CPU has AVX2 or AVX-512, the rows are walked with vector instructions (four or eight
// rays of a row in one plane; for the back projection of rays along x, four planes of one ray),
// in the same operations and the same order of every sum: the same bits again, 1.6-2.9 times faster
// (docs/benchmarks.md). AET_CPU_PROJECTOR=scalar|avx2|avx512 picks a walk (tests, benchmarks).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/recon/projector.hpp"
#include "joseph_rays.hpp"

namespace aet::detail {

using joseph::clip_planes;
using joseph::floor_index;
using joseph::make_rays;
using joseph::shape_of;
using joseph::ViewRays;
using joseph::VolumeShape;

namespace {

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

// ---- vector walks (x86-64: AVX2, AVX-512) ---------------------------------------------------
//
// The same operations as RayBox::sample and RayBox::scatter, lane by lane: the crossing in
// double, floor, the float weights, the interpolation in float, the forward sum in double. Vector
// instructions round each operation as the scalar ones do (and no FMA here either), so the rays'
// sums and the voxels' sums keep their bits: the scalar walk stays the reference and the tests
// compare the two bit for bit. Samples whose neighbours are not all inside the box go to the
// scalar code. Offsets are 32-bit, so volumes of 2^31 voxels or more take the scalar walk.

// Which walk the projector uses (AET_CPU_PROJECTOR: auto, scalar, avx2, avx512).
enum class Simd { scalar, avx2, avx512 };

#if defined(__x86_64__) && defined(__GNUC__)
#define AET_PROJECTOR_SIMD 1

bool cpu_has(Simd simd) {
  switch (simd) {
    case Simd::scalar:
      return true;
    case Simd::avx2:
      return __builtin_cpu_supports("avx2") != 0;
    case Simd::avx512:
      return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512vl") != 0 &&
             __builtin_cpu_supports("avx512dq") != 0;
  }
  return false;
}
#else
bool cpu_has(Simd simd) {
  return simd == Simd::scalar;
}
#endif

Simd simd_from_name(const std::string& name) {
  if (name == "scalar") return Simd::scalar;
  if (name == "avx2") return Simd::avx2;
  if (name == "avx512") return Simd::avx512;
  fail_input("AET_CPU_PROJECTOR must be auto, scalar, avx2 or avx512, got '" + name + "'");
}

// The walk for this volume: the widest the CPU has, or the one AET_CPU_PROJECTOR names (read at
// every call, so that tests can compare the walks).
Simd projector_simd(const VolumeShape& vol) {
  Simd simd = Simd::scalar;
  const char* env = std::getenv("AET_CPU_PROJECTOR");
  if (env && *env && std::strcmp(env, "auto") != 0) {
    simd = simd_from_name(env);
    if (!cpu_has(simd))
      fail_input(std::string("AET_CPU_PROJECTOR=") + env + ": this CPU or build does not have it");
  } else {
    simd = cpu_has(Simd::avx512) ? Simd::avx512 : cpu_has(Simd::avx2) ? Simd::avx2 : Simd::scalar;
  }
  const std::int64_t voxels = vol.n[0] * vol.n[1] * vol.n[2];
  return voxels < (std::int64_t{1} << 31) ? simd : Simd::scalar;
}

#ifdef AET_PROJECTOR_SIMD
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_pd(), which
// -Wmaybe-uninitialized reports as uninitialised inside the headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Four samples (four rays of a row in one plane, or four planes of one ray): which lanes are
// samples at all, which of those have all four neighbours inside the box, and their weights and
// offsets (meaningful in the interior lanes only).
struct Crossings4 {
  int crossing = 0, interior = 0;  // lane bit masks
  __m128 w1, w2;
  __m128i at;
};

// A box's constants in AVX2 registers.
struct BoxAvx2 {
  __m128i lo1, hi1, lo2, hi2;  // interior: lo < i < hi on both in-plane axes
  __m128i s1, s2;
};

__attribute__((target("avx2"))) inline BoxAvx2 box_avx2(const RayBox& box) {
  BoxAvx2 b;
  b.lo1 = _mm_set1_epi32(static_cast<int>(box.b1_lo) - 1);
  b.hi1 = _mm_set1_epi32(static_cast<int>(box.b1_hi) - 1);
  b.lo2 = _mm_set1_epi32(static_cast<int>(box.b2_lo) - 1);
  b.hi2 = _mm_set1_epi32(static_cast<int>(box.b2_hi) - 1);
  b.s1 = _mm_set1_epi32(static_cast<int>(box.s1));
  b.s2 = _mm_set1_epi32(static_cast<int>(box.s2));
  return b;
}

// The crossings (a1, a2) of the `crossing` lanes, in planes whose offsets are `plane_at`.
__attribute__((target("avx2"), always_inline)) inline Crossings4 crossings4(const BoxAvx2& b,
                                                                            int crossing,
                                                                            __m256d a1, __m256d a2,
                                                                            __m128i plane_at) {
  Crossings4 c;
  c.crossing = crossing;
  const __m256d f1 = _mm256_floor_pd(a1), f2 = _mm256_floor_pd(a2);
  c.w1 = _mm256_cvtpd_ps(_mm256_sub_pd(a1, f1));
  c.w2 = _mm256_cvtpd_ps(_mm256_sub_pd(a2, f2));
  // Lanes that are no samples may hold any value: their indices are never used.
  const __m128i i1 = _mm256_cvttpd_epi32(f1), i2 = _mm256_cvttpd_epi32(f2);
  const __m128i inside =
      _mm_and_si128(_mm_and_si128(_mm_cmpgt_epi32(i1, b.lo1), _mm_cmplt_epi32(i1, b.hi1)),
                    _mm_and_si128(_mm_cmpgt_epi32(i2, b.lo2), _mm_cmplt_epi32(i2, b.hi2)));
  c.interior = _mm_movemask_ps(_mm_castsi128_ps(inside)) & crossing;
  c.at =
      _mm_add_epi32(_mm_add_epi32(plane_at, _mm_mullo_epi32(i1, b.s1)), _mm_mullo_epi32(i2, b.s2));
  return c;
}

// Plane m's constants for a row's walk.
struct RowPlane {
  __m256i plane;
  __m256d step1, step2;  // m * slope
  __m128i at;            // m * sD
};

__attribute__((target("avx2"))) inline RowPlane row_plane(const RayBox& box, std::int64_t m) {
  const ViewRays& r = *box.r;
  return RowPlane{_mm256_set1_epi64x(m), _mm256_set1_pd(static_cast<double>(m) * r.slope[0]),
                  _mm256_set1_pd(static_cast<double>(m) * r.slope[1]),
                  _mm_set1_epi32(static_cast<int>(m * box.sD))};
}

// The row's rays i .. i + 3 in plane p (their planes [lo, hi] say which cross it).
__attribute__((target("avx2"), always_inline)) inline Crossings4 row_crossings4(const BoxAvx2& b,
                                                                                const RowPlane& p,
                                                                                const RowRays& rows,
                                                                                std::size_t i) {
  const __m256i outside = _mm256_or_si256(
      _mm256_cmpgt_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(&rows.lo[i])),
                         p.plane),
      _mm256_cmpgt_epi64(p.plane,
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&rows.hi[i]))));
  const int crossing = ~_mm256_movemask_pd(_mm256_castsi256_pd(outside)) & 0xF;
  if (crossing == 0) return Crossings4{};
  const __m256d a1 = _mm256_add_pd(_mm256_loadu_pd(&rows.off1[i]), p.step1);
  const __m256d a2 = _mm256_add_pd(_mm256_loadu_pd(&rows.off2[i]), p.step2);
  return crossings4(b, crossing, a1, a2, p.at);
}

// One ray's crossings of planes m .. min(m + 3, hi).
__attribute__((target("avx2"))) inline Crossings4 ray_crossings4(const RayBox& box,
                                                                 const BoxAvx2& b, double off1,
                                                                 double off2, std::int64_t m,
                                                                 std::int64_t hi) {
  const std::int64_t count = std::min<std::int64_t>(4, hi - m + 1);
  const int crossing = (1 << count) - 1;
  const ViewRays& r = *box.r;
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  const __m128i planes = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(m)), lane);
  const __m256d md = _mm256_cvtepi32_pd(planes);  // exact: the planes are small integers
  const __m256d a1 =
      _mm256_add_pd(_mm256_set1_pd(off1), _mm256_mul_pd(md, _mm256_set1_pd(r.slope[0])));
  const __m256d a2 =
      _mm256_add_pd(_mm256_set1_pd(off2), _mm256_mul_pd(md, _mm256_set1_pd(r.slope[1])));
  return crossings4(b, crossing, a1, a2,
                    _mm_mullo_epi32(planes, _mm_set1_epi32(static_cast<int>(box.sD))));
}

__attribute__((target("avx2"))) inline __m128i lane_mask(int bits) {
  return _mm_setr_epi32(bits & 1 ? -1 : 0, bits & 2 ? -1 : 0, bits & 4 ? -1 : 0, bits & 8 ? -1 : 0);
}

// acc[i] += sample of ray i in plane m, for every ray i of the row that crosses plane m.
__attribute__((target("avx2"))) void forward_plane_avx2(const RayBox& box, const RowRays& rows,
                                                        std::int64_t m, const float* src,
                                                        double* acc) {
  const BoxAvx2 b = box_avx2(box);
  const RowPlane p = row_plane(box, m);
  const __m128 one = _mm_set1_ps(1.0f), zero = _mm_setzero_ps();
  const std::size_t n = rows.lo.size();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const Crossings4 c = row_crossings4(b, p, rows, i);
    if (c.interior != 0) {
      const __m128 lanes = _mm_castsi128_ps(lane_mask(c.interior));
      const __m128 g0 = _mm_mask_i32gather_ps(zero, src, c.at, lanes, 4);
      const __m128 g1 = _mm_mask_i32gather_ps(zero, src, _mm_add_epi32(c.at, b.s1), lanes, 4);
      const __m128 u1 = _mm_sub_ps(one, c.w1);
      __m128 v = _mm_add_ps(_mm_mul_ps(u1, g0), _mm_mul_ps(c.w1, g1));
      // The second row where w2 != 0 (never for single-axis rays, as in RayBox::sample).
      const __m128 second = _mm_and_ps(_mm_cmpneq_ps(c.w2, zero), lanes);
      if (_mm_movemask_ps(second) != 0) {
        const __m128i at2 = _mm_add_epi32(c.at, b.s2);
        const __m128 g2 = _mm_mask_i32gather_ps(zero, src, at2, second, 4);
        const __m128 g3 = _mm_mask_i32gather_ps(zero, src, _mm_add_epi32(at2, b.s1), second, 4);
        const __m128 row1 = _mm_add_ps(_mm_mul_ps(u1, g2), _mm_mul_ps(c.w1, g3));
        const __m128 v2 = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(one, c.w2), v), _mm_mul_ps(c.w2, row1));
        v = _mm_blendv_ps(v, v2, second);
      }
      const __m256d sum = _mm256_loadu_pd(acc + i);
      const __m256d added = _mm256_add_pd(sum, _mm256_cvtps_pd(v));
      const __m256d keep = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(lane_mask(c.interior)));
      _mm256_storeu_pd(acc + i, _mm256_blendv_pd(sum, added, keep));
    }
    for (int l = 0, edge = c.crossing & ~c.interior; edge != 0; ++l, edge >>= 1)
      if (edge & 1) acc[i + l] += box.sample(src, rows.off1[i + l], rows.off2[i + l], m);
  }
  for (; i < n; ++i)
    if (m >= rows.lo[i] && m <= rows.hi[i])
      acc[i] += box.sample(src, rows.off1[i], rows.off2[i], m);
}

// forward_plane_avx2 eight rays at a time (AVX-512).
__attribute__((target("avx512f,avx512vl,avx512dq"))) void forward_plane_avx512(
    const RayBox& box, const RowRays& rows, std::int64_t m, const float* src, double* acc) {
  const ViewRays& r = *box.r;
  const __m512d step1 = _mm512_set1_pd(static_cast<double>(m) * r.slope[0]);
  const __m512d step2 = _mm512_set1_pd(static_cast<double>(m) * r.slope[1]);
  const __m512i plane = _mm512_set1_epi64(m);
  const __m256i lo1 = _mm256_set1_epi32(static_cast<int>(box.b1_lo) - 1),
                hi1 = _mm256_set1_epi32(static_cast<int>(box.b1_hi) - 1),
                lo2 = _mm256_set1_epi32(static_cast<int>(box.b2_lo) - 1),
                hi2 = _mm256_set1_epi32(static_cast<int>(box.b2_hi) - 1);
  const __m256i s1 = _mm256_set1_epi32(static_cast<int>(box.s1)),
                s2 = _mm256_set1_epi32(static_cast<int>(box.s2)),
                base = _mm256_set1_epi32(static_cast<int>(m * box.sD));
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const std::size_t n = rows.lo.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __mmask8 crossing =
        static_cast<__mmask8>(~(_mm512_cmpgt_epi64_mask(_mm512_loadu_si512(&rows.lo[i]), plane) |
                                _mm512_cmpgt_epi64_mask(plane, _mm512_loadu_si512(&rows.hi[i]))));
    if (crossing == 0) continue;
    const __m512d a1 = _mm512_add_pd(_mm512_loadu_pd(&rows.off1[i]), step1);
    const __m512d a2 = _mm512_add_pd(_mm512_loadu_pd(&rows.off2[i]), step2);
    const __m512d f1 = _mm512_roundscale_pd(a1, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512d f2 = _mm512_roundscale_pd(a2, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256 w1 = _mm512_cvtpd_ps(_mm512_sub_pd(a1, f1));
    const __m256 w2 = _mm512_cvtpd_ps(_mm512_sub_pd(a2, f2));
    const __m256i i1 = _mm512_cvttpd_epi32(f1), i2 = _mm512_cvttpd_epi32(f2);
    const __mmask8 interior = crossing & _mm256_cmpgt_epi32_mask(i1, lo1) &
                              _mm256_cmplt_epi32_mask(i1, hi1) & _mm256_cmpgt_epi32_mask(i2, lo2) &
                              _mm256_cmplt_epi32_mask(i2, hi2);
    if (interior != 0) {
      const __m256i at = _mm256_add_epi32(_mm256_add_epi32(base, _mm256_mullo_epi32(i1, s1)),
                                          _mm256_mullo_epi32(i2, s2));
      const __m256 g0 = _mm256_mmask_i32gather_ps(zero, interior, at, src, 4);
      const __m256 g1 = _mm256_mmask_i32gather_ps(zero, interior, _mm256_add_epi32(at, s1), src, 4);
      const __m256 u1 = _mm256_sub_ps(one, w1);
      __m256 v = _mm256_add_ps(_mm256_mul_ps(u1, g0), _mm256_mul_ps(w1, g1));
      const __mmask8 second = interior & _mm256_cmp_ps_mask(w2, zero, _CMP_NEQ_UQ);
      if (second != 0) {
        const __m256i at2 = _mm256_add_epi32(at, s2);
        const __m256 g2 = _mm256_mmask_i32gather_ps(zero, second, at2, src, 4);
        const __m256 g3 =
            _mm256_mmask_i32gather_ps(zero, second, _mm256_add_epi32(at2, s1), src, 4);
        const __m256 row1 = _mm256_add_ps(_mm256_mul_ps(u1, g2), _mm256_mul_ps(w1, g3));
        v = _mm256_mask_add_ps(v, second, _mm256_mul_ps(_mm256_sub_ps(one, w2), v),
                               _mm256_mul_ps(w2, row1));
      }
      const __m512d sum = _mm512_loadu_pd(acc + i);
      _mm512_storeu_pd(acc + i, _mm512_mask_add_pd(sum, interior, sum, _mm512_cvtps_pd(v)));
    }
    for (int l = 0, edge = crossing & ~interior; edge != 0; ++l, edge >>= 1)
      if (edge & 1) acc[i + l] += box.sample(src, rows.off1[i + l], rows.off2[i + l], m);
  }
  for (; i < n; ++i)
    if (m >= rows.lo[i] && m <= rows.hi[i])
      acc[i] += box.sample(src, rows.off1[i], rows.off2[i], m);
}

// Where the four lanes' samples come from, for RayBox::scatter: lane l is the ray at off1[l *
// stride], off2[l * stride] with value val[l * stride], in plane m + l * m_step.
struct Lanes {
  const double *off1, *off2;
  const float* val;
  std::ptrdiff_t stride;
  std::int64_t m, m_step;
};

// Adds c's samples to dst lane by lane, as RayBox::scatter does: the interior ones from the
// vector weights, the others by RayBox::scatter itself. (No lambda here: a lambda is not compiled
// for AVX2, and switching between it and this code cost a fifth of the time.)
__attribute__((target("avx2"), always_inline)) inline void add_samples4(const RayBox& box,
                                                                        const Crossings4& c,
                                                                        const Lanes& in,
                                                                        float* dst) {
  const __m128 one = _mm_set1_ps(1.0f);
  const __m128 val = in.stride == 0 ? _mm_set1_ps(in.val[0]) : _mm_loadu_ps(in.val);
  const __m128 r0 = _mm_mul_ps(_mm_sub_ps(one, c.w2), val), r1 = _mm_mul_ps(c.w2, val);
  const __m128 u1 = _mm_sub_ps(one, c.w1);
  alignas(16) float q00[4], q01[4], q10[4], q11[4], w2[4];
  alignas(16) int at[4];
  _mm_store_ps(q00, _mm_mul_ps(u1, r0));
  _mm_store_ps(q01, _mm_mul_ps(c.w1, r0));
  _mm_store_ps(q10, _mm_mul_ps(u1, r1));
  _mm_store_ps(q11, _mm_mul_ps(c.w1, r1));
  _mm_store_ps(w2, c.w2);
  _mm_store_si128(reinterpret_cast<__m128i*>(at), c.at);
  const std::int64_t s1 = box.s1, s2 = box.s2;
  for (int l = 0; l < 4; ++l) {
    if (!(c.crossing >> l & 1)) continue;
    if (c.interior >> l & 1) {
      float* d = dst + at[l];
      d[0] += q00[l];
      d[s1] += q01[l];
      if (w2[l] != 0.0f) {
        d[s2] += q10[l];
        d[s1 + s2] += q11[l];
      }
    } else {
      const std::ptrdiff_t k = l * in.stride;
      box.scatter(dst, in.off1[k], in.off2[k], in.m + l * in.m_step, in.val[k]);
    }
  }
}

// The transpose of forward_plane_avx2: vals[i] spread over ray i's neighbours in plane m, for
// every ray of the row that crosses it, in ray order (the weights four rays at a time, the
// additions one ray at a time, so every voxel sums its contributions in the scalar order).
__attribute__((target("avx2"))) void back_plane_avx2(const RayBox& box, const RowRays& rows,
                                                     std::int64_t m, const float* vals,
                                                     float* dst) {
  const BoxAvx2 b = box_avx2(box);
  const RowPlane p = row_plane(box, m);
  const std::size_t n = rows.lo.size();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const Crossings4 c = row_crossings4(b, p, rows, i);
    if (c.crossing != 0)
      add_samples4(box, c, Lanes{&rows.off1[i], &rows.off2[i], vals + i, 1, m, 0}, dst);
  }
  for (; i < n; ++i)
    if (m >= rows.lo[i] && m <= rows.hi[i])
      box.scatter(dst, rows.off1[i], rows.off2[i], m, vals[i]);
}

// The same for the row's rays one at a time, four planes at a time (rays along x, whose planes
// are neighbours in memory). The four samples of a ray lie in different planes, so they never
// share a voxel, and each voxel still receives its contributions in ray order.
__attribute__((target("avx2"))) void back_rays_avx2(const RayBox& box, const RowRays& rows,
                                                    const float* vals, float* dst) {
  const BoxAvx2 b = box_avx2(box);
  for (std::size_t i = 0; i < rows.lo.size(); ++i)
    for (std::int64_t m = rows.lo[i]; m <= rows.hi[i]; m += 4)
      add_samples4(box, ray_crossings4(box, b, rows.off1[i], rows.off2[i], m, rows.hi[i]),
                   Lanes{&rows.off1[i], &rows.off2[i], vals + i, 0, m, 1}, dst);
}

#pragma GCC diagnostic pop
#endif

std::vector<ViewRays> view_rays(const TiltGeometry& geometry, const VolumeShape& vol,
                                std::int64_t view_nx, std::int64_t view_ny, double pixel) {
  std::vector<ViewRays> rays;
  rays.reserve(geometry.size());
  for (const auto& g : geometry) rays.push_back(make_rays(g, vol, view_nx, view_ny, pixel));
  return rays;
}

}  // namespace

bool cpu_projector_has(const std::string& walk) {
  return cpu_has(simd_from_name(walk));
}

std::string cpu_projector_walk() {
  switch (projector_simd(shape_of(1, 1, 1))) {
    case Simd::avx512:
      return "avx512";
    case Simd::avx2:
      return "avx2";
    case Simd::scalar:
      break;
  }
  return "scalar";
}

Array3 forward_project_cpu(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                           std::int64_t view_ny) {
  const double pixel = volume.voxel_size.x;
  const std::int64_t n_views = static_cast<std::int64_t>(geometry.size());
  Array3 views(view_nx, view_ny, n_views);
  views.voxel_size = VoxelSize{pixel, pixel, pixel};
  const VolumeShape vol = shape_of(volume.nx(), volume.ny(), volume.nz());
  const std::vector<ViewRays> rays = view_rays(geometry, vol, view_nx, view_ny, pixel);
  const float* src = volume.data();
  [[maybe_unused]] const Simd simd = projector_simd(vol);

  // One task per pixel row of each view: every output pixel has exactly one writer.
  parallel_for(n_views * view_ny, [&](std::int64_t begin, std::int64_t end) {
    RowRays row_rays(view_nx);
    std::vector<double> acc(static_cast<std::size_t>(view_nx));
    for (std::int64_t row = begin; row < end; ++row) {
      const std::int64_t k = row / view_ny, j = row % view_ny;
      const ViewRays& r = rays[static_cast<std::size_t>(k)];
      const std::int64_t nD = vol.n[r.axis_d];
      const RayBox box(r, vol, 0, vol.n[r.axis_1], 0, vol.n[r.axis_2]);
      float* out = views.slice(k) + j * view_nx;
      row_rays.fill(box, j, 0, nD - 1, [](std::size_t) { return false; });
      std::fill(acc.begin(), acc.end(), 0.0);
#ifdef AET_PROJECTOR_SIMD
      if (simd != Simd::scalar) {
        for (std::int64_t m = row_rays.m_lo; m <= row_rays.m_hi; ++m)
          (simd == Simd::avx512 ? forward_plane_avx512 : forward_plane_avx2)(box, row_rays, m, src,
                                                                             acc.data());
      } else
#endif
        row_rays.walk(box.sD == 1, [&](std::size_t i, std::int64_t m) {
          acc[i] += box.sample(src, row_rays.off1[i], row_rays.off2[i], m);
        });
      for (std::int64_t i = 0; i < view_nx; ++i) out[i] = static_cast<float>(acc[i] * r.weight);
    }
  });
  return views;
}

Array3 back_project_cpu(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                        std::int64_t ny, std::int64_t nz) {
  const double pixel = views.voxel_size.x;
  const std::int64_t view_nx = views.nx(), view_ny = views.ny();
  const std::int64_t n_views = static_cast<std::int64_t>(geometry.size());
  Array3 volume(nx, ny, nz);
  volume.voxel_size = VoxelSize{pixel, pixel, pixel};
  const VolumeShape vol = shape_of(nx, ny, nz);
  const std::vector<ViewRays> rays = view_rays(geometry, vol, view_nx, view_ny, pixel);
  float* dst = volume.data();
  [[maybe_unused]] const Simd simd = projector_simd(vol);

  // Thread-owned slabs of y planes [y_begin, y_end): see the file comment.
  parallel_for(ny, [&](std::int64_t y_begin, std::int64_t y_end) {
    RowRays row_rays(view_nx);
    std::vector<float> vals(static_cast<std::size_t>(view_nx));
    for (std::int64_t k = 0; k < n_views; ++k) {
      const ViewRays& r = rays[static_cast<std::size_t>(k)];
      // Index bounds of each in-plane axis for this slab (y restricted, the others whole).
      const RayBox box(r, vol, r.axis_1 == 1 ? y_begin : 0, r.axis_1 == 1 ? y_end : vol.n[r.axis_1],
                       r.axis_2 == 1 ? y_begin : 0, r.axis_2 == 1 ? y_end : vol.n[r.axis_2]);
      const std::int64_t d_lo = r.axis_d == 1 ? y_begin : 0;
      const std::int64_t d_hi = r.axis_d == 1 ? y_end - 1 : vol.n[r.axis_d] - 1;
      const float* view = views.slice(k);
      for (std::int64_t j = 0; j < view_ny; ++j) {
        const float* in = view + j * view_nx;
        for (std::int64_t i = 0; i < view_nx; ++i) vals[i] = static_cast<float>(in[i] * r.weight);
        // A zero pixel contributes nothing; skipping it keeps sparse views fast.
        row_rays.fill(box, j, d_lo, d_hi, [&](std::size_t i) { return vals[i] == 0.0f; });
#ifdef AET_PROJECTOR_SIMD
        if (simd != Simd::scalar) {
          if (box.sD == 1) {
            back_rays_avx2(box, row_rays, vals.data(), dst);
          } else {
            for (std::int64_t m = row_rays.m_lo; m <= row_rays.m_hi; ++m)
              back_plane_avx2(box, row_rays, m, vals.data(), dst);
          }
          continue;
        }
#endif
        row_rays.walk(box.sD == 1, [&](std::size_t i, std::int64_t m) {
          box.scatter(dst, row_rays.off1[i], row_rays.off2[i], m, vals[i]);
        });
      }
    }
  });
  return volume;
}

}  // namespace aet::detail
