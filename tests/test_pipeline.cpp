// End-to-end: simulate with the analytic projector, reconstruct, trace, and score against the
// truth. The floors here are the accuracy the pipeline promises on simulated particles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"

using aet::test::run_aet;
using aet::test::TempDir;

namespace {
// The number after "key": in a JSON text (first occurrence); NaN when absent.
double json_value(const std::string& js, const std::string& key) {
  const auto pos = js.find("\"" + key + "\":");
  if (pos == std::string::npos) return std::nan("");
  return std::strtod(js.c_str() + pos + key.size() + 3, nullptr);
}
}  // namespace

TEST(Pipeline, BuiltInParticleScoresItselfAgainstTheTruth) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  const auto r = run_aet("pipeline --phantom pt-cuboctahedron-309 --seed 11 --quiet --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"reconstruction.mrc", "atoms.xyz", "metrics.json", "result.h5",
                        "pipeline.log", "tilts.mrc", "tilts.tlt", "truth.xyz"})
    EXPECT_TRUE(aet::test::file_exists(out + "/" + f)) << f;
  const std::string js = aet::test::read_text(out + "/metrics.json");
  EXPECT_GE(json_value(js, "recall"), 0.99) << js;
  EXPECT_GE(json_value(js, "precision"), 0.99) << js;
  EXPECT_LE(json_value(js, "rmsd_pm"), 20.0) << js;
  EXPECT_LT(json_value(js, "r1"), 0.2) << js;
  // Where the error lies, in the metrics and in the log a user reads first.
  EXPECT_NE(js.find("\"rmsd_axis_pm\": ["), std::string::npos) << js;
  EXPECT_NE(js.find("\"by_species\": {\"Pt\": {\"matched\": "), std::string::npos) << js;
  const std::string log = aet::test::read_text(out + "/pipeline.log");
  EXPECT_NE(log.find(" pm (x "), std::string::npos) << log;
  // The final model is the refined one: closer to the truth than the traced one, and its
  // classification from the refined intensities keeps every atom of this clean particle.
  const auto refined = js.find("\"evaluation_refined\"");
  ASSERT_NE(refined, std::string::npos) << js;
  EXPECT_LT(json_value(js.substr(refined), "rmsd_pm"), json_value(js, "rmsd_pm")) << js;
  EXPECT_GE(json_value(js.substr(refined), "precision"), 0.99) << js;
  EXPECT_EQ(json_value(js, "atoms_removed"), 0.0) << js;
  EXPECT_EQ(json_value(js, "species_changed"), 0.0) << js;
  // `aet trace` on the volume the pipeline wrote reproduces the pipeline's trace: the float32
  // voxel size of the MRC header must not change the fit.
  const std::string again = tmp.file("again.xyz");
  const auto t = run_aet("trace --volume " + out +
                         "/augmented.mrc --elements Pt --seed 11 --quiet --out " + again);
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const aet::AtomModel a = aet::read_xyz(out + "/traced.xyz"), b = aet::read_xyz(again);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a.positions[i] - b.positions[i]).norm());
  EXPECT_LT(worst, 1e-4) << "largest position difference, A";
}

TEST(Pipeline, RunsOnAUserSeriesAndChecksItsInput) {
  TempDir tmp;
  const std::string sim = tmp.file("sim");
  ASSERT_EQ(run_aet("simulate --phantom au-octahedron --tilt-range=-60:60:3 --seed 4 --quiet "
                    "--out " +
                    sim)
                .exit_code,
            0);
  const std::string out = tmp.file("run");
  const auto r =
      run_aet("pipeline --tilts " + sim + "/tilts.mrc --angles " + sim + "/tilts.tlt --truth " +
              sim + "/truth.xyz --elements Au --no-align --quiet --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string js = aet::test::read_text(out + "/metrics.json");
  EXPECT_GE(json_value(js, "recall"), 0.99) << js;
  EXPECT_GE(json_value(js, "precision"), 0.99) << js;
  EXPECT_LE(json_value(js, "rmsd_pm"), 20.0) << js;
  // Only what the user did not give is written, and the geometry that was used.
  EXPECT_FALSE(aet::test::file_exists(out + "/tilts.mrc"));
  EXPECT_TRUE(aet::test::file_exists(out + "/geometry.txt"));

  // Bad input: a clear message, exit 2, no output directory.
  aet::test::write_text(tmp.file("short.tlt"), "-60\n0\n60\n");
  const std::string bad = tmp.file("bad");
  auto b = run_aet("pipeline --tilts " + sim + "/tilts.mrc --angles " + tmp.file("short.tlt") +
                   " --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find(tmp.file("short.tlt")), std::string::npos) << b.output;
  EXPECT_FALSE(aet::test::file_exists(bad));
  b = run_aet("pipeline --tilts " + sim + "/tilts.mrc --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  // A user's series names its species: the demo's Pt is no default for it.
  b = run_aet("pipeline --tilts " + sim + "/tilts.mrc --angles " + sim + "/tilts.tlt --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("--elements is required with --tilts"), std::string::npos) << b.output;
  b = run_aet("pipeline --sample slab --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("--sample must be auto, particle or film"), std::string::npos)
      << b.output;
  b = run_aet("pipeline --elements Xx --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  b = run_aet("pipeline --angle-search 50 --out " + bad);
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("--angle-search"), std::string::npos) << b.output;
  EXPECT_FALSE(aet::test::file_exists(bad));
}

#if AET_WITH_TORCH
// The shipped missing-wedge model on a held-out particle (a catalogue phantom the training
// generator never drew, a seed training and benchmarks/network_accuracy.sh never used): lower
// RMSD than the plain reconstruction, no atom lost at the surface and none invented.
// A refinement that removes most of the traced atoms is reported (stderr, metrics.json) and, under
// --strict, ends the run with exit code 3 and no output. A constant background the forward model
// lacks makes the tracer find hundreds of spurious atoms for the refinement to remove.
TEST(Pipeline, MostAtomsRemovedWarnsAndStrictExitsWithThree) {
  TempDir tmp;
  const auto sim = run_aet(
      "simulate --phantom pt-cuboctahedron-309 --tilt-range=-60:60:10 "
      "--dose 0 --quiet --out " +
      tmp.file("sim"));
  ASSERT_EQ(sim.exit_code, 0) << sim.output;
  aet::Array3 views = aet::read_mrc(tmp.file("sim/tilts.mrc"));
  const float peak = *std::max_element(views.data(), views.data() + views.size());
  for (std::size_t i = 0; i < views.size(); ++i) views.data()[i] += 2 * peak;
  aet::write_mrc(tmp.file("offset.mrc"), views, aet::MrcKind::stack);
  const std::string args = "pipeline --tilts " + tmp.file("offset.mrc") + " --angles " +
                           tmp.file("sim/tilts.tlt") + " --truth " + tmp.file("sim/truth.xyz") +
                           " --elements Pt --no-align --no-network --iterations 20 --quiet --out ";
  const auto r = run_aet(args + tmp.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: the refinement removed"), std::string::npos) << r.output;
  const std::string js = aet::test::read_text(tmp.file("run/metrics.json"));
  EXPECT_NE(js.find("\"warnings\": [\"the refinement removed"), std::string::npos) << js;

  const auto strict = run_aet(args + tmp.file("strict") + " --strict");
  EXPECT_EQ(strict.exit_code, 3) << strict.output;
  EXPECT_NE(strict.output.find("more than half"), std::string::npos) << strict.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("strict"))) << "--strict left output";
}

// A species missing from --elements (the FePt particle given as Pt): the trace's warning reaches
// stderr and metrics.json once, and --strict makes it exit code 3.
TEST(Pipeline, ASpeciesMissingFromElementsIsAWarning) {
  TempDir tmp;
  const auto sim = run_aet("simulate --phantom fept-l10 --tilt-range=-70:70:5 --quiet --out " +
                           tmp.file("sim"));
  ASSERT_EQ(sim.exit_code, 0) << sim.output;
  const std::string args = "pipeline --tilts " + tmp.file("sim/tilts.mrc") + " --angles " +
                           tmp.file("sim/tilts.tlt") +
                           " --no-align --no-network --no-refine --no-analysis --no-report "
                           "--iterations 20 --quiet --out ";
  auto r = run_aet(args + tmp.file("pt") + " --elements Pt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string said = "a species lighter than Pt missing from --elements";
  const auto first = r.output.find(said);
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(said, first + 1), std::string::npos) << r.output;
  EXPECT_NE(aet::test::read_text(tmp.file("pt/metrics.json")).find(said), std::string::npos);
  r = run_aet(args + tmp.file("strict") + " --elements Pt --strict");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  r = run_aet(args + tmp.file("fept") + " --elements Fe,Pt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("missing from --elements"), std::string::npos) << r.output;
}

TEST(Pipeline, ShippedNetworkImprovesAHeldOutParticle) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  const auto r = run_aet(
      "pipeline --phantom au-octahedron --tilt-range=-70:70:3 --seed 4242 "
      "--quiet --out " +
      out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string js = aet::test::read_text(out + "/metrics.json");
  ASSERT_NE(js.find("\"used\": true"), std::string::npos) << "shipped model not used: " << js;
  // The shipped model's chosen input, taken from the pipeline's own 50-iteration solve.
  EXPECT_NE(js.find("\"input\": {\"iterations\": 30, \"step\": 1, \"source\": \"snapshot\"}"),
            std::string::npos)
      << js;
  const auto without = js.find("\"evaluation_without_network\"");
  ASSERT_NE(without, std::string::npos) << js;
  const std::string with_js = js.substr(0, without), plain_js = js.substr(without);
  const double rmsd_with = json_value(with_js, "rmsd_pm"),
               rmsd_plain = json_value(plain_js, "rmsd_pm");
  EXPECT_LE(rmsd_with, 0.85 * rmsd_plain) << js;
  EXPECT_GE(json_value(with_js, "precision"), 0.99) << js;
  EXPECT_GE(json_value(with_js, "recall"), json_value(plain_js, "recall")) << js;
  EXPECT_GE(json_value(with_js, "surface_recall"), json_value(plain_js, "surface_recall")) << js;
}
#endif
