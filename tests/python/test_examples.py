"""The C examples (examples/c) run against a broker, as the README tells a
user to run them: `mqlite broker` on a free port, two subscribers (own poll
loop; blocking layer) and a publisher. embedded_broker runs on its own as a
ctest entry of its own."""
import os
import pathlib
import subprocess
import time

import pytest

BUILD = pathlib.Path(os.environ.get("MQLITE_BUILD_DIR", "build"))
BIN = BUILD / "bin"


@pytest.fixture
def broker(tmp_path):
    port_file = tmp_path / "port"
    p = subprocess.Popen([str(BIN / "mqlite"), "broker", "-p", "0", "--port-file", str(port_file)],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not port_file.exists() or not port_file.read_text().strip():
        assert time.monotonic() < deadline, "broker did not start"
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.02)
    yield int(port_file.read_text())
    p.terminate()
    assert p.wait(timeout=10) == 0


def start(name, *args):
    return subprocess.Popen([str(BIN / f"example_{name}"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, text, timeout=10):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen; got {lines}, stderr {proc.stderr.read()}")


def test_publish_reaches_poll_loop_and_blocking_subscribers(broker):
    subs = [start("subscribe_poll", "127.0.0.1", broker, "demo/#", 3),
            start("subscribe_blocking", "127.0.0.1", broker, "demo/#", 3)]
    try:
        for s in subs:
            wait_for_line(s, "subscribed to demo/#")
        pub = subprocess.run([str(BIN / "example_publish"), "127.0.0.1", str(broker), "demo/temp"],
                             capture_output=True, text=True, timeout=20)
        assert pub.returncode == 0, pub.stderr
        assert "2 QoS 1/2 flows completed" in pub.stdout
        for s in subs:
            out, err = s.communicate(timeout=20)
            assert s.returncode == 0, err
            for qos in (0, 1, 2):
                assert f"21.{qos} degrees at QoS {qos}" in out
    finally:
        for s in subs:
            if s.poll() is None:
                s.kill()
                s.wait()


def test_publish_reports_an_unreachable_broker():
    # A port nothing listens on: bind and close to find one.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([str(BIN / "example_publish"), "127.0.0.1", str(port)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "connect" in r.stderr and "refused" in r.stderr.lower()
