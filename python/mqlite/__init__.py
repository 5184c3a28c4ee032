"""mqlite: MQTT 3.1/3.1.1/5.0 client and broker (Python bindings over the C core).

``mqlite.packet`` is the codec (packets to and from bytes); the exceptions
below are raised by every part of the package.
"""
from . import mqlite_c as _c
from . import packet
from ._errors import (ConnectionLostError, InvalidArgumentError, InvalidPacketError,
                      MalformedPacketError, MqliteError, ProtocolError, QueueFullError,
                      TimeoutError, UnknownFieldError)

__version__ = _c.version_string()

__all__ = [
    "packet",
    "MqliteError",
    "ProtocolError",
    "MalformedPacketError",
    "InvalidPacketError",
    "InvalidArgumentError",
    "UnknownFieldError",
    "ConnectionLostError",
    "QueueFullError",
    "TimeoutError",
    "__version__",
]
