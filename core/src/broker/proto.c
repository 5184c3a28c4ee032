/*
 * proto.c - packet handlers after CONNECT: PUBLISH in with its QoS 1/2
 * flow (mq_inq), acknowledgements of our PUBLISHes (mq_outq), SUBSCRIBE,
 * UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH; and protocol violations.
 */
#include "proto.h"

#include "auth.h"
#include "log.h"
#include "persist.h"
#include "props.h"
#include "retain.h"
#include "router.h"
#include "session.h"
#include "topic.h"

int mq_proto_filter_props(mqlite_broker *b, mq_view in, uint8_t drop1, uint8_t drop2,
                          mq_view *out)
{
    uint32_t off = 0, start = 0;
    mq_prop pr;
    int found = 0;
    while (mq_props_next(in, &off, &pr))
        found |= pr.id == drop1 || pr.id == drop2;
    *out = in;
    if (!found)
        return 0;
    b->scratch.len = 0;
    off = 0;
    while (start = off, mq_props_next(in, &off, &pr)) {
        if (pr.id != drop1 && pr.id != drop2 &&
            mq_buf_append(&b->scratch, &b->a, in.p + start, off - start))
            return MQLITE_ERR_NOMEM;
    }
    *out = mq_view_make(b->scratch.p, b->scratch.len);
    return 0;
}

/* The DISCONNECT reason for err: mqlite_error_reason(), except where 5.0
 * names a Protocol Error for what the codec files as malformed. */
static int violation_reason(int err)
{
    switch (err) {
    case MQLITE_ERR_SUBSCRIBE_EMPTY:   /* 5.0 3.8.3: no payload */
    case MQLITE_ERR_UNSUBSCRIBE_EMPTY: /* 5.0 3.10.3 */
    case MQLITE_ERR_SUB_QOS3:          /* 5.0 3.8.3.1: Maximum QoS 3 */
        return 0x82;
    default:
        return mqlite_error_reason(err);
    }
}

void mq_proto_violation(mq_conn *c, int err, int type)
{
    mq_blog(c->b, MQLITE_LOG_WARNING, "%s from \"%s\" (%s) in %s: %s",
            err == MQLITE_ERR_NOMEM ? "closing" : "protocol error", c->s ? c->s->id : "",
            c->peer, mqlite_packet_type_name(type), mqlite_strerror(err));
    /* 5.0 4.13: DISCONNECT with the reason code, then close; the will is
     * published (3.1.1 3.1.2.5: "closes the connection because of a
     * protocol error"). */
    mq_conn_close(c, violation_reason(err), 1, mqlite_strerror(err));
}

/* ---- PUBLISH in ---- */

typedef struct pubin {
    mq_view topic;
    mq_view props;       /* to forward */
    uint32_t expiry_s;   /* Message Expiry Interval; 0 = none */
} pubin;

static int is_sys_topic(mq_view t)
{
    return t.len >= 4 && memcmp(t.p, "$SYS", 4) == 0 && (t.len == 4 || t.p[4] == '/');
}

/* 5.0 Topic Alias (client -> broker): set or resolve. */
static int topic_alias(mq_conn *c, uint32_t alias, mq_view *topic)
{
    /* MQTT 5.0 [MQTT-3.3.2-8], [MQTT-3.3.2-9]: 1..Topic Alias Maximum. */
    if (alias == 0 || alias > c->nalias)
        return MQLITE_ERR_TOPIC_ALIAS;
    const mq_alloc *a = &c->b->a;
    if (!c->aliases) {
        c->aliases = mq_calloc(a, c->nalias * sizeof *c->aliases);
        if (!c->aliases)
            return MQLITE_ERR_NOMEM;
    }
    mq_view *slot = &c->aliases[alias - 1];
    if (topic->len == 0) {
        /* 5.0 3.3.2.3.4: an alias never set is a Protocol Error. */
        if (!slot->p)
            return MQLITE_ERR_PROTOCOL;
        *topic = *slot;
        return 0;
    }
    uint8_t *copy = mq_malloc(a, topic->len);
    if (!copy)
        return MQLITE_ERR_NOMEM;
    memcpy(copy, topic->p, topic->len);
    mq_free(a, (void *)slot->p);
    *slot = mq_view_make(copy, topic->len);
    return 0;
}

static int publish_props(mq_conn *c, const mq_packet *p, pubin *in)
{
    in->topic = p->topic;
    in->props = mq_view_make(NULL, 0);
    in->expiry_s = 0;
    if (c->version != MQLITE_V5 || !p->props.len)
        return 0;
    mq_prop pr;
    /* MQTT 5.0 [MQTT-3.3.4-6] */
    if (mq_props_get(p->props, MQLITE_PROP_SUBSCRIPTION_ID, &pr))
        return MQLITE_ERR_PROTOCOL;
    if (mq_props_get(p->props, MQLITE_PROP_TOPIC_ALIAS, &pr)) {
        int rc = topic_alias(c, pr.num, &in->topic);
        if (rc)
            return rc;
    }
    in->expiry_s = mq_props_u32(p->props, MQLITE_PROP_MESSAGE_EXPIRY, 0);
    return mq_proto_filter_props(c->b, p->props, MQLITE_PROP_TOPIC_ALIAS,
                                 MQLITE_PROP_MESSAGE_EXPIRY, &in->props);
}

/* Route the message; returns the number of receiving sessions (>= 0). */
static int route(mq_conn *c, const mq_packet *p, const pubin *in)
{
    mqlite_broker *b = c->b;
    mq_msg *m = mq_msg_new(&b->a, in->topic, in->props, p->payload, p->qos, p->retain);
    if (!m)
        return MQLITE_ERR_NOMEM;
    if (in->expiry_s)
        m->expiry_ms = b->now_ms + (uint64_t)in->expiry_s * 1000u;
    int n = mq_broker_publish(b, m, c->s);
    mq_msg_unref(&b->a, m);
    return n;
}

/* QoS 2 in: 1 = new (route it), 0 = re-sent with an id we hold. */
static int qos2_begin(mq_conn *c, uint16_t pid)
{
    mq_inq *q = &c->s->inq;
    /* MQTT 5.0 3.3.4: a client sending more than our Receive Maximum
     * ([MQTT-3.3.4-7]) gets DISCONNECT 0x93. */
    if (!mq_pidmap_get(&q->qos2, pid) && mq_inq_count(q) >= c->b->o.receive_max)
        return MQLITE_ERR_RECEIVE_MAX;
    /* 3.1.1 [MQTT-4.3.3-2] method B / 5.0 [MQTT-4.3.3-10]: until PUBREL, a
     * PUBLISH with the same id is acknowledged but not delivered again. */
    int rc = mq_inq_qos2_begin(q, &c->b->a, pid);
    if (rc == 1)
        mq_persist_in_add(c->b, c->s, pid); /* committed before the PUBREC */
    return rc;
}

static int on_publish(mq_conn *c, const mq_packet *p)
{
    mqlite_broker *b = c->b;
    b->st.msgs_received++;
    /* MQTT 5.0 [MQTT-3.2.2-11] / 4.13: QoS above Maximum QoS -> 0x9B. */
    if (p->qos > b->o.max_qos)
        return MQLITE_ERR_QOS_NOT_SUPPORTED;
    /* MQTT 5.0 [MQTT-3.2.2-14] / 3.3.1.3: retain not available -> 0x9A. */
    if (p->retain && !b->o.retain_available)
        return MQLITE_ERR_RETAIN_NOT_SUPPORTED;
    pubin in;
    int rc = publish_props(c, p, &in);
    if (rc)
        return rc;
    if (p->qos == 2) {
        rc = qos2_begin(c, p->packet_id);
        if (rc <= 0)
            return rc ? rc : mq_conn_put_ack(c, MQLITE_PKT_PUBREC, p->packet_id, 0);
    }
    uint8_t reason = 0;
    int sys = is_sys_topic(in.topic);
    if (sys || !mq_auth_may_publish(c, in.topic)) {
        /* $SYS belongs to the broker; the ACL may refuse others. Not routed;
         * 5.0 acks say 0x87 Not authorized, 3.x ones are normal (the
         * message is dropped, as mosquitto does). */
        reason = c->version == MQLITE_V5 ? 0x87 : 0;
        if (sys) {
            mq_blog(b, MQLITE_LOG_INFO, "\"%s\" may not publish to $SYS", c->s->id);
        } else {
            b->st.acl_denied++;
            mq_blog(b, MQLITE_LOG_NOTICE, "ACL: denied PUBLISH from \"%s\" (user \"%s\", %s) to \"%.*s\"",
                    c->s->id, c->username ? c->username : "", c->peer, (int)in.topic.len,
                    (const char *)in.topic.p);
        }
        /* MQTT 5.0 [MQTT-4.3.3-9]: after a failing PUBREC the id is free. */
        if (p->qos == 2 && reason) {
            mq_inq_qos2_release(&c->s->inq, p->packet_id);
            mq_persist_in_del(b, c->s, p->packet_id);
        }
    } else {
        int n = route(c, p, &in);
        if (n < 0)
            return n;
        /* MQTT 5.0 3.4.2.1: 0x10 No matching subscribers. */
        reason = n == 0 ? 0x10 : 0;
    }
    if (p->qos == 1)
        return mq_conn_put_ack(c, MQLITE_PKT_PUBACK, p->packet_id, reason);
    if (p->qos == 2)
        return mq_conn_put_ack(c, MQLITE_PKT_PUBREC, p->packet_id, reason);
    return 0;
}

/* ---- acknowledgements of our PUBLISHes ---- */

static int on_ack(mq_conn *c, const mq_packet *p)
{
    mq_flow *done;
    int rc = mq_outq_ack(&c->s->q, p->type, p->packet_id, p->reason, &done);
    if (rc == MQ_ACK_PUBREL) {
        mq_persist_flow_state(c->b, c->s, mq_pidmap_get(&c->s->q.pids, p->packet_id), 2);
        return mq_conn_put_ack(c, MQLITE_PKT_PUBREL, p->packet_id, 0);
    }
    if (rc == MQ_ACK_DONE) {
        mq_persist_flow_del(c->b, c->s, done);
        mq_flow_free(&c->b->a, done);
        mq_conn_pump(c);
        return 0;
    }
    /* An acknowledgement we do not expect (e.g. re-sent after a PUBCOMP):
     * harmless, ignored as mosquitto does. */
    mq_blog(c->b, MQLITE_LOG_DEBUG, "\"%s\": %s for unknown packet id %u", c->s->id,
            mqlite_packet_type_name(p->type), (unsigned)p->packet_id);
    return 0;
}

static int on_pubrel(mq_conn *c, const mq_packet *p)
{
    int held = mq_inq_qos2_release(&c->s->inq, p->packet_id);
    if (held)
        mq_persist_in_del(c->b, c->s, p->packet_id);
    /* MQTT 5.0 3.7.2.1: 0x92 Packet Identifier not found. */
    return mq_conn_put_ack(c, MQLITE_PKT_PUBCOMP, p->packet_id, held ? 0 : 0x92);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

/* Result of one SUBSCRIBE entry; code in the low byte, 0x100 = existed. */
static int subscribe_one(mq_conn *c, mq_view f, uint8_t opts, uint32_t subid)
{
    mqlite_broker *b = c->b;
    int v5 = c->version == MQLITE_V5;
    mq_view g, rest;
    int shared = mq_topic_split_shared(f, &g, &rest) == 1;
    if (shared && !b->o.shared_subs)
        return v5 ? 0x9E : 0x80;
    if (!b->o.wildcard_subs && mq_topic_has_wildcard(shared ? rest : f))
        return v5 ? 0xA2 : 0x80;
    if (!mq_auth_may_subscribe(c, shared ? rest : f)) {
        b->st.acl_denied++;
        mq_blog(b, MQLITE_LOG_NOTICE, "ACL: denied SUBSCRIBE from \"%s\" (user \"%s\", %s) to \"%.*s\"",
                c->s->id, c->username ? c->username : "", c->peer, (int)f.len, (const char *)f.p);
        /* 5.0: 0x87 Not authorized; 3.1.1: 0x80 Failure. */
        return v5 ? 0x87 : 0x80;
    }
    uint8_t granted = (opts & MQ_SUB_QOS) < b->o.max_qos ? (opts & MQ_SUB_QOS) : b->o.max_qos;
    int existed;
    if (mq_router_subscribe(b, c->s, f, (uint8_t)((opts & ~MQ_SUB_QOS) | granted), subid,
                            &existed))
        return 0x80;
    mq_persist_sub_put(b, c->s, f, (uint8_t)((opts & ~MQ_SUB_QOS) | granted), subid);
    return granted | (existed ? 0x100 : 0);
}

/* MQTT 5.0 [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: retained
 * messages per Retain Handling; none for shared subscriptions (4.8.2). */
static void send_retained(mq_conn *c, mq_view f, uint8_t opts, int result, uint32_t subid)
{
    uint8_t rh = (opts >> MQ_SUB_RH_SHIFT) & 3;
    mq_view g, rest;
    if ((result & 0xff) >= 0x80 || mq_topic_split_shared(f, &g, &rest) == 1)
        return;
    if (rh == 2 || (rh == 1 && (result & 0x100)))
        return;
    mq_retain_send(c->b, c->s, f, (uint8_t)(result & 3), subid);
}

static int put_list_ack(mq_conn *c, int type, uint16_t pid, const uint8_t *codes, uint32_t n)
{
    mq_packet k;
    memset(&k, 0, sizeof k);
    k.type = (uint8_t)type;
    k.version = c->version;
    k.packet_id = pid;
    k.list = mq_view_make(codes, n);
    k.count = n;
    return mq_conn_put_packet(c, &k);
}

static int on_subscribe(mq_conn *c, const mq_packet *p)
{
    mqlite_broker *b = c->b;
    uint32_t subid = mq_props_u32(p->props, MQLITE_PROP_SUBSCRIPTION_ID, 0);
    if (subid && !b->o.subscription_ids) {
        mq_conn_close(c, 0xA1, 1, "subscription identifiers are not supported");
        return 0;
    }
    uint16_t small_res[16], *res = small_res;
    uint8_t small_codes[16], *codes = small_codes;
    if (p->count > 16) {
        res = mq_malloc(&b->a, (size_t)p->count * 3);
        if (!res)
            return MQLITE_ERR_NOMEM;
        codes = (uint8_t *)(res + p->count);
    }
    uint32_t off = 0, i = 0;
    mq_view f;
    uint8_t opts;
    /* 3.1.1 and 5.0 [MQTT-3.8.4-5]: as if one SUBSCRIBE per filter. */
    while (mq_list_next(p, &off, &f, &opts)) {
        res[i] = (uint16_t)subscribe_one(c, f, opts, subid);
        codes[i] = (uint8_t)res[i];
        i++;
    }
    /* 3.1.1 [MQTT-3.8.4-5] / 5.0 [MQTT-3.8.4-6]: one code per filter. */
    int rc = put_list_ack(c, MQLITE_PKT_SUBACK, p->packet_id, codes, p->count);
    off = i = 0;
    while (!rc && mq_list_next(p, &off, &f, &opts))
        send_retained(c, f, opts, res[i++], subid);
    if (res != small_res)
        mq_free(&b->a, res);
    return rc;
}

static int on_unsubscribe(mq_conn *c, const mq_packet *p)
{
    mqlite_broker *b = c->b;
    uint8_t small[32], *codes = small;
    if (p->count > 32 && !(codes = mq_malloc(&b->a, p->count)))
        return MQLITE_ERR_NOMEM;
    uint32_t off = 0, i = 0;
    mq_view f;
    uint8_t opts;
    while (mq_list_next(p, &off, &f, &opts)) {
        /* MQTT 5.0 3.11.3: 0x11 No subscription existed. */
        codes[i] = mq_router_unsubscribe(b, c->s, f) ? 0x00 : 0x11;
        if (codes[i++] == 0)
            mq_persist_sub_del(b, c->s, f);
    }
    /* 3.1.1 and 5.0 [MQTT-3.10.4-5]: UNSUBACK even when nothing was
     * removed; 3.1.1's carries no codes. */
    int rc = put_list_ack(c, MQLITE_PKT_UNSUBACK, p->packet_id, codes,
                          c->version == MQLITE_V5 ? p->count : 0);
    if (codes != small)
        mq_free(&b->a, codes);
    return rc;
}

/* ---- DISCONNECT, PINGREQ ---- */

static int on_disconnect(mq_conn *c, const mq_packet *p)
{
    int will = 0;
    if (c->version == MQLITE_V5) {
        mq_prop pr;
        if (mq_props_get(p->props, MQLITE_PROP_SESSION_EXPIRY, &pr)) {
            /* MQTT 5.0 3.14.2.2.2: 0 in CONNECT cannot become non-zero. */
            if (c->s->expiry_s == 0 && pr.num != 0)
                return MQLITE_ERR_PROTOCOL;
            uint32_t max = c->b->o.session_expiry_max_s;
            c->s->expiry_s = max && pr.num > max ? max : pr.num;
        }
        /* MQTT 5.0 3.14.2.1: 0x04 Disconnect with Will Message. */
        will = p->reason == 0x04;
    }
    /* 3.1.1 [MQTT-3.14.4-3], 5.0 [MQTT-3.1.2-10]: otherwise the will is
     * discarded. */
    mq_conn_close(c, -1, will, will ? "DISCONNECT with will" : "DISCONNECT");
    return 0;
}

static int on_pingreq(mq_conn *c)
{
    uint8_t *w;
    if (mq_buf_reserve(&c->out, &c->b->a, 2))
        return MQLITE_ERR_NOMEM;
    w = c->out.p + c->out.len;
    w[0] = MQLITE_PKT_PINGRESP << 4;
    w[1] = 0;
    c->out.len += 2;
    if (!c->dirty)
        mq_broker_mark_dirty(c->b, c);
    return 0;
}

int mq_proto_packet(mq_conn *c, const mq_packet *p)
{
    if (p->type == MQLITE_PKT_CONNECT) {
        /* 3.1.1 and 5.0 [MQTT-3.1.0-2]: a second CONNECT is a violation. */
        if (c->state != MQ_CONN_NEW || c->auth)
            return MQLITE_ERR_PROTOCOL;
        return mq_proto_connect(c, p);
    }
    if (c->state == MQ_CONN_NEW) {
        /* Authentication in progress: 5.0 [MQTT-3.1.2-30], only AUTH or
         * DISCONNECT before the CONNACK. */
        if (p->type == MQLITE_PKT_AUTH)
            return mq_auth_packet(c, p);
        if (p->type == MQLITE_PKT_DISCONNECT) {
            mq_conn_close(c, -1, 0, "DISCONNECT during authentication");
            return 0;
        }
        return MQLITE_ERR_PROTOCOL;
    }
    switch (p->type) {
    case MQLITE_PKT_PUBLISH:
        return on_publish(c, p);
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBCOMP:
        return on_ack(c, p);
    case MQLITE_PKT_PUBREL:
        return on_pubrel(c, p);
    case MQLITE_PKT_SUBSCRIBE:
        return on_subscribe(c, p);
    case MQLITE_PKT_UNSUBSCRIBE:
        return on_unsubscribe(c, p);
    case MQLITE_PKT_PINGREQ:
        return on_pingreq(c);
    case MQLITE_PKT_DISCONNECT:
        return on_disconnect(c, p);
    case MQLITE_PKT_AUTH:
        return mq_auth_packet(c, p);
    default:
        /* AUTH without an Authentication Method in CONNECT (5.0 4.12). */
        return MQLITE_ERR_PROTOCOL;
    }
}
