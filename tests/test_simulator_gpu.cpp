// CUDA analytic projector against the CPU reference. Skips (reported as skipped) without a
// visible device; in a build without CUDA it checks instead that asking for the GPU fails clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "project_atoms_detail.hpp"
#include "support/test_support.hpp"

namespace aet::phantoms {
namespace {

// About 300 atoms on a slightly sheared fcc-like grid with varied weights and widths: enough
// overlap between neighbours to exercise the sums, built here so that the test does not depend
// on the nanoparticle builders.
GaussianAtoms grid_particle() {
  GaussianAtoms a;
  const double d = 2.0;
  for (int x = -6; x <= 6; ++x)
    for (int y = -6; y <= 6; ++y)
      for (int z = -6; z <= 6; ++z) {
        if ((x + y + z) % 2 != 0) continue;
        const Vec3 p(x * d + 0.1 * y, y * d, z * d - 0.05 * x);
        if (p.norm() > 10.5) continue;
        a.positions.push_back(p);
        a.weight.push_back(0.02 * (1.0 + 0.3 * ((x * 7 + y * 3 + z) % 3)));
        a.sigma.push_back(0.15 + 0.02 * ((x + 2 * y + 3 * z + 40) % 5));
      }
  return a;
}

TiltGeometry general_views() {
  TiltGeometry v;
  const std::vector<Euler> e = {
      {0, -65, 0}, {0, 12.5, 0}, {30, 40, -20}, {-75, 10, 60}, {110, -35, 5}};
  for (std::size_t k = 0; k < e.size(); ++k)
    v.push_back(ViewGeometry::from_euler(e[k], Vec2(0.13 * k, -0.21 * k)));
  return v;
}

#if AET_WITH_CUDA

TEST(ProjectAtomsGpu, CudaAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const GaussianAtoms atoms = grid_particle();
  ASSERT_GT(atoms.positions.size(), 250u);
  ASSERT_LT(atoms.positions.size(), 400u);
  for (double tail : {0.0, 0.15}) {
    SCOPED_TRACE("tail fraction " + std::to_string(tail));
    ImagingModel im;
    im.probe_sigma = 0.35;
    im.tail_fraction = tail;
    im.tail_sigma = 2.5;
    const TiltGeometry views = general_views();
    const std::int64_t nx = 112, ny = 100;  // not multiples of the 16-pixel tiles
    const double pixel = 0.35;
    const Array3 cpu = detail::project_atoms_cpu(atoms, views, nx, ny, pixel, im);
    const Array3 gpu = project_atoms(atoms, views, nx, ny, pixel, im, Device{DeviceKind::cuda, 0});
    ASSERT_EQ(gpu.nx(), nx);
    ASSERT_EQ(gpu.ny(), ny);
    ASSERT_EQ(gpu.nz(), static_cast<std::int64_t>(views.size()));
    EXPECT_DOUBLE_EQ(gpu.voxel_size.x, pixel);
    for (std::int64_t k = 0; k < cpu.nz(); ++k) {
      double sum_c = 0, sum_g = 0, peak = 0, worst = 0;
      for (std::int64_t p = 0; p < nx * ny; ++p) {
        const double c = cpu.slice(k)[p], g = gpu.slice(k)[p];
        sum_c += c;
        sum_g += g;
        peak = std::max(peak, std::abs(c));
        worst = std::max(worst, std::abs(c - g));
      }
      EXPECT_NEAR(sum_g / sum_c, 1.0, 1e-5) << "view " << k;
      EXPECT_LE(worst, 1e-4 * peak) << "view " << k;
    }
  }
}

TEST(ProjectAtomsGpu, SimulatorOnCudaMatchesCpuWithoutNoise) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  AtomModel m;
  const GaussianAtoms g = grid_particle();
  for (const Vec3& p : g.positions) m.add("Pt", p);
  SimulationSpec spec;
  spec.pixel = 0.4;
  for (double t : {-60.0, 0.0, 45.0}) spec.nominal.push_back(Euler{0, t, 0});
  spec.shift_max_px = 3.0;
  spec.axis_rotation = 2.0;
  const TiltSeries c = simulate_tilt_series(m, spec, Device{});
  const TiltSeries d = simulate_tilt_series(m, spec, Device{DeviceKind::cuda, 0});
  ASSERT_EQ(c.views.size(), d.views.size());
  double peak = 0, worst = 0;
  for (std::size_t p = 0; p < c.views.size(); ++p) {
    peak = std::max(peak, static_cast<double>(std::abs(c.views.data()[p])));
    worst = std::max(worst, static_cast<double>(std::abs(c.views.data()[p] - d.views.data()[p])));
  }
  EXPECT_LE(worst, 1e-4 * peak);
}

TEST(ProjectAtomsGpu, AutoPicksCuda) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  EXPECT_EQ(resolve_device("auto").kind, DeviceKind::cuda);
}

#else  // built without CUDA: only the clear refusal can be tested

TEST(ProjectAtomsGpu, CudaDeviceIsRefusedWithoutCuda) {
  const GaussianAtoms atoms = grid_particle();
  try {
    project_atoms(atoms, general_views(), 32, 32, 0.4, ImagingModel{}, Device{DeviceKind::cuda, 0});
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos) << e.what();
  }
}

#endif

}  // namespace
}  // namespace aet::phantoms
