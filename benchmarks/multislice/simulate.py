#!/usr/bin/env python3
"""HAADF-STEM tilt series of small particles simulated with abTEM (PRISM, frozen phonons).

Writes, per case, into CACHE/<case>/:
  truth.xyz         the atoms (extended XYZ, Angstrom) in aet's frame: centred on voxel n // 2
  tilts.tlt         single-axis tilts in degrees (IMOD format, as `aet --angles` reads it)
  noiseless.mrc     the simulated views (nx x ny x n_views, float32, HAADF signal as a fraction
                    of the probe intensity), voxel size = scan step
  dose_<D>/tilts.mrc   the same views with Poisson noise for a dose of D electrons per A^2
  views/view_<k>.npy   per-view cache (before the source-size blur), so an interrupted run resumes where it stopped
  params.json       every simulation parameter and the cost

aet's geometry (docs/conventions.md): a point p (centred, Angstrom) of a view with tilt theta lands
at (u, v, w) = Ry(theta)^T p, u = x cos(theta) - z sin(theta), v = y, and pixel i of a view of width
nx sits at u = (i - nx // 2) * pixel. abTEM scans probe position i at i * step from the cell's
corner and propagates along its z; so each view is the particle rotated by Ry(theta)^T, shifted so
that p = 0 sits at scan position nx // 2 (and ny // 2), with w along the beam. abTEM arrays are
indexed (x, y); MRC sections are (y, x), hence the transpose when writing.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

CASES = {
    # Pt truncated octahedron, 201 atoms, cube axes along x, y, z: tilting about y passes the
    # [001] zone axis at 0 deg and [101]/[-101] at +-45 deg.
    "pt_to201": dict(kind="octahedron", element="Pt", length=7, cutoff=2, sigma=0.08),
    # Au Ino decahedron, 146 atoms, five-fold axis along z (a zone axis at 0 deg).
    "au_deca146": dict(kind="decahedron", element="Au", p=3, q=2, r=1, sigma=0.085),
    # Amorphous Pd: random sequential packing in a sphere, minimum distance 2.3 A.
    "pd_amorph160": dict(kind="amorphous", element="Pd", n_atoms=160, dmin=2.3, density=0.055, sigma=0.08),
    # Amorphous Si: minimum distance 2.2 A, a-Si number density 0.05 / A^3.
    "si_amorph208": dict(kind="amorphous", element="Si", n_atoms=208, dmin=2.2, density=0.05, sigma=0.08),
}


def random_packing(n_atoms, dmin, density, rng):
    """Random sequential addition in a sphere sized for the density; every pair >= dmin apart."""
    radius = (3.0 * n_atoms / (4.0 * np.pi * density)) ** (1.0 / 3.0)
    pts = np.zeros((0, 3))
    tries = 0
    while len(pts) < n_atoms:
        tries += 1
        if tries > 2_000_000:
            raise RuntimeError(f"random packing: only {len(pts)} of {n_atoms} atoms fit at dmin {dmin}")
        p = rng.uniform(-radius, radius, 3)
        if p @ p > radius * radius:
            continue
        if len(pts) and np.min(np.sum((pts - p) ** 2, axis=1)) < dmin * dmin:
            continue
        pts = np.vstack([pts, p])
    return pts


def build_particle(case, seed):
    from ase import Atoms
    from ase.cluster import Decahedron, Octahedron

    spec = CASES[case]
    if spec["kind"] == "octahedron":
        atoms = Octahedron(spec["element"], spec["length"], cutoff=spec["cutoff"])
    elif spec["kind"] == "decahedron":
        atoms = Decahedron(spec["element"], spec["p"], spec["q"], spec["r"])
    else:
        rng = np.random.default_rng(seed)
        pos = random_packing(spec["n_atoms"], spec["dmin"], spec["density"], rng)
        atoms = Atoms(spec["element"] * spec["n_atoms"], positions=pos)
    atoms.cell = None
    atoms.pbc = False
    # Centre the bounding box on the origin (= voxel n // 2 of aet's volume).
    pos = atoms.positions
    atoms.positions = pos - 0.5 * (pos.max(0) + pos.min(0))
    return atoms


def rot_y_t(theta_deg):
    """Ry(theta)^T: aet's view rotation for a single-axis tilt (docs/conventions.md)."""
    t = np.deg2rad(theta_deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def simulate_view(atoms, theta, args, sigma, seed):
    import abtem

    n, step = args.n, args.pixel
    extent = n * step
    uvw = atoms.positions @ rot_y_t(theta).T
    depth = np.ptp(uvw[:, 2]) + 2.0 * args.beam_margin
    view = atoms.copy()
    view.positions = uvw + np.array([(n // 2) * step, (n // 2) * step, 0.5 * depth])
    view.cell = [extent, extent, depth]
    view.pbc = True
    phonons = abtem.FrozenPhonons(view, num_configs=args.phonons, sigmas=sigma, seed=seed)
    potential = abtem.Potential(
        phonons, sampling=args.potential_sampling, slice_thickness=args.slice, projection="infinite"
    )
    smatrix = abtem.SMatrix(
        potential=potential, energy=args.energy * 1e3, semiangle_cutoff=args.semiangle,
        interpolation=args.interpolation,
    )
    scan = abtem.GridScan(start=(0, 0), end=(extent, extent), gpts=(n, n), endpoint=False)
    detector = abtem.AnnularDetector(inner=args.inner, outer=args.outer)
    measurement = smatrix.scan(scan=scan, detectors=detector).compute(progress_bar=False)
    img = np.asarray(measurement.array, dtype=np.float64)
    # FrozenPhonons averages its configurations itself (ensemble_mean); average any axis left.
    img = img.reshape((-1,) + img.shape[-2:]).mean(0)
    assert img.shape == (n, n), img.shape
    return img.T  # (y, x): an MRC section


def write_mrc(path, stack, pixel):
    import mrcfile

    tmp = path + ".tmp"
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(stack.astype(np.float32))
        mrc.voxel_size = pixel
        mrc.set_image_stack()
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--cache", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "cache"))
    ap.add_argument("--n", type=int, default=60, help="view width and height (pixels)")
    ap.add_argument("--pixel", type=float, default=0.4, help="scan step (A)")
    ap.add_argument("--tilts", default="-70:70:5", help="first:last:step (deg)")
    ap.add_argument("--energy", type=float, default=200.0, help="kV")
    ap.add_argument("--semiangle", type=float, default=25.0, help="probe convergence semi-angle (mrad)")
    ap.add_argument("--inner", type=float, default=60.0, help="HAADF inner angle (mrad)")
    ap.add_argument("--outer", type=float, default=160.0, help="HAADF outer angle (mrad)")
    ap.add_argument("--potential-sampling", type=float, default=0.05, help="A")
    ap.add_argument("--slice", type=float, default=2.0, help="slice thickness (A)")
    ap.add_argument("--beam-margin", type=float, default=2.0, help="vacuum above/below (A)")
    ap.add_argument("--interpolation", type=int, default=4, help="PRISM interpolation factor")
    ap.add_argument("--phonons", type=int, default=2, help="frozen-phonon configurations per view")
    ap.add_argument("--source-size", type=float, default=0.25, help="Gaussian source sd (A)")
    ap.add_argument("--doses", default="1e5,5e4,1.6e4,8e3", help="electrons per A^2 per view")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import abtem

    abtem.config.set({"dask.scheduler": "threads", "dask.num_workers": args.threads})
    first, last, step = (float(x) for x in args.tilts.split(":"))
    tilts = np.round(np.arange(first, last + 0.5 * step, step), 6)
    out = os.path.join(args.cache, args.case)
    os.makedirs(os.path.join(out, "views"), exist_ok=True)

    atoms = build_particle(args.case, args.seed)
    sigma = CASES[args.case]["sigma"]
    # The particle must stay inside the field at every tilt, with the probe tails too.
    half_field = (args.n // 2) * args.pixel
    for theta in tilts:
        u = (atoms.positions @ rot_y_t(theta).T)[:, 0]
        if max(abs(u).max(), abs(atoms.positions[:, 1]).max()) > half_field - 2.0:
            sys.exit(f"{args.case}: particle reaches within 2 A of the field edge at {theta} deg")

    from ase.io import write

    write(os.path.join(out, "truth.xyz"), atoms, format="extxyz")
    with open(os.path.join(out, "tilts.tlt"), "w") as f:
        f.writelines(f"{t:.6f}\n" for t in tilts)

    # Cached views are reused only with the parameters they were simulated with.
    key = {k: v for k, v in vars(args).items() if k not in ("cache", "doses", "source_size", "threads")}
    key_path = os.path.join(out, "views", "simulation.json")
    if os.path.exists(key_path):
        with open(key_path) as f:
            cached = json.load(f)
        if cached != key:
            sys.exit(f"{key_path}: cached views were simulated with other parameters ({cached}); "
                     "remove that folder or choose another --cache")
    else:
        with open(key_path, "w") as f:
            json.dump(key, f, indent=2)

    t0 = time.time()
    views = []
    for k, theta in enumerate(tilts):
        path = os.path.join(out, "views", f"view_{k:03d}.npy")
        if not os.path.exists(path):
            tv = time.time()
            img = simulate_view(atoms, theta, args, sigma, args.seed * 1000 + k)
            np.save(path + ".tmp.npy", img)
            os.replace(path + ".tmp.npy", path)
            print(f"{args.case}: view {k + 1}/{len(tilts)} ({theta:+.1f} deg) {time.time() - tv:.0f} s", flush=True)
        views.append(np.load(path))
    stack = np.stack(views)
    if args.source_size > 0:
        # Finite source size (partial spatial coherence): the probe positions are blurred by a
        # Gaussian. Applied to the cached views, so changing it costs no simulation.
        from scipy.ndimage import gaussian_filter

        stack = np.stack([gaussian_filter(v, args.source_size / args.pixel, mode="wrap") for v in stack])
    write_mrc(os.path.join(out, "noiseless.mrc"), stack, args.pixel)

    # Poisson noise: counts per pixel = dose * pixel area * detected fraction; written back as the
    # detected fraction so every dose has the same scale.
    for dose in (float(d) for d in args.doses.split(",") if d):
        rng = np.random.default_rng(args.seed + int(dose))
        electrons = dose * args.pixel**2
        noisy = rng.poisson(np.clip(stack, 0, None) * electrons) / electrons
        ddir = os.path.join(out, f"dose_{dose:g}")
        os.makedirs(ddir, exist_ok=True)
        write_mrc(os.path.join(ddir, "tilts.mrc"), noisy, args.pixel)

    params = {k: v for k, v in vars(args).items() if k not in ("cache",)}
    params.update(
        case=args.case, particle=CASES[args.case], n_atoms=len(atoms), n_views=len(tilts),
        abtem=abtem.__version__, simulation_seconds_this_run=round(time.time() - t0, 1),
    )
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
    print(f"{args.case}: {len(atoms)} atoms, {len(tilts)} views -> {out}")


if __name__ == "__main__":
    main()
