// aet simulate: build a nanoparticle (or read an atom model) and simulate its tilt series with the
// analytic Gaussian-atom projector in phantoms/, plus the ground truth for scoring.
#include <cmath>
#include <cstdio>

#include "aet/core/build_config.hpp"
#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {
namespace {

void list_phantoms() {
  std::printf("%-22s %6s  %s\n", "name", "atoms", "description");
  for (const auto& p : phantoms::phantom_catalogue()) {
    const AtomModel m = phantoms::build_particle(p.spec);
    std::printf("%-22s %6zu  %s\n", p.name.c_str(), m.size(), p.description.c_str());
  }
}

double positive(const po::variables_map& vm, const char* key, bool allow_zero) {
  const double v = vm[key].as<double>();
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0))
    fail_input(std::string("--") + key + " must be " + (allow_zero ? ">= 0" : "> 0") + ", got " +
               json_number(v));
  return v;
}

}  // namespace

int run_simulate(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("phantom,p", po::value<std::string>()->default_value("demo")->value_name("NAME"),
       "built-in phantom (aet simulate --list)")
    ("model", po::value<std::string>()->value_name("FILE"),
       "simulate this atom model (extended XYZ, Angstrom, centred) instead of a phantom")
    ("list", "list the built-in phantoms and exit")
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("tilt-range", po::value<std::string>()->default_value("-70:70:3")->value_name("A:B:S"),
       "single-axis tilts from A to B (inclusive) in steps of S degrees")
    ("angles", po::value<std::string>()->value_name("FILE"),
       "view geometry from an angle file (.tlt or phi theta psi Euler text) instead")
    ("pixel", po::value<double>()->default_value(0.35, "0.35")->value_name("A"),
       "pixel size (Angstrom)")
    ("size", po::value<int>()->default_value(0)->value_name("N"),
       "view width and height in pixels (0 = fit the particle)")
    ("dose", po::value<double>()->default_value(5e4)->value_name("D"),
       "electrons per Angstrom^2 per view for Poisson noise (0 = noise-free)")
    ("read-noise", po::value<double>()->default_value(0.0)->value_name("C"),
       "Gaussian detector read noise, sd in counts per pixel")
    ("b-factor", po::value<double>()->default_value(5.0)->value_name("B"),
       "Debye-Waller B factor of atoms without their own (Angstrom^2)")
    ("z-exponent", po::value<double>()->default_value(1.7, "1.7"),
       "intensity proportional to Z^this")
    ("probe-sigma", po::value<double>()->default_value(0.35, "0.35")->value_name("A"),
       "probe core width (Gaussian sigma, Angstrom)")
    ("tail-fraction", po::value<double>()->default_value(0.1, "0.1")->value_name("F"),
       "fraction of the probe intensity in its wide tail")
    ("tail-sigma", po::value<double>()->default_value(4.0)->value_name("A"),
       "width of the probe tail (Gaussian sigma, Angstrom)")
    ("background", po::value<double>()->default_value(0.05, "0.05")->value_name("F"),
       "smooth background, as a fraction of the mean view intensity")
    ("shift-max", po::value<double>()->default_value(0.0)->value_name("PX"),
       "random per-view shifts up to this many pixels (misalignment)")
    ("angle-error", po::value<double>()->default_value(0.0)->value_name("DEG"),
       "Gaussian error (sd, degrees) on each view's Euler angles")
    ("axis-rotation", po::value<double>()->default_value(0.0)->value_name("DEG"),
       "tilt axis rotated in the image plane from the y axis (degrees)")
    ("element", po::value<std::string>()->value_name("SYM"), "replace the phantom's element")
    ("jitter", po::value<double>()->value_name("A"), "replace the phantom's thermal jitter (sd)")
    ("vacancies", po::value<double>()->value_name("F"), "replace the phantom's vacancy fraction")
    ("random-orientation", "orient the particle at random (from the seed)")
    ("target", "also write target.mrc: the ideal Gaussian-atom volume (network target)");
  // clang-format on
  add_common_options(desc);
  const auto synopsis = "[--phantom NAME | --model FILE] --out DIR [options]";
  const auto about =
      "Simulates a HAADF-STEM tilt series of a nanoparticle. Each atom is a 3D Gaussian (width "
      "from its B factor, intensity ~ Z^1.7) projected analytically and integrated exactly over "
      "each pixel, with a probe core and tail, Poisson noise at the given dose, read noise, a "
      "smooth background and optional misalignment. This projector shares nothing with the "
      "reconstruction projectors.\n\nWrites to DIR: tilts.mrc (views), tilts.tlt (single-axis) "
      "or angles.txt (Euler phi theta psi), truth.xyz (atoms, extended XYZ), true_geometry.txt "
      "(when misaligned), target.mrc (with --target), simulate.json and simulate.log.";

  // --out is required only after --list, which writes nothing.
  const Parsed p = parse_or_help(inv, desc, {synopsis, about});
  if (p.help) return 0;
  const auto& vm = p.vm;
  if (vm.count("list")) {
    list_phantoms();
    return 0;
  }
  require_options(vm, {"out DIR"});
  const Device device = device_option(vm);
  const std::uint64_t seed = seed_or_default(vm);

  // Everything is read and validated before the output directory is touched.
  AtomModel model;
  std::string source;
  if (vm.count("model")) {
    source = vm["model"].as<std::string>();
    model = read_xyz(source);
    if (model.size() == 0) fail_file(source, "the model holds no atoms");
  } else {
    const auto& named = phantoms::find_phantom(vm["phantom"].as<std::string>());
    phantoms::ParticleSpec spec = named.spec;
    spec.seed = seed;
    if (vm.count("element")) spec.element = vm["element"].as<std::string>();
    if (vm.count("jitter")) spec.jitter_sd = positive(vm, "jitter", true);
    if (vm.count("vacancies")) spec.vacancy_fraction = vm["vacancies"].as<double>();
    if (vm.count("random-orientation")) spec.random_orientation = true;
    model = phantoms::build_particle(spec);
    source = "phantom " + named.name;
  }

  phantoms::SimulationSpec sim;
  sim.pixel = positive(vm, "pixel", false);
  const int size = vm["size"].as<int>();
  if (size < 0) fail_input("--size must be >= 0");
  sim.nx = sim.ny = size;
  bool single_axis = true;
  if (vm.count("angles")) {
    const AngleFile af = read_angles(vm["angles"].as<std::string>());
    sim.nominal = af.views;
    single_axis = af.format == AngleFormat::tilt;
  } else {
    for (double t : phantoms::parse_tilt_range(vm["tilt-range"].as<std::string>()).angles())
      sim.nominal.push_back(Euler{0.0, t, 0.0});
  }
  sim.dose = positive(vm, "dose", true);
  sim.read_noise = positive(vm, "read-noise", true);
  sim.imaging.b_factor = positive(vm, "b-factor", true);
  sim.imaging.z_exponent = positive(vm, "z-exponent", true);
  sim.imaging.probe_sigma = positive(vm, "probe-sigma", true);
  sim.imaging.tail_fraction = positive(vm, "tail-fraction", true);
  if (sim.imaging.tail_fraction >= 1) fail_input("--tail-fraction must be < 1");
  sim.imaging.tail_sigma = positive(vm, "tail-sigma", false);
  sim.background = positive(vm, "background", true);
  sim.shift_max_px = positive(vm, "shift-max", true);
  sim.angle_error_sd = positive(vm, "angle-error", true);
  sim.axis_rotation = vm["axis-rotation"].as<double>();
  if (!std::isfinite(sim.axis_rotation)) fail_input("--axis-rotation must be finite");
  sim.seed = seed + 1;  // noise and misalignment: a stream distinct from the particle's

  const std::string out_dir = vm["out"].as<std::string>();
  OutputDir out(out_dir, {"tilts.mrc", "tilts.tlt", "angles.txt", "true_geometry.txt", "truth.xyz",
                          "target.mrc", "simulate.json", "simulate.log"});
  log_info("aet simulate: " + source + ", " + std::to_string(model.size()) + " atoms, " +
           std::to_string(sim.nominal.size()) + " views, device " + device.str());
  const phantoms::TiltSeries series = phantoms::simulate_tilt_series(model, sim, device);

  const std::string label =
      "aet " AET_VERSION " simulate: " + source + " seed " + std::to_string(seed);
  write_mrc(out.path("tilts.mrc"), series.views, MrcKind::stack, {label});
  const bool perturbed = sim.shift_max_px > 0 || sim.angle_error_sd > 0 || sim.axis_rotation != 0;
  if (single_axis) {
    std::vector<double> tilts;
    for (const auto& e : series.nominal) tilts.push_back(e.theta);
    write_tilt_angles(out.path("tilts.tlt"), tilts);
  } else {
    write_euler_angles(out.path("angles.txt"), series.nominal,
                       "nominal view geometry: phi theta psi (degrees), R = (Rz Ry Rx)^T");
  }
  if (perturbed)
    write_geometry(out.path("true_geometry.txt"), series.truth,
                   "true view geometry of the simulated series (what alignment should recover)");
  model.set_info("source", source);
  model.set_info("seed", std::to_string(seed));
  model.set_info("aet_version", AET_VERSION);
  write_xyz(out.path("truth.xyz"), model);

  if (vm.count("target")) {
    const auto atoms = phantoms::gaussian_atoms(model, sim.imaging);
    const std::int64_t n = series.views.nx();
    Array3 target = phantoms::ideal_volume(atoms, n, series.views.ny(), n, sim.pixel);
    write_mrc(out.path("target.mrc"), target, MrcKind::volume, {label + " ideal atoms"});
  }

  Json js;
  js["aet_version"] = AET_VERSION;
  js["command_line"] = inv.command_line;
  js["source"] = source;
  js["seed"] = seed;
  js["noise_seed"] = sim.seed;
  js["atoms"] = model.size();
  js["views"] = series.views.nz();
  js["view_size"] = {series.views.nx(), series.views.ny()};
  js["pixel_angstrom"] = sim.pixel;
  js["dose_e_per_A2_per_view"] = sim.dose;
  js["device"] = device.str();
  write_text_file(out.path("simulate.json"), json_text(js));
  write_text_file(out.path("simulate.log"),
                  inv.command_line + "\n\n# effective configuration\n" + p.effective_config);
  out.commit();
  log_info("wrote " + out_dir + "/tilts.mrc (" + std::to_string(series.views.nx()) + " x " +
           std::to_string(series.views.ny()) + " x " + std::to_string(series.views.nz()) +
           "), truth.xyz");
  return 0;
}

}  // namespace aet::cli
