#!/usr/bin/env bash
# The GPU checks of issues 4 and 6 as one command on the lent GPU machine (H100/H200): build with
# CUDA and the GPU LibTorch, the gpu-labelled tests, the reconstruction benchmark with the floors,
# and network inference on the GPU. Each stage has its own time limit, so a slow one still leaves
# the others' results under $OUT. Prepare once on the developer machine:
#   mkdir -p .git/info && bash ../shared/device/bundle-deps.sh && cp ../shared/device/setup.sh .devdeps/
# (bundle-deps.sh appends to .git/info/exclude, which a fresh clone may lack)
# then call the device tool with carry [".devdeps"], timeout_s 600 and the command
#   scripts/device-check.sh
# What comes back ($OUT): device.txt, build.log, gpu-tests.log, recon_gpu.json, recon_gpu.md,
# augment_gpu.md (at most 8 files, as the tool allows).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-check}
mkdir -p "$out"
# Seconds per stage; together well inside one 600 s call.
T_BUILD=${T_BUILD:-240} T_TESTS=${T_TESTS:-90} T_BENCH=${T_BENCH:-150} T_AUGMENT=${T_AUGMENT:-60}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version \
    --format=csv 2>&1
  nproc
  # The LibTorch the build will use: its version, CUDA and string ABI decide whether the networks
  # build (CMakeLists.txt).
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
    "cxx11abi", torch.compiled_with_cxx11_abi())' 2>&1
  nvcc --version 2>&1 | tail -1
} >"$out/device.txt"

source scripts/device-lib.sh
device_setup "$out/device.txt" || exit 2
device_build "$out/device.txt" "$T_BUILD" "$out/build.log" -DAET_BUILD_TESTS=ON \
  -DAET_BUILD_BENCHMARKS=ON
rc=$?
[ "$rc" = 0 ] || { tail -40 "$out/build.log"; exit 1; }

echo "== gpu tests" | tee -a "$out/device.txt"
build-gpu/bin/aet info --devices >>"$out/device.txt" 2>&1
# A device the CUDA runtime cannot see fails the GPU tests here instead of skipping them.
AET_REQUIRE_GPU=1 timeout "$T_TESTS" ctest --test-dir build-gpu -L gpu --output-on-failure -j 4 \
  >"$out/gpu-tests.log" 2>&1
echo "gpu tests rc $?" | tee -a "$out/device.txt"
# The network's CPU/GPU agreement lives in the unit-labelled network tests (it checks the refusal
# path on machines without CUDA LibTorch); run it here by name, when the networks were built.
if [ -x build-gpu/tests/test_networks ]; then
  timeout 60 build-gpu/tests/test_networks --gtest_filter='Networks.Cuda*' >>"$out/gpu-tests.log" 2>&1
  echo "network cuda test rc $?" | tee -a "$out/device.txt"
fi
tail -5 "$out/gpu-tests.log"

# The floors run first and the JSON and table are rewritten after every case, so a sweep cut
# short by the time limit keeps what it measured.
echo "== reconstruction benchmark" | tee -a "$out/device.txt"
timeout "$T_BENCH" build-gpu/bin/bench_recon --devices cuda:0 --sizes 64,128,256,512 \
  --genfire-max 256 \
  --views 40,60,120 --floors --repeat 3 --json "$out/recon_gpu.json" \
  --markdown "$out/recon_gpu.md" >>"$out/device.txt" 2>&1
echo "bench rc $?" | tee -a "$out/device.txt"

echo "== network inference" | tee -a "$out/device.txt"
AET=build-gpu/bin/aet DEVICE=cuda:0 timeout "$T_AUGMENT" benchmarks/bench_augment.sh 256 128 \
  >"$out/augment_gpu.md" 2>&1
echo "augment rc $?" | tee -a "$out/device.txt"
cat "$out/device.txt" "$out/augment_gpu.md"
