// aet report: report.html for a pipeline run folder (docs/report.md), and the runner of the
// report module that aet pipeline calls at the end of every run.
#include "cli/report.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

extern char** environ;

namespace aet::cli {

namespace {

namespace fs = std::filesystem;

std::string report_python() {
  if (const char* env = std::getenv("AET_PYTHON"); env && *env) return env;
  return AET_REPORT_PYTHON;
}

// The folder holding the aet_report package: the source tree aet was built from.
std::string report_module_dir() {
  const std::string dir = AET_PYTHON_DIR;
  if (!fs::is_regular_file(dir + "/aet_report/__init__.py"))
    fail_input("the report module is missing: " + dir +
               "/aet_report (aet finds it in the source tree it was built from)");
  return dir;
}

// The module's stderr (its own messages and any traceback), at most the last 4000 characters.
std::string tail(const std::string& s) {
  return s.size() > 4000 ? "..." + s.substr(s.size() - 4000) : s;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  const std::string prefix = "aet report: error: ";
  if (s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  return s;
}

}  // namespace

void write_run_report(const std::string& dir, const std::string& html) {
  const std::string python = report_python();
  const std::string module_dir = report_module_dir();
  // The child's environment: ours, with the module's folder first on PYTHONPATH.
  std::vector<std::string> env_text;
  const char* old_path = std::getenv("PYTHONPATH");
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "PYTHONPATH=", 11) != 0) env_text.emplace_back(*e);
  env_text.push_back("PYTHONPATH=" + module_dir +
                     (old_path && *old_path ? ":" + std::string(old_path) : ""));
  std::vector<char*> envp;
  for (auto& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {python, "-m", "aet_report", dir, "--out", html};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw InternalError(std::string("report: cannot create a pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    fail_input("cannot start the Python the report needs (" + python + ": " + std::strerror(err) +
               "); install python3 (Debian: python3 python3-matplotlib python3-mrcfile) or set "
               "AET_PYTHON");
  }
  std::string output;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) fail_input(trimmed(tail(output)));
  throw InternalError("the report module (" + python + " -m aet_report) failed" +
                      (WIFEXITED(status) ? " with exit code " + std::to_string(WEXITSTATUS(status))
                                         : std::string(" (killed by a signal)")) +
                      ": " + trimmed(tail(output)));
}

int run_report(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("dir", po::value<std::string>()->value_name("DIR"), "the run folder (aet pipeline --out DIR)")
    ("out,o", po::value<std::string>()->value_name("FILE"),
       "the HTML file to write (default: DIR/report.html)");
  // clang-format on
  add_common_options(desc, false);
  po::positional_options_description pos;
  pos.add("dir", 1);
  Preamble pre;
  pre.synopsis = "DIR [--out FILE]";
  pre.about =
      "Writes report.html for a run folder of aet pipeline (which writes it itself at the end of "
      "every run, unless --no-report): one self-contained page with the warnings, the input "
      "views, the per-view residual, orthoslices before and after the network, the traced atoms "
      "on the slices, R1 per iteration, the intensity histogram with the class boundaries, the "
      "alignment, strain and facets when the analysis ran, the metrics and the configuration "
      "(docs/report.md). Needs python3 with matplotlib, numpy and mrcfile (Debian packages; "
      "$AET_PYTHON names another Python).";
  pre.positional = &pos;
  pre.required = {"dir DIR"};
  const Parsed p = parse_or_help(inv, desc, pre);
  if (p.help) return 0;
  const std::string dir = p.vm["dir"].as<std::string>();
  if (!fs::is_directory(dir))
    fail_input(dir + ": not a directory (give an aet pipeline run folder)");
  if (!fs::is_regular_file(fs::path(dir) / "metrics.json"))
    fail_input(dir + ": no metrics.json, not an aet pipeline run folder");
  const std::string out =
      p.vm.count("out") ? p.vm["out"].as<std::string>() : (fs::path(dir) / "report.html").string();
  check_output_file("out", out, {".html", ".htm"}, "an HTML file");
  write_run_report(dir, out);
  log_info("wrote " + out);
  return 0;
}

}  // namespace aet::cli
