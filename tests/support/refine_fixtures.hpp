// Particles, series and scores for the model-refinement tests (test_model_refinement,
// test_model_refinement_cli).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/atoms.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/phantoms/tilt_series.hpp"

namespace aet::test {

struct Case {
  AtomModel truth;
  phantoms::TiltSeries series;
};

// A randomly oriented particle (Pt: 147-atom cuboctahedron; FePt: a sphere of about 120 atoms)
// and its noisy single-axis series (tilt_series_spec(0.5, 56, 5, seed, true)).
Case make_case(const std::string& element, std::uint64_t seed);

// RMS distance (pm) of est atoms from Q truth atoms after the best translation.
double position_error_pm(const std::vector<Vec3>& est, const std::vector<Vec3>& truth,
                         const Mat3& Q);

// p with Gaussian displacements of sd Angstrom per axis.
std::vector<Vec3> displaced(const std::vector<Vec3>& p, double sd, std::uint64_t seed);

}  // namespace aet::test
