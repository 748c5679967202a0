// The class decision shared by trace_atoms and classify_atoms (1D k-means on per-atom
// intensities, docs/tracing.md), and trace_atoms' local re-classification. Internal to aet_trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/geometry/rotation.hpp"

namespace aet::detail {

// Assigns classes: 0 = not an atom, 1 .. n_species = species (lightest first). Returns a
// description of what was decided, for the model's info (trace_classes).
std::string classify(const std::vector<double>& intensity, std::size_t n_species,
                     std::uint64_t seed, std::vector<int>& cls);

// Local re-classification (Miao group): each atom (class > 0) takes the species whose mean
// intensity among the atoms within `radius` of `pos` is closest to its own, until stable.
// Returns the number of changes.
int local_reclassify(const std::vector<Vec3>& pos, const std::vector<double>& intensity,
                     std::size_t n_species, double radius, std::vector<int>& cls);

}  // namespace aet::detail
