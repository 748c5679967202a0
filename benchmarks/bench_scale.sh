#!/usr/bin/env bash
# The default `aet pipeline` at the field's scale: the catalogue's ta-amorphous-20k (20,000 Ta
# atoms, random dense packing, radius 44.6 A) simulated by `aet simulate` (60 views over +-70.8
# degrees, 290 x 290 pixels of 0.35 A, dose 5e4, 10 % probe tail, 5 % background) and given to
# `aet pipeline` as a user's series (--tilts, --angles, --truth, --elements Ta), so that it runs
# everything a user's series gets by default: the alignment (its half-resolution check, per-view
# angles), RESIRE, the network, tracing, refinement, the analysis and the report. Prints the wall
# time, each stage's seconds from metrics.json, the process's CPU time and the accuracy against
# the truth.
#   benchmarks/bench_scale.sh [PHANTOM]   (default ta-amorphous-20k; ta-amorphous-2k takes minutes)
#   THREADS=N (default 2), OUT=DIR keeps the outputs (default: a temporary folder), AET=binary.
# Run from the project root after building; docs/benchmarks.md ("Scale") has the measured runs.
set -euo pipefail
aet=${AET:-./build/bin/aet}
phantom=${1:-ta-amorphous-20k}
threads=${THREADS:-2}
if [[ -n "${OUT:-}" ]]; then
  out=$OUT
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
"$aet" simulate --phantom "$phantom" --tilt-range -70.8:70.8:2.4 --out "$out/series" \
  --threads "$threads" --quiet
run=("$aet" pipeline --tilts "$out/series/tilts.mrc" --angles "$out/series/tilts.tlt"
  --elements Ta --out "$out/pipeline" --threads "$threads")
echo "phantom $phantom, $(nproc) CPUs, threads $threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "${run[*]}"
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -f "%e %U %S %M" -o "$out/time" "${run[@]}" >"$out/log" 2>&1 ||
    { tail -20 "$out/log" >&2; exit 1; }
  read -r wall user sys kb <"$out/time"
  echo "wall ${wall} s, CPU ${user} s user + ${sys} s system, peak memory $((kb / 1024)) MiB"
else
  t0=$(date +%s.%N)
  "${run[@]}" >"$out/log" 2>&1 || { tail -20 "$out/log" >&2; exit 1; }
  echo "wall $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
fi
echo "load average after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/pipeline/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("| stage | seconds |")
print("|---|---|")
for stage, s in m["seconds"].items():
    print(f"| {stage} | {s:.1f} |")
al = m.get("alignment") or {}
print(f"alignment: already aligned {al.get('already_aligned')}, angles deferred "
      f"{al.get('angles_deferred')}, images moved {al.get('angle_change_px', 0):.3f} px, "
      f"angles kept {al.get('angles_kept')}")
net = m["network"]
print(f"network: used {net['used']}, flips {net['flips']} (auto {net.get('flips_auto')})")
print(f"traced atoms {m['traced_atoms']}, R1 {m['r1']:.4f}")
for w in m.get("warnings", []):
    print("warning:", w)
PY
for model in traced atoms; do
  [[ -f "$out/pipeline/$model.xyz" ]] || continue
  "$aet" evaluate --traced "$out/pipeline/$model.xyz" --truth "$out/series/truth.xyz" \
    --out "$out/$model.json" >/dev/null
  python3 - "$out/$model.json" "$model" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}.xyz against the truth: recall {100 * e['recall']:.2f} %, "
      f"precision {100 * e['precision']:.2f} %, RMSD {e['rmsd_pm']:.2f} pm")
PY
done
