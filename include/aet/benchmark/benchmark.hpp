// The missing-wedge benchmark (docs/benchmark.md): each case of a sweep simulated once into its
// folder, every method run on it into a subfolder (aet's chains in-process through run_pipeline,
// an external command traced and scored the same way), then the rows of every case and method
// collected into results.csv, results.json, results.md and plots. A method's folder gets its
// `done` marker last; a rerun skips what is done for the same settings, so a killed sweep resumes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "aet/benchmark/sweep.hpp"
#include "aet/core/device.hpp"
#include "aet/core/json.hpp"

namespace aet {

struct BenchmarkOptions {
  Device device;          // simulation and reconstruction
  Device network_device;  // the missing-wedge network
};

struct MethodOutcome {
  std::string method;
  bool resumed = false;  // done by an earlier run with the same settings
  std::string error;     // empty when it succeeded
};

struct CaseOutcome {
  std::string name;
  std::string error;  // the case itself failed (its series could not be made)
  std::vector<MethodOutcome> methods;
  bool ok() const;
  std::vector<std::string> failures() const;  // "CASE: what failed", one per failure
};

// Runs one case in `out`/<case.name>: simulates its series unless the folder holds it for these
// settings, then every method that is not done for its settings. A failing method (an error of
// the chain, an external command that fails or writes no volume) is recorded in its folder
// (error.txt) and in the outcome, and the other methods still run; nothing is thrown for it.
// `log` receives progress lines.
CaseOutcome run_case(const Sweep& sweep, const SweepCase& c, const std::string& out,
                     const BenchmarkOptions& options,
                     const std::function<void(const std::string&)>& log);

// The CSV columns, in order (results.csv's header; results.json's keys).
const std::vector<std::string>& result_columns();

// One row per case and method from the folders under `out` (a method that is not done gives a row
// with status "failed" and its error, or "missing" when it never ran).
Json collect_results(const Sweep& sweep, const std::vector<SweepCase>& cases,
                     const std::string& out);

// Writes results.csv, results.json and results.md into `out` (each atomically).
void write_results(const Json& rows, const std::string& out);

// Draws the sweep's plots into `out`/plots with the Python module aet_benchmark_plots
// (matplotlib). Returns "" on success, else why there are no plots (for a warning).
std::string make_plots(const std::string& out);

}  // namespace aet
