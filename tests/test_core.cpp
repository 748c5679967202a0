// Core utilities: sizes, random streams, threads, device selection, atom models, elements.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/json.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"

using namespace aet;

TEST(Core, CheckedProductCatchesOverflowAndBadDims) {
  EXPECT_EQ(checked_product(2048, 2048, 1024), std::size_t{2048} * 2048 * 1024);
  EXPECT_THROW(checked_product(0, 4, 4), InputError);
  EXPECT_THROW(checked_product(-1, 4, 4), InputError);
  EXPECT_THROW(checked_product(2147483647, 2147483647, 2147483647), InputError);
}

TEST(Core, ArrayIndexingIsXFastest) {
  Array3 a(4, 3, 2);
  a(1, 2, 1) = 7.0f;
  EXPECT_EQ(a.data()[(1 * 3 + 2) * 4 + 1], 7.0f);
  EXPECT_EQ(a.slice(1)[2 * 4 + 1], 7.0f);
  EXPECT_EQ(centre_index(64), 32);
  EXPECT_EQ(centre_index(65), 32);
  const ArrayStats s = compute_stats(a);
  EXPECT_NEAR(s.mean, 7.0 / 24, 1e-12);
  EXPECT_EQ(s.max, 7.0);
}

TEST(Core, RngIsReproducibleAndWellDistributed) {
  Rng a(7), b(7), c(8);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(Rng(7).next_u64(), c.next_u64());
  // A value pinned once: the stream must never change between versions (reproducible data).
  EXPECT_EQ(Rng(0).next_u64(), 0x99ec5f36cb75f2b4ULL);
  Rng r(1);
  double sum = 0, sum2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.01);
  for (double lambda : {0.5, 7.0, 45.0, 3000.0}) {
    double s = 0, s2 = 0;
    const int m = 50000;
    for (int i = 0; i < m; ++i) {
      const double k = static_cast<double>(r.poisson(lambda));
      s += k;
      s2 += k * k;
    }
    const double mean = s / m, var = s2 / m - mean * mean;
    EXPECT_NEAR(mean, lambda, 5 * std::sqrt(lambda / m)) << "lambda " << lambda;
    EXPECT_NEAR(var / lambda, 1.0, 0.05) << "lambda " << lambda;
  }
  // Independent streams differ and are reproducible.
  EXPECT_EQ(Rng::stream(5, 3).next_u64(), Rng::stream(5, 3).next_u64());
  EXPECT_NE(Rng::stream(5, 3).next_u64(), Rng::stream(5, 4).next_u64());
}

TEST(Core, ParallelForCoversTheRangeOnceAndRethrows) {
  for (int threads : {1, 2, 7}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(1001);
    parallel_for(1001, [&](std::int64_t b, std::int64_t e) {
      for (auto i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
  EXPECT_THROW(parallel_for(10, [](std::int64_t, std::int64_t) { throw InputError("x"); }),
               InputError);
  set_num_threads(0);
}

TEST(Core, DeviceSelection) {
  EXPECT_EQ(resolve_device("cpu").kind, DeviceKind::cpu);
  const Device a = resolve_device("auto");
  EXPECT_EQ(a.kind == DeviceKind::cuda, !cuda_devices().empty());
  EXPECT_THROW(resolve_device("gpu"), InputError);
  EXPECT_THROW(resolve_device("cuda:x"), InputError);
  EXPECT_THROW(resolve_device("cuda:-1"), InputError);
  EXPECT_THROW(resolve_device("cuda:999"), InputError);
  if (!built_with_cuda()) {
    try {
      resolve_device("cuda");
      FAIL() << "cuda accepted by a build without CUDA";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos);
    }
  }
}

TEST(Core, AtomModelPropertiesFollowFiltering) {
  AtomModel m;
  m.add("Pt", Vec3(0, 0, 0));
  m.add("Au", Vec3(1, 0, 0));
  m.property("b_factor")[1] = 4.0;
  m.add("Pt", Vec3(2, 0, 0));
  EXPECT_EQ(m.property("b_factor").size(), 3u);
  m.filter({false, true, true});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.species[0], "Au");
  EXPECT_EQ(m.find_property("b_factor")->at(0), 4.0);
  m.set_info("seed", "3");
  m.set_info("seed", "4");
  EXPECT_EQ(*m.find_info("seed"), "4");
  EXPECT_EQ(m.info.size(), 1u);
}

TEST(Core, ElementTable) {
  EXPECT_EQ(element("Pt").z, 78);
  EXPECT_EQ(element("Pt").lattice, Lattice::fcc);
  EXPECT_NEAR(element("Pt").a, 3.924, 0.001);
  EXPECT_EQ(element("Fe").lattice, Lattice::bcc);
  EXPECT_EQ(element("Co").lattice, Lattice::hcp);
  EXPECT_EQ(element_by_z(79).symbol, "Au");
  EXPECT_THROW(element("Xx"), InputError);
  EXPECT_THROW(element_by_z(0), InputError);
}

TEST(Core, CorrelationOfArrays) {
  Array3 a(3, 2, 2), b(3, 2, 2);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a.data()[i] = static_cast<float>(i);
    b.data()[i] = 1000.0f + 2.0f * static_cast<float>(i);
  }
  EXPECT_NEAR(correlation(a, b), 1.0, 1e-12);
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = -b.data()[i];
  EXPECT_NEAR(correlation(a, b), -1.0, 1e-12);
  EXPECT_THROW(correlation(a, Array3(2, 2, 2)), InternalError);
}

// ---- the thread pool behind parallel_for -------------------------------------------------------

namespace {

using Chunks = std::vector<std::pair<std::int64_t, std::int64_t>>;

// The chunks a parallel_for of n items hands out, sorted.
Chunks chunks_of(std::int64_t n) {
  std::mutex mutex;
  Chunks out;
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    out.emplace_back(b, e);
  });
  std::sort(out.begin(), out.end());
  return out;
}

// The partition of the parallel_for that started its threads per call: min(threads, n) chunks,
// chunk t = [n t / w, n (t + 1) / w).
Chunks static_partition(std::int64_t n, std::int64_t threads) {
  const std::int64_t w = std::min(threads, n);
  Chunks out;
  for (std::int64_t t = 0; t < w; ++t) out.emplace_back(n * t / w, n * (t + 1) / w);
  return out;
}

}  // namespace

TEST(Core, ParallelForKeepsTheStaticPartition) {
  for (int threads : {1, 2, 3, 4, 7, 16}) {
    set_num_threads(threads);
    for (std::int64_t n : {1, 2, 5, 17, 100, 1001})
      EXPECT_EQ(chunks_of(n), static_partition(n, threads)) << threads << " threads, n = " << n;
  }
  set_num_threads(0);
}

TEST(Core, ParallelForRunsEveryChunkAndRethrowsAnError) {
  set_num_threads(4);
  std::atomic<int> ran{0};
  try {
    parallel_for(8, [&](std::int64_t b, std::int64_t e) {
      ran += static_cast<int>(e - b);
      if (b == 2) throw std::runtime_error("chunk at 2");
    });
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "chunk at 2");
  }
  EXPECT_EQ(ran.load(), 8);  // the other chunks still ran
  EXPECT_THROW(parallel_for(8, [](std::int64_t, std::int64_t) { throw InputError("every chunk"); }),
               InputError);
  // The pool still works after errors.
  std::atomic<std::int64_t> sum{0};
  parallel_for(1000, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 499500);
  set_num_threads(0);
}

TEST(Core, NestedParallelForRunsInlineWithTheSamePartition) {
  set_num_threads(4);
  std::vector<Chunks> inner(6);
  std::vector<char> same_thread(6, 0);
  parallel_for(6, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::thread::id caller = std::this_thread::get_id();
      bool same = true;
      Chunks seen;  // inline, in order: no lock needed
      parallel_for(10, [&](std::int64_t ib, std::int64_t ie) {
        seen.emplace_back(ib, ie);
        same = same && std::this_thread::get_id() == caller;
      });
      inner[static_cast<std::size_t>(i)] = seen;
      same_thread[static_cast<std::size_t>(i)] = same;
    }
  });
  for (std::size_t i = 0; i < inner.size(); ++i) {
    EXPECT_EQ(inner[i], static_partition(10, 4)) << "outer item " << i;
    EXPECT_TRUE(same_thread[i]) << "outer item " << i;
  }
  // An error in a nested body reaches the outer caller.
  EXPECT_THROW(parallel_for(4,
                            [](std::int64_t, std::int64_t) {
                              parallel_for(4, [](std::int64_t b, std::int64_t) {
                                if (b == 3) throw InputError("inner");
                              });
                            }),
               InputError);
  set_num_threads(0);
}

TEST(Core, ParallelForFromSeveralThreadsAtOnce) {
  set_num_threads(3);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 1; c <= 4; ++c)
    callers.emplace_back([&wrong, c] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<int> v(97, 0);
        parallel_for(97, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) v[static_cast<std::size_t>(i)] += c;
        });
        for (int x : v) wrong += x != c;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  set_num_threads(0);
}

TEST(Core, DefaultThreadCountFollowsAffinityAndSlurm) {
  const char* env = std::getenv("SLURM_CPUS_PER_TASK");
  const bool had_slurm = env != nullptr;
  const std::string saved = had_slurm ? env : "";
  unsetenv("SLURM_CPUS_PER_TASK");
  set_num_threads(0);
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const int cpus = CPU_COUNT(&set);
  EXPECT_EQ(num_threads(), cpus);
  // A thread pinned to one CPU (taskset -c 0) counts one.
  int pinned = 0;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) {
        CPU_SET(c, &one);
        break;
      }
    pinned = sched_setaffinity(0, sizeof one, &one) == 0 ? num_threads() : -1;
  }).join();
  EXPECT_EQ(pinned, 1);
  // SLURM's allotment when it is smaller; a malformed one is ignored.
  setenv("SLURM_CPUS_PER_TASK", "1", 1);
  EXPECT_EQ(num_threads(), 1);
  setenv("SLURM_CPUS_PER_TASK", "100000", 1);
  EXPECT_EQ(num_threads(), cpus);
  setenv("SLURM_CPUS_PER_TASK", "two", 1);
  EXPECT_EQ(num_threads(), cpus);
  // --threads overrides both.
  setenv("SLURM_CPUS_PER_TASK", "1", 1);
  set_num_threads(5);
  EXPECT_EQ(num_threads(), 5);
  set_num_threads(0);
  if (had_slurm)
    setenv("SLURM_CPUS_PER_TASK", saved.c_str(), 1);
  else
    unsetenv("SLURM_CPUS_PER_TASK");
}

// ---- neighbour search ------------------------------------------------------------------------

namespace {

struct Hit {
  std::size_t j;
  double d2;
  bool operator==(const Hit& o) const { return j == o.j && d2 == o.d2; }
};

std::vector<Hit> grid_hits(const NeighborSearch& ns, const Vec3& q, double r) {
  std::vector<Hit> out;
  ns.for_each(q, r, [&](std::size_t j, double d2) { out.push_back({j, d2}); });
  return out;
}

// Every point within r by brute force, in the documented order: by cell (z slowest, from the
// smallest coordinates in steps of the cell size), then by index.
std::vector<Hit> brute_hits(const std::vector<Vec3>& pts, const NeighborSearch& ns, const Vec3& q,
                            double r) {
  Vec3 lo = pts.front();
  for (const auto& p : pts) lo = lo.cwiseMin(p);
  const auto key = [&](std::size_t j) {
    std::array<double, 4> k;
    for (int a = 0; a < 3; ++a) k[2 - a] = std::floor((pts[j][a] - lo[a]) / ns.cell_size());
    k[3] = static_cast<double>(j);
    return k;
  };
  std::vector<std::size_t> in;
  for (std::size_t j = 0; j < pts.size(); ++j)
    if ((pts[j] - q).squaredNorm() <= r * r) in.push_back(j);
  std::sort(in.begin(), in.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  std::vector<Hit> out;
  for (std::size_t j : in) out.push_back({j, (pts[j] - q).squaredNorm()});
  return out;
}

}  // namespace

TEST(Core, NeighborSearchMatchesBruteForce) {
  Rng rng(3);
  std::vector<Vec3> pts;
  for (int i = 0; i < 600; ++i)
    pts.emplace_back(rng.uniform(-10, 10), rng.uniform(-6, 6), rng.uniform(-3, 8));
  for (int i = 0; i < 20; ++i) pts.push_back(pts[rng.below(pts.size())]);  // duplicates
  // Far outliers, with the cell limit only (without it their grid would be huge).
  std::vector<Vec3> outliers = pts;
  outliers.emplace_back(400.0, -300.0, 900.0);
  outliers.emplace_back(-500.0, 250.0, -700.0);
  for (double cell : {0.7, 2.0, 5.0})
    for (double max_cells : {0.0, NeighborSearch::default_max_cells(outliers.size())}) {
      const std::vector<Vec3>& p = max_cells > 0 ? outliers : pts;
      const NeighborSearch ns(p, cell, max_cells);
      EXPECT_EQ(ns.size(), p.size());
      if (max_cells > 0) {
        EXPECT_GT(ns.cell_size(), cell);  // the outliers make the cells grow
      } else {
        EXPECT_EQ(ns.cell_size(), cell);
      }
      for (int k = 0; k < 150; ++k) {
        // Queries at points, between them and outside the bounding box.
        const Vec3 q = k % 3 == 0
                           ? p[rng.below(p.size())]
                           : Vec3(rng.uniform(-14, 14), rng.uniform(-9, 9), rng.uniform(-6, 11));
        for (double r : {0.0, 0.4, cell, 2.5 * cell}) {
          ASSERT_EQ(grid_hits(ns, q, r), brute_hits(p, ns, q, r))
              << "cell " << cell << " max_cells " << max_cells << " r " << r;
          double d2 = -1;
          const std::int64_t skip = k % 2 ? static_cast<std::int64_t>(rng.below(p.size())) : -1;
          const std::int64_t j = ns.nearest(q, r, &d2, skip);
          std::int64_t want = -1;
          double want_d2 = 0;
          for (std::size_t i = 0; i < p.size(); ++i) {
            const double e = (p[i] - q).squaredNorm();
            if (static_cast<std::int64_t>(i) == skip || e > r * r) continue;
            if (want < 0 || e < want_d2) {  // ties stay with the lower index
              want = static_cast<std::int64_t>(i);
              want_d2 = e;
            }
          }
          ASSERT_EQ(j, want);
          EXPECT_EQ(d2, want_d2);
        }
      }
    }
}

TEST(Core, NeighborSearchRadiusEdge) {
  // Points on the cell boundaries and exactly at the radius: an integer lattice with cells of 1.
  std::vector<Vec3> pts;
  for (int z = 0; z < 5; ++z)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 5; ++x) pts.emplace_back(x, y, z);
  pts.emplace_back(2.0 + 1e-12, 2.0, 3.0 + 1e-9);  // just outside radius 1 of (2, 2, 2)
  const NeighborSearch ns(pts, 1.0);
  for (const auto& q : pts)
    for (double r : {1.0, std::sqrt(2.0), 2.0})
      ASSERT_EQ(grid_hits(ns, q, r), brute_hits(pts, ns, q, r));
  // Radius 1 around (2, 2, 2): itself and its six lattice neighbours, not the point just beyond.
  const std::vector<Hit> six = grid_hits(ns, Vec3(2, 2, 2), 1.0);
  EXPECT_EQ(six.size(), 7u);
  for (const auto& h : six) EXPECT_LT(h.j, 125u);
  EXPECT_EQ(grid_hits(ns, Vec3(2, 2, 2), 0.5).size(), 1u);
  EXPECT_EQ(grid_hits(ns, Vec3(2, 2, 2), 0.0).size(), 1u);
  // Ties: the lower index wins; `skip` excludes the query point itself.
  double d2 = -1;
  EXPECT_EQ(ns.nearest(Vec3(2, 2, 2), 1.0, &d2, 62), 37);  // (2, 2, 1) before (1, 2, 2) ...
  EXPECT_EQ(d2, 1.0);
  EXPECT_EQ(ns.nearest(Vec3(2.5, 2.5, 2.5), 0.9, &d2), 62);  // eight at sqrt(0.75): (2, 2, 2)
}

TEST(Core, NeighborSearchEmptyAndDegenerate) {
  const std::vector<Vec3> none;
  const NeighborSearch empty(none, 1.0);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(grid_hits(empty, Vec3(0, 0, 0), 100.0).empty());
  double d2 = -1;
  EXPECT_EQ(empty.nearest(Vec3(0, 0, 0), 100.0, &d2), -1);
  EXPECT_EQ(d2, 0.0);
  // One point, several at one place, and cell edges that are no size at all: one cell.
  const std::vector<Vec3> same(4, Vec3(1, -2, 3));
  for (double cell : {1.0, 0.0, -1.0, std::nan("")}) {
    const NeighborSearch ns(same, cell);
    EXPECT_GT(ns.cell_size(), 0.0);
    EXPECT_EQ(grid_hits(ns, Vec3(1, -2, 3), 0.0).size(), 4u);
    EXPECT_EQ(grid_hits(ns, Vec3(1, -2, 3.5), 0.49).size(), 0u);
    EXPECT_EQ(ns.nearest(Vec3(1, -2, 3), 0.0, &d2, 0), 1);
  }
  const std::vector<Vec3> apart = {Vec3(0, 0, 0), Vec3(3, 0, 0), Vec3(0, 0, 7)};
  const NeighborSearch zero(apart, 0.0, NeighborSearch::default_max_cells(apart.size()));
  EXPECT_EQ(grid_hits(zero, Vec3(3, 0, 0), 3.0), (std::vector<Hit>{{0, 9.0}, {1, 0.0}}));
  EXPECT_EQ(zero.nearest(Vec3(0, 0, 6), 0.5, &d2), -1);
}

TEST(Core, ProgressReportsToTheInstalledSinkAndTheOuterOneComesBack) {
  std::vector<std::pair<std::string, int>> outer, inner;
  ScopedProgressSink outer_sink(
      [&](const std::string& label, int percent, double) { outer.emplace_back(label, percent); });
  {
    ScopedProgressSink inner_sink(
        [&](const std::string& label, int percent, double) { inner.emplace_back(label, percent); });
    Progress p("inner", 4);
    for (int i = 0; i < 4; ++i) p.advance();
    p.finish();
  }
  Progress q("outer", 2);
  q.advance();
  q.finish();
  // Each whole percent once, ending at 100.
  EXPECT_EQ(inner, (std::vector<std::pair<std::string, int>>{
                       {"inner", 0}, {"inner", 25}, {"inner", 50}, {"inner", 75}, {"inner", 100}}));
  EXPECT_EQ(outer, (std::vector<std::pair<std::string, int>>{
                       {"outer", 0}, {"outer", 50}, {"outer", 100}}));
}

// What an interrupted run names as the place it stopped: the unfinished steps, outer first, or
// the last one to finish.
TEST(Core, CurrentActivityNamesTheUnfinishedStepsOuterFirst) {
  ScopedProgressSink quiet([](const std::string&, int, double) {});
  {
    Progress outer("align", 4);
    outer.advance();
    EXPECT_EQ(current_activity(), "during align (25%)");
    {
      Progress inner("reconstruct resire", 10);
      inner.set(3);
      EXPECT_EQ(current_activity(), "during align (25%), in reconstruct resire (30%)");
    }
    EXPECT_EQ(current_activity(), "during align (25%)");
    outer.finish();
    EXPECT_EQ(current_activity(), "after align");
  }
  EXPECT_EQ(current_activity(), "after align");
}

TEST(Core, JsonTextHouseStyle) {
  Json j;
  j["name"] = "a \"quoted\"\n line";
  j["pi"] = 3.14159265358979;
  j["none"] = std::nan("");
  j["count"] = 3;
  j["nested"] = Json{{"list", Json::array({1.5, 2, Json::array({true, nullptr})})},
                     {"empty", Json::object()}};
  EXPECT_EQ(
      json_text(j),
      "{\n  \"name\": \"a \\\"quoted\\\"\\n line\",\n  \"pi\": 3.141592654,\n  \"none\": null,\n"
      "  \"count\": 3,\n  \"nested\": {\"list\": [1.5, 2, [true, null]], \"empty\": {}}\n}\n");
  EXPECT_EQ(json_number(std::numeric_limits<double>::infinity()), "null");
  // What it writes, nlohmann reads back to the same text.
  EXPECT_EQ(json_text(Json::parse(json_text(j))), json_text(j));
}
