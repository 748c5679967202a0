// The parts of `aet submit` other commands use (aet benchmark --slurm): the Slurm plan from the
// "Slurm" option group (cli/options.hpp), a benchmark's jobs, the dry run and the submission.
#pragma once

#include <string>
#include <vector>

#include "aet/hpc/slurm.hpp"
#include "cli/cli.hpp"

namespace aet::cli {

// A plan with no jobs yet: mode, the job folder (made absolute), --workdir, --aet and the Slurm
// resources of the "Slurm" option group.
SubmitPlan slurm_plan(const po::variables_map& vm, const std::string& mode,
                      const std::string& job_dir);

// A benchmark as Slurm jobs: an array with one task per case of the sweep (aet benchmark --case,
// into `out`), then a job that collects after all of them ended (afterany). `extra`: more options
// of every task's aet benchmark.
std::vector<SlurmJob> benchmark_jobs(const std::string& out, const std::string& sweep_path,
                                     const std::vector<std::string>& extra);

// --dry-run: every job's script and its sbatch command line on stdout.
void print_dry_run(const SubmitPlan& plan);

// Submits (submit_plan) and logs the job ids and how to follow them.
void submit_and_log(const SubmitPlan& plan);

}  // namespace aet::cli
