// Internals of the projector pair (projector.hpp): the CPU reference and its vector walks
// (projector_cpu.cpp), the CUDA implementation (cuda/recon/projector.cu) and a benchmark hook.
// Used by the dispatch, the tests, `aet info` and bench_recon.
#pragma once

#include <cstdint>
#include <string>

#include "aet/core/array.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::detail {

// The CPU implementation, the reference in tests. Arguments already validated.
Array3 forward_project_cpu(const Array3& volume, const TiltGeometry& geometry, std::int64_t view_nx,
                           std::int64_t view_ny);
Array3 back_project_cpu(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                        std::int64_t ny, std::int64_t nz);
// The CPU pair walks rows of rays with AVX-512 or AVX2 where the CPU has them (same bits as the
// scalar walk); AET_CPU_PROJECTOR=scalar|avx2|avx512 picks one. Whether this CPU and build have
// `walk` ("scalar", "avx2" or "avx512"); InputError for another name.
bool cpu_projector_has(const std::string& walk);
// The walk the CPU pair takes for volumes below 2^31 voxels (larger ones take the scalar walk).
std::string cpu_projector_walk();
// The CUDA implementation (cuda/recon/projector.cu; CUDA builds only): host arrays in and out,
// on device dev.index. In single arithmetic (the default) it agrees with the CPU reference to about
// 1e-5 relative; with AET_CUDA_PROJECTOR=reference to float summation order.
Array3 forward_project_cuda(const Array3& volume, const TiltGeometry& geometry,
                            std::int64_t view_nx, std::int64_t view_ny, int device_index);
Array3 back_project_cuda(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                         std::int64_t ny, std::int64_t nz, int device_index);
// Benchmark hook (CUDA builds only): seconds of one forward projection, one back projection
// (including zeroing the volume) and the pair, with the volume, rays and views resident on the
// device, as inside a solve (the host API above adds the uploads and downloads); the best of
// `repeats` timed pairs after one warm-up, timed by CUDA events, in the arithmetic the solvers
// use (single unless AET_CUDA_PROJECTOR=reference; docs/reconstruction.md). All views must fit on
// the device at once.
struct PairTiming {
  double forward = 0, back = 0, pair = 0;
  bool single = true;  // the arithmetic timed: single (true) or reference
};
PairTiming time_projection_pair_cuda(const Array3& volume, const TiltGeometry& geometry,
                                     std::int64_t view_nx, std::int64_t view_ny, int device_index,
                                     int repeats);

}  // namespace aet::detail
