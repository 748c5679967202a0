// aet benchmark end to end on a tiny sweep: one small particle, two tilt ranges, aet's RESIRE, an
// external method (a shell script running aet reconstruct) and an external command that writes
// no volume. The failure is named and the other cases finish; a rerun skips what is done; a
// method whose `done` marker is missing (a killed run) runs again, and only it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "support/cli_support.hpp"

namespace fs = std::filesystem;
using aet::test::read_text;
using aet::test::run_aet;
using aet::test::TempDir;

namespace {

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

// results.csv as rows of column -> value.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path,
                                                         std::vector<std::string>* header) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  *header = split(line, ',');
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    // The error column may hold quoted commas: compare only the columns before it.
    const auto cells = split(line, ',');
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < header->size() && i < cells.size(); ++i)
      row[(*header)[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

fs::file_time_type mtime(const std::string& path) {
  return fs::last_write_time(path);
}

}  // namespace

TEST(BenchmarkCli, RunsResumesAndNamesTheFailingCase) {
  TempDir tmp;
  const std::string script = tmp.file("recon.sh");
  aet::test::write_text(script,
                        "#!/bin/sh\nset -e\n'" + std::string(AET_TEST_BINARY) +
                            "' reconstruct --tilts \"$1\" --angles \"$2\" --algorithm sirt "
                            "-n 10 --quiet --out \"$3.tmp.mrc\"\nmv \"$3.tmp.mrc\" \"$3\"\n");
  fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
  const std::string sweep = tmp.file("tiny.ini");
  aet::test::write_text(sweep, R"([sweep]
tilt_ranges = -60:60, -70:+50
views = 13
seeds = 5

[particle small]
phantom = pt-sphere
size = 5

[method resire]
iterations = 15
network = no

[method theirs]
command = )" + script + R"( {tilts} {angles} {out}

[method broken]
command = true {tilts} {out}
)");
  const std::string out = tmp.file("bench");
  const auto r = run_aet("benchmark --sweep " + sweep + " --out " + out + " --quiet");
  // The failing external method is named for each case, and the run ends with exit code 4.
  EXPECT_EQ(r.exit_code, 4) << r.output;
  for (const char* c : {"small_-60_+60_13v_d50000_s5/broken", "small_-70_+50_13v_d50000_s5/broken"})
    EXPECT_NE(r.output.find(std::string("failed: ") + c + ": the command wrote no volume"),
              std::string::npos)
        << r.output;

  std::vector<std::string> header;
  const auto rows = read_csv(out + "/results.csv", &header);
  for (const char* col : {"case",
                          "particle",
                          "tilt_start",
                          "tilt_stop",
                          "views",
                          "dose",
                          "seed",
                          "method",
                          "status",
                          "recall",
                          "precision",
                          "rmsd_pm",
                          "rmsd_surface_pm",
                          "rmsd_interior_pm",
                          "rmsd_x_pm",
                          "rmsd_y_pm",
                          "rmsd_z_pm",
                          "species_accuracy",
                          "r1",
                          "seconds_method",
                          "error"})
    EXPECT_NE(std::find(header.begin(), header.end(), col), header.end()) << col;
  ASSERT_EQ(rows.size(), 6u);  // 2 cases x 3 methods
  for (const auto& row : rows) {
    SCOPED_TRACE(row.at("case") + "/" + row.at("method"));
    EXPECT_EQ(row.at("seed"), "5");
    EXPECT_EQ(row.at("views"), "13");
    if (row.at("method") == "broken") {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_TRUE(row.at("recall").empty());
      continue;
    }
    EXPECT_EQ(row.at("status"), "ok");
    // A clean 43-atom particle: every atom found by both methods, to within a few pm.
    EXPECT_GE(std::stod(row.at("recall")), 0.99);
    EXPECT_GE(std::stod(row.at("precision")), 0.99);
    EXPECT_LT(std::stod(row.at("rmsd_pm")), 15.0);
    EXPECT_LT(std::stod(row.at("r1")), 0.5);
    // The per-axis errors make up the total.
    const double x = std::stod(row.at("rmsd_x_pm")), y = std::stod(row.at("rmsd_y_pm")),
                 z = std::stod(row.at("rmsd_z_pm"));
    EXPECT_NEAR(std::sqrt(x * x + y * y + z * z), std::stod(row.at("rmsd_pm")), 1e-6);
  }
  const std::string c1 = out + "/small_-60_+60_13v_d50000_s5";
  for (const char* f :
       {"tilts.mrc", "tilts.tlt", "truth.xyz", "case.json", "resire/done", "resire/atoms.xyz",
        "resire/metrics.json", "theirs/done", "theirs/atoms.xyz", "broken/error.txt"})
    EXPECT_TRUE(aet::test::file_exists(c1 + "/" + f)) << f;
  EXPECT_FALSE(aet::test::file_exists(c1 + "/broken/done"));
  EXPECT_NE(read_text(c1 + "/case.json").find("\"particle_seed\": 5"), std::string::npos);
  EXPECT_NE(read_text(out + "/results.json").find("\"method\":\"theirs\""), std::string::npos);
  EXPECT_NE(read_text(out + "/results.md").find("| small_-70_+50_13v_d50000_s5 | resire | 100.00"),
            std::string::npos);
  for (const char* png : {"accuracy_vs_tilt_range.png", "accuracy_vs_dose.png",
                          "accuracy_vs_views.png", "rmsd_per_axis.png"})
    EXPECT_TRUE(aet::test::file_exists(out + "/plots/" + png)) << png << "\n" << r.output;

  // A rerun (in two worker processes) skips every finished method: their files are untouched
  // and the table is the same.
  const std::string csv = read_text(out + "/results.csv");
  const auto t_done = mtime(c1 + "/resire/done"), t_atoms = mtime(c1 + "/theirs/atoms.xyz");
  const auto again =
      run_aet("benchmark --sweep " + sweep + " --out " + out + " --workers 2 --quiet");
  EXPECT_EQ(again.exit_code, 4) << again.output;
  EXPECT_EQ(mtime(c1 + "/resire/done"), t_done);
  EXPECT_EQ(mtime(c1 + "/theirs/atoms.xyz"), t_atoms);
  EXPECT_EQ(read_text(out + "/results.csv"), csv);

  // A run killed before a method's marker was written: that method runs again, the rest not.
  fs::remove(c1 + "/resire/done");
  const auto dry = run_aet("benchmark --sweep " + sweep + " --out " + out + " --dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("small_-60_+60_13v_d50000_s5 (13 views, dose 50000, seed 5): resire "
                            "(to run) theirs (done) broken (failed)"),
            std::string::npos)
      << dry.output;
  const auto resumed = run_aet("benchmark --sweep " + sweep + " --out " + out + " --quiet");
  EXPECT_EQ(resumed.exit_code, 4) << resumed.output;
  EXPECT_TRUE(aet::test::file_exists(c1 + "/resire/done"));
  EXPECT_EQ(mtime(c1 + "/theirs/atoms.xyz"), t_atoms);
  // Deterministic: the same numbers (times apart).
  std::vector<std::string> h;
  const auto now = read_csv(out + "/results.csv", &h);
  ASSERT_EQ(now.size(), rows.size());
  for (std::size_t i = 0; i < now.size(); ++i) {
    for (const auto& [col, value] : now[i]) {
      if (col.rfind("seconds_", 0) != 0) {
        EXPECT_EQ(value, rows[i].at(col)) << col;
      }
    }
  }
}

TEST(BenchmarkCli, ABadSweepFileIsRefusedBeforeAnyOutput) {
  TempDir tmp;
  const std::string sweep = tmp.file("bad.ini");
  aet::test::write_text(sweep,
                        "[sweep]\ntilt_ranges = 60\nstep = 3\n[particle p]\nphantom = demo\n"
                        "[method m]\n");
  const auto r = run_aet("benchmark --sweep " + sweep + " --out " + tmp.file("out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(sweep + ": [sweep] unknown key 'step'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp.file("out")));
}
