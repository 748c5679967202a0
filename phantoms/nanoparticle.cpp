// Nanoparticle builders (include/aet/phantoms/nanoparticle.hpp): lattices, shapes, vacancies,
// orientation and jitter. The named phantoms built from them are in phantom_catalogue.cpp.
#include "aet/phantoms/nanoparticle.hpp"

#include <Eigen/Geometry>
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <numeric>
#include <set>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/rng.hpp"

namespace aet::phantoms {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Independent random streams, so that (say) changing the jitter leaves the vacancies unchanged.
enum Stream : std::uint64_t {
  kShapeStream = 1,
  kVacancyStream = 2,
  kRotationStream = 3,
  kJitterStream = 4
};

// Refuse particles whose candidate lattice box would hold more sites than this: a typo in
// `size` should give an error, not exhaust memory.
constexpr double kMaxCandidateSites = 5.0e7;

// --- Species and lattice -----------------------------------------------------------------------

enum class Structure { fcc, bcc, hcp, l10 };

const char* structure_name(Structure s) {
  switch (s) {
    case Structure::fcc:
      return "fcc";
    case Structure::bcc:
      return "bcc";
    case Structure::hcp:
      return "hcp";
    case Structure::l10:
      return "l10";
  }
  return "?";
}

struct L10Constants {
  const char* a_species;
  const char* b_species;
  double a, c;
};

// Room-temperature L1_0 lattice constants of the common ordered alloys (Angstrom).
const L10Constants kL10Table[] = {
    {"Fe", "Pt", 3.85, 3.71},
    {"Co", "Pt", 3.80, 3.70},
};

// Orthorhombic conventional cell with its motif: every lattice used here has one, which keeps
// site generation a plain triple loop.
struct LatticeCell {
  Structure structure;
  std::vector<std::string> species;  // one or two symbols
  double a = 0.0, c = 0.0;           // lattice constants as reported
  Vec3 cell;                         // edge lengths of the orthorhombic cell
  std::vector<Vec3> motif;           // fractional coordinates
  std::vector<int> motif_species;    // index into `species`
  Vec3 origin_shift = Vec3::Zero();  // subtracted from every site
};

// "FePt" -> {"Fe", "Pt"}; empty when the text is not two element symbols.
std::vector<std::string> split_alloy(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isupper(static_cast<unsigned char>(text[i]))) return {};
    std::size_t j = i + 1;
    while (j < text.size() && std::islower(static_cast<unsigned char>(text[j]))) ++j;
    parts.push_back(text.substr(i, j - i));
    i = j;
  }
  for (const auto& p : parts)
    if (!find_element(p)) return {};
  if (parts.size() != 2) return {};
  return parts;
}

Structure parse_structure(const std::string& name) {
  std::string s;
  for (char ch : name) s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "fcc") return Structure::fcc;
  if (s == "bcc") return Structure::bcc;
  if (s == "hcp") return Structure::hcp;
  if (s == "l10" || s == "l1_0" || s == "l1o") return Structure::l10;
  fail_input("unknown crystal structure '" + name + "' (valid: fcc, bcc, hcp, l10)");
}

void check_lattice_constant(const char* name, double v) {
  if (!std::isfinite(v) || v < 0.0)
    fail_input(std::string("lattice constant ") + name + " must be >= 0 (0 = tabulated), got " +
               fmt_g(v, 10));
}

LatticeCell make_lattice(const ParticleSpec& spec) {
  check_lattice_constant("a", spec.a);
  check_lattice_constant("c", spec.c);
  LatticeCell L;
  if (const Element* el = find_element(spec.element)) {
    L.species = {el->symbol};
    if (spec.structure.empty()) {
      switch (el->lattice) {
        case Lattice::fcc:
          L.structure = Structure::fcc;
          break;
        case Lattice::bcc:
          L.structure = Structure::bcc;
          break;
        case Lattice::hcp:
          L.structure = Structure::hcp;
          break;
        default:
          fail_input("element " + el->symbol +
                     " has no tabulated fcc, bcc or hcp lattice; give a structure and a lattice "
                     "constant a");
      }
    } else {
      L.structure = parse_structure(spec.structure);
      if (L.structure == Structure::l10)
        fail_input("structure l10 needs two species, e.g. element \"FePt\"; got \"" + spec.element +
                   "\"");
    }
    const bool own = lattice_name(el->lattice) == std::string(structure_name(L.structure));
    L.a = spec.a > 0.0 ? spec.a : (own ? el->a : 0.0);
    if (!(L.a > 0.0))
      fail_input("no tabulated " + std::string(structure_name(L.structure)) +
                 " lattice constant for " + el->symbol + "; give a (Angstrom)");
    if (L.structure == Structure::hcp) {
      // Tabulated c when the element is hcp, otherwise the ideal c/a = sqrt(8/3).
      L.c = spec.c > 0.0 ? spec.c : (own && el->c > 0.0 ? el->c : std::sqrt(8.0 / 3.0) * L.a);
    }
  } else {
    L.species = split_alloy(spec.element);
    if (L.species.empty())
      fail_input("unknown element '" + spec.element +
                 "' (expected a symbol such as Pt, or an L1_0 alloy such as FePt or CoPt)");
    if (!spec.structure.empty() && parse_structure(spec.structure) != Structure::l10)
      fail_input("two-species element \"" + spec.element +
                 "\" is built as the L1_0 ordered alloy; structure must be empty or l10, got \"" +
                 spec.structure + "\"");
    L.structure = Structure::l10;
    double a = 0.0, c = 0.0;
    for (const auto& t : kL10Table)
      if (L.species[0] == t.a_species && L.species[1] == t.b_species) a = t.a, c = t.c;
    L.a = spec.a > 0.0 ? spec.a : a;
    L.c = spec.c > 0.0 ? spec.c : c;
    if (!(L.a > 0.0) || !(L.c > 0.0))
      fail_input("no tabulated L1_0 lattice constants for " + spec.element +
                 " (known: FePt, CoPt); give a and c (Angstrom)");
  }

  const double a = L.a;
  switch (L.structure) {
    case Structure::fcc:
      L.cell = Vec3(a, a, a);
      L.motif = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
      L.motif_species = {0, 0, 0, 0};
      break;
    case Structure::bcc:
      L.cell = Vec3(a, a, a);
      L.motif = {{0, 0, 0}, {0.5, 0.5, 0.5}};
      L.motif_species = {0, 0};
      break;
    case Structure::hcp:
      // Orthohexagonal cell a x sqrt(3)a x c (c along z); the B layer sits over the A triangles.
      L.cell = Vec3(a, std::sqrt(3.0) * a, L.c);
      L.motif = {{0, 0, 0}, {0.5, 0.5, 0}, {0, 1.0 / 3.0, 0.5}, {0.5, 5.0 / 6.0, 0.5}};
      L.motif_species = {0, 0, 0, 0};
      break;
    case Structure::l10:
      // First species on the z = 0 layers, second on z = c/2. The origin is put on a tetrahedral
      // interstice (a/4, a/4, c/4): the mirrors x -> -x, z -> -z then swap the two species, so
      // every shape with that symmetry is cut exactly 50/50.
      L.cell = Vec3(a, a, L.c);
      L.motif = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
      L.motif_species = {0, 0, 1, 1};
      L.origin_shift = Vec3(0.25 * a, 0.25 * a, 0.25 * L.c);
      break;
  }
  return L;
}

// --- Shapes ------------------------------------------------------------------------------------

struct HalfSpace {
  Vec3 n;  // unit normal
  double d;
};

// Every sign change and permutation of (h, k, l), normalised and without duplicates.
void add_family(std::vector<HalfSpace>& planes, int h, int k, int l, double distance) {
  if (h == 0 && k == 0 && l == 0) fail_input("facet family {000} has no normal");
  if (!std::isfinite(distance) || distance <= 0.0)
    fail_input("facet distance must be > 0 Angstrom, got " + fmt_g(distance, 10) + " for {" +
               std::to_string(h) + std::to_string(k) + std::to_string(l) + "}");
  int v[3] = {std::abs(h), std::abs(k), std::abs(l)};
  std::sort(v, v + 3);
  do {
    for (int s = 0; s < 8; ++s) {
      Vec3 n((s & 1) ? -v[0] : v[0], (s & 2) ? -v[1] : v[1], (s & 4) ? -v[2] : v[2]);
      n.normalize();
      bool dup = false;
      for (auto& p : planes)
        if ((p.n - n).norm() < 1e-12) {
          // Two families sharing a normal: the nearer plane is the one that cuts.
          p.d = std::min(p.d, distance);
          dup = true;
        }
      if (!dup) planes.push_back({n, distance});
    }
  } while (std::next_permutation(v, v + 3));
}

bool inside(const std::vector<HalfSpace>& planes, const Vec3& p, double tol) {
  for (const auto& h : planes)
    if (p.dot(h.n) > h.d + tol) return false;
  return true;
}

// Circumradius of a bounded polytope: the farthest vertex, found by intersecting every triple of
// planes. Families of a cubic point group always enclose the origin, so the polytope is bounded.
double polytope_radius(const std::vector<HalfSpace>& planes) {
  const double scale =
      std::accumulate(planes.begin(), planes.end(), 0.0,
                      [](double m, const HalfSpace& h) { return std::max(m, h.d); });
  const double tol = 1e-9 * scale;
  double r = 0.0;
  const std::size_t n = planes.size();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      const Vec3 nij = planes[i].n.cross(planes[j].n);
      for (std::size_t k = j + 1; k < n; ++k) {
        const double det = nij.dot(planes[k].n);
        if (std::abs(det) < 1e-9) continue;
        const Vec3 x = (planes[i].d * planes[j].n.cross(planes[k].n) +
                        planes[j].d * planes[k].n.cross(planes[i].n) + planes[k].d * nij) /
                       det;
        if (inside(planes, x, tol)) r = std::max(r, x.norm());
      }
    }
  return r;
}

struct Sphere {
  Vec3 centre;
  double radius;
};

// Sites of the lattice within the axis-aligned cube |x|, |y|, |z| <= half (origin shift applied).
template <typename Keep>
void lattice_sites(const LatticeCell& L, double half, Keep keep, std::vector<Vec3>& pos,
                   std::vector<int>& spc) {
  long lo[3], hi[3];
  double cells = 1.0;
  for (int d = 0; d < 3; ++d) {
    lo[d] = static_cast<long>(std::floor((-half + L.origin_shift[d]) / L.cell[d])) - 1;
    hi[d] = static_cast<long>(std::ceil((half + L.origin_shift[d]) / L.cell[d])) + 1;
    cells *= static_cast<double>(hi[d] - lo[d] + 1);
  }
  if (cells * static_cast<double>(L.motif.size()) > kMaxCandidateSites)
    fail_input("particle too large: about " + fmt_g(cells * L.motif.size(), 10) +
               " candidate lattice sites (limit " + fmt_g(kMaxCandidateSites, 10) +
               "); reduce size");
  for (long iz = lo[2]; iz <= hi[2]; ++iz)
    for (long iy = lo[1]; iy <= hi[1]; ++iy)
      for (long ix = lo[0]; ix <= hi[0]; ++ix)
        for (std::size_t m = 0; m < L.motif.size(); ++m) {
          const Vec3 p((ix + L.motif[m].x()) * L.cell.x() - L.origin_shift.x(),
                       (iy + L.motif[m].y()) * L.cell.y() - L.origin_shift.y(),
                       (iz + L.motif[m].z()) * L.cell.z() - L.origin_shift.z());
          if (std::abs(p.x()) > half || std::abs(p.y()) > half || std::abs(p.z()) > half) continue;
          if (!keep(p)) continue;
          pos.push_back(p);
          spc.push_back(L.motif_species[m]);
        }
}

// --- Amorphous packing ---------------------------------------------------------------------------

// Refuse amorphous particles of more atoms than this (a typo in size or atoms).
constexpr double kMaxAmorphousAtoms = 5.0e6;
// Sweeps that form the first shell, and those allowed to enforce the minimum distance before a
// packing is declared too dense for it.
constexpr int kSoftSweeps = 100;
constexpr int kMaxRelaxSweeps = 2000;

struct Amorphous {
  std::string element;
  double density = 0, min_distance = 0, radius = 0;
};

// The amorphous particle's element, density, minimum distance and radius, defaults from the
// element's crystal (a glass is a few per cent less dense than its crystal, and its closest pairs
// come nearer than the crystal's nearest neighbours).
Amorphous resolve_amorphous(const ParticleSpec& spec) {
  Amorphous am;
  const Element* el = find_element(spec.element);
  if (!el)
    fail_input("an amorphous particle is of one element; '" + spec.element +
               "' is not an element symbol");
  am.element = el->symbol;
  if (!std::isfinite(spec.density) || spec.density < 0 || !std::isfinite(spec.min_distance) ||
      spec.min_distance < 0)
    fail_input("amorphous density and minimum distance must be >= 0 (0 = from the crystal)");
  am.density = spec.density;
  am.min_distance = spec.min_distance;
  if (am.density == 0 || am.min_distance == 0) {
    double per_cell = 0, nn = 0;
    switch (el->lattice) {
      case Lattice::fcc:
        per_cell = 4 / std::pow(el->a, 3), nn = el->a / std::sqrt(2.0);
        break;
      case Lattice::bcc:
        per_cell = 2 / std::pow(el->a, 3), nn = el->a * std::sqrt(3.0) / 2;
        break;
      case Lattice::hcp:
        per_cell = 4 / (std::sqrt(3.0) * el->a * el->a * el->c), nn = el->a;
        break;
      default:
        fail_input("element " + el->symbol +
                   " has no tabulated crystal to take an amorphous density and minimum distance "
                   "from; give both");
    }
    if (am.density == 0) am.density = 0.97 * per_cell;
    if (am.min_distance == 0) am.min_distance = 0.85 * nn;
  }
  if (spec.atoms < 0 || static_cast<double>(spec.atoms) > kMaxAmorphousAtoms)
    fail_input("amorphous atom count must be in [0, " + fmt_g(kMaxAmorphousAtoms, 10) +
               "] (0 = from the size), got " + std::to_string(spec.atoms));
  am.radius = spec.atoms > 0
                  ? std::cbrt(3.0 * static_cast<double>(spec.atoms) / (4.0 * kPi * am.density))
                  : spec.size;
  if (!std::isfinite(am.radius) || !(am.radius > 0))
    fail_input("amorphous particle size must be > 0 Angstrom, got " + fmt_g(am.radius, 10));
  if (4.0 / 3.0 * kPi * std::pow(am.radius, 3) * am.density > kMaxAmorphousAtoms)
    fail_input("particle too large: about " +
               fmt_g(4.0 / 3.0 * kPi * std::pow(am.radius, 3) * am.density, 10) + " atoms (limit " +
               fmt_g(kMaxAmorphousAtoms, 10) + "); reduce size");
  return am;
}

// Pushes every pair of `pos` closer than `target` apart, each atom by `step` times half the
// overlap, and puts atoms that left the ball of radius `radius` back on its surface. Returns
// whether some pair was closer than `limit`; with none and `keep_when_clear`, nothing moves.
// Serial and in NeighborSearch's fixed order.
bool push_apart(std::vector<Vec3>& pos, double radius, double target, double step, double limit,
                bool keep_when_clear, std::vector<Vec3>& move) {
  const std::size_t n = pos.size();
  std::fill(move.begin(), move.end(), Vec3::Zero());
  bool clash = false;
  const NeighborSearch grid(pos, target, NeighborSearch::default_max_cells(n));
  for (std::size_t i = 0; i < n; ++i)
    grid.for_each(pos[i], target, [&](std::size_t j, double d2) {
      if (j <= i) return;
      clash |= d2 < limit * limit;
      const double d = std::sqrt(d2);
      // Two atoms on one spot part along a direction fixed by their indices.
      const Vec3 dir = d > 1e-9 * target
                           ? Vec3((pos[i] - pos[j]) / d)
                           : Vec3(Vec3(1.0, 0.618 * (i % 7), 0.382 * (j % 5)).normalized());
      const Vec3 m = 0.5 * step * (target - d) * dir;
      move[i] += m;
      move[j] -= m;
    });
  if (!clash && keep_when_clear) return false;
  for (std::size_t i = 0; i < n; ++i) {
    pos[i] += move[i];
    const double r = pos[i].norm();
    if (r > radius) pos[i] *= radius / r;
  }
  return clash;
}

// A random dense packing: `n` atoms uniform at random in the ball of radius `radius`, then
// kSoftSweeps half steps towards 1.15 times the minimum distance, which gather most neighbours
// into a first shell just above it (a hard-sphere push to the minimum alone piles them up at
// contact), then full steps to 1.02 times it until no pair is closer than the minimum distance
// (the margin ends them in finitely many sweeps). Depends on the seed alone.
std::vector<Vec3> amorphous_packing(std::size_t n, double radius, double min_distance, Rng& rng) {
  std::vector<Vec3> pos;
  pos.reserve(n);
  while (pos.size() < n) {
    const Vec3 u(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1));
    if (u.squaredNorm() <= 1.0) pos.push_back(radius * u);
  }
  std::vector<Vec3> move(n);
  for (int sweep = 0; sweep < kSoftSweeps; ++sweep)
    push_apart(pos, radius, 1.15 * min_distance, 0.5, min_distance, false, move);
  for (int sweep = 0; sweep < kMaxRelaxSweeps; ++sweep)
    if (!push_apart(pos, radius, 1.02 * min_distance, 1.0, min_distance, true, move)) return pos;
  fail_input("amorphous packing: " + std::to_string(n) + " atoms in a sphere of radius " +
             fmt_g(radius, 6) + " A cannot keep " + fmt_g(min_distance, 6) +
             " A apart (packing fraction " +
             fmt_g(static_cast<double>(n) * std::pow(min_distance / radius, 3) / 8.0, 3) +
             "); lower the density or the minimum distance");
}

// Uniform random rotation: a unit quaternion from four standard normals is uniform on S^3.
Eigen::Quaterniond random_rotation(Rng& rng) {
  for (;;) {
    const double w = rng.normal(), x = rng.normal(), y = rng.normal(), z = rng.normal();
    const double n = std::sqrt(w * w + x * x + y * y + z * z);
    if (n > 1e-12) return Eigen::Quaterniond(w / n, x / n, y / n, z / n);
  }
}

std::string canonical(const std::string& name) {
  std::string s;
  for (char ch : name) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    s += c == '_' ? '-' : c;
  }
  return s;
}

constexpr Shape kAllShapes[] = {
    Shape::sphere,        Shape::octahedron, Shape::truncated_octahedron,
    Shape::cuboctahedron, Shape::cube,       Shape::wulff,
    Shape::random,        Shape::amorphous,  Shape::decahedron};

}  // namespace

const char* shape_name(Shape s) {
  switch (s) {
    case Shape::sphere:
      return "sphere";
    case Shape::octahedron:
      return "octahedron";
    case Shape::truncated_octahedron:
      return "truncated-octahedron";
    case Shape::cuboctahedron:
      return "cuboctahedron";
    case Shape::cube:
      return "cube";
    case Shape::wulff:
      return "wulff";
    case Shape::random:
      return "random";
    case Shape::amorphous:
      return "amorphous";
    case Shape::decahedron:
      return "decahedron";
  }
  return "?";
}

Shape parse_shape(const std::string& name) {
  const std::string key = canonical(name);
  for (Shape s : kAllShapes)
    if (key == shape_name(s)) return s;
  std::string valid;
  for (Shape s : kAllShapes) valid += std::string(valid.empty() ? "" : ", ") + shape_name(s);
  fail_input("unknown particle shape '" + name + "' (valid: " + valid + ")");
}

AtomModel build_particle(const ParticleSpec& spec) {
  const bool amorphous = spec.shape == Shape::amorphous;
  const Amorphous am = amorphous ? resolve_amorphous(spec) : Amorphous{};
  LatticeCell L;
  if (amorphous)
    L.species = {am.element};
  else
    L = make_lattice(spec);
  const double tol = 1e-6 * L.a;  // sites on a facet plane belong to the particle

  if (!std::isfinite(spec.vacancy_fraction) || spec.vacancy_fraction < 0.0 ||
      spec.vacancy_fraction >= 1.0)
    fail_input("vacancy fraction must be in [0, 1), got " + fmt_g(spec.vacancy_fraction, 10));
  if (!std::isfinite(spec.jitter_sd) || spec.jitter_sd < 0.0)
    fail_input("jitter sd must be >= 0 Angstrom, got " + fmt_g(spec.jitter_sd, 10));
  if (!std::isfinite(spec.b_factor) || spec.b_factor < 0.0)
    fail_input("B-factor must be >= 0 Angstrom^2 (0 = from jitter), got " +
               fmt_g(spec.b_factor, 10));
  if (!spec.strain.allFinite() || spec.strain.cwiseAbs().maxCoeff() > 0.2)
    fail_input("strain components must be finite and at most 0.2 in size");
  if (!std::isfinite(spec.radial_strain) || std::abs(spec.radial_strain) > 0.1 ||
      !std::isfinite(spec.radial_radius) || !(spec.radial_radius > 0))
    fail_input("radial strain must be at most 0.1 in size, with a radius > 0 Angstrom");
  if (spec.orientation &&
      !(spec.orientation->coeffs().allFinite() && spec.orientation->norm() > 1e-12))
    fail_input("the orientation must be a finite, non-zero quaternion");
  if (spec.shape == Shape::cuboctahedron) {
    if (spec.shells < 1)
      fail_input("cuboctahedron needs shells >= 1 (1 -> 13 atoms, 2 -> 55, ...), got " +
                 std::to_string(spec.shells));
    if (L.structure != Structure::fcc)
      fail_input(std::string("cuboctahedral closed shells are defined for fcc only; ") +
                 spec.element + " is " + structure_name(L.structure) +
                 " (use octahedron, cube, sphere or wulff)");
  } else if (spec.shape == Shape::decahedron) {
    if (spec.shells < 1 || spec.shells > 200)
      fail_input("decahedron needs shells (nearest-neighbour spacings per edge) in [1, 200], got " +
                 std::to_string(spec.shells));
    if (L.structure != Structure::fcc)
      fail_input(std::string("a decahedron is made of fcc grains; ") + spec.element + " is " +
                 structure_name(L.structure));
  } else if (spec.shape != Shape::wulff && !amorphous &&
             (!std::isfinite(spec.size) || spec.size <= 0.0)) {
    fail_input("particle size must be > 0 Angstrom for shape " +
               std::string(shape_name(spec.shape)) + ", got " + fmt_g(spec.size, 10));
  }

  std::vector<Vec3> pos;
  std::vector<int> spc;
  switch (spec.shape) {
    case Shape::cuboctahedron: {
      // Exact closed shells on integer fcc coordinates (i, j, k) * a/2 with i + j + k even:
      // shell n is |i| + |j| + |k| <= 2n ({111} facets) and max |i| <= n ({100} facets).
      const long n = spec.shells;
      if (std::pow(2.0 * n + 1.0, 3) > kMaxCandidateSites)
        fail_input("too many cuboctahedron shells: " + std::to_string(n));
      for (long k = -n; k <= n; ++k)
        for (long j = -n; j <= n; ++j)
          for (long i = -n; i <= n; ++i) {
            if (((i + j + k) % 2 + 2) % 2 != 0) continue;
            if (std::labs(i) + std::labs(j) + std::labs(k) > 2 * n) continue;
            pos.emplace_back(0.5 * L.a * i, 0.5 * L.a * j, 0.5 * L.a * k);
            spc.push_back(0);
          }
      break;
    }
    case Shape::sphere: {
      const double r2 = (spec.size + tol) * (spec.size + tol);
      lattice_sites(
          L, spec.size + tol, [&](const Vec3& p) { return p.squaredNorm() <= r2; }, pos, spc);
      break;
    }
    case Shape::random: {
      if (spec.random_spheres < 1 || spec.random_spheres > 1000)
        fail_input("random shape needs 1..1000 spheres, got " +
                   std::to_string(spec.random_spheres));
      // Centres uniform in a ball of 0.35 * size, radii uniform in [0.4, 0.8] * size: any two
      // spheres then overlap (centre distance <= 0.7 * size < 0.8 * size), so the particle is
      // always one connected piece, lumpy but never a scatter of islands.
      Rng rng = Rng::stream(spec.seed, kShapeStream);
      std::vector<Sphere> balls;
      for (int s = 0; s < spec.random_spheres; ++s) {
        Vec3 u;
        do u = Vec3(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1));
        while (u.squaredNorm() > 1.0);
        balls.push_back({0.35 * spec.size * u, rng.uniform(0.4, 0.8) * spec.size});
      }
      lattice_sites(
          L, 1.15 * spec.size + tol,
          [&](const Vec3& p) {
            for (const auto& b : balls)
              if ((p - b.centre).norm() <= b.radius + tol) return true;
            return false;
          },
          pos, spc);
      break;
    }
    case Shape::decahedron: {
      // Grain s is the fcc tetrahedron with vertices B, T (the axis' ends) and the pentagon's
      // corners V_s, V_s+1, its sites B + (i (T - B) + j (V_s - B) + k (V_s+1 - B)) / n with
      // i + j + k <= n. The edges from the axis are n nearest-neighbour spacings d long (corner
      // radius sqrt(3)/2 n d), so the bonds along the axis and to it are exactly d and the
      // tangential ones 2 sin(36) sqrt(3)/2 d = 1.018 d. Sites of the shared twin planes and of
      // the axis are kept once.
      const long n = spec.shells;
      const double d = L.a / std::sqrt(2.0);
      const double corner = std::sqrt(3.0) / 2.0 * static_cast<double>(n) * d;
      const Vec3 B(0, 0, -0.5 * static_cast<double>(n) * d),
          T(0, 0, 0.5 * static_cast<double>(n) * d);
      std::set<std::array<long long, 3>> seen;
      for (int g = 0; g < 5; ++g) {
        const double t0 = 2.0 * kPi * g / 5.0, t1 = 2.0 * kPi * (g + 1) / 5.0;
        const Vec3 V0(corner * std::cos(t0), corner * std::sin(t0), 0.0);
        const Vec3 V1(corner * std::cos(t1), corner * std::sin(t1), 0.0);
        for (long i = 0; i <= n; ++i)
          for (long j = 0; i + j <= n; ++j)
            for (long k = 0; i + j + k <= n; ++k) {
              const Vec3 p =
                  B + (static_cast<double>(i) * (T - B) + static_cast<double>(j) * (V0 - B) +
                       static_cast<double>(k) * (V1 - B)) /
                          static_cast<double>(n);
              const std::array<long long, 3> key = {
                  std::llround(p.x() * 1e6), std::llround(p.y() * 1e6), std::llround(p.z() * 1e6)};
              if (!seen.insert(key).second) continue;
              pos.push_back(p);
              spc.push_back(0);
            }
      }
      break;
    }
    case Shape::amorphous: {
      const double n = spec.atoms > 0
                           ? static_cast<double>(spec.atoms)
                           : std::round(am.density * 4.0 / 3.0 * kPi * std::pow(am.radius, 3));
      if (n < 1)
        fail_input("the amorphous sphere of radius " + fmt_g(am.radius, 6) +
                   " A holds no atom at this density; increase its size");
      Rng rng = Rng::stream(spec.seed, kShapeStream);
      pos = amorphous_packing(static_cast<std::size_t>(n), am.radius, am.min_distance, rng);
      spc.assign(pos.size(), 0);
      break;
    }
    default: {
      std::vector<HalfSpace> planes;
      switch (spec.shape) {
        case Shape::octahedron:
          add_family(planes, 1, 1, 1, spec.size);
          break;
        case Shape::cube:
          add_family(planes, 1, 0, 0, spec.size);
          break;
        case Shape::truncated_octahedron:
          // The Archimedean truncated octahedron (all edges equal): {100} cut at 2/3 of the
          // octahedron's vertex distance sqrt(3) * size, i.e. {100} at (2/sqrt(3)) * size.
          add_family(planes, 1, 1, 1, spec.size);
          add_family(planes, 1, 0, 0, 2.0 / std::sqrt(3.0) * spec.size);
          break;
        case Shape::wulff:
          if (spec.facets.empty())
            fail_input("Wulff shape needs at least one facet family, e.g. {111} and {100}");
          for (const auto& f : spec.facets) add_family(planes, f.h, f.k, f.l, f.distance);
          break;
        default:
          throw InternalError("build_particle: unhandled shape");
      }
      const double half = polytope_radius(planes) + tol;
      lattice_sites(
          L, half, [&](const Vec3& p) { return inside(planes, p, tol); }, pos, spc);
      break;
    }
  }
  if (pos.empty())
    fail_input(std::string("the ") + shape_name(spec.shape) + " contains no lattice site of " +
               spec.element + "; increase its size");

  // Polyhedra and spheres are cut around a lattice site (an interstice for L1_0) and are already
  // centred; an irregular particle is moved so that its centroid is at the origin.
  if (spec.shape == Shape::random || amorphous) {
    Vec3 c = Vec3::Zero();
    for (const auto& p : pos) c += p;
    c /= static_cast<double>(pos.size());
    for (auto& p : pos) p -= c;
  }

  if (spec.twin) {
    if (spec.shape == Shape::decahedron)
      fail_input("a decahedron is twinned already (five grains); twin applies to one crystal");
    if (amorphous || L.structure != Structure::fcc)
      fail_input("a twinned particle is fcc; " + spec.element + " is " +
                 (amorphous ? std::string("amorphous") : structure_name(L.structure)));
    // The mirror plane passes through the centre site; sites on it (within tol) are shared.
    const Vec3 nrm = Vec3(1, 1, 1).normalized();
    std::vector<Vec3> twinned;
    std::vector<int> twinned_species;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      const double h = pos[i].dot(nrm);
      if (h > tol) continue;
      twinned.push_back(pos[i]);
      twinned_species.push_back(spc[i]);
      if (h < -tol) {
        twinned.push_back(pos[i] - 2 * h * nrm);
        twinned_species.push_back(spc[i]);
      }
    }
    pos = std::move(twinned);
    spc = std::move(twinned_species);
  }

  // Vacancies: a partial Fisher-Yates shuffle picks exactly round(fraction * N) distinct sites.
  std::vector<bool> keep(pos.size(), true);
  const std::size_t n_vac = static_cast<std::size_t>(
      std::llround(spec.vacancy_fraction * static_cast<double>(pos.size())));
  if (n_vac > 0) {
    Rng rng = Rng::stream(spec.seed, kVacancyStream);
    std::vector<std::size_t> idx(pos.size());
    std::iota(idx.begin(), idx.end(), 0);
    for (std::size_t i = 0; i < n_vac; ++i) {
      const std::size_t j = i + static_cast<std::size_t>(rng.below(idx.size() - i));
      std::swap(idx[i], idx[j]);
      keep[idx[i]] = false;
    }
  }

  AtomModel model;
  model.positions.reserve(pos.size() - n_vac);
  model.species.reserve(pos.size() - n_vac);
  for (std::size_t i = 0; i < pos.size(); ++i)
    if (keep[i]) model.add(L.species[spc[i]], pos[i]);
  if (model.size() == 0) fail_input("every site was removed as a vacancy; lower the fraction");

  // The known displacement field (analysis tests and the strain floors, docs/analysis.md).
  const bool strained = !spec.strain.isZero(0) || spec.radial_strain != 0.0;
  if (strained) {
    for (auto& p : model.positions)
      p += spec.strain * p +
           spec.radial_strain * (p.squaredNorm() / (spec.radial_radius * spec.radial_radius)) * p;
  }

  // A randomly oriented particle: the whole cut particle turned about its centre (the origin).
  Eigen::Quaterniond q = Eigen::Quaterniond::Identity();
  if (spec.random_orientation || spec.orientation) {
    if (spec.random_orientation) {
      Rng rng = Rng::stream(spec.seed, kRotationStream);
      q = random_rotation(rng);
    } else {
      q = spec.orientation->normalized();
    }
    const Mat3 R = q.toRotationMatrix();
    for (auto& p : model.positions) p = R * p;
  }

  if (spec.jitter_sd > 0.0) {
    Rng rng = Rng::stream(spec.seed, kJitterStream);
    for (auto& p : model.positions)
      for (int d = 0; d < 3; ++d) p[d] += spec.jitter_sd * rng.normal();
  }

  const double b =
      spec.b_factor > 0.0 ? spec.b_factor : 8.0 * kPi * kPi * spec.jitter_sd * spec.jitter_sd;
  model.property("b_factor", b);

  model.set_info("element", spec.element);
  model.set_info("structure", amorphous ? "amorphous" : structure_name(L.structure));
  model.set_info("shape", shape_name(spec.shape));
  // Wulff shapes and closed shells are sized by their facets and shell count, not by `size`.
  if (spec.shape == Shape::cuboctahedron || spec.shape == Shape::decahedron)
    model.set_info("shells", std::to_string(spec.shells));
  else if (amorphous)
    model.set_info("size", fmt_g(am.radius, 10));  // the radius, also when set by the count
  else if (spec.shape != Shape::wulff && spec.shape != Shape::decahedron)
    model.set_info("size", fmt_g(spec.size, 10));
  if (spec.shape == Shape::wulff) {
    std::string f;
    for (const auto& x : spec.facets)
      f += (f.empty() ? "" : ",") + std::string("{") + std::to_string(x.h) + std::to_string(x.k) +
           std::to_string(x.l) + "}:" + fmt_g(x.distance, 10);
    model.set_info("facets", f);
  }
  if (spec.shape == Shape::random)
    model.set_info("random_spheres", std::to_string(spec.random_spheres));
  if (spec.twin) model.set_info("twin", "111");
  if (amorphous) {
    model.set_info("density", fmt_g(am.density, 10));
    model.set_info("min_distance", fmt_g(am.min_distance, 10));
  } else {
    model.set_info("lattice_a", fmt_g(L.a, 10));
    if (L.structure == Structure::hcp || L.structure == Structure::l10)
      model.set_info("lattice_c", fmt_g(L.c, 10));
  }
  model.set_info("vacancy_fraction", fmt_g(spec.vacancy_fraction, 10));
  model.set_info("jitter_sd", fmt_g(spec.jitter_sd, 10));
  model.set_info("b_factor", fmt_g(b, 10));
  if (spec.random_orientation || spec.orientation)
    model.set_info("orientation_quaternion", fmt_g(q.w(), 10) + " " + fmt_g(q.x(), 10) + " " +
                                                 fmt_g(q.y(), 10) + " " + fmt_g(q.z(), 10));
  if (strained) {
    const Mat3& e = spec.strain;
    model.set_info("strain", fmt_g(e(0, 0), 10) + " " + fmt_g(e(1, 1), 10) + " " +
                                 fmt_g(e(2, 2), 10) + " " + fmt_g(e(1, 2), 10) + " " +
                                 fmt_g(e(0, 2), 10) + " " + fmt_g(e(0, 1), 10));
    model.set_info("radial_strain", fmt_g(spec.radial_strain, 10));
    model.set_info("radial_radius", fmt_g(spec.radial_radius, 10));
  }
  model.set_info("seed", std::to_string(spec.seed));
  return model;
}

}  // namespace aet::phantoms
