// Tilt series for the alignment tests (align_fixtures.hpp).
#include "support/align_fixtures.hpp"

#include "aet/core/device.hpp"
#include "aet/phantoms/nanoparticle.hpp"

namespace aet::test {
namespace {

const Device kCpu{};

}  // namespace

phantoms::TiltSeries small_series(double shift_px, double axis_deg, std::uint64_t seed,
                                  double step) {
  phantoms::ParticleSpec spec;
  spec.element = "Pt";
  spec.shape = phantoms::Shape::cuboctahedron;
  spec.shells = 2;  // 55 atoms
  static const AtomModel model = phantoms::build_particle(spec);
  phantoms::SimulationSpec sim;
  sim.pixel = 0.4;
  sim.nx = sim.ny = 48;
  for (double t = -72; t <= 72 + 1e-9; t += step) sim.nominal.push_back(Euler{0, t, 0});
  sim.shift_max_px = shift_px;
  sim.axis_rotation = axis_deg;
  sim.seed = seed;
  return phantoms::simulate_tilt_series(model, sim, kCpu);
}

}  // namespace aet::test
