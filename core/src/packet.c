/*
 * packet.c - the public codec objects: mqlite_packet and mqlite_props.
 *
 * These are the slow, convenient path for tools, tests and bindings: they
 * own NUL-terminated copies of what they hold. The client and broker use
 * the allocation-free mq_packet of codec.h directly.
 */
#include "codec.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

#include <stdio.h>

#define PACKET_MAGIC 0x6d71706bu /* "mqpk" */
#define PROPS_MAGIC 0x6d717072u  /* "mqpr" */

/* ---------------------------------------------------------------------
 * mqlite_props
 * --------------------------------------------------------------------- */

void mq_plist_init(mqlite_props *pr, const mq_alloc *a, int embedded)
{
    memset(pr, 0, sizeof *pr);
    pr->magic = PROPS_MAGIC;
    pr->embedded = (uint8_t)embedded;
    pr->a = *a;
}

void mq_plist_clear(mqlite_props *pr)
{
    mq_buf_free(&pr->wire, &pr->a);
    mq_buf_free(&pr->text, &pr->a);
    mq_free(&pr->a, pr->ents);
    pr->ents = NULL;
    pr->n = pr->cap = 0;
}

static int text_add(mqlite_props *pr, mq_view v, uint32_t *off)
{
    static const uint8_t nul = 0;
    *off = (uint32_t)pr->text.len;
    int rc = mq_buf_reserve(&pr->text, &pr->a, v.len + 1);
    if (!rc) {
        mq_buf_append(&pr->text, &pr->a, v.p, v.len);
        mq_buf_append(&pr->text, &pr->a, &nul, 1);
    }
    return rc;
}

/* Index the properties of wire[from..]. On failure the index is rolled back
 * to what it was, and the caller restores the wire length. */
static int props_index_from(mqlite_props *pr, size_t from)
{
    mq_view block = mq_view_make(pr->wire.p, pr->wire.len);
    uint32_t off = (uint32_t)from;
    int32_t n0 = pr->n;
    size_t t0 = pr->text.len;
    mq_prop p;
    while (mq_props_next(block, &off, &p)) {
        if (pr->n == pr->cap) {
            int32_t cap = pr->cap ? pr->cap * 2 : 4;
            mq_pent *e = mq_realloc(&pr->a, pr->ents, (size_t)cap * sizeof *e);
            if (!e)
                goto fail;
            pr->ents = e;
            pr->cap = cap;
        }
        mq_pent *e = &pr->ents[pr->n];
        memset(e, 0, sizeof *e);
        e->id = p.id;
        e->type = p.type;
        e->num = p.num;
        if (p.type == MQLITE_PTYPE_PAIR && text_add(pr, p.key, &e->key_off))
            goto fail;
        e->key_len = p.key.len;
        if (p.type >= MQLITE_PTYPE_UTF8 && text_add(pr, p.val, &e->val_off))
            goto fail;
        e->val_len = p.val.len;
        pr->n++;
    }
    return 0;
fail:
    pr->n = n0;
    pr->text.len = t0;
    return MQLITE_ERR_NOMEM;
}

/* Replace the whole list with a copy of a (validated) wire block. */
int mq_plist_assign(mqlite_props *pr, mq_view block)
{
    mqlite_props tmp;
    mq_plist_init(&tmp, &pr->a, pr->embedded);
    if (mq_buf_append(&tmp.wire, &tmp.a, block.p, block.len) || props_index_from(&tmp, 0)) {
        mq_plist_clear(&tmp);
        return MQLITE_ERR_NOMEM;
    }
    mq_plist_clear(pr);
    *pr = tmp;
    return 0;
}

static int props_ok(const mqlite_props *pr)
{
    return pr && pr->magic == PROPS_MAGIC;
}

MQLITE_API mqlite_props *mqlite_props_new(void)
{
    mqlite_props *pr = mq_malloc(&mq_default_alloc, sizeof *pr);
    if (pr)
        mq_plist_init(pr, &mq_default_alloc, 0);
    return pr;
}

MQLITE_API void mqlite_props_free(mqlite_props *pr)
{
    if (!props_ok(pr) || pr->embedded)
        return;
    mq_plist_clear(pr);
    pr->magic = 0;
    mq_free(&pr->a, pr);
}

/* Append through one of the mq_props_put_* builders, then index. */
static int32_t props_added(mqlite_props *pr, size_t old, int rc)
{
    if (rc == 0)
        rc = props_index_from(pr, old);
    if (rc)
        pr->wire.len = old;
    return rc;
}

MQLITE_API int32_t mqlite_props_add_int(mqlite_props *pr, int32_t id, int64_t value)
{
    if (!props_ok(pr) || pr->embedded)
        return MQLITE_ERR_MISUSE;
    if (id < 0 || !mq_prop_type((unsigned)id))
        return MQLITE_ERR_PROPERTY_ID;
    if (value < 0 || value > 0xffffffffLL)
        return MQLITE_ERR_RANGE;
    size_t old = pr->wire.len;
    return props_added(pr, old, mq_props_put_int(&pr->wire, &pr->a, (unsigned)id,
                                                 (uint32_t)value));
}

MQLITE_API int32_t mqlite_props_add_bytes(mqlite_props *pr, int32_t id, const void *value,
                                          size_t len)
{
    if (!props_ok(pr) || pr->embedded)
        return MQLITE_ERR_MISUSE;
    if (!value && len)
        return MQLITE_ERR_INVALID;
    if (id < 0 || !mq_prop_type((unsigned)id))
        return MQLITE_ERR_PROPERTY_ID;
    if (len > 0xffff)
        return MQLITE_ERR_RANGE;
    size_t old = pr->wire.len;
    return props_added(pr, old,
                       mq_props_put_bytes(&pr->wire, &pr->a, (unsigned)id,
                                          mq_view_make(value, len)));
}

MQLITE_API int32_t mqlite_props_add_str(mqlite_props *pr, int32_t id, const char *value)
{
    if (!value)
        return MQLITE_ERR_INVALID;
    if (id >= 0 && mq_prop_type((unsigned)id) == MQLITE_PTYPE_BINARY)
        return MQLITE_ERR_PROPERTY_TYPE;
    return mqlite_props_add_bytes(pr, id, value, strlen(value));
}

MQLITE_API int32_t mqlite_props_add_pair(mqlite_props *pr, const char *key, const char *value)
{
    if (!props_ok(pr) || pr->embedded)
        return MQLITE_ERR_MISUSE;
    if (!key || !value)
        return MQLITE_ERR_INVALID;
    size_t old = pr->wire.len;
    return props_added(pr, old,
                       mq_props_put_pair(&pr->wire, &pr->a, mq_view_cstr(key),
                                         mq_view_cstr(value)));
}

MQLITE_API int32_t mqlite_props_count(const mqlite_props *pr)
{
    return props_ok(pr) ? pr->n : 0;
}

static const mq_pent *ent_at(const mqlite_props *pr, int32_t i)
{
    return props_ok(pr) && i >= 0 && i < pr->n ? &pr->ents[i] : NULL;
}

MQLITE_API int32_t mqlite_props_id(const mqlite_props *pr, int32_t i)
{
    const mq_pent *e = ent_at(pr, i);
    return e ? e->id : MQLITE_ERR_RANGE;
}

MQLITE_API int64_t mqlite_props_int(const mqlite_props *pr, int32_t i)
{
    const mq_pent *e = ent_at(pr, i);
    if (!e)
        return MQLITE_ERR_RANGE;
    return e->type <= MQLITE_PTYPE_VBI ? (int64_t)e->num : MQLITE_ERR_PROPERTY_TYPE;
}

MQLITE_API const void *mqlite_props_value(const mqlite_props *pr, int32_t i, size_t *len)
{
    const mq_pent *e = ent_at(pr, i);
    if (len)
        *len = 0;
    if (!e || e->type < MQLITE_PTYPE_UTF8)
        return NULL;
    if (len)
        *len = e->val_len;
    return pr->text.p + e->val_off;
}

MQLITE_API const char *mqlite_props_key(const mqlite_props *pr, int32_t i, size_t *len)
{
    const mq_pent *e = ent_at(pr, i);
    if (len)
        *len = 0;
    if (!e || e->type != MQLITE_PTYPE_PAIR)
        return NULL;
    if (len)
        *len = e->key_len;
    return (const char *)pr->text.p + e->key_off;
}

MQLITE_API int32_t mqlite_props_find(const mqlite_props *pr, int32_t id, int32_t start)
{
    if (!props_ok(pr))
        return MQLITE_ERR_NOT_FOUND;
    for (int32_t i = start < 0 ? 0 : start; i < pr->n; i++)
        if (pr->ents[i].id == id)
            return i;
    return MQLITE_ERR_NOT_FOUND;
}

mq_view mq_props_list_wire(const mqlite_props *pr)
{
    return props_ok(pr) ? mq_view_make(pr->wire.p, pr->wire.len) : mq_view_make(NULL, 0);
}

/* ---------------------------------------------------------------------
 * mqlite_packet
 * --------------------------------------------------------------------- */

#define NFIELDS 8 /* MQLITE_PF_TOPIC .. MQLITE_PF_PROTOCOL_NAME */

typedef struct lent {
    uint32_t off, len; /* filter text: in names (copy) or list (NOCOPY) */
    uint8_t opt;
} lent;

struct mqlite_packet {
    uint32_t magic;
    uint8_t nocopy;
    mq_alloc a;
    mq_packet pkt;
    char *own[NFIELDS];  /* NUL-terminated copies of string fields */
    mq_buf list;         /* owned list in wire form */
    mq_buf names;        /* NUL-terminated filters of the list */
    lent *ents;
    int32_t nents, capents;
    mqlite_props props, will_props;
    mq_err err;
};

static int packet_ok(const mqlite_packet *p)
{
    return p && p->magic == PACKET_MAGIC;
}

static mq_view *field_view(mq_packet *k, int32_t field)
{
    switch (field) {
    case MQLITE_PF_TOPIC:
        return k->type == MQLITE_PKT_PUBLISH ? &k->topic : NULL;
    case MQLITE_PF_PAYLOAD:
        return k->type == MQLITE_PKT_PUBLISH ? &k->payload : NULL;
    default:
        break;
    }
    if (k->type != MQLITE_PKT_CONNECT)
        return NULL;
    switch (field) {
    case MQLITE_PF_CLIENT_ID:
        return &k->client_id;
    case MQLITE_PF_USERNAME:
        return &k->username;
    case MQLITE_PF_PASSWORD:
        return &k->password;
    case MQLITE_PF_WILL_TOPIC:
        return &k->will_topic;
    case MQLITE_PF_WILL_PAYLOAD:
        return &k->will_payload;
    case MQLITE_PF_PROTOCOL_NAME:
        return &k->protocol_name;
    default:
        return NULL;
    }
}

static mqlite_packet *packet_alloc(const mq_alloc *a)
{
    mqlite_packet *p = mq_calloc(a, sizeof *p);
    if (!p)
        return NULL;
    p->magic = PACKET_MAGIC;
    p->a = *a;
    mq_plist_init(&p->props, a, 1);
    mq_plist_init(&p->will_props, a, 1);
    return p;
}

static void packet_release(mqlite_packet *p)
{
    for (int i = 0; i < NFIELDS; i++)
        mq_free(&p->a, p->own[i]);
    mq_buf_free(&p->list, &p->a);
    mq_buf_free(&p->names, &p->a);
    mq_free(&p->a, p->ents);
    mq_plist_clear(&p->props);
    mq_plist_clear(&p->will_props);
}

const mq_packet *mq_packet_inner(const mqlite_packet *p)
{
    return packet_ok(p) ? &p->pkt : NULL;
}

MQLITE_API void mqlite_packet_free(mqlite_packet *p)
{
    if (!packet_ok(p))
        return;
    packet_release(p);
    p->magic = 0;
    mq_free(&p->a, p);
}

MQLITE_API mqlite_packet *mqlite_packet_new(int32_t type, int32_t version, int32_t *err)
{
    int32_t rc = 0;
    mqlite_packet *p = NULL;
    if (type < MQLITE_PKT_CONNECT || type > MQLITE_PKT_AUTH || version < MQLITE_V31 ||
        version > MQLITE_V5 || (type == MQLITE_PKT_AUTH && version != MQLITE_V5))
        rc = MQLITE_ERR_INVALID;
    else if (!(p = packet_alloc(&mq_default_alloc)))
        rc = MQLITE_ERR_NOMEM;
    if (err)
        *err = rc;
    if (!p)
        return NULL;
    p->pkt.type = (uint8_t)type;
    p->pkt.version = (uint8_t)version;
    if (type == MQLITE_PKT_CONNECT) {
        p->pkt.clean_start = 1;
        p->pkt.keepalive = 60;
    }
    return p;
}

/* Index the list of a list-carrying packet (views in `base`). */
static int list_index(mqlite_packet *p, int copy)
{
    uint32_t off = 0;
    mq_view f = {0};
    uint8_t o;
    p->nents = 0;
    p->names.len = 0;
    while (mq_list_next(&p->pkt, &off, &f, &o)) {
        if (p->nents == p->capents) {
            int32_t cap = p->capents ? p->capents * 2 : 4;
            lent *e = mq_realloc(&p->a, p->ents, (size_t)cap * sizeof *e);
            if (!e)
                return MQLITE_ERR_NOMEM;
            p->ents = e;
            p->capents = cap;
        }
        lent *e = &p->ents[p->nents++];
        e->opt = o;
        e->len = f.len;
        if (p->pkt.type == MQLITE_PKT_SUBACK || p->pkt.type == MQLITE_PKT_UNSUBACK) {
            e->off = 0;
        } else if (copy) {
            static const uint8_t nul = 0;
            e->off = (uint32_t)p->names.len;
            if (mq_buf_reserve(&p->names, &p->a, f.len + 1))
                return MQLITE_ERR_NOMEM;
            mq_buf_append(&p->names, &p->a, f.p, f.len);
            mq_buf_append(&p->names, &p->a, &nul, 1);
        } else {
            e->off = (uint32_t)(f.p - p->pkt.list.p);
        }
    }
    return 0;
}

/* Give a decoded packet its own copies of everything it points to. */
static int packet_adopt(mqlite_packet *p)
{
    for (int32_t f = MQLITE_PF_TOPIC; f < MQLITE_PF_TOPIC + NFIELDS; f++) {
        mq_view *v = field_view(&p->pkt, f);
        if (!v)
            continue;
        char *s = mq_memdup0(&p->a, v->p, v->len);
        if (!s)
            return MQLITE_ERR_NOMEM;
        p->own[f - MQLITE_PF_TOPIC] = s;
        v->p = (const uint8_t *)s;
    }
    if (mq_buf_append(&p->list, &p->a, p->pkt.list.p, p->pkt.list.len))
        return MQLITE_ERR_NOMEM;
    p->pkt.list = mq_view_make(p->list.p, p->list.len);
    if (mq_plist_assign(&p->props, p->pkt.props) || mq_plist_assign(&p->will_props, p->pkt.will_props))
        return MQLITE_ERR_NOMEM;
    p->pkt.props = mq_props_list_wire(&p->props);
    p->pkt.will_props = mq_props_list_wire(&p->will_props);
    return list_index(p, 1);
}

MQLITE_API mqlite_packet *mqlite_packet_decode(const void *buf, size_t len, int32_t version,
                                               int32_t flags, uint32_t max_packet_size,
                                               size_t *used, size_t *need, int32_t *err)
{
    int32_t dummy;
    if (!err)
        err = &dummy;
    *err = 0;
    if (need)
        *need = 0;
    if ((!buf && len) || !used || version < 0 || version > MQLITE_V5 ||
        (version > 0 && version < MQLITE_V31)) {
        *err = MQLITE_ERR_INVALID;
        return NULL;
    }
    mq_decode_opts o = {0};
    o.version = (uint8_t)version;
    o.strict_utf8 = (flags & MQLITE_DECODE_STRICT_UTF8) != 0;
    o.role = (flags & MQLITE_DECODE_SERVER)   ? MQ_ROLE_SERVER
             : (flags & MQLITE_DECODE_CLIENT) ? MQ_ROLE_CLIENT
                                              : MQ_ROLE_ANY;
    o.max_packet_size = max_packet_size;
    mq_packet k;
    int rc = mq_decode(buf, len, &o, &k, used, need, NULL);
    if (rc == MQ_NEED_MORE)
        return NULL;
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    mqlite_packet *p = packet_alloc(&mq_default_alloc);
    if (!p) {
        *err = MQLITE_ERR_NOMEM;
        return NULL;
    }
    p->pkt = k;
    p->nocopy = (flags & MQLITE_DECODE_NOCOPY) != 0;
    if (p->nocopy)
        rc = mq_plist_assign(&p->props, k.props) || mq_plist_assign(&p->will_props, k.will_props) ||
                     list_index(p, 0)
                 ? MQLITE_ERR_NOMEM
                 : 0;
    else
        rc = packet_adopt(p);
    if (rc) {
        mqlite_packet_free(p);
        *err = rc;
        return NULL;
    }
    /* Properties are read through p->props; the packet's block view now
     * points to the owned copy either way. */
    p->pkt.props = mq_props_list_wire(&p->props);
    p->pkt.will_props = mq_props_list_wire(&p->will_props);
    return p;
}

MQLITE_API int32_t mqlite_packet_encode(mqlite_packet *p, void *buf, size_t cap, size_t *len)
{
    if (!packet_ok(p) || !len)
        return MQLITE_ERR_MISUSE;
    size_t n;
    const char *msg = NULL;
    int rc = mq_encode_size(&p->pkt, &n, &msg);
    if (rc) {
        *len = 0;
        return mq_err_set(&p->err, rc, "cannot encode %s: %s",
                          mqlite_packet_type_name(p->pkt.type), msg ? msg : mqlite_strerror(rc));
    }
    *len = n;
    if (!buf || cap < n)
        return mq_err_set(&p->err, MQLITE_ERR_BUFFER, "%s needs %zu bytes, buffer has %zu",
                          mqlite_packet_type_name(p->pkt.type), n, cap);
    mq_encode_write(&p->pkt, buf);
    return 0;
}

MQLITE_API const char *mqlite_packet_errmsg(const mqlite_packet *p)
{
    return packet_ok(p) ? p->err.msg : "";
}

/* Which integer fields each packet type has. */
static int int_field_applies(const mq_packet *k, int32_t f)
{
    int t = k->type;
    switch (f) {
    case MQLITE_PF_VERSION:
    case MQLITE_PF_TYPE:
        return 1;
    case MQLITE_PF_QOS:
    case MQLITE_PF_RETAIN:
    case MQLITE_PF_DUP:
        return t == MQLITE_PKT_PUBLISH;
    case MQLITE_PF_PACKET_ID:
        return (t >= MQLITE_PKT_PUBLISH && t <= MQLITE_PKT_UNSUBACK);
    case MQLITE_PF_REASON_CODE:
        return t == MQLITE_PKT_CONNACK ||
               (t >= MQLITE_PKT_PUBACK && t <= MQLITE_PKT_PUBCOMP) ||
               t == MQLITE_PKT_DISCONNECT || t == MQLITE_PKT_AUTH;
    case MQLITE_PF_SESSION_PRESENT:
        return t == MQLITE_PKT_CONNACK;
    case MQLITE_PF_KEEPALIVE_S:
    case MQLITE_PF_CLEAN_START:
    case MQLITE_PF_WILL:
    case MQLITE_PF_WILL_QOS:
    case MQLITE_PF_WILL_RETAIN:
    case MQLITE_PF_HAS_USERNAME:
    case MQLITE_PF_HAS_PASSWORD:
        return t == MQLITE_PKT_CONNECT;
    default:
        return 0;
    }
}

MQLITE_API int64_t mqlite_packet_int(const mqlite_packet *p, int32_t field)
{
    if (!packet_ok(p))
        return MQLITE_ERR_MISUSE;
    const mq_packet *k = &p->pkt;
    if (!int_field_applies(k, field))
        return MQLITE_ERR_OPTION;
    switch (field) {
    case MQLITE_PF_QOS:
        return k->qos;
    case MQLITE_PF_RETAIN:
        return k->retain;
    case MQLITE_PF_DUP:
        return k->dup;
    case MQLITE_PF_PACKET_ID:
        return k->packet_id;
    case MQLITE_PF_REASON_CODE:
        return k->reason;
    case MQLITE_PF_SESSION_PRESENT:
        return k->session_present;
    case MQLITE_PF_KEEPALIVE_S:
        return k->keepalive;
    case MQLITE_PF_CLEAN_START:
        return k->clean_start;
    case MQLITE_PF_WILL:
        return k->will;
    case MQLITE_PF_WILL_QOS:
        return k->will_qos;
    case MQLITE_PF_WILL_RETAIN:
        return k->will_retain;
    case MQLITE_PF_VERSION:
        return k->version;
    case MQLITE_PF_TYPE:
        return k->type;
    case MQLITE_PF_HAS_USERNAME:
        return k->has_username;
    default: /* MQLITE_PF_HAS_PASSWORD */
        return k->has_password;
    }
}

static const char *int_field_name(int32_t f)
{
    static const char *const names[] = {
        NULL, "QOS", "RETAIN", "DUP", "PACKET_ID", "REASON_CODE", "SESSION_PRESENT",
        "KEEPALIVE_S", "CLEAN_START", "WILL", "WILL_QOS", "WILL_RETAIN", "VERSION", "TYPE",
        "HAS_USERNAME", "HAS_PASSWORD"};
    return f > 0 && f < (int32_t)MQ_ARRAY_LEN(names) ? names[f] : "?";
}

MQLITE_API int32_t mqlite_packet_set_int(mqlite_packet *p, int32_t field, int64_t v)
{
    if (!packet_ok(p))
        return MQLITE_ERR_MISUSE;
    mq_packet *k = &p->pkt;
    if (!int_field_applies(k, field) || field == MQLITE_PF_VERSION || field == MQLITE_PF_TYPE ||
        field == MQLITE_PF_HAS_USERNAME || field == MQLITE_PF_HAS_PASSWORD)
        return mq_err_set(&p->err, MQLITE_ERR_OPTION,
                          "field %d is unknown, read-only or not part of %s", (int)field,
                          mqlite_packet_type_name(k->type));
    int64_t max = 1;
    if (field == MQLITE_PF_QOS || field == MQLITE_PF_WILL_QOS)
        max = 2;
    else if (field == MQLITE_PF_PACKET_ID || field == MQLITE_PF_KEEPALIVE_S)
        max = 65535;
    else if (field == MQLITE_PF_REASON_CODE)
        max = 255;
    if (v < 0 || v > max)
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "MQLITE_PF_%s must be 0..%lld, not %lld",
                          int_field_name(field), (long long)max, (long long)v);
    uint8_t b = (uint8_t)v;
    switch (field) {
    case MQLITE_PF_QOS:
        k->qos = b;
        break;
    case MQLITE_PF_RETAIN:
        k->retain = b;
        break;
    case MQLITE_PF_DUP:
        k->dup = b;
        break;
    case MQLITE_PF_PACKET_ID:
        k->packet_id = (uint16_t)v;
        break;
    case MQLITE_PF_REASON_CODE:
        k->reason = b;
        break;
    case MQLITE_PF_SESSION_PRESENT:
        k->session_present = b;
        break;
    case MQLITE_PF_KEEPALIVE_S:
        k->keepalive = (uint16_t)v;
        break;
    case MQLITE_PF_CLEAN_START:
        k->clean_start = b;
        break;
    case MQLITE_PF_WILL:
        k->will = b;
        break;
    case MQLITE_PF_WILL_QOS:
        k->will_qos = b;
        break;
    default: /* MQLITE_PF_WILL_RETAIN */
        k->will_retain = b;
        break;
    }
    return 0;
}

MQLITE_API const void *mqlite_packet_bytes(const mqlite_packet *p, int32_t field, size_t *len)
{
    if (len)
        *len = 0;
    if (!packet_ok(p))
        return NULL;
    mq_view *v = field_view((mq_packet *)&p->pkt, field);
    if (!v)
        return NULL;
    int present = 1;
    if (field == MQLITE_PF_USERNAME)
        present = p->pkt.has_username;
    else if (field == MQLITE_PF_PASSWORD)
        present = p->pkt.has_password;
    else if (field == MQLITE_PF_WILL_TOPIC || field == MQLITE_PF_WILL_PAYLOAD)
        present = p->pkt.will;
    if (!present)
        return NULL;
    if (len)
        *len = v->len;
    return v->p ? (const void *)v->p : (const void *)"";
}

static int check_set_bytes(mqlite_packet *p, int32_t field, mq_view v)
{
    const char *msg = NULL;
    int rc = 0;
    if (field != MQLITE_PF_PAYLOAD && v.len > 0xffff)
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "field is %u bytes; the maximum is 65535",
                          (unsigned)v.len);
    if (field == MQLITE_PF_PAYLOAD && v.len > MQ_VBI_MAX)
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "payload too large");
    if (field == MQLITE_PF_TOPIC || field == MQLITE_PF_WILL_TOPIC) {
        /* 5.0: an empty topic name is allowed with a Topic Alias; encode
         * checks that the alias is there. */
        if (v.len == 0 && field == MQLITE_PF_TOPIC && p->pkt.version == MQLITE_V5)
            return 0;
        rc = mq_topic_check_name(v, &msg);
        if (rc)
            return mq_err_set(&p->err, rc, "topic \"%.*s\": %s", (int)(v.len > 200 ? 200 : v.len),
                              (const char *)v.p, msg ? msg : mqlite_strerror(rc));
    } else if (field == MQLITE_PF_CLIENT_ID || field == MQLITE_PF_USERNAME) {
        rc = mq_utf8_check(v.p, v.len, 0);
        if (rc)
            return mq_err_code(&p->err, rc);
    }
    return 0;
}

MQLITE_API int32_t mqlite_packet_set_bytes(mqlite_packet *p, int32_t field, const void *data,
                                           size_t len)
{
    if (!packet_ok(p))
        return MQLITE_ERR_MISUSE;
    if (!data && len)
        return mq_err_set(&p->err, MQLITE_ERR_INVALID, "data is NULL but len is %zu", len);
    if (len > MQ_VBI_MAX)
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "%zu bytes is over MQTT's limit", len);
    mq_view *v = field_view(&p->pkt, field);
    if (!v || field == MQLITE_PF_PROTOCOL_NAME)
        return mq_err_set(&p->err, MQLITE_ERR_OPTION,
                          "field %d is unknown, read-only or not part of %s", (int)field,
                          mqlite_packet_type_name(p->pkt.type));
    mq_view nv = mq_view_make(data, len);
    int remove = !data;
    if (!remove) {
        int rc = check_set_bytes(p, field, nv);
        if (rc)
            return rc;
    }
    char *s = NULL;
    if (!remove && !(s = mq_memdup0(&p->a, data, len)))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    int slot = field - MQLITE_PF_TOPIC;
    mq_free(&p->a, p->own[slot]);
    p->own[slot] = s;
    *v = mq_view_make(s, len);
    if (field == MQLITE_PF_USERNAME)
        p->pkt.has_username = !remove;
    else if (field == MQLITE_PF_PASSWORD)
        p->pkt.has_password = !remove;
    else if (field == MQLITE_PF_WILL_TOPIC) {
        p->pkt.will = !remove;
        if (remove)
            p->pkt.will_qos = p->pkt.will_retain = 0;
    }
    return 0;
}

MQLITE_API const mqlite_props *mqlite_packet_props(const mqlite_packet *p)
{
    return packet_ok(p) ? &p->props : NULL;
}

MQLITE_API const mqlite_props *mqlite_packet_will_props(const mqlite_packet *p)
{
    return packet_ok(p) ? &p->will_props : NULL;
}

static int32_t set_props(mqlite_packet *p, mqlite_props *dst, const mqlite_props *src, int ctx)
{
    if (!packet_ok(p) || (src && !props_ok(src)))
        return MQLITE_ERR_MISUSE;
    mq_view block = src ? mq_props_list_wire(src) : mq_view_make(NULL, 0);
    if (block.len && p->pkt.version != MQLITE_V5)
        return mq_err_set(&p->err, MQLITE_ERR_UNSUPPORTED, "properties exist only in MQTT 5.0");
    if (ctx != MQ_PCTX_WILL && (ctx == MQLITE_PKT_PINGREQ || ctx == MQLITE_PKT_PINGRESP) &&
        block.len)
        return mq_err_set(&p->err, MQLITE_ERR_PROPERTY_PACKET, "%s has no properties",
                          mqlite_packet_type_name(ctx));
    unsigned bad = 0;
    int rc = block.len ? mq_props_validate(block, ctx, 0, &bad) : 0;
    if (rc)
        return mq_err_set(&p->err, rc, "property 0x%02x (%s) in %s: %s", bad,
                          mqlite_property_name((int32_t)bad) ? mqlite_property_name((int32_t)bad)
                                                             : "unknown",
                          ctx == MQ_PCTX_WILL ? "will properties" : mqlite_packet_type_name(ctx),
                          mqlite_strerror(rc));
    if (mq_plist_assign(dst, block))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    return 0;
}

MQLITE_API int32_t mqlite_packet_set_props(mqlite_packet *p, const mqlite_props *props)
{
    int32_t rc = set_props(p, p ? &p->props : NULL, props, p ? p->pkt.type : 0);
    if (rc == 0)
        p->pkt.props = mq_props_list_wire(&p->props);
    return rc;
}

MQLITE_API int32_t mqlite_packet_set_will_props(mqlite_packet *p, const mqlite_props *props)
{
    if (packet_ok(p) && p->pkt.type != MQLITE_PKT_CONNECT)
        return mq_err_set(&p->err, MQLITE_ERR_OPTION, "only CONNECT has will properties");
    int32_t rc = set_props(p, p ? &p->will_props : NULL, props, MQ_PCTX_WILL);
    if (rc == 0)
        p->pkt.will_props = mq_props_list_wire(&p->will_props);
    return rc;
}

MQLITE_API int32_t mqlite_packet_count(const mqlite_packet *p)
{
    return packet_ok(p) ? (int32_t)p->pkt.count : 0;
}

/* A decoded NOCOPY packet's list lives in the caller's buffer: copy it
 * before appending. */
static int own_list(mqlite_packet *p)
{
    if (p->pkt.list.p == p->list.p)
        return 0;
    mq_buf nb = {0};
    if (mq_buf_append(&nb, &p->a, p->pkt.list.p, p->pkt.list.len))
        return MQLITE_ERR_NOMEM;
    mq_buf_free(&p->list, &p->a);
    p->list = nb;
    p->pkt.list = mq_view_make(p->list.p, p->list.len);
    p->nocopy = 0;
    return list_index(p, 1);
}

MQLITE_API int32_t mqlite_packet_add_topic(mqlite_packet *p, const char *filter, int32_t options)
{
    if (!packet_ok(p))
        return MQLITE_ERR_MISUSE;
    mq_packet *k = &p->pkt;
    int sub = k->type == MQLITE_PKT_SUBSCRIBE;
    if (!sub && k->type != MQLITE_PKT_UNSUBSCRIBE)
        return mq_err_set(&p->err, MQLITE_ERR_OPTION, "%s has no topic filters",
                          mqlite_packet_type_name(k->type));
    if (!filter)
        return mq_err_set(&p->err, MQLITE_ERR_INVALID, "filter is NULL");
    if (options < 0 || options > 255 || (!sub && options))
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "options byte %d not allowed here",
                          (int)options);
    mq_view f = mq_view_cstr(filter);
    const char *msg = NULL;
    int rc = mq_topic_check_filter_v(f, k->version, &msg);
    if (rc)
        return mq_err_set(&p->err, rc, "topic filter \"%.200s\": %s", filter,
                          msg ? msg : mqlite_strerror(rc));
    rc = sub ? mq_sub_entry_check(f, (uint8_t)options, k->version, 1) : 0;
    if (rc)
        return mq_err_set(&p->err, rc, "topic filter \"%.200s\": %s", filter,
                          mqlite_strerror(rc));
    if (own_list(p))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    size_t old = p->list.len;
    if (mq_list_put_filter(&p->list, &p->a, f, sub, (uint8_t)options))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    k->list = mq_view_make(p->list.p, p->list.len);
    k->count++;
    if (list_index(p, 1)) {
        p->list.len = old;
        k->list = mq_view_make(p->list.p, p->list.len);
        k->count--;
        list_index(p, 1);
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    }
    return 0;
}

MQLITE_API int32_t mqlite_packet_add_reason(mqlite_packet *p, int32_t reason)
{
    if (!packet_ok(p))
        return MQLITE_ERR_MISUSE;
    mq_packet *k = &p->pkt;
    if (k->type != MQLITE_PKT_SUBACK &&
        !(k->type == MQLITE_PKT_UNSUBACK && k->version == MQLITE_V5))
        return mq_err_set(&p->err, MQLITE_ERR_OPTION, "%s (level %d) has no reason code list",
                          mqlite_packet_type_name(k->type), k->version);
    if (reason < 0 || reason > 255)
        return mq_err_set(&p->err, MQLITE_ERR_RANGE, "reason code %d is not 0..255", (int)reason);
    if (k->type == MQLITE_PKT_SUBACK && k->version != MQLITE_V5 &&
        !(reason <= 2 || reason == 0x80))
        return mq_err_set(&p->err, MQLITE_ERR_SUBACK_CODE, "%s",
                          mqlite_strerror(MQLITE_ERR_SUBACK_CODE));
    if (k->version == MQLITE_V5 && !mq_reason_valid(k->type, (unsigned)reason))
        return mq_err_set(&p->err, MQLITE_ERR_REASON_CODE, "reason code 0x%02x is not valid in %s",
                          (unsigned)reason, mqlite_packet_type_name(k->type));
    if (own_list(p))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    uint8_t b = (uint8_t)reason;
    if (mq_buf_append(&p->list, &p->a, &b, 1))
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    k->list = mq_view_make(p->list.p, p->list.len);
    k->count++;
    if (list_index(p, 1)) {
        p->list.len--;
        k->list = mq_view_make(p->list.p, p->list.len);
        k->count--;
        return mq_err_code(&p->err, MQLITE_ERR_NOMEM);
    }
    return 0;
}

MQLITE_API const char *mqlite_packet_topic_at(const mqlite_packet *p, int32_t i, size_t *len)
{
    if (len)
        *len = 0;
    if (!packet_ok(p) || i < 0 || i >= p->nents ||
        (p->pkt.type != MQLITE_PKT_SUBSCRIBE && p->pkt.type != MQLITE_PKT_UNSUBSCRIBE))
        return NULL;
    const lent *e = &p->ents[i];
    if (len)
        *len = e->len;
    const uint8_t *base = p->nocopy ? p->pkt.list.p : p->names.p;
    return (const char *)base + e->off;
}

MQLITE_API int32_t mqlite_packet_options_at(const mqlite_packet *p, int32_t i)
{
    if (!packet_ok(p) || i < 0 || i >= p->nents || p->pkt.type != MQLITE_PKT_SUBSCRIBE)
        return MQLITE_ERR_RANGE;
    return p->ents[i].opt;
}

MQLITE_API int32_t mqlite_packet_reason_at(const mqlite_packet *p, int32_t i)
{
    if (!packet_ok(p) || i < 0 || i >= p->nents ||
        (p->pkt.type != MQLITE_PKT_SUBACK && p->pkt.type != MQLITE_PKT_UNSUBACK))
        return MQLITE_ERR_RANGE;
    return p->ents[i].opt;
}

MQLITE_API const char *mqlite_packet_type_name(int32_t type)
{
    static const char *const names[] = {
        "UNKNOWN", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
        "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
        "AUTH"};
    return type >= 1 && type <= 15 ? names[type] : names[0];
}
