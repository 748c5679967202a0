// HDF5 result files: datasets, atoms and provenance written atomically and read back through
// the summary and vector readers; bad files give errors naming the file.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/io/hdf5_result.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

using test::TempDir;

const ResultSummary::Dataset* find(const ResultSummary& s, const std::string& name) {
  for (const auto& d : s.datasets)
    if (d.name == name) return &d;
  return nullptr;
}

std::map<std::string, std::string> attrs(const ResultSummary& s) {
  return {s.attributes.begin(), s.attributes.end()};
}

Provenance provenance() {
  Provenance p;
  p.command_line = "aet reconstruct --in tilts.mrc --iterations 50";
  p.config = "iterations = 50\nmethod = resire\n";
  p.seed = 18446744073709551615ull;
  p.has_seed = true;
  return p;
}

TEST(Hdf5, WriteCommitAndSummarise) {
  TempDir dir;
  const std::string path = dir.file("result.h5");
  {
    ResultWriter w(path, provenance());
    Array3 v(5, 4, 3);
    for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = static_cast<float>(i);
    v.voxel_size = {0.4, 0.4, 0.5};
    w.write_volume("recon/volume", v);
    w.write_vector("recon/r1", {0.5, 0.4, 0.3, 0.25});
    w.write_vector("empty", {});
    w.write_matrix("metrics/shifts", {1, 2, 3, 4, 5, 6}, 3, 2);
    AtomModel m;
    m.add("Pt", Vec3(0, 0, 0));
    m.add("Ni", Vec3(1, 2, 3));
    m.property("b_factor") = {4.0, 5.0};
    m.set_info("method", "local maxima + gaussian fit");
    w.write_atoms("atoms/traced", m);
    w.set_attribute("r1_final", 0.25);
    w.set_attribute("status", "converged");
    w.set_attribute("status", "converged twice");  // overwriting an attribute is allowed
    EXPECT_FALSE(test::file_exists(path));         // nothing at the final name before commit
    w.commit();
  }
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"result.h5"});

  const ResultSummary s = read_result_summary(path);
  const auto* vol = find(s, "recon/volume");
  ASSERT_NE(vol, nullptr);
  EXPECT_EQ(vol->dims, (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(vol->type, "float32");
  const auto* r1 = find(s, "recon/r1");
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(r1->dims, (std::vector<std::uint64_t>{4}));
  EXPECT_EQ(r1->type, "float64");
  ASSERT_NE(find(s, "empty"), nullptr);
  EXPECT_EQ(find(s, "empty")->dims, (std::vector<std::uint64_t>{0}));
  ASSERT_NE(find(s, "metrics/shifts"), nullptr);
  EXPECT_EQ(find(s, "metrics/shifts")->dims, (std::vector<std::uint64_t>{3, 2}));
  ASSERT_NE(find(s, "atoms/traced/positions"), nullptr);
  EXPECT_EQ(find(s, "atoms/traced/positions")->dims, (std::vector<std::uint64_t>{2, 3}));
  ASSERT_NE(find(s, "atoms/traced/species"), nullptr);
  EXPECT_EQ(find(s, "atoms/traced/species")->type, "string");
  ASSERT_NE(find(s, "atoms/traced/b_factor"), nullptr);
  EXPECT_EQ(s.datasets.size(), 7u);

  const auto a = attrs(s);
  EXPECT_EQ(a.at("aet_version"), AET_VERSION);
  EXPECT_EQ(a.at("command_line"), "aet reconstruct --in tilts.mrc --iterations 50");
  EXPECT_EQ(a.at("config"), "iterations = 50\nmethod = resire\n");
  EXPECT_EQ(a.at("seed"), "18446744073709551615");
  EXPECT_EQ(a.at("r1_final"), "0.25");
  EXPECT_EQ(a.at("status"), "converged twice");
  const std::string created = a.at("created");
  ASSERT_EQ(created.size(), 20u) << created;  // 2024-01-02T03:04:05Z
  EXPECT_EQ(created[4], '-');
  EXPECT_EQ(created[10], 'T');
  EXPECT_EQ(created.back(), 'Z');

  EXPECT_EQ(read_result_vector(path, "recon/r1"), (std::vector<double>{0.5, 0.4, 0.3, 0.25}));
  EXPECT_EQ(read_result_vector(path, "atoms/traced/b_factor"), (std::vector<double>{4.0, 5.0}));
  EXPECT_TRUE(read_result_vector(path, "empty").empty());
}

TEST(Hdf5, NoSeedAttributeWithoutSeed) {
  TempDir dir;
  const std::string path = dir.file("noseed.h5");
  Provenance p;
  p.command_line = "aet info";
  {
    ResultWriter w(path, p);
    w.commit();
  }
  const auto a = attrs(read_result_summary(path));
  EXPECT_EQ(a.count("seed"), 0u);
  EXPECT_EQ(a.count("aet_version"), 1u);
  EXPECT_EQ(a.at("config"), "");
}

TEST(Hdf5, PythonSeesTheLayout) {
  // Cross-check with h5py (Debian python3-h5py, installed by scripts/setup.sh --tests).
  const std::string py = AET_TEST_PYTHON;
  ASSERT_EQ(test::run_command("'" + py + "' -c 'import h5py'").exit_code, 0)
      << "h5py is not importable by " << py << " (apt-get install python3-h5py)";
  TempDir dir;
  const std::string path = dir.file("py.h5");
  {
    ResultWriter w(path, provenance());
    Array3 v(3, 2, 1);
    for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = static_cast<float>(i);
    v.voxel_size = {0.3, 0.4, 0.5};
    w.write_volume("vol", v);
    w.commit();
  }
  const auto r = test::run_command(
      "'" + py +
      "' -c \"import h5py, sys; f = h5py.File(sys.argv[1], 'r'); d = f['vol']; "
      "print(d.shape, float(d[0, 1, 2]), [float(x) for x in d.attrs['voxel_size']], "
      "f.attrs['command_line'])\" '" +
      path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(1, 2, 3) 5.0 [0.3, 0.4, 0.5] aet reconstruct"), std::string::npos)
      << r.output;
}

TEST(Hdf5, ReadVectorErrors) {
  TempDir dir;
  const std::string path = dir.file("v.h5");
  {
    ResultWriter w(path, provenance());
    w.write_matrix("m", {1, 2, 3, 4}, 2, 2);
    AtomModel m;
    m.add("Pt", Vec3(0, 0, 0));
    w.write_atoms("atoms", m);
    w.commit();
  }
  test::expect_input_error(
      path, [&] { read_result_vector(path, "missing"); }, "no dataset 'missing'");
  test::expect_input_error(
      path, [&] { read_result_vector(path, "m"); }, "expected a 1-D vector");
  test::expect_input_error(
      path, [&] { read_result_vector(path, "atoms/species"); }, "not numeric");
}

TEST(Hdf5, UncommittedWriterLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("aborted.h5");
  {
    ResultWriter w(path, provenance());
    w.write_vector("x", {1, 2, 3});
  }
  EXPECT_FALSE(test::file_exists(path));
  EXPECT_TRUE(test::list_dir(dir.path()).empty());

  // A failure inside a write (duplicate name) also leaves nothing once the writer is gone.
  try {
    ResultWriter w(path, provenance());
    w.write_vector("x", {1});
    w.write_vector("x", {2});
    w.commit();
    ADD_FAILURE() << "duplicate dataset accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

TEST(Hdf5, WriterInMissingDirectory) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/r.h5");
  test::expect_input_error(
      path, [&] { ResultWriter w(path, provenance()); }, "does not exist");
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

TEST(Hdf5BadInput, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("missing.h5");
  test::expect_input_error(
      path, [&] { read_result_summary(path); }, "not found");
  test::expect_input_error(
      path, [&] { read_result_vector(path, "x"); }, "not found");
}

TEST(Hdf5BadInput, NotAnHdf5File) {
  TempDir dir;
  const std::string path = dir.file("text.h5");
  test::write_text(path, "this is not HDF5 at all\n");
  test::expect_input_error(
      path, [&] { read_result_summary(path); }, "not an HDF5 file");
  test::expect_input_error(
      path, [&] { read_result_vector(path, "x"); }, "not an HDF5 file");
  const std::string empty = dir.file("empty.h5");
  test::write_text(empty, "");
  test::expect_input_error(
      empty, [&] { read_result_summary(empty); }, "not an HDF5 file");
}

}  // namespace
}  // namespace aet
