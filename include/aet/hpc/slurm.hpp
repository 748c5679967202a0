// Slurm batch jobs for aet runs (`aet submit`, docs/hpc.md): a submission is a plan of jobs, each
// a job array whose tasks run aet commands, with afterok / afterany dependencies between jobs.
// The plan is written as batch scripts in a job folder with submit.json, submitted through
// sbatch, and followed from the tasks' own exit-status files and squeue (sacct when the cluster
// keeps accounting).
//
// Nothing from the user reaches a shell unquoted: every word of a command is single-quoted in the
// script, #SBATCH values are checked against what Slurm accepts, and sbatch / squeue / scancel
// are run with execvp, never through a shell.
#pragma once

#include <string>
#include <vector>

#include "aet/core/json.hpp"

namespace aet {

// What each job asks Slurm for (#SBATCH lines) and how its tasks start.
struct SlurmResources {
  std::string partition, account, qos;
  std::string time;       // Slurm time: MM, HH:MM:SS, D-HH[:MM[:SS]]
  std::string mem;        // per node: 4000, 16G, ...
  int cpus_per_task = 0;  // 0: Slurm's default; aet's threads follow SLURM_CPUS_PER_TASK
  int gpus_per_task = 0;
  int throttle = 0;  // most array tasks running at once (%N); 0 = no limit
  std::string job_name = "aet";
  std::vector<std::string> extra_sbatch;  // "--constraint=a100", each an #SBATCH line
  std::vector<std::string> modules;       // `module load` before the tasks
  std::vector<std::string> container;     // words put before the aet binary (apptainer exec ...)
};

// Throws InputError naming the option for a value Slurm would misread or that could break the
// script: characters outside each value's syntax, newlines, an extra line not starting with "--".
void check_slurm_resources(const SlurmResources& r);

// One task of a job: the aet commands it runs one after the other (each the arguments after the
// aet binary; the first failing one ends the task with its exit status).
struct SlurmTask {
  std::string name;  // the series, case or stage it runs
  std::vector<std::vector<std::string>> commands;
  std::string result;  // the file or folder it writes (for --status)
};

struct SlurmJob {
  std::string name;              // unique in the plan: scripts/NAME.sbatch, logs/NAME-JOB_TASK.log
  std::string about;             // one comment line at the top of the script
  std::vector<SlurmTask> tasks;  // array indices 0..n-1
  std::vector<std::string> after_ok;   // jobs (names) all of whose tasks must have succeeded
  std::vector<std::string> after_any;  // jobs (names) that must have ended
};

struct SubmitPlan {
  std::string mode;     // pipeline, series, benchmark, staged
  std::string job_dir;  // absolute
  std::string workdir;  // absolute: the tasks' working directory (relative paths in arguments)
  std::string aet;      // the aet binary the tasks run
  SlurmResources resources;
  std::vector<SlurmJob> jobs;  // in submission order: a job's dependencies come before it
};

// Splits a line into words as a POSIX shell would for quoting purposes only: blanks separate,
// '...' and "..." group (backslash escapes \" and \\ inside double quotes); no expansion. Throws
// InputError (naming `what`) for an unterminated quote.
std::vector<std::string> split_words(const std::string& line, const std::string& what);

// The batch script of `job` (bash): #SBATCH lines, modules, the task table, status files
// (status/NAME.TASK.started, status/NAME.TASK.rc) around the commands.
std::string batch_script(const SubmitPlan& plan, const SlurmJob& job);

// sbatch's arguments for `job` (without "sbatch" and the script): --parsable, the array (only
// `tasks`, or all when empty), its throttle, the log path, the dependencies on `dependency_ids`
// (the Slurm job ids of after_ok / after_any in that order; empty entries are left out).
std::vector<std::string> sbatch_arguments(const SubmitPlan& plan, const SlurmJob& job,
                                          const std::vector<int>& tasks,
                                          const std::vector<std::string>& after_ok_ids,
                                          const std::vector<std::string>& after_any_ids);

// Writes the scripts, logs/ and status/ folders and submit.json into plan.job_dir (which must not
// hold a submission already), then submits every job in order. If an sbatch fails, the jobs
// already submitted are cancelled and the files written are removed before the error (sbatch's
// message) is thrown: nothing is left half-submitted. Returns submit.json's content.
Json submit_plan(const SubmitPlan& plan);

// The state of every task of the submission in job_dir: per job and task "done", "failed"
// (exit status and the tail of the log), "running", "pending" (with Slurm's reason), "blocked"
// (a dependency failed), "lost" (started, ended without a status: killed, time limit, node) or
// "not run" (never started, no longer queued).
Json submission_status(const std::string& job_dir);

// Resubmits the tasks that failed, were lost, blocked or never ran (blocked ones are cancelled
// first), and the jobs depending on them, recorded in submit.json. Returns the number of tasks
// resubmitted.
int rerun_failed(const std::string& job_dir);

// The text --status prints: one line per job, then one per task that is not done.
std::string status_text(const Json& status);

}  // namespace aet
