#!/usr/bin/env bash
# Trains a missing-wedge model on the lent GPU machine in one device call: makes the training set
# on the machine's CPU cores, trains on the GPU, and returns the weights for evaluation on the
# developer machine (benchmarks/network_inputs.sh, benchmarks/network_accuracy.sh with MODEL=...).
# Prepare as for scripts/device-check.sh (.devdeps), then call the device tool with carry
# [".devdeps"], timeout_s 600 and the command
#   scripts/device-train.sh
# A build-gpu/ left by device-check.sh on the same warm machine is reused. Each stage has its own
# time limit; training that runs out of time still returns its last checkpoint, which a later call
# continues with RESUME=FILE and the same settings (carry the file in; the training set is made
# again, identically, from its seed).
# What comes back ($OUT): train-device.txt, make.log, model.h5, metrics.json, train.log, and
# checkpoint.h5 when training was cut short.
#
# Settings (environment): DEVICE (cuda:0), COUNT (training samples, 320), SEED (1000), RADIUS_MAX
# (10 A), STEPS (4000), BASE (16 channels), LEVELS (3), PATCH (48), BATCH (8), LR (2e-3),
# TRAIN_SEED (7), TARGET_SIGMA (0.35 A: width of the target atoms), SPECIES_BALANCE (0: plain
# MSE; 0.15 weights light atoms' errors like heavy ones', networks/models/README.md), RESUME (a
# checkpoint to continue), T_BUILD (240 s), T_MAKE (150 s), T_TRAIN (300 s), T_TOTAL (570 s: training gets
# at most what is left of it, so a cold build still leaves the call its results). On the
# developer machine, DEVICE=cpu and small COUNT and STEPS check the script's flow (AET=build/bin/aet
# skips the build).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-train}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
DEVICE=${DEVICE:-cuda:0} COUNT=${COUNT:-320} SEED=${SEED:-1000} RADIUS_MAX=${RADIUS_MAX:-10}
STEPS=${STEPS:-4000} BASE=${BASE:-16} LEVELS=${LEVELS:-3} PATCH=${PATCH:-48} BATCH=${BATCH:-8}
LR=${LR:-2e-3} TRAIN_SEED=${TRAIN_SEED:-7} TARGET_SIGMA=${TARGET_SIGMA:-0.35}
SPECIES_BALANCE=${SPECIES_BALANCE:-0}
T_BUILD=${T_BUILD:-240} T_MAKE=${T_MAKE:-150} T_TRAIN=${T_TRAIN:-300} T_TOTAL=${T_TOTAL:-570}
began=$(date +%s)
log="$out/train-device.txt"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 || true
  echo "cores $(nproc)"
} >"$log"

aet=${AET:-}
if [[ -z "$aet" ]]; then
  source scripts/device-lib.sh
  device_setup "$log" || exit 2
  device_build "$log" "$T_BUILD" "$work/build.log" -- --target aet
  rc=$?
  [ "$rc" = 0 ] || { tail -40 "$work/build.log" | tee -a "$log"; exit 1; }
  aet=build-gpu/bin/aet
fi

echo "== training set: $COUNT samples, seed $SEED, radius up to $RADIUS_MAX A, target sigma $TARGET_SIGMA A" | tee -a "$log"
start=$(date +%s)
timeout "$T_MAKE" "$aet" make-training-set --count "$COUNT" --seed "$SEED" \
  --radius-max "$RADIUS_MAX" --target-sigma "$TARGET_SIGMA" --out "$work/train.h5" --quiet \
  >"$out/make.log" 2>&1
rc=$?
echo "make rc $rc after $(($(date +%s) - start)) s" | tee -a "$log"
[ "$rc" = 0 ] || { tail -20 "$out/make.log" | tee -a "$log"; exit 1; }

left=$((T_TOTAL - ($(date +%s) - began) - 15))
if ((left < T_TRAIN)); then T_TRAIN=$left; fi
if ((T_TRAIN < 10)); then
  echo "device-train: no time left to train" | tee -a "$log"
  exit 1
fi
echo "== training on $DEVICE (at most $T_TRAIN s): $STEPS steps, base $BASE, $LEVELS levels, species balance $SPECIES_BALANCE" | tee -a "$log"
start=$(date +%s)
every=$((STEPS / 8 > 0 ? STEPS / 8 : 1))  # validations and checkpoints
resume=()
if [[ -n "${RESUME:-}" ]]; then resume=(--resume "$RESUME"); fi
timeout "$T_TRAIN" "$aet" train --data "$work/train.h5" --out "$work/model" --device "$DEVICE" \
  --steps "$STEPS" --base-channels "$BASE" --levels "$LEVELS" --patch "$PATCH" --batch "$BATCH" \
  --lr "$LR" --seed "$TRAIN_SEED" --species-balance "$SPECIES_BALANCE" \
  --validate-every "$every" --checkpoint-every "$every" \
  "${resume[@]}" >>"$log" 2>&1
rc=$?
echo "train rc $rc after $(($(date +%s) - start)) s" | tee -a "$log"
for f in model.h5 metrics.json train.log; do
  [ -f "$work/model/$f" ] && cp "$work/model/$f" "$out/"
done
# Cut short (124 from timeout): the last checkpoint, for --resume.
if [ ! -f "$work/model/model.h5" ] && [ -f "$work/model/checkpoint.h5" ]; then
  cp "$work/model/checkpoint.h5" "$out/"
fi
tail -5 "$log"
[ "$rc" = 0 ]
