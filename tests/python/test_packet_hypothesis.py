"""Property tests of mqlite.packet with hypothesis.

* Round trips: strategies below generate valid packets of every type for
  protocol levels 3, 4 and 5 (valid topic names and filters, well-formed
  UTF-8, MQTT 5.0 properties allowed in the packet, user properties in order,
  reason codes allowed for the packet). Each is built, checked field by field
  against what the strategy asked for, encoded, decoded and compared.
* The decoder on hostile input: arbitrary bytes, and valid encodings with bit
  flips, truncations, remaining-length edits, inserted or deleted bytes. It
  must never crash (only ProtocolError subclasses), and whatever it accepts
  must re-encode (the encoder would not refuse it) and decode to an equal
  packet. A strict prefix of a valid packet is never a packet.

The property table and reason-code lists are written here from MQTT 5.0
Table 2-4 and chapter 3, independently of the C library's own tables.
Runs are derandomized (the same examples every run) and bounded.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import mqlite
from mqlite.packet import FIELDS, Packet, PacketType, Will, decode, decode_stream, encode

T = PacketType


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------
# Strings, topics, filters
# ---------------------------------------------------------------------------

# Well-formed UTF-8 without U+0000 (MQTT-1.5.4-1/2); surrogates cannot be
# encoded. Control characters and non-characters are allowed (non-strict).
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
LEVEL_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/+#")

utf8 = st.text(CHARS, max_size=6)
level = st.text(LEVEL_CHARS, max_size=5)
binary = st.binary(max_size=8)

topic_name = st.lists(level, min_size=1, max_size=4).map("/".join).filter(bool)


@st.composite
def topic_filter(draw: Any, version: int) -> str:
    levels = draw(st.lists(st.one_of(level, st.just("+")), max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    flt = "/".join(levels) or "#"    # at least one character (MQTT-4.7.3-1)
    if version == 5 and draw(st.integers(0, 3)) == 0:
        group = draw(st.text(LEVEL_CHARS, min_size=1, max_size=4))
        flt = f"$share/{group}/{flt}"
    return flt


# ---------------------------------------------------------------------------
# MQTT 5.0 properties (Table 2-4)
# ---------------------------------------------------------------------------

WILL = "will"
ACKS = {T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP}
U32 = 2 ** 32 - 1

VALUES = {
    "byte01": st.integers(0, 1),
    "u16": st.integers(0, 65535),
    "u16nz": st.integers(1, 65535),
    "u32": st.integers(0, U32),
    "u32nz": st.integers(1, U32),
    "vbi1": st.integers(1, 268435455),
    "utf8": utf8,
    "topic": topic_name,
    "bin": binary,
    "pair": st.tuples(utf8, utf8),
}

# name -> (value kind, where it may appear)
PROPS: Dict[str, Tuple[str, set]] = {
    "payload_format": ("byte01", {T.PUBLISH, WILL}),
    "message_expiry": ("u32", {T.PUBLISH, WILL}),
    "content_type": ("utf8", {T.PUBLISH, WILL}),
    "response_topic": ("topic", {T.PUBLISH, WILL}),
    "correlation_data": ("bin", {T.PUBLISH, WILL}),
    "subscription_id": ("vbi1", {T.PUBLISH, T.SUBSCRIBE}),
    "session_expiry": ("u32", {T.CONNECT, T.CONNACK, T.DISCONNECT}),
    "assigned_client_id": ("utf8", {T.CONNACK}),
    "server_keepalive": ("u16", {T.CONNACK}),
    "auth_method": ("utf8", {T.CONNECT, T.CONNACK, T.AUTH}),
    "auth_data": ("bin", {T.CONNECT, T.CONNACK, T.AUTH}),
    "request_problem_info": ("byte01", {T.CONNECT}),
    "will_delay": ("u32", {WILL}),
    "request_response_info": ("byte01", {T.CONNECT}),
    "response_info": ("utf8", {T.CONNACK}),
    "server_reference": ("utf8", {T.CONNACK, T.DISCONNECT}),
    "reason_string": ("utf8", {T.CONNACK, T.SUBACK, T.UNSUBACK, T.DISCONNECT, T.AUTH} | ACKS),
    "receive_max": ("u16nz", {T.CONNECT, T.CONNACK}),
    "topic_alias_max": ("u16", {T.CONNECT, T.CONNACK}),
    "topic_alias": ("u16nz", {T.PUBLISH}),
    "max_qos": ("byte01", {T.CONNACK}),
    "retain_available": ("byte01", {T.CONNACK}),
    "user": ("pair", set(T) - {T.PINGREQ, T.PINGRESP} | {WILL}),
    "max_packet_size": ("u32nz", {T.CONNECT, T.CONNACK}),
    "wildcard_sub_available": ("byte01", {T.CONNACK}),
    "sub_id_available": ("byte01", {T.CONNACK}),
    "shared_sub_available": ("byte01", {T.CONNACK}),
}


def test_property_table_matches_the_library_names():
    assert set(PROPS) == set(mqlite.packet.PROPERTY_NAMES)


@st.composite
def properties(draw: Any, ctx: Any, need: Tuple[str, ...] = ()) -> List[Tuple[str, Any]]:
    """A valid property list for context `ctx` (a packet type or WILL):
    each single-valued property at most once, user properties (and, in
    PUBLISH, Subscription Identifiers) repeated, everything in any order."""
    allowed = sorted(n for n, (_, where) in PROPS.items() if ctx in where and n != "user")
    chosen = set(draw(st.lists(st.sampled_from(allowed), unique=True, max_size=4))
                 if allowed else [])
    chosen.update(need)
    # MQTT 5.0 3.1.2.11.10 / 3.15.2.2: Authentication Data only with a
    # Method; AUTH always names its method.
    if "auth_data" in chosen or ctx == T.AUTH:
        chosen.add("auth_method")
    items = [(n, draw(VALUES[PROPS[n][0]])) for n in sorted(chosen)]
    if ctx == T.PUBLISH and "subscription_id" in chosen:
        items += [("subscription_id", draw(VALUES["vbi1"]))
                  for _ in range(draw(st.integers(0, 2)))]
    if ctx in PROPS["user"][1]:
        items += [("user", draw(VALUES["pair"])) for _ in range(draw(st.integers(0, 3)))]
    return draw(st.permutations(items)) if items else []


# ---------------------------------------------------------------------------
# Reason codes (MQTT 5.0 chapter 3; 3.1.1 CONNACK return codes and SUBACK)
# ---------------------------------------------------------------------------

REASONS_V5 = {
    T.CONNACK: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
                0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F],
    T.PUBACK: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
    T.PUBREC: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
    T.PUBREL: [0x00, 0x92],
    T.PUBCOMP: [0x00, 0x92],
    T.SUBACK: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2],
    T.UNSUBACK: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91],
    T.DISCONNECT: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
                   0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
                   0xA0, 0xA1, 0xA2],
    T.AUTH: [0x00, 0x18, 0x19],
}
CONNACK_V3 = list(range(6))
SUBACK_V3 = [0x00, 0x01, 0x02, 0x80]

packet_id = st.integers(1, 65535)


# ---------------------------------------------------------------------------
# Valid packets: (type, version, keyword arguments, expected fields)
# ---------------------------------------------------------------------------

@st.composite
def valid_packets(draw: Any, ptype: Any = None) -> Tuple[int, int, Dict[str, Any], Dict[str, Any]]:
    if ptype is None:
        ptype = draw(st.sampled_from(list(T)))
    version = 5 if ptype == T.AUTH else draw(st.sampled_from([3, 4, 5]))
    v5 = version == 5
    kw: Dict[str, Any] = {}
    exp: Dict[str, Any] = dict.fromkeys(FIELDS)
    exp["properties"] = ()

    def props(ctx: Any, need: Tuple[str, ...] = ()) -> None:
        if v5 and (need or draw(st.booleans())):
            kw["properties"] = draw(properties(ctx, need))
            exp["properties"] = tuple(kw["properties"])

    if ptype == T.CONNECT:
        kw["client_id"] = exp["client_id"] = draw(utf8)
        kw["clean_start"] = exp["clean_start"] = draw(st.booleans())
        kw["keepalive"] = exp["keepalive"] = draw(st.integers(0, 65535))
        if draw(st.booleans()):
            kw["username"] = exp["username"] = draw(utf8)
        # Before 5.0 a password needs a user name (3.1.1 MQTT-3.1.2-22).
        if (v5 or "username" in kw) and draw(st.booleans()):
            kw["password"] = exp["password"] = draw(binary)
        if draw(st.booleans()):
            wprops = draw(properties(WILL)) if v5 and draw(st.booleans()) else []
            w = Will(topic=draw(topic_name), payload=draw(binary), qos=draw(st.integers(0, 2)),
                     retain=draw(st.booleans()), properties=wprops)
            kw["will"] = exp["will"] = w
        exp.update(username=kw.get("username"), password=kw.get("password"),
                   will=kw.get("will"))
        props(T.CONNECT)
    elif ptype == T.CONNACK:
        code = draw(st.sampled_from(REASONS_V5[T.CONNACK] if v5 else CONNACK_V3))
        # A refusal never has Session Present (MQTT-3.2.2-4 / -6); 3.1 has none.
        present = code == 0 and version != 3 and draw(st.booleans())
        kw.update(reason_code=code, session_present=present)
        exp.update(reason_code=code, session_present=present)
        props(T.CONNACK)
    elif ptype == T.PUBLISH:
        qos = draw(st.integers(0, 2))
        kw.update(topic=draw(topic_name), payload=draw(st.binary(max_size=40)), qos=qos,
                  retain=draw(st.booleans()), dup=qos > 0 and draw(st.booleans()))
        if qos:
            kw["packet_id"] = draw(packet_id)
        props(T.PUBLISH)
        # 5.0: an empty topic name with a Topic Alias (3.3.2.1).
        if any(n == "topic_alias" for n, _ in kw.get("properties", ())) and draw(st.booleans()):
            kw["topic"] = ""
        exp.update({k: kw[k] for k in ("topic", "payload", "qos", "retain", "dup")},
                   packet_id=kw.get("packet_id", 0))
    elif ptype in ACKS:
        kw["packet_id"] = exp["packet_id"] = draw(packet_id)
        kw["reason_code"] = exp["reason_code"] = draw(st.sampled_from(REASONS_V5[ptype])) if v5 \
            else 0
        props(ptype)
    elif ptype in (T.SUBSCRIBE, T.UNSUBSCRIBE):
        kw["packet_id"] = exp["packet_id"] = draw(packet_id)
        entries = []
        for _ in range(draw(st.integers(1, 4))):
            flt = draw(topic_filter(version))
            opts = 0
            if ptype == T.SUBSCRIBE:
                opts = draw(st.integers(0, 2))
                if v5:
                    no_local = not flt.startswith("$share/") and draw(st.booleans())
                    opts |= (4 if no_local else 0) | (8 if draw(st.booleans()) else 0) \
                        | draw(st.integers(0, 2)) << 4
            entries.append((flt, opts))
        # Unsubscribe filters may be given alone.
        kw["topics"] = [f if ptype == T.UNSUBSCRIBE and draw(st.booleans()) else (f, o)
                        for f, o in entries]
        exp["topics"] = tuple(entries)
        props(ptype)
    elif ptype in (T.SUBACK, T.UNSUBACK):
        kw["packet_id"] = exp["packet_id"] = draw(packet_id)
        if ptype == T.SUBACK or v5:
            codes = REASONS_V5[ptype] if v5 else SUBACK_V3
            kw["reason_codes"] = draw(st.lists(st.sampled_from(codes), min_size=1, max_size=5))
            exp["reason_codes"] = tuple(kw["reason_codes"])
        props(ptype)
    elif ptype in (T.DISCONNECT, T.AUTH):
        code = draw(st.sampled_from(REASONS_V5[ptype])) if v5 else 0
        kw["reason_code"] = exp["reason_code"] = code
        props(ptype, ("auth_method",) if ptype == T.AUTH and code else ())
    # PINGREQ, PINGRESP: nothing.
    return int(ptype), version, kw, exp


def _vbi(data: bytes, at: int) -> Tuple[int, int]:
    """Variable Byte Integer at data[at:] -> (value, size); written here from
    MQTT 5.0 1.5.5 to check the encoder's fixed header independently."""
    value, mult, i = 0, 1, at
    while True:
        b = data[i]
        value += (b & 0x7F) * mult
        i += 1
        if not b & 0x80:
            return value, i - at
        mult *= 128


def _check_fields(p: Packet, ptype: int, version: int, exp: Dict[str, Any]) -> None:
    assert (int(p.type), p.version) == (ptype, version)
    assert {f: getattr(p, f) for f in FIELDS} == exp


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ptype", list(T), ids=[t.name for t in T])
@_settings(60)
@given(data=st.data())
def test_round_trip(ptype, data):
    ptype, version, kw, exp = data.draw(valid_packets(ptype))
    note(f"Packet({ptype}, {version}, **{kw!r})")
    p = Packet(ptype, version, **kw)
    _check_fields(p, ptype, version, exp)
    wire = encode(p)
    # The fixed header, checked without mqlite.
    assert wire[0] >> 4 == ptype
    length, size = _vbi(wire, 1)
    assert 1 + size + length == len(wire)
    q = decode(wire, version)
    _check_fields(q, ptype, version, exp)
    assert q == p and hash(q) == hash(p)
    assert encode(q) == wire                      # canonical: same bytes again
    assert Packet(q.type, q.version, **q.fields) == p
    assert eval(repr(q), {"Packet": Packet, "Will": Will}) == p
    # Two packets and a partial third in one stream.
    cut = data.draw(st.integers(0, len(wire) - 1))
    assert list(decode_stream(wire + wire + wire[:cut], version)) == [(p, len(wire))] * 2


@_settings(80)
@given(st.lists(valid_packets(), min_size=1, max_size=5), st.sampled_from([3, 4, 5]))
def test_streams_of_packets(cases, version):
    pkts = []
    for ptype, _, kw, _ in cases:
        if ptype in (T.CONNECT, T.AUTH):     # CONNECT sets the level; AUTH is 5.0 only
            continue
        try:
            pkts.append(Packet(ptype, version, **kw))
        except ValueError:
            continue  # e.g. 5.0 properties drawn for another level
    wire = b"".join(encode(p) for p in pkts)
    assert [p for p, _ in decode_stream(wire, version)] == pkts


# ---------------------------------------------------------------------------
# The decoder on hostile input
# ---------------------------------------------------------------------------

def _check_accepted(p: Packet, strict: bool) -> None:
    """A packet the decoder accepted: it re-encodes through the C setters and
    encoder, and what that gives decodes to an equal packet."""
    assert isinstance(p, Packet)
    wire = encode(p)
    q = decode(wire, p.version, strict_utf8=strict)
    assert q == p, (p, q)
    assert Packet(p.type, p.version, **p.fields) == p


def _check_decoder(data: bytes, version: int, strict: bool = False) -> List[Packet]:
    """Run both decoders over `data`; only ProtocolErrors may come out."""
    got: List[Packet] = []
    try:
        for p, used in decode_stream(data, version, strict_utf8=strict):
            assert 2 <= used <= len(data)
            _check_accepted(p, strict)
            got.append(p)
    except mqlite.ProtocolError as e:
        assert not isinstance(e, ValueError), e     # received bytes, not arguments
        assert e.name.startswith("MQLITE_ERR_") and e.name != "MQLITE_ERR_UNKNOWN", e
        assert e.message
    try:
        one = decode(data, version, strict_utf8=strict)
    except mqlite.ProtocolError as e:
        assert not isinstance(e, ValueError), e
    else:
        assert got[:1] == [one] and (not strict or decode(data, version) == one)
    return got


@_settings(400)
@given(st.binary(max_size=160), st.sampled_from([0, 3, 4, 5]), st.booleans())
def test_arbitrary_bytes_never_crash_the_decoder(data, version, strict):
    _check_decoder(data, version, strict)


@_settings(300)
@given(st.integers(0, 255), st.binary(max_size=60), st.sampled_from([3, 4, 5]))
def test_arbitrary_bodies_behind_a_valid_header(first, body, version):
    # Random first byte, a correct remaining length, random body: reaches
    # every packet type's body decoder far more often than random bytes.
    data = bytes([first, len(body)]) + body
    _check_decoder(data, version)


MUTATIONS = ["flip", "truncate", "length", "insert", "delete", "replace", "append"]


@pytest.mark.parametrize("ptype", list(T), ids=[t.name for t in T])
@_settings(50)
@given(data=st.data())
def test_mutated_valid_packets(ptype, data):
    ptype, version, kw, _ = data.draw(valid_packets(ptype))
    wire = encode(Packet(ptype, version, **kw))
    kind = data.draw(st.sampled_from(MUTATIONS))
    b = bytearray(wire)
    if kind == "truncate":
        n = data.draw(st.integers(0, len(b) - 1))
        # A strict prefix of a packet is never a packet, nor an error.
        assert list(decode_stream(wire[:n], version)) == []
        with pytest.raises(mqlite.MalformedPacketError) as ei:
            decode(wire[:n], version)
        assert ei.value.name == "MQLITE_ERR_TRUNCATED"
        return
    i = data.draw(st.integers(0, len(b) - 1))
    if kind == "flip":
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "length":
        _, size = _vbi(wire, 1)
        b[1 + data.draw(st.integers(0, size - 1))] = data.draw(st.integers(0, 255))
    elif kind == "insert":
        b.insert(i, data.draw(st.integers(0, 255)))
    elif kind == "delete":
        del b[i]
    elif kind == "replace":
        b[i] = data.draw(st.integers(0, 255))
    else:
        b += data.draw(st.binary(min_size=1, max_size=8))
    note(f"{kind}: {wire.hex()} -> {bytes(b).hex()}")
    got = _check_decoder(bytes(b), version)
    if kind == "append":
        assert got[:1] == [decode(wire, version)]
