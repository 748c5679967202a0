// The per-pixel arithmetic of the analytic Gaussian projector, shared by the CPU reference
// (project_atoms_cpu.cpp) and the CUDA kernel (cuda/phantoms/project_atoms.cu) so that both
// evaluate literally the same formula. Internal to aet_phantoms; free of Eigen and of anything
// the device cannot compile.
#pragma once

#include <math.h>  // ::erfc, ::sqrt: the same names resolve to the device functions under nvcc

#include "aet/core/host_device.hpp"

namespace aet::phantoms::detail {

// Each Gaussian is truncated at this many standard deviations from its centre: the 2D mass
// dropped is about 2 erfc(7 / sqrt 2) = 5e-12, far below any tolerance we test (1e-4 on totals),
// while the footprint stays small enough for the CPU to be fast.
constexpr double kGaussianCutoff = 7.0;

// Mass of the normal distribution N(mu, s^2) in the interval [lo, hi), i.e.
// Phi((hi - mu) / s) - Phi((lo - mu) / s). The erfc forms keep full relative precision far in
// either tail, where a difference of erf values close to +-1 would cancel. s == 0 is a point mass,
// so an atom without width still deposits all of its weight in exactly one pixel.
AET_HOST_DEVICE inline double interval_mass(double lo, double hi, double mu, double s) {
  if (!(s > 0.0)) return (mu >= lo && mu < hi) ? 1.0 : 0.0;
  const double k = 0.70710678118654752440 / s;  // 1 / (s sqrt 2)
  const double a = (lo - mu) * k, b = (hi - mu) * k;
  if (a >= 0.0) return 0.5 * (erfc(a) - erfc(b));    // interval right of the mean
  if (b <= 0.0) return 0.5 * (erfc(-b) - erfc(-a));  // interval left of the mean
  return 1.0 - 0.5 * (erfc(-a) + erfc(b));           // straddles the mean: 1 - both tails
}

// Lower edge of pixel (or voxel) i of an axis of n samples: the sample centre is (i - n/2) * a
// with integer division (docs/design.md: the centre is index n // 2), the sample spans +-a/2 around it.
AET_HOST_DEVICE inline double sample_lower_edge(long long i, long long n, double a) {
  return (static_cast<double>(i - n / 2) - 0.5) * a;
}
AET_HOST_DEVICE inline double sample_upper_edge(long long i, long long n, double a) {
  return (static_cast<double>(i - n / 2) + 0.5) * a;
}

// Inclusive index range [lo, hi] of the samples (pixels or voxels, size a) of an axis of n samples
// whose centre lies within `reach` of the coordinate x, clipped to [0, n); lo > hi when none
// does. One extra sample on each side guards against rounding: it receives at most the truncated
// mass (exactly 0 for a point atom). Clamping before the casts keeps far-away atoms defined.
inline void sample_window(double x, double reach, long long n, double a, long long& lo,
                          long long& hi) {
  const double c = static_cast<double>(n / 2);
  double first = floor((x - reach) / a + c) - 1.0;
  double last = ceil((x + reach) / a + c) + 1.0;
  const double nd = static_cast<double>(n);
  first = first < 0.0 ? 0.0 : (first > nd ? nd : first);
  last = last < -1.0 ? -1.0 : (last > nd - 1.0 ? nd - 1.0 : last);
  lo = static_cast<long long>(first);
  hi = static_cast<long long>(last);
}

// One Gaussian of an atom's projection: weight (integrated intensity) and width.
struct GaussianComponent {
  double weight;
  double sigma;
};

// The (up to) two Gaussians an atom projects to: the probe core, and the wide probe tail when
// tail_fraction > 0. Widths add in quadrature (a convolution of Gaussians).
struct ProjectedAtom {
  GaussianComponent c[2];
  int count;
};

inline ProjectedAtom projected_atom(double weight, double sigma_atom, double probe_sigma,
                                    double tail_fraction, double tail_sigma) {
  ProjectedAtom p{};
  p.c[0] = {weight * (1.0 - tail_fraction),
            ::sqrt(sigma_atom * sigma_atom + probe_sigma * probe_sigma)};
  p.count = 1;
  if (tail_fraction > 0.0) {
    p.c[1] = {weight * tail_fraction, ::sqrt(sigma_atom * sigma_atom + tail_sigma * tail_sigma)};
    p.count = 2;
  }
  return p;
}

}  // namespace aet::phantoms::detail
