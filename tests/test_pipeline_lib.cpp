// The pipeline library (aet/pipeline), called directly: no binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/xyz.hpp"
#include "aet/networks/network.hpp"
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
            (std::vector<std::string>{"atoms.xyz", "geometry.txt", "metrics.json", "pipeline.log",
                                      "reconstruction.mrc", "result.h5", "tilts.mrc", "tilts.tlt",
                                      "traced.xyz", "truth.xyz"}));
  const Json written = Json::parse(test::read_text(dir.file("metrics.json")));
  EXPECT_EQ(json_text(written), json_text(r.metrics));  // values as written, 10 digits
  EXPECT_EQ(read_xyz(dir.file("atoms.xyz")).size(), r.refined.size());
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
  o.angle_search_deg = 50;
  refused(o, "--angle-search");
  o = small_options();
  o.position_prior = -1;
  refused(o, "--position-prior");
  o = small_options();
  o.network.enabled = true;
  o.network.model = "/nonexistent/model.h5";
  refused(o, nn::torch_available() ? "/nonexistent/model.h5" : "no LibTorch");
}

}  // namespace
}  // namespace aet
