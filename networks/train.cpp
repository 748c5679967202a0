// Training: random (particle-favouring) patch crops with wedge-preserving flips, MSE (+ L1)
// loss, Adam with a cosine schedule, whole-volume validation, resumable HDF5 checkpoints.
#include "aet/networks/train.hpp"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/progress.hpp"
#include "aet/core/rng.hpp"
#include "torch_detail.hpp"

namespace aet::nn {

namespace {

using detail::StoredTensor;
using detail::WeightsFile;

std::int64_t round_up(std::int64_t v, std::int64_t a) {
  return (v + a - 1) / a * a;
}

// A cheap content hash of the training data, so that a checkpoint is only resumed on the data
// it was made from.
std::uint64_t hash_floats(std::uint64_t h, const Array3& a) {
  h ^= static_cast<std::uint64_t>(a.nx()) * 0x9e3779b97f4a7c15ULL;
  h ^= static_cast<std::uint64_t>(a.ny()) * 0xc2b2ae3d27d4eb4fULL + (h << 6);
  h ^= static_cast<std::uint64_t>(a.nz()) * 0x165667b19e3779f9ULL + (h >> 2);
  const std::size_t n = a.size();
  const float* p = a.data();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, p + i, 4);
    h = (h ^ bits) * 0x100000001b3ULL;
  }
  return h;
}

struct Split {
  std::vector<const TrainingSample*> train, valid;
};

Split split_samples(const TrainOptions& opt) {
  Split s;
  if (!opt.validation.empty() || opt.validation_fraction <= 0 || opt.samples.size() < 2) {
    for (const auto& t : opt.samples) s.train.push_back(&t);
    for (const auto& v : opt.validation) s.valid.push_back(&v);
    return s;
  }
  const std::size_t n = opt.samples.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  Rng rng = Rng::stream(opt.seed, 0x5a11d);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  auto nv = static_cast<std::size_t>(std::lround(opt.validation_fraction * static_cast<double>(n)));
  nv = std::clamp<std::size_t>(nv, 1, n - 1);
  std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nv));
  std::sort(order.begin() + static_cast<std::ptrdiff_t>(nv), order.end());
  for (std::size_t i = 0; i < n; ++i)
    (i < nv ? s.valid : s.train).push_back(&opt.samples[order[i]]);
  return s;
}

void check_sample(const TrainingSample& s, std::size_t i, const char* set) {
  const std::string where = std::string(set) + " sample " + std::to_string(i);
  if (s.input.empty() || s.target.empty()) fail_input(where + " is empty");
  if (s.input.nx() != s.target.nx() || s.input.ny() != s.target.ny() ||
      s.input.nz() != s.target.nz())
    fail_input(where + ": input and target grids differ");
}

// Linear indices of the particle (target above 10 % of its maximum), for centred crops.
std::vector<std::int64_t> foreground(const Array3& target) {
  float mx = 0;
  for (float v : target.vector()) mx = std::max(mx, v);
  std::vector<std::int64_t> idx;
  if (!(mx > 0)) return idx;
  const float thr = 0.1f * mx;
  for (std::size_t i = 0; i < target.size(); ++i)
    if (target.data()[i] > thr) idx.push_back(static_cast<std::int64_t>(i));
  return idx;
}

double learning_rate_at(const TrainOptions& o, std::int64_t step) {
  double f = 1;
  if (o.warmup_steps > 0 && step < o.warmup_steps)
    f = static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  if (o.schedule == LrSchedule::cosine) {
    const double total = static_cast<double>(std::max<std::int64_t>(1, o.steps - o.warmup_steps));
    const double t = std::clamp(static_cast<double>(step - o.warmup_steps), 0.0, total);
    f *= o.final_lr_fraction + (1 - o.final_lr_fraction) * 0.5 * (1 + std::cos(M_PI * t / total));
  }
  return o.learning_rate * f;
}

// The options that must match for a resumed run to continue the same run.
std::string run_fingerprint(const TrainOptions& o, const Split& s, std::int64_t patch) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto* t : s.train) h = hash_floats(hash_floats(h, t->input), t->target);
  std::uint64_t hv = 0xcbf29ce484222325ULL;
  for (const auto* t : s.valid) hv = hash_floats(hash_floats(hv, t->input), t->target);
  std::ostringstream f;
  f << "seed=" << o.seed << ";batch=" << o.batch << ";patch=" << patch
    << ";learning_rate=" << fmt_g(o.learning_rate, 9)
    << ";schedule=" << (o.schedule == LrSchedule::cosine ? "cosine" : "constant")
    << ";final_lr_fraction=" << fmt_g(o.final_lr_fraction, 9) << ";warmup_steps=" << o.warmup_steps
    << ";betas=" << fmt_g(o.beta1, 9) << "," << fmt_g(o.beta2, 9) << ";eps=" << fmt_g(o.eps, 9)
    << ";l1_weight=" << fmt_g(o.l1_weight, 9) << ";species_balance=" << fmt_g(o.species_balance, 9)
    << ";foreground_fraction=" << fmt_g(o.foreground_fraction, 9) << ";flips=" << o.flips
    << ";training_samples=" << s.train.size() << ";training_hash=" << h
    << ";validation_samples=" << s.valid.size() << ";validation_hash=" << hv;
  return f.str();
}

std::vector<std::string> split_fields(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ';') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct Adam {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params, m, v;
};

// Adam as in torch::optim::Adam (bias-corrected), written out so that its state is plain named
// tensors: checkpoints need no optimiser serialisation, whose internals differ between LibTorch
// versions.
void adam_step(Adam& a, std::int64_t t, double lr, const TrainOptions& o) {
  torch::NoGradGuard no_grad;
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(t));
  const double bc2 = 1 - std::pow(o.beta2, static_cast<double>(t));
  for (std::size_t i = 0; i < a.params.size(); ++i) {
    torch::Tensor& p = a.params[i];
    const torch::Tensor g = p.grad();
    if (!g.defined()) continue;
    a.m[i].mul_(o.beta1).add_(g, 1 - o.beta1);
    a.v[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
    const torch::Tensor denom = (a.v[i].sqrt() / std::sqrt(bc2)).add_(o.eps);
    p.addcdiv_(a.m[i], denom, -lr / bc1);
  }
}

struct Batch {
  torch::Tensor input, target;
};

// One batch of random crops for step `step`: everything drawn from a generator of (seed, step),
// so a resumed run draws the same batches.
Batch make_batch(const TrainOptions& o, const std::vector<const TrainingSample*>& samples,
                 const std::vector<std::vector<std::int64_t>>& fg, std::int64_t patch,
                 std::int64_t step) {
  Rng rng = Rng::stream(o.seed, static_cast<std::uint64_t>(step) + 1);
  const std::int64_t P = patch, P3 = P * P * P;
  Batch b;
  b.input = torch::zeros({o.batch, 1, P, P, P}, torch::kFloat);
  b.target = torch::zeros({o.batch, 1, P, P, P}, torch::kFloat);
  float* pin = b.input.data_ptr<float>();
  float* ptg = b.target.data_ptr<float>();
  for (int k = 0; k < o.batch; ++k) {
    const std::size_t si = rng.below(samples.size());
    const TrainingSample& s = *samples[si];
    const auto& f = fg[si];
    const std::int64_t n[3] = {s.input.nx(), s.input.ny(), s.input.nz()};
    std::int64_t origin[3];
    const bool centred = !f.empty() && rng.uniform() < o.foreground_fraction;
    std::int64_t c[3] = {0, 0, 0};
    if (centred) {
      const std::int64_t lin = f[rng.below(f.size())];
      c[0] = lin % n[0];
      c[1] = (lin / n[0]) % n[1];
      c[2] = lin / (n[0] * n[1]);
    }
    for (int a = 0; a < 3; ++a) {
      if (n[a] <= P) {
        origin[a] = -(P - n[a]) / 2;  // the whole axis, zero-padded around
        continue;
      }
      if (centred) {
        const std::int64_t jitter =
            static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(P / 2 + 1))) - P / 4;
        origin[a] = std::clamp<std::int64_t>(c[a] - P / 2 + jitter, 0, n[a] - P);
      } else {
        origin[a] = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n[a] - P + 1)));
      }
    }
    bool flip[3] = {false, false, false};
    if (o.flips)
      for (bool& fl : flip) fl = rng.below(2) == 1;
    float* di = pin + k * P3;
    float* dt = ptg + k * P3;
    for (std::int64_t z = 0; z < P; ++z) {
      const std::int64_t gz = origin[2] + (flip[2] ? P - 1 - z : z);
      if (gz < 0 || gz >= n[2]) continue;
      for (std::int64_t y = 0; y < P; ++y) {
        const std::int64_t gy = origin[1] + (flip[1] ? P - 1 - y : y);
        if (gy < 0 || gy >= n[1]) continue;
        const float* si_row = s.input.data() + s.input.index(0, gy, gz);
        const float* st_row = s.target.data() + s.target.index(0, gy, gz);
        for (std::int64_t x = 0; x < P; ++x) {
          const std::int64_t gx = origin[0] + (flip[0] ? P - 1 - x : x);
          if (gx < 0 || gx >= n[0]) continue;
          di[(z * P + y) * P + x] = si_row[gx];
          dt[(z * P + y) * P + x] = st_row[gx];
        }
      }
    }
  }
  return b;
}

torch::Tensor loss_of(const torch::Tensor& out, const torch::Tensor& target, double l1,
                      double balance) {
  torch::Tensor loss;
  if (balance > 0) {
    const torch::Tensor envelope =
        torch::max_pool3d(target, {5, 5, 5}, {1, 1, 1}, {2, 2, 2}).clamp_min(balance);
    torch::Tensor w = envelope.pow(-2);
    w = w / w.mean();
    loss = (w * (out - target).pow(2)).mean();
  } else {
    loss = torch::mse_loss(out, target);
  }
  if (l1 > 0) loss = loss + l1 * torch::l1_loss(out, target);
  return loss;
}

// Metrics of `out` against `target` (both in normalised units).
ValidationPoint metrics(const Array3& out, const Array3& target, double l1_weight) {
  double se = 0, ae = 0, tt = 0, peak = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double d = static_cast<double>(out.data()[i]) - target.data()[i];
    se += d * d;
    ae += std::abs(d);
    tt += static_cast<double>(target.data()[i]) * target.data()[i];
    peak = std::max(peak, std::abs(static_cast<double>(target.data()[i])));
  }
  const double n = static_cast<double>(out.size());
  ValidationPoint p;
  const double mse = se / n;
  p.loss = mse + l1_weight * ae / n;
  p.psnr = 10 * std::log10(std::max(peak * peak, 1e-30) / std::max(mse, 1e-30));
  p.rel_error = tt > 0 ? std::sqrt(se / tt) : 0;
  return p;
}

ValidationPoint average(const std::vector<ValidationPoint>& v, std::int64_t step) {
  ValidationPoint a;
  a.step = step;
  for (const auto& p : v) {
    a.loss += p.loss / static_cast<double>(v.size());
    a.psnr += p.psnr / static_cast<double>(v.size());
    a.rel_error += p.rel_error / static_cast<double>(v.size());
  }
  return a;
}

ValidationPoint validate(const Model& model, const std::vector<const TrainingSample*>& valid,
                         const TrainOptions& o, std::int64_t step) {
  std::vector<ValidationPoint> v;
  for (const auto* s : valid)
    v.push_back(metrics(augment(model, s->input, o.validation_inference), s->target, o.l1_weight));
  return average(v, step);
}

ValidationPoint input_baseline(const std::vector<const TrainingSample*>& valid,
                               const TrainOptions& o) {
  std::vector<ValidationPoint> v;
  for (const auto* s : valid) {
    Array3 in = s->input;
    normalise_volume(in);  // the same units as augment's output
    v.push_back(metrics(in, s->target, o.l1_weight));
  }
  return average(v, 0);
}

void write_checkpoint(const Model& model, const Adam& adam, const TrainReport& rep,
                      std::int64_t step, const std::string& fingerprint, double seconds,
                      const TrainOptions& o) {
  WeightsFile f = detail::model_to_file(model);
  f.strings["kind"] = "checkpoint";
  f.strings["run_fingerprint"] = fingerprint;
  f.numbers["train_step"] = static_cast<double>(step);
  f.numbers["train_steps_planned"] = static_cast<double>(o.steps);
  f.numbers["train_seconds"] = seconds;
  for (std::size_t i = 0; i < adam.names.size(); ++i) {
    f.tensors[detail::dataset_name("optimizer/exp_avg", adam.names[i])] =
        detail::to_stored(adam.m[i]);
    f.tensors[detail::dataset_name("optimizer/exp_avg_sq", adam.names[i])] =
        detail::to_stored(adam.v[i]);
  }
  f.series["training/loss"] = rep.loss;
  std::vector<double> vs, vl, vp, vr;
  for (const auto& p : rep.validation) {
    vs.push_back(static_cast<double>(p.step));
    vl.push_back(p.loss);
    vp.push_back(p.psnr);
    vr.push_back(p.rel_error);
  }
  f.series["training/validation_step"] = vs;
  f.series["training/validation_loss"] = vl;
  f.series["training/validation_psnr"] = vp;
  f.series["training/validation_rel_error"] = vr;
  detail::write_weights_file(o.checkpoint_path, f);
}

// Loads a checkpoint into the model and optimiser; returns the step it was taken at.
std::int64_t read_checkpoint(const std::string& path, Model& model, Adam& adam, TrainReport& rep,
                             const std::string& fingerprint, const TrainOptions& o,
                             double& seconds) {
  const WeightsFile f = detail::read_weights_file(path);
  const auto kind = f.strings.find("kind");
  if (kind == f.strings.end() || kind->second != "checkpoint")
    fail_file(path, "not a training checkpoint (a model file can be fine-tuned, not resumed)");
  {
    // Architecture: the checkpoint's must be the model's.
    const Model saved = detail::model_from_file(f, path, Device{});
    const UNetConfig& a = saved.config();
    const UNetConfig& b = model.config();
    if (a.base_channels != b.base_channels || a.levels != b.levels || a.residual != b.residual ||
        a.batch_norm != b.batch_norm || a.leaky_slope != b.leaky_slope)
      fail_file(path, "checkpoint was written for a different architecture than the model's");
  }
  const auto fp = f.strings.find("run_fingerprint");
  if (fp == f.strings.end()) fail_file(path, "checkpoint has no run_fingerprint attribute");
  if (fp->second != fingerprint) {
    const auto a = split_fields(fp->second), b = split_fields(fingerprint);
    std::string diff;
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      const std::string x = i < a.size() ? a[i] : "", y = i < b.size() ? b[i] : "";
      if (x != y) diff += (diff.empty() ? "" : ", ") + x + " (now " + y + ")";
    }
    fail_file(path, "checkpoint is from a different run: " + diff);
  }
  auto number = [&](const char* name) {
    const auto it = f.numbers.find(name);
    if (it == f.numbers.end()) fail_file(path, std::string("missing attribute '") + name + "'");
    return it->second;
  };
  const auto step = static_cast<std::int64_t>(number("train_step"));
  seconds = number("train_seconds");
  if (static_cast<std::int64_t>(number("train_steps_planned")) != o.steps)
    log_warning(path + ": resuming a run planned for " +
                std::to_string(static_cast<std::int64_t>(number("train_steps_planned"))) +
                " steps with " + std::to_string(o.steps) +
                " steps; the learning-rate schedule changes");
  const Model::Impl& im = ModelAccess::impl(model);
  auto tensor = [&](const std::string& name, const std::string& what) -> const StoredTensor& {
    const auto it = f.tensors.find(name);
    if (it == f.tensors.end()) fail_file(path, "missing " + what + " (dataset /" + name + ")");
    return it->second;
  };
  for (const auto& kv : detail::named_parameters(im.net))
    detail::copy_stored(tensor(detail::dataset_name("parameters", kv.first), "parameter"),
                        kv.second, path, "parameter '" + kv.first + "'");
  for (const auto& kv : detail::named_buffers(im.net))
    detail::copy_stored(tensor(detail::dataset_name("buffers", kv.first), "buffer"), kv.second,
                        path, "buffer '" + kv.first + "'");
  for (std::size_t i = 0; i < adam.names.size(); ++i) {
    const std::string& n = adam.names[i];
    detail::copy_stored(tensor(detail::dataset_name("optimizer/exp_avg", n), "Adam state"),
                        adam.m[i], path, "Adam exp_avg of '" + n + "'");
    detail::copy_stored(tensor(detail::dataset_name("optimizer/exp_avg_sq", n), "Adam state"),
                        adam.v[i], path, "Adam exp_avg_sq of '" + n + "'");
  }
  auto series = [&](const char* name) {
    const auto it = f.series.find(name);
    if (it == f.series.end()) fail_file(path, std::string("missing dataset /") + name);
    return it->second;
  };
  rep.loss = series("training/loss");
  if (static_cast<std::int64_t>(rep.loss.size()) != step)
    fail_file(path, "training/loss has " + std::to_string(rep.loss.size()) + " entries for step " +
                        std::to_string(step));
  const auto vs = series("training/validation_step"), vl = series("training/validation_loss"),
             vp = series("training/validation_psnr"), vr = series("training/validation_rel_error");
  if (vl.size() != vs.size() || vp.size() != vs.size() || vr.size() != vs.size())
    fail_file(path, "validation curves of different lengths");
  rep.validation.clear();
  for (std::size_t i = 0; i < vs.size(); ++i)
    rep.validation.push_back({static_cast<std::int64_t>(vs[i]), vl[i], vp[i], vr[i]});
  model.metadata() = f.metadata;
  return step;
}

std::string range_text(double lo, double hi) {
  return lo == hi ? fmt_g(lo, 9) : fmt_g(lo, 9) + " to " + fmt_g(hi, 9);
}

void record_provenance(Model& model, const TrainOptions& o, const Split& s, std::int64_t patch,
                       const TrainReport& rep, double seconds, std::int64_t stop) {
  auto& m = model.metadata();
  m["training.steps"] = std::to_string(stop);
  m["training.steps_planned"] = std::to_string(o.steps);
  m["training.batch"] = std::to_string(o.batch);
  m["training.patch"] = std::to_string(patch);
  m["training.learning_rate"] = fmt_g(o.learning_rate, 9);
  m["training.schedule"] = o.schedule == LrSchedule::cosine ? "cosine" : "constant";
  m["training.final_lr_fraction"] = fmt_g(o.final_lr_fraction, 9);
  m["training.warmup_steps"] = std::to_string(o.warmup_steps);
  m["training.loss"] = std::string(o.species_balance > 0 ? "species-balanced mse (floor " +
                                                               fmt_g(o.species_balance, 9) + ")"
                                                         : "mse") +
                       (o.l1_weight > 0 ? " + " + fmt_g(o.l1_weight, 9) + " * l1" : "");
  m["training.flips"] = o.flips ? "x, y, z" : "none";
  m["training.seed"] = std::to_string(o.seed);
  m["training.samples"] = std::to_string(s.train.size());
  m["training.validation_samples"] = std::to_string(s.valid.size());
  m["training.validation_source"] = o.validation.empty() ? "held out of the samples" : "separate";
  std::string seeds;
  std::set<double> steps;
  double tmin = 1e300, tmax = -1e300, dmin = 1e300, dmax = -1e300;
  std::size_t listed = 0;
  for (const auto* t : s.train) {
    if (listed < 256) seeds += (listed ? "," : "") + std::to_string(t->seed);
    ++listed;
    tmin = std::min(tmin, t->tilt_max);
    tmax = std::max(tmax, t->tilt_max);
    dmin = std::min(dmin, t->dose);
    dmax = std::max(dmax, t->dose);
    steps.insert(t->tilt_step);
  }
  if (listed > 256) seeds += ",...";
  m["training.sample_seeds"] = seeds;
  if (!s.train.empty()) {
    m["training.tilt_max_deg"] = range_text(tmin, tmax);
    m["training.dose_e_per_A2"] = range_text(dmin, dmax);
    std::string st;
    for (double v : steps) st += (st.empty() ? "" : ", ") + fmt_g(v, 9);
    m["training.tilt_step_deg"] = st;
  }
  if (!rep.validation.empty()) {
    const ValidationPoint& v = rep.validation.back();
    m["training.validation_step"] = std::to_string(v.step);
    m["training.validation_loss"] = fmt_g(v.loss, 9);
    m["training.validation_psnr_db"] = fmt_g(v.psnr, 9);
    m["training.validation_rel_error"] = fmt_g(v.rel_error, 9);
    m["training.input_validation_psnr_db"] = fmt_g(rep.input_baseline.psnr, 9);
    m["training.input_validation_rel_error"] = fmt_g(rep.input_baseline.rel_error, 9);
  }
  if (!rep.loss.empty()) m["training.final_loss"] = fmt_g(rep.loss.back(), 9);
  m["training.seconds"] = fmt_g(seconds, 9);
  m["training.finished"] = utc_timestamp();
  m["training.device"] = model.device().str();
  m["training.torch_version"] = TORCH_VERSION;
  if (!o.resume_from.empty()) m["training.resumed_from"] = o.resume_from;
}

}  // namespace

TrainReport train(Model& model, const TrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.samples.empty()) fail_input("train: no training samples");
  if (o.steps < 0) fail_input("train: steps must not be negative");
  if (o.batch < 1) fail_input("train: batch must be positive");
  if (o.patch < 1) fail_input("train: patch must be positive");
  if (!(o.learning_rate > 0)) fail_input("train: learning rate must be positive");
  if (!(o.final_lr_fraction >= 0 && o.final_lr_fraction <= 1))
    fail_input("train: final_lr_fraction must be in [0, 1]");
  if (!(o.validation_fraction >= 0 && o.validation_fraction < 1))
    fail_input("train: validation_fraction must be in [0, 1)");
  if (o.l1_weight < 0) fail_input("train: l1_weight must not be negative");
  if (!(o.species_balance >= 0 && o.species_balance < 1))
    fail_input("train: species_balance must be in [0, 1)");
  if (o.stop_after < 0 || o.validate_every < 0 || o.checkpoint_every < 0 || o.warmup_steps < 0)
    fail_input(
        "train: stop_after, validate_every, checkpoint_every and warmup_steps must not be "
        "negative");
  for (std::size_t i = 0; i < o.samples.size(); ++i) check_sample(o.samples[i], i, "training");
  for (std::size_t i = 0; i < o.validation.size(); ++i)
    check_sample(o.validation[i], i, "validation");

  detail::use_aet_threads();
  Model::Impl& im = ModelAccess::impl(model);
  const std::int64_t patch = round_up(o.patch, alignment(im.config));
  const Split split = split_samples(o);
  std::vector<std::vector<std::int64_t>> fg;
  for (const auto* s : split.train) fg.push_back(foreground(s->target));
  const std::string fingerprint = run_fingerprint(o, split, patch);

  Adam adam;
  for (const auto& kv : detail::named_parameters(im.net)) {
    adam.names.push_back(kv.first);
    adam.params.push_back(kv.second);
    adam.m.push_back(torch::zeros_like(kv.second));
    adam.v.push_back(torch::zeros_like(kv.second));
  }

  TrainReport rep;
  rep.training_samples = split.train.size();
  rep.validation_samples = split.valid.size();
  double earlier_seconds = 0;
  std::int64_t step = 0;
  if (!o.resume_from.empty()) {
    step = read_checkpoint(o.resume_from, model, adam, rep, fingerprint, o, earlier_seconds);
    log_info("resuming training from " + o.resume_from + " at step " + std::to_string(step));
  }
  rep.start_step = step;
  if (!split.valid.empty()) rep.input_baseline = input_baseline(split.valid, o);
  const std::int64_t stop = o.stop_after > 0 ? std::min(o.steps, step + o.stop_after) : o.steps;

  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto checkpoint = [&](std::int64_t done) {
    if (o.checkpoint_path.empty()) return;
    record_provenance(model, o, split, patch, rep, earlier_seconds + elapsed(), done);
    write_checkpoint(model, adam, rep, done, fingerprint, earlier_seconds + elapsed(), o);
  };

  detail::UNet net = im.net;
  const torch::Device dev = im.torch_device;
  try {
    for (; step < stop; ++step) {
      const Batch b = make_batch(o, split.train, fg, patch, step);
      net->train();
      const torch::Tensor out = net->forward(b.input.to(dev));
      const torch::Tensor loss = loss_of(out, b.target.to(dev), o.l1_weight, o.species_balance);
      net->zero_grad();
      loss.backward();
      const double lr = learning_rate_at(o, step);
      adam_step(adam, step + 1, lr, o);
      const double lv = loss.item<double>();
      if (!std::isfinite(lv))
        throw InputError("train: the loss became non-finite at step " + std::to_string(step + 1) +
                         "; lower the learning rate");
      rep.loss.push_back(lv);
      const std::int64_t done = step + 1;
      const bool last = done == stop;
      ValidationPoint vp;
      bool validated = false;
      if (!split.valid.empty() &&
          ((o.validate_every > 0 && done % o.validate_every == 0) || done == o.steps)) {
        vp = validate(model, split.valid, o, done);
        rep.validation.push_back(vp);
        validated = true;
      }
      if (o.progress) {
        TrainProgress p;
        p.step = done;
        p.steps = o.steps;
        p.loss = lv;
        p.learning_rate = lr;
        p.seconds = elapsed();
        p.validation = validated ? &vp : nullptr;
        o.progress(p);
      }
      if (last || (o.checkpoint_every > 0 && done % o.checkpoint_every == 0)) checkpoint(done);
    }
  } catch (...) {
    net->eval();
    throw;
  }
  net->eval();
  rep.steps = step;
  rep.seconds = elapsed();
  record_provenance(model, o, split, patch, rep, earlier_seconds + rep.seconds, step);
  return rep;
}

}  // namespace aet::nn
