// Analytic projection of Gaussian atoms: the simulator's forward model. It shares nothing with any
// reconstruction projector: each atom is an isotropic 3D Gaussian, whose line integral is a 2D
// Gaussian, integrated exactly over each pixel with error functions (separable in u and v).
//
// Intensity model: atom i has integrated intensity weight_i = scale * Z_i^exponent (or its
// "weight" property when present) and width sigma_i^2 = B_i / (8 pi^2) (B from its "b_factor"
// property, else the default). The probe adds a Gaussian core (probe_sigma) and an optional wide
// tail (tail_fraction of the intensity at tail_sigma), so each atom contributes two Gaussians.
// A noise-free view sums to the total weight of the atoms inside the field of view.
//
// Geometry (docs/design.md): a view with geometry g maps a centred atom position p to
// (u, v) = first two components of g.map(p) = R p + shift. Pixel (i, j) of an nx x ny view covers
// u in [(i - nx/2 - 1/2) a, (i - nx/2 + 1/2) a) and likewise v with j and ny (integer division),
// so its centre is ((i - nx/2) a, (j - ny/2) a). Each Gaussian is truncated at 7 sigma (dropped
// mass < 1e-11), and each pixel value is the exact integral of the rest over the pixel square.
#pragma once

#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::phantoms {

struct ImagingModel {
  double z_exponent = 1.7;
  double scale = 1.2e-5;       // weight of an atom = scale * Z^exponent (Angstrom^2 cross-section)
  double b_factor = 5.0;       // Angstrom^2, for atoms without a b_factor property
  double probe_sigma = 0.35;   // Angstrom, Gaussian core of the probe
  double tail_fraction = 0.0;  // fraction of the intensity in the wide probe tail
  double tail_sigma = 4.0;     // Angstrom
};

// Per-atom inputs of the projector after applying the intensity model.
// Atoms whose width is zero (B = 0) are accepted by the projectors (the pixel integral of a point
// is well defined), but gaussian_atoms only produces them when the probe gives them a width.
struct GaussianAtoms {
  std::vector<Vec3> positions;  // Angstrom, centred
  std::vector<double> weight;   // integrated intensity
  std::vector<double> sigma;    // Angstrom, atom width without probe
};
// Weight: the "weight" property when present, else scale * Z^z_exponent. Width: sqrt(B / 8 pi^2)
// with B the "b_factor" property when present and > 0, else im.b_factor. Throws InputError for an
// unknown element, a negative or non-finite B or weight, a non-finite position, an invalid imaging
// model, or B = 0 without a probe (a point that no pixel integral could spread).
GaussianAtoms gaussian_atoms(const AtomModel& model, const ImagingModel& im);

// Noise-free views (nx x ny x views), pixel size in Angstrom, pixel (i, j) centred at
// ((i - nx/2) a, (j - ny/2) a) in view coordinates (u, v) after the view's shift. voxel_size is
// the pixel on every axis. dev: cpu (threads over views) or cuda (throws InputError when this
// build has no CUDA, or when one view does not fit in the GPU's free memory).
Array3 project_atoms(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                     std::int64_t ny, double pixel, const ImagingModel& im, const Device& dev);

// The ideal target volume: each atom's 3D Gaussian (width sigma, no probe) integrated exactly over
// each voxel, voxel size `voxel`, centre at index n // 2. Sums to the total weight inside. An atom
// of zero width puts all its weight in the voxel that contains it.
Array3 ideal_volume(const GaussianAtoms& atoms, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                    double voxel);

}  // namespace aet::phantoms
