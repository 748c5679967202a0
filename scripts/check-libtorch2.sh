#!/usr/bin/env bash
# The GPU machine's build, rehearsed on the developer machine before device time is spent on it:
# the CUDA LibTorch wheel from PyPI (by default 2.11.0, the version the GPU machine's python3 has)
# with the CUDA libraries it needs that the CUDA toolkit does not have (cuDNN, cuSPARSELt, NCCL,
# NVSHMEM, cuFile), unpacked in the wheels' own layout, which the libraries' $ORIGIN run paths
# expect. aet is then configured and built as scripts/device-check.sh does (CUDA, sm_90, tests),
# the network tests run on the CPU, and the shipped model's output is compared with the default
# build's. FULL=1 runs the whole test suite (GPU tests skip) instead of the network tests.
# Not part of CI: it downloads about 1.3 GB and builds aet again.
#   scripts/check-libtorch2.sh            (TORCH_VERSION=2.x.y, TORCH_DIR for the download)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${TORCH_VERSION:-2.11.0}
dir=${TORCH_DIR:-/tmp/aet-libtorch-$version}
site="$dir/site"
get() { pip download --no-deps --only-binary :all: -d "$dir/whl" "$@" >/dev/null; }
if [ ! -f "$site/torch/share/cmake/Torch/TorchConfig.cmake" ]; then
  mkdir -p "$dir/whl" "$site"
  get "torch==$version"
  meta=$(unzip -p "$dir"/whl/torch-"$version"-*.whl '*/METADATA')
  # The pinned NVIDIA wheels, and cuFile from the pinned CUDA toolkit's list.
  mapfile -t nvidia < <(sed -n 's/^Requires-Dist: \(nvidia-[a-z0-9-]*==[0-9.]*\);.*/\1/p' <<<"$meta")
  toolkit=$(sed -n 's/^Requires-Dist: cuda-toolkit\[.*\]==\([0-9.]*\);.*/\1/p' <<<"$meta")
  if [ -n "$toolkit" ]; then
    get "cuda-toolkit==$toolkit"
    cufile=$(unzip -p "$dir"/whl/cuda_toolkit-"$toolkit"-*.whl '*/METADATA' |
      sed -n "s/^Requires-Dist: \(nvidia-cufile==[0-9.*]*\);.*extra == 'cufile'.*/\1/p")
    [ -n "$cufile" ] && nvidia+=("$cufile")
  fi
  echo "LibTorch $version with ${nvidia[*]}"
  [ ${#nvidia[@]} -gt 0 ] && get "${nvidia[@]}"
  (cd "$site" && unzip -q -o "$dir"/whl/torch-"$version"-*.whl 'torch/include/*' 'torch/share/*' \
    'torch/lib/*' 'torch/version.py')
  for w in "$dir"/whl/nvidia_*.whl; do (cd "$site" && unzip -q -o "$w"); done
fi
grep "__version__\|^cuda" "$site/torch/version.py"
build=build-libtorch-$version
# The GPU machine's configure and build (scripts/device-lib.sh). C10_LIBRARY: TorchConfig looks for
# c10 in the system's folders first, where a Debian LibTorch would be found instead of the
# wheel's (the GPU machine has none).
source scripts/device-lib.sh
DEVICE_BUILD_DIR=$build device_build "$dir/check.log" 3600 "$dir/build.log" -DAET_BUILD_TESTS=ON \
  -DAET_BUILD_BENCHMARKS=ON -DCMAKE_PREFIX_PATH="$site/torch/share/cmake" \
  -DC10_LIBRARY="$site/torch/lib/libc10.so" || { tail -40 "$dir/build.log"; exit 1; }
grep -q "AET_WITH_TORCH:BOOL=ON" "$build/CMakeCache.txt" ||
  { echo "check-libtorch2: LibTorch was not found or not usable" >&2; exit 1; }
if [ -n "${FULL:-}" ]; then
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
else
  ctest --test-dir "$build" -R "^(Networks|NetworkCli)\." --output-on-failure -j "$(nproc)"
fi
# The shipped model on the same reconstruction with this LibTorch and, when it is built, the
# default one (build/): the outputs must agree to float rounding.
if [ -x build/bin/aet ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  build/bin/aet simulate --phantom demo --tilt-range=-60:60:3 --seed 5 --out "$work/sim" --quiet
  build/bin/aet reconstruct --tilts "$work/sim/tilts.mrc" --angles "$work/sim/tilts.tlt" \
    --iterations 30 --step 1 --out "$work/rec.mrc" --quiet
  build/bin/aet augment --volume "$work/rec.mrc" --out "$work/aug_default.mrc" --quiet
  "$build"/bin/aet augment --volume "$work/rec.mrc" --out "$work/aug_libtorch2.mrc" --quiet
  /usr/bin/python3 - "$work/aug_default.mrc" "$work/aug_libtorch2.mrc" <<'PY'
import sys
import mrcfile
import numpy as np
a, b = (mrcfile.read(f).astype(np.float64) for f in sys.argv[1:3])
diff = np.abs(a - b).max() / np.abs(a).max()
print(f"shipped model, default LibTorch against this one: max difference {diff:.2e} of the peak")
sys.exit(0 if diff < 1e-5 else 1)
PY
fi
