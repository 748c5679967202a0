// SIGINT and SIGTERM (Ctrl-C, kill, Slurm's time limit) stop a run cleanly: exit 130 / 143, one
// line saying where it stopped, and nothing left of its outputs, staged or temporary; folders
// and files of runs killed earlier are removed by the next run into the same place.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/cli_support.hpp"

namespace aet {
namespace {

using test::TempDir;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

using test::start_aet;
using test::stop_with;
using test::wait_for;

TEST(InterruptCli, SigtermStopsThePipelineAndRemovesTheFolderItCreated) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  const pid_t pid = start_aet({"pipeline", "--threads", "1", "--out", out}, tmp.file("log"));
  ASSERT_GT(pid, 0);
  const std::string staging = out + "/.aet-partial-" + std::to_string(pid);
  ASSERT_TRUE(wait_for(staging, pid)) << test::read_text(tmp.file("log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the computation
  EXPECT_EQ(stop_with(pid, SIGTERM), 143);
  const std::string log = test::read_text(tmp.file("log"));
  // Where it stopped: inside a progress-reported step, or after the last one.
  EXPECT_TRUE(contains(log, "aet pipeline: interrupted by SIGTERM during ") ||
              contains(log, "aet pipeline: interrupted by SIGTERM after "))
      << log;
  EXPECT_TRUE(contains(log, "partial outputs removed")) << log;
  EXPECT_EQ(test::list_dir(tmp.path()), std::vector<std::string>{"log"});
}

TEST(InterruptCli, SigintKeepsTheUsersFilesAndTheNextRunRemovesDeadRunsLeftovers) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  // The user's file, and what a run killed with SIGKILL left (no process has that id).
  ASSERT_EQ(test::run_command("mkdir -p " + out + "/.aet-partial-99999999 && touch " + out +
                              "/mine.txt " + out + "/.aet-partial-99999999/atoms.xyz")
                .exit_code,
            0);
  const pid_t pid = start_aet({"pipeline", "--threads", "1", "--out", out}, tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for(out + "/.aet-partial-" + std::to_string(pid), pid))
      << test::read_text(tmp.file("log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(stop_with(pid, SIGINT), 130);
  const std::string log = test::read_text(tmp.file("log"));
  EXPECT_TRUE(contains(log, "interrupted by SIGINT")) << log;
  EXPECT_EQ(test::list_dir(out), std::vector<std::string>{"mine.txt"}) << log;
}

TEST(InterruptCli, SigintRemovesTheTemporaryFileOfASingleFileOutput) {
  TempDir tmp;
  const std::string out = tmp.file("set.h5");
  test::write_text(out + ".tmp.99999999", "left by a killed run");
  const pid_t pid =
      start_aet({"make-training-set", "--count", "200", "--radius-min", "4", "--radius-max", "5",
                 "--iterations", "5", "--threads", "1", "--out", out},
                tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for(out + ".tmp." + std::to_string(pid), pid))
      << test::read_text(tmp.file("log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(stop_with(pid, SIGINT), 130);
  const std::string log = test::read_text(tmp.file("log"));
  EXPECT_TRUE(contains(log,
                       "aet make-training-set: interrupted by SIGINT during "
                       "make-training-set ("))
      << log;
  EXPECT_EQ(test::list_dir(tmp.path()), std::vector<std::string>{"log"});
}

}  // namespace
}  // namespace aet
