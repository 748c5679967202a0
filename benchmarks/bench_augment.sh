#!/usr/bin/env bash
# Network inference speed: `aet augment` of an n^3 volume (voxel 0.35 A, the shipped model's) with
# the default patching (the default 8 flip-averaged passes, and one pass) and with 64^3 patches;
# wall time, the network's own time (as aet augment logs it) and peak resident memory per run.
#   benchmarks/bench_augment.sh [N ...]     (default 128; run from the project root after building)
#   DEVICE=cuda:0 to time the GPU, MODEL=FILE for another model.
set -euo pipefail
aet=${AET:-./build/bin/aet}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model_arg=()
if [[ -n "${MODEL:-}" ]]; then model_arg=(--model "$MODEL"); fi
echo "| volume | patching, flips | device | seconds | inference s | peak memory MiB |"
echo "|---|---|---|---|---|---|"
for n in "${@:-128}"; do
  python3 - "$tmp/v.mrc" "$n" <<'PY'
# numpy alone (no mrcfile on the GPU machine): a minimal MRC2014 header, mode 2, voxel 0.35 A.
import sys, struct, numpy as np
n = int(sys.argv[2])
v = np.random.default_rng(1).random((n, n, n), dtype=np.float32)
h = bytearray(1024)
struct.pack_into("<10i6f3i3fi", h, 0, n, n, n, 2, 0, 0, 0, n, n, n, *(3 * [0.35 * n]),
                 90.0, 90.0, 90.0, 1, 2, 3, float(v.min()), float(v.max()), float(v.mean()), 1)
struct.pack_into("<i", h, 27 * 4, 20140)
h[208:212] = b"MAP "
h[212:214] = b"\x44\x44"
struct.pack_into("<fi", h, 216, float(v.std()), 0)
with open(sys.argv[1], "wb") as f:
    f.write(bytes(h) + v.tobytes())
PY
  patchings=("" "--flips 1" "--patch 64 --overlap 16")
  # On a GPU, whole-volume patches first (memory is not the limit there, and a time-limited run
  # should reach them).
  if [[ "${DEVICE:-cpu}" != cpu ]]; then
    patchings=("--patch $n --flips 1" "--patch $n" "${patchings[@]}")
  fi
  for patching in "${patchings[@]}"; do
    cmd=("$aet" augment --volume "$tmp/v.mrc" --out "$tmp/a.mrc" --device "${DEVICE:-cpu}"
      "${model_arg[@]}" $patching)
    if [[ -x /usr/bin/time ]]; then
      /usr/bin/time -f "%e %M" -o "$tmp/t" "${cmd[@]}" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
      read -r s kb < "$tmp/t"
      mib=$((kb / 1024))
    else  # no GNU time (the GPU machine): wall time only
      t0=$(date +%s.%N)
      "${cmd[@]}" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
      s=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
      mib="n/a"
    fi
    # The network alone, as aet augment reports it (without start-up, model loading and files).
    inf=$(sed -n 's/^wrote .* (\([0-9.e+-]*\) s)$/\1/p' "$tmp/log" | tail -1)
    echo "| ${n}^3 | ${patching:-default (patch 128, overlap 32, flips 8)} | ${DEVICE:-cpu} | $s | ${inf:-n/a} | $mib |"
  done
done
