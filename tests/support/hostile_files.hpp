// Damaged HDF5 files for the hostile-input tests (unit and cli): the byte flips of a
// small result file, and a model file as written before weights carried checksums.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace aet::test {

struct HeapSizeFlip {
  std::string name;
  std::size_t offset;
  unsigned char from, to;
};

// The two flips, both in the 8-byte size of the global-heap string "trace" (the last
// string of the file): byte 2296 0x05 -> 0x00 (size 0: libhdf5 1.10 loops for ever in
// H5HG_read) and byte 2300 0x00 -> 0x02 (size 2^33 + 5: it crashes).
std::vector<HeapSizeFlip> heap_size_flips();

// Writes a small result file with aet's ResultWriter (provenance, a vector, three atoms, a string
// attribute), checks that the byte at flip.offset is flip.from, and sets it to flip.to.
void write_flipped_result(const std::string& path, const HeapSizeFlip& flip);

// Deletes the "sha256" attribute of every dataset of an HDF5 file.
void remove_checksums(const std::string& path);

}  // namespace aet::test
