// CUDA version of the analytic Gaussian projector (reference: phantoms/project_atoms_cpu.cpp).
//
// Layout: a gather. One thread per (pixel, view), 16 x 16 pixel tiles per block, blockIdx.z the
// view within a batch. Each block walks the atoms in tiles of 256 staged in shared memory (the
// classic n-body pattern); a thread skips an atom whose 7-sigma footprint does not reach its
// pixel with two comparisons and otherwise integrates the Gaussian over the pixel exactly with
// the same erfc formula as the CPU (phantoms/gaussian_pixel.hpp), in double precision. Each pixel
// sums its atoms in atom order, so results are deterministic (no atomics) and agree with the CPU
// to rounding. The projected (u, v) of every atom are computed on the host with the same
// ViewGeometry::map as the CPU and uploaded per batch of views.
//
// Memory is planned before allocation from cudaMemGetInfo: views are processed in batches sized
// to fit, and a clear InputError is raised when not even one view fits.
#define EIGEN_NO_CUDA  // Eigen is used on the host side only

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/phantoms/project_atoms.hpp"
#include "cuda/core/cuda_check.cuh"
#include "phantoms/gaussian_pixel.hpp"
#include "phantoms/project_atoms_detail.hpp"

namespace aet::phantoms::detail {
namespace {

constexpr int kBlockSide = 16;                      // pixels per block side
constexpr int kAtomTile = kBlockSide * kBlockSide;  // atoms staged per shared-memory pass
constexpr unsigned kMaxGridZ = 65535;               // CUDA limit on gridDim.z

// One atom as the kernel needs it: its Gaussians and how far each reaches. With no tail the
// second component has weight 0 and is skipped.
struct DeviceAtom {
  double w0, s0, reach0;
  double w1, s1, reach1;
};

__global__ void project_gaussians_kernel(const double2* __restrict__ uv,
                                         const DeviceAtom* __restrict__ atoms, int natoms, int nx,
                                         int ny, double pixel, float* __restrict__ out) {
  __shared__ double2 tile_uv[kAtomTile];
  __shared__ DeviceAtom tile_atoms[kAtomTile];

  const int i = blockIdx.x * kBlockSide + threadIdx.x;
  const int j = blockIdx.y * kBlockSide + threadIdx.y;
  const int view = blockIdx.z;
  const int t = threadIdx.y * kBlockSide + threadIdx.x;
  const bool inside = i < nx && j < ny;

  const double u0 = sample_lower_edge(i, nx, pixel), u1 = sample_upper_edge(i, nx, pixel);
  const double v0 = sample_lower_edge(j, ny, pixel), v1 = sample_upper_edge(j, ny, pixel);
  const double pu = 0.5 * (u0 + u1), pv = 0.5 * (v0 + v1);
  const double2* view_uv = uv + static_cast<std::size_t>(view) * natoms;

  double acc = 0.0;
  for (int base = 0; base < natoms; base += kAtomTile) {
    const int n = min(kAtomTile, natoms - base);
    if (t < n) {
      tile_uv[t] = view_uv[base + t];
      tile_atoms[t] = atoms[base + t];
    }
    __syncthreads();
    if (inside) {
      for (int k = 0; k < n; ++k) {
        const double u = tile_uv[k].x, v = tile_uv[k].y;
        const double du = fabs(u - pu), dv = fabs(v - pv);
        const DeviceAtom& a = tile_atoms[k];
        // The footprint test matches the CPU's window (centres within reach plus one pixel).
        if (du <= a.reach0 + pixel && dv <= a.reach0 + pixel && a.w0 != 0.0)
          acc += a.w0 * interval_mass(u0, u1, u, a.s0) * interval_mass(v0, v1, v, a.s0);
        if (a.w1 != 0.0 && du <= a.reach1 + pixel && dv <= a.reach1 + pixel)
          acc += a.w1 * interval_mass(u0, u1, u, a.s1) * interval_mass(v0, v1, v, a.s1);
      }
    }
    __syncthreads();
  }
  if (inside)
    out[static_cast<std::size_t>(view) * nx * ny + static_cast<std::size_t>(j) * nx + i] =
        static_cast<float>(acc);
}

}  // namespace

Array3 project_atoms_cuda(const GaussianAtoms& atoms, const TiltGeometry& views, std::int64_t nx,
                          std::int64_t ny, double pixel, const ImagingModel& im, int device) {
  check_projection_inputs(atoms, views, nx, ny, pixel, im);
  if (nx > 1000000 || ny > 1000000)  // grid y is limited to 65535 blocks of 16
    fail_input("projection: view size " + std::to_string(nx) + " x " + std::to_string(ny) +
               " is too large for the CUDA projector");
  const std::size_t natoms = atoms.positions.size();
  if (natoms > static_cast<std::size_t>(1 << 30))
    fail_input("projection: too many atoms for the CUDA projector");
  const auto nviews = static_cast<std::int64_t>(views.size());
  Array3 out(nx, ny, nviews);
  out.voxel_size = VoxelSize{pixel, pixel, pixel};
  const std::size_t npix = static_cast<std::size_t>(nx) * static_cast<std::size_t>(ny);

  std::vector<DeviceAtom> host_atoms(natoms);
  for (std::size_t a = 0; a < natoms; ++a) {
    const ProjectedAtom pa = projected_atom(atoms.weight[a], atoms.sigma[a], im.probe_sigma,
                                            im.tail_fraction, im.tail_sigma);
    DeviceAtom& d = host_atoms[a];
    d.w0 = pa.c[0].weight;
    d.s0 = pa.c[0].sigma;
    d.reach0 = kGaussianCutoff * d.s0;
    d.w1 = pa.count > 1 ? pa.c[1].weight : 0.0;
    d.s1 = pa.count > 1 ? pa.c[1].sigma : 0.0;
    d.reach1 = kGaussianCutoff * d.s1;
  }

  cuda::DeviceGuard guard(cuda::checked_device(device));

  // Plan: the atom table once, then per view its projected positions and its output image.
  std::size_t free_bytes = 0, total_bytes = 0;
  AET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const std::size_t reserve = 64u << 20;  // context, kernel and allocator slack
  const std::size_t fixed = natoms * sizeof(DeviceAtom);
  const std::size_t per_view = natoms * sizeof(double2) + npix * sizeof(float);
  const std::size_t usable = free_bytes > reserve ? (free_bytes - reserve) / 10 * 9 : 0;
  if (usable < fixed + per_view)
    fail_input("projection on cuda:" + std::to_string(device) + ": one view needs " +
               std::to_string((fixed + per_view) >> 20) + " MiB of GPU memory but only " +
               std::to_string(free_bytes >> 20) +
               " MiB are free; use --device cpu or a smaller "
               "view");
  const std::size_t batch = std::min<std::size_t>(
      {static_cast<std::size_t>(nviews), (usable - fixed) / per_view, kMaxGridZ});

  cuda::Stream stream;
  cuda::DeviceBuffer<DeviceAtom> d_atoms(natoms);
  cuda::DeviceBuffer<double2> d_uv(natoms * batch);
  cuda::DeviceBuffer<float> d_out(npix * batch);
  if (natoms > 0) d_atoms.upload(host_atoms.data(), stream.get());

  std::vector<double2> host_uv(natoms * batch);
  const dim3 block(kBlockSide, kBlockSide, 1);
  for (std::int64_t first = 0; first < nviews; first += static_cast<std::int64_t>(batch)) {
    const auto count = static_cast<std::size_t>(
        std::min<std::int64_t>(static_cast<std::int64_t>(batch), nviews - first));
    for (std::size_t b = 0; b < count; ++b) {
      const ViewGeometry& g = views[static_cast<std::size_t>(first) + b];
      for (std::size_t a = 0; a < natoms; ++a) {
        const Vec3 q = g.map(atoms.positions[a]);
        host_uv[b * natoms + a] = make_double2(q.x(), q.y());
      }
    }
    if (natoms > 0)
      AET_CUDA_CHECK(cudaMemcpyAsync(d_uv.get(), host_uv.data(), count * natoms * sizeof(double2),
                                     cudaMemcpyHostToDevice, stream.get()));
    const dim3 grid(static_cast<unsigned>((nx + kBlockSide - 1) / kBlockSide),
                    static_cast<unsigned>((ny + kBlockSide - 1) / kBlockSide),
                    static_cast<unsigned>(count));
    project_gaussians_kernel<<<grid, block, 0, stream.get()>>>(
        d_uv.get(), d_atoms.get(), static_cast<int>(natoms), static_cast<int>(nx),
        static_cast<int>(ny), pixel, d_out.get());
    AET_CUDA_CHECK(cudaGetLastError());
    AET_CUDA_CHECK(cudaMemcpyAsync(out.slice(first), d_out.get(), count * npix * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream.get()));
    // host_uv is refilled for the next batch, and the copy above must have landed.
    stream.synchronize();
  }
  return out;
}

}  // namespace aet::phantoms::detail
