/*
 * test_broker.c - the embedded broker over real sockets: CONNECT/CONNACK
 * variants, take-over, QoS 0/1/2 end to end, retained messages,
 * subscriptions (overlap, identifiers, no-local, shared), 5.0 properties,
 * topic aliases, packet size and receive maximum limits, keep-alive,
 * $SYS. Each test cites the MQTT version and statement it checks.
 */
#include "test_broker_harness.h"

/* ---- CONNECT / CONNACK ---- */

/* MQTT 3.1.1 [MQTT-3.2.2-1]: CleanSession 1 -> Session Present 0 and a zero
   return code. MQTT 5.0 [MQTT-3.1.4-5]: CONNACK 0x00. */
static void test_connect_accepted_all_levels(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V31; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "levels", 1);
        CHECK_EQ(c->session_present, 0);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 1);
        tc_disconnect(c);
    }
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 0);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    mqlite_broker_free(b);
}

/* MQTT 3.1 allows 1..23 byte identifiers; like mosquitto, longer ones are
   accepted; an empty one is refused with 0x02 (3.1 has no assigned ids). */
static void test_connect_v31_client_ids(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect(b, port, MQLITE_V31, "a-client-identifier-longer-than-23-bytes", 1);
    CHECK(tc_subscribe(c, "x", 0) == 0);
    tc_disconnect(c);
    mq_packet p = pk_connect("", 1, 60);
    c = tc_connect_pkt(b, port, MQLITE_V31, &p, 0x02);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.3-8]: a zero-byte ClientId with CleanSession 0 gets
   CONNACK 0x02 and the connection is closed. */
static void test_connect_v311_empty_id_clean0_refused(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mq_packet p = pk_connect("", 0, 60);
    tc *c = tc_connect_pkt(b, port, MQLITE_V311, &p, 0x02);
    CHECK_EQ(c->session_present, 0);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.3-6]: a zero-byte ClientId with CleanSession 1 is
   given a unique identifier; two such clients coexist. */
static void test_connect_v311_empty_id_assigned(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c1 = tc_connect(b, port, MQLITE_V311, "", 1);
    tc *c2 = tc_connect(b, port, MQLITE_V311, "", 1);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 2);
    CHECK_EQ(tc_subscribe(c1, "t", 0), 0);
    tc_publish(c2, "t", "m", 0, 0, 0);
    CHECK(tc_expect_msg(c1, "t", "m", NULL));
    tc_disconnect(c1);
    tc_disconnect(c2);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.2.2-16]: a zero-length ClientID gets a CONNACK with an
   Assigned Client Identifier not used by any other session; the client can
   resume its session with it ([MQTT-3.1.3-7]). */
static void test_connect_v5_assigned_client_identifier(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect5_exp(b, port, "", 1, 60);
    mq_prop id;
    CHECK(mq_props_get(c->connack.props, MQLITE_PROP_ASSIGNED_CLIENT_ID, &id));
    char assigned[64] = "";
    snprintf(assigned, sizeof assigned, "%.*s", (int)id.val.len, (const char *)id.val.p);
    CHECK(strlen(assigned) > 0);
    CHECK_EQ(tc_subscribe(c, "t", 1), 1);
    tc_drop(c);
    c = tc_connect5_exp(b, port, assigned, 0, 60);
    CHECK_EQ(c->session_present, 1);
    CHECK(!mq_props_get(c->connack.props, MQLITE_PROP_ASSIGNED_CLIENT_ID, &id));
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.2-2]: an unsupported Protocol Level gets CONNACK 0x01
   and the connection is closed. MQTT 5.0 [MQTT-3.1.2-2]: a level the server
   does not accept may get CONNACK 0x84 before the close. */
static void test_connect_unsupported_protocol_level(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    /* "MQTT", level 3 (3.1 uses "MQIsdp"): answered in 3.1.1's format. */
    tc *c = tc_open(b, port, MQLITE_V311);
    tc_send_hex(c, "10 0c 00 04 4d 51 54 54 03 02 00 3c 00 00");
    mq_packet k;
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0x01);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    /* "MQTT", level 6: answered in 5.0's format. */
    c = tc_open(b, port, MQLITE_V5);
    tc_send_hex(c, "10 0d 00 04 4d 51 54 54 06 02 00 3c 00 00 00");
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0x84);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.2-3]: the reserved CONNECT flag must be 0, else the
   client is disconnected (3.1.1 [MQTT-3.1.4-1]: without CONNACK). MQTT 5.0
   [MQTT-3.1.4-1]: close, after a CONNACK 0x81 (Malformed Packet). */
static void test_connect_reserved_flag(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_open(b, port, MQLITE_V311);
    tc_send_hex(c, "10 0c 00 04 4d 51 54 54 04 03 00 3c 00 00");
    mq_packet k;
    CHECK_EQ(tc_recv(c, &k, TC_WAIT), TC_CLOSED);
    tc_free(c);
    c = tc_open(b, port, MQLITE_V5);
    tc_send_hex(c, "10 0d 00 04 4d 51 54 54 05 03 00 3c 00 00 00");
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0x81);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.1.0-1]: the first packet must be CONNECT. */
static void test_first_packet_must_be_connect(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_open(b, port, MQLITE_V311);
    tc_send_hex(c, "c0 00"); /* PINGREQ */
    mq_packet k;
    CHECK_EQ(tc_recv(c, &k, TC_WAIT), TC_CLOSED);
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 0);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.0-2]: a second CONNECT is a protocol violation and
   the client is disconnected. MQTT 5.0 [MQTT-3.1.0-2]: a Protocol Error
   (DISCONNECT 0x82). */
static void test_second_connect_is_protocol_error(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "twice", 1);
        mq_packet p = pk_connect("twice", 1, 60);
        tc_send(c, &p);
        int reason;
        CHECK(tc_wait_closed(c, &reason, TC_WAIT));
        CHECK_EQ(reason, v == MQLITE_V5 ? 0x82 : -1);
        tc_free(c);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.2.2-9] Maximum QoS, 3.2.2.3 CONNACK properties: what the
   broker is configured with is announced to 5.0 clients. */
static void test_connack_v5_properties(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_RECEIVE_MAX, 10);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QOS, 1);
    mqlite_broker_set_int(b, MQLITE_BOPT_RETAIN_AVAILABLE, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_PACKET_SIZE, 1000);
    mqlite_broker_set_int(b, MQLITE_BOPT_TOPIC_ALIAS_MAX, 5);
    mqlite_broker_set_int(b, MQLITE_BOPT_WILDCARD_SUBS, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SUBSCRIPTION_IDS, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SHARED_SUBS, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_KEEPALIVE_S, 30);
    mqlite_broker_set_int(b, MQLITE_BOPT_SESSION_EXPIRY_MAX_S, 100);
    tc *c = tc_connect5_exp(b, port, "props", 1, 1000);
    mq_view pr = c->connack.props;
    CHECK_EQ(prop_int(pr, MQLITE_PROP_RECEIVE_MAX), 10);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_MAX_QOS), 1);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_RETAIN_AVAILABLE), 0);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_MAX_PACKET_SIZE), 1000);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_TOPIC_ALIAS_MAX), 5);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_WILDCARD_SUB_AVAILABLE), 0);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_SUB_ID_AVAILABLE), 0);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_SHARED_SUB_AVAILABLE), 0);
    /* 5.0 [MQTT-3.1.2-21]: keep-alive 60 above the maximum -> Server Keep
       Alive 30; session expiry 1000 capped to 100. */
    CHECK_EQ(prop_int(pr, MQLITE_PROP_SERVER_KEEPALIVE), 30);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_SESSION_EXPIRY), 100);
    tc_disconnect(c);
    /* Defaults: only the topic alias maximum is announced. */
    mqlite_broker_free(b);
    b = tb_new(&port);
    c = tc_connect(b, port, MQLITE_V5, "defaults", 1);
    pr = c->connack.props;
    CHECK_EQ(prop_int(pr, MQLITE_PROP_TOPIC_ALIAS_MAX), 10);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_MAX_QOS), -1);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_RECEIVE_MAX), -1);
    CHECK_EQ(prop_int(pr, MQLITE_PROP_SERVER_KEEPALIVE), -1);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.1.4-2]: authorization checks that fail close the
   connection: allow_anonymous 0 refuses clients without a user name (5.0
   CONNACK 0x87; 3.1.1 3.2.2.3 return code 0x05, not authorized). */
static void test_allow_anonymous_off(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_ALLOW_ANONYMOUS, 0);
    mq_packet p = pk_connect("anon", 1, 60);
    tc *c = tc_connect_pkt(b, port, MQLITE_V311, &p, 0x05);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    p = pk_connect("anon", 1, 60);
    c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x87);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    p = pk_connect("named", 1, 60);
    p.has_username = 1;
    p.username = mq_view_cstr("alice");
    p.has_password = 1;
    p.password = mq_view_cstr("secret");
    c = tc_connect_pkt(b, port, MQLITE_V311, &p, 0);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* MQTT 5.0 4.12: enhanced authentication is not offered: an Authentication
   Method in CONNECT gets CONNACK 0x8C (Bad authentication method). */
static void test_auth_method_refused(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    pb props = {{0}};
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-1");
    mq_packet p = pk_connect("auth", 1, 60);
    p.props = pb_view(&props);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x8C);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.4-2]: a client id already connected -> the existing
   client is disconnected. MQTT 5.0 [MQTT-3.1.4-3]: with DISCONNECT 0x8E. */
static void test_takeover(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *old = tc_connect(b, port, v, "same-id", 1);
        tc *nu = tc_connect(b, port, v, "same-id", 1);
        int reason;
        CHECK(tc_wait_closed(old, &reason, TC_WAIT));
        CHECK_EQ(reason, v == MQLITE_V5 ? 0x8E : -1);
        tc_free(old);
        CHECK_EQ(tc_subscribe(nu, "still/here", 0), 0);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 1);
        tc_disconnect(nu);
    }
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.2.2-2], [MQTT-3.2.2-3]: with CleanSession 0, Session
   Present says whether stored state existed; [MQTT-3.2.2-1]: CleanSession 1
   gives 0 and discards it. MQTT 5.0 [MQTT-3.1.2-4], [MQTT-3.1.2-5],
   [MQTT-3.1.2-6] likewise with Clean Start and a Session Expiry Interval. */
static void test_session_present(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect(b, port, MQLITE_V311, "sp", 0);
    CHECK_EQ(c->session_present, 0);
    tc_subscribe(c, "sp/t", 1);
    tc_disconnect(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
    c = tc_connect(b, port, MQLITE_V311, "sp", 0);
    CHECK_EQ(c->session_present, 1);
    tc_disconnect(c);
    c = tc_connect(b, port, MQLITE_V311, "sp", 1);
    CHECK_EQ(c->session_present, 0);
    tc_disconnect(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 0);
    c = tc_connect5_exp(b, port, "sp5", 0, 60);
    CHECK_EQ(c->session_present, 0);
    tc_disconnect(c);
    c = tc_connect5_exp(b, port, "sp5", 0, 60);
    CHECK_EQ(c->session_present, 1);
    tc_disconnect(c);
    c = tc_connect5_exp(b, port, "sp5", 1, 60);
    CHECK_EQ(c->session_present, 0);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* ---- QoS ---- */

/* Acknowledge a received PUBLISH the way its QoS asks. */
static void ack_publish(tc *c, const mq_packet *m)
{
    if (m->qos == 1) {
        mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m->packet_id);
        tc_send(c, &a);
    } else if (m->qos == 2) {
        mq_packet a = pk_ack(MQLITE_PKT_PUBREC, m->packet_id);
        tc_send(c, &a);
        CHECK(tc_expect(c, MQLITE_PKT_PUBREL, NULL));
        a = pk_ack(MQLITE_PKT_PUBCOMP, m->packet_id);
        tc_send(c, &a);
    }
}

/* MQTT 3.1.1 [MQTT-3.8.4-6], 5.0 [MQTT-3.8.4-8]: delivered at the minimum
   of the published QoS and the granted QoS; every pairing of levels talks
   to every other. */
static void test_qos_end_to_end_with_downgrade(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int vs = MQLITE_V31; vs <= MQLITE_V5; vs++) {
        for (int vp = MQLITE_V31; vp <= MQLITE_V5; vp++) {
            tc *s[3];
            char id[16];
            for (int q = 0; q < 3; q++) {
                snprintf(id, sizeof id, "s%d", q);
                s[q] = tc_connect(b, port, vs, id, 1);
                CHECK_EQ(tc_subscribe(s[q], "qos/t", q), q);
            }
            tc *p = tc_connect(b, port, vp, "pub", 1);
            for (int pq = 0; pq < 3; pq++) {
                tc_publish(p, "qos/t", "m", pq, 0, 10 + pq);
                for (int q = 0; q < 3; q++) {
                    mq_packet m;
                    CHECK(tc_expect_msg(s[q], "qos/t", "m", &m));
                    CHECK_EQ(m.qos, pq < q ? pq : q);
                    CHECK_EQ(m.dup, 0);
                    CHECK_EQ(m.retain, 0);
                    ack_publish(s[q], &m);
                }
            }
            for (int q = 0; q < 3; q++) {
                CHECK(tc_quiet(s[q]));
                tc_disconnect(s[q]);
            }
            tc_disconnect(p);
        }
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.2.2-9], [MQTT-3.2.2-10]: with Maximum QoS 1, SUBSCRIBE
   at QoS 2 is accepted and granted 1; a PUBLISH at QoS 2 is answered with
   DISCONNECT 0x9B (QoS not supported, 4.13). */
static void test_max_qos(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QOS, 1);
    tc *s = tc_connect(b, port, MQLITE_V5, "mq-sub", 1);
    CHECK_EQ(tc_subscribe(s, "t", 2), 1);
    tc *c = tc_connect(b, port, MQLITE_V5, "mq", 1);
    tc_publish(c, "t", "one", 1, 0, 1);
    mq_packet m;
    CHECK(tc_expect_msg(s, "t", "one", &m));
    CHECK_EQ(m.qos, 1);
    tc_disconnect(s);
    mq_packet p = pk_publish("t", "two", 2, 0, 2);
    tc_send(c, &p);
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x9B);
    tc_free(c);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-4.3.3-10] (3.1.1 [MQTT-4.3.3-2], method B): until PUBREL,
   a PUBLISH with the same Packet Identifier is acknowledged with PUBREC but
   not delivered again; 5.0 [MQTT-4.3.3-12]: after PUBCOMP the identifier
   starts a new message. Subscribers see it exactly once. */
static void test_qos2_exactly_once_with_dup_resend(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *s = tc_connect(b, port, v, "eo-sub", 1);
        CHECK_EQ(tc_subscribe(s, "eo", 2), 2);
        tc *p = tc_connect(b, port, v, "eo-pub", 1);
        mq_packet pub = pk_publish("eo", "once", 2, 0, 42);
        tc_send(p, &pub);
        CHECK(tc_expect(p, MQLITE_PKT_PUBREC, NULL));
        pub.dup = 1;
        tc_send(p, &pub);
        mq_packet k;
        CHECK(tc_expect(p, MQLITE_PKT_PUBREC, &k));
        CHECK_EQ(k.packet_id, 42);
        mq_packet m;
        CHECK(tc_expect_msg(s, "eo", "once", &m));
        ack_publish(s, &m);
        CHECK(tc_quiet(s));
        mq_packet rel = pk_ack(MQLITE_PKT_PUBREL, 42);
        tc_send(p, &rel);
        CHECK(tc_expect(p, MQLITE_PKT_PUBCOMP, &k));
        CHECK_EQ(k.reason, 0);
        /* The identifier is free again: same id, new message. */
        pub = pk_publish("eo", "again", 2, 0, 42);
        tc_send(p, &pub);
        CHECK(tc_expect(p, MQLITE_PKT_PUBREC, NULL));
        CHECK(tc_expect_msg(s, "eo", "again", &m));
        ack_publish(s, &m);
        tc_send(p, &rel);
        CHECK(tc_expect(p, MQLITE_PKT_PUBCOMP, NULL));
        tc_disconnect(s);
        tc_disconnect(p);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.7.2.1: PUBREL for an identifier not held -> PUBCOMP 0x92
   (Packet Identifier not found); 3.1.1 [MQTT-4.3.3-2]: PUBCOMP regardless. */
static void test_pubrel_unknown_id(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "rel", 1);
        mq_packet rel = pk_ack(MQLITE_PKT_PUBREL, 9);
        tc_send(c, &rel);
        mq_packet k;
        CHECK(tc_expect(c, MQLITE_PKT_PUBCOMP, &k));
        CHECK_EQ(k.packet_id, 9);
        CHECK_EQ(k.reason, v == MQLITE_V5 ? 0x92 : 0);
        tc_disconnect(c);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.4.2.1: PUBACK 0x10 (No matching subscribers) when nobody
   subscribed; 0x00 otherwise. */
static void test_puback_no_matching_subscribers(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *c = tc_connect(b, port, MQLITE_V5, "nms", 1);
    mq_packet p = pk_publish("nobody/listens", "x", 1, 0, 3), k;
    tc_send(c, &p);
    CHECK(tc_expect(c, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0x10);
    tc_subscribe(c, "somebody/#", 1);
    p = pk_publish("somebody/listens", "x", 1, 0, 4);
    tc_send(c, &p);
    CHECK(tc_expect(c, MQLITE_PKT_PUBLISH, NULL)); /* order of the two is free */
    CHECK(tc_expect(c, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* ---- retained messages ---- */

/* MQTT 3.1.1 [MQTT-3.3.1-5] store, [MQTT-3.3.1-8] RETAIN 1 when sent for a
   new subscription, [MQTT-3.3.1-9] RETAIN 0 on an established one,
   [MQTT-3.3.1-10], [MQTT-3.3.1-11] an empty payload clears and is not
   stored, [MQTT-3.3.1-12] RETAIN 0 does not touch the store. */
static void test_retained_set_replace_clear_v311(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *p = tc_connect(b, port, MQLITE_V311, "rp", 1);
    tc_publish(p, "r/a", "first", 1, 1, 1);
    tc_publish(p, "r/a", "second", 1, 1, 2);
    tc_publish(p, "r/b/c", "deep", 0, 1, 0);
    tc_publish(p, "r/a", "not-retained", 0, 0, 0);
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 2);
    tc *s = tc_connect(b, port, MQLITE_V311, "rs", 1);
    CHECK_EQ(tc_subscribe(s, "r/a", 1), 1);
    mq_packet m;
    CHECK(tc_expect_msg(s, "r/a", "second", &m));
    CHECK_EQ(m.retain, 1);
    CHECK_EQ(m.qos, 1);
    ack_publish(s, &m);
    CHECK(tc_quiet(s));
    /* Established subscription: RETAIN 0 even for a retained publish. */
    tc_publish(p, "r/a", "third", 0, 1, 0);
    CHECK(tc_expect_msg(s, "r/a", "third", &m));
    CHECK_EQ(m.retain, 0);
    /* Clearing: delivered as a normal message, then gone. */
    tc_publish(p, "r/a", "", 0, 1, 0);
    CHECK(tc_expect_msg(s, "r/a", "", &m));
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 1);
    tc *s2 = tc_connect(b, port, MQLITE_V311, "rs2", 1);
    CHECK_EQ(tc_subscribe(s2, "r/#", 0), 0);
    CHECK(tc_expect_msg(s2, "r/b/c", "deep", &m));
    CHECK_EQ(m.retain, 1);
    CHECK(tc_quiet(s2));
    tc_disconnect(s);
    tc_disconnect(s2);
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 and 5.0 4.7.1: retained messages match '+' and '#' filters,
   "a/#" includes "a"; [MQTT-4.7.2-1]: not "$..." topics with a leading
   wildcard; QoS is the lower of message and subscription. */
static void test_retained_wildcards(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    tc *p = tc_connect(b, port, MQLITE_V5, "wp", 1);
    const char *topics[] = {"a", "a/b", "a/b/c", "a/x/c", "b/b", "$own/a", "/lead"};
    for (size_t i = 0; i < MQ_ARRAY_LEN(topics); i++)
        tc_publish(p, topics[i], topics[i], 2, 1, (int)i + 1);
    struct {
        const char *filter;
        int count;
    } cases[] = {{"a/#", 4}, {"#", 6}, {"+", 1}, {"a/+", 1}, {"a/+/c", 2}, {"+/b", 2},
                 {"$own/#", 1}, {"+/+", 3}, {"/+", 1}, {"nothing/#", 0}};
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        tc *s = tc_connect(b, port, MQLITE_V5, "ws", 1);
        CHECK_EQ(tc_subscribe(s, cases[i].filter, 1), 1);
        int n = 0;
        mq_packet m;
        while (tc_recv(s, &m, TC_QUIET) == 0 && m.type == MQLITE_PKT_PUBLISH) {
            CHECK_EQ(m.retain, 1);
            CHECK_EQ(m.qos, 1);
            CHECK(m.topic.len && m.topic.p[0] != '$' ? 1 : cases[i].filter[0] == '$');
            ack_publish(s, &m);
            n++;
        }
        if (n != cases[i].count)
            fprintf(stderr, "filter %s: %d retained, expected %d\n", cases[i].filter, n,
                    cases[i].count);
        CHECK_EQ(n, cases[i].count);
        tc_disconnect(s);
    }
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: Retain Handling
   0 sends retained messages on every SUBSCRIBE, 1 only when the
   subscription is new, 2 never. */
static void test_retain_handling_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *p = tc_connect(b, port, MQLITE_V5, "rhp", 1);
    tc_publish(p, "rh/t", "kept", 0, 1, 0);
    tc *s = tc_connect(b, port, MQLITE_V5, "rhs", 1);
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(tc_subscribe(s, "rh/t", 0 | (0 << 4)), 0);
        CHECK(tc_expect_msg(s, "rh/t", "kept", NULL));
    }
    CHECK_EQ(tc_subscribe(s, "rh/+", 1 << 4), 0);
    CHECK(tc_expect_msg(s, "rh/t", "kept", NULL));
    CHECK_EQ(tc_subscribe(s, "rh/+", 1 << 4), 0);
    CHECK(tc_quiet(s));
    CHECK_EQ(tc_subscribe(s, "rh/#", 2 << 4), 0);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.3.1-12]: Retain As Published 0 -> RETAIN 0 when
   forwarding; [MQTT-3.3.1-13]: 1 -> RETAIN as received. */
static void test_retain_as_published_v5(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s0 = tc_connect(b, port, MQLITE_V5, "rap0", 1);
    tc *s1 = tc_connect(b, port, MQLITE_V5, "rap1", 1);
    CHECK_EQ(tc_subscribe(s0, "rap", 0), 0);
    CHECK_EQ(tc_subscribe(s1, "rap", 0x08), 0);
    tc *p = tc_connect(b, port, MQLITE_V5, "rapp", 1);
    tc_publish(p, "rap", "r", 0, 1, 0);
    tc_publish(p, "rap", "n", 0, 0, 0);
    mq_packet m;
    CHECK(tc_expect_msg(s0, "rap", "r", &m));
    CHECK_EQ(m.retain, 0);
    CHECK(tc_expect_msg(s0, "rap", "n", &m));
    CHECK_EQ(m.retain, 0);
    CHECK(tc_expect_msg(s1, "rap", "r", &m));
    CHECK_EQ(m.retain, 1);
    CHECK(tc_expect_msg(s1, "rap", "n", &m));
    CHECK_EQ(m.retain, 0);
    tc_disconnect(s0);
    tc_disconnect(s1);
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.3.2-5]: an expired retained message is not sent. */
static void test_retained_message_expiry(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *p = tc_connect(b, port, MQLITE_V5, "rexp", 1);
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_MESSAGE_EXPIRY, 1);
    mq_packet pub = pk_publish("rexp/t", "short", 0, 1, 0);
    pub.props = pb_view(&props);
    tc_send(p, &pub);
    tc_publish(p, "rexp/u", "long", 0, 1, 0);
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 2);
    tb_run(b, 1300);
    tc *s = tc_connect(b, port, MQLITE_V5, "rexps", 1);
    CHECK_EQ(tc_subscribe(s, "rexp/#", 0), 0);
    CHECK(tc_expect_msg(s, "rexp/u", "long", NULL));
    CHECK(tc_quiet(s));
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 1);
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* ---- subscriptions ---- */

/* MQTT 3.1.1 [MQTT-3.3.5-1], 5.0 [MQTT-3.3.4-2]: overlapping subscriptions
   of one client give the message at the highest QoS of them (here: once);
   5.0 [MQTT-3.3.4-4]: with every matching Subscription Identifier. */
static void test_overlapping_subscriptions(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s = tc_connect(b, port, MQLITE_V311, "ov", 1);
    CHECK_EQ(tc_subscribe(s, "ov/#", 0), 0);
    CHECK_EQ(tc_subscribe(s, "ov/+", 2), 2);
    CHECK_EQ(tc_subscribe(s, "ov/t", 1), 1);
    tc *p = tc_connect(b, port, MQLITE_V311, "ovp", 1);
    tc_publish(p, "ov/t", "m", 2, 0, 1);
    mq_packet m;
    CHECK(tc_expect_msg(s, "ov/t", "m", &m));
    CHECK_EQ(m.qos, 2);
    ack_publish(s, &m);
    CHECK(tc_quiet(s));
    tc_disconnect(s);

    s = tc_connect(b, port, MQLITE_V5, "ov5", 1);
    pb id1 = {{0}}, id2 = {{0}};
    pb_int(&id1, MQLITE_PROP_SUBSCRIPTION_ID, 11);
    pb_int(&id2, MQLITE_PROP_SUBSCRIPTION_ID, 222);
    CHECK_EQ(tc_subscribe_props(s, "ov/#", 1, 1, pb_view(&id1)), 1);
    CHECK_EQ(tc_subscribe_props(s, "ov/t", 0, 2, pb_view(&id2)), 0);
    CHECK_EQ(tc_subscribe(s, "+/t", 0), 0); /* no identifier */
    tc_publish(p, "ov/t", "m5", 1, 0, 2);
    CHECK(tc_expect_msg(s, "ov/t", "m5", &m));
    CHECK_EQ(m.qos, 1);
    CHECK_EQ(prop_count(m.props, MQLITE_PROP_SUBSCRIPTION_ID), 2);
    uint32_t off = 0;
    mq_prop pr;
    int seen11 = 0, seen222 = 0;
    while (mq_props_next(m.props, &off, &pr)) {
        seen11 |= pr.id == MQLITE_PROP_SUBSCRIPTION_ID && pr.num == 11;
        seen222 |= pr.id == MQLITE_PROP_SUBSCRIPTION_ID && pr.num == 222;
    }
    CHECK(seen11 && seen222);
    ack_publish(s, &m);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&id1);
    pb_free(&id2);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.8.4-3]: a SUBSCRIBE with an identical filter replaces the
   subscription (its QoS and identifier change); 3.3.4: the identifier goes
   with each message the subscription delivers. */
static void test_subscription_identifier_replaced(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s = tc_connect(b, port, MQLITE_V5, "sid", 1);
    pb id = {{0}};
    pb_int(&id, MQLITE_PROP_SUBSCRIPTION_ID, 5);
    CHECK_EQ(tc_subscribe_props(s, "sid/t", 0, 1, pb_view(&id)), 0);
    tc *p = tc_connect(b, port, MQLITE_V5, "sidp", 1);
    tc_publish(p, "sid/t", "a", 1, 0, 1);
    mq_packet m;
    CHECK(tc_expect_msg(s, "sid/t", "a", &m));
    CHECK_EQ(m.qos, 0);
    CHECK_EQ(prop_int(m.props, MQLITE_PROP_SUBSCRIPTION_ID), 5);
    CHECK_EQ(tc_subscribe(s, "sid/t", 1), 1); /* replaced, no identifier now */
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SUBSCRIPTIONS), 1);
    tc_publish(p, "sid/t", "b", 1, 0, 2);
    CHECK(tc_expect_msg(s, "sid/t", "b", &m));
    CHECK_EQ(m.qos, 1);
    CHECK_EQ(prop_int(m.props, MQLITE_PROP_SUBSCRIPTION_ID), -1);
    ack_publish(s, &m);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&id);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.8.3-3]: No Local -> not forwarded to the publisher's own
   connection; others still get it. */
static void test_no_local(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *a = tc_connect(b, port, MQLITE_V5, "nl-a", 1);
    tc *o = tc_connect(b, port, MQLITE_V5, "nl-o", 1);
    CHECK_EQ(tc_subscribe(a, "nl", 0x04 | 1), 1);
    CHECK_EQ(tc_subscribe(o, "nl", 0x04 | 1), 1);
    tc_publish(a, "nl", "mine", 0, 0, 0);
    CHECK(tc_expect_msg(o, "nl", "mine", NULL));
    CHECK(tc_quiet(a));
    tc_disconnect(a);
    tc_disconnect(o);
    mqlite_broker_free(b);
}

/* MQTT 5.0 4.8.2: a shared subscription delivers each message to one
   member of its group, here round-robin; [MQTT-4.8.2-3] at the member's
   granted QoS; a normal subscription on the same filter still gets every
   message; no retained messages are sent to shared subscriptions. */
static void test_shared_subscriptions_round_robin(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *p = tc_connect(b, port, MQLITE_V5, "shp", 1);
    tc_publish(p, "sh/t", "retained", 0, 1, 0);
    tc *m1 = tc_connect(b, port, MQLITE_V5, "sh1", 1);
    tc *m2 = tc_connect(b, port, MQLITE_V311, "sh2", 1);
    tc *all = tc_connect(b, port, MQLITE_V5, "shall", 1);
    CHECK_EQ(tc_subscribe(m1, "$share/g/sh/#", 1), 1);
    CHECK_EQ(tc_subscribe(m2, "$share/g/sh/#", 0), 0);
    CHECK_EQ(tc_subscribe(all, "sh/t", 0), 0);
    CHECK(tc_expect_msg(all, "sh/t", "retained", NULL));
    CHECK(tc_quiet(m1));
    int got1 = 0, got2 = 0;
    for (int i = 0; i < 6; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "m%d", i);
        tc_publish(p, "sh/t", payload, 1, 0, i + 1);
        CHECK(tc_expect_msg(all, "sh/t", payload, NULL));
        mq_packet m;
        tc *first = (i % 2 == 0) ? m1 : m2, *other = first == m1 ? m2 : m1;
        if (tc_recv(first, &m, TC_QUIET * 2) == 0) {
            CHECK(view_is(m.payload, payload));
            CHECK_EQ(m.qos, first == m1 ? 1 : 0);
            ack_publish(first, &m);
            first == m1 ? got1++ : got2++;
        }
        CHECK(tc_quiet(other));
    }
    CHECK_EQ(got1, 3);
    CHECK_EQ(got2, 3);
    tc_disconnect(m1);
    tc_disconnect(m2);
    tc_disconnect(all);
    tc_disconnect(p);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.10.4-2], 5.0 [MQTT-3.10.4-2]: after UNSUBSCRIBE no new
   messages; [MQTT-3.10.4-5]: UNSUBACK even when nothing was removed; 5.0
   3.11.3: 0x00 / 0x11 (No subscription existed) per filter. */
static void test_unsubscribe(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "uns", 1);
        CHECK_EQ(tc_subscribe(c, "u/t", 0), 0);
        mq_packet un = pk(MQLITE_PKT_UNSUBSCRIBE);
        mq_buf list = {0};
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("u/t"), 0, 0);
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("u/never"), 0, 0);
        un.list = mq_view_make(list.p, list.len);
        un.count = 2;
        un.packet_id = 77;
        tc_send(c, &un);
        mq_buf_free(&list, &mq_default_alloc);
        mq_packet k;
        CHECK(tc_expect(c, MQLITE_PKT_UNSUBACK, &k));
        CHECK_EQ(k.packet_id, 77);
        if (v == MQLITE_V5) {
            CHECK_EQ(k.count, 2);
            CHECK_EQ(k.list.p[0], 0x00);
            CHECK_EQ(k.list.p[1], 0x11);
        }
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SUBSCRIPTIONS), 0);
        tc_publish(c, "u/t", "gone", 0, 0, 0);
        CHECK(tc_quiet(c));
        tc_disconnect(c);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.9.3: SUBACK 0xA2 (Wildcard Subscriptions not supported) and
   0x9E (Shared Subscriptions not supported) when disabled; 3.1.1
   [MQTT-3.8.4-5]: 0x80 for a failed filter; subscriptions that are allowed
   in the same packet still succeed. Subscription Identifiers disabled ->
   DISCONNECT 0xA1. */
static void test_subscribe_features_disabled(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_WILDCARD_SUBS, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SHARED_SUBS, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SUBSCRIPTION_IDS, 0);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "feat", 1);
        mq_packet s = pk(MQLITE_PKT_SUBSCRIBE);
        mq_buf list = {0};
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("w/+"), 1, 1);
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("$share/g/x"), 1, 1);
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("plain"), 1, 1);
        s.list = mq_view_make(list.p, list.len);
        s.count = 3;
        s.packet_id = 3;
        tc_send(c, &s);
        mq_buf_free(&list, &mq_default_alloc);
        mq_packet k;
        CHECK(tc_expect(c, MQLITE_PKT_SUBACK, &k));
        CHECK_EQ(k.count, 3);
        CHECK_EQ(k.list.p[0], v == MQLITE_V5 ? 0xA2 : 0x80);
        CHECK_EQ(k.list.p[1], v == MQLITE_V5 ? 0x9E : 0x80);
        CHECK_EQ(k.list.p[2], 1);
        if (v == MQLITE_V5) {
            pb id = {{0}};
            pb_int(&id, MQLITE_PROP_SUBSCRIPTION_ID, 1);
            mq_packet s2 = pk(MQLITE_PKT_SUBSCRIBE);
            mq_buf l2 = {0};
            mq_list_put_filter(&l2, &mq_default_alloc, mq_view_cstr("plain2"), 1, 0);
            s2.list = mq_view_make(l2.p, l2.len);
            s2.count = 1;
            s2.packet_id = 4;
            s2.props = pb_view(&id);
            tc_send(c, &s2);
            int reason;
            CHECK(tc_wait_closed(c, &reason, TC_WAIT));
            CHECK_EQ(reason, 0xA1);
            mq_buf_free(&l2, &mq_default_alloc);
            pb_free(&id);
            tc_free(c);
        } else {
            tc_disconnect(c);
        }
    }
    mqlite_broker_free(b);
}

/* ---- 5.0 properties ---- */

/* MQTT 5.0 3.3.2.3: Payload Format Indicator, Content Type, Response
   Topic, Correlation Data and User Properties (in order, 3.3.2.3.7
   [MQTT-3.3.2-18]) are forwarded unchanged; 3.1.1 subscribers get the
   message without properties. */
static void test_properties_forwarded(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *s5 = tc_connect(b, port, MQLITE_V5, "pf5", 1);
    tc *s4 = tc_connect(b, port, MQLITE_V311, "pf4", 1);
    CHECK_EQ(tc_subscribe(s5, "pf", 1), 1);
    CHECK_EQ(tc_subscribe(s4, "pf", 1), 1);
    tc *p = tc_connect(b, port, MQLITE_V5, "pfp", 1);
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_PAYLOAD_FORMAT, 1);
    pb_str(&props, MQLITE_PROP_CONTENT_TYPE, "text/plain");
    pb_str(&props, MQLITE_PROP_RESPONSE_TOPIC, "pf/reply");
    pb_str(&props, MQLITE_PROP_CORRELATION_DATA, "\x01\x02");
    pb_pair(&props, "k1", "v1");
    pb_pair(&props, "k1", "v2");
    pb_pair(&props, "a", "b");
    mq_packet pub = pk_publish("pf", "body", 1, 0, 1);
    pub.props = pb_view(&props);
    tc_send(p, &pub);
    CHECK(tc_expect(p, MQLITE_PKT_PUBACK, NULL));
    mq_packet m;
    CHECK(tc_expect_msg(s5, "pf", "body", &m));
    CHECK_MEM(m.props.p, m.props.len, props.b.p, props.b.len);
    ack_publish(s5, &m);
    CHECK(tc_expect_msg(s4, "pf", "body", &m));
    CHECK_EQ(m.props.len, 0);
    ack_publish(s4, &m);
    tc_disconnect(s5);
    tc_disconnect(s4);
    tc_disconnect(p);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.3.2-12]: Topic Alias 1..maximum accepted; an alias set
   with a topic resolves later PUBLISHes with an empty topic; the alias is
   not forwarded ([MQTT-3.3.2-7] per connection). [MQTT-3.3.2-9] above the
   maximum / [MQTT-3.3.2-8] 0 -> DISCONNECT 0x94; an alias never set with
   an empty topic -> 0x82 (3.3.2.3.4). */
static void test_topic_alias(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_TOPIC_ALIAS_MAX, 2);
    tc *s = tc_connect(b, port, MQLITE_V5, "tas", 1);
    CHECK_EQ(tc_subscribe(s, "alias/#", 0), 0);
    tc *p = tc_connect(b, port, MQLITE_V5, "tap", 1);
    pb a1 = {{0}};
    pb_int(&a1, MQLITE_PROP_TOPIC_ALIAS, 1);
    mq_packet pub = pk_publish("alias/long/topic", "one", 0, 0, 0);
    pub.props = pb_view(&a1);
    tc_send(p, &pub);
    pub = pk_publish("", "two", 0, 0, 0);
    pub.props = pb_view(&a1);
    tc_send(p, &pub);
    mq_packet m;
    CHECK(tc_expect_msg(s, "alias/long/topic", "one", &m));
    CHECK_EQ(prop_int(m.props, MQLITE_PROP_TOPIC_ALIAS), -1);
    CHECK(tc_expect_msg(s, "alias/long/topic", "two", &m));
    CHECK_EQ(prop_int(m.props, MQLITE_PROP_TOPIC_ALIAS), -1);
    uint32_t bad[] = {3, 0};
    for (int i = 0; i < 2; i++) {
        /* The codec refuses to encode alias 0, so write it by hand. */
        tc *q = tc_connect(b, port, MQLITE_V5, "tabad", 1);
        if (bad[i] == 3) {
            pb a = {{0}};
            pb_int(&a, MQLITE_PROP_TOPIC_ALIAS, bad[i]);
            pub = pk_publish("alias/x", "bad", 0, 0, 0);
            pub.props = pb_view(&a);
            tc_send(q, &pub);
            pb_free(&a);
        } else {
            tc_send_hex(q, "30 0d 00 07 61 6c 69 61 73 2f 78 03 23 00 00");
        }
        int reason;
        CHECK(tc_wait_closed(q, &reason, TC_WAIT));
        CHECK_EQ(reason, 0x94);
        tc_free(q);
    }
    tc *q = tc_connect(b, port, MQLITE_V5, "taunknown", 1);
    pb a2 = {{0}};
    pb_int(&a2, MQLITE_PROP_TOPIC_ALIAS, 2);
    pub = pk_publish("", "unknown", 0, 0, 0);
    pub.props = pb_view(&a2);
    tc_send(q, &pub);
    int reason;
    CHECK(tc_wait_closed(q, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x82);
    tc_free(q);
    /* A new connection does not inherit aliases (MQTT 5.0 [MQTT-3.3.2-7]). */
    tc_disconnect(p);
    p = tc_connect(b, port, MQLITE_V5, "tap", 1);
    pub = pk_publish("", "three", 0, 0, 0);
    pub.props = pb_view(&a1);
    tc_send(p, &pub);
    CHECK(tc_wait_closed(p, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x82);
    tc_free(p);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    pb_free(&a1);
    pb_free(&a2);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-3.2.2-15]: packets over the broker's Maximum Packet Size
   -> DISCONNECT 0x95 (4.13); with 3.1.1 clients the connection is closed.
   5.0 [MQTT-3.1.2-24], [MQTT-3.1.2-25]: a message over the client's
   Maximum Packet Size is not sent to it (and the rest still are). */
static void test_maximum_packet_size(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_PACKET_SIZE, 128);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *c = tc_connect(b, port, v, "mps", 1);
        mq_packet pub = pk_publish("mps", big, 0, 0, 0);
        tc_send(c, &pub);
        int reason;
        CHECK(tc_wait_closed(c, &reason, TC_WAIT));
        CHECK_EQ(reason, v == MQLITE_V5 ? 0x95 : -1);
        tc_free(c);
    }
    mqlite_broker_free(b);

    b = tb_new(&port);
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_MAX_PACKET_SIZE, 64);
    mq_packet cp = pk_connect("small", 1, 60);
    cp.props = pb_view(&props);
    tc *s = tc_connect_pkt(b, port, MQLITE_V5, &cp, 0);
    CHECK_EQ(tc_subscribe(s, "mps/#", 1), 1);
    tc *p = tc_connect(b, port, MQLITE_V5, "mpsp", 1);
    tc_publish(p, "mps/big", big, 1, 0, 1);
    tc_publish(p, "mps/small", "fits", 1, 0, 2);
    mq_packet m;
    CHECK(tc_expect_msg(s, "mps/small", "fits", &m));
    ack_publish(s, &m);
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* MQTT 5.0 3.3.4: more QoS 2 PUBLISHes awaiting PUBREL than the broker's
   Receive Maximum ([MQTT-3.3.4-7] is the client's duty) -> DISCONNECT
   0x93. [MQTT-3.3.4-9]: the broker sends no more unacknowledged QoS 1/2
   PUBLISHes than the client's Receive Maximum; the rest follow as
   acknowledgements come, in order. */
static void test_receive_maximum_both_ways(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_RECEIVE_MAX, 2);
    tc *c = tc_connect(b, port, MQLITE_V5, "rm-in", 1);
    for (int i = 1; i <= 3; i++) {
        mq_packet pub = pk_publish("rm", "x", 2, 0, i);
        tc_send(c, &pub);
    }
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x93);
    tc_free(c);
    mqlite_broker_free(b);

    b = tb_new(&port);
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_RECEIVE_MAX, 2);
    mq_packet cp = pk_connect("rm-out", 1, 60);
    cp.props = pb_view(&props);
    tc *s = tc_connect_pkt(b, port, MQLITE_V5, &cp, 0);
    CHECK_EQ(tc_subscribe(s, "rm", 1), 1);
    tc *p = tc_connect(b, port, MQLITE_V5, "rm-pub", 1);
    for (int i = 1; i <= 5; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        tc_publish(p, "rm", payload, 1, 0, i);
    }
    mq_packet m[5];
    CHECK(tc_expect_msg(s, "rm", "1", &m[0]));
    CHECK(tc_expect_msg(s, "rm", "2", &m[1]));
    CHECK(tc_quiet(s));
    uint16_t pid0 = m[0].packet_id;
    mq_packet ack = pk_ack(MQLITE_PKT_PUBACK, pid0);
    tc_send(s, &ack);
    CHECK(tc_expect_msg(s, "rm", "3", &m[2]));
    CHECK(tc_quiet(s));
    for (int i = 1; i < 5; i++) {
        if (i > 2)
            CHECK(tc_expect_msg(s, "rm", i == 3 ? "4" : "5", &m[i]));
        ack = pk_ack(MQLITE_PKT_PUBACK, m[i].packet_id);
        tc_send(s, &ack);
    }
    CHECK(tc_quiet(s));
    tc_disconnect(s);
    tc_disconnect(p);
    pb_free(&props);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.2-24], 5.0 [MQTT-3.1.2-22]: nothing received for 1.5
   times the Keep Alive -> the connection is closed (5.0: DISCONNECT 0x8D);
   PINGREQ is answered with PINGRESP (3.1.1 [MQTT-3.12.4-1]) and keeps the
   connection alive. */
static void test_keepalive_enforced(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        mq_packet cp = pk_connect("ka", 1, 1);
        tc *c = tc_connect_pkt(b, port, v, &cp, 0);
        uint64_t t0 = tc_now_ms();
        for (int i = 0; i < 4; i++) {
            tb_run(b, 500);
            mq_packet ping = pk(MQLITE_PKT_PINGREQ);
            tc_send(c, &ping);
            CHECK(tc_expect(c, MQLITE_PKT_PINGRESP, NULL));
        }
        CHECK(tc_now_ms() - t0 >= 2000); /* alive beyond 1.5 s thanks to pings */
        t0 = tc_now_ms();
        int reason;
        CHECK(tc_wait_closed(c, &reason, 4000));
        uint64_t waited = tc_now_ms() - t0;
        CHECK(waited >= 1300 && waited < 2600);
        CHECK_EQ(reason, v == MQLITE_V5 ? 0x8D : -1);
        tc_free(c);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 4.2 / 3.1.1 3.1.4: a network connection that never sends CONNECT
   is closed after the connect timeout; the broker keeps serving others. */
static void test_connect_timeout(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_CONNECT_TIMEOUT_MS, 300);
    tc *idle = tc_open(b, port, MQLITE_V311);
    tc *half = tc_open(b, port, MQLITE_V311);
    tc_send_hex(half, "10 0c 00 04"); /* a CONNECT that never completes */
    uint64_t t0 = tc_now_ms();
    mq_packet k;
    CHECK_EQ(tc_recv(idle, &k, TC_WAIT), TC_CLOSED);
    CHECK_EQ(tc_recv(half, &k, TC_WAIT), TC_CLOSED);
    CHECK(tc_now_ms() - t0 >= 250);
    tc_free(idle);
    tc_free(half);
    tc *c = tc_connect(b, port, MQLITE_V311, "after", 1);
    tb_run(b, 500);
    CHECK_EQ(tc_subscribe(c, "t", 0), 0); /* CONNECT in time: no timeout */
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* $SYS: the broker publishes its counters under $SYS/broker/ as retained
   messages; a client PUBLISH to $SYS is not routed (5.0 PUBACK 0x87);
   3.1.1 and 5.0 [MQTT-4.7.2-1]: "#" and "+/..." do not match them. */
static void test_sys_topics(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 1);
    tc *all = tc_connect(b, port, MQLITE_V5, "sys-all", 1);
    CHECK_EQ(tc_subscribe(all, "#", 0), 0);
    CHECK_EQ(tc_subscribe(all, "+/broker/#", 0), 0);
    tb_run(b, 1200); /* a pass has counted this one client */
    tc *s = tc_connect(b, port, MQLITE_V5, "sys", 1);
    CHECK_EQ(tc_subscribe(s, "$SYS/broker/clients/connected", 0), 0);
    mq_packet m;
    CHECK(tc_expect(s, MQLITE_PKT_PUBLISH, &m));
    CHECK_EQ(m.retain, 1);
    CHECK(view_is(m.payload, "1"));
    /* The next pass reports the second client, to the live subscription. */
    CHECK(tc_recv(s, &m, 2500) == 0 && m.type == MQLITE_PKT_PUBLISH);
    CHECK(view_is(m.payload, "2"));
    CHECK_EQ(m.retain, 0);
    CHECK_EQ(tc_subscribe(s, "$SYS/broker/version", 0), 0);
    CHECK(tc_expect(s, MQLITE_PKT_PUBLISH, &m));
    CHECK(m.payload.len > 6 && memcmp(m.payload.p, "mqlite", 6) == 0);
    CHECK(tc_quiet(all));
    mq_packet pub = pk_publish("$SYS/broker/fake", "x", 1, 0, 5), k;
    tc_send(all, &pub);
    CHECK(tc_expect(all, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0x87);
    CHECK_EQ(tc_subscribe(s, "$SYS/broker/fake", 0), 0);
    CHECK(tc_quiet(s));
    tc_disconnect(all);
    tc_disconnect(s);
    mqlite_broker_free(b);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_connect_accepted_all_levels);
    RUN(test_connect_v31_client_ids);
    RUN(test_connect_v311_empty_id_clean0_refused);
    RUN(test_connect_v311_empty_id_assigned);
    RUN(test_connect_v5_assigned_client_identifier);
    RUN(test_connect_unsupported_protocol_level);
    RUN(test_connect_reserved_flag);
    RUN(test_first_packet_must_be_connect);
    RUN(test_second_connect_is_protocol_error);
    RUN(test_connack_v5_properties);
    RUN(test_allow_anonymous_off);
    RUN(test_auth_method_refused);
    RUN(test_takeover);
    RUN(test_session_present);
    RUN(test_qos_end_to_end_with_downgrade);
    RUN(test_max_qos);
    RUN(test_qos2_exactly_once_with_dup_resend);
    RUN(test_pubrel_unknown_id);
    RUN(test_puback_no_matching_subscribers);
    RUN(test_retained_set_replace_clear_v311);
    RUN(test_retained_wildcards);
    RUN(test_retain_handling_v5);
    RUN(test_retain_as_published_v5);
    RUN(test_retained_message_expiry);
    RUN(test_overlapping_subscriptions);
    RUN(test_subscription_identifier_replaced);
    RUN(test_no_local);
    RUN(test_shared_subscriptions_round_robin);
    RUN(test_unsubscribe);
    RUN(test_subscribe_features_disabled);
    RUN(test_properties_forwarded);
    RUN(test_topic_alias);
    RUN(test_maximum_packet_size);
    RUN(test_receive_maximum_both_ways);
    RUN(test_keepalive_enforced);
    RUN(test_connect_timeout);
    RUN(test_sys_topics);
    TEST_MAIN_END();
}
