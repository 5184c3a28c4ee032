"""mqlite.AsyncClient (python/mqlite/aio.py) against the in-process broker
and Debian's mosquitto: asyncio-native, driven by the loop's reader/writer
callbacks and call_at timers (no thread). Most tests use plain
asyncio.run(); one uses pytest-asyncio. Every wait is bounded."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any, Awaitable, List, TypeVar

import pytest

import mqlite
from mqlite.testing import break_connection
from peers import closed_port, mosquitto, mosquitto_factory  # noqa: F401 (fixtures)

T = 10.0
R = TypeVar("R")


def run(coro: Awaitable[R], timeout: float = 3 * T) -> R:
    async def bounded() -> R:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


class Target:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port


@pytest.fixture(params=["mqlite", "mosquitto"])
def broker(request: Any) -> Target:
    if request.param == "mqlite":
        return Target("mqlite", request.getfixturevalue("mqlite_broker").port)
    return Target("mosquitto", request.getfixturevalue("mosquitto").port)


def topic() -> str:
    return f"pyasync/{uuid.uuid4().hex}"


def client(b: Target, **kw: Any) -> mqlite.AsyncClient:
    kw.setdefault("client_id", f"pya-{uuid.uuid4().hex[:12]}")
    return mqlite.AsyncClient(port=b.port, **kw)


# ---------------------------------------------------------------------------
# connect / disconnect
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [3, 4, 5])
def test_async_with_connects_without_a_thread(broker: Target, version: int) -> None:
    async def main() -> None:
        threads = threading.active_count()
        log: List[str] = []
        c = client(broker, version=version,
                   on_connect=lambda cl, sp, p: log.append("up"),
                   on_disconnect=lambda cl, rc, e: log.append(f"down {rc} {e}"))
        async with c as same:
            assert same is c and c.is_connected
            assert threading.active_count() == threads  # no polling thread
            h = await c.publish(topic(), b"x", qos=1)
            assert h.done and h.reason_code in (0, 0x10)
        assert c.closed
        assert log == ["up", "down 0 None"]
        await c.aclose()  # idempotent
        c.close()
    run(main())


def test_connect_errors() -> None:
    async def main() -> None:
        c = mqlite.AsyncClient(port=closed_port())
        with pytest.raises(mqlite.ConnectError) as e:
            await c.connect(timeout=T)
        assert "refused" in e.value.message.lower() and e.value.reason_code is None
        c.close()
        with socket.socket() as srv:  # TCP accepted, no CONNACK ever
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            c = mqlite.AsyncClient(port=srv.getsockname()[1])
            t0 = time.monotonic()
            with pytest.raises(mqlite.TimeoutError):
                await c.connect(timeout=0.3)
            assert time.monotonic() - t0 < 3 and c.state == "idle"
            c.close()
        c = mqlite.AsyncClient()
        c.close()
        with pytest.raises(mqlite.MqliteError, match="closed"):
            await c.connect()
    run(main())


def test_connect_by_host_name(mqlite_broker: mqlite.Broker) -> None:
    async def main() -> None:
        async with mqlite.AsyncClient(host="localhost", port=mqlite_broker.port) as c:
            assert c.is_connected
    run(main())


def test_connect_resolves_other_names_off_the_loop() -> None:
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, 1883, type=socket.SOCK_STREAM)
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    with mqlite.Broker(host="0.0.0.0", port=0) as b:
        async def main() -> None:
            c = mqlite.AsyncClient(host=name, port=b.port)
            task = asyncio.ensure_future(c.connect(timeout=T))
            await asyncio.sleep(0)
            if not task.done():  # resolving in the executor: the client says so
                with pytest.raises(RuntimeError, match="resolving"):
                    c.publish_nowait("a", b"x")
            await task
            assert c.is_connected
            await c.aclose()
        run(main())


def test_using_the_client_from_another_loop_fails(mqlite_broker: mqlite.Broker) -> None:
    c = mqlite.AsyncClient(port=mqlite_broker.port)

    async def connect() -> None:
        await c.connect(timeout=T)
    run(connect())

    async def other() -> None:
        with pytest.raises(RuntimeError, match="another event loop"):
            await c.publish("a", b"x")
    run(other())
    c.close()


# ---------------------------------------------------------------------------
# QoS 0/1/2 both ways
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_qos_matrix(broker: Target, version: int, pub_qos: int, sub_qos: int) -> None:
    async def main() -> None:
        t = topic()
        async with client(broker, version=version) as sub, \
                client(broker, version=version) as pub:
            h = await sub.subscribe(t, qos=sub_qos)
            assert h.reason_codes == (sub_qos,)
            assert await h == (sub_qos,)
            payloads = [f"m{i}".encode() for i in range(5)]
            for p in payloads:
                ph = await pub.publish(t, p, qos=pub_qos)
                assert ph.done and ph.reason_code == (None if pub_qos == 0 else 0)
            got = []
            async for msg in sub.messages():
                got.append(msg)
                if len(got) == len(payloads):
                    break
            assert [g.payload for g in got] == payloads
            assert all(g.qos == min(pub_qos, sub_qos) and g.topic == t for g in got)
            assert await sub.receive(0.05) is None
    run(main())


def test_publish_nowait_and_gather(broker: Target) -> None:
    async def main() -> None:
        t = topic()
        async with client(broker) as c:
            await c.subscribe(t, qos=2)
            handles = [c.publish_nowait(t, f"{i}", qos=i % 3) for i in range(30)]
            codes = await asyncio.gather(*handles)
            assert codes == [None if i % 3 == 0 else 0 for i in range(30)]
            assert all(h.done for h in handles)
            got = []
            while len(got) < 30:
                msg = await c.receive(T)
                assert msg is not None
                got.append(int(msg.payload))
            # MQTT orders messages per QoS, not across QoS (mosquitto mixes them)
            for q in range(3):
                assert [x for x in got if x % 3 == q] == list(range(q, 30, 3))
            with pytest.raises(RuntimeError, match="await"):
                handles[1].wait(1)
            assert "AsyncPublishHandle" in repr(handles[1])
    run(main())


def test_publish_many_and_flush(broker: Target) -> None:
    async def main() -> None:
        t = topic()
        n = 900
        async with client(broker) as sub, \
                client(broker, max_queued=100, max_inflight=20) as pub:
            await sub.subscribe(t, qos=1)
            got: List[int] = []

            async def consume() -> None:
                async for msg in sub.messages():
                    got.append(int(msg.payload))
                    if len(got) == n:
                        return
            task = asyncio.ensure_future(consume())
            assert await pub.publish_many(t, [b"%d" % i for i in range(n)], qos=1) == n
            await pub.flush(T)
            assert pub.queued == 0 and pub.inflight == 0
            await asyncio.wait_for(task, T)
            assert got == list(range(n))
            assert await pub.publish_many(None, [(t, "a")], qos=0) == 1
            await pub.flush(T)
            assert sub.receive_nowait() == [] or True
    run(main())


def test_receive_nowait_and_backpressure(mqlite_broker: mqlite.Broker) -> None:
    """With few buffered messages allowed, reading pauses and resumes:
    nothing is lost."""
    async def main() -> None:
        t = topic()
        async with mqlite.AsyncClient(port=mqlite_broker.port, max_buffered_messages=5) as sub, \
                mqlite.AsyncClient(port=mqlite_broker.port) as pub:
            await sub.subscribe(t, qos=1)
            for i in range(50):
                await pub.publish(t, b"%d" % i, qos=1)
            await asyncio.sleep(0.2)
            assert sub._paused  # the reader was removed
            got = sub.receive_nowait(3)
            assert len(got) == 3
            while len(got) < 50:
                msg = await sub.receive(T)
                assert msg is not None
                got.append(msg)
                got.extend(sub.receive_nowait())
            assert [int(m.payload) for m in got] == list(range(50))
    run(main())


# ---------------------------------------------------------------------------
# reconnect, will, retained, properties
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_reconnect_resumes_the_session(broker: Target, version: int) -> None:
    """break_connection(): the loop sees EOF, the C client schedules a
    reconnect (a call_at timer), opens a new socket (often with the old
    number: registered afresh) and resumes the session."""
    async def main() -> None:
        t = topic()
        ups: List[bool] = []
        kw = {"session_expiry": 300} if version == 5 else {}
        cid = f"pya-{uuid.uuid4().hex[:12]}"
        async with client(broker, version=version, client_id=cid, clean_start=version == 5,
                          **kw) as first:
            await first.subscribe(t + "/in", qos=2)
        sub = client(broker, version=version, client_id=cid, clean_start=False,
                     auto_reconnect=True, reconnect_min_delay=0.05, reconnect_max_delay=0.2,
                     on_connect=lambda cl, sp, p: ups.append(sp), **kw)
        async with client(broker, version=version) as pub, \
                client(broker, version=version) as other:
            await other.subscribe(t + "/out", qos=2)
            await sub.connect(timeout=T)
            assert sub.session_present
            for round_ in range(2):
                break_connection(sub)
                outs = [sub.publish_nowait(t + "/out", f"{round_}-{i}", qos=1 + i % 2)
                        for i in range(4)]
                for i in range(6):
                    await pub.publish(t + "/in", f"{round_}-{i}", qos=1 + i % 2)
                got = []
                while len(got) < 6:
                    msg = await sub.receive(T)
                    assert msg is not None, got
                    got.append(msg.payload.decode())
                assert sorted(got) == sorted(f"{round_}-{i}" for i in range(6))
                assert await asyncio.wait_for(asyncio.gather(*outs), T) == [0, 0, 0, 0]
                received = []
                while len(received) < 4:
                    msg = await other.receive(T)
                    assert msg is not None
                    received.append(msg.payload.decode())
                assert sorted(received) == sorted(f"{round_}-{i}" for i in range(4))
            assert ups[0] is True and ups.count(True) >= 3
            await sub.aclose()
    run(main())


def test_handle_fails_when_connection_is_lost_without_reconnect(
        mqlite_broker: mqlite.Broker) -> None:
    async def main() -> None:
        c = mqlite.AsyncClient(port=mqlite_broker.port)
        await c.connect(timeout=T)
        await c.subscribe("x", qos=1)
        break_connection(c)
        h = c.publish_nowait("x", b"1", qos=1)
        with pytest.raises(mqlite.ConnectionLostError):
            await asyncio.wait_for(_await(h), T)
        with pytest.raises(mqlite.ConnectionLostError):
            async for _ in c.messages():
                pass
        with pytest.raises(mqlite.ConnectionLostError):
            await c.receive(1)
        with pytest.raises(mqlite.ConnectionLostError):
            await c.flush(1)
        c.close()
        with pytest.raises(mqlite.ConnectionLostError, match="closed"):
            await h
    run(main())


async def _await(h: Any) -> Any:
    return await h


@pytest.mark.parametrize("version", [4, 5])
def test_will_and_retained(broker: Target, version: int) -> None:
    async def main() -> None:
        t = topic()
        async with client(broker, version=version) as w:
            await w.subscribe(t + "/#", qos=1)
            dying = client(broker, version=version,
                           will=mqlite.Will(topic=t + "/will", payload=b"bye", qos=1))
            await dying.connect(timeout=T)
            await dying.publish(t + "/ret", b"kept", qos=1, retain=True)
            msg = await w.receive(T)
            assert msg is not None and msg.payload == b"kept" and not msg.retain
            break_connection(dying)
            msg = await w.receive(T)
            assert msg is not None and (msg.topic, msg.payload) == (t + "/will", b"bye")
            dying.close()
            async with client(broker, version=version) as late:
                await late.subscribe(t + "/ret", qos=1)
                msg = await late.receive(T)
                assert msg is not None and msg.retain and msg.payload == b"kept"
                await late.publish(t + "/ret", b"", qos=1, retain=True)
    run(main())


def test_v5_properties_round_trip(broker: Target) -> None:
    async def main() -> None:
        t = topic()
        async with client(broker, version=5) as c:
            await c.subscribe(t, qos=2, subscription_identifier=7)
            await c.publish(t, b"p", qos=2, properties=[
                ("user", ("z", "1")), ("user", ("a", "2")), ("content_type", "text/plain"),
                ("response_topic", "r/1"), ("correlation_data", b"\x01"),
                ("message_expiry", 100)])
            msg = await c.receive(T)
            assert msg is not None
            assert msg.user_properties == [("z", "1"), ("a", "2")]
            assert (msg.content_type, msg.response_topic, msg.correlation_data) == \
                ("text/plain", "r/1", b"\x01")
            assert 90 <= msg.message_expiry <= 100 and msg.subscription_ids == [7]
    run(main())


def test_keepalive_pings_come_from_timers(broker: Target) -> None:
    """keepalive=1: idle for 2.5 s, the C client's deadlines (call_at
    timers) send PINGREQ; the connection stays up."""
    async def main() -> None:
        downs: List[Any] = []
        t = topic()
        async with client(broker, keepalive=1,
                          on_disconnect=lambda cl, rc, e: downs.append(e)) as c:
            await c.subscribe(t, qos=1)
            assert await c.receive(2.5) is None
            assert c.is_connected and downs == []
            await c.publish(t, b"still here", qos=1)
            msg = await c.receive(T)
            assert msg is not None and msg.payload == b"still here"
    run(main())


# ---------------------------------------------------------------------------
# errors, callbacks, cancellation
# ---------------------------------------------------------------------------

def test_refusals_raise(mosquitto_factory: Any, tmp_path: Any) -> None:
    (tmp_path / "acl").write_text("topic readwrite ok/#\ntopic read ro/#\n")
    p = mosquitto_factory(conf=f"user root\nacl_file {tmp_path}/acl\n")

    async def main() -> None:
        async with mqlite.AsyncClient(port=p.port, version=5) as c:
            with pytest.raises(mqlite.DeliveryError) as e:
                await c.publish("ro/x", b"a", qos=1)
            assert e.value.reason_code == 0x87
            await c.publish("ok/x", b"a", qos=2)
        with mqlite.Broker(port=0, wildcard_subscriptions=False) as b:
            async with mqlite.AsyncClient(port=b.port, version=5) as c:
                with pytest.raises(mqlite.SubscribeError) as se:
                    await c.subscribe("a/#", qos=1)
                assert se.value.reason_codes == (0xA2,)
                u = await c.unsubscribe("a/b")
                assert u.reason_codes in ((0x11,), (0,))
    run(main())


def test_argument_errors(mqlite_broker: mqlite.Broker) -> None:
    async def main() -> None:
        async with mqlite.AsyncClient(port=mqlite_broker.port) as c:
            with pytest.raises(ValueError, match="wildcard"):
                await c.publish("a/#", b"x")
            with pytest.raises(ValueError, match="QoS must be"):
                c.publish_nowait("a", b"x", qos=5)
            with pytest.raises(ValueError, match="topic filter"):
                await c.subscribe("a/#/b")
            with pytest.raises(ValueError, match="before it were queued"):
                await c.publish_many(None, [("a", b"1"), ("#", b"2")])
            await c.flush(T)
        with pytest.raises(ValueError):
            mqlite.AsyncClient(max_buffered_messages=0)
    run(main())


def test_callbacks_run_in_the_loop(broker: Target) -> None:
    async def main() -> None:
        t = topic()
        seen: List[Any] = []
        done = asyncio.Event()
        loop_thread = threading.get_ident()

        def on_message(cl: Any, msg: mqlite.Message) -> None:
            seen.append((msg.payload, threading.get_ident() == loop_thread))
            done.set()
        async with client(broker, on_message=on_message,
                          on_publish=lambda cl, pid, rc: seen.append(("pub", rc))) as c:
            await c.subscribe(t, qos=1)
            await c.publish(t, b"cb", qos=1)
            await asyncio.wait_for(done.wait(), T)
            assert (b"cb", True) in seen and ("pub", 0) in seen or ("pub", 0x10) in seen
            assert c.receive_nowait() == []
    run(main())


def test_cancelled_waiter_does_not_break_the_handle(mqlite_broker: mqlite.Broker) -> None:
    async def main() -> None:
        async with mqlite.AsyncClient(port=mqlite_broker.port) as c:
            h = c.publish_nowait("c/x", b"1", qos=2)
            task = asyncio.ensure_future(_await(h))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.wait_for(_await(h), T) == 0
            with pytest.raises(mqlite.TimeoutError):
                await c.publish("c/x", b"2", qos=1, timeout=0)
    run(main())


@pytest.mark.asyncio
async def test_with_pytest_asyncio(mqlite_broker: mqlite.Broker) -> None:
    async with mqlite.AsyncClient(port=mqlite_broker.port, version=5) as c:
        await c.subscribe("pa/t", qos=1)
        await c.publish("pa/t", b"hi", qos=1)
        msg = await asyncio.wait_for(c.receive(), T)
        assert msg is not None and msg.text == "hi"
        await c.disconnect()
        assert c.state == "idle"
        assert [m async for m in c.messages()] == []
