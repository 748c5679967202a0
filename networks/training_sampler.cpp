// The training-data sampler: random particle -> analytic tilt series -> RESIRE reconstruction
// (the network's input) and ideal Gaussian atoms (its target).
#include "aet/networks/training_data.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/json.hpp"
#include "aet/core/rng.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::nn {
namespace {

constexpr double kZExponent = 1.7;  // the simulator's HAADF contrast, ImagingModel::z_exponent
constexpr double kCutoffSigmas = 4.0;

// Streams of the sample seed: one for the sample's parameters, the rest derived from it.
constexpr std::uint64_t kDrawStream = 0;
constexpr std::uint64_t kIndexStream = 1;

bool is_fcc_element(const std::string& symbol) {
  const Element* e = find_element(symbol);
  return e && e->lattice == Lattice::fcc;
}

// Everything a sample draws, in one fixed order so that a change of shape does not shift the
// other draws (each number is drawn whether it is used or not).
struct Draw {
  std::string element;
  phantoms::Shape shape = phantoms::Shape::sphere;
  double radius = 0, vacancy = 0, jitter = 0, tilt_max = 0, tilt_step = 0, dose = 0, tail = 0,
         background = 0;
  bool zone_axis = false;  // lattice along the frame (zone_axis_fraction), else random
  std::uint64_t orientation_seed = 0;
  double wulff_100 = 1, wulff_110 = 1;
  bool wulff_has_110 = false;
  std::uint64_t particle_seed = 0, noise_seed = 0;
};

Draw draw_sample(const TrainingDataSpec& spec, std::uint64_t seed) {
  Rng rng = Rng::stream(seed, kDrawStream);
  Draw d;
  d.element = spec.elements[rng.below(spec.elements.size())];
  d.shape = phantoms::parse_shape(spec.shapes[rng.below(spec.shapes.size())]);
  d.radius = rng.uniform(spec.radius_min, spec.radius_max);
  d.vacancy = rng.uniform(0.0, spec.vacancy_max);
  d.jitter = spec.jitter_sd * rng.uniform(0.75, 1.25);
  d.tilt_max = rng.uniform(spec.tilt_max_min, spec.tilt_max_max);
  d.tilt_step = spec.tilt_steps[rng.below(spec.tilt_steps.size())];
  d.dose = std::exp(rng.uniform(std::log(spec.dose_min), std::log(spec.dose_max)));
  d.tail = rng.uniform(0.0, spec.tail_fraction_max);
  // Wulff ratios of fcc metals: gamma_100 / gamma_111 about 1.0-1.25, gamma_110 a little more.
  d.wulff_100 = rng.uniform(1.0, 1.25);
  d.wulff_110 = rng.uniform(1.1, 1.4);
  d.wulff_has_110 = rng.uniform() < 0.5;
  d.particle_seed = rng.next_u64();
  d.noise_seed = rng.next_u64();
  // Drawn last, so that the draws before it are those of sets made before it existed.
  d.background = rng.uniform(0.0, spec.background_max);
  d.zone_axis = rng.uniform() < spec.zone_axis_fraction;
  d.orientation_seed = rng.next_u64();
  return d;
}

// One of the 24 rotations that map the lattice axes onto the frame's (so that each axis of the
// lattice, c of an L1_0 or hcp cell among them, can end up along the beam or the tilt axis), then
// a rotation by an angle uniform in [0, max_tilt_deg] about a uniformly random axis.
Eigen::Quaterniond zone_axis_orientation(std::uint64_t seed, double max_tilt_deg) {
  Rng rng(seed);
  static const int perms[6][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};
  const int* pm = perms[rng.below(6)];
  Mat3 P = Mat3::Zero();
  for (int r = 0; r < 3; ++r) P(r, pm[r]) = rng.uniform() < 0.5 ? -1.0 : 1.0;
  // Of the 48 signed permutations, flipping one row maps the 24 reflections onto the rotations.
  if (P.determinant() < 0) P.row(2) *= -1.0;
  Vec3 axis;
  do {
    axis = Vec3(rng.normal(), rng.normal(), rng.normal());
  } while (axis.norm() < 1e-9);
  const double angle = rng.uniform(0.0, max_tilt_deg) * M_PI / 180.0;
  const Mat3 M = Eigen::AngleAxisd(angle, axis.normalized()).toRotationMatrix() * P;
  return Eigen::Quaterniond(M);
}

// The particle of the draw. Sizes are scaled so that every shape has about the volume of the
// sphere of the drawn radius (octahedron {111} inradius 0.845 r, Archimedean truncated
// octahedron 0.879 r, cube half-edge 0.806 r, cuboctahedron circumradius 1.21 r); the random
// union of spheres is about as large at size 1.15 r.
phantoms::ParticleSpec particle_spec(const TrainingDataSpec& spec, const Draw& d) {
  using phantoms::Shape;
  phantoms::ParticleSpec p;
  p.element = d.element;
  p.shape = d.shape;
  p.vacancy_fraction = d.vacancy;
  p.jitter_sd = d.jitter;
  p.random_orientation = !d.zone_axis;
  if (d.zone_axis) p.orientation = zone_axis_orientation(d.orientation_seed, spec.zone_axis_tilt);
  p.seed = d.particle_seed;
  const double r = d.radius;
  switch (d.shape) {
    case Shape::sphere:
      p.size = r;
      break;
    case Shape::octahedron:
      p.size = 0.845 * r;
      break;
    case Shape::truncated_octahedron:
      p.size = 0.879 * r;
      break;
    case Shape::cube:
      p.size = 0.806 * r;
      break;
    case Shape::cuboctahedron:
      if (is_fcc_element(d.element)) {
        // Shell n has its vertices at n nearest-neighbour distances (a / sqrt 2).
        const double nn = element(d.element).a / std::sqrt(2.0);
        p.shells = std::max(1, static_cast<int>(std::lround(1.21 * r / nn)));
      } else {
        // Closed shells exist for fcc only; elsewhere the same proportions as facets:
        // {100} at R / sqrt 2 and {111} at R sqrt(2/3), R = 1.21 r.
        p.shape = Shape::wulff;
        p.facets = {{1, 0, 0, 0.856 * r}, {1, 1, 1, 0.988 * r}};
      }
      break;
    case Shape::wulff:
      p.facets = {{1, 1, 1, 0.93 * r}, {1, 0, 0, 0.93 * r * d.wulff_100}};
      if (d.wulff_has_110) p.facets.push_back({1, 1, 0, 0.93 * r * d.wulff_110});
      break;
    case Shape::random:
      p.size = 1.15 * r;
      break;
    case Shape::amorphous:
      p.size = r;  // the density and minimum distance from the element's crystal
      break;
    case Shape::decahedron:
      if (is_fcc_element(d.element)) {
        // Five tetrahedra of edge L = n d: volume 5 L^3 / (6 sqrt 2) = 0.589 L^3, so L = 1.92 r.
        const double nn = element(d.element).a / std::sqrt(2.0);
        p.shells = std::max(1, static_cast<int>(std::lround(1.92 * r / nn)));
      } else {
        // Five-fold twins are fcc; the others get the truncated octahedron of that volume.
        p.shape = Shape::truncated_octahedron;
        p.size = 0.879 * r;
      }
      break;
  }
  return p;
}

AtomModel build_drawn_particle(const TrainingDataSpec& spec, const Draw& d) {
  phantoms::ParticleSpec ps = particle_spec(spec, d);
  try {
    return phantoms::build_particle(ps);
  } catch (const InputError&) {
    // A lumpy random union at the smallest radii can miss every lattice site: fall back to a
    // sphere of the same radius, which always holds its centre atom.
    ps.shape = phantoms::Shape::sphere;
    ps.size = d.radius;
    ps.facets.clear();
    return phantoms::build_particle(ps);
  }
}

}  // namespace

std::uint64_t training_sample_seed(std::uint64_t base, std::uint64_t index) {
  return Rng::stream(base, kIndexStream + index).next_u64();
}

AtomModel training_particle(const TrainingDataSpec& spec, std::uint64_t seed) {
  check_training_spec(spec);
  return build_drawn_particle(spec, draw_sample(spec, seed));
}

// The sample's input (the spec's RESIRE recipe on the views, a cube of their width, normalised)
// and target (the ideal volume of s.truth on the same grid): one recipe for simulated and given
// series.
static void add_input_and_target(const Array3& views, const TiltGeometry& geometry,
                                 const TrainingDataSpec& spec, const Device& dev,
                                 TrainingSample& s) {
  ReconOptions opt;
  opt.algorithm = Algorithm::resire;
  opt.iterations = spec.iterations;
  opt.step = spec.recon_step;
  opt.positivity = true;
  opt.device = dev;
  const std::int64_t n = views.nx();
  opt.nx = opt.ny = opt.nz = n;
  s.input = reconstruct(views, geometry, opt).volume;
  s.input.voxel_size = VoxelSize{spec.pixel, spec.pixel, spec.pixel};
  normalise_volume(s.input);
  s.target = ideal_atom_volume(s.truth, n, n, n, spec.pixel, spec.target_sigma);
}

TrainingSample make_training_sample(const TrainingDataSpec& spec, std::uint64_t seed,
                                    const Device& dev) {
  check_training_spec(spec);
  const Draw d = draw_sample(spec, seed);
  TrainingSample s;
  s.seed = seed;
  s.tilt_max = d.tilt_max;
  s.tilt_step = d.tilt_step;
  s.dose = d.dose;
  s.truth = build_drawn_particle(spec, d);

  phantoms::SimulationSpec sim;
  sim.pixel = spec.pixel;
  sim.nx = sim.ny = phantoms::fitting_view_size(s.truth, spec.pixel, spec.view_margin);
  for (double t : phantoms::TiltRange{-d.tilt_max, d.tilt_max, d.tilt_step}.angles())
    sim.nominal.push_back(Euler{0.0, t, 0.0});
  sim.dose = d.dose;
  sim.angle_error_sd = spec.angle_error_sd;
  sim.imaging.tail_fraction = d.tail;
  sim.background = d.background;
  sim.seed = d.noise_seed;
  const phantoms::TiltSeries series = phantoms::simulate_tilt_series(s.truth, sim, dev);

  // The network sees what a real reconstruction gives: the nominal angles, not the true ones.
  TiltGeometry geometry;
  for (const Euler& e : series.nominal) geometry.push_back(ViewGeometry::from_euler(e));
  add_input_and_target(series.views, geometry, spec, dev, s);
  s.truth.set_info("training_seed", std::to_string(seed));
  return s;
}

TrainingSample training_sample_from_series(const Array3& views, const TiltGeometry& geometry,
                                           const AtomModel& truth, const TrainingDataSpec& spec,
                                           const Device& dev) {
  check_training_spec(spec);
  if (views.empty() || views.nx() != views.ny())
    fail_input("training sample: the views are " + std::to_string(views.nx()) + " x " +
               std::to_string(views.ny()) + " pixels; a sample needs square views");
  if (static_cast<std::int64_t>(geometry.size()) != views.nz())
    fail_input("training sample: " + std::to_string(geometry.size()) + " view geometries for " +
               std::to_string(views.nz()) + " views");
  if (!(std::abs(views.voxel_size.x - spec.pixel) <= 1e-3 * spec.pixel))
    fail_input("training sample: the views' pixel is " + json_number(views.voxel_size.x) +
               " A, the set's " + json_number(spec.pixel) + " A (make the set with --pixel " +
               json_number(views.voxel_size.x) + ", or resample the views)");
  if (truth.size() == 0) fail_input("training sample: the truth holds no atoms");
  TrainingSample s;
  s.truth = truth;
  // Signed tilt of each view about the detector's v axis (a single-axis series' theta).
  std::vector<double> tilt;
  for (const ViewGeometry& g : geometry)
    tilt.push_back(std::atan2(g.R(0, 2), g.R(2, 2)) * 180.0 / M_PI);
  std::sort(tilt.begin(), tilt.end());
  for (double t : tilt) s.tilt_max = std::max(s.tilt_max, std::abs(t));
  std::vector<double> steps;
  for (std::size_t i = 1; i < tilt.size(); ++i) steps.push_back(tilt[i] - tilt[i - 1]);
  s.tilt_step = steps.empty() ? 0.0 : median_of(std::move(steps));
  add_input_and_target(views, geometry, spec, dev, s);
  return s;
}

Array3 ideal_atom_volume(const AtomModel& atoms, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                         double voxel, double sigma) {
  if (!std::isfinite(voxel) || voxel <= 0) fail_input("ideal atom volume: voxel must be > 0");
  if (!std::isfinite(sigma) || sigma <= 0) fail_input("ideal atom volume: sigma must be > 0");
  if (atoms.species.size() != atoms.positions.size())
    fail_input("ideal atom volume: the model has " + std::to_string(atoms.species.size()) +
               " species for " + std::to_string(atoms.positions.size()) + " positions");
  Array3 out(nx, ny, nz);
  out.voxel_size = VoxelSize{voxel, voxel, voxel};
  if (atoms.size() == 0) return out;

  int zmax = 0;
  std::vector<int> z(atoms.size());
  for (std::size_t i = 0; i < atoms.size(); ++i) {
    z[i] = element(atoms.species[i]).z;
    zmax = std::max(zmax, z[i]);
    for (int k = 0; k < 3; ++k)
      if (!std::isfinite(atoms.positions[i][k]))
        fail_input("ideal atom volume: atom " + std::to_string(i) + " has a non-finite position");
  }

  const std::int64_t n[3] = {nx, ny, nz};
  const double reach = kCutoffSigmas * sigma / voxel;  // voxels
  const double cut2 = reach * reach;
  const double inv2s2 = voxel * voxel / (2.0 * sigma * sigma);  // per voxel^2
  for (std::size_t a = 0; a < atoms.size(); ++a) {
    const double height = std::pow(static_cast<double>(z[a]) / zmax, kZExponent);
    std::int64_t lo[3], hi[3];
    double c[3];
    bool outside = false;
    for (int k = 0; k < 3; ++k) {
      c[k] = centre_index(n[k]) + atoms.positions[a][k] / voxel;
      const double l = std::ceil(c[k] - reach), h = std::floor(c[k] + reach);
      if (h < 0 || l > static_cast<double>(n[k] - 1)) {
        outside = true;
        break;
      }
      lo[k] = std::max<std::int64_t>(0, static_cast<std::int64_t>(l));
      hi[k] = std::min<std::int64_t>(n[k] - 1, static_cast<std::int64_t>(h));
    }
    if (outside) continue;
    for (std::int64_t zz = lo[2]; zz <= hi[2]; ++zz) {
      const double dz = static_cast<double>(zz) - c[2];
      for (std::int64_t yy = lo[1]; yy <= hi[1]; ++yy) {
        const double dy = static_cast<double>(yy) - c[1];
        const double r2zy = dz * dz + dy * dy;
        if (r2zy > cut2) continue;
        float* row = &out(0, yy, zz);
        for (std::int64_t xx = lo[0]; xx <= hi[0]; ++xx) {
          const double dx = static_cast<double>(xx) - c[0];
          const double r2 = r2zy + dx * dx;
          if (r2 > cut2) continue;
          row[xx] = static_cast<float>(row[xx] + height * std::exp(-r2 * inv2s2));
        }
      }
    }
  }
  return out;
}

}  // namespace aet::nn
