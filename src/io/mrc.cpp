#include "aet/io/mrc.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/atomic_file.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

constexpr std::size_t kHeaderBytes = 1024;
constexpr std::int32_t kImodStamp = 1146047817;  // "IMOD"
constexpr std::int32_t kImodSignedBytes = 1;     // imodFlags bit: mode-0 bytes are signed
// Raw bytes converted per read or write call: bounds the extra memory to a few MiB.
constexpr std::size_t kChunkBytes = std::size_t(8) << 20;

// Byte offsets of the MRC2014 header fields.
enum Offset : std::size_t {
  kNx = 0,
  kMode = 12,
  kNxStart = 16,
  kMx = 28,
  kCella = 40,
  kCellb = 52,
  kMapc = 64,
  kDmin = 76,
  kDmax = 80,
  kDmean = 84,
  kIspg = 88,
  kNsymbt = 92,
  kExttyp = 104,
  kNversion = 108,
  kImodStampAt = 152,
  kImodFlagsAt = 156,
  kOrigin = 196,
  kMap = 208,
  kMachst = 212,
  kRms = 216,
  kNlabl = 220,
  kLabels = 224,
};

// Explicit byte assembly keeps the reader independent of the host byte order.
std::uint32_t get_u32(const unsigned char* p, bool big) {
  if (big)
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           std::uint32_t(p[3]);
  return (std::uint32_t(p[3]) << 24) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[1]) << 8) |
         std::uint32_t(p[0]);
}
std::uint16_t get_u16(const unsigned char* p, bool big) {
  return big ? std::uint16_t((p[0] << 8) | p[1]) : std::uint16_t((p[1] << 8) | p[0]);
}
std::int32_t get_i32(const unsigned char* p, bool big) {
  return static_cast<std::int32_t>(get_u32(p, big));
}
float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
float get_f32(const unsigned char* p, bool big) {
  return bits_to_float(get_u32(p, big));
}

void put_u32(unsigned char* p, std::uint32_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
  p[2] = static_cast<unsigned char>(v >> 16);
  p[3] = static_cast<unsigned char>(v >> 24);
}
void put_i32(unsigned char* p, std::int32_t v) {
  put_u32(p, static_cast<std::uint32_t>(v));
}
void put_f32(unsigned char* p, float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  put_u32(p, u);
}

// IEEE 754 binary16 to binary32, exact for every input (subnormals, Inf and NaN included).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exactly representable as a normal float32.
    const float mag = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -mag : mag;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

int bytes_per_voxel(std::int32_t mode) {
  switch (mode) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 4;
    case 6:
      return 2;
    case 12:
      return 2;
    default:
      return 0;
  }
}

const char* kSupportedModes =
    "supported modes are 0 (int8), 1 (int16), 2 (float32), 6 (uint16) and 12 (float16)";

std::string mode_description(std::int32_t mode) {
  switch (mode) {
    case 3:
      return " (complex int16)";
    case 4:
      return " (complex float32)";
    case 101:
      return " (4-bit packed)";
    default:
      return "";
  }
}

bool plausible(const unsigned char* h, bool big) {
  const std::int32_t mode = get_i32(h + kMode, big);
  const bool mode_ok = mode == 0 || mode == 1 || mode == 2 || mode == 3 || mode == 4 || mode == 6 ||
                       mode == 12 || mode == 101;
  if (!mode_ok) return false;
  for (int i = 0; i < 3; ++i) {
    const std::int32_t n = get_i32(h + kNx + 4 * i, big);
    if (n <= 0 || n > (1 << 24)) return false;
  }
  return true;
}

// MACHST decides the byte order; a missing or foreign stamp (old writers leave zeros) or one
// contradicted by the header itself falls back to the order that makes mode and sizes sane.
bool detect_big_endian(const unsigned char* h) {
  const unsigned char a = h[kMachst], b = h[kMachst + 1];
  bool big = false;
  bool stamped = false;
  if (a == 0x44 && (b == 0x44 || b == 0x41)) {
    stamped = true;
  } else if (a == 0x11 && b == 0x11) {
    big = true;
    stamped = true;
  }
  const bool little_ok = plausible(h, false), big_ok = plausible(h, true);
  if (stamped) {
    if (big ? (!big_ok && little_ok) : (!little_ok && big_ok)) return !big;
    return big;
  }
  if (big_ok && !little_ok) return true;
  return false;
}

std::string trim_label(const unsigned char* p) {
  std::string s(reinterpret_cast<const char*>(p), 80);
  const auto nul = s.find('\0');
  if (nul != std::string::npos) s.resize(nul);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

std::uint64_t file_size_or_fail(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail_file(path, "file not found");
  if (fs::is_directory(st)) fail_file(path, "is a directory, not an MRC file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail_file(path, "cannot determine the file size: " + ec.message());
  return size;
}

void open_or_fail(std::ifstream& in, const std::string& path) {
  errno = 0;
  in.open(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    fail_file(path, std::string("cannot open for reading") +
                        (err ? std::string(": ") + std::strerror(err) : std::string()));
  }
}

struct ParsedHeader {
  MrcHeader h;
  std::uint64_t n = 0;           // voxel count
  std::uint64_t data_bytes = 0;  // bytes of voxel data the header promises
  bool unsigned_bytes = false;   // mode 0 stored unsigned (IMOD convention)
  std::uint64_t trailing = 0;    // bytes after the data (ignored, with a warning)
};

ParsedHeader parse_header(const std::string& path, std::ifstream& in) {
  const std::uint64_t size = file_size_or_fail(path);
  if (size < kHeaderBytes)
    fail_file(path, "truncated header: the file has " + std::to_string(size) +
                        " bytes but an MRC header needs 1024");
  unsigned char b[kHeaderBytes];
  in.read(reinterpret_cast<char*>(b), kHeaderBytes);
  if (in.gcount() != static_cast<std::streamsize>(kHeaderBytes))
    fail_file(path, "cannot read the 1024-byte header");

  ParsedHeader p;
  MrcHeader& h = p.h;
  const bool big = detect_big_endian(b);
  // Neither byte order gives a sane mode and sizes: most likely not an MRC file at all.
  const std::string hint =
      plausible(b, false) || plausible(b, true) ? "" : " (is this really an MRC file?)";
  h.big_endian = big;
  h.nx = get_i32(b + kNx, big);
  h.ny = get_i32(b + kNx + 4, big);
  h.nz = get_i32(b + kNx + 8, big);
  h.mode = get_i32(b + kMode, big);
  h.mx = get_i32(b + kMx, big);
  h.my = get_i32(b + kMx + 4, big);
  h.mz = get_i32(b + kMx + 8, big);
  for (int i = 0; i < 3; ++i) {
    h.cella[i] = get_f32(b + kCella + 4 * i, big);
    h.origin[i] = get_f32(b + kOrigin + 4 * i, big);
  }
  h.mapc = get_i32(b + kMapc, big);
  h.mapr = get_i32(b + kMapc + 4, big);
  h.maps = get_i32(b + kMapc + 8, big);
  h.dmin = get_f32(b + kDmin, big);
  h.dmax = get_f32(b + kDmax, big);
  h.dmean = get_f32(b + kDmean, big);
  h.rms = get_f32(b + kRms, big);
  h.ispg = get_i32(b + kIspg, big);
  h.nsymbt = get_i32(b + kNsymbt, big);
  std::memcpy(h.exttyp, b + kExttyp, 4);
  h.exttyp[4] = 0;
  h.nversion = get_i32(b + kNversion, big);
  h.has_map_id = std::memcmp(b + kMap, "MAP ", 4) == 0;
  const std::int32_t nlabl = std::clamp(get_i32(b + kNlabl, big), 0, 10);
  for (int i = 0; i < nlabl; ++i) h.labels.push_back(trim_label(b + kLabels + 80 * i));

  if (h.nx <= 0 || h.ny <= 0 || h.nz <= 0)
    fail_file(path, "invalid dimensions nx=" + std::to_string(h.nx) +
                        " ny=" + std::to_string(h.ny) + " nz=" + std::to_string(h.nz) +
                        " (all must be positive)" + hint);
  const int bpv = bytes_per_voxel(h.mode);
  if (bpv == 0)
    fail_file(path, "unsupported MRC mode " + std::to_string(h.mode) + mode_description(h.mode) +
                        "; " + kSupportedModes + hint);
  const int m[3] = {h.mapc, h.mapr, h.maps};
  const bool perm = m[0] >= 1 && m[0] <= 3 && m[1] >= 1 && m[1] <= 3 && m[2] >= 1 && m[2] <= 3 &&
                    m[0] != m[1] && m[1] != m[2] && m[0] != m[2];
  if (!perm)
    fail_file(path, "axis mapping mapc/mapr/maps = " + std::to_string(m[0]) + " " +
                        std::to_string(m[1]) + " " + std::to_string(m[2]) +
                        " is not a permutation of 1 2 3");
  if (h.nsymbt < 0)
    fail_file(path, "negative extended header size NSYMBT=" + std::to_string(h.nsymbt));
  try {
    p.n = checked_product(h.nx, h.ny, h.nz);
  } catch (const InputError& e) {
    fail_file(path, std::string("header dimensions too large: ") + e.what());
  }
  p.data_bytes = p.n * static_cast<std::uint64_t>(bpv);  // n <= PTRDIFF_MAX/4: no overflow
  const std::uint64_t after_header = size - kHeaderBytes;
  if (static_cast<std::uint64_t>(h.nsymbt) > after_header)
    fail_file(path, "truncated: the extended header claims " + std::to_string(h.nsymbt) +
                        " bytes but only " + std::to_string(after_header) +
                        " bytes follow the main header");
  const std::uint64_t available = after_header - static_cast<std::uint64_t>(h.nsymbt);
  if (available < p.data_bytes)
    fail_file(path, "truncated: expected " + std::to_string(p.data_bytes) +
                        " bytes of data, found " + std::to_string(available));
  p.trailing = available - p.data_bytes;
  if (h.mode == 0)
    p.unsigned_bytes = get_i32(b + kImodStampAt, big) == kImodStamp &&
                       (get_i32(b + kImodFlagsAt, big) & kImodSignedBytes) == 0;
  return p;
}

// Converts `count` stored voxels starting at `src` to float.
void convert(const unsigned char* src, std::size_t count, std::int32_t mode, bool big,
             bool unsigned_bytes, float* dst) {
  switch (mode) {
    case 0:
      if (unsigned_bytes)
        for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
      else
        for (std::size_t i = 0; i < count; ++i)
          dst[i] = static_cast<float>(static_cast<std::int8_t>(src[i]));
      break;
    case 1:
      for (std::size_t i = 0; i < count; ++i)
        dst[i] = static_cast<float>(static_cast<std::int16_t>(get_u16(src + 2 * i, big)));
      break;
    case 2:
      for (std::size_t i = 0; i < count; ++i) dst[i] = get_f32(src + 4 * i, big);
      break;
    case 6:
      for (std::size_t i = 0; i < count; ++i)
        dst[i] = static_cast<float>(get_u16(src + 2 * i, big));
      break;
    case 12:
      for (std::size_t i = 0; i < count; ++i) dst[i] = half_to_float(get_u16(src + 2 * i, big));
      break;
    default:
      throw InternalError("MRC convert: unexpected mode");
  }
}

}  // namespace

VoxelSize MrcHeader::voxel_size() const {
  const float c[3] = {cella[0], cella[1], cella[2]};
  const std::int32_t m[3] = {mx, my, mz};
  double v[3];
  for (int i = 0; i < 3; ++i) {
    // Non-positive or non-finite cells are as meaningless as zero ones: same fallback.
    const bool ok = std::isfinite(c[i]) && c[i] > 0 && m[i] > 0;
    v[i] = ok ? static_cast<double>(c[i]) / m[i] : 1.0;
  }
  VoxelSize s;
  s.x = v[0];
  s.y = v[1];
  s.z = v[2];
  return s;
}

MrcHeader read_mrc_header(const std::string& path) {
  file_size_or_fail(path);
  std::ifstream in;
  open_or_fail(in, path);
  return parse_header(path, in).h;
}

Array3 read_mrc(const std::string& path, MrcHeader* header) {
  file_size_or_fail(path);
  std::ifstream in;
  open_or_fail(in, path);
  const ParsedHeader p = parse_header(path, in);
  const MrcHeader& h = p.h;
  in.seekg(static_cast<std::streamoff>(kHeaderBytes + static_cast<std::uint64_t>(h.nsymbt)));
  if (!in) fail_file(path, "cannot seek past the extended header");

  // Output dimensions along x, y, z: file axis k (column, row, section) is spatial axis map[k].
  const std::int64_t n_file[3] = {h.nx, h.ny, h.nz};
  const int map[3] = {h.mapc - 1, h.mapr - 1, h.maps - 1};
  std::int64_t d[3];
  for (int k = 0; k < 3; ++k) d[map[k]] = n_file[k];
  Array3 out(d[0], d[1], d[2]);
  const bool identity = map[0] == 0 && map[1] == 1 && map[2] == 2;
  const std::int64_t out_stride[3] = {1, d[0], d[0] * d[1]};
  const std::int64_t st[3] = {out_stride[map[0]], out_stride[map[1]], out_stride[map[2]]};

  // Other programs' padding, or a header that describes less than the file holds (a wrong size
  // or mode would also show as a scrambled image): read what the header says, and say so.
  if (p.trailing > 0)
    log_warning(path + ": " + std::to_string(p.trailing) + " bytes after the " +
                std::to_string(p.data_bytes) +
                " bytes of data the header describes are ignored (is the header's size or mode "
                "right?)");
  const int bpv = bytes_per_voxel(h.mode);
  // Sized to the data, so that a small file gets a small buffer.
  const std::size_t chunk_voxels = static_cast<std::size_t>(
      std::min<std::uint64_t>(kChunkBytes / static_cast<std::size_t>(bpv), p.n));
  std::vector<unsigned char> raw(chunk_voxels * static_cast<std::size_t>(bpv));
  std::vector<float> scratch(identity ? 0 : chunk_voxels);
  std::int64_t c = 0, r = 0, s = 0;  // file position of the next voxel (permuted layout only)
  for (std::uint64_t done = 0; done < p.n;) {
    const std::size_t count =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk_voxels, p.n - done));
    const std::streamsize bytes =
        static_cast<std::streamsize>(count * static_cast<std::size_t>(bpv));
    in.read(reinterpret_cast<char*>(raw.data()), bytes);
    if (in.gcount() != bytes)
      fail_file(path, "read error after " + std::to_string(done * bpv) + " bytes of data");
    if (identity) {
      convert(raw.data(), count, h.mode, h.big_endian, p.unsigned_bytes, out.data() + done);
    } else {
      convert(raw.data(), count, h.mode, h.big_endian, p.unsigned_bytes, scratch.data());
      for (std::size_t i = 0; i < count; ++i) {
        out.data()[c * st[0] + r * st[1] + s * st[2]] = scratch[i];
        if (++c == h.nx) {
          c = 0;
          if (++r == h.ny) {
            r = 0;
            ++s;
          }
        }
      }
    }
    done += count;
  }

  if (h.mode == 2 || h.mode == 12) {
    std::uint64_t nan = 0, inf = 0, first = 0;
    const float* v = out.data();
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (std::isfinite(v[i])) continue;
      if (nan + inf == 0) first = i;
      if (std::isnan(v[i]))
        ++nan;
      else
        ++inf;
    }
    if (nan + inf > 0) {
      const std::int64_t fx = static_cast<std::int64_t>(first % d[0]);
      const std::int64_t fy = static_cast<std::int64_t>((first / d[0]) % d[1]);
      const std::int64_t fz = static_cast<std::int64_t>(first / (d[0] * d[1]));
      fail_file(path, std::to_string(nan) + " NaN and " + std::to_string(inf) +
                          " Inf values in the data; the first at index " + std::to_string(first) +
                          " (x=" + std::to_string(fx) + ", y=" + std::to_string(fy) +
                          ", z=" + std::to_string(fz) + ")");
    }
  }

  out.voxel_size = h.voxel_size();
  for (int i = 0; i < 3; ++i) out.origin[i] = h.origin[i];
  if (header) *header = h;
  return out;
}

void write_mrc(const std::string& path, const Array3& data, MrcKind kind,
               const std::vector<std::string>& labels) {
  if (data.empty()) throw InternalError(path + ": cannot write an empty array as MRC");
  if (data.nx() > std::numeric_limits<std::int32_t>::max() ||
      data.ny() > std::numeric_limits<std::int32_t>::max() ||
      data.nz() > std::numeric_limits<std::int32_t>::max())
    throw InternalError(path + ": array too large for the 32-bit MRC dimension fields");

  // Statistics in double, two passes (mean first) so the standard deviation is accurate.
  const float* v = data.data();
  const std::size_t n = data.size();
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  double sum = 0.0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) {
      ++bad;
      continue;
    }
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
    sum += v[i];
  }
  // The reader rejects such files, so writing one would only move the failure downstream.
  if (bad > 0)
    throw InternalError(path + ": refusing to write " + std::to_string(bad) +
                        " NaN/Inf values to an MRC file");
  const double mean = sum / static_cast<double>(n);
  double ss = 0.0;
  for (std::size_t i = 0; i < n; ++i) ss += (v[i] - mean) * (v[i] - mean);
  const double stddev = std::sqrt(ss / static_cast<double>(n));

  unsigned char b[kHeaderBytes];
  std::memset(b, 0, sizeof b);
  const bool stack = kind == MrcKind::stack;
  const auto nx = static_cast<std::int32_t>(data.nx()), ny = static_cast<std::int32_t>(data.ny()),
             nz = static_cast<std::int32_t>(data.nz());
  const VoxelSize& vs = data.voxel_size;
  put_i32(b + kNx, nx);
  put_i32(b + kNx + 4, ny);
  put_i32(b + kNx + 8, nz);
  put_i32(b + kMode, 2);
  // nxstart/nystart/nzstart stay 0.
  put_i32(b + kMx, nx);
  put_i32(b + kMx + 4, ny);
  put_i32(b + kMx + 8, stack ? 1 : nz);
  put_f32(b + kCella, static_cast<float>(nx * vs.x));
  put_f32(b + kCella + 4, static_cast<float>(ny * vs.y));
  put_f32(b + kCella + 8, static_cast<float>(stack ? vs.z : nz * vs.z));
  for (int i = 0; i < 3; ++i) put_f32(b + kCellb + 4 * i, 90.0f);
  put_i32(b + kMapc, 1);
  put_i32(b + kMapc + 4, 2);
  put_i32(b + kMapc + 8, 3);
  put_f32(b + kDmin, lo);
  put_f32(b + kDmax, hi);
  put_f32(b + kDmean, static_cast<float>(mean));
  put_i32(b + kIspg, stack ? 0 : 1);
  put_i32(b + kNsymbt, 0);
  put_i32(b + kNversion, 20141);
  for (int i = 0; i < 3; ++i) put_f32(b + kOrigin + 4 * i, static_cast<float>(data.origin[i]));
  std::memcpy(b + kMap, "MAP ", 4);
  b[kMachst] = 0x44;
  b[kMachst + 1] = 0x44;
  put_f32(b + kRms, static_cast<float>(stddev));

  // Blank labels are dropped so that no empty label precedes a filled one (MRC2014 rule).
  std::int32_t nlabl = 0;
  for (const std::string& label : labels) {
    if (nlabl == 10) break;
    std::string s = label.substr(0, 80);
    for (char& ch : s)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
    if (s.find_first_not_of(' ') == std::string::npos) continue;
    s.resize(80, ' ');
    std::memcpy(b + kLabels + 80 * nlabl, s.data(), 80);
    ++nlabl;
  }
  put_i32(b + kNlabl, nlabl);

  AtomicFile f(path);
  std::ofstream& out = f.stream();
  out.write(reinterpret_cast<const char*>(b), kHeaderBytes);
  const std::size_t chunk_voxels = kChunkBytes / 4;
  std::vector<unsigned char> raw(std::min(chunk_voxels, n) * 4);
  for (std::size_t done = 0; done < n && out;) {
    const std::size_t count = std::min(chunk_voxels, n - done);
    for (std::size_t i = 0; i < count; ++i) put_f32(raw.data() + 4 * i, v[done + i]);
    out.write(reinterpret_cast<const char*>(raw.data()), static_cast<std::streamsize>(count * 4));
    done += count;
  }
  f.commit();
}

}  // namespace aet
