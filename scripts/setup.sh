#!/usr/bin/env bash
# Installs what aet needs on Debian 12 / Ubuntu (as root: apt-get; otherwise prints the one
# apt line to run) and builds it into ./build. Used by run-demo.sh and run-tests.sh.
#   scripts/setup.sh [--tests]      --tests: also build the GoogleTest suite and its Python peers
set -euo pipefail
cd "$(dirname "$0")/.."

tests=OFF
[ "${1:-}" = "--tests" ] && tests=ON

# libopenblas0-pthread: Debian's LibTorch otherwise runs its CPU convolutions on the reference
# BLAS, several times slower (network inference and training).
pkgs="build-essential cmake ninja-build pkg-config libeigen3-dev libboost-program-options-dev
libhdf5-dev libfftw3-dev libtorch-dev libopenblas0-pthread nlohmann-json3-dev"
# python3-matplotlib: aet benchmark's plots (python/aet_benchmark_plots).
pkgs="$pkgs python3 python3-matplotlib"
# The run report every aet pipeline writes (python/aet_report, docs/report.md): matplotlib, numpy,
# mrcfile; its browser test renders it in headless chromium.
pkgs="$pkgs python3-numpy python3-mrcfile"
# MPI: `mpirun -np N aet reconstruct|pipeline` splits the reconstruction over ranks (docs/hpc.md);
# the tests run it under mpirun -np 2. A build without it runs as one process.
pkgs="$pkgs libopenmpi-dev openmpi-bin"
[ "$tests" = ON ] && pkgs="$pkgs libgtest-dev python3 python3-mrcfile python3-ase python3-h5py"
# python3-venv: the OVITO peer of aet analyze (tests/peers) comes from PyPI into build/peers.
[ "$tests" = ON ] && pkgs="$pkgs python3-venv"
[ "$tests" = ON ] && pkgs="$pkgs chromium"
pkgs=$(echo $pkgs)

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: missing packages; run as root:"
    echo "  sudo apt-get install -y --no-install-recommends$missing"
    exit 2
  fi
fi

# CUDA is optional: nvcc in PATH or /usr/local/cuda turns the GPU kernels on (AET_WITH_CUDA).
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAET_BUILD_TESTS=$tests \
  ${AET_CMAKE_ARGS:-} >build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
grep -E "^-- aet " build-configure.log || true
cmake --build build -j "$jobs"

# The OVITO peer test (tests/peers/ovito_peer.sh) needs ovito, which Debian does not package: a
# venv in build/peers, pinned to the version the test's floors were measured with. Best effort:
# without it (offline, no wheel for this Python) that one test skips.
if [ "$tests" = ON ] && ! build/peers/bin/python -c 'import ovito' >/dev/null 2>&1; then
  if err=$( { python3 -m venv build/peers && build/peers/bin/pip install -q ovito==3.17.2; } 2>&1); then
    echo "setup: OVITO peer installed in build/peers"
  else
    echo "setup: OVITO peer not installed ($(echo "$err" | tail -n 1)); its test will be skipped"
  fi
fi
