#!/usr/bin/env bash
# Effect of the missing-wedge network on `aet pipeline`: each held-out particle (catalogue
# phantoms, simulation seeds that training never used) at +-60 and +-70 degrees, scored against
# the simulator's truth with and without the network in the same run (metrics.json holds both).
# Prints a Markdown table and writes each run under OUT (default: bench-network/).
#   benchmarks/network_accuracy.sh [OUT]      (run from the project root after building)
#   MODEL=FILE to score another model than the shipped one; EXTRA="--flips 1" for one pass of the
#   network instead of the default 8 flip-averaged passes.
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-network}
mkdir -p "$out"
model_arg=()
if [[ -n "${MODEL:-}" ]]; then model_arg=(--model "$MODEL"); fi
echo "| phantom | tilt range | seed | atoms | RMSD pm without / with | change | surface recall % without / with | precision % without / with | recall % without / with |"
echo "|---|---|---|---|---|---|---|---|---|"
run() {  # phantom elements tilt-range seed
  local dir="$out/$1_${3//:/_}_s$4"
  "$aet" pipeline --phantom "$1" --elements "$2" --tilt-range="$3" --seed "$4" --quiet \
    --out "$dir" "${model_arg[@]}" ${EXTRA:-}
  python3 - "$dir/metrics.json" "$1" "$3" "$4" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
w, o = m["evaluation"], m["evaluation_without_network"]
pct = lambda x: "n/a" if x is None else f"{100*x:.2f}"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {w['truth_atoms']} | "
      f"{o['rmsd_pm']:.2f} / {w['rmsd_pm']:.2f} | {100*(w['rmsd_pm']/o['rmsd_pm']-1):+.1f} % | "
      f"{pct(o['surface_recall'])} / {pct(w['surface_recall'])} | "
      f"{pct(o['precision'])} / {pct(w['precision'])} | {pct(o['recall'])} / {pct(w['recall'])} |")
PY
}
run demo Pt -70:70:3 9001
run demo Pt -60:60:3 9002
run au-octahedron Au -60:60:3 9003
run pt-random Pt -70:70:3 9004
run fe-bcc-sphere Fe -70:70:3 9005
run fept-l10 Fe,Pt -60:60:3 9006
run fept-l10 Fe,Pt -70:70:3 110  # pipeline_accuracy.sh's FePt run, where one pass invented atoms
