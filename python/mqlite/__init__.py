"""mqlite: MQTT 3.1 / 3.1.1 / 5.0 client and broker for Python, over the
mqlite C library.

- :class:`Client`: a synchronous client (``with Client(...) as c``,
  ``c.publish(...).wait()``, ``for msg in c.messages()``, callbacks, or a
  selector loop of your own via ``fileno()``/``want_write()``/``handle_io()``);
- :class:`AsyncClient`: the same for asyncio (``async with``, ``await
  c.publish(...)``, ``async for msg in c.messages()``), driven by the event
  loop's reader/writer callbacks and timers, no thread;
- :class:`Broker`: mqlite's broker inside this process (``with Broker(port=0)
  as b``), or in the foreground (``serve_forever()``);
- :class:`Message`, :class:`Will`, :class:`SubscribeOptions`, the handles
  returned by publish/subscribe, and the exceptions below;
- :mod:`mqlite.packet`: the codec (packets to and from bytes);
  :mod:`mqlite.testing`: a pytest fixture with an in-process broker.

All protocol logic is in C; the GIL is released in every call that waits.
"""
from . import mqlite_c as _c
from . import packet
from ._core import (PublishHandle, SubscribeHandle, SubscribeOptions, UnsubscribeHandle,
                    parse_version)
from ._errors import (ConnectError, ConnectionLostError, DeliveryError, InvalidArgumentError,
                      InvalidPacketError, MalformedPacketError, MqliteError, ProtocolError,
                      QueueFullError, SubscribeError, TimeoutError, UnknownFieldError,
                      UnsupportedError)
from .aio import AsyncClient, AsyncPublishHandle, AsyncSubscribeHandle, AsyncUnsubscribeHandle
from .broker import Broker
from .client import Client
from .message import Message
from .packet import PropertyView, Will

__version__ = _c.version_string()

__all__ = [
    "Client",
    "AsyncClient",
    "Broker",
    "Message",
    "Will",
    "SubscribeOptions",
    "PublishHandle",
    "SubscribeHandle",
    "UnsubscribeHandle",
    "AsyncPublishHandle",
    "AsyncSubscribeHandle",
    "AsyncUnsubscribeHandle",
    "PropertyView",
    "parse_version",
    "packet",
    "MqliteError",
    "ProtocolError",
    "MalformedPacketError",
    "InvalidPacketError",
    "InvalidArgumentError",
    "UnknownFieldError",
    "ConnectionLostError",
    "ConnectError",
    "QueueFullError",
    "TimeoutError",
    "DeliveryError",
    "SubscribeError",
    "UnsupportedError",
    "__version__",
]
