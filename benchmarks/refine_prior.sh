#!/usr/bin/env bash
# Effect of the refinement's position prior (`aet refine --position-prior A`): each particle is
# run through `aet pipeline` once (network on, default options), and its traced atoms are refined
# against its views with each prior, classified again and scored against the simulator's truth.
# The selection runs (the network's selection seeds 9105-9109, and two FePt +-60 seeds) choose the
# default; the held-out runs were not looked at for it.
# Prints a Markdown table (RMSD in pm; precision and recall in %) and writes each run under OUT.
#   benchmarks/refine_prior.sh [OUT]        (run from the project root after building)
#   PRIORS="0 0.05 0.1" to set the priors tried (Angstrom; 0 = none)
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-refine-prior}
priors=(${PRIORS:-0 0.03 0.05 0.1 0.2})
mkdir -p "$out"
head="| set | phantom | tilt range | seed | traced |"
rule="|---|---|---|---|---|"
for p in "${priors[@]}"; do head="$head prior $p A |"; rule="$rule---|"; done
echo "$head"
echo "$rule"
cell() {  # metrics JSON [key]: RMSD (precision / recall) of the evaluation, or of m[key]
  python3 - "$@" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
e = e[sys.argv[2]] if len(sys.argv) > 2 else e
print(f"{e['rmsd_pm']:.2f} ({100 * e['precision']:.1f} / {100 * e['recall']:.1f})")
PY
}
run() {  # set phantom elements tilt-range seed
  local dir="$out/$2_${4//:/_}_s$5"
  "$aet" pipeline --phantom "$2" --elements "$3" --tilt-range="$4" --seed "$5" --quiet \
    --no-refine --out "$dir"
  local row="| $1 | $2 | $4 | $5 | $(cell "$dir/metrics.json" evaluation) |"
  for p in "${priors[@]}"; do
    "$aet" refine --tilts "$dir/tilts.mrc" --angles "$dir/tilts.tlt" --atoms "$dir/atoms.xyz" \
      --elements "$3" --position-prior "$p" --quiet --out "$dir/refined_$p"
    "$aet" evaluate --traced "$dir/refined_$p/refined.xyz" --truth "$dir/truth.xyz" \
      --out "$dir/refined_$p/evaluation.json" --quiet >/dev/null
    row="$row $(cell "$dir/refined_$p/evaluation.json") |"
  done
  echo "$row"
}
run selection fe-bcc-sphere Fe -60:60:3 9105
run selection fept-l10 Fe,Pt -70:70:3 9106
run selection demo Pt -60:60:3 9107
run selection au-octahedron Au -70:70:3 9108
run selection fe-bcc-sphere Fe -70:70:2 9109
run selection fept-l10 Fe,Pt -60:60:3 9206
run selection fept-l10 Fe,Pt -60:60:3 9306
run held-out fept-l10 Fe,Pt -60:60:3 9006
run held-out fept-l10 Fe,Pt -70:70:3 110
run held-out demo Pt -60:60:3 9002
run held-out demo Pt -70:70:3 9001
