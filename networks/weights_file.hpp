// The HDF5 container of model weights and training checkpoints, free of LibTorch so that the
// HDF5 code compiles without the heavy headers (internal to networks/).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace aet::nn::detail {

struct StoredTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major (C order), as LibTorch and h5py use
};

// Everything in one file. Tensor and series names are HDF5 paths relative to the root
// ("parameters/enc0/conv1/weight"); their groups are created on demand.
struct WeightsFile {
  std::map<std::string, double> numbers;              // numeric attributes of the root
  std::map<std::string, std::string> strings;         // string attributes of the root
  std::map<std::string, std::string> metadata;        // string attributes of /metadata
  std::map<std::string, StoredTensor> tensors;        // float32 datasets
  std::map<std::string, std::vector<double>> series;  // 1-D float64 datasets
  // Read only: the datasets that carried no checksum (files written before aet stored them).
  std::vector<std::string> unchecked;
};

// Writes atomically (the file is assembled in memory, then published by AtomicFile). Each
// dataset gets a string attribute "sha256": the SHA-256 of its values as stored (little-endian
// float32 for tensors, float64 for series, C order).
void write_weights_file(const std::string& path, const WeightsFile& file);

// Reads the root attributes aet writes (by name), the string attributes of /metadata and every
// float dataset. A missing, non-HDF5, truncated, damaged or hostile file (the parse runs first in
// a child process, hdf5::parse_in_child), or a dataset that does not match its checksum, is an
// InputError naming the file ("not a valid model file" when the HDF5 library fails on it). A
// file whose datasets carry no checksum loads with a warning.
WeightsFile read_weights_file(const std::string& path);
// The parse alone, in this process (for the fuzzers): no child, no warning.
WeightsFile read_weights_file_in_process(const std::string& path);

}  // namespace aet::nn::detail
