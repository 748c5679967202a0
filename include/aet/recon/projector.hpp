// Matched parallel-beam projector pair for arbitrary per-view rotations and shifts.
//
// Geometry (docs/design.md, docs/conventions.md): voxel (ix, iy, iz) of an nx x ny x nz volume is
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

}  // namespace aet
