/*
 * props.c - MQTT 5.0 properties (section 2.2.2, Table 2-4): the identifier
 * table, validation of received blocks, iteration and building, and the
 * public mqlite_props list.
 */
#include "props.h"

#include "topic.h"
#include "utf8.h"

#define C(t) (1u << MQLITE_PKT_##t)
#define CW 1u /* Will Properties: bit 0, packet types use bits 1..15 */

typedef struct prop_def {
    uint8_t type;      /* MQLITE_PTYPE_*, 0 = no such property */
    uint8_t bool01;    /* value must be 0 or 1 */
    uint8_t nonzero;   /* value 0 is a protocol error */
    uint16_t ctx;      /* where it may appear */
    uint16_t multi;    /* contexts where it may appear more than once */
    const char *name;
} prop_def;

static const prop_def prop_defs[0x2B] = {
    [0x01] = {MQLITE_PTYPE_BYTE, 1, 0, C(PUBLISH) | CW, 0, "Payload Format Indicator"},
    [0x02] = {MQLITE_PTYPE_U32, 0, 0, C(PUBLISH) | CW, 0, "Message Expiry Interval"},
    [0x03] = {MQLITE_PTYPE_UTF8, 0, 0, C(PUBLISH) | CW, 0, "Content Type"},
    [0x08] = {MQLITE_PTYPE_UTF8, 0, 0, C(PUBLISH) | CW, 0, "Response Topic"},
    [0x09] = {MQLITE_PTYPE_BINARY, 0, 0, C(PUBLISH) | CW, 0, "Correlation Data"},
    [0x0B] = {MQLITE_PTYPE_VBI, 0, 1, C(PUBLISH) | C(SUBSCRIBE), C(PUBLISH),
              "Subscription Identifier"},
    [0x11] = {MQLITE_PTYPE_U32, 0, 0, C(CONNECT) | C(CONNACK) | C(DISCONNECT), 0,
              "Session Expiry Interval"},
    [0x12] = {MQLITE_PTYPE_UTF8, 0, 0, C(CONNACK), 0, "Assigned Client Identifier"},
    [0x13] = {MQLITE_PTYPE_U16, 0, 0, C(CONNACK), 0, "Server Keep Alive"},
    [0x15] = {MQLITE_PTYPE_UTF8, 0, 0, C(CONNECT) | C(CONNACK) | C(AUTH), 0,
              "Authentication Method"},
    [0x16] = {MQLITE_PTYPE_BINARY, 0, 0, C(CONNECT) | C(CONNACK) | C(AUTH), 0,
              "Authentication Data"},
    [0x17] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNECT), 0, "Request Problem Information"},
    [0x18] = {MQLITE_PTYPE_U32, 0, 0, CW, 0, "Will Delay Interval"},
    [0x19] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNECT), 0, "Request Response Information"},
    [0x1A] = {MQLITE_PTYPE_UTF8, 0, 0, C(CONNACK), 0, "Response Information"},
    [0x1C] = {MQLITE_PTYPE_UTF8, 0, 0, C(CONNACK) | C(DISCONNECT), 0, "Server Reference"},
    [0x1F] = {MQLITE_PTYPE_UTF8, 0, 0,
              C(CONNACK) | C(PUBACK) | C(PUBREC) | C(PUBREL) | C(PUBCOMP) | C(SUBACK) |
                  C(UNSUBACK) | C(DISCONNECT) | C(AUTH),
              0, "Reason String"},
    [0x21] = {MQLITE_PTYPE_U16, 0, 1, C(CONNECT) | C(CONNACK), 0, "Receive Maximum"},
    [0x22] = {MQLITE_PTYPE_U16, 0, 0, C(CONNECT) | C(CONNACK), 0, "Topic Alias Maximum"},
    [0x23] = {MQLITE_PTYPE_U16, 0, 1, C(PUBLISH), 0, "Topic Alias"},
    [0x24] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNACK), 0, "Maximum QoS"},
    [0x25] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNACK), 0, "Retain Available"},
    [0x26] = {MQLITE_PTYPE_PAIR, 0, 0,
              C(CONNECT) | C(CONNACK) | C(PUBLISH) | CW | C(PUBACK) | C(PUBREC) | C(PUBREL) |
                  C(PUBCOMP) | C(SUBSCRIBE) | C(SUBACK) | C(UNSUBSCRIBE) | C(UNSUBACK) |
                  C(DISCONNECT) | C(AUTH),
              0xffffu, "User Property"},
    [0x27] = {MQLITE_PTYPE_U32, 0, 1, C(CONNECT) | C(CONNACK), 0, "Maximum Packet Size"},
    [0x28] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNACK), 0, "Wildcard Subscription Available"},
    [0x29] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNACK), 0, "Subscription Identifier Available"},
    [0x2A] = {MQLITE_PTYPE_BYTE, 1, 0, C(CONNACK), 0, "Shared Subscription Available"},
};
#undef C

static const prop_def *def_of(unsigned id)
{
    if (id >= MQ_ARRAY_LEN(prop_defs) || prop_defs[id].type == 0)
        return NULL;
    return &prop_defs[id];
}

static uint16_t ctx_bit(int ctx)
{
    return ctx == MQ_PCTX_WILL ? CW : (uint16_t)(1u << ctx);
}

int mq_prop_type(unsigned id)
{
    const prop_def *d = def_of(id);
    return d ? d->type : 0;
}

int mq_prop_allowed(unsigned id, int ctx)
{
    const prop_def *d = def_of(id);
    return d && (d->ctx & ctx_bit(ctx));
}

/* Read one property at block[off..]; validates its type encoding. */
static int read_prop(mq_view b, uint32_t *off, mq_prop *out, int strict)
{
    uint32_t o = *off;
    uint32_t id;
    out->id = 0;
    int n = mq_get_vbi(b.p + o, b.len - o, &id);
    if (n == 0)
        return MQLITE_ERR_TRUNCATED;
    if (n < 0)
        return MQLITE_ERR_PROPERTY_ID;
    o += (uint32_t)n;
    const prop_def *d = def_of(id);
    out->id = (uint8_t)id;
    if (!d)
        return MQLITE_ERR_PROPERTY_ID;
    out->type = d->type;
    out->num = 0;
    out->key = out->val = mq_view_make(NULL, 0);
    uint32_t left = b.len - o;
    switch (d->type) {
    case MQLITE_PTYPE_BYTE:
        if (left < 1)
            return MQLITE_ERR_TRUNCATED;
        out->num = b.p[o];
        o += 1;
        break;
    case MQLITE_PTYPE_U16:
        if (left < 2)
            return MQLITE_ERR_TRUNCATED;
        out->num = mq_get16(b.p + o);
        o += 2;
        break;
    case MQLITE_PTYPE_U32:
        if (left < 4)
            return MQLITE_ERR_TRUNCATED;
        out->num = mq_get32(b.p + o);
        o += 4;
        break;
    case MQLITE_PTYPE_VBI:
        n = mq_get_vbi(b.p + o, left, &out->num);
        if (n == 0)
            return MQLITE_ERR_TRUNCATED;
        if (n < 0)
            return MQLITE_ERR_PROPERTY_TYPE;
        o += (uint32_t)n;
        break;
    case MQLITE_PTYPE_PAIR:
    case MQLITE_PTYPE_UTF8:
    case MQLITE_PTYPE_BINARY:
        for (int part = 0; part < (d->type == MQLITE_PTYPE_PAIR ? 2 : 1); part++) {
            if (b.len - o < 2)
                return MQLITE_ERR_TRUNCATED;
            uint32_t len = mq_get16(b.p + o);
            o += 2;
            if (b.len - o < len)
                return MQLITE_ERR_TRUNCATED;
            mq_view v = mq_view_make(b.p + o, len);
            o += len;
            if (d->type != MQLITE_PTYPE_BINARY) {
                int rc = mq_utf8_check(v.p, v.len, strict);
                if (rc)
                    return rc;
            }
            if (d->type == MQLITE_PTYPE_PAIR && part == 0)
                out->key = v;
            else
                out->val = v;
        }
        break;
    default:
        return MQLITE_ERR_PROPERTY_ID;
    }
    *off = o;
    return 0;
}

/* Value rules beyond the data type (protocol errors in MQTT 5.0). */
static int check_value(const prop_def *d, const mq_prop *p)
{
    /* MQTT 5.0 [MQTT-3.3.2-8]: Topic Alias 0 -> DISCONNECT 0x94. */
    if (p->id == MQLITE_PROP_TOPIC_ALIAS && p->num == 0)
        return MQLITE_ERR_TOPIC_ALIAS;
    if (d->bool01 && p->num > 1)
        return MQLITE_ERR_PROPERTY_VALUE;
    if (d->nonzero && p->num == 0)
        return MQLITE_ERR_PROPERTY_VALUE;
    /* MQTT 5.0 [MQTT-3.3.2-14]: the Response Topic is a Topic Name, so it
     * MUST NOT contain wildcards. */
    if (p->id == MQLITE_PROP_RESPONSE_TOPIC && mq_topic_check_name(p->val, NULL) != 0)
        return MQLITE_ERR_PROPERTY_VALUE;
    return 0;
}

int mq_props_validate(mq_view block, int ctx, int strict, unsigned *bad_id)
{
    uint64_t seen = 0;
    uint32_t off = 0;
    uint16_t bit = ctx_bit(ctx);
    if (bad_id)
        *bad_id = 0;
    while (off < block.len) {
        mq_prop p;
        int rc = read_prop(block, &off, &p, strict);
        if (bad_id)
            *bad_id = p.id;
        if (rc)
            return rc;
        const prop_def *d = def_of(p.id);
        if (!(d->ctx & bit))
            return MQLITE_ERR_PROPERTY_PACKET;
        uint64_t m = (uint64_t)1 << p.id;
        if ((seen & m) && !(d->multi & bit))
            return MQLITE_ERR_PROPERTY_DUPLICATE;
        seen |= m;
        rc = check_value(d, &p);
        if (rc)
            return rc;
    }
    if (bad_id)
        *bad_id = 0;
    return 0;
}

int mq_props_next(mq_view block, uint32_t *off, mq_prop *out)
{
    if (*off >= block.len)
        return 0;
    return read_prop(block, off, out, 0) == 0;
}

int mq_props_get(mq_view block, unsigned id, mq_prop *out)
{
    uint32_t off = 0;
    while (mq_props_next(block, &off, out))
        if (out->id == id)
            return 1;
    return 0;
}

uint32_t mq_props_u32(mq_view block, unsigned id, uint32_t def)
{
    mq_prop p;
    return mq_props_get(block, id, &p) ? p.num : def;
}

/* ---- building ---- */

static int put_check_dup(const mq_buf *b, const prop_def *d, unsigned id)
{
    if (d->multi)
        return 0;
    mq_prop p;
    return mq_props_get(mq_view_make(b->p, b->len), id, &p) ? MQLITE_ERR_PROPERTY_DUPLICATE : 0;
}

int mq_props_put_int(mq_buf *b, const mq_alloc *a, unsigned id, uint32_t v)
{
    const prop_def *d = def_of(id);
    if (!d)
        return MQLITE_ERR_PROPERTY_ID;
    uint8_t tmp[8], *w = mq_put_vbi(tmp, id);
    switch (d->type) {
    case MQLITE_PTYPE_BYTE:
        if (v > 0xff)
            return MQLITE_ERR_RANGE;
        *w++ = (uint8_t)v;
        break;
    case MQLITE_PTYPE_U16:
        if (v > 0xffff)
            return MQLITE_ERR_RANGE;
        w = mq_put16(w, (uint16_t)v);
        break;
    case MQLITE_PTYPE_U32:
        w = mq_put32(w, v);
        break;
    case MQLITE_PTYPE_VBI:
        if (v > MQ_VBI_MAX)
            return MQLITE_ERR_RANGE;
        w = mq_put_vbi(w, v);
        break;
    default:
        return MQLITE_ERR_PROPERTY_TYPE;
    }
    mq_prop p = {.id = (uint8_t)id, .type = d->type, .num = v};
    int rc = check_value(d, &p);
    if (!rc)
        rc = put_check_dup(b, d, id);
    if (!rc)
        rc = mq_buf_append(b, a, tmp, (size_t)(w - tmp));
    return rc;
}

static int put_str(mq_buf *b, const mq_alloc *a, mq_view v)
{
    uint8_t len[2];
    mq_put16(len, (uint16_t)v.len);
    int rc = mq_buf_append(b, a, len, 2);
    if (!rc)
        rc = mq_buf_append(b, a, v.p, v.len);
    return rc;
}

int mq_props_put_bytes(mq_buf *b, const mq_alloc *a, unsigned id, mq_view v)
{
    const prop_def *d = def_of(id);
    if (!d)
        return MQLITE_ERR_PROPERTY_ID;
    if (d->type != MQLITE_PTYPE_UTF8 && d->type != MQLITE_PTYPE_BINARY)
        return MQLITE_ERR_PROPERTY_TYPE;
    if (v.len > 0xffff)
        return MQLITE_ERR_RANGE;
    int rc = 0;
    if (d->type == MQLITE_PTYPE_UTF8)
        rc = mq_utf8_check(v.p, v.len, 0);
    mq_prop p = {.id = (uint8_t)id, .type = d->type, .val = v};
    if (!rc)
        rc = check_value(d, &p);
    if (!rc)
        rc = put_check_dup(b, d, id);
    if (rc)
        return rc;
    size_t old = b->len;
    uint8_t idb = (uint8_t)id;
    rc = mq_buf_reserve(b, a, 3 + v.len);
    if (!rc)
        rc = mq_buf_append(b, a, &idb, 1);
    if (!rc)
        rc = put_str(b, a, v);
    if (rc)
        b->len = old;
    return rc;
}

int mq_props_put_pair(mq_buf *b, const mq_alloc *a, mq_view key, mq_view val)
{
    if (key.len > 0xffff || val.len > 0xffff)
        return MQLITE_ERR_RANGE;
    int rc = mq_utf8_check(key.p, key.len, 0);
    if (!rc)
        rc = mq_utf8_check(val.p, val.len, 0);
    if (rc)
        return rc;
    size_t old = b->len;
    uint8_t idb = MQLITE_PROP_USER;
    rc = mq_buf_reserve(b, a, 5 + key.len + val.len);
    if (!rc)
        rc = mq_buf_append(b, a, &idb, 1);
    if (!rc)
        rc = put_str(b, a, key);
    if (!rc)
        rc = put_str(b, a, val);
    if (rc)
        b->len = old;
    return rc;
}

/* ---- public names ---- */

MQLITE_API int32_t mqlite_property_type(int32_t id)
{
    int t = id >= 0 ? mq_prop_type((unsigned)id) : 0;
    return t ? t : MQLITE_ERR_PROPERTY_ID;
}

MQLITE_API const char *mqlite_property_name(int32_t id)
{
    const prop_def *d = id >= 0 ? def_of((unsigned)id) : NULL;
    return d ? d->name : NULL;
}
