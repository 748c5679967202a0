// Atom tracing: atoms (species, positions, per-atom fit results) from a reconstructed volume.
// Method (Miao group, docs/tracing.md): local maxima, a sub-voxel fit of each peak, a minimum
// distance between atoms, then 1D k-means on matched-filter intensities (the amplitude of a
// Gaussian of the atoms' typical width at each fitted centre) with one class more than species
// (the lowest class is not an atom; it is cut off at the valley of the density of log intensity),
// then local re-classification.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/trace/classify.hpp"  // classify_atoms: the class decision on its own

namespace aet {

enum class PeakFit {
  gaussian,       // voxel-integrated isotropic 3D Gaussian plus constant background
                  // (Levenberg-Marquardt)
  gaussian_axes,  // the same with a width per axis: follows peaks that the missing wedge
                  // stretches along z, and models such neighbours' tails when they are subtracted
  polynomial      // 4th-order 3D polynomial (linear least squares), maximum found by Newton steps
};

const char* peak_fit_name(PeakFit f);
PeakFit parse_peak_fit(const std::string& name);  // throws InputError naming the valid values

struct TraceOptions {
  double min_distance = 2.0;                   // Angstrom, minimum distance between atoms
  std::vector<std::string> elements = {"Pt"};  // species by intensity order, lightest first
  PeakFit fit = PeakFit::gaussian;
  double fit_radius = 0.0;  // Angstrom half-width of the fit window; 0 = auto (0.7 * min_distance)
  // Candidate peaks below threshold * max are ignored, with max the 10th highest local maximum
  // (robust to a few hot voxels); 0 = auto: 0.05 (low enough for Fe beside Pt), raised to three
  // standard deviations of the noise seen in negative voxels when there are any.
  double threshold = 0.0;
  std::uint64_t seed = 0;  // k-means initialisation (restarts beside the deterministic one)
  // Re-assign each atom to the species whose local mean intensity (within 3 * min_distance) is
  // closest to its own; corrects slow intensity variations across a reconstruction.
  bool local_reclassify = true;
};

// Traces atoms in `volume` (voxel size from volume.voxel_size). Positions in Angstrom, centred on
// the rotation centre (voxel index n // 2 is 0). Properties: "intensity" (integrated intensity of
// the fitted peak within fit_radius, in volume units times voxels), "peak" (height above the
// local background), "fit_residual" (relative RMS residual of the fit), "class" (k-means class:
// 1 for the lightest species ... elements.size() for the heaviest; 0, not an atom, is removed),
// "fit_fallback" (1 where the fit failed and the centroid was used). Info records the options,
// the matched filter's width (trace_atom_width), the number of candidates, non-atoms and fit
// fallbacks, and the class decision with its cut (trace_classes); trace_warning when the peaks
// left out as non-atoms look like a species missing from `elements` (for the caller to report). Maxima on the faces of the volume
// are not traced. Throws InputError for an empty volume, NaN/Inf voxels, a non-positive voxel size,
// min_distance <= 0, a negative fit_radius or threshold (or threshold >= 1), no elements, or an
// unknown element.
AtomModel trace_atoms(const Array3& volume, const TraceOptions& opt);

}  // namespace aet
