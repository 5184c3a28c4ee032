/*
 * codec.c - MQTT control packets of levels 3, 4 and 5 to and from bytes.
 *
 * Decoding reads in place and never allocates. Every rule the spec places on
 * a packet's bytes is checked here, each with its own error code, so that a
 * server can answer 5.0 clients with 0x81 (malformed) or 0x82 (protocol
 * error) as the rule demands. Encoding validates by the same rules first.
 */
#include "codec.h"

#include "props.h"
#include "topic.h"
#include "utf8.h"

/* ---------------------------------------------------------------------
 * Reader over a packet body
 * --------------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    uint32_t len;
    uint32_t off;
    uint8_t strict;
    uint8_t role;
    mq_decode_info *info;
} rd;

static inline uint32_t rd_left(const rd *r)
{
    return r->len - r->off;
}

static inline int rd_u8(rd *r, uint8_t *v)
{
    if (MQ_UNLIKELY(rd_left(r) < 1))
        return MQLITE_ERR_TRUNCATED;
    *v = r->p[r->off++];
    return 0;
}

static inline int rd_u16(rd *r, uint16_t *v)
{
    if (MQ_UNLIKELY(rd_left(r) < 2))
        return MQLITE_ERR_TRUNCATED;
    *v = mq_get16(r->p + r->off);
    r->off += 2;
    return 0;
}

/* Two Byte length + bytes (Binary Data). */
static inline int rd_bin(rd *r, mq_view *v)
{
    uint16_t n;
    int rc = rd_u16(r, &n);
    if (rc)
        return rc;
    if (MQ_UNLIKELY(rd_left(r) < n))
        return MQLITE_ERR_TRUNCATED;
    *v = mq_view_make(r->p + r->off, n);
    r->off += n;
    return 0;
}

/* UTF-8 Encoded String. */
static inline int rd_str(rd *r, mq_view *v)
{
    int rc = rd_bin(r, v);
    if (rc)
        return rc;
    return mq_utf8_check(v->p, v->len, r->strict);
}

static int rd_packet_id(rd *r, uint16_t *id)
{
    int rc = rd_u16(r, id);
    if (rc)
        return rc;
    /* MQTT 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]: identifiers are non-zero. */
    return *id == 0 ? MQLITE_ERR_PACKET_ID_ZERO : 0;
}

/* Property Length + properties, validated for context ctx. */
static int rd_props(rd *r, int ctx, mq_view *out)
{
    uint32_t n;
    int used = mq_get_vbi(r->p + r->off, rd_left(r), &n);
    if (used == 0)
        return MQLITE_ERR_TRUNCATED;
    if (used < 0)
        return used;
    r->off += (uint32_t)used;
    if (rd_left(r) < n)
        return MQLITE_ERR_TRUNCATED;
    *out = mq_view_make(r->p + r->off, n);
    r->off += n;
    unsigned bad = 0;
    int rc = n ? mq_props_validate(*out, ctx, r->strict, &bad) : 0;
    if (rc && r->info)
        r->info->prop_id = bad;
    return rc;
}

static inline int rd_end(const rd *r)
{
    return rd_left(r) ? MQLITE_ERR_TRAILING : 0;
}

#define TRY(x)                                                                             \
    do {                                                                                   \
        int try_rc_ = (x);                                                                 \
        if (MQ_UNLIKELY(try_rc_))                                                          \
            return try_rc_;                                                                \
    } while (0)

/* ---------------------------------------------------------------------
 * Decoding, one function per packet type
 * --------------------------------------------------------------------- */

static int connect_flags_check(uint8_t f, int version)
{
    /* MQTT 3.1.1 and 5.0 [MQTT-3.1.2-3]: the reserved flag is 0. */
    if (f & 0x01)
        return MQLITE_ERR_CONNECT_RESERVED;
    uint8_t will = (f >> 2) & 1, qos = (f >> 3) & 3, retain = (f >> 5) & 1;
    if (qos == 3)
        return MQLITE_ERR_WILL_QOS3;
    if (!will && (qos || retain))
        return MQLITE_ERR_WILL_FLAGS;
    /* MQTT 3.1.1 [MQTT-3.1.2-22]; 5.0 lifted this rule. */
    if (version < MQLITE_V5 && (f & 0x40) && !(f & 0x80))
        return MQLITE_ERR_PASSWORD_NO_USER;
    return 0;
}

static int dec_protocol(rd *r, mq_packet *p)
{
    uint8_t level;
    TRY(rd_bin(r, &p->protocol_name));
    TRY(rd_u8(r, &level));
    mq_view n = p->protocol_name;
    int is_mqtt = n.len == 4 && memcmp(n.p, "MQTT", 4) == 0;
    int is_isdp = n.len == 6 && memcmp(n.p, "MQIsdp", 6) == 0;
    p->version = level;
    if (!is_mqtt && !is_isdp)
        return MQLITE_ERR_PROTOCOL_NAME;
    /* MQTT 3.1.1 and 5.0 [MQTT-3.1.2-2]: unsupported level -> CONNACK 0x01 /
     * 0x84, which the caller sends; name/level pairs are fixed. */
    if ((is_mqtt && level != MQLITE_V311 && level != MQLITE_V5) ||
        (is_isdp && level != MQLITE_V31))
        return MQLITE_ERR_PROTOCOL_LEVEL;
    return 0;
}

static int dec_connect(rd *r, mq_packet *p)
{
    uint8_t f;
    TRY(dec_protocol(r, p));
    TRY(rd_u8(r, &f));
    TRY(connect_flags_check(f, p->version));
    p->clean_start = (f >> 1) & 1;
    p->will = (f >> 2) & 1;
    p->will_qos = (f >> 3) & 3;
    p->will_retain = (f >> 5) & 1;
    p->has_password = (f >> 6) & 1;
    p->has_username = (f >> 7) & 1;
    TRY(rd_u16(r, &p->keepalive));
    if (p->version == MQLITE_V5) {
        TRY(rd_props(r, MQLITE_PKT_CONNECT, &p->props));
        /* 5.0 3.1.2.11.10: Authentication Data without a Method. */
        mq_prop am, ad;
        if (mq_props_get(p->props, MQLITE_PROP_AUTH_DATA, &ad) &&
            !mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &am))
            return MQLITE_ERR_PROTOCOL;
    }
    TRY(rd_str(r, &p->client_id));
    if (p->will) {
        if (p->version == MQLITE_V5)
            TRY(rd_props(r, MQ_PCTX_WILL, &p->will_props));
        TRY(rd_str(r, &p->will_topic));
        /* MQTT 5.0 [MQTT-3.1.3-11]: the Will Topic is a Topic Name. */
        TRY(mq_topic_check_name(p->will_topic, NULL));
        TRY(rd_bin(r, &p->will_payload));
    }
    if (p->has_username)
        TRY(rd_str(r, &p->username));
    if (p->has_password)
        TRY(rd_bin(r, &p->password));
    return rd_end(r);
}

static int dec_connack(rd *r, mq_packet *p)
{
    uint8_t flags;
    TRY(rd_u8(r, &flags));
    TRY(rd_u8(r, &p->reason));
    /* Bits 7-1 are reserved (3.1.1 3.2.2.1, 5.0 3.2.2.1.1); 3.1 has no
     * Session Present flag at all. */
    if ((flags & 0xfe) || (p->version == MQLITE_V31 && flags))
        return MQLITE_ERR_CONNACK_FLAGS;
    p->session_present = flags & 1;
    if (p->version == MQLITE_V5) {
        if (!mq_reason_valid(MQLITE_PKT_CONNACK, p->reason))
            return MQLITE_ERR_REASON_CODE;
        TRY(rd_props(r, MQLITE_PKT_CONNACK, &p->props));
    } else if (p->reason > 5) {
        return MQLITE_ERR_REASON_CODE;
    }
    /* MQTT 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]: a refusal never says
     * the session is present. */
    if (p->reason && p->session_present)
        return MQLITE_ERR_CONNACK_FLAGS;
    return rd_end(r);
}

static int dec_publish(rd *r, mq_packet *p, uint8_t flags)
{
    p->dup = (flags >> 3) & 1;
    p->qos = (flags >> 1) & 3;
    p->retain = flags & 1;
    /* MQTT 3.1.1 and 5.0 [MQTT-3.3.1-4] */
    if (p->qos == 3)
        return MQLITE_ERR_QOS3;
    /* MQTT 3.1.1 and 5.0 [MQTT-3.3.1-2]: DUP is 0 for QoS 0. */
    if (p->qos == 0 && p->dup)
        return MQLITE_ERR_HEADER_FLAGS;
    TRY(rd_bin(r, &p->topic));
    if (p->qos)
        TRY(rd_packet_id(r, &p->packet_id));
    if (p->version == MQLITE_V5) {
        TRY(rd_props(r, MQLITE_PKT_PUBLISH, &p->props));
        /* MQTT 5.0 [MQTT-3.3.4-6]: a client never sends a Subscription
         * Identifier in PUBLISH. */
        mq_prop sid;
        if (r->role == MQ_ROLE_SERVER &&
            mq_props_get(p->props, MQLITE_PROP_SUBSCRIPTION_ID, &sid))
            return MQLITE_ERR_PROTOCOL;
    }
    if (p->topic.len == 0) {
        /* 5.0 3.3.2.1: an empty Topic Name needs a Topic Alias; 3.x
         * [MQTT-4.7.3-1]: topic names are at least one character. */
        mq_prop a;
        if (p->version != MQLITE_V5 || !mq_props_get(p->props, MQLITE_PROP_TOPIC_ALIAS, &a))
            return MQLITE_ERR_TOPIC_NAME;
    } else {
        TRY(mq_topic_check_name(p->topic, NULL));
        if (r->strict)
            TRY(mq_utf8_check(p->topic.p, p->topic.len, 1));
    }
    p->payload = mq_view_make(r->p + r->off, rd_left(r));
    r->off = r->len;
    return 0;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP */
static int dec_ack(rd *r, mq_packet *p)
{
    TRY(rd_packet_id(r, &p->packet_id));
    if (p->version != MQLITE_V5)
        return rd_end(r);
    /* MQTT 5.0 3.4.2.1: Reason Code and properties may be omitted. */
    if (rd_left(r) == 0)
        return 0;
    TRY(rd_u8(r, &p->reason));
    if (!mq_reason_valid(p->type, p->reason))
        return MQLITE_ERR_REASON_CODE;
    if (rd_left(r) == 0)
        return 0;
    TRY(rd_props(r, p->type, &p->props));
    return rd_end(r);
}

int mq_sub_entry_check(mq_view f, uint8_t opts, int version, int subscribe)
{
    TRY(mq_topic_check_filter_v(f, version, NULL));
    if (!subscribe)
        return 0;
    TRY(mq_sub_options_check(opts, version));
    mq_view g, rest;
    /* MQTT 5.0 [MQTT-3.8.3-4]: no-local on a shared subscription. */
    if ((opts & 0x04) && version == MQLITE_V5 && mq_topic_split_shared(f, &g, &rest) == 1)
        return MQLITE_ERR_NO_LOCAL_SHARED;
    return 0;
}

/* SUBSCRIBE, UNSUBSCRIBE */
static int dec_sub(rd *r, mq_packet *p)
{
    int subscribe = p->type == MQLITE_PKT_SUBSCRIBE;
    TRY(rd_packet_id(r, &p->packet_id));
    if (p->version == MQLITE_V5)
        TRY(rd_props(r, p->type, &p->props));
    p->list = mq_view_make(r->p + r->off, rd_left(r));
    while (rd_left(r)) {
        mq_view f;
        uint8_t opts = 0;
        TRY(rd_str(r, &f));
        if (subscribe)
            TRY(rd_u8(r, &opts));
        TRY(mq_sub_entry_check(f, opts, p->version, subscribe));
        p->count++;
    }
    /* MQTT 3.1.1 [MQTT-3.8.3-3] / 5.0 [MQTT-3.8.3-2]; [MQTT-3.10.3-2] */
    if (p->count == 0)
        return subscribe ? MQLITE_ERR_SUBSCRIBE_EMPTY : MQLITE_ERR_UNSUBSCRIBE_EMPTY;
    return 0;
}

static int suback_code_valid(unsigned code, int version)
{
    if (version == MQLITE_V5)
        return mq_reason_valid(MQLITE_PKT_SUBACK, code);
    /* MQTT 3.1.1 [MQTT-3.9.3-2]: 0x00, 0x01, 0x02, 0x80; others reserved. */
    return code <= 2 || code == 0x80;
}

/* SUBACK, UNSUBACK */
static int dec_suback(rd *r, mq_packet *p)
{
    TRY(rd_packet_id(r, &p->packet_id));
    if (p->type == MQLITE_PKT_UNSUBACK && p->version != MQLITE_V5)
        return rd_end(r);
    if (p->version == MQLITE_V5)
        TRY(rd_props(r, p->type, &p->props));
    p->list = mq_view_make(r->p + r->off, rd_left(r));
    p->count = rd_left(r);
    if (p->count == 0)
        return MQLITE_ERR_TRUNCATED;
    for (uint32_t i = 0; i < p->count; i++) {
        uint8_t c = p->list.p[i];
        if (p->type == MQLITE_PKT_SUBACK) {
            if (!suback_code_valid(c, p->version))
                return p->version == MQLITE_V5 ? MQLITE_ERR_REASON_CODE : MQLITE_ERR_SUBACK_CODE;
        } else if (!mq_reason_valid(MQLITE_PKT_UNSUBACK, c)) {
            return MQLITE_ERR_REASON_CODE;
        }
    }
    r->off = r->len;
    return 0;
}

/* DISCONNECT, AUTH */
static int dec_disconnect_auth(rd *r, mq_packet *p)
{
    if (p->version != MQLITE_V5 || rd_left(r) == 0)
        return rd_end(r);
    TRY(rd_u8(r, &p->reason));
    if (!mq_reason_valid(p->type, p->reason))
        return MQLITE_ERR_REASON_CODE;
    /* 5.0 3.14.2.2.1: a DISCONNECT of Remaining Length 1 has no properties;
     * AUTH (3.15.2.1) may omit both or neither. */
    if (rd_left(r) == 0)
        return p->type == MQLITE_PKT_AUTH ? MQLITE_ERR_TRUNCATED : 0;
    TRY(rd_props(r, p->type, &p->props));

    /* MQTT 5.0 [MQTT-3.14.2-2]: the server never sends Session Expiry
     * Interval in DISCONNECT. */
    mq_prop se;
    if (p->type == MQLITE_PKT_DISCONNECT && r->role == MQ_ROLE_CLIENT &&
        mq_props_get(p->props, MQLITE_PROP_SESSION_EXPIRY, &se))
        return MQLITE_ERR_PROTOCOL;
    TRY(rd_end(r));
    /* 5.0 3.15.2.2.2: an AUTH with properties names its method. */
    mq_prop am;
    if (p->type == MQLITE_PKT_AUTH && !mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &am))
        return MQLITE_ERR_PROTOCOL;
    return 0;
}

/* ---------------------------------------------------------------------
 * Fixed header
 * --------------------------------------------------------------------- */

/* Which packets each side may receive. Bit per type. */
#define B(t) (1u << MQLITE_PKT_##t)
#define TO_SERVER                                                                          \
    (B(CONNECT) | B(PUBLISH) | B(PUBACK) | B(PUBREC) | B(PUBREL) | B(PUBCOMP) |            \
     B(SUBSCRIBE) | B(UNSUBSCRIBE) | B(PINGREQ) | B(DISCONNECT) | B(AUTH))
#define TO_CLIENT                                                                          \
    (B(CONNACK) | B(PUBLISH) | B(PUBACK) | B(PUBREC) | B(PUBREL) | B(PUBCOMP) | B(SUBACK) |  \
     B(UNSUBACK) | B(PINGRESP) | B(DISCONNECT) | B(AUTH))

static int header_flags_ok(uint8_t type, uint8_t flags, int version)
{
    if (type == MQLITE_PKT_PUBLISH)
        return 1;
    /* MQTT 3.1.1 [MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1]: Table 2-2. MQTT 3.1
     * (section 2.1) sets DUP when it re-sends PUBREL, SUBSCRIBE or
     * UNSUBSCRIBE, so there DUP is allowed beside QoS 1. */
    if (type == MQLITE_PKT_PUBREL || type == MQLITE_PKT_SUBSCRIBE ||
        type == MQLITE_PKT_UNSUBSCRIBE)
        return flags == 0x2 || (version == MQLITE_V31 && flags == 0xa);
    return flags == 0;
}

int mq_decode_header(const uint8_t *buf, size_t len, uint32_t max_packet_size, uint8_t *byte1,
                     size_t *total)
{
    if (len < 2)
        return MQ_NEED_MORE;
    uint32_t rem;
    int n = mq_get_vbi(buf + 1, len - 1, &rem);
    if (n == 0)
        return MQ_NEED_MORE;
    if (n < 0)
        return n;
    *byte1 = buf[0];
    *total = 1 + (size_t)n + rem;
    uint32_t max = max_packet_size ? max_packet_size : MQ_MAX_PACKET_SIZE;
    if (*total > max)
        return MQLITE_ERR_PACKET_TOO_LARGE;
    return 0;
}

static int decode_body(rd *r, mq_packet *p, uint8_t flags)
{
    switch (p->type) {
    case MQLITE_PKT_CONNECT:
        return dec_connect(r, p);
    case MQLITE_PKT_CONNACK:
        return dec_connack(r, p);
    case MQLITE_PKT_PUBLISH:
        return dec_publish(r, p, flags);
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        return dec_ack(r, p);
    case MQLITE_PKT_SUBSCRIBE:
    case MQLITE_PKT_UNSUBSCRIBE:
        return dec_sub(r, p);
    case MQLITE_PKT_SUBACK:
    case MQLITE_PKT_UNSUBACK:
        return dec_suback(r, p);
    case MQLITE_PKT_PINGREQ:
    case MQLITE_PKT_PINGRESP:
        return rd_end(r);
    default: /* DISCONNECT, AUTH */
        return dec_disconnect_auth(r, p);
    }
}

int mq_decode(const uint8_t *buf, size_t len, const mq_decode_opts *o, mq_packet *out,
              size_t *used, size_t *need, mq_decode_info *info)
{
    uint8_t b1;
    size_t total;
    if (info)
        memset(info, 0, sizeof *info);
    int rc = mq_decode_header(buf, len, o->max_packet_size, &b1, &total);
    if (rc == MQ_NEED_MORE) {
        if (need)
            *need = len + 1;
        return rc;
    }
    uint8_t type = len ? buf[0] >> 4 : 0, flags = len ? buf[0] & 0x0f : 0;
    if (info)
        info->type = type;
    if (rc)
        return rc;
    /* Type and flags are known from the first byte: refuse early, before
     * waiting for a body that cannot be valid. */
    int version = type == MQLITE_PKT_CONNECT ? 0 : o->version;
    if (type == 0 || (type == MQLITE_PKT_AUTH && version && version != MQLITE_V5))
        return MQLITE_ERR_PACKET_TYPE;
    if (!header_flags_ok(type, flags, version))
        return MQLITE_ERR_HEADER_FLAGS;
    if ((o->role == MQ_ROLE_SERVER && !(TO_SERVER & (1u << type))) ||
        (o->role == MQ_ROLE_CLIENT && !(TO_CLIENT & (1u << type))) ||
        (type == MQLITE_PKT_DISCONNECT && o->role == MQ_ROLE_CLIENT && version != MQLITE_V5))
        return MQLITE_ERR_UNEXPECTED_PACKET;
    /* MQTT 3.1.1 [MQTT-3.1.0-1], 5.0 [MQTT-3.1.0-1]: the first packet is
     * CONNECT, so without a level nothing else can be read. */
    if (version == 0 && type != MQLITE_PKT_CONNECT)
        return MQLITE_ERR_UNEXPECTED_PACKET;
    if (len < total) {
        if (need)
            *need = total;
        return MQ_NEED_MORE;
    }
    size_t body_off = 2;
    while (buf[body_off - 1] & 0x80)
        body_off++;
    /* A copy of a zero record, not memset: small fixed-size copies become
     * vector moves, where memset here compiled to `rep stos`, which cost
     * more than the rest of decoding a small PUBLISH (perf, gcc 12 -O2). */
    static const mq_packet zero;
    *out = zero;
    out->type = type;
    out->version = (uint8_t)version;
    rd r = {buf + body_off, (uint32_t)(total - body_off), 0, o->strict_utf8, o->role, info};
    rc = decode_body(&r, out, flags);
    if (rc)
        return rc;
    *used = total;
    return 0;
}

/* ---------------------------------------------------------------------
 * Lists
 * --------------------------------------------------------------------- */

int mq_list_next(const mq_packet *p, uint32_t *off, mq_view *filter, uint8_t *options)
{
    if (*off >= p->list.len)
        return 0;
    if (p->type == MQLITE_PKT_SUBACK || p->type == MQLITE_PKT_UNSUBACK) {
        *options = p->list.p[(*off)++];
        return 1;
    }
    const uint8_t *b = p->list.p + *off;
    uint32_t n = mq_get16(b);
    *filter = mq_view_make(b + 2, n);
    *off += 2 + n;
    *options = 0;
    if (p->type == MQLITE_PKT_SUBSCRIBE)
        *options = p->list.p[(*off)++];
    return 1;
}

int mq_list_put_filter(mq_buf *b, const mq_alloc *a, mq_view filter, int with_options,
                       uint8_t options)
{
    if (filter.len > 0xffff)
        return MQLITE_ERR_RANGE;
    int rc = mq_buf_reserve(b, a, 3 + filter.len);
    if (rc)
        return rc;
    b->p[b->len++] = (uint8_t)(filter.len >> 8);
    b->p[b->len++] = (uint8_t)filter.len;
    memcpy(b->p + b->len, filter.p, filter.len);
    b->len += filter.len;
    if (with_options)
        b->p[b->len++] = options;
    return 0;
}

int mq_sub_options_check(uint8_t o, int version)
{
    if (version == MQLITE_V5) {
        /* MQTT 5.0 [MQTT-3.8.3-5]: bits 6 and 7 are reserved. */
        if (o & 0xc0)
            return MQLITE_ERR_SUB_OPTIONS;
        /* 5.0 3.8.3.1: Maximum QoS 3 is a Protocol Error (in 3.1.1 it is
         * malformed, [MQTT-3-8.3-4]). */
        if ((o & 3) == 3)
            return MQLITE_ERR_SUB_QOS_INVALID;
        /* MQTT 5.0 3.8.3.1: retain handling 3 is a Protocol Error. */
        if (((o >> 4) & 3) == 3)
            return MQLITE_ERR_RETAIN_HANDLING;
        return 0;
    }
    /* MQTT 3.1.1 [MQTT-3-8.3-4] (printed so; [MQTT-3.8.3-4]): bits 7-2 are 0. */
    if (o & 0xfc)
        return MQLITE_ERR_SUB_OPTIONS;
    if ((o & 3) == 3)
        return MQLITE_ERR_SUB_QOS3;
    return 0;
}

/* ---------------------------------------------------------------------
 * Encoding
 * --------------------------------------------------------------------- */

uint8_t mq_header_flags(const mq_packet *p)
{
    switch (p->type) {
    case MQLITE_PKT_PUBLISH:
        return (uint8_t)((p->dup ? 8 : 0) | (p->qos << 1) | (p->retain ? 1 : 0));
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_SUBSCRIBE:
    case MQLITE_PKT_UNSUBSCRIBE:
        return 2;
    default:
        return 0;
    }
}

#define FAIL(code, text)                                                                   \
    do {                                                                                   \
        if (msg)                                                                           \
            *msg = (text);                                                                 \
        return (code);                                                                     \
    } while (0)

static int enc_check_str(mq_view s, const char **msg, const char *what)
{
    if (s.len > 0xffff)
        FAIL(MQLITE_ERR_RANGE, what);
    int rc = mq_utf8_check(s.p, s.len, 0);
    if (rc)
        FAIL(rc, what);
    return 0;
}

static int enc_check_props(const mq_packet *p, mq_view block, int ctx, const char **msg)
{
    if (block.len == 0)
        return 0;
    if (p->version != MQLITE_V5)
        FAIL(MQLITE_ERR_UNSUPPORTED, "properties exist only in MQTT 5.0");
    int rc = mq_props_validate(block, ctx, 0, NULL);
    if (rc)
        FAIL(rc, "invalid property block");
    return 0;
}

static size_t props_size(const mq_packet *p, mq_view block)
{
    return p->version == MQLITE_V5 ? mq_props_wire_size(block.len) : 0;
}

/* 5.0 acks / DISCONNECT / AUTH: the short forms when nothing follows. */
static size_t reason_tail_size(const mq_packet *p)
{
    if (p->version != MQLITE_V5)
        return 0;
    /* 5.0 3.15.2.1: AUTH omits reason and property length together only. */
    if (p->props.len || (p->type == MQLITE_PKT_AUTH && p->reason))
        return 1 + mq_props_wire_size(p->props.len);
    return p->reason ? 1 : 0;
}

static int size_connect(const mq_packet *p, size_t *n, const char **msg)
{
    if (p->will_qos > 2)
        FAIL(MQLITE_ERR_WILL_QOS3, "will QoS must be 0, 1 or 2");
    if (!p->will && (p->will_qos || p->will_retain))
        FAIL(MQLITE_ERR_WILL_FLAGS, "will QoS/retain set without a will");
    if (p->version < MQLITE_V5 && p->has_password && !p->has_username)
        FAIL(MQLITE_ERR_PASSWORD_NO_USER,
             "a password needs a user name before MQTT 5.0 (MQTT 3.1.1 [MQTT-3.1.2-22])");
    TRY(enc_check_str(p->client_id, msg, "client identifier"));
    size_t s = (p->version == MQLITE_V31 ? 8 : 6) + 1 + 1 + 2 + props_size(p, p->props);
    TRY(enc_check_props(p, p->props, MQLITE_PKT_CONNECT, msg));
    mq_prop am, ad;
    if (mq_props_get(p->props, MQLITE_PROP_AUTH_DATA, &ad) &&
        !mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &am))
        FAIL(MQLITE_ERR_PROTOCOL, "Authentication Data needs an Authentication Method "
                                  "(MQTT 5.0 3.1.2.11.10)");
    s += 2 + p->client_id.len;
    if (p->will) {
        TRY(enc_check_props(p, p->will_props, MQ_PCTX_WILL, msg));
        int rc = mq_topic_check_name(p->will_topic, msg);
        if (rc)
            return rc;
        if (p->will_payload.len > 0xffff)
            FAIL(MQLITE_ERR_RANGE, "will payload is over 65535 bytes");
        s += props_size(p, p->will_props) + 2 + p->will_topic.len + 2 + p->will_payload.len;
    }
    if (p->has_username) {
        TRY(enc_check_str(p->username, msg, "user name"));
        s += 2 + p->username.len;
    }
    if (p->has_password) {
        if (p->password.len > 0xffff)
            FAIL(MQLITE_ERR_RANGE, "password is over 65535 bytes");
        s += 2 + p->password.len;
    }
    *n = s;
    return 0;
}

static int size_publish(const mq_packet *p, size_t *n, const char **msg)
{
    if (p->qos > 2)
        FAIL(MQLITE_ERR_QOS3, "QoS must be 0, 1 or 2 (MQTT [MQTT-3.3.1-4])");
    if (p->qos == 0 && p->dup)
        FAIL(MQLITE_ERR_HEADER_FLAGS, "DUP must be 0 for QoS 0 (MQTT [MQTT-3.3.1-2])");
    if (p->qos && p->packet_id == 0)
        FAIL(MQLITE_ERR_PACKET_ID_ZERO, "QoS 1 and 2 need a non-zero packet identifier");
    TRY(enc_check_props(p, p->props, MQLITE_PKT_PUBLISH, msg));
    if (p->topic.len == 0) {
        mq_prop a;
        if (p->version != MQLITE_V5 || !mq_props_get(p->props, MQLITE_PROP_TOPIC_ALIAS, &a))
            FAIL(MQLITE_ERR_TOPIC_NAME, "empty topic name without a topic alias");
    } else {
        int rc = mq_topic_check_name(p->topic, msg);
        if (rc)
            return rc;
    }
    *n = 2 + p->topic.len + (p->qos ? 2 : 0) + props_size(p, p->props) + p->payload.len;
    return 0;
}

static int size_list(const mq_packet *p, size_t *n, const char **msg)
{
    int sub = p->type == MQLITE_PKT_SUBSCRIBE, unsub = p->type == MQLITE_PKT_UNSUBSCRIBE;
    if (p->packet_id == 0)
        FAIL(MQLITE_ERR_PACKET_ID_ZERO, "a non-zero packet identifier is required");
    TRY(enc_check_props(p, p->props, p->type, msg));
    size_t s = 2 + props_size(p, p->props);
    if (p->type == MQLITE_PKT_UNSUBACK && p->version != MQLITE_V5) {
        *n = s;
        return 0;
    }
    uint32_t off = 0, count = 0;
    mq_view f;
    uint8_t o;
    while (mq_list_next(p, &off, &f, &o)) {
        if (off > p->list.len)
            FAIL(MQLITE_ERR_TRUNCATED, "list entry runs past the list");
        if (sub || unsub) {
            TRY(enc_check_str(f, msg, "topic filter"));
            int rc = mq_sub_entry_check(f, o, p->version, sub);
            if (rc)
                FAIL(rc, mqlite_strerror(rc));
        } else if (p->type == MQLITE_PKT_SUBACK ? !suback_code_valid(o, p->version)
                                                : !mq_reason_valid(p->type, o)) {
            FAIL(MQLITE_ERR_REASON_CODE, "reason code not allowed in this packet");
        }
        count++;
    }
    if (count != p->count)
        FAIL(MQLITE_ERR_INVALID, "list count does not match its entries");
    if (count == 0)
        FAIL(unsub ? MQLITE_ERR_UNSUBSCRIBE_EMPTY
                   : sub ? MQLITE_ERR_SUBSCRIBE_EMPTY : MQLITE_ERR_INVALID,
             "the list must have at least one entry");
    *n = s + p->list.len;
    return 0;
}

static int size_body(const mq_packet *p, size_t *n, const char **msg)
{
    switch (p->type) {
    case MQLITE_PKT_CONNECT:
        return size_connect(p, n, msg);
    case MQLITE_PKT_CONNACK:
        if (p->version == MQLITE_V5 ? !mq_reason_valid(p->type, p->reason) : p->reason > 5)
            FAIL(MQLITE_ERR_REASON_CODE, "CONNACK code not allowed");
        if (p->reason && p->session_present)
            FAIL(MQLITE_ERR_CONNACK_FLAGS, "a refusing CONNACK cannot have session present");
        if (p->version == MQLITE_V31 && p->session_present)
            FAIL(MQLITE_ERR_CONNACK_FLAGS, "MQTT 3.1 has no session present flag");
        TRY(enc_check_props(p, p->props, p->type, msg));
        *n = 2 + props_size(p, p->props);
        return 0;
    case MQLITE_PKT_PUBLISH:
        return size_publish(p, n, msg);
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        if (p->packet_id == 0)
            FAIL(MQLITE_ERR_PACKET_ID_ZERO, "a non-zero packet identifier is required");
        /* fall through */
    case MQLITE_PKT_DISCONNECT:
    case MQLITE_PKT_AUTH:
        if (p->type == MQLITE_PKT_AUTH && p->version != MQLITE_V5)
            FAIL(MQLITE_ERR_PACKET_TYPE, "AUTH exists only in MQTT 5.0");
        if (p->version == MQLITE_V5 && !mq_reason_valid(p->type, p->reason))
            FAIL(MQLITE_ERR_REASON_CODE, "reason code not allowed in this packet");
        if (p->version != MQLITE_V5 && p->reason)
            FAIL(MQLITE_ERR_UNSUPPORTED, "reason codes here exist only in MQTT 5.0");
        TRY(enc_check_props(p, p->props, p->type, msg));
        if (p->type == MQLITE_PKT_AUTH && reason_tail_size(p)) {
            mq_prop am;
            if (!mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &am))
                FAIL(MQLITE_ERR_PROTOCOL, "AUTH needs an Authentication Method (MQTT 5.0 "
                                          "3.15.2.2.2)");
        }
        *n = (p->type <= MQLITE_PKT_PUBCOMP ? 2 : 0) + reason_tail_size(p);
        return 0;
    case MQLITE_PKT_SUBSCRIBE:
    case MQLITE_PKT_UNSUBSCRIBE:
    case MQLITE_PKT_SUBACK:
    case MQLITE_PKT_UNSUBACK:
        return size_list(p, n, msg);
    case MQLITE_PKT_PINGREQ:
    case MQLITE_PKT_PINGRESP:
        *n = 0;
        return 0;
    default:
        FAIL(MQLITE_ERR_PACKET_TYPE, "unknown packet type");
    }
}

int mq_encode_size(const mq_packet *p, size_t *size, const char **msg)
{
    if (p->version < MQLITE_V31 || p->version > MQLITE_V5)
        FAIL(MQLITE_ERR_PROTOCOL_LEVEL, "protocol level must be 3, 4 or 5");
    size_t body;
    TRY(size_body(p, &body, msg));
    if (body > MQ_VBI_MAX)
        FAIL(MQLITE_ERR_PACKET_TOO_LARGE, "packet over 268435455 bytes");
    *size = 1 + mq_vbi_size((uint32_t)body) + body;
    return 0;
}

static uint8_t *w_bin(uint8_t *w, mq_view v)
{
    w = mq_put16(w, (uint16_t)v.len);
    if (v.len)
        memcpy(w, v.p, v.len);
    return w + v.len;
}

static uint8_t *w_props(uint8_t *w, const mq_packet *p, mq_view block)
{
    if (p->version != MQLITE_V5)
        return w;
    w = mq_put_vbi(w, block.len);
    if (block.len)
        memcpy(w, block.p, block.len);
    return w + block.len;
}

static uint8_t *w_connect(uint8_t *w, const mq_packet *p)
{
    if (p->version == MQLITE_V31)
        w = w_bin(w, mq_view_make("MQIsdp", 6));
    else
        w = w_bin(w, mq_view_make("MQTT", 4));
    *w++ = p->version;
    *w++ = (uint8_t)((p->has_username ? 0x80 : 0) | (p->has_password ? 0x40 : 0) |
                     (p->will_retain ? 0x20 : 0) | (p->will_qos << 3) | (p->will ? 4 : 0) |
                     (p->clean_start ? 2 : 0));
    w = mq_put16(w, p->keepalive);
    w = w_props(w, p, p->props);
    w = w_bin(w, p->client_id);
    if (p->will) {
        w = w_props(w, p, p->will_props);
        w = w_bin(w, p->will_topic);
        w = w_bin(w, p->will_payload);
    }
    if (p->has_username)
        w = w_bin(w, p->username);
    if (p->has_password)
        w = w_bin(w, p->password);
    return w;
}

static uint8_t *w_reason_tail(uint8_t *w, const mq_packet *p)
{
    if (p->version != MQLITE_V5 || (!p->reason && !p->props.len))
        return w;
    *w++ = p->reason;
    if (p->props.len || p->type == MQLITE_PKT_AUTH)
        w = w_props(w, p, p->props);
    return w;
}

size_t mq_encode_write(const mq_packet *p, uint8_t *out)
{
    size_t body;
    /* Recomputing the size is cheap and keeps the two steps independent. */
    if (size_body(p, &body, NULL))
        return 0;
    uint8_t *w = out;
    *w++ = (uint8_t)(p->type << 4 | mq_header_flags(p));
    w = mq_put_vbi(w, (uint32_t)body);
    switch (p->type) {
    case MQLITE_PKT_CONNECT:
        w = w_connect(w, p);
        break;
    case MQLITE_PKT_CONNACK:
        *w++ = p->session_present ? 1 : 0;
        *w++ = p->reason;
        w = w_props(w, p, p->props);
        break;
    case MQLITE_PKT_PUBLISH:
        w = w_bin(w, p->topic);
        if (p->qos)
            w = mq_put16(w, p->packet_id);
        w = w_props(w, p, p->props);
        if (p->payload.len)
            memcpy(w, p->payload.p, p->payload.len);
        w += p->payload.len;
        break;
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        w = mq_put16(w, p->packet_id);
        w = w_reason_tail(w, p);
        break;
    case MQLITE_PKT_DISCONNECT:
    case MQLITE_PKT_AUTH:
        w = w_reason_tail(w, p);
        break;
    case MQLITE_PKT_SUBSCRIBE:
    case MQLITE_PKT_UNSUBSCRIBE:
    case MQLITE_PKT_SUBACK:
    case MQLITE_PKT_UNSUBACK:
        w = mq_put16(w, p->packet_id);
        if (p->type == MQLITE_PKT_UNSUBACK && p->version != MQLITE_V5)
            break;
        w = w_props(w, p, p->props);
        memcpy(w, p->list.p, p->list.len);
        w += p->list.len;
        break;
    default: /* PINGREQ, PINGRESP */
        break;
    }
    return (size_t)(w - out);
}

int mq_encode_buf(const mq_packet *p, mq_buf *b, const mq_alloc *a, const char **msg)
{
    size_t n;
    TRY(mq_encode_size(p, &n, msg));
    TRY(mq_buf_reserve(b, a, n));
    b->len += mq_encode_write(p, b->p + b->len);
    return 0;
}
