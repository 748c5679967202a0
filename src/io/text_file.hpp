// Shared by the text formats (angle files, extended XYZ): opening an input with a clear error,
// locale-independent number parsing and the shortest number text that reads back exactly.
#pragma once

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "aet/core/error.hpp"

namespace aet::io_detail {

// Opens `path` for reading or throws InputError naming it (missing, a directory, unreadable).
// `kind` names what the file should be ("an angle file").
inline std::ifstream open_text_input(const std::string& path, const std::string& kind) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail_file(path, "file not found");
  if (fs::is_directory(st)) fail_file(path, "is a directory, not " + kind);
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    fail_file(path, std::string("cannot open for reading") +
                        (err ? std::string(": ") + std::strerror(err) : std::string()));
  }
  return in;
}

// Fixed six decimals when that reads back exactly (the usual case, and what IMOD users expect
// to see); otherwise the shortest %g form that round-trips, so no writer ever loses precision.
inline std::string format_number(double v) {
  char buf[64];
  // %.6f of a large value does not fit: then the %g form below, never a truncated number.
  const int n = std::snprintf(buf, sizeof buf, "%.6f", v);
  if (n > 0 && n < static_cast<int>(sizeof buf) && std::strtod(buf, nullptr) == v) return buf;
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
