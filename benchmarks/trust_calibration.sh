#!/usr/bin/env bash
# Calibration of the refinement's trust per atom (docs/refinement.md, "Trust per atom"): each
# simulated particle (the analytic simulator: probe tail, background, Poisson noise) goes through
# `aet pipeline` (no network, no refinement), its traced atoms are refined by `aet refine` with the
# pipeline's classification and position prior and a bootstrap, the refined model is registered
# onto the truth by `aet evaluate`, and benchmarks/trust_match.py matches the atoms one to one
# (as the evaluation does) and counts the (atom, axis) pairs whose true error is within 2 sigma,
# for the curvature's sigma, the bootstrap's, their quadrature sum and the larger of the two
# (the reported one).
# Prints a Markdown table and writes each run under OUT.
#   benchmarks/trust_calibration.sh [OUT]        (run from the project root after building)
#   BOOTSTRAP=N replicates (default 20)
set -euo pipefail
aet=${AET:-./build/bin/aet}
out=${1:-bench-trust}
boot=${BOOTSTRAP:-20}
here=$(dirname "$0")
mkdir -p "$out"
echo "| phantom | tilts | dose | seed | matched | within 2 sigma: curvature | bootstrap | quadrature sum | larger | reported | median sigma x y z (pm) | RMS error x y z (pm) | weak |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
run() {  # phantom elements tilt-range dose seed
  local dir="$out/$1_${3//:/_}_d$4_s$5"
  "$aet" pipeline --phantom "$1" --elements "$2" --tilt-range="$3" --dose "$4" --seed "$5" \
    --no-network --no-refine --no-analysis --no-report --quiet --out "$dir"
  "$aet" refine --tilts "$dir/tilts.mrc" --angles "$dir/tilts.tlt" --atoms "$dir/atoms.xyz" \
    --elements "$2" --position-prior 0.05 --bootstrap "$boot" --seed "$5" --quiet \
    --out "$dir/refined"
  "$aet" evaluate --traced "$dir/refined/refined.xyz" --truth "$dir/truth.xyz" \
    --out "$dir/refined/evaluation.json" --quiet >/dev/null
  echo "| $1 | $3 | $4 | $5 | $(python3 "$here/trust_match.py" "$dir/refined/refined.xyz" \
    "$dir/truth.xyz" "$dir/refined/evaluation.json") |"
}
run demo Pt -70:70:3 5e4 9401
run demo Pt -70:70:3 5e3 9402
run pt-random Pt -60:60:3 5e4 9403
run pt-random Pt -60:60:3 5e3 9404
