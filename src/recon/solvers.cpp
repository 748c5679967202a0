// Iterative solvers (RESIRE, SIRT) and the dispatcher that also runs FBP.
//
// RESIRE (Pham et al., Sci. Rep. 13, 5624, 2023) is gradient descent on ||A x - b||^2 / 2 with
// the gradient A^T (A x - b) scaled by dt = step / (n_views * nz), the normalisation of the
// authors' code: A^T A has its largest eigenvalue near n_views times the ray length, so step ~ 1
// is stable. Positivity and the support are imposed after every step. SIRT is
// x += step * C A^T R (b - A x) with R, C the inverse row and column sums of A.
// Each iteration costs one forward and one back projection; the R factors of the volume after
// iteration k come from the forward projection of iteration k + 1 (one extra projection at the
// end), so nothing is projected twice.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "recon_detail.hpp"

#ifndef AET_WITH_CUDA
#define AET_WITH_CUDA 0
#endif

namespace aet {
namespace {

std::string dims_text(const Array3& a) {
  return std::to_string(a.nx()) + " x " + std::to_string(a.ny()) + " x " + std::to_string(a.nz());
}

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

struct Monitor {
  const Array3& measured;
  const ReconOptions& opt;
  ReconResult& result;
  Progress progress;
  Monitor(const Array3& b, const ReconOptions& o, ReconResult& r, const std::string& label, int n)
      : measured(b), opt(o), result(r), progress(label, n) {}

  // Records the R factors of the volume after `iteration` from its forward projection.
  void record(int iteration, const Array3& computed) {
    const double r1 = r1_factor(measured, computed), r2 = r2_factor(measured, computed);
    result.r1.push_back(r1);
    result.r2.push_back(r2);
    char line[128];
    std::snprintf(line, sizeof line, "iteration %d: R1 = %.5f, R2 = %.5f", iteration, r1, r2);
    log_verbose(line);
    progress.advance();
    if (opt.on_iteration) opt.on_iteration(iteration, r1, r2);
  }
};

// FISTA momentum for the gradient iterations (ReconOptions::accelerate): the next residual is
// taken at y = x_k + beta_k (x_k - x_{k-1}), with the schedule of detail::FistaSchedule.
struct Momentum {
  Array3 prev;  // the last constrained iterate x_k
  detail::FistaSchedule schedule;
  // x holds the constrained iterate x_{k+1}; on return it holds y.
  void step(Array3& x) {
    if (prev.empty()) prev = Array3(x.nx(), x.ny(), x.nz());
    const float beta = static_cast<float>(schedule.next_beta());
    float* xv = x.data();
    float* pv = prev.data();
    for_each_index(x.size(), [&](std::size_t i) {
      const float xn = xv[i];
      xv[i] = xn + beta * (xn - pv[i]);
      pv[i] = xn;
    });
  }
  // The result is the last constrained iterate, not the extrapolated point.
  void finish(Array3& x) {
    if (prev.empty()) return;
    const VoxelSize v = x.voxel_size;
    x = std::move(prev);
    x.voxel_size = v;
  }
};

ReconResult run_iterative(const Array3& b, const TiltGeometry& geometry, const ReconOptions& opt,
                          std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  const double pixel = b.voxel_size.x;
  const std::int64_t vnx = b.nx(), vny = b.ny();
  const Device& dev = opt.device;
  ReconResult result;
  Array3 x = opt.initial ? *opt.initial : Array3(nx, ny, nz);
  x.voxel_size = VoxelSize{pixel, pixel, pixel};

  const bool sirt = opt.algorithm == Algorithm::sirt;
  Array3 row_inv, col_inv;
  if (sirt) {
    Array3 ones(nx, ny, nz, 1.0f);
    ones.voxel_size = x.voxel_size;
    row_inv = forward_project(ones, geometry, vnx, vny, dev);
    detail::invert_sums(row_inv.data(), row_inv.size());
    Array3 ones_views(vnx, vny, b.nz(), 1.0f);
    ones_views.voxel_size = b.voxel_size;
    col_inv = back_project(ones_views, geometry, nx, ny, nz, dev);
    detail::invert_sums(col_inv.data(), col_inv.size());
  }
  const double dt = opt.step / (static_cast<double>(b.nz()) * static_cast<double>(nz));

  Monitor monitor(b, opt, result, std::string("reconstruct ") + algorithm_name(opt.algorithm),
                  opt.iterations);
  Momentum momentum;
  for (int it = 1; it <= opt.iterations; ++it) {
    // The residual b - A x; A 0 = 0 needs no projection.
    Array3 residual;
    if (it == 1 && !opt.initial) {
      residual = b;
    } else {
      residual = forward_project(x, geometry, vnx, vny, dev);
      if (it > 1) {
        monitor.record(it - 1, residual);
        momentum.schedule.observe(result.r2.back());
      }
      float* r = residual.data();
      const float* bv = b.data();
      for_each_index(residual.size(), [&](std::size_t i) { r[i] = bv[i] - r[i]; });
    }
    if (sirt) {
      float* r = residual.data();
      const float* w = row_inv.data();
      for_each_index(residual.size(), [&](std::size_t i) { r[i] *= w[i]; });
    }
    const Array3 update = back_project(residual, geometry, nx, ny, nz, dev);
    float* xv = x.data();
    const float* u = update.data();
    if (sirt) {
      const float* c = col_inv.data();
      const float relax = static_cast<float>(opt.step);
      for_each_index(x.size(), [&](std::size_t i) { xv[i] += relax * c[i] * u[i]; });
    } else {
      // Gradient step: A^T (A x - b) = -update.
      const float step = static_cast<float>(dt);
      for_each_index(x.size(), [&](std::size_t i) { xv[i] += step * u[i]; });
    }
    apply_constraints(x, opt);
    if (opt.accelerate) momentum.step(x);
  }
  if (opt.accelerate) momentum.finish(x);
  monitor.record(opt.iterations, forward_project(x, geometry, vnx, vny, dev));
  monitor.progress.finish();
  result.volume = std::move(x);
  return result;
}

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
  if (opt.algorithm == Algorithm::fbp) {
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
    result = run_iterative(*b, *g, opt, nx, ny, nz);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

namespace detail {

void invert_sums(float* a, std::size_t n) {
  float peak = 0.0f;
  for (std::size_t e = 0; e < n; ++e) peak = std::max(peak, a[e]);
  const float floor_value = peak * 1e-6f;
  for (std::size_t e = 0; e < n; ++e) a[e] = a[e] > floor_value ? 1.0f / a[e] : 0.0f;
}

}  // namespace detail

}  // namespace aet
