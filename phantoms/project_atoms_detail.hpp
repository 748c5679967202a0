// Internals of the analytic Gaussian projector (aet/phantoms/project_atoms.hpp): the input checks
// and the per-device back ends behind project_atoms' dispatch. Used by the phantoms sources, the
// CUDA kernel and the simulator tests; not part of the public API.
#pragma once

#include <cstdint>

#include "aet/core/array.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/phantoms/project_atoms.hpp"

namespace aet::phantoms::detail {

// Throws InputError unless the projector inputs are consistent (sizes, finite values, positive
// pixel and view size, at least one view, a valid imaging model).
void check_projection_inputs(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                             std::int64_t ny, double pixel, const ImagingModel& im);
void check_imaging_model(const ImagingModel& im);

// threads <= 0: aet::num_threads() (--threads). Views are independent and each is summed in atom
// order, so the result is bitwise identical for every thread count.
Array3 project_atoms_cpu(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                         std::int64_t ny, double pixel, const ImagingModel& im, int threads = 0);
#if AET_WITH_CUDA
Array3 project_atoms_cuda(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                          std::int64_t ny, double pixel, const ImagingModel& im, int device);
#endif

}  // namespace aet::phantoms::detail
