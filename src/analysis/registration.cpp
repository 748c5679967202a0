// Registration of a traced model onto the truth (docs/evaluation.md): the signed axis
// permutations, a translation vote, ICP with a proper-rotation Kabsch fit, and the one-to-one
// matching that scores each candidate. The comments say why each step is the way it is.
#include "evaluate_detail.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <tuple>
#include <utility>

#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"

namespace aet::detail {
namespace {

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
    c[a] = median_of(v);
  }
  return c;
}

}  // namespace

// Greedy one-to-one matching of moved traced points to truth points within r, by increasing
// distance (ties by index, so the result never depends on thread scheduling).
std::vector<Pair> match_greedy(const std::vector<Vec3>& moved, const NeighborSearch& grid,
                               std::size_t n_truth, double r) {
  std::vector<Pair> cand;
  std::mutex mu;
  parallel_for(static_cast<std::int64_t>(moved.size()), [&](std::int64_t b, std::int64_t e) {
    std::vector<Pair> local;
    for (std::int64_t i = b; i < e; ++i)
      grid.for_each(moved[i], r, [&](std::size_t j, double d2) {
        local.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d2});
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

namespace {

// Cheaper pairing for ICP iterations: each traced point's nearest truth point within r, made one
// to one by keeping the closest claimant of each truth point.
std::vector<Pair> match_nearest(const std::vector<Vec3>& moved, const NeighborSearch& grid,
                                std::size_t n_truth, double r) {
  std::vector<std::int64_t> nn(moved.size());
  std::vector<double> nd2(moved.size());
  parallel_for(static_cast<std::int64_t>(moved.size()), [&](std::int64_t b, std::int64_t e) {
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

}  // namespace

std::vector<Vec3> transform(const std::vector<Vec3>& src, const Mat3& R, const Vec3& t) {
  std::vector<Vec3> out(src.size());
  for (std::size_t i = 0; i < src.size(); ++i) out[i] = R * src[i] + t;
  return out;
}

namespace {

// Translation offsets (to add to a coarse alignment) where most traced atoms land on truth atoms:
// every traced atom votes for the displacement to each truth atom within `reach`, and the peaks of
// the vote histogram are the candidates. This is what makes registration independent of
// centring conventions and of missing or extra atoms, which bias any centroid.
std::vector<std::pair<double, Vec3>> translation_candidates(
    const std::vector<Vec3>& moved, const NeighborSearch& grid, const std::vector<Vec3>& truth,
    double reach, double bin, std::size_t max_candidates, double near_bias) {
  const int half = static_cast<int>(std::ceil(reach / bin));
  const int nb = 2 * half + 1;
  const auto at = [nb](int x, int y, int z) {
    return (static_cast<std::size_t>(z) * nb + y) * nb + x;
  };
  std::vector<float> hist(static_cast<std::size_t>(nb) * nb * nb, 0.0f);
  std::vector<std::size_t> occupied;
  for (const auto& q : moved)
    grid.for_each(q, reach, [&](std::size_t j, double) {
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
Fit icp(const std::vector<Vec3>& src, const std::vector<Vec3>& truth, const NeighborSearch& grid,
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

}  // namespace

Registration find_registration(const std::vector<Vec3>& src, const std::vector<Vec3>& dst,
                               const NeighborSearch& grid, const std::vector<double>& radii,
                               const EvaluateOptions& opt) {
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
  return {cands[0].fit.R, cands[0].fit.t, perms[cands[0].perm].name};
}

}  // namespace aet::detail
