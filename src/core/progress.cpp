#include "aet/core/progress.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <utility>
#include <vector>

namespace aet {
namespace {
std::atomic<int> g_verbosity{static_cast<int>(Verbosity::normal)};
std::mutex g_sink_mutex;
ProgressCallback g_sink;              // guarded by g_sink_mutex
std::atomic<bool> g_has_sink{false};  // so that draw() takes no lock while none is installed

// What current_activity() reports: each unfinished Progress with its text, oldest first (an
// outer loop before the inner one it runs).
std::mutex g_activity_mutex;
std::vector<std::pair<const void*, std::string>> g_activities;  // guarded by g_activity_mutex
std::string g_last_finished;  // guarded by g_activity_mutex: the label of the last to finish

void publish_activity(const void* owner, const std::string& label, int percent) {
  std::string text = label + " (" + std::to_string(percent) + "%)";
  std::lock_guard<std::mutex> lock(g_activity_mutex);
  for (auto& a : g_activities)
    if (a.first == owner) {
      a.second = std::move(text);
      return;
    }
  g_activities.emplace_back(owner, std::move(text));
}

void clear_activity(const void* owner) {
  std::lock_guard<std::mutex> lock(g_activity_mutex);
  for (auto it = g_activities.begin(); it != g_activities.end(); ++it)
    if (it->first == owner) {
      const std::string& text = it->second;
      g_last_finished = text.substr(0, text.rfind(" ("));
      g_activities.erase(it);
      return;
    }
}

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
  clear_activity(this);
}

void Progress::draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const int percent = static_cast<int>(100 * done_ / total_);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (percent != activity_percent_ && !final) {
    publish_activity(this, label_, percent);
    activity_percent_ = percent;
  }
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

std::string current_activity() {
  std::lock_guard<std::mutex> lock(g_activity_mutex);
  if (g_activities.empty()) return g_last_finished.empty() ? "" : "after " + g_last_finished;
  std::string s = "during ";
  for (std::size_t i = 0; i < g_activities.size(); ++i)
    s += (i ? ", in " : "") + g_activities[i].second;
  return s;
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
