// Device-resident RESIRE and SIRT: the mathematics and the R-factor bookkeeping of run_iterative
// (src/recon/solvers.cpp), with the volume on the device for the whole solve.
//
// Resident plan (the usual case): the views are uploaded once. One iteration is
//   forward_kernel   p = A x into the residual buffer, with <b, p> and <p, p>     (iteration > 1)
//   residual_kernel  sum |b - l p| and sum (b - l p)^2 (l = <b, p> / <p, p>), then the buffer
//                    becomes b - p (times row_inv for SIRT)
//   gather_kernel    x += dt A^T r (RESIRE) or x += relax col_inv A^T r (SIRT), then positivity
//                    and the support, in place: no update volume
// and only the four sums come back to the host. As on the CPU, the R factors of the volume after
// iteration k come from the forward projection of iteration k + 1, plus one projection at the end.
//
// Batched plan (the views do not fit): the views stay in pinned host memory and stream through
// the device in batches each iteration; the back projections of the batches add up in an update
// volume, applied after the last batch. The projections come back to the host, where the R
// factors are computed (they need <b, p> over all views before sum |b - l p|).
#define EIGEN_NO_CUDA  // Eigen is used on the host side only

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/recon/memory_plan.hpp"
#include "aet/recon/solvers.hpp"
#include "projector_kernels.cuh"
#include "recon_detail.hpp"

namespace aet::detail {
namespace {

using cuda::recon::DeviceRays;
using cuda::recon::GatherMode;
using cuda::recon::kReduceThreads;
using cuda::recon::Shape;

// ---- element-wise kernels (grid-stride, 64-bit indices) --------------------------------------

unsigned grid_for(long long n) {
  const long long blocks = (n + kReduceThreads - 1) / kReduceThreads;
  return static_cast<unsigned>(std::min<long long>(std::max<long long>(blocks, 1), 8192));
}

__global__ void fill_kernel(float* __restrict__ a, long long n, float value) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride)
    a[e] = value;
}

// *peak_bits = max(*peak_bits, bits of the largest positive element). Non-negative floats order
// like their bit patterns, so an unsigned atomicMax finds the float maximum.
__global__ void max_positive_kernel(const float* __restrict__ a, long long n,
                                    unsigned* __restrict__ peak_bits) {
  unsigned best = 0;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float v = a[e];
    if (v > 0.0f) {
      const unsigned bits = __float_as_uint(v);
      best = bits > best ? bits : best;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned other = __shfl_down_sync(0xffffffffu, best, o);
    best = other > best ? other : best;
  }
  if ((threadIdx.x & 31) == 0 && best != 0) atomicMax(peak_bits, best);
}

// detail::invert_sums (solvers.cpp) on the device: 1 / v above 1e-6 of the peak, 0 elsewhere.
__global__ void invert_kernel(float* __restrict__ a, long long n,
                              const unsigned* __restrict__ peak_bits) {
  const float floor_value = __fmul_rn(__uint_as_float(*peak_bits), 1e-6f);
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float v = a[e];
    a[e] = v > floor_value ? __fdiv_rn(1.0f, v) : 0.0f;
  }
}

// r holds p = A x. With moments (whose [0], [1] hold <b, p>, <p, p>), adds sum |b - l p| and
// sum (b - l p)^2 to moments[2], [3]. With write, turns r into b - p, times row when given.
__global__ void residual_kernel(const float* __restrict__ b, float* __restrict__ r,
                                const float* __restrict__ row, long long n,
                                double* __restrict__ moments, bool write) {
  double l = 0.0;
  if (moments) l = moments[1] > 0.0 ? moments[0] / moments[1] : 0.0;
  double diff = 0.0, square = 0.0;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride) {
    const float bv = b[e], pv = r[e];
    if (moments) {
      const double d = static_cast<double>(bv) - l * static_cast<double>(pv);
      diff += fabs(d);
      square += d * d;
    }
    if (write) {
      float res = __fsub_rn(bv, pv);
      if (row) res = __fmul_rn(res, row[e]);
      r[e] = res;
    }
  }
  if (moments) cuda::recon::block_add2(diff, square, moments + 2);  // uniform branch
}

// The batched plan's update from the summed back projection u.
template <int kMode>
__global__ void update_kernel(float* __restrict__ x, const float* __restrict__ u,
                              const float* __restrict__ col, const unsigned char* __restrict__ mask,
                              long long n, float step, bool positivity) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += stride)
    x[e] = cuda::recon::updated_voxel<kMode>(x[e], u[e], col, mask, e, step, positivity);
}

void fill(float* a, long long n, float value, cudaStream_t s) {
  fill_kernel<<<grid_for(n), kReduceThreads, 0, s>>>(a, n, value);
  AET_CUDA_CHECK(cudaGetLastError());
}

// detail::invert_sums on a device array; `peak` is one unsigned of scratch.
void invert_sums_device(float* a, long long n, unsigned* peak, cudaStream_t s) {
  AET_CUDA_CHECK(cudaMemsetAsync(peak, 0, sizeof(unsigned), s));
  max_positive_kernel<<<grid_for(n), kReduceThreads, 0, s>>>(a, n, peak);
  AET_CUDA_CHECK(cudaGetLastError());
  invert_kernel<<<grid_for(n), kReduceThreads, 0, s>>>(a, n, peak);
  AET_CUDA_CHECK(cudaGetLastError());
}

void residual(const float* b, float* r, const float* row, long long n, double* moments, bool write,
              cudaStream_t s) {
  residual_kernel<<<grid_for(n), kReduceThreads, 0, s>>>(b, r, row, n, moments, write);
  AET_CUDA_CHECK(cudaGetLastError());
}

// ---- host side -----------------------------------------------------------------------------

// A host float array in pinned memory (fast, asynchronous copies), or in ordinary memory when the
// system refuses to pin that much (copies are then slower but still correct).
class HostStack {
 public:
  explicit HostStack(std::size_t n) {
    if (n == 0) return;
    if (cudaHostAlloc(reinterpret_cast<void**>(&pinned_), n * sizeof(float),
                      cudaHostAllocDefault) != cudaSuccess) {
      (void)cudaGetLastError();
      pinned_ = nullptr;
      fallback_.resize(n);
    }
  }
  ~HostStack() {
    if (pinned_) cudaFreeHost(pinned_);
  }
  HostStack(const HostStack&) = delete;
  HostStack& operator=(const HostStack&) = delete;
  float* data() { return pinned_ ? pinned_ : fallback_.data(); }

 private:
  float* pinned_ = nullptr;
  std::vector<float> fallback_;
};

// R factors from the four sums, as r1_factor / r2_factor.
struct RSums {
  double bp = 0, pp = 0, diff = 0, square = 0;
};

// The batched plan's R factors on the host: per-view partial sums (deterministic for any thread
// count), l from all views, then the misfit.
RSums host_r_sums(const float* b, const float* p, std::int64_t n_views, std::int64_t npix) {
  std::vector<double> bp(static_cast<std::size_t>(n_views)), pp(bp.size()), diff(bp.size()),
      square(bp.size());
  parallel_for(n_views, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t k = begin; k < end; ++k) {
      const float* bk = b + k * npix;
      const float* pk = p + k * npix;
      double s1 = 0, s2 = 0;
      for (std::int64_t e = 0; e < npix; ++e) {
        s1 += static_cast<double>(bk[e]) * pk[e];
        s2 += static_cast<double>(pk[e]) * pk[e];
      }
      bp[static_cast<std::size_t>(k)] = s1;
      pp[static_cast<std::size_t>(k)] = s2;
    }
  });
  RSums s;
  for (std::size_t k = 0; k < bp.size(); ++k) {
    s.bp += bp[k];
    s.pp += pp[k];
  }
  const double l = s.pp > 0 ? s.bp / s.pp : 0.0;
  parallel_for(n_views, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t k = begin; k < end; ++k) {
      const float* bk = b + k * npix;
      const float* pk = p + k * npix;
      double s1 = 0, s2 = 0;
      for (std::int64_t e = 0; e < npix; ++e) {
        const double d = bk[e] - l * pk[e];
        s1 += std::abs(d);
        s2 += d * d;
      }
      diff[static_cast<std::size_t>(k)] = s1;
      square[static_cast<std::size_t>(k)] = s2;
    }
  });
  for (std::size_t k = 0; k < bp.size(); ++k) {
    s.diff += diff[k];
    s.square += square[k];
  }
  return s;
}

// Records the R factors of the volume after an iteration, as the CPU's Monitor.
class Recorder {
 public:
  Recorder(const Array3& b, const ReconOptions& opt, ReconResult& result)
      : opt_(opt),
        result_(result),
        progress_(std::string("reconstruct ") + algorithm_name(opt.algorithm), opt.iterations) {
    for (std::size_t e = 0; e < b.size(); ++e) {
      const double v = b.data()[e];
      sum_abs_ += std::abs(v);
      sum_sq_ += v * v;
    }
  }
  // Returns R2.
  double record(int iteration, const RSums& s) {
    const double r1 = sum_abs_ > 0 ? s.diff / sum_abs_ : 0.0;
    const double r2 = sum_sq_ > 0 ? s.square / sum_sq_ : 0.0;
    result_.r1.push_back(r1);
    result_.r2.push_back(r2);
    char line[128];
    std::snprintf(line, sizeof line, "iteration %d: R1 = %.5f, R2 = %.5f", iteration, r1, r2);
    log_verbose(line);
    progress_.advance();
    if (opt_.on_iteration) opt_.on_iteration(iteration, r1, r2);
    return r2;
  }
  void finish() { progress_.finish(); }

 private:
  const ReconOptions& opt_;
  ReconResult& result_;
  Progress progress_;
  double sum_abs_ = 0, sum_sq_ = 0;
};

// Everything both plans share.
struct Problem {
  const Array3& b;
  const ReconOptions& opt;
  Shape shape;
  std::int64_t n_views;
  bool sirt;
  float step;  // RESIRE: dt = step / (n_views nz); SIRT: the relaxation
  GatherMode mode;
  cuda::recon::Precision precision;  // of the projector pair
};

// FISTA extrapolation (solvers.cpp's Momentum): prev <- x_{k+1}, x <- x_{k+1} + beta (x_{k+1} -
// x_k).
__global__ void momentum_kernel(float* __restrict__ x, float* __restrict__ prev, long long n,
                                float beta) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float xn = x[i];
    x[i] = __fadd_rn(xn, __fmul_rn(beta, __fsub_rn(xn, prev[i])));  // no FMA: as the CPU
    prev[i] = xn;
  }
}

// Host side of the momentum: the shared schedule and the device buffer of the previous iterate.
class DeviceMomentum {
 public:
  DeviceMomentum(bool on, long long voxels, cudaStream_t st)
      : on_(on), voxels_(voxels), prev_(on ? static_cast<std::size_t>(voxels) : 0) {
    if (on_)
      AET_CUDA_CHECK(cudaMemsetAsync(prev_.get(), 0, static_cast<std::size_t>(voxels) * 4, st));
  }
  void observe(double r2) { schedule_.observe(r2); }
  void step(float* d_x, cudaStream_t st) {
    if (!on_) return;
    const float beta = static_cast<float>(schedule_.next_beta());
    momentum_kernel<<<grid_for(voxels_), kReduceThreads, 0, st>>>(d_x, prev_.get(), voxels_, beta);
    AET_CUDA_CHECK(cudaGetLastError());
  }
  // The result is the last constrained iterate, not the extrapolated point.
  void finish(float* d_x, cudaStream_t st) {
    if (!on_) return;
    AET_CUDA_CHECK(cudaMemcpyAsync(d_x, prev_.get(), static_cast<std::size_t>(voxels_) * 4,
                                   cudaMemcpyDeviceToDevice, st));
  }

 private:
  bool on_;
  long long voxels_;
  cuda::DeviceBuffer<float> prev_;
  FistaSchedule schedule_;
};

// x = the starting volume (ReconOptions::initial) or zeros.
void start_volume(const Problem& pb, cuda::DeviceBuffer<float>& d_x, std::size_t volume_bytes,
                  cudaStream_t st) {
  if (pb.opt.initial)
    d_x.upload(pb.opt.initial->data(), st);
  else
    AET_CUDA_CHECK(cudaMemsetAsync(d_x.get(), 0, volume_bytes, st));
}

void solve_resident(const Problem& pb, const std::vector<DeviceRays>& rays,
                    const std::vector<unsigned char>& mask, Recorder& rec, Array3& x_out) {
  const Shape& s = pb.shape;
  const long long voxels = s.voxels();
  const long long stack = pb.n_views * s.pixels();
  cuda::Stream stream;
  const cudaStream_t st = stream.get();
  cuda::DeviceBuffer<float> d_x(static_cast<std::size_t>(voxels));
  cuda::DeviceBuffer<float> d_b(static_cast<std::size_t>(stack));
  cuda::DeviceBuffer<float> d_r(static_cast<std::size_t>(stack));
  cuda::DeviceBuffer<unsigned char> d_mask(mask.size());
  cuda::DeviceBuffer<float> d_col(pb.sirt ? static_cast<std::size_t>(voxels) : 0);
  cuda::DeviceBuffer<float> d_row(pb.sirt ? static_cast<std::size_t>(stack) : 0);
  cuda::DeviceBuffer<DeviceRays> d_rays(rays.size());
  cuda::DeviceBuffer<double> d_sums(4);
  cuda::DeviceBuffer<unsigned> d_peak(1);
  d_b.upload(pb.b.data(), st);
  d_rays.upload(rays.data(), st);
  if (!mask.empty()) d_mask.upload(mask.data(), st);
  const unsigned char* mask_ptr = mask.empty() ? nullptr : d_mask.get();
  const std::size_t volume_bytes = static_cast<std::size_t>(voxels) * sizeof(float);

  if (pb.sirt) {
    // Row sums A 1 and column sums A^T 1, inverted (solvers.cpp's invert_sums).
    fill(d_x.get(), voxels, 1.0f, st);
    cuda::recon::launch_forward(pb.precision, d_x.get(), d_rays.get(), pb.n_views, s, d_row.get(),
                                nullptr, nullptr, st);
    invert_sums_device(d_row.get(), stack, d_peak.get(), st);
    fill(d_r.get(), stack, 1.0f, st);
    AET_CUDA_CHECK(cudaMemsetAsync(d_col.get(), 0, volume_bytes, st));
    cuda::recon::launch_gather(pb.precision, d_r.get(), d_rays.get(), pb.n_views, s, d_col.get(),
                               GatherMode::accumulate, nullptr, nullptr, 0.0f, false, st);
    invert_sums_device(d_col.get(), voxels, d_peak.get(), st);
  }
  start_volume(pb, d_x, volume_bytes, st);
  DeviceMomentum momentum(pb.opt.accelerate, voxels, st);
  const float* row = pb.sirt ? d_row.get() : nullptr;
  const float* col = pb.sirt ? d_col.get() : nullptr;

  // p = A x into d_r with all four R sums.
  auto project_with_sums = [&](bool write_residual) {
    AET_CUDA_CHECK(cudaMemsetAsync(d_sums.get(), 0, 4 * sizeof(double), st));
    cuda::recon::launch_forward(pb.precision, d_x.get(), d_rays.get(), pb.n_views, s, d_r.get(),
                                d_b.get(), d_sums.get(), st);
    residual(d_b.get(), d_r.get(), row, stack, d_sums.get(), write_residual, st);
  };
  auto download_sums = [&]() {
    double h[4];
    AET_CUDA_CHECK(cudaMemcpyAsync(h, d_sums.get(), sizeof h, cudaMemcpyDeviceToHost, st));
    stream.synchronize();
    return RSums{h[0], h[1], h[2], h[3]};
  };

  for (int it = 1; it <= pb.opt.iterations; ++it) {
    if (it == 1 && !pb.opt.initial) {
      // A 0 = 0: the residual is b (times row_inv).
      AET_CUDA_CHECK(
          cudaMemsetAsync(d_r.get(), 0, static_cast<std::size_t>(stack) * sizeof(float), st));
      residual(d_b.get(), d_r.get(), row, stack, nullptr, true, st);
    } else {
      project_with_sums(true);
    }
    cuda::recon::launch_gather(pb.precision, d_r.get(), d_rays.get(), pb.n_views, s, d_x.get(),
                               pb.mode, col, mask_ptr, pb.step, pb.opt.positivity, st);
    if (it > 1) {
      momentum.observe(rec.record(it - 1, download_sums()));  // waits for the kernels too
    } else {
      stream.synchronize();  // surfaces kernel errors early
    }
    momentum.step(d_x.get(), st);
  }
  momentum.finish(d_x.get(), st);
  project_with_sums(false);
  rec.record(pb.opt.iterations, download_sums());
  d_x.download(x_out.data(), st);
  stream.synchronize();
}

void solve_batched(const Problem& pb, const std::vector<DeviceRays>& rays,
                   const std::vector<unsigned char>& mask, std::int64_t per_batch, Recorder& rec,
                   Array3& x_out) {
  const Shape& s = pb.shape;
  const long long voxels = s.voxels();
  const long long npix = s.pixels();
  const std::size_t stack = static_cast<std::size_t>(pb.n_views) * static_cast<std::size_t>(npix);
  const std::size_t batch_stack =
      static_cast<std::size_t>(per_batch) * static_cast<std::size_t>(npix);
  const std::size_t volume_bytes = static_cast<std::size_t>(voxels) * sizeof(float);

  HostStack h_b(stack), h_p(stack), h_row(pb.sirt ? stack : 0);
  std::memcpy(h_b.data(), pb.b.data(), stack * sizeof(float));

  cuda::Stream stream;
  const cudaStream_t st = stream.get();
  cuda::DeviceBuffer<float> d_x(static_cast<std::size_t>(voxels));
  cuda::DeviceBuffer<float> d_u(static_cast<std::size_t>(voxels));
  cuda::DeviceBuffer<float> d_b(batch_stack);
  cuda::DeviceBuffer<float> d_r(batch_stack);
  cuda::DeviceBuffer<unsigned char> d_mask(mask.size());
  cuda::DeviceBuffer<float> d_col(pb.sirt ? static_cast<std::size_t>(voxels) : 0);
  cuda::DeviceBuffer<float> d_row(pb.sirt ? batch_stack : 0);
  cuda::DeviceBuffer<DeviceRays> d_rays(rays.size());
  cuda::DeviceBuffer<unsigned> d_peak(1);
  d_rays.upload(rays.data(), st);
  if (!mask.empty()) d_mask.upload(mask.data(), st);
  const unsigned char* mask_ptr = mask.empty() ? nullptr : d_mask.get();

  // Calls f(first view, view count) for each batch.
  auto for_batches = [&](auto f) {
    for (std::int64_t first = 0; first < pb.n_views; first += per_batch)
      f(first, std::min(per_batch, pb.n_views - first));
  };
  auto bytes_of = [&](std::int64_t views) {
    return static_cast<std::size_t>(views) * static_cast<std::size_t>(npix) * sizeof(float);
  };
  // A x for all views into h_p, batch by batch.
  auto project_to_host = [&]() {
    for_batches([&](std::int64_t first, std::int64_t count) {
      cuda::recon::launch_forward(pb.precision, d_x.get(), d_rays.get() + first, count, s,
                                  d_r.get(), nullptr, nullptr, st);
      AET_CUDA_CHECK(cudaMemcpyAsync(h_p.data() + first * npix, d_r.get(), bytes_of(count),
                                     cudaMemcpyDeviceToHost, st));
    });
  };

  if (pb.sirt) {
    fill(d_x.get(), voxels, 1.0f, st);
    project_to_host();
    stream.synchronize();
    std::memcpy(h_row.data(), h_p.data(), stack * sizeof(float));
    detail::invert_sums(h_row.data(), stack);  // the batched plan's row sums, on the host
    fill(d_r.get(), static_cast<long long>(batch_stack), 1.0f, st);
    AET_CUDA_CHECK(cudaMemsetAsync(d_col.get(), 0, volume_bytes, st));
    for_batches([&](std::int64_t first, std::int64_t count) {
      cuda::recon::launch_gather(pb.precision, d_r.get(), d_rays.get() + first, count, s,
                                 d_col.get(), GatherMode::accumulate, nullptr, nullptr, 0.0f, false,
                                 st);
    });
    invert_sums_device(d_col.get(), voxels, d_peak.get(), st);
  }
  start_volume(pb, d_x, volume_bytes, st);
  DeviceMomentum momentum(pb.opt.accelerate, voxels, st);
  const unsigned grid = grid_for(voxels);

  for (int it = 1; it <= pb.opt.iterations; ++it) {
    AET_CUDA_CHECK(cudaMemsetAsync(d_u.get(), 0, volume_bytes, st));
    for_batches([&](std::int64_t first, std::int64_t count) {
      const long long n = count * npix;
      AET_CUDA_CHECK(cudaMemcpyAsync(d_b.get(), h_b.data() + first * npix, bytes_of(count),
                                     cudaMemcpyHostToDevice, st));
      if (it == 1 && !pb.opt.initial) {
        AET_CUDA_CHECK(cudaMemsetAsync(d_r.get(), 0, bytes_of(count), st));  // A 0 = 0
      } else {
        cuda::recon::launch_forward(pb.precision, d_x.get(), d_rays.get() + first, count, s,
                                    d_r.get(), nullptr, nullptr, st);
        // Queued before residual_kernel overwrites d_r: the stream keeps the order.
        AET_CUDA_CHECK(cudaMemcpyAsync(h_p.data() + first * npix, d_r.get(), bytes_of(count),
                                       cudaMemcpyDeviceToHost, st));
      }
      if (pb.sirt)
        AET_CUDA_CHECK(cudaMemcpyAsync(d_row.get(), h_row.data() + first * npix, bytes_of(count),
                                       cudaMemcpyHostToDevice, st));
      residual(d_b.get(), d_r.get(), pb.sirt ? d_row.get() : nullptr, n, nullptr, true, st);
      cuda::recon::launch_gather(pb.precision, d_r.get(), d_rays.get() + first, count, s, d_u.get(),
                                 GatherMode::accumulate, nullptr, nullptr, 0.0f, false, st);
    });
    if (pb.sirt)
      update_kernel<2><<<grid, kReduceThreads, 0, st>>>(d_x.get(), d_u.get(), d_col.get(), mask_ptr,
                                                        voxels, pb.step, pb.opt.positivity);
    else
      update_kernel<1><<<grid, kReduceThreads, 0, st>>>(d_x.get(), d_u.get(), nullptr, mask_ptr,
                                                        voxels, pb.step, pb.opt.positivity);
    AET_CUDA_CHECK(cudaGetLastError());
    stream.synchronize();  // h_p complete, and the pinned h_b / h_row are free to be read again
    if (it > 1)
      momentum.observe(rec.record(it - 1, host_r_sums(h_b.data(), h_p.data(), pb.n_views, npix)));
    momentum.step(d_x.get(), st);
  }
  momentum.finish(d_x.get(), st);
  project_to_host();
  stream.synchronize();
  rec.record(pb.opt.iterations, host_r_sums(h_b.data(), h_p.data(), pb.n_views, npix));
  d_x.download(x_out.data(), st);
  stream.synchronize();
}

}  // namespace

ReconResult run_iterative_cuda(const Array3& views, const TiltGeometry& geometry,
                               const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                               std::int64_t nz) {
  if (opt.algorithm != Algorithm::resire && opt.algorithm != Algorithm::sirt)
    throw InternalError("run_iterative_cuda: RESIRE and SIRT only");
  const double pixel = views.voxel_size.x;
  const Shape s{nx, ny, nz, views.nx(), views.ny()};
  cuda::recon::check_shape(s);
  const auto n_views = views.nz();
  const bool sirt = opt.algorithm == Algorithm::sirt;
  const std::vector<DeviceRays> rays = cuda::recon::make_device_rays(geometry, s, pixel);
  std::vector<unsigned char> mask;
  if (opt.support) {
    const float* sup = opt.support->data();
    mask.resize(opt.support->size());
    for (std::size_t e = 0; e < mask.size(); ++e) mask[e] = sup[e] == 0.0f ? 0 : 1;
  }

  cuda::DeviceGuard guard(cuda::recon::checked_device(opt.device.index));
  ReconProblemSize size;
  size.nx = nx;
  size.ny = ny;
  size.nz = nz;
  size.view_nx = views.nx();
  size.view_ny = views.ny();
  size.n_views = n_views;
  size.algorithm = opt.algorithm;
  size.support = opt.support != nullptr;
  size.accelerate = opt.accelerate;
  const ReconMemoryPlan plan = plan_recon_memory(size, cuda::recon::available_device_bytes());
  log_verbose(plan.summary);

  ReconResult result;
  result.device_bytes = plan.device_bytes;
  Array3 x(nx, ny, nz);
  x.voxel_size = VoxelSize{pixel, pixel, pixel};
  const double dt = opt.step / (static_cast<double>(n_views) * static_cast<double>(nz));
  const Problem pb{views,
                   opt,
                   s,
                   n_views,
                   sirt,
                   sirt ? static_cast<float>(opt.step) : static_cast<float>(dt),
                   sirt ? GatherMode::sirt : GatherMode::resire,
                   cuda::recon::projector_precision(s)};
  Recorder rec(views, opt, result);
  if (plan.batched())
    solve_batched(pb, rays, mask, plan.views_per_batch, rec, x);
  else
    solve_resident(pb, rays, mask, rec, x);
  rec.finish();
  result.volume = std::move(x);
  return result;
}

}  // namespace aet::detail
