// Internal entry points of the solvers, shared between solvers.cpp and the back ends.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aet/geometry/rotation.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail {

// The FISTA momentum schedule (ReconOptions::accelerate), shared by the CPU and CUDA solvers so
// that both follow the same sequence: beta_k = (t_k - 1) / t_{k+1},
// t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2, and t restarts at 1 (beta 0) after R2 at the
// extrapolated point rose (the function-value rule of O'Donoghue and Candes 2015, which needs no
// extra projection: R2 comes with each residual).
class FistaSchedule {
 public:
  // R2 of the latest residual.
  // A rise within kRiseTolerance does not count: the GPU sums R2 with atomics in varying order,
  // and a plateau compared exactly would restart on one device and not the other.
  void observe(double r2) {
    restart_ = last_r2_ >= 0 && r2 > last_r2_ * (1.0 + kRiseTolerance);
    last_r2_ = r2;
  }
  // The factor for the extrapolation after this iteration's update.
  double next_beta() {
    if (restart_) t_ = 1.0;
    const double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t_ * t_));
    const double beta = (t_ - 1.0) / t_next;
    t_ = t_next;
    return beta;
  }

 private:
  static constexpr double kRiseTolerance = 1e-9;
  double t_ = 1.0, last_r2_ = -1.0;
  bool restart_ = false;
};

// SIRT's weights: the reciprocals of the row sums A 1 or column sums A^T 1, zero at or below 1e-6
// of the largest (rays missing the volume, voxels no ray sees), so those elements are left alone.
// The CPU and CUDA solvers both use it (the CUDA one in a kernel of the same arithmetic).
void invert_sums(float* a, std::size_t n);
// The same with the peak given (a distributed solve's peak over all ranks).
void invert_sums(float* a, std::size_t n, float peak);

// How a CPU solve on one rank's part of a distributed reconstruction (distributed.cpp) combines
// with the other ranks: the sums it needs over all of them. Each function leaves the same values
// on every rank. nullptr members: this part needs no such exchange.
struct Reductions {
  // Partial sums of the R factors (and of nothing else): summed in place.
  void (*sum)(double* values, std::size_t n) = nullptr;
  // View mode: a back projection of this rank's views, summed into the whole one in place (the
  // update, SIRT's column sums). nullptr in slab mode, where a slab's back projection is whole.
  void (*sum_volume)(float* values, std::size_t n) = nullptr;
  double (*max)(double value) = nullptr;  // SIRT's weights: the peak of the sums over all ranks
  std::int64_t total_views = 0;           // RESIRE's dt counts every rank's views
};

struct RFactors;
// R1 and R2 of `computed` against `measured` (same dims; the checks are the caller's) with the
// partial sums combined by `sum` (nullptr: this process holds all the views).
RFactors r_factors(const Array3& measured, const Array3& computed,
                   void (*sum)(double* values, std::size_t n));

// RESIRE / SIRT on the CPU (solvers.cpp); with `reductions`, on one rank's part of a distributed
// solve. Arguments already validated by reconstruct().
ReconResult run_iterative_cpu(const Array3& views, const TiltGeometry& geometry,
                              const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                              std::int64_t nz, const Reductions* reductions);

// FBP's pieces (fbp.cpp), for a rank that holds some of the views: the angular weight of each
// view of the whole geometry, and the views filtered and weighted (weights[k] for view k).
std::vector<double> fbp_angular_weights(const TiltGeometry& geometry);
Array3 fbp_filter_views(const Array3& views, const std::vector<double>& weights, FbpFilter filter);

// Under MPI with several ranks: whether reconstruct() distributes this solve (RESIRE, SIRT or FBP
// on the CPU; logs why not otherwise), and the distributed solve itself on rank 0
// (distributed.cpp), which the other ranks join through the worker protocol (aet/hpc/mpi.hpp).
bool distributes(const ReconOptions& opt, const TiltGeometry& geometry, std::int64_t view_ny,
                 std::int64_t ny);
// ReconOptions::extended: the solve on extended_object_extent's volume, cropped to nx x ny x nz
// (extended.cpp).
ReconResult reconstruct_extended(const Array3& views, const TiltGeometry& geometry,
                                 const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                                 std::int64_t nz);

ReconResult reconstruct_distributed(const Array3& views, const TiltGeometry& geometry,
                                    const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                                    std::int64_t nz);

// The views with the sub-pixel part of every view's shift moved into the data (Fourier
// resampling, mirror-padded) and the geometry with the whole-pixel part left
// (src/recon/subpixel_shift.cpp). Returns false, writing nothing, when every shift is already a
// whole number of pixels.
bool move_subpixel_shifts(const Array3& views, const TiltGeometry& geometry, Array3& out_views,
                          TiltGeometry& out_geometry);

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
