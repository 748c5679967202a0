// Internals of aet_align shared by its sources (coarse.cpp defines them, projection_matching.cpp
// uses them) and by tests/test_align.cpp; not part of the public API in include/aet/align/.
#pragma once

#include <cstdint>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::detail {

// Sub-pixel shift (pixels) that best moves `image` onto `reference` (both nx x ny, row-major x
// fastest): reference(x) ~ image(x - d) ... i.e. shifting image by +d matches reference.
// Found by FFT cross-correlation within max_shift and a parabolic fit of the peak.
Vec2 register_shift(const float* reference, const float* image, std::int64_t nx, std::int64_t ny,
                    double max_shift);
// Centre of mass (Angstrom, relative to the rotation centre) of each view, and the largest
// fraction, over the views, of the positive intensity that lies in the outer tenth of the view;
// for views wider than 10 kBorderFrameAngstrom, that in the outer kBorderFrameAngstrom scaled by
// the outer tenth's area over its own. (A particle of 90 A seen with 6 A to spare holds a third
// of its signal in the outer tenth of its views, as a film does; the last 4 A hold only its probe
// tail.)
constexpr double kBorderFrameAngstrom = 4.0;
std::vector<Vec2> centres_of_mass(const Array3& views, double* border_fraction);
// From this border fraction on, the object reaches the border of the views: a film, or a particle
// cut by the field (no centre of mass, no common line, no atomic model of the whole object).
constexpr double kFilmBorderFraction = 0.05;
// Common-line estimate of the tilt-axis rotation (degrees) for a single-axis series: the angle
// whose axis-parallel profiles agree best across views, searched in [-range, range].
double common_line_axis(const Array3& views, double range_deg);
// The misfit that common_line_axis minimises (0 for a perfect single-axis series).
double common_line_cost(const Array3& views, double alpha_deg);
// Coarse shifts (Angstrom) for views with rotation R_k: centre of mass for an isolated particle,
// else a cumulative cosine-stretched cross-correlation chain from the lowest tilt.
std::vector<Vec2> coarse_shifts(const Array3& views, const TiltGeometry& geometry,
                                double max_shift_px);
// Removes from `shifts` (Angstrom) the least-squares part s_k = [R_k t]_xy, a 3D translation of
// the object that no projection can see (the shift gauge).
void remove_translation(std::vector<Vec2>& shifts, const TiltGeometry& geometry);

}  // namespace aet::detail
