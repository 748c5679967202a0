// aet augment: a reconstruction's missing wedge restored by the network (networks/), in
// overlapping patches. Needs a build with LibTorch; without it the command says so and exits
// with code 2.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/mrc.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/stage.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {
namespace {

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

int run_augment(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("volume,i", po::value<std::string>()->value_name("V.mrc"), "reconstructed volume (MRC)")
    ("out,o", po::value<std::string>()->value_name("V2.mrc"), "corrected volume (MRC)");
  add_model_option(desc);
  desc.add_options()
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
  const Parsed p = parse_or_help(
      inv, desc, {synopsis, about, {"volume FILE", "out FILE"}, /*needs_torch=*/true});
  if (p.help) return 0;
  const auto& vm = p.vm;
  const std::string in_path = vm["volume"].as<std::string>();
  const std::string out_path = vm["out"].as<std::string>();
  check_output_file("out", out_path, mrc_extensions(), "an MRC volume");
  nn::AugmentOptions opt = augment_options(vm);
  // auto picks the GPU only where LibTorch can use it.
  const Device dev = network_device(vm, device_option(vm));
  MrcHeader header;
  Array3 volume = read_mrc(in_path, &header);
  if (volume.nz() < 2)
    fail_file(in_path, "is not a volume (nz = " + std::to_string(volume.nz()) + ")");
  for (float v : volume.vector())
    if (!std::isfinite(v)) fail_file(in_path, "holds a non-finite voxel");
  opt.flips = nn::resolve_flips(opt.flips, static_cast<std::int64_t>(volume.size()));
  const std::string model_path = model_option(vm);
  const nn::Model model = nn::load_model(model_path, dev);
  if (const std::string why = nn::voxel_size_mismatch(model, volume.voxel_size.x); !why.empty())
    fail_file(in_path, why);
  // The network learned to correct volumes made one way; another recipe is outside what it saw.
  const nn::ReconRecipe trained = nn::model_input_recipe(model),
                        given = nn::recipe_from_labels(header.labels);
  if (trained.known()) {
    const std::string fix = "aet reconstruct --iterations " + std::to_string(trained.iterations) +
                            " --step " + fmt_g(trained.step);
    if (given.known() && given != trained)
      log_warning(in_path + " is RESIRE of " + std::to_string(given.iterations) +
                  " iterations at step " + fmt_g(given.step) + ", but the model is meant for " +
                  std::to_string(trained.iterations) + " at step " + fmt_g(trained.step) +
                  " (its input recipe, aet model-input); for such an input use " + fix);
    else if (!given.known())
      log_info("the model is meant for RESIRE reconstructions of " +
               std::to_string(trained.iterations) + " iterations at step " + fmt_g(trained.step) +
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
  ensure_parent_directory(out_path);
  write_mrc(out_path, out, MrcKind::volume, {"aet augment " + model_path});
  log_info("wrote " + out_path + " (" + fmt_g(s) + " s)");
  return 0;
}

}  // namespace aet::cli
