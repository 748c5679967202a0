// The intensity normalisation shared by the network's inputs (training data) and inference: a
// volume divided by the height of its strongest atoms. Torch-free.
#pragma once

#include "aet/core/array.hpp"

namespace aet::nn {

// The intensity scale that normalisation divides by: a robust estimate of the height of the
// strongest atoms (no hand-set factor), > 0 for any volume with a positive voxel; throws
// InputError for an empty, all-zero or non-finite volume.
// Method: the local maxima (26 neighbours) with a positive value; the reference height is the
// 4th highest of them (so up to three hot voxels are ignored); the scale is the median height of
// the maxima at or above half the reference, i.e. of the peaks of the heaviest species.
// Order statistics only, so normalisation_scale(k v) = k normalisation_scale(v) for k > 0.
double normalisation_scale(const Array3& volume);
// volume / normalisation_scale(volume); returns the scale used.
double normalise_volume(Array3& volume);

}  // namespace aet::nn
