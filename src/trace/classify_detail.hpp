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

// Whether the peaks classified as non-atoms (class 0) hide a species missing from `elements`: a
// population as tight in log intensity as one species' atoms (sd <= kUnlistedTight; noise peaks
// spread over a factor of several) and as numerous as a tenth of the atoms, either all of them or
// the upper component of a two-Gaussian mixture in log intensity, apart from the lower (noise)
// component by 3 of its own spreads and one of the noise's. Returns the warning
// naming its share of the lightest listed species' intensity and the atomic number that share
// suggests at Z^1.7 contrast, or "" when there is none.
// With `positions`, most of the population (kUnlistedBonded) must also lie beside the atoms, a
// kept atom within 1.25 of their median nearest-neighbour distance: a poor reconstruction's
// streaks make tight populations of peaks too, but away from the atoms.
constexpr double kUnlistedTight = 0.25;
constexpr double kUnlistedBonded = 0.8;
std::string unlisted_species_warning(const std::vector<double>& intensity,
                                     const std::vector<int>& cls,
                                     const std::vector<std::string>& elements,
                                     const std::vector<Vec3>* positions = nullptr);

// Local re-classification (Miao group): each atom (class > 0) takes the species whose mean
// intensity among the atoms within `radius` of `pos` is closest to its own, until stable.
// Returns the number of changes.
int local_reclassify(const std::vector<Vec3>& pos, const std::vector<double>& intensity,
                     std::size_t n_species, double radius, std::vector<int>& cls);

}  // namespace aet::detail
