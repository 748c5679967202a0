// Progress reporting: a redrawn bar on a terminal, plain occasional lines in a log or batch job.
// Verbosity is process-wide (set once by the CLI from --quiet / --verbose).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace aet {

enum class Verbosity { quiet = 0, normal = 1, verbose = 2 };
void set_verbosity(Verbosity v);
Verbosity verbosity();

// Messages on stderr, filtered by verbosity.
void log_info(const std::string& msg);     // shown unless --quiet
void log_verbose(const std::string& msg);  // shown with --verbose
void log_warning(const std::string& msg);  // always shown

// Where the run is, as an interrupted run reports it: "during align (40%), in reconstruct resire
// (12%)" (each unfinished Progress, outer first), else "after project" (the last to finish),
// else "".
std::string current_activity();

// The time now as ISO 8601 UTC ("2026-12-05T21:30:00Z"): the `created` stamp of written files.
std::string utc_timestamp();

// A Progress's report: its label, the whole percent done and the seconds since it started.
using ProgressCallback = std::function<void(const std::string& label, int percent, double seconds)>;

// While one is alive, every Progress reports to `sink` (once per whole percent reached, ending
// with 100, from the thread that advances it) instead of drawing on stderr: a library caller showing the
// progress its own way. Process-wide; the previous sink comes back on destruction.
class ScopedProgressSink {
 public:
  explicit ScopedProgressSink(ProgressCallback sink);
  ~ScopedProgressSink();
  ScopedProgressSink(const ScopedProgressSink&) = delete;
  ScopedProgressSink& operator=(const ScopedProgressSink&) = delete;

 private:
  ProgressCallback previous_;
};

class Progress {
 public:
  Progress(std::string label, std::int64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void advance(std::int64_t n = 1);  // thread-compatible: call from one thread
  void set(std::int64_t done);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  std::int64_t total_, done_ = 0;
  int last_percent_ = -100;
  int activity_percent_ = -1;  // the percent last published to current_activity()
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace aet
