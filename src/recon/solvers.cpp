// Iterative solvers (RESIRE, SIRT) and the dispatcher that also runs FBP.
//
// RESIRE (Pham et al., Sci. Rep. 13, 5624, 2023) is gradient descent on ||A x - b||^2 / 2 with
// the gradient A^T (A x - b) scaled by dt = step / (n_views * nz), the normalisation of the
// authors' code: A^T A has its largest eigenvalue near n_views times the ray length, so step ~ 1
// is stable. Positivity and the support are imposed after every step. SIRT is
// x += step * C A^T R (b - A x) with R, C the inverse row and column sums of A.
// Each iteration costs one forward and one back projection; the R factors of the volume after
// iteration k come from the forward projection of iteration k + 1 (one extra projection at the
// end), so nothing is projected twice. The loop and its books are shared with the CUDA plans
// (iteration.hpp); this file holds the CPU backend.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/hpc/mpi.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "iteration.hpp"
#include "recon_detail.hpp"

#ifndef AET_WITH_CUDA
#define AET_WITH_CUDA 0
#endif

namespace aet {
namespace {

void check_same_dims(const Array3& a, const Array3& b, const char* what) {
  if (a.nx() != b.nx() || a.ny() != b.ny() || a.nz() != b.nz())
    fail_input(std::string(what) + ": arrays differ in size (" + dims_text(a) + " and " +
               dims_text(b) + ")");
}

// Element-wise kernels over large arrays, split over threads in fixed chunks.
template <class F>
void for_each_index(std::size_t n, F f) {
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) f(static_cast<std::size_t>(i));
  });
}

// Positivity and support after an update.
void apply_constraints(Array3& x, const ReconOptions& opt) {
  float* v = x.data();
  const float* mask = opt.support ? opt.support->data() : nullptr;
  const bool positive = opt.positivity;
  if (!positive && !mask) return;
  for_each_index(x.size(), [&](std::size_t i) {
    float y = v[i];
    if (positive && y < 0.0f) y = 0.0f;
    if (mask && mask[i] == 0.0f) y = 0.0f;
    v[i] = y;
  });
}

// The CPU backend of the shared iteration (iteration.hpp), on whole arrays or, with reductions,
// on one rank's part of a distributed solve (distributed.cpp): a slab of y rows or a subset of
// the views.
class CpuIteration final : public detail::IterationBackend {
 public:
  CpuIteration(const Array3& b, const TiltGeometry& geometry, const ReconOptions& opt,
               std::int64_t nx, std::int64_t ny, std::int64_t nz, const detail::Reductions* red)
      : b_(b),
        geometry_(geometry),
        opt_(opt),
        dev_(opt.device),
        nx_(nx),
        ny_(ny),
        nz_(nz),
        red_(red),
        sirt_(opt.algorithm == Algorithm::sirt),
        x_(opt.initial ? *opt.initial : Array3(nx, ny, nz)) {
    const double pixel = b.voxel_size.x;
    x_.voxel_size = VoxelSize{pixel, pixel, pixel};
    if (sirt_) {
      Array3 ones(nx, ny, nz, 1.0f);
      ones.voxel_size = x_.voxel_size;
      row_inv_ = forward_project(ones, geometry, b.nx(), b.ny(), dev_);
      invert(row_inv_);
      Array3 ones_views(b.nx(), b.ny(), b.nz(), 1.0f);
      ones_views.voxel_size = b.voxel_size;
      col_inv_ = back_project(ones_views, geometry, nx, ny, nz, dev_);
      sum_volume(col_inv_);
      invert(col_inv_);
    }
    const double views = red ? static_cast<double>(red->total_views) : static_cast<double>(b.nz());
    dt_ = opt.step / (views * static_cast<double>(nz));
  }

  void residual_of_zero() override {
    residual_ = b_;
    weight_residual();
  }
  void residual(bool measure) override {
    residual_ = project();
    if (measure) r_ = measure_r(residual_);
    float* r = residual_.data();
    const float* bv = b_.data();
    for_each_index(residual_.size(), [&](std::size_t i) { r[i] = bv[i] - r[i]; });
    weight_residual();
  }
  void update() override {
    Array3 update = back_project(residual_, geometry_, nx_, ny_, nz_, dev_);
    sum_volume(update);
    residual_ = Array3();  // not needed again: no larger peak than one residual at a time
    float* xv = x_.data();
    const float* u = update.data();
    if (sirt_) {
      const float* c = col_inv_.data();
      const float relax = static_cast<float>(opt_.step);
      for_each_index(x_.size(), [&](std::size_t i) { xv[i] += relax * c[i] * u[i]; });
    } else {
      // Gradient step: A^T (A x - b) = -update.
      const float step = static_cast<float>(dt_);
      for_each_index(x_.size(), [&](std::size_t i) { xv[i] += step * u[i]; });
    }
    apply_constraints(x_, opt_);
  }
  detail::RFactors r_factors() override { return r_; }
  void extrapolate(float beta) override {
    if (prev_.empty()) prev_ = Array3(x_.nx(), x_.ny(), x_.nz());
    float* xv = x_.data();
    float* pv = prev_.data();
    for_each_index(x_.size(), [&](std::size_t i) {
      const float xn = xv[i];
      xv[i] = xn + beta * (xn - pv[i]);
      pv[i] = xn;
    });
  }
  void restore_last() override {
    if (prev_.empty()) return;
    const VoxelSize v = x_.voxel_size;
    x_ = std::move(prev_);
    x_.voxel_size = v;
  }
  detail::RFactors final_r_factors() override { return measure_r(project()); }
  Array3 take_volume() { return std::move(x_); }

 private:
  Array3 project() const { return forward_project(x_, geometry_, b_.nx(), b_.ny(), dev_); }
  detail::RFactors measure_r(const Array3& computed) const {
    return detail::r_factors(b_, computed, red_ ? red_->sum : nullptr);
  }
  void sum_volume(Array3& a) const {
    if (red_ && red_->sum_volume) red_->sum_volume(a.data(), a.size());
  }
  // SIRT's weights, zero below 1e-6 of the peak over every rank's sums.
  void invert(Array3& sums) const {
    float peak = 0.0f;
    for (std::size_t e = 0; e < sums.size(); ++e) peak = std::max(peak, sums.data()[e]);
    if (red_ && red_->max) peak = static_cast<float>(red_->max(peak));
    detail::invert_sums(sums.data(), sums.size(), peak);
  }
  void weight_residual() {
    if (!sirt_) return;
    float* r = residual_.data();
    const float* w = row_inv_.data();
    for_each_index(residual_.size(), [&](std::size_t i) { r[i] *= w[i]; });
  }

  const Array3& b_;
  const TiltGeometry& geometry_;
  const ReconOptions& opt_;
  const Device& dev_;
  std::int64_t nx_, ny_, nz_;
  const detail::Reductions* red_;  // nullptr: a whole solve in this process
  bool sirt_;
  Array3 x_;
  Array3 row_inv_, col_inv_;  // SIRT's weights
  double dt_ = 0;             // RESIRE's step / (n_views nz)
  Array3 residual_;
  Array3 prev_;  // FISTA: the last constrained iterate
  detail::RFactors r_;
};

}  // namespace

Algorithm parse_algorithm(const std::string& name) {
  if (name == "resire") return Algorithm::resire;
  if (name == "sirt") return Algorithm::sirt;
  if (name == "fbp") return Algorithm::fbp;
  if (name == "genfire") return Algorithm::genfire;
  fail_input("unknown reconstruction algorithm '" + name + "' (use resire, sirt, fbp or genfire)");
}

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::resire:
      return "resire";
    case Algorithm::sirt:
      return "sirt";
    case Algorithm::fbp:
      return "fbp";
    case Algorithm::genfire:
      return "genfire";
  }
  return "?";
}

FbpFilter parse_fbp_filter(const std::string& name) {
  if (name == "ramp" || name == "ram-lak") return FbpFilter::ramp;
  if (name == "shepp-logan") return FbpFilter::shepp_logan;
  if (name == "hann") return FbpFilter::hann;
  fail_input("unknown FBP filter '" + name + "' (use ramp, shepp-logan or hann)");
}

const char* fbp_filter_name(FbpFilter f) {
  switch (f) {
    case FbpFilter::ramp:
      return "ramp";
    case FbpFilter::shepp_logan:
      return "shepp-logan";
    case FbpFilter::hann:
      return "hann";
  }
  return "?";
}

double r1_factor(const Array3& measured, const Array3& computed, double* scale) {
  check_same_dims(measured, computed, "R1");
  const float* b = measured.data();
  const float* p = computed.data();
  const std::size_t n = measured.size();
  double bp = 0.0, pp = 0.0, sb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    bp += static_cast<double>(b[i]) * p[i];
    pp += static_cast<double>(p[i]) * p[i];
    sb += std::abs(static_cast<double>(b[i]));
  }
  const double l = pp > 0 ? bp / pp : 0.0;
  if (scale) *scale = l;
  double diff = 0.0;
  for (std::size_t i = 0; i < n; ++i) diff += std::abs(b[i] - l * p[i]);
  return sb > 0 ? diff / sb : 0.0;
}

double r2_factor(const Array3& measured, const Array3& computed) {
  check_same_dims(measured, computed, "R2");
  double l = 0.0;
  r1_factor(measured, computed, &l);
  const float* b = measured.data();
  const float* p = computed.data();
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < measured.size(); ++i) {
    const double d = b[i] - l * p[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? num / den : 0.0;
}

double noise_r1(const Array3& views) {
  const std::int64_t nx = views.nx(), rows = views.ny() * views.nz();
  if (nx < 3) return 0.0;
  double sr = 0.0, sb = 0.0;
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* b = views.data() + row * nx;
    for (std::int64_t x = 1; x + 1 < nx; ++x) {
      sr += std::abs(b[x] - 0.5 * (static_cast<double>(b[x - 1]) + b[x + 1]));
      sb += std::abs(static_cast<double>(b[x]));
    }
  }
  return sb > 0 ? sr / std::sqrt(1.5) / sb : 0.0;
}

ReconResult reconstruct(const Array3& views, const TiltGeometry& geometry,
                        const ReconOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  if (views.empty()) fail_input("reconstruct: the tilt series is empty");
  if (views.nz() != static_cast<std::int64_t>(geometry.size()))
    fail_input("reconstruct: the tilt series has " + std::to_string(views.nz()) +
               " views but the angles give " + std::to_string(geometry.size()));
  for (std::size_t i = 0; i < views.size(); ++i)
    if (!std::isfinite(views.data()[i]))
      fail_input("reconstruct: the tilt series holds a non-finite value (view " +
                 std::to_string(static_cast<std::int64_t>(i) / (views.nx() * views.ny())) + ")");
  const double pixel = views.voxel_size.x;
  if (!(pixel > 0) || !std::isfinite(pixel))
    fail_input("reconstruct: the pixel size must be positive");
  if (opt.algorithm != Algorithm::fbp && opt.iterations < 1)
    fail_input("reconstruct: iterations must be >= 1, got " + std::to_string(opt.iterations));
  if (!(opt.step > 0) || !std::isfinite(opt.step)) fail_input("reconstruct: the step must be > 0");
  if (opt.nx < 0 || opt.ny < 0 || opt.nz < 0)
    fail_input("reconstruct: volume sizes must be positive (0 = default)");
  const std::int64_t nx = opt.nx > 0 ? opt.nx : views.nx();
  const std::int64_t ny = opt.ny > 0 ? opt.ny : views.ny();
  const std::int64_t nz = opt.nz > 0 ? opt.nz : views.nx();
  checked_product(nx, ny, nz);
  if (opt.extended) return detail::reconstruct_extended(views, geometry, opt, nx, ny, nz);
  const auto check_dims = [&](const Array3& a, const char* what) {
    if (a.nx() != nx || a.ny() != ny || a.nz() != nz)
      fail_input(std::string("reconstruct: the ") + what + " is " + dims_text(a) +
                 " but the volume is " + std::to_string(nx) + " x " + std::to_string(ny) + " x " +
                 std::to_string(nz));
  };
  if (opt.support) check_dims(*opt.support, "support");
  const bool iterative_gradient =
      opt.algorithm == Algorithm::resire || opt.algorithm == Algorithm::sirt;
  if (opt.accelerate && !iterative_gradient)
    fail_input(std::string("reconstruct: momentum (accelerate) applies to RESIRE and SIRT, not ") +
               algorithm_name(opt.algorithm));
  if (opt.initial) {
    if (!iterative_gradient)
      fail_input(std::string("reconstruct: a starting volume applies to RESIRE and SIRT, not ") +
                 algorithm_name(opt.algorithm));
    check_dims(*opt.initial, "starting volume");
    for (float v : opt.initial->vector())
      if (!std::isfinite(v))
        fail_input("reconstruct: the starting volume holds a non-finite value");
  }

  // Whole-pixel shifts for the real-space projector (ReconOptions::fourier_shift); the views
  // are copied only when some shift has a sub-pixel part.
  Array3 resampled;
  TiltGeometry whole_pixel;
  const bool moved = opt.fourier_shift && opt.algorithm != Algorithm::genfire &&
                     detail::move_subpixel_shifts(views, geometry, resampled, whole_pixel);
  const Array3* b = moved ? &resampled : &views;
  const TiltGeometry* g = moved ? &whole_pixel : &geometry;

  ReconResult result;
  if (mpi_size() > 1 && detail::distributes(opt, *g, views.ny(), ny)) {
    result = detail::reconstruct_distributed(*b, *g, opt, nx, ny, nz);
  } else if (opt.algorithm == Algorithm::fbp) {
    Array3 v = filtered_back_projection(*b, *g, nx, ny, nz, opt.filter, opt.device);
    if (opt.support) {
      ReconOptions mask_only = opt;
      mask_only.positivity = false;
      apply_constraints(v, mask_only);
    }
    const Array3 p = forward_project(v, *g, views.nx(), views.ny(), opt.device);
    result.r1.push_back(r1_factor(*b, p));
    result.r2.push_back(r2_factor(*b, p));
    if (opt.on_iteration) opt.on_iteration(1, result.r1.back(), result.r2.back());
    result.volume = std::move(v);
  } else if (opt.algorithm == Algorithm::genfire) {
    result = detail::run_genfire(views, geometry, opt, nx, ny, nz);
  } else if (opt.device.kind == DeviceKind::cuda) {
#if AET_WITH_CUDA
    result = detail::run_iterative_cuda(*b, *g, opt, nx, ny, nz);
#else
    fail_input("this build of aet has no CUDA support; use --device cpu");
#endif
  } else {
    result = detail::run_iterative_cpu(*b, *g, opt, nx, ny, nz, nullptr);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

namespace detail {

void invert_sums(float* a, std::size_t n) {
  float peak = 0.0f;
  for (std::size_t e = 0; e < n; ++e) peak = std::max(peak, a[e]);
  invert_sums(a, n, peak);
}

void invert_sums(float* a, std::size_t n, float peak) {
  const float floor_value = peak * 1e-6f;
  for (std::size_t e = 0; e < n; ++e) a[e] = a[e] > floor_value ? 1.0f / a[e] : 0.0f;
}

RFactors r_factors(const Array3& measured, const Array3& computed,
                   void (*sum)(double* values, std::size_t n)) {
  // The sums of r1_factor and r2_factor, in their order, so that one process gets their bits.
  const float* b = measured.data();
  const float* p = computed.data();
  const std::size_t n = measured.size();
  double s[4] = {0, 0, 0, 0};  // <b, p>, <p, p>, sum |b|, sum b^2
  for (std::size_t i = 0; i < n; ++i) {
    s[0] += static_cast<double>(b[i]) * p[i];
    s[1] += static_cast<double>(p[i]) * p[i];
    s[2] += std::abs(static_cast<double>(b[i]));
    s[3] += static_cast<double>(b[i]) * b[i];
  }
  if (sum) sum(s, 4);
  const double l = s[1] > 0 ? s[0] / s[1] : 0.0;
  double d[2] = {0, 0};  // sum |b - l p|, sum (b - l p)^2
  for (std::size_t i = 0; i < n; ++i) {
    const double e = b[i] - l * p[i];
    d[0] += std::abs(e);
    d[1] += e * e;
  }
  if (sum) sum(d, 2);
  RFactors r;
  r.r1 = s[2] > 0 ? d[0] / s[2] : 0.0;
  r.r2 = s[3] > 0 ? d[1] / s[3] : 0.0;
  return r;
}

ReconResult run_iterative_cpu(const Array3& b, const TiltGeometry& geometry,
                              const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                              std::int64_t nz, const Reductions* reductions) {
  ReconResult result;
  CpuIteration backend(b, geometry, opt, nx, ny, nz, reductions);
  IterationRecorder recorder(opt, result);
  run_iterations(backend, opt, recorder);
  recorder.finish();
  result.volume = backend.take_volume();
  return result;
}

}  // namespace detail

}  // namespace aet
