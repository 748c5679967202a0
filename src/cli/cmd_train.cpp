// aet train: the missing-wedge U-Net (networks/) trained on sets from aet make-training-set,
// with checkpoints that --resume continues. Needs a build with LibTorch; without it the command
// says so and exits with code 2.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/train.hpp"
#include "aet/networks/training_data.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {

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
  const Parsed p = parse_or_help(
      inv, desc, {synopsis, about, {"data FILE.h5", "out DIR"}, /*needs_torch=*/true});
  if (p.help) return 0;
  const auto& vm = p.vm;
  if (vm.count("resume") && vm.count("init")) fail_input("--resume and --init exclude each other");
  const std::string out_dir = vm["out"].as<std::string>();
  check_output_directory("out", out_dir);
  for (const char* name : {"model.h5", "checkpoint.h5", "metrics.json", "train.log"})
    check_output_file("out", out_dir + "/" + name, {}, name);
  // auto picks the GPU only where LibTorch can use it.
  const Device dev = network_device(vm, device_option(vm));

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
      fail_file(path, "has target atoms of sigma " + fmt_g(spec.target_sigma) +
                          " A, the sets before it " + fmt_g(target_sigma) +
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
        fail_file(path, "mixes voxel sizes (" + fmt_g(voxel) + " and " +
                            fmt_g(s.input.voxel_size.x) + " A); train one model per voxel size");
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

  ensure_directory(out_dir);
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
  model.metadata()["training.voxel_size_A"] = fmt_g(voxel);
  model.metadata()["training.target_sigma_A"] = fmt_g(target_sigma);
  // Unrecorded when the files differ (--init may carry the recipe of other data); a recipe chosen
  // for the --init weights is not known to suit the new ones.
  nn::store_recipe(model.metadata(), "training.input_",
                   same_recipe ? nn::ReconRecipe{input_iterations, input_step} : nn::ReconRecipe{});
  nn::store_recipe(model.metadata(), "input.", nn::ReconRecipe{});
  model.metadata()["training.data"] = data_path;
  model.metadata()["training.device"] = dev.str();
  model.metadata()["training.command_line"] = inv.command_line;
  model.metadata()["aet_version"] = AET_VERSION;
  nn::save_model(model, out_dir + "/model.h5");

  Json js;
  js["steps"] = rep.steps;
  js["seconds"] = rep.seconds;
  js["training_samples"] = rep.training_samples;
  js["validation_samples"] = rep.validation_samples;
  js["parameters"] = model.parameter_count();
  js["device"] = dev.str();
  const auto metrics = [](const nn::ValidationPoint& v) {
    Json m;
    m["loss"] = v.loss;
    m["psnr"] = v.psnr;
    m["rel_error"] = v.rel_error;
    return m;
  };
  js["input_baseline"] = metrics(rep.input_baseline);
  Json validation = Json::array();
  for (const auto& v : rep.validation) {
    Json entry;
    entry["step"] = v.step;
    entry.update(metrics(v));
    validation.push_back(std::move(entry));
  }
  js["validation"] = std::move(validation);
  js["loss"] = rep.loss;
  write_text_file(out_dir + "/metrics.json", json_text(js));
  write_text_file(out_dir + "/train.log", log.str());
  log_info("wrote " + out_dir + "/{model.h5, metrics.json, train.log} after " + fmt_g(rep.seconds) +
           " s");
  return 0;
}

}  // namespace aet::cli
