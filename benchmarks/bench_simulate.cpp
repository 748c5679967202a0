// Simulator speed: analytic projection of the built-in phantoms on each available device.
// Usage: bench_simulate [--repeat N] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "aet/core/device.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/phantoms/nanoparticle.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "aet/phantoms/tilt_series.hpp"

using namespace aet;

int main(int argc, char** argv) {
  int repeat = 3;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
  }
  set_verbosity(Verbosity::quiet);
  std::vector<Device> devices = {Device{DeviceKind::cpu, 0}};
  if (!cuda_devices().empty()) devices.push_back(Device{DeviceKind::cuda, 0});

  std::ostringstream js;
  js << "{\n  \"benchmark\": \"simulate\",\n  \"cpu_threads\": " << num_threads()
     << ",\n  \"gpu\": \"" << (cuda_devices().empty() ? "none" : cuda_devices()[0].name)
     << "\",\n  \"runs\": [\n";
  bool first = true;
  for (const char* name : {"demo", "pt-large"}) {
    const AtomModel model = phantoms::build_particle(phantoms::find_phantom(name).spec);
    for (double tail : {0.0, 0.1}) {
      phantoms::ImagingModel im;
      im.tail_fraction = tail;
      const auto atoms = phantoms::gaussian_atoms(model, im);
      TiltGeometry views;
      for (double t : phantoms::parse_tilt_range("-70:70:3").angles())
        views.push_back(ViewGeometry::from_tilt(t));
      const double pixel = 0.35;
      const std::int64_t n = phantoms::fitting_view_size(model, pixel, 6.0);
      for (const Device& dev : devices) {
        double best = 1e30;
        for (int r = 0; r < repeat; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          const Array3 out = phantoms::project_atoms(atoms, views, n, n, pixel, im, dev);
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          best = std::min(best, s);
        }
        char line[512];
        std::snprintf(line, sizeof line,
                      "    {\"phantom\": \"%s\", \"atoms\": %zu, \"views\": %zu, \"view_size\": "
                      "%lld, \"tail_fraction\": %.2f, \"device\": \"%s\", \"seconds\": %.4f}",
                      name, model.size(), views.size(), static_cast<long long>(n), tail,
                      dev.str().c_str(), best);
        js << (first ? "" : ",\n") << line;
        first = false;
      }
    }
  }
  js << "\n  ]\n}\n";
  std::fputs(js.str().c_str(), stdout);
  if (!json_path.empty()) std::ofstream(json_path) << js.str();
  return 0;
}
