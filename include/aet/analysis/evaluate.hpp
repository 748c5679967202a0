// Scoring a traced atom model against a known truth: rigid registration (the two models may come
// from codes with different origins, axis orders and handedness), one-to-one matching within a
// radius, and the recall, precision and position errors that follow. docs/evaluation.md gives
// the definitions.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "aet/core/atoms.hpp"
#include "aet/core/json.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet {

struct EvaluateOptions {
  double match_radius = 1.0;            // Angstrom, one-to-one matching radius
  bool register_models = true;          // rigid registration before matching
  bool allow_axis_permutations = true;  // try the 48 signed axis permutations
  // Neighbour cutoff (Angstrom) defining coordination in the truth; 0 = 1.2 x the median
  // nearest-neighbour distance (between the first and second shells of fcc, hcp and bcc).
  double surface_cutoff = 0.0;
  // Truth atoms with fewer neighbours than this are surface atoms; 0 = bulk coordination - 2,
  // where the bulk coordination is the most common value among the better-coordinated half of
  // the truth (12 for fcc, 14 for bcc at the auto cutoff), so a bulk atom beside one or two
  // vacancies does not count as surface.
  int surface_max_coordination = 0;
};

struct EvaluationResult {
  std::size_t truth_atoms = 0, traced_atoms = 0, matched = 0;
  double recall = 0, precision = 0;  // matched / truth, matched / traced
  // RMS, mean and largest distance of matched pairs after registration, in picometres (NaN,
  // JSON null, when nothing matched).
  double rmsd_pm = 0, mean_error_pm = 0, max_error_pm = 0;
  // Where the error lies. Per axis of the truth's frame (x, y, z; the missing wedge of a
  // single-axis tilt series about y stretches atoms along z), so that the three squares sum to
  // rmsd_pm^2. Per truth species, and for surface and interior atoms of the truth. NaN (JSON
  // null) where no pair falls in the class.
  Vec3 rmsd_axis_pm = Vec3::Zero();
  struct Part {
    std::size_t matched = 0;
    double rmsd_pm = 0;
  };
  std::map<std::string, Part> by_species;            // every truth species, matched or not
  double surface_rmsd_pm = 0, interior_rmsd_pm = 0;  // pairs of surface / other truth atoms
  std::size_t surface_atoms = 0, surface_matched = 0;
  double surface_recall = 0;         // NaN (JSON null) when the truth has no surface atoms
  double species_accuracy = 0;       // fraction of matched pairs with the same species; NaN if none
  Mat3 rotation = Mat3::Identity();  // applied to traced positions: p' = rotation * p + translation
  Vec3 translation = Vec3::Zero();   // Angstrom
  // The signed axis permutation inside `rotation`: the traced axis that becomes x', y', z'
  // (e.g. "-y x z" means x' = -y, y' = x, z' = z before the small refining rotation).
  std::string permutation = "x y z";
  // Effective settings (auto values resolved), for the record.
  double match_radius = 0, surface_cutoff = 0;
  int surface_max_coordination = 0;

  Json json() const;            // all of the above as one JSON object
  std::string to_json() const;  // json() as text (json_text)
};

// Registers `traced` onto `truth` (unless opt.register_models is false), matches atoms one to one
// and scores the result. Throws InputError for an empty model, non-finite positions or invalid
// options.
EvaluationResult evaluate(const AtomModel& traced, const AtomModel& truth,
                          const EvaluateOptions& opt = {});

}  // namespace aet
