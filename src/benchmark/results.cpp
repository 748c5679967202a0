// The benchmark's tables: one row per case and method, collected from the case folders (so that
// cases run by other processes, or in an earlier run, are collected the same way), written as
// CSV, JSON and Markdown, and drawn by the Python module aet_benchmark_plots.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aet/benchmark/benchmark.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/io/atomic_file.hpp"
#include "benchmark/benchmark_detail.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

Json read_json(const std::string& path) {
  try {
    return Json::parse(read_text_file(path));
  } catch (const std::exception& e) {
    fail_file(path, std::string("not valid JSON: ") + e.what());
  }
}

// j[key] or null, for metrics that a stage may not have written.
Json member(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) ? j[key] : Json(nullptr);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string cell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return json_number(v.get<double>());
  if (v.is_number()) return v.dump();
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string pct(const Json& v) {
  return v.is_number() ? fmt("%.2f", 100 * v.get<double>()) : "n/a";
}

std::string num(const Json& v, const char* f) {
  return v.is_number() ? fmt(f, v.get<double>()) : "n/a";
}

}  // namespace

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> c = {"case",
                                             "particle",
                                             "source",
                                             "atoms",
                                             "elements",
                                             "tilt_start",
                                             "tilt_stop",
                                             "tilt_span",
                                             "views",
                                             "step",
                                             "dose",
                                             "seed",
                                             "shift_max_px",
                                             "axis_rotation_deg",
                                             "angle_error_deg",
                                             "method",
                                             "kind",
                                             "algorithm",
                                             "iterations",
                                             "network",
                                             "network_used",
                                             "refine",
                                             "status",
                                             "recall",
                                             "precision",
                                             "rmsd_pm",
                                             "rmsd_surface_pm",
                                             "rmsd_interior_pm",
                                             "rmsd_x_pm",
                                             "rmsd_y_pm",
                                             "rmsd_z_pm",
                                             "rmsd_traced_pm",
                                             "surface_recall",
                                             "species_accuracy",
                                             "r1",
                                             "traced_atoms",
                                             "final_atoms",
                                             "seconds_simulate",
                                             "seconds_reconstruct",
                                             "seconds_network",
                                             "seconds_trace",
                                             "seconds_refine",
                                             "seconds_method",
                                             "warnings",
                                             "error"};
  return c;
}

namespace detail {

Json method_row(const SweepMethod& m, const Json& metrics) {
  const Json traced = member(metrics, "evaluation");
  const Json refined = member(metrics, "evaluation_refined");
  const Json& final = refined.is_null() ? traced : refined;
  const Json axis = member(final, "rmsd_axis_pm");
  const Json seconds = member(metrics, "seconds");
  std::string warnings;
  for (const auto& w : member(metrics, "warnings"))
    warnings += (warnings.empty() ? "" : "; ") + w.get<std::string>();
  Json row{{"kind", m.external() ? "external" : "aet"},
           {"algorithm", m.external() ? Json("external") : Json(algorithm_name(m.algorithm))},
           {"iterations", m.external() ? Json(nullptr) : Json(m.iterations)},
           {"network", m.external() ? Json(nullptr) : Json(m.network)},
           {"network_used", member(member(metrics, "network"), "used")},
           {"refine", m.external() ? Json(nullptr) : Json(m.refine)},
           {"recall", member(final, "recall")},
           {"precision", member(final, "precision")},
           {"rmsd_pm", member(final, "rmsd_pm")},
           {"rmsd_surface_pm", member(final, "surface_rmsd_pm")},
           {"rmsd_interior_pm", member(final, "interior_rmsd_pm")},
           {"rmsd_x_pm", axis.is_array() ? axis[0] : Json(nullptr)},
           {"rmsd_y_pm", axis.is_array() ? axis[1] : Json(nullptr)},
           {"rmsd_z_pm", axis.is_array() ? axis[2] : Json(nullptr)},
           {"rmsd_traced_pm", member(traced, "rmsd_pm")},
           {"surface_recall", member(final, "surface_recall")},
           {"species_accuracy", member(final, "species_accuracy")},
           {"r1", member(metrics, "r1")},
           {"traced_atoms", member(metrics, "traced_atoms")},
           {"final_atoms", member(final, "traced_atoms")},
           {"seconds_reconstruct",
            m.external() ? member(seconds, "command") : member(seconds, "reconstruct")},
           {"seconds_network", member(seconds, "network")},
           {"seconds_trace", member(seconds, "trace")},
           {"seconds_refine", member(seconds, "refine")},
           {"warnings", warnings}};
  return row;
}

}  // namespace detail

Json collect_results(const Sweep& sw, const std::vector<SweepCase>& cases, const std::string& out) {
  Json rows = Json::array();
  for (const SweepCase& c : cases) {
    const SweepParticle& p = sw.particles[c.particle];
    const std::string dir = out + "/" + c.name;
    const bool simulated = read_text_file(dir + "/simulated") == detail::case_settings(sw, c);
    const Json info = simulated ? read_json(dir + "/case.json") : Json::object();
    std::string elements;
    for (const auto& e : member(info, "elements"))
      elements += (elements.empty() ? "" : ",") + e.get<std::string>();
    const double span = c.span.stop - c.span.start;
    Json base{{"case", c.name},
              {"particle", p.name},
              {"source", p.model.empty() ? p.phantom : p.model},
              {"atoms", member(info, "atoms")},
              {"elements", elements},
              {"tilt_start", c.span.start},
              {"tilt_stop", c.span.stop},
              {"tilt_span", span},
              {"views", c.tilts.size()},
              {"step", c.tilts.size() > 1 ? (c.tilts.back() - c.tilts.front()) /
                                                static_cast<double>(c.tilts.size() - 1)
                                          : 0.0},
              {"dose", c.dose},
              {"seed", c.seed},
              {"shift_max_px", sw.shift_max_px},
              {"axis_rotation_deg", sw.axis_rotation_deg},
              {"angle_error_deg", sw.angle_error_deg}};
    const std::string case_error = trimmed(read_text_file(dir + "/error.txt"));
    for (const SweepMethod& m : sw.methods) {
      const std::string mdir = dir + "/" + m.name;
      Json row = base;
      row["method"] = m.name;
      Json values = Json::object();
      std::string status = "missing", error;
      if (simulated && read_text_file(mdir + "/done") == detail::method_settings(sw, c, m)) {
        values = read_json(mdir + "/result.json");
        status = "ok";
      } else if (!case_error.empty()) {
        status = "failed";
        error = case_error;
      } else if (fs::exists(mdir + "/error.txt")) {
        status = "failed";
        error = trimmed(read_text_file(mdir + "/error.txt"));
      }
      if (status != "ok") values = detail::method_row(m, Json::object());
      values["status"] = status;
      values["error"] = error;
      values["seconds_simulate"] = member(info, "seconds_simulate");
      for (const auto& col : result_columns())
        if (!row.contains(col)) row[col] = member(values, col.c_str());
      rows.push_back(row);
    }
  }
  return rows;
}

void write_results(const Json& rows, const std::string& out) {
  const auto& cols = result_columns();
  std::string csv;
  for (std::size_t i = 0; i < cols.size(); ++i) csv += (i ? "," : "") + cols[i];
  csv += "\n";
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < cols.size(); ++i) csv += (i ? "," : "") + cell(row[cols[i]]);
    csv += "\n";
  }
  write_text_file(out + "/results.csv", csv);
  // One row per line, readable and still one JSON document.
  std::string js = "{\"columns\": " + Json(cols).dump() + ",\n\"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i)
    js += "  " + rows[i].dump() + (i + 1 < rows.size() ? ",\n" : "\n");
  js += "]}\n";
  write_text_file(out + "/results.json", js);

  std::string md =
      "| case | method | recall % | precision % | RMSD pm (traced) | x / y / z pm | surface / "
      "interior pm | species % | R1 | time s | status |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    md += "| " + r["case"].get<std::string>() + " | " + r["method"].get<std::string>() + " | " +
          pct(r["recall"]) + " | " + pct(r["precision"]) + " | " + num(r["rmsd_pm"], "%.1f") +
          " (" + num(r["rmsd_traced_pm"], "%.1f") + ") | " + num(r["rmsd_x_pm"], "%.1f") + " / " +
          num(r["rmsd_y_pm"], "%.1f") + " / " + num(r["rmsd_z_pm"], "%.1f") + " | " +
          num(r["rmsd_surface_pm"], "%.1f") + " / " + num(r["rmsd_interior_pm"], "%.1f") + " | " +
          pct(r["species_accuracy"]) + " | " + num(r["r1"], "%.3f") + " | " +
          num(r["seconds_method"], "%.0f") + " | " + r["status"].get<std::string>() + " |\n";
  }
  write_text_file(out + "/results.md", md);
}

std::string make_plots(const std::string& out) {
  const char* python = std::getenv("AET_PYTHON");
  const std::string py = python && *python ? python : AET_PLOTS_PYTHON;
  const std::string staging = out + "/.plots.tmp", plots = out + "/plots";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  const auto q = [](const std::string& s) {
    std::string r = "'";
    for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return r + "'";
  };
  const std::string cmd = "PYTHONPATH=" + q(std::string(AET_PYTHON_DIR)) +
                          "${PYTHONPATH:+:$PYTHONPATH} " + q(py) + " -m aet_benchmark_plots " +
                          q(out + "/results.csv") + " " + q(staging) + " 2>&1";
  std::string output;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, f)) output += buf;
    const int status = pclose(f);
    if (status == 0) {
      fs::remove_all(plots, ec);
      fs::rename(staging, plots, ec);
      if (!ec) return "";
      output = "cannot move the plots into " + plots + ": " + ec.message();
    } else if (output.empty()) {
      output = "exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
  } else {
    output = "cannot start " + py;
  }
  fs::remove_all(staging, ec);
  return "no plots (" + py +
         " -m aet_benchmark_plots, matplotlib): " + detail::last_lines(output, 2);
}

}  // namespace aet
