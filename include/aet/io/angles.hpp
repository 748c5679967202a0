// Angle files: IMOD .tlt / .rawtlt (one tilt angle per line), 1-column text, and 3-column Euler
// text (phi theta psi, degrees, one view per line). '#' starts a comment; blank lines are skipped.
#pragma once

#include <string>
#include <vector>

#include "aet/geometry/rotation.hpp"

namespace aet {

enum class AngleFormat { tilt, euler };

struct AngleFile {
  AngleFormat format = AngleFormat::tilt;
  std::vector<Euler> views;  // a single-axis file gives (0, theta, 0) per line
  TiltGeometry geometry() const;
};

// Reads either layout (decided by the column count, which must be the same on every line).
// Rejects a missing or empty file, unparsable numbers, NaN/Inf, |angle| > 360, 2 or 4+ columns.
// When expected_views >= 0, a different count is an error naming both numbers.
AngleFile read_angles(const std::string& path, long expected_views = -1);

// Writes atomically: one angle per line for a single-axis series (.tlt), else phi theta psi.
void write_tilt_angles(const std::string& path, const std::vector<double>& tilts);
void write_euler_angles(const std::string& path, const std::vector<Euler>& views,
                        const std::string& comment = "");

}  // namespace aet
