// Chemical order of a binary alloy on an fcc-type lattice (docs/analysis.md, "Chemical order"):
// the L1_0 long-range order parameter against a fitted L1_0 lattice, its antisite atoms, and per
// atom the order of its own nearest-neighbour shell with the cube axis along which its species'
// planes alternate, so that ordered domains with c along different axes (variants) and disordered
// regions are told apart.
#pragma once

#include <array>
#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "aet/analysis/lattice.hpp"
#include "aet/core/atoms.hpp"

namespace aet {

struct ChemicalOrder {
  std::string first, second;  // species 0 and 1 (an L1_0 lattice's origin planes hold the first)
  std::size_t count_first = 0, count_second = 0;
  // l10_order_parameter over the atoms on an L1_0 lattice (of every grain's); NaN for none.
  double order_parameter = std::numeric_limits<double>::quiet_NaN();
  std::vector<char> antisite;  // per atom: on the other species' planes of the L1_0 lattice
  std::size_t antisites = 0;
  // Per atom, over its on-lattice neighbours of the two species within the cutoff: for each cube
  // axis k of its lattice, o_k = 2 m_k / N - 1 with m_k the neighbours placed as L1_0 with c
  // along k places them (the same species in the atom's plane normal to k, the other species
  // off it); o_k averaged over the atom and those neighbours, and the largest with its k.
  // Perfect L1_0: 1 along c and -1/3 along the other axes; a random equiatomic alloy near 0.
  std::vector<double> local_order;           // NaN: off the lattice or fewer than 8 such neighbours
  std::vector<int> local_axis;               // 0, 1, 2: x, y, z of the atom's lattice; -1 undefined
  std::size_t defined = 0;                   // atoms with a local order
  double ordered_fraction = 0;               // of those: local order >= kOrdered
  std::array<double, 3> variant_fraction{};  // of the ordered atoms: c along x, y, z
  static constexpr double kOrdered = 0.5;
  bool present() const { return !local_order.empty(); }
};

// The model's species as labels 0 and 1 (in alphabetical order, named in `first` and
// `second`); empty unless the model holds exactly two species.
std::vector<int> binary_species(const AtomModel& model, std::string* first = nullptr,
                                std::string* second = nullptr);

// The chemical order of `positions` with labels `species` (binary_species), each atom on its
// ideal site of lattice `lattice_of[i]` (nullptr: none) when `on_lattice[i]`; neighbours within
// `cutoff` (Angstrom). Antisites and the order parameter only for atoms on an L1_0 lattice.
ChemicalOrder chemical_order(const std::vector<Vec3>& positions, const std::vector<int>& species,
                             const std::vector<Vec3>& sites, const std::vector<char>& on_lattice,
                             const std::vector<const CrystalLattice*>& lattice_of, double cutoff);

// Warren-Cowley chemical short-range order of a model of several species over the neighbours
// within `cutoff` of each atom: for an ordered pair "A-B" (A != B) alpha = 1 - P(B | A) / c_B,
// with P(B | A) the share of B among the neighbours of A atoms and c_B the share of B among all
// atoms: 0 at random, negative where A prefers B as neighbour (L1_0 FePt: -1/3 in the bulk),
// positive where it avoids it. Crystal or glass alike. Empty for one species.
std::map<std::string, double> warren_cowley(const AtomModel& model, double cutoff);

}  // namespace aet
