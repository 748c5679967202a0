// Model evaluation: registration (registration.cpp: signed axis permutation, translation vote, ICP
// with a proper-rotation Kabsch fit), greedy one-to-one matching, surface atoms (surface.cpp) and
// the scores. docs/evaluation.md describes the method; the comments say why each step is the way
// it is.
#include "aet/analysis/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/json.hpp"
#include "aet/core/neighbor.hpp"
#include "evaluate_detail.hpp"

namespace aet {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_model(const AtomModel& m, const char* what) {
  if (m.size() == 0) fail_input(std::string("evaluate: the ") + what + " model holds no atoms");
  if (m.species.size() != m.positions.size())
    fail_input(std::string("evaluate: the ") + what + " model has " +
               std::to_string(m.species.size()) + " species for " +
               std::to_string(m.positions.size()) + " positions");
  for (std::size_t i = 0; i < m.size(); ++i)
    if (!m.positions[i].allFinite())
      fail_input(std::string("evaluate: atom ") + std::to_string(i + 1) + " of the " + what +
                 " model has a non-finite position");
  if (m.size() > std::numeric_limits<std::uint32_t>::max())
    fail_input(std::string("evaluate: the ") + what + " model is too large");
}

}  // namespace

EvaluationResult evaluate(const AtomModel& traced, const AtomModel& truth,
                          const EvaluateOptions& opt) {
  check_model(traced, "traced");
  check_model(truth, "truth");
  if (!std::isfinite(opt.match_radius) || opt.match_radius <= 0)
    fail_input("evaluate: the match radius must be > 0, got " + json_number(opt.match_radius));
  if (!std::isfinite(opt.surface_cutoff) || opt.surface_cutoff < 0)
    fail_input("evaluate: the surface cutoff must be >= 0, got " + json_number(opt.surface_cutoff));
  if (opt.surface_max_coordination < 0)
    fail_input("evaluate: the surface coordination threshold must be >= 0");

  const std::vector<Vec3>& src = traced.positions;
  const std::vector<Vec3>& dst = truth.positions;
  // ICP starts wide enough to catch a coarse alignment that is off by half a bond, and ends at
  // the matching radius, so the final fit uses exactly the pairs that are scored.
  const double r0 = std::max(3.0, 2.0 * opt.match_radius);
  const NeighborSearch grid(dst, r0, NeighborSearch::default_max_cells(dst.size()));
  std::vector<double> radii;
  for (double r = r0; r > opt.match_radius * 1.05; r *= 0.7) radii.push_back(r);
  radii.push_back(opt.match_radius);

  EvaluationResult res;
  res.truth_atoms = truth.size();
  res.traced_atoms = traced.size();
  res.match_radius = opt.match_radius;

  if (opt.register_models) {
    const detail::Registration reg = detail::find_registration(src, dst, grid, radii, opt);
    res.rotation = reg.rotation;
    res.translation = reg.translation;
    res.permutation = reg.permutation;
  }

  const std::vector<Vec3> moved = detail::transform(src, res.rotation, res.translation);
  const std::vector<detail::Pair> pairs =
      detail::match_greedy(moved, grid, dst.size(), opt.match_radius);
  const detail::Surface surf =
      detail::find_surface(dst, grid, opt.surface_cutoff, opt.surface_max_coordination);
  res.surface_cutoff = surf.cutoff;
  res.surface_max_coordination = surf.threshold;

  res.matched = pairs.size();
  res.recall = static_cast<double>(res.matched) / static_cast<double>(res.truth_atoms);
  res.precision = static_cast<double>(res.matched) / static_cast<double>(res.traced_atoms);
  double sum_d = 0, sum_d2 = 0, max_d = 0;
  std::size_t same_species = 0;
  Vec3 sum_axis2 = Vec3::Zero();
  // Sums of squared distances per class, turned into RMS values below.
  std::map<std::string, double> species_d2;
  double surface_d2 = 0, interior_d2 = 0;
  for (const auto& s : truth.species) res.by_species.emplace(s, EvaluationResult::Part{});
  for (const auto& p : pairs) {
    const double d = std::sqrt(p.d2);
    sum_d += d;
    sum_d2 += p.d2;
    max_d = std::max(max_d, d);
    sum_axis2 += (moved[p.i] - dst[p.j]).cwiseAbs2();
    if (traced.species[p.i] == truth.species[p.j]) ++same_species;
    ++res.by_species[truth.species[p.j]].matched;
    species_d2[truth.species[p.j]] += p.d2;
    if (surf.is_surface[p.j]) {
      ++res.surface_matched;
      surface_d2 += p.d2;
    } else {
      interior_d2 += p.d2;
    }
  }
  const auto rms_pm = [](double sum2, std::size_t n) {
    return n == 0 ? kNaN : 100.0 * std::sqrt(sum2 / static_cast<double>(n));
  };
  for (auto& [s, part] : res.by_species) part.rmsd_pm = rms_pm(species_d2[s], part.matched);
  res.surface_rmsd_pm = rms_pm(surface_d2, res.surface_matched);
  res.interior_rmsd_pm = rms_pm(interior_d2, pairs.size() - res.surface_matched);
  for (int a = 0; a < 3; ++a) res.rmsd_axis_pm[a] = rms_pm(sum_axis2[a], pairs.size());
  for (char s : surf.is_surface) res.surface_atoms += s ? 1 : 0;
  const double m = static_cast<double>(res.matched);
  // Errors in picometres: the scale at which AET precision is quoted.
  res.rmsd_pm = pairs.empty() ? kNaN : 100.0 * std::sqrt(sum_d2 / m);
  res.mean_error_pm = pairs.empty() ? kNaN : 100.0 * sum_d / m;
  res.max_error_pm = pairs.empty() ? kNaN : 100.0 * max_d;
  res.species_accuracy = pairs.empty() ? kNaN : static_cast<double>(same_species) / m;
  res.surface_recall = res.surface_atoms == 0 ? kNaN
                                              : static_cast<double>(res.surface_matched) /
                                                    static_cast<double>(res.surface_atoms);
  return res;
}

Json EvaluationResult::json() const {
  Json by;
  for (const auto& [s, part] : by_species)
    by[s] = Json{{"matched", part.matched}, {"rmsd_pm", part.rmsd_pm}};
  const auto vec = [](const Vec3& v) { return Json::array({v.x(), v.y(), v.z()}); };
  Json rot = Json::array();
  for (int r = 0; r < 3; ++r) rot.push_back(vec(rotation.row(r).transpose()));
  return Json{{"truth_atoms", truth_atoms},
              {"traced_atoms", traced_atoms},
              {"matched", matched},
              {"recall", recall},
              {"precision", precision},
              {"rmsd_pm", rmsd_pm},
              {"mean_error_pm", mean_error_pm},
              {"max_error_pm", max_error_pm},
              {"rmsd_axis_pm", vec(rmsd_axis_pm)},
              {"by_species", by.is_null() ? Json::object() : by},
              {"surface_rmsd_pm", surface_rmsd_pm},
              {"interior_rmsd_pm", interior_rmsd_pm},
              {"surface_atoms", surface_atoms},
              {"surface_matched", surface_matched},
              {"surface_recall", surface_recall},
              {"species_accuracy", species_accuracy},
              {"rotation", rot},
              {"translation", vec(translation)},
              {"permutation", permutation},
              {"match_radius", match_radius},
              {"surface_cutoff", surface_cutoff},
              {"surface_max_coordination", surface_max_coordination}};
}

std::string EvaluationResult::to_json() const {
  return json_text(json());
}

}  // namespace aet
