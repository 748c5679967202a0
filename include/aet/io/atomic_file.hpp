// Atomic output: write to a temporary file in the same directory, then rename over the target.
// A run that is killed or fails leaves either the old file or nothing, never a half file.
#pragma once

#include <fstream>
#include <string>

#include "aet/core/interrupt.hpp"

namespace aet {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // opens PATH.tmp.<pid> for binary writing
  ~AtomicFile();                          // removes the temporary when not committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  std::ofstream& stream() { return out_; }
  const std::string& temp_path() const { return tmp_; }
  void commit();  // flush, check, close, rename; throws InputError naming the file on failure

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  InterruptCleanup cleanup_;  // removes tmp_ if SIGINT/SIGTERM stops the run
  bool committed_ = false;
};

// Removes PATH.tmp.<pid> files left beside PATH by processes no longer alive (killed runs).
void remove_stale_temporaries(const std::string& path);

// Renames `from` to `to` while no interrupt cleanup can run, then releases `guard`: the file is
// either still a registered temporary or published, never removed half-way. Returns errno or 0.
int publish_temporary(const std::string& from, const std::string& to, InterruptCleanup& guard);

// Writes `text` to `path` atomically (through an AtomicFile).
void write_text_file(const std::string& path, const std::string& text);
// The whole text of `path`; empty when it cannot be read (callers decide whether that is an
// error).
std::string read_text_file(const std::string& path);

// Creates the directory (and parents) or throws InputError naming it.
void ensure_directory(const std::string& dir);

}  // namespace aet
