// MRC2014 reading and writing: every supported mode, both byte orders, IMOD quirks, files made
// by Python's mrcfile, validation of our output by mrcfile, and every kind of bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/mrc.hpp"
#include "support/test_support.hpp"

namespace aet {
namespace {

using test::TempDir;

// A hand-made MRC header, built byte by byte so the tests do not share code with the reader.
struct Spec {
  std::int32_t nx = 2, ny = 2, nz = 1, mode = 2;
  std::int32_t mx = -1, my = -1, mz = -1;  // -1: same as n
  float cella[3] = {0, 0, 0};
  std::int32_t mapc = 1, mapr = 2, maps = 3;
  std::int32_t ispg = 1, nsymbt = 0;
  float origin[3] = {0, 0, 0};
  bool big = false;
  unsigned char machst[2] = {0x44, 0x44};
  bool stamp = true;  // write machst (else leave zeros)
  bool imod = false;
  std::int32_t imod_flags = 0;
  std::vector<std::string> labels;
};

class Bytes {
 public:
  explicit Bytes(bool big) : big_(big) {}
  std::vector<char> b;
  void u32(std::uint32_t v) {
    const unsigned char le[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                                 static_cast<unsigned char>(v >> 16),
                                 static_cast<unsigned char>(v >> 24)};
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(big_ ? le[3 - i] : le[i]));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void f32(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    u32(u);
  }
  void u16(std::uint16_t v) {
    const unsigned char lo = static_cast<unsigned char>(v), hi = static_cast<unsigned char>(v >> 8);
    b.push_back(static_cast<char>(big_ ? hi : lo));
    b.push_back(static_cast<char>(big_ ? lo : hi));
  }
  void i16(std::int16_t v) { u16(static_cast<std::uint16_t>(v)); }
  void byte(std::uint8_t v) { b.push_back(static_cast<char>(v)); }

 private:
  bool big_;
};

std::vector<char> header(const Spec& s) {
  Bytes h(s.big);
  h.i32(s.nx);
  h.i32(s.ny);
  h.i32(s.nz);
  h.i32(s.mode);
  for (int i = 0; i < 3; ++i) h.i32(0);  // nxstart...
  h.i32(s.mx < 0 ? s.nx : s.mx);
  h.i32(s.my < 0 ? s.ny : s.my);
  h.i32(s.mz < 0 ? s.nz : s.mz);
  for (float c : s.cella) h.f32(c);
  for (int i = 0; i < 3; ++i) h.f32(90.0f);
  h.i32(s.mapc);
  h.i32(s.mapr);
  h.i32(s.maps);
  h.f32(0);  // dmin
  h.f32(0);  // dmax
  h.f32(0);  // dmean
  h.i32(s.ispg);
  h.i32(s.nsymbt);  // byte 92
  // extra: 100 bytes from 96; exttyp at 104, nversion at 108, imodStamp at 152, imodFlags at 156
  while (h.b.size() < 104) h.byte(0);
  for (char c : std::string("MRCO")) h.byte(static_cast<std::uint8_t>(c));
  h.i32(20140);
  while (h.b.size() < 152) h.byte(0);
  h.i32(s.imod ? 1146047817 : 0);
  h.i32(s.imod_flags);
  while (h.b.size() < 196) h.byte(0);
  for (float o : s.origin) h.f32(o);
  for (char c : std::string("MAP ")) h.byte(static_cast<std::uint8_t>(c));
  if (s.stamp) {
    h.byte(s.machst[0]);
    h.byte(s.machst[1]);
  } else {
    h.byte(0);
    h.byte(0);
  }
  h.byte(0);
  h.byte(0);
  h.f32(0);  // rms
  h.i32(static_cast<std::int32_t>(s.labels.size()));
  for (const auto& l : s.labels) {
    std::string p = l;
    p.resize(80, ' ');
    for (char c : p) h.byte(static_cast<std::uint8_t>(c));
  }
  while (h.b.size() < 1024) h.byte(0);
  EXPECT_EQ(h.b.size(), 1024u);
  return h.b;
}

std::vector<char> concat(std::vector<char> a, const std::vector<char>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Array3 ramp(std::int64_t nx, std::int64_t ny, std::int64_t nz) {
  Array3 a(nx, ny, nz);
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x)
        a(x, y, z) = static_cast<float>(0.5 * x - 1.25 * y + 3.0 * z + 0.125 * x * y);
  return a;
}

std::string python() {
  return AET_TEST_PYTHON;
}

TEST(Mrc, RoundTripVolume) {
  TempDir dir;
  Array3 a = ramp(7, 5, 4);
  a.voxel_size = {0.4, 0.4, 0.4};
  a.origin[0] = 1.5;
  a.origin[1] = -2.0;
  a.origin[2] = 3.25;
  const std::string path = dir.file("vol.mrc");
  write_mrc(path, a, MrcKind::volume, {"first label", "", "second label"});
  MrcHeader h;
  const Array3 b = read_mrc(path, &h);
  ASSERT_EQ(b.nx(), 7);
  ASSERT_EQ(b.ny(), 5);
  ASSERT_EQ(b.nz(), 4);
  EXPECT_EQ(b.vector(), a.vector());
  EXPECT_NEAR(b.voxel_size.x, 0.4, 1e-6);
  EXPECT_NEAR(b.voxel_size.y, 0.4, 1e-6);
  EXPECT_NEAR(b.voxel_size.z, 0.4, 1e-6);
  EXPECT_DOUBLE_EQ(b.origin[0], 1.5);
  EXPECT_DOUBLE_EQ(b.origin[1], -2.0);
  EXPECT_DOUBLE_EQ(b.origin[2], 3.25);
  EXPECT_EQ(h.ispg, 1);
  EXPECT_FALSE(h.is_stack());
  EXPECT_EQ(h.mode, 2);
  EXPECT_EQ(h.mx, 7);
  EXPECT_EQ(h.mz, 4);
  EXPECT_EQ(h.nversion, 20141);
  EXPECT_TRUE(h.has_map_id);
  EXPECT_FALSE(h.big_endian);
  ASSERT_EQ(h.labels.size(), 2u);  // the blank label is dropped
  EXPECT_EQ(h.labels[0], "first label");
  EXPECT_EQ(h.labels[1], "second label");
  const ArrayStats s = compute_stats(a);
  EXPECT_FLOAT_EQ(h.dmin, static_cast<float>(s.min));
  EXPECT_FLOAT_EQ(h.dmax, static_cast<float>(s.max));
  EXPECT_NEAR(h.dmean, s.mean, 1e-5);
  EXPECT_NEAR(h.rms, s.rms, 1e-5);
  EXPECT_EQ(read_mrc_header(path).nx, 7);
}

TEST(Mrc, RoundTripStack) {
  TempDir dir;
  Array3 a = ramp(6, 8, 3);
  a.voxel_size = {0.35, 0.35, 0.35};
  const std::string path = dir.file("stack.mrc");
  write_mrc(path, a, MrcKind::stack);
  MrcHeader h;
  const Array3 b = read_mrc(path, &h);
  EXPECT_EQ(b.vector(), a.vector());
  EXPECT_EQ(h.ispg, 0);
  EXPECT_TRUE(h.is_stack());
  EXPECT_EQ(h.mz, 1);
  EXPECT_NEAR(h.cella[2], 0.35, 1e-6);
  EXPECT_NEAR(b.voxel_size.x, 0.35, 1e-6);
  EXPECT_NEAR(b.voxel_size.y, 0.35, 1e-6);
  EXPECT_NEAR(b.voxel_size.z, 0.35, 1e-6);
  EXPECT_TRUE(h.labels.empty());
}

TEST(Mrc, NoTemporaryFileRemainsAfterWrite) {
  TempDir dir;
  write_mrc(dir.file("a.mrc"), ramp(3, 3, 3), MrcKind::volume);
  write_mrc(dir.file("a.mrc"), ramp(4, 3, 3), MrcKind::volume);  // overwrite in place
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"a.mrc"});
  EXPECT_EQ(read_mrc(dir.file("a.mrc")).nx(), 4);
}

TEST(Mrc, LargeFileCrossesReadChunks) {
  TempDir dir;
  Array3 a(256, 256, 40);  // 10 MiB of float32: more than one 8 MiB chunk
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(i % 9973) * 0.5f;
  write_mrc(dir.file("big.mrc"), a, MrcKind::stack);
  const Array3 b = read_mrc(dir.file("big.mrc"));
  EXPECT_EQ(b.vector(), a.vector());
}

TEST(Mrc, Mode0SignedBytes) {
  TempDir dir;
  Spec s;
  s.mode = 0;
  Bytes d(false);
  for (std::uint8_t v :
       {std::uint8_t(0xfd), std::uint8_t(100), std::uint8_t(0x80), std::uint8_t(0x7f)})
    d.byte(v);
  test::write_bytes(dir.file("m0.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("m0.mrc"));
  EXPECT_EQ(a.vector(), (std::vector<float>{-3, 100, -128, 127}));
}

TEST(Mrc, Mode0ImodUnsignedUnlessFlagged) {
  TempDir dir;
  Spec s;
  s.mode = 0;
  s.imod = true;
  s.imod_flags = 0;  // IMOD without the "signed bytes" flag: unsigned
  Bytes d(false);
  for (std::uint8_t v : {std::uint8_t(200), std::uint8_t(0), std::uint8_t(255), std::uint8_t(7)})
    d.byte(v);
  test::write_bytes(dir.file("imod.mrc"), concat(header(s), d.b));
  EXPECT_EQ(read_mrc(dir.file("imod.mrc")).vector(), (std::vector<float>{200, 0, 255, 7}));
  s.imod_flags = 1;  // flagged signed
  test::write_bytes(dir.file("imod_signed.mrc"), concat(header(s), d.b));
  EXPECT_EQ(read_mrc(dir.file("imod_signed.mrc")).vector(), (std::vector<float>{-56, 0, -1, 7}));
}

TEST(Mrc, Mode1Int16) {
  TempDir dir;
  Spec s;
  s.mode = 1;
  Bytes d(false);
  for (std::int16_t v :
       {std::int16_t(-30000), std::int16_t(5), std::int16_t(32767), std::int16_t(-1)})
    d.i16(v);
  test::write_bytes(dir.file("m1.mrc"), concat(header(s), d.b));
  EXPECT_EQ(read_mrc(dir.file("m1.mrc")).vector(), (std::vector<float>{-30000, 5, 32767, -1}));
}

TEST(Mrc, Mode2Float32) {
  TempDir dir;
  Spec s;
  s.nx = 3;
  s.ny = 1;
  s.nz = 2;
  Bytes d(false);
  for (float v : {1.5f, -2.25f, 1e-20f, 3e20f, 0.0f, -7.0f}) d.f32(v);
  test::write_bytes(dir.file("m2.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("m2.mrc"));
  EXPECT_EQ(a.nx(), 3);
  EXPECT_EQ(a.nz(), 2);
  EXPECT_EQ(a.vector(), (std::vector<float>{1.5f, -2.25f, 1e-20f, 3e20f, 0.0f, -7.0f}));
  EXPECT_FLOAT_EQ(a(2, 0, 1), -7.0f);
}

TEST(Mrc, Mode6Uint16) {
  TempDir dir;
  Spec s;
  s.mode = 6;
  Bytes d(false);
  for (std::uint16_t v :
       {std::uint16_t(65535), std::uint16_t(0), std::uint16_t(40000), std::uint16_t(12)})
    d.u16(v);
  test::write_bytes(dir.file("m6.mrc"), concat(header(s), d.b));
  EXPECT_EQ(read_mrc(dir.file("m6.mrc")).vector(), (std::vector<float>{65535, 0, 40000, 12}));
}

TEST(Mrc, Mode12Float16IncludingSubnormals) {
  TempDir dir;
  Spec s;
  s.mode = 12;
  s.nx = 4;
  s.ny = 2;
  Bytes d(false);
  const std::uint16_t halves[8] = {0x3C00, 0xC000, 0x3800, 0x0001, 0x03FF, 0x7BFF, 0x8000, 0x3555};
  for (std::uint16_t h : halves) d.u16(h);
  test::write_bytes(dir.file("m12.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("m12.mrc"));
  EXPECT_EQ(a.data()[0], 1.0f);
  EXPECT_EQ(a.data()[1], -2.0f);
  EXPECT_EQ(a.data()[2], 0.5f);
  EXPECT_EQ(a.data()[3], std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(a.data()[4], std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(a.data()[5], 65504.0f);                  // largest finite half
  EXPECT_EQ(a.data()[6], 0.0f);
  EXPECT_TRUE(std::signbit(a.data()[6]));                    // -0
  EXPECT_EQ(a.data()[7], (1.0f + 341.0f / 1024.0f) / 4.0f);  // 0x3555 = 0.33325195
}

TEST(Mrc, Mode12InfIsRejected) {
  TempDir dir;
  Spec s;
  s.mode = 12;
  Bytes d(false);
  for (std::uint16_t h :
       {std::uint16_t(0x3C00), std::uint16_t(0x7C00), std::uint16_t(0x3C00), std::uint16_t(0x7E00)})
    d.u16(h);
  const std::string path = dir.file("m12inf.mrc");
  test::write_bytes(path, concat(header(s), d.b));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "1 NaN and 1 Inf");
}

TEST(Mrc, BigEndianFile) {
  TempDir dir;
  Spec s;
  s.big = true;
  s.machst[0] = 0x11;
  s.machst[1] = 0x11;
  s.nx = 2;
  s.ny = 1;
  s.nz = 2;
  s.cella[0] = 0.8f;
  s.cella[1] = 0.4f;
  s.cella[2] = 0.8f;
  Bytes d(true);
  for (float v : {1.0f, -2.5f, 1e6f, 0.125f}) d.f32(v);
  test::write_bytes(dir.file("be.mrc"), concat(header(s), d.b));
  MrcHeader h;
  const Array3 a = read_mrc(dir.file("be.mrc"), &h);
  EXPECT_TRUE(h.big_endian);
  EXPECT_EQ(a.vector(), (std::vector<float>{1.0f, -2.5f, 1e6f, 0.125f}));
  EXPECT_NEAR(a.voxel_size.x, 0.4, 1e-6);

  s.mode = 1;
  Bytes d1(true);
  for (std::int16_t v : {std::int16_t(-2), std::int16_t(300), std::int16_t(7), std::int16_t(1)})
    d1.i16(v);
  test::write_bytes(dir.file("be1.mrc"), concat(header(s), d1.b));
  EXPECT_EQ(read_mrc(dir.file("be1.mrc")).vector(), (std::vector<float>{-2, 300, 7, 1}));
}

TEST(Mrc, ByteOrderGuessedWhenStampMissing) {
  TempDir dir;
  Spec s;
  s.big = true;
  s.stamp = false;  // zeros, as old writers leave
  Bytes d(true);
  for (float v : {4.0f, 3.0f, 2.0f, 1.0f}) d.f32(v);
  test::write_bytes(dir.file("guess_be.mrc"), concat(header(s), d.b));
  MrcHeader h;
  EXPECT_EQ(read_mrc(dir.file("guess_be.mrc"), &h).vector(), (std::vector<float>{4, 3, 2, 1}));
  EXPECT_TRUE(h.big_endian);

  s.big = false;
  Bytes dl(false);
  for (float v : {4.0f, 3.0f, 2.0f, 1.0f}) dl.f32(v);
  test::write_bytes(dir.file("guess_le.mrc"), concat(header(s), dl.b));
  EXPECT_EQ(read_mrc(dir.file("guess_le.mrc"), &h).vector(), (std::vector<float>{4, 3, 2, 1}));
  EXPECT_FALSE(h.big_endian);
}

TEST(Mrc, ExtendedHeaderIsSkipped) {
  TempDir dir;
  Spec s;
  s.nsymbt = 130;
  std::vector<char> ext(130, '\x5a');
  Bytes d(false);
  for (float v : {9.0f, 8.0f, 7.0f, 6.0f}) d.f32(v);
  test::write_bytes(dir.file("ext.mrc"), concat(concat(header(s), ext), d.b));
  MrcHeader h;
  EXPECT_EQ(read_mrc(dir.file("ext.mrc"), &h).vector(), (std::vector<float>{9, 8, 7, 6}));
  EXPECT_EQ(h.nsymbt, 130);
  EXPECT_STREQ(h.exttyp, "MRCO");
}

// Bytes after the data (padding by another program, or a header describing less than the file
// holds) are not read as voxels, and the reader says so instead of staying silent.
TEST(Mrc, TrailingBytesAreIgnoredWithAWarning) {
  TempDir dir;
  Bytes d(false);
  for (float v : {1.0f, 2.0f, 3.0f, 4.0f}) d.f32(v);
  test::write_bytes(dir.file("tail.mrc"),
                    concat(concat(header(Spec{}), d.b), std::vector<char>(24, '\x7f')));
  testing::internal::CaptureStderr();
  const Array3 a = read_mrc(dir.file("tail.mrc"));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(a.vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_NE(err.find(dir.file("tail.mrc") + ": 24 bytes after the 16 bytes of data"),
            std::string::npos)
      << err;
  // A file without a tail reads without a word.
  test::write_bytes(dir.file("exact.mrc"), concat(header(Spec{}), d.b));
  testing::internal::CaptureStderr();
  read_mrc(dir.file("exact.mrc"));
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(Mrc, LabelsAreRead) {
  TempDir dir;
  Spec s;
  s.labels = {"hello world", "second"};
  Bytes d(false);
  for (int i = 0; i < 4; ++i) d.f32(1.0f);
  test::write_bytes(dir.file("lab.mrc"), concat(header(s), d.b));
  const MrcHeader h = read_mrc_header(dir.file("lab.mrc"));
  EXPECT_EQ(h.labels, (std::vector<std::string>{"hello world", "second"}));
}

TEST(Mrc, VoxelSizeFallsBackToOneAngstrom) {
  TempDir dir;
  Spec s;
  s.cella[0] = 1.0f;  // x: 0.5 A; y: cella 0 -> 1 A; z: m = 0 -> 1 A
  s.mz = 0;
  s.cella[2] = 5.0f;
  Bytes d(false);
  for (int i = 0; i < 4; ++i) d.f32(0.0f);
  test::write_bytes(dir.file("vs.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("vs.mrc"));
  EXPECT_DOUBLE_EQ(a.voxel_size.x, 0.5);
  EXPECT_DOUBLE_EQ(a.voxel_size.y, 1.0);
  EXPECT_DOUBLE_EQ(a.voxel_size.z, 1.0);
}

TEST(Mrc, OriginIsRead) {
  TempDir dir;
  Spec s;
  s.origin[0] = 10.5f;
  s.origin[1] = -3.0f;
  s.origin[2] = 0.25f;
  Bytes d(false);
  for (int i = 0; i < 4; ++i) d.f32(0.0f);
  test::write_bytes(dir.file("o.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("o.mrc"));
  EXPECT_DOUBLE_EQ(a.origin[0], 10.5);
  EXPECT_DOUBLE_EQ(a.origin[1], -3.0);
  EXPECT_DOUBLE_EQ(a.origin[2], 0.25);
}

TEST(Mrc, PermutedAxesAreReorderedToXyz) {
  TempDir dir;
  Spec s;
  // Columns run along y, rows along x: the file is 2 columns x 3 rows of one section.
  s.nx = 2;
  s.ny = 3;
  s.nz = 1;
  s.mapc = 2;
  s.mapr = 1;
  s.maps = 3;
  Bytes d(false);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c) d.f32(static_cast<float>(10 * r + c));
  test::write_bytes(dir.file("perm.mrc"), concat(header(s), d.b));
  const Array3 a = read_mrc(dir.file("perm.mrc"));
  ASSERT_EQ(a.nx(), 3);
  ASSERT_EQ(a.ny(), 2);
  ASSERT_EQ(a.nz(), 1);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c) EXPECT_EQ(a(r, c, 0), static_cast<float>(10 * r + c));
}

TEST(Mrc, PermutedAxesAcrossReadChunks) {
  TempDir dir;
  Spec s;
  s.mode = 0;
  s.nx = 3;     // sections along... columns along z
  s.ny = 2048;  // rows along x
  s.nz = 1500;  // sections along y: 9.2 MB of bytes, more than one chunk
  s.mapc = 3;
  s.mapr = 1;
  s.maps = 2;
  std::vector<char> data(static_cast<std::size_t>(s.nx) * s.ny * s.nz);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 101);
  test::write_bytes(dir.file("perm0.mrc"), concat(header(s), data));
  const Array3 a = read_mrc(dir.file("perm0.mrc"));
  ASSERT_EQ(a.nx(), 2048);
  ASSERT_EQ(a.ny(), 1500);
  ASSERT_EQ(a.nz(), 3);
  for (std::int64_t sec : {0, 1, 777, 1499})
    for (std::int64_t row : {0, 5, 2047})
      for (std::int64_t col : {0, 2}) {
        const std::size_t i = static_cast<std::size_t>((sec * 2048 + row) * 3 + col);
        EXPECT_EQ(a(row, sec, col), static_cast<float>(i % 101));
      }
}

TEST(Mrc, ReadsFilesWrittenByPythonMrcfile) {
  TempDir dir;
  const std::string f32 = dir.file("py32.mrc"), i16 = dir.file("py16.mrc");
  const std::string script =
      "import mrcfile, numpy as np\n"
      "a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3\n"
      "with mrcfile.new('" +
      f32 +
      "', overwrite=True) as m:\n"
      "    m.set_data(a)\n"
      "    m.voxel_size = 0.4\n"
      "b = (np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 12) * 1000\n"
      "with mrcfile.new('" +
      i16 +
      "', overwrite=True) as m:\n"
      "    m.set_data(b)\n"
      "    m.voxel_size = (0.3, 0.5, 0.7)\n"
      "print('ok')\n";
  test::write_text(dir.file("make.py"), script);
  const auto r = test::run_command("'" + python() + "' '" + dir.file("make.py") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Array3 a = read_mrc(f32);
  ASSERT_EQ(a.nx(), 4);
  ASSERT_EQ(a.ny(), 3);
  ASSERT_EQ(a.nz(), 2);
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(a(x, y, z), (x + 4 * y + 12 * z) * 0.5f - 3);
  EXPECT_NEAR(a.voxel_size.x, 0.4, 1e-6);
  EXPECT_NEAR(a.voxel_size.z, 0.4, 1e-6);
  MrcHeader h;
  const Array3 b = read_mrc(i16, &h);
  EXPECT_EQ(h.mode, 1);
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(b(x, y, z), (x + 4 * y + 12 * z - 12) * 1000.0f);
  EXPECT_NEAR(b.voxel_size.x, 0.3, 1e-6);
  EXPECT_NEAR(b.voxel_size.y, 0.5, 1e-6);
  EXPECT_NEAR(b.voxel_size.z, 0.7, 1e-6);
}

TEST(Mrc, OurFilesPassMrcfileValidate) {
  TempDir dir;
  Array3 v = ramp(9, 7, 5);
  v.voxel_size = {0.4, 0.4, 0.4};
  Array3 st = ramp(16, 12, 6);
  st.voxel_size = {0.3216, 0.3216, 0.3216};
  Array3 flat(4, 4, 2, 1.5f);  // constant data: rms 0
  write_mrc(dir.file("vol.mrc"), v, MrcKind::volume, {"aet test volume"});
  write_mrc(dir.file("stack.mrc"), st, MrcKind::stack, {"aet", "test stack"});
  write_mrc(dir.file("flat.mrc"), flat, MrcKind::volume);
  for (const char* name : {"vol.mrc", "stack.mrc", "flat.mrc"}) {
    const auto r = test::run_command("'" + python() +
                                     "' -c \"import mrcfile, sys; "
                                     "ok = mrcfile.validate(sys.argv[1]); print('VALID' if ok "
                                     "else 'INVALID'); sys.exit(0 if ok else 1)\" '" +
                                     dir.file(name) + "'");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.output;
    EXPECT_NE(r.output.find("VALID"), std::string::npos) << r.output;
  }
  // mrcfile sees the same voxel size, ISPG and data orientation.
  const auto r =
      test::run_command("'" + python() +
                        "' -c \"import mrcfile, sys; m = mrcfile.open(sys.argv[1]); "
                        "print(m.header.ispg, m.data.shape, round(float(m.voxel_size.x), 4), "
                        "round(float(m.voxel_size.z), 4), float(m.data[2, 1, 0]))\" '" +
                        dir.file("stack.mrc") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0 (6, 12, 16) 0.3216 0.3216"), std::string::npos) << r.output;
  EXPECT_NEAR(std::stod(r.output.substr(r.output.rfind(' ') + 1)), st(0, 1, 2), 1e-6) << r.output;
}

#if AET_HAVE_SHARED_DATA
TEST(Mrc, ReadsSharedRealData) {
  const std::string path = std::string(AET_SHARED_DATA) + "/ta_film_example/projections.mrc";
  ASSERT_TRUE(test::file_exists(path)) << "shared data file missing: " << path;
  MrcHeader h;
  const Array3 a = read_mrc(path, &h);
  EXPECT_EQ(a.nx(), 61);
  EXPECT_EQ(a.ny(), 61);
  EXPECT_EQ(a.nz(), 59);
  EXPECT_NEAR(a.voxel_size.x, 0.3216, 1e-5);
}
#endif

// ---- bad input ---------------------------------------------------------------------------

TEST(MrcBadInput, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nope.mrc");
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "not found");
  test::expect_input_error(
      path, [&] { read_mrc_header(path); }, "not found");
}

TEST(MrcBadInput, EmptyFile) {
  TempDir dir;
  const std::string path = dir.file("empty.mrc");
  test::write_bytes(path, {});
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "truncated header");
}

TEST(MrcBadInput, TruncatedHeader) {
  TempDir dir;
  const std::string path = dir.file("short.mrc");
  std::vector<char> h = header(Spec{});
  h.resize(500);
  test::write_bytes(path, h);
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "truncated header");
}

TEST(MrcBadInput, TruncatedData) {
  TempDir dir;
  const std::string path = dir.file("trunc.mrc");
  Spec s;
  s.nx = 10;
  s.ny = 10;
  s.nz = 10;
  test::write_bytes(path, concat(header(s), std::vector<char>(3000, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "truncated: expected 4000 bytes of data, found 3000");
  test::expect_input_error(
      path, [&] { read_mrc_header(path); }, "truncated");
}

TEST(MrcBadInput, ExtendedHeaderPastEnd) {
  TempDir dir;
  const std::string path = dir.file("ext.mrc");
  Spec s;
  s.nsymbt = 100000;
  test::write_bytes(path, concat(header(s), std::vector<char>(16, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "truncated");
}

TEST(MrcBadInput, NegativeAndZeroDimensions) {
  TempDir dir;
  Spec s;
  s.ny = -4;
  const std::string path = dir.file("neg.mrc");
  test::write_bytes(path, concat(header(s), std::vector<char>(64, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "positive");
  s.ny = 0;
  test::write_bytes(path, concat(header(s), std::vector<char>(64, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "positive");
}

TEST(MrcBadInput, OverflowingDimensions) {
  TempDir dir;
  Spec s;
  s.nx = s.ny = s.nz = std::numeric_limits<std::int32_t>::max();
  const std::string path = dir.file("huge.mrc");
  test::write_bytes(path, concat(header(s), std::vector<char>(64, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "overflow");
  // Large but representable: caught by the size check, before any allocation.
  s.nx = s.ny = s.nz = 100000;
  test::write_bytes(path, concat(header(s), std::vector<char>(64, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "truncated");
}

TEST(MrcBadInput, UnsupportedModes) {
  TempDir dir;
  for (int mode : {3, 4, 101, 7, -1}) {
    Spec s;
    s.mode = mode;
    const std::string path = dir.file("mode" + std::to_string(mode) + ".mrc");
    test::write_bytes(path, concat(header(s), std::vector<char>(64, 0)));
    test::expect_input_error(
        path, [&] { read_mrc(path); }, "supported modes are 0");
  }
}

TEST(MrcBadInput, NaNAndInfInData) {
  TempDir dir;
  Spec s;
  s.nx = 3;
  s.ny = 2;
  {
    Bytes d(false);
    for (float v : {1.0f, 2.0f, 3.0f, std::numeric_limits<float>::quiet_NaN(), 5.0f,
                    std::numeric_limits<float>::quiet_NaN()})
      d.f32(v);
    const std::string path = dir.file("nan.mrc");
    test::write_bytes(path, concat(header(s), d.b));
    test::expect_input_error(
        path, [&] { read_mrc(path); }, "2 NaN and 0 Inf");
    test::expect_input_error(
        path, [&] { read_mrc(path); }, "index 3 (x=0, y=1, z=0)");
  }
  {
    Bytes d(false);
    for (float v : {1.0f, -std::numeric_limits<float>::infinity(), 3.0f, 4.0f, 5.0f, 6.0f})
      d.f32(v);
    const std::string path = dir.file("inf.mrc");
    test::write_bytes(path, concat(header(s), d.b));
    test::expect_input_error(
        path, [&] { read_mrc(path); }, "0 NaN and 1 Inf");
  }
}

TEST(MrcBadInput, AxisMappingNotAPermutation) {
  TempDir dir;
  Spec s;
  s.mapc = 1;
  s.mapr = 1;
  s.maps = 3;
  const std::string path = dir.file("map.mrc");
  test::write_bytes(path, concat(header(s), std::vector<char>(16, 0)));
  test::expect_input_error(
      path, [&] { read_mrc(path); }, "permutation");
}

TEST(MrcBadInput, DirectoryInsteadOfFile) {
  TempDir dir;
  test::expect_input_error(dir.path(), [&] { read_mrc(dir.path()); });
}

TEST(MrcWrite, MissingDirectoryThrowsAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/out.mrc");
  test::expect_input_error(path, [&] { write_mrc(path, ramp(2, 2, 2), MrcKind::volume); });
  EXPECT_FALSE(test::file_exists(path));
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{});
}

TEST(MrcWrite, RefusesNonFiniteAndEmptyData) {
  TempDir dir;
  Array3 a(2, 2, 1, 1.0f);
  a(1, 1, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(write_mrc(dir.file("nan.mrc"), a, MrcKind::volume), InternalError);
  EXPECT_THROW(write_mrc(dir.file("empty.mrc"), Array3(), MrcKind::volume), InternalError);
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{});
}

TEST(MrcWrite, LongLabelsAreCutAndAtMostTenKept) {
  TempDir dir;
  std::vector<std::string> labels;
  for (int i = 0; i < 12; ++i) labels.push_back("label " + std::to_string(i));
  labels[0] = std::string(100, 'x');
  write_mrc(dir.file("l.mrc"), ramp(2, 2, 2), MrcKind::volume, labels);
  const MrcHeader h = read_mrc_header(dir.file("l.mrc"));
  ASSERT_EQ(h.labels.size(), 10u);
  EXPECT_EQ(h.labels[0], std::string(80, 'x'));
  EXPECT_EQ(h.labels[9], "label 9");
}

}  // namespace
}  // namespace aet
