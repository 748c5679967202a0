// CPU reference of the analytic Gaussian projector. Scatter per atom: the 2D Gaussian is
// separable, so each atom needs one row of u factors and one column of v factors (a few dozen
// erfc calls) and then a rank-1 update of its footprint. Threads take whole views, and each
// view is summed in atom order, so the result does not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "phantoms/gaussian_pixel.hpp"
#include "phantoms/project_atoms_detail.hpp"

namespace aet::phantoms::detail {
namespace {

// Components of every atom, computed once for all views.
std::vector<ProjectedAtom> projected_atoms(const GaussianAtoms& atoms, const ImagingModel& im) {
  std::vector<ProjectedAtom> out(atoms.positions.size());
  for (std::size_t a = 0; a < out.size(); ++a)
    out[a] = projected_atom(atoms.weight[a], atoms.sigma[a], im.probe_sigma, im.tail_fraction,
                            im.tail_sigma);
  return out;
}

// Adds every atom of one view into acc (nx * ny, zeroed by the caller).
void project_view(const GaussianAtoms& atoms, const std::vector<ProjectedAtom>& comps,
                  const ViewGeometry& g, long long nx, long long ny, double pixel,
                  std::vector<double>& acc, std::vector<double>& gx, std::vector<double>& gy) {
  for (std::size_t a = 0; a < comps.size(); ++a) {
    const Vec3 q = g.map(atoms.positions[a]);
    const ProjectedAtom& pa = comps[a];
    for (int c = 0; c < pa.count; ++c) {
      const double w = pa.c[c].weight, s = pa.c[c].sigma;
      if (w == 0.0) continue;
      const double reach = kGaussianCutoff * s;
      long long i0, i1, j0, j1;
      sample_window(q.x(), reach, nx, pixel, i0, i1);
      sample_window(q.y(), reach, ny, pixel, j0, j1);
      if (i0 > i1 || j0 > j1) continue;  // footprint entirely outside the view
      gx.resize(static_cast<std::size_t>(i1 - i0 + 1));
      gy.resize(static_cast<std::size_t>(j1 - j0 + 1));
      for (long long i = i0; i <= i1; ++i)
        gx[static_cast<std::size_t>(i - i0)] = interval_mass(
            sample_lower_edge(i, nx, pixel), sample_upper_edge(i, nx, pixel), q.x(), s);
      for (long long j = j0; j <= j1; ++j)
        gy[static_cast<std::size_t>(j - j0)] = interval_mass(
            sample_lower_edge(j, ny, pixel), sample_upper_edge(j, ny, pixel), q.y(), s);
      for (long long j = j0; j <= j1; ++j) {
        const double wy = w * gy[static_cast<std::size_t>(j - j0)];
        if (wy == 0.0) continue;
        double* row = acc.data() + static_cast<std::size_t>(j * nx);
        const double* fx = gx.data() - i0;
        for (long long i = i0; i <= i1; ++i) row[i] += wy * fx[i];
      }
    }
  }
}

}  // namespace

Array3 project_atoms_cpu(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                         std::int64_t ny, double pixel, const ImagingModel& im, int threads) {
  check_projection_inputs(atoms, views, nx, ny, pixel, im);
  const auto nviews = static_cast<std::int64_t>(views.size());
  Array3 out(nx, ny, nviews);
  out.voxel_size = VoxelSize{pixel, pixel, pixel};
  const std::vector<ProjectedAtom> comps = projected_atoms(atoms, im);

  int nthreads = threads > 0 ? threads : num_threads();
  nthreads = static_cast<int>(std::clamp<std::int64_t>(nthreads, 1, nviews));

  // A progress bar only when the run is long enough to be worth watching: estimated pixel
  // updates (footprint area per component) above a few hundred million.
  double work = 0.0;
  for (const ProjectedAtom& pa : comps)
    for (int c = 0; c < pa.count; ++c) {
      const double side = std::min(2.0 * kGaussianCutoff * pa.c[c].sigma / pixel + 3.0,
                                   static_cast<double>(std::max(nx, ny)));
      work += side * side;
    }
  work *= static_cast<double>(nviews);
  const bool show_progress = work > 3e8;

  std::atomic<std::int64_t> next{0}, done{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::unique_ptr<Progress> bar;
  if (show_progress) bar = std::make_unique<Progress>("project", nviews);
  // Progress is not thread-safe: only the calling thread (reporter) draws.
  auto worker = [&](bool reporter) {
    try {
      Progress* progress = reporter ? bar.get() : nullptr;
      std::vector<double> acc(static_cast<std::size_t>(nx * ny)), gx, gy;
      for (std::int64_t k; (k = next.fetch_add(1)) < nviews;) {
        std::fill(acc.begin(), acc.end(), 0.0);
        project_view(atoms, comps, views[static_cast<std::size_t>(k)], nx, ny, pixel, acc, gx, gy);
        std::transform(acc.begin(), acc.end(), out.slice(k),
                       [](double v) { return static_cast<float>(v); });
        const std::int64_t d = done.fetch_add(1) + 1;
        if (progress) progress->set(d);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = nviews;  // the others stop after their current view
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(nthreads - 1));
  for (int t = 1; t < nthreads; ++t) pool.emplace_back(worker, false);
  worker(true);
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  if (bar) bar->finish();
  return out;
}

}  // namespace aet::phantoms::detail
