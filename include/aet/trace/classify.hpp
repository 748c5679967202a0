// Species classes of traced atoms from a per-atom intensity: the decision trace_atoms makes
// (trace.hpp), available again for intensities measured later, e.g. by model refinement.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/atoms.hpp"

namespace aet {

struct ClassifyResult {
  int changed = 0;  // atoms whose species changed
  int removed = 0;  // atoms dropped as not atoms
  std::string how;  // the class decision, as trace_atoms records it (trace_classes)
};

// Classifies already-traced atoms again from a per-atom intensity, e.g. "model_weight" of an
// atomic model refined against the views (model_refinement.hpp), which separates the species, and
// real atoms from spurious ones, more cleanly than intensities read from a reconstruction. The
// decision is trace_atoms' (1D k-means with one class more than species; the lowest class is not
// atoms when it is weak and apart, and those atoms are removed; species lightest first), without
// the local re-classification. Throws InputError for an intensity count that differs from the
// atom count, a non-finite intensity, no elements, or an unknown element.
ClassifyResult classify_atoms(AtomModel& model, const std::vector<double>& intensity,
                              const std::vector<std::string>& elements, std::uint64_t seed = 0);

}  // namespace aet
