// Training data for the missing-wedge network, made entirely by the project: random particles,
// analytic tilt series (phantoms/), RESIRE reconstructions (src/recon) as the network input and
// ideal Gaussian atom volumes as the target. Free of LibTorch, so the CLI and the tests can use it
// without the heavy headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"

namespace aet::nn {

// Ranges the generator draws from (uniformly unless said otherwise).
struct TrainingDataSpec {
  std::vector<std::string> elements = {"Pt", "Au", "Pd", "Ag", "Fe", "W", "Mo", "FePt", "CoPt"};
  double radius_min = 6.0, radius_max = 10.0;   // Angstrom, particle size
  double tilt_max_min = 55.0, tilt_max_max = 80.0;  // +-tilt_max, degrees
  std::vector<double> tilt_steps = {2.0, 3.0, 4.0};  // degrees
  double dose_min = 3e4, dose_max = 3e5;        // e/A^2 per view, log-uniform
  double jitter_sd = 0.2;                        // Angstrom, per-atom thermal displacement
  double vacancy_max = 0.05;                     // vacancy fraction drawn in [0, max]
  double angle_error_sd = 0.2;                   // degrees, per view
  double pixel = 0.35;                           // Angstrom: voxel size of inputs and targets
  int iterations = 30;                           // RESIRE iterations for the input volume
  double target_sigma = 0.35;                    // Angstrom: width of the ideal target atoms
};

struct TrainingSample {
  Array3 input;   // RESIRE reconstruction, normalised with normalise_volume
  Array3 target;  // ideal atom volume, same grid; peak of the heaviest species = 1
  AtomModel truth;
  double tilt_max = 0, tilt_step = 0, dose = 0;
  std::uint64_t seed = 0;
};

// One sample, deterministic for (spec, seed) whatever the device or thread count.
TrainingSample make_training_sample(const TrainingDataSpec& spec, std::uint64_t seed,
                                    const Device& dev);

// The ideal target: every atom a Gaussian of width sigma (Angstrom) with peak height
// (Z / Z_max)^1.7 (Z_max the heaviest species of the model), on an nx x ny x nz grid of voxel
// size `voxel`, centred as the reconstruction (index n // 2 is the origin).
Array3 ideal_atom_volume(const AtomModel& atoms, std::int64_t nx, std::int64_t ny,
                         std::int64_t nz, double voxel, double sigma);

// The intensity scale that normalisation divides by: a robust estimate of the height of the
// strongest atoms (no hand-set factor), > 0 for any volume with a positive voxel; throws
// InputError for an empty, all-zero or non-finite volume.
double normalisation_scale(const Array3& volume);
// volume / normalisation_scale(volume); returns the scale used.
double normalise_volume(Array3& volume);

// HDF5 training set: samples with their provenance (spec and seeds). Writing is atomic; reading
// checks every dataset and names the file in every error.
void write_training_set(const std::string& path, const std::vector<TrainingSample>& samples,
                        const TrainingDataSpec& spec);
std::vector<TrainingSample> read_training_set(const std::string& path);

}  // namespace aet::nn
