#include "aet/io/hdf5_result.hpp"
#include "aet/core/progress.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "io/hdf5_handles.hpp"

namespace fs = std::filesystem;

namespace aet {

namespace {

using namespace ::aet::hdf5;

// Link creation with intermediate groups, so "recon/r1" makes group "recon" on demand.
PlistH link_plist(const std::string& path) {
  PlistH p = checked<PlistH>(H5Pcreate(H5P_LINK_CREATE), path, "cannot create a property list");
  check(H5Pset_create_intermediate_group(p.get(), 1), path, "cannot create a property list");
  return p;
}

void check_name(const std::string& path, const std::string& name) {
  if (name.empty() || name.back() == '/' || name == ".")
    throw InternalError(path + ": invalid HDF5 dataset or group name '" + name + "'");
}

DatasetH create_dataset(const std::string& path, hid_t loc, const std::string& name,
                        hid_t file_type, const std::vector<hsize_t>& dims) {
  check_name(path, name);
  SpaceH space =
      checked<SpaceH>(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), path,
                      "cannot create the dataspace of '" + name + "'");
  PlistH lcpl = link_plist(path);
  return checked<DatasetH>(
      H5Dcreate2(loc, name.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
      path, "cannot create dataset '" + name + "' (does it already exist?)");
}

void write_doubles(const std::string& path, hid_t loc, const std::string& name,
                   const std::vector<hsize_t>& dims, const double* data) {
  DatasetH ds = create_dataset(path, loc, name, H5T_IEEE_F64LE, dims);
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (n > 0)
    check(H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
          "cannot write dataset '" + name + "'");
}

// Shortest text that reads back to the same value at the stored precision.
std::string format_real(double v, bool single) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const int lo = single ? 6 : 15, hi = single ? 9 : 17;
  for (int prec = lo; prec <= hi; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    const double back = std::strtod(buf, nullptr);
    if (single ? static_cast<float>(back) == static_cast<float>(v) : back == v) break;
  }
  return buf;
}

std::string type_name(hid_t type) {
  const std::size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    case H5T_VLEN:
      return "vlen";
    case H5T_ARRAY:
      return "array";
    case H5T_TIME:
      return "time";
    default:
      return "unknown";
  }
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
  return s;
}

std::string attribute_text(const std::string& path, hid_t attr, const std::string& name) {
  TypeH ftype = checked<TypeH>(H5Aget_type(attr), path, "cannot read attribute '" + name + "'");
  SpaceH space = checked<SpaceH>(H5Aget_space(attr), path, "cannot read attribute '" + name + "'");
  const hssize_t np = H5Sget_simple_extent_npoints(space.get());
  if (np < 0) fail_file(path, "cannot read attribute '" + name + "'");
  const auto n = static_cast<std::size_t>(np);
  std::vector<std::string> parts;
  const std::string err = "cannot read attribute '" + name + "'";
  const std::size_t elem = H5Tget_size(ftype.get());
  if (elem == 0 || n > kMaxAttrBytes / 8 || n * elem > kMaxAttrBytes)
    fail_file(path, err + ": implausible size (damaged file?)");
  switch (H5Tget_class(ftype.get())) {
    case H5T_STRING: {
      if (H5Tis_variable_str(ftype.get()) > 0) {
        TypeH mem = checked<TypeH>(H5Tcopy(H5T_C_S1), path, err);
        check(H5Tset_size(mem.get(), H5T_VARIABLE), path, err);
        check(H5Tset_cset(mem.get(), H5Tget_cset(ftype.get())), path, err);
        std::vector<char*> buf(n, nullptr);
        check(H5Aread(attr, mem.get(), buf.data()), path, err);
        for (char* s : buf) {
          parts.emplace_back(s ? s : "");
          if (s) H5free_memory(s);
        }
      } else {
        const std::size_t size = H5Tget_size(ftype.get());
        TypeH mem = checked<TypeH>(H5Tcopy(H5T_C_S1), path, err);
        check(H5Tset_size(mem.get(), size), path, err);
        check(H5Tset_strpad(mem.get(), H5Tget_strpad(ftype.get())), path, err);
        std::vector<char> buf(size * n + 1, '\0');
        check(H5Aread(attr, mem.get(), buf.data()), path, err);
        for (std::size_t i = 0; i < n; ++i) {
          std::string s(buf.data() + i * size, size);
          const auto nul = s.find('\0');
          if (nul != std::string::npos) s.resize(nul);
          if (H5Tget_strpad(ftype.get()) == H5T_STR_SPACEPAD)
            while (!s.empty() && s.back() == ' ') s.pop_back();
          parts.push_back(s);
        }
      }
      break;
    }
    case H5T_INTEGER: {
      if (H5Tget_sign(ftype.get()) == H5T_SGN_NONE) {
        std::vector<unsigned long long> buf(n);
        check(H5Aread(attr, H5T_NATIVE_ULLONG, buf.data()), path, err);
        for (auto v : buf) parts.push_back(std::to_string(v));
      } else {
        std::vector<long long> buf(n);
        check(H5Aread(attr, H5T_NATIVE_LLONG, buf.data()), path, err);
        for (auto v : buf) parts.push_back(std::to_string(v));
      }
      break;
    }
    case H5T_FLOAT: {
      const bool single = H5Tget_size(ftype.get()) <= 4;
      std::vector<double> buf(n);
      check(H5Aread(attr, H5T_NATIVE_DOUBLE, buf.data()), path, err);
      for (double v : buf) parts.push_back(format_real(v, single));
      break;
    }
    default:
      return "<" + type_name(ftype.get()) + ">";
  }
  return join(parts);
}

void visit_group(const std::string& path, hid_t group, const std::string& prefix,
                 ResultSummary& out, int depth) {
  if (depth > 64) fail_file(path, "groups nested too deeply");
  const std::vector<std::string> links =
      link_names(path, group, H5_INDEX_NAME,
                 "cannot list group '" + (prefix.empty() ? std::string("/") : prefix) + "'");
  for (const std::string& name : links) {
    const std::string full = prefix.empty() ? name : prefix + "/" + name;
    ObjectH obj = checked<ObjectH>(H5Oopen(group, name.c_str(), H5P_DEFAULT), path,
                                   "cannot open object '" + full + "'");
    const H5I_type_t kind = H5Iget_type(obj.get());
    if (kind == H5I_GROUP) {
      visit_group(path, obj.get(), full, out, depth + 1);
    } else if (kind == H5I_DATASET) {
      ResultSummary::Dataset d;
      d.name = full;
      SpaceH space =
          checked<SpaceH>(H5Dget_space(obj.get()), path, "cannot read the shape of '" + full + "'");
      const int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0) fail_file(path, "cannot read the shape of '" + full + "'");
      std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
      if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      for (hsize_t x : dims) d.dims.push_back(static_cast<std::uint64_t>(x));
      TypeH type =
          checked<TypeH>(H5Dget_type(obj.get()), path, "cannot read the type of '" + full + "'");
      d.type = type_name(type.get());
      out.datasets.push_back(std::move(d));
    }
  }
}

}  // namespace

struct ResultWriter::Impl {
  std::string path, tmp;
  FileH file;
  bool created = false;
  bool committed = false;
  hid_t root() const { return file.get(); }
  // Also runs when the ResultWriter constructor throws after creating the temporary file.
  ~Impl() {
    if (committed || !created) return;
    file.reset();
    std::remove(tmp.c_str());
  }
};

ResultWriter::ResultWriter(const std::string& path, const Provenance& prov)
    : impl_(std::make_unique<Impl>()) {
  silence_hdf5();
  impl_->path = path;
  impl_->tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail_file(path, "cannot create: directory '" + parent.string() + "' does not exist");
  const hid_t f = H5Fcreate(impl_->tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) fail_file(path, "cannot create the HDF5 file (is the directory writable?)");
  impl_->file = FileH(f);
  impl_->created = true;
  const hid_t root = impl_->root();
  write_string_attr(path, root, "aet_version", AET_VERSION);
  write_string_attr(path, root, "command_line", prov.command_line);
  write_string_attr(path, root, "config", prov.config);
  write_string_attr(path, root, "created", utc_timestamp());
  if (prov.has_seed) {
    const std::uint64_t seed = prov.seed;
    write_numeric_attr(path, root, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed, 0);
  }
}

ResultWriter::~ResultWriter() = default;

void ResultWriter::write_volume(const std::string& name, const Array3& v) {
  const std::string& path = impl_->path;
  const std::vector<hsize_t> dims = {static_cast<hsize_t>(v.nz()), static_cast<hsize_t>(v.ny()),
                                     static_cast<hsize_t>(v.nx())};
  DatasetH ds = create_dataset(path, impl_->root(), name, H5T_IEEE_F32LE, dims);
  if (!v.empty())
    check(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
          "cannot write dataset '" + name + "'");
  const double vs[3] = {v.voxel_size.x, v.voxel_size.y, v.voxel_size.z};
  write_numeric_attr(path, ds.get(), "voxel_size", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, vs, 3);
  write_numeric_attr(path, ds.get(), "origin", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.origin, 3);
}

void ResultWriter::write_vector(const std::string& name, const std::vector<double>& v) {
  write_doubles(impl_->path, impl_->root(), name, {static_cast<hsize_t>(v.size())}, v.data());
}

void ResultWriter::write_matrix(const std::string& name, const std::vector<double>& rowmajor,
                                std::size_t rows, std::size_t cols) {
  if (rowmajor.size() != rows * cols)
    throw InternalError(impl_->path + ": matrix '" + name + "' has " +
                        std::to_string(rowmajor.size()) + " values for " + std::to_string(rows) +
                        " x " + std::to_string(cols));
  write_doubles(impl_->path, impl_->root(), name,
                {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)}, rowmajor.data());
}

void ResultWriter::write_atoms(const std::string& group, const AtomModel& m) {
  const std::string& path = impl_->path;
  check_name(path, group);
  const std::size_t n = m.size();
  if (m.species.size() != n)
    throw InternalError(path + ": atom model '" + group + "' has " +
                        std::to_string(m.species.size()) + " species for " + std::to_string(n) +
                        " positions");
  for (const auto& p : m.properties)
    if (p.second.size() != n)
      throw InternalError(path + ": property '" + p.first + "' of '" + group + "' has " +
                          std::to_string(p.second.size()) + " values for " + std::to_string(n) +
                          " atoms");

  GroupH g(H5Gopen2(impl_->root(), group.c_str(), H5P_DEFAULT));
  if (!g.valid()) {
    PlistH lcpl = link_plist(path);
    g = checked<GroupH>(
        H5Gcreate2(impl_->root(), group.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), path,
        "cannot create group '" + group + "'");
  }

  std::vector<double> pos(3 * n);
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) pos[3 * i + static_cast<std::size_t>(k)] = m.positions[i][k];
  write_doubles(path, g.get(), "positions", {static_cast<hsize_t>(n), 3}, pos.data());

  TypeH str = utf8_string_type(path);
  DatasetH sp = create_dataset(path, g.get(), "species", str.get(), {static_cast<hsize_t>(n)});
  if (n > 0) {
    std::vector<const char*> ptrs(n);
    for (std::size_t i = 0; i < n; ++i) ptrs[i] = m.species[i].c_str();
    check(H5Dwrite(sp.get(), str.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path,
          "cannot write dataset '" + group + "/species'");
  }

  for (const auto& p : m.properties) {
    std::string name = p.first;
    for (char& c : name)
      if (c == '/') c = '_';  // a '/' would silently make a subgroup
    write_doubles(path, g.get(), name, {static_cast<hsize_t>(n)}, p.second.data());
  }
  for (const auto& kv : m.info) write_string_attr(path, g.get(), kv.first, kv.second);
}

void ResultWriter::set_attribute(const std::string& name, const std::string& value) {
  write_string_attr(impl_->path, impl_->root(), name, value);
}

void ResultWriter::set_attribute(const std::string& name, double value) {
  write_numeric_attr(impl_->path, impl_->root(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value,
                     0);
}

void ResultWriter::commit() {
  Impl& im = *impl_;
  if (im.committed) return;
  publish_file(im.file, im.tmp, im.path);
  im.committed = true;
}

namespace hdf5 {

ResultSummary read_result_summary_in_process(const std::string& path) {
  FileH file = open_for_reading(path);
  ResultSummary s;
  visit_group(path, file.get(), "", s, 0);
  // Root attributes, then those of a /metadata group (model files keep their provenance there).
  auto collect = [&](hid_t object, const std::string& prefix) {
    for (const std::string& name : attribute_names(
             path, object, H5_INDEX_NAME,
             "cannot list the attributes of '" + (prefix.empty() ? "/" : prefix) + "'")) {
      AttrH a = checked<AttrH>(H5Aopen(object, name.c_str(), H5P_DEFAULT), path,
                               "cannot open attribute '" + prefix + name + "'");
      s.attributes.emplace_back(prefix + name, attribute_text(path, a.get(), name));
    }
  };
  collect(file.get(), "");
  if (H5Lexists(file.get(), "metadata", H5P_DEFAULT) > 0) {
    GroupH g = checked<GroupH>(H5Gopen2(file.get(), "metadata", H5P_DEFAULT), path,
                               "cannot open the group /metadata");
    collect(g.get(), "metadata/");
  }
  return s;
}

std::vector<double> read_result_vector_in_process(const std::string& path,
                                                  const std::string& name) {
  FileH file = open_for_reading(path);
  DatasetH ds = checked<DatasetH>(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), path,
                                  "no dataset '" + name + "'");
  TypeH type = checked<TypeH>(H5Dget_type(ds.get()), path, "cannot read dataset '" + name + "'");
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    fail_file(path, "dataset '" + name + "' is " + type_name(type.get()) + ", not numeric");
  SpaceH space =
      checked<SpaceH>(H5Dget_space(ds.get()), path, "cannot read the shape of '" + name + "'");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank > 1)
    fail_file(path, "dataset '" + name + "' has " + std::to_string(rank) +
                        " dimensions; expected a 1-D vector");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail_file(path, "cannot read the shape of '" + name + "'");
  // A vector larger than the file cannot be real data (datasets are not compressed here).
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && static_cast<std::uintmax_t>(n) > size)
    fail_file(path, "dataset '" + name + "' claims " + std::to_string(n) +
                        " values, more than the file holds (damaged file?)");
  std::vector<double> v(static_cast<std::size_t>(n));
  if (n > 0)
    check(H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
          "cannot read dataset '" + name + "'");
  return v;
}

}  // namespace hdf5

ResultSummary read_result_summary(const std::string& path) {
  hdf5::parse_in_child(path, "HDF5 file", [&] { hdf5::read_result_summary_in_process(path); });
  return hdf5::read_result_summary_in_process(path);
}

std::vector<double> read_result_vector(const std::string& path, const std::string& name) {
  hdf5::parse_in_child(path, "result file",
                       [&] { hdf5::read_result_vector_in_process(path, name); });
  return hdf5::read_result_vector_in_process(path, name);
}

}  // namespace aet
