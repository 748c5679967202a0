// RESIRE, SIRT and FBP split over MPI ranks, and GENFIRE's gridding (docs/hpc.md). Rank 0 is inside
// reconstruct(); the other ranks join through the worker protocol of aet/hpc/mpi.hpp: rank 0
// broadcasts the plan (options, the whole geometry, sizes), sends each rank its part of the views
// (and of the support and starting volume), every rank runs the same CPU solve on its part
// (solvers.cpp's CpuIteration with the reductions below), and rank 0 collects the volume.
//
// Slab mode (every view tilts about y, no y shift, volume height = view height): a ray of view
// row j crosses volume row j only (its y coordinate is exactly j: the projector's y offset is
// centre(ny) - centre(view ny) = 0, y slope 0, weight 1 on row j and 0 on row j + 1, which the
// projector then skips at a slab's last row), so ranks take contiguous rows and solve them
// independently; they exchange only the R factors' partial sums (and SIRT's weight peak), which
// also keeps FISTA's restarts those of one process. View mode (any other geometry): ranks take
// interleaved views, and the back projection of each iteration is summed over the ranks.
// GENFIRE: ranks grid interleaved views and the gridded sums are added; rank 0 iterates alone.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/hpc/mpi.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "genfire_detail.hpp"
#include "iteration.hpp"
#include "recon_detail.hpp"

namespace aet::detail {
namespace {

constexpr std::uint32_t kReconstructTag = 0x52454331;  // "REC1"
constexpr std::uint32_t kGenfireGridTag = 0x47454e31;  // "GEN1"

enum class Mode : std::uint8_t { slab = 1, views = 2 };

// What every rank knows of the solve: the broadcast request.
struct Plan {
  Mode mode = Mode::views;
  Algorithm algorithm = Algorithm::resire;
  int iterations = 0;
  double step = 0;
  bool positivity = true, accelerate = false, has_support = false, has_initial = false;
  FbpFilter filter = FbpFilter::ramp;
  int threads = 0;  // rank 0's --threads (0 = each rank's default)
  std::int64_t nx = 0, ny = 0, nz = 0, view_nx = 0, view_ny = 0;
  VoxelSize pixel;
  TiltGeometry geometry;                // every view's
  double oversampling = 0, radius = 0;  // GENFIRE's gridding
};

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof v);
  }
  std::vector<std::uint8_t> bytes;
};

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& b) : bytes_(b) {}
  template <class T>
  T get() {
    T v;
    if (at_ + sizeof v > bytes_.size()) throw InternalError("distributed reconstruct: short plan");
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }

 private:
  const std::vector<std::uint8_t>& bytes_;
  std::size_t at_ = 0;
};

std::vector<std::uint8_t> encode(const Plan& p) {
  Writer w;
  w.put(p.mode);
  w.put(p.algorithm);
  w.put(p.iterations);
  w.put(p.step);
  w.put(p.positivity);
  w.put(p.accelerate);
  w.put(p.has_support);
  w.put(p.has_initial);
  w.put(p.filter);
  w.put(p.threads);
  for (std::int64_t v : {p.nx, p.ny, p.nz, p.view_nx, p.view_ny}) w.put(v);
  for (double v : {p.pixel.x, p.pixel.y, p.pixel.z, p.oversampling, p.radius}) w.put(v);
  w.put(static_cast<std::uint64_t>(p.geometry.size()));
  for (const ViewGeometry& g : p.geometry) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) w.put(g.R(r, c));
    w.put(g.shift.x());
    w.put(g.shift.y());
  }
  return w.bytes;
}

Plan decode(const std::vector<std::uint8_t>& bytes) {
  Reader r(bytes);
  Plan p;
  p.mode = r.get<Mode>();
  p.algorithm = r.get<Algorithm>();
  p.iterations = r.get<int>();
  p.step = r.get<double>();
  p.positivity = r.get<bool>();
  p.accelerate = r.get<bool>();
  p.has_support = r.get<bool>();
  p.has_initial = r.get<bool>();
  p.filter = r.get<FbpFilter>();
  p.threads = r.get<int>();
  p.nx = r.get<std::int64_t>();
  p.ny = r.get<std::int64_t>();
  p.nz = r.get<std::int64_t>();
  p.view_nx = r.get<std::int64_t>();
  p.view_ny = r.get<std::int64_t>();
  p.pixel.x = r.get<double>();
  p.pixel.y = r.get<double>();
  p.pixel.z = r.get<double>();
  p.oversampling = r.get<double>();
  p.radius = r.get<double>();
  p.geometry.resize(static_cast<std::size_t>(r.get<std::uint64_t>()));
  for (ViewGeometry& g : p.geometry) {
    for (int i = 0; i < 3; ++i)
      for (int c = 0; c < 3; ++c) g.R(i, c) = r.get<double>();
    g.shift.x() = r.get<double>();
    g.shift.y() = r.get<double>();
  }
  return p;
}

// Every view keeps y fixed (tilt about y, no y shift) and the volume is as high as the views.
bool slab_geometry(const TiltGeometry& geometry, std::int64_t view_ny, std::int64_t ny) {
  if (ny != view_ny) return false;
  for (const ViewGeometry& g : geometry) {
    const Mat3& R = g.R;
    if (std::abs(R(1, 1) - 1.0) >= 1e-9 || std::abs(R(0, 1)) >= 1e-9 || std::abs(R(1, 0)) >= 1e-9 ||
        std::abs(R(2, 1)) >= 1e-9 || std::abs(R(1, 2)) >= 1e-9 || g.shift.y() != 0.0)
      return false;
  }
  return true;
}

// Slab mode: rank r's rows [first, second) of ny, balanced.
std::pair<std::int64_t, std::int64_t> slab_rows(std::int64_t ny, int rank, int size) {
  return {ny * rank / size, ny * (rank + 1) / size};
}

// View mode: rank r's views, interleaved (every size-th from r), so each rank spans the range.
std::vector<std::size_t> rank_views(std::size_t n_views, int rank, int size) {
  std::vector<std::size_t> k;
  for (std::size_t v = static_cast<std::size_t>(rank); v < n_views;
       v += static_cast<std::size_t>(size))
    k.push_back(v);
  return k;
}

// Rows [y0, y1) of every slice of a (x, y, z) array, in (x, y, z) order.
std::vector<float> rows_of(const Array3& a, std::int64_t y0, std::int64_t y1) {
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(a.nx() * (y1 - y0) * a.nz()));
  for (std::int64_t z = 0; z < a.nz(); ++z)
    out.insert(out.end(), a.data() + a.index(0, y0, z), a.data() + a.index(0, y1, z));
  return out;
}

std::vector<float> slices_of(const Array3& a, const std::vector<std::size_t>& ks) {
  std::vector<float> out;
  const std::size_t n = static_cast<std::size_t>(a.nx() * a.ny());
  out.reserve(n * ks.size());
  for (std::size_t k : ks)
    out.insert(out.end(), a.slice(static_cast<std::int64_t>(k)),
               a.slice(static_cast<std::int64_t>(k)) + n);
  return out;
}

Array3 array_of(std::vector<float> data, std::int64_t nx, std::int64_t ny, std::int64_t nz,
                const VoxelSize& voxel) {
  Array3 a(nx, ny, nz);
  if (data.size() != a.size())
    throw InternalError("distributed reconstruct: a part has the wrong size");
  a.vector() = std::move(data);
  a.voxel_size = voxel;
  return a;
}

void sum_doubles(double* v, std::size_t n) {
  mpi_sum(v, n);
}
void sum_floats(float* v, std::size_t n) {
  mpi_sum(v, n);
}
double max_of(double v) {
  return mpi_max(v);
}

// This rank's part of the solve (the same code on every rank). `views` holds the part's views
// (slab: its rows of every view; view mode: its views), `support` / `initial` its part.
ReconResult solve_part(const Plan& plan, const Array3& views, const Array3* support,
                       const Array3* initial,
                       const std::function<void(int, double, double)>& on_iteration) {
  const int rank = mpi_rank(), size = mpi_size();
  TiltGeometry geometry = plan.geometry;
  std::vector<double> fbp_weights;
  if (plan.algorithm == Algorithm::fbp) fbp_weights = fbp_angular_weights(plan.geometry);
  std::int64_t ny = plan.ny;
  if (plan.mode == Mode::slab) {
    const auto rows = slab_rows(plan.ny, rank, size);
    ny = rows.second - rows.first;
  } else {
    TiltGeometry mine;
    std::vector<double> weights;
    for (std::size_t k : rank_views(plan.geometry.size(), rank, size)) {
      mine.push_back(plan.geometry[k]);
      if (!fbp_weights.empty()) weights.push_back(fbp_weights[k]);
    }
    geometry = std::move(mine);
    fbp_weights = std::move(weights);
  }
  Reductions red;
  red.sum = sum_doubles;
  red.max = max_of;
  red.total_views = static_cast<std::int64_t>(plan.geometry.size());
  if (plan.mode == Mode::views) red.sum_volume = sum_floats;

  ReconOptions opt;
  opt.algorithm = plan.algorithm;
  opt.iterations = plan.iterations;
  opt.step = plan.step;
  opt.positivity = plan.positivity;
  opt.accelerate = plan.accelerate;
  opt.filter = plan.filter;
  opt.support = support;
  opt.initial = initial;
  opt.on_iteration = on_iteration;
  if (plan.algorithm != Algorithm::fbp)
    return run_iterative_cpu(views, geometry, opt, plan.nx, ny, plan.nz, &red);

  // FBP: each rank filters and back projects its part; view mode sums the volumes.
  ReconResult result;
  const Device cpu;
  Array3 v = back_project(fbp_filter_views(views, fbp_weights, plan.filter), geometry, plan.nx, ny,
                          plan.nz, cpu);
  if (red.sum_volume) red.sum_volume(v.data(), v.size());
  if (support)
    for (std::size_t i = 0; i < v.size(); ++i)
      if (support->data()[i] == 0.0f) v.data()[i] = 0.0f;
  const RFactors r =
      r_factors(views, forward_project(v, geometry, views.nx(), views.ny(), cpu), red.sum);
  result.r1.push_back(r.r1);
  result.r2.push_back(r.r2);
  if (on_iteration) on_iteration(1, r.r1, r.r2);
  result.volume = std::move(v);
  return result;
}

// The volume-sized inputs (support, starting volume) go out as slabs or whole.
std::vector<float> share_volume(const Plan& plan, const Array3* whole) {
  if (plan.mode == Mode::views) {
    std::vector<float> v = mpi_rank() == 0 ? whole->vector() : std::vector<float>();
    mpi_broadcast(v);
    return v;
  }
  std::vector<std::vector<float>> blocks;
  if (mpi_rank() == 0)
    for (int r = 0; r < mpi_size(); ++r) {
      const auto rows = slab_rows(plan.ny, r, mpi_size());
      blocks.push_back(rows_of(*whole, rows.first, rows.second));
    }
  return mpi_scatter(blocks);
}

// The part dims of this rank: views (x, y, n) and volume (x, y, z).
struct PartDims {
  std::int64_t view_ny, n_views, ny;
};
PartDims part_dims(const Plan& plan) {
  PartDims d{plan.view_ny, 0, plan.ny};
  if (plan.mode == Mode::slab) {
    const auto rows = slab_rows(plan.ny, mpi_rank(), mpi_size());
    d.view_ny = d.ny = rows.second - rows.first;
    d.n_views = static_cast<std::int64_t>(plan.geometry.size());
  } else {
    d.n_views =
        static_cast<std::int64_t>(rank_views(plan.geometry.size(), mpi_rank(), mpi_size()).size());
  }
  return d;
}

// The parts every rank receives, in the order rank 0 sends them.
ReconResult receive_and_solve(const Plan& plan, std::vector<float> my_views,
                              const std::function<void(int, double, double)>& on_iteration,
                              const Array3* whole_support, const Array3* whole_initial) {
  const PartDims d = part_dims(plan);
  const Array3 views =
      array_of(std::move(my_views), plan.view_nx, d.view_ny, d.n_views, plan.pixel);
  const VoxelSize voxel{plan.pixel.x, plan.pixel.x, plan.pixel.x};
  Array3 support, initial;
  if (plan.has_support)
    support = array_of(share_volume(plan, whole_support), plan.nx, d.ny, plan.nz, voxel);
  if (plan.has_initial)
    initial = array_of(share_volume(plan, whole_initial), plan.nx, d.ny, plan.nz, voxel);
  return solve_part(plan, views, plan.has_support ? &support : nullptr,
                    plan.has_initial ? &initial : nullptr, on_iteration);
}

// A worker's side of a request.
void serve_reconstruct(const std::vector<std::uint8_t>& request) {
  const Plan plan = decode(request);
  set_num_threads(plan.threads);
  ReconResult part = receive_and_solve(plan, mpi_scatter({}), nullptr, nullptr, nullptr);
  if (plan.mode == Mode::slab) mpi_gather(part.volume.vector());
}

const bool g_registered = register_mpi_service(kReconstructTag, serve_reconstruct);

// GENFIRE's gridding on every rank: the padding from all views, the sums of this rank's views,
// added over the ranks.
genfire::GridSums grid_share(genfire::Problem& p, const Plan& plan, std::vector<float> my_views) {
  genfire::set_padding(p, plan.geometry, plan.radius);
  const std::vector<std::size_t> mine = rank_views(plan.geometry.size(), mpi_rank(), mpi_size());
  TiltGeometry geometry;
  for (std::size_t k : mine) geometry.push_back(plan.geometry[k]);
  const Array3 views = array_of(std::move(my_views), plan.view_nx, plan.view_ny,
                                static_cast<std::int64_t>(mine.size()), plan.pixel);
  genfire::GridSums sums = genfire::grid_sums(p, views, geometry, plan.radius);
  mpi_sum(reinterpret_cast<float*>(sums.sum.data()), 2 * sums.sum.size());
  mpi_sum(sums.wsum.data(), sums.wsum.size());
  return sums;
}

genfire::Problem genfire_problem(const Plan& plan) {
  GenfireOptions go;
  go.oversampling = plan.oversampling;
  return genfire::problem_sizes(plan.view_nx, plan.view_ny,
                                static_cast<std::int64_t>(plan.geometry.size()), go, plan.nx,
                                plan.ny, plan.nz);
}

void serve_genfire_grid(const std::vector<std::uint8_t>& request) {
  const Plan plan = decode(request);
  set_num_threads(plan.threads);
  genfire::Problem p = genfire_problem(plan);
  grid_share(p, plan, mpi_scatter({}));
}

const bool g_genfire_registered = register_mpi_service(kGenfireGridTag, serve_genfire_grid);

const char* mode_name(Mode m) {
  return m == Mode::slab ? "slab" : "view";
}

}  // namespace

bool distributes(const ReconOptions& opt, const TiltGeometry& geometry, std::int64_t view_ny,
                 std::int64_t ny) {
  (void)g_registered;
  const int size = mpi_size();
  if (opt.algorithm == Algorithm::genfire) return false;  // run_genfire splits its gridding
  if (opt.device.kind != DeviceKind::cpu) {
    log_info("reconstruct: a CUDA solve is not distributed; it runs on MPI rank 0 alone");
    return false;
  }
  const bool slab = slab_geometry(geometry, view_ny, ny) && ny >= size;
  if (!slab && static_cast<std::int64_t>(geometry.size()) < size) {
    log_info("reconstruct: fewer views than MPI ranks; the solve runs on rank 0 alone");
    return false;
  }
  return true;
}

ReconResult reconstruct_distributed(const Array3& views, const TiltGeometry& geometry,
                                    const ReconOptions& opt, std::int64_t nx, std::int64_t ny,
                                    std::int64_t nz) {
  const int size = mpi_size();
  Plan plan;
  plan.mode = slab_geometry(geometry, views.ny(), ny) && ny >= size ? Mode::slab : Mode::views;
  plan.algorithm = opt.algorithm;
  plan.iterations = opt.iterations;
  plan.step = opt.step;
  plan.positivity = opt.positivity;
  plan.accelerate = opt.accelerate;
  plan.has_support = opt.support != nullptr;
  plan.has_initial = opt.initial != nullptr;
  plan.filter = opt.filter;
  plan.threads = requested_num_threads();
  plan.nx = nx;
  plan.ny = ny;
  plan.nz = nz;
  plan.view_nx = views.nx();
  plan.view_ny = views.ny();
  plan.pixel = views.voxel_size;
  plan.geometry = geometry;
  log_info("reconstruct: " + std::to_string(size) + " MPI ranks, " + mode_name(plan.mode) +
           " mode");

  mpi_request(kReconstructTag, encode(plan));
  // From here the workers wait in this solve's collectives: a failure on rank 0 can only end the
  // whole job.
  try {
    std::vector<std::vector<float>> blocks;
    for (int r = 0; r < size; ++r) {
      if (plan.mode == Mode::slab) {
        const auto rows = slab_rows(ny, r, size);
        blocks.push_back(rows_of(views, rows.first, rows.second));
      } else {
        blocks.push_back(slices_of(views, rank_views(geometry.size(), r, size)));
      }
    }
    std::vector<float> mine = mpi_scatter(blocks);
    blocks.clear();
    ReconResult result =
        receive_and_solve(plan, std::move(mine), opt.on_iteration, opt.support, opt.initial);
    result.mpi_ranks = size;
    result.mpi_mode = mode_name(plan.mode);
    if (plan.mode == Mode::views) return result;
    // Slab mode: the slabs, rank by rank, into the volume.
    const std::vector<float> all = mpi_gather(result.volume.vector());
    Array3 volume(nx, ny, nz);
    volume.voxel_size = result.volume.voxel_size;
    std::size_t at = 0;
    for (int r = 0; r < size; ++r) {
      const auto rows = slab_rows(ny, r, size);
      for (std::int64_t z = 0; z < nz; ++z)
        for (std::int64_t y = rows.first; y < rows.second; ++y, at += static_cast<std::size_t>(nx))
          std::copy(all.begin() + static_cast<std::ptrdiff_t>(at),
                    all.begin() + static_cast<std::ptrdiff_t>(at + nx),
                    volume.data() + volume.index(0, y, z));
    }
    result.volume = std::move(volume);
    return result;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aet: error in the distributed reconstruction: %s\n", e.what());
    mpi_abort(1);
  }
}

namespace genfire {

void grid_views_distributed(Problem& p, const Array3& views, const TiltGeometry& geometry,
                            const ReconOptions& opt) {
  (void)g_genfire_registered;
  const int size = mpi_size();
  Plan plan;
  plan.algorithm = Algorithm::genfire;
  plan.threads = requested_num_threads();
  plan.nx = p.nx;
  plan.ny = p.ny;
  plan.nz = p.nz;
  plan.view_nx = views.nx();
  plan.view_ny = views.ny();
  plan.pixel = views.voxel_size;
  plan.geometry = geometry;
  plan.oversampling = opt.genfire.oversampling;
  plan.radius = opt.genfire.interpolation_radius;
  log_info("reconstruct: GENFIRE's gridding over " + std::to_string(size) +
           " MPI ranks; the iterations on rank 0");
  mpi_request(kGenfireGridTag, encode(plan));
  try {
    std::vector<std::vector<float>> blocks;
    for (int r = 0; r < size; ++r)
      blocks.push_back(slices_of(views, rank_views(geometry.size(), r, size)));
    std::vector<float> mine = mpi_scatter(blocks);
    blocks.clear();
    finish_grid(p, grid_share(p, plan, std::move(mine)), opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aet: error in the distributed GENFIRE gridding: %s\n", e.what());
    mpi_abort(1);
  }
}

}  // namespace genfire
}  // namespace aet::detail
