#include "aet/core/atoms.hpp"

#include "aet/core/error.hpp"

namespace aet {

std::vector<double>& AtomModel::property(const std::string& name, double fill) {
  for (auto& p : properties)
    if (p.first == name) return p.second;
  properties.emplace_back(name, std::vector<double>(size(), fill));
  return properties.back().second;
}

const std::vector<double>* AtomModel::find_property(const std::string& name) const {
  for (const auto& p : properties)
    if (p.first == name) return &p.second;
  return nullptr;
}

void AtomModel::set_info(const std::string& key, const std::string& value) {
  for (auto& kv : info)
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  info.emplace_back(key, value);
}

const std::string* AtomModel::find_info(const std::string& key) const {
  for (const auto& kv : info)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void AtomModel::add(const std::string& symbol, const Vec3& pos) {
  species.push_back(symbol);
  positions.push_back(pos);
  for (auto& p : properties) p.second.push_back(0.0);
}

void AtomModel::filter(const std::vector<bool>& keep) {
  if (keep.size() != size()) throw InternalError("AtomModel::filter: mask size mismatch");
  std::size_t j = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (!keep[i]) continue;
    species[j] = species[i];
    positions[j] = positions[i];
    for (auto& p : properties) p.second[j] = p.second[i];
    ++j;
  }
  species.resize(j);
  positions.resize(j);
  for (auto& p : properties) p.second.resize(j);
}

}  // namespace aet
