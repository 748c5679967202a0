// CUDA projector pair for host arrays (forward_project / back_project with --device cuda): the
// kernels of projector_kernels.cuh, with the volume resident and the views in batches sized from
// the free device memory (AET_CUDA_MEMORY_LIMIT caps it). The solvers keep everything on the
// device instead (solvers.cu); this path serves FBP, alignment and single projections.
#define EIGEN_NO_CUDA  // Eigen is used on the host side only

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/recon/memory_plan.hpp"
#include "aet/recon/projector.hpp"
#include "projector_detail.hpp"
#include "projector_kernels.cuh"

namespace aet::detail {
namespace {

using cuda::recon::DeviceRays;
using cuda::recon::Shape;

// Views per batch when `fixed` bytes stay resident and each view needs `per_view` bytes.
std::int64_t views_per_batch(const char* what, int device, std::uint64_t fixed,
                             std::uint64_t per_view, std::int64_t n_views) {
  const std::uint64_t available = cuda::recon::available_device_bytes();
  const std::uint64_t usable = usable_device_bytes(available);
  if (usable < fixed || usable - fixed < per_view)
    fail_input(std::string(what) + " on cuda:" + std::to_string(device) + " needs " +
               gib(fixed + per_view) + " of GPU memory with one view at a time but only " +
               gib(usable) + " is usable (" + gib(available) +
               " available, less a safety margin); use --device cpu or a smaller volume");
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(static_cast<std::uint64_t>(n_views), (usable - fixed) / per_view));
}

// Owns a CUDA event (for timing).
class Event {
 public:
  Event() { AET_CUDA_CHECK(cudaEventCreate(&e_)); }
  ~Event() { cudaEventDestroy(e_); }  // the constructor throws unless e_ was created
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace

PairTiming time_projection_pair_cuda(const Array3& volume, const TiltGeometry& geometry,
                                     std::int64_t view_nx, std::int64_t view_ny, int device_index,
                                     int repeats) {
  const Shape s{volume.nx(), volume.ny(), volume.nz(), view_nx, view_ny};
  cuda::recon::check_shape(s);
  const cuda::recon::Precision precision = cuda::recon::projector_precision(s);
  const auto n_views = static_cast<std::int64_t>(geometry.size());
  const std::vector<DeviceRays> rays =
      cuda::recon::make_device_rays(geometry, s, volume.voxel_size.x);
  const auto voxels = static_cast<std::size_t>(s.voxels());
  const auto npix = static_cast<std::size_t>(s.pixels());

  cuda::DeviceGuard guard(cuda::recon::checked_device(device_index));
  const std::uint64_t fixed = 2 * voxels * sizeof(float) + rays.size() * sizeof(DeviceRays);
  if (views_per_batch("the projection pair timing", device_index, fixed, npix * sizeof(float),
                      n_views) < n_views)
    fail_input("the projection pair timing needs all " + std::to_string(n_views) +
               " views on the device at once");
  cuda::Stream stream;
  cuda::DeviceBuffer<float> d_volume(voxels), d_back(voxels);
  cuda::DeviceBuffer<DeviceRays> d_rays(rays.size());
  cuda::DeviceBuffer<float> d_views(static_cast<std::size_t>(n_views) * npix);
  d_volume.upload(volume.data(), stream.get());
  d_rays.upload(rays.data(), stream.get());
  Event start, middle, stop;
  PairTiming best{1e300, 1e300, 1e300, precision == cuda::recon::Precision::single};
  for (int r = 0; r <= std::max(1, repeats); ++r) {  // r = 0 is the warm-up
    AET_CUDA_CHECK(cudaEventRecord(start.get(), stream.get()));
    cuda::recon::launch_forward(precision, d_volume.get(), d_rays.get(), n_views, s, d_views.get(),
                                nullptr, nullptr, stream.get());
    AET_CUDA_CHECK(cudaEventRecord(middle.get(), stream.get()));
    AET_CUDA_CHECK(cudaMemsetAsync(d_back.get(), 0, voxels * sizeof(float), stream.get()));
    cuda::recon::launch_gather(precision, d_views.get(), d_rays.get(), n_views, s, d_back.get(),
                               cuda::recon::GatherMode::accumulate, nullptr, nullptr, 0.0f, false,
                               stream.get());
    AET_CUDA_CHECK(cudaEventRecord(stop.get(), stream.get()));
    AET_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float forward_ms = 0, back_ms = 0;
    AET_CUDA_CHECK(cudaEventElapsedTime(&forward_ms, start.get(), middle.get()));
    AET_CUDA_CHECK(cudaEventElapsedTime(&back_ms, middle.get(), stop.get()));
    if (r == 0) continue;
    best.forward = std::min(best.forward, 1e-3 * forward_ms);
    best.back = std::min(best.back, 1e-3 * back_ms);
    best.pair = std::min(best.pair, 1e-3 * (forward_ms + back_ms));
  }
  return best;
}

Array3 forward_project_cuda(const Array3& volume, const TiltGeometry& geometry,
                            std::int64_t view_nx, std::int64_t view_ny, int device_index) {
  const Shape s{volume.nx(), volume.ny(), volume.nz(), view_nx, view_ny};
  cuda::recon::check_shape(s);
  const cuda::recon::Precision precision = cuda::recon::projector_precision(s);
  const double pixel = volume.voxel_size.x;
  const auto n_views = static_cast<std::int64_t>(geometry.size());
  Array3 views(view_nx, view_ny, n_views);
  views.voxel_size = VoxelSize{pixel, pixel, pixel};
  const std::vector<DeviceRays> rays = cuda::recon::make_device_rays(geometry, s, pixel);
  const auto voxels = static_cast<std::size_t>(s.voxels());
  const auto npix = static_cast<std::size_t>(s.pixels());

  cuda::DeviceGuard guard(cuda::recon::checked_device(device_index));
  const std::int64_t batch = views_per_batch(
      "forward projection", device_index, voxels * sizeof(float) + rays.size() * sizeof(DeviceRays),
      npix * sizeof(float), n_views);

  cuda::Stream stream;
  cuda::DeviceBuffer<float> d_volume(voxels);
  cuda::DeviceBuffer<DeviceRays> d_rays(rays.size());
  cuda::DeviceBuffer<float> d_views(static_cast<std::size_t>(batch) * npix);
  d_volume.upload(volume.data(), stream.get());
  d_rays.upload(rays.data(), stream.get());
  for (std::int64_t first = 0; first < n_views; first += batch) {
    const std::int64_t count = std::min(batch, n_views - first);
    cuda::recon::launch_forward(precision, d_volume.get(), d_rays.get() + first, count, s,
                                d_views.get(), nullptr, nullptr, stream.get());
    AET_CUDA_CHECK(cudaMemcpyAsync(views.slice(first), d_views.get(),
                                   static_cast<std::size_t>(count) * npix * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();  // d_views is refilled by the next batch
  }
  return views;
}

Array3 back_project_cuda(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                         std::int64_t ny, std::int64_t nz, int device_index) {
  const Shape s{nx, ny, nz, views.nx(), views.ny()};
  cuda::recon::check_shape(s);
  const cuda::recon::Precision precision = cuda::recon::projector_precision(s);
  const double pixel = views.voxel_size.x;
  const auto n_views = static_cast<std::int64_t>(geometry.size());
  Array3 volume(nx, ny, nz);
  volume.voxel_size = VoxelSize{pixel, pixel, pixel};
  const std::vector<DeviceRays> rays = cuda::recon::make_device_rays(geometry, s, pixel);
  const auto voxels = static_cast<std::size_t>(s.voxels());
  const auto npix = static_cast<std::size_t>(s.pixels());

  cuda::DeviceGuard guard(cuda::recon::checked_device(device_index));
  const std::int64_t batch = views_per_batch(
      "back projection", device_index, voxels * sizeof(float) + rays.size() * sizeof(DeviceRays),
      npix * sizeof(float), n_views);

  cuda::Stream stream;
  cuda::DeviceBuffer<float> d_volume(voxels);
  cuda::DeviceBuffer<DeviceRays> d_rays(rays.size());
  cuda::DeviceBuffer<float> d_views(static_cast<std::size_t>(batch) * npix);
  AET_CUDA_CHECK(cudaMemsetAsync(d_volume.get(), 0, voxels * sizeof(float), stream.get()));
  d_rays.upload(rays.data(), stream.get());
  // Batches add up in the volume; with one batch each voxel sums exactly as the CPU does.
  for (std::int64_t first = 0; first < n_views; first += batch) {
    const std::int64_t count = std::min(batch, n_views - first);
    AET_CUDA_CHECK(cudaMemcpyAsync(d_views.get(), views.slice(first),
                                   static_cast<std::size_t>(count) * npix * sizeof(float),
                                   cudaMemcpyHostToDevice, stream.get()));
    cuda::recon::launch_gather(precision, d_views.get(), d_rays.get() + first, count, s,
                               d_volume.get(), cuda::recon::GatherMode::accumulate, nullptr,
                               nullptr, 0.0f, false, stream.get());
  }
  d_volume.download(volume.data(), stream.get());
  stream.synchronize();
  return volume;
}

}  // namespace aet::detail
