#!/usr/bin/env bash
# The main job: install, build, and run aet on the built-in demo nanoparticle (fcc Pt, ~800
# atoms). Writes ./demo-run/. Until `aet pipeline` exists this is the tilt-series simulation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=${1:-demo-run}
./build/bin/aet simulate --phantom demo --target --out "$out"
./build/bin/aet info "$out/tilts.mrc" "$out/tilts.tlt" "$out/truth.xyz"
