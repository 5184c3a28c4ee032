"""mqlite.Message: one application message received by a client.

Messages are built by the client from the C library's MESSAGE events
(topic and payload copied out of the C event, MQTT 5.0 properties decoded
by the C codec); this module only gives them a Python shape.
"""
from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

from . import mqlite_c as _c
from .packet import PropertyView, _prop_type, _PROPERTY_BY_ID

__all__ = ["Message", "EMPTY_PROPERTIES"]

#: The properties of a message that carries none (shared, read-only).
EMPTY_PROPERTIES: PropertyView = PropertyView(())

_PAIR = _c.MQLITE_PTYPE_PAIR
_UTF8 = _c.MQLITE_PTYPE_UTF8


def _props_from_c(items: Optional[List[Tuple[int, Any]]]) -> PropertyView:
    """A PropertyView from mqlite_c.props_list() output ((id, value) with
    bytes for strings); UTF-8 was validated by the C decoder."""
    if not items:
        return EMPTY_PROPERTIES
    out: List[Tuple[Any, Any]] = []
    for pid, value in items:
        t = _prop_type(pid)
        if t == _PAIR:
            value = (value[0].decode("utf-8"), value[1].decode("utf-8"))
        elif t == _UTF8:
            value = value.decode("utf-8")
        out.append((_PROPERTY_BY_ID.get(pid, pid), value))
    return PropertyView(tuple(out))


@dataclass(frozen=True, slots=True)
class Message:
    """An application message, as received.

    Attributes:
        topic: the topic name it was published to.
        payload: the payload, as bytes (see :attr:`text` and :meth:`json`).
        qos: the QoS it was delivered with (0, 1 or 2).
        retain: True for a retained message sent because of a subscription.
        dup: the DUP flag (a QoS 1/2 re-delivery attempt).
        properties: MQTT 5.0 properties, a read-only mapping
            (``msg.properties["content_type"]``) that keeps every property in
            order (``msg.properties.get_all("user")``, ``.pairs``).
        packet_id: the packet identifier of a QoS 1/2 delivery (0 for QoS 0).
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    properties: PropertyView = field(default=EMPTY_PROPERTIES, compare=True)
    packet_id: int = 0

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (raises UnicodeDecodeError if it is not)."""
        return self.payload.decode("utf-8")

    def json(self, **kwargs: Any) -> Any:
        """The payload parsed as JSON (``json.loads``, keyword arguments passed on)."""
        return _json.loads(self.payload, **kwargs)

    @property
    def user_properties(self) -> List[Tuple[str, str]]:
        """The 5.0 user properties as (key, value) pairs, in the order sent."""
        return self.properties.get_all("user")  # type: ignore[return-value]

    @property
    def content_type(self) -> Optional[str]:
        """The 5.0 Content Type, or None."""
        return self.properties.get("content_type")  # type: ignore[return-value]

    @property
    def response_topic(self) -> Optional[str]:
        """The 5.0 Response Topic (where a request wants its answer), or None."""
        return self.properties.get("response_topic")  # type: ignore[return-value]

    @property
    def correlation_data(self) -> Optional[bytes]:
        """The 5.0 Correlation Data (to give back with a response), or None."""
        return self.properties.get("correlation_data")  # type: ignore[return-value]

    @property
    def message_expiry(self) -> Optional[int]:
        """The 5.0 Message Expiry Interval left, in seconds, or None."""
        return self.properties.get("message_expiry")  # type: ignore[return-value]

    @property
    def subscription_ids(self) -> List[int]:
        """The 5.0 Subscription Identifiers of the subscriptions it matched."""
        return self.properties.get_all("subscription_id")  # type: ignore[return-value]

    def __repr__(self) -> str:
        p = self.payload if len(self.payload) <= 64 else self.payload[:64] + b"..."
        extra = ""
        if self.retain:
            extra += ", retain=True"
        if self.dup:
            extra += ", dup=True"
        if self.packet_id:
            extra += f", packet_id={self.packet_id}"
        if self.properties:
            extra += f", properties={list(self.properties.pairs)!r}"
        return f"Message(topic={self.topic!r}, payload={p!r}, qos={self.qos}{extra})"
