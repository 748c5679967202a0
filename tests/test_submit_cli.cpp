// aet submit without a cluster: the batch scripts of every mode against golden files, scripts that
// pass hostile paths and values through to aet word for word (run by bash, as Slurm would),
// values Slurm would misread refused, and a failed submission leaves nothing behind (no sbatch,
// a controller that cannot be reached, a refusal half-way through a chain). The real cluster is
// in test_slurm_cli.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "support/cli_support.hpp"

namespace aet {
namespace {

using test::read_text;
using test::run_aet;
using test::run_command;
using test::TempDir;
using test::write_text;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

std::string q(const std::string& s) {  // one shell word for the test's own command lines
  return "'" + replace_all(s, "'", "'\\''") + "'";
}

void make_executable(const std::string& path, const std::string& text) {
  write_text(path, text);
  ASSERT_EQ(chmod(path.c_str(), 0755), 0);
}

// The script of job `name` in --dry-run output.
std::string script_of(const std::string& out, const std::string& name) {
  const std::string head = "/scripts/" + name + ".sbatch\n";
  const auto b = out.find(head);
  if (b == std::string::npos) return "";
  const auto e = out.find("# submitted as:", b);
  return out.substr(b + head.size(), e - b - head.size());
}

const char* const kFixed = " --aet /opt/aet/bin/aet --workdir /data --dry-run";

class SubmitGolden : public ::testing::Test {
 protected:
  // `args` of aet submit, then `extra` after "--" (for the tasks' aet command).
  void expect_golden(const std::string& args, const std::string& extra,
                     const std::string& golden) {
    const auto r = run_aet("submit " + args + kFixed + (extra.empty() ? "" : " -- " + extra));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string got = replace_all(r.output, dir.path(), "@TMP@");
    const std::string want =
        read_text(std::string(AET_SOURCE_DIR) + "/tests/data/submit/" + golden);
    EXPECT_EQ(got, want) << "golden file tests/data/submit/" << golden << "; got:\n" << got;
  }
  TempDir dir;
};

TEST_F(SubmitGolden, PipelineRun) {
  expect_golden("pipeline --out " + dir.file("jobs") +
                    " --partition gpu --account proj-1 --qos normal --time 2:00:00 --cpus 8 "
                    "--gpus 1 --mem 32G --sbatch=--constraint=h100 --module cuda/12",
                "--phantom demo --device cuda",
                "pipeline.golden");
}

TEST_F(SubmitGolden, SeriesArrayWithThrottle) {
  for (const char* f : {"a.mrc", "a.tlt", "b.mrc", "b.tlt"}) write_text(dir.file(f), "x");
  write_text(dir.file("list.txt"), "# two series\na.mrc a.tlt first\n\nb.mrc b.tlt  # named b\n");
  expect_golden("series --list " + dir.file("list.txt") + " --out " + dir.file("jobs") +
                    " --throttle 1 --time 30",
                "--elements Pt --no-network",
                "series.golden");
}

TEST_F(SubmitGolden, BenchmarkCasesThenCollect) {
  write_text(dir.file("sweep.ini"),
             "[sweep]\ntilt_ranges = -60:60, -45:45\nsteps = 10\ndoses = 1e5\nseeds = 0\n"
             "[particle oct]\nphantom = au-octahedron\n"
             "[method fbp]\nalgorithm = fbp\nnetwork = no\nrefine = no\n");
  expect_golden("benchmark --sweep " + dir.file("sweep.ini") + " --out " + dir.file("jobs"), "",
                "benchmark.golden");
}

TEST_F(SubmitGolden, StagedChain) {
  write_text(dir.file("t.mrc"), "x");
  write_text(dir.file("t.tlt"), "x");
  write_text(dir.file("stages.ini"), "[align]\nrounds = 2\n");
  expect_golden("staged --tilts " + dir.file("t.mrc") + " --angles " + dir.file("t.tlt") +
                    " --elements Fe,Pt --network --stage-config " + dir.file("stages.ini") +
                    " --out " + dir.file("jobs") + " --container 'apptainer exec --nv aet.sif'",
                "", "staged.golden");
}

// Paths, names and values full of shell syntax reach aet as the same words, and run nothing.
TEST(Submit, HostileWordsReachAetUnchanged) {
  TempDir dir;
  const std::string hostile = dir.file("d $(touch PWNED1) `touch PWNED2`; touch PWNED3 'q\" $HOME");
  ASSERT_EQ(mkdir(hostile.c_str(), 0755), 0);
  const std::string tilts = hostile + "/t;touch PWNED4.mrc", angles = hostile + "/a'b.tlt";
  write_text(tilts, "x");
  write_text(angles, "x");
  // The list quotes the words as a shell would; its name word is hostile too.
  const std::string list = hostile + "/list.txt";
  write_text(list, "\"t;touch PWNED4.mrc\" \"a'b.tlt\" 'n$(touch PWNED5)'\n");
  // A fake aet that records its arguments, one per line.
  const std::string fake = dir.file("fake-aet");
  make_executable(fake, "#!/bin/bash\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " +
                            q(dir.file("argv.txt")) + "\n");
  const std::string job_dir = hostile + "/jobs $(touch PWNED6)";
  const std::string extra = "Pt\"; touch PWNED7; \"";
  const auto r =
      run_aet("submit series --list " + q(list) + " --out " + q(job_dir) + " --aet " + q(fake) +
              " --workdir " + q(hostile) + " --dry-run -- --elements " + q(extra));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string script = script_of(r.output, "series");
  ASSERT_FALSE(script.empty()) << r.output;
  write_text(dir.file("series.sbatch"), script);
  ASSERT_EQ(run_command("mkdir -p " + q(job_dir + "/status")).exit_code, 0);
  const auto ran =
      run_command("cd " + q(dir.path()) + " && SLURM_ARRAY_TASK_ID=0 bash series.sbatch 2>&1");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  const std::string expected = "pipeline\n--tilts\n" + tilts + "\n--angles\n" + angles +
                               "\n--elements\n" + extra + "\n--out\n" + job_dir +
                               "/results/n$(touch PWNED5)\n";
  EXPECT_EQ(read_text(dir.file("argv.txt")), expected);
  EXPECT_EQ(read_text(job_dir + "/status/series.0.rc"), "0\n");
  const auto found = run_command("find " + q(dir.path()) + " / -maxdepth 1 -name 'PWNED*'");
  EXPECT_FALSE(contains(found.output, "PWNED")) << found.output;
  // A task index the script does not have fails instead of running something else.
  const auto wrong =
      run_command("cd " + q(dir.path()) + " && SLURM_ARRAY_TASK_ID=7 bash series.sbatch 2>&1");
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_TRUE(contains(wrong.output, "no task 7")) << wrong.output;
}

// Values that would break an #SBATCH line or a script line are refused before anything is written.
TEST(Submit, RefusesValuesSlurmWouldMisread) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--partition " + q("debug\n#SBATCH --wrap=x"), "--partition"},
      {"--account " + q("a b"), "--account"},
      {"--time " + q("1:00;reboot"), "--time"},
      {"--time 1:2:3:4", "--time"},
      {"--mem 16Q", "--mem"},
      {"--sbatch " + q("--comment=x\n#SBATCH --wrap=y"), "--sbatch"},
      {"--sbatch " + q("constraint=a100"), "--sbatch"},
      {"--module " + q("-x"), "--module"},
      {"--job-name " + q("a;b"), "--job-name"},
      {"--container " + q("apptainer 'exec"), "unterminated"},
  };
  for (const auto& [args, fragment] : cases) {
    const auto r = run_aet("submit pipeline --out " + dir.file("jobs") + " --dry-run " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, fragment)) << args << "\n" << r.output;
    EXPECT_FALSE(test::file_exists(dir.file("jobs"))) << args;
  }
  // Options aet submit sets itself, and a mode's inputs in the wrong mode.
  const auto out_again =
      run_aet("submit pipeline --out " + dir.file("jobs") + " --dry-run -- -o x");
  EXPECT_EQ(out_again.exit_code, 2);
  EXPECT_TRUE(contains(out_again.output, "set by aet submit")) << out_again.output;
  const auto wrong_mode =
      run_aet("submit pipeline --list l.txt --out " + dir.file("jobs") + " --dry-run");
  EXPECT_EQ(wrong_mode.exit_code, 2);
  EXPECT_TRUE(contains(wrong_mode.output, "--list does not apply")) << wrong_mode.output;
}

TEST(Submit, BadSeriesListNamesFileAndLine) {
  TempDir dir;
  write_text(dir.file("a.mrc"), "x");
  write_text(dir.file("a.tlt"), "x");
  const auto run = [&](const std::string& text) {
    write_text(dir.file("list.txt"), text);
    return run_aet("submit series --list " + dir.file("list.txt") + " --out " + dir.file("jobs") +
                   " --dry-run");
  };
  auto r = run("a.mrc a.tlt\nmissing.mrc a.tlt other\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "list.txt:2: cannot read " + dir.file("missing.mrc"))) << r.output;
  r = run("a.mrc a.tlt x\na.mrc a.tlt x\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "list.txt:2: the name x is used twice")) << r.output;
  r = run("a.mrc\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "list.txt:1: expected TILTS ANGLES [NAME]")) << r.output;
  r = run("# nothing\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "no series in the list")) << r.output;
}

// No sbatch, a controller that cannot be reached, a refusal in the middle of a chain: a clear
// error and nothing left (the jobs already in are cancelled, the folder is gone).
TEST(Submit, FailedSubmissionLeavesNothing) {
  TempDir dir;
  const std::string jobs = dir.file("jobs");
  auto r = run_command("PATH=" + dir.file("empty") + " '" + AET_TEST_BINARY +
                       "' submit pipeline --out " + jobs + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "sbatch not found in PATH")) << r.output;
  EXPECT_FALSE(test::file_exists(jobs));

  const std::string bin = dir.file("bin");
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  make_executable(bin + "/sbatch",
                  "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact "
                  "slurm controller (connect failure)' >&2\nexit 1\n");
  const std::string path = "PATH=" + bin + ":/usr/bin:/bin ";
  r = run_command(path + "'" + AET_TEST_BINARY + "' submit pipeline --out " + jobs + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "Unable to contact slurm controller")) << r.output;
  EXPECT_FALSE(test::file_exists(jobs));

  // The first two jobs of a chain go in, the third is refused: both are cancelled.
  make_executable(bin + "/sbatch",
                  "#!/bin/sh\nn=$(cat " + dir.file("count") +
                      " 2>/dev/null || echo 0)\n"
                      "n=$((n + 1)); echo $n > " +
                      dir.file("count") +
                      "\n"
                      "[ $n -le 2 ] && { echo $((100 + n)); exit 0; }\n"
                      "echo 'sbatch: error: QOSMaxSubmitJobPerUserLimit' >&2; exit 1\n");
  make_executable(bin + "/scancel", "#!/bin/sh\necho \"$@\" >> " + dir.file("cancelled") + "\n");
  write_text(dir.file("t.mrc"), "x");
  write_text(dir.file("t.tlt"), "x");
  ASSERT_EQ(mkdir(jobs.c_str(), 0755), 0);
  write_text(jobs + "/notes.txt", "mine");  // a folder that exists: only what aet wrote goes
  r = run_command(path + "'" + AET_TEST_BINARY + "' submit staged --tilts " + dir.file("t.mrc") +
                  " --angles " + dir.file("t.tlt") + " --elements Pt --out " + jobs + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "QOSMaxSubmitJobPerUserLimit")) << r.output;
  EXPECT_EQ(read_text(dir.file("cancelled")), "101 102\n");
  EXPECT_EQ(test::list_dir(jobs), std::vector<std::string>{"notes.txt"});

  // A folder that holds a submission is not submitted into again.
  write_text(jobs + "/submit.json", "{}");
  r = run_command(path + "'" + AET_TEST_BINARY + "' submit pipeline --out " + jobs + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "holds a submission already")) << r.output;
  r = run_aet("submit --status " + dir.file("nowhere"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "nowhere/submit.json")) << r.output;
}

}  // namespace
}  // namespace aet
