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
// RayBox and RowRays are in projector_cpu_walk.hpp, the vector walks in projector_cpu_simd.cpp.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "joseph_rays.hpp"
#include "projector_cpu_walk.hpp"
#include "projector_detail.hpp"

namespace aet::detail {

using joseph::make_rays;
using joseph::shape_of;
using joseph::ViewRays;
using joseph::VolumeShape;

namespace {

using cpu_walk::RayBox;
using cpu_walk::RowRays;
#ifdef AET_PROJECTOR_SIMD
using cpu_walk::back_plane_avx2;
using cpu_walk::back_rays_avx2;
using cpu_walk::forward_plane_avx2;
using cpu_walk::forward_plane_avx512;
#endif

// Which walk the projector uses (AET_CPU_PROJECTOR: auto, scalar, avx2, avx512).
enum class Simd { scalar, avx2, avx512 };

#ifdef AET_PROJECTOR_SIMD
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
