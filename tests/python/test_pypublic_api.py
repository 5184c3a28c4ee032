"""The public names of the mqlite package that the other suites reach only
indirectly: the handle classes, SubscribeOptions' 5.0 flags (against the
in-process broker and mosquitto), PropertyView, the exception classes a
user catches, Broker.load_config; and a check that every name in
``mqlite.__all__`` and every public member of its classes is used by some
test in tests/python/test_py*.py."""
from __future__ import annotations

import asyncio
import inspect
import pathlib
import re
import uuid
from typing import Any, List

import pytest

import mqlite
from mqlite import packet
from peers import mosquitto  # noqa: F401 (fixture)

T = 10.0  # seconds: the bound of every wait
HERE = pathlib.Path(__file__).resolve().parent


class Target:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["mqlite", "mosquitto"])
def broker(request: Any) -> Target:
    if request.param == "mqlite":
        return Target("mqlite", request.getfixturevalue("mqlite_broker").port)
    return Target("mosquitto", request.getfixturevalue("mosquitto").port)


def topic() -> str:
    return f"pyapi/{uuid.uuid4().hex}"


def client(b: Target, **kw: Any) -> mqlite.Client:
    kw.setdefault("client_id", f"api-{uuid.uuid4().hex[:12]}")
    return mqlite.Client(port=b.port, **kw)


# ---------------------------------------------------------------------------
# handles
# ---------------------------------------------------------------------------

def test_sync_handles_have_their_types_and_outcome(broker: Target) -> None:
    t = topic()
    with client(broker, version=5) as c:
        sh = c.subscribe(t, qos=2)
        assert isinstance(sh, mqlite.SubscribeHandle)
        assert sh.wait(T) == (2,) and sh.filters == (t,)
        ph = c.publish(t, b"x", qos=2)
        assert isinstance(ph, mqlite.PublishHandle)
        assert ph.wait(T) == 0 and ph.is_done and ph.packet_id > 0
        assert isinstance(ph.reason, str)
        assert c.receive(T) is not None
        uh = c.unsubscribe(t)
        assert isinstance(uh, mqlite.UnsubscribeHandle)
        assert uh.wait(T) == (0,)


def test_async_handles_have_their_types(broker: Target) -> None:
    async def main() -> None:
        t = topic()
        async with mqlite.AsyncClient(port=broker.port, version=5) as c:
            sh = await c.subscribe(t, qos=1)
            assert isinstance(sh, mqlite.AsyncSubscribeHandle) and sh.reason_codes == (1,)
            h = c.publish_nowait(t, b"y", qos=1)
            assert isinstance(h, mqlite.AsyncPublishHandle)
            assert await asyncio.wait_for(h, T) == 0
            msg = await c.receive(T)
            assert msg is not None and msg.payload == b"y"
            uh = await c.unsubscribe(t)
            assert isinstance(uh, mqlite.AsyncUnsubscribeHandle) and uh.reason_codes == (0,)
    asyncio.run(asyncio.wait_for(main(), 3 * T))


# ---------------------------------------------------------------------------
# SubscribeOptions (MQTT 5.0 subscription options)
# ---------------------------------------------------------------------------

def test_subscribe_options_byte_is_the_wire_value() -> None:
    so = mqlite.SubscribeOptions(qos=1, no_local=True, retain_as_published=True,
                                 retain_handling=2)
    assert so.byte == 0x01 | 0x04 | 0x08 | 0x20
    assert (so.qos, so.no_local, so.retain_as_published, so.retain_handling) == (1, True, True, 2)
    with pytest.raises(ValueError, match="must be 0, 1 or 2"):
        _ = mqlite.SubscribeOptions(qos=4).byte
    # 3 fits the two bits; the C codec refuses it, citing the rule.
    c = mqlite.Client()
    try:
        with pytest.raises(ValueError, match="MQTT-3.8.3-"):
            c.subscribe([("a/b", mqlite.SubscribeOptions(qos=3))])
    finally:
        c.close()


def test_no_local_keeps_my_own_messages_from_me(broker: Target) -> None:
    """MQTT 5.0 [MQTT-3.8.3-3]: with No Local, the server does not send a
    client's own publications back to it."""
    t = topic()
    with client(broker, version=5) as me, client(broker, version=5) as other:
        me.subscribe([(t, mqlite.SubscribeOptions(qos=1, no_local=True))]).wait(T)
        me.publish(t, b"mine", qos=1).wait(T)
        other.publish(t, b"theirs", qos=1).wait(T)
        msg = me.receive(T)
        assert msg is not None and msg.payload == b"theirs"
        assert me.receive(0.3) is None


def test_retain_handling_2_sends_no_retained_messages(broker: Target) -> None:
    t = topic()
    with client(broker, version=5) as c:
        c.publish(t, b"kept", qos=1, retain=True).wait(T)
        c.subscribe(t, qos=1, retain_handling=2).wait(T)
        assert c.receive(0.5) is None
        c.unsubscribe(t).wait(T)
        c.subscribe([(t, mqlite.SubscribeOptions(qos=1, retain_handling=0))]).wait(T)
        msg = c.receive(T)
        assert msg is not None and msg.payload == b"kept" and msg.retain
        c.publish(t, b"", qos=1, retain=True).wait(T)  # clear it


def test_retain_as_published_keeps_the_retain_flag_on_live_messages(broker: Target) -> None:
    """MQTT 5.0 [MQTT-3.3.1-12] / [MQTT-3.3.1-13]: live messages carry
    RETAIN 0 unless the subscription asked for Retain As Published."""
    t = topic()
    with client(broker, version=5) as plain, client(broker, version=5) as rap, \
            client(broker, version=5) as pub:
        plain.subscribe(t, qos=1).wait(T)
        rap.subscribe(t, qos=1, retain_as_published=True).wait(T)
        pub.publish(t, b"r", qos=1, retain=True).wait(T)
        m1, m2 = plain.receive(T), rap.receive(T)
        assert m1 is not None and m2 is not None
        assert (m1.retain, m2.retain) == (False, True)
        pub.publish(t, b"", qos=1, retain=True).wait(T)


# ---------------------------------------------------------------------------
# PropertyView, exceptions, Broker.load_config
# ---------------------------------------------------------------------------

def test_property_view_keeps_every_property_in_order(broker: Target) -> None:
    t = topic()
    with client(broker, version=5) as c:
        c.subscribe(t, qos=1).wait(T)
        c.publish(t, b"p", qos=1, properties=[("user", ("a", "1")), ("content_type", "x/y"),
                                              ("user", ("b", "2"))]).wait(T)
        msg = c.receive(T)
    assert msg is not None
    view = msg.properties
    assert isinstance(view, mqlite.PropertyView)
    assert view["content_type"] == "x/y"
    assert [v for k, v in view.pairs if k == "user"] == [("a", "1"), ("b", "2")]


def test_exception_classes_users_catch() -> None:
    # bytes from a peer: QoS 3 is malformed (MQTT 3.1.1 and 5.0 [MQTT-3.3.1-4])
    with pytest.raises(mqlite.MalformedPacketError) as ei:
        packet.decode(bytes.fromhex("36050001610000"))
    assert isinstance(ei.value, mqlite.ProtocolError) and ei.value.reason_code == 0x81
    assert ei.value.name == "MQLITE_ERR_QOS3"
    c = mqlite.Client()
    try:
        with pytest.raises(mqlite.InvalidArgumentError, match="QoS must be 0, 1 or 2"):
            c.publish("t", b"", qos=3)
        with pytest.raises(mqlite.InvalidPacketError, match="wildcard"):
            c.publish("a/#", b"")
    finally:
        c.close()
    with pytest.raises(mqlite.UnknownFieldError) as fe:
        packet.Packet("CONNACK", version=4, topic="x")
    assert isinstance(fe.value, TypeError) and isinstance(fe.value, ValueError)
    with pytest.raises(ValueError):
        mqlite.Client(keepalive=-1)


def test_broker_load_config(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "b.conf"
    conf.write_text("listener 0 127.0.0.1\nretain_available false\n")
    b = mqlite.Broker()
    b.load_config(str(conf))
    with b:
        assert b.port > 0
        with mqlite.Client(port=b.port, version=5) as c:
            assert c.connack_properties.get("retain_available") == 0
    bad = tmp_path / "bad.conf"
    bad.write_text("no_such_key 1\n")
    b2 = mqlite.Broker(port=0)
    try:
        with pytest.raises(mqlite.MqliteError, match="bad.conf:1"):
            b2.load_config(str(bad))
    finally:
        b2.stop()


# ---------------------------------------------------------------------------
# coverage of the public names
# ---------------------------------------------------------------------------

def _public_members(cls: type) -> List[str]:
    own = [k for k in cls.__mro__ if k.__module__.startswith("mqlite")]
    return sorted({n for k in own for n in vars(k) if not n.startswith("_")})


def test_every_public_name_is_used_by_a_test() -> None:
    sources = "".join(p.read_text() for p in sorted(HERE.glob("test_py*.py")))
    missing = [n for n in mqlite.__all__ if n != "__version__"
               and not re.search(r"\b" + re.escape(n) + r"\b", sources)]
    for n in mqlite.__all__:
        obj = getattr(mqlite, n)
        if inspect.isclass(obj) and obj.__module__.startswith("mqlite"):
            missing += [f"{n}.{m}" for m in _public_members(obj)
                        if not re.search(r"\." + re.escape(m) + r"\b|\b" + re.escape(m) + r"=",
                                         sources)]
    assert not missing, f"public names no test uses: {missing}"
