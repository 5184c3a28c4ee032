/*
 * connect.c - CONNECT on the server side: validation, client identifiers,
 * authentication policy, wills, session take-over / resume / clean start,
 * and the CONNACK with its 5.0 properties.
 */
#include <stdio.h>

#include "auth.h"
#include "log.h"
#include "props.h"
#include "proto.h"
#include "session.h"

typedef struct cprops {
    uint32_t session_expiry;
    uint32_t receive_max;
    uint32_t max_packet;
} cprops;

static void read_cprops(const mq_packet *p, cprops *cp)
{
    cp->session_expiry = mq_props_u32(p->props, MQLITE_PROP_SESSION_EXPIRY, 0);
    cp->receive_max = mq_props_u32(p->props, MQLITE_PROP_RECEIVE_MAX, 65535);
    cp->max_packet = mq_props_u32(p->props, MQLITE_PROP_MAX_PACKET_SIZE, 0);
}

static void put_connack(mq_conn *c, int present, uint8_t reason, mq_view props)
{
    mq_packet k;
    memset(&k, 0, sizeof k);
    k.type = MQLITE_PKT_CONNACK;
    k.version = c->version;
    k.reason = reason;
    /* MQTT 3.1 has no Session Present flag. */
    k.session_present = (uint8_t)(present && c->version != MQLITE_V31);
    k.props = props;
    mq_conn_put_packet(c, &k);
}

int mq_proto_refuse(mq_conn *c, uint8_t v5_reason, uint8_t v3_reason, mq_view id,
                    const char *why)
{
    mq_blog(c->b, MQLITE_LOG_NOTICE, "refused client \"%.*s\" from %s: %s", (int)id.len,
            id.p ? (const char *)id.p : "", c->peer, why);
    put_connack(c, 0, c->version == MQLITE_V5 ? v5_reason : v3_reason, mq_view_make(NULL, 0));
    mq_conn_close(c, -1, 0, why);
    return 0;
}

static int is_sys_topic(mq_view t)
{
    return t.len >= 4 && memcmp(t.p, "$SYS", 4) == 0 && (t.len == 4 || t.p[4] == '/');
}

/* The will of p as a message, or NULL for none. 0 or MQLITE_ERR_NOMEM. */
static int make_will(mq_conn *c, const mq_packet *p, mq_msg **out)
{
    mqlite_broker *b = c->b;
    *out = NULL;
    /* Clients do not publish to $SYS, not even through a will. */
    if (!p->will || is_sys_topic(p->will_topic))
        return 0;
    mq_view fwd = mq_view_make(NULL, 0);
    if (c->version == MQLITE_V5 &&
        mq_proto_filter_props(b, p->will_props, MQLITE_PROP_WILL_DELAY,
                              MQLITE_PROP_MESSAGE_EXPIRY, &fwd))
        return MQLITE_ERR_NOMEM;
    *out = mq_msg_new(&b->a, p->will_topic, fwd, p->will_payload, p->will_qos, p->will_retain);
    return *out ? 0 : MQLITE_ERR_NOMEM;
}

/* A reason to refuse p before any state changes, or 0. */
static int refusal(const mq_conn *c, const mq_packet *p, uint8_t *v3, const char **why)
{
    const mqlite_broker *b = c->b;
    *v3 = 0x03;
    if (c->refuse) {
        /* Accepted only to say why not (limits, broker.c). */
        *why = c->refuse == 0x9F ? "connection rate exceeded for this address"
                                 : "maximum number of connections reached";
        return c->refuse;
    }
    if (p->will && p->will_qos > b->o.max_qos) {
        *why = "will QoS above the maximum QoS"; /* 5.0 [MQTT-3.2.2-12] */
        return 0x9B;
    }
    if (p->will && p->will_retain && !b->o.retain_available) {
        *why = "retained will, but retain is not available"; /* 5.0 [MQTT-3.2.2-13] */
        return 0x9A;
    }
    /* 3.1 requires 1..23 bytes; 3.1.1 [MQTT-3.1.3-8]: empty needs clean 1. */
    if (!p->client_id.len && (c->version == MQLITE_V31 || (c->version == MQLITE_V311 &&
                                                           !p->clean_start))) {
        *why = "empty client identifier without clean session";
        *v3 = 0x02;
        return 0x85;
    }
    return 0;
}

/* Find, take over, clean or create the session for id. */
static mq_bsess *take_session(mq_conn *c, mq_view id, int clean, int *present)
{
    mqlite_broker *b = c->b;
    mq_bsess *s = mq_bsess_find(b, id);
    if (s && s->conn) {
        /* 3.1.1 [MQTT-3.1.4-2], 5.0 [MQTT-3.1.4-3]: the existing client is
         * disconnected (5.0: 0x8E); its will follows the normal rules. */
        mq_conn_close(s->conn, 0x8E, 1, "session taken over");
        s = mq_bsess_find(b, id);
    }
    /* 3.1.1 [MQTT-3.1.2-6], 5.0 [MQTT-3.1.2-4]: clean start discards it. */
    if (s && clean) {
        mq_bsess_end(b, s);
        s = NULL;
    }
    *present = s != NULL;
    return s ? s : mq_bsess_new(b, id);
}

/* 5.0 CONNACK properties into b->scratch. */
static int connack_props(mq_conn *c, const char *assigned, int ka_set, int exp_set,
                         mq_view auth_data)
{
    mqlite_broker *b = c->b;
    mq_buf *pb = &b->scratch;
    const mq_alloc *a = &b->a;
    int rc = 0;
    pb->len = 0;
    if (exp_set)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_SESSION_EXPIRY, c->s->expiry_s);
    if (b->o.receive_max < 65535)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_RECEIVE_MAX, b->o.receive_max);
    if (b->o.max_qos < 2) /* 5.0 [MQTT-3.2.2-9] */
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_MAX_QOS, b->o.max_qos);
    if (!b->o.retain_available)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_RETAIN_AVAILABLE, 0);
    if (b->o.max_packet_size < MQ_MAX_PACKET_SIZE)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_MAX_PACKET_SIZE, b->o.max_packet_size);
    if (assigned) /* 5.0 [MQTT-3.2.2-16] */
        rc |= mq_props_put_bytes(pb, a, MQLITE_PROP_ASSIGNED_CLIENT_ID, mq_view_cstr(assigned));
    if (b->o.topic_alias_max)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_TOPIC_ALIAS_MAX, b->o.topic_alias_max);
    if (!b->o.wildcard_subs)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_WILDCARD_SUB_AVAILABLE, 0);
    if (!b->o.subscription_ids)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_SUB_ID_AVAILABLE, 0);
    if (!b->o.shared_subs)
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_SHARED_SUB_AVAILABLE, 0);
    if (ka_set) /* 5.0 [MQTT-3.1.2-21] */
        rc |= mq_props_put_int(pb, a, MQLITE_PROP_SERVER_KEEPALIVE, c->keepalive_s);
    /* 5.0 [MQTT-4.12.0-5]: a successful CONNACK repeats the method. */
    if (c->auth_method) {
        rc |= mq_props_put_bytes(pb, a, MQLITE_PROP_AUTH_METHOD, mq_view_cstr(c->auth_method));
        if (auth_data.len)
            rc |= mq_props_put_bytes(pb, a, MQLITE_PROP_AUTH_DATA, auth_data);
    }
    return rc ? MQLITE_ERR_NOMEM : 0;
}

/* Session Expiry Interval in force; *capped when below the request. */
static uint32_t session_expiry(const mq_conn *c, const mq_packet *p, const cprops *cp,
                               int *capped)
{
    uint32_t max = c->b->o.session_expiry_max_s;
    *capped = 0;
    if (c->version != MQLITE_V5)
        return p->clean_start ? 0 : (max ? max : MQ_EXPIRY_NEVER);
    if (max && cp->session_expiry > max) {
        *capped = 1;
        return max;
    }
    return cp->session_expiry;
}

/* Keep-alive in force; *set when the 5.0 Server Keep Alive overrides. */
static uint16_t keepalive(const mq_conn *c, const mq_packet *p, int *set)
{
    uint16_t max = c->b->o.max_keepalive_s, ka = p->keepalive;
    *set = 0;
    if (c->version == MQLITE_V5 && max < 65535 && (ka == 0 || ka > max)) {
        *set = 1;
        return max;
    }
    return ka;
}

/* Re-send what the resumed session had in flight: PUBREL for flows past
 * PUBREC, then PUBLISH with DUP (3.1.1 [MQTT-4.4.0-1], 5.0
 * [MQTT-4.4.0-1]). */
static void resume(mq_conn *c)
{
    mq_outq *q = &c->s->q;
    mq_outq_requeue_inflight(q);
    for (mq_flow *f = q->inflight.head; f; f = f->next)
        if (f->state == MQ_FLOW_RELEASED)
            mq_conn_put_ack(c, MQLITE_PKT_PUBREL, f->pid, 0);
    mq_conn_pump(c);
}

static void log_connect(const mq_conn *c, const mq_packet *p, int present)
{
    static const char *const names[] = {"3.1", "3.1.1", "5.0"};
    char how[200] = "";
    if (c->tls)
        snprintf(how, sizeof how, ", %s%s%s%s", mq_tls_version_name(c->tls),
                 c->cert_ok ? " certificate \"" : "", c->cert_ok && c->cert_cn ? c->cert_cn : "",
                 c->cert_ok ? "\"" : "");
    mq_blog(c->b, MQLITE_LOG_NOTICE,
            "client \"%s\" connected from %s (MQTT %s, clean %d, keep-alive %u, session %s%s%s%s%s)",
            c->s->id, c->peer, names[c->version - MQLITE_V31], p->clean_start,
            (unsigned)c->keepalive_s, present ? "resumed" : "new", c->username ? ", user \"" : "",
            c->username ? c->username : "", c->username ? "\"" : "", how);
}

static int accept_session(mq_conn *c, const mq_packet *p, const cprops *cp, mq_view id,
                          const char *assigned, mq_msg *will, mq_view auth_data)
{
    mqlite_broker *b = c->b;
    int present, ka_set, exp_set;
    char *user = c->username ? mq_memdup0(&b->a, c->username, strlen(c->username)) : NULL;
    mq_bsess *s = (c->username && !user) ? NULL : take_session(c, id, p->clean_start, &present);
    if (!s) {
        mq_free(&b->a, user);
        mq_msg_unref(&b->a, will);
        return mq_proto_refuse(c, 0x88, 0x03, id, "out of memory");
    }
    /* ACL identity of the session: of its latest connection (as mosquitto). */
    mq_free(&b->a, s->username);
    s->username = user;
    s->sec = c->sec;
    s->version = c->version;
    s->expiry_s = session_expiry(c, p, cp, &exp_set);
    c->s = s;
    mq_bsess_attach(b, s, c);
    mq_bsess_set_will(b, s, will, mq_props_u32(p->will_props, MQLITE_PROP_WILL_DELAY, 0),
                      mq_props_u32(p->will_props, MQLITE_PROP_MESSAGE_EXPIRY, 0) != 0,
                      mq_props_u32(p->will_props, MQLITE_PROP_MESSAGE_EXPIRY, 0));
    /* 5.0 [MQTT-3.3.4-9]: no more unacknowledged QoS 1/2 than the client's
     * Receive Maximum. */
    s->q.window = cp->receive_max < b->o.max_inflight ? cp->receive_max : b->o.max_inflight;
    c->keepalive_s = keepalive(c, p, &ka_set);
    c->max_out = cp->max_packet;
    c->nalias = c->version == MQLITE_V5 ? b->o.topic_alias_max : 0;
    c->state = MQ_CONN_ACTIVE;
    c->deadline_ms = 0;
    if (c->keepalive_s)
        mq_broker_wake_at(b, b->now_ms + (uint64_t)c->keepalive_s * 1500u);
    b->st.connected++;
    mq_view props = mq_view_make(NULL, 0);
    if (c->version == MQLITE_V5) {
        /* Out of memory for the CONNACK properties: refuse, as above. A
         * CONNACK without them (they used to be left out silently) leaves the
         * client with wrong limits and no Assigned Client Identifier or Server
         * Keep Alive (tests/c/test_alloc_fail.c). */
        if (connack_props(c, assigned, ka_set, exp_set, auth_data))
            return mq_proto_refuse(c, 0x88, 0x03, id, "out of memory");
        props = mq_view_make(b->scratch.p, b->scratch.len);
    }
    put_connack(c, present, 0, props);
    log_connect(c, p, present);
    resume(c);
    return 0;
}

int mq_proto_connect(mq_conn *c, const mq_packet *p)
{
    uint8_t v3;
    const char *why = "";
    c->version = p->version;
    int v5 = refusal(c, p, &v3, &why);
    if (v5)
        return mq_proto_refuse(c, (uint8_t)v5, v3, p->client_id, why);
    return mq_auth_connect(c, p);
}

int mq_proto_connect_accept(mq_conn *c, const mq_packet *p, mq_view auth_data)
{
    mqlite_broker *b = c->b;
    cprops cp;
    read_cprops(p, &cp);
    mq_view id = p->client_id;
    char idbuf[40];
    const char *assigned = NULL;
    if (!id.len) {
        /* 3.1.1 [MQTT-3.1.3-6], 5.0 [MQTT-3.1.3-6]: assign a unique one. */
        mq_bsess_assign_id(b, idbuf, sizeof idbuf);
        id = mq_view_cstr(idbuf);
        assigned = c->version == MQLITE_V5 ? idbuf : NULL;
    }
    mq_msg *will;
    if (make_will(c, p, &will))
        return mq_proto_refuse(c, 0x88, 0x03, id, "out of memory");
    return accept_session(c, p, &cp, id, assigned, will, auth_data);
}

void mq_proto_connect_failed(mq_conn *c, int err, const mq_packet *p, const mq_decode_info *info)
{
    const char *why = mqlite_strerror(err);
    if (info->type != MQLITE_PKT_CONNECT) {
        /* 3.1.1 and 5.0 [MQTT-3.1.0-1] */
        mq_conn_close(c, -1, 0, "first packet is not CONNECT");
        return;
    }
    if (err == MQLITE_ERR_PROTOCOL_LEVEL) {
        /* 3.1.1 [MQTT-3.1.2-2]: CONNACK 0x01; 5.0 [MQTT-3.1.2-2]: 0x84. A
         * level above 5 is answered in 5.0's format, anything else in 3.1.1's. */
        c->version = p->version >= MQLITE_V5 ? MQLITE_V5 : MQLITE_V311;
        mq_proto_refuse(c, 0x84, 0x01, mq_view_make(NULL, 0), why);
        return;
    }
    if (p->version == MQLITE_V5 && err != MQLITE_ERR_PROTOCOL_NAME) {
        /* 5.0 [MQTT-3.1.4-1] and 4.13: CONNACK 0x81 / 0x82 / ..., then close. */
        uint8_t r = (uint8_t)mqlite_error_reason(err);
        c->version = MQLITE_V5;
        mq_proto_refuse(c, mq_reason_valid(MQLITE_PKT_CONNACK, r) ? r : 0x80, 0,
                        mq_view_make(NULL, 0), why);
        return;
    }
    /* 3.1.1 [MQTT-3.1.4-1]: close without CONNACK. */
    mq_conn_close(c, -1, 0, why);
}
