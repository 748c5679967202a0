#include "aet/core/progress.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace aet {
namespace {
std::atomic<int> g_verbosity{static_cast<int>(Verbosity::normal)};
std::mutex g_sink_mutex;
ProgressCallback g_sink;              // guarded by g_sink_mutex
std::atomic<bool> g_has_sink{false};  // so that draw() takes no lock while none is installed

ProgressCallback current_sink() {
  if (!g_has_sink.load(std::memory_order_acquire)) return {};
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  return g_sink;
}
}  // namespace

ScopedProgressSink::ScopedProgressSink(ProgressCallback sink) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  previous_ = std::move(g_sink);
  g_sink = std::move(sink);
  g_has_sink.store(static_cast<bool>(g_sink), std::memory_order_release);
}

ScopedProgressSink::~ScopedProgressSink() {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = std::move(previous_);
  g_has_sink.store(static_cast<bool>(g_sink), std::memory_order_release);
}

void set_verbosity(Verbosity v) {
  g_verbosity = static_cast<int>(v);
}
Verbosity verbosity() {
  return static_cast<Verbosity>(g_verbosity.load());
}

void log_info(const std::string& msg) {
  if (verbosity() >= Verbosity::normal) std::fprintf(stderr, "%s\n", msg.c_str());
}
void log_verbose(const std::string& msg) {
  if (verbosity() >= Verbosity::verbose) std::fprintf(stderr, "%s\n", msg.c_str());
}
void log_warning(const std::string& msg) {
  std::fprintf(stderr, "warning: %s\n", msg.c_str());
}

Progress::Progress(std::string label, std::int64_t total)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  draw(false);
}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::advance(std::int64_t n) {
  set(done_ + n);
}

void Progress::set(std::int64_t done) {
  done_ = done < total_ ? done : total_;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  done_ = total_;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const int percent = static_cast<int>(100 * done_ / total_);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (const ProgressCallback sink = current_sink()) {
    if (percent == last_percent_) return;  // each whole percent once; the last is 100
    sink(label_, percent, elapsed);
    last_percent_ = percent;
    last_draw_ = now;
    return;
  }
  if (verbosity() == Verbosity::quiet) return;
  if (tty_) {
    // Redraw at most 10 times a second.
    if (!final && percent == last_percent_ && now - last_draw_ < std::chrono::milliseconds(100))
      return;
    constexpr int width = 30;
    const int filled = width * percent / 100;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %6.1fs", label_.c_str(), filled,
                 "##############################", width - filled, "", percent, elapsed);
    if (final) std::fputc('\n', stderr);
    std::fflush(stderr);
  } else {
    // In a log: one line per 10 %, and the final one.
    if (!final && (percent / 10 == last_percent_ / 10 || percent == 100)) return;
    std::fprintf(stderr, "%s: %d%% (%.1f s)\n", label_.c_str(), percent, elapsed);
  }
  last_percent_ = percent;
  last_draw_ = now;
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace aet
