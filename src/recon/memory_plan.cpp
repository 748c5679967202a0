// Device memory planning for the CUDA solvers (formulas in memory_plan.hpp). Pure arithmetic on
// 64-bit unsigned byte counts, each product checked, so that a 512^3 volume with 120 views of
// 512^2 (or a nonsense size) never wraps around into a plan that "fits".
#include "aet/recon/memory_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"

namespace aet {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kFixedMargin = 64 * kMiB;

[[noreturn]] void too_large(const char* what) {
  fail_input(std::string("memory plan: the ") + what + " is too large to address");
}

std::uint64_t mul(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) too_large(what);
  return r;
}

std::uint64_t add(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) too_large(what);
  return r;
}

std::uint64_t positive(std::int64_t n, const char* what) {
  if (n <= 0)
    fail_input(std::string("memory plan: the ") + what + " must be positive, got " +
               std::to_string(n));
  return static_cast<std::uint64_t>(n);
}

std::string mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return text;
}

std::string dims(std::int64_t a, std::int64_t b, std::int64_t c) {
  return std::to_string(a) + " x " + std::to_string(b) + " x " + std::to_string(c);
}

// Grid points along one axis of GENFIRE's oversampled Fourier grid.
std::uint64_t grid_axis(double oversampling, std::int64_t n) {
  const double g = std::round(oversampling * static_cast<double>(n));
  if (!(g >= 1.0) || g > 9.0e15) too_large("GENFIRE Fourier grid");
  return static_cast<std::uint64_t>(g);
}

}  // namespace

std::uint64_t usable_device_bytes(std::uint64_t available_bytes) {
  const std::uint64_t margin = available_bytes / 20 + kFixedMargin;
  return available_bytes > margin ? available_bytes - margin : 0;
}

ReconMemoryPlan plan_recon_memory(const ReconProblemSize& size, std::uint64_t available_bytes) {
  const std::uint64_t nx = positive(size.nx, "volume width"),
                      ny = positive(size.ny, "volume height"),
                      nz = positive(size.nz, "volume depth");
  const std::uint64_t vnx = positive(size.view_nx, "view width"),
                      vny = positive(size.view_ny, "view height"),
                      n_views = positive(size.n_views, "number of views");
  const std::uint64_t voxels = mul(mul(nx, ny, "volume"), nz, "volume");
  const std::uint64_t volume = mul(voxels, sizeof(float), "volume");
  const std::uint64_t mask = size.support ? voxels : 0;  // uint8 on the device
  const std::uint64_t view = mul(mul(vnx, vny, "view"), sizeof(float), "view");
  const std::uint64_t usable = usable_device_bytes(available_bytes);

  ReconMemoryPlan plan;
  plan.usable_bytes = usable;
  plan.views_per_batch = size.n_views;
  plan.batches = 1;

  // Per algorithm: volumes and view stacks held when all views are resident (fixed + per-view
  // stacks), and the same when the views come in batches.
  std::uint64_t fixed = 0, stacks = 0, fixed_batched = 0;
  bool can_batch = true;
  const char* name = algorithm_name(size.algorithm);
  switch (size.algorithm) {
    case Algorithm::resire:
      fixed = add(volume, mask, "volume");
      if (size.accelerate) fixed = add(fixed, volume, "volume");  // x_{k-1}
      stacks = 2;                                                 // measured views, residual
      fixed_batched = add(fixed, volume, "volume");               // + update volume
      break;
    case Algorithm::sirt:
      fixed = add(add(volume, volume, "volume"), mask, "volume");  // x, column sums
      if (size.accelerate) fixed = add(fixed, volume, "volume");   // x_{k-1}
      stacks = 3;                                                  // views, residual, row sums
      fixed_batched = add(fixed, volume, "volume");
      break;
    case Algorithm::fbp:
      fixed = volume;
      stacks = 1;  // filtered views; the back projection accumulates into the volume
      fixed_batched = volume;
      break;
    case Algorithm::genfire: {
      const std::uint64_t g =
          mul(mul(grid_axis(size.genfire_oversampling, size.nx),
                  grid_axis(size.genfire_oversampling, size.ny), "GENFIRE Fourier grid"),
              grid_axis(size.genfire_oversampling, size.nz), "GENFIRE Fourier grid");
      const std::uint64_t grids = mul(mul(g, 2 * sizeof(float), "GENFIRE Fourier grid"), 2,
                                      "GENFIRE Fourier grid");  // two complex-float grids
      fixed = add(add(grids, g, "GENFIRE Fourier grid"), mul(volume, 2, "volume"), "volume");
      stacks = 0;  // the views are gridded on the host
      can_batch = false;
      break;
    }
  }
  const std::uint64_t per_view = mul(view, stacks, "view stack");
  const std::uint64_t resident = add(fixed, mul(per_view, n_views, "view stack"), "view stack");
  const std::string shape = "volume " + dims(size.nx, size.ny, size.nz) + ", " +
                            std::to_string(size.n_views) + " views of " +
                            std::to_string(size.view_nx) + " x " + std::to_string(size.view_ny);
  if (resident <= usable) {
    plan.device_bytes = resident;
    plan.summary = std::string(name) + " on the GPU: " + mib(resident) + " of " + mib(usable) +
                   " usable (" + shape + "; " +
                   (stacks > 0 ? "all views resident)" : "views gridded on the host)");
    return plan;
  }
  const std::uint64_t one_batch = add(fixed_batched, per_view, "view stack");
  if (!can_batch || one_batch > usable) {
    const std::uint64_t needed = can_batch ? one_batch : resident;
    fail_input(std::string(name) + " needs " + gib(needed) + " of GPU memory" +
               (can_batch ? " even with one view at a time" : "") + " (" + shape +
               "; the volume alone is " + gib(volume) + ") but only " + gib(usable) +
               " is usable (" + gib(available_bytes) +
               " available, less a safety margin); use --device cpu or a smaller volume");
  }
  // per_view > 0 here: a plan with no stacks cannot batch.
  const std::uint64_t fit = (usable - fixed_batched) / per_view;
  const std::uint64_t per_batch = std::min(fit, n_views);
  plan.views_per_batch = static_cast<std::int64_t>(per_batch);
  plan.batches = static_cast<std::int64_t>((n_views + per_batch - 1) / per_batch);
  plan.device_bytes = add(fixed_batched, mul(per_view, per_batch, "view stack"), "view stack");
  plan.summary = std::string(name) + " on the GPU: " + mib(plan.device_bytes) + " of " +
                 mib(usable) + " usable (" + shape + "; all views would need " + mib(resident) +
                 ", so " + std::to_string(plan.batches) + " batches of up to " +
                 std::to_string(per_batch) + " views)";
  return plan;
}

}  // namespace aet
