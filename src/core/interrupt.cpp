#include "aet/core/interrupt.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

#include "aet/core/progress.hpp"

namespace fs = std::filesystem;

namespace aet {
namespace {

struct Entry {
  std::string path;
  InterruptCleanup::Mode mode;
};

std::recursive_mutex g_mutex;
std::map<std::uint64_t, Entry> g_paths;  // guarded by g_mutex; ids grow with registration
std::uint64_t g_next_id = 1;             // guarded by g_mutex

int g_pipe[2] = {-1, -1};
pid_t g_owner_pid = 0;  // handlers in a forked child leave the cleanup to the parent

void on_signal(int sig) {
  if (getpid() != g_owner_pid) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_pipe[1], &byte, 1);
  errno = saved;
}

void remove_path(const Entry& e) {
  std::error_code ec;
  if (e.mode == InterruptCleanup::Mode::if_empty) {
    fs::remove(e.path, ec);  // fails, as it should, on a folder that holds anything
    return;
  }
  // A thread still writing may add a file while the folder is walked: try again. Once the folder
  // itself is gone nothing can be created in it.
  for (int attempt = 0; attempt < 20; ++attempt) {
    fs::remove_all(e.path, ec);
    if (!ec || !fs::exists(fs::symlink_status(e.path, ec))) return;
  }
}

void watch(std::string program) {
  unsigned char byte = 0;
  for (;;) {
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return;  // the pipe is gone: nothing to watch
  }
  const int sig = byte;
  // Held until _exit: no path is created or published after the sweep.
  g_mutex.lock();
  // Newest first: a staging folder before the output folder that holds it.
  for (auto it = g_paths.rbegin(); it != g_paths.rend(); ++it) remove_path(it->second);
  const std::string where = current_activity();
  const char* name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
  const std::string line = std::string(isatty(STDERR_FILENO) ? "\n" : "") + program +
                           ": interrupted by " + name + (where.empty() ? "" : " " + where) +
                           "; stopped, partial outputs removed\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  _exit(128 + sig);
}

}  // namespace

void install_interrupt_cleanup(const std::string& program) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (g_owner_pid != 0) return;
  if (pipe2(g_pipe, O_CLOEXEC) != 0) return;  // no clean stop, but the run itself goes on
  g_owner_pid = getpid();
  std::thread(watch, program).detach();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old;
    // A shell starts background jobs with SIGINT ignored: keep it so.
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaction(sig, &sa, nullptr);
  }
}

InterruptCleanup::InterruptCleanup(const std::string& path, Mode mode) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  id_ = g_next_id++;
  g_paths.emplace(id_, Entry{path, mode});
}

InterruptCleanup& InterruptCleanup::operator=(InterruptCleanup&& other) noexcept {
  if (this != &other) {
    release();
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void InterruptCleanup::release() {
  if (id_ == 0) return;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  g_paths.erase(id_);
  id_ = 0;
}

std::unique_lock<std::recursive_mutex> interrupt_cleanup_lock() {
  return std::unique_lock<std::recursive_mutex>(g_mutex);
}

bool process_alive(long pid) {
  if (pid <= 0) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace aet
