// Hostile input: every file of the fuzzers' seed and regression corpora is read or refused with
// an InputError (never a crash or a hang), HDF5 files that crash or hang libhdf5 end as an
// InputError naming the file, and model weights carry a checksum that a damaged file fails.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options/errors.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/io/hdf5_result.hpp"
#include "fuzz/fuzz_readers.hpp"
#include "io/hdf5_handles.hpp"
#include "sha256.hpp"
#include "support/hostile_files.hpp"
#include "support/test_support.hpp"
#include "weights_file.hpp"

namespace aet {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// A child that loops is stopped after this much CPU: one second keeps the suite fast, and is
// still far more than any file here needs.
class ShortCpuLimit : public ::testing::Environment {
 public:
  void SetUp() override { ::setenv("AET_HDF5_CPU_LIMIT", "1", 1); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new ShortCpuLimit);

// ---- the corpora ------------------------------------------------------------------------------

class CorpusReplay : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().front() != '.')
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Each file is read as users read it (the HDF5 readers behind their child-process guard): it
// loads or is refused with the error aet reports as exit 2. A crash or hang fails the test.
TEST_P(CorpusReplay, EveryFileIsReadOrRefusedCleanly) {
  const std::string reader = GetParam();
  const std::string root = std::string(AET_SOURCE_DIR) + "/tests/fuzz/";
  const auto seeds = files_in(root + "corpus/" + reader);
  ASSERT_FALSE(seeds.empty()) << "no seed corpus for " << reader;
  auto files = seeds;
  for (const auto& f : files_in(root + "regression/" + reader)) files.push_back(f);
  std::size_t accepted = 0, refused = 0;
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    try {
      fuzz::exercise(reader, f, fuzz::Hdf5Mode::guarded);
      ++accepted;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "the error does not name the file: " << e.what();
      ++refused;
    } catch (const boost::program_options::error&) {
      ++refused;  // the config parser's errors: exit 2, the file named by cli::parse
    }
  }
  // The seeds are valid files: at least one of them must load (a reader that refuses everything
  // would pass the loop above).
  EXPECT_GT(accepted, 0u) << reader;
  RecordProperty("accepted", static_cast<int>(accepted));
  RecordProperty("refused", static_cast<int>(refused));
}

INSTANTIATE_TEST_SUITE_P(Readers, CorpusReplay, ::testing::ValuesIn(fuzz::reader_names()),
                         [](const auto& info) { return info.param; });

// ---- the child-process guard ------------------------------------------------------------------

TEST(Hdf5Guard, ACleanParseLetsTheCallerReadAndAnInputErrorPassesThrough) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  EXPECT_NO_THROW(hdf5::parse_in_child(path, "model file", [] {}));
  test::expect_input_error(
      path, [&] { hdf5::parse_in_child(path, "model file", [&] { fail_file(path, "bad dims"); }); },
      "bad dims");
}

TEST(Hdf5Guard, ACrashOrALoopInTheParseIsAnInputErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  test::expect_input_error(
      path, [&] { hdf5::parse_in_child(path, "model file", [] { std::raise(SIGSEGV); }); },
      // "crashed on it: Segmentation fault"; under AddressSanitizer, whose handler reports the
      // signal and exits, "failed on it, exit status 1".
      "not a valid model file (the HDF5 library ");
  test::expect_input_error(
      path,
      [&] {
        hdf5::parse_in_child(path, "result file", [] {
          for (volatile unsigned long i = 0;; i = i + 1) {
          }
        });
      },
      "not a valid result file (reading it took more than 1 s of CPU");
}

// ---- the flipped bytes ----------------------------------------------------------------

// The flips of one byte of a small result file (support/hostile_files.hpp): one makes
// libhdf5 loop for ever, the other crash it, in aet info's reader. It ends with an InputError
// naming the file.
TEST(Hdf5Hostile, FlippedHeapStringSizesEndAsInputErrors) {
  TempDir dir;
  for (const auto& flip : test::heap_size_flips()) {
    SCOPED_TRACE(flip.name);
    const std::string path = dir.file(flip.name + ".h5");
    test::write_flipped_result(path, flip);
    test::expect_input_error(path, [&] { read_result_summary(path); });
    // The weights reader reads root attributes by name only, so it may never touch the damaged
    // string; what it must not do is crash or hang.
    try {
      nn::detail::read_weights_file(path);
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

// ---- weight checksums -------------------------------------------------------------------------

TEST(WeightsChecksum, Sha256MatchesTheStandardVectors) {
  using nn::detail::sha256_hex;
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

nn::detail::WeightsFile weights() {
  nn::detail::WeightsFile f;
  f.strings["format"] = "test";
  f.numbers["levels"] = 3;
  nn::detail::StoredTensor t;
  t.shape = {16, 16, 32};
  for (int i = 0; i < 16 * 16 * 32; ++i) t.values.push_back(0.001f * static_cast<float>(i + 1));
  f.tensors["parameters/conv/weight"] = t;
  f.series["training/loss"] = {0.5, 0.25, 0.125};
  return f;
}

std::vector<char> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(WeightsChecksum, StoredAtSaveAndCheckedAtLoad) {
  TempDir dir;
  const std::string path = dir.file("model.h5");
  nn::detail::write_weights_file(path, weights());
  const auto back = nn::detail::read_weights_file(path);
  EXPECT_TRUE(back.unchecked.empty());
  ASSERT_EQ(back.tensors.count("parameters/conv/weight"), 1u);
  EXPECT_EQ(back.tensors.at("parameters/conv/weight").values,
            weights().tensors.begin()->second.values);

  // 4 KiB zeroed in the middle of the 32 KiB tensor: the file is still valid HDF5, only the
  // weights changed, and the checksum says so.
  std::vector<char> b = bytes_of(path);
  const float first = 0.001f * 2049;  // the value at the tensor's 8 KiB mark
  const char* key = reinterpret_cast<const char*>(&first);
  const auto at = std::search(b.begin(), b.end(), key, key + sizeof first);
  ASSERT_NE(at, b.end());
  std::fill(at, at + 4096, '\0');
  const std::string damaged = dir.file("damaged.h5");
  test::write_bytes(damaged, b);
  test::expect_input_error(
      damaged, [&] { nn::detail::read_weights_file(damaged); },
      "dataset 'parameters/conv/weight' does not match its SHA-256 checksum");
}

TEST(WeightsChecksum, AFileWithoutChecksumsLoadsWithAWarning) {
  TempDir dir;
  const std::string path = dir.file("old.h5");
  nn::detail::write_weights_file(path, weights());
  test::remove_checksums(path);  // as files written before aet stored them
  ::testing::internal::CaptureStderr();
  const auto back = nn::detail::read_weights_file(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(back.unchecked.size(), 2u);
  EXPECT_EQ(back.tensors.at("parameters/conv/weight").values.size(), 16u * 16 * 32);
  EXPECT_NE(err.find(path + ": 2 datasets carry no SHA-256 checksum"), std::string::npos) << err;
}

}  // namespace
}  // namespace aet
