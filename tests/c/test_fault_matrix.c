/*
 * test_fault_matrix.c - QoS 1 and QoS 2, in both directions (the client
 * publishes; the server publishes to the client), with the connection cut
 * after every single packet of the flows and in the middle of every packet
 * (after k bytes of it, every k), then a reconnect:
 *
 *  - session kept (CONNACK session present 1; the server keeps its state and
 *    re-sends its unacknowledged PUBLISH with DUP and its PUBREL, as MQTT
 *    3.1.1 and 5.0 [MQTT-4.4.0-1] ask): nothing is lost (outgoing: exactly
 *    one PUBLISHED event per message; incoming QoS 1: at least one MESSAGE)
 *    and nothing reaches an application twice at QoS 2 (exactly one MESSAGE
 *    / one delivery at the server);
 *  - session not kept (session present 0; the server starts empty): the
 *    application is told: a PUBLISH_LOST event for each message that was in
 *    flight, and messages that were queued but never sent go out afresh
 *    (DUP 0) and complete; the client forgets its incoming QoS 2
 *    identifiers (a new PUBLISH with a held identifier is a new message).
 *
 * The client is driven through the public ABI in sans-I/O mode; the server
 * is a model (struct srv) with its own session state, talking over a wire
 * that is a FIFO of whole packets in both directions, so the n-th packet of
 * a flow is the same packet in every run. The matrix is a table of
 * configurations times every cut point found by a dry run; it prints how
 * many cases ran, and fails if none did.
 */
#include "peer.h"

#define NMSG 3         /* messages per case */
#define WINDOW 2       /* client MQLITE_OPT_MAX_INFLIGHT: the third waits queued */
#define SRV_PID0 40000 /* first identifier the server uses */
#define MAXQ 64        /* packets in transit at most */

/* ---- the wire ---- */

typedef struct wpkt {
    int to_client;
    const mq_packet *k; /* to the server: decoded (kept by the peer) */
    uint8_t *bytes;     /* to the client: encoded */
    size_t len;
    int type, qos;
} wpkt;

/* ---- the server model: one session ---- */

typedef struct srv_flow {
    uint16_t pid;
    uint8_t qos;
    uint8_t state; /* 0 done/none, 1 PUBLISH sent, 2 PUBREL sent */
    int msg;       /* index, or -1 for the probe */
} srv_flow;

typedef struct cfg {
    int version, qos, to_client, keep;
} cfg;

typedef struct run {
    cfg f;
    peer *p;
    int conn; /* 1 = the first connection, 2 = after the cut */
    /* cut: after `cut_after` flow packets delivered, deliver `cut_bytes`
     * of the next one, then cut. cut_after < 0: no cut (dry run). */
    int cut_after;
    size_t cut_bytes;
    int delivered, cut_done;
    size_t flow_len[256]; /* dry run: the length of each flow packet */
    int nflow;
    wpkt q[MAXQ];
    int qh, qt;
    /* server session */
    uint8_t *held; /* incoming QoS 2 ids awaiting PUBREL (65536) */
    srv_flow out[NMSG + 1];
    int srv_app[NMSG]; /* deliveries to the server's application */
    /* client side observations */
    int32_t pid[NMSG];  /* identifiers the client gave its messages */
    int emitted1[NMSG]; /* its PUBLISH left the client on connection 1 */
    int done1[NMSG];    /* PUBLISHED before the cut */
    int rel1[NMSG];     /* its PUBREL left the client on connection 1: the
                           client had the server's PUBREC */
    int published[NMSG], lost[NMSG], msg[NMSG], probe;
    int resend_order[NMSG], nresend; /* first PUBLISH per message on connection 2 */
    int seen2[NMSG];
    int bad_dup, bad_event, feed_errors;
    char why[512]; /* first oddity seen */
} run;

static void oddity(run *r, const char *fmt, ...) MQ_PRINTF(2, 3);
static void oddity(run *r, const char *fmt, ...)
{
    if (r->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static void q_push(run *r, wpkt w)
{
    if ((r->qt + 1) % MAXQ == r->qh)
        abort();
    r->q[r->qt] = w;
    r->qt = (r->qt + 1) % MAXQ;
}

static void q_clear(run *r)
{
    while (r->qh != r->qt) {
        free(r->q[r->qh].bytes);
        r->qh = (r->qh + 1) % MAXQ;
    }
}

/* The server sends a packet. */
static void srv_send(run *r, const mq_packet *k)
{
    mq_buf b = {0};
    if (mq_encode_buf(k, &b, &mq_default_alloc, NULL) != 0)
        abort();
    wpkt w = {1, NULL, b.p, b.len, k->type, k->qos};
    q_push(r, w);
}

static int msg_index(mq_view topic)
{
    if (topic.len == 4 && memcmp(topic.p, "fm/", 3) == 0 && topic.p[3] >= '0' &&
        topic.p[3] < '0' + NMSG)
        return topic.p[3] - '0';
    return -1;
}

static void srv_publish(run *r, srv_flow *fl, int dup)
{
    char topic[16], payload[16];
    if (fl->msg >= 0) {
        snprintf(topic, sizeof topic, "fm/%d", fl->msg);
        snprintf(payload, sizeof payload, "m%d", fl->msg);
    } else {
        snprintf(topic, sizeof topic, "probe");
        snprintf(payload, sizeof payload, "p");
    }
    mq_packet k = pk_publish(r->f.version, topic, payload, fl->qos, fl->pid);
    k.dup = (uint8_t)dup;
    fl->state = 1;
    srv_send(r, &k);
}

static void srv_ack(run *r, int type, uint16_t pid, int reason)
{
    mq_packet k = pk_ack(r->f.version, type, pid, reason);
    srv_send(r, &k);
}

/* The server reads one whole packet. */
static void srv_handle(run *r, const mq_packet *k)
{
    int v = r->f.version;
    switch (k->type) {
    case MQLITE_PKT_CONNECT: {
        int present = r->conn > 1 && r->f.keep;
        if (k->clean_start)
            oddity(r, "CONNECT with Clean Start 1");
        mq_packet a = pk_connack(v, present, 0);
        srv_send(r, &a);
        if (!present) {
            memset(r->held, 0, 65536);
            memset(r->out, 0, sizeof r->out);
        }
        if (r->conn == 1 && r->f.to_client) {
            for (int i = 0; i < NMSG; i++) {
                r->out[i] = (srv_flow){(uint16_t)(SRV_PID0 + i), (uint8_t)r->f.qos, 0, i};
                srv_publish(r, &r->out[i], 0);
            }
        } else if (present) {
            /* MQTT 3.1.1 / 5.0 [MQTT-4.4.0-1]: re-send in the original order. */
            for (int i = 0; i < NMSG; i++) {
                if (r->out[i].state == 1)
                    srv_publish(r, &r->out[i], 1);
                else if (r->out[i].state == 2)
                    srv_ack(r, MQLITE_PKT_PUBREL, r->out[i].pid, 0);
            }
        }
        break;
    }
    case MQLITE_PKT_PUBLISH: {
        int m = msg_index(k->topic);
        if (m < 0 || k->qos != r->f.qos) {
            oddity(r, "server got PUBLISH %.*s qos %d", (int)k->topic.len, (const char *)k->topic.p,
                   k->qos);
            break;
        }
        if (k->packet_id != r->pid[m])
            oddity(r, "PUBLISH fm/%d with id %u, publish returned %d", m, k->packet_id,
                   (int)r->pid[m]);
        if (r->conn == 1) {
            if (k->dup)
                r->bad_dup++, oddity(r, "first send of fm/%d has DUP 1", m);
        } else if (!r->seen2[m]++) {
            r->resend_order[r->nresend++] = m;
            /* [MQTT-3.3.1-1]: DUP 1 exactly when it had gone out before. */
            if (k->dup != (r->emitted1[m] && r->f.keep))
                r->bad_dup++, oddity(r,
                                     "fm/%d on the new connection has DUP %d (sent before: %d, "
                                     "session kept: %d)",
                                     m, k->dup, r->emitted1[m], r->f.keep);
        }
        if (k->qos == 1) {
            r->srv_app[m]++;
            srv_ack(r, MQLITE_PKT_PUBACK, k->packet_id, 0);
        } else {
            if (!r->held[k->packet_id]) {
                r->held[k->packet_id] = 1;
                r->srv_app[m]++;
            }
            srv_ack(r, MQLITE_PKT_PUBREC, k->packet_id, 0);
        }
        break;
    }
    case MQLITE_PKT_PUBREL: {
        /* For an identifier already released (its PUBCOMP was lost) a 5.0
         * server answers 0x92 Packet Identifier not found (3.7.2.1), which
         * is no failure for the client; 3.1.1 has no reason codes. */
        int held = r->held[k->packet_id];
        r->held[k->packet_id] = 0;
        srv_ack(r, MQLITE_PKT_PUBCOMP, k->packet_id, held ? 0 : 0x92);
        break;
    }
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBCOMP:
        for (int i = 0; i <= NMSG; i++) {
            srv_flow *fl = &r->out[i];
            if (!fl->state || fl->pid != k->packet_id)
                continue;
            if (k->type == MQLITE_PKT_PUBACK && fl->qos == 1 && fl->state == 1)
                fl->state = 0;
            else if (k->type == MQLITE_PKT_PUBREC && fl->qos == 2) {
                fl->state = 2;
                srv_ack(r, MQLITE_PKT_PUBREL, fl->pid, 0);
            } else if (k->type == MQLITE_PKT_PUBCOMP && fl->state == 2)
                fl->state = 0;
            else
                oddity(r, "server got %s for id %u in state %d", mqlite_packet_type_name(k->type),
                       k->packet_id, fl->state);
        }
        break;
    case MQLITE_PKT_PINGREQ: {
        mq_packet pr = pk_new(MQLITE_PKT_PINGRESP, v);
        srv_send(r, &pr);
        break;
    }
    default:
        oddity(r, "server got %s", mqlite_packet_type_name(k->type));
        break;
    }
}

/* ---- the client's events ---- */

static int by_pid(const run *r, int32_t pid)
{
    for (int i = 0; i < NMSG; i++)
        if (r->pid[i] == pid)
            return i;
    return -1;
}

static void drain_events(run *r)
{
    const mqlite_event *e;
    while ((e = peer_event(r->p)) != NULL) {
        int t = mqlite_event_type(e);
        size_t tl = 0, pl = 0;
        const char *topic = mqlite_event_topic(e, &tl);
        const char *payload = mqlite_event_payload(e, &pl);
        switch (t) {
        case MQLITE_EVENT_CONNECTED:
        case MQLITE_EVENT_DISCONNECTED:
            break;
        case MQLITE_EVENT_PUBLISHED: {
            int m = by_pid(r, mqlite_event_packet_id(e));
            int rs = mqlite_event_reason(e);
            if (m < 0 || mqlite_event_error(e) || (rs && !(rs == 0x92 && r->f.qos == 2))) {
                r->bad_event++;
                oddity(r, "PUBLISHED id %d error %s: %s", mqlite_event_packet_id(e),
                       mqlite_error_name(mqlite_event_error(e)), mqlite_event_text(e));
                break;
            }
            r->published[m]++;
            if (!r->cut_done)
                r->done1[m] = 1;
            break;
        }
        case MQLITE_EVENT_PUBLISH_LOST: {
            int m = by_pid(r, mqlite_event_packet_id(e));
            char want[16];
            if (m >= 0)
                snprintf(want, sizeof want, "m%d", m);
            if (m < 0 || !topic || msg_index(mq_view_make(topic, tl)) != m || pl != strlen(want) ||
                memcmp(payload, want, pl) != 0) {
                r->bad_event++;
                oddity(r, "PUBLISH_LOST id %d topic %s", mqlite_event_packet_id(e),
                       topic ? topic : "?");
                break;
            }
            r->lost[m]++;
            break;
        }
        case MQLITE_EVENT_MESSAGE: {
            int m = topic ? msg_index(mq_view_make(topic, tl)) : -1;
            if (topic && strcmp(topic, "probe") == 0) {
                r->probe++;
                break;
            }
            char want[16];
            if (m >= 0)
                snprintf(want, sizeof want, "m%d", m);
            if (m < 0 || pl != strlen(want) || memcmp(payload, want, pl) != 0 ||
                mqlite_event_qos(e) != r->f.qos) {
                r->bad_event++;
                oddity(r, "MESSAGE %s", topic ? topic : "?");
                break;
            }
            r->msg[m]++;
            break;
        }
        default:
            r->bad_event++;
            oddity(r, "unexpected event %s: %s", mqlite_event_type_name(t), mqlite_event_text(e));
            break;
        }
    }
}

/* ---- moving packets ---- */

static int is_flow(const wpkt *w)
{
    switch (w->type) {
    case MQLITE_PKT_PUBLISH:
        return w->qos > 0;
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        return 1;
    default:
        return 0;
    }
}

/* Take what the client wrote onto the wire. */
static void pull_client(run *r)
{
    const mq_packet *k;
    while ((k = peer_recv(r->p)) != NULL) {
        size_t len = 0;
        peer_last_bytes(r->p, &len);
        if (k->type == MQLITE_PKT_PUBLISH && r->conn == 1) {
            int m = msg_index(k->topic);
            if (m >= 0)
                r->emitted1[m] = 1;
        }
        if (k->type == MQLITE_PKT_PUBREL && r->conn == 1) {
            int m = by_pid(r, k->packet_id);
            if (m >= 0)
                r->rel1[m] = 1;
        }
        wpkt w = {0, k, NULL, len, k->type, k->qos};
        q_push(r, w);
    }
}

static void feed_client(run *r, const uint8_t *b, size_t len)
{
    int rc = mqlite_client_feed(r->p->c, b, len);
    if (rc < 0) {
        r->feed_errors++;
        oddity(r, "feed: %s: %s", mqlite_error_name(rc), mqlite_client_errmsg(r->p->c));
    }
    drain_events(r);
}

/* The connection dies: what is on the wire is lost, the client is told. */
static void cut(run *r)
{
    q_clear(r);
    peer_cut(r->p);
    drain_events(r);
    r->cut_done = 1;
}

/* Move packets until nothing is in transit, or until the cut point. */
static void pump(run *r)
{
    for (int steps = 0;; steps++) {
        if (steps > 10000) {
            oddity(r, "the wire never goes quiet");
            return;
        }
        pull_client(r);
        if (r->qh == r->qt)
            return;
        wpkt w = r->q[r->qh];
        r->qh = (r->qh + 1) % MAXQ;
        if (is_flow(&w) && !r->cut_done) {
            if (r->cut_after < 0 && r->nflow < (int)MQ_ARRAY_LEN(r->flow_len))
                r->flow_len[r->nflow++] = w.len;
            if (r->delivered == r->cut_after) {
                /* Deliver the first cut_bytes of this packet, then cut. A
                 * server drops a partial packet with the connection. */
                if (w.to_client && r->cut_bytes)
                    feed_client(r, w.bytes, r->cut_bytes);
                free(w.bytes);
                cut(r);
                return;
            }
            r->delivered++;
        }
        if (w.to_client)
            feed_client(r, w.bytes, w.len);
        else
            srv_handle(r, w.k);
        free(w.bytes);
    }
}

static void reconnect(run *r)
{
    int rc = mqlite_client_start(r->p->c);
    if (rc)
        oddity(r, "start: %s", mqlite_client_errmsg(r->p->c));
    pump(r);
}

/* One case. Returns 0 when every expectation held, else prints why. */
static int run_case(run *r, const cfg *f, int cut_after, size_t cut_bytes)
{
    memset(r, 0, sizeof *r);
    r->f = *f;
    r->cut_after = cut_after;
    r->cut_bytes = cut_bytes;
    r->held = calloc(65536, 1);
    r->p = peer_new(f->version, "matrix");
    mqlite_client *c = r->p->c;
    mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0);
    if (f->version == MQLITE_V5)
        mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, 3600);
    mqlite_client_set_int(c, MQLITE_OPT_MAX_INFLIGHT, WINDOW);
    for (int i = 0; i < NMSG; i++)
        r->pid[i] = -1;

    /* Connection 1. */
    r->conn = 1;
    CHECK_EQ(mqlite_client_start(c), 0);
    pull_client(r);
    wpkt w = r->q[r->qh]; /* CONNECT, never cut */
    r->qh = (r->qh + 1) % MAXQ;
    srv_handle(r, w.k);
    if (!f->to_client) {
        /* CONNACK first, so that the messages are published while connected
         * (the third waits for the window). */
        wpkt a = r->q[r->qh];
        r->qh = (r->qh + 1) % MAXQ;
        feed_client(r, a.bytes, a.len);
        free(a.bytes);
        for (int i = 0; i < NMSG; i++) {
            char topic[16], payload[16];
            snprintf(topic, sizeof topic, "fm/%d", i);
            snprintf(payload, sizeof payload, "m%d", i);
            int32_t rc =
                mqlite_client_publish(c, topic, payload, strlen(payload), f->qos, 0, &r->pid[i]);
            if (rc)
                oddity(r, "publish: %s", mqlite_client_errmsg(c));
        }
    }
    pump(r);
    if (cut_after < 0)
        goto out; /* the dry run: no cut, no second connection */
    if (!r->cut_done)
        cut(r); /* the cut point is after the last packet */

    /* Connection 2. */
    r->conn = 2;
    reconnect(r);
    if (f->to_client && !f->keep) {
        /* The client forgot the identifiers it held: the server's new
         * session may use them for new messages. */
        r->out[NMSG] = (srv_flow){SRV_PID0, (uint8_t)f->qos, 0, -1};
        srv_publish(r, &r->out[NMSG], 0);
        pump(r);
    }

out:;
    int ok = !r->why[0] && !r->bad_dup && !r->bad_event && !r->feed_errors;
    char what[256] = "";
    for (int m = 0; m < NMSG && cut_after >= 0; m++) {
        if (!f->to_client) {
            if (f->keep) {
                if (r->published[m] != 1 || r->lost[m] != 0)
                    snprintf(what, sizeof what, "fm/%d: %d PUBLISHED, %d PUBLISH_LOST (want 1, 0)",
                             m, r->published[m], r->lost[m]);
                else if (f->qos == 2 ? r->srv_app[m] != 1 : r->srv_app[m] < 1)
                    snprintf(what, sizeof what, "fm/%d reached the server's application %d times",
                             m, r->srv_app[m]);
            } else {
                /* Past PUBREC the server owns the message: a lost session
                 * completes the flow (PUBLISHED), it is not reported lost. */
                int want_lost = r->emitted1[m] && !r->done1[m] && !r->rel1[m];
                if (r->published[m] != !want_lost || r->lost[m] != want_lost)
                    snprintf(what, sizeof what,
                             "fm/%d: %d PUBLISHED, %d PUBLISH_LOST (want %d, %d; sent before the "
                             "cut %d)",
                             m, r->published[m], r->lost[m], !want_lost, want_lost, r->emitted1[m]);
                else if (f->qos == 2 && r->srv_app[m] > 1)
                    snprintf(what, sizeof what, "fm/%d reached the server's application %d times",
                             m, r->srv_app[m]);
                else if (r->published[m] && r->srv_app[m] < 1)
                    snprintf(what, sizeof what, "fm/%d PUBLISHED but never delivered", m);
            }
        } else {
            if (f->keep ? (f->qos == 2 ? r->msg[m] != 1 : r->msg[m] < 1)
                        : (f->qos == 2 && r->msg[m] > 1))
                snprintf(what, sizeof what, "fm/%d: %d MESSAGE events", m, r->msg[m]);
            else if (f->keep && r->out[m].state)
                snprintf(what, sizeof what, "server flow %d not completed (state %d)", m,
                         r->out[m].state);
        }
        if (what[0])
            break;
    }
    if (cut_after >= 0 && !what[0]) {
        if (mqlite_client_inflight(c) || mqlite_client_queued(c))
            snprintf(what, sizeof what, "client still has %d in flight, %d queued",
                     mqlite_client_inflight(c), mqlite_client_queued(c));
        else if (f->to_client && !f->keep && r->probe != 1)
            snprintf(what, sizeof what, "new message on a held id delivered %d times", r->probe);
        else if (!f->to_client && f->keep)
            for (int i = 1; i < r->nresend; i++)
                if (r->resend_order[i] < r->resend_order[i - 1])
                    snprintf(what, sizeof what, "re-sent out of order: fm/%d before fm/%d",
                             r->resend_order[i - 1], r->resend_order[i]);
    }
    for (int i = 0; i < 65536; i++)
        if (cut_after >= 0 && f->keep && r->held[i]) {
            snprintf(what, sizeof what, "server still holds QoS 2 id %d", i);
            break;
        }
    if (what[0])
        ok = 0;
    tl_checks++;
    if (!ok) {
        tl_failures++;
        fprintf(stderr,
                "fault matrix: MQTT %s QoS %d %s, session %s, cut after %d flow packets + %zu "
                "bytes: %s%s%s\n",
                f->version == MQLITE_V5 ? "5.0" : "3.1.1", f->qos,
                f->to_client ? "server->client" : "client->server", f->keep ? "kept" : "lost",
                cut_after, cut_bytes, what, what[0] && r->why[0] ? "; " : "", r->why);
    }
    q_clear(r);
    peer_free(r->p);
    free(r->held);
    return ok ? 0 : -1;
}

/* ---- the matrix ---- */

static const cfg matrix[] = {
    /* version, qos, to_client, keep */
    {MQLITE_V311, 1, 0, 1}, {MQLITE_V311, 1, 1, 1}, {MQLITE_V311, 2, 0, 1}, {MQLITE_V311, 2, 1, 1},
    {MQLITE_V311, 1, 0, 0}, {MQLITE_V311, 1, 1, 0}, {MQLITE_V311, 2, 0, 0}, {MQLITE_V311, 2, 1, 0},
    {MQLITE_V5, 1, 0, 1},   {MQLITE_V5, 1, 1, 1},   {MQLITE_V5, 2, 0, 1},   {MQLITE_V5, 2, 1, 1},
    {MQLITE_V5, 1, 0, 0},   {MQLITE_V5, 1, 1, 0},   {MQLITE_V5, 2, 0, 0},   {MQLITE_V5, 2, 1, 0},
};

static int cases_run;

/* Every configuration, cut after every flow packet (0 .. all of them) and
   after every k bytes (1 .. len-1) of every flow packet. MQTT 3.1.1
   [MQTT-4.4.0-1], [MQTT-4.3.3-2], [MQTT-3.3.1-1], [MQTT-4.6.0-1]; 5.0
   [MQTT-4.4.0-1], [MQTT-4.3.3-10], [MQTT-3.3.1-1], [MQTT-4.6.0-1],
   [MQTT-3.2.2-5]. */
static void test_fault_matrix_qos12_both_directions(void)
{
    static run r;
    for (size_t i = 0; i < MQ_ARRAY_LEN(matrix); i++) {
        const cfg *f = &matrix[i];
        /* The dry run finds the flow packets and their sizes. */
        run_case(&r, f, -1, 0);
        int nflow = r.nflow;
        size_t len[256];
        memcpy(len, r.flow_len, sizeof len);
        int want_flow = NMSG * (f->qos == 1 ? 2 : 4);
        tl_checks++;
        if (nflow != want_flow) {
            tl_failures++;
            fprintf(stderr, "fault matrix: dry run saw %d flow packets, want %d\n", nflow,
                    want_flow);
        }
        int failed = 0;
        for (int n = 0; n <= nflow && failed < 3; n++) {
            size_t kmax = n < nflow ? len[n] : 1;
            for (size_t k = 0; k < kmax && failed < 3; k++) {
                failed += run_case(&r, f, n, k) != 0;
                cases_run++;
            }
        }
    }
    printf("fault matrix: %d cases ran (%zu configurations)\n", cases_run, MQ_ARRAY_LEN(matrix));
    tl_checks++;
    if (cases_run < 500) {
        tl_failures++;
        fprintf(stderr, "fault matrix: only %d cases ran\n", cases_run);
    }
}

/* The model itself, checked once against a plain run: without a cut every
   configuration delivers each message exactly once (so a broken model
   cannot pass the matrix by losing everything). */
static void test_fault_matrix_model_without_cut_delivers_everything(void)
{
    static run r;
    for (size_t i = 0; i < MQ_ARRAY_LEN(matrix); i++) {
        const cfg *f = &matrix[i];
        run_case(&r, f, -1, 0);
        for (int m = 0; m < NMSG; m++) {
            if (f->to_client)
                CHECK_EQ(r.msg[m], 1);
            else {
                CHECK_EQ(r.published[m], 1);
                CHECK_EQ(r.srv_app[m], 1);
            }
        }
        CHECK(!r.why[0]);
    }
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_fault_matrix_model_without_cut_delivers_everything);
    RUN(test_fault_matrix_qos12_both_directions);
    TEST_MAIN_END();
}
