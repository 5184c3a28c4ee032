/*
 * test_session.c - the session engine (session.c) and the QoS machinery it
 * shares with the broker (inflight.c), through their internal APIs: packet
 * identifier maps and allocation, the outgoing window and queue, resume
 * re-queueing, acknowledgement rules, the incoming QoS 2 set, DISCONNECT
 * with a session expiry override, timers, unexpected acknowledgements, and
 * an allocation-failure sweep over a whole session. The public behaviour is
 * in test_client_sansio.c; here are the finer checks. Each test cites the
 * MQTT version and statement it checks where one applies.
 */
#include "peer.h"
#include "session.h"

/* ---- a session with a scripted server, without the client handle ---- */

typedef struct sp {
    mq_session s;
    uint64_t now;
    mq_buf rx; /* what the session wrote, not decoded yet */
    pr_kept *kept;
} sp;

static void sp_init(sp *t, int version)
{
    memset(t, 0, sizeof *t);
    mq_session_init(&t->s, &mq_default_alloc);
    t->s.cfg.version = (uint8_t)version;
    t->s.cfg.client_id = mq_memdup0(&mq_default_alloc, "sess", 4);
    t->now = 5000;
}

static void sp_free(sp *t)
{
    mq_session_free(&t->s);
    mq_buf_free(&t->rx, &mq_default_alloc);
    for (pr_kept *k = t->kept, *n; k; k = n) {
        n = k->next;
        free(k);
    }
}

/* The next packet the session wrote, or NULL. */
static const mq_packet *sp_recv(sp *t)
{
    mq_buf_append(&t->rx, &mq_default_alloc, t->s.outbuf.p, t->s.outbuf.len);
    t->s.outbuf.len = 0;
    if (!t->rx.len)
        return NULL;
    mq_decode_opts o = {0};
    o.version = t->s.version;
    o.role = MQ_ROLE_SERVER;
    mq_packet tmp;
    size_t used = 0, need = 0;
    if (mq_decode(t->rx.p, t->rx.len, &o, &tmp, &used, &need, NULL) != 0)
        return NULL;
    pr_kept *k = malloc(sizeof *k + used);
    memcpy(k->bytes, t->rx.p, used);
    k->len = used;
    mq_decode(k->bytes, used, &o, &k->p, &used, &need, NULL);
    k->next = t->kept;
    t->kept = k;
    mq_buf_consume(&t->rx, used);
    return &k->p;
}

static const mq_packet *sp_expect_at(sp *t, int type, int line)
{
    tl_checks++;
    const mq_packet *k = sp_recv(t);
    if (!k || k->type != type) {
        pr_fail(line, "expected %s, got %s", mqlite_packet_type_name(type),
                k ? mqlite_packet_type_name(k->type) : "nothing");
        return NULL;
    }
    return k;
}
#define SP_EXPECT(t, type) sp_expect_at((t), (type), __LINE__)

static int sp_send(sp *t, const mq_packet *k)
{
    mq_buf b = {0};
    if (mq_encode_buf(k, &b, &mq_default_alloc, NULL) != 0)
        abort();
    int rc = mq_session_feed(&t->s, b.p, b.len, t->now);
    mq_buf_free(&b, &mq_default_alloc);
    return rc;
}

/* Pop the next event, which must be of `type`; returns it (caller frees). */
static mq_event *sp_event_at(sp *t, int type, int line)
{
    tl_checks++;
    mq_event *e = mq_session_pop_event(&t->s);
    if (!e || e->type != type) {
        pr_fail(line, "expected event %s, got %s", mqlite_event_type_name(type),
                e ? mqlite_event_type_name(e->type) : "none");
        mq_event_free(&t->s.a, e);
        return NULL;
    }
    return e;
}
#define SP_EVENT(t, type) sp_event_at((t), (type), __LINE__)

static void sp_drop_events(sp *t)
{
    mq_event *e;
    while ((e = mq_session_pop_event(&t->s)) != NULL)
        mq_event_free(&t->s.a, e);
}

static void sp_connect(sp *t, int session_present)
{
    CHECK_EQ(mq_session_begin(&t->s, t->now), 0);
    SP_EXPECT(t, MQLITE_PKT_CONNECT);
    mq_packet a = pk_connack(t->s.version, session_present, 0);
    CHECK_EQ(sp_send(t, &a), 0);
    mq_event_free(&t->s.a, SP_EVENT(t, MQLITE_EVENT_CONNECTED));
}

static mq_msg *msg(const char *topic, const char *payload, int qos)
{
    return mq_msg_new(&mq_default_alloc, mq_view_cstr(topic), mq_view_make(NULL, 0),
                      mq_view_cstr(payload), (uint8_t)qos, 0);
}

/* ======================================================================
 * Packet identifier map
 * ====================================================================== */

/* The open-addressing map: put/get/del, tombstones reused, growth, and
   every key 1..65535 at once. */
static void test_pidmap_put_get_del_and_growth(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_pidmap m = {0};
    CHECK(mq_pidmap_get(&m, 1) == NULL);
    CHECK(mq_pidmap_del(&m, 1) == NULL);
    static int vals[65536];
    for (uint32_t k = 1; k <= 65535; k++)
        CHECK_EQ(mq_pidmap_put(&m, a, (uint16_t)k, &vals[k]), 0);
    CHECK_EQ(m.used, 65535);
    int bad = 0;
    for (uint32_t k = 1; k <= 65535; k++)
        bad += mq_pidmap_get(&m, (uint16_t)k) != &vals[k];
    CHECK_EQ(bad, 0);
    /* Delete every other key; the rest stay reachable across tombstones. */
    for (uint32_t k = 1; k <= 65535; k += 2)
        CHECK(mq_pidmap_del(&m, (uint16_t)k) == &vals[k]);
    bad = 0;
    for (uint32_t k = 1; k <= 65535; k++)
        bad += mq_pidmap_get(&m, (uint16_t)k) != (k % 2 ? NULL : &vals[k]);
    CHECK_EQ(bad, 0);
    CHECK(mq_pidmap_del(&m, 1) == NULL);
    /* Churn: delete and put back many times; the table does not fill up
     * with tombstones. */
    for (int round = 0; round < 20; round++)
        for (uint32_t k = 1; k <= 2000; k += 2) {
            CHECK_EQ(mq_pidmap_put(&m, a, (uint16_t)k, &vals[k]), 0);
            CHECK(mq_pidmap_del(&m, (uint16_t)k) == &vals[k]);
        }
    CHECK(m.cap <= 65536 * 2);
    for (uint32_t k = 2; k <= 65535; k += 2)
        mq_pidmap_del(&m, (uint16_t)k);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(m.filled, 0);
    mq_pidmap_free(&m, a);
}

/* ======================================================================
 * The outgoing queue (inflight.c)
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-2.3.1-1], [MQTT-2.3.1-2]; 5.0 [MQTT-2.2.1-3]: identifiers
   are 1..65535, wrap from 65535 to 1, and skip every one in use (by a flow
   or reserved for SUBSCRIBE/UNSUBSCRIBE). */
static void test_outq_ids_wrap_and_skip_in_use(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 100);
    q.next_pid = 65534;
    mq_msg *m = msg("t", "x", 1);
    int err = 0;
    mq_flow *f1 = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    mq_flow *f2 = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    mq_flow *f3 = mq_outq_push(&q, a, m, 2, 0, 0, &err);
    CHECK(f1 && f1->pid == 65534);
    CHECK(f2 && f2->pid == 65535);
    CHECK(f3 && f3->pid == 1);
    uint16_t r = 0;
    CHECK_EQ(mq_outq_reserve_pid(&q, a, &r), 0);
    CHECK_EQ(r, 2);
    mq_flow *f0 = mq_outq_push(&q, a, m, 0, 0, 0, &err);
    CHECK(f0 && f0->pid == 0);
    /* Wrap again with 1 and 2 still in use: 3 is next. */
    q.next_pid = 65535;
    mq_flow *done = NULL;
    CHECK(mq_outq_next(&q) == f1);
    CHECK(mq_outq_next(&q) == f2);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, 65535, 0, &done), MQ_ACK_DONE);
    CHECK(done == f2);
    mq_flow_free(a, done);
    mq_flow *f4 = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    CHECK(f4 && f4->pid == 65535);
    mq_flow *f5 = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    CHECK(f5 && f5->pid == 3);
    CHECK(mq_outq_pid_in_use(&q, 2));
    mq_outq_release_pid(&q, 2);
    CHECK(!mq_outq_pid_in_use(&q, 2));
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* All 65535 identifiers in use: MQLITE_ERR_NO_PACKET_ID and nothing queued;
   one released is the one handed out next. */
static void test_outq_all_ids_in_use(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 10);
    uint16_t r = 0;
    int bad = 0;
    for (int i = 0; i < 65535; i++)
        bad += mq_outq_reserve_pid(&q, a, &r) != 0;
    CHECK_EQ(bad, 0);
    CHECK_EQ(mq_outq_reserve_pid(&q, a, &r), MQLITE_ERR_NO_PACKET_ID);
    mq_msg *m = msg("t", "x", 1);
    int err = 0;
    CHECK(mq_outq_push(&q, a, m, 1, 0, 0, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_NO_PACKET_ID);
    CHECK_EQ(q.queued.count, 0);
    CHECK_EQ(q.queued_bytes, 0);
    mq_outq_release_pid(&q, 12345);
    mq_flow *f = mq_outq_push(&q, a, m, 2, 0, 0, &err);
    CHECK(f && f->pid == 12345);
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* MQTT 5.0 [MQTT-3.3.4-7]: at most `window` QoS 1/2 flows in flight; the
   queue is FIFO, and a QoS 0 message behind a waiting QoS 1 waits with it
   (order kept), but needs no window itself. */
static void test_outq_window_and_fifo(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 2);
    mq_msg *m = msg("t", "x", 1);
    int err = 0;
    mq_flow *f[5];
    static const uint8_t qos[] = {1, 2, 1, 0, 2};
    for (int i = 0; i < 5; i++)
        f[i] = mq_outq_push(&q, a, m, qos[i], 0, 0, &err);
    CHECK(mq_outq_next(&q) == f[0]);
    CHECK(mq_outq_next(&q) == f[1]);
    CHECK(mq_outq_next(&q) == NULL);
    CHECK_EQ(q.inflight.count, 2);
    CHECK_EQ(q.queued.count, 3);
    mq_flow *done = NULL;
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, f[0]->pid, 0, &done), MQ_ACK_DONE);
    mq_flow_free(a, done);
    CHECK(mq_outq_next(&q) == f[2]);
    mq_flow *z = mq_outq_next(&q); /* the QoS 0 one, though the window is full */
    CHECK(z == f[3]);
    CHECK_EQ(z->pid, 0);
    mq_flow_free(a, z);
    CHECK(mq_outq_next(&q) == NULL);
    CHECK_EQ(q.queued.count, 1);
    CHECK_EQ(q.queued_bytes, 2);
    /* Put back (e.g. not encodable now): it is at the head again. */
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, f[2]->pid, 0, &done), MQ_ACK_DONE);
    mq_flow_free(a, done);
    mq_flow *g = mq_outq_next(&q);
    CHECK(g == f[4]);
    mq_outq_unsend(&q, g);
    CHECK(q.queued.head == f[4]);
    CHECK_EQ(q.inflight.count, 1);
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* The queue limits: count and bytes, nothing queued on failure; `force`
   (restored state) ignores them. */
static void test_outq_limits(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 10);
    q.max_queued = 2;
    q.max_queued_bytes = 5;
    mq_msg *m = msg("t", "x", 1); /* 2 bytes */
    int err = 0;
    CHECK(mq_outq_push(&q, a, m, 1, 0, 0, &err) != NULL);
    CHECK(mq_outq_push(&q, a, m, 1, 0, 0, &err) != NULL);
    CHECK(mq_outq_push(&q, a, m, 1, 0, 0, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_QUEUE_FULL);
    q.max_queued = 0;
    CHECK(mq_outq_push(&q, a, m, 1, 0, 0, &err) == NULL); /* 6 bytes > 5 */
    CHECK_EQ(err, MQLITE_ERR_QUEUE_FULL);
    CHECK_EQ(q.pids.used, 2);
    CHECK(mq_outq_push(&q, a, m, 1, 0, 1, &err) != NULL);
    CHECK_EQ(q.queued.count, 3);
    CHECK_EQ(q.queued_bytes, 6);
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* MQTT 3.1.1 [MQTT-4.4.0-1], [MQTT-4.6.0-1]; 5.0 [MQTT-4.4.0-1],
   [MQTT-4.6.0-1]: before a resume, flows awaiting PUBACK/PUBREC go back to
   the head of the queue in their original order (re-sent with DUP since
   `sent`), ahead of what never left; flows awaiting PUBCOMP stay in flight
   (their PUBREL is re-sent). */
static void test_outq_requeue_keeps_order(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 3);
    mq_msg *m = msg("t", "x", 2);
    int err = 0;
    mq_flow *f[5];
    for (int i = 0; i < 5; i++)
        f[i] = mq_outq_push(&q, a, m, i == 0 ? 1 : 2, 0, 0, &err);
    for (int i = 0; i < 3; i++) {
        CHECK(mq_outq_next(&q) == f[i]);
        f[i]->sent = 1;
    }
    mq_flow *done = NULL;
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBREC, f[1]->pid, 0, &done), MQ_ACK_PUBREL);
    CHECK(done == NULL);
    mq_outq_requeue_inflight(&q);
    CHECK_EQ(q.inflight.count, 1);
    CHECK(q.inflight.head == f[1] && f[1]->state == MQ_FLOW_RELEASED);
    mq_flow *order[] = {f[0], f[2], f[3], f[4]};
    mq_flow *it = q.queued.head;
    for (int i = 0; i < 4; i++, it = it ? it->next : NULL)
        CHECK(it == order[i]);
    CHECK(it == NULL);
    CHECK_EQ(q.queued_bytes, 8);
    CHECK(f[0]->state == MQ_FLOW_QUEUED && f[0]->sent);
    CHECK(!f[3]->sent);
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* MQTT 5.0 [MQTT-4.3.3-4], [MQTT-4.4.0-2]; 3.1.1 [MQTT-4.3.3-1]: which
   acknowledgement fits which state. PUBACK only ends a QoS 1 flow, PUBREC
   only moves a QoS 2 flow awaiting it (a failure code ends it), PUBCOMP only
   ends one past PUBREC; nothing acknowledges a flow not sent yet. */
static void test_outq_ack_rules(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_outq q;
    mq_outq_init(&q, 10);
    mq_msg *m = msg("t", "x", 2);
    int err = 0;
    mq_flow *q1 = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    mq_flow *q2 = mq_outq_push(&q, a, m, 2, 0, 0, &err);
    mq_flow *q2b = mq_outq_push(&q, a, m, 2, 0, 0, &err);
    mq_flow *unsent = mq_outq_push(&q, a, m, 1, 0, 0, &err);
    mq_outq_next(&q);
    mq_outq_next(&q);
    mq_outq_next(&q);
    mq_flow *done = NULL;
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, unsent->pid, 0, &done),
             MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, q2->pid, 0, &done), MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBREC, q1->pid, 0, &done), MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBCOMP, q2->pid, 0, &done), MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, 999, 0, &done), MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBREC, q2->pid, 0, &done), MQ_ACK_PUBREL);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBREC, q2->pid, 0, &done), MQLITE_ERR_PACKET_ID_UNKNOWN);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBCOMP, q2->pid, 0, &done), MQ_ACK_DONE);
    CHECK(done == q2);
    uint16_t freed = q2->pid;
    mq_flow_free(a, done);
    CHECK(!mq_outq_pid_in_use(&q, freed));
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBREC, q2b->pid, 0x87, &done), MQ_ACK_DONE);
    CHECK(done == q2b);
    mq_flow_free(a, done);
    CHECK_EQ(mq_outq_ack(&q, MQLITE_PKT_PUBACK, q1->pid, 0x80, &done), MQ_ACK_DONE);
    mq_flow_free(a, done);
    CHECK_EQ(q.inflight.count, 0);
    mq_msg_unref(a, m);
    mq_outq_free(&q, a);
}

/* MQTT 5.0 [MQTT-4.3.3-10], [MQTT-4.3.3-12]; 3.1.1 [MQTT-4.3.3-2]: an
   incoming QoS 2 identifier is new once, held until released. */
static void test_inq_qos2_held_until_release(void)
{
    const mq_alloc *a = &mq_default_alloc;
    mq_inq q = {0};
    CHECK_EQ(mq_inq_qos2_begin(&q, a, 7), 1);
    CHECK_EQ(mq_inq_qos2_begin(&q, a, 7), 0);
    CHECK_EQ(mq_inq_qos2_begin(&q, a, 8), 1);
    CHECK_EQ(mq_inq_count(&q), 2);
    CHECK_EQ(mq_inq_qos2_release(&q, 7), 1);
    CHECK_EQ(mq_inq_qos2_release(&q, 7), 0);
    CHECK_EQ(mq_inq_qos2_begin(&q, a, 7), 1);
    mq_inq_free(&q, a);
}

/* ======================================================================
 * The session engine
 * ====================================================================== */

/* MQTT 5.0 3.14.2.2.2 (Session Expiry Interval in DISCONNECT; the rule has
   no statement id): the client may lower or raise a non-zero expiry, or set
   0, but a session that CONNECT gave expiry 0 cannot be given a non-zero
   one; 3.1.1 has no properties (the override is ignored). */
static void test_disconnect_session_expiry_override_rules(void)
{
    static const struct {
        int version;
        uint32_t connect_expiry;
        int64_t override;
        int32_t rc;
        int64_t sent; /* property in the DISCONNECT, -1 = none */
    } cases[] = {
        {MQLITE_V5, 0, -1, 0, -1},
        {MQLITE_V5, 0, 0, 0, 0},
        {MQLITE_V5, 0, 30, MQLITE_ERR_INVALID, -1},
        {MQLITE_V5, 100, 0, 0, 0},
        {MQLITE_V5, 100, 500, 0, 500},
        {MQLITE_V5, 100, 4294967295LL, 0, 4294967295LL},
        {MQLITE_V311, 0, 30, 0, -1},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        sp t;
        sp_init(&t, cases[i].version);
        t.s.cfg.session_expiry_s = cases[i].connect_expiry;
        sp_connect(&t, 0);
        int rc = mq_session_disconnect(&t.s, 0, cases[i].override, t.now);
        CHECK_EQ(rc, cases[i].rc);
        if (rc) {
            CHECK_HAS(t.s.err.msg, "cannot raise it");
            CHECK_EQ(t.s.state, MQ_SS_CONNECTED);
            CHECK(sp_recv(&t) == NULL);
        } else {
            const mq_packet *d = SP_EXPECT(&t, MQLITE_PKT_DISCONNECT);
            if (d && cases[i].version == MQLITE_V5)
                CHECK_EQ(pr_prop_int(d->props, MQLITE_PROP_SESSION_EXPIRY), cases[i].sent);
            CHECK_EQ(t.s.state, MQ_SS_DISCONNECTING);
            mq_session_closed(&t.s, 0, t.now);
            mq_event *e = SP_EVENT(&t, MQLITE_EVENT_DISCONNECTED);
            CHECK(e && e->error == 0);
            mq_event_free(&t.s.a, e);
        }
        sp_free(&t);
    }
}

/* The timers: CONNACK deadline while connecting; keep-alive from the last
   packet sent or received (3.1.1 [MQTT-3.1.2-23], 5.0 [MQTT-3.1.2-20]);
   PINGRESP deadline; none when idle or with keep-alive 0. */
static void test_deadlines(void)
{
    sp t;
    sp_init(&t, MQLITE_V311);
    CHECK(mq_session_deadline(&t.s) == UINT64_MAX);
    t.s.cfg.keepalive_s = 10;
    t.s.cfg.connect_timeout_ms = 2000;
    t.s.cfg.ping_timeout_ms = 700;
    CHECK_EQ(mq_session_begin(&t.s, t.now), 0);
    CHECK(mq_session_deadline(&t.s) == t.now + 2000);
    CHECK_EQ(mq_session_tick(&t.s, t.now + 1999), 0);
    SP_EXPECT(&t, MQLITE_PKT_CONNECT);
    t.now += 100;
    mq_packet a = pk_connack(MQLITE_V311, 0, 0);
    CHECK_EQ(sp_send(&t, &a), 0);
    sp_drop_events(&t);
    /* CONNECT was sent at 5000, CONNACK came at 5100. */
    CHECK(mq_session_deadline(&t.s) == 5000 + 10000);
    CHECK_EQ(mq_session_tick(&t.s, 14999), 0);
    CHECK(sp_recv(&t) == NULL);
    CHECK_EQ(mq_session_tick(&t.s, 15000), 0);
    SP_EXPECT(&t, MQLITE_PKT_PINGREQ);
    CHECK(mq_session_deadline(&t.s) == 15700);
    CHECK_EQ(mq_session_tick(&t.s, 15699), 0);
    CHECK_EQ(mq_session_tick(&t.s, 15700), MQLITE_ERR_KEEPALIVE);
    CHECK_EQ(t.s.close_error, MQLITE_ERR_KEEPALIVE);
    mq_session_closed(&t.s, 0, 15700);
    mq_event *e = SP_EVENT(&t, MQLITE_EVENT_DISCONNECTED);
    CHECK(e && e->error == MQLITE_ERR_KEEPALIVE);
    mq_event_free(&t.s.a, e);
    CHECK(mq_session_deadline(&t.s) == UINT64_MAX);
    /* Closed twice: nothing more. */
    mq_session_closed(&t.s, 0, 15700);
    CHECK(mq_session_pop_event(&t.s) == NULL);
    CHECK_EQ(mq_session_feed(&t.s, (const uint8_t *)"\xd0\x00", 2, 15800), MQLITE_ERR_STATE);
    sp_free(&t);
}

/* Acknowledgements that fit no flow (after a resume the server may answer
   twice): PUBACK/PUBCOMP are ignored; PUBREC is answered with PUBREL (5.0:
   0x92 Packet Identifier not found, 3.7.2.1 / 3.6.2.1) so the server's flow
   ends; PUBREL is answered with PUBCOMP (5.0: 0x92); SUBACK/UNSUBACK for no
   request are ignored. */
static void test_unexpected_acknowledgements(void)
{
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        sp t;
        sp_init(&t, v);
        sp_connect(&t, 0);
        mq_packet k = pk_ack(v, MQLITE_PKT_PUBACK, 77, 0);
        CHECK_EQ(sp_send(&t, &k), 0);
        k = pk_ack(v, MQLITE_PKT_PUBCOMP, 78, 0);
        CHECK_EQ(sp_send(&t, &k), 0);
        uint8_t code = 0;
        k = pk_list_ack(v, MQLITE_PKT_SUBACK, 79, &code, 1);
        CHECK_EQ(sp_send(&t, &k), 0);
        k = pk_list_ack(v, MQLITE_PKT_UNSUBACK, 80, &code, 1);
        CHECK_EQ(sp_send(&t, &k), 0);
        CHECK(sp_recv(&t) == NULL);
        CHECK(mq_session_pop_event(&t.s) == NULL);
        k = pk_ack(v, MQLITE_PKT_PUBREC, 81, 0);
        CHECK_EQ(sp_send(&t, &k), 0);
        const mq_packet *r = SP_EXPECT(&t, MQLITE_PKT_PUBREL);
        CHECK(r && r->packet_id == 81 && r->reason == (v == MQLITE_V5 ? 0x92 : 0));
        k = pk_ack(v, MQLITE_PKT_PUBREL, 82, 0);
        CHECK_EQ(sp_send(&t, &k), 0);
        r = SP_EXPECT(&t, MQLITE_PKT_PUBCOMP);
        CHECK(r && r->packet_id == 82 && r->reason == (v == MQLITE_V5 ? 0x92 : 0));
        CHECK(mq_session_pop_event(&t.s) == NULL);
        sp_free(&t);
    }
}

/* The session records what the server granted, so that MQLITE_OPT_RESUBSCRIBE
   can restore it: a refused filter is not recorded, an UNSUBACK removes one,
   a new SUBSCRIBE of the same filter replaces its options (3.1.1
   [MQTT-3.8.4-3], 5.0 [MQTT-3.8.4-3]). */
static void test_subscription_list_follows_acknowledgements(void)
{
    sp t;
    sp_init(&t, MQLITE_V5);
    sp_connect(&t, 0);
    mq_buf list = {0};
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("a"), 1, 1);
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("b"), 1, 2);
    mq_packet sub = pk_new(MQLITE_PKT_SUBSCRIBE, MQLITE_V5);
    sub.list = mq_view_make(list.p, list.len);
    sub.count = 2;
    uint16_t pid = 0;
    CHECK_EQ(mq_session_send_list(&t.s, &sub, &pid, t.now), 0);
    SP_EXPECT(&t, MQLITE_PKT_SUBSCRIBE);
    uint8_t codes[] = {1, 0x80};
    mq_packet sa = pk_list_ack(MQLITE_V5, MQLITE_PKT_SUBACK, pid, codes, 2);
    CHECK_EQ(sp_send(&t, &sa), 0);
    CHECK(t.s.subs != NULL);
    /* "a" again with other options replaces it. */
    list.len = 0;
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("a"), 1, 0x22);
    sub.list = mq_view_make(list.p, list.len);
    sub.count = 1;
    CHECK_EQ(mq_session_send_list(&t.s, &sub, &pid, t.now), 0);
    SP_EXPECT(&t, MQLITE_PKT_SUBSCRIBE);
    uint8_t two = 2;
    sa = pk_list_ack(MQLITE_V5, MQLITE_PKT_SUBACK, pid, &two, 1);
    CHECK_EQ(sp_send(&t, &sa), 0);
    CHECK(t.s.subs != NULL);
    /* Reconnect without session: one SUBSCRIBE, with the latest options. */
    mq_session_closed(&t.s, MQLITE_ERR_CONNECTION_LOST, t.now);
    sp_drop_events(&t);
    sp_connect(&t, 0);
    const mq_packet *k = SP_EXPECT(&t, MQLITE_PKT_SUBSCRIBE);
    if (k) {
        uint32_t off = 0;
        mq_view f;
        uint8_t o = 0;
        CHECK(mq_list_next(k, &off, &f, &o) && pr_view_is(f, "a") && o == 0x22);
        CHECK(!mq_list_next(k, &off, &f, &o));
        sa = pk_list_ack(MQLITE_V5, MQLITE_PKT_SUBACK, k->packet_id, &two, 1);
        CHECK_EQ(sp_send(&t, &sa), 0);
        CHECK(mq_session_pop_event(&t.s) == NULL); /* internal: no SUBACK event */
    }
    /* UNSUBSCRIBE "a" acknowledged: nothing left to restore. */
    list.len = 0;
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("a"), 0, 0);
    mq_packet un = pk_new(MQLITE_PKT_UNSUBSCRIBE, MQLITE_V5);
    un.list = mq_view_make(list.p, list.len);
    un.count = 1;
    CHECK_EQ(mq_session_send_list(&t.s, &un, &pid, t.now), 0);
    SP_EXPECT(&t, MQLITE_PKT_UNSUBSCRIBE);
    uint8_t ok = 0;
    mq_packet ua = pk_list_ack(MQLITE_V5, MQLITE_PKT_UNSUBACK, pid, &ok, 1);
    CHECK_EQ(sp_send(&t, &ua), 0);
    CHECK(t.s.subs == NULL);
    mq_session_closed(&t.s, MQLITE_ERR_CONNECTION_LOST, t.now);
    sp_drop_events(&t);
    sp_connect(&t, 0);
    CHECK(sp_recv(&t) == NULL);
    mq_buf_free(&list, &mq_default_alloc);
    sp_free(&t);
}

/* The server's 5.0 CONNACK properties land in the session: Receive Maximum
   caps the window below MQLITE_OPT_MAX_INFLIGHT ([MQTT-3.3.4-7],
   [MQTT-4.9.0-1]), Maximum QoS, Retain Available, Maximum Packet Size, Topic
   Alias Maximum, Server Keep Alive ([MQTT-3.2.2-21]); a 3.1.1 CONNACK leaves
   the defaults. */
static void test_connack_properties_applied(void)
{
    sp t;
    sp_init(&t, MQLITE_V5);
    t.s.cfg.max_inflight = 50;
    CHECK_EQ(mq_session_begin(&t.s, t.now), 0);
    SP_EXPECT(&t, MQLITE_PKT_CONNECT);
    mq_packet a = pk_connack(MQLITE_V5, 0, 0);
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_RECEIVE_MAX, 20);
    pp_int(&pp, MQLITE_PROP_MAX_QOS, 1);
    pp_int(&pp, MQLITE_PROP_RETAIN_AVAILABLE, 0);
    pp_int(&pp, MQLITE_PROP_MAX_PACKET_SIZE, 1000);
    pp_int(&pp, MQLITE_PROP_TOPIC_ALIAS_MAX, 9);
    pp_int(&pp, MQLITE_PROP_SERVER_KEEPALIVE, 7);
    a.props = pp_view(&pp);
    CHECK_EQ(sp_send(&t, &a), 0);
    pp_free(&pp);
    CHECK_EQ(t.s.out.window, 20);
    CHECK_EQ(t.s.srv_max_qos, 1);
    CHECK_EQ(t.s.srv_retain_available, 0);
    CHECK_EQ(t.s.srv_max_packet_size, 1000);
    CHECK_EQ(t.s.srv_topic_alias_max, 9);
    CHECK_EQ(t.s.keepalive_s, 7);
    /* The next connection starts from the defaults again. */
    mq_session_closed(&t.s, MQLITE_ERR_CONNECTION_LOST, t.now);
    sp_drop_events(&t);
    t.s.cfg.version = MQLITE_V311;
    sp_connect(&t, 0);
    CHECK_EQ(t.s.out.window, 50);
    CHECK_EQ(t.s.srv_max_qos, 2);
    CHECK_EQ(t.s.srv_retain_available, 1);
    CHECK_EQ(t.s.srv_max_packet_size, 0);
    CHECK_EQ(t.s.keepalive_s, 60);
    sp_free(&t);
}

/* ---- allocation failures ---- */

typedef struct failer {
    long n; /* allocations so far */
    long fail_at;
    long live;
} failer;

static void *failing_realloc(void *ud, void *p, size_t n)
{
    failer *f = ud;
    if (n == 0) {
        if (p) {
            f->live--;
            free(p);
        }
        return NULL;
    }
    if (++f->n == f->fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        f->live++;
    return q;
}

/* One whole session through an allocator that fails once, at the n-th
   allocation: QoS 0/1/2 out and in, a subscription, a topic alias, a cut
   and a resume. Returns the number of allocations made (to size the
   sweep). Every step may fail with MQLITE_ERR_NOMEM, none may crash, leak
   or leave the session unusable (ASan and the live count check). */
static long session_under_failures(long fail_at, int version, long *live_after)
{
    failer fl = {0, fail_at, 0};
    mq_alloc al = {failing_realloc, &fl};
    mq_session *s = malloc(sizeof *s);
    mq_session_init(s, &al);
    s->cfg.version = (uint8_t)version;
    s->cfg.client_id = mq_memdup0(&al, "oom", 3);
    s->cfg.clean_start = 0;
    s->cfg.trace = 1;
    uint64_t now = 1;
    mq_buf in = {0};
    const mq_alloc *d = &mq_default_alloc;
    for (int conn = 0; conn < 2; conn++) {
        if (mq_session_begin(s, now) != 0)
            continue;
        in.len = 0;
        mq_packet k = pk_connack(version, conn, 0);
        mq_encode_buf(&k, &in, d, NULL);
        mq_session_feed(s, in.p, in.len, now);
        uint16_t pid = 0;
        mq_session_publish(s, mq_view_cstr("o/1"), mq_view_cstr("one"), 1, 0, mq_view_make(NULL, 0),
                           &pid, now);
        mq_session_publish(s, mq_view_cstr("o/2"), mq_view_cstr("two"), 2, 1, mq_view_make(NULL, 0),
                           &pid, now);
        mq_session_publish(s, mq_view_cstr("o/0"), mq_view_cstr("zero"), 0, 0,
                           mq_view_make(NULL, 0), &pid, now);
        mq_buf list = {0};
        mq_list_put_filter(&list, d, mq_view_cstr("i/#"), 1, 2);
        mq_packet sub = pk_new(MQLITE_PKT_SUBSCRIBE, version);
        sub.list = mq_view_make(list.p, list.len);
        sub.count = 1;
        uint16_t spid = 0;
        mq_session_send_list(s, &sub, &spid, now);
        mq_buf_free(&list, d);
        in.len = 0;
        k = pk_publish(version, "i/0", "a", 0, 0);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_publish(version, "i/1", "b", 1, 5);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_publish(version, "i/2", "c", 2, 6);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_ack(version, MQLITE_PKT_PUBACK, 1, 0);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_ack(version, MQLITE_PKT_PUBREC, 2, 0);
        mq_encode_buf(&k, &in, d, NULL);
        uint8_t g = 2;
        k = pk_list_ack(version, MQLITE_PKT_SUBACK, spid, &g, 1);
        mq_encode_buf(&k, &in, d, NULL);
        if (version == MQLITE_V5) {
            pr_props pp = {0};
            pp_int(&pp, MQLITE_PROP_TOPIC_ALIAS, 1);
            k = pk_publish(version, "i/al", "d", 0, 0);
            k.props = pp_view(&pp);
            mq_encode_buf(&k, &in, d, NULL);
            k.topic = mq_view_make(NULL, 0);
            mq_encode_buf(&k, &in, d, NULL);
            pp_free(&pp);
        }
        /* In pieces, so that the input buffer is used too. */
        size_t half = in.len / 2;
        if (mq_session_feed(s, in.p, half, now) == 0)
            mq_session_feed(s, in.p + half, in.len - half, now);
        mq_session_tick(s, now + 120000);
        mq_session_pump(s, 1 << 16, now);
        mq_event *e;
        while ((e = mq_session_pop_event(s)) != NULL) {
            mq_event_props(e);
            mq_event_free(&al, e);
        }
        s->outbuf.len = 0;
        mq_session_closed(s, MQLITE_ERR_CONNECTION_LOST, now);
        now += 1000;
    }
    mq_session_free(s);
    free(s);
    mq_buf_free(&in, d);
    *live_after = fl.live;
    return fl.n;
}

/* STYLE.md (tests): each allocation failure surfaces as NOMEM or a handled
   loss, leaks nothing and never crashes. */
static void test_allocation_failure_sweep(void)
{
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        long live = 0;
        long total = session_under_failures(0, v, &live);
        CHECK(total > 20);
        CHECK_EQ(live, 0);
        int leaks = 0;
        for (long n = 1; n <= total + 1; n++) {
            session_under_failures(n, v, &live);
            if (live && leaks++ < 3)
                fprintf(stderr, "allocation %ld of %ld failed: %ld blocks leaked (v%d)\n", n, total,
                        live, v);
        }
        CHECK_EQ(leaks, 0);
    }
}

/* The same through the public client handle (mqlite_client_new_with_
   allocator, sans-I/O): options, start, feed, publish, subscribe, events
   with properties, a cut and a resume, with one allocation failing. */
static long client_under_failures(long fail_at, int version, long *live_after)
{
    failer fl = {0, fail_at, 0};
    mqlite_client *c = mqlite_client_new_with_allocator("oom", failing_realloc, &fl);
    if (!c) {
        *live_after = fl.live;
        return fl.n;
    }
    const mq_alloc *d = &mq_default_alloc;
    mqlite_client_set_clock(c, 1);
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, version);
    mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0);
    mqlite_client_set_int(c, MQLITE_OPT_TRACE, 1);
    mqlite_client_set_str(c, MQLITE_OPT_USERNAME, "user");
    mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, "will");
    mqlite_client_set_bytes(c, MQLITE_OPT_WILL_PAYLOAD, "w", 1);
    if (version == MQLITE_V5) {
        mqlite_props *pr = mqlite_props_new();
        mqlite_props_add_pair(pr, "k", "v");
        mqlite_client_set_props(c, MQLITE_OPT_CONNECT_PROPS, pr);
        mqlite_props_free(pr);
    }
    uint8_t out[4096];
    mq_buf in = {0};
    for (int conn = 0; conn < 2; conn++) {
        if (mqlite_client_start(c) != 0)
            continue;
        while (mqlite_client_take_output(c, out, sizeof out))
            ;
        in.len = 0;
        mq_packet k = pk_connack(version, conn, 0);
        if (version == MQLITE_V5) {
            pr_props pp = {0};
            pp_str(&pp, MQLITE_PROP_ASSIGNED_CLIENT_ID, "given");
            pp_int(&pp, MQLITE_PROP_RECEIVE_MAX, 5);
            k.props = pp_view(&pp);
            mq_encode_buf(&k, &in, d, NULL);
            pp_free(&pp);
        } else {
            mq_encode_buf(&k, &in, d, NULL);
        }
        mqlite_client_feed(c, in.p, in.len);
        int32_t pid = 0;
        mqlite_client_publish(c, "o/1", "one", 3, 1, 0, &pid);
        mqlite_client_publish(c, "o/2", "two", 3, 2, 0, &pid);
        mqlite_client_subscribe(c, "i/#", 2, &pid);
        mqlite_packet *un = mqlite_packet_new(MQLITE_PKT_UNSUBSCRIBE, version, NULL);
        if (un) {
            mqlite_packet_add_topic(un, "x", 0);
            mqlite_client_send_packet(c, un, &pid);
            mqlite_packet_free(un);
        }
        while (mqlite_client_take_output(c, out, sizeof out))
            ;
        in.len = 0;
        k = pk_publish(version, "i/1", "b", 1, 5);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_publish(version, "i/2", "c", 2, 6);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_ack(version, MQLITE_PKT_PUBREL, 6, 0);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_ack(version, MQLITE_PKT_PUBACK, 1, 0);
        mq_encode_buf(&k, &in, d, NULL);
        k = pk_ack(version, MQLITE_PKT_PUBREC, 2, 0);
        mq_encode_buf(&k, &in, d, NULL);
        for (size_t i = 0; i < in.len; i += 7)
            if (mqlite_client_feed(c, in.p + i, in.len - i < 7 ? in.len - i : 7) < 0)
                break;
        while (mqlite_client_take_output(c, out, sizeof out))
            ;
        const mqlite_event *e;
        while ((e = mqlite_client_next_event(c)) != NULL) {
            mqlite_props_count(mqlite_event_props(e));
            mqlite_event_topic(e, NULL);
        }
        mqlite_client_transport_closed(c);
    }
    mqlite_client_free(c);
    mq_buf_free(&in, d);
    *live_after = fl.live;
    return fl.n;
}

static void test_client_allocation_failure_sweep(void)
{
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        long live = 0;
        long total = client_under_failures(0, v, &live);
        CHECK(total > 20);
        CHECK_EQ(live, 0);
        int leaks = 0;
        for (long n = 1; n <= total + 1; n++) {
            client_under_failures(n, v, &live);
            if (live && leaks++ < 3)
                fprintf(stderr, "client: allocation %ld of %ld failed: %ld blocks leaked (v%d)\n",
                        n, total, live, v);
        }
        CHECK_EQ(leaks, 0);
    }
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_pidmap_put_get_del_and_growth);
    RUN(test_outq_ids_wrap_and_skip_in_use);
    RUN(test_outq_all_ids_in_use);
    RUN(test_outq_window_and_fifo);
    RUN(test_outq_limits);
    RUN(test_outq_requeue_keeps_order);
    RUN(test_outq_ack_rules);
    RUN(test_inq_qos2_held_until_release);
    RUN(test_disconnect_session_expiry_override_rules);
    RUN(test_deadlines);
    RUN(test_unexpected_acknowledgements);
    RUN(test_subscription_list_follows_acknowledgements);
    RUN(test_connack_properties_applied);
    RUN(test_allocation_failure_sweep);
    RUN(test_client_allocation_failure_sweep);
    TEST_MAIN_END();
}
