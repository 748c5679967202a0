# Sourced by scripts/device-check.sh and scripts/device-train.sh on the GPU machine.

# device_setup LOG: the carried dependencies (.devdeps, ../shared/device/README.md) made visible
# to CMake; returns 2, saying why in LOG, when there are none.
device_setup() {
  if [ -f .devdeps/setup.sh ]; then
    source .devdeps/setup.sh
  elif [ -f ../shared/device/setup.sh ]; then
    source ../shared/device/setup.sh
  else
    echo "$(basename "$0"): no .devdeps/setup.sh (see the header of scripts/device-check.sh)" |
      tee -a "$1"
    return 2
  fi
}

# device_build LOG SECONDS BUILD_LOG [CMAKE_ARGS...] [-- BUILD_ARGS...]: configures and builds
# ${DEVICE_BUILD_DIR:-build-gpu} (CUDA for sm_90, Release) within SECONDS; the return code is the
# build's (124 when it ran out of time), also written to LOG.
device_build() {
  local log=$1 seconds=$2 build_log=$3
  shift 3
  local configure=() build=()
  while (($#)); do
    if [ "$1" = "--" ]; then
      shift
      build=("$@")
      break
    fi
    configure+=("$1")
    shift
  done
  echo "== build" | tee -a "$log"
  local start rc dir=${DEVICE_BUILD_DIR:-build-gpu}
  start=$(date +%s)
  timeout "$seconds" cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DAET_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${configure[@]}" >"$build_log" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    local left=$((seconds - ($(date +%s) - start)))
    ((left > 0)) || left=1
    timeout "$left" cmake --build "$dir" -j "$(nproc)" "${build[@]}" >>"$build_log" 2>&1
    rc=$?
  fi
  echo "build rc $rc" | tee -a "$log"
  return $rc
}
