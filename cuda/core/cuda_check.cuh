// Throwing check for CUDA runtime calls, and RAII owners for device resources.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "aet/core/error.hpp"

#define AET_CUDA_CHECK(expr)                                                                      \
  do {                                                                                            \
    const cudaError_t aet_err_ = (expr);                                                          \
    if (aet_err_ != cudaSuccess)                                                                  \
      throw ::aet::InternalError(std::string("CUDA error in ") + #expr + " at " __FILE__ ":" +    \
                                 std::to_string(__LINE__) + ": " + cudaGetErrorString(aet_err_)); \
  } while (0)

namespace aet::cuda {

// Owns a device allocation of n elements of T.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) AET_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(n_, o.n_);
    return *this;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }
  void upload(const T* host, cudaStream_t s) {
    AET_CUDA_CHECK(cudaMemcpyAsync(ptr_, host, n_ * sizeof(T), cudaMemcpyHostToDevice, s));
  }
  void download(T* host, cudaStream_t s) const {
    AET_CUDA_CHECK(cudaMemcpyAsync(host, ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost, s));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

// Owns a CUDA stream.
class Stream {
 public:
  Stream() { AET_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void synchronize() const { AET_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

// A clear input error for a device index the runtime does not have (none, or out of range).
inline int checked_device(int index) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: clear the error, report below
    count = 0;
  }
  if (index < 0 || index >= count)
    fail_input("cuda:" + std::to_string(index) + ": no such CUDA device (" + std::to_string(count) +
               " visible); use --device cpu");
  return index;
}

// Makes `index` the current device for the lifetime of the guard.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    AET_CUDA_CHECK(cudaGetDevice(&previous_));
    AET_CUDA_CHECK(cudaSetDevice(index));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace aet::cuda
