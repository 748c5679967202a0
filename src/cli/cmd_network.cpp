// aet train and aet augment: the missing-wedge correction network (networks/). Both need a build
// with LibTorch; without it they say so and exit with code 2.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/io/mrc.hpp"
#include "aet/networks/flips.hpp"
#include "aet/networks/training_data.hpp"
#include "cli/cli.hpp"
#if AET_WITH_TORCH
#include "aet/networks/network.hpp"
#include "aet/networks/train.hpp"
#endif

namespace aet::cli {

int flips_option(const po::variables_map& vm) {
  const int f = vm["flips"].as<int>();
  try {
    nn::flip_masks(f);  // the one rule; its message gains the option's dashes
  } catch (const InputError& e) {
    fail_input(std::string("--") + e.what());
  }
  return f;
}

#if AET_WITH_TORCH
namespace {

std::string fmt(double v) {
  return cli::fmt("%.6g", v);
}

nn::AugmentOptions augment_options(const po::variables_map& vm) {
  nn::AugmentOptions o;
  o.patch = vm["patch"].as<std::int64_t>();
  o.overlap = vm["overlap"].as<std::int64_t>();
  o.batch = vm["batch"].as<int>();
  o.flips = flips_option(vm);
  if (o.patch < 8) fail_input("--patch must be >= 8 voxels");
  if (o.overlap < 0 || o.overlap >= o.patch) fail_input("--overlap must be in [0, patch)");
  if (o.batch < 1) fail_input("--batch must be >= 1");
  return o;
}

}  // namespace

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return given;
  const std::string path = nn::default_model_path();
  if (path.empty())
    fail_input(
        "no network model given and the shipped model (networks/models/) was not found; pass "
        "--model FILE or set AET_MODEL");
  return path;
}

// Why `voxel` (Angstrom) is outside the model's domain, or "" when it is not: the network learned
// atoms of a given width in voxels, so a voxel size far from its training one is out of domain.
std::string voxel_size_mismatch(const nn::Model& model, double voxel) {
  const auto it = model.metadata().find("training.voxel_size_A");
  const double trained = it == model.metadata().end() ? 0.0 : std::atof(it->second.c_str());
  if (!(trained > 0) || std::abs(voxel / trained - 1.0) <= 0.15) return "";
  return "voxel size " + fmt(voxel) + " A differs from the " + fmt(trained) +
         " A the network was trained at; resample the data or train a model for this voxel size";
}
#endif

std::string recipe_label(const ReconRecipe& r) {
  char b[80];
  std::snprintf(b, sizeof b, "aet recipe: resire, %d iterations, step %.6g", r.iterations, r.step);
  return b;
}

ReconRecipe recipe_from_labels(const std::vector<std::string>& labels) {
  for (const std::string& l : labels) {
    ReconRecipe r;
    if (std::sscanf(l.c_str(), "aet recipe: resire, %d iterations, step %lf", &r.iterations,
                    &r.step) == 2 &&
        r.iterations > 0 && r.step > 0)
      return r;
  }
  return {};
}

#if AET_WITH_TORCH
namespace {

// The recipe stored under `prefix` (algorithm, iterations, step), or unknown.
ReconRecipe stored_recipe(const std::map<std::string, std::string>& m, const std::string& prefix) {
  const auto alg = m.find(prefix + "algorithm");
  const auto its = m.find(prefix + "iterations");
  const auto step = m.find(prefix + "step");
  if (alg == m.end() || alg->second != "resire" || its == m.end() || step == m.end()) return {};
  ReconRecipe r{std::atoi(its->second.c_str()), std::atof(step->second.c_str())};
  if (!(r.iterations > 0 && r.step > 0)) return {};
  return r;
}

// Writes `r` under `prefix` (the keys stored_recipe reads); an unknown recipe erases them, and
// with them the prefix's note.
void store_recipe(std::map<std::string, std::string>& m, const std::string& prefix,
                  const ReconRecipe& r) {
  for (const char* k : {"algorithm", "iterations", "step", "note"}) m.erase(prefix + k);
  if (!r.known()) return;
  m[prefix + "algorithm"] = "resire";
  m[prefix + "iterations"] = std::to_string(r.iterations);
  m[prefix + "step"] = fmt(r.step);
}

}  // namespace

ReconRecipe model_input_recipe(const nn::Model& model) {
  const ReconRecipe chosen = stored_recipe(model.metadata(), "input.");
  return chosen.known() ? chosen : stored_recipe(model.metadata(), "training.input_");
}
#endif

void add_network_options(po::options_description& desc) {
  // clang-format off
  desc.add_options()
    ("no-network", "skip the missing-wedge network (trace the reconstruction itself)")
    ("model", po::value<std::string>()->value_name("FILE"),
       "network weights (HDF5); default: the shipped model (networks/models/, or $AET_MODEL)");
  // clang-format on
  add_flips_option(desc);
}

void add_flips_option(po::options_description& desc) {
  desc.add_options()("flips", po::value<int>()->default_value(8)->value_name("N"),
                     "network: average its outputs over N mirror images of the volume (1, 2, 4 or "
                     "8; N passes; less of the network's own error)");
}

Device network_device(const po::variables_map& vm, const Device& recon_device) {
#if AET_WITH_TORCH
  if (recon_device.kind == DeviceKind::cuda && vm["device"].as<std::string>() == "auto" &&
      !nn::torch_cuda_available())
    return Device{};
#else
  (void)vm;
#endif
  return recon_device;
}

struct NetworkStage::Impl {
  bool explicit_model = false;
  int flips = 0;  // --flips
  std::string path, reason;
#if AET_WITH_TORCH
  std::unique_ptr<nn::Model> model;
#endif
};

NetworkStage::NetworkStage(const po::variables_map& vm, const Device& dev)
    : impl_(std::make_unique<Impl>()) {
  impl_->flips = flips_option(vm);
  if (vm.count("no-network")) {
    if (vm.count("model")) fail_input("--model and --no-network exclude each other");
    impl_->reason = "--no-network";
    return;
  }
  impl_->explicit_model = vm.count("model") > 0;
#if !AET_WITH_TORCH
  if (impl_->explicit_model)
    fail_input("--model: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
  impl_->reason = "this build has no LibTorch";
  (void)dev;
#else
  impl_->path = impl_->explicit_model ? vm["model"].as<std::string>() : nn::default_model_path();
  if (impl_->path.empty()) {
    impl_->reason = "the shipped model was not found (networks/models/)";
    return;
  }
  impl_->model = std::make_unique<nn::Model>(nn::load_model(impl_->path, dev));
#endif
}

NetworkStage::~NetworkStage() = default;

bool NetworkStage::active() const {
  return impl_->reason.empty();
}
const std::string& NetworkStage::model_path() const {
  return impl_->path;
}
const std::string& NetworkStage::skip_reason() const {
  return impl_->reason;
}
int NetworkStage::flips() const {
  return impl_->flips;
}

void NetworkStage::check_voxel_size(double voxel) {
#if AET_WITH_TORCH
  if (!active()) return;
  const std::string why = voxel_size_mismatch(*impl_->model, voxel);
  if (why.empty()) return;
  if (impl_->explicit_model) fail_input("--model " + impl_->path + ": the views' " + why);
  impl_->reason = "the views' " + why;
  impl_->model.reset();
#else
  (void)voxel;
#endif
}

Array3 NetworkStage::apply(const Array3& volume) const {
#if AET_WITH_TORCH
  if (active()) {
    nn::AugmentOptions o;
    o.flips = impl_->flips;
    return nn::augment(*impl_->model, volume, o);
  }
#endif
  (void)volume;
  throw InternalError("NetworkStage::apply on an inactive stage");
}

ReconRecipe NetworkStage::input_recipe() const {
#if AET_WITH_TORCH
  if (active()) return model_input_recipe(*impl_->model);
#endif
  return {};
}

int run_augment(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("volume,i", po::value<std::string>()->value_name("V.mrc"), "reconstructed volume (MRC)")
    ("out,o", po::value<std::string>()->value_name("V2.mrc"), "corrected volume (MRC)")
    ("model", po::value<std::string>()->value_name("FILE"),
       "network weights (HDF5); default: the shipped model (networks/models/, or $AET_MODEL)")
    ("patch", po::value<std::int64_t>()->default_value(128)->value_name("N"),
       "cubic patch edge in voxels (memory grows as N^3)")
    ("overlap", po::value<std::int64_t>()->default_value(32)->value_name("N"),
       "overlap of neighbouring patches, blended smoothly")
    ("batch", po::value<int>()->default_value(1)->value_name("N"), "patches per forward pass");
  // clang-format on
  add_flips_option(desc);
  add_common_options(desc, true);
  const auto synopsis = "--volume V.mrc --out V2.mrc [--model FILE] [options]";
  const auto about =
      "Restores what the missing wedge removed from a reconstruction with the 3D U-Net "
      "(docs/network.md). The volume is normalised inside (no scale factor to set) and run in "
      "overlapping patches with smooth blending, so any size fits in bounded memory, and its "
      "outputs over --flips mirror images of the volume are averaged. The output "
      "is in normalised units: the heaviest atoms peak near 1.";
  Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, synopsis, about, desc);
    return 0;
  }
#if !AET_WITH_TORCH
  fail_input("aet augment: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
#else
  const auto& vm = p.vm;
  if (!vm.count("volume")) fail_input("--volume FILE is required");
  if (!vm.count("out")) fail_input("--out FILE is required");
  const std::string in_path = vm["volume"].as<std::string>();
  const std::string out_path = vm["out"].as<std::string>();
  const nn::AugmentOptions opt = augment_options(vm);
  // auto picks the GPU only where LibTorch can use it.
  const Device dev = network_device(vm, resolve_device(vm["device"].as<std::string>()));
  MrcHeader header;
  Array3 volume = read_mrc(in_path, &header);
  if (volume.nz() < 2)
    fail_file(in_path, "is not a volume (nz = " + std::to_string(volume.nz()) + ")");
  for (float v : volume.vector())
    if (!std::isfinite(v)) fail_file(in_path, "holds a non-finite voxel");
  const std::string model_path =
      resolve_model_path(vm.count("model") ? vm["model"].as<std::string>() : "");
  const nn::Model model = nn::load_model(model_path, dev);
  if (const std::string why = voxel_size_mismatch(model, volume.voxel_size.x); !why.empty())
    fail_file(in_path, why);
  // The network learned to correct volumes made one way; another recipe is outside what it saw.
  const ReconRecipe trained = model_input_recipe(model), given = recipe_from_labels(header.labels);
  if (trained.known()) {
    const std::string fix = "aet reconstruct --iterations " + std::to_string(trained.iterations) +
                            " --step " + fmt(trained.step);
    if (given.known() && given != trained)
      log_warning(in_path + " is RESIRE of " + std::to_string(given.iterations) +
                  " iterations at step " + fmt(given.step) + ", but the model is meant for " +
                  std::to_string(trained.iterations) + " at step " + fmt(trained.step) +
                  " (its input recipe, aet model-input); for such an input use " + fix);
    else if (!given.known())
      log_info("the model is meant for RESIRE reconstructions of " +
               std::to_string(trained.iterations) + " iterations at step " + fmt(trained.step) +
               " (" + fix + ")");
  }
  log_info("aet augment: " + in_path + " (" + std::to_string(volume.nx()) + " x " +
           std::to_string(volume.ny()) + " x " + std::to_string(volume.nz()) + ") with " +
           model_path + " on " + dev.str());
  {
    const std::int64_t align = nn::alignment(model.config());
    std::string layout;
    std::int64_t passes = opt.flips;
    for (std::int64_t n : {volume.nx(), volume.ny(), volume.nz()}) {
      const nn::PatchLayout l = nn::patch_layout(n, opt.patch, opt.overlap, align);
      layout +=
          (layout.empty() ? "" : ", ") + std::to_string(l.count) + " of " + std::to_string(l.patch);
      passes *= l.count;
    }
    log_verbose("patches per axis (x, y, z): " + layout + " voxels; " + std::to_string(passes) +
                " network passes with " + std::to_string(opt.flips) + " flips");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Array3 out = nn::augment(model, volume, opt);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_mrc(out_path, out, MrcKind::volume, {"aet augment " + model_path});
  log_info("wrote " + out_path + " (" + fmt(s) + " s)");
  return 0;
#endif
}

int run_model_input(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("model", po::value<std::string>()->value_name("FILE"),
       "network weights (HDF5); rewritten when setting or clearing")
    ("iterations,n", po::value<int>()->value_name("N"), "RESIRE iterations of the input")
    ("step", po::value<double>()->value_name("S"), "RESIRE step of the input, in (0, 2)")
    ("note", po::value<std::string>()->value_name("TEXT"),
       "how the recipe was chosen (stored as input.note)")
    ("clear", "remove the chosen recipe (the training inputs' recipe applies again)");
  // clang-format on
  add_common_options(desc, false);
  const auto synopsis = "--model FILE [--iterations N --step S [--note TEXT] | --clear]";
  const auto about =
      "Shows, sets or clears the input recipe of a network model: the RESIRE iteration count and "
      "step of the volumes it is meant to be given. aet train records the recipe of its "
      "training inputs; a recipe chosen afterwards on held-out runs (input.* metadata) takes "
      "precedence in aet pipeline, which feeds the network a RESIRE solve made that way, and in "
      "aet augment, which warns about volumes made otherwise. Without --iterations or --clear "
      "it prints both recipes. The file is rewritten atomically.";
  Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, synopsis, about, desc);
    return 0;
  }
#if !AET_WITH_TORCH
  fail_input("aet model-input: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
#else
  const auto& vm = p.vm;
  if (!vm.count("model")) fail_input("--model FILE is required");
  const bool set = vm.count("iterations") || vm.count("step");
  if (set && vm.count("clear")) fail_input("--clear excludes --iterations and --step");
  if (set && !(vm.count("iterations") && vm.count("step")))
    fail_input("--iterations and --step go together");
  if (vm.count("note") && !set) fail_input("--note needs --iterations and --step");
  const std::string path = vm["model"].as<std::string>();
  nn::Model model = nn::load_model(path, Device{});
  // Rewriting a checkpoint as a model file would drop the Adam state that --resume needs.
  if (set || vm.count("clear"))
    for (const auto& d : read_result_summary(path).datasets)
      if (d.name.rfind("optimizer/", 0) == 0)
        fail_file(path,
                  "is a training checkpoint (it holds the optimiser state); set the input recipe "
                  "on the trained model (DIR/model.h5)");
  auto& m = model.metadata();
  const auto describe = [](const ReconRecipe& r) {
    return r.known()
               ? "RESIRE, " + std::to_string(r.iterations) + " iterations, step " + fmt(r.step)
               : std::string("not recorded");
  };
  if (set) {
    const int n = vm["iterations"].as<int>();
    const double s = vm["step"].as<double>();
    if (n < 1) fail_input("--iterations must be >= 1");
    if (!(s > 0 && s < 2)) fail_input("--step must be in (0, 2)");
    store_recipe(m, "input.", ReconRecipe{n, s});
    if (vm.count("note")) m["input.note"] = vm["note"].as<std::string>();
  } else if (vm.count("clear")) {
    store_recipe(m, "input.", ReconRecipe{});
  }
  if (set || vm.count("clear")) save_model(model, path);
  std::printf("%s\n  training inputs: %s\n  chosen input:    %s\n  used:            %s\n",
              path.c_str(), describe(stored_recipe(m, "training.input_")).c_str(),
              describe(stored_recipe(m, "input.")).c_str(),
              describe(model_input_recipe(model)).c_str());
  return 0;
#endif
}

int run_train(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("data", po::value<std::vector<std::string>>()->multitoken()->value_name("FILE.h5"),
       "training set(s) from aet make-training-set; several files (repeated --data or a list) "
       "are trained on together")
    ("validation", po::value<std::string>()->value_name("FILE.h5"),
       "separate validation set (default: hold out --validation-fraction of --data)")
    ("validation-fraction", po::value<double>()->default_value(0.1, "0.1")->value_name("F"),
       "share of --data held out for validation when no --validation is given")
    ("out,o", po::value<std::string>()->value_name("DIR"),
       "output directory: model.h5, checkpoint.h5, metrics.json, train.log")
    ("resume", po::value<std::string>()->value_name("CHECKPOINT"),
       "continue the run saved in this checkpoint (same data and settings)")
    ("init", po::value<std::string>()->value_name("MODEL"),
       "start from these weights (fine-tuning) instead of a fresh model")
    ("steps", po::value<std::int64_t>()->default_value(2000)->value_name("N"),
       "optimiser steps in all")
    ("stop-after", po::value<std::int64_t>()->default_value(0)->value_name("N"),
       "stop (with a checkpoint) after N steps of this call; 0 = run to --steps")
    ("batch", po::value<int>()->default_value(4)->value_name("N"), "patches per step")
    ("patch", po::value<std::int64_t>()->default_value(48)->value_name("N"),
       "training patch edge (voxels)")
    ("lr", po::value<double>()->default_value(1e-3)->value_name("R"),
       "Adam learning rate (cosine decay to 2 %)")
    ("l1", po::value<double>()->default_value(0.0)->value_name("W"),
       "loss = MSE + W * L1")
    ("species-balance", po::value<double>()->default_value(0.0)->value_name("F"),
       "weight each voxel's squared error by 1 / max(e, F)^2, e the nearest atom's target peak "
       "(light atoms beside heavy ones count alike); 0 = plain MSE")
    ("base-channels", po::value<int>()->default_value(16)->value_name("N"),
       "U-Net channels at full resolution (doubled per level)")
    ("levels", po::value<int>()->default_value(3)->value_name("N"), "U-Net resolution levels")
    ("validate-every", po::value<std::int64_t>()->default_value(100)->value_name("N"),
       "steps between validations")
    ("checkpoint-every", po::value<std::int64_t>()->default_value(200)->value_name("N"),
       "steps between checkpoints");
  // clang-format on
  add_common_options(desc, true);
  const auto synopsis = "--data train.h5 --out DIR [--steps N] [--resume DIR/checkpoint.h5]";
  const auto about =
      "Trains the missing-wedge U-Net (docs/network.md) on pairs from aet make-training-set: "
      "random patches of RESIRE reconstructions against ideal Gaussian-atom volumes, MSE loss, "
      "Adam with cosine decay, random flips that keep the wedge a wedge. Validation metrics "
      "(loss, PSNR, relative error) are logged every --validate-every steps; the checkpoint "
      "(weights, optimiser state, step) lets --resume continue the same run.\n\nWrites "
      "DIR/model.h5 (weights with the training provenance), DIR/metrics.json and DIR/train.log "
      "at the end; DIR/checkpoint.h5 is written during training (atomically each time).";
  Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, synopsis, about, desc);
    return 0;
  }
#if !AET_WITH_TORCH
  fail_input("aet train: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
#else
  const auto& vm = p.vm;
  if (!vm.count("data")) fail_input("--data FILE.h5 is required");
  if (!vm.count("out")) fail_input("--out DIR is required");
  if (vm.count("resume") && vm.count("init")) fail_input("--resume and --init exclude each other");
  const std::string out_dir = vm["out"].as<std::string>();
  // auto picks the GPU only where LibTorch can use it.
  const Device dev = network_device(vm, resolve_device(vm["device"].as<std::string>()));

  nn::TrainOptions o;
  o.steps = vm["steps"].as<std::int64_t>();
  o.stop_after = vm["stop-after"].as<std::int64_t>();
  o.batch = vm["batch"].as<int>();
  o.patch = vm["patch"].as<std::int64_t>();
  o.learning_rate = vm["lr"].as<double>();
  o.l1_weight = vm["l1"].as<double>();
  o.species_balance = vm["species-balance"].as<double>();
  o.validation_fraction = vm["validation-fraction"].as<double>();
  o.validate_every = vm["validate-every"].as<std::int64_t>();
  o.checkpoint_every = vm["checkpoint-every"].as<std::int64_t>();
  o.seed = seed_or_default(vm);
  if (o.steps < 1) fail_input("--steps must be >= 1");
  if (o.stop_after < 0) fail_input("--stop-after must be >= 0");
  if (o.batch < 1) fail_input("--batch must be >= 1");
  if (!(o.learning_rate > 0)) fail_input("--lr must be > 0");
  if (!(o.l1_weight >= 0)) fail_input("--l1 must be >= 0");
  if (!(o.species_balance >= 0 && o.species_balance < 1))
    fail_input("--species-balance must be in [0, 1)");
  if (!(o.validation_fraction >= 0 && o.validation_fraction < 1))
    fail_input("--validation-fraction must be in [0, 1)");
  nn::UNetConfig cfg;
  cfg.base_channels = vm["base-channels"].as<int>();
  cfg.levels = vm["levels"].as<int>();
  nn::check_config(cfg);

  // Everything is read and checked before the output directory appears.
  const auto data_paths = vm["data"].as<std::vector<std::string>>();
  std::string data_path;  // the files, comma-separated, for the log and the model's provenance
  double voxel = 0;
  // The reconstruction recipe of the inputs (RESIRE iterations and step), recorded in the model
  // so that the pipeline feeds it the same kind of volume; unrecorded when the files differ.
  int input_iterations = 0;
  double input_step = 0;
  bool same_recipe = true;
  // The width of the target atoms: what the model's output atoms will have. One per model.
  double target_sigma = 0;
  for (const std::string& path : data_paths) {
    nn::TrainingDataSpec spec;
    std::vector<nn::TrainingSample> part = nn::read_training_set(path, &spec);
    if (target_sigma == 0) target_sigma = spec.target_sigma;
    if (std::abs(spec.target_sigma / target_sigma - 1.0) > 1e-6)
      fail_file(path, "has target atoms of sigma " + fmt(spec.target_sigma) +
                          " A, the sets before it " + fmt(target_sigma) +
                          " A; train on sets of one target width");
    if (input_iterations == 0) {
      input_iterations = spec.iterations;
      input_step = spec.recon_step;
    } else if (spec.iterations != input_iterations || spec.recon_step != input_step) {
      same_recipe = false;
    }
    if (part.empty()) fail_file(path, "holds no training samples");
    if (voxel == 0) voxel = part.front().input.voxel_size.x;
    for (const auto& s : part)
      if (std::abs(s.input.voxel_size.x / voxel - 1.0) > 1e-3)
        fail_file(path, "mixes voxel sizes (" + fmt(voxel) + " and " + fmt(s.input.voxel_size.x) +
                            " A); train one model per voxel size");
    for (auto& s : part) o.samples.push_back(std::move(s));
    data_path += (data_path.empty() ? "" : ",") + path;
  }
  if (!same_recipe)
    log_warning(
        "the training sets were reconstructed with different RESIRE settings: the model "
        "will record no input recipe, and the pipeline will feed it its own "
        "reconstruction");
  if (vm.count("validation"))
    o.validation = nn::read_training_set(vm["validation"].as<std::string>());
  nn::Model model = vm.count("init")     ? nn::load_model(vm["init"].as<std::string>(), dev)
                    : vm.count("resume") ? nn::load_model(vm["resume"].as<std::string>(), dev)
                                         : nn::create_model(cfg, o.seed, dev);
  if (vm.count("resume")) o.resume_from = vm["resume"].as<std::string>();

  std::filesystem::create_directories(out_dir);
  o.checkpoint_path = out_dir + "/checkpoint.h5";
  std::ostringstream log;
  log << inv.command_line << "\n\n";
  Progress bar("train", static_cast<int>(o.steps));
  o.progress = [&](const nn::TrainProgress& t) {
    bar.advance();
    if (t.validation) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "step %lld: loss %.4g, validation loss %.4g, PSNR %.2f dB, relative error "
                    "%.4f, lr %.3g, %.0f s",
                    static_cast<long long>(t.step), t.loss, t.validation->loss, t.validation->psnr,
                    t.validation->rel_error, t.learning_rate, t.seconds);
      log << line << "\n";
      log_info(line);
    }
  };
  log_info("aet train: " + std::to_string(o.samples.size()) + " samples from " + data_path +
           ", U-Net base " + std::to_string(model.config().base_channels) + " x " +
           std::to_string(model.config().levels) + " levels (" +
           std::to_string(model.parameter_count()) + " parameters) on " + dev.str());
  const nn::TrainReport rep = nn::train(model, o);
  bar.finish();
  model.metadata()["training.voxel_size_A"] = fmt(voxel);
  model.metadata()["training.target_sigma_A"] = fmt(target_sigma);
  // Unrecorded when the files differ (--init may carry the recipe of other data); a recipe chosen
  // for the --init weights is not known to suit the new ones.
  store_recipe(model.metadata(), "training.input_",
               same_recipe ? ReconRecipe{input_iterations, input_step} : ReconRecipe{});
  store_recipe(model.metadata(), "input.", ReconRecipe{});
  model.metadata()["training.data"] = data_path;
  model.metadata()["training.device"] = dev.str();
  model.metadata()["training.command_line"] = inv.command_line;
  model.metadata()["aet_version"] = AET_VERSION;
  nn::save_model(model, out_dir + "/model.h5");

  std::ostringstream js;
  js << "{\n  \"steps\": " << rep.steps << ",\n  \"seconds\": " << json_number(rep.seconds)
     << ",\n  \"training_samples\": " << rep.training_samples
     << ",\n  \"validation_samples\": " << rep.validation_samples
     << ",\n  \"parameters\": " << model.parameter_count() << ",\n  \"device\": \"" << dev.str()
     << "\",\n  \"input_baseline\": {\"loss\": " << json_number(rep.input_baseline.loss)
     << ", \"psnr\": " << json_number(rep.input_baseline.psnr)
     << ", \"rel_error\": " << json_number(rep.input_baseline.rel_error)
     << "},\n  \"validation\": [";
  for (std::size_t i = 0; i < rep.validation.size(); ++i) {
    const auto& v = rep.validation[i];
    js << (i ? ", " : "") << "\n    {\"step\": " << v.step << ", \"loss\": " << json_number(v.loss)
       << ", \"psnr\": " << json_number(v.psnr) << ", \"rel_error\": " << json_number(v.rel_error)
       << "}";
  }
  js << "\n  ],\n  \"loss\": " << json_array(rep.loss) << "\n}\n";
  write_text_file(out_dir + "/metrics.json", js.str());
  write_text_file(out_dir + "/train.log", log.str());
  log_info("wrote " + out_dir + "/{model.h5, metrics.json, train.log} after " + fmt(rep.seconds) +
           " s");
  return 0;
#endif
}

}  // namespace aet::cli
