#!/usr/bin/env python3
"""Coverage of the refinement's trust per atom (benchmarks/trust_calibration.sh).

trust_match.py REFINED.xyz TRUTH.xyz EVALUATION.json
Applies the registration `aet evaluate` found (p' = rotation p + translation), matches refined
atoms to truth atoms one to one within its radius (closest pairs first, as the evaluation does)
and prints one Markdown row tail: matched pairs, the fraction of (atom, axis) pairs whose true
error is within 2 sigma for the curvature's sigma, the bootstrap's, their quadrature sum, the
larger of the two and the reported one (the larger), the median reported sigma and the RMS error per axis (pm), and
the weak atoms. Sigmas are turned into the truth's frame with the registration's rotation
(variances of independent axes: sigma'_j^2 = sum_i R_ji^2 sigma_i^2).
"""
import json
import math
import sys


def read_xyz(path):
    lines = open(path).read().splitlines()
    n = int(lines[0])
    head = lines[1]
    props = head.split("Properties=")[1].split()[0].split(":")
    cols, c = {}, 0
    for i in range(0, len(props), 3):
        name, width = props[i], int(props[i + 2])
        cols[name] = (c, width)
        c += width
    atoms = []
    for line in lines[2:2 + n]:
        f = line.split()
        a = {}
        for name, (c0, w) in cols.items():
            v = f[c0:c0 + w]
            a[name] = v[0] if name == "species" else [float(x) for x in v]
        atoms.append(a)
    return atoms


def main():
    refined, truth = read_xyz(sys.argv[1]), read_xyz(sys.argv[2])
    ev = json.load(open(sys.argv[3]))
    R, t, radius = ev["rotation"], ev["translation"], ev["match_radius"]
    for a in refined:
        p = a["pos"]
        a["reg"] = [sum(R[j][i] * p[i] for i in range(3)) + t[j] for j in range(3)]
    pairs = []
    for i, a in enumerate(refined):
        for j, b in enumerate(truth):
            d = math.dist(a["reg"], b["pos"])
            if d <= radius:
                pairs.append((d, i, j))
    pairs.sort()
    used_a, used_b, matched = set(), set(), []
    for d, i, j in pairs:
        if i in used_a or j in used_b:
            continue
        used_a.add(i), used_b.add(j)
        matched.append((i, j))

    def rot_sigma(s):
        return [math.sqrt(sum(R[j][i] ** 2 * s[i] ** 2 for i in range(3))) for j in range(3)]

    kinds = {"curv": "sigma_curv_", "boot": "sigma_boot_", "reported": "sigma_"}
    inside = {k: 0 for k in list(kinds) + ["quad", "max"]}
    err2, sig = [0.0] * 3, [[], [], []]
    total = 0
    for i, j in matched:
        a, b = refined[i], truth[j]
        s = {k: rot_sigma([a[p + x][0] for x in "xyz"]) for k, p in kinds.items()}
        s["max"] = [max(u, v) for u, v in zip(s["curv"], s["boot"])]
        s["quad"] = [math.hypot(u, v) for u, v in zip(s["curv"], s["boot"])]
        for ax in range(3):
            e = abs(a["reg"][ax] - b["pos"][ax])
            err2[ax] += e * e
            sig[ax].append(s["reported"][ax])
            total += 1
            for k in inside:
                inside[k] += e <= 2 * s[k][ax]
    weak = sum(a["weak"][0] > 0.5 for a in refined)
    med = [sorted(v)[len(v) // 2] * 100 for v in sig]
    rms = [math.sqrt(e / len(matched)) * 100 for e in err2]
    pct = lambda k: f"{100 * inside[k] / total:.1f} %"
    print(f"{len(matched)} / {len(truth)} | {pct('curv')} | {pct('boot')} | {pct('quad')} | "
          f"{pct('max')} | {pct('reported')} | {med[0]:.2f} {med[1]:.2f} {med[2]:.2f} | "
          f"{rms[0]:.2f} {rms[1]:.2f} {rms[2]:.2f} | {weak}")


if __name__ == "__main__":
    main()
