// Training data for the missing-wedge network, made entirely by the project: random particles,
// analytic tilt series (phantoms/), RESIRE reconstructions (src/recon) as the network input and
// ideal Gaussian atom volumes as the target. Free of LibTorch, so the CLI and the tests can use it
// without the heavy headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"

namespace aet::nn {

// Ranges the generator draws from (uniformly unless said otherwise). The defaults cost about 6
// CPU-seconds a sample, almost all in RESIRE (docs/cli.md, make-training-set).
struct TrainingDataSpec {
  // Single elements (fcc Pt, Au, Pd, Ag; bcc Fe, W, Mo) or L1_0 alloys ("FePt", "CoPt").
  std::vector<std::string> elements = {"Pt", "Au", "Pd", "Ag", "Fe", "W", "Mo", "FePt", "CoPt"};
  // Particle shapes, drawn uniformly. "cuboctahedron" is the closed-shell cluster for fcc and the
  // {100} + {111} truncation of the same proportions for other lattices; "wulff" has {111} and
  // {100} facets (and {110} half of the time) at random relative distances.
  std::vector<std::string> shapes = {"sphere",        "octahedron", "truncated-octahedron",
                                     "cuboctahedron", "wulff",      "random"};
  double radius_min = 5.0, radius_max = 9.0;         // Angstrom: radius of the equal-volume sphere
  double tilt_max_min = 55.0, tilt_max_max = 80.0;   // +-tilt_max, degrees
  std::vector<double> tilt_steps = {2.0, 3.0, 4.0};  // degrees, one drawn per sample
  double dose_min = 3e4, dose_max = 3e5;             // e/A^2 per view, log-uniform
  double jitter_sd = 0.2;          // Angstrom: per-atom displacement sd, drawn in [0.75, 1.25] x
                                   // this; the B factor follows (8 pi^2 sd^2)
  double vacancy_max = 0.05;       // vacancy fraction drawn in [0, max]
  double angle_error_sd = 0.2;     // degrees, Gaussian error on each Euler angle of each view
  double tail_fraction_max = 0.1;  // probe tail fraction drawn in [0, max] (tail sigma 4 A)
  // Smooth view background (the simulator's: mean = this fraction of the view mean, with its
  // shot noise, so that vacuum is noisy), drawn in [0, max]. Off by default: the shipped model was
  // trained without it, and training with 0.1 did not change its gain on the pipeline's
  // simulations, which have 0.05 (docs/network.md, measured).
  double background_max = 0.0;
  // Fraction of the particles turned so that their lattice axes lie along the frame's (a low-index
  // zone axis along the beam at zero tilt and along the tilt axis, as experiments are often set
  // up and as the catalogue phantoms are), each further misoriented by a rotation of up to
  // zone_axis_tilt degrees about a random axis; the rest are oriented at random.
  double zone_axis_fraction = 0.0;
  double zone_axis_tilt = 3.0;  // degrees
  double pixel = 0.35;          // Angstrom: voxel size of inputs and targets
  double view_margin = 3.0;     // Angstrom of vacuum around the particle in the views
  // RESIRE for the input volume: 30 iterations of step 1.6 reach about the state of aet
  // reconstruct's default (50 of step 1.0; input-target correlation within 0.003) at 60 % of the
  // cost, so the network trains on inputs like those it will see. The step is stable below 2.
  int iterations = 30;
  double recon_step = 1.6;
  double target_sigma = 0.35;  // Angstrom: width of the ideal target atoms
};

// Throws InputError naming the field for an invalid spec (empty or unknown element or shape
// lists, reversed or non-positive ranges, tilt beyond 90 degrees, iterations < 1, ...).
void check_training_spec(const TrainingDataSpec& spec);

struct TrainingSample {
  Array3 input;   // RESIRE reconstruction, normalised with normalise_volume
  Array3 target;  // ideal atom volume, same grid; peak of the heaviest species = 1
  // Atoms (Angstrom, centred on voxel n // 2) with "b_factor" and the particle's provenance in
  // info (element, structure, shape, size, vacancy_fraction, jitter_sd, orientation, seed).
  AtomModel truth;
  double tilt_max = 0, tilt_step = 0, dose = 0;
  std::uint64_t seed = 0;
};

// One sample, deterministic for (spec, seed) whatever the thread count (and, up to the float
// rounding of the device's projector, the device). Every random draw comes from aet::Rng streams
// of `seed`. The cube volume is the width of the views, which fit the particle with view_margin.
TrainingSample make_training_sample(const TrainingDataSpec& spec, std::uint64_t seed,
                                    const Device& dev);

// The particle of sample `seed` (the truth of make_training_sample, centred, randomly oriented),
// without simulating or reconstructing: cheap, for checking what a spec draws.
AtomModel training_particle(const TrainingDataSpec& spec, std::uint64_t seed);

// Seed of sample `index` of a set made with seed `base`: hashed, so that sets made with nearby
// base seeds share no sample.
std::uint64_t training_sample_seed(std::uint64_t base, std::uint64_t index);

// The ideal target: every atom a Gaussian of width sigma (Angstrom) with peak height
// (Z / Z_max)^1.7 (Z_max the heaviest species of the model), on an nx x ny x nz grid of voxel
// size `voxel`, centred as the reconstruction (index n // 2 is the origin). Values are sampled at
// voxel centres and each Gaussian is cut off beyond 4 sigma; overlapping atoms add.
Array3 ideal_atom_volume(const AtomModel& atoms, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                         double voxel, double sigma);

// The intensity scale that normalisation divides by: a robust estimate of the height of the
// strongest atoms (no hand-set factor), > 0 for any volume with a positive voxel; throws
// InputError for an empty, all-zero or non-finite volume.
// Method: the local maxima (26 neighbours) with a positive value; the reference height is the
// 4th highest of them (so up to three hot voxels are ignored); the scale is the median height of
// the maxima at or above half the reference, i.e. of the peaks of the heaviest species.
// Order statistics only, so normalisation_scale(k v) = k normalisation_scale(v) for k > 0.
double normalisation_scale(const Array3& volume);
// volume / normalisation_scale(volume); returns the scale used.
double normalise_volume(Array3& volume);

// HDF5 training set: samples with their provenance (spec and seeds). Writing is atomic; reading
// checks every dataset and names the file in every error.
//
// Layout: root attributes format = "aet-training-set", format_version = 1, count, aet_version,
// created, command_line, config, and the spec (one attribute per field, lists as arrays or
// comma-separated text). Group sample_NNNNNN (6 digits, 0-based) per sample: input and target
// (float32, stored (nz, ny, nx) so x is fastest, deflate-compressed, attribute voxel_size),
// truth/positions (N x 3 float64, Angstrom), truth/species (N strings), truth/<property> (N
// float64, e.g. b_factor; the atom info as string attributes of truth), scalars tilt_max,
// tilt_step, dose (float64) and seed (uint64).
class TrainingSetWriter {
 public:
  // Creates PATH.tmp.<pid>; the file appears at PATH on commit() only, and is removed when the
  // writer is destroyed without commit().
  TrainingSetWriter(const std::string& path, const TrainingDataSpec& spec,
                    const std::string& command_line = "", const std::string& config = "");
  ~TrainingSetWriter();
  TrainingSetWriter(const TrainingSetWriter&) = delete;
  TrainingSetWriter& operator=(const TrainingSetWriter&) = delete;
  void add(const TrainingSample& sample);  // written now: a large set needs no memory to build
  std::size_t count() const;
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void write_training_set(const std::string& path, const std::vector<TrainingSample>& samples,
                        const TrainingDataSpec& spec);
// `spec`, when given, receives the spec the set was made with.
std::vector<TrainingSample> read_training_set(const std::string& path,
                                              TrainingDataSpec* spec = nullptr);

}  // namespace aet::nn
