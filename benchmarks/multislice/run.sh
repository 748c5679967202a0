#!/usr/bin/env bash
# aet on the multislice-simulated series (simulate.py): for each case and dose, plain
# `aet reconstruct` + `aet trace` (baseline), `aet pipeline` with defaults and with --no-align,
# each scored by `aet evaluate` against the truth (MODES may add `tail`: --no-align --probe-tail). Prints a Markdown table; every run's files stay
# under RUNS (default benchmarks/multislice/runs/). Run from the project root after building:
#   benchmarks/multislice/run.sh                      all cached cases, all doses
#   CASES="pt_to201" DOSES="5e+04" benchmarks/multislice/run.sh
# The cases must be simulated first (benchmarks/multislice/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
aet=${AET:-$PWD/build/bin/aet}
cache=${CACHE:-$here/cache}
runs=${RUNS:-$here/runs}
[[ -x $aet ]] || { echo "run.sh: $aet not found (build first, run from the project root)" >&2; exit 2; }
cases=${CASES:-$(cd "$cache" && ls -d */ 2>/dev/null | tr -d /)}
[[ -n $cases ]] || { echo "run.sh: no simulated case in $cache (run simulate.py)" >&2; exit 2; }
modes=${MODES:-"baseline pipeline no-align"}
nice_=(nice -n "${NICE:-10}")

echo "| case | dose e/A^2 | run | atoms written / true | recall % | precision % | RMSD pm | R1 recon / model | warnings | time s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in $cases; do
  if [[ ! -f $cache/$c/noiseless.mrc ]]; then
    echo "run.sh: $cache/$c is not completely simulated (run simulate.py $c); skipped" >&2
    continue
  fi
  truth=$cache/$c/truth.xyz
  tlt=$cache/$c/tilts.tlt
  elements=$(python3 -c "
import sys
lines = open(sys.argv[1]).read().split('\n')
print(','.join(sorted({l.split()[0] for l in lines[2:2 + int(lines[0])]})))" "$truth")
  doses=${DOSES:-$(cd "$cache/$c" && ls -d dose_* | sed 's/dose_//' | sort -g -r)}
  for d in $doses; do
    tilts=$cache/$c/dose_$d/tilts.mrc
    [[ $d == noiseless ]] && tilts=$cache/$c/noiseless.mrc
    for mode in $modes; do
      dir=$runs/$c/$d/$mode
      rm -rf "$dir"
      mkdir -p "$(dirname "$dir")"
      t0=$(date +%s.%N)
      set +e
      case $mode in
        baseline)
          mkdir -p "$dir" &&
            "${nice_[@]}" "$aet" reconstruct --tilts "$tilts" --angles "$tlt" --out "$dir/reconstruction.mrc" \
              --quiet 2>"$dir/stderr.txt" &&
            "${nice_[@]}" "$aet" trace --volume "$dir/reconstruction.mrc" --out "$dir/atoms.xyz" \
              --elements "$elements" --quiet 2>>"$dir/stderr.txt"
          rc=$? ;;
        pipeline | no-align | tail)
          extra=()
          [[ $mode == no-align ]] && extra=(--no-align)
          [[ $mode == tail ]] && extra=(--no-align --probe-tail)
          "${nice_[@]}" "$aet" pipeline --tilts "$tilts" --angles "$tlt" --elements "$elements" \
            --out "$dir" --quiet "${extra[@]}" 2>"$runs/$c/$d/$mode.stderr.txt"
          rc=$?
          [[ -d $dir ]] && mv "$runs/$c/$d/$mode.stderr.txt" "$dir/stderr.txt" ;;
      esac
      set -e
      t1=$(date +%s.%N)
      if [[ $rc -ne 0 || ! -s $dir/atoms.xyz ]]; then
        echo "| $c | $d | $mode | exit $rc | | | | | | |"
        continue
      fi
      "$aet" evaluate --traced "$dir/atoms.xyz" --truth "$truth" --out "$dir/evaluation.json" --quiet >/dev/null
      python3 - "$dir" "$c" "$d" "$mode" "$t0" "$t1" <<'PY'
import json, os, sys
d, case, dose, mode, t0, t1 = sys.argv[1:]
e = json.load(open(os.path.join(d, "evaluation.json")))
n = int(open(os.path.join(d, "atoms.xyz")).readline())
if mode == "baseline":
    r1, r1m = json.load(open(os.path.join(d, "reconstruction.json")))["r1"][-1], None
    warns = [l for l in open(os.path.join(d, "stderr.txt")) if "warning" in l.lower()]
else:
    m = json.load(open(os.path.join(d, "metrics.json")))
    r1, warns = m["r1"], m["warnings"]
    ref = m.get("refinement")
    r1m = ref.get("r1_final") if isinstance(ref, dict) and ref.get("kept", True) else None
pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}"
w = "; ".join(str(x).strip() for x in warns)
w = f"{len(warns)}: {w[:90]}" + ("..." if len(w) > 90 else "") if warns else "0"
print(f"| {case} | {dose} | {mode} | {n} / {e['truth_atoms']} | {pct(e['recall'])} | "
      f"{pct(e['precision'])} | {e['rmsd_pm']:.1f} | {r1:.3f} / {'-' if r1m is None else f'{r1m:.3f}'} | {w} | {float(t1) - float(t0):.0f} |")
PY
    done
  done
done
