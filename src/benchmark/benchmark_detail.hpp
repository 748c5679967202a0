// Internals of the benchmark shared by its sources (and its unit tests).
#pragma once

#include <string>
#include <vector>

#include "aet/benchmark/sweep.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/json.hpp"

namespace aet::detail {

// The species traced for `p`: its `elements`, else the truth's, lightest first.
std::vector<std::string> traced_elements(const SweepParticle& p, const AtomModel& truth);

// The last `n` non-empty lines of `text` joined by " | " (an external command's last words).
std::string last_lines(const std::string& text, int n);

// The settings a case's series, and a method's result, were made with (JSON text): a rerun reuses
// a folder only when its marker holds the same text.
std::string case_settings(const Sweep& sweep, const SweepCase& c);
std::string method_settings(const Sweep& sweep, const SweepCase& c, const SweepMethod& m);

// A method's columns of the results row from its metrics (the pipeline's metrics.json, or the
// external method's): the final model's scores (refined when refinement ran and was kept).
Json method_row(const SweepMethod& m, const Json& metrics);

}  // namespace aet::detail
