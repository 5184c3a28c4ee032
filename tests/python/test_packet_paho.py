"""mqlite.packet against python3-paho-mqtt 1.6, code nobody here wrote.

Each session connects a real paho Client to a tiny listener this test runs
on 127.0.0.1 (port 0; loopback only; every wait bounded). Everything paho
writes is decoded with mqlite and compared field by field with what paho
was told to send, and mqlite's own encoding of the same packet is compared
byte for byte with paho's where the encoding is canonical (the one
non-canonical case, a 5.0 DISCONNECT with reason 0 written out, is checked
as such). The listener answers with packets encoded by mqlite (CONNACK,
acks, SUBACK, UNSUBACK, PINGRESP, PUBLISH, PUBREL, DISCONNECT), and paho's
callbacks must see what mqlite encoded: paho checks our encoder too.

The raw client-to-server streams are kept as seeds of the decoder's fuzz
corpus (tests/fuzz/corpus/fuzz_decode/paho_*; first byte 0x0b: level from
the CONNECT, decoded as a server). The test fails when a seed differs from
what paho sends; MQLITE_WRITE_SEEDS=1 rewrites them.
"""
from __future__ import annotations

import collections
import os
import pathlib
import select
import socket
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest

paho = pytest.importorskip("paho.mqtt", reason="python3-paho-mqtt is not installed")
if not paho.__version__.startswith("1."):
    pytest.skip(f"written for paho-mqtt 1.x, found {paho.__version__}", allow_module_level=True)

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCodes  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

from mqlite.packet import (PROPERTY_NAMES, Packet, PacketType, Will, decode,  # noqa: E402
                           decode_stream, encode)

T = PacketType
TIMEOUT = 5.0
ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "fuzz_decode"
SEED_CONTROL = 0x0b   # bits 0-1 = 3: level from CONNECT; bits 3-4 = 1: server role

# paho's property attribute names, by identifier ("Session Expiry Interval"
# -> SessionExpiryInterval), and paho's writing order (its names table).
_PAHO_NAMES = Properties(PacketTypes.PUBLISH).names
PAHO_ATTR = {pid: name.replace(" ", "") for name, pid in _PAHO_NAMES.items()}
PAHO_RANK = {pid: i for i, pid in enumerate(_PAHO_NAMES.values())}


def paho_props(ptype: int, items: List[Tuple[str, Any]]) -> Properties:
    """A paho Properties object holding `items` (mqlite names)."""
    p = Properties(ptype)
    for name, value in items:
        setattr(p, PAHO_ATTR[PROPERTY_NAMES[name]], value)   # repeated ones append
    return p


def paho_order(items: List[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
    """`items` in the order paho writes them (user properties keep theirs)."""
    return sorted(items, key=lambda kv: PAHO_RANK[PROPERTY_NAMES[kv[0]]])


def from_paho(props: Any) -> Dict[str, Any]:
    """paho's parsed Properties as {attribute: value}."""
    return {} if props is None else {k: v for k, v in props.json().items()}


# ---------------------------------------------------------------------------
# A paho client and the listener it talks to
# ---------------------------------------------------------------------------

class PahoSession:
    """One paho Client connected to a listener on 127.0.0.1; what paho sends
    is split into packets with mqlite.packet.decode_stream."""

    def __init__(self, protocol: int, client_id: str, **client_kw: Any) -> None:
        self.protocol = protocol
        self.version = {mqtt.MQTTv31: 3, mqtt.MQTTv311: 4, mqtt.MQTTv5: 5}[protocol]
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(TIMEOUT)
        self.port = self.srv.getsockname()[1]
        self.c = mqtt.Client(client_id=client_id, protocol=protocol, **client_kw)
        self.conn: Any = None
        self.buf = b""
        self.level = 0                # the decoder's level: CONNECT sets it
        self.packets: List[Tuple[Packet, bytes]] = []
        self.stream = b""             # every byte paho sent
        self.closed = False
        self.events: Dict[str, List[Any]] = collections.defaultdict(list)
        c = self.c
        c.on_connect = lambda *a: self.events["connect"].append(a[2:])
        c.on_publish = lambda *a: self.events["publish"].append(a[2])
        c.on_subscribe = lambda *a: self.events["subscribe"].append(a[2:])
        c.on_unsubscribe = lambda *a: self.events["unsubscribe"].append(a[2:])
        c.on_message = lambda client, userdata, msg: self.events["message"].append(msg)
        c.on_disconnect = lambda *a: self.events["disconnect"].append(a[2:])

    def connect(self, **kw: Any) -> None:
        self.c.connect("127.0.0.1", self.port, **kw)
        self.conn, _ = self.srv.accept()
        self.conn.settimeout(TIMEOUT)

    def _poll(self) -> None:
        if self.c.socket() is not None:
            self.c.loop(timeout=0.01)
        while not self.closed and select.select([self.conn], [], [], 0.005)[0]:
            data = self.conn.recv(65536)
            if not data:
                self.closed = True
                break
            self.buf += data
            self.stream += data
        for p, used in decode_stream(self.buf, self.level):
            self.packets.append((p, self.buf[:used]))
            self.buf = self.buf[used:]
            if p.type == T.CONNECT:
                self.level = p.version

    def until(self, what: str, pred: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; paho sent "
                                     f"{[p.type_name for p, _ in self.packets]}, "
                                     f"events {dict(self.events)}")
            self._poll()

    def expect(self, n: int) -> List[Tuple[Packet, bytes]]:
        """Wait until paho has sent `n` more packets; return them."""
        start = len(self.packets)
        self.until(f"{n} packets from paho", lambda: len(self.packets) >= start + n)
        got = self.packets[start:]
        assert len(got) == n, [p for p, _ in got]
        return got

    def send(self, packet: Packet) -> None:
        self.conn.sendall(encode(packet))

    def close(self) -> None:
        try:
            if self.c.socket() is not None:
                self.c.socket().close()
        finally:
            if self.conn is not None:
                self.conn.close()
            self.srv.close()


def check(got: Tuple[Packet, bytes], ptype: PacketType, version: int, fields: Dict[str, Any],
          canonical: bool = True) -> Packet:
    """`got` (a packet paho sent, and its bytes) carries exactly `fields`;
    mqlite encodes the same packet to the same bytes when `canonical`."""
    p, raw = got
    assert (p.type, p.version) == (ptype, version), p
    for k, v in fields.items():
        if k == "properties":
            # paho writes properties in its own order: same multiset, user
            # properties in the order given.
            assert sorted(map(repr, p.properties)) == sorted(map(repr, v)), p
            assert p.props.get_all("user") == [u for n, u in v if n == "user"]
        elif k == "will" and v is not None:
            assert p.will is not None
            assert (p.will.topic, p.will.payload, p.will.qos, p.will.retain) == \
                (v.topic, v.payload, v.qos, v.retain)
            assert sorted(map(repr, p.will.properties)) == sorted(map(repr, v.properties))
        else:
            assert getattr(p, k) == v, (k, p)
    mine = dict(fields)
    if "properties" in mine:
        mine["properties"] = paho_order(list(mine["properties"]))
    if "will" in mine and mine["will"] is not None:
        w = mine["will"]
        mine["will"] = Will(w.topic, w.payload, w.qos, w.retain, paho_order(list(w.properties)))
    ours = encode(Packet(ptype, version, **mine))
    if canonical:
        assert ours.hex() == raw.hex()
    assert decode(ours, version) == p
    return p


def check_seed(name: str, stream: bytes) -> None:
    path = CORPUS / f"paho_{name}"
    seed = bytes([SEED_CONTROL]) + stream
    if os.environ.get("MQLITE_WRITE_SEEDS") == "1":
        path.write_bytes(seed)
    assert path.exists(), f"{path} missing: run with MQLITE_WRITE_SEEDS=1"
    assert path.read_bytes() == seed, f"{path} differs from what paho sends now"


# ---------------------------------------------------------------------------
# Sessions: what paho is told, then what it sent
# ---------------------------------------------------------------------------

V5_CONNECT_PROPS = [("session_expiry", 30), ("receive_max", 10), ("topic_alias_max", 4),
                    ("user", ("a", "b")), ("user", ("c", "d")), ("user", ("a", "b"))]
V5_WILL = Will("will/5", b"bye", qos=1, retain=False,
               properties=[("user", ("w", "1")), ("will_delay", 5), ("content_type", "text/plain")])
V5_PUBLISH_PROPS = [("user", ("k", "v")), ("message_expiry", 30), ("payload_format", 1),
                    ("response_topic", "r/t"), ("correlation_data", b"\x01\x02"),
                    ("user", ("k", "w")), ("content_type", "c"), ("user", ("k", "v"))]
V5_SUBSCRIBE_PROPS = [("user", ("s", "1")), ("subscription_id", 7)]
V5_DISCONNECT_PROPS = [("session_expiry", 0), ("reason_string", "bye"), ("user", ("d", "1"))]

SESSIONS = {
    "v31": dict(protocol=mqtt.MQTTv31, version=3, client_id="paho-v31",
                client_kw=dict(clean_session=True), keepalive=45, username="user",
                password="secret", will=Will("will/31", b"gone", qos=2, retain=False)),
    "v311": dict(protocol=mqtt.MQTTv311, version=4, client_id="paho-v311",
                 client_kw=dict(clean_session=False), keepalive=60, username="user",
                 password=None, will=Will("will/311", b"", qos=0, retain=True)),
    "v5": dict(protocol=mqtt.MQTTv5, version=5, client_id="paho-v5", client_kw={}, keepalive=30,
               username="user", password=b"\x00pw", will=V5_WILL),
}


def run_session(name: str) -> Dict[str, Any]:
    """A whole conversation; returns what paho sent and what it saw."""
    cfg = SESSIONS[name]
    v, v5 = cfg["version"], cfg["version"] == 5
    s = PahoSession(cfg["protocol"], cfg["client_id"], **cfg["client_kw"])
    out: Dict[str, Any] = {"cfg": cfg, "session": s}
    try:
        s.c.username_pw_set(cfg["username"], cfg["password"])
        w = cfg["will"]
        s.c.will_set(w.topic, w.payload, w.qos, w.retain,
                     properties=paho_props(PacketTypes.WILLMESSAGE, list(w.properties))
                     if v5 else None)
        if v5:
            s.connect(keepalive=cfg["keepalive"], clean_start=True,
                      properties=paho_props(PacketTypes.CONNECT, V5_CONNECT_PROPS))
        else:
            s.connect(keepalive=cfg["keepalive"])
        out["connect"] = s.expect(1)[0]

        # CONNACK from mqlite; paho's on_connect must see it.
        connack = Packet.connack(version=v, session_present=v == 4) if not v5 else \
            Packet.connack(version=5, properties=[("assigned_client_id", "srv-id"),
                                                  ("topic_alias_max", 2), ("max_qos", 1),
                                                  ("user", ("srv", "1"))])
        s.send(connack)
        s.until("on_connect", lambda: s.events["connect"])

        # PUBLISH QoS 0, 1 (retained), 2; in 5.0 with properties, and one by
        # topic alias alone.
        props = paho_props(PacketTypes.PUBLISH, V5_PUBLISH_PROPS) if v5 else None
        s.c.publish("t/0", b"qos0", qos=0)
        out["mid1"] = s.c.publish("t/1", b"qos1", qos=1, retain=True, properties=props).mid
        out["mid2"] = s.c.publish("t/2", "qos2 \u00fc", qos=2).mid
        n = 3
        if v5:
            s.c.publish("", b"alias", qos=0,
                        properties=paho_props(PacketTypes.PUBLISH, [("topic_alias", 1)]))
            n += 1
        out["publish"] = s.expect(n)

        if v5:
            _, out["mid3"] = s.c.subscribe(
                [("a/#", SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True,
                                          retainHandling=2)),
                 ("$share/g/x", SubscribeOptions(qos=2)), ("c", SubscribeOptions(qos=0))],
                properties=paho_props(PacketTypes.SUBSCRIBE, V5_SUBSCRIBE_PROPS))
            _, out["mid4"] = s.c.unsubscribe(
                ["a/#", "c"],
                properties=paho_props(PacketTypes.UNSUBSCRIBE, [("user", ("u", "2"))]))
        else:
            _, out["mid3"] = s.c.subscribe([("a/#", 0), ("b/+", 1), ("c", 2)])
            _, out["mid4"] = s.c.unsubscribe(["a/#", "b/+"])
        s.c._send_pingreq()   # paho's own PINGREQ, without waiting a keep-alive
        out["subscribe"], out["unsubscribe"], out["pingreq"] = s.expect(3)

        # Acks from mqlite: PUBACK ends QoS 1; PUBREC makes paho send PUBREL.
        s.send(Packet.puback(packet_id=out["mid1"], version=v))
        s.send(Packet.pubrec(packet_id=out["mid2"], version=v))
        out["pubrel"] = s.expect(1)[0]
        s.send(Packet.pubcomp(packet_id=out["mid2"], version=v))
        s.send(Packet.suback(packet_id=out["mid3"], version=v,
                             reason_codes=[1, 2, 0] if v5 else [0, 1, 0x80],
                             properties=[("reason_string", "ok")] if v5 else None))
        s.send(Packet.unsuback(packet_id=out["mid4"], version=v,
                               reason_codes=[0, 0x11] if v5 else ()))
        s.send(Packet.pingresp(version=v))
        s.until("on_publish, on_subscribe, on_unsubscribe",
                lambda: len(s.events["publish"]) >= 3 and s.events["subscribe"]
                and s.events["unsubscribe"])

        # PUBLISH from mqlite: paho answers PUBACK, and PUBREC/PUBCOMP.
        s.send(Packet.publish(topic="s/1", payload=b"from mqlite", qos=1, packet_id=100,
                              retain=True, version=v,
                              properties=[("user", ("x", "1")), ("user", ("x", "2")),
                                          ("message_expiry", 9), ("subscription_id", 7)]
                              if v5 else None))
        out["puback"] = s.expect(1)[0]
        s.send(Packet.publish(topic="s/2", payload=b"\x00two", qos=2, packet_id=101, version=v))
        out["pubrec"] = s.expect(1)[0]
        s.send(Packet.pubrel(packet_id=101, version=v))
        out["pubcomp"] = s.expect(1)[0]
        s.until("two messages", lambda: len(s.events["message"]) >= 2)

        if v5:
            s.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT,
                                                  "Disconnect with will message"),
                           properties=paho_props(PacketTypes.DISCONNECT, V5_DISCONNECT_PROPS))
        else:
            s.c.disconnect()
        out["disconnect"] = s.expect(1)[0]
        s.until("paho to close the connection", lambda: s.closed)
        assert s.buf == b"", s.buf
    finally:
        s.close()
    return out


@pytest.fixture(scope="module", params=list(SESSIONS))
def session(request):
    return run_session(request.param)


# ---------------------------------------------------------------------------
# What paho sent, decoded by mqlite
# ---------------------------------------------------------------------------

def test_connect(session):
    cfg = session["cfg"]
    v = cfg["version"]
    pw = cfg["password"]
    fields = dict(client_id=cfg["client_id"], clean_start=v != 4, keepalive=cfg["keepalive"],
                  username=cfg["username"],
                  password=pw.encode() if isinstance(pw, str) else pw,
                  will=cfg["will"], properties=V5_CONNECT_PROPS if v == 5 else ())
    p = check(session["connect"], T.CONNECT, v, fields)
    # Protocol name and level, right after a one-byte remaining length.
    name = {3: b"\x00\x06MQIsdp\x03", 4: b"\x00\x04MQTT\x04", 5: b"\x00\x04MQTT\x05"}[v]
    assert session["connect"][1][2:2 + len(name)] == name
    assert len(p.will.properties) == (3 if v == 5 else 0)


def test_publish(session):
    v = session["cfg"]["version"]
    got = session["publish"]
    check(got[0], T.PUBLISH, v, dict(topic="t/0", payload=b"qos0", qos=0, retain=False,
                                     dup=False, packet_id=0, properties=()))
    check(got[1], T.PUBLISH, v, dict(topic="t/1", payload=b"qos1", qos=1, retain=True, dup=False,
                                     packet_id=session["mid1"],
                                     properties=V5_PUBLISH_PROPS if v == 5 else ()))
    check(got[2], T.PUBLISH, v, dict(topic="t/2", payload="qos2 \u00fc".encode(), qos=2,
                                     retain=False, dup=False, packet_id=session["mid2"],
                                     properties=()))
    if v == 5:
        check(got[3], T.PUBLISH, v, dict(topic="", payload=b"alias", qos=0, retain=False,
                                         dup=False, packet_id=0,
                                         properties=[("topic_alias", 1)]))


def test_subscribe_and_unsubscribe(session):
    v = session["cfg"]["version"]
    if v == 5:
        # 0x2d: QoS 1 | no local (0x04) | retain as published (0x08) | retain handling 2.
        check(session["subscribe"], T.SUBSCRIBE, v, dict(
            packet_id=session["mid3"], topics=(("a/#", 0x2d), ("$share/g/x", 2), ("c", 0)),
            properties=V5_SUBSCRIBE_PROPS))
        check(session["unsubscribe"], T.UNSUBSCRIBE, v, dict(
            packet_id=session["mid4"], topics=(("a/#", 0), ("c", 0)),
            properties=[("user", ("u", "2"))]))
    else:
        check(session["subscribe"], T.SUBSCRIBE, v, dict(
            packet_id=session["mid3"], topics=(("a/#", 0), ("b/+", 1), ("c", 2)),
            properties=()))
        check(session["unsubscribe"], T.UNSUBSCRIBE, v, dict(
            packet_id=session["mid4"], topics=(("a/#", 0), ("b/+", 0)), properties=()))
    assert session["subscribe"][0].filters[0] == "a/#"


def test_pingreq_acks_and_disconnect(session):
    v = session["cfg"]["version"]
    check(session["pingreq"], T.PINGREQ, v, {})
    check(session["pubrel"], T.PUBREL, v, dict(packet_id=session["mid2"], reason_code=0))
    check(session["puback"], T.PUBACK, v, dict(packet_id=100, reason_code=0))
    check(session["pubrec"], T.PUBREC, v, dict(packet_id=101, reason_code=0))
    check(session["pubcomp"], T.PUBCOMP, v, dict(packet_id=101, reason_code=0))
    if v == 5:
        check(session["disconnect"], T.DISCONNECT, v,
              dict(reason_code=0x04, properties=V5_DISCONNECT_PROPS))
    else:
        check(session["disconnect"], T.DISCONNECT, v, dict(reason_code=0))


def test_seed_corpus_holds_pahos_bytes(session):
    s = session["session"]
    name = {3: "v31", 4: "v311", 5: "v5"}[session["cfg"]["version"]]
    assert s.stream == b"".join(raw for _, raw in s.packets)
    assert [p.type_name for p, _ in s.packets][:2] == ["CONNECT", "PUBLISH"]
    check_seed(f"{name}_session", s.stream)


# ---------------------------------------------------------------------------
# What mqlite sent, as paho understood it
# ---------------------------------------------------------------------------

def test_paho_understood_mqlites_packets(session):
    ev = session["session"].events
    v = session["cfg"]["version"]
    (flags, rc, *rest), = ev["connect"]
    assert flags["session present"] == (1 if v == 4 else 0)
    assert rc == 0
    if v == 5:
        props = from_paho(rest[0])
        assert props["AssignedClientIdentifier"] == "srv-id"
        assert props["TopicAliasMaximum"] == 2 and props["MaximumQoS"] == 1
        assert props["UserProperty"] == [("srv", "1")]
    # on_publish: QoS 1 after mqlite's PUBACK, QoS 2 after its PUBCOMP.
    assert {session["mid1"], session["mid2"]} <= set(ev["publish"])
    (sub,) = ev["subscribe"]
    assert sub[0] == session["mid3"]
    if v == 5:
        assert [rc.value for rc in sub[1]] == [1, 2, 0]
        assert from_paho(sub[2])["ReasonString"] == "ok"
        (unsub,) = ev["unsubscribe"]
        assert unsub[0] == session["mid4"] and [rc.value for rc in unsub[2]] == [0, 0x11]
    else:
        assert tuple(sub[1]) == (0, 1, 0x80)
        assert ev["unsubscribe"] == [(session["mid4"],)]
    m1, m2 = ev["message"]
    assert (m1.topic, m1.payload, m1.qos, m1.retain, m1.mid) == ("s/1", b"from mqlite", 1, True,
                                                                  100)
    assert (m2.topic, m2.payload, m2.qos, m2.retain, m2.mid) == ("s/2", b"\x00two", 2, False, 101)
    if v == 5:
        props = from_paho(m1.properties)
        assert props["UserProperty"] == [("x", "1"), ("x", "2")]
        assert props["MessageExpiryInterval"] == 9
        assert props["SubscriptionIdentifier"] == [7]


def test_v5_disconnect_by_the_server_and_reason_0_written_out():
    # mqlite's DISCONNECT (0x8b Server shutting down + Reason String) reaches
    # paho's on_disconnect.
    s = PahoSession(mqtt.MQTTv5, "paho-v5-b")
    try:
        s.connect(keepalive=0, clean_start=False)
        (connect,) = s.expect(1)
        check(connect, T.CONNECT, 5, dict(client_id="paho-v5-b", clean_start=False, keepalive=0,
                                          username=None, password=None, will=None,
                                          properties=()))
        s.send(Packet.connack(version=5, session_present=True))
        s.until("on_connect", lambda: s.events["connect"])
        assert s.events["connect"][0][0]["session present"] == 1
        s.send(Packet.disconnect(version=5, reason_code=0x8b,
                                 properties=[("reason_string", "maintenance")]))
        s.until("on_disconnect", lambda: s.events["disconnect"])
        rc, props = s.events["disconnect"][0]
        assert rc.value == 0x8b and from_paho(props)["ReasonString"] == "maintenance"
    finally:
        s.close()

    # paho writes a 5.0 DISCONNECT with reason 0x00 as e0 01 00; mqlite
    # writes the short form e0 00 (5.0 3.14.2.1 allows both). Same packet.
    s = PahoSession(mqtt.MQTTv5, "paho-v5-c")
    try:
        s.connect(keepalive=10)
        s.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, "Normal disconnection"))
        connect, disconnect = s.expect(2)
        check(connect, T.CONNECT, 5, dict(client_id="paho-v5-c", clean_start=True, keepalive=10))
        p = check(disconnect, T.DISCONNECT, 5, dict(reason_code=0, properties=()),
                  canonical=False)
        assert disconnect[1] == bytes.fromhex("e00100")
        assert encode(p) == bytes.fromhex("e000")
        s.until("paho to close the connection", lambda: s.closed)
        check_seed("v5_disconnect_reason0", s.stream)
    finally:
        s.close()
