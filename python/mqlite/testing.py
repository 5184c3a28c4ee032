"""mqlite.testing: an in-process MQTT broker for your pytest suite.

Use the fixture in a project's ``conftest.py``::

    pytest_plugins = ["mqlite.testing"]

then in a test::

    def test_roundtrip(mqlite_broker):
        with mqlite.Client(port=mqlite_broker.port) as c:
            c.subscribe("t", qos=1).wait(5)
            c.publish("t", b"x", qos=1).wait(5)
            assert c.receive(timeout=5).payload == b"x"

Or copy the fixture below (it is ten lines): every test gets its own
broker on a free 127.0.0.1 port, stopped (with every connection closed)
when the test ends. :func:`break_connection` cuts a client's TCP
connection the way a failing network does (no DISCONNECT: the broker
sends the will, the client sees the loss and, with ``auto_reconnect``,
reconnects).

Importing this module needs pytest; ``import mqlite`` does not.
"""
from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest

from .broker import Broker

__all__ = ["mqlite_broker", "break_connection"]


@pytest.fixture
def mqlite_broker() -> Iterator[Broker]:
    """An mqlite broker running in this process on a free 127.0.0.1 port
    for the duration of one test (``mqlite_broker.port``, ``.url``)."""
    with Broker(host="127.0.0.1", port=0) as broker:
        yield broker


def break_connection(client: Any) -> None:
    """Cut `client`'s TCP connection as a network failure would: both
    directions are shut down under the client's feet (no DISCONNECT). The
    client notices at its next I/O; the broker sends the client's will.
    Call it from the thread that uses the client."""
    fd = client.fileno() if hasattr(client, "fileno") else _fd_of(client)
    if fd < 0:
        raise RuntimeError("the client has no connection to break")
    s = socket.socket(fileno=fd)
    try:
        s.shutdown(socket.SHUT_RDWR)
    finally:
        s.detach()


def _fd_of(client: Any) -> int:
    from . import mqlite_c as _c
    return int(_c.mqlite_client_fd(client._handle()))
