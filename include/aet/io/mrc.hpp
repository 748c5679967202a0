// MRC2014 reading and writing.
// Read: modes 0 (int8; unsigned for IMOD files without the signed flag), 1 (int16), 2 (float32),
// 6 (uint16), 12 (float16); little- and big-endian (MACHST, with a fallback guess for files whose
// stamp is missing); the extended header (NSYMBT bytes) is skipped; data stored with another axis
// order (mapc/mapr/maps a permutation of 1 2 3) is reordered to x, y, z. Write: mode 2,
// little-endian, voxel size in CELLA, ISPG 0 for a stack of views and 1 for a volume, correct
// statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/array.hpp"

namespace aet {

struct MrcHeader {
  std::int32_t nx = 0, ny = 0, nz = 0, mode = 2;
  std::int32_t mx = 0, my = 0, mz = 0;
  float cella[3] = {0, 0, 0};
  std::int32_t mapc = 1, mapr = 2, maps = 3;
  float dmin = 0, dmax = 0, dmean = 0, rms = 0;
  std::int32_t ispg = 0, nsymbt = 0;
  char exttyp[5] = {0, 0, 0, 0, 0};
  std::int32_t nversion = 0;
  float origin[3] = {0, 0, 0};
  bool big_endian = false;
  bool has_map_id = false;  // "MAP " at byte 208
  std::vector<std::string> labels;

  // Voxel size from CELLA / M{X,Y,Z}; 1 Angstrom along an axis whose CELLA or M is zero.
  VoxelSize voxel_size() const;
  bool is_stack() const { return ispg == 0; }
};

// Reads only the header and checks it against the file size. Throws InputError naming the file.
MrcHeader read_mrc_header(const std::string& path);

// Reads the whole file as float32 (converting from the stored mode). Rejects NaN or Inf values.
Array3 read_mrc(const std::string& path, MrcHeader* header = nullptr);

enum class MrcKind { volume, stack };

// Writes mode 2 atomically (temporary file then rename): a failure leaves no partial file.
// `labels` are up to 10 strings of at most 80 characters (longer ones are cut).
void write_mrc(const std::string& path, const Array3& data, MrcKind kind,
               const std::vector<std::string>& labels = {});

}  // namespace aet
