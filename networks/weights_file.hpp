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
};

// Writes atomically (the file is assembled in memory, then published by AtomicFile).
void write_weights_file(const std::string& path, const WeightsFile& file);

// Reads every dataset and attribute. A missing, non-HDF5, truncated or unreadable file, or a
// non-finite value, is an InputError naming the file (and the dataset).
WeightsFile read_weights_file(const std::string& path);

}  // namespace aet::nn::detail
