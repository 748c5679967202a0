#!/usr/bin/env bash
# Speed of `aet analyze` (docs/analysis.md): an fcc Pt sphere of about N atoms (default 20000),
# 1 % strained along x with 0.05 A jitter, analysed with the default options (volumes at 1 A) and
# with --no-volumes; wall time, CPU time (user + system, what a shared machine's load does not
# inflate) and peak resident memory per run.
#   benchmarks/bench_analyze.sh [N ...]     (run from the project root after building)
set -euo pipefail
aet=${AET:-./build/bin/aet}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| atoms | options | seconds | CPU seconds | peak memory MiB |"
echo "|---|---|---|---|---|"
for n in "${@:-20000}"; do
  "${PYTHON:-/usr/bin/python3}" - "$tmp/in.xyz" "$n" <<'PY'
import sys, numpy as np
n, a = int(sys.argv[2]), 3.924
r = a * (3 * n / (16 * np.pi)) ** (1 / 3)  # 4 atoms per a^3 in a sphere of radius r
m = int(np.ceil(r / a)) + 1
g = np.arange(-m, m + 1)
cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
basis = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
p = (cells[:, None, :] + basis[None]).reshape(-1, 3) * a
p = p[np.linalg.norm(p, axis=1) <= r]
p[:, 0] *= 1.01
p += np.random.default_rng(1).normal(0, 0.05, p.shape)
with open(sys.argv[1], "w") as f:
    f.write(f"{len(p)}\n\n" + "".join(f"Pt {x:.5f} {y:.5f} {z:.5f}\n" for x, y, z in p))
PY
  atoms=$(head -1 "$tmp/in.xyz")
  for opts in "" "--no-volumes"; do
    rm -rf "$tmp/out"
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$aet" analyze --quiet --atoms "$tmp/in.xyz" \
      --out "$tmp/out" $opts
    read -r secs user sys kib <"$tmp/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
    echo "| $atoms | ${opts:-defaults} | $secs | $cpu | $((kib / 1024)) |"
  done
done
