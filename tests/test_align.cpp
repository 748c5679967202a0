// Tilt-series alignment, fast checks: preprocessing, registration, coarse alignment, the common
// line, resampling and input validation (the `aet align` command: test_align_cli.cpp). Series are
// simulated with the analytic projector of phantoms/ (never the reconstruction projector). The
// accuracy floors of projection matching are in test_align_floors.cpp (slow).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/error.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "align_detail.hpp"
#include "support/align_fixtures.hpp"

namespace aet {
namespace {

using test::small_series;

double correlation(const float* a, const float* b, std::size_t n) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sa += a[i], sb += b[i], saa += double(a[i]) * a[i], sbb += double(b[i]) * b[i];
    sab += double(a[i]) * b[i];
  }
  return (sab - sa * sb / n) / std::sqrt((saa - sa * sa / n) * (sbb - sb * sb / n));
}

// RMS shift error in pixels after removing the invisible 3D translation of the object.
double shift_error_px(const std::vector<Vec2>& est, const TiltGeometry& truth, double pixel) {
  Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
  Eigen::Vector3d b = Eigen::Vector3d::Zero();
  for (std::size_t k = 0; k < est.size(); ++k) {
    const Eigen::Matrix<double, 2, 3> P = truth[k].R.topRows<2>();
    A += P.transpose() * P;
    b += P.transpose() * (est[k] - truth[k].shift);
  }
  const Eigen::Vector3d t = A.ldlt().solve(b);
  double s = 0;
  for (std::size_t k = 0; k < est.size(); ++k)
    s += (est[k] - truth[k].shift - truth[k].R.topRows<2>() * t).squaredNorm();
  return std::sqrt(s / est.size()) / pixel;
}

TEST(Preprocess, RemovesBackgroundAndHotPixels) {
  const phantoms::TiltSeries clean = small_series(0, 0, 11);
  Array3 dirty = clean.views;
  const std::int64_t nx = dirty.nx(), ny = dirty.ny();
  float peak = 0;
  for (float v : clean.views.vector()) peak = std::max(peak, v);
  // A smooth background (offset, ramp, curvature) of the order of the signal, and hot pixels.
  for (std::int64_t k = 0; k < dirty.nz(); ++k)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const double u = (x - nx / 2.0) / nx, v = (y - ny / 2.0) / ny;
        dirty(x, y, k) += static_cast<float>(
            peak * (0.3 + 0.2 * u - 0.1 * v + 0.15 * u * v + 0.2 * u * u + 0.01 * k));
      }
  const std::int64_t hot[][3] = {{5, 7, 0}, {24, 24, 3}, {30, 18, 7}, {40, 41, 12}, {20, 26, 20}};
  for (const auto& h : hot) dirty(h[0], h[1], h[2]) += 10 * peak;

  PreprocessOptions opt;
  const Array3 a = preprocess_views(dirty, opt);
  const Array3 b = preprocess_views(clean.views, opt);
  // Away from the hot pixels (which take their neighbours' median, not the lost value) the
  // preprocessed dirty views equal the preprocessed clean ones.
  double worst = 0;
  for (std::int64_t k = 0; k < a.nz(); ++k)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        bool is_hot = false;
        for (const auto& h : hot) is_hot |= h[0] == x && h[1] == y && h[2] == k;
        if (!is_hot) worst = std::max(worst, double(std::abs(a(x, y, k) - b(x, y, k))));
      }
  EXPECT_LT(worst, 0.03 * peak) << "largest difference after preprocessing";
  for (const auto& h : hot) EXPECT_LT(a(h[0], h[1], h[2]), 1.5 * peak);
  // On clean data, hot-pixel removal leaves the atoms alone.
  PreprocessOptions only_hot;
  only_hot.subtract_background = only_hot.normalise = false;
  const Array3 c = preprocess_views(clean.views, only_hot);
  for (std::size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c.data()[i], clean.views.data()[i]);
  // Normalisation equalises the totals.
  double t0 = 0, t1 = 0;
  for (std::int64_t i = 0; i < nx * ny; ++i) t0 += a.slice(0)[i], t1 += a.slice(10)[i];
  EXPECT_NEAR(t0, t1, 1e-4 * std::abs(t0));
}

TEST(Preprocess, DenoiseAndBadInput) {
  const phantoms::TiltSeries s = small_series(0, 0, 12, 36);
  PreprocessOptions opt;
  opt.denoise_sigma = 1.0;
  const Array3 d = preprocess_views(s.views, opt);
  EXPECT_GT(correlation(d.data(), s.views.data(), d.size()), 0.8);
  Array3 bad = s.views;
  bad(3, 3, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(preprocess_views(bad, PreprocessOptions{}), InputError);
  opt.denoise_sigma = -1;
  EXPECT_THROW(preprocess_views(s.views, opt), InputError);
}

TEST(Register, SubPixelShift) {
  const phantoms::TiltSeries s = small_series(0, 0, 13, 36);
  const phantoms::TiltSeries t = [] {
    // The same views moved by a known sub-pixel shift through the simulator's own geometry.
    phantoms::TiltSeries r = small_series(0, 0, 13, 36);
    return r;
  }();
  // Shift view 1 by (2.3, -1.6) px with the resampler and register it back.
  TiltGeometry g(static_cast<std::size_t>(s.views.nz()));
  for (auto& v : g) v.shift = Vec2(-2.3, 1.6) * 0.4;  // apply_alignment samples at x + shift
  const Array3 moved = apply_alignment(s.views, g, nullptr);
  const Vec2 d = detail::register_shift(s.views.slice(1), moved.slice(1), 48, 48, 10);
  EXPECT_NEAR(d.x(), -2.3, 0.15);
  EXPECT_NEAR(d.y(), 1.6, 0.15);
  (void)t;
}

TEST(Coarse, CentreOfMassRecoversShifts) {
  const phantoms::TiltSeries s = small_series(5.0, 0, 21);
  const Array3 pre = preprocess_views(s.views, PreprocessOptions{});
  TiltGeometry nominal;
  for (const auto& e : s.nominal) nominal.push_back(ViewGeometry::from_euler(e));
  const std::vector<Vec2> est = detail::coarse_shifts(pre, nominal, 12);
  std::vector<Vec2> zero(est.size(), Vec2::Zero());
  EXPECT_GT(shift_error_px(zero, s.truth, 0.4), 2.0);
  EXPECT_LE(shift_error_px(est, s.truth, 0.4), 0.5);
}

TEST(ApplyAlignment, ShiftedSeriesMatchesUnshifted) {
  const phantoms::TiltSeries shifted = small_series(4.0, 2.0, 31, 12);
  const phantoms::TiltSeries ref = small_series(0.0, 0.0, 31, 12);
  std::vector<Euler> residual;
  const Array3 out = apply_alignment(shifted.views, shifted.truth, &residual);
  ASSERT_EQ(residual.size(), ref.nominal.size());
  const std::size_t n = static_cast<std::size_t>(out.nx() * out.ny());
  for (std::int64_t k = 0; k < out.nz(); ++k) {
    EXPECT_GT(correlation(out.slice(k), ref.views.slice(k), n), 0.98) << "view " << k;
    EXPECT_NEAR(residual[k].theta, ref.nominal[k].theta, 1e-6);
    EXPECT_NEAR(residual[k].phi, 0, 1e-6);
    EXPECT_NEAR(residual[k].psi, 0, 1e-6);
  }
}

// An isolated particle has empty margins; the same views cut to their centre reach the border,
// as a film's do (its background and intensity are then left alone).
TEST(Sample, ParticleAndFilmFromTheViews) {
  const phantoms::TiltSeries s = small_series(0, 0, 51, 12);
  const SampleDetection particle = detect_sample(s.views);
  EXPECT_EQ(particle.kind, SampleKind::particle);
  EXPECT_LT(particle.border_fraction, 0.01);
  // A constant background is the particle's background, not a film.
  Array3 offset = s.views;
  for (std::size_t i = 0; i < offset.size(); ++i) offset.data()[i] += 0.3f;
  EXPECT_EQ(detect_sample(offset).kind, SampleKind::particle);
  Array3 cut(16, 16, s.views.nz());
  cut.voxel_size = s.views.voxel_size;
  for (std::int64_t k = 0; k < cut.nz(); ++k)
    for (std::int64_t y = 0; y < 16; ++y)
      for (std::int64_t x = 0; x < 16; ++x) cut(x, y, k) = s.views(x + 16, y + 16, k);
  const SampleDetection film = detect_sample(cut);
  EXPECT_EQ(film.kind, SampleKind::film);
  EXPECT_GT(film.border_fraction, 0.1);
  EXPECT_EQ(parse_sample("film"), SampleKind::film);
  EXPECT_STREQ(sample_name(SampleKind::automatic), "auto");
  EXPECT_THROW(parse_sample("slab"), InputError);
}

// A series with exact geometry costs one half-resolution check, not the rounds: the geometry comes
// back unchanged. A misaligned one fails the check and is aligned as before.
TEST(Align, AlignedSeriesIsKeptAfterTheCheck) {
  const phantoms::TiltSeries exact = small_series(0, 0, 52, 12);
  AlignOptions opt;
  opt.rounds = 2;
  const AlignResult r = align_tilt_series(exact.views, exact.nominal, opt);
  EXPECT_TRUE(r.already_aligned);
  EXPECT_TRUE(r.rounds.empty());
  EXPECT_LT(r.check_shift_px, 0.2);
  EXPECT_LT(std::abs(r.check_axis_deg), 0.1);
  for (std::size_t k = 0; k < r.geometry.size(); ++k) {
    EXPECT_EQ(r.geometry[k].shift, Vec2::Zero());
    EXPECT_LT((r.geometry[k].R - rotation_from_euler(exact.nominal[k])).norm(), 1e-12);
  }
  const phantoms::TiltSeries shifted = small_series(3.0, 0, 52, 12);
  const AlignResult s = align_tilt_series(shifted.views, shifted.nominal, opt);
  EXPECT_FALSE(s.already_aligned);
  EXPECT_GT(s.check_shift_px, 1.0);
  EXPECT_EQ(s.rounds.size(), 2u);
}

// Progress kept after each round (aet align / aet pipeline --checkpoint): a run that goes on
// after round 1 or 2 of a stopped one ends with the geometry and figures of a run never stopped.
TEST(Align, GoingOnAfterASavedRoundEndsAsARunNeverStopped) {
  const phantoms::TiltSeries s = small_series(3.0, 1.5, 53, 12);
  AlignOptions opt;
  opt.rounds = 3;
  opt.recon_iterations = 6;
  std::vector<AlignRoundState> saved;
  opt.save_round = [&](const AlignRoundState& st) { saved.push_back(st); };
  const AlignResult whole = align_tilt_series(s.views, s.nominal, opt);
  ASSERT_FALSE(whole.already_aligned);
  ASSERT_EQ(saved.size(), whole.rounds.size());
  ASSERT_GE(saved.size(), 2u);
  EXPECT_EQ(saved[0].rounds_done, 1);
  EXPECT_FALSE(saved[0].volume.empty());
  for (std::size_t i = 0; i + 1 < saved.size(); ++i) {
    AlignOptions again = opt;
    again.save_round = nullptr;
    again.resume = &saved[i];
    const AlignResult r = align_tilt_series(s.views, s.nominal, again);
    ASSERT_EQ(r.geometry.size(), whole.geometry.size());
    for (std::size_t k = 0; k < r.geometry.size(); ++k) {
      EXPECT_EQ(r.geometry[k].R, whole.geometry[k].R) << "after round " << i + 1 << ", view " << k;
      EXPECT_EQ(r.geometry[k].shift, whole.geometry[k].shift);
    }
    EXPECT_EQ(r.tilt_axis_deg, whole.tilt_axis_deg);
    EXPECT_EQ(r.r1_initial, whole.r1_initial);
    EXPECT_EQ(r.r1_final, whole.r1_final);
    ASSERT_EQ(r.rounds.size(), whole.rounds.size());
    for (std::size_t k = 0; k < r.rounds.size(); ++k) EXPECT_EQ(r.rounds[k].r1, whole.rounds[k].r1);
  }
  // Progress of other views or options is refused, not used.
  AlignOptions wrong = opt;
  AlignRoundState bad = saved[0];
  bad.geometry.pop_back();
  wrong.resume = &bad;
  EXPECT_THROW(align_tilt_series(s.views, s.nominal, wrong), InputError);
}

TEST(Align, RejectsBadInput) {
  const phantoms::TiltSeries s = small_series(0, 0, 41, 36);
  AlignOptions opt;
  opt.rounds = 0;
  Array3 one(48, 48, 1, 1.0f);
  one.voxel_size = s.views.voxel_size;
  EXPECT_THROW(align_tilt_series(one, {Euler{}}, opt), InputError);
  Array3 zero_view = s.views;
  for (std::int64_t i = 0; i < 48 * 48; ++i) zero_view.slice(1)[i] = 0;
  EXPECT_THROW(align_tilt_series(zero_view, s.nominal, opt), InputError);
  Array3 nan = s.views;
  nan(1, 2, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(align_tilt_series(nan, s.nominal, opt), InputError);
  std::vector<Euler> fewer(s.nominal.begin(), s.nominal.end() - 1);
  EXPECT_THROW(align_tilt_series(s.views, fewer, opt), InputError);
  opt.recon_iterations = 0;
  EXPECT_THROW(align_tilt_series(s.views, s.nominal, opt), InputError);
}

}  // namespace
}  // namespace aet
