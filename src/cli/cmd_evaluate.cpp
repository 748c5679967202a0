// aet evaluate: score a traced atom model against a truth model (registration, one-to-one
// matching, recall/precision/errors) and print the metrics as JSON.
#include <cmath>
#include <cstdio>
#include <string>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/xyz.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {
namespace {

AtomModel read_model(const std::string& path) {
  AtomModel m = read_xyz(path);
  if (m.size() == 0) fail_file(path, "the model holds no atoms");
  return m;
}

}  // namespace

int run_evaluate(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("traced", po::value<std::string>()->value_name("FILE"),
       "the model to score (extended or plain XYZ, Angstrom)")
    ("truth", po::value<std::string>()->value_name("FILE"), "the reference model (XYZ)")
    ("radius", po::value<double>()->default_value(1.0)->value_name("A"),
       "one-to-one matching radius (Angstrom)")
    ("no-register", "match the models as they are, without rigid registration")
    ("no-permutations",
       "register by translation and small rotation only (no axis swaps or mirror images)")
    ("surface-cutoff", po::value<double>()->default_value(0.0)->value_name("A"),
       "neighbour cutoff for truth coordination (0 = 1.2 x median nearest-neighbour distance)")
    ("surface-coordination", po::value<int>()->default_value(0)->value_name("N"),
       "truth atoms with fewer neighbours are surface atoms (0 = bulk coordination - 2)")
    ("out,o", po::value<std::string>()->value_name("FILE"),
       "also write the metrics to this JSON file (atomically)");
  // clang-format on
  add_common_options(desc, false);
  const auto synopsis = "--traced FILE --truth FILE [--radius A] [options]";
  const auto about =
      "Scores a traced atom model against the truth. The traced model is registered rigidly onto "
      "the truth (any shift, the 48 signed axis permutations that other codes' axis order and "
      "handedness produce, and a small rotation refined by ICP), atoms are matched one to one "
      "within the radius, closest pairs first, and the scores are printed as JSON: recall, "
      "precision, RMSD/mean/max error (pm), surface recall, species accuracy and the "
      "registration. See docs/evaluation.md.";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"traced FILE", "truth FILE"}});
  if (p.help) return 0;
  const auto& vm = p.vm;

  EvaluateOptions opt;
  opt.match_radius = vm["radius"].as<double>();
  if (!std::isfinite(opt.match_radius) || opt.match_radius <= 0)
    fail_input("--radius must be > 0, got " + json_number(opt.match_radius));
  opt.register_models = !vm.count("no-register");
  opt.allow_axis_permutations = !vm.count("no-permutations");
  opt.surface_cutoff = vm["surface-cutoff"].as<double>();
  if (!std::isfinite(opt.surface_cutoff) || opt.surface_cutoff < 0)
    fail_input("--surface-cutoff must be >= 0, got " + json_number(opt.surface_cutoff));
  opt.surface_max_coordination = vm["surface-coordination"].as<int>();
  if (opt.surface_max_coordination < 0) fail_input("--surface-coordination must be >= 0");

  if (vm.count("out")) check_output_file("out", vm["out"].as<std::string>(), {".json"}, "JSON");
  const std::string traced_path = vm["traced"].as<std::string>();
  const std::string truth_path = vm["truth"].as<std::string>();
  const AtomModel traced = read_model(traced_path);
  const AtomModel truth = read_model(truth_path);
  const EvaluationResult r = evaluate(traced, truth, opt);

  // The library's object, with provenance keys in front.
  Json js;
  js["aet_version"] = AET_VERSION;
  js["traced_file"] = traced_path;
  js["truth_file"] = truth_path;
  js.update(r.json());
  const std::string body = json_text(js);
  if (vm.count("out")) write_text_file(vm["out"].as<std::string>(), body);
  std::fputs(body.c_str(), stdout);
  log_info("aet evaluate: matched " + std::to_string(r.matched) + " of " +
           std::to_string(r.truth_atoms) + " truth atoms (" + std::to_string(r.traced_atoms) +
           " traced), permutation \"" + r.permutation + "\"");
  return 0;
}

}  // namespace aet::cli
