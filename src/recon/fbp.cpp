// Filtered back projection with the matched back projector.
//
// Each view row (along u) is convolved with the band-limited ramp kernel of Kak & Slaney (spatial
// Ram-Lak: h[0] = 1/4, h[odd n] = -1 / (pi n)^2, unit sample spacing), applied in Fourier space
// with zero padding to avoid wrap-around; building the kernel in real space keeps its DC response
// right (a sampled |f| would bias the mean). Optional apodisation: Shepp-Logan (sinc) or Hann.
// The back projector's weights sum to about one per view and voxel, so weighting each view by
// its share of the tilt range (radians) gives f(x) = sum_k dtheta_k q_k(u_k(x)), the discrete
// inverse Radon transform, in the projector's voxel units.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "fftw_util.hpp"
#include "recon_detail.hpp"

namespace aet {
namespace {

using detail::fftw_alloc;
using detail::fftw_planner_mutex;
using detail::FftwBuffer;
using detail::FftwPlan;

constexpr double kPi = 3.14159265358979323846;

// The filter's frequency response for a padded length L (real, even): the DFT of the spatial
// Ram-Lak kernel times the window.
std::vector<float> filter_response(std::int64_t L, FbpFilter filter) {
  std::vector<double> h(static_cast<std::size_t>(L), 0.0);
  h[0] = 0.25;
  for (std::int64_t n = 1; n <= L / 2; ++n) {
    if (n % 2 == 0) continue;
    const double v = -1.0 / (kPi * kPi * static_cast<double>(n) * n);
    h[static_cast<std::size_t>(n)] = v;
    h[static_cast<std::size_t>(L - n)] = v;
  }
  const std::int64_t nf = L / 2 + 1;
  std::vector<float> response(static_cast<std::size_t>(nf));
  for (std::int64_t k = 0; k < nf; ++k) {
    // h is real and even, so its DFT is the cosine sum.
    double acc = 0.0;
    for (std::int64_t n = 0; n < L; ++n)
      acc += h[static_cast<std::size_t>(n)] *
             std::cos(2.0 * kPi * static_cast<double>(k) * static_cast<double>(n) / L);
    const double f = static_cast<double>(k) / L;  // cycles per sample, 0 .. 0.5
    double window = 1.0;
    if (filter == FbpFilter::shepp_logan && f > 0)
      window = std::sin(kPi * f) / (kPi * f);
    else if (filter == FbpFilter::hann)
      window = 0.5 * (1.0 + std::cos(2.0 * kPi * f));
    response[static_cast<std::size_t>(k)] = static_cast<float>(acc * window);
  }
  return response;
}

}  // namespace

namespace detail {

// Angular weight of each view: half the tilt distance to its neighbours in tilt order (theta of
// the Euler triple), one-sided at the ends of the range. A single view gets pi.
std::vector<double> fbp_angular_weights(const TiltGeometry& geometry) {
  const std::size_t n = geometry.size();
  std::vector<double> theta(n), w(n, kPi);
  if (n < 2) return w;
  for (std::size_t k = 0; k < n; ++k) theta[k] = geometry[k].euler().theta * kPi / 180.0;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return theta[a] < theta[b]; });
  for (std::size_t r = 0; r < n; ++r) {
    const double left = r > 0 ? theta[order[r]] - theta[order[r - 1]] : -1.0;
    const double right = r + 1 < n ? theta[order[r + 1]] - theta[order[r]] : -1.0;
    w[order[r]] = left < 0 ? right : right < 0 ? left : 0.5 * (left + right);
  }
  return w;
}

Array3 fbp_filter_views(const Array3& views, const std::vector<double>& weight, FbpFilter filter) {
  const std::int64_t width = views.nx(), rows = views.ny() * views.nz();
  // Linear (not circular) convolution of a row with a kernel as long as the row needs 2 width.
  std::int64_t L = 1;
  while (L < 2 * width) L *= 2;
  const std::int64_t nf = L / 2 + 1;
  const std::vector<float> response = filter_response(L, filter);

  std::unique_ptr<FftwPlan> forward_plan, inverse_plan;
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    FftwBuffer<float> r = fftw_alloc<float>(static_cast<std::size_t>(L), "fbp");
    FftwBuffer<fftwf_complex> c = fftw_alloc<fftwf_complex>(static_cast<std::size_t>(nf), "fbp");
    forward_plan = std::make_unique<FftwPlan>(
        fftwf_plan_dft_r2c_1d(static_cast<int>(L), r.get(), c.get(), FFTW_ESTIMATE), "fbp");
    inverse_plan = std::make_unique<FftwPlan>(
        fftwf_plan_dft_c2r_1d(static_cast<int>(L), c.get(), r.get(), FFTW_ESTIMATE), "fbp");
  }

  Array3 filtered(views.nx(), views.ny(), views.nz());
  filtered.voxel_size = views.voxel_size;
  parallel_for(rows, [&](std::int64_t begin, std::int64_t end) {
    FftwBuffer<float> r = fftw_alloc<float>(static_cast<std::size_t>(L), "fbp");
    FftwBuffer<fftwf_complex> c = fftw_alloc<fftwf_complex>(static_cast<std::size_t>(nf), "fbp");
    for (std::int64_t row = begin; row < end; ++row) {
      const float* in = views.data() + row * width;
      std::fill(r.get(), r.get() + L, 0.0f);
      std::copy(in, in + width, r.get());
      fftwf_execute_dft_r2c(forward_plan->get(), r.get(), c.get());
      for (std::int64_t k = 0; k < nf; ++k) {
        c.get()[k][0] *= response[static_cast<std::size_t>(k)];
        c.get()[k][1] *= response[static_cast<std::size_t>(k)];
      }
      fftwf_execute_dft_c2r(inverse_plan->get(), c.get(), r.get());
      // FFTW's inverse is unnormalised; the view's own angular weight goes in here too.
      const double scale = weight[static_cast<std::size_t>(row / views.ny())] / L;
      float* out = filtered.data() + row * width;
      for (std::int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(r.get()[i] * scale);
    }
  });
  return filtered;
}

}  // namespace detail

Array3 filtered_back_projection(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                                std::int64_t ny, std::int64_t nz, FbpFilter filter,
                                const Device& dev) {
  const Array3 filtered =
      detail::fbp_filter_views(views, detail::fbp_angular_weights(geometry), filter);
  return back_project(filtered, geometry, nx, ny, nz, dev);
}

}  // namespace aet
