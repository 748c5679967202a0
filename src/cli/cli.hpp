// Shared machinery of the `aet` subcommands: common options, INI config files, the output
// directory that appears whole or not at all, and JSON/text helpers.
#pragma once

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/core/json.hpp"

namespace aet::nn {
class Model;
}

namespace aet::cli {

namespace po = boost::program_options;

// What every subcommand receives: its own arguments and the full command line (for provenance).
struct Invocation {
  std::string name;               // subcommand name
  std::vector<std::string> args;  // arguments after the subcommand
  std::string command_line;       // the whole command line, shell-quoted
};

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Invocation&);
};

// Adds --help, --config, --seed, --threads, --quiet, --verbose (and --device when `device`).
void add_common_options(po::options_description& desc, bool device = true);

struct Parsed {
  po::variables_map vm;
  bool help = false;
  std::string effective_config;  // every option's final value, "key = value" per line
};

// Parses the command line, then the --config INI file (the command line wins), applies
// --threads/--quiet/--verbose, and validates. Usage problems throw InputError (exit code 2).
Parsed parse(const Invocation& inv, const po::options_description& desc,
             const po::positional_options_description* positional = nullptr);

// Prints "Usage: aet NAME ..." with the description and the option table to stdout.
void print_usage(const Invocation& inv, const std::string& synopsis, const std::string& about,
                 const po::options_description& desc);

// An output directory filled in a hidden staging folder and moved into place by commit():
// a failed or interrupted run leaves neither partial files nor a directory it created.
class OutputDir {
 public:
  explicit OutputDir(const std::string& dir);
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  std::string path(const std::string& name) const;  // where to write `name` for now
  std::string final_path(const std::string& name) const;
  void commit();

 private:
  std::string dir_, staging_;
  bool created_dir_ = false, committed_ = false;
};

// --elements A,B: element symbols, lightest first; spaces around items are dropped and every symbol
// must be a known element.
std::vector<std::string> parse_elements(const std::string& list);

// One number printed with a printf format ("%.3f"), for log lines and reports.
std::string fmt(const char* format, double v);

// The log line of a grid search of the views' rotations: the views it moved by more than a degree.
std::string angle_search_summary(const std::vector<double>& change_deg, double range_deg);

// Writes text atomically.
void write_text_file(const std::string& path, const std::string& text);

std::uint64_t seed_or_default(const po::variables_map& vm);

// --device for commands that reconstruct: "auto" picks the GPU when one is visible (the CUDA
// projector and solvers exist in every CUDA build) and the CPU otherwise; an explicit "cuda" in a
// build without CUDA fails with resolve_device's message.
Device resolve_recon_device(const po::variables_map& vm);

// Reads a tilt series (MRC stack) for align / reconstruct / pipeline: the pixel size is --pixel
// when given, else the header's (square pixels required), else 1 A with a warning; at least two
// views. Errors name the file.
Array3 read_tilt_series(const std::string& path, const po::variables_map& vm);

// How a volume was reconstructed, as far as the network cares: RESIRE with this many iterations
// of this step. iterations == 0: not known.
struct ReconRecipe {
  int iterations = 0;
  double step = 0;
  bool known() const { return iterations > 0; }
  bool operator==(const ReconRecipe& o) const {
    return iterations == o.iterations && std::abs(step - o.step) <= 1e-6 * std::abs(o.step);
  }
  bool operator!=(const ReconRecipe& o) const { return !(*this == o); }
};
// The MRC label that records a RESIRE recipe ("aet recipe: resire, 50 iterations, step 1"), and
// the recipe found among a file's labels (unknown when none records one).
std::string recipe_label(const ReconRecipe& r);
ReconRecipe recipe_from_labels(const std::vector<std::string>& labels);

// The input a network model is meant for (cmd_network.cpp): its input.* metadata when set (a
// recipe chosen on held-out runs after training, which may be less converged than the training
// inputs), else the training inputs'; unknown when the file records neither.
ReconRecipe model_input_recipe(const nn::Model& model);
// The model file: `given`, or the shipped model (InputError when there is none).
std::string resolve_model_path(const std::string& given);
// Why data of voxel size `voxel` (Angstrom) is outside the model's domain (more than 15 % from its
// training voxel size), or "" when it is not.
std::string voxel_size_mismatch(const nn::Model& model, double voxel);

// The missing-wedge network as a pipeline stage (cmd_network.cpp): --no-network and --model.
void add_network_options(po::options_description& desc);
void add_flips_option(po::options_description& desc);  // --flips, aet augment and the pipeline
// --flips, checked (1, 2, 4 or 8) when the options are read, before any computation.
int flips_option(const po::variables_map& vm);
// The network's device: the reconstruction's, except that under --device auto a LibTorch without
// CUDA runs the network on the CPU.
Device network_device(const po::variables_map& vm, const Device& recon_device);
class NetworkStage {
 public:
  // Loads --model (an unusable file is an InputError) or the shipped model; without LibTorch in
  // the build or without a shipped model the stage is inactive and says why (an explicit --model
  // is then an error).
  NetworkStage(const po::variables_map& vm, const Device& dev);
  ~NetworkStage();
  NetworkStage(const NetworkStage&) = delete;
  NetworkStage& operator=(const NetworkStage&) = delete;
  bool active() const;
  const std::string& model_path() const;
  const std::string& skip_reason() const;  // why the stage is inactive ("" when active)
  int flips() const;                       // mirror images averaged (--flips)
  // The network learned atoms of a given width in voxels: another voxel size deactivates the
  // shipped model (with the reason) and is an InputError for an explicit --model.
  void check_voxel_size(double voxel);
  Array3 apply(const Array3& volume) const;  // normalised units, heaviest atoms near 1
  // The reconstruction the model was trained on (its file's training.input_* metadata); unknown
  // for an inactive stage or a model file that does not record it.
  ReconRecipe input_recipe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aet::cli
