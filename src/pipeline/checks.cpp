// The checks of the pipeline's options and of its refinement stage (aet/pipeline/pipeline.hpp).
#include <cmath>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/pipeline/pipeline.hpp"

namespace aet {

RefinementCheck check_refinement(std::size_t traced, std::size_t refined, double r1_initial,
                                 double r1_final, double width, double removed_intensity) {
  RefinementCheck c;
  const std::size_t removed = traced > refined ? traced - refined : 0;
  const std::string counted = "the refinement removed " + std::to_string(removed) + " of " +
                              std::to_string(traced) + " atoms";
  if (!(width >= 0.1 && width <= 1.5)) {
    c.keep_traced = true;
    c.warning = "the refined atom width " + fmt("%.3f", width) +
                " A is outside the physical range [0.1, 1.5] A; the traced model is kept";
  } else if (!(r1_final <= 1.01 * r1_initial)) {  // NaN included
    c.keep_traced = true;
    c.warning = "the refined model fits the views worse than the traced one (R1 " +
                fmt("%.4f", r1_initial) + " -> " + fmt("%.4f", r1_final) +
                "); the traced model is kept";
  } else if (removed_intensity > 0.25) {
    // Spurious atoms refine to about nothing; atoms that hold a quarter of the model's intensity
    // are what the views show, and a class boundary that removes them is wrong (a few bright
    // atoms taken for the only species, as on a film whose edges gather the material outside).
    c.keep_traced = true;
    c.warning = counted + " carrying " + fmt("%.0f", 100 * removed_intensity) +
                " % of the refined intensity, which the views support; the traced model is kept";
  } else if (2 * refined < traced) {
    c.warning = counted +
                ", more than half, as not supported by the views (a background the views have "
                "and the model lacks, or wrong --elements, make many spurious atoms); the traced "
                "model is in traced.xyz";
  } else if (20 * removed > traced) {
    c.warning = counted + " (" + fmt("%.1f", 100.0 * removed / traced) +
                " %) as not supported by the views";
  }
  return c;
}

void check_pipeline_options(const PipelineOptions& o) {
  if (o.elements.empty()) fail_input("--elements: no species given");
  if (o.iterations < 1) fail_input("--iterations must be >= 1");
  if (!(o.alignment.angle_search_deg >= 0 && o.alignment.angle_search_deg <= 45))
    fail_input("--angle-search must be in [0, 45] degrees");
  if (!(o.min_distance > 0)) fail_input("--min-distance must be > 0");
  if (!(o.position_prior >= 0) || !std::isfinite(o.position_prior))
    fail_input("--position-prior must be >= 0 Angstrom");
  if (o.bootstrap < 0 || o.bootstrap == 1)
    fail_input("--bootstrap must be 0 (off) or >= 2 replicates");
  if (o.alignment.rounds < 0) fail_input("--align-rounds must be >= 0");
  if (o.alignment.recon_iterations < 1) fail_input("--align-iterations must be >= 1");
  if (!(o.alignment.max_shift_px >= 0) || !std::isfinite(o.alignment.max_shift_px))
    fail_input("--max-shift must be >= 0");
  if (!(o.alignment.preprocess.denoise_sigma >= 0) ||
      !std::isfinite(o.alignment.preprocess.denoise_sigma))
    fail_input("--denoise must be >= 0");
}

}  // namespace aet
