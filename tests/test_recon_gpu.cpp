// CUDA reconstruction back end against the CPU reference: the projector pair (forward, back,
// adjointness), RESIRE and SIRT with the views resident and in batches (AET_CUDA_MEMORY_LIMIT),
// and clear errors. Cases needing a device skip (reported as skipped) without one; in a build
// without CUDA the tests check instead that asking for the GPU fails clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/recon/memory_plan.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "projector_detail.hpp"
#include "support/recon_fixtures.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

const Device kCuda{DeviceKind::cuda, 0};
using test::general_geometry;
using test::random_array;
using test::Uniform;

[[maybe_unused]] double dot(const Array3& a, const Array3& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

// ||a - ref|| / ||ref||; the dimensions must agree.
[[maybe_unused]] double rel_diff(const Array3& a, const Array3& ref) {
  EXPECT_EQ(a.nx(), ref.nx());
  EXPECT_EQ(a.ny(), ref.ny());
  EXPECT_EQ(a.nz(), ref.nz());
  if (a.size() != ref.size()) return 1e30;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - ref.data()[i];
    num += d * d;
    den += static_cast<double>(ref.data()[i]) * ref.data()[i];
  }
  return std::sqrt(num / den);
}

// Single-axis tilts on both sides of 45 degrees (the dominant axis switches from z to x), with
// sub-pixel shifts.
TiltGeometry tilt_geometry() {
  const double tilts[] = {-72, -60, -45, -30, -12.5, 0, 7, 25, 44, 45, 46, 63, 75};
  TiltGeometry g;
  int k = 0;
  for (double t : tilts) {
    g.push_back(ViewGeometry::from_tilt(t, Vec2(0.13 * (k % 3) - 0.1, 0.0)));
    ++k;
  }
  return g;
}

// Enough views (49) that the view stacks outweigh the volume: only then can a batched plan (which
// holds one more volume) be chosen over the resident one.
TiltGeometry many_views() {
  TiltGeometry g = general_geometry();
  for (int k = 0; k <= 40; ++k)
    g.push_back(ViewGeometry::from_tilt(-80.0 + 4.0 * k, Vec2(0.05 * (k % 5) - 0.1, 0.0)));
  return g;
}

struct Case {
  std::int64_t nx, ny, nz, view_nx, view_ny;
};

const Case kCases[] = {{16, 16, 16, 16, 16},  // cubic, even
                       {17, 12, 9, 19, 14},   // non-cubic, odd and even, views larger
                       {21, 26, 15, 18, 23},  // views smaller than the volume
                       {40, 9, 33, 37, 11}};  // flat

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// A smooth object (a few Gaussian blobs) and its views by the CPU projector: the solvers only
// need consistent data here, not an independent simulator.
struct SolveData {
  Array3 views;
  TiltGeometry geometry;
  std::int64_t nx, ny, nz;
};

SolveData solve_data(const TiltGeometry& geometry) {
  const double voxel = 0.4;
  const std::int64_t nx = 26, ny = 20, nz = 22;
  const Array3 object = test::blob_object(nx, ny, nz, voxel);
  SolveData d;
  d.geometry = geometry;
  d.views = detail::forward_project_cpu(object, geometry, 28, 20);
  // A little deterministic "noise" so that the fit is not exact and R stays away from zero.
  Uniform u(99);
  for (float& v : d.views.vector()) v += static_cast<float>(0.02 * (u() - 0.5));
  d.nx = nx;
  d.ny = ny;
  d.nz = nz;
  return d;
}

[[maybe_unused]] Array3 ball_support(std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  Array3 s(nx, ny, nz);
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const double dx = x - nx / 2, dy = y - ny / 2, dz = z - nz / 2;
        s(x, y, z) = dx * dx + 1.5 * dy * dy + dz * dz <= 100.0 ? 1.0f : 0.0f;
      }
  return s;
}

ReconOptions solve_options(Algorithm a, const SolveData& d) {
  ReconOptions opt;
  opt.algorithm = a;
  opt.iterations = 20;
  opt.nx = d.nx;
  opt.ny = d.ny;
  opt.nz = d.nz;
  return opt;
}

// The CUDA solve agrees with the CPU one: volume to 1e-3 relative, R factors likewise.
[[maybe_unused]] void expect_same_solve(const ReconResult& gpu, const ReconResult& cpu) {
  EXPECT_LE(rel_diff(gpu.volume, cpu.volume), 1e-3);
  EXPECT_DOUBLE_EQ(gpu.volume.voxel_size.x, cpu.volume.voxel_size.x);
  ASSERT_EQ(gpu.r1.size(), cpu.r1.size());
  ASSERT_EQ(gpu.r2.size(), cpu.r2.size());
  for (std::size_t k = 0; k < cpu.r1.size(); ++k) {
    EXPECT_NEAR(gpu.r1[k], cpu.r1[k], 1e-3 * cpu.r1[k] + 1e-12) << "iteration " << k + 1;
    EXPECT_NEAR(gpu.r2[k], cpu.r2[k], 1e-3 * cpu.r2[k] + 1e-12) << "iteration " << k + 1;
  }
  EXPECT_GT(gpu.device_bytes, 0u);
  EXPECT_EQ(cpu.device_bytes, 0u);
}

ReconProblemSize size_of(const SolveData& d, Algorithm a, bool support) {
  ReconProblemSize s;
  s.nx = d.nx;
  s.ny = d.ny;
  s.nz = d.nz;
  s.view_nx = d.views.nx();
  s.view_ny = d.views.ny();
  s.n_views = d.views.nz();
  s.algorithm = a;
  s.support = support;
  return s;
}

// The smallest memory limit (bytes, 1 KiB steps) for which the plan batches with at least
// `min_per_batch` views per batch.
std::uint64_t batching_limit(const ReconProblemSize& size, std::int64_t min_per_batch) {
  for (std::uint64_t limit = 64ull << 20; limit < 128ull << 20; limit += 1024) {
    try {
      const ReconMemoryPlan p = plan_recon_memory(size, limit);
      if (!p.batched()) break;
      if (p.views_per_batch >= min_per_batch) return limit;
    } catch (const InputError&) {
      // not even one view fits yet
    }
  }
  ADD_FAILURE() << "no memory limit gives a batched plan";
  return 0;
}

#if AET_WITH_CUDA

TEST(ProjectorGpu, ForwardAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const double voxel = 0.4;
  int seed = 1;
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()})
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::to_string(c.nx) + "x" + std::to_string(c.ny) + "x" + std::to_string(c.nz) +
                   " views " + std::to_string(c.view_nx) + "x" + std::to_string(c.view_ny) + ", " +
                   std::to_string(g.size()) + " views");
      const Array3 vol = random_array(c.nx, c.ny, c.nz, voxel, seed++);
      const Array3 cpu = detail::forward_project_cpu(vol, g, c.view_nx, c.view_ny);
      const Array3 gpu = forward_project(vol, g, c.view_nx, c.view_ny, kCuda);
      EXPECT_LE(rel_diff(gpu, cpu), 1e-4);
      EXPECT_DOUBLE_EQ(gpu.voxel_size.x, voxel);
    }
}

TEST(ProjectorGpu, BackAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const double voxel = 0.4;
  int seed = 100;
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()})
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::to_string(c.nx) + "x" + std::to_string(c.ny) + "x" + std::to_string(c.nz) +
                   " views " + std::to_string(c.view_nx) + "x" + std::to_string(c.view_ny) + ", " +
                   std::to_string(g.size()) + " views");
      const Array3 views =
          random_array(c.view_nx, c.view_ny, static_cast<std::int64_t>(g.size()), voxel, seed++);
      const Array3 cpu = detail::back_project_cpu(views, g, c.nx, c.ny, c.nz);
      const Array3 gpu = back_project(views, g, c.nx, c.ny, c.nz, kCuda);
      EXPECT_LE(rel_diff(gpu, cpu), 1e-4);
      EXPECT_DOUBLE_EQ(gpu.voxel_size.x, voxel);
    }
}

// AET_CUDA_PROJECTOR=reference: the CPU's double-precision operations on the device, so the
// same bits as the CPU (tests/test_projector_kernels.cpp runs the same code on the host).
TEST(ProjectorGpu, ReferenceArithmeticIsTheCpusBitForBit) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  ScopedEnv env("AET_CUDA_PROJECTOR", "reference");
  const double voxel = 0.4;
  int seed = 300;
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()})
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::to_string(c.nx) + "x" + std::to_string(c.ny) + "x" + std::to_string(c.nz));
      const Array3 vol = random_array(c.nx, c.ny, c.nz, voxel, seed++);
      EXPECT_EQ(rel_diff(forward_project(vol, g, c.view_nx, c.view_ny, kCuda),
                         detail::forward_project_cpu(vol, g, c.view_nx, c.view_ny)),
                0.0);
      const Array3 views =
          random_array(c.view_nx, c.view_ny, static_cast<std::int64_t>(g.size()), voxel, seed++);
      EXPECT_EQ(rel_diff(back_project(views, g, c.nx, c.ny, c.nz, kCuda),
                         detail::back_project_cpu(views, g, c.nx, c.ny, c.nz)),
                0.0);
    }
}

// Needs no device: the arithmetic is chosen before the device is opened.
TEST(ProjectorGpu, UnknownArithmeticIsAClearError) {
  ScopedEnv env("AET_CUDA_PROJECTOR", "double");
  const Array3 vol = random_array(8, 8, 8, 0.4, 1);
  try {
    forward_project(vol, tilt_geometry(), 8, 8, kCuda);
    ADD_FAILURE() << "AET_CUDA_PROJECTOR=double was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("AET_CUDA_PROJECTOR"), std::string::npos) << e.what();
  }
}

TEST(ProjectorGpu, PairIsAdjoint) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const double voxel = 0.4;
  int seed = 200;
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()})
    for (const Case& c : kCases) {
      const Array3 x = random_array(c.nx, c.ny, c.nz, voxel, seed++);
      const Array3 y =
          random_array(c.view_nx, c.view_ny, static_cast<std::int64_t>(g.size()), voxel, seed++);
      const double lhs = dot(forward_project(x, g, c.view_nx, c.view_ny, kCuda), y);
      const double rhs = dot(x, back_project(y, g, c.nx, c.ny, c.nz, kCuda));
      EXPECT_NEAR(lhs, rhs, 1e-5 * std::abs(lhs)) << c.nx << "x" << c.ny << "x" << c.nz;
    }
}

TEST(ProjectorGpu, BatchedProjectionsAgreeWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const double voxel = 0.4;
  const TiltGeometry g = tilt_geometry();
  const Case c{21, 26, 15, 36, 34};
  const std::int64_t n = static_cast<std::int64_t>(g.size());
  const Array3 vol = random_array(c.nx, c.ny, c.nz, voxel, 7);
  const Array3 views = random_array(c.view_nx, c.view_ny, n, voxel, 8);
  // Room for the volume, the view geometry (under 4 KiB) and about 3 views: 4 or 5 batches.
  const std::uint64_t target = static_cast<std::uint64_t>(c.nx * c.ny * c.nz) * 4 + 4096 +
                               3 * static_cast<std::uint64_t>(c.view_nx * c.view_ny) * 4;
  std::uint64_t limit = target;
  while (usable_device_bytes(limit) < target) limit += 256;
  ScopedEnv env("AET_CUDA_MEMORY_LIMIT", std::to_string(limit));
  EXPECT_LE(rel_diff(forward_project(vol, g, c.view_nx, c.view_ny, kCuda),
                     detail::forward_project_cpu(vol, g, c.view_nx, c.view_ny)),
            1e-4);
  EXPECT_LE(rel_diff(back_project(views, g, c.nx, c.ny, c.nz, kCuda),
                     detail::back_project_cpu(views, g, c.nx, c.ny, c.nz)),
            1e-4);
}

TEST(SolversGpu, ResireAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()}) {
    const SolveData d = solve_data(g);
    const Array3 support = ball_support(d.nx, d.ny, d.nz);
    for (bool with_support : {false, true}) {
      SCOPED_TRACE(std::string(with_support ? "with" : "without") + " support, " +
                   std::to_string(g.size()) + " views");
      ReconOptions opt = solve_options(Algorithm::resire, d);
      if (with_support) opt.support = &support;
      const ReconResult cpu = reconstruct(d.views, d.geometry, opt);
      opt.device = kCuda;
      std::vector<int> seen;
      opt.on_iteration = [&](int it, double, double) { seen.push_back(it); };
      const ReconResult gpu = reconstruct(d.views, d.geometry, opt);
      expect_same_solve(gpu, cpu);
      ASSERT_EQ(seen.size(), 20u);
      for (int k = 0; k < 20; ++k) EXPECT_EQ(seen[static_cast<std::size_t>(k)], k + 1);
      EXPECT_EQ(
          gpu.device_bytes,
          plan_recon_memory(size_of(d, Algorithm::resire, with_support), 1ull << 40).device_bytes);
    }
  }
}

TEST(SolversGpu, SirtAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  for (const TiltGeometry& g : {tilt_geometry(), general_geometry()}) {
    const SolveData d = solve_data(g);
    for (bool positivity : {true, false}) {
      SCOPED_TRACE(std::string("positivity ") + (positivity ? "on" : "off"));
      ReconOptions opt = solve_options(Algorithm::sirt, d);
      opt.positivity = positivity;
      opt.step = 0.9;
      const ReconResult cpu = reconstruct(d.views, d.geometry, opt);
      opt.device = kCuda;
      expect_same_solve(reconstruct(d.views, d.geometry, opt), cpu);
    }
  }
}

TEST(SolversGpu, BatchedViewsGiveTheSameResult) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const SolveData d = solve_data(many_views());
  const Array3 support = ball_support(d.nx, d.ny, d.nz);
  for (Algorithm a : {Algorithm::resire, Algorithm::sirt}) {
    SCOPED_TRACE(algorithm_name(a));
    ReconOptions opt = solve_options(a, d);
    opt.support = &support;
    const ReconResult cpu = reconstruct(d.views, d.geometry, opt);
    const ReconProblemSize size = size_of(d, a, true);
    const std::uint64_t limit = batching_limit(size, 3);
    const ReconMemoryPlan plan = plan_recon_memory(size, limit);
    ASSERT_TRUE(plan.batched());
    ASSERT_GE(plan.batches, 2);
    ScopedEnv env("AET_CUDA_MEMORY_LIMIT", std::to_string(limit));
    opt.device = kCuda;
    const ReconResult gpu = reconstruct(d.views, d.geometry, opt);
    expect_same_solve(gpu, cpu);
    EXPECT_EQ(gpu.device_bytes, plan.device_bytes);  // the batched plan was the one used
  }
}

// Momentum and a starting volume on the device follow the CPU's sequence (same restart rule),
// resident and batched.
TEST(SolversGpu, AcceleratedWarmStartAgreesWithCpu) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const SolveData d = solve_data(many_views());
  for (Algorithm a : {Algorithm::resire, Algorithm::sirt}) {
    SCOPED_TRACE(algorithm_name(a));
    ReconOptions opt = solve_options(a, d);
    opt.iterations = 5;
    const Array3 start = reconstruct(d.views, d.geometry, opt).volume;
    opt.iterations = 20;
    opt.accelerate = true;
    opt.initial = &start;
    const ReconResult cpu = reconstruct(d.views, d.geometry, opt);
    opt.device = kCuda;
    expect_same_solve(reconstruct(d.views, d.geometry, opt), cpu);
    ReconProblemSize size = size_of(d, a, false);
    size.accelerate = true;
    const std::uint64_t limit = batching_limit(size, 3);
    ASSERT_TRUE(plan_recon_memory(size, limit).batched());
    ScopedEnv env("AET_CUDA_MEMORY_LIMIT", std::to_string(limit));
    expect_same_solve(reconstruct(d.views, d.geometry, opt), cpu);
  }
}

TEST(SolversGpu, TooLittleMemoryIsAClearError) {
  if (!aet::test::gpu_available()) GTEST_SKIP() << "no CUDA device visible";
  const SolveData d = solve_data(tilt_geometry());
  ReconOptions opt = solve_options(Algorithm::resire, d);
  opt.device = kCuda;
  {
    ScopedEnv env("AET_CUDA_MEMORY_LIMIT", "1000");
    EXPECT_THROW(reconstruct(d.views, d.geometry, opt), InputError);
    EXPECT_THROW(forward_project(random_array(d.nx, d.ny, d.nz, 0.4, 1), d.geometry, 28, 20, kCuda),
                 InputError);
  }
  {
    ScopedEnv env("AET_CUDA_MEMORY_LIMIT", "lots");
    EXPECT_THROW(reconstruct(d.views, d.geometry, opt), InputError);
  }
}

TEST(ProjectorGpu, MissingDeviceIsAClearError) {
  if (aet::test::gpu_available()) GTEST_SKIP() << "a CUDA device is visible";
  const Array3 vol = random_array(8, 8, 8, 0.4, 1);
  EXPECT_THROW(forward_project(vol, tilt_geometry(), 8, 8, kCuda), InputError);
  const SolveData d = solve_data(tilt_geometry());
  ReconOptions opt = solve_options(Algorithm::resire, d);
  opt.device = kCuda;
  EXPECT_THROW(reconstruct(d.views, d.geometry, opt), InputError);
}

#else  // built without CUDA: only the clear refusal can be tested

TEST(ProjectorGpu, CudaDeviceIsRefusedWithoutCuda) {
  const Array3 vol = random_array(8, 8, 8, 0.4, 1);
  try {
    forward_project(vol, tilt_geometry(), 8, 8, kCuda);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA support"), std::string::npos) << e.what();
  }
  const Array3 views =
      random_array(8, 8, static_cast<std::int64_t>(tilt_geometry().size()), 0.4, 2);
  EXPECT_THROW(back_project(views, tilt_geometry(), 8, 8, 8, kCuda), InputError);
  const SolveData d = solve_data(tilt_geometry());
  ReconOptions opt = solve_options(Algorithm::resire, d);
  opt.device = kCuda;
  EXPECT_THROW(reconstruct(d.views, d.geometry, opt), InputError);
}

#endif

// The planner helpers used above behave (runs in every build).
TEST(SolversGpu, BatchingLimitGivesABatchedPlan) {
  const SolveData d = solve_data(many_views());
  for (Algorithm a : {Algorithm::resire, Algorithm::sirt}) {
    const ReconProblemSize size = size_of(d, a, true);
    const ReconMemoryPlan p = plan_recon_memory(size, batching_limit(size, 3));
    EXPECT_TRUE(p.batched());
    EXPECT_GE(p.views_per_batch, 3);
    EXPECT_GE(p.batches, 3);
  }
}

}  // namespace
}  // namespace aet
