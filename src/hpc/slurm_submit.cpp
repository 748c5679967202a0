// Submitting a plan through sbatch and following it (aet/hpc/slurm.hpp). The Slurm clients are
// run with execvp and their output read through pipes; a task's own status files are the first
// word on how it ended, squeue on what is still queued, sacct (when the cluster keeps accounting)
// on tasks that ended without a status file.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/hpc/slurm.hpp"
#include "aet/io/atomic_file.hpp"

namespace aet {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int status = 0;  // exit status; 127 when the program was not found
  std::string out, err;
};

// Runs argv[0] (looked up in PATH) with no shell, capturing stdout and stderr.
CommandResult run_command(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw InternalError("cannot create a pipe to run " + argv[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw InternalError("cannot start " + argv[0] + " (fork)");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  CommandResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The last `lines` lines of a file (its whole text when shorter).
std::string tail_lines(const std::string& path, int lines) {
  const std::string text = trimmed(read_text_file(path));
  std::size_t pos = text.size();
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i)
    pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

Json plan_json(const SubmitPlan& plan) {
  Json j;
  j["mode"] = plan.mode;
  j["job_dir"] = plan.job_dir;
  j["workdir"] = plan.workdir;
  j["aet"] = plan.aet;
  j["throttle"] = plan.resources.throttle;
  j["created"] = now_text();
  Json jobs = Json::array();
  for (const auto& job : plan.jobs) {
    Json jj;
    jj["name"] = job.name;
    jj["script"] = plan.job_dir + "/scripts/" + job.name + ".sbatch";
    jj["after_ok"] = job.after_ok;
    jj["after_any"] = job.after_any;
    Json tasks = Json::array();
    for (const auto& t : job.tasks) tasks.push_back(Json{{"name", t.name}, {"result", t.result}});
    jj["tasks"] = tasks;
    jj["submissions"] = Json::array();
    jobs.push_back(jj);
  }
  j["jobs"] = jobs;
  return j;
}

Json read_submission(const std::string& job_dir) {
  const std::string path = job_dir + "/submit.json";
  std::ifstream in(path);
  if (!in) fail_file(path, "no submission here (aet submit writes submit.json)");
  try {
    Json j = Json::parse(in);
    if (!j.contains("jobs") || !j["jobs"].is_array()) fail_file(path, "no jobs in it");
    return j;
  } catch (const nlohmann::json::exception& e) {
    fail_file(path, std::string("not a submission record: ") + e.what());
  }
}

// Submits one job: sbatch ARGS; returns the job id or throws with sbatch's message.
std::string sbatch(const std::vector<std::string>& args, const std::string& job) {
  std::vector<std::string> argv = {"sbatch"};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = run_command(argv);
  const std::string id = trimmed(r.out).substr(0, trimmed(r.out).find(';'));
  if (r.status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw ExternalError("sbatch refused job " + job + " (exit " + std::to_string(r.status) +
                        "): " + trimmed(r.err.empty() ? r.out : r.err));
  return id;
}

void scancel(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  std::vector<std::string> argv = {"scancel"};
  argv.insert(argv.end(), ids.begin(), ids.end());
  run_command(argv);
}

struct QueueEntry {
  std::string state, reason;
};

// squeue's view of the jobs: "JOB_TASK" -> state and reason (array tasks one per line).
std::map<std::string, QueueEntry> queued_tasks(const std::vector<std::string>& ids) {
  std::map<std::string, QueueEntry> q;
  if (ids.empty()) return q;
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  const CommandResult r =
      run_command({"squeue", "--noheader", "--array", "--jobs=" + list, "--format=%i %T %r"});
  if (r.status == 127) fail_input("squeue not found in PATH: aet submit needs a Slurm login node");
  // squeue exits 1 for job ids it no longer knows; the lines it printed still count.
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string id, state, reason;
    words >> id >> state;
    std::getline(words, reason);
    if (!id.empty()) q[id] = QueueEntry{state, trimmed(reason.empty() ? "" : reason.substr(1))};
  }
  return q;
}

// sacct's final states ("JOB_TASK" -> state), when the cluster keeps accounting; empty otherwise.
std::map<std::string, std::string> accounted_states(const std::vector<std::string>& ids) {
  std::map<std::string, std::string> s;
  if (ids.empty() || !in_path("sacct")) return s;
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  const CommandResult r =
      run_command({"sacct", "--noheader", "--parsable2", "--jobs=" + list, "--format=JobID,State"});
  if (r.status != 0) return s;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto bar = line.find('|');
    if (bar == std::string::npos) continue;
    const std::string id = line.substr(0, bar);
    if (id.find('.') == std::string::npos) s[id] = line.substr(bar + 1);
  }
  return s;
}

// The Slurm job id of the latest submission of each task of job `j` (empty: never submitted).
std::vector<std::string> task_job_ids(const Json& j) {
  std::vector<std::string> ids(j["tasks"].size());
  for (const auto& sub : j["submissions"])
    for (const auto& t : sub["tasks"]) ids.at(t.get<std::size_t>()) = sub["job_id"];
  return ids;
}

// squeue states of a task that has not ended (squeue also lists ended ones for a while).
bool queued_state(const std::string& s) {
  return s == "PENDING" || s == "RUNNING" || s == "CONFIGURING" || s == "COMPLETING" ||
         s == "SUSPENDED" || s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "RESIZING" ||
         s == "SIGNALING" || s == "STAGE_OUT";
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Json submit_plan(const SubmitPlan& plan) {
  check_slurm_resources(plan.resources);
  if (plan.jobs.empty()) fail_input("aet submit: nothing to submit");
  if (!in_path("sbatch"))
    fail_input(
        "sbatch not found in PATH: aet submit needs a Slurm login node (--dry-run prints "
        "the scripts without submitting)");
  const std::string& dir = plan.job_dir;
  if (fs::exists(dir + "/submit.json"))
    fail_file(dir, "holds a submission already (aet submit --status / --rerun follow it)");
  const bool created = !fs::exists(dir);
  ensure_directory(dir);
  std::vector<std::string> written;
  for (const char* sub : {"scripts", "logs", "status"}) {
    const std::string p = dir + "/" + sub;
    if (!fs::exists(p)) written.push_back(p);
    ensure_directory(p);
  }
  std::vector<std::string> submitted;
  Json record = plan_json(plan);
  try {
    for (const auto& job : plan.jobs) {
      const std::string script = dir + "/scripts/" + job.name + ".sbatch";
      write_text_file(script, batch_script(plan, job));
      ::chmod(script.c_str(), 0755);
    }
    std::map<std::string, std::string> ids;
    for (std::size_t k = 0; k < plan.jobs.size(); ++k) {
      const SlurmJob& job = plan.jobs[k];
      std::vector<std::string> ok, any;
      for (const auto& d : job.after_ok) ok.push_back(ids.at(d));
      for (const auto& d : job.after_any) any.push_back(ids.at(d));
      const std::string id = sbatch(sbatch_arguments(plan, job, {}, ok, any), job.name);
      submitted.push_back(id);
      ids[job.name] = id;
      Json tasks = Json::array();
      for (std::size_t t = 0; t < job.tasks.size(); ++t) tasks.push_back(t);
      record["jobs"][k]["submissions"].push_back(
          Json{{"job_id", id}, {"tasks", tasks}, {"time", now_text()}});
    }
    write_text_file(dir + "/submit.json", json_text(record));
  } catch (...) {
    // Nothing half-submitted: cancel what went in, remove what was written.
    scancel(submitted);
    std::error_code ec;
    for (const auto& job : plan.jobs) fs::remove(dir + "/scripts/" + job.name + ".sbatch", ec);
    for (auto it = written.rbegin(); it != written.rend(); ++it) fs::remove(*it, ec);
    if (created) fs::remove(dir, ec);
    throw;
  }
  return record;
}

Json submission_status(const std::string& job_dir) {
  const Json rec = read_submission(job_dir);
  std::vector<std::string> all_ids;
  for (const auto& j : rec["jobs"])
    for (const auto& sub : j["submissions"]) all_ids.push_back(sub["job_id"]);
  const auto queue = queued_tasks(all_ids);
  std::map<std::string, std::string> accounted;
  bool asked_sacct = false;

  Json out;
  out["job_dir"] = job_dir;
  out["mode"] = rec["mode"];
  Json jobs = Json::array();
  std::map<std::string, int> totals;
  for (const auto& j : rec["jobs"]) {
    const std::string name = j["name"];
    const auto ids = task_job_ids(j);
    Json jj;
    jj["name"] = name;
    Json tasks = Json::array();
    for (std::size_t t = 0; t < ids.size(); ++t) {
      Json tj;
      tj["index"] = t;
      tj["name"] = j["tasks"][t]["name"];
      tj["job_id"] = ids[t];
      const std::string key = ids[t] + "_" + std::to_string(t);
      const std::string base = job_dir + "/status/" + name + "." + std::to_string(t);
      const std::string log = job_dir + "/logs/" + name + "-" + key + ".log";
      std::string state;
      const auto q = queue.find(key);
      if (ids[t].empty()) {
        state = "not run";
      } else if (q != queue.end() && queued_state(q->second.state)) {
        const bool blocked = q->second.reason.find("DependencyNeverSatisfied") != std::string::npos;
        state = blocked ? "blocked" : q->second.state == "PENDING" ? "pending" : "running";
        tj["slurm_state"] = q->second.state;
        if (!q->second.reason.empty() && q->second.reason != "None")
          tj["reason"] = q->second.reason;
      } else if (is_file(base + ".rc")) {
        const std::string rc = trimmed(read_text_file(base + ".rc"));
        tj["exit_status"] = rc;
        state = rc == "0" ? "done" : "failed";
      } else {
        if (!asked_sacct) {
          accounted = accounted_states(all_ids);
          asked_sacct = true;
        }
        state = is_file(base + ".started") ? "lost" : "not run";
        const auto a = accounted.find(key);
        if (a != accounted.end())
          tj["slurm_state"] = a->second;
        else if (q != queue.end())
          tj["slurm_state"] = q->second.state;  // an ended job squeue still lists
      }
      tj["state"] = state;
      if (is_file(log)) {
        tj["log"] = log;
        if (state == "failed" || state == "lost") tj["log_tail"] = tail_lines(log, 8);
      }
      ++totals[state];
      tasks.push_back(tj);
    }
    jj["tasks"] = tasks;
    jobs.push_back(jj);
  }
  out["jobs"] = jobs;
  Json t;
  for (const char* s : {"done", "failed", "lost", "blocked", "not run", "running", "pending"})
    t[s] = totals[s];
  out["totals"] = t;
  return out;
}

std::string status_text(const Json& status) {
  std::string s;
  for (const auto& j : status["jobs"]) {
    std::map<std::string, int> n;
    for (const auto& t : j["tasks"]) ++n[t["state"].get<std::string>()];
    std::string counts;
    for (const auto& kv : n)
      counts += (counts.empty() ? "" : ", ") + std::to_string(kv.second) + " " + kv.first;
    s += j["name"].get<std::string>() + ": " + std::to_string(j["tasks"].size()) + " task" +
         (j["tasks"].size() == 1 ? "" : "s") + " (" + counts + ")\n";
    for (const auto& t : j["tasks"]) {
      const std::string state = t["state"];
      if (state == "done") continue;
      s += "  " + std::to_string(t["index"].get<int>()) + " " + t["name"].get<std::string>() +
           ": " + state;
      if (t.contains("exit_status")) s += " (exit " + t["exit_status"].get<std::string>() + ")";
      if (t.contains("reason")) s += " (" + t["reason"].get<std::string>() + ")";
      if (t.contains("slurm_state") && state != "pending" && state != "running")
        s += " [" + t["slurm_state"].get<std::string>() + "]";
      if (t.contains("log")) s += "; log " + t["log"].get<std::string>();
      s += "\n";
      if (t.contains("log_tail")) {
        std::istringstream lines(t["log_tail"].get<std::string>());
        std::string line;
        while (std::getline(lines, line)) s += "    | " + line + "\n";
      }
    }
  }
  const Json& t = status["totals"];
  s += "total: ";
  bool first = true;
  for (auto it = t.begin(); it != t.end(); ++it) {
    if (it.value().get<int>() == 0) continue;
    s += (first ? "" : ", ") + std::to_string(it.value().get<int>()) + " " + it.key();
    first = false;
  }
  return s + "\n";
}

int rerun_failed(const std::string& job_dir) {
  if (!in_path("sbatch"))
    fail_input("sbatch not found in PATH: aet submit needs a Slurm login node");
  Json rec = read_submission(job_dir);
  const Json status = submission_status(job_dir);
  // What reruns: tasks that failed, were lost, blocked or never ran; and every task of a job
  // that depends on a job rerunning (its dependency is on the new submission).
  std::map<std::string, std::vector<int>> rerun;
  std::vector<std::string> blocked_ids;
  std::set<std::string> rerunning;
  for (std::size_t k = 0; k < rec["jobs"].size(); ++k) {
    const Json& j = rec["jobs"][k];
    const Json& st = status["jobs"][k];
    bool follows = false;
    for (const char* dep : {"after_ok", "after_any"})
      for (const auto& d : j[dep]) follows = follows || rerunning.count(d.get<std::string>());
    std::vector<int> tasks;
    for (const auto& t : st["tasks"]) {
      const std::string state = t["state"];
      const bool again = state == "failed" || state == "lost" || state == "blocked" ||
                         state == "not run" || (follows && state != "running");
      if (!again) continue;
      if (state == "blocked" || (follows && state == "pending"))
        blocked_ids.push_back(t["job_id"].get<std::string>() + "_" +
                              std::to_string(t["index"].get<int>()));
      tasks.push_back(t["index"].get<int>());
    }
    if (!tasks.empty()) {
      rerun[j["name"]] = tasks;
      rerunning.insert(j["name"].get<std::string>());
    }
  }
  if (rerun.empty()) return 0;
  scancel(blocked_ids);

  // The plan again from the record, for the sbatch arguments (the scripts are on disk).
  SubmitPlan plan;
  plan.mode = rec["mode"];
  plan.job_dir = rec["job_dir"];
  plan.workdir = rec["workdir"];
  plan.aet = rec["aet"];
  if (rec.contains("throttle")) plan.resources.throttle = rec["throttle"];
  std::map<std::string, std::string> new_ids;
  int count = 0;
  for (auto& j : rec["jobs"]) {
    const auto it = rerun.find(j["name"]);
    if (it == rerun.end()) continue;
    SlurmJob job;
    job.name = j["name"];
    job.tasks.resize(j["tasks"].size());
    std::vector<std::string> ok, any;
    for (const auto& d : j["after_ok"])
      if (new_ids.count(d)) ok.push_back(new_ids[d]);
    for (const auto& d : j["after_any"])
      if (new_ids.count(d)) any.push_back(new_ids[d]);
    const std::string id = sbatch(sbatch_arguments(plan, job, it->second, ok, any), job.name);
    new_ids[job.name] = id;
    j["submissions"].push_back(Json{{"job_id", id}, {"tasks", it->second}, {"time", now_text()}});
    count += static_cast<int>(it->second.size());
    // Recorded after each sbatch: a later failure leaves the record true to what is queued.
    write_text_file(job_dir + "/submit.json", json_text(rec));
  }
  return count;
}

}  // namespace aet
