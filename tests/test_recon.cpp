// Reconstruction engine: the projector pair (geometry, adjointness, linearity, determinism), the
// solvers on data from the analytic simulator in phantoms/ (never from this projector), R
// factors and input validation (the `aet reconstruct` command: test_recon_cli.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "projector_detail.hpp"
#include "support/recon_fixtures.hpp"

namespace aet {
namespace {

const Device kCpu{};
using test::fraction_of_atoms_found;
using test::general_geometry;
using test::random_array;
using test::small_particle;

double dot(const Array3& a, const Array3& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

struct Case {
  std::int64_t nx, ny, nz, view_nx, view_ny;
};

TEST(Projector, BackProjectorIsTheExactAdjoint) {
  const double voxel = 0.4;
  const TiltGeometry g = general_geometry();
  const Case cases[] = {{16, 16, 16, 16, 16},  // cubic, even
                        {17, 12, 9, 19, 14},   // non-cubic, odd and even, views larger
                        {13, 21, 15, 11, 8},   // views smaller than the volume
                        {1, 7, 5, 6, 3}};      // degenerate thin volume
  std::uint64_t seed = 1;
  for (const auto& c : cases) {
    const Array3 x = random_array(c.nx, c.ny, c.nz, voxel, seed++);
    Array3 y =
        random_array(c.view_nx, c.view_ny, static_cast<std::int64_t>(g.size()), voxel, seed++);
    const Array3 ax = forward_project(x, g, c.view_nx, c.view_ny, kCpu);
    const Array3 aty = back_project(y, g, c.nx, c.ny, c.nz, kCpu);
    ASSERT_EQ(aty.nx(), c.nx);
    ASSERT_EQ(aty.nz(), c.nz);
    EXPECT_DOUBLE_EQ(aty.voxel_size.x, voxel);
    const double lhs = dot(ax, y), rhs = dot(x, aty);
    EXPECT_GT(lhs, 0.0);
    EXPECT_NEAR(lhs, rhs, 1e-4 * std::abs(lhs))
        << c.nx << "x" << c.ny << "x" << c.nz << " views " << c.view_nx << "x" << c.view_ny;
    // Per view too, so one view's error cannot hide in the sum.
    for (std::size_t k = 0; k < g.size(); ++k) {
      const TiltGeometry one{g[k]};
      Array3 yk(c.view_nx, c.view_ny, 1);
      yk.voxel_size = y.voxel_size;
      std::copy(y.slice(static_cast<std::int64_t>(k)),
                y.slice(static_cast<std::int64_t>(k)) + c.view_nx * c.view_ny, yk.data());
      const double l = dot(forward_project(x, one, c.view_nx, c.view_ny, kCpu), yk);
      const double r = dot(x, back_project(yk, one, c.nx, c.ny, c.nz, kCpu));
      EXPECT_NEAR(l, r, 1e-4 * std::max(std::abs(l), 1e-3)) << "view " << k;
    }
  }
}

TEST(Projector, IsLinear) {
  const TiltGeometry g = general_geometry();
  const Array3 a = random_array(15, 10, 12, 0.5, 11), b = random_array(15, 10, 12, 0.5, 12);
  Array3 c = a;
  for (std::size_t i = 0; i < c.size(); ++i) c.data()[i] = 2.0f * a.data()[i] - 0.5f * b.data()[i];
  const Array3 pa = forward_project(a, g, 14, 11, kCpu), pb = forward_project(b, g, 14, 11, kCpu);
  const Array3 pc = forward_project(c, g, 14, 11, kCpu);
  double peak = 0, err = 0;
  for (std::size_t i = 0; i < pc.size(); ++i) {
    peak = std::max(peak, std::abs(static_cast<double>(pc.data()[i])));
    err = std::max(err, std::abs(pc.data()[i] - (2.0 * pa.data()[i] - 0.5 * pb.data()[i])));
  }
  EXPECT_LT(err, 1e-5 * peak);
}

TEST(Projector, ResultDoesNotDependOnTheThreadCount) {
  const TiltGeometry g = general_geometry();
  const Array3 x = random_array(18, 13, 11, 0.3, 21);
  const Array3 y = random_array(16, 15, static_cast<std::int64_t>(g.size()), 0.3, 22);
  const int saved = num_threads();
  set_num_threads(1);
  const Array3 f1 = forward_project(x, g, 16, 15, kCpu), b1 = back_project(y, g, 18, 13, 11, kCpu);
  set_num_threads(3);
  const Array3 f3 = forward_project(x, g, 16, 15, kCpu), b3 = back_project(y, g, 18, 13, 11, kCpu);
  set_num_threads(saved);
  EXPECT_EQ(f1.vector(), f3.vector());
  EXPECT_EQ(b1.vector(), b3.vector());
}

// Sets AET_CPU_PROJECTOR for one scope (restores the previous value).
class CpuWalk {
 public:
  explicit CpuWalk(const char* walk) {
    if (const char* old = std::getenv("AET_CPU_PROJECTOR")) saved_ = old, had_ = true;
    ::setenv("AET_CPU_PROJECTOR", walk, 1);
  }
  ~CpuWalk() {
    if (had_)
      ::setenv("AET_CPU_PROJECTOR", saved_.c_str(), 1);
    else
      ::unsetenv("AET_CPU_PROJECTOR");
  }
  CpuWalk(const CpuWalk&) = delete;
  CpuWalk& operator=(const CpuWalk&) = delete;

 private:
  std::string saved_;
  bool had_ = false;
};

// The vector walks (AVX2, AVX-512) of the CPU pair are the scalar walk's operations lane by lane:
// the same bits for rays along every axis, views with two in-plane weights, single-axis views
// (one weight) along z and along x, shifted views whose rays leave the volume, and rows whose
// length is no multiple of the vector width.
TEST(Projector, VectorWalksGiveTheScalarBits) {
  TiltGeometry g = general_geometry();
  for (int t = -72; t <= 72; t += 8)
    g.push_back(ViewGeometry::from_tilt(t, Vec2(0.11 * t / 8.0, -0.9 + 0.05 * t / 8.0)));
  g.push_back(ViewGeometry::from_tilt(30, Vec2(6.0, 0.0)));  // rays past the volume's edge
  const Case cases[] = {{37, 29, 33, 41, 35}, {24, 24, 24, 24, 24}, {9, 40, 11, 7, 45}};
  std::uint64_t seed = 31;
  int compared = 0;
  for (const char* walk : {"avx2", "avx512"}) {
    if (!detail::cpu_projector_has(walk)) continue;
    for (const auto& c : cases) {
      Array3 x = random_array(c.nx, c.ny, c.nz, 0.4, seed);
      for (std::size_t e = 0; e < x.size(); e += 7) x.data()[e] = -x.data()[e];
      const Array3 y =
          random_array(c.view_nx, c.view_ny, static_cast<std::int64_t>(g.size()), 0.4, seed + 1);
      Array3 f_scalar, b_scalar, f_vector, b_vector;
      {
        const CpuWalk scope("scalar");
        f_scalar = detail::forward_project_cpu(x, g, c.view_nx, c.view_ny);
        b_scalar = detail::back_project_cpu(y, g, c.nx, c.ny, c.nz);
      }
      {
        const CpuWalk scope(walk);
        f_vector = detail::forward_project_cpu(x, g, c.view_nx, c.view_ny);
        b_vector = detail::back_project_cpu(y, g, c.nx, c.ny, c.nz);
      }
      EXPECT_EQ(f_vector.vector(), f_scalar.vector())
          << walk << " forward, " << c.nx << "x" << c.ny;
      EXPECT_EQ(b_vector.vector(), b_scalar.vector()) << walk << " back, " << c.nx << "x" << c.ny;
      ++compared;
    }
  }
  if (compared == 0)
    GTEST_SKIP() << "no vector walk to compare: this CPU has neither AVX2 nor AVX-512 (x86-64), so "
                    "the projector runs the scalar walk only";
}

// AET_CPU_PROJECTOR naming no walk is refused with a message that names the variable; the
// scalar walk is always there.
TEST(Projector, UnknownCpuWalkIsRefused) {
  EXPECT_TRUE(detail::cpu_projector_has("scalar"));
  EXPECT_THROW(detail::cpu_projector_has("avx1024"), InputError);
  {
    const CpuWalk scope("scalar");
    EXPECT_EQ(detail::cpu_projector_walk(), "scalar");
  }
  const CpuWalk scope("avx1024");
  EXPECT_THROW(detail::cpu_projector_walk(), InputError);
  try {
    detail::forward_project_cpu(random_array(4, 4, 4, 0.4, 1), general_geometry(), 4, 4);
    FAIL() << "an unknown walk was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("AET_CPU_PROJECTOR"), std::string::npos) << e.what();
  }
}

// A single bright voxel lands where the convention says: (u, v, w) = R p + shift, pixel centre
// (i - nx/2) a. The projection of a point is spread over at most two pixels per axis, so its
// centroid is within a fraction of a pixel of the prediction.
void expect_point_lands(const ViewGeometry& view, std::int64_t ix, std::int64_t iy, std::int64_t iz,
                        double predicted_u, double predicted_v) {
  const double a = 0.4;
  const std::int64_t n = 21, vn = 24;
  Array3 vol(n, n, n);
  vol.voxel_size = VoxelSize{a, a, a};
  vol(ix, iy, iz) = 1.0f;
  const Array3 p = forward_project(vol, TiltGeometry{view}, vn, vn, kCpu);
  double s = 0, su = 0, sv = 0, best = -1;
  std::int64_t bi = 0, bj = 0;
  for (std::int64_t j = 0; j < vn; ++j)
    for (std::int64_t i = 0; i < vn; ++i) {
      const double w = p(i, j, 0);
      s += w;
      su += w * (i - vn / 2) * a;
      sv += w * (j - vn / 2) * a;
      if (w > best) best = w, bi = i, bj = j;
    }
  ASSERT_GT(s, 0.5);
  EXPECT_NEAR(su / s, predicted_u, 0.35 * a);
  EXPECT_NEAR(sv / s, predicted_v, 0.35 * a);
  EXPECT_EQ(bi, vn / 2 + std::lround(predicted_u / a));
  EXPECT_EQ(bj, vn / 2 + std::lround(predicted_v / a));
}

TEST(Projector, PointVoxelLandsAtThePredictedPixel) {
  const double a = 0.4, c30 = std::cos(M_PI / 6), s30 = std::sin(M_PI / 6);
  // Single-axis tilt of 30 degrees: u = x cos(theta) - z sin(theta), v = y.
  {
    const std::int64_t ix = 10 + 5, iy = 10 - 3, iz = 10 - 4;  // p = (5, -3, -4) voxels
    const double x = 5 * a, y = -3 * a, z = -4 * a;
    expect_point_lands(ViewGeometry::from_tilt(30), ix, iy, iz, x * c30 - z * s30, y);
  }
  // General Euler angles and a shift: the prediction comes from ViewGeometry::map.
  const Euler eulers[] = {{20, 35, -15}, {-70, -55, 40}, {0, 0, 0}};
  for (const auto& e : eulers) {
    const ViewGeometry view = ViewGeometry::from_euler(e, Vec2(0.8, -0.4));
    const std::int64_t ix = 13, iy = 6, iz = 12;
    const Vec3 q = view.map(Vec3((ix - 10) * a, (iy - 10) * a, (iz - 10) * a));
    expect_point_lands(view, ix, iy, iz, q.x(), q.y());
  }
}

TEST(Projector, LineIntegralsAreInVoxelUnits) {
  // A constant volume of value 1: the central ray at zero tilt crosses nz voxels, and at 30
  // degrees (still through the full depth) nz / cos(30).
  Array3 vol(20, 6, 20, 1.0f);
  vol.voxel_size = VoxelSize{0.5, 0.5, 0.5};
  const Array3 p0 = forward_project(vol, {ViewGeometry::from_tilt(0)}, 20, 6, kCpu);
  EXPECT_NEAR(p0(10, 3, 0), 20.0, 1e-4);
  const Array3 p30 = forward_project(vol, {ViewGeometry::from_tilt(30)}, 20, 6, kCpu);
  EXPECT_NEAR(p30(10, 3, 0), 20.0 / std::cos(M_PI / 6), 0.6);
}

TEST(Projector, RejectsBadInputs) {
  Array3 vol(8, 8, 8, 1.0f);
  vol.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  EXPECT_THROW(forward_project(vol, {}, 8, 8, kCpu), InputError);
  EXPECT_THROW(forward_project(vol, {ViewGeometry{}}, 0, 8, kCpu), InputError);
  Device cuda;
  cuda.kind = DeviceKind::cuda;
  EXPECT_THROW(forward_project(vol, {ViewGeometry{}}, 8, 8, cuda), InputError);
  Array3 views(8, 8, 2);
  views.voxel_size = vol.voxel_size;
  EXPECT_THROW(back_project(views, {ViewGeometry{}}, 8, 8, 8, kCpu), InputError);
  ViewGeometry sheared;
  sheared.R(0, 1) = 0.5;
  EXPECT_THROW(forward_project(vol, {sheared}, 8, 8, kCpu), InputError);
}

void expect_iterative_recovers_atoms(Algorithm algorithm, int iterations) {
  const test::SimulatedParticle& s = small_particle();
  ReconOptions opt;
  opt.algorithm = algorithm;
  opt.iterations = iterations;
  int calls = 0;
  opt.on_iteration = [&](int it, double r1, double) {
    EXPECT_EQ(it, ++calls);
    EXPECT_TRUE(std::isfinite(r1));
  };
  const ReconResult r = reconstruct(s.series.views, s.geometry, opt);
  ASSERT_EQ(r.r1.size(), static_cast<std::size_t>(iterations));
  EXPECT_EQ(calls, iterations);
  EXPECT_EQ(r.volume.nx(), 40);
  EXPECT_EQ(r.volume.nz(), 40);
  EXPECT_DOUBLE_EQ(r.volume.voxel_size.x, s.pixel);
  EXPECT_LT(r.r1.back(), r.r1.front() / 3) << algorithm_name(algorithm);
  // Monotone up to small wiggles.
  for (std::size_t k = 1; k < r.r1.size(); ++k) EXPECT_LE(r.r1[k], r.r1[k - 1] * 1.02);
  float lowest = 0;
  for (float x : r.volume.vector()) lowest = std::min(lowest, x);
  EXPECT_GE(lowest, 0.0f);  // positivity
  const double found = fraction_of_atoms_found(r.volume, s.model, 0.5);
  std::printf("%s: R1 %.4f -> %.4f, %.0f%% of atoms within 0.5 A\n", algorithm_name(algorithm),
              r.r1.front(), r.r1.back(), 100 * found);
  EXPECT_GE(found, 0.9) << algorithm_name(algorithm);
}

TEST(Reconstruct, ResireRecoversTheAtomsOfASimulatedParticle) {
  expect_iterative_recovers_atoms(Algorithm::resire, 30);
}

TEST(Reconstruct, SirtRecoversTheAtomsOfASimulatedParticle) {
  expect_iterative_recovers_atoms(Algorithm::sirt, 30);
}

TEST(Reconstruct, FbpCorrelatesWithTheIdealVolume) {
  const test::SimulatedParticle& s = small_particle();
  ReconOptions opt;
  opt.algorithm = Algorithm::fbp;
  opt.filter = FbpFilter::hann;
  const ReconResult r = reconstruct(s.series.views, s.geometry, opt);
  ASSERT_EQ(r.r1.size(), 1u);
  // The reference: the truth's Gaussian atoms, widened by the probe as the views see them.
  phantoms::ImagingModel im;
  phantoms::GaussianAtoms atoms = phantoms::gaussian_atoms(s.model, im);
  for (auto& sg : atoms.sigma) sg = std::sqrt(sg * sg + im.probe_sigma * im.probe_sigma);
  const Array3 truth = phantoms::ideal_volume(atoms, 40, 40, 40, s.pixel);
  const double c = correlation(r.volume, truth);
  double sum_fbp = 0, sum_truth = 0;
  for (float x : r.volume.vector()) sum_fbp += x;
  for (float x : truth.vector()) sum_truth += x;
  std::printf("fbp: correlation %.3f with the ideal volume, intensity ratio %.3f\n", c,
              sum_fbp / sum_truth);
  EXPECT_GT(c, 0.8);
  // Intensity scale: the FBP volume integrates to about the truth's total weight.
  EXPECT_NEAR(sum_fbp / sum_truth, 1.0, 0.25);
}

// Momentum (--accelerate) on data from the analytic simulator: 40 accelerated iterations fit
// better than 160 plain ones (measured R1 ratios in docs/reconstruction.md), the volume stays
// positive and the atoms are found.
TEST(Reconstruct, AcceleratedResireConvergesFaster) {
  const test::SimulatedParticle& s = small_particle();
  ReconOptions plain;
  plain.iterations = 160;
  ReconOptions fast;
  fast.iterations = 40;
  fast.accelerate = true;
  const ReconResult a = reconstruct(s.series.views, s.geometry, plain);
  const ReconResult b = reconstruct(s.series.views, s.geometry, fast);
  std::printf("R1: 160 plain %.4f, 40 accelerated %.4f\n", a.r1.back(), b.r1.back());
  ASSERT_EQ(b.r1.size(), 40u);
  EXPECT_LT(b.r1.back(), a.r1.back());
  float lowest = 0;
  for (float x : b.volume.vector()) lowest = std::min(lowest, x);
  EXPECT_GE(lowest, 0.0f);
  EXPECT_GE(fraction_of_atoms_found(b.volume, s.model, 0.5), 0.9);
  // The reported R factors are those of the returned volume (the last constrained iterate).
  const Array3 p =
      forward_project(b.volume, s.geometry, s.series.views.nx(), s.series.views.ny(), kCpu);
  EXPECT_NEAR(r1_factor(s.series.views, p), b.r1.back(), 1e-6);
}

// Plain RESIRE has no state besides the volume: 12 iterations, then 13 more started from the
// result, are the same solve as 25 at once (--initial continues a reconstruction).
TEST(Reconstruct, StartingVolumeContinuesTheSolve) {
  const test::SimulatedParticle& s = small_particle();
  for (Algorithm alg : {Algorithm::resire, Algorithm::sirt}) {
    SCOPED_TRACE(algorithm_name(alg));
    ReconOptions opt;
    opt.algorithm = alg;
    opt.iterations = 25;
    const ReconResult whole = reconstruct(s.series.views, s.geometry, opt);
    opt.iterations = 12;
    const ReconResult first = reconstruct(s.series.views, s.geometry, opt);
    opt.iterations = 13;
    opt.initial = &first.volume;
    const ReconResult rest = reconstruct(s.series.views, s.geometry, opt);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < whole.volume.size(); ++i) {
      const double d = double(rest.volume.data()[i]) - whole.volume.data()[i];
      num += d * d;
      den += double(whole.volume.data()[i]) * whole.volume.data()[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-6);
    ASSERT_EQ(rest.r1.size(), 13u);
    EXPECT_NEAR(rest.r1.back(), whole.r1.back(), 1e-6);
    EXPECT_NEAR(rest.r1.front(), whole.r1[12], 1e-6);
  }
}

// Sub-pixel shifts applied to the views in Fourier space: with the true geometry of a series
// shifted by up to 1.5 pixels, the fit is much closer to that of an unshifted series (measured
// R1 0.062 -> 0.028 on a larger particle, docs/reconstruction.md); whole-pixel shifts are left
// alone (the same solve either way).
TEST(Reconstruct, FourierShiftRemovesTheInterpolationBlurOfShiftedViews) {
  const test::SimulatedParticle& s = small_particle();
  phantoms::SimulationSpec sim;
  sim.pixel = s.pixel;
  sim.nx = sim.ny = 40;
  sim.nominal = s.series.nominal;
  sim.shift_max_px = 1.5;
  sim.seed = 17;
  const phantoms::TiltSeries shifted = phantoms::simulate_tilt_series(s.model, sim, kCpu);
  ReconOptions opt;
  opt.iterations = 40;
  opt.accelerate = true;
  const double plain = reconstruct(shifted.views, shifted.truth, opt).r1.back();
  opt.fourier_shift = true;
  const ReconResult fs = reconstruct(shifted.views, shifted.truth, opt);
  opt.fourier_shift = false;
  const double unshifted = reconstruct(s.series.views, s.series.truth, opt).r1.back();
  std::printf("R1: unshifted %.4f, shifted %.4f, shifted with Fourier shift %.4f\n", unshifted,
              plain, fs.r1.back());
  EXPECT_LT(fs.r1.back(), 0.6 * plain);
  EXPECT_GE(fraction_of_atoms_found(fs.volume, s.model, 0.5), 0.9);

  TiltGeometry whole = s.series.truth;
  for (std::size_t k = 0; k < whole.size(); ++k)
    whole[k].shift = Vec2(double(k % 3) - 1.0, 0.0) * s.pixel;
  opt.iterations = 5;
  const ReconResult a = reconstruct(s.series.views, whole, opt);
  opt.fourier_shift = true;
  const ReconResult b = reconstruct(s.series.views, whole, opt);
  EXPECT_EQ(a.volume.vector(), b.volume.vector());
}

TEST(Reconstruct, RejectsBadStartingVolumesAndMomentumOutsideResireSirt) {
  const test::SimulatedParticle& s = small_particle();
  ReconOptions opt;
  opt.iterations = 2;
  Array3 wrong(40, 40, 39);
  opt.initial = &wrong;
  EXPECT_THROW(reconstruct(s.series.views, s.geometry, opt), InputError);
  Array3 nan(40, 40, 40);
  nan.data()[77] = std::nanf("");
  opt.initial = &nan;
  EXPECT_THROW(reconstruct(s.series.views, s.geometry, opt), InputError);
  Array3 good(40, 40, 40);
  opt.initial = &good;
  for (Algorithm alg : {Algorithm::fbp, Algorithm::genfire}) {
    opt.algorithm = alg;
    EXPECT_THROW(reconstruct(s.series.views, s.geometry, opt), InputError) << algorithm_name(alg);
    ReconOptions fast;
    fast.algorithm = alg;
    fast.accelerate = true;
    EXPECT_THROW(reconstruct(s.series.views, s.geometry, fast), InputError) << algorithm_name(alg);
  }
}

TEST(Reconstruct, SupportForcesVoxelsToZero) {
  const test::SimulatedParticle& s = small_particle();
  Array3 support(40, 40, 40, 1.0f);
  for (std::int64_t z = 0; z < 40; ++z)
    for (std::int64_t y = 0; y < 40; ++y)
      for (std::int64_t x = 0; x < 20; ++x) support(x, y, z) = 0.0f;
  ReconOptions opt;
  opt.iterations = 2;
  opt.support = &support;
  const ReconResult r = reconstruct(s.series.views, s.geometry, opt);
  double masked = 0, kept = 0;
  for (std::size_t i = 0; i < r.volume.size(); ++i)
    (support.data()[i] == 0 ? masked : kept) += std::abs(r.volume.data()[i]);
  EXPECT_EQ(masked, 0.0);
  EXPECT_GT(kept, 0.0);
}

// Extended objects (ReconOptions::extended): the solve is as wide as the steepest view's rays reach
// within the depth. Single axis: x = (u + z sin t) / cos t at the field's edge and the depth's
// face.
TEST(Reconstruct, ExtendedObjectExtentReachesTheSteepestRays) {
  TiltGeometry g;
  for (int t = -60; t <= 60; t += 10) g.push_back(ViewGeometry::from_tilt(t));
  // (32 + 32 sin 60) / cos 60 = 119.4 voxels each side: 239, even like 64: 240.
  VolumeExtent e = extended_object_extent(g, 64, 16, 0.5, 64, 16, 64);
  EXPECT_EQ(e.nx, 240);
  EXPECT_EQ(e.ny, 16);  // a tilt about y never reaches beyond the views' height
  // A view shifted by 1.5 A (3 px) along u sees 3 px further on one side: (35 + 27.7) / 0.5.
  g.back().shift = Vec2(1.5, 0);
  e = extended_object_extent(g, 64, 16, 0.5, 64, 16, 64);
  EXPECT_EQ(e.nx, 252);
  // An 80-degree view would need 11 widths; the solve stops at 4.
  g.push_back(ViewGeometry::from_tilt(80));
  EXPECT_EQ(extended_object_extent(g, 64, 16, 0.5, 64, 16, 64).nx, 256);
}

// A film of atoms 80 A wide seen through a 24 A field of view, simulated by the analytic projector.
// Solved in a volume as wide as the field, the material the tilted views see beside the field is
// put into the field's vacuum; solved as an extended object, the field keeps its own film.
TEST(Reconstruct, ExtendedObjectKeepsAFilmInsideItsThickness) {
  AtomModel film;
  Rng rng(5);
  for (double x = -40; x <= 40; x += 2.5)
    for (double y = -3.75; y <= 3.75; y += 2.5)
      for (double z = -3.75; z <= 3.75; z += 2.5)
        film.add("Pt",
                 Vec3(x + 0.3 * rng.normal(), y + 0.3 * rng.normal(), z + 0.3 * rng.normal()));
  const phantoms::ImagingModel im;
  TiltGeometry g;
  for (int t = -60; t <= 60; t += 5) g.push_back(ViewGeometry::from_tilt(t));
  const double pixel = 0.5;
  const Array3 views =
      phantoms::project_atoms(phantoms::gaussian_atoms(film, im), g, 48, 16, pixel, im, kCpu);
  ReconOptions opt;
  opt.iterations = 30;
  const ReconResult plain = reconstruct(views, g, opt);
  opt.extended = true;
  const ReconResult ext = reconstruct(views, g, opt);
  ASSERT_EQ(ext.volume.nx(), 48);
  ASSERT_EQ(ext.volume.nz(), 48);
  EXPECT_GT(ext.full_volume.nx(), 48);
  EXPECT_EQ(ext.full_volume.nz(), 48);
  // Share of the field's mass well outside the film (|z| > 8 A, 16 voxels from the centre; the
  // missing wedge stretches the atoms along z).
  const auto outside = [](const Array3& v) {
    double out = 0, all = 0;
    for (std::int64_t z = 0; z < v.nz(); ++z)
      for (std::int64_t y = 0; y < v.ny(); ++y)
        for (std::int64_t x = 0; x < v.nx(); ++x) {
          all += v(x, y, z);
          if (std::abs(z - v.nz() / 2) > 16) out += v(x, y, z);
        }
    return out / all;
  };
  const double f_plain = outside(plain.volume), f_ext = outside(ext.volume);
  const Array3 ideal =
      phantoms::ideal_volume(phantoms::gaussian_atoms(film, im), 48, 16, 48, pixel);
  const double c_plain = correlation(plain.volume, ideal), c_ext = correlation(ext.volume, ideal);
  std::printf(
      "[ recon    ] film: mass outside the film %.3f (field-sized) %.3f (extended); "
      "R1 %.4f / %.4f; correlation with the ideal volume %.3f / %.3f\n",
      f_plain, f_ext, plain.r1.back(), ext.r1.back(), c_plain, c_ext);
  // Measured: 0.277 -> 0.221 outside, R1 0.242 -> 0.104, correlation 0.548 -> 0.688.
  EXPECT_LT(f_ext, 0.85 * f_plain);
  EXPECT_LT(ext.r1.back(), 0.5 * plain.r1.back());
  EXPECT_GT(c_ext, c_plain + 0.1);
  // The field-of-view result is the centre of the whole solve.
  const std::int64_t ox = ext.full_volume.nx() / 2 - 24;
  EXPECT_EQ(ext.volume(0, 3, 20), ext.full_volume(ox, 3, 20));
  EXPECT_EQ(ext.volume(47, 9, 30), ext.full_volume(ox + 47, 9, 30));
}

TEST(RFactor, DefinitionAndScaleInvariance) {
  Array3 b(4, 1, 1), p(4, 1, 1);
  const float bv[] = {1, 2, 3, 4}, pv[] = {2, 4, 6, 8};
  std::copy(bv, bv + 4, b.data());
  std::copy(pv, pv + 4, p.data());
  double scale = 0;
  EXPECT_NEAR(r1_factor(b, p, &scale), 0.0, 1e-12);
  EXPECT_NEAR(scale, 0.5, 1e-12);
  EXPECT_NEAR(r2_factor(b, p), 0.0, 1e-12);
  p.data()[3] = 0;  // l = <b,p>/<p,p> = 28/56 = 0.5; residual |4 - 0| = 4 of sum 10
  EXPECT_NEAR(r1_factor(b, p, &scale), 0.4, 1e-12);
  EXPECT_NEAR(r2_factor(b, p), 16.0 / 30.0, 1e-12);
  EXPECT_THROW(r1_factor(b, Array3(3, 1, 1)), InputError);
}

// noise_r1 reads the R1 that pixel noise alone leaves off the views: atom-like blobs (sd 3 px)
// with Poisson noise at 0.3 to 100 counts at their peaks, against the true sum|noise| / sum|b|
// (the noise known, as the blobs are). A noiseless view gives almost none.
TEST(RFactor, TheViewsOwnNoiseLevelIsEstimated) {
  const std::int64_t n = 64, nv = 6;
  Array3 clean(n, n, nv, 0.0f);
  Rng place(3);
  for (std::int64_t k = 0; k < nv; ++k)
    for (int a = 0; a < 40; ++a) {
      const double cx = place.uniform(8, n - 8), cy = place.uniform(8, n - 8);
      for (std::int64_t y = 0; y < n; ++y)
        for (std::int64_t x = 0; x < n; ++x)
          clean(x, y, k) += static_cast<float>(
              std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * 3.0 * 3.0)));
    }
  EXPECT_LT(noise_r1(clean), 0.03);  // measured 0.023: the blobs' own curvature
  for (const double peak : {0.3, 3.0, 100.0}) {
    Rng rng(11);
    Array3 noisy = clean;
    double dn = 0, sb = 0;
    for (std::size_t i = 0; i < noisy.size(); ++i) {
      const double mean = peak * clean.data()[i];
      const double counts = static_cast<double>(rng.poisson(mean));
      noisy.data()[i] = static_cast<float>(counts);
      dn += std::abs(counts - mean);
      sb += counts;
    }
    const double truth = dn / sb;
    // Measured: 1.16 against 1.39 at 0.3 counts (shot noise of a fraction of a count is not
    // Gaussian), 0.470 against 0.486 at 3, 0.087 against 0.084 at 100.
    EXPECT_NEAR(noise_r1(noisy), truth, (peak < 1 ? 0.2 : 0.05) * truth) << peak;
  }
}

TEST(Reconstruct, RejectsBadInputs) {
  Array3 views(8, 8, 3, 1.0f);
  views.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  const TiltGeometry three{ViewGeometry::from_tilt(-10), ViewGeometry::from_tilt(0),
                           ViewGeometry::from_tilt(10)};
  ReconOptions opt;
  try {
    reconstruct(views, TiltGeometry(three.begin(), three.begin() + 2), opt);
    FAIL() << "angle count mismatch accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find('3'), std::string::npos) << m;
    EXPECT_NE(m.find('2'), std::string::npos) << m;
  }
  Array3 nan_views = views;
  nan_views(2, 3, 1) = std::nanf("");
  EXPECT_THROW(reconstruct(nan_views, three, opt), InputError);
  ReconOptions bad = opt;
  bad.iterations = 0;
  EXPECT_THROW(reconstruct(views, three, bad), InputError);
  bad = opt;
  bad.step = 0;
  EXPECT_THROW(reconstruct(views, three, bad), InputError);
  bad = opt;
  bad.step = -1;
  EXPECT_THROW(reconstruct(views, three, bad), InputError);
  Array3 support(8, 8, 7, 1.0f);
  bad = opt;
  bad.support = &support;
  EXPECT_THROW(reconstruct(views, three, bad), InputError);
  bad = opt;
  bad.nx = -4;
  EXPECT_THROW(reconstruct(views, three, bad), InputError);
  // A CUDA device that is not there (no CUDA in the build, or none visible) is bad input.
  if (cuda_devices().empty()) {
    bad = opt;
    bad.device.kind = DeviceKind::cuda;
    EXPECT_THROW(reconstruct(views, three, bad), InputError);
  }
  EXPECT_EQ(parse_algorithm("genfire"), Algorithm::genfire);
  EXPECT_THROW(parse_algorithm("art"), InputError);
  EXPECT_EQ(parse_algorithm("sirt"), Algorithm::sirt);
  EXPECT_THROW(parse_fbp_filter("butterworth"), InputError);
  // FBP ignores the iteration count.
  bad = opt;
  bad.algorithm = Algorithm::fbp;
  bad.iterations = 0;
  EXPECT_NO_THROW(reconstruct(views, three, bad));
}

}  // namespace
}  // namespace aet
