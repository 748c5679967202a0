// Fixtures shared by the reconstruction tests (recon_fixtures.hpp).
#include "support/recon_fixtures.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "aet/core/device.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/project_atoms.hpp"

namespace aet::test {

Array3 random_array(std::int64_t nx, std::int64_t ny, std::int64_t nz, double voxel,
                    std::uint64_t seed) {
  Array3 a(nx, ny, nz);
  a.voxel_size = VoxelSize{voxel, voxel, voxel};
  Uniform u(seed);
  for (float& v : a.vector()) v = static_cast<float>(u());
  return a;
}

Array3 blob_object(std::int64_t nx, std::int64_t ny, std::int64_t nz, double voxel) {
  Array3 object(nx, ny, nz);
  object.voxel_size = VoxelSize{voxel, voxel, voxel};
  const double blobs[][4] = {
      {12, 9, 11, 2.0}, {7, 12, 8, 1.5}, {17, 6, 14, 1.2}, {14, 14, 6, 1.8}, {9, 5, 15, 1.0}};
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        double v = 0;
        for (const auto& b : blobs) {
          const double r2 =
              (x - b[0]) * (x - b[0]) + (y - b[1]) * (y - b[1]) + (z - b[2]) * (z - b[2]);
          v += std::exp(-r2 / (2 * b[3] * b[3]));
        }
        object(x, y, z) = static_cast<float>(v);
      }
  return object;
}

TiltGeometry general_geometry() {
  const Euler e[] = {{0, 0, 0},   {12, 30, -7}, {-25, -50, 18}, {40, 72, -33},
                     {5, -88, 3}, {90, 80, 60}, {-60, 10, 85},  {170, -35, -120}};
  TiltGeometry g;
  int k = 0;
  for (const auto& x : e) {
    g.push_back(ViewGeometry::from_euler(x, Vec2(0.37 * (k % 3) - 0.4, -0.21 * (k % 4) + 0.3)));
    ++k;
  }
  return g;
}

const SimulatedParticle& small_particle() {
  static const SimulatedParticle s = [] {
    SimulatedParticle r;
    phantoms::ParticleSpec spec;
    spec.element = "Pt";
    spec.shape = phantoms::Shape::cuboctahedron;
    spec.shells = 2;
    r.model = phantoms::build_particle(spec);
    phantoms::SimulationSpec sim;
    sim.pixel = r.pixel;
    sim.nx = sim.ny = 40;
    for (int t = -70; t <= 70; t += 5) sim.nominal.push_back(Euler{0, double(t), 0});
    r.series = phantoms::simulate_tilt_series(r.model, sim, Device{});
    for (const auto& e : r.series.nominal) r.geometry.push_back(ViewGeometry::from_euler(e));
    phantoms::GaussianAtoms atoms = phantoms::gaussian_atoms(r.model, sim.imaging);
    for (auto& sg : atoms.sigma)
      sg = std::sqrt(sg * sg + sim.imaging.probe_sigma * sim.imaging.probe_sigma);
    r.ideal = phantoms::ideal_volume(atoms, 40, 40, 40, r.pixel);
    return r;
  }();
  return s;
}

double fraction_of_atoms_found(const Array3& v, const AtomModel& model, double tol) {
  const double a = v.voxel_size.x;
  float peak = 0;
  for (float x : v.vector()) peak = std::max(peak, x);
  std::vector<Vec3> maxima;
  for (std::int64_t z = 1; z + 1 < v.nz(); ++z)
    for (std::int64_t y = 1; y + 1 < v.ny(); ++y)
      for (std::int64_t x = 1; x + 1 < v.nx(); ++x) {
        const float c = v(x, y, z);
        if (c < 0.2f * peak) continue;
        bool is_max = true;
        for (int dz = -1; dz <= 1 && is_max; ++dz)
          for (int dy = -1; dy <= 1 && is_max; ++dy)
            for (int dx = -1; dx <= 1 && is_max; ++dx)
              if ((dx || dy || dz) && v(x + dx, y + dy, z + dz) > c) is_max = false;
        if (!is_max) continue;
        auto vertex = [](double m, double c0, double p) {
          const double d = m - 2 * c0 + p;
          return d < 0 ? 0.5 * (m - p) / d : 0.0;
        };
        const double fx = vertex(v(x - 1, y, z), c, v(x + 1, y, z));
        const double fy = vertex(v(x, y - 1, z), c, v(x, y + 1, z));
        const double fz = vertex(v(x, y, z - 1), c, v(x, y, z + 1));
        maxima.emplace_back((x + fx - v.nx() / 2) * a, (y + fy - v.ny() / 2) * a,
                            (z + fz - v.nz() / 2) * a);
      }
  std::size_t found = 0;
  for (const auto& p : model.positions) {
    double best = 1e9;
    for (const auto& m : maxima) best = std::min(best, (m - p).norm());
    if (best <= tol) ++found;
  }
  return static_cast<double>(found) / static_cast<double>(model.size());
}

phantoms::SimulationSpec tilt_series_spec(double pixel, std::int64_t size, double step,
                                          std::uint64_t seed, bool noisy) {
  phantoms::SimulationSpec sim;
  sim.pixel = pixel;
  sim.nx = sim.ny = size;
  for (double t = -70; t <= 70 + 1e-9; t += step) sim.nominal.push_back(Euler{0, t, 0});
  if (noisy) {
    sim.dose = 5e4;
    sim.imaging.tail_fraction = 0.1;
  }
  sim.seed = seed;
  return sim;
}

Mat3 object_rotation(const TiltGeometry& est, const TiltGeometry& truth) {
  Mat3 M = Mat3::Zero();
  for (std::size_t k = 0; k < est.size(); ++k) M += est[k].R.transpose() * truth[k].R;
  return nearest_rotation(M);
}

double angle_error_deg(const TiltGeometry& est, const TiltGeometry& truth) {
  const Mat3 Q = object_rotation(est, truth);
  double s = 0;
  for (std::size_t k = 0; k < est.size(); ++k) {
    const Mat3 E = est[k].R * Q * truth[k].R.transpose();
    const double a = rotation_angle_deg(E);
    s += a * a;
  }
  return std::sqrt(s / static_cast<double>(est.size()));
}

}  // namespace aet::test
