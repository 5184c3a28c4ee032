"""`mqlite pub --store FILE` and `mqlite broker --persistence-file FILE`
from the shell (docs/persistence.md): the commands a user types.

Both run against `mqlite broker` started here on 127.0.0.1 with a free
port (written to --port-file), stopped by PID; every process has a timeout.
The crash behaviour itself is tested in C (tests/c/test_store_crash.c,
tests/c/test_broker_persist_crash.c).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from peers import build_dir


def mqlite() -> str:
    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return str(exe)


class Broker:
    def __init__(self, tmp_path, *extra):
        self.port_file = tmp_path / f"port-{time.monotonic_ns()}"
        self.log = tmp_path / f"broker-{time.monotonic_ns()}.log"
        self.logf = open(self.log, "wb")
        self.p = subprocess.Popen([mqlite(), "broker", "-p", "0", "--port-file",
                                   str(self.port_file), *extra],
                                  stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 10
        while not self.port_file.exists():
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"broker did not start: {self.text()}")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())

    def text(self) -> str:
        self.logf.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
        self.logf.close()


def run(args, timeout=20):
    r = subprocess.run(args, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def hp(b: Broker):
    return ["-h", "127.0.0.1", "-p", str(b.port)]


def test_pub_store_names_the_client_and_leaves_nothing_pending(tmp_path):
    """A store belongs to one client id: later runs without -i use it, and
    another -i is refused with the owner's name."""
    b = Broker(tmp_path)
    try:
        store = tmp_path / "pub.db"
        rc, _, err = run([mqlite(), "pub", *hp(b), "--store", str(store), "-i", "owner-1",
                          "-q", "2", "-t", "s/t", "-m", "one"])
        assert rc == 0, err
        assert store.exists()
        rc, _, err = run([mqlite(), "pub", *hp(b), "--store", str(store), "-q", "1",
                          "-t", "s/t", "-m", "two"])
        assert rc == 0, err
        assert b.text().count('client "owner-1" connected') == 2
        # Nothing left to send: the resume-only form connects and exits 0.
        rc, _, err = run([mqlite(), "pub", *hp(b), "--store", str(store)])
        assert rc == 0, err
        rc, _, err = run([mqlite(), "pub", *hp(b), "--store", str(store), "-i", "intruder",
                          "-t", "s/t", "-m", "x"])
        assert rc == 1
        assert "owner-1" in err and str(store) in err
    finally:
        b.stop()


def test_broker_persistence_file_keeps_a_retained_message_and_reports_it(tmp_path):
    """MQTT 3.1.1 [MQTT-3.3.1-5]: the retained message is stored; with
    --persistence-file it outlives the process, and start-up says what it
    loaded."""
    db = tmp_path / "broker.db"
    b = Broker(tmp_path, "--persistence-file", str(db))
    try:
        rc, _, err = run([mqlite(), "pub", *hp(b), "-q", "1", "-r", "-t", "keep/me",
                          "-m", "kept"])
        assert rc == 0, err
    finally:
        b.stop()
    b = Broker(tmp_path, "--persistence-file", str(db))
    try:
        assert "1 retained messages" in b.text()
        rc, out, err = run([mqlite(), "sub", *hp(b), "-t", "keep/#", "-C", "1", "-W", "5"])
        assert rc == 0, err
        assert out.strip() == "kept"
    finally:
        b.stop()


def test_broker_refuses_a_damaged_persistence_file_and_keeps_it(tmp_path):
    db = tmp_path / "broken.db"
    junk = bytes(range(256)) * 40
    db.write_bytes(junk)
    r = subprocess.run([mqlite(), "broker", "-p", "0", "--persistence-file", str(db)],
                       capture_output=True, timeout=20)
    assert r.returncode == 1
    err = r.stderr.decode(errors="replace")
    assert str(db) in err and "not an SQLite database" in err and "untouched" in err
    assert db.read_bytes() == junk
