// One HDF5 result file per run: datasets plus provenance attributes on the root group
// (aet_version, command_line, config, seed, created, and any others the caller sets).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/atoms.hpp"

namespace aet {

struct Provenance {
  std::string command_line;
  std::string config;  // effective configuration, one "key = value" per line
  std::uint64_t seed = 0;
  bool has_seed = false;
};

// Writes to PATH.tmp.<pid> and renames to PATH on commit(); destroyed without commit() it removes
// the temporary file, so a failed run leaves nothing.
class ResultWriter {
 public:
  ResultWriter(const std::string& path, const Provenance& prov);
  ~ResultWriter();
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  // Dataset names may contain '/' to make groups ("recon/r1"). A volume is stored (nz, ny, nx)
  // in C order so that x is fastest, with its voxel size as an attribute.
  void write_volume(const std::string& name, const Array3& v);
  void write_vector(const std::string& name, const std::vector<double>& v);
  void write_matrix(const std::string& name, const std::vector<double>& rowmajor, std::size_t rows,
                    std::size_t cols);
  void write_atoms(const std::string& group, const AtomModel& m);
  void set_attribute(const std::string& name, const std::string& value);  // on the root group
  void set_attribute(const std::string& name, double value);
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ResultSummary {
  struct Dataset {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::string type;
  };
  std::vector<Dataset> datasets;
  std::vector<std::pair<std::string, std::string>> attributes;  // root attributes as text
};

// Lists every dataset and the root attributes. Throws InputError naming the file if it is not
// a readable HDF5 file.
ResultSummary read_result_summary(const std::string& path);
std::vector<double> read_result_vector(const std::string& path, const std::string& name);

}  // namespace aet
