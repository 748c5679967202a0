// aet model-input: the reconstruction a network model is meant to be given (its input recipe),
// shown, set or cleared in the model file. Needs a build with LibTorch; without it the command
// says so and exits with code 2.
#include <cstdio>
#include <string>

#include "aet/core/error.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/stage.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {

int run_model_input(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("model", po::value<std::string>()->value_name("FILE"),
       "network weights (HDF5); rewritten when setting or clearing");
  add_iterations_option(desc, 0, "RESIRE iterations of the input", /*short_n=*/true);
  desc.add_options()
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
  const Parsed p =
      parse_or_help(inv, desc, {synopsis, about, {"model FILE"}, /*needs_torch=*/true});
  if (p.help) return 0;
  const auto& vm = p.vm;
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
  const auto describe = [](const nn::ReconRecipe& r) {
    return r.known()
               ? "RESIRE, " + std::to_string(r.iterations) + " iterations, step " + fmt_g(r.step)
               : std::string("not recorded");
  };
  if (set) {
    const int n = iterations_option(vm);
    const double s = vm["step"].as<double>();
    if (!(s > 0 && s < 2)) fail_input("--step must be in (0, 2)");
    nn::store_recipe(m, "input.", nn::ReconRecipe{n, s});
    if (vm.count("note")) m["input.note"] = vm["note"].as<std::string>();
  } else if (vm.count("clear")) {
    nn::store_recipe(m, "input.", nn::ReconRecipe{});
  }
  if (set || vm.count("clear")) save_model(model, path);
  std::printf("%s\n  training inputs: %s\n  chosen input:    %s\n  used:            %s\n",
              path.c_str(), describe(nn::stored_recipe(m, "training.input_")).c_str(),
              describe(nn::stored_recipe(m, "input.")).c_str(),
              describe(nn::model_input_recipe(model)).c_str());
  return 0;
}

}  // namespace aet::cli
