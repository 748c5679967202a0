// Sub-pixel view shifts moved into the data (ReconOptions::fourier_shift): each view is resampled
// in Fourier space by round(s) - s pixels and the geometry keeps the whole-pixel part, so that the
// interpolating projector never samples a view between pixel centres. With a fractional shift its
// rays pass between voxel centres at the same phase all along a near-axial ray, which blurs that
// view and no other: on noise-free simulated data with the true geometry, shifts of up to one
// pixel raised R1 from 0.017 to 0.062; moved into the data, 0.028 (docs/reconstruction.md).
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "aet/core/parallel.hpp"
#include "fftw_util.hpp"
#include "recon_detail.hpp"

namespace aet::detail {
namespace {

// Half-sample symmetric reflection of index i into [0, n).
std::int64_t reflect(std::int64_t i, std::int64_t n) {
  const std::int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

}  // namespace

bool move_subpixel_shifts(const Array3& in_views, const TiltGeometry& in_geometry, Array3& views,
                          TiltGeometry& geometry) {
  const double pixel = in_views.voxel_size.x;
  const std::int64_t nx = in_views.nx(), ny = in_views.ny(), nv = in_views.nz();
  std::vector<Vec2> move(static_cast<std::size_t>(nv));  // content displacement, pixels
  bool any = false;
  for (std::int64_t k = 0; k < nv; ++k) {
    const Vec2 s = in_geometry[static_cast<std::size_t>(k)].shift / pixel;
    const Vec2 whole(std::round(s.x()), std::round(s.y()));
    Vec2 d = whole - s;
    if (std::abs(d.x()) < 1e-4 && std::abs(d.y()) < 1e-4) d = Vec2::Zero();
    move[static_cast<std::size_t>(k)] = d;
    any |= !d.isZero();
  }
  if (!any) return false;
  views = in_views;
  geometry = in_geometry;

  // Mirror padding: a view that does not fall to zero at its edges (a film) neither wraps around
  // nor rings from the jump at the border.
  const std::int64_t pad = 16;
  const std::int64_t mx = nx + 2 * pad, my = ny + 2 * pad, hx = mx / 2 + 1;
  const std::size_t nreal = static_cast<std::size_t>(mx * my);
  const std::size_t ncomplex = static_cast<std::size_t>(hx * my);
  std::unique_ptr<FftwPlan> forward, inverse;
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    FftwBuffer<float> r = fftw_alloc<float>(nreal, "sub-pixel shift");
    FftwBuffer<fftwf_complex> c = fftw_alloc<fftwf_complex>(ncomplex, "sub-pixel shift");
    forward =
        std::make_unique<FftwPlan>(fftwf_plan_dft_r2c_2d(static_cast<int>(my), static_cast<int>(mx),
                                                         r.get(), c.get(), FFTW_ESTIMATE),
                                   "sub-pixel shift");
    inverse =
        std::make_unique<FftwPlan>(fftwf_plan_dft_c2r_2d(static_cast<int>(my), static_cast<int>(mx),
                                                         c.get(), r.get(), FFTW_ESTIMATE),
                                   "sub-pixel shift");
  }
  constexpr double kTwoPi = 6.283185307179586;
  parallel_for(nv, [&](std::int64_t begin, std::int64_t end) {
    FftwBuffer<float> r = fftw_alloc<float>(nreal, "sub-pixel shift");
    FftwBuffer<fftwf_complex> c = fftw_alloc<fftwf_complex>(ncomplex, "sub-pixel shift");
    for (std::int64_t k = begin; k < end; ++k) {
      const Vec2 d = move[static_cast<std::size_t>(k)];
      if (d.isZero()) continue;
      float* view = views.slice(k);
      for (std::int64_t y = 0; y < my; ++y) {
        const float* row = view + reflect(y - pad, ny) * nx;
        for (std::int64_t x = 0; x < mx; ++x) r.get()[y * mx + x] = row[reflect(x - pad, nx)];
      }
      fftwf_execute_dft_r2c(forward->get(), r.get(), c.get());
      for (std::int64_t y = 0; y < my; ++y) {
        const bool nyquist_y = 2 * y == my;
        const double fy = static_cast<double>(y <= my / 2 ? y : y - my) / static_cast<double>(my);
        for (std::int64_t x = 0; x < hx; ++x) {
          const double fx = static_cast<double>(x) / static_cast<double>(mx);
          const double phase = -kTwoPi * (fx * d.x() + fy * d.y());
          // At Nyquist a shift has no real-valued representation: keep its cosine part.
          const bool nyquist = nyquist_y || 2 * x == mx;
          const double cr = std::cos(phase), ci = nyquist ? 0.0 : std::sin(phase);
          fftwf_complex& v = c.get()[y * hx + x];
          const double re = v[0], im = v[1];
          v[0] = static_cast<float>(re * cr - im * ci);
          v[1] = static_cast<float>(re * ci + im * cr);
        }
      }
      fftwf_execute_dft_c2r(inverse->get(), c.get(), r.get());
      const float norm = 1.0f / static_cast<float>(mx * my);
      for (std::int64_t y = 0; y < ny; ++y)
        for (std::int64_t x = 0; x < nx; ++x)
          view[y * nx + x] = r.get()[(y + pad) * mx + x + pad] * norm;
      ViewGeometry& g = geometry[static_cast<std::size_t>(k)];
      g.shift = (g.shift / pixel + d) * pixel;
    }
  });
  return true;
}

}  // namespace aet::detail
