// Tilt-series simulation: geometry (nominal and true), analytic projection, detector noise and
// the experimental imperfections a real series has (shifts, angle errors, a tilted tilt axis,
// a smooth background).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"
#include "aet/core/device.hpp"
#include "aet/phantoms/project_atoms.hpp"

namespace aet::phantoms {

struct TiltRange {
  double start = -70, stop = 70, step = 3;  // degrees, stop inclusive
  std::vector<double> angles() const;
};
// Parses "START:STOP:STEP" (e.g. "-70:70:3"); throws InputError.
TiltRange parse_tilt_range(const std::string& text);

struct SimulationSpec {
  ImagingModel imaging;
  double pixel = 0.35;          // Angstrom
  std::int64_t nx = 0, ny = 0;  // view size; nx 0 = fit (6 A + max shift), ny 0 = nx
  std::vector<Euler> nominal;   // the nominal geometry (e.g. from a tilt range)
  // Detector.
  double dose = 0.0;        // electrons per Angstrom^2 per view; 0 = no shot noise
  double read_noise = 0.0;  // Gaussian read noise, sd in detector counts per pixel (needs dose)
  // Imperfections applied to the true geometry (the nominal one is what the files claim).
  double shift_max_px = 0.0;    // uniform random shift per view in [-max, max] pixels
  double angle_error_sd = 0.0;  // degrees, Gaussian error on every Euler angle of each view
  // Degrees: R_true = Rz(axis_rotation) R, i.e. the image turned counter-clockwise in its plane,
  // so the tilt axis appears rotated from y towards -u (docs/simulator.md).
  double axis_rotation = 0.0;
  double background = 0.0;  // smooth background: mean = this fraction of the noise-free view mean
  std::uint64_t seed = 0;
};

struct TiltSeries {
  Array3 views;  // nx x ny x nviews, voxel_size = pixel
  std::vector<Euler> nominal;
  TiltGeometry truth;  // true rotation and shift (Angstrom) of each view
};

// Simulates the series. Noise is drawn per view from independent streams of the seed, so the
// result does not depend on the device or the thread count.
TiltSeries simulate_tilt_series(const AtomModel& model, const SimulationSpec& spec,
                                const Device& dev);

// Smallest view width (pixels, even) that holds the particle at every angle with a margin.
std::int64_t fitting_view_size(const AtomModel& model, double pixel, double margin_angstrom);

}  // namespace aet::phantoms
