// The named phantoms of `aet simulate --phantom NAME`: particle specs that build_particle
// (nanoparticle.cpp) turns into atoms.
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/phantoms/nanoparticle.hpp"

namespace aet::phantoms {
namespace {

NamedPhantom phantom(const std::string& name, const std::string& description,
                     const std::string& element, Shape shape, double size) {
  NamedPhantom p;
  p.name = name;
  p.description = description;
  p.spec.element = element;
  p.spec.shape = shape;
  p.spec.size = size;
  p.spec.seed = 1;
  return p;
}

std::vector<NamedPhantom> make_catalogue() {
  // Sizes are placed between lattice-plane thresholds, so the atom counts in the descriptions do
  // not depend on the facet tolerance. All but the last are small enough to simulate in about a
  // second; the last is a particle of the field's size (docs/benchmarks.md, "Scale").
  std::vector<NamedPhantom> c;
  {
    // Textbook orientation (no random rotation), so views along x, y, z show lattice columns.
    auto p = phantom("demo",
                     "Pt truncated octahedron, {111} and {100} facets, 807 atoms (~3 nm), "
                     "0.05 A thermal jitter",
                     "Pt", Shape::truncated_octahedron, 12.5);
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  {
    auto p = phantom("pt-cuboctahedron-309", "Pt cuboctahedron, 4 closed shells, 309 atoms", "Pt",
                     Shape::cuboctahedron, 0.0);
    p.spec.shells = 4;
    c.push_back(p);
  }
  {
    // Twins are the commonest defect of fcc nanoparticles; the analysis finds both grains.
    auto p = phantom("pt-twinned",
                     "the demo particle twinned on the (111) plane through its centre: two fcc "
                     "grains 60 degrees apart, 807 atoms, 0.05 A jitter",
                     "Pt", Shape::truncated_octahedron, 12.5);
    p.spec.twin = true;
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  {
    // Five-fold twinned particles are common among Au, Pd and Pt nanoparticles; five grains and
    // five twin planes, the five-fold axis along the beam at 0 degrees (z).
    auto p = phantom("au-decahedron",
                     "Au decahedron: five fcc grains around a five-fold axis along z, 9 atoms per "
                     "edge, 609 atoms, 0.05 A jitter",
                     "Au", Shape::decahedron, 0.0);
    p.spec.shells = 8;
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  c.push_back(
      phantom("pt-sphere", "Pt fcc sphere, radius 12.9 A, 603 atoms", "Pt", Shape::sphere, 12.9));
  {
    auto p = phantom("pt-vacancies",
                     "the demo particle with 5% of its sites vacant, 767 atoms, 0.05 A jitter",
                     "Pt", Shape::truncated_octahedron, 12.5);
    p.spec.vacancy_fraction = 0.05;
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  {
    auto p = phantom("pt-random",
                     "Pt union of 6 random spheres (size 14 A), 2% vacancies, 0.08 A jitter, "
                     "random orientation, about 500 atoms",
                     "Pt", Shape::random, 14.0);
    p.spec.random_spheres = 6;
    p.spec.vacancy_fraction = 0.02;
    p.spec.jitter_sd = 0.08;
    p.spec.random_orientation = true;
    c.push_back(p);
  }
  {
    // The strain floors (docs/analysis.md): a known uniform strain and a known radial field.
    auto p = phantom("pt-strained",
                     "the demo particle under a uniform strain: 1% along x, 0.5% xy shear "
                     "(tensor), 807 atoms, 0.05 A jitter",
                     "Pt", Shape::truncated_octahedron, 12.5);
    p.spec.strain(0, 0) = 0.01;
    p.spec.strain(0, 1) = p.spec.strain(1, 0) = 0.005;
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  {
    auto p = phantom("pt-radial-strain",
                     "the demo particle with a radial displacement u = 0.005 (r / 12.5 A)^2 r "
                     "(strain 0 at the centre, 0.5% tangential and 1.5% radial at 12.5 A), "
                     "807 atoms, 0.05 A jitter",
                     "Pt", Shape::truncated_octahedron, 12.5);
    p.spec.radial_strain = 0.005;
    p.spec.radial_radius = 12.5;
    p.spec.jitter_sd = 0.05;
    c.push_back(p);
  }
  c.push_back(phantom("pt-large", "Pt truncated octahedron, 1925 atoms (~4 nm)", "Pt",
                      Shape::truncated_octahedron, 16.0));
  c.push_back(phantom("au-octahedron", "Au regular octahedron, 9 atoms per edge, 489 atoms", "Au",
                      Shape::octahedron, 9.5));
  c.push_back(
      phantom("au-sphere", "Au fcc sphere, radius 14 A, 675 atoms", "Au", Shape::sphere, 14.0));
  c.push_back(phantom("pd-cube", "Pd cube of 6 x 6 x 6 fcc cells, {100} facets, 1099 atoms", "Pd",
                      Shape::cube, 11.7));
  {
    auto p = phantom("ag-wulff", "Ag Wulff shape with {111}, {100} and {110} facets, 675 atoms",
                     "Ag", Shape::wulff, 0.0);
    p.spec.facets = {{1, 1, 1, 12.2}, {1, 0, 0, 13.4}, {1, 1, 0, 14.0}};
    c.push_back(p);
  }
  c.push_back(
      phantom("fe-bcc-sphere", "Fe bcc sphere, radius 12 A, 609 atoms", "Fe", Shape::sphere, 12.0));
  {
    auto p = phantom("w-bcc-rhombic", "W bcc rhombic dodecahedron ({110} facets), 671 atoms", "W",
                     Shape::wulff, 0.0);
    p.spec.facets = {{1, 1, 0, 12.0}};
    c.push_back(p);
  }
  c.push_back(phantom("co-hcp-sphere", "Co hcp sphere (c along z), radius 12.4 A, 727 atoms", "Co",
                      Shape::sphere, 12.4));
  c.push_back(phantom("fept-l10",
                      "FePt L1_0 ordered alloy sphere (c along z), diameter 2.5 nm, 620 atoms "
                      "(310 Fe + 310 Pt)",
                      "FePt", Shape::sphere, 12.65));
  {
    // The density and minimum distance are the defaults from bcc Ta (0.97 of its density, 0.85 of
    // its nearest-neighbour distance), written out so that the entry does not move with them.
    auto p = phantom("ta-amorphous-2k",
                     "amorphous Ta, random dense packing in a sphere (radius 20.7 A, 0.0539 "
                     "atoms/A^3, no two closer than 2.43 A), 2000 atoms",
                     "Ta", Shape::amorphous, 0.0);
    p.spec.atoms = 2000;
    p.spec.density = 0.0539;
    p.spec.min_distance = 2.43;
    c.push_back(p);
  }
  {
    auto p = phantom("ta-amorphous-20k",
                     "amorphous Ta as ta-amorphous-2k at the field's scale: radius 44.6 A, 20000 "
                     "atoms, views of 290 x 290 pixels",
                     "Ta", Shape::amorphous, 0.0);
    p.spec.atoms = 20000;
    p.spec.density = 0.0539;
    p.spec.min_distance = 2.43;
    c.push_back(p);
  }
  return c;
}

}  // namespace

const std::vector<NamedPhantom>& phantom_catalogue() {
  static const std::vector<NamedPhantom> catalogue = make_catalogue();
  return catalogue;
}

const NamedPhantom& find_phantom(const std::string& name) {
  for (const auto& p : phantom_catalogue())
    if (p.name == name) return p;
  std::string names;
  for (const auto& p : phantom_catalogue()) names += (names.empty() ? "" : ", ") + p.name;
  fail_input("unknown phantom '" + name + "' (available: " + names + ")");
}

}  // namespace aet::phantoms
