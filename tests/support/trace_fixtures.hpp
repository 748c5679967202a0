// Planted-atom volumes for the tracing tests (test_trace, test_trace_cli): fcc sites at arbitrary
// sub-voxel offsets drawn as Gaussian atoms (phantoms::ideal_volume), and the one-to-one matching
// that scores a traced model against them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/project_atoms.hpp"

namespace aet::test {

constexpr double kVoxel = 0.35;  // Angstrom
constexpr double kSigma = 0.45;  // Angstrom, atom width

struct Planted {
  phantoms::GaussianAtoms atoms;
  std::vector<std::string> species;
  Array3 volume;
};

// Weight of an atom per the simulator's intensity model (Z^1.7).
double z_weight(const std::string& symbol);

// Sites of an fcc lattice (constant a) within `radius` of a random sub-voxel origin, each jittered
// by `jitter` (sd per axis), so that atoms sit at arbitrary sub-voxel offsets.
std::vector<Vec3> jittered_fcc(double a, double radius, double jitter, Rng& rng);

// An n^3 volume (voxel kVoxel) of the atoms at `pos` (width kSigma, weight z_weight), with
// Gaussian noise of sd noise_sd times the peak when noise_sd > 0.
Planted make_volume(const std::vector<Vec3>& pos, const std::vector<std::string>& species,
                    std::int64_t n, double noise_sd, std::uint64_t seed);

struct Match {
  std::size_t matched = 0, extra = 0, missing = 0, species_ok = 0;
  double rms = 0;  // Angstrom
};

// One-to-one matching within 0.7 A (well under half the atom spacing).
Match match(const Planted& truth, const AtomModel& traced);

// A jittered Pt fcc particle (a = 3.6 A, radius 7.5 A) in a 56^3 volume.
Planted pt_particle(double noise_sd, std::uint64_t seed);

}  // namespace aet::test
