"""mqlite.Client: a synchronous MQTT 3.1 / 3.1.1 / 5.0 client.

    import mqlite

    with mqlite.Client(client_id="sensor-7", port=1883, version=5) as c:
        c.subscribe("cmd/#", qos=1).wait(5)
        c.publish("sensors/7/temp", b"21.5", qos=1).wait(5)
        for msg in c.messages(timeout=10):
            print(msg.topic, msg.payload)

The MQTT work (packet ids, QoS 1/2 flows, keep-alive, reconnect and
resend, flow control) is done by the C library; this class maps options
and calls onto it and turns its events into Python objects. Every call
that may wait releases the GIL while it waits.

Threads: a Client belongs to the thread that uses it. Only
:meth:`Client.loop_stop` may be called from another thread (it writes to an
eventfd that the waiting call watches). Calling anything else while another
thread is waiting in this client raises RuntimeError; use one client per
thread, or :class:`mqlite.AsyncClient` in an event loop.
"""
from __future__ import annotations

import os
import threading
import time
from typing import (Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type,
                    Union)

from . import mqlite_c as _c
from ._core import (_BATCH, _DRAIN_ALL, _ST_CONNECTED, _ST_IDLE, FilterArg, PublishHandle,
                    SubscribeHandle, UnsubscribeHandle, _ClientCore, _deadline, _Flow, _ms,
                    _payload_bytes)
from ._errors import (ConnectError, ConnectionLostError, MqliteError, QueueFullError,
                      TimeoutError, error_for)
from .message import Message
from .packet import PropertiesArg, _make_props

__all__ = ["Client"]

_get_ident = threading.get_ident
_QUEUE_FULL = _c.MQLITE_ERR_QUEUE_FULL
_publish_io = _c.client_publish_io


def _remaining_ms(deadline: Optional[float]) -> int:
    if deadline is None:
        return -1
    left = deadline - time.monotonic()
    return 0 if left <= 0 else max(1, int(left * 1000 + 0.999))


class Client(_ClientCore):
    """A synchronous MQTT client over mqlite's C client.

    All options are keyword-only; times are in seconds.

    Args:
        client_id: the client identifier ("" lets the server assign one
            where the protocol allows it; see :attr:`client_id` after connecting).
        host, port: the server (connect() may override them).
        version: 3 (MQTT 3.1), 4 (3.1.1, the default) or 5; also ``"3.1"``,
            ``"3.1.1"``, ``"5"``, ``"5.0"``.
        clean_start: start a new session (3.x: clean session) or resume one.
        session_expiry: 5.0 Session Expiry Interval, seconds (None: 0).
        keepalive: the keep-alive interval, seconds (0: off).
        username, password: credentials (password: bytes or str).
        will: the will message: a :class:`mqlite.Will` or a mapping with
            ``topic``, ``payload``, ``qos``, ``retain``, ``properties``
            (5.0 will properties such as ``will_delay``).
        connect_properties: 5.0 CONNECT properties (e.g. ``[("user", ("k", "v"))]``).
        auto_reconnect: reconnect after a lost connection, with an
            exponential back-off from ``reconnect_min_delay`` to
            ``reconnect_max_delay`` seconds; queued and in-flight messages
            are kept and re-sent (the session is resumed when the server
            kept it, else subscriptions are re-sent when ``resubscribe``).
        max_queued, max_queued_bytes: bound of the send queue (messages
            published beyond the in-flight window or while disconnected).
        max_inflight: the QoS 1/2 window (lowered to the server's Receive Maximum).
        receive_maximum: 5.0: how many QoS 1/2 messages the server may have
            in flight towards us.
        max_packet_size, topic_alias_maximum: 5.0 limits we announce.
        connect_timeout: TCP connect + CONNACK timeout of one attempt.
        ping_timeout: how long to wait for PINGRESP (default: the keep-alive).
        request_response_information, request_problem_information: 5.0 CONNECT flags.
        tcp_nodelay: disable Nagle's algorithm (default True).
        strict_utf8: also refuse control characters in received strings.
        store: path of a persistent store (SQLite, docs/persistence.md):
            queued and in-flight QoS 1/2 messages, received QoS 2 ids and
            subscriptions survive a crash or restart of the process; a
            client with ``client_id=""`` takes the store's identifier. Use
            it with ``clean_start=False`` (5.0: and a ``session_expiry``).
        tls, ca_certs, certfile, keyfile: TLS (on when any is given): the CA
            file to trust (default: the system store), and a client
            certificate and key (PEM). The server's certificate and host
            name are verified unless told otherwise; a failure says why in
            the error.
        key_password: passphrase of an encrypted ``keyfile``.
        tls_server_name: the name sent (SNI) and verified in the server's
            certificate, when it is not ``host``.
        tls_min_version: ``"1.2"`` (default) or ``"1.3"``.
        tls_insecure_skip_verify: DANGER, development only: accept any
            certificate and name.
        auth_method: MQTT 5 enhanced authentication; ``"SCRAM-SHA-256"`` is
            built in and uses ``username`` / ``password`` (which then never
            travel in CONNECT).
        on_message: ``f(client, message)`` for each message; without it
            messages wait for :meth:`messages` / :meth:`receive`.
        on_connect: ``f(client, session_present, connack_properties)``.
        on_connect_fail: ``f(client, error)`` when an attempt fails.
        on_disconnect: ``f(client, reason_code, error_or_None)`` when the
            connection ends (error None: we disconnected).
        on_publish: ``f(client, packet_id, reason_code)`` when a QoS 1/2 flow completes.

    Callbacks run in the thread calling loop(), loop_forever(), messages(),
    receive(), a wait() or connect(), from inside that call.
    """

    def __init__(self, **options: Any) -> None:
        self._waiting: Optional[int] = None
        self._stop = False
        self._wake = -1
        super().__init__(**options)
        try:
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - not Linux
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._wake, self._wake_w = r, w

    # -- threads ---------------------------------------------------------------

    def _handle(self) -> Any:
        c = self._c
        if c is None:
            raise MqliteError(_c.MQLITE_ERR_MISUSE, "the client is closed")
        w = self._waiting
        if w is not None and w != _get_ident():
            raise RuntimeError("this mqlite.Client is in use by another thread (waiting in "
                               "loop/messages/wait); a Client belongs to one thread: only "
                               "loop_stop() may be called from others")
        return c

    def _round(self, ms: int) -> int:
        """One loop round: wait up to `ms` (-1: no limit) with the GIL
        released, do the I/O, dispatch the events. Returns their number."""
        c = self._handle()
        self._waiting = _get_ident()
        try:
            _woke, evs = _c.client_loop(c, self._wake, ms, _BATCH)
        finally:
            self._waiting = None
        if evs:
            self._dispatch(evs)
        return len(evs)

    def _drain(self) -> None:
        evs = _c.client_events(self._c, _DRAIN_ALL)
        if evs:
            self._dispatch(evs)

    def _kick(self) -> None:
        """Hand what is queued to the socket now (never waits)."""
        c = self._c
        if c is not None and _c.mqlite_client_fd(c) >= 0:
            _c.client_io_events(c, 0, 0, 0)

    # -- connection -------------------------------------------------------------

    def connect(self, host: Optional[str] = None, port: Optional[int] = None, *,
                timeout: Optional[float] = 30.0) -> "Client":
        """Connect and wait (GIL released) until the server accepts.

        With ``auto_reconnect`` failed attempts are retried until `timeout`.
        Returns the client. :attr:`session_present` and
        :attr:`connack_properties` describe the server's answer.

        Raises:
            ConnectError: unreachable, or refused (``.reason_code`` is the
                CONNACK code), with the C library's message.
            TimeoutError: not connected within `timeout` seconds (the
                attempt is abandoned).
        """
        c = self._handle()
        if host is not None:
            if not isinstance(host, str):
                raise TypeError(f"host must be a str, not {type(host).__name__}")
            self.host = host
        if port is not None:
            self.port = self._check_port(port)
        ms = _ms(timeout, "timeout")
        self._user_disconnect = False
        self._last_error = None
        self._waiting = _get_ident()
        try:
            _c.mqlite_client_connect(c, self.host, self.port)
        except _c.Error as e:
            code = e.args[0]
            msg = _c.mqlite_client_errmsg(c)
            if code == _c.MQLITE_ERR_STATE:
                raise MqliteError(code, f"connect: {msg}") from None
            raise ConnectError(code, f"cannot connect to {self.host}:{self.port}: {msg}") \
                from None
        finally:
            self._waiting = None
        code = 0
        self._waiting = _get_ident()
        try:
            _c.mqlite_client_wait_connected(c, ms)
        except _c.Error as e:
            code, msg = e.args[0], _c.mqlite_client_errmsg(c)
        finally:
            self._waiting = None
        self._drain()
        if code == 0:
            return self
        if code == _c.MQLITE_ERR_TIMEOUT:
            last: Optional[MqliteError] = self._last_error
            self._abandon()
            raise TimeoutError(code, f"not connected to {self.host}:{self.port} within "
                               f"{timeout} s" + (f" (last attempt: {last.message})"
                                                 if last is not None else ""))
        if isinstance(self._last_error, ConnectError):
            raise self._last_error
        raise ConnectError(code, msg)

    def _abandon(self) -> None:
        """Stop a connection attempt that took too long."""
        c = self._c
        try:
            _c.mqlite_client_disconnect(c, 0)
        except _c.Error:
            pass
        end = time.monotonic() + 1.0
        while _c.mqlite_client_state(c) != _ST_IDLE and time.monotonic() < end:
            self._round(50)
        self._drain()

    def disconnect(self, *, reason_code: int = 0, session_expiry: Optional[int] = None,
                   timeout: Optional[float] = 5.0) -> None:
        """Send DISCONNECT (5.0: with `reason_code`; 4 = "disconnect with
        will message") and wait until it is written and the connection
        closed. `session_expiry` (5.0) changes the Session Expiry Interval
        of the session left behind. Stops auto-reconnect. Messages still
        queued or in flight stay in the client for the next connect().
        Does nothing when not connected."""
        c = self._handle()
        self._user_disconnect = True
        try:
            _c.mqlite_client_disconnect_expiry(c, reason_code,
                                               -1 if session_expiry is None else session_expiry)
        except _c.Error as e:
            if e.args[0] == _c.MQLITE_ERR_NOT_CONNECTED:
                self._drain()
                return
            raise error_for(e.args[0], _c.mqlite_client_errmsg(c), argument=True) from None
        except OverflowError:
            raise error_for(_c.MQLITE_ERR_RANGE, "session_expiry or reason_code out of range",
                            argument=True) from None
        deadline = _deadline(timeout)
        while _c.mqlite_client_state(c) != _ST_IDLE:
            ms = _remaining_ms(deadline)
            if ms == 0:
                break
            self._round(ms)
        self._drain()

    def close(self) -> None:
        """Disconnect (briefly waiting for DISCONNECT to be written) and
        free the C client. Idempotent; pending handles fail with
        ConnectionLostError."""
        if self._c is None:
            return
        self._handle()
        try:
            if _c.mqlite_client_state(self._c) == _ST_CONNECTED:
                self.disconnect(timeout=1.0)
        except MqliteError:
            pass
        finally:
            self._fail_all(ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED,
                                               "the client was closed"))
            self._free()
            self._close_wake()

    def _close_wake(self) -> None:
        fd, self._wake = self._wake, -1
        if fd >= 0:
            os.close(fd)
        w = getattr(self, "_wake_w", -1)
        if w >= 0:  # pragma: no cover - pipe fallback
            os.close(w)
            self._wake_w = -1

    def __enter__(self) -> "Client":
        if self._c is not None and _c.mqlite_client_state(self._c) == _ST_IDLE:
            self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Safety net only: no DISCONNECT (no I/O from a finalizer).
        try:
            if getattr(self, "_c", None) is not None:
                self._free()
            self._close_wake()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # -- publish -------------------------------------------------------------------

    def publish(self, topic: str, payload: Union[bytes, bytearray, memoryview, str, None] = b"",
                qos: int = 0, retain: bool = False, properties: PropertiesArg = None, *,
                block: bool = True, timeout: Optional[float] = None) -> PublishHandle:
        """Publish a message; returns a :class:`PublishHandle` at once.

        The message is queued in the C client (also while disconnected)
        and written to the socket right away when connected. When the send
        queue is full (``max_queued``), `block` waits (GIL released, the
        connection served meanwhile) up to `timeout` seconds (None: as long
        as the client is connected or reconnecting) for room, else raises
        :class:`QueueFullError`.

        Args:
            topic: the topic name.
            payload: bytes-like, or str (sent as UTF-8).
            qos: 0, 1 or 2.
            retain: ask the server to retain it.
            properties: 5.0 properties, e.g. ``{"content_type": "text/plain",
                "user": [("k", "v")], "message_expiry": 60}``, or pairs.
        Raises:
            ValueError: bad topic, QoS or property (InvalidArgumentError /
                InvalidPacketError with the C message).
            QueueFullError: no room (see `block`).
        """
        c = self._handle()
        if type(payload) is not bytes:
            payload = _payload_bytes(payload)
        if qos.__class__ is not int or retain.__class__ is not bool:
            qos, retain = _check_qos_retain(qos, retain)
        pr = _make_props(properties) if properties else None
        try:
            try:
                pid = _publish_io(c, topic, payload, qos, retain, pr, 1)
            except _c.Error as e:
                if e.args[0] != _QUEUE_FULL or not block:
                    raise self._request_error(e) from None
                deadline = _deadline(timeout)
                while True:
                    self._wait_room(deadline)
                    try:
                        pid = _publish_io(c, topic, payload, qos, retain, pr, 1)
                        break
                    except _c.Error as e2:
                        if e2.args[0] != _QUEUE_FULL:
                            raise self._request_error(e2) from None
        finally:
            if pr is not None:
                _c.mqlite_props_free(pr)
        h = PublishHandle(self, pid, qos)
        if pid:
            self._track(h)
        return h

    def _wait_room(self, deadline: Optional[float]) -> None:
        if self._gone_for_good():
            raise QueueFullError(_QUEUE_FULL, "the send queue is full (max_queued / "
                                 "max_queued_bytes) and the client is not connected")
        ms = _remaining_ms(deadline)
        if ms == 0:
            raise QueueFullError(_QUEUE_FULL, "the send queue is still full (max_queued / "
                                 "max_queued_bytes)")
        self._round(ms)

    def publish_many(self, topic: Optional[str],
                     payloads: Iterable[Union[bytes, str, Tuple[str, Union[bytes, str]]]],
                     qos: int = 0, retain: bool = False, properties: PropertiesArg = None, *,
                     timeout: Optional[float] = None) -> int:
        """Publish many messages in one call into C: every payload of
        `payloads` to `topic`, or, with ``topic=None``, ``(topic, payload)``
        pairs. The socket is fed as they are queued; when the send queue is
        full this waits for room (GIL released) up to `timeout` seconds
        (None: while connected or reconnecting). No handles are made:
        :meth:`flush` waits for every flow and reports QoS 1/2 messages the
        server refused.

        Returns the number of messages queued (all of them). Raises as
        :meth:`publish`; the messages before the failing one were queued.
        """
        c = self._handle()
        qos, retain = _check_qos_retain(qos, retain)
        seq: Sequence[Any] = payloads if isinstance(payloads, (list, tuple)) else list(payloads)
        pr = _make_props(properties) if properties else None
        deadline = _deadline(timeout)
        try:
            start = 0
            while True:
                nxt, rc, msg = _c.client_publish_many(c, topic, seq, start, qos, retain, pr)
                if rc == 0:
                    return len(seq)
                if rc != _QUEUE_FULL:
                    msg = msg or _c.mqlite_client_errmsg(c)
                    raise self._request_error(_c.Error(rc, f"items[{nxt}]: {msg} ({nxt} "
                                                           f"before it were queued)"))
                start = nxt
                self._wait_room(deadline)
                c = self._handle()
        finally:
            if pr is not None:
                _c.mqlite_props_free(pr)

    def flush(self, timeout: Optional[float] = None) -> None:
        """Wait (GIL released) until everything queued was written and every
        QoS 1/2 flow completed. Raises DeliveryError when the server refused
        (or a new session lost) QoS 1/2 messages that no handle reported yet,
        TimeoutError, ConnectionLostError."""
        c = self._handle()
        deadline = _deadline(timeout)
        while (_c.mqlite_client_queued(c) or _c.mqlite_client_inflight(c)
               or _c.mqlite_client_want_write(c)):
            if self._gone_for_good():
                raise self._lost_error(f"flush: {self.queued} queued, {self.inflight} in flight")
            ms = _remaining_ms(deadline)
            if ms == 0:
                raise TimeoutError(_c.MQLITE_ERR_TIMEOUT, f"flush: {self.queued} queued and "
                                   f"{self.inflight} in flight after {timeout} s")
            self._round(ms)
        self._take_unclaimed()

    # -- subscribe -------------------------------------------------------------------

    def subscribe(self, topic: Union[FilterArg, Sequence[FilterArg]], qos: int = 0, *,
                  no_local: bool = False, retain_as_published: bool = False,
                  retain_handling: int = 0, subscription_identifier: Optional[int] = None,
                  properties: PropertiesArg = None) -> SubscribeHandle:
        """Subscribe to one filter or several; returns a :class:`SubscribeHandle`
        (``.wait(timeout)`` gives the granted QoS per filter).

        `topic` is a filter, or a list of filters, ``(filter, qos)`` or
        ``(filter, SubscribeOptions)`` entries; the keyword options apply
        to entries that do not give their own. `subscription_identifier`
        (5.0) comes back in the messages it matches
        (:attr:`Message.subscription_ids`). Raises ValueError for a bad
        filter or option, ConnectionLostError before connect().
        """
        h = self._send_subscribe(topic, qos, no_local, retain_as_published, retain_handling,
                                 subscription_identifier, properties, SubscribeHandle)
        self._kick()
        return h

    def unsubscribe(self, topic: Union[str, Sequence[str]],
                    properties: PropertiesArg = None) -> UnsubscribeHandle:
        """Unsubscribe from one filter or several; returns an
        :class:`UnsubscribeHandle`."""
        h = self._send_unsubscribe(topic, properties, UnsubscribeHandle)
        self._kick()
        return h  # type: ignore[return-value]

    def _wait_flow(self, flow: _Flow, timeout: Optional[float]) -> None:
        deadline = _deadline(timeout)
        qos0 = isinstance(flow, PublishHandle) and flow.qos == 0
        while not (flow.is_done if qos0 else flow.done):  # type: ignore[attr-defined]
            if self._c is None:
                raise ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed")
            if self._gone_for_good():
                raise self._lost_error(f"packet {flow.packet_id} is still pending (it is sent "
                                       f"after the next connect())")
            ms = _remaining_ms(deadline)
            if ms == 0:
                raise TimeoutError(_c.MQLITE_ERR_TIMEOUT,
                                   f"packet {flow.packet_id} not acknowledged within {timeout} s")
            self._round(ms)

    # -- receive ---------------------------------------------------------------------

    def messages(self, timeout: Optional[float] = None) -> Iterator[Message]:
        """Iterate over received messages, serving the connection (GIL
        released) while waiting for them.

        The iteration ends when no message arrived for `timeout` seconds
        (None: never), after :meth:`loop_stop`, or when the client was
        disconnected by :meth:`disconnect`; it raises ConnectionLostError
        when the connection is lost and the client does not reconnect by
        itself. Not used when ``on_message`` is set.
        """
        self._handle()
        self._stop = False
        return self._iter_messages(timeout)

    def _iter_messages(self, timeout: Optional[float]) -> Iterator[Message]:
        inbox = self._inbox
        while True:
            while inbox:
                yield inbox.popleft()
            if self._stop or self._c is None:
                return
            deadline = _deadline(timeout)
            first = True
            while not inbox:
                if self._gone_for_good():
                    if not self._user_disconnect and self._last_error is not None:
                        raise self._lost_error("messages()")
                    return
                ms = _remaining_ms(deadline)
                if ms == 0 and not first:
                    return
                first = False
                self._round(ms)
                if self._stop or self._c is None:
                    break

    def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, waiting (GIL released) up to `timeout` seconds
        (None: no limit; 0: only what is already there or readable now);
        None when none arrived in time. Raises ConnectionLostError when not
        connected and not reconnecting."""
        self._handle()
        inbox = self._inbox
        deadline = _deadline(timeout)
        first = True
        while not inbox:
            if self._gone_for_good():
                raise self._lost_error("receive()")
            ms = _remaining_ms(deadline)
            if ms == 0 and not first:
                return None
            first = False
            self._round(ms)
        return inbox.popleft()

    def receive_many(self, max_messages: int = 1000,
                     timeout: Optional[float] = 0.0) -> List[Message]:
        """Up to `max_messages` messages, waiting up to `timeout` seconds for
        the first one (0: only what is already there or readable now). The
        batch form of :meth:`receive`, for high rates; [] on timeout."""
        self._handle()
        inbox = self._inbox
        out: List[Message] = []
        if not inbox:
            first = self.receive(timeout)
            if first is None:
                return out
            out.append(first)
        n = min(max_messages - len(out), len(inbox))
        popleft = inbox.popleft
        out.extend([popleft() for _ in range(n)])
        return out

    # -- loop ------------------------------------------------------------------------

    def loop(self, timeout: Optional[float] = 1.0) -> int:
        """Serve the connection once: wait up to `timeout` seconds (GIL
        released) for I/O or the next deadline, then process what arrived
        (callbacks run here). Returns the number of events processed.
        Use it instead of time.sleep() between publishes to keep the
        connection alive."""
        self._handle()
        return self._round(_ms(timeout, "timeout"))

    def loop_forever(self) -> None:
        """Serve the connection until :meth:`loop_stop` (from any thread)
        or :meth:`disconnect` (from a callback). Raises ConnectionLostError
        when the connection is lost and ``auto_reconnect`` is off."""
        self._handle()
        self._stop = False
        while not self._stop:
            if self._gone_for_good():
                if not self._user_disconnect and self._last_error is not None:
                    raise self._lost_error("loop_forever()")
                return
            self._round(-1)

    def loop_stop(self) -> None:
        """Make loop_forever(), messages() or a wait in another thread return
        soon. Safe from any thread (and from signal handlers): it only sets
        a flag and writes to the client's eventfd."""
        self._stop = True
        fd = getattr(self, "_wake_w", self._wake)
        if fd >= 0:
            try:
                os.write(fd, (1).to_bytes(8, "little"))
            except OSError:  # pragma: no cover - counter full: already woken
                pass

    # -- selector integration ---------------------------------------------------------

    def fileno(self) -> int:
        """The socket to watch for reading (and for writing while
        :meth:`want_write`), or -1 when there is none. It changes after
        reconnects: ask again after each :meth:`handle_io`."""
        return int(_c.mqlite_client_fd(self._handle()))

    def want_write(self) -> bool:
        """True when output is waiting for the socket to become writable."""
        return bool(_c.mqlite_client_want_write(self._handle()))

    def next_timeout(self) -> Optional[float]:
        """Seconds until :meth:`handle_io` must be called even without I/O
        (keep-alive, timeouts, reconnect), 0 if due now, None if no deadline."""
        t = _c.mqlite_client_next_timeout_ms(self._handle())
        return None if t < 0 else t / 1000.0

    def handle_io(self, readable: bool = False, writable: bool = False) -> int:
        """After your selector: read and/or write as it found possible, run
        due timers, and process the events (callbacks run here). Never
        waits. Returns the number of events processed."""
        c = self._handle()
        _rc, evs = _c.client_io_events(c, int(bool(readable)), int(bool(writable)), _BATCH)
        n = 0
        # Everything, in batches: the selector will not wake us for events
        # already read.
        while evs:
            n += len(evs)
            self._dispatch(evs)
            if self._c is None:
                break
            evs = _c.client_events(self._c, _BATCH)
        return n


def _check_qos_retain(qos: Any, retain: Any) -> Tuple[int, bool]:
    if isinstance(qos, bool) or not isinstance(qos, int):
        raise TypeError(f"qos must be an int, not {type(qos).__name__}")
    if not isinstance(retain, (bool, int)):
        raise TypeError(f"retain must be a bool, not {type(retain).__name__}")
    if not -2**31 <= qos < 2**31:
        raise error_for(_c.MQLITE_ERR_RANGE, f"QoS must be 0, 1 or 2, not {qos}", argument=True)
    return qos, bool(retain)
