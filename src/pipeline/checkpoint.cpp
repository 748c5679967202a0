// The pipeline's checkpoints (checkpoint.hpp). Keys are SHA-256 digests (the model files'
// checksum function): the views' values enter them exactly.
#include "checkpoint.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "sha256.hpp"

namespace aet::detail {
namespace {

namespace fs = std::filesystem;

Json rounds_json(const std::vector<AlignRound>& rounds) {
  Json j = Json::array();
  for (const AlignRound& d : rounds)
    j.push_back({d.round, d.r1, d.shift_change_px, d.angle_change_deg});
  return j;
}

std::vector<AlignRound> rounds_from_json(const Json& j) {
  std::vector<AlignRound> rounds;
  for (const Json& d : j)
    rounds.push_back(
        {d.at(0).get<int>(), d.at(1).get<double>(), d.at(2).get<double>(), d.at(3).get<double>()});
  return rounds;
}

[[noreturn]] void damaged_alignment(const nlohmann::json::exception& e) {
  throw InputError(std::string("a damaged alignment checkpoint (remove the checkpoint folder): ") +
                   e.what());
}

}  // namespace

Checkpoint::Checkpoint(const std::string& dir, const Array3& views,
                       const std::vector<Euler>& nominal, const TiltGeometry& geometry,
                       const std::string& settings,
                       std::map<std::string, std::string> stage_settings,
                       std::function<void(const std::string&)> log)
    : dir_(dir), stage_settings_(std::move(stage_settings)), log_(std::move(log)) {
  if (dir_.empty()) return;
  ensure_directory(dir_);
  // What the key covers, as text: version, dimensions and pixel size, the views' digest, every
  // angle and geometry number to the last bit, the settings.
  std::string text = std::string("aet ") + AET_VERSION + "\n";
  char buf[64];
  const auto number = [&](double v) {
    std::snprintf(buf, sizeof buf, "%a ", v);
    text += buf;
  };
  text += std::to_string(views.nx()) + " " + std::to_string(views.ny()) + " " +
          std::to_string(views.nz()) + " ";
  number(views.voxel_size.x);
  text += nn::detail::sha256_hex(views.data(), views.size() * sizeof(float)) + "\n";
  for (const Euler& e : nominal)
    for (double v : {e.phi, e.theta, e.psi}) number(v);
  text += "\n";
  for (const ViewGeometry& g : geometry) {
    for (int i = 0; i < 9; ++i) number(g.R.data()[i]);
    number(g.shift.x());
    number(g.shift.y());
  }
  key_ = nn::detail::sha256_hex(text.data(), text.size());
  key_ = nn::detail::sha256_hex((key_ + "\n" + settings).data(), key_.size() + 1 + settings.size());
}

bool Checkpoint::begin(const std::string& stage) {
  if (!enabled()) return false;
  const auto own = stage_settings_.find(stage);
  const std::string chained =
      key_ + "\n" + stage + "\n" + (own == stage_settings_.end() ? "" : own->second);
  key_ = nn::detail::sha256_hex(chained.data(), chained.size());
  stage_ = stage;
  std::string stored = read_text_file(file("key"));
  while (!stored.empty() && stored.back() == '\n') stored.pop_back();
  if (stored == key_) return true;
  if (!stored.empty() && log_)
    log_("  the checkpoint's " + stage + " (" + file("key") +
         ") is of other input or settings: computed again");
  // Another run's result: its key goes before any file is replaced, so that files half replaced
  // by a run killed while saving can never pass for that run's.
  std::error_code ec;
  fs::remove(file("key"), ec);
  return false;
}

std::string Checkpoint::file(const std::string& name) const {
  return dir_ + "/" + stage_ + "." + name;
}

void Checkpoint::save_array(const std::string& name, const Array3& a, MrcKind kind) const {
  write_mrc(file(name + ".mrc"), a, kind, {"aet pipeline checkpoint " + key_});
  // The MRC header keeps the voxel size in single precision: exactly, beside it.
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.17g %.17g %.17g\n", a.voxel_size.x, a.voxel_size.y,
                a.voxel_size.z);
  write_text_file(file(name + ".voxel"), buf);
}

Array3 Checkpoint::load_array(const std::string& name) const {
  Array3 a = read_mrc(file(name + ".mrc"));
  std::istringstream in(read_text_file(file(name + ".voxel")));
  VoxelSize v;
  if (!(in >> v.x >> v.y >> v.z))
    fail_file(file(name + ".voxel"), "a damaged checkpoint (remove the checkpoint folder)");
  a.voxel_size = v;
  return a;
}

void Checkpoint::save_geometry(const std::string& name, const TiltGeometry& g) const {
  std::string text;
  char buf[64];
  for (const ViewGeometry& v : g) {
    for (int i = 0; i < 9; ++i) {
      std::snprintf(buf, sizeof buf, "%.17g ", v.R.data()[i]);
      text += buf;
    }
    std::snprintf(buf, sizeof buf, "%.17g %.17g\n", v.shift.x(), v.shift.y());
    text += buf;
  }
  write_text_file(file(name + ".txt"), text);
}

TiltGeometry Checkpoint::load_geometry(const std::string& name) const {
  const std::string path = file(name + ".txt");
  std::istringstream in(read_text_file(path));
  TiltGeometry g;
  ViewGeometry v;
  while (in >> v.R.data()[0]) {
    for (int i = 1; i < 9; ++i) in >> v.R.data()[i];
    in >> v.shift.x() >> v.shift.y();
    if (!in) fail_file(path, "a damaged checkpoint (remove the checkpoint folder)");
    g.push_back(v);
  }
  return g;
}

void Checkpoint::save_json(const std::string& name, const Json& j) const {
  write_text_file(file(name + ".json"), j.dump() + "\n");  // dump(): every double exactly
}

Json Checkpoint::load_json(const std::string& name) const {
  const std::string path = file(name + ".json");
  try {
    return Json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail_file(path,
              std::string("a damaged checkpoint (remove the checkpoint folder): ") + e.what());
  }
}

void Checkpoint::save_numbers(const std::string& name, const std::vector<double>& v) const {
  save_json(name, Json(v));
}

std::vector<double> Checkpoint::load_numbers(const std::string& name) const {
  return load_json(name).get<std::vector<double>>();
}

void Checkpoint::begin_progress() const {
  if (!enabled()) return;
  std::error_code ec;
  fs::remove(file("progress_key"), ec);
}

void Checkpoint::end_progress() const {
  if (enabled()) write_text_file(file("progress_key"), key_ + "\n");
}

bool Checkpoint::has_progress() const {
  if (!enabled()) return false;
  std::string stored = read_text_file(file("progress_key"));
  while (!stored.empty() && stored.back() == '\n') stored.pop_back();
  return stored == key_;
}

void Checkpoint::done() const {
  if (enabled()) write_text_file(file("key"), key_ + "\n");
}

namespace {

// The alignment's progress after a projection-matching round (AlignOptions::save_round), kept as
// progress of the current stage: written whole or not at all (for a reader); load_align_round
// returns false when DIR holds none for this key.
void save_align_round(const Checkpoint& ck, const AlignRoundState& st) {
  if (!ck.enabled()) return;
  ck.begin_progress();
  ck.save_geometry("round.geometry", st.geometry);
  ck.save_geometry("round.best_geometry", st.best_geometry);
  if (!st.volume.empty()) ck.save_array("round.volume", st.volume, MrcKind::volume);
  ck.save_json("round", Json{{"rounds_done", st.rounds_done},
                             {"converged", st.converged},
                             {"check_shift_px", st.check_shift_px},
                             {"check_axis_deg", st.check_axis_deg},
                             {"axis_deg", st.axis_deg},
                             {"best_axis_deg", st.best_axis_deg},
                             {"best_r1", st.best_r1},
                             {"r1_initial", st.r1_initial},
                             {"volume", !st.volume.empty()},
                             {"rounds", rounds_json(st.rounds)}});
  ck.end_progress();
}

bool load_align_round(const Checkpoint& ck, AlignRoundState& st) {
  if (!ck.has_progress()) return false;
  const Json j = ck.load_json("round");
  try {
    st.rounds_done = j.at("rounds_done").get<int>();
    st.converged = j.at("converged").get<bool>();
    st.check_shift_px = j.at("check_shift_px").get<double>();
    st.check_axis_deg = j.at("check_axis_deg").get<double>();
    st.axis_deg = j.at("axis_deg").get<double>();
    st.best_axis_deg = j.at("best_axis_deg").get<double>();
    st.best_r1 = j.at("best_r1").get<double>();
    st.r1_initial = j.at("r1_initial").get<double>();
    st.rounds = rounds_from_json(j.at("rounds"));
    st.volume = j.at("volume").get<bool>() ? ck.load_array("round.volume") : Array3();
  } catch (const nlohmann::json::exception& e) {
    damaged_alignment(e);
  }
  st.geometry = ck.load_geometry("round.geometry");
  st.best_geometry = ck.load_geometry("round.best_geometry");
  return true;
}

void save_align_result(const Checkpoint& ck, const AlignResult& r) {
  if (!ck.enabled()) return;
  ck.save_array("views", r.views, MrcKind::stack);
  ck.save_geometry("geometry", r.geometry);
  ck.save_json("result", Json{{"sample", sample_name(r.sample)},
                              {"border_fraction", r.border_fraction},
                              {"tilt_axis_deg", r.tilt_axis_deg},
                              {"rounds", rounds_json(r.rounds)},
                              {"r1_initial", r.r1_initial},
                              {"r1_final", r.r1_final},
                              {"model_atoms", r.model_atoms},
                              {"model_r1_initial", r.model_r1_initial},
                              {"model_r1_final", r.model_r1_final},
                              {"angles_rejected", r.angles_rejected},
                              {"angle_change_px", r.angle_change_px},
                              {"angles_deferred", r.angles_deferred},
                              {"search_change_deg", r.search_change_deg},
                              {"already_aligned", r.already_aligned},
                              {"check_shift_px", r.check_shift_px},
                              {"check_axis_deg", r.check_axis_deg}});
}

AlignResult load_align_result(const Checkpoint& ck) {
  AlignResult r;
  const Json j = ck.load_json("result");
  try {
    r.sample = parse_sample(j.at("sample").get<std::string>());
    r.border_fraction = j.at("border_fraction").get<double>();
    r.tilt_axis_deg = j.at("tilt_axis_deg").get<double>();
    r.rounds = rounds_from_json(j.at("rounds"));
    r.r1_initial = j.at("r1_initial").get<double>();
    r.r1_final = j.at("r1_final").get<double>();
    r.model_atoms = j.at("model_atoms").get<std::size_t>();
    r.model_r1_initial = j.at("model_r1_initial").get<double>();
    r.model_r1_final = j.at("model_r1_final").get<double>();
    r.angles_rejected = j.at("angles_rejected").get<bool>();
    r.angle_change_px = j.at("angle_change_px").get<double>();
    r.angles_deferred = j.at("angles_deferred").get<bool>();
    r.search_change_deg = j.at("search_change_deg").get<std::vector<double>>();
    r.already_aligned = j.at("already_aligned").get<bool>();
    r.check_shift_px = j.at("check_shift_px").get<double>();
    r.check_axis_deg = j.at("check_axis_deg").get<double>();
  } catch (const nlohmann::json::exception& e) {
    damaged_alignment(e);
  }
  r.views = ck.load_array("views");
  r.geometry = ck.load_geometry("geometry");
  return r;
}

}  // namespace

bool checkpointed_alignment(Checkpoint& ck, const Array3& views, const std::vector<Euler>& nominal,
                            AlignOptions opt, AlignResult& result,
                            const std::function<void(const std::string&)>& log) {
  if (ck.begin("align")) {
    result = load_align_result(ck);
    return true;
  }
  AlignRoundState saved;
  if (load_align_round(ck, saved)) {
    opt.resume = &saved;
    if (log)
      log("going on after round " + std::to_string(saved.rounds_done) + " of the checkpoint");
  }
  if (ck.enabled()) opt.save_round = [&ck](const AlignRoundState& st) { save_align_round(ck, st); };
  result = align_tilt_series(views, nominal, opt);
  save_align_result(ck, result);
  ck.done();
  return false;
}

ReconResult reconstruct_in_parts(const Array3& views, const TiltGeometry& geometry,
                                 const ReconOptions& ro, const Checkpoint& ck, int every,
                                 int snapshot_at, Array3* snapshot,
                                 const std::function<void(const std::string&)>& log) {
  if (ro.accelerate || (ro.algorithm != Algorithm::resire && ro.algorithm != Algorithm::sirt))
    throw InternalError("reconstruct_in_parts: only plain RESIRE or SIRT goes on exactly");
  const bool keep = ck.enabled() && every > 0;
  ReconResult result;
  int done = 0;
  Array3 start;  // where the next part goes on from (an extended object's whole solve)
  if (keep && ck.has_progress()) {
    const Json j = ck.load_json("progress");
    done = j["iterations"];
    result.r1 = j["r1"].get<std::vector<double>>();
    result.r2 = j["r2"].get<std::vector<double>>();
    result.seconds = j["seconds"];
    start = ck.load_array("progress_volume");
    if (snapshot && j["network_input"].get<bool>())
      *snapshot = ck.load_array("progress_network_input");
    if (log) log("going on from iteration " + std::to_string(done) + " of the checkpoint");
  }
  while (done < ro.iterations) {
    int next = keep ? std::min(ro.iterations, done + every) : ro.iterations;
    if (snapshot && snapshot_at > 0 && done < snapshot_at) next = std::min(next, snapshot_at);
    ReconOptions part = ro;
    part.iterations = next - done;
    part.initial = start.empty() ? ro.initial : &start;
    ReconResult pr = reconstruct(views, geometry, part);
    result.r1.insert(result.r1.end(), pr.r1.begin(), pr.r1.end());
    result.r2.insert(result.r2.end(), pr.r2.begin(), pr.r2.end());
    result.seconds += pr.seconds;
    result.device_bytes = std::max(result.device_bytes, pr.device_bytes);
    result.mpi_ranks = pr.mpi_ranks;
    result.mpi_mode = pr.mpi_mode;
    start = pr.full_volume.empty() ? pr.volume : pr.full_volume;
    result.volume = std::move(pr.volume);
    result.full_volume = std::move(pr.full_volume);
    done = next;
    if (snapshot && done == snapshot_at) *snapshot = result.volume;
    if (keep && done < ro.iterations) {
      const bool with_snapshot = snapshot && !snapshot->empty();
      ck.begin_progress();
      ck.save_array("progress_volume", start, MrcKind::volume);
      if (with_snapshot) ck.save_array("progress_network_input", *snapshot, MrcKind::volume);
      ck.save_json("progress", Json{{"iterations", done},
                                    {"r1", result.r1},
                                    {"r2", result.r2},
                                    {"seconds", result.seconds},
                                    {"network_input", with_snapshot}});
      ck.end_progress();
    }
  }
  return result;
}

std::string array_digest(const Array3& a) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%lld %lld %lld %a %a %a ", static_cast<long long>(a.nx()),
                static_cast<long long>(a.ny()), static_cast<long long>(a.nz()), a.voxel_size.x,
                a.voxel_size.y, a.voxel_size.z);
  return buf + nn::detail::sha256_hex(a.data(), a.size() * sizeof(float));
}

}  // namespace aet::detail
