"""mqlite.packet: MQTT control packets (protocol levels 3, 4 and 5) as Python
objects, encoded and decoded by mqlite's C codec.

    >>> from mqlite import packet
    >>> p = packet.Packet.publish(topic="a/b", payload=b"x", qos=1, packet_id=7,
    ...                           version=5, properties=[("user", ("k", "v"))])
    >>> data = packet.encode(p)
    >>> packet.decode(data, version=5) == p
    True

Every rule is the C library's: building a :class:`Packet` runs the C
setters and encoder (so a ``Packet`` object is always a packet mqlite can
send), :func:`decode` runs the C decoder, and this module only maps names
and Python types onto the C fields. Errors are :mod:`mqlite` exceptions
carrying the C error code and message: bytes that break a rule raise
:class:`~mqlite.ProtocolError` (:class:`~mqlite.MalformedPacketError` for
malformed ones); arguments that do raise ``ValueError``/``TypeError``
subclasses (:class:`~mqlite.InvalidPacketError`,
:class:`~mqlite.InvalidArgumentError`, :class:`~mqlite.UnknownFieldError`).

Strings (topics, client identifiers, user names, filters, UTF-8 properties)
are ``str``; payloads, passwords and binary properties are ``bytes``.
Properties are an ordered tuple of ``(name, value)`` pairs, names as in
:data:`PROPERTY_NAMES` (``"message_expiry"``, ``"user"``, ...); a user
property's value is a ``(key, value)`` pair, and repeated user properties
keep their order.
"""
from __future__ import annotations

import enum
import functools
import operator
from dataclasses import dataclass
from typing import (Any, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Tuple,
                    Union)

from . import mqlite_c as _c
from ._errors import (InvalidArgumentError, MalformedPacketError, MqliteError, UnknownFieldError,
                      error_for, from_c_error)

__all__ = [
    "PacketType",
    "Packet",
    "Will",
    "PropertyView",
    "PROPERTY_NAMES",
    "FIELDS",
    "decode",
    "decode_stream",
    "encode",
]


class PacketType(enum.IntEnum):
    """MQTT control packet types (fixed header bits 7-4)."""

    CONNECT = _c.MQLITE_PKT_CONNECT
    CONNACK = _c.MQLITE_PKT_CONNACK
    PUBLISH = _c.MQLITE_PKT_PUBLISH
    PUBACK = _c.MQLITE_PKT_PUBACK
    PUBREC = _c.MQLITE_PKT_PUBREC
    PUBREL = _c.MQLITE_PKT_PUBREL
    PUBCOMP = _c.MQLITE_PKT_PUBCOMP
    SUBSCRIBE = _c.MQLITE_PKT_SUBSCRIBE
    SUBACK = _c.MQLITE_PKT_SUBACK
    UNSUBSCRIBE = _c.MQLITE_PKT_UNSUBSCRIBE
    UNSUBACK = _c.MQLITE_PKT_UNSUBACK
    PINGREQ = _c.MQLITE_PKT_PINGREQ
    PINGRESP = _c.MQLITE_PKT_PINGRESP
    DISCONNECT = _c.MQLITE_PKT_DISCONNECT
    AUTH = _c.MQLITE_PKT_AUTH


#: Property name -> MQTT 5.0 property identifier, from mqlite.h's
#: ``MQLITE_PROP_*`` (``MQLITE_PROP_MESSAGE_EXPIRY`` is ``"message_expiry"``).
PROPERTY_NAMES: Mapping[str, int] = {
    n[len("MQLITE_PROP_"):].lower(): int(getattr(_c, n))
    for n in dir(_c) if n.startswith("MQLITE_PROP_")
}
_PROPERTY_BY_ID: Dict[int, str] = {v: k for k, v in PROPERTY_NAMES.items()}

#: A property value: int (integer types), str (UTF-8), bytes (binary) or a
#: (key, value) pair of str (user property).
PropertyValue = Union[int, str, bytes, Tuple[str, str]]
#: A normalized property list.
Properties = Tuple[Tuple[str, PropertyValue], ...]
#: What a property list may be given as: pairs of (name or id, value), or a
#: mapping (a list value there stands for repeated properties).
PropertiesArg = Union[Iterable[Tuple[Union[str, int], Any]], Mapping[Union[str, int], Any], None]
#: A topic filter entry: ``filter`` or ``(filter, options)``.
TopicArg = Union[str, Tuple[str, int]]
BytesLike = Union[bytes, bytearray, memoryview, str]


# ---------------------------------------------------------------------------
# Python values <-> C arguments (types only; the C side checks the rules)
# ---------------------------------------------------------------------------

def _utf8(value: Any, what: str) -> bytes:
    """A str as UTF-8 bytes for C to check. Lone surrogates are passed
    through (as their 3-byte forms) so that C rejects them with its code."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str, not {type(value).__name__}")


def _binary(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _int(value: Any, what: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None


def _text(b: bytes) -> str:
    # The C decoder validated it as MQTT UTF-8; strict decoding here means a
    # C check that let ill-formed UTF-8 through would not go unnoticed.
    return b.decode("utf-8")


def _arg_error(err: BaseException, what: str, cp: Any = None) -> MqliteError:
    """A caller-input exception from a mqlite_c.Error, with the packet's own
    message (which names the field and the rule) when it has one."""
    code, msg = err.args[0], (err.args[1] if len(err.args) > 1 else None)
    if cp is not None:
        detail = _c.mqlite_packet_errmsg(cp)
        if detail:
            # SWIG hands undecodable bytes over as surrogate escapes; the
            # message may quote the caller's bad input: show them escaped.
            msg = detail.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return error_for(code, f"{what}: {msg}" if msg else what, argument=True)


def _call(what: str, fn: Any, *args: Any, cp: Any = None) -> Any:
    try:
        return fn(*args)
    except _c.Error as e:
        raise _arg_error(e, what, cp) from None
    except OverflowError:
        raise error_for(_c.MQLITE_ERR_RANGE, f"{what}: value out of range", argument=True) from None


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

def _prop_id(key: Union[str, int]) -> int:
    if isinstance(key, str):
        name = key.strip().lower().replace(" ", "_").replace("-", "_")
        if name not in PROPERTY_NAMES:
            raise error_for(_c.MQLITE_ERR_PROPERTY_ID, f"unknown property name {key!r} "
                            f"(known: {', '.join(sorted(PROPERTY_NAMES))})", argument=True)
        return PROPERTY_NAMES[name]
    return _int(key, "property identifier")


def _prop_name(key: Union[str, int]) -> Union[str, int]:
    pid = _prop_id(key)
    return _PROPERTY_BY_ID.get(pid, pid)


@functools.lru_cache(maxsize=None)
def _prop_type(pid: int) -> int:
    """The C library's data type (MQLITE_PTYPE_*) of property `pid`."""
    return int(_call(f"property 0x{pid:02x}" if pid >= 0 else f"property {pid}",
                     _c.mqlite_property_type, pid))


def _iter_props(props: PropertiesArg) -> Iterator[Tuple[Union[str, int], Any]]:
    if props is None:
        return
    if isinstance(props, Mapping):
        for k, v in props.items():
            if isinstance(v, list):
                for item in v:
                    yield k, item
            else:
                yield k, v
        return
    for item in props:
        try:
            if isinstance(item, (str, bytes)):
                raise TypeError
            k, v = item
        except (TypeError, ValueError):
            raise TypeError(f"a property must be a (name, value) pair, not {item!r}") from None
        yield k, v


def _normalize_props(props: PropertiesArg) -> Properties:
    """Names normalized, pairs as tuples; values otherwise as given."""
    out: List[Tuple[Any, Any]] = []
    for k, v in _iter_props(props):
        name = _prop_name(k)
        if isinstance(name, str) and _prop_type(PROPERTY_NAMES[name]) == _c.MQLITE_PTYPE_PAIR \
                and isinstance(v, list):
            v = tuple(v)
        out.append((name, v))
    return tuple(out)  # type: ignore[return-value]


def _make_props(props: PropertiesArg) -> Any:
    """A new C property list (caller frees it with mqlite_props_free)."""
    pr = _c.mqlite_props_new()
    if pr is None:
        raise MemoryError("mqlite_props_new")
    try:
        for key, value in _iter_props(props):
            pid = _prop_id(key)
            name = _PROPERTY_BY_ID.get(pid, f"0x{pid:02x}")
            what = f"property {name}"
            t = _prop_type(pid)
            if t == _c.MQLITE_PTYPE_PAIR:
                try:
                    if isinstance(value, (str, bytes)):
                        raise TypeError
                    k, v = value
                except (TypeError, ValueError):
                    raise TypeError(f"{what} must be a (key, value) pair, not {value!r}") from None
                _call(what, _c.props_add_pair_buf, pr, _utf8(k, f"{what} key"),
                      _utf8(v, f"{what} value"))
            elif t == _c.MQLITE_PTYPE_UTF8:
                _call(what, _c.mqlite_props_add_bytes, pr, pid, _utf8(value, what))
            elif t == _c.MQLITE_PTYPE_BINARY:
                _call(what, _c.mqlite_props_add_bytes, pr, pid, _binary(value, what))
            else:
                _call(what, _c.mqlite_props_add_int, pr, pid, _int(value, what))
        return pr
    except BaseException:
        _c.mqlite_props_free(pr)
        raise


def _read_props(pr: Any) -> Properties:
    out = []
    for pid, value in _c.props_list(pr):
        t = _prop_type(pid)
        if t == _c.MQLITE_PTYPE_PAIR:
            value = (_text(value[0]), _text(value[1]))
        elif t == _c.MQLITE_PTYPE_UTF8:
            value = _text(value)
        out.append((_PROPERTY_BY_ID.get(pid, pid), value))
    return tuple(out)  # type: ignore[return-value]


class PropertyView(Mapping[str, PropertyValue]):
    """A read-only, dict-like view of a property list.

    ``view[name]`` is the first value of that property (names as in
    :data:`PROPERTY_NAMES`, or the numeric identifier); :meth:`get_all`
    gives every value in order, e.g. all user properties.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Properties) -> None:
        self._items = items

    def __getitem__(self, key: Union[str, int]) -> PropertyValue:  # type: ignore[override]
        name = _prop_name(key)
        for n, v in self._items:
            if n == name:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        seen: Dict[Any, None] = {}
        for n, _ in self._items:
            seen.setdefault(n)
        return iter(seen)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len({n for n, _ in self._items})

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, MqliteError, TypeError):
            return False
        return True

    def get_all(self, key: Union[str, int]) -> List[PropertyValue]:
        """Every value of property `key`, in packet order (empty if absent)."""
        name = _prop_name(key)
        return [v for n, v in self._items if n == name]

    @property
    def pairs(self) -> Properties:
        """Every property as ``(name, value)`` pairs, in packet order
        (repeated user properties included)."""
        return self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PropertyView):
            return self._items == other._items
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"PropertyView({list(self._items)!r})"


# ---------------------------------------------------------------------------
# Will
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Will:
    """The will message of a CONNECT packet.

    Attributes:
        topic: the will topic (a topic name).
        payload: the will message.
        qos: 0, 1 or 2.
        retain: the will retain flag.
        properties: MQTT 5.0 will properties (``will_delay``, ``message_expiry``,
            ``content_type``, ``user``, ...), as (name, value) pairs.
    """

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "properties", _normalize_props(self.properties))


def _as_will(value: Any) -> Will:
    if isinstance(value, Will):
        return value
    if isinstance(value, Mapping):
        return Will(**value)
    raise TypeError(f"will must be a Will or a mapping, not {type(value).__name__}")


# ---------------------------------------------------------------------------
# Packet
# ---------------------------------------------------------------------------

# Python field name -> (MQLITE_PF_*, Python type); the C library decides
# which packet types have which field.
_INT_FIELDS: Dict[str, Tuple[int, type]] = {
    "clean_start": (_c.MQLITE_PF_CLEAN_START, bool),
    "keepalive": (_c.MQLITE_PF_KEEPALIVE_S, int),
    "session_present": (_c.MQLITE_PF_SESSION_PRESENT, bool),
    "reason_code": (_c.MQLITE_PF_REASON_CODE, int),
    "qos": (_c.MQLITE_PF_QOS, int),
    "retain": (_c.MQLITE_PF_RETAIN, bool),
    "dup": (_c.MQLITE_PF_DUP, bool),
    "packet_id": (_c.MQLITE_PF_PACKET_ID, int),
}
_STR_FIELDS: Dict[str, int] = {
    "client_id": _c.MQLITE_PF_CLIENT_ID,
    "username": _c.MQLITE_PF_USERNAME,
    "topic": _c.MQLITE_PF_TOPIC,
}
_BIN_FIELDS: Dict[str, int] = {
    "password": _c.MQLITE_PF_PASSWORD,
    "payload": _c.MQLITE_PF_PAYLOAD,
}

#: Every packet field, in the order used for building, repr and equality.
FIELDS: Tuple[str, ...] = (
    "client_id", "clean_start", "keepalive", "username", "password", "will",
    "session_present", "reason_code", "topic", "payload", "qos", "retain", "dup",
    "packet_id", "topics", "reason_codes", "properties",
)


def _new_packet(ptype: int, version: int) -> Any:
    """mqlite_packet_new(): a new C packet (caller frees it), or raises."""
    try:
        res = _c.mqlite_packet_new(ptype, version)
    except OverflowError:
        res = _c.MQLITE_ERR_INVALID
    # SWIG returns [packet, err], or only err when the packet is NULL.
    cp, err = (res[0], res[1]) if isinstance(res, (list, tuple)) else (None, res)
    if cp is None:
        name = _c.mqlite_packet_type_name(ptype) if -2**31 <= ptype < 2**31 else "UNKNOWN"
        raise error_for(err, f"no {name} packet (type {ptype}) at protocol level {version}: "
                        f"{_c.mqlite_strerror(err)}", argument=True)
    return cp


@functools.lru_cache(maxsize=None)
def _layout(ptype: int, version: int) -> FrozenSet[str]:
    """The fields a packet of this type and level has, as the C library
    answers for a fresh packet (accessors refuse fields a type lacks)."""
    cp = _new_packet(ptype, version)
    have = {"properties"}
    try:
        for name, (f, _) in _INT_FIELDS.items():
            try:
                _c.mqlite_packet_int(cp, f)
                have.add(name)
            except _c.Error:
                pass
        for name, f in {**_STR_FIELDS, **_BIN_FIELDS}.items():
            try:
                _c.mqlite_packet_set_bytes(cp, f, None)
                have.add(name)
            except _c.Error:
                pass
        try:
            _c.mqlite_packet_int(cp, _c.MQLITE_PF_WILL)
            have.add("will")
        except _c.Error:
            pass
        try:
            _c.packet_add_topic_buf(cp, b"a", 0)
            have.add("topics")
        except _c.Error:
            pass
        try:
            _c.mqlite_packet_add_reason(cp, 0)
            have.add("reason_codes")
        except _c.Error:
            pass
    finally:
        _c.mqlite_packet_free(cp)
    return frozenset(have)


def _packet_type(value: Union[PacketType, str, int]) -> int:
    if isinstance(value, str):
        try:
            return int(PacketType[value.strip().upper()])
        except KeyError:
            raise InvalidArgumentError(_c.MQLITE_ERR_INVALID,
                                       f"unknown packet type {value!r}") from None
    return _int(value, "packet type")


def _apply(cp: Any, fields: Mapping[str, Any]) -> None:
    """Set `fields` on C packet `cp` through the C setters."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise UnknownFieldError(_c.MQLITE_ERR_OPTION,
                                f"not a packet field: {', '.join(sorted(unknown))}")
    for name in FIELDS:
        value = fields.get(name)
        if value is None:
            continue
        if name in _INT_FIELDS:
            _call(name, _c.mqlite_packet_set_int, cp, _INT_FIELDS[name][0], _int(value, name),
                  cp=cp)
        elif name in _STR_FIELDS:
            _call(name, _c.mqlite_packet_set_bytes, cp, _STR_FIELDS[name], _utf8(value, name),
                  cp=cp)
        elif name in _BIN_FIELDS:
            _call(name, _c.mqlite_packet_set_bytes, cp, _BIN_FIELDS[name], _binary(value, name),
                  cp=cp)
        elif name == "will":
            w = _as_will(value)
            _call("will.topic", _c.mqlite_packet_set_bytes, cp, _c.MQLITE_PF_WILL_TOPIC,
                  _utf8(w.topic, "will.topic"), cp=cp)
            _call("will.payload", _c.mqlite_packet_set_bytes, cp, _c.MQLITE_PF_WILL_PAYLOAD,
                  _binary(w.payload, "will.payload"), cp=cp)
            _call("will.qos", _c.mqlite_packet_set_int, cp, _c.MQLITE_PF_WILL_QOS,
                  _int(w.qos, "will.qos"), cp=cp)
            _call("will.retain", _c.mqlite_packet_set_int, cp, _c.MQLITE_PF_WILL_RETAIN,
                  _int(w.retain, "will.retain"), cp=cp)
            if w.properties:
                _set_props(cp, w.properties, "will.properties", _c.mqlite_packet_set_will_props)
        elif name == "topics":
            if isinstance(value, (str, bytes)):
                raise TypeError("topics must be a list of filters or (filter, options) pairs")
            for entry in value:
                flt, opts = (entry, 0) if isinstance(entry, (str, bytes)) else entry
                _call("topics", _c.packet_add_topic_buf, cp, _utf8(flt, "topic filter"),
                      _int(opts, "subscription options"), cp=cp)
        elif name == "reason_codes":
            if isinstance(value, (str, bytes)):
                raise TypeError("reason_codes must be a list of ints")
            for code in value:
                _call("reason_codes", _c.mqlite_packet_add_reason, cp, _int(code, "reason code"),
                      cp=cp)
        elif name == "properties":
            props = value if isinstance(value, Mapping) else list(_iter_props(value))
            if props:
                _set_props(cp, props, "properties", _c.mqlite_packet_set_props)


def _set_props(cp: Any, props: PropertiesArg, what: str, setter: Any) -> None:
    pr = _make_props(props)
    try:
        _call(what, setter, cp, pr, cp=cp)
    finally:
        _c.mqlite_props_free(pr)


def _encode_fields(ptype: int, version: int, fields: Mapping[str, Any]) -> bytes:
    """Build a C packet from Python fields and encode it (validating it)."""
    cp = _new_packet(ptype, _int(version, "version"))
    try:
        _apply(cp, fields)
        try:
            return bytes(_c.packet_encode(cp))
        except _c.Error as e:
            raise from_c_error(e, argument=True) from None
    finally:
        _c.mqlite_packet_free(cp)


def _decode_c(data: Any, version: int, flags: int, max_packet_size: int) -> Tuple[Any, int, int]:
    """One C packet (caller frees it) and the bytes it used, or (None, 0,
    need) when `data` holds only part of a packet; raises on errors."""
    try:
        cp, used, need, err = _c.packet_decode(data, _int(version, "version"), flags,
                                               _int(max_packet_size, "max_packet_size"))
    except OverflowError:
        raise error_for(_c.MQLITE_ERR_RANGE, "max_packet_size out of range",
                        argument=True) from None
    if err:
        raise error_for(err)
    return cp, used, need


class Packet:
    """One MQTT control packet: its type, protocol level and fields.

    Build one with keyword arguments, generically
    (``Packet("PUBLISH", version=5, topic="a/b", payload=b"x")``) or through
    the per-type constructors (:meth:`publish`, :meth:`connect`, ...); get
    one from :func:`decode`. Building runs the C codec's setters and encoder,
    so a ``Packet`` is always one mqlite would send, and its fields are what
    its bytes say (e.g. a QoS 0 PUBLISH has packet_id 0).

    Packets are immutable and hashable; :meth:`replace` makes a changed copy.
    Fields a packet type does not have are ``None``; so are an absent user
    name, password or will.

    Attributes:
        type: the :class:`PacketType`.
        version: protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).
        client_id, clean_start, keepalive, username, password, will: CONNECT.
        session_present: CONNACK.
        reason_code: CONNACK return/reason code; 5.0 acks, DISCONNECT, AUTH.
        topic, payload, qos, retain, dup: PUBLISH.
        packet_id: PUBLISH (0 at QoS 0), acks, (UN)SUBSCRIBE, (UN)SUBACK.
        topics: SUBSCRIBE/UNSUBSCRIBE: ``(filter, options)`` pairs (options
            is the SUBSCRIBE options byte; 0 for UNSUBSCRIBE).
        reason_codes: SUBACK, UNSUBACK (5.0).
        properties: MQTT 5.0 properties as ``(name, value)`` pairs, in order.
    """

    __slots__ = ("type", "version") + FIELDS + ("_wire",)

    type: PacketType
    version: int
    client_id: Optional[str]
    clean_start: Optional[bool]
    keepalive: Optional[int]
    username: Optional[str]
    password: Optional[bytes]
    will: Optional[Will]
    session_present: Optional[bool]
    reason_code: Optional[int]
    topic: Optional[str]
    payload: Optional[bytes]
    qos: Optional[int]
    retain: Optional[bool]
    dup: Optional[bool]
    packet_id: Optional[int]
    topics: Optional[Tuple[Tuple[str, int], ...]]
    reason_codes: Optional[Tuple[int, ...]]
    properties: Properties
    _wire: Optional[bytes]

    def __init__(self, type: Union[PacketType, str, int], version: int = 4,  # noqa: A002
                 **fields: Any) -> None:
        """Build a packet of `type` (name or number) at protocol level
        `version` from keyword fields (see the class attributes; ``None``
        means "not given"). Raises InvalidPacketError, InvalidArgumentError
        (ValueError) or UnknownFieldError (TypeError) with the C message."""
        ptype = _packet_type(type)
        wire = _encode_fields(ptype, version, fields)
        cp, used, _ = _decode_c(wire, version, 0, 0)
        if cp is None or used != len(wire):  # pragma: no cover - a codec bug
            if cp is not None:
                _c.mqlite_packet_free(cp)
            raise MalformedPacketError(_c.MQLITE_ERR_MALFORMED,
                                       f"mqlite cannot decode what it encoded: {wire!r}")
        try:
            self._fill(cp)
        finally:
            _c.mqlite_packet_free(cp)
        object.__setattr__(self, "_wire", wire)

    # -- reading a C packet ----------------------------------------------------

    def _fill(self, cp: Any) -> None:
        ptype = int(_c.mqlite_packet_int(cp, _c.MQLITE_PF_TYPE))
        version = int(_c.mqlite_packet_int(cp, _c.MQLITE_PF_VERSION))
        have = _layout(ptype, version)
        v: Dict[str, Any] = dict.fromkeys(FIELDS)
        for name, (f, kind) in _INT_FIELDS.items():
            if name in have:
                v[name] = kind(_c.mqlite_packet_int(cp, f))
        for name, f in _STR_FIELDS.items():
            if name in have:
                b = _c.packet_bytes(cp, f)
                v[name] = None if b is None else _text(b)
        for name, f in _BIN_FIELDS.items():
            if name in have:
                v[name] = _c.packet_bytes(cp, f)
        if "will" in have and _c.mqlite_packet_int(cp, _c.MQLITE_PF_WILL):
            v["will"] = Will(
                topic=_text(_c.packet_bytes(cp, _c.MQLITE_PF_WILL_TOPIC) or b""),
                payload=_c.packet_bytes(cp, _c.MQLITE_PF_WILL_PAYLOAD) or b"",
                qos=int(_c.mqlite_packet_int(cp, _c.MQLITE_PF_WILL_QOS)),
                retain=bool(_c.mqlite_packet_int(cp, _c.MQLITE_PF_WILL_RETAIN)),
                properties=_read_props(_c.mqlite_packet_will_props(cp)))
        n = int(_c.mqlite_packet_count(cp))
        if "topics" in have:
            sub = ptype == PacketType.SUBSCRIBE
            v["topics"] = tuple(
                (_text(_c.packet_topic_at(cp, i)),
                 int(_c.mqlite_packet_options_at(cp, i)) if sub else 0)
                for i in range(n))
        if "reason_codes" in have:
            v["reason_codes"] = tuple(int(_c.mqlite_packet_reason_at(cp, i)) for i in range(n))
        v["properties"] = _read_props(_c.mqlite_packet_props(cp))
        set_ = object.__setattr__
        set_(self, "type", PacketType(ptype))
        set_(self, "version", version)
        for name in FIELDS:
            set_(self, name, v[name])

    @classmethod
    def _from_c(cls, cp: Any) -> "Packet":
        p = cls.__new__(cls)
        p._fill(cp)
        object.__setattr__(p, "_wire", None)
        return p

    # -- value behaviour ---------------------------------------------------------

    @property
    def type_name(self) -> str:
        """The packet type's name, e.g. ``"PUBLISH"``."""
        return self.type.name

    @property
    def fields(self) -> Dict[str, Any]:
        """The packet's fields that are not ``None``, as keyword arguments."""
        return {k: getattr(self, k) for k in FIELDS if getattr(self, k) is not None}

    @property
    def props(self) -> PropertyView:
        """Dict-like access to :attr:`properties` (first value per name;
        ``props.get_all("user")`` for every user property)."""
        return PropertyView(self.properties)

    @property
    def filters(self) -> Tuple[str, ...]:
        """SUBSCRIBE/UNSUBSCRIBE: the topic filters alone (else empty)."""
        return tuple(f for f, _ in self.topics or ())

    def replace(self, **changes: Any) -> "Packet":
        """A new packet with some fields (or ``version``) changed; a field
        set to ``None`` goes back to its default/absent value."""
        version = changes.pop("version", self.version)
        fields = self.fields
        fields.update(changes)
        return Packet(self.type, version, **fields)

    def _key(self) -> Tuple[Any, ...]:
        return (int(self.type), self.version) + tuple(getattr(self, k) for k in FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        parts = [repr(self.type.name), f"version={self.version}"]
        for k in FIELDS:
            val = getattr(self, k)
            if val is None or (k == "properties" and not val):
                continue
            if isinstance(val, tuple) and k in ("topics", "reason_codes", "properties"):
                val = list(val)
            parts.append(f"{k}={val!r}")
        return f"Packet({', '.join(parts)})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Packet objects are immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Packet objects are immutable")

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_rebuild, (int(self.type), self.version, self.fields))

    # -- per-type constructors -------------------------------------------------

    @classmethod
    def connect(cls, *, client_id: str = "", version: int = 4,
                clean_start: Optional[bool] = None, keepalive: Optional[int] = None,
                username: Optional[str] = None, password: Optional[BytesLike] = None,
                will: Union[Will, Mapping[str, Any], None] = None,
                properties: PropertiesArg = None) -> "Packet":
        """CONNECT (``version`` 3, 4 or 5). clean_start (clean session
        before 5.0) and keepalive default to the codec's 1 and 60 s."""
        return cls(PacketType.CONNECT, version, client_id=client_id, clean_start=clean_start,
                   keepalive=keepalive, username=username, password=password, will=will,
                   properties=properties)

    @classmethod
    def connack(cls, *, session_present: bool = False, reason_code: int = 0, version: int = 4,
                properties: PropertiesArg = None) -> "Packet":
        """CONNACK: return code (3.x) or reason code (5.0)."""
        return cls(PacketType.CONNACK, version, session_present=session_present,
                   reason_code=reason_code, properties=properties)

    @classmethod
    def publish(cls, *, topic: str, payload: BytesLike = b"", qos: int = 0,
                retain: bool = False, dup: bool = False, packet_id: Optional[int] = None,
                version: int = 4, properties: PropertiesArg = None) -> "Packet":
        """PUBLISH; QoS 1 and 2 need a packet_id. A str payload is sent as
        UTF-8."""
        return cls(PacketType.PUBLISH, version, topic=topic, payload=payload, qos=qos,
                   retain=retain, dup=dup, packet_id=packet_id, properties=properties)

    @classmethod
    def puback(cls, *, packet_id: int, reason_code: int = 0, version: int = 4,
               properties: PropertiesArg = None) -> "Packet":
        """PUBACK (reason code and properties: 5.0 only)."""
        return cls(PacketType.PUBACK, version, packet_id=packet_id, reason_code=reason_code,
                   properties=properties)

    @classmethod
    def pubrec(cls, *, packet_id: int, reason_code: int = 0, version: int = 4,
               properties: PropertiesArg = None) -> "Packet":
        """PUBREC (reason code and properties: 5.0 only)."""
        return cls(PacketType.PUBREC, version, packet_id=packet_id, reason_code=reason_code,
                   properties=properties)

    @classmethod
    def pubrel(cls, *, packet_id: int, reason_code: int = 0, version: int = 4,
               properties: PropertiesArg = None) -> "Packet":
        """PUBREL (reason code and properties: 5.0 only)."""
        return cls(PacketType.PUBREL, version, packet_id=packet_id, reason_code=reason_code,
                   properties=properties)

    @classmethod
    def pubcomp(cls, *, packet_id: int, reason_code: int = 0, version: int = 4,
                properties: PropertiesArg = None) -> "Packet":
        """PUBCOMP (reason code and properties: 5.0 only)."""
        return cls(PacketType.PUBCOMP, version, packet_id=packet_id, reason_code=reason_code,
                   properties=properties)

    @classmethod
    def subscribe(cls, *, packet_id: int, topics: Iterable[TopicArg], version: int = 4,
                  properties: PropertiesArg = None) -> "Packet":
        """SUBSCRIBE: `topics` are filters or (filter, options byte) pairs
        (bits 0-1 maximum QoS; 5.0: bit 2 no local, bit 3 retain as
        published, bits 4-5 retain handling)."""
        return cls(PacketType.SUBSCRIBE, version, packet_id=packet_id, topics=topics,
                   properties=properties)

    @classmethod
    def suback(cls, *, packet_id: int, reason_codes: Iterable[int], version: int = 4,
               properties: PropertiesArg = None) -> "Packet":
        """SUBACK: one return/reason code per filter subscribed."""
        return cls(PacketType.SUBACK, version, packet_id=packet_id,
                   reason_codes=reason_codes, properties=properties)

    @classmethod
    def unsubscribe(cls, *, packet_id: int, topics: Iterable[TopicArg], version: int = 4,
                    properties: PropertiesArg = None) -> "Packet":
        """UNSUBSCRIBE: `topics` are topic filters."""
        return cls(PacketType.UNSUBSCRIBE, version, packet_id=packet_id, topics=topics,
                   properties=properties)

    @classmethod
    def unsuback(cls, *, packet_id: int, reason_codes: Iterable[int] = (), version: int = 4,
                 properties: PropertiesArg = None) -> "Packet":
        """UNSUBACK (reason codes and properties: 5.0 only)."""
        return cls(PacketType.UNSUBACK, version, packet_id=packet_id,
                   reason_codes=reason_codes, properties=properties)

    @classmethod
    def pingreq(cls, *, version: int = 4) -> "Packet":
        """PINGREQ."""
        return cls(PacketType.PINGREQ, version)

    @classmethod
    def pingresp(cls, *, version: int = 4) -> "Packet":
        """PINGRESP."""
        return cls(PacketType.PINGRESP, version)

    @classmethod
    def disconnect(cls, *, reason_code: int = 0, version: int = 4,
                   properties: PropertiesArg = None) -> "Packet":
        """DISCONNECT (reason code and properties: 5.0 only)."""
        return cls(PacketType.DISCONNECT, version, reason_code=reason_code,
                   properties=properties)

    @classmethod
    def auth(cls, *, reason_code: int = 0, version: int = 5,
             properties: PropertiesArg = None) -> "Packet":
        """AUTH (MQTT 5.0 only, hence ``version=5`` by default)."""
        return cls(PacketType.AUTH, version, reason_code=reason_code, properties=properties)


def _rebuild(ptype: int, version: int, fields: Dict[str, Any]) -> Packet:
    return Packet(ptype, version, **fields)


# ---------------------------------------------------------------------------
# Bytes <-> packets
# ---------------------------------------------------------------------------

def _nbytes(data: Any) -> int:
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    if isinstance(data, memoryview):
        return data.nbytes
    raise TypeError(f"expected bytes, bytearray or memoryview, not {type(data).__name__}")


def _flags(strict_utf8: bool) -> int:
    return int(_c.MQLITE_DECODE_STRICT_UTF8) if strict_utf8 else 0


def encode(packet: Packet) -> bytes:
    """The wire bytes of `packet`, written by the C encoder."""
    if not isinstance(packet, Packet):
        raise TypeError(f"encode() needs a Packet, not {type(packet).__name__}")
    wire = packet._wire
    if wire is None:
        wire = _encode_fields(int(packet.type), packet.version, packet.fields)
        object.__setattr__(packet, "_wire", wire)
    return wire


def decode(data: Union[bytes, bytearray, memoryview], version: int = 4, *,
           strict_utf8: bool = False, max_packet_size: int = 0) -> Packet:
    """Decode `data`, which must hold exactly one whole packet.

    Args:
        data: the packet's bytes.
        version: protocol level of the connection (3, 4 or 5; 0 = unknown,
            only CONNECT can then be read). A CONNECT's own level wins.
        strict_utf8: also refuse control characters and non-characters in
            strings (MQLITE_DECODE_STRICT_UTF8).
        max_packet_size: largest packet accepted, checked from the fixed
            header alone (0 = MQTT's limit).
    Raises:
        MalformedPacketError: malformed bytes (also for an incomplete packet,
            code MQLITE_ERR_TRUNCATED, and bytes after it, MQLITE_ERR_TRAILING).
        ProtocolError: a protocol error (MQTT 5.0 reason code 0x82 or finer).
    """
    n = _nbytes(data)
    cp, used, need = _decode_c(data, version, _flags(strict_utf8), max_packet_size)
    if cp is None:
        detail = "the fixed header is incomplete" if need == n + 1 \
            else f"the packet needs {need} bytes"
        raise MalformedPacketError(_c.MQLITE_ERR_TRUNCATED,
                                   f"incomplete packet: {n} bytes, {detail}")
    try:
        p = Packet._from_c(cp)
    finally:
        _c.mqlite_packet_free(cp)
    if used != n:
        raise MalformedPacketError(
            _c.MQLITE_ERR_TRAILING, f"{n - used} bytes after the {p.type.name} packet "
            f"(decode_stream() reads several packets)")
    return p


def decode_stream(data: Union[bytes, bytearray, memoryview], version: int = 4, *,
                  strict_utf8: bool = False,
                  max_packet_size: int = 0) -> Iterator[Tuple[Packet, int]]:
    """Decode the packets at the start of a byte stream.

    Yields ``(packet, used)`` per packet, `used` being that packet's size in
    bytes, and stops at an incomplete tail (so ``sum(used)`` is what to drop
    from a receive buffer). After a CONNECT, its protocol level is used for
    the packets that follow (pass ``version=0`` when it is not known yet).
    Raises as :func:`decode` for a packet that breaks a rule (after yielding
    the packets before it).
    """
    _nbytes(data)
    buf = memoryview(bytes(data))
    off = 0
    while off < len(buf):
        cp, used, _ = _decode_c(buf[off:], version, _flags(strict_utf8), max_packet_size)
        if cp is None:
            return
        try:
            p = Packet._from_c(cp)
        finally:
            _c.mqlite_packet_free(cp)
        if p.type == PacketType.CONNECT:
            version = p.version
        off += used
        yield p, used
