// Matched parallel-beam projector pair for arbitrary per-view rotations and shifts.
//
// Geometry (DESIGN.md, docs/conventions.md): voxel (ix, iy, iz) of an nx x ny x nz volume is
// centred at p = ((ix - nx/2) a, (iy - ny/2) a, (iz - nz/2) a) (integer division), a the voxel
// size; a view maps p to (u, v, w) = R p + (shift_x, shift_y, 0), and pixel (i, j) of a
// view_nx x view_ny view is centred at ((i - view_nx/2) a, (j - view_ny/2) a). The pixel size of
// the views is the voxel size of the volume.
//
// Model (Joseph's method): the ray through each pixel centre, along w, is sampled once per plane
// of the volume axis it is most parallel to; the volume is interpolated bilinearly in that plane
// (zero outside the volume) and each sample is weighted by the path length between planes. Line
// integrals are in VOXEL units: a ray through k voxels of value 1 along an axis gives k (multiply
// by the voxel size for Angstrom units). back_project is the exact transpose of forward_project
// (the same weights scattered back), so <A x, y> = <x, A^T y> to float rounding.
//
// Both are deterministic: the result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet {

// Views of `volume` (isotropic voxel size = pixel size): view_nx x view_ny x geometry.size(),
// voxel_size = the volume's voxel size on every axis. Geometry shifts are in Angstrom.
// Throws InputError for an empty geometry, a non-isotropic or non-positive voxel size, or
// non-positive view sizes; dev cuda throws InputError in a build without CUDA.
Array3 forward_project(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                       std::int64_t view_ny, const Device& dev);

// Exact adjoint of forward_project: an nx x ny x nz volume with voxel_size = the views' pixel
// size (taken from views.voxel_size.x). views.nz() must equal geometry.size().
Array3 back_project(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                    std::int64_t ny, std::int64_t nz, const Device& dev);

// Whether forward_project / back_project can run on a CUDA device in this build.
bool cuda_projector_available();

namespace detail {
// The CPU implementation, the reference in tests. Arguments already validated.
Array3 forward_project_cpu(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                           std::int64_t view_ny);
Array3 back_project_cpu(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                        std::int64_t ny, std::int64_t nz);
// The CPU pair walks rows of rays with AVX-512 or AVX2 where the CPU has them (same bits as the
// scalar walk); AET_CPU_PROJECTOR=scalar|avx2|avx512 picks one. Whether this CPU and build have
// `walk` ("scalar", "avx2" or "avx512"); InputError for another name.
bool cpu_projector_has(const std::string& walk);
// The walk the CPU pair takes for volumes below 2^31 voxels (larger ones take the scalar walk).
std::string cpu_projector_walk();
// The CUDA implementation (cuda/recon/projector.cu; CUDA builds only): host arrays in and out,
// on device dev.index. In single arithmetic (the default) it agrees with the CPU reference to about
// 1e-5 relative; with AET_CUDA_PROJECTOR=reference to float summation order.
Array3 forward_project_cuda(const Array3& volume, const TiltGeometry& geometry,
                            std::int64_t view_nx, std::int64_t view_ny, int device_index);
Array3 back_project_cuda(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                         std::int64_t ny, std::int64_t nz, int device_index);
// Benchmark hook (CUDA builds only): seconds of one forward projection, one back projection
// (including zeroing the volume) and the pair, with the volume, rays and views resident on the
// device, as inside a solve (the host API above adds the uploads and downloads); the best of
// `repeats` timed pairs after one warm-up, timed by CUDA events, in the arithmetic the solvers
// use (single unless AET_CUDA_PROJECTOR=reference; docs/reconstruction.md). All views must fit on
// the device at once.
struct PairTiming {
  double forward = 0, back = 0, pair = 0;
  bool single = true;  // the arithmetic timed: single (true) or reference
};
PairTiming time_projection_pair_cuda(const Array3& volume, const TiltGeometry& geometry,
                                     std::int64_t view_nx, std::int64_t view_ny, int device_index,
                                     int repeats);
}  // namespace detail

}  // namespace aet
