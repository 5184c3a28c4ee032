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
    +-- QueueFullError                         a bounded queue is full
    +-- TimeoutError (builtins.TimeoutError)   a deadline passed

Which code is "malformed" and which reason code an error maps to is decided
by the C library (``mqlite_error_is_malformed``, ``mqlite_error_reason``);
this module only picks the Python class.
"""
from __future__ import annotations

import builtins
from typing import Optional, Tuple, Type

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


_BY_CODE = {
    _c.MQLITE_ERR_TIMEOUT: TimeoutError,
    _c.MQLITE_ERR_QUEUE_FULL: QueueFullError,
    _c.MQLITE_ERR_CONNECTION_LOST: ConnectionLostError,
    _c.MQLITE_ERR_CLOSED: ConnectionLostError,
    _c.MQLITE_ERR_NOT_CONNECTED: ConnectionLostError,
    _c.MQLITE_ERR_INVALID: InvalidArgumentError,
    _c.MQLITE_ERR_RANGE: InvalidArgumentError,
    _c.MQLITE_ERR_OPTION: UnknownFieldError,
}


def _class_for(code: int, argument: bool) -> Type[MqliteError]:
    if code in _BY_CODE:
        return _BY_CODE[code]
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
