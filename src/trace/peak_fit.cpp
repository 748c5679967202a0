// Peak fits (peak_fit.hpp, docs/tracing.md). Each fit reads only its own window, so fits of
// different peaks can run in parallel without changing any result.
#include "peak_fit.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <limits>
#include <utility>

#include "aet/core/format.hpp"

namespace aet::detail {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- fit windows --------------------------------------------------------------------------------

// Relative slack when a length in Angstrom is cut into whole voxels. Voxel sizes read from MRC
// headers are float32 (0.35 comes back as 0.35000002 or 0.34999999); without the slack the default
// 1.4 A radius, exactly 4 voxels at 0.35 A, would flip between 3 and 4 with the header's last bit.
constexpr double kVoxelSlack = 1e-6;

int half_width(const Geometry& g, int axis, double radius) {
  return std::max(1, static_cast<int>(std::floor(radius / g.v[axis] * (1 + kVoxelSlack))));
}

}  // namespace

Window make_window(const Array3& vol, const Geometry& g, const std::int64_t o[3], double radius) {
  Window w;
  for (int a = 0; a < 3; ++a) {
    w.o[a] = o[a];
    w.r[a] = half_width(g, a, radius);
  }
  const double r2 = radius * radius;
  for (int dz = -w.r[2]; dz <= w.r[2]; ++dz) {
    const std::int64_t z = o[2] + dz;
    if (z < 0 || z >= g.n[2]) continue;
    for (int dy = -w.r[1]; dy <= w.r[1]; ++dy) {
      const std::int64_t y = o[1] + dy;
      if (y < 0 || y >= g.n[1]) continue;
      for (int dx = -w.r[0]; dx <= w.r[0]; ++dx) {
        const std::int64_t x = o[0] + dx;
        if (x < 0 || x >= g.n[0]) continue;
        const double d2 =
            dx * g.v[0] * dx * g.v[0] + dy * g.v[1] * dy * g.v[1] + dz * g.v[2] * dz * g.v[2];
        if (d2 > r2 * (1 + 2 * kVoxelSlack)) continue;
        w.local.push_back({dx + w.r[0], dy + w.r[1], dz + w.r[2]});
        w.y.push_back(vol(x, y, z));
      }
    }
  }
  return w;
}

namespace {

// Parameters: intensity, centre (voxels, 3), width (Angstrom; one, or one per axis), background.
// At most 8; the isotropic model ties the three widths into one parameter.
using VecP = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 8, 1>;
using MatP = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 8, 8>;

struct GaussModel {
  const Window& w;
  const Geometry& g;
  const bool axes;  // a width per axis
  const int np;     // parameter count: 6 or 8
  std::vector<double> prof[3], dprof_c[3], dprof_s[3];

  GaussModel(const Window& win, const Geometry& geo, bool per_axis)
      : w(win), g(geo), axes(per_axis), np(per_axis ? 8 : 6) {
    for (int a = 0; a < 3; ++a) {
      const int n = 2 * w.r[a] + 1;
      prof[a].resize(n);
      dprof_c[a].resize(n);
      dprof_s[a].resize(n);
    }
  }

  double width(const VecP& p, int a) const { return axes ? p[4 + a] : p[4] * g.shape[a]; }
  double background(const VecP& p) const { return p[np - 1]; }

  // Cost 0.5 |r|^2 and, when asked, the normal equations J^T J and J^T r (r = data - model).
  double evaluate(const VecP& p, MatP* jtj, VecP* jtr) {
    for (int a = 0; a < 3; ++a)
      axis_profile(w.o[a] - w.r[a], 2 * w.r[a] + 1, p[1 + a], width(p, a) / g.v[a], prof[a].data(),
                   dprof_c[a].data(), dprof_s[a].data());
    double cost = 0;
    if (jtj) jtj->setZero(np, np);
    if (jtr) jtr->setZero(np);
    VecP row(np);
    const double bg = background(p);
    for (std::size_t k = 0; k < w.y.size(); ++k) {
      const auto& l = w.local[k];
      const double gx = prof[0][l[0]], gy = prof[1][l[1]], gz = prof[2][l[2]];
      const double gg = gx * gy * gz;
      const double r = w.y[k] - (bg + p[0] * gg);
      cost += 0.5 * r * r;
      if (!jtj) continue;
      row[0] = gg;
      row[1] = p[0] * dprof_c[0][l[0]] * gy * gz;
      row[2] = p[0] * gx * dprof_c[1][l[1]] * gz;
      row[3] = p[0] * gx * gy * dprof_c[2][l[2]];
      const double ds[3] = {p[0] * dprof_s[0][l[0]] / g.v[0] * gy * gz,
                            p[0] * gx * dprof_s[1][l[1]] / g.v[1] * gz,
                            p[0] * gx * gy * dprof_s[2][l[2]] / g.v[2]};
      if (axes) {
        row[4] = ds[0];
        row[5] = ds[1];
        row[6] = ds[2];
      } else {
        row[4] = ds[0] * g.shape[0] + ds[1] * g.shape[1] + ds[2] * g.shape[2];
      }
      row[np - 1] = 1.0;
      jtj->selfadjointView<Eigen::Lower>().rankUpdate(row);
      *jtr += r * row;
    }
    if (jtj) *jtj = jtj->selfadjointView<Eigen::Lower>();
    return cost;
  }
};

// Background of a window: the median of its outer shell (beyond 3/4 of the radius), where an atom
// of the expected width has decayed; the median ignores a neighbour's tail on one side.
double shell_background(const Window& w, const Geometry& g) {
  std::vector<double> shell;
  const double r2 = 0.75 * 0.75 * g.radius * g.radius;
  for (std::size_t k = 0; k < w.y.size(); ++k) {
    double d2 = 0;
    for (int a = 0; a < 3; ++a) {
      const double d = (w.local[k][a] - w.r[a]) * g.v[a];
      d2 += d * d;
    }
    if (d2 >= r2) shell.push_back(w.y[k]);
  }
  return shell.empty() ? median_of(w.y) : median_of(shell);
}

}  // namespace

// Centroid of the 3x3x3 block around the window centre above the background: what a peak gets
// when its fit fails, so that no candidate is lost for a numerical reason.
Peak centroid_peak(const Window& w, const Geometry& g) {
  Peak pk;
  pk.fallback = true;
  const double b = shell_background(w, g);
  double sw = 0, s[3] = {0, 0, 0}, total = 0, top = 0;
  for (std::size_t k = 0; k < w.y.size(); ++k) {
    const auto& l = w.local[k];
    const double v = w.y[k] - b;
    total += v;
    const int d[3] = {l[0] - w.r[0], l[1] - w.r[1], l[2] - w.r[2]};
    if (d[0] == 0 && d[1] == 0 && d[2] == 0) top = v;
    if (std::abs(d[0]) > 1 || std::abs(d[1]) > 1 || std::abs(d[2]) > 1 || v <= 0) continue;
    sw += v;
    for (int a = 0; a < 3; ++a) s[a] += v * d[a];
  }
  for (int a = 0; a < 3; ++a) pk.c[a] = static_cast<double>(w.o[a]) + (sw > 0 ? s[a] / sw : 0.0);
  pk.intensity = total;
  pk.background = b;
  pk.height = top;
  for (double& s : pk.sigma_axis) s = g.radius / 3.0;
  pk.residual = 1.0;
  return pk;
}

namespace {

// Initial width and centre from the three-point log-parabola through the centre voxel and its two
// neighbours on each axis: exact for a sampled Gaussian, whatever its sub-voxel offset.
void initial_guess(const Window& w, const Geometry& g, double b, double& sigma, double c[3],
                   double sigma_axis[3]) {
  double sig_sum = 0;
  double found[3] = {-1, -1, -1};
  int sig_n = 0;
  auto value_at = [&](int a, int d) {
    std::array<int, 3> want = {w.r[0], w.r[1], w.r[2]};
    want[a] += d;
    for (std::size_t k = 0; k < w.local.size(); ++k)
      if (w.local[k] == want) return w.y[k] - b;
    return -1.0;
  };
  const double f0 = value_at(0, 0);
  for (int a = 0; a < 3; ++a) {
    c[a] = static_cast<double>(w.o[a]);
    const double fp = value_at(a, 1), fm = value_at(a, -1);
    if (f0 <= 0 || fp <= 0 || fm <= 0) continue;
    const double curv = 2 * std::log(f0) - std::log(fp) - std::log(fm);
    if (!(curv > 1e-6)) continue;
    const double s2 = 1.0 / curv;  // voxels^2
    c[a] += std::clamp(0.5 * s2 * (std::log(fp) - std::log(fm)), -0.5, 0.5);
    found[a] = std::sqrt(s2) * g.v[a];
    sig_sum += found[a];
    ++sig_n;
  }
  const double vmin = std::min({g.v[0], g.v[1], g.v[2]});
  sigma = sig_n ? sig_sum / sig_n : g.radius / 3.0;
  sigma = std::clamp(sigma, 0.3 * vmin, g.radius);
  for (int a = 0; a < 3; ++a)
    sigma_axis[a] = found[a] > 0 ? std::clamp(found[a], 0.3 * vmin, g.radius) : sigma;
}

}  // namespace

// Levenberg-Marquardt fit of intensity * (voxel-integrated Gaussian) + background, with one
// width or a width per axis. Returns false when the fit diverges, the peak vanishes, or a width
// leaves the window's range.
bool fit_gaussian(const Window& w, const Geometry& g, bool per_axis, Peak& pk) {
  if (w.y.size() < (per_axis ? 16u : 12u)) return false;
  const double b0 = *std::min_element(w.y.begin(), w.y.end());
  double sigma0, c0[3], s0[3];
  initial_guess(w, g, b0, sigma0, c0, s0);
  double top = -std::numeric_limits<double>::infinity();
  for (double v : w.y) top = std::max(top, v);
  GaussModel model(w, g, per_axis);
  const int np = model.np;
  VecP p(np);
  p[0] =
      (top - b0) * std::pow(2 * kPi, 1.5) * sigma0 * sigma0 * sigma0 / (g.v[0] * g.v[1] * g.v[2]);
  for (int a = 0; a < 3; ++a) p[1 + a] = c0[a];
  if (per_axis) {
    // The volume under the initial peak as for the isotropic start; each axis its own width.
    for (int a = 0; a < 3; ++a) p[4 + a] = s0[a];
    p[0] *= s0[0] * s0[1] * s0[2] / (sigma0 * sigma0 * sigma0);
  } else {
    p[4] = sigma0;
  }
  p[np - 1] = b0;
  if (!(p[0] > 0)) return false;
  MatP jtj;
  VecP jtr;
  double cost = model.evaluate(p, &jtj, &jtr);
  double lambda = 1e-3;
  const double vmin = std::min({g.v[0], g.v[1], g.v[2]});
  auto widths_ok = [&](const VecP& q) {
    for (int a = 0; a < 3; ++a) {
      const double s = model.width(q, a);
      if (!(s > 0.1 * vmin && s < 2 * g.radius)) return false;
    }
    return true;
  };
  bool converged = false;
  for (int it = 0; it < 100 && !converged; ++it) {
    MatP a = jtj;
    for (int k = 0; k < np; ++k) a(k, k) += lambda * std::max(jtj(k, k), 1e-30);
    const VecP step = a.ldlt().solve(jtr);
    if (!step.allFinite()) return false;
    const VecP q = p + step;
    const bool inside = q[0] > 0 && widths_ok(q);
    const double new_cost = inside ? model.evaluate(q, nullptr, nullptr) : HUGE_VAL;
    if (new_cost <= cost) {
      const double moved = std::sqrt(step[1] * step[1] + step[2] * step[2] + step[3] * step[3]);
      double width_step = 0;
      for (int k = 4; k < np - 1; ++k) width_step = std::max(width_step, std::abs(step[k]) / q[k]);
      converged = moved < 1e-7 && width_step < 1e-7 && std::abs(step[0]) < 1e-9 * q[0];
      converged = converged || (cost - new_cost) <= 1e-15 * cost;
      p = q;
      cost = model.evaluate(p, &jtj, &jtr);
      lambda = std::max(lambda / 3, 1e-9);
    } else {
      lambda *= 4;
      if (lambda > 1e10) break;  // no downhill step left: at the minimum within precision
    }
  }
  if (!p.allFinite() || !(p[0] > 0)) return false;
  // A fit that slides further from its own maximum than half the minimum distance is nearer to
  // where a neighbour may sit than to that maximum: it has latched onto something else (a
  // neighbour, a noise ripple). Closer is fine: in a reconstruction the maximum of a weak atom
  // beside a heavy one can sit 0.6 A (2 voxels) from its centre, and a tighter limit replaced
  // those fits by centroids with too little intensity (docs/tracing.md).
  double drift2 = 0;
  for (int a = 0; a < 3; ++a) {
    pk.c[a] = p[1 + a];
    const double d = (p[1 + a] - static_cast<double>(pk.max_voxel[a])) * g.v[a];
    drift2 += d * d;
  }
  if (drift2 > g.max_drift * g.max_drift) return false;
  for (int a = 0; a < 3; ++a) pk.sigma_axis[a] = model.width(p, a);
  // The part of the peak inside the window sphere: an atom keeps nearly all of its integral,
  // while a broad noise ripple, whose fitted width runs off, cannot claim a large intensity.
  // (For unequal widths the sphere is taken against their geometric mean.)
  const double t = g.radius / pk.sigma();
  pk.intensity = p[0] * (std::erf(t * M_SQRT1_2) - std::sqrt(2 / kPi) * t * std::exp(-0.5 * t * t));
  pk.background = model.background(p);
  const double sv[3] = {pk.sigma_axis[0] / g.v[0], pk.sigma_axis[1] / g.v[1],
                        pk.sigma_axis[2] / g.v[2]};
  pk.height = p[0] / (std::pow(2 * kPi, 1.5) * sv[0] * sv[1] * sv[2]);
  pk.residual = std::sqrt(2 * cost / static_cast<double>(w.y.size())) / pk.height;
  pk.fallback = false;
  return true;
}

// ---- polynomial fit -----------------------------------------------------------------------------

namespace {

struct Monomial {
  int e[3];
};

const std::vector<Monomial>& quartic_terms() {
  static const std::vector<Monomial> terms = [] {
    std::vector<Monomial> t;
    for (int d = 0; d <= 4; ++d)
      for (int i = d; i >= 0; --i)
        for (int j = d - i; j >= 0; --j) t.push_back({{i, j, d - i - j}});
    return t;
  }();
  return terms;
}

double ipow(double x, int e) {
  double r = 1;
  for (int k = 0; k < e; ++k) r *= x;
  return r;
}

}  // namespace

// 4th-order polynomial in the window (coordinates scaled by the half-width for conditioning); the
// peak is where its gradient vanishes with a negative-definite Hessian, found by Newton steps from
// the maximum voxel. Intensity: the window's sum above the median of its outer shell.
bool fit_polynomial(const Window& w, const Geometry& g, Peak& pk) {
  const auto& terms = quartic_terms();
  const int nt = static_cast<int>(terms.size());
  if (static_cast<int>(w.y.size()) < nt + 10) return false;
  const double scale[3] = {static_cast<double>(w.r[0]), static_cast<double>(w.r[1]),
                           static_cast<double>(w.r[2])};
  Eigen::MatrixXd m(static_cast<Eigen::Index>(w.y.size()), nt);
  Eigen::VectorXd y(static_cast<Eigen::Index>(w.y.size()));
  for (std::size_t k = 0; k < w.y.size(); ++k) {
    double u[3];
    for (int a = 0; a < 3; ++a) u[a] = (w.local[k][a] - w.r[a]) / scale[a];
    for (int t = 0; t < nt; ++t)
      m(static_cast<Eigen::Index>(k), t) =
          ipow(u[0], terms[t].e[0]) * ipow(u[1], terms[t].e[1]) * ipow(u[2], terms[t].e[2]);
    y[static_cast<Eigen::Index>(k)] = w.y[k];
  }
  const Eigen::VectorXd coef = m.colPivHouseholderQr().solve(y);
  if (!coef.allFinite()) return false;

  auto eval = [&](const Eigen::Vector3d& u, double* f, Eigen::Vector3d* grad, Eigen::Matrix3d* h) {
    *f = 0;
    grad->setZero();
    h->setZero();
    for (int t = 0; t < nt; ++t) {
      const int* e = terms[t].e;
      const double c = coef[t];
      double pw[3], d1[3], d2[3];
      for (int a = 0; a < 3; ++a) {
        pw[a] = ipow(u[a], e[a]);
        d1[a] = e[a] >= 1 ? e[a] * ipow(u[a], e[a] - 1) : 0.0;
        d2[a] = e[a] >= 2 ? e[a] * (e[a] - 1) * ipow(u[a], e[a] - 2) : 0.0;
      }
      *f += c * pw[0] * pw[1] * pw[2];
      (*grad)[0] += c * d1[0] * pw[1] * pw[2];
      (*grad)[1] += c * pw[0] * d1[1] * pw[2];
      (*grad)[2] += c * pw[0] * pw[1] * d1[2];
      (*h)(0, 0) += c * d2[0] * pw[1] * pw[2];
      (*h)(1, 1) += c * pw[0] * d2[1] * pw[2];
      (*h)(2, 2) += c * pw[0] * pw[1] * d2[2];
      (*h)(0, 1) += c * d1[0] * d1[1] * pw[2];
      (*h)(0, 2) += c * d1[0] * pw[1] * d1[2];
      (*h)(1, 2) += c * pw[0] * d1[1] * d1[2];
    }
    (*h)(1, 0) = (*h)(0, 1);
    (*h)(2, 0) = (*h)(0, 2);
    (*h)(2, 1) = (*h)(1, 2);
  };

  Eigen::Vector3d u(0, 0, 0), grad;
  Eigen::Matrix3d hess;
  double f = 0;
  bool ok = false;
  for (int it = 0; it < 30; ++it) {
    eval(u, &f, &grad, &hess);
    Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(hess);
    if (es.eigenvalues().maxCoeff() >= 0) return false;  // not a maximum
    Eigen::Vector3d step = -hess.ldlt().solve(grad);
    // Keep each Newton step under half a voxel so it cannot jump to another extremum.
    for (int a = 0; a < 3; ++a) step[a] = std::clamp(step[a], -0.5 / scale[a], 0.5 / scale[a]);
    u += step;
    if (step.norm() < 1e-9) {
      ok = true;
      break;
    }
  }
  if (!ok || !u.allFinite()) return false;
  eval(u, &f, &grad, &hess);
  for (int a = 0; a < 3; ++a) {
    pk.c[a] = static_cast<double>(w.o[a]) + u[a] * scale[a];
    if (std::abs(pk.c[a] - static_cast<double>(pk.max_voxel[a])) > kMaxDrift) return false;
  }
  const double b = shell_background(w, g);
  double total = 0;
  for (double v : w.y) total += v - b;
  const Eigen::VectorXd r = y - m * coef;
  pk.background = b;
  pk.height = f - b;
  if (!(pk.height > 0) || !(total > 0)) return false;
  pk.intensity = total;
  pk.residual = std::sqrt(r.squaredNorm() / static_cast<double>(w.y.size())) / pk.height;
  pk.fallback = false;
  return true;
}
// ---- matched filter, typical width and shape ----------------------------------------------------

// Matched-filter intensity of the peak centred at `c` (voxels): the least-squares amplitude of a
// voxel-integrated Gaussian of the fixed width g.ref_sigma plus a constant background over the
// window, scaled like Peak::intensity to the part inside the window sphere. With the width fixed
// to that of the atoms, an atom scores its integral whatever its own fitted width, while a broad,
// flat noise ripple (whose free fit claims a large integral with a wide Gaussian) or a spike
// scores little: the free intensities of the weakest light atoms and the strongest noise peaks
// overlap, these do not (docs/tracing.md, step 5).
double fixed_width_intensity(const Window& w, const Geometry& g, const double c[3]) {
  std::vector<double> prof[3];
  for (int a = 0; a < 3; ++a) {
    prof[a].resize(static_cast<std::size_t>(2 * w.r[a] + 1));
    axis_profile(w.o[a] - w.r[a], 2 * w.r[a] + 1, c[a], g.ref_sigma * g.shape[a] / g.v[a],
                 prof[a].data(), nullptr, nullptr);
  }
  double sg = 0, sgg = 0, sy = 0, sgy = 0;
  for (std::size_t k = 0; k < w.y.size(); ++k) {
    const auto& l = w.local[k];
    const double gg = prof[0][l[0]] * prof[1][l[1]] * prof[2][l[2]];
    sg += gg;
    sgg += gg * gg;
    sy += w.y[k];
    sgy += gg * w.y[k];
  }
  const double n = static_cast<double>(w.y.size());
  const double det = n * sgg - sg * sg;
  if (!(det > 0)) return 0;
  const double amp = (n * sgy - sg * sy) / det;
  const double t = g.radius / g.ref_sigma;
  return amp * (std::erf(t * M_SQRT1_2) - std::sqrt(2 / kPi) * t * std::exp(-0.5 * t * t));
}

// The weights of the fitted widths: each converged peak's intensity, capped at ten times the 90th
// percentile of them, so that a single absurd peak (a diverged fit, a hot voxel) cannot outweigh
// all the atoms; real atoms, within a factor of ten of one another, are never capped. 0 for
// fallbacks and non-positive intensities.
std::vector<double> width_weights(const std::vector<Peak>& peaks) {
  std::vector<double> w(peaks.size(), 0.0), positive;
  for (std::size_t i = 0; i < peaks.size(); ++i)
    if (!peaks[i].fallback && peaks[i].intensity > 0) {
      w[i] = peaks[i].intensity;
      positive.push_back(w[i]);
    }
  if (positive.empty()) return w;
  const auto q = positive.begin() + static_cast<std::ptrdiff_t>(positive.size() * 9 / 10);
  std::nth_element(positive.begin(), q, positive.end());
  const double cap = 10 * *q;
  for (double& x : w) x = std::min(x, cap);
  return w;
}

// The atoms' typical width (Angstrom): the intensity-weighted median of the fitted widths, so that
// the many weak noise peaks, whatever their widths, count little. 0 when no fit converged.
double typical_width(const std::vector<Peak>& peaks) {
  const std::vector<double> weight = width_weights(peaks);
  std::vector<std::pair<double, double>> sw;
  double total = 0;
  for (std::size_t i = 0; i < peaks.size(); ++i)
    if (weight[i] > 0) {
      sw.emplace_back(peaks[i].sigma(), weight[i]);
      total += weight[i];
    }
  std::sort(sw.begin(), sw.end());
  double acc = 0;
  for (const auto& q : sw) {
    acc += q.second;
    if (acc >= 0.5 * total) return q.first;
  }
  return 0;
}

// The atoms' common shape: per axis, the intensity-weighted median of the fitted width over the
// geometric mean width, normalised to a product of 1. Weighted like typical_width, so that the
// atoms, not the noise peaks, set it.
void atom_shape(const std::vector<Peak>& peaks, double shape[3]) {
  const std::vector<double> weight = width_weights(peaks);
  double r[3];
  for (int a = 0; a < 3; ++a) {
    std::vector<std::pair<double, double>> sw;
    double total = 0;
    for (std::size_t i = 0; i < peaks.size(); ++i)
      if (weight[i] > 0 && peaks[i].sigma() > 0) {
        sw.emplace_back(peaks[i].sigma_axis[a] / peaks[i].sigma(), weight[i]);
        total += weight[i];
      }
    if (sw.empty()) {
      for (int b = 0; b < 3; ++b) shape[b] = 1;
      return;
    }
    std::sort(sw.begin(), sw.end());
    double acc = 0;
    r[a] = sw.back().first;
    for (const auto& q : sw) {
      acc += q.second;
      if (acc >= 0.5 * total) {
        r[a] = q.first;
        break;
      }
    }
  }
  const double m = std::cbrt(r[0] * r[1] * r[2]);
  for (int a = 0; a < 3; ++a) shape[a] = r[a] / m;
}

}  // namespace aet::detail
