#!/usr/bin/env bash
# Stops the test cluster that tests/slurm/start.sh started in STATE_DIR (default /tmp/aet-slurm):
# cancels every job, then stops slurmd, slurmctld and munged (only the daemons whose pid files
# start.sh left in STATE_DIR; a munged that was already running is left alone). Idempotent.
#   tests/slurm/stop.sh [STATE_DIR]
set -uo pipefail

state=${1:-/tmp/aet-slurm}
case "$state" in /*) ;; *) state="$PWD/$state" ;; esac
export SLURM_CONF="$state/slurm.conf"

# The pid in file $1 is alive and still the daemon the file is named after (a stale pid file
# must not make us signal an unrelated process that reused the pid).
pid_alive() {
  local p
  [ -f "$1" ] || return 1
  p=$(cat "$1")
  kill -0 "$p" 2>/dev/null && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$(basename "$1" .pid)" ]
}

# Stops the daemons in the given pid files together (each takes 1-2 s to exit): SIGTERM, up to
# 10 s to exit, then SIGKILL.
stop_daemons() {
  local f pids=() p
  for f in "$@"; do
    if pid_alive "$f"; then
      p=$(cat "$f")
      pids+=("$p")
      kill "$p" 2>/dev/null
    fi
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "slurm: $(ps -o comm= -p "$p") ($p) ignored SIGTERM, killing it" >&2
      kill -9 "$p" 2>/dev/null
    fi
  done
  rm -f "$@"
}

if [ -f "$SLURM_CONF" ] && pid_alive "$state/slurmctld.pid" && command -v squeue >/dev/null; then
  # %F: an array's base job id (a plain job's own id), so one scancel covers all its tasks.
  jobs=$(squeue -h -o '%F' 2>/dev/null | sort -u)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086 # one job id per word
    scancel $jobs 2>/dev/null
    # Let the job steps end (KillWait=5 s) so no slurmstepd outlives slurmd.
    for _ in $(seq 60); do
      [ -z "$(squeue -h -o '%i' 2>/dev/null)" ] && break
      sleep 0.25
    done
  fi
fi

stop_daemons "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munged.pid"

# A job step that was still ending when slurmd stopped.
if command -v pgrep >/dev/null; then
  for _ in $(seq 20); do
    pgrep -x slurmstepd >/dev/null || break
    sleep 0.25
  done
  if pgrep -x slurmstepd >/dev/null; then
    echo "slurm: warning: slurmstepd still running: $(pgrep -x slurmstepd | tr '\n' ' ')" >&2
  fi
fi
echo "slurm: down ($state)"
