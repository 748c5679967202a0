// What a training sample for the missing-wedge network is made from (the ranges the generator
// draws from) and what it holds: shared by the sampler (training_data.hpp) and the HDF5 set file
// (training_set.hpp). Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"

namespace aet::nn {

// Ranges the generator draws from (uniformly unless said otherwise). The defaults cost about 6
// CPU-seconds a sample, almost all in RESIRE (docs/cli.md, make-training-set).
struct TrainingDataSpec {
  // Single elements (fcc Pt, Au, Pd, Ag; bcc Fe, W, Mo) or L1_0 alloys ("FePt", "CoPt").
  std::vector<std::string> elements = {"Pt", "Au", "Pd", "Ag", "Fe", "W", "Mo", "FePt", "CoPt"};
  // Particle shapes, drawn uniformly. "cuboctahedron" is the closed-shell cluster for fcc and the
  // {100} + {111} truncation of the same proportions for other lattices; "wulff" has {111} and
  // {100} facets (and {110} half of the time) at random relative distances; "decahedron" (not
  // drawn by default) the five-fold twinned particle for fcc elements, a truncated octahedron for
  // the others.
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

}  // namespace aet::nn
