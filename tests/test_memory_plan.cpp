// Device memory planning (memory_plan.hpp): exact byte counts, the safety margin, batching when
// the views do not fit, a clear error when nothing fits, and no overflow at realistic and absurd
// sizes. Pure arithmetic: runs everywhere.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "aet/core/error.hpp"
#include "aet/recon/memory_plan.hpp"

namespace aet {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;

ReconProblemSize problem(Algorithm a, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                         std::int64_t vnx, std::int64_t vny, std::int64_t n_views,
                         bool support = false) {
  ReconProblemSize s;
  s.nx = nx;
  s.ny = ny;
  s.nz = nz;
  s.view_nx = vnx;
  s.view_ny = vny;
  s.n_views = n_views;
  s.algorithm = a;
  s.support = support;
  return s;
}

void expect_resident(const ReconMemoryPlan& p, std::int64_t n_views) {
  EXPECT_EQ(p.views_per_batch, n_views);
  EXPECT_EQ(p.batches, 1);
  EXPECT_FALSE(p.batched());
}

TEST(MemoryPlan, MarginIsFivePercentPlus64MiB) {
  EXPECT_EQ(usable_device_bytes(0), 0u);
  EXPECT_EQ(usable_device_bytes(64 * kMiB), 0u);
  EXPECT_EQ(usable_device_bytes(1000 * kMiB), (1000 - 50 - 64) * kMiB);
  EXPECT_EQ(usable_device_bytes(80 * kGiB), 80 * kGiB - 4 * kGiB - 64 * kMiB);
}

TEST(MemoryPlan, ExactBytesForSmallProblems) {
  // Volume 10^3 (V = 4000 B), 5 views of 8 x 6 (192 B each, a stack of 960 B).
  const std::uint64_t big = kGiB;
  const auto resire = plan_recon_memory(problem(Algorithm::resire, 10, 10, 10, 8, 6, 5), big);
  EXPECT_EQ(resire.device_bytes, 4000u + 2 * 960u);
  expect_resident(resire, 5);
  EXPECT_EQ(resire.usable_bytes, usable_device_bytes(big));

  const auto resire_mask =
      plan_recon_memory(problem(Algorithm::resire, 10, 10, 10, 8, 6, 5, true), big);
  EXPECT_EQ(resire_mask.device_bytes, 4000u + 1000u + 2 * 960u);

  const auto sirt = plan_recon_memory(problem(Algorithm::sirt, 10, 10, 10, 8, 6, 5), big);
  EXPECT_EQ(sirt.device_bytes, 2 * 4000u + 3 * 960u);
  expect_resident(sirt, 5);
  const auto sirt_mask =
      plan_recon_memory(problem(Algorithm::sirt, 10, 10, 10, 8, 6, 5, true), big);
  EXPECT_EQ(sirt_mask.device_bytes, 2 * 4000u + 1000u + 3 * 960u);

  const auto fbp = plan_recon_memory(problem(Algorithm::fbp, 10, 10, 10, 8, 6, 5), big);
  EXPECT_EQ(fbp.device_bytes, 4000u + 960u);

  // GENFIRE: 2 complex-float grids + a byte mask per grid element + 2 volumes.
  auto g = problem(Algorithm::genfire, 10, 10, 10, 8, 6, 5);
  g.genfire_oversampling = 2.0;
  EXPECT_EQ(plan_recon_memory(g, big).device_bytes, 2 * 8000u * 8u + 8000u + 2 * 4000u);
  // Non-cubic, rounded per axis: round(15) x round(10.5) x round(7.5) = 15 x 11 x 8.
  auto g2 = problem(Algorithm::genfire, 10, 7, 5, 8, 6, 5);
  g2.genfire_oversampling = 1.5;
  const std::uint64_t grid = 15 * 11 * 8;
  const auto pg = plan_recon_memory(g2, big);
  EXPECT_EQ(pg.device_bytes, 2 * grid * 8 + grid + 2 * 1400u);
  expect_resident(pg, 5);
}

TEST(MemoryPlan, MomentumAddsOneVolume) {
  const std::uint64_t big = kGiB;
  for (Algorithm a : {Algorithm::resire, Algorithm::sirt}) {
    ReconProblemSize s = problem(a, 10, 10, 10, 8, 6, 5);
    const auto plain = plan_recon_memory(s, big);
    s.accelerate = true;
    const auto fast = plan_recon_memory(s, big);
    EXPECT_EQ(fast.device_bytes, plain.device_bytes + 4000u) << algorithm_name(a);
  }
}

TEST(MemoryPlan, SummaryIsOneLine) {
  const auto p = plan_recon_memory(problem(Algorithm::resire, 10, 10, 10, 8, 6, 5), kGiB);
  EXPECT_EQ(p.summary.find('\n'), std::string::npos);
  EXPECT_NE(p.summary.find("MiB"), std::string::npos) << p.summary;
  EXPECT_NE(p.summary.find("resire"), std::string::npos) << p.summary;
  EXPECT_NE(p.summary.find("resident"), std::string::npos) << p.summary;
}

TEST(MemoryPlan, BatchesTheViewsWhenTheyDoNotFit) {
  // Volume 128 x 256 x 256 (V = 32 MiB), 200 views of 256 x 256 (256 KiB each).
  const auto size = problem(Algorithm::resire, 128, 256, 256, 256, 256, 200);
  // 200 MiB available: usable 126 MiB. Resident needs 32 + 2 x 50 = 132 MiB; batched holds
  // 2 V = 64 MiB plus 512 KiB per view: 124 views per batch.
  const auto p = plan_recon_memory(size, 200 * kMiB);
  EXPECT_TRUE(p.batched());
  EXPECT_EQ(p.views_per_batch, 124);
  EXPECT_EQ(p.batches, 2);
  EXPECT_EQ(p.device_bytes, 64 * kMiB + 124 * 512 * 1024ull);
  EXPECT_LE(p.device_bytes, p.usable_bytes);
  EXPECT_EQ(p.summary.find('\n'), std::string::npos);
  EXPECT_NE(p.summary.find("batches"), std::string::npos) << p.summary;

  // 150 MiB: usable 78.5 MiB, (78.5 - 64) / 0.5 = 29 views per batch, 7 batches.
  const auto q = plan_recon_memory(size, 150 * kMiB);
  EXPECT_EQ(q.views_per_batch, 29);
  EXPECT_EQ(q.batches, 7);
  EXPECT_EQ(q.device_bytes, 64 * kMiB + 29 * 512 * 1024ull);

  // SIRT batched: 3 V fixed, 3 stacks per view (768 KiB); 150 MiB + 32 MiB more available.
  const auto sirt = problem(Algorithm::sirt, 128, 256, 256, 256, 256, 200);
  const auto r = plan_recon_memory(sirt, 200 * kMiB);  // usable 126: (126 - 96) / 0.75 = 40
  EXPECT_EQ(r.views_per_batch, 40);
  EXPECT_EQ(r.batches, 5);
  EXPECT_EQ(r.device_bytes, 96 * kMiB + 40 * 768 * 1024ull);

  // Plenty of memory: resident again, whatever the algorithm.
  expect_resident(plan_recon_memory(size, 8 * kGiB), 200);
  expect_resident(plan_recon_memory(sirt, 8 * kGiB), 200);
}

TEST(MemoryPlan, ClearErrorWhenNotEvenOneViewFits) {
  const auto size = problem(Algorithm::resire, 128, 256, 256, 256, 256, 200);
  try {
    plan_recon_memory(size, 100 * kMiB);  // usable 31 MiB < the 32 MiB volume
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("GiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("one view"), std::string::npos) << msg;
    EXPECT_NE(msg.find("128 x 256 x 256"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--device cpu"), std::string::npos) << msg;
  }
  EXPECT_THROW(plan_recon_memory(size, 0), InputError);
  // GENFIRE cannot batch: too small is an error at once.
  auto g = problem(Algorithm::genfire, 256, 256, 256, 256, 256, 60);
  g.genfire_oversampling = 2.0;  // a 512^3 grid: 2 GiB of complex grids alone
  EXPECT_THROW(plan_recon_memory(g, 2 * kGiB), InputError);
  EXPECT_NO_THROW(plan_recon_memory(g, 8 * kGiB));
}

TEST(MemoryPlan, LargeSizesDoNotOverflow) {
  // 512^3 volume, 120 views of 512^2: V = 512 MiB, a stack = 120 MiB, mask = 128 MiB.
  const auto r =
      plan_recon_memory(problem(Algorithm::resire, 512, 512, 512, 512, 512, 120, true), 80 * kGiB);
  EXPECT_EQ(r.device_bytes, (512 + 128 + 2 * 120) * kMiB);
  expect_resident(r, 120);
  const auto s =
      plan_recon_memory(problem(Algorithm::sirt, 512, 512, 512, 512, 512, 120, true), 80 * kGiB);
  EXPECT_EQ(s.device_bytes, (2 * 512 + 128 + 3 * 120) * kMiB);

  // 2048^3 (32 GiB per volume) with 400 views of 2048^2 (16 MiB each): RESIRE fits in 80 GiB,
  // SIRT's fixed part (3 x 32 GiB) does not.
  const auto big = problem(Algorithm::resire, 2048, 2048, 2048, 2048, 2048, 400);
  EXPECT_EQ(plan_recon_memory(big, 80 * kGiB).device_bytes, 32 * kGiB + 2 * 400 * 16 * kMiB);
  auto big_sirt = big;
  big_sirt.algorithm = Algorithm::sirt;
  EXPECT_THROW(plan_recon_memory(big_sirt, 80 * kGiB), InputError);
  // A plan with far more memory than any card holds still fits in 64 bits.
  EXPECT_EQ(plan_recon_memory(big_sirt, 1ull << 62).device_bytes, 64 * kGiB + 3 * 400 * 16 * kMiB);

  // Sizes whose byte counts exceed 64 bits are refused, not wrapped.
  const std::int64_t huge = 1ll << 22;
  EXPECT_THROW(plan_recon_memory(problem(Algorithm::resire, huge, huge, huge, 64, 64, 10), kGiB),
               InputError);
  auto g = problem(Algorithm::genfire, 1 << 21, 1 << 21, 1 << 21, 64, 64, 10);
  EXPECT_THROW(plan_recon_memory(g, kGiB), InputError);
}

TEST(MemoryPlan, RejectsNonPositiveSizes) {
  EXPECT_THROW(plan_recon_memory(problem(Algorithm::resire, 0, 10, 10, 8, 8, 5), kGiB), InputError);
  EXPECT_THROW(plan_recon_memory(problem(Algorithm::resire, 10, 10, 10, 8, -1, 5), kGiB),
               InputError);
  EXPECT_THROW(plan_recon_memory(problem(Algorithm::sirt, 10, 10, 10, 8, 8, 0), kGiB), InputError);
}

}  // namespace
}  // namespace aet
