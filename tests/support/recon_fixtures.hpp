// Fixtures shared by the reconstruction tests (test_recon, test_recon_gpu, test_genfire): a
// deterministic uniform generator, a general multi-axis geometry, the small simulated particle
// and an atom-finding score; and the geometry errors modulo gauges that the alignment and
// model-refinement tests score with.
#pragma once

#include <cstdint>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/phantoms/tilt_series.hpp"

namespace aet::test {

// Deterministic uniform numbers in [0, 1) (splitmix64), independent of the standard library.
class Uniform {
 public:
  explicit Uniform(std::uint64_t seed) : s_(seed) {}
  double operator()() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }

 private:
  std::uint64_t s_;
};

// An nx x ny x nz array of Uniform(seed) numbers with an isotropic voxel size.
Array3 random_array(std::int64_t nx, std::int64_t ny, std::int64_t nz, double voxel,
                    std::uint64_t seed);

// A smooth object for solver tests: five Gaussian blobs (sigma 1-2 voxels) placed for a 26 x 20
// x 22 grid, with an isotropic voxel size.
Array3 blob_object(std::int64_t nx, std::int64_t ny, std::int64_t nz, double voxel);

// Eight views: Euler triples with phi and psi away from zero, tilts on both sides of 45 degrees
// (the dominant axis switches from z to x) and one beam almost along y; shifts in Angstrom.
TiltGeometry general_geometry();

// A noise-free 55-atom Pt cuboctahedron, +-70 degrees in steps of 5, pixel 0.4 A, 40 x 40 views,
// with its nominal geometry and its ideal volume (40^3: the truth's Gaussian atoms widened by the
// probe, as the views see them). Made once per process.
struct SimulatedParticle {
  AtomModel model;
  phantoms::TiltSeries series;
  TiltGeometry geometry;
  double pixel = 0.4;
  Array3 ideal;
};
const SimulatedParticle& small_particle();

// A single-axis series: size x size views at `pixel` Angstrom, tilts -70..70 degrees in `step`,
// `seed`. With `noisy`, shot noise at 5e4 e/A^2 per view and 10 % of the intensity in the probe
// tail, which a one-Gaussian atom model cannot hold (the alignment and model-refinement tests).
phantoms::SimulationSpec tilt_series_spec(double pixel, std::int64_t size, double step,
                                          std::uint64_t seed, bool noisy);

// Fraction of atoms with a local maximum of the volume (26-neighbourhood, above 20 % of the peak,
// refined to sub-voxel by a parabola per axis) within `tol` Angstrom.
double fraction_of_atoms_found(const Array3& v, const AtomModel& model, double tol);

// The proper rotation Q with est[k].R Q ~ truth[k].R in least squares: the object rotation that
// no view can see.
Mat3 object_rotation(const TiltGeometry& est, const TiltGeometry& truth);
// RMS rotation error (degrees) of the views once object_rotation is removed.
double angle_error_deg(const TiltGeometry& est, const TiltGeometry& truth);

}  // namespace aet::test
