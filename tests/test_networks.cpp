// The missing-wedge U-Net: architecture, training on a synthetic deblurring task, HDF5 weights
// (round trip and refusal of bad files), patched inference, resumable training.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/rng.hpp"
#include "aet/networks/network.hpp"
#include "aet/networks/train.hpp"
#include "aet/networks/training_data.hpp"
#include "support/test_support.hpp"

namespace aet::nn {
namespace {

using test::TempDir;

UNetConfig tiny_config() {
  UNetConfig c;
  c.base_channels = 4;
  c.levels = 2;
  return c;
}

// Gaussian blobs (sigma 1 voxel, peak 1) as the target; the input is the same blobs blurred
// along z only (an elongation like the missing wedge's), normalised as the generator does.
TrainingSample blob_sample(std::int64_t nx, std::int64_t ny, std::int64_t nz, int blobs,
                           std::uint64_t seed) {
  Rng rng(seed);
  TrainingSample s;
  s.target = Array3(nx, ny, nz, 0.0f);
  s.input = Array3(nx, ny, nz, 0.0f);
  std::vector<double> cx, cy, cz, h;
  for (int b = 0; b < blobs; ++b) {
    cx.push_back(rng.uniform(4, nx - 4.0));
    cy.push_back(rng.uniform(4, ny - 4.0));
    cz.push_back(rng.uniform(4, nz - 4.0));
    h.push_back(rng.uniform(0.5, 1.0));
  }
  const double st = 1.0, sz_in = 2.5;
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t x = 0; x < nx; ++x) {
        double t = 0, in = 0;
        for (int b = 0; b < blobs; ++b) {
          const double dx = x - cx[b], dy = y - cy[b], dz = z - cz[b];
          const double r2 = (dx * dx + dy * dy) / (2 * st * st);
          t += h[b] * std::exp(-r2 - dz * dz / (2 * st * st));
          in += h[b] * (st / sz_in) * std::exp(-r2 - dz * dz / (2 * sz_in * sz_in));
        }
        s.target(x, y, z) = static_cast<float>(t);
        s.input(x, y, z) = static_cast<float>(in + 0.003 * rng.normal());
      }
  normalise_volume(s.input);
  s.seed = seed;
  s.tilt_max = 70;
  s.tilt_step = 3;
  s.dose = 1e5;
  return s;
}

TrainingSample blob_sample(std::int64_t n, std::uint64_t seed) {
  return blob_sample(n, n, n, 12, seed);
}

Array3 random_volume(std::int64_t nx, std::int64_t ny, std::int64_t nz, std::uint64_t seed) {
  Rng rng(seed);
  Array3 v(nx, ny, nz);
  for (auto& x : v.vector()) x = static_cast<float>(rng.uniform());
  return v;
}

double max_abs_diff(const Array3& a, const Array3& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return d;
}

TrainOptions tiny_training(const std::vector<TrainingSample>& samples) {
  TrainOptions o;
  o.samples = samples;
  o.validation_fraction = 0;
  o.steps = 8;
  o.batch = 2;
  o.patch = 16;
  o.learning_rate = 3e-3;
  o.validate_every = 0;
  o.seed = 7;
  return o;
}

TEST(Networks, ArchitectureFacts) {
  UNetConfig c;  // base 16, 3 levels
  EXPECT_EQ(alignment(c), 4);
  EXPECT_EQ(receptive_radius(c), 26);
  const Model m = create_model(c, 1, Device{});
  EXPECT_GT(m.parameter_count(), 300000);
  EXPECT_LT(m.parameter_count(), 400000);
  std::cout << "[ INFO     ] base 16, 3 levels: " << m.parameter_count() << " parameters\n";
  EXPECT_EQ(alignment(tiny_config()), 2);
  UNetConfig bad = c;
  bad.levels = 0;
  EXPECT_THROW(create_model(bad, 1, Device{}), InputError);
  bad = c;
  bad.base_channels = 0;
  EXPECT_THROW(check_config(bad), InputError);
}

TEST(Networks, SameSeedSameWeightsAndFreshResidualIsIdentity) {
  const Model a = create_model(tiny_config(), 3, Device{});
  const Model b = create_model(tiny_config(), 3, Device{});
  // Odd sizes, smaller than a patch: run as one padded patch, cropped back.
  Array3 v = random_volume(19, 23, 17, 5);
  v.voxel_size = {0.35, 0.35, 0.35};
  const Array3 ya = augment(a, v, {});
  const Array3 yb = augment(b, v, {});
  ASSERT_EQ(ya.nx(), 19);
  ASSERT_EQ(ya.ny(), 23);
  ASSERT_EQ(ya.nz(), 17);
  EXPECT_EQ(ya.voxel_size.x, 0.35);
  EXPECT_EQ(max_abs_diff(ya, yb), 0.0);
  // The residual head starts at zero, so a fresh model returns the normalised input.
  Array3 norm = v;
  normalise_volume(norm);
  EXPECT_LT(max_abs_diff(ya, norm), 1e-6);
}

TEST(Networks, CudaRunsWhereLibTorchSeesItAndIsRefusedElsewhere) {
  // An ordinal LibTorch cannot see is refused on every machine, with the device named.
  try {
    create_model(tiny_config(), 1, Device{DeviceKind::cuda, 999});
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:999"), std::string::npos) << e.what();
  }
  if (!torch_cuda_available()) {
    // A CPU-only LibTorch (or no GPU): cuda:0 is bad input, not a crash.
    try {
      create_model(tiny_config(), 1, Device{DeviceKind::cuda, 0});
      FAIL() << "no InputError";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
    }
    return;
  }
  // With CUDA: the same seed gives the same model on the GPU as on the CPU, and the same output.
  // Not residual: a fresh residual model is the identity (its head starts at zero), which would
  // compare no convolution at all.
  UNetConfig c = tiny_config();
  c.residual = false;
  const Model cpu = create_model(c, 5, Device{});
  const Model gpu = create_model(c, 5, Device{DeviceKind::cuda, 0});
  EXPECT_EQ(gpu.device().kind, DeviceKind::cuda);
  const Array3 v = blob_sample(24, 7).input;
  AugmentOptions o;
  o.patch = 32;
  const Array3 a = augment(cpu, v, o), b = augment(gpu, v, o);
  double peak = 0;
  for (float x : a.vector()) peak = std::max(peak, std::abs(static_cast<double>(x)));
  ASSERT_GT(peak, 1e-3) << "the model's output is trivial";
  EXPECT_LT(max_abs_diff(a, b), 1e-4 * peak);  // float rounding, no TF32
}

// Whole-volume inference (one patch, no flips: mirror images would move the padded high faces to
// the low ones) of v.
AugmentOptions whole_volume() {
  AugmentOptions whole;
  whole.patch = 64;
  whole.flips = 1;
  return whole;
}

// Patches of at most `patch` with a margin of the receptive radius (no weight where the patch
// padding is felt) give whole-volume inference to float rounding, away from the high borders
// (where the whole volume's own padding differs from a patch's). Returns the patched options.
AugmentOptions expect_patched_equals_whole(const Model& m, const Array3& v, std::int64_t patch,
                                           std::int64_t overlap, int batch) {
  AugmentOptions patched = whole_volume();
  patched.patch = patch;
  patched.overlap = overlap;
  patched.margin = receptive_radius(m.config());
  patched.batch = batch;
  const Array3 a = augment(m, v, whole_volume()), b = augment(m, v, patched);
  const std::int64_t border = receptive_radius(m.config()) + 2;
  double diff = 0, peak = 0;
  for (std::int64_t z = 0; z < v.nz(); ++z)
    for (std::int64_t y = 0; y < v.ny(); ++y)
      for (std::int64_t x = 0; x < v.nx(); ++x) {
        peak = std::max(peak, static_cast<double>(std::abs(a(x, y, z))));
        if (x >= v.nx() - border || y >= v.ny() - border || z >= v.nz() - border) continue;
        diff = std::max(diff, static_cast<double>(std::abs(a(x, y, z) - b(x, y, z))));
      }
  EXPECT_GT(peak, 0.01);
  EXPECT_LT(diff, 1e-5 * peak) << "peak " << peak;
  return patched;
}

TEST(Networks, PatchedInferenceEqualsWholeVolumeAwayFromBorders) {
  UNetConfig c = tiny_config();
  c.residual = false;  // a non-trivial output from the random initialisation
  const Model m = create_model(c, 11, Device{});
  const AugmentOptions whole = whole_volume();
  const Array3 v = random_volume(52, 46, 40, 9);
  const AugmentOptions patched = expect_patched_equals_whole(m, v, 32, 20, 3);
  // With the default margin (overlap / 4) the seams are felt but small, even for this untrained
  // network; on a particle-like volume (empty background) the two stay highly correlated.
  const Array3 blobs = blob_sample(52, 46, 40, 40, 12).input;
  AugmentOptions dflt;
  dflt.flips = 1;
  dflt.patch = 32;
  dflt.overlap = 16;
  const double r = correlation(augment(m, blobs, whole), augment(m, blobs, dflt));
  std::cout << "[ INFO     ] default margin: correlation with whole-volume inference " << r << "\n";
  EXPECT_GT(r, 0.95);
  // Inconsistent options are refused.
  AugmentOptions bad = patched;
  bad.margin = 11;
  EXPECT_THROW(augment(m, v, bad), InputError);
  bad = patched;
  bad.overlap = 32;
  EXPECT_THROW(augment(m, v, bad), InputError);
}

// A volume a little larger than the patch takes the fewest patches, each only as large as they
// need to be (130 voxels: two of 88, not two of 128), and the layout always covers the volume.
TEST(Networks, PatchLayoutTakesTheFewestPatchesNoLargerThanNeeded) {
  const auto expect_layout = [](std::int64_t n, std::int64_t patch, std::int64_t stride,
                                std::int64_t count) {
    const PatchLayout l = patch_layout(n, 128, 32, 8);
    EXPECT_EQ(l.patch, patch) << n;
    EXPECT_EQ(l.stride, stride) << n;
    EXPECT_EQ(l.count, count) << n;
  };
  expect_layout(122, 128, 128, 1);
  expect_layout(128, 128, 128, 1);
  expect_layout(130, 88, 56, 2);
  expect_layout(150, 96, 64, 2);
  expect_layout(250, 112, 80, 3);
  for (std::int64_t align : {1, 2, 4, 8})
    for (std::int64_t overlap : {0, 8, 20, 32})
      for (std::int64_t n = 1; n <= 700; ++n) {
        const PatchLayout l = patch_layout(n, 128, overlap, align);
        // As many patches as patches of the full 128 would need, never more.
        const std::int64_t full = (128 + align - 1) / align * align;
        const std::int64_t full_stride = (full - overlap) / align * align;
        const std::int64_t full_count =
            n <= full ? 1 : 1 + (n - full + full_stride - 1) / full_stride;
        ASSERT_EQ(l.count, full_count) << n << " " << overlap << " " << align;
        ASSERT_LE(l.patch, full);
        ASSERT_EQ(l.patch % align, 0);
        ASSERT_GE(l.patch + (l.count - 1) * l.stride, n);  // covers the volume
        if (l.count > 1) {
          ASSERT_EQ(l.stride % align, 0);
          ASSERT_GE(l.patch - l.stride, overlap);
        }
      }
  EXPECT_THROW(patch_layout(200, 32, 32, 8), InputError);  // no stride left
}

// Shrunk patches still give whole-volume inference away from the borders when the margin covers
// the receptive field.
TEST(Networks, ShrunkPatchesEqualWholeVolumeAwayFromBorders) {
  UNetConfig c = tiny_config();
  c.residual = false;
  const Model m = create_model(c, 11, Device{});
  ASSERT_EQ(patch_layout(36, 32, 20, alignment(c)).patch, 28);  // two of 28, not two of 32
  expect_patched_equals_whole(m, random_volume(36, 30, 34, 10), 32, 20, 1);
}

TEST(Networks, FlipAveragingIsEquivariantAndAveragesTheMirrorImages) {
  UNetConfig c = tiny_config();
  c.residual = false;
  const Model m = create_model(c, 5, Device{});
  const Array3 v = blob_sample(26, 22, 18, 14, 4).input;
  // flip_volume reverses exactly the axes of its mask and is its own inverse.
  const Array3 f = flip_volume(v, 5);
  EXPECT_EQ(f(2, 3, 4), v(v.nx() - 3, 3, v.nz() - 5));
  EXPECT_EQ(max_abs_diff(flip_volume(f, 5), v), 0.0);
  EXPECT_NEAR(f.voxel_size.x, v.voxel_size.x, 0);

  AugmentOptions one, all;
  one.flips = 1;
  all.flips = 8;
  const Array3 y = augment(m, v, all);
  // The average of the eight mirror-image passes, each flipped back.
  Array3 mean(v.nx(), v.ny(), v.nz(), 0.0f);
  for (const int mask : flip_masks(8)) {
    const Array3 p = flip_volume(augment(m, flip_volume(v, mask), one), mask);
    for (std::size_t i = 0; i < mean.size(); ++i) mean.data()[i] += p.data()[i] / 8;
  }
  double peak = 0;
  for (float x : y.vector()) peak = std::max(peak, static_cast<double>(std::abs(x)));
  ASSERT_GT(peak, 0.01);
  EXPECT_LT(max_abs_diff(y, mean), 1e-5 * peak);
  // Averaged, the output commutes with every flip; one pass of this untrained network does not.
  for (const int mask : {1, 2, 4, 7}) {
    EXPECT_LT(max_abs_diff(augment(m, flip_volume(v, mask), all), flip_volume(y, mask)),
              1e-5 * peak)
        << "mask " << mask;
    EXPECT_GT(
        max_abs_diff(augment(m, flip_volume(v, mask), one), flip_volume(augment(m, v, one), mask)),
        1e-3 * peak)
        << "mask " << mask;
  }
  EXPECT_EQ(flip_masks(2), (std::vector<int>{0, 7}));
  EXPECT_EQ(flip_masks(4).size(), 4u);
  AugmentOptions bad;
  bad.flips = 3;
  EXPECT_THROW(augment(m, v, bad), InputError);
  // The automatic choice (flips 0): 8 up to 160^3 voxels, halved for each doubling beyond.
  auto cube = [](std::int64_t n) { return n * n * n; };
  EXPECT_EQ(auto_flips(cube(160)), 8);
  EXPECT_EQ(auto_flips(cube(161)), 4);
  EXPECT_EQ(auto_flips(cube(201)), 4);
  EXPECT_EQ(auto_flips(cube(202)), 2);
  EXPECT_EQ(auto_flips(cube(253)), 2);
  EXPECT_EQ(auto_flips(cube(254)), 1);
  EXPECT_EQ(auto_flips(cube(290)), 1);
  EXPECT_EQ(resolve_flips(0, cube(64)), 8);
  EXPECT_EQ(resolve_flips(2, cube(290)), 2);
  AugmentOptions automatic;
  automatic.flips = 0;  // v is small: all eight
  EXPECT_EQ(max_abs_diff(augment(m, v, automatic), y), 0.0);
}

TEST(Networks, TrainingReducesTheLossAndRecordsProvenance) {
  std::vector<TrainingSample> samples;
  for (std::uint64_t s = 0; s < 4; ++s) samples.push_back(blob_sample(24, 100 + s));
  TrainOptions o = tiny_training(samples);
  o.validation_fraction = 0.25;  // one of four held out
  o.steps = 60;
  o.validate_every = 30;
  o.validation_inference.patch = 32;
  int calls = 0;
  o.progress = [&](const TrainProgress& p) {
    ++calls;
    EXPECT_EQ(p.steps, 60);
    EXPECT_GT(p.learning_rate, 0);
  };
  Model m = create_model(tiny_config(), 2, Device{});
  const TrainReport r = train(m, o);

  EXPECT_EQ(calls, 60);
  ASSERT_EQ(r.loss.size(), 60u);
  EXPECT_EQ(r.training_samples, 3u);
  EXPECT_EQ(r.validation_samples, 1u);
  const double first = std::accumulate(r.loss.begin(), r.loss.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(r.loss.end() - 10, r.loss.end(), 0.0) / 10;
  std::cout << "[ INFO     ] loss " << first << " -> " << last << ", validation rel. error "
            << r.input_baseline.rel_error << " -> " << r.validation.back().rel_error << "\n";
  EXPECT_LT(last, 0.6 * first);
  ASSERT_EQ(r.validation.size(), 2u);
  EXPECT_EQ(r.validation.back().step, 60);
  EXPECT_LT(r.validation.back().rel_error, r.input_baseline.rel_error);
  EXPECT_EQ(m.metadata().at("training.steps"), "60");
  EXPECT_EQ(m.metadata().at("training.samples"), "3");
  EXPECT_EQ(m.metadata().at("training.seed"), "7");
  EXPECT_EQ(m.metadata().at("training.device"), "cpu");
  EXPECT_TRUE(m.metadata().count("training.validation_rel_error"));
}

// The species-balanced loss trains too (its loss falls, validation beats the input), is recorded
// in the provenance, and out-of-range floors are refused.
TEST(Networks, SpeciesBalancedLossTrainsAndIsRecorded) {
  std::vector<TrainingSample> samples;
  for (std::uint64_t s = 0; s < 4; ++s) samples.push_back(blob_sample(24, 200 + s));
  TrainOptions o = tiny_training(samples);
  o.validation_fraction = 0.25;
  o.steps = 60;
  o.validate_every = 60;
  o.validation_inference.patch = 32;
  o.species_balance = 0.15;
  Model m = create_model(tiny_config(), 2, Device{});
  const TrainReport r = train(m, o);
  const double first = std::accumulate(r.loss.begin(), r.loss.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(r.loss.end() - 10, r.loss.end(), 0.0) / 10;
  std::cout << "[ INFO     ] balanced loss " << first << " -> " << last << "\n";
  EXPECT_LT(last, 0.6 * first);
  ASSERT_EQ(r.validation.size(), 1u);
  EXPECT_LT(r.validation.back().rel_error, r.input_baseline.rel_error);
  EXPECT_NE(m.metadata().at("training.loss").find("species-balanced"), std::string::npos);
  for (double bad : {-0.1, 1.0}) {
    o.species_balance = bad;
    EXPECT_THROW(train(m, o), InputError) << bad;
  }
}

TEST(Networks, SavedAndLoadedModelsGiveIdenticalOutputs) {
  TempDir dir;
  std::vector<TrainingSample> samples = {blob_sample(20, 1), blob_sample(20, 2)};
  Model m = create_model(tiny_config(), 4, Device{});
  train(m, tiny_training(samples));  // non-trivial weights and BatchNorm statistics
  m.metadata()["note"] = "round trip";
  const std::string path = dir.file("model.h5");
  save_model(m, path);
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"model.h5"});  // no temp left
  const Model back = load_model(path, Device{});
  EXPECT_EQ(back.config().base_channels, 4);
  EXPECT_EQ(back.config().levels, 2);
  EXPECT_EQ(back.metadata().at("note"), "round trip");
  EXPECT_EQ(back.metadata().at("training.steps"), "8");
  const Array3 v = random_volume(30, 26, 22, 3);
  EXPECT_EQ(max_abs_diff(augment(m, v, {}), augment(back, v, {})), 0.0);
}

// Edits a saved model with the HDF5 C API to make the bad files the loader must refuse.
void replace_dataset(const std::string& path, const std::string& name,
                     const std::vector<hsize_t>& dims) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, name.c_str(), H5P_DEFAULT), 0);
  if (!dims.empty()) {
    const hid_t sp = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t ds =
        H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    std::size_t n = 1;
    for (hsize_t d : dims) n *= d;
    std::vector<float> zeros(n, 0.0f);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(ds);
    H5Sclose(sp);
  }
  H5Fclose(f);
}

void set_version(const std::string& path, double v) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
  ASSERT_GE(a, 0);
  H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Fclose(f);
}

TEST(Networks, BadModelFilesAreRefusedNamingTheFile) {
  TempDir dir;
  const Model m = create_model(tiny_config(), 4, Device{});
  const std::string good = dir.file("good.h5");
  save_model(m, good);
  const std::string bytes = test::read_text(good);

  test::expect_input_error(
      dir.file("missing.h5"), [&] { load_model(dir.file("missing.h5"), {}); }, "not found");

  const std::string text = dir.file("text.h5");
  test::write_text(text, "not a model\n");
  test::expect_input_error(
      text, [&] { load_model(text, {}); }, "HDF5");

  const std::string truncated = dir.file("truncated.h5");
  test::write_bytes(truncated, std::vector<char>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  test::expect_input_error(truncated, [&] { load_model(truncated, {}); });

  const std::string shape = dir.file("shape.h5");
  test::write_text(shape, bytes);
  replace_dataset(shape, "parameters/enc0/conv1/weight", {4, 1, 3, 3, 2});
  test::expect_input_error(
      shape, [&] { load_model(shape, {}); }, "enc0.conv1.weight");

  const std::string missing = dir.file("missing_param.h5");
  test::write_text(missing, bytes);
  replace_dataset(missing, "parameters/dec0/conv2/weight", {});
  test::expect_input_error(
      missing, [&] { load_model(missing, {}); }, "dec0.conv2.weight");

  const std::string version = dir.file("version.h5");
  test::write_text(version, bytes);
  set_version(version, 99);
  test::expect_input_error(
      version, [&] { load_model(version, {}); }, "version");

  // The good file still loads (the edits were on copies).
  EXPECT_NO_THROW(load_model(good, {}));
  // Saving into a missing directory names the file.
  const std::string nodir = dir.file("no/such/dir/model.h5");
  test::expect_input_error(nodir, [&] { save_model(m, nodir); });
}

TEST(Networks, ResumedTrainingContinuesTheSameRun) {
  TempDir dir;
  std::vector<TrainingSample> samples = {blob_sample(20, 21), blob_sample(20, 22),
                                         blob_sample(20, 23)};
  TrainOptions o = tiny_training(samples);
  o.steps = 10;
  o.schedule = LrSchedule::cosine;

  Model straight = create_model(tiny_config(), 5, Device{});
  const TrainReport full = train(straight, o);

  TrainOptions first = o;
  first.stop_after = 5;
  first.checkpoint_path = dir.file("ckpt.h5");
  Model half = create_model(tiny_config(), 5, Device{});
  const TrainReport r1 = train(half, first);
  EXPECT_EQ(r1.steps, 5);
  ASSERT_TRUE(test::file_exists(first.checkpoint_path));
  // A checkpoint is also a model file.
  EXPECT_NO_THROW(load_model(first.checkpoint_path, {}));

  TrainOptions second = o;
  second.resume_from = first.checkpoint_path;
  Model resumed = create_model(tiny_config(), 99, Device{});  // weights come from the checkpoint
  const TrainReport r2 = train(resumed, second);
  EXPECT_EQ(r2.start_step, 5);
  ASSERT_EQ(r2.loss.size(), full.loss.size());
  for (std::size_t i = 0; i < full.loss.size(); ++i)
    EXPECT_NEAR(r2.loss[i], full.loss[i], 1e-6 * std::abs(full.loss[i])) << "step " << i + 1;
  const Array3 v = random_volume(24, 24, 24, 8);
  const Array3 ya = augment(straight, v, {}), yb = augment(resumed, v, {});
  EXPECT_LT(max_abs_diff(ya, yb), 1e-5);

  // A checkpoint of another run (different seed) is refused, naming the file.
  TrainOptions other = o;
  other.seed = 8;
  other.resume_from = first.checkpoint_path;
  Model m2 = create_model(tiny_config(), 5, Device{});
  test::expect_input_error(
      first.checkpoint_path, [&] { train(m2, other); }, "seed");
}

TEST(Networks, DefaultModelPathHonoursTheEnvironment) {
  ::setenv("AET_MODEL", "/some/where/model.h5", 1);
  EXPECT_EQ(default_model_path(), "/some/where/model.h5");
  ::unsetenv("AET_MODEL");
  const std::string p = default_model_path();
  EXPECT_TRUE(p.empty() || test::file_exists(p));
}

}  // namespace
}  // namespace aet::nn
