#include "support/hostile_files.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "aet/core/build_config.hpp"
#include "aet/io/hdf5_result.hpp"
#include "support/test_support.hpp"

namespace aet::test {

std::vector<HeapSizeFlip> heap_size_flips() {
  return {{"heap-size-zero", 2296, 0x05, 0x00}, {"heap-size-huge", 2300, 0x00, 0x02}};
}

void write_flipped_result(const std::string& path, const HeapSizeFlip& flip) {
  {
    Provenance p;
    p.command_line = "aet pipeline --out d --no-network";
    p.config = "iterations = 5\n";
    ResultWriter w(path, p);
    w.write_vector("recon/r1", {0.5, 0.25});
    AtomModel m;
    for (int i = 0; i < 3; ++i) m.add("Pt", Vec3(i, 0, 0));
    w.write_atoms("atoms", m);
    w.set_attribute("stage", "trace");
    w.commit();
  }
  std::vector<char> b;
  {
    std::ifstream in(path, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(in), {});
  }
  // The layout is fixed by the strings above (and the 5 characters of the version): the heap
  // object "trace" has its size field at bytes 2296-2303.
  ASSERT_EQ(std::strlen(AET_VERSION), 5u) << "the offsets assume a 5-character version";
  ASSERT_GT(b.size(), flip.offset);
  ASSERT_EQ(static_cast<unsigned char>(b[flip.offset]), flip.from) << path;
  b[flip.offset] = static_cast<char>(flip.to);
  write_bytes(path, b);
}

namespace {

herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

void remove_checksums(const std::string& path) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << path;
  std::vector<std::string> names;
  H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &names, H5O_INFO_BASIC);
  for (const auto& n : names)
    if (H5Aexists_by_name(f, n.c_str(), "sha256", H5P_DEFAULT) > 0)
      H5Adelete_by_name(f, n.c_str(), "sha256", H5P_DEFAULT);
  H5Fclose(f);
}

}  // namespace aet::test
