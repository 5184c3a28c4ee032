#!/usr/bin/env bash
# bench/broker_vs_mosquitto.sh - run the same load generators (bench_broker,
# C on libmosquitto, and `mqlite bench`, mqlite's client on one poll loop)
# against `mqlite broker` and Debian's mosquitto, started
# side by side on free loopback ports with the same configuration file, and
# print one result per line (`name=value unit`) plus mqlite/mosquitto ratios.
#
# usage: bench/broker_vs_mosquitto.sh [--seconds S] [--window W] [--idle N]
#                                     [--only SUBSTRING]
# --idle 0 skips the memory measurement; --only memory runs only it.
# Environment: MQLITE_BUILD_DIR (default: build), MOSQUITTO (default: mosquitto).
# Both brokers are stopped by PID on exit; every wait is bounded.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${MQLITE_BUILD_DIR:-build}"
MQLITE="$BUILD/bin/mqlite"
BENCH="$BUILD/bin/bench_broker"
MOSQUITTO="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
SECONDS_ARG=2
IDLE=10000
ONLY=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECONDS_ARG="$2"; shift 2 ;;
    --idle) IDLE="$2"; shift 2 ;;
    --only) ONLY="$2"; EXTRA+=("$1" "$2"); shift 2 ;;
    --window) EXTRA+=("$1" "$2"); shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--window W] [--idle N] [--only SUBSTRING]" >&2; exit 2 ;;
    esac
done
for f in "$MQLITE" "$BENCH" "$MOSQUITTO"; do
    [ -x "$f" ] || { echo "missing $f (build with cmake; apt-get install mosquitto libmosquitto-dev)" >&2; exit 1; }
done

# 10,000 idle connections need as many descriptors in each broker.
ulimit -n "$(ulimit -Hn)"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
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

write_conf() { # FILE PORT
    cat >"$1" <<EOF
listener $2 127.0.0.1
allow_anonymous true
max_queued_messages 100000
persistence false
log_dest stderr
log_type error
EOF
}

P_MQLITE="$(free_port)"
write_conf "$WORK/mqlite.conf" "$P_MQLITE"
"$MQLITE" broker -c "$WORK/mqlite.conf" 2>"$WORK/mqlite.log" &
PID_MQLITE=$!
PIDS+=("$PID_MQLITE")
wait_port "$P_MQLITE" "$PID_MQLITE" mqlite

P_MOSQ="$(free_port)"
write_conf "$WORK/mosquitto.conf" "$P_MOSQ"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
PID_MOSQ=$!
PIDS+=("$PID_MOSQ")
wait_port "$P_MOSQ" "$PID_MOSQ" mosquitto

echo "# mqlite $("$MQLITE" version | cut -d' ' -f2) (pid $PID_MQLITE, port $P_MQLITE) vs" \
    "$("$MOSQUITTO" -h 2>/dev/null | head -1) (pid $PID_MOSQ, port $P_MOSQ);" \
    "$(nproc) CPUs; ${SECONDS_ARG}s per run"
# Memory first, on freshly started brokers: after the load runs, heap
# the allocators kept would absorb new connections and hide their cost.
if [ "$IDLE" -gt 0 ]; then
    "$BENCH" --broker "mqlite=$P_MQLITE:$PID_MQLITE" --broker "mosquitto=$P_MOSQ:$PID_MOSQ" \
        --only memory --idle "$IDLE"
fi
# Both client engines (see bench/bench_broker.c): libmosquitto end to end,
# then raw sockets after a libmosquitto CONNECT/SUBSCRIBE.
for client in mosq raw; do
    "$BENCH" --broker "mqlite=$P_MQLITE:$PID_MQLITE" --broker "mosquitto=$P_MOSQ:$PID_MOSQ" \
        --seconds "$SECONDS_ARG" --client "$client" --idle 0 "${EXTRA[@]}"
done

# Third generator: `mqlite bench` (10 clients; pairs, fanin, fanout at QoS
# 0/1/2, 64 B, window 20), the same lines as above with the prefix
# mqlite_bench.
[ "$ONLY" = memory ] && exit 0
for mode in pairs fanin fanout; do
    for qos in 0 1 2; do
        name="mqlite_bench.$mode.qos$qos.64B"
        case "$name" in *"$ONLY"*) ;; *) continue ;; esac
        for target in "mqlite:$P_MQLITE" "mosquitto:$P_MOSQ"; do
            "$MQLITE" bench "$mode" -p "${target#*:}" -q "$qos" -c 10 -d "$SECONDS_ARG" \
                --quiet --json >"$WORK/${target%%:*}.json" 2>>"$WORK/bench.log" || true
        done
        python3 - "$name" "$WORK/mqlite.json" "$WORK/mosquitto.json" <<'PY'
import json, sys
name, files = sys.argv[1], sys.argv[2:]
rates = []
for broker, path in zip(("mqlite", "mosquitto"), files):
    try:
        r = json.load(open(path))
    except (OSError, ValueError):
        print(f"{name}.{broker}.failed=1")
        rates.append(0)
        continue
    rates.append(r["msgs_per_s"])
    print(f"{name}.{broker}.rate={r['msgs_per_s']:.0f} msg/s")
    print(f"{name}.{broker}.p50={r['latency_us']['p50']} us")
    print(f"{name}.{broker}.p99={r['latency_us']['p99']} us")
    print(f"{name}.{broker}.lost={r['lost']} msgs")
    print(f"{name}.{broker}.dup={r['duplicated']} msgs")
if rates[1] > 0:
    print(f"{name}.ratio.rate={rates[0] / rates[1]:.2f} x")
PY
    done
done
