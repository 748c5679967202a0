// The missing-wedge correction network (a 3D U-Net, networks/), behind an interface free of
// LibTorch headers: the CLI and other stages include only this. Built when AET_WITH_TORCH is on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"

namespace aet::nn {

struct UNetConfig {
  int base_channels = 16;  // channels at full resolution, doubled per level
  int levels = 3;          // resolution levels (2x down-sampling between neighbours)
  bool residual = true;    // output = input + U-Net(input)
};

class Model {
 public:
  struct Impl;  // LibTorch module and device (networks/*.cpp)
  explicit Model(std::unique_ptr<Impl> impl);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  const UNetConfig& config() const;
  // Provenance stored with the weights (training data, steps, validation metrics, ...).
  std::map<std::string, std::string>& metadata();
  const std::map<std::string, std::string>& metadata() const;
  Impl& impl() { return *impl_; }
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// A freshly initialised model (deterministic for the seed).
Model create_model(const UNetConfig& config, std::uint64_t seed, const Device& dev);

// Weights in HDF5: one dataset per named parameter (and buffer), the architecture and the
// metadata as attributes. load_model refuses a missing, truncated or mismatched file with an
// InputError naming it; save_model writes atomically.
Model load_model(const std::string& path, const Device& dev);
void save_model(const Model& model, const std::string& path);

struct AugmentOptions {
  std::int64_t patch = 64;    // cubic patch edge (voxels)
  std::int64_t overlap = 16;  // overlap between neighbouring patches, blended smoothly
  int batch = 1;              // patches per forward pass
};

// Runs the network over `volume` (normalised inside with normalisation_scale, so any intensity
// scale is accepted) in overlapping patches with smooth blending; any volume size. The result is
// in normalised units (peak of the heaviest atoms near 1), same grid and voxel size.
Array3 augment(const Model& model, const Array3& volume, const AugmentOptions& opt);

// Where the shipped model lives (networks/models/...), or "" when it is not found.
std::string default_model_path();

}  // namespace aet::nn
