// Tilt-series alignment: preprocessing, coarse alignment (centre of mass or cross-correlation,
// common-line tilt axis) and projection matching (per-view shifts, a common tilt-axis rotation
// and per-view Euler angles refined against re-projections of RESIRE reconstructions).
// docs/alignment.md describes the methods, the gauge choices and the measured accuracy.
//
// Geometry as in docs/conventions.md: a view's pixel coordinate is (u + shift_x, v + shift_y)
// with (u, v, w) = R p; shifts in Angstrom.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet {

// What the views show. An isolated particle has empty margins in every view; a film (or slab, or a
// particle cut by the field) reaches the border of the views, at least at high tilt. They need
// different preprocessing: a film has no background to fit beside it, and its total intensity
// grows with tilt as more material enters the field, so neither is removed (docs/alignment.md).
enum class SampleKind { automatic, particle, film };
const char* sample_name(SampleKind kind);
SampleKind parse_sample(const std::string& name);  // auto, particle or film (InputError)

struct SampleDetection {
  SampleKind kind = SampleKind::particle;
  // The largest fraction, over the views, of a view's positive signal (after the background
  // subtraction that an isolated particle's views need) that lies in the outer tenth of the view.
  double border_fraction = 0;
};
// A film when some view holds at least 5 % of its signal in the outer frame.
SampleDetection detect_sample(const Array3& views);

struct PreprocessOptions {
  bool subtract_background = true;  // robust 2nd-order polynomial fitted to background pixels
  bool normalise = true;            // every view scaled to the mean total intensity
  bool remove_hot_pixels = true;    // isolated outliers replaced by their neighbours' median
  double denoise_sigma = 0;         // px, Gaussian; 0 = off
};

// Hot-pixel removal, background subtraction, optional Gaussian denoising and per-view
// normalisation, in that order. Throws InputError for an empty stack or non-finite values.
Array3 preprocess_views(const Array3& views, const PreprocessOptions& opt);

struct AlignRoundState;  // below

struct AlignOptions {
  // automatic: detect_sample on the views. A film turns the background subtraction and the
  // normalisation off (whatever `preprocess` says) and per-view angles are not refined.
  SampleKind sample = SampleKind::automatic;
  PreprocessOptions preprocess;
  bool coarse = true;  // centre of mass (isolated particle) or cross-correlation + common line
  int rounds = 5;      // projection-matching rounds
  int recon_iterations = 15;  // accelerated RESIRE iterations per round (first round: twice)
  bool refine_shifts = true, refine_axis = true;
  // Per-view Euler refinement against an atomic model traced from the aligned reconstruction
  // and refined together with the views (aet/refine/model_refinement.hpp). Needs a specimen whose
  // atoms the reconstruction resolves; skipped with a warning when the object reaches the border of
  // the views (atoms outside the field would be missing from the model).
  bool refine_angles = false;
  int model_iterations = 20;  // iterations of the atomic-model refinement
  // When the half-resolution check finds the series aligned, leave the angle step to the caller
  // (AlignResult::angles_deferred), who reconstructs with the given geometry anyway and runs
  // refine_view_angles on that volume: the step then costs no reconstruction of its own
  // (aet pipeline).
  bool defer_angles = false;
  // Half-range (degrees) of the grid search of each view's rotation about its tilt axis that
  // precedes the local fit (ModelRefineOptions::search_range_deg); 0 = local fit only.
  double angle_search_deg = 10;
  // Before projection matching, a check at half resolution (views binned 2 x 2: an eighth of the
  // cost): when the shifts it fits stay below `check_shift_px` RMS (full-resolution pixels) and
  // the tilt axis below `check_axis_deg`, the series is aligned already and the geometry is kept.
  bool quick_check = true;
  double check_shift_px = 0.5, check_axis_deg = 0.25;
  double max_shift_px = 0;  // 0 = auto (a quarter of the view width)
  Device device;            // cpu default
  std::uint64_t seed = 0;   // recorded; the methods are deterministic
  // Progress kept between projection-matching rounds (aet align / aet pipeline --checkpoint):
  // `save_round`, when set, receives the state after every round; `resume`, when given, is a
  // state saved by a run with the same views and options, and the rounds go on after it, ending
  // with the result of a run that was never stopped (AlignRoundState below).
  std::function<void(const AlignRoundState&)> save_round;
  const AlignRoundState* resume = nullptr;
};

struct AlignRound {
  int round;
  double r1;                // R1 of the round's reconstruction against the views (before updates)
  double shift_change_px;   // RMS shift update of the round
  double angle_change_deg;  // RMS rotation update of the round (per view, axis included)
};

// Everything projection matching carries from one round to the next: enough to go on from a
// finished round as if the run had never stopped.
struct AlignRoundState {
  int rounds_done = 0;
  bool converged = false;     // the last round changed nothing: no more rounds
  double check_shift_px = 0;  // what the half-resolution check measured (AlignResult)
  double check_axis_deg = 0;
  TiltGeometry geometry;       // the geometry the next round starts from
  double axis_deg = 0;         // its tilt axis
  Array3 volume;               // the last round's reconstruction (the next one starts from it)
  TiltGeometry best_geometry;  // the best geometry so far, its axis and R1
  double best_axis_deg = 0, best_r1 = 0;
  std::vector<AlignRound> rounds;
  double r1_initial = 0;
};

struct AlignResult {
  SampleKind sample = SampleKind::particle;  // as detected (or given)
  double border_fraction = 0;
  Array3 views;              // preprocessed views (NOT resampled); the geometry applies to them
  TiltGeometry geometry;     // refined per-view rotation and shift (Angstrom)
  double tilt_axis_deg = 0;  // in-plane rotation of the tilt axis from y (counter-clockwise)
  std::vector<AlignRound> rounds;
  double r1_initial = 0;  // R1 with the geometry after coarse alignment (first round)
  double r1_final = 0;    // R1 of a final reconstruction with the refined geometry
  // With refine_angles: atoms in the model, and the model's R1 against the views before and
  // after the refinement (0 when the stage did not run).
  std::size_t model_atoms = 0;
  double model_r1_initial = 0, model_r1_final = 0;
  // The refined angles made the reconstruction fit worse and were not kept.
  bool angles_rejected = false;
  // The largest, over the views, RMS displacement (pixels) of the atoms' images by the refined
  // geometry; below ViewAngles::kChangePx the given geometry is kept without a reconstruction.
  double angle_change_px = 0;
  // The check found the series aligned and the angle step was left to the caller
  // (AlignOptions::defer_angles).
  bool angles_deferred = false;
  std::vector<double> search_change_deg;  // per view: rotation change by the grid search (or empty)
  // The half-resolution check: whether it found nothing to correct (then no projection matching
  // ran and r1_initial = r1_final is its reconstruction's R1), and what it measured.
  bool already_aligned = false;
  double check_shift_px = 0, check_axis_deg = 0;
};

// Aligns a tilt series whose nominal angles are `nominal` (one per view). Throws InputError for
// fewer than two views, a count mismatch, non-finite or all-zero views, or bad options.
AlignResult align_tilt_series(const Array3& views, const std::vector<Euler>& nominal,
                              const AlignOptions& opt);

// The per-view angle step (AlignOptions::refine_angles) on its own: atoms traced in `volume` (a
// reconstruction of the preprocessed `views` with `geometry`) are refined together with the views
// (the grid search of AlignOptions::angle_search_deg first, then AlignOptions::model_iterations),
// and for a single-axis series the common in-plane rotation of the refined views becomes the tilt
// axis, the object kept in the nominal frame. `tilt_axis_deg`: the axis of `geometry`.
struct ViewAngles {
  // Below this (pixels), the refined geometry corrects nothing: the per-view angle and shift
  // estimates of an aligned series move the atoms' images by a few hundredths of a pixel, a view
  // a tenth of a degree off moves those of a 40 A particle's outer atoms by 0.2 pixels.
  static constexpr double kChangePx = 0.1;
  TiltGeometry geometry;  // refined; the given one when too few atoms were traced
  double tilt_axis_deg = 0;
  std::size_t model_atoms = 0;  // traced; fewer than 4: nothing was refined
  double model_r1_initial = 0, model_r1_final = 0;
  std::vector<double> search_change_deg;  // per view (empty without the grid search)
  // The largest, over the views, RMS displacement (pixels) of the atoms' images between the given
  // and the refined geometry.
  double change_px = 0;
  bool refined() const { return model_atoms >= 4; }
  bool changed() const { return refined() && change_px >= kChangePx; }
};
ViewAngles refine_view_angles(const Array3& views, const TiltGeometry& geometry,
                              const std::vector<Euler>& nominal, double tilt_axis_deg,
                              const Array3& volume, const AlignOptions& opt);

// Resamples views so that the geometry becomes a single-axis one about the image y axis with no
// shift: each view is shifted back and turned by the in-plane angle that brings the image of the
// volume y axis onto the image y axis (cubic convolution, zero outside). `residual_angles`, when
// given, receives each view's remaining Euler angles (theta, plus any small phi/psi left).
Array3 apply_alignment(const Array3& views, const TiltGeometry& geometry,
                       std::vector<Euler>* residual_angles);

// The in-plane rotation (degrees) and the remaining rotation that apply_alignment uses:
// R = Rz(gamma) R_residual with gamma chosen so that R maps the volume y axis into the
// (v, w) plane. Exposed for the .xf writer.
double inplane_angle_deg(const ViewGeometry& g);

}  // namespace aet
