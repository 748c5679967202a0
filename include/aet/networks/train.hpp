// Training of the missing-wedge U-Net on TrainingSample pairs (input = RESIRE reconstruction,
// target = ideal atom volume). Free of LibTorch headers, like network.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aet/networks/network.hpp"
#include "aet/networks/training_data.hpp"

namespace aet::nn {

enum class LrSchedule {
  constant,  // learning_rate throughout (after the warm-up)
  cosine,    // cosine decay from learning_rate to learning_rate * final_lr_fraction
};

struct ValidationPoint {
  std::int64_t step = 0;  // steps done when measured
  double loss = 0;        // training loss function on the whole validation volumes
  double psnr = 0;        // dB, peak = max |target| of each volume, averaged over volumes
  double rel_error = 0;   // ||output - target|| / ||target||, averaged over volumes
};

struct TrainProgress {
  std::int64_t step = 0, steps = 0;  // steps done, total
  double loss = 0;                   // loss of the step just done
  double learning_rate = 0;
  double seconds = 0;                           // since train() started
  const ValidationPoint* validation = nullptr;  // set on steps that were validated
};

struct TrainOptions {
  std::vector<TrainingSample> samples;  // training pairs (read_training_set)
  // A separate validation set; when empty, round(validation_fraction * samples) samples (at
  // least one when there are two or more) are held out of `samples`, chosen by the seed.
  std::vector<TrainingSample> validation;
  double validation_fraction = 0.1;

  std::int64_t steps = 2000;  // optimiser steps in all (a resumed run counts the earlier ones)
  // Stop after this many steps of this call (checkpointing there), e.g. to fit a batch-job time
  // limit; a later call with resume_from goes on. 0: run to `steps`.
  std::int64_t stop_after = 0;
  int batch = 4;                // patches per step
  std::int64_t patch = 48;      // cubic training patch edge, rounded up to alignment()
  double learning_rate = 1e-3;  // Adam
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  LrSchedule schedule = LrSchedule::cosine;
  double final_lr_fraction = 0.02;  // cosine: final learning rate / learning_rate
  std::int64_t warmup_steps = 0;    // linear warm-up from 0
  double l1_weight = 0.0;           // loss = MSE + l1_weight * L1
  // Species balance f (0 = off): the squared error of each voxel is weighted by
  // 1 / max(e, f)^2, with e the largest target value within 2 voxels (the peak height of the
  // nearest atom: 1 for the heaviest species, (Z/Z_max)^1.7 for lighter ones, 0 in vacuum), and
  // the weights normalised to mean 1 per batch. A light atom beside heavy ones then counts as
  // much as a heavy one.
  double species_balance = 0.0;
  // Fraction of patches centred (with jitter) on a voxel of the particle (target above 10 % of
  // its maximum); the rest are uniform crops.
  double foreground_fraction = 0.8;
  // Random flips of x, y and z: each keeps a single-axis (y) missing wedge a wedge. 90-degree
  // rotations about y would turn the wedge to the x axis and are never applied.
  bool flips = true;
  std::uint64_t seed = 1;  // sample choice, crops, flips and the held-out split

  std::int64_t validate_every = 100;  // steps between validations (0: only at the end)
  // How validation volumes are run: patched as in use, but one pass (flip averaging would make
  // each validation 8 times slower and hide the network's own error that it averages out).
  AugmentOptions validation_inference = one_pass();
  static AugmentOptions one_pass() {
    AugmentOptions a;
    a.flips = 1;
    return a;
  }

  std::string checkpoint_path;        // "" = no checkpoints
  std::int64_t checkpoint_every = 0;  // steps between checkpoints (0: only at the end)
  // A checkpoint of the same run (same architecture, seed, batch, patch, data): its weights,
  // Adam state, step and curves replace the model's, and training goes on from its step, with
  // the same result as an uninterrupted run.
  std::string resume_from;

  std::function<void(const TrainProgress&)> progress;  // called after every step
};

struct TrainReport {
  std::vector<double> loss;                 // training loss per step, from step 1
  std::vector<ValidationPoint> validation;  // in step order
  ValidationPoint input_baseline;           // the validation metrics of the input itself (step 0)
  std::int64_t start_step = 0;              // > 0 when resumed
  std::int64_t steps = 0;                   // steps done in all
  std::size_t training_samples = 0, validation_samples = 0;
  double seconds = 0;  // wall time of this call
};

// Trains `model` in place on its own device (create_model(config, seed, device) for a new run,
// load_model for fine-tuning). Writes the training provenance into model.metadata(). Throws
// InputError for unusable options or data and for a checkpoint of a different run.
TrainReport train(Model& model, const TrainOptions& options);

}  // namespace aet::nn
