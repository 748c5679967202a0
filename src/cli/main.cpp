// `aet <subcommand> [options]`: a thin front end over the library. Exit codes: 0 success,
// 2 bad input or usage, 1 internal failure, 3 a failed check under --strict, 130 / 143 stopped by
// SIGINT / SIGTERM.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/interrupt.hpp"
#include "aet/core/option_error.hpp"
#include "aet/hpc/mpi.hpp"
#include "cli/cli.hpp"

namespace aet::cli {
int run_info(const Invocation&);
int run_simulate(const Invocation&);
int run_align(const Invocation&);
int run_reconstruct(const Invocation&);
int run_trace(const Invocation&);
int run_refine(const Invocation&);
int run_evaluate(const Invocation&);
int run_analyze(const Invocation&);
int run_pipeline(const Invocation&);
int run_train(const Invocation&);
int run_augment(const Invocation&);
int run_model_input(const Invocation&);
int run_score_network(const Invocation&);
int run_benchmark(const Invocation&);
int run_report(const Invocation&);
int run_submit(const Invocation&);
int run_make_training_set(const Invocation&);
}  // namespace aet::cli

namespace {

using aet::cli::Subcommand;

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"info", "print what a file holds: MRC header and statistics, angles, atoms, HDF5 results",
       aet::cli::run_info},
      {"simulate", "simulate a nanoparticle tilt series with its ground truth",
       aet::cli::run_simulate},
      {"align", "align a tilt series: shifts, tilt axis and angles by projection matching",
       aet::cli::run_align},
      {"reconstruct", "reconstruct a volume from a tilt series (RESIRE, SIRT, GENFIRE, FBP)",
       aet::cli::run_reconstruct},
      {"trace", "trace atoms in a reconstructed volume", aet::cli::run_trace},
      {"refine", "refine an atomic model (and the view geometry) against the views",
       aet::cli::run_refine},
      {"evaluate", "score a traced atom model against a truth model", aet::cli::run_evaluate},
      {"analyze", "lattice, strain, surface, coordination, order and facets of an atom model",
       aet::cli::run_analyze},
      {"pipeline", "run the whole chain; with no input, on the built-in demo particle",
       aet::cli::run_pipeline},
      {"make-training-set", "simulate (reconstruction, ideal atoms) pairs to train the network",
       aet::cli::run_make_training_set},
      {"train", "train the missing-wedge network on a training set", aet::cli::run_train},
      {"augment", "correct a reconstruction's missing wedge with the network",
       aet::cli::run_augment},
      {"model-input", "show or set the reconstruction a network model is meant to be given",
       aet::cli::run_model_input},
      {"score-network", "score a network model on simulated particles: traced with and without it",
       aet::cli::run_score_network},
      {"benchmark", "score reconstruction methods across tilt ranges, views and doses (a sweep)",
       aet::cli::run_benchmark},
      {"report", "write report.html for a pipeline run folder (figures, metrics, warnings)",
       aet::cli::run_report},
      {"submit", "run aet on a Slurm cluster: one run, job arrays, staged chains; --status",
       aet::cli::run_submit},
  };
  return table;
}

void print_main_usage() {
  std::printf(
      "aet %s: atomic electron tomography, from tilt series to atomic models\n\n"
      "Usage: aet <subcommand> [options]      (aet <subcommand> --help for its options)\n\n"
      "Subcommands:\n",
      AET_VERSION);
  for (const auto& s : subcommands()) std::printf("  %-18s %s\n", s.name, s.summary);
  std::printf(
      "\nExit codes: 0 success, 1 internal failure, 2 bad input or usage, 3 a failed check "
      "under --strict,\n130 / 143 stopped by SIGINT / SIGTERM (partial outputs removed).\n");
}

}  // namespace

int main(int argc, char** argv) {
  // Under an MPI launcher rank 0 runs the command and the other ranks serve its distributed
  // reconstructions (aet/hpc/mpi.hpp); a plain aet does not touch MPI.
  aet::MpiSession mpi(argc, argv);
  if (aet::mpi_rank() > 0) return aet::serve_mpi_workers();
  if (argc < 2) {
    print_main_usage();
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_main_usage();
    return 0;
  }
  if (name == "--version") {
    std::printf("aet %s (%s, CUDA %s, MPI %s)\n", AET_VERSION, AET_BUILD_TYPE,
                AET_BUILT_WITH_CUDA ? "on" : "off", AET_BUILT_WITH_MPI ? "on" : "off");
    return 0;
  }
  aet::cli::Invocation inv;
  inv.name = name;
  inv.command_line = "aet";
  for (int i = 1; i < argc; ++i) inv.command_line += " " + aet::shell_quote(argv[i]);
  for (int i = 2; i < argc; ++i) inv.args.emplace_back(argv[i]);

  for (const auto& s : subcommands()) {
    if (name != s.name) continue;
    // SIGINT / SIGTERM: partial outputs removed, exit 130 / 143 (aet/core/interrupt.hpp).
    aet::install_interrupt_cleanup(std::string("aet ") + s.name);
    try {
      return s.run(inv);
    } catch (const aet::InputError& e) {
      std::fprintf(stderr, "aet %s: error: %s\n", s.name, aet::cli::user_paths(e.what()).c_str());
      return 2;
    } catch (const aet::QualityError& e) {
      std::fprintf(stderr, "aet %s: error: %s\n", s.name, aet::cli::user_paths(e.what()).c_str());
      return 3;
    } catch (const aet::ExternalError& e) {
      std::fprintf(stderr, "aet %s: error: %s\n", s.name, e.what());
      return 1;
    } catch (const boost::program_options::error& e) {
      std::fprintf(stderr, "aet %s: error: %s (see aet %s --help)\n", s.name,
                   aet::option_error_message(e).c_str(), s.name);
      return 2;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "aet %s: error: out of memory\n", s.name);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "aet %s: internal error: %s\n", s.name,
                   aet::cli::user_paths(e.what()).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "aet: unknown subcommand '%s' (aet --help lists them)\n", name.c_str());
  return 2;
}
