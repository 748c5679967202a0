// Species classes from per-atom intensities (docs/tracing.md, steps 5 and 6): 1D k-means with one
// class more than species, the density-valley cut below the lightest species, and the local
// re-classification. Serial and in a fixed order, so results do not depend on threads.
#include "aet/trace/classify.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"
#include "classify_detail.hpp"

namespace aet {
namespace detail {
namespace {

struct Clusters {
  std::vector<int> label;      // per value, 0 .. k-1 in increasing centre order
  std::vector<double> centre;  // increasing
  std::vector<double> sd;
  double sse = 0;
};

// Lloyd iterations in 1D from the given centres.
Clusters lloyd(const std::vector<double>& x, std::vector<double> centre) {
  const std::size_t n = x.size(), k = centre.size();
  Clusters c;
  c.label.assign(n, -1);
  for (int it = 0; it < 500; ++it) {
    std::sort(centre.begin(), centre.end());
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      int best = 0;
      for (std::size_t j = 1; j < k; ++j)
        if (std::abs(x[i] - centre[j]) < std::abs(x[i] - centre[static_cast<std::size_t>(best)]))
          best = static_cast<int>(j);
      if (best != c.label[i]) changed = true;
      c.label[i] = best;
    }
    std::vector<double> sum(k, 0.0);
    std::vector<std::size_t> cnt(k, 0);
    for (std::size_t i = 0; i < n; ++i) {
      sum[static_cast<std::size_t>(c.label[i])] += x[i];
      ++cnt[static_cast<std::size_t>(c.label[i])];
    }
    for (std::size_t j = 0; j < k; ++j)
      if (cnt[j]) centre[j] = sum[j] / static_cast<double>(cnt[j]);
    if (!changed) break;
  }
  c.centre = centre;
  c.sd.assign(k, 0.0);
  std::vector<std::size_t> cnt(k, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const auto j = static_cast<std::size_t>(c.label[i]);
    const double d = x[i] - centre[j];
    c.sd[j] += d * d;
    c.sse += d * d;
    ++cnt[j];
  }
  for (std::size_t j = 0; j < k; ++j) c.sd[j] = cnt[j] ? std::sqrt(c.sd[j] / cnt[j]) : 0.0;
  return c;
}

// 1D k-means: the deterministic quantile start, then a few k-means++ starts drawn from `seed`;
// the lowest within-class sum of squares wins (the quantile start on ties).
Clusters kmeans_1d(const std::vector<double>& x, std::size_t k, std::uint64_t seed) {
  std::vector<double> sorted = x;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> init(k);
  for (std::size_t j = 0; j < k; ++j) {
    const double q = (static_cast<double>(j) + 0.5) / static_cast<double>(k);
    init[j] = sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * sorted.size()))];
  }
  Clusters best = lloyd(x, init);
  if (k < 2) return best;
  Rng rng(seed);
  for (int restart = 0; restart < 8; ++restart) {
    std::vector<double> c = {x[rng.below(x.size())]};
    while (c.size() < k) {
      std::vector<double> d2(x.size());
      double total = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        double m = HUGE_VAL;
        for (double cj : c) m = std::min(m, (x[i] - cj) * (x[i] - cj));
        d2[i] = m;
        total += m;
      }
      if (!(total > 0)) break;
      double r = rng.uniform() * total;
      std::size_t pick = x.size() - 1;
      for (std::size_t i = 0; i < x.size(); ++i) {
        r -= d2[i];
        if (r < 0) {
          pick = i;
          break;
        }
      }
      c.push_back(x[pick]);
    }
    if (c.size() < k) continue;
    Clusters trial = lloyd(x, c);
    if (trial.sse < best.sse * (1 - 1e-12)) best = std::move(trial);
  }
  return best;
}

// The cut between non-atoms (class 0) and the lightest species (class 1): the valley of the
// density of log intensity between the two class centres, then the geometric middle of the empty
// interval at that valley. k-means cuts halfway between the centres, which ignores the spreads: a
// few hundred noise peaks sit in a narrow class near zero and the light species spreads widely
// below its centre (surface atoms, Fe beside Pt), so the midpoint lies close to the weakest atoms
// and cut some of them (FePt). Where the populations are apart the valley lies in the empty gap
// between them, whose middle is the largest-margin cut. Where they touch (a real film, about a
// thousand noise and atom peaks) the widest empty interval is an accident of sampling anywhere
// between the centres (it cut half of the Ta atoms), while the density still has its valley where
// the two populations meet. The density is a Gaussian kernel estimate whose bandwidth follows
// Silverman's rule on the two classes' pooled spread. Returns 0 (keep the k-means labels) with
// fewer than two peaks between the centres or no valley there (then widest_gap_cut decides).
double valley_cut(const std::vector<double>& x, const Clusters& c) {
  if (!(c.centre[0] > 0)) return 0;
  const double lo = std::log(c.centre[0]), hi = std::log(c.centre[1]);
  std::vector<double> lx;
  double sum[2] = {0, 0}, sum2[2] = {0, 0};
  std::size_t cnt[2] = {0, 0}, between = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0) || c.label[i] > 1) continue;
    const double v = std::log(x[i]);
    lx.push_back(v);
    const auto j = static_cast<std::size_t>(c.label[i]);
    sum[j] += v;
    sum2[j] += v * v;
    ++cnt[j];
    between += v > lo && v < hi;
  }
  if (between < 2 || cnt[0] < 2 || cnt[1] < 2) return 0;
  double within = 0;
  for (int j = 0; j < 2; ++j) within += sum2[j] - sum[j] * sum[j] / static_cast<double>(cnt[j]);
  const double n = static_cast<double>(lx.size());
  const double h = 0.9 * std::sqrt(within / n) * std::pow(n, -0.2);
  if (!(h > 0)) return 0;
  std::sort(lx.begin(), lx.end());
  const int steps = 256;
  double best_t = 0, best_f = HUGE_VAL;
  for (int k = 1; k < steps; ++k) {
    const double t = lo + (hi - lo) * k / steps;
    double f = 0;
    // Only samples within 5 bandwidths contribute noticeably.
    for (auto it = std::lower_bound(lx.begin(), lx.end(), t - 5 * h);
         it != lx.end() && *it <= t + 5 * h; ++it)
      f += std::exp(-0.5 * (t - *it) * (t - *it) / (h * h));
    if (f < best_f) {
      best_f = f;
      best_t = t;
    }
  }
  // A density that falls all the way from one centre to the other has no valley between them.
  const double edge = (hi - lo) / steps;
  if (best_t <= lo + edge || best_t >= hi - edge) return 0;
  const auto above = std::upper_bound(lx.begin(), lx.end(), best_t);
  if (above == lx.begin() || above == lx.end()) return 0;
  return std::exp(0.5 * (*(above - 1) + *above));
}

// Where the density has no valley between the centres (it falls from one to the other): the
// geometric middle of the widest empty interval in log intensity between them. Returns 0 (keep the
// k-means labels) with fewer than two peaks there.
double widest_gap_cut(const std::vector<double>& x, const Clusters& c) {
  std::vector<double> between;
  for (double v : x)
    if (v > c.centre[0] && v < c.centre[1]) between.push_back(std::log(v));
  between.push_back(std::log(c.centre[0]));
  between.push_back(std::log(c.centre[1]));
  if (between.size() < 4 || !(c.centre[0] > 0)) return 0;
  std::sort(between.begin(), between.end());
  std::size_t best = 0;
  for (std::size_t i = 1; i + 1 < between.size(); ++i)
    if (between[i + 1] - between[i] > between[best + 1] - between[best]) best = i;
  return std::exp(0.5 * (between[best] + between[best + 1]));
}

// Two neighbouring classes of atoms are distinct species, not one population cut in two, when
// their gap is a sizeable fraction of the upper centre and large against their spreads (a normal
// sample cut in two gives about 2 spreads, a uniform one 2.4).
bool species_separated(const Clusters& c, std::size_t lo) {
  const double gap = c.centre[lo + 1] - c.centre[lo];
  const double spread = std::hypot(c.sd[lo], c.sd[lo + 1]);
  return gap >= 0.15 * c.centre[lo + 1] && gap >= 3.0 * spread;
}

// The lowest class is not atoms when it is weak (at most 35% of the lightest species) and apart
// from it. Noise peaks spread widely, so the spread test is looser than between species; the
// ratio test keeps a clean particle whole when k-means splits off a few bright outliers (merged
// double peaks, impurities) at the top.
bool non_atoms_separated(const Clusters& c) {
  const double gap = c.centre[1] - c.centre[0];
  return c.centre[0] <= 0.35 * c.centre[1] && gap >= 2.0 * std::hypot(c.sd[0], c.sd[1]);
}

bool all_separated(const Clusters& c, bool with_non_atoms) {
  if (with_non_atoms && c.centre.size() > 1 && !non_atoms_separated(c)) return false;
  for (std::size_t j = with_non_atoms ? 1 : 0; j + 1 < c.centre.size(); ++j)
    if (!species_separated(c, j)) return false;
  return true;
}

}  // namespace

std::string classify(const std::vector<double>& intensity, std::size_t n_species,
                     std::uint64_t seed, std::vector<int>& cls) {
  cls.assign(intensity.size(), 0);
  std::vector<std::size_t> idx;
  std::vector<double> x;
  for (std::size_t i = 0; i < intensity.size(); ++i)
    if (std::isfinite(intensity[i]) && intensity[i] > 0) {
      idx.push_back(i);
      x.push_back(intensity[i]);
    }
  if (x.empty()) return "no peaks";
  // A peak over a hundred times the 90th percentile (a diverged fit, a hot voxel) is no species'
  // atom that k-means could place: left in, it takes a class of its own and pushes every real atom
  // into the non-atom class. It is set aside as the heaviest class (real species differ by far
  // less: Z^1.7 gives 50 between O and Au), and said so.
  std::vector<std::size_t> outliers;
  if (x.size() >= 10) {
    std::vector<double> s = x;
    const auto q = s.begin() + static_cast<std::ptrdiff_t>(s.size() * 9 / 10);
    std::nth_element(s.begin(), q, s.end());
    const double cap = 100 * *q;
    std::vector<std::size_t> kept_idx;
    std::vector<double> kept_x;
    for (std::size_t t = 0; t < x.size(); ++t) {
      if (x[t] > cap) {
        outliers.push_back(idx[t]);
      } else {
        kept_idx.push_back(idx[t]);
        kept_x.push_back(x[t]);
      }
    }
    if (!outliers.empty()) {
      idx = std::move(kept_idx);
      x = std::move(kept_x);
    }
  }
  for (std::size_t i : outliers) cls[i] = static_cast<int>(n_species);
  const std::string outlier_note =
      outliers.empty() ? std::string()
                       : ", " + std::to_string(outliers.size()) +
                             " outliers over 100 times the 90th percentile set to the heaviest "
                             "class";
  if (!outliers.empty())
    log_warning("trace: " + std::to_string(outliers.size()) +
                " peaks over 100 times the 90th percentile of the intensities (diverged fits or "
                "hot voxels) were set aside from the classification, as the heaviest species");
  const std::size_t distinct = [&] {
    std::vector<double> s = x;
    std::sort(s.begin(), s.end());
    return static_cast<std::size_t>(std::unique(s.begin(), s.end()) - s.begin());
  }();
  // With one class more than species the lowest class is not atoms, if the classes are real.
  const std::size_t k_full = std::min(n_species + 1, distinct);
  Clusters c = kmeans_1d(x, k_full, seed);
  std::string how;
  int offset = 0;
  // Atoms are not a few bright peaks among many: classes above the lowest that hold under 5 % of
  // the peaks are outliers (merged peaks, a film's edge gathering material from outside the box)
  // and would otherwise make every other atom a non-atom.
  const auto above = static_cast<std::size_t>(
      std::count_if(c.label.begin(), c.label.end(), [](int l) { return l >= 1; }));
  const bool outlier_classes = k_full == n_species + 1 && 20 * above < x.size();
  if (k_full == n_species + 1 && all_separated(c, true) && !outlier_classes) {
    how = "kmeans " + std::to_string(k_full) + " classes, lowest = non-atoms";
    double cut = valley_cut(x, c);
    const char* rule = "density valley";
    if (!(cut > 0)) {
      cut = widest_gap_cut(x, c);
      rule = "no density valley: widest gap";
    }
    if (cut > 0) {
      for (std::size_t i = 0; i < x.size(); ++i)
        if (c.label[i] <= 1) c.label[i] = x[i] < cut ? 0 : 1;
      how += " below " + fmt_g(cut) + " (" + rule + "; k-means midpoint " +
             fmt_g(0.5 * (c.centre[0] + c.centre[1])) + ")";
    }
  } else {
    // No separate weak population: every peak is an atom (the Miao recipe would throw away the
    // weaker half of a clean single-species particle here).
    const std::size_t k = std::min(n_species, distinct);
    c = kmeans_1d(x, k, seed);
    offset = 1;
    how = "kmeans " + std::to_string(k) + " classes, no separate non-atom class";
    if (outlier_classes)
      how += " (the " + std::to_string(above) + " brightest of " + std::to_string(x.size()) +
             " peaks are too few to be the atoms)";
    if (!all_separated(c, false)) {
      how += ", classes overlap";
      log_warning("trace: the intensity classes overlap; species assignment is uncertain");
    }
  }
  std::string centres;
  for (std::size_t j = 0; j < c.centre.size(); ++j) centres += (j ? " " : "") + fmt_g(c.centre[j]);
  how += " (centres " + centres + ")" + outlier_note;
  for (std::size_t t = 0; t < idx.size(); ++t) cls[idx[t]] = c.label[t] + offset;
  return how;
}

std::string unlisted_species_warning(const std::vector<double>& intensity,
                                     const std::vector<int>& cls,
                                     const std::vector<std::string>& elements,
                                     const std::vector<Vec3>* positions) {
  std::vector<double> non, lightest;
  std::size_t atoms = 0;
  for (std::size_t i = 0; i < cls.size(); ++i) {
    atoms += cls[i] > 0;
    if (!(intensity[i] > 0) || !std::isfinite(intensity[i])) continue;
    if (cls[i] == 0) non.push_back(std::log(intensity[i]));
    if (cls[i] == 1) lightest.push_back(intensity[i]);
  }
  const std::size_t enough = std::max<std::size_t>(10, atoms / 10);
  if (non.size() < enough || lightest.empty()) return "";
  std::sort(non.begin(), non.end());
  // Prefix sums: the mean and sd of any run [a, b) of the sorted values.
  std::vector<double> s1(non.size() + 1, 0.0), s2(non.size() + 1, 0.0);
  for (std::size_t t = 0; t < non.size(); ++t) {
    s1[t + 1] = s1[t] + non[t];
    s2[t + 1] = s2[t] + non[t] * non[t];
  }
  auto mean = [&](std::size_t a, std::size_t b) {
    return (s1[b] - s1[a]) / static_cast<double>(b - a);
  };
  auto sd = [&](std::size_t a, std::size_t b) {
    const double m = mean(a, b);
    return std::sqrt(std::max(0.0, (s2[b] - s2[a]) / static_cast<double>(b - a) - m * m));
  };
  const std::size_t n = non.size();
  // The population: all of them when they are tight already; else the upper component of a
  // two-Gaussian mixture fitted by EM from the best split in two (a split alone hands a broad
  // noise population's tail to the tight group above it).
  double count = 0, centre = 0, spread = 0;
  if (sd(0, n) <= kUnlistedTight) {
    count = static_cast<double>(n);
    centre = mean(0, n);
    spread = sd(0, n);
  } else {
    std::size_t split = 1;
    double best = HUGE_VAL;
    for (std::size_t k = 1; k < n; ++k) {
      const double lo = sd(0, k), hi = sd(k, n);
      const double sse = static_cast<double>(k) * lo * lo + static_cast<double>(n - k) * hi * hi;
      if (sse < best) {
        best = sse;
        split = k;
      }
    }
    double w[2] = {static_cast<double>(split) / n, static_cast<double>(n - split) / n};
    double m[2] = {mean(0, split), mean(split, n)};
    double v[2] = {std::max(sd(0, split), 1e-3), std::max(sd(split, n), 1e-3)};
    std::vector<double> up(n);
    for (int it = 0; it < 200; ++it) {
      double r[2] = {0, 0}, rx[2] = {0, 0}, rxx[2] = {0, 0};
      for (std::size_t t = 0; t < n; ++t) {
        double p[2];
        for (int j = 0; j < 2; ++j) {
          const double z = (non[t] - m[j]) / v[j];
          p[j] = w[j] / v[j] * std::exp(-0.5 * z * z);
        }
        const double tot = p[0] + p[1];
        up[t] = tot > 0 ? p[1] / tot : (non[t] > m[1] ? 1.0 : 0.0);
        for (int j = 0; j < 2; ++j) {
          const double q = j ? up[t] : 1 - up[t];
          r[j] += q;
          rx[j] += q * non[t];
          rxx[j] += q * non[t] * non[t];
        }
      }
      if (!(r[0] > 1) || !(r[1] > 1)) break;
      for (int j = 0; j < 2; ++j) {
        w[j] = r[j] / n;
        m[j] = rx[j] / r[j];
        v[j] = std::sqrt(std::max(rxx[j] / r[j] - m[j] * m[j], 1e-6));
      }
    }
    // Apart from the noise: 3 of its own spreads and one of the noise's above the noise's centre
    // (noise spreads so widely that the two spreads together would hide any species near it).
    if (m[1] - m[0] >= std::max(3.0 * v[1], v[0])) {
      count = w[1] * n;
      centre = m[1];
      spread = v[1];
    }
  }
  if (count < static_cast<double>(enough) || !(spread <= kUnlistedTight)) return "";
  if (positions) {
    // Atoms of a species sit beside the others at bonding distance; peaks of streaks and noise
    // do not (most lie outside the particle or in its gaps). Members: within 2 spreads of the
    // population's centre.
    std::vector<Vec3> kept;
    for (std::size_t i = 0; i < cls.size(); ++i)
      if (cls[i] > 0) kept.push_back((*positions)[i]);
    if (kept.size() < 2) return "";
    const double bond = 1.25 * median_nearest_distance(kept);
    const NeighborSearch grid(kept, bond);
    std::size_t members = 0, bonded = 0;
    for (std::size_t i = 0; i < cls.size(); ++i) {
      if (cls[i] != 0 || !(intensity[i] > 0) ||
          std::abs(std::log(intensity[i]) - centre) > 2 * spread)
        continue;
      ++members;
      bonded += grid.nearest((*positions)[i], bond) >= 0;
    }
    if (members == 0 || bonded < kUnlistedBonded * static_cast<double>(members)) return "";
  }
  std::nth_element(lightest.begin(),
                   lightest.begin() + static_cast<std::ptrdiff_t>(lightest.size() / 2),
                   lightest.end());
  const double share = std::exp(centre) / lightest[lightest.size() / 2];
  const Element& light = element(elements.front());
  const double z = light.z * std::pow(share, 1.0 / 1.7);
  return "trace: " + std::to_string(std::lround(count)) +
         " peaks left out as non-atoms form a population of "
         "their own at " +
         fmt_g(100 * share, 2) + "% of the intensity of " + light.symbol +
         " atoms, as tight as one species' atoms and apart from the noise: a species lighter "
         "than " +
         light.symbol +
         " missing from --elements? (At Z^1.7 contrast its atomic number would be "
         "about " +
         std::to_string(static_cast<int>(std::lround(z))) +
         "; --elements lists every "
         "species, lightest first, e.g. Fe,Pt.)";
}

// Runs in index order, itself excluded from its neighbours, so the result does not depend on
// threads.
int local_reclassify(const std::vector<Vec3>& pos, const std::vector<double>& intensity,
                     std::size_t n_species, double radius, std::vector<int>& cls) {
  std::vector<double> gsum(n_species + 1, 0.0);
  std::vector<std::size_t> gcnt(n_species + 1, 0);
  for (std::size_t i = 0; i < pos.size(); ++i)
    if (cls[i] > 0) {
      gsum[static_cast<std::size_t>(cls[i])] += intensity[i];
      ++gcnt[static_cast<std::size_t>(cls[i])];
    }
  // No cell limit: the sums below follow the visiting order, which the cell size fixes.
  const NeighborSearch grid(pos, radius);
  int changes = 0;
  for (int pass = 0; pass < 20; ++pass) {
    int changed = 0;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      if (cls[i] <= 0) continue;
      std::vector<double> sum(n_species + 1, 0.0);
      std::vector<std::size_t> cnt(n_species + 1, 0);
      grid.for_each(pos[i], radius, [&](std::size_t u, double) {
        if (u == i || cls[u] <= 0) return;
        sum[static_cast<std::size_t>(cls[u])] += intensity[u];
        ++cnt[static_cast<std::size_t>(cls[u])];
      });
      int best = cls[i];
      double best_d = HUGE_VAL;
      for (std::size_t s = 1; s <= n_species; ++s) {
        const double mean = cnt[s]    ? sum[s] / static_cast<double>(cnt[s])
                            : gcnt[s] ? gsum[s] / static_cast<double>(gcnt[s])
                                      : NAN;
        if (!std::isfinite(mean)) continue;
        const double d = std::abs(intensity[i] - mean);
        if (d < best_d) {
          best_d = d;
          best = static_cast<int>(s);
        }
      }
      if (best != cls[i]) {
        cls[i] = best;
        ++changed;
      }
    }
    changes += changed;
    if (!changed) break;
  }
  return changes;
}

}  // namespace detail

ClassifyResult classify_atoms(AtomModel& model, const std::vector<double>& intensity,
                              const std::vector<std::string>& elements, std::uint64_t seed) {
  if (intensity.size() != model.size())
    fail_input("classify atoms: " + std::to_string(intensity.size()) + " intensities for " +
               std::to_string(model.size()) + " atoms");
  if (elements.empty()) fail_input("classify atoms: no elements given");
  for (const auto& e : elements) element(e);
  for (double x : intensity)
    if (!std::isfinite(x)) fail_input("classify atoms: an intensity is not finite");
  ClassifyResult res;
  std::vector<int> cls;
  res.how = detail::classify(intensity, elements.size(), seed, cls);
  std::vector<bool> keep(model.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    keep[i] = cls[i] > 0;
    if (!keep[i]) {
      ++res.removed;
      continue;
    }
    const std::string& e = elements[static_cast<std::size_t>(cls[i] - 1)];
    res.changed += model.species[i] != e;
    model.species[i] = e;
  }
  model.filter(keep);
  return res;
}

}  // namespace aet
