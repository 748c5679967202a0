// CPU reference projector pair (Joseph's method), see projector.hpp for the model and
// joseph_rays.hpp for the ray parametrisation (shared with the CUDA back end). forward_project sums
// the bilinear interpolation of each ray's plane crossings; back_project scatters exactly the same
// weights. To make the scatter race-free and deterministic, each thread owns a slab of y planes of
// the output and walks every ray but only the crossings (and only the voxels) inside its slab: each
// voxel then receives its contributions in the same order (view, pixel row, pixel, plane) whatever
// the number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

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

Array3 forward_project_cpu(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                           std::int64_t view_ny) {
  const double pixel = volume.voxel_size.x;
  const std::int64_t n_views = static_cast<std::int64_t>(geometry.size());
  Array3 views(view_nx, view_ny, n_views);
  views.voxel_size = VoxelSize{pixel, pixel, pixel};
  const VolumeShape vol = shape_of(volume.nx(), volume.ny(), volume.nz());
  std::vector<ViewRays> rays;
  rays.reserve(geometry.size());
  for (const auto& g : geometry) rays.push_back(make_rays(g, vol, view_nx, view_ny, pixel));
  const float* src = volume.data();

  // One task per pixel row of each view: every output pixel has exactly one writer.
  parallel_for(n_views * view_ny, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      const std::int64_t k = row / view_ny, j = row % view_ny;
      const ViewRays& r = rays[static_cast<std::size_t>(k)];
      const std::int64_t nD = vol.n[r.axis_d], n1 = vol.n[r.axis_1], n2 = vol.n[r.axis_2];
      const std::int64_t sD = vol.stride[r.axis_d], s1 = vol.stride[r.axis_1],
                         s2 = vol.stride[r.axis_2];
      // Interior test: both neighbours inside when 0 <= i < n - 1 (unsigned compare).
      const std::uint64_t last1 = static_cast<std::uint64_t>(n1 - 1),
                          last2 = static_cast<std::uint64_t>(n2 - 1);
      float* out = views.slice(k) + j * view_nx;
      for (std::int64_t i = 0; i < view_nx; ++i) {
        const double off1 = r.base[0] + i * r.di[0] + j * r.dj[0];
        const double off2 = r.base[1] + i * r.di[1] + j * r.dj[1];
        std::int64_t lo = 0, hi = nD - 1;
        clip_planes(off1, r.slope[0], -1.0, static_cast<double>(n1), lo, hi);
        clip_planes(off2, r.slope[1], -1.0, static_cast<double>(n2), lo, hi);
        lo = std::max<std::int64_t>(lo, 0);
        hi = std::min(hi, nD - 1);
        double acc = 0.0;
        for (std::int64_t m = lo; m <= hi; ++m) {
          const double a1 = off1 + m * r.slope[0], a2 = off2 + m * r.slope[1];
          const std::int64_t i1 = floor_index(a1), i2 = floor_index(a2);
          const float w1 = static_cast<float>(a1 - i1), w2 = static_cast<float>(a2 - i2);
          // Signed offset: only neighbours inside the volume are dereferenced.
          const std::int64_t at = m * sD + i1 * s1 + i2 * s2;
          float v;
          if (static_cast<std::uint64_t>(i1) < last1 && static_cast<std::uint64_t>(i2) < last2) {
            v = (1.0f - w1) * src[at] + w1 * src[at + s1];
            // Single-axis rays sit exactly on a plane of axis 2 (w2 = 0, the same for every
            // sample of the ray, so the branch is predictable): half the reads.
            if (w2 != 0.0f)
              v = (1.0f - w2) * v + w2 * ((1.0f - w1) * src[at + s2] + w1 * src[at + s1 + s2]);
          } else {
            const bool lo1 = i1 >= 0 && i1 < n1, hi1 = i1 + 1 >= 0 && i1 + 1 < n1;
            const bool lo2 = i2 >= 0 && i2 < n2, hi2 = i2 + 1 >= 0 && i2 + 1 < n2;
            float row0 = 0.0f, row1 = 0.0f;
            if (lo2) {
              if (lo1) row0 += (1.0f - w1) * src[at];
              if (hi1) row0 += w1 * src[at + s1];
            }
            if (hi2) {
              if (lo1) row1 += (1.0f - w1) * src[at + s2];
              if (hi1) row1 += w1 * src[at + s1 + s2];
            }
            v = (1.0f - w2) * row0 + w2 * row1;
          }
          acc += v;
        }
        out[i] = static_cast<float>(acc * r.weight);
      }
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
  std::vector<ViewRays> rays;
  rays.reserve(geometry.size());
  for (const auto& g : geometry) rays.push_back(make_rays(g, vol, view_nx, view_ny, pixel));
  float* dst = volume.data();

  // Thread-owned slabs of y planes [y_begin, y_end): see the file comment.
  parallel_for(ny, [&](std::int64_t y_begin, std::int64_t y_end) {
    for (std::int64_t k = 0; k < n_views; ++k) {
      const ViewRays& r = rays[static_cast<std::size_t>(k)];
      const std::int64_t nD = vol.n[r.axis_d];
      const std::int64_t sD = vol.stride[r.axis_d], s1 = vol.stride[r.axis_1],
                         s2 = vol.stride[r.axis_2];
      // Index bounds of each in-plane axis for this slab (y restricted, the others whole).
      const std::int64_t b1_lo = r.axis_1 == 1 ? y_begin : 0;
      const std::int64_t b1_hi = r.axis_1 == 1 ? y_end : vol.n[r.axis_1];
      const std::int64_t b2_lo = r.axis_2 == 1 ? y_begin : 0;
      const std::int64_t b2_hi = r.axis_2 == 1 ? y_end : vol.n[r.axis_2];
      const std::int64_t d_lo = r.axis_d == 1 ? y_begin : 0;
      const std::int64_t d_hi = r.axis_d == 1 ? y_end - 1 : nD - 1;
      const std::uint64_t last1 = static_cast<std::uint64_t>(b1_hi - b1_lo - 1),
                          last2 = static_cast<std::uint64_t>(b2_hi - b2_lo - 1);
      const float* view = views.slice(k);
      for (std::int64_t j = 0; j < view_ny; ++j) {
        const float* in = view + j * view_nx;
        for (std::int64_t i = 0; i < view_nx; ++i) {
          const float val = static_cast<float>(in[i] * r.weight);
          if (val == 0.0f) continue;  // contributes nothing; skipping keeps sparse views fast
          const double off1 = r.base[0] + i * r.di[0] + j * r.dj[0];
          const double off2 = r.base[1] + i * r.di[1] + j * r.dj[1];
          std::int64_t lo = d_lo - 1, hi = d_hi + 1;
          clip_planes(off1, r.slope[0], static_cast<double>(b1_lo) - 1.0,
                      static_cast<double>(b1_hi), lo, hi);
          clip_planes(off2, r.slope[1], static_cast<double>(b2_lo) - 1.0,
                      static_cast<double>(b2_hi), lo, hi);
          lo = std::max(lo, d_lo);
          hi = std::min(hi, d_hi);
          for (std::int64_t m = lo; m <= hi; ++m) {
            const double a1 = off1 + m * r.slope[0], a2 = off2 + m * r.slope[1];
            const std::int64_t i1 = floor_index(a1), i2 = floor_index(a2);
            const float w1 = static_cast<float>(a1 - i1), w2 = static_cast<float>(a2 - i2);
            const std::int64_t at = m * sD + i1 * s1 + i2 * s2;
            // Same weights as the forward projector, in the same float arithmetic.
            const float r0 = (1.0f - w2) * val, r1 = w2 * val;
            if (static_cast<std::uint64_t>(i1 - b1_lo) < last1 &&
                static_cast<std::uint64_t>(i2 - b2_lo) < last2) {
              dst[at] += (1.0f - w1) * r0;
              dst[at + s1] += w1 * r0;
              if (w2 != 0.0f) {
                dst[at + s2] += (1.0f - w1) * r1;
                dst[at + s1 + s2] += w1 * r1;
              }
            } else {
              const bool lo1 = i1 >= b1_lo && i1 < b1_hi, hi1 = i1 + 1 >= b1_lo && i1 + 1 < b1_hi;
              const bool lo2 = i2 >= b2_lo && i2 < b2_hi, hi2 = i2 + 1 >= b2_lo && i2 + 1 < b2_hi;
              if (lo2) {
                if (lo1) dst[at] += (1.0f - w1) * r0;
                if (hi1) dst[at + s1] += w1 * r0;
              }
              if (hi2) {
                if (lo1) dst[at + s2] += (1.0f - w1) * r1;
                if (hi1) dst[at + s1 + s2] += w1 * r1;
              }
            }
          }
        }
      }
    }
  });
  return volume;
}

}  // namespace aet::detail
