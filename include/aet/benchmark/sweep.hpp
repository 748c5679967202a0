// The missing-wedge benchmark's sweep file (docs/benchmark.md): particles, tilt ranges, numbers of
// views or steps, doses, seeds and misalignment, and the methods to score on every case, in the
// INI syntax of aet's --config files. Each case (particle x tilt range x views x dose x seed) is
// independent of the others: one folder, runnable alone (`aet benchmark --case NAME`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aet/recon/solvers.hpp"

namespace aet {

// [particle NAME]: a built-in phantom (its size or element replaced) or an atom model file.
struct SweepParticle {
  std::string name;
  std::string phantom;                // built-in (aet simulate --list); or
  std::string model;                  // an extended XYZ file (relative paths: to the sweep file)
  std::optional<double> size;         // Angstrom: replaces the phantom's size
  std::string element;                // replaces the phantom's element
  std::vector<std::string> elements;  // traced species, lightest first; empty = the truth's
  double min_distance = 2.0;          // Angstrom, the tracer's
};

// [method NAME]: one of aet's chains, or an external command.
struct SweepMethod {
  std::string name;
  Algorithm algorithm = Algorithm::resire;
  int iterations = 50;
  bool network = true;  // the missing-wedge network (the shipped model)
  bool refine = true;   // the traced atoms refined against the views
  // External: a shell command with {tilts} (MRC stack), {angles} (.tlt) and {out} (the MRC volume
  // it must write, on the views' pixel grid, centred on voxel n // 2); empty for aet's chains.
  std::string command;
  bool external() const { return !command.empty(); }
};

struct TiltSpan {
  double start = -70, stop = 70;  // degrees, stop inclusive
};

struct Sweep {
  std::string path;  // the sweep file
  std::vector<SweepParticle> particles;
  std::vector<TiltSpan> tilt_ranges;
  std::vector<double> steps;  // degrees between views; or
  std::vector<int> views;     // views over each range (exactly one of the two is given)
  std::vector<double> doses = {5e4};
  std::vector<std::uint64_t> seeds = {0};
  double shift_max_px = 0, axis_rotation_deg = 0, angle_error_deg = 0;
  int align_rounds = 5;
  bool keep_volumes = false;
  std::vector<SweepMethod> methods;
};

// One case: where it is run and what it is.
struct SweepCase {
  std::string name;  // its folder, e.g. demo_-70_+70_47v_d50000_s0
  std::size_t particle = 0;
  TiltSpan span;
  std::vector<double> tilts;  // degrees
  double dose = 0;
  std::uint64_t seed = 0;
};

// Parses sweep text; `path` names the file in messages and anchors relative model paths. Every
// problem is an InputError naming the file (and the section and key): a syntax error, an unknown
// section or key, a repeated key or name, an empty or reversed tilt range, a bad number, step or
// view count, an unknown phantom, algorithm or element, a command template without {tilts} and
// {out} or with an unknown {placeholder}, keys of aet's chains on an external method, and a sweep
// without particles, tilt ranges or methods.
Sweep parse_sweep(const std::string& text, const std::string& path);
Sweep read_sweep(const std::string& path);  // reads the file (InputError when it cannot)

// Every case, particles outermost, then tilt ranges, views (or steps), doses and seeds.
std::vector<SweepCase> sweep_cases(const Sweep& sweep);

// The command of an external method with {tilts}, {angles} and {out} replaced by these paths,
// shell-quoted.
std::string expand_command(const std::string& command_template, const std::string& tilts,
                           const std::string& angles, const std::string& out);

}  // namespace aet
