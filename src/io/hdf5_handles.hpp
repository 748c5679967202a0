// RAII owners of HDF5 identifiers, the checks that turn HDF5 failures into errors naming the file,
// and the helpers every reader and writer of HDF5 files shares (results, training sets, model
// weights; src/io/hdf5_util.cpp, in aet_io). Internal: only translation units that link HDF5
// include it.
#pragma once

#include <hdf5.h>

#include <functional>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/io/hdf5_result.hpp"

namespace aet::hdf5 {

// Owns one HDF5 identifier and closes it with the matching H5?close.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  herr_t reset() {
    const herr_t r = id_ >= 0 ? Close(id_) : 0;
    id_ = -1;
    return r;
  }

 private:
  hid_t id_ = -1;
};

using FileH = Handle<H5Fclose>;
using GroupH = Handle<H5Gclose>;
using DatasetH = Handle<H5Dclose>;
using SpaceH = Handle<H5Sclose>;
using AttrH = Handle<H5Aclose>;
using TypeH = Handle<H5Tclose>;
using PlistH = Handle<H5Pclose>;
using ObjectH = Handle<H5Oclose>;

// The library's own error-stack printing would spray stderr; failures become exceptions.
inline void silence_hdf5() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// An identifier that must be valid, owned; otherwise an InputError naming `path`.
template <typename H>
H checked(hid_t id, const std::string& path, const std::string& what) {
  if (id < 0) fail_file(path, what);
  return H(id);
}

inline void check(herr_t r, const std::string& path, const std::string& what) {
  if (r < 0) fail_file(path, what);
}

// Variable-length UTF-8 string type for attributes and string datasets.
inline TypeH utf8_string_type(const std::string& path) {
  TypeH t = checked<TypeH>(H5Tcopy(H5T_C_S1), path, "cannot create a string type");
  check(H5Tset_size(t.get(), H5T_VARIABLE), path, "cannot create a string type");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), path, "cannot create a string type");
  return t;
}

// An existing HDF5 file opened read-only. A missing file, a folder, or a file that is not HDF5
// (or is truncated) is an InputError naming it; `noun` names what was expected ("model file"),
// empty for a plain HDF5 file.
FileH open_for_reading(const std::string& path, const std::string& noun = "");

// Scalar UTF-8 string attribute; one already there of that name is replaced.
void write_string_attr(const std::string& path, hid_t loc, const std::string& name,
                       const std::string& value);
// Numeric attribute of n values (n = 0: a scalar); one already there of that name is replaced.
void write_numeric_attr(const std::string& path, hid_t loc, const std::string& name,
                        hid_t file_type, hid_t mem_type, const void* data, hsize_t n = 0);
void write_double_attr(const std::string& path, hid_t loc, const std::string& name, double v);

// A dataset of shape dims (empty: a scalar) at `name` below loc, with any missing intermediate
// groups, written from data (mem_type).
void write_dataset(const std::string& path, hid_t loc, const std::string& name, hid_t file_type,
                   hid_t mem_type, const std::vector<hsize_t>& dims, const void* data);

// Publishes a file written to `tmp`: closes it, syncs it to disk and renames it to `path`. On
// failure the temporary file is removed and an InputError names `path`; nothing is left behind.
void publish_file(FileH& file, const std::string& tmp, const std::string& path);

// The names of an object's attributes, and of a group's hard links (soft and external links
// could loop or leave the file), in `order`; `error` is the message when listing fails. The
// names are collected before any is used: no C++ exception may cross HDF5's C iterators.
std::vector<std::string> attribute_names(const std::string& path, hid_t object, H5_index_t order,
                                         const std::string& error);
std::vector<std::string> link_names(const std::string& path, hid_t group, H5_index_t order,
                                    const std::string& error);

// libhdf5 (1.10) can crash, allocate without bound or loop forever on a damaged or hostile file,
// and no check before H5Fopen can rule that out. So every reader of a user's HDF5 file first
// runs its whole parse (`parse`, which reads `path`) in a forked child with limits: CPU time
// (5 s + 1 s per 16 MiB of file), wall time (4 x that + 30 s), memory (this process's data + 2 GiB
// + 16 x the file), no core dump, stderr discarded.
// The child ending cleanly lets the caller parse again in this process; an InputError in the
// child is rethrown here with its message; a crash, a limit reached or out of memory is an
// InputError "PATH: not a valid NOUN (...)". AET_HDF5_CPU_LIMIT (seconds) overrides the CPU limit.
void parse_in_child(const std::string& path, const std::string& noun,
                    const std::function<void()>& parse);

// Largest attribute (values x size) and number of attributes on one object that aet reads: its
// own are far smaller, and a bound keeps a damaged size from becoming a huge allocation.
constexpr std::size_t kMaxAttrBytes = std::size_t{16} << 20;
constexpr hsize_t kMaxAttrCount = 4096;

// read_result_summary and read_result_vector without parse_in_child: the parse itself, in this
// process (the fuzzers call these, since they must see the library's crashes).
ResultSummary read_result_summary_in_process(const std::string& path);
std::vector<double> read_result_vector_in_process(const std::string& path, const std::string& name);

}  // namespace aet::hdf5
