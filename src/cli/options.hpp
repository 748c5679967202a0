// Option groups shared by the `aet` subcommands: each group declares its options (with the
// command's own default and help text, so every --help reads as before) and reads them back with
// its checks, so that an option means, and is refused, the same way in every command.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/hpc/slurm.hpp"
#include "aet/io/mrc.hpp"
#include "aet/networks/stage.hpp"
#include "cli/cli.hpp"

namespace aet::cli {

// ---- common: --help, --config, --seed (unless the command has no random choice of its own:
// `seed` false), --threads, --quiet, --verbose (and --device when `device`). parse() applies
// --threads, --quiet and --verbose.
void add_common_options(po::options_description& desc, bool device = true, bool seed = true);
std::uint64_t seed_or_default(const po::variables_map& vm);

// ---- --device (declared by add_common_options)
// The device named by --device (resolve_device: "auto" is the GPU when one is visible).
Device device_option(const po::variables_map& vm);
// For commands that reconstruct: as device_option; the CUDA projector and solvers exist in every
// CUDA build, and an explicit "cuda" in a build without CUDA fails with resolve_device's message.
Device resolve_recon_device(const po::variables_map& vm);

// ---- the tilt series: --pixel A (align, reconstruct, refine, pipeline)
void add_pixel_option(po::options_description& desc,
                      const char* help = "pixel size in Angstrom (default: from the MRC header)");
// Reads a tilt series (MRC stack): the pixel size is --pixel when given (> 0), else the header's
// (square pixels required), else 1 A with a warning; at least two views. Errors name the file.
Array3 read_tilt_series(const std::string& path, const po::variables_map& vm);
// The pixel size an MRC header gives, to the 7 digits its float32 holds (1 A, with a warning,
// when it gives none); non-square pixels are an error naming the file.
double header_pixel(const std::string& path, const MrcHeader& header);

// ---- --elements A,B: the species, lightest first
// `default_list` nullptr: no default (the option is optional).
void add_elements_option(po::options_description& desc, const char* default_list,
                         const char* value_name, const char* help);
// The list: spaces around items are dropped and every symbol must be a known element.
std::vector<std::string> parse_elements(const std::string& list);
// --elements parsed; empty when not given.
std::vector<std::string> elements_option(const po::variables_map& vm);

// ---- --min-distance A: the tracer's minimum distance between atoms (default 2 A)
void add_min_distance_option(po::options_description& desc, const char* help);
double min_distance_option(const po::variables_map& vm);  // > 0

// ---- --angle-search DEG: half-range of the grid search of each view's rotation about its tilt
// axis before the local fit of the angles
void add_angle_search_option(po::options_description& desc, double default_deg, const char* help);
double angle_search_option(const po::variables_map& vm);  // in [0, 45]

// ---- the alignment's sample kind, preprocessing and projection-matching switches (aet align and
// aet pipeline): --sample, --no-background, --no-normalise, --no-hot-pixels, --denoise PX,
// --no-axis, --no-shifts, --no-coarse, --max-shift PX. Added as a group of their own.
void add_alignment_options(po::options_description& desc);
// Reads them into `a` (the rest of `a` untouched), checked.
void read_alignment_options(const po::variables_map& vm, AlignOptions& a);

// ---- --iterations N (-n with `short_n`): the command's iteration count. `default_n` 0: no
// default (the option is optional).
void add_iterations_option(po::options_description& desc, int default_n, const char* help,
                           bool short_n);
int iterations_option(const po::variables_map& vm);  // >= 1

// ---- --position-prior A: refinement's Gaussian prior (sd) on each atom's position about where it
// starts (default 0.05 A; 0 = none)
void add_position_prior_option(po::options_description& desc, const char* help);
double position_prior_option(const po::variables_map& vm);  // finite, >= 0
// --probe-tail (a flag); `where` starts the help ("refinement: " or "").
void add_probe_tail_option(po::options_description& desc, const char* where);

// ---- the missing-wedge network
// --model FILE: network weights; "" when not given (the shipped model).
void add_model_option(po::options_description& desc);
// The model file: --model, or the shipped model (InputError when there is none, or for an empty
// --model "", which would otherwise mean the shipped model).
std::string model_option(const po::variables_map& vm);
// --no-network, --model and --flips (the pipeline's network stage).
void add_network_options(po::options_description& desc);
// --flips alone; 0 = automatic (nn::auto_flips)
void add_flips_option(po::options_description& desc, int default_flips = 8);
// --flips, checked (1, 2, 4 or 8) when the options are read, before any computation.
int flips_option(const po::variables_map& vm);
// The network's device: the reconstruction's, except that under --device auto a LibTorch
// without CUDA runs the network on the CPU (nn::network_device).
Device network_device(const po::variables_map& vm, const Device& recon_device);
// The network stage's options from --no-network, --model, --flips and --device.
nn::StageOptions network_stage_options(const po::variables_map& vm, const Device& recon_device);

// ---- Checkpoints (aet pipeline, aet align): --checkpoint DIR, with `what` the command's own
// words for what it keeps there.
void add_checkpoint_option(po::options_description& desc, const char* what);
// --checkpoint-every N (aet pipeline, aet reconstruct): how often a plain RESIRE or SIRT solve
// keeps its progress; read back checked (>= 0).
void add_checkpoint_every_option(po::options_description& desc);
int checkpoint_every_option(const po::variables_map& vm);
struct CheckpointOption {
  std::string dir;       // absolute; empty without --checkpoint
  std::string settings;  // part of every checkpoint's key: "key = value" lines
  std::map<std::string, std::string> stage_settings;  // part of one stage's key (and later ones')
};
// DIR checked to lie outside --out (a stopped run removes the output folder it created, with what
// is in it); the settings are every option's value but those of `ignored` (the input files, which
// enter the keys by content, and options that change no result) and --threads, --quiet,
// --verbose, --out, --checkpoint, --checkpoint-every and --strict; an option that `stage_of`
// names goes to its stage's settings instead.
CheckpointOption checkpoint_option(const Parsed& p, const std::set<std::string>& ignored,
                                   const std::map<std::string, std::string>& stage_of = {});

// ---- Slurm (aet submit, aet benchmark --slurm): --partition, --account, --qos, --time, --cpus,
// --gpus, --mem, --throttle, --job-name, --sbatch, --module, --container, --aet, --workdir.
void add_slurm_options(po::options_description& desc);
// The resources, checked (check_slurm_resources: InputError naming the option).
SlurmResources read_slurm_options(const po::variables_map& vm);

}  // namespace aet::cli
