// aet refine: an atomic model (extended XYZ) refined against the views it came from, optionally
// with the view geometry. Everything is read and checked before the output directory appears.
#include <chrono>
#include <cmath>
#include <sstream>

#include "aet/align/model_refinement.hpp"
#include "aet/core/build_config.hpp"
#include "aet/core/error.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/xyz.hpp"
#include "aet/trace/trace.hpp"
#include "cli/cli.hpp"

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
    ("out,o", po::value<std::string>()->value_name("DIR"), "output directory")
    ("iterations", po::value<int>()->default_value(20)->value_name("N"),
       "refinement iterations (each: atoms, width, views)")
    ("geometry", "also refine each view's shift and Euler angles")
    ("elements", po::value<std::string>()->value_name("A,B"),
       "classify the atoms again from their refined intensities, as aet trace does (species "
       "lightest first; a separate weak class is not atoms and is removed); without it the atoms "
       "and species are kept as read")
    ("angle-search", po::value<double>()->default_value(0.0)->value_name("DEG"),
       "with --geometry: first search each view's rotation on a grid of +-DEG about its tilt axis "
       "(views recorded further off than the local fit reaches; 0 = local fit only)")
    ("position-prior", po::value<double>()->default_value(0.05, "0.05")->value_name("A"),
       "sd of a Gaussian prior on each atom's position about where it starts, per coordinate, "
       "weighed against the views' noise on the atom's footprint: holds atoms the views say "
       "little about (light atoms at a low dose) near the input (0 = none; docs/refinement.md)")
    ("pixel", po::value<double>()->value_name("A"),
       "pixel size in Angstrom (default: from the MRC header)");
  // clang-format on
  add_common_options(desc, false);
  const auto synopsis = "--tilts T.mrc --angles A.txt --atoms M.xyz --out DIR [--geometry]";
  const auto about =
      "Refines an atomic model against the measured views by least squares: every atom's "
      "position and integrated intensity, one common projected width, each view's intensity "
      "scale and background and, with --geometry, each view's shift and Euler angles. Each atom "
      "projects to a 2D Gaussian integrated over every pixel. The positions are then free of the "
      "missing-wedge elongation of a reconstruction (docs/refinement.md).\n\nWrites in DIR: "
      "refined.xyz (the atoms, with the per-atom property model_weight), geometry.txt (phi theta "
      "psi shift_x shift_y of every view), refine.log and refine.json.";

  Parsed p = parse(inv, desc);
  if (p.help) {
    print_usage(inv, synopsis, about, desc);
    return 0;
  }
  const auto& vm = p.vm;
  for (const char* key : {"tilts", "angles", "atoms", "out"})
    if (!vm.count(key)) fail_input(std::string("--") + key + " is required");
  ModelRefineOptions opt;
  opt.iterations = vm["iterations"].as<int>();
  if (opt.iterations < 1) fail_input("--iterations must be >= 1");
  opt.refine_shifts = opt.refine_angles = vm.count("geometry") > 0;
  opt.search_range_deg = vm["angle-search"].as<double>();
  if (!(opt.search_range_deg >= 0 && opt.search_range_deg <= 45))
    fail_input("--angle-search must be in [0, 45] degrees");
  if (opt.search_range_deg > 0 && !opt.refine_angles)
    fail_input("--angle-search needs --geometry (it searches the views' rotations)");
  opt.position_prior = vm["position-prior"].as<double>();
  if (!(opt.position_prior >= 0) || !std::isfinite(opt.position_prior))
    fail_input("--position-prior must be >= 0 Angstrom");

  std::vector<std::string> elements;
  if (vm.count("elements")) elements = parse_elements(vm["elements"].as<std::string>());
  const std::string tilts_path = vm["tilts"].as<std::string>();
  const std::string angles_path = vm["angles"].as<std::string>();
  const std::string atoms_path = vm["atoms"].as<std::string>();
  const Array3 views = read_tilt_series(tilts_path, vm);
  const AngleFile angles = read_angles(angles_path, static_cast<long>(views.nz()));
  const AtomModel atoms = read_xyz(atoms_path);
  if (atoms.size() == 0) fail_file(atoms_path, "holds no atoms");

  log_info("aet refine: " + std::to_string(atoms.size()) + " atoms against " +
           std::to_string(views.nz()) + " views of " + std::to_string(views.nx()) + " x " +
           std::to_string(views.ny()) + " px" + (opt.refine_angles ? ", with the geometry" : ""));
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

  OutputDir out(vm["out"].as<std::string>());
  r.model.set_info("refined_against", tilts_path);
  r.model.set_info("aet_version", AET_VERSION);
  r.model.set_info("command_line", inv.command_line);
  write_xyz(out.path("refined.xyz"), r.model);
  write_geometry(
      out.path("geometry.txt"), r.geometry,
      "aet refine: geometry of " + tilts_path + (opt.refine_angles ? " (refined)" : " (as given)"));
  std::ostringstream log;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "aet %s refine\ncommand: %s\natoms: %zu from %s\nviews: %lld\nR1 %.5f -> %.5f in "
                "%zu iterations\nprojected width %.4f A\nRMS atom displacement %.4f A\n",
                AET_VERSION, inv.command_line.c_str(), atoms.size(), atoms_path.c_str(),
                static_cast<long long>(views.nz()), r.r1.front(), r.r1.back(), r.r1.size() - 1,
                r.sigma, moved);
  log << buf;
  if (!elements.empty())
    log << "classes from the refined intensities: " << classes.changed << " species changed, "
        << classes.removed << " atoms removed (" << classes.how << ")\n";
  if (!r.search_change_deg.empty())
    log << angle_search_summary(r.search_change_deg, opt.search_range_deg);
  log << "iteration R1\n";
  for (std::size_t i = 0; i < r.r1.size(); ++i) log << i << " " << r.r1[i] << "\n";
  write_text_file(out.path("refine.log"), log.str());
  std::ostringstream js;
  js << "{\n  \"aet_version\": " << json_escape(AET_VERSION)
     << ",\n  \"command_line\": " << json_escape(inv.command_line)
     << ",\n  \"tilts\": " << json_escape(tilts_path)
     << ",\n  \"angles\": " << json_escape(angles_path)
     << ",\n  \"atoms_in\": " << json_escape(atoms_path) << ",\n  \"atoms\": " << atoms.size()
     << ",\n  \"views\": " << views.nz()
     << ",\n  \"refine_geometry\": " << (opt.refine_angles ? "true" : "false")
     << ",\n  \"angle_search_deg\": " << json_number(opt.search_range_deg)
     << ",\n  \"search_change_deg\": " << json_array(r.search_change_deg) << ",\n  \"classes\": "
     << (elements.empty() ? std::string("null")
                          : "{\"species_changed\": " + std::to_string(classes.changed) +
                                ", \"atoms_removed\": " + std::to_string(classes.removed) +
                                ", \"how\": " + json_escape(classes.how) + "}")
     << ",\n  \"threads\": " << num_threads() << ",\n  \"seconds\": " << json_number(seconds)
     << ",\n  \"sigma_angstrom\": " << json_number(r.sigma)
     << ",\n  \"rms_displacement_angstrom\": " << json_number(moved)
     << ",\n  \"position_prior_angstrom\": " << json_number(opt.position_prior)
     << ",\n  \"r1\": " << json_array(r.r1) << "\n}\n";
  write_text_file(out.path("refine.json"), js.str());
  out.commit();
  log_info("aet refine: R1 " + json_number(r.r1.front()) + " -> " + json_number(r.r1.back()) +
           ", atoms moved " + json_number(moved) + " A RMS, " + json_number(seconds) +
           " s; wrote " + out.final_path(""));
  return 0;
}

}  // namespace aet::cli
