// Lets a header of device functions compile as plain C++ as well, so that the tests run the
// CUDA kernels' per-thread code on the CPU in every build (tests/test_projector_kernels.cpp).
//
// Under nvcc, AET_DEVICE_FN is a forced-inline device function. Under a host compiler it is an
// ordinary inline function, and the CUDA intrinsics the kernels use become the IEEE operations
// they stand for: the explicitly rounded ones (__dadd_rn, __fmul_rn, ...) are single operations
// with round-to-nearest, which x86-64 code compiled without FMA performs as written.
//
// Not AET_HOST_DEVICE (aet/core/host_device.hpp): nvcc does not let a __host__ __device__
// function call these device-only intrinsics, and the forced inlining is part of the kernels'
// code generation.
#pragma once

#if defined(__CUDACC__)

#define AET_DEVICE_FN __device__ __forceinline__

#else

#include <cmath>

#define AET_DEVICE_FN inline

inline double __dadd_rn(double a, double b) {
  return a + b;
}
inline double __dsub_rn(double a, double b) {
  return a - b;
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline float __fsub_rn(float a, float b) {
  return a - b;
}
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __double2float_rn(double a) {
  return static_cast<float>(a);
}
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

#endif
