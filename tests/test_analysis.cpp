// The analysis stage (aet/analysis/analyze.hpp): lattice fit and strain, surface, order, RDF and
// facets on built particles whose answer is known exactly.
#include <gtest/gtest.h>

#include <Eigen/Geometry>
#include <algorithm>
#include <cmath>

#include "aet/analysis/analyze.hpp"
#include "aet/core/error.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/nanoparticle.hpp"

namespace aet {
namespace {

using phantoms::ParticleSpec;
using phantoms::Shape;

AtomModel particle(const std::string& element, Shape shape, double size) {
  ParticleSpec s;
  s.element = element;
  s.shape = shape;
  s.size = size;
  return phantoms::build_particle(s);
}

double lattice_a(const AtomModel& m) {
  return std::stod(*m.find_info("lattice_a"));
}

AnalyzeOptions quick(std::optional<LatticeType> t = std::nullopt, double a = 0) {
  AnalyzeOptions o;
  o.lattice = t;
  o.a = a;
  o.volumes = false;
  return o;
}

// Every defined per-atom tensor equals `expect` within tol; returns how many were defined.
std::size_t expect_all(const std::vector<Mat3>& e, const Mat3& expect, double tol) {
  std::size_t k = 0;
  for (const auto& m : e) {
    if (!m.allFinite()) continue;
    ++k;
    EXPECT_LT((m - expect).cwiseAbs().maxCoeff(), tol) << m;
  }
  return k;
}

TEST(Analysis, UniformStrainOnAPerfectLatticeIsRecoveredExactly) {
  AtomModel m = particle("Pt", Shape::sphere, 12.0);
  const double a = lattice_a(m);
  Mat3 E = Mat3::Zero();
  E(0, 0) = 0.01;
  E(0, 1) = E(1, 0) = 0.005;  // 0.5 % shear (tensor component)
  E(2, 2) = -0.003;
  for (auto& p : m.positions) p = (Mat3::Identity() + E) * p;
  const AnalysisResult r = analyze(m, quick(LatticeType::fcc, a));
  EXPECT_EQ(r.fit.lattice.type, LatticeType::fcc);
  EXPECT_DOUBLE_EQ(r.fit.on_lattice_fraction, 1.0);
  // The orientation stays unrotated (a symmetric strain has no rotation in it): the fitted axes
  // are the cube axes, up to the cubic symmetry.
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(r.fit.lattice.orientation.col(c).cwiseAbs().maxCoeff(), 1.0, 1e-12);
  EXPECT_EQ(expect_all(r.strain, E, 1e-9), m.size());
  EXPECT_GT(expect_all(r.local_strain, E, 1e-9), m.size() / 2);
  expect_all(r.rotation, Mat3::Zero(), 1e-9);
  // Without --a the reference constant absorbs the mean dilatation; the deviatoric part stays.
  const AnalysisResult f = analyze(m, quick(LatticeType::fcc));
  const double dil = E.trace() / 3;
  EXPECT_NEAR(f.fit.lattice.a, a * (1 + dil), 1e-4 * a);
  // Gradient with respect to the fitted sites, which are the lattice scaled by 1 + d.
  const double d = f.fit.lattice.a / a - 1;
  expect_all(f.strain, (E - d * Mat3::Identity()) / (1 + d), 1e-9);
}

TEST(Analysis, ARotatedLatticeHasZeroStrain) {
  ParticleSpec s;
  s.element = "Au";
  s.shape = Shape::octahedron;
  s.size = 9.5;
  s.orientation = Eigen::Quaterniond(Eigen::AngleAxisd(0.7, Vec3(1, 2, 3).normalized()));
  const AtomModel m = phantoms::build_particle(s);
  const AnalysisResult r = analyze(m, quick());
  EXPECT_EQ(r.fit.lattice.type, LatticeType::fcc);
  EXPECT_NEAR(r.fit.lattice.a, lattice_a(m), 1e-9);
  EXPECT_LT(r.fit.rms_residual, 1e-9);
  EXPECT_EQ(expect_all(r.strain, Mat3::Zero(), 1e-9), m.size());
  expect_all(r.rotation, Mat3::Zero(), 1e-9);
  // The fitted axes are the particle's rotation up to the cubic symmetry: every crystal axis
  // lies along one of the rotated cube axes.
  const Mat3 Q = s.orientation->toRotationMatrix();
  const Mat3 rel = Q.transpose() * r.fit.lattice.orientation;
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(rel.col(c).cwiseAbs().maxCoeff(), 1.0, 1e-9);
}

TEST(Analysis, AutoPicksTheLatticeOfEachElement) {
  EXPECT_EQ(analyze(particle("Fe", Shape::sphere, 11.0), quick()).fit.lattice.type,
            LatticeType::bcc);
  const AtomModel co = particle("Co", Shape::sphere, 11.0);
  const AnalysisResult r = analyze(co, quick());
  EXPECT_EQ(r.fit.lattice.type, LatticeType::hcp);
  EXPECT_NEAR(r.fit.lattice.a, lattice_a(co), 1e-6);
  EXPECT_NEAR(r.fit.lattice.c, std::stod(*co.find_info("lattice_c")), 1e-6);
  EXPECT_LT(r.fit.rms_residual, 1e-6);
  EXPECT_EQ(analyze(particle("Pt", Shape::cube, 8.0), quick()).fit.lattice.type, LatticeType::fcc);
}

// The fcc, bcc and hcp particles of the simulator, turned by a known rotation and with thermal
// jitter: the interior atoms (full coordination) get their structure and, within a degree, the
// particle's rotation as their local orientation; none is called another crystal.
TEST(LocalStructure, CrystalsAreTypedAndOrientedAtomByAtom) {
  const Eigen::Quaterniond q(Eigen::AngleAxisd(0.9, Vec3(-2, 1, 3).normalized()));
  const struct {
    const char* element;
    LocalStructure type;
    LatticeType lattice;
    int neighbours;
  } cases[] = {{"Pt", LocalStructure::fcc, LatticeType::fcc, 12},
               {"Fe", LocalStructure::bcc, LatticeType::bcc, 14},
               {"Co", LocalStructure::hcp, LatticeType::hcp, 12}};
  for (const auto& c : cases) {
    ParticleSpec s;
    s.element = c.element;
    s.shape = Shape::sphere;
    s.size = 12.0;
    s.orientation = q;
    s.seed = 3;
    // Interior: full coordination in the ideal particle (the jitter keeps the atoms' order).
    const AtomModel ideal = phantoms::build_particle(s);
    const std::vector<int> coordination =
        coordination_numbers(ideal.positions, 1.2 * median_nearest_distance(ideal.positions));
    for (const double jitter : {0.0, 0.05}) {
      s.jitter_sd = jitter;  // Angstrom per axis: 2 % of a 2.5-2.8 A bond
      const AtomModel m = phantoms::build_particle(s);
      ASSERT_EQ(m.size(), ideal.size());
      const LocalStructures ls = local_structures(m.positions);
      std::size_t interior = 0, right = 0, oriented = 0;
      for (std::size_t i = 0; i < m.size(); ++i) {
        if (lattice_of(ls.type[i]) && ls.type[i] != c.type)
          ADD_FAILURE() << c.element << " atom " << i << " typed "
                        << local_structure_name(ls.type[i]);
        if (coordination[i] < c.neighbours) continue;
        ++interior;
        if (ls.type[i] != c.type) continue;
        ++right;
        // A bond's direction moves by about 1.5 degrees under the jitter; the fit to 12-14 bonds
        // by less than half that.
        oriented += misorientation_deg(c.lattice, q.toRotationMatrix(), ls.orientation[i]) <
                    (jitter > 0 ? 2.5 : 1e-3);
      }
      SCOPED_TRACE(std::string(c.element) + " jitter " + std::to_string(jitter));
      EXPECT_GT(interior, 200u);
      EXPECT_GE(static_cast<double>(right), (jitter > 0 ? 0.95 : 1.0) * interior);
      EXPECT_EQ(oriented, right);
    }
  }
  // The symmetry: a cube rotation is no misorientation, a twin is 60 degrees.
  const Mat3 R = q.toRotationMatrix();
  const Mat3 cube = Eigen::AngleAxisd(M_PI / 2, Vec3::UnitX()).toRotationMatrix();
  EXPECT_NEAR(misorientation_deg(LatticeType::fcc, R, R * cube), 0.0, 1e-6);
  const Mat3 twin = Eigen::AngleAxisd(M_PI, Vec3(1, 1, 1).normalized()).toRotationMatrix();
  EXPECT_NEAR(misorientation_deg(LatticeType::fcc, R, R * twin), 60.0, 1e-6);
  EXPECT_NEAR(misorientation_deg(LatticeType::hcp, R,
                                 R * Eigen::AngleAxisd(M_PI / 3, Vec3::UnitZ()).toRotationMatrix()),
              0.0, 1e-6);
}

// A Pt sphere twinned on the (111) plane through its centre: the lower half is kept and mirrored
// onto the upper one. Two fcc grains 60 degrees apart, the twin plane's atoms hcp (a planar
// defect, in no grain), each grain on its own lattice with no strain, and facets on both.
TEST(Analysis, ATwinnedParticleHasTwoGrainsEachOnItsOwnLattice) {
  AtomModel sphere = particle("Pt", Shape::sphere, 14.0);
  const double a = lattice_a(sphere);
  // [111] along z.
  const Mat3 Q = Eigen::Quaterniond::FromTwoVectors(Vec3(1, 1, 1).normalized(), Vec3::UnitZ())
                     .toRotationMatrix();
  AtomModel twin;
  std::size_t plane = 0;
  for (const Vec3& p0 : sphere.positions) {
    const Vec3 p = Q * p0;
    if (p.z() > 1e-6) continue;
    twin.add("Pt", p);
    if (p.z() < -1e-6)
      twin.add("Pt", Vec3(p.x(), p.y(), -p.z()));
    else
      ++plane;
  }
  ASSERT_GT(plane, 50u);
  const AnalysisResult r = analyze(twin, quick());
  ASSERT_EQ(r.kind, SampleStructure::polycrystal) << analysis_summary(r);
  ASSERT_EQ(r.grains.grains.size(), 2u) << analysis_summary(r);
  EXPECT_GT(r.grains.planar_defect_atoms, 30u);
  EXPECT_LE(r.grains.planar_defect_atoms, plane);
  for (std::size_t i = 0; i < twin.size(); ++i)
    if (r.local.type[i] == LocalStructure::hcp) {
      EXPECT_LT(std::abs(twin.positions[i].z()), 1e-6) << i;
    }
  const Grain &g0 = r.grains.grains[0], &g1 = r.grains.grains[1];
  EXPECT_NEAR(misorientation_deg(LatticeType::fcc, g0.orientation, g1.orientation), 60.0, 0.5);
  // The grains lie on either side of the twin plane.
  for (const Grain* g : {&g0, &g1}) {
    const double side = twin.positions[g->atoms.front()].z();
    for (std::size_t i : g->atoms) EXPECT_GT(twin.positions[i].z() * side, 0.0) << i;
  }
  for (const LatticeFit& f : r.grain_fits) {
    EXPECT_EQ(f.lattice.type, LatticeType::fcc);
    EXPECT_NEAR(f.lattice.a, a, 1e-6 * a);
  }
  // Every atom, the twin plane's included, on its grain's lattice, without strain; one lattice
  // for the whole particle would hold about half of them.
  EXPECT_DOUBLE_EQ(r.fit.on_lattice_fraction, 1.0);
  EXPECT_LT(fit_lattice(twin.positions).on_lattice_fraction, 0.8);
  EXPECT_EQ(expect_all(r.strain, Mat3::Zero(), 1e-6), twin.size());
  // The shell strain needs three bonds within the atom's grain: a few surface atoms at the twin
  // plane lack them.
  EXPECT_GE(expect_all(r.local_strain, Mat3::Zero(), 1e-6), twin.size() - 5);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  // Facets of both grains, each a low-index family of its own lattice.
  std::size_t on_facets[2] = {0, 0};
  for (std::size_t i = 0; i < twin.size(); ++i)
    if (r.facets.facet_of[i] >= 0 && r.lattice_grain[i] >= 0) ++on_facets[r.lattice_grain[i]];
  EXPECT_GT(on_facets[0], 20u);
  EXPECT_GT(on_facets[1], 20u);
  const Json j = r.json();
  EXPECT_EQ(j["structure"]["kind"], "polycrystal");
  EXPECT_EQ(j["structure"]["grains"].size(), 2u);
  EXPECT_NEAR(j["structure"]["grains"][1]["misorientation_deg"].get<double>(), 60.0, 0.5);
}

// The catalogue's twinned particle (thermal jitter 0.05 A): two grains 60 degrees apart, each on
// its own lattice, and a strain that is the jitter's noise only (measured: interior means up to
// 0.11 % in a shear component; the jitter's smoothed strain has an sd of 0.2 % per atom, correlated
// over the 3 A window, and each grain holds about 400 atoms).
TEST(Analysis, TheCataloguesTwinnedParticleHasTwoGrains) {
  const AtomModel m = phantoms::build_particle(phantoms::find_phantom("pt-twinned").spec);
  const AnalysisResult r = analyze(m, quick());
  ASSERT_EQ(r.kind, SampleStructure::polycrystal) << analysis_summary(r);
  ASSERT_EQ(r.grains.grains.size(), 2u);
  EXPECT_NEAR(misorientation_deg(LatticeType::fcc, r.grains.grains[0].orientation,
                                 r.grains.grains[1].orientation),
              60.0, 2.0);
  EXPECT_GT(r.fit.on_lattice_fraction, 0.98);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  const Json st = r.json()["strain"]["interior"]["mean"];
  for (const char* c : strain_component_names())
    EXPECT_LT(std::abs(st[c].get<double>()), 2.5e-3) << c;
}

// An amorphous particle (random dense packing) has no lattice, so no strain and no facets, and
// that is no degraded result: no warning. A crystal is one grain.
// A five-fold twinned decahedron (the catalogue's au-decahedron without jitter): five fcc grains,
// neighbours related by the 60-degree twin (72 degrees about the common [110] axis, 1.5 degrees
// from 70.5), the twin planes' interior atoms hcp, every atom on its grain's lattice, the ten
// {111} faces as facets.
TEST(Analysis, ADecahedronHasFiveTwinRelatedGrains) {
  ParticleSpec s;
  s.element = "Au";
  s.shape = Shape::decahedron;
  s.shells = 8;
  const AtomModel m = phantoms::build_particle(s);
  const AnalysisResult r = analyze(m, quick());
  EXPECT_EQ(r.kind, SampleStructure::polycrystal);
  ASSERT_EQ(r.grains.grains.size(), 5u);
  const Json j = r.json();
  int twins = 0, second = 0;
  for (std::size_t g = 1; g < 5; ++g) {
    const double mis = j["structure"]["grains"][g]["misorientation_deg"].get<double>();
    twins += std::abs(mis - 60.0) < 0.1;
    second += std::abs(mis - 36.0) < 0.1;  // two grains apart: 144 degrees about [110]
    EXPECT_EQ(r.grains.grains[g].atoms.size(), r.grains.grains[0].atoms.size());
  }
  EXPECT_EQ(twins, 2);
  EXPECT_EQ(second, 2);
  EXPECT_GT(r.grains.planar_defect_atoms, 0u);
  EXPECT_DOUBLE_EQ(r.fit.on_lattice_fraction, 1.0);
  EXPECT_EQ(r.facets.facets.size(), 10u);
  EXPECT_NEAR(r.facets.area_fraction.at("{111}"), 1.0, 1e-12);
  // Each grain's lattice constant takes up part of the 1.8 % stretch of the closed pentagon.
  for (const LatticeFit& f : r.grain_fits) {
    EXPECT_GT(f.lattice.a, 4.078);
    EXPECT_LT(f.lattice.a, 4.078 * 1.018);
  }
}

TEST(Analysis, AnAmorphousParticleHasNoLatticeAndNoWarning) {
  const AtomModel glass = phantoms::build_particle(phantoms::find_phantom("ta-amorphous-2k").spec);
  const AnalysisResult r = analyze(glass, quick());
  EXPECT_EQ(r.kind, SampleStructure::amorphous);
  EXPECT_LT(r.crystalline_fraction, 0.1);
  EXPECT_FALSE(r.lattice_fitted);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_EQ(expect_all(r.strain, Mat3::Zero(), 1.0), 0u);
  EXPECT_TRUE(r.facets.facets.empty());
  const Json j = r.json();
  EXPECT_TRUE(j["lattice"].is_null());
  EXPECT_EQ(j["structure"]["kind"], "amorphous");
  EXPECT_GT(j["order"]["q6_mean"].get<double>(), 0.2);
  // Asked for a lattice, it fits one and says how poorly it fits.
  const AnalysisResult forced = analyze(glass, quick(LatticeType::bcc));
  EXPECT_TRUE(forced.lattice_fitted);
  EXPECT_LT(forced.fit.on_lattice_fraction, 0.3);
  EXPECT_FALSE(forced.warnings.empty());

  const AnalysisResult crystal = analyze(particle("Pt", Shape::sphere, 12.0), quick());
  EXPECT_EQ(crystal.kind, SampleStructure::crystal);
  EXPECT_EQ(crystal.grains.grains.size(), 1u);
  EXPECT_GT(crystal.crystalline_fraction, 0.95);
}

TEST(Analysis, RdfOfFccPeaksAtTheShellDistances) {
  const AtomModel m = particle("Pt", Shape::sphere, 14.0);
  const double a = lattice_a(m);
  const AnalysisResult r = analyze(m, quick());
  const Rdf& g = r.rdf;
  // Each shell's pairs fall in the bin holding its distance; bins between shells are empty.
  for (double d : {a / std::sqrt(2.0), a, a * std::sqrt(1.5), a * std::sqrt(2.0)}) {
    const auto k = static_cast<std::size_t>(d / g.bin);
    EXPECT_GT(g.g[k], 1.0) << d;
    EXPECT_EQ(g.g[k - 2], 0.0) << d;
    EXPECT_EQ(g.g[k + 2], 0.0) << d;
  }
  EXPECT_EQ(g.g[static_cast<std::size_t>(0.5 * a / g.bin)], 0.0);
  EXPECT_TRUE(g.partial.empty());  // one species
}

TEST(Analysis, SteinhardtOrderOfFccAndBcc) {
  const AnalysisResult f = analyze(particle("Pt", Shape::sphere, 12.0), quick());
  const AnalysisResult b = analyze(particle("Fe", Shape::sphere, 12.0), quick());
  std::size_t nf = 0;
  for (std::size_t i = 0; i < f.q4.size(); ++i)
    if (f.coordination[i] == 12) {
      ++nf;
      EXPECT_NEAR(f.q4[i], 0.19094, 1e-4);
      EXPECT_NEAR(f.q6[i], 0.57452, 1e-4);
    }
  EXPECT_GT(nf, 100u);
  // bcc with its first two shells (14 neighbours at the 1.2 d_nn cutoff).
  for (std::size_t i = 0; i < b.q4.size(); ++i)
    if (b.coordination[i] == 14) {
      EXPECT_NEAR(b.q4[i], 0.03637, 1e-4);
      EXPECT_NEAR(b.q6[i], 0.51069, 1e-4);
    }
}

TEST(Analysis, AtomsAroundAnInnerVoidAreNotSurface) {
  AtomModel m = particle("Pt", Shape::sphere, 14.0);
  // Remove the centre atom and its first two shells (19 atoms): a void inside the particle.
  std::vector<bool> keep(m.size());
  for (std::size_t i = 0; i < m.size(); ++i) keep[i] = m.positions[i].norm() > 4.2;
  m.filter(keep);
  const AnalysisResult r = analyze(m, quick(LatticeType::fcc));
  std::size_t around_void = 0, low_coord = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double d = m.positions[i].norm();
    if (d < 6.0) {
      ++around_void;
      low_coord += r.coordination[i] < r.surface.threshold;
      EXPECT_FALSE(r.surface.is_surface[i]) << d;
    }
    // The outer shell is surface; deep atoms are not.
    if (d > 13.5 && r.coordination[i] <= 8) {
      EXPECT_TRUE(r.surface.is_surface[i]) << d;
    }
  }
  EXPECT_GE(low_coord, 24u);  // coordination alone would have called them surface
  EXPECT_GT(around_void, 20u);
}

TEST(Analysis, OctahedronHasOnly111Facets) {
  const AtomModel m = particle("Au", Shape::octahedron, 12.0);
  const AnalysisResult r = analyze(m, quick());
  ASSERT_EQ(r.facets.facets.size(), 8u);
  for (const auto& f : r.facets.facets) {
    EXPECT_EQ(f.family, "{111}") << f.plane;
    EXPECT_LT(f.angle_deg, 0.01);
  }
  EXPECT_NEAR(r.facets.area_fraction.at("{111}"), 1.0, 1e-12);
  // Facet atoms lie on their facet: every surface atom off the edges and corners.
  EXPECT_GT(r.facets.surface_on_facets, 0.5);
}

TEST(Analysis, CubeHasOnly100Facets) {
  const AtomModel m = particle("Pd", Shape::cube, 11.7);
  const AnalysisResult r = analyze(m, quick());
  ASSERT_EQ(r.facets.facets.size(), 6u);
  for (const auto& f : r.facets.facets) {
    EXPECT_EQ(f.family, "{100}") << f.plane;
    EXPECT_EQ(std::abs(f.hkl[0]) + std::abs(f.hkl[1]) + std::abs(f.hkl[2]), 1);
  }
  // A 6 x 6 cell cube: each face is 36 a^2 (the facet atoms' hull widened to the edges).
  const double a = lattice_a(m);
  for (const auto& f : r.facets.facets) EXPECT_NEAR(f.area, 36 * a * a, 0.1 * 36 * a * a);
}

// The catalogue's strained phantoms (without their jitter) carry the field they describe, and the
// analysis recovers it: the uniform tensor on every atom, the radial field within 0.1 % RMS on
// interior atoms (its quadratic part is what a local linear fit cannot follow exactly).
TEST(Analysis, StrainedPhantomsGiveTheirKnownStrain) {
  ParticleSpec u = phantoms::find_phantom("pt-strained").spec;
  u.jitter_sd = 0;
  const AtomModel mu = phantoms::build_particle(u);
  const AnalysisResult ru = analyze(mu, quick(LatticeType::fcc, lattice_a(mu)));
  Mat3 E = Mat3::Zero();
  E(0, 0) = 0.01;
  E(0, 1) = E(1, 0) = 0.005;
  EXPECT_EQ(expect_all(ru.strain, E, 1e-9), mu.size());

  ParticleSpec r = phantoms::find_phantom("pt-radial-strain").spec;
  r.jitter_sd = 0;
  const AtomModel mr = phantoms::build_particle(r);
  const AnalysisResult rr = analyze(mr, quick(LatticeType::fcc, lattice_a(mr)));
  double ss = 0;
  std::size_t k = 0;
  for (std::size_t i = 0; i < mr.size(); ++i) {
    if (rr.surface.is_surface[i] || !rr.strain[i].allFinite()) continue;
    // The truth at the atom's ideal site X: s / R^2 (|X|^2 I + 2 X X^T).
    const Vec3 X = rr.fit.sites[i];
    const Mat3 truth = r.radial_strain / (r.radial_radius * r.radial_radius) *
                       (X.squaredNorm() * Mat3::Identity() + 2 * X * X.transpose());
    ss += (rr.strain[i] - truth).squaredNorm() / 9;
    ++k;
  }
  EXPECT_GT(k, 300u);
  EXPECT_LT(std::sqrt(ss / k), 1e-3);
}

TEST(Analysis, BadInputIsRefused) {
  AtomModel one;
  one.add("Pt", Vec3(0, 0, 0));
  EXPECT_THROW(analyze(one), InputError);
  AtomModel far;
  for (int i = 0; i < 6; ++i) far.add("Pt", Vec3(20.0 * i, 0, 0));
  EXPECT_THROW(analyze(far), InputError);
  AtomModel nan = particle("Pt", Shape::sphere, 6.0);
  nan.positions[3].x() = std::nan("");
  EXPECT_THROW(analyze(nan), InputError);
  EXPECT_THROW(parse_lattice("fcp"), InputError);
  EXPECT_FALSE(parse_lattice("auto").has_value());
  AnalyzeOptions o;
  o.sigma = 0;
  EXPECT_THROW(analyze(particle("Pt", Shape::sphere, 6.0), o), InputError);
}

// --- Chemical order (aet/analysis/chemical_order.hpp) ------------------------------------------

AtomModel fept(double size, const Eigen::Quaterniond& q, double jitter = 0,
               std::uint64_t seed = 3) {
  ParticleSpec s;
  s.element = "FePt";
  s.shape = Shape::sphere;
  s.size = size;
  s.orientation = q;
  s.jitter_sd = jitter;
  s.seed = seed;
  return phantoms::build_particle(s);
}

TEST(ChemicalOrder, AnL10ParticleIsFoundWithItsCAxisWhereverItPoints) {
  // c along the sample's x, then turned 17 degrees about (1, 2, 3): the c axis cannot be told
  // from the geometry's near-cubic cell (c/a 0.964) by the seed bonds alone; the species tell it.
  const Eigen::Quaterniond q =
      Eigen::Quaterniond(Eigen::AngleAxisd(17 * M_PI / 180, Vec3(1, 2, 3).normalized())) *
      Eigen::Quaterniond(Eigen::AngleAxisd(M_PI / 2, Vec3::UnitY()));
  const Vec3 c_axis = q * Vec3::UnitZ();
  for (double jitter : {0.0, 0.05}) {
    const AtomModel m = fept(11.0, q, jitter);
    const AnalysisResult r = analyze(m, quick());
    ASSERT_EQ(r.fit.lattice.type, LatticeType::l10) << "jitter " << jitter;
    EXPECT_GT(std::abs(r.fit.lattice.orientation.col(2).dot(c_axis)), 0.9999);
    EXPECT_NEAR(r.fit.lattice.a, 3.85, jitter > 0 ? 0.01 : 1e-9);
    EXPECT_NEAR(r.fit.lattice.c, 3.71, jitter > 0 ? 0.01 : 1e-9);
    EXPECT_DOUBLE_EQ(r.fit.order_parameter, 1.0);
    ASSERT_TRUE(r.chemical.present());
    EXPECT_EQ(r.chemical.first, "Fe");
    EXPECT_EQ(r.chemical.second, "Pt");
    EXPECT_DOUBLE_EQ(r.chemical.order_parameter, 1.0);
    EXPECT_EQ(r.chemical.antisites, 0u);
    EXPECT_DOUBLE_EQ(r.chemical.ordered_fraction, 1.0);
    EXPECT_DOUBLE_EQ(r.chemical.variant_fraction[2], 1.0);  // along the lattice's own c
    // The tetragonal cell is the reference: no strain from c/a.
    const Mat3 zero = Mat3::Zero();
    EXPECT_GT(expect_all(r.strain, zero, jitter > 0 ? 0.01 : 1e-9), m.size() / 2);
    // The fcc fit of the same atoms would see c/a as a strain of 3.6 %.
    EXPECT_NE(std::find_if(r.fit.tried.begin(), r.fit.tried.end(),
                           [](const auto& t) { return t.first == "fcc"; }),
              r.fit.tried.end());
  }
}

TEST(ChemicalOrder, AntisitesAreCountedAndLowerTheOrderParameter) {
  AtomModel m = fept(11.0, Eigen::Quaterniond::Identity());
  std::vector<std::size_t> fe, pt;
  for (std::size_t i = 0; i < m.size(); ++i) (m.species[i] == "Fe" ? fe : pt).push_back(i);
  ASSERT_EQ(fe.size(), pt.size());
  // Swap 10 % of the pairs: 2 x 0.1 of the atoms on the wrong planes, S = 0.9 + 0.9 - 1.
  const std::size_t swaps = fe.size() / 10;
  Rng rng(11);
  for (std::size_t k = 0; k < swaps; ++k) {
    const std::size_t a = k + rng.below(fe.size() - k), b = k + rng.below(pt.size() - k);
    std::swap(fe[k], fe[a]);
    std::swap(pt[k], pt[b]);
    std::swap(m.species[fe[k]], m.species[pt[k]]);
  }
  const AnalysisResult r = analyze(m, quick());
  ASSERT_EQ(r.fit.lattice.type, LatticeType::l10);
  EXPECT_EQ(r.chemical.antisites, 2 * swaps);
  const double f = static_cast<double>(swaps) / static_cast<double>(fe.size());
  EXPECT_NEAR(r.chemical.order_parameter, 1 - 2 * f, 1e-12);
  EXPECT_NEAR(r.fit.order_parameter, 1 - 2 * f, 1e-12);
  std::size_t flagged = 0;
  for (std::size_t k = 0; k < swaps; ++k)
    flagged += r.chemical.antisite[fe[k]] + r.chemical.antisite[pt[k]];
  EXPECT_EQ(flagged, 2 * swaps);  // exactly the swapped atoms
  EXPECT_GT(r.chemical.ordered_fraction, 0.6);
  EXPECT_LT(r.chemical.ordered_fraction, 1.0);
}

TEST(ChemicalOrder, ARandomAlloyStaysFccAndIsNotOrdered) {
  AtomModel m = fept(11.0, Eigen::Quaterniond::Identity());
  Rng rng(5);
  for (std::size_t i = m.size(); i > 1; --i) std::swap(m.species[i - 1], m.species[rng.below(i)]);
  const AnalysisResult r = analyze(m, quick());
  EXPECT_EQ(r.fit.lattice.type, LatticeType::fcc);
  ASSERT_TRUE(r.chemical.present());
  EXPECT_TRUE(std::isnan(r.chemical.order_parameter));
  EXPECT_EQ(r.chemical.antisites, 0u);
  EXPECT_LT(r.chemical.ordered_fraction, 0.05);
  double mean = 0;
  for (std::size_t i = 0; i < m.size(); ++i)
    if (std::isfinite(r.chemical.local_order[i])) mean += r.chemical.local_order[i];
  EXPECT_LT(std::abs(mean / static_cast<double>(r.chemical.defined)), 0.2);
  // Asked for, L1_0 is fitted all the same and its order parameter says there is none.
  const AnalysisResult forced = analyze(m, quick(LatticeType::l10));
  EXPECT_EQ(forced.fit.lattice.type, LatticeType::l10);
  EXPECT_LT(forced.chemical.order_parameter, 0.15);
}

TEST(ChemicalOrder, TwoOrderingVariantsAreToldApartAtomByAtom) {
  // One fcc sphere, species on alternating (001) planes where x < 0 and on alternating (100)
  // planes where x >= 0: two L1_0 domains with c at right angles.
  AtomModel m = particle("Pt", Shape::sphere, 12.0);
  const double a = lattice_a(m);
  for (std::size_t i = 0; i < m.size(); ++i) {
    const Vec3& p = m.positions[i];
    const double along = p.x() < 0 ? p.z() : p.x();
    m.species[i] = (std::llround(2 * along / a) & 1) ? "Pt" : "Fe";
  }
  const AnalysisResult r = analyze(m, quick(LatticeType::l10));
  ASSERT_TRUE(r.chemical.present());
  // All but the atoms whose averaged neighbourhood reaches across the boundary.
  EXPECT_GT(r.chemical.ordered_fraction, 0.7);
  // Axes of the fitted lattice, in the sample frame: c along whichever variant won.
  const Mat3& R = r.fit.lattice.orientation;
  std::size_t right = 0, wrong = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (r.chemical.local_axis[i] < 0 || r.chemical.local_order[i] < ChemicalOrder::kOrdered)
      continue;
    const Vec3 axis = R.col(r.chemical.local_axis[i]);
    const Vec3 expect = m.positions[i].x() < 0 ? Vec3::UnitZ() : Vec3::UnitX();
    // Neighbourhoods that reach across the boundary (and the next shell) are mixed.
    if (std::abs(m.positions[i].x()) < 0.75 * a) continue;
    (std::abs(axis.dot(expect)) > 0.999 ? right : wrong) += 1;
  }
  EXPECT_GT(right, 2 * m.size() / 5);
  EXPECT_EQ(wrong, 0u);
  EXPECT_NEAR(r.chemical.variant_fraction[0] + r.chemical.variant_fraction[1] +
                  r.chemical.variant_fraction[2],
              1.0, 1e-12);
  EXPECT_GT(std::min(std::max(r.chemical.variant_fraction[0], r.chemical.variant_fraction[1]),
                     r.chemical.variant_fraction[2]),
            0.35);
  // Against one L1_0 lattice, each domain's atoms are half on the wrong planes of the other's.
  EXPECT_LT(r.chemical.order_parameter, 0.7);
}

// Warren-Cowley short-range order: L1_0's unlike preference (-1/3 in the bulk: 8 unlike among 12
// neighbours against an even share), none at random, none for one species.
TEST(ChemicalOrder, WarrenCowleyShortRangeOrder) {
  const AtomModel ordered = fept(11.0, Eigen::Quaterniond::Identity());
  const AnalysisResult r = analyze(ordered, quick());
  ASSERT_EQ(r.short_range_order.size(), 2u);
  EXPECT_NEAR(r.short_range_order.at("Fe-Pt"), -1.0 / 3.0, 0.03);
  EXPECT_NEAR(r.short_range_order.at("Pt-Fe"), -1.0 / 3.0, 0.03);
  AtomModel shuffled = ordered;
  Rng rng(9);
  for (std::size_t i = shuffled.size(); i > 1; --i)
    std::swap(shuffled.species[i - 1], shuffled.species[rng.below(i)]);
  const AnalysisResult random = analyze(shuffled, quick());
  EXPECT_LT(std::abs(random.short_range_order.at("Fe-Pt")), 0.06);
  EXPECT_TRUE(analyze(particle("Pt", Shape::sphere, 8.0), quick()).short_range_order.empty());
  EXPECT_NEAR(r.json()["short_range_order"]["Fe-Pt"].get<double>(), r.short_range_order.at("Fe-Pt"),
              1e-12);
}

TEST(ChemicalOrder, OneSpeciesHasNoChemicalOrderAndCannotBeL10) {
  const AtomModel m = particle("Pt", Shape::sphere, 8.0);
  EXPECT_FALSE(analyze(m, quick()).chemical.present());
  try {
    analyze(m, quick(LatticeType::l10));
    ADD_FAILURE() << "an L1_0 fit of one species was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("two species"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_lattice("L1_0"), LatticeType::l10);
  EXPECT_EQ(parse_lattice("l10"), LatticeType::l10);
}

TEST(ChemicalOrder, TheXyzColumnsCarryTheOrder) {
  AtomModel m = fept(8.0, Eigen::Quaterniond::Identity());
  const AnalysisResult r = analyze(m, quick());
  add_analysis_properties(m, r);
  for (const char* name : {"local_order", "order_axis", "antisite"})
    EXPECT_NE(m.find_property(name), nullptr) << name;
  const Json j = r.json();
  EXPECT_EQ(j["lattice"]["type"].get<std::string>(), "l10");
  EXPECT_DOUBLE_EQ(j["chemical_order"]["order_parameter"].get<double>(), 1.0);
  EXPECT_NE(analysis_summary(r).find("order parameter 1"), std::string::npos)
      << analysis_summary(r);
}

}  // namespace
}  // namespace aet
