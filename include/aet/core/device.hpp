// Compute device selection for --device auto|cpu|cuda[:N]. CUDA_VISIBLE_DEVICES is honoured by
// the CUDA runtime itself: index N counts the visible devices only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace aet {

enum class DeviceKind { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;  // CUDA ordinal among visible devices
  std::string str() const {
    return kind == DeviceKind::cpu ? "cpu" : "cuda:" + std::to_string(index);
  }
};

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  std::size_t total_memory = 0, free_memory = 0;  // bytes
  int major = 0, minor = 0, multiprocessors = 0;
};

bool built_with_cuda();
// Visible CUDA devices; empty when none, when the driver is missing, or without CUDA support.
std::vector<CudaDeviceInfo> cuda_devices();

// Parses and checks a --device value. "auto" picks cuda:0 when a GPU is visible, else the CPU.
// Throws InputError for a malformed value, for cuda in a build without CUDA, and for an index
// beyond the visible devices.
Device resolve_device(const std::string& spec);

}  // namespace aet
