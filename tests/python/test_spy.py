"""`mqlite spy` as a person uses it.

The terminal UI runs in tmux: keys go in with `send-keys`, the screen comes
back with `capture-pane`, and the assertions read that screen (the topic
tree on the left, the message pane right of the '│', the status bar on top,
notes and prompts on the bottom line). --plain and --json are piped into a
parser; --proxy sits between real clients and the project's broker (or an
echo server), and a malformed packet is sent through it by hand.

Every test starts its own `mqlite broker -p 0 --port-file F`. Every wait is
bounded: screens and files are polled against a deadline, processes have
timeouts. The tmux tests use a private tmux server (-L NAME) that the
fixture kills; they are skipped only when tmux is not installed
(scripts/deps.sh installs it).
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import pathlib
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from peers import MqliteBroker


def build_dir() -> pathlib.Path:
    d = os.environ.get("MQLITE_BUILD_DIR")
    if not d:
        pytest.fail("MQLITE_BUILD_DIR is not set (ctest sets it; by hand: "
                    "MQLITE_BUILD_DIR=build pytest tests/python/test_spy.py)")
    return pathlib.Path(d)


def mqlite() -> str:
    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return str(exe)


def uid() -> str:
    return uuid.uuid4().hex[:8]


def wait_until(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def run(args, timeout=15, input=None):
    r = subprocess.run(args, capture_output=True, timeout=timeout, input=input)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------
# Brokers and raw MQTT bytes
# ---------------------------------------------------------------------------

class Broker(MqliteBroker):
    """`mqlite broker -p 0 --port-file F` (peers.MqliteBroker) with a publish helper."""

    def pub(self, topic, payload: bytes | str, *extra):
        data = payload.encode() if isinstance(payload, str) else payload
        rc, _, err = run([mqlite(), "pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
                          "-s", *extra], input=data)
        assert rc == 0, err


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


def _vbi(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _vbi(len(body)) + body


def connect_packet(client_id: str, version: int = 4) -> bytes:
    props = b"\x00" if version == 5 else b""
    body = _str(b"MQTT") + bytes([version, 0x02]) + (60).to_bytes(2, "big") + props
    return _packet(0x10, body + _str(client_id.encode()))


def publish_packet(topic: str, payload: bytes, version: int = 4, props: bytes = b"") -> bytes:
    head = _str(topic.encode()) + (_vbi(len(props)) + props if version == 5 else b"")
    return _packet(0x30, head + payload)


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    first = exact(1)[0]
    mult, length = 1, 0
    while True:
        b = exact(1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, exact(length)


def raw_session(port: int, packets: list[bytes], version: int = 4):
    """CONNECT, wait for CONNACK, send the packets, DISCONNECT."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(connect_packet(f"raw-{uid()}", version))
        first, _ = read_packet(s)
        assert first >> 4 == 2, "expected CONNACK"
        s.sendall(b"".join(packets) + b"\xe0\x00")
        try:
            while s.recv(4096):   # the broker closes after DISCONNECT
                pass
        except OSError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# The terminal UI in tmux
# ---------------------------------------------------------------------------

TREE_W = 66   # the tree pane of a 120-column screen (11/20 of it)


class Tui:
    """`mqlite spy ARGS` in a detached tmux session on a private server."""

    def __init__(self, tmp: pathlib.Path, args, width=120, height=40):
        self.server = f"mqlite-spy-test-{os.getpid()}-{uid()}"
        self.rc_file = tmp / f"spy-{uid()}.rc"
        cmd = " ".join(shlex.quote(a) for a in [mqlite(), "spy", *args])
        shell = f"{cmd}; echo $? > {shlex.quote(str(self.rc_file))}; sleep 120"
        self.tmux("new-session", "-d", "-s", "spy", "-x", str(width), "-y", str(height),
                  "env", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "sh", "-c", shell)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()

    def tmux(self, *args):
        env = dict(os.environ)
        env.pop("TMUX", None)
        r = subprocess.run(["tmux", "-L", self.server, "-f", "/dev/null", *args],
                           capture_output=True, text=True, timeout=10, env=env)
        assert r.returncode == 0, f"tmux {args}: {r.stderr}"
        return r.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "spy")

    def lines(self) -> list[str]:
        return self.screen().split("\n")

    def tree(self) -> list[str]:
        """Left pane rows (below the column headers, above the bottom line)."""
        return [l.split("│")[0] for l in self.lines()[2:-2]]

    def detail(self) -> str:
        return "\n".join(l.split("│", 1)[1] for l in self.lines()[1:-1] if "│" in l)

    def status(self) -> str:
        return self.lines()[0]

    def bottom(self) -> str:
        lines = self.screen().rstrip("\n").split("\n")
        return lines[-1] if lines else ""

    def wait(self, pred, timeout=10.0, what=""):
        deadline = time.monotonic() + timeout
        while True:
            if pred(self):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"screen never showed {what or pred} in {timeout}s:\n{self.screen()}")
            time.sleep(0.1)

    def wait_text(self, text, timeout=10.0):
        self.wait(lambda t: text in t.screen(), timeout, repr(text))

    def wait_gone(self, text, timeout=10.0):
        self.wait(lambda t: text not in t.screen(), timeout, f"no {text!r}")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "spy", *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", "spy", "-l", text)

    def exit_status(self, timeout=10.0) -> int:
        text = wait_until(lambda: self.rc_file.exists() and self.rc_file.read_text().strip(),
                          timeout, "mqlite spy to exit")
        return int(text)

    def kill(self):
        try:
            self.tmux("kill-server")
        except AssertionError:
            pass
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)      # kill-server leaves the socket file


@pytest.fixture
def tui(tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (scripts/deps.sh installs it)")
    made = []

    def start(broker, *args, width=120, height=40, ready=True):
        """Start the UI; with `ready`, wait until it shows a retained marker
        (published first), which proves its subscriptions are in place."""
        if ready:
            broker.pub("spytest/ready", "1", "-r")
        t = Tui(tmp_path, ["-h", "127.0.0.1", "-p", str(broker.port), *args], width, height)
        made.append(t)
        if ready:
            t.wait(lambda s: any(re.match(r"^\s*. spytest\b", l) for l in s.tree()), 10,
                   "the spytest/ready marker")
        return t
    yield start
    for t in made:
        t.kill()


def row(t: Tui, name: str):
    """The tree row of a node: (indent, name, count, rate), or None."""
    for line in t.tree():
        m = re.match(r"^(\s*)(?:[▾▸] )?(\S+)(?: \(\d+ topics?\))?\s+(\d+)\s+(\d+\.\d)\s*$", line)
        if m and m.group(2) == name:
            return len(m.group(1)), m.group(2), int(m.group(3)), float(m.group(4))
    return None


def count_of(t: Tui, name: str):
    r = row(t, name)
    return r[2] if r else None


def select_by_arrows(t: Tui, topic: str, limit=40):
    """Home, then Down until the message pane shows the topic."""
    t.keys("Home")
    for _ in range(limit):
        time.sleep(0.15)
        if f"Topic: {topic}\n" in t.detail() + "\n":
            return
        t.keys("Down")
    pytest.fail(f"never reached {topic} with the arrow keys:\n{t.screen()}")


def search(t: Tui, text: str):
    """`/text` Enter: the first matching topic becomes the selection."""
    t.keys("/")
    t.wait_text("filter topics:", 5)
    t.keys("C-u")                    # the prompt starts with the current filter
    t.type(text)
    t.keys("Enter")
    t.wait(lambda s: f'filter "{text}"' in s.bottom(), 5, "the filter line")


def quit_ok(t: Tui):
    t.keys("q")
    assert t.exit_status() == 0


def test_tui_tree_shows_topics_counts_and_sys(broker, tui):
    """MQTT '#' and '$SYS/#' by default: the tree shows both, with counts
    per topic and totals per subtree; arrows move, Right expands."""
    t = tui(broker)
    t.wait(lambda s: row(s, "$SYS") is not None, 10, "$SYS in the tree")
    for _ in range(3):
        broker.pub("sensors/room1/temp", "21.5")
    broker.pub("sensors/room1/hum", "40")
    broker.pub("sensors/room2/co2", "400")
    t.wait(lambda s: count_of(s, "sensors") == 5, 10, "sensors with 5 messages")
    assert "connected" in t.status()
    assert count_of(t, "room1") == 4 and count_of(t, "room2") == 1
    assert "room1 (2 topics)" in t.screen()            # collapsed: says what it holds
    select_by_arrows(t, "sensors/room1")
    assert "Subtree: 4 msgs in 2 topics" in t.detail()
    t.keys("Right")
    t.wait(lambda s: count_of(s, "temp") == 3 and count_of(s, "hum") == 1, 5, "temp 3, hum 1")
    assert row(t, "temp")[0] > row(t, "room1")[0] > row(t, "sensors")[0]   # indented by level
    t.keys("Down")   # the first child: hum (sorted)
    t.wait(lambda s: "Topic: sensors/room1/hum" in s.detail(), 5, "hum selected")
    t.keys("Down")
    t.wait(lambda s: "Topic: sensors/room1/temp" in s.detail(), 5, "temp selected")
    d = t.detail()
    assert "This topic: 3 msgs" in d and "21.5" in d and "QoS 0" in d
    t.keys("Left")           # to the parent,
    t.wait(lambda s: "Topic: sensors/room1\n" in s.detail() + "\n", 5, "room1 selected")
    t.keys("Left")           # then collapse it
    t.wait(lambda s: row(s, "temp") is None, 5, "room1 collapsed")
    quit_ok(t)


def test_tui_shows_text_json_and_binary_payloads(broker, tui):
    broker.pub("pay/retained", "kept", "-r", "-q", "1")   # retained before we subscribe
    t = tui(broker, "--no-sys")
    broker.pub("pay/text", "hello world")
    broker.pub("pay/json", '{"temp": 21.5, "tags": ["a", "b"], "ok": true}')
    broker.pub("pay/bin", bytes([0, 1, 2, 0xFF]) + b"AB")
    t.wait(lambda s: count_of(s, "pay") == 4, 10, "4 messages under pay")

    search(t, "pay/text")
    t.wait(lambda s: "Topic: pay/text" in s.detail(), 5, "pay/text selected")
    d = t.detail()
    assert "hello world" in d and "11 bytes, text" in d

    search(t, "pay/json")
    t.wait(lambda s: "Topic: pay/json" in s.detail(), 5, "pay/json selected")
    lines = [l.strip() for l in t.detail().split("\n")]
    assert "JSON" in t.detail()
    start = lines.index("{")
    assert lines[start:start + 8] == ['{', '"temp": 21.5,', '"tags": [', '"a",', '"b"', '],',
                                      '"ok": true', '}']

    search(t, "pay/bin")
    t.wait(lambda s: "Topic: pay/bin" in s.detail(), 5, "pay/bin selected")
    d = t.detail()
    assert "6 bytes, binary" in d
    assert re.search(r"0000\s+00 01 02 ff 41 42\s+\|\.\.\.\.AB\|", d), d

    search(t, "pay/retained")
    t.wait(lambda s: "Topic: pay/retained" in s.detail(), 5, "pay/retained selected")
    assert "QoS 1 | retained" in t.detail()
    quit_ok(t)


def test_tui_shows_v5_properties(broker, tui):
    t = tui(broker, "-V", "5", "--no-sys")
    props = (b"\x03" + _str(b"application/json")            # content type
             + b"\x08" + _str(b"reply/here")                 # response topic
             + b"\x09" + _str(b"\x01\x02corr")               # correlation data
             + b"\x02" + (120).to_bytes(4, "big")            # message expiry
             + b"\x26" + _str(b"origin") + _str(b"sensor-7"))  # user property
    raw_session(broker.port, [publish_packet("v5/props", b'{"x":1}', 5, props)], 5)
    t.wait(lambda s: count_of(s, "props") == 1, 10, "v5/props")
    search(t, "v5/props")
    t.wait(lambda s: "Topic: v5/props" in s.detail(), 5, "v5/props selected")
    d = t.detail()
    assert "Content Type: application/json" in d
    assert "Response Topic: reply/here" in d
    assert "Correlation Data: 0x0102636f7272" in d
    assert re.search(r"Message Expiry Interval: 1[12]\d s", d), d
    assert "User Property: origin = sensor-7" in d
    assert "MQTT 5.0" in t.status()
    quit_ok(t)


def test_tui_search_filters_topics_and_n_moves_between_matches(broker, tui):
    t = tui(broker, "--no-sys")
    for topic in ("x/alpha", "y/beta", "z/alphabet"):
        broker.pub(topic, "v")
    t.wait(lambda s: row(s, "alphabet") is not None, 10, "all three topics")
    t.keys("/")
    t.type("ALPHA")                           # substring, case-insensitive, live
    t.wait(lambda s: row(s, "beta") is None and "TOPICS (filtered)" in s.screen(), 5,
           "beta filtered out")
    assert row(t, "alpha") and row(t, "alphabet")
    t.keys("Enter")
    t.wait(lambda s: 'filter "ALPHA": 2 matching topics' in s.bottom(), 5, "match count")
    assert "Topic: x/alpha" in t.detail()
    t.keys("n")
    t.wait(lambda s: "Topic: z/alphabet" in s.detail(), 5, "next match")
    t.keys("n")
    t.wait(lambda s: "Topic: x/alpha" in s.detail(), 5, "wrapped to the first match")
    t.keys("N")
    t.wait(lambda s: "Topic: z/alphabet" in s.detail(), 5, "previous match")
    t.keys("Escape")
    t.wait(lambda s: row(s, "beta") is not None, 5, "filter cleared")
    assert "Topic: z/alphabet" in t.detail()   # the found topic stays selected
    t.keys("/")
    t.type("nothing-like-this")
    t.wait_text("no topic matches the filter", 5)
    t.keys("Escape")                           # cancelling restores the view
    t.wait(lambda s: row(s, "beta") is not None, 5, "filter prompt cancelled")
    quit_ok(t)


def test_tui_publish_from_the_ui_reaches_a_subscriber(broker, tui, tmp_path):
    t = tui(broker, "--no-sys")
    out = open(tmp_path / "sub.out", "wb")
    err = open(tmp_path / "sub.err", "wb")
    sub = subprocess.Popen([mqlite(), "sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            "ui/msg", "-q", "1", "-v", "-d", "-C", "1", "-W", "20"],
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        wait_until(lambda: b"SUBACK" in (tmp_path / "sub.err").read_bytes(), 10, "sub's SUBACK")
        t.keys("P")
        t.wait_text("publish - topic:", 5)
        t.keys("C-u")
        t.type("ui/msg")
        t.keys("Enter")
        t.wait_text("publish - payload:", 5)
        t.type("hello from the UI ✓")
        t.keys("Enter")
        t.wait_text("publish - QoS 0, 1 or 2", 5)
        t.type("1")
        t.keys("Enter")
        t.wait_text("publish - retain? y/N", 5)
        t.type("n")
        t.keys("Enter")
        assert sub.wait(15) == 0
        assert (tmp_path / "sub.out").read_text() == "ui/msg hello from the UI ✓\n"
        t.wait_text("acknowledged: Success", 10)
        t.wait(lambda s: count_of(s, "msg") == 1, 10, "the UI's own message in the tree")
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
        out.close()
        err.close()
    t.keys("P")
    t.wait_text("publish - topic:", 5)
    t.keys("Escape")
    t.wait_text("publish cancelled", 5)
    quit_ok(t)


def test_tui_pause_freezes_the_display_and_keeps_counting(broker, tui):
    t = tui(broker, "--no-sys")
    broker.pub("p/count", "first")
    t.wait(lambda s: count_of(s, "count") == 1, 10, "p/count 1")
    search(t, "p/count")
    t.keys("Escape")
    t.keys("p")
    t.wait_text("PAUSED: display frozen, +0 msgs counted", 5)
    broker.pub("p/count", "second")
    broker.pub("p/count", "third")
    broker.pub("p/new", "born while paused")
    t.wait_text("+3 msgs counted", 10)
    assert count_of(t, "count") == 1 and row(t, "new") is None
    assert "first" in t.detail() and "third" not in t.detail()
    t.keys("p")
    t.wait_gone("PAUSED", 5)
    t.wait(lambda s: count_of(s, "count") == 3 and row(s, "new") is not None, 5, "resumed view")
    assert "third" in t.detail()
    t.keys("c")
    t.wait(lambda s: count_of(s, "count") == 0, 5, "counts cleared")
    quit_ok(t)


def test_tui_help_overlay_and_q_exits_0(broker, tui):
    t = tui(broker, "--no-sys")
    t.keys("?")
    t.wait_text("mqlite spy - keys", 5)
    assert "Pause freezes the display" in t.screen()
    t.keys("x")
    t.wait_gone("mqlite spy - keys", 5)
    t.keys("q")
    assert t.exit_status() == 0


def test_tui_follows_a_resize(broker, tui):
    t = tui(broker, "--no-sys")
    broker.pub("r/topic", "v")
    t.wait(lambda s: row(s, "topic") is not None, 10, "r/topic")
    t.tmux("resize-window", "-t", "spy", "-x", "80", "-y", "24")
    t.wait(lambda s: len(s.screen().rstrip("\n").split("\n")) == 24 and
           len(s.lines()[2]) <= 80 and "│" in s.lines()[2] and
           s.lines()[2].index("│") == 40, 5, "the 80x24 layout")
    assert "connected" in t.status()
    t.tmux("resize-window", "-t", "spy", "-x", "120", "-y", "40")
    t.wait(lambda s: s.lines()[2].find("│") == TREE_W, 5, "the 120x40 layout")
    quit_ok(t)


def test_tui_handles_thousands_of_topics(broker, tui):
    t = tui(broker, "-t", "load/#", "-t", "spytest/#")
    n = 3000
    packets = [publish_packet(f"load/d{i // 100:02d}/t{i:04d}", b"%d" % i) for i in range(n)]
    raw_session(broker.port, packets)
    t.wait(lambda s: f"{n + 1} topics" in s.status(), 20, f"{n + 1} topics")
    t.wait(lambda s: count_of(s, "load") == n, 10, "the load subtree total")
    t.keys("/")
    t.type("t2999")
    t.keys("Enter")
    t.wait(lambda s: "Topic: load/d29/t2999" in s.detail(), 5, "the last topic found")
    t.keys("Escape")                         # a key at a time, as a person types
    t.wait_gone("TOPICS (filtered)", 5)
    t.keys("Home")
    t.wait(lambda s: "Topic: load\n" in s.detail() + "\n", 5, "Home")
    t.keys("*")                              # expand everything below: 3000 more rows
    t.wait(lambda s: row(s, "t0000") is not None, 5, "the expanded subtree")
    t.keys("End")
    t.wait(lambda s: "Topic: spytest/ready" in s.detail(), 5, "End")
    t.keys("Up")                             # spytest, then the last load topic
    t.wait(lambda s: "Topic: spytest\n" in s.detail() + "\n", 5, "spytest")
    t.keys("Up")
    t.wait(lambda s: "Topic: load/d29/t2999" in s.detail(), 5, "the last load topic")
    quit_ok(t)


def test_tui_shows_a_lost_connection(broker, tui):
    t = tui(broker, "--no-sys")
    broker.stop()
    t.wait(lambda s: "disconnected" in s.status(), 10, "disconnected in the status bar")
    t.wait_text("reconnecting", 5)
    quit_ok(t)


def test_tui_needs_a_terminal(broker):
    rc, out, err = run([mqlite(), "spy", "-p", str(broker.port)], timeout=10)
    assert rc == 2 and "--plain" in err and out == ""


# ---------------------------------------------------------------------------
# --plain and --json
# ---------------------------------------------------------------------------

class Spy:
    """`mqlite spy --plain/--json ... -d`; ready once its SUBACKs are in."""

    def __init__(self, tmp: pathlib.Path, args, acks=1):
        self.out_path = tmp / f"spy-{uid()}.out"
        self.err_path = tmp / f"spy-{uid()}.err"
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen([mqlite(), "spy", "-d", *args], stdin=subprocess.DEVNULL,
                                  stdout=self.out, stderr=self.err)
        wait_until(lambda: self.err_path.read_text(errors="replace").count("SUBACK") >= acks
                   or self.p.poll() is not None, 10, "spy's SUBACK")

    def finish(self, timeout=15):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
            pytest.fail(f"spy did not exit; stderr: {self.stderr()}")
        self.out.close()
        self.err.close()
        return rc

    def lines(self):
        return self.out_path.read_text().splitlines()

    def stderr(self):
        return self.err_path.read_text(errors="replace")


PLAIN = re.compile(r'^(\S+) ("(?:[^"\\]|\\.)*"|\S+) qos=([012]) retain=([01]) (.*)$')


def iso_ms(ts: str) -> datetime.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts), ts
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_plain_prints_one_escaped_line_per_message(broker, tmp_path):
    broker.pub("pl/kept", "old", "-r", "-q", "1")    # retained: comes first, retain=1
    spy = Spy(tmp_path, ["--plain", "-p", str(broker.port), "-t", "pl/#", "-C", "6", "-W", "20"])
    before = datetime.datetime.now(datetime.timezone.utc)
    broker.pub("pl/text", "hello world")
    broker.pub("pl/lines", 'one\ntwo\t"three" \\ four')
    broker.pub("pl/with space", "x")
    broker.pub("pl/bin", bytes([0, 1, 0xFE, 0xFF]))
    broker.pub("pl/utf8", "héllo €", "-q", "1")
    assert spy.finish() == 0, spy.stderr()
    lines = spy.lines()
    assert len(lines) == 6, lines
    parsed = [PLAIN.match(l) for l in lines]
    assert all(parsed), lines
    for m in parsed:
        assert abs((iso_ms(m.group(1)) - before).total_seconds()) < 30
    fields = [m.groups()[1:] for m in parsed]
    assert fields == [
        ("pl/kept", "1", "1", '"old"'),
        ("pl/text", "0", "0", '"hello world"'),
        ("pl/lines", "0", "0", '"one\\ntwo\\t\\"three\\" \\\\ four"'),
        ('"pl/with space"', "0", "0", '"x"'),
        ("pl/bin", "0", "0", "0x0001feff"),
        ("pl/utf8", "1", "0", '"héllo €"'),
    ]


def test_json_lines_carry_payload_and_v5_properties(broker, tmp_path):
    spy = Spy(tmp_path, ["--json", "-V", "5", "-p", str(broker.port), "-t", "js/#", "-C", "3",
                         "-W", "20"])
    broker.pub("js/text", "héllo")
    broker.pub("js/bin", bytes([0, 0xFF, 0x10]))
    props = (b"\x03" + _str(b"text/plain") + b"\x09" + _str(b"\xff\x00")
             + b"\x26" + _str(b"k") + _str(b"v1") + b"\x26" + _str(b"k") + _str(b"v2")
             + b"\x01\x01")
    raw_session(broker.port, [publish_packet("js/props", b"p", 5, props)], 5)
    assert spy.finish() == 0, spy.stderr()
    msgs = [json.loads(l) for l in spy.lines()]
    assert len(msgs) == 3
    text, binary, withprops = msgs
    for m in msgs:
        iso_ms(m["time"])
        assert m["qos"] == 0 and m["retain"] is False and m["dup"] is False
    assert text["topic"] == "js/text" and text["payload"] == "héllo"
    assert text["payload_bytes"] == len("héllo".encode()) and "properties" not in text
    assert "payload" not in binary and base64.b64decode(binary["payload_base64"]) == b"\0\xff\x10"
    assert withprops["properties"] == {
        "content_type": "text/plain",
        "correlation_data_base64": base64.b64encode(b"\xff\x00").decode(),
        "user_properties": [["k", "v1"], ["k", "v2"]],
        "payload_format_indicator": 1,
    }


def test_plain_C_and_W_exit_statuses(broker, tmp_path):
    rc, out, err = run([mqlite(), "spy", "--plain", "-p", str(broker.port), "-t", "none/#",
                        "-C", "2", "-W", "1"], timeout=10)
    assert (rc, out) == (27, "") and "timed out" in err
    rc, out, err = run([mqlite(), "spy", "--json", "-p", str(broker.port), "-t", "none/#",
                        "-W", "1"], timeout=10)
    assert (rc, out, err) == (0, "", "")
    rc, _, err = run([mqlite(), "spy", "--plain", "-p", str(free_port()), "-W", "5"], timeout=10)
    assert rc == 1 and "cannot connect" in err


def test_plain_default_filters_include_sys(broker, tmp_path):
    """'#' and '$SYS/#' by default; the project's broker publishes $SYS."""
    spy = Spy(tmp_path, ["--plain", "-p", str(broker.port), "-C", "1", "-W", "20"], acks=2)
    assert spy.finish() == 0, spy.stderr()
    assert spy.lines()[0].split(" ")[1].startswith(("$SYS/", '"$SYS/'))


def fake_broker_refusing_sys(port_box: list, done: threading.Event):
    """A scripted 3.1.1 broker: grants '#', refuses '$SYS/#', sends one message."""
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)
        port_box.append(ls.getsockname()[1])
        conn, _ = ls.accept()
        with conn:
            conn.settimeout(10)
            read_packet(conn)                                # CONNECT
            conn.sendall(b"\x20\x02\x00\x00")
            for _ in range(2):
                first, body = read_packet(conn)              # SUBSCRIBE
                assert first == 0x82
                flen = int.from_bytes(body[2:4], "big")
                code = 0x80 if body[4:4 + flen].startswith(b"$SYS") else 0x00
                conn.sendall(b"\x90\x03" + body[:2] + bytes([code]))
            conn.sendall(publish_packet("fake/topic", b"hi"))
            try:
                while conn.recv(100):
                    pass
            except OSError:
                pass
    done.set()


def test_plain_tolerates_a_refused_sys_subscription(tmp_path):
    port_box: list = []
    done = threading.Event()
    th = threading.Thread(target=fake_broker_refusing_sys, args=(port_box, done), daemon=True)
    th.start()
    port = wait_until(lambda: port_box and port_box[0], 5, "the fake broker")
    rc, out, err = run([mqlite(), "spy", "--plain", "-p", str(port), "-C", "1", "-W", "10"])
    assert rc == 0, err
    assert PLAIN.match(out.strip()).group(2) == "fake/topic"
    assert "subscription to $SYS/# refused" in err and "watching without it" in err
    th.join(10)


def start_mosquitto(tmp: pathlib.Path):
    if not shutil.which("mosquitto"):
        pytest.skip("mosquitto is not installed (scripts/deps.sh installs it)")
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "sys_interval 1\n")
    log = open(tmp / "mosquitto.log", "wb")
    p = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return p.poll() is not None
    wait_until(up, 10, "mosquitto to listen")
    if p.poll() is not None:
        pytest.fail(f"mosquitto did not start: {(tmp / 'mosquitto.log').read_text()}")
    return p, port, log


def test_json_against_mosquitto_with_sys(tmp_path):
    p, port, log = start_mosquitto(tmp_path)
    try:
        spy = Spy(tmp_path, ["--json", "-V", "5", "-p", str(port), "-C", "5", "-W", "20"], acks=2)
        rc, _, err = run(["mosquitto_pub", "-p", str(port), "-t", "mosq/x", "-m", "hi"])
        assert rc == 0, err
        assert spy.finish() == 0, spy.stderr()
        msgs = [json.loads(l) for l in spy.lines()]
        assert any(m["topic"].startswith("$SYS/") for m in msgs)
    finally:
        p.terminate()
        p.wait(5)
        log.close()


# ---------------------------------------------------------------------------
# --proxy: the decoding sniffer
# ---------------------------------------------------------------------------

class Proxy:
    def __init__(self, tmp: pathlib.Path, to: str, *extra):
        self.out_path = tmp / f"proxy-{uid()}.out"
        port_file = tmp / f"proxy-{uid()}.port"
        self.out = open(self.out_path, "wb")
        self.p = subprocess.Popen([mqlite(), "spy", *extra, "--proxy", "0", "--to", to,
                                   "--port-file", str(port_file), "-W", "60"],
                                  stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=subprocess.STDOUT)
        self.port = int(wait_until(lambda: port_file.exists() and port_file.read_text().strip(),
                                   10, "the proxy's port file"))

    def text(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline:
                pytest.fail(f"proxy never printed {text!r}:\n{self.text()}")
            time.sleep(0.05)

    def wait_for_end(self, conn: int, timeout=10.0):
        # A connection ends cleanly ("closed by ...") or, when one side closes
        # while the other still sends (DISCONNECT racing a PUBREL), with a
        # reset the proxy reports as "<side> socket: ...".
        marks = (f"#{conn} closed by", f"#{conn} client socket:", f"#{conn} broker socket:")
        deadline = time.monotonic() + timeout
        while not any(m in self.text() for m in marks):
            if time.monotonic() > deadline:
                pytest.fail(f"proxy never reported the end of #{conn}:\n{self.text()}")
            time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                assert self.p.wait(5) == 0
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.out.close()


@pytest.fixture
def proxies(tmp_path):
    made = []

    def make(to, *extra):
        p = Proxy(tmp_path, to, *extra)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def test_proxy_decodes_pub_and_sub_end_to_end(broker, proxies, tmp_path):
    px = proxies(f"127.0.0.1:{broker.port}")
    first = px.text().splitlines()[0]
    assert f"listening on 127.0.0.1:{px.port}, forwarding to 127.0.0.1:{broker.port}" in first
    sub = subprocess.Popen([mqlite(), "sub", "-p", str(px.port), "-V", "5", "-t", "px/#",
                            "-q", "2", "-v", "-C", "1", "-W", "20"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    px.wait_for("B->C SUBACK")
    rc, _, err = run([mqlite(), "pub", "-p", str(px.port), "-t", "px/a", "-m", "through",
                      "-q", "2"])
    assert rc == 0, err
    out, err = sub.communicate(timeout=20)
    assert sub.returncode == 0, err
    assert out.decode() == "px/a through\n"
    px.wait_for_end(1)   # by the client or the broker: DISCONNECT races
    px.wait_for_end(2)
    text = px.text()
    line = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z #(\d+) (C->B|B->C) (\w+)")
    seen = {(m.group(2), m.group(3)) for m in map(line.match, text.splitlines()) if m}
    for expected in [("C->B", "CONNECT"), ("B->C", "CONNACK"), ("C->B", "SUBSCRIBE"),
                     ("B->C", "SUBACK"), ("C->B", "PUBLISH"), ("B->C", "PUBREC"),
                     ("C->B", "PUBREL"), ("B->C", "PUBCOMP"), ("B->C", "PUBLISH"),
                     ("C->B", "PUBREC"), ("B->C", "PUBREL"), ("C->B", "DISCONNECT")]:
        assert expected in seen, f"{expected} not in proxy output:\n{text}"
    assert "CONNECT v5" in text and "CONNECT v4" in text        # level from each CONNECT
    assert 'topic="px/a" payload="through"' in text
    assert "MALFORMED" not in text


def test_proxy_flags_a_malformed_packet_with_its_rule(broker, proxies):
    """MQTT 3.1.1 and 5.0 [MQTT-3.3.1-4]: a PUBLISH with QoS 3 is malformed."""
    px = proxies(f"127.0.0.1:{broker.port}", "--decode")
    with socket.create_connection(("127.0.0.1", px.port), timeout=10) as s:
        s.sendall(connect_packet("bad-device"))
        assert read_packet(s)[0] == 0x20
        s.sendall(bytes.fromhex("36 05 00 01 61 00 00"))     # QoS bits 11
        # forwarded unchanged: the broker sees it, and hangs up
        s.settimeout(10)
        assert s.recv(100) == b""
    px.wait_for("MALFORMED PACKET MQLITE_ERR_QOS3")
    text = px.text()
    assert "[MQTT-3.3.1-4]" in text
    assert "bytes (7): 36 05 00 01 61 00 00" in text
    assert "decoding of this direction stops here" in text
    px.wait_for("closed by the broker")


class EchoServer:
    """Upstream that sends back whatever it receives (many clients)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.stop_flag = threading.Event()
        self.th = threading.Thread(target=self._serve, daemon=True)
        self.th.start()

    def _serve(self):
        while not self.stop_flag.is_set():
            try:
                conn, _ = self.ls.accept()
            except OSError:
                continue
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        conn.settimeout(20)
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self):
        self.stop_flag.set()
        self.th.join(5)
        self.ls.close()


def exchange(port, payload: bytes, result: dict, key):
    """Send payload through, half-close, read everything back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            sender = threading.Thread(target=lambda: (s.sendall(payload),
                                                      s.shutdown(socket.SHUT_WR)))
            sender.start()
            got = bytearray()
            while chunk := s.recv(65536):
                got += chunk
            sender.join(20)
            result[key] = bytes(got)
    except OSError as e:
        result[key] = e


def test_proxy_keeps_forwarding_after_a_malformed_packet(proxies):
    echo = EchoServer()
    try:
        px = proxies(f"127.0.0.1:{echo.port}")
        stream = (connect_packet("dev") + bytes.fromhex("36 05 00 01 61 00 00")
                  + publish_packet("after/the/bad/one", b"still here") + b"tail")
        result: dict = {}
        exchange(px.port, stream, result, 0)
        assert result[0] == stream               # every byte, unchanged, both ways
        px.wait_for("closed by")
        text = px.text()
        assert "C->B MALFORMED PACKET MQLITE_ERR_QOS3" in text
        # the echo sends a CONNECT back: wrong way round for a broker
        assert re.search(r"B->C (MALFORMED PACKET|PROTOCOL ERROR) MQLITE_ERR_", text), text
        assert "after/the/bad/one" not in text   # decoding stopped: framing is lost
    finally:
        echo.close()


def test_proxy_forwards_many_concurrent_connections_unchanged(proxies):
    echo = EchoServer()
    try:
        px = proxies(f"127.0.0.1:{echo.port}")
        rnd = random.Random(8)
        payloads = [rnd.randbytes(300_000 + i) for i in range(12)]
        result: dict = {}
        threads = [threading.Thread(target=exchange, args=(px.port, p, result, i))
                   for i, p in enumerate(payloads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        for i, p in enumerate(payloads):
            assert result.get(i) == p, f"connection {i}: {type(result.get(i))}"
        px.wait_for("#12 ", 10)
        wait_until(lambda: px.text().count("closed by") == 12, 10, "12 closes")
    finally:
        echo.close()


def test_proxy_reports_an_unreachable_broker(proxies):
    px = proxies(f"127.0.0.1:{free_port()}")
    with socket.create_connection(("127.0.0.1", px.port), timeout=10) as s:
        s.settimeout(10)
        assert s.recv(10) == b""              # the client is let go
    px.wait_for("cannot connect to 127.0.0.1:")


def test_proxy_option_errors():
    for args, why in [(["--decode"], "--decode needs --proxy"),
                      (["--proxy", "0"], "--proxy needs --to"),
                      (["--proxy", "0", "--to", "nohostport"], "invalid value"),
                      (["--plain", "--json"], "exclude each other"),
                      (["-C", "3"], "-C N goes with --plain or --json"),
                      (["-d"], "-d goes with --plain or --json")]:
        rc, _, err = run([mqlite(), "spy", *args], timeout=10)
        assert rc == 2 and why in err, (args, err)


def test_help_documents_every_mode_and_key():
    rc, out, err = run([mqlite(), "spy", "--help"])
    assert rc == 0 and err == ""
    for word in ["--plain", "--json", "--proxy LISTEN_PORT --to HOST:PORT", "--decode",
                 "payload_base64", "-C N", "-W SECS", "$SYS/#", "pause", "still received",
                 "P publish", "/ filter", "? help", "q quit", "MQTT statement id",
                 "--max-payload", "--no-sys", "-V VERSION"]:
        assert word in out, word
    rc, out, _ = run([mqlite(), "help"])
    assert "spy" in out
