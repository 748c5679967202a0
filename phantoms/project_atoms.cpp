// Intensity model, input checks, device dispatch and the ideal target volume of the analytic
// Gaussian projector.
#include "aet/phantoms/project_atoms.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "phantoms/gaussian_pixel.hpp"
#include "phantoms/project_atoms_detail.hpp"

namespace aet::phantoms {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool finite(const Vec3& p) {
  return std::isfinite(p.x()) && std::isfinite(p.y()) && std::isfinite(p.z());
}

}  // namespace

namespace detail {

void check_imaging_model(const ImagingModel& im) {
  if (!std::isfinite(im.z_exponent)) fail_input("imaging model: z_exponent must be finite");
  if (!std::isfinite(im.scale) || im.scale < 0.0)
    fail_input("imaging model: scale must be finite and >= 0");
  if (!std::isfinite(im.b_factor) || im.b_factor < 0.0)
    fail_input("imaging model: default B factor must be finite and >= 0 (got " +
               std::to_string(im.b_factor) + ")");
  if (!std::isfinite(im.probe_sigma) || im.probe_sigma < 0.0)
    fail_input("imaging model: probe sigma must be finite and >= 0");
  if (!std::isfinite(im.tail_fraction) || im.tail_fraction < 0.0 || im.tail_fraction > 1.0)
    fail_input("imaging model: probe tail fraction must be in [0, 1]");
  if (im.tail_fraction > 0.0 && (!std::isfinite(im.tail_sigma) || im.tail_sigma <= 0.0))
    fail_input("imaging model: probe tail sigma must be finite and > 0 when the tail is used");
}

void check_projection_inputs(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                             std::int64_t ny, double pixel, const ImagingModel& im) {
  check_imaging_model(im);
  if (nx <= 0 || ny <= 0)
    fail_input("projection: view size must be positive (got " + std::to_string(nx) + " x " +
               std::to_string(ny) + ")");
  if (!std::isfinite(pixel) || pixel <= 0.0)
    fail_input("projection: pixel size must be finite and > 0 (got " + std::to_string(pixel) + ")");
  if (views.empty()) fail_input("projection: no views to project");
  const std::size_t n = atoms.positions.size();
  if (atoms.weight.size() != n || atoms.sigma.size() != n)
    fail_input("projection: positions, weights and widths differ in length");
  for (std::size_t i = 0; i < n; ++i) {
    if (!finite(atoms.positions[i]))
      fail_input("projection: atom " + std::to_string(i) + " has a non-finite position");
    if (!std::isfinite(atoms.weight[i]))
      fail_input("projection: atom " + std::to_string(i) + " has a non-finite weight");
    if (!std::isfinite(atoms.sigma[i]) || atoms.sigma[i] < 0.0)
      fail_input("projection: atom " + std::to_string(i) + " has an invalid width");
  }
  for (std::size_t k = 0; k < views.size(); ++k) {
    if (!views[k].R.allFinite() || !views[k].shift.allFinite())
      fail_input("projection: view " + std::to_string(k) + " has a non-finite geometry");
  }
}

}  // namespace detail

GaussianAtoms gaussian_atoms(const AtomModel& model, const ImagingModel& im) {
  detail::check_imaging_model(im);
  const std::size_t n = model.size();
  if (model.species.size() != n)
    fail_input("atom model: " + std::to_string(model.species.size()) + " species for " +
               std::to_string(n) + " positions");
  const std::vector<double>* weight = model.find_property("weight");
  const std::vector<double>* bfac = model.find_property("b_factor");
  if ((weight && weight->size() != n) || (bfac && bfac->size() != n))
    fail_input("atom model: a per-atom property has the wrong length");

  GaussianAtoms out;
  out.positions = model.positions;
  out.weight.resize(n);
  out.sigma.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string where = "atom " + std::to_string(i) + " (" + model.species[i] + ")";
    if (!finite(model.positions[i])) fail_input(where + ": non-finite position");

    double w;
    if (weight) {
      w = (*weight)[i];
      if (!std::isfinite(w) || w < 0.0) fail_input(where + ": weight must be finite and >= 0");
    } else {
      w = im.scale * std::pow(static_cast<double>(element(model.species[i]).z), im.z_exponent);
    }

    double b = im.b_factor;
    if (bfac) {
      const double bi = (*bfac)[i];
      if (std::isnan(bi) || bi < 0.0 || std::isinf(bi))
        fail_input(where + ": B factor must be finite and >= 0 (got " + std::to_string(bi) + ")");
      if (bi > 0.0) b = bi;  // 0 means "not refined": the default applies
    }
    if (b <= 0.0 && im.probe_sigma <= 0.0)
      fail_input(where + ": B factor 0 and no probe blur leave the atom without a width");

    out.weight[i] = w;
    out.sigma[i] = std::sqrt(b / (8.0 * kPi * kPi));
  }
  return out;
}

Array3 project_atoms(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                     std::int64_t ny, double pixel, const ImagingModel& im, const Device& dev) {
  if (dev.kind == DeviceKind::cpu)
    return detail::project_atoms_cpu(atoms, views, nx, ny, pixel, im);
#if AET_WITH_CUDA
  return detail::project_atoms_cuda(atoms, views, nx, ny, pixel, im, dev.index);
#else
  fail_input("projection on " + dev.str() +
             ": this aet binary was built without CUDA (AET_WITH_CUDA=OFF); use --device cpu");
#endif
}

Array3 ideal_volume(const GaussianAtoms& atoms, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                    double voxel) {
  if (nx <= 0 || ny <= 0 || nz <= 0)
    fail_input("ideal volume: size must be positive (got " + std::to_string(nx) + " x " +
               std::to_string(ny) + " x " + std::to_string(nz) + ")");
  if (!std::isfinite(voxel) || voxel <= 0.0)
    fail_input("ideal volume: voxel size must be finite and > 0");
  const std::size_t n = atoms.positions.size();
  if (atoms.weight.size() != n || atoms.sigma.size() != n)
    fail_input("ideal volume: positions, weights and widths differ in length");

  // Double accumulation: many small tails add up in every voxel, and the sum must match the total
  // weight to far better than float resolution.
  std::vector<double> acc(checked_product(nx, ny, nz), 0.0);
  std::vector<double> gx, gy, gz;
  for (std::size_t a = 0; a < n; ++a) {
    const Vec3& p = atoms.positions[a];
    const double s = atoms.sigma[a], w = atoms.weight[a];
    if (!finite(p) || !std::isfinite(s) || s < 0.0 || !std::isfinite(w))
      fail_input("ideal volume: atom " + std::to_string(a) + " has invalid inputs");
    const double reach = detail::kGaussianCutoff * s;
    long long x0, x1, y0, y1, z0, z1;
    detail::sample_window(p.x(), reach, nx, voxel, x0, x1);
    detail::sample_window(p.y(), reach, ny, voxel, y0, y1);
    detail::sample_window(p.z(), reach, nz, voxel, z0, z1);
    if (x0 > x1 || y0 > y1 || z0 > z1) continue;  // entirely outside the volume
    auto factors = [&](std::vector<double>& g, std::int64_t lo, std::int64_t hi, std::int64_t len,
                       double mu) {
      g.resize(static_cast<std::size_t>(hi - lo + 1));
      for (std::int64_t i = lo; i <= hi; ++i)
        g[static_cast<std::size_t>(i - lo)] =
            detail::interval_mass(detail::sample_lower_edge(i, len, voxel),
                                  detail::sample_upper_edge(i, len, voxel), mu, s);
    };
    factors(gx, x0, x1, nx, p.x());
    factors(gy, y0, y1, ny, p.y());
    factors(gz, z0, z1, nz, p.z());
    for (std::int64_t z = z0; z <= z1; ++z) {
      const double wz = w * gz[static_cast<std::size_t>(z - z0)];
      if (wz == 0.0) continue;
      for (std::int64_t y = y0; y <= y1; ++y) {
        const double wzy = wz * gy[static_cast<std::size_t>(y - y0)];
        if (wzy == 0.0) continue;
        double* row = acc.data() + static_cast<std::size_t>((z * ny + y) * nx);
        for (std::int64_t x = x0; x <= x1; ++x)
          row[x] += wzy * gx[static_cast<std::size_t>(x - x0)];
      }
    }
  }
  Array3 vol(nx, ny, nz);
  std::transform(acc.begin(), acc.end(), vol.data(),
                 [](double v) { return static_cast<float>(v); });
  vol.voxel_size = VoxelSize{voxel, voxel, voxel};
  return vol;
}

}  // namespace aet::phantoms
