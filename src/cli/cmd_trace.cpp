// aet trace: atoms from a reconstructed volume (MRC) to an extended XYZ model. Everything is
// validated before the output is written, and the output appears whole or not at all.
#include <cmath>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {
namespace {

// "A" (all axes) or "AX,AY,AZ", Angstrom.
VoxelSize parse_voxel_size(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    double x = NAN;
    try {
      x = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos ||
        !std::isfinite(x) || x <= 0)
      fail_input("--voxel-size: expected a positive number or three (AX,AY,AZ), got '" + s + "'");
    v.push_back(x);
  }
  if (v.size() == 1) return VoxelSize{v[0], v[0], v[0]};
  if (v.size() == 3) return VoxelSize{v[0], v[1], v[2]};
  fail_input("--voxel-size: expected one value or three (AX,AY,AZ), got '" + s + "'");
}

}  // namespace

int run_trace(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("volume,i", po::value<std::string>()->value_name("FILE"), "reconstructed volume (MRC)")
    ("out,o", po::value<std::string>()->value_name("FILE"), "traced atoms (extended XYZ)");
  add_elements_option(desc, "Pt", "A,B",
      "species in order of increasing intensity (lightest first), comma-separated");
  add_min_distance_option(desc, "minimum distance between atoms (Angstrom)");
  desc.add_options()
    ("fit", po::value<std::string>()->default_value("gaussian")->value_name("KIND"),
       "sub-voxel peak fit: gaussian, gaussian-axes (a width per axis) or polynomial")
    ("fit-radius", po::value<double>()->default_value(0.0)->value_name("A"),
       "half-width of the fit window (Angstrom; 0 = 0.7 * min-distance)")
    ("threshold", po::value<double>()->default_value(0.0)->value_name("F"),
       "ignore maxima below F times the robust maximum (0 = auto: 0.05, raised to 3 sd of the "
       "noise seen in negative voxels)")
    ("no-reclassify", "skip the local re-classification of species")
    ("voxel-size", po::value<std::string>()->value_name("A[,AY,AZ]"),
       "voxel size in Angstrom (default: from the MRC header)");
  // clang-format on
  add_common_options(desc, false);
  const auto synopsis = "--volume V.mrc --out atoms.xyz [--elements Fe,Pt] [options]";
  const auto about =
      "Traces atoms in a reconstructed volume: local maxima above a threshold, a sub-voxel fit of "
      "each peak (voxel-integrated 3D Gaussian with the neighbours' peaks subtracted, or a "
      "4th-order polynomial), the minimum distance between atoms, then k-means on the integrated "
      "intensities with one class more than species (the lowest, when it is a separate "
      "population, is not atoms and is removed) and local re-classification.\n\nWrites extended "
      "XYZ: species, positions (Angstrom, centred on voxel n // 2), and the per-atom properties "
      "intensity, peak, fit_residual, class and fit_fallback. See docs/tracing.md.";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"volume FILE", "out FILE"}});
  if (p.help) return 0;
  const auto& vm = p.vm;
  const std::string in_path = vm["volume"].as<std::string>();
  const std::string out_path = vm["out"].as<std::string>();
  check_output_file("out", out_path, {".xyz", ".extxyz"}, "an extended XYZ model");

  TraceOptions opt;
  opt.elements = elements_option(vm);
  // Not min_distance_option: trace_atoms checks it, after the volume is read, in its own words.
  opt.min_distance = vm["min-distance"].as<double>();
  opt.fit = parse_peak_fit(vm["fit"].as<std::string>());
  opt.fit_radius = vm["fit-radius"].as<double>();
  opt.threshold = vm["threshold"].as<double>();
  opt.local_reclassify = !vm.count("no-reclassify");
  opt.seed = seed_or_default(vm);
  VoxelSize override_vs;
  const bool has_override = vm.count("voxel-size") > 0;
  if (has_override) override_vs = parse_voxel_size(vm["voxel-size"].as<std::string>());

  Array3 volume = read_mrc(in_path);
  if (has_override) volume.voxel_size = override_vs;
  if (volume.nz() < 3)
    fail_file(in_path, "is not a volume (nz = " + std::to_string(volume.nz()) + ")");
  const VoxelSize& vs = volume.voxel_size;
  log_info("aet trace: " + in_path + " (" + std::to_string(volume.nx()) + " x " +
           std::to_string(volume.ny()) + " x " + std::to_string(volume.nz()) + ", voxel " +
           fmt_g(vs.x) + " A), fit " + peak_fit_name(opt.fit));

  AtomModel model = trace_atoms(volume, opt);
  if (const std::string* w = model.find_info("trace_warning")) log_warning(*w);
  model.set_info("source_volume", in_path);
  model.set_info("aet_version", AET_VERSION);
  model.set_info("seed", std::to_string(opt.seed));
  model.set_info("voxel_size", fmt_g(vs.x) + "," + fmt_g(vs.y) + "," + fmt_g(vs.z));
  model.set_info("command_line", inv.command_line);
  ensure_parent_directory(out_path);
  write_xyz(out_path, model);

  std::string counts;
  for (const auto& e : opt.elements) {
    std::size_t n = 0;
    for (const auto& s : model.species) n += s == e;
    counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + e;
  }
  log_info("wrote " + out_path + ": " + std::to_string(model.size()) + " atoms (" + counts + "), " +
           *model.find_info("trace_non_atoms") + " non-atoms removed");
  return 0;
}

}  // namespace aet::cli
