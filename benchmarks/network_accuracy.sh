#!/usr/bin/env bash
# Effect of the missing-wedge network on `aet pipeline`: each held-out particle (catalogue
# phantoms, simulation seeds that training never used) at +-60 and +-70 degrees, scored against
# the simulator's truth with and without the network in the same run (metrics.json holds both).
# The traced model is what the network changes; the final model is the traced one refined against
# the views (pipeline default), scored for both chains. Prints a Markdown table and writes each
# run under OUT (default: bench-network/).
#   benchmarks/network_accuracy.sh [OUT]      (run from the project root after building)
#   MODEL=FILE to score another model than the shipped one; EXTRA="--flips 1" for one pass of the
#   network instead of the default 8 flip-averaged passes; SET=seeds for two more seeds of each Fe
#   and FePt configuration (the table's seeds and training's never overlap with these); SET=hard
#   for narrower tilt ranges, lower doses and a coarser step; SET=selection for the runs that
#   candidate models and options are chosen on (networks/models/README.md).
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-network}
mkdir -p "$out"
model_arg=()
if [[ -n "${MODEL:-}" ]]; then model_arg=(--model "$MODEL"); fi
echo "| phantom | tilt range | seed | atoms | RMSD pm without / with | change | surface recall % without / with | precision % without / with | recall % without / with | refined RMSD pm without / with | change | refined precision % without / with |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
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
      f"{pct(o['precision'])} / {pct(w['precision'])} | {pct(o['recall'])} / {pct(w['recall'])} | ",
      end="")
rw, ro = m.get("evaluation_refined"), m.get("evaluation_refined_without_network")
if rw and ro:
    print(f"{ro['rmsd_pm']:.2f} / {rw['rmsd_pm']:.2f} | {100*(rw['rmsd_pm']/ro['rmsd_pm']-1):+.1f} % | "
          f"{pct(ro['precision'])} / {pct(rw['precision'])} |")
else:
    print("n/a | n/a | n/a |")
PY
}
if [[ "${SET:-floor}" == selection ]]; then  # the runs later candidates are chosen on
  run fe-bcc-sphere Fe -60:60:3 9105
  run fept-l10 Fe,Pt -70:70:3 9106
  run demo Pt -60:60:3 9107
  run au-octahedron Au -70:70:3 9108
  run fe-bcc-sphere Fe -70:70:2 9109
  exit 0
fi
if [[ "${SET:-floor}" == hard ]]; then  # narrower tilt ranges, lower doses, a coarse step
  run demo Pt -55:55:3 9401
  run fept-l10 Fe,Pt -55:55:3 9402
  EXTRA="${EXTRA:-} --dose 20000" run fe-bcc-sphere Fe -60:60:3 9403
  EXTRA="${EXTRA:-} --dose 10000" run demo Pt -60:60:3 9404
  run au-octahedron Au -55:55:4 9405
  run co-hcp-sphere Co -60:60:3 9406
  exit 0
fi
if [[ "${SET:-floor}" == seeds ]]; then
  for s in 9206 9306; do run fept-l10 Fe,Pt -60:60:3 $s; done
  for s in 9205 9305; do run fe-bcc-sphere Fe -70:70:3 $s; done
  for s in 9210 9310; do run fept-l10 Fe,Pt -70:70:3 $s; done
  exit 0
fi
run demo Pt -70:70:3 9001
run demo Pt -60:60:3 9002
run au-octahedron Au -60:60:3 9003
run pt-random Pt -70:70:3 9004
run fe-bcc-sphere Fe -70:70:3 9005
run fept-l10 Fe,Pt -60:60:3 9006
run fept-l10 Fe,Pt -70:70:3 110  # pipeline_accuracy.sh's FePt run, where one pass invented atoms
