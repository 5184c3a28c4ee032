/*
 * session.c - the client session engine (see session.h). Sans-I/O: bytes,
 * time and requests in; bytes, events and deadlines out.
 */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>

#include "scram_client.h"
#include "topic.h"

struct mq_ctl {
    mq_ctl *next;
    uint8_t type;     /* MQLITE_PKT_SUBSCRIBE / _UNSUBSCRIBE */
    uint8_t internal; /* a re-subscription: no event for the application */
    uint8_t sent;     /* sent on the current connection */
    uint16_t pid;
    uint32_t count;
    mq_buf list;      /* wire form, as in mq_packet.list */
    mq_buf props;
};

struct mq_sub {
    mq_sub *next;
    uint8_t options;
    uint32_t subid;
    uint32_t len;
    char filter[];
};

#define TEXT_MAX 200

/* ---------------------------------------------------------------------
 * Events
 * --------------------------------------------------------------------- */

void mq_event_free(const mq_alloc *a, mq_event *ev)
{
    if (!ev || ev->reserve)
        return;
    if (ev->props_built)
        mq_plist_clear(&ev->props);
    mq_free(a, ev);
}

const mqlite_props *mq_event_props(mq_event *ev)
{
    if (!ev->props_built) {
        mq_plist_init(&ev->props, ev->a, 1);
        if (mq_plist_assign(&ev->props, ev->props_wire) != 0)
            return NULL; /* out of memory: "no list", not "no properties" */
        ev->props_built = 1;
    }
    return &ev->props;
}

/* An event with `extra` bytes of data after it (zeroed header). */
static void ev_push(mq_session *s, mq_event *ev);

/* An event could not be allocated: say so with the reserved event, so that
 * the application learns that its view of the session has a gap. */
static void ev_lost(mq_session *s)
{
    s->ev_lost++;
    if (!s->oom_ev || s->oom_queued)
        return;
    s->oom_queued = 1;
    s->oom_ev->next = NULL;
    ev_push(s, s->oom_ev);
}

int mq_session_reserve(mq_session *s)
{
    if (s->oom_ev)
        return 0;
    mq_event *ev = mq_malloc(&s->a, sizeof *ev + TEXT_MAX);
    if (!ev)
        return MQLITE_ERR_NOMEM;
    memset(ev, 0, sizeof *ev);
    ev->a = &s->a;
    ev->type = MQLITE_EVENT_ERROR;
    ev->error = MQLITE_ERR_NOMEM;
    ev->reserve = 1;
    ev->text = (const char *)ev->data;
    s->oom_ev = ev;
    return 0;
}

static mq_event *ev_alloc(mq_session *s, int32_t type, size_t extra)
{
    mq_event *ev = mq_malloc(&s->a, sizeof *ev + extra);
    if (!ev) {
        ev_lost(s);
        return NULL;
    }
    memset(ev, 0, sizeof *ev);
    ev->a = &s->a;
    ev->type = type;
    ev->text = "";
    return ev;
}

static void ev_push(mq_session *s, mq_event *ev)
{
    if (s->ev_tail)
        s->ev_tail->next = ev;
    else
        s->ev_head = ev;
    s->ev_tail = ev;
    s->ev_count++;
}

mq_event *mq_session_pop_event(mq_session *s)
{
    mq_event *ev = s->ev_head;
    if (!ev)
        return NULL;
    s->ev_head = ev->next;
    if (!s->ev_head)
        s->ev_tail = NULL;
    s->ev_count--;
    ev->next = NULL;
    if (ev == s->oom_ev) {
        snprintf((char *)ev->data, TEXT_MAX,
                 "out of memory: %u event(s) could not be queued and were lost "
                 "(the session state itself is intact)",
                 (unsigned)s->ev_lost);
        s->ev_lost = 0;
        s->oom_queued = 0;
    }
    return ev;
}

/* An event with a formatted text and a copy of a property block. Returns
 * it (already queued) or NULL on OOM. */
static mq_event *ev_text(mq_session *s, int32_t type, int32_t error, mq_view props,
                         const char *fmt, ...) MQ_PRINTF(5, 6);
static mq_event *ev_text(mq_session *s, int32_t type, int32_t error, mq_view props,
                         const char *fmt, ...)
{
    mq_event *ev = ev_alloc(s, type, TEXT_MAX + props.len);
    if (!ev)
        return NULL;
    ev->error = error;
    char *t = (char *)ev->data;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, TEXT_MAX, fmt, ap);
    va_end(ap);
    ev->text = t;
    if (props.len) {
        memcpy(ev->data + TEXT_MAX, props.p, props.len);
        ev->props_wire = mq_view_make(ev->data + TEXT_MAX, props.len);
    }
    ev_push(s, ev);
    return ev;
}

int mq_session_event(mq_session *s, int32_t type, int32_t error, const char *text)
{
    return ev_text(s, type, error, mq_view_make(NULL, 0), "%s", text) ? 0 : MQLITE_ERR_NOMEM;
}

/* MESSAGE and PUBLISH_LOST: topic and payload NUL-terminated, props copied. */
static mq_event *ev_message(mq_session *s, int32_t type, mq_view topic, mq_view payload,
                            mq_view props)
{
    mq_event *ev = ev_alloc(s, type, (size_t)topic.len + 1 + payload.len + 1 + props.len);
    if (!ev)
        return NULL;
    uint8_t *w = ev->data;
    memcpy(w, topic.p, topic.len);
    w[topic.len] = 0;
    ev->topic = (const char *)w;
    ev->topic_len = topic.len;
    w += topic.len + 1;
    if (payload.len)
        memcpy(w, payload.p, payload.len);
    w[payload.len] = 0;
    ev->payload = w;
    ev->payload_len = payload.len;
    w += payload.len + 1;
    if (props.len) {
        memcpy(w, props.p, props.len);
        ev->props_wire = mq_view_make(w, props.len);
    }
    ev->text = type == MQLITE_EVENT_MESSAGE ? "message received"
                                            : "in-flight message unknown to the server's new "
                                              "session: it may or may not have been delivered";
    return ev;
}

/* MQLITE_OPT_TRACE: a copy of one whole packet, sent (1) or received (0). */
static void trace(mq_session *s, const uint8_t *bytes, size_t len, int sent)
{
    if (!s->cfg.trace || !len)
        return;
    mq_event *ev = ev_alloc(s, MQLITE_EVENT_TRACE, len + 1);
    if (!ev)
        return;
    memcpy(ev->data, bytes, len);
    ev->data[len] = 0;
    ev->payload = ev->data;
    ev->payload_len = (uint32_t)len;
    ev->reason = (uint8_t)sent;
    ev->text = sent ? "packet sent" : "packet received";
    ev_push(s, ev);
}

/* ---------------------------------------------------------------------
 * Setup
 * --------------------------------------------------------------------- */

void mq_session_init(mq_session *s, const mq_alloc *a)
{
    memset(s, 0, sizeof *s);
    s->a = *a;
    mq_session_cfg *c = &s->cfg;
    c->version = MQLITE_V311;
    c->clean_start = 1;
    c->keepalive_s = 60;
    c->receive_max = 65535;
    c->topic_alias_max = 16;
    c->max_inflight = 65535;
    c->max_queued = 10000;
    c->max_queued_bytes = 64u << 20;
    c->connect_timeout_ms = 10000;
    c->request_problem_info = 1;
    c->resubscribe = 1;
    mq_outq_init(&s->out, c->max_inflight);
    s->out.max_queued = c->max_queued;
    s->out.max_queued_bytes = c->max_queued_bytes;
}

static void free_aliases(mq_session *s)
{
    if (s->aliases) {
        for (uint32_t i = 0; i <= s->cfg.topic_alias_max; i++)
            mq_free(&s->a, s->aliases[i]);
        mq_free(&s->a, s->aliases);
    }
    /* Outside the if: resolve_alias() may have got alias_len but not
     * aliases when memory ran out (leak, test_allocation_failure_sweep). */
    mq_free(&s->a, s->alias_len);
    s->aliases = NULL;
    s->alias_len = NULL;
}

static void ctl_free(mq_session *s, mq_ctl *c)
{
    mq_buf_free(&c->list, &s->a);
    mq_buf_free(&c->props, &s->a);
    mq_free(&s->a, c);
}

void mq_session_free(mq_session *s)
{
    const mq_alloc *a = &s->a;
    mq_event *ev;
    while ((ev = mq_session_pop_event(s)) != NULL)
        mq_event_free(a, ev);
    mq_free(a, s->oom_ev);
    s->oom_ev = NULL;
    for (mq_ctl *c = s->ctl_head, *n; c; c = n) {
        n = c->next;
        ctl_free(s, c);
    }
    for (mq_sub *u = s->subs, *n; u; u = n) {
        n = u->next;
        mq_free(a, u);
    }
    free_aliases(s);
    mq_outq_free(&s->out, a);
    mq_inq_free(&s->in, a);
    mq_buf_free(&s->inbuf, a);
    mq_buf_free(&s->outbuf, a);
    mq_session_cfg *c = &s->cfg;
    mq_free(a, c->client_id);
    mq_free(a, c->username);
    mq_free(a, c->will_topic);
    mq_free(a, s->assigned_id);
    mq_buf_free(&c->password, a);
    mq_buf_free(&c->will_payload, a);
    mq_buf_free(&c->will_props, a);
    mq_buf_free(&c->connect_props, a);
    mq_free(a, c->auth_method);
    mq_buf_free(&c->auth_data, a);
    mq_scramc_free(s->scram);
    s->scram = NULL;
}

/* ---------------------------------------------------------------------
 * Output
 * --------------------------------------------------------------------- */

static int send_pkt(mq_session *s, const mq_packet *p, uint64_t now)
{
    /* 3.1.1 [MQTT-3.14.4-2], 5.0 [MQTT-3.14.4-1]: nothing after our
     * DISCONNECT, also for packets the server sent before it saw it (their
     * acknowledgements follow on the next connection). Was: PUBACK, PUBREC,
     * PUBREL, PUBCOMP went out after it (test_nothing_sent_after_own_...). */
    if (s->disconnect_sent)
        return 0;
    const char *msg = NULL;
    size_t start = s->outbuf.len;
    int rc = mq_encode_buf(p, &s->outbuf, &s->a, &msg);
    if (rc)
        return mq_err_set(&s->err, rc, "cannot encode %s: %s", mqlite_packet_type_name(p->type),
                          msg ? msg : mqlite_strerror(rc));
    trace(s, s->outbuf.p + start, s->outbuf.len - start, 1);
    s->last_sent = now;
    return 0;
}

static int send_simple(mq_session *s, int type, uint16_t pid, uint8_t reason, uint64_t now)
{
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = (uint8_t)type;
    p.version = s->version;
    p.packet_id = pid;
    p.reason = s->version == MQLITE_V5 ? reason : 0;
    return send_pkt(s, &p, now);
}

/* 5.0: tell the server why we close (with a Reason String), then ask the
 * caller to close. 3.x: just close ([MQTT-4.8.0-1] 3.1.1 has no server-bound
 * reason). */
static int protocol_error(mq_session *s, int32_t rc, const char *what, uint64_t now)
{
    s->close_error = rc;
    mq_err_set(&s->err, rc, "%s: %s", what, mqlite_strerror(rc));
    if (s->version == MQLITE_V5 && !s->disconnect_sent) {
        mq_packet p;
        memset(&p, 0, sizeof p);
        p.type = MQLITE_PKT_DISCONNECT;
        p.version = MQLITE_V5;
        p.reason = (uint8_t)mqlite_error_reason(rc);
        s->close_reason = p.reason;
        mq_buf props = {0};
        const char *text = mqlite_strerror(rc);
        size_t tl = strlen(text);
        if (mq_props_put_bytes(&props, &s->a, MQLITE_PROP_REASON_STRING,
                               mq_view_make(text, tl > 200 ? 200 : tl)) == 0)
            p.props = mq_view_make(props.p, props.len);
        send_pkt(s, &p, now);
        mq_buf_free(&props, &s->a);
        s->disconnect_sent = 1;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * CONNECT
 * --------------------------------------------------------------------- */

/* ---- 5.0 enhanced authentication (section 4.12) ---- */

/* The method is SCRAM-SHA-256 and the application gave no data of its own:
 * the library runs the exchange with the user name and password options. */
static int auth_builtin(const mq_session *s)
{
    return s->cfg.auth_method && !s->cfg.has_auth_data &&
           strcmp(s->cfg.auth_method, MQ_SCRAMC_METHOD) == 0;
}

/* Authentication Method and Data for CONNECT (first = 1) or AUTH 0x19:
 * the built-in SCRAM starts a fresh exchange. */
static int auth_props(mq_session *s, mq_buf *b, int first)
{
    int rc = mq_props_put_bytes(b, &s->a, MQLITE_PROP_AUTH_METHOD,
                                mq_view_cstr(s->cfg.auth_method));
    if (rc || !first)
        return rc;
    if (auth_builtin(s)) {
        mq_buf data = {0};
        mq_scramc_free(s->scram);
        s->scram = NULL;
        rc = mq_scramc_start(&s->a, s->cfg.username,
                             mq_view_make(s->cfg.password.p, s->cfg.password.len), &s->scram,
                             &data, &s->err);
        if (!rc)
            rc = mq_props_put_bytes(b, &s->a, MQLITE_PROP_AUTH_DATA,
                                    mq_view_make(data.p, data.len));
        mq_buf_free(&data, &s->a);
        return rc;
    }
    if (s->cfg.has_auth_data)
        rc = mq_props_put_bytes(b, &s->a, MQLITE_PROP_AUTH_DATA,
                                mq_view_make(s->cfg.auth_data.p, s->cfg.auth_data.len));
    return rc;
}

static int connect_props(mq_session *s, mq_buf *b)
{
    const mq_session_cfg *c = &s->cfg;
    int rc = 0;
    if (c->session_expiry_s)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_SESSION_EXPIRY, c->session_expiry_s);
    if (!rc && c->receive_max != 65535)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_RECEIVE_MAX, c->receive_max);
    if (!rc && c->max_packet_size)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_MAX_PACKET_SIZE, c->max_packet_size);
    if (!rc && c->topic_alias_max)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_TOPIC_ALIAS_MAX, c->topic_alias_max);
    if (!rc && !c->request_problem_info)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_REQUEST_PROBLEM_INFO, 0);
    if (!rc && c->request_response_info)
        rc = mq_props_put_int(b, &s->a, MQLITE_PROP_REQUEST_RESPONSE_INFO, 1);
    if (!rc && c->auth_method)
        rc = auth_props(s, b, 1);
    if (!rc)
        rc = mq_buf_append(b, &s->a, c->connect_props.p, c->connect_props.len);
    if (!rc && b->len) {
        unsigned bad = 0;
        rc = mq_props_validate(mq_view_make(b->p, b->len), MQLITE_PKT_CONNECT, 0, &bad);
        if (rc)
            return mq_err_set(&s->err, rc,
                              "CONNECT property 0x%02x (%s): %s (set it with the client option, "
                              "not in MQLITE_OPT_CONNECT_PROPS)",
                              bad, mqlite_property_name((int32_t)bad), mqlite_strerror(rc));
    }
    return rc;
}

static void reset_connection(mq_session *s)
{
    s->inbuf.len = 0;
    s->outbuf.len = 0;
    free_aliases(s);
    s->ping_sent = 0;
    s->refused = 0;
    s->disconnect_sent = 0;
    s->close_error = 0;
    s->close_reason = 0;
    s->version = s->cfg.version;
    s->srv_receive_max = 65535;
    s->srv_max_qos = 2;
    s->srv_retain_available = 1;
    s->srv_max_packet_size = 0;
    s->srv_topic_alias_max = 0;
    s->keepalive_s = s->cfg.keepalive_s;
    for (mq_ctl *c = s->ctl_head; c; c = c->next)
        c->sent = 0;
    s->reauth = 0;
    mq_scramc_free(s->scram);
    s->scram = NULL;
}

int mq_session_begin(mq_session *s, uint64_t now)
{
    if (s->state != MQ_SS_IDLE)
        return mq_err_set(&s->err, MQLITE_ERR_STATE, "a connection is already under way");
    reset_connection(s);
    const mq_session_cfg *c = &s->cfg;
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQLITE_PKT_CONNECT;
    p.version = s->version;
    p.clean_start = c->clean_start;
    p.keepalive = c->keepalive_s;
    /* After a 5.0 server assigned us an identifier, reconnects use it, so
     * that the session can be resumed. */
    if ((!c->client_id || !*c->client_id) && s->assigned_id)
        p.client_id = mq_view_cstr(s->assigned_id);
    else
        p.client_id = mq_view_cstr(c->client_id);
    /* 3.1.1 [MQTT-3.1.3-7]: a zero-byte ClientId needs CleanSession 1 (the
     * server would refuse it with 0x02); 5.0 lets the server assign one.
     * Was sent as is (test_connect_empty_client_id_needs_clean_session). */
    if (s->version == MQLITE_V311 && p.client_id.len == 0 && !p.clean_start)
        return mq_err_set(&s->err, MQLITE_ERR_CLIENT_ID,
                          "an empty client identifier needs MQLITE_OPT_CLEAN_START 1 in MQTT "
                          "3.1.1 (MQTT 3.1.1 [MQTT-3.1.3-7])");
    /* MQTT 3.1 (3.1 spec, 3.1 CONNECT payload): 1 to 23 characters. */
    if (s->version == MQLITE_V31 && p.client_id.len == 0)
        return mq_err_set(&s->err, MQLITE_ERR_CLIENT_ID,
                          "MQTT 3.1 needs a client identifier of 1 to 23 characters");
    if (c->auth_method && s->version != MQLITE_V5)
        return mq_err_set(&s->err, MQLITE_ERR_UNSUPPORTED,
                          "enhanced authentication (MQLITE_OPT_AUTH_METHOD) needs MQTT 5.0");
    /* The built-in SCRAM proves the password without sending it: neither
     * the user name nor the password goes into CONNECT's own fields. */
    int builtin = auth_builtin(s);
    if (c->username && !builtin) {
        p.has_username = 1;
        p.username = mq_view_cstr(c->username);
    }
    if (c->has_password && !builtin) {
        p.has_password = 1;
        p.password = mq_view_make(c->password.p, c->password.len);
    }
    if (c->will_topic) {
        p.will = 1;
        p.will_qos = c->will_qos;
        p.will_retain = c->will_retain;
        p.will_topic = mq_view_cstr(c->will_topic);
        p.will_payload = mq_view_make(c->will_payload.p, c->will_payload.len);
        if (s->version == MQLITE_V5)
            p.will_props = mq_view_make(c->will_props.p, c->will_props.len);
    }
    mq_buf props = {0};
    int rc = 0;
    if (s->version == MQLITE_V5) {
        rc = connect_props(s, &props);
        p.props = mq_view_make(props.p, props.len);
    }
    if (!rc)
        rc = send_pkt(s, &p, now);
    mq_buf_free(&props, &s->a);
    if (rc)
        return rc;
    s->state = MQ_SS_CONNECTING;
    s->connect_deadline = now + c->connect_timeout_ms;
    s->last_recv = now;
    return 0;
}

/* ---------------------------------------------------------------------
 * CONNACK
 * --------------------------------------------------------------------- */

static void apply_connack_props(mq_session *s, mq_view props)
{
    uint32_t off = 0;
    mq_prop p;
    while (mq_props_next(props, &off, &p)) {
        switch (p.id) {
        case MQLITE_PROP_RECEIVE_MAX:
            s->srv_receive_max = (uint16_t)p.num;
            break;
        case MQLITE_PROP_MAX_QOS:
            s->srv_max_qos = (uint8_t)p.num;
            break;
        case MQLITE_PROP_RETAIN_AVAILABLE:
            s->srv_retain_available = (uint8_t)p.num;
            break;
        case MQLITE_PROP_MAX_PACKET_SIZE:
            s->srv_max_packet_size = p.num;
            break;
        case MQLITE_PROP_TOPIC_ALIAS_MAX:
            s->srv_topic_alias_max = (uint16_t)p.num;
            break;
        case MQLITE_PROP_SERVER_KEEPALIVE:
            /* MQTT 5.0 [MQTT-3.2.2-21]: the server's value replaces ours. */
            s->keepalive_s = (uint16_t)p.num;
            break;
        case MQLITE_PROP_ASSIGNED_CLIENT_ID: {
            char *id = mq_memdup0(&s->a, p.val.p, p.val.len);
            if (id) {
                mq_free(&s->a, s->assigned_id);
                s->assigned_id = id;
            }
            break;
        }
        default:
            break;
        }
    }
}

/* The server has no session for us: in-flight messages are reported lost,
 * never-sent ones stay queued and go out afresh, the incoming QoS 2 set is
 * dropped (5.0 [MQTT-4.1.0-1]: a new session starts empty). */
static void session_not_present(mq_session *s, uint64_t now)
{
    mq_flist *lists[2] = {&s->out.inflight, &s->out.queued};
    for (int i = 0; i < 2; i++) {
        mq_flow *f = lists[i]->head;
        while (f) {
            mq_flow *next = f->next;
            if (f->state == MQ_FLOW_RELEASED) {
                /* Past PUBREC the server owned the message (5.0 4.3.3,
                 * method B delivers it on PUBLISH): only the PUBCOMP is
                 * missing. Reporting it lost would invite a re-publish,
                 * and a duplicate at QoS 2. */
                mq_outq_remove(&s->out, f);
                mq_event *ev = ev_text(s, MQLITE_EVENT_PUBLISHED, 0, mq_view_make(NULL, 0),
                                       "message %u accepted by the server (PUBREC); its new "
                                       "session has no state left to complete with PUBCOMP",
                                       f->pid);
                if (ev) {
                    ev->pid = f->pid;
                    ev->qos = f->qos;
                }
                mq_flow_free(&s->a, f);
            } else if (f->sent) {
                mq_outq_remove(&s->out, f);
                mq_event *ev = ev_message(s, MQLITE_EVENT_PUBLISH_LOST, mq_msg_topic(f->msg),
                                          mq_msg_payload(f->msg), mq_msg_props(f->msg));
                if (ev) {
                    ev->pid = f->pid;
                    ev->qos = f->qos;
                    ev->retain = f->retain;
                    ev->error = MQLITE_ERR_CONNECTION_LOST;
                    ev_push(s, ev);
                }
                mq_flow_free(&s->a, f);
            }
            f = next;
        }
    }
    mq_inq_free(&s->in, &s->a);
    if (!s->cfg.resubscribe)
        return;
    /* Re-subscribe what the application had, one SUBSCRIBE per filter so
     * that each keeps its own subscription identifier. */
    for (mq_sub *u = s->subs; u; u = u->next) {
        mq_buf list = {0}, props = {0};
        mq_packet t;
        memset(&t, 0, sizeof t);
        t.type = MQLITE_PKT_SUBSCRIBE;
        t.version = s->version;
        t.count = 1;
        if (mq_list_put_filter(&list, &s->a, mq_view_make(u->filter, u->len), 1, u->options) ||
            (u->subid && s->version == MQLITE_V5 &&
             mq_props_put_int(&props, &s->a, MQLITE_PROP_SUBSCRIPTION_ID, u->subid))) {
            mq_buf_free(&list, &s->a);
            mq_buf_free(&props, &s->a);
            continue;
        }
        t.list = mq_view_make(list.p, list.len);
        t.props = mq_view_make(props.p, props.len);
        uint16_t pid;
        if (mq_session_send_list(s, &t, &pid, now) == 0)
            s->ctl_tail->internal = 1;
        mq_buf_free(&list, &s->a);
        mq_buf_free(&props, &s->a);
    }
}

static int send_ctl(mq_session *s, mq_ctl *c, uint64_t now)
{
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = c->type;
    p.version = s->version;
    p.packet_id = c->pid;
    p.count = c->count;
    p.list = mq_view_make(c->list.p, c->list.len);
    if (s->version == MQLITE_V5)
        p.props = mq_view_make(c->props.p, c->props.len);
    int rc = send_pkt(s, &p, now);
    if (!rc)
        c->sent = 1;
    return rc;
}

/* 5.0 [MQTT-4.12.0-5]: every AUTH and a successful CONNACK carry the
 * method of our CONNECT. */
static int auth_check(mq_session *s, const mq_packet *p, uint64_t now)
{
    mq_prop m;
    size_t n = strlen(s->cfg.auth_method);
    if (mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &m) != 1 || m.val.len != n ||
        memcmp(m.val.p, s->cfg.auth_method, n) != 0)
        return protocol_error(s, MQLITE_ERR_AUTH_METHOD,
                              p->type == MQLITE_PKT_AUTH
                                  ? "AUTH without our authentication method (MQTT 5.0 "
                                    "[MQTT-4.12.0-5])"
                                  : "CONNACK without our authentication method (MQTT 5.0 "
                                    "[MQTT-4.12.0-5])",
                              now);
    return 0;
}

static mq_view auth_data_of(const mq_packet *p)
{
    mq_prop d;
    if (mq_props_get(p->props, MQLITE_PROP_AUTH_DATA, &d) == 1)
        return d.val;
    return mq_view_make(NULL, 0);
}

/* A protocol error whose words come from s->err (set by the SCRAM module). */
static int auth_fail(mq_session *s, int32_t rc, uint64_t now)
{
    char what[MQ_ERRMSG_MAX - 40];
    memcpy(what, s->err.msg, sizeof what - 1);
    what[sizeof what - 1] = '\0';
    return protocol_error(s, rc, what, now);
}

/* The built-in SCRAM's last step: the server proves it knows the password. */
static int scram_verify(mq_session *s, const mq_packet *p, uint64_t now)
{
    int rc = s->scram ? mq_scramc_verify(s->scram, auth_data_of(p), &s->err)
                      : mq_err_set(&s->err, MQLITE_ERR_PROTOCOL, "SCRAM: no exchange under way");
    mq_scramc_free(s->scram);
    s->scram = NULL;
    return rc ? auth_fail(s, rc, now) : 0;
}

static int send_auth(mq_session *s, int reason, mq_view data, int with_data, uint64_t now)
{
    mq_packet a;
    memset(&a, 0, sizeof a);
    a.type = MQLITE_PKT_AUTH;
    a.version = MQLITE_V5;
    a.reason = (uint8_t)reason;
    mq_buf props = {0};
    int rc = auth_props(s, &props, 0);
    if (!rc && with_data)
        rc = mq_props_put_bytes(&props, &s->a, MQLITE_PROP_AUTH_DATA, data);
    if (rc) {
        mq_buf_free(&props, &s->a);
        return mq_err_code(&s->err, rc);
    }
    a.props = mq_view_make(props.p, props.len);
    rc = send_pkt(s, &a, now);
    mq_buf_free(&props, &s->a);
    return rc;
}

/* MQLITE_EVENT_AUTH: reason, the server's properties, and its
 * Authentication Data as the payload (NUL-terminated copy). */
static void ev_auth(mq_session *s, const mq_packet *p, const char *text)
{
    mq_view d = auth_data_of(p);
    mq_event *ev = ev_alloc(s, MQLITE_EVENT_AUTH, TEXT_MAX + p->props.len + d.len + 1);
    if (!ev)
        return;
    ev->reason = p->reason;
    char *t = (char *)ev->data;
    snprintf(t, TEXT_MAX, "%s", text);
    ev->text = t;
    uint8_t *w = ev->data + TEXT_MAX;
    if (p->props.len) {
        memcpy(w, p->props.p, p->props.len);
        ev->props_wire = mq_view_make(w, p->props.len);
        w += p->props.len;
    }
    if (d.len)
        memcpy(w, d.p, d.len);
    w[d.len] = '\0';
    ev->payload = w;
    ev->payload_len = (uint32_t)d.len;
    ev_push(s, ev);
}

static int on_auth(mq_session *s, const mq_packet *p, uint64_t now)
{
    /* 5.0 [MQTT-4.12.0-6]: without a method in CONNECT, no AUTH may come. */
    if (!s->cfg.auth_method || s->version != MQLITE_V5)
        return protocol_error(s, MQLITE_ERR_UNEXPECTED_PACKET,
                              "AUTH, but we asked for no enhanced authentication (MQTT 5.0 "
                              "[MQTT-4.12.0-6])",
                              now);
    int rc = auth_check(s, p, now);
    if (rc)
        return rc;
    if (p->reason == 0x18) { /* continue */
        if (s->state == MQ_SS_CONNECTED && !s->reauth)
            return protocol_error(s, MQLITE_ERR_PROTOCOL,
                                  "AUTH 0x18 while no re-authentication is under way", now);
        if (!auth_builtin(s)) {
            ev_auth(s, p, "authentication: the server continues (0x18); answer with "
                          "mqlite_client_auth");
            return 0;
        }
        /* 5.0 [MQTT-4.12.0-3]: the client answers with AUTH 0x18. */
        mq_buf out = {0};
        rc = s->scram ? mq_scramc_final(s->scram, auth_data_of(p), &out, &s->err)
                      : mq_err_set(&s->err, MQLITE_ERR_PROTOCOL, "SCRAM: no exchange under way");
        if (!rc)
            rc = send_auth(s, 0x18, mq_view_make(out.p, out.len), 1, now);
        mq_buf_free(&out, &s->a);
        return rc ? auth_fail(s, rc, now) : 0;
    }
    if (p->reason == 0x00 && s->state == MQ_SS_CONNECTED && s->reauth) {
        /* Re-authentication succeeded (5.0 section 4.12.1). */
        if (auth_builtin(s) && (rc = scram_verify(s, p, now)) != 0)
            return rc;
        s->reauth = 0;
        ev_auth(s, p, "re-authentication succeeded");
        return 0;
    }
    return protocol_error(s, MQLITE_ERR_PROTOCOL,
                          p->reason == 0x19 ? "AUTH 0x19 from the server (only clients "
                                              "re-authenticate)"
                                            : "AUTH 0x00 with no re-authentication under way",
                          now);
}

int mq_session_auth(mq_session *s, int reason, mq_view data, uint64_t now)
{
    /* 5.0 [MQTT-4.12.0-7]: no method in CONNECT, no AUTH from the client. */
    if (!s->cfg.auth_method)
        return mq_err_set(&s->err, MQLITE_ERR_STATE,
                          "no MQLITE_OPT_AUTH_METHOD was set: MQTT 5.0 [MQTT-4.12.0-7] forbids "
                          "AUTH without one");
    if (s->state != MQ_SS_CONNECTING && s->state != MQ_SS_CONNECTED)
        return mq_err_set(&s->err, MQLITE_ERR_NOT_CONNECTED, "not connected");
    if (s->version != MQLITE_V5)
        return mq_err_set(&s->err, MQLITE_ERR_STATE, "enhanced authentication needs MQTT 5.0");
    int builtin = auth_builtin(s);
    if (reason == 0x19) {
        /* 5.0 [MQTT-4.12.1-1]: after CONNACK, with the same method. */
        if (s->state != MQ_SS_CONNECTED)
            return mq_err_set(&s->err, MQLITE_ERR_STATE,
                              "re-authentication starts after CONNACK (MQTT 5.0 "
                              "[MQTT-4.12.1-1])");
        if (s->reauth)
            return mq_err_set(&s->err, MQLITE_ERR_STATE, "a re-authentication is under way");
        mq_buf first = {0};
        if (builtin) {
            if (data.len)
                return mq_err_set(&s->err, MQLITE_ERR_INVALID,
                                  "the built-in SCRAM-SHA-256 makes its own data");
            mq_scramc_free(s->scram);
            s->scram = NULL;
            int rc = mq_scramc_start(&s->a, s->cfg.username,
                                     mq_view_make(s->cfg.password.p, s->cfg.password.len),
                                     &s->scram, &first, &s->err);
            if (rc)
                return rc;
            data = mq_view_make(first.p, first.len);
        }
        int rc = send_auth(s, 0x19, data, builtin || data.len, now);
        mq_buf_free(&first, &s->a);
        if (!rc)
            s->reauth = 1;
        return rc;
    }
    if (reason != 0x18)
        return mq_err_set(&s->err, MQLITE_ERR_RANGE,
                          "AUTH reason must be 0x18 (continue) or 0x19 (re-authenticate), not "
                          "0x%02x", (unsigned)reason);
    if (builtin)
        return mq_err_set(&s->err, MQLITE_ERR_STATE,
                          "SCRAM-SHA-256 is answered by the library; set MQLITE_OPT_AUTH_DATA "
                          "to run the method yourself");
    if (s->state == MQ_SS_CONNECTED && !s->reauth)
        return mq_err_set(&s->err, MQLITE_ERR_STATE,
                          "AUTH 0x18 answers the server's AUTH: no exchange is under way");
    return send_auth(s, 0x18, data, 1, now);
}

static int on_connack(mq_session *s, const mq_packet *p, uint64_t now)
{
    if (s->state != MQ_SS_CONNECTING)
        return protocol_error(s, MQLITE_ERR_UNEXPECTED_PACKET, "second CONNACK", now);
    if (p->reason) {
        s->refused = 1;
        s->close_error = MQLITE_ERR_REFUSED;
        mq_event *ev = ev_text(s, MQLITE_EVENT_CONNECT_FAILED, MQLITE_ERR_REFUSED, p->props,
                               "connection refused: %s (code 0x%02x)",
                               mqlite_reason_string(MQLITE_PKT_CONNACK, p->reason, s->version),
                               p->reason);
        if (ev)
            ev->reason = p->reason;
        return mq_err_set(&s->err, MQLITE_ERR_REFUSED, "connection refused: %s",
                          mqlite_reason_string(MQLITE_PKT_CONNACK, p->reason, s->version));
    }
    /* 3.1.1 3.2.2.2, 5.0 [MQTT-3.2.2-4]: after Clean Start 1 the client has
     * no session state, so Session Present 1 means the connection must be
     * closed (it used to be taken as a resume: re-sends with DUP into a
     * session the server must not have; test_connack_session_present_...). */
    if (p->session_present && s->cfg.clean_start)
        return protocol_error(s, MQLITE_ERR_PROTOCOL,
                              "CONNACK Session Present 1 after Clean Start 1 (MQTT 5.0 "
                              "[MQTT-3.2.2-4])",
                              now);
    if (s->cfg.auth_method && s->version == MQLITE_V5) {
        int rc = auth_check(s, p, now);
        if (rc)
            return rc;
        if (auth_builtin(s) && (rc = scram_verify(s, p, now)) != 0)
            return rc;
    }
    apply_connack_props(s, p->props);
    s->state = MQ_SS_CONNECTED;
    s->ever_connected = 1;
    uint32_t win = s->cfg.max_inflight < s->srv_receive_max ? s->cfg.max_inflight
                                                            : s->srv_receive_max;
    s->out.window = win ? win : 1;
    mq_event *ev = ev_text(s, MQLITE_EVENT_CONNECTED, 0, p->props, "connected (session %s)",
                           p->session_present ? "resumed" : "new");
    if (ev)
        ev->session_present = p->session_present;
    if (!p->session_present) {
        session_not_present(s, now);
    } else {
        /* 3.1.1 [MQTT-4.4.0-1], 5.0 [MQTT-4.4.0-1]: re-send PUBREL for
         * flows past PUBREC; PUBLISH re-sends follow from the queue. */
        for (mq_flow *f = s->out.inflight.head; f; f = f->next)
            if (f->state == MQ_FLOW_RELEASED)
                send_simple(s, MQLITE_PKT_PUBREL, f->pid, 0, now);
    }
    for (mq_ctl *c = s->ctl_head; c; c = c->next)
        if (!c->sent)
            send_ctl(s, c, now);
    return 0;
}

/* ---------------------------------------------------------------------
 * Incoming PUBLISH
 * --------------------------------------------------------------------- */

/* MQTT 5.0 3.3.2.3.4: resolve or record a topic alias. */
static int resolve_alias(mq_session *s, const mq_packet *p, mq_view *topic)
{
    mq_prop a;
    *topic = p->topic;
    if (s->version != MQLITE_V5 || !mq_props_get(p->props, MQLITE_PROP_TOPIC_ALIAS, &a))
        return 0;
    /* [MQTT-3.3.2-9], [MQTT-3.3.2-10]: 0 < alias <= what we allowed. */
    if (a.num == 0 || a.num > s->cfg.topic_alias_max)
        return MQLITE_ERR_TOPIC_ALIAS;
    if (!s->aliases) {
        s->aliases = mq_calloc(&s->a, ((size_t)s->cfg.topic_alias_max + 1) * sizeof(char *));
        s->alias_len = mq_calloc(&s->a, ((size_t)s->cfg.topic_alias_max + 1) * sizeof(uint32_t));
        if (!s->aliases || !s->alias_len) {
            free_aliases(s);
            return MQLITE_ERR_NOMEM;
        }
    }
    if (p->topic.len) {
        char *t = mq_memdup0(&s->a, p->topic.p, p->topic.len);
        if (!t)
            return MQLITE_ERR_NOMEM;
        mq_free(&s->a, s->aliases[a.num]);
        s->aliases[a.num] = t;
        s->alias_len[a.num] = p->topic.len;
        return 0;
    }
    if (!s->aliases[a.num])
        return MQLITE_ERR_TOPIC_ALIAS;
    *topic = mq_view_make(s->aliases[a.num], s->alias_len[a.num]);
    return 0;
}

static int deliver(mq_session *s, const mq_packet *p, mq_view topic)
{
    mq_event *ev = ev_message(s, MQLITE_EVENT_MESSAGE, topic, p->payload, p->props);
    if (!ev)
        return MQLITE_ERR_NOMEM;
    ev->qos = p->qos;
    ev->retain = p->retain;
    ev->dup = p->dup;
    ev->pid = p->packet_id;
    ev_push(s, ev);
    s->msgs_in++;
    return 0;
}

static int on_publish(mq_session *s, const mq_packet *p, uint64_t now)
{
    if (s->state != MQ_SS_CONNECTED && s->state != MQ_SS_DISCONNECTING)
        return protocol_error(s, MQLITE_ERR_UNEXPECTED_PACKET, "PUBLISH before CONNACK", now);
    mq_view topic;
    int rc = resolve_alias(s, p, &topic);
    if (rc)
        return protocol_error(s, rc, "PUBLISH topic alias", now);
    if (p->qos == 0)
        return deliver(s, p, topic);
    if (p->qos == 1) {
        /* Acknowledged once it is in the application's queue. */
        rc = deliver(s, p, topic);
        return rc ? rc : send_simple(s, MQLITE_PKT_PUBACK, p->packet_id, 0, now);
    }
    /* QoS 2, 5.0 [MQTT-4.3.3-9]: deliver once; the identifier is held until
     * PUBREL, and a re-sent PUBLISH with it is only acknowledged again. */
    rc = mq_inq_qos2_begin(&s->in, &s->a, p->packet_id);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        /* 5.0 [MQTT-3.3.4-9]: no more than Receive Maximum unacknowledged. */
        if (mq_inq_count(&s->in) > s->cfg.receive_max && s->version == MQLITE_V5) {
            mq_inq_qos2_release(&s->in, p->packet_id);
            return protocol_error(s, MQLITE_ERR_RECEIVE_MAX, "incoming QoS 2", now);
        }
        rc = deliver(s, p, topic);
        if (rc) {
            mq_inq_qos2_release(&s->in, p->packet_id);
            return rc;
        }
    }
    return send_simple(s, MQLITE_PKT_PUBREC, p->packet_id, 0, now);
}

/* ---------------------------------------------------------------------
 * Acknowledgements
 * --------------------------------------------------------------------- */

static int on_pub_ack(mq_session *s, const mq_packet *p, uint64_t now)
{
    mq_flow *f = NULL;
    int rc = mq_outq_ack(&s->out, p->type, p->packet_id, p->reason, &f);
    if (rc == MQ_ACK_PUBREL)
        return send_simple(s, MQLITE_PKT_PUBREL, p->packet_id, 0, now);
    if (rc == MQ_ACK_DONE) {
        /* 5.0 3.7.2.1: PUBCOMP 0x92 "is not an error during recovery" (the
         * answer to a PUBREL re-sent on resume); the server accepted the
         * message with its PUBREC, so a PUBCOMP never fails the delivery
         * (test_pubcomp_0x92_after_resent_pubrel_is_success_v5). */
        int32_t failed = p->reason >= 0x80 && p->type != MQLITE_PKT_PUBCOMP;
        mq_event *ev = ev_text(s, MQLITE_EVENT_PUBLISHED, failed ? MQLITE_ERR_REFUSED : 0, p->props,
                               "%s for packet %u: %s", mqlite_packet_type_name(p->type),
                               p->packet_id, mqlite_reason_string(p->type, p->reason, MQLITE_V5));
        if (ev) {
            ev->pid = f->pid;
            ev->reason = p->reason;
            ev->qos = f->qos;
        }
        mq_flow_free(&s->a, f);
        return 0;
    }
    /* An acknowledgement we do not expect: after a resume the server may
     * acknowledge twice. 5.0 4.3.3: answer an unknown PUBREC with PUBREL
     * 0x92 so that the server's flow ends. */
    if (p->type == MQLITE_PKT_PUBREC)
        return send_simple(s, MQLITE_PKT_PUBREL, p->packet_id, 0x92, now);
    return 0;
}

static int on_pubrel(mq_session *s, const mq_packet *p, uint64_t now)
{
    int held = mq_inq_qos2_release(&s->in, p->packet_id);
    return send_simple(s, MQLITE_PKT_PUBCOMP, p->packet_id, held ? 0 : 0x92, now);
}

static mq_ctl *ctl_take(mq_session *s, int type, uint16_t pid)
{
    mq_ctl *prev = NULL;
    for (mq_ctl *c = s->ctl_head; c; prev = c, c = c->next) {
        if (c->pid != pid || c->type != type || !c->sent)
            continue;
        if (prev)
            prev->next = c->next;
        else
            s->ctl_head = c->next;
        if (s->ctl_tail == c)
            s->ctl_tail = prev;
        c->next = NULL;
        return c;
    }
    return NULL;
}

static void sub_remove(mq_session *s, mq_view f)
{
    for (mq_sub **pp = &s->subs; *pp; pp = &(*pp)->next) {
        mq_sub *u = *pp;
        if (u->len == f.len && memcmp(u->filter, f.p, f.len) == 0) {
            *pp = u->next;
            mq_free(&s->a, u);
            return;
        }
    }
}

static void sub_record(mq_session *s, mq_view f, uint8_t options, uint32_t subid)
{
    sub_remove(s, f);
    mq_sub *u = mq_malloc(&s->a, sizeof *u + f.len + 1);
    if (!u)
        return; /* only resubscription after a lost session is affected */
    u->options = options;
    u->subid = subid;
    u->len = f.len;
    memcpy(u->filter, f.p, f.len);
    u->filter[f.len] = 0;
    u->next = s->subs;
    s->subs = u;
}

/* Keep the subscription list in step with what the server granted. */
static void track_subs(mq_session *s, const mq_ctl *c, const mq_packet *ack)
{
    mq_packet req;
    memset(&req, 0, sizeof req);
    req.type = c->type;
    req.list = mq_view_make(c->list.p, c->list.len);
    uint32_t subid = mq_props_u32(mq_view_make(c->props.p, c->props.len),
                                  MQLITE_PROP_SUBSCRIPTION_ID, 0);
    uint32_t off = 0;
    mq_view f;
    uint8_t opts;
    for (uint32_t i = 0; mq_list_next(&req, &off, &f, &opts); i++) {
        uint8_t code = i < ack->count ? ack->list.p[i] : 0;
        if (c->type == MQLITE_PKT_SUBSCRIBE && code < 0x80)
            sub_record(s, f, opts, subid);
        else if (c->type == MQLITE_PKT_UNSUBSCRIBE && code < 0x80)
            sub_remove(s, f);
    }
}

static int on_list_ack(mq_session *s, const mq_packet *p, uint64_t now)
{
    int req = p->type == MQLITE_PKT_SUBACK ? MQLITE_PKT_SUBSCRIBE : MQLITE_PKT_UNSUBSCRIBE;
    mq_ctl *c = ctl_take(s, req, p->packet_id);
    (void)now;
    if (!c)
        return 0; /* stale (answered twice across a resume) */
    mq_outq_release_pid(&s->out, c->pid);
    /* 3.1.1 UNSUBACK carries no codes; 5.0 SUBACK/UNSUBACK one per filter. */
    if (p->count && p->count != c->count) {
        ctl_free(s, c);
        return protocol_error(s, MQLITE_ERR_PROTOCOL, "acknowledgement with a wrong number of codes", now);
    }
    track_subs(s, c, p);
    int failed = 0;
    for (uint32_t i = 0; i < p->count; i++)
        failed += p->list.p[i] >= 0x80;
    if (!c->internal) {
        mq_event *ev = ev_alloc(s, p->type == MQLITE_PKT_SUBACK ? MQLITE_EVENT_SUBACK
                                                                : MQLITE_EVENT_UNSUBACK,
                                p->count + p->props.len);
        if (ev) {
            if (p->count) /* 3.1.1 UNSUBACK: no codes, list.p NULL (UBSan) */
                memcpy(ev->data, p->list.p, p->count);
            ev->codes = ev->data;
            ev->count = p->count;
            if (p->props.len) {
                memcpy(ev->data + p->count, p->props.p, p->props.len);
                ev->props_wire = mq_view_make(ev->data + p->count, p->props.len);
            }
            ev->pid = p->packet_id;
            ev->text = failed ? "some filters were refused" : "acknowledged";
            ev_push(s, ev);
        }
    } else if (failed) {
        ev_text(s, MQLITE_EVENT_ERROR, MQLITE_ERR_REFUSED, mq_view_make(NULL, 0),
                "re-subscription after reconnect refused by the server");
    }
    ctl_free(s, c);
    return 0;
}

static int on_disconnect(mq_session *s, const mq_packet *p)
{
    s->close_error = MQLITE_ERR_CLOSED;
    s->close_reason = p->reason;
    ev_text(s, MQLITE_EVENT_DISCONNECTED, MQLITE_ERR_CLOSED, p->props,
            "server disconnected: %s (0x%02x)",
            mqlite_reason_string(MQLITE_PKT_DISCONNECT, p->reason, MQLITE_V5), p->reason);
    if (s->ev_tail && s->ev_tail->type == MQLITE_EVENT_DISCONNECTED)
        s->ev_tail->reason = p->reason;
    s->refused = 1; /* the event is out: closed() adds none */
    return MQLITE_ERR_CLOSED;
}

static int handle(mq_session *s, const mq_packet *p, uint64_t now)
{
    if (p->type != MQLITE_PKT_CONNACK && p->type != MQLITE_PKT_AUTH &&
        s->state == MQ_SS_CONNECTING)
        return protocol_error(s, MQLITE_ERR_UNEXPECTED_PACKET, "packet before CONNACK", now);
    switch (p->type) {
    case MQLITE_PKT_CONNACK:
        return on_connack(s, p, now);
    case MQLITE_PKT_PUBLISH:
        return on_publish(s, p, now);
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBCOMP:
        return on_pub_ack(s, p, now);
    case MQLITE_PKT_PUBREL:
        return on_pubrel(s, p, now);
    case MQLITE_PKT_SUBACK:
    case MQLITE_PKT_UNSUBACK:
        return on_list_ack(s, p, now);
    case MQLITE_PKT_PINGRESP:
        s->ping_sent = 0;
        return 0;
    case MQLITE_PKT_DISCONNECT:
        return on_disconnect(s, p);
    case MQLITE_PKT_AUTH:
        return on_auth(s, p, now);
    default:
        return protocol_error(s, MQLITE_ERR_UNEXPECTED_PACKET, mqlite_packet_type_name(p->type),
                              now);
    }
}

/* ---------------------------------------------------------------------
 * Input
 * --------------------------------------------------------------------- */

/* Decode and handle every whole packet in buf; *used gets what was eaten. */
static int process(mq_session *s, const uint8_t *buf, size_t len, size_t *used, uint64_t now)
{
    mq_decode_opts o = {0};
    o.version = s->version;
    o.strict_utf8 = s->cfg.strict_utf8;
    o.role = MQ_ROLE_CLIENT;
    o.max_packet_size = s->cfg.max_packet_size;
    size_t off = 0;
    int rc = 0;
    while (off < len && s->state != MQ_SS_IDLE) {
        mq_packet p;
        size_t n = 0, need = 0;
        mq_decode_info info;
        rc = mq_decode(buf + off, len - off, &o, &p, &n, &need, &info);
        if (rc == MQ_NEED_MORE) {
            rc = 0;
            break;
        }
        if (rc < 0) {
            char what[64];
            snprintf(what, sizeof what, "received %s", mqlite_packet_type_name(info.type));
            rc = protocol_error(s, rc, what, now);
            break;
        }
        trace(s, buf + off, n, 0);
        off += n;
        rc = handle(s, &p, now);
        if (rc < 0)
            break;
    }
    *used = off;
    return rc;
}

int mq_session_feed(mq_session *s, const uint8_t *data, size_t len, uint64_t now)
{
    if (s->state == MQ_SS_IDLE)
        return mq_err_set(&s->err, MQLITE_ERR_STATE, "no connection to feed");
    if (len == 0)
        return 0;
    s->last_recv = now;
    size_t used = 0;
    int rc;
    if (s->inbuf.len == 0) {
        rc = process(s, data, len, &used, now);
        if (rc == 0 && used < len && mq_buf_append(&s->inbuf, &s->a, data + used, len - used))
            rc = MQLITE_ERR_NOMEM;
    } else {
        if (mq_buf_append(&s->inbuf, &s->a, data, len))
            return MQLITE_ERR_NOMEM;
        rc = process(s, s->inbuf.p, s->inbuf.len, &used, now);
        mq_buf_consume(&s->inbuf, used);
    }
    if (rc == 0)
        mq_session_pump(s, 1 << 16, now);
    return rc;
}

/* ---------------------------------------------------------------------
 * Timers
 * --------------------------------------------------------------------- */

static uint64_t ping_timeout(const mq_session *s)
{
    return s->cfg.ping_timeout_ms ? s->cfg.ping_timeout_ms : (uint64_t)s->keepalive_s * 1000u;
}

uint64_t mq_session_deadline(const mq_session *s)
{
    if (s->state == MQ_SS_CONNECTING)
        return s->connect_deadline;
    if (s->state != MQ_SS_CONNECTED || s->keepalive_s == 0)
        return UINT64_MAX;
    if (s->ping_sent)
        return s->ping_sent + ping_timeout(s);
    uint64_t idle = s->last_sent < s->last_recv ? s->last_sent : s->last_recv;
    return idle + (uint64_t)s->keepalive_s * 1000u;
}

int mq_session_tick(mq_session *s, uint64_t now)
{
    /* Already asked to close: no PINGREQ after our DISCONNECT (5.0
     * [MQTT-3.14.4-1]); say it again (test_nothing_sent_after_close_decided). */
    if (s->state != MQ_SS_IDLE && s->close_error)
        return s->close_error;
    if (s->state == MQ_SS_CONNECTING && now >= s->connect_deadline) {
        s->close_error = MQLITE_ERR_TIMEOUT;
        return mq_err_set(&s->err, MQLITE_ERR_TIMEOUT, "no CONNACK within %u ms",
                          (unsigned)s->cfg.connect_timeout_ms);
    }
    if (s->state != MQ_SS_CONNECTED || s->keepalive_s == 0)
        return 0;
    if (s->ping_sent) {
        if (now >= s->ping_sent + ping_timeout(s)) {
            s->close_error = MQLITE_ERR_KEEPALIVE;
            return mq_err_set(&s->err, MQLITE_ERR_KEEPALIVE, "no PINGRESP within %llu ms",
                              (unsigned long long)ping_timeout(s));
        }
        return 0;
    }
    /* 3.1.1 [MQTT-3.1.2-23], 5.0 [MQTT-3.1.2-22]: never stay silent longer
     * than the keep-alive; ping also when nothing came in for that long. */
    if (now >= mq_session_deadline(s)) {
        int rc = send_simple(s, MQLITE_PKT_PINGREQ, 0, 0, now);
        if (rc)
            return rc;
        s->ping_sent = now;
    }
    return 0;
}

void mq_session_closed(mq_session *s, int32_t err, uint64_t now)
{
    (void)now;
    int prev = s->state;
    if (prev == MQ_SS_IDLE)
        return;
    s->state = MQ_SS_IDLE;
    s->inbuf.len = 0;
    s->outbuf.len = 0;
    free_aliases(s);
    mq_outq_requeue_inflight(&s->out);
    for (mq_ctl *c = s->ctl_head; c; c = c->next)
        c->sent = 0;
    int32_t why = err ? err : s->close_error;
    if (s->refused)
        return; /* CONNECT_FAILED or the server's DISCONNECT already said it */
    if (prev == MQ_SS_CONNECTING) {
        if (!why)
            why = MQLITE_ERR_CONNECTION_LOST;
        ev_text(s, MQLITE_EVENT_CONNECT_FAILED, why, mq_view_make(NULL, 0),
                "connection failed before CONNACK: %s",
                s->err.code == why ? s->err.msg : mqlite_strerror(why));
        return;
    }
    if (prev == MQ_SS_DISCONNECTING && !err) {
        mq_event *ev = ev_text(s, MQLITE_EVENT_DISCONNECTED, 0, mq_view_make(NULL, 0),
                               "disconnected");
        if (ev)
            ev->reason = s->close_reason;
        return;
    }
    if (!why)
        why = MQLITE_ERR_CONNECTION_LOST;
    mq_event *ev = ev_text(s, MQLITE_EVENT_DISCONNECTED, why, mq_view_make(NULL, 0),
                           "connection lost: %s",
                           s->err.code == why ? s->err.msg : mqlite_strerror(why));
    if (ev)
        ev->reason = s->close_reason;
}

/* ---------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

/* Complete a flow that cannot be sent on this connection. */
static void fail_flow(mq_session *s, mq_flow *f, int32_t err, const char *why)
{
    if (f->qos) {
        mq_outq_remove(&s->out, f);
        mq_event *ev = ev_text(s, MQLITE_EVENT_PUBLISHED, err, mq_view_make(NULL, 0),
                               "message %u not sent: %s", f->pid, why);
        if (ev) {
            ev->pid = f->pid;
            ev->qos = f->qos;
        }
    } else {
        ev_text(s, MQLITE_EVENT_ERROR, err, mq_view_make(NULL, 0), "QoS 0 message not sent: %s",
                why);
    }
    mq_flow_free(&s->a, f);
}

/* 0 when the flow was sent or completed with an error; -1 when it was put
 * back because memory ran out. */
static int send_flow(mq_session *s, mq_flow *f, uint64_t now)
{
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQLITE_PKT_PUBLISH;
    p.version = s->version;
    p.qos = f->qos;
    p.retain = f->retain;
    p.dup = f->qos && f->sent;
    p.packet_id = f->pid;
    p.topic = mq_msg_topic(f->msg);
    p.payload = mq_msg_payload(f->msg);
    if (s->version == MQLITE_V5)
        p.props = mq_msg_props(f->msg);
    if (f->qos > s->srv_max_qos) {
        fail_flow(s, f, MQLITE_ERR_QOS_NOT_SUPPORTED, "the server's Maximum QoS is lower");
        return 0;
    }
    if (f->retain && !s->srv_retain_available) {
        fail_flow(s, f, MQLITE_ERR_RETAIN_NOT_SUPPORTED, "the server has no retained messages");
        return 0;
    }
    size_t n;
    if (mq_encode_size(&p, &n, NULL) != 0 ||
        (s->srv_max_packet_size && n > s->srv_max_packet_size)) {
        fail_flow(s, f, MQLITE_ERR_TOO_LARGE, "larger than the server's Maximum Packet Size");
        return 0;
    }
    if (mq_buf_reserve(&s->outbuf, &s->a, n)) {
        /* Try again on the next pump. */
        mq_outq_unsend(&s->out, f);
        return -1;
    }
    size_t start = s->outbuf.len;
    s->outbuf.len += mq_encode_write(&p, s->outbuf.p + s->outbuf.len);
    trace(s, s->outbuf.p + start, s->outbuf.len - start, 1);
    s->last_sent = now;
    f->sent = 1;
    if (f->qos == 0)
        mq_flow_free(&s->a, f);
    return 0;
}

void mq_session_pump(mq_session *s, size_t limit, uint64_t now)
{
    /* close_error: the engine asked the caller to close this connection
     * (5.0 [MQTT-3.14.4-1]: nothing after our DISCONNECT; nothing into a
     * connection the server ended or the keep-alive declared dead). What
     * stays queued goes out, as new, on the next connection
     * (test_nothing_sent_after_close_decided). */
    if (s->state != MQ_SS_CONNECTED || s->close_error)
        return;
    while (s->outbuf.len < limit) {
        mq_flow *f = mq_outq_next(&s->out);
        if (!f || send_flow(s, f, now) < 0)
            break;
    }
}

static int check_publish(mq_session *s, mq_view topic, int qos, int retain, mq_view props)
{
    const char *msg = NULL;
    if (qos < 0 || qos > 2)
        return mq_err_set(&s->err, MQLITE_ERR_RANGE, "QoS must be 0, 1 or 2, not %d", qos);
    int rc = mq_topic_check_name(topic, &msg);
    if (rc)
        return mq_err_set(&s->err, rc, "topic \"%.*s\": %s", (int)(topic.len > 100 ? 100 : topic.len),
                          (const char *)topic.p, msg ? msg : mqlite_strerror(rc));
    if (props.len) {
        if (s->cfg.version != MQLITE_V5)
            return mq_err_set(&s->err, MQLITE_ERR_UNSUPPORTED,
                              "PUBLISH properties need MQTT 5.0 (MQLITE_OPT_PROTOCOL 5)");
        unsigned bad = 0;
        rc = mq_props_validate(props, MQLITE_PKT_PUBLISH, 0, &bad);
        mq_prop pr;
        /* 5.0 [MQTT-3.3.4-6]: a client never sends a Subscription Identifier;
         * topic aliases are the session's business. */
        if (!rc && (mq_props_get(props, MQLITE_PROP_SUBSCRIPTION_ID, &pr) ||
                    mq_props_get(props, MQLITE_PROP_TOPIC_ALIAS, &pr))) {
            rc = MQLITE_ERR_PROPERTY_PACKET;
            bad = pr.id;
        }
        if (rc)
            return mq_err_set(&s->err, rc, "PUBLISH property 0x%02x: %s", bad, mqlite_strerror(rc));
    }
    if (s->state == MQ_SS_CONNECTED) {
        if (qos > s->srv_max_qos)
            return mq_err_set(&s->err, MQLITE_ERR_QOS_NOT_SUPPORTED,
                              "QoS %d is above the server's Maximum QoS %d (MQTT 5.0 "
                              "[MQTT-3.2.2-11])", qos, s->srv_max_qos);
        if (retain && !s->srv_retain_available)
            return mq_err_set(&s->err, MQLITE_ERR_RETAIN_NOT_SUPPORTED,
                              "the server does not support retained messages (MQTT 5.0 "
                              "[MQTT-3.2.2-14])");
    }
    return 0;
}

int mq_session_publish(mq_session *s, mq_view topic, mq_view payload, int qos, int retain,
                       mq_view props, uint16_t *pid, uint64_t now)
{
    int rc = check_publish(s, topic, qos, retain, props);
    if (rc)
        return rc;
    /* Size check against what the packet will be on the wire. The size is
     * exact (a PUBLISH we send never carries a Topic Alias): an estimate
     * with 4-byte length fields refused packets that fit the server's
     * Maximum Packet Size exactly (test_connack_maximum_packet_size_v5). */
    uint64_t rem = 2 + (uint64_t)topic.len + (qos ? 2 : 0) + payload.len;
    if (s->cfg.version == MQLITE_V5)
        rem += mq_vbi_size(props.len) + (uint64_t)props.len;
    size_t size = rem > MQ_VBI_MAX ? MQ_MAX_PACKET_SIZE + 1 : 1 + mq_vbi_size((uint32_t)rem) + rem;
    if (payload.len > MQ_VBI_MAX || size > MQ_MAX_PACKET_SIZE)
        return mq_err_set(&s->err, MQLITE_ERR_TOO_LARGE, "payload of %u bytes is over MQTT's limit",
                          (unsigned)payload.len);
    if (s->state == MQ_SS_CONNECTED && s->srv_max_packet_size && size > s->srv_max_packet_size)
        return mq_err_set(&s->err, MQLITE_ERR_TOO_LARGE,
                          "PUBLISH of %zu bytes is over the server's Maximum Packet Size "
                          "%u (MQTT 5.0 [MQTT-3.2.2-15])",
                          size, (unsigned)s->srv_max_packet_size);
    mq_msg *m = mq_msg_new(&s->a, topic, s->cfg.version == MQLITE_V5 ? props : mq_view_make(NULL, 0),
                           payload, (uint8_t)qos, (uint8_t)(retain != 0));
    if (!m)
        return mq_err_code(&s->err, MQLITE_ERR_NOMEM);
    int err = 0;
    mq_flow *f = mq_outq_push(&s->out, &s->a, m, (uint8_t)qos, (uint8_t)(retain != 0), 0, &err);
    mq_msg_unref(&s->a, m);
    if (!f) {
        if (err == MQLITE_ERR_QUEUE_FULL)
            return mq_err_set(&s->err, err,
                              "queue full: %u messages / %llu bytes waiting (MQLITE_OPT_MAX_QUEUED, "
                              "MQLITE_OPT_MAX_QUEUED_BYTES); nothing was queued",
                              (unsigned)s->out.queued.count,
                              (unsigned long long)s->out.queued_bytes);
        return mq_err_code(&s->err, err);
    }
    if (pid)
        *pid = f->pid;
    mq_session_pump(s, 1 << 16, now);
    return 0;
}

int mq_session_send_list(mq_session *s, const mq_packet *t, uint16_t *pid, uint64_t now)
{
    /* Idle is fine: the caller (client.c) knows whether a connection is
     * being made; the request waits for its CONNACK like the rest. */
    if (s->state == MQ_SS_DISCONNECTING)
        return mq_err_set(&s->err, MQLITE_ERR_NOT_CONNECTED, "disconnecting");
    if (t->type != MQLITE_PKT_SUBSCRIBE && t->type != MQLITE_PKT_UNSUBSCRIBE)
        return mq_err_set(&s->err, MQLITE_ERR_INVALID, "only SUBSCRIBE or UNSUBSCRIBE");
    uint8_t level = s->state == MQ_SS_IDLE ? s->cfg.version : s->version;
    if (t->version != level)
        return mq_err_set(&s->err, MQLITE_ERR_INVALID,
                          "packet is for protocol level %d, the connection uses %d", t->version,
                          level);
    mq_ctl *c = mq_calloc(&s->a, sizeof *c);
    if (!c)
        return mq_err_code(&s->err, MQLITE_ERR_NOMEM);
    c->type = t->type;
    c->count = t->count;
    int rc = mq_buf_append(&c->list, &s->a, t->list.p, t->list.len);
    if (!rc)
        rc = mq_buf_append(&c->props, &s->a, t->props.p, t->props.len);
    if (!rc)
        rc = mq_outq_reserve_pid(&s->out, &s->a, &c->pid);
    if (rc) {
        ctl_free(s, c);
        return mq_err_code(&s->err, rc);
    }
    /* Validate the whole packet once, as it will go out. */
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = c->type;
    p.version = level;
    p.packet_id = c->pid;
    p.count = c->count;
    p.list = mq_view_make(c->list.p, c->list.len);
    p.props = mq_view_make(c->props.p, c->props.len);
    size_t n;
    const char *msg = NULL;
    rc = mq_encode_size(&p, &n, &msg);
    if (rc) {
        mq_outq_release_pid(&s->out, c->pid);
        ctl_free(s, c);
        return mq_err_set(&s->err, rc, "%s: %s", mqlite_packet_type_name(t->type),
                          msg ? msg : mqlite_strerror(rc));
    }
    if (s->ctl_tail)
        s->ctl_tail->next = c;
    else
        s->ctl_head = c;
    s->ctl_tail = c;
    *pid = c->pid;
    if (s->state == MQ_SS_CONNECTED && !s->close_error) /* see mq_session_pump */
        send_ctl(s, c, now);
    return 0;
}

int mq_session_disconnect(mq_session *s, int reason, int64_t expiry_override, uint64_t now)
{
    if (s->state != MQ_SS_CONNECTED && s->state != MQ_SS_CONNECTING)
        return mq_err_set(&s->err, MQLITE_ERR_NOT_CONNECTED, "not connected");
    if (reason < 0 || reason > 255 ||
        (s->version == MQLITE_V5 && !mq_reason_valid(MQLITE_PKT_DISCONNECT, (unsigned)reason)))
        return mq_err_set(&s->err, MQLITE_ERR_RANGE, "0x%02x is not a DISCONNECT reason code",
                          (unsigned)reason);
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQLITE_PKT_DISCONNECT;
    p.version = s->version;
    mq_buf props = {0};
    if (s->version == MQLITE_V5) {
        p.reason = (uint8_t)reason;
        if (expiry_override >= 0) {
            /* 5.0 3.14.2.2.2: no non-zero expiry after a zero one (a rule
             * without a statement id; [MQTT-3.14.2-2], cited here before,
             * is the server's "no Session Expiry in DISCONNECT"). */
            if (s->cfg.session_expiry_s == 0 && expiry_override > 0)
                return mq_err_set(&s->err, MQLITE_ERR_INVALID,
                                  "session expiry was 0 in CONNECT; DISCONNECT cannot raise it "
                                  "(MQTT 5.0 3.14.2.2.2)");
            if (mq_props_put_int(&props, &s->a, MQLITE_PROP_SESSION_EXPIRY,
                                 (uint32_t)expiry_override))
                return mq_err_code(&s->err, MQLITE_ERR_NOMEM);
            p.props = mq_view_make(props.p, props.len);
        }
    }
    int rc = send_pkt(s, &p, now);
    mq_buf_free(&props, &s->a);
    if (rc)
        return rc;
    s->close_reason = p.reason;
    s->disconnect_sent = 1;
    s->state = MQ_SS_DISCONNECTING;
    return 0;
}
