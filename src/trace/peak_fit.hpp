// Sub-voxel fits of one peak of a reconstruction (docs/tracing.md): fit windows, the
// voxel-integrated Gaussian (Levenberg-Marquardt, one width or one per axis), the quartic
// polynomial, the centroid that stands in when a fit fails, the matched-filter intensity, and the
// atoms' typical width and shape taken from many fits. Internal to aet_trace.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "aet/core/array.hpp"

namespace aet::detail {

// Largest distance (voxels, per axis) of a polynomial fit's centre from its local maximum. The
// Gaussian fit allows half the minimum distance instead (Geometry::max_drift).
constexpr double kMaxDrift = 1.5;

// One fitted peak. Centre in voxel coordinates (index space), width in Angstrom.
struct Peak {
  double c[3] = {0, 0, 0};
  double intensity = 0;              // integrated, volume units times voxels
  double sigma_axis[3] = {0, 0, 0};  // Angstrom, per axis (all equal for the isotropic fit)
  double background = 0;
  double height = 0;
  double residual = 1;
  bool fallback = false;
  std::int64_t max_voxel[3] = {0, 0, 0};  // the local maximum the peak came from
  float max_value = 0;
  // Matched-filter intensity: the amplitude of a Gaussian of the atoms' typical width
  // (Geometry::ref_sigma) at the fitted centre, least squares with a constant background, in
  // the units of `intensity`. What the classes are built on (docs/tracing.md, step 5).
  double class_intensity = 0;
  // Width (Angstrom): the geometric mean of the per-axis widths (exactly the width when they are
  // equal, as for the isotropic fit, where cbrt(s^3) could differ from s in the last bit).
  double sigma() const {
    const double* s = sigma_axis;
    return s[0] == s[1] && s[1] == s[2] ? s[0] : std::cbrt(s[0] * s[1] * s[2]);
  }
};

struct Geometry {
  std::int64_t n[3];
  double v[3];    // voxel size, Angstrom
  double radius;  // fit window radius, Angstrom
  // Largest distance (Angstrom) of a Gaussian fit's centre from its local maximum.
  double max_drift = 0;
  // Width (Angstrom) of the fixed-width fit behind Peak::class_intensity; 0 = not computed.
  double ref_sigma = 0;
  // Per-axis width ratios of the one-width Gaussian (product 1): the atoms' common shape, which
  // the missing wedge stretches along z (PeakFit::gaussian_axes); 1, 1, 1 = isotropic.
  double shape[3] = {1, 1, 1};
};

// The voxels within the fit radius of a centre voxel, clipped to the volume. Local indices address
// the per-axis profiles of the separable models.
struct Window {
  std::int64_t o[3];                      // centre voxel
  int r[3];                               // half-width of the bounding box per axis (voxels)
  std::vector<std::array<int, 3>> local;  // 0 .. 2 r per axis
  std::vector<double> y;
};

Window make_window(const Array3& vol, const Geometry& g, const std::int64_t o[3], double radius);

constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// Voxel-integrated 1D Gaussian (unit integral) over the voxels first .. first + n - 1, with its
// derivatives with respect to the centre and the width (all in voxel units). Integrating over the
// voxel makes the model exact for ideal Gaussian-atom volumes and keeps the fitted amplitude the
// atom's integrated intensity. Defined here so that it inlines: where dc and ds are null, the
// compiler then drops the exp calls that only they need.
inline void axis_profile(std::int64_t first, int n, double c, double sig, double* g, double* dc,
                         double* ds) {
  for (int l = 0; l < n; ++l) {
    const double i = static_cast<double>(first + l);
    const double up = (i + 0.5 - c) / sig, um = (i - 0.5 - c) / sig;
    const double pp = kInvSqrt2Pi * std::exp(-0.5 * up * up);
    const double pm = kInvSqrt2Pi * std::exp(-0.5 * um * um);
    g[l] = 0.5 * (std::erf(up * M_SQRT1_2) - std::erf(um * M_SQRT1_2));
    if (dc) dc[l] = -(pp - pm) / sig;
    if (ds) ds[l] = -(up * pp - um * pm) / sig;
  }
}

// Levenberg-Marquardt fit of intensity * (voxel-integrated Gaussian) + background, with one
// width (times g.shape) or a width per axis. Fills pk (whose max_voxel must be set) and returns
// true; false when the fit diverges, the peak vanishes, a width leaves the window's range or the
// centre drifts beyond g.max_drift.
bool fit_gaussian(const Window& w, const Geometry& g, bool per_axis, Peak& pk);

// 4th-order polynomial fit with its maximum found by Newton steps; false when there is no
// maximum near pk.max_voxel.
bool fit_polynomial(const Window& w, const Geometry& g, Peak& pk);

// Centroid of the 3x3x3 block around the window centre above the background: what a peak gets
// when its fit fails, so that no candidate is lost for a numerical reason.
Peak centroid_peak(const Window& w, const Geometry& g);

// Matched-filter intensity of the peak centred at `c` (voxels), at the fixed width g.ref_sigma.
double fixed_width_intensity(const Window& w, const Geometry& g, const double c[3]);

// The atoms' typical width (Angstrom): the intensity-weighted median of the fitted widths; 0 when
// no fit converged.
double typical_width(const std::vector<Peak>& peaks);

// The atoms' common shape: per axis, the intensity-weighted median of the fitted width over the
// geometric mean width, normalised to a product of 1.
void atom_shape(const std::vector<Peak>& peaks, double shape[3]);

}  // namespace aet::detail
