// Local structure of an atom model (docs/analysis.md): coordination, surface atoms (low
// coordination and reachable from outside, so atoms around an inner vacancy or void are not
// surface), radial distribution functions and Steinhardt bond-orientational order.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "aet/core/atoms.hpp"

namespace aet {

// Neighbours of each point within `cutoff` (Angstrom), itself excluded.
std::vector<int> coordination_numbers(const std::vector<Vec3>& positions, double cutoff);

struct SurfaceAtoms {
  std::vector<char> is_surface;
  std::vector<char> exposed;  // reachable from outside (the geometric test alone)
  int threshold = 0;          // coordination below this (and exposed) is surface
  double volume = 0;          // A^3 enclosed by the probe surface (atoms widened by `probe`)
};

// Surface atoms: coordination below `threshold` (0 = bulk coordination - 2, the rule of
// aet evaluate) and exposed: a point farther than `probe` (a nearest-neighbour distance) from
// every atom, connected to the outside, lies within 1.35 `probe` of the atom. The connection is a
// flood fill on a grid of `probe` / 4.
SurfaceAtoms find_surface_atoms(const std::vector<Vec3>& positions,
                                const std::vector<int>& coordination, double probe,
                                int threshold = 0);

struct Rdf {
  double bin = 0.05, r_max = 10;  // Angstrom
  double density = 0;             // atoms / A^3 used to normalise (N / SurfaceAtoms::volume)
  std::vector<double> r, g;       // bin centres and g(r)
  // Partial g_ab(r) for every species pair "A-B" (A <= B), when there are several species.
  std::map<std::string, std::vector<double>> partial;
};

// g(r) = pairs at r / (N 4 pi r^2 dr rho), rho = N / volume, and the partials
// g_ab = pairs_ab / (N_a 4 pi r^2 dr rho_b).
Rdf radial_distribution(const AtomModel& model, double volume, double r_max, double bin);

// Steinhardt's Q_l of every atom over its neighbours within `cutoff` (NaN without neighbours):
// Q_l = sqrt(4 pi / (2l + 1) sum_m |q_lm|^2), q_lm the mean of Y_lm over the bond directions.
// Perfect fcc: Q4 = 0.191, Q6 = 0.575.
std::vector<double> steinhardt_q(const std::vector<Vec3>& positions, double cutoff, int l);

}  // namespace aet
