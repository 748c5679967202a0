// aet info FILE...: what a user checks first, like IMOD's `header`: MRC dimensions, mode, voxel
// size, origin and statistics; angle count and range; atoms per element and extent; HDF5 results.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "aet/core/build_config.hpp"
#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/hdf5_result.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "recon/projector_detail.hpp"

namespace aet::cli {
namespace {

enum class FileKind { mrc, angles, xyz, hdf5 };

std::string lower_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext;
}

FileKind detect(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail_file(path, "cannot open file");
  char head[212] = {};
  f.read(head, sizeof head);
  const auto got = f.gcount();
  if (got >= 8 && std::equal(head, head + 8, "\x89HDF\r\n\x1a\n")) return FileKind::hdf5;
  if (got >= 212 && std::equal(head + 208, head + 212, "MAP ")) return FileKind::mrc;
  const std::string ext = lower_extension(path);
  if (ext == "mrc" || ext == "mrcs" || ext == "st" || ext == "ali" || ext == "rec" ||
      ext == "map" || ext == "preali")
    return FileKind::mrc;
  if (ext == "xyz" || ext == "extxyz") return FileKind::xyz;
  if (ext == "tlt" || ext == "rawtlt" || ext == "txt") return FileKind::angles;
  if (ext == "h5" || ext == "hdf5" || ext == "hdf") return FileKind::hdf5;
  fail_file(path,
            "cannot tell the format (expected MRC, .tlt/.rawtlt/.txt angles, .xyz atoms "
            "or HDF5)");
}

void info_mrc(const std::string& path) {
  MrcHeader h;
  const Array3 a = read_mrc(path, &h);
  const ArrayStats s = compute_stats(a);
  const VoxelSize vs = h.voxel_size();
  const char* mode_name = h.mode == 0    ? "int8"
                          : h.mode == 1  ? "int16"
                          : h.mode == 2  ? "float32"
                          : h.mode == 6  ? "uint16"
                          : h.mode == 12 ? "float16"
                                         : "?";
  std::printf("%s: MRC%s\n", path.c_str(),
              h.nversion ? (" " + std::to_string(h.nversion)).c_str() : "");
  std::printf("  dimensions     %d x %d x %d (%s)\n", h.nx, h.ny, h.nz,
              h.is_stack() ? "image stack, ISPG 0" : "volume");
  std::printf("  mode           %d (%s, %s-endian)\n", h.mode, mode_name,
              h.big_endian ? "big" : "little");
  std::printf("  voxel size     %.4f %.4f %.4f A\n", vs.x, vs.y, vs.z);
  std::printf("  origin         %.3f %.3f %.3f A\n", h.origin[0], h.origin[1], h.origin[2]);
  std::printf("  data min/max   %.6g / %.6g\n", s.min, s.max);
  std::printf("  data mean/rms  %.6g / %.6g\n", s.mean, s.rms);
  std::printf("  header stats   min %.6g max %.6g mean %.6g rms %.6g\n", h.dmin, h.dmax, h.dmean,
              h.rms);
  if (h.nsymbt > 0) std::printf("  ext. header    %d bytes (%s)\n", h.nsymbt, h.exttyp);
  for (const auto& l : h.labels) std::printf("  label          %s\n", l.c_str());
}

void info_angles(const std::string& path) {
  const AngleFile af = read_angles(path);
  const auto n = af.views.size();
  auto range = [&](double Euler::*m, double& lo, double& hi) {
    lo = hi = af.views.front().*m;
    for (const auto& e : af.views) lo = std::min(lo, e.*m), hi = std::max(hi, e.*m);
  };
  double tlo, thi;
  range(&Euler::theta, tlo, thi);
  std::printf("%s: %s, %zu views\n", path.c_str(),
              af.format == AngleFormat::tilt    ? "single-axis tilt angles"
              : af.format == AngleFormat::euler ? "Euler angles (phi theta psi)"
                                                : "view geometry (phi theta psi shift_x shift_y)",
              n);
  std::printf("  tilt (theta)   %.3f .. %.3f deg", tlo, thi);
  if (n > 1) std::printf(", mean step %.3f deg", (thi - tlo) / static_cast<double>(n - 1));
  std::printf("\n");
  if (af.format != AngleFormat::tilt) {
    double plo, phi, slo, shi;
    range(&Euler::phi, plo, phi);
    range(&Euler::psi, slo, shi);
    std::printf("  phi            %.3f .. %.3f deg\n  psi            %.3f .. %.3f deg\n", plo, phi,
                slo, shi);
  }
  if (af.format == AngleFormat::geometry) {
    double smax = 0;
    for (const auto& s : af.shifts) smax = std::max(smax, s.norm());
    std::printf("  shifts         up to %.3f A\n", smax);
  }
}

void info_xyz(const std::string& path) {
  const AtomModel m = read_xyz(path);
  std::printf("%s: %zu atoms\n", path.c_str(), m.size());
  std::map<std::string, std::size_t> counts;
  for (const auto& s : m.species) ++counts[s];
  for (const auto& kv : counts) std::printf("  %-4s %zu\n", kv.first.c_str(), kv.second);
  if (m.size() > 0) {
    Vec3 lo = m.positions.front(), hi = lo, sum = Vec3::Zero();
    double rmax = 0;
    for (const auto& p : m.positions) {
      lo = lo.cwiseMin(p);
      hi = hi.cwiseMax(p);
      sum += p;
    }
    const Vec3 c = sum / static_cast<double>(m.size());
    for (const auto& p : m.positions) rmax = std::max(rmax, (p - c).norm());
    std::printf(
        "  extent x       %.3f .. %.3f A\n  extent y       %.3f .. %.3f A\n"
        "  extent z       %.3f .. %.3f A\n",
        lo.x(), hi.x(), lo.y(), hi.y(), lo.z(), hi.z());
    std::printf("  centroid       %.3f %.3f %.3f A, radius %.3f A\n", c.x(), c.y(), c.z(), rmax);
  }
  for (const auto& p : m.properties) std::printf("  property       %s\n", p.first.c_str());
  for (const auto& kv : m.info) std::printf("  %-14s %s\n", kv.first.c_str(), kv.second.c_str());
}

void info_hdf5(const std::string& path) {
  const ResultSummary s = read_result_summary(path);
  std::printf("%s: HDF5 result, %zu datasets\n", path.c_str(), s.datasets.size());
  for (const auto& d : s.datasets) {
    std::string dims;
    for (auto v : d.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(v);
    std::printf("  %-30s %-8s %s\n", d.name.c_str(), d.type.c_str(), dims.c_str());
  }
  for (const auto& kv : s.attributes)
    std::printf("  @%-29s %s\n", kv.first.c_str(), kv.second.c_str());
}

void info_devices() {
  std::printf("aet %s, built %s CUDA\n", AET_VERSION, built_with_cuda() ? "with" : "without");
  std::printf("  cpu: %d threads, projector walk %s\n", num_threads(),
              detail::cpu_projector_walk().c_str());
  const auto devices = cuda_devices();
  if (devices.empty()) std::printf("  no CUDA device visible: computing on the CPU\n");
  for (const auto& d : devices)
    std::printf("  cuda:%d  %s, compute %d.%d, %d SMs, %.1f GiB (%.1f free)\n", d.index,
                d.name.c_str(), d.major, d.minor, d.multiprocessors,
                static_cast<double>(d.total_memory) / (1 << 30),
                static_cast<double>(d.free_memory) / (1 << 30));
}

}  // namespace

int run_info(const Invocation& inv) {
  po::options_description desc("Options");
  desc.add_options()("files", po::value<std::vector<std::string>>()->value_name("FILE"),
                     "files to describe")("devices", "list the compute devices and exit");
  add_common_options(desc, false);
  po::positional_options_description pos;
  pos.add("files", -1);
  Preamble pre;
  pre.synopsis = "FILE... | --devices";
  pre.about =
      "Prints what a file holds. MRC: dimensions, mode, voxel size, origin, data "
      "min/max/mean/rms. Angle files: format, count and range. Atom models (XYZ): "
      "count per element and extent. HDF5 results: datasets and provenance.";
  pre.positional = &pos;
  const Parsed p = parse_or_help(inv, desc, pre);
  if (p.help) return 0;
  if (p.vm.count("devices")) {
    info_devices();
    return 0;
  }
  if (!p.vm.count("files")) fail_input("no file given (aet info FILE...)");
  int status = 0;
  for (const auto& path : p.vm["files"].as<std::vector<std::string>>()) {
    try {
      switch (detect(path)) {
        case FileKind::mrc:
          info_mrc(path);
          break;
        case FileKind::angles:
          info_angles(path);
          break;
        case FileKind::xyz:
          info_xyz(path);
          break;
        case FileKind::hdf5:
          info_hdf5(path);
          break;
      }
    } catch (const InputError& e) {
      // Describe the other files, then fail: one bad file must not hide the rest.
      std::fprintf(stderr, "aet info: error: %s\n", e.what());
      status = 2;
    }
  }
  return status;
}

}  // namespace aet::cli
