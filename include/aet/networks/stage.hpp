// The missing-wedge network as a stage of the chain: which model, whether it applies to these
// data, the reconstruction it expects as input, and running it. Free of LibTorch headers; in a
// build without LibTorch the stage is inactive and says why, and an explicit model is refused.
#pragma once

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"

namespace aet::nn {

class Model;

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

// A recipe in a model's metadata under `prefix` ("input." chosen after training, "training.input_"
// the training inputs'): keys algorithm, iterations, step. stored_recipe is unknown when they are
// absent or not RESIRE; store_recipe with an unknown recipe erases them and the prefix's note.
ReconRecipe stored_recipe(const std::map<std::string, std::string>& metadata,
                          const std::string& prefix);
void store_recipe(std::map<std::string, std::string>& metadata, const std::string& prefix,
                  const ReconRecipe& r);
// The input a model is meant for: its input.* metadata when set (a recipe chosen on held-out runs
// after training, which may be less converged than the training inputs), else the training
// inputs'; unknown when the file records neither.
ReconRecipe model_input_recipe(const Model& model);
// The model file: `given`, or the shipped model (InputError when there is none).
std::string resolve_model_path(const std::string& given);
// Why data of voxel size `voxel` (Angstrom) is outside the model's domain (more than 15 % from its
// training voxel size), or "" when it is not.
std::string voxel_size_mismatch(const Model& model, double voxel);
// The network's device: the reconstruction's, except that when the device was chosen
// automatically a LibTorch without CUDA runs the network on the CPU.
Device network_device(const Device& recon_device, bool device_auto);

struct StageOptions {
  bool enabled = true;  // false: --no-network
  std::string model;    // weights file; "" = the shipped model
  int flips = 0;        // mirror images averaged (1, 2, 4 or 8); 0 = auto_flips (flips.hpp)
  Device device;
};

class NetworkStage {
 public:
  // Loads the model (an unusable file is an InputError), or the shipped one; without LibTorch in
  // the build or without a shipped model the stage is inactive and says why (an explicit model is
  // then an InputError), as it is when disabled.
  explicit NetworkStage(const StageOptions& options);
  ~NetworkStage();
  NetworkStage(const NetworkStage&) = delete;
  NetworkStage& operator=(const NetworkStage&) = delete;
  bool active() const;
  const std::string& model_path() const;
  const std::string& skip_reason() const;     // why the stage is inactive ("" when active)
  int flips() const;                          // as set: 0 = automatic
  int flips_for(const Array3& volume) const;  // the flips apply() averages for this volume
  // The network learned atoms of a given width in voxels: another voxel size deactivates the
  // shipped model (with the reason) and is an InputError for an explicit model.
  void check_voxel_size(double voxel);
  // The network learned isolated particles in vacuum: a film (a slab running out of the field of
  // view) deactivates the shipped model, with the reason, and returns true (on the measured Ta film
  // it lowered the traced recall from 0.90 to 0.77, docs/results.md). An explicit model stays
  // active; its caller says that the volume is outside the model's domain.
  bool check_film(bool film);
  Array3 apply(const Array3& volume) const;  // normalised units, heaviest atoms near 1
  // The reconstruction the model is meant for (model_input_recipe); unknown when inactive.
  ReconRecipe input_recipe() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace aet::nn
