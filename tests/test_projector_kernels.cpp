// The CUDA projector's per-thread code (cuda/recon/projector_math.cuh), compiled for the host and
// run on the CPU in every build, GPU or not: each pixel's project_ray and each voxel's
// gather_voxel, exactly as the kernels call them. The reference arithmetic must reproduce the CPU
// projector bit for bit; the single arithmetic (the GPU default) must agree with it to 1e-5 and
// form an exact transpose pair, entry by entry. The GPU tests (test_recon_gpu) then only have to
// show that the device runs this code as the host does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/recon/projector.hpp"
#include "projector_detail.hpp"
#include "projector_math.cuh"
#include "recon_detail.hpp"
#include "support/recon_fixtures.hpp"

namespace aet {
namespace {

using cuda::recon::DeviceRays;
using cuda::recon::Precision;
using cuda::recon::Shape;
using test::general_geometry;
using test::random_array;

// max |a - ref| / max |ref|; the dimensions must agree.
double max_rel_diff(const Array3& a, const Array3& ref) {
  EXPECT_EQ(a.nx(), ref.nx());
  EXPECT_EQ(a.ny(), ref.ny());
  EXPECT_EQ(a.nz(), ref.nz());
  if (a.size() != ref.size()) return 1e30;
  double diff = 0, peak = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    diff = std::max(diff, std::abs(static_cast<double>(a.data()[e]) - ref.data()[e]));
    peak = std::max(peak, std::abs(static_cast<double>(ref.data()[e])));
  }
  return diff / peak;
}

// ||a - ref|| / ||ref||.
double l2_rel_diff(const Array3& a, const Array3& ref) {
  double num = 0, den = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    const double d = static_cast<double>(a.data()[e]) - ref.data()[e];
    num += d * d;
    den += static_cast<double>(ref.data()[e]) * ref.data()[e];
  }
  return std::sqrt(num / den);
}

// The forward kernel on the host: project_ray for every pixel of every view.
template <Precision P>
Array3 forward_kernel_on_host(const Array3& vol, const TiltGeometry& g, std::int64_t vnx,
                              std::int64_t vny) {
  const Shape s{vol.nx(), vol.ny(), vol.nz(), vnx, vny};
  const std::vector<DeviceRays> rays = cuda::recon::make_device_rays(g, s, vol.voxel_size.x);
  Array3 out(vnx, vny, static_cast<std::int64_t>(g.size()));
  parallel_for(out.nz() * vny, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      const std::int64_t k = row / vny, j = row % vny;
      for (std::int64_t i = 0; i < vnx; ++i)
        out(i, j, k) =
            cuda::recon::project_ray<P>(vol.data(), rays[static_cast<std::size_t>(k)], i, j);
    }
  });
  return out;
}

// The gather kernel on the host: gather_voxel for every voxel.
template <Precision P>
Array3 gather_kernel_on_host(const Array3& views, const TiltGeometry& g, std::int64_t nx,
                             std::int64_t ny, std::int64_t nz, double pixel) {
  const Shape s{nx, ny, nz, views.nx(), views.ny()};
  const std::vector<DeviceRays> rays = cuda::recon::make_device_rays(g, s, pixel);
  Array3 out(nx, ny, nz);
  parallel_for(nz * ny, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      const std::int64_t z = row / ny, y = row % ny;
      for (std::int64_t x = 0; x < nx; ++x)
        out(x, y, z) = cuda::recon::gather_voxel<P>(views.data(), rays.data(), views.nz(),
                                                    views.nx(), views.ny(), x, y, z);
    }
  });
  return out;
}

// Single-axis tilts on both sides of 45 degrees (the dominant axis switches from z to x), exactly
// 90 degrees, and sub-pixel shifts.
TiltGeometry tilt_geometry() {
  TiltGeometry g;
  int k = 0;
  for (double t : {-72.0, -45.0, -30.5, 0.0, 12.0, 44.9, 60.0, 90.0}) {
    g.push_back(ViewGeometry::from_tilt(t, Vec2(0.13 * (k % 3) - 0.2, 0.07 * (k % 2))));
    ++k;
  }
  return g;
}

struct Case {
  std::int64_t nx, ny, nz, vnx, vny;
  TiltGeometry geometry;
};

std::vector<Case> cases() {
  return {{24, 20, 22, 26, 21, tilt_geometry()},
          {23, 25, 21, 20, 27, general_geometry()},
          {17, 16, 30, 33, 18, general_geometry()}};
}

TEST(ProjectorKernels, ReferenceArithmeticIsTheCpuProjectorBitForBit) {
  const double voxel = 0.4;
  // The CPU walks rays along x ray by ray and along y or z plane by plane: the cases cover all
  // three dominant axes, so both walks are held to the per-ray emulation.
  bool dominant[3] = {false, false, false};
  for (const Case& c : cases())
    for (const DeviceRays& r :
         cuda::recon::make_device_rays(c.geometry, Shape{c.nx, c.ny, c.nz, c.vnx, c.vny}, voxel))
      dominant[r.axis_d] = true;
  EXPECT_TRUE(dominant[0] && dominant[1] && dominant[2]);
  for (const Case& c : cases()) {
    const Array3 vol = random_array(c.nx, c.ny, c.nz, voxel, 11);
    const Array3 cpu = detail::forward_project_cpu(vol, c.geometry, c.vnx, c.vny);
    const Array3 emulated =
        forward_kernel_on_host<Precision::reference>(vol, c.geometry, c.vnx, c.vny);
    EXPECT_EQ(max_rel_diff(emulated, cpu), 0.0) << c.nx << "x" << c.ny << "x" << c.nz;

    Array3 views =
        random_array(c.vnx, c.vny, static_cast<std::int64_t>(c.geometry.size()), voxel, 12);
    // Zero pixels, which the CPU skips, in both walks.
    for (std::size_t e = 0; e < views.size(); e += 7) views.data()[e] = 0.0f;
    const Array3 back = detail::back_project_cpu(views, c.geometry, c.nx, c.ny, c.nz);
    const Array3 gathered =
        gather_kernel_on_host<Precision::reference>(views, c.geometry, c.nx, c.ny, c.nz, voxel);
    EXPECT_EQ(max_rel_diff(gathered, back), 0.0) << c.nx << "x" << c.ny << "x" << c.nz;
  }
}

TEST(ProjectorKernels, SingleArithmeticAgreesWithTheCpuProjector) {
  const double voxel = 0.4;
  for (const Case& c : cases()) {
    const Array3 vol = random_array(c.nx, c.ny, c.nz, voxel, 21);
    EXPECT_LE(max_rel_diff(forward_kernel_on_host<Precision::single>(vol, c.geometry, c.vnx, c.vny),
                           detail::forward_project_cpu(vol, c.geometry, c.vnx, c.vny)),
              1e-5);
    const Array3 views =
        random_array(c.vnx, c.vny, static_cast<std::int64_t>(c.geometry.size()), voxel, 22);
    EXPECT_LE(max_rel_diff(gather_kernel_on_host<Precision::single>(views, c.geometry, c.nx, c.ny,
                                                                    c.nz, voxel),
                           detail::back_project_cpu(views, c.geometry, c.nx, c.ny, c.nz)),
              1e-5);
  }
}

// Coordinates of a hundred voxels and more: the float positions' rounding (half an ulp of the
// pivot-relative coordinate, 4e-6 voxel here) grows with them; measured 2.5e-6 (L2) and 1.0e-5
// (max) for the back projection of random views at 128^3, 1.0e-5 and 4.4e-5 at 512^3.
TEST(ProjectorKernels, SingleArithmeticAgreesAtLargeCoordinates) {
  const std::int64_t n = 160, vn = 200;
  const double voxel = 0.35;
  TiltGeometry g;
  g.push_back(ViewGeometry::from_tilt(-63.0, Vec2(3.1, -2.2)));
  g.push_back(ViewGeometry::from_euler(Euler{27, 41, -13}, Vec2(-1.7, 0.9)));
  g.push_back(ViewGeometry::from_tilt(8.0));
  const Array3 vol = random_array(n, n, n, voxel, 31);
  const Array3 fwd = forward_kernel_on_host<Precision::single>(vol, g, vn, vn);
  const Array3 fwd_cpu = detail::forward_project_cpu(vol, g, vn, vn);
  EXPECT_LE(l2_rel_diff(fwd, fwd_cpu), 1e-6);
  EXPECT_LE(max_rel_diff(fwd, fwd_cpu), 5e-6);
  const Array3 views = random_array(vn, vn, 3, voxel, 32);
  const Array3 back = gather_kernel_on_host<Precision::single>(views, g, n, n, n, voxel);
  const Array3 back_cpu = detail::back_project_cpu(views, g, n, n, n);
  EXPECT_LE(l2_rel_diff(back, back_cpu), 6e-6);
  EXPECT_LE(max_rel_diff(back, back_cpu), 3e-5);
}

// The whole matrix of a small problem, column by column (forward of each unit voxel) and row by
// row (gather of each unit pixel): every entry of the back projector must be the forward one. An
// inner-product test would not see a single weight of 1e-5 lost at a ray's end.
template <Precision P>
double transpose_mismatch(const Case& c, double voxel) {
  const std::int64_t n_views = static_cast<std::int64_t>(c.geometry.size());
  const std::int64_t voxels = c.nx * c.ny * c.nz, pixels = c.vnx * c.vny * n_views;
  std::vector<float> a(static_cast<std::size_t>(voxels * pixels));  // a[pixel * voxels + voxel]
  Array3 unit(c.nx, c.ny, c.nz);
  unit.voxel_size = VoxelSize{voxel, voxel, voxel};
  for (std::int64_t v = 0; v < voxels; ++v) {
    unit.data()[v] = 1.0f;
    const Array3 col = forward_kernel_on_host<P>(unit, c.geometry, c.vnx, c.vny);
    for (std::int64_t p = 0; p < pixels; ++p)
      a[static_cast<std::size_t>(p * voxels + v)] = col.data()[p];
    unit.data()[v] = 0.0f;
  }
  Array3 pixel(c.vnx, c.vny, n_views);
  double worst = 0, peak = 0;
  for (std::int64_t p = 0; p < pixels; ++p) {
    pixel.data()[p] = 1.0f;
    const Array3 row = gather_kernel_on_host<P>(pixel, c.geometry, c.nx, c.ny, c.nz, voxel);
    for (std::int64_t v = 0; v < voxels; ++v) {
      const double f = a[static_cast<std::size_t>(p * voxels + v)];
      worst = std::max(worst, std::abs(f - row.data()[v]));
      peak = std::max(peak, std::abs(f));
    }
    pixel.data()[p] = 0.0f;
  }
  return worst / peak;
}

TEST(ProjectorKernels, EachArithmeticGivesAnExactTransposePair) {
  const Case small[] = {{9, 8, 10, 11, 9, general_geometry()}, {10, 9, 8, 12, 10, tilt_geometry()}};
  for (const Case& c : small) {
    // Float rounding of one product: the forward weight is weight * (1 - w1)(1 - w2) rounded
    // in another order than the gather's.
    EXPECT_LE(transpose_mismatch<Precision::single>(c, 0.4), 1e-6) << c.nx;
    EXPECT_LE(transpose_mismatch<Precision::reference>(c, 0.4), 1e-6) << c.nx;
  }
}

// RESIRE and SIRT iterations (gradient steps, positivity; the solvers' update rules) with a
// given projector pair, so that two pairs can be compared through an iterated solve.
template <class Forward, class Back>
Array3 iterate(const Array3& b, std::int64_t nx, std::int64_t ny, std::int64_t nz, bool sirt,
               int iterations, Forward forward, Back back) {
  Array3 x(nx, ny, nz), row_inv, col_inv;
  x.voxel_size = b.voxel_size;
  if (sirt) {
    Array3 ones(nx, ny, nz, 1.0f), ones_views(b.nx(), b.ny(), b.nz(), 1.0f);
    ones.voxel_size = ones_views.voxel_size = b.voxel_size;
    row_inv = forward(ones);
    detail::invert_sums(row_inv.data(), row_inv.size());
    col_inv = back(ones_views);
    detail::invert_sums(col_inv.data(), col_inv.size());
  }
  const float dt = static_cast<float>(1.0 / (static_cast<double>(b.nz()) * nz));
  for (int it = 0; it < iterations; ++it) {
    Array3 r = forward(x);
    for (std::size_t e = 0; e < r.size(); ++e) {
      r.data()[e] = b.data()[e] - r.data()[e];
      if (sirt) r.data()[e] *= row_inv.data()[e];
    }
    const Array3 u = back(r);
    for (std::size_t e = 0; e < x.size(); ++e)
      x.data()[e] =
          std::max(0.0f, x.data()[e] + (sirt ? 0.9f * col_inv.data()[e] : dt) * u.data()[e]);
  }
  return x;
}

// The GPU solvers must agree with the CPU's to 1e-3 after 20 iterations (test_recon_gpu). The
// single arithmetic's rounding must not grow through the iterations towards that: the same solve
// with the kernels' pair and with the CPU pair (test_recon_gpu's blobs and geometries, 20
// iterations, positivity; SIRT's row and column sums from each pair).
TEST(ProjectorKernels, SingleArithmeticStaysCloseThroughTwentyIterations) {
  const std::int64_t nx = 26, ny = 20, nz = 22, vnx = 28, vny = 20;
  const double voxel = 0.4;
  const Array3 object = test::blob_object(nx, ny, nz, voxel);
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()}) {
    const Array3 b = detail::forward_project_cpu(object, g, vnx, vny);
    for (bool sirt : {false, true}) {
      SCOPED_TRACE(sirt ? "sirt" : "resire");
      const Array3 cpu = iterate(
          b, nx, ny, nz, sirt, 20,
          [&](const Array3& v) { return detail::forward_project_cpu(v, g, vnx, vny); },
          [&](const Array3& v) { return detail::back_project_cpu(v, g, nx, ny, nz); });
      const Array3 single = iterate(
          b, nx, ny, nz, sirt, 20,
          [&](const Array3& v) {
            return forward_kernel_on_host<Precision::single>(v, g, vnx, vny);
          },
          [&](const Array3& v) {
            return gather_kernel_on_host<Precision::single>(v, g, nx, ny, nz, voxel);
          });
      const double l2 = l2_rel_diff(single, cpu), max = max_rel_diff(single, cpu);
      std::printf(
          "[ INFO     ] %s, %zu views, 20 iterations, single against CPU: L2 %.2e, max %.2e\n",
          sirt ? "SIRT" : "RESIRE", g.size(), l2, max);
      // Measured 1.9e-7 to 2.4e-7 (L2) and 2.0e-7 to 3.9e-7 (max).
      EXPECT_LE(l2, 1e-6);
      EXPECT_LE(max, 2e-6);
    }
  }
}

TEST(ProjectorKernels, SingleArithmeticNeedsExactFloatCoordinates) {
  EXPECT_TRUE(cuda::recon::single_precision_fits(Shape{512, 512, 512, 724, 512}));
  EXPECT_FALSE(cuda::recon::single_precision_fits(Shape{4, 4, 4, 1LL << 23, 4}));
  // 32-bit offsets: 1024^3 still fits, 1300^3 (more than 2^31 voxels) does not.
  EXPECT_TRUE(cuda::recon::single_precision_fits(Shape{1024, 1024, 1024, 1024, 1024}));
  EXPECT_FALSE(cuda::recon::single_precision_fits(Shape{1300, 1300, 1300, 1300, 1300}));
  // A view whose rays pass 2^23 voxels from the volume is refused, not mis-projected.
  TiltGeometry far;
  far.push_back(ViewGeometry::from_tilt(0.0, Vec2(1e7, 0.0)));
  EXPECT_THROW(cuda::recon::make_device_rays(far, Shape{8, 8, 8, 8, 8}, 0.5), InputError);
}

}  // namespace
}  // namespace aet
