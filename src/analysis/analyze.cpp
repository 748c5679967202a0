// The analysis stage (docs/analysis.md): lattice fit, strain, surface, order, RDF and facets of
// an atom model, and the strain and facet volumes.
#include "aet/analysis/analyze.hpp"

#include <cmath>
#include <limits>

#include "aet/core/error.hpp"
#include "aet/core/format.hpp"
#include "aet/core/neighbor.hpp"
#include "aet/core/parallel.hpp"

namespace aet {
namespace {

// Grid of `voxel` with voxel n // 2 at the origin, covering every atom plus `margin`.
std::int64_t grid_size(const std::vector<Vec3>& p, double voxel, double margin) {
  double h = 0;
  for (const auto& q : p) h = std::max(h, q.cwiseAbs().maxCoeff());
  return 2 * static_cast<std::int64_t>(std::ceil((h + margin) / voxel)) + 1;
}

void make_volumes(const std::vector<Vec3>& p, const AnalyzeOptions& opt, AnalysisResult& r) {
  const std::int64_t n = grid_size(p, opt.voxel, r.d_nn);
  if (static_cast<double>(n) * n * n > 3e8)
    fail_input("--voxel " + fmt_g(opt.voxel) + " A gives a grid of " + std::to_string(n) +
               "^3 voxels for these atoms; choose a larger voxel");
  const std::int64_t c = n / 2;
  // Voxels within one nearest-neighbour distance of an atom; the nearest atom labels the facets.
  const NeighborSearch grid(p, r.d_nn, NeighborSearch::default_max_cells(p.size()));
  std::vector<Vec3> centres;
  std::vector<std::int64_t> where;
  std::vector<int> label;
  for (std::int64_t z = 0; z < n; ++z)
    for (std::int64_t y = 0; y < n; ++y)
      for (std::int64_t x = 0; x < n; ++x) {
        const Vec3 v = opt.voxel * Vec3(x - c, y - c, z - c);
        double d2 = 0;
        const std::int64_t j = grid.nearest(v, r.d_nn, &d2);
        if (j < 0) continue;
        centres.push_back(v);
        where.push_back((z * n + y) * n + x);
        label.push_back(r.facets.facet_of.empty() ? -1 : r.facets.facet_of[j]);
      }
  const std::vector<Mat3> G =
      displacement_gradient(r.fit.sites, r.displacement, r.fit.on_lattice, opt.sigma, centres);
  r.strain_volumes.assign(6, Array3(n, n, n, 0.0f));
  r.facet_volume = Array3(n, n, n, 0.0f);
  const VoxelSize vs{opt.voxel, opt.voxel, opt.voxel};
  for (auto& a : r.strain_volumes) a.voxel_size = vs;
  r.facet_volume.voxel_size = vs;
  static const int ij[6][2] = {{0, 0}, {1, 1}, {2, 2}, {1, 2}, {0, 2}, {0, 1}};
  for (std::size_t k = 0; k < centres.size(); ++k) {
    r.facet_volume.data()[where[k]] = static_cast<float>(label[k] + 1);
    if (!G[k].allFinite()) continue;
    const Mat3 e = 0.5 * (G[k] + G[k].transpose());
    for (int s = 0; s < 6; ++s)
      r.strain_volumes[s].data()[where[k]] = static_cast<float>(e(ij[s][0], ij[s][1]));
  }
}

}  // namespace

AnalysisResult analyze(const AtomModel& model, const AnalyzeOptions& opt) {
  const auto& p = model.positions;
  if (p.size() < 4)
    fail_input("the analysis needs at least 4 atoms, the model has " + std::to_string(p.size()));
  for (std::size_t i = 0; i < p.size(); ++i)
    if (!p[i].allFinite()) fail_input("atom " + std::to_string(i) + " has a non-finite position");
  auto positive = [](double v, const char* what) {
    if (!(v > 0) || !std::isfinite(v))
      fail_input(std::string(what) + " must be > 0, got " + fmt_g(v));
  };
  positive(opt.sigma, "--sigma");
  positive(opt.voxel, "--voxel");
  positive(opt.rdf_max, "the RDF range");
  positive(opt.rdf_bin, "the RDF bin");
  if (!(opt.a >= 0) || !std::isfinite(opt.a)) fail_input("--a must be >= 0, got " + fmt_g(opt.a));
  if (!(opt.c >= 0) || !std::isfinite(opt.c)) fail_input("--c must be >= 0, got " + fmt_g(opt.c));
  if (!(opt.cutoff >= 0) || !std::isfinite(opt.cutoff))
    fail_input("--cutoff must be >= 0, got " + fmt_g(opt.cutoff));

  AnalysisResult r;
  r.d_nn = median_nearest_distance(p);
  // No element has a nearest-neighbour distance over about 5.3 A (Cs): farther means the atoms
  // are isolated or the positions are not in Angstrom.
  if (!(r.d_nn > 0.5) || r.d_nn > 6.0)
    fail_input(
        "the atoms have no neighbours at atomic distances: the median nearest-neighbour "
        "distance is " +
        fmt_g(r.d_nn) + " A (expected 2-6 A; positions in Angstrom)");
  // The caller reports them (aet analyze on stderr, the pipeline through its log and --strict).
  auto warn = [&](const std::string& w) { r.warnings.push_back(w); };

  r.fit = fit_lattice(p, {opt.lattice, opt.a, opt.c});
  if (r.fit.on_lattice_fraction < 0.9)
    warn("analysis: only " + fmt_g(100 * r.fit.on_lattice_fraction, 3) +
         "% of the atoms lie on the "
         "fitted " +
         std::string(lattice_name(r.fit.lattice.type)) +
         " lattice (within 0.25 "
         "nearest-neighbour distances of a site): several grains, twins or no crystal; strain "
         "is given for the on-lattice atoms only");
  const std::size_t n = p.size();
  r.displacement.resize(n);
  for (std::size_t i = 0; i < n; ++i) r.displacement[i] = p[i] - r.fit.sites[i];
  const std::vector<Mat3> G =
      displacement_gradient(r.fit.sites, r.displacement, r.fit.on_lattice, opt.sigma, r.fit.sites);
  const Mat3 undefined = Mat3::Constant(std::numeric_limits<double>::quiet_NaN());
  r.strain.assign(n, undefined);
  r.rotation.assign(n, undefined);
  for (std::size_t i = 0; i < n; ++i) {
    if (!r.fit.on_lattice[i]) continue;
    r.strain[i] = 0.5 * (G[i] + G[i].transpose());
    r.rotation[i] = 0.5 * (G[i] - G[i].transpose());
  }
  r.cutoff = opt.cutoff > 0 ? opt.cutoff : 1.2 * r.d_nn;
  r.local_strain = local_strain(p, r.fit.sites, r.fit.on_lattice, r.cutoff);
  r.coordination = coordination_numbers(p, r.cutoff);
  r.surface = find_surface_atoms(p, r.coordination, r.d_nn);
  r.q4 = steinhardt_q(p, r.cutoff, 4);
  r.q6 = steinhardt_q(p, r.cutoff, 6);
  r.rdf = radial_distribution(model, r.surface.volume, opt.rdf_max, opt.rdf_bin);
  if (r.fit.on_lattice_fraction >= 0.5) {
    r.facets = find_facets(p, r.surface.is_surface, r.fit.lattice, r.d_nn);
  } else {
    r.facets.facet_of.assign(n, -1);
    r.facets.site_kind.assign(n, 0);
    warn("analysis: no facets: fewer than half of the atoms lie on one lattice");
  }
  if (opt.volumes) make_volumes(p, opt, r);
  return r;
}

}  // namespace aet
