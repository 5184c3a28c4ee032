"""The C client's session engine driven from Python in sans-I/O mode.

mqlite_client_start / _feed / client_take_output / _set_clock /
_transport_closed and client_drain, against a broker scripted here. Every
packet the test broker sends is built with the library's codec
(mqlite_packet_new + setters + mqlite_packet_encode) and every packet the
client sends is parsed with mqlite_packet_decode (peers.encode / Framer);
the only raw bytes are deliberate corruptions of codec output.
"""
from __future__ import annotations

import pytest

from mqlite import mqlite_c as m
from peers import BrokerSession, Framer, SansClient, encode, event_name, make_props, pump

E = m  # constants
V311, V5 = 4, 5
BOTH = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def types(events):
    return [event_name(e.type) for e in events]


class Rig:
    """A SansClient, a BrokerSession and the framer for the client's bytes."""

    def __init__(self, version=V311, client_id="sans", opts=None):
        self.version = version
        self.c = SansClient(client_id, version, opts=opts)
        self.b = BrokerSession(version)
        self.f = Framer(version, server=True)

    def out(self):
        """Packets the client has written since the last call."""
        return self.f.feed(self.c.take())

    def send(self, ptype, **fields):
        self.c.feed(encode(ptype, self.version, **fields))

    def connect(self, session_present=0, props=()):
        self.c.start()
        (connect,) = self.out()
        assert connect.type == m.MQLITE_PKT_CONNECT
        self.c.feed(self.b.connack(session_present, props=props))
        ev = self.c.events()
        assert types(ev[:1]) == ["CONNECTED"], ev
        self.later = ev[1:]          # what CONNACK caused besides CONNECTED
        return connect, ev[0]

    def pump(self):
        pump(self.c, self.b, self.f)

    def cut(self):
        """The transport dies: what was not taken is lost."""
        self.c.take()
        self.c.closed()
        self.f = Framer(self.version, server=True)


@pytest.fixture
def rigs():
    made = []

    def make(*a, **k):
        r = Rig(*a, **k)
        made.append(r)
        return r

    yield make
    for r in made:
        r.c.free()


# ---------------------------------------------------------------------------
# CONNECT / CONNACK
# ---------------------------------------------------------------------------

@BOTH
def test_connect_carries_identity_session_and_will(rigs, version):
    opts = {m.MQLITE_OPT_KEEPALIVE_S: 30, m.MQLITE_OPT_CLEAN_START: 0,
            m.MQLITE_OPT_USERNAME: "alice", m.MQLITE_OPT_PASSWORD: b"s\x00cret",
            m.MQLITE_OPT_WILL_TOPIC: "dev/1/status", m.MQLITE_OPT_WILL_PAYLOAD: b"offline",
            m.MQLITE_OPT_WILL_QOS: 1, m.MQLITE_OPT_WILL_RETAIN: 1}
    if version == V5:
        opts.update({m.MQLITE_OPT_SESSION_EXPIRY_S: 120, m.MQLITE_OPT_RECEIVE_MAX: 10,
                     m.MQLITE_OPT_MAX_PACKET_SIZE: 4096})
    r = rigs(version, "dev-1", opts)
    if version == V5:
        wp = make_props([(m.MQLITE_PROP_WILL_DELAY, 5), ("user", "k", "v")])
        m.mqlite_client_set_props(r.c.c, m.MQLITE_OPT_WILL_PROPS, wp)
        m.mqlite_props_free(wp)
    r.c.start()
    (p,) = r.out()
    assert p.name == "CONNECT" and p.version == version
    assert p.protocol_name == b"MQTT"
    assert (p.client_id, p.keepalive, p.clean_start) == (b"dev-1", 30, 0)
    assert (p.username, p.password) == (b"alice", b"s\x00cret")
    assert (p.will, p.will_topic, p.will_payload, p.will_qos, p.will_retain) == \
        (1, b"dev/1/status", b"offline", 1, 1)
    if version == V5:
        assert p.prop(m.MQLITE_PROP_SESSION_EXPIRY) == 120
        assert p.prop(m.MQLITE_PROP_RECEIVE_MAX) == 10
        assert p.prop(m.MQLITE_PROP_MAX_PACKET_SIZE) == 4096
        assert (m.MQLITE_PROP_WILL_DELAY, 5) in p.will_props
        assert (m.MQLITE_PROP_USER, (b"k", b"v")) in p.will_props
    assert r.c.state() == m.MQLITE_STATE_CONNECTING


def test_connect_v31_is_mqisdp(rigs):
    r = rigs(3, "old-client")
    r.c.start()
    (p,) = r.out()
    assert (p.version, p.protocol_name) == (3, b"MQIsdp")


@pytest.mark.spec("3.1.1", "MQTT-3.1.3-7")
def test_v311_empty_client_id_with_persistent_session_is_refused_locally(rigs):
    # 3.1.1 [MQTT-3.1.3-7]: a zero-byte ClientId needs CleanSession=1; a
    # server answers such a CONNECT with 0x02 (identifier rejected). The
    # client must not send it (issue 4: "empty allowed where the spec allows").
    # Refusing locally (an error from start) or forcing CleanSession=1 both keep the rule.
    r = rigs(V311, "", {m.MQLITE_OPT_CLEAN_START: 0})
    try:
        r.c.start()
    except m.Error:
        return
    (p,) = r.out()
    assert p.clean_start == 1, "empty client id sent with CleanSession=0"


@BOTH
@pytest.mark.parametrize("present", [0, 1])
def test_connack_accepted_reports_session_present(rigs, version, present):
    # A server reports a session only to a client that asked to keep one
    # (5.0 [MQTT-3.2.2-4]): Clean Start 0 where the CONNACK says present.
    r = rigs(version, opts={m.MQLITE_OPT_CLEAN_START: 0} if present else None)
    _, ev = r.connect(session_present=present)
    assert ev.session_present == present
    assert ("resumed" if present else "new") in ev.text
    assert r.c.state() == m.MQLITE_STATE_CONNECTED


REFUSALS = [(V311, code) for code in (1, 2, 3, 4, 5)] + \
    [(V5, code) for code in (0x80, 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
                             0x8C, 0x90, 0x95, 0x97, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)]


@pytest.mark.parametrize("version,code", REFUSALS, ids=[f"v{v}-0x{c:02x}" for v, c in REFUSALS])
def test_connack_refusal_is_reported_with_code_and_text(rigs, version, code):
    r = rigs(version)
    r.c.start()
    r.out()
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_CONNACK, reason=code)
    assert ei.value.args[0] == m.MQLITE_ERR_REFUSED
    ev = r.c.events()
    assert types(ev) == ["CONNECT_FAILED"]
    assert ev[0].reason == code and ev[0].error == m.MQLITE_ERR_REFUSED
    words = m.mqlite_reason_string(m.MQLITE_PKT_CONNACK, code, version)
    assert words != "Unknown reason code" and words in ev[0].text
    r.c.closed()
    assert r.c.events() == []          # the refusal was said once
    assert r.c.state() == m.MQLITE_STATE_IDLE


def test_v5_connack_refusal_carries_reason_string(rigs):
    r = rigs(V5)
    r.c.start()
    r.out()
    with pytest.raises(m.Error):
        r.send(m.MQLITE_PKT_CONNACK, reason=0x87,
               props=[(m.MQLITE_PROP_REASON_STRING, "no entry for you")])
    (ev,) = r.c.events()
    assert (m.MQLITE_PROP_REASON_STRING, b"no entry for you") in ev.props


def test_v5_assigned_client_identifier_is_reported_and_reused(rigs):
    r = rigs(V5, "", {m.MQLITE_OPT_SESSION_EXPIRY_S: 60})
    r.c.start()
    (p,) = r.out()
    assert p.client_id == b""
    r.c.feed(r.b.connack(0, props=[(m.MQLITE_PROP_ASSIGNED_CLIENT_ID, "srv-42")]))
    (ev,) = r.c.events()
    assert (m.MQLITE_PROP_ASSIGNED_CLIENT_ID, b"srv-42") in ev.props
    r.cut()
    r.c.events()
    r.c.start()
    (p,) = r.out()
    assert p.client_id == b"srv-42", "reconnect must use the assigned id to resume"


@pytest.mark.spec("5.0", "MQTT-3.2.2-21")
def test_v5_server_keepalive_replaces_ours(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_KEEPALIVE_S: 60})
    r.connect(props=[(m.MQLITE_PROP_SERVER_KEEPALIVE, 2)])
    assert r.c.timeout() == 2000
    r.c.advance(1999)
    assert r.out() == []
    r.c.advance(1)
    assert [p.name for p in r.out()] == ["PINGREQ"]


@pytest.mark.spec("5.0", "MQTT-3.3.4-7")
def test_v5_receive_maximum_limits_the_window(rigs):
    r = rigs(V5)
    r.connect(props=[(m.MQLITE_PROP_RECEIVE_MAX, 2)])
    pids = [r.c.publish("w", bytes([i]), 1) for i in range(5)]
    sent = r.out()
    assert [p.pid for p in sent] == pids[:2]
    assert (m.mqlite_client_inflight(r.c.c), m.mqlite_client_queued(r.c.c)) == (2, 3)
    r.send(m.MQLITE_PKT_PUBACK, pid=pids[1])
    assert [p.pid for p in r.out()] == [pids[2]]
    r.send(m.MQLITE_PKT_PUBACK, pid=pids[0])
    r.send(m.MQLITE_PKT_PUBACK, pid=pids[2])
    assert [p.pid for p in r.out()] == pids[3:]


@pytest.mark.spec("5.0", "MQTT-3.2.2-11")
def test_v5_maximum_qos_refuses_higher_publish(rigs):
    r = rigs(V5)
    r.connect(props=[(m.MQLITE_PROP_MAX_QOS, 1)])
    with pytest.raises(m.Error) as ei:
        r.c.publish("q", b"x", 2)
    assert ei.value.args[0] == m.MQLITE_ERR_QOS_NOT_SUPPORTED
    assert "Maximum QoS" in m.mqlite_client_errmsg(r.c.c)
    assert m.mqlite_client_queued(r.c.c) + m.mqlite_client_inflight(r.c.c) == 0
    r.c.publish("q", b"x", 1)
    assert [p.qos for p in r.out()] == [1]


@pytest.mark.spec("5.0", "MQTT-3.2.2-14")
def test_v5_retain_unavailable_refuses_retained_publish(rigs):
    r = rigs(V5)
    r.connect(props=[(m.MQLITE_PROP_RETAIN_AVAILABLE, 0)])
    with pytest.raises(m.Error) as ei:
        r.c.publish("r", b"x", 0, retain=1)
    assert ei.value.args[0] == m.MQLITE_ERR_RETAIN_NOT_SUPPORTED


@pytest.mark.spec("5.0", "MQTT-3.1.2-24")
def test_v5_maximum_packet_size_refuses_larger_publish(rigs):
    r = rigs(V5)
    r.connect(props=[(m.MQLITE_PROP_MAX_PACKET_SIZE, 100)])
    with pytest.raises(m.Error) as ei:
        r.c.publish("big", b"x" * 200, 1)
    assert ei.value.args[0] == m.MQLITE_ERR_TOO_LARGE
    r.c.publish("small", b"x" * 50, 1)
    (p,) = r.out()
    assert len(p.raw) <= 100


def test_connack_timeout_fails_the_connection(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_CONNECT_TIMEOUT_MS: 1500})
    r.c.start()
    r.out()
    assert r.c.timeout() == 1500
    r.c.advance(1499)
    with pytest.raises(m.Error) as ei:
        r.c.advance(1)
    assert ei.value.args[0] == m.MQLITE_ERR_TIMEOUT
    r.c.closed()
    (ev,) = r.c.events()
    assert event_name(ev.type) == "CONNECT_FAILED" and ev.error < 0


# ---------------------------------------------------------------------------
# PUBLISH, both directions
# ---------------------------------------------------------------------------

@BOTH
def test_qos0_out_is_sent_and_forgotten(rigs, version):
    r = rigs(version)
    r.connect()
    assert r.c.publish("a/b", b"zero", 0) == 0
    (p,) = r.out()
    assert (p.name, p.qos, p.pid, p.topic, p.payload) == ("PUBLISH", 0, 0, b"a/b", b"zero")
    assert r.c.events() == [] and m.mqlite_client_inflight(r.c.c) == 0


@BOTH
def test_qos1_out_completes_on_puback(rigs, version):
    r = rigs(version)
    r.connect()
    pid = r.c.publish("a/b", b"one", 1, retain=1)
    (p,) = r.out()
    assert (p.qos, p.pid, p.dup, p.retain) == (1, pid, 0, 1) and pid > 0
    assert r.c.events() == []
    r.send(m.MQLITE_PKT_PUBACK, pid=pid)
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.pid, ev.error, ev.qos) == ("PUBLISHED", pid, 0, 1)
    assert m.mqlite_client_inflight(r.c.c) == 0


@BOTH
def test_qos2_out_runs_pubrec_pubrel_pubcomp(rigs, version):
    r = rigs(version)
    r.connect()
    pid = r.c.publish("a/b", b"two", 2)
    (p,) = r.out()
    assert (p.qos, p.pid) == (2, pid)
    r.send(m.MQLITE_PKT_PUBREC, pid=pid)
    assert r.c.events() == []
    (rel,) = r.out()
    assert (rel.name, rel.pid) == ("PUBREL", pid)
    r.send(m.MQLITE_PKT_PUBCOMP, pid=pid)
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.pid, ev.error, ev.qos) == ("PUBLISHED", pid, 0, 2)
    assert r.out() == []


def test_v5_failed_puback_and_pubrec_end_the_flow_with_the_reason(rigs):
    r = rigs(V5)
    r.connect()
    p1 = r.c.publish("x", b"1", 1)
    p2 = r.c.publish("x", b"2", 2)
    r.out()
    r.send(m.MQLITE_PKT_PUBACK, pid=p1, reason=0x87)
    # 5.0 4.3.3: a PUBREC with a reason code >= 0x80 ends the flow: no PUBREL
    r.send(m.MQLITE_PKT_PUBREC, pid=p2, reason=0x97)
    ev = r.c.events()
    assert [(e.pid, e.reason, e.error) for e in ev] == \
        [(p1, 0x87, m.MQLITE_ERR_REFUSED), (p2, 0x97, m.MQLITE_ERR_REFUSED)]
    assert r.out() == []
    assert m.mqlite_client_inflight(r.c.c) == 0


@BOTH
def test_qos0_and_qos1_in_are_delivered_and_qos1_acknowledged(rigs, version):
    r = rigs(version)
    r.connect()
    r.send(m.MQLITE_PKT_PUBLISH, topic="in/0", payload=b"zero", qos=0)
    r.send(m.MQLITE_PKT_PUBLISH, topic="in/1", payload=b"one", qos=1, pid=7, retain=1)
    ev = r.c.events()
    assert [(e.topic, e.payload, e.qos, e.retain) for e in ev] == \
        [(b"in/0", b"zero", 0, 0), (b"in/1", b"one", 1, 1)]
    (ack,) = r.out()
    assert (ack.name, ack.pid) == ("PUBACK", 7)


@BOTH
@pytest.mark.spec("5.0", "MQTT-4.3.3-9")
def test_qos2_in_is_delivered_once_and_released(rigs, version):
    r = rigs(version)
    r.connect()
    r.send(m.MQLITE_PKT_PUBLISH, topic="in/2", payload=b"two", qos=2, pid=9)
    (ev,) = r.c.events()
    assert (ev.payload, ev.qos, ev.pid) == (b"two", 2, 9)
    assert [(p.name, p.pid) for p in r.out()] == [("PUBREC", 9)]
    # the server re-sends before seeing PUBREC: acknowledged, not delivered again
    r.send(m.MQLITE_PKT_PUBLISH, topic="in/2", payload=b"two", qos=2, pid=9, dup=1)
    assert r.c.events() == []
    assert [(p.name, p.pid) for p in r.out()] == [("PUBREC", 9)]
    r.send(m.MQLITE_PKT_PUBREL, pid=9)
    assert [(p.name, p.pid, p.reason) for p in r.out()] == [("PUBCOMP", 9, 0)]
    # after PUBREL the identifier is free: a new message with it is new
    r.send(m.MQLITE_PKT_PUBLISH, topic="in/2", payload=b"again", qos=2, pid=9)
    assert [e.payload for e in r.c.events()] == [b"again"]


def test_v5_pubrel_for_unknown_id_is_completed_with_0x92(rigs):
    r = rigs(V5)
    r.connect()
    r.send(m.MQLITE_PKT_PUBREL, pid=33)
    assert [(p.name, p.pid, p.reason) for p in r.out()] == [("PUBCOMP", 33, 0x92)]


def test_v5_publish_properties_round_trip(rigs):
    r = rigs(V5)
    r.connect()
    props = make_props([(m.MQLITE_PROP_CONTENT_TYPE, "text/plain"),
                        (m.MQLITE_PROP_RESPONSE_TOPIC, "reply/here"),
                        (m.MQLITE_PROP_CORRELATION_DATA, b"\x01\x02"),
                        (m.MQLITE_PROP_MESSAGE_EXPIRY, 30),
                        ("user", "a", "1"), ("user", "a", "2")])
    try:
        r.c.publish("p", b"x", 1, props=props)
    finally:
        m.mqlite_props_free(props)
    (p,) = r.out()
    assert p.props == [(m.MQLITE_PROP_CONTENT_TYPE, b"text/plain"),
                       (m.MQLITE_PROP_RESPONSE_TOPIC, b"reply/here"),
                       (m.MQLITE_PROP_CORRELATION_DATA, b"\x01\x02"),
                       (m.MQLITE_PROP_MESSAGE_EXPIRY, 30),
                       (m.MQLITE_PROP_USER, (b"a", b"1")), (m.MQLITE_PROP_USER, (b"a", b"2"))]
    r.send(m.MQLITE_PKT_PUBLISH, topic="p", payload=b"y", qos=0,
           props=[("user", "k", "v"), (m.MQLITE_PROP_SUBSCRIPTION_ID, 12)])
    (ev,) = r.c.events()
    assert (m.MQLITE_PROP_USER, (b"k", b"v")) in ev.props
    assert (m.MQLITE_PROP_SUBSCRIPTION_ID, 12) in ev.props


def test_v311_publish_properties_are_refused(rigs):
    r = rigs(V311)
    r.connect()
    props = make_props([("user", "a", "1")])
    try:
        with pytest.raises(m.Error) as ei:
            r.c.publish("p", b"x", 1, props=props)
    finally:
        m.mqlite_props_free(props)
    assert ei.value.args[0] == m.MQLITE_ERR_UNSUPPORTED


@pytest.mark.spec("5.0", "MQTT-3.3.2-12")
def test_v5_incoming_topic_alias_is_resolved(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_TOPIC_ALIAS_MAX: 4})
    connect, _ = r.connect()
    assert connect.prop(m.MQLITE_PROP_TOPIC_ALIAS_MAX) == 4
    r.send(m.MQLITE_PKT_PUBLISH, topic="long/topic/name", payload=b"1",
           props=[(m.MQLITE_PROP_TOPIC_ALIAS, 3)])
    r.send(m.MQLITE_PKT_PUBLISH, topic="", payload=b"2", props=[(m.MQLITE_PROP_TOPIC_ALIAS, 3)])
    assert [(e.topic, e.payload) for e in r.c.events()] == \
        [(b"long/topic/name", b"1"), (b"long/topic/name", b"2")]


@pytest.mark.spec("5.0", "MQTT-3.3.2-10")
def test_v5_topic_alias_above_our_maximum_is_a_protocol_error(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_TOPIC_ALIAS_MAX: 2})
    r.connect()
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"1",
               props=[(m.MQLITE_PROP_TOPIC_ALIAS, 3)])
    assert ei.value.args[0] == m.MQLITE_ERR_TOPIC_ALIAS
    (d,) = r.out()
    assert (d.name, d.reason) == ("DISCONNECT", 0x94)


def test_publish_while_connecting_waits_for_connack(rigs):
    r = rigs(V311)
    r.c.start()
    r.out()
    pid = r.c.publish("early", b"bird", 1)
    assert r.out() == []
    r.c.feed(r.b.connack(0))
    r.c.events()
    assert [(p.name, p.pid, p.dup) for p in r.out()] == [("PUBLISH", pid, 0)]


def test_publish_before_any_connection_is_queued(rigs):
    r = rigs(V311)
    pids = [r.c.publish("q", bytes([i]), 1) for i in range(3)]
    assert m.mqlite_client_queued(r.c.c) == 3
    r.connect()
    assert [p.pid for p in r.out()] == pids


def test_full_queue_is_an_error_and_queues_nothing(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_MAX_QUEUED: 3})
    for i in range(3):
        r.c.publish("q", b"x", 1)
    with pytest.raises(m.Error) as ei:
        r.c.publish("q", b"x", 1)
    assert ei.value.args[0] == m.MQLITE_ERR_QUEUE_FULL
    assert "queue full" in m.mqlite_client_errmsg(r.c.c)
    assert m.mqlite_client_queued(r.c.c) == 3


def test_byte_limited_queue(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_MAX_QUEUED_BYTES: 100})
    r.c.publish("q", b"x" * 90, 1)
    with pytest.raises(m.Error) as ei:
        r.c.publish("q", b"x" * 20, 1)
    assert ei.value.args[0] == m.MQLITE_ERR_QUEUE_FULL


@pytest.mark.parametrize("topic,qos,code", [
    ("a/+/b", 0, m.MQLITE_ERR_TOPIC_NAME), ("a/#", 1, m.MQLITE_ERR_TOPIC_NAME),
    ("", 0, m.MQLITE_ERR_TOPIC_NAME), ("ok", 3, m.MQLITE_ERR_RANGE),
    ("ok", -1, m.MQLITE_ERR_RANGE)])
def test_bad_publish_arguments_are_refused_with_a_message(rigs, topic, qos, code):
    r = rigs(V311)
    r.connect()
    with pytest.raises(m.Error) as ei:
        r.c.publish(topic, b"x", qos)
    assert ei.value.args[0] == code
    assert m.mqlite_client_errmsg(r.c.c)
    assert r.out() == [] and m.mqlite_client_queued(r.c.c) == 0


@pytest.mark.spec("3.1.1", "MQTT-2.3.1-2")
def test_packet_ids_are_never_reused_while_in_flight(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_MAX_QUEUED: 0, m.MQLITE_OPT_MAX_QUEUED_BYTES: 0})
    seen = set()
    for i in range(65535):
        pid = r.c.publish("t", b"", 1)
        assert 1 <= pid <= 65535 and pid not in seen
        seen.add(pid)
    with pytest.raises(m.Error) as ei:
        r.c.publish("t", b"", 1)
    assert ei.value.args[0] == m.MQLITE_ERR_NO_PACKET_ID
    # complete a few in the middle: exactly those identifiers come back
    r.connect()
    sent = [p.pid for p in r.out()]
    assert len(sent) == 65535
    for pid in (5, 60000, 777):
        r.send(m.MQLITE_PKT_PUBACK, pid=pid)
    r.c.events()
    again = sorted(r.c.publish("t", b"", 1) for _ in range(3))
    assert again == [5, 777, 60000]


# ---------------------------------------------------------------------------
# Keep-alive, with the injected clock
# ---------------------------------------------------------------------------

@BOTH
@pytest.mark.spec("3.1.1", "MQTT-3.1.2-23")
def test_keepalive_sends_pingreq_when_idle_and_pingresp_keeps_the_connection(rigs, version):
    r = rigs(version, opts={m.MQLITE_OPT_KEEPALIVE_S: 10})
    r.connect()
    assert r.c.timeout() == 10000
    r.c.advance(9999)
    assert r.out() == []
    r.c.advance(1)
    assert [p.name for p in r.out()] == ["PINGREQ"]
    r.c.advance(3000)
    r.send(m.MQLITE_PKT_PINGRESP)
    assert r.c.state() == m.MQLITE_STATE_CONNECTED
    # the next ping is one keep-alive after the last PINGREQ
    assert 0 < r.c.timeout() <= 10000
    for _ in range(5):
        r.c.advance(r.c.timeout())
        assert [p.name for p in r.out()] == ["PINGREQ"]
        r.send(m.MQLITE_PKT_PINGRESP)
    assert r.c.events() == []


def test_traffic_postpones_the_ping(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_KEEPALIVE_S: 10})
    r.connect()
    r.c.advance(6000)
    pid = r.c.publish("t", b"x", 1)
    r.out()
    r.send(m.MQLITE_PKT_PUBACK, pid=pid)
    r.c.advance(9999)
    assert r.out() == [], "pinged although a PUBLISH/PUBACK exchange happened 9.999 s ago"
    r.c.advance(1)
    assert [p.name for p in r.out()] == ["PINGREQ"]


@BOTH
def test_keepalive_without_pingresp_loses_the_connection(rigs, version):
    r = rigs(version, opts={m.MQLITE_OPT_KEEPALIVE_S: 5, m.MQLITE_OPT_PING_TIMEOUT_MS: 800})
    r.connect()
    r.c.advance(5000)
    assert [p.name for p in r.out()] == ["PINGREQ"]
    r.c.advance(799)
    with pytest.raises(m.Error) as ei:
        r.c.advance(1)
    assert ei.value.args[0] == m.MQLITE_ERR_KEEPALIVE
    out = r.out()
    if version == V5:   # 0x8D Keep Alive timeout, if it says anything
        assert all(p.name == "DISCONNECT" and p.reason == 0x8D for p in out)
    r.c.closed()
    (ev,) = r.c.events()
    assert event_name(ev.type) == "DISCONNECTED" and ev.error < 0


def test_keepalive_zero_never_pings(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_KEEPALIVE_S: 0})
    connect, _ = r.connect()
    assert connect.keepalive == 0
    assert r.c.timeout() == -1
    r.c.advance(10 ** 9)
    assert r.out() == []


# ---------------------------------------------------------------------------
# SUBSCRIBE / UNSUBSCRIBE
# ---------------------------------------------------------------------------

@BOTH
def test_subscribe_reports_per_filter_codes(rigs, version):
    r = rigs(version)
    r.connect()
    pkt, _ = m.mqlite_packet_new(m.MQLITE_PKT_SUBSCRIBE, version)
    try:
        for flt, qos in (("a/#", 0), ("b/+/c", 1), ("d", 2)):
            m.mqlite_packet_add_topic(pkt, flt, qos)
        pid = m.client_send_packet(r.c.c, pkt)
    finally:
        m.mqlite_packet_free(pkt)
    (s,) = r.out()
    assert (s.name, s.pid, s.topics, s.options) == ("SUBSCRIBE", pid, ["a/#", "b/+/c", "d"],
                                                     [0, 1, 2])
    r.send(m.MQLITE_PKT_SUBACK, pid=pid, reasons=[0, 1, 0x80])
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.pid, ev.codes) == ("SUBACK", pid, (0, 1, 0x80))
    assert "refused" in ev.text


def test_v5_subscription_options_and_identifier_are_sent(rigs):
    r = rigs(V5)
    r.connect()
    opts = 1 | 0x04 | 0x08 | 0x20   # QoS 1, no local, retain as published, RH 2
    pkt, _ = m.mqlite_packet_new(m.MQLITE_PKT_SUBSCRIBE, V5)
    try:
        m.mqlite_packet_add_topic(pkt, "x/#", opts)
        pr = make_props([(m.MQLITE_PROP_SUBSCRIPTION_ID, 77), ("user", "u", "v")])
        m.mqlite_packet_set_props(pkt, pr)
        m.mqlite_props_free(pr)
        pid = m.client_send_packet(r.c.c, pkt)
    finally:
        m.mqlite_packet_free(pkt)
    (s,) = r.out()
    assert s.options == [opts]
    assert s.prop(m.MQLITE_PROP_SUBSCRIPTION_ID) == 77
    r.send(m.MQLITE_PKT_SUBACK, pid=pid, reasons=[1],
           props=[(m.MQLITE_PROP_REASON_STRING, "ok")])
    (ev,) = r.c.events()
    assert ev.codes == (1,) and (m.MQLITE_PROP_REASON_STRING, b"ok") in ev.props


@BOTH
def test_unsubscribe_is_acknowledged(rigs, version):
    r = rigs(version)
    r.connect()
    pid = r.c.subscribe("a/b", 1)
    r.pump()
    r.c.events()
    upid = r.c.unsubscribe("a/b")
    (u,) = r.out()
    assert (u.name, u.pid, u.topics) == ("UNSUBSCRIBE", upid, ["a/b"]) and upid != pid
    if version == V5:
        r.send(m.MQLITE_PKT_UNSUBACK, pid=upid, reasons=[0x11])
    else:
        r.send(m.MQLITE_PKT_UNSUBACK, pid=upid)
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.pid) == ("UNSUBACK", upid)
    assert ev.codes == ((0x11,) if version == V5 else None)


def test_subscribe_before_connack_is_sent_after_it(rigs):
    r = rigs(V311)
    r.c.start()
    r.out()
    pid = r.c.subscribe("early/#", 2)
    assert r.out() == []
    r.c.feed(r.b.connack(0))
    assert [(p.name, p.pid) for p in r.out()] == [("SUBSCRIBE", pid)]


def test_subscribe_while_idle_is_refused(rigs):
    r = rigs(V311)
    with pytest.raises(m.Error) as ei:
        r.c.subscribe("a", 0)
    assert ei.value.args[0] == m.MQLITE_ERR_NOT_CONNECTED


@pytest.mark.parametrize("flt", ["a/#/b", "a+", "", "#/x"])
def test_bad_filter_is_refused(rigs, flt):
    r = rigs(V311)
    r.connect()
    with pytest.raises(m.Error) as ei:
        r.c.subscribe(flt, 0)
    assert ei.value.args[0] == m.MQLITE_ERR_TOPIC_FILTER
    assert r.out() == []


def test_suback_with_wrong_code_count_is_a_protocol_error(rigs):
    r = rigs(V5)
    r.connect()
    pid = r.c.subscribe("a", 0)
    r.out()
    with pytest.raises(m.Error):
        r.send(m.MQLITE_PKT_SUBACK, pid=pid, reasons=[0, 0])
    (d,) = r.out()
    assert (d.name, d.reason) == ("DISCONNECT", 0x82)


# ---------------------------------------------------------------------------
# Session resume and session loss
# ---------------------------------------------------------------------------

@BOTH
@pytest.mark.spec("5.0", "MQTT-4.4.0-1")
def test_resume_resends_unacknowledged_with_dup_in_order(rigs, version):
    r = rigs(version, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_SESSION_EXPIRY_S: 300}
             if version == V5 else {m.MQLITE_OPT_CLEAN_START: 0})
    r.connect()
    a = r.c.publish("s", b"a", 1)
    b = r.c.publish("s", b"b", 2)
    c = r.c.publish("s", b"c", 1)
    d = r.c.publish("s", b"d", 2)
    first = r.out()
    assert [p.dup for p in first] == [0, 0, 0, 0]
    r.send(m.MQLITE_PKT_PUBREC, pid=d)          # d past PUBREC: PUBREL owed
    assert [(p.name, p.pid) for p in r.out()] == [("PUBREL", d)]
    r.cut()
    assert types(r.c.events()) == ["DISCONNECTED"]
    queued = r.c.publish("s", b"e", 1)          # published while disconnected
    connect, ev = r.connect(session_present=1)
    assert connect.clean_start == 0
    again = r.out()
    assert [(p.name, p.pid) for p in again] == \
        [("PUBREL", d), ("PUBLISH", a), ("PUBLISH", b), ("PUBLISH", c), ("PUBLISH", queued)]
    assert [(p.dup, p.payload) for p in again[1:]] == [(1, b"a"), (1, b"b"), (1, b"c"), (0, b"e")]
    assert r.c.events() == []


def test_resume_resends_an_unacknowledged_subscribe(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_CLEAN_START: 0})
    r.connect()
    pid = r.c.subscribe("x/#", 1)
    r.cut()
    r.c.events()
    r.connect(session_present=1)
    assert [(p.name, p.pid, p.topics) for p in r.out()] == [("SUBSCRIBE", pid, ["x/#"])]
    r.send(m.MQLITE_PKT_SUBACK, pid=pid, reasons=[1])
    assert types(r.c.events()) == ["SUBACK"]


@BOTH
def test_session_not_present_reports_in_flight_as_lost_and_sends_queued_afresh(rigs, version):
    r = rigs(version, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_MAX_INFLIGHT: 2})
    r.connect()
    pids = [r.c.publish("s", bytes([65 + i]), 1 + i % 2) for i in range(4)]
    assert [p.pid for p in r.out()] == pids[:2]
    r.cut()
    r.c.events()
    r.connect(session_present=0)
    lost = r.later
    assert [(event_name(e.type), e.pid, e.topic, e.payload) for e in lost] == \
        [("PUBLISH_LOST", pids[0], b"s", b"A"), ("PUBLISH_LOST", pids[1], b"s", b"B")]
    assert all(e.error == m.MQLITE_ERR_CONNECTION_LOST for e in lost)
    fresh = r.out()
    assert [(p.pid, p.dup, p.payload) for p in fresh] == [(pids[2], 0, b"C"), (pids[3], 0, b"D")]


def test_session_not_present_resubscribes_silently(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_SESSION_EXPIRY_S: 60})
    r.connect()
    pkt, _ = m.mqlite_packet_new(m.MQLITE_PKT_SUBSCRIBE, V5)
    m.mqlite_packet_add_topic(pkt, "keep/#", 2)
    pr = make_props([(m.MQLITE_PROP_SUBSCRIPTION_ID, 5)])
    m.mqlite_packet_set_props(pkt, pr)
    m.mqlite_props_free(pr)
    m.client_send_packet(r.c.c, pkt)
    m.mqlite_packet_free(pkt)
    r.c.subscribe("gone", 0)
    r.pump()
    assert types(r.c.events()) == ["SUBACK", "SUBACK"]
    r.c.unsubscribe("gone")
    r.pump()
    r.c.events()
    r.cut()
    r.c.events()
    r.connect(session_present=0)
    subs = r.out()
    assert [(p.name, p.topics, p.options) for p in subs] == [("SUBSCRIBE", ["keep/#"], [2])]
    assert subs[0].prop(m.MQLITE_PROP_SUBSCRIPTION_ID) == 5
    r.send(m.MQLITE_PKT_SUBACK, pid=subs[0].pid, reasons=[2])
    assert r.c.events() == [], "a re-subscription is the client's own business"


def test_resubscribe_can_be_switched_off(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_RESUBSCRIBE: 0})
    r.connect()
    r.c.subscribe("x", 1)
    r.pump()
    r.cut()
    r.c.events()
    r.connect(session_present=0)
    assert r.out() == []


def test_incoming_qos2_stays_held_across_a_resume(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_CLEAN_START: 0})
    r.connect()
    r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"once", qos=2, pid=4)
    assert [e.payload for e in r.c.events()] == [b"once"]
    r.cut()                                     # our PUBREC never left
    r.c.events()
    r.connect(session_present=1)
    r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"once", qos=2, pid=4, dup=1)
    assert r.c.events() == []
    assert [(p.name, p.pid) for p in r.out()] == [("PUBREC", 4)]
    r.send(m.MQLITE_PKT_PUBREL, pid=4)
    assert [(p.name, p.pid) for p in r.out()] == [("PUBCOMP", 4)]


@pytest.mark.spec("5.0", "MQTT-4.1.0-1")
def test_a_new_session_forgets_incoming_qos2_identifiers(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_SESSION_EXPIRY_S: 60})
    r.connect()
    r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"old", qos=2, pid=1)
    r.cut()
    r.c.events()
    r.connect(session_present=0)                # the server lost everything
    r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"new", qos=2, pid=1)
    assert [e.payload for e in r.c.events()] == [b"new"]


# ---------------------------------------------------------------------------
# Bad input from the network, DISCONNECT both ways
# ---------------------------------------------------------------------------

@BOTH
def test_packet_before_connack_is_a_protocol_error(rigs, version):
    r = rigs(version)
    r.c.start()
    r.out()
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"x")
    assert ei.value.args[0] == m.MQLITE_ERR_UNEXPECTED_PACKET
    out = r.out()
    if version == V5:
        assert [(p.name, p.reason) for p in out] == [("DISCONNECT", 0x82)]
        assert out[0].prop(m.MQLITE_PROP_REASON_STRING)
    else:
        assert out == []            # 3.1.1 has no DISCONNECT reason: just close
    r.c.closed()
    (ev,) = r.c.events()
    assert event_name(ev.type) == "CONNECT_FAILED" and ev.error < 0


@BOTH
def test_malformed_packet_closes_with_0x81(rigs, version):
    r = rigs(version)
    r.connect()
    good = encode(m.MQLITE_PKT_PUBLISH, version, topic="t", payload=b"x", qos=1, pid=1)
    bad = bytes([good[0] | 0x06]) + good[1:]     # QoS bits 11: [MQTT-3.3.1-4]
    with pytest.raises(m.Error) as ei:
        r.c.feed(bad)
    assert ei.value.args[0] == m.MQLITE_ERR_QOS3
    out = r.out()
    assert [(p.name, p.reason) for p in out] == ([("DISCONNECT", 0x81)] if version == V5 else [])
    r.c.closed()
    (ev,) = r.c.events()
    assert event_name(ev.type) == "DISCONNECTED" and ev.error < 0
    assert r.c.events() == []


def _keepalive_timeout(r):
    r.connect()
    r.c.advance(5000)
    r.c.advance(5000)


def _connack_timeout(r):
    r.c.start()
    r.c.advance(10000)


def _early_packet(r):
    r.c.start()
    r.send(m.MQLITE_PKT_PUBACK, pid=1)


def _malformed(r):
    r.connect()
    good = encode(m.MQLITE_PKT_PUBLISH, r.version, topic="t", payload=b"x", qos=1, pid=1)
    r.c.feed(bytes([good[0] | 0x06]) + good[1:])


CAUSES = [("keepalive", _keepalive_timeout, "DISCONNECTED", m.MQLITE_ERR_KEEPALIVE, "PINGRESP"),
          ("connack-timeout", _connack_timeout, "CONNECT_FAILED", m.MQLITE_ERR_TIMEOUT, "CONNACK"),
          ("early-packet", _early_packet, "CONNECT_FAILED", m.MQLITE_ERR_UNEXPECTED_PACKET,
           "before CONNACK"),
          ("malformed", _malformed, "DISCONNECTED", m.MQLITE_ERR_QOS3, "QoS")]


@BOTH
@pytest.mark.parametrize("cause,provoke,etype,code,words", CAUSES, ids=[c[0] for c in CAUSES])
def test_sans_io_close_event_says_why(rigs, version, cause, provoke, etype, code, words):
    r = rigs(version, opts={m.MQLITE_OPT_KEEPALIVE_S: 5})
    with pytest.raises(m.Error) as ei:
        provoke(r)
    assert ei.value.args[0] == code
    r.c.take()
    r.c.closed()
    ev = [e for e in r.c.events() if e.type != m.MQLITE_EVENT_CONNECTED]
    assert [(event_name(e.type), e.error) for e in ev] == [(etype, code)]
    assert words in ev[0].text


def test_second_connack_is_a_protocol_error(rigs):
    r = rigs(V5)
    r.connect()
    with pytest.raises(m.Error) as ei:
        r.c.feed(r.b.connack(0))
    assert ei.value.args[0] == m.MQLITE_ERR_UNEXPECTED_PACKET


def test_stale_acknowledgements_are_ignored(rigs):
    r = rigs(V311)
    r.connect()
    r.send(m.MQLITE_PKT_PUBACK, pid=99)
    r.send(m.MQLITE_PKT_PUBCOMP, pid=98)
    r.send(m.MQLITE_PKT_SUBACK, pid=97, reasons=[0])
    assert r.c.events() == [] and r.c.state() == m.MQLITE_STATE_CONNECTED


def test_v5_server_disconnect_is_reported_with_reason_and_properties(rigs):
    r = rigs(V5)
    r.connect()
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_DISCONNECT, reason=0x8B,
               props=[(m.MQLITE_PROP_REASON_STRING, "shutting down")])
    assert ei.value.args[0] == m.MQLITE_ERR_CLOSED
    r.c.closed()
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.reason, ev.error) == ("DISCONNECTED", 0x8B, m.MQLITE_ERR_CLOSED)
    assert (m.MQLITE_PROP_REASON_STRING, b"shutting down") in ev.props
    assert "Server shutting down" in ev.text


@BOTH
def test_graceful_disconnect(rigs, version):
    r = rigs(version)
    r.connect()
    m.mqlite_client_disconnect(r.c.c, 4 if version == V5 else 0)
    (d,) = r.out()
    assert d.name == "DISCONNECT"
    if version == V5:
        assert d.reason == 4
    assert r.c.state() == m.MQLITE_STATE_DISCONNECTING
    r.c.closed()
    (ev,) = r.c.events()
    assert (event_name(ev.type), ev.error) == ("DISCONNECTED", 0)
    assert r.c.state() == m.MQLITE_STATE_IDLE


def test_v5_bad_disconnect_reason_is_refused(rigs):
    r = rigs(V5)
    r.connect()
    with pytest.raises(m.Error) as ei:
        m.mqlite_client_disconnect(r.c.c, 0x02)
    assert ei.value.args[0] == m.MQLITE_ERR_RANGE


@BOTH
def test_any_split_of_the_input_gives_the_same_result(rigs, version):
    """The broker's bytes fed one at a time, then all in one call."""
    stream = b"".join([
        BrokerSession(version).connack(0),
        encode(m.MQLITE_PKT_PUBLISH, version, topic="s/1", payload=b"p" * 300, qos=1, pid=1),
        encode(m.MQLITE_PKT_PUBLISH, version, topic="s/2", payload=b"q", qos=2, pid=2),
        encode(m.MQLITE_PKT_PUBREL, version, pid=2),
        encode(m.MQLITE_PKT_PINGRESP, version)])
    results = []
    for chunks in ([stream[i:i + 1] for i in range(len(stream))], [stream]):
        r = rigs(version)
        r.c.start()
        r.out()
        for ch in chunks:
            r.c.feed(ch)
        results.append(([(event_name(e.type), e.topic, e.payload) for e in r.c.events()],
                         [(p.name, p.pid) for p in r.out()]))
    assert results[0] == results[1]
    assert results[0][1] == [("PUBACK", 1), ("PUBREC", 2), ("PUBCOMP", 2)]


def test_trace_events_carry_each_packet(rigs):
    r = rigs(V311, opts={m.MQLITE_OPT_TRACE: 1})
    r.c.start()
    raw = r.c.take()
    r.c.feed(r.b.connack(0))
    ev = r.c.events(trace=True)
    assert [(event_name(e.type), e.reason) for e in ev] == \
        [("TRACE", 1), ("TRACE", 0), ("CONNECTED", 0)]
    assert ev[0].payload == raw


def test_sans_io_and_socket_mode_do_not_mix(rigs):
    r = rigs(V311)
    r.c.start()
    with pytest.raises(m.Error) as ei:
        m.mqlite_client_connect(r.c.c, "127.0.0.1", 1883)
    assert ei.value.args[0] == m.MQLITE_ERR_STATE
    with pytest.raises(m.Error):
        m.mqlite_client_poll(r.c.c, 0)


def test_v31_empty_client_id_is_refused_locally(rigs):
    # MQTT 3.1 (protocol level 3) needs a client identifier of 1 to 23
    # characters; an empty one can only be refused by the server (0x02).
    r = rigs(3, "")
    try:
        r.c.start()
    except m.Error:
        return
    (p,) = r.out()
    pytest.fail(f"3.1 CONNECT sent with an empty client identifier: {p}")


@pytest.mark.spec("5.0", "MQTT-3.3.4-9")
def test_v5_incoming_qos2_beyond_our_receive_maximum_is_refused_with_0x93(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_RECEIVE_MAX: 2})
    connect, _ = r.connect()
    assert connect.prop(m.MQLITE_PROP_RECEIVE_MAX) == 2
    for pid in (1, 2):
        r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"x", qos=2, pid=pid)
    assert len(r.c.events()) == 2
    r.out()
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"x", qos=2, pid=3)
    assert ei.value.args[0] == m.MQLITE_ERR_RECEIVE_MAX
    assert [(p.name, p.reason) for p in r.out()] == [("DISCONNECT", 0x93)]
    assert r.c.events() == []


@pytest.mark.spec("5.0", "MQTT-3.1.2-25")
def test_v5_packet_over_our_maximum_size_is_refused_with_0x95(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_MAX_PACKET_SIZE: 64})
    r.connect()
    r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"x" * 40)
    assert len(r.c.events()) == 1
    with pytest.raises(m.Error) as ei:
        r.send(m.MQLITE_PKT_PUBLISH, topic="t", payload=b"x" * 100)
    assert ei.value.args[0] == m.MQLITE_ERR_PACKET_TOO_LARGE
    assert [(p.name, p.reason) for p in r.out()] == [("DISCONNECT", 0x95)]


@pytest.mark.spec("5.0", "3.7.2.1")
def test_v5_pubcomp_0x92_after_a_resent_pubrel_is_not_a_failure(rigs):
    r = rigs(V5, opts={m.MQLITE_OPT_CLEAN_START: 0, m.MQLITE_OPT_SESSION_EXPIRY_S: 60})
    r.connect()
    pid = r.c.publish("t", b"x", 2)
    r.out()
    r.send(m.MQLITE_PKT_PUBREC, pid=pid)
    assert [p.name for p in r.out()] == ["PUBREL"]
    r.cut()                        # the server handled PUBREL; its PUBCOMP was lost
    r.c.events()
    r.connect(session_present=1)
    assert [(p.name, p.pid) for p in r.out()] == [("PUBREL", pid)]
    r.send(m.MQLITE_PKT_PUBCOMP, pid=pid, reason=0x92)
    (ev,) = r.c.events()
    assert event_name(ev.type) == "PUBLISHED" and ev.pid == pid
    assert ev.error == 0, f"accepted message reported as failed: {ev.text}"
