// One case of the benchmark: its series simulated once into its folder, then each method into a
// subfolder whose `done` marker (the settings it ran with) is written last.
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/analysis/evaluate.hpp"
#include "aet/benchmark/benchmark.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/pipeline/pipeline.hpp"
#include "aet/recon/projector.hpp"
#include "aet/trace/trace.hpp"
#include "benchmark/benchmark_detail.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

SimulationInput imaging_of(const Sweep& sw, const SweepCase& c) {
  SimulationInput in;
  in.dose = c.dose;
  in.shift_max_px = sw.shift_max_px;
  in.axis_rotation_deg = sw.axis_rotation_deg;
  in.angle_error_deg = sw.angle_error_deg;
  return in;
}

bool misaligned(const Sweep& sw) {
  return sw.shift_max_px > 0 || sw.axis_rotation_deg != 0 || sw.angle_error_deg > 0;
}

AtomModel build_truth(const SweepParticle& p, std::uint64_t seed) {
  if (!p.model.empty()) {
    AtomModel m = read_xyz(p.model);
    if (m.size() == 0) fail_file(p.model, "the model holds no atoms");
    return m;
  }
  phantoms::ParticleSpec spec = phantoms::find_phantom(p.phantom).spec;
  if (p.size) spec.size = *p.size;
  if (!p.element.empty()) spec.element = p.element;
  spec.seed = seed;  // as aet pipeline --seed: the same particle for the same seed
  return phantoms::build_particle(spec);
}

// The series and truth of the case, written into `dir`; the marker `simulated` (the settings)
// last.
void simulate_case(const Sweep& sw, const SweepCase& c, const std::string& dir,
                   const BenchmarkOptions& opt, const std::string& settings) {
  const SweepParticle& p = sw.particles[c.particle];
  const auto t0 = Clock::now();
  AtomModel truth = build_truth(p, c.seed);
  SeriesInput s = simulate_series(truth, c.tilts, imaging_of(sw, c), c.seed + 1, opt.device);
  const double seconds = seconds_since(t0);
  truth.set_info("source", p.model.empty() ? "phantom " + p.phantom : p.model);
  truth.set_info("seed", std::to_string(c.seed));
  write_mrc(dir + "/tilts.mrc", s.views, MrcKind::stack,
            {"aet benchmark case " + c.name + " seed " + std::to_string(c.seed)});
  write_tilt_angles(dir + "/tilts.tlt", c.tilts);
  write_xyz(dir + "/truth.xyz", truth);
  const Json info{{"case", c.name},
                  {"particle", p.name},
                  {"atoms", truth.size()},
                  {"elements", detail::traced_elements(p, truth)},
                  {"views", c.tilts.size()},
                  {"view_size", Json::array({s.views.nx(), s.views.ny()})},
                  {"pixel_angstrom", s.views.voxel_size.x},
                  {"particle_seed", c.seed},
                  {"noise_seed", c.seed + 1},
                  {"seconds_simulate", seconds},
                  {"settings", Json::parse(settings)}};
  write_text_file(dir + "/case.json", json_text(info));
  write_text_file(dir + "/simulated", settings);
}

// The case's series as the methods get it.
struct CaseData {
  Array3 views;
  std::vector<Euler> nominal;
  TiltGeometry geometry;
  AtomModel truth;
  std::vector<std::string> elements;
};

CaseData load_case(const Sweep& sw, const SweepCase& c, const std::string& dir) {
  CaseData d;
  d.views = read_mrc(dir + "/tilts.mrc");
  // The simulator's pixel exactly (the header holds it as float32).
  const double pixel = phantoms::SimulationSpec{}.pixel;
  d.views.voxel_size = VoxelSize{pixel, pixel, pixel};
  if (d.views.nz() != static_cast<std::int64_t>(c.tilts.size()))
    fail_file(dir + "/tilts.mrc", "holds " + std::to_string(d.views.nz()) + " views, the case " +
                                      std::to_string(c.tilts.size()));
  // Exact simulations have exactly this geometry; misaligned ones start from it.
  for (double t : c.tilts) {
    d.nominal.push_back(Euler{0.0, t, 0.0});
    d.geometry.push_back(ViewGeometry::from_euler(d.nominal.back()));
  }
  d.truth = read_xyz(dir + "/truth.xyz");
  d.elements = detail::traced_elements(sw.particles[c.particle], d.truth);
  return d;
}

// aet's chain through the pipeline library; its metrics and files into `dir`.
Json run_aet_method(const Sweep& sw, const SweepCase& c, const SweepMethod& m, CaseData d,
                    const std::string& dir, const BenchmarkOptions& opt,
                    const std::function<void(const std::string&)>& log) {
  PipelineOptions o;
  o.elements = d.elements;
  o.algorithm = m.algorithm;
  o.iterations = m.iterations;
  o.align = misaligned(sw) ? AlignMode::on : AlignMode::off;
  o.alignment.rounds = sw.align_rounds;
  o.sample = SampleKind::particle;  // simulated isolated particles
  o.refine = m.refine;
  o.min_distance = sw.particles[c.particle].min_distance;
  o.network.enabled = m.network;
  o.network.device = opt.network_device;
  o.device = opt.device;
  o.seed = c.seed;
  SeriesInput in;
  in.views = std::move(d.views);
  in.nominal = std::move(d.nominal);
  in.geometry = std::move(d.geometry);
  in.source = c.name;
  in.truth = std::move(d.truth);
  PipelineObserver observer;
  observer.warning = [&](const std::string& w) {
    log("warning: " + c.name + "/" + m.name + ": " + w);
  };
  const PipelineResult r = run_pipeline(std::move(in), o, observer, "aet benchmark " + sw.path);
  if (sw.keep_volumes) {
    Provenance prov;
    prov.command_line =
        "aet benchmark --sweep " + sw.path + " (case " + c.name + ", method " + m.name + ")";
    prov.seed = c.seed;
    prov.has_seed = true;
    write_pipeline_files(r, dir, prov);
  } else {
    write_xyz(dir + "/atoms.xyz", r.atoms());
    if (r.refined.size() > 0) write_xyz(dir + "/traced.xyz", r.traced);
    write_text_file(dir + "/metrics.json", json_text(r.metrics));
    write_text_file(dir + "/pipeline.log", r.log);
  }
  return r.metrics;
}

// The external command's volume traced and scored as aet's own.
Json run_external_method(const SweepCase& c, const SweepMethod& m, const CaseData& d,
                         const std::string& case_dir, const std::string& dir,
                         const BenchmarkOptions& opt, const SweepParticle& particle) {
  const std::string volume_path = dir + "/volume.mrc", log_path = dir + "/command.log";
  const std::string command =
      expand_command(m.command, case_dir + "/tilts.mrc", case_dir + "/tilts.tlt", volume_path);
  const auto t0 = Clock::now();
  const int status = std::system(("( " + command + " ) > '" + log_path + "' 2>&1").c_str());
  const double seconds_command = seconds_since(t0);
  const int code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  const std::string tail = detail::last_lines(read_text_file(log_path), 3);
  const std::string said = tail.empty() ? "" : "; its output ends: " + tail;
  if (code != 0)
    fail_input("the command exited with status " + std::to_string(code) + " (" + command + ")" +
               said);
  if (!fs::is_regular_file(volume_path))
    fail_input("the command wrote no volume " + volume_path + " (" + command + ")" + said);
  MrcHeader header;
  Array3 volume = read_mrc(volume_path, &header);
  Json warnings = Json::array();
  const double pixel = d.views.voxel_size.x, stated = header.voxel_size().x;
  if (std::fabs(stated - pixel) > 0.01 * pixel)
    warnings.push_back("the volume's header gives a voxel size of " + fmt_g(stated) +
                       " A; it is taken to be on the views' pixel grid, " + fmt_g(pixel) + " A");
  volume.voxel_size = VoxelSize{pixel, pixel, pixel};
  TraceOptions to;
  to.elements = d.elements;
  to.min_distance = particle.min_distance;
  to.seed = c.seed;
  auto t1 = Clock::now();
  const AtomModel traced = trace_atoms(volume, to);
  const double seconds_trace = seconds_since(t1);
  if (traced.size() == 0) fail_input("no atoms were traced in the command's volume");
  write_xyz(dir + "/atoms.xyz", traced);
  // R1 of the volume against the views, through aet's projector, as the chains report theirs.
  const Array3 computed =
      forward_project(volume, d.geometry, d.views.nx(), d.views.ny(), opt.device);
  const double r1 = r1_factor(d.views, computed);
  const EvaluationResult ev = evaluate(traced, d.truth);
  return Json{{"command", command},
              {"r1", r1},
              {"traced_atoms", traced.size()},
              {"seconds", Json{{"command", seconds_command},
                               {"trace", seconds_trace},
                               {"total", seconds_command + seconds_trace}}},
              {"evaluation", ev.json()},
              {"warnings", warnings}};
}

}  // namespace

namespace detail {

std::vector<std::string> traced_elements(const SweepParticle& p, const AtomModel& truth) {
  if (!p.elements.empty()) return p.elements;
  std::vector<std::string> species = truth.species;
  std::sort(species.begin(), species.end());
  species.erase(std::unique(species.begin(), species.end()), species.end());
  std::sort(species.begin(), species.end(),
            [](const std::string& a, const std::string& b) { return element(a).z < element(b).z; });
  return species;
}

std::string last_lines(const std::string& text, int n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0;
       i < lines.size(); ++i)
    out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

std::string case_settings(const Sweep& sw, const SweepCase& c) {
  const SweepParticle& p = sw.particles[c.particle];
  return json_text(Json{{"particle", p.name},
                        {"phantom", p.phantom},
                        {"model", p.model},
                        {"size", p.size ? Json(*p.size) : Json(nullptr)},
                        {"element", p.element},
                        {"tilts", c.tilts},
                        {"dose", c.dose},
                        {"seed", c.seed},
                        {"shift_max_px", sw.shift_max_px},
                        {"axis_rotation_deg", sw.axis_rotation_deg},
                        {"angle_error_deg", sw.angle_error_deg}});
}

std::string method_settings(const Sweep& sw, const SweepCase& c, const SweepMethod& m) {
  const SweepParticle& p = sw.particles[c.particle];
  Json j{{"case", Json::parse(case_settings(sw, c))},
         {"method", m.name},
         {"elements", p.elements},
         {"min_distance", p.min_distance}};
  if (m.external()) {
    j["command"] = m.command;
  } else {
    j["algorithm"] = algorithm_name(m.algorithm);
    j["iterations"] = m.iterations;
    j["network"] = m.network;
    j["refine"] = m.refine;
    j["align_rounds"] = sw.align_rounds;
    j["keep_volumes"] = sw.keep_volumes;
  }
  return json_text(j);
}

}  // namespace detail

bool CaseOutcome::ok() const {
  return failures().empty();
}

std::vector<std::string> CaseOutcome::failures() const {
  std::vector<std::string> f;
  if (!error.empty()) f.push_back(name + ": " + error);
  for (const auto& m : methods)
    if (!m.error.empty()) f.push_back(name + "/" + m.method + ": " + m.error);
  return f;
}

CaseOutcome run_case(const Sweep& sw, const SweepCase& c, const std::string& out,
                     const BenchmarkOptions& opt,
                     const std::function<void(const std::string&)>& log) {
  CaseOutcome outcome;
  outcome.name = c.name;
  const std::string dir = out + "/" + c.name;
  const std::string settings = detail::case_settings(sw, c);
  CaseData data;
  try {
    ensure_directory(dir);
    if (read_text_file(dir + "/simulated") != settings) {
      // New, or made for other settings: the series and every method's result go.
      for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().filename() != "worker.log") fs::remove_all(entry.path());
      log(c.name + ": simulating " + std::to_string(c.tilts.size()) + " views");
      simulate_case(sw, c, dir, opt, settings);
    }
    data = load_case(sw, c, dir);
  } catch (const std::exception& e) {
    outcome.error = e.what();
    write_text_file(dir + "/error.txt", outcome.error + "\n");
    log("error: " + c.name + ": " + outcome.error);
    return outcome;
  }
  std::error_code ec;
  fs::remove(dir + "/error.txt", ec);
  for (const SweepMethod& m : sw.methods) {
    MethodOutcome mo;
    mo.method = m.name;
    const std::string mdir = dir + "/" + m.name;
    const std::string msettings = detail::method_settings(sw, c, m);
    if (read_text_file(mdir + "/done") == msettings) {
      mo.resumed = true;
      outcome.methods.push_back(mo);
      continue;
    }
    try {
      fs::remove_all(mdir);
      ensure_directory(mdir);
      log(c.name + ": " + m.name);
      const auto t0 = Clock::now();
      Json metrics = m.external()
                         ? run_external_method(c, m, data, dir, mdir, opt, sw.particles[c.particle])
                         : run_aet_method(sw, c, m, data, mdir, opt, log);
      if (m.external()) {
        write_text_file(mdir + "/metrics.json", json_text(metrics));
        if (!sw.keep_volumes) fs::remove(mdir + "/volume.mrc");
      }
      Json row = detail::method_row(m, metrics);
      row["seconds_method"] = seconds_since(t0);
      write_text_file(mdir + "/result.json", json_text(row));
      write_text_file(mdir + "/done", msettings);
    } catch (const std::exception& e) {
      mo.error = e.what();
      write_text_file(mdir + "/error.txt", mo.error + "\n");
      log("error: " + c.name + "/" + m.name + ": " + mo.error);
    }
    outcome.methods.push_back(mo);
  }
  return outcome;
}

}  // namespace aet
