// aet refine: an atomic model (extended XYZ) refined against the views it came from, optionally
// with the view geometry. Everything is read and checked before the output directory appears.
#include <chrono>
#include <cmath>
#include <sstream>

#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/xyz.hpp"
#include "aet/refine/model_refinement.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"
#include "cli/options.hpp"

namespace aet::cli {

int run_refine(const Invocation& inv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("tilts,t", po::value<std::string>()->value_name("FILE"), "tilt series (MRC stack)")
    ("angles,a", po::value<std::string>()->value_name("FILE"),
       "geometry of the views: .tlt, Euler text or 5-column geometry with shifts "
       "(aet align's geometry.txt, for its preprocessed.mrc)")
    ("atoms", po::value<std::string>()->value_name("FILE"),
       "atomic model to refine (extended XYZ, e.g. from aet trace)")
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory");
  add_iterations_option(desc, 20, "refinement iterations (each: atoms, width, views)",
                        /*short_n=*/false);
  desc.add_options()
    ("geometry", "also refine each view's shift and Euler angles");
  add_elements_option(desc, nullptr, "A,B",
      "classify the atoms again from their refined intensities, as aet trace does (species "
      "lightest first; a separate weak class is not atoms and is removed); without it the atoms "
      "and species are kept as read");
  add_angle_search_option(desc, 0.0,
      "with --geometry: first search each view's rotation on a grid of +-DEG about its tilt axis "
      "(views recorded further off than the local fit reaches; 0 = local fit only)");
  add_position_prior_option(desc,
      "sd of a Gaussian prior on each atom's position about where it starts, per coordinate, "
      "weighed against the views' noise on the atom's footprint: holds atoms the views say "
      "little about (light atoms at a low dose) near the input (0 = none; docs/refinement.md)");
  add_probe_tail_option(desc, "");
  desc.add_options()
    ("bootstrap", po::value<int>()->default_value(0)->value_name("N"),
       "trust per atom: N refinements of the refined atoms against views drawn with "
       "replacement (seeded by --seed); their spread joins the fit's curvature in sigma_x, "
       "sigma_y, sigma_z (0 = curvature only; docs/refinement.md)")
    ("strict", "more than 10 % weak atoms (intensity within 10 sd of zero) is an error (exit 3, "
       "no output) instead of a warning");
  // clang-format on
  add_pixel_option(desc);
  add_common_options(desc, false);
  const auto synopsis = "--tilts T.mrc --angles A.txt --atoms M.xyz --out DIR [--geometry]";
  const auto about =
      "Refines an atomic model against the measured views by least squares: every atom's "
      "position and integrated intensity, one common projected width, each view's intensity "
      "scale and background and, with --geometry, each view's shift and Euler angles. Each atom "
      "projects to a 2D Gaussian integrated over every pixel. The positions are then free of the "
      "missing-wedge elongation of a reconstruction (docs/refinement.md).\n\nWrites in DIR: "
      "refined.xyz (the atoms, with the per-atom properties model_weight, sigma_x, sigma_y, "
      "sigma_z (Angstrom), weight_snr and weak; with --bootstrap also sigma_curv_* and "
      "sigma_boot_*), geometry.txt (phi theta psi shift_x shift_y of every view), refine.log and "
      "refine.json.";

  const Parsed p = parse_or_help(inv, desc, {synopsis, about, {"tilts", "angles", "atoms", "out"}});
  if (p.help) return 0;
  const auto& vm = p.vm;
  ModelRefineOptions opt;
  opt.iterations = iterations_option(vm);
  opt.refine_shifts = opt.refine_angles = vm.count("geometry") > 0;
  opt.search_range_deg = angle_search_option(vm);
  if (opt.search_range_deg > 0 && !opt.refine_angles)
    fail_input("--angle-search needs --geometry (it searches the views' rotations)");
  opt.position_prior = position_prior_option(vm);
  opt.fit_tail = vm.count("probe-tail") > 0;
  opt.bootstrap = vm["bootstrap"].as<int>();
  if (opt.bootstrap < 0 || opt.bootstrap == 1)
    fail_input("--bootstrap must be 0 (off) or >= 2 replicates");
  opt.seed = seed_or_default(vm);

  const std::vector<std::string> elements = elements_option(vm);
  const std::string tilts_path = vm["tilts"].as<std::string>();
  const std::string angles_path = vm["angles"].as<std::string>();
  const std::string atoms_path = vm["atoms"].as<std::string>();
  const Array3 views = read_tilt_series(tilts_path, vm);
  const AngleFile angles = read_angles(angles_path, static_cast<long>(views.nz()), tilts_path);
  const AtomModel atoms = read_xyz(atoms_path);
  if (atoms.size() == 0) fail_file(atoms_path, "holds no atoms");

  log_info("aet refine: " + std::to_string(atoms.size()) + " atoms against " +
           std::to_string(views.nz()) + " views of " + std::to_string(views.nx()) + " x " +
           std::to_string(views.ny()) + " px" + (opt.refine_angles ? ", with the geometry" : ""));
  OutputDir out(vm["out"].as<std::string>(),
                {"refined.xyz", "geometry.txt", "refine.log", "refine.json"});
  const auto t0 = std::chrono::steady_clock::now();
  ModelRefineResult r = refine_atomic_model(views, angles.geometry(), atoms, opt);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double moved = r.rms_displacement;
  ClassifyResult classes;
  if (!elements.empty()) {
    const std::vector<double> weight = *r.model.find_property("model_weight");
    classes = classify_atoms(r.model, weight, elements);
  }

  // Of the atoms kept (a classification may have removed some).
  const Json trust = trust_json(r.model, opt.bootstrap);
  const std::string weak = trust_warning(r.model);
  if (!weak.empty() && vm.count("strict")) throw QualityError(weak + " (--strict)");
  if (!weak.empty()) log_warning(weak);
  r.model.set_info("refined_against", tilts_path);
  r.model.set_info("aet_version", AET_VERSION);
  r.model.set_info("command_line", inv.command_line);
  write_xyz(out.path("refined.xyz"), r.model);
  write_geometry(
      out.path("geometry.txt"), r.geometry,
      "aet refine: geometry of " + tilts_path + (opt.refine_angles ? " (refined)" : " (as given)"));
  // Streamed, not formatted into a fixed buffer: the command line can be any length.
  std::ostringstream log;
  log << "aet " << AET_VERSION << " refine\ncommand: " << inv.command_line
      << "\natoms: " << atoms.size() << " from " << atoms_path << "\nviews: " << views.nz()
      << "\nR1 " << fmt("%.5f", r.r1.front()) << " -> " << fmt("%.5f", r.r1.back()) << " in "
      << r.r1.size() - 1 << " iterations\nprojected width " << fmt("%.4f", r.sigma) << " A\n";
  if (opt.fit_tail)
    log << "probe tail " << fmt("%.4f", r.tail_amplitude) << " of the core at "
        << fmt("%.3f", r.tail_width) << " A\n";
  log << "RMS atom displacement " << fmt("%.4f", moved) << " A\n";
  if (!elements.empty())
    log << "classes from the refined intensities: " << classes.changed << " species changed, "
        << classes.removed << " atoms removed (" << classes.how << ")\n";
  if (!r.search_change_deg.empty())
    log << angle_search_summary(r.search_change_deg, opt.search_range_deg);
  if (!trust.is_null()) log << trust_line(r.model, opt.bootstrap) << "\n";
  if (!weak.empty()) log << "warning: " << weak << "\n";
  log << "iteration R1\n";
  for (std::size_t i = 0; i < r.r1.size(); ++i) log << i << " " << r.r1[i] << "\n";
  write_text_file(out.path("refine.log"), log.str());
  Json js;
  js["aet_version"] = AET_VERSION;
  js["command_line"] = inv.command_line;
  js["tilts"] = tilts_path;
  js["angles"] = angles_path;
  js["atoms_in"] = atoms_path;
  js["atoms"] = atoms.size();
  js["views"] = views.nz();
  js["refine_geometry"] = opt.refine_angles;
  js["angle_search_deg"] = opt.search_range_deg;
  js["search_change_deg"] = r.search_change_deg;
  Json classes_js;  // null: the atoms were not classified again
  if (!elements.empty()) {
    classes_js["species_changed"] = classes.changed;
    classes_js["atoms_removed"] = classes.removed;
    classes_js["how"] = classes.how;
  }
  js["classes"] = std::move(classes_js);
  js["threads"] = num_threads();
  js["seconds"] = seconds;
  js["sigma_angstrom"] = r.sigma;
  js["probe_tail"] = opt.fit_tail
                         ? Json{{"amplitude", r.tail_amplitude}, {"width_angstrom", r.tail_width}}
                         : Json(nullptr);
  js["rms_displacement_angstrom"] = moved;
  js["position_prior_angstrom"] = opt.position_prior;
  js["r1"] = r.r1;
  js["trust"] = trust;
  js["warnings"] = weak.empty() ? Json::array() : Json::array({weak});
  write_text_file(out.path("refine.json"), json_text(js));
  out.commit();
  log_info("aet refine: R1 " + json_number(r.r1.front()) + " -> " + json_number(r.r1.back()) +
           ", atoms moved " + json_number(moved) + " A RMS, " + json_number(seconds) +
           " s; wrote " + out.final_path(""));
  return 0;
}

}  // namespace aet::cli
