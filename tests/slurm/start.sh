#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the `aet submit` tests (issue #31).
#   tests/slurm/start.sh [STATE_DIR]     (default /tmp/aet-slurm)
# Installs slurm-wlm and munge with apt-get when missing, writes STATE_DIR/slurm.conf, starts
# munged, slurmctld and slurmd, waits until the node is idle and prints `slurm: up (STATE_DIR)`.
# Callers then `source STATE_DIR/env` (SLURM_CONF) before sbatch/squeue/scontrol.
# Exit: 0 up; 77 Slurm cannot be installed or started here (reason on stderr: tests skip);
# 1 anything else. Stop it with tests/slurm/stop.sh STATE_DIR.
set -euo pipefail

state=${1:-/tmp/aet-slurm}
case "$state" in /*) ;; *) state="$PWD/$state" ;; esac
conf="$state/slurm.conf"
export SLURM_CONF="$conf"

skip() {
  echo "slurm: cannot run here: $*" >&2
  exit 77
}
# Last lines of a daemon log, so the reason a daemon stopped reaches the test output.
log_tail() {
  if [ -f "$1" ]; then tail -n "${2:-8}" "$1" | sed 's/^/  /' >&2; fi
}

node_state() { sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n 1; }
# The pid in file $1 is alive and still the daemon the file is named after (not a reused pid).
pid_alive() {
  local p
  [ -f "$1" ] || return 1
  p=$(cat "$1")
  kill -0 "$p" 2>/dev/null && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$(basename "$1" .pid)" ]
}

host=$(hostname -s)

# Already up (second call): nothing to do.
if [ -f "$conf" ] && command -v sinfo >/dev/null && pid_alive "$state/slurmctld.pid" &&
  pid_alive "$state/slurmd.pid"; then
  case "$(node_state)" in
  idle* | mixed* | allocated* | completing*)
    echo "slurm: up ($state)"
    exit 0
    ;;
  esac
fi

[ "$(id -u)" = 0 ] || {
  command -v slurmctld >/dev/null || skip "Slurm is not installed and installing it needs root"
  skip "slurmd and munged need root (uid $(id -u))"
}

# --- install -----------------------------------------------------------------------------------
need=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
  echo "slurm: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd the packages' postinst would start munged/slurmd from /etc/init.d with the
  # packaged config; this script starts them itself, so services are held off during the install.
  policy=/usr/sbin/policy-rc.d
  own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  rc=0
  {
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
  } >"/tmp/aet-slurm-apt.$$.log" 2>&1 || rc=$?
  [ -n "$own_policy" ] && rm -f "$policy"
  if [ "$rc" != 0 ]; then
    tail -n 5 "/tmp/aet-slurm-apt.$$.log" | sed 's/^/  /' >&2
    rm -f "/tmp/aet-slurm-apt.$$.log"
    skip "apt-get install ${need[*]} failed (exit $rc)"
  fi
  rm -f "/tmp/aet-slurm-apt.$$.log"
fi
for b in munged slurmctld slurmd sinfo sbatch; do
  command -v "$b" >/dev/null || skip "$b is missing after the install"
done

mkdir -p "$state"/{state,spool,log}
chmod 755 "$state"

# --- munge -------------------------------------------------------------------------------------
# A key of the cluster's own in STATE_DIR: /etc/munge (owned by the munge user) stays untouched.
key="$state/munge.key"
if [ ! -s "$key" ]; then
  (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
fi
chmod 400 "$key"
mkdir -p /run/munge
chmod 755 /run/munge
munge_sock=/run/munge/munge.socket.2
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  : # a munged is already answering (system one or ours): use it, stop.sh leaves it alone
else
  rm -f "$state/munged.pid"
  # As root munged refuses to start unless forced (it would run as root, not the munge user).
  munged --force --socket="$munge_sock" --pid-file="$state/munged.pid" \
    --log-file="$state/log/munged.log" --seed-file="$state/munged.seed" --key-file="$key" ||
    {
      log_tail "$state/log/munged.log"
      skip "munged did not start"
    }
  for _ in $(seq 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 || {
    log_tail "$state/log/munged.log"
    skip "munged does not answer on $munge_sock"
  }
fi

# --- slurm.conf --------------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Leave 10% (at least 512 MB) so slurmd's own memory count never falls below RealMemory, which
# would drain the node ("Low RealMemory").
margin=$((mem_mb / 10 > 512 ? mem_mb / 10 : 512))
real_mem=$((mem_mb - margin > 256 ? mem_mb - margin : 256))

cat >"$conf.new" <<EOF
# Written by tests/slurm/start.sh: a one-node test cluster, no cgroups, no accounting database.
ClusterName=aet-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_sock
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Containers: no systemd, cgroups possibly read-only; track processes through /proc instead.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MailProg=/bin/true
# Cores are the unit, so several 1-CPU tasks (array elements) run side by side.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
ReturnToService=2
MaxArraySize=10001
MaxJobCount=20000
# Finished jobs stay visible to scontrol for this long (seconds): there is no accounting database.
MinJobAge=600
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mv "$conf.new" "$conf"
echo "export SLURM_CONF=$conf" >"$state/env"

# --- daemons -----------------------------------------------------------------------------------
# A daemon left from an earlier run (e.g. a stale config) is restarted with this config.
for d in slurmd slurmctld; do
  if pid_alive "$state/$d.pid"; then
    kill "$(cat "$state/$d.pid")" 2>/dev/null || true
    for _ in $(seq 50); do pid_alive "$state/$d.pid" || break; sleep 0.1; done
  fi
  rm -f "$state/$d.pid"
done

# -i: ignore saved state of jobs from an earlier cluster in this directory.
slurmctld -f "$conf" -i || {
  log_tail "$state/log/slurmctld.log"
  skip "slurmctld refused to start"
}
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP || {
  log_tail "$state/log/slurmctld.log"
  skip "slurmctld did not come up"
}
slurmd -f "$conf" || {
  log_tail "$state/log/slurmd.log"
  skip "slurmd refused to start"
}

deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
  s=$(node_state)
  case "$s" in
  idle*)
    echo "slurm: up ($state)"
    exit 0
    ;;
  esac
  if [ -f "$state/slurmd.pid" ] && ! pid_alive "$state/slurmd.pid"; then
    log_tail "$state/log/slurmd.log"
    skip "slurmd stopped"
  fi
  sleep 0.5
done
echo "slurm: node $host is '${s:-unknown}' after 60 s, not idle:" >&2
scontrol show node "$host" 2>&1 | grep -E 'State|Reason' | sed 's/^/  /' >&2 || true
log_tail "$state/log/slurmd.log"
log_tail "$state/log/slurmctld.log"
exit 1
