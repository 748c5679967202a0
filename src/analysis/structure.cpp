// Coordination, surface atoms, RDFs and Steinhardt order (docs/analysis.md).
#include "aet/analysis/structure.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <deque>
#include <limits>

#include "aet/core/error.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Associated Legendre P_l^m(x), m >= 0 (Numerical Recipes' recurrence, Condon-Shortley sign).
double legendre(int l, int m, double x) {
  double pmm = 1;
  if (m > 0) {
    const double s = std::sqrt(std::max(0.0, (1 - x) * (1 + x)));
    double fact = 1;
    for (int i = 1; i <= m; ++i) {
      pmm *= -fact * s;
      fact += 2;
    }
  }
  if (l == m) return pmm;
  double pmmp1 = x * (2 * m + 1) * pmm;
  if (l == m + 1) return pmmp1;
  double pll = 0;
  for (int ll = m + 2; ll <= l; ++ll) {
    pll = (x * (2 * ll - 1) * pmmp1 - (ll + m - 1) * pmm) / (ll - m);
    pmm = pmmp1;
    pmmp1 = pll;
  }
  return pll;
}

}  // namespace

std::vector<int> coordination_numbers(const std::vector<Vec3>& p, double cutoff) {
  std::vector<int> c(p.size(), 0);
  if (p.empty()) return c;
  const NeighborSearch grid(p, cutoff, NeighborSearch::default_max_cells(p.size()));
  parallel_for(static_cast<std::int64_t>(p.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      grid.for_each(p[i], cutoff,
                    [&](std::size_t j, double) { c[i] += static_cast<std::int64_t>(j) != i; });
  });
  return c;
}

SurfaceAtoms find_surface_atoms(const std::vector<Vec3>& p, const std::vector<int>& coord,
                                double probe, int threshold) {
  if (!(probe > 0) || !std::isfinite(probe)) fail_input("surface probe must be > 0");
  const std::size_t n = p.size();
  SurfaceAtoms s;
  if (threshold <= 0) {
    // The bulk coordination is the most common value in the better-coordinated half (a small
    // particle can have more surface than bulk atoms); two below it, an atom beside one or two
    // vacancies stays bulk (as aet evaluate).
    std::vector<int> sorted = coord;
    std::sort(sorted.begin(), sorted.end());
    const int median = sorted[n / 2];
    int bulk = median, best = 0;
    for (std::size_t k = 0; k < n;) {
      std::size_t e = k;
      while (e < n && sorted[e] == sorted[k]) ++e;
      if (sorted[k] >= median && static_cast<int>(e - k) >= best) {
        best = static_cast<int>(e - k);
        bulk = sorted[k];
      }
      k = e;
    }
    threshold = std::max(1, bulk - 2);
  }
  s.threshold = threshold;

  // Occupancy grid: voxels within `probe` of an atom are filled; the empty ones connected to the
  // border are outside.
  const double h = probe / 4;
  Vec3 lo = p.front(), hi = p.front();
  for (const auto& q : p) {
    lo = lo.cwiseMin(q);
    hi = hi.cwiseMax(q);
  }
  lo.array() -= 2 * probe + h;
  hi.array() += 2 * probe + h;
  std::int64_t dim[3];
  for (int a = 0; a < 3; ++a)
    dim[a] = static_cast<std::int64_t>(std::ceil((hi[a] - lo[a]) / h)) + 1;
  const double cells = static_cast<double>(dim[0]) * dim[1] * dim[2];
  if (cells > 4e8)
    fail_input("the atoms span " + std::to_string(static_cast<long long>(cells)) +
               " surface-grid cells (too spread out for their nearest-neighbour distance)");
  auto idx = [&](std::int64_t x, std::int64_t y, std::int64_t z) {
    return static_cast<std::size_t>((z * dim[1] + y) * dim[0] + x);
  };
  std::vector<std::uint8_t> state(static_cast<std::size_t>(cells), 0);  // 0 empty, 1 filled, 2 out
  const int reach = static_cast<int>(std::ceil(probe / h)) + 1;
  for (const auto& q : p) {
    const Vec3 f = (q - lo) / h;
    const std::int64_t cx = std::llround(f.x()), cy = std::llround(f.y()), cz = std::llround(f.z());
    for (std::int64_t z = cz - reach; z <= cz + reach; ++z)
      for (std::int64_t y = cy - reach; y <= cy + reach; ++y)
        for (std::int64_t x = cx - reach; x <= cx + reach; ++x) {
          const Vec3 c = lo + h * Vec3(x, y, z);
          if ((c - q).squaredNorm() <= probe * probe) state[idx(x, y, z)] = 1;
        }
  }
  std::deque<std::size_t> queue;
  state[0] = 2;
  queue.push_back(0);
  while (!queue.empty()) {
    const std::size_t k = queue.front();
    queue.pop_front();
    const std::int64_t x = static_cast<std::int64_t>(k) % dim[0];
    const std::int64_t y = (static_cast<std::int64_t>(k) / dim[0]) % dim[1];
    const std::int64_t z = static_cast<std::int64_t>(k) / (dim[0] * dim[1]);
    const std::int64_t nbr[6][3] = {{x - 1, y, z}, {x + 1, y, z}, {x, y - 1, z},
                                    {x, y + 1, z}, {x, y, z - 1}, {x, y, z + 1}};
    for (const auto& v : nbr) {
      if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[0] >= dim[0] || v[1] >= dim[1] || v[2] >= dim[2])
        continue;
      const std::size_t j = idx(v[0], v[1], v[2]);
      if (state[j] == 0) {
        state[j] = 2;
        queue.push_back(j);
      }
    }
  }
  std::size_t inside = 0;
  for (auto v : state) inside += v != 2;
  s.volume = static_cast<double>(inside) * h * h * h;

  s.exposed.assign(n, 0);
  s.is_surface.assign(n, 0);
  const double r_exp = 1.35 * probe;
  const int reach_e = static_cast<int>(std::ceil(r_exp / h));
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      if (coord[i] >= threshold) continue;  // only candidates need the geometric test
      const Vec3 f = (p[i] - lo) / h;
      const std::int64_t cx = std::llround(f.x()), cy = std::llround(f.y()),
                         cz = std::llround(f.z());
      bool found = false;
      for (std::int64_t z = cz - reach_e; z <= cz + reach_e && !found; ++z)
        for (std::int64_t y = cy - reach_e; y <= cy + reach_e && !found; ++y)
          for (std::int64_t x = cx - reach_e; x <= cx + reach_e && !found; ++x)
            if (state[idx(x, y, z)] == 2 &&
                (lo + h * Vec3(x, y, z) - p[i]).squaredNorm() <= r_exp * r_exp)
              found = true;
      s.exposed[i] = found;
      s.is_surface[i] = found;
    }
  });
  return s;
}

Rdf radial_distribution(const AtomModel& m, double volume, double r_max, double bin) {
  if (!(bin > 0) || !(r_max > bin)) fail_input("RDF: need 0 < bin < r_max");
  Rdf out;
  out.bin = bin;
  out.r_max = r_max;
  const std::size_t n = m.size();
  const std::size_t nb = static_cast<std::size_t>(std::floor(r_max / bin));
  // Species in sorted order, each atom's index into it.
  std::vector<std::string> names = m.species;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  const std::size_t ns = names.size();
  std::vector<int> sp(n);
  std::vector<double> count(ns, 0);
  for (std::size_t i = 0; i < n; ++i) {
    sp[i] = static_cast<int>(std::lower_bound(names.begin(), names.end(), m.species[i]) -
                             names.begin());
    count[sp[i]] += 1;
  }
  // Histograms per chunk, summed in chunk order (the same bits with any thread count).
  const NeighborSearch grid(m.positions, r_max, NeighborSearch::default_max_cells(n));
  const int chunks = std::max(1, num_threads());
  std::vector<std::vector<double>> hist(chunks, std::vector<double>(nb * ns * ns, 0));
  parallel_for(chunks, [&](std::int64_t cb, std::int64_t ce) {
    for (std::int64_t c = cb; c < ce; ++c) {
      const std::size_t b0 = n * c / chunks, b1 = n * (c + 1) / chunks;
      auto& H = hist[c];
      for (std::size_t i = b0; i < b1; ++i)
        grid.for_each(m.positions[i], r_max, [&](std::size_t j, double d2) {
          if (j == i) return;
          const auto k = static_cast<std::size_t>(std::sqrt(d2) / bin);
          if (k < nb) H[(sp[i] * ns + sp[j]) * nb + k] += 1;
        });
    }
  });
  std::vector<double> total(nb * ns * ns, 0);
  for (const auto& H : hist)
    for (std::size_t k = 0; k < total.size(); ++k) total[k] += H[k];
  out.density = volume > 0 ? static_cast<double>(n) / volume : 0;
  out.r.resize(nb);
  out.g.assign(nb, 0);
  for (std::size_t k = 0; k < nb; ++k) {
    const double r0 = k * bin, r1 = (k + 1) * bin;
    out.r[k] = (k + 0.5) * bin;
    const double shell = 4.0 / 3.0 * kPi * (r1 * r1 * r1 - r0 * r0 * r0);
    double all = 0;
    for (std::size_t a = 0; a < ns * ns; ++a) all += total[a * nb + k];
    out.g[k] = out.density > 0 ? all / (n * shell * out.density) : 0;
    if (ns > 1)
      for (std::size_t a = 0; a < ns; ++a)
        for (std::size_t b = a; b < ns; ++b) {
          auto& v = out.partial[names[a] + "-" + names[b]];
          v.resize(nb, 0);
          const double rho_b = count[b] / volume;
          v[k] = volume > 0 ? total[(a * ns + b) * nb + k] / (count[a] * shell * rho_b) : 0;
        }
  }
  return out;
}

std::vector<double> steinhardt_q(const std::vector<Vec3>& p, double cutoff, int l) {
  std::vector<double> q(p.size(), std::numeric_limits<double>::quiet_NaN());
  if (p.empty()) return q;
  std::vector<double> norm(l + 1);
  for (int m = 0; m <= l; ++m) {
    double ratio = 1;  // (l - m)! / (l + m)!
    for (int k = l - m + 1; k <= l + m; ++k) ratio /= k;
    norm[m] = std::sqrt((2 * l + 1) / (4 * kPi) * ratio);
  }
  const NeighborSearch grid(p, cutoff, NeighborSearch::default_max_cells(p.size()));
  parallel_for(static_cast<std::int64_t>(p.size()), [&](std::int64_t b, std::int64_t e) {
    std::vector<std::complex<double>> acc(l + 1);
    for (std::int64_t i = b; i < e; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      int count = 0;
      grid.for_each(p[i], cutoff, [&](std::size_t j, double d2) {
        if (static_cast<std::int64_t>(j) == i || d2 <= 0) return;
        const Vec3 v = (p[j] - p[i]) / std::sqrt(d2);
        const double phi = std::atan2(v.y(), v.x());
        for (int m = 0; m <= l; ++m)
          acc[m] += norm[m] * legendre(l, m, v.z()) * std::polar(1.0, m * phi);
        ++count;
      });
      if (count == 0) continue;
      double sum = std::norm(acc[0]);
      for (int m = 1; m <= l; ++m) sum += 2 * std::norm(acc[m]);
      q[i] = std::sqrt(4 * kPi / (2 * l + 1) * sum) / count;
    }
  });
  return q;
}

}  // namespace aet
