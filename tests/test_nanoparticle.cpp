// Nanoparticle builders: lattice geometry, closed-shell magic numbers, ordering of L1_0, the
// random parts (vacancies, jitter, orientation) and the input checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"

namespace aet::phantoms {
namespace {

constexpr double kPi = 3.14159265358979323846;

ParticleSpec spec_of(const std::string& element, Shape shape, double size) {
  ParticleSpec s;
  s.element = element;
  s.shape = shape;
  s.size = size;
  return s;
}

// Index of the atom nearest to p.
std::size_t nearest_to(const AtomModel& m, const Vec3& p) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < m.size(); ++i)
    if ((m.positions[i] - p).norm() < (m.positions[best] - p).norm()) best = i;
  return best;
}

// Sorted distances from atom i to every other atom.
std::vector<double> distances_from(const AtomModel& m, std::size_t i) {
  std::vector<double> d;
  for (std::size_t j = 0; j < m.size(); ++j)
    if (j != i) d.push_back((m.positions[j] - m.positions[i]).norm());
  std::sort(d.begin(), d.end());
  return d;
}

double min_pair_distance(const AtomModel& m) {
  double best = 1e300;
  for (std::size_t i = 0; i < m.size(); ++i)
    for (std::size_t j = i + 1; j < m.size(); ++j)
      best = std::min(best, (m.positions[j] - m.positions[i]).norm());
  return best;
}

// The same through a cell list, for particles of many atoms.
double min_pair_distance_grid(const AtomModel& m, double cutoff) {
  const NeighborSearch grid(m.positions, cutoff);
  double best = 1e300;
  for (std::size_t i = 0; i < m.size(); ++i)
    grid.for_each(m.positions[i], cutoff, [&](std::size_t j, double d2) {
      if (j != i) best = std::min(best, std::sqrt(d2));
    });
  return best;
}

int count_within(const std::vector<double>& d, double lo, double hi) {
  return static_cast<int>(
      std::count_if(d.begin(), d.end(), [&](double x) { return x >= lo && x <= hi; }));
}

Vec3 centroid(const AtomModel& m) {
  Vec3 c = Vec3::Zero();
  for (const auto& p : m.positions) c += p;
  return c / static_cast<double>(m.size());
}

bool has_atom_at(const AtomModel& m, const Vec3& p, const std::string& species, double tol = 1e-6) {
  for (std::size_t i = 0; i < m.size(); ++i)
    if ((m.positions[i] - p).norm() < tol && (species.empty() || m.species[i] == species))
      return true;
  return false;
}

// Expects InputError whose message contains every given fragment.
void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments)
      EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg << "\nmissing: " << frag;
  }
}

TEST(Nanoparticle, CuboctahedronMagicNumbers) {
  for (int n = 1; n <= 6; ++n) {
    ParticleSpec s = spec_of("Pt", Shape::cuboctahedron, 0.0);
    s.shells = n;
    const AtomModel m = build_particle(s);
    EXPECT_EQ(m.size(), static_cast<std::size_t>((10 * n * n * n + 15 * n * n + 11 * n + 3) / 3));
    EXPECT_LT(centroid(m).norm(), 1e-9);
  }
  const int expected[] = {13, 55, 147, 309, 561};
  for (int n = 1; n <= 5; ++n) {
    ParticleSpec s = spec_of("Au", Shape::cuboctahedron, 0.0);
    s.shells = n;
    EXPECT_EQ(build_particle(s).size(), static_cast<std::size_t>(expected[n - 1])) << n;
  }
}

// The pentagonal bipyramid of five fcc tetrahedra: its atom counts, bonds and symmetry.
TEST(Nanoparticle, DecahedronIsFiveTwinnedTetrahedraAroundAFiveFoldAxis) {
  const int expected[] = {7, 23, 54, 105, 181, 287, 428, 609};
  for (int n = 1; n <= 8; ++n) {
    ParticleSpec s = spec_of("Au", Shape::decahedron, 0.0);
    s.shells = n;
    const AtomModel m = build_particle(s);
    EXPECT_EQ(m.size(), static_cast<std::size_t>(expected[n - 1])) << n;
    EXPECT_LT(centroid(m).norm(), 1e-9) << n;
  }
  ParticleSpec s = spec_of("Au", Shape::decahedron, 0.0);
  s.shells = 6;
  const AtomModel m = build_particle(s);
  const double d = element("Au").a / std::sqrt(2.0);
  // Nearest neighbours at d (radial and axial bonds) or the closed pentagon's 1.018 d, never
  // closer: no site is duplicated on the shared twin planes or the axis.
  EXPECT_NEAR(min_pair_distance(m), d, 1e-9);
  const double stretched = 2 * std::sin(M_PI / 5) * std::sqrt(3.0) / 2 * d;
  EXPECT_NEAR(stretched / d, 1.018, 5e-4);
  for (std::size_t i = 0; i < m.size(); ++i)
    for (double r : distances_from(m, i)) {
      if (r > 1.1 * d) break;
      EXPECT_TRUE(std::abs(r - d) < 1e-9 || std::abs(r - stretched) < 1e-9) << r / d;
    }
  // The axis (7 atoms along z) and the five-fold symmetry about it, the mirror z -> -z.
  std::size_t on_axis = 0;
  for (const auto& p : m.positions) on_axis += p.head<2>().norm() < 1e-9;
  EXPECT_EQ(on_axis, 7u);
  const Mat3 turn = Eigen::AngleAxisd(2 * M_PI / 5, Vec3::UnitZ()).toRotationMatrix();
  for (const auto& p : m.positions) {
    EXPECT_TRUE(has_atom_at(m, turn * p, "Au")) << p.transpose();
    EXPECT_TRUE(has_atom_at(m, Vec3(p.x(), p.y(), -p.z()), "Au")) << p.transpose();
  }
  EXPECT_EQ(*m.find_info("shape"), "decahedron");
  EXPECT_EQ(*m.find_info("shells"), "6");
  ParticleSpec bad = spec_of("Fe", Shape::decahedron, 0.0);
  bad.shells = 4;
  expect_input_error([&] { build_particle(bad); }, {"fcc", "Fe"});
  bad = spec_of("Au", Shape::decahedron, 0.0);
  expect_input_error([&] { build_particle(bad); }, {"decahedron", "shells"});
  bad.shells = 4;
  bad.twin = true;
  expect_input_error([&] { build_particle(bad); }, {"twinned already"});
  EXPECT_EQ(parse_shape("decahedron"), Shape::decahedron);
}

TEST(Nanoparticle, CuboctahedronIsCentredOnAnAtomWithTwelveNeighbours) {
  ParticleSpec s = spec_of("Pt", Shape::cuboctahedron, 0.0);
  s.shells = 1;
  const AtomModel m = build_particle(s);
  const double a = element("Pt").a;
  ASSERT_TRUE(has_atom_at(m, Vec3::Zero(), "Pt"));
  const auto d = distances_from(m, nearest_to(m, Vec3::Zero()));
  EXPECT_EQ(count_within(d, a / std::sqrt(2.0) - 1e-9, a / std::sqrt(2.0) + 1e-9), 12);
}

TEST(Nanoparticle, FccNearestNeighbours) {
  const AtomModel m = build_particle(spec_of("Pt", Shape::sphere, 9.0));
  const double a = element("Pt").a, nn = a / std::sqrt(2.0);
  EXPECT_NEAR(min_pair_distance(m), nn, 1e-9);
  const auto d = distances_from(m, nearest_to(m, Vec3::Zero()));
  EXPECT_NEAR(d[0], nn, 1e-9);
  EXPECT_NEAR(d[11], nn, 1e-9);
  EXPECT_NEAR(d[12], a, 1e-9);  // second shell: 6 at a
  EXPECT_EQ(count_within(d, nn - 1e-9, nn + 1e-9), 12);
  EXPECT_EQ(count_within(d, a - 1e-9, a + 1e-9), 6);
  for (const auto& sp : m.species) EXPECT_EQ(sp, "Pt");
}

TEST(Nanoparticle, BccNearestNeighbours) {
  const AtomModel m = build_particle(spec_of("Fe", Shape::sphere, 8.0));
  const double a = element("Fe").a, nn = a * std::sqrt(3.0) / 2.0;
  EXPECT_NEAR(min_pair_distance(m), nn, 1e-9);
  ASSERT_TRUE(has_atom_at(m, Vec3::Zero(), "Fe"));
  const auto d = distances_from(m, nearest_to(m, Vec3::Zero()));
  EXPECT_EQ(count_within(d, nn - 1e-9, nn + 1e-9), 8);
  EXPECT_NEAR(d[8], a, 1e-9);
  EXPECT_EQ(count_within(d, a - 1e-9, a + 1e-9), 6);
  EXPECT_EQ(*m.find_info("structure"), "bcc");
}

TEST(Nanoparticle, HcpNearestNeighbours) {
  const double a = element("Co").a;
  {
    // Ideal c/a: all twelve neighbours at exactly a.
    ParticleSpec s = spec_of("Co", Shape::sphere, 8.0);
    s.c = std::sqrt(8.0 / 3.0) * a;
    const AtomModel m = build_particle(s);
    EXPECT_NEAR(min_pair_distance(m), a, 1e-9);
    const auto d = distances_from(m, nearest_to(m, Vec3::Zero()));
    EXPECT_EQ(count_within(d, a - 1e-9, a + 1e-9), 12);
    EXPECT_GT(d[12], a * 1.4);  // next shell at sqrt(2) a
  }
  {
    // Tabulated c: six in-plane at a, six out of plane at sqrt(a^2/3 + c^2/4).
    const AtomModel m = build_particle(spec_of("Co", Shape::sphere, 8.0));
    const double c = element("Co").c, out = std::sqrt(a * a / 3.0 + c * c / 4.0);
    const auto d = distances_from(m, nearest_to(m, Vec3::Zero()));
    EXPECT_EQ(count_within(d, a - 1e-9, a + 1e-9), 6);
    EXPECT_EQ(count_within(d, out - 1e-9, out + 1e-9), 6);
    EXPECT_NEAR(std::stod(*m.find_info("lattice_c")), c, 1e-9);
    // Basal planes are perpendicular to z, spaced c/2.
    std::set<long> layers;
    for (const auto& p : m.positions) {
      const double k = p.z() / (c / 2.0);
      EXPECT_NEAR(k, std::round(k), 1e-9);
      layers.insert(std::lround(k));
    }
    EXPECT_GE(layers.size(), 5u);
  }
}

TEST(Nanoparticle, OctahedronMagicNumbers) {
  // An atom-centred fcc octahedron with {111} at m a / sqrt(3) has n = 2m + 1 atoms per edge and
  // n (2 n^2 + 1) / 3 atoms: 1, 19, 85, 231, 489.
  const double a = element("Pt").a;
  EXPECT_EQ(build_particle(spec_of("Pt", Shape::octahedron, 0.1)).size(), 1u);
  for (int m = 1; m <= 4; ++m) {
    const int n = 2 * m + 1;
    const std::size_t expected = static_cast<std::size_t>(n * (2 * n * n + 1) / 3);
    // Exactly on the facet plane (the tolerance keeps those sites) and a little beyond it.
    EXPECT_EQ(build_particle(spec_of("Pt", Shape::octahedron, m * a / std::sqrt(3.0))).size(),
              expected)
        << n;
    EXPECT_EQ(
        build_particle(spec_of("Pt", Shape::octahedron, (m + 0.3) * a / std::sqrt(3.0))).size(),
        expected)
        << n;
  }
}

TEST(Nanoparticle, FccCubeCounts) {
  const double a = element("Pt").a;
  // Half-width a/2: the corners (odd index sum) are not sites; the centre, 12 edge midpoints.
  EXPECT_EQ(build_particle(spec_of("Pt", Shape::cube, 0.5 * a)).size(), 13u);
  // Half-width a: 2 x 2 x 2 cells, 4 L^3 + 6 L^2 + 3 L + 1 = 63 for L = 2.
  EXPECT_EQ(build_particle(spec_of("Pt", Shape::cube, a)).size(), 63u);
  EXPECT_EQ(build_particle(spec_of("Pt", Shape::cube, 2.0 * a)).size(), 365u);  // L = 4
  const AtomModel m = build_particle(spec_of("Pt", Shape::cube, a));
  double xmax = 0;
  for (const auto& p : m.positions) xmax = std::max(xmax, p.cwiseAbs().maxCoeff());
  EXPECT_NEAR(xmax, a, 1e-9);
}

TEST(Nanoparticle, TruncatedOctahedronFacets) {
  const double a = element("Pt").a;
  const AtomModel m = build_particle(spec_of("Pt", Shape::truncated_octahedron, 12.5));
  // {111} at 12.5 A keeps index sums up to 10 (a/2 units), {100} at 14.43 A keeps |i| <= 7.
  double s111 = 0, s100 = 0;
  for (const auto& p : m.positions) {
    s111 = std::max(s111, p.cwiseAbs().sum() / (0.5 * a));
    s100 = std::max(s100, p.cwiseAbs().maxCoeff() / (0.5 * a));
  }
  EXPECT_NEAR(s111, 10.0, 1e-9);
  EXPECT_NEAR(s100, 7.0, 1e-9);
  EXPECT_EQ(m.size(), 807u);
  EXPECT_LT(centroid(m).norm(), 1e-9);
}

TEST(Nanoparticle, WulffMatchesTheSimplePolyhedra) {
  const double a = element("Pt").a;
  ParticleSpec w = spec_of("Pt", Shape::wulff, 0.0);
  w.facets = {{1, 1, 1, 2.0 * a / std::sqrt(3.0)}};
  EXPECT_EQ(build_particle(w).size(), 85u);
  w.facets = {{-1, 1, -1, 2.0 * a / std::sqrt(3.0)}};  // signs do not matter
  EXPECT_EQ(build_particle(w).size(), 85u);
  w.facets = {{2, 0, 0, a}};  // {200} is the {100} family
  EXPECT_EQ(build_particle(w).size(), 63u);
  w.facets = {{1, 1, 1, 12.5}, {1, 0, 0, 2.0 / std::sqrt(3.0) * 12.5}};
  EXPECT_EQ(build_particle(w).size(), 807u);
  // bcc {110}: the rhombic dodecahedra 15, 65, 175, ... ; planes at m a / sqrt(2).
  ParticleSpec r = spec_of("W", Shape::wulff, 0.0);
  const double aw = element("W").a;
  const std::size_t rhombic[] = {15, 65, 175, 369};
  for (int m = 1; m <= 4; ++m) {
    r.facets = {{1, 1, 0, m * aw / std::sqrt(2.0)}};
    EXPECT_EQ(build_particle(r).size(), rhombic[m - 1]) << m;
  }
  // A third family that cuts: fewer atoms than without it.
  ParticleSpec g = spec_of("Ag", Shape::wulff, 0.0);
  g.facets = {{1, 1, 1, 12.2}, {1, 0, 0, 13.4}};
  const std::size_t two = build_particle(g).size();
  g.facets.push_back({1, 1, 0, 14.0});
  EXPECT_LT(build_particle(g).size(), two);
}

TEST(Nanoparticle, L10OrderedAlloy) {
  const AtomModel m = build_particle(spec_of("FePt", Shape::sphere, 12.65));
  std::map<std::string, int> count;
  for (const auto& s : m.species) ++count[s];
  ASSERT_EQ(count.size(), 2u);
  EXPECT_EQ(count["Fe"], count["Pt"]);
  EXPECT_GT(count["Fe"], 100);
  EXPECT_EQ(*m.find_info("structure"), "l10");
  const double a = 3.85, c = 3.71;
  EXPECT_NEAR(std::stod(*m.find_info("lattice_a")), a, 1e-12);
  EXPECT_NEAR(std::stod(*m.find_info("lattice_c")), c, 1e-12);

  // Alternating (001) layers: Fe on one set, Pt on the other, spaced c/2.
  std::set<long> fe_layers, pt_layers;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double k = m.positions[i].z() / (0.5 * c) - 0.5;
    EXPECT_NEAR(k, std::round(k), 1e-9);
    (m.species[i] == "Fe" ? fe_layers : pt_layers).insert(std::lround(k));
  }
  for (long k : fe_layers) {
    EXPECT_EQ(pt_layers.count(k), 0u);
    EXPECT_TRUE(pt_layers.count(k + 1) || pt_layers.count(k - 1));
  }

  // Along c, an Fe atom's nearest Fe neighbour is at c, with no atom in between at c/2.
  const std::size_t fe = nearest_to(m, Vec3(0, 0, -0.25 * c) + Vec3(-0.25 * a, -0.25 * a, 0));
  ASSERT_EQ(m.species[fe], "Fe");
  const Vec3 p = m.positions[fe];
  EXPECT_TRUE(has_atom_at(m, p + Vec3(0, 0, c), "Fe"));
  EXPECT_TRUE(has_atom_at(m, p - Vec3(0, 0, c), "Fe"));
  EXPECT_FALSE(has_atom_at(m, p + Vec3(0, 0, 0.5 * c), ""));
  // In-plane Fe-Fe at a / sqrt(2); Fe-Pt at sqrt(a^2/4 + c^2/4).
  EXPECT_TRUE(has_atom_at(m, p + Vec3(0.5 * a, 0.5 * a, 0), "Fe"));
  EXPECT_TRUE(has_atom_at(m, p + Vec3(0.5 * a, 0, 0.5 * c), "Pt"));
  EXPECT_NEAR(min_pair_distance(m), std::min(a / std::sqrt(2.0), 0.5 * std::hypot(a, c)), 1e-9);

  // A cube is also cut 50/50; CoPt has its own constants; a and c can be overridden.
  const AtomModel cube = build_particle(spec_of("CoPt", Shape::cube, 9.0));
  std::map<std::string, int> cc;
  for (const auto& s : cube.species) ++cc[s];
  EXPECT_EQ(cc["Co"], cc["Pt"]);
  EXPECT_NEAR(std::stod(*cube.find_info("lattice_a")), 3.80, 1e-12);
  EXPECT_NEAR(std::stod(*cube.find_info("lattice_c")), 3.70, 1e-12);
  ParticleSpec o = spec_of("FePt", Shape::sphere, 8.0);
  o.a = 3.9;
  o.c = 3.6;
  const AtomModel ov = build_particle(o);
  EXPECT_NEAR(std::stod(*ov.find_info("lattice_a")), 3.9, 1e-12);
  EXPECT_NEAR(std::stod(*ov.find_info("lattice_c")), 3.6, 1e-12);
}

TEST(Nanoparticle, StructureOverride) {
  ParticleSpec s = spec_of("Fe", Shape::sphere, 8.0);
  s.structure = "fcc";
  s.a = 3.65;  // gamma iron
  const AtomModel m = build_particle(s);
  EXPECT_EQ(*m.find_info("structure"), "fcc");
  EXPECT_NEAR(min_pair_distance(m), 3.65 / std::sqrt(2.0), 1e-9);
  s.a = 0.0;  // no tabulated fcc constant for Fe
  expect_input_error([&] { build_particle(s); }, {"fcc", "Fe", "give a"});
}

TEST(Nanoparticle, DeterministicForASeed) {
  ParticleSpec s = spec_of("Pt", Shape::truncated_octahedron, 9.5);
  s.jitter_sd = 0.1;
  s.vacancy_fraction = 0.05;
  s.random_orientation = true;
  s.seed = 42;
  const AtomModel a = build_particle(s), b = build_particle(s);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.positions[i], b.positions[i]);
  s.seed = 43;
  const AtomModel c = build_particle(s);
  ASSERT_EQ(a.size(), c.size());
  double diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff += (a.positions[i] - c.positions[i]).norm();
  EXPECT_GT(diff, 1.0);
  EXPECT_EQ(*a.find_info("seed"), "42");
  EXPECT_EQ(*c.find_info("seed"), "43");
}

TEST(Nanoparticle, JitterHasTheRequestedSpreadAndBFactor) {
  ParticleSpec s = spec_of("Pt", Shape::sphere, 14.0);
  const AtomModel ideal = build_particle(s);
  s.jitter_sd = 0.1;
  s.seed = 5;
  const AtomModel m = build_particle(s);
  ASSERT_EQ(m.size(), ideal.size());
  double sum2 = 0;
  for (std::size_t i = 0; i < m.size(); ++i)
    sum2 += (m.positions[i] - ideal.positions[i]).squaredNorm();
  const double sd = std::sqrt(sum2 / (3.0 * m.size()));
  EXPECT_NEAR(sd, 0.1, 0.01);
  const auto* b = m.find_property("b_factor");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->size(), m.size());
  EXPECT_NEAR((*b)[0], 8.0 * kPi * kPi * 0.01, 1e-12);
  // No jitter: B = 0; an explicit B-factor wins.
  EXPECT_EQ((*ideal.find_property("b_factor"))[0], 0.0);
  s.b_factor = 0.45;
  EXPECT_EQ((*build_particle(s).find_property("b_factor")).back(), 0.45);
}

TEST(Nanoparticle, VacanciesRemoveTheExpectedCount) {
  ParticleSpec s = spec_of("Pt", Shape::truncated_octahedron, 12.5);
  const AtomModel full = build_particle(s);
  ASSERT_EQ(full.size(), 807u);
  for (double f : {0.01, 0.05, 0.1, 0.5}) {
    s.vacancy_fraction = f;
    s.seed = 3;
    const AtomModel m = build_particle(s);
    EXPECT_EQ(m.size(), full.size() - static_cast<std::size_t>(std::llround(f * full.size()))) << f;
    for (const auto& p : m.positions) EXPECT_TRUE(has_atom_at(full, p, "Pt", 1e-12));
  }
  // Different seeds leave different sites empty; vacancies do not depend on the jitter.
  s.vacancy_fraction = 0.1;
  s.seed = 3;
  const AtomModel a = build_particle(s);
  s.seed = 4;
  const AtomModel b = build_particle(s);
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a.positions[i] == b.positions[i];
  EXPECT_LT(same, static_cast<int>(a.size()));
  s.seed = 3;
  s.jitter_sd = 0.05;
  const AtomModel j = build_particle(s);
  ASSERT_EQ(j.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_LT((j.positions[i] - a.positions[i]).norm(), 0.5);
}

TEST(Nanoparticle, RandomOrientationIsARigidRotation) {
  ParticleSpec s = spec_of("Pt", Shape::truncated_octahedron, 9.5);
  s.vacancy_fraction = 0.03;
  s.seed = 11;
  const AtomModel fixed = build_particle(s);
  s.random_orientation = true;
  const AtomModel turned = build_particle(s);
  ASSERT_EQ(fixed.size(), turned.size());
  double moved = 0, worst = 0;
  for (std::size_t i = 0; i < fixed.size(); ++i) {
    moved = std::max(moved, (fixed.positions[i] - turned.positions[i]).norm());
    EXPECT_NEAR(fixed.positions[i].norm(), turned.positions[i].norm(), 1e-9);
    for (std::size_t j = i + 1; j < fixed.size(); ++j)
      worst = std::max(worst, std::abs((fixed.positions[i] - fixed.positions[j]).norm() -
                                       (turned.positions[i] - turned.positions[j]).norm()));
  }
  EXPECT_GT(moved, 1.0);
  EXPECT_LT(worst, 1e-9);
  // The centroid turns with the particle (about the origin), so its length is kept.
  EXPECT_NEAR(centroid(fixed).norm(), centroid(turned).norm(), 1e-9);
  EXPECT_NE(turned.find_info("orientation_quaternion"), nullptr);
  // Without vacancies the particle is centred, before and after the turn.
  s.vacancy_fraction = 0.0;
  EXPECT_LT(centroid(build_particle(s)).norm(), 1e-9);
}

// A given orientation turns the particle by exactly that rotation (normalised), and a
// non-finite or zero quaternion is refused.
TEST(Nanoparticle, GivenOrientationIsThatRotation) {
  ParticleSpec s = spec_of("Pt", Shape::octahedron, 7.0);
  const AtomModel fixed = build_particle(s);
  const Eigen::Quaterniond q(Eigen::AngleAxisd(0.3, Vec3(1, 2, 3).normalized()));
  s.orientation = Eigen::Quaterniond(2 * q.w(), 2 * q.x(), 2 * q.y(), 2 * q.z());
  const AtomModel turned = build_particle(s);
  ASSERT_EQ(fixed.size(), turned.size());
  const Mat3 R = q.toRotationMatrix();
  for (std::size_t i = 0; i < fixed.size(); ++i)
    EXPECT_LT((R * fixed.positions[i] - turned.positions[i]).norm(), 1e-12) << i;
  EXPECT_NE(turned.find_info("orientation_quaternion"), nullptr);
  s.orientation = Eigen::Quaterniond(0, 0, 0, 0);
  EXPECT_THROW(build_particle(s), InputError);
  s.orientation = Eigen::Quaterniond(std::nan(""), 0, 0, 1);
  EXPECT_THROW(build_particle(s), InputError);
}

TEST(Nanoparticle, RandomShapeIsCentredAndReproducible) {
  ParticleSpec s = spec_of("Pt", Shape::random, 14.0);
  s.seed = 1;
  const AtomModel a = build_particle(s);
  EXPECT_GT(a.size(), 150u);
  EXPECT_LT(centroid(a).norm(), 1e-9);
  EXPECT_NEAR(min_pair_distance(a), element("Pt").a / std::sqrt(2.0), 1e-9);
  for (const auto& p : a.positions) EXPECT_LT(p.norm(), 2.0 * 1.15 * 14.0);
  const AtomModel again = build_particle(s);
  ASSERT_EQ(again.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.positions[i], again.positions[i]);
  s.seed = 2;
  const AtomModel b = build_particle(s);
  bool differs = b.size() != a.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i) differs = a.positions[i] != b.positions[i];
  EXPECT_TRUE(differs);
}

TEST(Nanoparticle, InfoRecordsTheSpec) {
  ParticleSpec s = spec_of("Au", Shape::octahedron, 9.5);
  s.seed = 17;
  const AtomModel m = build_particle(s);
  EXPECT_EQ(*m.find_info("element"), "Au");
  EXPECT_EQ(*m.find_info("structure"), "fcc");
  EXPECT_EQ(*m.find_info("shape"), "octahedron");
  EXPECT_EQ(*m.find_info("size"), "9.5");
  EXPECT_EQ(*m.find_info("seed"), "17");
  EXPECT_NEAR(std::stod(*m.find_info("lattice_a")), element("Au").a, 1e-12);
  EXPECT_EQ(m.find_info("lattice_c"), nullptr);
  ParticleSpec c = spec_of("Pt", Shape::cuboctahedron, 0.0);
  c.shells = 3;
  EXPECT_EQ(*build_particle(c).find_info("shells"), "3");
}

TEST(Nanoparticle, AmorphousPackingKeepsTheMinimumDistance) {
  // Defaults from bcc Ta: 0.97 of its density, 0.85 of its nearest-neighbour distance.
  const double a = element("Ta").a, density = 0.97 * 2 / (a * a * a);
  const double d_min = 0.85 * a * std::sqrt(3.0) / 2;
  ParticleSpec s = spec_of("Ta", Shape::amorphous, 14.0);
  s.seed = 5;
  const AtomModel m = build_particle(s);
  EXPECT_EQ(m.size(), static_cast<std::size_t>(std::llround(density * 4 / 3 * kPi * 14 * 14 * 14)));
  EXPECT_EQ(min_pair_distance(m), min_pair_distance_grid(m, 3.0));
  EXPECT_GE(min_pair_distance(m), d_min);
  EXPECT_LT(centroid(m).norm(), 1e-9);
  for (const auto& p : m.positions) EXPECT_LE(p.norm(), 14.0 + 1.0);  // centroid moved: < 1 A
  // The first shell: most atoms have neighbours within 1.2 minimum distances.
  int with_shell = 0;
  for (std::size_t i = 0; i < m.size(); ++i)
    with_shell += count_within(distances_from(m, i), 0.0, 1.2 * d_min) >= 3;
  EXPECT_GT(with_shell, 0.8 * static_cast<double>(m.size()));
  EXPECT_EQ(*m.find_info("structure"), "amorphous");
  EXPECT_NEAR(std::stod(*m.find_info("density")), density, 1e-6 * density);
  EXPECT_NEAR(std::stod(*m.find_info("min_distance")), d_min, 1e-6);
  for (const auto& e : m.species) EXPECT_EQ(e, "Ta");
  // Reproducible per seed, and another seed is another packing.
  const AtomModel again = build_particle(s);
  EXPECT_TRUE(again.positions == m.positions);
  s.seed = 6;
  EXPECT_FALSE(build_particle(s).positions == m.positions);
  // An atom count sets the radius from the density.
  ParticleSpec n = spec_of("Si", Shape::amorphous, 0.0);
  n.atoms = 300;
  n.density = 0.05;
  n.min_distance = 2.2;
  const AtomModel si = build_particle(n);
  EXPECT_EQ(si.size(), 300u);
  EXPECT_GE(min_pair_distance(si), 2.2);
  EXPECT_NEAR(std::stod(*si.find_info("size")), std::cbrt(3 * 300 / (4 * kPi * 0.05)), 1e-6);
}

TEST(Nanoparticle, AmorphousBadInputsAreRejectedClearly) {
  ParticleSpec dense = spec_of("Ta", Shape::amorphous, 8.0);
  dense.density = 0.1;
  dense.min_distance = 2.6;  // packing fraction 0.92: beyond any packing of spheres
  expect_input_error([&] { build_particle(dense); }, {"cannot keep", "2.6", "lower the density"});
  expect_input_error([] { build_particle(spec_of("Si", Shape::amorphous, 10.0)); },
                     {"Si", "give both"});
  expect_input_error([] { build_particle(spec_of("FePt", Shape::amorphous, 10.0)); },
                     {"one element", "FePt"});
  expect_input_error([] { build_particle(spec_of("Ta", Shape::amorphous, 0.0)); }, {"size", "> 0"});
  ParticleSpec count = spec_of("Ta", Shape::amorphous, 0.0);
  count.atoms = -1;
  expect_input_error([&] { build_particle(count); }, {"atom count"});
  ParticleSpec huge = spec_of("Ta", Shape::amorphous, 1e4);
  expect_input_error([&] { build_particle(huge); }, {"too large"});
}

// A twin on (111): the lower half kept and mirrored, the plane's sites shared; every atom's mirror
// image is an atom, no two atoms closer than the crystal's nearest neighbours, and the upper half
// is not the crystal's own (a twin, not a copy).
TEST(Nanoparticle, TwinnedParticleIsTheMirroredHalf) {
  ParticleSpec s = spec_of("Pt", Shape::truncated_octahedron, 12.5);
  const AtomModel plain = build_particle(s);
  s.twin = true;
  const AtomModel twin = build_particle(s);
  const Vec3 n = Vec3(1, 1, 1).normalized();
  const double tol = 1e-6;
  std::size_t below = 0, on = 0;
  for (const Vec3& p : plain.positions) {
    below += p.dot(n) < -tol;
    on += std::abs(p.dot(n)) <= tol;
  }
  EXPECT_EQ(twin.size(), 2 * below + on);
  EXPECT_GT(on, 40u);
  const double a = element("Pt").a;
  EXPECT_NEAR(min_pair_distance(twin), a / std::sqrt(2.0), 1e-9);
  std::size_t mirrored = 0, in_crystal = 0;
  for (const Vec3& p : twin.positions) {
    const Vec3 m = p - 2 * p.dot(n) * n;
    for (const Vec3& q : twin.positions) mirrored += (q - m).norm() < tol;
    if (p.dot(n) > tol) {
      // On the fcc lattice of the lower half: all coordinates multiples of a/2 with an even sum.
      const Vec3 f = 2 * p / a;
      const bool site = (f - f.array().round().matrix()).norm() < 1e-6 &&
                        static_cast<long>(std::lround(f.sum())) % 2 == 0;
      in_crystal += site;
    }
  }
  EXPECT_EQ(mirrored, twin.size());
  // Of the mirrored layers only every third falls on the lower grain's lattice.
  EXPECT_LT(in_crystal, below / 2);
  EXPECT_EQ(*twin.find_info("twin"), "111");
  expect_input_error(
      [] {
        ParticleSpec fe = spec_of("Fe", Shape::sphere, 10.0);
        fe.twin = true;
        build_particle(fe);
      },
      {"twinned", "fcc", "Fe"});
}

TEST(Nanoparticle, ShapeNames) {
  for (Shape s : {Shape::sphere, Shape::octahedron, Shape::truncated_octahedron,
                  Shape::cuboctahedron, Shape::cube, Shape::wulff, Shape::random, Shape::amorphous})
    EXPECT_EQ(parse_shape(shape_name(s)), s);
  EXPECT_STREQ(shape_name(Shape::truncated_octahedron), "truncated-octahedron");
  EXPECT_EQ(parse_shape("truncated_octahedron"), Shape::truncated_octahedron);
  EXPECT_EQ(parse_shape("Cube"), Shape::cube);
  expect_input_error([] { parse_shape("dodecahedron"); },
                     {"dodecahedron", "sphere", "truncated-octahedron", "wulff", "random"});
}

TEST(Nanoparticle, BadInputsAreRejectedClearly) {
  expect_input_error([] { build_particle(spec_of("Xx", Shape::sphere, 10)); },
                     {"unknown element", "Xx"});
  expect_input_error([] { build_particle(spec_of("Si", Shape::sphere, 10)); }, {"Si", "structure"});
  ParticleSpec co = spec_of("Fe", Shape::cuboctahedron, 0);
  co.shells = 3;
  expect_input_error([&] { build_particle(co); }, {"fcc", "bcc", "Fe"});
  co.element = "Pt";
  co.shells = 0;
  expect_input_error([&] { build_particle(co); }, {"shells", ">= 1"});
  expect_input_error([] { build_particle(spec_of("Pt", Shape::sphere, 0.0)); }, {"size", "> 0"});
  expect_input_error([] { build_particle(spec_of("Pt", Shape::octahedron, -3.0)); },
                     {"size", "octahedron", "-3"});
  expect_input_error([] { build_particle(spec_of("Pt", Shape::sphere, 1e5)); }, {"too large"});
  ParticleSpec v = spec_of("Pt", Shape::sphere, 10);
  v.vacancy_fraction = -0.1;
  expect_input_error([&] { build_particle(v); }, {"vacancy", "[0, 1)"});
  v.vacancy_fraction = 1.0;
  expect_input_error([&] { build_particle(v); }, {"vacancy", "[0, 1)"});
  ParticleSpec j = spec_of("Pt", Shape::sphere, 10);
  j.jitter_sd = -0.1;
  expect_input_error([&] { build_particle(j); }, {"jitter"});
  ParticleSpec w = spec_of("Pt", Shape::wulff, 10);
  expect_input_error([&] { build_particle(w); }, {"Wulff", "facet"});
  w.facets = {{0, 0, 0, 10.0}};
  expect_input_error([&] { build_particle(w); }, {"{000}"});
  w.facets = {{1, 1, 1, -1.0}};
  expect_input_error([&] { build_particle(w); }, {"distance", "> 0"});
  ParticleSpec st = spec_of("Pt", Shape::sphere, 10);
  st.structure = "bct";
  expect_input_error([&] { build_particle(st); }, {"bct", "fcc, bcc, hcp, l10"});
  st.structure = "l10";
  expect_input_error([&] { build_particle(st); }, {"l10", "two species"});
  expect_input_error([] { build_particle(spec_of("NiPt", Shape::sphere, 10)); },
                     {"NiPt", "give a and c"});
  ParticleSpec r = spec_of("Pt", Shape::random, 10);
  r.random_spheres = 0;
  expect_input_error([&] { build_particle(r); }, {"spheres"});
}

TEST(PhantomCatalogue, DemoIsATextbookPtParticle) {
  const NamedPhantom& demo = find_phantom("demo");
  EXPECT_FALSE(demo.spec.random_orientation);
  const AtomModel m = build_particle(demo.spec);
  EXPECT_GE(m.size(), 750u);
  EXPECT_LE(m.size(), 850u);
  for (const auto& s : m.species) EXPECT_EQ(s, "Pt");
  EXPECT_NEAR(demo.spec.jitter_sd, 0.05, 1e-12);
  EXPECT_LT(centroid(m).norm(), 0.05);
}

TEST(PhantomCatalogue, EveryEntryBuilds) {
  const auto& cat = phantom_catalogue();
  EXPECT_GE(cat.size(), 12u);
  std::set<std::string> names;
  for (const auto& p : cat) {
    EXPECT_TRUE(names.insert(p.name).second) << "duplicate " << p.name;
    EXPECT_FALSE(p.description.empty()) << p.name;
    EXPECT_EQ(&find_phantom(p.name), &p);
    if (p.name == "ta-amorphous-20k") continue;  // the field's scale: its own test below
    const AtomModel m = build_particle(p.spec);
    EXPECT_GE(m.size(), 200u) << p.name;
    EXPECT_LE(m.size(), 2100u) << p.name;
  }
  for (const char* required :
       {"demo", "pt-cuboctahedron-309", "au-octahedron", "au-sphere", "pd-cube", "ag-wulff",
        "fe-bcc-sphere", "w-bcc-rhombic", "co-hcp-sphere", "fept-l10", "pt-random", "pt-vacancies"})
    EXPECT_EQ(names.count(required), 1u) << required;
  EXPECT_EQ(build_particle(find_phantom("pt-cuboctahedron-309").spec).size(), 309u);
}

// The particles of the field's size (metallic glass: about 18,000 atoms) and a small one of the
// same kind: exact atom counts, no two atoms closer than 2.43 A, views of 290 pixels at 0.35 A.
TEST(PhantomCatalogue, AmorphousTaAtTheFieldsScale) {
  const AtomModel big = build_particle(find_phantom("ta-amorphous-20k").spec);
  EXPECT_EQ(big.size(), 20000u);
  EXPECT_GE(min_pair_distance_grid(big, 3.0), 2.43);
  EXPECT_EQ(fitting_view_size(big, 0.35, 6.0), 290);
  const AtomModel small = build_particle(find_phantom("ta-amorphous-2k").spec);
  EXPECT_EQ(small.size(), 2000u);
  EXPECT_GE(min_pair_distance(small), 2.43);
  EXPECT_EQ(*small.find_info("structure"), "amorphous");
}

TEST(PhantomCatalogue, UnknownNameListsTheCatalogue) {
  expect_input_error([] { find_phantom("pt-icosahedron"); },
                     {"pt-icosahedron", "demo", "fept-l10", "pt-random"});
}

}  // namespace
}  // namespace aet::phantoms
