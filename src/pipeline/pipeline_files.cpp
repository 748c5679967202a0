// The pipeline's output files.
#include "aet/core/build_config.hpp"
#include "aet/io/angles.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"
#include "aet/pipeline/pipeline.hpp"

namespace aet {

void write_pipeline_files(const PipelineResult& r, const std::string& dir, const Provenance& prov) {
  const auto path = [&](const char* name) { return dir + "/" + name; };
  const std::string label = "aet " AET_VERSION " pipeline seed " + std::to_string(prov.seed);
  if (r.simulated) {
    write_mrc(path("tilts.mrc"), r.views, MrcKind::stack, {label + " simulated views"});
    if (r.single_axis) {
      std::vector<double> tilts;
      for (const auto& e : r.nominal) tilts.push_back(e.theta);
      write_tilt_angles(path("tilts.tlt"), tilts);
    }
    write_xyz(path("truth.xyz"), *r.truth);
  }
  write_geometry(path("geometry.txt"), r.geometry,
                 r.aligned ? "view geometry refined by aet align" : "view geometry used");
  write_mrc(path("reconstruction.mrc"), r.recon.volume, MrcKind::volume,
            r.recipe ? std::vector<std::string>{label, nn::recipe_label(*r.recipe)}
                     : std::vector<std::string>{label});
  if (r.network_used)
    write_mrc(path("augmented.mrc"), r.augmented, MrcKind::volume,
              {label + " network " + r.network_model});
  if (r.analysis) {
    AtomModel with_analysis = r.atoms();
    add_analysis_properties(with_analysis, *r.analysis);
    write_xyz(path("atoms.xyz"), with_analysis);
    write_text_file(path("analysis.json"), json_text(r.analysis->json()));
  } else {
    write_xyz(path("atoms.xyz"), r.atoms());
  }
  if (r.refined.size() > 0) write_xyz(path("traced.xyz"), r.traced);
  write_text_file(path("metrics.json"), json_text(r.metrics));
  {
    ResultWriter h5(path("result.h5"), prov);
    h5.write_volume("reconstruction", r.recon.volume);
    if (r.network_used) h5.write_volume("augmented", r.augmented);
    h5.write_vector("recon/r1", r.recon.r1);
    h5.write_vector("recon/r2", r.recon.r2);
    h5.write_atoms("atoms", r.atoms());
    if (r.refined.size() > 0) h5.write_atoms("traced", r.traced);
    if (r.truth) h5.write_atoms("truth", *r.truth);
    h5.set_attribute("source", r.source);
    h5.commit();
  }
  write_text_file(path("pipeline.log"), prov.command_line + "\n\n" + r.log +
                                            "\n# effective configuration\n" + prov.config);
}

}  // namespace aet
