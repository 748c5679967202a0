// aet score-network: a network model scored the way the pipeline uses it, on a simulated set
// whose truth is known. Each sample's input is traced as it is and after the network, and both
// atom models are scored against the sample's truth; the summary is what the model changes.
// Needs a build with LibTorch; without it the command says so and exits with code 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/training_data.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {

namespace {

// The truth's species, lightest first: what the tracer is told to look for.
std::vector<std::string> species_by_z(const AtomModel& truth) {
  std::set<std::string> s(truth.species.begin(), truth.species.end());
  std::vector<std::string> out(s.begin(), s.end());
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return element(a).z < element(b).z; });
  return out;
}

std::string info_or(const AtomModel& m, const std::string& key, const std::string& fallback) {
  const std::string* v = m.find_info(key);
  return v ? *v : fallback;
}

struct Scored {
  std::size_t index = 0;
  std::string material, shape;
  std::size_t atoms = 0;
  double tilt_max = 0, tilt_step = 0, dose = 0;
  EvaluationResult plain, network;
  double change() const { return network.rmsd_pm / plain.rmsd_pm - 1.0; }
};

// evaluate(), except that a trace without atoms scores recall 0 with no RMSD (NaN) instead of
// being refused: a model that erases every atom is scored, not an error.
EvaluationResult score(const AtomModel& traced, const AtomModel& truth) {
  if (traced.size() > 0) return evaluate(traced, truth);
  EvaluationResult e;
  e.truth_atoms = truth.size();
  e.precision = e.rmsd_pm = e.mean_error_pm = e.max_error_pm = std::nan("");
  e.surface_recall = 0;
  return e;
}

// Mean of the relative RMSD changes of `rows` (each sample counts once, whatever its size), over
// the samples where both traces found atoms.
double mean_change(const std::vector<const Scored*>& rows) {
  double s = 0;
  int n = 0;
  for (const Scored* r : rows)
    if (std::isfinite(r->change())) {
      s += r->change();
      ++n;
    }
  return n ? s / n : std::nan("");
}

Json summary_json(const std::vector<const Scored*>& rows) {
  double min_precision = 1, plain_recall = 0, net_recall = 0;
  std::size_t unscored = 0, surface_lower = 0, precision_below = 0;
  for (const Scored* r : rows) {
    if (std::isfinite(r->network.precision))
      min_precision = std::min(min_precision, r->network.precision);
    unscored += !std::isfinite(r->change());
    plain_recall += r->plain.recall;
    net_recall += r->network.recall;
    precision_below += r->network.precision < 0.99;
    surface_lower += r->network.surface_recall < r->plain.surface_recall;
  }
  const double n = static_cast<double>(rows.size());  // never 0: groups of scored samples
  Json o;
  o["samples"] = rows.size();
  o["mean_rmsd_change"] = mean_change(rows);
  o["mean_recall_without"] = plain_recall / n;
  o["mean_recall_with"] = net_recall / n;
  o["min_precision_with"] = min_precision;
  o["samples_precision_below_99"] = precision_below;
  o["samples_surface_recall_lower"] = surface_lower;
  o["samples_without_rmsd"] = unscored;
  return o;
}

// A recipe as {"iterations": N, "step": S}.
Json recipe_json(const nn::ReconRecipe& r) {
  Json o;
  o["iterations"] = r.iterations;
  o["step"] = r.step;
  return o;
}

}  // namespace

int run_score_network(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("data", po::value<std::string>()->value_name("SET.h5"),
       "simulated set from aet make-training-set (with a seed no training set used)");
  add_model_option(desc);
  desc.add_options()
    ("json", po::value<std::string>()->value_name("FILE"),
       "write every sample's scores and the summary as JSON");
  add_min_distance_option(desc, "tracing: minimum distance between atoms (Angstrom)");
  desc.add_options()
    ("count", po::value<std::int64_t>()->default_value(0)->value_name("N"),
       "score the first N samples only (0 = all)");
  // clang-format on
  add_flips_option(desc);
  add_common_options(desc, true);
  const auto synopsis = "--data SET.h5 [--model FILE] [--json FILE] [options]";
  const auto about =
      "Scores a missing-wedge network model on simulated particles whose truth is known, the way "
      "the pipeline uses it: each sample's input reconstruction is traced as it is and after the "
      "network (with --flips mirror images averaged), with the truth's species, and both atom "
      "models are scored against the truth (aet evaluate). Prints one line per sample (RMSD "
      "without and with the network, its change, recall, precision and surface recall) and the "
      "mean change per material and over the set.\n\nMake the set with a seed that no training "
      "set used, and with the model's input recipe (aet model-input; make-training-set "
      "--iterations and --step): samples reconstructed another way are outside what the model "
      "is meant for, and the command warns.";
  const Parsed p =
      parse_or_help(inv, desc, {synopsis, about, {"data SET.h5"}, /*needs_torch=*/true});
  if (p.help) return 0;
  const auto& vm = p.vm;
  const std::string data_path = vm["data"].as<std::string>();
  const double min_distance = min_distance_option(vm);
  const std::int64_t count = vm["count"].as<std::int64_t>();
  if (count < 0) fail_input("--count must be >= 0");
  nn::AugmentOptions aopt;
  aopt.flips = flips_option(vm);
  const Device dev = network_device(vm, device_option(vm));
  const std::string model_path = model_option(vm);
  const nn::Model model = nn::load_model(model_path, dev);

  nn::TrainingDataSpec spec;
  std::vector<nn::TrainingSample> samples = nn::read_training_set(data_path, &spec);
  if (samples.empty()) fail_file(data_path, "holds no samples");
  if (count > 0 && static_cast<std::size_t>(count) < samples.size())
    samples.resize(static_cast<std::size_t>(count));
  const nn::ReconRecipe meant = nn::model_input_recipe(model),
                        made{spec.iterations, spec.recon_step};
  if (meant.known() && meant != made)
    log_warning(data_path + " holds RESIRE inputs of " + std::to_string(made.iterations) +
                " iterations at step " + fmt("%g", made.step) + ", but the model is meant for " +
                std::to_string(meant.iterations) + " at step " + fmt("%g", meant.step) +
                " (aet model-input): these scores are of inputs it is not meant for");
  if (const std::string why = nn::voxel_size_mismatch(model, spec.pixel); !why.empty())
    fail_file(data_path, why);
  log_info("aet score-network: " + std::to_string(samples.size()) + " samples of " + data_path +
           " with " + model_path + " on " + dev.str() + ", " + std::to_string(aopt.flips) +
           " flips");
  log_info(
      "sample material shape atoms tilt step dose | RMSD pm without -> with (change) | recall % "
      "without / with | precision % with | surface recall % without / with");

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Scored> rows;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const nn::TrainingSample& s = samples[i];
    Scored r;
    r.index = i;
    r.material = info_or(s.truth, "element", "?");
    r.shape = info_or(s.truth, "shape", "?");
    r.atoms = s.truth.size();
    r.tilt_max = s.tilt_max;
    r.tilt_step = s.tilt_step;
    r.dose = s.dose;
    TraceOptions to;
    to.elements = species_by_z(s.truth);
    to.min_distance = min_distance;
    to.seed = seed_or_default(vm);
    try {
      r.plain = score(trace_atoms(s.input, to), s.truth);
      r.network = score(trace_atoms(nn::augment(model, s.input, aopt), to), s.truth);
    } catch (const InputError& e) {
      // A truth the scoring refuses (no atoms, say): name the sample.
      fail_file(data_path, "sample " + std::to_string(i) + ": " + e.what());
    }
    char line[256];
    std::snprintf(line, sizeof line,
                  "%4zu %-5s %-21s %5zu %5.1f %2.0f %8.3g | %6.2f -> %6.2f (%+6.1f %%) | %6.2f / "
                  "%6.2f | %6.2f | %6.2f / %6.2f",
                  i, r.material.c_str(), r.shape.c_str(), r.atoms, r.tilt_max, r.tilt_step, r.dose,
                  r.plain.rmsd_pm, r.network.rmsd_pm, 100 * r.change(), 100 * r.plain.recall,
                  100 * r.network.recall, 100 * r.network.precision, 100 * r.plain.surface_recall,
                  100 * r.network.surface_recall);
    log_info(line);
    rows.push_back(std::move(r));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<const Scored*> all;
  std::map<std::string, std::vector<const Scored*> > by_material;
  for (const Scored& r : rows) {
    all.push_back(&r);
    by_material[r.material].push_back(&r);
  }
  for (const auto& [material, group] : by_material)
    log_info("  " + material + ": " + std::to_string(group.size()) + " samples, mean RMSD change " +
             fmt("%+.1f", 100 * mean_change(group)) + " %");
  log_info("all: " + std::to_string(rows.size()) + " samples, mean RMSD change " +
           fmt("%+.1f", 100 * mean_change(all)) + " % (" + fmt("%.1f", seconds) + " s)");

  if (vm.count("json")) {
    Json o;
    o["data"] = data_path;
    o["model"] = model_path;
    o["flips"] = aopt.flips;
    o["input_recipe"] = recipe_json(made);
    o["model_input_recipe"] = meant.known() ? recipe_json(meant) : Json(nullptr);
    o["command_line"] = inv.command_line;
    o["seconds"] = seconds;
    o["summary"] = summary_json(all);
    Json materials = Json::object();
    for (const auto& [material, group] : by_material) materials[material] = summary_json(group);
    o["by_material"] = std::move(materials);
    Json samples_js = Json::array();
    for (const Scored& r : rows) {
      Json sample;
      sample["index"] = r.index;
      sample["material"] = r.material;
      sample["shape"] = r.shape;
      sample["atoms"] = r.atoms;
      sample["tilt_max"] = r.tilt_max;
      sample["tilt_step"] = r.tilt_step;
      sample["dose"] = r.dose;
      sample["rmsd_change"] = r.change();
      sample["without"] = r.plain.json();
      sample["with"] = r.network.json();
      samples_js.push_back(std::move(sample));
    }
    o["samples"] = std::move(samples_js);
    write_text_file(vm["json"].as<std::string>(), json_text(o));
  }
  return 0;
}

}  // namespace aet::cli
