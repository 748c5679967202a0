// The chain as a library: align, reconstruct, the missing-wedge network, trace, refine and (with
// a truth) evaluate, on a tilt series given in memory or simulated from a built-in particle.
// `aet pipeline` maps its options onto PipelineOptions and writes the files; the benchmark, the
// report and cluster runs call run_pipeline directly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/analysis/analyze.hpp"
#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"
#include "aet/core/json.hpp"
#include "aet/core/progress.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/networks/stage.hpp"
#include "aet/recon/solvers.hpp"

namespace aet {

// A measured (or externally simulated) tilt series.
struct SeriesInput {
  Array3 views;                    // one view per z slice; voxel_size = pixel size
  std::vector<Euler> nominal;      // the views' nominal angles
  TiltGeometry geometry;           // the geometry they imply (no shifts)
  bool single_axis = true;         // angles given as tilts about one axis
  std::string source;              // where it came from (a file name), for provenance
  std::optional<AtomModel> truth;  // score the result against this model
};

// A built-in particle simulated with the demo's imaging (a probe tail and a smooth background).
struct SimulationInput {
  std::string phantom = "demo";
  std::string tilt_range = "-70:70:3";  // A:B:S degrees
  double dose = 5e4;                    // electrons per Angstrom^2 per view; 0 = no noise
  double shift_max_px = 0;              // misalignments (any of them turns alignment on)
  double axis_rotation_deg = 0;
  double angle_error_deg = 0;
};

enum class AlignMode {
  automatic,  // align a given series and a misaligned simulation; not an exact simulation
  on,
  off
};

struct PipelineOptions {
  std::vector<std::string> elements = {"Pt"};  // species by intensity, lightest first
  Algorithm algorithm = Algorithm::resire;
  int iterations = 50;
  AlignMode align = AlignMode::automatic;
  // Isolated particle or film; automatic: detect_sample on the views. A film keeps its background
  // and intensity in the alignment, and the network (trained on isolated particles) is outside
  // its domain (a warning).
  SampleKind sample = SampleKind::automatic;
  // The alignment's options (its device, seed and sample are the run's). Per-view angles are
  // refined against a traced atomic model for an isolated particle.
  AlignOptions alignment = [] {
    AlignOptions a;
    a.refine_angles = true;
    return a;
  }();
  bool refine = true;            // refine the traced atoms against the views
  double position_prior = 0.05;  // Angstrom; 0 = none
  bool probe_tail = false;       // the refinement fits a probe tail (ModelRefineOptions)
  // Trust per atom of the refined model: bootstrap replicates over the views (0 = the fit's
  // curvature alone; docs/refinement.md), seeded by `seed`.
  int bootstrap = 0;
  double min_distance = 2.0;  // Angstrom between atoms
  nn::StageOptions network;   // the missing-wedge network (device set by the caller)
  Device device;              // reconstruction, alignment and simulation
  std::uint64_t seed = 0;
  // A result that fails its check is an error (QualityError) instead of a warning.
  bool strict = false;
  // The analysis stage on the final model (lattice, strain, surface, facets; docs/analysis.md),
  // without its volumes.
  bool analysis = true;
  AnalyzeOptions analysis_options = [] {
    AnalyzeOptions a;
    a.volumes = false;
    return a;
  }();
  // Checkpoints (aet pipeline --checkpoint): the alignment, reconstruction and network results are
  // kept in this folder as each finishes, and a run with the same input and settings takes them
  // from it instead of computing them again (metrics "resumed"). Empty: none.
  std::string checkpoint_dir;
  // With checkpoints, plain RESIRE or SIRT keeps its progress every this many iterations, and a
  // stopped run goes on from the last (the same volume as an uninterrupted solve). 0: only the
  // finished stage.
  int checkpoint_every = 10;
  // Every setting of the run that changes a checkpointed result, as text (the CLI gives its
  // effective configuration): part of every checkpoint's key. Settings that change only one
  // stage and the stages after it go in `checkpoint_stage_settings` under the stage's name
  // ("align", "reconstruct", "network"): a change there leaves the earlier stages' checkpoints
  // valid. Settings of the stages after the network (tracing, refinement, analysis) are in none:
  // those stages always run.
  std::string checkpoint_settings;
  std::map<std::string, std::string> checkpoint_stage_settings;
};

// What a caller sees of a run while it goes: each log line (also kept in PipelineResult::log) and,
// when `progress` is set, the stages' progress (otherwise drawn on stderr as by every command).
struct PipelineObserver {
  std::function<void(const std::string& line)> log;
  ProgressCallback progress;
  // Each warning (also in PipelineResult::warnings); unset: they go to `log`, "warning: " first.
  std::function<void(const std::string& warning)> warning;
};

struct PipelineResult {
  SampleKind sample = SampleKind::particle;  // as given or detected
  // The series as reconstructed (aligned when alignment ran) and its geometry.
  Array3 views;
  std::vector<Euler> nominal;
  bool single_axis = true;
  bool simulated = false;
  bool aligned = false;
  TiltGeometry geometry;
  std::string source;
  std::optional<AtomModel> truth;
  ReconResult recon;
  std::string algorithm;                  // resire, sirt, ...
  std::optional<nn::ReconRecipe> recipe;  // RESIRE recipe of recon.volume (unset otherwise)
  bool network_used = false;
  std::string network_model;
  Array3 augmented;   // the network's output (empty when it did not run)
  AtomModel traced;   // as traced (from the network's volume when it ran)
  AtomModel refined;  // empty when refinement was off or nothing was traced
  // The final model: the refined atoms, else the traced ones.
  const AtomModel& atoms() const { return refined.size() > 0 ? refined : traced; }
  // metrics.json: the run's summary, evaluation against the truth (when there is one), with and
  // without the network, and the stages' seconds.
  Json metrics;
  std::string log;
  // What failed a stage's check, and which result was kept (also metrics["warnings"]).
  std::vector<std::string> warnings;
  // The analysis of atoms() (unset when it was off or the model had fewer than 4 atoms): its
  // summary in metrics["analysis"], analysis.json and the per-atom columns of atoms.xyz.
  std::optional<AnalysisResult> analysis;
};

// Runs the chain on `input`. Bad input or options are InputErrors (naming what is wrong), thrown
// before any long computation where they can be checked up front (the network model is loaded
// first). `command_line` is recorded in the metrics.
PipelineResult run_pipeline(SeriesInput input, const PipelineOptions& options,
                            const PipelineObserver& observer = {},
                            const std::string& command_line = "");
PipelineResult run_pipeline(const SimulationInput& input, const PipelineOptions& options,
                            const PipelineObserver& observer = {},
                            const std::string& command_line = "");

// The series run_pipeline(SimulationInput) runs on, for any atom model: `truth` simulated at the
// single-axis `tilts` (degrees) with the demo's imaging (pixel 0.35 A, a 10 % probe tail at 4 A, a
// 5 % smooth background), `in`'s dose and misalignment (its phantom and tilt_range are not used),
// noise and misalignment drawn from `seed` (run_pipeline uses its seed + 1). The geometry is the
// true one, or the nominal one when misaligned; `truth` is kept as the truth. InputError for a bad
// dose or misalignment, before any simulation.
SeriesInput simulate_series(const AtomModel& truth, const std::vector<double>& tilts,
                            const SimulationInput& in, std::uint64_t seed, const Device& device);

// The refinement's check, against the traced model it started from. `keep_traced`: the refined
// model is not to be trusted over the traced one, because its atom width (the refined projected
// width, Angstrom) is outside the physical range [0.1, 1.5] A or it fits the views worse (final R1
// more than 1 % above the initial). A refinement that removes more than half of the atoms, or
// more than 5 % of them, keeps its model (the views do not support those atoms: a background the
// forward model lacks, or wrong --elements, make many) but never silently: `warning` says so;
// unless the removed atoms carry more than a quarter of the refined intensity
// (`removed_intensity`, a fraction): the views support those, and the traced model is kept.
// Both are empty when the refinement passes.
struct RefinementCheck {
  bool keep_traced = false;
  std::string warning;
};
RefinementCheck check_refinement(std::size_t traced_atoms, std::size_t refined_atoms,
                                 double r1_initial, double r1_final, double width,
                                 double removed_intensity = 0);

// Checks the options (InputError naming the option).
void check_pipeline_options(const PipelineOptions& options);

// Writes the run's files into the existing folder `dir` (aet pipeline passes its staging folder):
// geometry.txt, reconstruction.mrc, augmented.mrc (when the network ran), atoms.xyz (the final
// model), traced.xyz (when refined), metrics.json, result.h5 (datasets and provenance) and
// pipeline.log (the command line, the log and the effective configuration); for a simulated input
// also tilts.mrc, tilts.tlt and truth.xyz.
void write_pipeline_files(const PipelineResult& result, const std::string& dir,
                          const Provenance& provenance);

}  // namespace aet
