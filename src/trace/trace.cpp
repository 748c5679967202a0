// Atom tracing (docs/tracing.md). Every stage is deterministic: candidates are collected per z
// slice and concatenated in order, fits of different atoms are independent (parallel_for writes
// each atom's own slot), and the greedy and clustering steps run serially in a fixed order.
#include "aet/trace/trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "classify_detail.hpp"
#include "peak_fit.hpp"

namespace aet {

const char* peak_fit_name(PeakFit f) {
  switch (f) {
    case PeakFit::gaussian:
      return "gaussian";
    case PeakFit::gaussian_axes:
      return "gaussian-axes";
    case PeakFit::polynomial:
      return "polynomial";
  }
  return "?";
}

PeakFit parse_peak_fit(const std::string& name) {
  if (name == "gaussian") return PeakFit::gaussian;
  if (name == "gaussian-axes") return PeakFit::gaussian_axes;
  if (name == "polynomial") return PeakFit::polynomial;
  fail_input("unknown peak fit '" + name + "' (valid: gaussian, gaussian-axes, polynomial)");
}

namespace {

using detail::atom_shape;
using detail::axis_profile;
using detail::centroid_peak;
using detail::fit_gaussian;
using detail::fit_polynomial;
using detail::fixed_width_intensity;
using detail::Geometry;
using detail::kMaxDrift;
using detail::make_window;
using detail::Peak;
using detail::typical_width;
using detail::Window;

// Fraction of the robust maximum below which candidates are ignored by default: low enough to keep
// Fe beside Pt (peak ratio (26/78)^1.7 = 0.15) with noise, high enough to skip flat background.
constexpr double kAutoThreshold = 0.05;
// Rank of the local maximum used as "max": a few hot voxels do not set the threshold.
constexpr std::size_t kRobustMaxRank = 10;
// Gauss-Newton passes that subtract the neighbours' fitted peaks from each window. One pass
// removes most of the bias from overlapping tails; the second settles it (docs/tracing.md).
constexpr int kDeblendPasses = 2;

struct Candidate {
  std::int64_t x, y, z;
  float value;
};

// ---- candidates ---------------------------------------------------------------------------------

// A voxel is a local maximum when no neighbour of its 3x3x3 block is larger; on plateaus only the
// first voxel in memory order counts, so a flat top gives one candidate, not many. Voxels on the
// faces of the volume are skipped: their block is incomplete, so they are not known to be maxima,
// and a fit there (half a window) is unreliable.
std::vector<Candidate> local_maxima(const Array3& vol) {
  const std::int64_t nx = vol.nx(), ny = vol.ny(), nz = vol.nz();
  std::vector<std::vector<Candidate>> per_z(static_cast<std::size_t>(nz));
  parallel_for(nz, [&](std::int64_t z0, std::int64_t z1) {
    for (std::int64_t z = std::max<std::int64_t>(z0, 1); z < std::min(z1, nz - 1); ++z)
      for (std::int64_t y = 1; y < ny - 1; ++y)
        for (std::int64_t x = 1; x < nx - 1; ++x) {
          const float v = vol(x, y, z);
          if (!(v > 0.0f)) continue;
          bool is_max = true;
          for (int dz = -1; dz <= 1 && is_max; ++dz) {
            const std::int64_t zz = z + dz;
            if (zz < 0 || zz >= nz) continue;
            for (int dy = -1; dy <= 1 && is_max; ++dy) {
              const std::int64_t yy = y + dy;
              if (yy < 0 || yy >= ny) continue;
              for (int dx = -1; dx <= 1; ++dx) {
                const std::int64_t xx = x + dx;
                if (xx < 0 || xx >= nx || (dx == 0 && dy == 0 && dz == 0)) continue;
                const float w = vol(xx, yy, zz);
                const bool earlier = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                if (w > v || (earlier && w == v)) {
                  is_max = false;
                  break;
                }
              }
            }
          }
          if (is_max) per_z[static_cast<std::size_t>(z)].push_back({x, y, z, v});
        }
  });
  std::vector<Candidate> all;
  for (auto& c : per_z) all.insert(all.end(), c.begin(), c.end());
  return all;
}

// ---- minimum distance ---------------------------------------------------------------------------

Vec3 physical(const Peak& p, const Geometry& g) {
  return Vec3(p.c[0] * g.v[0], p.c[1] * g.v[1], p.c[2] * g.v[2]);
}

// Greedy minimum distance: strongest maximum first (ties by index), each kept peak removes every
// weaker one closer than min_distance. The raw maximum orders them because a fit may land a noise
// ripple on the same spot as the atom beside it.
std::vector<bool> enforce_min_distance(const std::vector<Peak>& peaks, const Geometry& g,
                                       double min_distance) {
  const std::size_t n = peaks.size();
  std::vector<Vec3> pos(n);
  for (std::size_t i = 0; i < n; ++i) pos[i] = physical(peaks[i], g);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return peaks[a].max_value > peaks[b].max_value;
  });
  // Whether any kept peak is close does not depend on the visiting order, so the cells may grow:
  // a minimum distance near 0 would otherwise ask for a huge grid.
  const NeighborSearch grid(pos, min_distance, NeighborSearch::default_max_cells(n));
  std::vector<bool> keep(n, false);
  for (std::size_t i : order) {
    bool clash = false;
    grid.for_each(pos[i], min_distance, [&](std::size_t j, double) {
      if (keep[j] && (pos[j] - pos[i]).norm() < min_distance) clash = true;
    });
    keep[i] = !clash;
  }
  return keep;
}

template <class T>
std::vector<T> select(const std::vector<T>& v, const std::vector<bool>& keep) {
  std::vector<T> out;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (keep[i]) out.push_back(v[i]);
  return out;
}

// ---- fits ---------------------------------------------------------------------------------------

// Fits every peak, with window data minus the fitted models of its neighbours (`previous`, when
// given): overlapping tails of close atoms otherwise pull each centre toward its neighbours.
// With `free_axes` a Gaussian fit has a width per axis, otherwise one width times g.shape.
std::vector<Peak> fit_peaks(const Array3& vol, const Geometry& g, PeakFit kind,
                            const std::vector<Peak>& seeds, const std::vector<Peak>* previous,
                            bool free_axes = false) {
  const std::size_t n = seeds.size();
  std::vector<Peak> out(n);
  std::vector<Vec3> pos;
  double max_sigma = 0;
  if (previous) {
    for (const auto& p : *previous) {
      pos.push_back(physical(p, g));
      max_sigma = std::max({max_sigma, p.sigma_axis[0], p.sigma_axis[1], p.sigma_axis[2]});
    }
  }
  // A neighbour matters within the window radius plus five of its own widths: the widest peak
  // sets the search radius, each neighbour is subtracted only within its own reach. (One broad
  // noise fit would otherwise make every window subtract the thousands of peaks within its
  // reach, a cost that grows with the volume's noise, not with its atoms.)
  const double margin = 2 * std::max({g.v[0], g.v[1], g.v[2]});
  const double reach = g.radius + 5 * max_sigma + margin;
  std::vector<double> reach2;
  if (previous) {
    for (const auto& p : *previous) {
      const double r =
          g.radius + 5 * std::max({p.sigma_axis[0], p.sigma_axis[1], p.sigma_axis[2]}) + margin;
      reach2.push_back(r * r);
    }
  }
  // No cell limit: neighbours are subtracted in the visiting order, which the cell size fixes.
  const NeighborSearch grid(pos, std::max(reach, 1e-6));
  parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const Peak& seed = seeds[static_cast<std::size_t>(i)];
      std::int64_t o[3];
      for (int a = 0; a < 3; ++a)
        o[a] = std::clamp<std::int64_t>(std::llround(seed.c[a]), 0, g.n[a] - 1);
      Window w = make_window(vol, g, o, g.radius);
      if (previous) {
        std::vector<double> prof[3];
        grid.for_each(physical(seed, g), reach, [&](std::size_t j, double d2) {
          if (j == static_cast<std::size_t>(i) || d2 > reach2[j]) return;
          const Peak& nb = (*previous)[j];
          if (!(nb.intensity > 0)) return;
          for (int a = 0; a < 3; ++a) {
            prof[a].resize(static_cast<std::size_t>(2 * w.r[a] + 1));
            axis_profile(w.o[a] - w.r[a], 2 * w.r[a] + 1, nb.c[a], nb.sigma_axis[a] / g.v[a],
                         prof[a].data(), nullptr, nullptr);
          }
          for (std::size_t k = 0; k < w.y.size(); ++k) {
            const auto& l = w.local[k];
            w.y[k] -= nb.intensity * prof[0][l[0]] * prof[1][l[1]] * prof[2][l[2]];
          }
        });
      }
      Peak pk;
      for (int a = 0; a < 3; ++a) pk.max_voxel[a] = seed.max_voxel[a];
      pk.max_value = seed.max_value;
      const bool ok = kind == PeakFit::polynomial ? fit_polynomial(w, g, pk)
                                                  : fit_gaussian(w, g, free_axes, pk);
      if (!ok) {
        // The centroid is taken around the original maximum, where the peak certainly is.
        std::int64_t m[3] = {seed.max_voxel[0], seed.max_voxel[1], seed.max_voxel[2]};
        Window mw =
            m[0] == o[0] && m[1] == o[1] && m[2] == o[2] ? w : make_window(vol, g, m, g.radius);
        pk = centroid_peak(mw, g);
        for (int a = 0; a < 3; ++a) pk.max_voxel[a] = seed.max_voxel[a];
        pk.max_value = seed.max_value;
      }
      pk.class_intensity = g.ref_sigma > 0 ? fixed_width_intensity(w, g, pk.c) : pk.intensity;
      out[static_cast<std::size_t>(i)] = pk;
    }
  });
  return out;
}

}  // namespace

AtomModel trace_atoms(const Array3& volume, const TraceOptions& opt) {
  if (volume.empty()) fail_input("trace: the volume is empty");
  const VoxelSize& vs = volume.voxel_size;
  for (double v : {vs.x, vs.y, vs.z})
    if (!std::isfinite(v) || v <= 0) fail_input("trace: the voxel size must be positive");
  if (!std::isfinite(opt.min_distance) || opt.min_distance <= 0)
    fail_input("trace: min_distance must be > 0 Angstrom, got " + fmt_g(opt.min_distance));
  if (!std::isfinite(opt.fit_radius) || opt.fit_radius < 0)
    fail_input("trace: fit_radius must be >= 0 Angstrom (0 = auto), got " + fmt_g(opt.fit_radius));
  if (!std::isfinite(opt.threshold) || opt.threshold < 0 || opt.threshold >= 1)
    fail_input("trace: threshold must be in [0, 1) (0 = auto), got " + fmt_g(opt.threshold));
  if (opt.elements.empty()) fail_input("trace: at least one element is needed");
  for (const auto& e : opt.elements) element(e);  // throws InputError naming an unknown symbol
  for (float v : volume.vector())
    if (!std::isfinite(v)) fail_input("trace: the volume holds NaN or infinite values");

  Geometry g;
  g.n[0] = volume.nx();
  g.n[1] = volume.ny();
  g.n[2] = volume.nz();
  g.v[0] = vs.x;
  g.v[1] = vs.y;
  g.v[2] = vs.z;
  const double vmax = std::max({vs.x, vs.y, vs.z});
  // The window must hold enough voxels for the model: two voxels for the Gaussian's six
  // parameters, two and a half for the polynomial's 35 terms.
  const double min_radius = (opt.fit == PeakFit::polynomial ? 2.5 : 2.0) * vmax;
  g.radius = std::max(opt.fit_radius > 0 ? opt.fit_radius : 0.7 * opt.min_distance, min_radius);
  g.max_drift = std::max(0.5 * opt.min_distance, kMaxDrift * vmax);

  // (1) candidates
  std::vector<Candidate> maxima = local_maxima(volume);
  double robust_max = 0;
  if (!maxima.empty()) {
    std::vector<float> top(maxima.size());
    for (std::size_t i = 0; i < maxima.size(); ++i) top[i] = maxima[i].value;
    const std::size_t rank = std::min(kRobustMaxRank, top.size()) - 1;
    std::nth_element(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(rank), top.end(),
                     std::greater<float>());
    robust_max = top[rank];
  }
  const double frac = opt.threshold > 0 ? opt.threshold : kAutoThreshold;
  double cut = frac * robust_max;
  double noise_floor = 0;
  if (opt.threshold == 0) {
    // Zero-mean noise on a background near zero shows in the negative voxels; three of its
    // standard deviations keep most noise ripples out of the candidates (a reconstruction with a
    // positivity constraint has no negative voxels, and then no floor).
    double s2 = 0;
    std::size_t neg = 0;
    for (float v : volume.vector())
      if (v < 0) {
        s2 += static_cast<double>(v) * v;
        ++neg;
      }
    if (neg > 100) noise_floor = 3 * std::sqrt(s2 / static_cast<double>(neg));
    cut = std::max(cut, noise_floor);
  }
  std::vector<Peak> seeds;
  for (const auto& m : maxima) {
    if (m.value < cut) continue;
    Peak p;
    p.max_voxel[0] = m.x;
    p.max_voxel[1] = m.y;
    p.max_voxel[2] = m.z;
    p.c[0] = static_cast<double>(m.x);
    p.c[1] = static_cast<double>(m.y);
    p.c[2] = static_cast<double>(m.z);
    p.max_value = m.value;
    seeds.push_back(p);
  }
  log_verbose("trace: " + std::to_string(maxima.size()) + " local maxima, " +
              std::to_string(seeds.size()) + " above " + fmt_g(cut));

  // (3) minimum distance, first on the maxima themselves (less the rounding of two maxima to
  // voxels, so that atoms min_distance apart both stay): merging before any fit matters because
  // the fit of one of two close peaks is pulled toward the other.
  const double rounding = std::sqrt(3.0) * vmax;
  seeds = select(seeds, enforce_min_distance(seeds, g, std::max(0.0, opt.min_distance - rounding)));
  // (2) independent fits...
  std::vector<Peak> peaks =
      fit_peaks(volume, g, opt.fit, seeds, nullptr, opt.fit == PeakFit::gaussian_axes);
  if (opt.fit == PeakFit::gaussian_axes) atom_shape(peaks, g.shape);
  if (opt.fit != PeakFit::polynomial) {
    // ...where two fits that converged onto one atom keep only the stronger (each would otherwise
    // subtract the other's copy of the atom below)...
    peaks = select(peaks, enforce_min_distance(peaks, g, 0.5 * opt.min_distance));
    // ...then fits with the neighbours' fitted peaks subtracted from each window.
    // The deblending passes also give each peak its matched-filter intensity, at the atoms'
    // typical width from these first fits.
    g.ref_sigma = typical_width(peaks);
    for (int pass = 0; pass < kDeblendPasses; ++pass)
      peaks = fit_peaks(volume, g, opt.fit, peaks, &peaks);
    // The full minimum distance on the refined positions. The survivors are refitted once
    // without the peaks just dropped, which were part of them (split maxima) or noise beside them.
    const std::vector<bool> keep = enforce_min_distance(peaks, g, opt.min_distance);
    if (std::find(keep.begin(), keep.end(), false) != keep.end()) {
      peaks = select(peaks, keep);
      peaks = fit_peaks(volume, g, opt.fit, peaks, &peaks);
      peaks = select(peaks, enforce_min_distance(peaks, g, opt.min_distance));
    }
  } else {
    peaks = select(peaks, enforce_min_distance(peaks, g, opt.min_distance));
  }

  // (4) classes from the integrated intensities
  std::vector<double> intensity(peaks.size());
  for (std::size_t i = 0; i < peaks.size(); ++i) intensity[i] = peaks[i].class_intensity;
  std::vector<int> cls;
  const std::string how = detail::classify(intensity, opt.elements.size(), opt.seed, cls);

  // (5) local re-classification among the species
  const std::vector<Vec3> pos_all = [&] {
    std::vector<Vec3> p;
    for (const auto& pk : peaks) p.push_back(physical(pk, g));
    return p;
  }();
  const std::string unlisted =
      detail::unlisted_species_warning(intensity, cls, opt.elements, &pos_all);
  int reclassified = 0;
  if (opt.local_reclassify && opt.elements.size() > 1)
    reclassified = detail::local_reclassify(pos_all, intensity, opt.elements.size(),
                                            3.0 * opt.min_distance, cls);

  AtomModel model;
  // Columns are filled locally and attached at the end: property() may reallocate the list.
  std::vector<double> p_int, p_peak, p_res, p_cls, p_fb;
  std::size_t non_atoms = 0, fallbacks = 0;
  const double centre[3] = {centre_index(g.n[0]), centre_index(g.n[1]), centre_index(g.n[2])};
  for (std::size_t i = 0; i < peaks.size(); ++i) {
    if (cls[i] <= 0) {
      ++non_atoms;
      continue;
    }
    const Peak& pk = peaks[i];
    fallbacks += pk.fallback;
    model.species.push_back(opt.elements[static_cast<std::size_t>(cls[i] - 1)]);
    model.positions.emplace_back((pk.c[0] - centre[0]) * g.v[0], (pk.c[1] - centre[1]) * g.v[1],
                                 (pk.c[2] - centre[2]) * g.v[2]);
    p_int.push_back(pk.intensity);
    p_peak.push_back(pk.height);
    p_res.push_back(pk.residual);
    p_cls.push_back(cls[i]);
    p_fb.push_back(pk.fallback ? 1.0 : 0.0);
  }

  model.properties = {{"intensity", std::move(p_int)},
                      {"peak", std::move(p_peak)},
                      {"fit_residual", std::move(p_res)},
                      {"class", std::move(p_cls)},
                      {"fit_fallback", std::move(p_fb)}};

  std::string elems;
  for (const auto& e : opt.elements) elems += (elems.empty() ? "" : ",") + e;
  model.set_info("trace_fit", peak_fit_name(opt.fit));
  model.set_info("trace_elements", elems);
  model.set_info("trace_min_distance", fmt_g(opt.min_distance));
  model.set_info("trace_fit_radius", fmt_g(g.radius));
  model.set_info("trace_atom_width", fmt_g(g.ref_sigma));
  model.set_info("trace_atom_shape",
                 fmt_g(g.shape[0]) + " " + fmt_g(g.shape[1]) + " " + fmt_g(g.shape[2]));
  model.set_info("trace_threshold", fmt_g(frac));
  model.set_info("trace_cut", fmt_g(cut));
  model.set_info("trace_candidates", std::to_string(seeds.size()));
  model.set_info("trace_non_atoms", std::to_string(non_atoms));
  model.set_info("trace_fit_fallbacks", std::to_string(fallbacks));
  model.set_info("trace_classes", how);
  model.set_info("trace_reclassified", std::to_string(reclassified));
  if (!unlisted.empty()) model.set_info("trace_warning", unlisted);  // the caller reports it
  log_verbose("trace: " + std::to_string(model.size()) + " atoms, " + std::to_string(non_atoms) +
              " non-atoms removed, " + std::to_string(fallbacks) + " centroid fallbacks; " + how);
  return model;
}

}  // namespace aet
