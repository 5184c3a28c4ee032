"""The Python examples (examples/python) run as a user runs them, against
an in-process broker (and examples/python/test_inprocess_broker.py, a
pytest file, runs under pytest on its own)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import List

import pytest

import mqlite
from pychild import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
EX = ROOT / "examples" / "python"
PKG_PARENT = str(pathlib.Path(mqlite.__file__).resolve().parents[1])


def env() -> dict:
    e = child_env()
    e["PYTHONPATH"] = PKG_PARENT
    return e


def start(name: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(EX / name), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def wait_line(p: subprocess.Popen, text: str, timeout: float = 10) -> List[str]:
    lines: List[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen; got {lines}; stderr {p.stderr.read()}")  # type: ignore[union-attr]


def test_sensor_publisher_and_printing_subscriber(mqlite_broker: mqlite.Broker) -> None:
    port = mqlite_broker.port
    sub = start("print_subscriber.py", "--port", port, "--topic", "sensors/#", "--count", 3,
                "--timeout", 10)
    try:
        wait_line(sub, "subscribed to sensors/#")
        pub = subprocess.run([sys.executable, str(EX / "sensor_publish.py"), "--port", str(port),
                              "--count", "3", "--interval", "0.05"], capture_output=True,
                             text=True, env=env(), timeout=30)
        assert pub.returncode == 0, pub.stderr
        assert pub.stdout.count("published #") == 3
        out, err = sub.communicate(timeout=30)
        assert sub.returncode == 0, err
        lines = [x for x in out.splitlines() if x.startswith("sensors/demo/env")]
        assert len(lines) == 3 and all('"temp_c"' in x and "[QoS 1]" in x for x in lines)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def test_asyncio_request_response() -> None:
    r = subprocess.run([sys.executable, str(EX / "request_response_async.py"), "--requests", "4"],
                       capture_output=True, text=True, env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    answers = r.stdout.splitlines()
    assert sorted(a.split(":")[0] for a in answers) == [f"request {i}" for i in range(4)]
    assert all("it is" in a for a in answers)


def test_request_response_against_mosquitto(mosquitto) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run([sys.executable, str(EX / "request_response_async.py"), "--port",
                        str(mosquitto.port)], capture_output=True, text=True, env=env(),
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3


@pytest.mark.timeout(120)
def test_the_example_pytest_file_passes_on_its_own() -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(EX / "test_inprocess_broker.py")], capture_output=True, text=True,
                       env=env(), cwd=EX, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout


def test_demo_peer_uses_the_package() -> None:
    text = (EX / "demo_peer.py").read_text()
    assert "import mqlite" in text and "mqlite_c" not in text


from peers import mosquitto  # noqa: E402,F401 (fixture)
