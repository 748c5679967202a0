// Reconstruction of real AET data (../shared/data, see its README): the RESIRE engine must fit the
// measured Ta film projections at least as well as the published reconstruction (R1 = 0.269 with
// an independent trilinear projector), and recover the simulated amorphous sample; GENFIRE too,
// with thresholds from what it measured (docs/reconstruction.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "aet/core/parallel.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

const std::string kData = AET_SHARED_DATA;

bool have(const std::string& dir) {
  return test::file_exists(kData + "/" + dir + "/projections.mrc");
}

TEST(ReconReal, TaFilmArea1ResireBeatsPublishedR1) {
  ASSERT_TRUE(have("ta_film_area1")) << "no " << kData << "/ta_film_area1";
  const std::string dir = kData + "/ta_film_area1/";
  Array3 views = read_mrc(dir + "projections.mrc");
  views.voxel_size = VoxelSize{0.3216, 0.3216, 0.3216};
  const TiltGeometry g = read_angles(dir + "angles.txt", views.nz()).geometry();
  ASSERT_EQ(views.nx(), 131);
  ASSERT_EQ(views.ny(), 61);

  // The authors' 500-iteration reconstruction, scored with this projector (the README's 0.269
  // comes from an independent trilinear projector).
  Array3 published = read_mrc(dir + "published_reconstruction.mrc");
  published.voxel_size = views.voxel_size;
  const Array3 pp = forward_project(published, g, views.nx(), views.ny(), Device{});
  const double r1_published = r1_factor(views, pp);
  std::printf("published reconstruction: R1 = %.4f with aet's projector\n", r1_published);

  ReconOptions opt;
  opt.iterations = 30;
  opt.nx = 131;
  opt.ny = 61;
  opt.nz = 131;
  const ReconResult r = reconstruct(views, g, opt);
  std::printf("aet RESIRE, %d iterations: R1 = %.4f, R2 = %.4f in %.1f s (%d threads)\n",
              opt.iterations, r.r1.back(), r.r2.back(), r.seconds, num_threads());
  EXPECT_LE(r.r1.back(), 0.269);
  EXPECT_LE(r.r1.back(), r1_published);
  EXPECT_LT(r.r1.back(), r.r1.front());
}

TEST(ReconReal, AmorphousSampleResireMatchesGroundTruth) {
  ASSERT_TRUE(have("resire_amorphous_sample")) << "no " << kData << "/resire_amorphous_sample";
  const std::string dir = kData + "/resire_amorphous_sample/";
  Array3 views = read_mrc(dir + "projections.mrc");
  views.voxel_size = VoxelSize{1, 1, 1};  // not given; the scale does not matter here
  const TiltGeometry g = read_angles(dir + "angles.txt", views.nz()).geometry();
  const Array3 truth = read_mrc(dir + "ground_truth.mrc");

  // The convention check of the README: the truth projected with this projector is the data.
  Array3 t = truth;
  t.voxel_size = views.voxel_size;
  const Array3 pt = forward_project(t, g, views.nx(), views.ny(), Device{});
  const double c_proj = correlation(pt, views);
  std::printf("ground truth projected: correlation %.6f with projections.mrc\n", c_proj);
  EXPECT_GE(c_proj, 0.9997);

  ReconOptions opt;
  opt.iterations = 50;
  const ReconResult r = reconstruct(views, g, opt);
  const double c = correlation(r.volume, truth);
  std::printf(
      "aet RESIRE, %d iterations: correlation %.4f with the ground truth, R1 = %.4f, "
      "%.1f s\n",
      opt.iterations, c, r.r1.back(), r.seconds);
  EXPECT_GE(c, 0.95);
  EXPECT_LE(r.r1.back(), 0.06);
}

// GENFIRE on the measured Ta film: 20 iterations gave R1 = 0.2586 (0.2581 after 50), below the
// README's 0.269 and level with the published volume scored by this projector (0.2577).
TEST(ReconReal, TaFilmArea1GenfireFitsLikeThePublishedReconstruction) {
  ASSERT_TRUE(have("ta_film_area1")) << "no " << kData << "/ta_film_area1";
  const std::string dir = kData + "/ta_film_area1/";
  Array3 views = read_mrc(dir + "projections.mrc");
  views.voxel_size = VoxelSize{0.3216, 0.3216, 0.3216};
  const TiltGeometry g = read_angles(dir + "angles.txt", views.nz()).geometry();

  ReconOptions opt;
  opt.algorithm = Algorithm::genfire;
  opt.iterations = 20;
  opt.nx = 131;
  opt.ny = 61;
  opt.nz = 131;
  const ReconResult r = reconstruct(views, g, opt);
  ASSERT_EQ(r.r_free.size(), 20u);
  std::printf(
      "aet GENFIRE, %d iterations: R1 = %.4f, R2 = %.4f, R_free = %.4f in %.1f s (%d "
      "threads)\n",
      opt.iterations, r.r1.back(), r.r2.back(), r.r_free.back(), r.seconds, num_threads());
  EXPECT_LE(r.r1.back(), 0.265);
  EXPECT_LT(r.r1.back(), r.r1.front());
  EXPECT_LT(r.r_free.back(), r.r_free.front());
  EXPECT_LE(r.r_free.back(), 0.66);  // measured 0.625: the noisy high frequencies dominate it
}

// GENFIRE on the simulated amorphous sample: 50 iterations gave correlation 0.976 with the ground
// truth and R1 = 0.029 (RESIRE: 0.955 and 0.044).
TEST(ReconReal, AmorphousSampleGenfireMatchesGroundTruth) {
  ASSERT_TRUE(have("resire_amorphous_sample")) << "no " << kData << "/resire_amorphous_sample";
  const std::string dir = kData + "/resire_amorphous_sample/";
  Array3 views = read_mrc(dir + "projections.mrc");
  views.voxel_size = VoxelSize{1, 1, 1};
  const TiltGeometry g = read_angles(dir + "angles.txt", views.nz()).geometry();
  const Array3 truth = read_mrc(dir + "ground_truth.mrc");

  ReconOptions opt;
  opt.algorithm = Algorithm::genfire;
  opt.iterations = 50;
  const ReconResult r = reconstruct(views, g, opt);
  const double c = correlation(r.volume, truth);
  std::printf(
      "aet GENFIRE, %d iterations: correlation %.4f with the ground truth, R1 = %.4f, "
      "R_free = %.4f, %.1f s\n",
      opt.iterations, c, r.r1.back(), r.r_free.back(), r.seconds);
  EXPECT_GE(c, 0.965);
  EXPECT_LE(r.r1.back(), 0.04);
  EXPECT_LE(r.r_free.back(), 0.11);
}

}  // namespace
}  // namespace aet
