// Angle files: IMOD .tlt / .rawtlt (one tilt angle per line), 1-column text, 3-column Euler
// text (phi theta psi, degrees, one view per line), and 5-column geometry text (phi theta psi
// shift_x shift_y: Euler angles in degrees and the view's shift in Angstrom, as written by
// `aet align` and by `aet simulate` for misaligned series). '#' starts a comment; blank lines are
// skipped.
#pragma once

#include <string>
#include <vector>

#include "aet/geometry/rotation.hpp"

namespace aet {

enum class AngleFormat { tilt, euler, geometry };

struct AngleFile {
  AngleFormat format = AngleFormat::tilt;
  std::vector<Euler> views;  // a single-axis file gives (0, theta, 0) per line
  std::vector<Vec2> shifts;  // Angstrom, one per view (zero unless the file has 5 columns)
  TiltGeometry geometry() const;
};

// Reads either layout (decided by the column count, which must be the same on every line).
// Rejects a missing or empty file, unparsable numbers, NaN/Inf, |angle| > 360, shifts beyond
// 1e6 Angstrom, and column counts other than 1, 3 or 5.
// When expected_views >= 0, a different count is an error naming both numbers (and
// `views_source`, the file the views come from, when given). A single-axis file of 5 or more
// tilts, not all zero, all within +-1.6 is refused as radians (aet reads degrees).
AngleFile read_angles(const std::string& path, long expected_views = -1,
                      const std::string& views_source = "");

// Writes atomically: one angle per line for a single-axis series (.tlt), else phi theta psi.
void write_tilt_angles(const std::string& path, const std::vector<double>& tilts);
void write_euler_angles(const std::string& path, const std::vector<Euler>& views,
                        const std::string& comment = "");
// Writes the 5-column geometry (phi theta psi shift_x shift_y) atomically.
void write_geometry(const std::string& path, const TiltGeometry& geometry,
                    const std::string& comment = "");

}  // namespace aet
