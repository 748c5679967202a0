// Nanoparticle builders: crystalline particles of a given lattice cut to a shape, with vacancies,
// thermal jitter and a random (or given) orientation. Deterministic for a given seed.
#pragma once

#include <Eigen/Geometry>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aet/core/atoms.hpp"

namespace aet::phantoms {

enum class Shape {
  sphere,                // all sites within `size` of the centre
  octahedron,            // {111} facets at distance `size`
  truncated_octahedron,  // {111} at `size`, {100} at (2/sqrt(3)) * size (Archimedean, equal edges)
  cuboctahedron,         // fcc closed shells (`shells`: 13, 55, 147, 309, ... atoms); ignores size
  cube,                  // {100} facets at distance `size`
  wulff,                 // intersection of facet families at the given distances
  random,                // union of random spheres (centres within 0.35 size, radii 0.4-0.8 size)
  amorphous,             // random dense packing in a sphere of radius `size` (no lattice)
  // Five tetrahedral fcc grains around a common five-fold [110] axis along z, each pair sharing
  // a {111} twin plane: the pentagonal bipyramid with `shells` nearest-neighbour spacings along
  // every edge (fcc only; ignores size). Five regular tetrahedra leave a 7.35 degree gap; here
  // the pentagon is closed, so each grain carries the classic 1.8 % tangential stretch.
  decahedron
};

// A facet family {hkl}: every symmetry-equivalent plane (all sign changes and permutations) at
// `distance` Angstrom from the centre. Normals are Cartesian directions in the cubic axes (for hcp
// and L1_0, c is along z).
struct FacetFamily {
  int h = 1, k = 1, l = 1;
  double distance = 10.0;
};

struct ParticleSpec {
  std::string element = "Pt";  // one element, or "FePt"-style for the L1_0 ordered alloy
  std::string structure;       // "" = the element's own; fcc, bcc, hcp or l10 to override
  double a = 0.0, c = 0.0;     // lattice constants in Angstrom; 0 = tabulated value
  Shape shape = Shape::sphere;
  double size = 10.0;  // Angstrom: radius (sphere), facet distance (polyhedra);
                       // unused by wulff and cuboctahedron
  int shells = 0;  // cuboctahedron shells (1 -> 13 atoms, 2 -> 55, ...); decahedron edge spacings
  std::vector<FacetFamily> facets;  // for Shape::wulff
  int random_spheres = 6;           // for Shape::random
  // For Shape::amorphous: the number density (atoms per A^3; 0 = 0.97 of the element's crystal),
  // the minimum distance between atoms (A; 0 = 0.85 of the crystal's nearest-neighbour distance)
  // and the atom count (0 = density times the sphere's volume; otherwise the radius follows from
  // it and `size` is unused). One element only.
  double density = 0.0;
  double min_distance = 0.0;
  std::int64_t atoms = 0;
  double vacancy_fraction = 0.0;  // fraction of sites removed at random
  double jitter_sd = 0.0;         // Angstrom, Gaussian per axis (thermal displacement)
  double b_factor = 0.0;          // Angstrom^2 written per atom; 0 = from jitter (8 pi^2 sd^2)
  // A twinned particle (fcc only): the half on the (-1 -1 -1) side of the (111) lattice plane
  // through the centre is kept and mirrored onto the other side, two grains 60 degrees apart
  // that share the plane's atoms (a Sigma 3 twin boundary). Applied to the cut shape, before
  // vacancies, strain, rotation and jitter.
  bool twin = false;
  bool random_orientation = false;
  // A given rotation about the centre instead (applied where the random one would be); ignored
  // when random_orientation is set.
  std::optional<Eigen::Quaterniond> orientation;
  // A known displacement field, applied to every site after the vacancies and before the
  // rotation (lattice frame, about the centre): the uniform displacement gradient `strain`
  // (p -> (I + strain) p; symmetric for a pure strain) and the radial field
  // u(p) = radial_strain (|p| / radial_radius)^2 p, whose strain is
  // radial_strain / radial_radius^2 (|p|^2 I + 2 p p^T): zero at the centre, radial_strain
  // tangentially and 3 radial_strain radially at radial_radius (a strained shell on a core).
  Eigen::Matrix3d strain = Eigen::Matrix3d::Zero();
  double radial_strain = 0.0;
  double radial_radius = 10.0;  // Angstrom
  std::uint64_t seed = 0;
};

// Builds the particle centred on the origin. Spheres and polyhedra are cut around a lattice site
// (fcc, bcc, hcp; closed shells are centred on an atom) or, for L1_0, around a tetrahedral
// interstice so that symmetric cuts hold both species equally; random shapes are moved so the
// centroid of their ideal sites is at the origin. Then, in this order: vacancies, the random
// displacement field (strain, radial_strain), the rotation about the origin, the jitter; each
// random step draws from its own stream of `seed`.
// Sites on a facet plane (within 1e-6 a) belong to the particle.
// An amorphous particle has no sites: its atoms start uniform at random in the sphere and are
// pushed apart until no two are closer than the minimum distance (vacancies, strain, rotation and
// jitter then apply as to a crystal; the centroid is moved to the origin).
// Per-atom properties: "b_factor". Info: element, structure, shape, size (or shells), lattice_a,
// lattice_c (hcp, L1_0), vacancy_fraction, jitter_sd, b_factor, seed, and more where they apply
// (strain, radial_strain and radial_radius when set); an amorphous particle has structure
// "amorphous", size its radius, density and min_distance instead of lattice constants.
// Throws InputError for an unknown element, a lattice that is not tabulated, a bad size, shell
// count, facet list, vacancy fraction, jitter or B-factor, a shape holding no site, or an amorphous
// packing too dense for its minimum distance.
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
