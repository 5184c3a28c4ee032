"""Peers for the client tests: real brokers started on loopback, and a
scripted broker for the sans-I/O engine.

Real brokers. tests/peers/start-X / stop-X (copied from shared/peers so CI
needs nothing outside the repository) start Debian's mosquitto, RabbitMQ
(rabbitmq_mqtt) and ejabberd (mod_mqtt) on 127.0.0.1 on a free port with
all their state under a temporary directory, wait until a real CONNECT +
QoS 1 PUBLISH succeeds, and stop them by PID only. The fixtures below wrap
them; a broker that is not installed skips its tests with a message saying
so (CI installs all three through scripts/deps.sh), a broker that is
installed but does not start fails them.

Scripted broker. `SansClient` drives one mqlite_client in sans-I/O mode
with an injected clock; `encode()` and `Framer` build and parse the
broker's side of the conversation with the library's own codec
(mqlite_packet_new / set_* / packet_encode, mqlite_packet_decode and the
accessors), so no MQTT byte is written by hand in Python; `BrokerSession`
is a broker's view of one client session (QoS 1/2 in both directions,
session kept or not) used by the sans-I/O tests and the fault matrix.
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Callable, Iterable, Optional

import pytest

from mqlite import mqlite_c as m

HERE = pathlib.Path(__file__).resolve().parent
PEERS_DIR = HERE.parent / "peers"

# What must be installed for each broker (besides mosquitto_pub, which every
# start script uses for its readiness check).
_NEEDS = {
    "mosquitto": ["mosquitto"],
    "rabbitmq": ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
    "ejabberd": ["/usr/lib/x86_64-linux-gnu/ejabberd-23.01", "erl"],
}
# The start scripts wait up to PEER_WAIT seconds; the Erlang brokers are
# CPU-bound while starting, so give them room on a loaded 2-core machine.
_WAIT = {"mosquitto": 20, "rabbitmq": 90, "ejabberd": 60}

# guest/guest is accepted by all three (ejabberd 23.01 refuses a CONNECT
# without a password, see tests/peers/start-ejabberd).
CREDENTIALS = ("guest", "guest")


def build_dir() -> pathlib.Path:
    """The CMake build tree (MQLITE_BUILD_DIR, set by ctest)."""
    d = os.environ.get("MQLITE_BUILD_DIR")
    if not d:
        pytest.fail("MQLITE_BUILD_DIR is not set (ctest sets it; by hand: "
                    "MQLITE_BUILD_DIR=build PYTHONPATH=build/python pytest ...)")
    return pathlib.Path(d)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    return free_port()


def missing(name: str) -> Optional[str]:
    """Why `name` cannot run here, or None when it is installed."""
    for need in _NEEDS[name] + ["mosquitto_pub"]:
        if not (shutil.which(need) or pathlib.Path(need).exists()):
            return f"{name} is not installed ({need} not found; scripts/deps.sh installs it)"
    return None


class Peer:
    """A broker started by tests/peers/start-NAME, stopped by PID."""

    def __init__(self, name: str, workdir: pathlib.Path, port: Optional[int] = None,
                 env: Optional[dict] = None):
        self.name = name
        self.workdir = pathlib.Path(workdir)
        self.port = port or free_port()
        self.env = dict(env or {})
        self.pid: Optional[int] = None
        self.host = "127.0.0.1"
        self.username, self.password = CREDENTIALS

    def start(self) -> "Peer":
        env = dict(os.environ)
        env.pop("PEER_WORKDIR", None)
        env.setdefault("PEER_WAIT", str(_WAIT[self.name]))
        env.update(self.env)
        r = subprocess.run([str(PEERS_DIR / f"start-{self.name}"), str(self.port),
                            str(self.workdir)], capture_output=True, text=True, env=env,
                           timeout=_WAIT[self.name] + 60)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} did not start on port {self.port}:\n"
                               f"{r.stderr[-3000:]}")
        self.pid = int(r.stdout.strip().splitlines()[-1])
        return self

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Signal the broker process and wait (bounded) until it is gone."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            # mosquitto is our grandchild (setsid'd by the script): reap nothing,
            # just wait for /proc to forget it.
            time.sleep(0.02)
        if self.alive():
            raise RuntimeError(f"{self.name} PID {self.pid} survived signal {sig}")

    def stop(self) -> None:
        subprocess.run([str(PEERS_DIR / f"stop-{self.name}"), str(self.workdir)],
                       capture_output=True, timeout=120)
        self.pid = None

    def log(self) -> str:
        """The broker's log (for failure messages)."""
        for rel in ("mosquitto.log", "log/rabbit.log", "log/ejabberd.log"):
            p = self.workdir / rel
            if p.exists():
                return p.read_text(errors="replace")[-4000:]
        return ""


class MqliteBroker:
    """`mqlite broker -p 0 --port-file F` from the build, its log in
    TMP/broker.log, stopped by PID with SIGTERM (SIGKILL after 5 s)."""

    def __init__(self, tmp: pathlib.Path, *extra: str):
        self.dir = pathlib.Path(tmp)
        self.host = "127.0.0.1"
        port_file = self.dir / f"broker-{os.getpid()}-{time.monotonic_ns()}.port"
        exe = build_dir() / "bin" / "mqlite"
        self.log = open(self.dir / "broker.log", "ab")
        self.p = subprocess.Popen([str(exe), "broker", "-p", "0", "--port-file", str(port_file),
                                   *extra],
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.p.poll() is not None:
                self.stop()
                pytest.fail(f"mqlite broker did not write {port_file}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if not self.log.closed:
            self.log.close()


def _peer_fixture(name: str, tmp_path_factory):
    why = missing(name)
    if why:
        pytest.skip(why)
    peer = Peer(name, tmp_path_factory.mktemp(f"peer-{name}"))
    try:
        peer.start()
    except RuntimeError as e:
        peer.stop()
        pytest.fail(str(e))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """Debian's mosquitto 2.0 on 127.0.0.1:<free port> (anonymous, no persistence)."""
    yield from _peer_fixture("mosquitto", tmp_path_factory)


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory):
    """RabbitMQ 3.10 with rabbitmq_mqtt (MQTT 3.1/3.1.1 only); ~11 s to start."""
    yield from _peer_fixture("rabbitmq", tmp_path_factory)


@pytest.fixture(scope="session")
def ejabberd(tmp_path_factory):
    """ejabberd 23.01 with mod_mqtt (3.1.1 and 5.0; needs a user name and password)."""
    yield from _peer_fixture("ejabberd", tmp_path_factory)


@pytest.fixture
def mosquitto_factory(tmp_path):
    """Start extra mosquittos with their own configuration:
    factory(conf="persistence true\\n...", ready_args="-u a -P b") -> Peer;
    "{wd}" in conf stands for the broker's working directory. All are
    stopped at teardown."""
    why = missing("mosquitto")
    if why:
        pytest.skip(why)
    started: list[Peer] = []

    def factory(conf: str = "", ready_args: str = "", port: Optional[int] = None) -> Peer:
        wd = tmp_path / f"mosquitto-{len(started)}"
        peer = Peer("mosquitto", wd, port=port,
                    env={"PEER_MOSQUITTO_CONF": conf.replace("{wd}", str(wd)),
                         "PEER_READY_ARGS": ready_args})
        started.append(peer)
        return peer.start()

    yield factory
    for peer in started:
        peer.stop()


# ---------------------------------------------------------------------------
# Codec helpers: the library's own encoder and decoder, from Python
# ---------------------------------------------------------------------------

PKT_NAMES = {getattr(m, n): n[len("MQLITE_PKT_"):] for n in dir(m) if n.startswith("MQLITE_PKT_")}

_INT_FIELDS = {
    "qos": m.MQLITE_PF_QOS, "retain": m.MQLITE_PF_RETAIN, "dup": m.MQLITE_PF_DUP,
    "pid": m.MQLITE_PF_PACKET_ID, "reason": m.MQLITE_PF_REASON_CODE,
    "session_present": m.MQLITE_PF_SESSION_PRESENT, "keepalive": m.MQLITE_PF_KEEPALIVE_S,
    "clean_start": m.MQLITE_PF_CLEAN_START, "will": m.MQLITE_PF_WILL,
    "will_qos": m.MQLITE_PF_WILL_QOS, "will_retain": m.MQLITE_PF_WILL_RETAIN,
    "has_username": m.MQLITE_PF_HAS_USERNAME, "has_password": m.MQLITE_PF_HAS_PASSWORD,
}
_BYTES_FIELDS = {
    "topic": m.MQLITE_PF_TOPIC, "payload": m.MQLITE_PF_PAYLOAD,
    "client_id": m.MQLITE_PF_CLIENT_ID, "username": m.MQLITE_PF_USERNAME,
    "password": m.MQLITE_PF_PASSWORD, "will_topic": m.MQLITE_PF_WILL_TOPIC,
    "will_payload": m.MQLITE_PF_WILL_PAYLOAD, "protocol_name": m.MQLITE_PF_PROTOCOL_NAME,
}


def make_props(items: Iterable) -> object:
    """An mqlite_props from [(id, value)] (int, str or bytes by the property's
    type) and ("user", key, value) triples. Caller frees it (mqlite_props_free)."""
    pr = m.mqlite_props_new()
    for it in items:
        if it[0] == "user":
            m.mqlite_props_add_pair(pr, it[1], it[2])
            continue
        pid, val = it
        t = m.mqlite_property_type(pid)
        if t == m.MQLITE_PTYPE_UTF8:
            m.mqlite_props_add_bytes(pr, pid, val.encode() if isinstance(val, str) else val)
        elif t == m.MQLITE_PTYPE_BINARY:
            m.mqlite_props_add_bytes(pr, pid, val)
        else:
            m.mqlite_props_add_int(pr, pid, val)
    return pr


def encode(ptype: int, version: int, *, topics: Iterable = (), reasons: Iterable = (),
           props: Iterable = (), will_props: Iterable = (), **fields) -> bytes:
    """Wire bytes of one packet, built with mqlite_packet_new + setters and
    mqlite_packet_encode (which validates it as the decoder would)."""
    p, err = m.mqlite_packet_new(ptype, version)
    if p is None:
        raise m.Error(err, "mqlite_packet_new failed")
    try:
        for k, v in fields.items():
            if k in _INT_FIELDS:
                m.mqlite_packet_set_int(p, _INT_FIELDS[k], int(v))
            elif k in _BYTES_FIELDS:
                m.mqlite_packet_set_bytes(p, _BYTES_FIELDS[k], v.encode() if isinstance(v, str) else v)
            else:
                raise KeyError(f"unknown packet field {k!r}")
        for f in topics:
            flt, opts = (f, 0) if isinstance(f, str) else f
            m.mqlite_packet_add_topic(p, flt, opts)
        for r in reasons:
            m.mqlite_packet_add_reason(p, r)
        for setter, items in ((m.mqlite_packet_set_props, props),
                              (m.mqlite_packet_set_will_props, will_props)):
            items = list(items)
            if items:
                pr = make_props(items)
                try:
                    setter(p, pr)
                finally:
                    m.mqlite_props_free(pr)
        return m.packet_encode(p)
    finally:
        m.mqlite_packet_free(p)


class Pkt:
    """A decoded packet, copied out of the C object (which is freed at once).
    Fields the packet type does not have are None."""

    def __init__(self, p, raw: bytes):
        self.raw = raw
        self.type = m.mqlite_packet_int(p, m.MQLITE_PF_TYPE)
        self.version = m.mqlite_packet_int(p, m.MQLITE_PF_VERSION)
        self.name = PKT_NAMES.get(self.type, "?")
        for k, f in _INT_FIELDS.items():
            try:
                v = m.mqlite_packet_int(p, f)
            except m.Error:
                v = None
            setattr(self, k, v)
        for k, f in _BYTES_FIELDS.items():
            setattr(self, k, m.packet_bytes(p, f))
        self.props = m.props_list(m.mqlite_packet_props(p))
        self.will_props = m.props_list(m.mqlite_packet_will_props(p)) \
            if self.type == m.MQLITE_PKT_CONNECT else []
        n = m.mqlite_packet_count(p)
        self.topics, self.options, self.reasons = [], [], []
        if self.type in (m.MQLITE_PKT_SUBSCRIBE, m.MQLITE_PKT_UNSUBSCRIBE):
            self.topics = [m.packet_topic_at(p, i).decode() for i in range(n)]
            if self.type == m.MQLITE_PKT_SUBSCRIBE:
                self.options = [m.mqlite_packet_options_at(p, i) for i in range(n)]
        elif self.type in (m.MQLITE_PKT_SUBACK, m.MQLITE_PKT_UNSUBACK):
            self.reasons = [m.mqlite_packet_reason_at(p, i) for i in range(n)]

    def prop(self, pid: int, default=None):
        for k, v in self.props:
            if k == pid:
                return v
        return default

    def __repr__(self) -> str:
        bits = [self.name]
        for k in ("pid", "qos", "dup", "retain", "reason", "session_present"):
            v = getattr(self, k)
            if v:
                bits.append(f"{k}={v}")
        if self.topic:
            bits.append(f"topic={self.topic!r}")
        if self.payload:
            bits.append(f"payload={self.payload[:32]!r}")
        return f"<{' '.join(bits)}>"


def decode_one(buf: bytes, version: int, flags: int):
    """(Pkt or None, used, err) for the start of buf; (None, 0, 0) = need more.

    Binding quirk: when mqlite_packet_decode returns NULL, SWIG's output
    list drops the None (its AppendOutput replaces a None result), so the
    call then returns [used, need, err] instead of [None, used, need, err]."""
    r = m.mqlite_packet_decode(buf, version, flags, 0)
    if len(r) == 4:
        p, used, _need, err = r
    else:
        p, (_used, _need, err), used = None, r, 0
    if p is None:
        return None, 0, err
    try:
        return Pkt(p, bytes(buf[:used])), used, 0
    finally:
        m.mqlite_packet_free(p)


class Framer:
    """Splits a byte stream into packets with mqlite_packet_decode."""

    def __init__(self, version: int, server: bool):
        self.version = version
        self.flags = m.MQLITE_DECODE_SERVER if server else m.MQLITE_DECODE_CLIENT
        self.buf = b""

    def feed(self, data: bytes) -> list[Pkt]:
        self.buf += data
        out = []
        off = 0
        # Decode from a bounded window first so a stream of many small
        # packets is split in linear time, not by re-copying the rest of the
        # buffer after every packet; a packet larger than the window is
        # decoded from the whole remainder.
        while off < len(self.buf):
            window = self.buf[off:off + 4096]
            pkt, used, err = decode_one(window, self.version, self.flags)
            if pkt is None and not err and len(window) < len(self.buf) - off:
                pkt, used, err = decode_one(self.buf[off:], self.version, self.flags)
            if err:
                self.buf = self.buf[off:]
                raise m.Error(err, f"peer sent a bad packet: {m.mqlite_error_name(err)}")
            if pkt is None:
                break
            if pkt.type == m.MQLITE_PKT_CONNECT:
                self.version = pkt.version
            off += used
            out.append(pkt)
        self.buf = self.buf[off:]
        return out


def split_packets(data: bytes, version: int, server: bool = True) -> list[Pkt]:
    f = Framer(version, server)
    pk = f.feed(data)
    assert f.buf == b"", f"trailing partial packet: {f.buf!r}"
    return pk


# ---------------------------------------------------------------------------
# The client in sans-I/O mode
# ---------------------------------------------------------------------------

Event = collections.namedtuple(
    "Event", "type pid reason error text topic payload qos retain dup session_present props codes")

EVENT_NAMES = {getattr(m, n): n[len("MQLITE_EVENT_"):] for n in dir(m)
               if n.startswith("MQLITE_EVENT_")}


def event_name(t: int) -> str:
    return EVENT_NAMES.get(t, str(t))


def drain(c, max_events: int = 100000) -> list[Event]:
    return [Event(*t) for t in m.client_drain(c, max_events)]


_STR_OPTS = {m.MQLITE_OPT_CLIENT_ID, m.MQLITE_OPT_USERNAME, m.MQLITE_OPT_WILL_TOPIC}
_BYTES_OPTS = {m.MQLITE_OPT_PASSWORD, m.MQLITE_OPT_WILL_PAYLOAD}


def set_opt(c, opt: int, value) -> None:
    if opt in _STR_OPTS:
        m.mqlite_client_set_str(c, opt, value)
    elif opt in _BYTES_OPTS:
        m.mqlite_client_set_bytes(c, opt, value.encode() if isinstance(value, str) else value)
    else:
        m.mqlite_client_set_int(c, opt, value)


class SansClient:
    """One mqlite_client in sans-I/O mode, its clock injected (ms)."""

    def __init__(self, client_id: str = "sans", version: int = 4, clock: int = 1_000_000,
                 opts: Optional[dict] = None):
        self.c = m.mqlite_client_new(client_id)
        self.version = version
        self.now = clock
        m.mqlite_client_set_clock(self.c, clock)
        set_opt(self.c, m.MQLITE_OPT_PROTOCOL, version)
        for k, v in (opts or {}).items():
            set_opt(self.c, k, v)

    def free(self) -> None:
        if self.c is not None:
            m.mqlite_client_free(self.c)
            self.c = None

    def start(self) -> None:
        m.mqlite_client_start(self.c)

    def take(self, cap: int = 1 << 16) -> bytes:
        out = b""
        while True:
            b = m.client_take_output(self.c, cap)
            if not b:
                return out
            out += b

    def feed(self, data: bytes) -> None:
        m.mqlite_client_feed(self.c, data)

    def advance(self, ms: int) -> None:
        self.now += ms
        m.mqlite_client_set_clock(self.c, self.now)

    def closed(self) -> None:
        m.mqlite_client_transport_closed(self.c)

    def events(self, *, trace: bool = False) -> list[Event]:
        return [e for e in drain(self.c) if trace or e.type != m.MQLITE_EVENT_TRACE]

    def publish(self, topic: str, payload: bytes, qos: int, retain: int = 0, props=None) -> int:
        return m.client_publish(self.c, topic, payload, qos, retain, props)

    def subscribe(self, flt: str, options: int) -> int:
        return m.client_subscribe(self.c, flt, options)

    def unsubscribe(self, flt: str) -> int:
        return m.client_unsubscribe(self.c, flt)

    def state(self) -> int:
        return m.mqlite_client_state(self.c)

    def timeout(self) -> int:
        return m.mqlite_client_next_timeout_ms(self.c)


# ---------------------------------------------------------------------------
# A broker's view of one client session
# ---------------------------------------------------------------------------

class BrokerSession:
    """What a broker keeps for one client: received application messages,
    the QoS 2 identifiers held until PUBREL, and the messages it sends with
    their acknowledgement state. `handle(pkt)` returns the packets to send
    back (bytes); `resume()` the re-sends a resumed session owes
    (MQTT 3.1.1 and 5.0 [MQTT-4.4.0-1]); `forget()` drops everything (session not kept)."""

    def __init__(self, version: int, pubcomp_unknown: int = 0x92):
        self.version = version
        # 5.0 reason code for a PUBCOMP answering a PUBREL whose identifier
        # is not held (a PUBREL re-sent after the first one was handled):
        # 0x92 as 5.0 4.3.3 allows, or 0 as mosquitto 2.0 answers.
        self.pubcomp_unknown = pubcomp_unknown
        self.received: list[tuple[str, bytes, int]] = []   # (topic, payload, qos) delivered
        self.held: set[int] = set()                        # incoming QoS 2 awaiting PUBREL
        self.out: "collections.OrderedDict[int, dict]" = collections.OrderedDict()
        self.completed: list[int] = []                     # outgoing pids acknowledged
        self.next_pid = 1
        self.connects: list[Pkt] = []

    def forget(self) -> None:
        self.held.clear()
        self.out.clear()
        self.next_pid = 1

    def connack(self, session_present: int, reason: int = 0, props=()) -> bytes:
        return encode(m.MQLITE_PKT_CONNACK, self.version, session_present=session_present,
                      reason=reason, props=props)

    def send_publish(self, topic: str, payload: bytes, qos: int) -> bytes:
        pid = 0
        if qos:
            pid = self.next_pid
            self.next_pid = self.next_pid % 65535 + 1
            self.out[pid] = {"topic": topic, "payload": payload, "qos": qos, "state": "sent"}
        return encode(m.MQLITE_PKT_PUBLISH, self.version, topic=topic, payload=payload,
                      qos=qos, pid=pid)

    def resume(self) -> list[bytes]:
        # PUBLISH re-sends (DUP=1) in original order, PUBRELs for released flows
        res = []
        for pid, f in self.out.items():
            if f["state"] == "sent":
                res.append(encode(m.MQLITE_PKT_PUBLISH, self.version, topic=f["topic"],
                                  payload=f["payload"], qos=f["qos"], pid=pid, dup=1))
            else:
                res.append(encode(m.MQLITE_PKT_PUBREL, self.version, pid=pid))
        return res

    def handle(self, p: Pkt) -> list[bytes]:
        v = self.version
        t = p.type
        if t == m.MQLITE_PKT_CONNECT:
            self.connects.append(p)
            return []
        if t == m.MQLITE_PKT_PUBLISH:
            topic = p.topic.decode()
            if p.qos == 0:
                self.received.append((topic, p.payload, 0))
                return []
            if p.qos == 1:
                self.received.append((topic, p.payload, 1))
                return [encode(m.MQLITE_PKT_PUBACK, v, pid=p.pid)]
            if p.pid not in self.held:
                self.held.add(p.pid)
                self.received.append((topic, p.payload, 2))
            return [encode(m.MQLITE_PKT_PUBREC, v, pid=p.pid)]
        if t == m.MQLITE_PKT_PUBREL:
            known = p.pid in self.held
            self.held.discard(p.pid)
            reason = self.pubcomp_unknown if not known and v == 5 else 0
            return [encode(m.MQLITE_PKT_PUBCOMP, v, pid=p.pid, reason=reason)]
        if t in (m.MQLITE_PKT_PUBACK, m.MQLITE_PKT_PUBCOMP):
            f = self.out.get(p.pid)
            want = "sent" if t == m.MQLITE_PKT_PUBACK else "released"
            if f and f["state"] == want:
                del self.out[p.pid]
                self.completed.append(p.pid)
            return []
        if t == m.MQLITE_PKT_PUBREC:
            f = self.out.get(p.pid)
            if f and f["state"] == "sent":
                f["state"] = "released"
            return [encode(m.MQLITE_PKT_PUBREL, v, pid=p.pid)]
        if t == m.MQLITE_PKT_SUBSCRIBE:
            return [encode(m.MQLITE_PKT_SUBACK, v, pid=p.pid,
                           reasons=[o & 3 for o in p.options])]
        if t == m.MQLITE_PKT_UNSUBSCRIBE:
            return [encode(m.MQLITE_PKT_UNSUBACK, v, pid=p.pid,
                           reasons=[0] * len(p.topics) if v == 5 else [])]
        if t == m.MQLITE_PKT_PINGREQ:
            return [encode(m.MQLITE_PKT_PINGRESP, v)]
        return []


def pump(client: SansClient, broker: BrokerSession, framer: Framer, rounds: int = 50) -> None:
    """Shuttle bytes both ways until neither side has anything to say."""
    for _ in range(rounds):
        out = client.take()
        if not out:
            return
        for p in framer.feed(out):
            for reply in broker.handle(p):
                client.feed(reply)
    raise AssertionError(f"no quiescence after {rounds} rounds")


def wait_until(pred: Callable[[], bool], timeout: float, step: Callable[[], None]) -> bool:
    """Call step() until pred() holds or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        step()
    return pred()


def tmpdir(prefix: str) -> pathlib.Path:
    return pathlib.Path(tempfile.mkdtemp(prefix=prefix))
