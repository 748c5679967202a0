// Coarse alignment: FFT registration, centres of mass, the common-line tilt axis, the
// cross-correlation chain, and the resampling of views into the nominal frame
// (docs/alignment.md).
#include <fftw3.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <complex>
#include <mutex>
#include <numeric>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "align_detail.hpp"

namespace aet {
namespace {

constexpr double kDeg = M_PI / 180.0;

// FFTW's planner is not thread-safe; plans are made and destroyed under this lock and executed
// (new-array interface) without it.
std::mutex& fftw_mutex() {
  static std::mutex m;
  return m;
}

std::int64_t next_fft_size(std::int64_t n) {
  std::int64_t m = 8;
  while (m < n) m *= 2;
  return m;
}

// Keys' cubic convolution kernel (a = -0.5).
inline double cubic_weight(double t) {
  t = std::abs(t);
  if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
  if (t < 2) return ((-0.5 * t + 2.5) * t - 4) * t + 2;
  return 0;
}

// Image value at continuous pixel position (x, y) (0-based indices), zero outside.
float sample_cubic(const float* img, std::int64_t nx, std::int64_t ny, double x, double y) {
  const std::int64_t x0 = static_cast<std::int64_t>(std::floor(x));
  const std::int64_t y0 = static_cast<std::int64_t>(std::floor(y));
  if (x0 < -2 || y0 < -2 || x0 > nx + 1 || y0 > ny + 1) return 0.0f;
  double wx[4], wy[4];
  for (int i = 0; i < 4; ++i) {
    wx[i] = cubic_weight(x - (x0 - 1 + i));
    wy[i] = cubic_weight(y - (y0 - 1 + i));
  }
  double acc = 0;
  for (int j = 0; j < 4; ++j) {
    const std::int64_t yy = y0 - 1 + j;
    if (yy < 0 || yy >= ny) continue;
    for (int i = 0; i < 4; ++i) {
      const std::int64_t xx = x0 - 1 + i;
      if (xx < 0 || xx >= nx) continue;
      acc += wx[i] * wy[j] * img[yy * nx + xx];
    }
  }
  return static_cast<float>(acc);
}

// out(x') = in(Rz2(gamma) * S x' + shift_px) in centred pixel coordinates, where S stretches the
// first (perpendicular-to-axis) coordinate by `stretch` about the centre.
void resample_view(const float* in, float* out, std::int64_t nx, std::int64_t ny, double gamma_deg,
                   Vec2 shift_px, double stretch = 1.0) {
  const double c = std::cos(gamma_deg * kDeg), s = std::sin(gamma_deg * kDeg);
  const double cx = centre_index(nx), cy = centre_index(ny);
  for (std::int64_t j = 0; j < ny; ++j)
    for (std::int64_t i = 0; i < nx; ++i) {
      const double up = (i - cx) * stretch, vp = j - cy;
      const double u = c * up - s * vp + shift_px.x(), v = s * up + c * vp + shift_px.y();
      out[j * nx + i] = sample_cubic(in, nx, ny, u + cx, v + cy);
    }
}

// 1D profile of a view along the axis direction rotated by alpha from y: pixel values splatted
// (linear) onto bins of v' = -sin(alpha) u + cos(alpha) v, `bin` pixels wide, centred at `half`.
void axis_profile(const float* img, std::int64_t nx, std::int64_t ny, double alpha_deg,
                  std::int64_t half, double bin, std::vector<double>& prof) {
  prof.assign(static_cast<std::size_t>(2 * half + 1), 0.0);
  const double c = std::cos(alpha_deg * kDeg), s = std::sin(alpha_deg * kDeg);
  const double cx = centre_index(nx), cy = centre_index(ny);
  for (std::int64_t j = 0; j < ny; ++j)
    for (std::int64_t i = 0; i < nx; ++i) {
      const double vp = (-s * (i - cx) + c * (j - cy)) / bin + static_cast<double>(half);
      const std::int64_t b = static_cast<std::int64_t>(std::floor(vp));
      const double f = vp - b;
      const double val = img[j * nx + i];
      if (b >= 0 && b < 2 * half + 1) prof[b] += (1 - f) * val;
      if (b + 1 >= 0 && b + 1 < 2 * half + 1) prof[b + 1] += f * val;
    }
}

// Misfit of the axis-parallel profiles of all views for a trial axis angle. The per-view shift
// along the axis is unknown at this stage, so the profiles are compared through the magnitudes of
// their Fourier transforms (shift invariant, no interpolation); with the right axis every view's
// profile is the projection of the object onto the axis, while a wrong one blurs the profiles of
// the high-tilt views by a different amount each.
}  // namespace

namespace detail {
double common_line_cost(const Array3& views, double alpha_deg) {
  const std::int64_t nx = views.nx(), ny = views.ny(), nv = views.nz();
  const double bin = 0.5;  // pixels: finer than the pixels, so the splatting blurs little
  const std::int64_t half =
      static_cast<std::int64_t>(std::ceil(0.5 * std::hypot(nx, ny) / bin)) + 2;
  const std::int64_t m = 2 * half + 1;
  // Frequencies up to 0.3 cycles per pixel: beyond, the pixel sampling aliases, and how much
  // depends on each view's sub-pixel shift (at alpha = 0 every pixel row falls on one bin).
  const std::int64_t fmax = std::min<std::int64_t>(m / 2, static_cast<std::int64_t>(0.3 * bin * m));
  std::vector<std::vector<double>> mag(static_cast<std::size_t>(nv));
  std::vector<double> prof;
  for (std::int64_t k = 0; k < nv; ++k) {
    axis_profile(views.slice(k), nx, ny, alpha_deg, half, bin, prof);
    mag[k].assign(static_cast<std::size_t>(fmax), 0.0);
    for (std::int64_t f = 1; f <= fmax; ++f) {
      double re = 0, im = 0;
      const double w = 2 * M_PI * f / m;
      for (std::int64_t i = 0; i < m; ++i)
        re += prof[i] * std::cos(w * i), im += prof[i] * std::sin(w * i);
      mag[k][f - 1] = std::hypot(re, im);
    }
  }
  // Relative spread per frequency, so that the weak high frequencies, which carry the blur of a
  // wrong axis, count as much as the strong low ones; a floor keeps empty frequencies quiet.
  std::vector<double> mean(static_cast<std::size_t>(fmax), 0.0);
  double peak = 0;
  for (std::int64_t f = 0; f < fmax; ++f) {
    for (std::int64_t k = 0; k < nv; ++k) mean[f] += mag[k][f] / nv;
    peak = std::max(peak, mean[f]);
  }
  double num = 0, den = 0;
  for (std::int64_t f = 0; f < fmax; ++f) {
    double var = 0;
    for (std::int64_t k = 0; k < nv; ++k) var += (mag[k][f] - mean[f]) * (mag[k][f] - mean[f]);
    num += var / (nv * (mean[f] * mean[f] + 1e-4 * peak * peak));
    den += 1;
  }
  return num / std::max(den, 1e-300);
}

Vec2 register_shift(const float* reference, const float* image, std::int64_t nx, std::int64_t ny,
                    double max_shift) {
  // Zero-padded to twice the size so the correlation does not wrap around.
  const std::int64_t px = next_fft_size(2 * nx), py = next_fft_size(2 * ny);
  const std::int64_t nc = px / 2 + 1;
  float* a = fftwf_alloc_real(static_cast<std::size_t>(px * py));
  float* b = fftwf_alloc_real(static_cast<std::size_t>(px * py));
  fftwf_complex* fa = fftwf_alloc_complex(static_cast<std::size_t>(nc * py));
  fftwf_complex* fb = fftwf_alloc_complex(static_cast<std::size_t>(nc * py));
  fftwf_plan fwd_a, fwd_b, inv;
  {
    std::lock_guard<std::mutex> lock(fftw_mutex());
    fwd_a = fftwf_plan_dft_r2c_2d(static_cast<int>(py), static_cast<int>(px), a, fa, FFTW_ESTIMATE);
    fwd_b = fftwf_plan_dft_r2c_2d(static_cast<int>(py), static_cast<int>(px), b, fb, FFTW_ESTIMATE);
    inv = fftwf_plan_dft_c2r_2d(static_cast<int>(py), static_cast<int>(px), fa, a, FFTW_ESTIMATE);
  }
  double ma = 0, mb = 0;
  for (std::int64_t i = 0; i < nx * ny; ++i) ma += reference[i], mb += image[i];
  ma /= nx * ny, mb /= nx * ny;
  std::fill(a, a + px * py, 0.0f);
  std::fill(b, b + px * py, 0.0f);
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x) {
      a[y * px + x] = static_cast<float>(reference[y * nx + x] - ma);
      b[y * px + x] = static_cast<float>(image[y * nx + x] - mb);
    }
  fftwf_execute(fwd_a);
  fftwf_execute(fwd_b);
  for (std::int64_t i = 0; i < nc * py; ++i) {
    const std::complex<float> za(fa[i][0], fa[i][1]), zb(fb[i][0], fb[i][1]);
    const std::complex<float> z = za * std::conj(zb);
    fa[i][0] = z.real(), fa[i][1] = z.imag();
  }
  fftwf_execute(inv);  // a(d) = sum_x ref(x) img(x - d), circular over the padded size
  const int m = static_cast<int>(std::max(1.0, std::floor(max_shift)));
  auto at = [&](int dx, int dy) {
    const std::int64_t ix = ((dx % px) + px) % px, iy = ((dy % py) + py) % py;
    return static_cast<double>(a[iy * px + ix]);
  };
  int bx = 0, by = 0;
  double best = -1e300;
  for (int dy = -m; dy <= m; ++dy)
    for (int dx = -m; dx <= m; ++dx)
      if (dx * dx + dy * dy <= m * m && at(dx, dy) > best) best = at(dx, dy), bx = dx, by = dy;
  auto parabola = [](double l, double c, double r) {
    const double den = l - 2 * c + r;
    return den < 0 ? std::clamp(0.5 * (l - r) / den, -0.5, 0.5) : 0.0;
  };
  const Vec2 d(bx + parabola(at(bx - 1, by), best, at(bx + 1, by)),
               by + parabola(at(bx, by - 1), best, at(bx, by + 1)));
  {
    std::lock_guard<std::mutex> lock(fftw_mutex());
    fftwf_destroy_plan(fwd_a);
    fftwf_destroy_plan(fwd_b);
    fftwf_destroy_plan(inv);
  }
  fftwf_free(a);
  fftwf_free(b);
  fftwf_free(fa);
  fftwf_free(fb);
  return d;
}

std::vector<Vec2> centres_of_mass(const Array3& views, double* border_fraction) {
  const std::int64_t nx = views.nx(), ny = views.ny(), nv = views.nz();
  const double a = views.voxel_size.x;
  const double cx = centre_index(nx), cy = centre_index(ny);
  const std::int64_t tenth = std::max<std::int64_t>(1, std::min(nx, ny) / 10);
  std::int64_t frame = tenth;
  if (a > 0 && kBorderFrameAngstrom / a < static_cast<double>(frame))
    frame = std::max<std::int64_t>(1, static_cast<std::int64_t>(kBorderFrameAngstrom / a));
  // A narrower frame counts at the outer tenth's scale: its share of the signal times the
  // tenth's share of the area over its own (a film's signal fills every frame alike).
  auto area_share = [&](std::int64_t f) {
    const double inner = static_cast<double>(std::max<std::int64_t>(0, nx - 2 * f)) *
                         static_cast<double>(std::max<std::int64_t>(0, ny - 2 * f));
    return 1.0 - inner / (static_cast<double>(nx) * static_cast<double>(ny));
  };
  const double scale = area_share(tenth) / area_share(frame);
  std::vector<Vec2> com(static_cast<std::size_t>(nv), Vec2::Zero());
  double worst = 0;
  for (std::int64_t k = 0; k < nv; ++k) {
    const float* img = views.slice(k);
    // Only positive values: after background subtraction the background is noise around zero,
    // and its negative half would otherwise pull the centre around.
    double s = 0, sx = 0, sy = 0, border = 0;
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const double v = std::max(0.0f, img[y * nx + x]);
        s += v, sx += v * (x - cx), sy += v * (y - cy);
        if (x < frame || y < frame || x >= nx - frame || y >= ny - frame) border += v;
      }
    if (s > 0) com[k] = Vec2(sx / s * a, sy / s * a);
    worst = std::max(worst, s > 0 ? std::min(1.0, scale * border / s) : 1.0);
  }
  if (border_fraction) *border_fraction = worst;
  return com;
}

double common_line_axis(const Array3& views, double range_deg) {
  double best = 0, best_cost = 1e300;
  for (double al = -range_deg; al <= range_deg + 1e-9; al += 0.5) {
    const double c = detail::common_line_cost(views, al);
    if (c < best_cost) best_cost = c, best = al;
  }
  // Fine grid around the coarse minimum, then a parabola through the three best points.
  const double step = 0.05;
  std::vector<double> cs;
  for (int i = -12; i <= 12; ++i) cs.push_back(detail::common_line_cost(views, best + i * step));
  const int k = static_cast<int>(std::min_element(cs.begin(), cs.end()) - cs.begin());
  double frac = 0;
  if (k > 0 && k + 1 < static_cast<int>(cs.size())) {
    const double den = cs[k - 1] - 2 * cs[k] + cs[k + 1];
    if (den > 0) frac = std::clamp(0.5 * (cs[k - 1] - cs[k + 1]) / den, -0.5, 0.5);
  }
  return best + (k - 12 + frac) * step;
}

std::vector<Vec2> coarse_shifts(const Array3& views, const TiltGeometry& geometry,
                                double max_shift_px) {
  const std::int64_t nx = views.nx(), ny = views.ny(), nv = views.nz();
  const double a = views.voxel_size.x;
  double border = 0;
  std::vector<Vec2> com = centres_of_mass(views, &border);
  // An isolated particle: the centre of mass of each view is the projection of the 3D centre
  // of mass plus the view's shift, so with the gauge "3D centre of mass at the rotation centre"
  // the shift is the view's centre of mass, whatever the angles.
  if (border < 0.05) return com;

  // Otherwise (a film or a particle cut by the field): a cumulative chain of cross-correlations
  // between neighbouring views, each resampled into the nominal frame and the lower-tilt one
  // stretched by the cosine ratio perpendicular to the axis, starting from the lowest tilt.
  std::vector<double> gamma(nv), theta(nv);
  for (std::int64_t k = 0; k < nv; ++k) {
    gamma[k] = inplane_angle_deg(geometry[k]);
    theta[k] = euler_from_rotation(rot_z(-gamma[k]) * geometry[k].R).theta;
  }
  std::vector<std::int64_t> order(nv);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto i, auto j) { return theta[i] < theta[j]; });
  std::int64_t start = 0;
  for (std::int64_t i = 0; i < nv; ++i)
    if (std::abs(theta[order[i]]) < std::abs(theta[order[start]])) start = i;
  std::vector<Vec2> sp(static_cast<std::size_t>(nv), Vec2::Zero());  // nominal-frame shifts, px
  std::vector<float> ref(static_cast<std::size_t>(nx * ny)), img(ref.size());
  auto link = [&](std::int64_t from, std::int64_t to) {
    const double ratio = std::cos(theta[to] * kDeg) / std::max(0.05, std::cos(theta[from] * kDeg));
    // ref(x') = aligned view `from` at x' scaled by 1/ratio, so its features match `to`.
    resample_view(views.slice(from), ref.data(), nx, ny, gamma[from], sp[from], 1.0 / ratio);
    resample_view(views.slice(to), img.data(), nx, ny, gamma[to], Vec2::Zero());
    const Vec2 d = register_shift(ref.data(), img.data(), nx, ny, max_shift_px);
    sp[to] = -d;
  };
  for (std::int64_t i = start + 1; i < nv; ++i) link(order[i - 1], order[i]);
  for (std::int64_t i = start - 1; i >= 0; --i) link(order[i + 1], order[i]);
  std::vector<Vec2> shifts(static_cast<std::size_t>(nv));
  for (std::int64_t k = 0; k < nv; ++k) {
    const double c = std::cos(gamma[k] * kDeg), s = std::sin(gamma[k] * kDeg);
    shifts[k] = Vec2(c * sp[k].x() - s * sp[k].y(), s * sp[k].x() + c * sp[k].y()) * a;
  }
  remove_translation(shifts, geometry);
  return shifts;
}

void remove_translation(std::vector<Vec2>& shifts, const TiltGeometry& geometry) {
  // s_k -> s_k + [R_k t]_xy is invisible (a translation of the object); remove the least-squares
  // t so the object stays where the previous gauge put it.
  Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
  Eigen::Vector3d b = Eigen::Vector3d::Zero();
  for (std::size_t k = 0; k < shifts.size(); ++k) {
    const Eigen::Matrix<double, 2, 3> P = geometry[k].R.topRows<2>();
    A += P.transpose() * P;
    b += P.transpose() * shifts[k];
  }
  const Eigen::Vector3d t = A.completeOrthogonalDecomposition().solve(b);
  for (std::size_t k = 0; k < shifts.size(); ++k) shifts[k] -= geometry[k].R.topRows<2>() * t;
}

}  // namespace detail

double inplane_angle_deg(const ViewGeometry& g) {
  // R maps the volume y axis to column 1 of R; for R = Rz(alpha) Ry(theta)^T that is
  // (-sin alpha, cos alpha, 0).
  return std::atan2(-g.R(0, 1), g.R(1, 1)) / kDeg;
}

Array3 apply_alignment(const Array3& views, const TiltGeometry& geometry,
                       std::vector<Euler>* residual_angles) {
  if (static_cast<std::int64_t>(geometry.size()) != views.nz())
    fail_input("apply_alignment: " + std::to_string(geometry.size()) + " geometries for " +
               std::to_string(views.nz()) + " views");
  Array3 out(views.nx(), views.ny(), views.nz());
  out.voxel_size = views.voxel_size;
  const double a = views.voxel_size.x;
  parallel_for(views.nz(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t k = b; k < e; ++k)
      resample_view(views.slice(k), out.slice(k), views.nx(), views.ny(),
                    inplane_angle_deg(geometry[k]), geometry[k].shift / a);
  });
  if (residual_angles) {
    residual_angles->clear();
    for (const auto& g : geometry)
      residual_angles->push_back(euler_from_rotation(rot_z(-inplane_angle_deg(g)) * g.R));
  }
  return out;
}

}  // namespace aet
