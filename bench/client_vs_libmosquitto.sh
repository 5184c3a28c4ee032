#!/usr/bin/env bash
# bench/client_vs_libmosquitto.sh - mqlite's client against libmosquitto,
# both through the same local Debian mosquitto started here on 127.0.0.1 on
# a free port (tests/peers/start-mosquitto), stopped at the end.
#
#   bench/client_vs_libmosquitto.sh [bench_client options...]
#
# Environment:
#   MQLITE_BUILD_DIR  build tree with bin/bench_client (default: build)
#   BENCH_PERF=1      also record the mqlite QoS 1 run with `perf record -g`
#                     into $BENCH_OUT/perf.data and print the top symbols
#   BENCH_OUT         where to keep the broker log and perf data
#                     (default: a temporary directory, removed at the end)
# Options are passed to bench_client (defaults: -n 20000 -T 10 -w 20 -k 2000
# -q 0,1,2 -s 64,1024 -l mqlite,libmosquitto,libmosquitto_nagle).
#
# The broker: mosquitto 2.0 with log_type error (log_type all, the peer
# scripts' default, writes a line per PUBLISH and slows the broker down for
# both clients alike), max_queued_messages 0 (no drops in the broker's
# per-subscriber queue: a loss counted here is the client's), and
# max_inflight_messages = the benchmark's window.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${MQLITE_BUILD_DIR:-$ROOT/build}
BENCH=$BUILD/bin/bench_client
[ -x "$BENCH" ] || { echo "client_vs_libmosquitto: $BENCH not built (cmake --build $BUILD)" >&2; exit 1; }
command -v mosquitto >/dev/null || { echo "client_vs_libmosquitto: mosquitto not installed (scripts/deps.sh)" >&2; exit 1; }

WINDOW=20
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "-w" ] && WINDOW=${args[$((i + 1))]}
done

if [ -n "${BENCH_OUT:-}" ]; then
    OUT=$BENCH_OUT; mkdir -p "$OUT"; KEEP=1
else
    OUT=$(mktemp -d /tmp/mqlite-bench.XXXXXX); KEEP=0
fi
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
WD=$OUT/mosquitto
cleanup() {
    "$ROOT/tests/peers/stop-mosquitto" "$WD" >/dev/null 2>&1 || true
    [ "$KEEP" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT
PEER_MOSQUITTO_LOG_TYPE=error \
PEER_MOSQUITTO_CONF=$(printf 'max_queued_messages 0\nmax_inflight_messages %s\n' "$WINDOW") \
    "$ROOT/tests/peers/start-mosquitto" "$PORT" "$WD" >/dev/null

echo "# mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$PORT," \
     "libmosquitto $(dpkg-query -W -f='${Version}' libmosquitto1 2>/dev/null || echo '?')," \
     "mqlite $("$BUILD/bin/mqlite" version 2>/dev/null | awk '{print $2}'), $(nproc) CPUs"
echo "# command: $0 $*"
timeout 900 "$BENCH" -p "$PORT" "$@"

if [ "${BENCH_PERF:-0}" = 1 ]; then
    command -v perf >/dev/null || { echo "client_vs_libmosquitto: perf not installed" >&2; exit 1; }
    echo "# perf: mqlite, QoS 1, 64 B and 1 KiB"
    perf record -g -o "$OUT/perf.data" -- "$BENCH" -p "$PORT" -l mqlite -q 1 -n 100000 -T 20 \
        >/dev/null 2>"$OUT/perf.log"
    perf report -i "$OUT/perf.data" --no-children --percent-limit 1.5 --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -30
    echo "# perf data: $OUT/perf.data"
fi
