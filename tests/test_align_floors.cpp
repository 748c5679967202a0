// Accuracy floors of tilt-series alignment (slow): shifts, the tilt axis, per-view angles, the
// effect on tracing, and a real data set. Each test simulates its own small series with the
// analytic projector of phantoms/ (independent of the reconstruction projector) and compares the
// refined geometry with TiltSeries::truth modulo the unobservable gauges (a 3D translation and a
// rotation of the object). Measured numbers are in docs/alignment.md.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/analysis/evaluate.hpp"
#include "aet/core/error.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/recon/solvers.hpp"
#include "aet/refine/model_refinement.hpp"
#include "aet/trace/trace.hpp"
#include "support/recon_fixtures.hpp"

namespace aet {
namespace {

using test::angle_error_deg;

const Device kCpu{};

struct Case {
  AtomModel model;
  phantoms::TiltSeries series;
  double pixel = 0.5;
};

Case make_case(int shells, double pixel, std::int64_t size, double step, double shift_px,
               double angle_sd, double axis_deg, std::uint64_t seed) {
  Case c;
  c.pixel = pixel;
  phantoms::ParticleSpec spec;
  spec.element = "Pt";
  spec.shape = phantoms::Shape::cuboctahedron;
  spec.shells = shells;
  c.model = phantoms::build_particle(spec);
  phantoms::SimulationSpec sim = test::tilt_series_spec(pixel, size, step, seed, false);
  sim.shift_max_px = shift_px;
  sim.angle_error_sd = angle_sd;
  sim.axis_rotation = axis_deg;
  c.series = phantoms::simulate_tilt_series(c.model, sim, kCpu);
  return c;
}

// RMS shift error (pixels) after removing the best 3D translation of the object.
double shift_error_px(const TiltGeometry& est, const TiltGeometry& truth, double pixel) {
  Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
  Eigen::Vector3d b = Eigen::Vector3d::Zero();
  for (std::size_t k = 0; k < est.size(); ++k) {
    const Eigen::Matrix<double, 2, 3> P = truth[k].R.topRows<2>();
    A += P.transpose() * P;
    b += P.transpose() * (est[k].shift - truth[k].shift);
  }
  const Eigen::Vector3d t = A.completeOrthogonalDecomposition().solve(b);
  double s = 0;
  for (std::size_t k = 0; k < est.size(); ++k)
    s += (est[k].shift - truth[k].shift - truth[k].R.topRows<2>() * t).squaredNorm();
  return std::sqrt(s / est.size()) / pixel;
}

TiltGeometry nominal_geometry(const std::vector<Euler>& e) {
  TiltGeometry g;
  for (const auto& x : e) g.push_back(ViewGeometry::from_euler(x));
  return g;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Floor 1: random shifts of up to +-5 px are recovered to <= 0.15 px RMS.
TEST(AlignFloors, ShiftsRecovered) {
  const auto t0 = std::chrono::steady_clock::now();
  const Case c = make_case(3, 0.5, 56, 5, 5.0, 0.0, 0.0, 101);
  AlignOptions opt;
  const AlignResult r = align_tilt_series(c.series.views, c.series.nominal, opt);
  const double before = shift_error_px(nominal_geometry(c.series.nominal), c.series.truth, c.pixel);
  const double after = shift_error_px(r.geometry, c.series.truth, c.pixel);
  std::printf(
      "floor shifts: RMS shift error %.3f px -> %.4f px (axis %.3f deg, R1 %.4f -> %.4f), %.1f s\n",
      before, after, r.tilt_axis_deg, r.r1_initial, r.r1_final, seconds_since(t0));
  EXPECT_GT(before, 1.5);
  EXPECT_LE(after, 0.15);
}

// Floor 2: a tilt axis rotated by 3 degrees in the image plane is found to <= 0.2 degrees.
TEST(AlignFloors, TiltAxisRecovered) {
  const auto t0 = std::chrono::steady_clock::now();
  const Case c = make_case(3, 0.5, 56, 5, 2.0, 0.0, 3.0, 202);
  AlignOptions opt;
  const AlignResult r = align_tilt_series(c.series.views, c.series.nominal, opt);
  const double after = shift_error_px(r.geometry, c.series.truth, c.pixel);
  std::printf("floor axis: axis %.4f deg (truth 3), shift error %.4f px, %.1f s\n", r.tilt_axis_deg,
              after, seconds_since(t0));
  EXPECT_NEAR(r.tilt_axis_deg, 3.0, 0.2);
}

// The floor-3 series: a randomly oriented Pt particle with thermal jitter, shot noise, a probe
// tail and shifts of up to 1 px; each view's angles off by `angle_sd`.
phantoms::TiltSeries angle_case(double angle_sd) {
  phantoms::ParticleSpec spec;
  spec.element = "Pt";
  spec.shape = phantoms::Shape::cuboctahedron;
  spec.shells = 3;
  spec.random_orientation = true;
  spec.jitter_sd = 0.05;
  spec.b_factor = 5.0;
  spec.seed = 310;
  const AtomModel model = phantoms::build_particle(spec);
  phantoms::SimulationSpec sim = test::tilt_series_spec(0.5, 56, 5, 303, true);
  sim.shift_max_px = 1.0;
  sim.angle_error_sd = angle_sd;
  return phantoms::simulate_tilt_series(model, sim, kCpu);
}

// Floor 3: per-view angle errors of sd 0.5 degrees reduced to <= 0.15 degrees RMS, with shifts
// (up to 1 px) refined alongside. The particle is randomly oriented, with thermal jitter, shot
// noise and a probe tail that the refined atomic model (one Gaussian per atom) cannot represent.
// (In its cubic orientation a perfect cuboctahedron is seen along zone axes at 0 and +-45 degrees,
// where its atom columns make a view's tilt away from the axis invisible to first order: those
// two views keep their error, 0.186 degrees RMS over the series; docs/alignment.md.)
TEST(AlignFloors, AnglesRecovered) {
  const auto t0 = std::chrono::steady_clock::now();
  const phantoms::TiltSeries series = angle_case(0.5);
  AlignOptions opt;
  opt.refine_angles = true;
  const AlignResult r = align_tilt_series(series.views, series.nominal, opt);
  const double before = angle_error_deg(nominal_geometry(series.nominal), series.truth);
  const double after = angle_error_deg(r.geometry, series.truth);
  const double shifts = shift_error_px(r.geometry, series.truth, 0.5);
  std::printf(
      "floor angles: RMS angle error %.3f deg -> %.3f deg, shift error %.4f px, model R1 %.4f -> "
      "%.4f (%zu atoms), %.1f s\n",
      before, after, shifts, r.model_r1_initial, r.model_r1_final, r.model_atoms,
      seconds_since(t0));
  EXPECT_GT(before, 0.7);
  EXPECT_LE(after, 0.15);
  EXPECT_LE(shifts, 0.15);
  EXPECT_LT(r.model_r1_final, r.model_r1_initial);
}

// Views logged far off (two tilts 15 degrees out, one view 10 degrees about another axis) on top
// of the floor-3 errors: the grid search of the views' rotations brings them within the local
// fit's reach (measured 4.51 -> 0.108 degrees RMS; 2.43 without the search).
TEST(AlignFloors, ViewsLoggedFarOffAreFound) {
  const auto t0 = std::chrono::steady_clock::now();
  const phantoms::TiltSeries series = angle_case(0.5);
  std::vector<Euler> logged = series.nominal;
  logged[8].theta += 15;
  logged[20].theta -= 15;
  logged[14].psi += 10;
  AlignOptions opt;
  opt.refine_angles = true;
  opt.angle_search_deg = 20;
  const AlignResult r = align_tilt_series(series.views, logged, opt);
  const double before = angle_error_deg(nominal_geometry(logged), series.truth);
  const double after = angle_error_deg(r.geometry, series.truth);
  ASSERT_EQ(r.search_change_deg.size(), logged.size());
  std::printf(
      "far-off views: RMS angle error %.3f deg -> %.3f deg; the search moved views 8, 14, 20 by "
      "%.2f, %.2f, %.2f deg, %.1f s\n",
      before, after, r.search_change_deg[8], r.search_change_deg[14], r.search_change_deg[20],
      seconds_since(t0));
  EXPECT_GT(before, 3.0);
  EXPECT_LE(after, 0.15);
  for (int k : {8, 20}) EXPECT_GT(r.search_change_deg[k], 10.0);
}

// Floor 4: the chain on a misaligned series (alignment with per-view angles, as aet pipeline
// runs it; RESIRE, tracing, refinement of the atoms against the views) finds every atom the same
// chain finds on the same series simulated without misalignment, with at most 1.2x its RMSD.
// Shot noise and a probe tail keep the atom model (one Gaussian per atom) from fitting exactly.
// Measured 1.73 pm against 1.61 pm (as traced, before refinement, measured before the angle
// search was added: 3.83 against 3.01 pm).
TEST(AlignFloors, PipelineOnAMisalignedSeriesMatchesTheAlignedOne) {
  const auto t0 = std::chrono::steady_clock::now();
  phantoms::ParticleSpec spec;
  spec.element = "Pt";
  spec.shape = phantoms::Shape::cuboctahedron;
  spec.shells = 4;
  spec.b_factor = 5.0;
  const AtomModel model = phantoms::build_particle(spec);
  phantoms::SimulationSpec sim = test::tilt_series_spec(0.5, 64, 4, 404, true);
  const phantoms::TiltSeries ideal = phantoms::simulate_tilt_series(model, sim, kCpu);
  sim.shift_max_px = 4;
  sim.axis_rotation = 2;
  sim.angle_error_sd = 0.5;
  const phantoms::TiltSeries series = phantoms::simulate_tilt_series(model, sim, kCpu);
  auto chain = [&](const Array3& views, const TiltGeometry& g) {
    ReconOptions ro;
    ro.iterations = 50;
    const AtomModel traced = trace_atoms(reconstruct(views, g, ro).volume, TraceOptions{});
    ModelRefineOptions mo;
    mo.refine_shifts = mo.refine_angles = false;
    return evaluate(refine_atomic_model(views, g, traced, mo).model, model);
  };
  const EvaluationResult reference = chain(ideal.views, ideal.truth);
  AlignOptions opt;
  opt.refine_angles = true;
  const AlignResult r = align_tilt_series(series.views, series.nominal, opt);
  const EvaluationResult aligned = chain(r.views, r.geometry);
  std::printf(
      "floor tracing: recall %.3f / %.3f, precision %.3f, RMSD %.2f pm misaligned / %.2f pm "
      "without misalignment (axis %.3f deg), %.1f s\n",
      aligned.recall, reference.recall, aligned.precision, aligned.rmsd_pm, reference.rmsd_pm,
      r.tilt_axis_deg, seconds_since(t0));
  EXPECT_GE(aligned.recall, reference.recall);
  EXPECT_GE(aligned.precision, 0.99);
  EXPECT_LE(aligned.rmsd_pm, 1.2 * reference.rmsd_pm);
}

// Floor 5: on the real Ta film example (already aligned by its authors) alignment does not make
// the fit worse: RESIRE with the refined geometry has R1 <= RESIRE with the given geometry.
#if AET_HAVE_SHARED_DATA
TEST(AlignFloors, RealDataNotWorse) {
  const std::string dir = std::string(AET_SHARED_DATA) + "/ta_film_example";
  ASSERT_TRUE(std::filesystem::exists(dir + "/projections.mrc") &&
              std::filesystem::exists(dir + "/angles.txt"))
      << "the real data set " << dir << " is incomplete";
  const auto t0 = std::chrono::steady_clock::now();
  Array3 views = read_mrc(dir + "/projections.mrc");
  views.voxel_size = VoxelSize{0.3216, 0.3216, 0.3216};
  const AngleFile angles = read_angles(dir + "/angles.txt", static_cast<long>(views.nz()));
  AlignOptions opt;
  opt.rounds = 3;
  // The authors' views are already background-subtracted and normalised, and a film fills the
  // field: the background model of an isolated particle does not apply.
  opt.preprocess = PreprocessOptions{false, false, false, 0.0};
  const AlignResult r = align_tilt_series(views, angles.views, opt);
  // The reconstruction alignment scores geometries with (accelerated RESIRE, cold start).
  ReconOptions ro;
  ro.iterations = 2 * opt.recon_iterations;
  ro.accelerate = true;
  const double r1_given = reconstruct(r.views, angles.geometry(), ro).r1.back();
  const double r1_refined = reconstruct(r.views, r.geometry, ro).r1.back();
  std::printf("floor real: R1 given %.5f, refined %.5f (axis %.3f deg), %.1f s\n", r1_given,
              r1_refined, r.tilt_axis_deg, seconds_since(t0));
  EXPECT_LE(r1_refined, r1_given + 1e-6);
}
#endif

}  // namespace
}  // namespace aet
