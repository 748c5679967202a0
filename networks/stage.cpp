// The network stage and the input recipes: torch-free, over network.hpp (whose functions refuse
// in a build without LibTorch; torch_available() tells beforehand).
#include "aet/networks/stage.hpp"

#include <cstdio>
#include <cstdlib>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/networks/network.hpp"

namespace aet::nn {

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

ReconRecipe stored_recipe(const std::map<std::string, std::string>& m, const std::string& prefix) {
  const auto alg = m.find(prefix + "algorithm");
  const auto its = m.find(prefix + "iterations");
  const auto step = m.find(prefix + "step");
  if (alg == m.end() || alg->second != "resire" || its == m.end() || step == m.end()) return {};
  ReconRecipe r{std::atoi(its->second.c_str()), std::atof(step->second.c_str())};
  if (!(r.iterations > 0 && r.step > 0)) return {};
  return r;
}

void store_recipe(std::map<std::string, std::string>& m, const std::string& prefix,
                  const ReconRecipe& r) {
  for (const char* k : {"algorithm", "iterations", "step", "note"}) m.erase(prefix + k);
  if (!r.known()) return;
  m[prefix + "algorithm"] = "resire";
  m[prefix + "iterations"] = std::to_string(r.iterations);
  m[prefix + "step"] = fmt_g(r.step);
}

ReconRecipe model_input_recipe(const Model& model) {
  const ReconRecipe chosen = stored_recipe(model.metadata(), "input.");
  return chosen.known() ? chosen : stored_recipe(model.metadata(), "training.input_");
}

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return given;
  const std::string path = default_model_path();
  if (path.empty())
    fail_input(
        "no network model given and the shipped model (networks/models/) was not found; pass "
        "--model FILE or set AET_MODEL");
  return path;
}

// The network learned atoms of a given width in voxels, so a voxel size far from its training one
// is out of its domain.
std::string voxel_size_mismatch(const Model& model, double voxel) {
  const auto it = model.metadata().find("training.voxel_size_A");
  const double trained = it == model.metadata().end() ? 0.0 : std::atof(it->second.c_str());
  if (!(trained > 0) || std::abs(voxel / trained - 1.0) <= 0.15) return "";
  return "voxel size " + fmt_g(voxel) + " A differs from the " + fmt_g(trained) +
         " A the network was trained at; resample the data or train a model for this voxel size";
}

Device network_device(const Device& recon_device, bool device_auto) {
  if (recon_device.kind == DeviceKind::cuda && device_auto && !torch_cuda_available())
    return Device{};
  return recon_device;
}

struct NetworkStage::State {
  bool explicit_model = false;
  int flips = 0;
  std::string path, reason;
  std::unique_ptr<Model> model;
};

NetworkStage::NetworkStage(const StageOptions& o) : state_(std::make_unique<State>()) {
  if (o.flips != 0) flip_masks(o.flips);  // the one rule for the count
  state_->flips = o.flips;
  if (!o.enabled) {
    if (!o.model.empty()) fail_input("--model and --no-network exclude each other");
    state_->reason = "--no-network";
    return;
  }
  state_->explicit_model = !o.model.empty();
  if (!torch_available()) {
    if (state_->explicit_model)
      fail_input("--model: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
    state_->reason = "this build has no LibTorch";
    return;
  }
  state_->path = state_->explicit_model ? o.model : default_model_path();
  if (state_->path.empty()) {
    state_->reason = "the shipped model was not found (networks/models/)";
    return;
  }
  state_->model = std::make_unique<Model>(load_model(state_->path, o.device));
}

NetworkStage::~NetworkStage() = default;

bool NetworkStage::active() const {
  return state_->reason.empty();
}
const std::string& NetworkStage::model_path() const {
  return state_->path;
}
const std::string& NetworkStage::skip_reason() const {
  return state_->reason;
}
int NetworkStage::flips() const {
  return state_->flips;
}
int NetworkStage::flips_for(const Array3& volume) const {
  return resolve_flips(state_->flips, static_cast<std::int64_t>(volume.size()));
}

void NetworkStage::check_voxel_size(double voxel) {
  if (!active()) return;
  const std::string why = voxel_size_mismatch(*state_->model, voxel);
  if (why.empty()) return;
  if (state_->explicit_model) fail_input("--model " + state_->path + ": the views' " + why);
  state_->reason = "the views' " + why;
  state_->model.reset();
}

bool NetworkStage::check_film(bool film) {
  if (!active() || !film || state_->explicit_model) return false;
  state_->reason =
      "the views show a film and the shipped model was trained on isolated particles "
      "(--model FILE applies a model anyway)";
  state_->model.reset();
  return true;
}

Array3 NetworkStage::apply(const Array3& volume) const {
  if (!active()) throw InternalError("NetworkStage::apply on an inactive stage");
  AugmentOptions o;
  o.flips = flips_for(volume);
  return augment(*state_->model, volume, o);
}

ReconRecipe NetworkStage::input_recipe() const {
  return active() ? model_input_recipe(*state_->model) : ReconRecipe{};
}

}  // namespace aet::nn
