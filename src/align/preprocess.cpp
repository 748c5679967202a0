// View preprocessing for alignment and reconstruction: hot pixels, background, denoising and
// intensity normalisation (docs/alignment.md).
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"
#include "align_detail.hpp"

namespace aet {
namespace {

// Replaces isolated outliers (hot or dead pixels) by the median of their 8 neighbours. A pixel is
// an outlier when (a) it differs from that median by more than 8 times the larger of the view's
// typical pixel-to-median residual (noise) and 1e-3 of the view's range (noise-free data), and
// (b) it is a one-pixel spike: its excess over the mean of its 4 edge neighbours is more than 0.9
// of its excess over the most extreme neighbour. Real signal is blurred by the probe over more
// than a pixel, so an atom peak gives 0.6-0.85 in (b) and is kept, while a spike on a smooth
// background gives about 1.
void remove_hot_pixels(float* img, std::int64_t nx, std::int64_t ny) {
  const std::size_t n = static_cast<std::size_t>(nx * ny);
  std::vector<float> med(n), shape(n);
  std::vector<double> resid;
  resid.reserve(n);
  float lo = img[0], hi = img[0];
  for (std::size_t i = 0; i < n; ++i) lo = std::min(lo, img[i]), hi = std::max(hi, img[i]);
  std::array<double, 8> nb{};
  auto at = [&](std::int64_t x, std::int64_t y) {
    return static_cast<double>(
        img[std::clamp<std::int64_t>(y, 0, ny - 1) * nx + std::clamp<std::int64_t>(x, 0, nx - 1)]);
  };
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x) {
      int k = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if (dx || dy) nb[k++] = at(x + dx, y + dy);
      std::sort(nb.begin(), nb.end());
      const double m = 0.5 * (nb[3] + nb[4]);
      const std::size_t i = static_cast<std::size_t>(y * nx + x);
      const double v = img[i];
      const double mean4 = 0.25 * (at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1));
      const double extreme = v >= m ? nb[0] : nb[7];
      const double span = v - extreme;
      med[i] = static_cast<float>(m);
      shape[i] = std::abs(span) > 0 ? static_cast<float>((v - mean4) / span) : 0.0f;
      resid.push_back(std::abs(v - m));
    }
  const double noise = 1.4826 * median_of(resid);
  const double scale = std::max(noise, 1e-3 * (static_cast<double>(hi) - lo));
  if (!(scale > 0)) return;  // constant view
  for (std::size_t i = 0; i < n; ++i)
    if (std::abs(img[i] - med[i]) > 8.0 * scale && shape[i] > 0.9) img[i] = med[i];
}

// Subtracts a smooth background: a 2nd-order polynomial in (x, y) fitted first to the outer
// frame of the view (`frame` pixels wide) and then, iteratively, to every pixel within 2.5 robust
// standard deviations of the fit (pixels above it belong to the particle). For an isolated
// particle this follows a slowly varying HAADF background under the particle too; a constant
// offset is removed exactly.
void subtract_background(float* img, std::int64_t nx, std::int64_t ny, std::int64_t frame) {
  const std::size_t n = static_cast<std::size_t>(nx * ny);
  auto basis = [&](std::int64_t x, std::int64_t y, double* b) {
    const double u = (x - 0.5 * (nx - 1)) / (0.5 * nx), v = (y - 0.5 * (ny - 1)) / (0.5 * ny);
    b[0] = 1, b[1] = u, b[2] = v, b[3] = u * u, b[4] = u * v, b[5] = v * v;
  };
  std::vector<char> use(n, 0);
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x)
      use[y * nx + x] = (x < frame || y < frame || x >= nx - frame || y >= ny - frame);
  Eigen::Matrix<double, 6, 1> c = Eigen::Matrix<double, 6, 1>::Zero();
  std::vector<double> resid;
  for (int iter = 0; iter < 6; ++iter) {
    Eigen::Matrix<double, 6, 6> A = Eigen::Matrix<double, 6, 6>::Zero();
    Eigen::Matrix<double, 6, 1> rhs = Eigen::Matrix<double, 6, 1>::Zero();
    std::int64_t count = 0;
    double b[6];
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        if (!use[y * nx + x]) continue;
        basis(x, y, b);
        Eigen::Map<Eigen::Matrix<double, 6, 1>> bv(b);
        A += bv * bv.transpose();
        rhs += bv * static_cast<double>(img[y * nx + x]);
        ++count;
      }
    if (count < 12) break;
    // A tiny ridge keeps the quadratic terms finite when the chosen pixels are nearly collinear.
    A.diagonal().array() += 1e-9 * A.trace();
    c = A.ldlt().solve(rhs);
    resid.clear();
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        if (!use[y * nx + x]) continue;
        basis(x, y, b);
        double f = 0;
        for (int k = 0; k < 6; ++k) f += c[k] * b[k];
        resid.push_back(std::abs(img[y * nx + x] - f));
      }
    const double sigma = std::max(1.4826 * median_of(resid), 1e-12);
    // Reclassify over the whole view: the fit becomes the background of every pixel that is not
    // clearly above it, not only of the frame.
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        basis(x, y, b);
        double f = 0;
        for (int k = 0; k < 6; ++k) f += c[k] * b[k];
        use[y * nx + x] = (img[y * nx + x] - f) < 2.5 * sigma;
      }
  }
  double b[6];
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x) {
      basis(x, y, b);
      double f = 0;
      for (int k = 0; k < 6; ++k) f += c[k] * b[k];
      img[y * nx + x] = static_cast<float>(img[y * nx + x] - f);
    }
}

// Separable Gaussian blur with clamped edges.
void gaussian_blur(float* img, std::int64_t nx, std::int64_t ny, double sigma) {
  const int r = static_cast<int>(std::ceil(3.5 * sigma));
  std::vector<double> k(2 * r + 1);
  double s = 0;
  for (int i = -r; i <= r; ++i) s += k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& w : k) w /= s;
  std::vector<float> tmp(static_cast<std::size_t>(nx * ny));
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x) {
      double acc = 0;
      for (int i = -r; i <= r; ++i)
        acc += k[i + r] * img[y * nx + std::clamp<std::int64_t>(x + i, 0, nx - 1)];
      tmp[y * nx + x] = static_cast<float>(acc);
    }
  for (std::int64_t y = 0; y < ny; ++y)
    for (std::int64_t x = 0; x < nx; ++x) {
      double acc = 0;
      for (int i = -r; i <= r; ++i)
        acc += k[i + r] * tmp[std::clamp<std::int64_t>(y + i, 0, ny - 1) * nx + x];
      img[y * nx + x] = static_cast<float>(acc);
    }
}

}  // namespace

Array3 preprocess_views(const Array3& views, const PreprocessOptions& opt) {
  if (views.empty()) fail_input("preprocess: the tilt series is empty");
  for (float v : views.vector())
    if (!std::isfinite(v)) fail_input("preprocess: the tilt series holds NaN or Inf values");
  if (!(opt.denoise_sigma >= 0) || !std::isfinite(opt.denoise_sigma))
    fail_input("preprocess: the denoising sigma must be >= 0 px");
  Array3 out = views;
  const std::int64_t nx = out.nx(), ny = out.ny(), nv = out.nz();
  // The background's first fit: the outer eighth of the view, at most kBorderFrameAngstrom wide.
  // A large particle seen with a few Angstrom to spare reaches into the outer eighth, and a fit
  // that starts on its rim follows the particle (a dome subtracted from it).
  std::int64_t frame = std::min(nx, ny) / 8;
  const double a = views.voxel_size.x;
  if (a > 0 && detail::kBorderFrameAngstrom / a < static_cast<double>(frame))
    frame = static_cast<std::int64_t>(detail::kBorderFrameAngstrom / a);
  frame = std::max<std::int64_t>(2, frame);
  parallel_for(nv, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t k = b; k < e; ++k) {
      float* img = out.slice(k);
      if (opt.remove_hot_pixels && nx >= 3 && ny >= 3) remove_hot_pixels(img, nx, ny);
      if (opt.subtract_background && nx >= 8 && ny >= 8) subtract_background(img, nx, ny, frame);
      if (opt.denoise_sigma > 0) gaussian_blur(img, nx, ny, opt.denoise_sigma);
    }
  });
  if (opt.normalise) {
    // For HAADF of an isolated object every view integrates the same mass, so the totals are
    // made equal (to their mean, which keeps the overall scale). Views whose total is not
    // positive (noise only) are left as they are.
    std::vector<double> total(static_cast<std::size_t>(nv), 0.0);
    double mean = 0;
    int positive = 0;
    for (std::int64_t k = 0; k < nv; ++k) {
      const float* img = out.slice(k);
      for (std::int64_t i = 0; i < nx * ny; ++i) total[k] += img[i];
      if (total[k] > 0) mean += total[k], ++positive;
    }
    if (positive > 0) {
      mean /= positive;
      for (std::int64_t k = 0; k < nv; ++k) {
        if (!(total[k] > 0)) continue;
        const float s = static_cast<float>(mean / total[k]);
        float* img = out.slice(k);
        for (std::int64_t i = 0; i < nx * ny; ++i) img[i] *= s;
      }
    }
  }
  return out;
}

}  // namespace aet
