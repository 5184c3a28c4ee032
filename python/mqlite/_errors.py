"""The exceptions mqlite raises, and the mapping from C error codes to them.

Every exception carries the C library's error code (``MQLITE_ERR_*``, a
negative int), its symbol and the C message::

    MqliteError(code, message)                 root: .code, .name, .message
    +-- ProtocolError                          codec/protocol codes (<= -100)
    |   +-- MalformedPacketError               "malformed packet" (MQTT 5.0 reason 0x81)
    |   +-- InvalidPacketError (ValueError)    a packet built from arguments breaks a rule
    +-- InvalidArgumentError (ValueError)      MQLITE_ERR_INVALID, _RANGE, other bad input
    |   +-- UnknownFieldError (TypeError)      MQLITE_ERR_OPTION: no such field/option here
    +-- ConnectionLostError (ConnectionError)  the connection is gone
    |   +-- ConnectError                       connecting failed: unreachable or refused
    +-- QueueFullError                         a bounded queue is full
    +-- TimeoutError (builtins.TimeoutError)   a deadline passed
    +-- DeliveryError                          a QoS 1/2 publish refused by the server or lost
    +-- SubscribeError                         the server refused a subscription
    +-- UnsupportedError (NotImplementedError) not in this build of mqlite, or not by the peer

Which code is "malformed" and which reason code an error maps to is decided
by the C library (``mqlite_error_is_malformed``, ``mqlite_error_reason``);
this module only picks the Python class.
"""
from __future__ import annotations

import builtins
from typing import Any, Optional, Tuple, Type

from . import mqlite_c as _c

__all__ = [
    "MqliteError",
    "ProtocolError",
    "MalformedPacketError",
    "InvalidPacketError",
    "InvalidArgumentError",
    "UnknownFieldError",
    "ConnectionLostError",
    "QueueFullError",
    "TimeoutError",
    "ConnectError",
    "DeliveryError",
    "SubscribeError",
    "UnsupportedError",
    "error_for",
    "from_c_error",
]


class MqliteError(Exception):
    """Root of mqlite's exceptions: a C error code with its message.

    Attributes:
        code: the negative ``MQLITE_ERR_*`` value.
        name: its symbol, e.g. ``"MQLITE_ERR_QOS3"``.
        message: what went wrong, as the C library put it.
    """

    code: int
    name: str
    message: str

    def __init__(self, code: int, message: Optional[str] = None) -> None:
        code = int(code)
        if message is None:
            message = _c.mqlite_strerror(code)
        super().__init__(code, message)
        self.code = code
        self.name = _c.mqlite_error_name(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.name}]"

    def __reduce__(self) -> Tuple[type, Tuple[int, str]]:
        return (type(self), (self.code, self.message))


class ProtocolError(MqliteError):
    """An MQTT codec or protocol rule was broken (codes -100 and below)."""

    @property
    def reason_code(self) -> int:
        """The MQTT 5.0 reason code a DISCONNECT or CONNACK should carry for
        this error (0x81 malformed, 0x82 protocol error, or a precise one)."""
        return int(_c.mqlite_error_reason(self.code))


class MalformedPacketError(ProtocolError):
    """Received bytes are not a well-formed MQTT packet (MQTT 5.0 reason
    code 0x81), e.g. QoS 3, a bad remaining length, ill-formed UTF-8."""


class InvalidPacketError(ProtocolError, ValueError):
    """A packet built from the caller's arguments breaks a codec rule (bad
    topic, ill-formed UTF-8, QoS 1 without packet identifier, ...)."""


class InvalidArgumentError(MqliteError, ValueError):
    """An argument is not valid or out of range (MQLITE_ERR_INVALID,
    MQLITE_ERR_RANGE and other caller mistakes)."""


class UnknownFieldError(InvalidArgumentError, TypeError):
    """A field or option that does not exist, or not for this packet type
    (MQLITE_ERR_OPTION); like an unexpected keyword argument."""


class ConnectionLostError(MqliteError, builtins.ConnectionError):
    """The network connection is lost, closed by the peer, or absent."""


class QueueFullError(MqliteError):
    """A bounded queue is full; nothing was queued."""


class TimeoutError(MqliteError, builtins.TimeoutError):  # noqa: A001 (shadows on purpose)
    """A deadline passed; also a ``builtins.TimeoutError``."""


class ConnectError(ConnectionLostError):
    """Connecting failed: the server is unreachable (DNS, TCP), did not
    answer in time with CONNACK, or refused the connection.

    Attributes:
        reason_code: the CONNACK return code (3.1/3.1.1) or reason code (5.0)
            of a refusal, else ``None``.
    """

    reason_code: Optional[int]

    def __init__(self, code: int, message: Optional[str] = None,
                 reason_code: Optional[int] = None) -> None:
        super().__init__(code, message)
        self.reason_code = reason_code

    def __reduce__(self) -> Tuple[type, Tuple[int, str, Optional[int]]]:  # type: ignore[override]
        return (type(self), (self.code, self.message, self.reason_code))


class DeliveryError(MqliteError):
    """A QoS 1/2 message was not delivered: the server answered its PUBLISH
    with a failure reason code (MQTT 5.0, 0x80 and above), or a new session
    on the server no longer knew it after a reconnect (``lost``: it may or
    may not have arrived).

    Attributes:
        packet_id: the message's packet identifier.
        reason_code: the PUBACK/PUBREC/PUBCOMP reason code, or ``None``.
        lost: True for a message the server's new session lost.
    """

    packet_id: int
    reason_code: Optional[int]
    lost: bool

    def __init__(self, code: int, message: Optional[str] = None, packet_id: int = 0,
                 reason_code: Optional[int] = None, lost: bool = False) -> None:
        super().__init__(code, message)
        self.packet_id = packet_id
        self.reason_code = reason_code
        self.lost = lost

    def __reduce__(self) -> Tuple[Any, ...]:  # type: ignore[override]
        return (type(self), (self.code, self.message, self.packet_id, self.reason_code,
                             self.lost))


class SubscribeError(MqliteError):
    """The server refused one or more topic filters of a SUBSCRIBE (SUBACK
    code 0x80 and above) or UNSUBSCRIBE (5.0 UNSUBACK 0x80 and above).

    Attributes:
        reason_codes: one code per filter, in order (granted QoS 0-2 or a
            failure code).
        filters: the filters, in the same order.
    """

    reason_codes: Tuple[int, ...]
    filters: Tuple[str, ...]

    def __init__(self, code: int, message: Optional[str] = None,
                 reason_codes: Tuple[int, ...] = (), filters: Tuple[str, ...] = ()) -> None:
        super().__init__(code, message)
        self.reason_codes = tuple(reason_codes)
        self.filters = tuple(filters)

    def __reduce__(self) -> Tuple[Any, ...]:  # type: ignore[override]
        return (type(self), (self.code, self.message, self.reason_codes, self.filters))


class UnsupportedError(MqliteError, NotImplementedError):
    """Not available in this build of mqlite (e.g. client TLS before the C
    library has it), or not supported by the peer (MQLITE_ERR_UNSUPPORTED)."""


_BY_CODE = {
    _c.MQLITE_ERR_TIMEOUT: TimeoutError,
    _c.MQLITE_ERR_QUEUE_FULL: QueueFullError,
    _c.MQLITE_ERR_CONNECTION_LOST: ConnectionLostError,
    _c.MQLITE_ERR_CLOSED: ConnectionLostError,
    _c.MQLITE_ERR_NOT_CONNECTED: ConnectionLostError,
    _c.MQLITE_ERR_INVALID: InvalidArgumentError,
    _c.MQLITE_ERR_RANGE: InvalidArgumentError,
    _c.MQLITE_ERR_OPTION: UnknownFieldError,
    _c.MQLITE_ERR_REFUSED: ConnectError,
    _c.MQLITE_ERR_DNS: ConnectError,
}


def _class_for(code: int, argument: bool) -> Type[MqliteError]:
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code == _c.MQLITE_ERR_UNSUPPORTED and not argument:
        return UnsupportedError
    if code <= _c.MQLITE_ERR_MALFORMED:
        if argument:
            return InvalidPacketError
        return MalformedPacketError if _c.mqlite_error_is_malformed(code) else ProtocolError
    if argument and code != _c.MQLITE_ERR_NOMEM:
        return InvalidArgumentError
    return MqliteError


def error_for(code: int, message: Optional[str] = None, *, argument: bool = False) -> MqliteError:
    """The exception for C error `code` (message defaults to mqlite_strerror).

    With ``argument=True`` the code came from checking the caller's input
    (building a packet, setting an option): codec rule violations then give
    :class:`InvalidPacketError` and other failures :class:`InvalidArgumentError`,
    both ``ValueError``; without it, codec codes give :class:`ProtocolError`
    or :class:`MalformedPacketError`, as for bytes received from a peer.
    """
    return _class_for(int(code), argument)(int(code), message)


def from_c_error(err: BaseException, *, argument: bool = False) -> MqliteError:
    """Convert a ``mqlite_c.Error(code, message)`` raised by the SWIG module
    into the matching :class:`MqliteError` subclass (see :func:`error_for`)."""
    code, message = err.args[0], (err.args[1] if len(err.args) > 1 else None)
    return error_for(code, message, argument=argument)
