// aet benchmark: the missing-wedge benchmark. Every case of a sweep file (particle x tilt range x
// views x dose x seed) is simulated into its folder and every method run on it; then one row per
// case and method goes into results.csv, results.json, results.md and plots/. With --workers N
// the cases run in N processes (each `aet benchmark --case NAME`, the threads split between
// them). Exit code 4: some case or method failed (each named); the others finished.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "aet/benchmark/benchmark.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/atomic_file.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "cli/submit.hpp"

namespace fs = std::filesystem;

namespace aet::cli {

namespace {

constexpr int kSomeFailed = 4;

// Holds an exclusive lock on DIR/.lock for the run: two sweeps writing one folder would undo each
// other's cases.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir) {
    const std::string path = dir + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_file(path, "cannot create the lock file");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
      fail_file(dir, "another aet benchmark is running in this folder");
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// The cases in `todo` in up to `workers` processes at a time, each `aet benchmark --case NAME`
// with its output in CASE/worker.log.
void run_in_processes(const std::vector<const SweepCase*>& todo, int workers,
                      const std::string& sweep_path, const std::string& out,
                      const std::string& device) {
  const int threads = std::max(1, num_threads() / workers);
  log_info("aet benchmark: " + std::to_string(todo.size()) + " cases in " +
           std::to_string(workers) + " processes of " + std::to_string(threads) + " threads");
  std::map<pid_t, std::string> running;
  std::size_t next = 0, finished = 0;
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && static_cast<int>(running.size()) < workers) {
      const SweepCase& c = *todo[next++];
      const std::string dir = out + "/" + c.name;
      ensure_directory(dir);
      const std::string log_path = dir + "/worker.log";
      std::vector<std::string> args = {
          "aet",      "benchmark", "--sweep", sweep_path,  "--out",
          out,        "--case",    c.name,    "--threads", std::to_string(threads),
          "--device", device};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) throw InternalError("cannot start a worker process (fork)");
      if (pid == 0) {  // only async-signal-safe calls until exec
        const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
          ::dup2(fd, 1);
          ::dup2(fd, 2);
        }
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
      }
      running[pid] = c.name;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) throw InternalError("waiting for the worker processes failed");
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    ++finished;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    log_info("  " + it->second + (ok ? ": done" : ": failed (see its worker.log)") + " (" +
             std::to_string(finished) + "/" + std::to_string(todo.size()) + ")");
    running.erase(it);
  }
}

}  // namespace

int run_benchmark(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("sweep", po::value<std::string>()->value_name("FILE"),
       "the sweep: particles, tilt ranges, views or steps, doses, seeds, misalignment and methods "
       "(INI; docs/benchmark.md, benchmarks/sweeps/missing_wedge.ini)")
    ("out,o", po::value<std::string>()->value_name("DIR"),
       "output folder: one folder per case, results.csv, results.json, results.md, plots/")
    ("workers", po::value<int>()->default_value(1)->value_name("N"),
       "cases run at once, each in its own process with --threads / N threads")
    ("dry-run", "list the cases and methods, and which are done, without running anything")
    ("case", po::value<std::string>()->value_name("NAME"),
       "run this case only, without collecting the results (what each worker runs)")
    ("slurm", "run the cases as a Slurm job array, then collect in a job of its own (the Slurm "
       "options below; the job folder is DIR/slurm: aet submit --status DIR/slurm)")
    ("collect", "run nothing: write the tables and plots of the cases finished so far (what the "
       "last job of aet submit benchmark runs)");
  // clang-format on
  add_common_options(desc, true, false);  // the seeds are the sweep file's (seeds = ...)
  add_slurm_options(desc);
  const auto about =
      "Scores reconstruction methods on simulated particles across tilt ranges, numbers of views "
      "and doses. Each case (particle x tilt range x views x dose x seed) is a folder of DIR with "
      "its simulated series (tilts.mrc, tilts.tlt) and truth (truth.xyz); each method a "
      "subfolder with its atoms, metrics and a `done` marker written last. aet's own methods run "
      "the pipeline in this process; an external method's command writes a volume that is "
      "traced and scored the same way. A rerun skips what is done for the same settings "
      "(resume). With --slurm the cases are the tasks of a Slurm job array and a last job collects "
      "(docs/hpc.md); the command returns once they are submitted.\n\nWrites to DIR: results.csv and results.json (one row per case and method: "
      "recall, precision, RMSD total, surface, interior and per axis, species accuracy, R1, "
      "times), results.md and plots/ (accuracy against tilt range, dose and views; RMSD per axis; "
      "needs python3-matplotlib, else a warning).\n\nExit codes: 0 all done; 2 bad sweep file or "
      "options; 4 some case or method failed (each named on stderr, in results.csv's status and "
      "error columns and in its folder's error.txt), every other one finished.";
  const Parsed p = parse_or_help(inv, desc,
                                 {"--sweep FILE --out DIR [--workers N] [--dry-run] [options]",
                                  about,
                                  {"sweep FILE", "out DIR"}});
  if (p.help) return 0;
  const auto& vm = p.vm;
  const int workers = vm["workers"].as<int>();
  if (workers < 1) fail_input("--workers must be >= 1");
  const std::string sweep_path = vm["sweep"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();
  const Sweep sweep = read_sweep(sweep_path);
  const std::vector<SweepCase> cases = sweep_cases(sweep);
  BenchmarkOptions opt;
  opt.device = resolve_recon_device(vm);
  opt.network_device = network_device(vm, opt.device);
  const auto log = [](const std::string& line) {
    if (line.rfind("error: ", 0) == 0 || line.rfind("warning: ", 0) == 0)
      std::fprintf(stderr, "%s\n", line.c_str());
    else
      log_info(line);
  };

  if (vm.count("case")) {
    const std::string name = vm["case"].as<std::string>();
    const auto it = std::find_if(cases.begin(), cases.end(),
                                 [&](const SweepCase& c) { return c.name == name; });
    if (it == cases.end()) fail_file(sweep_path, "no case named " + name + " (see --dry-run)");
    ensure_directory(out);
    return run_case(sweep, *it, out, opt, log).ok() ? 0 : kSomeFailed;
  }

  if (vm.count("slurm")) {
    if (vm.count("workers") && !vm["workers"].defaulted())
      fail_input("--workers: with --slurm every case is a task of its own");
    SubmitPlan plan = slurm_plan(vm, "benchmark", out + "/slurm");
    std::vector<std::string> extra;
    if (!vm["device"].defaulted()) extra = {"--device", vm["device"].as<std::string>()};
    plan.jobs = benchmark_jobs(out, sweep_path, extra);
    if (vm.count("dry-run"))
      print_dry_run(plan);
    else
      submit_and_log(plan);
    return 0;
  }
  for (const char* key : {"partition", "account", "qos", "time", "mem", "aet", "workdir",
                          "container", "sbatch", "module"})
    if (vm.count(key) && !vm[key].defaulted())
      fail_input(std::string("--") + key + " applies with --slurm");
  for (const char* key : {"cpus", "gpus", "throttle"})
    if (!vm[key].defaulted()) fail_input(std::string("--") + key + " applies with --slurm");

  if (vm.count("dry-run")) {
    const Json rows = collect_results(sweep, cases, out);
    std::printf("%zu cases x %zu methods (%s):\n", cases.size(), sweep.methods.size(),
                sweep_path.c_str());
    std::size_t i = 0;
    for (const auto& c : cases) {
      std::printf("  %s (%zu views, dose %g, seed %llu):", c.name.c_str(), c.tilts.size(), c.dose,
                  static_cast<unsigned long long>(c.seed));
      for (const auto& m : sweep.methods) {
        const std::string status = rows[i++]["status"].get<std::string>();
        std::printf(" %s %s", m.name.c_str(),
                    status == "ok"       ? "(done)"
                    : status == "failed" ? "(failed)"
                                         : "(to run)");
      }
      std::printf("\n");
    }
    return 0;
  }

  ensure_directory(out);
  const FolderLock lock(out);
  write_text_file(
      out + "/sweep.ini",
      std::string(std::istreambuf_iterator<char>(std::ifstream(sweep_path).rdbuf()), {}));
  if (vm.count("collect")) {
    // Only the tables: cases that did not finish are rows with their status.
  } else if (workers == 1 || cases.size() == 1) {
    for (const auto& c : cases) run_case(sweep, c, out, opt, log);
  } else {
    std::vector<const SweepCase*> todo;
    for (const auto& c : cases) todo.push_back(&c);
    run_in_processes(todo, std::min<int>(workers, static_cast<int>(cases.size())), sweep_path, out,
                     vm["device"].as<std::string>());
  }

  const Json rows = collect_results(sweep, cases, out);
  write_results(rows, out);
  const std::string plots = make_plots(out);
  if (!plots.empty()) log_warning(plots);
  std::vector<std::string> failures;
  for (const auto& r : rows) {
    const std::string status = r["status"].get<std::string>();
    if (status == "ok") continue;
    const std::string what = status == "failed" ? r["error"].get<std::string>()
                                                : "did not run (see the case's worker.log)";
    failures.push_back(r["case"].get<std::string>() + "/" + r["method"].get<std::string>() + ": " +
                       what);
  }
  log_info("wrote " + out + "/{results.csv, results.json, results.md" +
           (plots.empty() ? ", plots/" : "") + "}: " + std::to_string(rows.size()) + " rows, " +
           std::to_string(failures.size()) + " failed");
  for (const auto& f : failures) std::fprintf(stderr, "aet benchmark: failed: %s\n", f.c_str());
  return failures.empty() ? 0 : kSomeFailed;
}

}  // namespace aet::cli
