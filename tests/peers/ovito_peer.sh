#!/usr/bin/env bash
# Peer test of `aet analyze` against OVITO (tests/peers/ovito_peer.py): structure types,
# coordination, lattice orientation and surface atoms of catalogue phantoms and two jittered,
# turned spheres. Skips (exit 77) when no Python here imports ovito.
#   tests/peers/ovito_peer.sh BUILD_DIR      (the aet binary is BUILD_DIR/bin/aet)
# The Python: $AET_OVITO_PYTHON, else BUILD_DIR/peers/bin/python (scripts/setup.sh --tests makes
# that venv), else python3.
set -euo pipefail
build=$(cd "${1:?usage: ovito_peer.sh BUILD_DIR}" && pwd)
aet="$build/bin/aet"
here=$(cd "$(dirname "$0")" && pwd)

py=""
for cand in "${AET_OVITO_PYTHON:-}" "$build/peers/bin/python" python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import ovito' >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "SKIP: no Python imports ovito (tried AET_OVITO_PYTHON=${AET_OVITO_PYTHON:-(unset)}," \
    "$build/peers/bin/python, python3; scripts/setup.sh --tests installs it in $build/peers)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only truth.xyz is used: one noise-free 16-pixel view keeps the simulation cheap.
sim=(--tilt-range 0:0:1 --size 16 --dose 0 --quiet)
# pt-twinned: a Pt particle twinned on a (111) plane, two fcc grains.
phantoms="pt-sphere fe-bcc-sphere co-hcp-sphere demo ag-wulff ta-amorphous-2k pt-twinned"

models=()
model() {  # model NAME PHANTOM [simulate options]: simulate, analyse, queue for the peer
  local name=$1 phantom=$2
  shift 2
  "$aet" simulate --phantom "$phantom" --out "$tmp/sim-$name" "${sim[@]}" "$@"
  "$aet" analyze --atoms "$tmp/sim-$name/truth.xyz" --out "$tmp/$name" --no-volumes --quiet
  models+=("$name=$tmp/$name")
}
for p in $phantoms; do model "$p" "$p"; done
# The catalogue's thermal jitter (0.05 A) on turned crystals: orientations that are not the
# identity, and bonds that are not exact.
model pt-sphere-jitter pt-sphere --jitter 0.05 --random-orientation --seed 7
model fe-bcc-sphere-jitter fe-bcc-sphere --jitter 0.05 --random-orientation --seed 5

rc=0
"$py" "$here/ovito_peer.py" "${models[@]}" || rc=$?
exit $rc
