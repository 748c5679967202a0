// Atomic-model refinement (include/aet/refine/model_refinement.hpp): block-coordinate
// Gauss-Newton. Each iteration sweeps the atoms one at a time against the current residual
// (Gauss-Seidel: atoms that overlap in a view see each other's updates), takes a Newton step on
// the common width, then fits every view's scale, offset, shift and rotation in parallel.
#include "aet/refine/model_refinement.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "refine/refine_detail.hpp"

namespace aet {

namespace detail {

void make_profile(double mu, double s, std::int64_t n, double a, Profile& p) {
  const double c = static_cast<double>(n / 2);
  const double reach = kRefineReach * s;
  std::int64_t lo = static_cast<std::int64_t>(std::floor((mu - reach) / a + c - 0.5));
  std::int64_t hi = static_cast<std::int64_t>(std::ceil((mu + reach) / a + c + 0.5));
  lo = std::max<std::int64_t>(lo, 0);
  hi = std::min<std::int64_t>(hi, n - 1);
  hi = std::min<std::int64_t>(hi, lo + kRefineMaxPixels - 1);
  p.lo = lo;
  p.count = std::max<std::int64_t>(0, hi - lo + 1);
  if (p.count == 0) return;
  const double inv_s = 1.0 / s;
  auto edge = [&](std::int64_t j, double& Phi, double& phi, double& z) {
    z = ((static_cast<double>(j) - c - 0.5) * a - mu) * inv_s;
    Phi = 0.5 * std::erfc(-z * M_SQRT1_2);
    phi = std::exp(-0.5 * z * z) * 0.39894228040143267794;  // 1 / sqrt(2 pi)
  };
  double P0, f0, z0;
  edge(lo, P0, f0, z0);
  for (std::int64_t j = 0; j < p.count; ++j) {
    double P1, f1, z1;
    edge(lo + j + 1, P1, f1, z1);
    p.m[j] = P1 - P0;
    p.dmu[j] = -(f1 - f0) * inv_s;
    p.ds[j] = -(z1 * f1 - z0 * f0) * inv_s;
    P0 = P1, f0 = f1, z0 = z1;
  }
}

Eigen::Matrix4d atom_curvature_with_tail(const Profile& px, const Profile& py, const Profile& tx,
                                         const Profile& ty, double amp, const Vec3& a,
                                         const Vec3& b, double l) {
  using Values = std::array<double, kRefineMaxPixels>;
  // Sum over the pixels both profiles cover of f (of p) times g (of q).
  auto cross = [](const Profile& p, const Values& f, const Profile& q, const Values& g) {
    const std::int64_t lo = std::max(p.lo, q.lo), hi = std::min(p.lo + p.count, q.lo + q.count);
    double s = 0;
    for (std::int64_t i = lo; i < hi; ++i) s += f[i - p.lo] * g[i - q.lo];
    return s;
  };
  const Profile* xs[2] = {&px, &tx};
  const Profile* ys[2] = {&py, &ty};
  const double beta[2] = {1.0, amp};
  Eigen::Matrix4d A = Eigen::Matrix4d::Zero();
  for (int j = 0; j < 2; ++j)
    for (int k = 0; k < 2; ++k) {
      const Profile &xj = *xs[j], &xk = *xs[k], &yj = *ys[j], &yk = *ys[k];
      const double c = beta[j] * beta[k];
      const double dd_x = cross(xj, xj.dmu, xk, xk.dmu), mm_x = cross(xj, xj.m, xk, xk.m);
      const double dm_x = cross(xj, xj.dmu, xk, xk.m), md_x = cross(xj, xj.m, xk, xk.dmu);
      const double dd_y = cross(yj, yj.dmu, yk, yk.dmu), mm_y = cross(yj, yj.m, yk, yk.m);
      const double dm_y = cross(yj, yj.dmu, yk, yk.m), md_y = cross(yj, yj.m, yk, yk.dmu);
      // Pixel Jacobian of component j: position du_j a + dv_j b (du = dmu_x m_y, dv = m_x dmu_y),
      // intensity l m_x m_y.
      A.topLeftCorner<3, 3>() +=
          c * (dd_x * mm_y * a * a.transpose() + dm_x * md_y * a * b.transpose() +
               md_x * dm_y * b * a.transpose() + mm_x * dd_y * b * b.transpose());
      const Vec3 pw = c * l * (dm_x * mm_y * a + mm_x * dm_y * b);
      A.block<3, 1>(0, 3) += pw;
      A.block<1, 3>(3, 0) += pw.transpose();
      A(3, 3) += c * l * l * mm_x * mm_y;
    }
  return A;
}

void add_tail(const std::vector<Vec3>& p, const std::vector<double>& w, const Mat3& R,
              const Vec2& shift, std::int64_t nx, std::int64_t ny, double a, double amplitude,
              double width, double* S) {
  if (!(amplitude > 0) || !(width > 0)) return;
  const double s = width / a;  // pixels
  const std::int64_t m = static_cast<std::int64_t>(std::ceil(4 * s));
  const std::int64_t bx = nx + 2 * m, by = ny + 2 * m;
  std::vector<double> spread(static_cast<std::size_t>(bx * by), 0.0);
  const double cx = static_cast<double>(nx / 2 + m), cy = static_cast<double>(ny / 2 + m);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (w[i] == 0) continue;
    const Vec3 q = R * p[i];
    const double x = (q.x() + shift.x()) / a + cx, y = (q.y() + shift.y()) / a + cy;
    const double fx = std::floor(x), fy = std::floor(y);
    const std::int64_t ix = static_cast<std::int64_t>(fx), iy = static_cast<std::int64_t>(fy);
    if (!(x >= 0 && y >= 0) || ix + 1 >= bx || iy + 1 >= by) continue;  // NaN included
    const double tx = x - fx, ty = y - fy;
    double* row = spread.data() + iy * bx + ix;
    row[0] += w[i] * (1 - tx) * (1 - ty);
    row[1] += w[i] * tx * (1 - ty);
    row[bx] += w[i] * (1 - tx) * ty;
    row[bx + 1] += w[i] * tx * ty;
  }
  std::vector<double> kern(static_cast<std::size_t>(2 * m + 1));
  double ksum = 0;
  for (std::int64_t d = -m; d <= m; ++d) {
    const double z = static_cast<double>(d) / s;
    ksum += kern[static_cast<std::size_t>(d + m)] = std::exp(-0.5 * z * z);
  }
  for (double& k : kern) k /= ksum;
  // Along x for every row of the padded buffer (the columns of the field only), then along y.
  std::vector<double> rows(static_cast<std::size_t>(nx * by), 0.0);
  for (std::int64_t y = 0; y < by; ++y) {
    const double* in = spread.data() + y * bx;
    double* out = rows.data() + y * nx;
    for (std::int64_t x = 0; x < nx; ++x) {
      double v = 0;
      for (std::int64_t d = 0; d <= 2 * m; ++d) v += kern[static_cast<std::size_t>(d)] * in[x + d];
      out[x] = v;
    }
  }
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t d = 0; d <= 2 * m; ++d) {
      const double k = amplitude * kern[static_cast<std::size_t>(d)];
      const double* in = rows.data() + (y + d) * nx;
      double* out = S + y * nx;
      for (std::int64_t x = 0; x < nx; ++x) out[x] += k * in[x];
    }
}

}  // namespace detail

namespace {

constexpr double kDeg = M_PI / 180.0;
constexpr double kReach = detail::kRefineReach;
constexpr int kMaxPixels = detail::kRefineMaxPixels;
// The grid search takes the views whose correlation with the model is below this fraction of
// the median view's (Refiner::search_views).
constexpr double kSearchFit = 0.8;
using detail::make_profile;
using detail::Profile;

// Small rotation (radians about the detector axes u, v, w) applied on the left of R.
Mat3 detector_rotation(const Vec3& w) {
  return rot_z(w.z() / kDeg) * rot_y(w.y() / kDeg) * rot_x(w.x() / kDeg);
}

class Refiner {
 public:
  Refiner(const Array3& views, const TiltGeometry& geometry, const AtomModel& atoms,
          const ModelRefineOptions& opt)
      : b_(views),
        nx_(views.nx()),
        ny_(views.ny()),
        nv_(views.nz()),
        a_(views.voxel_size.x),
        opt_(opt),
        g_(geometry),
        p_(atoms.positions),
        p0_(atoms.positions),
        w_(atoms.size(), 1.0),
        l_(static_cast<std::size_t>(nv_), 1.0),
        c_(static_cast<std::size_t>(nv_), 0.0),
        r_(static_cast<std::size_t>(nv_ * nx_ * ny_)),
        tail_amp_(opt.tail_amplitude > 0 && opt.tail_width > 0 ? opt.tail_amplitude : 0.0),
        tail_width_(tail_amp_ > 0 ? opt.tail_width : 0.0) {
    sigma_min_ = 0.1 * a_;
    sigma_max_ = (kMaxPixels - 6) * a_ / (2 * kReach);
    sigma_ = std::clamp(opt.sigma > 0 ? opt.sigma : 1.5 * a_, sigma_min_, sigma_max_);
    if (const auto* in = atoms.find_property("intensity")) {
      std::vector<double> v;
      for (double x : *in)
        if (x > 0 && std::isfinite(x)) v.push_back(x);
      if (!v.empty()) {
        const double med = median_of(std::move(v));
        for (std::size_t i = 0; i < w_.size(); ++i)
          w_[i] = (*in)[i] > 0 && std::isfinite((*in)[i]) ? (*in)[i] / med : 1.0;
      }
    }
  }

  ModelRefineResult run(const AtomModel& atoms) {
    ModelRefineResult res;
    // Scales and offsets first (closed form with everything else fixed), then the width.
    fit_views(false, false);
    normalise_scale();
    for (int i = 0; i < 5; ++i) {
      update_residual();
      step_sigma();
      fit_views(false, false);
    }
    if (opt_.fit_tail) {
      // The tail takes up intensity the core's width took before: both settle together.
      for (int i = 0; i < 3; ++i) {
        update_residual();
        fit_tail(i == 0 ? TailSearch::full : TailSearch::near);
        fit_views(false, false);
      }
    }
    if (opt_.search_range_deg > 0 && opt_.refine_angles) {
      const TiltGeometry before = g_;
      res.search_change_deg = search_views(opt_.search_range_deg);
      hold_gauges(before);
      fit_views(false, false);
      normalise_scale();
    }
    double r2 = update_residual();
    res.r1.push_back(r1());
    const TiltGeometry start = g_;
    Progress progress("refine model", opt_.iterations);
    for (int it = 0; it < opt_.iterations; ++it) {
      if (opt_.refine_atoms) {
        sweep_atoms();
        step_sigma();
        if (opt_.fit_tail) {
          update_residual();
          // The width follows the atoms until a search moves it by less than 2 %; after that
          // only the amplitude (each search costs several tail images per view).
          const double before = tail_width_;
          fit_tail(tail_settled_ ? TailSearch::none : TailSearch::near);
          tail_settled_ = tail_settled_ || std::abs(tail_width_ - before) < 0.02 * before;
        }
      }
      if (opt_.refine_shifts || opt_.refine_angles) {
        const TiltGeometry before = g_;
        fit_views(opt_.refine_shifts, opt_.refine_angles);
        hold_gauges(before);
      } else {
        fit_views(false, false);
      }
      normalise_scale();
      const double r2_new = update_residual();
      res.r1.push_back(r1());
      progress.advance();
      const bool settled = it + 1 == opt_.settle_iterations &&
                           (opt_.refine_shifts || opt_.refine_angles) &&
                           image_change_px(start) < opt_.settle_px;
      const bool converged = r2 - r2_new < opt_.tolerance * r2;
      r2 = r2_new;
      if (converged || settled) break;
    }
    progress.finish();
    res.model = atoms;
    res.model.positions = p_;
    double moved = 0;
    for (std::size_t i = 0; i < p_.size(); ++i) moved += (p_[i] - atoms.positions[i]).squaredNorm();
    res.rms_displacement = std::sqrt(moved / static_cast<double>(p_.size()));
    res.model.property("model_weight") = w_;
    res.geometry = g_;
    res.scale = l_;
    res.offset = c_;
    res.sigma = sigma_;
    res.tail_amplitude = tail_amp_;
    res.tail_width = tail_width_;
    return res;
  }

 private:
  const Array3& b_;
  std::int64_t nx_, ny_, nv_;
  double a_;
  ModelRefineOptions opt_;
  TiltGeometry g_;
  std::vector<Vec3> p_;
  std::vector<Vec3> p0_;  // the prior's centres: the starting positions, in the current gauge
  std::vector<double> w_, l_, c_;
  std::vector<double> r_;  // residual views b - (l S + c)
  // The model views S as fit_views last computed them, valid until the atoms, their width or the
  // geometry change (each pass over all atoms' footprints costs as much as the others).
  std::vector<double> model_;
  bool model_valid_ = false;
  double sigma_ = 0, sigma_min_ = 0, sigma_max_ = 0;
  double tail_amp_ = 0, tail_width_ = 0;  // the probe tail (0: none)
  bool tail_settled_ = false;             // its width no longer searched

  double* residual(std::int64_t k) { return r_.data() + k * nx_ * ny_; }

  // Pixel masses (and derivatives) of an atom at q = R_k p in view k, along u and v.
  void footprint(std::int64_t k, const Vec3& q, Profile& px, Profile& py) const {
    footprint(g_[k].shift, q, sigma_, px, py);
  }
  // The same for an atom of width `sigma` at q in a view shifted by `shift`.
  void footprint(const Vec2& shift, const Vec3& q, double sigma, Profile& px, Profile& py) const {
    make_profile(q.x() + shift.x(), sigma, nx_, a_, px);
    make_profile(q.y() + shift.y(), sigma, ny_, a_, py);
  }

  // S_k: the unscaled model view k (sum over atoms of w_i times the pixel masses).
  // With the probe tail.
  void project(std::int64_t k, std::vector<double>& S) const {
    project(g_[k].R, g_[k].shift, S);
    add_tail(k, tail_amp_, tail_width_, S.data());
  }

  // S += the probe tail of amplitude `amp` and width `width` in view k.
  void add_tail(std::int64_t k, double amp, double width, double* S) const {
    detail::add_tail(p_, w_, g_[k].R, g_[k].shift, nx_, ny_, a_, amp, width, S);
  }

  // The unscaled model seen with rotation R and shift `shift`.
  void project(const Mat3& R, const Vec2& shift, std::vector<double>& S) const {
    S.assign(static_cast<std::size_t>(nx_ * ny_), 0.0);
    add_projection(R, shift, sigma_, 1.0, S);
  }

  // S += f times the model seen with rotation R and shift `shift`, atoms of width `sigma`.
  void add_projection(const Mat3& R, const Vec2& shift, double sigma, double f,
                      std::vector<double>& S) const {
    Profile px, py;
    for (std::size_t i = 0; i < p_.size(); ++i) {
      if (w_[i] == 0) continue;
      const Vec3 q = R * p_[i];
      footprint(shift, q, sigma, px, py);
      for (std::int64_t y = 0; y < py.count; ++y) {
        double* row = S.data() + (py.lo + y) * nx_ + px.lo;
        const double wy = f * w_[i] * py.m[y];
        for (std::int64_t x = 0; x < px.count; ++x) row[x] += wy * px.m[x];
      }
    }
  }

  // Recomputes the residual of every view; returns its sum of squares. The model views that
  // fit_views kept are used when nothing has moved since.
  double update_residual() {
    std::vector<double> part(static_cast<std::size_t>(nv_), 0.0);
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      std::vector<double> own;
      for (std::int64_t k = kb; k < ke; ++k) {
        const double* S = model_.data() + k * nx_ * ny_;
        if (!model_valid_) {
          project(k, own);
          S = own.data();
        }
        const float* b = b_.slice(k);
        double* r = residual(k);
        double s2 = 0;
        for (std::int64_t i = 0; i < nx_ * ny_; ++i) {
          r[i] = b[i] - (l_[k] * S[i] + c_[k]);
          s2 += r[i] * r[i];
        }
        part[k] = s2;
      }
    });
    double s = 0;
    for (double x : part) s += x;
    return s;
  }

  double r1() const {
    double num = 0, den = 0;
    for (std::int64_t i = 0; i < nv_ * nx_ * ny_; ++i) {
      num += std::abs(r_[i]);
      den += std::abs(b_.data()[i]);
    }
    return den > 0 ? num / den : 0;
  }

  // Gauss-Newton on each view's scale and offset, and optionally its shift and rotation, with the
  // atoms fixed. Two steps per call; the derivatives by the shift and the rotation come from the
  // derivatives of the pixel masses by the atom centres.
  // With the geometry fixed, the model views S are kept (model_) for update_residual.
  void fit_views(bool shifts, bool angles) {
    const bool keep = !(shifts || angles);
    if (keep) model_.resize(static_cast<std::size_t>(nv_ * nx_ * ny_));
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      const std::size_t n = static_cast<std::size_t>(nx_ * ny_);
      std::vector<double> own(keep ? 0 : n), Du(n), Dv(n), Ru(n), Rv(n), Rw(n);
      Profile px, py;
      for (std::int64_t k = kb; k < ke; ++k) {
        double* S = keep ? model_.data() + k * nx_ * ny_ : own.data();
        const int steps = (shifts || angles) ? 2 : 1;
        for (int step = 0; step < steps; ++step) {
          std::fill(S, S + n, 0.0);
          for (auto* v : {&Du, &Dv, &Ru, &Rv, &Rw}) std::fill(v->begin(), v->end(), 0.0);
          for (std::size_t i = 0; i < p_.size(); ++i) {
            if (w_[i] == 0) continue;
            const Vec3 q = g_[k].R * p_[i];
            footprint(k, q, px, py);
            for (std::int64_t y = 0; y < py.count; ++y) {
              const std::int64_t o = (py.lo + y) * nx_ + px.lo;
              const double wm = w_[i] * py.m[y], wd = w_[i] * py.dmu[y];
              for (std::int64_t x = 0; x < px.count; ++x) {
                S[o + x] += wm * px.m[x];
                if (!(shifts || angles)) continue;
                // d(pixel)/d(u centre) and d/d(v centre).
                const double du = wm * px.dmu[x], dv = wd * px.m[x];
                Du[o + x] += du;
                Dv[o + x] += dv;
                // A rotation w about the detector axes moves q by w x q: d(u, v)/dw_u = (0, -q_w),
                // d/dw_v = (q_w, 0), d/dw_w = (-q_v, q_u).
                Ru[o + x] += -dv * q.z();
                Rv[o + x] += du * q.z();
                Rw[o + x] += -du * q.y() + dv * q.x();
              }
            }
          }
          // The tail follows the atoms; its derivatives by the geometry are left out (it is
          // wide and weak: the cores place the view).
          add_tail(k, tail_amp_, tail_width_, S);
          const int m = 2 + (shifts ? 2 : 0) + (angles ? 3 : 0);
          Eigen::MatrixXd A = Eigen::MatrixXd::Zero(m, m);
          Eigen::VectorXd rhs = Eigen::VectorXd::Zero(m), J(m);
          const float* b = b_.slice(k);
          const double l = l_[k];
          for (std::size_t i = 0; i < n; ++i) {
            int c = 0;
            J[c++] = S[i];
            J[c++] = 1.0;
            if (shifts) J[c++] = l * Du[i], J[c++] = l * Dv[i];
            if (angles) J[c++] = l * Ru[i], J[c++] = l * Rv[i], J[c++] = l * Rw[i];
            const double r = b[i] - (l * S[i] + c_[k]);
            A.noalias() += J * J.transpose();
            rhs += J * r;
          }
          A.diagonal().array() += 1e-9 * A.diagonal().maxCoeff() + 1e-300;
          const Eigen::VectorXd d = A.ldlt().solve(rhs);
          if (!d.allFinite()) break;
          int c = 0;
          l_[k] += d[c++];
          c_[k] += d[c++];
          if (shifts) {
            Vec2 s(d[c], d[c + 1]);
            c += 2;
            if (s.norm() > 0.5 * a_) s *= 0.5 * a_ / s.norm();  // trust region: half a pixel
            g_[k].shift += s;
          }
          if (angles) {
            Vec3 w(d[c], d[c + 1], d[c + 2]);
            if (w.norm() > 0.5 * kDeg) w *= 0.5 * kDeg / w.norm();  // half a degree
            g_[k].R = detector_rotation(w) * g_[k].R;
          }
        }
      }
    });
    model_valid_ = keep;
  }

  // Grid search of the rotation of the views the atoms do not fit, coarse to fine, before the
  // local fit: Gauss-Newton converges only when each atom's image starts within about its width
  // of the true position, which a view recorded several degrees off does not. Level 0 spans
  // +-range about the view's tilt axis and two steps about the other two axes; two finer levels of
  // 5 x 5 x 5 follow around the best candidate. A candidate turns the view about the atoms'
  // centroid (the shift follows, when shifts are refined) and is scored by its correlation with
  // the view after both are high-passed (a difference of Gaussians): the particle's envelope
  // correlates almost as well at the wrong angle as at the right one, its atoms do not.
  // Only views whose correlation coefficient at their current rotation is below kSearchFit of the
  // median view's are searched: the others' atoms sit where the model puts them, within the
  // local fit's reach, and the search costs about a thousand projections of every atom per view
  // (more for larger particles, whose finer steps need more candidates). Returns each view's
  // change of rotation (degrees; 0 for views not searched).
  std::vector<double> search_views(double range_deg) {
    model_valid_ = false;
    Vec3 c = Vec3::Zero();
    double wsum = 0;
    for (std::size_t i = 0; i < p_.size(); ++i) c += w_[i] * p_[i], wsum += w_[i];
    c = wsum > 0 ? Vec3(c / wsum) : Vec3::Zero();
    double rmax = 0;
    for (std::size_t i = 0; i < p_.size(); ++i)
      if (w_[i] > 0) rmax = std::max(rmax, (p_[i] - c).norm());
    // The high pass removes what is broader than about two atom widths.
    const double sigma_low = std::min(std::sqrt(5.0) * sigma_, sigma_max_);
    // A coarse step moves the outermost atom by 0.75 widths: the true rotation is within about a
    // third of a width of a grid point, where the atoms still correlate.
    const double step0 =
        std::clamp(0.75 * sigma_ / std::max(rmax, sigma_) / kDeg, 0.1, std::max(0.1, range_deg));
    const int n_tilt = static_cast<int>(std::ceil(range_deg / step0 - 1e-9));
    const std::int64_t n = nx_ * ny_;
    // The correlation of view k with the model turned by R (the shift following the centroid).
    auto score = [&](std::int64_t k, const std::vector<double>& B, const Mat3& R, Vec2& shift,
                     std::vector<double>& S) {
      const Mat3& R0 = g_[k].R;
      const Vec2& s0 = g_[k].shift;
      shift = opt_.refine_shifts ? Vec2(s0 + (R0 * c).head<2>() - (R * c).head<2>()) : s0;
      project(R, shift, S);
      add_projection(R, shift, sigma_low, -1.0, S);
      double sb = 0, ss = 0;
      for (std::int64_t i = 0; i < n; ++i) sb += S[i] * B[i], ss += S[i] * S[i];
      return ss > 0 ? sb / std::sqrt(ss) : 0.0;
    };
    const double s_hp = std::sqrt(sigma_low * sigma_low - sigma_ * sigma_);
    std::vector<double> fit(static_cast<std::size_t>(nv_), 0.0);
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      std::vector<double> S, B(static_cast<std::size_t>(n));
      Vec2 shift;
      for (std::int64_t k = kb; k < ke; ++k) {
        high_pass(b_.slice(k), s_hp, B);
        double bb = 0;
        for (double x : B) bb += x * x;
        fit[k] = bb > 0 ? score(k, B, g_[k].R, shift, S) / std::sqrt(bb) : 0.0;
      }
    });
    const double median_fit = median_of(fit);
    std::vector<double> change(static_cast<std::size_t>(nv_), 0.0);
    std::string searched;
    for (std::int64_t k = 0; k < nv_; ++k)
      if (fit[k] < kSearchFit * median_fit) searched += " " + std::to_string(k);
    log_verbose("refine model: view correlations at their rotations " +
                fmt("%.3f", *std::min_element(fit.begin(), fit.end())) + " to " +
                fmt("%.3f", *std::max_element(fit.begin(), fit.end())) + " (median " +
                fmt("%.3f", median_fit) + "); searched:" + (searched.empty() ? " none" : searched));
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      std::vector<double> S, B(static_cast<std::size_t>(n));
      for (std::int64_t k = kb; k < ke; ++k) {
        if (!(fit[k] < kSearchFit * median_fit)) continue;
        high_pass(b_.slice(k), s_hp, B);
        const Mat3 R0 = g_[k].R;
        // Axes of the grid: the image of the object's y axis (the tilt axis of a single-axis
        // series) in the detector plane, the detector normal, and their cross product.
        Vec3 t = R0 * Vec3::UnitY();
        t.z() = 0;
        t = t.norm() > 0.5 ? Vec3(t.normalized()) : Vec3::UnitY();
        const Vec3 nrm = Vec3::UnitZ(), o = nrm.cross(t);
        Mat3 best = R0;
        Vec2 best_shift = g_[k].shift, shift;
        double best_score = score(k, B, R0, shift, S);
        double step = step0;
        for (int level = 0; level < 3; ++level, step *= 0.5) {
          const int nt = level == 0 ? n_tilt : 2;
          const Mat3 centre = best;
          for (int it = -nt; it <= nt; ++it)
            for (int io = -2; io <= 2; ++io)
              for (int in = -2; in <= 2; ++in) {
                if (it == 0 && io == 0 && in == 0) continue;
                const Mat3 D = (Eigen::AngleAxisd(it * step * kDeg, t) *
                                Eigen::AngleAxisd(io * step * kDeg, o) *
                                Eigen::AngleAxisd(in * step * kDeg, nrm))
                                   .toRotationMatrix();
                const Mat3 R = D * centre;
                const double sc = score(k, B, R, shift, S);
                if (sc > best_score) best_score = sc, best = R, best_shift = shift;
              }
        }
        g_[k].R = best;
        g_[k].shift = best_shift;
        change[k] = rotation_angle_deg(best * R0.transpose());
      }
    });
    return change;
  }

  // out = view - (view blurred by a Gaussian of width s, Angstrom; edges clamped).
  void high_pass(const float* view, double s, std::vector<double>& out) const {
    const int r = static_cast<int>(std::ceil(4 * s / a_));
    std::vector<double> kern(static_cast<std::size_t>(2 * r + 1));
    double ksum = 0;
    for (int d = -r; d <= r; ++d) ksum += kern[d + r] = std::exp(-0.5 * std::pow(d * a_ / s, 2));
    for (double& x : kern) x /= ksum;
    std::vector<double> tmp(out.size());
    auto at = [](std::int64_t i, std::int64_t n) { return std::clamp<std::int64_t>(i, 0, n - 1); };
    for (std::int64_t y = 0; y < ny_; ++y)
      for (std::int64_t x = 0; x < nx_; ++x) {
        double v = 0;
        for (int d = -r; d <= r; ++d) v += kern[d + r] * view[y * nx_ + at(x + d, nx_)];
        tmp[y * nx_ + x] = v;
      }
    for (std::int64_t y = 0; y < ny_; ++y)
      for (std::int64_t x = 0; x < nx_; ++x) {
        double v = 0;
        for (int d = -r; d <= r; ++d) v += kern[d + r] * tmp[at(y + d, ny_) * nx_ + x];
        out[y * nx_ + x] = view[y * nx_ + x] - v;
      }
  }

  // The views' common rotation and 3D translation since `before` belong to the object: moved to
  // the atoms, so that the refinement keeps the caller's gauge.
  void hold_gauges(const TiltGeometry& before) {
    model_valid_ = false;
    if (opt_.refine_angles) {
      Mat3 M = Mat3::Zero();
      for (std::int64_t k = 0; k < nv_; ++k) M += before[k].R.transpose() * g_[k].R;
      const Mat3 Q = nearest_rotation(M);
      for (auto& g : g_) g.R = g.R * Q.transpose();
      for (auto& p : p_) p = Q * p;
      for (auto& p : p0_) p = Q * p;
    }
    if (opt_.refine_shifts) {
      Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
      Eigen::Vector3d rhs = Eigen::Vector3d::Zero();
      for (std::int64_t k = 0; k < nv_; ++k) {
        const Eigen::Matrix<double, 2, 3> P = g_[k].R.topRows<2>();
        A += P.transpose() * P;
        rhs += P.transpose() * (g_[k].shift - before[k].shift);
      }
      const Eigen::Vector3d t = A.completeOrthogonalDecomposition().solve(rhs);
      for (std::int64_t k = 0; k < nv_; ++k) g_[k].shift -= g_[k].R.topRows<2>() * t;
      for (auto& p : p_) p += t;
      for (auto& p : p0_) p += t;
    }
  }

  // The largest, over the views, RMS displacement (pixels) of the atoms' images between the
  // geometry `from` and the current one.
  double image_change_px(const TiltGeometry& from) const {
    double worst = 0;
    for (std::int64_t k = 0; k < nv_; ++k) {
      const Mat3 dR = g_[k].R - from[k].R;
      const Vec2 ds = g_[k].shift - from[k].shift;
      double s2 = 0, n = 0;
      for (std::size_t i = 0; i < p_.size(); ++i)
        if (w_[i] > 0) s2 += (Vec2((dR * p_[i]).head<2>()) + ds).squaredNorm(), n += 1;
      if (n > 0) worst = std::max(worst, std::sqrt(s2 / n) / a_);
    }
    return worst;
  }

  void normalise_scale() {
    double m = 0;
    for (double l : l_) m += l;
    m /= static_cast<double>(l_.size());
    if (!(m > 0)) return;
    for (double& l : l_) l /= m;
    for (double& w : w_) w *= m;
    if (model_valid_)
      for (double& s : model_) s *= m;
  }

  // One Gauss-Newton step of every atom's position and intensity in turn, each against the
  // residual that includes the updates of the atoms before it. With a position prior the step
  // minimises sum r^2 + lambda |p - p0|^2, lambda = (noise variance) / prior^2: the MAP estimate
  // under Gaussian noise, the variance read off the residual on the atom's own footprint.
  void sweep_atoms() {
    model_valid_ = false;
    // Each view's footprint at the atom's old position, kept for taking it out of the residual.
    std::vector<Profile> pxs(static_cast<std::size_t>(nv_)), pys(pxs.size());
    Profile px, py;
    const double inv_prior2 =
        opt_.position_prior > 0 ? 1.0 / (opt_.position_prior * opt_.position_prior) : 0.0;
    for (std::size_t i = 0; i < p_.size(); ++i) {
      Eigen::Matrix4d A = Eigen::Matrix4d::Zero();
      Eigen::Vector4d rhs = Eigen::Vector4d::Zero();
      double rr = 0;
      std::int64_t npix = 0;
      for (std::int64_t k = 0; k < nv_; ++k) {
        const Mat3& R = g_[k].R;
        footprint(k, R * p_[i], pxs[k], pys[k]);
        const double lw = l_[k] * w_[i];
        npix += detail::add_atom_normal(pxs[k], pys[k], Vec3(lw * R.row(0).transpose()),
                                        Vec3(lw * R.row(1).transpose()), l_[k], residual(k), nx_, A,
                                        rhs, rr);
      }
      if (inv_prior2 > 0 && npix > 0) {
        const double lambda = rr / static_cast<double>(npix) * inv_prior2;
        A.topLeftCorner<3, 3>().diagonal().array() += lambda;
        rhs.head<3>() += lambda * (p0_[i] - p_[i]);
      }
      A.diagonal().array() += 1e-9 * A.diagonal().maxCoeff() + 1e-300;
      const Eigen::Vector4d d = A.ldlt().solve(rhs);
      if (!d.allFinite()) continue;
      Vec3 dp = d.head<3>();
      if (dp.norm() > opt_.max_atom_step) dp *= opt_.max_atom_step / dp.norm();
      const double w_old = w_[i], w_new = std::max(0.0, w_[i] + d[3]);
      const Vec3 p_new = p_[i] + dp;
      // The residual loses the old contribution of the atom and gains the new one.
      for (std::int64_t k = 0; k < nv_; ++k) {
        double* r = residual(k);
        for (int pass = 0; pass < 2; ++pass) {
          const double f = l_[k] * (pass == 0 ? w_old : -w_new);
          if (f == 0) continue;
          if (pass == 1) footprint(k, g_[k].R * p_new, px, py);
          const Profile& fx = pass == 0 ? pxs[k] : px;
          const Profile& fy = pass == 0 ? pys[k] : py;
          for (std::int64_t y = 0; y < fy.count; ++y) {
            double* row = r + (fy.lo + y) * nx_ + fx.lo;
            const double f_y = f * fy.m[y];
            for (std::int64_t x = 0; x < fx.count; ++x) row[x] += f_y * fx.m[x];
          }
        }
      }
      p_[i] = p_new;
      w_[i] = w_new;
    }
  }

  // Fits the probe tail's amplitude, and with `search` its width, to the current residual (r_
  // current; the atom positions and the views fixed), together with a step of the core width and
  // of the atoms' common intensity: the three trade intensity (a core fitted without the tail is
  // too wide and too bright, and the core's excess at each atom cancels the tail's correlation
  // with the residual), so for each tail width they are one linear least-squares problem, each
  // view's offset free (sums demeaned per view). The width is searched on a log-spaced grid, then
  // by golden section on the fit's gain. Leaves r_ stale: the caller fits the views and updates
  // the residual.
  enum class TailSearch { full, near, none };  // the width: whole range, within 25 %, held
  void fit_tail(TailSearch search) {
    if (search != TailSearch::full && tail_width_ == 0) return;
    const std::size_t per = static_cast<std::size_t>(nx_ * ny_);
    // The residual of the cores alone.
    if (tail_amp_ > 0)
      parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
        std::vector<double> T(per);
        for (std::int64_t k = kb; k < ke; ++k) {
          std::fill(T.begin(), T.end(), 0.0);
          add_tail(k, 1.0, tail_width_, T.data());
          double* r = residual(k);
          for (std::size_t i = 0; i < per; ++i) r[i] += l_[k] * tail_amp_ * T[i];
        }
      });
    const std::vector<double> D = core_width_derivative();
    std::vector<double> S(static_cast<std::size_t>(nv_) * per);
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      std::vector<double> own;
      for (std::int64_t k = kb; k < ke; ++k) {
        project(g_[k].R, g_[k].shift, own);
        std::copy(own.begin(), own.end(), S.begin() + k * nx_ * ny_);
      }
    });
    struct TailFit {
      Eigen::Vector3d x = Eigen::Vector3d::Zero();  // core width step, intensity step, amplitude
      double gain = 0;
    };
    auto fit = [&](double width) {
      // Per view: the demeaned normal equations of (D, S, T) against the residual.
      std::vector<Eigen::Matrix<double, 3, 4>> sums(static_cast<std::size_t>(nv_));
      parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
        std::vector<double> T(per);
        for (std::int64_t k = kb; k < ke; ++k) {
          std::fill(T.begin(), T.end(), 0.0);
          add_tail(k, 1.0, width, T.data());
          const double* r = residual(k);
          const double* d = D.data() + k * nx_ * ny_;
          const double* c = S.data() + k * nx_ * ny_;
          Eigen::Vector4d mean = Eigen::Vector4d::Zero();
          Eigen::Matrix4d M = Eigen::Matrix4d::Zero();
          for (std::size_t i = 0; i < per; ++i) {
            const Eigen::Vector4d v(d[i], c[i], T[i], r[i]);
            mean += v;
            M.noalias() += v * v.transpose();
          }
          const double n = static_cast<double>(per);
          M -= mean * mean.transpose() / n;
          const double l = l_[k];
          sums[k].leftCols<3>() = l * l * M.topLeftCorner<3, 3>();
          sums[k].col(3) = l * M.block<3, 1>(0, 3);
        }
      });
      Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
      Eigen::Vector3d g = Eigen::Vector3d::Zero();
      for (const auto& m : sums) A += m.leftCols<3>(), g += m.col(3);
      TailFit f;
      A.diagonal().array() += 1e-12 * A.diagonal().maxCoeff() + 1e-300;
      Eigen::Vector3d x = A.ldlt().solve(g);
      if (!x.allFinite()) return f;
      if (x[2] < 0) {  // no negative tail: the core's two terms alone
        x.setZero();
        x.head<2>() = A.topLeftCorner<2, 2>().ldlt().solve(g.head<2>());
        if (!x.allFinite()) return f;
      }
      f.x = x;
      f.gain = 2 * x.dot(g) - x.dot(A * x);
      return f;
    };
    // Golden section of the gain over log width in [u, v], from `start` (the best so far).
    auto golden = [&](double u, double v, int steps, double start, double start_gain) {
      constexpr double kG = 0.6180339887498949;
      double c = v - kG * (v - u), d = u + kG * (v - u);
      double gc = fit(std::exp(c)).gain, gd = fit(std::exp(d)).gain;
      for (int it = 0; it < steps; ++it) {
        if (gc > gd) {
          v = d, d = c, gd = gc, c = v - kG * (v - u), gc = fit(std::exp(c)).gain;
        } else {
          u = c, c = d, gc = gd, d = u + kG * (v - u), gd = fit(std::exp(d)).gain;
        }
      }
      if (std::max(gc, gd) < start_gain) return start;
      return gc > gd ? c : d;
    };
    const double lo = std::log(std::max(3 * sigma_, 2 * a_));
    const double hi = std::log(std::min(ModelRefineOptions::kMaxTailWidth,
                                        0.25 * a_ * static_cast<double>(std::min(nx_, ny_))));
    double width = 0;
    if (search == TailSearch::full && hi > lo) {
      // A log-spaced grid over the whole range, then the best point's neighbourhood.
      constexpr int kGrid = 8;
      std::vector<double> x(kGrid), gain(kGrid);
      int best = 0;
      for (int i = 0; i < kGrid; ++i) {
        x[i] = lo + (hi - lo) * i / (kGrid - 1);
        gain[i] = fit(std::exp(x[i])).gain;
        if (gain[i] > gain[best]) best = i;
      }
      width = std::exp(golden(x[std::max(0, best - 1)], x[std::min(kGrid - 1, best + 1)], 6,
                              x[best], gain[best]));
    } else if (search == TailSearch::near && hi > lo) {
      // Follows the width as the atoms settle: within a quarter of where it was.
      const double x0 = std::clamp(std::log(tail_width_), lo, hi);
      width = std::exp(golden(std::max(lo, x0 - std::log(1.25)), std::min(hi, x0 + std::log(1.25)),
                              3, x0, fit(std::exp(x0)).gain));
    } else if (search == TailSearch::none) {
      width = tail_width_;
    }
    const TailFit f = width > 0 ? fit(width) : TailFit{};
    // The intensity step goes to the atoms (the views' scales keep their mean of 1), and the
    // amplitude is relative to the atoms' new intensities.
    const double grow = std::clamp(1.0 + f.x[1], 0.5, 2.0);
    for (double& w : w_) w *= grow;
    tail_amp_ = f.x[2] > 0 ? f.x[2] / grow : 0.0;
    tail_width_ = tail_amp_ > 0 ? width : 0.0;
    sigma_ = std::clamp(sigma_ + std::clamp(f.x[0], -0.2 * sigma_, 0.2 * sigma_), sigma_min_,
                        sigma_max_);
    model_valid_ = false;
  }

  // Per view, the derivative of the unscaled core view by the common width (sum over atoms of w_i
  // times the pixel masses' derivative).
  std::vector<double> core_width_derivative() const {
    std::vector<double> D(static_cast<std::size_t>(nv_ * nx_ * ny_), 0.0);
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      Profile px, py;
      for (std::int64_t k = kb; k < ke; ++k) {
        double* Dk = D.data() + k * nx_ * ny_;
        for (std::size_t i = 0; i < p_.size(); ++i) {
          if (w_[i] == 0) continue;
          footprint(k, g_[k].R * p_[i], px, py);
          for (std::int64_t y = 0; y < py.count; ++y) {
            double* row = Dk + (py.lo + y) * nx_ + px.lo;
            for (std::int64_t x = 0; x < px.count; ++x)
              row[x] += w_[i] * (px.ds[x] * py.m[y] + px.m[x] * py.ds[y]);
          }
        }
      }
    });
    return D;
  }

  // One Newton step on the common width against the current residual (at most 20 %).
  void step_sigma() {
    const std::vector<double> D = core_width_derivative();
    std::vector<double> aa(static_cast<std::size_t>(nv_), 0.0), gg(aa);
    parallel_for(nv_, [&](std::int64_t kb, std::int64_t ke) {
      for (std::int64_t k = kb; k < ke; ++k) {
        const double* d = D.data() + k * nx_ * ny_;
        const double* r = residual(k);
        for (std::int64_t i = 0; i < nx_ * ny_; ++i) {
          const double J = l_[k] * d[i];
          aa[k] += J * J;
          gg[k] += J * r[i];
        }
      }
    });
    double A = 0, g = 0;
    for (std::int64_t k = 0; k < nv_; ++k) A += aa[k], g += gg[k];
    if (!(A > 0)) return;
    const double d = std::clamp(g / A, -0.2 * sigma_, 0.2 * sigma_);
    sigma_ = std::clamp(sigma_ + d, sigma_min_, sigma_max_);
    model_valid_ = false;
  }
};

}  // namespace

ModelRefineResult detail::refine_atoms_and_views(const Array3& views, const TiltGeometry& geometry,
                                                 const AtomModel& atoms,
                                                 const ModelRefineOptions& opt) {
  if (views.empty()) fail_input("refine model: the tilt series is empty");
  if (static_cast<std::int64_t>(geometry.size()) != views.nz())
    fail_input("refine model: " + std::to_string(geometry.size()) + " view geometries for " +
               std::to_string(views.nz()) + " views");
  if (!(views.voxel_size.x > 0) || !std::isfinite(views.voxel_size.x))
    fail_input("refine model: the pixel size must be > 0");
  if (atoms.size() == 0) fail_input("refine model: the atomic model has no atoms");
  for (const auto& p : atoms.positions)
    if (!p.allFinite()) fail_input("refine model: an atom position is not finite");
  for (std::size_t i = 0; i < views.size(); ++i)
    if (!std::isfinite(views.data()[i]))
      fail_input("refine model: view " + std::to_string(i / (views.nx() * views.ny())) +
                 " holds NaN or Inf");
  if (opt.iterations < 0) fail_input("refine model: iterations must be >= 0");
  if (!(opt.sigma >= 0) || !std::isfinite(opt.sigma))
    fail_input("refine model: the starting width must be >= 0");
  if (!(opt.max_atom_step > 0) || !std::isfinite(opt.max_atom_step))
    fail_input("refine model: the atom step must be > 0");
  if (!(opt.position_prior >= 0) || !std::isfinite(opt.position_prior))
    fail_input("refine model: the position prior must be >= 0 Angstrom");
  if (!(opt.tolerance >= 0)) fail_input("refine model: the tolerance must be >= 0");
  if (!(opt.search_range_deg >= 0 && opt.search_range_deg <= 45))
    fail_input("refine model: the angle search range must be in [0, 45] degrees");
  if (opt.bootstrap < 0) fail_input("refine model: the bootstrap replicates must be >= 0");
  if (opt.bootstrap_iterations < 1)
    fail_input("refine model: the bootstrap's iterations must be >= 1");
  Refiner refiner(views, geometry, atoms, opt);
  return refiner.run(atoms);
}

ModelRefineResult refine_atomic_model(const Array3& views, const TiltGeometry& geometry,
                                      const AtomModel& atoms, const ModelRefineOptions& opt) {
  ModelRefineResult res = detail::refine_atoms_and_views(views, geometry, atoms, opt);
  if (opt.refine_atoms && opt.trust) detail::add_trust(views, opt, res);
  return res;
}

}  // namespace aet
