// Projector dispatch: validates the arguments once, then runs the CPU reference or (when it
// exists) the CUDA implementation, which must agree with the CPU one within float tolerance.
#include "aet/recon/projector.hpp"

#include <cmath>
#include <string>

#include "aet/core/error.hpp"
#include "projector_detail.hpp"

#ifndef AET_WITH_CUDA
#define AET_WITH_CUDA 0
#endif

namespace aet {
namespace {

void check_geometry(const TiltGeometry& geometry) {
  if (geometry.empty()) fail_input("projector: the view geometry holds no views");
  for (std::size_t k = 0; k < geometry.size(); ++k) {
    const auto& g = geometry[k];
    if (!g.R.allFinite() || !g.shift.allFinite())
      fail_input("projector: view " + std::to_string(k) + " has a non-finite rotation or shift");
    // The projector relies on R being a rotation (unit ray direction, orthogonal detector axes).
    if (!(g.R * g.R.transpose()).isIdentity(1e-6))
      fail_input("projector: view " + std::to_string(k) + " has a matrix that is not a rotation");
  }
}

void check_pixel(const VoxelSize& v, const char* what) {
  if (!(v.x > 0) || !std::isfinite(v.x))
    fail_input(std::string("projector: the ") + what + " size must be positive and finite");
  if (std::abs(v.y - v.x) > 1e-6 * v.x)
    fail_input(std::string("projector: the ") + what + " size must be the same along x and y");
}

void check_size(std::int64_t n, const char* what) {
  if (n <= 0) fail_input(std::string("projector: ") + what + " must be positive");
}

#if !AET_WITH_CUDA
[[noreturn]] void no_cuda_projector() {
  fail_input("this build of aet has no CUDA support; use --device cpu");
}
#endif

}  // namespace

bool cuda_projector_available() {
  return AET_WITH_CUDA != 0;
}

Array3 forward_project(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                       std::int64_t view_ny, const Device& dev) {
  check_geometry(geometry);
  check_size(view_nx, "the view width");
  check_size(view_ny, "the view height");
  if (volume.empty()) fail_input("projector: the volume is empty");
  check_pixel(volume.voxel_size, "voxel");
  if (std::abs(volume.voxel_size.z - volume.voxel_size.x) > 1e-6 * volume.voxel_size.x)
    fail_input("projector: the volume's voxels must be cubic (isotropic voxel size)");
  switch (dev.kind) {
    case DeviceKind::cpu:
      return detail::forward_project_cpu(volume, geometry, view_nx, view_ny);
    case DeviceKind::cuda:
#if AET_WITH_CUDA
      return detail::forward_project_cuda(volume, geometry, view_nx, view_ny, dev.index);
#else
      no_cuda_projector();
#endif
  }
  throw InternalError("forward_project: unknown device kind");
}

Array3 back_project(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                    std::int64_t ny, std::int64_t nz, const Device& dev) {
  check_geometry(geometry);
  if (views.empty()) fail_input("projector: the view stack is empty");
  if (views.nz() != static_cast<std::int64_t>(geometry.size()))
    fail_input("projector: " + std::to_string(views.nz()) + " views but " +
               std::to_string(geometry.size()) + " view geometries");
  check_pixel(views.voxel_size, "pixel");
  check_size(nx, "the volume width");
  check_size(ny, "the volume height");
  check_size(nz, "the volume depth");
  checked_product(nx, ny, nz);
  switch (dev.kind) {
    case DeviceKind::cpu:
      return detail::back_project_cpu(views, geometry, nx, ny, nz);
    case DeviceKind::cuda:
#if AET_WITH_CUDA
      return detail::back_project_cuda(views, geometry, nx, ny, nz, dev.index);
#else
      no_cuda_projector();
#endif
  }
  throw InternalError("back_project: unknown device kind");
}

}  // namespace aet
