#!/usr/bin/env bash
# A job array of N simulated series (default 20) through the local one-node Slurm cluster
# (tests/slurm/start.sh, as root): `aet submit series`, waited for with `aet submit --status`,
# every result collected. Prints the submission time, the wall time to the last task, the tasks'
# states and how many results hold a model of the particle. docs/hpc.md records it.
#   benchmarks/bench_slurm_array.sh [N]     (run from the project root after building)
set -euo pipefail
n=${1:-20}
aet=$(realpath "${AET:-./build/bin/aet}")
state=${AET_SLURM_DIR:-/tmp/aet-slurm-bench}
tmp=$(mktemp -d)
trap 'tests/slurm/stop.sh "$state" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
tests/slurm/start.sh "$state"
export SLURM_CONF="$state/slurm.conf"

# Small series: the 309-atom Pt cuboctahedron, 21 views, a different particle seed each.
for i in $(seq 1 "$n"); do
  "$aet" simulate --phantom pt-cuboctahedron-309 --tilt-range -60:60:6 --seed "$i" --quiet \
    --out "$tmp/s$i"
  echo "s$i/tilts.mrc s$i/tilts.tlt series$i" >>"$tmp/list.txt"
done

t0=$(date +%s.%N)
"$aet" submit series --list "$tmp/list.txt" --out "$tmp/jobs" --cpus 1 --time 10 -- \
  --elements Pt --no-align --no-network --no-analysis --no-report --iterations 20 --quiet
t1=$(date +%s.%N)
until "$aet" submit --status "$tmp/jobs" --json |
  python3 -c 'import json,sys; t=json.load(sys.stdin)["totals"]; sys.exit(t["pending"]+t["running"]>0)'; do
  sleep 1
done
t2=$(date +%s.%N)
"$aet" submit --status "$tmp/jobs" | tail -n 1
ok=0
for i in $(seq 1 "$n"); do
  atoms=$(head -n 1 "$tmp/jobs/results/series$i/atoms.xyz" 2>/dev/null || echo 0)
  [ "$atoms" -ge 290 ] && [ "$atoms" -le 330 ] && ok=$((ok + 1))
done
python3 -c "print(f'series: $n, submit: {$t1 - $t0:.2f} s, to the last task: {$t2 - $t1:.1f} s, '
             f'results with 290-330 atoms: $ok')"
