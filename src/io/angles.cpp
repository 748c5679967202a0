#include "aet/io/angles.hpp"
#include "io/text_file.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "aet/core/error.hpp"
#include "aet/io/atomic_file.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

constexpr double kMaxAngle = 360.0;
// A single-axis file whose tilts all lie within +-kRadianLimit (pi/2 and a little rounding) is
// in radians when it has at least this many views: no tilt series in degrees spans 3.2 degrees.
constexpr double kRadianLimit = 1.6;
constexpr std::size_t kMinViewsForUnitCheck = 5;

using io_detail::format_number;
using io_detail::parse_double;

std::vector<std::string> split_tokens(const std::string& s) {
  std::vector<std::string> tokens;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\v' || c == '\f') {
      if (!cur.empty()) tokens.push_back(cur), cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) tokens.push_back(cur);
  return tokens;
}

void check_writable_values(const std::string& path, const std::vector<double>& values) {
  if (values.empty()) throw InternalError(path + ": no angles to write");
  for (double v : values)
    if (!std::isfinite(v)) throw InternalError(path + ": refusing to write a NaN/Inf angle");
}

}  // namespace

TiltGeometry AngleFile::geometry() const {
  TiltGeometry g;
  g.reserve(views.size());
  for (std::size_t i = 0; i < views.size(); ++i)
    g.push_back(ViewGeometry::from_euler(views[i], i < shifts.size() ? shifts[i] : Vec2::Zero()));
  return g;
}

AngleFile read_angles(const std::string& path, long expected_views,
                      const std::string& views_source) {
  std::ifstream in = io_detail::open_text_input(path, "an angle file");

  AngleFile af;
  std::size_t columns = 0;
  long columns_line = 0;
  std::string line;
  long lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // editor BOM
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const std::vector<std::string> tokens = split_tokens(line);
    if (tokens.empty()) continue;
    const std::string where = "line " + std::to_string(lineno) + ": ";
    if (columns == 0) {
      columns = tokens.size();
      columns_line = lineno;
      if (columns != 1 && columns != 3 && columns != 5)
        fail_file(path, where + std::to_string(columns) +
                            " columns; expected 1 (tilt angle per line, IMOD .tlt/.rawtlt), "
                            "3 (phi theta psi Euler angles) or 5 (phi theta psi shift_x "
                            "shift_y)");
    } else if (tokens.size() != columns) {
      fail_file(path, where + std::to_string(tokens.size()) + " columns but line " +
                          std::to_string(columns_line) + " has " + std::to_string(columns));
    }
    double v[5] = {0, 0, 0, 0, 0};
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const bool shift = i >= 3;
      if (!parse_double(tokens[i], v[i]))
        fail_file(path, where + "cannot parse '" + tokens[i] + "' as a number");
      if (!std::isfinite(v[i]))
        fail_file(path, where + (shift ? "shift '" : "angle '") + tokens[i] + "' is not finite");
      if (!shift && std::abs(v[i]) > kMaxAngle)
        fail_file(path, where + "angle " + tokens[i] +
                            " is out of range (|angle| must be at most 360 degrees)");
      if (shift && std::abs(v[i]) > 1e6)
        fail_file(path, where + "shift " + tokens[i] + " Angstrom is implausibly large");
    }
    Euler e;
    if (columns == 1) {
      e.theta = v[0];
    } else {
      e.phi = v[0];
      e.theta = v[1];
      e.psi = v[2];
    }
    af.views.push_back(e);
    af.shifts.emplace_back(v[3], v[4]);
  }
  if (in.bad()) fail_file(path, "read error");
  if (af.views.empty()) fail_file(path, "no angles found (the file is empty or all comments)");
  af.format = columns == 1   ? AngleFormat::tilt
              : columns == 3 ? AngleFormat::euler
                             : AngleFormat::geometry;
  if (expected_views >= 0 && static_cast<long>(af.views.size()) != expected_views)
    fail_file(path, std::to_string(af.views.size()) + " angles but " +
                        std::to_string(expected_views) + " views" +
                        (views_source.empty() ? "" : " in " + views_source));
  // Tilts in radians stay within +-pi/2; in degrees a series never does (a few views may).
  if (af.format == AngleFormat::tilt && af.views.size() >= kMinViewsForUnitCheck) {
    double largest = 0;
    for (const Euler& e : af.views) largest = std::max(largest, std::abs(e.theta));
    if (largest > 0 && largest <= kRadianLimit)
      fail_file(path, "all " + std::to_string(af.views.size()) + " tilt angles lie within +-" +
                          format_number(largest) +
                          ": these look like radians, but aet reads degrees; convert the file "
                          "(multiply by 180/pi)");
  }
  return af;
}

void write_tilt_angles(const std::string& path, const std::vector<double>& tilts) {
  check_writable_values(path, tilts);
  AtomicFile f(path);
  for (double t : tilts) f.stream() << format_number(t) << '\n';
  f.commit();
}

void write_euler_angles(const std::string& path, const std::vector<Euler>& views,
                        const std::string& comment) {
  std::vector<double> all;
  all.reserve(views.size() * 3);
  for (const Euler& e : views) all.insert(all.end(), {e.phi, e.theta, e.psi});
  check_writable_values(path, all);
  AtomicFile f(path);
  std::ofstream& out = f.stream();
  // Each comment line is prefixed so a multi-line comment cannot break the table.
  std::size_t start = 0;
  while (!comment.empty() && start <= comment.size()) {
    const auto nl = comment.find('\n', start);
    const std::string piece =
        comment.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    out << "# " << piece << '\n';
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out << "# phi theta psi (degrees), one row per view, in stack order\n";
  for (const Euler& e : views)
    out << format_number(e.phi) << ' ' << format_number(e.theta) << ' ' << format_number(e.psi)
        << '\n';
  f.commit();
}

void write_geometry(const std::string& path, const TiltGeometry& geometry,
                    const std::string& comment) {
  std::vector<double> all;
  all.reserve(geometry.size() * 5);
  std::vector<Euler> eulers;
  for (const ViewGeometry& g : geometry) {
    const Euler e = g.euler();
    eulers.push_back(e);
    all.insert(all.end(), {e.phi, e.theta, e.psi, g.shift.x(), g.shift.y()});
  }
  check_writable_values(path, all);
  AtomicFile f(path);
  std::ofstream& out = f.stream();
  if (!comment.empty()) out << "# " << comment << '\n';
  out << "# phi theta psi (degrees, R = (Rz(phi) Ry(theta) Rx(psi))^T)  shift_x shift_y "
         "(Angstrom, added to u and v), one row per view\n";
  for (std::size_t i = 0; i < geometry.size(); ++i)
    out << format_number(eulers[i].phi) << ' ' << format_number(eulers[i].theta) << ' '
        << format_number(eulers[i].psi) << ' ' << format_number(geometry[i].shift.x()) << ' '
        << format_number(geometry[i].shift.y()) << '\n';
  f.commit();
}

}  // namespace aet
