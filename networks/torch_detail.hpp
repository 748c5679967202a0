// The LibTorch side of the network (internal to networks/): the U-Net module, Model::Impl and
// the conversions between module state and the HDF5 container. Only networks/*.cpp include it.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "aet/networks/network.hpp"
#include "weights_file.hpp"

namespace aet::nn {

// The only way into a Model's LibTorch state (declared a friend by Model).
struct ModelAccess {
  static Model::Impl& impl(Model& m) { return *m.impl_; }
  static const Model::Impl& impl(const Model& m) { return *m.impl_; }
};

namespace detail {

// Two 3x3x3 convolutions, each followed by BatchNorm (optional) and a (leaky) ReLU.
struct ConvBlockImpl : torch::nn::Module {
  ConvBlockImpl(std::int64_t in, std::int64_t out, const UNetConfig& config);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm3d bn1{nullptr}, bn2{nullptr};
  double slope = 0;
};
TORCH_MODULE(ConvBlock);

// The 3D U-Net: encoder blocks enc0..enc{L-1} with 2x max-pooling between them, decoder levels
// up{l} (2x transposed convolution) + concatenation with enc{l} + dec{l}, a 1x1x1 head, and
// output = input + head when residual. Input [N, 1, D, H, W] with D, H, W multiples of
// alignment(config).
struct UNetImpl : torch::nn::Module {
  explicit UNetImpl(const UNetConfig& config);
  torch::Tensor forward(torch::Tensor x);

  UNetConfig config;
  std::vector<ConvBlock> enc, dec;
  std::vector<torch::nn::ConvTranspose3d> up;
  torch::nn::Conv3d head{nullptr};
};
TORCH_MODULE(UNet);

torch::Device to_torch(const Device& dev);  // checks that a CUDA device exists

// Parameters then buffers, with their LibTorch names ("enc0.conv1.weight").
std::vector<std::pair<std::string, torch::Tensor>> named_parameters(const UNet& net);
std::vector<std::pair<std::string, torch::Tensor>> named_buffers(const UNet& net);

// HDF5 dataset name of a LibTorch name: '.' becomes a group level.
std::string dataset_name(const std::string& group, const std::string& torch_name);

StoredTensor to_stored(const torch::Tensor& t);  // any device and dtype -> float32 on the host
// Copies a stored tensor into `dst` (shape checked, values must be finite); errors name the file
// and the parameter.
void copy_stored(const StoredTensor& src, torch::Tensor dst, const std::string& path,
                 const std::string& what);

// The weights part of a model or checkpoint file.
WeightsFile model_to_file(const Model& model);

// Rebuilds a model from a read file (architecture attributes, parameters, buffers, metadata).
Model model_from_file(const WeightsFile& file, const std::string& path, const Device& dev);

// LibTorch's intra-op thread count follows aet's --threads (Debian's LibTorch starts with one).
void use_aet_threads();

}  // namespace detail

struct Model::Impl {
  UNetConfig config;
  detail::UNet net{nullptr};
  Device device;
  torch::Device torch_device{torch::kCPU};
  std::map<std::string, std::string> metadata;
};

}  // namespace aet::nn
