// The HDF5 training-set file: the writer (atomic, the spec as root attributes, one group per
// sample) and the reader, which checks every object before use and names the file in every error.
#include "aet/networks/training_set.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/progress.hpp"
#include "io/hdf5_handles.hpp"
#include "training_set_detail.hpp"

namespace fs = std::filesystem;

namespace aet::nn {
namespace {

constexpr const char* kFormat = "aet-training-set";
constexpr int kFormatVersion = 1;

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
  return s;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

using namespace ::aet::hdf5;

// Groups that remember the creation order of their links and attributes, so that atom
// properties and info read back in the order they were written.
GroupH create_group(const std::string& path, hid_t loc, const std::string& name) {
  PlistH gcpl = checked<PlistH>(H5Pcreate(H5P_GROUP_CREATE), path, "cannot create a property list");
  check(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), path,
        "cannot create a property list");
  check(H5Pset_attr_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), path,
        "cannot create a property list");
  return checked<GroupH>(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), path,
                         "cannot create group '" + name + "'");
}

// Volumes are stored in chunks of whole xy slices (up to 2^20 voxels) with shuffle + deflate when
// the library has zlib: the targets are mostly exact zeros and shrink about tenfold.
void write_volume(const std::string& path, hid_t loc, const std::string& name, const Array3& v) {
  const hsize_t dims[3] = {static_cast<hsize_t>(v.nz()), static_cast<hsize_t>(v.ny()),
                           static_cast<hsize_t>(v.nx())};
  SpaceH space = checked<SpaceH>(H5Screate_simple(3, dims, nullptr), path,
                                 "cannot create the dataspace of '" + name + "'");
  PlistH dcpl =
      checked<PlistH>(H5Pcreate(H5P_DATASET_CREATE), path, "cannot create a property list");
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    const hsize_t slice = dims[1] * dims[2];
    const hsize_t chunk[3] = {std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 20) / slice)),
                              dims[1], dims[2]};
    check(H5Pset_chunk(dcpl.get(), 3, chunk), path, "cannot set the chunks of '" + name + "'");
    check(H5Pset_shuffle(dcpl.get()), path, "cannot set the filters of '" + name + "'");
    check(H5Pset_deflate(dcpl.get(), 4), path, "cannot set the filters of '" + name + "'");
  }
  DatasetH ds = checked<DatasetH>(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, space.get(),
                                             H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                  path, "cannot create dataset '" + name + "'");
  check(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
        "cannot write dataset '" + name + "'");
  const double vs[3] = {v.voxel_size.x, v.voxel_size.y, v.voxel_size.z};
  write_numeric_attr(path, ds.get(), "voxel_size", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, vs, 3);
}

std::string sample_group_name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sample_%06zu", i);
  return buf;
}

// ---- HDF5 reading: every object is checked before use, every error names the file ----------

std::string shape_text(const std::vector<hsize_t>& dims) {
  if (dims.empty()) return "a scalar";
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i)
    s += (i ? " x " : "") + std::to_string(static_cast<unsigned long long>(dims[i]));
  return s;
}

struct Reader {
  std::string path;

  static std::string where(const std::string& group, const std::string& name) {
    return group.empty() ? name : group + "/" + name;
  }

  DatasetH open_dataset(hid_t loc, const std::string& group, const std::string& name) const {
    const std::string full = where(group, name);
    const htri_t exists = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
    if (exists < 0) fail_file(path, "cannot look up dataset '" + full + "' (truncated file?)");
    if (exists == 0) fail_file(path, "missing dataset '" + full + "'");
    return checked<DatasetH>(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), path,
                             "cannot open dataset '" + full + "'");
  }

  std::vector<hsize_t> dims_of(hid_t ds, const std::string& full) const {
    SpaceH space =
        checked<SpaceH>(H5Dget_space(ds), path, "cannot read the shape of '" + full + "'");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail_file(path, "cannot read the shape of '" + full + "'");
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0)
      fail_file(path, "cannot read the shape of '" + full + "'");
    return dims;
  }

  H5T_class_t class_of(hid_t ds, const std::string& full) const {
    TypeH t = checked<TypeH>(H5Dget_type(ds), path, "cannot read the type of '" + full + "'");
    return H5Tget_class(t.get());
  }

  void require_numeric(hid_t ds, const std::string& full) const {
    const H5T_class_t c = class_of(ds, full);
    if (c != H5T_FLOAT && c != H5T_INTEGER)
      fail_file(path, "dataset '" + full + "' is not numeric");
  }

  void read(hid_t ds, hid_t mem_type, void* out, const std::string& full) const {
    check(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), path,
          "cannot read dataset '" + full + "' (truncated or corrupt file?)");
  }

  void require_scalar(hid_t ds, const std::string& full) const {
    const auto dims = dims_of(ds, full);
    if (!(dims.empty() || (dims.size() == 1 && dims[0] == 1)))
      fail_file(path, "dataset '" + full + "' is " + shape_text(dims) + "; expected a scalar");
  }

  double scalar(hid_t loc, const std::string& group, const std::string& name) const {
    const std::string full = where(group, name);
    DatasetH ds = open_dataset(loc, group, name);
    require_numeric(ds.get(), full);
    require_scalar(ds.get(), full);
    double v = 0;
    read(ds.get(), H5T_NATIVE_DOUBLE, &v, full);
    if (!std::isfinite(v)) fail_file(path, "dataset '" + full + "' is not finite");
    return v;
  }

  std::uint64_t scalar_u64(hid_t loc, const std::string& group, const std::string& name) const {
    const std::string full = where(group, name);
    DatasetH ds = open_dataset(loc, group, name);
    if (class_of(ds.get(), full) != H5T_INTEGER)
      fail_file(path, "dataset '" + full + "' is not an integer");
    require_scalar(ds.get(), full);
    std::uint64_t v = 0;
    read(ds.get(), H5T_NATIVE_UINT64, &v, full);
    return v;
  }

  Array3 volume(hid_t loc, const std::string& group, const std::string& name) const {
    const std::string full = where(group, name);
    DatasetH ds = open_dataset(loc, group, name);
    require_numeric(ds.get(), full);
    const auto dims = dims_of(ds.get(), full);
    if (dims.size() != 3 || dims[0] == 0 || dims[1] == 0 || dims[2] == 0)
      fail_file(path, "dataset '" + full + "' is " + shape_text(dims) +
                          "; expected a 3-D volume (nz x ny x nx)");
    // A corrupt header must not ask for an absurd allocation: at most 2^32 voxels (16 GiB).
    if (dims[0] > (1ULL << 32) / dims[1] / dims[2])
      fail_file(path, "dataset '" + full + "' is too large: " + shape_text(dims));
    Array3 v(static_cast<std::int64_t>(dims[2]), static_cast<std::int64_t>(dims[1]),
             static_cast<std::int64_t>(dims[0]));
    read(ds.get(), H5T_NATIVE_FLOAT, v.data(), full);
    for (float x : v.vector())
      if (!std::isfinite(x)) fail_file(path, "dataset '" + full + "' holds non-finite values");
    const std::string an = full + ".voxel_size";
    if (H5Aexists(ds.get(), "voxel_size") <= 0) fail_file(path, "missing attribute '" + an + "'");
    AttrH attr = checked<AttrH>(H5Aopen(ds.get(), "voxel_size", H5P_DEFAULT), path,
                                "cannot open attribute '" + an + "'");
    SpaceH space =
        checked<SpaceH>(H5Aget_space(attr.get()), path, "cannot read attribute '" + an + "'");
    if (H5Sget_simple_extent_npoints(space.get()) != 3)
      fail_file(path, "attribute '" + an + "' must hold 3 values");
    double vs[3];
    check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, vs), path, "cannot read attribute '" + an + "'");
    for (double x : vs)
      if (!std::isfinite(x) || x <= 0) fail_file(path, "attribute '" + an + "' must be positive");
    v.voxel_size = VoxelSize{vs[0], vs[1], vs[2]};
    return v;
  }

  std::vector<std::string> strings(hid_t loc, const std::string& group, const std::string& name,
                                   std::size_t n) const {
    const std::string full = where(group, name);
    DatasetH ds = open_dataset(loc, group, name);
    TypeH ftype =
        checked<TypeH>(H5Dget_type(ds.get()), path, "cannot read the type of '" + full + "'");
    if (H5Tget_class(ftype.get()) != H5T_STRING || H5Tis_variable_str(ftype.get()) <= 0)
      fail_file(path, "dataset '" + full + "' is not variable-length text");
    const auto dims = dims_of(ds.get(), full);
    if (dims.size() != 1 || dims[0] != n)
      fail_file(path, "dataset '" + full + "' is " + shape_text(dims) + "; expected " +
                          std::to_string(n) + " strings");
    std::vector<std::string> out;
    if (n == 0) return out;
    TypeH mem = utf8_string_type(path);
    std::vector<char*> buf(n, nullptr);
    read(ds.get(), mem.get(), buf.data(), full);
    for (char* s : buf) {
      out.emplace_back(s ? s : "");
      if (s) H5free_memory(s);
    }
    return out;
  }

  std::vector<double> doubles(hid_t ds, const std::string& full,
                              const std::vector<hsize_t>& expect) const {
    require_numeric(ds, full);
    const auto dims = dims_of(ds, full);
    if (dims != expect)
      fail_file(path, "dataset '" + full + "' is " + shape_text(dims) + "; expected " +
                          shape_text(expect));
    hsize_t n = 1;
    for (hsize_t d : dims) n *= d;
    std::vector<double> v(static_cast<std::size_t>(n));
    if (n > 0) read(ds, H5T_NATIVE_DOUBLE, v.data(), full);
    for (double x : v)
      if (!std::isfinite(x)) fail_file(path, "dataset '" + full + "' holds non-finite values");
    return v;
  }

  bool has_attr(hid_t loc, const std::string& name) const {
    return H5Aexists(loc, name.c_str()) > 0;
  }

  std::vector<double> attr_doubles(hid_t loc, const std::string& name) const {
    if (!has_attr(loc, name)) fail_file(path, "missing attribute '" + name + "'");
    AttrH attr = checked<AttrH>(H5Aopen(loc, name.c_str(), H5P_DEFAULT), path,
                                "cannot open attribute '" + name + "'");
    TypeH t = checked<TypeH>(H5Aget_type(attr.get()), path, "cannot read attribute '" + name + "'");
    const H5T_class_t c = H5Tget_class(t.get());
    if (c != H5T_FLOAT && c != H5T_INTEGER)
      fail_file(path, "attribute '" + name + "' is not numeric");
    SpaceH space =
        checked<SpaceH>(H5Aget_space(attr.get()), path, "cannot read attribute '" + name + "'");
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0 || n > 1000000) fail_file(path, "cannot read attribute '" + name + "'");
    std::vector<double> v(static_cast<std::size_t>(n));
    if (n > 0)
      check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, v.data()), path,
            "cannot read attribute '" + name + "'");
    for (double x : v)
      if (!std::isfinite(x)) fail_file(path, "attribute '" + name + "' is not finite");
    return v;
  }

  double attr_double(hid_t loc, const std::string& name) const {
    const auto v = attr_doubles(loc, name);
    if (v.size() != 1) fail_file(path, "attribute '" + name + "' must be a single number");
    return v[0];
  }

  std::string attr_string(hid_t loc, const std::string& name) const {
    if (!has_attr(loc, name)) fail_file(path, "missing attribute '" + name + "'");
    AttrH attr = checked<AttrH>(H5Aopen(loc, name.c_str(), H5P_DEFAULT), path,
                                "cannot open attribute '" + name + "'");
    return attr_text(attr.get(), name);
  }

  // An open attribute holding one variable-length string.
  std::string attr_text(hid_t attr, const std::string& name) const {
    TypeH t = checked<TypeH>(H5Aget_type(attr), path, "cannot read attribute '" + name + "'");
    if (H5Tget_class(t.get()) != H5T_STRING || H5Tis_variable_str(t.get()) <= 0)
      fail_file(path, "attribute '" + name + "' is not text");
    SpaceH space =
        checked<SpaceH>(H5Aget_space(attr), path, "cannot read attribute '" + name + "'");
    if (H5Sget_simple_extent_npoints(space.get()) != 1)
      fail_file(path, "attribute '" + name + "' must be a single string");
    TypeH mem = utf8_string_type(path);
    char* s = nullptr;
    check(H5Aread(attr, mem.get(), &s), path, "cannot read attribute '" + name + "'");
    std::string out = s ? s : "";
    if (s) H5free_memory(s);
    return out;
  }
};

}  // namespace

struct TrainingSetWriter::Impl {
  std::string path, tmp;
  FileH file;
  std::size_t count = 0;
  bool created = false, committed = false;
  // Also runs when the constructor throws after creating the temporary file.
  ~Impl() {
    if (committed || !created) return;
    file.reset();
    std::remove(tmp.c_str());
  }
};

TrainingSetWriter::TrainingSetWriter(const std::string& path, const TrainingDataSpec& spec,
                                     const std::string& command_line, const std::string& config)
    : impl_(std::make_unique<Impl>()) {
  check_training_spec(spec);
  silence_hdf5();
  if (path.empty()) fail_input("training set: no output file given");
  impl_->path = path;
  impl_->tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail_file(path, "is a directory");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail_file(path, "cannot create: directory '" + parent.string() + "' does not exist");
  PlistH fcpl = checked<PlistH>(H5Pcreate(H5P_FILE_CREATE), path, "cannot create a property list");
  check(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), path,
        "cannot create a property list");
  const hid_t f = H5Fcreate(impl_->tmp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT);
  if (f < 0) fail_file(path, "cannot create the HDF5 file (is the directory writable?)");
  impl_->file = FileH(f);
  impl_->created = true;

  const hid_t root = impl_->file.get();
  write_string_attr(path, root, "format", kFormat);
  write_numeric_attr(path, root, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &kFormatVersion);
  write_string_attr(path, root, "aet_version", AET_VERSION);
  write_string_attr(path, root, "created", utc_timestamp());
  write_string_attr(path, root, "command_line", command_line);
  write_string_attr(path, root, "config", config);
  write_string_attr(path, root, "elements", join(spec.elements));
  write_string_attr(path, root, "shapes", join(spec.shapes));
  write_double_attr(path, root, "radius_min", spec.radius_min);
  write_double_attr(path, root, "radius_max", spec.radius_max);
  write_double_attr(path, root, "tilt_max_min", spec.tilt_max_min);
  write_double_attr(path, root, "tilt_max_max", spec.tilt_max_max);
  write_numeric_attr(path, root, "tilt_steps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     spec.tilt_steps.data(), spec.tilt_steps.size());
  write_double_attr(path, root, "dose_min", spec.dose_min);
  write_double_attr(path, root, "dose_max", spec.dose_max);
  write_double_attr(path, root, "jitter_sd", spec.jitter_sd);
  write_double_attr(path, root, "vacancy_max", spec.vacancy_max);
  write_double_attr(path, root, "angle_error_sd", spec.angle_error_sd);
  write_double_attr(path, root, "tail_fraction_max", spec.tail_fraction_max);
  write_double_attr(path, root, "background_max", spec.background_max);
  write_double_attr(path, root, "zone_axis_fraction", spec.zone_axis_fraction);
  write_double_attr(path, root, "zone_axis_tilt", spec.zone_axis_tilt);
  write_double_attr(path, root, "pixel", spec.pixel);
  write_double_attr(path, root, "view_margin", spec.view_margin);
  write_numeric_attr(path, root, "iterations", H5T_STD_I32LE, H5T_NATIVE_INT, &spec.iterations);
  write_double_attr(path, root, "recon_step", spec.recon_step);
  write_double_attr(path, root, "target_sigma", spec.target_sigma);
}

TrainingSetWriter::~TrainingSetWriter() = default;

std::size_t TrainingSetWriter::count() const {
  return impl_->count;
}

void TrainingSetWriter::add(const TrainingSample& s) {
  Impl& im = *impl_;
  const std::string& path = im.path;
  if (im.committed) throw InternalError(path + ": training set already committed");
  if (s.input.empty() || s.input.nx() != s.target.nx() || s.input.ny() != s.target.ny() ||
      s.input.nz() != s.target.nz())
    throw InternalError(path + ": sample input and target differ in size");
  const std::size_t n = s.truth.size();
  if (s.truth.species.size() != n)
    throw InternalError(path + ": sample truth has mismatched species and positions");
  for (const auto& p : s.truth.properties)
    if (p.second.size() != n || p.first.empty() || p.first.find('/') != std::string::npos ||
        p.first == "positions" || p.first == "species")
      throw InternalError(path + ": sample truth property '" + p.first + "' cannot be stored");

  GroupH g = create_group(path, im.file.get(), sample_group_name(im.count));
  write_volume(path, g.get(), "input", s.input);
  write_volume(path, g.get(), "target", s.target);
  write_dataset(path, g.get(), "tilt_max", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &s.tilt_max);
  write_dataset(path, g.get(), "tilt_step", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &s.tilt_step);
  write_dataset(path, g.get(), "dose", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &s.dose);
  write_dataset(path, g.get(), "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, {}, &s.seed);

  GroupH t = create_group(path, g.get(), "truth");
  std::vector<double> pos(3 * n);
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) pos[3 * i + static_cast<std::size_t>(k)] = s.truth.positions[i][k];
  write_dataset(path, t.get(), "positions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                {static_cast<hsize_t>(n), 3}, pos.data());
  {
    TypeH str = utf8_string_type(path);
    std::vector<const char*> ptrs(n);
    for (std::size_t i = 0; i < n; ++i) ptrs[i] = s.truth.species[i].c_str();
    write_dataset(path, t.get(), "species", str.get(), str.get(), {static_cast<hsize_t>(n)},
                  ptrs.data());
  }
  for (const auto& p : s.truth.properties)
    write_dataset(path, t.get(), p.first, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                  {static_cast<hsize_t>(n)}, p.second.data());
  for (const auto& kv : s.truth.info) write_string_attr(path, t.get(), kv.first, kv.second);
  ++im.count;
}

void TrainingSetWriter::commit() {
  Impl& im = *impl_;
  if (im.committed) return;
  const std::string& path = im.path;
  const std::uint64_t count = im.count;
  write_numeric_attr(path, im.file.get(), "count", H5T_STD_U64LE, H5T_NATIVE_UINT64, &count);
  try {
    publish_file(im.file, im.tmp, path);
  } catch (...) {
    im.created = false;
    throw;
  }
  im.committed = true;
}

void write_training_set(const std::string& path, const std::vector<TrainingSample>& samples,
                        const TrainingDataSpec& spec) {
  TrainingSetWriter w(path, spec);
  for (const auto& s : samples) w.add(s);
  w.commit();
}

std::vector<TrainingSample> detail::read_training_set_in_process(const std::string& path,
                                                                 TrainingDataSpec* spec_out) {
  FileH file = open_for_reading(path);
  const Reader r{path};
  const hid_t root = file.get();
  if (!r.has_attr(root, "format") || r.attr_string(root, "format") != kFormat)
    fail_file(path,
              std::string("not an aet training set (no format = \"") + kFormat + "\" attribute)");
  const double version = r.attr_double(root, "format_version");
  if (version != kFormatVersion)
    fail_file(path, "training set format version " + fmt_g(version, 10) +
                        " is not supported (this aet reads version " +
                        std::to_string(kFormatVersion) + ")");
  const double count_d = r.attr_double(root, "count");
  if (!(count_d >= 0) || count_d > 1e9 || count_d != std::floor(count_d))
    fail_file(path, "bad sample count " + fmt_g(count_d, 10));
  const auto count = static_cast<std::size_t>(count_d);

  TrainingDataSpec spec;
  spec.elements = split(r.attr_string(root, "elements"));
  spec.shapes = split(r.attr_string(root, "shapes"));
  spec.radius_min = r.attr_double(root, "radius_min");
  spec.radius_max = r.attr_double(root, "radius_max");
  spec.tilt_max_min = r.attr_double(root, "tilt_max_min");
  spec.tilt_max_max = r.attr_double(root, "tilt_max_max");
  spec.tilt_steps = r.attr_doubles(root, "tilt_steps");
  spec.dose_min = r.attr_double(root, "dose_min");
  spec.dose_max = r.attr_double(root, "dose_max");
  spec.jitter_sd = r.attr_double(root, "jitter_sd");
  spec.vacancy_max = r.attr_double(root, "vacancy_max");
  spec.angle_error_sd = r.attr_double(root, "angle_error_sd");
  spec.tail_fraction_max = r.attr_double(root, "tail_fraction_max");
  // Sets made before the background draw existed have none.
  spec.background_max =
      r.has_attr(root, "background_max") ? r.attr_double(root, "background_max") : 0.0;
  // Sets made before zone-axis orientations existed have none.
  spec.zone_axis_fraction =
      r.has_attr(root, "zone_axis_fraction") ? r.attr_double(root, "zone_axis_fraction") : 0.0;
  if (r.has_attr(root, "zone_axis_tilt"))
    spec.zone_axis_tilt = r.attr_double(root, "zone_axis_tilt");
  spec.pixel = r.attr_double(root, "pixel");
  spec.view_margin = r.attr_double(root, "view_margin");
  const double iterations = r.attr_double(root, "iterations");
  if (!(iterations >= 1 && iterations <= 1e6))
    fail_file(path, "bad iteration count " + fmt_g(iterations, 10));
  spec.iterations = static_cast<int>(iterations);
  spec.recon_step = r.attr_double(root, "recon_step");
  spec.target_sigma = r.attr_double(root, "target_sigma");
  try {
    check_training_spec(spec);
  } catch (const InputError& e) {
    fail_file(path, std::string("invalid spec attributes: ") + e.what());
  }

  std::vector<TrainingSample> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string gname = sample_group_name(i);
    const htri_t exists = H5Lexists(root, gname.c_str(), H5P_DEFAULT);
    if (exists < 0) fail_file(path, "cannot look up group '" + gname + "' (truncated file?)");
    if (exists == 0)
      fail_file(path, "missing group '" + gname + "' (the file claims " + std::to_string(count) +
                          " samples)");
    GroupH g = checked<GroupH>(H5Gopen2(root, gname.c_str(), H5P_DEFAULT), path,
                               "cannot open group '" + gname + "'");
    TrainingSample s;
    s.input = r.volume(g.get(), gname, "input");
    s.target = r.volume(g.get(), gname, "target");
    if (s.target.nx() != s.input.nx() || s.target.ny() != s.input.ny() ||
        s.target.nz() != s.input.nz())
      fail_file(path, "'" + gname + "/target' and '" + gname + "/input' differ in shape");
    s.tilt_max = r.scalar(g.get(), gname, "tilt_max");
    s.tilt_step = r.scalar(g.get(), gname, "tilt_step");
    s.dose = r.scalar(g.get(), gname, "dose");
    s.seed = r.scalar_u64(g.get(), gname, "seed");

    const std::string tname = gname + "/truth";
    if (H5Lexists(g.get(), "truth", H5P_DEFAULT) <= 0)
      fail_file(path, "missing group '" + tname + "'");
    GroupH t = checked<GroupH>(H5Gopen2(g.get(), "truth", H5P_DEFAULT), path,
                               "cannot open group '" + tname + "'");
    DatasetH pos_ds = r.open_dataset(t.get(), tname, "positions");
    const auto pos_dims = r.dims_of(pos_ds.get(), tname + "/positions");
    if (pos_dims.size() != 2 || pos_dims[1] != 3 || pos_dims[0] > 100000000)
      fail_file(path, "dataset '" + tname + "/positions' is " + shape_text(pos_dims) +
                          "; expected N x 3");
    const auto n = static_cast<std::size_t>(pos_dims[0]);
    const auto pos = r.doubles(pos_ds.get(), tname + "/positions", pos_dims);
    s.truth.species = r.strings(t.get(), tname, "species", n);
    for (const auto& sp : s.truth.species)
      if (!find_element(sp))
        fail_file(path, "dataset '" + tname + "/species' holds an unknown element '" + sp + "'");
    s.truth.positions.resize(n);
    for (std::size_t a = 0; a < n; ++a)
      s.truth.positions[a] = Vec3(pos[3 * a], pos[3 * a + 1], pos[3 * a + 2]);

    // Properties: every other dataset of the truth group, in creation order.
    for (const std::string& name :
         link_names(path, t.get(), H5_INDEX_CRT_ORDER, "cannot list group '" + tname + "'")) {
      if (name == "positions" || name == "species") continue;
      DatasetH ds = r.open_dataset(t.get(), tname, name);
      s.truth.properties.emplace_back(
          name, r.doubles(ds.get(), tname + "/" + name, {static_cast<hsize_t>(n)}));
    }
    for (const std::string& name : attribute_names(
             path, t.get(), H5_INDEX_CRT_ORDER, "cannot list the attributes of '" + tname + "'")) {
      const std::string an = tname + "." + name;
      AttrH a = checked<AttrH>(H5Aopen(t.get(), name.c_str(), H5P_DEFAULT), path,
                               "cannot open attribute '" + an + "'");
      s.truth.info.emplace_back(name, r.attr_text(a.get(), an));
    }
    out.push_back(std::move(s));
  }
  if (spec_out) *spec_out = spec;
  return out;
}

std::vector<TrainingSample> read_training_set(const std::string& path, TrainingDataSpec* spec_out) {
  // A set is read twice (checked in a child, then here): the price of surviving hostile files.
  hdf5::parse_in_child(path, "training set", [&] { detail::read_training_set_in_process(path); });
  return detail::read_training_set_in_process(path, spec_out);
}

}  // namespace aet::nn
