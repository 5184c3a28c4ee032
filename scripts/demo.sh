#!/usr/bin/env bash
# scripts/demo.sh - the main job in one command: install what the build
# needs, build, start `mqlite broker` on a free local port, let a C client and
# a Python client exchange messages at QoS 0, 1 and 2 (plus a retained
# message and a will), show what each side saw and what `mqlite spy --plain`
# saw, then stop everything that was started.
#
# Environment: MQLITE_BUILD_DIR (default build), MQLITE_DEMO_SKIP_DEPS=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
BUILD="${MQLITE_BUILD_DIR:-$ROOT/build}"
PY=/usr/bin/python3

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${MQLITE_DEMO_SKIP_DEPS:-0}" != 1 ]; then
    step "installing build dependencies (apt, skipped when present)"
    bash scripts/deps.sh --build
fi

step "building into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target mqlite_cli example_publish \
    example_subscribe_blocking mqlite_c >/dev/null
MQLITE="$BUILD/bin/mqlite"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

step "starting mqlite broker on a free port"
"$MQLITE" broker -p 0 -v --port-file "$WORK/port" 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do
    [ -s "$WORK/port" ] && break
    sleep 0.05
done
PORT="$(cat "$WORK/port")"
head -n 2 "$WORK/broker.log"

step "mqlite spy --plain watching everything (demo/#)"
"$MQLITE" spy --plain -p "$PORT" -t 'demo/#' >"$WORK/spy.out" 2>"$WORK/spy.err" &
SPY=$!
PIDS+=($SPY)

step "C client subscribes to demo/reply/# (blocking layer)"
"$BUILD/bin/example_subscribe_blocking" 127.0.0.1 "$PORT" 'demo/reply/#' 3 >"$WORK/csub.out" 2>&1 &
CSUB=$!
PIDS+=($CSUB)

step "Python client: will on demo/status, subscribes to demo/#, answers on demo/reply/"
PYTHONPATH="$BUILD/python" "$PY" "$ROOT/examples/python/demo_peer.py" "$PORT" \
    >"$WORK/python.out" 2>&1 &
PYPID=$!
PIDS+=($PYPID)
for _ in $(seq 200); do
    grep -q "subscribed" "$WORK/python.out" 2>/dev/null && grep -q "subscribed" "$WORK/csub.out" && break
    sleep 0.05
done

step "C client publishes at QoS 0, 1 and 2; mqlite pub sets a retained message"
"$BUILD/bin/example_publish" 127.0.0.1 "$PORT" demo/temp
"$MQLITE" pub -p "$PORT" -t demo/config -m '{"unit": "C", "interval_s": 10}' -q 1 -r
echo "published retained demo/config"

wait "$CSUB" || true
wait "$PYPID" || true
step "what the Python client saw (it then vanished without DISCONNECT: its will fires)"
cat "$WORK/python.out"
step "what the C subscriber saw"
cat "$WORK/csub.out"

step "a late subscriber gets the retained message and the will"
"$MQLITE" sub -p "$PORT" -t demo/config -t demo/status -v -C 2 -W 5

sleep 0.5
step "what mqlite spy --plain printed"
cat "$WORK/spy.out"

step "broker log"
cat "$WORK/broker.log"
echo
echo "demo done: everything it started is stopped."
