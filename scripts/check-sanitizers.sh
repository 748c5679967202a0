#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer in a separate build
# folder and runs them (ctest -L unit). Any sanitizer report fails the run: ASan aborts on its
# first error and UBSan is made fatal below.
#   scripts/check-sanitizers.sh [CTEST_ARGS...]     e.g. -R 'Hdf5|Mrc' for a subset
# Environment: AET_SAN_BUILD (build folder, default build-asan), AET_CMAKE_ARGS (extra configure
# arguments, e.g. -DAET_WITH_TORCH=OFF to leave the LibTorch tests out), AET_BUILD_LOCK (a lock
# file: each target is then built under flock, so a shared machine's builds take turns),
# AET_SAN_JOBS (parallel compile jobs, default nproc), AET_SAN_TARGETS (a subset of the unit
# test executables, e.g. "test_io test_hostile_input"; ctest then runs only theirs).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${AET_SAN_BUILD:-build-asan}
jobs=${AET_SAN_JOBS:-$(nproc 2>/dev/null || echo 2)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
locked() { if [ -n "${AET_BUILD_LOCK:-}" ]; then flock "$AET_BUILD_LOCK" "$@"; else "$@"; fi; }

mkdir -p "$dir"
if [ ! -f "$dir/build.ninja" ]; then
  # CUDA off: the sanitizers instrument host code only, and the unit label needs no GPU.
  locked cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAET_WITH_CUDA=OFF \
    -DAET_BUILD_TESTS=ON -DAET_BUILD_BENCHMARKS=OFF "-DCMAKE_CXX_FLAGS=$flags" \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
    ${AET_CMAKE_ARGS:-} >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
fi

# The executables labelled unit in tests/CMakeLists.txt (aet_add_test(NAME unit ...)) that this
# configuration defines (test_networks only with LibTorch).
all_targets=$(ninja -C "$dir" -t targets all 2>/dev/null | sed -n 's/^\(test_[a-z_]*\): .*/\1/p')
targets=""
for t in ${AET_SAN_TARGETS:-$(sed -n 's/^ *aet_add_test(\(test_[a-z_]*\) unit\b.*/\1/p' tests/CMakeLists.txt)}; do
  grep -qx "$t" <<<"$all_targets" && targets="$targets $t"
done
[ -n "$targets" ] || { echo "check-sanitizers: no unit test executable to build"; exit 1; }
echo "check-sanitizers: building$targets in $dir"
for t in $targets; do
  locked nice -n 10 cmake --build "$dir" -j "$jobs" --target "$t" >"$dir/build-$t.log" 2>&1 ||
    { tail -40 "$dir/build-$t.log"; echo "check-sanitizers: build of $t failed"; exit 1; }
done

# detect_leaks: LibTorch and libhdf5 keep process-lifetime allocations that are not aet's leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)
# With a subset, only the tests of the executables built (gtest_discover_tests names each test
# list after its executable's target in the ctest files).
subset=()
if [ -n "${AET_SAN_TARGETS:-}" ]; then
  regex=$(for t in $targets; do
    sed -n 's/^ *add_test( *\[=*\[\([^]]*\)\].*/\1/p' "$dir/tests/${t}[1]_tests.cmake" 2>/dev/null
  done | sed 's/[][\.*^$+?(){}|]/\\&/g' | paste -sd'|')
  [ -n "$regex" ] && subset=(-R "^($regex)\$")
fi
nice -n 10 ctest --test-dir "$dir" -L unit -j "$jobs" --output-on-failure "${subset[@]}" "$@"
echo "check-sanitizers: unit tests passed under ASan + UBSan in $(($(date +%s) - start)) s"
