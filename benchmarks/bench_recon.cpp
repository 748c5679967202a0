// Reconstruction speed: one forward projection, one back projection and one iteration of each
// solver (RESIRE, SIRT, GENFIRE) for volumes n^3 and n_views views of n^2 (single tilt axis,
// +-70 deg), on each requested device. Reports seconds, giga-updates per second (voxels x views
// per second) and peak memory, as JSON and as a Markdown table.
//
// Every case runs in its own child process (this program re-executed with --case), so the peak
// resident memory of the process (getrusage) belongs to that case alone and a case that fails
// (out of memory, say) is recorded as such instead of ending the sweep. On a CUDA device the
// peak is the device memory the solve planned and held (ReconResult::device_bytes) or, for a
// projection, the volume plus the view stack.
//
// Usage: bench_recon [--devices cpu,cuda] [--sizes 64,128,256,512] [--views 40,60,120]
//                    [--cpu-budget VOXEL_VIEWS] [--genfire-max N] [--repeat N] [--floors]
//                    [--json FILE] [--markdown FILE]
// --cpu-budget skips CPU cases with more than this many voxel x view updates (default 1.1e9,
// about 256^3 x 60), which would take minutes each. --genfire-max N leaves GENFIRE out of cases
// above N^3 (its gridding runs on the host). --floors adds, on CUDA, 100 RESIRE iterations
// at 256^3 and 512^3 with 60 views and the forward + back pair at 256^3 x 60.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "aet/core/device.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "recon/projector_detail.hpp"

using namespace aet;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<long long> parse_list(const std::string& text) {
  std::vector<long long> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::atoll(item.c_str()));
  return out;
}

// A particle-like test volume: Gaussian blobs (sigma 1 voxel) at random points of a ball of
// radius 0.35 n. Speed does not depend on the content beyond its sparsity, which this mimics.
Array3 blob_volume(std::int64_t n) {
  Array3 v(n, n, n);
  v.voxel_size = VoxelSize{0.35, 0.35, 0.35};
  Rng rng(12345);
  const double radius = 0.35 * static_cast<double>(n);
  const std::int64_t blobs = std::max<std::int64_t>(50, n * n * n / 400);
  const double c = centre_index(n);
  for (std::int64_t b = 0; b < blobs; ++b) {
    double p[3];
    do {
      for (double& x : p) x = (2.0 * rng.uniform() - 1.0) * radius;
    } while (p[0] * p[0] + p[1] * p[1] + p[2] * p[2] > radius * radius);
    const std::int64_t ix = std::llround(c + p[0]), iy = std::llround(c + p[1]),
                       iz = std::llround(c + p[2]);
    for (std::int64_t z = iz - 3; z <= iz + 3; ++z)
      for (std::int64_t y = iy - 3; y <= iy + 3; ++y)
        for (std::int64_t x = ix - 3; x <= ix + 3; ++x) {
          if (x < 0 || y < 0 || z < 0 || x >= n || y >= n || z >= n) continue;
          const double d2 = (x - c - p[0]) * (x - c - p[0]) + (y - c - p[1]) * (y - c - p[1]) +
                            (z - c - p[2]) * (z - c - p[2]);
          v(x, y, z) += static_cast<float>(std::exp(-0.5 * d2));
        }
  }
  return v;
}

TiltGeometry tilt_views(std::int64_t n_views) {
  TiltGeometry g;
  for (std::int64_t k = 0; k < n_views; ++k) {
    const double t = n_views == 1 ? 0.0 : -70.0 + 140.0 * static_cast<double>(k) / (n_views - 1);
    g.push_back(ViewGeometry::from_tilt(t));
  }
  return g;
}

// Best time of `repeat` runs of f.
template <class F>
double best_time(int repeat, F f) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// One case in this process; prints one JSON object per measurement on stdout.
int run_case(const std::string& device_spec, std::int64_t n, std::int64_t n_views, int repeat,
             bool floors_only, bool genfire) {
  set_verbosity(Verbosity::quiet);
  const Device dev = resolve_device(device_spec);
  const Array3 volume = blob_volume(n);
  const TiltGeometry geometry = tilt_views(n_views);
  const double updates = static_cast<double>(n) * n * n * n_views;
  const double float_bytes = 4.0;
  const double projection_bytes =
      float_bytes * (static_cast<double>(n) * n * n + static_cast<double>(n) * n * n_views);
  Array3 views = forward_project(volume, geometry, n, n, Device{});  // the data, on the CPU
  auto emit = [&](const char* what, int iterations, double seconds, double device_bytes) {
    std::printf(
        "{\"device\": \"%s\", \"n\": %lld, \"views\": %lld, \"what\": \"%s\", \"iterations\": "
        "%d, \"seconds\": %.6g, \"gups\": %.4g, \"device_bytes\": %.0f}\n",
        dev.str().c_str(), static_cast<long long>(n), static_cast<long long>(n_views), what,
        iterations, seconds,
        iterations > 0 ? updates * 2.0 * iterations / seconds * 1e-9 : updates / seconds * 1e-9,
        device_bytes);
    std::fflush(stdout);
  };
  if (floors_only) {
    // The floors: the projection pair and 100 RESIRE iterations.
    forward_project(volume, geometry, n, n, dev);  // warm-up (context, allocations)
    const double pair = best_time(repeat, [&] {
      const Array3 p = forward_project(volume, geometry, n, n, dev);
      back_project(p, geometry, n, n, n, dev);
    });
    emit("pair", 0, pair, projection_bytes);
#if AET_WITH_CUDA
    // The same pair with everything resident, as inside a solve (no host transfers), in both
    // arithmetics of the CUDA projector; then 100 RESIRE iterations in the reference one.
    if (dev.kind == DeviceKind::cuda) {
      for (const char* arithmetic : {"single", "reference"}) {
        setenv("AET_CUDA_PROJECTOR", arithmetic, 1);
        const detail::PairTiming t =
            detail::time_projection_pair_cuda(volume, geometry, n, n, dev.index, repeat);
        const std::string suffix = t.single ? "" : "_reference";
        emit(("forward_resident" + suffix).c_str(), 0, t.forward, projection_bytes);
        emit(("back_resident" + suffix).c_str(), 0, t.back, projection_bytes);
        emit(("pair_resident" + suffix).c_str(), 0, t.pair, projection_bytes);
      }
      ReconOptions opt;
      opt.iterations = 100;
      opt.device = dev;
      const ReconResult r = reconstruct(views, geometry, opt);
      emit("resire_100_reference", 100, r.seconds, static_cast<double>(r.device_bytes));
      unsetenv("AET_CUDA_PROJECTOR");
    }
#endif
    ReconOptions opt;
    opt.iterations = 100;
    opt.device = dev;
    const ReconResult r = reconstruct(views, geometry, opt);
    emit("resire_100", 100, r.seconds, static_cast<double>(r.device_bytes));
    return 0;
  }
  if (dev.kind == DeviceKind::cuda) forward_project(volume, geometry, n, n, dev);  // warm-up
  emit("forward", 0, best_time(repeat, [&] { forward_project(volume, geometry, n, n, dev); }),
       dev.kind == DeviceKind::cuda ? projection_bytes : 0.0);
  emit("back", 0, best_time(repeat, [&] { back_project(views, geometry, n, n, n, dev); }),
       dev.kind == DeviceKind::cuda ? projection_bytes : 0.0);
  // Per-iteration cost: the difference between solves of 1 and 3 iterations, so the set-up
  // (uploads, SIRT weights, GENFIRE gridding) is not counted.
  for (Algorithm a : {Algorithm::resire, Algorithm::sirt, Algorithm::genfire}) {
    if (a == Algorithm::genfire && !genfire) continue;
    ReconOptions opt;
    opt.algorithm = a;
    opt.device = dev;
    opt.iterations = 1;
    const ReconResult r1 = reconstruct(views, geometry, opt);
    opt.iterations = 3;
    const ReconResult r3 = reconstruct(views, geometry, opt);
    const double per_iteration = std::max(1e-9, (r3.seconds - r1.seconds) / 2.0);
    // GUPS of an iteration counted as 2 projections (forward + back) of every voxel and view.
    emit(algorithm_name(a), 1, per_iteration, static_cast<double>(r3.device_bytes));
  }
  return 0;
}

struct Record {
  std::string device, what, error;
  long long n = 0, views = 0;
  int iterations = 0;
  double seconds = 0, gups = 0, device_bytes = 0, peak_rss_bytes = 0;
};

// Runs `self --case ...` and parses its JSON lines (a tiny parser for our own flat output).
std::vector<Record> spawn_case(const char* self, const std::string& dev, long long n,
                               long long views, int repeat, bool floors, bool genfire) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    const std::string ns = std::to_string(n), vs = std::to_string(views),
                      rs = std::to_string(repeat);
    std::vector<const char*> args = {self,       "--case",   dev.c_str(),
                                     ns.c_str(), vs.c_str(), rs.c_str()};
    if (floors) args.push_back("--floors");
    if (!genfire) args.push_back("--no-genfire");
    args.push_back(nullptr);
    execv(self, const_cast<char* const*>(args.data()));
    _exit(127);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t got;
  while ((got = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(got));
  close(pipefd[0]);
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  const double rss = static_cast<double>(usage.ru_maxrss) * 1024.0;  // kilobytes on Linux
  std::vector<Record> records;
  std::stringstream ss(out);
  std::string line;
  auto field = [](const std::string& l, const std::string& key) {
    const auto at = l.find("\"" + key + "\": ");
    if (at == std::string::npos) return std::string();
    std::size_t b = at + key.size() + 4, e = b;
    if (l[b] == '"') {
      e = l.find('"', b + 1);
      return l.substr(b + 1, e - b - 1);
    }
    while (e < l.size() && l[e] != ',' && l[e] != '}') ++e;
    return l.substr(b, e - b);
  };
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] != '{') continue;
    Record r;
    r.device = field(line, "device");
    r.what = field(line, "what");
    r.n = std::atoll(field(line, "n").c_str());
    r.views = std::atoll(field(line, "views").c_str());
    r.iterations = std::atoi(field(line, "iterations").c_str());
    r.seconds = std::atof(field(line, "seconds").c_str());
    r.gups = std::atof(field(line, "gups").c_str());
    r.device_bytes = std::atof(field(line, "device_bytes").c_str());
    r.peak_rss_bytes = rss;
    records.push_back(r);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Record r;
    r.device = dev;
    r.n = n;
    r.views = views;
    r.what = "failed";
    r.error = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                : "killed by signal " + std::to_string(WTERMSIG(status));
    records.push_back(r);
  }
  return records;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 6 && !std::strcmp(argv[1], "--case")) {
      bool floors_only = false, genfire = true;
      for (int i = 6; i < argc; ++i) {
        floors_only = floors_only || !std::strcmp(argv[i], "--floors");
        genfire = genfire && std::strcmp(argv[i], "--no-genfire") != 0;
      }
      return run_case(argv[2], std::atoll(argv[3]), std::atoll(argv[4]), std::atoi(argv[5]),
                      floors_only, genfire);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_recon: %s\n", e.what());
    return 1;
  }
  std::vector<std::string> devices;
  std::vector<long long> sizes = {64, 128, 256, 512}, view_counts = {40, 60, 120};
  double cpu_budget = 1.1e9;
  // GENFIRE grids the views onto its oversampled Fourier grid on the host, twice per case (the
  // 1- and 3-iteration solves): minutes at 512^3, which a time-limited GPU run cannot spare.
  long long genfire_max = 1LL << 40;
  int repeat = 3;
  bool floors = false;
  std::string json_path, md_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_recon: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--devices") {
      std::stringstream ss(next());
      std::string d;
      while (std::getline(ss, d, ',')) devices.push_back(d);
    } else if (a == "--sizes") {
      sizes = parse_list(next());
    } else if (a == "--views") {
      view_counts = parse_list(next());
    } else if (a == "--cpu-budget") {
      cpu_budget = std::atof(next().c_str());
    } else if (a == "--genfire-max") {
      genfire_max = std::atoll(next().c_str());
    } else if (a == "--repeat") {
      repeat = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--floors") {
      floors = true;
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--markdown") {
      md_path = next();
    } else {
      std::fprintf(stderr,
                   "usage: bench_recon [--devices cpu,cuda] [--sizes 64,128,...] [--views 40,...] "
                   "[--cpu-budget N] [--genfire-max N] [--repeat N] [--floors] [--json FILE] "
                   "[--markdown FILE]\n");
      return 2;
    }
  }
  const bool have_gpu = !cuda_devices().empty();
  if (devices.empty()) {
    devices.push_back("cpu");
    if (have_gpu) devices.push_back("cuda:0");
  }

  const std::string gpu = have_gpu ? cuda_devices()[0].name : "none";
  std::string walk;  // the CPU projector's walk (AET_CPU_PROJECTOR may name a bad one)
  try {
    walk = detail::cpu_projector_walk();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_recon: %s\n", e.what());
    return 2;
  }
  std::vector<Record> all;
  // Rewritten after every case: a sweep cut short (a time limit on the GPU machine) keeps what
  // it finished.
  auto write_outputs = [&](bool print) {
    std::ostringstream js;
    js << "{\n  \"benchmark\": \"recon\",\n  \"cpu\": \"" << cpu_name()
       << "\",\n  \"cpu_threads\": " << num_threads() << ",\n  \"cpu_projector\": \"" << walk
       << "\",\n  \"gpu\": \"" << gpu << "\",\n  \"runs\": [\n";
    for (std::size_t i = 0; i < all.size(); ++i) {
      const Record& r = all[i];
      char line[640];
      std::snprintf(line, sizeof line,
                    "    {\"device\": \"%s\", \"n\": %lld, \"views\": %lld, \"what\": \"%s\", "
                    "\"iterations\": %d, \"seconds\": %.6g, \"gups\": %.4g, \"device_bytes\": "
                    "%.0f, \"peak_rss_bytes\": %.0f, \"error\": \"%s\"}%s",
                    r.device.c_str(), r.n, r.views, r.what.c_str(), r.iterations, r.seconds, r.gups,
                    r.device_bytes, r.peak_rss_bytes, r.error.c_str(),
                    i + 1 < all.size() ? ",\n" : "\n");
      js << line;
    }
    js << "  ]\n}\n";
    if (print) std::fputs(js.str().c_str(), stdout);
    if (!json_path.empty()) std::ofstream(json_path) << js.str();
    if (md_path.empty()) return;
    std::ofstream md(md_path);
    md << "CPU: " << cpu_name() << " (" << num_threads() << " threads, projector walk: " << walk
       << "); GPU: " << gpu << "\n\n";
    md << "| device | volume | views | operation | seconds | GUPS | peak memory (MiB) |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const Record& r : all) {
      char line[512];
      const double mem = r.device.rfind("cuda", 0) == 0 ? r.device_bytes : r.peak_rss_bytes;
      const std::string op = r.what == "failed" ? "failed: " + r.error
                             : r.iterations > 0 && r.what.find("_100") == std::string::npos
                                 ? r.what + " iteration"
                                 : r.what;
      std::snprintf(line, sizeof line, "| %s | %lld^3 | %lld | %s | %.4g | %.3g | %.0f |\n",
                    r.device.c_str(), r.n, r.views, op.c_str(), r.seconds, r.gups, mem / 1048576.0);
      md << line;
    }
  };
  auto run = [&](const std::string& dev, long long n, long long v, int rep, bool fl) {
    const auto recs = spawn_case(argv[0], dev, n, v, rep, fl, n <= genfire_max);
    all.insert(all.end(), recs.begin(), recs.end());
    write_outputs(false);
  };
  for (const std::string& dev : devices) {
    const bool cpu = dev == "cpu";
    if (floors && !cpu)  // first: the floors are what a short GPU run is for
      for (long long n : {256LL, 512LL}) {
        std::fprintf(stderr, "bench_recon: %s floors at %lld^3 x 60\n", dev.c_str(), n);
        run(dev, n, 60, 1, true);
      }
    for (long long n : sizes)
      for (long long v : view_counts) {
        if (cpu && static_cast<double>(n) * n * n * v > cpu_budget) continue;
        std::fprintf(stderr, "bench_recon: %s %lld^3 x %lld views\n", dev.c_str(), n, v);
        run(dev, n, v, repeat, false);
      }
  }
  write_outputs(true);
  return 0;
}
