// aet make-training-set: simulated (reconstruction, ideal atoms) pairs for the missing-wedge
// network, written to one HDF5 file (the generator: networks/training_sampler.cpp; the format:
// networks/training_set_file.cpp).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/networks/training_data.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {
namespace {

std::vector<std::string> split_list(const std::string& text, const char* option) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos)
      fail_input(std::string("--") + option + ": empty item in '" + text + "'");
    out.push_back(item.substr(b, e - b + 1));
  }
  if (out.empty()) fail_input(std::string("--") + option + " needs at least one item");
  return out;
}

std::vector<double> parse_numbers(const std::string& text, const char* option) {
  std::vector<double> out;
  for (const std::string& item : split_list(text, option)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end != item.c_str() + item.size() || !std::isfinite(v))
      fail_input(std::string("--") + option + ": '" + item + "' is not a number");
    out.push_back(v);
  }
  return out;
}

std::string join_numbers(const std::vector<double>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + json_number(v[i]);
  return s;
}

std::string join_text(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
  return s;
}

// One line of a --series list: a tilt series, its angles and the atoms in its frame.
struct SeriesEntry {
  std::string tilts, angles, truth;
};

// The --series list: per line TILTS ANGLES TRUTH (paths relative to the list's folder unless
// absolute), '#' starting a comment. Every file is checked to exist now, before any sample.
std::vector<SeriesEntry> read_series_list(const std::string& path) {
  const std::string text = read_text_file(path);
  const auto slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::vector<SeriesEntry> out;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w[0] == '/' ? w : folder + w);
    if (f.empty()) continue;
    if (f.size() != 3)
      fail_file(path, "line " + std::to_string(number) +
                          ": expected TILTS ANGLES TRUTH (three paths), found " +
                          std::to_string(f.size()) + " fields");
    for (const std::string& file : f)
      if (!std::ifstream(file))
        fail_file(path, "line " + std::to_string(number) + ": cannot open " + file);
    out.push_back({f[0], f[1], f[2]});
  }
  if (out.empty()) fail_file(path, "lists no series");
  return out;
}

}  // namespace

int run_make_training_set(const Invocation& inv) {
  const nn::TrainingDataSpec def;
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("count,n", po::value<std::int64_t>()->value_name("N"), "number of simulated samples")
    ("series", po::value<std::string>()->value_name("LIST"),
       "also a sample from each tilt series in the text file LIST (per line: TILTS.mrc ANGLES "
       "TRUTH.xyz, paths relative to LIST's folder): views the project did not simulate "
       "(multislice, measured with a published model), reconstructed by the same recipe; square "
       "views of --pixel")
    ("out,o", po::value<std::string>()->value_name("FILE"), "output training set (HDF5)")
    ("elements", po::value<std::string>()->default_value(join_text(def.elements))->value_name("LIST"),
       "elements drawn from: symbols (fcc, bcc or hcp) or L1_0 alloys such as FePt")
    ("shapes", po::value<std::string>()->default_value(join_text(def.shapes))->value_name("LIST"),
       "particle shapes drawn from (sphere, octahedron, truncated-octahedron, cuboctahedron, "
       "cube, wulff, random, amorphous, decahedron: the five-fold twin, fcc elements only)")
    ("radius-min", po::value<double>()->default_value(def.radius_min)->value_name("A"),
       "smallest particle (radius of the sphere of equal volume, Angstrom)")
    ("radius-max", po::value<double>()->default_value(def.radius_max)->value_name("A"),
       "largest particle")
    ("tilt-min", po::value<double>()->default_value(def.tilt_max_min)->value_name("DEG"),
       "smallest maximum tilt: each series spans +-T with T uniform in [tilt-min, tilt-max]")
    ("tilt-max", po::value<double>()->default_value(def.tilt_max_max)->value_name("DEG"),
       "largest maximum tilt (<= 90)")
    ("tilt-steps", po::value<std::string>()->default_value(join_numbers(def.tilt_steps))
       ->value_name("LIST"), "tilt steps drawn from (degrees)")
    ("dose-min", po::value<double>()->default_value(def.dose_min)->value_name("D"),
       "lowest dose (electrons per Angstrom^2 per view); drawn log-uniformly")
    ("dose-max", po::value<double>()->default_value(def.dose_max)->value_name("D"), "highest dose")
    ("jitter", po::value<double>()->default_value(def.jitter_sd)->value_name("A"),
       "per-atom displacement sd (drawn in [0.75, 1.25] x this; B factors follow)")
    ("vacancy-max", po::value<double>()->default_value(def.vacancy_max)->value_name("F"),
       "largest vacancy fraction (drawn in [0, F])")
    ("angle-error", po::value<double>()->default_value(def.angle_error_sd)->value_name("DEG"),
       "Gaussian error (sd) on each view's angles")
    ("tail-max", po::value<double>()->default_value(def.tail_fraction_max)->value_name("F"),
       "largest probe-tail fraction (drawn in [0, F])")
    ("background-max", po::value<double>()->default_value(def.background_max)->value_name("F"),
       "largest smooth view background, as a fraction of the view mean (drawn in [0, F])")
    ("zone-axis-fraction", po::value<double>()->default_value(def.zone_axis_fraction)
       ->value_name("F"), "fraction of the particles with their lattice axes along the beam and "
       "the tilt axis (a zone axis, as experiments are often set up), the rest oriented at random")
    ("zone-axis-tilt", po::value<double>()->default_value(def.zone_axis_tilt)->value_name("DEG"),
       "largest misorientation of those particles from the exact zone axis (degrees)")
    ("pixel", po::value<double>()->default_value(def.pixel)->value_name("A"),
       "pixel and voxel size (Angstrom)")
    ("margin", po::value<double>()->default_value(def.view_margin)->value_name("A"),
       "vacuum around the particle in the views (Angstrom)")
    ("iterations", po::value<int>()->default_value(def.iterations)->value_name("N"),
       "RESIRE iterations of the input reconstructions")
    ("step", po::value<double>()->default_value(def.recon_step)->value_name("S"),
       "RESIRE step (< 2)")
    ("target-sigma", po::value<double>()->default_value(def.target_sigma)->value_name("A"),
       "width of the ideal target atoms (Gaussian sigma, Angstrom)");
  // clang-format on
  add_common_options(desc);
  const auto synopsis = "--count N | --series LIST --out FILE.h5 [options]";
  const auto about =
      "Makes training data for the missing-wedge network. Each sample is a random particle "
      "(element, shape, size, vacancies, thermal jitter and orientation drawn from the seed), a "
      "tilt series simulated analytically with a random tilt range, tilt step, dose and angle "
      "errors, its RESIRE reconstruction as the input (normalised so that the heaviest atoms are "
      "about 1) and the ideal Gaussian-atom volume on the same grid as the target (peak "
      "(Z/Zmax)^1.7). Sample i uses a seed derived from --seed and i, so a set is reproducible "
      "and its samples independent of --threads.\n\nWrites FILE.h5 (one group per sample: "
      "input, target, truth positions and species, tilt_max, tilt_step, dose, seed; the "
      "settings and command line as attributes), only when every sample is made. --series adds a "
      "sample from each listed tilt series with its atoms (views the project did not "
      "simulate), reconstructed by the same recipe.";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"out FILE"}});
  if (p.help) return 0;
  const auto& vm = p.vm;
  if (!vm.count("count") && !vm.count("series"))
    fail_input("--count N (simulated samples) or --series LIST (given series) is required");
  const std::int64_t count = vm.count("count") ? vm["count"].as<std::int64_t>() : 0;
  if (vm.count("count") && (count < 1 || count > 100000000))
    fail_input("--count must be between 1 and 1e8, got " + std::to_string(count));
  const std::vector<SeriesEntry> series = vm.count("series")
                                              ? read_series_list(vm["series"].as<std::string>())
                                              : std::vector<SeriesEntry>{};

  nn::TrainingDataSpec spec;
  spec.elements = split_list(vm["elements"].as<std::string>(), "elements");
  spec.shapes = split_list(vm["shapes"].as<std::string>(), "shapes");
  spec.radius_min = vm["radius-min"].as<double>();
  spec.radius_max = vm["radius-max"].as<double>();
  spec.tilt_max_min = vm["tilt-min"].as<double>();
  spec.tilt_max_max = vm["tilt-max"].as<double>();
  spec.tilt_steps = parse_numbers(vm["tilt-steps"].as<std::string>(), "tilt-steps");
  spec.dose_min = vm["dose-min"].as<double>();
  spec.dose_max = vm["dose-max"].as<double>();
  spec.jitter_sd = vm["jitter"].as<double>();
  spec.vacancy_max = vm["vacancy-max"].as<double>();
  spec.angle_error_sd = vm["angle-error"].as<double>();
  spec.tail_fraction_max = vm["tail-max"].as<double>();
  spec.background_max = vm["background-max"].as<double>();
  spec.zone_axis_fraction = vm["zone-axis-fraction"].as<double>();
  spec.zone_axis_tilt = vm["zone-axis-tilt"].as<double>();
  spec.pixel = vm["pixel"].as<double>();
  spec.view_margin = vm["margin"].as<double>();
  spec.iterations = vm["iterations"].as<int>();
  spec.recon_step = vm["step"].as<double>();
  spec.target_sigma = vm["target-sigma"].as<double>();
  nn::check_training_spec(spec);  // every setting checked before the file is created
  const Device device = resolve_recon_device(vm);
  const std::uint64_t seed = seed_or_default(vm);
  const std::string out = vm["out"].as<std::string>();
  check_output_file("out", out, {}, "an HDF5 training set");
  remove_stale_temporaries(out);
  // The writer fills OUT.tmp.<pid> for the whole run: removed if SIGINT/SIGTERM stops it.
  InterruptCleanup tmp_guard;
  {
    const auto lock = interrupt_cleanup_lock();
    tmp_guard = InterruptCleanup(out + ".tmp." + std::to_string(static_cast<long>(::getpid())));
  }
  nn::TrainingSetWriter writer(out, spec, inv.command_line, p.effective_config);
  log_info(
      "aet make-training-set: " + std::to_string(count) + " simulated samples" +
      (series.empty() ? std::string() : " and " + std::to_string(series.size()) + " given series") +
      ", seed " + std::to_string(seed) + ", device " + device.str());
  const Verbosity verbosity_set = verbosity();
  Progress progress("make-training-set", count + static_cast<std::int64_t>(series.size()));
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    // Each reconstruction would draw its own progress lines; only --verbose shows them.
    if (verbosity_set == Verbosity::normal) set_verbosity(Verbosity::quiet);
    nn::TrainingSample s;
    try {
      s = nn::make_training_sample(
          spec, nn::training_sample_seed(seed, static_cast<std::uint64_t>(i)), device);
    } catch (...) {
      set_verbosity(verbosity_set);
      throw;
    }
    set_verbosity(verbosity_set);
    writer.add(s);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char line[256];
    std::snprintf(line, sizeof line,
                  "sample %lld: %s %s, %zu atoms, %lld^3 voxels, +-%.1f deg step %g, dose %.3g, "
                  "%.2f s",
                  static_cast<long long>(i),
                  s.truth.find_info("element") ? s.truth.find_info("element")->c_str() : "?",
                  s.truth.find_info("shape") ? s.truth.find_info("shape")->c_str() : "?",
                  s.truth.size(), static_cast<long long>(s.input.nx()), s.tilt_max, s.tilt_step,
                  s.dose, sec);
    log_verbose(line);
    progress.advance();
  }
  // The given series, after the simulated samples.
  for (const SeriesEntry& e : series) {
    MrcHeader header;
    Array3 views = read_mrc(e.tilts, &header);
    const double pixel = header_pixel(e.tilts, header);
    views.voxel_size = VoxelSize{pixel, pixel, pixel};
    const AngleFile angles = read_angles(e.angles, static_cast<long>(views.nz()), e.tilts);
    AtomModel truth = read_xyz(e.truth);
    truth.set_info("series", e.tilts);
    if (verbosity_set == Verbosity::normal) set_verbosity(Verbosity::quiet);
    nn::TrainingSample s;
    try {
      s = nn::training_sample_from_series(views, angles.geometry(), truth, spec, device);
    } catch (const InputError& err) {
      set_verbosity(verbosity_set);
      fail_file(e.tilts, err.what());
    } catch (...) {
      set_verbosity(verbosity_set);
      throw;
    }
    set_verbosity(verbosity_set);
    writer.add(s);
    log_verbose("series " + e.tilts + ": " + std::to_string(s.truth.size()) + " atoms, " +
                std::to_string(s.input.nx()) + "^3 voxels, +-" + fmt("%.1f", s.tilt_max) +
                " deg step " + fmt("%g", s.tilt_step));
    progress.advance();
  }
  progress.finish();
  writer.commit();
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char summary[160];
  std::snprintf(summary, sizeof summary, "wrote %s: %lld samples (%.2f s per sample)", out.c_str(),
                static_cast<long long>(count + static_cast<std::int64_t>(series.size())),
                total / static_cast<double>(count + static_cast<std::int64_t>(series.size())));
  log_info(summary);
  return 0;
}

}  // namespace aet::cli
