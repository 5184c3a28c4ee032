#!/usr/bin/env bash
# bench/python_vs_paho.sh - the mqlite Python package against paho-mqtt 1.6
# (Debian's python3-paho-mqtt): one publisher process and one subscriber
# process through the same broker, both libraries in the same run, QoS 0
# and 1, 64 B and 1 KiB (bench/bench_python.py does the work).
#
#   bench/python_vs_paho.sh [bench_python.py options...]
#
# Environment:
#   MQLITE_BUILD_DIR  build tree with python/mqlite and bin/mqlite (default: build)
#   BENCH_BROKER      mqlite (default: `mqlite broker` from the build) or
#                     mosquitto (Debian's, tests/peers/start-mosquitto)
#   BENCH_PYTHON      the interpreter (default /usr/bin/python3, which has
#                     python3-paho-mqtt)
# Options are passed to bench_python.py run (defaults there: -n 100000
# -w 100 -q 0,1 -s 64,1024 -l mqlite,paho; add -l mqlite,mqlite-single,paho
# to also time one publish() call per message, or -r 3 to keep the best of 3).
#
# The broker is configured not to drop anything: no per-client queue limit
# and no backlog limit (a slow subscriber would otherwise lose QoS 0
# messages, and QoS 1 messages beyond the 1000-message queue), and the
# benchmark's QoS 1 window as its in-flight window. Each library then
# measures its own speed, and losses (printed) must be 0.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${MQLITE_BUILD_DIR:-$ROOT/build}
PY=${BENCH_PYTHON:-/usr/bin/python3}
BROKER=${BENCH_BROKER:-mqlite}
[ -f "$BUILD/python/mqlite/__init__.py" ] ||
    { echo "python_vs_paho: $BUILD/python/mqlite not built (cmake --build $BUILD)" >&2; exit 1; }
"$PY" -c 'import paho.mqtt.client' 2>/dev/null ||
    { echo "python_vs_paho: $PY cannot import paho.mqtt (scripts/deps.sh: python3-paho-mqtt)" >&2; exit 1; }

WINDOW=100
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in -w|--window) WINDOW=${args[$((i + 1))]} ;; esac
done

OUT=$(mktemp -d /tmp/mqlite-pybench.XXXXXX)
BROKER_PID=
cleanup() {
    if [ "$BROKER" = mosquitto ]; then
        "$ROOT/tests/peers/stop-mosquitto" "$OUT/mosquitto" >/dev/null 2>&1 || true
    elif [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$OUT"
}
trap cleanup EXIT

case "$BROKER" in
mqlite)
    printf 'max_queued_messages 0\nmax_client_backlog_bytes 0\nmax_inflight_messages %s\n' \
        "$WINDOW" >"$OUT/broker.conf"
    "$BUILD/bin/mqlite" broker -p 0 -c "$OUT/broker.conf" --port-file "$OUT/port" \
        >"$OUT/broker.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
    [ -s "$OUT/port" ] || { echo "python_vs_paho: the broker did not start" >&2; cat "$OUT/broker.log" >&2; exit 1; }
    PORT=$(cat "$OUT/port")
    VERSION="mqlite broker $("$BUILD/bin/mqlite" version 2>/dev/null | awk '{print $2}')"
    ;;
mosquitto)
    PORT=$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    PEER_MOSQUITTO_LOG_TYPE=error \
    PEER_MOSQUITTO_CONF=$(printf 'max_queued_messages 0\nmax_inflight_messages %s\n' "$WINDOW") \
        "$ROOT/tests/peers/start-mosquitto" "$PORT" "$OUT/mosquitto" >/dev/null
    VERSION="mosquitto $( (mosquitto -h 2>/dev/null || true) | head -1 | awk "{print \$3}")"
    ;;
*) echo "python_vs_paho: BENCH_BROKER must be mqlite or mosquitto" >&2; exit 1 ;;
esac

echo "# $VERSION on 127.0.0.1:$PORT, $("$PY" --version 2>&1)," \
     "paho-mqtt $("$PY" -c 'import paho.mqtt as m; print(m.__version__)')," \
     "$(nproc) CPUs"
echo "# command: $0 $*"
PYTHONPATH="$BUILD/python" timeout 1800 "$PY" "$HERE/bench_python.py" run -p "$PORT" "$@"
