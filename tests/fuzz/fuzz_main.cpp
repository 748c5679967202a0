// The libFuzzer entry point, built once per reader with AET_FUZZ_READER set to its name
// (fuzz_readers.hpp; scripts/fuzz.sh builds and runs it). Each input is written to a file, since
// the readers take paths, and read in this process (the HDF5 readers with AET_FUZZ_GUARDED=1
// through their child-process guard): an InputError (or the config parser's error) is a clean
// refusal; anything else that escapes, a crash, a hang or a sanitizer report is a finding.
#include <unistd.h>

#include <boost/program_options/errors.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "aet/core/error.hpp"
#include "fuzz/fuzz_readers.hpp"

#ifndef AET_FUZZ_READER
#error "AET_FUZZ_READER must name the reader"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    const char* dir = std::getenv("AET_FUZZ_DIR");
    return std::string(dir ? dir : "/tmp") + "/aet-fuzz-" AET_FUZZ_READER "-" +
           std::to_string(::getpid());
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  // AET_FUZZ_GUARDED=1: the HDF5 readers as users get them, behind the child-process guard, so
  // that a finding is a crash of aet itself rather than of libhdf5 inside the guard.
  static const aet::fuzz::Hdf5Mode mode = [] {
    const char* g = std::getenv("AET_FUZZ_GUARDED");
    return g && std::string(g) == "1" ? aet::fuzz::Hdf5Mode::guarded
                                      : aet::fuzz::Hdf5Mode::in_process;
  }();
  try {
    aet::fuzz::exercise(AET_FUZZ_READER, path, mode);
  } catch (const aet::InputError&) {
  } catch (const boost::program_options::error&) {
  }
  return 0;
}
