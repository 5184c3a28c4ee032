"""mqlite.packet: every packet type at every protocol level through the Python
API, byte-exact against vectors written here from the specifications' packet
layouts (and their non-normative examples), plus the mapping of C errors to
Python exceptions.

Expected bytes are written by hand from MQTT 3.1 / 3.1.1 / 5.0 chapter 3, not
produced by mqlite; a test of a normative statement is marked with its id
(../shared/spec/).
"""
from __future__ import annotations

import builtins
import gc
import os
import pickle

import pytest

import mqlite
from mqlite import mqlite_c as m
from mqlite import packet as P
from mqlite.packet import Packet, PacketType, Will, decode, decode_stream, encode


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


spec = pytest.mark.spec

# ---------------------------------------------------------------------------
# Byte-exact vectors: (id, packet builder, protocol level, wire bytes)
# ---------------------------------------------------------------------------

VECTORS = [
    # -- CONNECT ---------------------------------------------------------------
    # MQTT 3.1.1 3.1.2.10, Figure 3.6: "MQTT", level 4, flags 0xCE (user name,
    # password, will QoS 1, will, clean session), keep alive 10.
    ("connect-v311-spec-example",
     lambda: Packet.connect(client_id="cid", keepalive=10, username="u", password=b"p",
                            will=Will("w", b"m", qos=1)), 4,
     "10 1b 0004 4d515454 04 ce 000a 0003 636964 0001 77 0001 6d 0001 75 0001 70"),
    # MQTT 5.0 3.1.2.11, Figure 3-? example: as above, level 5, properties
    # length 5: Session Expiry Interval 10; empty will properties.
    ("connect-v5-spec-example",
     lambda: Packet.connect(client_id="cid", keepalive=10, username="u", password=b"p",
                            will=Will("w", b"m", qos=1), version=5,
                            properties=[("session_expiry", 10)]), 5,
     "10 22 0004 4d515454 05 ce 000a 05 11 0000000a 0003 636964"
     " 00 0001 77 0001 6d 0001 75 0001 70"),
    # MQTT 3.1: protocol name "MQIsdp", level 3; clean session, keep alive 60.
    ("connect-v31-minimal", lambda: Packet.connect(client_id="abc", version=3), 3,
     "10 11 0006 4d5149736470 03 02 003c 0003 616263"),
    ("connect-v31-will-retain-user",
     lambda: Packet.connect(client_id="c", version=3, clean_start=False, keepalive=0,
                            username="us", will=Will("a/b", b"", qos=2, retain=True)), 3,
     # flags: user 0x80 | will retain 0x20 | will QoS 2 0x10 | will 0x04 = 0xb4
     "10 1a 0006 4d5149736470 03 b4 0000 0001 63 0003 612f62 0000 0002 7573"),
    ("connect-v311-empty-client-id", lambda: Packet.connect(), 4,
     "10 0c 0004 4d515454 04 02 003c 0000"),
    # 5.0: a password without a user name is allowed (3.1.2.9).
    ("connect-v5-password-only",
     lambda: Packet.connect(client_id="x", version=5, clean_start=False, keepalive=30,
                            password=b"\x00\xff",
                            properties=[("receive_max", 20), ("user", ("a", "b")),
                                        ("user", ("a", "c"))]), 5,
     "10 23 0004 4d515454 05 40 001e 11 21 0014 26 0001 61 0001 62 26 0001 61 0001 63"
     " 0001 78 0002 00ff"),
    ("connect-v5-will-properties",
     lambda: Packet.connect(client_id="", version=5,
                            will=Will("t", b"bye", properties=[("will_delay", 5),
                                                               ("content_type", "text")])), 5,
     "10 22 0004 4d515454 05 06 003c 00 0000 0c 18 00000005 03 0004 74657874"
     " 0001 74 0003 627965"),
    # -- CONNACK ---------------------------------------------------------------
    ("connack-v311-session-present", lambda: Packet.connack(session_present=True), 4,
     "20 02 01 00"),
    ("connack-v311-refused", lambda: Packet.connack(reason_code=5), 4, "20 02 00 05"),
    ("connack-v31-refused", lambda: Packet.connack(reason_code=2, version=3), 3, "20 02 00 02"),
    ("connack-v5-success", lambda: Packet.connack(version=5), 5, "20 03 00 00 00"),
    ("connack-v5-properties",
     lambda: Packet.connack(version=5, properties=[("assigned_client_id", "x"), ("max_qos", 1),
                                                   ("receive_max", 10)]), 5,
     "20 0c 00 00 09 12 0001 78 24 01 21 000a"),
    ("connack-v5-refused", lambda: Packet.connack(version=5, reason_code=0x87), 5,
     "20 03 00 87 00"),
    # -- PUBLISH ---------------------------------------------------------------
    # MQTT 3.1.1 3.3.2.3, Figure 3.11: topic "a/b", packet identifier 10.
    ("publish-v311-spec-example",
     lambda: Packet.publish(topic="a/b", payload=b"hi", qos=1, packet_id=10), 4,
     "32 09 0003 612f62 000a 6869"),
    ("publish-v311-qos0-retain", lambda: Packet.publish(topic="a/b", retain=True), 4,
     "31 05 0003 612f62"),
    ("publish-v311-qos2-dup",
     lambda: Packet.publish(topic="a/b", qos=2, dup=True, packet_id=1), 4,
     "3c 07 0003 612f62 0001"),
    ("publish-v31-qos1", lambda: Packet.publish(topic="x", payload=b"\x00", qos=1,
                                                packet_id=0xffff, version=3), 3,
     "32 06 0001 78 ffff 00"),
    # MQTT 5.0 3.3.2.3, Figure 3-9: topic "a/b", packet id 10, no properties.
    ("publish-v5-spec-example", lambda: Packet.publish(topic="a/b", qos=1, packet_id=10,
                                                       version=5), 5,
     "32 08 0003 612f62 000a 00"),
    ("publish-v5-properties",
     lambda: Packet.publish(topic="a/b", payload=b"x", qos=1, packet_id=7, version=5,
                            properties=[("user", ("k", "v")), ("message_expiry", 30)]), 5,
     "32 15 0003 612f62 0007 0c 26 0001 6b 0001 76 02 0000001e 78"),
    ("publish-v5-topic-alias-only",
     lambda: Packet.publish(topic="", payload=b"z", version=5,
                            properties=[("topic_alias", 3)]), 5,
     "30 07 0000 03 23 0003 7a"),
    ("publish-v5-many-properties",
     lambda: Packet.publish(topic="t", qos=2, packet_id=2, version=5, properties=[
         ("payload_format", 1), ("response_topic", "r/t"), ("correlation_data", b"\x01"),
         ("subscription_id", 128), ("subscription_id", 1)]), 5,
     "34 17 0001 74 0002 11 01 01 08 0003 722f74 09 0001 01 0b 8001 0b 01"),
    # -- PUBACK / PUBREC / PUBREL / PUBCOMP -----------------------------------------
    ("puback-v311", lambda: Packet.puback(packet_id=7), 4, "40 02 0007"),
    ("pubrec-v311", lambda: Packet.pubrec(packet_id=7), 4, "50 02 0007"),
    ("pubrel-v311", lambda: Packet.pubrel(packet_id=7), 4, "62 02 0007"),
    ("pubcomp-v311", lambda: Packet.pubcomp(packet_id=7), 4, "70 02 0007"),
    ("puback-v31", lambda: Packet.puback(packet_id=0x1234, version=3), 3, "40 02 1234"),
    ("pubrel-v31", lambda: Packet.pubrel(packet_id=1, version=3), 3, "62 02 0001"),
    ("pubrec-v31", lambda: Packet.pubrec(packet_id=2, version=3), 3, "50 02 0002"),
    ("pubcomp-v31", lambda: Packet.pubcomp(packet_id=3, version=3), 3, "70 02 0003"),
    # MQTT 5.0 3.4.2.1: reason code 0 without properties may be omitted.
    ("puback-v5-short", lambda: Packet.puback(packet_id=7, version=5), 5, "40 02 0007"),
    ("puback-v5-reason", lambda: Packet.puback(packet_id=7, reason_code=0x10, version=5), 5,
     "40 03 0007 10"),
    ("pubrec-v5-reason-string",
     lambda: Packet.pubrec(packet_id=7, reason_code=0x80, version=5,
                           properties=[("reason_string", "no")]), 5,
     "50 09 0007 80 05 1f 0002 6e6f"),
    ("pubrel-v5-not-found", lambda: Packet.pubrel(packet_id=7, reason_code=0x92, version=5), 5,
     "62 03 0007 92"),
    ("pubcomp-v5-user", lambda: Packet.pubcomp(packet_id=7, version=5,
                                               properties=[("user", ("", ""))]), 5,
     "70 09 0007 00 05 26 0000 0000"),
    # -- SUBSCRIBE ---------------------------------------------------------------
    # MQTT 3.1.1 3.8.3, Figure 3.22: "a/b" QoS 1, "c/d" QoS 2; packet id 10.
    ("subscribe-v311-spec-example",
     lambda: Packet.subscribe(packet_id=10, topics=[("a/b", 1), ("c/d", 2)]), 4,
     "82 0e 000a 0003 612f62 01 0003 632f64 02"),
    ("subscribe-v31-wildcards",
     lambda: Packet.subscribe(packet_id=1, topics=["+/#"], version=3), 3,
     "82 08 0001 0003 2b2f23 00"),
    # 5.0: options 0x2d = QoS 1 | no local | retain as published | retain
    # handling 2; a shared subscription; Subscription Identifier 5.
    ("subscribe-v5-options",
     lambda: Packet.subscribe(packet_id=10, version=5, topics=[("a/b", 0x2d), ("$share/g/x", 1)],
                              properties=[("subscription_id", 5), ("user", ("a", "b"))]), 5,
     "82 1f 000a 09 0b 05 26 0001 61 0001 62 0003 612f62 2d 000a 2473686172652f672f78 01"),
    # -- SUBACK ------------------------------------------------------------------
    # MQTT 3.1.1 3.9.3, Figure 3.26: 0x00, 0x01, 0x02, 0x80.
    ("suback-v311-spec-example",
     lambda: Packet.suback(packet_id=10, reason_codes=[0, 1, 2, 0x80]), 4,
     "90 06 000a 00 01 02 80"),
    ("suback-v31", lambda: Packet.suback(packet_id=3, reason_codes=[1], version=3), 3,
     "90 03 0003 01"),
    ("suback-v5",
     lambda: Packet.suback(packet_id=10, reason_codes=[0, 1, 2, 0x80, 0x87, 0xa2], version=5), 5,
     "90 09 000a 00 00 01 02 80 87 a2"),
    # -- UNSUBSCRIBE / UNSUBACK ----------------------------------------------------
    # MQTT 3.1.1 3.10.3, Figure 3.28: "a/b", "c/d".
    ("unsubscribe-v311-spec-example",
     lambda: Packet.unsubscribe(packet_id=10, topics=["a/b", "c/d"]), 4,
     "a2 0c 000a 0003 612f62 0003 632f64"),
    ("unsubscribe-v5", lambda: Packet.unsubscribe(packet_id=10, topics=["a/b", "c/d"],
                                                  version=5), 5,
     "a2 0d 000a 00 0003 612f62 0003 632f64"),
    ("unsubscribe-v31", lambda: Packet.unsubscribe(packet_id=9, topics=["$SYS/#"], version=3), 3,
     "a2 0a 0009 0006 2453595 32f23"),
    ("unsuback-v311", lambda: Packet.unsuback(packet_id=10), 4, "b0 02 000a"),
    ("unsuback-v31", lambda: Packet.unsuback(packet_id=10, version=3), 3, "b0 02 000a"),
    ("unsuback-v5", lambda: Packet.unsuback(packet_id=10, reason_codes=[0, 0x11], version=5), 5,
     "b0 05 000a 00 00 11"),
    # -- PINGREQ / PINGRESP / DISCONNECT / AUTH --------------------------------------
    ("pingreq-v311", lambda: Packet.pingreq(), 4, "c0 00"),
    ("pingresp-v311", lambda: Packet.pingresp(), 4, "d0 00"),
    ("pingreq-v31", lambda: Packet.pingreq(version=3), 3, "c0 00"),
    ("pingresp-v31", lambda: Packet.pingresp(version=3), 3, "d0 00"),
    ("pingreq-v5", lambda: Packet.pingreq(version=5), 5, "c0 00"),
    ("pingresp-v5", lambda: Packet.pingresp(version=5), 5, "d0 00"),
    ("disconnect-v311", lambda: Packet.disconnect(), 4, "e0 00"),
    ("disconnect-v31", lambda: Packet.disconnect(version=3), 3, "e0 00"),
    # MQTT 5.0 3.14.2.1: reason 0 without properties may be omitted.
    ("disconnect-v5-normal", lambda: Packet.disconnect(version=5), 5, "e0 00"),
    ("disconnect-v5-with-will", lambda: Packet.disconnect(reason_code=4, version=5), 5,
     "e0 01 04"),
    ("disconnect-v5-reason-string",
     lambda: Packet.disconnect(reason_code=0x8e, version=5, properties=[("reason_string", "x")]),
     5, "e0 06 8e 04 1f 0001 78"),
    # MQTT 5.0 3.15.2.1: AUTH success without properties has Remaining Length 0.
    ("auth-v5-success", lambda: Packet.auth(), 5, "f0 00"),
    ("auth-v5-continue",
     lambda: Packet.auth(reason_code=0x18, properties=[("auth_method", "SCRAM"),
                                                       ("auth_data", b"\x01\x02")]), 5,
     "f0 0f 18 0d 15 0005 5343524 14d 16 0002 0102"),
]


@pytest.mark.parametrize("build,version,wire", [v[1:] for v in VECTORS],
                         ids=[v[0] for v in VECTORS])
def test_vector_encodes_byte_exact_and_decodes_back(build, version, wire):
    p = build()
    assert p.version == version
    assert encode(p).hex() == h(wire).hex()
    q = decode(h(wire), version)
    assert q == p
    assert repr(q) == repr(p)
    # A decoded packet is re-encoded through the C setters, not from a cache.
    assert encode(q) == h(wire)


def test_every_type_and_level_has_a_vector():
    seen = set()
    for _, build, version, _wire in VECTORS:
        p = build()
        seen.add((p.type, version))
    expected = {(t, v) for t in PacketType for v in (3, 4, 5)
                if not (t == PacketType.AUTH and v < 5)}
    assert expected - seen == set()


def test_decoded_fields_of_a_connect():
    p = decode(h(VECTORS[0][3]), 4)
    assert (p.type, p.type_name, p.version) == (PacketType.CONNECT, "CONNECT", 4)
    assert p.client_id == "cid" and p.keepalive == 10 and p.clean_start is True
    assert p.username == "u" and p.password == b"p"
    assert p.will == Will(topic="w", payload=b"m", qos=1, retain=False)
    # Fields CONNECT does not have are None.
    assert p.topic is None and p.packet_id is None and p.topics is None
    assert p.properties == ()


def test_decoded_fields_of_a_v5_publish():
    p = decode(h("32 15 0003 612f62 0007 0c 26 0001 6b 0001 76 02 0000001e 78"), 5)
    assert (p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id) == ("a/b", b"x", 1, False,
                                                                          False, 7)
    assert p.properties == (("user", ("k", "v")), ("message_expiry", 30))
    assert p.props["message_expiry"] == 30
    assert p.props[m.MQLITE_PROP_MESSAGE_EXPIRY] == 30
    assert p.props.get_all("user") == [("k", "v")]
    assert "content_type" not in p.props and "user" in p.props
    assert p.client_id is None and p.will is None and p.reason_code is None


def test_levels_3_and_4_share_every_encoding_but_connect():
    for name, build, version, wire in VECTORS:
        p = build()
        if version != 4 or p.type == PacketType.CONNECT or p.session_present:
            continue  # (MQTT 3.1 has no Session Present flag)
        q = p.replace(version=3)
        assert q.version == 3
        assert encode(q) == h(wire), name


@pytest.mark.parametrize("body_len,header", [
    (0x00, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
    (2097151, "ffff7f"), (2097152, "80808001"),
])
def test_remaining_length_encoding_table(body_len, header):
    # MQTT 3.1.1 Table 2.4, MQTT 5.0 Table 1-1 (Variable Byte Integer sizes).
    if body_len == 0:
        data = encode(Packet.pingreq())
        assert data == h("c0" + header)
        return
    p = Packet.publish(topic="t", payload=b"\xa5" * (body_len - 3))
    data = encode(p)
    assert data[:1 + len(header) // 2] == h("30" + header)
    assert len(data) == 1 + len(header) // 2 + body_len
    assert decode(data) == p


def test_largest_remaining_length_is_read_from_the_header():
    # 268435455 (0xff 0xff 0xff 0x7f) is the largest Remaining Length: the
    # decoder asks for the whole packet (1 + 4 + 268435455 bytes).
    with pytest.raises(mqlite.MalformedPacketError) as ei:
        decode(h("30 ffffff7f"))
    assert ei.value.name == "MQLITE_ERR_TRUNCATED"
    assert "268435460" in ei.value.message
    assert list(decode_stream(h("30 ffffff7f 0003"))) == []


# ---------------------------------------------------------------------------
# Normative statements: bytes the decoder must refuse, and what it raises
# ---------------------------------------------------------------------------

MALFORMED = "malformed"
PROTOCOL = "protocol"

# (spec marks, version, bytes, error name, kind)
REFUSED = [
    ([("3.1.1", "MQTT-3.3.1-4"), ("5.0", "MQTT-3.3.1-4")], 4, "36 07 0003 612f62 0001",
     "MQLITE_ERR_QOS3", MALFORMED),
    ([("3.1.1", "MQTT-3.3.1-2"), ("5.0", "MQTT-3.3.1-2")], 4, "38 05 0003 612f62",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-3.6.1-1"), ("5.0", "MQTT-3.6.1-1")], 5, "60 02 0001",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-3.8.1-1"), ("5.0", "MQTT-3.8.1-1")], 4, "80 08 0001 0003 612f62 00",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-3.10.1-1"), ("5.0", "MQTT-3.10.1-1")], 4, "a0 07 0001 0003 612f62",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-2.2.2-1"), ("5.0", "MQTT-2.1.3-1")], 4, "c1 00",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-3.14.1-1"), ("5.0", "MQTT-3.14.1-1")], 5, "e2 00",
     "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("5.0", "MQTT-3.15.1-1")], 5, "f1 00", "MQLITE_ERR_HEADER_FLAGS", MALFORMED),
    ([("5.0", "MQTT-1.5.5-1")], 4, "c0 8000", "MQLITE_ERR_REMLEN_NOT_MINIMAL", MALFORMED),
    ([], 4, "30 ffffffff01", "MQLITE_ERR_REMLEN_TOO_LONG", MALFORMED),
    # Packet identifiers.
    ([("3.1.1", "MQTT-2.3.1-1"), ("5.0", "MQTT-2.2.1-3")], 4, "82 08 0000 0003 612f62 00",
     "MQLITE_ERR_PACKET_ID_ZERO", PROTOCOL),
    ([("3.1.1", "MQTT-2.3.1-1"), ("5.0", "MQTT-2.2.1-3")], 5, "32 08 0003 612f62 0000 00",
     "MQLITE_ERR_PACKET_ID_ZERO", PROTOCOL),
    # UTF-8 strings (CONNECT client identifier).
    ([("3.1.1", "MQTT-1.5.3-2"), ("5.0", "MQTT-1.5.4-2")], 4,
     "10 0f 0004 4d515454 04 02 003c 0003 610062", "MQLITE_ERR_UTF8_NULL", MALFORMED),
    ([("3.1.1", "MQTT-1.5.3-1"), ("5.0", "MQTT-1.5.4-1")], 4,
     "10 0f 0004 4d515454 04 02 003c 0003 eda080", "MQLITE_ERR_UTF8_SURROGATE", MALFORMED),
    ([("3.1.1", "MQTT-1.5.3-1"), ("5.0", "MQTT-1.5.4-1")], 4,
     "10 0e 0004 4d515454 04 02 003c 0002 c080", "MQLITE_ERR_UTF8", MALFORMED),
    # CONNECT flags, protocol name and level.
    ([("3.1.1", "MQTT-3.1.2-3"), ("5.0", "MQTT-3.1.2-3")], 4,
     "10 0c 0004 4d515454 04 03 003c 0000", "MQLITE_ERR_CONNECT_RESERVED", MALFORMED),
    ([("3.1.1", "MQTT-3.1.2-11"), ("3.1.1", "MQTT-3.1.2-13"), ("5.0", "MQTT-3.1.2-11")], 4,
     "10 0c 0004 4d515454 04 0a 003c 0000", "MQLITE_ERR_WILL_FLAGS", MALFORMED),
    ([("5.0", "MQTT-3.1.2-13")], 5,
     "10 0d 0004 4d515454 05 22 003c 00 0000", "MQLITE_ERR_WILL_FLAGS", MALFORMED),
    ([("3.1.1", "MQTT-3.1.2-14")], 4,
     "10 11 0004 4d515454 04 1e 003c 0000 0001 74 0000", "MQLITE_ERR_WILL_QOS3", MALFORMED),
    ([("3.1.1", "MQTT-3.1.2-22")], 4,
     "10 0f 0004 4d515454 04 42 003c 0000 0001 70", "MQLITE_ERR_PASSWORD_NO_USER", MALFORMED),
    ([("5.0", "MQTT-3.1.2-1")], 5,
     "10 0d 0004 4d515458 05 02 003c 00 0000", "MQLITE_ERR_PROTOCOL_NAME", MALFORMED),
    ([("3.1.1", "MQTT-3.1.2-2")], 4,
     "10 0c 0004 4d515454 03 02 003c 0000", "MQLITE_ERR_PROTOCOL_LEVEL", PROTOCOL),
    # CONNACK: a refusal never has Session Present.
    ([("3.1.1", "MQTT-3.2.2-4"), ("5.0", "MQTT-3.2.2-6")], 4, "20 02 01 05",
     "MQLITE_ERR_CONNACK_FLAGS", MALFORMED),
    # Topic names and filters.
    ([("3.1.1", "MQTT-3.3.2-2"), ("5.0", "MQTT-3.3.2-2"), ("3.1.1", "MQTT-4.7.1-1"),
      ("5.0", "MQTT-4.7.0-1")], 4, "30 05 0003 612f2b", "MQLITE_ERR_TOPIC_NAME", MALFORMED),
    ([("3.1.1", "MQTT-4.7.3-1"), ("5.0", "MQTT-4.7.3-1")], 4, "30 02 0000",
     "MQLITE_ERR_TOPIC_NAME", MALFORMED),
    ([("3.1.1", "MQTT-4.7.1-2"), ("5.0", "MQTT-4.7.1-1")], 4, "82 0a 0001 0005 612f232f62 00",
     "MQLITE_ERR_TOPIC_FILTER", MALFORMED),
    ([("3.1.1", "MQTT-4.7.1-3"), ("5.0", "MQTT-4.7.1-2")], 4, "82 08 0001 0003 612b62 00",
     "MQLITE_ERR_TOPIC_FILTER", MALFORMED),
    ([("5.0", "MQTT-4.8.2-1")], 5, "82 0f 0001 00 0009 247368617265 2f2f61 00",
     "MQLITE_ERR_TOPIC_FILTER", MALFORMED),
    ([("5.0", "MQTT-4.8.2-2")], 5, "82 11 0001 00 000b 247368617265 2f672b2f61 00",
     "MQLITE_ERR_TOPIC_FILTER", MALFORMED),
    # SUBSCRIBE / UNSUBSCRIBE payloads.
    ([("3.1.1", "MQTT-3.8.3-3"), ("5.0", "MQTT-3.8.3-2")], 4, "82 02 000a",
     "MQLITE_ERR_SUBSCRIBE_EMPTY", PROTOCOL),
    ([("3.1.1", "MQTT-3.10.3-2"), ("5.0", "MQTT-3.10.3-2")], 5, "a2 03 000a 00",
     "MQLITE_ERR_UNSUBSCRIBE_EMPTY", PROTOCOL),
    ([("3.1.1", "MQTT-3.8.3-4")], 4, "82 08 0001 0003 612f62 04", "MQLITE_ERR_SUB_OPTIONS",
     MALFORMED),
    ([("3.1.1", "MQTT-3.8.3-4")], 4, "82 08 0001 0003 612f62 03", "MQLITE_ERR_SUB_QOS3",
     MALFORMED),
    ([("5.0", "MQTT-3.8.3-5")], 5, "82 09 0001 00 0003 612f62 40", "MQLITE_ERR_SUB_OPTIONS",
     MALFORMED),
    ([], 5, "82 09 0001 00 0003 612f62 03", "MQLITE_ERR_SUB_QOS_INVALID", PROTOCOL),
    ([], 5, "82 09 0001 00 0003 612f62 30", "MQLITE_ERR_RETAIN_HANDLING", PROTOCOL),
    ([("5.0", "MQTT-3.8.3-4")], 5, "82 10 0001 00 000a 2473686172652f672f78 04",
     "MQLITE_ERR_NO_LOCAL_SHARED", PROTOCOL),
    ([("3.1.1", "MQTT-3.9.3-2")], 4, "90 03 0001 03", "MQLITE_ERR_SUBACK_CODE", MALFORMED),
    # MQTT 5.0 properties.
    ([("5.0", "MQTT-2.2.2-1")], 5, "30 05 0003 612f62", "MQLITE_ERR_TRUNCATED", MALFORMED),
    ([("5.0", "MQTT-3.3.2-8")], 5, "30 09 0003 612f62 03 230000", "MQLITE_ERR_TOPIC_ALIAS",
     PROTOCOL),
    ([("5.0", "MQTT-3.3.2-14")], 5, "30 0d 0003 612f62 07 08 0004 612f2b2f",
     "MQLITE_ERR_PROPERTY_VALUE", PROTOCOL),
    ([], 5, "30 10 0003 612f62 0a 02 00000001 02 00000002", "MQLITE_ERR_PROPERTY_DUPLICATE",
     PROTOCOL),
    ([], 5, "30 0b 0003 612f62 05 11 0000000a", "MQLITE_ERR_PROPERTY_PACKET", MALFORMED),
    ([], 5, "30 08 0003 612f62 02 05 00", "MQLITE_ERR_PROPERTY_ID", MALFORMED),
    ([], 5, "30 08 0003 612f62 02 01 02", "MQLITE_ERR_PROPERTY_VALUE", PROTOCOL),
    # The first packet of a connection is CONNECT: without a level, nothing
    # else can be read.
    ([("3.1.1", "MQTT-3.1.0-1"), ("5.0", "MQTT-3.1.0-1")], 0, "c0 00",
     "MQLITE_ERR_UNEXPECTED_PACKET", PROTOCOL),
    # AUTH does not exist before 5.0 (3.1.1 2.2.1: type 15 is reserved).
    ([], 4, "f0 00", "MQLITE_ERR_PACKET_TYPE", MALFORMED),
    ([], 4, "00 00", "MQLITE_ERR_PACKET_TYPE", MALFORMED),
    # Leftover bytes inside a packet.
    ([], 4, "40 03 0001 00", "MQLITE_ERR_TRAILING", MALFORMED),
]


def _refused_params():
    out = []
    for marks, version, wire, name, kind in REFUSED:
        out.append(pytest.param(version, wire, name, kind,
                                marks=[spec(v, i) for v, i in marks],
                                id=f"{name[len('MQLITE_ERR_'):].lower()}-{wire[:2]}-v{version}"))
    return out


@pytest.mark.parametrize("version,wire,name,kind", _refused_params())
def test_decoder_refuses(version, wire, name, kind):
    with pytest.raises(mqlite.ProtocolError) as ei:
        decode(h(wire), version)
    e = ei.value
    assert e.name == name
    assert e.code == getattr(m, name)
    assert e.message == m.mqlite_strerror(e.code)
    assert str(e) == f"{e.message} [{name}]"
    if kind == MALFORMED:
        assert isinstance(e, mqlite.MalformedPacketError)
        assert e.reason_code == 0x81 or name in ("MQLITE_ERR_TOPIC_NAME", "MQLITE_ERR_TOPIC_FILTER")
    else:
        assert not isinstance(e, mqlite.MalformedPacketError)
        assert e.reason_code != 0x81
    # Codec errors on received bytes are not argument errors.
    assert not isinstance(e, ValueError)
    # The stream decoder raises the same, after the packets before it.
    if version:
        it = decode_stream(encode(Packet.pingreq(version=version)) + h(wire), version)
        assert next(it)[0].type == PacketType.PINGREQ
        with pytest.raises(mqlite.ProtocolError) as ei2:
            next(it)
        assert ei2.value.name == name


def test_reason_codes_of_errors_are_the_c_librarys():
    # 0x81 malformed, 0x82 protocol error, precise codes where they exist.
    cases = {"36 07 0003 612f62 0001": 0x81, "82 03 000a 00": 0x82,
             "30 06 0003 612f2b 00": 0x90, "30 09 0003 612f62 03 230000": 0x94}
    for wire, reason in cases.items():
        with pytest.raises(mqlite.ProtocolError) as ei:
            decode(h(wire), 5)
        assert ei.value.reason_code == reason, wire


def test_v5_accepts_a_password_without_user_name():
    p = decode(h("10 10 0004 4d515454 05 42 003c 00 0000 0001 70"), 5)
    assert p.username is None and p.password == b"p"


def test_protocol_level_comes_from_connect():
    p = decode(h("10 11 0006 4d5149736470 03 02 003c 0003 616263"), 5)
    assert p.version == 3
    with pytest.raises(mqlite.ProtocolError) as ei:
        decode(h("10 11 0006 4d5149736470 04 02 003c 0003 616263"), 0)
    assert ei.value.name == "MQLITE_ERR_PROTOCOL_LEVEL"


@spec("3.1.1", "MQTT-1.5.3-3")
@spec("5.0", "MQTT-1.5.4-3")
def test_bom_is_kept_in_strings():
    p = decode(h("30 08 0006 efbbbf612f62"))
    assert p.topic == "\ufeffa/b"


def test_strict_utf8_refuses_control_characters():
    wire = h("30 05 0003 61 01 62")   # topic "a\x01b"
    assert decode(wire).topic == "a\x01b"
    with pytest.raises(mqlite.MalformedPacketError) as ei:
        decode(wire, strict_utf8=True)
    assert ei.value.name == "MQLITE_ERR_UTF8_CONTROL"


def test_max_packet_size_is_checked_from_the_fixed_header():
    # Only the fixed header of a 203-byte PUBLISH is there.
    with pytest.raises(mqlite.ProtocolError) as ei:
        decode(h("30 c801"), max_packet_size=64)
    assert ei.value.name == "MQLITE_ERR_PACKET_TOO_LARGE"
    assert ei.value.reason_code == 0x95
    data = encode(Packet.publish(topic="t", payload=b"x" * 59))   # 64 bytes
    assert len(data) == 64
    assert decode(data, max_packet_size=64).payload == b"x" * 59
    with pytest.raises(mqlite.ProtocolError):
        decode(data, max_packet_size=63)


def test_incomplete_and_trailing_input():
    data = encode(Packet.publish(topic="a/b", payload=b"xyz", qos=1, packet_id=5))
    for n in range(len(data)):
        with pytest.raises(mqlite.MalformedPacketError) as ei:
            decode(data[:n])
        assert ei.value.name == "MQLITE_ERR_TRUNCATED"
    with pytest.raises(mqlite.MalformedPacketError) as ei:
        decode(data + b"\xc0")
    assert ei.value.name == "MQLITE_ERR_TRAILING"


# ---------------------------------------------------------------------------
# decode_stream
# ---------------------------------------------------------------------------

def test_decode_stream_splits_packets_and_stops_at_an_incomplete_tail():
    pkts = [Packet.connect(client_id="c", version=5),
            Packet.publish(topic="a", payload=b"1", version=5, properties=[("user", ("k", "v"))]),
            Packet.subscribe(packet_id=1, topics=[("#", 2)], version=5),
            Packet.pingreq(version=5)]
    data = b"".join(encode(p) for p in pkts)
    tail = encode(Packet.disconnect(reason_code=4, version=5))
    # version=0: the CONNECT's level (5) is used for what follows.
    out = list(decode_stream(data + tail[:1], 0))
    assert [p for p, _ in out] == pkts
    assert [n for _, n in out] == [len(encode(p)) for p in pkts]
    assert sum(n for _, n in out) == len(data)
    assert list(decode_stream(b"")) == []
    assert [p for p, _ in decode_stream(bytearray(tail), 5)] == [decode(tail, 5)]
    assert [p for p, _ in decode_stream(memoryview(data)[len(encode(pkts[0])):], 5)] == pkts[1:]


# ---------------------------------------------------------------------------
# Building packets: argument errors carry the C code and message
# ---------------------------------------------------------------------------

def _raises(exc, name, fn):
    with pytest.raises(exc) as ei:
        fn()
    assert ei.value.name == name, ei.value
    assert ei.value.code == getattr(m, name)
    assert ei.value.message
    return ei.value


def test_argument_errors_are_value_errors_with_the_c_message():
    e = _raises(mqlite.InvalidArgumentError, "MQLITE_ERR_RANGE",
                lambda: Packet.publish(topic="a", qos=3))
    assert isinstance(e, ValueError) and isinstance(e, mqlite.MqliteError)
    assert "MQLITE_PF_QOS must be 0..2, not 3" in e.message     # the packet's C message
    _raises(ValueError, "MQLITE_ERR_RANGE", lambda: Packet.puback(packet_id=65536))
    _raises(ValueError, "MQLITE_ERR_RANGE", lambda: Packet.puback(packet_id=-1))
    _raises(ValueError, "MQLITE_ERR_RANGE", lambda: Packet.puback(packet_id=2 ** 70))
    _raises(ValueError, "MQLITE_ERR_RANGE", lambda: Packet.connect(keepalive=65536))
    _raises(ValueError, "MQLITE_ERR_RANGE",
            lambda: Packet.publish(topic="a", version=5, properties=[("message_expiry", -1)]))
    _raises(ValueError, "MQLITE_ERR_INVALID", lambda: Packet.suback(packet_id=1, reason_codes=[]))
    _raises(ValueError, "MQLITE_ERR_INVALID", lambda: Packet("PUBLISHX", topic="a"))
    _raises(ValueError, "MQLITE_ERR_INVALID", lambda: Packet(16))
    _raises(ValueError, "MQLITE_ERR_INVALID", lambda: Packet.auth(version=4))
    _raises(ValueError, "MQLITE_ERR_INVALID", lambda: Packet.pingreq(version=6))
    e = _raises(ValueError, "MQLITE_ERR_UNSUPPORTED",
                lambda: Packet.publish(topic="a", properties=[("message_expiry", 1)]))
    assert not isinstance(e, mqlite.ProtocolError)


def test_unknown_fields_are_type_errors():
    e = _raises(mqlite.UnknownFieldError, "MQLITE_ERR_OPTION",
                lambda: Packet("PUBLISH", topic="a", client_id="x"))
    assert isinstance(e, TypeError) and isinstance(e, ValueError)
    assert "not part of PUBLISH" in e.message
    _raises(TypeError, "MQLITE_ERR_OPTION", lambda: Packet("PUBLISH", topic="a", colour="red"))
    _raises(TypeError, "MQLITE_ERR_OPTION",
            lambda: Packet("PUBLISH", topic="a", will=Will("w")))
    _raises(TypeError, "MQLITE_ERR_OPTION",
            lambda: Packet("PUBLISH", topic="a", topics=[("a", 0)]))
    _raises(TypeError, "MQLITE_ERR_OPTION",
            lambda: Packet("UNSUBACK", packet_id=1, reason_codes=[0]))  # none before 5.0
    with pytest.raises(TypeError):
        Packet.publish(topic=5)
    with pytest.raises(TypeError):
        Packet.publish(topic="a", payload=12)
    with pytest.raises(TypeError):
        Packet.puback(packet_id="7")


@spec("3.1.1", "MQTT-4.7.1-1")
@spec("5.0", "MQTT-4.7.0-1")
@spec("3.1.1", "MQTT-4.7.3-2")
@spec("5.0", "MQTT-4.7.3-2")
@spec("3.1.1", "MQTT-1.5.3-1")
@spec("5.0", "MQTT-1.5.4-1")
def test_codec_rules_on_arguments_are_invalid_packet_errors():
    e = _raises(mqlite.InvalidPacketError, "MQLITE_ERR_TOPIC_NAME",
                lambda: Packet.publish(topic="a/+"))
    assert isinstance(e, ValueError) and isinstance(e, mqlite.ProtocolError)
    assert not isinstance(e, mqlite.MalformedPacketError)
    assert '"a/+"' in e.message
    _raises(mqlite.InvalidPacketError, "MQLITE_ERR_UTF8_NULL", lambda: Packet.publish(topic="a\0b"))
    e = _raises(mqlite.InvalidPacketError, "MQLITE_ERR_UTF8_SURROGATE",
                lambda: Packet.publish(topic="a\ud800"))
    assert "\\xed\\xa0\\x80" in e.message and str(e).encode()
    _raises(ValueError, "MQLITE_ERR_UTF8_SURROGATE", lambda: Packet.connect(client_id="\udfff"))
    _raises(ValueError, "MQLITE_ERR_UTF8_NULL", lambda: Packet.connect(username="\0"))
    _raises(ValueError, "MQLITE_ERR_TOPIC_NAME", lambda: Packet.publish(topic=""))
    _raises(ValueError, "MQLITE_ERR_PACKET_ID_ZERO",
            lambda: Packet.publish(topic="a", qos=1))
    _raises(ValueError, "MQLITE_ERR_HEADER_FLAGS", lambda: Packet.publish(topic="a", dup=True))
    _raises(ValueError, "MQLITE_ERR_PASSWORD_NO_USER", lambda: Packet.connect(password=b"p"))
    _raises(ValueError, "MQLITE_ERR_TOPIC_NAME", lambda: Packet.connect(will=Will("#")))
    _raises(ValueError, "MQLITE_ERR_CONNACK_FLAGS",
            lambda: Packet.connack(reason_code=1, session_present=True))
    _raises(ValueError, "MQLITE_ERR_REASON_CODE", lambda: Packet.connack(reason_code=6))
    _raises(ValueError, "MQLITE_ERR_REASON_CODE",
            lambda: Packet.puback(packet_id=1, reason_code=0x92, version=5))
    _raises(ValueError, "MQLITE_ERR_SUBACK_CODE",
            lambda: Packet.suback(packet_id=1, reason_codes=[3]))
    # Topic filters: also NUL and surrogates, which a C string cannot carry.
    e = _raises(ValueError, "MQLITE_ERR_TOPIC_FILTER",
                lambda: Packet.subscribe(packet_id=1, topics=["a/#/b"]))
    assert '"a/#/b"' in e.message
    _raises(ValueError, "MQLITE_ERR_UTF8_NULL",
            lambda: Packet.subscribe(packet_id=1, topics=["a\0b"]))
    _raises(ValueError, "MQLITE_ERR_UTF8_SURROGATE",
            lambda: Packet.unsubscribe(packet_id=1, topics=["\ud800"]))
    _raises(ValueError, "MQLITE_ERR_SUBSCRIBE_EMPTY",
            lambda: Packet.subscribe(packet_id=1, topics=[]))
    _raises(ValueError, "MQLITE_ERR_RANGE",
            lambda: Packet.unsubscribe(packet_id=1, topics=[("a", 1)]))
    _raises(ValueError, "MQLITE_ERR_NO_LOCAL_SHARED",
            lambda: Packet.subscribe(packet_id=1, topics=[("$share/g/a", 4)], version=5))


def test_property_errors():
    _raises(ValueError, "MQLITE_ERR_PROPERTY_ID",
            lambda: Packet.publish(topic="a", version=5, properties=[("colour", 1)]))
    _raises(ValueError, "MQLITE_ERR_PROPERTY_ID",
            lambda: Packet.publish(topic="a", version=5, properties=[(0x05, 1)]))
    e = _raises(ValueError, "MQLITE_ERR_PROPERTY_PACKET",
                lambda: Packet.publish(topic="a", version=5, properties=[("session_expiry", 1)]))
    assert "Session Expiry Interval" in e.message
    _raises(ValueError, "MQLITE_ERR_PROPERTY_PACKET",
            lambda: Packet.pingreq(version=5).replace(properties=[("user", ("a", "b"))]))
    _raises(ValueError, "MQLITE_ERR_PROPERTY_DUPLICATE",
            lambda: Packet.publish(topic="a", version=5,
                                   properties=[("content_type", "a"), ("content_type", "b")]))
    _raises(ValueError, "MQLITE_ERR_PROPERTY_VALUE",
            lambda: Packet.connack(version=5, properties=[("receive_max", 0)]))
    _raises(ValueError, "MQLITE_ERR_TOPIC_ALIAS",
            lambda: Packet.publish(topic="a", version=5, properties=[("topic_alias", 0)]))
    _raises(ValueError, "MQLITE_ERR_UTF8_NULL",
            lambda: Packet.publish(topic="a", version=5, properties=[("user", ("a\0", "b"))]))
    _raises(ValueError, "MQLITE_ERR_UTF8_NULL",
            lambda: Packet.publish(topic="a", version=5, properties=[("user", ("a", "\0"))]))
    _raises(ValueError, "MQLITE_ERR_UTF8_SURROGATE",
            lambda: Packet.publish(topic="a", version=5, properties=[("user", ("\ud800", "b"))]))
    _raises(ValueError, "MQLITE_ERR_UTF8_NULL",
            lambda: Packet.publish(topic="a", version=5, properties=[("content_type", "\0")]))
    _raises(ValueError, "MQLITE_ERR_PROPERTY_PACKET",
            lambda: Packet.connect(version=5, will=Will("w", properties=[("session_expiry", 1)])))
    with pytest.raises(TypeError):
        Packet.publish(topic="a", version=5, properties=[("user", "kv")])
    with pytest.raises(TypeError):
        Packet.publish(topic="a", version=5, properties=[("message_expiry", "30")])
    with pytest.raises(TypeError):
        Packet.publish(topic="a", version=5, properties=["user"])


@spec("5.0", "MQTT-2.2.1-2")
def test_qos0_publish_carries_no_packet_identifier():
    p = Packet.publish(topic="a", qos=0, packet_id=9)
    assert encode(p) == h("30 03 0001 61")
    assert p.packet_id == 0


# ---------------------------------------------------------------------------
# The Packet object
# ---------------------------------------------------------------------------

def test_properties_keep_order_and_repeated_user_properties():
    props = [("user", ("k", "1")), ("content_type", "text/plain"), ("user", ("k", "2")),
             ("user", ("a", "")), ("correlation_data", b"\x00\x01"), ("subscription_id", 7),
             ("user", ("k", "1"))]
    p = Packet.publish(topic="a", version=5, properties=props)
    assert p.properties == tuple(props)
    q = decode(encode(p), 5)
    assert q.properties == tuple(props)
    assert q.props.get_all("user") == [("k", "1"), ("k", "2"), ("a", ""), ("k", "1")]
    assert q.props["user"] == ("k", "1")
    assert list(q.props) == ["user", "content_type", "correlation_data", "subscription_id"]
    assert len(q.props) == 4
    with pytest.raises(KeyError):
        q.props["message_expiry"]
    # Ids, names in other spellings, and a mapping are all accepted.
    r = Packet.publish(topic="a", version=5, properties={
        m.MQLITE_PROP_USER: [("k", "1"), ("k", "2")], "Content-Type": "x"})
    assert r.properties == (("user", ("k", "1")), ("user", ("k", "2")), ("content_type", "x"))


def test_property_names_come_from_the_header():
    assert P.PROPERTY_NAMES["message_expiry"] == 0x02
    assert P.PROPERTY_NAMES["user"] == 0x26
    assert P.PROPERTY_NAMES["shared_sub_available"] == 0x2A
    assert len(P.PROPERTY_NAMES) == 27   # MQTT 5.0 Table 2-4


def test_packet_is_an_immutable_hashable_value():
    p = Packet.publish(topic="a/b", payload=b"x", qos=1, packet_id=7, version=5,
                       properties=[("user", ("k", "v")), ("message_expiry", 30)])
    same = Packet("PUBLISH", version=5, topic="a/b", payload=b"x", qos=1, packet_id=7,
                  properties=[("user", ("k", "v")), ("message_expiry", 30)])
    assert p == same and hash(p) == hash(same) and len({p, same}) == 1
    assert p != p.replace(packet_id=8)
    assert p != p.replace(properties=[("message_expiry", 30), ("user", ("k", "v"))])
    assert p != Packet.publish(topic="a/b", payload=b"x", qos=1, packet_id=7, version=4)
    assert p != "PUBLISH"
    with pytest.raises(AttributeError):
        p.qos = 2
    with pytest.raises(AttributeError):
        del p.topic
    assert eval(repr(p), {"Packet": Packet, "Will": Will}) == p
    assert pickle.loads(pickle.dumps(p)) == p
    assert p.replace(qos=2).qos == 2 and p.qos == 1
    assert p.replace(version=4, properties=None) == Packet.publish(
        topic="a/b", payload=b"x", qos=1, packet_id=7)
    assert p.fields["topic"] == "a/b" and "client_id" not in p.fields
    assert Packet(3, topic="t") == Packet(PacketType.PUBLISH, topic="t") \
        == Packet("publish", topic="t") == Packet(type="PUBLISH", topic="t")


def test_will_and_defaults():
    c = Packet.connect(client_id="x", will={"topic": "w/t", "payload": b"bye", "qos": 2,
                                            "retain": True})
    assert c.will == Will("w/t", b"bye", 2, True)
    assert (c.clean_start, c.keepalive) == (True, 60)   # the codec's defaults
    assert c.replace(will=None).will is None
    assert c.replace(clean_start=False).clean_start is False
    w = Packet.connect(version=5, will=Will("w", properties=[(0x18, 3)])).will
    assert w.properties == (("will_delay", 3),)
    assert Packet.subscribe(packet_id=1, topics=["a", ("b", 1)]).topics == (("a", 0), ("b", 1))
    assert Packet.subscribe(packet_id=1, topics=["a", ("b", 1)]).filters == ("a", "b")
    assert Packet.unsubscribe(packet_id=1, topics=["a", ("b", 0)]).topics == (("a", 0), ("b", 0))
    assert Packet.pingreq().fields == {"properties": ()}


def test_payload_and_binary_accept_buffers_and_str():
    a = Packet.publish(topic="a", payload=bytearray(b"\xff\x00"))
    b = Packet.publish(topic="a", payload=memoryview(b"\xff\x00"))
    assert a == b and a.payload == b"\xff\x00" and type(a.payload) is bytes
    assert Packet.publish(topic="a", payload="é").payload == "é".encode()


def test_decoding_a_long_form_gives_the_same_packet_as_the_short_form():
    # MQTT 5.0 3.4.2.1 / 3.14.2.1: reason code 0 and an empty property
    # block may be written out; the packet is the same.
    long_puback = decode(h("40 04 0007 00 00"), 5)
    assert long_puback == Packet.puback(packet_id=7, version=5)
    assert encode(long_puback) == h("40 02 0007")
    assert decode(h("e0 02 00 00"), 5) == Packet.disconnect(version=5)


def test_type_errors():
    with pytest.raises(TypeError):
        encode(b"\xc0\x00")
    with pytest.raises(TypeError):
        decode("\xc0\x00")
    with pytest.raises(TypeError):
        list(decode_stream([0xc0, 0]))
    with pytest.raises(TypeError):
        Packet.subscribe(packet_id=1, topics="a/b")
    with pytest.raises(TypeError):
        Packet.suback(packet_id=1, reason_codes=b"\x00")
    # A str is one filter only inside the list.
    assert Packet.subscribe(packet_id=1, topics=("a/b",)).topics == (("a/b", 0),)


# ---------------------------------------------------------------------------
# The exception hierarchy
# ---------------------------------------------------------------------------

def test_exception_hierarchy():
    E = mqlite
    assert issubclass(E.ProtocolError, E.MqliteError)
    assert issubclass(E.MalformedPacketError, E.ProtocolError)
    assert issubclass(E.InvalidPacketError, E.ProtocolError)
    assert issubclass(E.InvalidPacketError, ValueError)
    assert issubclass(E.InvalidArgumentError, ValueError)
    assert issubclass(E.UnknownFieldError, TypeError)
    assert issubclass(E.ConnectionLostError, builtins.ConnectionError)
    assert issubclass(E.TimeoutError, builtins.TimeoutError)
    assert E.TimeoutError is not builtins.TimeoutError
    assert issubclass(E.QueueFullError, E.MqliteError)
    for cls in (E.ConnectionLostError, E.QueueFullError, E.TimeoutError, E.InvalidArgumentError):
        assert issubclass(cls, E.MqliteError) and not issubclass(cls, E.ProtocolError)


@pytest.mark.parametrize("name,cls,argument", [
    ("MQLITE_ERR_TIMEOUT", "TimeoutError", False),
    ("MQLITE_ERR_QUEUE_FULL", "QueueFullError", False),
    ("MQLITE_ERR_CONNECTION_LOST", "ConnectionLostError", False),
    ("MQLITE_ERR_CLOSED", "ConnectionLostError", False),
    ("MQLITE_ERR_NOT_CONNECTED", "ConnectionLostError", False),
    ("MQLITE_ERR_INVALID", "InvalidArgumentError", False),
    ("MQLITE_ERR_RANGE", "InvalidArgumentError", True),
    ("MQLITE_ERR_OPTION", "UnknownFieldError", False),
    ("MQLITE_ERR_NOMEM", "MqliteError", True),
    ("MQLITE_ERR_IO", "MqliteError", False),
    ("MQLITE_ERR_UNSUPPORTED", "InvalidArgumentError", True),
    ("MQLITE_ERR_QOS3", "MalformedPacketError", False),
    ("MQLITE_ERR_QOS3", "InvalidPacketError", True),
    ("MQLITE_ERR_PROPERTY_DUPLICATE", "ProtocolError", False),
    ("MQLITE_ERR_PROPERTY_DUPLICATE", "InvalidPacketError", True),
])
def test_error_for_picks_the_class(name, cls, argument):
    code = getattr(m, name)
    e = mqlite._errors.error_for(code, argument=argument)
    assert type(e) is getattr(mqlite, cls)
    assert (e.code, e.name, e.message) == (code, name, m.mqlite_strerror(code))
    assert e.args == (code, e.message)
    assert pickle.loads(pickle.dumps(e)).message == e.message


def test_from_c_error_converts_the_swig_exception():
    with pytest.raises(m.Error) as ei:
        m.mqlite_packet_int(None, m.MQLITE_PF_QOS)
    e = mqlite._errors.from_c_error(ei.value)
    assert type(e) is mqlite.MqliteError and e.name == "MQLITE_ERR_MISUSE"
    t = mqlite._errors.from_c_error(m.Error(m.MQLITE_ERR_TIMEOUT, "waited 5 ms"))
    assert isinstance(t, builtins.TimeoutError) and t.message == "waited 5 ms"
    assert str(t) == "waited 5 ms [MQLITE_ERR_TIMEOUT]"
    with pytest.raises(TimeoutError):
        raise t
    c = mqlite._errors.from_c_error(m.Error(m.MQLITE_ERR_CONNECTION_LOST, "gone"))
    with pytest.raises(ConnectionError):
        raise c


# ---------------------------------------------------------------------------
# Every C object is freed
# ---------------------------------------------------------------------------

def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(bool(os.environ.get("MQLITE_SANITIZE") or os.environ.get("LD_PRELOAD")),
                    reason="under ASan, freed memory sits in quarantine: RSS means nothing")
def test_no_c_memory_is_leaked():
    big = "v" * 4096
    ok = Packet.publish(topic="a/b", payload=b"p" * 4096, qos=1, packet_id=3, version=5,
                        properties=[("user", ("k", big))])
    wire = encode(ok)

    def once():
        decode(wire, 5)
        encode(decode(wire, 5))            # decoded: re-built through C
        list(decode_stream(wire + wire[:100], 5))
        Packet.subscribe(packet_id=1, topics=[big], version=5)
        for bad in (lambda: Packet.pingreq(version=5).replace(properties=[("user", ("k", big))]),
                    lambda: Packet.publish(topic="a/b", payload=b"p" * 4096, qos=1, version=5),
                    lambda: Packet.subscribe(packet_id=1, topics=[big + "\0"]),
                    lambda: Packet.publish(topic="a", version=5,
                                           properties=[("user", ("k", big)), ("x", 1)]),
                    lambda: decode(wire[:-1] + b"\x00" + wire[-1:], 5)):
            with pytest.raises(mqlite.MqliteError):
                bad()

    for _ in range(300):
        once()
    gc.collect()
    before = _rss_kib()
    for _ in range(3000):
        once()
    gc.collect()
    grown = _rss_kib() - before
    # Each round handles ~40 KiB in C objects; a leak of any of them would
    # grow the process by > 10 MiB over 3000 rounds.
    assert grown < 4096, f"RSS grew by {grown} KiB"


# ---------------------------------------------------------------------------
# Rules first found missing from Python (fixed in the codec)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flt", ["$share//a", "$share/g", "$share/"])
@pytest.mark.parametrize("version", [3, 4])
def test_share_prefix_is_an_ordinary_filter_before_5_0(flt, version):
    # MQTT 3.1.1 4.7 gives '$share' no meaning: these are ordinary filters.
    raw = flt.encode()
    wire = bytes([0x82, 5 + len(raw), 0, 1, 0, len(raw)]) + raw + b"\x00"
    assert decode(wire, version).topics == ((flt, 0),)
    assert encode(Packet.subscribe(packet_id=1, topics=[flt], version=version)) == wire


@pytest.mark.parametrize("wire", ["f0 02 18 00", "f0 02 19 00",
                                  "f0 09 18 07 16 0001 78 1f 0000"])
def test_v5_auth_needs_an_authentication_method(wire):
    # MQTT 5.0 3.15.2.2.2: omitting the Authentication Method is a Protocol Error.
    # (The short form f0 00, Success without properties, is allowed by 3.15.2.1.)
    with pytest.raises(mqlite.ProtocolError):
        decode(h(wire), 5)


def test_v5_connect_authentication_data_needs_a_method():
    # MQTT 5.0 3.1.2.11.10: Authentication Data without a Method.
    with pytest.raises(mqlite.ProtocolError):
        decode(h("10 11 0004 4d515454 05 02 003c 04 16 0001 78 0000"), 5)
    with pytest.raises(ValueError):
        Packet.connect(version=5, properties=[("auth_data", b"x")])
