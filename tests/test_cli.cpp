// The `aet` command line as a user meets it: help, exit codes, outputs other tools accept, and
// bad input that fails cleanly without partial output.
#include <gtest/gtest.h>

#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"

using namespace aet;
using aet::test::run_aet;
using aet::test::run_command;
using aet::test::TempDir;

namespace {
// A small, quick series: 309-atom cuboctahedron, 7 views.
const std::string kQuickSim =
    "simulate --phantom pt-cuboctahedron-309 --tilt-range=-60:60:20 "
    "--size 64 --quiet ";

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}
}  // namespace

TEST(Cli, HelpAndUnknownSubcommand) {
  auto r = run_aet("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "simulate"));
  EXPECT_TRUE(contains(r.output, "info"));
  for (const char* sub : {"simulate", "info"}) {
    r = run_aet(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, std::string("Usage: aet ") + sub)) << r.output;
    EXPECT_TRUE(contains(r.output, "--config")) << r.output;
  }
  r = run_aet("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown subcommand"));
  r = run_aet("simulate --no-such-option");
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Cli, SimulateListNamesTheDemo) {
  const auto r = run_aet("simulate --list");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "demo"));
  EXPECT_TRUE(contains(r.output, "pt-cuboctahedron-309"));
}

TEST(Cli, SimulateWritesFilesThatOtherToolsAccept) {
  TempDir tmp;
  const std::string out = tmp.file("sim");
  const auto r = run_aet(kQuickSim + "--seed 5 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"tilts.mrc", "tilts.tlt", "truth.xyz", "simulate.json", "simulate.log"})
    EXPECT_TRUE(aet::test::file_exists(out + "/" + f)) << f;
  // Nothing of the staging folder is left.
  for (const auto& name : aet::test::list_dir(out)) EXPECT_NE(name[0], '.') << name;

  MrcHeader h;
  const Array3 views = read_mrc(out + "/tilts.mrc", &h);
  EXPECT_EQ(views.nz(), 7);
  EXPECT_EQ(views.nx(), 64);
  EXPECT_EQ(h.ispg, 0);
  EXPECT_NEAR(h.voxel_size().x, 0.35, 1e-6);
  EXPECT_EQ(read_angles(out + "/tilts.tlt", views.nz()).views.size(), 7u);
  EXPECT_EQ(read_xyz(out + "/truth.xyz").size(), 309u);

  // The Python ecosystem reads both: mrcfile validates the stack, ASE parses the atoms.
  const std::string py = AET_TEST_PYTHON;
  auto v = run_command(py + " -c \"import mrcfile,sys; sys.exit(0 if mrcfile.validate('" + out +
                       "/tilts.mrc') else 1)\"");
  EXPECT_EQ(v.exit_code, 0) << v.output;
  v = run_command(py + " -c \"import ase.io; a=ase.io.read('" + out +
                  "/truth.xyz'); print(len(a), a.get_chemical_symbols()[0])\"");
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_TRUE(contains(v.output, "309 Pt")) << v.output;

  // Same seed, same data; another seed, other noise.
  const std::string out2 = tmp.file("sim2"), out3 = tmp.file("sim3");
  ASSERT_EQ(run_aet(kQuickSim + "--seed 5 --out " + out2).exit_code, 0);
  ASSERT_EQ(run_aet(kQuickSim + "--seed 6 --out " + out3).exit_code, 0);
  EXPECT_EQ(read_mrc(out2 + "/tilts.mrc").vector(), views.vector());
  EXPECT_NE(read_mrc(out3 + "/tilts.mrc").vector(), views.vector());

  // aet info describes each output.
  const auto info =
      run_aet("info " + out + "/tilts.mrc " + out + "/tilts.tlt " + out + "/truth.xyz");
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "64 x 64 x 7")) << info.output;
  EXPECT_TRUE(contains(info.output, "0.3500")) << info.output;
  EXPECT_TRUE(contains(info.output, "7 views")) << info.output;
  EXPECT_TRUE(contains(info.output, "Pt   309")) << info.output;
}

TEST(Cli, SimulateTargetAndMisalignedGeometry) {
  TempDir tmp;
  const std::string out = tmp.file("sim");
  const auto r = run_aet(kQuickSim + "--target --shift-max 3 --axis-rotation 2 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  MrcHeader h;
  const Array3 target = read_mrc(out + "/target.mrc", &h);
  EXPECT_EQ(h.ispg, 1);
  EXPECT_EQ(target.nx(), 64);
  EXPECT_EQ(target.nz(), 64);
  const std::string geom = aet::test::read_text(out + "/true_geometry.txt");
  EXPECT_TRUE(contains(geom, "shift_x")) << geom;
  // The true geometry is a 5-column geometry file that every command reads.
  const AngleFile truth = read_angles(out + "/true_geometry.txt", 7);
  EXPECT_EQ(truth.format, AngleFormat::geometry);
  double largest = 0;
  for (const auto& s : truth.shifts) largest = std::max(largest, s.cwiseAbs().maxCoeff());
  EXPECT_GT(largest, 0.0);
  EXPECT_LE(largest, 3 * 0.35 + 1e-6);
}

TEST(Cli, ConfigFileAndCommandLinePrecedence) {
  TempDir tmp;
  aet::test::write_text(tmp.file("sim.ini"),
                        "[common]\nseed = 3\n[simulate]\npixel = 0.4\ndose = 0\n[other]\nx = 1\n");
  const std::string out = tmp.file("sim");
  const auto r =
      run_aet(kQuickSim + "--config " + tmp.file("sim.ini") + " --pixel 0.3 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string js = aet::test::read_text(out + "/simulate.json");
  EXPECT_TRUE(contains(js, "\"pixel_angstrom\": 0.3")) << js;  // command line wins
  EXPECT_TRUE(contains(js, "\"seed\": 3")) << js;              // from [common]
  EXPECT_TRUE(contains(js, "\"dose_e_per_A2_per_view\": 0")) << js;

  aet::test::write_text(tmp.file("bad.ini"), "[simulate]\nno-such-key = 1\n");
  const auto bad =
      run_aet(kQuickSim + "--config " + tmp.file("bad.ini") + " --out " + tmp.file("never"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.output, tmp.file("bad.ini"))) << bad.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("never")));
}

TEST(Cli, BadInputFailsWithExitTwoAndNoOutput) {
  TempDir tmp;
  aet::test::write_text(tmp.file("nan.tlt"), "-60\nnan\n60\n");
  aet::test::write_text(tmp.file("bad.xyz"), "3\ncomment\nPt 0 0 0\n");
  aet::test::write_text(tmp.file("short.mrc"), std::string(300, '\0'));
  struct Case {
    std::string args, must_name;
  };
  const std::vector<Case> cases = {
      {kQuickSim + "--tilt-range=-70:70:0", "tilt"},
      {kQuickSim + "--tilt-range=70:-70:3", "tilt"},
      {kQuickSim + "--pixel -1", "--pixel"},
      {kQuickSim + "--dose nan", "--dose"},
      {"simulate --phantom nope --quiet", "nope"},
      {kQuickSim + "--device gpu", "--device"},
      {kQuickSim + "--angles " + tmp.file("missing.tlt"), tmp.file("missing.tlt")},
      {kQuickSim + "--angles " + tmp.file("nan.tlt"), tmp.file("nan.tlt")},
      {kQuickSim + "--model " + tmp.file("bad.xyz"), tmp.file("bad.xyz")},
      {kQuickSim + "--model " + tmp.file("missing.xyz"), tmp.file("missing.xyz")},
      {kQuickSim + "--element Xx", "Xx"},
  };
  for (const auto& c : cases) {
    const std::string out = tmp.file("out");
    const auto r = run_aet(c.args + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.must_name)) << c.args << "\n" << r.output;
    EXPECT_FALSE(aet::test::file_exists(out)) << "partial output left by: " << c.args;
  }
  // An existing directory with the user's files is left as it was.
  const std::string keep = tmp.file("keep");
  ASSERT_EQ(run_command("mkdir " + keep + " && touch " + keep + "/mine.txt").exit_code, 0);
  EXPECT_EQ(run_aet(kQuickSim + "--pixel 0 --out " + keep).exit_code, 2);
  EXPECT_EQ(aet::test::list_dir(keep), std::vector<std::string>{"mine.txt"});

  auto r = run_aet("info " + tmp.file("short.mrc"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, tmp.file("short.mrc"))) << r.output;
  r = run_aet("info " + tmp.file("absent.mrc"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, tmp.file("absent.mrc"))) << r.output;
  r = run_aet("simulate --quiet");  // no --out
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "--out")) << r.output;
}

#if AET_HAVE_SHARED_DATA
TEST(Cli, InfoReadsTheRealData) {
  const std::string dir = std::string(AET_SHARED_DATA) + "/ta_film_area1";
  ASSERT_TRUE(aet::test::file_exists(dir + "/projections.mrc")) << "shared data missing: " << dir;
  const auto r = run_aet("info " + dir + "/projections.mrc " + dir + "/angles.txt");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "131 x 61 x 46")) << r.output;
  EXPECT_TRUE(contains(r.output, "0.3216")) << r.output;
  EXPECT_TRUE(contains(r.output, "46 views")) << r.output;
}
#endif

TEST(Cli, TiltSeriesInputIsCheckedAlikeByEveryCommand) {
  TempDir tmp;
  // A stack with rectangular pixels, and a stack of one view.
  Array3 rect(16, 16, 3, 1.0f);
  rect.voxel_size = VoxelSize{0.4, 0.5, 0.4};
  write_mrc(tmp.file("rect.mrc"), rect, MrcKind::stack);
  Array3 one(16, 16, 1, 1.0f);
  one.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  write_mrc(tmp.file("one.mrc"), one, MrcKind::stack);
  aet::test::write_text(tmp.file("three.tlt"), "-30\n0\n30\n");
  aet::test::write_text(tmp.file("single.tlt"), "0\n");
  const std::vector<std::string> commands = {
      "reconstruct --iterations 1 --out " + tmp.file("out/v.mrc"),
      "align --out " + tmp.file("out"),
      "pipeline --no-align --out " + tmp.file("out"),
  };
  for (const auto& cmd : commands) {
    auto r = run_aet(cmd + " --tilts " + tmp.file("rect.mrc") + " --angles " +
                     tmp.file("three.tlt"));
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, tmp.file("rect.mrc"))) << r.output;
    EXPECT_TRUE(contains(r.output, "not square")) << r.output;
    r = run_aet(cmd + " --tilts " + tmp.file("one.mrc") + " --angles " + tmp.file("single.tlt"));
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "at least 2 views")) << r.output;
    EXPECT_FALSE(aet::test::file_exists(tmp.file("out"))) << cmd;
  }
  // --pixel overrides the header: the square check no longer applies.
  const auto r = run_aet("reconstruct --iterations 1 --pixel 0.4 --quiet --tilts " +
                         tmp.file("rect.mrc") + " --angles " + tmp.file("three.tlt") + " --out " +
                         tmp.file("v.mrc"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  MrcHeader h;
  read_mrc(tmp.file("v.mrc"), &h);
  EXPECT_NEAR(h.voxel_size().x, 0.4, 1e-6);
}

// An empty --model "" is a mistake, not a request for the shipped model: refused before any work,
// by the pipeline and by the commands that load a model alike.
TEST(Cli, EmptyModelNameIsRefused) {
  TempDir tmp;
  auto r = run_aet("pipeline --model '' --out " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--model: empty file name")) << r.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("run")));
  Array3 v(16, 16, 16, 0.5f);
  v.voxel_size = VoxelSize{0.35, 0.35, 0.35};
  write_mrc(tmp.file("v.mrc"), v, MrcKind::volume);
  r = run_aet("augment --volume " + tmp.file("v.mrc") + " --model '' --out " + tmp.file("a.mrc"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // Without LibTorch augment refuses earlier, for that reason.
  EXPECT_TRUE(contains(r.output, "--model: empty file name") || contains(r.output, "no LibTorch"))
      << r.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("a.mrc")));
}

// aet never removes what it did not write: a directory (or link) where an output file goes is an
// error before any work, and it is left as it was (issue 32's data-loss reproduction).
TEST(Cli, SomethingInTheWayOfAnOutputIsRefusedBeforeAnyWork) {
  TempDir tmp;
  const std::string d = tmp.file("d");
  ASSERT_EQ(run_command("mkdir -p " + d + "/atoms.xyz && echo x > " + d + "/atoms.xyz/notes.txt")
                .exit_code,
            0);
  auto r = run_aet("pipeline --quiet --out " + d);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, d + "/atoms.xyz: is a directory where aet would write"))
      << r.output;
  EXPECT_EQ(aet::test::read_text(d + "/atoms.xyz/notes.txt"), "x\n");
  EXPECT_EQ(aet::test::list_dir(d), std::vector<std::string>{"atoms.xyz"});

  // A link in the way of a folder command's output: refused, the link and its target kept.
  const std::string s = tmp.file("s");
  aet::test::write_text(tmp.file("elsewhere.xyz"), "mine");
  ASSERT_EQ(run_command("mkdir " + s + " && ln -s " + tmp.file("elsewhere.xyz") + " " + s +
                        "/truth.xyz")
                .exit_code,
            0);
  r = run_aet(kQuickSim + "--out " + s);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, s + "/truth.xyz: is a symbolic link")) << r.output;
  EXPECT_EQ(aet::test::read_text(s + "/truth.xyz"), "mine");

  // A file of an earlier run is replaced: running again into the same folder works.
  const std::string again = tmp.file("again");
  ASSERT_EQ(run_aet(kQuickSim + "--out " + again).exit_code, 0);
  r = run_aet(kQuickSim + "--seed 9 --out " + again);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(aet::test::read_text(again + "/simulate.json"), "\"seed\": 9"));
}

// Single-file outputs are checked before the work, as the folders are: a directory in the way,
// an extension aet does not write, a JSON record that could not be written.
TEST(Cli, OutputFilesAreCheckedBeforeAnyWork) {
  TempDir tmp;
  Array3 views(16, 16, 3, 1.0f);
  views.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  write_mrc(tmp.file("t.mrc"), views, MrcKind::stack);
  aet::test::write_text(tmp.file("t.tlt"), "-30\n0\n30\n");
  Array3 vol(16, 16, 16, 0.5f);
  vol.voxel_size = VoxelSize{0.35, 0.35, 0.35};
  write_mrc(tmp.file("v.mrc"), vol, MrcKind::volume);
  aet::test::write_text(tmp.file("a.xyz"), "1\n\nPt 0 0 0\n");
  ASSERT_EQ(run_command("mkdir -p " + tmp.file("o/w.json") + " " + tmp.file("dir.xyz") + " " +
                        tmp.file("dir.json"))
                .exit_code,
            0);
  aet::test::write_text(tmp.file("plain"), "a file, not a folder");
  const std::string recon = "reconstruct --tilts " + tmp.file("t.mrc") + " --angles " +
                            tmp.file("t.tlt") + " --out ";
  struct Case {
    std::string args, must_name, must_say;
  };
  const std::vector<Case> cases = {
      {recon + tmp.file("o/w.mrc"), tmp.file("o/w.json"), "is a directory"},
      {recon + tmp.file("q.tif"), tmp.file("q.tif"), "aet writes an MRC volume here"},
      {recon + tmp.file("plain/v.mrc"), tmp.file("plain"), "not a directory"},
      {"trace --volume " + tmp.file("v.mrc") + " --out " + tmp.file("dir.xyz"),
       tmp.file("dir.xyz"), "is a directory"},
      {"trace --volume " + tmp.file("v.mrc") + " --out " + tmp.file("atoms.pdb"),
       tmp.file("atoms.pdb"), "'.pdb'"},
      {"evaluate --traced " + tmp.file("a.xyz") + " --truth " + tmp.file("a.xyz") + " --out " +
           tmp.file("dir.json"),
       tmp.file("dir.json"), "is a directory"},
  };
  for (const auto& c : cases) {
    const auto r = run_aet(c.args + " --quiet");
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.must_name)) << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.must_say)) << c.args << "\n" << r.output;
    // Refused before the work: nothing computed was printed (evaluate prints its JSON).
    EXPECT_FALSE(contains(r.output, "recall")) << r.output;
  }
  // augment checks its output before it loads the model (without LibTorch it refuses earlier).
  auto a = run_aet("augment --volume " + tmp.file("v.mrc") + " --out " + tmp.file("q.tif"));
  EXPECT_EQ(a.exit_code, 2) << a.output;
  EXPECT_TRUE(contains(a.output, tmp.file("q.tif") + ": --out: aet writes an MRC volume here") ||
              contains(a.output, "no LibTorch"))
      << a.output;
  // aet train writes into its folder directly: a file there, or under a file, is bad input (2).
  for (const std::string& out : {tmp.file("plain"), tmp.file("plain/sub")}) {
    const auto r = run_aet("train --data " + tmp.file("absent.h5") + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    // Without LibTorch train refuses earlier, for that reason.
    EXPECT_TRUE(contains(r.output, tmp.file("plain") + ": --out") ||
                contains(r.output, "no LibTorch"))
        << r.output;
  }
  EXPECT_FALSE(aet::test::file_exists(tmp.file("o/w.mrc")));
  EXPECT_FALSE(aet::test::file_exists(tmp.file("q.tif")));
  EXPECT_FALSE(aet::test::file_exists(tmp.file("atoms.pdb")));
}

// Inputs that used to pass: views of a pixel, a truth without atoms, a count mismatch; each fails
// at once with exit 2, naming the file(s).
TEST(Cli, InputsThatCannotMakeAResultFailAtOnce) {
  TempDir tmp;
  Array3 tiny(1, 1, 5, 1.0f);
  tiny.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  write_mrc(tmp.file("tiny.mrc"), tiny, MrcKind::stack);
  Array3 views(16, 16, 5, 1.0f);
  views.voxel_size = VoxelSize{0.4, 0.4, 0.4};
  write_mrc(tmp.file("t.mrc"), views, MrcKind::stack);
  aet::test::write_text(tmp.file("t.tlt"), "-60\n-30\n0\n30\n60\n");
  aet::test::write_text(tmp.file("three.tlt"), "-30\n0\n30\n");
  aet::test::write_text(tmp.file("empty.xyz"), "0\n\n");
  auto r = run_aet("reconstruct --tilts " + tmp.file("tiny.mrc") + " --angles " +
                   tmp.file("t.tlt") + " --out " + tmp.file("v.mrc"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, tmp.file("tiny.mrc") + ": views of 1 x 1 px are too small"))
      << r.output;
  EXPECT_FALSE(aet::test::file_exists(tmp.file("v.mrc")));

  r = run_aet("pipeline --no-align --tilts " + tmp.file("t.mrc") + " --angles " +
              tmp.file("t.tlt") + " --truth " + tmp.file("empty.xyz") + " --out " +
              tmp.file("run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, tmp.file("empty.xyz") + ": --truth: the model holds no atoms"))
      << r.output;
  EXPECT_FALSE(contains(r.output, "reconstructing")) << r.output;  // before any stage
  EXPECT_FALSE(aet::test::file_exists(tmp.file("run")));

  r = run_aet("reconstruct --tilts " + tmp.file("t.mrc") + " --angles " + tmp.file("three.tlt") +
              " --out " + tmp.file("v.mrc"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, tmp.file("three.tlt") + ": 3 angles but 5 views in " +
                                     tmp.file("t.mrc")))
      << r.output;
}
