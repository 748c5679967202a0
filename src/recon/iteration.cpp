// The host iteration of RESIRE and SIRT shared by the CPU and CUDA solvers (iteration.hpp).
#include "iteration.hpp"

#include <cstdio>

#include "recon_detail.hpp"

namespace aet::detail {

IterationRecorder::IterationRecorder(const ReconOptions& opt, ReconResult& result)
    : opt_(opt),
      result_(result),
      progress_(std::string("reconstruct ") + algorithm_name(opt.algorithm), opt.iterations) {}

void IterationRecorder::record(int iteration, const RFactors& r) {
  result_.r1.push_back(r.r1);
  result_.r2.push_back(r.r2);
  char line[128];
  std::snprintf(line, sizeof line, "iteration %d: R1 = %.5f, R2 = %.5f", iteration, r.r1, r.r2);
  log_verbose(line);
  progress_.advance();
  if (opt_.on_iteration) opt_.on_iteration(iteration, r.r1, r.r2);
}

void run_iterations(IterationBackend& backend, const ReconOptions& opt,
                    IterationRecorder& recorder) {
  FistaSchedule schedule;
  for (int it = 1; it <= opt.iterations; ++it) {
    if (it == 1 && !opt.initial)
      backend.residual_of_zero();
    else
      backend.residual(it > 1);  // the initial volume's R factors are not recorded
    backend.update();
    // Recorded after the update so that a device overlaps the host's wait with it; the schedule
    // is read only by the extrapolation below.
    if (it > 1) {
      const RFactors r = backend.r_factors();
      recorder.record(it - 1, r);
      schedule.observe(r.r2);
    }
    if (opt.accelerate) backend.extrapolate(static_cast<float>(schedule.next_beta()));
  }
  if (opt.accelerate) backend.restore_last();
  recorder.record(opt.iterations, backend.final_r_factors());
}

}  // namespace aet::detail
