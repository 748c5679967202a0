// The pipeline's checkpoints (checkpoint.hpp). Keys are FNV-1a 64-bit hashes: they tell results
// of different inputs or settings apart (no adversary), and the views' values enter them exactly.
#include "checkpoint.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"

namespace aet::detail {
namespace {

namespace fs = std::filesystem;

class Fnv {
 public:
  void add(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h_ ^= p[i];
      h_ *= 1099511628211ull;
    }
  }
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\0", 1);
  }
  void add(double v) { add(&v, sizeof v); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  std::uint64_t h_ = 14695981039346656037ull;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

Checkpoint::Checkpoint(const std::string& dir, const Array3& views,
                       const std::vector<Euler>& nominal, const TiltGeometry& geometry,
                       const std::string& settings)
    : dir_(dir) {
  if (dir_.empty()) return;
  ensure_directory(dir_);
  Fnv f;
  f.add(std::string("aet ") + AET_VERSION);
  for (std::int64_t n : {views.nx(), views.ny(), views.nz()}) f.add(&n, sizeof n);
  f.add(views.voxel_size.x);
  f.add(views.data(), views.size() * sizeof(float));
  for (const Euler& e : nominal) {
    f.add(e.phi);
    f.add(e.theta);
    f.add(e.psi);
  }
  for (const ViewGeometry& g : geometry) {
    f.add(g.R.data(), 9 * sizeof(double));
    f.add(g.shift.data(), 2 * sizeof(double));
  }
  f.add(settings);
  key_ = f.hex();
}

bool Checkpoint::begin(const std::string& stage) {
  if (!enabled()) return false;
  Fnv f;
  f.add(key_);
  f.add(stage);
  key_ = f.hex();
  stage_ = stage;
  std::string stored = read_text(file("key"));
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
  std::istringstream in(read_text(file(name + ".voxel")));
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
  std::istringstream in(read_text(path));
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
    return Json::parse(read_text(path));
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

void Checkpoint::done() const {
  if (enabled()) write_text_file(file("key"), key_ + "\n");
}

}  // namespace aet::detail
