// The crystal lattice of an atom model and the strain field against it (docs/analysis.md): one
// lattice (fcc, bcc or hcp) with its orientation, lattice constant(s) and origin fitted to the
// atoms, the ideal site of every atom, the displacement from it, and the strain tensor from the
// displacement gradient (Gaussian-weighted local least squares) or from the nearest-neighbour
// shell. L1_0 is the chemically ordered fcc of a binary alloy (FePt, CoPt): planes of one species
// alternate with planes of the other along c, so its c axis is found from the species.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "aet/core/neighbor.hpp"  // median_nearest_distance
#include "aet/geometry/rotation.hpp"

namespace aet {

enum class LatticeType { fcc, bcc, hcp, l10 };

const char* lattice_name(LatticeType t);  // "fcc", "bcc", "hcp", "l10"
// "fcc", "bcc", "hcp", "l10" (also "L10", "L1_0"); "auto" gives nullopt (try each); anything else
// throws InputError.
std::optional<LatticeType> parse_lattice(const std::string& name);

// A lattice placed in the sample: site = origin + orientation * diag(a, a, c) * (n + basis_k),
// n integer, in the conventional cell (cubic: c = a; hcp: hexagonal axes, c along the crystal z;
// L1_0: the fcc cell stretched to c along z).
struct CrystalLattice {
  LatticeType type = LatticeType::fcc;
  double a = 1, c = 1;                     // Angstrom
  Mat3 orientation = Mat3::Identity();     // crystal axes -> sample
  Vec3 origin = Vec3::Zero();              // a site, Angstrom
  Mat3 cell() const;                       // conventional cell vectors (columns), crystal frame
  const std::vector<Vec3>& basis() const;  // fractional coordinates of the cell's sites
  Vec3 nearest_site(const Vec3& p) const;  // the site closest to p
  double nearest_neighbour_distance() const;
  // L1_0: 0 for a site on the planes through the origin normal to c, 1 for one between them
  // (the other species' planes); 0 for the other lattices.
  int layer(const Vec3& site) const;
};

struct LatticeFitOptions {
  std::optional<LatticeType> type;  // nullopt: fit fcc, bcc and hcp, keep the best
  double a = 0, c = 0;              // fixed lattice constants (Angstrom); 0 = fitted
  // L1_0 (required for it): per atom 0 or 1, which of the model's two species it is (-1: neither).
  // The c axis is the cubic axis along which the species' planes alternate best, and the
  // origin lies on species 0's planes.
  std::vector<int> species;
};

struct LatticeFit {
  CrystalLattice lattice;
  std::vector<Vec3> sites;  // ideal site per atom
  double rms_residual = 0;  // RMS |position - site| (Angstrom)
  // Fraction of atoms within 0.25 nearest-neighbour distances of their site; those atoms are
  // "on the lattice" (one grain); a low fraction means several grains, twins or no crystal.
  double on_lattice_fraction = 0;
  std::vector<char> on_lattice;
  std::size_t bonds_used = 0;  // nearest-neighbour bonds the orientation was fitted to
  // Every lattice type tried: name and on-lattice fraction (auto picks the highest).
  std::vector<std::pair<std::string, double>> tried;
  // L1_0: the long-range order parameter of the species on it (l10_order_parameter); NaN for
  // the other lattices.
  double order_parameter = std::numeric_limits<double>::quiet_NaN();
};

// Fits one lattice to `positions` (Angstrom). The orientation and lattice constants come from the
// nearest-neighbour bonds of fully coordinated atoms (orthogonal Procrustes against the lattice's
// bond vectors, so a uniform strain leaves the orientation unrotated), the origin from all atoms.
// Throws InputError for fewer than 4 atoms, non-finite positions or bad constants.
LatticeFit fit_lattice(const std::vector<Vec3>& positions, const LatticeFitOptions& opt = {});

// The L1_0 long-range order parameter S = r0 + r1 - 1 of the species labels (0, 1; others
// ignored) on the sites of an L1_0 lattice, over the atoms where `use` is nonzero (all when
// empty): r0 is the share of layer-0 sites held by species 0, r1 that of layer-1 sites held by
// species 1. 1 for perfect order, about 0 for a random alloy, -1 with the species swapped; NaN
// when a layer holds no atom.
double l10_order_parameter(const CrystalLattice& lattice, const std::vector<Vec3>& sites,
                           const std::vector<int>& species, const std::vector<char>& use = {});

// Displacement gradient G = du/dX (sample frame) at each point of `at`, fitted by weighted least
// squares u(X) = u0 + G (X - at) to the displacements `u` of the reference points `ref` with
// Gaussian weights of sd `sigma` out to 3 sigma, using only points where `use` is nonzero (all
// when empty). NaN where the neighbourhood does not fix a gradient (fewer than 4 points that are
// not coplanar). Exact for a linear displacement field.
std::vector<Mat3> displacement_gradient(const std::vector<Vec3>& ref, const std::vector<Vec3>& u,
                                        const std::vector<char>& use, double sigma,
                                        const std::vector<Vec3>& at);

// Per-atom local strain from the nearest-neighbour shell: the deformation gradient F that best
// maps the ideal bonds (site_j - site_i) onto the bonds (p_j - p_i) for neighbours within
// `cutoff`, and its symmetric part minus the identity. NaN for fewer than 3 independent bonds or
// atoms off the lattice.
std::vector<Mat3> local_strain(const std::vector<Vec3>& positions, const std::vector<Vec3>& sites,
                               const std::vector<char>& on_lattice, double cutoff);

}  // namespace aet
