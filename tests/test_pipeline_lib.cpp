// The pipeline library (aet/pipeline), called directly: no binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/xyz.hpp"
#include "aet/networks/network.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/tilt_series.hpp"
#include "aet/pipeline/pipeline.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

// A small, quick run: a 309-atom particle, 13 views, no network.
SimulationInput small_input() {
  SimulationInput in;
  in.phantom = "pt-cuboctahedron-309";
  in.tilt_range = "-60:60:10";
  in.dose = 0;
  return in;
}

PipelineOptions small_options() {
  PipelineOptions o;
  o.iterations = 20;
  o.network.enabled = false;
  o.seed = 3;
  return o;
}

TEST(PipelineLib, SimulatedRunFindsTheAtomsAndWritesEveryStage) {
  std::vector<std::string> lines;
  std::vector<std::pair<std::string, int>> progress;
  PipelineObserver observer;
  observer.log = [&](const std::string& s) { lines.push_back(s); };
  observer.progress = [&](const std::string& label, int percent, double) {
    progress.emplace_back(label, percent);
  };
  const PipelineResult r = run_pipeline(small_input(), small_options(), observer, "test");
  ASSERT_TRUE(r.truth);
  EXPECT_EQ(r.truth->size(), 309u);
  EXPECT_TRUE(r.simulated);
  EXPECT_FALSE(r.aligned);  // an exact simulation is not aligned by default
  EXPECT_FALSE(r.network_used);
  EXPECT_EQ(r.views.nz(), 13);
  EXPECT_EQ(r.recon.r1.size(), 20u);
  ASSERT_TRUE(r.recipe);
  EXPECT_EQ(r.recipe->iterations, 20);
  EXPECT_GT(r.refined.size(), 0u);
  EXPECT_EQ(&r.atoms(), &r.refined);

  const Json& m = r.metrics;
  EXPECT_EQ(m["command_line"], "test");
  EXPECT_EQ(m["seed"], 3);
  EXPECT_EQ(m["views"], 13);
  EXPECT_EQ(m["algorithm"], "resire");
  EXPECT_TRUE(m["alignment"].is_null());
  EXPECT_EQ(m["network"]["used"], false);
  EXPECT_EQ(m["network"]["skipped_because"], "--no-network");
  EXPECT_EQ(m["traced_atoms"], r.traced.size());
  EXPECT_GE(m["evaluation"]["recall"].get<double>(), 0.99);
  EXPECT_GE(m["evaluation"]["precision"].get<double>(), 0.99);
  EXPECT_LE(m["evaluation_refined"]["rmsd_pm"].get<double>(), 10.0);
  EXPECT_GE(m["evaluation_refined"]["recall"].get<double>(), 0.99);
  EXPECT_FALSE(m.contains("evaluation_without_network"));  // only when the network ran
  for (const char* stage : {"simulate", "reconstruct", "trace", "refine", "total"})
    EXPECT_TRUE(m["seconds"].contains(stage)) << stage;

  // The log reaches the caller's sink line by line and the result's text whole.
  ASSERT_FALSE(lines.empty());
  std::string joined;
  for (const auto& l : lines) joined += l + "\n";
  EXPECT_EQ(joined, r.log);
  EXPECT_NE(r.log.find("against the truth (refined atoms): recall 100.00 %"), std::string::npos)
      << r.log;
  // Progress reaches the observer instead of stderr, stage by stage, from 0 to 100 %.
  const auto reported = [&](const std::string& label, int percent) {
    return std::find(progress.begin(), progress.end(), std::make_pair(label, percent)) !=
           progress.end();
  };
  EXPECT_TRUE(reported("reconstruct resire", 0));
  EXPECT_TRUE(reported("reconstruct resire", 100));
  for (const auto& [label, percent] : progress) {
    EXPECT_GE(percent, 0) << label;
    EXPECT_LE(percent, 100) << label;
  }

  // The files hold the same.
  test::TempDir dir;
  Provenance prov;
  prov.command_line = "test";
  prov.config = "iterations = 20\n";
  prov.seed = 3;
  prov.has_seed = true;
  write_pipeline_files(r, dir.path(), prov);
  EXPECT_EQ(test::list_dir(dir.path()),
            (std::vector<std::string>{"analysis.json", "atoms.xyz", "geometry.txt", "metrics.json",
                                      "pipeline.log",
                                      "reconstruction.mrc", "result.h5", "tilts.mrc", "tilts.tlt",
                                      "traced.xyz", "truth.xyz"}));
  const Json written = Json::parse(test::read_text(dir.file("metrics.json")));
  EXPECT_EQ(json_text(written), json_text(r.metrics));  // values as written, 10 digits
  EXPECT_EQ(read_xyz(dir.file("atoms.xyz")).size(), r.refined.size());
  // The analysis stage ran on the final model: its summary, its file and the per-atom columns.
  EXPECT_EQ(m["analysis"]["lattice"], "fcc");
  EXPECT_GE(m["analysis"]["on_lattice_fraction"].get<double>(), 0.95);
  EXPECT_TRUE(m["seconds"].contains("analysis"));
  EXPECT_NE(read_xyz(dir.file("atoms.xyz")).find_property("strain_xx"), nullptr);
  EXPECT_EQ(Json::parse(test::read_text(dir.file("analysis.json")))["lattice"]["type"], "fcc");
  EXPECT_EQ(read_xyz(dir.file("traced.xyz")).size(), r.traced.size());
  const std::string log = test::read_text(dir.file("pipeline.log"));
  EXPECT_EQ(log.rfind("test\n\n", 0), 0u);
  EXPECT_NE(log.find("# effective configuration\niterations = 20"), std::string::npos);
}

// Each test case runs in a process of its own (ctest): this one makes its own cheap pair of runs.
TEST(PipelineLib, GivenSeriesRunsTheSameChainAsTheSimulation) {
  PipelineOptions o = small_options();
  o.iterations = 5;
  o.refine = false;
  const PipelineResult sim = run_pipeline(small_input(), o);
  SeriesInput in;
  in.views = sim.views;
  in.nominal = sim.nominal;
  in.geometry = sim.geometry;
  in.truth = *sim.truth;
  in.source = "views in memory";
  o.align = AlignMode::off;  // the geometry is exact
  const PipelineResult r = run_pipeline(std::move(in), o);
  EXPECT_FALSE(r.simulated);
  EXPECT_EQ(r.metrics["source"], "views in memory");
  EXPECT_TRUE(r.refined.positions.empty());
  EXPECT_EQ(&r.atoms(), &r.traced);
  ASSERT_GT(r.atoms().size(), 300u);
  ASSERT_EQ(r.atoms().size(), sim.atoms().size());
  for (std::size_t i = 0; i < r.atoms().size(); ++i) {
    EXPECT_EQ(r.atoms().positions[i], sim.atoms().positions[i]) << i;
    EXPECT_EQ(r.atoms().species[i], sim.atoms().species[i]) << i;
  }
  EXPECT_EQ(r.metrics["evaluation"].dump(), sim.metrics["evaluation"].dump());
}

// A series the alignment's half-resolution check finds aligned has its per-view angles refined
// against the atoms of the pipeline's own reconstruction (AlignOptions::defer_angles): with
// nothing to correct the geometry is kept (this small particle's refined angles move its images
// by about 0.1 pixel, so the reconstruction with them is made and fits worse); two views logged
// 2 degrees off are corrected, and the reconstruction with the corrected angles is kept.
TEST(PipelineLib, AnglesOfAnAlignedSeriesAreRefinedOnThePipelinesReconstruction) {
  PipelineOptions o = small_options();
  o.analysis = false;
  SimulationInput in = small_input();
  in.tilt_range = "-66:66:6";
  const PipelineResult sim = run_pipeline(in, o);
  auto given = [&](const std::vector<Euler>& logged) {
    SeriesInput in;
    in.views = sim.views;
    in.nominal = logged;
    for (const Euler& e : logged) in.geometry.push_back(ViewGeometry::from_euler(e));
    in.truth = *sim.truth;
    return in;
  };
  o.align = AlignMode::on;
  const PipelineResult exact = run_pipeline(given(sim.nominal), o);
  const Json& al = exact.metrics["alignment"];
  ASSERT_TRUE(al["already_aligned"].get<bool>()) << al.dump();
  EXPECT_TRUE(al["angles_deferred"].get<bool>());
  EXPECT_GE(al["model_atoms"].get<int>(), 300);
  EXPECT_LT(al["angle_change_px"].get<double>(), 0.2);
  EXPECT_FALSE(al["angles_kept"].get<bool>());
  EXPECT_EQ(exact.recon.r1.size(), 20u);  // the first reconstruction
  const TiltGeometry logged_exact = given(sim.nominal).geometry;
  for (std::size_t k = 0; k < exact.geometry.size(); ++k) {
    EXPECT_EQ(exact.geometry[k].R, logged_exact[k].R) << k;
    EXPECT_EQ(exact.geometry[k].shift, logged_exact[k].shift) << k;
  }

  std::vector<Euler> logged = sim.nominal;
  logged[5].theta += 2;
  logged[15].theta -= 2;
  const PipelineResult off = run_pipeline(given(logged), o);
  const Json& al_off = off.metrics["alignment"];
  ASSERT_TRUE(al_off["already_aligned"].get<bool>()) << al_off.dump();
  EXPECT_GE(al_off["angle_change_px"].get<double>(), ViewAngles::kChangePx);
  EXPECT_TRUE(al_off["angles_kept"].get<bool>()) << al_off.dump();
  // Each corrected view within a tenth of a degree of its true rotation.
  for (const std::size_t k : {5u, 15u})
    EXPECT_LT(rotation_angle_deg(off.geometry[k].R * sim.geometry[k].R.transpose()), 0.1) << k;
  // Measured 0.049 and 0.023 degrees, R1 0.16211 against 0.16100 for the exact series.
  EXPECT_LT(off.recon.r1.back(), 1.01 * exact.recon.r1.back());
}

TEST(PipelineLib, BadOptionsAreRefusedBeforeAnyWork) {
  const auto refused = [](PipelineOptions o, const std::string& fragment) {
    bool called = false;
    try {
      PipelineObserver observer;
      observer.log = [&](const std::string&) { called = true; };
      observer.progress = [&](const std::string&, int, double) { called = true; };
      run_pipeline(small_input(), o, observer);
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_FALSE(called) << fragment;  // nothing ran, nothing was logged
  };
  PipelineOptions o = small_options();
  o.iterations = 0;
  refused(o, "--iterations");
  o = small_options();
  o.min_distance = 0;
  refused(o, "--min-distance");
  o = small_options();
  o.alignment.angle_search_deg = 50;
  refused(o, "--angle-search");
  o = small_options();
  o.position_prior = -1;
  refused(o, "--position-prior");
  o = small_options();
  o.network.enabled = true;
  o.network.model = "/nonexistent/model.h5";
  refused(o, nn::torch_available() ? "/nonexistent/model.h5" : "no LibTorch");
}

TEST(PipelineLib, RefinementCheckKeepsTheBetterModelAndSaysWhy) {
  // The real-film failure: all but one atom removed, the width blown up.
  RefinementCheck c = check_refinement(226, 1, 0.30, 0.20, 2.66);
  EXPECT_TRUE(c.keep_traced);
  EXPECT_NE(c.warning.find("width 2.660 A is outside the physical range"), std::string::npos)
      << c.warning;
  c = check_refinement(100, 100, 0.10, 0.12, 0.4);  // fits the views worse
  EXPECT_TRUE(c.keep_traced);
  EXPECT_NE(c.warning.find("R1 0.1000 -> 0.1200"), std::string::npos) << c.warning;
  c = check_refinement(100, 100, 0.10, std::nan(""), 0.4);
  EXPECT_TRUE(c.keep_traced);
  c = check_refinement(100, 40, 0.10, 0.05, 0.4);  // most atoms removed: kept, never silently
  EXPECT_FALSE(c.keep_traced);
  EXPECT_NE(c.warning.find("removed 60 of 100 atoms, more than half"), std::string::npos)
      << c.warning;
  c = check_refinement(100, 90, 0.10, 0.05, 0.4);
  EXPECT_FALSE(c.keep_traced);
  EXPECT_NE(c.warning.find("removed 10 of 100 atoms (10.0 %)"), std::string::npos) << c.warning;
  // The removed atoms carry most of the refined intensity: the views support them.
  c = check_refinement(765, 9, 0.33, 0.27, 0.71, 0.94);
  EXPECT_TRUE(c.keep_traced);
  EXPECT_NE(c.warning.find("removed 756 of 765 atoms carrying 94 % of the refined intensity"),
            std::string::npos)
      << c.warning;
  c = check_refinement(100, 97, 0.10, 0.1005, 0.4);  // 3 % removed, R1 within 1 %: passes
  EXPECT_FALSE(c.keep_traced);
  EXPECT_EQ(c.warning, "");
}

// A constant background that the forward model lacks makes the tracer find hundreds of spurious
// atoms, which the refinement removes: a result that is kept, but never silently, and that
// --strict refuses.
TEST(PipelineLib, MostAtomsRemovedIsAWarningAndStrictRefusesIt) {
  const auto& named = phantoms::find_phantom("pt-cuboctahedron-309");
  const AtomModel truth = phantoms::build_particle(named.spec);
  phantoms::SimulationSpec sim;
  for (double t = -60; t <= 60; t += 10) sim.nominal.push_back(Euler{0.0, t, 0.0});
  sim.dose = 0;
  phantoms::TiltSeries series = phantoms::simulate_tilt_series(truth, sim, Device{});
  float peak = 0;
  for (std::size_t i = 0; i < series.views.size(); ++i)
    peak = std::max(peak, series.views.data()[i]);
  for (std::size_t i = 0; i < series.views.size(); ++i) series.views.data()[i] += 2 * peak;
  const auto input = [&] {
    SeriesInput in;
    in.views = series.views;
    in.nominal = series.nominal;
    in.geometry = series.truth;
    in.truth = truth;
    return in;
  };
  PipelineOptions o = small_options();
  o.align = AlignMode::off;
  std::vector<std::string> warned;
  PipelineObserver observer;
  observer.warning = [&](const std::string& w) { warned.push_back(w); };
  const PipelineResult r = run_pipeline(input(), o, observer);
  ASSERT_EQ(r.warnings.size(), 1u) << r.log;
  EXPECT_NE(r.warnings[0].find("more than half"), std::string::npos) << r.warnings[0];
  EXPECT_EQ(warned, r.warnings);
  EXPECT_EQ(r.metrics["warnings"], Json(r.warnings));
  EXPECT_NE(r.log.find("warning: the refinement removed"), std::string::npos);
  EXPECT_LT(2 * r.atoms().size(), r.traced.size());  // the refined model, with the warning
  EXPECT_GE(r.metrics["evaluation_refined"]["recall"].get<double>(), 0.95);
  // The refined model carries its trust per atom (docs/refinement.md); the atoms kept are real.
  ASSERT_NE(r.atoms().find_property("sigma_z"), nullptr);
  EXPECT_EQ(r.metrics["trust"]["weak_atoms"].get<int>(), 0) << r.metrics["trust"].dump();
  EXPECT_GT(r.metrics["trust"]["median_sigma_angstrom"][2].get<double>(), 0.0);

  o.strict = true;
  try {
    run_pipeline(input(), o);
    ADD_FAILURE() << "--strict accepted a refinement that removed most atoms";
  } catch (const QualityError& e) {
    EXPECT_NE(std::string(e.what()).find("more than half"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(--strict)"), std::string::npos) << e.what();
  }
}

// A network that does not run although it was asked for, and an empty model, are warnings too.
TEST(PipelineLib, SkippedNetworkAndEmptyModelAreWarnings) {
  PipelineOptions o = small_options();
  o.iterations = 5;
  o.refine = false;
  const PipelineResult sim = run_pipeline(small_input(), o);
  EXPECT_TRUE(sim.warnings.empty()) << sim.log;  // --no-network is the caller's choice

  SeriesInput in;
  in.views = sim.views;
  in.views.voxel_size = VoxelSize{2.5, 2.5, 2.5};  // far from any model's training voxel size
  in.nominal = sim.nominal;
  in.geometry = sim.geometry;
  o.align = AlignMode::off;
  o.network.enabled = true;  // the shipped model (or, without LibTorch, none)
  const PipelineResult r = run_pipeline(std::move(in), o);
  EXPECT_FALSE(r.network_used);
  ASSERT_FALSE(r.warnings.empty()) << r.log;
  EXPECT_NE(r.warnings[0].find("the missing-wedge network did not run"), std::string::npos)
      << r.warnings[0];

  const auto blank = [&] {
    SeriesInput b;
    b.views = Array3(sim.views.nx(), sim.views.ny(), sim.views.nz(), 0.0f);
    b.views.voxel_size = sim.views.voxel_size;
    b.nominal = sim.nominal;
    b.geometry = sim.geometry;
    return b;
  };
  o.network.enabled = false;
  const PipelineResult e = run_pipeline(blank(), o);
  EXPECT_EQ(e.traced.size(), 0u);
  ASSERT_EQ(e.warnings.size(), 1u) << e.log;
  EXPECT_NE(e.warnings[0].find("no atoms were traced"), std::string::npos) << e.warnings[0];
  o.strict = true;
  EXPECT_THROW(run_pipeline(blank(), o), QualityError);
}

// The poor-fit check: views in inverted contrast (bright-field-like, which a non-negative volume
// cannot explain) leave R1 at 1 and are flagged; views that are mostly shot noise (dose 300, about
// a count per pixel) leave R1 above 0.8 with a right model and are not, since their own noise
// would leave nearly as much (noise_r1).
TEST(PipelineLib, PoorFitIsFlaggedButShotNoiseIsNot) {
  PipelineOptions o = small_options();
  o.refine = false;
  o.analysis = false;
  const PipelineResult sim = run_pipeline(small_input(), o);
  SeriesInput in;
  in.views = sim.views;
  for (float& v : in.views.vector()) v = -v;
  in.nominal = sim.nominal;
  in.geometry = sim.geometry;
  o.align = AlignMode::off;
  const PipelineResult inverted = run_pipeline(std::move(in), o);
  const auto poor = [](const PipelineResult& r) {
    return std::count_if(r.warnings.begin(), r.warnings.end(), [](const std::string& w) {
      return w.find("fits the views poorly") != std::string::npos;
    });
  };
  EXPECT_EQ(poor(inverted), 1) << inverted.log;
  EXPECT_GT(inverted.metrics["r1"].get<double>(), 0.8);
  EXPECT_LT(inverted.metrics["noise_r1"].get<double>(), 0.3);

  SimulationInput low = small_input();
  low.tilt_range = "-60:60:5";
  low.dose = 300;  // measured (aet pipeline, same settings): R1 1.07, noise_r1 0.89, recall 0.86
  o.align = AlignMode::automatic;
  const PipelineResult noisy = run_pipeline(low, o);
  EXPECT_GT(noisy.metrics["r1"].get<double>(), 0.8);  // the bare 0.8 bar would have flagged it
  EXPECT_EQ(poor(noisy), 0) << noisy.log;
  EXPECT_GT(noisy.metrics["evaluation"]["recall"].get<double>(), 0.8);
}

}  // namespace
}  // namespace aet
