// Device-resident RESIRE and SIRT: the two CUDA backends of the shared host iteration
// (src/recon/iteration.hpp, which also keeps the books), with the volume on the device for the
// whole solve; the element-wise kernels are in solver_kernels.cuh.
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
#include "aet/recon/memory_plan.hpp"
#include "aet/recon/solvers.hpp"
#include "iteration.hpp"
#include "launch.cuh"
#include "projector_kernels.cuh"
#include "recon_detail.hpp"
#include "solver_kernels.cuh"

namespace aet::detail {
namespace {

using cuda::recon::DeviceRays;
using cuda::recon::fill;
using cuda::recon::GatherMode;
using cuda::recon::invert_sums_device;
using cuda::recon::kMaxBlocks;
using cuda::recon::kReduceThreads;
using cuda::recon::launch_residual;
using cuda::recon::momentum_kernel;
using cuda::recon::Shape;
using cuda::recon::update_kernel;

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

// R factors from the four sums, as r1_factor / r2_factor: the denominators sum |b| and sum b^2
// are those of the views, summed once per solve.
class RNorms {
 public:
  explicit RNorms(const Array3& b) {
    for (std::size_t e = 0; e < b.size(); ++e) {
      const double v = b.data()[e];
      sum_abs_ += std::abs(v);
      sum_sq_ += v * v;
    }
  }
  RFactors operator()(const RSums& s) const {
    RFactors r;
    r.r1 = sum_abs_ > 0 ? s.diff / sum_abs_ : 0.0;
    r.r2 = sum_sq_ > 0 ? s.square / sum_sq_ : 0.0;
    return r;
  }

 private:
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

// The device side of the momentum: the buffer of the previous iterate (the schedule is the shared
// loop's). Off, without a buffer, until assigned.
class DeviceMomentum {
 public:
  DeviceMomentum() = default;
  DeviceMomentum(bool on, long long voxels, cudaStream_t st)
      : on_(on), voxels_(voxels), prev_(on ? static_cast<std::size_t>(voxels) : 0) {
    if (on_)
      AET_CUDA_CHECK(cudaMemsetAsync(prev_.get(), 0, static_cast<std::size_t>(voxels) * 4, st));
  }
  void step(float* d_x, float beta, cudaStream_t st) {
    if (!on_) return;
    const unsigned grid = cuda::blocks_for(voxels_, kReduceThreads, kMaxBlocks);
    momentum_kernel<<<grid, kReduceThreads, 0, st>>>(d_x, prev_.get(), voxels_, beta);
    AET_CUDA_CHECK(cudaGetLastError());
  }
  // The result is the last constrained iterate, not the extrapolated point.
  void finish(float* d_x, cudaStream_t st) {
    if (!on_) return;
    AET_CUDA_CHECK(cudaMemcpyAsync(d_x, prev_.get(), static_cast<std::size_t>(voxels_) * 4,
                                   cudaMemcpyDeviceToDevice, st));
  }

 private:
  bool on_ = false;
  long long voxels_ = 0;
  cuda::DeviceBuffer<float> prev_;
};

// x = the starting volume (ReconOptions::initial) or zeros.
void start_volume(const Problem& pb, cuda::DeviceBuffer<float>& d_x, std::size_t volume_bytes,
                  cudaStream_t st) {
  if (pb.opt.initial)
    d_x.upload(pb.opt.initial->data(), st);
  else
    AET_CUDA_CHECK(cudaMemsetAsync(d_x.get(), 0, volume_bytes, st));
}

// The resident plan (see the top of the file) as a backend of the shared iteration. The
// constructor uploads the views, computes SIRT's weights and sets the starting volume.
class ResidentPlan final : public IterationBackend {
 public:
  ResidentPlan(const Problem& pb, const std::vector<DeviceRays>& rays,
               const std::vector<unsigned char>& mask, const RNorms& norms)
      : pb_(pb),
        norms_(norms),
        s_(pb.shape),
        voxels_(s_.voxels()),
        stack_(pb.n_views * s_.pixels()),
        st_(stream_.get()),
        d_x_(static_cast<std::size_t>(voxels_)),
        d_b_(static_cast<std::size_t>(stack_)),
        d_r_(static_cast<std::size_t>(stack_)),
        d_mask_(mask.size()),
        d_col_(pb.sirt ? static_cast<std::size_t>(voxels_) : 0),
        d_row_(pb.sirt ? static_cast<std::size_t>(stack_) : 0),
        d_rays_(rays.size()),
        d_sums_(4),
        d_peak_(1) {
    d_b_.upload(pb.b.data(), st_);
    d_rays_.upload(rays.data(), st_);
    if (!mask.empty()) d_mask_.upload(mask.data(), st_);
    mask_ = mask.empty() ? nullptr : d_mask_.get();
    const std::size_t volume_bytes = static_cast<std::size_t>(voxels_) * sizeof(float);
    if (pb.sirt) {
      // Row sums A 1 and column sums A^T 1, inverted (solvers.cpp's invert_sums).
      fill(d_x_.get(), voxels_, 1.0f, st_);
      cuda::recon::launch_forward(pb.precision, d_x_.get(), d_rays_.get(), pb.n_views, s_,
                                  d_row_.get(), nullptr, nullptr, st_);
      invert_sums_device(d_row_.get(), stack_, d_peak_.get(), st_);
      fill(d_r_.get(), stack_, 1.0f, st_);
      AET_CUDA_CHECK(cudaMemsetAsync(d_col_.get(), 0, volume_bytes, st_));
      cuda::recon::launch_gather(pb.precision, d_r_.get(), d_rays_.get(), pb.n_views, s_,
                                 d_col_.get(), GatherMode::accumulate, nullptr, nullptr, 0.0f,
                                 false, st_);
      invert_sums_device(d_col_.get(), voxels_, d_peak_.get(), st_);
    }
    start_volume(pb, d_x_, volume_bytes, st_);
    momentum_ = DeviceMomentum(pb.opt.accelerate, voxels_, st_);
    row_ = pb.sirt ? d_row_.get() : nullptr;
    col_ = pb.sirt ? d_col_.get() : nullptr;
  }

  void residual_of_zero() override {
    // A 0 = 0: the residual is b (times row_inv).
    AET_CUDA_CHECK(
        cudaMemsetAsync(d_r_.get(), 0, static_cast<std::size_t>(stack_) * sizeof(float), st_));
    launch_residual(d_b_.get(), d_r_.get(), row_, stack_, nullptr, true, st_);
    sums_pending_ = false;
  }
  // The sums are computed with every projection; `measure` only says whether they are read.
  void residual(bool measure) override {
    project_with_sums(true);
    sums_pending_ = measure;
  }
  // The fused gather: x += dt A^T r or relax col_inv A^T r, positivity, support.
  void update() override {
    cuda::recon::launch_gather(pb_.precision, d_r_.get(), d_rays_.get(), pb_.n_views, s_,
                               d_x_.get(), pb_.mode, col_, mask_, pb_.step, pb_.opt.positivity,
                               st_);
    // Without sums to wait for (the first iteration), surfaces kernel errors early.
    if (!sums_pending_) stream_.synchronize();
  }
  RFactors r_factors() override { return norms_(download_sums()); }  // waits for the kernels too
  void extrapolate(float beta) override { momentum_.step(d_x_.get(), beta, st_); }
  void restore_last() override { momentum_.finish(d_x_.get(), st_); }
  RFactors final_r_factors() override {
    project_with_sums(false);
    return norms_(download_sums());
  }
  void download(Array3& x_out) {
    d_x_.download(x_out.data(), st_);
    stream_.synchronize();
  }

 private:
  // p = A x into d_r with all four R sums.
  void project_with_sums(bool write_residual) {
    AET_CUDA_CHECK(cudaMemsetAsync(d_sums_.get(), 0, 4 * sizeof(double), st_));
    cuda::recon::launch_forward(pb_.precision, d_x_.get(), d_rays_.get(), pb_.n_views, s_,
                                d_r_.get(), d_b_.get(), d_sums_.get(), st_);
    launch_residual(d_b_.get(), d_r_.get(), row_, stack_, d_sums_.get(), write_residual, st_);
  }
  RSums download_sums() {
    double h[4];
    AET_CUDA_CHECK(cudaMemcpyAsync(h, d_sums_.get(), sizeof h, cudaMemcpyDeviceToHost, st_));
    stream_.synchronize();
    return RSums{h[0], h[1], h[2], h[3]};
  }

  const Problem& pb_;
  const RNorms& norms_;
  const Shape s_;
  const long long voxels_, stack_;
  cuda::Stream stream_;
  const cudaStream_t st_;
  cuda::DeviceBuffer<float> d_x_, d_b_, d_r_;
  cuda::DeviceBuffer<unsigned char> d_mask_;
  cuda::DeviceBuffer<float> d_col_, d_row_;
  cuda::DeviceBuffer<DeviceRays> d_rays_;
  cuda::DeviceBuffer<double> d_sums_;
  cuda::DeviceBuffer<unsigned> d_peak_;
  DeviceMomentum momentum_;
  const unsigned char* mask_ = nullptr;
  const float* row_ = nullptr;  // SIRT's weights; null for RESIRE
  const float* col_ = nullptr;
  bool sums_pending_ = false;  // the last residual's R sums are to be read
};

// The batched plan (see the top of the file) as a backend of the shared iteration: residual()
// streams every batch through the projection, the residual and the back projection into d_u;
// update() applies d_u.
class BatchedPlan final : public IterationBackend {
 public:
  BatchedPlan(const Problem& pb, const std::vector<DeviceRays>& rays,
              const std::vector<unsigned char>& mask, std::int64_t per_batch, const RNorms& norms)
      : pb_(pb),
        norms_(norms),
        s_(pb.shape),
        per_batch_(per_batch),
        voxels_(s_.voxels()),
        npix_(s_.pixels()),
        stack_(static_cast<std::size_t>(pb.n_views) * static_cast<std::size_t>(npix_)),
        batch_stack_(static_cast<std::size_t>(per_batch) * static_cast<std::size_t>(npix_)),
        volume_bytes_(static_cast<std::size_t>(voxels_) * sizeof(float)),
        h_b_(stack_),
        h_p_(stack_),
        h_row_(pb.sirt ? stack_ : 0),
        st_(stream_.get()),
        d_x_(static_cast<std::size_t>(voxels_)),
        d_u_(static_cast<std::size_t>(voxels_)),
        d_b_(batch_stack_),
        d_r_(batch_stack_),
        d_mask_(mask.size()),
        d_col_(pb.sirt ? static_cast<std::size_t>(voxels_) : 0),
        d_row_(pb.sirt ? batch_stack_ : 0),
        d_rays_(rays.size()),
        d_peak_(1),
        grid_(cuda::blocks_for(voxels_, kReduceThreads, kMaxBlocks)) {
    std::memcpy(h_b_.data(), pb.b.data(), stack_ * sizeof(float));
    d_rays_.upload(rays.data(), st_);
    if (!mask.empty()) d_mask_.upload(mask.data(), st_);
    mask_ = mask.empty() ? nullptr : d_mask_.get();
    if (pb.sirt) {
      fill(d_x_.get(), voxels_, 1.0f, st_);
      project_to_host();
      stream_.synchronize();
      std::memcpy(h_row_.data(), h_p_.data(), stack_ * sizeof(float));
      detail::invert_sums(h_row_.data(), stack_);  // the batched plan's row sums, on the host
      fill(d_r_.get(), static_cast<long long>(batch_stack_), 1.0f, st_);
      AET_CUDA_CHECK(cudaMemsetAsync(d_col_.get(), 0, volume_bytes_, st_));
      for_batches([&](std::int64_t first, std::int64_t count) {
        cuda::recon::launch_gather(pb.precision, d_r_.get(), d_rays_.get() + first, count, s_,
                                   d_col_.get(), GatherMode::accumulate, nullptr, nullptr, 0.0f,
                                   false, st_);
      });
      invert_sums_device(d_col_.get(), voxels_, d_peak_.get(), st_);
    }
    start_volume(pb, d_x_, volume_bytes_, st_);
    momentum_ = DeviceMomentum(pb.opt.accelerate, voxels_, st_);
  }

  void residual_of_zero() override { residual_and_back_projection(true); }
  // The projections always come back to h_p; `measure` only says whether they are read.
  void residual(bool) override { residual_and_back_projection(false); }
  void update() override {
    if (pb_.sirt)
      update_kernel<2><<<grid_, kReduceThreads, 0, st_>>>(
          d_x_.get(), d_u_.get(), d_col_.get(), mask_, voxels_, pb_.step, pb_.opt.positivity);
    else
      update_kernel<1><<<grid_, kReduceThreads, 0, st_>>>(d_x_.get(), d_u_.get(), nullptr, mask_,
                                                          voxels_, pb_.step, pb_.opt.positivity);
    AET_CUDA_CHECK(cudaGetLastError());
    stream_.synchronize();  // h_p complete, and the pinned h_b / h_row are free to be read again
  }
  RFactors r_factors() override { return norms_(host_sums()); }
  void extrapolate(float beta) override { momentum_.step(d_x_.get(), beta, st_); }
  void restore_last() override { momentum_.finish(d_x_.get(), st_); }
  RFactors final_r_factors() override {
    project_to_host();
    stream_.synchronize();
    return norms_(host_sums());
  }
  void download(Array3& x_out) {
    d_x_.download(x_out.data(), st_);
    stream_.synchronize();
  }

 private:
  // Calls f(first view, view count) for each batch.
  template <class F>
  void for_batches(F f) const {
    for (std::int64_t first = 0; first < pb_.n_views; first += per_batch_)
      f(first, std::min(per_batch_, pb_.n_views - first));
  }
  std::size_t bytes_of(std::int64_t views) const {
    return static_cast<std::size_t>(views) * static_cast<std::size_t>(npix_) * sizeof(float);
  }
  // A x for all views into h_p, batch by batch.
  void project_to_host() {
    for_batches([&](std::int64_t first, std::int64_t count) {
      cuda::recon::launch_forward(pb_.precision, d_x_.get(), d_rays_.get() + first, count, s_,
                                  d_r_.get(), nullptr, nullptr, st_);
      AET_CUDA_CHECK(cudaMemcpyAsync(h_p_.data() + first * npix_, d_r_.get(), bytes_of(count),
                                     cudaMemcpyDeviceToHost, st_));
    });
  }
  // d_u = A^T (b - A x) (times row_inv), or A^T b for x = 0, batch by batch.
  void residual_and_back_projection(bool zero) {
    AET_CUDA_CHECK(cudaMemsetAsync(d_u_.get(), 0, volume_bytes_, st_));
    for_batches([&](std::int64_t first, std::int64_t count) {
      const long long n = count * npix_;
      AET_CUDA_CHECK(cudaMemcpyAsync(d_b_.get(), h_b_.data() + first * npix_, bytes_of(count),
                                     cudaMemcpyHostToDevice, st_));
      if (zero) {
        AET_CUDA_CHECK(cudaMemsetAsync(d_r_.get(), 0, bytes_of(count), st_));  // A 0 = 0
      } else {
        cuda::recon::launch_forward(pb_.precision, d_x_.get(), d_rays_.get() + first, count, s_,
                                    d_r_.get(), nullptr, nullptr, st_);
        // Queued before residual_kernel overwrites d_r: the stream keeps the order.
        AET_CUDA_CHECK(cudaMemcpyAsync(h_p_.data() + first * npix_, d_r_.get(), bytes_of(count),
                                       cudaMemcpyDeviceToHost, st_));
      }
      if (pb_.sirt)
        AET_CUDA_CHECK(cudaMemcpyAsync(d_row_.get(), h_row_.data() + first * npix_, bytes_of(count),
                                       cudaMemcpyHostToDevice, st_));
      launch_residual(d_b_.get(), d_r_.get(), pb_.sirt ? d_row_.get() : nullptr, n, nullptr, true,
                      st_);
      cuda::recon::launch_gather(pb_.precision, d_r_.get(), d_rays_.get() + first, count, s_,
                                 d_u_.get(), GatherMode::accumulate, nullptr, nullptr, 0.0f, false,
                                 st_);
    });
  }
  RSums host_sums() { return host_r_sums(h_b_.data(), h_p_.data(), pb_.n_views, npix_); }

  const Problem& pb_;
  const RNorms& norms_;
  const Shape s_;
  const std::int64_t per_batch_;
  const long long voxels_, npix_;
  const std::size_t stack_, batch_stack_, volume_bytes_;
  HostStack h_b_, h_p_, h_row_;
  cuda::Stream stream_;
  const cudaStream_t st_;
  cuda::DeviceBuffer<float> d_x_, d_u_, d_b_, d_r_;
  cuda::DeviceBuffer<unsigned char> d_mask_;
  cuda::DeviceBuffer<float> d_col_, d_row_;
  cuda::DeviceBuffer<DeviceRays> d_rays_;
  cuda::DeviceBuffer<unsigned> d_peak_;
  DeviceMomentum momentum_;
  const unsigned grid_;
  const unsigned char* mask_ = nullptr;
};

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
  IterationRecorder rec(opt, result);
  const RNorms norms(views);
  if (plan.batched()) {
    BatchedPlan backend(pb, rays, mask, plan.views_per_batch, norms);
    run_iterations(backend, opt, rec);
    backend.download(x);
  } else {
    ResidentPlan backend(pb, rays, mask, norms);
    run_iterations(backend, opt, rec);
    backend.download(x);
  }
  rec.finish();
  result.volume = std::move(x);
  return result;
}

}  // namespace aet::detail
