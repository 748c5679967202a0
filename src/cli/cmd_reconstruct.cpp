// aet reconstruct: a volume from a tilt series and its angles (RESIRE, SIRT, FBP or GENFIRE),
// written as one MRC file plus a JSON record of the run next to it (<out stem>.json).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "aet/core/build_config.hpp"
#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "aet/recon/projector.hpp"
#include "aet/recon/solvers.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "pipeline/checkpoint.hpp"

namespace aet::cli {
namespace {

// "NX,NY,NZ" -> three positive sizes.
void parse_size(const std::string& text, std::int64_t& nx, std::int64_t& ny, std::int64_t& nz) {
  char tail = 0;
  long long a = 0, b = 0, c = 0;
  if (std::sscanf(text.c_str(), "%lld,%lld,%lld%c", &a, &b, &c, &tail) != 3 || a <= 0 || b <= 0 ||
      c <= 0)
    fail_input("--size must be NX,NY,NZ (three positive integers), got '" + text + "'");
  nx = a, ny = b, nz = c;
}

// <dir>/<stem>.json for <dir>/<stem>.<ext>.
std::string metadata_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".json");
  return p.string();
}

}  // namespace

int run_reconstruct(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("tilts,t", po::value<std::string>()->value_name("FILE"), "tilt series (MRC stack, views along z)")
    ("angles,a", po::value<std::string>()->value_name("FILE"),
       "view angles: .tlt/.rawtlt (one tilt per line) or 3-column Euler text (phi theta psi)")
    ("out,o", po::value<std::string>()->value_name("FILE"), "output volume (MRC)")
    ("algorithm", po::value<std::string>()->default_value("resire")->value_name("NAME"),
       "resire, sirt, fbp or genfire");
  add_iterations_option(desc, 50, "iterations (resire, sirt, genfire)", /*short_n=*/true);
  desc.add_options()
    ("step", po::value<double>()->default_value(1.0)->value_name("S"),
       "RESIRE step (normalised; stable up to ~2) or SIRT relaxation")
    ("size", po::value<std::string>()->value_name("NX,NY,NZ"),
       "volume size in voxels (default: view width, view height, view width)")
    ("nx", po::value<std::int64_t>()->value_name("N"), "volume width (voxels)")
    ("ny", po::value<std::int64_t>()->value_name("N"), "volume height (voxels)")
    ("nz", po::value<std::int64_t>()->value_name("N"), "volume depth (voxels)")
    ("support", po::value<std::string>()->value_name("FILE"),
       "mask volume (MRC, volume size): voxels where it is 0 are kept at 0")
    ("no-positivity", "allow negative voxels (iterative algorithms)")
    ("accelerate", "RESIRE / SIRT: FISTA momentum with restart (several times fewer iterations "
       "for the same R factors; one more volume of memory)")
    ("fourier-shift", "RESIRE / SIRT / FBP: apply sub-pixel view shifts to the views in Fourier "
       "space, leaving whole pixels to the projector (sharper fit for shifted views)")
    ("initial", po::value<std::string>()->value_name("FILE"),
       "RESIRE / SIRT: start from this volume (MRC, volume size) instead of zeros")
    ("extended", "an object wider than the field of view (a film): solve on a volume as wide as "
       "the tilted views reach within its depth, write the field of view")
    ("filter", po::value<std::string>()->default_value("ramp")->value_name("NAME"),
       "FBP filter: ramp, shepp-logan or hann")
    ("oversampling", po::value<double>()->default_value(2.0)->value_name("R"),
       "GENFIRE: Fourier grid size / volume size per axis (>= 1)")
    ("interp-radius", po::value<double>()->default_value(0.3, "0.3")->value_name("D"),
       "GENFIRE: gridding radius around each view's Fourier slice, in Fourier voxels (0, 2]")
    ("rfree-fraction", po::value<double>()->default_value(0.05, "0.05")->value_name("F"),
       "GENFIRE: share of the gridded Fourier values held out for R_free, in [0, 0.5)")
    ("no-resolution-extension",
       "GENFIRE: enforce all measured frequencies from the first iteration (default: a "
       "frequency limit growing over the first half of the iterations)");
  // clang-format on
  add_checkpoint_option(desc, "a plain RESIRE or SIRT solve's progress as it goes");
  add_checkpoint_every_option(desc);
  add_pixel_option(desc);
  add_common_options(desc);
  const auto synopsis = "--tilts T.mrc --angles A.tlt --out V.mrc [options]";
  const auto about =
      "Reconstructs a volume from an aligned tilt series with a matched projector pair "
      "(docs/reconstruction.md). RESIRE: gradient descent on the projection misfit with "
      "positivity and an optional support; SIRT; FBP (filtered back projection); GENFIRE (the "
      "views gridded onto an oversampled 3D Fourier grid, then alternating the measured Fourier "
      "values with positivity and the support in real space). The R factors R1 and R2 of the fit "
      "are reported per iteration, and for GENFIRE R_free, the misfit of the held-out Fourier "
      "values.\n\nWrites FILE (the volume, voxel size = pixel size) and, next to it, FILE's stem "
      "+ .json (algorithm, parameters, R1/R2 (and R_free) per iteration, run time, version and "
      "command line).";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"tilts", "angles", "out"}});
  if (p.help) return 0;
  const auto& vm = p.vm;

  // Everything is read and checked before anything is written, the outputs' places first.
  const std::string out = vm["out"].as<std::string>();
  const std::string meta = metadata_path(out);
  check_output_file("out", out, mrc_extensions(), "an MRC volume");
  check_output_file("out", meta, {}, "the run's JSON record");
  ReconOptions opt;
  opt.algorithm = parse_algorithm(vm["algorithm"].as<std::string>());
  opt.filter = parse_fbp_filter(vm["filter"].as<std::string>());
  // Not iterations_option: FBP has no iterations to check, and this message gives the value.
  opt.iterations = vm["iterations"].as<int>();
  if (opt.algorithm != Algorithm::fbp && opt.iterations < 1)
    fail_input("--iterations must be >= 1, got " + std::to_string(opt.iterations));
  opt.step = vm["step"].as<double>();
  if (!(opt.step > 0) || !std::isfinite(opt.step))
    fail_input("--step must be > 0, got " + json_number(opt.step));
  opt.positivity = !vm.count("no-positivity");
  opt.accelerate = vm.count("accelerate") > 0;
  opt.fourier_shift = vm.count("fourier-shift") > 0;
  opt.extended = vm.count("extended") > 0;
  opt.genfire.oversampling = vm["oversampling"].as<double>();
  opt.genfire.interpolation_radius = vm["interp-radius"].as<double>();
  opt.genfire.rfree_fraction = vm["rfree-fraction"].as<double>();
  opt.genfire.resolution_extension = !vm.count("no-resolution-extension");
  if (opt.algorithm == Algorithm::genfire) {
    if (!(opt.genfire.oversampling >= 1) || !std::isfinite(opt.genfire.oversampling))
      fail_input("--oversampling must be >= 1, got " + json_number(opt.genfire.oversampling));
    if (!(opt.genfire.interpolation_radius > 0) || !(opt.genfire.interpolation_radius <= 2))
      fail_input("--interp-radius must be in (0, 2], got " +
                 json_number(opt.genfire.interpolation_radius));
    if (!(opt.genfire.rfree_fraction >= 0) || !(opt.genfire.rfree_fraction < 0.5))
      fail_input("--rfree-fraction must be in [0, 0.5), got " +
                 json_number(opt.genfire.rfree_fraction));
  }
  if (vm.count("size")) {
    if (vm.count("nx") || vm.count("ny") || vm.count("nz"))
      fail_input("give either --size or --nx/--ny/--nz, not both");
    parse_size(vm["size"].as<std::string>(), opt.nx, opt.ny, opt.nz);
  }
  for (const char* key : {"nx", "ny", "nz"}) {
    if (!vm.count(key)) continue;
    const std::int64_t n = vm[key].as<std::int64_t>();
    if (n <= 0) fail_input(std::string("--") + key + " must be positive");
    (key[1] == 'x' ? opt.nx : key[1] == 'y' ? opt.ny : opt.nz) = n;
  }

  opt.device = resolve_recon_device(vm);
  // The input files enter the checkpoint's key by content (below).
  const CheckpointOption cko = checkpoint_option(p, {"tilts", "angles", "support", "initial"});
  const int checkpoint_every = checkpoint_every_option(vm);
  const bool in_parts = !cko.dir.empty() && checkpoint_every > 0 && !opt.accelerate &&
                        (opt.algorithm == Algorithm::resire || opt.algorithm == Algorithm::sirt);
  if (!cko.dir.empty() && !in_parts)
    log_info(
        "--checkpoint: only a plain RESIRE or SIRT solve goes on from its progress (not "
        "FBP, GENFIRE or a solve with momentum, whose state is more than a volume); this "
        "one runs whole");

  const std::string tilts_path = vm["tilts"].as<std::string>();
  const std::string angles_path = vm["angles"].as<std::string>();
  Array3 views = read_tilt_series(tilts_path, vm);
  const double pixel = views.voxel_size.x;
  const AngleFile angles = read_angles(angles_path, static_cast<long>(views.nz()), tilts_path);
  const TiltGeometry geometry = angles.geometry();

  // A volume-sized input (the support, the starting volume), read and checked against the size.
  const auto read_volume_option = [&](const char* key, const char* what, Array3& into) {
    const std::string path = vm[key].as<std::string>();
    into = read_mrc(path);
    const std::int64_t nx = opt.nx > 0 ? opt.nx : views.nx();
    const std::int64_t ny = opt.ny > 0 ? opt.ny : views.ny();
    const std::int64_t nz = opt.nz > 0 ? opt.nz : views.nx();
    // An extended object's support or start may also have the whole solve's size.
    const VolumeExtent e =
        opt.extended ? extended_object_extent(geometry, views.nx(), views.ny(), pixel, nx, ny, nz)
                     : VolumeExtent{nx, ny};
    const bool whole = into.nx() == e.nx && into.ny() == e.ny && into.nz() == nz;
    if ((into.nx() != nx || into.ny() != ny || into.nz() != nz) && !whole)
      fail_file(path, std::string("the ") + what + " is " + std::to_string(into.nx()) + " x " +
                          std::to_string(into.ny()) + " x " + std::to_string(into.nz()) +
                          " but the volume is " + std::to_string(nx) + " x " + std::to_string(ny) +
                          " x " + std::to_string(nz) +
                          (opt.extended ? " (or " + std::to_string(e.nx) + " x " +
                                              std::to_string(e.ny) + " x " + std::to_string(nz) +
                                              ", the extended object's whole solve)"
                                        : std::string()));
    for (float v : into.vector())
      if (!std::isfinite(v)) fail_file(path, std::string("the ") + what + " holds NaN or Inf");
    return path;
  };
  Array3 support, initial;
  std::string support_path, initial_path;
  if (vm.count("support")) {
    support_path = read_volume_option("support", "support", support);
    opt.support = &support;
  }
  if (vm.count("initial")) {
    initial_path = read_volume_option("initial", "starting volume", initial);
    opt.initial = &initial;
  }

  log_info("aet reconstruct: " + std::string(algorithm_name(opt.algorithm)) + ", " +
           std::to_string(views.nz()) + " views of " + std::to_string(views.nx()) + " x " +
           std::to_string(views.ny()) + " px at " + json_number(pixel) + " A, device " +
           opt.device.str());
  std::string settings = cko.settings;
  if (opt.support) settings += "support content = " + detail::array_digest(support) + "\n";
  if (opt.initial) settings += "initial content = " + detail::array_digest(initial) + "\n";
  detail::Checkpoint ck(in_parts ? cko.dir : "", views, angles.views, geometry, settings);
  ck.begin("reconstruct");
  const ReconResult result =
      in_parts
          ? detail::reconstruct_in_parts(views, geometry, opt, ck, checkpoint_every, 0, nullptr,
                                         [&](const std::string& line) {
                                           log_info("aet reconstruct: " + line + " in " + cko.dir);
                                         })
          : reconstruct(views, geometry, opt);
  if (opt.extended)
    log_info("extended object: solved on " + dims_text(result.full_volume) +
             ", wrote the field of view " + dims_text(result.volume));
  const double r1 = result.r1.empty() ? 0.0 : result.r1.back();
  const bool genfire = opt.algorithm == Algorithm::genfire;
  std::string free_text;
  if (!result.r_free.empty()) free_text = ", R_free = " + json_number(result.r_free.back());
  char summary[200];
  std::snprintf(summary, sizeof summary, "R1 = %.4f, R2 = %.4f%s after %s in %.1f s", r1,
                result.r2.empty() ? 0.0 : result.r2.back(), free_text.c_str(),
                opt.algorithm == Algorithm::fbp
                    ? "FBP"
                    : (std::to_string(opt.iterations) + " iterations").c_str(),
                result.seconds);
  log_info(summary);

  ensure_parent_directory(out);
  const std::string label = std::string("aet " AET_VERSION " reconstruct: ") +
                            algorithm_name(opt.algorithm) + ", " + summary;
  std::vector<std::string> labels = {label};
  // Plain RESIRE from zeros is what the network trains on; the label lets aet augment check the
  // recipe. A warm start, a support or momentum make another volume, so they get no label.
  if (opt.algorithm == Algorithm::resire && !opt.accelerate && !opt.initial && !opt.support &&
      !opt.fourier_shift && !opt.extended)
    labels.push_back(nn::recipe_label(nn::ReconRecipe{opt.iterations, opt.step}));
  write_mrc(out, result.volume, MrcKind::volume, labels);

  Json js;
  js["aet_version"] = AET_VERSION;
  js["command_line"] = inv.command_line;
  js["tilts"] = tilts_path;
  js["angles"] = angles_path;
  js["algorithm"] = algorithm_name(opt.algorithm);
  js["iterations"] = opt.algorithm == Algorithm::fbp ? 0 : opt.iterations;
  js["step"] = opt.step;
  js["positivity"] = opt.positivity;
  js["support"] = support_path.empty() ? Json(nullptr) : Json(support_path);
  js["initial"] = initial_path.empty() ? Json(nullptr) : Json(initial_path);
  js["accelerate"] = opt.accelerate;
  js["fourier_shift"] = opt.fourier_shift;
  js["extended"] = opt.extended;
  if (opt.extended)
    js["solved_size"] = {result.full_volume.nx(), result.full_volume.ny(), result.full_volume.nz()};
  js["fbp_filter"] = fbp_filter_name(opt.filter);
  if (genfire) {
    Json g;
    g["oversampling"] = opt.genfire.oversampling;
    g["interpolation_radius"] = opt.genfire.interpolation_radius;
    g["rfree_fraction"] = opt.genfire.rfree_fraction;
    g["resolution_extension"] = opt.genfire.resolution_extension;
    js["genfire"] = std::move(g);
  }
  js["volume_size"] = {result.volume.nx(), result.volume.ny(), result.volume.nz()};
  js["voxel_size_angstrom"] = pixel;
  js["device"] = opt.device.str();
  js["threads"] = num_threads();
  js["mpi_ranks"] = result.mpi_ranks;  // docs/hpc.md: the ranks that shared the solve
  js["mpi_mode"] = result.mpi_mode.empty() ? "none" : result.mpi_mode;
  js["seconds"] = result.seconds;
  js["r1_final"] = r1;
  js["r1"] = result.r1;
  js["r2"] = result.r2;
  if (genfire) {
    js["r_free_final"] = result.r_free.empty() ? Json(nullptr) : Json(result.r_free.back());
    js["r_free"] = result.r_free;
  }
  try {
    write_text_file(meta, json_text(js));
  } catch (...) {
    std::remove(out.c_str());  // the volume just written: the two files appear together or not
    throw;
  }
  log_info("wrote " + out + " (" + std::to_string(result.volume.nx()) + " x " +
           std::to_string(result.volume.ny()) + " x " + std::to_string(result.volume.nz()) +
           ") and " + meta);
  return 0;
}

}  // namespace aet::cli
