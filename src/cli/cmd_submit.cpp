// aet submit: aet runs as Slurm jobs (docs/hpc.md): one pipeline run, a job array over many
// series or over a benchmark's cases, or the stages of one series as a chain of dependent jobs;
// --status and --rerun follow a submission.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "aet/benchmark/sweep.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/progress.hpp"
#include "aet/hpc/slurm.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "cli/submit.hpp"

namespace aet::cli {
namespace {

namespace fs = std::filesystem;

std::string absolute_path(const std::string& p) {
  std::string a = fs::absolute(fs::path(p)).lexically_normal().string();
  while (a.size() > 1 && a.back() == '/') a.pop_back();  // "." gives "/x/"
  return a;
}

std::string this_binary() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "aet";
  return std::string(buf, static_cast<std::size_t>(n));
}

void require_readable(const std::string& path, const std::string& where) {
  std::ifstream in(path);
  if (!fs::is_regular_file(path) || !in) fail_file(where, "cannot read " + path);
}

// The options aet submit sets itself may not come again after "--".
void refuse_options(const std::vector<std::string>& extra, const std::vector<std::string>& names,
                    const std::string& why) {
  for (const auto& a : extra)
    for (const auto& n : names)
      if (a == n || a.rfind(n + "=", 0) == 0)
        fail_input("after --: " + a + " is set by aet submit (" + why + ")");
}

struct SeriesLine {
  std::string tilts, angles, name;
};

// The list of an array over series: per line TILTS ANGLES [NAME] (words as a shell splits them,
// '#' starts a comment; paths relative to the list's folder). Names must be unique.
std::vector<SeriesLine> read_series_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot read the series list");
  const fs::path base = fs::absolute(fs::path(path)).parent_path();
  std::vector<SeriesLine> lines;
  std::set<std::string> names;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number);
    const auto words = split_words(line.substr(0, line.find('#')), where);
    if (words.empty()) continue;
    if (words.size() < 2 || words.size() > 3)
      fail_file(where,
                "expected TILTS ANGLES [NAME], got " + std::to_string(words.size()) + " words");
    SeriesLine s;
    s.tilts = (base / words[0]).lexically_normal().string();
    s.angles = (base / words[1]).lexically_normal().string();
    s.name = words.size() == 3 ? words[2] : fs::path(words[0]).stem().string();
    if (s.name.empty() || s.name.find_first_of("/\n") != std::string::npos || s.name == "." ||
        s.name == "..")
      fail_file(where, "'" + s.name + "' cannot name a result folder");
    if (!names.insert(s.name).second)
      fail_file(where, "the name " + s.name + " is used twice (give a third word to name it)");
    require_readable(s.tilts, where);
    require_readable(s.angles, where);
    lines.push_back(s);
  }
  if (lines.empty()) fail_file(path, "no series in the list");
  return lines;
}

SlurmJob pipeline_job(const std::string& job_dir, const std::vector<std::string>& extra) {
  refuse_options(extra, {"--out", "-o"}, "the result goes to DIR/result");
  SlurmJob job{"pipeline", "one aet pipeline run", {}, {}, {}};
  std::vector<std::string> cmd = {"pipeline"};
  cmd.insert(cmd.end(), extra.begin(), extra.end());
  cmd.insert(cmd.end(), {"--out", job_dir + "/result"});
  job.tasks.push_back(SlurmTask{"pipeline", {cmd}, job_dir + "/result"});
  return job;
}

SlurmJob series_job(const std::string& job_dir, const std::string& list,
                    const std::vector<std::string>& extra) {
  refuse_options(extra, {"--out", "-o", "--tilts", "-t", "--angles", "-a"},
                 "each task's come from the list");
  SlurmJob job{"series", "task i runs aet pipeline on line i of " + list, {}, {}, {}};
  for (const auto& s : read_series_list(list)) {
    const std::string out = job_dir + "/results/" + s.name;
    std::vector<std::string> cmd = {"pipeline", "--tilts", s.tilts, "--angles", s.angles};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    cmd.insert(cmd.end(), {"--out", out});
    job.tasks.push_back(SlurmTask{s.name, {cmd}, out});
  }
  return job;
}

}  // namespace

std::vector<SlurmJob> benchmark_jobs(const std::string& out_dir, const std::string& sweep_path,
                                     const std::vector<std::string>& extra) {
  const std::string out = absolute_path(out_dir);
  refuse_options(extra, {"--out", "-o", "--sweep", "--case", "--workers", "--collect"},
                 "each task runs one case of the sweep");
  const std::string sweep_file = absolute_path(sweep_path);
  const auto cases = sweep_cases(read_sweep(sweep_file));
  SlurmJob run{"cases", "task i runs case i of " + sweep_file, {}, {}, {}};
  for (const auto& c : cases) {
    std::vector<std::string> cmd = {"benchmark", "--sweep", sweep_file, "--out",
                                    out,         "--case",  c.name};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    run.tasks.push_back(SlurmTask{c.name, {cmd}, out + "/" + c.name});
  }
  // After every case ended, done or not: the tables and plots of what finished.
  SlurmJob collect{"collect", "collects the cases' results", {}, {}, {"cases"}};
  std::vector<std::string> cmd = {"benchmark", "--sweep", sweep_file, "--out", out, "--collect"};
  collect.tasks.push_back(SlurmTask{"collect", {cmd}, out + "/results.csv"});
  return {run, collect};
}

SubmitPlan slurm_plan(const po::variables_map& vm, const std::string& mode,
                      const std::string& job_dir) {
  SubmitPlan plan;
  plan.mode = mode;
  plan.job_dir = absolute_path(job_dir);
  plan.workdir = absolute_path(vm.count("workdir") ? vm["workdir"].as<std::string>() : ".");
  plan.aet = vm.count("aet") ? vm["aet"].as<std::string>() : this_binary();
  plan.resources = read_slurm_options(vm);
  return plan;
}

namespace {

std::vector<SlurmJob> staged_jobs(const std::string& job_dir, const po::variables_map& vm) {
  for (const char* key : {"tilts", "angles", "elements"})
    if (!vm.count(key)) fail_input(std::string("staged: --") + key + " is required");
  const std::string tilts = absolute_path(vm["tilts"].as<std::string>());
  const std::string angles = absolute_path(vm["angles"].as<std::string>());
  require_readable(tilts, "--tilts");
  require_readable(angles, "--angles");
  const std::string elements = vm["elements"].as<std::string>();
  std::vector<std::string> config;
  if (vm.count("stage-config")) {
    const std::string c = absolute_path(vm["stage-config"].as<std::string>());
    require_readable(c, "--stage-config");
    config = {"--config", c};
  }
  const std::string s = job_dir + "/stages/";
  const auto with_config = [&](std::vector<std::string> cmd) {
    cmd.insert(cmd.end(), config.begin(), config.end());
    return cmd;
  };
  const std::string views = s + "align/aligned.mrc", geometry = s + "align/aligned_angles.txt";
  std::vector<SlurmJob> jobs;
  jobs.push_back({"align", "aligns the series", {}, {}, {}});
  jobs.back().tasks.push_back(
      {"align",
       {with_config({"align", "--tilts", tilts, "--angles", angles, "--out", s + "align"})},
       s + "align"});
  jobs.push_back({"reconstruct", "reconstructs the aligned series", {}, {"align"}, {}});
  jobs.back().tasks.push_back({"reconstruct",
                               {with_config({"reconstruct", "--tilts", views, "--angles", geometry,
                                             "--out", s + "reconstruct/volume.mrc"})},
                               s + "reconstruct/volume.mrc"});
  std::string volume = s + "reconstruct/volume.mrc", previous = "reconstruct";
  if (vm.count("network")) {
    jobs.push_back({"network", "corrects the missing wedge", {}, {"reconstruct"}, {}});
    jobs.back().tasks.push_back(
        {"network",
         {with_config({"augment", "--volume", volume, "--out", s + "network/volume.mrc"})},
         s + "network/volume.mrc"});
    volume = s + "network/volume.mrc";
    previous = "network";
  }
  jobs.push_back({"trace-refine", "traces the atoms and refines them", {}, {previous}, {}});
  jobs.back().tasks.push_back(
      {"trace-refine",
       {with_config(
            {"trace", "--volume", volume, "--elements", elements, "--out", s + "trace/atoms.xyz"}),
        with_config({"refine", "--tilts", views, "--angles", geometry, "--atoms",
                     s + "trace/atoms.xyz", "--elements", elements, "--out", s + "refine"})},
       s + "refine"});
  jobs.push_back({"analyze", "analyses the refined model", {}, {"trace-refine"}, {}});
  jobs.back().tasks.push_back(
      {"analyze",
       {with_config({"analyze", "--atoms", s + "refine/refined.xyz", "--out", s + "analyze"})},
       s + "analyze"});
  return jobs;
}

}  // namespace

void print_dry_run(const SubmitPlan& plan) {
  for (const auto& job : plan.jobs) {
    std::printf("# %s/scripts/%s.sbatch\n%s", plan.job_dir.c_str(), job.name.c_str(),
                batch_script(plan, job).c_str());
    std::vector<std::string> ok, any;
    for (const auto& d : job.after_ok) ok.push_back("<" + d + ">");
    for (const auto& d : job.after_any) any.push_back("<" + d + ">");
    std::string cmd = "sbatch";
    for (const auto& a : sbatch_arguments(plan, job, {}, ok, any)) cmd += " " + shell_quote(a);
    std::printf("# submitted as: %s\n\n", cmd.c_str());
  }
}

int run_submit(const Invocation& inv_in) {
  // Everything after "--" goes to the aet command of each task, unparsed.
  Invocation inv = inv_in;
  std::vector<std::string> extra;
  for (std::size_t i = 0; i < inv.args.size(); ++i)
    if (inv.args[i] == "--") {
      extra.assign(inv.args.begin() + static_cast<std::ptrdiff_t>(i) + 1, inv.args.end());
      inv.args.resize(i);
      break;
    }

  // aet submit's own switches after "--" would reach the tasks (and --dry-run would submit).
  for (const auto& a : extra)
    if (a == "--dry-run" || a == "--status" || a == "--rerun")
      fail_input(a + " after --: aet submit's options go before --, the tasks' after it");

  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("mode", po::value<std::string>()->value_name("MODE"),
       "pipeline, series, benchmark or staged")
    ("out,o", po::value<std::string>()->value_name("DIR"),
       "job folder: scripts/, logs/, status/, submit.json and the results")
    ("list", po::value<std::string>()->value_name("FILE"),
       "series: one series per line, TILTS ANGLES [NAME] (paths relative to the list)")
    ("sweep", po::value<std::string>()->value_name("FILE"), "benchmark: the sweep file")
    ("tilts,t", po::value<std::string>()->value_name("FILE"), "staged: the tilt series")
    ("angles,a", po::value<std::string>()->value_name("FILE"), "staged: its angles")
    ("elements", po::value<std::string>()->value_name("A,B"), "staged: species, lightest first")
    ("network", "staged: a network stage between reconstruct and trace")
    ("stage-config", po::value<std::string>()->value_name("FILE"),
       "staged: an INI file given to every stage (sections [align], [reconstruct], [augment], "
       "[trace], [refine], [analyze])")
    ("dry-run", "print the scripts and sbatch commands; write and submit nothing")
    ("status", po::value<std::string>()->value_name("DIR"),
       "the state of every task of the submission in DIR (exit 4 if some failed)")
    ("rerun", po::value<std::string>()->value_name("DIR"),
       "resubmit the tasks of DIR that failed, were lost, blocked or never ran")
    ("json", "with --status: print JSON");
  // clang-format on
  add_slurm_options(desc);
  add_common_options(desc, false, false);
  po::positional_options_description positional;
  positional.add("mode", 1);
  const auto about =
      "Runs aet on a Slurm cluster. Modes: pipeline (one aet pipeline run; its options after "
      "--), series (a job array with one aet pipeline per line of --list; options after -- go "
      "to every task; --throttle limits how many run at once), benchmark (a job array with one "
      "task per case of --sweep, then a job that collects the results), staged (--tilts, "
      "--angles, --elements: align, reconstruct, [network,] trace and refine, analyze as jobs "
      "that each wait for the previous one to succeed). Writes the batch scripts into DIR/"
      "scripts, submits them with sbatch and records the job ids in DIR/submit.json; each task "
      "logs to DIR/logs and leaves its exit status in DIR/status. If an sbatch fails, what was "
      "submitted is cancelled and nothing is left. Every word a task runs is shell-quoted.\n\n"
      "--status DIR tells which tasks are done, failed (with the tail of their log), running, "
      "pending, blocked or lost; --rerun DIR resubmits the failed ones and what depends on "
      "them. Options can come from the [submit] section of --config.\n\nExit codes: 0 "
      "submitted (or --status: nothing failed); 2 bad options, list, sweep or no sbatch; 1 "
      "Slurm refused a job; 4 (--status) some task failed, was lost, blocked or never ran.";
  const Parsed p = parse_or_help(
      inv, desc,
      {"MODE --out DIR [--list FILE | --sweep FILE | --tilts T --angles A --elements E] "
       "[Slurm options] [-- aet options]\n       aet submit --status DIR | --rerun DIR",
       about,
       {},
       false,
       &positional});
  if (p.help) return 0;
  const auto& vm = p.vm;

  if (vm.count("status") || vm.count("rerun")) {
    if (vm.count("mode") || vm.count("out") || !extra.empty())
      fail_input("--status and --rerun take only the job folder");
    if (vm.count("rerun")) {
      const std::string dir = absolute_path(vm["rerun"].as<std::string>());
      const int n = rerun_failed(dir);
      log_info(n == 0 ? "aet submit: nothing to rerun in " + dir
                      : "aet submit: resubmitted " + std::to_string(n) + " tasks of " + dir);
      return 0;
    }
    const Json status = submission_status(absolute_path(vm["status"].as<std::string>()));
    std::fputs(vm.count("json") ? json_text(status).c_str() : status_text(status).c_str(), stdout);
    const Json& t = status["totals"];
    const int bad = t["failed"].get<int>() + t["lost"].get<int>() + t["blocked"].get<int>() +
                    t["not run"].get<int>();
    return bad > 0 ? 4 : 0;
  }

  require_options(vm, {"mode MODE", "out DIR"});
  SubmitPlan plan = slurm_plan(vm, vm["mode"].as<std::string>(), vm["out"].as<std::string>());

  const auto only = [&](const std::vector<const char*>& allowed) {
    for (const char* key :
         {"list", "sweep", "tilts", "angles", "elements", "network", "stage-config"}) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || std::string(a) == key;
      if (vm.count(key) && !ok)
        fail_input("--" + std::string(key) + " does not apply to mode " + plan.mode);
    }
  };
  if (plan.mode == "pipeline") {
    only({});
    plan.jobs.push_back(pipeline_job(plan.job_dir, extra));
  } else if (plan.mode == "series") {
    only({"list"});
    require_options(vm, {"list FILE"});
    plan.jobs.push_back(series_job(plan.job_dir, vm["list"].as<std::string>(), extra));
  } else if (plan.mode == "benchmark") {
    only({"sweep"});
    require_options(vm, {"sweep FILE"});
    plan.jobs = benchmark_jobs(plan.job_dir + "/benchmark", vm["sweep"].as<std::string>(), extra);
  } else if (plan.mode == "staged") {
    only({"tilts", "angles", "elements", "network", "stage-config"});
    if (!extra.empty()) fail_input("staged: stage options go in --stage-config, not after --");
    plan.jobs = staged_jobs(plan.job_dir, vm);
  } else {
    fail_input("unknown mode '" + plan.mode + "' (use pipeline, series, benchmark or staged)");
  }

  if (vm.count("dry-run")) {
    print_dry_run(plan);
    return 0;
  }
  submit_and_log(plan);
  return 0;
}

void submit_and_log(const SubmitPlan& plan) {
  const Json record = submit_plan(plan);
  std::string ids;
  for (const auto& j : record["jobs"])
    ids += (ids.empty() ? "" : ", ") + j["name"].get<std::string>() + " " +
           j["submissions"][0]["job_id"].get<std::string>();
  log_info("aet submit: " + plan.mode + " submitted (" + ids +
           "); follow it with aet submit --status " + shell_quote(plan.job_dir));
}

}  // namespace aet::cli
