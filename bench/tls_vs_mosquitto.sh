#!/usr/bin/env bash
# bench/tls_vs_mosquitto.sh - MQTT over TLS: `mqlite broker` against Debian's
# mosquitto, both started with the same certificates (made here with the
# `openssl` command) on free loopback ports, measured by one load generator
# (bench_tls, OpenSSL) in one run: TLS handshakes per second (full
# handshakes, CONNECT/CONNACK/DISCONNECT) and messages per second over TLS,
# with lost / duplicated / out-of-order counts and the mqlite/mosquitto ratio.
#
# usage: bench/tls_vs_mosquitto.sh [--seconds S] [--threads T] [--key rsa|ec]
#                                  [--only SUBSTRING]
# --key rsa (default): RSA-2048 server key, the common case; ec: P-256.
# Environment: MQLITE_BUILD_DIR (default: build), MOSQUITTO (default: mosquitto).
# Both brokers are stopped by PID on exit; every wait is bounded.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${MQLITE_BUILD_DIR:-build}"
MQLITE="$BUILD/bin/mqlite"
BENCH="$BUILD/bin/bench_tls"
MOSQUITTO="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
KEY=rsa
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds|--threads|--only|--window) ARGS+=("$1" "$2"); shift 2 ;;
    --key) KEY="$2"; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--threads T] [--key rsa|ec] [--only SUBSTRING]" >&2; exit 2 ;;
    esac
done
for f in "$MQLITE" "$BENCH" "$MOSQUITTO"; do
    [ -x "$f" ] || { echo "missing $f (build with cmake; apt-get install mosquitto)" >&2; exit 1; }
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
        kill -0 "$2" 2>/dev/null || { echo "$3 exited at start-up" >&2; cat "$WORK/$3.log" >&2; return 1; }
        sleep 0.1
    done
    echo "$3 is not listening on port $1" >&2
    return 1
}

# ---- certificates: one CA, one server certificate for localhost ----
if [ "$KEY" = ec ]; then NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); else NEWKEY=(-newkey rsa:2048); fi
(
    cd "$WORK"
    openssl req -x509 "${NEWKEY[@]}" -nodes -keyout ca.key -out ca.crt -days 2 \
        -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1
    openssl req "${NEWKEY[@]}" -nodes -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
        -days 2 -extfile server.ext >/dev/null 2>&1
    chmod 644 server.key
)

write_conf() { # FILE PORT
    cat >"$1" <<EOF
listener $2 127.0.0.1
certfile $WORK/server.crt
keyfile $WORK/server.key
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
# user root: it must read $WORK's key after start-up. set_tcp_nodelay: mqlite
# sets TCP_NODELAY on every connection; without it mosquitto's handshakes wait
# on Nagle + delayed ACKs (about 40 ms per round trip) and it would measure that.
printf 'user root\nset_tcp_nodelay true\n' >> "$WORK/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
PID_MOSQ=$!
PIDS+=("$PID_MOSQ")
wait_port "$P_MOSQ" "$PID_MOSQ" mosquitto

echo "# TLS: mqlite $("$MQLITE" version | cut -d' ' -f2) (pid $PID_MQLITE, port $P_MQLITE) vs" \
    "$("$MOSQUITTO" -h 2>/dev/null | head -1) (pid $PID_MOSQ, port $P_MOSQ);" \
    "server key $KEY; $(openssl version)"
"$BENCH" --cafile "$WORK/ca.crt" --broker "mqlite=$P_MQLITE:$PID_MQLITE" \
    --broker "mosquitto=$P_MOSQ:$PID_MOSQ" "${ARGS[@]}"
