// FFTW helpers shared by the CPU back ends (FBP, GENFIRE, the sub-pixel view shift): one planner
// lock for the whole library, and RAII for FFTW buffers and plans.
#pragma once

#include <fftw3.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "aet/core/error.hpp"

namespace aet::detail {

// FFTW's planner is not thread-safe; execution of an existing plan on new arrays is. One lock for
// every file that plans (an inline function has one static across translation units).
inline std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};
template <class T>
using FftwBuffer = std::unique_ptr<T, FftwFree>;

template <class T>
FftwBuffer<T> fftw_alloc(std::size_t n, const char* who) {
  void* p = fftwf_malloc(n * sizeof(T));
  if (!p)
    throw InternalError(std::string(who) + ": out of memory for " + std::to_string(n * sizeof(T)) +
                        " bytes of FFT buffer");
  return FftwBuffer<T>(static_cast<T*>(p));
}

class FftwPlan {
 public:
  FftwPlan(fftwf_plan p, const char* who) : p_(p) {
    if (!p_) throw InternalError(std::string(who) + ": FFTW could not make a plan");
  }
  ~FftwPlan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftwf_destroy_plan(p_);
  }
  FftwPlan(const FftwPlan&) = delete;
  FftwPlan& operator=(const FftwPlan&) = delete;
  fftwf_plan get() const { return p_; }

 private:
  fftwf_plan p_;
};

}  // namespace aet::detail
