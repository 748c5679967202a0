// The network's torch-free parts, built with or without LibTorch: architecture checks and sizes,
// the patch layout of inference, and where the shipped model lives.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "aet/core/error.hpp"
#include "aet/networks/network.hpp"

namespace aet::nn {

namespace {

std::int64_t round_up(std::int64_t v, std::int64_t a) {
  return (v + a - 1) / a * a;
}

}  // namespace

void check_config(const UNetConfig& c) {
  if (c.base_channels < 1 || c.base_channels > 1024)
    fail_input("U-Net base_channels must be in 1..1024, not " + std::to_string(c.base_channels));
  if (c.levels < 1 || c.levels > 8)
    fail_input("U-Net levels must be in 1..8, not " + std::to_string(c.levels));
  if (static_cast<std::int64_t>(c.base_channels) << (c.levels - 1) > 8192)
    fail_input("U-Net too wide: base_channels * 2^(levels-1) exceeds 8192");
  if (!(c.leaky_slope >= 0 && c.leaky_slope < 1))
    fail_input("U-Net leaky_slope must be in [0, 1), not " + std::to_string(c.leaky_slope));
}

void require_torch(const std::string& what) {
  if (!torch_available())
    fail_input(what + ": this build of aet has no LibTorch (AET_WITH_TORCH=OFF)");
}

std::int64_t alignment(const UNetConfig& c) {
  return std::int64_t{1} << (c.levels - 1);
}

std::int64_t receptive_radius(const UNetConfig& c) {
  // Each 3x3x3 convolution at level l reaches 2^l voxels further; pooling and the transposed
  // convolution each shift by up to 2^l (counted conservatively).
  std::int64_t r = 0;
  for (int l = 0; l < c.levels; ++l) {
    const std::int64_t j = std::int64_t{1} << l;
    r += 2 * j;                                // encoder block
    if (l < c.levels - 1) r += j + j + 2 * j;  // pool, transposed conv, decoder block
  }
  return r;
}

PatchLayout patch_layout(std::int64_t n, std::int64_t patch, std::int64_t overlap,
                         std::int64_t align) {
  if (n < 1 || patch < 1 || overlap < 0 || align < 1)
    fail_input("augment: a patch layout needs a positive extent (" + std::to_string(n) +
               "), patch (" + std::to_string(patch) + ") and alignment (" + std::to_string(align) +
               ") and a non-negative overlap (" + std::to_string(overlap) + ")");
  patch = round_up(patch, align);
  PatchLayout p;
  p.patch = std::min(patch, round_up(n, align));
  if (p.patch >= n) {
    p.count = 1;
    p.stride = p.patch;
    return p;
  }
  p.stride = (patch - overlap) / align * align;
  if (p.stride < align)
    fail_input("augment: overlap " + std::to_string(overlap) + " leaves no stride in a patch of " +
               std::to_string(patch) + " (patch and stride are multiples of " +
               std::to_string(align) + ")");
  p.count = 1 + (n - p.patch + p.stride - 1) / p.stride;
  // The fewest patches of at most `patch`, each no larger than that count needs: a volume just
  // over the patch (130 voxels, patch 128) takes two patches of 88, not two of 128, whose
  // network passes would mostly see the zero padding beyond the volume.
  for (std::int64_t q = round_up(overlap + align, align); q < p.patch; q += align) {
    const std::int64_t s = (q - overlap) / align * align;
    if (q + (p.count - 1) * s >= n) {
      p.patch = q;
      p.stride = s;
      break;
    }
  }
  return p;
}

std::string default_model_path() {
  if (const char* env = std::getenv("AET_MODEL"); env && *env) return env;
  const std::string shipped = std::string(AET_NETWORKS_DIR) + "/models/missing_wedge_unet.h5";
  std::error_code ec;
  return std::filesystem::is_regular_file(shipped, ec) ? shipped : std::string();
}

}  // namespace aet::nn
