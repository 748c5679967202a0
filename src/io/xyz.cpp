#include "aet/io/xyz.hpp"
#include "io/text_file.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/io/atomic_file.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

// Keys the writer emits itself; copies in model.info are not repeated.
bool reserved_key(const std::string& key) {
  return key == "Properties" || key == "pbc" || key == "Lattice";
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool blank(const std::string& s) {
  for (char c : s)
    if (!is_space(c)) return false;
  return true;
}

using io_detail::format_number;
using io_detail::parse_double;

bool parse_count(std::string s, std::uint64_t& n) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i == s.size()) return false;
  const auto res = std::from_chars(s.data() + i, s.data() + s.size(), n);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

bool parse_logical(std::string s, double& out) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "t" || s == "true" || s == "1") return out = 1.0, true;
  if (s == "f" || s == "false" || s == "0") return out = 0.0, true;
  return false;
}

// "PT", "pt" and "Pt" all name platinum; anything else must be a real element symbol.
std::string normalise_symbol(const std::string& s) {
  std::string out = s;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return out;
}

// Species from a symbol or, as some codes write, an atomic number.
std::string species_from_token(const std::string& path, const std::string& where,
                               const std::string& token) {
  std::uint64_t z = 0;
  if (!token.empty() && std::isdigit(static_cast<unsigned char>(token[0])) &&
      parse_count(token, z)) {
    if (z < 1 || z > all_elements().size())
      fail_file(path, where + "unknown atomic number " + token);
    return element_by_z(static_cast<int>(z)).symbol;
  }
  const std::string sym = normalise_symbol(token);
  if (!find_element(sym)) fail_file(path, where + "unknown element symbol '" + token + "'");
  return sym;
}

struct KeyValue {
  std::string key, value;
};

// The comment-line grammar ASE reads: whitespace-separated key=value pairs, values optionally
// quoted ("..." or '...') or bracketed ({...} or [...]), backslash escaping the next character,
// a bare key meaning key=T.
std::vector<KeyValue> parse_comment(const std::string& line) {
  std::vector<KeyValue> out;
  std::size_t i = 0;
  const std::size_t n = line.size();
  auto read_part = [&](bool stop_at_eq) {
    std::string s;
    char close = 0;
    for (; i < n; ++i) {
      const char c = line[i];
      if (c == '\\' && i + 1 < n) {
        s.push_back(line[++i]);
      } else if (close) {
        if (c == close)
          close = 0;
        else
          s.push_back(c);
      } else if (c == '"' || c == '\'') {
        close = c;
      } else if (c == '{') {
        close = '}';
      } else if (c == '[') {
        close = ']';
      } else if (is_space(c) || (stop_at_eq && c == '=')) {
        break;
      } else {
        s.push_back(c);
      }
    }
    return s;
  };
  while (i < n) {
    while (i < n && is_space(line[i])) ++i;
    if (i >= n) break;
    KeyValue kv;
    kv.key = read_part(true);
    if (i < n && line[i] == '=') {
      ++i;
      kv.value = read_part(false);
    } else {
      kv.value = "T";
    }
    if (!kv.key.empty()) out.push_back(std::move(kv));
  }
  return out;
}

std::string quote_value(const std::string& raw) {
  std::string v;
  // Every character the reader splits on becomes a space (and the value is then quoted): a
  // vertical tab or form feed left bare split a value into words, one of which could read as a
  // key (found by fuzzing: a value holding "\vProperties\v" came back as Properties=T).
  for (char c : raw) v.push_back(c == '\n' || is_space(c) ? ' ' : c);
  bool needs = v.empty();
  for (char c : v)
    if (c == ' ' || c == '=' || c == '"' || c == '\'' || c == '\\' || c == '{' || c == '}' ||
        c == '[' || c == ']')
      needs = true;
  if (!needs) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  q.push_back('"');
  return q;
}

// Keys and property names are bare words in the format: characters that would split or quote
// them are replaced.
std::string sanitise_name(const std::string& raw, bool colon_too) {
  std::string s = raw;
  for (char& c : s)
    if (is_space(c) || c == '\n' || c == '=' || c == '"' || c == '\'' || c == '\\' || c == '{' ||
        c == '}' || c == '[' || c == ']' || (colon_too && c == ':'))
      c = '_';
  return s;
}

struct Column {
  std::string name;
  char type = 'R';
  int ncols = 1;
};

std::vector<Column> parse_properties(const std::string& path, const std::string& spec) {
  std::vector<std::string> f;
  std::size_t start = 0;
  for (;;) {
    const auto colon = spec.find(':', start);
    f.push_back(spec.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (f.size() % 3 != 0)
    fail_file(path,
              "line 2: malformed Properties '" + spec + "' (expected name:type:columns triples)");
  std::vector<Column> cols;
  for (std::size_t i = 0; i < f.size(); i += 3) {
    Column c;
    c.name = f[i];
    std::uint64_t k = 0;
    if (c.name.empty() || f[i + 1].size() != 1 ||
        std::string("SRIL").find(f[i + 1][0]) == std::string::npos)
      fail_file(path, "line 2: malformed Properties entry '" + f[i] + ":" + f[i + 1] + ":" +
                          f[i + 2] + "' (type must be S, R, I or L)");
    if (!parse_count(f[i + 2], k) || k < 1 || k > 1000)
      fail_file(path, "line 2: bad column count '" + f[i + 2] + "' for property '" + c.name + "'");
    c.type = f[i + 1][0];
    c.ncols = static_cast<int>(k);
    cols.push_back(c);
  }
  return cols;
}

// A coordinate as %14.6f, however long: the whole number, never cut at a buffer's end.
std::string fixed_column(double v) {
  const int n = std::snprintf(nullptr, 0, "%14.6f", v);
  if (n < 0) throw InternalError("cannot format the coordinate " + std::to_string(v));
  std::string s(static_cast<std::size_t>(n) + 1, '\0');
  std::snprintf(s.data(), s.size(), "%14.6f", v);
  s.resize(static_cast<std::size_t>(n));
  return s;
}

}  // namespace

void write_xyz(const std::string& path, const AtomModel& model) {
  const std::size_t n = model.size();
  if (model.species.size() != n)
    throw InternalError(path + ": atom model has " + std::to_string(model.species.size()) +
                        " species for " + std::to_string(n) + " positions");
  std::string props = "species:S:1:pos:R:3";
  std::vector<const std::vector<double>*> columns;
  for (const auto& p : model.properties) {
    if (p.second.size() != n)
      throw InternalError(path + ": property '" + p.first + "' has " +
                          std::to_string(p.second.size()) + " values for " + std::to_string(n) +
                          " atoms");
    const std::string name = sanitise_name(p.first, true);
    if (name.empty() || name == "species" || name == "pos")
      throw InternalError(path + ": property name '" + p.first + "' clashes with a fixed column");
    props += ":" + name + ":R:1";
    columns.push_back(&p.second);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!find_element(model.species[i]))
      throw InternalError(path + ": atom " + std::to_string(i) + " has unknown species '" +
                          model.species[i] + "'");
    const Vec3& p = model.positions[i];
    if (!std::isfinite(p.x()) || !std::isfinite(p.y()) || !std::isfinite(p.z()))
      throw InternalError(path + ": atom " + std::to_string(i) + " has a NaN/Inf position");
    for (const auto* c : columns)
      if (!std::isfinite((*c)[i]))
        throw InternalError(path + ": atom " + std::to_string(i) + " has a NaN/Inf property");
  }

  std::string comment;
  if (const std::string* lattice = model.find_info("Lattice"))
    comment += "Lattice=" + quote_value(*lattice) + " ";
  comment += "Properties=" + props;
  for (const auto& kv : model.info) {
    const std::string key = sanitise_name(kv.first, false);
    if (key.empty() || reserved_key(key)) continue;
    comment += " " + key + "=" + quote_value(kv.second);
  }
  const std::string* pbc = model.find_info("pbc");
  comment += " pbc=" + quote_value(pbc ? *pbc : "F F F");

  AtomicFile f(path);
  std::ofstream& out = f.stream();
  out << n << '\n' << comment << '\n';
  std::string line;
  for (std::size_t i = 0; i < n; ++i) {
    const Vec3& p = model.positions[i];
    line = model.species[i];
    if (line.size() < 2) line.resize(2, ' ');
    for (int k = 0; k < 3; ++k) line += " " + fixed_column(p[k]);
    for (const auto* c : columns) line += " " + format_number((*c)[i]);
    out << line << '\n';
  }
  f.commit();
}

AtomModel read_xyz(const std::string& path) {
  // Larger coordinates are no particle in Angstrom: a unit mix-up or a corrupted file, which would
  // otherwise ask for absurd volumes further on.
  constexpr double kMaxCoordinate = 1e6;
  std::ifstream in = io_detail::open_text_input(path, "an XYZ file");

  std::string line;
  if (std::getline(in, line) && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // BOM
  if (!in || blank(line)) fail_file(path, "empty file (no atom count)");
  std::uint64_t count = 0;
  if (!parse_count(line, count))
    fail_file(path,
              "line 1: expected the atom count (a non-negative integer), found '" + line + "'");
  AtomModel model;
  std::string comment_line;
  if (!std::getline(in, comment_line)) {
    if (count == 0) return model;
    fail_file(path, "truncated: the count says " + std::to_string(count) +
                        " atoms but the file ends after line 1");
  }

  // Column layout: extended XYZ from Properties, plain XYZ (species x y z) otherwise.
  std::vector<Column> cols;
  bool extended = false;
  const std::vector<KeyValue> pairs = parse_comment(comment_line);
  for (const KeyValue& kv : pairs)
    if (kv.key == "Properties") {
      cols = parse_properties(path, kv.value);
      extended = true;
    }
  if (extended || comment_line.find('=') != std::string::npos) {
    for (const KeyValue& kv : pairs)
      if (kv.key != "Properties") model.set_info(kv.key, kv.value);
  } else if (!blank(comment_line)) {
    // A plain XYZ comment is free text, not key=value pairs: keep it whole.
    const auto first = comment_line.find_first_not_of(" \t\r");
    const auto last = comment_line.find_last_not_of(" \t\r");
    model.set_info("comment", comment_line.substr(first, last - first + 1));
  }
  if (!extended) cols = {{"species", 'S', 1}, {"pos", 'R', 3}};

  int species_col = -1, z_col = -1, pos_col = -1;
  std::size_t total = 0;
  std::vector<std::size_t> offset;
  for (std::size_t c = 0; c < cols.size(); ++c) {
    offset.push_back(total);
    total += static_cast<std::size_t>(cols[c].ncols);
    const Column& col = cols[c];
    if (col.name == "pos") {
      if (col.type != 'R' || col.ncols != 3)
        fail_file(path, "line 2: the pos property must be R:3");
      pos_col = static_cast<int>(c);
    } else if ((col.name == "species" || (col.name == "element" && species_col < 0)) &&
               col.type == 'S' && col.ncols == 1) {
      species_col = static_cast<int>(c);
    } else if (col.name == "Z" && col.type == 'I' && col.ncols == 1) {
      z_col = static_cast<int>(c);
    }
  }
  if (pos_col < 0) fail_file(path, "line 2: Properties has no pos:R:3 column");
  if (species_col < 0 && z_col < 0)
    fail_file(path, "line 2: Properties has no species (or element, or Z) column");

  // Per-atom real columns other than species/pos (string columns have nowhere to go).
  struct Target {
    std::size_t token;
    char type;
    std::string name;
  };
  std::vector<Target> targets;
  for (std::size_t c = 0; c < cols.size(); ++c) {
    const Column& col = cols[c];
    const int ci = static_cast<int>(c);
    if (ci == pos_col || ci == species_col || (species_col < 0 && ci == z_col) || col.type == 'S')
      continue;
    for (int k = 0; k < col.ncols; ++k)
      targets.push_back({offset[c] + static_cast<std::size_t>(k), col.type,
                         col.ncols == 1 ? col.name : col.name + "_" + std::to_string(k)});
  }
  std::vector<std::vector<double>> values(targets.size());

  const std::size_t reserve = static_cast<std::size_t>(std::min<std::uint64_t>(count, 1u << 20));
  model.species.reserve(reserve);
  model.positions.reserve(reserve);
  for (auto& v : values) v.reserve(reserve);

  long lineno = 2;
  for (std::uint64_t a = 0; a < count; ++a) {
    if (!std::getline(in, line))
      fail_file(path, "truncated: the count says " + std::to_string(count) + " atoms but only " +
                          std::to_string(a) + " atom lines follow");
    ++lineno;
    const std::string where = "line " + std::to_string(lineno) + ": ";
    const std::vector<std::string> tok = split_ws(line);
    if (tok.empty()) {
      // A blank line followed only by blank lines is a short file, not a malformed line.
      bool rest_blank = true;
      std::string rest;
      while (std::getline(in, rest))
        if (!blank(rest)) rest_blank = false;
      if (rest_blank)
        fail_file(path, "truncated: the count says " + std::to_string(count) + " atoms but only " +
                            std::to_string(a) + " atom lines follow");
    }
    if (tok.size() != total)
      fail_file(path, where + "expected " + std::to_string(total) + " columns, found " +
                          std::to_string(tok.size()));
    if (species_col >= 0)
      model.species.push_back(species_from_token(path, where, tok[offset[species_col]]));
    else
      model.species.push_back(species_from_token(path, where, tok[offset[z_col]]));
    double p[3];
    for (int k = 0; k < 3; ++k) {
      const std::string& t = tok[offset[pos_col] + static_cast<std::size_t>(k)];
      if (!parse_double(t, p[k]))
        fail_file(path, where + "cannot parse coordinate '" + t + "' as a number");
      if (!std::isfinite(p[k])) fail_file(path, where + "coordinate '" + t + "' is not finite");
      if (std::abs(p[k]) > kMaxCoordinate)
        fail_file(path, where + "coordinate '" + t +
                            "' is beyond 1e6 Angstrom (0.1 mm) from the origin; positions are in "
                            "Angstrom");
    }
    model.positions.emplace_back(p[0], p[1], p[2]);
    for (std::size_t j = 0; j < targets.size(); ++j) {
      const std::string& t = tok[targets[j].token];
      double v = 0;
      const bool ok = targets[j].type == 'L' ? parse_logical(t, v) : parse_double(t, v);
      if (!ok)
        fail_file(path, where + "cannot parse '" + t + "' for property '" + targets[j].name + "'");
      if (!std::isfinite(v))
        fail_file(path,
                  where + "value '" + t + "' of property '" + targets[j].name + "' is not finite");
      values[j].push_back(v);
    }
  }
  if (in.bad()) fail_file(path, "read error");

  // Anything after the atoms must be blank or the next frame of a trajectory (its count line);
  // otherwise the count on line 1 is wrong.
  while (std::getline(in, line)) {
    ++lineno;
    if (blank(line)) continue;
    std::uint64_t next = 0;
    if (!parse_count(line, next))
      fail_file(path, "line " + std::to_string(lineno) + ": more atom lines than the count " +
                          std::to_string(count) + " on line 1");
    break;
  }

  for (std::size_t j = 0; j < targets.size(); ++j)
    model.properties.emplace_back(targets[j].name, std::move(values[j]));
  return model;
}

}  // namespace aet
