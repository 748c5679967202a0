// The batch scripts and sbatch arguments of a submission (aet/hpc/slurm.hpp): text only, no
// Slurm needed, so that --dry-run and the golden-file tests see exactly what is submitted.
#include <cctype>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/hpc/slurm.hpp"

namespace aet {
namespace {

bool all_of_chars(const std::string& s, const char* allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string::npos;
}

const char* const kNameChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:+-";

void check_token(const std::string& option, const std::string& value, const char* allowed,
                 const std::string& syntax) {
  if (value.empty()) return;
  if (!all_of_chars(value, allowed))
    fail_input("--" + option + " '" + value + "': not a Slurm " + syntax);
}

// Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; also "infinite"/"unlimited".
bool is_slurm_time(const std::string& t) {
  if (t == "infinite" || t == "unlimited" || t == "UNLIMITED" || t == "INFINITE") return true;
  std::string rest = t;
  const auto dash = t.find('-');
  if (dash != std::string::npos) {
    if (dash == 0 || !all_of_chars(t.substr(0, dash), "0123456789")) return false;
    rest = t.substr(dash + 1);
  }
  int fields = 0;
  std::size_t start = 0;
  while (true) {
    const auto colon = rest.find(':', start);
    const std::string f = rest.substr(start, colon == std::string::npos ? colon : colon - start);
    if (!all_of_chars(f, "0123456789")) return false;
    ++fields;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return fields <= 3;
}

bool printable_line(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

// Text for a comment line of the script: control characters (a newline would end the comment
// and start a command) become '?'.
std::string comment_text(const std::string& s) {
  std::string r = s;
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return r;
}

// A value as sbatch reads it from a file name pattern: '%' starts a replacement, '%%' is one '%'.
std::string slurm_pattern_literal(const std::string& s) {
  std::string r;
  for (char c : s) r += c == '%' ? std::string("%%") : std::string(1, c);
  return r;
}

std::string quoted_words(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + shell_quote(w);
  return s;
}

std::string join_ids(const std::vector<std::string>& ids) {
  std::string s;
  for (const auto& id : ids)
    if (!id.empty()) s += ":" + id;
  return s;
}

}  // namespace

void check_slurm_resources(const SlurmResources& r) {
  check_token("partition", r.partition, kNameChars, "partition name (letters, digits, _.,:+-)");
  check_token("account", r.account, kNameChars, "account name (letters, digits, _.,:+-)");
  check_token("qos", r.qos, kNameChars, "QOS name (letters, digits, _.,:+-)");
  check_token("mem", r.mem, "0123456789KMGTkmgt", "memory size (e.g. 16G)");
  if (!r.mem.empty() && !std::isdigit(static_cast<unsigned char>(r.mem[0])))
    fail_input("--mem '" + r.mem + "': not a Slurm memory size (e.g. 16G)");
  if (!r.time.empty() && !is_slurm_time(r.time))
    fail_input("--time '" + r.time + "': not a Slurm time (MM, HH:MM:SS or D-HH:MM:SS)");
  if (!all_of_chars(r.job_name,
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"))
    fail_input("--job-name '" + r.job_name + "': use letters, digits, '_', '.' and '-'");
  if (r.cpus_per_task < 0) fail_input("--cpus must be >= 0");
  if (r.gpus_per_task < 0) fail_input("--gpus must be >= 0");
  if (r.throttle < 0) fail_input("--throttle must be >= 0");
  for (const auto& line : r.extra_sbatch)
    if (line.rfind("--", 0) != 0 || line.size() < 3 || !printable_line(line))
      fail_input("--sbatch '" + line +
                 "': give one sbatch option per --sbatch, starting with "
                 "'--', on one line");
  for (const auto& m : r.modules)
    if (m.empty() || !printable_line(m) || m[0] == '-')
      fail_input("--module '" + m + "': give one module name per --module");
  for (const auto& w : r.container)
    if (!printable_line(w)) fail_input("--container: a word holds a control character");
}

std::vector<std::string> split_words(const std::string& line, const std::string& what) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      const auto end = [&] {
        for (std::size_t j = i + 1; j < line.size(); ++j) {
          if (c == '"' && line[j] == '\\' && j + 1 < line.size() &&
              (line[j + 1] == '"' || line[j + 1] == '\\')) {
            cur += line[++j];
            continue;
          }
          if (line[j] == c) return j;
          cur += line[j];
        }
        fail_input(what + ": unterminated " + std::string(1, c) + " quote");
      }();
      i = end;
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(cur);
  return words;
}

std::string batch_script(const SubmitPlan& plan, const SlurmJob& job) {
  const SlurmResources& r = plan.resources;
  std::string s = "#!/bin/bash\n";
  s += "# aet submit (" + plan.mode + "): " + comment_text(job.about) + "\n";
  s += "#SBATCH --job-name=" + r.job_name + "-" + job.name + "\n";
  if (!r.partition.empty()) s += "#SBATCH --partition=" + r.partition + "\n";
  if (!r.account.empty()) s += "#SBATCH --account=" + r.account + "\n";
  if (!r.qos.empty()) s += "#SBATCH --qos=" + r.qos + "\n";
  if (!r.time.empty()) s += "#SBATCH --time=" + r.time + "\n";
  if (r.cpus_per_task > 0) s += "#SBATCH --cpus-per-task=" + std::to_string(r.cpus_per_task) + "\n";
  if (r.gpus_per_task > 0) s += "#SBATCH --gpus-per-task=" + std::to_string(r.gpus_per_task) + "\n";
  if (!r.mem.empty()) s += "#SBATCH --mem=" + r.mem + "\n";
  for (const auto& line : r.extra_sbatch) s += "#SBATCH " + line + "\n";
  s += "set -u\n";
  for (const auto& m : r.modules) s += "module load " + shell_quote(m) + " || exit 2\n";
  s += "jobdir=" + shell_quote(plan.job_dir) + "\n";
  s += "cd " + shell_quote(plan.workdir) + " || exit 2\n";
  s += "aet=" + shell_quote(plan.aet) + "\n";
  s += "task=${SLURM_ARRAY_TASK_ID:-0}\n";
  s += "run() {\n  case $task in\n";
  const std::string launcher = r.container.empty() ? "" : quoted_words(r.container) + " ";
  for (std::size_t t = 0; t < job.tasks.size(); ++t) {
    const SlurmTask& task = job.tasks[t];
    s += "    " + std::to_string(t) + ")  # " + comment_text(task.name) + "\n";
    for (std::size_t c = 0; c < task.commands.size(); ++c)
      s += "      " + launcher + "\"$aet\" " + quoted_words(task.commands[c]) +
           (c + 1 < task.commands.size() ? " || return\n" : "\n");
    s += "      ;;\n";
  }
  s += "    *) echo \"aet submit: this script has no task $task\" >&2; return 2 ;;\n  esac\n}\n";
  const std::string status = "\"$jobdir/status/" + job.name + ".$task";
  // scancel and the time limit send SIGTERM to the script and to aet (which removes its partial
  // outputs and exits 143); the script waits for aet, then records 143.
  s += "trap 'echo 143 >" + status + ".rc\"; exit 143' TERM\n";
  s += "rm -f " + status + ".rc\"\n";
  s += "date +%s >" + status + ".started\"\n";
  s += "run\nrc=$?\n";
  s += "echo \"$rc\" >" + status + ".rc\"\n";
  s += "exit \"$rc\"\n";
  return s;
}

std::vector<std::string> sbatch_arguments(const SubmitPlan& plan, const SlurmJob& job,
                                          const std::vector<int>& tasks,
                                          const std::vector<std::string>& after_ok_ids,
                                          const std::vector<std::string>& after_any_ids) {
  std::vector<std::string> a = {"--parsable"};
  std::string array;
  if (tasks.empty()) {
    array = "0-" + std::to_string(job.tasks.size() - 1);
  } else {
    for (int t : tasks) array += (array.empty() ? "" : ",") + std::to_string(t);
  }
  if (plan.resources.throttle > 0) array += "%" + std::to_string(plan.resources.throttle);
  a.push_back("--array=" + array);
  a.push_back("--output=" + slurm_pattern_literal(plan.job_dir) + "/logs/" + job.name +
              "-%A_%a.log");
  std::vector<std::string> deps;
  const std::string ok = join_ids(after_ok_ids), any = join_ids(after_any_ids);
  if (!ok.empty()) deps.push_back("afterok" + ok);
  if (!any.empty()) deps.push_back("afterany" + any);
  if (!deps.empty()) {
    std::string d = "--dependency=";
    for (std::size_t i = 0; i < deps.size(); ++i) d += (i ? "," : "") + deps[i];
    a.push_back(d);
  }
  a.push_back(plan.job_dir + "/scripts/" + job.name + ".sbatch");
  return a;
}

}  // namespace aet
