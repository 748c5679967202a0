// Facets (docs/analysis.md): a local normal per surface atom (the plane through it and its
// surface neighbours), snapped to the nearest lattice-plane normal; connected atoms with the same
// plane form a facet.
#include "aet/analysis/facets.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>

#include "aet/core/disjoint_sets.hpp"
#include "aet/core/error.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

constexpr double kPi = 3.14159265358979323846;

int gcd3(int a, int b, int c) {
  return std::gcd(std::gcd(std::abs(a), std::abs(b)), std::abs(c));
}

struct Candidate {
  std::array<int, 3> hkl;
  Vec3 dir;  // unit normal, crystal frame
};

std::string plane_text(const std::array<int, 3>& h) {
  std::string s = "(";
  for (int v : h) s += std::to_string(v);
  return s + ")";
}

std::string family_of(LatticeType t, const std::array<int, 3>& h) {
  if (t != LatticeType::hcp) {
    std::array<int, 3> a = {std::abs(h[0]), std::abs(h[1]), std::abs(h[2])};
    std::sort(a.begin(), a.end());
    if (a == std::array<int, 3>{1, 1, 1}) return "{111}";
    if (a == std::array<int, 3>{0, 0, 1}) return "{100}";
    if (a == std::array<int, 3>{0, 1, 1}) return "{110}";
    return "higher";
  }
  // Hexagonal (h k i l): the three in-plane indices are equivalent up to order and sign pattern.
  std::array<int, 3> a = {std::abs(h[0]), std::abs(h[1]), std::abs(h[0] + h[1])};
  std::sort(a.begin(), a.end(), std::greater<int>());
  return "{" + std::to_string(a[0]) + std::to_string(a[1]) + std::to_string(a[2]) +
         std::to_string(std::abs(h[2])) + "}";
}

// Area of the convex hull of 2D points (Andrew's monotone chain), and its perimeter.
std::pair<double, double> hull_area(std::vector<Vec2> pts) {
  std::sort(pts.begin(), pts.end(), [](const Vec2& a, const Vec2& b) {
    return a.x() != b.x() ? a.x() < b.x() : a.y() < b.y();
  });
  if (pts.size() < 3) {
    const double len = pts.size() == 2 ? (pts[1] - pts[0]).norm() : 0;
    return {0.0, 2 * len};
  }
  auto cross = [](const Vec2& o, const Vec2& a, const Vec2& b) {
    return (a - o).x() * (b - o).y() - (a - o).y() * (b - o).x();
  };
  std::vector<Vec2> h(2 * pts.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    while (k >= 2 && cross(h[k - 2], h[k - 1], pts[i]) <= 0) --k;
    h[k++] = pts[i];
  }
  for (std::size_t i = pts.size() - 1, t = k + 1; i > 0; --i) {
    while (k >= t && cross(h[k - 2], h[k - 1], pts[i - 1]) <= 0) --k;
    h[k++] = pts[i - 1];
  }
  h.resize(k - 1);
  double area = 0, perim = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const Vec2& a = h[i];
    const Vec2& b = h[(i + 1) % h.size()];
    area += a.x() * b.y() - a.y() * b.x();
    perim += (b - a).norm();
  }
  return {std::abs(area) / 2, perim};
}

}  // namespace

FacetResult find_facets(const std::vector<Vec3>& p, const std::vector<char>& is_surface,
                        const CrystalLattice& L, double d_nn, const FacetOptions& opt) {
  if (!(d_nn > 0)) fail_input("facets: the nearest-neighbour distance must be > 0");
  const std::size_t n = p.size();
  FacetResult out;
  out.facet_of.assign(n, -1);
  out.site_kind.assign(n, 0);

  // Plane normals G = B (h, k, l) with B the reciprocal of the conventional cell.
  const Mat3 B = L.cell().inverse().transpose();
  std::vector<Candidate> cand;
  const int m = opt.max_index;
  for (int h = -m; h <= m; ++h)
    for (int k = -m; k <= m; ++k)
      for (int l = -m; l <= m; ++l)
        if (gcd3(h, k, l) == 1) cand.push_back({{h, k, l}, (B * Vec3(h, k, l)).normalized()});

  const double r_small = 1.2 * d_nn, r_large = 1.55 * d_nn;
  const double tol_above = 0.25 * d_nn, tol_in = 0.15 * d_nn;
  const NeighborSearch grid(p, r_large, NeighborSearch::default_max_cells(n));
  std::vector<int> plane(n, -1);  // candidate index per surface atom
  // Each surface atom's plane: the lattice plane through it with no atom within r_large above it
  // (a supporting plane) and the most surface atoms in it. An atom with two such planes about
  // equally full is an edge or corner, on no facet. A plane fitted to the neighbours would
  // tilt beside an edge, where an atom across the edge is a nearest neighbour.
  const double cos_max = std::cos((90.0 - opt.tolerance_deg) * kPi / 180);
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
    std::vector<Vec3> rel;
    std::vector<char> rel_surface;
    std::vector<int> counts;
    for (std::int64_t i = b; i < e; ++i) {
      if (!is_surface[i]) continue;
      rel.clear();
      rel_surface.clear();
      Vec3 centre = Vec3::Zero();
      grid.for_each(p[i], r_large, [&](std::size_t j, double) {
        centre += p[j];
        if (static_cast<std::int64_t>(j) == i) return;
        rel.push_back(L.orientation.transpose() * (p[j] - p[i]));
        rel_surface.push_back(is_surface[j]);
      });
      const Vec3 outward = L.orientation.transpose() * (p[i] - centre / (rel.size() + 1.0));
      counts.assign(cand.size(), 0);
      int best = -1, best_count = 0;
      for (std::size_t k = 0; k < cand.size(); ++k) {
        const Vec3& nrm = cand[k].dir;
        if (nrm.dot(outward) <= cos_max * outward.norm()) continue;  // facing inwards
        int count = 0;
        bool blocked = false;
        for (std::size_t q = 0; q < rel.size() && !blocked; ++q) {
          const double h = nrm.dot(rel[q]);
          blocked = h > tol_above;
          count += rel_surface[q] && std::abs(h) <= tol_in;
        }
        if (blocked || count < 2) continue;
        counts[k] = count;
        if (count > best_count) {
          best = static_cast<int>(k);
          best_count = count;
        }
      }
      if (best < 0) continue;
      // Another supporting plane, at least 30 degrees away and about as full: an edge.
      bool edge = false;
      for (std::size_t k = 0; k < cand.size() && !edge; ++k)
        edge = counts[k] >= 0.75 * best_count && cand[k].dir.dot(cand[best].dir) < 0.866;
      if (!edge) plane[i] = best;
    }
  });

  // Connected components of atoms on the same plane (lowest index as the root).
  DisjointSets sets(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (plane[i] < 0) continue;
    grid.for_each(p[i], r_large, [&](std::size_t j, double) {
      if (j > i && plane[j] == plane[i]) sets.join(i, j);
    });
  }
  std::vector<std::vector<std::size_t>> groups(n);
  for (std::size_t i = 0; i < n; ++i)
    if (plane[i] >= 0) groups[sets.find(i)].push_back(i);
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < n; ++i)
    if (groups[i].size() >= opt.min_atoms) roots.push_back(i);
  std::stable_sort(roots.begin(), roots.end(), [&](std::size_t a, std::size_t b) {
    return groups[a].size() > groups[b].size();
  });
  // The edge rows belong to no facet: widen each facet's hull by about a row spacing, so that
  // facets meet at the edges and their areas are the faces' (a 6-cell fcc cube: 36 a^2 each).
  const double rim = 0.8 * d_nn;
  for (std::size_t f = 0; f < roots.size(); ++f) {
    const auto& g = groups[roots[f]];
    Facet fc;
    const Candidate& c = cand[plane[g.front()]];
    fc.hkl = c.hkl;
    fc.family = family_of(L.type, c.hkl);
    fc.plane = plane_text(c.hkl);
    fc.atoms = g.size();
    for (auto i : g) fc.centre += p[i];
    fc.centre /= static_cast<double>(g.size());
    Mat3 cov = Mat3::Zero();
    for (auto i : g) cov += (p[i] - fc.centre) * (p[i] - fc.centre).transpose();
    const Vec3 lattice_normal = L.orientation * c.dir;
    Vec3 nrm = lattice_normal;
    if (g.size() >= 3) {
      const Eigen::SelfAdjointEigenSolver<Mat3> es(cov);
      nrm = es.eigenvectors().col(0);
      if (nrm.dot(lattice_normal) < 0) nrm = -nrm;
    }
    fc.normal = nrm;
    fc.angle_deg = std::acos(std::clamp(nrm.dot(lattice_normal), -1.0, 1.0)) * 180 / kPi;
    // Area in the lattice plane: the hull of the projected atoms, widened by half a spacing.
    const Vec3 u = lattice_normal.unitOrthogonal(), v = lattice_normal.cross(u);
    std::vector<Vec2> q;
    for (auto i : g) q.emplace_back((p[i] - fc.centre).dot(u), (p[i] - fc.centre).dot(v));
    const auto [area, perim] = hull_area(q);
    fc.area = area + perim * rim + kPi * rim * rim;
    for (auto i : g) out.facet_of[i] = static_cast<int>(f);
    out.facets.push_back(fc);
  }

  // Edges and corners: surface atoms on no facet, by how many facets they touch.
  std::size_t surface = 0, on_facet = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_surface[i]) continue;
    ++surface;
    if (out.facet_of[i] >= 0) {
      ++on_facet;
      continue;
    }
    std::vector<int> touched;
    grid.for_each(p[i], r_small, [&](std::size_t j, double) {
      if (out.facet_of[j] >= 0) touched.push_back(out.facet_of[j]);
    });
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    out.site_kind[i] = touched.size() >= 3 ? 2 : touched.size() == 2 ? 1 : 3;
  }
  out.surface_on_facets = surface ? static_cast<double>(on_facet) / surface : 0;
  double total_area = 0;
  for (const auto& f : out.facets) {
    total_area += f.area;
    out.area_fraction[f.family] += f.area;
    out.atom_fraction[f.family] += static_cast<double>(f.atoms);
  }
  for (auto& [k, v] : out.area_fraction) v = total_area > 0 ? v / total_area : 0;
  for (auto& [k, v] : out.atom_fraction) v = on_facet ? v / static_cast<double>(on_facet) : 0;
  return out;
}

}  // namespace aet
