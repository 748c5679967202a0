// Each reader as the fuzzers and the corpus replay call it (fuzz_readers.hpp).
#include "fuzz/fuzz_readers.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "aet/core/error.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/networks/training_set.hpp"
#include "cli/cli.hpp"
#include "io/hdf5_handles.hpp"
#include "training_set_detail.hpp"
#include "weights_file.hpp"

namespace aet::fuzz {

namespace {

void read_mrc_file(const std::string& path) {
  read_mrc_header(path);
  MrcHeader h;
  const Array3 a = read_mrc(path, &h);
  // The file's columns, rows and sections are the x, y, z axes its mapc, mapr, maps name.
  const std::int64_t file_n[3] = {h.nx, h.ny, h.nz};
  const int axis_of[3] = {h.mapc - 1, h.mapr - 1, h.maps - 1};
  std::int64_t n[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) n[axis_of[k]] = file_n[k];
  if (a.nx() != n[0] || a.ny() != n[1] || a.nz() != n[2])
    throw std::logic_error(path + ": read_mrc returned another shape than its header");
}

void read_angle_file(const std::string& path) {
  const AngleFile f = read_angles(path);
  if (f.views.empty()) throw std::logic_error(path + ": read_angles accepted an empty file");
  f.geometry();
}

// Relative agreement at the precision write_xyz prints (%14.6f: 1e-6 A absolute).
bool same_number(double a, double b) {
  return std::abs(a - b) <= 1e-6 + 1e-12 * std::abs(a);
}

// A model read, written and read again must come back the same: a writer that truncates or
// rounds what its reader accepted silently changes a user's model.
void xyz_round_trip(const std::string& path) {
  const AtomModel m = read_xyz(path);
  const std::string copy = path + ".roundtrip." + std::to_string(::getpid()) + ".xyz";
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } remove{copy};
  write_xyz(copy, m);
  AtomModel back;
  try {
    back = read_xyz(copy);
  } catch (const InputError& e) {
    throw std::logic_error(std::string("write_xyz wrote a file read_xyz refuses: ") + e.what());
  }
  if (back.size() != m.size() || back.species != m.species)
    throw std::logic_error(path + ": the round trip changed the atoms");
  for (std::size_t i = 0; i < m.size(); ++i)
    for (int k = 0; k < 3; ++k)
      if (!same_number(m.positions[i][k], back.positions[i][k]))
        throw std::logic_error(path + ": the round trip changed atom " + std::to_string(i));
}

// The INI reader as every command runs it (cli::parse), over a table with each kind of option
// aet uses.
void read_config(const std::string& path) {
  namespace po = boost::program_options;
  po::options_description desc("Options");
  desc.add_options()("help,h", "help")("config", po::value<std::string>(), "config")(
      "iterations", po::value<int>()->default_value(50), "iterations")(
      "step", po::value<double>(), "step")("elements", po::value<std::string>(), "elements")(
      "strict", po::bool_switch(), "strict")("seed", po::value<std::uint64_t>(), "seed")(
      "threads", po::value<int>(), "threads")("quiet", po::bool_switch(), "quiet")(
      "data", po::value<std::vector<std::string>>(), "data");
  cli::Invocation inv;
  inv.name = "pipeline";
  inv.args = {"--config", path};
  cli::parse(inv, desc);
}

}  // namespace

const std::vector<std::string>& reader_names() {
  static const std::vector<std::string> names = {"mrc",    "angles",  "xyz",         "config",
                                                 "result", "weights", "training_set"};
  return names;
}

void exercise(const std::string& reader, const std::string& path, Hdf5Mode mode) {
  const bool guarded = mode == Hdf5Mode::guarded;
  if (reader == "mrc") {
    read_mrc_file(path);
  } else if (reader == "angles") {
    read_angle_file(path);
  } else if (reader == "xyz") {
    xyz_round_trip(path);
  } else if (reader == "config") {
    read_config(path);
  } else if (reader == "result") {
    // The summary walks everything; the vector reader opens a dataset by name.
    if (guarded) {
      read_result_summary(path);
      read_result_vector(path, "recon/r1");
    } else {
      hdf5::read_result_summary_in_process(path);
      hdf5::read_result_vector_in_process(path, "recon/r1");
    }
  } else if (reader == "weights") {
    if (guarded)
      nn::detail::read_weights_file(path);
    else
      nn::detail::read_weights_file_in_process(path);
  } else if (reader == "training_set") {
    if (guarded)
      nn::read_training_set(path);
    else
      nn::detail::read_training_set_in_process(path);
  } else {
    throw std::invalid_argument("no reader '" + reader + "'");
  }
}

}  // namespace aet::fuzz
