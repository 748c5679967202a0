// GENFIRE on a CUDA device (cuFFT iterations, host gridding) against the CPU path (FFTW), on a
// particle from the analytic simulator; skipped when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/recon/solvers.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

struct Series {
  Array3 views;
  TiltGeometry geometry;
};

// 55-atom Pt cuboctahedron, +-70 degrees in steps of 5, pixel 0.4 A, 40 x 40 views, with shifts.
const Series& series() {
  static const Series s = [] {
    phantoms::ParticleSpec spec;
    spec.element = "Pt";
    spec.shape = phantoms::Shape::cuboctahedron;
    spec.shells = 2;
    phantoms::SimulationSpec sim;
    sim.pixel = 0.4;
    sim.nx = sim.ny = 40;
    sim.shift_max_px = 1.5;
    sim.seed = 2;
    for (int t = -70; t <= 70; t += 5) sim.nominal.push_back(Euler{0, double(t), 0});
    const phantoms::TiltSeries ts =
        phantoms::simulate_tilt_series(phantoms::build_particle(spec), sim, Device{});
    return Series{ts.views, ts.truth};
  }();
  return s;
}

Device cuda0() {
  Device d;
  d.kind = DeviceKind::cuda;
  return d;
}

double relative_difference(const Array3& a, const Array3& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - b.data()[i];
    num += d * d;
    den += static_cast<double>(a.data()[i]) * a.data()[i];
  }
  return std::sqrt(num / den);
}

void expect_agreement(ReconOptions opt, const char* what) {
  const Series& s = series();
  opt.algorithm = Algorithm::genfire;
  opt.iterations = 20;
  opt.device = Device{};
  const ReconResult cpu = reconstruct(s.views, s.geometry, opt);
  opt.device = cuda0();
  const ReconResult gpu = reconstruct(s.views, s.geometry, opt);
  ASSERT_EQ(gpu.volume.nx(), cpu.volume.nx());
  ASSERT_EQ(gpu.volume.nz(), cpu.volume.nz());
  ASSERT_EQ(gpu.r1.size(), cpu.r1.size());
  ASSERT_EQ(gpu.r_free.size(), cpu.r_free.size());
  const double diff = relative_difference(cpu.volume, gpu.volume);
  std::printf(
      "%s: CPU %.2f s, GPU %.2f s (%.1f MiB on the device), relative difference %.2e, "
      "R1 %.5f / %.5f\n",
      what, cpu.seconds, gpu.seconds, gpu.device_bytes / 1048576.0, diff, cpu.r1.back(),
      gpu.r1.back());
  EXPECT_LE(diff, 1e-3) << what;
  EXPECT_GT(gpu.device_bytes, 0u);
  for (std::size_t k = 0; k < cpu.r1.size(); ++k) {
    EXPECT_NEAR(gpu.r1[k], cpu.r1[k], 1e-3 * cpu.r1[k]) << what << ", iteration " << k + 1;
    if (k < cpu.r_free.size()) {
      EXPECT_NEAR(gpu.r_free[k], cpu.r_free[k], 1e-3 * cpu.r_free[k])
          << what << ", iteration " << k + 1;
    }
  }
}

TEST(GenfireGpu, AgreesWithTheCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  expect_agreement(ReconOptions{}, "default options");
}

TEST(GenfireGpu, AgreesWithTheCpuWithSupportAndNoExtension) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  Array3 support(40, 40, 40, 1.0f);
  for (std::int64_t z = 0; z < 40; ++z)
    for (std::int64_t y = 0; y < 40; ++y)
      for (std::int64_t x = 0; x < 40; ++x)
        if ((x - 20) * (x - 20) + (y - 20) * (y - 20) + (z - 20) * (z - 20) > 15 * 15)
          support(x, y, z) = 0.0f;
  ReconOptions opt;
  opt.support = &support;
  opt.genfire.resolution_extension = false;
  opt.genfire.oversampling = 1.7;  // a grid of other factors (fft_size(68) = 70 = 2 5 7)
  opt.genfire.rfree_fraction = 0.1;
  expect_agreement(opt, "support, no extension, oversampling 1.7");
}

TEST(GenfireGpu, TooLargeForTheDeviceIsAnInputError) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  Array3 views(8, 8, 3, 1.0f);
  views.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  const TiltGeometry three{ViewGeometry::from_tilt(-10), ViewGeometry::from_tilt(0),
                           ViewGeometry::from_tilt(10)};
  ReconOptions opt;
  opt.algorithm = Algorithm::genfire;
  opt.iterations = 1;
  opt.nx = opt.ny = opt.nz = 6000;  // a 12000^3 Fourier grid: terabytes
  opt.device = cuda0();
  EXPECT_THROW(reconstruct(views, three, opt), InputError);
}

}  // namespace
}  // namespace aet
