// Internals shared by the refinement (model_refinement.cpp) and its trust per atom
// (uncertainty.cpp): the pixel masses of one atom along an axis, and the refinement without the
// trust (the bootstrap's replicates).
#pragma once

#include <array>
#include <cstdint>

#include "aet/refine/model_refinement.hpp"

namespace aet::detail {

constexpr double kRefineReach = 5.0;  // sigmas: the mass beyond is 6e-7 of an atom
constexpr int kRefineMaxPixels = 96;  // per axis of one footprint; sigma is clamped to fit

// Masses of N(mu, s^2) over the pixels [lo, lo + count) of an axis of n pixels of size a (pixel
// j spans (j - n/2 -+ 1/2) a), with their derivatives by mu and by s.
struct Profile {
  std::int64_t lo = 0, count = 0;
  std::array<double, kRefineMaxPixels> m, dmu, ds;
};

void make_profile(double mu, double s, std::int64_t n, double a, Profile& p);

// refine_atomic_model's checks and fit, without the trust per atom (result.trust left empty).
ModelRefineResult refine_atoms_and_views(const Array3& views, const TiltGeometry& geometry,
                                         const AtomModel& atoms, const ModelRefineOptions& opt);

// Fills result.trust and the model's trust properties (sigma_x, sigma_y, sigma_z, weight_snr,
// weak; with a bootstrap also the curvature's and the bootstrap's sigmas): the curvature of the
// fit at the result, then opt.bootstrap replicates against views drawn with replacement.
void add_trust(const Array3& views, const ModelRefineOptions& opt, ModelRefineResult& result);

}  // namespace aet::detail
