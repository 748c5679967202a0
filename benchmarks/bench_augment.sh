#!/usr/bin/env bash
# Network inference speed: `aet augment` of an n^3 volume (voxel 0.35 A, the shipped model's) with
# the default patching and with 64^3 patches; wall time and peak resident memory per run.
#   benchmarks/bench_augment.sh [N ...]     (default 128; run from the project root after building)
#   DEVICE=cuda:0 to time the GPU, MODEL=FILE for another model.
set -euo pipefail
aet=${AET:-./build/bin/aet}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model_arg=()
if [[ -n "${MODEL:-}" ]]; then model_arg=(--model "$MODEL"); fi
echo "| volume | patching | device | seconds | peak memory MiB |"
echo "|---|---|---|---|---|"
for n in "${@:-128}"; do
  python3 - "$tmp/v.mrc" "$n" <<'PY'
import sys, numpy as np, mrcfile
n = int(sys.argv[2])
v = np.random.default_rng(1).random((n, n, n), dtype=np.float32)
with mrcfile.new(sys.argv[1], overwrite=True) as m:
    m.set_data(v)
    m.voxel_size = 0.35
PY
  for patching in "" "--patch 64 --overlap 16"; do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$aet" augment --volume "$tmp/v.mrc" --out "$tmp/a.mrc" \
      --device "${DEVICE:-cpu}" --quiet "${model_arg[@]}" $patching
    read -r s kb < "$tmp/t"
    echo "| ${n}^3 | ${patching:-default (patch 128, overlap 32)} | ${DEVICE:-cpu} | $s | $((kb / 1024)) |"
  done
done
