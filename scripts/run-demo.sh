#!/usr/bin/env bash
# The main job: install, build, and run the whole pipeline on the built-in demo nanoparticle
# (fcc Pt, ~800 atoms, +-70 deg in 3 deg steps, Poisson noise, probe tail, smooth background):
# simulate, reconstruct (RESIRE), trace, and score against the truth. Writes ./demo-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=${1:-demo-run}
./build/bin/aet pipeline --out "$out"
cat "$out/metrics.json"
