// HDF5 container of weights and checkpoints (see weights_file.hpp). No LibTorch here: the
// tensors arrive as flat float vectors with a shape.
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/atomic_file.hpp"
#include "io/hdf5_handles.hpp"
#include "sha256.hpp"
#include "weights_file.hpp"

namespace fs = std::filesystem;

namespace aet::nn::detail {

namespace {

using namespace ::aet::hdf5;

// The root attributes that unet.cpp and train.cpp write: only these are read, by name, so
// that no attribute the file adds is ever parsed.
const char* const kRootStrings[] = {"format",  "aet_version", "torch_version",
                                    "created", "kind",        "run_fingerprint"};
const char* const kRootNumbers[] = {"format_version", "base_channels",       "levels",
                                    "residual",       "batch_norm",          "leaky_slope",
                                    "train_step",     "train_steps_planned", "train_seconds"};
const char* const kChecksumAttr = "sha256";

// ---- reading ----------------------------------------------------------------------------------

struct AttrValue {
  bool is_string = false;
  std::string text;
  double number = 0;
  bool usable = false;  // a scalar number or string
};

AttrValue read_attr(const std::string& path, hid_t attr, const std::string& name) {
  const std::string err = "cannot read attribute '" + name + "'";
  AttrValue out;
  TypeH ftype = checked<TypeH>(H5Aget_type(attr), path, err);
  SpaceH space = checked<SpaceH>(H5Aget_space(attr), path, err);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return out;
  const H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls == H5T_STRING) {
    out.is_string = true;
    if (H5Tis_variable_str(ftype.get()) > 0) {
      TypeH mem = checked<TypeH>(H5Tcopy(H5T_C_S1), path, err);
      check(H5Tset_size(mem.get(), H5T_VARIABLE), path, err);
      check(H5Tset_cset(mem.get(), H5Tget_cset(ftype.get())), path, err);
      char* s = nullptr;
      check(H5Aread(attr, mem.get(), &s), path, err);
      out.text = s ? s : "";
      if (s) H5free_memory(s);
    } else {
      const std::size_t size = H5Tget_size(ftype.get());
      if (size == 0 || size > kMaxAttrBytes) fail_file(path, err + ": implausible size");
      TypeH mem = checked<TypeH>(H5Tcopy(H5T_C_S1), path, err);
      check(H5Tset_size(mem.get(), size), path, err);
      std::vector<char> buf(size + 1, '\0');
      check(H5Aread(attr, mem.get(), buf.data()), path, err);
      out.text = std::string(buf.data());
    }
    out.usable = true;
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    check(H5Aread(attr, H5T_NATIVE_DOUBLE, &out.number), path, err);
    out.usable = true;
  }
  return out;
}

// The attribute `name` of loc, if there is one.
AttrValue read_named_attr(const std::string& path, hid_t loc, const std::string& name,
                          const std::string& where) {
  const htri_t exists = H5Aexists(loc, name.c_str());
  if (exists < 0) fail_file(path, "cannot look up attribute '" + name + "' of '" + where + "'");
  if (exists == 0) return {};
  AttrH attr = checked<AttrH>(H5Aopen(loc, name.c_str(), H5P_DEFAULT), path,
                              "cannot open attribute '" + name + "' of '" + where + "'");
  return read_attr(path, attr.get(), name);
}

void read_root_attrs(const std::string& path, hid_t root, WeightsFile& out) {
  for (const char* name : kRootStrings) {
    const AttrValue v = read_named_attr(path, root, name, "/");
    if (v.usable && v.is_string) out.strings[name] = v.text;
  }
  for (const char* name : kRootNumbers) {
    const AttrValue v = read_named_attr(path, root, name, "/");
    if (v.usable && !v.is_string) out.numbers[name] = v.number;
  }
}

// /metadata holds free-form text (input recipe, notes): every string attribute, bounded in
// number by attribute_names.
void read_metadata(const std::string& path, hid_t loc, std::map<std::string, std::string>& out) {
  const std::vector<std::string> names =
      attribute_names(path, loc, H5_INDEX_NAME, "cannot list the attributes of 'metadata'");
  for (const std::string& name : names) {
    AttrH attr = checked<AttrH>(H5Aopen(loc, name.c_str(), H5P_DEFAULT), path,
                                "cannot open attribute '" + name + "' of 'metadata'");
    const AttrValue v = read_attr(path, attr.get(), name);
    if (v.usable && v.is_string) out[name] = v.text;
  }
}

// Compares the dataset's values with its stored checksum; a dataset without one is noted.
void check_sum(const std::string& path, hid_t ds, const std::string& name, const void* data,
               std::size_t bytes, WeightsFile& out) {
  const AttrValue sum = read_named_attr(path, ds, kChecksumAttr, name);
  if (!sum.usable) {
    out.unchecked.push_back(name);
    return;
  }
  if (!sum.is_string || sum.text != sha256_hex(data, bytes))
    fail_file(path,
              "dataset '" + name + "' does not match its SHA-256 checksum: the file is damaged");
}

void read_dataset(const std::string& path, hid_t ds, const std::string& name, WeightsFile& out) {
  TypeH type = checked<TypeH>(H5Dget_type(ds), path, "cannot read the type of '" + name + "'");
  if (H5Tget_class(type.get()) != H5T_FLOAT) return;  // not ours; ignored
  SpaceH space = checked<SpaceH>(H5Dget_space(ds), path, "cannot read the shape of '" + name + "'");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) fail_file(path, "cannot read the shape of '" + name + "'");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  StoredTensor t;
  std::size_t n = 1;
  for (hsize_t d : dims) {
    if (d > (hsize_t{1} << 31)) fail_file(path, "dataset '" + name + "' is implausibly large");
    t.shape.push_back(static_cast<std::int64_t>(d));
    n *= static_cast<std::size_t>(d);
    if (n > (std::size_t{1} << 31)) fail_file(path, "dataset '" + name + "' is implausibly large");
  }
  // Weights barely compress: a dataset that claims far more data than the whole file holds is
  // damaged (or crafted to make aet allocate gigabytes of fill values).
  std::error_code ec;
  const std::uintmax_t file_bytes = fs::file_size(path, ec);
  if (!ec && n * H5Tget_size(type.get()) > 64 * file_bytes + (std::size_t{1} << 20))
    fail_file(path, "dataset '" + name + "' claims " + std::to_string(n) +
                        " values, more than the file can hold (damaged file?)");
  if (H5Tget_size(type.get()) > 4 && rank <= 1) {
    std::vector<double> v(n);
    if (n > 0)
      check(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
            "cannot read dataset '" + name + "' (truncated or corrupt file?)");
    check_sum(path, ds, name, v.data(), v.size() * sizeof(double), out);
    t.values.assign(v.begin(), v.end());
    out.series[name] = std::move(v);
  } else {
    t.values.resize(n);
    if (n > 0)
      check(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()), path,
            "cannot read dataset '" + name + "' (truncated or corrupt file?)");
    check_sum(path, ds, name, t.values.data(), t.values.size() * sizeof(float), out);
  }
  out.tensors[name] = std::move(t);
}

void visit(const std::string& path, hid_t group, const std::string& prefix, WeightsFile& out,
           int depth) {
  if (depth > 32) fail_file(path, "groups nested too deeply");
  const std::vector<std::string> links =
      link_names(path, group, H5_INDEX_NAME,
                 "cannot list group '/" + prefix + "' (truncated or corrupt file?)");
  for (const std::string& name : links) {
    const std::string full = prefix.empty() ? name : prefix + "/" + name;
    ObjectH obj = checked<ObjectH>(H5Oopen(group, name.c_str(), H5P_DEFAULT), path,
                                   "cannot open '" + full + "' (truncated or corrupt file?)");
    const H5I_type_t kind = H5Iget_type(obj.get());
    if (kind == H5I_GROUP) {
      if (full == "metadata")
        read_metadata(path, obj.get(), out.metadata);
      else
        visit(path, obj.get(), full, out, depth + 1);
    } else if (kind == H5I_DATASET) {
      read_dataset(path, obj.get(), full, out);
    }
  }
}

void write_checksum(const std::string& path, hid_t root, const std::string& name, const void* data,
                    std::size_t bytes) {
  DatasetH ds = checked<DatasetH>(H5Dopen2(root, name.c_str(), H5P_DEFAULT), path,
                                  "cannot open dataset '" + name + "'");
  write_string_attr(path, ds.get(), kChecksumAttr, sha256_hex(data, bytes));
}

}  // namespace

void write_weights_file(const std::string& path, const WeightsFile& file) {
  silence_hdf5();
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail_file(path, "cannot create: directory '" + parent.string() + "' does not exist");

  // The file is built in memory (core driver, no backing store) and then written through
  // AtomicFile, which gives the temporary-file + fsync + rename publication.
  std::vector<char> image;
  {
    PlistH fapl =
        checked<PlistH>(H5Pcreate(H5P_FILE_ACCESS), path, "cannot create a property list");
    check(H5Pset_fapl_core(fapl.get(), 1 << 20, 0), path, "cannot set up an in-memory HDF5 file");
    FileH f = checked<FileH>(
        H5Fcreate("aet-weights-in-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), path,
        "cannot create an in-memory HDF5 file");
    const hid_t root = f.get();
    for (const auto& kv : file.strings) write_string_attr(path, root, kv.first, kv.second);
    for (const auto& kv : file.numbers) write_double_attr(path, root, kv.first, kv.second);
    {
      GroupH meta =
          checked<GroupH>(H5Gcreate2(root, "metadata", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                          "cannot create group 'metadata'");
      for (const auto& kv : file.metadata) write_string_attr(path, meta.get(), kv.first, kv.second);
    }
    for (const auto& kv : file.tensors) {
      std::vector<hsize_t> dims;
      std::size_t n = 1;
      for (std::int64_t d : kv.second.shape) {
        dims.push_back(static_cast<hsize_t>(d));
        n *= static_cast<std::size_t>(d);
      }
      if (n != kv.second.values.size())
        throw InternalError(path + ": tensor '" + kv.first + "' has " +
                            std::to_string(kv.second.values.size()) + " values for its shape");
      write_dataset(path, root, kv.first, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims,
                    kv.second.values.data());
      write_checksum(path, root, kv.first, kv.second.values.data(),
                     kv.second.values.size() * sizeof(float));
    }
    for (const auto& kv : file.series) {
      write_dataset(path, root, kv.first, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                    {static_cast<hsize_t>(kv.second.size())}, kv.second.data());
      write_checksum(path, root, kv.first, kv.second.data(), kv.second.size() * sizeof(double));
    }
    check(H5Fflush(root, H5F_SCOPE_GLOBAL), path, "cannot flush the in-memory HDF5 file");
    const ssize_t size = H5Fget_file_image(root, nullptr, 0);
    if (size <= 0) fail_file(path, "cannot take the HDF5 file image");
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(root, image.data(), image.size()) != size)
      fail_file(path, "cannot take the HDF5 file image");
  }
  AtomicFile out(path);
  out.stream().write(image.data(), static_cast<std::streamsize>(image.size()));
  out.commit();
}

WeightsFile read_weights_file_in_process(const std::string& path) {
  FileH f = open_for_reading(path, "model file");
  WeightsFile out;
  read_root_attrs(path, f.get(), out);
  visit(path, f.get(), "", out, 0);
  return out;
}

WeightsFile read_weights_file(const std::string& path) {
  parse_in_child(path, "model file", [&] { read_weights_file_in_process(path); });
  WeightsFile out = read_weights_file_in_process(path);
  // Only for what claims to be an aet file: anything else is refused by the caller anyway.
  if (!out.unchecked.empty() && out.strings.count("format"))
    log_warning(path + ": " + std::to_string(out.unchecked.size()) +
                " datasets carry no SHA-256 checksum (written before aet stored them), so damage "
                "to those weights cannot be detected; saving the model again adds them");
  return out;
}

}  // namespace aet::nn::detail
