// The pieces of the MPI-distributed reconstruction that need no launcher (docs/hpc.md): the slab
// split is exact (a single-axis ray of view row j touches volume row j only, so a slab of rows
// projects to, and back projects from, the same rows of the whole problem, bit for bit, on every
// CPU walk), the R factors' partial-sum form is r1_factor / r2_factor, a plain process is the
// one-process world, and ranks sharing a node share its CPUs.
#include <gtest/gtest.h>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "aet/core/parallel.hpp"
#include "aet/hpc/mpi.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "iteration.hpp"
#include "projector_detail.hpp"
#include "recon_detail.hpp"
#include "support/recon_fixtures.hpp"

namespace aet {
namespace {

using test::random_array;

// Rows [y0, y1) of every slice.
Array3 rows_of(const Array3& a, std::int64_t y0, std::int64_t y1) {
  Array3 out(a.nx(), y1 - y0, a.nz());
  out.voxel_size = a.voxel_size;
  for (std::int64_t z = 0; z < a.nz(); ++z)
    for (std::int64_t y = y0; y < y1; ++y)
      for (std::int64_t x = 0; x < a.nx(); ++x) out(x, y - y0, z) = a(x, y, z);
  return out;
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(MpiSlabs, SlabsProjectLikeTheirRowsOfTheWholeVolume) {
  // Tilts about y with x shifts (rays along x and along z), no y shift: slab mode's geometry.
  TiltGeometry g;
  for (int t = -75; t <= 75; t += 10)
    g.push_back(ViewGeometry::from_tilt(t, Vec2(0.13 * t / 10.0, 0.0)));
  const std::int64_t nx = 23, ny = 17, nz = 19;  // odd: every centre is a whole index
  const Array3 x = random_array(nx, ny, nz, 0.5, 7);
  const Array3 views = random_array(nx, ny, static_cast<std::int64_t>(g.size()), 0.5, 8);
  int walks = 0;
  for (const char* walk : {"scalar", "avx2", "avx512"}) {
    if (!detail::cpu_projector_has(walk)) continue;
    const ScopedEnv env("AET_CPU_PROJECTOR", walk);
    ++walks;
    const Array3 fwd = forward_project(x, g, nx, ny, Device{});
    const Array3 back = back_project(views, g, nx, ny, nz, Device{});
    // Slabs of 1, 2, 5 and 9 rows (the edges at rows 0, 1, 3, 8 and 17).
    const std::int64_t edges[] = {0, 1, 3, 8, 17};
    for (int s = 0; s + 1 < 5; ++s) {
      const std::int64_t y0 = edges[s], y1 = edges[s + 1];
      const Array3 f_slab = forward_project(rows_of(x, y0, y1), g, nx, y1 - y0, Device{});
      EXPECT_EQ(f_slab.vector(), rows_of(fwd, y0, y1).vector()) << walk << " rows " << y0;
      const Array3 b_slab = back_project(rows_of(views, y0, y1), g, nx, y1 - y0, nz, Device{});
      EXPECT_EQ(b_slab.vector(), rows_of(back, y0, y1).vector()) << walk << " rows " << y0;
    }
  }
  EXPECT_GE(walks, 1);
}

TEST(MpiSlabs, PartialSumRFactorsAreTheOneProcessOnes) {
  const Array3 b = random_array(13, 11, 7, 0.5, 3);
  Array3 p = random_array(13, 11, 7, 0.5, 4);
  for (std::size_t i = 0; i < p.size(); ++i) p.data()[i] = 0.8f * b.data()[i] + 0.1f * p.data()[i];
  const detail::RFactors r = detail::r_factors(b, p, nullptr);
  EXPECT_EQ(r.r1, r1_factor(b, p));
  EXPECT_EQ(r.r2, r2_factor(b, p));
  EXPECT_GT(r.r1, 0.0);
}

TEST(MpiWorld, APlainProcessIsTheOneProcessWorld) {
  // No launcher started this test: MPI is not touched and the collectives move nothing.
  EXPECT_FALSE(mpi_active());
  EXPECT_EQ(mpi_rank(), 0);
  EXPECT_EQ(mpi_size(), 1);
  double s[2] = {1.5, -2.0};
  mpi_sum(s, 2);
  EXPECT_EQ(s[0], 1.5);
  EXPECT_EQ(s[1], -2.0);
  EXPECT_EQ(mpi_max(3.0), 3.0);
  EXPECT_EQ(mpi_gather({1.0f, 2.0f}), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(mpi_scatter({{4.0f}}), std::vector<float>{4.0f});
}

TEST(MpiWorld, RanksSharingAnUnboundNodeShareItsCpus) {
  // 16 CPUs online: a process that may use all of them, alone or one of 2 or 1000 ranks.
  EXPECT_EQ(detail::threads_for(16, 16, 0, 0), 16);
  EXPECT_EQ(detail::threads_for(16, 16, 0, 1), 16);
  EXPECT_EQ(detail::threads_for(16, 16, 0, 2), 8);
  EXPECT_EQ(detail::threads_for(16, 16, 0, 3), 5);
  EXPECT_EQ(detail::threads_for(16, 16, 0, 1000), 1);
  // Bound by the launcher (4 of the 16 CPUs): its binding has divided them already.
  EXPECT_EQ(detail::threads_for(4, 16, 0, 4), 4);
  // A Slurm task's CPUs are its own: the node is not shared out again.
  EXPECT_EQ(detail::threads_for(16, 16, 4, 0), 4);
  EXPECT_EQ(detail::threads_for(16, 16, 4, 2), 4);
  EXPECT_EQ(detail::threads_for(16, 16, 32, 0), 16);  // no more than the mask allows
  // The process's own default goes through the same rule.
  set_num_threads(0);
  const int whole = num_threads();
  {
    const ScopedEnv env("OMPI_COMM_WORLD_LOCAL_SIZE", "1000");
    EXPECT_LE(num_threads(), whole);
    EXPECT_GE(num_threads(), 1);
  }
  EXPECT_EQ(num_threads(), whole);
}

}  // namespace
}  // namespace aet
