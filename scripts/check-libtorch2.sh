#!/usr/bin/env bash
# Builds the networks against the newest LibTorch 2.x on PyPI (the CUDA wheel, as the GPU
# machine's python3 torch is) and runs the network tests on the CPU, on the developer machine:
# the 2.x API is checked before device time is spent on it. Only LibTorch's CPU libraries are
# linked (AET_TORCH_CPU_ONLY), since the wheel's CUDA libraries need cuDNN, NCCL and others that
# are separate wheels. Not part of CI: it downloads about 540 MB and builds for several minutes.
#   scripts/check-libtorch2.sh            (TORCH_VERSION=2.x.y to pin, TORCH_DIR for the unpack)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TORCH_DIR:-/tmp/aet-libtorch2}
if [ ! -f "$dir/torch/share/cmake/Torch/TorchConfig.cmake" ]; then
  mkdir -p "$dir"
  pip download "torch${TORCH_VERSION:+==$TORCH_VERSION}" --no-deps --only-binary :all: -d "$dir"
  unzip -q -o "$dir"/torch-*.whl 'torch/include/*' 'torch/share/*' 'torch/lib/*' 'torch/version.py' \
    -d "$dir"
fi
grep "__version__\|^cuda" "$dir/torch/version.py"
cmake -S . -B build-libtorch2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DAET_BUILD_TESTS=ON \
  -DAET_BUILD_BENCHMARKS=OFF -DAET_TORCH_CPU_ONLY=ON -DCMAKE_PREFIX_PATH="$dir/torch/share/cmake"
grep -q "AET_WITH_TORCH:BOOL=ON" build-libtorch2/CMakeCache.txt ||
  { echo "check-libtorch2: LibTorch was not found or not usable" >&2; exit 1; }
cmake --build build-libtorch2 --target aet test_networks test_network_cli
ctest --test-dir build-libtorch2 -R "^(Networks|NetworkCli)\." --output-on-failure
# The shipped model on the same reconstruction with this LibTorch and, when it is built, the
# default one (build/): the outputs must agree to float rounding.
if [ -x build/bin/aet ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  build/bin/aet simulate --phantom demo --tilt-range=-60:60:3 --seed 5 --out "$work/sim" --quiet
  build/bin/aet reconstruct --tilts "$work/sim/tilts.mrc" --angles "$work/sim/tilts.tlt" \
    --iterations 30 --step 1 --out "$work/rec.mrc" --quiet
  build/bin/aet augment --volume "$work/rec.mrc" --out "$work/aug_default.mrc" --quiet
  build-libtorch2/bin/aet augment --volume "$work/rec.mrc" --out "$work/aug_libtorch2.mrc" --quiet
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
