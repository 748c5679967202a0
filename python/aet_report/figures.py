"""The report's figures, each returned as PNG bytes (matplotlib's Agg back end writes them).

Frame (docs/conventions.md): volumes are (x, y, z) with x fastest, read as (z, y, x) arrays; the
rotation centre of an axis of n samples is index n // 2, and atom positions (Angstrom) are
centred on it, so index i sits at (i - n // 2) * voxel Angstrom. Every image is drawn in that
frame (axes and scale bars in Angstrom), which puts the atoms on their peaks.
"""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402

DPI = 80
SLAB = 0.8  # Angstrom: atoms this close to a slice's plane are drawn on it
SPECIES_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628"]


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def coordinate(index, n, voxel):
    """Angstrom of (fractional) index `index` on an axis of n samples."""
    return (np.asarray(index, dtype=float) - n // 2) * voxel


def to_index(position, n, voxel):
    """The (fractional) index of `position` (Angstrom) on an axis of n samples."""
    return np.asarray(position, dtype=float) / voxel + n // 2


def extent(n_horizontal, n_vertical, voxel):
    """imshow extent (Angstrom) of an image whose pixel centres sit at coordinate(i)."""
    h0, h1 = coordinate([-0.5, n_horizontal - 0.5], n_horizontal, voxel)
    v0, v1 = coordinate([-0.5, n_vertical - 0.5], n_vertical, voxel)
    return [h0, h1, v0, v1]


def central_slices(data, at=None):
    """The xy, xz and yz slices of a (z, y, x) array through voxel (ix, iy, iz) = `at` (default:
    n // 2 on each axis, the origin): (name, image with its first axis vertical, horizontal axis
    label, vertical axis label, (n_h, n_v))."""
    nz, ny, nx = data.shape
    ix, iy, iz = at if at is not None else (nx // 2, ny // 2, nz // 2)
    return [("xy", data[iz], "x", "y", (nx, ny)),
            ("xz", data[:, iy, :], "x", "z", (nx, nz)),
            ("yz", data[:, :, ix], "y", "z", (ny, nz))]


def overlay_planes(atoms, shape, voxel):
    """The voxel (ix, iy, iz) of the atom nearest the origin: slices through it cut atom layers
    (those through the origin may fall between layers). Voxel n // 2 without atoms."""
    nz, ny, nx = shape
    if len(atoms.positions) == 0:
        return (nx // 2, ny // 2, nz // 2)
    p = atoms.positions[np.argmin(np.sum(atoms.positions ** 2, axis=1))]
    return tuple(int(np.clip(np.round(to_index(p[k], n, voxel)), 0, n - 1))
                 for k, n in enumerate((nx, ny, nz)))


def nice_length(width):
    """A scale-bar length (1, 2 or 5 x 10^k Angstrom) of about a quarter of `width`."""
    target = max(width / 4.0, 1e-3)
    k = 10 ** np.floor(np.log10(target))
    return float(max(m * k for m in (1, 2, 5) if m * k <= target))


def scale_bar(ax, width, colour="white"):
    length = nice_length(width)
    ax.add_artist(AnchoredSizeBar(ax.transData, length, "%g \u00c5" % length, "lower right",
                                  pad=0.3, color=colour, frameon=False, size_vertical=width / 100,
                                  fontproperties={"size": 8}))


def limits(images):
    values = np.concatenate([np.ravel(i) for i in images])
    lo, hi = np.percentile(values, [0.5, 99.8])
    return (float(lo), float(hi if hi > lo else lo + 1))


def views_montage(views, angles, max_views=20):
    """Up to max_views views spread over the series, one grey scale, the tilt on each."""
    nv, ny, nx = views.data.shape
    picks = np.unique(np.round(np.linspace(0, nv - 1, min(nv, max_views))).astype(int))
    cols = min(5, len(picks))
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols + 0.8, 2.0 * rows), squeeze=False,
                             constrained_layout=True)
    lo, hi = limits([views.data[i] for i in picks])
    ext = extent(nx, ny, views.voxel)
    im = None
    for ax, i in zip(axes.flat, picks):
        im = ax.imshow(views.data[i], cmap="gray", origin="lower", extent=ext, vmin=lo, vmax=hi)
        label = "view %d" % (i + 1)
        if angles is not None and len(angles) == nv:
            label += ", %.1f\u00b0" % angles[i]
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        scale_bar(ax, ext[1] - ext[0])
    for ax in axes.flat[len(picks):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6, label="view intensity (a.u.)")
    return png(fig)


def view_residual(view_r1, angles, r1):
    fig, ax = plt.subplots(figsize=(6.4, 3.2), constrained_layout=True)
    x = np.asarray(angles) if angles is not None and len(angles) == len(view_r1) else None
    ax.plot(x if x is not None else np.arange(1, len(view_r1) + 1), view_r1, "o-", ms=3)
    if r1 is not None:
        ax.axhline(r1, color="grey", ls="--", lw=1, label="R1 of the series %.4f" % r1)
        ax.legend(fontsize=8)
    ax.set_xlabel("tilt angle (\u00b0)" if x is not None else "view")
    ax.set_ylabel("R1 of the view")
    ax.grid(alpha=0.3)
    return png(fig)


def orthoslices(rows):
    """rows: [(label, Volume)]: xy, xz, yz through the centre, one colour scale per row."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(10.5, 3.3 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for r, (label, vol) in enumerate(rows):
        slices = central_slices(vol.data)
        lo, hi = limits([s[1] for s in slices])
        im = None
        for c, (name, image, h, v, (nh, nv)) in enumerate(slices):
            name += " (%s = 0)" % "zyx"[c]
            ax = axes[r, c]
            ext = extent(nh, nv, vol.voxel)
            im = ax.imshow(image, cmap="magma", origin="lower", extent=ext, vmin=lo, vmax=hi)
            ax.set_title("%s: %s" % (label, name), fontsize=9)
            ax.set_xlabel("%s (\u00c5)" % h)
            ax.set_ylabel("%s (\u00c5)" % v)
            scale_bar(ax, ext[1] - ext[0])
        fig.colorbar(im, ax=axes[r, :], shrink=0.8, label="intensity (a.u.)")
    return png(fig)


def slab_atoms(atoms, axis, at=0.0):
    """Indices of the atoms within SLAB of the plane at `at` Angstrom normal to `axis`."""
    return np.nonzero(np.abs(atoms.positions[:, axis] - at) < SLAB)[0]


def central_slab(atoms, axis):
    """The atoms within SLAB of the atomic plane nearest the centre, normal to `axis` (a particle
    centred on an interstice, as an L1_0 one, has no atom in the plane through 0)."""
    if len(atoms.positions) == 0:
        return np.zeros(0, dtype=int)
    at = atoms.positions[np.argmin(np.abs(atoms.positions[:, axis])), axis]
    return slab_atoms(atoms, axis, at)


def atom_overlay(vol, atoms, trust=None):
    """The central slices with the atoms within SLAB of each plane: coloured by species, and by
    `trust` (a second row: each atom's position standard deviation in pm) when given."""
    rows = 2 if trust is not None else 1
    fig, axes = plt.subplots(rows, 3, figsize=(10.5, 3.4 * rows), squeeze=False,
                             constrained_layout=True)
    at = overlay_planes(atoms, vol.data.shape, vol.voxel)
    slices = central_slices(vol.data, at)
    lo, hi = limits([s[1] for s in slices])
    species = sorted(set(atoms.species))
    colour = {s: SPECIES_COLOURS[i % len(SPECIES_COLOURS)] for i, s in enumerate(species)}
    names = np.array(atoms.species)
    # The plane's normal and the two in-plane axes of each slice, as (x, y, z) indices.
    planes = [(2, 0, 1), (1, 0, 2), (0, 1, 2)]
    for r in range(rows):
        for c, ((name, image, h, v, (nh, nv)), (normal, ah, av)) in enumerate(zip(slices, planes)):
            ax = axes[r, c]
            ext = extent(nh, nv, vol.voxel)
            ax.imshow(image, cmap="gray", origin="lower", extent=ext, vmin=lo, vmax=hi)
            n_normal = vol.data.shape[2 - normal]
            plane = float(coordinate(at[normal], n_normal, vol.voxel))
            idx = slab_atoms(atoms, normal, plane)
            p = atoms.positions[idx]
            if r == 0:
                for s in species:
                    sel = names[idx] == s
                    ax.scatter(p[sel, ah], p[sel, av], s=22, facecolors="none",
                               edgecolors=colour[s], linewidths=1.0, label=s)
                if c == 0:
                    ax.legend(fontsize=7, loc="upper right", framealpha=0.7)
            else:
                sc = ax.scatter(p[:, ah], p[:, av], s=22, c=trust[idx], cmap="viridis",
                                vmin=float(np.min(trust)), vmax=float(np.max(trust)))
                if c == 2:
                    fig.colorbar(sc, ax=axes[r, :], shrink=0.8, label="position sd (pm)")
            ax.set_xlim(ext[0], ext[1])
            ax.set_ylim(ext[2], ext[3])
            ax.set_title("%s (%s = %.2f \u00c5), %d atoms within %.1f \u00c5"
                         % (name, "zyx"[c], plane, len(idx), SLAB), fontsize=9)
            ax.set_xlabel("%s (\u00c5)" % h)
            ax.set_ylabel("%s (\u00c5)" % v)
            scale_bar(ax, ext[1] - ext[0])
    return png(fig)


def r1_iterations(r1, marks):
    """R1 per iteration; marks: [(iteration, label)] drawn as vertical lines."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), constrained_layout=True)
    ax.semilogy(np.arange(1, len(r1) + 1), r1, "-", lw=1.5)
    for it, label in marks:
        ax.axvline(it, color="grey", ls="--", lw=1)
        ax.text(it, ax.get_ylim()[1], label + " ", va="top", ha="right", fontsize=8, color="grey")
    ax.set_xlabel("iteration")
    ax.set_ylabel("R1")
    ax.grid(alpha=0.3, which="both")
    return png(fig)


def intensity_histograms(panels):
    """panels: [(title, values, species per atom, (non-atom cut, species boundaries), xlabel)]."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False,
                             constrained_layout=True)
    for ax, (title, values, species, bounds, xlabel) in zip(axes[0], panels):
        names = sorted(set(species))
        bins = np.linspace(min(0.0, float(np.min(values))), float(np.max(values)) * 1.05, 60)
        groups = [values[np.array(species) == s] for s in names]
        colours = [SPECIES_COLOURS[i % len(SPECIES_COLOURS)] for i in range(len(names))]
        ax.hist(groups, bins=bins, stacked=True, color=colours, label=names)
        if bounds is not None:
            cut, between = bounds
            if cut is not None:
                ax.axvline(cut, color="black", ls=":", lw=1.5, label="non-atom cut %.3g" % cut)
            for b in between:
                ax.axvline(b, color="black", ls="--", lw=1.2, label="class boundary %.3g" % b)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("atoms")
        ax.legend(fontsize=7)
    return png(fig)


def alignment(angles, shifts, angle_change, round_r1):
    """Per view: the shifts (Angstrom) and the Euler angles' change from the nominal ones
    (degrees), and R1 per projection-matching round."""
    panels = 3 if round_r1 else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.2), constrained_layout=True)
    x = np.asarray(angles)
    axes[0].plot(x, shifts[:, 0], "o-", ms=3, label="shift x")
    axes[0].plot(x, shifts[:, 1], "s-", ms=3, label="shift y")
    axes[0].set_ylabel("shift (\u00c5)")
    axes[0].set_title("view shifts", fontsize=9)
    if angle_change is not None:
        for k, name in enumerate(("\u0394phi", "\u0394theta", "\u0394psi")):
            axes[1].plot(x, angle_change[:, k], "o-", ms=3, label=name)
        axes[1].set_title("angles minus nominal", fontsize=9)
    else:
        axes[1].text(0.5, 0.5, "nominal angles not recorded", ha="center",
                     transform=axes[1].transAxes)
    axes[1].set_ylabel("change (\u00b0)")
    for ax in axes[:2]:
        ax.set_xlabel("tilt angle (\u00b0)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if round_r1:
        axes[2].plot(np.arange(1, len(round_r1) + 1), round_r1, "o-")
        axes[2].set_xlabel("projection-matching round")
        axes[2].set_ylabel("R1")
        axes[2].set_title("alignment rounds", fontsize=9)
        axes[2].grid(alpha=0.3)
    return png(fig)


def strain_maps(maps):
    """maps: [(component, Volume)]: the central xy and xz slices of each, in percent, on one
    symmetric diverging scale."""
    fig, axes = plt.subplots(2, len(maps), figsize=(3.2 * len(maps) + 0.8, 6.2), squeeze=False,
                             constrained_layout=True)
    images = [(c, s, vol) for c, vol in maps for s in central_slices(vol.data)[:2]]
    finite = np.concatenate([np.ravel(s[1])[np.isfinite(np.ravel(s[1]))] for _, s, _ in images])
    top = float(np.percentile(np.abs(finite), 99)) * 100 if finite.size else 1.0
    top = top if top > 0 else 1.0
    im = None
    for k, (c, (name, image, h, v, (nh, nv)), vol) in enumerate(images):
        ax = axes[k % 2, k // 2]
        ext = extent(nh, nv, vol.voxel)
        im = ax.imshow(100 * image, cmap="RdBu_r", origin="lower", extent=ext, vmin=-top, vmax=top)
        ax.set_title("strain %s, %s slice through the centre" % (c, name), fontsize=9)
        ax.set_xlabel("%s (\u00c5)" % h)
        ax.set_ylabel("%s (\u00c5)" % v)
        scale_bar(ax, ext[1] - ext[0], colour="black")
    fig.colorbar(im, ax=axes, shrink=0.7, label="strain (%)")
    return png(fig)


def atom_property_map(atoms, values, label, cmap, symmetric):
    """Atoms within SLAB of the three central planes coloured by a per-atom value (the strain or
    facet picture when the analysis wrote per-atom columns rather than volumes)."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    ok = np.isfinite(values)
    top = float(np.max(np.abs(values[ok]))) if ok.any() else 1.0
    vmin, vmax = (-top, top) if symmetric else (float(np.min(values[ok], initial=0)), top)
    sc = None
    for ax, (normal, ah, av, name) in zip(axes, [(2, 0, 1, "xy"), (1, 0, 2, "xz"),
                                                 (0, 1, 2, "yz")]):
        idx = central_slab(atoms, normal)
        idx = idx[ok[idx]]
        p = atoms.positions[idx]
        sc = ax.scatter(p[:, ah], p[:, av], c=values[idx], cmap=cmap, vmin=vmin, vmax=vmax, s=30)
        ax.set_aspect("equal")
        ax.set_title("%s, atoms within %.1f \u00c5 of the central plane" % (name, SLAB),
                     fontsize=9)
        ax.set_xlabel("%s (\u00c5)" % "xyz"[ah])
        ax.set_ylabel("%s (\u00c5)" % "xyz"[av])
    fig.colorbar(sc, ax=axes, shrink=0.8, label=label)
    return png(fig)


def central_slab_panels(axes, atoms, colours, ringed=None):
    """The atoms within SLAB of the atomic planes nearest the centre normal to z, y and x, one
    panel each, in the given per-atom colours; atoms where `ringed` holds get a red ring."""
    for ax, (normal, ah, av, name) in zip(axes, [(2, 0, 1, "xy"), (1, 0, 2, "xz"),
                                                 (0, 1, 2, "yz")]):
        idx = central_slab(atoms, normal)
        p = atoms.positions[idx]
        ax.scatter(p[:, ah], p[:, av], s=30, c=colours[idx], edgecolors="#555555",
                   linewidths=0.3)
        if ringed is not None and ringed[idx].any():
            q = atoms.positions[idx[ringed[idx]]]
            ax.scatter(q[:, ah], q[:, av], s=70, facecolors="none", edgecolors="#d62728",
                       linewidths=1.2)
        ax.set_aspect("equal")
        ax.set_title("%s, atoms within %.1f \u00c5 of the central plane" % (name, SLAB),
                     fontsize=9)
        ax.set_xlabel("%s (\u00c5)" % "xyz"[ah])
        ax.set_ylabel("%s (\u00c5)" % "xyz"[av])


def chemical_order_projection(atoms, order_axis, local_order, antisite, threshold):
    """Atoms within SLAB of the three central planes: the locally ordered ones coloured by the
    cube axis along which their species' planes alternate (the L1_0 variant), shaded light or dark
    by species; disordered ones grey; antisites ringed in red."""
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.8), constrained_layout=True)
    species = sorted(set(atoms.species))
    heavy = np.array([s == species[-1] for s in atoms.species])
    base = {0: np.array(plt.get_cmap("tab10")(0)), 1: np.array(plt.get_cmap("tab10")(1)),
            2: np.array(plt.get_cmap("tab10")(2))}
    colours = []
    for ax_k, o, h in zip(order_axis, local_order, heavy):
        if ax_k < 0 or not o >= threshold:
            colours.append((0.45, 0.45, 0.45, 1.0) if h else (0.82, 0.82, 0.82, 1.0))
        else:
            c = base[int(ax_k)].copy()
            colours.append(tuple(0.6 * c[:3]) + (1.0,) if h else tuple(0.45 + 0.55 * c[:3]) + (1.0,))
    central_slab_panels(axes, atoms, np.array(colours), ringed=antisite > 0)
    for k in range(3):
        axes[2].scatter([], [], color=base[k], label="c along lattice %s" % "xyz"[k])
    axes[2].scatter([], [], color="#bbbbbb", label="not ordered")
    axes[2].scatter([], [], facecolors="none", edgecolors="#d62728", label="antisite")
    axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                   title="dark: %s, light: %s" % (species[-1], species[0]), title_fontsize=7)
    return png(fig)


def facet_projection(atoms, facet, miller=None):
    """The particle seen along z, y and x, nearest atoms drawn last (on top): facet atoms coloured
    by facet, the others grey. miller: per-atom (h, k, l) for the legend, or None."""
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.8), constrained_layout=True)
    labels = np.unique(facet[facet >= 0]).astype(int)
    cmap = plt.get_cmap("tab20")
    colour = {lab: cmap(k % 20) for k, lab in enumerate(labels)}
    colours = [colour.get(int(f), "#cccccc") if f >= 0 else "#cccccc" for f in facet]
    p = atoms.positions
    for ax, (ah, av, depth, name) in zip(axes, [(0, 1, 2, "z"), (0, 2, 1, "y"), (1, 2, 0, "x")]):
        # Seen from +depth, so the largest depth is nearest (for y: from -y, x to the right).
        order = np.argsort(p[:, depth] if depth != 1 else -p[:, depth])
        ax.scatter(p[order, ah], p[order, av], s=18, c=[colours[i] for i in order],
                   edgecolors="#555555", linewidths=0.3)
        ax.set_aspect("equal")
        ax.set_title("seen along %s" % name, fontsize=9)
        ax.set_xlabel("%s (\u00c5)" % "xyz"[ah])
        ax.set_ylabel("%s (\u00c5)" % "xyz"[av])
    for k, lab in enumerate(labels[:12]):
        text = "facet %d" % lab
        if miller is not None:
            h, kk, ll = miller[np.nonzero(facet == lab)[0][0]]
            text += " (%d %d %d)" % (h, kk, ll)
        axes[2].scatter([], [], color=colour[lab], label=text)
    if len(labels):
        axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return png(fig)


def rdf(r, g, partial):
    """g(r) of the model (analysis.json rdf), with the partials of several species."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), constrained_layout=True)
    ax.plot(r, g, "-", lw=1.5, color="black", label="all")
    for name, values in sorted(partial.items()):
        ax.plot(r, values, "-", lw=1, label=name)
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ax.set_xlabel("r (\u00c5)")
    ax.set_ylabel("g(r)")
    if partial:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def grain_projection(atoms, grain, structure):
    """Atoms within SLAB of the three central planes coloured by grain; atoms in no grain grey,
    those among them in hcp order (twin planes, stacking faults) dark."""
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.8), constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    labels = np.unique(grain[grain >= 0]).astype(int)
    colours = np.array([cmap(int(g) % 10) if g >= 0 else
                        ((0.27, 0.27, 0.27, 1.0) if s == 2 else (0.8, 0.8, 0.8, 1.0))
                        for g, s in zip(grain, structure)])
    central_slab_panels(axes, atoms, colours)
    for lab in labels[:10]:
        axes[2].scatter([], [], color=cmap(lab % 10), label="grain %d" % lab)
    axes[2].scatter([], [], color="#444444", label="hcp, no grain")
    axes[2].scatter([], [], color="#cccccc", label="other")
    axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return png(fig)
