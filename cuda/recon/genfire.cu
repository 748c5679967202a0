// GENFIRE iterations on a CUDA device with cuFFT (the gridding runs on the host, shared with the
// CPU path; src/recon/genfire.cpp). The box, its spectrum, the measured spectrum and the element
// kinds stay on the device for the whole solve; per iteration only the volume (for the R factors,
// which the brief computes with the public forward_project) and one partial sum per block (for
// R_free) come back.
//
// Layout exactly as the CPU path (genfire_detail.hpp): in-place real-to-complex transforms of the
// gx x gy x gz box with rows padded to 2 hx floats, spelled out to cuFFT with explicit embeddings
// so that nothing depends on its default in-place layout.
#define EIGEN_NO_CUDA  // Eigen (through the shared header) is used on the host side only

#include <cuda_runtime.h>
#include <cufft.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/recon/memory_plan.hpp"
#include "cuda_check.cuh"
#include "genfire_detail.hpp"
#include "launch.cuh"

namespace aet::detail::genfire {
namespace {

constexpr int kThreads = 256;  // per block; the R_free reduction assumes a power of two
constexpr int kReduceBlocks = 1024;
constexpr std::int64_t kMaxBlocks = 65536;  // element-wise kernels: grid-stride beyond

#define AET_CUFFT_CHECK(expr)                                                                      \
  do {                                                                                             \
    const cufftResult aet_fft_err_ = (expr);                                                       \
    if (aet_fft_err_ != CUFFT_SUCCESS)                                                             \
      throw ::aet::InternalError(std::string("cuFFT error ") +                                     \
                                 std::to_string(static_cast<int>(aet_fft_err_)) + " in " + #expr + \
                                 " at " __FILE__ ":" + std::to_string(__LINE__));                  \
  } while (0)

// Owns a cuFFT plan handle.
class FftPlan {
 public:
  FftPlan() { AET_CUFFT_CHECK(cufftCreate(&h_)); }
  ~FftPlan() { cufftDestroy(h_); }  // the constructor throws unless h_ was created
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  cufftHandle get() const { return h_; }

 private:
  cufftHandle h_ = 0;
};

// Enforces the measured values at constrained elements inside the frequency limit.
__global__ void fourier_constraint(float2* F, const float2* measured, const std::uint8_t* kind,
                                   std::int64_t hx, std::int64_t gx, std::int64_t gy,
                                   std::int64_t gz, double limit_squared) {
  const std::int64_t n = hx * gy * gz;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (kind[i] != kConstrained) continue;
    const std::int64_t ix = i % hx, iy = (i / hx) % gy, iz = i / (hx * gy);
    if (frequency_squared(ix, iy, iz, gx, gy, gz) <= limit_squared) F[i] = measured[i];
  }
}

// Normalises the inverse transform, zeroes the padded part of the box, applies positivity and the
// support, and copies the volume region out (volume x fastest).
__global__ void real_constraints(float* box, float* volume, const float* support, bool positive,
                                 std::int64_t nx, std::int64_t ny, std::int64_t nz, std::int64_t gx,
                                 std::int64_t gy, std::int64_t gz, std::int64_t hx, float inv_n) {
  const std::int64_t n = gx * gy * gz;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t ix = i % gx, iy = (i / gx) % gy, iz = i / (gx * gy);
    const std::int64_t at = (iz * gy + iy) * 2 * hx + ix;
    const std::int64_t vx = volume_index(ix, nx, gx), vy = volume_index(iy, ny, gy),
                       vz = volume_index(iz, nz, gz);
    if (vx < 0 || vy < 0 || vz < 0) {
      box[at] = 0.0f;
      continue;
    }
    const std::int64_t vi = (vz * ny + vy) * nx + vx;
    float v = box[at] * inv_n;
    if (positive && v < 0.0f) v = 0.0f;
    if (support && support[vi] == 0.0f) v = 0.0f;
    box[at] = v;
    volume[vi] = v;
  }
}

// One partial sum per block of w |F_meas - F| over the held-out elements (fixed launch shape, so
// the sum is the same on every run).
__global__ void free_misfit(const float2* F, const float2* measured, const std::uint8_t* kind,
                            std::int64_t hx, std::int64_t n, double* partial) {
  __shared__ double acc[kThreads];
  double s = 0.0;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (kind[i] != kHeldOut) continue;
    const double dr = static_cast<double>(measured[i].x) - F[i].x;
    const double di = static_cast<double>(measured[i].y) - F[i].y;
    s += hermitian_weight(i % hx) * sqrt(dr * dr + di * di);
  }
  acc[threadIdx.x] = s;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) acc[threadIdx.x] += acc[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = acc[0];
}

}  // namespace

void check_device_memory(const Problem& p, const ReconOptions& opt) {
  cuda::DeviceGuard guard(cuda::checked_device(opt.device.index));
  ReconProblemSize size;
  size.nx = p.nx, size.ny = p.ny, size.nz = p.nz;
  size.view_nx = p.views_nx, size.view_ny = p.views_ny, size.n_views = p.n_views;
  size.algorithm = Algorithm::genfire;
  size.support = opt.support != nullptr;
  size.genfire_oversampling = opt.genfire.oversampling;
  std::size_t free_bytes = 0, total_bytes = 0;
  AET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  plan_recon_memory(size, free_bytes);
}

Array3 iterate_cuda(const Problem& p, const ReconOptions& opt, double pixel, Recorder& recorder,
                    std::uint64_t& device_bytes) {
  // Planned again right before allocating: the free memory may have changed since the gridding.
  check_device_memory(p, opt);
  cuda::DeviceGuard guard(opt.device.index);

  const std::size_t half = p.half_size();
  const std::size_t volume_size = static_cast<std::size_t>(p.nx * p.ny * p.nz);

  // cuFFT plans first (their work areas are shared and allocated by us below), after the stream
  // they are bound to, so that they are destroyed before it.
  cuda::Stream stream;
  FftPlan forward, inverse;
  AET_CUFFT_CHECK(cufftSetAutoAllocation(forward.get(), 0));
  AET_CUFFT_CHECK(cufftSetAutoAllocation(inverse.get(), 0));
  long long dims[3] = {p.gz, p.gy, p.gx};
  long long real_embed[3] = {p.gz, p.gy, 2 * p.hx};
  long long complex_embed[3] = {p.gz, p.gy, p.hx};
  const long long real_dist = 2 * static_cast<long long>(half),
                  complex_dist = static_cast<long long>(half);
  std::size_t work_forward = 0, work_inverse = 0;
  AET_CUFFT_CHECK(cufftMakePlanMany64(forward.get(), 3, dims, real_embed, 1, real_dist,
                                      complex_embed, 1, complex_dist, CUFFT_R2C, 1, &work_forward));
  AET_CUFFT_CHECK(cufftMakePlanMany64(inverse.get(), 3, dims, complex_embed, 1, complex_dist,
                                      real_embed, 1, real_dist, CUFFT_C2R, 1, &work_inverse));

  AET_CUFFT_CHECK(cufftSetStream(forward.get(), stream.get()));
  AET_CUFFT_CHECK(cufftSetStream(inverse.get(), stream.get()));

  cuda::DeviceBuffer<float2> box(half);  // the real box in place (padded rows) and its spectrum
  cuda::DeviceBuffer<float2> measured(half);
  cuda::DeviceBuffer<std::uint8_t> kind(half);
  cuda::DeviceBuffer<float> volume_d(volume_size);
  cuda::DeviceBuffer<float> support_d(opt.support ? volume_size : 0);
  cuda::DeviceBuffer<double> partial(kReduceBlocks);
  cuda::DeviceBuffer<char> work(std::max(work_forward, work_inverse));
  if (work.size() > 0) {
    AET_CUFFT_CHECK(cufftSetWorkArea(forward.get(), work.get()));
    AET_CUFFT_CHECK(cufftSetWorkArea(inverse.get(), work.get()));
  }
  device_bytes = half * sizeof(float2) * 2 + half + volume_size * sizeof(float) +
                 support_d.size() * sizeof(float) + kReduceBlocks * sizeof(double) + work.size();

  static_assert(sizeof(std::complex<float>) == sizeof(float2), "complex layout");
  measured.upload(reinterpret_cast<const float2*>(p.measured.data()), stream.get());
  kind.upload(p.kind.data(), stream.get());
  if (opt.support) support_d.upload(opt.support->data(), stream.get());
  AET_CUDA_CHECK(cudaMemsetAsync(box.get(), 0, half * sizeof(float2), stream.get()));

  Array3 volume(p.nx, p.ny, p.nz);
  volume.voxel_size = VoxelSize{pixel, pixel, pixel};
  std::vector<double> partial_host(kReduceBlocks);
  const float inv_n = static_cast<float>(1.0 / p.grid_elements());
  auto* box_real = reinterpret_cast<float*>(box.get());
  const std::int64_t grid_n = p.gx * p.gy * p.gz;
  const unsigned half_blocks =
      cuda::blocks_for(static_cast<std::int64_t>(half), kThreads, kMaxBlocks);
  const unsigned grid_blocks = cuda::blocks_for(grid_n, kThreads, kMaxBlocks);

  for (int it = 1; it <= opt.iterations; ++it) {
    const double limit = p.limit_squared[static_cast<std::size_t>(it - 1)];
    fourier_constraint<<<half_blocks, kThreads, 0, stream.get()>>>(
        box.get(), measured.get(), kind.get(), p.hx, p.gx, p.gy, p.gz, limit);
    AET_CUDA_CHECK(cudaGetLastError());
    AET_CUFFT_CHECK(cufftExecC2R(inverse.get(), reinterpret_cast<cufftComplex*>(box.get()),
                                 reinterpret_cast<cufftReal*>(box_real)));
    real_constraints<<<grid_blocks, kThreads, 0, stream.get()>>>(
        box_real, volume_d.get(), opt.support ? support_d.get() : nullptr, opt.positivity, p.nx,
        p.ny, p.nz, p.gx, p.gy, p.gz, p.hx, inv_n);
    AET_CUDA_CHECK(cudaGetLastError());
    volume_d.download(volume.data(), stream.get());
    AET_CUFFT_CHECK(cufftExecR2C(forward.get(), reinterpret_cast<cufftReal*>(box_real),
                                 reinterpret_cast<cufftComplex*>(box.get())));
    double rf = std::numeric_limits<double>::quiet_NaN();
    if (p.held_out > 0 && p.free_norm > 0) {
      free_misfit<<<kReduceBlocks, kThreads, 0, stream.get()>>>(
          box.get(), measured.get(), kind.get(), p.hx, static_cast<std::int64_t>(half),
          partial.get());
      AET_CUDA_CHECK(cudaGetLastError());
      partial.download(partial_host.data(), stream.get());
    }
    stream.synchronize();
    if (p.held_out > 0 && p.free_norm > 0) {
      double misfit = 0.0;
      for (double v : partial_host) misfit += v;
      rf = misfit / p.free_norm;
    }
    recorder.record(it, volume, rf);
  }
  return volume;
}

}  // namespace aet::detail::genfire
