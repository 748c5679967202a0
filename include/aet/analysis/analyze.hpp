// The analysis stage (docs/analysis.md): lattice and strain, surface, coordination and order,
// facets of an atom model; `aet analyze` and the end of `aet pipeline`.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aet/analysis/chemical_order.hpp"
#include "aet/analysis/facets.hpp"
#include "aet/analysis/lattice.hpp"
#include "aet/analysis/local_structure.hpp"
#include "aet/analysis/structure.hpp"
#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/json.hpp"

namespace aet {

struct AnalyzeOptions {
  // nullopt: auto (fcc, bcc, hcp: the best fit; a binary model ordered on its fcc lattice: L1_0)
  std::optional<LatticeType> lattice;
  double a = 0, c = 0;  // reference lattice constants (Angstrom); 0 = fitted
  double sigma = 3.0;   // Gaussian smoothing of the strain field (Angstrom)
  double voxel = 1.0;   // voxel of the strain and facet volumes (Angstrom)
  double cutoff = 0;    // coordination cutoff (Angstrom); 0 = between the shells (analyze.cpp)
  double rdf_max = 10, rdf_bin = 0.05;  // Angstrom
  bool volumes = true;                  // make the strain and facet volumes
};

// Strain components in Voigt order (tensor components, not engineering shear).
inline const std::array<const char*, 6>& strain_component_names() {
  static const std::array<const char*, 6> n = {"xx", "yy", "zz", "yz", "xz", "xy"};
  return n;
}

// What the local structure says the sample is: one crystal; several grains (or twins), each
// with a lattice of its own; or amorphous, fewer than kCrystallineFraction of its interior atoms
// in fcc, hcp or bcc order (no lattice, strain or facets).
enum class SampleStructure { crystal, polycrystal, amorphous };
const char* sample_structure_name(SampleStructure s);
constexpr double kCrystallineFraction = 0.3;

struct AnalysisResult {
  SampleStructure kind = SampleStructure::crystal;
  LocalStructures local;  // per atom: fcc, hcp, bcc, icosahedral, other, and orientation
  Grains grains;
  // Fraction of the interior atoms (neither surface atoms nor their neighbours within the
  // coordination cutoff) in fcc, hcp or bcc order (of all atoms when there are none).
  double crystalline_fraction = 0;
  // The lattice: of the whole model (crystal), of the largest grain (polycrystal; sites,
  // on_lattice and on_lattice_fraction then over all atoms, each against its grain's lattice), or
  // none (amorphous: sites are the positions, no atom on a lattice).
  LatticeFit fit;
  bool lattice_fitted = true;  // false for an amorphous sample (unless a lattice was given)
  // Polycrystal: each grain's own fit (to the atoms it holds), and the grain whose lattice gives
  // each atom's site (its own, or that of its nearest grain atom within 3 d_nn; -1 for none).
  std::vector<LatticeFit> grain_fits;
  std::vector<int> lattice_grain;
  double d_nn = 0;                 // median nearest-neighbour distance (Angstrom)
  double cutoff = 0;               // coordination cutoff used
  std::vector<Vec3> displacement;  // position - ideal site (Angstrom)
  // Per atom, sample frame: smoothed strain (symmetric part of the displacement gradient),
  // rotation (its antisymmetric part), nearest-neighbour-shell strain. NaN where undefined (off
  // the lattice, too few neighbours).
  std::vector<Mat3> strain, rotation, local_strain;
  std::vector<int> coordination;
  SurfaceAtoms surface;
  std::vector<double> q4, q6;
  // A model of two species on fcc or L1_0 lattices: antisites, local order and its variants
  // (ChemicalOrder::present() false otherwise).
  ChemicalOrder chemical;
  std::map<std::string, double>
      short_range_order;  // Warren-Cowley alpha per pair (several species)
  Rdf rdf;
  FacetResult facets;
  // The strain components (Voigt order) and the facet labels (facet index + 1, 0 = none) on a
  // grid of `voxel` centred on voxel n // 2 at the origin; empty without AnalyzeOptions::volumes.
  std::vector<Array3> strain_volumes;
  Array3 facet_volume;
  std::vector<std::string> warnings;  // degraded results, for the caller to report

  Json json() const;  // analysis.json: lattice, strain statistics, surface, facets, RDF, order
};

// Analyses `model` (Angstrom). Throws InputError for fewer than 4 atoms, non-finite positions,
// atoms without neighbours (median nearest-neighbour distance over 6 A) or bad options.
AnalysisResult analyze(const AtomModel& model, const AnalyzeOptions& opt = {});

// Appends the per-atom results to `model` as properties (extended XYZ columns): strain_xx ...
// strain_xy, rotation_x/y/z (degrees), local_strain_xx ..., displacement_x/y/z, on_lattice,
// coordination, surface, facet (-1 none), facet_h/k/l, site_kind, q4, q6, structure (0 other,
// 1 fcc, 2 hcp, 3 bcc, 4 icosahedral), grain (-1 none); for a binary alloy local_order (0 where
// undefined), order_axis (0, 1, 2 = x, y, z of the atom's lattice; -1 undefined), antisite.
void add_analysis_properties(AtomModel& model, const AnalysisResult& r);

// One line for the log: the sample's kind, the lattice (of the largest grain), the share of atoms
// on it and the facets; for an amorphous sample its crystalline fraction and mean Q6.
std::string analysis_summary(const AnalysisResult& r);

// Writes atoms.xyz (`model` with the properties added), analysis.json, strain_<c>.mrc and
// facets.mrc (when made) into the existing folder `dir`, each file atomically.
void write_analysis_files(const std::string& dir, const AtomModel& model, const AnalysisResult& r);

// The names write_analysis_files may write.
std::vector<std::string> analysis_file_names();

}  // namespace aet
