#include "aet/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "aet/core/error.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

// Forces the data to disk so that the rename below never publishes a file whose blocks are
// still only in the page cache (a crash right after the rename would otherwise leave zeros).
bool sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail_input("empty output file name");
  remove_stale_temporaries(path_);
  tmp_ = path_ + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  const auto lock = interrupt_cleanup_lock();
  cleanup_ = InterruptCleanup(tmp_);
  errno = 0;
  out_.open(tmp_, std::ios::binary | std::ios::out | std::ios::trunc);
  if (!out_) {
    const int err = errno;
    std::string why = "cannot open for writing";
    if (err != 0) why += std::string(": ") + std::strerror(err);
    fail_file(path_, why);
  }
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (out_.is_open()) out_.close();
  std::remove(tmp_.c_str());
}

void AtomicFile::commit() {
  if (committed_) return;
  out_.flush();
  const bool written = static_cast<bool>(out_);
  out_.close();
  if (!written || out_.fail()) {
    std::remove(tmp_.c_str());
    fail_file(path_, "write failed (disk full or I/O error); no file written");
  }
  if (!sync_path(tmp_, O_RDONLY)) {
    const int err = errno;
    std::remove(tmp_.c_str());
    fail_file(path_, std::string("cannot sync to disk: ") + std::strerror(err));
  }
  if (const int err = publish_temporary(tmp_, path_, cleanup_); err != 0) {
    std::remove(tmp_.c_str());
    fail_file(path_,
              std::string("cannot rename the temporary file into place: ") + std::strerror(err));
  }
  committed_ = true;
  // Makes the rename itself durable; failure here does not undo a complete, renamed file.
  sync_path(parent_dir(path_), O_RDONLY | O_DIRECTORY);
}

void remove_stale_temporaries(const std::string& path) {
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  fs::directory_iterator it(parent_dir(path), ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    std::error_code rm;
    if (!process_alive(std::stol(digits)) && fs::is_regular_file(it->symlink_status(rm)))
      fs::remove(it->path(), rm);
  }
}

int publish_temporary(const std::string& from, const std::string& to, InterruptCleanup& guard) {
  const auto lock = interrupt_cleanup_lock();
  if (std::rename(from.c_str(), to.c_str()) != 0) return errno;
  guard.release();
  return 0;
}

void ensure_directory(const std::string& dir) {
  if (dir.empty()) return;  // the current directory
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (!ec && fs::exists(st)) {
    if (!fs::is_directory(st)) fail_file(dir, "exists but is not a directory");
    return;
  }
  fs::create_directories(dir, ec);
  if (ec) fail_file(dir, "cannot create directory: " + ec.message());
}

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.stream() << text;
  f.commit();
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace aet
