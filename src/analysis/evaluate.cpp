// Model evaluation: registration (signed axis permutation, translation vote, ICP with a
// proper-rotation Kabsch fit), greedy one-to-one matching and the scores. docs/evaluation.md
// describes the method; the comments here say why each step is the way it is.
#include "aet/analysis/evaluate.hpp"

#include <Eigen/LU>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <tuple>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/json.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

// Uniform grid (cell list) over a point set, for fixed-radius neighbour queries in O(1) per query
// at atomic densities. Cells are stored as a counting sort of point indices, so iteration order
// (and thus every result built from it) is deterministic.
class CellGrid {
 public:
  CellGrid(const std::vector<Vec3>& pts, double cell) : pts_(pts) {
    Vec3 lo = pts.front(), hi = pts.front();
    for (const auto& p : pts) {
      lo = lo.cwiseMin(p);
      hi = hi.cwiseMax(p);
    }
    origin_ = lo;
    h_ = cell;
    // A few far outliers must not make the grid huge: cap the cell count near 8 per point by
    // growing the cells (queries stay correct for any cell size, only slower).
    const double max_cells = 8.0 * static_cast<double>(pts.size()) + 4096.0;
    for (;;) {
      double total = 1;
      for (int a = 0; a < 3; ++a) {
        n_[a] = static_cast<std::int64_t>(std::floor((hi[a] - lo[a]) / h_)) + 1;
        total *= static_cast<double>(n_[a]);
      }
      if (total <= max_cells) break;
      h_ *= std::cbrt(total / max_cells) * 1.01;
    }
    const std::int64_t ncell = n_[0] * n_[1] * n_[2];
    start_.assign(static_cast<std::size_t>(ncell) + 1, 0);
    std::vector<std::int64_t> cell_of(pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i) {
      cell_of[i] = cell_index(pts[i]);
      ++start_[static_cast<std::size_t>(cell_of[i]) + 1];
    }
    for (std::int64_t c = 0; c < ncell; ++c) start_[c + 1] += start_[c];
    items_.resize(pts.size());
    std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
    for (std::size_t i = 0; i < pts.size(); ++i)
      items_[fill[static_cast<std::size_t>(cell_of[i])]++] = static_cast<std::uint32_t>(i);
  }

  double cell_size() const { return h_; }

  // Calls f(j, squared distance) for every point j within r of q.
  template <class F>
  void for_each_within(const Vec3& q, double r, F&& f) const {
    std::int64_t lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      const double fl = std::floor((q[a] - r - origin_[a]) / h_);
      const double fh = std::floor((q[a] + r - origin_[a]) / h_);
      if (fh < 0 || fl > static_cast<double>(n_[a] - 1)) return;  // outside the grid
      lo[a] = static_cast<std::int64_t>(std::max(fl, 0.0));
      hi[a] = static_cast<std::int64_t>(std::min(fh, static_cast<double>(n_[a] - 1)));
    }
    const double r2 = r * r;
    for (std::int64_t z = lo[2]; z <= hi[2]; ++z)
      for (std::int64_t y = lo[1]; y <= hi[1]; ++y) {
        const std::int64_t row = (z * n_[1] + y) * n_[0];
        for (std::uint32_t k = start_[row + lo[0]]; k < start_[row + hi[0] + 1]; ++k) {
          const std::uint32_t j = items_[k];
          const double d2 = (pts_[j] - q).squaredNorm();
          if (d2 <= r2) f(j, d2);
        }
      }
  }

  // Index of the nearest point within r (ties to the lower index), or -1; `skip` is excluded.
  std::int64_t nearest(const Vec3& q, double r, double* d2_out, std::int64_t skip = -1) const {
    std::int64_t best = -1;
    double best_d2 = 0;
    for_each_within(q, r, [&](std::uint32_t j, double d2) {
      if (static_cast<std::int64_t>(j) == skip) return;
      if (best < 0 || d2 < best_d2 || (d2 == best_d2 && j < best)) {
        best = j;
        best_d2 = d2;
      }
    });
    if (d2_out) *d2_out = best_d2;
    return best;
  }

 private:
  std::int64_t cell_index(const Vec3& p) const {
    std::int64_t c[3];
    for (int a = 0; a < 3; ++a)
      c[a] = std::clamp<std::int64_t>(static_cast<std::int64_t>((p[a] - origin_[a]) / h_), 0,
                                      n_[a] - 1);
    return (c[2] * n_[1] + c[1]) * n_[0] + c[0];
  }

  const std::vector<Vec3>& pts_;
  Vec3 origin_;
  double h_ = 1;
  std::int64_t n_[3] = {1, 1, 1};
  std::vector<std::uint32_t> start_, items_;
};

// parallel_for starts its threads per call; the many small queries of candidate ICP runs (a few
// thousand atoms each) are faster on the calling thread.
void for_range(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n < 20000) {
    if (n > 0) body(0, n);
  } else {
    parallel_for(n, body);
  }
}

struct SignedPermutation {
  Mat3 m;
  std::string name;
};

// The 48 signed axis permutations, identity first, so that ties between symmetry-equivalent
// registrations of a symmetric particle resolve to the plain one.
std::vector<SignedPermutation> signed_permutations() {
  std::vector<SignedPermutation> out;
  int perm[3] = {0, 1, 2};
  do {
    for (int s = 0; s < 8; ++s) {
      SignedPermutation sp{Mat3::Zero(), ""};
      for (int row = 0; row < 3; ++row) {
        const bool neg = (s >> row) & 1;
        sp.m(row, perm[row]) = neg ? -1.0 : 1.0;
        if (row) sp.name += ' ';
        if (neg) sp.name += '-';
        sp.name += "xyz"[perm[row]];
      }
      out.push_back(sp);
    }
  } while (std::next_permutation(perm, perm + 3));
  return out;
}

// Coordinate-wise median: a centre that a few far outliers or a missing corner barely move.
Vec3 median_centre(const std::vector<Vec3>& pts) {
  Vec3 c;
  std::vector<double> v(pts.size());
  for (int a = 0; a < 3; ++a) {
    for (std::size_t i = 0; i < pts.size(); ++i) v[i] = pts[i][a];
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    c[a] = *mid;
  }
  return c;
}

struct Pair {
  std::uint32_t i, j;  // traced, truth
  double d2;
};

// Greedy one-to-one matching of moved traced points to truth points within r, by increasing
// distance (ties by index, so the result never depends on thread scheduling).
std::vector<Pair> match_greedy(const std::vector<Vec3>& moved, const CellGrid& grid,
                               std::size_t n_truth, double r) {
  std::vector<Pair> cand;
  std::mutex mu;
  for_range(static_cast<std::int64_t>(moved.size()), [&](std::int64_t b, std::int64_t e) {
    std::vector<Pair> local;
    for (std::int64_t i = b; i < e; ++i)
      grid.for_each_within(moved[i], r, [&](std::uint32_t j, double d2) {
        local.push_back({static_cast<std::uint32_t>(i), j, d2});
      });
    std::lock_guard<std::mutex> lock(mu);
    cand.insert(cand.end(), local.begin(), local.end());
  });
  std::sort(cand.begin(), cand.end(), [](const Pair& a, const Pair& b) {
    return std::tie(a.d2, a.i, a.j) < std::tie(b.d2, b.i, b.j);
  });
  std::vector<char> used_i(moved.size(), 0), used_j(n_truth, 0);
  std::vector<Pair> out;
  for (const auto& p : cand) {
    if (used_i[p.i] || used_j[p.j]) continue;
    used_i[p.i] = used_j[p.j] = 1;
    out.push_back(p);
  }
  return out;
}

// Cheaper pairing for ICP iterations: each traced point's nearest truth point within r, made one
// to one by keeping the closest claimant of each truth point.
std::vector<Pair> match_nearest(const std::vector<Vec3>& moved, const CellGrid& grid,
                                std::size_t n_truth, double r) {
  std::vector<std::int64_t> nn(moved.size());
  std::vector<double> nd2(moved.size());
  for_range(static_cast<std::int64_t>(moved.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) nn[i] = grid.nearest(moved[i], r, &nd2[i]);
  });
  std::vector<Pair> cand;
  for (std::size_t i = 0; i < moved.size(); ++i)
    if (nn[i] >= 0)
      cand.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(nn[i]), nd2[i]});
  std::sort(cand.begin(), cand.end(), [](const Pair& a, const Pair& b) {
    return std::tie(a.d2, a.i, a.j) < std::tie(b.d2, b.i, b.j);
  });
  std::vector<char> used_j(n_truth, 0);
  std::vector<Pair> out;
  for (const auto& p : cand)
    if (!used_j[p.j]) {
      used_j[p.j] = 1;
      out.push_back(p);
    }
  return out;
}

std::vector<Vec3> transform(const std::vector<Vec3>& src, const Mat3& R, const Vec3& t) {
  std::vector<Vec3> out(src.size());
  for (std::size_t i = 0; i < src.size(); ++i) out[i] = R * src[i] + t;
  return out;
}

// Translation offsets (to add to a coarse alignment) where most traced atoms land on truth atoms:
// every traced atom votes for the displacement to each truth atom within `reach`, and the peaks of
// the vote histogram are the candidates. This is what makes registration independent of
// centring conventions and of missing or extra atoms, which bias any centroid.
std::vector<std::pair<double, Vec3>> translation_candidates(
    const std::vector<Vec3>& moved, const CellGrid& grid, const std::vector<Vec3>& truth,
    double reach, double bin, std::size_t max_candidates, double near_bias) {
  const int half = static_cast<int>(std::ceil(reach / bin));
  const int nb = 2 * half + 1;
  const auto at = [nb](int x, int y, int z) {
    return (static_cast<std::size_t>(z) * nb + y) * nb + x;
  };
  std::vector<float> hist(static_cast<std::size_t>(nb) * nb * nb, 0.0f);
  std::vector<std::size_t> occupied;
  for (const auto& q : moved)
    grid.for_each_within(q, reach, [&](std::uint32_t j, double) {
      const Vec3 d = (truth[j] - q) / bin;
      // Bins on the border are left empty, so the 3x3x3 sums below never leave the histogram.
      const int x = static_cast<int>(std::floor(d.x() + 0.5)) + half;
      const int y = static_cast<int>(std::floor(d.y() + 0.5)) + half;
      const int z = static_cast<int>(std::floor(d.z() + 0.5)) + half;
      if (x < 1 || y < 1 || z < 1 || x > nb - 2 || y > nb - 2 || z > nb - 2) return;
      const std::size_t k = at(x, y, z);
      if (hist[k] == 0) occupied.push_back(k);
      hist[k] += 1;
    });
  // Score of a bin: the 3x3x3 sum around it, so a peak split across bin edges by jitter or a
  // small rotation still counts whole. Only occupied bins are scored: a sharp peak sits on one.
  struct Peak {
    double votes;
    std::size_t bin;
  };
  std::vector<Peak> peaks;
  float top = 0;
  for (std::size_t k : occupied) top = std::max(top, hist[k]);
  const std::ptrdiff_t sy = nb, sz = static_cast<std::ptrdiff_t>(nb) * nb;
  for (std::size_t k : occupied) {
    if (hist[k] < 0.1f * top) continue;  // background between lattice peaks
    double v = 0;
    for (std::ptrdiff_t dz = -sz; dz <= sz; dz += sz)
      for (std::ptrdiff_t dy = -sy; dy <= sy; dy += sy)
        for (std::ptrdiff_t dx = -1; dx <= 1; ++dx) {
          const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(k) + dz + dy + dx;
          if (n >= 0 && n < static_cast<std::ptrdiff_t>(hist.size())) v += hist[n];
        }
    if (near_bias > 0) {
      // Inside a crystal the peaks of all lattice shifts are nearly equal; among those, the one
      // nearest the coarse alignment is the likeliest.
      const Vec3 c(static_cast<double>(k % nb) - half, static_cast<double>((k / nb) % nb) - half,
                   static_cast<double>(k / (static_cast<std::size_t>(nb) * nb)) - half);
      v *= 1.0 - near_bias * std::min(1.0, c.norm() * bin / reach);
    }
    peaks.push_back({v, k});
  }
  // Highest first (ties by bin, so the order is deterministic), then greedy suppression of
  // everything within 1 A of a chosen peak.
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
    return a.votes != b.votes ? a.votes > b.votes : a.bin < b.bin;
  });
  std::vector<std::pair<double, Vec3>> out;
  for (const auto& p : peaks) {
    if (out.size() >= max_candidates) break;
    const int x = static_cast<int>(p.bin % nb), y = static_cast<int>((p.bin / nb) % nb),
              z = static_cast<int>(p.bin / (static_cast<std::size_t>(nb) * nb));
    // Sub-bin position: centre of mass of the votes in the 3x3x3 block.
    Vec3 com = Vec3::Zero();
    double mass = 0;
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const double w = hist[at(x + dx, y + dy, z + dz)];
          com += w * Vec3(x + dx - half, y + dy - half, z + dz - half);
          mass += w;
        }
    const Vec3 offset = com / mass * bin;
    bool distinct = true;
    for (const auto& o : out) distinct = distinct && (o.second - offset).norm() > 1.0;
    if (distinct) out.emplace_back(p.votes, offset);
  }
  if (out.empty()) out.emplace_back(0.0, Vec3::Zero());
  return out;
}

struct Fit {
  Mat3 R = Mat3::Identity();
  Vec3 t = Vec3::Zero();
  std::size_t matched = 0;
  double rmsd = 0;  // Angstrom
};

bool better(const Fit& a, const Fit& b) {
  if (a.matched != b.matched) return a.matched > b.matched;
  return a.rmsd < b.rmsd - 1e-6;  // equal within 1e-6 A: keep the earlier (plainer) candidate
}

// The largest refining rotation ICP may apply on top of the axis permutation. Anything larger is
// another permutation's job (or a different particle); allowing it would let ICP slide into a
// wrong lattice orientation.
constexpr double kMaxRefineDeg = 30.0;

// ICP: pairs within a shrinking radius, then the best proper rotation (Kabsch with the
// determinant fixed, so the permutation's handedness is kept) and translation, until the pairs
// stop changing at the final radius. R is P times a small proper rotation throughout.
Fit icp(const std::vector<Vec3>& src, const std::vector<Vec3>& truth, const CellGrid& grid,
        const Mat3& P, Mat3 R, Vec3 t, const std::vector<double>& radii, double match_radius) {
  const int max_iter = static_cast<int>(radii.size()) + 60;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> prev;
  std::size_t stage = 0;
  for (int it = 0; it < max_iter; ++it) {
    const double r = radii[stage];
    const std::vector<Vec3> moved = transform(src, R, t);
    const std::vector<Pair> pairs = match_nearest(moved, grid, truth.size(), r);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> ids;
    ids.reserve(pairs.size());
    for (const auto& p : pairs) ids.emplace_back(p.i, p.j);
    std::sort(ids.begin(), ids.end());
    const bool last_stage = stage + 1 == radii.size();
    if (last_stage && ids == prev) break;  // converged: the fit would reproduce itself
    prev = std::move(ids);
    if (!last_stage) ++stage;
    if (pairs.empty()) continue;

    // Fit in the permuted frame a = P p, so the correction is a proper rotation Q: R = Q P.
    Vec3 cb = Vec3::Zero(), cs = Vec3::Zero();
    for (const auto& p : pairs) {
      cs += src[p.i];
      cb += truth[p.j];
    }
    const double n = static_cast<double>(pairs.size());
    cs /= n;
    cb /= n;
    const Vec3 ca = P * cs;
    Mat3 Q = R * P.transpose();
    if (pairs.size() >= 3) {
      Mat3 H = Mat3::Zero();
      for (const auto& p : pairs) H += (P * src[p.i] - ca) * (truth[p.j] - cb).transpose();
      const Mat3 Qn = nearest_rotation(H.transpose());
      const double angle = rotation_angle_deg(Qn);
      // A degenerate pair set (collinear, or a few atoms) can ask for any rotation: keep the
      // current one then and fit the translation alone.
      if (angle <= kMaxRefineDeg) Q = Qn;
    }
    R = Q * P;
    t = cb - R * cs;
  }
  Fit f;
  f.R = R;
  f.t = t;
  const std::vector<Pair> m = match_greedy(transform(src, R, t), grid, truth.size(), match_radius);
  f.matched = m.size();
  double s = 0;
  for (const auto& p : m) s += p.d2;
  f.rmsd = m.empty() ? 0.0 : std::sqrt(s / static_cast<double>(m.size()));
  return f;
}

void check_model(const AtomModel& m, const char* what) {
  if (m.size() == 0) fail_input(std::string("evaluate: the ") + what + " model holds no atoms");
  if (m.species.size() != m.positions.size())
    fail_input(std::string("evaluate: the ") + what + " model has " +
               std::to_string(m.species.size()) + " species for " +
               std::to_string(m.positions.size()) + " positions");
  for (std::size_t i = 0; i < m.size(); ++i)
    if (!m.positions[i].allFinite())
      fail_input(std::string("evaluate: atom ") + std::to_string(i + 1) + " of the " + what +
                 " model has a non-finite position");
  if (m.size() > std::numeric_limits<std::uint32_t>::max())
    fail_input(std::string("evaluate: the ") + what + " model is too large");
}

// Coordination of each truth atom and the surface threshold (auto values resolved).
struct Surface {
  std::vector<char> is_surface;
  double cutoff = 0;
  int threshold = 0;
};

Surface find_surface(const std::vector<Vec3>& pts, const CellGrid& grid, double cutoff,
                     int threshold) {
  const std::size_t n = pts.size();
  Surface s;
  if (cutoff <= 0) {
    // 1.2 x the median nearest-neighbour distance lies between the first and second shells of
    // fcc/hcp (ratio 1.41) and includes bcc's second shell (ratio 1.15), whatever the element.
    std::vector<double> nn;
    Vec3 lo = pts.front(), hi = pts.front();
    for (const auto& p : pts) {
      lo = lo.cwiseMin(p);
      hi = hi.cwiseMax(p);
    }
    const double span = std::max((hi - lo).norm(), grid.cell_size());
    std::vector<double> d(n, kNaN);
    for_range(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i)
        for (double r = grid.cell_size(); r <= 2 * span; r *= 2) {
          double d2 = 0;
          if (grid.nearest(pts[i], r, &d2, i) >= 0) {
            d[i] = std::sqrt(d2);
            break;
          }
        }
    });
    for (double v : d)
      if (std::isfinite(v)) nn.push_back(v);
    if (!nn.empty()) {
      const auto mid = nn.begin() + static_cast<std::ptrdiff_t>(nn.size() / 2);
      std::nth_element(nn.begin(), mid, nn.end());
      cutoff = 1.2 * *mid;
    }
  }
  s.cutoff = cutoff;
  std::vector<int> coord(n, 0);
  if (cutoff > 0)
    for_range(static_cast<std::int64_t>(n), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i)
        grid.for_each_within(pts[i], cutoff, [&](std::uint32_t j, double) {
          if (static_cast<std::int64_t>(j) != i) ++coord[i];
        });
    });
  if (threshold <= 0) {
    // Bulk coordination: the most common value in the better-coordinated half. A small particle
    // can have more surface than bulk atoms (162 of 309 in a cuboctahedron), so a plain mode or
    // median would pick a surface value.
    std::vector<int> sorted = coord;
    std::sort(sorted.begin(), sorted.end());
    const int median = sorted[n / 2];
    int bulk = median, best_count = 0;
    for (std::size_t k = 0; k < n;) {
      std::size_t e = k;
      while (e < n && sorted[e] == sorted[k]) ++e;
      if (sorted[k] >= median && static_cast<int>(e - k) >= best_count) {
        best_count = static_cast<int>(e - k);
        bulk = sorted[k];
      }
      k = e;
    }
    // Two below bulk: an atom beside one or two vacancies stays bulk, while every fcc surface
    // site (at most 9 neighbours, on a (111) facet) is below 10.
    threshold = std::max(1, bulk - 2);
  }
  s.threshold = threshold;
  s.is_surface.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.is_surface[i] = coord[i] < threshold;
  return s;
}

}  // namespace

EvaluationResult evaluate(const AtomModel& traced, const AtomModel& truth,
                          const EvaluateOptions& opt) {
  check_model(traced, "traced");
  check_model(truth, "truth");
  if (!std::isfinite(opt.match_radius) || opt.match_radius <= 0)
    fail_input("evaluate: the match radius must be > 0, got " + json_number(opt.match_radius));
  if (!std::isfinite(opt.surface_cutoff) || opt.surface_cutoff < 0)
    fail_input("evaluate: the surface cutoff must be >= 0, got " + json_number(opt.surface_cutoff));
  if (opt.surface_max_coordination < 0)
    fail_input("evaluate: the surface coordination threshold must be >= 0");

  const std::vector<Vec3>& src = traced.positions;
  const std::vector<Vec3>& dst = truth.positions;
  // ICP starts wide enough to catch a coarse alignment that is off by half a bond, and ends at
  // the matching radius, so the final fit uses exactly the pairs that are scored.
  const double r0 = std::max(3.0, 2.0 * opt.match_radius);
  const CellGrid grid(dst, r0);
  std::vector<double> radii;
  for (double r = r0; r > opt.match_radius * 1.05; r *= 0.7) radii.push_back(r);
  radii.push_back(opt.match_radius);

  EvaluationResult res;
  res.truth_atoms = truth.size();
  res.traced_atoms = traced.size();
  res.match_radius = opt.match_radius;

  if (opt.register_models) {
    std::vector<SignedPermutation> perms = signed_permutations();
    if (!opt.allow_axis_permutations) perms.resize(1);

    // Candidates are compared on an even subsample so that 48 permutations stay cheap for 10^5
    // atoms. The subsample spans the whole model on purpose: inside a crystal every lattice
    // translation fits equally well, and only the boundary tells the true registration from one
    // shifted by a lattice vector.
    constexpr std::size_t kFitAtoms = 3000, kCentralAtoms = 1000;
    std::vector<Vec3> sub;
    if (src.size() <= kFitAtoms) {
      sub = src;
    } else {
      for (std::size_t k = 0; k < kFitAtoms; ++k) sub.push_back(src[k * src.size() / kFitAtoms]);
    }
    const Vec3 c_src = median_centre(src), c_dst = median_centre(dst);
    // The atoms nearest the centre give the first translation: a residual rotation of a degree
    // or two moves them least (at 50 A from the centre it moves atoms by a bond length).
    std::vector<Vec3> central = sub;
    if (central.size() > kCentralAtoms) {
      std::stable_sort(central.begin(), central.end(), [&](const Vec3& x, const Vec3& y) {
        return (x - c_src).squaredNorm() < (y - c_src).squaredNorm();
      });
      central.resize(kCentralAtoms);
    }

    struct Candidate {
      std::size_t perm;
      Fit fit;
    };
    std::vector<Candidate> cands;
    for (std::size_t pi = 0; pi < perms.size(); ++pi) {
      const Mat3& P = perms[pi].m;
      const Vec3 t0 = c_dst - P * c_src;
      // 1. Translation vote from the centre, then ICP: this recovers the small rotation, though
      //    possibly at a lattice-shifted translation (the centre cannot tell those apart).
      const auto first =
          translation_candidates(transform(central, P, t0), grid, dst,
                                 /*reach=*/6.0, /*bin=*/0.4, /*max=*/1, /*near_bias=*/0.1);
      const Fit f1 = icp(sub, dst, grid, P, P, t0 + first[0].second, radii, opt.match_radius);
      cands.push_back({pi, f1});
      // 2. With the rotation right, a vote over the whole subsample counts the overlap of each
      //    lattice shift exactly; the best other shifts are refined too.
      const auto shifts =
          translation_candidates(transform(sub, f1.R, f1.t), grid, dst,
                                 /*reach=*/6.0, /*bin=*/0.4, /*max=*/3, /*near_bias=*/0.0);
      int tried = 0;
      for (const auto& sh : shifts) {
        if (sh.second.norm() < 1.0 || tried == 2) continue;
        ++tried;
        cands.push_back(
            {pi, icp(sub, dst, grid, P, f1.R, f1.t + sh.second, radii, opt.match_radius)});
      }
    }
    const auto by_fit = [&](const Candidate& x, const Candidate& y) {
      if (better(x.fit, y.fit)) return true;
      if (better(y.fit, x.fit)) return false;
      return x.perm < y.perm;  // ties: the plainer permutation
    };
    std::stable_sort(cands.begin(), cands.end(), by_fit);
    // On the subsample, close rivals (a lattice-shifted or near-symmetric registration) can be
    // within a few atoms of each other: the best few are refined and decided on the full model.
    if (sub.size() < src.size()) {
      std::size_t keep = 1;
      while (keep < cands.size() && keep < 4 &&
             static_cast<double>(cands[keep].fit.matched) >= 0.9 * cands[0].fit.matched)
        ++keep;
      cands.resize(keep);
      for (auto& c : cands)
        c.fit = icp(src, dst, grid, perms[c.perm].m, c.fit.R, c.fit.t, radii, opt.match_radius);
      std::stable_sort(cands.begin(), cands.end(), by_fit);
    }
    res.rotation = cands[0].fit.R;
    res.translation = cands[0].fit.t;
    res.permutation = perms[cands[0].perm].name;
  }

  const std::vector<Vec3> moved = transform(src, res.rotation, res.translation);
  const std::vector<Pair> pairs = match_greedy(moved, grid, dst.size(), opt.match_radius);
  const Surface surf = find_surface(dst, grid, opt.surface_cutoff, opt.surface_max_coordination);
  res.surface_cutoff = surf.cutoff;
  res.surface_max_coordination = surf.threshold;

  res.matched = pairs.size();
  res.recall = static_cast<double>(res.matched) / static_cast<double>(res.truth_atoms);
  res.precision = static_cast<double>(res.matched) / static_cast<double>(res.traced_atoms);
  double sum_d = 0, sum_d2 = 0, max_d = 0;
  std::size_t same_species = 0;
  Vec3 sum_axis2 = Vec3::Zero();
  // Sums of squared distances per class, turned into RMS values below.
  std::map<std::string, double> species_d2;
  double surface_d2 = 0, interior_d2 = 0;
  for (const auto& s : truth.species) res.by_species.emplace(s, EvaluationResult::Part{});
  for (const auto& p : pairs) {
    const double d = std::sqrt(p.d2);
    sum_d += d;
    sum_d2 += p.d2;
    max_d = std::max(max_d, d);
    sum_axis2 += (moved[p.i] - dst[p.j]).cwiseAbs2();
    if (traced.species[p.i] == truth.species[p.j]) ++same_species;
    ++res.by_species[truth.species[p.j]].matched;
    species_d2[truth.species[p.j]] += p.d2;
    if (surf.is_surface[p.j]) {
      ++res.surface_matched;
      surface_d2 += p.d2;
    } else {
      interior_d2 += p.d2;
    }
  }
  const auto rms_pm = [](double sum2, std::size_t n) {
    return n == 0 ? kNaN : 100.0 * std::sqrt(sum2 / static_cast<double>(n));
  };
  for (auto& [s, part] : res.by_species) part.rmsd_pm = rms_pm(species_d2[s], part.matched);
  res.surface_rmsd_pm = rms_pm(surface_d2, res.surface_matched);
  res.interior_rmsd_pm = rms_pm(interior_d2, pairs.size() - res.surface_matched);
  for (int a = 0; a < 3; ++a) res.rmsd_axis_pm[a] = rms_pm(sum_axis2[a], pairs.size());
  for (char s : surf.is_surface) res.surface_atoms += s ? 1 : 0;
  const double m = static_cast<double>(res.matched);
  // Errors in picometres: the scale at which AET precision is quoted.
  res.rmsd_pm = pairs.empty() ? kNaN : 100.0 * std::sqrt(sum_d2 / m);
  res.mean_error_pm = pairs.empty() ? kNaN : 100.0 * sum_d / m;
  res.max_error_pm = pairs.empty() ? kNaN : 100.0 * max_d;
  res.species_accuracy = pairs.empty() ? kNaN : static_cast<double>(same_species) / m;
  res.surface_recall = res.surface_atoms == 0 ? kNaN
                                              : static_cast<double>(res.surface_matched) /
                                                    static_cast<double>(res.surface_atoms);
  return res;
}

std::string EvaluationResult::to_json() const {
  std::ostringstream js;
  js << "{\n  \"truth_atoms\": " << truth_atoms << ",\n  \"traced_atoms\": " << traced_atoms
     << ",\n  \"matched\": " << matched << ",\n  \"recall\": " << json_number(recall)
     << ",\n  \"precision\": " << json_number(precision)
     << ",\n  \"rmsd_pm\": " << json_number(rmsd_pm)
     << ",\n  \"mean_error_pm\": " << json_number(mean_error_pm)
     << ",\n  \"max_error_pm\": " << json_number(max_error_pm) << ",\n  \"rmsd_axis_pm\": ["
     << json_number(rmsd_axis_pm.x()) << ", " << json_number(rmsd_axis_pm.y()) << ", "
     << json_number(rmsd_axis_pm.z()) << "],\n  \"by_species\": {";
  bool first = true;
  for (const auto& [s, part] : by_species) {
    js << (first ? "" : ", ") << json_escape(s) << ": {\"matched\": " << part.matched
       << ", \"rmsd_pm\": " << json_number(part.rmsd_pm) << "}";
    first = false;
  }
  js << "},\n  \"surface_rmsd_pm\": " << json_number(surface_rmsd_pm)
     << ",\n  \"interior_rmsd_pm\": " << json_number(interior_rmsd_pm)
     << ",\n  \"surface_atoms\": " << surface_atoms
     << ",\n  \"surface_matched\": " << surface_matched
     << ",\n  \"surface_recall\": " << json_number(surface_recall)
     << ",\n  \"species_accuracy\": " << json_number(species_accuracy) << ",\n  \"rotation\": [";
  for (int r = 0; r < 3; ++r)
    js << (r ? ", " : "") << "[" << json_number(rotation(r, 0)) << ", "
       << json_number(rotation(r, 1)) << ", " << json_number(rotation(r, 2)) << "]";
  js << "],\n  \"translation\": [" << json_number(translation.x()) << ", "
     << json_number(translation.y()) << ", " << json_number(translation.z())
     << "],\n  \"permutation\": " << json_escape(permutation)
     << ",\n  \"match_radius\": " << json_number(match_radius)
     << ",\n  \"surface_cutoff\": " << json_number(surface_cutoff)
     << ",\n  \"surface_max_coordination\": " << surface_max_coordination << "\n}\n";
  return js.str();
}

}  // namespace aet
