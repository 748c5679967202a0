// Local structure and grains (docs/analysis.md): adaptive common neighbour analysis, the local
// orientation of crystalline atoms by template matching, and grains as connected sets of atoms
// whose orientations agree.
#include "aet/analysis/local_structure.hpp"

#include <Eigen/Geometry>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "aet/core/disjoint_sets.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

constexpr double kDeg = M_PI / 180.0;
const double kCnaFactor = (1.0 + std::sqrt(2.0)) / 2.0;

// Neighbour template of a lattice site (CrystalLattice's axes, nearest-neighbour distance 1):
// the 12 nearest sites (fcc, hcp: ideal c/a) or the 14 nearest (bcc), nearest first; `first`
// of them form the first shell.
struct Template {
  std::vector<Vec3> v;
  int first = 12;
  double angle = 60 * kDeg;  // between the two first-shell bonds the orientation starts from
  std::vector<std::pair<int, int>> pairs;  // ordered first-shell pairs at that angle
};

const Template& neighbour_template(LatticeType t) {
  static const std::array<Template, 3> all = [] {
    std::array<Template, 3> out;
    for (LatticeType type : {LatticeType::fcc, LatticeType::bcc, LatticeType::hcp}) {
      CrystalLattice L;
      L.type = type;
      L.a = 1;
      L.c = type == LatticeType::hcp ? std::sqrt(8.0 / 3.0) : 1;
      const Mat3 cell = L.cell();
      std::vector<Vec3> sites;
      for (const Vec3& b : L.basis())
        for (int x = -2; x <= 2; ++x)
          for (int y = -2; y <= 2; ++y)
            for (int z = -2; z <= 2; ++z) {
              const Vec3 s = cell * (Vec3(x, y, z) + b);
              if (s.norm() > 1e-9) sites.push_back(s);
            }
      std::stable_sort(sites.begin(), sites.end(),
                       [](const Vec3& p, const Vec3& q) { return p.norm() < q.norm() - 1e-9; });
      Template& T = out[static_cast<int>(type)];
      const bool bcc = type == LatticeType::bcc;
      const double d = L.nearest_neighbour_distance();
      T.v.assign(sites.begin(), sites.begin() + (bcc ? 14 : 12));
      for (Vec3& s : T.v) s /= d;
      T.first = bcc ? 8 : 12;
      T.angle = bcc ? std::acos(1.0 / 3.0) : 60 * kDeg;
      for (int p = 0; p < T.first; ++p)
        for (int q = 0; q < T.first; ++q)
          if (p != q && std::abs(std::acos(std::clamp(T.v[p].dot(T.v[q]), -1.0, 1.0)) - T.angle) <
                            0.5 * kDeg)
            T.pairs.emplace_back(p, q);
    }
    return out;
  }();
  return all[static_cast<int>(t)];
}

// Sum over the bonds u of the squared distance to the nearest rotated template bond; `match`
// gets the template index of each.
double template_cost(const Template& T, const Mat3& R, const std::vector<Vec3>& u,
                     std::vector<int>* match = nullptr) {
  double cost = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    int bk = 0;
    for (std::size_t k = 0; k < T.v.size(); ++k) {
      const double d = (R * T.v[k] - u[i]).squaredNorm();
      if (d < best) best = d, bk = static_cast<int>(k);
    }
    cost += best;
    if (match) (*match)[i] = bk;
  }
  return cost;
}

// The orientation of lattice t that maps its neighbour template onto the bonds `v` (nearest
// first): every template pair at the template's angle is tried against the nearest bond and the
// first-shell bond closest to that angle from it, and the best is refined by least squares
// (Kabsch) on the matched bonds.
Mat3 fit_orientation(LatticeType t, const std::vector<Vec3>& v) {
  const Template& T = neighbour_template(t);
  double scale = 0;
  for (int i = 0; i < T.first; ++i) scale += v[i].norm();
  scale /= T.first;
  std::vector<Vec3> u(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) u[i] = v[i] / scale;
  int b = 1;
  double best_gap = std::numeric_limits<double>::infinity();
  for (int i = 1; i < T.first; ++i) {
    const double c = u[0].normalized().dot(u[i].normalized());
    const double gap = std::abs(std::acos(std::clamp(c, -1.0, 1.0)) - T.angle);
    if (gap < best_gap) best_gap = gap, b = i;
  }
  Mat3 best = Mat3::Identity();
  double best_cost = std::numeric_limits<double>::infinity();
  for (const auto& [p, q] : T.pairs) {
    const Mat3 R = frame_rotation(u[0], u[b], T.v[p], T.v[q]);
    const double c = template_cost(T, R, u);
    if (c < best_cost) best_cost = c, best = R;
  }
  std::vector<int> match(u.size());
  template_cost(T, best, u, &match);
  Mat3 M = Mat3::Zero();
  for (std::size_t i = 0; i < u.size(); ++i) M += u[i] * T.v[match[i]].transpose();
  return nearest_rotation(M);
}

// The common neighbour signature counts of an atom whose n nearest neighbours are `v`, bonded
// within rc: for each neighbour, (shared neighbours, bonds among them, bonds in the largest
// connected cluster of those bonds), packed as 100 a + 10 b + c.
std::vector<int> cna_signatures(const std::vector<Vec3>& v, std::size_t n, double rc) {
  const double rc2 = rc * rc;
  std::vector<int> out(n);
  std::vector<int> common;
  std::vector<std::pair<int, int>> bonds;
  for (std::size_t a = 0; a < n; ++a) {
    common.clear();
    for (std::size_t b = 0; b < n; ++b)
      if (b != a && (v[a] - v[b]).squaredNorm() < rc2) common.push_back(static_cast<int>(b));
    bonds.clear();
    for (std::size_t x = 0; x < common.size(); ++x)
      for (std::size_t y = x + 1; y < common.size(); ++y)
        if ((v[common[x]] - v[common[y]]).squaredNorm() < rc2)
          bonds.emplace_back(static_cast<int>(x), static_cast<int>(y));
    // Clusters of bonds joined through shared atoms.
    DisjointSets clusters(common.size());
    for (const auto& [x, y] : bonds) clusters.join(x, y);
    std::vector<int> per_root(common.size(), 0);
    int longest = 0;
    for (const auto& [x, y] : bonds) longest = std::max(longest, ++per_root[clusters.find(x)]);
    out[a] = 100 * static_cast<int>(common.size()) + 10 * static_cast<int>(bonds.size()) + longest;
  }
  return out;
}

// Proper rotations of the lattice's point group, in its crystal axes.
const std::vector<Mat3>& symmetry_rotations(LatticeType t) {
  static const std::vector<Mat3> cubic = [] {
    std::vector<Mat3> out;
    const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (const auto& p : perm)
      for (int s = 0; s < 8; ++s) {
        Mat3 m = Mat3::Zero();
        for (int r = 0; r < 3; ++r) m(r, p[r]) = (s >> r) & 1 ? -1 : 1;
        if (m.determinant() > 0) out.push_back(m);
      }
    return out;
  }();
  static const std::vector<Mat3> hexagonal = [] {
    std::vector<Mat3> out;
    for (int k = 0; k < 6; ++k) {
      const Mat3 rz = Eigen::AngleAxisd(k * 60 * kDeg, Vec3::UnitZ()).toRotationMatrix();
      out.push_back(rz);
      // Two-fold axes in the basal plane, every 30 degrees.
      const Vec3 axis(std::cos(k * 30 * kDeg), std::sin(k * 30 * kDeg), 0);
      out.push_back(Eigen::AngleAxisd(M_PI, axis).toRotationMatrix());
    }
    return out;
  }();
  return t == LatticeType::hcp ? hexagonal : cubic;
}

}  // namespace

const char* local_structure_name(LocalStructure s) {
  switch (s) {
    case LocalStructure::fcc:
      return "fcc";
    case LocalStructure::hcp:
      return "hcp";
    case LocalStructure::bcc:
      return "bcc";
    case LocalStructure::icosahedral:
      return "icosahedral";
    case LocalStructure::other:
      break;
  }
  return "other";
}

std::optional<LatticeType> lattice_of(LocalStructure s) {
  switch (s) {
    case LocalStructure::fcc:
      return LatticeType::fcc;
    case LocalStructure::hcp:
      return LatticeType::hcp;
    case LocalStructure::bcc:
      return LatticeType::bcc;
    default:
      return std::nullopt;
  }
}

LocalStructures local_structures(const std::vector<Vec3>& positions) {
  const std::size_t n = positions.size();
  LocalStructures ls;
  ls.type.assign(n, LocalStructure::other);
  ls.orientation.assign(n, Mat3::Constant(std::numeric_limits<double>::quiet_NaN()));
  ls.neighbours.assign(n, {});
  if (n < 13) return ls;
  // The 14th neighbour of bcc lies 1.155 nearest-neighbour distances away; 1.75 leaves room for
  // strain and noise.
  const double reach = 1.75 * median_nearest_distance(positions);
  const NeighborSearch grid(positions, reach, NeighborSearch::default_max_cells(n));
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
    std::vector<std::pair<double, std::uint32_t>> near;
    std::vector<Vec3> v;
    for (std::int64_t i = b; i < e; ++i) {
      near.clear();
      grid.for_each(positions[i], reach, [&](std::size_t j, double d2) {
        if (j != static_cast<std::size_t>(i)) near.emplace_back(d2, static_cast<std::uint32_t>(j));
      });
      if (near.size() < 12) continue;
      std::sort(near.begin(), near.end());
      const std::size_t m = std::min<std::size_t>(near.size(), 14);
      v.resize(m);
      for (std::size_t k = 0; k < m; ++k) v[k] = positions[near[k].second] - positions[i];
      auto keep = [&](LocalStructure s, std::size_t count) {
        ls.type[i] = s;
        for (std::size_t k = 0; k < count; ++k) ls.neighbours[i].push_back(near[k].second);
        if (const auto t = lattice_of(s))
          ls.orientation[i] = fit_orientation(*t, std::vector<Vec3>(v.begin(), v.begin() + count));
      };
      double mean12 = 0;
      for (std::size_t k = 0; k < 12; ++k) mean12 += std::sqrt(near[k].first);
      mean12 /= 12;
      const std::vector<int> s12 = cna_signatures(v, 12, kCnaFactor * mean12);
      const auto count = [](const std::vector<int>& s, int sig) {
        return std::count(s.begin(), s.end(), sig);
      };
      if (count(s12, 421) == 12) {
        keep(LocalStructure::fcc, 12);
      } else if (count(s12, 421) == 6 && count(s12, 422) == 6) {
        keep(LocalStructure::hcp, 12);
      } else if (count(s12, 555) == 12) {
        keep(LocalStructure::icosahedral, 12);
      } else if (m == 14) {
        double shells = 0;
        for (std::size_t k = 0; k < 14; ++k)
          shells += std::sqrt(near[k].first) * (k < 8 ? 2.0 / std::sqrt(3.0) : 1.0);
        const std::vector<int> s14 = cna_signatures(v, 14, kCnaFactor * shells / 14);
        if (count(s14, 666) == 8 && count(s14, 444) == 6) keep(LocalStructure::bcc, 14);
      }
    }
  });
  return ls;
}

namespace {

// The symmetry-equivalent of orientation b (b S over the point group) closest to a.
Mat3 closest_equivalent(LatticeType t, const Mat3& a, const Mat3& b, double* cos_angle = nullptr) {
  const Mat3 d = a.transpose() * b;
  double best_cos = -2;
  Mat3 best = b;
  for (const Mat3& s : symmetry_rotations(t)) {
    const double c = 0.5 * ((d * s).trace() - 1);
    if (c > best_cos) best_cos = c, best = b * s;
  }
  if (cos_angle) *cos_angle = best_cos;
  return best;
}

}  // namespace

double misorientation_deg(LatticeType t, const Mat3& a, const Mat3& b) {
  double c = 0;
  closest_equivalent(t, a, b, &c);
  return std::acos(std::clamp(c, -1.0, 1.0)) / kDeg;
}

Grains find_grains(const std::vector<Vec3>& positions, const LocalStructures& ls, double d_nn,
                   double max_deg, std::size_t min_atoms) {
  const std::size_t n = positions.size();
  DisjointSets joined(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto t = lattice_of(ls.type[i]);
    if (!t) continue;
    for (std::uint32_t j : ls.neighbours[i])
      if (ls.type[j] == ls.type[i] && joined.find(i) != joined.find(j) &&
          misorientation_deg(*t, ls.orientation[i], ls.orientation[j]) < max_deg)
        joined.join(i, j);
  }
  std::vector<std::vector<std::size_t>> sets(n);
  std::size_t fcc = 0, hcp = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!lattice_of(ls.type[i])) continue;
    sets[joined.find(i)].push_back(i);
    fcc += ls.type[i] == LocalStructure::fcc;
    hcp += ls.type[i] == LocalStructure::hcp;
  }
  Grains g;
  g.of_atom.assign(n, -1);
  for (auto& atoms : sets) {
    if (atoms.empty()) continue;
    const LatticeType type = *lattice_of(ls.type[atoms.front()]);
    // The set's orientation: the mean of its atoms' orientations, each taken as the symmetry
    // equivalent closest to that of the atom nearest the centroid, projected back onto the
    // rotations (one atom's orientation scatters by about half a degree under thermal jitter).
    Vec3 c = Vec3::Zero();
    for (std::size_t i : atoms) c += positions[i];
    c /= static_cast<double>(atoms.size());
    std::size_t centre = atoms.front();
    for (std::size_t i : atoms)
      if ((positions[i] - c).squaredNorm() < (positions[centre] - c).squaredNorm()) centre = i;
    Mat3 sum = Mat3::Zero();
    for (std::size_t i : atoms)
      sum += closest_equivalent(type, ls.orientation[centre], ls.orientation[i]);
    const Mat3 R = nearest_rotation(sum);
    if (type == LatticeType::hcp && fcc > hcp) {
      // Thickness along the hexagonal axis: one layer (a twin boundary) or two (an intrinsic
      // stacking fault) are 0 and 0.82 nearest-neighbour distances thick.
      const Vec3 axis = R.col(2);
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (std::size_t i : atoms) {
        const double h = axis.dot(positions[i]);
        lo = std::min(lo, h), hi = std::max(hi, h);
      }
      if (hi - lo < 1.2 * d_nn) {
        g.planar_defect_atoms += atoms.size();
        continue;
      }
    }
    if (atoms.size() < min_atoms) continue;
    Grain grain;
    grain.type = type;
    grain.atoms = std::move(atoms);
    grain.orientation = R;
    g.grains.push_back(std::move(grain));
  }
  std::stable_sort(g.grains.begin(), g.grains.end(), [](const Grain& a, const Grain& b) {
    return a.atoms.size() > b.atoms.size();
  });
  for (std::size_t k = 0; k < g.grains.size(); ++k)
    for (std::size_t i : g.grains[k].atoms) g.of_atom[i] = static_cast<int>(k);
  return g;
}

}  // namespace aet
