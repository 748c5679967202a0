// Tilt-series simulation: true geometry with imperfections, analytic projection, a smooth
// background and detector noise. Every random draw comes from an aet::Rng stream keyed by the
// seed and by what it is for (geometry of view k, noise of view k, the background), so each
// number is independent of the device, the thread count and of the other options.
#include "aet/phantoms/tilt_series.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/rng.hpp"

namespace aet::phantoms {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Stream ids. Noise of view k uses stream k; the others are offset far beyond any view count so
// that no two purposes ever share a stream.
constexpr std::uint64_t kGeometryStream = 1ULL << 40;
constexpr std::uint64_t kBackgroundStream = 2ULL << 40;

void check_spec(const SimulationSpec& s) {
  if (!std::isfinite(s.pixel) || s.pixel <= 0.0)
    fail_input("simulation: pixel size must be finite and > 0 (got " + std::to_string(s.pixel) +
               ")");
  if (s.nx < 0 || s.ny < 0) fail_input("simulation: view size must be >= 0 (0 = automatic)");
  if (s.nominal.empty()) fail_input("simulation: no tilt angles");
  for (const Euler& e : s.nominal)
    if (!std::isfinite(e.phi) || !std::isfinite(e.theta) || !std::isfinite(e.psi))
      fail_input("simulation: non-finite tilt angle");
  auto nonneg = [](double v, const char* what) {
    if (!std::isfinite(v) || v < 0.0)
      fail_input(std::string("simulation: ") + what + " must be finite and >= 0 (got " +
                 std::to_string(v) + ")");
  };
  nonneg(s.dose, "dose");
  nonneg(s.read_noise, "read noise");
  nonneg(s.shift_max_px, "maximum shift");
  nonneg(s.angle_error_sd, "angle error");
  nonneg(s.background, "background");
  if (!std::isfinite(s.axis_rotation)) fail_input("simulation: axis rotation must be finite");
  if (s.read_noise > 0.0 && s.dose <= 0.0)
    fail_input("simulation: read noise is given in detector counts and needs a dose > 0");
}

// The smooth background shape, normalised to mean 1 over the view: 1 plus three plane waves of
// 0.3 to 1.2 cycles across the field with random directions and phases, amplitude 1/6 each, so
// the field stays within [0.5, 1.5] and is never negative (it is signal, and gets shot noise).
// Drawn once per series: contamination or a support film changes little between views.
std::vector<double> background_shape(std::int64_t nx, std::int64_t ny, std::uint64_t seed) {
  Rng rng = Rng::stream(seed, kBackgroundStream);
  struct Wave {
    double kx, ky, phase;
  };
  Wave waves[3];
  for (Wave& w : waves) {
    const double cycles = rng.uniform(0.3, 1.2), dir = rng.uniform(0.0, 2.0 * kPi);
    w.kx = 2.0 * kPi * cycles * std::cos(dir) / static_cast<double>(nx);
    w.ky = 2.0 * kPi * cycles * std::sin(dir) / static_cast<double>(ny);
    w.phase = rng.uniform(0.0, 2.0 * kPi);
  }
  std::vector<double> field(static_cast<std::size_t>(nx * ny));
  double sum = 0.0;
  for (std::int64_t j = 0; j < ny; ++j)
    for (std::int64_t i = 0; i < nx; ++i) {
      double f = 1.0;
      for (const Wave& w : waves)
        f +=
            std::cos(w.kx * static_cast<double>(i) + w.ky * static_cast<double>(j) + w.phase) / 6.0;
      field[static_cast<std::size_t>(j * nx + i)] = f;
      sum += f;
    }
  const double mean = sum / static_cast<double>(field.size());
  for (double& f : field) f /= mean;
  return field;
}

// Background and noise of view k, in place. Uses only stream k of the seed.
void finish_view(float* view, std::int64_t npix, std::int64_t k, const SimulationSpec& spec,
                 const std::vector<double>& bg_shape) {
  if (spec.background > 0.0) {
    double sum = 0.0;
    for (std::int64_t p = 0; p < npix; ++p) sum += view[p];
    const double amplitude = spec.background * sum / static_cast<double>(npix);
    for (std::int64_t p = 0; p < npix; ++p)
      view[p] = static_cast<float>(view[p] + amplitude * bg_shape[static_cast<std::size_t>(p)]);
  }
  if (spec.dose <= 0.0) return;
  // Shot noise: the pixel value is an integrated cross-section (Angstrom^2), so dose * value is
  // the expected electron count; dividing by the dose again keeps the noise-free unit and makes
  // the expectation equal to the noise-free value. Read noise (counts) is scaled the same way.
  Rng rng = Rng::stream(spec.seed, static_cast<std::uint64_t>(k));
  for (std::int64_t p = 0; p < npix; ++p) {
    const double lambda = spec.dose * std::max(0.0, static_cast<double>(view[p]));
    double counts = static_cast<double>(rng.poisson(lambda));
    if (spec.read_noise > 0.0) counts += rng.normal(0.0, spec.read_noise);
    view[p] = static_cast<float>(counts / spec.dose);  // negative values are kept, as detectors do
  }
}

}  // namespace

std::vector<double> TiltRange::angles() const {
  if (!std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    fail_input("tilt range: non-finite value");
  if (!(step > 0.0)) fail_input("tilt range: step must be > 0 (got " + std::to_string(step) + ")");
  if (stop < start)
    fail_input("tilt range: stop (" + std::to_string(stop) + ") is below start (" +
               std::to_string(start) + ")");
  // The 1e-9 absorbs decimal rounding ("-60:60:0.1" must end at 60, not 59.9).
  const double n = std::floor((stop - start) / step + 1e-9) + 1.0;
  if (n > 1e6) fail_input("tilt range: more than a million angles");
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = start + static_cast<double>(i) * step;
  return out;
}

TiltRange parse_tilt_range(const std::string& text) {
  const std::string usage =
      "tilt range '" + text + "': expected START:STOP:STEP in degrees, e.g. -70:70:3";
  double v[3];
  std::size_t pos = 0;
  for (int f = 0; f < 3; ++f) {
    const std::size_t end = f < 2 ? text.find(':', pos) : text.size();
    if (end == std::string::npos) fail_input(usage);
    const std::string field = text.substr(pos, end - pos);
    char* stop = nullptr;
    v[f] = std::strtod(field.c_str(), &stop);
    if (field.empty() || stop != field.c_str() + field.size() || !std::isfinite(v[f]))
      fail_input(usage);
    pos = end + 1;
  }
  TiltRange r{v[0], v[1], v[2]};
  try {
    r.angles();  // validates step and order
  } catch (const InputError& e) {
    fail_input(usage + " (" + e.what() + ")");
  }
  return r;
}

std::int64_t fitting_view_size(const AtomModel& model, double pixel, double margin_angstrom) {
  if (!std::isfinite(pixel) || pixel <= 0.0) fail_input("view size: pixel must be > 0");
  if (!std::isfinite(margin_angstrom) || margin_angstrom < 0.0)
    fail_input("view size: margin must be >= 0");
  // |p| bounds |u| and |v| at every rotation; 2 ceil(...) is even by construction.
  double radius = 0.0;
  for (const Vec3& p : model.positions) radius = std::max(radius, p.norm());
  if (!std::isfinite(radius)) fail_input("view size: non-finite atom position");
  const double half = std::ceil((radius + margin_angstrom) / pixel);
  if (half > 1e6) fail_input("view size: the particle needs more than 2 million pixels");
  return std::max<std::int64_t>(2, 2 * static_cast<std::int64_t>(half));
}

TiltSeries simulate_tilt_series(const AtomModel& model, const SimulationSpec& spec,
                                const Device& dev) {
  check_spec(spec);
  const GaussianAtoms atoms = gaussian_atoms(model, spec.imaging);
  // Automatic size: the particle at any angle with 6 A to spare, plus the largest random shift.
  const std::int64_t nx =
      spec.nx > 0 ? spec.nx
                  : fitting_view_size(model, spec.pixel, 6.0 + spec.shift_max_px * spec.pixel);
  const std::int64_t ny = spec.ny > 0 ? spec.ny : nx;
  const auto nviews = static_cast<std::int64_t>(spec.nominal.size());

  TiltSeries out;
  out.nominal = spec.nominal;
  out.truth.resize(spec.nominal.size());
  // The same five numbers are drawn for every view whatever the options, so turning one
  // imperfection on does not change the others' draws.
  const Mat3 axis = rot_z(spec.axis_rotation);
  for (std::int64_t k = 0; k < nviews; ++k) {
    Rng rng = Rng::stream(spec.seed, kGeometryStream + static_cast<std::uint64_t>(k));
    Euler e = spec.nominal[static_cast<std::size_t>(k)];
    e.phi += spec.angle_error_sd * rng.normal();
    e.theta += spec.angle_error_sd * rng.normal();
    e.psi += spec.angle_error_sd * rng.normal();
    const double su = rng.uniform(-1.0, 1.0), sv = rng.uniform(-1.0, 1.0);
    ViewGeometry& g = out.truth[static_cast<std::size_t>(k)];
    // The detector sees the image turned counter-clockwise by axis_rotation in its plane, so the
    // tilt axis (image y for a single-axis series) appears at axis_rotation degrees from y.
    g.R = axis * rotation_from_euler(e);
    g.shift = Vec2(su, sv) * (spec.shift_max_px * spec.pixel);
  }

  out.views = project_atoms(atoms, out.truth, nx, ny, spec.pixel, spec.imaging, dev);
  out.views.voxel_size = VoxelSize{spec.pixel, spec.pixel, spec.pixel};

  if (spec.background > 0.0 || spec.dose > 0.0) {
    const std::vector<double> bg =
        spec.background > 0.0 ? background_shape(nx, ny, spec.seed) : std::vector<double>{};
    const std::int64_t npix = nx * ny;
    parallel_for(nviews, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t k = begin; k < end; ++k) finish_view(out.views.slice(k), npix, k, spec, bg);
    });
  }
  return out;
}

}  // namespace aet::phantoms
