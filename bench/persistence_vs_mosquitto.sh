#!/usr/bin/env bash
# bench/persistence_vs_mosquitto.sh - QoS 1 and QoS 2 throughput of brokers
# that keep state on disk, in one run: `mqlite broker` with its persistence
# file in sync mode `always` and in mode `batch`, and Debian's mosquitto
# with `persistence true`. The load generator is bench_broker (C on
# libmosquitto) with --persistent (clean session 0), so every broker has
# sessions to write. Prints one result per line (`name=value unit`, with
# lost / dup / out-of-order counts), then the ratios of each mqlite mode to
# mosquitto, then what each configuration promises about loss.
#
# usage: bench/persistence_vs_mosquitto.sh [--seconds S] [--only SUBSTRING]
#   default: 2 s per run, scenarios qos1.64B and qos2.64B (fan-in, fan-out,
#   pairs). Environment: MQLITE_BUILD_DIR (default: build), MOSQUITTO.
# The brokers are stopped by PID on exit; every wait is bounded; the data
# files live in a temporary directory that is removed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${MQLITE_BUILD_DIR:-build}"
MQLITE="$BUILD/bin/mqlite"
BENCH="$BUILD/bin/bench_broker"
MOSQUITTO="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
SECONDS_ARG=2
ONLY=(qos1.64B qos2.64B)
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECONDS_ARG="$2"; shift 2 ;;
    --only) ONLY=("$2"); shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--only SUBSTRING]" >&2; exit 2 ;;
    esac
done
for f in "$MQLITE" "$BENCH" "$MOSQUITTO"; do
    [ -x "$f" ] || { echo "missing $f (build with cmake; apt-get install mosquitto libmosquitto-dev)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT PID NAME
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "$3 exited at start-up" >&2; return 1; }
        sleep 0.1
    done
    echo "$3 is not listening on port $1" >&2
    return 1
}

common_conf() { # PORT
    cat <<CONF
listener $1 127.0.0.1
allow_anonymous true
max_queued_messages 100000
log_dest stderr
log_type error
CONF
}

START_PID=
start() { # NAME CONF CMD... (sets START_PID; not in $(...): the broker would hold its pipe)
    local name="$1" conf="$2"
    shift 2
    "$@" -c "$conf" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    START_PID=$!
    PIDS+=("$START_PID")
}

P_ALWAYS="$(free_port)"
{ common_conf "$P_ALWAYS"; printf 'persistence true\npersistence_file %s\npersistence_sync always\n' "$WORK/always.db"; } >"$WORK/always.conf"
start mqlite-always "$WORK/always.conf" "$MQLITE" broker
PID_ALWAYS=$START_PID
wait_port "$P_ALWAYS" "$PID_ALWAYS" mqlite-always

P_BATCH="$(free_port)"
{ common_conf "$P_BATCH"; printf 'persistence true\npersistence_file %s\npersistence_sync batch\npersistence_sync_interval_ms 1000\n' "$WORK/batch.db"; } >"$WORK/batch.conf"
start mqlite-batch "$WORK/batch.conf" "$MQLITE" broker
PID_BATCH=$START_PID
wait_port "$P_BATCH" "$PID_BATCH" mqlite-batch

P_MOSQ="$(free_port)"
# mosquitto started as root drops to its own user: give it a directory it can write.
mkdir -p "$WORK/mosq" && chmod 0777 "$WORK/mosq"
{ common_conf "$P_MOSQ"; printf 'persistence true\npersistence_location %s/\npersistence_file mosquitto.db\n' "$WORK/mosq"; } >"$WORK/mosquitto.conf"
start mosquitto "$WORK/mosquitto.conf" "$MOSQUITTO"
PID_MOSQ=$START_PID
wait_port "$P_MOSQ" "$PID_MOSQ" mosquitto

echo "# mqlite $("$MQLITE" version | cut -d' ' -f2) persistence always (pid $PID_ALWAYS) and batch" \
    "(pid $PID_BATCH) vs $("$MOSQUITTO" -h 2>/dev/null | head -1) with persistence true" \
    "(pid $PID_MOSQ); $(nproc) CPUs; ${SECONDS_ARG}s per run; clean session 0; data in $WORK" \
    "($(df -T "$WORK" | awk 'NR==2 {print $2}'))"
OUT="$WORK/results.txt"
for o in "${ONLY[@]}"; do
    "$BENCH" --broker "mqlite-always=$P_ALWAYS:$PID_ALWAYS" --broker "mqlite-batch=$P_BATCH:$PID_BATCH" \
        --broker "mosquitto=$P_MOSQ:$PID_MOSQ" --seconds "$SECONDS_ARG" --client mosq --idle 0 \
        --persistent --only "$o" | grep -v '\.ratio\.' | tee -a "$OUT"
done
# Ratios of each mqlite mode to mosquitto (rate: higher is better).
awk -F'[=. ]' '
    / msg\/s$/ && $(NF-2) == "rate" {
        n = split($0, parts, "="); key = parts[1]; val = parts[2] + 0
        sub(/\.rate$/, "", key); m = key; sub(/\.[^.]*$/, "", m); who = key; sub(/^.*\./, "", who)
        rate[m, who] = val; seen[m] = 1
    }
    END {
        for (m in seen) {
            if (rate[m, "mosquitto"] > 0) {
                printf "%s.ratio.always_vs_mosquitto=%.2f x\n", m, rate[m, "mqlite-always"] / rate[m, "mosquitto"]
                printf "%s.ratio.batch_vs_mosquitto=%.2f x\n", m, rate[m, "mqlite-batch"] / rate[m, "mosquitto"]
            }
        }
    }' "$OUT" | sort
cat <<'TXT'
# What each configuration promises about loss (see docs/persistence.md):
# mqlite always: a QoS 1/2 message is acknowledged (PUBACK/PUBREC) only after
#   it is committed and fsynced with everything else of that poll round:
#   nothing acknowledged is lost to a crash of the broker or of the machine.
# mqlite batch:  committed at most every 1000 ms, acknowledgements do not wait:
#   a crash loses up to the last second of acknowledged messages and state.
# mosquitto persistence true: the in-memory state is written to the file every
#   autosave_interval (default 1800 s) and at a clean shutdown: a crash loses
#   everything since the last save, however long ago that was.
TXT
