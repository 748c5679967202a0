// A clean stop on SIGINT and SIGTERM (Ctrl-C, `kill`, Slurm's time limit and `scancel`).
//
// install_interrupt_cleanup() sets handlers that do nothing but write the signal number to a pipe
// (async-signal-safe). A watcher thread reads it and, as ordinary code, removes every path
// registered below (temporary files, staging folders, a folder the run created), prints one line
// saying where the run stopped, and ends the process with 128 + the signal number (130, 143).
// Without install_interrupt_cleanup() (the library used from other programs, the tests) the
// registry is kept but nothing is installed.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace aet {

// Installs the handlers and starts the watcher (once; later calls do nothing). `program` starts
// the stop line: "aet pipeline: interrupted by SIGTERM during align (40%); ...".
void install_interrupt_cleanup(const std::string& program);

// A path removed if the process is interrupted while the guard holds it: recursively, or only
// when empty (a folder the run created for its outputs, which may hold the user's files).
// Destruction or release() forgets the path without touching it.
class InterruptCleanup {
 public:
  enum class Mode { recursive, if_empty };
  InterruptCleanup() = default;
  explicit InterruptCleanup(const std::string& path, Mode mode = Mode::recursive);
  ~InterruptCleanup() { release(); }
  InterruptCleanup(InterruptCleanup&& other) noexcept : id_(other.id_) { other.id_ = 0; }
  InterruptCleanup& operator=(InterruptCleanup&& other) noexcept;
  InterruptCleanup(const InterruptCleanup&) = delete;
  InterruptCleanup& operator=(const InterruptCleanup&) = delete;
  void release();

 private:
  std::uint64_t id_ = 0;
};

// Held around creating a registered path (register first, then create) and around publishing
// one (rename into place, then release): the watcher takes it before cleaning, so it never sees a
// path created after its sweep nor removes a file half-way through being published. Recursive,
// so guards may be registered and released while it is held.
std::unique_lock<std::recursive_mutex> interrupt_cleanup_lock();

// True when process `pid` runs on this machine (kill(pid, 0)): what decides that a staging
// folder or temporary file named after a process is stale.
bool process_alive(long pid);

}  // namespace aet
