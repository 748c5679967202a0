// The run report (docs/report.md) through the binary: the report.html aet pipeline writes into its
// run folder holds every section and figure, each a PNG that decodes, under 5 MB; it renders in
// headless Chromium with every image loaded and no console message; aet report writes it for an
// existing folder and refuses bad input with exit code 2; a report that cannot be made is a
// warning (an error under --strict), and --no-report skips it.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "aet/io/mrc.hpp"
#include "support/cli_support.hpp"

namespace {

using aet::test::run_aet;
using aet::test::run_command;
using aet::test::TempDir;

const std::string kPython = AET_TEST_PYTHON;
const std::string kScripts = std::string(AET_SOURCE_DIR) + "/tests/report/";
const char* kSections =
    "warnings,views,view-residual,orthoslices,atoms,r1,histogram,alignment,analysis,metrics,config";
// Every figure a run with alignment, the network and refinement has (no analysis stage here).
const char* kFigures = "views,view-residual,orthoslices,atoms,r1,histogram,alignment";

std::string check_report(const std::string& report, const std::string& figures) {
  return "'" + kPython + "' '" + kScripts + "check_report.py' '" + report + "' --figures " +
         figures + " --sections " + kSections;
}

// A cheap run (no network, no alignment, no refinement): what the tests that need a run folder
// but not every stage use.
const std::string kCheapRun =
    "pipeline --phantom pt-cuboctahedron-309 --tilt-range=-60:60:20 --iterations 15 "
    "--no-network --no-refine --quiet";

// A small misaligned run with every stage the report draws: alignment (shifts, no
// projection-matching rounds, to stay cheap), 32 iterations (the network's 30-iteration input is
// a snapshot of them), the network with one pass, refinement with a probe tail.
TEST(ReportCli, PipelineWritesEveryFigureAndTheMetricsTheyDrawFrom) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  const auto r = run_aet(
      "pipeline --phantom pt-cuboctahedron-309 --tilt-range=-60:60:15 --iterations 32 "
      "--shift-max 1 --align-rounds 0 --no-refine-angles --flips 1 --probe-tail --quiet --out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string report = run + "/report.html";
  ASSERT_TRUE(aet::test::file_exists(report)) << r.output;
  // Every section and figure, each a PNG that decodes, the page self-contained and under 5 MB.
  const auto c = run_command(check_report(report, kFigures));
  EXPECT_EQ(c.exit_code, 0) << c.output;
  const std::string html = aet::test::read_text(report);
#if AET_WITH_TORCH
  EXPECT_NE(html.find("before (top) and after (bottom) the missing-wedge network"),
            std::string::npos);
#endif
  const auto m = nlohmann::json::parse(aet::test::read_text(run + "/metrics.json"));
  // No warning in this run: the report says so at its top.
  EXPECT_EQ(m["warnings"].size(), 0u) << m["warnings"];
  EXPECT_NE(html.find("none: every stage passed its checks"), std::string::npos);
  // The atoms coloured by their position's standard deviation when the refined model (which has
  // a trust per atom) was kept.
  EXPECT_EQ(html.find("standard deviation (pm; sigma_x, sigma_y, sigma_z") != std::string::npos,
            m["refinement"]["kept"].get<bool>());
  // The refinement's probe tail (the simulator's is 0.111 of the core at 4 A; the preprocessing's
  // background model takes part of it from these 9 views), in the metrics and among the report's
  // decisions.
  ASSERT_TRUE(m["refinement"]["probe_tail"].is_object()) << m["refinement"].dump();
  EXPECT_GT(m["refinement"]["probe_tail"]["amplitude"].get<double>(), 0.03);
  EXPECT_LT(m["refinement"]["probe_tail"]["amplitude"].get<double>(), 0.2);
  EXPECT_NE(html.find("refined with a probe tail of 0."), std::string::npos);

  // What the pipeline records for the report: R1 per iteration (its last value is the run's R1),
  // each view's R1 against the reconstruction's projection (weighted by the views' sum |b| they
  // give the run's R1 back), the alignment's nominal angles.
  const auto& per_iteration = m["r1_per_iteration"];
  ASSERT_EQ(per_iteration.size(), 32u);
  EXPECT_DOUBLE_EQ(per_iteration.back().get<double>(), m["r1"].get<double>());
  EXPECT_LT(per_iteration.back().get<double>(), per_iteration.front().get<double>());
  const aet::Array3 views = aet::read_mrc(run + "/tilts.mrc");  // the views reconstructed
  const auto& view_r1 = m["view_r1"];
  ASSERT_EQ(static_cast<std::int64_t>(view_r1.size()), views.nz());
  const std::size_t per_view = static_cast<std::size_t>(views.nx() * views.ny());
  double weighted = 0, total = 0;
  for (std::size_t v = 0; v < view_r1.size(); ++v) {
    double sum = 0;
    for (std::size_t i = v * per_view; i < (v + 1) * per_view; ++i)
      sum += std::abs(static_cast<double>(views.data()[i]));
    weighted += view_r1[v].get<double>() * sum;
    total += sum;
    EXPECT_GT(view_r1[v].get<double>(), 0.0);
  }
  EXPECT_NEAR(weighted / total, m["r1"].get<double>(), 2e-3 * m["r1"].get<double>());
  const auto& nominal = m["alignment"]["nominal_deg"];
  ASSERT_EQ(static_cast<std::int64_t>(nominal.size()), views.nz());
  EXPECT_DOUBLE_EQ(nominal[0][1].get<double>(), -60.0);
  EXPECT_DOUBLE_EQ(nominal.back()[1].get<double>(), 60.0);
}

// aet report on a folder aet pipeline --no-report left without one; the page rendered by headless
// Chromium (Debian's chromium, installed by scripts/setup.sh --tests): a screenshot, no console
// message, every image loaded at its PNG's width.
TEST(ReportCli, ReportCommandWritesAPageThatRendersInHeadlessChromium) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  auto r = run_aet(kCheapRun + " --no-report --out " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(aet::test::file_exists(run + "/report.html")) << "--no-report wrote a report";
  r = run_aet("report " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto c = run_command(
      check_report(run + "/report.html", "views,view-residual,orthoslices,atoms,r1,histogram"));
  EXPECT_EQ(c.exit_code, 0) << c.output;

  const auto b = run_command("'" + kPython + "' '" + kScripts + "browser_check.py' '" + run +
                             "/report.html' '" + tmp.file("browser") + "'");
  if (b.exit_code == 77) GTEST_SKIP() << b.output;
  EXPECT_EQ(b.exit_code, 0) << b.output;
  EXPECT_NE(b.output.find(" images loaded"), std::string::npos) << b.output;
}

// A twinned particle (a cheap run: 13 views, 20 iterations, no network or refinement): the
// analysis finds its two grains, and the report draws them beside the strain, the facets and g(r).
TEST(ReportCli, ATwinnedParticlesReportDrawsItsGrains) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  auto r = run_aet(
      "pipeline --phantom pt-twinned --tilt-range=-60:60:10 --iterations 20 --no-network "
      "--no-refine --quiet --out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = nlohmann::json::parse(aet::test::read_text(run + "/metrics.json"));
  EXPECT_EQ(m["analysis"]["structure"], "polycrystal") << m["analysis"].dump();
  EXPECT_EQ(m["analysis"]["grains"], 2) << m["analysis"].dump();
  const auto c = run_command(check_report(run + "/report.html", "grains,strain,facets,rdf"));
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(aet::test::read_text(run + "/report.html").find("makes the sample polycrystal"),
            std::string::npos);
}

// An ordered alloy (no network or refinement; the light Fe atoms need the 47 views of the default
// tilt range: 18 s), with --elements left to the phantom: both species are traced, the analysis
// fits L1_0 with its order, and the report draws the chemical order.
TEST(ReportCli, AnOrderedAlloysReportDrawsItsChemicalOrder) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  auto r = run_aet(
      "pipeline --phantom fept-l10 --iterations 30 --no-network --no-refine --quiet --out " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = nlohmann::json::parse(aet::test::read_text(run + "/metrics.json"));
  EXPECT_GE(m["evaluation"]["recall"].get<double>(), 0.99) << m["evaluation"].dump();
  EXPECT_GE(m["evaluation"]["precision"].get<double>(), 0.99) << m["evaluation"].dump();
  EXPECT_GE(m["evaluation"]["species_accuracy"].get<double>(), 0.99) << m["evaluation"].dump();
  ASSERT_EQ(m["analysis"]["lattice"], "l10") << m["analysis"].dump();
  EXPECT_GE(m["analysis"]["chemical_order"]["order_parameter"].get<double>(), 0.95)
      << m["analysis"].dump();
  const auto c = run_command(check_report(run + "/report.html", "chemical-order,strain,facets"));
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(aet::test::read_text(run + "/report.html").find("L1_0 long-range order parameter"),
            std::string::npos);
}

TEST(ReportCli, ReportCommandRefusesBadInputWithExitTwo) {
  TempDir tmp;
  const std::string missing = tmp.file("no-such-run");
  auto r = run_aet("report " + missing);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(missing + ": not a directory"), std::string::npos) << r.output;

  const std::string empty = tmp.file("empty");
  ASSERT_EQ(run_command("mkdir -p '" + empty + "'").exit_code, 0);
  r = run_aet("report " + empty);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no metrics.json"), std::string::npos) << r.output;
  EXPECT_FALSE(aet::test::file_exists(empty + "/report.html"));

  // A Python that is not there, or one without matplotlib: exit 2 saying what to install. (Both
  // fail before the folder is read, so an empty metrics.json serves.)
  const std::string run = tmp.file("run");
  ASSERT_EQ(run_command("mkdir -p '" + run + "'").exit_code, 0);
  aet::test::write_text(run + "/metrics.json", "{}\n");
  const std::string out = tmp.file("none.html");
  r = run_command("AET_PYTHON=/nonexistent/python3 '" + std::string(AET_TEST_BINARY) + "' report " +
                  run + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot start the Python"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("AET_PYTHON"), std::string::npos) << r.output;

  const std::string fake = tmp.file("fake");
  ASSERT_EQ(run_command("mkdir -p '" + fake + "/matplotlib'").exit_code, 0);
  aet::test::write_text(fake + "/matplotlib/__init__.py",
                        "raise ImportError('hidden by a test')\n");
  aet::test::write_text(fake + "/python3", "#!/bin/sh\nPYTHONPATH=\"" + fake +
                                               ":$PYTHONPATH\" exec '" + kPython + "' \"$@\"\n");
  ASSERT_EQ(run_command("chmod +x '" + fake + "/python3'").exit_code, 0);
  r = run_command("AET_PYTHON='" + fake + "/python3' '" + std::string(AET_TEST_BINARY) +
                  "' report " + run + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("python3-matplotlib"), std::string::npos) << r.output;
  EXPECT_FALSE(aet::test::file_exists(out));
}

// A report that cannot be made costs the run only its report: a warning (stderr and metrics.json),
// exit 3 and no output under --strict; --no-report does not try.
TEST(ReportPipeline, AFailedReportIsAWarningAndUnderStrictAnError) {
  TempDir tmp;
  const std::string env = "AET_PYTHON=/nonexistent/python3 '" + std::string(AET_TEST_BINARY) + "' ";
  // The analysis is off: on this deliberately poor run (7 views) it may warn of its own.
  auto r = run_command(env + kCheapRun + " --no-analysis --out " + tmp.file("warned"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: the report was not written"), std::string::npos) << r.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("warned/report.html")));
  const auto m = nlohmann::json::parse(aet::test::read_text(tmp.file("warned/metrics.json")));
  ASSERT_EQ(m["warnings"].size(), 1u) << m["warnings"];
  EXPECT_NE(m["warnings"][0].get<std::string>().find("the report was not written"),
            std::string::npos);

  r = run_command(env + kCheapRun + " --no-analysis --out " + tmp.file("strict") + " --strict");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("the report was not written"), std::string::npos) << r.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("strict"))) << "--strict left output";
}

}  // namespace
