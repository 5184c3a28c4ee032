"""The `mqlite` command as a whole: --version, help, `CMD --help` for every
sub-command, the man page (docs/mqlite.1) kept in step with the --help
texts, `mqlite broker --check`, and `cmake --install`.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from peers import MqliteBroker, build_dir, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAN = ROOT / "docs" / "mqlite.1"
COMMANDS = ["broker", "pub", "sub", "decode", "passwd", "spy", "bench"]
# An option as --help texts write them: -x or --long-name, not inside a word
# (sha512-pbkdf2, mqlite-<cmd>-<pid>) and not a number (-1).
OPTION = re.compile(r"(?<![\w/<-])(--?[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)")


def mqlite() -> str:
    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return str(exe)


def run(args, timeout=20, **kw):
    r = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def help_text(cmd: str) -> str:
    rc, out, err = run([mqlite(), cmd, "--help"])
    assert rc == 0, err
    return out


def man_text() -> str:
    """The man page's words, roff escapes removed (\\- is '-', \\fB bold...)."""
    text = MAN.read_text()
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(em", "-")


def test_version_and_help_list_every_command():
    rc, out, _ = run([mqlite(), "--version"])
    assert rc == 0 and re.fullmatch(r"mqlite \d+\.\d+\.\d+\S*\n", out), out
    rc2, out2, _ = run([mqlite(), "version"])
    assert rc2 == 0 and out2 == out
    rc, out, _ = run([mqlite(), "help"])
    assert rc == 0
    for cmd in COMMANDS:
        assert re.search(rf"^\s+{cmd}\s", out, re.M), cmd
    rc, _, err = run([mqlite(), "nosuchcommand"])
    assert rc == 2 and "unknown command" in err


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    out = help_text(cmd)
    assert out.startswith(f"usage: mqlite {cmd}"), out[:200]


def man_sections(cmd: str) -> str:
    """The man page sections that document `mqlite cmd`: those whose .SH
    heading names it; spy also takes the common options of pub and sub,
    as its --help does ("Connection options (as mqlite sub)")."""
    parts = re.split(r"^\.SH ", man_text(), flags=re.M)
    name = f"MQLITE {cmd.upper()}"
    keep = [p for p in parts
            if re.search(rf"\b{name}\b", p.splitlines()[0] if p else "")
            or (cmd == "spy" and "COMMON OPTIONS" in (p.splitlines()[0] if p else ""))]
    return "\n".join(keep)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_man_page_lists_every_option_of_help(cmd):
    """Every option `mqlite CMD --help` shows is in CMD's section of
    docs/mqlite.1, so the two cannot drift apart."""
    man = man_sections(cmd)
    assert man, f"docs/mqlite.1 has no section for mqlite {cmd}"
    opts = set(OPTION.findall(help_text(cmd)))
    assert opts, f"no options found in `mqlite {cmd} --help`"
    missing = sorted(o for o in opts if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", man))
    assert not missing, f"docs/mqlite.1 lacks {missing} of `mqlite {cmd} --help`"


def test_man_page_renders_without_warnings():
    if not shutil.which("groff"):
        pytest.skip("groff not installed (scripts/deps.sh)")
    rc, _, err = run(["groff", "-man", "-ww", "-z", str(MAN)])
    assert rc == 0 and err == "", err


# ---------------------------------------------------------------------------
# mqlite broker --check
# ---------------------------------------------------------------------------

def test_check_accepts_a_valid_config(tmp_path):
    conf = tmp_path / "ok.conf"
    conf.write_text(f"# a comment\nlistener {free_port()} 127.0.0.1\nallow_anonymous true\n"
                    "max_inflight_messages 20\n")
    rc, out, err = run([mqlite(), "broker", "--check", "-c", str(conf)])
    assert (rc, out, err) == (0, f"{conf}: OK\n", "")


@pytest.mark.parametrize("body, line, word", [
    ("allow_anonymous true\nno_such_key 1\n", 2, "no_such_key"),
    ("\n\nmax_inflight_messages lots\n", 3, "lots"),
    ("listener 1883\ncertfile /nonexistent/cert.pem\n", 1, "keyfile"),   # the listener's line
    ("allow_anonymous false\npassword_file /nonexistent/pw\n", 2, "/nonexistent/pw"),
])
def test_check_names_file_and_line_of_a_bad_config(tmp_path, body, line, word):
    conf = tmp_path / "bad.conf"
    conf.write_text(body)
    rc, out, err = run([mqlite(), "broker", "--check", "-c", str(conf)])
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{conf}:{line}: ") and word in lines[0], err


def test_check_reports_a_missing_file(tmp_path):
    rc, out, err = run([mqlite(), "broker", "--check", "-c", str(tmp_path / "none.conf")])
    assert rc == 1 and out == "" and "none.conf" in err and len(err.strip().splitlines()) == 1


def test_check_needs_a_config():
    rc, _, err = run([mqlite(), "broker", "--check"])
    assert rc == 2 and "-c" in err


def test_check_does_not_start_a_broker(tmp_path):
    """--check returns at once, and its listener is closed again."""
    port = free_port()
    conf = tmp_path / "ok.conf"
    conf.write_text(f"listener {port} 127.0.0.1\n")
    rc, _, err = run([mqlite(), "broker", "--check", "-c", str(conf)], timeout=10)
    assert rc == 0, err
    b = MqliteBroker(tmp_path, "-c", str(conf))   # the port is free again
    try:
        assert b.p.poll() is None
    finally:
        b.stop()


def test_check_leaves_the_persistence_file_alone(tmp_path):
    """--check neither creates the database nor needs the lock a running
    broker holds on it."""
    db = tmp_path / "state.db"
    conf = tmp_path / "p.conf"
    conf.write_text(f"persistence true\npersistence_file {db}\nlistener {free_port()} 127.0.0.1\n")
    rc, out, err = run([mqlite(), "broker", "--check", "-c", str(conf)])
    assert (rc, err) == (0, ""), err
    assert out == f"{conf}: OK (persistence file {db} not opened by --check)\n"
    assert not db.exists()
    running = tmp_path / "running.conf"
    running.write_text(f"persistence true\npersistence_file {db}\n")
    b = MqliteBroker(tmp_path, "-c", str(running))   # opens and locks the database
    try:
        assert db.exists()
        before = db.stat().st_mtime_ns
        rc, out, err = run([mqlite(), "broker", "--check", "-c", str(conf)])
        assert (rc, err) == (0, ""), err
        assert db.stat().st_mtime_ns == before
        assert b.p.poll() is None
    finally:
        b.stop()


# ---------------------------------------------------------------------------
# cmake --install
# ---------------------------------------------------------------------------

def test_install_puts_library_header_command_and_man_page(tmp_path):
    cmake = shutil.which("cmake")
    if not cmake:
        pytest.skip("cmake not on PATH")
    prefix = tmp_path / "prefix"
    rc, out, err = run([cmake, "--install", str(build_dir()), "--prefix", str(prefix)],
                       timeout=120)
    assert rc == 0, err
    files = {p.relative_to(prefix).as_posix() for p in prefix.rglob("*")}
    libdirs = {pathlib.PurePosixPath(f).parent.as_posix() for f in files
               if re.search(r"/libmqlite\.(a|so)$", f)}
    assert len(libdirs) == 1, files
    libdir = prefix / libdirs.pop()
    for name in ("libmqlite.a", "libmqlite.so", "libmqlite.so.0"):
        assert (libdir / name).exists(), name
    assert (prefix / "include" / "mqlite.h").read_bytes() == \
        (ROOT / "core" / "include" / "mqlite.h").read_bytes()
    assert (prefix / "share" / "man" / "man1" / "mqlite.1").read_bytes() == MAN.read_bytes()
    exe = prefix / "bin" / "mqlite"
    assert os.access(exe, os.X_OK)
    rc, out, _ = run([str(exe), "--version"])
    assert rc == 0 and out.startswith("mqlite ")

    # A program built against the installed header and shared library runs.
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    cache = build_dir() / "CMakeCache.txt"
    if not cc or (cache.exists() and "MQLITE_SANITIZE:BOOL=ON" in cache.read_text()):
        return   # a sanitizer build's .so needs the sanitizer runtime to link
    src = tmp_path / "v.c"
    src.write_text('#include <stdio.h>\n#include <mqlite.h>\n'
                   'int main(void) { const char *v; mqlite_version(&v); puts(v); return 0; }\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASAN", "UBSAN", "LD_"))}
    rc, _, err = run([cc, str(src), f"-I{prefix / 'include'}", f"-L{libdir}", "-lmqlite",
                      "-o", str(tmp_path / "v")], timeout=60, env=env)
    assert rc == 0, err
    rc, out2, err = run([str(tmp_path / "v")], env={**env, "LD_LIBRARY_PATH": str(libdir)})
    assert rc == 0 and out.split()[1] == out2.strip(), err
