#!/usr/bin/env bash
# Facets through the whole chain (docs/analysis.md): each faceted catalogue phantom through the
# default `aet pipeline`, its final model's facets against those of `aet analyze` on the truth:
# recall, precision and RMSD of the atoms, the facet counts, the area fraction of each family in
# both and their largest difference, and per facet atom whether the atom matched to it (within
# 1 A) lies on a facet of the same family, both ways.
#   benchmarks/facet_accuracy.sh [PHANTOM...]   (default: au-octahedron pt-cuboctahedron-309
#                                                ag-wulff w-bcc-rhombic)
set -euo pipefail
aet=$(realpath "${AET:-./build/bin/aet}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
phantoms=("$@")
[ ${#phantoms[@]} -gt 0 ] || phantoms=(au-octahedron pt-cuboctahedron-309 ag-wulff w-bcc-rhombic)
for ph in "${phantoms[@]}"; do
  "$aet" pipeline --phantom "$ph" --out "$tmp/$ph" --quiet --no-report
  "$aet" analyze --atoms "$tmp/$ph/truth.xyz" --out "$tmp/$ph/truth_analysis" --no-volumes --quiet
  "${PYTHON:-python3}" - "$tmp/$ph" "$ph" <<'PY'
import json, math, sys
run, name = sys.argv[1], sys.argv[2]

def read(path):
    lines = open(path).read().splitlines()
    props = lines[1].split("Properties=")[1].split()[0].split(":")
    col, k = {}, 0
    for i in range(0, len(props), 3):
        col[props[i]] = k
        k += int(props[i + 2])
    atoms = []
    for row in (l.split() for l in lines[2:]):
        pos = tuple(float(row[col["pos"] + j]) for j in range(3))
        on = int(float(row[col["facet"]])) >= 0
        hkl = tuple(sorted(abs(int(float(row[col["facet_" + c]]))) for c in "hkl"))
        atoms.append((pos, hkl if on else None))
    return atoms

def same_family(a, b):
    n = ok = 0
    for p, fam in a:
        if fam is None:
            continue
        n += 1
        near = min(b, key=lambda s: math.dist(p, s[0]))
        ok += math.dist(p, near[0]) < 1.0 and near[1] == fam
    return ok, n

final, truth = read(run + "/atoms.xyz"), read(run + "/truth_analysis/atoms.xyz")
a = json.load(open(run + "/analysis.json"))["facets"]
t = json.load(open(run + "/truth_analysis/analysis.json"))["facets"]
e = json.load(open(run + "/metrics.json"))["evaluation"]
fams = sorted(set(a["area_fraction"]) | set(t["area_fraction"]))
diff = max(abs(a["area_fraction"].get(f, 0) - t["area_fraction"].get(f, 0)) for f in fams)
ok1, n1 = same_family(truth, final)
ok2, n2 = same_family(final, truth)
print(f"| {name} | {e['recall']:.4f} / {e['precision']:.4f} / {e['rmsd_pm']:.2f} pm | "
      f"{a['count']} / {t['count']} | "
      + ", ".join(f"{f} {a['area_fraction'].get(f, 0):.3f} / {t['area_fraction'].get(f, 0):.3f}"
                  for f in fams)
      + f" | {100 * diff:.1f} | {ok1}/{n1} | {ok2}/{n2} |")
PY
done
