// The benchmark's sweep file: what a valid file means (cases, names, angles, methods) and how bad
// input is refused (a message naming the file, the section and the key), and the results row
// taken from a method's metrics.
#include <gtest/gtest.h>

#include <cmath>

#include "aet/benchmark/benchmark.hpp"
#include "aet/benchmark/sweep.hpp"
#include "aet/core/error.hpp"
#include "benchmark/benchmark_detail.hpp"
#include "support/test_support.hpp"

namespace {

const char* kValid = R"(# a sweep
[sweep]
tilt_ranges = -70:70, 50, -72:+66   # symmetric, shorthand, asymmetric
views = 11, 21
doses = 5e4, 0
seeds = 4
shift_max = 2
align_rounds = 3

[particle au]
phantom = au-sphere
size = 8
element = Ag

[particle mine]
model = models/mine.xyz
elements = Fe, Pt
min_distance = 2.2

[method resire]
algorithm = resire
iterations = 30
network = no

[method defaults]

[method theirs]
command = ./recon.sh --in {tilts} --angles {angles} --out {out}
)";

std::string with(const std::string& text, const std::string& from, const std::string& to) {
  std::string s = text;
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// parse_sweep(text) throws an InputError naming the file and containing each fragment.
void expect_refused(const std::string& text, const std::vector<std::string>& fragments) {
  try {
    aet::parse_sweep(text, "/data/s.ini");
    ADD_FAILURE() << "accepted:\n" << text;
  } catch (const aet::InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("/data/s.ini: ", 0), 0u) << what;
    for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << what;
  }
}

}  // namespace

TEST(Sweep, ReadsEverySectionAndKey) {
  const aet::Sweep sw = aet::parse_sweep(kValid, "/data/s.ini");
  ASSERT_EQ(sw.tilt_ranges.size(), 3u);
  EXPECT_EQ(sw.tilt_ranges[1].start, -50);
  EXPECT_EQ(sw.tilt_ranges[1].stop, 50);
  EXPECT_EQ(sw.tilt_ranges[2].start, -72);
  EXPECT_EQ(sw.tilt_ranges[2].stop, 66);
  EXPECT_EQ(sw.views, (std::vector<int>{11, 21}));
  EXPECT_TRUE(sw.steps.empty());
  EXPECT_EQ(sw.doses, (std::vector<double>{5e4, 0}));
  EXPECT_EQ(sw.seeds, (std::vector<std::uint64_t>{4}));
  EXPECT_EQ(sw.shift_max_px, 2);
  EXPECT_EQ(sw.align_rounds, 3);
  ASSERT_EQ(sw.particles.size(), 2u);
  EXPECT_EQ(sw.particles[0].phantom, "au-sphere");
  EXPECT_EQ(sw.particles[0].size.value_or(0), 8);
  EXPECT_EQ(sw.particles[0].element, "Ag");
  // A model path is relative to the sweep file.
  EXPECT_EQ(sw.particles[1].model, "/data/models/mine.xyz");
  EXPECT_EQ(sw.particles[1].elements, (std::vector<std::string>{"Fe", "Pt"}));
  EXPECT_EQ(sw.particles[1].min_distance, 2.2);
  ASSERT_EQ(sw.methods.size(), 3u);
  EXPECT_EQ(sw.methods[0].iterations, 30);
  EXPECT_FALSE(sw.methods[0].network);
  EXPECT_TRUE(sw.methods[0].refine);
  // An empty section is a method with aet pipeline's defaults.
  EXPECT_EQ(sw.methods[1].name, "defaults");
  EXPECT_EQ(sw.methods[1].algorithm, aet::Algorithm::resire);
  EXPECT_EQ(sw.methods[1].iterations, 50);
  EXPECT_TRUE(sw.methods[1].network);
  EXPECT_TRUE(sw.methods[2].external());
}

TEST(Sweep, CasesAreEveryCombinationWithTheirAngles) {
  const aet::Sweep sw = aet::parse_sweep(kValid, "/data/s.ini");
  const auto cases = aet::sweep_cases(sw);
  // 2 particles x 3 ranges x 2 view counts x 2 doses x 1 seed.
  ASSERT_EQ(cases.size(), 24u);
  EXPECT_EQ(cases[0].name, "au_-70_+70_11v_d50000_s4");
  EXPECT_EQ(cases[1].name, "au_-70_+70_11v_d0_s4");
  EXPECT_EQ(cases[2].name, "au_-70_+70_21v_d50000_s4");
  EXPECT_EQ(cases.back().name, "mine_-72_+66_21v_d0_s4");
  // Views spread evenly over the range, both ends included.
  const auto& asym = cases.back().tilts;
  ASSERT_EQ(asym.size(), 21u);
  EXPECT_DOUBLE_EQ(asym.front(), -72);
  EXPECT_DOUBLE_EQ(asym.back(), 66);
  EXPECT_NEAR(asym[1] - asym[0], 138.0 / 20, 1e-12);

  // With steps, the views from START in STEP up to STOP.
  const auto stepped = aet::sweep_cases(
      aet::parse_sweep(with(kValid, "views = 11, 21", "steps = 3"), "/data/s.ini"));
  ASSERT_EQ(stepped.size(), 12u);
  EXPECT_EQ(stepped[0].tilts.size(), 47u);  // -70 ... 68
  EXPECT_EQ(stepped[0].tilts.back(), 68);
  EXPECT_EQ(stepped[0].name, "au_-70_+70_47v_d50000_s4");
  EXPECT_EQ(stepped[4].tilts.size(), 47u);  // -72 ... 66
  EXPECT_EQ(stepped[4].tilts.back(), 66);
}

TEST(Sweep, UnknownSectionsAndKeysAreRefusedByName) {
  expect_refused(with(kValid, "seeds = 4", "seed = 4"), {"[sweep]", "unknown key 'seed'"});
  expect_refused(with(kValid, "min_distance = 2.2", "min_dist = 2.2"),
                 {"[particle mine]", "unknown key 'min_dist'"});
  expect_refused(with(kValid, "network = no", "netwrk = no"),
                 {"[method resire]", "unknown key 'netwrk'"});
  expect_refused(with(kValid, "[method defaults]", "[methods defaults]"),
                 {"[methods defaults]", "unknown section"});
  expect_refused(with(kValid, "iterations = 30", "iterations = 30\niterations = 40"),
                 {"[method resire]", "'iterations' appears twice"});
  expect_refused(with(kValid, "[method defaults]", "[method resire]"),
                 {"[method resire]", "appears twice"});
  expect_refused(std::string("tilt_ranges = 60\n") + kValid, {"outside a section"});
  expect_refused(with(kValid, "[particle au]", "[particle a/u]"), {"only letters"});
}

TEST(Sweep, EmptyAndReversedTiltRangesAreRefused) {
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "50:-50"), {"'50:-50' is an empty range"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "10:10"), {"'10:10' is an empty range"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", ""), {"tilt_ranges", "empty"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "-70:70,"), {"an empty item"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "-70:70:3"), {"START:STOP"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "-95:60"), {"beyond +-90"});
  expect_refused(with(kValid, "-70:70, 50, -72:+66", "-70:seventy"), {"not a number"});
  expect_refused(with(kValid, "views = 11, 21", "views = 1"), {"not a number of views"});
  expect_refused(with(kValid, "views = 11, 21", "views = 11\nsteps = 3"), {"either steps"});
  expect_refused(with(kValid, "doses = 5e4, 0", "doses = -1"), {"not a dose"});
}

TEST(Sweep, BadCommandTemplatesAreRefused) {
  const std::string tpl = "./recon.sh --in {tilts} --angles {angles} --out {out}";
  expect_refused(with(kValid, tpl, "./recon.sh {tilts} {angles}"), {"[method theirs]", "no {out}"});
  expect_refused(with(kValid, tpl, "./recon.sh {angles} {out}"), {"no {tilts}"});
  expect_refused(with(kValid, tpl, "./recon.sh {tilts} {volume} {out}"),
                 {"unknown placeholder {volume}"});
  expect_refused(with(kValid, tpl, "./recon.sh {tilts {out}"), {"[method theirs]", "command"});
  expect_refused(with(kValid, tpl, "./recon.sh {tilts} {out} }"), {"without its '{'"});
  // aet's options mean nothing to an external program: refused rather than ignored.
  expect_refused(with(kValid, tpl, tpl + "\nrefine = no"), {"refine applies to aet's own"});
}

TEST(Sweep, ParticlesAndMethodsAreChecked) {
  expect_refused(with(kValid, "au-sphere", "au-spehre"), {"[particle au]", "au-spehre"});
  expect_refused(with(kValid, "element = Ag", "element = Xx"), {"unknown element 'Xx'"});
  expect_refused(with(kValid, "phantom = au-sphere", "phantom = ag-wulff"),
                 {"size does not apply to ag-wulff"});
  expect_refused(with(kValid, "model = models/mine.xyz", "model = m.xyz\nphantom = demo"),
                 {"either phantom"});
  expect_refused(with(kValid, "algorithm = resire", "algorithm = art"), {"art"});
  expect_refused(with(kValid, "iterations = 30", "iterations = 0"), {"iterations must be"});
  expect_refused(with(kValid, "network = no", "network = maybe"), {"expected yes or no"});
  expect_refused("[sweep]\ntilt_ranges = 60\nsteps = 3\n[particle p]\nphantom = demo\n",
                 {"no [method NAME]"});
  expect_refused("[sweep]\ntilt_ranges = 60\nsteps = 3\n[method m]\n", {"no [particle NAME]"});
  // Two cases in one folder: refused when the cases are listed, before anything runs.
  aet::test::expect_input_error(
      "/data/s.ini",
      [] {
        aet::sweep_cases(
            aet::parse_sweep(with(kValid, "seeds = 4", "seeds = 4, 4"), "/data/s.ini"));
      },
      "share the folder");
}

TEST(Sweep, CommandPlaceholdersBecomeQuotedPaths) {
  EXPECT_EQ(
      aet::expand_command("run {tilts} -a {angles} -o {out}", "/a b/t.mrc", "it's.tlt", "v.mrc"),
      "run '/a b/t.mrc' -a 'it'\\''s.tlt' -o 'v.mrc'");
}

TEST(Sweep, ReadingAMissingFileNamesIt) {
  aet::test::TempDir tmp;
  aet::test::expect_input_error(tmp.file("none.ini"),
                                [&] { aet::read_sweep(tmp.file("none.ini")); });
}

TEST(BenchmarkRow, TheFinalModelIsTheRefinedOneWithTheTracedRmsdBeside) {
  aet::SweepMethod m;
  m.name = "full";
  const aet::Json metrics = aet::Json::parse(R"({
    "r1": 0.12, "traced_atoms": 300,
    "network": {"used": true},
    "evaluation": {"recall": 0.99, "precision": 0.98, "rmsd_pm": 4.0, "traced_atoms": 300,
                   "rmsd_axis_pm": [1, 2, 3]},
    "evaluation_refined": {"recall": 1.0, "precision": 1.0, "rmsd_pm": 2.0, "traced_atoms": 297,
                           "rmsd_axis_pm": [0.5, 1.0, 1.5], "surface_rmsd_pm": 2.5,
                           "interior_rmsd_pm": 1.5, "species_accuracy": 1.0},
    "seconds": {"reconstruct": 9.0, "refine": 2.0},
    "warnings": ["a", "b"]})");
  const aet::Json row = aet::detail::method_row(m, metrics);
  EXPECT_EQ(row["recall"].get<double>(), 1.0);
  EXPECT_EQ(row["rmsd_pm"].get<double>(), 2.0);
  EXPECT_EQ(row["rmsd_traced_pm"].get<double>(), 4.0);
  EXPECT_EQ(row["rmsd_z_pm"].get<double>(), 1.5);
  EXPECT_EQ(row["rmsd_surface_pm"].get<double>(), 2.5);
  EXPECT_EQ(row["final_atoms"].get<int>(), 297);
  EXPECT_EQ(row["traced_atoms"].get<int>(), 300);
  EXPECT_TRUE(row["network_used"].get<bool>());
  EXPECT_EQ(row["seconds_reconstruct"].get<double>(), 9.0);
  EXPECT_TRUE(row["seconds_network"].is_null());
  EXPECT_EQ(row["warnings"].get<std::string>(), "a; b");
  // Every key of the row is a results column.
  const auto& cols = aet::result_columns();
  for (const auto& [key, value] : row.items())
    EXPECT_NE(std::find(cols.begin(), cols.end(), key), cols.end()) << key;
}
