// The analysis stage (docs/analysis.md): lattice fit, strain, surface, order, RDF and facets of
// an atom model, and the strain and facet volumes.
#include "aet/analysis/analyze.hpp"

#include <algorithm>
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

// The lattices atoms sit on: one per grain of a polycrystal (AnalysisResult::grain_fits), else one.
int lattice_count(const AnalysisResult& r) {
  return r.grain_fits.empty() ? 1 : static_cast<int>(r.grain_fits.size());
}

// The atoms on lattice g: on the lattice, and (polycrystal) with their site on grain g's.
std::vector<char> on_lattice_of(const AnalysisResult& r, int g) {
  std::vector<char> use = r.fit.on_lattice;
  if (!r.grain_fits.empty())
    for (std::size_t i = 0; i < use.size(); ++i) use[i] = use[i] && r.lattice_grain[i] == g;
  return use;
}

// A binary model whose fcc lattice holds its species this ordered is L1_0 (unless a lattice was
// given): a random alloy stays about 0, an ordered one that has half its atoms swapped at random
// still reaches 0.5.
constexpr double kL10Order = 0.5;

// The lattice of one crystal (or one grain's atoms) of type `type` (nullopt: the best of fcc, bcc
// and hcp); when the type was not given and comes out fcc for a binary model, L1_0 instead if its
// species are ordered on it and it holds nearly as many atoms.
LatticeFit fit_crystal(const std::vector<Vec3>& p, const std::vector<int>& species,
                       std::optional<LatticeType> type, bool given, const AnalyzeOptions& opt) {
  LatticeFit f = fit_lattice(p, {type, opt.a, opt.c, species});
  if (given || species.empty() || f.lattice.type != LatticeType::fcc) return f;
  std::size_t kinds[2] = {0, 0};
  for (int s : species) ++kinds[s];
  if (kinds[0] == 0 || kinds[1] == 0) return f;  // a grain of one species
  LatticeFit t = fit_lattice(p, {LatticeType::l10, opt.a, opt.c, species});
  f.tried.emplace_back("l10", t.on_lattice_fraction);
  if (!(t.order_parameter >= kL10Order) || t.on_lattice_fraction < f.on_lattice_fraction - 0.02)
    return f;
  t.tried = f.tried;
  return t;
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
  std::vector<int> label, lattice;
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
        lattice.push_back(r.grain_fits.empty() ? 0 : r.lattice_grain[j]);
      }
  // The gradient of each voxel within the lattice of its nearest atom (one per grain).
  std::vector<Mat3> G(centres.size(), Mat3::Constant(std::numeric_limits<double>::quiet_NaN()));
  for (int g = 0; g < lattice_count(r); ++g) {
    const std::vector<char> use = on_lattice_of(r, g);
    std::vector<Vec3> at;
    std::vector<std::size_t> which;
    for (std::size_t k = 0; k < centres.size(); ++k)
      if (lattice[k] == g) {
        at.push_back(centres[k]);
        which.push_back(k);
      }
    if (at.empty()) continue;
    const std::vector<Mat3> Gg =
        displacement_gradient(r.fit.sites, r.displacement, use, opt.sigma, at);
    for (std::size_t k = 0; k < which.size(); ++k) G[which[k]] = Gg[k];
  }
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

// A lattice per grain and every atom's site on it: each atom belongs to its grain or, outside
// any (boundary, surface and disordered atoms), to the grain of its nearest grain atom within
// 3 d_nn; each grain's lattice is fitted to all the atoms it holds (the twin plane's atoms lie on
// both lattices; more bonds fix the lattice constant better). r.fit becomes the largest grain's
// lattice with the sites over all atoms.
void fit_grains(const std::vector<Vec3>& p, const std::vector<int>& species,
                const AnalyzeOptions& opt, AnalysisResult& r) {
  const std::size_t n = p.size();
  std::vector<Vec3> in_grain;
  std::vector<int> grain_of;
  for (std::size_t i = 0; i < n; ++i)
    if (r.grains.of_atom[i] >= 0) {
      in_grain.push_back(p[i]);
      grain_of.push_back(r.grains.of_atom[i]);
    }
  const NeighborSearch grid(in_grain, 3 * r.d_nn, NeighborSearch::default_max_cells(n));
  r.lattice_grain.assign(n, -1);
  std::vector<std::vector<Vec3>> held(r.grains.grains.size());
  std::vector<std::vector<int>> held_species(r.grains.grains.size());
  for (std::size_t i = 0; i < n; ++i) {
    int g = r.grains.of_atom[i];
    if (g < 0) {
      const std::int64_t j = grid.nearest(p[i], 3 * r.d_nn);
      if (j < 0) continue;
      g = grain_of[static_cast<std::size_t>(j)];
    }
    r.lattice_grain[i] = g;
    held[static_cast<std::size_t>(g)].push_back(p[i]);
    if (!species.empty()) held_species[static_cast<std::size_t>(g)].push_back(species[i]);
  }
  for (std::size_t g = 0; g < r.grains.grains.size(); ++g)
    r.grain_fits.push_back(fit_crystal(held[g], held_species[g],
                                       opt.lattice ? opt.lattice : r.grains.grains[g].type,
                                       opt.lattice.has_value(), opt));
  LatticeFit all = r.grain_fits.front();
  all.sites = p;
  all.on_lattice.assign(n, 0);
  double s2 = 0;
  std::size_t on = 0, placed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int g = r.lattice_grain[i];
    if (g < 0) continue;
    const CrystalLattice& L = r.grain_fits[static_cast<std::size_t>(g)].lattice;
    all.sites[i] = L.nearest_site(p[i]);
    const double d = (p[i] - all.sites[i]).norm();
    s2 += d * d;
    ++placed;
    if (d < 0.25 * L.nearest_neighbour_distance()) {
      all.on_lattice[i] = 1;
      ++on;
    }
  }
  all.on_lattice_fraction = static_cast<double>(on) / static_cast<double>(n);
  all.rms_residual = placed ? std::sqrt(s2 / static_cast<double>(placed)) : 0.0;
  r.fit = std::move(all);
}

// The facets of each grain's surface atoms in the grain's own lattice, merged: largest first,
// family shares over all of them. Surface atoms of no grain are "other" surface sites.
FacetResult facets_per_grain(const std::vector<Vec3>& p, const AnalysisResult& r) {
  const std::size_t n = p.size();
  FacetResult out;
  out.facet_of.assign(n, -1);
  out.site_kind.assign(n, 0);
  std::vector<std::pair<Facet, int>> facets;  // facet, its index before sorting
  for (std::size_t g = 0; g < r.grain_fits.size(); ++g) {
    std::vector<char> mask(n, 0);
    for (std::size_t i = 0; i < n; ++i)
      mask[i] = r.surface.is_surface[i] && r.lattice_grain[i] == static_cast<int>(g);
    const FacetResult f = find_facets(p, mask, r.grain_fits[g].lattice, r.d_nn);
    const int offset = static_cast<int>(facets.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      out.site_kind[i] = f.site_kind[i];
      if (f.facet_of[i] >= 0) out.facet_of[i] = offset + f.facet_of[i];
    }
    for (const Facet& x : f.facets) facets.emplace_back(x, static_cast<int>(facets.size()));
  }
  std::stable_sort(facets.begin(), facets.end(),
                   [](const auto& a, const auto& b) { return a.first.atoms > b.first.atoms; });
  std::vector<int> new_index(facets.size());
  double area = 0, atoms = 0;
  for (std::size_t k = 0; k < facets.size(); ++k) {
    new_index[static_cast<std::size_t>(facets[k].second)] = static_cast<int>(k);
    out.facets.push_back(facets[k].first);
    area += facets[k].first.area;
    atoms += static_cast<double>(facets[k].first.atoms);
  }
  for (const Facet& x : out.facets) {
    if (area > 0) out.area_fraction[x.family] += x.area / area;
    if (atoms > 0) out.atom_fraction[x.family] += static_cast<double>(x.atoms) / atoms;
  }
  std::size_t surface = 0, on = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (out.facet_of[i] >= 0)
      out.facet_of[i] = new_index[static_cast<std::size_t>(out.facet_of[i])];
    if (!r.surface.is_surface[i]) continue;
    ++surface;
    on += out.facet_of[i] >= 0;
    if (r.lattice_grain[i] < 0) out.site_kind[i] = 3;
  }
  out.surface_on_facets = surface ? static_cast<double>(on) / static_cast<double>(surface) : 0.0;
  return out;
}

// The coordination cutoff: midway between the shells that make the bulk coordination and the
// next, on the first-shell distance of the crystalline atoms (their mean bond to the 12, for bcc
// 8, nearest neighbours; the single nearest neighbour is biased short by thermal jitter): fcc and
// hcp 1.2 (shells at 1 and 1.41), bcc 1.39 (1.15 and 1.63, so its 14 stay together under
// jitter). Without crystalline atoms 1.2 times the median nearest-neighbour distance.
double default_cutoff(const std::vector<Vec3>& p, const LocalStructures& ls, double d_nn) {
  std::vector<double> shell;
  std::size_t bcc = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const auto t = lattice_of(ls.type[i]);
    if (!t) continue;
    const std::size_t first = *t == LatticeType::bcc ? 8 : 12;
    bcc += *t == LatticeType::bcc;
    double d = 0;
    for (std::size_t k = 0; k < first; ++k) d += (p[ls.neighbours[i][k]] - p[i]).norm();
    shell.push_back(d / static_cast<double>(first));
  }
  if (shell.empty()) return 1.2 * d_nn;
  std::nth_element(shell.begin(), shell.begin() + static_cast<std::ptrdiff_t>(shell.size() / 2),
                   shell.end());
  const double d1 = shell[shell.size() / 2];
  return (2 * bcc > shell.size() ? 1.39 : 1.2) * d1;
}

}  // namespace

const char* sample_structure_name(SampleStructure s) {
  switch (s) {
    case SampleStructure::polycrystal:
      return "polycrystal";
    case SampleStructure::amorphous:
      return "amorphous";
    case SampleStructure::crystal:
      break;
  }
  return "crystal";
}

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

  const std::size_t n = p.size();
  std::string first, second;
  const std::vector<int> species = binary_species(model, &first, &second);
  r.local = local_structures(p);
  r.grains = find_grains(p, r.local, r.d_nn);
  r.cutoff = opt.cutoff > 0 ? opt.cutoff : default_cutoff(p, r.local, r.d_nn);
  r.coordination = coordination_numbers(p, r.cutoff);
  r.surface = find_surface_atoms(p, r.coordination, r.d_nn);
  // Interior: neither a surface atom nor a neighbour of one (the layer beneath the surface lacks
  // neighbours too and is in no crystalline order).
  std::vector<char> outer = r.surface.is_surface;
  {
    const NeighborSearch grid(p, r.cutoff, NeighborSearch::default_max_cells(n));
    for (std::size_t i = 0; i < n; ++i)
      if (r.surface.is_surface[i])
        grid.for_each(p[i], r.cutoff, [&](std::size_t j, double) { outer[j] = 1; });
  }
  std::size_t interior = 0, crystalline = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!outer[i]) {
      ++interior;
      crystalline += lattice_of(r.local.type[i]).has_value();
    }
  if (interior == 0)
    for (std::size_t i = 0; i < n; ++i) crystalline += lattice_of(r.local.type[i]).has_value();
  r.crystalline_fraction =
      static_cast<double>(crystalline) / static_cast<double>(interior > 0 ? interior : n);
  r.kind = r.crystalline_fraction < kCrystallineFraction ? SampleStructure::amorphous
           : r.grains.grains.size() >= 2                 ? SampleStructure::polycrystal
                                                         : SampleStructure::crystal;
  // An explicit --lattice is fitted whatever the local structure says.
  const bool amorphous = r.kind == SampleStructure::amorphous && !opt.lattice;
  if (amorphous) {
    r.lattice_fitted = false;
    r.fit.sites = p;
    r.fit.on_lattice.assign(n, 0);
  } else if (r.kind == SampleStructure::polycrystal) {
    fit_grains(p, species, opt, r);
  } else {
    r.fit = fit_crystal(p, species, opt.lattice, opt.lattice.has_value(), opt);
  }
  if (!amorphous && r.fit.on_lattice_fraction < 0.9)
    warn("analysis: only " + fmt_g(100 * r.fit.on_lattice_fraction, 3) + "% of the atoms lie on " +
         (r.kind == SampleStructure::polycrystal ? "their grain's" : "the fitted") + " " +
         std::string(lattice_name(r.fit.lattice.type)) +
         " lattice (within 0.25 nearest-neighbour distances of a site): grains too small to "
         "fit, a disordered region or no crystal; strain is given for the on-lattice atoms "
         "only");
  r.displacement.resize(n);
  for (std::size_t i = 0; i < n; ++i) r.displacement[i] = p[i] - r.fit.sites[i];
  const Mat3 undefined = Mat3::Constant(std::numeric_limits<double>::quiet_NaN());
  r.strain.assign(n, undefined);
  r.rotation.assign(n, undefined);
  r.local_strain.assign(n, undefined);
  // Strain within each lattice (one for a crystal, one per grain): across a grain boundary the
  // displacement jumps and the ideal bond is undefined.
  const int lattices = lattice_count(r);
  for (int g = 0; g < lattices; ++g) {
    const std::vector<char> use = on_lattice_of(r, g);
    std::vector<std::size_t> mine;
    std::vector<Vec3> at;
    for (std::size_t i = 0; i < n; ++i)
      if (use[i]) {
        mine.push_back(i);
        at.push_back(r.fit.sites[i]);
      }
    if (mine.empty()) continue;
    const std::vector<Mat3> G =
        displacement_gradient(r.fit.sites, r.displacement, use, opt.sigma, at);
    const std::vector<Mat3> e = local_strain(p, r.fit.sites, use, r.cutoff);
    for (std::size_t k = 0; k < mine.size(); ++k) {
      r.strain[mine[k]] = 0.5 * (G[k] + G[k].transpose());
      r.rotation[mine[k]] = 0.5 * (G[k] - G[k].transpose());
      r.local_strain[mine[k]] = e[mine[k]];
    }
  }
  // A binary alloy on fcc or L1_0 lattices: its chemical order, each atom against its lattice.
  if (!species.empty() && !amorphous) {
    std::vector<const CrystalLattice*> lattice_of(n, nullptr);
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
      const int g = r.grain_fits.empty() ? 0 : r.lattice_grain[i];
      if (g < 0) continue;
      const CrystalLattice& L =
          r.grain_fits.empty() ? r.fit.lattice : r.grain_fits[static_cast<std::size_t>(g)].lattice;
      if (L.type != LatticeType::fcc && L.type != LatticeType::l10) continue;
      lattice_of[i] = &L;
      any = true;
    }
    if (any) {
      r.chemical = chemical_order(p, species, r.fit.sites, r.fit.on_lattice, lattice_of, r.cutoff);
      r.chemical.first = first;
      r.chemical.second = second;
    }
  }
  r.short_range_order = warren_cowley(model, r.cutoff);
  r.q4 = steinhardt_q(p, r.cutoff, 4);
  r.q6 = steinhardt_q(p, r.cutoff, 6);
  r.rdf = radial_distribution(model, r.surface.volume, opt.rdf_max, opt.rdf_bin);
  if (amorphous) {
    // No lattice, so no facets: not a degraded result.
    r.facets.facet_of.assign(n, -1);
    r.facets.site_kind.assign(n, 0);
  } else if (lattices > 1) {
    r.facets = facets_per_grain(p, r);
  } else if (r.fit.on_lattice_fraction >= 0.5) {
    r.facets = find_facets(p, r.surface.is_surface, r.fit.lattice, r.d_nn);
  } else {
    r.facets.facet_of.assign(n, -1);
    r.facets.site_kind.assign(n, 0);
    warn("analysis: no facets: fewer than half of the atoms lie on one lattice");
  }
  if (opt.volumes && r.lattice_fitted) make_volumes(p, opt, r);
  return r;
}

}  // namespace aet
