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
#include <sstream>
#include <string>
#include <vector>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/networks/training_data.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"
#if AET_WITH_TORCH
#include "aet/networks/network.hpp"
#endif

namespace aet::cli {

#if AET_WITH_TORCH
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

std::string summary_json(const std::vector<const Scored*>& rows) {
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
  std::ostringstream o;
  o << "{\"samples\": " << rows.size()
    << ", \"mean_rmsd_change\": " << json_number(mean_change(rows))
    << ", \"mean_recall_without\": " << json_number(plain_recall / n)
    << ", \"mean_recall_with\": " << json_number(net_recall / n)
    << ", \"min_precision_with\": " << json_number(min_precision)
    << ", \"samples_precision_below_99\": " << precision_below
    << ", \"samples_surface_recall_lower\": " << surface_lower
    << ", \"samples_without_rmsd\": " << unscored << "}";
  return o.str();
}

}  // namespace
#endif

int run_score_network(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("data", po::value<std::string>()->value_name("SET.h5"),
       "simulated set from aet make-training-set (with a seed no training set used)")
    ("model", po::value<std::string>()->value_name("FILE"),
       "network weights (HDF5); default: the shipped model (networks/models/, or $AET_MODEL)")
    ("json", po::value<std::string>()->value_name("FILE"),
       "write every sample's scores and the summary as JSON")
    ("min-distance", po::value<double>()->default_value(2.0)->value_name("A"),
       "tracing: minimum distance between atoms (Angstrom)")
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
  Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, synopsis, about, desc);
    return 0;
  }
#if !AET_WITH_TORCH
  fail_input("aet score-network: this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
#else
  const auto& vm = p.vm;
  if (!vm.count("data")) fail_input("--data SET.h5 is required");
  const std::string data_path = vm["data"].as<std::string>();
  const double min_distance = vm["min-distance"].as<double>();
  if (!(min_distance > 0)) fail_input("--min-distance must be > 0");
  const std::int64_t count = vm["count"].as<std::int64_t>();
  if (count < 0) fail_input("--count must be >= 0");
  nn::AugmentOptions aopt;
  aopt.flips = flips_option(vm);
  const Device dev = network_device(vm, resolve_device(vm["device"].as<std::string>()));
  const std::string model_path =
      resolve_model_path(vm.count("model") ? vm["model"].as<std::string>() : "");
  const nn::Model model = nn::load_model(model_path, dev);

  nn::TrainingDataSpec spec;
  std::vector<nn::TrainingSample> samples = nn::read_training_set(data_path, &spec);
  if (samples.empty()) fail_file(data_path, "holds no samples");
  if (count > 0 && static_cast<std::size_t>(count) < samples.size())
    samples.resize(static_cast<std::size_t>(count));
  const ReconRecipe meant = model_input_recipe(model), made{spec.iterations, spec.recon_step};
  if (meant.known() && meant != made)
    log_warning(data_path + " holds RESIRE inputs of " + std::to_string(made.iterations) +
                " iterations at step " + fmt("%g", made.step) + ", but the model is meant for " +
                std::to_string(meant.iterations) + " at step " + fmt("%g", meant.step) +
                " (aet model-input): these scores are of inputs it is not meant for");
  if (const std::string why = voxel_size_mismatch(model, spec.pixel); !why.empty())
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
    std::ostringstream o;
    o << "{\n  \"data\": " << json_escape(data_path)
      << ",\n  \"model\": " << json_escape(model_path) << ",\n  \"flips\": " << aopt.flips
      << ",\n  \"input_recipe\": {\"iterations\": " << made.iterations
      << ", \"step\": " << json_number(made.step) << "},\n  \"model_input_recipe\": ";
    if (meant.known())
      o << "{\"iterations\": " << meant.iterations << ", \"step\": " << json_number(meant.step)
        << "}";
    else
      o << "null";
    o << ",\n  \"command_line\": " << json_escape(inv.command_line)
      << ",\n  \"seconds\": " << json_number(seconds) << ",\n  \"summary\": " << summary_json(all)
      << ",\n  \"by_material\": {";
    bool first = true;
    for (const auto& [material, group] : by_material) {
      o << (first ? "\n" : ",\n") << "    " << json_escape(material) << ": " << summary_json(group);
      first = false;
    }
    o << "\n  },\n  \"samples\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Scored& r = rows[i];
      o << (i ? ",\n" : "\n") << "    {\"index\": " << r.index
        << ", \"material\": " << json_escape(r.material) << ", \"shape\": " << json_escape(r.shape)
        << ", \"atoms\": " << r.atoms << ", \"tilt_max\": " << json_number(r.tilt_max)
        << ", \"tilt_step\": " << json_number(r.tilt_step) << ", \"dose\": " << json_number(r.dose)
        << ", \"rmsd_change\": " << json_number(r.change())
        << ",\n     \"without\": " << r.plain.to_json()
        << ",\n     \"with\": " << r.network.to_json() << "}";
    }
    o << "\n  ]\n}\n";
    write_text_file(vm["json"].as<std::string>(), o.str());
  }
  return 0;
#endif
}

}  // namespace aet::cli
