"""What mqlite.Client and mqlite.AsyncClient share: keyword options mapped
onto the C client's setters, the C handle's lifetime, the dispatch of the
C library's events, and the handles returned for publish and (un)subscribe.

No protocol logic lives here: the C session engine does the MQTT work
(packet ids, QoS flows, keep-alive, reconnect, resend); this layer only
reads its events and resolves the matching Python objects.
"""
from __future__ import annotations

import collections
import math
import os
import time
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple, Union)

from . import mqlite_c as _c
from ._errors import (ConnectError, ConnectionLostError, DeliveryError, InvalidArgumentError,
                      MqliteError, SubscribeError, UnsupportedError, error_for)
from .message import EMPTY_PROPERTIES, Message, _props_from_c
from .packet import PacketType, PropertiesArg, PropertyView, Will, _apply, _as_will, _make_props, \
    _new_packet

if TYPE_CHECKING:  # pragma: no cover
    from .packet import BytesLike  # noqa: F401

__all__ = [
    "SubscribeOptions",
    "PublishHandle",
    "SubscribeHandle",
    "UnsubscribeHandle",
    "parse_version",
]

# Event types (mqlite.h MQLITE_EVENT_*).
_EV_CONNECTED = _c.MQLITE_EVENT_CONNECTED
_EV_CONNECT_FAILED = _c.MQLITE_EVENT_CONNECT_FAILED
_EV_DISCONNECTED = _c.MQLITE_EVENT_DISCONNECTED
_EV_MESSAGE = _c.MQLITE_EVENT_MESSAGE
_EV_PUBLISHED = _c.MQLITE_EVENT_PUBLISHED
_EV_PUBLISH_LOST = _c.MQLITE_EVENT_PUBLISH_LOST
_EV_SUBACK = _c.MQLITE_EVENT_SUBACK
_EV_UNSUBACK = _c.MQLITE_EVENT_UNSUBACK
_EV_ERROR = _c.MQLITE_EVENT_ERROR

_ST_IDLE = _c.MQLITE_STATE_IDLE
_ST_CONNECTING = _c.MQLITE_STATE_CONNECTING
_ST_CONNECTED = _c.MQLITE_STATE_CONNECTED
_ST_WAITING = _c.MQLITE_STATE_WAITING

#: Events taken from the C queue per call (the C queue itself is bounded by
#: MQLITE_OPT_MAX_EVENTS, default 100000).
_DRAIN_ALL = 1 << 30

#: Events taken per loop round or per event-loop callback. The rest stay in
#: the C queue for the next round, which does not wait while events are
#: pending.
_BATCH = 64

#: MQLITE_OPT_MAX_EVENTS of the clients made here: the C client stops
#: reading the socket while this many events wait (TCP flow control then
#: holds back the server); the Python inbox is the real buffer. Small
#: batches on both sides keep one round's events, tuples and Messages in
#: the CPU caches and below glibc's trim threshold: with the C default
#: (100000) and no batching, a burst of 1 KiB messages was read at once,
#: allocated, freed and trimmed each round, and receiving was 2-3x slower
#: (bench/python_vs_paho.sh).
_C_MAX_EVENTS = 256

_VERSIONS: Dict[str, int] = {
    "3": 3, "3.1": 3, "31": 3, "mqttv31": 3,
    "4": 4, "3.1.1": 4, "311": 4, "mqttv311": 4,
    "5": 5, "5.0": 5, "50": 5, "mqttv5": 5,
}

#: A topic filter entry for subscribe(): a filter, or (filter, QoS), or
#: (filter, SubscribeOptions).
FilterArg = Union[str, Tuple[str, Union[int, "SubscribeOptions"]]]


def parse_version(version: Union[int, str]) -> int:
    """The MQTT protocol level for `version`: 3 (MQTT 3.1), 4 (3.1.1) or 5.

    Accepts the levels themselves and the names ``"3.1"``, ``"3.1.1"``,
    ``"5"``, ``"5.0"``. Raises ValueError for anything else.
    """
    if isinstance(version, bool):
        raise TypeError("version must be 3, 4, 5 or a version string, not bool")
    if isinstance(version, int):
        if version in (3, 4, 5):
            return version
    elif isinstance(version, str):
        v = _VERSIONS.get(version.strip().lower())
        if v:
            return v
    else:
        raise TypeError(f"version must be an int or a str, not {type(version).__name__}")
    raise InvalidArgumentError(_c.MQLITE_ERR_RANGE,
                               f"unknown MQTT version {version!r}: use 3 (3.1), 4 (3.1.1) or 5 "
                               f"(or \"3.1\", \"3.1.1\", \"5.0\")")


def _ms(seconds: Optional[float], what: str) -> int:
    """Seconds (float) as whole milliseconds, rounded up; None -> -1."""
    if seconds is None:
        return -1
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    if seconds != seconds or seconds < 0:
        raise InvalidArgumentError(_c.MQLITE_ERR_RANGE, f"{what} must be >= 0 seconds, "
                                   f"not {seconds!r}")
    return min(int(math.ceil(seconds * 1000)), 2**31 - 1)


def _payload_bytes(payload: Any) -> Any:
    if payload is None:
        return b""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise TypeError(f"payload must be bytes, bytearray, memoryview or str, not "
                    f"{type(payload).__name__}")


@dataclass(frozen=True)
class SubscribeOptions:
    """The options of one subscription (the SUBSCRIBE options byte).

    Attributes:
        qos: the maximum QoS the server may deliver with (0, 1 or 2).
        no_local: 5.0: do not send my own publications back to me.
        retain_as_published: 5.0: keep the RETAIN flag as the publisher set it.
        retain_handling: 5.0: 0 send retained messages on subscribe, 1 only
            for a new subscription, 2 never.
    """

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0

    @property
    def byte(self) -> int:
        """The options byte as sent in SUBSCRIBE (the C codec validates it)."""
        for name in ("qos", "retain_handling"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int, not {type(v).__name__}")
            if not 0 <= v <= 3:
                raise InvalidArgumentError(_c.MQLITE_ERR_RANGE,
                                           f"{name} must be 0, 1 or 2, not {v}")
        return self.qos | (0x04 if self.no_local else 0) | \
            (0x08 if self.retain_as_published else 0) | (self.retain_handling << 4)


# ---------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------

class _Flow:
    """One request whose outcome arrives later as an event."""

    __slots__ = ("packet_id", "done", "error", "_client", "_next")

    def __init__(self, client: "_ClientCore", packet_id: int) -> None:
        self.packet_id = packet_id
        self.done = False
        self.error: Optional[MqliteError] = None
        self._client = client
        self._next: Optional[_Flow] = None

    def _finish(self, error: Optional[MqliteError]) -> None:
        self.done = True
        self.error = error
        self._client = None  # type: ignore[assignment]

    def _result(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class PublishHandle(_Flow):
    """What :meth:`Client.publish` returns: the message's fate.

    Attributes:
        packet_id: the packet identifier of a QoS 1/2 message (0 for QoS 0).
        qos: the QoS it was published with.
        reason_code: the PUBACK/PUBREC/PUBCOMP reason code once the flow has
            completed (0 = success; 5.0 codes below 0x80 are successes too,
            e.g. 0x10 "No matching subscribers"); ``None`` before, and for QoS 0.
        reason: the reason code in words, once completed ("" before).
    """

    __slots__ = ("qos", "reason_code", "reason")

    def __init__(self, client: "_ClientCore", packet_id: int, qos: int) -> None:
        super().__init__(client, packet_id)
        self.qos = qos
        self.reason_code: Optional[int] = None
        self.reason = ""

    @property
    def is_done(self) -> bool:
        """True once the flow has completed (QoS 1/2), or once the message
        and everything queued before it were written to the socket (QoS 0)."""
        if not self.done and self.qos == 0 and self._client is not None:
            if self._client._flushed():
                self._finish(None)
        return self.done

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Block (the GIL released) until the flow completes: QoS 1 PUBACK,
        QoS 2 PUBCOMP; QoS 0: until written to the socket. Returns the
        reason code (None for QoS 0).

        Raises:
            TimeoutError: not completed within `timeout` seconds (the flow
                goes on; wait again or let it be).
            DeliveryError: the server refused it (5.0 reason code >= 0x80),
                or its new session lost it (``.lost``).
            ConnectionLostError: the client is not connected and will not
                reconnect by itself (the message stays queued and is sent
                again after the next connect()).
        """
        if not self.done:
            if self._client is None:  # pragma: no cover - finished without result
                raise ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed")
            self._client._wait_flow(self, timeout)
        if self.error is not None:
            raise self.error
        return self.reason_code

    def _result(self) -> Optional[int]:
        return self.reason_code

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        rc = "" if self.reason_code is None else f" reason_code=0x{self.reason_code:02x}"
        err = f" error={self.error}" if self.error else ""
        return f"<{type(self).__name__} qos={self.qos} packet_id={self.packet_id} {state}{rc}{err}>"


class SubscribeHandle(_Flow):
    """What :meth:`Client.subscribe` returns: the SUBACK to come.

    Attributes:
        packet_id: the SUBSCRIBE's packet identifier.
        filters: the topic filters, in order.
        reason_codes: once acknowledged, one code per filter: the granted
            QoS (0, 1, 2) or a failure code (0x80 and above); ``None`` before.
    """

    __slots__ = ("filters", "reason_codes")
    _what = "subscription"

    def __init__(self, client: "_ClientCore", packet_id: int, filters: Tuple[str, ...]) -> None:
        super().__init__(client, packet_id)
        self.filters = filters
        self.reason_codes: Optional[Tuple[int, ...]] = None

    @property
    def granted_qos(self) -> Optional[Tuple[int, ...]]:
        """Alias of :attr:`reason_codes` (for SUBACK they are the granted QoS)."""
        return self.reason_codes

    def wait(self, timeout: Optional[float] = None) -> Tuple[int, ...]:
        """Block (the GIL released) until acknowledged; returns the reason
        codes. Raises SubscribeError when the server refused a filter (the
        codes are on the exception), TimeoutError, ConnectionLostError."""
        if not self.done:
            if self._client is None:  # pragma: no cover
                raise ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED, "the client was closed")
            self._client._wait_flow(self, timeout)
        if self.error is not None:
            raise self.error
        return self.reason_codes or ()

    def _result(self) -> Tuple[int, ...]:
        return self.reason_codes or ()

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return (f"<{type(self).__name__} packet_id={self.packet_id} filters={list(self.filters)} "
                f"{state} reason_codes={self.reason_codes}>")


class UnsubscribeHandle(SubscribeHandle):
    """What :meth:`Client.unsubscribe` returns: the UNSUBACK to come
    (5.0: one reason code per filter; 3.1.1 UNSUBACK carries none, then
    :attr:`reason_codes` is all zeros)."""

    __slots__ = ()
    _what = "unsubscription"


# ---------------------------------------------------------------------------
# The shared client core
# ---------------------------------------------------------------------------

OnMessage = Callable[[Any, Message], None]
OnConnect = Callable[[Any, bool, PropertyView], None]
OnConnectFail = Callable[[Any, MqliteError], None]
OnDisconnect = Callable[[Any, int, Optional[MqliteError]], None]
OnPublish = Callable[[Any, int, int], None]


def _has_client_tls() -> bool:
    return any(n.startswith("MQLITE_OPT_TLS") for n in dir(_c))


class _ClientCore:
    """The C client handle with its options and event dispatch; see
    :class:`mqlite.Client` for the options."""

    def __init__(self, *, client_id: str = "", host: str = "127.0.0.1", port: int = 1883,
                 version: Union[int, str] = 4, clean_start: bool = True,
                 session_expiry: Optional[int] = None, keepalive: int = 60,
                 username: Optional[str] = None, password: Union[bytes, str, None] = None,
                 will: Union[Will, Mapping[str, Any], None] = None,
                 connect_properties: PropertiesArg = None,
                 auto_reconnect: bool = False, reconnect_min_delay: float = 0.5,
                 reconnect_max_delay: float = 30.0, resubscribe: bool = True,
                 max_queued: Optional[int] = None, max_queued_bytes: Optional[int] = None,
                 max_inflight: Optional[int] = None, receive_maximum: Optional[int] = None,
                 max_packet_size: Optional[int] = None,
                 topic_alias_maximum: Optional[int] = None,
                 connect_timeout: float = 10.0, ping_timeout: Optional[float] = None,
                 request_response_information: bool = False,
                 request_problem_information: bool = True,
                 tcp_nodelay: bool = True, strict_utf8: bool = False,
                 store: Optional[str] = None,
                 tls: Any = None, ca_certs: Optional[str] = None,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None,
                 key_password: Optional[str] = None,
                 tls_server_name: Optional[str] = None,
                 tls_min_version: Optional[str] = None,
                 tls_insecure_skip_verify: bool = False,
                 auth_method: Optional[str] = None,
                 on_message: Optional[OnMessage] = None,
                 on_connect: Optional[OnConnect] = None,
                 on_connect_fail: Optional[OnConnectFail] = None,
                 on_disconnect: Optional[OnDisconnect] = None,
                 on_publish: Optional[OnPublish] = None) -> None:
        self._c: Any = None
        use_tls = bool(tls or ca_certs or certfile or keyfile or key_password
                       or tls_server_name or tls_min_version or tls_insecure_skip_verify)
        tls_versions = {"1.2": 12, "1.3": 13}
        if tls_min_version is not None and tls_min_version not in tls_versions:
            raise ValueError(f"tls_min_version must be '1.2' or '1.3', not {tls_min_version!r}")
        if use_tls and not _has_client_tls():  # pragma: no cover - older C library
            raise UnsupportedError(
                _c.MQLITE_ERR_UNSUPPORTED,
                "TLS: this build of the mqlite C library has no client TLS "
                "(no MQLITE_OPT_TLS* options)")
        for what, path in (("ca_certs", ca_certs), ("certfile", certfile),
                           ("keyfile", keyfile)):
            if path is not None and not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"{what} must be a path, not {type(path).__name__}")
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, not {type(host).__name__}")
        self.host = host
        self.port = self._check_port(port)
        self.version = parse_version(version)
        self.client_id = client_id
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_connect_fail = on_connect_fail
        self.on_disconnect = on_disconnect
        self.on_publish = on_publish
        #: True when the server kept the session (CONNACK), after connect().
        self.session_present = False
        #: The 5.0 CONNACK properties of the current or last connection.
        self.connack_properties: PropertyView = EMPTY_PROPERTIES
        self._auto_reconnect = bool(auto_reconnect)
        self._inbox: Deque[Message] = collections.deque()
        self._flows: Dict[int, _Flow] = {}
        self._unclaimed: List[MqliteError] = []
        self._last_error: Optional[MqliteError] = None
        self._user_disconnect = False
        self._closed = False

        v5 = self.version == 5
        for name, value in (("session_expiry", session_expiry),
                            ("receive_maximum", receive_maximum),
                            ("max_packet_size", max_packet_size),
                            ("topic_alias_maximum", topic_alias_maximum),
                            ("connect_properties", connect_properties)):
            if value is not None and not v5:
                raise InvalidArgumentError(_c.MQLITE_ERR_UNSUPPORTED,
                                           f"{name} is an MQTT 5.0 feature: use version=5")
        if not isinstance(client_id, str):
            raise TypeError(f"client_id must be a str, not {type(client_id).__name__}")
        c = _c.mqlite_client_new("")
        if c is None:  # pragma: no cover
            raise MemoryError("mqlite_client_new")
        self._c = c
        try:
            self._set_bytes(_c.MQLITE_OPT_CLIENT_ID, client_id.encode("utf-8", "surrogatepass"),
                            "client_id")
            if store is not None:
                if not isinstance(store, (str, os.PathLike)):
                    raise TypeError(f"store must be a path, not {type(store).__name__}")
                self._set_bytes(_c.MQLITE_OPT_STORE_PATH, os.fsencode(store), "store")
            ints: List[Tuple[int, Any, str]] = [
                (_c.MQLITE_OPT_PROTOCOL, self.version, "version"),
                (_c.MQLITE_OPT_CLEAN_START, bool(clean_start), "clean_start"),
                (_c.MQLITE_OPT_KEEPALIVE_S, keepalive, "keepalive"),
                (_c.MQLITE_OPT_RECONNECT, bool(auto_reconnect), "auto_reconnect"),
                (_c.MQLITE_OPT_RECONNECT_MIN_MS, _ms(reconnect_min_delay, "reconnect_min_delay"),
                 "reconnect_min_delay"),
                (_c.MQLITE_OPT_RECONNECT_MAX_MS, _ms(reconnect_max_delay, "reconnect_max_delay"),
                 "reconnect_max_delay"),
                (_c.MQLITE_OPT_RESUBSCRIBE, bool(resubscribe), "resubscribe"),
                (_c.MQLITE_OPT_CONNECT_TIMEOUT_MS, _ms(connect_timeout, "connect_timeout"),
                 "connect_timeout"),
                (_c.MQLITE_OPT_TCP_NODELAY, bool(tcp_nodelay), "tcp_nodelay"),
                (_c.MQLITE_OPT_MAX_EVENTS, _C_MAX_EVENTS, "max_events"),
                (_c.MQLITE_OPT_STRICT_UTF8, bool(strict_utf8), "strict_utf8"),
            ]
            if v5:
                ints += [
                    (_c.MQLITE_OPT_REQUEST_RESPONSE_INFO, bool(request_response_information),
                     "request_response_information"),
                    (_c.MQLITE_OPT_REQUEST_PROBLEM_INFO, bool(request_problem_information),
                     "request_problem_information"),
                ]
            for opt, value, name in (
                    (_c.MQLITE_OPT_SESSION_EXPIRY_S, session_expiry, "session_expiry"),
                    (_c.MQLITE_OPT_MAX_QUEUED, max_queued, "max_queued"),
                    (_c.MQLITE_OPT_MAX_QUEUED_BYTES, max_queued_bytes, "max_queued_bytes"),
                    (_c.MQLITE_OPT_MAX_INFLIGHT, max_inflight, "max_inflight"),
                    (_c.MQLITE_OPT_RECEIVE_MAX, receive_maximum, "receive_maximum"),
                    (_c.MQLITE_OPT_MAX_PACKET_SIZE, max_packet_size, "max_packet_size"),
                    (_c.MQLITE_OPT_TOPIC_ALIAS_MAX, topic_alias_maximum, "topic_alias_maximum"),
                    (_c.MQLITE_OPT_PING_TIMEOUT_MS,
                     None if ping_timeout is None else _ms(ping_timeout, "ping_timeout"),
                     "ping_timeout")):
                if value is not None:
                    ints.append((opt, value, name))
            for opt, value, name in ints:
                self._set_int(opt, value, name)
            if username is not None:
                if not isinstance(username, str):
                    raise TypeError(f"username must be a str, not {type(username).__name__}")
                self._set_bytes(_c.MQLITE_OPT_USERNAME,
                                username.encode("utf-8", "surrogatepass"), "username")
            if password is not None:
                self._set_bytes(_c.MQLITE_OPT_PASSWORD, _payload_bytes(password), "password")
            if will is not None:
                self._set_will(_as_will(will))
            if connect_properties:
                self._set_props(_c.MQLITE_OPT_CONNECT_PROPS, connect_properties,
                                "connect_properties")
            if use_tls:
                # Verification (chain and host name) stays on: the C defaults.
                self._set_int(_c.MQLITE_OPT_TLS, 1, "tls")
                for opt, path, what in ((_c.MQLITE_OPT_TLS_CAFILE, ca_certs, "ca_certs"),
                                        (_c.MQLITE_OPT_TLS_CERTFILE, certfile, "certfile"),
                                        (_c.MQLITE_OPT_TLS_KEYFILE, keyfile, "keyfile")):
                    if path is not None:
                        self._set_bytes(opt, os.fsencode(path), what)
                for opt, text, what in (
                        (_c.MQLITE_OPT_TLS_KEY_PASSWORD, key_password, "key_password"),
                        (_c.MQLITE_OPT_TLS_SERVER_NAME, tls_server_name, "tls_server_name")):
                    if text is not None:
                        if not isinstance(text, str):
                            raise TypeError(f"{what} must be a str, not {type(text).__name__}")
                        self._set_bytes(opt, text.encode("utf-8"), what)
                if tls_min_version is not None:
                    self._set_int(_c.MQLITE_OPT_TLS_MIN_VERSION, tls_versions[tls_min_version],
                                  "tls_min_version")
                if tls_insecure_skip_verify:
                    # Development only: no chain or host name check at all.
                    self._set_int(_c.MQLITE_OPT_TLS_INSECURE_SKIP_VERIFY, 1,
                                  "tls_insecure_skip_verify")
            if auth_method is not None:
                if not isinstance(auth_method, str):
                    raise TypeError(f"auth_method must be a str, not {type(auth_method).__name__}")
                self._set_bytes(_c.MQLITE_OPT_AUTH_METHOD, auth_method.encode("utf-8"),
                                "auth_method")
        except BaseException:
            _c.mqlite_client_free(c)
            self._c = None
            raise

    # -- options -------------------------------------------------------------

    @staticmethod
    def _check_port(port: Any) -> int:
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        if not 1 <= port <= 65535:
            raise InvalidArgumentError(_c.MQLITE_ERR_INVALID, f"port must be 1..65535, not {port}")
        return port

    def _opt_error(self, e: BaseException, what: str) -> MqliteError:
        code = e.args[0]
        msg = e.args[1] if len(e.args) > 1 else None
        detail = _c.mqlite_client_errmsg(self._c) if self._c is not None else ""
        return error_for(code, f"{what}: {detail or msg}", argument=True)

    def _set_int(self, opt: int, value: Any, what: str) -> None:
        if not isinstance(value, int):
            raise TypeError(f"{what} must be an int, not {type(value).__name__}")
        try:
            _c.mqlite_client_set_int(self._c, opt, int(value))
        except _c.Error as e:
            raise self._opt_error(e, what) from None
        except OverflowError:
            raise InvalidArgumentError(_c.MQLITE_ERR_RANGE, f"{what}: {value} is out of range") \
                from None

    def _set_bytes(self, opt: int, value: bytes, what: str) -> None:
        try:
            _c.mqlite_client_set_bytes(self._c, opt, value)
        except _c.Error as e:
            raise self._opt_error(e, what) from None

    def _set_props(self, opt: int, props: PropertiesArg, what: str) -> None:
        pr = _make_props(props)
        try:
            _c.mqlite_client_set_props(self._c, opt, pr)
        except _c.Error as e:
            raise self._opt_error(e, what) from None
        finally:
            _c.mqlite_props_free(pr)

    def _set_will(self, w: Will) -> None:
        if not isinstance(w.topic, str):
            raise TypeError(f"will topic must be a str, not {type(w.topic).__name__}")
        self._set_bytes(_c.MQLITE_OPT_WILL_TOPIC, w.topic.encode("utf-8", "surrogatepass"),
                        "will.topic")
        self._set_bytes(_c.MQLITE_OPT_WILL_PAYLOAD, _payload_bytes(w.payload), "will.payload")
        self._set_int(_c.MQLITE_OPT_WILL_QOS, w.qos, "will.qos")
        self._set_int(_c.MQLITE_OPT_WILL_RETAIN, bool(w.retain), "will.retain")
        if w.properties:
            if self.version != 5:
                raise InvalidArgumentError(_c.MQLITE_ERR_UNSUPPORTED,
                                           "will properties are an MQTT 5.0 feature: use "
                                           "version=5")
            self._set_props(_c.MQLITE_OPT_WILL_PROPS, w.properties, "will.properties")

    # -- state -----------------------------------------------------------------

    def _handle(self) -> Any:
        c = self._c
        if c is None:
            raise MqliteError(_c.MQLITE_ERR_MISUSE, "the client is closed")
        return c

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._c is None

    @property
    def is_connected(self) -> bool:
        """True while the connection is up (CONNACK accepted)."""
        return self._c is not None and _c.mqlite_client_state(self._c) == _ST_CONNECTED

    @property
    def state(self) -> str:
        """The C client's state: "idle", "connecting", "connected",
        "disconnecting", "waiting" (to reconnect) or "closed"."""
        if self._c is None:
            return "closed"
        return ("idle", "connecting", "connected", "disconnecting",
                "waiting")[_c.mqlite_client_state(self._c)]

    @property
    def auto_reconnect(self) -> bool:
        """Whether the C client reconnects by itself after a lost connection."""
        return self._auto_reconnect

    @property
    def queued(self) -> int:
        """Messages waiting to be sent (not yet in flight)."""
        return int(_c.mqlite_client_queued(self._c)) if self._c is not None else 0

    @property
    def inflight(self) -> int:
        """QoS 1/2 messages sent and not yet acknowledged."""
        return int(_c.mqlite_client_inflight(self._c)) if self._c is not None else 0

    @property
    def last_error(self) -> Optional[MqliteError]:
        """The last connection failure or loss reported by the C library, if any."""
        return self._last_error

    def _gone_for_good(self) -> bool:
        """Not connected, and not going to be without a connect() call."""
        c = self._c
        return c is None or _c.mqlite_client_state(c) == _ST_IDLE

    def _flushed(self) -> bool:
        c = self._c
        return c is None or (not _c.mqlite_client_queued(c) and not _c.mqlite_client_want_write(c))

    def _lost_error(self, what: str) -> ConnectionLostError:
        why = f" ({self._last_error.message})" if self._last_error is not None else ""
        return ConnectionLostError(_c.MQLITE_ERR_NOT_CONNECTED,
                                   f"{what}: the client is not connected{why}")

    # -- requests ----------------------------------------------------------------

    def _request_error(self, e: BaseException) -> MqliteError:
        code = e.args[0]
        msg = e.args[1] if len(e.args) > 1 else None
        state_codes = (_c.MQLITE_ERR_QUEUE_FULL, _c.MQLITE_ERR_NO_PACKET_ID,
                       _c.MQLITE_ERR_NOMEM, _c.MQLITE_ERR_NOT_CONNECTED, _c.MQLITE_ERR_STATE,
                       _c.MQLITE_ERR_MISUSE)
        return error_for(code, msg, argument=code not in state_codes)

    def _track(self, flow: _Flow) -> None:
        """Register a QoS 1/2 publish or an (un)subscribe under its packet id.

        An id is reused by the C library once its flow completed, possibly
        before that completion's event was taken: flows under one id are
        chained oldest first and resolved in order."""
        pid = flow.packet_id
        head = self._flows.get(pid)
        if head is None:
            self._flows[pid] = flow
        else:
            while head._next is not None:
                head = head._next
            head._next = flow

    def _take_flow(self, pid: int) -> Optional[_Flow]:
        flow = self._flows.pop(pid, None)
        if flow is not None and flow._next is not None:
            self._flows[pid] = flow._next
            flow._next = None
        return flow

    def _build_list_packet(self, ptype: int, entries: List[Tuple[str, int]],
                           properties: PropertiesArg) -> Any:
        cp = _new_packet(ptype, self.version)
        try:
            fields: Dict[str, Any] = {"topics": entries}
            if properties:
                fields["properties"] = properties
            _apply(cp, fields)
        except BaseException:
            _c.mqlite_packet_free(cp)
            raise
        return cp

    @staticmethod
    def _sub_entries(topic: Union[FilterArg, Sequence[FilterArg]], qos: int,
                     defaults: SubscribeOptions) -> List[Tuple[str, int]]:
        if isinstance(topic, (str, tuple)):
            items: Iterable[Any] = [topic]
        elif isinstance(topic, (bytes, bytearray)):
            raise TypeError("a topic filter must be a str")
        else:
            items = list(topic)
        out = []
        for item in items:
            if isinstance(item, str):
                flt, opt = item, None
            elif isinstance(item, tuple) and len(item) == 2:
                flt, opt = item
            else:
                raise TypeError(f"a subscription must be a filter or a (filter, qos or "
                                f"SubscribeOptions) pair, not {item!r}")
            if not isinstance(flt, str):
                raise TypeError(f"a topic filter must be a str, not {type(flt).__name__}")
            if opt is None:
                so = SubscribeOptions(qos, defaults.no_local, defaults.retain_as_published,
                                      defaults.retain_handling)
            elif isinstance(opt, SubscribeOptions):
                so = opt
            elif isinstance(opt, int) and not isinstance(opt, bool):
                so = SubscribeOptions(opt, defaults.no_local, defaults.retain_as_published,
                                      defaults.retain_handling)
            else:
                raise TypeError(f"the options of {flt!r} must be a QoS int or SubscribeOptions, "
                                f"not {type(opt).__name__}")
            out.append((flt, so.byte))
        return out

    def _send_subscribe(self, topic: Any, qos: int, no_local: bool, retain_as_published: bool,
                        retain_handling: int, subscription_identifier: Optional[int],
                        properties: PropertiesArg, handle_cls: type) -> SubscribeHandle:
        c = self._handle()
        entries = self._sub_entries(topic, qos, SubscribeOptions(
            qos, no_local, retain_as_published, retain_handling))
        props: List[Tuple[Any, Any]] = []
        if subscription_identifier is not None:
            props.append(("subscription_id", subscription_identifier))
        if properties:
            props.extend(properties.items() if isinstance(properties, Mapping)
                         else list(properties))
        cp = self._build_list_packet(PacketType.SUBSCRIBE, entries, props)
        try:
            pid = _c.client_send_packet(c, cp)
        except _c.Error as e:
            raise self._request_error(e) from None
        finally:
            _c.mqlite_packet_free(cp)
        h: SubscribeHandle = handle_cls(self, pid, tuple(f for f, _ in entries))
        self._track(h)
        return h

    def _send_unsubscribe(self, topic: Union[str, Sequence[str]], properties: PropertiesArg,
                          handle_cls: type) -> SubscribeHandle:
        c = self._handle()
        if isinstance(topic, str):
            filters = [topic]
        elif isinstance(topic, (bytes, bytearray)):
            raise TypeError("a topic filter must be a str")
        else:
            filters = list(topic)
        for f in filters:
            if not isinstance(f, str):
                raise TypeError(f"a topic filter must be a str, not {type(f).__name__}")
        cp = self._build_list_packet(PacketType.UNSUBSCRIBE, [(f, 0) for f in filters],
                                     properties)
        try:
            pid = _c.client_send_packet(c, cp)
        except _c.Error as e:
            raise self._request_error(e) from None
        finally:
            _c.mqlite_packet_free(cp)
        h: SubscribeHandle = handle_cls(self, pid, tuple(filters))
        self._track(h)
        return h

    # -- events --------------------------------------------------------------------

    def _deliver(self, msg: Message) -> None:
        cb = self.on_message
        if cb is not None:
            cb(self, msg)
        else:
            self._inbox.append(msg)

    def _dispatch(self, events: List[Tuple[Any, ...]]) -> None:
        """Act on events taken from the C queue (mqlite.i mq_py_event tuples)."""
        deliver = self._deliver
        err: Optional[MqliteError]
        for ev in events:
            t = ev[0]
            if t == _EV_MESSAGE:
                props = ev[7]
                deliver(Message(ev[1], ev[2], ev[3], ev[4], ev[5],
                                _props_from_c(props) if props else EMPTY_PROPERTIES, ev[6]))
            elif t == _EV_PUBLISHED:
                self._on_published(ev[1], ev[2], ev[3], ev[4], False)
            elif t == _EV_SUBACK or t == _EV_UNSUBACK:
                self._on_suback(t, ev[1], ev[4], ev[7])
            elif t == _EV_CONNECTED:
                self.session_present = bool(ev[5])
                self.connack_properties = _props_from_c(ev[6])
                assigned = self.connack_properties.get("assigned_client_id")
                if assigned:
                    self.client_id = assigned  # type: ignore[assignment]
                self._last_error = None
                self._on_connected()
                if self.on_connect is not None:
                    self.on_connect(self, self.session_present, self.connack_properties)
            elif t == _EV_CONNECT_FAILED:
                reason = ev[2] or None
                err = ConnectError(ev[3] or _c.MQLITE_ERR_REFUSED, ev[4], reason_code=reason)
                self._last_error = err
                self._on_connection_end(err)
                if self.on_connect_fail is not None:
                    self.on_connect_fail(self, err)
            elif t == _EV_DISCONNECTED:
                err = None
                if ev[3]:
                    err = error_for(ev[3], ev[4])
                    if not isinstance(err, ConnectionLostError):
                        err = ConnectionLostError(ev[3], ev[4])
                    self._last_error = err
                self._on_connection_end(err)
                if self.on_disconnect is not None:
                    self.on_disconnect(self, ev[2], err)
            elif t == _EV_PUBLISH_LOST:
                self._on_published(ev[1], ev[2], ev[3], ev[4], True)
            elif t == _EV_ERROR:
                self._last_error = error_for(ev[3] or _c.MQLITE_ERR_PROTOCOL, ev[4])
            # MQLITE_EVENT_TRACE: not enabled by this layer.

    def _on_published(self, pid: int, reason: int, error: int, text: str, lost: bool) -> None:
        err: Optional[MqliteError] = None
        if lost:
            err = DeliveryError(error or _c.MQLITE_ERR_CONNECTION_LOST, text, packet_id=pid,
                                reason_code=None, lost=True)
        elif reason >= 0x80 or error:
            err = DeliveryError(error or _c.MQLITE_ERR_REFUSED,
                                text or _c.mqlite_reason_string(_c.MQLITE_PKT_PUBACK, reason, 5),
                                packet_id=pid, reason_code=reason)
        flow = self._take_flow(pid)
        if isinstance(flow, PublishHandle):
            flow.reason_code = None if lost else reason
            flow.reason = text
            self._finish_flow(flow, err)
        elif err is not None:
            self._unclaimed.append(err)
        if self.on_publish is not None:
            self.on_publish(self, pid, reason)

    def _on_suback(self, t: int, pid: int, text: str, codes: Optional[Tuple[int, ...]]) -> None:
        flow = self._take_flow(pid)
        if not isinstance(flow, SubscribeHandle):  # pragma: no cover - not ours
            return
        codes = tuple(codes) if codes else (0,) * len(flow.filters)
        flow.reason_codes = codes
        err: Optional[MqliteError] = None
        bad = [(f, rc) for f, rc in zip(flow.filters, codes) if rc >= 0x80]
        if bad:
            ptype = _c.MQLITE_PKT_SUBACK if t == _EV_SUBACK else _c.MQLITE_PKT_UNSUBACK
            words = "; ".join(f"{f!r}: 0x{rc:02x} {_c.mqlite_reason_string(ptype, rc, self.version)}"
                              for f, rc in bad)
            err = SubscribeError(_c.MQLITE_ERR_REFUSED, f"{flow._what} refused: {words}",
                                 reason_codes=codes, filters=flow.filters)
        self._finish_flow(flow, err)

    def _wait_flow(self, flow: _Flow, timeout: Optional[float]) -> None:
        """Block until `flow` is done (the synchronous client's wait)."""
        raise NotImplementedError

    def _finish_flow(self, flow: _Flow, err: Optional[MqliteError]) -> None:
        flow._finish(err)

    def _on_connected(self) -> None:
        """Hook: the connection is up."""

    def _on_connection_end(self, err: Optional[MqliteError]) -> None:
        """Hook: a connection attempt failed or a connection ended."""

    def _fail_all(self, err: MqliteError) -> None:
        """Resolve every pending flow with `err` (the client is closing)."""
        flows, self._flows = self._flows, {}
        for head in flows.values():
            f: Optional[_Flow] = head
            while f is not None:
                nxt = f._next
                f._next = None
                self._finish_flow(f, err)
                f = nxt

    def _take_unclaimed(self) -> None:
        if self._unclaimed:
            errs, self._unclaimed = self._unclaimed, []
            first = errs[0]
            if len(errs) > 1:
                raise DeliveryError(first.code, f"{len(errs)} messages were not delivered; "
                                    f"first: {first.message}", packet_id=getattr(
                                        first, "packet_id", 0),
                                    reason_code=getattr(first, "reason_code", None),
                                    lost=getattr(first, "lost", False))
            raise first

    def _free(self) -> None:
        c, self._c = self._c, None
        if c is not None:
            _c.mqlite_client_free(c)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} client_id={self.client_id!r} "
                f"{self.host}:{self.port} v{self.version} {self.state}>")


def _deadline(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    _ms(timeout, "timeout")
    return time.monotonic() + timeout
