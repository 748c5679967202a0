// The sweep file: read with the parser of aet's --config files (boost::program_options' INI
// syntax: `key = value`, `# comment`, `[section]`), then every section and key checked here, so
// that a typo is an error naming the file, the section and the key instead of a silent default.
#include "aet/benchmark/sweep.hpp"
#include "aet/core/option_error.hpp"

#include <boost/program_options.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace aet {

namespace {

using Section = std::map<std::string, std::string>;  // key -> value

struct Reader {
  std::string path;
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    fail_file(path, where.empty() ? what : "[" + where + "] " + what);
  }
};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

// "a, b, c" -> {"a", "b", "c"}; an empty item (", ," or a trailing comma) is kept for the caller
// to refuse.
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  for (char c : s) {
    if (c == ',') {
      out.push_back(trim(item));
      item.clear();
    } else {
      item += c;
    }
  }
  if (!trim(s).empty()) out.push_back(trim(item));
  return out;
}

double number(const Reader& r, const std::string& sec, const std::string& key,
              const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    r.fail(sec, key + " = " + text + ": '" + text + "' is not a number");
  return v;
}

std::vector<double> numbers(const Reader& r, const std::string& sec, const std::string& key,
                            const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split_list(text)) {
    if (item.empty()) r.fail(sec, key + " = " + text + ": an empty item in the list");
    out.push_back(number(r, sec, key, item));
  }
  if (out.empty()) r.fail(sec, key + " is empty");
  return out;
}

bool yes_no(const Reader& r, const std::string& sec, const std::string& key,
            const std::string& text) {
  if (text == "yes" || text == "true" || text == "on" || text == "1") return true;
  if (text == "no" || text == "false" || text == "off" || text == "0") return false;
  r.fail(sec, key + " = " + text + ": expected yes or no");
}

// A folder-safe name: particles and methods name case folders and method subfolders.
void check_name(const Reader& r, const std::string& kind, const std::string& name) {
  if (name.empty()) r.fail(kind, "a " + kind + " section needs a name: [" + kind + " NAME]");
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
          std::string::npos ||
      name[0] == '.')
    r.fail(kind + " " + name, "the name may hold only letters, digits, '-', '_' and '.'");
}

// "A:B" (degrees, stop inclusive), or "A" for -A:A.
TiltSpan tilt_span(const Reader& r, const std::string& item) {
  const std::string key = "tilt_ranges";
  const auto colon = item.find(':');
  TiltSpan s;
  if (colon == std::string::npos) {
    const double a = number(r, "sweep", key, item);
    s = TiltSpan{-std::fabs(a), std::fabs(a)};
  } else {
    if (item.find(':', colon + 1) != std::string::npos)
      r.fail("sweep", key + ": '" + item +
                          "': expected START:STOP in degrees (the step goes in steps or views)");
    s.start = number(r, "sweep", key, trim(item.substr(0, colon)));
    s.stop = number(r, "sweep", key, trim(item.substr(colon + 1)));
  }
  if (!(s.stop > s.start))
    r.fail("sweep", key + ": '" + item + "' is an empty range (STOP must be above START)");
  if (s.start < -90 || s.stop > 90)
    r.fail("sweep", key + ": '" + item + "' goes beyond +-90 degrees");
  return s;
}

void parse_sweep_section(const Reader& r, const Section& sec, Sweep& sw) {
  bool have_views = false;
  for (const auto& [key, value] : sec) {
    if (key == "tilt_ranges") {
      for (const auto& item : split_list(value)) {
        if (item.empty()) r.fail("sweep", "tilt_ranges = " + value + ": an empty item");
        sw.tilt_ranges.push_back(tilt_span(r, item));
      }
    } else if (key == "steps") {
      sw.steps = numbers(r, "sweep", key, value);
      for (double s : sw.steps)
        if (!(s > 0)) r.fail("sweep", "steps: " + fmt_g(s) + " is not a step (> 0 degrees)");
    } else if (key == "views") {
      have_views = true;
      for (double v : numbers(r, "sweep", key, value)) {
        if (!(v >= 2) || v != std::floor(v) || v > 10000)
          r.fail("sweep", "views: " + fmt_g(v) + " is not a number of views (an integer >= 2)");
        sw.views.push_back(static_cast<int>(v));
      }
    } else if (key == "doses") {
      sw.doses = numbers(r, "sweep", key, value);
      for (double d : sw.doses)
        if (!(d >= 0)) r.fail("sweep", "doses: " + fmt_g(d) + " is not a dose (>= 0)");
    } else if (key == "seeds") {
      sw.seeds.clear();
      for (double s : numbers(r, "sweep", key, value)) {
        if (!(s >= 0) || s != std::floor(s) || s > 9e15)
          r.fail("sweep", "seeds: " + fmt_g(s) + " is not a seed (an integer >= 0)");
        sw.seeds.push_back(static_cast<std::uint64_t>(s));
      }
    } else if (key == "shift_max") {
      sw.shift_max_px = number(r, "sweep", key, value);
      if (sw.shift_max_px < 0) r.fail("sweep", "shift_max must be >= 0 pixels");
    } else if (key == "axis_rotation") {
      sw.axis_rotation_deg = number(r, "sweep", key, value);
    } else if (key == "angle_error") {
      sw.angle_error_deg = number(r, "sweep", key, value);
      if (sw.angle_error_deg < 0) r.fail("sweep", "angle_error must be >= 0 degrees");
    } else if (key == "align_rounds") {
      const double n = number(r, "sweep", key, value);
      if (!(n >= 0) || n != std::floor(n) || n > 1000)
        r.fail("sweep", "align_rounds must be an integer >= 0");
      sw.align_rounds = static_cast<int>(n);
    } else if (key == "keep_volumes") {
      sw.keep_volumes = yes_no(r, "sweep", key, value);
    } else {
      r.fail("sweep", "unknown key '" + key +
                          "' (tilt_ranges, steps, views, doses, seeds, shift_max, axis_rotation, "
                          "angle_error, align_rounds, keep_volumes)");
    }
  }
  if (sw.tilt_ranges.empty()) r.fail("sweep", "tilt_ranges is missing or empty");
  if (have_views == !sw.steps.empty())
    r.fail("sweep", "give either steps (degrees between views) or views (views per range)");
}

SweepParticle parse_particle(const Reader& r, const std::string& name, const Section& sec,
                             const fs::path& base) {
  const std::string where = "particle " + name;
  SweepParticle p;
  p.name = name;
  for (const auto& [key, value] : sec) {
    if (key == "phantom") {
      p.phantom = value;
    } else if (key == "model") {
      if (value.empty()) r.fail(where, "model is empty");
      const fs::path m(value);
      p.model = m.is_absolute() ? m.string() : (base / m).lexically_normal().string();
    } else if (key == "size") {
      p.size = number(r, where, key, value);
      if (!(*p.size > 0)) r.fail(where, "size must be > 0 Angstrom");
    } else if (key == "element") {
      if (!find_element(value)) r.fail(where, "element: unknown element '" + value + "'");
      p.element = value;
    } else if (key == "elements") {
      for (const auto& e : split_list(value)) {
        if (!find_element(e)) r.fail(where, "elements: unknown element '" + e + "'");
        p.elements.push_back(e);
      }
      if (p.elements.empty()) r.fail(where, "elements is empty");
    } else if (key == "min_distance") {
      p.min_distance = number(r, where, key, value);
      if (!(p.min_distance > 0)) r.fail(where, "min_distance must be > 0 Angstrom");
    } else {
      r.fail(where,
             "unknown key '" + key + "' (phantom, model, size, element, elements, min_distance)");
    }
  }
  if (p.phantom.empty() == p.model.empty())
    r.fail(where, "give either phantom (aet simulate --list) or model (an XYZ file)");
  if (!p.model.empty() && (p.size || !p.element.empty()))
    r.fail(where, "size and element replace a phantom's; they do not apply to a model file");
  if (!p.phantom.empty()) {
    try {
      const auto& named = phantoms::find_phantom(p.phantom);
      using phantoms::Shape;
      if (p.size && (named.spec.shape == Shape::wulff || named.spec.shape == Shape::cuboctahedron))
        r.fail(where, "size does not apply to " + p.phantom + " (a " +
                          phantoms::shape_name(named.spec.shape) + ")");
    } catch (const InputError& e) {
      r.fail(where, e.what());
    }
  }
  return p;
}

// {tilts}, {angles} and {out}; anything else in braces is a mistake.
void check_template(const Reader& r, const std::string& where, const std::string& command) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < command.size(); ++i) {
    if (command[i] == '}') r.fail(where, "command: a '}' without its '{'");
    if (command[i] != '{') continue;
    const auto close = command.find('}', i);
    if (close == std::string::npos) r.fail(where, "command: a '{' without its '}'");
    const std::string name = command.substr(i + 1, close - i - 1);
    if (name != "tilts" && name != "angles" && name != "out")
      r.fail(where, "command: unknown placeholder {" + name + "} (use {tilts}, {angles}, {out})");
    seen.insert(name);
    i = close;
  }
  for (const char* need : {"tilts", "out"})
    if (!seen.count(need))
      r.fail(where, std::string("command: the template has no {") + need +
                        "} (it reads {tilts} and {angles} and writes the volume {out})");
}

SweepMethod parse_method(const Reader& r, const std::string& name, const Section& sec) {
  const std::string where = "method " + name;
  SweepMethod m;
  m.name = name;
  std::vector<std::string> chain_keys;
  for (const auto& [key, value] : sec) {
    if (key == "command") {
      if (value.empty()) r.fail(where, "command is empty");
      check_template(r, where, value);
      m.command = value;
      continue;
    }
    chain_keys.push_back(key);
    if (key == "algorithm") {
      try {
        m.algorithm = parse_algorithm(value);
      } catch (const InputError& e) {
        r.fail(where, e.what());
      }
    } else if (key == "iterations") {
      const double n = number(r, where, key, value);
      if (!(n >= 1) || n != std::floor(n) || n > 1e6)
        r.fail(where, "iterations must be an integer >= 1");
      m.iterations = static_cast<int>(n);
    } else if (key == "network") {
      m.network = yes_no(r, where, key, value);
    } else if (key == "refine") {
      m.refine = yes_no(r, where, key, value);
    } else {
      r.fail(where, "unknown key '" + key + "' (algorithm, iterations, network, refine, command)");
    }
  }
  if (m.external() && !chain_keys.empty())
    r.fail(where, chain_keys.front() +
                      " applies to aet's own methods; an external method (command) is traced "
                      "and scored as it is");
  return m;
}

}  // namespace

Sweep parse_sweep(const std::string& text, const std::string& path) {
  const Reader r{path};
  std::istringstream in(text);
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::parse_config_file(in, po::options_description(), true);
  } catch (const po::error& e) {
    r.fail("", option_error_message(e));
  }
  // Sections in file order (found here too, since the parser reports no section without keys),
  // each once; keys once per section.
  std::vector<std::pair<std::string, Section>> sections;
  {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      line = trim(line.substr(0, line.find('#')));
      if (line.size() < 2 || line.front() != '[' || line.back() != ']') continue;
      const std::string sec = trim(line.substr(1, line.size() - 2));
      for (const auto& s : sections)
        if (s.first == sec) r.fail(sec, "the section appears twice");
      sections.emplace_back(sec, Section{});
    }
  }
  for (const auto& opt : parsed.options) {
    const auto dot = opt.string_key.rfind('.');
    if (dot == std::string::npos)
      r.fail("", "'" + opt.string_key + "' is outside a section ([sweep], [particle NAME], " +
                     "[method NAME])");
    const std::string sec = trim(opt.string_key.substr(0, dot));
    const std::string key = opt.string_key.substr(dot + 1);
    Section* keys = nullptr;
    for (auto& s : sections)
      if (s.first == sec) keys = &s.second;
    if (!keys) r.fail(sec, "the key '" + key + "' has no section header of its own");
    const std::string value = opt.value.empty() ? "" : trim(opt.value.front());
    if (!keys->emplace(key, value).second) r.fail(sec, "the key '" + key + "' appears twice");
  }

  Sweep sw;
  sw.path = path;
  const fs::path base = fs::path(path).parent_path();
  bool have_sweep = false;
  std::set<std::string> particle_names, method_names;
  for (const auto& [sec, keys] : sections) {
    const auto space = sec.find(' ');
    const std::string kind = sec.substr(0, space);
    const std::string name = space == std::string::npos ? "" : trim(sec.substr(space + 1));
    if (sec == "sweep") {
      parse_sweep_section(r, keys, sw);
      have_sweep = true;
    } else if (kind == "particle") {
      check_name(r, kind, name);
      if (!particle_names.insert(name).second) r.fail(sec, "a second particle of this name");
      sw.particles.push_back(parse_particle(r, name, keys, base));
    } else if (kind == "method") {
      check_name(r, kind, name);
      if (!method_names.insert(name).second) r.fail(sec, "a second method of this name");
      sw.methods.push_back(parse_method(r, name, keys));
    } else {
      r.fail(sec, "unknown section (use [sweep], [particle NAME] and [method NAME])");
    }
  }
  if (!have_sweep) r.fail("", "no [sweep] section (tilt_ranges and steps or views)");
  if (sw.particles.empty()) r.fail("", "no [particle NAME] section");
  if (sw.methods.empty()) r.fail("", "no [method NAME] section");
  return sw;
}

Sweep read_sweep(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open the sweep file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_sweep(text.str(), path);
}

namespace {

// "-70" and "+66": signs always, integers without decimals, others with what they need.
std::string signed_degrees(double v) {
  return (v >= 0 ? "+" : "") + fmt_g(v, 6);
}

}  // namespace

std::vector<SweepCase> sweep_cases(const Sweep& sw) {
  std::vector<SweepCase> out;
  for (std::size_t p = 0; p < sw.particles.size(); ++p)
    for (const auto& span : sw.tilt_ranges) {
      std::vector<std::vector<double>> tilt_sets;
      if (!sw.steps.empty()) {
        for (double step : sw.steps)
          tilt_sets.push_back(phantoms::TiltRange{span.start, span.stop, step}.angles());
      } else {
        for (int n : sw.views) {
          std::vector<double> t(static_cast<std::size_t>(n));
          for (int i = 0; i < n; ++i) t[i] = span.start + (span.stop - span.start) * i / (n - 1);
          tilt_sets.push_back(t);
        }
      }
      for (const auto& tilts : tilt_sets)
        for (double dose : sw.doses)
          for (std::uint64_t seed : sw.seeds) {
            SweepCase c;
            c.particle = p;
            c.span = span;
            c.tilts = tilts;
            c.dose = dose;
            c.seed = seed;
            c.name = sw.particles[p].name + "_" + signed_degrees(span.start) + "_" +
                     signed_degrees(span.stop) + "_" + std::to_string(tilts.size()) + "v_d" +
                     fmt_g(dose, 6) + "_s" + std::to_string(seed);
            for (const auto& prev : out)
              if (prev.name == c.name)
                fail_file(sw.path, "two cases would share the folder " + c.name +
                                       " (a repeated tilt range, step, view count, dose or seed)");
            out.push_back(std::move(c));
          }
    }
  return out;
}

std::string expand_command(const std::string& tpl, const std::string& tilts,
                           const std::string& angles, const std::string& out) {
  const auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string r;
  for (std::size_t i = 0; i < tpl.size(); ++i) {
    const auto close = tpl[i] == '{' ? tpl.find('}', i) : std::string::npos;
    if (close == std::string::npos) {
      r += tpl[i];
      continue;
    }
    const std::string name = tpl.substr(i + 1, close - i - 1);
    r += quote(name == "tilts" ? tilts : name == "angles" ? angles : out);
    i = close;
  }
  return r;
}

}  // namespace aet
