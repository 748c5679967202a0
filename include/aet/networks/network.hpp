// The missing-wedge correction network (a 3D U-Net, networks/), behind an interface free of
// LibTorch headers: the CLI and other stages include only this. Always built; without LibTorch
// (AET_WITH_TORCH=OFF) what needs it refuses with an InputError (networks/no_torch.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/networks/flips.hpp"

namespace aet::nn {

struct UNetConfig {
  int base_channels = 16;     // channels at full resolution, doubled per level
  int levels = 3;             // resolution levels (2x down-sampling between neighbours)
  bool residual = true;       // output = input + U-Net(input)
  bool batch_norm = true;     // BatchNorm after each convolution (running statistics in eval)
  double leaky_slope = 0.01;  // LeakyReLU negative slope; 0 = ReLU
};

// Throws InputError for an architecture that cannot be built (base_channels 1..1024, levels
// 1..8, leaky_slope in [0, 1)).
void check_config(const UNetConfig& config);
// Patch sizes and relative patch origins must be multiples of this (2^(levels-1)), so that
// max-pooling sees the same grid in every patch.
std::int64_t alignment(const UNetConfig& config);
// Receptive-field radius in voxels: outputs closer than this to a patch face feel the
// zero-padding there.
std::int64_t receptive_radius(const UNetConfig& config);

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
  Device device() const;
  std::int64_t parameter_count() const;  // trainable scalars

 private:
  friend struct ModelAccess;  // networks/torch_detail.hpp
  std::unique_ptr<Impl> impl_;
};

// A freshly initialised model (deterministic for the seed).
Model create_model(const UNetConfig& config, std::uint64_t seed, const Device& dev);

// Weights in HDF5: one float32 dataset per named parameter (/parameters/...) and buffer
// (/buffers/...), '.' in the LibTorch name becoming a group level; the architecture as root
// attributes (format "aet-unet", format_version, base_channels, levels, residual, batch_norm,
// leaky_slope) and the metadata as string attributes of /metadata. load_model refuses a
// missing, truncated or mismatched file with an InputError naming it (and the parameter);
// save_model writes atomically. A training checkpoint is a model file with extra groups, so
// load_model reads it too.
Model load_model(const std::string& path, const Device& dev);
void save_model(const Model& model, const std::string& path);

struct AugmentOptions {
  // Largest patch edge (voxels), rounded up to a multiple of alignment(); patches are never
  // larger than the volume and their count needs (patch_layout). Large patches waste less work
  // on overlaps (a 128^3 volume is one patch); a 128^3 patch of the base-16 network holds
  // roughly 1 GiB of activations (estimate).
  std::int64_t patch = 128;
  std::int64_t overlap = 32;  // overlap between neighbouring patches, blended smoothly
  int batch = 1;              // patches per forward pass
  // Voxels at each inner patch face that get zero weight (they feel the patch's zero padding);
  // the blend ramp spans the rest of the overlap. -1: overlap / 4. Needs overlap >= 2 margin.
  // With margin >= receptive_radius() patched and whole-volume inference agree exactly.
  std::int64_t margin = -1;
  // Flip averaging: the network is run on this many mirror images of the volume (1, 2, 4 or 8;
  // flips of x, y and z keep a single-axis missing wedge a wedge) and the outputs, flipped back,
  // are averaged. The result is exactly equivariant under those flips and has less of the
  // network's own error (docs/network.md, measured); it costs `flips` passes. 0 = auto_flips.
  int flips = 8;
};

// The patches along one axis of n voxels: count patches of `patch` voxels (a multiple of the
// alignment) whose origins are `stride` apart. The count is the fewest that patches of at most
// `patch` (rounded up to `align`) with at least `overlap` in common need; each patch is then as
// small as that count allows. InputError when the overlap leaves no stride.
struct PatchLayout {
  std::int64_t patch = 0, stride = 0, count = 0;
};
PatchLayout patch_layout(std::int64_t n, std::int64_t patch, std::int64_t overlap,
                         std::int64_t align);

// Runs the network over `volume` (normalised inside with normalisation_scale, so any intensity
// scale is accepted) in overlapping patches with smooth blending; any volume size; averaged over
// `flips` mirror images. The result is
// in normalised units (peak of the heaviest atoms near 1), same grid and voxel size.
// Patch origins are multiples of alignment() in volume coordinates, patches never extend past
// the volume by more than needed (a volume smaller than a patch is run as one patch), and only
// `batch` patches are in flight. Blend weights: a separable sin^2 ramp across each overlap
// (neighbours' ramps sum to 1), divided by their sum. Gradient-free, eval mode.
Array3 augment(const Model& model, const Array3& volume, const AugmentOptions& opt);

// Whether this build has LibTorch: without it the functions that run or load a network throw an
// InputError that says so, and the network stage is inactive.
bool torch_available();
// Throws the InputError "WHAT: this build of aet has no LibTorch ..." when torch_available() is false.
void require_torch(const std::string& what);

// Whether LibTorch in this build sees a CUDA device (a CPU-only LibTorch never does).
bool torch_cuda_available();

// Where the shipped model lives (networks/models/missing_wedge_unet.h5, or the file named by the
// environment variable AET_MODEL), or "" when it is not found.
std::string default_model_path();

}  // namespace aet::nn
