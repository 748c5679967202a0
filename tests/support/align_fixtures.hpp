// Tilt series for the alignment tests (test_align, test_align_cli).
#pragma once

#include <cstdint>

#include "aet/phantoms/tilt_series.hpp"

namespace aet::test {

// A noise-free 55-atom Pt cuboctahedron seen in 48 x 48 views of 0.4 A, tilts -72..72 degrees in
// `step`, with random shifts up to shift_px pixels and the tilt axis rotated by axis_deg.
phantoms::TiltSeries small_series(double shift_px, double axis_deg, std::uint64_t seed,
                                  double step = 6);

}  // namespace aet::test
