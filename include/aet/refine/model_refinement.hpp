// Atomic-model refinement against the measured views: the atoms (positions and integrated
// intensities), one common projected width, and each view's scale, offset, shift and rotation are
// fitted together to the views by least squares, each atom projecting to a 2D Gaussian integrated
// over every pixel.
//
// Why: a voxel reconstruction has enough freedom to absorb a view's angle error (per-view fits
// against its re-projections stall at 0.35-0.5 degrees; docs/alignment.md), while an atom is one
// point seen by every view, so a view whose rotation is wrong cannot be matched by moving atoms.
// The refined positions are also free of the missing-wedge elongation of a reconstruction.
//
// Geometry as in docs/conventions.md: atom p appears at (u, v) = [R p]_xy + shift in a view,
// pixel (i, j) centred at ((i - nx/2) a, (j - ny/2) a). Gauges (a rotation and a translation of
// the object, a common intensity scale) are held where the input put them: each update's mean
// rotation and 3D translation are moved from the views to the atoms, and the view scales average 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/json.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet {

struct ModelRefineOptions {
  int iterations = 20;         // alternations of atoms / width / views
  bool refine_atoms = true;    // positions and intensities
  bool refine_shifts = true;   // per-view shifts
  bool refine_angles = true;   // per-view rotations (three small angles in the detector frame)
  double sigma = 0;            // starting projected width (Angstrom); 0 = 1.5 pixels
  double max_atom_step = 0.2;  // Angstrom per iteration (trust region)
  double tolerance = 1e-5;     // stop when R2 falls by less than this fraction in an iteration
  // With refine_angles: half-range (degrees) of a grid search of each view's rotation about its
  // tilt axis before the local fit, for views recorded further off than the local fit reaches
  // (several degrees); 0 = local fit only.
  double search_range_deg = 0;
  // Standard deviation (Angstrom) of a Gaussian prior on each atom's position about where it
  // started (the traced position), per coordinate; 0 = none. Weighed against the noise variance
  // of the residual on the atom's footprint, it holds atoms whose views say little (light atoms
  // at a low dose) near the start while a heavy atom's data outweigh it.
  double position_prior = 0;
  // Trust per atom (docs/refinement.md): replicates of a short refinement from the refined model
  // against views drawn with replacement (atoms only, the geometry fixed); 0 = the curvature of
  // the fit alone. Deterministic from `seed`.
  int bootstrap = 0;
  int bootstrap_iterations = 5;
  std::uint64_t seed = 0;
  // false: no trust per atom at all (a caller that keeps only the refined geometry).
  bool trust = true;
  // With refine_shifts or refine_angles: stop after `settle_iterations` iterations when the views'
  // geometry has by then moved no view's atom images by `settle_px` pixels RMS from where it
  // started (the per-view angle step of an aligned series: nothing is going to be corrected);
  // 0 = never.
  int settle_iterations = 0;
  double settle_px = 0;
  // Probe tail: a second, wide Gaussian under every atom, `tail_amplitude` times its (core)
  // intensity, of standard deviation `tail_width` (Angstrom): what a real probe and the
  // scattering of a column spread far from the atom (docs/refinement.md, "Probe tail"). With
  // fit_tail both are fitted to the views (the width searched between three core widths and
  // kMaxTailWidth); without it the given tail (0: none) is held.
  bool fit_tail = false;
  double tail_amplitude = 0;
  double tail_width = 0;
  static constexpr double kMaxTailWidth = 8.0;  // Angstrom
};

// The trust of each refined atom (docs/refinement.md, "Trust per atom"). Sigmas are standard
// deviations of the position per axis of the model's (volume's) frame, in Angstrom.
struct AtomTrust {
  std::vector<Vec3> sigma;             // reported: the larger of the two below, per axis
  std::vector<Vec3> sigma_curvature;   // from the per-atom Gauss-Newton matrix and the noise
  std::vector<Vec3> sigma_bootstrap;   // spread over the replicates (empty without them)
  std::vector<double> weight_snr;      // refined intensity / its standard deviation
  std::vector<bool> weak;              // weight_snr < kWeakSnr: the views support it weakly
  std::vector<double> noise_variance;  // per atom: mean square residual on its footprint
  int bootstrap = 0;                   // replicates run
  std::size_t weak_count = 0;
  Vec3 median_sigma = Vec3::Zero();  // of `sigma`, per axis
  // Not 3-5: an atom the views do not show still takes up the probe tail's misfit (6-9 for atoms
  // put in a particle's gaps, 100 and more for real Pt atoms at dose 5e4; docs/refinement.md).
  static constexpr double kWeakSnr = 10.0;
  static constexpr double kWeakWarnFraction = 0.1;  // warn when more atoms than this are weak
};

struct ModelRefineResult {
  AtomModel model;             // input atoms, refined; property "model_weight" (view units)
  TiltGeometry geometry;       // refined per-view rotation and shift (Angstrom)
  std::vector<double> scale;   // per-view intensity scale (mean 1)
  std::vector<double> offset;  // per-view constant background
  double sigma = 0;  // refined projected width (Angstrom): atom and probe core, pixel excluded
  // The probe tail (ModelRefineOptions::fit_tail): amplitude relative to each atom's core
  // intensity and width (Angstrom); 0 and 0 without one.
  double tail_amplitude = 0, tail_width = 0;
  double rms_displacement = 0;  // Angstrom: RMS distance of the atoms from where they started
  std::vector<double> search_change_deg;  // per view, by the grid search (empty without it)
  std::vector<double> r1;  // sum |view - model| / sum |view| before the first and after each
                           // iteration
  // With refine_atoms: per atom, also in the model's properties sigma_x, sigma_y, sigma_z,
  // weight_snr and weak (0/1); with a bootstrap also sigma_curv_* and sigma_boot_*.
  AtomTrust trust;
};

// Refines `atoms` and `geometry` against `views` (nx x ny x nviews, pixel size voxel_size.x).
// Throws InputError for no atoms, a view/geometry count mismatch, non-finite views or positions, a
// non-positive pixel size or bad options (a negative or non-finite position prior, or negative
// bootstrap replicates, among them). With refine_atoms the result carries the trust per atom.
ModelRefineResult refine_atomic_model(const Array3& views, const TiltGeometry& geometry,
                                      const AtomModel& atoms, const ModelRefineOptions& opt);

// The trust block of refine.json and metrics.json, read from a model's trust columns (so that it
// counts the atoms a classification kept): median sigma_x, sigma_y, sigma_z (Angstrom), weak atoms
// and their fraction, the weak threshold, the bootstrap replicates. Null when the model has no
// trust columns (e.g. a traced model).
Json trust_json(const AtomModel& model, int bootstrap);
// One log line of trust_json's summary ("trust per atom: median sigma ... pm (x y z), N weak
// atoms, ..."); "" when the model has no trust columns.
std::string trust_line(const AtomModel& model, int bootstrap);
// The warning for a model whose weak atoms exceed AtomTrust::kWeakWarnFraction; "" otherwise.
std::string trust_warning(const AtomModel& model);

}  // namespace aet
