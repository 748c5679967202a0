// An atomic model: species, positions in Angstrom and named per-atom properties.
// Positions are centred on the rotation centre of the volume they belong to (docs/design.md).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "aet/geometry/rotation.hpp"

namespace aet {

struct AtomModel {
  std::vector<std::string> species;  // element symbols, one per atom
  std::vector<Vec3> positions;       // Angstrom
  // Extra per-atom real columns in insertion order (e.g. "b_factor", "intensity").
  std::vector<std::pair<std::string, std::vector<double>>> properties;
  // Free key=value metadata (extended XYZ comment line, provenance).
  std::vector<std::pair<std::string, std::string>> info;

  std::size_t size() const { return positions.size(); }

  // Returns the column, creating it (filled with `fill`) when absent.
  std::vector<double>& property(const std::string& name, double fill = 0.0);
  const std::vector<double>* find_property(const std::string& name) const;
  void set_info(const std::string& key, const std::string& value);
  const std::string* find_info(const std::string& key) const;

  void add(const std::string& symbol, const Vec3& pos);
  // Keeps atoms where keep[i] is true, properties included.
  void filter(const std::vector<bool>& keep);
};

}  // namespace aet
