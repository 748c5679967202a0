// Internal entry points of the solvers, shared between solvers.cpp and the back ends.
#pragma once

#include <cstdint>

#include "aet/geometry/rotation.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail {

// RESIRE / SIRT on a CUDA device with the volume and the views resident for the whole solve
// (cuda/recon/solvers.cu; CUDA builds only). Arguments already validated by reconstruct().
ReconResult run_iterative_cuda(const Array3& views, const TiltGeometry& geometry,
                               const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                               std::int64_t nz);

// GENFIRE on opt.device (src/recon/genfire.cpp: gridding and the CPU iteration with FFTW; the
// CUDA iteration with cuFFT in cuda/recon/genfire.cu). Arguments already validated.
ReconResult run_genfire(const Array3& views, const TiltGeometry& geometry,
                        const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                        std::int64_t nz);

}  // namespace aet::detail
