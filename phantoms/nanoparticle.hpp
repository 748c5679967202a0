// Nanoparticle builders: crystalline particles of a given lattice cut to a shape, with vacancies,
// thermal jitter and a random orientation. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/atoms.hpp"

namespace aet::phantoms {

enum class Shape {
  sphere,                // all sites within `size` of the centre
  octahedron,            // {111} facets at distance `size`
  truncated_octahedron,  // {111} at `size`, {100} at size * 0.75 * sqrt(3) ... see .cpp
  cuboctahedron,         // closed-shell cluster (`shells`: 13, 55, 147, 309, ... atoms)
  cube,                  // {100} facets at distance `size`
  wulff,                 // intersection of facet families at the given distances
  random                 // union of random spheres
};

// A facet family {hkl}: every symmetry-equivalent plane (all sign changes and permutations) at
// `distance` Angstrom from the centre.
struct FacetFamily {
  int h = 1, k = 1, l = 1;
  double distance = 10.0;
};

struct ParticleSpec {
  std::string element = "Pt";  // one element, or "FePt"-style for the L1_0 ordered alloy
  std::string structure;       // "" = the element's own; fcc, bcc, hcp or l10 to override
  double a = 0.0, c = 0.0;     // lattice constants in Angstrom; 0 = tabulated value
  Shape shape = Shape::sphere;
  double size = 10.0;          // Angstrom: radius (sphere) or facet distance (polyhedra)
  int shells = 0;              // cuboctahedron shells (1 -> 13 atoms, 2 -> 55, ...)
  std::vector<FacetFamily> facets;  // for Shape::wulff
  int random_spheres = 6;      // for Shape::random
  double vacancy_fraction = 0.0;    // fraction of sites removed at random
  double jitter_sd = 0.0;      // Angstrom, Gaussian per axis (thermal displacement)
  double b_factor = 0.0;       // Angstrom^2 written per atom; 0 = from jitter (8 pi^2 sd^2)
  bool random_orientation = false;
  std::uint64_t seed = 0;
};

// Builds the particle centred on the origin (centre of the bounding sphere of the ideal sites).
// Per-atom properties: "b_factor". Info: element, structure, shape, seed.
// Throws InputError for an unknown element, a lattice that is not tabulated, a bad size.
AtomModel build_particle(const ParticleSpec& spec);

const char* shape_name(Shape s);
Shape parse_shape(const std::string& name);  // throws InputError listing the valid names

struct NamedPhantom {
  std::string name, description;
  ParticleSpec spec;
};
// The built-in phantoms for `aet simulate --phantom NAME`; "demo" is fcc Pt with about 800 atoms.
const std::vector<NamedPhantom>& phantom_catalogue();
// Looks up a phantom by name; throws InputError listing the names when unknown.
const NamedPhantom& find_phantom(const std::string& name);

}  // namespace aet::phantoms
