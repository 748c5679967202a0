"""report.html: the sections in order, each figure an embedded PNG; warnings at the top.

Every section is always there (with its id), holding its figure or a line saying why there is
none (the stage did not run, a file is missing), so a reader and the tests see the same outline
for every run.
"""
import base64
import datetime
import html
import json
import os

import numpy as np

from aet_report import figures
from aet_report.cli import ReportInputError
from aet_report.run_folder import RunFolder, class_boundaries

STRAIN_COMPONENTS = ("xx", "yy", "zz", "yz", "xz", "xy")

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.8em; }
.warnings { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 1em; }
.ok { background: #e8f5e9; border: 1px solid #9c9; padding: 0.5em 1em; }
.note { color: #666; font-style: italic; }
figure { margin: 0.5em 0; } figcaption { font-size: 0.85em; color: #444; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
pre { background: #f6f6f6; padding: 0.5em; font-size: 0.85em; overflow-x: auto; }
"""


class Report:
    def __init__(self):
        self.parts = []

    def section(self, sid, title):
        self.parts.append('<section id="%s"><h2>%s</h2>' % (sid, html.escape(title)))

    def end(self):
        self.parts.append("</section>")

    def figure(self, name, data, caption):
        self.parts.append(
            '<figure><img id="fig-%s" alt="%s" src="data:image/png;base64,%s">'
            "<figcaption>%s</figcaption></figure>"
            % (name, html.escape(name), base64.b64encode(data).decode("ascii"),
               html.escape(caption)))

    def note(self, text):
        self.parts.append('<p class="note">%s</p>' % html.escape(text))

    def raw(self, text):
        self.parts.append(text)


def table(rows):
    body = "".join("<tr><td>%s</td><td>%s</td></tr>" % (html.escape(str(k)), html.escape(str(v)))
                   for k, v in rows)
    return "<table>%s</table>" % body


def flatten(value, prefix=""):
    """Dotted keys and short values of a JSON tree; long lists are summarised."""
    if isinstance(value, dict):
        rows = []
        for k, v in value.items():
            rows += flatten(v, "%s.%s" % (prefix, k) if prefix else k)
        return rows
    if isinstance(value, list) and len(value) > 9:
        numbers = [v for v in value if isinstance(v, (int, float))]
        if len(numbers) == len(value):
            return [(prefix, "%d values, %.4g to %.4g (in metrics.json)"
                     % (len(value), min(numbers), max(numbers)))]
        return [(prefix, "%d entries (in the file)" % len(value))]
    if isinstance(value, float):
        return [(prefix, "%.6g" % value)]
    return [(prefix, json.dumps(value) if isinstance(value, list) else value)]


def view_angles(run):
    g = run.geometry()
    return None if g is None else g[:, 1]


def add_views(rep, run):
    rep.section("views", "Input views")
    views = run.views()
    if views is None:
        rep.note("no views to show (see the notes at the top)")
    else:
        n = views.data.shape[0]
        rep.figure("views", figures.views_montage(views, view_angles(run)),
                   "%d views, up to 20 shown spread over the series, one grey scale; tilt angle "
                   "from geometry.txt; pixel %.3g \u00c5." % (n, views.voxel))
    rep.end()
    rep.section("view-residual", "Per-view residual after reconstruction")
    view_r1 = run.metrics.get("view_r1")
    if view_r1:
        rep.figure("view-residual",
                   figures.view_residual(np.array(view_r1, dtype=float), view_angles(run),
                                         run.metrics.get("r1")),
                   "R1 = sum|b - l p| / sum|b| of each view b against the projection p of the "
                   "final reconstruction (l: the series' least-squares scale). Views along a zone "
                   "axis (atoms lined up in columns, the sharpest projections) are fitted worse "
                   "with exact geometry too; a single view far above both neighbours is "
                   "misaligned or damaged.")
    else:
        rep.note("this run's metrics.json has no view_r1 (written by aet pipeline since the "
                 "report was added)")
    rep.end()


def add_volumes(rep, run):
    rep.section("orthoslices", "Orthoslices through the centre")
    recon = run.volume("reconstruction.mrc", "no orthoslices or atom overlay")
    network = run.metrics.get("network") or {}
    augmented = run.volume("augmented.mrc") if network.get("used") else None
    rows = []
    if recon is not None:
        rows.append(("%s" % (run.metrics.get("algorithm") or "reconstruction"), recon))
    if augmented is not None:
        rows.append(("network", augmented))
    if rows:
        rep.figure("orthoslices", figures.orthoslices(rows),
                   "Slices through voxel n//2 (the origin): the reconstruction%s; axes and scale "
                   "bars in \u00c5, one colour scale per row (0.5 to 99.8 percentile)."
                   % (" before (top) and after (bottom) the missing-wedge network"
                      if augmented is not None else " (the network did not run: "
                      + (network.get("skipped_because") or "off") + ")"))
    else:
        rep.note("no reconstruction in the folder")
    rep.end()

    rep.section("atoms", "Traced atoms on the slices")
    atoms = run.atoms("atoms.xyz", "no atom overlay or intensity histogram")
    traced_in = augmented if augmented is not None else recon
    if atoms is not None and traced_in is not None and len(atoms.species):
        # Trust per atom (docs/refinement.md): the position's standard deviation, in pm, from
        # sigma_x, sigma_y, sigma_z (A) of a refined model; the traced model has none.
        sig = [atoms.properties.get("sigma_" + a) for a in "xyz"]
        trust = (100.0 * np.sqrt(sig[0] ** 2 + sig[1] ** 2 + sig[2] ** 2)
                 if all(x is not None for x in sig) else None)
        rep.figure("atoms", figures.atom_overlay(traced_in, atoms, trust),
                   "The final model (atoms.xyz) on the slices of the volume it was traced in "
                   "(%s), atoms within %.1f \u00c5 of each plane, coloured by species%s. Atom "
                   "positions are centred on voxel n//2, the slices' origin."
                   % ("the network's output" if augmented is not None else "the reconstruction",
                      figures.SLAB, " and (second row) by the position's standard deviation "
                      "(pm; sigma_x, sigma_y, sigma_z of the refinement's trust per atom)"
                      if trust is not None else "; no per-atom trust in this model (the traced "
                      "model was kept)"))
    else:
        rep.note("no atoms or no volume to draw them on")
    rep.end()


def add_r1(rep, run):
    rep.section("r1", "R1 per iteration")
    r1 = run.metrics.get("r1_per_iteration")
    if r1:
        marks = []
        net = (run.metrics.get("network") or {}).get("input") or {}
        if net.get("source") == "snapshot" and net.get("iterations"):
            marks.append((net["iterations"], "network input"))
        rep.figure("r1", figures.r1_iterations(np.array(r1, dtype=float), marks),
                   "R1 of the reconstruction against the views after each iteration (%s)."
                   % run.metrics.get("algorithm", ""))
    else:
        rep.note("this run's metrics.json has no r1_per_iteration")
    rep.end()


def add_histogram(rep, run, notes):
    rep.section("histogram", "Intensity histogram and class boundaries")
    panels, decisions = [], []
    traced = run.atoms("traced.xyz") if run.has("traced.xyz") else run.atoms("atoms.xyz")
    if traced is not None and "intensity" in traced.properties:
        how = traced.info.get("trace_classes", "")
        bounds = class_boundaries(how)
        if bounds is None:
            notes.append("the tracer's class decision has no centres (%r): histogram without "
                         "boundaries" % how)
        removed = traced.info.get("trace_non_atoms", "0")
        panels.append(("traced peaks (%s weaker ones removed as non-atoms)" % removed,
                       traced.properties["intensity"], traced.species, bounds,
                       "peak intensity (trace)"))
        decisions.append("trace: " + how)
    final = run.atoms("atoms.xyz")
    refinement = run.metrics.get("refinement") or {}
    if final is not None and "model_weight" in final.properties and refinement.get("kept"):
        how = refinement.get("classes", "")
        bounds = class_boundaries(how)
        if bounds is None:
            notes.append("the refinement's class decision has no centres (%r)" % how)
        panels.append(("refined atoms (%s removed)" % refinement.get("atoms_removed", 0),
                       final.properties["model_weight"], final.species, bounds,
                       "refined weight"))
        decisions.append("refinement: " + how)
        tail = refinement.get("probe_tail")
        if isinstance(tail, dict):
            decisions.append("refined with a probe tail of %.3f times each atom's core at %.2f A"
                             % (tail.get("amplitude", 0.0), tail.get("width_angstrom", 0.0)))
    if panels:
        rep.figure("histogram", figures.intensity_histograms(panels),
                   "Per-atom intensity, stacked by species, with the class decision: dotted, "
                   "the cut below which peaks are not atoms; dashed, the boundaries between "
                   "species (midpoints of the k-means centres; the tracer's local "
                   "re-classification may move single atoms across them). Decisions: "
                   + "; ".join(decisions))
    else:
        rep.note("no per-atom intensities in the folder")
    rep.end()


def add_alignment(rep, run):
    rep.section("alignment", "Alignment")
    al = run.metrics.get("alignment")
    g = run.geometry()
    if not al:
        rep.note("alignment did not run (an exactly simulated series, or --no-align)")
    elif g is None:
        rep.note("geometry.txt is missing")
    else:
        nominal = al.get("nominal_deg")
        if not nominal and run.has("tilts.tlt"):  # runs from before nominal_deg was recorded
            nominal = [[0.0, t, 0.0] for t in np.atleast_1d(np.loadtxt(run.file("tilts.tlt")))]
        change = None
        if nominal and len(nominal) == len(g):
            change = (g[:, :3] - np.array(nominal, dtype=float) + 180.0) % 360.0 - 180.0
        rep.figure("alignment",
                   figures.alignment(g[:, 1], g[:, 3:5], change, al.get("round_r1") or []),
                   "Refined view geometry (geometry.txt): shifts in \u00c5, Euler angles minus "
                   "the nominal ones; tilt axis %.3f\u00b0 from y; R1 %.4f -> %.4f."
                   % (al.get("tilt_axis_deg") or 0, al.get("r1_initial") or 0,
                      al.get("r1_final") or 0))
    rep.end()


def add_analysis(rep, run):
    rep.section("analysis", "Structure, strain and facets")
    if not run.has("analysis.json"):
        rep.note("no analysis.json in the folder (the analysis stage did not run)")
        rep.end()
        return
    with open(run.file("analysis.json")) as f:
        analysis = json.load(f)
    structure = analysis.get("structure") or {}
    kind = structure.get("kind")
    if kind:
        grains = structure.get("grains", [])
        text = "The local structure (adaptive common neighbour analysis) makes the sample %s: " \
            "%.1f %% of its interior atoms in fcc, hcp or bcc order" % (
                kind, 100 * structure.get("crystalline_fraction", 0))
        if kind == "amorphous":
            text += "; it has no lattice, so no strain or facets."
        elif grains:
            text += "; %d grain%s (%s)" % (len(grains), "" if len(grains) == 1 else "s", ", ".join(
                "%d %s atoms" % (g["atoms"], g["type"]) for g in grains))
            if structure.get("planar_defect_atoms"):
                text += ", %d atoms in twin planes or stacking faults" % \
                    structure["planar_defect_atoms"]
            text += "."
        rep.note(text)
    atoms = run.atoms("atoms.xyz")
    props = atoms.properties if atoms is not None else {}
    if kind == "polycrystal" and "grain" in props and "structure" in props:
        rep.figure("grains", figures.grain_projection(atoms, props["grain"], props["structure"]),
                   "Atoms near the central planes coloured by grain (atoms.xyz grain); atoms in "
                   "no grain grey (surface, disorder), those in hcp order (twin planes, stacking "
                   "faults) dark. Each grain has a lattice of its own.")
    chem = analysis.get("chemical_order")
    if chem:
        first, second = chem["species"]
        text = "Chemical order of the %s-%s alloy (%.0f %% %s): " % (
            first, second, 100 * chem["composition"][0], first)
        if chem.get("order_parameter") is not None:
            text += "L1_0 long-range order parameter S = %.3f, %d antisite atoms; " % (
                chem["order_parameter"], chem["antisites"])
        v = chem.get("variant_fraction") or {}
        text += "%.1f %% of the atoms locally ordered (c along the lattice's x %.0f %%, y %.0f %%, " \
            "z %.0f %% of them)." % (100 * chem["ordered_fraction"], 100 * v.get("x", 0),
                                      100 * v.get("y", 0), 100 * v.get("z", 0))
        rep.note(text)
        if all(k in props for k in ("order_axis", "local_order", "antisite")):
            rep.figure("chemical-order", figures.chemical_order_projection(
                atoms, props["order_axis"], props["local_order"], props["antisite"],
                chem.get("ordered_threshold", 0.5)),
                "Atoms near the central planes coloured by the axis along which their "
                "neighbourhood's species planes alternate (atoms.xyz order_axis; L1_0 variants), "
                "grey where the neighbourhood is not ordered (local_order below %.1f); antisite "
                "atoms (on the other species' planes of the fitted L1_0 lattice) ringed." %
                chem.get("ordered_threshold", 0.5))
    if analysis.get("lattice") is not None:
        maps = [(c, run.volume("strain_%s.mrc" % c)) for c in STRAIN_COMPONENTS
                if run.has("strain_%s.mrc" % c)]
        if maps:
            rep.figure("strain", figures.strain_maps(maps[:3] if len(maps) > 3 else maps),
                       "Strain volumes (strain_<c>.mrc), central xy (top) and xz (bottom) slices, "
                       "in percent on one symmetric scale; axes in \u00c5.")
        elif "strain_xx" in props:
            valid = props.get("strain_valid", np.ones(len(props["strain_xx"])))
            rep.figure("strain", figures.atom_property_map(
                atoms, np.where(valid > 0, 100 * props["strain_xx"], np.nan), "strain xx (%)",
                "RdBu_r", True), "Per-atom strain xx (atoms.xyz), atoms near the central planes.")
        else:
            rep.note("no strain volumes or per-atom strain in the folder")
        if "facet" in props:
            miller = (np.stack([props["facet_h"], props["facet_k"], props["facet_l"]], axis=1)
                      if all("facet_" + c in props for c in "hkl") else None)
            rep.figure("facets", figures.facet_projection(atoms, props["facet"], miller),
                       "The model seen along z, y and x (nearest atoms on top), facet atoms "
                       "coloured by facet with their Miller indices (atoms.xyz facet, "
                       "facet_h/k/l), the others grey.")
        else:
            rep.note("no per-atom facets in atoms.xyz")
    rdf = analysis.get("rdf") or {}
    if rdf.get("r") and rdf.get("g"):
        rep.figure("rdf", figures.rdf(np.asarray(rdf["r"]), np.asarray(rdf["g"]),
                                      {k: np.asarray(v) for k, v in
                                       (rdf.get("partial") or {}).items()}),
                   "Radial distribution function g(r) of the model (analysis.json rdf; "
                   "normalised by the density inside its surface, so it falls below 1 at large "
                   "r), partials per species pair when there are several.")
    rep.raw(table(flatten(analysis)))
    rep.end()


def build(run):
    rep = Report()
    notes = run.notes  # what the report could not draw, filled while the sections are made
    # A figure that cannot be drawn from what the folder holds (an unexpected file, a stage's new
    # format) costs its sections only, and says so at the top.
    for add, sections in ((add_views, ["views", "view-residual"]),
                          (add_volumes, ["orthoslices", "atoms"]), (add_r1, ["r1"]),
                          (lambda r, f: add_histogram(r, f, notes), ["histogram"]),
                          (add_alignment, ["alignment"]), (add_analysis, ["analysis"])):
        start = len(rep.parts)
        try:
            add(rep, run)
        except (ReportInputError, ValueError, KeyError, IndexError, TypeError, OSError) as e:
            del rep.parts[start:]
            notes.append("%s not drawn: %s" % (", ".join(sections), e))
            for sid in sections:
                rep.section(sid, sid)
                rep.note("not drawn (see the warnings at the top)")
                rep.end()
    rep.section("metrics", "Metrics")
    rep.raw(table(flatten(run.metrics)))
    rep.end()
    rep.section("config", "Effective configuration")
    config = run.config()
    rep.raw("<pre>%s</pre>" % html.escape(config) if config else
            '<p class="note">pipeline.log is missing</p>')
    rep.end()

    m = run.metrics
    head = ['<h1>aet run report</h1>', table([
        ("command", m.get("command_line", "")), ("source", m.get("source", "")),
        ("aet", m.get("aet_version", "")), ("seed", m.get("seed", "")),
        ("report made", datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))])]
    warnings = list(m.get("warnings") or [])
    head.append('<section id="warnings"><h2>Warnings</h2>')
    if warnings or notes:
        items = "".join("<li>%s</li>" % html.escape(w) for w in warnings)
        items += "".join("<li>report: %s</li>" % html.escape(n) for n in notes)
        head.append('<div class="warnings"><ul>%s</ul></div>' % items)
    else:
        head.append('<div class="ok">none: every stage passed its checks</div>')
    head.append("</section>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>aet report</title><style>%s</style></head><body>%s%s</body></html>\n"
            % (STYLE, "".join(head), "".join(rep.parts)))


def write_report(run_dir, out):
    """Writes the report of `run_dir` to `out` (a temporary file renamed into place); returns its
    size in bytes."""
    text = build(RunFolder(run_dir)).encode("utf-8")
    tmp = "%s.tmp-%d" % (out, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(text)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(text)
