// Shared helpers for the test suite: scratch directories, files and shell commands. Running the
// aet binary is in cli_support.hpp (the cli tests only).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace aet::test {

// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing output and the exit code.
RunResult run_command(const std::string& command_line);

void write_text(const std::string& path, const std::string& text);
void write_bytes(const std::string& path, const std::vector<char>& bytes);
std::string read_text(const std::string& path);
bool file_exists(const std::string& path);
// Names of the entries of a directory (files and folders), sorted.
std::vector<std::string> list_dir(const std::string& dir);

// Runs fn and expects an aet::InputError whose message names `path` and contains `fragment`.
void expect_input_error(const std::string& path, const std::function<void()>& fn,
                        const std::string& fragment = "");

// True when a CUDA device is visible to this process.
bool gpu_available();

}  // namespace aet::test
