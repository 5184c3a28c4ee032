"""mqlite.Client (python/mqlite/client.py): the synchronous client against
the in-process broker (mqlite.Broker, the `mqlite_broker` fixture) and
against Debian's mosquitto 2.0 (tests/python/peers.py). Every wait is
bounded."""
from __future__ import annotations

import selectors
import socket
import threading
import time
import uuid
from typing import Any, List

import pytest

import mqlite
from mqlite import mqlite_c as m
from mqlite.testing import break_connection
from peers import closed_port, mosquitto, mosquitto_factory  # noqa: F401 (fixtures)

T = 10.0  # seconds: the bound of every wait


class Target:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["mqlite", "mosquitto"])
def broker(request: Any) -> Target:
    """The in-process mqlite broker (one per test) or the session's mosquitto."""
    if request.param == "mqlite":
        return Target("mqlite", request.getfixturevalue("mqlite_broker").port)
    return Target("mosquitto", request.getfixturevalue("mosquitto").port)


def topic() -> str:
    return f"pyclient/{uuid.uuid4().hex}"


def cid(prefix: str = "py") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def client(b: Target, **kw: Any) -> mqlite.Client:
    kw.setdefault("client_id", cid())
    return mqlite.Client(port=b.port, **kw)


# ---------------------------------------------------------------------------
# connect, disconnect, close
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [3, 4, 5, "3.1.1", "5.0"])
def test_with_connects_and_disconnects(broker: Target, version: Any) -> None:
    seen: List[str] = []
    c = client(broker, version=version,
               on_connect=lambda cl, sp, props: seen.append(f"connect sp={sp}"),
               on_disconnect=lambda cl, rc, err: seen.append(f"disconnect rc={rc} err={err}"))
    assert c.state == "idle" and not c.is_connected
    with c as same:
        assert same is c
        assert c.is_connected and c.state == "connected"
        assert c.session_present is False
        assert c.version == mqlite.parse_version(version)
    assert c.closed and c.state == "closed"
    assert seen == ["connect sp=False", "disconnect rc=0 err=None"]
    c.close()  # idempotent
    with pytest.raises(mqlite.MqliteError, match="closed"):
        c.publish("a", b"x")


def test_connect_returns_the_client_and_server_assigns_an_id(broker: Target) -> None:
    c = mqlite.Client(port=broker.port, version=5)  # client_id "" -> assigned
    try:
        assert c.connect(timeout=T) is c
        assert c.client_id and c.connack_properties["assigned_client_id"] == c.client_id
        assert "MQLITE" not in repr(c) and "connected" in repr(c)
        with pytest.raises(mqlite.MqliteError) as e:
            c.connect(timeout=T)
        assert e.value.name == "MQLITE_ERR_STATE"
        c.disconnect(timeout=T)
        assert c.state == "idle"
        c.disconnect()  # not connected: nothing to do
        c.connect(timeout=T)  # a second time on the same client
        assert c.is_connected
    finally:
        c.close()


def test_connect_refused_port_raises_connect_error() -> None:
    port = closed_port()
    fails: List[mqlite.MqliteError] = []
    c = mqlite.Client(port=port, on_connect_fail=lambda cl, e: fails.append(e))
    with pytest.raises(mqlite.ConnectError) as e:
        c.connect(timeout=T)
    assert isinstance(e.value, ConnectionError)
    assert e.value.reason_code is None
    assert "refused" in e.value.message.lower()
    assert fails and fails[0].message == e.value.message
    assert c.state == "idle" and c.last_error is e.value
    c.close()


def test_connect_timeout_when_nobody_answers() -> None:
    # A listening socket that never accepts/answers: TCP connects, no CONNACK.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        c = mqlite.Client(port=srv.getsockname()[1])
        t0 = time.monotonic()
        with pytest.raises(mqlite.TimeoutError) as e:
            c.connect(timeout=0.3)
        assert isinstance(e.value, TimeoutError)
        assert time.monotonic() - t0 < 3
        assert c.state == "idle"  # the attempt was abandoned
        c.close()


def test_connack_refusal_has_the_reason_code(mosquitto_factory: Any, tmp_path: Any) -> None:
    import shutil
    import subprocess
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto_passwd is not installed")
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "pw"), "u", "p"], check=True,
                   capture_output=True)
    p = mosquitto_factory(conf=f"user root\npassword_file {tmp_path}/pw\nallow_anonymous false\n",
                          ready_args="-u u -P p")
    for version, code in ((4, 5), (5, 0x87)):
        c = mqlite.Client(port=p.port, version=version)
        with pytest.raises(mqlite.ConnectError) as e:
            c.connect(timeout=T)
        assert e.value.reason_code == code, e.value
        assert "authori" in e.value.message.lower()
        c.close()
    with mqlite.Client(port=p.port, username="u", password="p") as c:
        assert c.is_connected


def test_tls_options_reach_the_c_client() -> None:
    """A CA file that does not exist is named in the error of connect()
    (the C client reads TLS files when it connects)."""
    c = mqlite.Client(port=1, ca_certs="/nonexistent/mqlite-ca.pem")
    with pytest.raises(mqlite.MqliteError) as e:
        c.connect(timeout=T)
    assert "/nonexistent/mqlite-ca.pem" in e.value.message
    c.close()
    with pytest.raises(TypeError):
        mqlite.Client(ca_certs=42)


@pytest.mark.parametrize("kw,exc,text", [
    ({"keepalive": 70000}, ValueError, "MQLITE_OPT_KEEPALIVE_S must be 0..65535"),
    ({"version": 6}, ValueError, "unknown MQTT version"),
    ({"version": "4.0"}, ValueError, "unknown MQTT version"),
    ({"port": 0}, ValueError, "port must be 1..65535"),
    ({"port": "1883"}, TypeError, "port must be an int"),
    ({"receive_maximum": 0, "version": 5}, ValueError, "MQLITE_OPT_RECEIVE_MAX"),
    ({"session_expiry": 10}, ValueError, "MQTT 5.0 feature"),
    ({"receive_maximum": 10}, ValueError, "MQTT 5.0 feature"),
    ({"will": {"topic": "a/#"}}, ValueError, "will topic"),
    ({"will": {"topic": "a", "qos": 3}}, ValueError, "MQLITE_OPT_WILL_QOS"),
    ({"will": {"topic": "a", "properties": {"will_delay": 1}}}, ValueError, "MQTT 5.0"),
    ({"client_id": "a\0b"}, ValueError, "client_id"),
    ({"client_id": 7}, TypeError, "client_id must be a str"),
    ({"connect_timeout": -1}, ValueError, "connect_timeout"),
    ({"max_inflight": 0}, ValueError, "MQLITE_OPT_MAX_INFLIGHT must be 1..65535"),
    ({"colour": "red"}, TypeError, "colour"),
])
def test_bad_options_raise_with_the_c_message(kw: Any, exc: type, text: str) -> None:
    with pytest.raises(exc) as e:
        mqlite.Client(**kw)
    assert text in str(e.value)


# ---------------------------------------------------------------------------
# publish / subscribe, QoS 0/1/2 both ways
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_qos_matrix(broker: Target, version: int, pub_qos: int, sub_qos: int) -> None:
    t = topic()
    with client(broker, version=version) as sub, client(broker, version=version) as pub:
        h = sub.subscribe(t, qos=sub_qos)
        assert h.wait(T) == (sub_qos,) and h.granted_qos == (sub_qos,) and h.done
        payloads = [f"m{i}".encode() for i in range(5)]
        handles = [pub.publish(t, p, qos=pub_qos) for p in payloads]
        for ph in handles:
            assert ph.qos == pub_qos
            assert ph.wait(T) == (None if pub_qos == 0 else 0)
            assert ph.is_done and ph.error is None
            assert (ph.packet_id > 0) == (pub_qos > 0)
        got = [sub.receive(T) for _ in payloads]
        assert [g.payload for g in got if g] == payloads
        for g in got:
            assert g is not None and g.topic == t and g.qos == min(pub_qos, sub_qos)
            assert not g.retain and not g.dup
            assert (g.packet_id > 0) == (g.qos > 0)
        assert sub.receive(0.05) is None


def test_messages_iterator_ends_after_idle_timeout(broker: Target) -> None:
    t = topic()
    with client(broker) as c:
        c.subscribe(t + "/#", qos=1).wait(T)
        for i in range(3):
            c.publish(f"{t}/{i}", str(i), qos=1)
        t0 = time.monotonic()
        got = [(msg.topic, msg.text) for msg in c.messages(timeout=0.3)]
        assert got == [(f"{t}/{i}", str(i)) for i in range(3)]
        assert time.monotonic() - t0 < 5
        assert list(c.messages(timeout=0)) == []


def test_message_conveniences(mqlite_broker: mqlite.Broker) -> None:
    t = topic()
    with mqlite.Client(port=mqlite_broker.port) as c:
        c.subscribe(t).wait(T)
        c.publish(t, '{"temp": 21.5}')
        msg = c.receive(T)
        assert msg is not None
        assert msg.json() == {"temp": 21.5} and msg.text == '{"temp": 21.5}'
        assert msg.properties == {} and msg.user_properties == [] and msg.content_type is None
        assert msg.response_topic is None and msg.correlation_data is None
        assert msg.message_expiry is None and msg.subscription_ids == []
        assert msg == mqlite.Message(t, b'{"temp": 21.5}')
        with pytest.raises(AttributeError):
            msg.topic = "x"  # type: ignore[misc]
        assert "temp" in repr(msg)
        assert len({msg, mqlite.Message(t, b'{"temp": 21.5}')}) == 1


def test_subscribe_many_filters_with_options(broker: Target) -> None:
    t = topic()
    with client(broker, version=5) as c:
        h = c.subscribe([f"{t}/a", (f"{t}/b", 1),
                         (f"{t}/c", mqlite.SubscribeOptions(qos=2, no_local=True))])
        assert h.wait(T) == (0, 1, 2)
        assert h.filters == (f"{t}/a", f"{t}/b", f"{t}/c")
        for x in "abc":
            c.publish(f"{t}/{x}", x, qos=2)
        got = {msg.topic[-1]: msg.qos for msg in c.messages(timeout=0.5)}
        assert got == {"a": 0, "b": 1}  # no local: not our own message on c
        u = c.unsubscribe([f"{t}/a", f"{t}/b"])
        assert u.wait(T) == (0, 0)
        c.publish(f"{t}/a", "x", qos=1).wait(T)
        assert c.receive(0.2) is None


def test_unsubscribe_v311_has_no_codes(broker: Target) -> None:
    t = topic()
    with client(broker) as c:
        c.subscribe(t).wait(T)
        u = c.unsubscribe(t)
        assert isinstance(u, mqlite.UnsubscribeHandle)
        assert u.wait(T) == (0,)
        assert "UnsubscribeHandle" in repr(u)


def test_subscribe_refused_raises_subscribe_error() -> None:
    with mqlite.Broker(port=0, wildcard_subscriptions=False) as b:
        with mqlite.Client(port=b.port, version=5) as c:
            h = c.subscribe(["ok/x", "no/#"], qos=1)
            with pytest.raises(mqlite.SubscribeError) as e:
                h.wait(T)
            assert e.value.reason_codes == (1, 0xA2)
            assert e.value.filters == ("ok/x", "no/#")
            assert "Wildcard" in e.value.message
            assert h.reason_codes == (1, 0xA2)


def test_publish_refused_raises_delivery_error(mosquitto_factory: Any, tmp_path: Any) -> None:
    (tmp_path / "acl").write_text("topic readwrite ok/#\ntopic read ro/#\n")
    p = mosquitto_factory(conf=f"user root\nacl_file {tmp_path}/acl\n")
    failed: List[Any] = []
    with mqlite.Client(port=p.port, version=5,
                       on_publish=lambda cl, pid, rc: failed.append(rc)) as c:
        h = c.publish("ro/x", b"a", qos=1)
        with pytest.raises(mqlite.DeliveryError) as e:
            h.wait(T)
        assert e.value.reason_code == 0x87 and e.value.packet_id == h.packet_id
        assert not e.value.lost and "Not authorized" in e.value.message
        assert h.reason_code == 0x87 and h.error is e.value
        assert c.publish("ok/x", b"a", qos=1).wait(T) in (0, 0x10)
        # Without a handle (publish_many): flush() reports it.
        assert c.publish_many(None, [("ro/y", b"1"), ("ok/y", b"2")], qos=1) == 2
        with pytest.raises(mqlite.DeliveryError) as e2:
            c.flush(T)
        assert e2.value.reason_code == 0x87
        c.flush(T)  # reported once
        assert 0x87 in failed


@pytest.mark.parametrize("bad,text", [
    ("a/+", "wildcard"),
    ("", "at least one character"),
    ("a\0b", "U+0000"),
    ("\ud800", "surrogate"),
])
def test_publish_bad_topic_is_a_value_error(mqlite_broker: mqlite.Broker, bad: str,
                                            text: str) -> None:
    with mqlite.Client(port=mqlite_broker.port) as c:
        with pytest.raises(ValueError) as e:
            c.publish(bad, b"x")
        assert isinstance(e.value, mqlite.InvalidPacketError)
        assert text in str(e.value)


def test_publish_argument_errors(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port, version=5) as c:
        with pytest.raises(ValueError, match="QoS must be 0, 1 or 2"):
            c.publish("a", b"x", qos=3)
        with pytest.raises(TypeError, match="qos must be an int"):
            c.publish("a", b"x", qos=1.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="payload must be"):
            c.publish("a", 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="topic must be str"):
            c.publish(42, b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown property"):
            c.publish("a", b"x", properties={"colour": 1})
        with pytest.raises(ValueError, match="not allowed"):
            c.publish("a", b"x", properties={"session_expiry": 1})
        with pytest.raises(ValueError, match="topic filter"):
            c.subscribe("a/#/b")
        with pytest.raises(TypeError):
            c.subscribe([("a", "1")])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="qos must be 0, 1 or 2"):
            c.subscribe("a", qos=7)
        with pytest.raises(ValueError):
            c.subscribe("a", retain_handling=3)
        with pytest.raises(ValueError):
            c.subscribe([])
        # str payloads are UTF-8; bytearray and memoryview are fine
        c.subscribe("a", 1).wait(T)
        c.publish("a", "é", 1).wait(T)
        c.publish("a", bytearray(b"ba"), 1).wait(T)
        c.publish("a", memoryview(b"mv"), 1).wait(T)
        c.publish("a", None, 1).wait(T)
        assert [m.payload for m in c.messages(timeout=0.3)] == ["é".encode(), b"ba", b"mv", b""]


def test_subscribe_before_connect_is_a_connection_error() -> None:
    c = mqlite.Client()
    with pytest.raises(mqlite.ConnectionLostError, match="not connected"):
        c.subscribe("a")
    c.close()


# ---------------------------------------------------------------------------
# retained, will, 5.0 properties
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_retained_message(broker: Target, version: int) -> None:
    t = topic()
    with client(broker, version=version) as pub:
        pub.publish(t, b"kept", qos=1, retain=True).wait(T)
        with client(broker, version=version) as sub:
            sub.subscribe(t, qos=1).wait(T)
            msg = sub.receive(T)
            assert msg is not None and msg.payload == b"kept" and msg.retain
            pub.publish(t, b"live", qos=1).wait(T)
            msg = sub.receive(T)
            assert msg is not None and msg.payload == b"live" and not msg.retain
        pub.publish(t, b"", qos=1, retain=True).wait(T)  # clear it


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_sent_when_the_connection_breaks(broker: Target, version: int) -> None:
    t = topic()
    props = {"content_type": "text/plain", "user": [("who", "sensor")]} if version == 5 else ()
    with client(broker, version=version) as watcher:
        watcher.subscribe(t, qos=1).wait(T)
        dying = client(broker, version=version,
                       will=mqlite.Will(topic=t, payload=b"gone", qos=1, properties=props))
        dying.connect(timeout=T)
        break_connection(dying)
        msg = watcher.receive(T)
        assert msg is not None and msg.payload == b"gone" and msg.qos == 1
        if version == 5:
            assert msg.content_type == "text/plain"
            assert msg.user_properties == [("who", "sensor")]
        dying.close()
        # A will given as a mapping, and a clean disconnect: no will.
        quiet = client(broker, version=version, will={"topic": t, "payload": "x"})
        quiet.connect(timeout=T)
        quiet.close()
        assert watcher.receive(0.3) is None


def test_v5_properties_round_trip(broker: Target) -> None:
    t = topic()
    props = [("payload_format", 1), ("message_expiry", 300),
             ("content_type", "application/json"), ("response_topic", t + "/reply"),
             ("correlation_data", b"\x00\x01\xff"), ("user", ("a", "1")), ("user", ("b", "2")),
             ("user", ("a", "3"))]
    with client(broker, version=5) as c:
        c.subscribe(t, qos=1, subscription_identifier=42).wait(T)
        c.publish(t, b"{}", qos=1, properties=props).wait(T)
        msg = c.receive(T)
        assert msg is not None
        assert msg.user_properties == [("a", "1"), ("b", "2"), ("a", "3")]
        assert msg.properties.get_all("user") == msg.user_properties
        assert msg.content_type == "application/json"
        assert msg.response_topic == t + "/reply"
        assert msg.correlation_data == b"\x00\x01\xff"
        assert msg.message_expiry is not None and 290 <= msg.message_expiry <= 300
        assert msg.properties["payload_format"] == 1
        assert msg.subscription_ids == [42]
        # the mapping form, repeated user properties as a list
        c.publish(t, b"x", qos=1, properties={"user": [("k", "v"), ("k", "w")]}).wait(T)
        msg = c.receive(T)
        assert msg is not None and msg.user_properties == [("k", "v"), ("k", "w")]


def test_connect_properties_and_limits(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port, version=5, session_expiry=60,
                       receive_maximum=10, max_packet_size=100000, topic_alias_maximum=5,
                       connect_properties=[("user", ("app", "test"))],
                       request_response_information=True) as c:
        assert c.is_connected


# ---------------------------------------------------------------------------
# reconnect and session resume
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_reconnect_resumes_the_session(broker: Target, version: int) -> None:
    t = topic()
    events: List[str] = []
    kw = {"session_expiry": 300} if version == 5 else {}
    sub = client(broker, version=version, clean_start=version == 5, auto_reconnect=True,
                 reconnect_min_delay=0.05, reconnect_max_delay=0.2,
                 on_connect=lambda cl, sp, p: events.append(f"up sp={sp}"),
                 on_disconnect=lambda cl, rc, e: events.append(f"down {e is not None}"), **kw)
    assert sub.auto_reconnect
    with client(broker, version=version) as pub, client(broker, version=version) as other:
        sub.connect(timeout=T)
        sub.subscribe(t + "/in", qos=2).wait(T)
        other.subscribe(t + "/out", qos=2).wait(T)
        sub.disconnect(timeout=T)
        # Resume: same id, clean_start False (3.1.1: clean session 0).
        sub2 = client(broker, version=version, client_id=sub.client_id, clean_start=False,
                      auto_reconnect=True, reconnect_min_delay=0.05, reconnect_max_delay=0.2,
                      on_connect=lambda cl, sp, p: events.append(f"up sp={sp}"),
                      on_disconnect=lambda cl, rc, e: events.append(f"down {e is not None}"),
                      **kw)
        sub.close()
        sub2.connect(timeout=T)
        assert sub2.session_present
        break_connection(sub2)
        # While sub2 is away: messages for it pile up in the broker, and
        # sub2 publishes (queued in the C client, sent after the reconnect).
        for i in range(10):
            pub.publish(t + "/in", f"{i}", qos=1 + i % 2).wait(T)
        outs = [sub2.publish(t + "/out", f"o{i}", qos=1 + i % 2) for i in range(6)]
        got = []
        deadline = time.monotonic() + T
        while len(got) < 10 and time.monotonic() < deadline:
            msg = sub2.receive(0.5)
            if msg is not None:
                got.append(msg.payload.decode())
        assert sorted(got, key=int) == [str(i) for i in range(10)]
        for h in outs:
            assert h.wait(T) == 0
        received = sorted(msg.payload.decode() for msg in other.messages(timeout=0.5))
        assert received == sorted(f"o{i}" for i in range(6))
        assert sub2.is_connected and sub2.session_present
        assert "down True" in events and events.count("up sp=True") >= 2
        sub2.close()


def test_publish_while_disconnected_is_queued_until_connect(broker: Target) -> None:
    t = topic()
    c = client(broker, max_queued=3)
    h = c.publish(t, b"early", qos=1)
    assert not h.done and c.queued == 1
    with pytest.raises(mqlite.ConnectionLostError):
        h.wait(0.1)  # not connected and not reconnecting
    c.publish(t, b"2", qos=1)
    c.publish(t, b"3", qos=1)
    with pytest.raises(mqlite.QueueFullError) as e:
        c.publish(t, b"4", qos=1)
    assert "not connected" in e.value.message
    with pytest.raises(mqlite.QueueFullError):
        c.publish(t, b"4", qos=1, block=False)
    c.connect(timeout=T)
    assert h.wait(T) == 0 and c.queued == 0
    c.close()


class MuteBroker:
    """Accepts one connection, answers CONNECT with CONNACK (built with
    mqlite's codec), then reads and never answers anything else."""

    def __init__(self) -> None:
        from peers import encode
        self.connack = encode(m.MQLITE_PKT_CONNACK, 4, session_present=0, reason=0)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.done = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self) -> None:
        self.srv.settimeout(T)
        conn, _ = self.srv.accept()
        with conn:
            conn.settimeout(0.1)
            conn.recv(1000)
            conn.sendall(self.connack)
            while not self.done.is_set():
                try:
                    if not conn.recv(65536):
                        break
                except socket.timeout:
                    pass

    def close(self) -> None:
        self.done.set()
        self.th.join(T)
        self.srv.close()


def test_wait_and_flush_time_out() -> None:
    mute = MuteBroker()
    try:
        c = mqlite.Client(port=mute.port)
        c.connect(timeout=T)
        h = c.publish("a", b"x", qos=1)
        t0 = time.monotonic()
        with pytest.raises(mqlite.TimeoutError) as e:
            h.wait(0.2)
        assert 0.15 < time.monotonic() - t0 < 3 and "not acknowledged" in e.value.message
        with pytest.raises(mqlite.TimeoutError):
            c.flush(0.1)
        assert not h.done and c.inflight == 1
        s = c.subscribe("x")
        with pytest.raises(mqlite.TimeoutError):
            s.wait(0.1)
        c.close()
        with pytest.raises(mqlite.ConnectionLostError):
            h.wait(0)
    finally:
        mute.close()


# ---------------------------------------------------------------------------
# callbacks, loops, threads
# ---------------------------------------------------------------------------

def test_callbacks(broker: Target) -> None:
    t = topic()
    log: List[Any] = []
    c = client(broker, version=5,
               on_message=lambda cl, msg: log.append(("message", msg.payload)),
               on_connect=lambda cl, sp, props: log.append(("connect", sp)),
               on_disconnect=lambda cl, rc, err: log.append(("disconnect", rc, err)),
               on_publish=lambda cl, pid, rc: log.append(("publish", pid, rc)))
    with c:
        c.subscribe(t, qos=1).wait(T)
        h = c.publish(t, b"cb", qos=1)
        h.wait(T)
        deadline = time.monotonic() + T
        while ("message", b"cb") not in log and time.monotonic() < deadline:
            c.loop(0.1)
        assert c.receive(0) is None  # on_message took it
    assert log[0] == ("connect", False)
    assert ("publish", h.packet_id, h.reason_code) in log
    assert ("message", b"cb") in log
    assert log[-1] == ("disconnect", 0, None)


def test_loop_forever_and_loop_stop_from_another_thread(broker: Target) -> None:
    t = topic()
    got: List[bytes] = []
    c = client(broker, on_message=lambda cl, msg: got.append(msg.payload))
    with c, client(broker) as pub:
        c.subscribe(t, qos=1).wait(T)

        def later() -> None:
            pub.publish(t, b"1", qos=1).wait(T)
            deadline = time.monotonic() + T
            while not got and time.monotonic() < deadline:
                time.sleep(0.01)
            c.loop_stop()  # the one call allowed from another thread

        th = threading.Thread(target=later)
        t0 = time.monotonic()
        th.start()
        c.loop_forever()
        th.join(T)
        assert got == [b"1"] and time.monotonic() - t0 < T
        c.loop_stop()  # before loop_forever: reset when it starts
        assert c.loop(0.01) >= 0


def test_loop_forever_returns_after_disconnect_in_a_callback(broker: Target) -> None:
    t = topic()
    c = client(broker, on_message=lambda cl, msg: cl.disconnect(timeout=1))
    with c:
        c.subscribe(t, qos=1).wait(T)
        c.publish(t, b"bye", qos=1)
        th = threading.Timer(T, c.loop_stop)  # safety net
        th.start()
        try:
            c.loop_forever()
        finally:
            th.cancel()
        assert c.state == "idle"


def test_loop_forever_raises_when_the_connection_is_lost(mqlite_broker: mqlite.Broker) -> None:
    c = mqlite.Client(port=mqlite_broker.port)
    c.connect(timeout=T)
    break_connection(c)
    with pytest.raises(mqlite.ConnectionLostError):
        c.loop_forever()
    with pytest.raises(mqlite.ConnectionLostError):
        list(c.messages(timeout=1))
    with pytest.raises(mqlite.ConnectionLostError):
        c.receive(1)
    assert isinstance(c.last_error, mqlite.ConnectionLostError)
    c.close()


def test_another_thread_may_not_use_a_waiting_client(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port) as c:
        errors: List[BaseException] = []

        def other() -> None:
            time.sleep(0.1)
            try:
                c.publish("a", b"x")
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            c.loop_stop()

        th = threading.Thread(target=other)
        th.start()
        c.loop_forever()
        th.join(T)
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
        assert "another thread" in str(errors[0])


def test_waits_release_the_gil(mqlite_broker: mqlite.Broker) -> None:
    """While receive() waits, another Python thread runs freely."""
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    with mqlite.Client(port=mqlite_broker.port) as c:
        c.subscribe("gil/t").wait(T)
        th = threading.Thread(target=spin)
        th.start()
        try:
            time.sleep(0.05)
            before = count[0]
            assert c.receive(0.5) is None
            during = count[0] - before
        finally:
            stop.set()
            th.join()
    # Held GIL: the spinner would be stuck for the whole 0.5 s.
    assert during > 10000, during


def test_selector_integration(broker: Target) -> None:
    """fileno() / want_write() / next_timeout() / handle_io() in a loop of one's own."""
    t = topic()
    got: List[bytes] = []
    c = client(broker, on_message=lambda cl, msg: got.append(msg.payload))
    c.connect(timeout=T)
    c.subscribe(t, qos=1)
    c.publish(t, b"sel", qos=1)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + T
    while not got and time.monotonic() < deadline:
        fd = c.fileno()
        assert fd >= 0
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.want_write() else 0)
        sel.register(fd, ev)
        nt = c.next_timeout()
        assert nt is None or nt >= 0
        ready = sel.select(min(nt if nt is not None else 1.0, 1.0))
        sel.unregister(fd)
        r = any(k.events & selectors.EVENT_READ and m_ & selectors.EVENT_READ
                for k, m_ in ready)
        w = any(m_ & selectors.EVENT_WRITE for _, m_ in ready)
        c.handle_io(readable=r, writable=w)
    assert got == [b"sel"]
    sel.close()
    c.close()
    with pytest.raises(mqlite.MqliteError):
        c.fileno()


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_many_and_flush(broker: Target, qos: int) -> None:
    t = topic()
    n = 900  # below the brokers' default queue per subscriber (1000 messages)
    got: List[mqlite.Message] = []
    ready = threading.Event()

    def subscriber() -> None:
        # Its own client in its own thread: the broker's queue for a
        # subscriber that does not read would overflow.
        with client(broker) as sub:
            sub.subscribe(t + "/#", qos=qos).wait(T)
            ready.set()
            deadline = time.monotonic() + T
            while len(got) < n + 2 and time.monotonic() < deadline:
                got.extend(sub.receive_many(1000, timeout=0.5))

    th = threading.Thread(target=subscriber)
    th.start()
    try:
        assert ready.wait(T)
        # mosquitto 2.0.11 drops QoS 2 messages when a publisher keeps more
        # than 20 in flight (DESIGN.md): stay within its window.
        with client(broker, max_queued=200, max_inflight=20) as pub:
            # more than the queue holds: publish_many waits for room
            assert pub.publish_many(t + "/a", [b"%d" % i for i in range(n)], qos=qos) == n
            assert pub.publish_many(None, [(t + "/b", "x"), (t + "/c", b"y")], qos=qos) == 2
            pub.flush(T)
            assert pub.queued == 0 and pub.inflight == 0
    finally:
        th.join(2 * T)
    assert [int(x.payload) for x in got[:n]] == list(range(n))
    assert [(x.topic, x.payload) for x in got[n:]] == [(t + "/b", b"x"), (t + "/c", b"y")]


def test_publish_many_errors(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port) as c:
        with pytest.raises(ValueError, match=r"items\[1\].*\(1 before it were queued\)"):
            c.publish_many(None, [("ok", b"1"), ("bad/#", b"2")])
        with pytest.raises(TypeError, match=r"items\[0\] must be a \(topic, payload\) tuple"):
            c.publish_many(None, [b"x"])
        with pytest.raises(TypeError, match="payload of items"):
            c.publish_many("t", [1])
        with pytest.raises(ValueError, match="wildcard"):
            c.publish_many("t/+", [b"x"])
        assert c.publish_many("t", iter([b"a", "b"])) == 2
        assert c.publish_many("t", []) == 0
        c.flush(T)


# ---------------------------------------------------------------------------
# lifetime
# ---------------------------------------------------------------------------

def test_dropped_client_is_freed_by_the_safety_net(broker: Target) -> None:
    import gc
    t = topic()
    with client(broker) as watcher:
        watcher.subscribe(t, qos=1).wait(T)
        c = client(broker, will={"topic": t, "payload": b"freed", "qos": 1})
        c.connect(timeout=T)
        del c  # no close(): __del__ frees the C client, the socket closes
        gc.collect()
        msg = watcher.receive(T)  # no DISCONNECT was sent: the will fires
        assert msg is not None and msg.payload == b"freed"


def test_pending_handles_fail_when_closed(mqlite_broker: mqlite.Broker) -> None:
    c = mqlite.Client(port=mqlite_broker.port)
    h = c.publish("a", b"x", qos=1)  # queued, never connected
    c.close()
    with pytest.raises(mqlite.ConnectionLostError, match="closed"):
        h.wait(0)
    assert h.done and "pending" not in repr(h)
