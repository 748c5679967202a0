// The analytic tilt-series simulator: geometry convention, exact intensity bookkeeping, noise
// statistics, imperfections and reproducibility. CPU only (the CUDA projector is compared with
// this one in test_simulator_gpu.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "project_atoms_detail.hpp"

namespace aet::phantoms {
namespace {

constexpr double kPi = 3.14159265358979323846;

GaussianAtoms one_atom(const Vec3& p, double weight = 1.0, double sigma = 0.2) {
  GaussianAtoms a;
  a.positions = {p};
  a.weight = {weight};
  a.sigma = {sigma};
  return a;
}

ImagingModel plain_probe(double probe_sigma = 0.3) {
  ImagingModel im;
  im.probe_sigma = probe_sigma;
  im.tail_fraction = 0.0;
  return im;
}

double view_sum(const Array3& a, std::int64_t k) {
  const float* v = a.slice(k);
  double s = 0.0;
  for (std::int64_t p = 0; p < a.nx() * a.ny(); ++p) s += v[p];
  return s;
}

struct Peak {
  std::int64_t i = 0, j = 0;
  double u = 0, v = 0;  // intensity centroid in view coordinates (Angstrom)
};

// Brightest pixel and centroid of view k, pixel centres at ((i - nx/2) a, (j - ny/2) a).
Peak find_peak(const Array3& a, std::int64_t k, double pixel) {
  Peak pk;
  float best = -std::numeric_limits<float>::infinity();
  double s = 0, su = 0, sv = 0;
  for (std::int64_t j = 0; j < a.ny(); ++j)
    for (std::int64_t i = 0; i < a.nx(); ++i) {
      const float val = a(i, j, k);
      if (val > best) {
        best = val;
        pk.i = i;
        pk.j = j;
      }
      s += val;
      su += val * static_cast<double>(i - a.nx() / 2) * pixel;
      sv += val * static_cast<double>(j - a.ny() / 2) * pixel;
    }
  pk.u = su / s;
  pk.v = sv / s;
  return pk;
}

// A small cluster of Pt atoms (for simulate_tilt_series), all within 4 A of the centre.
AtomModel small_cluster() {
  AtomModel m;
  const double d = 2.77;  // Pt nearest-neighbour distance
  for (int x = -1; x <= 1; ++x)
    for (int y = -1; y <= 1; ++y)
      for (int z = -1; z <= 1; ++z)
        if ((x + y + z) % 2 == 0) m.add("Pt", Vec3(x, y, z) * (d / std::sqrt(2.0)));
  return m;
}

// ---- geometry convention ---------------------------------------------------------------------

TEST(ProjectAtoms, PeakLandsWherePredictedForSeveralEulerAngles) {
  const Vec3 p(3.1, -2.2, 4.7);
  const double a = 0.4;
  const std::int64_t n = 64;
  const std::vector<Euler> angles = {{0, -60, 0}, {0, -20, 0},   {0, 0, 0},    {0, 35, 0},
                                     {0, 70, 0},  {30, 40, -20}, {-75, 10, 60}};
  TiltGeometry views;
  for (const Euler& e : angles) views.push_back(ViewGeometry::from_euler(e));
  const Array3 img = detail::project_atoms_cpu(one_atom(p), views, n, n, a, plain_probe());
  EXPECT_EQ(img.nz(), static_cast<std::int64_t>(angles.size()));
  EXPECT_DOUBLE_EQ(img.voxel_size.x, a);
  EXPECT_DOUBLE_EQ(img.voxel_size.y, a);
  for (std::size_t k = 0; k < angles.size(); ++k) {
    SCOPED_TRACE("euler (" + std::to_string(angles[k].phi) + ", " +
                 std::to_string(angles[k].theta) + ", " + std::to_string(angles[k].psi) + ")");
    const Vec3 q = rotation_from_euler(angles[k]) * p;
    const Peak pk = find_peak(img, static_cast<std::int64_t>(k), a);
    EXPECT_EQ(pk.i, std::lround(q.x() / a) + n / 2);
    EXPECT_EQ(pk.j, std::lround(q.y() / a) + n / 2);
    EXPECT_NEAR(pk.u, q.x(), 0.02);
    EXPECT_NEAR(pk.v, q.y(), 0.02);
  }
}

TEST(ProjectAtoms, HandWorkedTiltOfThirtyDegrees) {
  // Single-axis +30 deg about y: u = x cos30 - z sin30, v = y. An atom on the z axis at +5 A must
  // appear at u = -2.5 A (pixel 32 - 6 = 26 at 0.4 A); a flipped sign would put it at pixel 38.
  const double a = 0.4;
  const Array3 img = detail::project_atoms_cpu(
      one_atom(Vec3(0, 0, 5)), {ViewGeometry::from_tilt(30.0)}, 64, 64, a, plain_probe());
  const Peak pk = find_peak(img, 0, a);
  EXPECT_EQ(pk.i, 26);
  EXPECT_EQ(pk.j, 32);
  EXPECT_NEAR(pk.u, -2.5, 0.02);
  EXPECT_NEAR(pk.v, 0.0, 0.02);

  // And a general point: (3.1, -2.2, 4.7) -> u = 3.1 cos30 - 4.7 sin30 = 0.33468, v = -2.2.
  const Array3 img2 = detail::project_atoms_cpu(
      one_atom(Vec3(3.1, -2.2, 4.7)), {ViewGeometry::from_tilt(30.0)}, 64, 64, a, plain_probe());
  const Peak pk2 = find_peak(img2, 0, a);
  EXPECT_NEAR(pk2.u, 3.1 * std::cos(kPi / 6) - 4.7 * std::sin(kPi / 6), 0.02);
  EXPECT_NEAR(pk2.v, -2.2, 0.02);
}

TEST(ProjectAtoms, SingleAxisAndEulerFormsAgree) {
  const GaussianAtoms atoms = one_atom(Vec3(3.1, -2.2, 4.7));
  for (double theta : {-60.0, -20.0, 0.0, 35.0, 70.0}) {
    const Array3 a = detail::project_atoms_cpu(atoms, {ViewGeometry::from_tilt(theta)}, 48, 40, 0.4,
                                               plain_probe());
    const Array3 b = detail::project_atoms_cpu(
        atoms, {ViewGeometry::from_euler(Euler{0, theta, 0})}, 48, 40, 0.4, plain_probe());
    EXPECT_EQ(a.vector(), b.vector()) << "theta " << theta;
  }
}

TEST(ProjectAtoms, ShiftMovesThePeakByWholePixels) {
  const double a = 0.4;
  const GaussianAtoms atoms = one_atom(Vec3(1.0, 0.5, -2.0));
  const ViewGeometry g0 = ViewGeometry::from_euler(Euler{20, 30, 10});
  ViewGeometry g1 = g0;
  g1.shift = Vec2(2 * a, -3 * a);  // +2 pixels in u, -3 in v
  const Array3 img = detail::project_atoms_cpu(atoms, {g0, g1}, 64, 64, a, plain_probe());
  const Peak p0 = find_peak(img, 0, a), p1 = find_peak(img, 1, a);
  EXPECT_EQ(p1.i, p0.i + 2);
  EXPECT_EQ(p1.j, p0.j - 3);
  EXPECT_NEAR(p1.u - p0.u, 2 * a, 1e-4);
  EXPECT_NEAR(p1.v - p0.v, -3 * a, 1e-4);
  // Pixel by pixel the image is the same, moved.
  double worst = 0.0, peak = 0.0;
  for (std::int64_t j = 10; j < 54; ++j)
    for (std::int64_t i = 10; i < 54; ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(img(i + 2, j - 3, 1)) - img(i, j, 0)));
      peak = std::max(peak, static_cast<double>(img(i, j, 0)));
    }
  EXPECT_LT(worst, 1e-5 * peak);
}

// ---- intensity bookkeeping -------------------------------------------------------------------

TEST(ProjectAtoms, EveryViewSumsToTheTotalWeightWithAProbeTail) {
  GaussianAtoms atoms;
  const std::vector<Vec3> pos = {{0, 0, 0},        {2.1, -1.3, 0.4},   {-3.0, 2.2, 1.5},
                                 {1.1, 3.3, -2.9}, {-2.5, -2.5, -2.5}, {4.0, 0.3, 1.9},
                                 {0.2, -4.1, 3.0}, {-1.7, 1.0, -4.2}};
  for (std::size_t i = 0; i < pos.size(); ++i) {
    atoms.positions.push_back(pos[i]);
    atoms.weight.push_back(0.5 + 0.25 * static_cast<double>(i));
    atoms.sigma.push_back(0.1 + 0.03 * static_cast<double>(i));
  }
  const double total = std::accumulate(atoms.weight.begin(), atoms.weight.end(), 0.0);
  ImagingModel im;
  im.probe_sigma = 0.35;
  im.tail_fraction = 0.2;
  im.tail_sigma = 3.0;
  // Particle radius < 6 A, tail cut at 7 x 3 = 21 A: a 64 A field holds everything.
  TiltGeometry views;
  for (const Euler& e : std::vector<Euler>{{0, -70, 0}, {0, 0, 0}, {0, 45, 0}, {30, 40, -20}})
    views.push_back(ViewGeometry::from_euler(e, Vec2(0.37, -0.81)));
  const Array3 img = detail::project_atoms_cpu(atoms, views, 160, 160, 0.4, im);
  for (std::int64_t k = 0; k < img.nz(); ++k)
    EXPECT_NEAR(view_sum(img, k) / total, 1.0, 1e-4) << "view " << k;

  // Point atoms (no width) with a probe: the same bookkeeping holds.
  GaussianAtoms points = atoms;
  std::fill(points.sigma.begin(), points.sigma.end(), 0.0);
  const Array3 img2 = detail::project_atoms_cpu(points, views, 160, 160, 0.4, im);
  for (std::int64_t k = 0; k < img2.nz(); ++k)
    EXPECT_NEAR(view_sum(img2, k) / total, 1.0, 1e-4) << "view " << k;
}

TEST(ProjectAtoms, AtomOutsideTheFieldContributesNothing) {
  const Array3 img = detail::project_atoms_cpu(
      one_atom(Vec3(100, 0, 0)), {ViewGeometry::from_tilt(0)}, 32, 32, 0.4, plain_probe());
  EXPECT_EQ(view_sum(img, 0), 0.0);
}

TEST(ProjectAtoms, IdealVolumeSumsToTotalWeightAndPeaksAtTheAtom) {
  GaussianAtoms atoms = one_atom(Vec3(1.2, -0.8, 2.0), 2.5, 0.3);
  atoms.positions.push_back(Vec3(-3.0, 2.1, -1.1));
  atoms.weight.push_back(1.5);
  atoms.sigma.push_back(0.25);
  const double voxel = 0.4;
  const Array3 vol = ideal_volume(atoms, 48, 40, 44, voxel);
  EXPECT_DOUBLE_EQ(vol.voxel_size.z, voxel);
  double sum = 0.0;
  for (float v : vol.vector()) sum += v;
  EXPECT_NEAR(sum / 4.0, 1.0, 1e-4);
  // The brightest voxel is the one that holds the heavier atom: (1.2, -0.8, 2.0) / 0.4 + n/2.
  const auto it = std::max_element(vol.vector().begin(), vol.vector().end());
  const auto idx = static_cast<std::int64_t>(it - vol.vector().begin());
  EXPECT_EQ(idx % 48, 24 + 3);
  EXPECT_EQ((idx / 48) % 40, 20 - 2);
  EXPECT_EQ(idx / (48 * 40), 22 + 5);
  // An atom of zero width lands in one voxel, entirely.
  const Array3 point = ideal_volume(one_atom(Vec3(0.45, 0, -0.1), 3.0, 0.0), 16, 16, 16, voxel);
  EXPECT_FLOAT_EQ(point(8 + 1, 8, 8), 3.0f);
  double rest = 0.0;
  for (float v : point.vector()) rest += v;
  EXPECT_FLOAT_EQ(static_cast<float>(rest), 3.0f);
}

TEST(ProjectAtoms, BadInputsAreRejected) {
  const GaussianAtoms atoms = one_atom(Vec3(0, 0, 0));
  const TiltGeometry views = {ViewGeometry::from_tilt(0)};
  const ImagingModel im = plain_probe();
  EXPECT_THROW(detail::project_atoms_cpu(atoms, views, 0, 16, 0.4, im), InputError);
  EXPECT_THROW(detail::project_atoms_cpu(atoms, views, 16, 16, -0.4, im), InputError);
  EXPECT_THROW(detail::project_atoms_cpu(atoms, {}, 16, 16, 0.4, im), InputError);
  GaussianAtoms bad = atoms;
  bad.sigma.push_back(1.0);
  EXPECT_THROW(detail::project_atoms_cpu(bad, views, 16, 16, 0.4, im), InputError);
  bad = atoms;
  bad.positions[0].x() = std::nan("");
  EXPECT_THROW(detail::project_atoms_cpu(bad, views, 16, 16, 0.4, im), InputError);
  ImagingModel bad_im = im;
  bad_im.tail_fraction = 1.5;
  EXPECT_THROW(detail::project_atoms_cpu(atoms, views, 16, 16, 0.4, bad_im), InputError);
  EXPECT_THROW(ideal_volume(atoms, 16, 16, 16, 0.0), InputError);
}

TEST(ProjectAtoms, ResultDoesNotDependOnTheThreadCount) {
  GaussianAtoms atoms;
  for (int i = 0; i < 40; ++i) {
    atoms.positions.push_back(Vec3(std::sin(i * 1.3) * 5, std::cos(i * 0.7) * 5, (i % 7) - 3.0));
    atoms.weight.push_back(1.0 + 0.01 * i);
    atoms.sigma.push_back(0.2);
  }
  ImagingModel im = plain_probe();
  im.tail_fraction = 0.1;
  TiltGeometry views;
  for (int k = 0; k < 9; ++k) views.push_back(ViewGeometry::from_tilt(-60.0 + 15.0 * k));
  const Array3 one = detail::project_atoms_cpu(atoms, views, 48, 48, 0.35, im, 1);
  const Array3 three = detail::project_atoms_cpu(atoms, views, 48, 48, 0.35, im, 3);
  const Array3 many = detail::project_atoms_cpu(atoms, views, 48, 48, 0.35, im, 16);
  EXPECT_EQ(one.vector(), three.vector());
  EXPECT_EQ(one.vector(), many.vector());
  // The dispatcher's cpu path is the same computation.
  const Array3 dispatched = project_atoms(atoms, views, 48, 48, 0.35, im, Device{});
  EXPECT_EQ(one.vector(), dispatched.vector());
}

// ---- intensity model -------------------------------------------------------------------------

TEST(SimulatorModel, WeightsAndWidthsFollowTheImagingModel) {
  AtomModel m;
  m.add("Pt", Vec3(0, 0, 0));
  m.add("Au", Vec3(1, 0, 0));
  m.add("Ni", Vec3(2, 0, 0));
  ImagingModel im;
  const GaussianAtoms g = gaussian_atoms(m, im);
  ASSERT_EQ(g.weight.size(), 3u);
  EXPECT_NEAR(g.weight[0], im.scale * std::pow(78.0, im.z_exponent), 1e-15);
  EXPECT_NEAR(g.weight[1], im.scale * std::pow(79.0, im.z_exponent), 1e-15);
  EXPECT_NEAR(g.weight[2], im.scale * std::pow(28.0, im.z_exponent), 1e-15);
  EXPECT_NEAR(g.sigma[0], std::sqrt(im.b_factor / (8 * kPi * kPi)), 1e-15);

  // Per-atom properties win; a B of 0 means "use the default".
  m.property("weight") = {2.0, 3.0, 4.0};
  m.property("b_factor") = {0.0, 8.0, 2.0};
  const GaussianAtoms h = gaussian_atoms(m, im);
  EXPECT_EQ(h.weight, (std::vector<double>{2.0, 3.0, 4.0}));
  EXPECT_NEAR(h.sigma[0], std::sqrt(im.b_factor / (8 * kPi * kPi)), 1e-15);
  EXPECT_NEAR(h.sigma[1], std::sqrt(8.0 / (8 * kPi * kPi)), 1e-15);

  m.property("b_factor")[2] = -1.0;
  EXPECT_THROW(gaussian_atoms(m, im), InputError);
  m.property("b_factor")[2] = std::nan("");
  EXPECT_THROW(gaussian_atoms(m, im), InputError);

  AtomModel point;
  point.add("Pt", Vec3(0, 0, 0));
  ImagingModel sharp;
  sharp.b_factor = 0.0;
  EXPECT_EQ(gaussian_atoms(point, sharp).sigma[0], 0.0);  // the probe still gives it a width
  sharp.probe_sigma = 0.0;
  EXPECT_THROW(gaussian_atoms(point, sharp), InputError);
  ImagingModel negative;
  negative.b_factor = -2.0;
  EXPECT_THROW(gaussian_atoms(point, negative), InputError);

  AtomModel unknown;
  unknown.add("Xx", Vec3(0, 0, 0));
  EXPECT_THROW(gaussian_atoms(unknown, im), InputError);
}

// ---- tilt ranges and view size ---------------------------------------------------------------

TEST(TiltRange, ParsesAndExpandsRanges) {
  const std::vector<double> a = parse_tilt_range("-70:70:3").angles();
  ASSERT_EQ(a.size(), 47u);
  EXPECT_DOUBLE_EQ(a.front(), -70.0);
  EXPECT_DOUBLE_EQ(a.back(), 68.0);
  const std::vector<double> b = parse_tilt_range("-60:60:2").angles();
  ASSERT_EQ(b.size(), 61u);
  EXPECT_DOUBLE_EQ(b.back(), 60.0);
  // Decimal steps do not lose the last angle to rounding.
  const std::vector<double> c = parse_tilt_range("-60:60:0.1").angles();
  ASSERT_EQ(c.size(), 1201u);
  EXPECT_NEAR(c.back(), 60.0, 1e-9);
  EXPECT_EQ(parse_tilt_range("5:5:1").angles(), std::vector<double>{5.0});
}

TEST(TiltRange, RejectsMalformedRanges) {
  for (const char* bad :
       {"a:b:c", "70:-70:3", "-70:70:0", "-70:70", "-70:70:-3", "", "1:2:3:4", "-70:70:3x", "::"}) {
    EXPECT_THROW(parse_tilt_range(bad), InputError) << bad;
  }
  EXPECT_THROW((TiltRange{0, 10, 0}.angles()), InputError);
  EXPECT_THROW((TiltRange{10, 0, 1}.angles()), InputError);
}

TEST(TiltRange, FittingViewSizeHoldsTheParticle) {
  AtomModel m;
  m.add("Pt", Vec3(3, 4, 0));  // radius 5 A
  m.add("Pt", Vec3(-1, 0, 0));
  EXPECT_EQ(fitting_view_size(m, 0.5, 6.0), 44);   // 2 ceil(11 / 0.5)
  EXPECT_EQ(fitting_view_size(m, 0.35, 6.0), 64);  // 2 ceil(31.43)
  EXPECT_THROW(fitting_view_size(m, 0.0, 6.0), InputError);
}

// ---- the simulator ---------------------------------------------------------------------------

SimulationSpec basic_spec() {
  SimulationSpec s;
  s.pixel = 0.4;
  for (double t : {-60.0, -30.0, 0.0, 30.0, 60.0}) s.nominal.push_back(Euler{0, t, 0});
  s.seed = 42;
  return s;
}

TEST(SimulateTiltSeries, NoiseFreeSeriesMatchesTheProjector) {
  const AtomModel m = small_cluster();
  const SimulationSpec spec = basic_spec();
  const TiltSeries ts = simulate_tilt_series(m, spec, Device{});
  const std::int64_t n = fitting_view_size(m, spec.pixel, 6.0);
  EXPECT_EQ(ts.views.nx(), n);
  EXPECT_EQ(ts.views.ny(), n);
  EXPECT_EQ(ts.views.nz(), 5);
  EXPECT_DOUBLE_EQ(ts.views.voxel_size.x, spec.pixel);
  ASSERT_EQ(ts.truth.size(), 5u);
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_TRUE(ts.truth[k].R.isApprox(rotation_from_euler(spec.nominal[k]), 1e-12));
    EXPECT_EQ(ts.truth[k].shift, Vec2::Zero());
  }
  const GaussianAtoms g = gaussian_atoms(m, spec.imaging);
  const Array3 clean = detail::project_atoms_cpu(g, ts.truth, n, n, spec.pixel, spec.imaging);
  EXPECT_EQ(ts.views.vector(), clean.vector());
  const double total = std::accumulate(g.weight.begin(), g.weight.end(), 0.0);
  EXPECT_NEAR(view_sum(ts.views, 2) / total, 1.0, 1e-4);

  SimulationSpec rect = spec;
  rect.nx = 50;
  rect.ny = 40;
  const TiltSeries r = simulate_tilt_series(m, rect, Device{});
  EXPECT_EQ(r.views.nx(), 50);
  EXPECT_EQ(r.views.ny(), 40);
}

TEST(SimulateTiltSeries, ShotNoiseIsUnbiasedWithPoissonVariance) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  spec.background = 0.5;  // every pixel gets counts, so the statistics use all of them
  const TiltSeries clean = simulate_tilt_series(m, spec, Device{});
  spec.dose = 2e4;  // electrons / A^2: a few to a few hundred counts per pixel
  const TiltSeries noisy = simulate_tilt_series(m, spec, Device{});
  ASSERT_EQ(clean.views.size(), noisy.views.size());

  // noisy - clean has mean 0 and variance value / dose per pixel.
  double sum_d = 0.0, sum_d2 = 0.0, sum_var = 0.0, var_of_d2 = 0.0;
  for (std::size_t p = 0; p < clean.views.size(); ++p) {
    const double value = clean.views.data()[p];
    const double d = static_cast<double>(noisy.views.data()[p]) - value;
    const double lambda = value * spec.dose;
    sum_d += d;
    sum_d2 += d * d;
    sum_var += value / spec.dose;
    // Var(d^2) for Poisson counts: (lambda + 2 lambda^2) / dose^4.
    var_of_d2 += (lambda + 2 * lambda * lambda) / std::pow(spec.dose, 4);
  }
  EXPECT_LT(std::abs(sum_d), 5.0 * std::sqrt(sum_var));
  EXPECT_NEAR(sum_d2, sum_var, 5.0 * std::sqrt(var_of_d2));
  EXPECT_GT(sum_var, 0.0);

  // Reproducible from the seed, different with another seed.
  const TiltSeries again = simulate_tilt_series(m, spec, Device{});
  EXPECT_EQ(noisy.views.vector(), again.views.vector());
  spec.seed = 43;
  const TiltSeries other = simulate_tilt_series(m, spec, Device{});
  EXPECT_NE(noisy.views.vector(), other.views.vector());
}

TEST(SimulateTiltSeries, ReadNoiseAddsGaussianCounts) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  spec.dose = 1e3;
  const TiltSeries shot = simulate_tilt_series(m, spec, Device{});
  spec.read_noise = 3.0;  // counts
  const TiltSeries both = simulate_tilt_series(m, spec, Device{});
  // Same Poisson draws? Not guaranteed (the normals interleave), so compare variances instead:
  // the read noise adds (3 / dose)^2 per pixel.
  double v_shot = 0, v_both = 0;
  bool negative = false;
  const TiltSeries clean = simulate_tilt_series(m, basic_spec(), Device{});
  for (std::size_t p = 0; p < clean.views.size(); ++p) {
    const double c = clean.views.data()[p];
    v_shot += std::pow(shot.views.data()[p] - c, 2);
    v_both += std::pow(both.views.data()[p] - c, 2);
    negative = negative || both.views.data()[p] < 0.0f;
  }
  const double n = static_cast<double>(clean.views.size());
  EXPECT_NEAR((v_both - v_shot) / n, 9.0 / (spec.dose * spec.dose),
              0.1 * 9.0 / (spec.dose * spec.dose));
  EXPECT_TRUE(negative);  // kept, as a real detector reports them

  spec.dose = 0.0;  // read noise in counts needs a dose to be converted
  EXPECT_THROW(simulate_tilt_series(m, spec, Device{}), InputError);
}

TEST(SimulateTiltSeries, ImperfectionsAreInTheTrueGeometry) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  spec.shift_max_px = 5.0;
  spec.angle_error_sd = 1.0;
  spec.axis_rotation = 4.0;
  const TiltSeries ts = simulate_tilt_series(m, spec, Device{});
  bool any_shift = false;
  for (std::size_t k = 0; k < ts.truth.size(); ++k) {
    const Vec2 s = ts.truth[k].shift;
    EXPECT_LE(std::abs(s.x()), 5.0 * spec.pixel);
    EXPECT_LE(std::abs(s.y()), 5.0 * spec.pixel);
    any_shift = any_shift || s.norm() > 0.1 * spec.pixel;
    // Undo the axis rotation: what remains is the nominal angle plus a small error.
    const Euler e = euler_from_rotation(rot_z(-spec.axis_rotation) * ts.truth[k].R);
    EXPECT_NEAR(e.theta, spec.nominal[k].theta, 5.0);
    EXPECT_NEAR(e.phi, 0.0, 5.0);
    EXPECT_NEAR(e.psi, 0.0, 5.0);
    EXPECT_GT(std::abs(e.theta - spec.nominal[k].theta) + std::abs(e.phi) + std::abs(e.psi), 1e-6);
  }
  EXPECT_TRUE(any_shift);
  EXPECT_EQ(ts.nominal.size(), spec.nominal.size());
  EXPECT_DOUBLE_EQ(ts.nominal[1].theta, -30.0);
  // The views are the clean images of the true geometry.
  const Array3 clean =
      detail::project_atoms_cpu(gaussian_atoms(m, spec.imaging), ts.truth, ts.views.nx(),
                                ts.views.ny(), spec.pixel, spec.imaging);
  EXPECT_EQ(ts.views.vector(), clean.vector());
  // The automatic size leaves room for the largest shift.
  EXPECT_EQ(ts.views.nx(), fitting_view_size(m, spec.pixel, 6.0 + 5.0 * spec.pixel));
}

TEST(SimulateTiltSeries, AxisRotationTurnsTheImageCounterClockwise) {
  // An atom on the y axis at tilt 0: with the axis rotated by +10 deg the image is turned
  // counter-clockwise, so the atom moves to u = -5 sin 10, v = 5 cos 10.
  AtomModel m;
  m.add("Pt", Vec3(0, 5, 0));
  SimulationSpec spec;
  spec.pixel = 0.4;
  spec.nx = spec.ny = 64;
  spec.nominal = {Euler{0, 0, 0}};
  spec.axis_rotation = 10.0;
  const TiltSeries ts = simulate_tilt_series(m, spec, Device{});
  const Peak pk = find_peak(ts.views, 0, spec.pixel);
  EXPECT_NEAR(pk.u, -5.0 * std::sin(10.0 * kPi / 180), 0.02);
  EXPECT_NEAR(pk.v, 5.0 * std::cos(10.0 * kPi / 180), 0.02);
}

TEST(SimulateTiltSeries, BackgroundIsSmoothAndScaledToTheViewMean) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  const TiltSeries clean = simulate_tilt_series(m, spec, Device{});
  spec.background = 0.3;
  const TiltSeries bg = simulate_tilt_series(m, spec, Device{});
  const std::int64_t npix = clean.views.nx() * clean.views.ny();
  for (std::int64_t k = 0; k < clean.views.nz(); ++k) {
    const double mean = view_sum(clean.views, k) / static_cast<double>(npix);
    const double added = (view_sum(bg.views, k) - view_sum(clean.views, k)) / npix;
    EXPECT_NEAR(added / mean, 0.3, 1e-4);
    // Smooth and positive: neighbouring pixels differ little, nothing below half the mean.
    for (std::int64_t j = 0; j < clean.views.ny(); ++j)
      for (std::int64_t i = 0; i + 1 < clean.views.nx(); ++i) {
        const double b0 = bg.views(i, j, k) - clean.views(i, j, k);
        const double b1 = bg.views(i + 1, j, k) - clean.views(i + 1, j, k);
        ASSERT_GT(b0, 0.3 * 0.3 * mean);
        ASSERT_LT(std::abs(b1 - b0), 0.1 * 0.3 * mean);
      }
  }
}

TEST(SimulateTiltSeries, NoisyResultDoesNotDependOnTheThreadCount) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  spec.dose = 5e3;
  spec.read_noise = 1.0;
  spec.background = 0.2;
  spec.shift_max_px = 2.0;
  spec.angle_error_sd = 0.5;
  set_num_threads(1);
  const TiltSeries one = simulate_tilt_series(m, spec, Device{});
  set_num_threads(4);
  const TiltSeries four = simulate_tilt_series(m, spec, Device{});
  set_num_threads(0);
  EXPECT_EQ(one.views.vector(), four.views.vector());
}

TEST(SimulateTiltSeries, BadSpecsAreRejected) {
  const AtomModel m = small_cluster();
  SimulationSpec spec = basic_spec();
  spec.pixel = 0.0;
  EXPECT_THROW(simulate_tilt_series(m, spec, Device{}), InputError);
  spec = basic_spec();
  spec.nominal.clear();
  EXPECT_THROW(simulate_tilt_series(m, spec, Device{}), InputError);
  spec = basic_spec();
  spec.dose = -1.0;
  EXPECT_THROW(simulate_tilt_series(m, spec, Device{}), InputError);
  spec = basic_spec();
  spec.angle_error_sd = std::nan("");
  EXPECT_THROW(simulate_tilt_series(m, spec, Device{}), InputError);
}

}  // namespace
}  // namespace aet::phantoms
