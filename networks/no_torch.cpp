// A build without LibTorch (AET_WITH_TORCH=OFF): every function that would run, load, save or
// train a network refuses with an InputError that says so; torch_available() is false, so the
// network stage is inactive and says why.
#include "aet/core/error.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/train.hpp"

namespace aet::nn {

namespace {

[[noreturn]] void refuse(const char* what) {
  require_torch(what);
  throw InternalError("require_torch passed in a build without LibTorch");
}

}  // namespace

struct Model::Impl {};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
const UNetConfig& Model::config() const {
  refuse("network model");
}
std::map<std::string, std::string>& Model::metadata() {
  refuse("network model");
}
const std::map<std::string, std::string>& Model::metadata() const {
  refuse("network model");
}
Device Model::device() const {
  refuse("network model");
}
std::int64_t Model::parameter_count() const {
  refuse("network model");
}

Model create_model(const UNetConfig&, std::uint64_t, const Device&) {
  refuse("creating a network");
}
Model load_model(const std::string& path, const Device&) {
  refuse(path.c_str());
}
void save_model(const Model&, const std::string& path) {
  refuse(path.c_str());
}
Array3 augment(const Model&, const Array3&, const AugmentOptions&) {
  refuse("network inference");
}
TrainReport train(Model&, const TrainOptions&) {
  refuse("network training");
}
bool torch_available() {
  return false;
}
bool torch_cuda_available() {
  return false;
}

}  // namespace aet::nn
