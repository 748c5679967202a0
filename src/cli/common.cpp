#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/networks/network.hpp"
#include "cli/cli.hpp"

namespace fs = std::filesystem;

namespace aet::cli {

namespace {

// Keeps the lines of the INI file that apply to this subcommand: those before any section,
// and those in [common] or [<subcommand>]. Other sections belong to other subcommands.
std::string filter_config(const std::string& path, const std::string& subcommand) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open config file");
  std::ostringstream out;
  std::string line, section;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos && line[first] == '[') {
      const auto close = line.find(']', first);
      if (close == std::string::npos) fail_file(path, "malformed section header: " + line);
      section = line.substr(first + 1, close - first - 1);
      continue;
    }
    if (section.empty() || section == "common" || section == subcommand) out << line << '\n';
  }
  return out.str();
}

std::string any_to_string(const boost::any& v) {
  if (v.empty()) return "";
  if (auto p = boost::any_cast<std::string>(&v)) return *p;
  if (auto p = boost::any_cast<int>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<long>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<std::uint64_t>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<std::int64_t>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<double>(&v)) return json_number(*p);
  if (auto p = boost::any_cast<bool>(&v)) return *p ? "true" : "false";
  if (auto p = boost::any_cast<std::vector<std::string>>(&v)) {
    std::string s;
    for (const auto& x : *p) s += (s.empty() ? "" : " ") + x;
    return s;
  }
  return "?";
}

}  // namespace

Parsed parse(const Invocation& inv, const po::options_description& desc,
             const po::positional_options_description* positional) {
  Parsed r;
  po::command_line_parser parser(inv.args);
  parser.options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), r.vm);
  if (r.vm.count("help")) {
    r.help = true;
    return r;
  }
  if (r.vm.count("config")) {
    const std::string path = r.vm["config"].as<std::string>();
    std::istringstream text(filter_config(path, inv.name));
    try {
      // Stored after the command line, so command-line values win.
      po::store(po::parse_config_file(text, desc), r.vm);
    } catch (const po::error& e) {
      fail_file(path, e.what());
    }
  }
  po::notify(r.vm);

  if (r.vm.count("quiet") && r.vm["quiet"].as<bool>()) set_verbosity(Verbosity::quiet);
  if (r.vm.count("verbose") && r.vm["verbose"].as<bool>()) set_verbosity(Verbosity::verbose);
  if (r.vm.count("threads")) {
    const int t = r.vm["threads"].as<int>();
    if (t < 0) fail_input("--threads must be >= 0");
    set_num_threads(t);
  }
  std::ostringstream cfg;
  for (const auto& kv : r.vm) {
    if (kv.first == "help" || kv.first == "config") continue;
    cfg << kv.first << " = " << any_to_string(kv.second.value()) << '\n';
  }
  r.effective_config = cfg.str();
  return r;
}

namespace {
// Wraps each line of `text` at `width` columns on word boundaries (explicit newlines are kept).
std::string wrap(const std::string& text, std::size_t width) {
  std::ostringstream out;
  std::istringstream lines(text);
  std::string line;
  bool first_line = true;
  while (std::getline(lines, line)) {
    if (!first_line) out << '\n';
    first_line = false;
    std::istringstream words(line);
    std::string word;
    std::size_t col = 0;
    while (words >> word) {
      if (col > 0 && col + 1 + word.size() > width) {
        out << '\n';
        col = 0;
      } else if (col > 0) {
        out << ' ';
        ++col;
      }
      out << word;
      col += word.size();
    }
  }
  return out.str();
}
}  // namespace

void print_usage(const Invocation& inv, const std::string& synopsis, const std::string& about,
                 const po::options_description& desc) {
  std::ostringstream os;
  os << "Usage: aet " << inv.name << " " << synopsis << "\n\n"
     << wrap(about, 80) << "\n\n"
     << desc << "\n";
  std::fputs(os.str().c_str(), stdout);
}

void require_options(const po::variables_map& vm, const std::vector<std::string>& required) {
  for (const std::string& entry : required)
    if (!vm.count(entry.substr(0, entry.find(' ')))) fail_input("--" + entry + " is required");
}

Parsed parse_or_help(const Invocation& inv, const po::options_description& desc,
                     const Preamble& pre) {
  Parsed p = parse(inv, desc, pre.positional);
  if (p.help) {
    print_usage(inv, pre.synopsis, pre.about, desc);
    return p;
  }
  // Without LibTorch the command cannot run at all: say so before naming a missing option.
  if (pre.needs_torch) nn::require_torch("aet " + inv.name);
  require_options(p.vm, pre.required);
  return p;
}

OutputDir::OutputDir(const std::string& dir) : dir_(dir) {
  if (dir_.empty()) fail_input("--out: an output directory is required");
  std::error_code ec;
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    fail_file(dir_, "exists and is not a directory");
  if (!fs::exists(dir_, ec)) {
    ensure_directory(dir_);
    created_dir_ = true;
  }
  staging_ = (fs::path(dir_) / (".aet-partial-" + std::to_string(getpid()))).string();
  fs::remove_all(staging_, ec);
  fs::create_directory(staging_, ec);
  if (ec) fail_file(dir_, "cannot create a staging folder: " + ec.message());
}

OutputDir::~OutputDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (created_dir_) fs::remove(dir_, ec);  // only if empty: never removes a user's files
}

std::string OutputDir::path(const std::string& name) const {
  return (fs::path(staging_) / name).string();
}

std::string OutputDir::final_path(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

void OutputDir::commit() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(staging_)) {
    const fs::path target = fs::path(dir_) / e.path().filename();
    if (fs::is_directory(target, ec)) fs::remove_all(target, ec);
    fs::rename(e.path(), target, ec);
    if (ec) fail_file(target.string(), "cannot move the output into place: " + ec.message());
  }
  fs::remove(staging_, ec);
  committed_ = true;
}

std::string angle_search_summary(const std::vector<double>& change_deg, double range_deg) {
  char buf[64];
  std::snprintf(buf, sizeof buf,
                "angle search (+-%.1f deg): views moved by more than 1 deg:", range_deg);
  std::string s = buf;
  int moved = 0;
  for (std::size_t k = 0; k < change_deg.size(); ++k)
    if (change_deg[k] > 1.0) {
      std::snprintf(buf, sizeof buf, " %zu (%.2f)", k, change_deg[k]);
      s += buf;
      ++moved;
    }
  return s + (moved ? "\n" : " none\n");
}

}  // namespace aet::cli
