// The 3D U-Net (after Lee, Jeong & Yang, Nat. Commun. 12, 1962, 2021), model creation and the
// mapping between the module state and the HDF5 weights file.
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <system_error>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "torch_detail.hpp"

namespace aet::nn {

namespace {

constexpr int kFormatVersion = 1;
const char* const kFormatName = "aet-unet";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

torch::Tensor activate(const torch::Tensor& x, double slope) {
  return slope > 0 ? torch::leaky_relu(x, slope) : torch::relu(x);
}

void init_conv(torch::Tensor& weight, torch::Tensor& bias, double slope) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, slope, torch::kFanIn, torch::kLeakyReLU);
  if (bias.defined()) bias.zero_();
}

}  // namespace

namespace detail {

ConvBlockImpl::ConvBlockImpl(std::int64_t in, std::int64_t out, const UNetConfig& config)
    : slope(config.leaky_slope) {
  // A bias before BatchNorm is redundant (BatchNorm subtracts the mean).
  const bool bias = !config.batch_norm;
  conv1 = register_module(
      "conv1", torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, 3).padding(1).bias(bias)));
  conv2 = register_module(
      "conv2", torch::nn::Conv3d(torch::nn::Conv3dOptions(out, out, 3).padding(1).bias(bias)));
  if (config.batch_norm) {
    bn1 = register_module("bn1", torch::nn::BatchNorm3d(out));
    bn2 = register_module("bn2", torch::nn::BatchNorm3d(out));
  }
  init_conv(conv1->weight, conv1->bias, slope);
  init_conv(conv2->weight, conv2->bias, slope);
}

torch::Tensor ConvBlockImpl::forward(torch::Tensor x) {
  x = conv1->forward(x);
  if (bn1) x = bn1->forward(x);
  x = activate(x, slope);
  x = conv2->forward(x);
  if (bn2) x = bn2->forward(x);
  return activate(x, slope);
}

UNetImpl::UNetImpl(const UNetConfig& c) : config(c) {
  const int levels = c.levels;
  auto channels = [&](int l) { return static_cast<std::int64_t>(c.base_channels) << l; };
  for (int l = 0; l < levels; ++l)
    enc.push_back(register_module("enc" + std::to_string(l),
                                  ConvBlock(l == 0 ? 1 : channels(l - 1), channels(l), c)));
  for (int l = 0; l + 1 < levels; ++l) {
    auto t = register_module(
        "up" + std::to_string(l),
        torch::nn::ConvTranspose3d(
            torch::nn::ConvTranspose3dOptions(channels(l + 1), channels(l), 2).stride(2)));
    init_conv(t->weight, t->bias, c.leaky_slope);
    up.push_back(t);
    dec.push_back(
        register_module("dec" + std::to_string(l), ConvBlock(2 * channels(l), channels(l), c)));
  }
  head = register_module("head", torch::nn::Conv3d(torch::nn::Conv3dOptions(channels(0), 1, 1)));
  init_conv(head->weight, head->bias, c.leaky_slope);
  if (c.residual) {
    // A zero head starts the residual network as the identity: training begins from the input.
    torch::NoGradGuard no_grad;
    head->weight.zero_();
  }
}

torch::Tensor UNetImpl::forward(torch::Tensor x) {
  const torch::Tensor input = x;
  std::vector<torch::Tensor> skips;
  const int levels = config.levels;
  for (int l = 0; l < levels; ++l) {
    x = enc[static_cast<std::size_t>(l)]->forward(x);
    if (l + 1 < levels) {
      skips.push_back(x);
      x = torch::max_pool3d(x, {2, 2, 2});
    }
  }
  for (int l = levels - 2; l >= 0; --l) {
    const auto i = static_cast<std::size_t>(l);
    x = up[i]->forward(x);
    x = torch::cat({skips[i], x}, 1);
    x = dec[i]->forward(x);
  }
  x = head->forward(x);
  return config.residual ? x + input : x;
}

torch::Device to_torch(const Device& dev) {
  if (dev.kind == DeviceKind::cpu) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    fail_input("device " + dev.str() +
               " requested for the network, but LibTorch sees no CUDA device (a CPU-only "
               "LibTorch, or no GPU visible); use --device cpu");
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (dev.index < 0 || dev.index >= count)
    fail_input("device " + dev.str() + " requested for the network, but LibTorch sees " +
               std::to_string(count) + " CUDA device(s)");
  // Full float precision in cuDNN's convolutions and in matrix products: with TF32 (LibTorch's
  // default for convolutions on Ampere and later) a model's output on the GPU would differ from
  // the CPU's by ~1e-3, and the traced atoms would depend on the device. The U-Net's few channels
  // keep its convolutions memory-bound, so TF32 would gain little speed.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(dev.index));
}

std::vector<std::pair<std::string, torch::Tensor>> named_parameters(const UNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : net->named_parameters()) out.emplace_back(kv.key(), kv.value());
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> named_buffers(const UNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : net->named_buffers()) out.emplace_back(kv.key(), kv.value());
  return out;
}

std::string dataset_name(const std::string& group, const std::string& torch_name) {
  std::string s = torch_name;
  for (char& ch : s)
    if (ch == '.') ch = '/';
  return group + "/" + s;
}

StoredTensor to_stored(const torch::Tensor& t) {
  const torch::Tensor h = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  StoredTensor s;
  for (std::int64_t d : h.sizes()) s.shape.push_back(d);
  const float* p = h.data_ptr<float>();
  s.values.assign(p, p + h.numel());
  return s;
}

void copy_stored(const StoredTensor& src, torch::Tensor dst, const std::string& path,
                 const std::string& what) {
  const std::vector<std::int64_t> want(dst.sizes().begin(), dst.sizes().end());
  if (src.shape != want)
    fail_file(path, what + " has shape " + shape_text(src.shape) + " but the architecture needs " +
                        shape_text(want));
  for (float v : src.values)
    if (!std::isfinite(v)) fail_file(path, what + " holds non-finite values (corrupt file?)");
  torch::NoGradGuard no_grad;
  const torch::Tensor host =
      torch::from_blob(const_cast<float*>(src.values.data()), src.shape, torch::kFloat);
  dst.copy_(host);  // converts to the buffer's dtype and device
}

WeightsFile model_to_file(const Model& model) {
  const Model::Impl& im = ModelAccess::impl(model);
  WeightsFile f;
  f.strings["format"] = kFormatName;
  f.strings["aet_version"] = AET_VERSION;
  f.strings["torch_version"] = TORCH_VERSION;
  f.strings["created"] = utc_timestamp();
  f.numbers["format_version"] = kFormatVersion;
  f.numbers["base_channels"] = im.config.base_channels;
  f.numbers["levels"] = im.config.levels;
  f.numbers["residual"] = im.config.residual ? 1 : 0;
  f.numbers["batch_norm"] = im.config.batch_norm ? 1 : 0;
  f.numbers["leaky_slope"] = im.config.leaky_slope;
  f.metadata = im.metadata;
  for (const auto& kv : named_parameters(im.net))
    f.tensors[dataset_name("parameters", kv.first)] = to_stored(kv.second);
  for (const auto& kv : named_buffers(im.net))
    f.tensors[dataset_name("buffers", kv.first)] = to_stored(kv.second);
  return f;
}

Model model_from_file(const WeightsFile& f, const std::string& path, const Device& dev) {
  const auto fmt = f.strings.find("format");
  if (fmt == f.strings.end() || fmt->second != kFormatName)
    fail_file(path, std::string("not an aet U-Net model file (root attribute format != '") +
                        kFormatName + "')");
  auto number = [&](const char* name) {
    const auto it = f.numbers.find(name);
    if (it == f.numbers.end()) fail_file(path, std::string("missing attribute '") + name + "'");
    return it->second;
  };
  const double version = number("format_version");
  if (version != kFormatVersion)
    fail_file(path, "unsupported model format version " + number_text(version) +
                        " (this build reads version " + std::to_string(kFormatVersion) + ")");
  UNetConfig c;
  c.base_channels = static_cast<int>(number("base_channels"));
  c.levels = static_cast<int>(number("levels"));
  c.residual = number("residual") != 0;
  c.batch_norm = number("batch_norm") != 0;
  c.leaky_slope = number("leaky_slope");
  try {
    check_config(c);
  } catch (const InputError& e) {
    fail_file(path, std::string("invalid architecture: ") + e.what());
  }
  Model model = create_model(c, 0, dev);
  Model::Impl& im = ModelAccess::impl(model);
  std::set<std::string> expected;
  auto load = [&](const char* group, const std::vector<std::pair<std::string, torch::Tensor>>& ts,
                  const char* kind) {
    for (const auto& kv : ts) {
      const std::string name = dataset_name(group, kv.first);
      expected.insert(name);
      const auto it = f.tensors.find(name);
      if (it == f.tensors.end())
        fail_file(path,
                  std::string("missing ") + kind + " '" + kv.first + "' (dataset /" + name + ")");
      copy_stored(it->second, kv.second, path, std::string(kind) + " '" + kv.first + "'");
    }
  };
  load("parameters", named_parameters(im.net), "parameter");
  load("buffers", named_buffers(im.net), "buffer");
  // Extra weights mean a different network than the attributes describe.
  for (const auto& kv : f.tensors) {
    const bool ours = kv.first.rfind("parameters/", 0) == 0 || kv.first.rfind("buffers/", 0) == 0;
    if (ours && !expected.count(kv.first))
      fail_file(path, "unexpected dataset /" + kv.first + " for this architecture");
  }
  im.metadata = f.metadata;
  return model;
}

void use_aet_threads() {
  const int n = num_threads();
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace detail

// ---- Model ----------------------------------------------------------------------------------

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
const UNetConfig& Model::config() const {
  return impl_->config;
}
std::map<std::string, std::string>& Model::metadata() {
  return impl_->metadata;
}
const std::map<std::string, std::string>& Model::metadata() const {
  return impl_->metadata;
}
Device Model::device() const {
  return impl_->device;
}
std::int64_t Model::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& p : impl_->net->parameters()) n += p.numel();
  return n;
}

Model create_model(const UNetConfig& config, std::uint64_t seed, const Device& dev) {
  check_config(config);
  const torch::Device td = detail::to_torch(dev);
  auto impl = std::make_unique<Model::Impl>();
  impl->config = config;
  impl->device = dev;
  impl->torch_device = td;
  // Initialised on the host from the seeded CPU generator, then moved: the same weights on
  // every device.
  torch::manual_seed(seed);
  impl->net = detail::UNet(config);
  impl->net->to(td);
  impl->net->eval();
  return Model(std::move(impl));
}

Model load_model(const std::string& path, const Device& dev) {
  return detail::model_from_file(detail::read_weights_file(path), path, dev);
}

void save_model(const Model& model, const std::string& path) {
  detail::write_weights_file(path, detail::model_to_file(model));
}

bool torch_available() {
  return true;
}

bool torch_cuda_available() {
  return torch::cuda::is_available();
}


}  // namespace aet::nn
