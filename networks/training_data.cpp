// Training data for the missing-wedge network: random particle -> analytic tilt series -> RESIRE
// reconstruction (input) and ideal Gaussian atoms (target), plus the HDF5 file that holds them.
#include "aet/networks/training_data.hpp"
#include "aet/core/progress.hpp"

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
#include "aet/core/rng.hpp"
#include "aet/recon/solvers.hpp"
#include "io/hdf5_handles.hpp"
#include "phantoms/nanoparticle.hpp"
#include "phantoms/tilt_series.hpp"

namespace fs = std::filesystem;

namespace aet::nn {
namespace {

constexpr double kZExponent = 1.7;  // the simulator's HAADF contrast, ImagingModel::z_exponent
constexpr double kCutoffSigmas = 4.0;
constexpr const char* kFormat = "aet-training-set";
constexpr int kFormatVersion = 1;

// Streams of the sample seed: one for the sample's parameters, the rest derived from it.
constexpr std::uint64_t kDrawStream = 0;
constexpr std::uint64_t kIndexStream = 1;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

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

bool is_fcc_element(const std::string& symbol) {
  const Element* e = find_element(symbol);
  return e && e->lattice == Lattice::fcc;
}

// Everything a sample draws, in one fixed order so that a change of shape does not shift the
// other draws (each number is drawn whether it is used or not).
struct Draw {
  std::string element;
  phantoms::Shape shape = phantoms::Shape::sphere;
  double radius = 0, vacancy = 0, jitter = 0, tilt_max = 0, tilt_step = 0, dose = 0, tail = 0,
         background = 0;
  bool zone_axis = false;  // lattice along the frame (zone_axis_fraction), else random
  std::uint64_t orientation_seed = 0;
  double wulff_100 = 1, wulff_110 = 1;
  bool wulff_has_110 = false;
  std::uint64_t particle_seed = 0, noise_seed = 0;
};

Draw draw_sample(const TrainingDataSpec& spec, std::uint64_t seed) {
  Rng rng = Rng::stream(seed, kDrawStream);
  Draw d;
  d.element = spec.elements[rng.below(spec.elements.size())];
  d.shape = phantoms::parse_shape(spec.shapes[rng.below(spec.shapes.size())]);
  d.radius = rng.uniform(spec.radius_min, spec.radius_max);
  d.vacancy = rng.uniform(0.0, spec.vacancy_max);
  d.jitter = spec.jitter_sd * rng.uniform(0.75, 1.25);
  d.tilt_max = rng.uniform(spec.tilt_max_min, spec.tilt_max_max);
  d.tilt_step = spec.tilt_steps[rng.below(spec.tilt_steps.size())];
  d.dose = std::exp(rng.uniform(std::log(spec.dose_min), std::log(spec.dose_max)));
  d.tail = rng.uniform(0.0, spec.tail_fraction_max);
  // Wulff ratios of fcc metals: gamma_100 / gamma_111 about 1.0-1.25, gamma_110 a little more.
  d.wulff_100 = rng.uniform(1.0, 1.25);
  d.wulff_110 = rng.uniform(1.1, 1.4);
  d.wulff_has_110 = rng.uniform() < 0.5;
  d.particle_seed = rng.next_u64();
  d.noise_seed = rng.next_u64();
  // Drawn last, so that the draws before it are those of sets made before it existed.
  d.background = rng.uniform(0.0, spec.background_max);
  d.zone_axis = rng.uniform() < spec.zone_axis_fraction;
  d.orientation_seed = rng.next_u64();
  return d;
}

// One of the 24 rotations that map the lattice axes onto the frame's (so that each axis of the
// lattice, c of an L1_0 or hcp cell among them, can end up along the beam or the tilt axis), then
// a rotation by an angle uniform in [0, max_tilt_deg] about a uniformly random axis.
Eigen::Quaterniond zone_axis_orientation(std::uint64_t seed, double max_tilt_deg) {
  Rng rng(seed);
  static const int perms[6][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};
  const int* pm = perms[rng.below(6)];
  Mat3 P = Mat3::Zero();
  for (int r = 0; r < 3; ++r) P(r, pm[r]) = rng.uniform() < 0.5 ? -1.0 : 1.0;
  // Of the 48 signed permutations, flipping one row maps the 24 reflections onto the rotations.
  if (P.determinant() < 0) P.row(2) *= -1.0;
  Vec3 axis;
  do {
    axis = Vec3(rng.normal(), rng.normal(), rng.normal());
  } while (axis.norm() < 1e-9);
  const double angle = rng.uniform(0.0, max_tilt_deg) * M_PI / 180.0;
  const Mat3 M = Eigen::AngleAxisd(angle, axis.normalized()).toRotationMatrix() * P;
  return Eigen::Quaterniond(M);
}

// The particle of the draw. Sizes are scaled so that every shape has about the volume of the
// sphere of the drawn radius (octahedron {111} inradius 0.845 r, Archimedean truncated
// octahedron 0.879 r, cube half-edge 0.806 r, cuboctahedron circumradius 1.21 r); the random
// union of spheres is about as large at size 1.15 r.
phantoms::ParticleSpec particle_spec(const TrainingDataSpec& spec, const Draw& d) {
  using phantoms::Shape;
  phantoms::ParticleSpec p;
  p.element = d.element;
  p.shape = d.shape;
  p.vacancy_fraction = d.vacancy;
  p.jitter_sd = d.jitter;
  p.random_orientation = !d.zone_axis;
  if (d.zone_axis) p.orientation = zone_axis_orientation(d.orientation_seed, spec.zone_axis_tilt);
  p.seed = d.particle_seed;
  const double r = d.radius;
  switch (d.shape) {
    case Shape::sphere:
      p.size = r;
      break;
    case Shape::octahedron:
      p.size = 0.845 * r;
      break;
    case Shape::truncated_octahedron:
      p.size = 0.879 * r;
      break;
    case Shape::cube:
      p.size = 0.806 * r;
      break;
    case Shape::cuboctahedron:
      if (is_fcc_element(d.element)) {
        // Shell n has its vertices at n nearest-neighbour distances (a / sqrt 2).
        const double nn = element(d.element).a / std::sqrt(2.0);
        p.shells = std::max(1, static_cast<int>(std::lround(1.21 * r / nn)));
      } else {
        // Closed shells exist for fcc only; elsewhere the same proportions as facets:
        // {100} at R / sqrt 2 and {111} at R sqrt(2/3), R = 1.21 r.
        p.shape = Shape::wulff;
        p.facets = {{1, 0, 0, 0.856 * r}, {1, 1, 1, 0.988 * r}};
      }
      break;
    case Shape::wulff:
      p.facets = {{1, 1, 1, 0.93 * r}, {1, 0, 0, 0.93 * r * d.wulff_100}};
      if (d.wulff_has_110) p.facets.push_back({1, 1, 0, 0.93 * r * d.wulff_110});
      break;
    case Shape::random:
      p.size = 1.15 * r;
      break;
  }
  return p;
}

// ---- HDF5 ----------------------------------------------------------------------------------

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

// ---- spec and samples ----------------------------------------------------------------------

void check_training_spec(const TrainingDataSpec& s) {
  auto positive = [](double v, const char* what) {
    if (!std::isfinite(v) || v <= 0)
      fail_input(std::string("training data: ") + what + " must be > 0, got " + fmt(v));
  };
  auto range = [&](double lo, double hi, const char* what) {
    positive(lo, what);
    positive(hi, what);
    if (hi < lo)
      fail_input(std::string("training data: ") + what + " range is reversed (" + fmt(lo) + " > " +
                 fmt(hi) + ")");
  };
  if (s.elements.empty()) fail_input("training data: no elements");
  if (s.shapes.empty()) fail_input("training data: no shapes");
  range(s.radius_min, s.radius_max, "radius");
  if (s.radius_min < 3.0)
    fail_input("training data: radius must be >= 3 A (smaller particles hold too few atoms), got " +
               fmt(s.radius_min));
  if (s.radius_max > 100.0)
    fail_input("training data: radius must be <= 100 A, got " + fmt(s.radius_max));
  range(s.tilt_max_min, s.tilt_max_max, "tilt_max");
  if (s.tilt_max_max > 90.0)
    fail_input("training data: tilt_max must be <= 90 degrees, got " + fmt(s.tilt_max_max));
  if (s.tilt_steps.empty()) fail_input("training data: no tilt steps");
  for (double st : s.tilt_steps) {
    positive(st, "tilt step");
    if (st > s.tilt_max_min)
      fail_input("training data: tilt step " + fmt(st) + " exceeds the smallest tilt_max " +
                 fmt(s.tilt_max_min) + " (fewer than 3 views)");
  }
  range(s.dose_min, s.dose_max, "dose");
  if (!std::isfinite(s.jitter_sd) || s.jitter_sd < 0 || s.jitter_sd > 2.0)
    fail_input("training data: jitter sd must be in [0, 2] A, got " + fmt(s.jitter_sd));
  if (!std::isfinite(s.vacancy_max) || s.vacancy_max < 0 || s.vacancy_max > 0.5)
    fail_input("training data: vacancy fraction must be in [0, 0.5], got " + fmt(s.vacancy_max));
  if (!std::isfinite(s.angle_error_sd) || s.angle_error_sd < 0)
    fail_input("training data: angle error must be >= 0, got " + fmt(s.angle_error_sd));
  if (!std::isfinite(s.tail_fraction_max) || s.tail_fraction_max < 0 || s.tail_fraction_max >= 1)
    fail_input("training data: tail fraction must be in [0, 1), got " + fmt(s.tail_fraction_max));
  if (!std::isfinite(s.background_max) || s.background_max < 0 || s.background_max > 10)
    fail_input("training data: background must be in [0, 10], got " + fmt(s.background_max));
  if (!(s.zone_axis_fraction >= 0 && s.zone_axis_fraction <= 1))
    fail_input("training data: zone-axis fraction must be in [0, 1], got " +
               fmt(s.zone_axis_fraction));
  if (!(s.zone_axis_tilt >= 0 && s.zone_axis_tilt <= 45))
    fail_input("training data: zone-axis tilt must be in [0, 45] degrees, got " +
               fmt(s.zone_axis_tilt));
  positive(s.pixel, "pixel");
  if (!std::isfinite(s.view_margin) || s.view_margin < 0)
    fail_input("training data: view margin must be >= 0, got " + fmt(s.view_margin));
  if (s.iterations < 1)
    fail_input("training data: iterations must be >= 1, got " + std::to_string(s.iterations));
  if (!std::isfinite(s.recon_step) || s.recon_step <= 0 || s.recon_step >= 2.0)
    fail_input("training data: RESIRE step must be in (0, 2), got " + fmt(s.recon_step));
  positive(s.target_sigma, "target sigma");
  for (const std::string& sh : s.shapes) phantoms::parse_shape(sh);
  // Every element must build: a small sphere names an unknown symbol or a missing lattice.
  for (const std::string& el : s.elements) {
    if (el.empty() || el.find(',') != std::string::npos)
      fail_input("training data: bad element '" + el + "'");
    phantoms::ParticleSpec p;
    p.element = el;
    p.size = 4.0;
    try {
      phantoms::build_particle(p);
    } catch (const InputError& e) {
      fail_input(std::string("training data: element '") + el + "': " + e.what());
    }
  }
}

std::uint64_t training_sample_seed(std::uint64_t base, std::uint64_t index) {
  return Rng::stream(base, kIndexStream + index).next_u64();
}

namespace {
AtomModel build_drawn_particle(const TrainingDataSpec& spec, const Draw& d) {
  phantoms::ParticleSpec ps = particle_spec(spec, d);
  try {
    return phantoms::build_particle(ps);
  } catch (const InputError&) {
    // A lumpy random union at the smallest radii can miss every lattice site: fall back to a
    // sphere of the same radius, which always holds its centre atom.
    ps.shape = phantoms::Shape::sphere;
    ps.size = d.radius;
    ps.facets.clear();
    return phantoms::build_particle(ps);
  }
}
}  // namespace

AtomModel training_particle(const TrainingDataSpec& spec, std::uint64_t seed) {
  check_training_spec(spec);
  return build_drawn_particle(spec, draw_sample(spec, seed));
}

TrainingSample make_training_sample(const TrainingDataSpec& spec, std::uint64_t seed,
                                    const Device& dev) {
  check_training_spec(spec);
  const Draw d = draw_sample(spec, seed);
  TrainingSample s;
  s.seed = seed;
  s.tilt_max = d.tilt_max;
  s.tilt_step = d.tilt_step;
  s.dose = d.dose;
  s.truth = build_drawn_particle(spec, d);

  phantoms::SimulationSpec sim;
  sim.pixel = spec.pixel;
  sim.nx = sim.ny = phantoms::fitting_view_size(s.truth, spec.pixel, spec.view_margin);
  for (double t : phantoms::TiltRange{-d.tilt_max, d.tilt_max, d.tilt_step}.angles())
    sim.nominal.push_back(Euler{0.0, t, 0.0});
  sim.dose = d.dose;
  sim.angle_error_sd = spec.angle_error_sd;
  sim.imaging.tail_fraction = d.tail;
  sim.background = d.background;
  sim.seed = d.noise_seed;
  const phantoms::TiltSeries series = phantoms::simulate_tilt_series(s.truth, sim, dev);

  // The network sees what a real reconstruction gives: the nominal angles, not the true ones.
  TiltGeometry geometry;
  for (const Euler& e : series.nominal) geometry.push_back(ViewGeometry::from_euler(e));
  ReconOptions opt;
  opt.algorithm = Algorithm::resire;
  opt.iterations = spec.iterations;
  opt.step = spec.recon_step;
  opt.positivity = true;
  opt.device = dev;
  const std::int64_t n = series.views.nx();
  opt.nx = opt.ny = opt.nz = n;
  s.input = reconstruct(series.views, geometry, opt).volume;
  s.input.voxel_size = VoxelSize{spec.pixel, spec.pixel, spec.pixel};
  normalise_volume(s.input);

  s.target = ideal_atom_volume(s.truth, n, n, n, spec.pixel, spec.target_sigma);
  s.truth.set_info("training_seed", std::to_string(seed));
  return s;
}

Array3 ideal_atom_volume(const AtomModel& atoms, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                         double voxel, double sigma) {
  if (!std::isfinite(voxel) || voxel <= 0) fail_input("ideal atom volume: voxel must be > 0");
  if (!std::isfinite(sigma) || sigma <= 0) fail_input("ideal atom volume: sigma must be > 0");
  if (atoms.species.size() != atoms.positions.size())
    fail_input("ideal atom volume: the model has " + std::to_string(atoms.species.size()) +
               " species for " + std::to_string(atoms.positions.size()) + " positions");
  Array3 out(nx, ny, nz);
  out.voxel_size = VoxelSize{voxel, voxel, voxel};
  if (atoms.size() == 0) return out;

  int zmax = 0;
  std::vector<int> z(atoms.size());
  for (std::size_t i = 0; i < atoms.size(); ++i) {
    z[i] = element(atoms.species[i]).z;
    zmax = std::max(zmax, z[i]);
    for (int k = 0; k < 3; ++k)
      if (!std::isfinite(atoms.positions[i][k]))
        fail_input("ideal atom volume: atom " + std::to_string(i) + " has a non-finite position");
  }

  const std::int64_t n[3] = {nx, ny, nz};
  const double reach = kCutoffSigmas * sigma / voxel;  // voxels
  const double cut2 = reach * reach;
  const double inv2s2 = voxel * voxel / (2.0 * sigma * sigma);  // per voxel^2
  for (std::size_t a = 0; a < atoms.size(); ++a) {
    const double height = std::pow(static_cast<double>(z[a]) / zmax, kZExponent);
    std::int64_t lo[3], hi[3];
    double c[3];
    bool outside = false;
    for (int k = 0; k < 3; ++k) {
      c[k] = centre_index(n[k]) + atoms.positions[a][k] / voxel;
      const double l = std::ceil(c[k] - reach), h = std::floor(c[k] + reach);
      if (h < 0 || l > static_cast<double>(n[k] - 1)) {
        outside = true;
        break;
      }
      lo[k] = std::max<std::int64_t>(0, static_cast<std::int64_t>(l));
      hi[k] = std::min<std::int64_t>(n[k] - 1, static_cast<std::int64_t>(h));
    }
    if (outside) continue;
    for (std::int64_t zz = lo[2]; zz <= hi[2]; ++zz) {
      const double dz = static_cast<double>(zz) - c[2];
      for (std::int64_t yy = lo[1]; yy <= hi[1]; ++yy) {
        const double dy = static_cast<double>(yy) - c[1];
        const double r2zy = dz * dz + dy * dy;
        if (r2zy > cut2) continue;
        float* row = &out(0, yy, zz);
        for (std::int64_t xx = lo[0]; xx <= hi[0]; ++xx) {
          const double dx = static_cast<double>(xx) - c[0];
          const double r2 = r2zy + dx * dx;
          if (r2 > cut2) continue;
          row[xx] = static_cast<float>(row[xx] + height * std::exp(-r2 * inv2s2));
        }
      }
    }
  }
  return out;
}

double normalisation_scale(const Array3& v) {
  if (v.empty()) fail_input("normalisation: the volume is empty");
  for (float x : v.vector())
    if (!std::isfinite(x)) fail_input("normalisation: the volume holds non-finite values");
  const std::int64_t nx = v.nx(), ny = v.ny(), nz = v.nz();
  // Local maxima: positive and >= every neighbour, where an equal neighbour earlier in memory
  // wins, so that a plateau counts once.
  std::vector<float> peaks;
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        const float c = v(x, y, z);
        if (!(c > 0.0f)) continue;
        bool is_max = true;
        for (std::int64_t dz = -1; dz <= 1 && is_max; ++dz) {
          const std::int64_t zz = z + dz;
          if (zz < 0 || zz >= nz) continue;
          for (std::int64_t dy = -1; dy <= 1 && is_max; ++dy) {
            const std::int64_t yy = y + dy;
            if (yy < 0 || yy >= ny) continue;
            for (std::int64_t dx = -1; dx <= 1; ++dx) {
              const std::int64_t xx = x + dx;
              if (xx < 0 || xx >= nx || (dx == 0 && dy == 0 && dz == 0)) continue;
              const float o = v(xx, yy, zz);
              const bool earlier = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
              if (o > c || (o == c && earlier)) {
                is_max = false;
                break;
              }
            }
          }
        }
        if (is_max) peaks.push_back(c);
      }
  if (peaks.empty()) fail_input("normalisation: the volume has no positive voxel");
  std::sort(peaks.begin(), peaks.end(), [](float a, float b) { return a > b; });
  // The 4th highest peak as reference: up to three isolated hot voxels cannot set the scale.
  const double reference = peaks[std::min<std::size_t>(3, peaks.size() - 1)];
  std::size_t strong = 0;
  while (strong < peaks.size() && peaks[strong] >= 0.5 * reference) ++strong;
  // Median of the strong peaks (sorted in descending order).
  const std::size_t mid = strong / 2;
  return strong % 2 == 1 ? static_cast<double>(peaks[mid])
                         : 0.5 * (static_cast<double>(peaks[mid - 1]) + peaks[mid]);
}

double normalise_volume(Array3& v) {
  const double scale = normalisation_scale(v);
  const double inv = 1.0 / scale;
  for (float& x : v.vector()) x = static_cast<float>(x * inv);
  return scale;
}

// ---- HDF5 file -----------------------------------------------------------------------------

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

std::vector<TrainingSample> read_training_set(const std::string& path, TrainingDataSpec* spec_out) {
  FileH file = open_for_reading(path);
  const Reader r{path};
  const hid_t root = file.get();
  if (!r.has_attr(root, "format") || r.attr_string(root, "format") != kFormat)
    fail_file(path,
              std::string("not an aet training set (no format = \"") + kFormat + "\" attribute)");
  const double version = r.attr_double(root, "format_version");
  if (version != kFormatVersion)
    fail_file(path, "training set format version " + fmt(version) +
                        " is not supported (this aet reads version " +
                        std::to_string(kFormatVersion) + ")");
  const double count_d = r.attr_double(root, "count");
  if (!(count_d >= 0) || count_d > 1e9 || count_d != std::floor(count_d))
    fail_file(path, "bad sample count " + fmt(count_d));
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
    fail_file(path, "bad iteration count " + fmt(iterations));
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

}  // namespace aet::nn
