// GENFIRE (Pryor, Yang, Rana, Gallagher-Jones, Zhou, Lo, Melinte, Chiu, Rodriguez, Miao,
// "GENeralized Fourier Iterative REconstruction (GENFIRE)", Sci. Rep. 7, 10409 (2017)).
//
// Gridding (host, shared by both back ends): each view, zero-padded and centred (pixel view_n/2
// at index 0), is Fourier transformed; by the Fourier slice theorem its frequency (ku, kv) is the
// volume's frequency ku R.row(0) + kv R.row(1) once the view's shift is removed by the phase ramp
// exp(+2 pi i k . s). Every sample (and its Hermitian mirror) is given to the grid points of the
// oversampled spectrum within the interpolation radius, weighted by inverse distance; a grid
// point's value is the weighted mean of all its samples. Both sides are plain unnormalised DFTs
// about the rotation centre, so a view pixel sum equals a volume voxel sum and the result has the
// projector's scale (line integrals in voxel units). The views are padded so that neighbouring
// slice samples are at most the radius (clamped to [0.2, 1]) grid units apart: every grid point
// near a slice gets exact in-plane values around the foot of its perpendicular, not a sparse
// subset.
//
// Iteration: x (real, oversampled box) -> F = FFT(x) -> F = F_meas at the enforced points ->
// x = IFFT(F) -> zero outside the volume box (the oversampling support), positivity, support.
// Resolution extension enforces only points below a frequency limit that grows linearly over the
// first half of the iterations; then all. R_free scores a seeded random share of the measured
// points that is never enforced. See docs/reconstruction.md.
#include <fftw3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"
#include "aet/hpc/mpi.hpp"
#include "aet/recon/projector.hpp"
#include "fftw_util.hpp"
#include "genfire_detail.hpp"
#include "recon_detail.hpp"

#ifndef AET_WITH_CUDA
#define AET_WITH_CUDA 0
#endif

namespace aet::detail {
namespace genfire {
namespace {

constexpr double kPi = 3.14159265358979323846;
// The R_free draw is fixed so that R_free curves of different runs are comparable.
constexpr std::uint64_t kFreeSeed = 0x47454e46495245ull;
// Resolution extension starts at this frequency (cycles per voxel: a 20-voxel period).
constexpr double kStartFrequency = 0.05;
// Inverse-distance weights are capped at 1 / this distance (grid units).
constexpr float kMinDistance = 0.01f;

void init_fftw_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (fftwf_init_threads() == 0) throw InternalError("GENFIRE: FFTW threads failed to start");
  });
}

// Smallest even 2^a 3^b 5^c 7^d >= n: sizes FFTW and cuFFT both transform fast.
std::int64_t fft_size(std::int64_t n) {
  std::int64_t m = std::max<std::int64_t>(n, 2);
  if (m % 2) ++m;
  for (;; m += 2) {
    std::int64_t r = m;
    for (std::int64_t f : {2, 3, 5, 7})
      while (r % f == 0) r /= f;
    if (r == 1) return m;
  }
}

void check_options(const GenfireOptions& g) {
  if (!(g.oversampling >= 1.0) || !std::isfinite(g.oversampling))
    fail_input("GENFIRE: the oversampling must be >= 1, got " + std::to_string(g.oversampling));
  if (!(g.interpolation_radius > 0.0) || !(g.interpolation_radius <= 2.0))
    fail_input("GENFIRE: the interpolation radius must be in (0, 2] Fourier voxels, got " +
               std::to_string(g.interpolation_radius));
  if (!(g.rfree_fraction >= 0.0) || !(g.rfree_fraction < 0.5))
    fail_input("GENFIRE: the R_free fraction must be in [0, 0.5), got " +
               std::to_string(g.rfree_fraction));
}

// One slice sample: grid coordinates (Fourier voxels, signed) and its shift-corrected value.
struct Sample {
  float gx, gy, gz;
  std::complex<float> value;
  bool mirror;  // also deposit the Hermitian mirror (every sample but the origin)
  bool valid;
};

// Adds `value` at grid position g to every half-grid element within `radius` whose z storage
// index lies in [z0, z1). Elements with a negative x frequency are skipped: the mirror deposit
// puts the conjugate at their partner, so the accumulated spectrum is exactly Hermitian.
void deposit(const Problem& p, double gx, double gy, double gz, std::complex<float> value,
             double radius, std::int64_t z0, std::int64_t z1, std::complex<float>* sum,
             float* wsum) {
  const double r2 = radius * radius;
  const std::int64_t zlo = static_cast<std::int64_t>(std::ceil(gz - radius));
  const std::int64_t zhi = static_cast<std::int64_t>(std::floor(gz + radius));
  for (std::int64_t mz = zlo; mz <= zhi; ++mz) {
    if (mz <= -p.gz / 2 || mz >= p.gz / 2) continue;  // outside, or the Nyquist plane
    const std::int64_t sz = mz < 0 ? mz + p.gz : mz;
    if (sz < z0 || sz >= z1) continue;
    const double dz2 = (mz - gz) * (mz - gz);
    if (dz2 > r2) continue;
    const std::int64_t ylo = static_cast<std::int64_t>(std::ceil(gy - radius));
    const std::int64_t yhi = static_cast<std::int64_t>(std::floor(gy + radius));
    for (std::int64_t my = ylo; my <= yhi; ++my) {
      if (my <= -p.gy / 2 || my >= p.gy / 2) continue;
      const double dyz2 = dz2 + (my - gy) * (my - gy);
      if (dyz2 > r2) continue;
      const std::int64_t sy = my < 0 ? my + p.gy : my;
      const std::int64_t xlo =
          std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(gx - radius)));
      const std::int64_t xhi =
          std::min<std::int64_t>(p.gx / 2 - 1, static_cast<std::int64_t>(std::floor(gx + radius)));
      for (std::int64_t mx = xlo; mx <= xhi; ++mx) {
        const double d2 = dyz2 + (mx - gx) * (mx - gx);
        if (d2 > r2) continue;
        const float w = 1.0f / std::max(static_cast<float>(std::sqrt(d2)), kMinDistance);
        const std::size_t i = static_cast<std::size_t>((sz * p.gy + sy) * p.hx + mx);
        sum[i] += w * value;
        wsum[i] += w;
      }
    }
  }
}

}  // namespace

Problem problem_sizes(std::int64_t view_nx, std::int64_t view_ny, std::int64_t n_views,
                      const GenfireOptions& go, std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  Problem p;
  p.nx = nx, p.ny = ny, p.nz = nz;
  auto oversampled = [&](std::int64_t n) {
    const double target = go.oversampling * static_cast<double>(n);
    if (!(target < 1e9)) fail_input("GENFIRE: the oversampled grid is too large");
    return fft_size(std::max<std::int64_t>(n, std::llround(target)));
  };
  p.gx = oversampled(nx), p.gy = oversampled(ny), p.gz = oversampled(nz);
  p.hx = p.gx / 2 + 1;
  checked_product(2 * p.hx, p.gy, p.gz);
  p.views_nx = view_nx, p.views_ny = view_ny, p.n_views = n_views;
  return p;
}

void set_padding(Problem& p, const TiltGeometry& geometry, double radius) {
  // Consecutive slice samples at most `step` grid units apart along either view axis, so that
  // every grid point within the radius of a slice has samples around it (a coarser step leaves
  // holes in a beat pattern; measured on the test particle: R_free 0.17 at step 0.6 and 0.085 at
  // 0.3). The floor bounds the padding for tiny radii.
  const double step = std::clamp(radius, 0.2, 1.0);
  double reach_u = 0, reach_v = 0;
  for (const auto& view : geometry) {
    const Mat3& R = view.R;
    reach_u = std::max(reach_u, Vec3(R(0, 0) * p.gx, R(0, 1) * p.gy, R(0, 2) * p.gz).norm());
    reach_v = std::max(reach_v, Vec3(R(1, 0) * p.gx, R(1, 1) * p.gy, R(1, 2) * p.gz).norm());
  }
  p.pad_u = fft_size(std::max<std::int64_t>(
      p.views_nx, static_cast<std::int64_t>(std::ceil(reach_u / step - 1e-9))));
  p.pad_v = fft_size(std::max<std::int64_t>(
      p.views_ny, static_cast<std::int64_t>(std::ceil(reach_v / step - 1e-9))));
}

GridSums grid_sums(const Problem& p, const Array3& views, const TiltGeometry& geometry,
                   double radius) {
  const std::int64_t mu = p.pad_u, mv = p.pad_v;
  const std::int64_t hu = mu / 2 + 1;
  const std::size_t half = p.half_size();
  GridSums sums;
  sums.sum.assign(half, std::complex<float>(0.0f, 0.0f));
  sums.wsum.assign(half, 0.0f);
  std::complex<float>* sum = sums.sum.data();
  float* wsum = sums.wsum.data();

  FftwBuffer<float> real = fftw_alloc<float>(static_cast<std::size_t>(mu * mv), "GENFIRE");
  FftwBuffer<fftwf_complex> spectrum =
      fftw_alloc<fftwf_complex>(static_cast<std::size_t>(hu * mv), "GENFIRE");
  std::unique_ptr<FftwPlan> plan;
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    plan =
        std::make_unique<FftwPlan>(fftwf_plan_dft_r2c_2d(static_cast<int>(mv), static_cast<int>(mu),
                                                         real.get(), spectrum.get(), FFTW_ESTIMATE),
                                   "GENFIRE");
  }
  std::vector<Sample> samples(static_cast<std::size_t>(hu * mv));
  const double pixel = views.voxel_size.x;
  const std::int64_t vnx = views.nx(), vny = views.ny();
  for (std::int64_t k = 0; k < views.nz(); ++k) {
    // The view with its centre pixel at index 0 (wrapped), zero elsewhere.
    std::fill(real.get(), real.get() + mu * mv, 0.0f);
    const float* src = views.slice(k);
    for (std::int64_t j = 0; j < vny; ++j) {
      const std::int64_t row = ((j - vny / 2) % mv + mv) % mv;
      for (std::int64_t i = 0; i < vnx; ++i) {
        const std::int64_t col = ((i - vnx / 2) % mu + mu) % mu;
        real.get()[row * mu + col] = src[j * vnx + i];
      }
    }
    fftwf_execute(plan->get());

    const ViewGeometry& view = geometry[static_cast<std::size_t>(k)];
    const Vec3 r0 = view.R.row(0).transpose(), r1 = view.R.row(1).transpose();
    const double su = view.shift.x() / pixel, sv = view.shift.y() / pixel;
    parallel_for(mv, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t kb = signed_frequency(b, mv);
        for (std::int64_t a = 0; a < hu; ++a) {
          Sample& s = samples[static_cast<std::size_t>(b * hu + a)];
          // Nyquist rows and columns are ambiguous; (0, kb < 0) are mirrors of (0, -kb).
          s.valid = kb != -mv / 2 && a != mu / 2 && !(a == 0 && kb < 0);
          if (!s.valid) continue;
          const double ku = static_cast<double>(a) / mu, kv = static_cast<double>(kb) / mv;
          const double phase = 2.0 * kPi * (ku * su + kv * sv);
          const fftwf_complex& f = spectrum.get()[b * hu + a];
          const std::complex<double> value = std::complex<double>(f[0], f[1]) *
                                             std::complex<double>(std::cos(phase), std::sin(phase));
          const Vec3 K = ku * r0 + kv * r1;
          s.gx = static_cast<float>(K.x() * p.gx);
          s.gy = static_cast<float>(K.y() * p.gy);
          s.gz = static_cast<float>(K.z() * p.gz);
          s.value = std::complex<float>(value);
          s.mirror = a != 0 || kb != 0;
        }
      }
    });
    // Each thread owns a slab of z storage planes, so every element receives its contributions in
    // the same order whatever the thread count.
    parallel_for(p.gz, [&](std::int64_t z0, std::int64_t z1) {
      for (const Sample& s : samples) {
        if (!s.valid) continue;
        deposit(p, s.gx, s.gy, s.gz, s.value, radius, z0, z1, sum, wsum);
        if (s.mirror)
          deposit(p, -s.gx, -s.gy, -s.gz, std::conj(s.value), radius, z0, z1, sum, wsum);
      }
    });
  }

  return sums;
}

void finish_grid(Problem& p, GridSums sums, const ReconOptions& opt) {
  const GenfireOptions& go = opt.genfire;
  const std::size_t half = p.half_size();
  p.kind.assign(half, kUnmeasured);
  for (std::size_t i = 0; i < half; ++i) {
    if (sums.wsum[i] > 0.0f) {
      sums.sum[i] /= sums.wsum[i];
      p.kind[i] = kConstrained;
    }
  }
  p.measured = std::move(sums.sum);

  // R_free: a seeded draw over the measured elements (never the origin, whose loss would leave
  // the mean free); Hermitian partners on the x = 0 plane are held out together.
  if (go.rfree_fraction > 0) {
    Rng rng(kFreeSeed);
    for (std::int64_t iz = 0; iz < p.gz; ++iz)
      for (std::int64_t iy = 0; iy < p.gy; ++iy)
        for (std::int64_t ix = 0; ix < p.hx; ++ix) {
          const std::size_t i = static_cast<std::size_t>((iz * p.gy + iy) * p.hx + ix);
          if (p.kind[i] != kConstrained || (ix == 0 && iy == 0 && iz == 0)) continue;
          std::size_t partner = i;
          if (ix == 0) {
            partner =
                static_cast<std::size_t>((((p.gz - iz) % p.gz) * p.gy + (p.gy - iy) % p.gy) * p.hx);
            if (partner < i) continue;  // decided with its partner
          }
          if (rng.uniform() < go.rfree_fraction) {
            p.kind[i] = kHeldOut;
            p.kind[partner] = kHeldOut;
          }
        }
  }
  for (std::int64_t iz = 0; iz < p.gz; ++iz)
    for (std::int64_t iy = 0; iy < p.gy; ++iy)
      for (std::int64_t ix = 0; ix < p.hx; ++ix) {
        const std::size_t i = static_cast<std::size_t>((iz * p.gy + iy) * p.hx + ix);
        if (p.kind[i] == kConstrained) ++p.constrained;
        if (p.kind[i] == kHeldOut) {
          ++p.held_out;
          p.free_norm += hermitian_weight(ix) * std::abs(p.measured[i]);
        }
      }

  // Resolution extension: the limit grows linearly from kStartFrequency to the grid's corner
  // frequency over the first half of the iterations; all points are enforced after that.
  const double inf = std::numeric_limits<double>::infinity();
  p.limit_squared.assign(static_cast<std::size_t>(opt.iterations), inf);
  if (go.resolution_extension) {
    const int ramp = opt.iterations / 2;
    const double top = 0.5 * std::sqrt(3.0);
    for (int it = 0; it < ramp; ++it) {
      const double q = kStartFrequency + (top - kStartFrequency) * it / ramp;
      p.limit_squared[static_cast<std::size_t>(it)] = q * q;
    }
  }
}

namespace {

// R_free of the spectrum F against the held-out measured values (serial: deterministic).
double r_free(const Problem& p, const std::complex<float>* F) {
  if (p.held_out == 0 || !(p.free_norm > 0)) return std::numeric_limits<double>::quiet_NaN();
  double misfit = 0;
  const std::size_t half = p.half_size();
  for (std::size_t i = 0; i < half; ++i) {
    if (p.kind[i] != kHeldOut) continue;
    const std::int64_t ix = static_cast<std::int64_t>(i % static_cast<std::size_t>(p.hx));
    misfit += hermitian_weight(ix) *
              std::abs(std::complex<double>(p.measured[i]) - std::complex<double>(F[i]));
  }
  return misfit / p.free_norm;
}

Array3 iterate_cpu(const Problem& p, const ReconOptions& opt, double pixel, Recorder& recorder) {
  init_fftw_threads();
  FftwBuffer<float> box = fftw_alloc<float>(p.padded_real_size(), "GENFIRE");
  float* x = box.get();
  auto* F = reinterpret_cast<fftwf_complex*>(x);
  std::unique_ptr<FftwPlan> forward, inverse;
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftwf_plan_with_nthreads(num_threads());
    const int n0 = static_cast<int>(p.gz), n1 = static_cast<int>(p.gy), n2 = static_cast<int>(p.gx);
    forward = std::make_unique<FftwPlan>(fftwf_plan_dft_r2c_3d(n0, n1, n2, x, F, FFTW_ESTIMATE),
                                         "GENFIRE");
    inverse = std::make_unique<FftwPlan>(fftwf_plan_dft_c2r_3d(n0, n1, n2, F, x, FFTW_ESTIMATE),
                                         "GENFIRE");
    fftwf_plan_with_nthreads(1);  // leave the default for other FFTW users
  }
  std::fill(x, x + p.padded_real_size(), 0.0f);  // x = 0, so F = 0 before the first iteration

  Array3 volume(p.nx, p.ny, p.nz);
  volume.voxel_size = VoxelSize{pixel, pixel, pixel};
  const float inv_n = static_cast<float>(1.0 / p.grid_elements());
  const float* mask = opt.support ? opt.support->data() : nullptr;
  const bool positive = opt.positivity;
  const std::int64_t rows = p.gy * p.gz;
  auto* spectrum = reinterpret_cast<std::complex<float>*>(F);

  for (int it = 1; it <= opt.iterations; ++it) {
    const double limit = p.limit_squared[static_cast<std::size_t>(it - 1)];
    parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t row = r0; row < r1; ++row) {
        const std::int64_t iy = row % p.gy, iz = row / p.gy;
        for (std::int64_t ix = 0; ix < p.hx; ++ix) {
          const std::size_t i = static_cast<std::size_t>(row * p.hx + ix);
          if (p.kind[i] == kConstrained && frequency_squared(ix, iy, iz, p.gx, p.gy, p.gz) <= limit)
            spectrum[i] = p.measured[i];
        }
      }
    });
    fftwf_execute(inverse->get());
    parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t row = r0; row < r1; ++row) {
        const std::int64_t iy = row % p.gy, iz = row / p.gy;
        float* line = x + row * 2 * p.hx;
        const std::int64_t vy = volume_index(iy, p.ny, p.gy), vz = volume_index(iz, p.nz, p.gz);
        if (vy < 0 || vz < 0) {
          std::fill(line, line + p.gx, 0.0f);
          continue;
        }
        for (std::int64_t ix = 0; ix < p.gx; ++ix) {
          const std::int64_t vx = volume_index(ix, p.nx, p.gx);
          if (vx < 0) {
            line[ix] = 0.0f;
            continue;
          }
          float v = line[ix] * inv_n;  // FFTW's inverse is unnormalised
          const std::size_t vi = volume.index(vx, vy, vz);
          if (positive && v < 0.0f) v = 0.0f;
          if (mask && mask[vi] == 0.0f) v = 0.0f;
          line[ix] = v;
          volume.data()[vi] = v;
        }
      }
    });
    fftwf_execute(forward->get());
    recorder.record(it, volume, r_free(p, spectrum));
  }
  return volume;
}

}  // namespace

struct Recorder::Impl {
  const Array3& views;
  const TiltGeometry& geometry;
  const ReconOptions& opt;
  ReconResult& result;
  bool have_free;
  Progress progress;
  Impl(const Array3& v, const TiltGeometry& g, const ReconOptions& o, ReconResult& r, bool f)
      : views(v),
        geometry(g),
        opt(o),
        result(r),
        have_free(f),
        progress("reconstruct genfire", o.iterations) {}
};

Recorder::Recorder(const Array3& views, const TiltGeometry& geometry, const ReconOptions& opt,
                   ReconResult& result, bool have_free)
    : impl_(std::make_unique<Impl>(views, geometry, opt, result, have_free)) {}

Recorder::~Recorder() = default;

void Recorder::record(int iteration, const Array3& volume, double r_free_value) {
  Impl& s = *impl_;
  const Array3 computed =
      forward_project(volume, s.geometry, s.views.nx(), s.views.ny(), s.opt.device);
  const double r1 = r1_factor(s.views, computed), r2 = r2_factor(s.views, computed);
  s.result.r1.push_back(r1);
  s.result.r2.push_back(r2);
  if (s.have_free) s.result.r_free.push_back(r_free_value);
  char line[160];
  std::snprintf(line, sizeof line, "iteration %d: R1 = %.5f, R2 = %.5f, R_free = %.5f", iteration,
                r1, r2, s.have_free ? r_free_value : std::nan(""));
  log_verbose(line);
  s.progress.advance();
  if (s.opt.on_iteration) s.opt.on_iteration(iteration, r1, r2);
}

void Recorder::finish() {
  impl_->progress.finish();
}

}  // namespace genfire

ReconResult run_genfire(const Array3& views, const TiltGeometry& geometry, const ReconOptions& opt,
                        std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  genfire::check_options(opt.genfire);
  const bool cuda = opt.device.kind == DeviceKind::cuda;
#if !AET_WITH_CUDA
  if (cuda) fail_input("this build of aet has no CUDA support; use --device cpu");
#endif
  const double pixel = views.voxel_size.x;
  genfire::Problem p =
      genfire::problem_sizes(views.nx(), views.ny(), views.nz(), opt.genfire, nx, ny, nz);
#if AET_WITH_CUDA
  if (cuda) genfire::check_device_memory(p, opt);  // before the host work of the gridding
#endif
  const auto start = std::chrono::steady_clock::now();
  ReconResult result;
  if (mpi_size() > 1) {
    // The gridding (most of the host time for large volumes) split over the ranks by views; the
    // iterations then run on rank 0 alone.
    genfire::grid_views_distributed(p, views, geometry, opt);
    result.mpi_ranks = mpi_size();
    result.mpi_mode = "gridding";
  } else {
    genfire::set_padding(p, geometry, opt.genfire.interpolation_radius);
    genfire::finish_grid(
        p, genfire::grid_sums(p, views, geometry, opt.genfire.interpolation_radius), opt);
  }
  {
    char line[320];
    std::snprintf(
        line, sizeof line,
        "GENFIRE: grid %lld x %lld x %lld (views padded to %lld x %lld), %zu measured half-grid "
        "points, %zu held out for R_free, gridded in %.2f s",
        static_cast<long long>(p.gx), static_cast<long long>(p.gy), static_cast<long long>(p.gz),
        static_cast<long long>(p.pad_u), static_cast<long long>(p.pad_v),
        p.constrained + p.held_out, p.held_out,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    log_verbose(line);
  }
  genfire::Recorder recorder(views, geometry, opt, result, p.held_out > 0 && p.free_norm > 0);
  if (cuda) {
#if AET_WITH_CUDA
    result.volume = genfire::iterate_cuda(p, opt, pixel, recorder, result.device_bytes);
#endif
  } else {
    result.volume = genfire::iterate_cpu(p, opt, pixel, recorder);
  }
  recorder.finish();
  return result;
}

}  // namespace aet::detail
