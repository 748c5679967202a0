// Atom tracing (docs/tracing.md). Every stage is deterministic: candidates are collected per z
// slice and concatenated in order, fits of different atoms are independent (parallel_for writes
// each atom's own slot), and the greedy and clustering steps run serially in a fixed order.
#include "aet/trace/trace.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"

namespace aet {

const char* peak_fit_name(PeakFit f) {
  switch (f) {
    case PeakFit::gaussian:
      return "gaussian";
    case PeakFit::gaussian_axes:
      return "gaussian-axes";
    case PeakFit::polynomial:
      return "polynomial";
  }
  return "?";
}

PeakFit parse_peak_fit(const std::string& name) {
  if (name == "gaussian") return PeakFit::gaussian;
  if (name == "gaussian-axes") return PeakFit::gaussian_axes;
  if (name == "polynomial") return PeakFit::polynomial;
  fail_input("unknown peak fit '" + name + "' (valid: gaussian, gaussian-axes, polynomial)");
}

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
// Fraction of the robust maximum below which candidates are ignored by default: low enough to keep
// Fe beside Pt (peak ratio (26/78)^1.7 = 0.15) with noise, high enough to skip flat background.
constexpr double kAutoThreshold = 0.05;
// Rank of the local maximum used as "max": a few hot voxels do not set the threshold.
constexpr std::size_t kRobustMaxRank = 10;
// Gauss-Newton passes that subtract the neighbours' fitted peaks from each window. One pass
// removes most of the bias from overlapping tails; the second settles it (docs/tracing.md).
constexpr int kDeblendPasses = 2;
// Largest distance (voxels, per axis) of a polynomial fit's centre from its local maximum. The
// Gaussian fit allows half the minimum distance instead (Geometry::max_drift).
constexpr double kMaxDrift = 1.5;

struct Candidate {
  std::int64_t x, y, z;
  float value;
};

// One fitted peak. Centre in voxel coordinates (index space), width in Angstrom.
struct Peak {
  double c[3] = {0, 0, 0};
  double intensity = 0;              // integrated, volume units times voxels
  double sigma_axis[3] = {0, 0, 0};  // Angstrom, per axis (all equal for the isotropic fit)
  double background = 0;
  double height = 0;
  double residual = 1;
  bool fallback = false;
  std::int64_t max_voxel[3] = {0, 0, 0};  // the local maximum the peak came from
  float max_value = 0;
  // Matched-filter intensity: the amplitude of a Gaussian of the atoms' typical width
  // (Geometry::ref_sigma) at the fitted centre, least squares with a constant background, in
  // the units of `intensity`. What the classes are built on (docs/tracing.md, step 5).
  double class_intensity = 0;
  // Width (Angstrom): the geometric mean of the per-axis widths (exactly the width when they are
  // equal, as for the isotropic fit, where cbrt(s^3) could differ from s in the last bit).
  double sigma() const {
    const double* s = sigma_axis;
    return s[0] == s[1] && s[1] == s[2] ? s[0] : std::cbrt(s[0] * s[1] * s[2]);
  }
};

struct Geometry {
  std::int64_t n[3];
  double v[3];    // voxel size, Angstrom
  double radius;  // fit window radius, Angstrom
  // Largest distance (Angstrom) of a Gaussian fit's centre from its local maximum.
  double max_drift = 0;
  // Width (Angstrom) of the fixed-width fit behind Peak::class_intensity; 0 = not computed.
  double ref_sigma = 0;
  // Per-axis width ratios of the one-width Gaussian (product 1): the atoms' common shape, which
  // the missing wedge stretches along z (PeakFit::gaussian_axes); 1, 1, 1 = isotropic.
  double shape[3] = {1, 1, 1};
};

// ---- candidates --------------------------------------------------------------------------------

// A voxel is a local maximum when no neighbour of its 3x3x3 block is larger; on plateaus only the
// first voxel in memory order counts, so a flat top gives one candidate, not many. Voxels on the
// faces of the volume are skipped: their block is incomplete, so they are not known to be maxima,
// and a fit there (half a window) is unreliable.
std::vector<Candidate> local_maxima(const Array3& vol) {
  const std::int64_t nx = vol.nx(), ny = vol.ny(), nz = vol.nz();
  std::vector<std::vector<Candidate>> per_z(static_cast<std::size_t>(nz));
  parallel_for(nz, [&](std::int64_t z0, std::int64_t z1) {
    for (std::int64_t z = std::max<std::int64_t>(z0, 1); z < std::min(z1, nz - 1); ++z)
      for (std::int64_t y = 1; y < ny - 1; ++y)
        for (std::int64_t x = 1; x < nx - 1; ++x) {
          const float v = vol(x, y, z);
          if (!(v > 0.0f)) continue;
          bool is_max = true;
          for (int dz = -1; dz <= 1 && is_max; ++dz) {
            const std::int64_t zz = z + dz;
            if (zz < 0 || zz >= nz) continue;
            for (int dy = -1; dy <= 1 && is_max; ++dy) {
              const std::int64_t yy = y + dy;
              if (yy < 0 || yy >= ny) continue;
              for (int dx = -1; dx <= 1; ++dx) {
                const std::int64_t xx = x + dx;
                if (xx < 0 || xx >= nx || (dx == 0 && dy == 0 && dz == 0)) continue;
                const float w = vol(xx, yy, zz);
                const bool earlier = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                if (w > v || (earlier && w == v)) {
                  is_max = false;
                  break;
                }
              }
            }
          }
          if (is_max) per_z[static_cast<std::size_t>(z)].push_back({x, y, z, v});
        }
  });
  std::vector<Candidate> all;
  for (auto& c : per_z) all.insert(all.end(), c.begin(), c.end());
  return all;
}

// ---- fit windows -------------------------------------------------------------------------------

// The voxels within the fit radius of a centre voxel, clipped to the volume. Local indices address
// the per-axis profiles of the separable models.
struct Window {
  std::int64_t o[3];                      // centre voxel
  int r[3];                               // half-width of the bounding box per axis (voxels)
  std::vector<std::array<int, 3>> local;  // 0 .. 2 r per axis
  std::vector<double> y;
};

// Relative slack when a length in Angstrom is cut into whole voxels. Voxel sizes read from MRC
// headers are float32 (0.35 comes back as 0.35000002 or 0.34999999); without the slack the default
// 1.4 A radius, exactly 4 voxels at 0.35 A, would flip between 3 and 4 with the header's last bit.
constexpr double kVoxelSlack = 1e-6;

int half_width(const Geometry& g, int axis, double radius) {
  return std::max(1, static_cast<int>(std::floor(radius / g.v[axis] * (1 + kVoxelSlack))));
}

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

// Voxel-integrated 1D Gaussian (unit integral) over the voxels first .. first + n - 1, with its
// derivatives with respect to the centre and the width (all in voxel units). Integrating over the
// voxel makes the model exact for ideal Gaussian-atom volumes and keeps the fitted amplitude the
// atom's integrated intensity.
void axis_profile(std::int64_t first, int n, double c, double sig, double* g, double* dc,
                  double* ds) {
  for (int l = 0; l < n; ++l) {
    const double i = static_cast<double>(first + l);
    const double up = (i + 0.5 - c) / sig, um = (i - 0.5 - c) / sig;
    const double pp = kInvSqrt2Pi * std::exp(-0.5 * up * up);
    const double pm = kInvSqrt2Pi * std::exp(-0.5 * um * um);
    g[l] = 0.5 * (std::erf(up * M_SQRT1_2) - std::erf(um * M_SQRT1_2));
    if (dc) dc[l] = -(pp - pm) / sig;
    if (ds) ds[l] = -(up * pp - um * pm) / sig;
  }
}

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

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

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

// ---- polynomial fit ----------------------------------------------------------------------------

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

// ---- neighbours --------------------------------------------------------------------------------

// A uniform grid of cells over positions in Angstrom, for fixed-radius neighbour queries.
class CellGrid {
 public:
  CellGrid(const std::vector<Vec3>& pos, double cell) : pos_(pos), cell_(cell) {
    if (pos.empty()) return;
    lo_ = pos[0];
    Vec3 hi = pos[0];
    for (const auto& p : pos) {
      lo_ = lo_.cwiseMin(p);
      hi = hi.cwiseMax(p);
    }
    for (int a = 0; a < 3; ++a)
      dims_[a] = static_cast<std::int64_t>(std::floor((hi[a] - lo_[a]) / cell_)) + 1;
    head_.assign(static_cast<std::size_t>(dims_[0] * dims_[1] * dims_[2]), -1);
    next_.assign(pos.size(), -1);
    // Insert in reverse so that each cell lists its atoms in increasing index order.
    for (std::int64_t i = static_cast<std::int64_t>(pos.size()) - 1; i >= 0; --i) {
      const std::size_t c = cell_of(pos[static_cast<std::size_t>(i)]);
      next_[static_cast<std::size_t>(i)] = head_[c];
      head_[c] = i;
    }
  }

  // Calls f(j) for every point within `radius` (<= cell size) of p.
  template <class F>
  void for_each_near(const Vec3& p, double radius, F&& f) const {
    if (pos_.empty()) return;
    std::int64_t k[3];
    for (int a = 0; a < 3; ++a)
      k[a] = static_cast<std::int64_t>(std::floor((p[a] - lo_[a]) / cell_));
    const double r2 = radius * radius;
    for (std::int64_t z = k[2] - 1; z <= k[2] + 1; ++z) {
      if (z < 0 || z >= dims_[2]) continue;
      for (std::int64_t y = k[1] - 1; y <= k[1] + 1; ++y) {
        if (y < 0 || y >= dims_[1]) continue;
        for (std::int64_t x = k[0] - 1; x <= k[0] + 1; ++x) {
          if (x < 0 || x >= dims_[0]) continue;
          for (std::int64_t j = head_[static_cast<std::size_t>((z * dims_[1] + y) * dims_[0] + x)];
               j >= 0; j = next_[static_cast<std::size_t>(j)])
            if ((pos_[static_cast<std::size_t>(j)] - p).squaredNorm() <= r2) f(j);
        }
      }
    }
  }

 private:
  std::size_t cell_of(const Vec3& p) const {
    std::int64_t k[3];
    for (int a = 0; a < 3; ++a)
      k[a] = std::clamp<std::int64_t>(
          static_cast<std::int64_t>(std::floor((p[a] - lo_[a]) / cell_)), 0, dims_[a] - 1);
    return static_cast<std::size_t>((k[2] * dims_[1] + k[1]) * dims_[0] + k[0]);
  }
  const std::vector<Vec3>& pos_;
  double cell_;
  Vec3 lo_ = Vec3::Zero();
  std::int64_t dims_[3] = {0, 0, 0};
  std::vector<std::int64_t> head_, next_;
};

Vec3 physical(const Peak& p, const Geometry& g) {
  return Vec3(p.c[0] * g.v[0], p.c[1] * g.v[1], p.c[2] * g.v[2]);
}

// Greedy minimum distance: strongest maximum first (ties by index), each kept peak removes every
// weaker one closer than min_distance. The raw maximum orders them because a fit may land a noise
// ripple on the same spot as the atom beside it.
std::vector<bool> enforce_min_distance(const std::vector<Peak>& peaks, const Geometry& g,
                                       double min_distance) {
  const std::size_t n = peaks.size();
  std::vector<Vec3> pos(n);
  for (std::size_t i = 0; i < n; ++i) pos[i] = physical(peaks[i], g);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return peaks[a].max_value > peaks[b].max_value;
  });
  const CellGrid grid(pos, min_distance);
  std::vector<bool> keep(n, false);
  for (std::size_t i : order) {
    bool clash = false;
    grid.for_each_near(pos[i], min_distance, [&](std::int64_t j) {
      if (keep[static_cast<std::size_t>(j)] &&
          (pos[static_cast<std::size_t>(j)] - pos[i]).norm() < min_distance)
        clash = true;
    });
    keep[i] = !clash;
  }
  return keep;
}

template <class T>
std::vector<T> select(const std::vector<T>& v, const std::vector<bool>& keep) {
  std::vector<T> out;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (keep[i]) out.push_back(v[i]);
  return out;
}

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

// The atoms' typical width (Angstrom): the intensity-weighted median of the fitted widths, so that
// the many weak noise peaks, whatever their widths, count little. 0 when no fit converged.
double typical_width(const std::vector<Peak>& peaks) {
  std::vector<std::pair<double, double>> sw;
  double total = 0;
  for (const auto& p : peaks)
    if (!p.fallback && p.intensity > 0) {
      sw.emplace_back(p.sigma(), p.intensity);
      total += p.intensity;
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
  double r[3];
  for (int a = 0; a < 3; ++a) {
    std::vector<std::pair<double, double>> sw;
    double total = 0;
    for (const auto& p : peaks)
      if (!p.fallback && p.intensity > 0 && p.sigma() > 0) {
        sw.emplace_back(p.sigma_axis[a] / p.sigma(), p.intensity);
        total += p.intensity;
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

// Fits every peak, with window data minus the fitted models of its neighbours (`previous`, when
// given): overlapping tails of close atoms otherwise pull each centre toward its neighbours.
// With `free_axes` a Gaussian fit has a width per axis, otherwise one width times g.shape.
std::vector<Peak> fit_peaks(const Array3& vol, const Geometry& g, PeakFit kind,
                            const std::vector<Peak>& seeds, const std::vector<Peak>* previous,
                            bool free_axes = false) {
  const std::size_t n = seeds.size();
  std::vector<Peak> out(n);
  std::vector<Vec3> pos;
  double max_sigma = 0;
  if (previous) {
    for (const auto& p : *previous) {
      pos.push_back(physical(p, g));
      max_sigma = std::max({max_sigma, p.sigma_axis[0], p.sigma_axis[1], p.sigma_axis[2]});
    }
  }
  const double reach = g.radius + 5 * max_sigma + 2 * std::max({g.v[0], g.v[1], g.v[2]});
  const CellGrid grid(pos, std::max(reach, 1e-6));
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const Peak& seed = seeds[static_cast<std::size_t>(i)];
      std::int64_t o[3];
      for (int a = 0; a < 3; ++a)
        o[a] = std::clamp<std::int64_t>(std::llround(seed.c[a]), 0, g.n[a] - 1);
      Window w = make_window(vol, g, o, g.radius);
      if (previous) {
        std::vector<double> prof[3];
        grid.for_each_near(physical(seed, g), reach, [&](std::int64_t j) {
          if (j == i) return;
          const Peak& nb = (*previous)[static_cast<std::size_t>(j)];
          if (!(nb.intensity > 0)) return;
          for (int a = 0; a < 3; ++a) {
            prof[a].resize(static_cast<std::size_t>(2 * w.r[a] + 1));
            axis_profile(w.o[a] - w.r[a], 2 * w.r[a] + 1, nb.c[a], nb.sigma_axis[a] / g.v[a],
                         prof[a].data(), nullptr, nullptr);
          }
          for (std::size_t k = 0; k < w.y.size(); ++k) {
            const auto& l = w.local[k];
            w.y[k] -= nb.intensity * prof[0][l[0]] * prof[1][l[1]] * prof[2][l[2]];
          }
        });
      }
      Peak pk;
      for (int a = 0; a < 3; ++a) pk.max_voxel[a] = seed.max_voxel[a];
      pk.max_value = seed.max_value;
      const bool ok = kind == PeakFit::polynomial ? fit_polynomial(w, g, pk)
                                                  : fit_gaussian(w, g, free_axes, pk);
      if (!ok) {
        // The centroid is taken around the original maximum, where the peak certainly is.
        std::int64_t m[3] = {seed.max_voxel[0], seed.max_voxel[1], seed.max_voxel[2]};
        Window mw =
            m[0] == o[0] && m[1] == o[1] && m[2] == o[2] ? w : make_window(vol, g, m, g.radius);
        pk = centroid_peak(mw, g);
        for (int a = 0; a < 3; ++a) pk.max_voxel[a] = seed.max_voxel[a];
        pk.max_value = seed.max_value;
      }
      pk.class_intensity = g.ref_sigma > 0 ? fixed_width_intensity(w, g, pk.c) : pk.intensity;
      out[static_cast<std::size_t>(i)] = pk;
    }
  });
  return out;
}

std::string fmt(double v);

// ---- classification ----------------------------------------------------------------------------

struct Clusters {
  std::vector<int> label;      // per value, 0 .. k-1 in increasing centre order
  std::vector<double> centre;  // increasing
  std::vector<double> sd;
  double sse = 0;
};

// Lloyd iterations in 1D from the given centres.
Clusters lloyd(const std::vector<double>& x, std::vector<double> centre) {
  const std::size_t n = x.size(), k = centre.size();
  Clusters c;
  c.label.assign(n, -1);
  for (int it = 0; it < 500; ++it) {
    std::sort(centre.begin(), centre.end());
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      int best = 0;
      for (std::size_t j = 1; j < k; ++j)
        if (std::abs(x[i] - centre[j]) < std::abs(x[i] - centre[static_cast<std::size_t>(best)]))
          best = static_cast<int>(j);
      if (best != c.label[i]) changed = true;
      c.label[i] = best;
    }
    std::vector<double> sum(k, 0.0);
    std::vector<std::size_t> cnt(k, 0);
    for (std::size_t i = 0; i < n; ++i) {
      sum[static_cast<std::size_t>(c.label[i])] += x[i];
      ++cnt[static_cast<std::size_t>(c.label[i])];
    }
    for (std::size_t j = 0; j < k; ++j)
      if (cnt[j]) centre[j] = sum[j] / static_cast<double>(cnt[j]);
    if (!changed) break;
  }
  c.centre = centre;
  c.sd.assign(k, 0.0);
  std::vector<std::size_t> cnt(k, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const auto j = static_cast<std::size_t>(c.label[i]);
    const double d = x[i] - centre[j];
    c.sd[j] += d * d;
    c.sse += d * d;
    ++cnt[j];
  }
  for (std::size_t j = 0; j < k; ++j) c.sd[j] = cnt[j] ? std::sqrt(c.sd[j] / cnt[j]) : 0.0;
  return c;
}

// 1D k-means: the deterministic quantile start, then a few k-means++ starts drawn from `seed`;
// the lowest within-class sum of squares wins (the quantile start on ties).
Clusters kmeans_1d(const std::vector<double>& x, std::size_t k, std::uint64_t seed) {
  std::vector<double> sorted = x;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> init(k);
  for (std::size_t j = 0; j < k; ++j) {
    const double q = (static_cast<double>(j) + 0.5) / static_cast<double>(k);
    init[j] = sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * sorted.size()))];
  }
  Clusters best = lloyd(x, init);
  if (k < 2) return best;
  Rng rng(seed);
  for (int restart = 0; restart < 8; ++restart) {
    std::vector<double> c = {x[rng.below(x.size())]};
    while (c.size() < k) {
      std::vector<double> d2(x.size());
      double total = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        double m = HUGE_VAL;
        for (double cj : c) m = std::min(m, (x[i] - cj) * (x[i] - cj));
        d2[i] = m;
        total += m;
      }
      if (!(total > 0)) break;
      double r = rng.uniform() * total;
      std::size_t pick = x.size() - 1;
      for (std::size_t i = 0; i < x.size(); ++i) {
        r -= d2[i];
        if (r < 0) {
          pick = i;
          break;
        }
      }
      c.push_back(x[pick]);
    }
    if (c.size() < k) continue;
    Clusters trial = lloyd(x, c);
    if (trial.sse < best.sse * (1 - 1e-12)) best = std::move(trial);
  }
  return best;
}

// The cut between non-atoms (class 0) and the lightest species (class 1): the geometric middle of
// the widest empty interval in log intensity among the peaks between the two class centres. k-means
// cuts halfway between the centres, which ignores the spreads: a few hundred noise peaks sit in a
// narrow class near zero and the light species spreads widely below its centre (surface atoms, Fe
// beside Pt), so the midpoint lies close to the weakest atoms and cut some of them (FePt). Where
// the populations are apart, the widest gap between the centres is the one between them (by a
// factor of 2 or more over any gap inside a class in all measured cases), and its middle is the
// largest-margin cut. Returns 0 (keep the k-means labels) with fewer than two peaks there.
double widest_gap_cut(const std::vector<double>& x, const Clusters& c) {
  std::vector<double> between;
  for (double v : x)
    if (v > c.centre[0] && v < c.centre[1]) between.push_back(std::log(v));
  between.push_back(std::log(c.centre[0]));
  between.push_back(std::log(c.centre[1]));
  if (between.size() < 4 || !(c.centre[0] > 0)) return 0;
  std::sort(between.begin(), between.end());
  std::size_t best = 0;
  for (std::size_t i = 1; i + 1 < between.size(); ++i)
    if (between[i + 1] - between[i] > between[best + 1] - between[best]) best = i;
  return std::exp(0.5 * (between[best] + between[best + 1]));
}

// Two neighbouring classes of atoms are distinct species, not one population cut in two, when
// their gap is a sizeable fraction of the upper centre and large against their spreads (a normal
// sample cut in two gives about 2 spreads, a uniform one 2.4).
bool species_separated(const Clusters& c, std::size_t lo) {
  const double gap = c.centre[lo + 1] - c.centre[lo];
  const double spread = std::hypot(c.sd[lo], c.sd[lo + 1]);
  return gap >= 0.15 * c.centre[lo + 1] && gap >= 3.0 * spread;
}

// The lowest class is not atoms when it is weak (at most 35% of the lightest species) and apart
// from it. Noise peaks spread widely, so the spread test is looser than between species; the
// ratio test keeps a clean particle whole when k-means splits off a few bright outliers (merged
// double peaks, impurities) at the top.
bool non_atoms_separated(const Clusters& c) {
  const double gap = c.centre[1] - c.centre[0];
  return c.centre[0] <= 0.35 * c.centre[1] && gap >= 2.0 * std::hypot(c.sd[0], c.sd[1]);
}

bool all_separated(const Clusters& c, bool with_non_atoms) {
  if (with_non_atoms && c.centre.size() > 1 && !non_atoms_separated(c)) return false;
  for (std::size_t j = with_non_atoms ? 1 : 0; j + 1 < c.centre.size(); ++j)
    if (!species_separated(c, j)) return false;
  return true;
}

// Assigns classes: 0 = not an atom, 1 .. E = species (lightest first). Returns a description of
// what was decided, for the model's info.
std::string classify(const std::vector<double>& intensity, std::size_t n_species,
                     std::uint64_t seed, std::vector<int>& cls) {
  cls.assign(intensity.size(), 0);
  std::vector<std::size_t> idx;
  std::vector<double> x;
  for (std::size_t i = 0; i < intensity.size(); ++i)
    if (std::isfinite(intensity[i]) && intensity[i] > 0) {
      idx.push_back(i);
      x.push_back(intensity[i]);
    }
  if (x.empty()) return "no peaks";
  const std::size_t distinct = [&] {
    std::vector<double> s = x;
    std::sort(s.begin(), s.end());
    return static_cast<std::size_t>(std::unique(s.begin(), s.end()) - s.begin());
  }();
  // With one class more than species the lowest class is not atoms, if the classes are real.
  const std::size_t k_full = std::min(n_species + 1, distinct);
  Clusters c = kmeans_1d(x, k_full, seed);
  std::string how;
  int offset = 0;
  if (k_full == n_species + 1 && all_separated(c, true)) {
    how = "kmeans " + std::to_string(k_full) + " classes, lowest = non-atoms";
    const double cut = widest_gap_cut(x, c);
    if (cut > 0) {
      for (std::size_t i = 0; i < x.size(); ++i)
        if (c.label[i] <= 1) c.label[i] = x[i] < cut ? 0 : 1;
      how += " below " + fmt(cut) + " (widest gap; k-means midpoint " +
             fmt(0.5 * (c.centre[0] + c.centre[1])) + ")";
    }
  } else {
    // No separate weak population: every peak is an atom (the Miao recipe would throw away the
    // weaker half of a clean single-species particle here).
    const std::size_t k = std::min(n_species, distinct);
    c = kmeans_1d(x, k, seed);
    offset = 1;
    how = "kmeans " + std::to_string(k) + " classes, no separate non-atom class";
    if (!all_separated(c, false)) {
      how += ", classes overlap";
      log_warning("trace: the intensity classes overlap; species assignment is uncertain");
    }
  }
  std::ostringstream os;
  os.precision(6);
  for (std::size_t j = 0; j < c.centre.size(); ++j) os << (j ? " " : "") << c.centre[j];
  how += " (centres " + os.str() + ")";
  for (std::size_t t = 0; t < idx.size(); ++t) cls[idx[t]] = c.label[t] + offset;
  return how;
}

}  // namespace

ClassifyResult classify_atoms(AtomModel& model, const std::vector<double>& intensity,
                              const std::vector<std::string>& elements, std::uint64_t seed) {
  if (intensity.size() != model.size())
    fail_input("classify atoms: " + std::to_string(intensity.size()) + " intensities for " +
               std::to_string(model.size()) + " atoms");
  if (elements.empty()) fail_input("classify atoms: no elements given");
  for (const auto& e : elements) element(e);
  for (double x : intensity)
    if (!std::isfinite(x)) fail_input("classify atoms: an intensity is not finite");
  ClassifyResult res;
  std::vector<int> cls;
  res.how = classify(intensity, elements.size(), seed, cls);
  std::vector<bool> keep(model.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    keep[i] = cls[i] > 0;
    if (!keep[i]) {
      ++res.removed;
      continue;
    }
    const std::string& e = elements[static_cast<std::size_t>(cls[i] - 1)];
    res.changed += model.species[i] != e;
    model.species[i] = e;
  }
  model.filter(keep);
  return res;
}

namespace {

// Local re-classification (Miao group): each atom takes the species whose mean intensity among the
// atoms within `radius` (itself excluded) is closest to its own; repeated until stable. Runs in
// index order so the result does not depend on threads.
int local_reclassify(const std::vector<Vec3>& pos, const std::vector<double>& intensity,
                     std::size_t n_species, double radius, std::vector<int>& cls) {
  std::vector<double> gsum(n_species + 1, 0.0);
  std::vector<std::size_t> gcnt(n_species + 1, 0);
  for (std::size_t i = 0; i < pos.size(); ++i)
    if (cls[i] > 0) {
      gsum[static_cast<std::size_t>(cls[i])] += intensity[i];
      ++gcnt[static_cast<std::size_t>(cls[i])];
    }
  const CellGrid grid(pos, radius);
  int changes = 0;
  for (int pass = 0; pass < 20; ++pass) {
    int changed = 0;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      if (cls[i] <= 0) continue;
      std::vector<double> sum(n_species + 1, 0.0);
      std::vector<std::size_t> cnt(n_species + 1, 0);
      grid.for_each_near(pos[i], radius, [&](std::int64_t j) {
        const auto u = static_cast<std::size_t>(j);
        if (u == i || cls[u] <= 0) return;
        sum[static_cast<std::size_t>(cls[u])] += intensity[u];
        ++cnt[static_cast<std::size_t>(cls[u])];
      });
      int best = cls[i];
      double best_d = HUGE_VAL;
      for (std::size_t s = 1; s <= n_species; ++s) {
        const double mean = cnt[s]    ? sum[s] / static_cast<double>(cnt[s])
                            : gcnt[s] ? gsum[s] / static_cast<double>(gcnt[s])
                                      : NAN;
        if (!std::isfinite(mean)) continue;
        const double d = std::abs(intensity[i] - mean);
        if (d < best_d) {
          best_d = d;
          best = static_cast<int>(s);
        }
      }
      if (best != cls[i]) {
        cls[i] = best;
        ++changed;
      }
    }
    changes += changed;
    if (!changed) break;
  }
  return changes;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

AtomModel trace_atoms(const Array3& volume, const TraceOptions& opt) {
  if (volume.empty()) fail_input("trace: the volume is empty");
  const VoxelSize& vs = volume.voxel_size;
  for (double v : {vs.x, vs.y, vs.z})
    if (!std::isfinite(v) || v <= 0) fail_input("trace: the voxel size must be positive");
  if (!std::isfinite(opt.min_distance) || opt.min_distance <= 0)
    fail_input("trace: min_distance must be > 0 Angstrom, got " + fmt(opt.min_distance));
  if (!std::isfinite(opt.fit_radius) || opt.fit_radius < 0)
    fail_input("trace: fit_radius must be >= 0 Angstrom (0 = auto), got " + fmt(opt.fit_radius));
  if (!std::isfinite(opt.threshold) || opt.threshold < 0 || opt.threshold >= 1)
    fail_input("trace: threshold must be in [0, 1) (0 = auto), got " + fmt(opt.threshold));
  if (opt.elements.empty()) fail_input("trace: at least one element is needed");
  for (const auto& e : opt.elements) element(e);  // throws InputError naming an unknown symbol
  for (float v : volume.vector())
    if (!std::isfinite(v)) fail_input("trace: the volume holds NaN or infinite values");

  Geometry g;
  g.n[0] = volume.nx();
  g.n[1] = volume.ny();
  g.n[2] = volume.nz();
  g.v[0] = vs.x;
  g.v[1] = vs.y;
  g.v[2] = vs.z;
  const double vmax = std::max({vs.x, vs.y, vs.z});
  // The window must hold enough voxels for the model: two voxels for the Gaussian's six
  // parameters, two and a half for the polynomial's 35 terms.
  const double min_radius = (opt.fit == PeakFit::polynomial ? 2.5 : 2.0) * vmax;
  g.radius = std::max(opt.fit_radius > 0 ? opt.fit_radius : 0.7 * opt.min_distance, min_radius);
  g.max_drift = std::max(0.5 * opt.min_distance, kMaxDrift * vmax);

  // (1) candidates
  std::vector<Candidate> maxima = local_maxima(volume);
  double robust_max = 0;
  if (!maxima.empty()) {
    std::vector<float> top(maxima.size());
    for (std::size_t i = 0; i < maxima.size(); ++i) top[i] = maxima[i].value;
    const std::size_t rank = std::min(kRobustMaxRank, top.size()) - 1;
    std::nth_element(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(rank), top.end(),
                     std::greater<float>());
    robust_max = top[rank];
  }
  const double frac = opt.threshold > 0 ? opt.threshold : kAutoThreshold;
  double cut = frac * robust_max;
  double noise_floor = 0;
  if (opt.threshold == 0) {
    // Zero-mean noise on a background near zero shows in the negative voxels; three of its
    // standard deviations keep most noise ripples out of the candidates (a reconstruction with a
    // positivity constraint has no negative voxels, and then no floor).
    double s2 = 0;
    std::size_t neg = 0;
    for (float v : volume.vector())
      if (v < 0) {
        s2 += static_cast<double>(v) * v;
        ++neg;
      }
    if (neg > 100) noise_floor = 3 * std::sqrt(s2 / static_cast<double>(neg));
    cut = std::max(cut, noise_floor);
  }
  std::vector<Peak> seeds;
  for (const auto& m : maxima) {
    if (m.value < cut) continue;
    Peak p;
    p.max_voxel[0] = m.x;
    p.max_voxel[1] = m.y;
    p.max_voxel[2] = m.z;
    p.c[0] = static_cast<double>(m.x);
    p.c[1] = static_cast<double>(m.y);
    p.c[2] = static_cast<double>(m.z);
    p.max_value = m.value;
    seeds.push_back(p);
  }
  log_verbose("trace: " + std::to_string(maxima.size()) + " local maxima, " +
              std::to_string(seeds.size()) + " above " + fmt(cut));

  // (3) minimum distance, first on the maxima themselves (less the rounding of two maxima to
  // voxels, so that atoms min_distance apart both stay): merging before any fit matters because
  // the fit of one of two close peaks is pulled toward the other.
  const double rounding = std::sqrt(3.0) * vmax;
  seeds = select(seeds, enforce_min_distance(seeds, g, std::max(0.0, opt.min_distance - rounding)));
  // (2) independent fits...
  std::vector<Peak> peaks =
      fit_peaks(volume, g, opt.fit, seeds, nullptr, opt.fit == PeakFit::gaussian_axes);
  if (opt.fit == PeakFit::gaussian_axes) atom_shape(peaks, g.shape);
  if (opt.fit != PeakFit::polynomial) {
    // ...where two fits that converged onto one atom keep only the stronger (each would otherwise
    // subtract the other's copy of the atom below)...
    peaks = select(peaks, enforce_min_distance(peaks, g, 0.5 * opt.min_distance));
    // ...then fits with the neighbours' fitted peaks subtracted from each window.
    // The deblending passes also give each peak its matched-filter intensity, at the atoms'
    // typical width from these first fits.
    g.ref_sigma = typical_width(peaks);
    for (int pass = 0; pass < kDeblendPasses; ++pass)
      peaks = fit_peaks(volume, g, opt.fit, peaks, &peaks);
    // The full minimum distance on the refined positions. The survivors are refitted once
    // without the peaks just dropped, which were part of them (split maxima) or noise beside them.
    const std::vector<bool> keep = enforce_min_distance(peaks, g, opt.min_distance);
    if (std::find(keep.begin(), keep.end(), false) != keep.end()) {
      peaks = select(peaks, keep);
      peaks = fit_peaks(volume, g, opt.fit, peaks, &peaks);
      peaks = select(peaks, enforce_min_distance(peaks, g, opt.min_distance));
    }
  } else {
    peaks = select(peaks, enforce_min_distance(peaks, g, opt.min_distance));
  }

  // (4) classes from the integrated intensities
  std::vector<double> intensity(peaks.size());
  for (std::size_t i = 0; i < peaks.size(); ++i) intensity[i] = peaks[i].class_intensity;
  std::vector<int> cls;
  const std::string how = classify(intensity, opt.elements.size(), opt.seed, cls);

  // (5) local re-classification among the species
  const std::vector<Vec3> pos_all = [&] {
    std::vector<Vec3> p;
    for (const auto& pk : peaks) p.push_back(physical(pk, g));
    return p;
  }();
  int reclassified = 0;
  if (opt.local_reclassify && opt.elements.size() > 1)
    reclassified =
        local_reclassify(pos_all, intensity, opt.elements.size(), 3.0 * opt.min_distance, cls);

  AtomModel model;
  // Columns are filled locally and attached at the end: property() may reallocate the list.
  std::vector<double> p_int, p_peak, p_res, p_cls, p_fb;
  std::size_t non_atoms = 0, fallbacks = 0;
  const double centre[3] = {centre_index(g.n[0]), centre_index(g.n[1]), centre_index(g.n[2])};
  for (std::size_t i = 0; i < peaks.size(); ++i) {
    if (cls[i] <= 0) {
      ++non_atoms;
      continue;
    }
    const Peak& pk = peaks[i];
    fallbacks += pk.fallback;
    model.species.push_back(opt.elements[static_cast<std::size_t>(cls[i] - 1)]);
    model.positions.emplace_back((pk.c[0] - centre[0]) * g.v[0], (pk.c[1] - centre[1]) * g.v[1],
                                 (pk.c[2] - centre[2]) * g.v[2]);
    p_int.push_back(pk.intensity);
    p_peak.push_back(pk.height);
    p_res.push_back(pk.residual);
    p_cls.push_back(cls[i]);
    p_fb.push_back(pk.fallback ? 1.0 : 0.0);
  }

  model.properties = {{"intensity", std::move(p_int)},
                      {"peak", std::move(p_peak)},
                      {"fit_residual", std::move(p_res)},
                      {"class", std::move(p_cls)},
                      {"fit_fallback", std::move(p_fb)}};

  std::string elems;
  for (const auto& e : opt.elements) elems += (elems.empty() ? "" : ",") + e;
  model.set_info("trace_fit", peak_fit_name(opt.fit));
  model.set_info("trace_elements", elems);
  model.set_info("trace_min_distance", fmt(opt.min_distance));
  model.set_info("trace_fit_radius", fmt(g.radius));
  model.set_info("trace_atom_width", fmt(g.ref_sigma));
  model.set_info("trace_atom_shape",
                 fmt(g.shape[0]) + " " + fmt(g.shape[1]) + " " + fmt(g.shape[2]));
  model.set_info("trace_threshold", fmt(frac));
  model.set_info("trace_cut", fmt(cut));
  model.set_info("trace_candidates", std::to_string(seeds.size()));
  model.set_info("trace_non_atoms", std::to_string(non_atoms));
  model.set_info("trace_fit_fallbacks", std::to_string(fallbacks));
  model.set_info("trace_classes", how);
  model.set_info("trace_reclassified", std::to_string(reclassified));
  log_verbose("trace: " + std::to_string(model.size()) + " atoms, " + std::to_string(non_atoms) +
              " non-atoms removed, " + std::to_string(fallbacks) + " centroid fallbacks; " + how);
  return model;
}

}  // namespace aet
