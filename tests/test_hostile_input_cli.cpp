// Hostile input through the binary: HDF5 files that crash or hang libhdf5 and a damaged model
// end with exit code 2 and the file named; a model written before weights carried checksums
// still loads, with a warning.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/cli_support.hpp"
#include "support/hostile_files.hpp"

namespace aet::test {
namespace {

namespace fs = std::filesystem;

// The binary with a 2 s CPU limit on the child that parses an HDF5 file: a looping parse costs
// the suite 2 s instead of the default 5.
RunResult run_aet_limited(const std::string& args) {
  return run_command(std::string("AET_HDF5_CPU_LIMIT=2 '") + AET_TEST_BINARY + "' " + args);
}

TEST(HostileInputCli, InfoOnTheIssuesFlippedResultFilesExitsTwoNamingTheFile) {
  TempDir dir;
  for (const auto& flip : heap_size_flips()) {
    const std::string path = dir.file(flip.name + ".h5");
    write_flipped_result(path, flip);
    const RunResult r = run_aet_limited("info " + path);
    EXPECT_EQ(r.exit_code, 2) << flip.name << ": " << r.output;
    EXPECT_NE(r.output.find("error: " + path + ": "), std::string::npos) << r.output;
  }
}

// SIGTERM (Slurm's time limit, scancel) while a child parses a file that makes libhdf5 loop: the
// run stops with 143 and the child goes with it instead of parsing on as an orphan.
TEST(HostileInputCli, SigtermDuringALoopingParseLeavesNoChild) {
  TempDir dir;
  const auto flips = heap_size_flips();
  const std::string path = dir.file("loops-" + flips.at(0).name + ".h5");
  write_flipped_result(path, flips.at(0));
  const RunResult r = run_command(
      std::string("AET_HDF5_CPU_LIMIT=60 '") + AET_TEST_BINARY + "' info '" + path +
      "' & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid; echo \"rc=$?\"; sleep 0.5; "
      // "[/]" keeps the pattern from matching this shell's own command line.
      "pgrep -f -- 'aet info [/]" + path.substr(1) + "' || echo 'no process left'");
  EXPECT_NE(r.output.find("rc=143"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no process left"), std::string::npos) << r.output;
}

// Boost.Program_options loops for ever formatting its error about an option whose name holds one
// of its placeholders (found by fuzzing the INI reader): refused at once instead.
TEST(HostileInputCli, AnOptionNameWithAPlaceholderIsRefusedNotAHang) {
  TempDir dir;
  const std::string ini = dir.file("evil.ini");
  write_text(ini, "thread%original_token%ns = 1\n");
  RunResult r = run_command(std::string("timeout 60 '") + AET_TEST_BINARY +
                            "' info --devices --config " + ini);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(ini + ": invalid option name"), std::string::npos) << r.output;
  r = run_command(std::string("timeout 60 '") + AET_TEST_BINARY + "' info '--x%canonical_option%'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("invalid option: --x%canonical_option%"), std::string::npos) << r.output;
}

// The same loop for a value holding its own placeholder, on the command line and in a config
// file: the error names the option and shows the value, and the command ends at once.
TEST(HostileInputCli, AValueWithAPlaceholderIsAnErrorNotAHang) {
  TempDir dir;
  RunResult r = run_command(std::string("timeout 60 '") + AET_TEST_BINARY +
                            "' reconstruct -n 'x%value%' --tilts a.mrc --angles a.tlt --out o.mrc");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("('x%value %') for option '--iterations' is invalid"), std::string::npos)
      << r.output;
  const std::string ini = dir.file("evil.ini");
  write_text(ini, "[info]\nthreads = %original_token%%value%\n");
  r = run_command(std::string("timeout 60 '") + AET_TEST_BINARY + "' info --devices --config " +
                  ini);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(ini + ": the argument"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("for option 'threads' is invalid"), std::string::npos) << r.output;
}

#if AET_WITH_TORCH

const std::string kShipped = std::string(AET_SOURCE_DIR) + "/networks/models/missing_wedge_unet.h5";

TEST(HostileInputCli, AFlippedFileGivenAsModelExitsTwoNamingTheFile) {
  TempDir dir;
  for (const auto& flip : heap_size_flips()) {
    const std::string path = dir.file(flip.name + ".h5");
    write_flipped_result(path, flip);
    const RunResult r = run_aet_limited("model-input --model " + path);
    EXPECT_EQ(r.exit_code, 2) << flip.name << ": " << r.output;
    EXPECT_NE(r.output.find("error: " + path + ": "), std::string::npos) << r.output;
  }
}

// The shipped model with 4 KiB zeroed in the middle is still valid HDF5; its weights are not.
TEST(HostileInputCli, AModelWithZeroedBytesIsRefused) {
  TempDir dir;
  std::ifstream in(kShipped, std::ios::binary);
  std::vector<char> b{std::istreambuf_iterator<char>(in), {}};
  ASSERT_GT(b.size(), 100000u);
  std::fill(b.begin() + static_cast<long>(b.size() / 2),
            b.begin() + static_cast<long>(b.size() / 2 + 4096), '\0');
  const std::string path = dir.file("damaged.h5");
  write_bytes(path, b);
  const RunResult r = run_aet("model-input --model " + path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(path + ": dataset '"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not match its SHA-256 checksum"), std::string::npos) << r.output;
  // The intact model loads without a word about checksums.
  const RunResult ok = run_aet("model-input --model " + kShipped);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output.find("checksum"), std::string::npos) << ok.output;
}

TEST(HostileInputCli, AModelWithoutChecksumsLoadsWithAWarning) {
  TempDir dir;
  const std::string path = dir.file("old.h5");
  fs::copy_file(kShipped, path);
  remove_checksums(path);
  const RunResult r = run_aet("model-input --model " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(path + ": "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("datasets carry no SHA-256 checksum"), std::string::npos) << r.output;
}

#endif

}  // namespace
}  // namespace aet::test
