/*
 * test_broker_session.c - sessions across connections: persistent sessions
 * with QoS 1/2 queued while offline, re-delivery with DUP on resume,
 * bounded queues, 5.0 session expiry, wills (abnormal loss, DISCONNECT,
 * will delay, disconnect with will, take-over, keep-alive). Each test cites
 * the MQTT version and statement it checks.
 */
#include "test_broker_harness.h"

static tc *persistent(mqlite_broker *b, int port, int v, const char *id)
{
    return v == MQLITE_V5 ? tc_connect5_exp(b, port, id, 0, 300) : tc_connect(b, port, v, id, 0);
}

/* MQTT 3.1.1 [MQTT-3.1.2-4] and 3.1.2.4 (messages queued for a
   disconnected CleanSession 0 client); 5.0 [MQTT-3.1.2-5],
   [MQTT-3.1.2-23]: the session, its subscriptions and the QoS 1/2
   messages that arrived while offline are there on resume; QoS 0 are not
   queued. */
static void test_persistent_session_queues_qos12(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *s = persistent(b, port, v, "offline");
        CHECK_EQ(tc_subscribe(s, "off/#", 2), 2);
        tc_disconnect(s);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 0);
        tc *p = tc_connect(b, port, MQLITE_V311, "offline-pub", 1);
        tc_publish(p, "off/0", "q0", 0, 0, 0);
        tc_publish(p, "off/1", "q1", 1, 0, 1);
        tc_publish(p, "off/2", "q2", 2, 0, 2);
        tc_disconnect(p);
        s = persistent(b, port, v, "offline");
        CHECK_EQ(s->session_present, 1);
        mq_packet m;
        CHECK(tc_expect_msg(s, "off/1", "q1", &m));
        CHECK_EQ(m.qos, 1);
        CHECK_EQ(m.dup, 0);
        mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m.packet_id);
        tc_send(s, &a);
        CHECK(tc_expect_msg(s, "off/2", "q2", &m));
        CHECK_EQ(m.qos, 2);
        a = pk_ack(MQLITE_PKT_PUBREC, m.packet_id);
        tc_send(s, &a);
        CHECK(tc_expect(s, MQLITE_PKT_PUBREL, NULL));
        a = pk_ack(MQLITE_PKT_PUBCOMP, m.packet_id);
        tc_send(s, &a);
        CHECK(tc_quiet(s));
        /* The subscription came back with the session. */
        tc *p2 = tc_connect(b, port, MQLITE_V5, "offline-pub2", 1);
        tc_publish(p2, "off/live", "live", 0, 0, 0);
        CHECK(tc_expect_msg(s, "off/live", "live", NULL));
        tc_disconnect(p2);
        mq_packet clean = pk_connect("offline", 1, 60);
        tc_disconnect(s);
        s = tc_connect_pkt(b, port, v, &clean, 0); /* clean start ends it */
        tc_disconnect(s);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    }
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-4.4.0-1], 5.0 [MQTT-4.4.0-1]: on resume, unacknowledged
   PUBLISHes are re-sent with their original Packet Identifiers and
   [MQTT-3.3.1-1] DUP 1, and PUBRELs are re-sent for flows past PUBREC. */
static void test_redelivery_with_dup_on_resume(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *s = persistent(b, port, v, "dup");
        CHECK_EQ(tc_subscribe(s, "dup/#", 2), 2);
        tc *p = tc_connect(b, port, v, "dup-pub", 1);
        tc_publish(p, "dup/1", "one", 1, 0, 1);
        tc_publish(p, "dup/2", "two", 2, 0, 2);
        tc_publish(p, "dup/3", "three", 2, 0, 3);
        mq_packet m1, m2, m3;
        CHECK(tc_expect_msg(s, "dup/1", "one", &m1));
        uint16_t pid1 = m1.packet_id;
        CHECK(tc_expect_msg(s, "dup/2", "two", &m2));
        uint16_t pid2 = m2.packet_id;
        CHECK(tc_expect_msg(s, "dup/3", "three", &m3));
        uint16_t pid3 = m3.packet_id;
        /* dup/2 reaches PUBREC -> PUBREL; dup/1 and dup/3 stay unacknowledged. */
        mq_packet a = pk_ack(MQLITE_PKT_PUBREC, pid2);
        tc_send(s, &a);
        CHECK(tc_expect(s, MQLITE_PKT_PUBREL, NULL));
        tc_drop(s);
        s = persistent(b, port, v, "dup");
        CHECK_EQ(s->session_present, 1);
        mq_packet k;
        CHECK(tc_expect(s, MQLITE_PKT_PUBREL, &k));
        CHECK_EQ(k.packet_id, pid2);
        CHECK(tc_expect_msg(s, "dup/1", "one", &k));
        CHECK_EQ(k.packet_id, pid1);
        CHECK_EQ(k.dup, 1);
        CHECK(tc_expect_msg(s, "dup/3", "three", &k));
        CHECK_EQ(k.packet_id, pid3);
        CHECK_EQ(k.dup, 1);
        CHECK_EQ(k.qos, 2);
        a = pk_ack(MQLITE_PKT_PUBACK, pid1);
        tc_send(s, &a);
        a = pk_ack(MQLITE_PKT_PUBCOMP, pid2);
        tc_send(s, &a);
        a = pk_ack(MQLITE_PKT_PUBREC, pid3);
        tc_send(s, &a);
        CHECK(tc_expect(s, MQLITE_PKT_PUBREL, NULL));
        a = pk_ack(MQLITE_PKT_PUBCOMP, pid3);
        tc_send(s, &a);
        CHECK(tc_quiet(s));
        /* Everything acknowledged: a further resume re-sends nothing. */
        tc_drop(s);
        s = persistent(b, port, v, "dup");
        CHECK(tc_quiet(s));
        mq_packet clean = pk_connect("dup", 1, 60);
        tc_disconnect(s);
        tc_disconnect(tc_connect_pkt(b, port, v, &clean, 0));
        tc_disconnect(p);
    }
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-4.3.3-2], 5.0 [MQTT-4.3.3-10]: the identifier of an
   incoming QoS 2 message is held across a reconnect of a persistent
   session: a PUBLISH re-sent with DUP after resuming is not delivered
   twice. */
static void test_qos2_inbound_exactly_once_across_reconnect(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s = tc_connect(b, port, MQLITE_V311, "eo2-sub", 1);
    CHECK_EQ(tc_subscribe(s, "eo2", 2), 2);
    tc *p = tc_connect(b, port, MQLITE_V311, "eo2-pub", 0);
    mq_packet pub = pk_publish("eo2", "once", 2, 0, 100);
    tc_send(p, &pub);
    CHECK(tc_expect(p, MQLITE_PKT_PUBREC, NULL));
    tc_drop(p);
    mq_packet m;
    CHECK(tc_expect_msg(s, "eo2", "once", &m));
    mq_packet a = pk_ack(MQLITE_PKT_PUBREC, m.packet_id);
    tc_send(s, &a);
    CHECK(tc_expect(s, MQLITE_PKT_PUBREL, NULL));
    a = pk_ack(MQLITE_PKT_PUBCOMP, m.packet_id);
    tc_send(s, &a);
    p = tc_connect(b, port, MQLITE_V311, "eo2-pub", 0);
    CHECK_EQ(p->session_present, 1);
    pub.dup = 1;
    tc_send(p, &pub);
    CHECK(tc_expect(p, MQLITE_PKT_PUBREC, NULL));
    mq_packet rel = pk_ack(MQLITE_PKT_PUBREL, 100);
    tc_send(p, &rel);
    CHECK(tc_expect(p, MQLITE_PKT_PUBCOMP, NULL));
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    mq_packet clean = pk_connect("eo2-pub", 1, 60);
    tc_disconnect(p);
    tc_disconnect(tc_connect_pkt(b, port, MQLITE_V311, &clean, 0));
    mqlite_broker_free(b);
}

/* Offline queues are bounded (MQLITE_BOPT_MAX_QUEUED): messages beyond the
   limit are dropped, counted in MQLITE_BSTAT_MESSAGES_DROPPED; the oldest
   are kept, in order. */
static void test_offline_queue_bounded(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QUEUED, 3);
    tc *s = tc_connect(b, port, MQLITE_V311, "bounded", 0);
    CHECK_EQ(tc_subscribe(s, "bq", 1), 1);
    tc_disconnect(s);
    tc *p = tc_connect(b, port, MQLITE_V311, "bq-pub", 1);
    for (int i = 0; i < 5; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        tc_publish(p, "bq", payload, 1, 0, i + 1);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_MESSAGES_DROPPED), 2);
    s = tc_connect(b, port, MQLITE_V311, "bounded", 0);
    for (int i = 0; i < 3; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        mq_packet m;
        CHECK(tc_expect_msg(s, "bq", payload, &m));
        mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m.packet_id);
        tc_send(s, &a);
    }
    CHECK(tc_quiet(s));
    mq_packet clean = pk_connect("bounded", 1, 60);
    tc_disconnect(s);
    tc_disconnect(tc_connect_pkt(b, port, MQLITE_V311, &clean, 0));
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.1.2.11.2: a session ends when its Session Expiry Interval has
   passed after the connection closed ([MQTT-3.1.2-23] kept until then);
   interval 0 ends it at once. */
static void test_session_expiry_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect5_exp(b, port, "exp1", 1, 1);
    tc_subscribe(c, "exp/t", 1);
    tc_disconnect(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SUBSCRIPTIONS), 1);
    c = tc_connect5_exp(b, port, "exp1", 0, 1);
    CHECK_EQ(c->session_present, 1); /* within the interval */
    tc_disconnect(c);
    tb_run(b, 1400);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SUBSCRIPTIONS), 0);
    c = tc_connect5_exp(b, port, "exp1", 0, 1);
    CHECK_EQ(c->session_present, 0);
    tc_disconnect(c);
    c = tc_connect5_exp(b, port, "exp0", 0, 0);
    tc_disconnect(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1); /* exp1 */
    tb_run(b, 1400);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.14.2.2.2: DISCONNECT may change the Session Expiry Interval,
   but not from 0 in CONNECT to non-zero (a Protocol Error, 0x82). */
static void test_disconnect_session_expiry_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect5_exp(b, port, "dexp", 1, 300);
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_SESSION_EXPIRY, 0);
    mq_packet d = pk(MQLITE_PKT_DISCONNECT);
    d.props = pb_view(&props);
    tc_send(c, &d);
    tb_run(b, 20);
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    pb_free(&props);
    c = tc_connect5_exp(b, port, "dexp", 1, 0);
    pb_int(&props, MQLITE_PROP_SESSION_EXPIRY, 60);
    d = pk(MQLITE_PKT_DISCONNECT);
    d.props = pb_view(&props);
    tc_send(c, &d);
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x82);
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* persistent_client_expiration (MQLITE_BOPT_SESSION_EXPIRY_MAX_S) ends
   3.1.1 CleanSession 0 sessions that stay offline longer. */
static void test_persistent_session_expiration_cap(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_SESSION_EXPIRY_MAX_S, 1);
    tc *c = tc_connect(b, port, MQLITE_V311, "cap", 0);
    tc_disconnect(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
    tb_run(b, 1400);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    mqlite_broker_free(b);
}

/* ---- wills ---- */

static mq_packet will_connect(const char *id, int clean, int qos, int retain)
{
    mq_packet p = pk_connect(id, clean, 60);
    p.will = 1;
    p.will_topic = mq_view_cstr("will/t");
    p.will_payload = mq_view_cstr("gone");
    p.will_qos = (uint8_t)qos;
    p.will_retain = (uint8_t)retain;
    return p;
}

/* MQTT 3.1.1 [MQTT-3.1.2-8]: the will is published when the connection
   closes without DISCONNECT; [MQTT-3.1.2-10], [MQTT-3.14.4-3]: never after
   DISCONNECT. MQTT 5.0 [MQTT-3.1.2-10]: removed after DISCONNECT 0x00. */
static void test_will_abnormal_vs_disconnect(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V31; v <= MQLITE_V5; v++) {
        tc *w = tc_connect(b, port, v, "watcher", 1);
        CHECK_EQ(tc_subscribe(w, "will/#", 1), 1);
        mq_packet p = will_connect("willer", 1, 1, 0);
        tc *c = tc_connect_pkt(b, port, v, &p, 0);
        tc_drop(c);
        mq_packet m;
        CHECK(tc_expect_msg(w, "will/t", "gone", &m));
        CHECK_EQ(m.qos, 1);
        CHECK_EQ(m.retain, 0);
        mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m.packet_id);
        tc_send(w, &a);
        p = will_connect("willer", 1, 1, 0);
        c = tc_connect_pkt(b, port, v, &p, 0);
        tc_disconnect(c);
        CHECK(tc_quiet(w));
        tc_disconnect(w);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.1.2-15]: Will Retain 1 -> published as retained;
   3.1.3.2: will properties are forwarded (minus the Will Delay Interval). */
static void test_will_retained_with_properties_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    pb wp = {{0}};
    pb_pair(&wp, "why", "test");
    pb_str(&wp, MQLITE_PROP_CONTENT_TYPE, "text/plain");
    mq_packet p = will_connect("wr", 1, 0, 1);
    p.will_props = pb_view(&wp);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    tc_drop(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 1);
    tc *s = tc_connect(b, port, MQLITE_V5, "wr-late", 1);
    CHECK_EQ(tc_subscribe(s, "will/t", 0), 0);
    mq_packet m;
    CHECK(tc_expect_msg(s, "will/t", "gone", &m));
    CHECK_EQ(m.retain, 1);
    CHECK_MEM(m.props.p, m.props.len, wp.b.p, wp.b.len);
    tc_disconnect(s);
    pb_free(&wp);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.1.3.2.2: the will waits for the Will Delay Interval;
   [MQTT-3.1.3-9]: a new connection to the session within it cancels it. */
static void test_will_delay_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *w = tc_connect(b, port, MQLITE_V5, "wd-watch", 1);
    CHECK_EQ(tc_subscribe(w, "will/#", 0), 0);
    pb wp = {{0}}, cp = {{0}};
    pb_int(&wp, MQLITE_PROP_WILL_DELAY, 1);
    pb_int(&cp, MQLITE_PROP_SESSION_EXPIRY, 60);
    mq_packet p = will_connect("wd", 1, 0, 0);
    p.will_props = pb_view(&wp);
    p.props = pb_view(&cp);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    uint64_t t0 = tc_now_ms();
    tc_drop(c);
    CHECK(tc_quiet(w));
    mq_packet m;
    CHECK(tc_expect_msg(w, "will/t", "gone", &m));
    uint64_t waited = tc_now_ms() - t0;
    CHECK(waited >= 900 && waited < 2000);
    CHECK_EQ(prop_int(m.props, MQLITE_PROP_WILL_DELAY), -1);
    /* Reconnecting within the delay: no will. */
    p.clean_start = 1;
    c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    tc_drop(c);
    c = tc_connect5_exp(b, port, "wd", 0, 60);
    CHECK_EQ(c->session_present, 1);
    tb_run(b, 1300);
    CHECK(tc_quiet(w));
    tc_disconnect(c); /* normal DISCONNECT: the new connection had no will */
    CHECK(tc_quiet(w));
    tc_disconnect(w);
    pb_free(&wp);
    pb_free(&cp);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.1.2.5: the will goes out when the session ends, even before
   the Will Delay Interval has passed (session expiry 0 here). */
static void test_will_on_session_end_before_delay_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *w = tc_connect(b, port, MQLITE_V5, "we-watch", 1);
    CHECK_EQ(tc_subscribe(w, "will/#", 0), 0);
    pb wp = {{0}};
    pb_int(&wp, MQLITE_PROP_WILL_DELAY, 30);
    mq_packet p = will_connect("we", 1, 0, 0);
    p.will_props = pb_view(&wp);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    tc_drop(c);
    CHECK(tc_expect_msg(w, "will/t", "gone", NULL));
    tc_disconnect(w);
    pb_free(&wp);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.14.2.1: DISCONNECT 0x04 (Disconnect with Will Message)
   publishes the will. */
static void test_disconnect_with_will_message_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *w = tc_connect(b, port, MQLITE_V5, "dw-watch", 1);
    CHECK_EQ(tc_subscribe(w, "will/#", 0), 0);
    mq_packet p = will_connect("dw", 1, 0, 0);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    mq_packet d = pk(MQLITE_PKT_DISCONNECT);
    d.reason = 0x04;
    tc_send(c, &d);
    CHECK(tc_expect_msg(w, "will/t", "gone", NULL));
    tc_free(c);
    tc_disconnect(w);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.2-8], 5.0 [MQTT-3.1.2-22]: a keep-alive timeout
   counts as a network failure, so the will is published. MQTT 5.0 3.1.4
   note to [MQTT-3.1.4-3]: a take-over of a connection with Will Delay 0
   sends its will. */
static void test_will_on_keepalive_timeout_and_takeover(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *w = tc_connect(b, port, MQLITE_V5, "wk-watch", 1);
    CHECK_EQ(tc_subscribe(w, "will/#", 0), 0);
    mq_packet p = will_connect("wk", 1, 0, 0);
    p.keepalive = 1;
    tc *c = tc_connect_pkt(b, port, MQLITE_V311, &p, 0);
    CHECK(tc_wait_closed(c, NULL, 4000));
    tc_free(c);
    CHECK(tc_expect_msg(w, "will/t", "gone", NULL));
    p = will_connect("wt", 1, 0, 0);
    c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    mq_packet p2 = pk_connect("wt", 1, 60);
    tc *c2 = tc_connect_pkt(b, port, MQLITE_V5, &p2, 0);
    CHECK(tc_expect_msg(w, "will/t", "gone", NULL));
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    tc_disconnect(c2);
    CHECK(tc_quiet(w));
    tc_disconnect(w);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.2.2-12], [MQTT-3.2.2-13]: a will the broker cannot honour
   (QoS above Maximum QoS; retained without retain support) is refused with
   CONNACK 0x9B / 0x9A. */
static void test_will_refused_when_unsupported_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QOS, 1);
    mqlite_broker_set_int(b, MQLITE_BOPT_RETAIN_AVAILABLE, 0);
    mq_packet p = will_connect("wq", 1, 2, 0);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x9B);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    p = will_connect("wq", 1, 0, 1);
    c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x9A);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.3.2-5]: a message whose expiry passed while queued for
   an offline session is not delivered; [MQTT-3.3.2-6]: one still valid is
   sent with the remaining interval. */
static void test_message_expiry_while_offline_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s = tc_connect5_exp(b, port, "mexp", 1, 300);
    CHECK_EQ(tc_subscribe(s, "mexp/#", 1), 1);
    tc_disconnect(s);
    tc *p = tc_connect(b, port, MQLITE_V5, "mexp-pub", 1);
    pb shortp = {{0}}, longp = {{0}};
    pb_int(&shortp, MQLITE_PROP_MESSAGE_EXPIRY, 1);
    pb_int(&longp, MQLITE_PROP_MESSAGE_EXPIRY, 100);
    mq_packet pub = pk_publish("mexp/short", "s", 1, 0, 1);
    pub.props = pb_view(&shortp);
    tc_send(p, &pub);
    CHECK(tc_expect(p, MQLITE_PKT_PUBACK, NULL));
    pub = pk_publish("mexp/long", "l", 1, 0, 2);
    pub.props = pb_view(&longp);
    tc_send(p, &pub);
    CHECK(tc_expect(p, MQLITE_PKT_PUBACK, NULL));
    tb_run(b, 1300);
    s = tc_connect5_exp(b, port, "mexp", 0, 300);
    mq_packet m;
    CHECK(tc_expect_msg(s, "mexp/long", "l", &m));
    int64_t left = prop_int(m.props, MQLITE_PROP_MESSAGE_EXPIRY);
    CHECK(left >= 98 && left <= 99);
    mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m.packet_id);
    tc_send(s, &a);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&shortp);
    pb_free(&longp);
    mqlite_broker_free(b);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_persistent_session_queues_qos12);
    RUN(test_redelivery_with_dup_on_resume);
    RUN(test_qos2_inbound_exactly_once_across_reconnect);
    RUN(test_offline_queue_bounded);
    RUN(test_session_expiry_v5);
    RUN(test_disconnect_session_expiry_v5);
    RUN(test_persistent_session_expiration_cap);
    RUN(test_will_abnormal_vs_disconnect);
    RUN(test_will_retained_with_properties_v5);
    RUN(test_will_delay_v5);
    RUN(test_will_on_session_end_before_delay_v5);
    RUN(test_disconnect_with_will_message_v5);
    RUN(test_will_on_keepalive_timeout_and_takeover);
    RUN(test_will_refused_when_unsupported_v5);
    RUN(test_message_expiry_while_offline_v5);
    TEST_MAIN_END();
}
