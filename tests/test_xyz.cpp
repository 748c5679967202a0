// Extended XYZ: round trips, files as ASE writes them, plain XYZ, ASE reading our output, and
// every rejected input.
#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/xyz.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

using test::TempDir;

AtomModel sample_model() {
  AtomModel m;
  m.add("Pt", Vec3(0.0, 0.0, 0.0));
  m.add("Ni", Vec3(1.961, -1.9615, 0.000001));
  m.add("Pt", Vec3(-12.345678, 3.5, 100.25));
  m.property("b_factor") = {4.5, 5.25, 6.0};
  m.property("intensity") = {1e-9, 123456.789, -0.5};
  m.set_info("source", "aet simulate");
  m.set_info("voxel_size", "0.4");
  m.set_info("note", "say \"hi\" = x");
  return m;
}

TEST(Xyz, RoundTrip) {
  TempDir dir;
  const AtomModel m = sample_model();
  const std::string path = dir.file("atoms.xyz");
  write_xyz(path, m);
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"atoms.xyz"});
  const std::string text = test::read_text(path);
  EXPECT_EQ(text.rfind("3\nProperties=species:S:1:pos:R:3:b_factor:R:1:intensity:R:1 ", 0), 0u)
      << text;
  EXPECT_NE(text.find("source=\"aet simulate\""), std::string::npos) << text;
  EXPECT_NE(text.find("pbc=\"F F F\""), std::string::npos) << text;

  const AtomModel r = read_xyz(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.species, m.species);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(r.positions[i].isApprox(m.positions[i], 1e-6));
  EXPECT_NEAR(r.positions[1].z(), 0.000001, 1e-12);
  ASSERT_EQ(r.properties.size(), 2u);
  EXPECT_EQ(r.properties[0].first, "b_factor");
  EXPECT_EQ(r.properties[0].second, m.properties[0].second);
  EXPECT_EQ(r.properties[1].first, "intensity");
  EXPECT_EQ(r.properties[1].second, m.properties[1].second);  // exact, tiny and huge alike
  ASSERT_NE(r.find_info("source"), nullptr);
  EXPECT_EQ(*r.find_info("source"), "aet simulate");
  EXPECT_EQ(*r.find_info("voxel_size"), "0.4");
  EXPECT_EQ(*r.find_info("note"), "say \"hi\" = x");
  EXPECT_EQ(*r.find_info("pbc"), "F F F");
}

// Whitespace the reader splits on (vertical tab, form feed) inside a value: written quoted, as
// spaces, so no word of it becomes a key of its own (found by fuzzing: Properties=T on reading).
TEST(Xyz, ValuesWithAnyWhitespaceComeBackAsOneValue) {
  TempDir dir;
  AtomModel m;
  m.set_info("note", "a\vProperties\vz\fpbc");
  write_xyz(dir.file("ws.xyz"), m);
  const AtomModel r = read_xyz(dir.file("ws.xyz"));
  ASSERT_NE(r.find_info("note"), nullptr);
  EXPECT_EQ(*r.find_info("note"), "a Properties z pbc");
  EXPECT_EQ(*r.find_info("pbc"), "F F F");
}

TEST(Xyz, EmptyModelRoundTrip) {
  TempDir dir;
  write_xyz(dir.file("none.xyz"), AtomModel{});
  EXPECT_EQ(read_xyz(dir.file("none.xyz")).size(), 0u);
}

TEST(Xyz, ReadsAseStyleFile) {
  TempDir dir;
  const std::string path = dir.file("ase.xyz");
  test::write_text(
      path,
      "4\n"
      "Lattice=\"10.0 0.0 0.0 0.0 10.0 0.0 0.0 0.0 10.0\" "
      "Properties=species:S:1:pos:R:3:tags:I:1:fixed:L:1:velocities:R:3:label:S:1 "
      "energy=-12.5 comment='two words' flag pbc=\"T T T\"\n"
      "Pt       0.00000000       0.00000000       0.00000000        1  T  0.1 0.2 0.3  a\n"
      "PT       1.96000000       1.96000000       0.00000000        2  F  0.0 0.0 0.0  b\n"
      "pt       1.96000000       0.00000000       1.96000000        3  T  -1 0 1e-3 c\n"
      "Ni       0.00000000       1.96000000       1.96000000       -4  F  0 0 0 d\n");
  const AtomModel m = read_xyz(path);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m.species, (std::vector<std::string>{"Pt", "Pt", "Pt", "Ni"}));
  EXPECT_DOUBLE_EQ(m.positions[2].z(), 1.96);
  ASSERT_NE(m.find_property("tags"), nullptr);
  EXPECT_EQ(*m.find_property("tags"), (std::vector<double>{1, 2, 3, -4}));
  EXPECT_EQ(*m.find_property("fixed"), (std::vector<double>{1, 0, 1, 0}));
  ASSERT_NE(m.find_property("velocities_2"), nullptr);
  EXPECT_EQ(*m.find_property("velocities_0"), (std::vector<double>{0.1, 0.0, -1, 0}));
  EXPECT_EQ(*m.find_property("velocities_2"), (std::vector<double>{0.3, 0.0, 1e-3, 0}));
  EXPECT_EQ(m.find_property("label"), nullptr);  // string columns are not per-atom reals
  EXPECT_EQ(*m.find_info("energy"), "-12.5");
  EXPECT_EQ(*m.find_info("comment"), "two words");
  EXPECT_EQ(*m.find_info("flag"), "T");
  EXPECT_EQ(*m.find_info("Lattice"), "10.0 0.0 0.0 0.0 10.0 0.0 0.0 0.0 10.0");
  EXPECT_EQ(m.find_info("Properties"), nullptr);

  // Lattice and pbc survive a round trip.
  write_xyz(dir.file("again.xyz"), m);
  const AtomModel r = read_xyz(dir.file("again.xyz"));
  EXPECT_EQ(*r.find_info("Lattice"), *m.find_info("Lattice"));
  EXPECT_EQ(*r.find_info("pbc"), "T T T");
  EXPECT_EQ(*r.find_property("velocities_2"), *m.find_property("velocities_2"));
}

TEST(Xyz, ElementColumnAndAtomicNumbers) {
  TempDir dir;
  const std::string path = dir.file("el.xyz");
  test::write_text(path, "2\nProperties=element:S:1:pos:R:3\nAu 0 0 0\nag 1 1 1\n");
  EXPECT_EQ(read_xyz(path).species, (std::vector<std::string>{"Au", "Ag"}));
  test::write_text(path, "2\nProperties=Z:I:1:pos:R:3\n78 0 0 0\n28 1 1 1\n");
  const AtomModel z = read_xyz(path);
  EXPECT_EQ(z.species, (std::vector<std::string>{"Pt", "Ni"}));
  EXPECT_TRUE(z.properties.empty());
}

TEST(Xyz, PlainXyz) {
  TempDir dir;
  const std::string path = dir.file("plain.xyz");
  test::write_text(path,
                   "3\nA Pt cluster from somewhere\nPt 0.0 0.0 0.0\nPt 1.5 -2.5 3e-1\n"
                   "78   4 5 6\n\n");
  const AtomModel m = read_xyz(path);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.species, (std::vector<std::string>{"Pt", "Pt", "Pt"}));
  EXPECT_DOUBLE_EQ(m.positions[1].y(), -2.5);
  EXPECT_DOUBLE_EQ(m.positions[1].z(), 0.3);
  EXPECT_TRUE(m.properties.empty());
  ASSERT_NE(m.find_info("comment"), nullptr);
  EXPECT_EQ(*m.find_info("comment"), "A Pt cluster from somewhere");
}

TEST(Xyz, FirstFrameOfTrajectory) {
  TempDir dir;
  const std::string path = dir.file("traj.xyz");
  test::write_text(path, "1\n\nPt 0 0 0\n2\n\nPt 0 0 0\nPt 1 1 1\n");
  EXPECT_EQ(read_xyz(path).size(), 1u);
}

TEST(Xyz, AseReadsOurFile) {
  TempDir dir;
  const std::string path = dir.file("for_ase.xyz");
  write_xyz(path, sample_model());
  const auto probe = test::run_command("'" + std::string(AET_TEST_PYTHON) + "' -c 'import ase'");
  ASSERT_EQ(probe.exit_code, 0)
      << "ASE is not importable by " << AET_TEST_PYTHON
      << " (install Debian python3-ase): this interoperability check cannot run.\n"
      << probe.output;
  const auto r = test::run_command(
      "'" + std::string(AET_TEST_PYTHON) +
      "' -c \"import ase.io, sys; a = ase.io.read(sys.argv[1]); "
      "print(len(a), a.get_chemical_symbols()[1], ' '.join('%.6f' % x for x in a.positions[2]), "
      "'%.2f' % a.arrays['b_factor'][1], a.info['source'], a.info['note'])\" '" +
      path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 Ni -12.345678 3.500000 100.250000 5.25 aet simulate say \"hi\" = x"),
            std::string::npos)
      << r.output;
}

TEST(Xyz, ReadsFileWrittenByAse) {
  TempDir dir;
  const std::string path = dir.file("by_ase.xyz");
  const std::string script =
      "import ase, ase.io, numpy as np\n"
      "a = ase.Atoms('Pt2Ni', positions=[[0, 0, 0], [1.96, 1.96, 0], [0, 1.96, 1.96]])\n"
      "a.set_tags([1, 2, 3])\n"
      "a.set_momenta(np.arange(9.0).reshape(3, 3))\n"
      "a.new_array('b_factor', np.array([4.5, 5.0, 5.5]))\n"
      "a.new_array('fixed', np.array([True, False, True]))\n"
      "a.info['source'] = 'ase test'\n"
      "a.info['n'] = 7\n"
      "ase.io.write('" +
      path + "', a, format='extxyz')\n";
  test::write_text(dir.file("make.py"), script);
  const auto r =
      test::run_command("'" + std::string(AET_TEST_PYTHON) + "' '" + dir.file("make.py") + "'");
  ASSERT_EQ(r.exit_code, 0) << "ASE (Debian python3-ase) must be importable by " << AET_TEST_PYTHON
                            << ":\n"
                            << r.output;
  const AtomModel m = read_xyz(path);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.species, (std::vector<std::string>{"Pt", "Pt", "Ni"}));
  EXPECT_DOUBLE_EQ(m.positions[2].y(), 1.96);
  EXPECT_EQ(*m.find_property("tags"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(*m.find_property("momenta_1"), (std::vector<double>{1, 4, 7}));
  EXPECT_EQ(*m.find_property("b_factor"), (std::vector<double>{4.5, 5.0, 5.5}));
  EXPECT_EQ(*m.find_property("fixed"), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(*m.find_info("source"), "ase test");
  EXPECT_EQ(*m.find_info("n"), "7");
}

TEST(Xyz, WriterRejectsInconsistentModels) {
  TempDir dir;
  AtomModel m = sample_model();
  m.properties[0].second.pop_back();
  EXPECT_THROW(write_xyz(dir.file("a.xyz"), m), InternalError);
  AtomModel u;
  u.add("Qq", Vec3(0, 0, 0));
  EXPECT_THROW(write_xyz(dir.file("b.xyz"), u), InternalError);
  EXPECT_THROW(write_xyz(dir.file("no/dir/c.xyz"), sample_model()), InputError);
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

// ---- bad input ---------------------------------------------------------------------------

TEST(XyzBadInput, MissingAndEmpty) {
  TempDir dir;
  const std::string missing = dir.file("none.xyz"), empty = dir.file("empty.xyz");
  test::expect_input_error(
      missing, [&] { read_xyz(missing); }, "not found");
  test::write_text(empty, "");
  test::expect_input_error(
      empty, [&] { read_xyz(empty); }, "empty");
  test::write_text(empty, "\n\n");
  test::expect_input_error(
      empty, [&] { read_xyz(empty); }, "empty");
}

TEST(XyzBadInput, BadCountLine) {
  TempDir dir;
  const std::string path = dir.file("count.xyz");
  for (const char* first : {"abc", "-3", "2.5", "3 atoms"}) {
    test::write_text(path, std::string(first) + "\n\nPt 0 0 0\n");
    test::expect_input_error(
        path, [&] { read_xyz(path); }, "line 1");
  }
}

TEST(XyzBadInput, Truncated) {
  TempDir dir;
  const std::string path = dir.file("trunc.xyz");
  test::write_text(path, "5\nProperties=species:S:1:pos:R:3\nPt 0 0 0\nPt 1 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "truncated: the count says 5 atoms but only 2");
  test::write_text(path, "3\n\nPt 0 0 0\n\n\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "only 1 atom lines");
  test::write_text(path, "3\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "truncated");
}

TEST(XyzBadInput, MoreLinesThanCount) {
  TempDir dir;
  const std::string path = dir.file("more.xyz");
  test::write_text(path, "1\n\nPt 0 0 0\nPt 1 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: more atom lines than the count 1");
}

TEST(XyzBadInput, WrongColumnCount) {
  TempDir dir;
  const std::string path = dir.file("cols.xyz");
  test::write_text(path,
                   "3\nProperties=species:S:1:pos:R:3:b_factor:R:1\nPt 0 0 0 1\nPt 1 1 1\n"
                   "Pt 2 2 2 3\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: expected 5 columns, found 4");
  test::write_text(path, "2\n\nPt 0 0 0\nPt 1 1 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: expected 4 columns, found 5");
  test::write_text(path, "2\n\nPt 0 0 0\n\nPt 1 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: expected 4 columns, found 0");
}

TEST(XyzBadInput, UnknownElement) {
  TempDir dir;
  const std::string path = dir.file("el.xyz");
  test::write_text(path, "2\n\nPt 0 0 0\nXx 1 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: unknown element symbol 'Xx'");
  test::write_text(path, "1\n\n999 0 0 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "unknown atomic number 999");
}

TEST(XyzBadInput, NaNAndInfAndGarbage) {
  TempDir dir;
  const std::string path = dir.file("nan.xyz");
  test::write_text(path, "2\n\nPt 0 0 0\nPt nan 1 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 4: coordinate 'nan' is not finite");
  test::write_text(path, "1\n\nPt 0 -inf 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "not finite");
  test::write_text(path, "1\n\nPt 0 1.2.3 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "cannot parse coordinate '1.2.3'");
  test::write_text(path, "1\nProperties=species:S:1:pos:R:3:q:R:1\nPt 0 0 0 inf\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "property 'q' is not finite");
  test::write_text(path, "1\nProperties=species:S:1:pos:R:3:fixed:L:1\nPt 0 0 0 maybe\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "cannot parse 'maybe'");
}

TEST(XyzBadInput, MalformedProperties) {
  TempDir dir;
  const std::string path = dir.file("props.xyz");
  test::write_text(path, "1\nProperties=species:S:1:pos:R\nPt 0 0 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "malformed Properties");
  test::write_text(path, "1\nProperties=species:S:1:pos:X:3\nPt 0 0 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "type must be S, R, I or L");
  test::write_text(path, "1\nProperties=species:S:1:position:R:3\nPt 0 0 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "no pos:R:3");
  test::write_text(path, "1\nProperties=pos:R:3:q:R:1\n0 0 0 1\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "no species");
  test::write_text(path, "1\nProperties=species:S:1:pos:R:2\nPt 0 0\n");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "pos property must be R:3");
}

// A coordinate of any size is written whole (never cut at a buffer's end) and reads back
// exactly; beyond 1e6 Angstrom the reader refuses it as no particle in Angstrom.
TEST(Xyz, HugeCoordinatesAreWrittenWholeAndRefusedOnRead) {
  TempDir dir;
  AtomModel m;
  m.add("Pt", Vec3(1.5, -2.25, 1e107));
  m.add("Au", Vec3(-999999.5, 0.125, 3.0));
  m.property("b_factor") = {1e200, 2.0};
  const std::string path = dir.file("huge.xyz");
  write_xyz(path, m);
  std::istringstream lines(test::read_text(path));
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "2");
  std::getline(lines, line);  // the comment
  std::getline(lines, line);
  std::istringstream atom(line);
  std::string species;
  double x = 0, y = 0, z = 0, b = 0;
  atom >> species >> x >> y >> z >> b;
  ASSERT_FALSE(atom.fail()) << line;
  EXPECT_EQ(species, "Pt");
  EXPECT_EQ(x, 1.5);
  EXPECT_EQ(y, -2.25);
  EXPECT_EQ(z, 1e107);
  EXPECT_EQ(b, 1e200);
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "line 3: coordinate");
  test::expect_input_error(
      path, [&] { read_xyz(path); }, "beyond 1e6 Angstrom");

  // Just inside the bound the model reads back as written.
  m.positions[0] = Vec3(1.5, -2.25, 999999.875);
  write_xyz(path, m);
  const AtomModel back = read_xyz(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.positions[0].z(), 999999.875);
  EXPECT_EQ(back.positions[1].x(), -999999.5);
  EXPECT_EQ((*back.find_property("b_factor"))[0], 1e200);
}

}  // namespace
}  // namespace aet
