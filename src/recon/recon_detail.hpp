// Internal entry points of the solvers, shared between solvers.cpp and the back ends.
#pragma once

#include <cmath>
#include <cstdint>

#include "aet/geometry/rotation.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail {

// FISTA momentum factor beta_k = (t_k - 1) / t_{k+1}, t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2; t is
// updated. `restart` sets t_k = 1 first (beta 0). Shared by the CPU and CUDA solvers so both
// follow the same sequence.
inline double fista_beta(double& t, bool restart) {
  if (restart) t = 1.0;
  const double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
  const double beta = (t - 1.0) / t_next;
  t = t_next;
  return beta;
}

// Moves the sub-pixel part of every view's shift into the data (Fourier resampling of the view,
// mirror-padded) and leaves whole-pixel shifts in the geometry (src/recon/subpixel_shift.cpp).
// Returns false, touching nothing, when every shift is already a whole number of pixels.
bool move_subpixel_shifts(Array3& views, TiltGeometry& geometry);

// RESIRE / SIRT on a CUDA device with the volume and the views resident for the whole solve
// (cuda/recon/solvers.cu; CUDA builds only). Arguments already validated by reconstruct().
ReconResult run_iterative_cuda(const Array3& views, const TiltGeometry& geometry,
                               const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                               std::int64_t nz);

// GENFIRE on opt.device (src/recon/genfire.cpp: gridding and the CPU iteration with FFTW; the
// CUDA iteration with cuFFT in cuda/recon/genfire.cu). Arguments already validated.
ReconResult run_genfire(const Array3& views, const TiltGeometry& geometry, const ReconOptions& opt,
                        std::int64_t nx, std::int64_t ny, std::int64_t nz);

}  // namespace aet::detail
