// aet pipeline --checkpoint: a run stopped by SIGTERM (Slurm's time limit, scancel) after its
// alignment, run again with the same command, takes the alignment from the checkpoint folder and
// ends with the atoms of an uninterrupted run; a changed setting takes nothing from it.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "aet/core/json.hpp"
#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"

namespace aet {
namespace {

using test::read_text;
using test::run_aet;
using test::TempDir;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// The atom lines of an extended XYZ (its comment line names the run's command).
std::string atom_lines(const std::string& xyz) {
  const std::string text = read_text(xyz);
  const auto second = text.find('\n', text.find('\n') + 1);
  return second == std::string::npos ? "" : text.substr(second + 1);
}

std::vector<std::string> resumed(const std::string& metrics) {
  return Json::parse(read_text(metrics))["resumed"].get<std::vector<std::string>>();
}

TEST(CheckpointCli, AStoppedRunGoesOnFromItsCheckpoints) {
  TempDir tmp;
  ASSERT_EQ(run_aet("simulate --phantom pt-cuboctahedron-309 --tilt-range -60:60:6 --seed 11 "
                    "--quiet --out " +
                    tmp.file("sim"))
                .exit_code,
            0);
  const std::vector<std::string> args = {"pipeline",
                                         "--tilts",
                                         tmp.file("sim/tilts.mrc"),
                                         "--angles",
                                         tmp.file("sim/tilts.tlt"),
                                         "--elements",
                                         "Pt",
                                         "--align-rounds",
                                         "1",
                                         "--iterations",
                                         "20",
                                         "--no-network",
                                         "--no-report",
                                         "--no-analysis",
                                         "--threads",
                                         "1"};
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const auto line = [](const std::vector<std::string>& a) {
    std::string s;
    for (const auto& w : a) s += " '" + w + "'";
    return s;
  };
  const std::string ck = tmp.file("ck");

  // Stopped once the alignment is in the checkpoint folder: no output, the checkpoint kept.
  const pid_t pid =
      test::start_aet(with({"--checkpoint", ck, "--out", tmp.file("a")}), tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(test::wait_for(ck + "/align.key", pid)) << read_text(tmp.file("log"));
  EXPECT_EQ(test::stop_with(pid, SIGTERM), 143) << read_text(tmp.file("log"));
  EXPECT_FALSE(test::file_exists(tmp.file("a")));
  EXPECT_TRUE(test::file_exists(ck + "/align.views.mrc"));

  // The same command again: the alignment from the folder, the rest computed.
  auto r = run_aet(line(with({"--checkpoint", ck, "--out", tmp.file("a")})) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "taken from the checkpoint in " + ck)) << r.output;
  const auto first = resumed(tmp.file("a/metrics.json"));
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.front(), "align");

  // The atoms are those of a run that was never stopped, to the last digit.
  r = run_aet(line(with({"--out", tmp.file("b")})) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(atom_lines(tmp.file("a/atoms.xyz")), atom_lines(tmp.file("b/atoms.xyz")));

  // A setting of the tracing only: every checkpointed stage is taken.
  r = run_aet(line(with({"--checkpoint", ck, "--out", tmp.file("t"), "--min-distance", "2.1"})) +
              " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(resumed(tmp.file("t/metrics.json")),
            (std::vector<std::string>{"align", "reconstruct", "angles"}));
  // A setting of the reconstruction: the alignment is taken, the reconstruction computed again,
  // and the log says so.
  std::vector<std::string> more = with({"--checkpoint", ck, "--out", tmp.file("i")});
  *(std::find(more.begin(), more.end(), "--iterations") + 1) = "21";
  r = run_aet(line(more) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(resumed(tmp.file("i/metrics.json")), std::vector<std::string>{"align"});
  EXPECT_TRUE(contains(r.output, "the checkpoint's reconstruct")) << r.output;
  EXPECT_TRUE(contains(r.output, "is of other input or settings: computed again")) << r.output;

  // A setting of the alignment: the stored alignment is not taken; its key goes before anything
  // is saved over it.
  const pid_t again = test::start_aet(
      with({"--checkpoint", ck, "--out", tmp.file("c"), "--no-shifts"}), tmp.file("log2"));
  ASSERT_GT(again, 0);
  for (int i = 0; i < 600 && test::file_exists(ck + "/align.key"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(test::file_exists(ck + "/align.key"));
  EXPECT_EQ(test::stop_with(again, SIGTERM), 143);
  EXPECT_FALSE(contains(read_text(tmp.file("log2")), "taken from the checkpoint"));
  EXPECT_TRUE(contains(read_text(tmp.file("log2")), "the checkpoint's align"))
      << read_text(tmp.file("log2"));

  // The checkpoint folder inside --out would go with a stopped run's output folder.
  r = run_aet(line(with({"--checkpoint", tmp.file("d/ck"), "--out", tmp.file("d")})) + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "put the checkpoint folder outside --out")) << r.output;
}

// A solve stopped half-way goes on from its last progress (every --checkpoint-every iterations),
// and ends with the volume and atoms of a solve that was never stopped.
TEST(CheckpointCli, AStoppedSolveGoesOnFromItsProgress) {
  TempDir tmp;
  ASSERT_EQ(run_aet("simulate --phantom pt-cuboctahedron-309 --tilt-range -60:60:6 --seed 12 "
                    "--quiet --out " +
                    tmp.file("sim"))
                .exit_code,
            0);
  const std::vector<std::string> args = {"pipeline",
                                         "--tilts",
                                         tmp.file("sim/tilts.mrc"),
                                         "--angles",
                                         tmp.file("sim/tilts.tlt"),
                                         "--elements",
                                         "Pt",
                                         "--no-align",
                                         "--iterations",
                                         "40",
                                         "--no-network",
                                         "--no-report",
                                         "--no-analysis",
                                         "--no-refine",
                                         "--threads",
                                         "1"};
  const auto line = [](std::vector<std::string> a, const std::vector<std::string>& extra) {
    a.insert(a.end(), extra.begin(), extra.end());
    std::string s;
    for (const auto& w : a) s += " '" + w + "'";
    return s;
  };
  const std::string ck = tmp.file("ck");
  std::vector<std::string> a = args;
  for (const char* w : {"--checkpoint-every", "5", "--checkpoint"}) a.push_back(w);
  a.push_back(ck);
  a.push_back("--out");
  a.push_back(tmp.file("a"));
  const pid_t pid = test::start_aet(a, tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(test::wait_for(ck + "/reconstruct.progress_key", pid)) << read_text(tmp.file("log"));
  EXPECT_EQ(test::stop_with(pid, SIGTERM), 143) << read_text(tmp.file("log"));
  EXPECT_FALSE(test::file_exists(ck + "/reconstruct.key"));

  auto r =
      run_aet(line(args, {"--checkpoint-every", "5", "--checkpoint", ck, "--out", tmp.file("a")}) +
              " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "going on from iteration ")) << r.output;
  r = run_aet(line(args, {"--out", tmp.file("b")}) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(atom_lines(tmp.file("a/atoms.xyz")), atom_lines(tmp.file("b/atoms.xyz")));
  const Json ma = Json::parse(read_text(tmp.file("a/metrics.json")));
  const Json mb = Json::parse(read_text(tmp.file("b/metrics.json")));
  EXPECT_EQ(ma["r1_per_iteration"].size(), 40u);
  EXPECT_EQ(ma["r1_per_iteration"], mb["r1_per_iteration"]);
}

// aet reconstruct --checkpoint: a solve stopped half-way goes on from its last progress and
// writes the volume and R factors of a solve never stopped; a changed starting volume (same
// path, other content) takes nothing from the folder.
TEST(CheckpointCli, AStoppedReconstructionGoesOnFromItsProgress) {
  TempDir tmp;
  ASSERT_EQ(run_aet("simulate --phantom pt-cuboctahedron-309 --tilt-range -60:60:6 --seed 13 "
                    "--quiet --out " +
                    tmp.file("sim"))
                .exit_code,
            0);
  const std::string inputs = "reconstruct --tilts " + tmp.file("sim/tilts.mrc") + " --angles " +
                             tmp.file("sim/tilts.tlt") + " --threads 1";
  const std::string base = inputs + " --iterations 40";
  const std::string ck = tmp.file("ck");
  const pid_t pid =
      test::start_aet({"reconstruct", "--tilts", tmp.file("sim/tilts.mrc"), "--angles",
                       tmp.file("sim/tilts.tlt"), "--iterations", "40", "--threads", "1",
                       "--checkpoint-every", "4", "--checkpoint", ck, "--out", tmp.file("a.mrc")},
                      tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(test::wait_for(ck + "/reconstruct.progress_key", pid)) << read_text(tmp.file("log"));
  EXPECT_EQ(test::stop_with(pid, SIGTERM), 143) << read_text(tmp.file("log"));
  EXPECT_FALSE(test::file_exists(tmp.file("a.mrc")));

  auto r = run_aet(base + " --checkpoint-every 4 --checkpoint " + ck + " --out " +
                   tmp.file("a.mrc") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "going on from iteration ")) << r.output;
  r = run_aet(base + " --out " + tmp.file("b.mrc") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_mrc(tmp.file("a.mrc")).vector(), read_mrc(tmp.file("b.mrc")).vector());
  const Json ja = Json::parse(read_text(tmp.file("a.json")));
  const Json jb = Json::parse(read_text(tmp.file("b.json")));
  EXPECT_EQ(ja["r1"].size(), 40u);
  EXPECT_EQ(ja["r1"], jb["r1"]);
  EXPECT_EQ(ja["r2"], jb["r2"]);

  // A starting volume enters the key by content: the same path with other values is a new solve.
  Array3 start = read_mrc(tmp.file("b.mrc"));
  write_mrc(tmp.file("start.mrc"), start, MrcKind::volume);
  const std::string warm = inputs + " --checkpoint-every 4 --checkpoint " + ck + " --initial " +
                           tmp.file("start.mrc") + " --iterations 9";
  r = run_aet(warm + " --out " + tmp.file("c.mrc") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (float& v : start.vector()) v *= 0.5f;
  write_mrc(tmp.file("start.mrc"), start, MrcKind::volume);
  r = run_aet(warm + " --out " + tmp.file("d.mrc") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "going on from iteration")) << r.output;
}

}  // namespace
}  // namespace aet
