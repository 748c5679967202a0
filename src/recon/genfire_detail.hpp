// GENFIRE internals shared by the host code (src/recon/genfire.cpp: options, gridding, the CPU
// iteration, the R factor record) and the CUDA iteration (cuda/recon/genfire.cu).
//
// Fourier grid layout: the oversampled real box gx x gy x gz (x fastest) holds the volume with
// its centre voxel (index n/2) at grid index 0 on every axis, i.e. volume voxel v sits at grid
// index (v - n/2) mod g, so the plain DFT of the box is the transform about the rotation centre
// and no fftshift phases are needed. Transforms are real-to-complex: the spectrum is stored as the
// non-redundant half hx = gx/2 + 1 along x (FFTW's and cuFFT's layout, row-major z, y, x), and the
// real box in place with rows padded to 2 hx floats. Grid sizes are even; the Nyquist planes are
// never constrained.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/host_device.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail::genfire {

// What the gridding found at a spectrum element.
enum : std::uint8_t {
  kUnmeasured = 0,   // no view sample within the interpolation radius: left free
  kConstrained = 1,  // replaced by the measured value (once inside the resolution limit)
  kHeldOut = 2,      // measured but never enforced: scored by R_free
};

// Signed frequency index of DFT index i on an axis of n samples (n even: n/2 maps to -n/2).
AET_HOST_DEVICE inline std::int64_t signed_frequency(std::int64_t i, std::int64_t n) {
  return i < n / 2 ? i : i - n;
}

// Volume index along an axis (volume size n, grid size g >= n) of grid index i, or -1 when the
// grid index lies outside the volume (the zero-padded part of the box).
AET_HOST_DEVICE inline std::int64_t volume_index(std::int64_t i, std::int64_t n, std::int64_t g) {
  const std::int64_t h = n / 2;
  if (i < n - h) return i + h;
  if (i >= g - h) return i - g + h;
  return -1;
}

// Squared spatial frequency (cycles per voxel) of spectrum element (ix, iy, iz) of the half grid.
AET_HOST_DEVICE inline double frequency_squared(std::int64_t ix, std::int64_t iy, std::int64_t iz,
                                                std::int64_t gx, std::int64_t gy, std::int64_t gz) {
  const double fx = static_cast<double>(ix) / static_cast<double>(gx);
  const double fy = static_cast<double>(signed_frequency(iy, gy)) / static_cast<double>(gy);
  const double fz = static_cast<double>(signed_frequency(iz, gz)) / static_cast<double>(gz);
  return fx * fx + fy * fy + fz * fz;
}

// The gridded problem: everything the iteration needs, on the host.
struct Problem {
  std::int64_t nx = 0, ny = 0, nz = 0;        // volume
  std::int64_t gx = 0, gy = 0, gz = 0;        // oversampled box
  std::int64_t hx = 0;                        // gx / 2 + 1
  std::vector<std::complex<float>> measured;  // hx * gy * gz, zero where unmeasured
  std::vector<std::uint8_t> kind;             // hx * gy * gz, kUnmeasured / kConstrained / kHeldOut
  // Per iteration (0-based): constrained elements with squared frequency <= this are enforced
  // (resolution extension); +inf enforces all.
  std::vector<double> limit_squared;
  double free_norm = 0;  // sum over held-out elements of w |F_meas| (w = 2 off the x = 0 plane)
  std::size_t constrained = 0, held_out = 0;             // counts of half-grid elements
  std::int64_t views_nx = 0, views_ny = 0, n_views = 0;  // the measured stack
  std::int64_t pad_u = 0, pad_v = 0;  // zero-padded view size of the gridding transforms
  std::size_t half_size() const { return static_cast<std::size_t>(hx * gy * gz); }
  std::size_t padded_real_size() const { return 2 * half_size(); }
  double grid_elements() const {
    return static_cast<double>(gx) * static_cast<double>(gy) * static_cast<double>(gz);
  }
};

// The sizes of the problem: the oversampled box and the view stack (no gridding yet).
Problem problem_sizes(std::int64_t view_nx, std::int64_t view_ny, std::int64_t n_views,
                      const GenfireOptions& go, std::int64_t nx, std::int64_t ny, std::int64_t nz);

// The gridding in three parts, so that MPI ranks can each grid a share of the views: the views'
// padding (from every view's geometry: the same on every rank), the inverse-distance weighted
// sums of the samples of some views, and the weighted means with the element kinds, the R_free
// draw and the resolution schedule.
struct GridSums {
  std::vector<std::complex<float>> sum;  // half grid
  std::vector<float> wsum;
};
void set_padding(Problem& p, const TiltGeometry& geometry, double radius);
GridSums grid_sums(const Problem& p, const Array3& views, const TiltGeometry& geometry,
                   double radius);
void finish_grid(Problem& p, GridSums sums, const ReconOptions& opt);

// The three over the MPI ranks (distributed.cpp): each rank grids every size-th view, the sums
// are added over the ranks (so the result equals one process's up to the order of float
// additions), rank 0 finishes.
void grid_views_distributed(Problem& p, const Array3& views, const TiltGeometry& geometry,
                            const ReconOptions& opt);

// Weight of a half-grid element in sums over the full spectrum: elements off the x = 0 plane
// stand for themselves and their conjugate partner (the Nyquist plane is never measured).
AET_HOST_DEVICE inline double hermitian_weight(std::int64_t ix) {
  return ix == 0 ? 1.0 : 2.0;
}

// Records the R factors of each iterate (R1, R2 of its projections against the views via the
// public forward_project on opt.device; R_free from the iteration), logs them, drives the progress
// bar and calls opt.on_iteration.
class Recorder {
 public:
  Recorder(const Array3& views, const TiltGeometry& geometry, const ReconOptions& opt,
           ReconResult& result, bool have_free);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  // The volume after iteration `iteration` (1-based) and the R_free of that volume.
  void record(int iteration, const Array3& volume, double r_free);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws the InputError of plan_recon_memory when the problem (sizes of p) does not fit in the
// free memory of opt.device (cuda/recon/genfire.cu, CUDA builds only).
void check_device_memory(const Problem& p, const ReconOptions& opt);

// The iterations on a CUDA device (cuda/recon/genfire.cu, CUDA builds only): returns the volume
// (nx x ny x nz, voxel size `pixel`); device_bytes receives the device memory held. Throws the
// InputError of plan_recon_memory before allocating when the problem does not fit.
Array3 iterate_cuda(const Problem& problem, const ReconOptions& opt, double pixel,
                    Recorder& recorder, std::uint64_t& device_bytes);

}  // namespace aet::detail::genfire
