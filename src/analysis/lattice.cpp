// Fitting one lattice to an atom model (docs/analysis.md): a seed orientation from the bonds of
// one well-coordinated atom (a pair of bonds matched to a pair of lattice vectors), refined by
// orthogonal Procrustes on the bonds of every fully coordinated atom, then the origin from every
// atom's nearest site.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "aet/analysis/lattice.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

const std::vector<Vec3>& basis_of(LatticeType t) {
  static const std::vector<Vec3> fcc = {{0, 0, 0}, {0, 0.5, 0.5}, {0.5, 0, 0.5}, {0.5, 0.5, 0}};
  static const std::vector<Vec3> bcc = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  static const std::vector<Vec3> hcp = {{0, 0, 0}, {1.0 / 3, 2.0 / 3, 0.5}};
  return t == LatticeType::bcc ? bcc : t == LatticeType::hcp ? hcp : fcc;
}

// Cell vectors for a = c = 1 (hcp: hexagonal a1, a2 and c along z).
Mat3 unit_cell(LatticeType t) {
  Mat3 m = Mat3::Identity();
  if (t == LatticeType::hcp) m.col(1) = Vec3(-0.5, std::sqrt(3.0) / 2, 0);
  return m;
}

double ideal_c_over_a(LatticeType t) {
  return t == LatticeType::hcp ? std::sqrt(8.0 / 3) : 1.0;
}

// The bond vectors of the lattice with constants (a, c) in the crystal frame: every difference
// between sites shorter than 1.2 nearest-neighbour distances (fcc, hcp: the 12 nearest; bcc: the
// 8 nearest and the 6 next, 1.15 times farther). For hcp the union over both sublattices.
std::vector<Vec3> bond_templates(LatticeType t, double a, double c, double d_nn) {
  const auto& basis = basis_of(t);
  const Mat3 cell = unit_cell(t) * Vec3(a, a, c).asDiagonal();
  std::vector<Vec3> out;
  const double rmax = 1.2 * d_nn;
  for (const auto& bi : basis)
    for (const auto& bj : basis)
      for (int x = -2; x <= 2; ++x)
        for (int y = -2; y <= 2; ++y)
          for (int z = -2; z <= 2; ++z) {
            const Vec3 v = cell * (Vec3(x, y, z) + bj - bi);
            if (v.norm() < 1e-9 || v.norm() > rmax) continue;
            bool dup = false;
            for (const auto& w : out) dup = dup || (w - v).norm() < 1e-9;
            if (!dup) out.push_back(v);
          }
  return out;
}

struct Neighbours {
  std::vector<std::vector<std::uint32_t>> of;
};

Neighbours bonds_within(const std::vector<Vec3>& p, double cutoff) {
  const NeighborSearch grid(p, cutoff, NeighborSearch::default_max_cells(p.size()));
  Neighbours nb;
  nb.of.resize(p.size());
  parallel_for(static_cast<std::int64_t>(p.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      grid.for_each(p[i], cutoff, [&](std::size_t j, double) {
        if (static_cast<std::int64_t>(j) != i) nb.of[i].push_back(static_cast<std::uint32_t>(j));
      });
  });
  return nb;
}

// Index of the template nearest to v, and the distance.
std::pair<int, double> nearest_template(const std::vector<Vec3>& tmpl, const Vec3& v) {
  int best = -1;
  double bd = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < tmpl.size(); ++k) {
    const double d = (tmpl[k] - v).squaredNorm();
    if (d < bd) {
      bd = d;
      best = static_cast<int>(k);
    }
  }
  return {best, std::sqrt(bd)};
}

struct TypeFit {
  LatticeFit fit;
  double score = -1;
};

// Fits lattice type t: the orientation from a seed atom's bonds (or `start`), refined with the
// constants on every fully coordinated atom's bonds, then the origin.
TypeFit fit_type(const std::vector<Vec3>& p, const Neighbours& nb, double d_nn, LatticeType t,
                 const LatticeFitOptions& opt, const Mat3* start = nullptr) {
  const double unit_nn = (t == LatticeType::bcc)   ? std::sqrt(3.0) / 2
                         : (t == LatticeType::hcp) ? 1.0
                                                   : std::sqrt(0.5);
  // hcp and L1_0 have c fitted apart from a.
  const bool tetragonal = t == LatticeType::hcp || t == LatticeType::l10;
  double a = opt.a > 0 ? opt.a : d_nn / unit_nn;
  double c = tetragonal ? (opt.c > 0 ? opt.c : a * ideal_c_over_a(t)) : a;
  // Lattice vectors for a = c = 1 (hcp: found at the ideal c/a, then z divided by it), so that
  // (x a, y a, z c) are those for any constants.
  std::vector<Vec3> unit_tmpl = bond_templates(t, 1.0, ideal_c_over_a(t), unit_nn);
  for (auto& v : unit_tmpl) v.z() /= ideal_c_over_a(t);
  const std::size_t full = (t == LatticeType::bcc) ? 14 : 12;
  const double tol = 0.2 * d_nn;  // a bond matches a lattice vector within this
  auto scaled = [&](double aa, double cc) {
    std::vector<Vec3> s;
    for (const auto& v : unit_tmpl) s.push_back(Vec3(v.x() * aa, v.y() * aa, v.z() * cc));
    return s;
  };
  const std::size_t n = p.size();

  // Seeds: the best-coordinated atoms nearest the centroid.
  Vec3 centroid = Vec3::Zero();
  for (const auto& q : p) centroid += q;
  centroid /= static_cast<double>(n);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    const auto cx = std::min(nb.of[x].size(), full), cy = std::min(nb.of[y].size(), full);
    if (cx != cy) return cx > cy;
    const double dx = (p[x] - centroid).squaredNorm(), dy = (p[y] - centroid).squaredNorm();
    return dx != dy ? dx < dy : x < y;
  });
  // Bonds used to score and refine: those of fully coordinated atoms (their bond vectors sum to
  // an isotropic tensor, so a symmetric strain does not rotate the fit); all when there are none.
  std::vector<std::size_t> shell_atoms;
  for (std::size_t i = 0; i < n; ++i)
    if (nb.of[i].size() == full) shell_atoms.push_back(i);
  if (shell_atoms.size() < 1) {
    shell_atoms.resize(n);
    std::iota(shell_atoms.begin(), shell_atoms.end(), 0);
  }
  std::vector<Vec3> tmpl = scaled(a, c);
  auto count_matched = [&](const Mat3& R, std::size_t limit) {
    std::size_t m = 0;
    const std::size_t step = std::max<std::size_t>(1, shell_atoms.size() / limit);
    for (std::size_t k = 0; k < shell_atoms.size(); k += step) {
      const std::size_t i = shell_atoms[k];
      for (auto j : nb.of[i])
        m += nearest_template(tmpl, R.transpose() * (p[j] - p[i])).second < tol;
    }
    return m;
  };

  Mat3 R = start ? *start : Mat3::Identity();
  std::size_t best_global = 0;
  const std::size_t n_seeds = start ? 0 : std::min<std::size_t>(8, n);
  for (std::size_t s = 0; s < n_seeds; ++s) {
    const std::size_t i = order[s];
    if (nb.of[i].size() < 2) continue;
    const Vec3 b1 = p[nb.of[i][0]] - p[i];
    Vec3 b2 = Vec3::Zero();
    double best_cos = 2;
    for (std::size_t k = 1; k < nb.of[i].size(); ++k) {
      const Vec3 v = p[nb.of[i][k]] - p[i];
      const double cs = std::abs(b1.normalized().dot(v.normalized()));
      if (cs < best_cos) {
        best_cos = cs;
        b2 = v;
      }
    }
    if (best_cos > 0.95) continue;
    const double ang = std::acos(std::clamp(b1.normalized().dot(b2.normalized()), -1.0, 1.0));
    Mat3 best_local = Mat3::Identity();
    std::size_t best_m = 0;
    for (const auto& t1 : tmpl) {
      if (std::abs(t1.norm() - b1.norm()) > tol) continue;
      for (const auto& t2 : tmpl) {
        if (std::abs(t2.norm() - b2.norm()) > tol) continue;
        const double ta = std::acos(std::clamp(t1.normalized().dot(t2.normalized()), -1.0, 1.0));
        if (std::abs(ta - ang) > 0.15) continue;
        const Mat3 Rc = frame_rotation(b1, b2, t1, t2);
        std::size_t m = 0;
        for (auto j : nb.of[i])
          m += nearest_template(tmpl, Rc.transpose() * (p[j] - p[i])).second < tol;
        if (m > best_m) {
          best_m = m;
          best_local = Rc;
        }
      }
    }
    if (best_m == 0) continue;
    const std::size_t g = count_matched(best_local, 400);
    if (g > best_global) {
      best_global = g;
      R = best_local;
    }
  }

  // Refinement: match every bond to its lattice vector, then rotation (Procrustes) and constants.
  std::size_t used = 0;
  for (int it = 0; it < 8; ++it) {
    Mat3 M = Mat3::Zero();
    std::vector<std::pair<Vec3, Vec3>> pairs;  // bond, unit template
    for (auto i : shell_atoms)
      for (auto j : nb.of[i]) {
        const Vec3 b = p[j] - p[i];
        const auto [k, d] = nearest_template(tmpl, R.transpose() * b);
        if (k < 0 || d > tol) continue;
        pairs.emplace_back(b, unit_tmpl[k]);
        M += b * tmpl[k].transpose();
      }
    used = pairs.size();
    if (pairs.size() < 3) break;
    R = nearest_rotation(M);
    double sxy = 0, txy = 0, sz = 0, tz = 0;
    for (const auto& [b, u] : pairs) {
      const Vec3 bc = R.transpose() * b;
      if (tetragonal) {
        sxy += bc.x() * u.x() + bc.y() * u.y();
        txy += u.x() * u.x() + u.y() * u.y();
        sz += bc.z() * u.z();
        tz += u.z() * u.z();
      } else {
        sxy += bc.dot(u);
        txy += u.squaredNorm();
      }
    }
    if (tetragonal) {
      if (!(opt.a > 0) && txy > 0) a = sxy / txy;
      if (!(opt.c > 0) && tz > 0) c = sz / tz;
    } else if (!(opt.a > 0) && txy > 0) {
      a = c = sxy / txy;
    }
    tmpl = scaled(a, c);
  }

  TypeFit out;
  CrystalLattice L;
  L.type = t;
  L.a = a;
  L.c = c;
  L.orientation = R;
  // The origin: on the seed atom, as whichever sublattice fits best, then the mean offset of the
  // atoms from their sites (twice, as sites can change).
  const std::size_t seed = order[0];
  double best_rms = std::numeric_limits<double>::infinity();
  Vec3 best_origin = p[seed];
  for (const auto& bk : basis_of(t)) {
    CrystalLattice trial = L;
    trial.origin = p[seed] - R * (unit_cell(t) * Vec3(a, a, c).asDiagonal()) * bk;
    for (int it = 0; it < 3; ++it) {
      Vec3 shift = Vec3::Zero();
      for (const auto& q : p) shift += q - trial.nearest_site(q);
      trial.origin += shift / static_cast<double>(n);
    }
    double ss = 0;
    for (const auto& q : p) ss += (q - trial.nearest_site(q)).squaredNorm();
    if (ss < best_rms) {
      best_rms = ss;
      best_origin = trial.origin;
    }
  }
  L.origin = best_origin;
  LatticeFit& f = out.fit;
  f.lattice = L;
  f.sites.resize(n);
  f.on_lattice.resize(n);
  double ss = 0;
  std::size_t on = 0;
  const double lim = 0.25 * L.nearest_neighbour_distance();
  for (std::size_t i = 0; i < n; ++i) {
    f.sites[i] = L.nearest_site(p[i]);
    const double d = (p[i] - f.sites[i]).norm();
    ss += d * d;
    f.on_lattice[i] = d < lim;
    on += f.on_lattice[i];
  }
  f.rms_residual = std::sqrt(ss / static_cast<double>(n));
  f.on_lattice_fraction = static_cast<double>(on) / static_cast<double>(n);
  f.bonds_used = used;
  out.score = f.on_lattice_fraction - 1e-3 * f.rms_residual / d_nn;
  return out;
}

// L1_0: an fcc fit, the cubic axis along which the species' planes alternate best taken as c
// (a cyclic relabelling of the axes keeps the orientation proper), then a and c fitted apart and
// the origin moved by half a cell where species 0 came out on the other planes.
LatticeFit fit_l10(const std::vector<Vec3>& p, const Neighbours& nb, double d_nn,
                   const LatticeFitOptions& opt) {
  const std::size_t n = p.size();
  if (!opt.species.empty() && opt.species.size() != n)
    fail_input("an L1_0 lattice needs the species of every atom (" + std::to_string(n) +
               " atoms, " + std::to_string(opt.species.size()) + " species)");
  std::size_t count[2] = {0, 0};
  for (int s : opt.species)
    if (s == 0 || s == 1) ++count[s];
  if (count[0] == 0 || count[1] == 0)
    fail_input(
        "an L1_0 lattice needs a model of exactly two species (an ordered alloy such as FePt)");
  LatticeFitOptions cubic_opt = opt;
  cubic_opt.c = 0;
  const TypeFit cubic = fit_type(p, nb, d_nn, LatticeType::fcc, cubic_opt);
  CrystalLattice trial = cubic.fit.lattice;
  trial.type = LatticeType::l10;
  Mat3 best_R = trial.orientation;
  double best_s = -1;
  for (int k = 0; k < 3; ++k) {
    // New z = old axis k; (x, y, z) stays a cyclic, right-handed order.
    Mat3 P = Mat3::Zero();
    P(k, 2) = P((k + 1) % 3, 0) = P((k + 2) % 3, 1) = 1;
    trial.orientation = cubic.fit.lattice.orientation * P;
    const double s =
        std::abs(l10_order_parameter(trial, cubic.fit.sites, opt.species, cubic.fit.on_lattice));
    if (s > best_s) {
      best_s = s;
      best_R = trial.orientation;
    }
  }
  TypeFit tet = fit_type(p, nb, d_nn, LatticeType::l10, opt, &best_R);
  LatticeFit& f = tet.fit;
  double s = l10_order_parameter(f.lattice, f.sites, opt.species, f.on_lattice);
  if (s < 0) {
    // The same sites, the other planes through the origin.
    f.lattice.origin += f.lattice.orientation * (f.lattice.cell() * Vec3(0.5, 0, 0.5));
    s = -s;
  }
  f.order_parameter = s;
  return f;
}

}  // namespace

const char* lattice_name(LatticeType t) {
  switch (t) {
    case LatticeType::bcc:
      return "bcc";
    case LatticeType::hcp:
      return "hcp";
    case LatticeType::l10:
      return "l10";
    case LatticeType::fcc:
      break;
  }
  return "fcc";
}

std::optional<LatticeType> parse_lattice(const std::string& name) {
  if (name == "fcc") return LatticeType::fcc;
  if (name == "bcc") return LatticeType::bcc;
  if (name == "hcp") return LatticeType::hcp;
  if (name == "l10" || name == "L10" || name == "L1_0" || name == "l1_0") return LatticeType::l10;
  if (name == "auto") return std::nullopt;
  fail_input("unknown lattice '" + name + "' (expected fcc, bcc, hcp, l10 or auto)");
}

Mat3 CrystalLattice::cell() const {
  return unit_cell(type) * Vec3(a, a, c).asDiagonal();
}

const std::vector<Vec3>& CrystalLattice::basis() const {
  return basis_of(type);
}

double CrystalLattice::nearest_neighbour_distance() const {
  if (type == LatticeType::fcc) return a * std::sqrt(0.5);
  if (type == LatticeType::bcc) return a * std::sqrt(3.0) / 2;
  if (type == LatticeType::l10) return std::min(a * std::sqrt(0.5), 0.5 * std::hypot(a, c));
  return std::min(a, std::sqrt(a * a / 3 + c * c / 4));
}

int CrystalLattice::layer(const Vec3& site) const {
  if (type != LatticeType::l10) return 0;
  const double z = (orientation.transpose() * (site - origin)).z() / c;
  return static_cast<int>(std::llround(2 * z) & 1);
}

double l10_order_parameter(const CrystalLattice& L, const std::vector<Vec3>& sites,
                           const std::vector<int>& species, const std::vector<char>& use) {
  double held[2] = {0, 0}, right[2] = {0, 0};
  for (std::size_t i = 0; i < sites.size(); ++i) {
    if ((!use.empty() && !use[i]) || (species[i] != 0 && species[i] != 1)) continue;
    const int l = L.layer(sites[i]);
    held[l] += 1;
    right[l] += species[i] == l;
  }
  if (held[0] == 0 || held[1] == 0) return std::numeric_limits<double>::quiet_NaN();
  return right[0] / held[0] + right[1] / held[1] - 1;
}

Vec3 CrystalLattice::nearest_site(const Vec3& p) const {
  const Mat3 C = cell();
  const Vec3 f = C.inverse() * (orientation.transpose() * (p - origin));
  Vec3 best = Vec3::Zero();
  double bd = std::numeric_limits<double>::infinity();
  for (const auto& b : basis()) {
    // Rounding in fractional coordinates can miss the nearest site of a skewed (hexagonal) cell:
    // look at the neighbouring cells too.
    const Vec3 r = (f - b).array().round().matrix();
    const int span = type == LatticeType::hcp ? 1 : 0;
    for (int x = -span; x <= span; ++x)
      for (int y = -span; y <= span; ++y) {
        const Vec3 site = origin + orientation * (C * (r + Vec3(x, y, 0) + b));
        const double d = (site - p).squaredNorm();
        if (d < bd) {
          bd = d;
          best = site;
        }
      }
  }
  return best;
}

LatticeFit fit_lattice(const std::vector<Vec3>& positions, const LatticeFitOptions& opt) {
  if (positions.size() < 4)
    fail_input("a lattice fit needs at least 4 atoms, got " + std::to_string(positions.size()));
  for (const auto& q : positions)
    if (!q.allFinite()) fail_input("an atom position is not finite");
  if (!(opt.a >= 0) || !std::isfinite(opt.a) || !(opt.c >= 0) || !std::isfinite(opt.c))
    fail_input("lattice constants must be >= 0 (0 = fitted)");
  const double d_nn = median_nearest_distance(positions);
  if (!(d_nn > 0)) fail_input("atoms coincide: the median nearest-neighbour distance is 0");
  const Neighbours nb = bonds_within(positions, 1.2 * d_nn);
  std::vector<LatticeType> types;
  if (opt.type)
    types = {*opt.type};
  else
    types = {LatticeType::fcc, LatticeType::bcc, LatticeType::hcp};
  if (opt.type == LatticeType::l10) {
    LatticeFit f = fit_l10(positions, nb, d_nn, opt);
    f.tried = {{"l10", f.on_lattice_fraction}};
    return f;
  }
  TypeFit best;
  std::vector<std::pair<std::string, double>> tried;
  for (auto t : types) {
    TypeFit f = fit_type(positions, nb, d_nn, t, opt);
    tried.emplace_back(lattice_name(t), f.fit.on_lattice_fraction);
    if (f.score > best.score) best = std::move(f);
  }
  best.fit.tried = tried;
  return best.fit;
}

std::vector<Mat3> displacement_gradient(const std::vector<Vec3>& ref, const std::vector<Vec3>& u,
                                        const std::vector<char>& use, double sigma,
                                        const std::vector<Vec3>& at) {
  if (!(sigma > 0) || !std::isfinite(sigma)) fail_input("the strain sigma must be > 0");
  const double r = 3 * sigma;
  const NeighborSearch grid(ref, r, NeighborSearch::default_max_cells(ref.size()));
  std::vector<Mat3> out(at.size(), Mat3::Constant(std::numeric_limits<double>::quiet_NaN()));
  const double inv2s2 = 1.0 / (2 * sigma * sigma);
  parallel_for(static_cast<std::int64_t>(at.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      Eigen::Matrix4d A = Eigen::Matrix4d::Zero();
      Eigen::Matrix<double, 4, 3> B = Eigen::Matrix<double, 4, 3>::Zero();
      std::size_t count = 0;
      grid.for_each(at[i], r, [&](std::size_t j, double d2) {
        if (!use.empty() && !use[j]) return;
        const double w = std::exp(-d2 * inv2s2);
        Eigen::Vector4d x;
        x << 1, ref[j] - at[i];
        A.noalias() += w * x * x.transpose();
        B.noalias() += w * x * u[j].transpose();
        ++count;
      });
      if (count < 4) continue;
      // Scale the gradient rows so the conditioning test does not depend on the units.
      const Eigen::SelfAdjointEigenSolver<Eigen::Matrix4d> es(A);
      if (!(es.eigenvalues()(0) > 1e-9 * es.eigenvalues()(3))) continue;
      const Eigen::Matrix<double, 4, 3> sol = A.ldlt().solve(B);
      out[i] = sol.bottomRows<3>().transpose();  // G(a, b) = du_a / dX_b
    }
  });
  return out;
}

std::vector<Mat3> local_strain(const std::vector<Vec3>& p, const std::vector<Vec3>& sites,
                               const std::vector<char>& on_lattice, double cutoff) {
  const NeighborSearch grid(p, cutoff, NeighborSearch::default_max_cells(p.size()));
  std::vector<Mat3> out(p.size(), Mat3::Constant(std::numeric_limits<double>::quiet_NaN()));
  parallel_for(static_cast<std::int64_t>(p.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      if (!on_lattice[i]) continue;
      Mat3 DD = Mat3::Zero(), dD = Mat3::Zero();
      grid.for_each(p[i], cutoff, [&](std::size_t j, double) {
        if (static_cast<std::int64_t>(j) == i || !on_lattice[j]) return;
        const Vec3 D = sites[j] - sites[i], d = p[j] - p[i];
        DD += D * D.transpose();
        dD += d * D.transpose();
      });
      const Eigen::SelfAdjointEigenSolver<Mat3> es(DD);
      if (!(es.eigenvalues()(0) > 1e-6 * es.eigenvalues()(2))) continue;
      const Mat3 F = dD * DD.inverse();
      out[i] = 0.5 * (F + F.transpose()) - Mat3::Identity();
    }
  });
  return out;
}

}  // namespace aet
