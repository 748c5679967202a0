// aet align: preprocessing, coarse alignment and projection matching of a tilt series
// (docs/alignment.md). Writes the refined geometry for the preprocessed stack, the stack
// resampled to the nominal single-axis geometry, an IMOD .xf file, a log and a JSON summary.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/device.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/mrc.hpp"
#include "aet/recon/projector.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "pipeline/checkpoint.hpp"

namespace aet::cli {

int run_align(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("tilts,t", po::value<std::string>()->value_name("FILE"), "tilt series (MRC stack, views along z)")
    ("angles,a", po::value<std::string>()->value_name("FILE"),
       "nominal angles: .tlt/.rawtlt, 3-column Euler or 5-column geometry text (its shifts are ignored)")
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("rounds", po::value<int>()->default_value(5)->value_name("N"), "projection-matching rounds");
  add_iterations_option(desc, 15,
      "accelerated RESIRE iterations per round (the first round, from zero: twice as many; later "
      "rounds continue from the previous volume)", /*short_n=*/true);
  desc.add_options()
    ("refine-angles",
     "also refine per-view Euler angles against an atomic model traced from the aligned "
     "reconstruction (an isolated particle whose atoms are resolved; off by default)")
    ("no-angles", "do not refine per-view angles (the default)");
  add_angle_search_option(desc, 10.0,
      "with --refine-angles: half-range of the grid search of each view's rotation about its tilt "
      "axis before the local fit, for views recorded far off (0 = local fit only)");
  // clang-format on
  add_checkpoint_option(
      desc, "the alignment's progress after every projection-matching round, and its result,");
  add_pixel_option(desc);
  add_common_options(desc);
  add_alignment_options(desc);
  const auto synopsis = "--tilts T.mrc --angles A.tlt --out DIR [options]";
  const auto about =
      "Aligns a tilt series (docs/alignment.md): preprocessing (hot pixels, background, "
      "intensity), coarse alignment (centre of mass or a cross-correlation chain, common-line "
      "tilt axis), then projection matching against RESIRE reconstructions (shifts, tilt-axis "
      "rotation, per-view angles).\n\nWrites in DIR: geometry.txt (refined phi theta psi "
      "shift_x shift_y for preprocessed.mrc, which is the input after preprocessing), "
      "aligned.mrc (views resampled to a shift-free single-axis geometry), aligned_angles.txt "
      "and aligned.tlt (the angles that apply to aligned.mrc), shifts.xf (IMOD transforms), "
      "align.log and align.json.";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"tilts", "angles", "out"}});
  if (p.help) return 0;
  const auto& vm = p.vm;

  AlignOptions opt;
  opt.rounds = vm["rounds"].as<int>();
  if (opt.rounds < 0) fail_input("--rounds must be >= 0");
  opt.recon_iterations = iterations_option(vm);
  opt.refine_angles = vm.count("refine-angles") && !vm.count("no-angles");
  opt.angle_search_deg = angle_search_option(vm);
  read_alignment_options(vm, opt);
  opt.seed = seed_or_default(vm);
  opt.device = resolve_recon_device(vm);
  const CheckpointOption cko = checkpoint_option(p, {"tilts", "angles"});

  const std::string tilts_path = vm["tilts"].as<std::string>();
  const std::string angles_path = vm["angles"].as<std::string>();
  Array3 views = read_tilt_series(tilts_path, vm);
  const double pixel = views.voxel_size.x;
  const AngleFile angles = read_angles(angles_path, static_cast<long>(views.nz()), tilts_path);
  for (std::int64_t k = 0; k < views.nz(); ++k) {
    const float* img = views.slice(k);
    bool nonzero = false;
    for (std::int64_t i = 0; i < views.nx() * views.ny() && !nonzero; ++i) nonzero = img[i] != 0;
    if (!nonzero) fail_file(tilts_path, "view " + std::to_string(k) + " is all zero");
  }

  log_info("aet align: " + std::to_string(views.nz()) + " views of " + std::to_string(views.nx()) +
           " x " + std::to_string(views.ny()) + " px at " + json_number(pixel) + " A, " +
           std::to_string(opt.rounds) + " rounds, device " + opt.device.str());
  OutputDir out(vm["out"].as<std::string>(),
                {"aligned.mrc", "preprocessed.mrc", "geometry.txt", "aligned_angles.txt",
                 "aligned.tlt", "shifts.xf", "align.log", "align.json"});
  const auto t0 = std::chrono::steady_clock::now();
  // With --checkpoint: a finished alignment of the same input and settings is taken whole, the
  // rounds of a stopped one are gone on from.
  detail::Checkpoint ck(cko.dir, views, angles.views, TiltGeometry{}, cko.settings);
  AlignResult r;
  const auto said = [&](const std::string& line) {
    log_info("aet align: " + line + " in " + cko.dir);
  };
  if (detail::checkpointed_alignment(ck, views, angles.views, opt, r, said))
    said("the alignment taken from the checkpoint");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<Euler> residual;
  const Array3 aligned = apply_alignment(r.views, r.geometry, &residual);

  const std::string label = "aet " AET_VERSION " align: " + tilts_path;
  write_mrc(out.path("aligned.mrc"), aligned, MrcKind::stack, {label + " (aligned)"});
  write_mrc(out.path("preprocessed.mrc"), r.views, MrcKind::stack, {label + " (preprocessed)"});
  write_geometry(
      out.path("geometry.txt"), r.geometry,
      "aet align: geometry of preprocessed.mrc (and of the input stack) from " + tilts_path);
  write_euler_angles(out.path("aligned_angles.txt"), residual,
                     "aet align: angles of aligned.mrc (phi theta psi)");
  std::vector<double> tilts;
  for (const auto& e : residual) tilts.push_back(e.theta);
  write_tilt_angles(out.path("aligned.tlt"), tilts);

  // IMOD .xf: x' = A x + D maps a raw pixel position x (pixels, relative to the centre, index
  // n // 2) to the aligned image; A = Rz(-gamma) and D = -A s / pixel (docs/alignment.md).
  std::ostringstream xf;
  for (const auto& g : r.geometry) {
    const double gam = inplane_angle_deg(g) * M_PI / 180.0;
    const double c = std::cos(gam), s = std::sin(gam);
    const double sx = g.shift.x() / pixel, sy = g.shift.y() / pixel;
    const double a11 = c, a12 = s, a21 = -s, a22 = c;
    char line[200];
    std::snprintf(line, sizeof line, "%12.7f %12.7f %12.7f %12.7f %12.3f %12.3f\n", a11, a12, a21,
                  a22, -(a11 * sx + a12 * sy), -(a21 * sx + a22 * sy));
    xf << line;
  }
  write_text_file(out.path("shifts.xf"), xf.str());

  std::ostringstream log;
  Json rounds = Json::array();
  log << "aet " << AET_VERSION << " align\ncommand: " << inv.command_line << "\n"
      << "views: " << views.nz() << " of " << views.nx() << " x " << views.ny() << " px, pixel "
      << pixel << " A\ntilt axis: " << fmt("%.4f", r.tilt_axis_deg) << " deg\n"
      << "R1 first round: " << fmt("%.5f", r.r1_initial) << ", final: " << fmt("%.5f", r.r1_final)
      << "\n";
  if (r.already_aligned)
    log << "aligned already: the half-resolution check found shifts of "
        << fmt("%.3f", r.check_shift_px) << " px RMS and a tilt axis of "
        << fmt("%.3f", r.check_axis_deg) << " deg; no projection matching\n";
  if (r.model_atoms > 0)
    log << "atomic model: " << r.model_atoms << " atoms, model R1 "
        << fmt("%.5f", r.model_r1_initial) << " -> " << fmt("%.5f", r.model_r1_final)
        << (r.angles_rejected ? "; the refined angles fit worse and were not kept" : "") << "\n";
  if (!r.search_change_deg.empty())
    log << angle_search_summary(r.search_change_deg, opt.angle_search_deg);
  log << "round  R1  shift_change_px  angle_change_deg\n";
  for (const auto& rd : r.rounds) {
    log << rd.round << " " << fmt("%.5f", rd.r1) << " " << fmt("%.4f", rd.shift_change_px) << " "
        << fmt("%.4f", rd.angle_change_deg) << "\n";
    Json round;
    round["round"] = rd.round;
    round["r1"] = rd.r1;
    round["shift_change_px"] = rd.shift_change_px;
    round["angle_change_deg"] = rd.angle_change_deg;
    rounds.push_back(std::move(round));
  }
  log << "view  phi theta psi shift_x_A shift_y_A\n";
  for (std::size_t k = 0; k < r.geometry.size(); ++k) {
    const Euler e = r.geometry[k].euler();
    log << k << " " << fmt("%.4f", e.phi) << " " << fmt("%.4f", e.theta) << " "
        << fmt("%.4f", e.psi) << " " << fmt("%.4f", r.geometry[k].shift.x()) << " "
        << fmt("%.4f", r.geometry[k].shift.y()) << "\n";
  }
  write_text_file(out.path("align.log"), log.str());
  Json js;
  js["aet_version"] = AET_VERSION;
  js["command_line"] = inv.command_line;
  js["tilts"] = tilts_path;
  js["angles"] = angles_path;
  js["views"] = views.nz();
  js["pixel_angstrom"] = pixel;
  js["sample"] = sample_name(r.sample);
  js["rounds_requested"] = opt.rounds;
  js["recon_iterations"] = opt.recon_iterations;
  js["refine_shifts"] = opt.refine_shifts;
  js["refine_axis"] = opt.refine_axis;
  js["refine_angles"] = opt.refine_angles;
  js["angle_search_deg"] = opt.angle_search_deg;
  js["coarse"] = opt.coarse;
  js["seed"] = opt.seed;
  js["device"] = opt.device.str();
  js["threads"] = num_threads();
  js["seconds"] = seconds;
  js["tilt_axis_deg"] = r.tilt_axis_deg;
  js["r1_initial"] = r.r1_initial;
  js["r1_final"] = r.r1_final;
  js["already_aligned"] = r.already_aligned;
  js["check_shift_px"] = r.check_shift_px;
  js["check_axis_deg"] = r.check_axis_deg;
  js["model_atoms"] = r.model_atoms;
  js["model_r1_initial"] = r.model_r1_initial;
  js["model_r1_final"] = r.model_r1_final;
  js["angles_rejected"] = r.angles_rejected;
  js["search_change_deg"] = r.search_change_deg;
  js["rounds"] = std::move(rounds);
  write_text_file(out.path("align.json"), json_text(js));
  out.commit();
  log_info("aet align: tilt axis " + fmt("%.3f", r.tilt_axis_deg) + " deg, R1 " +
           fmt("%.4f", r.r1_initial) + " -> " + fmt("%.4f", r.r1_final) + " in " +
           fmt("%.1f", seconds) + " s; wrote " + out.final_path(""));
  return 0;
}

}  // namespace aet::cli
