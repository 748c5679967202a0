// Extended objects (ReconOptions::extended): a film seen through a field of view narrower than
// itself. Each tilted view integrates material beside the field of view; a volume only as wide as
// the field has no voxels for it, and the solve puts that signal into the field's vacuum and faces
// (on the measured Ta film: a flat depth profile and a third of the traced atoms false, R1 0.236).
// Solved on a volume as wide as the rays reach within the depth, the field of view is left with its
// own material (R1 0.130 on the same views; docs/reconstruction.md).
#include <algorithm>
#include <cmath>
#include <string>

#include "aet/core/error.hpp"
#include "aet/recon/solvers.hpp"
#include "recon_detail.hpp"

namespace aet {
namespace {

// The smallest size >= need with the parity of n (so n sits centred), within [n, limit].
std::int64_t centred_size(double need, std::int64_t n, std::int64_t limit) {
  auto s = static_cast<std::int64_t>(std::ceil(need));
  s = std::clamp(s, n, limit);
  if ((s - n) % 2) s = s + 1 <= limit ? s + 1 : s - 1;
  return s;
}

// The centred nx x ny x nz block of `full` (a crop) or `full` placed at the centre of a larger
// array, each new column in x and row in y continuing from the nearest edge (edge = true) or zero.
Array3 recentre(const Array3& a, std::int64_t nx, std::int64_t ny, bool edge) {
  Array3 out(nx, ny, a.nz());
  out.voxel_size = a.voxel_size;
  const std::int64_t ox = a.nx() / 2 - nx / 2, oy = a.ny() / 2 - ny / 2;
  for (std::int64_t z = 0; z < a.nz(); ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const std::int64_t sx = x + ox, sy = y + oy;
        const bool inside = sx >= 0 && sx < a.nx() && sy >= 0 && sy < a.ny();
        if (inside)
          out(x, y, z) = a(sx, sy, z);
        else if (edge)
          out(x, y, z) = a(std::clamp<std::int64_t>(sx, 0, a.nx() - 1),
                           std::clamp<std::int64_t>(sy, 0, a.ny() - 1), z);
      }
  return out;
}

}  // namespace

VolumeExtent extended_object_extent(const TiltGeometry& geometry, std::int64_t views_nx,
                                    std::int64_t views_ny, double pixel, std::int64_t nx,
                                    std::int64_t ny, std::int64_t nz) {
  if (views_nx < 1 || views_ny < 1 || nx < 1 || ny < 1 || nz < 1 || !(pixel > 0))
    fail_input("extended object: sizes and the pixel size must be positive");
  // Each corner ray of a view's field (u, v at the outer pixel edges, shift removed) meets the
  // depth's two faces z = +-zh; the volume must reach the furthest of those points.
  const double uh = 0.5 * static_cast<double>(views_nx), vh = 0.5 * static_cast<double>(views_ny);
  const double zh = 0.5 * static_cast<double>(nz);
  double reach_x = 0, reach_y = 0;
  for (const ViewGeometry& g : geometry) {
    const Mat3 Rt = g.R.transpose();  // (u, v, w) -> p
    // A view whose beam lies in the depth's plane sees arbitrarily far: it is skipped here and the
    // limit below applies.
    if (std::abs(Rt(2, 2)) < 1e-3) continue;
    const double su = g.shift.x() / pixel, sv = g.shift.y() / pixel;
    for (const double u : {-uh, uh})
      for (const double v : {-vh, vh})
        for (const double z : {-zh, zh}) {
          const double uu = u - su, vv = v - sv;
          const double w = (z - Rt(2, 0) * uu - Rt(2, 1) * vv) / Rt(2, 2);
          const Vec3 p = Rt * Vec3(uu, vv, w);
          reach_x = std::max(reach_x, std::abs(p.x()));
          reach_y = std::max(reach_y, std::abs(p.y()));
        }
  }
  VolumeExtent e;
  e.nx = centred_size(2 * reach_x, nx, 4 * nx);
  e.ny = centred_size(2 * reach_y, ny, 4 * ny);
  return e;
}

namespace detail {

ReconResult reconstruct_extended(const Array3& views, const TiltGeometry& geometry,
                                 const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                                 std::int64_t nz) {
  const VolumeExtent e =
      extended_object_extent(geometry, views.nx(), views.ny(), views.voxel_size.x, nx, ny, nz);
  ReconOptions inner = opt;
  inner.extended = false;
  inner.nx = e.nx;
  inner.ny = e.ny;
  inner.nz = nz;
  // A field-of-view support or start is carried to the extended volume; one of the extended size
  // is taken as it is.
  const auto field_sized = [&](const Array3* a, const char* what) {
    if (!a) return false;
    const bool field = a->nx() == nx && a->ny() == ny && a->nz() == nz;
    if (!field && !(a->nx() == e.nx && a->ny() == e.ny && a->nz() == nz))
      fail_input(std::string("reconstruct: the ") + what + " is " + std::to_string(a->nx()) +
                 " x " + std::to_string(a->ny()) + " x " + std::to_string(a->nz()) +
                 " but the extended object's volume is " + std::to_string(nx) + " x " +
                 std::to_string(ny) + " x " + std::to_string(nz) + " (field of view) or " +
                 std::to_string(e.nx) + " x " + std::to_string(e.ny) + " x " + std::to_string(nz) +
                 " (whole solve)");
    return field && (nx != e.nx || ny != e.ny);
  };
  Array3 support, initial;
  if (field_sized(opt.support, "support")) {
    support = recentre(*opt.support, e.nx, e.ny, true);
    inner.support = &support;
  }
  if (field_sized(opt.initial, "starting volume")) {
    initial = recentre(*opt.initial, e.nx, e.ny, false);
    inner.initial = &initial;
  }
  ReconResult r = reconstruct(views, geometry, inner);
  r.full_volume = std::move(r.volume);
  r.volume = recentre(r.full_volume, nx, ny, false);
  return r;
}

}  // namespace detail
}  // namespace aet
