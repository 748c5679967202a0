// The crystal structure around each atom and the grains it forms (docs/analysis.md, "Local
// structure and grains"): adaptive common neighbour analysis types each atom fcc, hcp, bcc,
// icosahedral or other; the neighbours of a crystalline atom, matched to its lattice's template,
// give its local orientation; neighbouring atoms of one type whose orientations agree form a
// grain, and a grain has a lattice of its own (twins, polycrystals).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "aet/analysis/lattice.hpp"

namespace aet {

enum class LocalStructure { other, fcc, hcp, bcc, icosahedral };

// "other", "fcc", "hcp", "bcc", "icosahedral".
const char* local_structure_name(LocalStructure s);
// The lattice of a crystalline structure (fcc, hcp, bcc); nullopt for icosahedral and other.
std::optional<LatticeType> lattice_of(LocalStructure s);

struct LocalStructures {
  std::vector<LocalStructure> type;
  // Crystal axes -> sample (CrystalLattice's axes) of the neighbour template fitted to a
  // crystalline atom's neighbours; NaN for icosahedral and other atoms.
  std::vector<Mat3> orientation;
  // The neighbours that typed a crystalline atom (12; 14 for bcc), nearest first; empty otherwise.
  std::vector<std::vector<std::uint32_t>> neighbours;
};

// Adaptive common neighbour analysis (Stukowski 2012): for fcc, hcp and icosahedral order the 12
// nearest neighbours are bonded within (1 + sqrt 2) / 2 times their mean distance; for bcc the 14
// nearest within the same factor of their mean scaled to the first shell. A neighbour's signature
// is the number of neighbours it shares with the atom, the bonds among those and the longest
// chain of such bonds: fcc 12 x (4 2 1), hcp 6 x (4 2 1) + 6 x (4 2 2), icosahedral 12 x (5 5 5),
// bcc 8 x (6 6 6) + 6 x (4 4 4). Surface atoms lack neighbours and are "other".
LocalStructures local_structures(const std::vector<Vec3>& positions);

// The angle (degrees) of the smallest rotation taking orientation `a` to `b` of lattice `t`, over
// the proper rotations of its point group (24 cubic; 12 hexagonal, which also take one hcp
// sublattice's neighbour template to the other's).
double misorientation_deg(LatticeType t, const Mat3& a, const Mat3& b);

struct Grain {
  LatticeType type = LatticeType::fcc;
  std::vector<std::size_t> atoms;      // increasing
  Mat3 orientation = Mat3::Identity();  // mean of its atoms' (see find_grains)
};

struct Grains {
  std::vector<Grain> grains;  // largest first
  std::vector<int> of_atom;   // grain index per atom, -1 for none
  // hcp atoms in layers one or two atoms thick inside an fcc crystal: twin boundaries and
  // stacking faults, not grains (their atoms are in no grain).
  std::size_t planar_defect_atoms = 0;
};

// Grains: sets of crystalline atoms of one type connected through neighbours whose orientations
// differ by less than `max_deg`, of at least `min_atoms` atoms. `d_nn`: the nearest-neighbour
// distance, for telling a planar defect's thickness.
Grains find_grains(const std::vector<Vec3>& positions, const LocalStructures& ls, double d_nn,
                   double max_deg = 5.0, std::size_t min_atoms = 20);

}  // namespace aet
