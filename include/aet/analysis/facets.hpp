// Facets of a crystalline particle (docs/analysis.md): planar clusters of surface atoms whose
// normal is a lattice-plane normal, with Miller indices in the fitted lattice, area and atom
// count; the surface atoms on no facet are edges and corners.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "aet/analysis/lattice.hpp"

namespace aet {

struct Facet {
  std::array<int, 3>
      hkl{};           // Miller indices in the lattice's conventional cell (hcp: hexagonal axes)
  std::string family;  // cubic: "{111}", "{100}", "{110}" or "higher"; hcp: "{hkil}"
  std::string plane;   // the indices written out, e.g. "(1-11)"
  Vec3 normal = Vec3::Zero();  // outward, sample frame, fitted to the facet's atoms
  double angle_deg = 0;        // between the fitted normal and the lattice plane's normal
  Vec3 centre = Vec3::Zero();  // mean position of its atoms
  double area = 0;  // A^2: hull of the atoms in the plane, widened by 0.8 d_nn to the edges
  std::size_t atoms = 0;
};

struct FacetResult {
  std::vector<Facet> facets;  // largest first
  std::vector<int> facet_of;  // per atom: index into facets, or -1
  // Per atom: 0 not surface or on a facet, 1 edge (beside two facets), 2 corner (three or more),
  // 3 other surface atom (rough, or on a facet too small to count).
  std::vector<int> site_kind;
  std::map<std::string, double> area_fraction;  // family -> share of the total facet area
  std::map<std::string, double> atom_fraction;  // family -> share of the atoms on facets
  double surface_on_facets = 0;                 // share of surface atoms on a facet
};

struct FacetOptions {
  int max_index = 3;          // Miller indices tried up to this absolute value
  double tolerance_deg = 10;  // a local normal snaps to a plane normal within this angle
  std::size_t min_atoms = 3;  // smaller planar clusters are not facets
};

// Facets of the atoms flagged in `is_surface`, in the lattice `lattice` (from fit_lattice), with
// `d_nn` the nearest-neighbour distance.
FacetResult find_facets(const std::vector<Vec3>& positions, const std::vector<char>& is_surface,
                        const CrystalLattice& lattice, double d_nn, const FacetOptions& opt = {});

}  // namespace aet
