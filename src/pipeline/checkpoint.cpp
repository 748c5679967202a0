// The pipeline's checkpoints (checkpoint.hpp). Keys are SHA-256 digests (the model files'
// checksum function): the views' values enter them exactly.
#include "checkpoint.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "sha256.hpp"

namespace aet::detail {
namespace {

namespace fs = std::filesystem;

}  // namespace

Checkpoint::Checkpoint(const std::string& dir, const Array3& views,
                       const std::vector<Euler>& nominal, const TiltGeometry& geometry,
                       const std::string& settings)
    : dir_(dir) {
  if (dir_.empty()) return;
  ensure_directory(dir_);
  // What the key covers, as text: version, dimensions and pixel size, the views' digest, every
  // angle and geometry number to the last bit, the settings.
  std::string text = std::string("aet ") + AET_VERSION + "\n";
  char buf[64];
  const auto number = [&](double v) {
    std::snprintf(buf, sizeof buf, "%a ", v);
    text += buf;
  };
  text += std::to_string(views.nx()) + " " + std::to_string(views.ny()) + " " +
          std::to_string(views.nz()) + " ";
  number(views.voxel_size.x);
  text += nn::detail::sha256_hex(views.data(), views.size() * sizeof(float)) + "\n";
  for (const Euler& e : nominal)
    for (double v : {e.phi, e.theta, e.psi}) number(v);
  text += "\n";
  for (const ViewGeometry& g : geometry) {
    for (int i = 0; i < 9; ++i) number(g.R.data()[i]);
    number(g.shift.x());
    number(g.shift.y());
  }
  key_ = nn::detail::sha256_hex(text.data(), text.size());
  key_ = nn::detail::sha256_hex((key_ + "\n" + settings).data(), key_.size() + 1 + settings.size());
}

bool Checkpoint::begin(const std::string& stage) {
  if (!enabled()) return false;
  const std::string chained = key_ + "\n" + stage;
  key_ = nn::detail::sha256_hex(chained.data(), chained.size());
  stage_ = stage;
  std::string stored = read_text_file(file("key"));
  while (!stored.empty() && stored.back() == '\n') stored.pop_back();
  if (stored == key_) return true;
  // Another run's result: its key goes before any file is replaced, so that files half replaced
  // by a run killed while saving can never pass for that run's.
  std::error_code ec;
  fs::remove(file("key"), ec);
  return false;
}

std::string Checkpoint::file(const std::string& name) const {
  return dir_ + "/" + stage_ + "." + name;
}

void Checkpoint::save_array(const std::string& name, const Array3& a, MrcKind kind) const {
  write_mrc(file(name + ".mrc"), a, kind, {"aet pipeline checkpoint " + key_});
  // The MRC header keeps the voxel size in single precision: exactly, beside it.
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.17g %.17g %.17g\n", a.voxel_size.x, a.voxel_size.y,
                a.voxel_size.z);
  write_text_file(file(name + ".voxel"), buf);
}

Array3 Checkpoint::load_array(const std::string& name) const {
  Array3 a = read_mrc(file(name + ".mrc"));
  std::istringstream in(read_text_file(file(name + ".voxel")));
  VoxelSize v;
  if (!(in >> v.x >> v.y >> v.z))
    fail_file(file(name + ".voxel"), "a damaged checkpoint (remove the checkpoint folder)");
  a.voxel_size = v;
  return a;
}

void Checkpoint::save_geometry(const std::string& name, const TiltGeometry& g) const {
  std::string text;
  char buf[64];
  for (const ViewGeometry& v : g) {
    for (int i = 0; i < 9; ++i) {
      std::snprintf(buf, sizeof buf, "%.17g ", v.R.data()[i]);
      text += buf;
    }
    std::snprintf(buf, sizeof buf, "%.17g %.17g\n", v.shift.x(), v.shift.y());
    text += buf;
  }
  write_text_file(file(name + ".txt"), text);
}

TiltGeometry Checkpoint::load_geometry(const std::string& name) const {
  const std::string path = file(name + ".txt");
  std::istringstream in(read_text_file(path));
  TiltGeometry g;
  ViewGeometry v;
  while (in >> v.R.data()[0]) {
    for (int i = 1; i < 9; ++i) in >> v.R.data()[i];
    in >> v.shift.x() >> v.shift.y();
    if (!in) fail_file(path, "a damaged checkpoint (remove the checkpoint folder)");
    g.push_back(v);
  }
  return g;
}

void Checkpoint::save_json(const std::string& name, const Json& j) const {
  write_text_file(file(name + ".json"), j.dump() + "\n");  // dump(): every double exactly
}

Json Checkpoint::load_json(const std::string& name) const {
  const std::string path = file(name + ".json");
  try {
    return Json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail_file(path,
              std::string("a damaged checkpoint (remove the checkpoint folder): ") + e.what());
  }
}

void Checkpoint::save_numbers(const std::string& name, const std::vector<double>& v) const {
  save_json(name, Json(v));
}

std::vector<double> Checkpoint::load_numbers(const std::string& name) const {
  return load_json(name).get<std::vector<double>>();
}

void Checkpoint::begin_progress() const {
  if (!enabled()) return;
  std::error_code ec;
  fs::remove(file("progress_key"), ec);
}

void Checkpoint::end_progress() const {
  if (enabled()) write_text_file(file("progress_key"), key_ + "\n");
}

bool Checkpoint::has_progress() const {
  if (!enabled()) return false;
  std::string stored = read_text_file(file("progress_key"));
  while (!stored.empty() && stored.back() == '\n') stored.pop_back();
  return stored == key_;
}

void Checkpoint::done() const {
  if (enabled()) write_text_file(file("key"), key_ + "\n");
}

}  // namespace aet::detail
