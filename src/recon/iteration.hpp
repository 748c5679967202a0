// The host iteration of RESIRE and SIRT (with optional FISTA momentum), written once over a
// backend that owns the volume, the views and the arithmetic: the CPU solver (solvers.cpp) and the
// resident and batched CUDA plans (cuda/recon/solvers.cu). The shape follows ASTRA's
// CudaSirtAlgorithm3D over arith3d: the loop decides the order of the steps and keeps the books,
// the backends do the work (the CUDA plans with their fused kernels).
#pragma once

#include <string>

#include "aet/core/progress.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail {

struct RFactors {
  double r1 = 0, r2 = 0;
};

// One iteration is residual (or residual_of_zero), update, then, with momentum, extrapolate.
// The R factors of the volume after iteration k come from the projection that forms the residual
// of iteration k + 1 (one extra projection at the end), so nothing is projected twice.
class IterationBackend {
 public:
  virtual ~IterationBackend() = default;
  // The residual of x = 0 (A 0 = 0 needs no projection): b, times SIRT's row weights.
  virtual void residual_of_zero() = 0;
  // The residual b - A x of the current x, times SIRT's row weights. With `measure`, the
  // projection also gives the R factors of x, returned by r_factors(). A backend may back project
  // here already (the batched CUDA plan streams each batch of views through both at once).
  virtual void residual(bool measure) = 0;
  // x += step A^T residual (SIRT: times the column weights), then positivity and the support.
  virtual void update() = 0;
  // The R factors of the x of the last residual(true); may wait for the device.
  virtual RFactors r_factors() = 0;
  // FISTA: keeps x (the constrained iterate x_{k+1}) as the last iterate and moves x to
  // x_{k+1} + beta (x_{k+1} - x_k), with x_0 = 0.
  virtual void extrapolate(float beta) = 0;
  // x = the last constrained iterate kept by extrapolate (the result, not the extrapolated point).
  virtual void restore_last() = 0;
  // The R factors of x from one more projection.
  virtual RFactors final_r_factors() = 0;
};

// The books of an iterative solve: ReconResult::r1 / r2, the verbose log line, the progress bar
// and ReconOptions::on_iteration.
class IterationRecorder {
 public:
  IterationRecorder(const ReconOptions& opt, ReconResult& result);
  // The R factors of the volume after `iteration` (1-based).
  void record(int iteration, const RFactors& r);
  void finish() { progress_.finish(); }

 private:
  const ReconOptions& opt_;
  ReconResult& result_;
  Progress progress_;
};

// opt.iterations iterations on `backend` (which starts at opt.initial or zeros), recording the R
// factors of each iterate; with opt.accelerate, FISTA momentum (FistaSchedule) and the last
// constrained iterate restored at the end. The volume is then in the backend.
void run_iterations(IterationBackend& backend, const ReconOptions& opt,
                    IterationRecorder& recorder);

}  // namespace aet::detail
