#include "aet/core/json.hpp"

#include <cmath>
#include <cstdio>

namespace aet {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

namespace {

// `s` as a quoted JSON string: quotes, backslashes and control characters escaped.
std::string json_escape(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\t':
        o += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o + "\"";
}

void write(std::string& o, const Json& j, bool top) {
  switch (j.type()) {
    case Json::value_t::object: {
      if (j.empty()) {
        o += "{}";
        return;
      }
      o += top ? "{\n  " : "{";
      bool first = true;
      for (const auto& [k, v] : j.items()) {
        if (!first) o += top ? ",\n  " : ", ";
        first = false;
        o += json_escape(k) + ": ";
        write(o, v, false);
      }
      o += top ? "\n}" : "}";
      return;
    }
    case Json::value_t::array: {
      o += "[";
      bool first = true;
      for (const auto& v : j) {
        if (!first) o += ", ";
        first = false;
        write(o, v, false);
      }
      o += "]";
      return;
    }
    case Json::value_t::number_float:
      o += json_number(j.get<double>());
      return;
    case Json::value_t::string:
      o += json_escape(j.get<std::string>());
      return;
    default:  // integers, booleans, null
      o += j.dump();
  }
}

}  // namespace

std::string json_text(const Json& j) {
  std::string o;
  write(o, j, true);
  return o + "\n";
}

}  // namespace aet
