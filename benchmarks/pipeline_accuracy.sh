#!/usr/bin/env bash
# Accuracy of `aet pipeline` on simulated particles (shapes, elements, seeds and tilt ranges the
# tests do not use), scored against the simulator's truth. Prints a Markdown table row per run
# and writes the metrics of each run under OUT (default: bench-accuracy/). Accuracy columns are
# those of the final model (refined against the views; the traced model's RMSD beside it).
#   benchmarks/pipeline_accuracy.sh [OUT]      (run from the project root after building)
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-accuracy}
mkdir -p "$out"
echo "| phantom | elements | tilt range | seed | atoms | recall % | precision % | RMSD pm (traced) | surface recall % | species acc. % | R1 | time s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
run() {  # phantom elements tilt-range seed
  local dir="$out/$1_${3//:/_}_s$4"
  "$aet" pipeline --phantom "$1" --elements "$2" --tilt-range="$3" --seed "$4" --quiet \
    --out "$dir" ${EXTRA:-}
  python3 - "$dir/metrics.json" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); t = m["evaluation"]; e = m.get("evaluation_refined", t)
pct = lambda x: "n/a" if x is None else f"{100*x:.2f}"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {e['truth_atoms']} | "
      f"{pct(e['recall'])} | {pct(e['precision'])} | {e['rmsd_pm']:.1f} ({t['rmsd_pm']:.1f}) | "
      f"{pct(e['surface_recall'])} | "
      f"{pct(e['species_accuracy'])} | {m['r1']:.3f} | {m['seconds']['total']:.0f} |")
PY
}
run demo Pt -70:70:3 0
run demo Pt -60:60:3 101
run au-sphere Au -70:70:3 102
run au-octahedron Au -60:60:2 103
run ag-wulff Ag -65:65:3 104
run pd-cube Pd -70:70:3 105
run pt-random Pt -70:70:3 106
run pt-vacancies Pt -60:60:3 107
run co-hcp-sphere Co -70:70:3 108
run fe-bcc-sphere Fe -70:70:3 109
run fept-l10 Fe,Pt -70:70:3 110
run pt-large Pt -60:60:3 111
run au-decahedron Au -60:60:3 112
