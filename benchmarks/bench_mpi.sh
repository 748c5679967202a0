#!/usr/bin/env bash
# MPI-distributed RESIRE (docs/hpc.md): a 128^3 x 60-view single-axis series (the pt-large particle,
# noise-free), 10 iterations, as one process with 1 and with 2 threads and as `mpirun -np 2`
# ranks of 1 thread each (slab mode); then the same views about an axis tilted by 4 degrees (view
# mode: the update volume is summed over the ranks every iteration). Seconds per iteration from
# each run's own solve time (reconstruct json `seconds` / 10), the load average before each run,
# and the R1 of each (runs on one series must agree). Run from the project root after building,
# on an otherwise quiet machine.
#   benchmarks/bench_mpi.sh [N_RANKS]      (default 2)
set -euo pipefail
aet=$(realpath "${AET:-./build/bin/aet}")
ranks=${1:-2}
iters=10
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$aet" simulate --phantom pt-large --size 128 --tilt-range -70.8:70.8:2.4 --dose 0 --quiet \
  --out "$tmp/sim"
report() {  # label, json
  "${PYTHON:-/usr/bin/python3}" - "$1" "$2" "$iters" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
label, path, iters, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
j = json.load(open(path))
print(f"| {label} | {j['seconds'] / iters:.3f} | {j['r1_final']:.6f} | {load} |")
PY
}
awk 'BEGIN { for (k = 0; k < 60; ++k) printf "4 %.1f 0\n", -70.8 + 2.4 * k }' >"$tmp/euler.txt"
"$aet" simulate --phantom pt-large --size 128 --angles "$tmp/euler.txt" --dose 0 --quiet \
  --out "$tmp/tilted"
echo "| series | run | s / iteration | R1 | load before |"
echo "|---|---|---|---|---|"
for series in sim tilted; do
  angles="$tmp/$series/tilts.tlt"
  mode="single axis (slab mode)"
  if [[ $series == tilted ]]; then angles="$tmp/tilted/angles.txt"; mode="tilted axis (view mode)"; fi
  in=(reconstruct --tilts "$tmp/$series/tilts.mrc" --angles "$angles" --iterations $iters --quiet)
  "$aet" "${in[@]}" --threads 1 --out "$tmp/t1.mrc"
  report "$mode | 1 process, 1 thread" "$tmp/t1.json"
  "$aet" "${in[@]}" --threads 2 --out "$tmp/t2.mrc"
  report "$mode | 1 process, 2 threads" "$tmp/t2.json"
  mpirun -np "$ranks" --oversubscribe --bind-to none "$aet" "${in[@]}" --threads 1 \
    --out "$tmp/mpi.mrc"
  report "$mode | mpirun -np $ranks, 1 thread each" "$tmp/mpi.json"
done
