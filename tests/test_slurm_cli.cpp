// aet submit on a real one-node Slurm cluster (tests/slurm/, started by the ctest fixture
// slurm_start and stopped by slurm_stop): a job array of three simulated series, and a staged
// chain whose first stage fails, leaves the rest blocked, and completes in order after --rerun.
// Run directly (not through ctest) the suite starts and stops the cluster itself. Skips, with the
// reason, only where Slurm cannot be installed or started.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "aet/core/json.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

using test::file_exists;
using test::read_text;
using test::run_command;
using test::RunResult;
using test::TempDir;
using test::write_text;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// Small simulated series: a 309-atom Pt cuboctahedron, 21 views.
const char* const kSimulate = " --phantom pt-cuboctahedron-309 --tilt-range -60:60:6 --quiet";
// A quick pipeline on them: no alignment, network, analysis or report.
const char* const kPipeline =
    " --elements Pt --no-align --no-network --no-analysis --no-report --iterations 20 --quiet";

int atom_count(const std::string& xyz) {
  return std::atoi(read_text(xyz).c_str());
}

double modified_seconds(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

class Slurm : public ::testing::Test {
 protected:
  // Under ctest the fixture slurm_start has started the cluster (AET_SLURM_DIR); run directly,
  // the suite starts one of its own and stops it at the end.
  static void SetUpTestSuite() {
    if (const char* dir = std::getenv("AET_SLURM_DIR")) {
      state_ = dir;
      return;
    }
    state_ = "/tmp/aet-slurm-gtest";
    own_ = true;
    const auto r = run_command(std::string("'") + AET_SOURCE_DIR + "/tests/slurm/ctest-start.sh' " +
                               state_ + " 2>&1");
    if (r.exit_code != 0) std::fprintf(stderr, "%s\n", r.output.c_str());
  }
  static void TearDownTestSuite() {
    if (own_) run_command(std::string("'") + AET_SOURCE_DIR + "/tests/slurm/stop.sh' " + state_);
  }
  void SetUp() override {
    if (file_exists(state_ + "/unavailable"))
      GTEST_SKIP() << "Slurm cannot run here: " << read_text(state_ + "/unavailable");
    ASSERT_TRUE(file_exists(state_ + "/slurm.conf")) << "the Slurm cluster did not start";
    env_ = "SLURM_CONF=" + state_ + "/slurm.conf ";
  }

  RunResult aet(const std::string& args) {
    return run_command(env_ + "'" + AET_TEST_BINARY + "' " + args + " 2>&1");
  }

  void simulate(const std::string& out, int seed) {
    const auto r = aet("simulate --out " + out + " --seed " + std::to_string(seed) + kSimulate);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Polls --status until `done(status)` holds (or five minutes pass); returns the last status.
  template <class Done>
  Json wait_until(const std::string& job_dir, Done done) {
    Json status;
    for (int i = 0; i < 600; ++i) {
      const auto r = aet("submit --status " + job_dir + " --json");
      status = Json::parse(r.output, nullptr, false);
      if (!status.is_discarded() && done(status)) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "timed out waiting for " << job_dir << ": " << status.dump();
    return status;
  }

  static std::string state_of(const Json& status, const std::string& job) {
    for (const auto& j : status["jobs"])
      if (j["name"] == job) return j["tasks"][0]["state"];
    return "?";
  }

  static bool all_ended(const Json& s) {
    const Json& t = s["totals"];
    return t["pending"] == 0 && t["running"] == 0;
  }

  static inline std::string state_;
  static inline bool own_ = false;
  std::string env_;
};

TEST_F(Slurm, SeriesArrayRunsEveryTask) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) simulate(dir.file("s" + std::to_string(i)), i + 1);
  write_text(
      dir.file("list.txt"),
      "s0/tilts.mrc s0/tilts.tlt a\ns1/tilts.mrc s1/tilts.tlt b\ns2/tilts.mrc s2/tilts.tlt c\n");
  const std::string jobs = dir.file("jobs");
  const auto r = aet("submit series --list " + dir.file("list.txt") + " --out " + jobs +
                     " --cpus 1 --throttle 2 --time 10 -- " + kPipeline);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "series submitted")) << r.output;
  const Json status = wait_until(jobs, all_ended);
  EXPECT_EQ(status["totals"]["done"], 3) << status.dump();
  // Each task's result in the folder named by its line, a model of about the particle's atoms.
  for (const char* name : {"a", "b", "c"}) {
    const std::string atoms = jobs + "/results/" + name + "/atoms.xyz";
    EXPECT_NEAR(atom_count(atoms), 309, 15) << atoms;
  }
  const auto text = aet("submit --status " + jobs);
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "series: 3 tasks (3 done)")) << text.output;
}

// The real sbatch, told of a controller nobody answers for: its own words, exit 1, nothing left.
TEST_F(Slurm, UnreachableControllerLeavesNothing) {
  TempDir dir;
  const std::string conf = dir.file("slurm.conf");
  ASSERT_EQ(run_command("sed '/^SlurmctldPort/d' " + state_ + "/slurm.conf > " + conf +
                        " && echo SlurmctldPort=6999 >> " + conf)
                .exit_code,
            0);
  const auto r = run_command("SLURM_CONF=" + conf + " '" + AET_TEST_BINARY +
                             "' submit pipeline --out " + dir.file("jobs") + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "Unable to contact slurm controller")) << r.output;
  EXPECT_FALSE(file_exists(dir.file("jobs")));
}

// aet benchmark --slurm: one array task per case, then the collecting job once every case ended.
TEST_F(Slurm, BenchmarkCasesThenCollect) {
  TempDir dir;
  write_text(dir.file("sweep.ini"),
             "[sweep]\ntilt_ranges = -60:60, -45:45\nsteps = 10\ndoses = 1e5\nseeds = 0\n"
             "[particle oct]\nphantom = au-octahedron\n"
             "[method fbp]\nalgorithm = fbp\nnetwork = no\nrefine = no\n");
  // aet benchmark --slurm: the same jobs as aet submit benchmark, the job folder DIR/slurm.
  const std::string bench = dir.file("bench");
  const auto r = aet("benchmark --sweep " + dir.file("sweep.ini") + " --out " + bench +
                     " --slurm --cpus 1 --time 10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json status = wait_until(bench + "/slurm", all_ended);
  EXPECT_EQ(status["totals"]["done"], 3) << status.dump();  // 2 cases + the collection
  const Json results = Json::parse(read_text(bench + "/results.json"));
  ASSERT_EQ(results["rows"].size(), 2u) << results.dump();
  for (const auto& row : results["rows"]) {
    EXPECT_EQ(row["status"], "ok") << row.dump();
    EXPECT_GT(row["recall"].get<double>(), 0.9) << row.dump();
  }
}

TEST_F(Slurm, StagedChainBlocksOnFailureAndReruns) {
  TempDir dir;
  simulate(dir.file("sim"), 7);
  // The tilts the chain is given are broken at first: align fails, the rest is blocked.
  write_text(dir.file("tilts.mrc"), "not an MRC file");
  write_text(dir.file("stages.ini"),
             "[align]\nrounds = 1\niterations = 10\n[reconstruct]\niterations = 20\n");
  const std::string jobs = dir.file("jobs");
  auto r = aet("submit staged --tilts " + dir.file("tilts.mrc") + " --angles " +
               dir.file("sim/tilts.tlt") + " --elements Pt --stage-config " +
               dir.file("stages.ini") + " --out " + jobs + " --cpus 1 --time 10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json status = wait_until(jobs, [](const Json& s) {
    return state_of(s, "align") == "failed" && state_of(s, "reconstruct") == "blocked";
  });
  auto text = aet("submit --status " + jobs);
  EXPECT_EQ(text.exit_code, 4) << text.output;
  EXPECT_TRUE(contains(text.output, "align: failed (exit 2)")) << text.output;
  EXPECT_TRUE(contains(text.output, "| aet align: error: ")) << text.output;  // the log's tail
  EXPECT_TRUE(contains(text.output, "reconstruct: blocked")) << text.output;
  EXPECT_FALSE(file_exists(jobs + "/stages/reconstruct"));

  // Fixed input, --rerun: align again, then each stage after the one before succeeded.
  ASSERT_EQ(run_command("cp " + dir.file("sim/tilts.mrc") + " " + dir.file("tilts.mrc")).exit_code,
            0);
  r = aet("submit --rerun " + jobs);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "resubmitted 4 tasks")) << r.output;
  status = wait_until(jobs, [](const Json& s) {
    return s["totals"]["done"] == 4 || s["totals"]["failed"].get<int>() > 0 ||
           s["totals"]["lost"].get<int>() > 0;
  });
  EXPECT_EQ(status["totals"]["done"], 4) << status.dump();
  const std::string s = jobs + "/stages/";
  EXPECT_TRUE(file_exists(s + "align/aligned.mrc"));
  EXPECT_TRUE(file_exists(s + "reconstruct/volume.mrc"));
  EXPECT_GT(atom_count(s + "refine/refined.xyz"), 250);
  EXPECT_TRUE(file_exists(s + "analyze/analysis.json"));
  // Each stage started after the one it waits for had written its exit status.
  const char* const order[] = {"align", "reconstruct", "trace-refine", "analyze"};
  for (int k = 1; k < 4; ++k)
    EXPECT_GE(modified_seconds(jobs + "/status/" + order[k] + ".0.started"),
              modified_seconds(jobs + "/status/" + order[k - 1] + ".0.rc") - 1.0)
        << order[k];
  text = aet("submit --status " + jobs);
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "total: 4 done")) << text.output;
  EXPECT_TRUE(contains(aet("submit --rerun " + jobs).output, "nothing to rerun"));
}

}  // namespace
}  // namespace aet
