"""`mqlite bench` as a user runs it: every mode against `mqlite broker -p 0
--port-file F` and against Debian's mosquitto, checking what the summary
says (counts, JSON fields), and that bad arguments give one line of error
and a non-zero exit.

Each run is bounded by its message count and by -d; every process has a
timeout and brokers are stopped by PID.
"""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
import time
import uuid

import pytest

from peers import MqliteBroker, build_dir, closed_port, mosquitto  # noqa: F401

LATENCY_FIELDS = ("p50", "p99", "max", "samples")


def mqlite() -> str:
    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return str(exe)


def run(args, timeout=30):
    r = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


@pytest.fixture
def broker(tmp_path):
    b = MqliteBroker(tmp_path)
    yield b
    b.stop()


@pytest.fixture(params=["mqlite", "mosquitto"])
def any_broker(request, tmp_path):
    if request.param == "mosquitto":
        yield request.getfixturevalue("mosquitto")
        return
    b = MqliteBroker(tmp_path)
    yield b
    b.stop()


def bench(peer, *args, timeout=30):
    """Run `mqlite bench ... --json`; the exit status and the parsed object."""
    rc, out, err = run([mqlite(), "bench", *args, "-h", peer.host, "-p", str(peer.port),
                        "--json"], timeout=timeout)
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line, got:\n{out}\n{err}"
    return rc, json.loads(lines[0]), err


def check_sane(r: dict, mode: str):
    assert r["mode"] == mode and r["ok"] is True
    for k in ("sent", "acked", "received", "lost", "duplicated", "out_of_order", "errors"):
        assert isinstance(r[k], int) and r[k] >= 0, k
    assert r["msgs_per_s"] > 0 and r["mb_per_s"] > 0
    assert 0 < r["elapsed_s"] < r["duration_s"] + 5
    lat = r["latency_us"]
    assert set(LATENCY_FIELDS) <= set(lat)
    if lat["samples"]:
        assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"]
        # loopback: a message does not take 10 s
        assert lat["max"] < 10_000_000


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pairs_delivers_every_message_once(any_broker, qos):
    rc, r, err = bench(any_broker, "pairs", "-c", "4", "-n", "300", "-q", str(qos), "-d", "10")
    assert rc == 0, err
    check_sane(r, "pairs")
    assert (r["publishers"], r["subscribers"], r["qos"]) == (4, 4, qos)
    assert r["sent"] == r["acked"] == r["received"] == 1200
    assert r["lost"] == 0 and r["duplicated"] == 0
    assert r["latency_us"]["samples"] == 1200


@pytest.mark.parametrize("qos", [1, 2])
def test_fanin_counts_every_publisher(any_broker, qos):
    rc, r, err = bench(any_broker, "fanin", "-c", "5", "-n", "200", "-q", str(qos), "-s", "100")
    assert rc == 0, err
    check_sane(r, "fanin")
    assert (r["publishers"], r["subscribers"], r["size"]) == (5, 1, 100)
    assert r["sent"] == r["received"] == 1000
    assert r["lost"] == 0 and r["duplicated"] == 0
    assert r["mb_per_s"] == pytest.approx(r["msgs_per_s"] * 100 / 1e6, rel=0.01)


@pytest.mark.parametrize("qos", [1, 2])
def test_fanout_delivers_to_every_subscriber(any_broker, qos):
    rc, r, err = bench(any_broker, "fanout", "-c", "6", "-n", "200", "-q", str(qos), "-V", "5")
    assert rc == 0, err
    check_sane(r, "fanout")
    assert (r["publishers"], r["subscribers"], r["protocol"]) == (1, 6, "5.0")
    assert r["sent"] == 200 and r["received"] == 1200
    assert r["lost"] == 0 and r["duplicated"] == 0


@pytest.mark.parametrize("version, name", [("31", "3.1"), ("mqttv311", "3.1.1"), ("5", "5.0")])
def test_every_protocol_version(any_broker, version, name):
    rc, r, err = bench(any_broker, "pairs", "-c", "2", "-n", "100", "-q", "1", "-V", version)
    assert rc == 0, err
    assert r["protocol"] == name
    assert r["received"] == 200 and r["lost"] == 0


def test_pub_counts_acknowledgements(any_broker):
    rc, r, err = bench(any_broker, "pub", "-c", "3", "-n", "400", "-q", "1")
    assert rc == 0, err
    assert r["mode"] == "pub" and r["ok"] is True
    assert r["sent"] == r["acked"] == 1200 and r["lost"] == 0
    assert r["received"] == 0 and r["msgs_per_s"] > 0


def test_sub_counts_what_bench_pub_sends(any_broker):
    """`bench sub` in one process, `bench pub` in another: nothing lost at QoS 1."""
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    p = subprocess.Popen([mqlite(), "bench", "sub", "-h", any_broker.host, "-p",
                          str(any_broker.port), "-t", f"{topic}/#", "-q", "1", "-c", "2",
                          "-n", "1000", "-d", "15", "--json"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = threading.Event()
        err_lines: list[str] = []

        def read_err():
            for line in p.stderr:
                err_lines.append(line.decode(errors="replace"))
                if "ready" in err_lines[-1]:
                    ready.set()

        threading.Thread(target=read_err, daemon=True).start()
        assert ready.wait(10), "".join(err_lines)
        rc, out, err = run([mqlite(), "bench", "pub", "-h", any_broker.host, "-p",
                            str(any_broker.port), "-t", topic, "-q", "1", "-c", "2", "-n", "250",
                            "--quiet"])
        assert rc == 0, err
        assert "sent        500 msgs, acknowledged 500" in out
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, "".join(err_lines)
    r = json.loads(out)
    check_sane(r, "sub")
    assert r["subscribers"] == 2
    # two subscribers on the filter, two publishers of 250 each: 1000 deliveries
    assert r["received"] == 1000 and r["lost"] == 0 and r["duplicated"] == 0


def test_sub_stops_at_duration_when_nothing_arrives(broker):
    t = time.monotonic()
    rc, r, err = bench(broker, "sub", "-d", "1")
    assert rc == 0, err
    assert time.monotonic() - t < 6
    assert r["received"] == 0 and r["lost"] == 0


def test_conns_reports_connect_rate_and_holds(any_broker):
    t = time.monotonic()
    rc, r, err = bench(any_broker, "conns", "-c", "50", "-d", "1")
    elapsed = time.monotonic() - t
    assert rc == 0, err
    assert r["mode"] == "conns" and r["ok"] is True
    assert r["connections"] == 50 and r["connects_per_s"] > 0
    assert 0 < r["connect_s"] < 10
    assert 1 <= elapsed < 8          # held for -d, then done


def test_duration_bounds_an_unlimited_run(broker):
    t = time.monotonic()
    rc, r, err = bench(broker, "pairs", "-c", "2", "-q", "1", "-d", "1")
    assert rc == 0, err
    assert time.monotonic() - t < 6
    assert r["sent"] > 0 and r["lost"] == 0 and r["received"] == r["sent"]


def test_text_summary_names_rates_latency_and_losses(broker):
    rc, out, err = run([mqlite(), "bench", "fanin", "-p", str(broker.port), "-c", "2", "-n", "100",
                        "-q", "1"])
    assert rc == 0, err
    assert "msgs/s" in out and "MB/s" in out
    assert "p50" in out and "p99" in out and "max" in out
    assert "lost        0, duplicated 0" in out
    # stderr is not a terminal here: no progress line, only the ready notice
    assert "\r" not in err


def test_unreachable_broker_is_one_line_and_exit_1():
    rc, out, err = run([mqlite(), "bench", "pairs", "-p", str(closed_port()), "-d", "2"])
    assert rc == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "connect" in err.lower()


@pytest.mark.parametrize("args, word", [
    ([], "MODE"),
    (["nosuchmode"], "nosuchmode"),
    (["pairs", "-q", "3"], "QoS"),
    (["pairs", "-s", "4"], "size"),
    (["pairs", "-c", "0"], "client"),
    (["pairs", "-d", "0"], "duration"),
    (["pairs", "-d", "forever"], "duration"),
    (["pairs", "-p", "70000"], "port"),
    (["pairs", "-V", "4.2"], "protocol"),
    (["pairs", "--bogus"], "--bogus"),
    (["pairs", "-n"], "-n"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, word):
    rc, out, err = run([mqlite(), "bench", *args], timeout=10)
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], err


def test_help_documents_every_mode_and_option():
    rc, out, _ = run([mqlite(), "bench", "--help"])
    assert rc == 0
    for word in ("pub", "sub", "pairs", "fanin", "fanout", "conns", "--host", "--port", "--qos",
                 "--size", "--clients", "--count", "--duration", "--protocol", "--window",
                 "--topic", "--json", "--quiet"):
        assert word in out, word


def run_with_tty_stderr(args, timeout=20) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal, as in an interactive shell."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 4096)
            except OSError:      # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        out = p.stdout.read().decode(errors="replace")
        p.wait(5)
        return p.returncode, out, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)


def test_progress_line_once_a_second_on_a_terminal_only(broker):
    args = [mqlite(), "bench", "pairs", "-p", str(broker.port), "-c", "2", "-q", "1", "-d", "2.5"]
    rc, out, err = run_with_tty_stderr(args)
    assert rc == 0, err
    ticks = re.findall(r"\[\s*(\d+)s\] pairs: sent \d+, received \d+, \d+ msgs/s", err)
    assert ticks[:2] == ["1", "2"], err
    assert "throughput" in out
    rc, out, err = run_with_tty_stderr(args + ["--quiet"])
    assert rc == 0 and "msgs/s" not in err and "throughput" in out
