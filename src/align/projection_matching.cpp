// Projection matching: reconstruct with the current geometry, re-project, and fit each view's
// shift to its re-projection by Gauss-Newton; the common tilt axis is searched by the R2 of
// reconstructions. Per-view rotations are then refined against a traced atomic model
// (aet_refine: src/refine/model_refinement.cpp), which, unlike a voxel reconstruction, cannot
// absorb a view's angle error (docs/alignment.md).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "aet/refine/model_refinement.hpp"
#include "aet/trace/trace.hpp"
#include "align_detail.hpp"

namespace aet {
namespace {

constexpr double kDeg = M_PI / 180.0;

// Fits one view's scale and shift to the re-projection of `volume` by Gauss-Newton, the shift
// derivatives from the image gradient of the re-projection; returns `g` with the fitted shift.
ViewGeometry fit_view(const Array3& volume, const float* b, ViewGeometry g, std::int64_t nx,
                      std::int64_t ny, double max_shift_px, bool allow_cc, int iterations,
                      const Device& dev) {
  const double a = volume.voxel_size.x;
  const std::int64_t n = nx * ny;
  auto project = [&](const ViewGeometry& view) {
    return forward_project(volume, TiltGeometry{view}, nx, ny, dev);
  };
  for (int it = 0; it < iterations; ++it) {
    Array3 p = project(g);
    if (it == 0 && allow_cc) {
      // A whole-pixel error is beyond the reach of the linearisation: register first.
      const Vec2 d = detail::register_shift(b, p.data(), nx, ny, max_shift_px);
      if (d.norm() > 0.5) {
        g.shift += d * a;
        p = project(g);
      }
    }
    double bp = 0, pp = 0;
    for (std::int64_t i = 0; i < n; ++i)
      bp += double(b[i]) * p.data()[i], pp += double(p.data()[i]) * p.data()[i];
    if (!(pp > 0)) break;
    const double l = bp / pp;
    // Unknowns: scale, shift x, shift y.
    Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
    Eigen::Vector3d rhs = Eigen::Vector3d::Zero(), J;
    const float* pv = p.data();
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const std::int64_t i = y * nx + x;
        J[0] = pv[i];
        // d/ds of p(x - s) = -grad p (pixels); central differences, one-sided at the edges.
        const std::int64_t x0 = std::max<std::int64_t>(0, x - 1), x1 = std::min(nx - 1, x + 1);
        const std::int64_t y0 = std::max<std::int64_t>(0, y - 1), y1 = std::min(ny - 1, y + 1);
        J[1] = -l * (pv[y * nx + x1] - pv[y * nx + x0]) / double(x1 - x0);
        J[2] = -l * (pv[y1 * nx + x] - pv[y0 * nx + x]) / double(y1 - y0);
        const double r = b[i] - l * pv[i];
        A.noalias() += J * J.transpose();
        rhs += J * r;
      }
    A.diagonal().array() += 1e-9 * A.diagonal().maxCoeff();
    const Eigen::Vector3d delta = A.ldlt().solve(rhs);
    Vec2 d(delta[1], delta[2]);
    if (d.norm() > 1.0) d /= d.norm();  // trust region: one pixel per step
    g.shift += d * a;
  }
  return g;
}

// Least-squares common tilt-axis rotation alpha and object rotation Q with
// R_k ~ Rz(alpha) N_k Q (N_k the nominal rotations); alternating closed-form steps.
void fit_axis_and_gauge(const TiltGeometry& geometry, const std::vector<Mat3>& nominal,
                        bool fit_alpha, double& alpha, Mat3& Q) {
  Q = Mat3::Identity();
  for (int it = 0; it < 20; ++it) {
    Mat3 M = Mat3::Zero();
    for (std::size_t k = 0; k < nominal.size(); ++k)
      M += nominal[k].transpose() * rot_z(alpha).transpose() * geometry[k].R;
    Q = nearest_rotation(M);
    if (!fit_alpha) break;
    Mat3 M2 = Mat3::Zero();
    for (std::size_t k = 0; k < nominal.size(); ++k)
      M2 += geometry[k].R * Q.transpose() * nominal[k].transpose();
    alpha = std::atan2(M2(1, 0) - M2(0, 1), M2(0, 0) + M2(1, 1)) / kDeg;
  }
}

// The common tilt-axis rotation that minimises R2 of a reconstruction, by a least-squares
// parabola through R2 at alpha + {-2, -1, 0, 1, 2} * step (per-view fits against re-projections
// converge slowly on a common rotation: each reconstruction absorbs part of the axis error).
// R2 (squared residuals), not R1: the least-squares reconstruction minimises squares, and R1 of a
// 15-iteration RESIRE is skewed, so its parabola's vertex was measured 0.1-0.3 degrees off the
// true axis where R2's is within 0.02 degrees (docs/alignment.md).
double search_axis(const Array3& views, TiltGeometry geom, const std::vector<Mat3>& nominal,
                   double alpha, double step, const ReconOptions& ro, double* best_r2) {
  // The start can be far off (the common line is blind to the axis of a centrosymmetric
  // particle): while the lowest R2 lies at an end of the bracket, the bracket moves there.
  double best = alpha, best_val = 1e300;
  for (int pass = 0; pass < 6; ++pass) {
    Eigen::MatrixXd X(5, 3);
    Eigen::VectorXd y(5);
    int ibest = 2;
    best_val = 1e300;
    for (int i = 0; i < 5; ++i) {
      const double t = (i - 2) * step;
      for (std::size_t k = 0; k < geom.size(); ++k) geom[k].R = rot_z(alpha + t) * nominal[k];
      const double r2 = reconstruct(views, geom, ro).r2.back();
      X(i, 0) = 1, X(i, 1) = t, X(i, 2) = t * t;
      y[i] = r2;
      if (r2 < best_val) best_val = r2, best = alpha + t, ibest = i;
    }
    if (ibest == 0 || ibest == 4) {
      alpha = best;
      continue;
    }
    const Eigen::Vector3d c = X.colPivHouseholderQr().solve(y);
    if (best_r2) *best_r2 = best_val;
    if (c[2] > 0) {
      const double t = -c[1] / (2 * c[2]);
      if (std::abs(t) <= 2.5 * step) return alpha + t;
    }
    return best;
  }
  if (best_r2) *best_r2 = best_val;
  return best;
}

double rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0 : std::sqrt(s / v.size());
}

// The views binned 2 x 2 (mean; an odd last row or column dropped) and the Angstrom offset of the
// binned grid: a point at u in the full views lies at u - offset in the binned ones (their centre
// index n/2 // 2 does not fall on the full views' n // 2).
Array3 bin_views(const Array3& v, Vec2& offset) {
  const std::int64_t nx = v.nx() / 2, ny = v.ny() / 2, nv = v.nz();
  const double a = v.voxel_size.x;
  Array3 b(nx, ny, nv);
  b.voxel_size = VoxelSize{2 * a, 2 * a, 2 * a};
  for (std::int64_t k = 0; k < nv; ++k) {
    const float* in = v.slice(k);
    float* out = b.slice(k);
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const float* p = in + 2 * y * v.nx() + 2 * x;
        out[y * nx + x] = 0.25f * (p[0] + p[1] + p[v.nx()] + p[v.nx() + 1]);
      }
  }
  auto off = [&](std::int64_t n) { return (0.5 - double(n / 2) + 2.0 * double((n / 2) / 2)) * a; };
  offset = Vec2(off(v.nx()), off(v.ny()));
  return b;
}

struct QuickCheck {
  // RMS shift change (full-resolution pixels), the object's translation removed.
  double shift_px = 0;
  double axis_deg = 0;  // tilt-axis rotation found
  double r1 = 0;        // of the half-resolution reconstruction with the given geometry
};

// What projection matching would correct, measured at half resolution: one reconstruction with
// the given geometry, each view's shift fitted to its re-projection, and the tilt axis searched
// by R2 as the full rounds do (docs/alignment.md).
QuickCheck quick_check(const Array3& pre, const TiltGeometry& geom, const std::vector<Mat3>& nom_R,
                       const AlignOptions& opt, double max_shift_px, bool axis) {
  Vec2 offset;
  const Array3 b = bin_views(pre, offset);
  TiltGeometry g = geom;
  for (auto& v : g) v.shift -= offset;
  ReconOptions ro;
  ro.algorithm = Algorithm::resire;
  ro.iterations = 2 * opt.recon_iterations;
  ro.accelerate = true;
  ro.device = opt.device;
  const ReconResult rec = reconstruct(b, g, ro);
  QuickCheck q;
  q.r1 = rec.r1.back();
  const std::int64_t nv = b.nz();
  std::vector<Vec2> d(static_cast<std::size_t>(nv));
  for (std::int64_t k = 0; k < nv; ++k)
    d[k] = fit_view(rec.volume, b.slice(k), g[k], b.nx(), b.ny(), max_shift_px / 2, true, 2,
                    opt.device)
               .shift -
           g[k].shift;
  detail::remove_translation(d, g);
  std::vector<double> px;
  for (const Vec2& x : d) px.push_back(x.norm() / pre.voxel_size.x);
  q.shift_px = rms(px);
  if (axis) {
    ReconOptions rs = ro;
    rs.iterations = opt.recon_iterations;
    q.axis_deg = search_axis(b, g, nom_R, 0.0, 0.5, rs, nullptr);
  }
  return q;
}

}  // namespace

ViewAngles refine_view_angles(const Array3& views, const TiltGeometry& geometry,
                              const std::vector<Euler>& nominal, double tilt_axis_deg,
                              const Array3& volume, const AlignOptions& opt) {
  if (static_cast<std::int64_t>(geometry.size()) != views.nz() || nominal.size() != geometry.size())
    fail_input("align: " + std::to_string(geometry.size()) + " view geometries and " +
               std::to_string(nominal.size()) + " nominal angles for " +
               std::to_string(views.nz()) + " views");
  ViewAngles va;
  va.geometry = geometry;
  va.tilt_axis_deg = tilt_axis_deg;
  const AtomModel atoms = trace_atoms(volume, TraceOptions{});
  va.model_atoms = atoms.size();
  if (atoms.size() < 4) {
    log_warning("align: " + std::to_string(atoms.size()) +
                " atoms traced; per-view angles are not refined");
    return va;
  }
  std::vector<Mat3> nom_R;
  bool single_axis = true;
  for (const auto& e : nominal) {
    nom_R.push_back(rotation_from_euler(e));
    single_axis &= std::abs(e.phi) < 1e-6 && std::abs(e.psi) < 1e-6;
  }
  ModelRefineOptions mo;
  mo.iterations = opt.model_iterations;
  mo.refine_shifts = opt.refine_shifts;
  mo.search_range_deg = opt.angle_search_deg;
  mo.trust = false;  // the geometry is all this step keeps
  // A geometry that has moved the images by a quarter of kChangePx after three iterations (six
  // Gauss-Newton steps of every view) is not going to correct anything: on an aligned series it
  // moves by about a hundredth of a pixel in all.
  mo.settle_iterations = 3;
  mo.settle_px = 0.25 * ViewAngles::kChangePx;
  const ModelRefineResult m = refine_atomic_model(views, geometry, atoms, mo);
  va.geometry = m.geometry;
  if (opt.refine_axis && single_axis) {
    // The common in-plane rotation of the refined views is the tilt axis; the object is kept
    // in the nominal frame.
    Mat3 Q;
    fit_axis_and_gauge(va.geometry, nom_R, true, va.tilt_axis_deg, Q);
    for (auto& g : va.geometry) g.R = g.R * Q.transpose();
  }
  va.model_r1_initial = m.r1.front();
  va.model_r1_final = m.r1.back();
  va.search_change_deg = m.search_change_deg;
  // How far the refined geometry moves the traced atoms' images, view by view.
  const double a = views.voxel_size.x;
  for (std::size_t k = 0; k < geometry.size(); ++k) {
    const Mat3 dR = va.geometry[k].R - geometry[k].R;
    const Vec2 ds = va.geometry[k].shift - geometry[k].shift;
    double s2 = 0;
    for (const Vec3& p : atoms.positions) s2 += (Vec2((dR * p).head<2>()) + ds).squaredNorm();
    va.change_px = std::max(va.change_px, std::sqrt(s2 / static_cast<double>(atoms.size())) / a);
  }
  log_verbose("align: atomic model of " + std::to_string(atoms.size()) + " atoms, model R1 " +
              std::to_string(m.r1.front()) + " -> " + std::to_string(m.r1.back()) + ", axis " +
              std::to_string(va.tilt_axis_deg) + " deg, images moved by up to " +
              std::to_string(va.change_px) + " px RMS in a view");
  return va;
}

AlignResult align_tilt_series(const Array3& views, const std::vector<Euler>& nominal,
                              const AlignOptions& opt) {
  const std::int64_t nx = views.nx(), ny = views.ny(), nv = views.nz();
  if (views.empty()) fail_input("align: the tilt series is empty");
  if (nv < 2) fail_input("align: a tilt series needs at least 2 views, got " + std::to_string(nv));
  if (static_cast<std::int64_t>(nominal.size()) != nv)
    fail_input("align: " + std::to_string(nominal.size()) + " angles for " + std::to_string(nv) +
               " views");
  if (nx < 8 || ny < 8) fail_input("align: views must be at least 8 x 8 pixels");
  if (!(views.voxel_size.x > 0) || !std::isfinite(views.voxel_size.x))
    fail_input("align: the pixel size must be > 0");
  if (opt.rounds < 0) fail_input("align: rounds must be >= 0");
  if (opt.recon_iterations < 1) fail_input("align: reconstruction iterations must be >= 1");
  if (!(opt.max_shift_px >= 0) || !std::isfinite(opt.max_shift_px))
    fail_input("align: the maximum shift must be >= 0 px");
  if (!(opt.angle_search_deg >= 0 && opt.angle_search_deg <= 45))
    fail_input("align: the angle search range must be in [0, 45] degrees");
  for (std::int64_t k = 0; k < nv; ++k) {
    const float* img = views.slice(k);
    bool nonzero = false;
    for (std::int64_t i = 0; i < nx * ny; ++i) {
      if (!std::isfinite(img[i]))
        fail_input("align: view " + std::to_string(k) + " holds NaN or Inf");
      nonzero |= img[i] != 0.0f;
    }
    if (!nonzero) fail_input("align: view " + std::to_string(k) + " is all zero");
  }
  const double a = views.voxel_size.x;
  const double max_shift = opt.max_shift_px > 0 ? opt.max_shift_px : 0.25 * std::min(nx, ny);

  AlignResult res;
  res.sample = opt.sample;
  if (opt.sample == SampleKind::automatic) {
    const SampleDetection d = detect_sample(views);
    res.sample = d.kind;
    res.border_fraction = d.border_fraction;
  }
  PreprocessOptions pp = opt.preprocess;
  if (res.sample == SampleKind::film) pp.subtract_background = pp.normalise = false;
  res.views = preprocess_views(views, pp);
  res.views.voxel_size = VoxelSize{a, a, a};
  const Array3& pre = res.views;

  std::vector<Mat3> nom_R;
  bool single_axis = true;
  for (const auto& e : nominal) {
    nom_R.push_back(rotation_from_euler(e));
    single_axis &= std::abs(e.phi) < 1e-6 && std::abs(e.psi) < 1e-6;
  }
  TiltGeometry geom(static_cast<std::size_t>(nv));
  for (std::int64_t k = 0; k < nv; ++k) geom[k].R = nom_R[k];
  double alpha = 0;

  // Accelerated RESIRE: per-view fits need a converged reconstruction (a partly converged one
  // pulls the angles away from the truth; docs/alignment.md), and momentum gets there in a
  // fraction of the plain iterations.
  ReconOptions ro;
  ro.algorithm = Algorithm::resire;
  ro.iterations = opt.recon_iterations;
  ro.accelerate = true;
  ro.device = opt.device;
  // Cold start with twice the iterations: the same settings for every geometry compared.
  ReconOptions ro_cold = ro;
  ro_cold.iterations = 2 * opt.recon_iterations;
  auto cold = [&](const TiltGeometry& g) { return reconstruct(pre, g, ro_cold); };
  auto recon_r1 = [&](const TiltGeometry& g) { return cold(g).r1.back(); };

  // Detection measured it already; a kind given by the caller is checked on the views as they are.
  double border = res.border_fraction;
  if (opt.sample != SampleKind::automatic) detail::centres_of_mass(pre, &border);
  // A film given as one, or an object cut by the field.
  const bool cut = res.sample == SampleKind::film || border >= detail::kFilmBorderFraction;

  // A series that is aligned already costs a fraction of a reconstruction, not the rounds.
  bool rounds = opt.rounds > 0;
  const AlignRoundState* resume = opt.resume;
  if (resume) {
    // Saved after a round of a run with these views and options: its check found work to do.
    if (resume->geometry.size() != static_cast<std::size_t>(nv) ||
        resume->best_geometry.size() != static_cast<std::size_t>(nv) || resume->rounds_done < 1 ||
        resume->rounds_done > opt.rounds || (!resume->volume.empty() && resume->volume.nx() != nx))
      fail_input("align: the saved progress does not belong to these views and options");
    res.check_shift_px = resume->check_shift_px;
    res.check_axis_deg = resume->check_axis_deg;
  } else if (opt.quick_check && rounds && (opt.refine_shifts || opt.refine_axis) && nx >= 32 &&
             ny >= 32) {
    const QuickCheck q =
        quick_check(pre, geom, nom_R, opt, max_shift, opt.refine_axis && single_axis);
    res.check_shift_px = q.shift_px;
    res.check_axis_deg = q.axis_deg;
    log_verbose("align: half-resolution check: shifts " + std::to_string(q.shift_px) +
                " px RMS, tilt axis " + std::to_string(q.axis_deg) + " deg, R1 " +
                std::to_string(q.r1));
    if (q.shift_px < opt.check_shift_px && std::abs(q.axis_deg) < opt.check_axis_deg) {
      res.already_aligned = true;
      res.r1_initial = res.r1_final = q.r1;
      rounds = false;
    }
  }
  ReconResult final_rec;
  if (!res.already_aligned) {
    if (opt.coarse && !resume) {
      // The common line needs the whole object in every view (its projection onto the axis is then
      // the same in all views); for a film it is left to projection matching.
      if (opt.refine_axis && single_axis && !cut) {
        alpha = detail::common_line_axis(pre, 45.0);
        for (std::int64_t k = 0; k < nv; ++k) geom[k].R = rot_z(alpha) * nom_R[k];
        log_verbose("align: common-line tilt axis " + std::to_string(alpha) + " deg");
      }
      if (opt.refine_shifts) {
        const auto s = detail::coarse_shifts(pre, geom, max_shift);
        for (std::int64_t k = 0; k < nv; ++k) geom[k].shift = s[k];
      }
    }

    // Every geometry tried and the R1 of its reconstruction: the best one is returned. Projection
    // matching against re-projections of a missing-wedge reconstruction can drift once it has
    // converged, and R1 (same reconstruction for all) is the arbiter the user sees.
    TiltGeometry best_geom = geom;
    double best_alpha = alpha, best_r1 = 1e300;
    auto consider = [&](const TiltGeometry& g, double al, double r1) {
      if (r1 < best_r1) best_r1 = r1, best_geom = g, best_alpha = al;
    };
    Progress progress("align", opt.rounds);
    Array3 volume;  // the last round's reconstruction: the next round starts from it
    int first_round = 0;
    bool converged = false;
    if (resume) {
      geom = resume->geometry;
      alpha = resume->axis_deg;
      volume = resume->volume;
      best_geom = resume->best_geometry;
      best_alpha = resume->best_axis_deg;
      best_r1 = resume->best_r1;
      res.rounds = resume->rounds;
      res.r1_initial = resume->r1_initial;
      first_round = resume->rounds_done;
      converged = resume->converged;
      progress.set(first_round);
      log_verbose("align: going on after round " + std::to_string(first_round) +
                  " of saved progress");
    }
    const auto save = [&](int rounds_done) {
      if (!opt.save_round) return;
      AlignRoundState st;
      st.rounds_done = rounds_done;
      st.converged = converged;
      st.check_shift_px = res.check_shift_px;
      st.check_axis_deg = res.check_axis_deg;
      st.geometry = geom;
      st.axis_deg = alpha;
      st.volume = volume;
      st.best_geometry = best_geom;
      st.best_axis_deg = best_alpha;
      st.best_r1 = best_r1;
      st.rounds = res.rounds;
      st.r1_initial = res.r1_initial;
      opt.save_round(st);
    };
    for (int round = first_round; round < opt.rounds && !converged; ++round) {
      ReconOptions ro_round = volume.empty() ? ro_cold : ro;
      ro_round.initial = volume.empty() ? nullptr : &volume;
      ReconResult rec = reconstruct(pre, geom, ro_round);
      const double r1 = rec.r1.back();
      consider(geom, alpha, r1);
      if (round == 0) res.r1_initial = r1;
      const bool search = round < 3;
      if (!opt.refine_shifts && !(opt.refine_axis && search)) {
        res.rounds.push_back({round + 1, r1, 0.0, 0.0});
        progress.advance();
        converged = true;
        save(round + 1);
        break;
      }
      TiltGeometry next = geom;
      if (opt.refine_shifts) {
        for (std::int64_t k = 0; k < nv; ++k)
          next[k] = fit_view(rec.volume, pre.slice(k), geom[k], nx, ny, max_shift, round == 0, 2,
                             opt.device);
        std::vector<Vec2> d(static_cast<std::size_t>(nv));
        for (std::int64_t k = 0; k < nv; ++k) d[k] = next[k].shift - geom[k].shift;
        detail::remove_translation(d, next);
        for (std::int64_t k = 0; k < nv; ++k) next[k].shift = geom[k].shift + d[k];
      }
      if (opt.refine_axis && search) {
        const double steps[] = {1.0, 0.25, 0.08};
        TiltGeometry trial = next;
        // Per-view deviations from Rz(alpha) N_k are kept while the common rotation is searched.
        std::vector<Mat3> base(static_cast<std::size_t>(nv));
        for (std::int64_t k = 0; k < nv; ++k) base[k] = rot_z(-alpha) * next[k].R;
        // Cold starts: a volume warm from the current axis would favour it.
        alpha = search_axis(pre, trial, base, alpha, steps[round], ro, nullptr);
        for (std::int64_t k = 0; k < nv; ++k) next[k].R = rot_z(alpha) * base[k];
      }
      std::vector<double> ds, dw;
      for (std::int64_t k = 0; k < nv; ++k) {
        ds.push_back((next[k].shift - geom[k].shift).norm() / a);
        dw.push_back(rotation_angle_deg(next[k].R * geom[k].R.transpose()));
      }
      geom = next;
      volume = std::move(rec.volume);
      res.rounds.push_back({round + 1, r1, rms(ds), rms(dw)});
      log_verbose("align round " + std::to_string(round + 1) + ": R1 " + std::to_string(r1) +
                  ", shift change " + std::to_string(rms(ds)) + " px, angle change " +
                  std::to_string(rms(dw)) + " deg, axis " + std::to_string(alpha) + " deg");
      progress.advance();
      converged = round > 0 && rms(ds) < 0.01 && rms(dw) < 0.005;
      save(round + 1);
    }
    progress.finish();

    if (opt.rounds > 0) {
      // Rounds after the first start warm, so their R1 are lower than a cold start's: the choice
      // among them favours later rounds, and the chosen geometry is scored cold below.
      ReconOptions ro_last = ro;
      ro_last.initial = &volume;
      consider(geom, alpha, reconstruct(pre, geom, ro_last).r1.back());
      geom = best_geom;
      alpha = best_alpha;
    }
    // The final geometry's cold reconstruction: its R1 is reported, and the per-view angle step
    // traces its atoms in it.
    final_rec = cold(geom);
    res.r1_final = final_rec.r1.back();
    if (opt.rounds == 0) res.r1_initial = res.r1_final;
    if (opt.coarse) {
      TiltGeometry nom(static_cast<std::size_t>(nv));
      for (std::int64_t k = 0; k < nv; ++k) nom[k].R = nom_R[k];
      ReconResult nom_rec = cold(nom);
      const double r1_nominal = nom_rec.r1.back();
      // The coarse step must not make things worse either (e.g. a centre of mass misled by a
      // neighbouring object): the nominal geometry is the last candidate.
      // A film's views hold material outside the reconstructed box at high tilt, which no
      // geometry can fit: a gain in R1 of a few per mille there is that bias, not alignment (on
      // a film aligned by its authors it moved the atoms by 45 pm RMS), so a film's geometry
      // must gain 2 %.
      if (r1_nominal < res.r1_final * (cut ? 1.0 / 0.98 : 1.0)) {
        // Not a degraded result: the given geometry is the best one found.
        log_info("align: the nominal geometry fits " +
                 std::string(r1_nominal < res.r1_final ? "better" : "as well") + " (R1 " +
                 std::to_string(r1_nominal) + " against " + std::to_string(res.r1_final) +
                 "); returning it unchanged");
        geom = nom;
        alpha = 0;
        res.r1_final = r1_nominal;
        final_rec = std::move(nom_rec);
      }
    }
  } else if (opt.refine_angles && !cut && !opt.defer_angles) {
    final_rec = cold(geom);                               // the angle step traces its atoms in it
    res.r1_initial = res.r1_final = final_rec.r1.back();  // full resolution, as after the angles
  }
  if (opt.refine_angles && cut)
    log_warning(
        "align: per-view angles are not refined: the object reaches the border of the "
        "views, so atoms outside the field would be missing from the atomic model they "
        "are refined against (an isolated particle is needed)");
  if (opt.refine_angles && !cut && res.already_aligned && opt.defer_angles) {
    res.angles_deferred = true;
  } else if (opt.refine_angles && !cut) {
    // Per-view rotations (and shifts, once more) against the atoms traced in a reconstruction
    // with the geometry found so far: the atoms move with the views, so a view's angle error has
    // nowhere to hide (docs/alignment.md).
    const ViewAngles va = refine_view_angles(pre, geom, nominal, alpha, final_rec.volume, opt);
    res.model_atoms = va.model_atoms;
    res.model_r1_initial = va.model_r1_initial;
    res.model_r1_final = va.model_r1_final;
    res.search_change_deg = va.search_change_deg;
    res.angle_change_px = va.change_px;
    if (va.refined() && !va.changed()) {
      log_info("align: the refined per-view angles move the atoms' images by at most " +
               std::to_string(va.change_px) + " px RMS in a view; the geometry is kept");
    } else if (va.changed()) {
      // Checked against the geometry it started from, with the same reconstruction: angles that
      // do not make the views fit better are not kept (a forward model the views do not follow,
      // e.g. channelling in a crystal, pulls them off).
      const double r1_before = final_rec.r1.back(), r1_after = recon_r1(va.geometry);
      if (r1_after <= r1_before) {
        geom = va.geometry;
        alpha = va.tilt_axis_deg;
        res.r1_final = r1_after;
      } else {
        res.angles_rejected = true;
        res.r1_final = r1_before;
        log_info("align: the refined per-view angles fit the views worse (R1 " +
                 std::to_string(r1_before) + " -> " + std::to_string(r1_after) +
                 "); the geometry before them is kept");
      }
    }
  }
  res.geometry = geom;
  res.tilt_axis_deg = alpha;
  return res;
}

}  // namespace aet
