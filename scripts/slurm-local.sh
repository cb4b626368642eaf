#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for the current user, that touches none of the system's
# Slurm or munge configuration: everything (munge key and socket, slurm.conf, state, spool, logs,
# pid files) lives in DIR. Works as root in a container without systemd (and as a user without
# root: the daemons and the jobs then run as that user).
#
#   scripts/slurm-local.sh start DIR   starts munged, slurmctld and slurmd; waits until the node
#                                      is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop DIR    cancels the cluster's jobs left, then stops the three daemons
#                                      started in DIR (by their pid files)
#   scripts/slurm-local.sh env DIR     prints the export line again
#
# Clients (sbatch, squeue, scontrol, sinfo) find this cluster through SLURM_CONF=DIR/slurm.conf;
# the conf names the munge socket (AuthInfo), so they need nothing else. The ports are chosen
# free at start, so several such clusters, or a system one, can run side by side.
# Needs Debian's slurm-wlm and munge (scripts/setup.sh --farm installs them).
# Environment: SLURM_LOCAL_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail
# The daemons live in /usr/sbin, which a user's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

say() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() { die "usage: $0 start|stop|env DIR"; }
[ $# -eq 2 ] || usage
cmd="$1"
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
CONF="$DIR/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"

# Sends SIGTERM to the process in pid file $1 and waits (up to 10 s) for it to end; only when
# that process is the program $2 (a stale pid file may name another process by now).
stop_pid() {
    local file="$1" name="$2" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "pid $pid ($file) did not stop on SIGTERM: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

stop() {
    # The jobs still queued or running first (a test that failed half way), so that no job step
    # outlives the cluster; then slurmd, slurmctld and munged.
    if [ -f "$DIR/run/slurmctld.pid" ] && [ -f "$CONF" ]; then
        SLURM_CONF="$CONF" scancel --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(SLURM_CONF="$CONF" squeue -h 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    stop_pid "$DIR/run/slurmd.pid" slurmd
    stop_pid "$DIR/run/slurmctld.pid" slurmctld
    stop_pid "$DIR/munge/munged.pid" munged
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
}

# Says why the start failed, with the daemons' last log lines, stops what did start, and exits 1.
fail() {
    say "$*"
    for f in munged slurmctld slurmd; do
        if [ -s "$DIR/log/$f.log" ]; then
            say "--- $DIR/log/$f.log"
            tail -n 20 "$DIR/log/$f.log" >&2 || true
        fi
    done
    stop
    exit 1
}

# A TCP port on 127.0.0.1 that nothing listens on, other than $1.
free_port() {
    local not="${1:-}" p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 20000))
        [ "$p" = "$not" ] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free TCP port found"
}

start() {
    for tool in munged mungekey slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool is not installed (Debian: slurm-wlm and munge; scripts/setup.sh --farm)"
    done
    # Whatever an earlier start in DIR left running.
    stop
    local user cpus mem
    user="$(id -un)"
    cpus="$(nproc)"
    # RealMemory in MiB, a little under the machine's so slurmd does not drain the node.
    mem="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)"
    mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
    chmod 0700 "$DIR/munge"

    # munge: a key of our own and a socket in DIR. --force: munged, made to serve every user of a
    # machine, otherwise refuses a socket whose folders are not open to all (a private temporary
    # folder, as the tests use); this one serves only the current user.
    [ "${#MUNGE_SOCKET}" -lt 100 ] ||
        die "$MUNGE_SOCKET is too long for a Unix socket: use a shorter DIR"
    if [ ! -s "$DIR/munge/munge.key" ]; then
        mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null ||
            dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1 count=1024 status=none
    fi
    chmod 0400 "$DIR/munge/munge.key"
    munged --force \
        --socket="$MUNGE_SOCKET" \
        --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" \
        --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed" ||
        fail "munged did not start"

    local ctld_port slurmd_port
    ctld_port="$(free_port)"
    slurmd_port="$(free_port "$ctld_port")"
    cat >"$CONF" <<EOF
# A one-node Slurm cluster on localhost, written by scripts/slurm-local.sh.
ClusterName=tincture-local
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Each finished job's final state, one line a job (sacct needs a database; this does not).
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
# A job whose dependency failed is cancelled, not left pending for ever.
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

    export SLURM_CONF="$CONF"
    # -c: no jobs from an earlier start in DIR. -N: this node's name in slurm.conf, whatever the
    # machine's host name.
    slurmctld -f "$CONF" -c || fail "slurmctld did not start"
    slurmd -f "$CONF" -N localhost || fail "slurmd did not start"

    local timeout="${SLURM_LOCAL_TIMEOUT:-60}" state=""
    for _ in $(seq $((timeout * 2))); do
        state="$(sinfo -h -n localhost -o '%T' 2>/dev/null || true)"
        [ "$state" = "idle" ] && break
        sleep 0.5
    done
    [ "$state" = "idle" ] ||
        fail "the node is not idle after ${timeout}s (state: '${state:-no answer}')"
    say "one-node cluster up in $DIR (slurmctld :$ctld_port, slurmd :$slurmd_port, $cpus CPUs, ${mem} MiB)"
    echo "export SLURM_CONF=$CONF"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) usage ;;
esac
