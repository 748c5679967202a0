#!/usr/bin/env bash
# MPI-distributed RESIRE (docs/hpc.md): a 128^3 x 60-view single-axis series (the pt-large particle,
# noise-free), 10 iterations, as one process with 1 and with 2 threads and as `mpirun -np 2`
# ranks of 1 thread each (slab mode); then the same views about an axis tilted by 4 degrees (view
# mode: the update volume is summed over the ranks every iteration). Seconds per iteration from
# each run's own solve time (reconstruct json `seconds` / 10), the CPU seconds of the whole run
# (user + system of every process, which a shared machine's load does not inflate as it does the
# wall time), the load average before each run, and the R1 of each (runs on one series must
# agree); then GENFIRE, whose gridding the ranks split. Run from the project root after building,
# on an otherwise quiet machine.
#   benchmarks/bench_mpi.sh [N_RANKS]      (default 2)
set -euo pipefail
aet=$(realpath "${AET:-./build/bin/aet}")
ranks=${1:-2}
iters=10
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
"$aet" simulate --phantom pt-large --size 128 --tilt-range -70.8:70.8:2.4 --dose 0 --quiet \
  --out "$tmp/sim"
run() {  # label, json, command...: runs the command, then prints its row
  local label=$1 json=$2 load
  shift 2
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$@"
  "${PYTHON:-/usr/bin/python3}" - "$label" "$json" "$iters" "$load" "$tmp/time" <<'PY'
import json, sys
label, path, iters, load, tfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
j = json.load(open(path))
user, system = map(float, open(tfile).read().split()[-2:])
print(f"| {label} | {j['seconds'] / iters:.3f} | {user + system:.1f} | {j['r1_final']:.6f} | {load} |")
PY
}
awk 'BEGIN { for (k = 0; k < 60; ++k) printf "4 %.1f 0\n", -70.8 + 2.4 * k }' >"$tmp/euler.txt"
"$aet" simulate --phantom pt-large --size 128 --angles "$tmp/euler.txt" --dose 0 --quiet \
  --out "$tmp/tilted"
echo "| series | run | s / iteration | CPU s (run) | R1 | load before |"
echo "|---|---|---|---|---|---|"
for series in sim tilted; do
  angles="$tmp/$series/tilts.tlt"
  mode="single axis (slab mode)"
  if [[ $series == tilted ]]; then angles="$tmp/tilted/angles.txt"; mode="tilted axis (view mode)"; fi
  in=(reconstruct --tilts "$tmp/$series/tilts.mrc" --angles "$angles" --iterations $iters --quiet)
  run "$mode | 1 process, 1 thread" "$tmp/t1.json" "$aet" "${in[@]}" --threads 1 --out "$tmp/t1.mrc"
  run "$mode | 1 process, 2 threads" "$tmp/t2.json" "$aet" "${in[@]}" --threads 2 \
    --out "$tmp/t2.mrc"
  run "$mode | mpirun -np $ranks, 1 thread each" "$tmp/mpi.json" mpirun -np "$ranks" \
    --oversubscribe --bind-to none "$aet" "${in[@]}" --threads 1 --out "$tmp/mpi.mrc"
done
# GENFIRE: its gridding is split over the ranks by views, its iterations run on rank 0. Seconds of
# the gridding (its log line) and of the whole solve, single-axis series.
echo
echo "| GENFIRE, single axis | gridding s | solve s | CPU s (run) | R1 | load before |"
echo "|---|---|---|---|---|---|"
genfire() {  # label, command...
  local label=$1 load
  shift
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$@" --verbose 2>"$tmp/log"
  "${PYTHON:-/usr/bin/python3}" - "$label" "$tmp/g.json" "$load" "$tmp/time" "$tmp/log" <<'PY'
import json, re, sys
label, path, load, tfile, log = sys.argv[1:6]
j = json.load(open(path))
user, system = map(float, open(tfile).read().split()[-2:])
grid = float(re.search(r"gridded in ([0-9.]+) s", open(log).read()).group(1))
print(f"| {label} | {grid:.2f} | {j['seconds']:.2f} | {user + system:.1f} | {j['r1_final']:.6f} | {load} |")
PY
}
in=(reconstruct --tilts "$tmp/sim/tilts.mrc" --angles "$tmp/sim/tilts.tlt" --algorithm genfire
  --iterations $iters --out "$tmp/g.mrc")
genfire "1 process, 1 thread" "$aet" "${in[@]}" --threads 1
genfire "1 process, 2 threads" "$aet" "${in[@]}" --threads 2
genfire "mpirun -np $ranks, 1 thread each" mpirun -np "$ranks" --oversubscribe --bind-to none \
  "$aet" "${in[@]}" --threads 1
