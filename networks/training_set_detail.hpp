// The training-set reader's parse alone (internal to networks/ and its fuzzer).
#pragma once

#include <string>
#include <vector>

#include "aet/networks/training_set.hpp"

namespace aet::nn::detail {

// read_training_set without its child-process guard (hdf5::parse_in_child): the fuzzers call
// this, since they must see the HDF5 library's crashes.
std::vector<TrainingSample> read_training_set_in_process(const std::string& path,
                                                         TrainingDataSpec* spec = nullptr);

}  // namespace aet::nn::detail
