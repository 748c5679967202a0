// The chain: input (given or simulated), align, reconstruct, network, trace, refine, evaluate.
#include "aet/pipeline/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "aet/align/align.hpp"
#include "aet/analysis/evaluate.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/recon/projector.hpp"
#include "aet/refine/model_refinement.hpp"
#include "aet/trace/trace.hpp"
#include "checkpoint.hpp"

namespace aet {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Log lines go to the caller's sink and into the result's log text; warnings also into the
// result's list, or, under --strict, end the run.
class RunLog {
 public:
  RunLog(const PipelineObserver& observer, PipelineResult& result, bool strict)
      : observer_(observer), result_(result), strict_(strict) {}
  void line(const std::string& s) {
    if (observer_.log) observer_.log(s);
    result_.log += s + "\n";
  }
  void warn(const std::string& w) {
    if (strict_) throw QualityError(w + " (--strict)");
    result_.warnings.push_back(w);
    if (observer_.warning)
      observer_.warning(w);
    else if (observer_.log)
      observer_.log("warning: " + w);
    result_.log += "warning: " + w + "\n";
  }

 private:
  const PipelineObserver& observer_;
  PipelineResult& result_;
  bool strict_;
};

struct Refined {
  AtomModel model;
  double r1_initial = 0, r1_final = 0, width = 0;
  double removed_weight = 0;  // fraction of the refined intensity in the atoms classes removed
};

// An extended object's views less what its solve put beside the field of view (scaled as the solve
// fits the views), so that the atoms of the field are refined against their own signal, without
// the edge rows (below); the views themselves otherwise. Both keep the views' centre pixel.
Array3 views_of_the_field(const PipelineResult& r, const Device& device) {
  const Array3& full = r.recon.full_volume;
  if (full.empty()) return r.views;
  Array3 beside = full;
  const Array3& field = r.recon.volume;
  const std::int64_t ox = full.nx() / 2 - field.nx() / 2, oy = full.ny() / 2 - field.ny() / 2;
  for (std::int64_t z = 0; z < field.nz(); ++z)
    for (std::int64_t y = 0; y < field.ny(); ++y)
      for (std::int64_t x = 0; x < field.nx(); ++x) beside(x + ox, y + oy, z) = 0.0f;
  double l = 0;
  r1_factor(r.views, forward_project(full, r.geometry, r.views.nx(), r.views.ny(), device), &l);
  const Array3 p = forward_project(beside, r.geometry, r.views.nx(), r.views.ny(), device);
  // The film runs on beyond the views' top and bottom rows as well, where atoms just outside the
  // field (not traced) spill into the edge rows and pull the field's edge atoms outwards (on the
  // Ta film, 11 atoms by 0.5-1.5 A): those rows are left out, a probe tail's reach each side.
  const std::int64_t margin = std::min<std::int64_t>(
      (r.views.ny() - 1) / 4, static_cast<std::int64_t>(std::ceil(1.5 / r.views.voxel_size.y)));
  const std::int64_t ny = r.views.ny() - 2 * margin;
  Array3 v(r.views.nx(), ny, r.views.nz());
  v.voxel_size = r.views.voxel_size;
  for (std::int64_t k = 0; k < v.nz(); ++k)
    for (std::int64_t j = 0; j < ny; ++j)
      for (std::int64_t i = 0; i < v.nx(); ++i)
        v(i, j, k) = r.views(i, j + margin, k) - static_cast<float>(l) * p(i, j + margin, k);
  return v;
}

// Refines a traced model against the views and re-classifies it from the refined intensities:
// each is fitted to every view, free of the reconstruction's missing-wedge and neighbour blur, and
// a spurious atom's falls to about zero (docs/refinement.md). `summary` gets the stage's metrics;
// `log`, when given, its lines.
Refined refine_and_classify(const PipelineResult& r, const AtomModel& traced,
                            const PipelineOptions& o, Json& summary, RunLog* log,
                            bool bootstrap = true) {
  ModelRefineOptions mo;
  mo.refine_shifts = mo.refine_angles = false;  // the geometry is alignment's business
  mo.position_prior = o.position_prior;
  mo.fit_tail = o.probe_tail;
  mo.bootstrap = bootstrap ? o.bootstrap : 0;  // the comparison without the network: curvature
  mo.seed = o.seed;
  const Array3 views = views_of_the_field(r, o.device);
  ModelRefineResult mr = refine_atomic_model(views, r.geometry, traced, mo);
  const std::vector<double> weight = *mr.model.find_property("model_weight");
  double total = 0, kept = 0;
  for (double w : weight) total += std::max(0.0, w);
  // A film's atoms whose images leave the rows the refinement sees (views_of_the_field drops the
  // edge rows) are fitted to their footprints' tails alone, and their intensities take up
  // whatever lies in those rows: on ta_film_example the 15 atoms within 1 A of the field's top
  // and bottom edges took 5 to 50 times a typical atom's and made k-means call the other 186
  // non-atoms. They keep their traced positions and species, and only the others decide the
  // classes.
  std::vector<bool> edge(mr.model.size(), false);
  std::size_t n_edge = 0;
  if (!r.recon.full_volume.empty()) {
    const double a = views.voxel_size.y, inset = 0.5;  // Angstrom
    const double lo = -static_cast<double>(views.ny() / 2) * a + inset;
    const double hi = static_cast<double>(views.ny() - 1 - views.ny() / 2) * a - inset;
    for (std::size_t i = 0; i < mr.model.size(); ++i) {
      for (const ViewGeometry& g : r.geometry) {
        const double v = (g.R * mr.model.positions[i]).y() + g.shift.y();
        if (v < lo || v > hi) edge[i] = true;
      }
      if (!edge[i]) continue;
      ++n_edge;
      mr.model.positions[i] = traced.positions[i];
    }
  }
  AtomModel inside = mr.model;
  std::vector<bool> is_inside(edge.size());
  for (std::size_t i = 0; i < edge.size(); ++i) is_inside[i] = !edge[i];
  inside.filter(is_inside);
  const ClassifyResult cr =
      classify_atoms(inside, *inside.find_property("model_weight"), o.elements, o.seed);
  if (n_edge > 0) {
    // The classified inner atoms, then the edge atoms as traced (species) and refined (the rest).
    AtomModel merged = inside;
    for (std::size_t i = 0; i < edge.size(); ++i) {
      if (!edge[i]) continue;
      merged.species.push_back(traced.species[i]);
      merged.positions.push_back(mr.model.positions[i]);
      for (auto& [name, column] : merged.properties)
        column.push_back((*mr.model.find_property(name))[i]);
    }
    mr.model = std::move(merged);
  } else {
    mr.model = std::move(inside);
  }
  for (double w : *mr.model.find_property("model_weight")) kept += std::max(0.0, w);
  const double removed_weight = total > 0 ? std::max(0.0, 1 - kept / total) : 0.0;
  const double moved = mr.rms_displacement;
  if (log) {
    log->line("refined the atoms against the views: R1 " + fmt("%.4f", mr.r1.front()) + " -> " +
              fmt("%.4f", mr.r1.back()) + ", width " + fmt("%.3f", mr.sigma) + " A" +
              (o.probe_tail ? ", probe tail " + fmt("%.3f", mr.tail_amplitude) +
                                  " of the core at " + fmt("%.2f", mr.tail_width) + " A"
                            : std::string()) +
              ", atoms moved " + fmt("%.1f", 100 * moved) + " pm RMS");
    log->line(
        "  classes from the refined intensities: " + std::to_string(cr.changed) +
        " species changed, " + std::to_string(cr.removed) + " atoms removed (" + cr.how + ")" +
        (n_edge ? "; " + std::to_string(n_edge) + " atoms at the field's edge rows kept as traced"
                : std::string()));
  }
  summary = Json{{"r1_initial", mr.r1.front()},
                 {"r1_final", mr.r1.back()},
                 {"sigma_angstrom", mr.sigma},
                 {"probe_tail", o.probe_tail ? Json{{"amplitude", mr.tail_amplitude},
                                                    {"width_angstrom", mr.tail_width}}
                                             : Json(nullptr)},
                 {"rms_displacement_angstrom", moved},
                 {"position_prior_angstrom", o.position_prior},
                 {"species_changed", cr.changed},
                 {"atoms_removed", cr.removed},
                 {"edge_atoms_kept_as_traced", n_edge},
                 {"removed_intensity_fraction", removed_weight},
                 {"classes", cr.how}};
  return Refined{std::move(mr.model), mr.r1.front(), mr.r1.back(), mr.sigma, removed_weight};
}

// Each view's R1 against the reconstruction's projection, with the solver's one least-squares
// scale (so the views' R1, weighted by their sum |b|, give the run's R1): a view the volume does
// not explain (a misaligned or damaged view) stands out in the report.
std::vector<double> per_view_r1(const Array3& views, const TiltGeometry& geometry,
                                const Array3& volume, const Device& device) {
  const Array3 p = forward_project(volume, geometry, views.nx(), views.ny(), device);
  double l = 0;
  r1_factor(views, p, &l);
  const std::size_t per_view = static_cast<std::size_t>(views.nx() * views.ny());
  std::vector<double> r1(static_cast<std::size_t>(views.nz()));
  for (std::size_t v = 0; v < r1.size(); ++v) {
    double diff = 0, sum = 0;
    for (std::size_t i = v * per_view; i < (v + 1) * per_view; ++i) {
      diff += std::abs(views.data()[i] - l * p.data()[i]);
      sum += std::abs(static_cast<double>(views.data()[i]));
    }
    r1[v] = sum > 0 ? diff / sum : 0.0;
  }
  return r1;
}

// Scores `traced` against the truth, logs the line and returns the evaluation's JSON.
Json score(const AtomModel& traced, const AtomModel& truth, const char* what, RunLog& log) {
  const EvaluationResult ev = evaluate(traced, truth);
  std::string line = std::string("against the truth") + what + ": recall " +
                     fmt("%.2f", 100 * ev.recall) + " %, precision " +
                     fmt("%.2f", 100 * ev.precision) + " %, RMSD " + fmt("%.1f", ev.rmsd_pm) +
                     " pm (x " + fmt("%.1f", ev.rmsd_axis_pm.x()) + ", y " +
                     fmt("%.1f", ev.rmsd_axis_pm.y()) + ", z " + fmt("%.1f", ev.rmsd_axis_pm.z()) +
                     "), surface recall " + fmt("%.2f", 100 * ev.surface_recall) + " %";
  if (ev.by_species.size() > 1)  // an alloy: the light atoms' error is the one to watch
    for (const auto& [species, part] : ev.by_species)
      line += ", " + species + " " + fmt("%.1f", part.rmsd_pm) + " pm";
  log.line(line);
  return ev.json();
}

// The per-view angle step of a series the alignment's check found aligned
// (AlignOptions::defer_angles), on the reconstruction just made with the given geometry: atoms
// traced in it and refined together with the views. Refined angles that move the atoms' images
// by less than ViewAngles::kChangePx correct nothing and cost nothing more; otherwise the
// reconstruction is made again with them (with the network's snapshot after `snapshot_at`
// iterations, 0 for none) and kept when it fits the views at least as well. `alignment` gets
// the step's figures; the result is a checkpoint stage of its own ("angles").
void refine_angles_after_reconstruction(PipelineResult& r, const AlignOptions& ao,
                                        const ReconOptions& ro, int snapshot_at,
                                        detail::Checkpoint& ck, Array3& network_input,
                                        Json& alignment, RunLog& log) {
  if (ck.begin("angles")) {
    const Json j = ck.load_json("summary");
    for (const auto& [key, value] : j.items())
      if (key != "recon_r1" && key != "recon_r2") alignment[key] = value;
    if (j["angles_kept"].get<bool>()) {
      r.geometry = ck.load_geometry("geometry");
      r.recon.volume = ck.load_array("volume");
      r.recon.r1 = j["recon_r1"].get<std::vector<double>>();
      r.recon.r2 = j["recon_r2"].get<std::vector<double>>();
      if (!network_input.empty()) network_input = ck.load_array("network_input");
    }
    ck.note_resumed();
    log.line("  per-view angles taken from the checkpoint");
    return;
  }
  const ViewAngles va = refine_view_angles(
      r.views, r.geometry, r.nominal, alignment.value("tilt_axis_deg", 0.0), r.recon.volume, ao);
  bool kept = false;
  double r1_again = 0;
  if (va.changed()) {
    ReconResult again;
    Array3 input_again;
    if (snapshot_at > 0) {
      ReconOptions first = ro;
      first.iterations = snapshot_at;
      again = reconstruct(r.views, va.geometry, first);
      input_again = again.volume;
      ReconOptions rest = ro;
      rest.iterations = ro.iterations - snapshot_at;
      rest.initial = &input_again;
      ReconResult tail = reconstruct(r.views, va.geometry, rest);
      tail.r1.insert(tail.r1.begin(), again.r1.begin(), again.r1.end());
      tail.r2.insert(tail.r2.begin(), again.r2.begin(), again.r2.end());
      tail.seconds += again.seconds;
      again = std::move(tail);
    } else {
      again = reconstruct(r.views, va.geometry, ro);
    }
    r1_again = again.r1.back();
    kept = r1_again <= r.recon.r1.back();
    log.line("  per-view angles against " + std::to_string(va.model_atoms) +
             " atoms traced in the reconstruction: the atoms' images move by up to " +
             fmt("%.2f", va.change_px) + " px RMS in a view; reconstructed again, R1 " +
             fmt("%.4f", r.recon.r1.back()) + " -> " + fmt("%.4f", r1_again) +
             (kept ? ", kept" : ", not kept"));
    if (kept) {
      r.geometry = va.geometry;
      r.recon = std::move(again);
      if (!network_input.empty()) network_input = std::move(input_again);
    }
  } else if (va.refined()) {
    log.line("  per-view angles against " + std::to_string(va.model_atoms) +
             " atoms traced in the reconstruction: the atoms' images move by at most " +
             fmt("%.2f", va.change_px) + " px RMS in a view; the geometry is kept");
  }
  Json j{{"model_atoms", va.model_atoms},
         {"model_r1_initial", va.model_r1_initial},
         {"model_r1_final", va.model_r1_final},
         {"angle_change_px", va.change_px},
         {"angles_rejected", va.changed() && !kept},
         {"angles_kept", kept}};
  if (kept) {
    j["tilt_axis_deg"] = va.tilt_axis_deg;
    j["r1_final"] = r1_again;
    j["recon_r1"] = r.recon.r1;
    j["recon_r2"] = r.recon.r2;
    ck.save_geometry("geometry", r.geometry);
    ck.save_array("volume", r.recon.volume, MrcKind::volume);
    if (!network_input.empty()) ck.save_array("network_input", network_input, MrcKind::volume);
  }
  ck.save_json("summary", j);
  ck.done();
  for (const auto& [key, value] : j.items())
    if (key != "recon_r1" && key != "recon_r2") alignment[key] = value;
}

// The chain after the input is in place (r.views, r.nominal, r.geometry, r.truth, r.source).
void run_chain(PipelineResult& r, const PipelineOptions& o, nn::NetworkStage& network,
               bool do_align, RunLog& log, Json& seconds, Clock::time_point t_start) {
  // ---- sample kind --------------------------------------------------------------------------
  r.sample = o.sample;
  Json sample{{"kind", sample_name(o.sample)}, {"detected", o.sample == SampleKind::automatic}};
  if (o.sample == SampleKind::automatic) {
    const SampleDetection d = detect_sample(r.views);
    r.sample = d.kind;
    sample["kind"] = sample_name(d.kind);
    sample["border_fraction"] = d.border_fraction;
    log.line("sample: " + std::string(sample_name(d.kind)) + " (" +
             fmt("%.1f", 100 * d.border_fraction) +
             " % of a view's signal lies in its outer tenth; --sample to say otherwise)");
  }

  // Checkpoints (PipelineOptions::checkpoint_dir): each long stage from the folder if there.
  detail::Checkpoint ck(o.checkpoint_dir, r.views, r.nominal, r.geometry,
                        o.checkpoint_settings + "\nsample = " + sample_name(r.sample),
                        o.checkpoint_stage_settings,
                        [&log](const std::string& line) { log.line(line); });
  const auto said = [&](const std::string& line) {
    log.line("  " + line + " in " + o.checkpoint_dir);
  };
  const auto resumed = [&] {
    ck.note_resumed();
    said("taken from the checkpoint");
  };

  // ---- align --------------------------------------------------------------------------------
  Json alignment;  // null unless aligned
  r.aligned = do_align;
  AlignOptions ao = o.alignment;
  // Per-view angles of a series the half-resolution check finds aligned: refined against atoms
  // traced in this run's own reconstruction, after it (below), not in one made for them.
  bool angles_deferred = false;
  if (do_align) {
    ao.device = o.device;
    ao.seed = o.seed;
    ao.sample = r.sample;
    ao.defer_angles = true;
    // A film's atoms run out of the field: no atomic model of the whole object to refine
    // angles against (align would say so; the run says it once, here).
    if (r.sample == SampleKind::film) ao.refine_angles = false;
    log.line("aligning (" + std::to_string(ao.rounds) + " rounds of projection matching" +
             (r.sample == SampleKind::film ? ", as a film: background and intensity kept" : "") +
             ")");
    const auto t_align = Clock::now();
    AlignResult al;
    const bool taken = detail::checkpointed_alignment(ck, r.views, r.nominal, ao, al, said);
    seconds["align"] = taken ? 0.0 : seconds_since(t_align);
    if (taken) resumed();
    if (al.already_aligned)
      log.line("  aligned already: at half resolution the shifts would change by " +
               fmt("%.2f", al.check_shift_px) + " px RMS and the tilt axis by " +
               fmt("%.2f", al.check_axis_deg) + " deg; the geometry is kept");
    else
      log.line("  tilt axis " + fmt("%.3f", al.tilt_axis_deg) + " deg from y, R1 " +
               fmt("%.4f", al.r1_initial) + " -> " + fmt("%.4f", al.r1_final));
    alignment = Json{{"already_aligned", al.already_aligned},
                     {"check_shift_px", al.check_shift_px},
                     {"check_axis_deg", al.check_axis_deg},
                     {"tilt_axis_deg", al.tilt_axis_deg},
                     {"r1_initial", al.r1_initial},
                     {"r1_final", al.r1_final},
                     {"rounds", al.rounds.size()},
                     {"refine_angles", ao.refine_angles},
                     {"angle_search_deg", ao.angle_search_deg},
                     {"model_r1_final", al.model_r1_final},
                     {"angles_rejected", al.angles_rejected},
                     {"angle_change_px", al.angle_change_px},
                     {"angles_deferred", al.angles_deferred}};
    angles_deferred = al.angles_deferred;
    // What the report draws: each round's R1 and the nominal angles the geometry started from.
    Json round_r1 = Json::array(), nominal = Json::array();
    for (const AlignRound& round : al.rounds) round_r1.push_back(round.r1);
    for (const Euler& e : r.nominal) nominal.push_back({e.phi, e.theta, e.psi});
    alignment["round_r1"] = round_r1;
    alignment["nominal_deg"] = nominal;
    r.views = std::move(al.views);
    r.geometry = std::move(al.geometry);
  }

  // ---- reconstruct --------------------------------------------------------------------------
  ReconOptions ro;
  ro.algorithm = o.algorithm;
  ro.iterations = o.iterations;
  ro.device = o.device;
  // A film runs out of the field of view: the solve gets room for what the tilted views see
  // beside it (ReconOptions::extended); the stages after it see the field of view.
  ro.extended = r.sample == SampleKind::film;
  const bool film_skip = network.check_film(r.sample == SampleKind::film);
  network.check_voxel_size(r.views.voxel_size.x);
  // An extended object has several times the unknowns of its field of view and converges more
  // slowly; with no network input to match (the shipped model does not see films), its RESIRE or
  // SIRT takes FISTA momentum at the same cost per iteration (ta_film_area1, 50 iterations: R1
  // 0.107 against 0.130 plain; docs/reconstruction.md).
  ro.accelerate = ro.extended && !network.active() &&
                  (o.algorithm == Algorithm::resire || o.algorithm == Algorithm::sirt);
  r.algorithm = algorithm_name(o.algorithm);
  log.line("reconstructing " + std::to_string(r.views.nx()) + " x " + std::to_string(r.views.ny()) +
           " x " + std::to_string(r.views.nz()) + " views (" + r.algorithm +
           (ro.accelerate ? " with momentum" : "") + ", " + std::to_string(o.iterations) +
           " iterations, " + o.device.str() + ")");
  if (ro.extended) {
    const VolumeExtent e =
        extended_object_extent(r.geometry, r.views.nx(), r.views.ny(), r.views.voxel_size.x,
                               r.views.nx(), r.views.ny(), r.views.nx());
    log.line("  as an extended object (a film): solved on " + std::to_string(e.nx) + " x " +
             std::to_string(e.ny) + " x " + std::to_string(r.views.nx()) +
             " voxels, the field of view kept");
  }
  // The network's input is RESIRE made as its training inputs were (the model file's recipe).
  // With this run's step and fewer iterations it is a snapshot of this solve: plain RESIRE is
  // gradient descent, so going on from the snapshot gives the volume of one uninterrupted run.
  const nn::ReconRecipe recipe = network.input_recipe();
  const bool resire = ro.algorithm == Algorithm::resire;
  const bool snapshot = recipe.known() && resire && recipe.iterations < o.iterations &&
                        recipe == nn::ReconRecipe{recipe.iterations, ro.step};
  auto t0 = Clock::now();
  Array3 network_input;  // empty: the network gets the reconstruction
  if (ck.begin("reconstruct")) {
    r.recon.volume = ck.load_array("volume");
    const Json j = ck.load_json("summary");
    if (j.contains("full_volume") && j["full_volume"].get<bool>())
      r.recon.full_volume = ck.load_array("full_volume");
    r.recon.r1 = j["r1"].get<std::vector<double>>();
    r.recon.r2 = j["r2"].get<std::vector<double>>();
    r.recon.r_free = j["r_free"].get<std::vector<double>>();
    r.recon.seconds = j["seconds"];
    r.recon.mpi_ranks = j["mpi_ranks"];
    r.recon.mpi_mode = j["mpi_mode"];
    if (j["network_input"].get<bool>()) network_input = ck.load_array("network_input");
    resumed();
  } else {
    // Plain RESIRE and SIRT go on from a volume exactly as one uninterrupted solve (gradient
    // descent), so the solve runs in parts: up to the network's snapshot, and with checkpoints
    // every checkpoint_every iterations, progress that a stopped run takes up again.
    const bool chunked = ck.enabled() && !ro.accelerate && o.checkpoint_every > 0 &&
                         (ro.algorithm == Algorithm::resire || ro.algorithm == Algorithm::sirt);
    if (!chunked && !snapshot)
      r.recon = reconstruct(r.views, r.geometry, ro);
    else
      r.recon = detail::reconstruct_in_parts(
          r.views, r.geometry, ro, ck, chunked ? o.checkpoint_every : 0,
          snapshot ? recipe.iterations : 0, &network_input, said);
    ck.save_array("volume", r.recon.volume, MrcKind::volume);
    if (!r.recon.full_volume.empty())
      ck.save_array("full_volume", r.recon.full_volume, MrcKind::volume);
    if (!network_input.empty()) ck.save_array("network_input", network_input, MrcKind::volume);
    ck.save_json("summary", Json{{"r1", r.recon.r1},
                                 {"r2", r.recon.r2},
                                 {"r_free", r.recon.r_free},
                                 {"seconds", r.recon.seconds},
                                 {"mpi_ranks", r.recon.mpi_ranks},
                                 {"mpi_mode", r.recon.mpi_mode},
                                 {"network_input", !network_input.empty()},
                                 {"full_volume", !r.recon.full_volume.empty()}});
    ck.done();
  }
  // Only plain RESIRE is a network input recipe (reconstruction.mrc's label says so).
  if (resire && !ro.accelerate) r.recipe = nn::ReconRecipe{o.iterations, ro.step};
  seconds["reconstruct"] = seconds_since(t0);
  if (angles_deferred) {
    const auto t_angles = Clock::now();
    refine_angles_after_reconstruction(r, ao, ro, snapshot ? recipe.iterations : 0, ck,
                                       network_input, alignment, log);
    seconds["align"] = seconds["align"].get<double>() + seconds_since(t_angles);
  }
  const double r1 = r.recon.r1.empty() ? std::nan("") : r.recon.r1.back();
  // An extended object's views are explained by its whole solve.
  const std::vector<double> view_r1 =
      per_view_r1(r.views, r.geometry,
                  r.recon.full_volume.empty() ? r.recon.volume : r.recon.full_volume, o.device);
  log.line("  R1 = " + json_number(r1) + " after " + json_number(seconds_since(t0)) + " s");
  // Above R1 0.8 the volume explains next to nothing of the views (wrong angles, a film's signal
  // removed as background, ...), unless the views are mostly shot noise: then the bar is 1.3
  // times the R1 their own noise leaves (noise_r1 reads up to 16 % low at a fraction of a count
  // per pixel; multislice Si at 0.3 counts: noise 0.82 after preprocessing, a right model's R1
  // 1.00).
  const double noise = noise_r1(r.views);
  if (!(r1 <= std::max(0.8, 1.3 * noise)))
    log.warn("the reconstruction fits the views poorly (R1 " + fmt("%.3f", r1) + " > " +
             (1.3 * noise > 0.8 ? "1.3 x the " + fmt("%.3f", noise) + " the views' noise leaves"
                                : std::string("0.8")) +
             "): the angles, the alignment or the sample kind (--sample) do not match the views");
  // ---- missing-wedge network ----------------------------------------------------------------
  Json input = nullptr;
  int flips = network.flips();  // as averaged (0 when the network did not run on auto)
  r.network_used = network.active();
  r.network_model = network.model_path();
  if (network.active()) {
    log.line("missing-wedge network: " + network.model_path());
    const bool from_checkpoint = ck.begin("network");
    if (r.sample == SampleKind::film)
      log.warn(
          "--model: the views show a film, and a model trained on isolated particles sees a "
          "volume outside its domain (--no-network traces the reconstruction)");
    if (recipe.known()) {
      const bool same = resire && recipe == nn::ReconRecipe{o.iterations, ro.step};
      const char* source = snapshot ? "snapshot" : same ? "reconstruction" : "separate";
      log.line("  input: RESIRE, " + std::to_string(recipe.iterations) + " iterations at step " +
               json_number(recipe.step) + " (the model's input recipe; " + source + ")");
      if (!snapshot && !same && !from_checkpoint) {
        ReconOptions ni = ro;
        ni.algorithm = Algorithm::resire;
        ni.iterations = recipe.iterations;
        ni.step = recipe.step;
        ni.accelerate = false;
        t0 = Clock::now();
        network_input = reconstruct(r.views, r.geometry, ni).volume;
        seconds["network_input"] = seconds_since(t0);
      }
      input = Json{{"iterations", recipe.iterations}, {"step", recipe.step}, {"source", source}};
    }
    // The default averages fewer mirror images of a large volume (nn::auto_flips): at 290^3 the
    // eight passes alone would cost about as much as the 50 RESIRE iterations before them.
    flips = network.flips_for(r.recon.volume);
    if (network.flips() == 0 && flips < 8)
      log.line("  " + std::to_string(flips) + (flips == 1 ? " pass" : " mirror images averaged") +
               ", not 8: the volume has " +
               fmt("%.3g", static_cast<double>(r.recon.volume.size())) +
               " voxels, and 8 flips are averaged up to 160^3 (--flips 8 asks for them)");
    t0 = Clock::now();
    if (from_checkpoint) {
      r.augmented = ck.load_array("volume");
      resumed();
    } else {
      r.augmented = network.apply(network_input.empty() ? r.recon.volume : network_input);
      ck.save_array("volume", r.augmented, MrcKind::volume);
      ck.done();
    }
    seconds["network"] = seconds_since(t0);
    log.line("  " + json_number(seconds_since(t0)) + " s");
  } else {
    log.line("missing-wedge network skipped: " + network.skip_reason());
    // Skipped without being asked to: the atoms are traced in the plain reconstruction, whose
    // missing wedge the chain's accuracy figures assume corrected.
    // A film skips the shipped model by design (check_film): that is no degraded result.
    if (o.network.enabled && !film_skip)
      log.warn("the missing-wedge network did not run (" + network.skip_reason() +
               "); the atoms are traced in the reconstruction itself");
  }

  // ---- trace --------------------------------------------------------------------------------
  TraceOptions to;
  to.elements = o.elements;
  to.min_distance = o.min_distance;
  to.seed = o.seed;
  t0 = Clock::now();
  r.traced = trace_atoms(network.active() ? r.augmented : r.recon.volume, to);
  seconds["trace"] = seconds_since(t0);
  log.line("traced " + std::to_string(r.traced.size()) + " atoms" +
           (network.active() ? " in the network's volume" : ""));
  if (r.traced.size() == 0)
    log.warn(
        "no atoms were traced: the model is empty (check --elements, the views' contrast and "
        "the alignment)");
  if (const std::string* w = r.traced.find_info("trace_warning")) log.warn(*w);
  r.traced.set_info("source", r.source);
  r.traced.set_info("seed", std::to_string(o.seed));
  r.traced.set_info("aet_version", AET_VERSION);

  // ---- refine the atomic model against the views ---------------------------------------------
  Json refinement = nullptr, refinement_plain;
  if (o.refine && r.traced.size() > 0) {
    t0 = Clock::now();
    Refined refined = refine_and_classify(r, r.traced, o, refinement, &log);
    seconds["refine"] = seconds_since(t0);
    const RefinementCheck check =
        check_refinement(r.traced.size(), refined.model.size(), refined.r1_initial,
                         refined.r1_final, refined.width, refined.removed_weight);
    if (!check.warning.empty()) log.warn(check.warning);
    refinement["kept"] = !check.keep_traced;
    if (!check.keep_traced) r.refined = std::move(refined.model);
    // Trust per atom (docs/refinement.md): of the refined model; the traced model has none.
    if (r.refined.size() > 0) log.line(trust_line(r.refined, o.bootstrap));
    if (const std::string weak = trust_warning(r.refined); !weak.empty()) log.warn(weak);
  }

  // ---- evaluate -----------------------------------------------------------------------------
  Json evaluation, evaluation_plain, evaluation_refined, evaluation_refined_plain;
  if (r.truth) {
    evaluation = score(r.traced, *r.truth, network.active() ? " (with the network)" : "", log);
    // The same chain without the network, so its effect is measured on every scored run: on the
    // traced model and on the final (refined) one.
    AtomModel plain;
    if (network.active()) {
      plain = trace_atoms(r.recon.volume, to);
      evaluation_plain = score(plain, *r.truth, " (without the network)", log);
    }
    if (r.refined.size() > 0)
      evaluation_refined = score(r.refined, *r.truth, " (refined atoms)", log);
    if (r.refined.size() > 0 && plain.size() > 0) {
      t0 = Clock::now();
      const AtomModel plain_refined =
          refine_and_classify(r, plain, o, refinement_plain, nullptr, false).model;
      seconds["refine_without_network"] = seconds_since(t0);
      evaluation_refined_plain =
          score(plain_refined, *r.truth, " (refined atoms, without the network)", log);
    }
  }
  // ---- analyze the final model (docs/analysis.md) --------------------------------------------
  Json analysis = nullptr;
  if (o.analysis && r.atoms().size() >= 4) {
    t0 = Clock::now();
    try {
      r.analysis = analyze(r.atoms(), o.analysis_options);
    } catch (const InputError& e) {
      log.warn(std::string("the analysis did not run: ") + e.what());
    }
    seconds["analysis"] = seconds_since(t0);
    if (r.analysis) {
      // A film's atoms are cut by the field: its local structure and lattice are those of a
      // sample without its surroundings, so its analysis notes are log lines and analysis.json
      // warnings, not the run's warnings. (An amorphous sample has no lattice notes at all.)
      const Json full = r.analysis->json();
      for (const auto& w : r.analysis->warnings)
        if (r.sample == SampleKind::film)
          log.line(w);
        else
          log.warn(w);
      const Json& lattice = full["lattice"];
      analysis = Json{{"structure", full["structure"]["kind"]},
                      {"crystalline_fraction", full["structure"]["crystalline_fraction"]},
                      {"grains", full["structure"]["grains"].size()},
                      {"lattice", lattice.is_null() ? Json(nullptr) : lattice["type"]},
                      {"a", lattice.is_null() ? Json(nullptr) : lattice["a"]},
                      {"on_lattice_fraction",
                       lattice.is_null() ? Json(nullptr) : lattice["on_lattice_fraction"]},
                      {"interior_strain_mean", full["strain"]["interior"]["mean"]},
                      {"surface_strain_mean", full["strain"]["surface"]["mean"]},
                      {"surface_atoms", full["surface"]["atoms"]},
                      {"facets", full["facets"]["count"]},
                      {"facet_area_fraction", full["facets"]["area_fraction"]},
                      {"q6_mean", full["order"]["q6_mean"]}};
      const Json& chem = full["chemical_order"];
      if (!chem.is_null())
        analysis["chemical_order"] = Json{{"order_parameter", chem["order_parameter"]},
                                          {"antisites", chem["antisites"]},
                                          {"ordered_fraction", chem["ordered_fraction"]}};
      log.line("analysis: " + analysis_summary(*r.analysis));
    }
  }
  const double total = seconds_since(t_start);
  seconds["total"] = total;
  log.line("total " + json_number(total) + " s");

  Json& m = r.metrics;
  m["device"] = o.device.str();
  m["views"] = r.views.nz();
  m["sample"] = sample;
  m["algorithm"] = r.algorithm;
  m["iterations"] = o.iterations;
  m["momentum"] = ro.accelerate;  // FISTA momentum (an extended object's solve)
  // An extended object's whole solve (docs/reconstruction.md); null for a field-of-view solve.
  const Array3& full = r.recon.full_volume;
  m["extended_volume"] = full.empty() ? Json(nullptr) : Json{full.nx(), full.ny(), full.nz()};
  m["mpi_ranks"] = r.recon.mpi_ranks;  // docs/hpc.md
  m["mpi_mode"] = r.recon.mpi_mode.empty() ? "none" : r.recon.mpi_mode;
  m["alignment"] = alignment;
  m["network"] = Json{{"used", network.active()},
                      {"model", network.model_path()},
                      {"flips", flips},
                      {"flips_auto", network.flips() == 0},
                      {"skipped_because", network.skip_reason()},
                      {"input", input}};
  m["r1"] = r1;
  m["noise_r1"] = noise;  // the R1 the views' pixel noise alone leaves (noise_r1)
  m["r1_per_iteration"] = r.recon.r1;
  m["view_r1"] = view_r1;
  m["traced_atoms"] = r.traced.size();
  m["refinement"] = refinement;
  // Null when the traced model was kept (no refinement, or it failed its check): no sigma.
  m["trust"] = trust_json(r.refined, o.bootstrap);
  m["seconds"] = seconds;
  if (ck.enabled()) m["resumed"] = ck.resumed();  // the stages taken from the checkpoints
  if (r.truth) m["evaluation"] = evaluation;
  if (!evaluation_plain.is_null()) m["evaluation_without_network"] = evaluation_plain;
  if (!evaluation_refined.is_null()) m["evaluation_refined"] = evaluation_refined;
  if (!refinement_plain.is_null()) m["refinement_without_network"] = refinement_plain;
  if (!evaluation_refined_plain.is_null())
    m["evaluation_refined_without_network"] = evaluation_refined_plain;
  if (!analysis.is_null()) m["analysis"] = analysis;
  m["warnings"] = r.warnings;
}

// The metrics' head, in the order metrics.json has always had.
void start_metrics(PipelineResult& r, const PipelineOptions& o, const std::string& command_line) {
  r.metrics = Json{{"aet_version", AET_VERSION},
                   {"command_line", command_line},
                   {"source", r.source},
                   {"seed", o.seed}};
}

}  // namespace

namespace {

const PipelineOptions& checked(const PipelineOptions& o) {
  check_pipeline_options(o);
  return o;
}

// What both entry points set up first, in this order: the options checked, the network model
// loaded (before any long computation, so that a bad model fails at once), the log, the observer's
// progress sink and the clock.
struct Run {
  Run(const PipelineOptions& o, const PipelineObserver& observer)
      : network(checked(o).network), log(observer, result, o.strict) {
    if (observer.progress) progress.emplace(observer.progress);
  }
  nn::NetworkStage network;
  PipelineResult result;
  RunLog log;
  std::optional<ScopedProgressSink> progress;
  Clock::time_point start = Clock::now();
  Json seconds = Json::object();
};

}  // namespace

PipelineResult run_pipeline(SeriesInput input, const PipelineOptions& o,
                            const PipelineObserver& observer, const std::string& command_line) {
  Run run(o, observer);
  PipelineResult& r = run.result;
  r.views = std::move(input.views);
  r.nominal = std::move(input.nominal);
  r.geometry = std::move(input.geometry);
  r.single_axis = input.single_axis;
  r.source = std::move(input.source);
  r.truth = std::move(input.truth);
  start_metrics(r, o, command_line);
  run_chain(r, o, run.network, o.align != AlignMode::off, run.log, run.seconds, run.start);
  return std::move(run.result);
}

namespace {

bool misaligned(const SimulationInput& in) {
  return in.shift_max_px > 0 || in.axis_rotation_deg != 0 || in.angle_error_deg > 0;
}

void check_simulation_input(const SimulationInput& in) {
  if (!(in.dose >= 0) || !std::isfinite(in.dose)) fail_input("--dose must be >= 0");
  if (!(in.shift_max_px >= 0) || !std::isfinite(in.axis_rotation_deg))
    fail_input("--shift-max must be >= 0 and --axis-rotation finite");
  if (!(in.angle_error_deg >= 0) || !std::isfinite(in.angle_error_deg))
    fail_input("--angle-error must be >= 0");
}

}  // namespace

SeriesInput simulate_series(const AtomModel& truth, const std::vector<double>& tilts,
                            const SimulationInput& in, std::uint64_t seed, const Device& device) {
  check_simulation_input(in);
  phantoms::SimulationSpec sim;
  for (double t : tilts) sim.nominal.push_back(Euler{0.0, t, 0.0});
  sim.dose = in.dose;
  // The demo's "realistic" imaging: a wide probe tail and a smooth background.
  sim.imaging.tail_fraction = 0.1;
  sim.imaging.tail_sigma = 4.0;
  sim.background = 0.05;
  sim.shift_max_px = in.shift_max_px;
  sim.axis_rotation = in.axis_rotation_deg;
  sim.angle_error_sd = in.angle_error_deg;
  sim.seed = seed;
  phantoms::TiltSeries series = phantoms::simulate_tilt_series(truth, sim, device);
  SeriesInput s;
  s.views = std::move(series.views);
  s.nominal = series.nominal;
  // Misaligned on request: then the chain starts from the nominal angles, as with real data.
  if (misaligned(in)) {
    for (const auto& e : s.nominal) s.geometry.push_back(ViewGeometry::from_euler(e));
  } else {
    s.geometry = std::move(series.truth);
  }
  s.single_axis = true;
  s.truth = truth;
  return s;
}

PipelineResult run_pipeline(const SimulationInput& in, const PipelineOptions& o,
                            const PipelineObserver& observer, const std::string& command_line) {
  Run run(o, observer);
  PipelineResult& r = run.result;
  const auto& named = phantoms::find_phantom(in.phantom);
  phantoms::ParticleSpec spec = named.spec;
  spec.seed = o.seed;
  AtomModel truth = phantoms::build_particle(spec);
  const std::vector<double> tilts = phantoms::parse_tilt_range(in.tilt_range).angles();
  check_simulation_input(in);
  r.simulated = true;
  r.source = "simulated phantom " + named.name;
  run.log.line("aet pipeline: simulating " + named.name + " (" + std::to_string(truth.size()) +
               " atoms, " + std::to_string(tilts.size()) + " views)");
  start_metrics(r, o, command_line);
  truth.set_info("source", r.source);
  truth.set_info("seed", std::to_string(o.seed));
  const auto t0 = Clock::now();
  SeriesInput series = simulate_series(truth, tilts, in, o.seed + 1, o.device);
  run.seconds["simulate"] = seconds_since(t0);
  r.views = std::move(series.views);
  r.nominal = std::move(series.nominal);
  r.geometry = std::move(series.geometry);
  r.truth = std::move(series.truth);
  const bool do_align =
      o.align == AlignMode::on || (o.align == AlignMode::automatic && misaligned(in));
  run_chain(r, o, run.network, do_align, run.log, run.seconds, run.start);
  return std::move(run.result);
}

}  // namespace aet
