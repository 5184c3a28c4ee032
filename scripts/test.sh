#!/usr/bin/env bash
# scripts/test.sh - the ONE test command; CI runs it through .ci/run.
#
# Phases (each in its own build tree):
#   1. deps   scripts/deps.sh
#   2. gcc    build/       gcc, RelWithDebInfo; ctest (C tests, pytest, corpus replay)
#   3. asan   build-asan/  clang, Debug, MQLITE_SANITIZE=ON (ASan+UBSan); ctest
#   4. fuzz   build-fuzz/  clang, MQLITE_FUZZ=ON; each fuzz_* target for a bounded
#             time on a temporary copy of its corpus (tests/fuzz/corpus/<name>/)
# Any failure makes the exit status non-zero; later phases still run so that
# one run shows everything. A summary is printed at the end.
#
# Environment:
#   MQLITE_SKIP_ASAN=1       skip phase 3          MQLITE_SKIP_FUZZ=1  skip phase 4
#   MQLITE_FUZZ_SECONDS=60   fuzzing time, split across the targets
#   MQLITE_CTEST_TIMEOUT=600 per-test timeout (s)  MQLITE_JOBS=nproc   build jobs
#   CC_GCC=gcc CC_CLANG=clang  compilers
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

JOBS="${MQLITE_JOBS:-$(nproc 2>/dev/null || echo 2)}"
CTEST_TIMEOUT="${MQLITE_CTEST_TIMEOUT:-600}"
FUZZ_SECONDS="${MQLITE_FUZZ_SECONDS:-60}"
CC_GCC="${CC_GCC:-gcc}"
CC_CLANG="${CC_CLANG:-clang}"

declare -a SUMMARY=()
FAILED=0
TOTAL_PASSED=0
TOTAL_FAILED=0

banner() { printf '\n==== %s ====\n' "$*"; }
ok() { SUMMARY+=("$(printf '%-6s ok    %s' "$1" "${2:-}")"); }
skipped() { SUMMARY+=("$(printf '%-6s skip  %s' "$1" "${2:-}")"); }
failed() {
    SUMMARY+=("$(printf '%-6s FAIL  %s' "$1" "${2:-}")")
    FAILED=1
}

# configure_build DIR COMPILER BUILD_TYPE [cmake args...] [-- targets...]
configure_build() {
    local dir="$1" cc="$2" type="$3"
    shift 3
    local -a args=() targets=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then
            shift
            targets=("$@")
            break
        fi
        args+=("$1")
        shift
    done
    cmake -S "$ROOT" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type" \
        "${args[@]}" || return 1
    if [ ${#targets[@]} -gt 0 ]; then
        cmake --build "$dir" -j "$JOBS" --target "${targets[@]}" || return 1
    else
        cmake --build "$dir" -j "$JOBS" || return 1
    fi
}

# run_ctest NAME DIR: ctest with the closing line parsed into the totals.
run_ctest() {
    local name="$1" dir="$2" log rc=0
    log="$dir/ctest-summary.log"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 \
        --timeout "$CTEST_TIMEOUT" 2>&1 | tee "$log" || rc=$?
    local line
    line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)"
    if [[ "$line" =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        local nfail="${BASH_REMATCH[1]}" ntotal="${BASH_REMATCH[2]}"
        TOTAL_FAILED=$((TOTAL_FAILED + nfail))
        TOTAL_PASSED=$((TOTAL_PASSED + ntotal - nfail))
        line="$((ntotal - nfail))/$ntotal tests passed"
    else
        line="no ctest result (see $log)"
    fi
    if [ "$rc" -eq 0 ]; then
        ok "$name" "$line"
    else
        failed "$name" "$line"
    fi
}

# ---------------------------------------------------------------------------
banner "deps"
if bash scripts/deps.sh; then
    ok deps "scripts/deps.sh"
else
    failed deps "scripts/deps.sh failed"
fi

# ---------------------------------------------------------------------------
banner "gcc build (build/)"
if configure_build build "$CC_GCC" RelWithDebInfo \
    -DMQLITE_PYTHON=ON -DMQLITE_SANITIZE=OFF -DMQLITE_FUZZ=OFF; then
    run_ctest gcc build
else
    failed gcc "configure/build failed"
fi

# ---------------------------------------------------------------------------
if [ "${MQLITE_SKIP_ASAN:-0}" = "1" ]; then
    skipped asan "MQLITE_SKIP_ASAN=1"
else
    banner "clang ASan+UBSan build (build-asan/)"
    if configure_build build-asan "$CC_CLANG" Debug \
        -DMQLITE_PYTHON=ON -DMQLITE_SANITIZE=ON -DMQLITE_FUZZ=OFF; then
        run_ctest asan build-asan
    else
        failed asan "configure/build failed"
    fi
fi

# ---------------------------------------------------------------------------
fuzz_phase() {
    local -a names=()
    local f
    for f in tests/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        f="$(basename "$f" .c)"
        names+=("${f#fuzz_}")
    done
    if [ ${#names[@]} -eq 0 ]; then
        skipped fuzz "no tests/fuzz/fuzz_*.c targets"
        return 0
    fi

    # Does this clang have libFuzzer?
    local probe
    probe="$(mktemp -d)"
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
        >"$probe/p.c"
    if ! "$CC_CLANG" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
        cat "$probe/log" >&2
        rm -rf "$probe"
        skipped fuzz "$CC_CLANG cannot build libFuzzer targets"
        return 0
    fi
    rm -rf "$probe"

    local -a targets=()
    for f in "${names[@]}"; do targets+=("fuzz_$f"); done
    if ! configure_build build-fuzz "$CC_CLANG" RelWithDebInfo -DMQLITE_FUZZ=ON \
        -DMQLITE_PYTHON=OFF -DMQLITE_SANITIZE=OFF -- "${targets[@]}"; then
        failed fuzz "configure/build failed"
        return 0
    fi

    local per=$((FUZZ_SECONDS / ${#names[@]}))
    [ "$per" -ge 1 ] || per=1
    local work artifacts bad=()
    work="$(mktemp -d)"
    artifacts="$ROOT/build-fuzz/artifacts"
    mkdir -p "$artifacts"
    for f in "${names[@]}"; do
        # The checked-in corpus is only read: libFuzzer writes into the copy.
        # Corpus: tests/fuzz/corpus/<name>/, else tests/fuzz/corpus/fuzz_<name>/
        # (as in cmake/MqliteFuzz.cmake).
        mkdir -p "$work/$f"
        local seeds="tests/fuzz/corpus/$f"
        [ -d "$seeds" ] || seeds="tests/fuzz/corpus/fuzz_$f"
        if [ -d "$seeds" ]; then
            cp -R "$seeds/." "$work/$f/"
        fi
        local log="$ROOT/build-fuzz/fuzz-$f.log"
        echo "fuzz_$f: ${per}s, corpus $(find "$work/$f" -type f | wc -l) files, log $log"
        if ! "build-fuzz/bin/fuzz_$f" -max_total_time="$per" -timeout=25 \
            -artifact_prefix="$artifacts/$f-" -print_final_stats=1 "$work/$f" >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "fuzz_$f FAILED; reproducer(s) in $artifacts/ (make each a named test)" >&2
            bad+=("$f")
        else
            grep -E '^(stat::number_of_executed_units|Done [0-9]+ runs)' "$log" | sed "s/^/  fuzz_$f: /" || true
        fi
    done
    rm -rf "$work"
    if [ ${#bad[@]} -eq 0 ]; then
        ok fuzz "${#names[@]} target(s), ${per}s each"
    else
        failed fuzz "crashed: ${bad[*]}"
    fi
}

if [ "${MQLITE_SKIP_FUZZ:-0}" = "1" ]; then
    skipped fuzz "MQLITE_SKIP_FUZZ=1"
else
    banner "libFuzzer (build-fuzz/)"
    fuzz_phase
fi

# ---------------------------------------------------------------------------
banner "summary"
for line in "${SUMMARY[@]}"; do
    echo "$line"
done
if [ "$FAILED" -ne 0 ]; then
    echo "scripts/test.sh: FAILED"
else
    echo "scripts/test.sh: all phases passed"
fi
# Last line: the totals of every ctest run above.
echo "ctest: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$FAILED"
