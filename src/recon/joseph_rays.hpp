// Ray set-up of the Joseph projector pair, shared by the CPU reference (projector_cpu.cpp) and the
// CUDA back end (cuda/recon/), which must use exactly the same parametrisation to agree with it.
//
// Each ray is described in volume index coordinates: it crosses plane m of its dominant axis D at
// in-plane position (off1 + m * slope1, off2 + m * slope2) and every crossing carries the weight
// 1 / |cos| (path length between planes in voxel units).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "aet/core/array.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::detail::joseph {

// Integer range [lo, hi] of planes m with lower < off + m * slope < upper (open interval);
// widened by one plane on each side against rounding: the per-voxel bounds checks make extra
// planes harmless, while a missing plane would break the adjoint.
inline void clip_planes(double off, double slope, double lower, double upper, std::int64_t& lo,
                        std::int64_t& hi) {
  if (slope == 0.0) {
    if (!(off > lower && off < upper)) hi = lo - 1;
    return;
  }
  double t0 = (lower - off) / slope, t1 = (upper - off) / slope;
  if (t0 > t1) std::swap(t0, t1);
  // Saturate before converting: rays nearly parallel to the planes give huge bounds.
  const double big = 4.0e18;
  t0 = std::max(-big, std::min(big, t0));
  t1 = std::max(-big, std::min(big, t1));
  lo = std::max(lo, static_cast<std::int64_t>(std::floor(t0)));
  hi = std::min(hi, static_cast<std::int64_t>(std::ceil(t1)));
}

// Per-view ray set: the dominant axis and the affine maps from pixel (i, j) to the ray's plane
// crossings, all in volume index units.
struct ViewRays {
  int axis_d = 2, axis_1 = 0, axis_2 = 1;  // dominant axis and the two in-plane axes
  double weight = 1.0;                     // path length between planes, voxel units
  // Crossing of plane m by the ray of pixel (i, j), along in-plane axis a (0 -> axis_1, 1 ->
  // axis_2): base[a] + i * di[a] + j * dj[a] + m * slope[a].
  double base[2] = {0, 0}, di[2] = {0, 0}, dj[2] = {0, 0}, slope[2] = {0, 0};
};

struct VolumeShape {
  std::int64_t n[3];
  std::int64_t stride[3];
};

inline ViewRays make_rays(const ViewGeometry& g, const VolumeShape& vol, std::int64_t view_nx,
                          std::int64_t view_ny, double pixel) {
  // Pixel (i, j) centre in view coordinates, in voxel units: u = i - cu - sx / a.
  const double cu = centre_index(view_nx) + g.shift.x() / pixel;
  const double cv = centre_index(view_ny) + g.shift.y() / pixel;
  // Ray point g0(i, j) = c + eu * (i - cu) + ev * (j - cv) in index coordinates, direction d.
  const Vec3 eu = g.R.row(0).transpose(), ev = g.R.row(1).transpose(), d = g.R.row(2).transpose();
  const double c[3] = {centre_index(vol.n[0]), centre_index(vol.n[1]), centre_index(vol.n[2])};
  ViewRays r;
  r.axis_d = 0;
  for (int a = 1; a < 3; ++a)
    if (std::abs(d[a]) > std::abs(d[r.axis_d])) r.axis_d = a;
  r.axis_1 = r.axis_d == 0 ? 1 : 0;
  r.axis_2 = r.axis_d == 2 ? 1 : 2;
  const int D = r.axis_d;
  r.weight = 1.0 / std::abs(d[D]);
  // Along the ray, plane m is reached at t = (m - g0_D) / d_D, so the in-plane coordinate is
  // g0_A + (m - g0_D) * d_A / d_D.
  const int axes[2] = {r.axis_1, r.axis_2};
  for (int k = 0; k < 2; ++k) {
    const int A = axes[k];
    const double s = d[A] / d[D];
    r.slope[k] = s;
    r.di[k] = eu[A] - eu[D] * s;
    r.dj[k] = ev[A] - ev[D] * s;
    const double g0A = c[A] - eu[A] * cu - ev[A] * cv;
    const double g0D = c[D] - eu[D] * cu - ev[D] * cv;
    r.base[k] = g0A - g0D * s;
  }
  return r;
}

// floor() without the libm call; arguments are bounded (clipped rays), so no overflow.
inline std::int64_t floor_index(double a) {
  const std::int64_t t = static_cast<std::int64_t>(a);
  return t - (a < static_cast<double>(t) ? 1 : 0);
}

inline VolumeShape shape_of(std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  return VolumeShape{{nx, ny, nz}, {1, nx, nx * ny}};
}

}  // namespace aet::detail::joseph
