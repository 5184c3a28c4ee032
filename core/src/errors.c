/*
 * errors.c - error codes in words, MQTT reason codes in words, and the
 * mapping between the two. All tables are static const: no global state.
 */
#include "codec.h"
#include "common.h"

typedef struct err_entry {
    int32_t code;
    const char *name;
    const char *text;
} err_entry;

#define E(sym, text) {sym, #sym, text}
static const err_entry err_table[] = {
    E(MQLITE_OK, "success"),
    E(MQLITE_ERR_NOMEM, "out of memory"),
    E(MQLITE_ERR_MISUSE, "library misuse: NULL or freed handle, or call not allowed now"),
    E(MQLITE_ERR_INVALID, "invalid argument"),
    E(MQLITE_ERR_RANGE, "value out of range"),
    E(MQLITE_ERR_OPTION, "unknown option or field"),
    E(MQLITE_ERR_STATE, "not allowed in the current state"),
    E(MQLITE_ERR_BUFFER, "output buffer too small"),
    E(MQLITE_ERR_NOT_FOUND, "not found"),
    E(MQLITE_ERR_QUEUE_FULL, "queue full: the message was not queued"),
    E(MQLITE_ERR_TIMEOUT, "timed out"),
    E(MQLITE_ERR_IO, "I/O error"),
    E(MQLITE_ERR_CONNECTION_LOST, "connection lost"),
    E(MQLITE_ERR_REFUSED, "connection refused by the peer"),
    E(MQLITE_ERR_CLOSED, "connection closed by the peer"),
    E(MQLITE_ERR_NOT_CONNECTED, "not connected"),
    E(MQLITE_ERR_DNS, "host name resolution failed"),
    E(MQLITE_ERR_TLS, "TLS error"),
    E(MQLITE_ERR_CONFIG, "bad configuration"),
    E(MQLITE_ERR_UNSUPPORTED, "not supported"),
    E(MQLITE_ERR_AGAIN, "nothing can be done now; try again later"),
    E(MQLITE_ERR_NO_PACKET_ID, "no free packet identifier: 65535 in flight"),
    E(MQLITE_ERR_TOO_LARGE, "larger than the maximum packet size"),

    E(MQLITE_ERR_MALFORMED, "malformed packet"),
    E(MQLITE_ERR_REMLEN_TOO_LONG,
      "malformed packet: variable byte integer longer than 4 bytes (MQTT 3.1.1 2.2.3, 5.0 1.5.5)"),
    E(MQLITE_ERR_REMLEN_NOT_MINIMAL,
      "malformed packet: variable byte integer not in its shortest form (MQTT 5.0 [MQTT-1.5.5-1])"),
    E(MQLITE_ERR_PACKET_TYPE, "malformed packet: reserved or unknown packet type"),
    E(MQLITE_ERR_HEADER_FLAGS,
      "malformed packet: reserved fixed-header flags have the wrong value (MQTT 3.1.1 "
      "[MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1])"),
    E(MQLITE_ERR_QOS3,
      "malformed packet: PUBLISH with QoS 3 (MQTT 3.1.1 and 5.0 [MQTT-3.3.1-4])"),
    E(MQLITE_ERR_TRUNCATED, "malformed packet: a field runs past the end of the packet"),
    E(MQLITE_ERR_TRAILING, "malformed packet: unexpected bytes after the last field"),
    E(MQLITE_ERR_UTF8,
      "malformed packet: ill-formed UTF-8 string (MQTT 3.1.1 [MQTT-1.5.3-1], 5.0 [MQTT-1.5.4-1])"),
    E(MQLITE_ERR_UTF8_NULL,
      "malformed packet: U+0000 in a UTF-8 string (MQTT 3.1.1 [MQTT-1.5.3-2], 5.0 [MQTT-1.5.4-2])"),
    E(MQLITE_ERR_UTF8_SURROGATE,
      "malformed packet: UTF-16 surrogate encoded in a UTF-8 string (MQTT 3.1.1 [MQTT-1.5.3-1], "
      "5.0 [MQTT-1.5.4-1])"),
    E(MQLITE_ERR_UTF8_CONTROL,
      "malformed packet: control character or non-character in a UTF-8 string (strict mode)"),
    E(MQLITE_ERR_PROPERTY_ID, "malformed packet: unknown property identifier (MQTT 5.0 2.2.2.2)"),
    E(MQLITE_ERR_PROPERTY_PACKET,
      "malformed packet: property not allowed in this packet (MQTT 5.0 2.2.2.2)"),
    E(MQLITE_ERR_CONNECT_RESERVED,
      "malformed packet: CONNECT reserved flag is not 0 (MQTT 3.1.1 and 5.0 [MQTT-3.1.2-3])"),
    E(MQLITE_ERR_WILL_FLAGS,
      "malformed packet: will QoS or will retain set without the will flag (MQTT 3.1.1 "
      "[MQTT-3.1.2-13], [MQTT-3.1.2-15]; 5.0 [MQTT-3.1.2-11], [MQTT-3.1.2-13])"),
    E(MQLITE_ERR_WILL_QOS3,
      "malformed packet: will QoS 3 (MQTT 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12])"),
    E(MQLITE_ERR_PASSWORD_NO_USER,
      "malformed packet: password flag set without user name flag (MQTT 3.1.1 [MQTT-3.1.2-22])"),
    E(MQLITE_ERR_SUB_OPTIONS,
      "malformed packet: reserved bits of the subscription options are not 0 (MQTT 3.1.1 "
      "[MQTT-3.8.3-4], 5.0 [MQTT-3.8.3-5])"),
    E(MQLITE_ERR_SUB_QOS3, "malformed packet: requested QoS 3 in a subscription (MQTT 3.1.1 "
                           "[MQTT-3.8.3-4], 5.0 3.8.3.1)"),
    E(MQLITE_ERR_TOPIC_NAME, "invalid topic name (MQTT 3.1.1 and 5.0 [MQTT-3.3.2-2], 4.7)"),
    E(MQLITE_ERR_TOPIC_FILTER, "invalid topic filter (MQTT 3.1.1 and 5.0 4.7)"),
    E(MQLITE_ERR_PROTOCOL_NAME,
      "protocol name does not match the protocol level (MQTT 3.1.1 [MQTT-3.1.2-1], 5.0 "
      "[MQTT-3.1.2-1])"),
    E(MQLITE_ERR_SUBACK_CODE,
      "malformed packet: SUBACK return code is reserved (MQTT 3.1.1 [MQTT-3.9.3-2])"),
    E(MQLITE_ERR_CONNACK_FLAGS,
      "malformed packet: reserved CONNACK acknowledge flags are not 0 (MQTT 3.1.1 3.2.2.1, 5.0 "
      "3.2.2.1)"),
    E(MQLITE_ERR_PACKET_ID_PRESENT, "(retired error code)"),
    E(MQLITE_ERR_PROPERTY_TYPE,
      "malformed packet: property value is not of its data type (MQTT 5.0 2.2.2.2)"),

    E(MQLITE_ERR_PROTOCOL, "protocol error"),
    E(MQLITE_ERR_PROPERTY_DUPLICATE,
      "protocol error: property included more than once (MQTT 5.0 3.x, property definitions)"),
    E(MQLITE_ERR_PROPERTY_VALUE, "protocol error: property value not allowed (MQTT 5.0)"),
    E(MQLITE_ERR_PACKET_ID_ZERO,
      "protocol error: packet identifier 0 where a non-zero one is required (MQTT 3.1.1 "
      "[MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3])"),
    E(MQLITE_ERR_PROTOCOL_LEVEL,
      "unsupported protocol level (MQTT 3.1.1 [MQTT-3.1.2-2], 5.0 [MQTT-3.1.2-2])"),
    E(MQLITE_ERR_RETAIN_HANDLING,
      "protocol error: retain handling 3 in subscription options (MQTT 5.0 3.8.3.1)"),
    E(MQLITE_ERR_NO_LOCAL_SHARED,
      "protocol error: no-local set on a shared subscription (MQTT 5.0 [MQTT-3.8.3-4])"),
    E(MQLITE_ERR_REASON_CODE, "protocol error: reason code not allowed in this packet (MQTT 5.0 "
                              "2.4)"),
    E(MQLITE_ERR_UNEXPECTED_PACKET,
      "protocol error: packet not allowed in this direction or at this point"),
    E(MQLITE_ERR_PACKET_TOO_LARGE, "packet exceeds the maximum packet size (MQTT 5.0 3.1.2.11.4)"),
    E(MQLITE_ERR_TOPIC_ALIAS,
      "protocol error: topic alias is 0, above the maximum, or unknown (MQTT 5.0 "
      "[MQTT-3.3.2-8], [MQTT-3.3.2-9], [MQTT-3.3.2-10])"),
    E(MQLITE_ERR_RECEIVE_MAX,
      "protocol error: more QoS 1/2 PUBLISH in flight than Receive Maximum allows (MQTT 5.0 "
      "[MQTT-3.3.4-9])"),
    E(MQLITE_ERR_CLIENT_ID, "client identifier not valid (MQTT 3.1.1 and 5.0 3.1.3.1)"),
    E(MQLITE_ERR_PACKET_ID_UNKNOWN, "protocol error: acknowledgement for an unknown packet id"),
    E(MQLITE_ERR_KEEPALIVE, "keep-alive timeout: nothing received in time (MQTT 3.1.1 and 5.0 "
                            "[MQTT-3.1.2-24])"),
    E(MQLITE_ERR_QOS_NOT_SUPPORTED,
      "QoS above the server's Maximum QoS (MQTT 5.0 [MQTT-3.2.2-11])"),
    E(MQLITE_ERR_RETAIN_NOT_SUPPORTED,
      "retain requested but the server has no retained messages (MQTT 5.0 [MQTT-3.2.2-14])"),
    E(MQLITE_ERR_AUTH_METHOD, "authentication method not supported or changed (MQTT 5.0 4.12)"),
    E(MQLITE_ERR_SUBSCRIBE_EMPTY,
      "protocol error: SUBSCRIBE without a topic filter (MQTT 3.1.1 [MQTT-3.8.3-3], 5.0 "
      "[MQTT-3.8.3-2])"),
    E(MQLITE_ERR_UNSUBSCRIBE_EMPTY,
      "protocol error: UNSUBSCRIBE without a topic filter (MQTT 3.1.1 and 5.0 "
      "[MQTT-3.10.3-2])"),
    E(MQLITE_ERR_SUB_QOS_INVALID,
      "protocol error: maximum QoS 3 in subscription options (MQTT 5.0 3.8.3.1)"),
};
#undef E

static const err_entry *err_find(int32_t code)
{
    for (size_t i = 0; i < MQ_ARRAY_LEN(err_table); i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return NULL;
}

MQLITE_API const char *mqlite_strerror(int32_t code)
{
    const err_entry *e = err_find(code);
    return e ? e->text : "unknown error";
}

MQLITE_API const char *mqlite_error_name(int32_t code)
{
    const err_entry *e = err_find(code);
    return e ? e->name : "MQLITE_ERR_UNKNOWN";
}

MQLITE_API int32_t mqlite_error_is_malformed(int32_t code)
{
    return code <= -100 && code > -150;
}

MQLITE_API int32_t mqlite_error_reason(int32_t code)
{
    switch (code) {
    case MQLITE_ERR_PACKET_TOO_LARGE:
    case MQLITE_ERR_TOO_LARGE:
        return 0x95;
    case MQLITE_ERR_TOPIC_ALIAS:
        return 0x94;
    case MQLITE_ERR_RECEIVE_MAX:
        return 0x93;
    case MQLITE_ERR_TOPIC_NAME:
        return 0x90;
    case MQLITE_ERR_TOPIC_FILTER:
        return 0x8F;
    case MQLITE_ERR_PROTOCOL_LEVEL:
        return 0x84;
    case MQLITE_ERR_CLIENT_ID:
        return 0x85;
    case MQLITE_ERR_KEEPALIVE:
        return 0x8D;
    case MQLITE_ERR_QOS_NOT_SUPPORTED:
        return 0x9B;
    case MQLITE_ERR_RETAIN_NOT_SUPPORTED:
        return 0x9A;
    case MQLITE_ERR_AUTH_METHOD:
        return 0x8C;
    default:
        break;
    }
    if (mqlite_error_is_malformed(code))
        return 0x81;
    if (code <= -150 && code > -200)
        return 0x82;
    return 0x80;
}

MQLITE_API int32_t mqlite_error_is_fatal(int32_t code)
{
    return code == MQLITE_ERR_MISUSE;
}

/* ---- reason codes ---- */

typedef struct reason_entry {
    uint8_t code;
    uint16_t packets; /* bit per packet type */
    const char *text;
} reason_entry;

#define P(t) (1u << MQLITE_PKT_##t)
#define ACKS (P(PUBACK) | P(PUBREC))
static const reason_entry reason_table[] = {
    {0x00, P(CONNACK) | P(PUBACK) | P(PUBREC) | P(PUBREL) | P(PUBCOMP) | P(UNSUBACK) | P(AUTH),
     "Success"},
    {0x00, P(DISCONNECT), "Normal disconnection"},
    {0x00, P(SUBACK), "Granted QoS 0"},
    {0x01, P(SUBACK), "Granted QoS 1"},
    {0x02, P(SUBACK), "Granted QoS 2"},
    {0x04, P(DISCONNECT), "Disconnect with Will Message"},
    {0x10, ACKS, "No matching subscribers"},
    {0x11, P(UNSUBACK), "No subscription existed"},
    {0x18, P(AUTH), "Continue authentication"},
    {0x19, P(AUTH), "Re-authenticate"},
    {0x80, P(CONNACK) | ACKS | P(SUBACK) | P(UNSUBACK) | P(DISCONNECT), "Unspecified error"},
    {0x81, P(CONNACK) | P(DISCONNECT), "Malformed Packet"},
    {0x82, P(CONNACK) | P(DISCONNECT), "Protocol Error"},
    {0x83, P(CONNACK) | ACKS | P(SUBACK) | P(UNSUBACK) | P(DISCONNECT),
     "Implementation specific error"},
    {0x84, P(CONNACK), "Unsupported Protocol Version"},
    {0x85, P(CONNACK), "Client Identifier not valid"},
    {0x86, P(CONNACK), "Bad User Name or Password"},
    {0x87, P(CONNACK) | ACKS | P(SUBACK) | P(UNSUBACK) | P(DISCONNECT), "Not authorized"},
    {0x88, P(CONNACK), "Server unavailable"},
    {0x89, P(CONNACK) | P(DISCONNECT), "Server busy"},
    {0x8A, P(CONNACK), "Banned"},
    {0x8B, P(DISCONNECT), "Server shutting down"},
    {0x8C, P(CONNACK) | P(DISCONNECT), "Bad authentication method"},
    {0x8D, P(DISCONNECT), "Keep Alive timeout"},
    {0x8E, P(DISCONNECT), "Session taken over"},
    {0x8F, P(SUBACK) | P(UNSUBACK) | P(DISCONNECT), "Topic Filter invalid"},
    {0x90, P(CONNACK) | ACKS | P(DISCONNECT), "Topic Name invalid"},
    {0x91, ACKS | P(SUBACK) | P(UNSUBACK), "Packet Identifier in use"},
    {0x92, P(PUBREL) | P(PUBCOMP), "Packet Identifier not found"},
    {0x93, P(DISCONNECT), "Receive Maximum exceeded"},
    {0x94, P(DISCONNECT), "Topic Alias invalid"},
    {0x95, P(CONNACK) | P(DISCONNECT), "Packet too large"},
    {0x96, P(DISCONNECT), "Message rate too high"},
    {0x97, P(CONNACK) | ACKS | P(SUBACK) | P(DISCONNECT), "Quota exceeded"},
    {0x98, P(DISCONNECT), "Administrative action"},
    {0x99, P(CONNACK) | ACKS | P(DISCONNECT), "Payload format invalid"},
    {0x9A, P(CONNACK) | P(DISCONNECT), "Retain not supported"},
    {0x9B, P(CONNACK) | P(DISCONNECT), "QoS not supported"},
    {0x9C, P(CONNACK) | P(DISCONNECT), "Use another server"},
    {0x9D, P(CONNACK) | P(DISCONNECT), "Server moved"},
    {0x9E, P(SUBACK) | P(DISCONNECT), "Shared Subscriptions not supported"},
    {0x9F, P(CONNACK) | P(DISCONNECT), "Connection rate exceeded"},
    {0xA0, P(DISCONNECT), "Maximum connect time"},
    {0xA1, P(SUBACK) | P(DISCONNECT), "Subscription Identifiers not supported"},
    {0xA2, P(SUBACK) | P(DISCONNECT), "Wildcard Subscriptions not supported"},
};
#undef ACKS
#undef P

int mq_reason_valid(int type, unsigned reason)
{
    if (type < 1 || type > 15)
        return 0;
    for (size_t i = 0; i < MQ_ARRAY_LEN(reason_table); i++)
        if (reason_table[i].code == reason && (reason_table[i].packets & (1u << type)))
            return 1;
    return 0;
}

static const char *const connack_v3_text[] = {
    "Connection Accepted",
    "Connection Refused, unacceptable protocol version",
    "Connection Refused, identifier rejected",
    "Connection Refused, Server unavailable",
    "Connection Refused, bad user name or password",
    "Connection Refused, not authorized",
};

MQLITE_API const char *mqlite_reason_string(int32_t packet_type, int32_t reason, int32_t version)
{
    if (reason < 0 || reason > 255)
        return "Unknown reason code";
    if (version == MQLITE_V31 || version == MQLITE_V311) {
        if (packet_type == MQLITE_PKT_CONNACK)
            return reason < 6 ? connack_v3_text[reason] : "Unknown reason code";
        if (packet_type == MQLITE_PKT_SUBACK) {
            if (reason <= 2)
                return reason == 0 ? "Granted QoS 0" : reason == 1 ? "Granted QoS 1"
                                                                   : "Granted QoS 2";
            return reason == 0x80 ? "Failure" : "Unknown reason code";
        }
    }
    if (packet_type < 1 || packet_type > 15)
        return "Unknown reason code";
    for (size_t i = 0; i < MQ_ARRAY_LEN(reason_table); i++)
        if (reason_table[i].code == reason && (reason_table[i].packets & (1u << packet_type)))
            return reason_table[i].text;
    return "Unknown reason code";
}

MQLITE_API int32_t mqlite_version(const char **text)
{
    if (text)
        *text = MQLITE_VERSION_STRING;
    return MQLITE_VERSION_NUMBER;
}

MQLITE_API void mqlite_free(void *ptr)
{
    mq_free(&mq_default_alloc, ptr);
}
