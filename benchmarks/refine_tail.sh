#!/usr/bin/env bash
# Cost and effect of the refinement's probe tail (`aet refine --probe-tail`): a particle simulated
# by `aet simulate` (its 10 % probe tail at 4 A, dose 5e4), its true atoms displaced by 0.1 A per
# axis (as a trace leaves them), refined against the views with one Gaussian per atom and with
# the tail, each scored against the truth. Prints a Markdown table; the runs stay under OUT.
#   benchmarks/refine_tail.sh [OUT]          (run from the project root after building)
#   PHANTOMS="ta-amorphous-2k demo" to choose the particles
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-refine-tail}
mkdir -p "$out"
echo "| phantom | atoms | views | refinement | tail (amplitude at width) | R1 start -> end | RMSD pm | seconds |"
echo "|---|---|---|---|---|---|---|---|"
for phantom in ${PHANTOMS:-ta-amorphous-2k demo}; do
  dir="$out/$phantom"
  rm -rf "$dir"
  "$aet" simulate --phantom "$phantom" --out "$dir/sim" --quiet
  python3 - "$dir/sim/truth.xyz" "$dir/start.xyz" <<'PY'
import random, sys
random.seed(3)
lines = open(sys.argv[1]).read().split("\n")
n = int(lines[0])
out = lines[:2]
for l in lines[2:2 + n]:
    f = l.split()
    for k in (1, 2, 3):
        f[k] = "%.5f" % (float(f[k]) + random.gauss(0, 0.1))
    out.append(" ".join(f))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
  for mode in one-gaussian probe-tail; do
    extra=()
    [[ $mode == probe-tail ]] && extra=(--probe-tail)
    t0=$(date +%s.%N)
    "$aet" refine --tilts "$dir/sim/tilts.mrc" --angles "$dir/sim/tilts.tlt" --atoms "$dir/start.xyz" \
      --out "$dir/$mode" --quiet "${extra[@]}"
    t1=$(date +%s.%N)
    "$aet" evaluate --traced "$dir/$mode/refined.xyz" --truth "$dir/sim/truth.xyz" --no-register \
      --out "$dir/$mode/evaluation.json" --quiet >/dev/null
    python3 - "$dir" "$phantom" "$mode" "$t0" "$t1" <<'PY'
import json, os, sys
d, phantom, mode, t0, t1 = sys.argv[1:]
r = json.load(open(os.path.join(d, mode, "refine.json")))
e = json.load(open(os.path.join(d, mode, "evaluation.json")))
t = r.get("probe_tail")
tail = f"{t['amplitude']:.3f} at {t['width_angstrom']:.2f} A" if t else "-"
print(f"| {phantom} | {r['atoms']} | {r['views']} | {mode} | {tail} | "
      f"{r['r1'][0]:.4f} -> {r['r1'][-1]:.4f} | {e['rmsd_pm']:.2f} | {float(t1) - float(t0):.1f} |")
PY
  done
done
