// aet pipeline: the whole chain in one command (the pipeline library, aet/pipeline). With --tilts
// it runs on the user's series; with none it simulates a built-in particle, runs the same chain,
// and scores itself against the truth.
#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/xyz.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/pipeline/pipeline.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"

namespace aet::cli {

namespace {

// Every file write_pipeline_files may write: none may be in the way as a directory.
const std::vector<std::string> kPipelineFiles = {
    "tilts.mrc",     "tilts.tlt",   "truth.xyz",    "geometry.txt", "reconstruction.mrc",
    "augmented.mrc", "atoms.xyz",   "traced.xyz",   "metrics.json", "result.h5",
    "pipeline.log",  "report.html", "analysis.json"};

// report.html, last, from the files in the staging folder. A report that cannot be made (no
// matplotlib, a module error) costs the run nothing but the report: a warning, on stderr and in
// metrics.json, or under --strict the run's failure (exit 3, no output).
void write_report(const PipelineResult& r, OutputDir& out, bool strict) {
  try {
    write_run_report(out.staging_dir(), out.path("report.html"));
  } catch (const std::exception& e) {
    const std::string w = "the report was not written: " + user_paths(e.what());
    if (strict) throw QualityError(w + " (--strict)");
    log_warning(w);
    Json metrics = r.metrics;
    metrics["warnings"].push_back(w);
    write_text_file(out.path("metrics.json"), json_text(metrics));
  }
}

void write_outputs(const PipelineResult& r, OutputDir& out, const Invocation& inv,
                   const Parsed& p) {
  Provenance prov;
  prov.command_line = inv.command_line;
  prov.config = p.effective_config;
  prov.seed = seed_or_default(p.vm);
  prov.has_seed = true;
  write_pipeline_files(r, out.staging_dir(), prov);
  if (!p.vm.count("no-report")) write_report(r, out, p.vm.count("strict") > 0);
  out.commit();
}

// The species of a built-in phantom ("Pt", or "FePt" for an ordered alloy), lightest first: what
// --elements means, so that the tracer looks for every species the simulation holds.
std::vector<std::string> phantom_elements(const std::string& name) {
  const std::string& e = phantoms::find_phantom(name).spec.element;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < e.size();) {
    std::size_t j = i + 1;
    while (j < e.size() && std::islower(static_cast<unsigned char>(e[j]))) ++j;
    out.push_back(e.substr(i, j - i));
    i = j;
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return element(a).z < element(b).z; });
  return out;
}

}  // namespace

int run_pipeline(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("tilts", po::value<std::string>()->value_name("T.mrc"), "tilt series (MRC stack)")
    ("angles", po::value<std::string>()->value_name("A"),
       "angles: .tlt/.rawtlt (single axis) or phi theta psi Euler text")
    ("truth", po::value<std::string>()->value_name("XYZ"), "score the result against this model");
  add_pixel_option(desc, "pixel size (default: from the MRC header)");
  add_elements_option(desc, "Pt", "LIST",
                      "species by intensity, lightest first (e.g. Fe,Pt); required with --tilts (a "
                      "built-in phantom: its own species)");
  desc.add_options()
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("algorithm", po::value<std::string>()->default_value("resire"), "resire, sirt or fbp");
  add_iterations_option(desc, 50, "solver iterations", /*short_n=*/false);
  desc.add_options()
    ("align", "align even a built-in simulation (the default for --tilts input)")
    ("no-align", "skip alignment (the views are already aligned and preprocessed)")
    ("align-rounds", po::value<int>()->default_value(5)->value_name("N"),
       "projection-matching rounds of the alignment")
    ("align-iterations", po::value<int>()->default_value(15)->value_name("N"),
       "accelerated RESIRE iterations per alignment round (the first: twice as many)")
    ("no-refine-angles",
     "alignment: keep the nominal per-view angles (refined by default against a traced atomic "
     "model, for an isolated particle)");
  add_angle_search_option(desc, 10.0,
      "alignment: half-range of the grid search of each view's rotation before the local fit of "
      "the angles (0 = local fit only)");
  desc.add_options()
    ("no-refine", "keep the traced atoms: skip their refinement against the views")
    ("no-analysis", "skip the analysis of the final model (lattice, strain, surface, facets: "
       "analysis.json and the extra columns of atoms.xyz)")
    ("no-report", "do not write report.html (docs/report.md; aet report DIR writes it later)");
  add_checkpoint_option(desc,
      "the alignment, reconstruction and network results as each finishes (and the alignment's "
      "rounds as they finish)");
  add_checkpoint_every_option(desc);
  desc.add_options()
    ("strict", "a stage's result that fails its check (the refinement removing more than half "
       "of the atoms or fitting the views worse, ...) ends the run with exit code 3 and no "
       "output, instead of a warning (stderr, metrics.json) and the better result kept");
  add_position_prior_option(desc,
      "refinement: sd of a Gaussian prior on each atom's position about its traced position, "
      "per coordinate, weighed against the views' noise (0 = none; docs/refinement.md)");
  add_probe_tail_option(desc, "refinement: ");
  desc.add_options()
    ("bootstrap", po::value<int>()->default_value(0)->value_name("N"),
       "trust per atom: N refinements of the refined atoms against views drawn with "
       "replacement (seeded by --seed); their spread joins the fit's curvature in sigma_x, "
       "sigma_y, sigma_z of atoms.xyz (0 = curvature only; docs/refinement.md)");
  add_min_distance_option(desc, "minimum distance between atoms");
  desc.add_options()
    ("phantom", po::value<std::string>()->default_value("demo")->value_name("NAME"),
       "built-in particle simulated when no --tilts is given")
    ("tilt-range", po::value<std::string>()->default_value("-70:70:3")->value_name("A:B:S"),
       "tilts of the simulated series")
    ("dose", po::value<double>()->default_value(5e4)->value_name("D"),
       "dose of the simulated series (electrons per Angstrom^2 per view)")
    ("shift-max", po::value<double>()->default_value(0.0)->value_name("PX"),
       "misalign the simulated series: random shifts up to this many pixels (turns --align on)")
    ("axis-rotation", po::value<double>()->default_value(0.0)->value_name("DEG"),
       "misalign the simulated series: tilt axis rotated in the image plane (turns --align on)")
    ("angle-error", po::value<double>()->default_value(0.0)->value_name("DEG"),
       "misalign the simulated series: Gaussian error of this sd on every Euler angle of each "
       "view (turns --align on)");
  // clang-format on
  add_common_options(desc);
  const auto about =
      "Runs the chain: align (preprocessing, shifts and tilt axis by projection matching), "
      "reconstruct (RESIRE by default), trace atoms, and (with a truth) evaluate. "
      "With no --tilts it simulates the built-in demo particle (fcc Pt, ~800 atoms, +-70 deg in 3 "
      "deg steps, Poisson noise, a probe tail and a smooth background) and scores itself against "
      "the truth; that series has exact geometry, so it is aligned only with --align or when "
      "--shift-max / --axis-rotation / --angle-error misalign it.\n\nWrites to DIR: geometry.txt "
      "(the view "
      "geometry used, refined when aligned), "
      "reconstruction.mrc, augmented.mrc (the network's output, traced), atoms.xyz, "
      "metrics.json, result.h5 "
      "(datasets and provenance), pipeline.log, report.html (the run report, docs/report.md; not "
      "with --no-report); with a simulated input also tilts.mrc, tilts.tlt "
      "and truth.xyz.";
  add_network_options(desc);
  add_alignment_options(desc);
  const Parsed p = parse_or_help(
      inv, desc,
      {"[--tilts T.mrc --angles A [--truth XYZ]] --out DIR [options]", about, {"out DIR"}});
  if (p.help) return 0;
  const auto& vm = p.vm;
  if (vm.count("tilts") != vm.count("angles")) fail_input("--tilts and --angles go together");
  if (vm.count("align") && vm.count("no-align"))
    fail_input("--align and --no-align exclude each other");
  if (!vm.count("tilts") && vm.count("truth"))
    fail_input("--truth needs --tilts (the simulated input has its own)");
  PipelineOptions o;
  o.device = resolve_recon_device(vm);
  o.seed = seed_or_default(vm);
  o.elements = elements_option(vm);
  o.algorithm = parse_algorithm(vm["algorithm"].as<std::string>());
  o.align = vm.count("no-align") ? AlignMode::off
            : vm.count("align")  ? AlignMode::on
                                 : AlignMode::automatic;
  o.alignment.rounds = vm["align-rounds"].as<int>();
  o.alignment.recon_iterations = vm["align-iterations"].as<int>();
  o.alignment.refine_angles = !vm.count("no-refine-angles");
  read_alignment_options(vm, o.alignment);
  o.sample = o.alignment.sample;
  o.refine = !vm.count("no-refine");
  o.analysis = !vm.count("no-analysis");
  o.strict = vm.count("strict") > 0;
  o.network = network_stage_options(vm, o.device);
  // Checked after the network options and in check_pipeline_options' order, so that of several
  // bad options the same one is named as when only the library checked them.
  o.iterations = iterations_option(vm);
  o.alignment.angle_search_deg = angle_search_option(vm);
  o.min_distance = min_distance_option(vm);
  o.position_prior = position_prior_option(vm);
  o.probe_tail = vm.count("probe-tail") > 0;
  o.bootstrap = vm["bootstrap"].as<int>();
  check_pipeline_options(o);
  if (vm.count("checkpoint")) {
    // The options of one stage and of the stages after the network (which always run); every
    // other option changes every checkpointed stage. The input files enter the keys by content.
    static const std::map<std::string, std::vector<std::string>> options_of = {
        {"align",
         {"align", "no-align", "align-rounds", "align-iterations", "no-refine-angles",
          "angle-search", "no-background", "no-normalise", "no-hot-pixels", "denoise", "no-axis",
          "no-shifts", "no-coarse", "max-shift"}},
        {"reconstruct", {"algorithm", "iterations"}},
        {"network", {"flips"}}};
    std::map<std::string, std::string> stage_of;
    for (const auto& [stage, options] : options_of)
      for (const std::string& option : options) stage_of[option] = stage;
    const CheckpointOption ck =
        checkpoint_option(p,
                          {"no-report", "tilts", "angles", "truth", "elements", "min-distance",
                           "no-refine", "no-analysis", "position-prior", "probe-tail", "bootstrap"},
                          stage_of);
    o.checkpoint_dir = ck.dir;
    o.checkpoint_settings = ck.settings;
    o.checkpoint_stage_settings = ck.stage_settings;
    o.checkpoint_every = checkpoint_every_option(vm);
  }

  PipelineObserver log;  // lines on stderr; progress drawn there as by every command
  log.log = [](const std::string& line) { log_info(line); };
  log.warning = [](const std::string& w) { log_warning(w); };
  PipelineResult r;
  const std::string out_dir = vm["out"].as<std::string>();
  if (vm.count("tilts")) {
    SeriesInput in;
    in.source = vm["tilts"].as<std::string>();
    in.views = read_tilt_series(in.source, vm);
    const AngleFile af = read_angles(vm["angles"].as<std::string>(), in.views.nz(), in.source);
    in.nominal = af.views;
    in.single_axis = af.format == AngleFormat::tilt;
    in.geometry = af.geometry();
    if (vm.count("truth")) {
      const std::string truth = vm["truth"].as<std::string>();
      in.truth = read_xyz(truth);
      // Scoring against nothing can only fail, after the whole run: say so now.
      if (in.truth->size() == 0) fail_file(truth, "--truth: the model holds no atoms");
    }
    // The species decide the classes and the network's domain: a guess would be silent.
    if (vm["elements"].defaulted())
      fail_input(
          "--elements is required with --tilts: the species in the views, lightest first "
          "(e.g. --elements Ta, or Fe,Pt)");
    OutputDir out(out_dir, kPipelineFiles);
    r = run_pipeline(std::move(in), o, log, inv.command_line);
    write_outputs(r, out, inv, p);
  } else {
    SimulationInput in;
    in.phantom = vm["phantom"].as<std::string>();
    in.tilt_range = vm["tilt-range"].as<std::string>();
    in.dose = vm["dose"].as<double>();
    in.shift_max_px = vm["shift-max"].as<double>();
    in.axis_rotation_deg = vm["axis-rotation"].as<double>();
    in.angle_error_deg = vm["angle-error"].as<double>();
    if (vm["elements"].defaulted()) {
      o.elements = phantom_elements(in.phantom);
      std::string list;
      for (const auto& e : o.elements) list += (list.empty() ? "" : ",") + e;
      log_info("elements " + list + " (the phantom's species)");
    }
    OutputDir out(out_dir, kPipelineFiles);
    r = run_pipeline(in, o, log, inv.command_line);
    write_outputs(r, out, inv, p);
  }
  log_info("wrote " + out_dir + "/{reconstruction.mrc, atoms.xyz, metrics.json, result.h5}");
  return 0;
}

}  // namespace aet::cli
