// The analysis stage's outputs (docs/analysis.md): analysis.json, the per-atom XYZ columns and
// the strain and facet volumes.
#include <cmath>
#include <map>

#include "aet/analysis/analyze.hpp"
#include "aet/core/format.hpp"
#include "aet/io/atomic_file.hpp"
#include "aet/io/mrc.hpp"
#include "aet/io/xyz.hpp"

namespace aet {
namespace {

constexpr double kDeg = 180.0 / 3.14159265358979323846;
const int kVoigt[6][2] = {{0, 0}, {1, 1}, {2, 2}, {1, 2}, {0, 2}, {0, 1}};

Vec3 axial_deg(const Mat3& w) {
  return kDeg * Vec3(w(2, 1), w(0, 2), w(1, 0));
}

Json matrix_json(const Mat3& m) {
  Json j = Json::array();
  for (int r = 0; r < 3; ++r) j.push_back({m(r, 0), m(r, 1), m(r, 2)});
  return j;
}

// Mean and sd of each strain component over the atoms where `pick` holds and the strain is
// defined.
template <class Pick>
Json strain_stats(const std::vector<Mat3>& e, Pick pick) {
  double s[6] = {0}, s2[6] = {0};
  std::size_t k = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (!pick(i) || !e[i].allFinite()) continue;
    ++k;
    for (int c = 0; c < 6; ++c) {
      const double v = e[i](kVoigt[c][0], kVoigt[c][1]);
      s[c] += v;
      s2[c] += v * v;
    }
  }
  Json j;
  j["atoms"] = k;
  Json mean, sd;
  for (int c = 0; c < 6; ++c) {
    const double m = k ? s[c] / k : NAN;
    mean[strain_component_names()[c]] = m;
    sd[strain_component_names()[c]] = k > 1 ? std::sqrt(std::max(0.0, s2[c] / k - m * m)) : NAN;
  }
  j["mean"] = mean;
  j["sd"] = sd;
  return j;
}

}  // namespace

Json AnalysisResult::json() const {
  Json j;
  const std::size_t n = displacement.size();
  j["atoms"] = n;
  const CrystalLattice& L = fit.lattice;
  Json lat;
  lat["type"] = lattice_name(L.type);
  lat["a"] = L.a;
  if (L.type == LatticeType::hcp || L.type == LatticeType::l10) {
    lat["c"] = L.c;
    lat["c_over_a"] = L.c / L.a;
  }
  if (L.type == LatticeType::l10) lat["order_parameter"] = fit.order_parameter;
  lat["orientation"] = matrix_json(L.orientation);
  lat["origin"] = {L.origin.x(), L.origin.y(), L.origin.z()};
  lat["rms_residual"] = fit.rms_residual;
  lat["on_lattice_fraction"] = fit.on_lattice_fraction;
  lat["bonds_used"] = fit.bonds_used;
  Json tried;
  for (const auto& [name, f] : fit.tried) tried[name] = f;
  lat["tried_on_lattice_fraction"] = tried;
  j["lattice"] = lattice_fitted ? lat : Json(nullptr);
  // What the local structure says: the sample's kind, each structure's share, the grains.
  Json sj_struct;
  sj_struct["kind"] = sample_structure_name(kind);
  sj_struct["crystalline_fraction"] = crystalline_fraction;
  std::map<std::string, std::size_t> counts;
  for (const LocalStructure t : local.type) ++counts[local_structure_name(t)];
  Json fractions;
  for (const LocalStructure t : {LocalStructure::fcc, LocalStructure::hcp, LocalStructure::bcc,
                                 LocalStructure::icosahedral, LocalStructure::other})
    fractions[local_structure_name(t)] =
        n ? static_cast<double>(counts[local_structure_name(t)]) / static_cast<double>(n) : 0.0;
  sj_struct["fractions"] = fractions;
  sj_struct["planar_defect_atoms"] = grains.planar_defect_atoms;
  Json gj = Json::array();
  for (std::size_t g = 0; g < grains.grains.size(); ++g) {
    const Grain& x = grains.grains[g];
    Json e{{"id", g},
           {"type", lattice_name(x.type)},
           {"atoms", x.atoms.size()},
           {"orientation", matrix_json(x.orientation)},
           {"misorientation_deg",
            x.type == grains.grains.front().type
                ? Json(misorientation_deg(x.type, grains.grains.front().orientation, x.orientation))
                : Json(nullptr)}};
    if (g < grain_fits.size()) {
      const LatticeFit& f = grain_fits[g];
      e["a"] = f.lattice.a;
      if (f.lattice.type == LatticeType::hcp || f.lattice.type == LatticeType::l10)
        e["c"] = f.lattice.c;
      e["on_lattice_fraction"] = f.on_lattice_fraction;
      e["rms_residual"] = f.rms_residual;
    }
    gj.push_back(e);
  }
  sj_struct["grains"] = gj;
  j["structure"] = sj_struct;
  j["nearest_neighbour_distance"] = d_nn;
  j["coordination_cutoff"] = cutoff;

  const auto& surf = surface.is_surface;
  auto interior = [&](std::size_t i) { return fit.on_lattice[i] && !surf[i]; };
  auto at_surface = [&](std::size_t i) { return fit.on_lattice[i] && surf[i]; };
  Json st;
  st["interior"] = strain_stats(strain, interior);
  st["surface"] = strain_stats(strain, at_surface);
  st["local_interior"] = strain_stats(local_strain, interior);
  st["local_surface"] = strain_stats(local_strain, at_surface);
  Vec3 rot = Vec3::Zero();
  std::size_t nr = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (interior(i) && rotation[i].allFinite()) {
      rot += axial_deg(rotation[i]);
      ++nr;
    }
  if (nr) rot /= static_cast<double>(nr);
  st["interior_mean_rotation_deg"] = {rot.x(), rot.y(), rot.z()};
  j["strain"] = st;

  Json sj;
  std::size_t ns = 0, nexp = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ns += surf[i];
    nexp += surface.exposed[i];
  }
  sj["atoms"] = ns;
  sj["coordination_threshold"] = surface.threshold;
  sj["enclosed_volume"] = surface.volume;
  j["surface"] = sj;
  std::map<int, std::size_t> hist;
  double mean_c = 0;
  for (int c : coordination) {
    ++hist[c];
    mean_c += c;
  }
  Json cj;
  cj["mean"] = n ? mean_c / n : NAN;
  Json h;
  for (const auto& [c, k] : hist) h[std::to_string(c)] = k;
  cj["histogram"] = h;
  j["coordination"] = cj;
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    std::size_t k = 0;
    for (double x : v)
      if (std::isfinite(x)) {
        s += x;
        ++k;
      }
    return k ? s / k : NAN;
  };
  j["order"] = {{"q4_mean", mean_of(q4)}, {"q6_mean", mean_of(q6)}};
  if (chemical.present()) {
    const ChemicalOrder& c = chemical;
    const double total = static_cast<double>(c.count_first + c.count_second);
    j["chemical_order"] = {
        {"species", {c.first, c.second}},
        {"composition",
         {static_cast<double>(c.count_first) / total, static_cast<double>(c.count_second) / total}},
        {"order_parameter", c.order_parameter},
        {"antisites", c.antisites},
        {"local_order_mean", mean_of(c.local_order)},
        {"local_order_atoms", c.defined},
        {"ordered_fraction", c.ordered_fraction},
        {"ordered_threshold", ChemicalOrder::kOrdered},
        {"variant_fraction",
         {{"x", c.variant_fraction[0]},
          {"y", c.variant_fraction[1]},
          {"z", c.variant_fraction[2]}}}};
  } else {
    j["chemical_order"] = nullptr;
  }
  if (short_range_order.empty()) {
    j["short_range_order"] = nullptr;
  } else {
    Json sro;
    for (const auto& [pair, alpha] : short_range_order) sro[pair] = alpha;
    j["short_range_order"] = sro;
  }

  Json fj;
  fj["count"] = facets.facets.size();
  fj["surface_on_facets"] = facets.surface_on_facets;
  std::size_t edges = 0, corners = 0;
  for (int k : facets.site_kind) {
    edges += k == 1;
    corners += k == 2;
  }
  fj["edge_atoms"] = edges;
  fj["corner_atoms"] = corners;
  Json af, atf;
  for (const auto& [k, v] : facets.area_fraction) af[k] = v;
  for (const auto& [k, v] : facets.atom_fraction) atf[k] = v;
  fj["area_fraction"] = af;
  fj["atom_fraction"] = atf;
  Json table = Json::array();
  for (std::size_t f = 0; f < facets.facets.size(); ++f) {
    const Facet& x = facets.facets[f];
    table.push_back({{"id", f},
                     {"plane", x.plane},
                     {"family", x.family},
                     {"atoms", x.atoms},
                     {"area", x.area},
                     {"normal", {x.normal.x(), x.normal.y(), x.normal.z()}},
                     {"angle_deg", x.angle_deg},
                     {"centre", {x.centre.x(), x.centre.y(), x.centre.z()}}});
  }
  fj["table"] = table;
  j["facets"] = fj;

  Json rj;
  rj["bin"] = rdf.bin;
  rj["r_max"] = rdf.r_max;
  rj["density"] = rdf.density;
  rj["r"] = rdf.r;
  rj["g"] = rdf.g;
  Json pj;
  for (const auto& [k, v] : rdf.partial) pj[k] = v;
  rj["partial"] = pj;
  j["rdf"] = rj;
  j["warnings"] = warnings;
  return j;
}

void add_analysis_properties(AtomModel& m, const AnalysisResult& r) {
  const std::size_t n = m.size();
  auto finite = [](double v) { return std::isfinite(v) ? v : 0.0; };
  auto tensor = [&](const std::string& prefix, const std::vector<Mat3>& e) {
    for (int c = 0; c < 6; ++c) {
      auto& col = m.property(prefix + strain_component_names()[c]);
      for (std::size_t i = 0; i < n; ++i) col[i] = finite(e[i](kVoigt[c][0], kVoigt[c][1]));
    }
  };
  // XYZ columns must be finite: undefined values are 0 with a validity column beside them.
  tensor("strain_", r.strain);
  auto& valid = m.property("strain_valid");
  for (std::size_t i = 0; i < n; ++i) valid[i] = r.strain[i].allFinite();
  for (int a = 0; a < 3; ++a) {
    auto& col = m.property(std::string("rotation_") + "xyz"[a]);
    for (std::size_t i = 0; i < n; ++i) col[i] = finite(axial_deg(r.rotation[i])[a]);
  }
  tensor("local_strain_", r.local_strain);
  auto& lvalid = m.property("local_strain_valid");
  for (std::size_t i = 0; i < n; ++i) lvalid[i] = r.local_strain[i].allFinite();
  for (int a = 0; a < 3; ++a) {
    auto& col = m.property(std::string("displacement_") + "xyz"[a]);
    for (std::size_t i = 0; i < n; ++i) col[i] = r.displacement[i][a];
  }
  auto column = [&](const std::string& name, auto get) {
    auto& col = m.property(name);
    for (std::size_t i = 0; i < n; ++i) col[i] = finite(static_cast<double>(get(i)));
  };
  column("on_lattice", [&](std::size_t i) { return r.fit.on_lattice[i]; });
  column("coordination", [&](std::size_t i) { return r.coordination[i]; });
  column("surface", [&](std::size_t i) { return r.surface.is_surface[i]; });
  column("facet", [&](std::size_t i) { return r.facets.facet_of[i]; });
  for (int a = 0; a < 3; ++a)
    column(std::string("facet_") + "hkl"[a], [&](std::size_t i) {
      const int f = r.facets.facet_of[i];
      return f < 0 ? 0 : r.facets.facets[f].hkl[a];
    });
  column("site_kind", [&](std::size_t i) { return r.facets.site_kind[i]; });
  column("q4", [&](std::size_t i) { return r.q4[i]; });
  column("q6", [&](std::size_t i) { return r.q6[i]; });
  column("structure", [&](std::size_t i) { return static_cast<int>(r.local.type[i]); });
  column("grain", [&](std::size_t i) { return r.grains.of_atom[i]; });
  if (r.chemical.present()) {
    column("local_order", [&](std::size_t i) { return r.chemical.local_order[i]; });
    column("order_axis", [&](std::size_t i) { return r.chemical.local_axis[i]; });
    column("antisite", [&](std::size_t i) { return r.chemical.antisite[i]; });
  }
  m.set_info("sample_structure", sample_structure_name(r.kind));
  if (r.lattice_fitted) {
    m.set_info("lattice", lattice_name(r.fit.lattice.type));
    m.set_info("lattice_a", std::to_string(r.fit.lattice.a));
  }
}

std::string analysis_summary(const AnalysisResult& r) {
  auto pct = [](double f) { return fmt_g(100 * f, 3) + "%"; };
  double q6 = 0;
  std::size_t nq = 0;
  for (double v : r.q6)
    if (std::isfinite(v)) q6 += v, ++nq;
  if (!r.lattice_fitted)
    return "amorphous: " + pct(r.crystalline_fraction) +
           " of the interior atoms in fcc, hcp or bcc order; no lattice, strain or facets; mean "
           "Q6 " +
           fmt_g(nq ? q6 / static_cast<double>(nq) : NAN, 3);
  std::string s;
  if (r.kind == SampleStructure::polycrystal) {
    s = std::to_string(r.grains.grains.size()) + " grains (";
    for (std::size_t g = 0; g < r.grains.grains.size(); ++g)
      s += (g ? ", " : "") + std::to_string(r.grains.grains[g].atoms.size()) + " " +
           lattice_name(r.grains.grains[g].type);
    s += " atoms)";
    if (r.grains.planar_defect_atoms)
      s += ", " + std::to_string(r.grains.planar_defect_atoms) + " atoms in planar defects";
    s += "; the largest: ";
  } else if (r.kind == SampleStructure::amorphous) {
    s = "amorphous by its local structure, fitted as asked: ";
  } else if (r.grains.planar_defect_atoms) {
    s = std::to_string(r.grains.planar_defect_atoms) + " atoms in planar defects; ";
  }
  const CrystalLattice& L = r.fit.lattice;
  s += std::string(lattice_name(L.type)) + " a = " + fmt_g(L.a, 6) + " A";
  if (L.type == LatticeType::hcp || L.type == LatticeType::l10)
    s += ", c = " + fmt_g(L.c, 6) + " A";
  s += ", " + pct(r.fit.on_lattice_fraction) + " on the lattice, " +
       std::to_string(r.facets.facets.size()) + " facets";
  std::string facets;
  for (const auto& [k, v] : r.facets.area_fraction)
    facets += (facets.empty() ? "" : ", ") + k + " " + pct(v);
  s += facets.empty() ? "" : " (" + facets + ")";
  if (r.chemical.present()) {
    const ChemicalOrder& c = r.chemical;
    s += "; " + c.first + c.second + ": ";
    if (std::isfinite(c.order_parameter))
      s += "order parameter " + fmt_g(c.order_parameter, 3) + ", " + std::to_string(c.antisites) +
           " antisites, ";
    s += pct(c.ordered_fraction) + " locally ordered";
  }
  return s;
}

void write_analysis_files(const std::string& dir, const AtomModel& model, const AnalysisResult& r) {
  AtomModel m = model;
  add_analysis_properties(m, r);
  write_xyz(dir + "/atoms.xyz", m);
  write_text_file(dir + "/analysis.json", json_text(r.json()));
  for (std::size_t c = 0; c < r.strain_volumes.size(); ++c)
    write_mrc(dir + "/strain_" + strain_component_names()[c] + ".mrc", r.strain_volumes[c],
              MrcKind::volume, {std::string("aet analyze: strain ") + strain_component_names()[c]});
  if (r.facet_volume.size() > 0)
    write_mrc(dir + "/facets.mrc", r.facet_volume, MrcKind::volume,
              {"aet analyze: facet index + 1 (0 = none), see analysis.json"});
}

std::vector<std::string> analysis_file_names() {
  std::vector<std::string> names = {"atoms.xyz", "analysis.json", "facets.mrc"};
  for (const char* c : strain_component_names())
    names.push_back(std::string("strain_") + c + ".mrc");
  return names;
}

}  // namespace aet
