"""Interoperability of `mqlite broker` with clients nobody here wrote.

Each test starts `mqlite broker -p 0 --port-file F` (the binary from
$MQLITE_BUILD_DIR/bin, or $MQLITE_BIN), and drives it with Debian's
mosquitto_pub / mosquitto_sub (mosquitto-clients) and paho-mqtt 1.6
(python3-paho-mqtt): QoS 0/1/2, retained messages, wills, persistent
sessions, MQTT 3.1, 3.1.1 and 5.0. Processes are stopped by PID; every wait
is bounded.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

mqtt = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402

WAIT = 10.0  # seconds for anything expected to happen

VERSIONS = {"3.1": "mqttv31", "3.1.1": "mqttv311", "5.0": "mqttv5"}


def mqlite_bin() -> Path:
    if os.environ.get("MQLITE_BIN"):
        return Path(os.environ["MQLITE_BIN"])
    build = Path(os.environ.get("MQLITE_BUILD_DIR", "build"))
    return build / "bin" / "mqlite"


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install mosquitto-clients)")


class Broker:
    """One `mqlite broker` process on a free loopback port."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        exe = mqlite_bin()
        if not exe.exists():
            pytest.skip(f"{exe} not built")
        self.port_file = tmp / f"port-{uuid.uuid4().hex}"
        self.log = open(tmp / "broker.log", "w+b")
        self.proc = subprocess.Popen(
            [str(exe), "broker", "-p", "0", "--port-file", str(self.port_file), *extra],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + WAIT
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker did not start: {self.stderr()}")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text().strip())

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=WAIT)
        return self.proc.returncode


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.stop()
    b.log.close()


class Sub:
    """mosquitto_sub with -d: its debug lines tell when the SUBACK came, the
    other lines are the messages."""

    def __init__(self, port: int, version: str, *args: str) -> None:
        need("mosquitto_sub")
        # stdbuf: mosquitto_sub buffers stdout when it is a pipe.
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        self.proc = subprocess.Popen(
            [*line_buffered, "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", str(port), "-V", VERSIONS[version],
             *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_suback(self) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, "mosquitto_sub exited before its SUBACK"
            if "received SUBACK" in line:
                return
        raise AssertionError("no SUBACK")

    def finish(self) -> list[str]:
        """Wait for the process to exit; the message lines it printed."""
        self.proc.wait(timeout=WAIT + 5)
        self.reader.join(timeout=WAIT)
        out = []
        while True:
            line = self.lines.get(timeout=WAIT)
            if line is None:
                return out
            if not line.startswith(("Client ", "Subscribed", "Timed out")):
                out.append(line)


def pub(port: int, version: str, *args: str) -> None:
    need("mosquitto_pub")
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", VERSIONS[version], *args],
        check=True,
        timeout=WAIT,
    )


class Paho:
    """A paho-mqtt client on its own network thread, messages in a queue."""

    def __init__(self, port: int, client_id: str, version: int = mqtt.MQTTv311,
                 clean: bool = True, will: tuple[str, bytes] | None = None,
                 session_expiry: int | None = None) -> None:
        kwargs = {} if version == mqtt.MQTTv5 else {"clean_session": clean}
        self.c = mqtt.Client(client_id=client_id, protocol=version, **kwargs)
        self.version = version
        self.messages: queue.Queue = queue.Queue()
        self.connacks: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        if version == mqtt.MQTTv5:
            self.c.on_connect = lambda c, u, f, rc, p=None: self.connacks.put((f, rc))
            self.c.on_subscribe = lambda c, u, mid, rcs, p=None: self.subacks.put(rcs)
        else:
            self.c.on_connect = lambda c, u, f, rc: self.connacks.put((f, rc))
            self.c.on_subscribe = lambda c, u, mid, q: self.subacks.put(q)
        if will:
            self.c.will_set(will[0], will[1], qos=1)
        props = None
        if version == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            self.c.connect("127.0.0.1", port, keepalive=30, clean_start=clean, properties=props)
        else:
            self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        self.flags, self.rc = self.connacks.get(timeout=WAIT)

    def subscribe(self, topic: str, qos: int = 1, **kw) -> list:
        self.c.subscribe(topic, qos, **kw)
        return self.subacks.get(timeout=WAIT)

    def get(self, timeout: float = WAIT):
        return self.messages.get(timeout=timeout)

    def none(self, timeout: float = 0.5) -> bool:
        try:
            self.messages.get(timeout=timeout)
            return False
        except queue.Empty:
            return True

    def close(self, clean: bool = True) -> None:
        if clean:
            self.c.disconnect()
        self.c.loop_stop()
        if not clean:
            self.c.socket().close()


# ---- mosquitto clients ----

@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("sub_v,pub_v", [("3.1.1", "3.1.1"), ("5.0", "5.0"), ("3.1", "5.0"),
                                          ("5.0", "3.1.1")])
def test_mosquitto_pub_sub_qos(broker: Broker, qos: int, sub_v: str, pub_v: str) -> None:
    """Messages cross levels at every QoS, downgraded to the subscription's
    (3.1.1 [MQTT-3.8.4-6], 5.0 [MQTT-3.8.4-8])."""
    s = Sub(broker.port, sub_v, "-t", "interop/#", "-q", str(qos), "-C", "3", "-v",
            "-W", str(int(WAIT)))
    s.wait_suback()
    for i in range(3):
        pub(broker.port, pub_v, "-t", f"interop/{i}", "-m", f"m{i}", "-q", str(2 - i % 3))
    assert s.finish() == ["interop/0 m0", "interop/1 m1", "interop/2 m2"]
    assert s.proc.returncode == 0


@pytest.mark.spec("3.1.1", "MQTT-3.3.1-10")
def test_mosquitto_retained_set_replace_clear(broker: Broker) -> None:
    """Retained messages reach later subscribers; the last one wins; an
    empty retained message clears it (3.1.1 [MQTT-3.3.1-10], [MQTT-3.3.1-11])."""
    pub(broker.port, "3.1.1", "-t", "ret/a", "-m", "first", "-r", "-q", "1")
    pub(broker.port, "5.0", "-t", "ret/a", "-m", "second", "-r", "-q", "2")
    pub(broker.port, "3.1.1", "-t", "ret/b", "-m", "other", "-r")
    s = Sub(broker.port, "5.0", "-t", "ret/#", "-C", "2", "-v", "-W", str(int(WAIT)))
    assert sorted(s.finish()) == ["ret/a second", "ret/b other"]
    pub(broker.port, "3.1.1", "-t", "ret/a", "-r", "-n")
    s = Sub(broker.port, "3.1.1", "-t", "ret/#", "-v", "-W", "1")
    assert s.finish() == ["ret/b other"]


@pytest.mark.spec("3.1.1", "MQTT-3.1.2-8")
def test_mosquitto_sub_will_on_kill(broker: Broker) -> None:
    """A client killed without DISCONNECT has its will published (3.1.1
    [MQTT-3.1.2-8]); one that disconnects does not ([MQTT-3.1.2-10])."""
    watcher = Paho(broker.port, "will-watcher")
    assert watcher.subscribe("will/#", 1)
    willer = Sub(broker.port, "3.1.1", "-t", "x", "-i", "willer", "--will-topic",
                 "will/w", "--will-payload", "gone", "--will-qos", "1")
    willer.wait_suback()
    os.kill(willer.proc.pid, signal.SIGKILL)
    willer.finish()
    m = watcher.get()
    assert (m.topic, m.payload, m.qos) == ("will/w", b"gone", 1)
    for version in ("3.1.1", "5.0"):
        polite = Sub(broker.port, version, "-t", "x", "-i", "polite", "--will-topic", "will/w",
                     "--will-payload", "nope", "-C", "1", "-W", str(int(WAIT)))
        polite.wait_suback()
        pub(broker.port, "3.1.1", "-t", "x", "-m", "bye")
        assert polite.finish() == ["bye"]  # -C 1: DISCONNECT after one message
        assert watcher.none(0.7)
    # mosquitto_sub -W (timeout) ends 5.0 sessions with DISCONNECT 0x04,
    # "Disconnect with Will Message" (5.0 3.14.2.1): the will goes out.
    timed = Sub(broker.port, "5.0", "-t", "x", "-i", "timed", "--will-topic", "will/w",
                "--will-payload", "timed-out", "-W", "1")
    timed.finish()
    assert watcher.get().payload == b"timed-out"
    watcher.close()


@pytest.mark.spec("3.1.1", "MQTT-4.4.0-1")
def test_mosquitto_sub_persistent_session(broker: Broker) -> None:
    """mosquitto_sub -c: QoS 1/2 messages published while it is away are
    delivered when it comes back (3.1.1 [MQTT-3.1.2-4])."""
    for version in ("3.1.1", "5.0"):
        cid = f"persist-{version}"
        s = Sub(broker.port, version, "-t", "p/t", "-q", "2", "-c", "-i", cid, "-W", "1",
                *(["-x", "300"] if version == "5.0" else []))
        s.finish()
        pub(broker.port, "3.1.1", "-t", "p/t", "-m", "while-away-1", "-q", "1")
        pub(broker.port, "5.0", "-t", "p/t", "-m", "while-away-2", "-q", "2")
        s = Sub(broker.port, version, "-t", "p/t", "-q", "2", "-c", "-i", cid, "-C", "2",
                "-W", str(int(WAIT)), *(["-x", "300"] if version == "5.0" else []))
        assert s.finish() == ["while-away-1", "while-away-2"]


# ---- paho-mqtt ----

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_v311_and_v5_qos(broker: Broker, qos: int) -> None:
    a = Paho(broker.port, "paho-a", mqtt.MQTTv311)
    b = Paho(broker.port, "paho-b", mqtt.MQTTv5)
    assert a.subscribe("pq/#", qos) == (qos,)
    rcs = b.subscribe("pq/#", qos)
    assert [rc.value for rc in rcs] == [qos]
    for i in range(20):
        (a if i % 2 else b).c.publish(f"pq/{i}", f"{i}".encode(), qos=qos).wait_for_publish(WAIT)
    for client in (a, b):
        got = sorted(int(client.get().payload) for _ in range(20))
        assert got == list(range(20))
        assert client.none(0.3)
    a.close()
    b.close()


@pytest.mark.spec("5.0", "MQTT-3.3.4-4")
def test_paho_v5_properties_and_subscription_ids(broker: Broker) -> None:
    """User properties, response topic and correlation data arrive as sent;
    the subscription identifier of the matching subscription is added."""
    s = Paho(broker.port, "p5-sub", mqtt.MQTTv5)
    sp = Properties(PacketTypes.SUBSCRIBE)
    sp.SubscriptionIdentifier = 42
    s.subscribe("props/#", 1, properties=sp)
    p = Paho(broker.port, "p5-pub", mqtt.MQTTv5)
    pp = Properties(PacketTypes.PUBLISH)
    pp.UserProperty = [("a", "1"), ("b", "2")]
    pp.ResponseTopic = "props/reply"
    pp.CorrelationData = b"\x00\x01"
    pp.MessageExpiryInterval = 60
    p.c.publish("props/x", b"body", qos=1, properties=pp).wait_for_publish(WAIT)
    m = s.get()
    assert m.payload == b"body"
    assert m.properties.UserProperty == [("a", "1"), ("b", "2")]
    assert m.properties.ResponseTopic == "props/reply"
    assert m.properties.CorrelationData == b"\x00\x01"
    assert m.properties.SubscriptionIdentifier == [42]
    assert 58 <= m.properties.MessageExpiryInterval <= 60
    s.close()
    p.close()


@pytest.mark.spec("5.0", "MQTT-3.1.3-9")
def test_paho_v5_will_delay_and_session_resume(broker: Broker) -> None:
    """A will with a delay is not sent when the client resumes its session
    in time (5.0 [MQTT-3.1.3-9]); the session is present on resume."""
    watcher = Paho(broker.port, "wd-watch", mqtt.MQTTv5)
    watcher.subscribe("wd/#", 1)
    c = mqtt.Client(client_id="wd-client", protocol=mqtt.MQTTv5)
    wp = Properties(PacketTypes.WILLMESSAGE)
    wp.WillDelayInterval = 2
    c.will_set("wd/will", b"late", qos=1, properties=wp)
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 60
    c.connect("127.0.0.1", broker.port, clean_start=True, properties=cp)
    c.loop_start()
    time.sleep(0.3)
    c.loop_stop()
    c.socket().close()  # abnormal loss
    time.sleep(0.5)
    again = Paho(broker.port, "wd-client", mqtt.MQTTv5, clean=False, session_expiry=60)
    assert again.flags["session present"] == 1
    assert watcher.none(2.5)
    again.close()
    watcher.close()


@pytest.mark.spec("3.1.1", "MQTT-3.1.2-4")
def test_paho_persistent_session_qos2_resume(broker: Broker) -> None:
    s = Paho(broker.port, "paho-persist", mqtt.MQTTv311, clean=False)
    assert s.subscribe("pp/t", 2) == (2,)
    s.close()
    p = Paho(broker.port, "paho-pub", mqtt.MQTTv311)
    for i in range(10):
        p.c.publish("pp/t", f"{i}".encode(), qos=2).wait_for_publish(WAIT)
    p.close()
    s = Paho(broker.port, "paho-persist", mqtt.MQTTv311, clean=False)
    assert s.flags["session present"] == 1
    assert [int(s.get().payload) for _ in range(10)] == list(range(10))
    assert s.none(0.3)
    s.close()


# ---- the command ----

def test_broker_banner_and_sigint(tmp_path: Path) -> None:
    """The banner names version, listener and config; SIGINT stops it with
    status 0."""
    b = Broker(tmp_path)
    time.sleep(0.2)
    assert b.stop(signal.SIGINT) == 0
    text = b.stderr()
    assert f"127.0.0.1:{b.port}" in text.splitlines()[0]
    assert "mqlite 0.1.0 broker" in text
    assert "stopped" in text


def test_broker_config_error_reports_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("listener 0 127.0.0.1\nallow_anonymous maybe\n")
    r = subprocess.run([str(mqlite_bin()), "broker", "-c", str(conf)], capture_output=True,
                       text=True, timeout=WAIT)
    assert r.returncode == 1
    assert f"{conf}:2: allow_anonymous: expected true or false" in r.stderr


def test_broker_config_file_listener(tmp_path: Path) -> None:
    """A mosquitto.conf with a listener: the broker uses it, mosquitto_pub
    and mosquitto_sub talk to it."""
    need("mosquitto_sub")
    conf = tmp_path / "ok.conf"
    conf.write_text("listener 0 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100\n")
    pf = tmp_path / "port"
    proc = subprocess.Popen([str(mqlite_bin()), "broker", "-c", str(conf), "--port-file",
                             str(pf)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not pf.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        port = int(pf.read_text())
        pub(port, "3.1.1", "-t", "c/t", "-m", "conf", "-r")
        s = Sub(port, "5.0", "-t", "c/t", "-C", "1", "-W", str(int(WAIT)))
        assert s.finish() == ["conf"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=WAIT)
    assert proc.returncode == 0
