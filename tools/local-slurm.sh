#!/usr/bin/env bash
# local-slurm.sh - a real single-node Slurm cluster on this machine (Debian 12, as root,
# no systemd needed), for trying and testing the job scripts in jobs/.
#
#   bash tools/local-slurm.sh install   # Debian's slurm-wlm and munge (idempotent)
#   bash tools/local-slurm.sh start     # munged + slurmctld + slurmd; waits for the node
#   bash tools/local-slurm.sh env       # prints the `export SLURM_CONF=...` line to use
#   bash tools/local-slurm.sh status
#   bash tools/local-slurm.sh stop      # stops only the daemons this script started
#   bash tools/local-slurm.sh logs      # the tails of the daemons' logs
#
# Or source it and call ls_install / ls_start / ls_stop / ls_status / ls_logs.
#
# Everything the daemons write (configuration, pid files, logs, spool, state) lives under
# $LS_DIR (default /var/tmp/gflowvi-slurm); nothing is written to /etc/slurm.  The
# configuration is $LS_DIR/slurm.conf: the Slurm commands find it through SLURM_CONF,
# which `start` cannot set in your shell, so run
#     eval "$(bash tools/local-slurm.sh env)"
# before sbatch / squeue (the tests do this themselves).  Jobs inherit SLURM_CONF, so
# `scontrol requeue` inside a job reaches the same controller.
#
# Settings (environment):
#   LS_DIR          where everything goes (default /var/tmp/gflowvi-slurm)
#   LS_CTLD_PORT    slurmctld port (default 6827; Slurm's usual 6817 is left to any
#   LS_SLURMD_PORT  slurmd port (default 6828)   system cluster on the same machine)
#   LS_PARTITION    the one partition's name (default debug)
#   LS_CPUS         CPUs the node offers (default: nproc)
#   LS_TIMEOUT      seconds to wait for each daemon (default 60)
#   LS_CRED_EXPIRE  seconds (default 10); also how long a requeued job waits before it may
#                   start again (Slurm's default, 120 s, makes requeue tests slow)
#
# Adapted from a recipe measured on Debian 12 (slurm-wlm 22.05.8, munge 0.5.15, Open MPI
# 4.1.4) as root in a container without systemd: installed in about 10 s, up in about 2 s.
# Exit status: 0 on success, 1 when a step failed (the reason and log tails on stderr),
# 2 for usage.

LS_DIR=${LS_DIR:-/var/tmp/gflowvi-slurm}
LS_CONF=$LS_DIR/slurm.conf
LS_PARTITION=${LS_PARTITION:-debug}
LS_TIMEOUT=${LS_TIMEOUT:-60}
LS_CTLD_PORT=${LS_CTLD_PORT:-6827}
LS_SLURMD_PORT=${LS_SLURMD_PORT:-6828}

_ls_log() { echo "[local-slurm] $*" >&2; }

# The PID in a pid file, printed only when that process is alive (not a zombie) and is
# the named daemon: pid files outlive a kill -9 and PIDs get reused.
_ls_pid_alive() {
  local f=$1 name=$2 pid
  [[ -s $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name" || return 1
  echo "$pid"
}

_ls_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs what is missing from Debian's mirrors.  libopenmpi-dev brings libpmix-dev,
# whose libpmix.so the `srun --mpi=pmix` plugin opens at run time.
ls_install() {
  local p missing=()
  for p in slurm-wlm munge openmpi-bin libopenmpi-dev; do
    _ls_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]} > 0)) || return 0
  if ((EUID != 0)); then
    _ls_log "not root; install by hand: apt-get install ${missing[*]}"
    return 1
  fi
  _ls_log "installing: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || { _ls_log "apt-get update failed"; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null || { _ls_log "apt-get install failed"; return 1; }
  command -v slurmctld >/dev/null || { _ls_log "slurmctld missing after install"; return 1; }
}

_ls_write_conf() {
  local node cpus mem mpi=none
  node=$(hostname -s)
  # Plain `srun prog` starts Debian's Open MPI programs only through PMIx (it has no PMI2).
  if [[ -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ]]; then mpi=pmix; fi
  cpus=${LS_CPUS:-$(nproc)}
  # RealMemory in MB with 10% headroom, so the node is never drained for low memory.
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$LS_DIR"/{state,spool,log}
  cat >"$LS_CONF.tmp" <<EOF
# Written by gflowvi's tools/local-slurm.sh: one node, no cgroups, no accounting.
ClusterName=gflowvi-local
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Also the delay before a requeued job may start again (Slurm's default is 120 s).
AuthInfo=cred_expire=${LS_CRED_EXPIRE:-10}
MailProg=/bin/true
SlurmctldPort=$LS_CTLD_PORT
SlurmdPort=$LS_SLURMD_PORT
StateSaveLocation=$LS_DIR/state
SlurmdSpoolDir=$LS_DIR/spool
SlurmctldPidFile=$LS_DIR/slurmctld.pid
SlurmdPidFile=$LS_DIR/slurmd.pid
SlurmctldLogFile=$LS_DIR/log/slurmctld.log
SlurmdLogFile=$LS_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=$mpi
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
# Fast turnaround for tests.
MessageTimeout=10
KillWait=5
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=60
SlurmctldTimeout=30
JobRequeue=1
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$LS_PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  mv "$LS_CONF.tmp" "$LS_CONF"
  chmod 644 "$LS_CONF"
}

_ls_munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

_ls_start_munge() {
  # A working munged (ours, the system's, another cluster's) is shared, never restarted.
  if _ls_munge_ok; then return 0; fi
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key --force
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  # munged refuses world-writable or wrongly owned directories.
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 755 /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid ||
    { _ls_log "munged failed to start"; return 1; }
  cp /run/munge/munged.pid "$LS_DIR/munged.pid" # marks it as ours, for ls_stop
  local end=$((SECONDS + LS_TIMEOUT))
  while ((SECONDS < end)); do
    _ls_munge_ok && return 0
    sleep 0.2
  done
  _ls_log "munged not answering"
  return 1
}

_ls_ctld_up() { timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }

_ls_wait_ctld() {
  local end=$((SECONDS + LS_TIMEOUT))
  while ((SECONDS < end)); do
    _ls_ctld_up && return 0
    sleep 0.2
  done
  _ls_log "slurmctld not answering after ${LS_TIMEOUT} s"
  ls_logs >&2
  return 1
}

_ls_wait_idle() {
  local node st="" end=$((SECONDS + LS_TIMEOUT))
  node=$(hostname -s)
  while ((SECONDS < end)); do
    st=$(timeout 5 sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
    case $st in
      idle* | mixed* | allocated* | completing*) return 0 ;;
      down* | drain*) timeout 5 scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  _ls_log "node $node not usable after ${LS_TIMEOUT} s (state: ${st:-none})"
  ls_logs >&2
  return 1
}

ls_env() { echo "export SLURM_CONF=$LS_CONF"; }

ls_start() {
  ((EUID == 0)) || { _ls_log "must run as root (the daemons run as root)"; return 1; }
  command -v slurmctld >/dev/null && command -v munged >/dev/null || ls_install || return 1
  export SLURM_CONF=$LS_CONF
  mkdir -p "$LS_DIR"
  if _ls_pid_alive "$LS_DIR/slurmctld.pid" slurmctld >/dev/null &&
    _ls_pid_alive "$LS_DIR/slurmd.pid" slurmd >/dev/null && _ls_munge_ok && _ls_ctld_up; then
    _ls_log "already running"
    _ls_wait_idle
    return
  fi
  local node
  node=$(hostname -s)
  _ls_write_conf
  _ls_start_munge || return 1
  if ! _ls_pid_alive "$LS_DIR/slurmctld.pid" slurmctld >/dev/null; then
    # -i: ignore unreadable old state.  It daemonizes and writes its pid file.
    slurmctld -i -f "$LS_CONF" || { ls_logs >&2; return 1; }
  fi
  _ls_wait_ctld || return 1
  if ! _ls_pid_alive "$LS_DIR/slurmd.pid" slurmd >/dev/null; then
    slurmd -N "$node" -f "$LS_CONF" || { ls_logs >&2; return 1; }
  fi
  _ls_wait_idle || return 1
  _ls_log "up: partition $LS_PARTITION, $(sinfo -h -o '%D node, %c CPUs, state %T' | head -n 1); $(ls_env)"
}

_ls_kill_pidfile() {
  local f=$1 name=$2 pid i
  pid=$(_ls_pid_alive "$f" "$name") || { rm -f "$f"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    _ls_pid_alive "$f" "$name" >/dev/null || break
    sleep 0.2
  done
  if _ls_pid_alive "$f" "$name" >/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  rm -f "$f"
}

ls_stop() {
  export SLURM_CONF=$LS_CONF
  # Cancel leftover jobs first so their slurmstepd's exit cleanly (best effort).
  if _ls_pid_alive "$LS_DIR/slurmctld.pid" slurmctld >/dev/null; then
    timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null || true
    sleep 1
  fi
  _ls_kill_pidfile "$LS_DIR/slurmd.pid" slurmd
  _ls_kill_pidfile "$LS_DIR/slurmctld.pid" slurmctld
  _ls_kill_pidfile "$LS_DIR/munged.pid" munged # only when this script started munged
  _ls_log "stopped"
}

ls_status() {
  export SLURM_CONF=$LS_CONF
  local d pid
  for d in munged slurmctld slurmd; do
    if pid=$(_ls_pid_alive "$LS_DIR/$d.pid" "$d"); then
      echo "$d: running (pid $pid)"
    else
      echo "$d: not running (not started by this script)"
    fi
  done
  timeout 5 sinfo 2>/dev/null || true
}

# The last lines of both daemons' logs, for failure reports.
ls_logs() {
  local f
  for f in "$LS_DIR/log/slurmctld.log" "$LS_DIR/log/slurmd.log"; do
    echo "---- last 30 lines of $f"
    tail -n 30 "$f" 2>/dev/null || echo "(none)"
  done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    install) ls_install ;;
    start) ls_start ;;
    stop) ls_stop ;;
    restart) ls_stop && ls_start ;;
    status) ls_status ;;
    env) ls_env ;;
    logs) ls_logs ;;
    *)
      echo "usage: ${0##*/} install|start|stop|restart|status|env|logs" >&2
      exit 2
      ;;
  esac
fi
