#!/usr/bin/env bash
# How the missing-wedge network does on RESIRE inputs of different iteration counts: each
# held-out run is simulated once (`aet pipeline --no-network --no-refine` keeps its views and
# truth), reconstructed with every recipe in RECIPES, run through the network, traced and scored
# against the simulator's truth. This reproduces the pipeline's traced result for the recipe the
# model is given. Prints a Markdown table: RMSD pm with the network, change against the plain
# pipeline reconstruction (50 iterations), precision when below 100 %.
#   benchmarks/network_inputs.sh [OUT]        (run from the project root after building)
#   SET=selection (default): the runs models are chosen on (networks/models/README.md);
#   SET=seeds: two more seeds of each Fe and FePt configuration of network_accuracy.sh.
#   RECIPES="50:1 30:1 20:1" (iterations:step), MODEL=FILE (default: the shipped model),
#   LIMIT=N to do only the first N runs, SIM="--dose 200000" for other simulation options (use
#   another OUT for each: runs already in OUT are reused).
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-network-inputs}
recipes=(${RECIPES:-50:1 30:1})
model_arg=()
if [[ -n "${MODEL:-}" ]]; then model_arg=(--model "$MODEL"); fi
case "${SET:-selection}" in
  selection)
    runs=("fe-bcc-sphere Fe -60:60:3 9105" "fept-l10 Fe,Pt -70:70:3 9106" "demo Pt -60:60:3 9107"
          "au-octahedron Au -70:70:3 9108" "fe-bcc-sphere Fe -70:70:2 9109") ;;
  seeds)
    runs=("fept-l10 Fe,Pt -60:60:3 9206" "fept-l10 Fe,Pt -60:60:3 9306"
          "fe-bcc-sphere Fe -70:70:3 9205" "fe-bcc-sphere Fe -70:70:3 9305"
          "fept-l10 Fe,Pt -70:70:3 9210" "fept-l10 Fe,Pt -70:70:3 9310") ;;
  *) echo "network_inputs.sh: SET must be selection or seeds" >&2; exit 2 ;;
esac
mkdir -p "$out"
header="| phantom | tilt range | seed | without |"
rule="|---|---|---|---|"
for r in "${recipes[@]}"; do
  header+=" ${r%%:*} at step ${r#*:} |"
  rule+="---|"
done
echo "$header"
echo "$rule"
n=0
for run in "${runs[@]}"; do
  n=$((n + 1))
  if [[ -n "${LIMIT:-}" && $n -gt $LIMIT ]]; then break; fi
  read -r phantom elements range seed <<<"$run"
  dir="$out/${phantom}_${range//:/_}_s$seed"
  [[ -f "$dir/metrics.json" ]] ||
    "$aet" pipeline --phantom "$phantom" --elements "$elements" --tilt-range="$range" \
      --seed "$seed" --quiet --no-network --no-refine ${SIM:-} --out "$dir"
  plain=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['evaluation']['rmsd_pm'])" \
    "$dir/metrics.json")
  row="| $phantom | $range | $seed | $(printf %.2f "$plain") |"
  for r in "${recipes[@]}"; do
    tag="${r%%:*}_${r#*:}"
    "$aet" reconstruct --tilts "$dir/tilts.mrc" --angles "$dir/tilts.tlt" \
      --iterations "${r%%:*}" --step "${r#*:}" --quiet --out "$dir/rec_$tag.mrc"
    # A recipe other than the model's is the point here, so augment's warning is expected.
    "$aet" augment --volume "$dir/rec_$tag.mrc" --out "$dir/aug_$tag.mrc" "${model_arg[@]}" \
      --quiet 2>/dev/null
    "$aet" trace --volume "$dir/aug_$tag.mrc" --out "$dir/atoms_$tag.xyz" \
      --elements "$elements" --quiet
    "$aet" evaluate --traced "$dir/atoms_$tag.xyz" --truth "$dir/truth.xyz" --quiet \
      >"$dir/eval_$tag.json"
    row+=" $(python3 - "$dir/eval_$tag.json" "$plain" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
rmsd, plain = m["rmsd_pm"], float(sys.argv[2])
extra = "" if m["precision"] >= 1 else f", precision {100 * m['precision']:.2f} %"
print(f"{rmsd:.2f} ({100 * (rmsd / plain - 1):+.1f} %{extra})")
PY
) |"
  done
  echo "$row"
done
