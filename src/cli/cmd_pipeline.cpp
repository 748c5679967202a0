// aet pipeline: the whole chain in one command. With --tilts it runs on the user's series; with
// none it simulates a built-in particle, runs the same chain, and scores itself against the truth.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "aet/align/align.hpp"
#include "aet/align/model_refinement.hpp"
#include "aet/analysis/evaluate.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/device.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/recon/solvers.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"
#include "phantoms/nanoparticle.hpp"
#include "phantoms/tilt_series.hpp"

namespace aet::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Log lines go to stderr (through log_info) and into DIR/pipeline.log.
class RunLog {
 public:
  void line(const std::string& s) {
    log_info(s);
    text_ += s + "\n";
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace

int run_pipeline(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("tilts", po::value<std::string>()->value_name("T.mrc"), "tilt series (MRC stack)")
    ("angles", po::value<std::string>()->value_name("A"),
       "angles: .tlt/.rawtlt (single axis) or phi theta psi Euler text")
    ("truth", po::value<std::string>()->value_name("XYZ"), "score the result against this model")
    ("pixel", po::value<double>()->value_name("A"), "pixel size (default: from the MRC header)")
    ("elements", po::value<std::string>()->default_value("Pt")->value_name("LIST"),
       "species by intensity, lightest first (e.g. Fe,Pt)")
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("algorithm", po::value<std::string>()->default_value("resire"), "resire, sirt or fbp")
    ("iterations", po::value<int>()->default_value(50)->value_name("N"), "solver iterations")
    ("align", "align even a built-in simulation (the default for --tilts input)")
    ("no-align", "skip alignment (the views are already aligned and preprocessed)")
    ("align-rounds", po::value<int>()->default_value(5)->value_name("N"),
       "projection-matching rounds of the alignment")
    ("no-background", "alignment: keep the views' background (films, pre-processed data)")
    ("no-refine-angles",
     "alignment: keep the nominal per-view angles (refined by default against a traced atomic "
     "model, for an isolated particle)")
    ("angle-search", po::value<double>()->default_value(10.0)->value_name("DEG"),
       "alignment: half-range of the grid search of each view's rotation before the local fit of "
       "the angles (0 = local fit only)")
    ("no-refine", "keep the traced atoms: skip their refinement against the views")
    ("position-prior", po::value<double>()->default_value(0.05, "0.05")->value_name("A"),
       "refinement: sd of a Gaussian prior on each atom's position about its traced position, "
       "per coordinate, weighed against the views' noise (0 = none; docs/refinement.md)")
    ("min-distance", po::value<double>()->default_value(2.0)->value_name("A"),
       "minimum distance between atoms")
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
      "(datasets and provenance), pipeline.log; with a simulated input also tilts.mrc, tilts.tlt "
      "and truth.xyz.";
  add_network_options(desc);
  const Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, "[--tilts T.mrc --angles A [--truth XYZ]] --out DIR [options]", about, desc);
    return 0;
  }
  const auto& vm = p.vm;
  if (!vm.count("out")) fail_input("--out DIR is required");
  if (vm.count("tilts") != vm.count("angles")) fail_input("--tilts and --angles go together");
  const Device device = resolve_recon_device(vm);
  const std::uint64_t seed = seed_or_default(vm);
  const std::vector<std::string> elements = parse_elements(vm["elements"].as<std::string>());
  const int iterations = vm["iterations"].as<int>();
  if (iterations < 1) fail_input("--iterations must be >= 1");
  const double angle_search = vm["angle-search"].as<double>();
  if (!(angle_search >= 0 && angle_search <= 45))
    fail_input("--angle-search must be in [0, 45] degrees");
  const double min_distance = vm["min-distance"].as<double>();
  if (!(min_distance > 0)) fail_input("--min-distance must be > 0");
  const double position_prior = vm["position-prior"].as<double>();
  if (!(position_prior >= 0) || !std::isfinite(position_prior))
    fail_input("--position-prior must be >= 0 Angstrom");
  // Loaded before any long computation, so a bad --model fails at once.
  NetworkStage network(vm, network_device(vm, device));

  RunLog log;
  const auto t_start = Clock::now();
  std::ostringstream timing;

  // ---- input: the user's series, or a simulated one -------------------------------------------
  Array3 views;
  TiltGeometry geometry;
  std::vector<Euler> nominal;
  bool single_axis = true;
  AtomModel truth;
  bool have_truth = false;
  bool misaligned = false;
  std::string source;
  if (vm.count("tilts")) {
    source = vm["tilts"].as<std::string>();
    views = read_tilt_series(source, vm);
    const AngleFile af = read_angles(vm["angles"].as<std::string>(), views.nz());
    nominal = af.views;
    single_axis = af.format == AngleFormat::tilt;
    geometry = af.geometry();
    if (vm.count("truth")) {
      truth = read_xyz(vm["truth"].as<std::string>());
      have_truth = true;
    }
  } else {
    if (vm.count("truth")) fail_input("--truth needs --tilts (the simulated input has its own)");
    const auto& named = phantoms::find_phantom(vm["phantom"].as<std::string>());
    phantoms::ParticleSpec spec = named.spec;
    spec.seed = seed;
    truth = phantoms::build_particle(spec);
    have_truth = true;
    phantoms::SimulationSpec sim;
    for (double t : phantoms::parse_tilt_range(vm["tilt-range"].as<std::string>()).angles())
      sim.nominal.push_back(Euler{0.0, t, 0.0});
    sim.dose = vm["dose"].as<double>();
    if (!(sim.dose >= 0) || !std::isfinite(sim.dose)) fail_input("--dose must be >= 0");
    // The demo's "realistic" imaging: a wide probe tail and a smooth background.
    sim.imaging.tail_fraction = 0.1;
    sim.imaging.tail_sigma = 4.0;
    sim.background = 0.05;
    sim.shift_max_px = vm["shift-max"].as<double>();
    sim.axis_rotation = vm["axis-rotation"].as<double>();
    sim.angle_error_sd = vm["angle-error"].as<double>();
    if (!(sim.shift_max_px >= 0) || !std::isfinite(sim.axis_rotation))
      fail_input("--shift-max must be >= 0 and --axis-rotation finite");
    if (!(sim.angle_error_sd >= 0) || !std::isfinite(sim.angle_error_sd))
      fail_input("--angle-error must be >= 0");
    sim.seed = seed + 1;
    source = "simulated phantom " + named.name;
    log.line("aet pipeline: simulating " + named.name + " (" + std::to_string(truth.size()) +
             " atoms, " + std::to_string(sim.nominal.size()) + " views)");
    const auto t0 = Clock::now();
    phantoms::TiltSeries series = phantoms::simulate_tilt_series(truth, sim, device);
    timing << "    \"simulate\": " << json_number(seconds_since(t0)) << ",\n";
    views = std::move(series.views);
    nominal = series.nominal;
    // Misaligned on request: then the chain starts from the nominal angles, as with real data.
    misaligned = sim.shift_max_px > 0 || sim.axis_rotation != 0 || sim.angle_error_sd > 0;
    if (misaligned) {
      for (const auto& e : nominal) geometry.push_back(ViewGeometry::from_euler(e));
    } else {
      geometry = series.truth;
    }
    truth.set_info("source", source);
    truth.set_info("seed", std::to_string(seed));
  }
  if (vm.count("align") && vm.count("no-align"))
    fail_input("--align and --no-align exclude each other");
  const bool do_align =
      !vm.count("no-align") && (vm.count("tilts") || vm.count("align") || misaligned);
  const int align_rounds = vm["align-rounds"].as<int>();
  if (align_rounds < 0) fail_input("--align-rounds must be >= 0");
  const std::string out_dir = vm["out"].as<std::string>();
  OutputDir out(out_dir);

  // ---- align --------------------------------------------------------------------------------
  std::string align_json = "null";
  if (do_align) {
    AlignOptions ao;
    ao.rounds = align_rounds;
    ao.device = device;
    ao.seed = seed;
    if (vm.count("no-background")) ao.preprocess.subtract_background = false;
    ao.refine_angles = !vm.count("no-refine-angles");
    ao.angle_search_deg = angle_search;
    log.line("aligning (" + std::to_string(align_rounds) + " rounds of projection matching)");
    const auto t_align = Clock::now();
    AlignResult al = align_tilt_series(views, nominal, ao);
    timing << "    \"align\": " << json_number(seconds_since(t_align)) << ",\n";
    char buf[200];
    std::snprintf(buf, sizeof buf, "  tilt axis %.3f deg from y, R1 %.4f -> %.4f", al.tilt_axis_deg,
                  al.r1_initial, al.r1_final);
    log.line(buf);
    std::ostringstream aj;
    aj << "{\"tilt_axis_deg\": " << json_number(al.tilt_axis_deg)
       << ", \"r1_initial\": " << json_number(al.r1_initial)
       << ", \"r1_final\": " << json_number(al.r1_final) << ", \"rounds\": " << al.rounds.size()
       << ", \"refine_angles\": " << (ao.refine_angles ? "true" : "false")
       << ", \"angle_search_deg\": " << json_number(ao.angle_search_deg)
       << ", \"model_r1_final\": " << json_number(al.model_r1_final) << "}";
    align_json = aj.str();
    views = std::move(al.views);
    geometry = std::move(al.geometry);
  }

  // ---- reconstruct --------------------------------------------------------------------------
  ReconOptions ro;
  ro.algorithm = parse_algorithm(vm["algorithm"].as<std::string>());
  ro.iterations = iterations;
  ro.device = device;
  log.line("reconstructing " + std::to_string(views.nx()) + " x " + std::to_string(views.ny()) +
           " x " + std::to_string(views.nz()) + " views (" + vm["algorithm"].as<std::string>() +
           ", " + std::to_string(iterations) + " iterations, " + device.str() + ")");
  // The network's input is RESIRE made as its training inputs were (the model file's recipe).
  // With this run's step and fewer iterations it is a snapshot of this solve: plain RESIRE is
  // gradient descent, so going on from the snapshot gives the volume of one uninterrupted run.
  network.check_voxel_size(views.voxel_size.x);
  const ReconRecipe recipe = network.input_recipe();
  const bool resire = ro.algorithm == Algorithm::resire;
  const bool snapshot = recipe.known() && resire && recipe.iterations < iterations &&
                        recipe == ReconRecipe{recipe.iterations, ro.step};
  auto t0 = Clock::now();
  ReconResult rec;
  Array3 network_input;  // empty: the network gets rec.volume
  if (snapshot) {
    ReconOptions first = ro;
    first.iterations = recipe.iterations;
    ReconResult part = reconstruct(views, geometry, first);
    network_input = std::move(part.volume);
    ReconOptions rest = ro;
    rest.iterations = iterations - recipe.iterations;
    rest.initial = &network_input;
    rec = reconstruct(views, geometry, rest);
    rec.r1.insert(rec.r1.begin(), part.r1.begin(), part.r1.end());
    rec.r2.insert(rec.r2.begin(), part.r2.begin(), part.r2.end());
    rec.seconds += part.seconds;
    rec.device_bytes = std::max(rec.device_bytes, part.device_bytes);
  } else {
    rec = reconstruct(views, geometry, ro);
  }
  timing << "    \"reconstruct\": " << json_number(seconds_since(t0)) << ",\n";
  const double r1 = rec.r1.empty() ? std::nan("") : rec.r1.back();
  log.line("  R1 = " + json_number(r1) + " after " + json_number(seconds_since(t0)) + " s");

  // ---- missing-wedge network ----------------------------------------------------------------
  Array3 augmented;
  std::string input_json = "null";
  if (network.active()) {
    log.line("missing-wedge network: " + network.model_path());
    if (recipe.known()) {
      const bool same = resire && recipe == ReconRecipe{iterations, ro.step};
      const char* source = snapshot ? "snapshot" : same ? "reconstruction" : "separate";
      log.line("  input: RESIRE, " + std::to_string(recipe.iterations) + " iterations at step " +
               json_number(recipe.step) + " (the model's input recipe; " + source + ")");
      if (!snapshot && !same) {
        ReconOptions ni = ro;
        ni.algorithm = Algorithm::resire;
        ni.iterations = recipe.iterations;
        ni.step = recipe.step;
        ni.accelerate = false;
        t0 = Clock::now();
        network_input = reconstruct(views, geometry, ni).volume;
        timing << "    \"network_input\": " << json_number(seconds_since(t0)) << ",\n";
      }
      input_json = "{\"iterations\": " + std::to_string(recipe.iterations) +
                   ", \"step\": " + json_number(recipe.step) + ", \"source\": \"" + source + "\"}";
    }
    t0 = Clock::now();
    augmented = network.apply(network_input.empty() ? rec.volume : network_input);
    timing << "    \"network\": " << json_number(seconds_since(t0)) << ",\n";
    log.line("  " + json_number(seconds_since(t0)) + " s");
  } else {
    log.line("missing-wedge network skipped: " + network.skip_reason());
  }

  // ---- trace --------------------------------------------------------------------------------
  TraceOptions to;
  to.elements = elements;
  to.min_distance = min_distance;
  to.seed = seed;
  t0 = Clock::now();
  AtomModel atoms = trace_atoms(network.active() ? augmented : rec.volume, to);
  timing << "    \"trace\": " << json_number(seconds_since(t0)) << ",\n";
  log.line("traced " + std::to_string(atoms.size()) + " atoms" +
           (network.active() ? " in the network's volume" : ""));
  atoms.set_info("source", source);
  atoms.set_info("seed", std::to_string(seed));
  atoms.set_info("aet_version", AET_VERSION);

  // ---- refine the atomic model against the views ---------------------------------------------
  const bool do_refine = !vm.count("no-refine");
  // Refines a traced model against the views and re-classifies it from the refined intensities;
  // `json` gets the stage's summary for metrics.json, and `say` logs it.
  auto refine = [&](const AtomModel& traced, std::string& json, bool say) {
    ModelRefineOptions mo;
    mo.refine_shifts = mo.refine_angles = false;  // the geometry is alignment's business
    mo.position_prior = position_prior;
    ModelRefineResult mr = refine_atomic_model(views, geometry, traced, mo);
    // Classes again, from the refined intensities: each is fitted to every view, free of the
    // reconstruction's missing-wedge and neighbour blur, and a spurious atom's falls to about
    // zero (docs/refinement.md).
    const std::vector<double> weight = *mr.model.find_property("model_weight");
    const ClassifyResult cr = classify_atoms(mr.model, weight, elements, seed);
    const double moved = mr.rms_displacement;
    if (say) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "refined the atoms against the views: R1 %.4f -> %.4f, width %.3f A, atoms "
                    "moved %.1f pm RMS",
                    mr.r1.front(), mr.r1.back(), mr.sigma, 100 * moved);
      log.line(buf);
      log.line("  classes from the refined intensities: " + std::to_string(cr.changed) +
               " species changed, " + std::to_string(cr.removed) + " atoms removed (" + cr.how +
               ")");
    }
    json = "{\"r1_initial\": " + json_number(mr.r1.front()) +
           ", \"r1_final\": " + json_number(mr.r1.back()) +
           ", \"sigma_angstrom\": " + json_number(mr.sigma) +
           ", \"rms_displacement_angstrom\": " + json_number(moved) +
           ", \"position_prior_angstrom\": " + json_number(position_prior) +
           ", \"species_changed\": " + std::to_string(cr.changed) +
           ", \"atoms_removed\": " + std::to_string(cr.removed) +
           ", \"classes\": " + json_escape(cr.how) + "}";
    return std::move(mr.model);
  };
  AtomModel refined;
  std::string refine_json = "null", refine_plain_json;
  if (do_refine && atoms.size() > 0) {
    t0 = Clock::now();
    refined = refine(atoms, refine_json, true);
    timing << "    \"refine\": " << json_number(seconds_since(t0)) << ",\n";
  }

  // ---- evaluate -----------------------------------------------------------------------------
  std::string evaluation_json, evaluation_plain_json, evaluation_refined_json,
      evaluation_refined_plain_json;
  auto score = [&](const AtomModel& traced, const char* what) {
    const EvaluationResult ev = evaluate(traced, truth);
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "against the truth%s: recall %.2f %%, precision %.2f %%, RMSD %.1f pm (x %.1f, y "
                  "%.1f, z %.1f), surface recall %.2f %%",
                  what, 100 * ev.recall, 100 * ev.precision, ev.rmsd_pm, ev.rmsd_axis_pm.x(),
                  ev.rmsd_axis_pm.y(), ev.rmsd_axis_pm.z(), 100 * ev.surface_recall);
    std::string line = buf;
    if (ev.by_species.size() > 1)  // an alloy: the light atoms' error is the one to watch
      for (const auto& [species, part] : ev.by_species) {
        std::snprintf(buf, sizeof buf, ", %s %.1f pm", species.c_str(), part.rmsd_pm);
        line += buf;
      }
    log.line(line);
    return ev.to_json();
  };
  if (have_truth) {
    evaluation_json = score(atoms, network.active() ? " (with the network)" : "");
    // The same chain without the network, so its effect is measured on every scored run: on the
    // traced model and on the final (refined) one.
    AtomModel plain;
    if (network.active()) {
      plain = trace_atoms(rec.volume, to);
      evaluation_plain_json = score(plain, " (without the network)");
    }
    if (refined.size() > 0) evaluation_refined_json = score(refined, " (refined atoms)");
    if (refined.size() > 0 && plain.size() > 0) {
      t0 = Clock::now();
      const AtomModel plain_refined = refine(plain, refine_plain_json, false);
      timing << "    \"refine_without_network\": " << json_number(seconds_since(t0)) << ",\n";
      evaluation_refined_plain_json = score(plain_refined, " (refined atoms, without the network)");
    }
  }
  const double total = seconds_since(t_start);
  log.line("total " + json_number(total) + " s");

  // ---- outputs ------------------------------------------------------------------------------
  const std::string label = "aet " AET_VERSION " pipeline seed " + std::to_string(seed);
  if (!vm.count("tilts")) {
    write_mrc(out.path("tilts.mrc"), views, MrcKind::stack, {label + " simulated views"});
    if (single_axis) {
      std::vector<double> tilts;
      for (const auto& e : nominal) tilts.push_back(e.theta);
      write_tilt_angles(out.path("tilts.tlt"), tilts);
    }
    write_xyz(out.path("truth.xyz"), truth);
  }
  write_geometry(out.path("geometry.txt"), geometry,
                 do_align ? "view geometry refined by aet align" : "view geometry used");
  write_mrc(out.path("reconstruction.mrc"), rec.volume, MrcKind::volume,
            resire ? std::vector<std::string>{label, recipe_label({iterations, ro.step})}
                   : std::vector<std::string>{label});
  if (network.active())
    write_mrc(out.path("augmented.mrc"), augmented, MrcKind::volume,
              {label + " network " + network.model_path()});
  // atoms.xyz is the final model: the refined atoms unless --no-refine.
  write_xyz(out.path("atoms.xyz"), refined.size() > 0 ? refined : atoms);
  if (refined.size() > 0) write_xyz(out.path("traced.xyz"), atoms);

  std::ostringstream js;
  js << "{\n  \"aet_version\": " << json_escape(AET_VERSION)
     << ",\n  \"command_line\": " << json_escape(inv.command_line)
     << ",\n  \"source\": " << json_escape(source) << ",\n  \"seed\": " << seed
     << ",\n  \"device\": " << json_escape(device.str()) << ",\n  \"views\": " << views.nz()
     << ",\n  \"algorithm\": " << json_escape(vm["algorithm"].as<std::string>())
     << ",\n  \"iterations\": " << iterations << ",\n  \"alignment\": " << align_json
     << ",\n  \"network\": {\"used\": " << (network.active() ? "true" : "false")
     << ", \"model\": " << json_escape(network.model_path()) << ", \"flips\": " << network.flips()
     << ", \"skipped_because\": " << json_escape(network.skip_reason())
     << ", \"input\": " << input_json << "}"
     << ",\n  \"r1\": " << json_number(r1) << ",\n  \"traced_atoms\": " << atoms.size()
     << ",\n  \"refinement\": " << refine_json << ",\n  \"seconds\": {\n"
     << timing.str() << "    \"total\": " << json_number(total) << "\n  }";
  if (have_truth) js << ",\n  \"evaluation\": " << evaluation_json;
  if (!evaluation_plain_json.empty())
    js << ",\n  \"evaluation_without_network\": " << evaluation_plain_json;
  if (!evaluation_refined_json.empty())
    js << ",\n  \"evaluation_refined\": " << evaluation_refined_json;
  if (!refine_plain_json.empty())
    js << ",\n  \"refinement_without_network\": " << refine_plain_json;
  if (!evaluation_refined_plain_json.empty())
    js << ",\n  \"evaluation_refined_without_network\": " << evaluation_refined_plain_json;
  js << "\n}\n";
  write_text_file(out.path("metrics.json"), js.str());

  Provenance prov;
  prov.command_line = inv.command_line;
  prov.config = p.effective_config;
  prov.seed = seed;
  prov.has_seed = true;
  {
    ResultWriter h5(out.path("result.h5"), prov);
    h5.write_volume("reconstruction", rec.volume);
    if (network.active()) h5.write_volume("augmented", augmented);
    h5.write_vector("recon/r1", rec.r1);
    h5.write_vector("recon/r2", rec.r2);
    h5.write_atoms("atoms", refined.size() > 0 ? refined : atoms);
    if (refined.size() > 0) h5.write_atoms("traced", atoms);
    if (have_truth) h5.write_atoms("truth", truth);
    h5.set_attribute("source", source);
    h5.commit();
  }
  write_text_file(out.path("pipeline.log"), inv.command_line + "\n\n" + log.text() +
                                                "\n# effective configuration\n" +
                                                p.effective_config);
  out.commit();
  log_info("wrote " + out_dir + "/{reconstruction.mrc, atoms.xyz, metrics.json, result.h5}");
  return 0;
}

}  // namespace aet::cli
