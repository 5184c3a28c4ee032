"""The ABI proven from three foreign FFIs, with no C compiler involved:
Python ctypes (tests/ffi/ctypes_roundtrip.py), LuaJIT's ffi declared from
the text of mqlite.h (tests/ffi/luajit_roundtrip.lua) and Node.js with koffi
from the npm registry (tests/ffi/koffi_roundtrip.js). Each script runs as a
subprocess against build/lib/libmqlite.so.0 and must exit 0 with its
summary lines: an embedded broker on port 0, two clients (3.1.1, 5.0), QoS
0/1/2 both ways with byte-exact payloads (NULs, empty, 64 KiB), events
drained, handles freed, and a second pass through a counting allocator
written in the FFI's own language that must end with 0 live allocations.

Memory checking (docs/abi.md, "How the ABI is proven"):
 * sanitizer build (MQLITE_SANITIZE=1): every interpreter runs with the ASan
   runtime preloaded (the build gives its path in LD_PRELOAD) and with
   libmqlite.so.0 preloaded too, so that it stays mapped at exit and leak
   stacks name its frames. LeakSanitizer is on. The interpreters' own
   leaks (CPython, V8/koffi) are the only ones tolerated: a leak report
   whose allocation stack passes through libmqlite fails the test, as does
   any ASan or UBSan error;
 * plain build: the LuaJIT proof also runs under valgrind memcheck with
   --leak-check=full --error-exitcode=1 (no suppressions needed: LuaJIT
   frees everything at exit). CPython and Node are not run under valgrind:
   their own allocators and V8's stack scanning give reports that are not
   mqlite's; ASan covers them in the sanitizer build.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MQLITE_BUILD_DIR", ROOT / "build")).resolve()
LIB = BUILD / "lib" / "libmqlite.so.0"
HEADER = ROOT / "core" / "include" / "mqlite.h"
FFI = ROOT / "tests" / "ffi"
SANITIZE = os.environ.get("MQLITE_SANITIZE") == "1"
KOFFI = "koffi@3.3.4"  # pinned: the proof must not change under us
TIMEOUT = 100  # seconds per proof (pytest.ini gives each test 120)

SCENARIO_LINES = [
    r"\[malloc\]: 24 messages byte-exact \(QoS 0/1/2, both ways, empty to 65536 bytes\), "
    r"16 QoS>0 acknowledgements",
    r"\[allocator\]: 24 messages byte-exact",
    r"\[allocator\]: \d+ allocations through the \w+ allocator, 0 live after free",
]

SANITIZER_ERROR = re.compile(r"ERROR: AddressSanitizer|runtime error:|"
                             r"UndefinedBehaviorSanitizer|ERROR: LeakSanitizer: detected "
                             r"memory leaks")


def symbolizer():
    """llvm-symbolizer without our LD_PRELOAD: ASan starts it from the dying
    process with that process's environment, and with the ASan runtime and
    libmqlite preloaded it was seen to hang at exit (holding the test's
    output pipe). ASan picks the symbolizer kind by the file name, so the
    wrapper is called llvm-symbolizer."""
    real = shutil.which("llvm-symbolizer") or shutil.which("llvm-symbolizer-14")
    if not real:
        found = sorted(pathlib.Path("/usr/lib").glob("llvm-*/bin/llvm-symbolizer"))
        real = str(found[-1]) if found else None
    if not real:
        return None
    wrapper = BUILD / "ffi-asan" / "llvm-symbolizer"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f"#!/bin/sh\nexec env -u LD_PRELOAD -u ASAN_OPTIONS {real} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def asan_runtime():
    """The ASan runtime ctest preloaded into this interpreter
    (cmake/MqliteSanitize.cmake). conftest.py drops LD_PRELOAD from the
    environment so that other children do not inherit it; the library is
    still mapped here, which is where we look first."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if re.search(r"/lib(clang_rt\.asan-[^/]*|asan)\.so[^/]*$", path):
                return path
    for p in os.environ.get("LD_PRELOAD", "").split():
        if "asan" in p:
            return p
    return None


def asan_env(env):
    """Environment for an interpreter under the sanitizer build's ASan."""
    runtime = asan_runtime()
    assert runtime, ("MQLITE_SANITIZE=1 but no ASan runtime is loaded in pytest: ctest "
                     "preloads it (cmake/MqliteSanitize.cmake)")
    env["LD_PRELOAD"] = f"{runtime} {LIB}"
    opts = "detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
    sym = symbolizer()
    # Without a symbolizer, frames still name their module (libmqlite.so.0+0x...),
    # which is all the leak filter below needs.
    opts += f":external_symbolizer_path={sym}" if sym else ":symbolize=0"
    env["ASAN_OPTIONS"] = opts
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env["PYTHONMALLOC"] = "malloc"
    return env


def leak_reports(stderr):
    """LeakSanitizer's records: (header line, stack text) per leak."""
    records = re.split(r"\n(?=(?:Direct|Indirect) leak of )", stderr)
    return [(r.splitlines()[0], r) for r in records
            if re.match(r"(Direct|Indirect) leak of ", r)]


def run_bounded(argv, env):
    """Run argv in a session of its own with its output in files (not pipes:
    a grandchild that outlives it must not hold the test up), at most
    TIMEOUT seconds; then kill whatever it left in its process group."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([str(a) for a in argv], env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = f"killed after {TIMEOUT} s"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, rc, out.read(), err.read())


def run_proof(tag, argv, env=None):
    env = dict(os.environ if env is None else env)
    env["MQLITE_BUILD_DIR"] = str(BUILD)
    env["MQLITE_SOURCE_DIR"] = str(ROOT)
    if SANITIZE:
        env = asan_env(env)
    p = run_bounded(argv, env)
    report = f"$ {' '.join(map(str, argv))}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}"
    if SANITIZE:
        # The interpreter's own leaks are tolerated; mqlite's are not.
        leaks = leak_reports(p.stderr)
        ours = [r for _, r in leaks if "libmqlite" in r or "/core/src/" in r]
        assert not ours, "leak in mqlite:\n" + "\n".join(ours) + "\n" + report
        others = SANITIZER_ERROR.findall(p.stderr.replace(
            "ERROR: LeakSanitizer: detected memory leaks", ""))
        assert not others, report
        ok_exit = p.returncode == 0 or (leaks and p.stdout.rstrip().endswith(f"{tag}: OK"))
        assert ok_exit, report
        if leaks:
            print(f"{tag}: {len(leaks)} interpreter-only leak records tolerated")
    else:
        assert p.returncode == 0, report
    lines = p.stdout.splitlines()
    assert lines and lines[-1] == f"{tag}: OK", report
    for pattern in SCENARIO_LINES:
        assert any(re.match(re.escape(tag) + pattern, line) for line in lines), (
            f"missing /{pattern}/\n{report}")
    print(p.stdout)
    return p


def test_library_built():
    assert LIB.exists(), f"{LIB} not built"


def test_python_ctypes():
    run_proof("ctypes", [sys.executable, FFI / "ctypes_roundtrip.py", LIB])


def test_luajit_ffi_from_the_header_text():
    luajit = shutil.which("luajit")
    if not luajit:
        pytest.skip("luajit not installed (scripts/deps.sh installs Debian's luajit)")
    p = run_proof("luajit", [luajit, FFI / "luajit_roundtrip.lua", LIB, HEADER])
    m = re.search(r"ffi.cdef took mqlite.h: (\d+) functions \(all resolved\), (\d+) constants",
                  p.stdout)
    assert m, p.stdout
    declared = set(re.findall(r"MQLITE_API\s+[^;]*?\b(mqlite_\w+)\s*\(",
                              HEADER.read_text(encoding="utf-8")))
    assert int(m.group(1)) == len(declared), (m.group(0), len(declared))


@pytest.mark.skipif(SANITIZE, reason="the sanitizer build runs LuaJIT under ASan instead")
def test_luajit_ffi_under_valgrind():
    luajit, valgrind = shutil.which("luajit"), shutil.which("valgrind")
    if not luajit or not valgrind:
        pytest.skip("needs luajit and valgrind")
    run_proof("luajit", [valgrind, "-q", "--leak-check=full", "--error-exitcode=1",
                         luajit, FFI / "luajit_roundtrip.lua", LIB, HEADER])


def koffi_modules():
    """koffi from the npm registry, installed once per build tree."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js and npm not installed")
    home = BUILD / "ffi-node"
    pkg = home / "node_modules" / "koffi" / "package.json"
    want = KOFFI.split("@")[1]
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == want:
        return node, home / "node_modules"
    home.mkdir(parents=True, exist_ok=True)
    (home / "package.json").write_text(
        '{"name": "mqlite-ffi-proof", "private": true, "description": '
        '"koffi for tests/ffi/koffi_roundtrip.js (tests/python/test_ffi.py)"}\n')
    p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save",
                        "--no-package-lock", "--loglevel=error", KOFFI],
                       cwd=home, capture_output=True, text=True, timeout=280)
    assert p.returncode == 0 and pkg.exists(), (
        f"npm install {KOFFI} failed in {home} (the npm registry must be reachable):\n"
        f"{p.stdout}\n{p.stderr}")
    return node, home / "node_modules"


@pytest.mark.timeout(TIMEOUT + 300)  # + a first `npm install`
def test_node_koffi():
    node, modules = koffi_modules()
    env = dict(os.environ, NODE_PATH=str(modules))
    run_proof("koffi", [node, FFI / "koffi_roundtrip.js", LIB], env)
