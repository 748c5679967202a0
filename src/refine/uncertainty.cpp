// Trust per atom (include/aet/refine/model_refinement.hpp, AtomTrust; docs/refinement.md): the
// curvature of the least-squares fit at the refined model, and a bootstrap over the views.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/rng.hpp"
#include "refine/refine_detail.hpp"

namespace aet::detail {
namespace {

// The refined fit, read back from the result.
struct Fit {
  const Array3& views;
  const ModelRefineResult& res;
  const std::vector<double>& w;  // model_weight
  std::int64_t nx, ny, nv;
  double a;
};

void footprint(const Fit& f, std::int64_t k, const Vec3& p, Profile& px, Profile& py) {
  const Vec3 q = f.res.geometry[k].R * p;
  make_profile(q.x() + f.res.geometry[k].shift.x(), f.res.sigma, f.nx, f.a, px);
  make_profile(q.y() + f.res.geometry[k].shift.y(), f.res.sigma, f.ny, f.a, py);
}

// The residual views b - (l S + c) of the refined fit (S with its probe tail).
std::vector<float> final_residual(const Fit& f) {
  const std::size_t natoms = f.res.model.size();
  std::vector<float> residual;
  residual.assign(static_cast<std::size_t>(f.nv * f.nx * f.ny), 0.0f);
  parallel_for(f.nv, [&](std::int64_t kb, std::int64_t ke) {
    std::vector<double> S;
    Profile px, py;
    for (std::int64_t k = kb; k < ke; ++k) {
      S.assign(static_cast<std::size_t>(f.nx * f.ny), 0.0);
      for (std::size_t i = 0; i < natoms; ++i) {
        if (f.w[i] == 0) continue;
        footprint(f, k, f.res.model.positions[i], px, py);
        for (std::int64_t y = 0; y < py.count; ++y) {
          double* row = S.data() + (py.lo + y) * f.nx + px.lo;
          const double wy = f.w[i] * py.m[y];
          for (std::int64_t x = 0; x < px.count; ++x) row[x] += wy * px.m[x];
        }
      }
      add_tail(f.res.model.positions, f.w, f.res.geometry[k].R, f.res.geometry[k].shift, f.nx, f.ny,
               f.a, f.res.tail_amplitude, f.res.tail_width, S.data());
      const float* b = f.views.slice(k);
      for (std::int64_t i = 0; i < f.nx * f.ny; ++i)
        residual[static_cast<std::size_t>(k * f.nx * f.ny + i)] =
            static_cast<float>(b[i] - (f.res.scale[k] * S[i] + f.res.offset[k]));
    }
  });
  return residual;
}

// Per atom: the 4 x 4 Gauss-Newton matrix of position and intensity over its footprint in every
// view, divided by the noise variance (plus the position prior's 1 / A^2, the estimate being its
// MAP), inverted. The noise variance is the mean square residual on the atom's own footprint:
// shot noise grows with the signal, so an atom's pixels are noisier than the series' average
// (mostly vacuum), and the model's misfit there (the probe tail) acts as noise too. Measured on
// the demo particle (dose 5e4, docs/refinement.md): the variance over all pixels put 65 % of the
// true errors within 2 sigma, the footprint's 89 %. Neighbours, the width and the views are held
// fixed: their correlations are what the bootstrap adds.
void curvature(const Fit& f, const std::vector<float>& residual, double position_prior,
               AtomTrust& t) {
  const std::size_t natoms = f.res.model.size();
  t.sigma_curvature.assign(natoms, Vec3::Zero());
  t.weight_snr.assign(natoms, 0.0);
  t.noise_variance.assign(natoms, 0.0);
  const double inv_prior2 = position_prior > 0 ? 1.0 / (position_prior * position_prior) : 0.0;
  parallel_for(static_cast<std::int64_t>(natoms), [&](std::int64_t ib, std::int64_t ie) {
    Profile px, py, tx, ty;
    const bool tail = f.res.tail_amplitude > 0 && f.res.tail_width > 0;
    for (std::int64_t i = ib; i < ie; ++i) {
      const Vec3& p = f.res.model.positions[i];
      Eigen::Matrix4d A = Eigen::Matrix4d::Zero();
      double rr = 0, npix = 0;
      Eigen::Vector4d rhs = Eigen::Vector4d::Zero();  // not needed here
      for (std::int64_t k = 0; k < f.nv; ++k) {
        const Mat3& R = f.res.geometry[k].R;
        footprint(f, k, p, px, py);
        const double l = f.res.scale[k], lw = l * f.w[i];
        const Vec3 ra = lw * R.row(0).transpose(), rb = lw * R.row(1).transpose();
        // The noise variance is the residual's on the core's footprint; the curvature counts the
        // tail's share of the atom's image too.
        Eigen::Matrix4d Ak = Eigen::Matrix4d::Zero();
        npix += static_cast<double>(add_atom_normal(
            px, py, ra, rb, l, residual.data() + k * f.nx * f.ny, f.nx, Ak, rhs, rr));
        if (tail) {
          const Vec3 q = R * p;
          make_profile(q.x() + f.res.geometry[k].shift.x(), f.res.tail_width, f.nx, f.a, tx);
          make_profile(q.y() + f.res.geometry[k].shift.y(), f.res.tail_width, f.ny, f.a, ty);
          Ak = atom_curvature_with_tail(px, py, tx, ty, f.res.tail_amplitude, ra, rb, l);
        }
        A += Ak;
      }
      // An exact fit (noise-free views) has zero variance: floored so that sigma is ~0, not NaN.
      t.noise_variance[i] = std::max(npix > 0 ? rr / npix : 0.0, 1e-100);
      A /= t.noise_variance[i];
      A.topLeftCorner<3, 3>().diagonal().array() += inv_prior2;
      // A zero-intensity atom has no position curvature: the views place it nowhere in their
      // field, reported as half its width (the XYZ holds finite numbers), its SNR zero.
      Eigen::FullPivLU<Eigen::Matrix4d> lu(A);
      if (!(f.w[i] > 0) || !lu.isInvertible()) {
        t.sigma_curvature[i] =
            Vec3::Constant(0.5 * f.a * static_cast<double>(std::max(f.nx, f.ny)));
        continue;
      }
      const Eigen::Matrix4d C = lu.inverse();
      for (int d = 0; d < 3; ++d) t.sigma_curvature[i][d] = std::sqrt(std::max(0.0, C(d, d)));
      t.weight_snr[i] = C(3, 3) > 0 ? f.w[i] / std::sqrt(C(3, 3)) : 0.0;
    }
  });
}

// Per atom and axis: the standard deviation of the position over `n` short refinements from the
// refined model, each against nv views drawn with replacement from the series (a view drawn twice
// counts twice). The geometry, width and starting intensities are the refined ones; no position
// prior (its centre would be the refined position itself, which would shrink the spread).
std::vector<Vec3> bootstrap(const Array3& views, const ModelRefineOptions& opt,
                            const ModelRefineResult& res) {
  const std::int64_t nv = views.nz(), per_view = views.nx() * views.ny();
  const std::size_t natoms = res.model.size();
  ModelRefineOptions bo;
  bo.iterations = opt.bootstrap_iterations;
  bo.refine_atoms = true;
  bo.refine_shifts = bo.refine_angles = false;
  bo.sigma = res.sigma;
  bo.tail_amplitude = res.tail_amplitude;  // held: the replicates measure the atoms
  bo.tail_width = res.tail_width;
  bo.max_atom_step = opt.max_atom_step;
  bo.tolerance = 0;  // a fixed number of iterations, the same in every replicate
  AtomModel start;
  start.species = res.model.species;
  start.positions = res.model.positions;
  start.property("intensity") = *res.model.find_property("model_weight");
  std::vector<Vec3> sum(natoms, Vec3::Zero()), sum2(natoms, Vec3::Zero());
  for (int b = 0; b < opt.bootstrap; ++b) {
    Rng rng = Rng::stream(opt.seed, static_cast<std::uint64_t>(b));
    Array3 drawn(views.nx(), views.ny(), nv);
    drawn.voxel_size = views.voxel_size;
    TiltGeometry geometry(static_cast<std::size_t>(nv));
    for (std::int64_t k = 0; k < nv; ++k) {
      const std::int64_t from =
          static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(nv)));
      std::copy(views.slice(from), views.slice(from) + per_view, drawn.slice(k));
      geometry[k] = res.geometry[from];
    }
    const ModelRefineResult r = refine_atoms_and_views(drawn, geometry, start, bo);
    for (std::size_t i = 0; i < natoms; ++i) {
      const Vec3 d = r.model.positions[i] - res.model.positions[i];
      sum[i] += d;
      sum2[i] += d.cwiseProduct(d);
    }
  }
  std::vector<Vec3> sd(natoms, Vec3::Zero());
  const double n = opt.bootstrap;
  if (n < 2) return sd;
  for (std::size_t i = 0; i < natoms; ++i) {
    const Vec3 var = (sum2[i] - sum[i].cwiseProduct(sum[i]) / n) / (n - 1);
    sd[i] = var.cwiseMax(0.0).cwiseSqrt();
  }
  return sd;
}

}  // namespace

void add_trust(const Array3& views, const ModelRefineOptions& opt, ModelRefineResult& res) {
  AtomTrust& t = res.trust;
  const std::vector<double>& w = *res.model.find_property("model_weight");
  const Fit fit{views, res, w, views.nx(), views.ny(), views.nz(), views.voxel_size.x};
  curvature(fit, final_residual(fit), opt.position_prior, t);
  const std::size_t natoms = res.model.size();
  t.bootstrap = opt.bootstrap >= 2 ? opt.bootstrap : 0;
  if (t.bootstrap > 0) t.sigma_bootstrap = bootstrap(views, opt, res);
  t.sigma = t.sigma_curvature;
  // The larger of the two per axis: both measure the shot noise, so a quadrature sum counts it
  // twice (98.0-99.0 % of the true errors within 2 sigma in the calibration, against 93.3-95.7 %
  // for the larger; docs/refinement.md). The bootstrap adds the correlations the curvature holds
  // fixed (neighbours, width), the curvature what a few replicates estimate coarsely.
  if (t.bootstrap > 0)
    for (std::size_t i = 0; i < natoms; ++i)
      t.sigma[i] = t.sigma_curvature[i].cwiseMax(t.sigma_bootstrap[i]);
  t.weak.assign(natoms, false);
  t.weak_count = 0;
  for (std::size_t i = 0; i < natoms; ++i)
    if (!(t.weight_snr[i] >= AtomTrust::kWeakSnr)) t.weak[i] = true, ++t.weak_count;
  for (int d = 0; d < 3; ++d) {
    std::vector<double> v;
    for (const Vec3& s : t.sigma) v.push_back(s[d]);
    t.median_sigma[d] = v.empty() ? 0.0 : median_of(std::move(v));
  }
  // The model's columns: what aet refine and aet pipeline write to their extended XYZ.
  auto column = [&](const std::string& name, const std::vector<Vec3>& s, int d) {
    std::vector<double>& c = res.model.property(name);
    for (std::size_t i = 0; i < natoms; ++i) c[i] = s[i][d];
  };
  const char* axes[3] = {"x", "y", "z"};
  for (int d = 0; d < 3; ++d) column(std::string("sigma_") + axes[d], t.sigma, d);
  res.model.property("weight_snr") = t.weight_snr;
  std::vector<double>& weak = res.model.property("weak");
  for (std::size_t i = 0; i < natoms; ++i) weak[i] = t.weak[i] ? 1.0 : 0.0;
  if (t.bootstrap > 0) {
    for (int d = 0; d < 3; ++d) column(std::string("sigma_curv_") + axes[d], t.sigma_curvature, d);
    for (int d = 0; d < 3; ++d) column(std::string("sigma_boot_") + axes[d], t.sigma_bootstrap, d);
  }
}

}  // namespace aet::detail

namespace aet {

Json trust_json(const AtomModel& model, int bootstrap) {
  const auto* sx = model.find_property("sigma_x");
  const auto* sy = model.find_property("sigma_y");
  const auto* sz = model.find_property("sigma_z");
  const auto* weak = model.find_property("weak");
  if (!sx || !sy || !sz || !weak || model.size() == 0) return nullptr;
  std::size_t n_weak = 0;
  for (double x : *weak) n_weak += x > 0.5;
  return Json{{"median_sigma_angstrom", {median_of(*sx), median_of(*sy), median_of(*sz)}},
              {"weak_atoms", n_weak},
              {"weak_fraction", static_cast<double>(n_weak) / static_cast<double>(model.size())},
              {"weak_snr_threshold", AtomTrust::kWeakSnr},
              {"bootstrap_replicates", bootstrap >= 2 ? bootstrap : 0},
              {"combination", bootstrap >= 2 ? "larger of curvature and bootstrap" : "curvature"}};
}

std::string trust_line(const AtomModel& model, int bootstrap) {
  const Json t = trust_json(model, bootstrap);
  if (t.is_null()) return "";
  const auto& ms = t["median_sigma_angstrom"];
  std::string line = "trust per atom: median sigma " + fmt("%.2f", 100 * ms[0].get<double>()) +
                     " " + fmt("%.2f", 100 * ms[1].get<double>()) + " " +
                     fmt("%.2f", 100 * ms[2].get<double>()) + " pm (x y z), " +
                     std::to_string(t["weak_atoms"].get<std::size_t>()) + " weak atoms";
  const int replicates = t["bootstrap_replicates"].get<int>();
  if (replicates > 0) line += ", " + std::to_string(replicates) + " bootstrap replicates";
  return line;
}

std::string trust_warning(const AtomModel& model) {
  const auto* weak = model.find_property("weak");
  if (!weak || model.size() == 0) return "";
  std::size_t n_weak = 0;
  for (double x : *weak) n_weak += x > 0.5;
  const double frac = static_cast<double>(n_weak) / static_cast<double>(model.size());
  if (!(frac > AtomTrust::kWeakWarnFraction)) return "";
  return std::to_string(n_weak) + " of " + std::to_string(model.size()) + " refined atoms (" +
         fmt("%.1f", 100 * frac) + " %) are weak: their intensity is within " +
         fmt("%g", AtomTrust::kWeakSnr) +
         " standard deviations of zero, so the views support their presence weakly (the 'weak' "
         "column of the XYZ)";
}

}  // namespace aet
