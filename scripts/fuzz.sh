#!/usr/bin/env bash
# Fuzzes one reader with libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh READER SECONDS [LIBFUZZER_ARGS...]
#   READER: mrc, angles, xyz, config, result, weights, training_set
# Builds (clang, CUDA and LibTorch off) in $AET_FUZZ_BUILD (default build-fuzz/, gitignored),
# starts from the seed corpus tests/fuzz/corpus/READER plus the regression corpus, keeps what it
# learns in $AET_FUZZ_BUILD/corpus-READER and writes crashing inputs to
# $AET_FUZZ_BUILD/findings-READER/. A crasher worth keeping goes, minimised
# (fuzz_READER -minimize_crash=1), into tests/fuzz/regression/READER/, which the unit tests replay.
# The HDF5 readers are fuzzed without their child-process guard (the parse in this process), so
# crashes inside libhdf5 show up as findings: they are what the guard exists for (docs/hardening.md).
# AET_FUZZ_GUARDED=1 fuzzes them as users get them instead, behind the guard: every finding is
# then aet's own (the floor of 0 crashes is about this mode).
# Environment: AET_BUILD_LOCK (a lock file each build step takes), AET_FUZZ_JOBS (compile jobs).
set -euo pipefail
cd "$(dirname "$0")/.."

reader=${1:?usage: scripts/fuzz.sh READER SECONDS [LIBFUZZER_ARGS...]}
seconds=${2:?usage: scripts/fuzz.sh READER SECONDS [LIBFUZZER_ARGS...]}
shift 2
case " mrc angles xyz config result weights training_set " in
  *" $reader "*) ;;
  *) echo "fuzz: unknown reader '$reader'" >&2; exit 2 ;;
esac
command -v clang++ >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 2; }

dir=${AET_FUZZ_BUILD:-build-fuzz}
jobs=${AET_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
locked() { if [ -n "${AET_BUILD_LOCK:-}" ]; then flock "$AET_BUILD_LOCK" "$@"; else "$@"; fi; }
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
mkdir -p "$dir"
if [ ! -f "$dir/build.ninja" ]; then
  locked cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "-DCMAKE_C_FLAGS=$flags" \
    "-DCMAKE_CXX_FLAGS=$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" -DAET_WITH_CUDA=OFF \
    -DAET_WITH_TORCH=OFF -DAET_BUILD_TESTS=OFF -DAET_BUILD_BENCHMARKS=OFF \
    -DAET_BUILD_FUZZERS=ON >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
fi
targets="fuzz_mrc fuzz_angles fuzz_xyz fuzz_config fuzz_result fuzz_weights fuzz_training_set"
# The lock only when there is something to build.
if ! ninja -C "$dir" -n $targets 2>/dev/null | grep -q "no work to do"; then
  locked nice -n 10 cmake --build "$dir" -j "$jobs" --target $targets >"$dir/build.log" 2>&1 ||
    { tail -40 "$dir/build.log"; exit 1; }
fi

root=$(pwd)
dir=$(cd "$dir" && pwd)
corpus="$dir/corpus-$reader"
mode=${AET_FUZZ_GUARDED:+-guarded}
findings="$dir/findings-$reader$mode"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$corpus" "$findings"
# halt_on_error: UBSan reports are findings, not noise. The HDF5 library's own leaks at exit are
# not aet's: leak detection off.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export AET_FUZZ_DIR="$scratch"
# Guarded: the guard's child gets 2 s of CPU (the default 5 s, on a loaded machine, outlasts
# libFuzzer's timeout), and a run counts as a hang only past 30 s, which the guard must prevent.
timeout=10
if [ -n "${AET_FUZZ_GUARDED:-}" ]; then
  export AET_HDF5_CPU_LIMIT=${AET_HDF5_CPU_LIMIT:-2}
  timeout=30
fi
# -fork=1 keeps going after a crash (libhdf5's, for the in-process HDF5 readers), counting them.
cd "$findings"
# libFuzzer stops at a corpus folder that does not exist (readers without crashers have no
# regression folder).
corpora=("$corpus")
for c in "$root/tests/fuzz/corpus/$reader" "$root/tests/fuzz/regression/$reader"; do
  [ -d "$c" ] && corpora+=("$c")
done
nice -n 10 "$dir/tests/fuzz/fuzz_$reader" -max_total_time="$seconds" -timeout=$timeout -rss_limit_mb=2048 \
  -max_len=65536 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
  -artifact_prefix="$findings/" "$@" "${corpora[@]}" 2>&1 | tee "$dir/fuzz-$reader$mode.log" | grep -E "^#|INFO: fuzzed|crash|CRASH|timeout|oom" | tail -20 || true
echo "fuzz: $reader: findings in $findings ($(ls "$findings" | wc -l) files), log $dir/fuzz-$reader$mode.log"
