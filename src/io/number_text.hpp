// Number <-> text for the text formats (angle files, extended XYZ): locale-independent parsing
// and the shortest text that reads back exactly.
#pragma once

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace aet::io_detail {

// Fixed six decimals when that reads back exactly (the usual case, and what IMOD users expect
// to see); otherwise the shortest %g form that round-trips, so no writer ever loses precision.
inline std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  if (std::strtod(buf, nullptr) == v) return buf;
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// Parses a whole token as a double; from_chars is locale-independent, unlike strtod.
inline bool parse_double(const std::string& token, double& out) {
  const char* first = token.data();
  const char* last = token.data() + token.size();
  if (first != last && *first == '+') ++first;
  if (first == last) return false;
  const auto res = std::from_chars(first, last, out);
  return res.ec == std::errc() && res.ptr == last;
}

}  // namespace aet::io_detail
