// Patched inference: overlapping aligned patches, a raised-cosine blend across each overlap,
// only one batch of patches on the device at a time; averaged over mirror images of the volume.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/networks/normalisation.hpp"
#include "torch_detail.hpp"

namespace aet::nn {

namespace {

// Patch layout and 1-D blend weights along one axis.
struct AxisPlan {
  std::int64_t n = 0;                      // volume extent
  std::int64_t patch = 0;                  // patch extent
  std::int64_t stride = 0;                 // origin spacing (multiple of the alignment)
  std::int64_t count = 0;                  // patches along the axis
  std::vector<std::vector<float>> weight;  // [patch index][local index]
  std::vector<float> sum;                  // summed weight at each volume index
};

// Weight of a patch at local index i across its low-side overlap (0 in the margin, a sin^2 ramp,
// then 1). Its high side uses 1 - ramp at the next patch's index, so the two sum to 1.
float ramp_up(std::int64_t i, std::int64_t overlap, std::int64_t margin) {
  if (i < margin) return 0.0f;
  const std::int64_t len = overlap - 2 * margin;
  if (i >= margin + len) return 1.0f;
  const double s = std::sin(0.5 * M_PI * (static_cast<double>(i - margin) + 0.5) / len);
  return static_cast<float>(s * s);
}

}  // namespace


namespace {

AxisPlan plan_axis(std::int64_t n, std::int64_t patch, std::int64_t overlap, std::int64_t margin,
                   std::int64_t align) {
  AxisPlan p;
  p.n = n;
  const PatchLayout layout = patch_layout(n, patch, overlap, align);
  p.patch = layout.patch;
  p.stride = layout.stride;
  p.count = layout.count;
  const std::int64_t ov = p.patch - p.stride;  // effective overlap (>= the one asked for)
  p.weight.assign(static_cast<std::size_t>(p.count), std::vector<float>(p.patch, 1.0f));
  p.sum.assign(static_cast<std::size_t>(n), 0.0f);
  for (std::int64_t k = 0; k < p.count; ++k) {
    auto& w = p.weight[static_cast<std::size_t>(k)];
    for (std::int64_t i = 0; i < p.patch; ++i) {
      float v = 1.0f;
      if (k > 0) v *= ramp_up(i, ov, margin);
      if (k + 1 < p.count && i >= p.stride) v *= 1.0f - ramp_up(i - p.stride, ov, margin);
      w[static_cast<std::size_t>(i)] = v;
      const std::int64_t g = k * p.stride + i;
      if (g < n) p.sum[static_cast<std::size_t>(g)] += v;
    }
  }
  for (float s : p.sum)
    if (!(s > 0))
      fail_input("augment: overlap " + std::to_string(overlap) + " and margin " +
                 std::to_string(margin) + " leave voxels without weight in patches of " +
                 std::to_string(p.patch) + "; use a larger patch or a smaller margin");
  return p;
}

// One pass of the network over `volume` (input multiplied by `inv`), patched and blended.
Array3 augment_once(const Model& model, const Array3& volume, const AugmentOptions& opt,
                    float inv) {
  const Model::Impl& im = ModelAccess::impl(model);
  const std::int64_t align = alignment(im.config);
  const std::int64_t margin = opt.margin < 0 ? opt.overlap / 4 : opt.margin;
  if (2 * margin > opt.overlap)
    fail_input("augment: margin " + std::to_string(margin) + " exceeds half the overlap " +
               std::to_string(opt.overlap));

  const AxisPlan px = plan_axis(volume.nx(), opt.patch, opt.overlap, margin, align);
  const AxisPlan py = plan_axis(volume.ny(), opt.patch, opt.overlap, margin, align);
  const AxisPlan pz = plan_axis(volume.nz(), opt.patch, opt.overlap, margin, align);

  detail::use_aet_threads();
  detail::UNet net = im.net;  // shares the module; eval() switches BatchNorm to running stats
  net->eval();
  torch::NoGradGuard no_grad;

  Array3 out(volume.nx(), volume.ny(), volume.nz(), 0.0f);
  out.voxel_size = volume.voxel_size;
  std::copy(volume.origin, volume.origin + 3, out.origin);

  struct Origin {
    std::int64_t kx, ky, kz;
  };
  std::vector<Origin> all;
  for (std::int64_t kz = 0; kz < pz.count; ++kz)
    for (std::int64_t ky = 0; ky < py.count; ++ky)
      for (std::int64_t kx = 0; kx < px.count; ++kx) all.push_back({kx, ky, kz});

  const std::int64_t sx = px.patch, sy = py.patch, sz = pz.patch;
  const std::int64_t patch_voxels = sx * sy * sz;
  for (std::size_t first = 0; first < all.size(); first += static_cast<std::size_t>(opt.batch)) {
    const std::size_t nb = std::min(all.size() - first, static_cast<std::size_t>(opt.batch));
    torch::Tensor in = torch::zeros({static_cast<std::int64_t>(nb), 1, sz, sy, sx}, torch::kFloat);
    float* pin = in.data_ptr<float>();
    for (std::size_t b = 0; b < nb; ++b) {
      const Origin& o = all[first + b];
      const std::int64_t x0 = o.kx * px.stride, y0 = o.ky * py.stride, z0 = o.kz * pz.stride;
      const std::int64_t wx = std::min(sx, volume.nx() - x0);
      for (std::int64_t z = 0; z < sz && z0 + z < volume.nz(); ++z)
        for (std::int64_t y = 0; y < sy && y0 + y < volume.ny(); ++y) {
          const float* src = volume.data() + volume.index(x0, y0 + y, z0 + z);
          float* dst = pin + static_cast<std::int64_t>(b) * patch_voxels + (z * sy + y) * sx;
          for (std::int64_t x = 0; x < wx; ++x) dst[x] = src[x] * inv;
        }
    }
    const torch::Tensor pred =
        net->forward(in.to(im.torch_device)).to(torch::kCPU, torch::kFloat).contiguous();
    const float* pp = pred.data_ptr<float>();
    for (std::size_t b = 0; b < nb; ++b) {
      const Origin& o = all[first + b];
      const std::int64_t x0 = o.kx * px.stride, y0 = o.ky * py.stride, z0 = o.kz * pz.stride;
      const std::int64_t wx = std::min(sx, volume.nx() - x0);
      const auto& wxv = px.weight[static_cast<std::size_t>(o.kx)];
      const auto& wyv = py.weight[static_cast<std::size_t>(o.ky)];
      const auto& wzv = pz.weight[static_cast<std::size_t>(o.kz)];
      for (std::int64_t z = 0; z < sz && z0 + z < volume.nz(); ++z)
        for (std::int64_t y = 0; y < sy && y0 + y < volume.ny(); ++y) {
          const float wyz = wzv[static_cast<std::size_t>(z)] * wyv[static_cast<std::size_t>(y)];
          if (wyz == 0.0f) continue;
          const float* src = pp + static_cast<std::int64_t>(b) * patch_voxels + (z * sy + y) * sx;
          float* dst = out.data() + out.index(x0, y0 + y, z0 + z);
          for (std::int64_t x = 0; x < wx; ++x)
            dst[x] += wyz * wxv[static_cast<std::size_t>(x)] * src[x];
        }
    }
  }
  // The blend weights are separable, so their sum is the product of the per-axis sums.
  for (std::int64_t z = 0; z < volume.nz(); ++z)
    for (std::int64_t y = 0; y < volume.ny(); ++y) {
      const float s = pz.sum[static_cast<std::size_t>(z)] * py.sum[static_cast<std::size_t>(y)];
      float* row = out.data() + out.index(0, y, z);
      for (std::int64_t x = 0; x < volume.nx(); ++x)
        row[x] /= s * px.sum[static_cast<std::size_t>(x)];
    }
  return out;
}

}  // namespace

Array3 augment(const Model& model, const Array3& volume, const AugmentOptions& opt) {
  if (volume.empty()) fail_input("augment: empty volume");
  if (opt.patch < 1) fail_input("augment: patch must be positive");
  if (opt.overlap < 0) fail_input("augment: overlap must not be negative");
  if (opt.batch < 1) fail_input("augment: batch must be positive");
  const std::vector<int> masks =
      flip_masks(resolve_flips(opt.flips, static_cast<std::int64_t>(volume.size())));
  // One scale for every mirror image (the median of local maxima does not change under flips).
  const float inv = static_cast<float>(1.0 / normalisation_scale(volume));
  // Also what a stopped run names as where it was (current_activity).
  Progress progress("network", static_cast<std::int64_t>(masks.size()));
  if (masks.size() == 1) {
    Array3 once = augment_once(model, volume, opt, inv);
    progress.finish();
    return once;
  }

  Array3 sum;
  for (const int mask : masks) {
    Array3 pass = flip_volume(augment_once(model, flip_volume(volume, mask), opt, inv), mask);
    progress.advance();
    if (sum.empty()) {
      sum = std::move(pass);
      continue;
    }
    float* d = sum.data();
    const float* p = pass.data();
    for (std::size_t i = 0; i < sum.size(); ++i) d[i] += p[i];
  }
  const float w = 1.0f / static_cast<float>(masks.size());
  for (float& v : sum.vector()) v *= w;
  progress.finish();
  return sum;
}

}  // namespace aet::nn
