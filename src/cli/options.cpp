#include "cli/options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "aet/core/elements.hpp"
#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/mrc.hpp"
#include "aet/networks/flips.hpp"
#include "aet/recon/projector.hpp"

namespace aet::cli {

void add_common_options(po::options_description& desc, bool device, bool seed) {
  auto add = desc.add_options();
  add("help,h", "print this help and exit");
  add("config", po::value<std::string>()->value_name("FILE"),
      "read options from an INI file (key = value; [section] named after the subcommand or "
      "[common]); the command line wins");
  if (seed)
    add("seed", po::value<std::uint64_t>()->default_value(0)->value_name("N"),
        "seed of every random choice (recorded in the outputs)");
  add("threads", po::value<int>()->default_value(0)->value_name("N"),
      "CPU threads (0 = the CPUs this process may run on, at most $SLURM_CPUS_PER_TASK)");
  add("quiet,q", po::bool_switch(), "print errors only");
  add("verbose,v", po::bool_switch(), "print more detail");
  if (device)
    add("device", po::value<std::string>()->default_value("auto")->value_name("D"),
        "compute device: auto, cpu, cuda or cuda:N");
}

std::uint64_t seed_or_default(const po::variables_map& vm) {
  return vm.count("seed") ? vm["seed"].as<std::uint64_t>() : 0;
}

Device device_option(const po::variables_map& vm) {
  return resolve_device(vm["device"].as<std::string>());
}

Device resolve_recon_device(const po::variables_map& vm) {
  const std::string spec = vm["device"].as<std::string>();
  const Device device = resolve_device(spec);
  // Every CUDA build has the CUDA projector and solvers, so auto keeps the GPU it found; the
  // fallback only guards a binary whose device query sees a GPU without them.
  if (spec == "auto" && device.kind == DeviceKind::cuda && !cuda_projector_available()) {
    log_info("this build has no CUDA projector: reconstructing on the CPU");
    return Device{};
  }
  return device;
}

void add_pixel_option(po::options_description& desc, const char* help) {
  desc.add_options()("pixel", po::value<double>()->value_name("A"), help);
}

double header_pixel(const std::string& path, const MrcHeader& header) {
  if (header.cella[0] <= 0 || header.mx <= 0) {
    log_warning(path + ": the header gives no pixel size; using 1 A (set --pixel)");
    return 1.0;
  }
  const VoxelSize v = header.voxel_size();
  if (std::abs(v.y - v.x) > 1e-4 * v.x)
    fail_file(path, "pixels are not square (" + json_number(v.x) + " x " + json_number(v.y) +
                        " A); give --pixel after resampling");
  // CELLA is float32: 0.8 comes back as 0.7999999788; keep the 7 digits a float holds.
  char text[32];
  std::snprintf(text, sizeof text, "%.7g", v.x);
  return std::strtod(text, nullptr);
}

Array3 read_tilt_series(const std::string& path, const po::variables_map& vm) {
  MrcHeader header;
  Array3 views = read_mrc(path, &header);
  double pixel = 0;
  if (vm.count("pixel")) {
    pixel = vm["pixel"].as<double>();
    if (!(pixel > 0) || !std::isfinite(pixel))
      fail_input("--pixel must be > 0, got " + json_number(pixel));
  } else {
    pixel = header_pixel(path, header);
  }
  views.voxel_size = VoxelSize{pixel, pixel, pixel};
  if (views.nz() < 2)
    fail_file(path, "a tilt series needs at least 2 views, got " + std::to_string(views.nz()));
  // Smaller views hold no particle to align, reconstruct or trace: a wrong file or axis order.
  constexpr std::int64_t kMinViewPx = 8;
  if (views.nx() < kMinViewPx || views.ny() < kMinViewPx)
    fail_file(path, "views of " + std::to_string(views.nx()) + " x " + std::to_string(views.ny()) +
                        " px are too small for a tilt series (at least " +
                        std::to_string(kMinViewPx) + " x " + std::to_string(kMinViewPx) + " px)");
  return views;
}

void add_elements_option(po::options_description& desc, const char* default_list,
                         const char* value_name, const char* help) {
  auto* value = po::value<std::string>();
  if (default_list) value->default_value(default_list);
  desc.add_options()("elements", value->value_name(value_name), help);
}

std::vector<std::string> parse_elements(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b == std::string::npos) fail_input("--elements: empty element in '" + list + "'");
    out.push_back(item.substr(b, e - b + 1));
    element(out.back());  // throws InputError naming an unknown symbol
  }
  if (out.empty()) fail_input("--elements: give at least one element, e.g. Pt or Fe,Pt");
  return out;
}

std::vector<std::string> elements_option(const po::variables_map& vm) {
  if (!vm.count("elements")) return {};
  return parse_elements(vm["elements"].as<std::string>());
}

void add_min_distance_option(po::options_description& desc, const char* help) {
  desc.add_options()("min-distance", po::value<double>()->default_value(2.0)->value_name("A"),
                     help);
}

double min_distance_option(const po::variables_map& vm) {
  const double d = vm["min-distance"].as<double>();
  if (!(d > 0)) fail_input("--min-distance must be > 0");
  return d;
}

void add_angle_search_option(po::options_description& desc, double default_deg, const char* help) {
  desc.add_options()("angle-search",
                     po::value<double>()->default_value(default_deg)->value_name("DEG"), help);
}

double angle_search_option(const po::variables_map& vm) {
  const double deg = vm["angle-search"].as<double>();
  if (!(deg >= 0 && deg <= 45)) fail_input("--angle-search must be in [0, 45] degrees");
  return deg;
}

void add_alignment_options(po::options_description& desc) {
  po::options_description group("Alignment");
  // clang-format off
  group.add_options()
    ("sample", po::value<std::string>()->default_value("auto")->value_name("KIND"),
       "auto, particle or film: an isolated particle has empty margins in every view; a film "
       "reaches the border of the views and keeps its background and intensity (auto: from the "
       "views)")
    ("no-background", "do not subtract a background (off anyway for a film)")
    ("no-normalise", "do not equalise the views' total intensity (off anyway for a film)")
    ("no-hot-pixels", "do not remove hot pixels")
    ("denoise", po::value<double>()->default_value(0.0)->value_name("PX"),
       "Gaussian denoising sigma in pixels (0 = off)")
    ("no-axis", "do not refine the tilt-axis rotation")
    ("no-shifts", "do not refine shifts")
    ("no-coarse", "skip the coarse alignment (centre of mass / cross-correlation, common line)")
    ("max-shift", po::value<double>()->default_value(0.0)->value_name("PX"),
       "largest shift searched, pixels (0 = a quarter of the view width)");
  // clang-format on
  desc.add(group);
}

void read_alignment_options(const po::variables_map& vm, AlignOptions& a) {
  a.sample = parse_sample(vm["sample"].as<std::string>());
  a.refine_axis = !vm.count("no-axis");
  a.refine_shifts = !vm.count("no-shifts");
  a.coarse = !vm.count("no-coarse");
  a.preprocess.subtract_background = !vm.count("no-background");
  a.preprocess.normalise = !vm.count("no-normalise");
  a.preprocess.remove_hot_pixels = !vm.count("no-hot-pixels");
  a.preprocess.denoise_sigma = vm["denoise"].as<double>();
  if (!(a.preprocess.denoise_sigma >= 0) || !std::isfinite(a.preprocess.denoise_sigma))
    fail_input("--denoise must be >= 0");
  a.max_shift_px = vm["max-shift"].as<double>();
  if (!(a.max_shift_px >= 0) || !std::isfinite(a.max_shift_px))
    fail_input("--max-shift must be >= 0");
}

void add_iterations_option(po::options_description& desc, int default_n, const char* help,
                           bool short_n) {
  auto* value = po::value<int>();
  if (default_n > 0) value->default_value(default_n);
  desc.add_options()(short_n ? "iterations,n" : "iterations", value->value_name("N"), help);
}

int iterations_option(const po::variables_map& vm) {
  const int n = vm["iterations"].as<int>();
  if (n < 1) fail_input("--iterations must be >= 1");
  return n;
}

void add_position_prior_option(po::options_description& desc, const char* help) {
  desc.add_options()("position-prior",
                     po::value<double>()->default_value(0.05, "0.05")->value_name("A"), help);
}

double position_prior_option(const po::variables_map& vm) {
  const double sd = vm["position-prior"].as<double>();
  if (!(sd >= 0) || !std::isfinite(sd)) fail_input("--position-prior must be >= 0 Angstrom");
  return sd;
}

void add_probe_tail_option(po::options_description& desc, const char* where) {
  desc.add_options()("probe-tail",
                     (std::string(where) +
                      "fit a probe tail with the atoms: a second, wide Gaussian under every atom "
                      "(amplitude and width fitted to the views; docs/refinement.md)")
                         .c_str());
}

void add_checkpoint_option(po::options_description& desc, const char* what) {
  desc.add_options()("checkpoint", po::value<std::string>()->value_name("DIR"),
                     (std::string("keep ") + what +
                      " in DIR; the same command run again (after a time limit, scancel, a "
                      "crash) takes them from DIR instead of computing them again, as long as "
                      "the input and the settings are the same. DIR outside --out")
                         .c_str());
}

void add_checkpoint_every_option(po::options_description& desc) {
  desc.add_options()("checkpoint-every", po::value<int>()->default_value(10)->value_name("N"),
                     "with --checkpoint: keep a plain RESIRE or SIRT solve's progress every N "
                     "iterations, so that a stopped run goes on from there (0: only finished "
                     "stages)");
}

int checkpoint_every_option(const po::variables_map& vm) {
  const int every = vm["checkpoint-every"].as<int>();
  if (every < 0) fail_input("--checkpoint-every must be >= 0, got " + std::to_string(every));
  return every;
}

CheckpointOption checkpoint_option(const Parsed& p, const std::set<std::string>& ignored,
                                   const std::map<std::string, std::string>& stage_of) {
  namespace fs = std::filesystem;
  CheckpointOption c;
  if (!p.vm.count("checkpoint")) return c;
  const std::string given = p.vm["checkpoint"].as<std::string>();
  if (given.empty()) fail_input("--checkpoint: empty folder name");
  const fs::path ck = fs::absolute(given).lexically_normal();
  if (p.vm.count("out")) {
    const fs::path out = fs::absolute(p.vm["out"].as<std::string>()).lexically_normal();
    const auto rel = ck.lexically_relative(out);
    if (!rel.empty() && *rel.begin() != "..")
      fail_input("--checkpoint " + given + ": put the checkpoint folder outside --out");
  }
  c.dir = ck.string();
  static const std::set<std::string> never = {
      "threads", "quiet", "verbose", "out", "checkpoint", "checkpoint-every", "strict"};
  std::istringstream lines(p.effective_config);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string key = line.substr(0, line.find(" = "));
    if (never.count(key) || ignored.count(key)) continue;
    const auto stage = stage_of.find(key);
    (stage == stage_of.end() ? c.settings : c.stage_settings[stage->second]) += line + "\n";
  }
  return c;
}

void add_model_option(po::options_description& desc) {
  desc.add_options()(
      "model", po::value<std::string>()->value_name("FILE"),
      "network weights (HDF5); default: the shipped model (networks/models/, or $AET_MODEL)");
}

namespace {

// --model as given; "" when absent. An empty --model "" would otherwise mean the shipped model.
std::string given_model(const po::variables_map& vm) {
  if (!vm.count("model")) return "";
  const std::string path = vm["model"].as<std::string>();
  if (path.empty()) fail_input("--model: empty file name");
  return path;
}

}  // namespace

std::string model_option(const po::variables_map& vm) {
  return nn::resolve_model_path(given_model(vm));
}

void add_network_options(po::options_description& desc) {
  desc.add_options()("no-network",
                     "skip the missing-wedge network (trace the reconstruction itself)");
  add_model_option(desc);
  add_flips_option(desc, 0);
}

void add_flips_option(po::options_description& desc, int default_flips) {
  desc.add_options()("flips", po::value<int>()->default_value(default_flips)->value_name("N"),
                     "network: average its outputs over N mirror images of the volume (1, 2, 4 or "
                     "8; N passes; less of the network's own error; 0 = 8 up to 160^3 voxels, "
                     "halved for each doubling of the volume beyond)");
}

int flips_option(const po::variables_map& vm) {
  const int f = vm["flips"].as<int>();
  if (f == 0) return 0;
  try {
    nn::flip_masks(f);  // the one rule; its message gains the option's dashes
  } catch (const InputError& e) {
    fail_input(std::string("--") + e.what());
  }
  return f;
}

Device network_device(const po::variables_map& vm, const Device& recon_device) {
  return nn::network_device(recon_device, vm["device"].as<std::string>() == "auto");
}

nn::StageOptions network_stage_options(const po::variables_map& vm, const Device& recon_device) {
  nn::StageOptions o;
  o.flips = flips_option(vm);
  o.enabled = !vm.count("no-network");
  o.model = given_model(vm);
  o.device = network_device(vm, recon_device);
  return o;
}

void add_slurm_options(po::options_description& desc) {
  po::options_description slurm("Slurm");
  // clang-format off
  slurm.add_options()
    ("partition", po::value<std::string>()->default_value("")->value_name("NAME"), "partition")
    ("account", po::value<std::string>()->default_value("")->value_name("NAME"), "account")
    ("qos", po::value<std::string>()->default_value("")->value_name("NAME"), "quality of service")
    ("time", po::value<std::string>()->default_value("")->value_name("T"),
       "time limit per task (MM, HH:MM:SS, D-HH:MM:SS)")
    ("cpus", po::value<int>()->default_value(0)->value_name("N"),
       "CPUs per task (aet's threads follow it); 0 = the partition's default")
    ("gpus", po::value<int>()->default_value(0)->value_name("N"), "GPUs per task")
    ("mem", po::value<std::string>()->default_value("")->value_name("SIZE"),
       "memory per node (e.g. 16G)")
    ("throttle", po::value<int>()->default_value(0)->value_name("N"),
       "at most N array tasks at once (0 = no limit)")
    ("job-name", po::value<std::string>()->default_value("aet")->value_name("NAME"),
       "prefix of the Slurm job names")
    ("sbatch", po::value<std::vector<std::string>>()->composing()->value_name("OPTION"),
       "one more #SBATCH option (repeatable), e.g. --sbatch=--constraint=a100")
    ("module", po::value<std::vector<std::string>>()->composing()->value_name("NAME"),
       "an environment module to load first (repeatable)")
    ("container", po::value<std::string>()->value_name("WORDS"),
       "the command aet runs under, e.g. 'apptainer exec --nv aet.sif'")
    ("aet", po::value<std::string>()->value_name("PATH"),
       "the aet the tasks run (default: this one; give the path inside a container)")
    ("workdir", po::value<std::string>()->value_name("DIR"),
       "the tasks' working directory (default: the current one)");
  // clang-format on
  desc.add(slurm);
}

SlurmResources read_slurm_options(const po::variables_map& vm) {
  SlurmResources r;
  r.partition = vm["partition"].as<std::string>();
  r.account = vm["account"].as<std::string>();
  r.qos = vm["qos"].as<std::string>();
  r.time = vm["time"].as<std::string>();
  r.mem = vm["mem"].as<std::string>();
  r.cpus_per_task = vm["cpus"].as<int>();
  r.gpus_per_task = vm["gpus"].as<int>();
  r.throttle = vm["throttle"].as<int>();
  r.job_name = vm["job-name"].as<std::string>();
  if (vm.count("sbatch")) r.extra_sbatch = vm["sbatch"].as<std::vector<std::string>>();
  if (vm.count("module")) r.modules = vm["module"].as<std::vector<std::string>>();
  if (vm.count("container"))
    r.container = split_words(vm["container"].as<std::string>(), "--container");
  check_slurm_resources(r);
  return r;
}

}  // namespace aet::cli
