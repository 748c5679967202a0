#include "aet/core/device.hpp"

#include <cstdlib>

#include "aet/core/error.hpp"
#include "device_query.hpp"

namespace aet {

#if AET_WITH_CUDA
bool built_with_cuda() {
  return true;
}
std::vector<CudaDeviceInfo> cuda_devices() {
  return detail::query_cuda_devices();
}
#else
bool built_with_cuda() {
  return false;
}
std::vector<CudaDeviceInfo> cuda_devices() {
  return {};
}
#endif

Device resolve_device(const std::string& spec) {
  if (spec == "cpu") return Device{DeviceKind::cpu, 0};
  if (spec == "auto") {
    return cuda_devices().empty() ? Device{DeviceKind::cpu, 0} : Device{DeviceKind::cuda, 0};
  }
  if (spec.rfind("cuda", 0) != 0)
    fail_input("--device: expected auto, cpu, cuda or cuda:N, got '" + spec + "'");
  int index = 0;
  if (spec.size() > 4) {
    const std::string num = spec.substr(spec.size() > 5 && spec[4] == ':' ? 5 : 4);
    char* end = nullptr;
    const long v = std::strtol(num.c_str(), &end, 10);
    if (spec[4] != ':' || num.empty() || *end != '\0' || v < 0 || v > 1024)
      fail_input("--device: expected cuda:N with N a device number, got '" + spec + "'");
    index = static_cast<int>(v);
  }
  if (!built_with_cuda())
    fail_input("--device " + spec + ": this aet binary was built without CUDA (AET_WITH_CUDA=OFF)");
  const auto devices = cuda_devices();
  if (devices.empty())
    fail_input("--device " + spec +
               ": no CUDA device is visible (check the driver and "
               "CUDA_VISIBLE_DEVICES)");
  if (index >= static_cast<int>(devices.size()))
    fail_input("--device " + spec + ": only " + std::to_string(devices.size()) +
               " CUDA device(s) visible");
  return Device{DeviceKind::cuda, index};
}

}  // namespace aet
