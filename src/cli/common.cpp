#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/core/error.hpp"
#include "aet/core/interrupt.hpp"
#include "aet/core/option_error.hpp"
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
    if (section.empty() || section == "common" || section == subcommand) {
      // Boost.Program_options loops for ever formatting an error about a name holding one of its
      // %placeholders% (found by fuzzing): no option name has a '%'.
      const auto eq = line.find('=');
      if (line.substr(0, eq).find('%') != std::string::npos && line[first] != '#')
        fail_file(path, "invalid option name: " + line.substr(0, eq));
      out << line << '\n';
    }
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
  // As in filter_config: a '%' in an option name would make the library's error loop.
  for (const std::string& a : inv.args)
    if (a.size() > 1 && a[0] == '-' && !std::isdigit(static_cast<unsigned char>(a[1])) &&
        a.substr(0, a.find('=')).find('%') != std::string::npos)
      fail_input("invalid option: " + a);
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
      fail_file(path, option_error_message(e));
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

namespace {

constexpr const char* kStagingPrefix = ".aet-partial-";

// "a directory", "a symbolic link", ... for what stands at `path`; "" for a plain file or nothing.
std::string in_the_way(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st) || fs::is_regular_file(st)) return "";
  if (fs::is_directory(st)) return "a directory";
  if (fs::is_symlink(st)) return "a symbolic link";
  return "a special file";
}

[[noreturn]] void fail_in_the_way(const fs::path& path, const std::string& what) {
  fail_file(path.string(), "is " + what +
                               " where aet would write an output file; aet replaces only plain "
                               "files, so move it away or choose another output");
}

// The nearest folder at or above `dir` that exists, and whether it is a writable folder.
void check_writable_folder(const std::string& option, const fs::path& dir) {
  fs::path probe = dir.empty() ? fs::path(".") : dir;
  std::error_code ec;
  while (!fs::exists(probe, ec) && probe.has_parent_path() && probe != probe.parent_path())
    probe = probe.parent_path();
  if (!fs::exists(probe, ec)) probe = ".";
  if (!fs::is_directory(probe, ec))
    fail_file(probe.string(), "--" + option + ": is not a directory, so it cannot hold the output");
  if (::access(probe.c_str(), W_OK | X_OK) != 0)
    fail_file(probe.string(), "--" + option + ": the folder is not writable");
}

// Staging folders of runs that are no longer alive (killed with SIGKILL, or on a lost node).
void remove_stale_staging(const std::string& dir) {
  const std::string prefix = kStagingPrefix;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    std::error_code rm;
    if (process_alive(std::stol(digits)) || !fs::is_directory(it->symlink_status(rm))) continue;
    fs::remove_all(it->path(), rm);
    if (!rm) log_info("removed " + it->path().string() + ", left by a run that was killed");
  }
}

}  // namespace

OutputDir::OutputDir(const std::string& dir, std::vector<std::string> names)
    : dir_(dir), names_(std::move(names)) {
  if (dir_.empty()) fail_input("--out: an output directory is required");
  std::error_code ec;
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    fail_file(dir_, "exists and is not a directory");
  for (const std::string& name : names_)
    if (const std::string what = in_the_way(fs::path(dir_) / name); !what.empty())
      fail_in_the_way(fs::path(dir_) / name, what);
  check_writable_folder("out", dir_);
  {
    const auto lock = interrupt_cleanup_lock();
    if (!fs::exists(dir_, ec)) {
      created_guard_ = InterruptCleanup(dir_, InterruptCleanup::Mode::if_empty);
      ensure_directory(dir_);
      created_dir_ = true;
    }
  }
  remove_stale_staging(dir_);
  staging_ = (fs::path(dir_) / (kStagingPrefix + std::to_string(getpid()))).string();
  const auto lock = interrupt_cleanup_lock();
  staging_guard_ = InterruptCleanup(staging_);
  fs::remove_all(staging_, ec);
  fs::create_directory(staging_, ec);
  if (ec) {
    staging_guard_.release();
    if (created_dir_) fs::remove(dir_, ec);
    created_guard_.release();
    fail_file(dir_, "cannot create a staging folder: " + ec.message());
  }
}

OutputDir::~OutputDir() {
  if (committed_) return;
  const auto lock = interrupt_cleanup_lock();
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (created_dir_) fs::remove(dir_, ec);  // only if empty: never removes a user's files
}

std::string OutputDir::path(const std::string& name) const {
  if (!names_.empty() && std::find(names_.begin(), names_.end(), name) == names_.end())
    throw InternalError("output '" + name + "' is not among the files declared for " + dir_);
  return (fs::path(staging_) / name).string();
}

std::string OutputDir::final_path(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

void OutputDir::commit() {
  const auto lock = interrupt_cleanup_lock();
  std::error_code ec;
  std::vector<fs::path> staged;
  for (const auto& e : fs::directory_iterator(staging_)) staged.push_back(e.path());
  // Checked again for all before any is moved: something may have appeared while the run worked.
  for (const fs::path& from : staged) {
    const fs::path target = fs::path(dir_) / from.filename();
    if (const std::string what = in_the_way(target); !what.empty()) fail_in_the_way(target, what);
  }
  for (const fs::path& from : staged) {
    const fs::path target = fs::path(dir_) / from.filename();
    fs::rename(from, target, ec);
    if (ec) fail_file(target.string(), "cannot move the output into place: " + ec.message());
  }
  fs::remove(staging_, ec);
  committed_ = true;
  staging_guard_.release();
  created_guard_.release();
}

void check_output_file(const std::string& option, const std::string& path,
                       const std::vector<std::string>& extensions, const std::string& what) {
  if (path.empty()) fail_input("--" + option + ": empty file name");
  const fs::path p(path);
  if (!extensions.empty()) {
    std::string ext = p.extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) {
      std::string list;
      for (const auto& e : extensions) list += (list.empty() ? "" : ", ") + e;
      fail_file(path, "--" + option + ": aet writes " + what + " here, which is named " + list +
                          "; a name ending in '" + (ext.empty() ? std::string("(none)") : ext) +
                          "' would mislabel it");
    }
  }
  if (const std::string in_way = in_the_way(p); !in_way.empty()) fail_in_the_way(p, in_way);
  check_writable_folder(option, p.parent_path());
}

void check_output_directory(const std::string& option, const std::string& dir) {
  if (dir.empty()) fail_input("--" + option + ": empty directory name");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    fail_file(dir, "--" + option + ": exists and is not a directory");
  check_writable_folder(option, dir);
}

const std::vector<std::string>& mrc_extensions() {
  static const std::vector<std::string> list = {".mrc", ".mrcs", ".map", ".rec", ".st", ".ali"};
  return list;
}

std::string user_paths(const std::string& message) {
  std::string out = message;
  const std::string marker = std::string("/") + kStagingPrefix;
  for (std::size_t at = out.find(marker); at != std::string::npos; at = out.find(marker, at)) {
    std::size_t end = at + marker.size();
    while (end < out.size() && std::isdigit(static_cast<unsigned char>(out[end]))) ++end;
    if (end == at + marker.size()) {
      at = end;
      continue;
    }
    out.erase(at, end - at);
  }
  return out;
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

void ensure_parent_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) ensure_directory(parent.string());
}

}  // namespace aet::cli
