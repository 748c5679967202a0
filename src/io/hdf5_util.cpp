// The HDF5 helpers shared by the result, training-set and model-weights files (hdf5_handles.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "hdf5_handles.hpp"

namespace aet::hdf5 {

namespace fs = std::filesystem;

FileH open_for_reading(const std::string& path, const std::string& noun) {
  silence_hdf5();
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail_file(path, (noun.empty() ? "file" : noun) + " not found");
  if (fs::is_directory(st))
    fail_file(path, "is a directory, not " + (noun.empty() ? "an HDF5 file" : "a " + noun));
  if (H5Fis_hdf5(path.c_str()) <= 0)
    fail_file(path, "not an HDF5 " + (noun.empty() ? "file" : noun) + " (or truncated)");
  return checked<FileH>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path,
                        "cannot open the HDF5 file (truncated or corrupt?)");
}

namespace {

void delete_attr_if_present(hid_t loc, const std::string& name) {
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

herr_t collect_hard_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

void write_string_attr(const std::string& path, hid_t loc, const std::string& name,
                       const std::string& value) {
  delete_attr_if_present(loc, name);
  TypeH type = utf8_string_type(path);
  SpaceH space = checked<SpaceH>(H5Screate(H5S_SCALAR), path, "cannot create a dataspace");
  AttrH attr = checked<AttrH>(
      H5Acreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "cannot create attribute '" + name + "'");
  const char* p = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &p), path, "cannot write attribute '" + name + "'");
}

void write_numeric_attr(const std::string& path, hid_t loc, const std::string& name,
                        hid_t file_type, hid_t mem_type, const void* data, hsize_t n) {
  delete_attr_if_present(loc, name);
  SpaceH space = checked<SpaceH>(n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                                 path, "cannot create a dataspace");
  AttrH attr = checked<AttrH>(
      H5Acreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "cannot create attribute '" + name + "'");
  check(H5Awrite(attr.get(), mem_type, data), path, "cannot write attribute '" + name + "'");
}

void write_double_attr(const std::string& path, hid_t loc, const std::string& name, double v) {
  write_numeric_attr(path, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void write_dataset(const std::string& path, hid_t loc, const std::string& name, hid_t file_type,
                   hid_t mem_type, const std::vector<hsize_t>& dims, const void* data) {
  if (name.empty() || name.front() == '/' || name.back() == '/')
    throw InternalError(path + ": invalid dataset name '" + name + "'");
  PlistH lcpl = checked<PlistH>(H5Pcreate(H5P_LINK_CREATE), path, "cannot create a property list");
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), path, "cannot create a property list");
  SpaceH space = checked<SpaceH>(
      dims.empty() ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      path, "cannot create the dataspace of '" + name + "'");
  DatasetH ds = checked<DatasetH>(
      H5Dcreate2(loc, name.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
      path, "cannot create dataset '" + name + "'");
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (n > 0)
    check(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
          "cannot write dataset '" + name + "'");
}

void publish_file(FileH& file, const std::string& tmp, const std::string& path) {
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0 || file.reset() < 0) {
    file.reset();
    std::remove(tmp.c_str());
    fail_file(path, "cannot write the HDF5 file (disk full or I/O error); no file written");
  }
  // Data on disk before the rename publishes the file (see AtomicFile).
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail_file(path,
              std::string("cannot rename the temporary file into place: ") + std::strerror(err));
  }
}

std::vector<std::string> attribute_names(const std::string& path, hid_t object, H5_index_t order,
                                         const std::string& error) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(object, order, H5_ITER_INC, &idx, collect_attr, &names), path, error);
  return names;
}

std::vector<std::string> link_names(const std::string& path, hid_t group, H5_index_t order,
                                    const std::string& error) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Literate(group, order, H5_ITER_INC, &idx, collect_hard_link, &names), path, error);
  return names;
}

}  // namespace aet::hdf5
