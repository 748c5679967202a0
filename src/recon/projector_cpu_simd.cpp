// The CPU projector's vector walks (x86-64: AVX2, AVX-512); projector_cpu.cpp picks one.
//
// The same operations as RayBox::sample and RayBox::scatter, lane by lane: the crossing in
// double, floor, the float weights, the interpolation in float, the forward sum in double. Vector
// instructions round each operation as the scalar ones do (and no FMA here either), so the rays'
// sums and the voxels' sums keep their bits: the scalar walk stays the reference and the tests
// compare the two bit for bit. Samples whose neighbours are not all inside the box go to the
// scalar code. Offsets are 32-bit, so volumes of 2^31 voxels or more take the scalar walk.
#include "projector_cpu_walk.hpp"

#ifdef AET_PROJECTOR_SIMD

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace aet::detail::cpu_walk {

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_pd(), which
// -Wmaybe-uninitialized reports as uninitialised inside the headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

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

}  // namespace

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

}  // namespace aet::detail::cpu_walk

#endif  // AET_PROJECTOR_SIMD
