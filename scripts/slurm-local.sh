#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for trying and testing profiles/slurm.
#
#   scripts/slurm-local.sh start    install slurm and munge if missing (Debian, as root), start
#                                   munged, slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-local.sh status   the daemons' state and sinfo
#   scripts/slurm-local.sh stop     stop the daemons this script started
#
# Config, state, spool, logs and pid files live under $DEEPSELF_SLURM_DIR (default
# /tmp/deepself-slurm). The config is linked to /etc/slurm/slurm.conf, SLURM's default path: the
# plugin's job step drops SLURM_CONF before its nested `srun`, so only the default path is found
# inside jobs. A machine with a slurm.conf of its own (a real cluster) is refused, not touched.
# The node is this host with its real CPUs and 90% of its memory, in one partition `local`; there is
# no accounting database, so job states come from squeue. It also offers two stand-in GPUs (GRES
# `gpu` backed by /dev/null and /dev/zero), so that the GPU requests of profiles/slurm are scheduled
# as on a GPU cluster; nothing is bound to them and jobs train on the CPU.
set -euo pipefail

DIR="${DEEPSELF_SLURM_DIR:-/tmp/deepself-slurm}"
CONF="$DIR/slurm.conf"
SYSTEM_DIR=/etc/slurm
# Ports beside SLURM's defaults (6817/6818), so that a SLURM already on the host is left alone.
CTLD_PORT="${DEEPSELF_SLURM_PORT:-6917}"
MUNGE_SOCKET=/run/munge/munge.socket.2

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

# A daemon is alive while its pid is a process that is not a zombie (without an init that reaps
# them, as in containers, a stopped daemon lingers as one).
alive() {
  local stat
  [[ -f "$1" ]] && stat=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) && [[ $stat != Z* ]]
}

munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
  local missing=()
  for cmd in slurmctld slurmd sbatch squeue sinfo scancel munged; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run as root to install them (apt-get), or install slurm and munge"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  say "installing slurmctld slurmd slurm-client munge (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >&2
}

start_munge() {
  munge_works && return 0
  if [[ ! -f /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key >&2
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  # munged runs as user munge and cannot write into $DIR: its pid file goes to /run/munge first.
  runuser -u munge -- munged --pid-file=/run/munge/deepself-munged.pid
  for _ in $(seq 50); do
    if munge_works; then cp /run/munge/deepself-munged.pid "$DIR/munged.pid"; return 0; fi
    sleep 0.1
  done
  die "munged does not answer on $MUNGE_SOCKET"
}

write_conf() {
  local host node_line cpus_line mem
  host=$(hostname -s)
  # slurmd -C prints this host's real topology; a node declared larger than it is would be drained.
  node_line=$(slurmd -C | head -n 1)
  cpus_line=$(sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//' <<<"$node_line")
  mem=$(grep -oE 'RealMemory=[0-9]+' <<<"$node_line" | cut -d= -f2)
  mem=$((mem * 9 / 10))
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster.
ClusterName=deepself-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# A cancelled job's processes get SIGKILL this many seconds after SIGTERM (default 30).
KillWait=5
MailProg=/bin/true
# Finished jobs stay visible to squeue this long: snakemake reads their final state from it.
MinJobAge=3600
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $cpus_line RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  printf 'NodeName=%s Name=gpu File=%s\n' "$host" /dev/null "$host" /dev/zero >"$DIR/gres.conf"
}

ours() { [[ -L "$SYSTEM_DIR/$1" && "$(readlink "$SYSTEM_DIR/$1")" == "$DIR/$1" ]]; }

link_conf() {
  for name in slurm.conf gres.conf; do
    ours $name && continue
    [[ -e "$SYSTEM_DIR/$name" || -L "$SYSTEM_DIR/$name" ]] \
      && die "$SYSTEM_DIR/$name exists and is not this script's: this machine has a SLURM of its own, use that"
    mkdir -p "$SYSTEM_DIR"
    ln -s "$DIR/$name" "$SYSTEM_DIR/$name"
  done
}

node_state() { sinfo -h -N -o %T 2>/dev/null | head -n 1; }

start() {
  install_packages
  mkdir -p "$DIR"
  link_conf
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
    say "already running"
  else
    [[ $(id -u) -eq 0 ]] || die "slurmd must run as root"
    stop_daemons
    rm -rf "$DIR/state" "$DIR/spool"
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    start_munge
    write_conf
    slurmctld -c || die "slurmctld did not start: $(tail -n 5 "$DIR/log/slurmctld.log" 2>/dev/null)"
    slurmd || die "slurmd did not start: $(tail -n 5 "$DIR/log/slurmd.log" 2>/dev/null)"
  fi
  local state=""
  for _ in $(seq 120); do
    state=$(node_state)
    [[ "$state" == idle || "$state" == mixed || "$state" == allocated ]] && break
    [[ "$state" == inval* ]] && die "node invalid: $(scontrol show node | grep -o 'Reason=.*')"
    sleep 0.5
  done
  [[ "$state" == idle || "$state" == mixed || "$state" == allocated ]] \
    || die "node not idle after 60 s (state '${state}'); see $DIR/log"
  say "node $(hostname -s) is $state (logs in $DIR/log)"
}

stop_daemons() {
  local pidfile
  for name in slurmd slurmctld munged; do
    pidfile="$DIR/$name.pid"
    if alive "$pidfile"; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.1; done
      if alive "$pidfile"; then kill -9 "$(cat "$pidfile")"; fi
    fi
    rm -f "$pidfile"
  done
}

stop() {
  # Jobs still running would outlive the daemons otherwise: cancel them and wait until SLURM has
  # killed their processes (KillWait).
  if alive "$DIR/slurmctld.pid"; then
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 150); do
      [[ -z "$(squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %i 2>/dev/null)" ]] && break
      sleep 0.2
    done
  fi
  stop_daemons
  for name in slurm.conf gres.conf; do
    if ours $name; then rm -f "${SYSTEM_DIR:?}/$name"; fi
  done
  say "stopped"
}

status() {
  local rc=0
  for name in munged slurmctld slurmd; do
    if alive "$DIR/$name.pid"; then
      say "$name running (pid $(cat "$DIR/$name.pid"))"
    elif [[ $name == munged ]] && munge_works; then
      say "munged running (not started by this script)"
    else
      say "$name not running"; rc=1
    fi
  done
  [[ $rc -eq 0 ]] && sinfo -N >&2
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
