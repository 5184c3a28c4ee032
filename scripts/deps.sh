#!/usr/bin/env bash
# scripts/deps.sh - install the Debian packages mqlite's build and tests need.
#
# Idempotent and quick: packages already installed are skipped (dpkg-query),
# `apt-get update` runs only when an install would otherwise fail (no package
# lists yet, no candidate, or stale lists). Works as root, or through sudo.
# Service packages (rabbitmq-server, ejabberd) are installed with a temporary
# /usr/sbin/policy-rc.d so their postinst cannot start system services; the
# tests start every peer themselves on 127.0.0.1.
set -euo pipefail

PACKAGES=(
    # toolchain and build
    build-essential cmake clang libclang-rt-14-dev swig doxygen
    # Python bindings and pytest suites
    python3-dev python3-pytest python3-hypothesis python3-pytest-timeout
    python3-pytest-asyncio python3-paho-mqtt python3-setuptools python3-wheel
    python3-venv python3-pip
    # libraries (TLS, persistence, resolver, terminal UI)
    libssl-dev libsqlite3-dev libc-ares-dev libncurses-dev openssl
    # peers to test and benchmark against
    mosquitto mosquitto-clients libmosquitto-dev libpaho-mqtt-dev
    rabbitmq-server ejabberd
    # other FFIs, terminal tests, packet captures
    luajit tmux tshark
    # the man page check (groff -man -ww)
    groff-base
)
# `deps.sh --build`: only what configuring, building and running mqlite
# needs (scripts/demo.sh); the full list adds the peers and test tools.
BUILD_PACKAGES=(
    build-essential cmake swig python3-dev python3-pytest python3-hypothesis
    python3-pytest-timeout python3-pytest-asyncio python3-paho-mqtt
    python3-setuptools python3-wheel python3-venv python3-pip
    libssl-dev libsqlite3-dev libc-ares-dev libncurses-dev
)
if [ "${1:-}" = "--build" ]; then
    PACKAGES=("${BUILD_PACKAGES[@]}")
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    # Node.js + npm run the koffi FFI proof (tests/ffi/koffi_roundtrip.js).
    # Only when absent: a Node.js from elsewhere (e.g. NodeSource, which
    # bundles npm) must not be replaced by Debian's.
    PACKAGES+=(nodejs npm)
fi
# Packages whose postinst would start a system service.
SERVICE_PACKAGES=(rabbitmq-server ejabberd)

log() { printf 'deps: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        log "not root and sudo not found: run as root to install packages"
        exit 1
    fi
fi
as_root() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; }

# Installed packages print "ii" as their status; unknown ones print nothing.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$2 ~ /^ii/ { print $1 }' || true)"
missing=()
for p in "${PACKAGES[@]}"; do
    if ! grep -qxF "$p" <<<"$installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#PACKAGES[@]} packages present"
    exit 0
fi
log "installing: ${missing[*]}"

# tshark asks whether non-root users may capture; answer for it.
if [[ " ${missing[*]} " == *" tshark "* ]]; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" |
        as_root debconf-set-selections
fi

# Keep postinst scripts from starting services, unless a policy already exists.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
remove_policy() {
    if [ "$created_policy" -eq 1 ]; then
        as_root rm -f "$POLICY"
        created_policy=0
    fi
}
trap remove_policy EXIT
for p in "${SERVICE_PACKAGES[@]}"; do
    if [[ " ${missing[*]} " == *" $p "* ]] && [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# written by mqlite scripts/deps.sh for the duration of an install\nexit 101\n' |
            as_root tee "$POLICY" >/dev/null
        as_root chmod 755 "$POLICY"
        created_policy=1
        break
    fi
done

APT_OPTS=(-y -q --no-install-recommends
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
    -o DPkg::Lock::Timeout=300)

needs_update() {
    # No package lists at all, or a missing package without an install candidate.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        return 0
    fi
    local p cand
    for p in "${missing[@]}"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            return 0
        fi
    done
    return 1
}

updated=0
if needs_update; then
    log "apt-get update"
    as_root apt-get update -q
    updated=1
fi
if ! as_root apt-get install "${APT_OPTS[@]}" "${missing[@]}"; then
    if [ "$updated" -eq 1 ]; then
        log "apt-get install failed"
        exit 1
    fi
    # Stale lists point at versions the mirror no longer has: refresh, retry once.
    log "install failed; apt-get update and retry"
    as_root apt-get update -q
    as_root apt-get install "${APT_OPTS[@]}" "${missing[@]}"
fi
remove_policy
log "done"
