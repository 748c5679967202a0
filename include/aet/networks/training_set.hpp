// The HDF5 training-set file: writing (atomic, one sample at a time) and reading (every dataset
// checked). Torch-free.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "aet/networks/training_spec.hpp"

namespace aet::nn {

// HDF5 training set: samples with their provenance (spec and seeds). Writing is atomic; reading
// checks every dataset and names the file in every error.
//
// Layout: root attributes format = "aet-training-set", format_version = 1, count, aet_version,
// created, command_line, config, and the spec (one attribute per field, lists as arrays or
// comma-separated text). Group sample_NNNNNN (6 digits, 0-based) per sample: input and target
// (float32, stored (nz, ny, nx) so x is fastest, deflate-compressed, attribute voxel_size),
// truth/positions (N x 3 float64, Angstrom), truth/species (N strings), truth/<property> (N
// float64, e.g. b_factor; the atom info as string attributes of truth), scalars tilt_max,
// tilt_step, dose (float64) and seed (uint64).
class TrainingSetWriter {
 public:
  // Creates PATH.tmp.<pid>; the file appears at PATH on commit() only, and is removed when the
  // writer is destroyed without commit().
  TrainingSetWriter(const std::string& path, const TrainingDataSpec& spec,
                    const std::string& command_line = "", const std::string& config = "");
  ~TrainingSetWriter();
  TrainingSetWriter(const TrainingSetWriter&) = delete;
  TrainingSetWriter& operator=(const TrainingSetWriter&) = delete;
  void add(const TrainingSample& sample);  // written now: a large set needs no memory to build
  std::size_t count() const;
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void write_training_set(const std::string& path, const std::vector<TrainingSample>& samples,
                        const TrainingDataSpec& spec);
// `spec`, when given, receives the spec the set was made with.
std::vector<TrainingSample> read_training_set(const std::string& path,
                                              TrainingDataSpec* spec = nullptr);

}  // namespace aet::nn
