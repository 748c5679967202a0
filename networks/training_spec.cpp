// Validation of a training-data spec: every range, and every element and shape it names must
// build a particle.
#include "aet/networks/training_spec.hpp"

#include <cmath>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/phantoms/nanoparticle.hpp"

namespace aet::nn {

void check_training_spec(const TrainingDataSpec& s) {
  auto positive = [](double v, const char* what) {
    if (!std::isfinite(v) || v <= 0)
      fail_input(std::string("training data: ") + what + " must be > 0, got " + fmt_g(v, 10));
  };
  auto range = [&](double lo, double hi, const char* what) {
    positive(lo, what);
    positive(hi, what);
    if (hi < lo)
      fail_input(std::string("training data: ") + what + " range is reversed (" + fmt_g(lo, 10) +
                 " > " + fmt_g(hi, 10) + ")");
  };
  if (s.elements.empty()) fail_input("training data: no elements");
  if (s.shapes.empty()) fail_input("training data: no shapes");
  range(s.radius_min, s.radius_max, "radius");
  if (s.radius_min < 3.0)
    fail_input("training data: radius must be >= 3 A (smaller particles hold too few atoms), got " +
               fmt_g(s.radius_min, 10));
  if (s.radius_max > 100.0)
    fail_input("training data: radius must be <= 100 A, got " + fmt_g(s.radius_max, 10));
  range(s.tilt_max_min, s.tilt_max_max, "tilt_max");
  if (s.tilt_max_max > 90.0)
    fail_input("training data: tilt_max must be <= 90 degrees, got " + fmt_g(s.tilt_max_max, 10));
  if (s.tilt_steps.empty()) fail_input("training data: no tilt steps");
  for (double st : s.tilt_steps) {
    positive(st, "tilt step");
    if (st > s.tilt_max_min)
      fail_input("training data: tilt step " + fmt_g(st, 10) + " exceeds the smallest tilt_max " +
                 fmt_g(s.tilt_max_min, 10) + " (fewer than 3 views)");
  }
  range(s.dose_min, s.dose_max, "dose");
  if (!std::isfinite(s.jitter_sd) || s.jitter_sd < 0 || s.jitter_sd > 2.0)
    fail_input("training data: jitter sd must be in [0, 2] A, got " + fmt_g(s.jitter_sd, 10));
  if (!std::isfinite(s.vacancy_max) || s.vacancy_max < 0 || s.vacancy_max > 0.5)
    fail_input("training data: vacancy fraction must be in [0, 0.5], got " +
               fmt_g(s.vacancy_max, 10));
  if (!std::isfinite(s.angle_error_sd) || s.angle_error_sd < 0)
    fail_input("training data: angle error must be >= 0, got " + fmt_g(s.angle_error_sd, 10));
  if (!std::isfinite(s.tail_fraction_max) || s.tail_fraction_max < 0 || s.tail_fraction_max >= 1)
    fail_input("training data: tail fraction must be in [0, 1), got " +
               fmt_g(s.tail_fraction_max, 10));
  if (!std::isfinite(s.background_max) || s.background_max < 0 || s.background_max > 10)
    fail_input("training data: background must be in [0, 10], got " + fmt_g(s.background_max, 10));
  if (!(s.zone_axis_fraction >= 0 && s.zone_axis_fraction <= 1))
    fail_input("training data: zone-axis fraction must be in [0, 1], got " +
               fmt_g(s.zone_axis_fraction, 10));
  if (!(s.zone_axis_tilt >= 0 && s.zone_axis_tilt <= 45))
    fail_input("training data: zone-axis tilt must be in [0, 45] degrees, got " +
               fmt_g(s.zone_axis_tilt, 10));
  positive(s.pixel, "pixel");
  if (!std::isfinite(s.view_margin) || s.view_margin < 0)
    fail_input("training data: view margin must be >= 0, got " + fmt_g(s.view_margin, 10));
  if (s.iterations < 1)
    fail_input("training data: iterations must be >= 1, got " + std::to_string(s.iterations));
  if (!std::isfinite(s.recon_step) || s.recon_step <= 0 || s.recon_step >= 2.0)
    fail_input("training data: RESIRE step must be in (0, 2), got " + fmt_g(s.recon_step, 10));
  positive(s.target_sigma, "target sigma");
  for (const std::string& sh : s.shapes) phantoms::parse_shape(sh);
  // Every element must build: a small sphere names an unknown symbol or a missing lattice.
  for (const std::string& el : s.elements) {
    if (el.empty() || el.find(',') != std::string::npos)
      fail_input("training data: bad element '" + el + "'");
    phantoms::ParticleSpec p;
    p.element = el;
    p.size = 4.0;
    try {
      phantoms::build_particle(p);
    } catch (const InputError& e) {
      fail_input(std::string("training data: element '") + el + "': " + e.what());
    }
  }
}

}  // namespace aet::nn
