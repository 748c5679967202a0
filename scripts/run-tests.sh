#!/usr/bin/env bash
# Installs, builds with tests, and runs the test suite (GPU tests report as skipped without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
ctest --test-dir build --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
