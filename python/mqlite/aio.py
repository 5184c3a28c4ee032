"""mqlite.AsyncClient: the C client driven by an asyncio event loop.

    import asyncio, mqlite

    async def main():
        async with mqlite.AsyncClient(port=1883, version=5) as c:
            await c.subscribe("replies/#", qos=1)
            await c.publish("requests/1", b"hi", qos=1)     # returns after PUBACK
            async for msg in c.messages():
                print(msg.topic, msg.payload)

    asyncio.run(main())

No thread, no polling: the client's socket is registered with the loop
(``loop.add_reader``, and ``loop.add_writer`` while output waits), the C
client's next deadline (keep-alive, timeouts, reconnect back-off) with
``loop.call_at``; each callback runs ``mqlite_client_io`` once and turns the
events into resolved futures and queued messages. The registration follows
the socket when auto-reconnect replaces it. The MQTT work stays in C.

Threads: an AsyncClient belongs to the event loop that connected it; use
it only from that loop's thread.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
from typing import (Any, AsyncIterator, Generator, Iterable, List, Optional, Sequence, Tuple,
                    Union)

from . import mqlite_c as _c
from ._core import (_BATCH, _ST_CONNECTED, _ST_CONNECTING, _ST_IDLE, FilterArg,
                    PublishHandle, SubscribeHandle, UnsubscribeHandle, _ClientCore, _Flow, _ms,
                    _payload_bytes)
from ._errors import (ConnectError, ConnectionLostError, MqliteError, QueueFullError,
                      TimeoutError)
from .client import _check_qos_retain
from .message import Message
from .packet import PropertiesArg, _make_props

__all__ = ["AsyncClient", "AsyncPublishHandle", "AsyncSubscribeHandle",
           "AsyncUnsubscribeHandle"]

_QUEUE_FULL = _c.MQLITE_ERR_QUEUE_FULL
_publish_io = _c.client_publish_io


class _AsyncFlow:
    """Mixin: a flow awaited on an event loop. The future only says "look
    again": the outcome is on the handle."""

    __slots__ = ()
    _fut: Optional["asyncio.Future[None]"]

    def _finish(self, error: Any) -> None:
        super()._finish(error)  # type: ignore[misc]
        self._wake()

    def _wake(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _check_done(self) -> bool:
        return self.done  # type: ignore[attr-defined,no-any-return]

    def __await__(self) -> Generator[Any, None, Any]:
        """``await handle``: wait for the outcome (see the handle class)."""
        while not self._check_done():
            client: Optional[AsyncClient] = self._client  # type: ignore[attr-defined]
            if client is None or client._c is None:
                raise ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed")
            if client._gone_for_good():
                raise client._lost_error(f"packet {self.packet_id} is still pending (it is "  # type: ignore[attr-defined]
                                         f"sent after the next connect())")
            fut = self._fut
            if fut is None or fut.done():
                fut = self._fut = client._loop.create_future()  # type: ignore[union-attr,misc]
            yield from fut.__await__()
        if self.error is not None:  # type: ignore[attr-defined]
            raise self.error  # type: ignore[attr-defined]
        return self._result()  # type: ignore[attr-defined]

    def wait(self, timeout: Optional[float] = None) -> Any:
        """Not for asyncio handles: ``await handle`` (or
        ``await asyncio.wait_for(handle, timeout)``)."""
        raise RuntimeError("await an AsyncClient handle instead of calling wait()")


class AsyncPublishHandle(_AsyncFlow, PublishHandle):
    """:class:`PublishHandle` of an :class:`AsyncClient`: ``await handle``
    returns the reason code once the flow completed (QoS 0: once written to
    the socket), or raises DeliveryError / ConnectionLostError."""

    __slots__ = ("_fut",)

    def __init__(self, client: "AsyncClient", packet_id: int, qos: int) -> None:
        PublishHandle.__init__(self, client, packet_id, qos)
        self._fut = None

    def _check_done(self) -> bool:
        return self.is_done if self.qos == 0 else self.done


class AsyncSubscribeHandle(_AsyncFlow, SubscribeHandle):
    """:class:`SubscribeHandle` of an :class:`AsyncClient`: ``await handle``
    returns the reason codes, or raises SubscribeError."""

    __slots__ = ("_fut",)

    def __init__(self, client: "AsyncClient", packet_id: int, filters: Tuple[str, ...]) -> None:
        SubscribeHandle.__init__(self, client, packet_id, filters)
        self._fut = None


class AsyncUnsubscribeHandle(_AsyncFlow, UnsubscribeHandle):
    """:class:`UnsubscribeHandle` of an :class:`AsyncClient` (awaitable)."""

    __slots__ = ("_fut",)

    def __init__(self, client: "AsyncClient", packet_id: int, filters: Tuple[str, ...]) -> None:
        UnsubscribeHandle.__init__(self, client, packet_id, filters)
        self._fut = None


def _inode(fd: int) -> int:
    """The identity of the socket behind `fd` (a closed fd: -1)."""
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return -1


def _is_literal(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class AsyncClient(_ClientCore):
    """An asyncio MQTT client over mqlite's C client.

    Takes the options of :class:`mqlite.Client` (keyword-only), plus
    `max_buffered_messages`: when that many received messages wait for
    :meth:`messages` / :meth:`receive`, reading from the socket pauses
    (TCP pushes back on the server) until half of them were taken.

    Callbacks (``on_message`` and friends) run in the event loop, from
    its reader/writer/timer callbacks; with ``on_message`` set, messages
    are not buffered for :meth:`messages`.
    """

    def __init__(self, *, max_buffered_messages: int = 100_000, **options: Any) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._rfd = -1
        self._ino = -1
        self._reading = False
        self._writing = False
        self._gen = 0
        self._reg_gen = -1
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = 0.0
        self._paused = False
        self._busy = False
        self._pending_scheduled = False
        self._changes: List["asyncio.Future[None]"] = []
        self._inbox_waiters: List["asyncio.Future[None]"] = []
        self._flush_waiters: List[AsyncPublishHandle] = []
        if isinstance(max_buffered_messages, bool) or not isinstance(max_buffered_messages, int) \
                or max_buffered_messages < 1:
            raise ValueError("max_buffered_messages must be an int >= 1")
        self._max_buffered = max_buffered_messages
        super().__init__(**options)

    # -- the event loop ----------------------------------------------------------

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("this AsyncClient belongs to another event loop")
        return loop

    def _handle(self) -> Any:
        c = self._c
        if c is None:
            raise MqliteError(_c.MQLITE_ERR_MISUSE, "the client is closed")
        if self._busy:
            raise RuntimeError("connect() is resolving the host name in a worker thread; "
                               "await it before using the client")
        return c

    def _arm(self) -> None:
        """Make the loop's registrations match the C client: reader on its
        socket (unless paused), writer while it wants to write, a timer at
        its next deadline. Called after every call into C."""
        loop, c = self._loop, self._c
        if loop is None or c is None or loop.is_closed():
            return
        fd = _c.mqlite_client_fd(c)
        if fd != self._rfd or self._gen != self._reg_gen or (
                fd >= 0 and _c.mqlite_client_state(c) == _ST_CONNECTING
                and _inode(fd) != self._ino):
            # A new socket (after a reconnect, or the next address of a
            # name) may have the old one's number: register it afresh.
            self._unregister()
            self._rfd = fd
            self._ino = _inode(fd) if fd >= 0 else -1
            self._reg_gen = self._gen
        if fd >= 0:
            if self._reading == self._paused:
                if self._paused:
                    loop.remove_reader(fd)
                else:
                    loop.add_reader(fd, self._on_read)
                self._reading = not self._paused
            ww = bool(_c.mqlite_client_want_write(c))
            if ww != self._writing:
                if ww:
                    loop.add_writer(fd, self._on_write)
                else:
                    loop.remove_writer(fd)
                self._writing = ww
        t = _c.mqlite_client_next_timeout_ms(c)
        if t >= 0:
            when = loop.time() + t / 1000.0
            th = self._timer
            # An early timer is harmless (it re-arms); only move it earlier.
            if th is None or when < self._timer_when - 0.0005:
                if th is not None:
                    th.cancel()
                self._timer = loop.call_at(when, self._on_timer)
                self._timer_when = when
        if self._flush_waiters and self._flushed():
            waiters, self._flush_waiters = self._flush_waiters, []
            for h in waiters:
                if not h.done:
                    h._finish(None)
        if _c.mqlite_client_pending_events(c) and not self._pending_scheduled:
            self._pending_scheduled = True
            loop.call_soon(self._on_pending)

    def _unregister(self) -> None:
        fd, loop = self._rfd, self._loop
        self._rfd = -1
        if fd < 0 or loop is None or loop.is_closed():
            self._reading = self._writing = False
            return
        # The socket may already be closed by the C client (and its number
        # taken by the next one): the selector then refuses to modify it,
        # having dropped it already.
        if self._writing:
            try:
                loop.remove_writer(fd)
            except OSError:
                pass
        if self._reading:
            try:
                loop.remove_reader(fd)
            except OSError:
                pass
        self._reading = self._writing = False

    def _io(self, readable: int, writable: int) -> None:
        c = self._c
        if c is None:
            return
        try:
            _rc, evs = _c.client_io_events(c, readable, writable, _BATCH)
            if evs:
                self._dispatch(evs)
        finally:
            self._arm()
            self._wake_changes()

    def _on_read(self) -> None:
        self._io(1, 0)

    def _on_write(self) -> None:
        self._io(0, 1)

    def _on_timer(self) -> None:
        self._timer = None
        self._io(0, 0)

    def _on_pending(self) -> None:
        self._pending_scheduled = False
        c = self._c
        if c is None:
            return
        try:
            evs = _c.client_events(c, _BATCH)
            if evs:
                self._dispatch(evs)
        finally:
            self._arm()
            self._wake_changes()

    def _wake_changes(self) -> None:
        if self._changes:
            waiters, self._changes = self._changes, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

    def _wake_inbox(self) -> None:
        if self._inbox_waiters:
            waiters, self._inbox_waiters = self._inbox_waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

    async def _wait_change(self, deadline: Optional[float], what: str) -> None:
        """Wait until the next round of I/O (or `deadline`, loop time)."""
        loop = self._loop
        assert loop is not None
        timeout = None
        if deadline is not None:
            timeout = deadline - loop.time()
            if timeout <= 0:
                raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"{what}: timed out")
        fut = loop.create_future()
        self._changes.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"{what}: timed out") from None

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        if timeout is None:
            return None
        _ms(timeout, "timeout")
        assert self._loop is not None
        return self._loop.time() + timeout

    # -- events -----------------------------------------------------------------------

    def _deliver(self, msg: Message) -> None:
        cb = self.on_message
        if cb is not None:
            cb(self, msg)
            return
        self._inbox.append(msg)
        if self._inbox_waiters:
            self._wake_inbox()
        if len(self._inbox) >= self._max_buffered:
            self._paused = True

    def _on_connection_end(self, err: Optional[MqliteError]) -> None:
        self._gen += 1
        self._wake_inbox()
        for head in list(self._flows.values()):
            f: Optional[_Flow] = head
            while f is not None:
                f._wake()  # type: ignore[attr-defined]
                f = f._next
        for h in self._flush_waiters:
            h._wake()

    # -- connection ------------------------------------------------------------------

    async def connect(self, host: Optional[str] = None, port: Optional[int] = None, *,
                      timeout: Optional[float] = 30.0) -> "AsyncClient":
        """Connect; returns once the server accepted (see Client.connect()).
        A host name other than "localhost" is resolved in the loop's
        default executor (the C client resolves names synchronously)."""
        loop = self._attach()
        c = self._handle()
        if host is not None:
            if not isinstance(host, str):
                raise TypeError(f"host must be a str, not {type(host).__name__}")
            self.host = host
        if port is not None:
            self.port = self._check_port(port)
        deadline = self._deadline(timeout)
        self._user_disconnect = False
        self._last_error = None
        try:
            if _is_literal(self.host):
                _c.mqlite_client_connect(c, self.host, self.port)
            else:
                self._busy = True
                try:
                    await loop.run_in_executor(None, _c.mqlite_client_connect, c, self.host,
                                               self.port)
                finally:
                    self._busy = False
        except _c.Error as e:
            code, msg = e.args[0], _c.mqlite_client_errmsg(c)
            if code == _c.MQLITE_ERR_STATE:
                raise MqliteError(code, f"connect: {msg}") from None
            raise ConnectError(code, f"cannot connect to {self.host}:{self.port}: {msg}") \
                from None
        self._arm()
        try:
            while _c.mqlite_client_state(c) != _ST_CONNECTED:
                if _c.mqlite_client_state(c) == _ST_IDLE:
                    if isinstance(self._last_error, ConnectError):
                        raise self._last_error
                    raise ConnectError(_c.MQLITE_ERR_NOT_CONNECTED, "connection closed")
                await self._wait_change(deadline, "connect")
                c = self._handle()
        except TimeoutError:
            last: Optional[MqliteError] = self._last_error
            await self._abandon()
            raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"not connected to {self.host}:"
                               f"{self.port} within {timeout} s" +
                               (f" (last attempt: {last.message})" if last is not None else "")) \
                from None
        return self

    async def _abandon(self) -> None:
        c = self._c
        if c is None:
            return
        try:
            _c.mqlite_client_disconnect(c, 0)
        except _c.Error:
            pass
        self._arm()
        deadline = self._deadline(1.0)
        try:
            while self._c is not None and _c.mqlite_client_state(self._c) != _ST_IDLE:
                await self._wait_change(deadline, "abandon")
        except TimeoutError:
            pass

    async def disconnect(self, *, reason_code: int = 0, session_expiry: Optional[int] = None,
                         timeout: Optional[float] = 5.0) -> None:
        """Send DISCONNECT and wait until the connection is closed (see
        Client.disconnect()). Does nothing when not connected."""
        self._attach()
        c = self._handle()
        self._user_disconnect = True
        try:
            _c.mqlite_client_disconnect_expiry(c, reason_code,
                                               -1 if session_expiry is None else session_expiry)
        except _c.Error as e:
            if e.args[0] != _c.MQLITE_ERR_NOT_CONNECTED:
                raise self._opt_error(e, "disconnect") from None
        except OverflowError:
            raise self._opt_error(_c.Error(_c.MQLITE_ERR_RANGE, "out of range"),
                                  "disconnect") from None
        self._arm()
        self._wake_inbox()
        deadline = self._deadline(timeout)
        try:
            while self._c is not None and _c.mqlite_client_state(self._c) != _ST_IDLE:
                await self._wait_change(deadline, "disconnect")
        except TimeoutError:
            pass

    def close(self) -> None:
        """Free the C client at once (no DISCONNECT: see :meth:`aclose`).
        Idempotent; pending handles fail with ConnectionLostError."""
        if self._c is None:
            return
        self._unregister()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fail_all(ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed"))
        for h in self._flush_waiters:
            h._finish(ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed"))
        self._flush_waiters = []
        self._free()
        self._wake_inbox()
        self._wake_changes()

    async def aclose(self) -> None:
        """Disconnect (waiting up to a second for DISCONNECT to be written),
        then close(). Idempotent."""
        if self._c is None:
            return
        try:
            if _c.mqlite_client_state(self._c) == _ST_CONNECTED:
                await self.disconnect(timeout=1.0)
        except MqliteError:
            pass
        finally:
            self.close()

    async def __aenter__(self) -> "AsyncClient":
        if self._c is not None and _c.mqlite_client_state(self._c) == _ST_IDLE:
            await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __del__(self) -> None:
        try:
            if getattr(self, "_c", None) is not None:
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    self._unregister()
                    if self._timer is not None:
                        self._timer.cancel()
                self._free()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # -- publish -------------------------------------------------------------------------

    def publish_nowait(self, topic: str,
                       payload: Union[bytes, bytearray, memoryview, str, None] = b"",
                       qos: int = 0, retain: bool = False,
                       properties: PropertiesArg = None) -> AsyncPublishHandle:
        """Queue a message and return its handle at once (await it later,
        or not). Raises QueueFullError when the send queue is full, and
        ValueError for bad arguments, as Client.publish()."""
        c = self._handle()
        if type(payload) is not bytes:
            payload = _payload_bytes(payload)
        if qos.__class__ is not int or retain.__class__ is not bool:
            qos, retain = _check_qos_retain(qos, retain)
        pr = _make_props(properties) if properties else None
        try:
            pid = _publish_io(c, topic, payload, qos, retain, pr, 1)
        except _c.Error as e:
            raise self._request_error(e) from None
        finally:
            if pr is not None:
                _c.mqlite_props_free(pr)
        h = AsyncPublishHandle(self, pid, qos)
        if pid:
            self._track(h)
        elif self._flushed():
            h._finish(None)
        else:
            self._flush_waiters.append(h)
        self._arm()
        return h

    async def publish(self, topic: str,
                      payload: Union[bytes, bytearray, memoryview, str, None] = b"",
                      qos: int = 0, retain: bool = False, properties: PropertiesArg = None, *,
                      timeout: Optional[float] = None) -> AsyncPublishHandle:
        """Publish and return once the flow completed: QoS 1 PUBACK, QoS 2
        PUBCOMP, QoS 0 written to the socket. Waits for room when the send
        queue is full. Returns the (done) handle.

        Raises:
            DeliveryError: refused by the server, or lost by its new session.
            TimeoutError: not done within `timeout` seconds (None: no limit
                while connected or reconnecting).
            ConnectionLostError: not connected, and not reconnecting.
            ValueError: bad topic, QoS or property.
        """
        self._attach()
        deadline = self._deadline(timeout)
        while True:
            try:
                h = self.publish_nowait(topic, payload, qos, retain, properties)
                break
            except QueueFullError:
                if self._gone_for_good():
                    raise
                await self._wait_change(deadline, "publish: waiting for room in the send queue")
        if not (h.is_done if qos == 0 else h.done):
            if deadline is None:
                await h
            else:
                assert self._loop is not None
                try:
                    await asyncio.wait_for(_await(h), max(0.0, deadline - self._loop.time()))
                except asyncio.TimeoutError:
                    raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"packet {h.packet_id} not "
                                       f"acknowledged within {timeout} s") from None
        elif h.error is not None:
            raise h.error
        return h

    async def publish_many(self, topic: Optional[str],
                           payloads: Iterable[Union[bytes, str, Tuple[str, Union[bytes, str]]]],
                           qos: int = 0, retain: bool = False, properties: PropertiesArg = None,
                           *, timeout: Optional[float] = None) -> int:
        """Queue many messages in one call into C (see Client.publish_many()),
        waiting for room when the send queue is full. Returns the number
        queued; :meth:`flush` waits for them to complete."""
        self._attach()
        c = self._handle()
        qos, retain = _check_qos_retain(qos, retain)
        seq: Sequence[Any] = payloads if isinstance(payloads, (list, tuple)) else list(payloads)
        pr = _make_props(properties) if properties else None
        deadline = self._deadline(timeout)
        try:
            start = 0
            while True:
                nxt, rc, msg = _c.client_publish_many(c, topic, seq, start, qos, retain, pr)
                self._arm()
                if rc == 0:
                    return len(seq)
                if rc != _QUEUE_FULL:
                    msg = msg or _c.mqlite_client_errmsg(c)
                    raise self._request_error(_c.Error(rc, f"items[{nxt}]: {msg} ({nxt} "
                                                           f"before it were queued)"))
                if self._gone_for_good():
                    raise QueueFullError(_QUEUE_FULL, "the send queue is full and the client is "
                                         "not connected")
                start = nxt
                await self._wait_change(deadline, "publish_many: waiting for room")
                c = self._handle()
        finally:
            if pr is not None:
                _c.mqlite_props_free(pr)

    async def flush(self, timeout: Optional[float] = None) -> None:
        """Wait until everything queued was written and every QoS 1/2 flow
        completed (see Client.flush())."""
        self._attach()
        c = self._handle()
        deadline = self._deadline(timeout)
        while (_c.mqlite_client_queued(c) or _c.mqlite_client_inflight(c)
               or _c.mqlite_client_want_write(c)):
            if self._gone_for_good():
                raise self._lost_error(f"flush: {self.queued} queued, {self.inflight} in flight")
            await self._wait_change(deadline, f"flush ({self.queued} queued, {self.inflight} in "
                                              f"flight)")
            c = self._handle()
        self._take_unclaimed()

    # -- subscribe ------------------------------------------------------------------------

    def _kick(self) -> None:
        c = self._c
        if c is not None and _c.mqlite_client_fd(c) >= 0:
            _c.client_io_events(c, 0, 0, 0)
        self._arm()

    async def _await_flow(self, h: Any, timeout: Optional[float]) -> None:
        if timeout is None:
            await h
            return
        try:
            await asyncio.wait_for(_await(h), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"packet {h.packet_id} not acknowledged "
                               f"within {timeout} s") from None

    async def subscribe(self, topic: Union[FilterArg, Sequence[FilterArg]], qos: int = 0, *,
                        no_local: bool = False, retain_as_published: bool = False,
                        retain_handling: int = 0, subscription_identifier: Optional[int] = None,
                        properties: PropertiesArg = None,
                        timeout: Optional[float] = None) -> AsyncSubscribeHandle:
        """Subscribe (arguments as Client.subscribe()) and return the handle
        once acknowledged (``.reason_codes``). Raises SubscribeError when
        the server refused a filter, TimeoutError, ConnectionLostError."""
        self._attach()
        h = self._send_subscribe(topic, qos, no_local, retain_as_published, retain_handling,
                                 subscription_identifier, properties, AsyncSubscribeHandle)
        self._kick()
        await self._await_flow(h, timeout)
        return h  # type: ignore[return-value]

    async def unsubscribe(self, topic: Union[str, Sequence[str]],
                          properties: PropertiesArg = None,
                          timeout: Optional[float] = None) -> AsyncUnsubscribeHandle:
        """Unsubscribe and return the handle once acknowledged."""
        self._attach()
        h = self._send_unsubscribe(topic, properties, AsyncUnsubscribeHandle)
        self._kick()
        await self._await_flow(h, timeout)
        return h  # type: ignore[return-value]

    # -- receive ------------------------------------------------------------------------------

    def _took(self) -> None:
        if self._paused and len(self._inbox) <= self._max_buffered // 2:
            self._paused = False
            self._arm()

    async def messages(self) -> AsyncIterator[Message]:
        """Iterate over received messages as they arrive. Ends after
        :meth:`disconnect` or :meth:`close`; raises ConnectionLostError
        when the connection is lost and ``auto_reconnect`` is off. Not used
        when ``on_message`` is set."""
        loop = self._attach()
        inbox = self._inbox
        while True:
            while inbox:
                msg = inbox.popleft()
                if self._paused:
                    self._took()
                yield msg
            if self._c is None:
                return
            if self._gone_for_good():
                if not self._user_disconnect and self._last_error is not None:
                    raise self._lost_error("messages()")
                return
            fut = loop.create_future()
            self._inbox_waiters.append(fut)
            await fut

    async def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, waiting up to `timeout` seconds (None: no
        limit); None on timeout. Raises ConnectionLostError when not
        connected and not reconnecting."""
        loop = self._attach()
        inbox = self._inbox
        deadline = self._deadline(timeout)
        while not inbox:
            if self._c is None or self._gone_for_good():
                raise self._lost_error("receive()")
            fut = loop.create_future()
            self._inbox_waiters.append(fut)
            try:
                await asyncio.wait_for(fut, None if deadline is None
                                       else max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                if not inbox:
                    return None
        msg = inbox.popleft()
        if self._paused:
            self._took()
        return msg

    def receive_nowait(self, max_messages: int = 1000) -> List[Message]:
        """Up to `max_messages` messages already received (maybe none),
        without waiting: the batch form, for high rates."""
        inbox = self._inbox
        n = min(max_messages, len(inbox))
        popleft = inbox.popleft
        out = [popleft() for _ in range(n)]
        if self._paused:
            self._took()
        return out


async def _await(awaitable: Any) -> Any:
    return await awaitable

