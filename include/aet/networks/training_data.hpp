// Training data for the missing-wedge network, made entirely by the project: random particles,
// analytic tilt series (phantoms/), RESIRE reconstructions (src/recon) as the network input and
// ideal Gaussian atom volumes as the target. Free of LibTorch, so the CLI and the tests can use it
// without the heavy headers. Includes the spec and sample types, the normalisation and the HDF5
// set file, so that this one header serves every user of training data.
#pragma once

#include <cstdint>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"
#include "aet/networks/normalisation.hpp"
#include "aet/networks/training_set.hpp"
#include "aet/networks/training_spec.hpp"

namespace aet::nn {

// One sample, deterministic for (spec, seed) whatever the thread count (and, up to the float
// rounding of the device's projector, the device). Every random draw comes from aet::Rng streams
// of `seed`. The cube volume is the width of the views, which fit the particle with view_margin.
TrainingSample make_training_sample(const TrainingDataSpec& spec, std::uint64_t seed,
                                    const Device& dev);

// A sample from a tilt series the project did not simulate (multislice, or measured views with a
// published model): its reconstruction by the spec's recipe (RESIRE, spec.iterations, spec.step,
// positivity, the given geometry) as the input and the ideal atom volume of `truth` as the target,
// on the views' width in every direction, as make_training_sample does. The views must be square
// with pixels of spec.pixel (the network learns one scale; the caller names the file when they
// are not) and the truth in their frame (centred on voxel n // 2). tilt_max and tilt_step are
// read off the geometry; dose is 0 (not known here).
TrainingSample training_sample_from_series(const Array3& views, const TiltGeometry& geometry,
                                           const AtomModel& truth, const TrainingDataSpec& spec,
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

}  // namespace aet::nn
