// aet analyze: lattice and strain, surface, coordination and order, RDF and facets of an atom
// model (docs/analysis.md), written into an output folder that appears whole or not at all.
#include <cmath>
#include <string>

#include "aet/analysis/analyze.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/xyz.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {

int run_analyze(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("atoms,i", po::value<std::string>()->value_name("FILE"), "atom model (extended or plain XYZ)")
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("lattice", po::value<std::string>()->default_value("auto")->value_name("L"),
       "fcc, bcc, hcp, l10 (the ordered alloy of a two-species model; its c axis from the "
       "species), or auto (fit each, keep the one most atoms sit on; L1_0 for two species "
       "ordered on an fcc lattice)")
    ("a", po::value<double>()->default_value(0.0)->value_name("A"),
       "reference lattice constant in Angstrom, against which strain is measured "
       "(0 = fitted to the atoms, so their mean dilatation is zero)")
    ("c", po::value<double>()->default_value(0.0)->value_name("A"),
       "hcp and l10: reference c in Angstrom (0 = fitted)")
    ("sigma", po::value<double>()->default_value(3.0)->value_name("A"),
       "Gaussian smoothing of the strain field (Angstrom)")
    ("voxel", po::value<double>()->default_value(1.0)->value_name("A"),
       "voxel of the strain and facet volumes (Angstrom)")
    ("cutoff", po::value<double>()->default_value(0.0)->value_name("A"),
       "coordination cutoff (0 = 1.2 x the median nearest-neighbour distance)")
    ("no-volumes", "skip the strain and facet MRC volumes")
    ("strict", "a degraded result (atoms off the fitted lattice, no facets) is an error (exit "
       "code 3, nothing written) instead of a warning");
  // clang-format on
  add_common_options(desc, false);
  const auto synopsis =
      "--atoms atoms.xyz --out DIR [--lattice fcc|bcc|hcp|l10|auto] [--a A] [options]";
  const auto about =
      "Analyses an atom model: fits one crystal lattice (type, orientation, lattice constant, "
      "origin), gives every atom its ideal site and displacement, the strain tensor from the "
      "displacement gradient (Gaussian-weighted local least squares of width --sigma) with its "
      "rotation, and the strain from its nearest-neighbour shell; coordination, surface atoms "
      "(low coordination and reachable from outside), Steinhardt Q4/Q6, the RDF and partial "
      "RDFs; facets with Miller indices, areas and family fractions; for a two-species alloy its "
      "chemical order (L1_0 order parameter, antisites, local order and ordering "
      "variants).\n\nWrites DIR/atoms.xyz "
      "(the model with the per-atom results as extra columns), DIR/analysis.json, "
      "DIR/strain_{xx,yy,zz,yz,xz,xy}.mrc and DIR/facets.mrc (voxel n // 2 at the origin). "
      "See docs/analysis.md.";
  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"atoms FILE", "out DIR"}});
  if (p.help) return 0;
  const auto& vm = p.vm;

  AnalyzeOptions opt;
  opt.lattice = parse_lattice(vm["lattice"].as<std::string>());
  opt.a = vm["a"].as<double>();
  opt.c = vm["c"].as<double>();
  opt.sigma = vm["sigma"].as<double>();
  opt.voxel = vm["voxel"].as<double>();
  opt.cutoff = vm["cutoff"].as<double>();
  opt.volumes = !vm.count("no-volumes");
  const bool strict = vm.count("strict") > 0;
  if (!std::isfinite(opt.a) || opt.a < 0) fail_input("--a must be >= 0, got " + json_number(opt.a));
  if (!std::isfinite(opt.c) || opt.c < 0) fail_input("--c must be >= 0, got " + json_number(opt.c));
  if (!std::isfinite(opt.sigma) || opt.sigma <= 0)
    fail_input("--sigma must be > 0, got " + json_number(opt.sigma));
  if (!std::isfinite(opt.voxel) || opt.voxel <= 0)
    fail_input("--voxel must be > 0, got " + json_number(opt.voxel));
  if (!std::isfinite(opt.cutoff) || opt.cutoff < 0)
    fail_input("--cutoff must be >= 0, got " + json_number(opt.cutoff));

  const std::string in_path = vm["atoms"].as<std::string>();
  OutputDir out(vm["out"].as<std::string>(), analysis_file_names());
  AtomModel model = read_xyz(in_path);
  AnalysisResult r;
  try {
    r = analyze(model, opt);
  } catch (const InputError& e) {
    fail_file(in_path, e.what());
  }
  if (strict && !r.warnings.empty()) throw QualityError(r.warnings.front() + " (--strict)");
  for (const auto& w : r.warnings) log_warning(w);

  model.set_info("source_atoms", in_path);
  model.set_info("aet_version", AET_VERSION);
  model.set_info("command_line", inv.command_line);
  write_analysis_files(out.staging_dir(), model, r);
  out.commit();
  log_info("aet analyze: " + std::to_string(model.size()) + " atoms, " + analysis_summary(r) +
           "; wrote " + vm["out"].as<std::string>());
  return 0;
}

}  // namespace aet::cli
