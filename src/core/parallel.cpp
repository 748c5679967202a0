#include "aet/core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace aet {
namespace {
std::atomic<int> g_threads{0};
}

void set_num_threads(int n) {
  g_threads = n < 0 ? 0 : n;
}

int num_threads() {
  const int n = g_threads.load();
  if (n > 0) return n;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  const std::int64_t workers = std::min<std::int64_t>(num_threads(), n);
  if (workers <= 1) {
    body(0, n);
    return;
  }
  std::exception_ptr first_error;
  std::mutex mutex;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(workers));
  for (std::int64_t t = 0; t < workers; ++t) {
    const std::int64_t begin = n * t / workers, end = n * (t + 1) / workers;
    threads.emplace_back([&, begin, end] {
      try {
        body(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::current_exception();
      }
    });
  }
  for (auto& th : threads) th.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace aet
