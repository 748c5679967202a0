// Atom tracing on volumes of planted Gaussian atoms (phantoms::ideal_volume): every atom found,
// none invented, positions to a few picometres, species separated, non-atoms removed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "aet/trace/classify.hpp"
#include "aet/trace/trace.hpp"
#include "trace/classify_detail.hpp"
#include "support/trace_fixtures.hpp"

namespace aet {
namespace {

using test::jittered_fcc;
using test::kSigma;
using test::kVoxel;
using test::make_volume;
using test::Match;
using test::match;
using test::Planted;
using test::pt_particle;
using test::z_weight;

void report(const char* what, const Match& m) {
  std::printf("[ trace    ] %s: matched %zu, missing %zu, extra %zu, rms %.2f pm, species %zu\n",
              what, m.matched, m.missing, m.extra, 100 * m.rms, m.species_ok);
}

TEST(Trace, RecoversPlantedAtomsToThreePicometres) {
  const Planted p = pt_particle(0.0, 11);
  ASSERT_GE(p.atoms.positions.size(), 50u);
  ASSERT_LE(p.atoms.positions.size(), 250u);
  const AtomModel traced = trace_atoms(p.volume, TraceOptions{});
  const Match m = match(p, traced);
  report("noise-free gaussian", m);
  EXPECT_EQ(m.missing, 0u);
  EXPECT_EQ(m.extra, 0u);
  EXPECT_LE(m.rms, 0.03);
  ASSERT_TRUE(traced.find_property("intensity"));
  ASSERT_TRUE(traced.find_property("fit_residual"));
  // The fitted peak's integral within the 1.4 A window: 97.8% of the planted weight (1) for an
  // atom of sigma 0.45 A.
  const double t = 1.4 / kSigma;
  const double inside =
      std::erf(t / std::sqrt(2.0)) - std::sqrt(2 / M_PI) * t * std::exp(-t * t / 2);
  for (double v : *traced.find_property("intensity")) EXPECT_NEAR(v, inside, 0.01);
  for (const auto& s : traced.species) EXPECT_EQ(s, "Pt");
}

TEST(Trace, RecoversPlantedAtomsWithNoise) {
  // Gaussian noise with sd 3% of the highest voxel.
  const Planted p = pt_particle(0.03, 12);
  const AtomModel traced = trace_atoms(p.volume, TraceOptions{});
  const Match m = match(p, traced);
  report("3% noise gaussian", m);
  EXPECT_EQ(m.missing, 0u);
  EXPECT_EQ(m.extra, 0u);
  EXPECT_LE(m.rms, 0.10);
}

TEST(Trace, PolynomialFit) {
  const Planted p = pt_particle(0.0, 13);
  TraceOptions opt;
  opt.fit = PeakFit::polynomial;
  const AtomModel traced = trace_atoms(p.volume, opt);
  const Match m = match(p, traced);
  report("noise-free polynomial", m);
  EXPECT_EQ(m.missing, 0u);
  EXPECT_EQ(m.extra, 0u);
  EXPECT_LE(m.rms, 0.06);
  const Planted noisy = pt_particle(0.03, 14);
  const Match mn = match(noisy, trace_atoms(noisy.volume, opt));
  report("3% noise polynomial", mn);
  EXPECT_EQ(mn.missing, 0u);
  EXPECT_EQ(mn.extra, 0u);
  EXPECT_LE(mn.rms, 0.15);
}

// Voxel-integrated Gaussian atoms with a width per axis (what a missing wedge along z makes of
// them, to first order), centred like trace_atoms' positions (index n // 2 is 0).
Array3 stretched_volume(const std::vector<Vec3>& pos, std::int64_t n, const double sigma[3]) {
  Array3 vol(n, n, n);
  vol.voxel_size = {kVoxel, kVoxel, kVoxel};
  const double c = static_cast<double>(n / 2);
  std::vector<double> prof[3];
  for (const auto& p : pos) {
    for (int a = 0; a < 3; ++a) {
      prof[a].assign(static_cast<std::size_t>(n), 0.0);
      for (std::int64_t i = 0; i < n; ++i) {
        const double lo = ((static_cast<double>(i) - c - 0.5) * kVoxel - p[a]) / sigma[a];
        const double hi = lo + kVoxel / sigma[a];
        prof[a][static_cast<std::size_t>(i)] =
            0.5 * (std::erf(hi / M_SQRT2) - std::erf(lo / M_SQRT2));
      }
    }
    for (std::int64_t z = 0; z < n; ++z)
      for (std::int64_t y = 0; y < n; ++y)
        for (std::int64_t x = 0; x < n; ++x)
          vol(x, y, z) += static_cast<float>(prof[0][static_cast<std::size_t>(x)] *
                                             prof[1][static_cast<std::size_t>(y)] *
                                             prof[2][static_cast<std::size_t>(z)]);
  }
  return vol;
}

TEST(Trace, PerAxisWidthsFollowAtomsStretchedAlongZ) {
  // Atoms twice as wide along z as across: the isotropic model leaves part of each neighbour's
  // stretched tail in the window and pulls the centres toward the neighbours (most at the
  // surface, where the pulls do not cancel); the per-axis fit models the tails it subtracts.
  Rng rng(71);
  const auto pos = jittered_fcc(3.6, 7.5, 0.05, rng);
  Planted truth;
  truth.atoms.positions = pos;
  truth.species.assign(pos.size(), "Pt");
  const double sigma[3] = {0.4, 0.4, 0.8};
  const Array3 vol = stretched_volume(pos, 56, sigma);
  TraceOptions iso;
  TraceOptions axes;
  axes.fit = PeakFit::gaussian_axes;
  const Match mi = match(truth, trace_atoms(vol, iso));
  const AtomModel traced = trace_atoms(vol, axes);
  const Match ma = match(truth, traced);
  report("z-stretched, gaussian", mi);
  report("z-stretched, gaussian-axes", ma);
  EXPECT_EQ(ma.missing, 0u);
  EXPECT_EQ(ma.extra, 0u);
  EXPECT_LE(ma.rms, 0.004);
  // The case is one the isotropic model gets wrong, or this test would show nothing.
  EXPECT_GE(mi.rms, 3 * ma.rms);
  // The common shape, recorded: widths over their geometric mean.
  const std::string* shape = traced.find_info("trace_atom_shape");
  ASSERT_TRUE(shape);
  double r[3];
  ASSERT_EQ(std::sscanf(shape->c_str(), "%lf %lf %lf", &r[0], &r[1], &r[2]), 3);
  const double m = std::cbrt(sigma[0] * sigma[1] * sigma[2]);
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(r[a], sigma[a] / m, 0.02) << "axis " << a;
  // Round atoms keep a round shape.
  const Planted round = pt_particle(0.0, 72);
  const AtomModel traced_round = trace_atoms(round.volume, axes);
  EXPECT_LE(match(round, traced_round).rms, 0.03);
  ASSERT_EQ(std::sscanf(traced_round.find_info("trace_atom_shape")->c_str(), "%lf %lf %lf", &r[0],
                        &r[1], &r[2]),
            3);
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(r[a], 1.0, 0.02) << "axis " << a;
}

TEST(Trace, SeparatesTwoSpecies) {
  Rng rng(21);
  const auto pos = jittered_fcc(3.8, 7.5, 0.05, rng);
  std::vector<std::string> species;
  for (std::size_t i = 0; i < pos.size(); ++i) species.push_back(rng.uniform() < 0.5 ? "Fe" : "Pt");
  for (double noise : {0.0, 0.02}) {
    const Planted p = make_volume(pos, species, 56, noise, 22);
    TraceOptions opt;
    opt.elements = {"Fe", "Pt"};
    const AtomModel traced = trace_atoms(p.volume, opt);
    const Match m = match(p, traced);
    report(noise > 0 ? "Fe/Pt 2% noise" : "Fe/Pt noise-free", m);
    EXPECT_EQ(m.missing, 0u);
    EXPECT_EQ(m.extra, 0u);
    EXPECT_GE(static_cast<double>(m.species_ok), 0.98 * static_cast<double>(pos.size()));
    if (noise == 0) {
      EXPECT_LE(m.rms, 0.03);
    }
  }
}

// The classification failure of an FePt reconstruction: the light species spreads widely below
// its mean (surface atoms, atoms beside heavy ones) while a hundred weak noise peaks form a narrow
// class near zero. k-means cuts halfway between the two centres, inside the Fe spread, and drops
// the weaker Fe (13 of 67 here); the cut in the widest empty interval keeps them all.
TEST(Trace, KeepsWeakLightAtomsBesideManyNoisePeaks) {
  Rng rng(81);
  const auto pos = jittered_fcc(3.8, 7.5, 0.05, rng);
  std::vector<std::string> species;
  Planted p;
  p.atoms.positions = pos;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    species.push_back(i % 2 ? "Fe" : "Pt");
    // Fe from 70% to 170% of its nominal weight, Pt within 5%.
    const double spread = i % 2 ? rng.uniform(0.7, 1.7) : rng.uniform(0.95, 1.05);
    p.atoms.weight.push_back(spread * z_weight(species.back()));
    p.atoms.sigma.push_back(kSigma);
  }
  p.species = species;
  // 100 noise peaks of 5.5-6.5% of a Pt atom (around the candidate cut) in a shell around the
  // particle, at least 2.4 A from every atom and from each other.
  std::size_t noise_peaks = 0;
  for (int tries = 0; tries < 100000 && noise_peaks < 100; ++tries) {
    const Vec3 q(rng.uniform(-11.5, 11.5), rng.uniform(-11.5, 11.5), rng.uniform(-11.5, 11.5));
    if (q.norm() > 11.5 || q.norm() < 9.5) continue;
    bool clear = true;
    for (const auto& a : p.atoms.positions) clear = clear && (a - q).norm() >= 2.4;
    if (!clear) continue;
    p.atoms.positions.push_back(q);
    p.atoms.weight.push_back(rng.uniform(0.055, 0.065));
    p.atoms.sigma.push_back(kSigma);
    ++noise_peaks;
  }
  ASSERT_EQ(noise_peaks, 100u);
  p.volume = phantoms::ideal_volume(p.atoms, 72, 72, 72, kVoxel);
  TraceOptions opt;
  opt.elements = {"Fe", "Pt"};
  const AtomModel traced = trace_atoms(p.volume, opt);
  Planted truth;
  truth.atoms.positions = pos;
  truth.species = species;
  const Match m = match(truth, traced);
  report("Fe/Pt, Fe weights 70-170%, 100 noise peaks", m);
  EXPECT_EQ(m.missing, 0u);
  EXPECT_EQ(m.extra, 0u);
  EXPECT_GE(std::stoi(*traced.find_info("trace_non_atoms")), 90);  // a few are below the cut
  EXPECT_GE(static_cast<double>(m.species_ok), 0.98 * static_cast<double>(pos.size()));
  EXPECT_LE(m.rms, 0.03);
  std::printf("[ trace    ] %s\n", traced.find_info("trace_classes")->c_str());
}

// A species missing from --elements: Fe atoms traced as if only Pt were there all fall into the
// non-atom class, a population as tight as a species' atoms and well above the noise; the trace
// says so (trace_warning) and names a lighter species. With Fe listed, nothing is said.
TEST(Trace, WarnsOfALighterSpeciesMissingFromElements) {
  Rng rng(23);
  const auto pos = jittered_fcc(3.8, 7.5, 0.05, rng);
  std::vector<std::string> species;
  std::size_t fe = 0;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    species.push_back(rng.uniform() < 0.5 ? "Fe" : "Pt");
    fe += species.back() == "Fe";
  }
  const Planted p = make_volume(pos, species, 56, 0.02, 24);
  TraceOptions opt;
  opt.elements = {"Pt"};
  const AtomModel pt_only = trace_atoms(p.volume, opt);
  const std::string* w = pt_only.find_info("trace_warning");
  ASSERT_NE(w, nullptr) << *pt_only.find_info("trace_classes");
  EXPECT_NE(w->find("lighter than Pt"), std::string::npos) << *w;
  EXPECT_NE(w->find(std::to_string(fe) + " peaks"), std::string::npos) << fe << ": " << *w;
  opt.elements = {"Fe", "Pt"};
  const AtomModel both = trace_atoms(p.volume, opt);
  EXPECT_EQ(both.find_info("trace_warning"), nullptr) << *both.find_info("trace_warning");
  EXPECT_EQ(both.size(), pos.size());
}

// The rule on its own: lognormal noise peaks (spread over a factor of several) are not a species,
// with or without a tight group among them too small to be one; a tight group of a tenth of the
// atoms or more above them is.
TEST(Classify, OnlyATightNumerousGroupOfNonAtomsIsAMissingSpecies) {
  Rng rng(5);
  std::vector<double> intensity;
  std::vector<int> cls;
  for (int i = 0; i < 400; ++i) {  // atoms of the listed species
    intensity.push_back(rng.normal(1.0, 0.03));
    cls.push_back(1);
  }
  for (int i = 0; i < 500; ++i) {  // noise peaks around 2 % of an atom, log-sd 0.6
    intensity.push_back(0.02 * std::exp(rng.normal(0, 0.6)));
    cls.push_back(0);
  }
  const std::vector<std::string> pt = {"Pt"};
  EXPECT_EQ(detail::unlisted_species_warning(intensity, cls, pt), "");
  auto with_group = [&](int n) {
    std::vector<double> x = intensity;
    std::vector<int> c = cls;
    for (int i = 0; i < n; ++i) {
      x.push_back(0.15 * std::exp(rng.normal(0, 0.1)));
      c.push_back(0);
    }
    return detail::unlisted_species_warning(x, c, pt);
  };
  EXPECT_EQ(with_group(20), "");  // 20 peaks: under a tenth of the 400 atoms
  const std::string w = with_group(200);
  ASSERT_EQ(w.rfind("trace: ", 0), 0u) << w;
  // The group's size as the mixture weighs it, its share and the atomic number it suggests
  // (Z^1.7 contrast: 78 * 0.15^(1/1.7) = 25).
  const int count = std::stoi(w.substr(7));
  EXPECT_GE(count, 180) << w;
  EXPECT_LE(count, 220) << w;
  EXPECT_NE(w.find("15% of the intensity of Pt"), std::string::npos) << w;
  const int z = std::stoi(w.substr(w.find("about ") + 6));
  EXPECT_GE(z, 24) << w;
  EXPECT_LE(z, 27) << w;
}

TEST(Trace, MinimumDistanceMergesClosePeaks) {
  phantoms::GaussianAtoms atoms;
  atoms.positions = {Vec3(0.0, 0.0, 0.0), Vec3(1.2, 0.1, 0.0), Vec3(-4.0, 3.0, 1.0)};
  atoms.weight = {1.0, 0.9, 1.0};
  atoms.sigma = {kSigma, kSigma, kSigma};
  const Array3 vol = phantoms::ideal_volume(atoms, 40, 40, 40, kVoxel);
  TraceOptions opt;
  opt.min_distance = 2.0;
  const AtomModel traced = trace_atoms(vol, opt);
  ASSERT_EQ(traced.size(), 2u);
  // The isolated atom is still exact; the pair became one atom between or on its members.
  std::size_t lone = (traced.positions[0] - atoms.positions[2]).norm() < 0.1 ? 0 : 1;
  EXPECT_LT((traced.positions[lone] - atoms.positions[2]).norm(), 0.03);
  EXPECT_LT(traced.positions[1 - lone].norm(), 1.5);
  // With a smaller minimum distance the two close atoms are both found.
  opt.min_distance = 1.0;
  EXPECT_EQ(trace_atoms(vol, opt).size(), 3u);
}

TEST(Trace, RemovesWeakNonAtoms) {
  Rng rng(31);
  auto pos = jittered_fcc(3.6, 7.0, 0.05, rng);
  const std::size_t n_atoms = pos.size();
  std::vector<std::string> species(n_atoms, "Pt");
  Planted p;
  p.atoms.positions = pos;
  p.atoms.weight.assign(n_atoms, 1.0);
  p.atoms.sigma.assign(n_atoms, kSigma);
  // Weak blobs (10% of an atom) outside the particle, well apart from it and from each other.
  for (int k = 0; k < 12; ++k) {
    const double phi = 2 * 3.14159265 * k / 12.0;
    p.atoms.positions.push_back(
        Vec3(10.5 * std::cos(phi), 10.5 * std::sin(phi), k % 2 ? 3.0 : -3.0));
    p.atoms.weight.push_back(0.1);
    p.atoms.sigma.push_back(kSigma);
  }
  p.volume = phantoms::ideal_volume(p.atoms, 72, 72, 72, kVoxel);
  const AtomModel traced = trace_atoms(p.volume, TraceOptions{});
  Planted truth;
  truth.atoms.positions = pos;
  truth.species = species;
  const Match m = match(truth, traced);
  report("with 12 weak blobs", m);
  EXPECT_EQ(m.missing, 0u);
  EXPECT_EQ(m.extra, 0u);
  EXPECT_EQ(traced.size(), n_atoms);
  EXPECT_EQ(*traced.find_info("trace_non_atoms"), "12");
}

TEST(Trace, SingleSpeciesKeepsEveryAtomWithoutWeakPeaks) {
  // The lowest k-means class is only dropped when it is a separate population: a clean particle
  // loses nothing, although its intensities split into two classes by k-means.
  const Planted p = pt_particle(0.0, 41);
  const AtomModel traced = trace_atoms(p.volume, TraceOptions{});
  EXPECT_EQ(traced.size(), p.atoms.positions.size());
  EXPECT_EQ(*traced.find_info("trace_non_atoms"), "0");
}

TEST(Trace, DeterministicAcrossRuns) {
  const Planted p = pt_particle(0.03, 51);
  const AtomModel a = trace_atoms(p.volume, TraceOptions{});
  const AtomModel b = trace_atoms(p.volume, TraceOptions{});
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.positions[i], b.positions[i]);
}

TEST(Trace, VoxelSizeRoundedToFloatTracesTheSame) {
  // MRC headers store the voxel size as float32, and a header's cell / count gives 0.35 A back as
  // 0.34999999 or 0.35000002. The default 1.4 A fit radius is exactly 4 voxels at 0.35 A: a window
  // that shrank to 3 voxels with the header's last bit would move every fitted atom (and change
  // the atom count of a marginal volume).
  const Planted p = pt_particle(0.03, 52);
  const float v = static_cast<float>(kVoxel);
  const std::vector<double> sizes = {kVoxel, static_cast<double>(v),
                                     static_cast<double>(std::nextafter(v, 1.0f))};
  std::vector<AtomModel> traced;
  for (double s : sizes) {
    Array3 vol = p.volume;
    vol.voxel_size = VoxelSize{s, s, s};
    traced.push_back(trace_atoms(vol, TraceOptions{}));
  }
  for (std::size_t k = 1; k < traced.size(); ++k) {
    ASSERT_EQ(traced[k].size(), traced[0].size());
    double se = 0;
    for (std::size_t i = 0; i < traced[0].size(); ++i) {
      se += (traced[k].positions[i] - traced[0].positions[i]).squaredNorm();
      EXPECT_EQ(traced[k].species[i], traced[0].species[i]);
    }
    const double rms = std::sqrt(se / static_cast<double>(traced[0].size()));
    const double width = std::stod(*traced[k].find_info("trace_atom_width"));
    std::printf(
        "[ trace    ] voxel size %.9g: positions %.2g A RMS from those at 0.35, width %.6f A\n",
        sizes[k], rms, width);
    // A 3-voxel window moved the positions by 2.3e-4 A RMS and the width by 1e-3 A.
    EXPECT_LT(rms, 1e-4);
    EXPECT_NEAR(width, std::stod(*traced[0].find_info("trace_atom_width")), 1e-5);
  }
}

TEST(Trace, PositionsAreCentredOnTheRotationCentre) {
  // One atom at a known offset in an odd-sized volume: centre index n // 2 is the origin.
  phantoms::GaussianAtoms atoms;
  atoms.positions = {Vec3(0.7, -1.1, 0.2)};
  atoms.weight = {1.0};
  atoms.sigma = {kSigma};
  Array3 vol = phantoms::ideal_volume(atoms, 31, 33, 29, kVoxel);
  const AtomModel traced = trace_atoms(vol, TraceOptions{});
  ASSERT_EQ(traced.size(), 1u);
  EXPECT_LT((traced.positions[0] - atoms.positions[0]).norm(), 0.005);
}

TEST(Trace, BadInputThrows) {
  const Planted p = pt_particle(0.0, 61);
  EXPECT_THROW(trace_atoms(Array3(), TraceOptions{}), InputError);
  TraceOptions opt;
  opt.min_distance = 0;
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  opt.min_distance = -1;
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  opt = TraceOptions{};
  opt.elements = {"Xx"};
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  opt.elements = {};
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  opt = TraceOptions{};
  opt.threshold = 1.5;
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  opt = TraceOptions{};
  opt.fit_radius = -1;
  EXPECT_THROW(trace_atoms(p.volume, opt), InputError);
  Array3 nan = p.volume;
  nan(3, 4, 5) = std::nanf("");
  EXPECT_THROW(trace_atoms(nan, TraceOptions{}), InputError);
  EXPECT_THROW(parse_peak_fit("cubic"), InputError);
}

// One absurd peak (a hot voxel ten thousand times an atom's peak, far from the particle, as a
// diverged fit or a detector spike gives) must not flip the classification of the real atoms.
TEST(Trace, OneAbsurdPeakDoesNotFlipTheClassification) {
  Planted p = pt_particle(0.02, 5);
  float peak = 0;
  for (std::size_t i = 0; i < p.volume.size(); ++i) peak = std::max(peak, p.volume.data()[i]);
  p.volume(4, 5, 50) = 1e4f * peak;  // a corner far outside the particle (radius 7.5 A)
  TraceOptions opt;
  opt.elements = {"Pt"};
  const AtomModel m = trace_atoms(p.volume, opt);
  const Match r = match(p, m);
  EXPECT_EQ(r.missing, 0u) << "matched " << r.matched << " of " << p.species.size();
  EXPECT_LE(r.extra, 1u);  // the spike itself may be traced as an atom
  EXPECT_LT(r.rms, 0.05);
}

// A few bright atoms among many (a film's edge atoms that gather material from outside the box:
// 9 of 765 at 5.7 times the rest on the real Ta film) are not the only atoms: no class of
// non-atoms is made of the rest. Weak noise peaks beside real atoms still are one.
TEST(Classify, AFewBrightPeaksDoNotMakeTheRestNonAtoms) {
  Rng rng(3);
  std::vector<double> w;
  for (int i = 0; i < 756; ++i) w.push_back(63000 * (1 + 0.12 * rng.normal()));
  for (int i = 0; i < 9; ++i) w.push_back(358000 * (1 + 0.05 * rng.normal()));
  AtomModel m;
  for (std::size_t i = 0; i < w.size(); ++i) m.add("Ta", Vec3(3.0 * i, 0, 0));
  const ClassifyResult r = classify_atoms(m, w, {"Ta"});
  EXPECT_EQ(r.removed, 0) << r.how;
  EXPECT_EQ(m.size(), w.size());
  EXPECT_NE(r.how.find("too few to be the atoms"), std::string::npos) << r.how;

  std::vector<double> v;
  for (int i = 0; i < 300; ++i) v.push_back(60000 * (1 + 0.1 * rng.normal()));
  for (int i = 0; i < 200; ++i) v.push_back(6000 * (1 + 0.3 * rng.normal()));
  AtomModel n;
  for (std::size_t i = 0; i < v.size(); ++i) n.add("Ta", Vec3(3.0 * i, 0, 0));
  const ClassifyResult q = classify_atoms(n, v, {"Ta"});
  EXPECT_EQ(q.removed, 200) << q.how;
}

// Noise peaks and atoms whose intensities touch (a measured film: about a thousand noise peaks
// and five hundred atoms, log-normal, the two modes a factor 3 apart with no empty gap between
// them). The cut goes where the two populations meet, the valley of their density; the widest
// empty interval between the class centres is an accident of sampling that fell among the atoms
// (on the real Ta film it removed half of them).
TEST(Classify, TouchingNoiseAndAtomsAreCutAtTheirValley) {
  Rng rng(11);
  std::vector<double> v;
  for (int i = 0; i < 900; ++i) v.push_back(20000 * std::exp(0.45 * rng.normal()));
  for (int i = 0; i < 500; ++i) v.push_back(60000 * std::exp(0.2 * rng.normal()));
  AtomModel m;
  for (std::size_t i = 0; i < v.size(); ++i) m.add("Ta", Vec3(3.0 * i, 0, 0));
  const ClassifyResult r = classify_atoms(m, v, {"Ta"});
  ASSERT_NE(r.how.find("density valley"), std::string::npos) << r.how;
  // Each atom sits at x = 3 i: i >= 900 is an atom of the truth.
  std::size_t atoms_kept = 0;
  for (std::size_t i = 0; i < m.size(); ++i) atoms_kept += m.positions[i].x() >= 3.0 * 900 - 1;
  const double recall = static_cast<double>(atoms_kept) / 500;
  const double precision = static_cast<double>(atoms_kept) / static_cast<double>(m.size());
  // The Bayes cut of these two populations (42,000) gives recall 0.96 and precision 0.92 in
  // expectation; a cut at the atoms' centre (60,000) loses half of them.
  EXPECT_GE(recall, 0.93) << r.how;
  EXPECT_GE(precision, 0.88) << r.how;
}

}  // namespace
}  // namespace aet
