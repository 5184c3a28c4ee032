/*
 * test_client_sansio.c - the client handle in sans-I/O mode against a
 * scripted server (peer.h), through the public ABI only: what a user of
 * mqlite_client_* sees. CONNECT/CONNACK, packet identifiers, QoS 0/1/2 in
 * both directions, the window and the bounded queue, session resume,
 * SUBSCRIBE/UNSUBSCRIBE, keep-alive, DISCONNECT, bad input from the caller
 * and from the network, topic aliases, byte-split input and tracing, for
 * MQTT 3.1.1 and 5.0 (and 3.1 for CONNECT framing). Each test cites the
 * version and statement it checks (ids as in the spec/ tables of normative statements).
 * Time is the injected clock; nothing sleeps.
 */
#include "peer.h"

static const int versions[] = {MQLITE_V311, MQLITE_V5};
/* Run the block once per version in `versions`, with `v` the level. */
#define FOR_VERSIONS(v)                                                                            \
    for (int v##_i = 0, v = 0; v##_i < (int)MQ_ARRAY_LEN(versions) && ((v = versions[v##_i]), 1);  \
         v##_i++)

/* A client of protocol `v` that went through CONNECT / CONNACK(sp 0). */
static peer *online(int v)
{
    peer *p = peer_new(v, "cli");
    PEER_CONNECT(p, 0);
    return p;
}

/* A client of protocol `v` with Clean Start 0 (5.0: session expiry 600 s),
   connected with CONNACK session present 0. */
static peer *online_persistent(int v)
{
    peer *p = peer_new(v, "cli");
    mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
    if (v == MQLITE_V5)
        mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 600);
    PEER_CONNECT(p, 0);
    return p;
}

/* A 5.0 client connected with CONNACK properties `props`. */
static peer *online5_props(mq_view props)
{
    peer *p = peer_new(MQLITE_V5, "cli");
    CHECK_EQ(mqlite_client_start(p->c), 0);
    PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    mq_packet ack = pk_connack(MQLITE_V5, 0, 0);
    ack.props = props;
    CHECK_EQ(peer_send(p, &ack), 0);
    PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    return p;
}

static int32_t pub(peer *p, const char *topic, const char *payload, int qos)
{
    int32_t pid = -1;
    int32_t rc = mqlite_client_publish(p->c, topic, payload, strlen(payload), qos, 0, &pid);
    if (rc != 0) {
        pr_fail(__LINE__, "publish %s: %s: %s", topic, mqlite_error_name(rc),
                mqlite_client_errmsg(p->c));
        return -1;
    }
    return pid;
}

/* The next packet is PUBLISH with this topic, QoS, id and DUP. */
static void expect_publish_at(peer *p, const char *topic, int qos, int32_t pid, int dup, int line)
{
    const mq_packet *k = peer_expect_at(p, MQLITE_PKT_PUBLISH, line);
    if (!k)
        return;
    tl_checks++;
    if (!pr_view_is(k->topic, topic) || k->qos != qos || (qos && k->packet_id != pid) ||
        k->dup != dup)
        pr_fail(line, "PUBLISH %.*s qos %d id %u dup %d, want %s qos %d id %d dup %d",
                (int)k->topic.len, (const char *)k->topic.p, k->qos, k->packet_id, k->dup, topic,
                qos, (int)pid, dup);
}
#define EXPECT_PUBLISH(p, t, q, id, d) expect_publish_at((p), (t), (q), (id), (d), __LINE__)

/* The next packet is an acknowledgement of `type` for `pid` (5.0: reason). */
static void expect_ack_at(peer *p, int type, int32_t pid, int reason, int line)
{
    const mq_packet *k = peer_expect_at(p, type, line);
    if (!k)
        return;
    tl_checks++;
    if (k->packet_id != pid || k->reason != reason)
        pr_fail(line, "%s id %u reason 0x%02x, want id %d reason 0x%02x",
                mqlite_packet_type_name(type), k->packet_id, k->reason, (int)pid, reason);
}
#define EXPECT_ACK(p, type, id, r) expect_ack_at((p), (type), (id), (r), __LINE__)

/* Server acknowledgements, fed to the client. */
static void srv_ack(peer *p, int type, int32_t pid, int reason)
{
    mq_packet k = pk_ack(p->version, type, (uint16_t)pid, reason);
    CHECK_EQ(peer_send(p, &k), 0);
}

static void srv_publish(peer *p, const char *topic, const char *payload, int qos, uint16_t pid,
                        int dup)
{
    mq_packet k = pk_publish(p->version, topic, payload, qos, pid);
    k.dup = (uint8_t)dup;
    CHECK_EQ(peer_send(p, &k), 0);
}

/* The next event is PUBLISHED for pid with reason and error. */
static void expect_published_at(peer *p, int32_t pid, int reason, int32_t err, int line)
{
    const mqlite_event *e = peer_expect_event_at(p, MQLITE_EVENT_PUBLISHED, line);
    if (!e)
        return;
    tl_checks++;
    if (mqlite_event_packet_id(e) != pid || mqlite_event_reason(e) != reason ||
        mqlite_event_error(e) != err)
        pr_fail(line, "PUBLISHED id %d reason 0x%02x error %s, want id %d reason 0x%02x %s",
                mqlite_event_packet_id(e), mqlite_event_reason(e),
                mqlite_error_name(mqlite_event_error(e)), (int)pid, reason, mqlite_error_name(err));
}
#define EXPECT_PUBLISHED(p, id, r, e) expect_published_at((p), (id), (r), (e), __LINE__)

/* The next event is MESSAGE with this topic, payload and QoS. */
static const mqlite_event *expect_message_at(peer *p, const char *topic, const char *payload,
                                             int qos, int line)
{
    const mqlite_event *e = peer_expect_event_at(p, MQLITE_EVENT_MESSAGE, line);
    if (!e)
        return NULL;
    size_t tl = 0, pl = 0;
    const char *t = mqlite_event_topic(e, &tl);
    const void *pay = mqlite_event_payload(e, &pl);
    tl_checks++;
    if (!t || strcmp(t, topic) != 0 || tl != strlen(topic) || pl != strlen(payload) ||
        memcmp(pay, payload, pl) != 0 || mqlite_event_qos(e) != qos)
        pr_fail(line, "MESSAGE %s \"%.*s\" qos %d, want %s \"%s\" qos %d", t ? t : "(null)",
                (int)pl, pay ? (const char *)pay : "", mqlite_event_qos(e), topic, payload, qos);
    return e;
}
#define EXPECT_MESSAGE(p, t, pl, q) expect_message_at((p), (t), (pl), (q), __LINE__)

/* ======================================================================
 * CONNECT
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-3.1.0-1], [MQTT-3.1.3-3]: the first packet is CONNECT and
   the Client Identifier is the first payload field. Exact bytes with the
   defaults: protocol name "MQTT", level 4, clean session, keep-alive 60. */
static void test_connect_bytes_v311_defaults(void)
{
    peer *p = peer_new(MQLITE_V311, "c1");
    CHECK_EQ(mqlite_client_start(p->c), 0);
    unsigned char exp[64], got[64];
    size_t n = tl_hex("10 0e 00 04 4d 51 54 54 04 02 00 3c 00 02 63 31", exp, sizeof exp);
    size_t g = mqlite_client_take_output(p->c, got, sizeof got);
    CHECK_MEM(got, g, exp, n);
    CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_CONNECTING);
    peer_free(p);
}

/* MQTT 3.1 (protocol level 3) has the protocol name "MQIsdp" (3.1 spec,
   section 3.1; no statement ids): same flags, other framing. */
static void test_connect_bytes_v31_uses_mqisdp(void)
{
    peer *p = peer_new(MQLITE_V31, "c1");
    CHECK_EQ(mqlite_client_start(p->c), 0);
    unsigned char exp[64], got[64];
    size_t n = tl_hex("10 10 00 06 4d 51 49 73 64 70 03 02 00 3c 00 02 63 31", exp, sizeof exp);
    size_t g = mqlite_client_take_output(p->c, got, sizeof got);
    CHECK_MEM(got, g, exp, n);
    /* And a 3.1 CONNACK (no session present flag) connects it. */
    CHECK_EQ(peer_send_hex(p, "20 02 00 00"), 0);
    PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.1.3-3] and 3.1.2.11: level 5, then the CONNECT
   properties (here only the default Topic Alias Maximum 16), then the
   Client Identifier. */
static void test_connect_bytes_v5_defaults(void)
{
    peer *p = peer_new(MQLITE_V5, "c1");
    CHECK_EQ(mqlite_client_start(p->c), 0);
    unsigned char exp[64], got[64];
    size_t n =
        tl_hex("10 12 00 04 4d 51 54 54 05 02 00 3c 03 22 00 10 00 02 63 31", exp, sizeof exp);
    size_t g = mqlite_client_take_output(p->c, got, sizeof got);
    CHECK_MEM(got, g, exp, n);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-3.1.3-1] (field order Client Identifier, Will Topic, Will
   Message, User Name, Password), [MQTT-3.1.2-9], [MQTT-3.1.2-19],
   [MQTT-3.1.2-21]: every flag and field, exact bytes. */
static void test_connect_bytes_v311_will_user_password(void)
{
    peer *p = peer_new(MQLITE_V311, "c1");
    mqlite_client *c = p->c;
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_KEEPALIVE_S, 10), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, "w/t"), 0);
    CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_WILL_PAYLOAD, "bye", 3), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_WILL_QOS, 1), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_WILL_RETAIN, 1), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, "u"), 0);
    CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_PASSWORD, "pw", 2), 0);
    CHECK_EQ(mqlite_client_start(c), 0);
    unsigned char exp[64], got[64];
    size_t n = tl_hex("10 1f 00 04 4d 51 54 54 04 ec 00 0a 00 02 63 31 00 03 77 2f 74 00 03 62 79"
                      " 65 00 01 75 00 02 70 77",
                      exp, sizeof exp);
    size_t g = mqlite_client_take_output(c, got, sizeof got);
    CHECK_MEM(got, g, exp, n);
    peer_free(p);
}

/* MQTT 5.0 3.1.2.11 (CONNECT properties): Session Expiry Interval, Receive
   Maximum, Maximum Packet Size, Topic Alias Maximum, Request Problem /
   Response Information, exact bytes in the order the client writes them. */
static void test_connect_bytes_v5_all_properties(void)
{
    peer *p = peer_new(MQLITE_V5, "c1");
    mqlite_client *c = p->c;
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, 300), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_RECEIVE_MAX, 10), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_MAX_PACKET_SIZE, 1024), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TOPIC_ALIAS_MAX, 5), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_REQUEST_PROBLEM_INFO, 0), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_REQUEST_RESPONSE_INFO, 1), 0);
    CHECK_EQ(mqlite_client_start(c), 0);
    unsigned char exp[64], got[64];
    size_t n = tl_hex("10 23 00 04 4d 51 54 54 05 02 00 3c 14 11 00 00 01 2c 21 00 0a 27 00 00 04"
                      " 00 22 00 05 17 00 19 01 00 02 63 31",
                      exp, sizeof exp);
    size_t g = mqlite_client_take_output(c, got, sizeof got);
    CHECK_MEM(got, g, exp, n);
    peer_free(p);
}

/* Option combinations, decoded as a server decodes them. MQTT 3.1.1
   [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15], [MQTT-3.1.2-18],
   [MQTT-3.1.2-20]; MQTT 5.0 [MQTT-3.1.2-9], [MQTT-3.1.2-11], [MQTT-3.1.2-13],
   [MQTT-3.1.2-16], [MQTT-3.1.2-18]: flags say exactly which fields follow. */
static void test_connect_option_combinations(void)
{
    static const struct {
        int version, clean, keepalive, will_qos /* -1: no will */, will_retain;
        const char *user, *pass;
        uint32_t expiry, receive_max, max_packet, alias_max, will_delay;
    } cases[] = {
        {MQLITE_V31, 1, 60, -1, 0, NULL, NULL, 0, 0, 0, 0, 0},
        {MQLITE_V31, 0, 5, 2, 1, "user", "secret", 0, 0, 0, 0, 0},
        {MQLITE_V311, 1, 0, -1, 0, "user", NULL, 0, 0, 0, 0, 0},
        {MQLITE_V311, 0, 65535, 0, 0, NULL, NULL, 0, 0, 0, 0, 0},
        {MQLITE_V311, 1, 30, 1, 0, "u", "p", 0, 0, 0, 0, 0},
        {MQLITE_V311, 0, 30, 2, 1, "u", "", 0, 0, 0, 0, 0},
        {MQLITE_V5, 1, 60, -1, 0, NULL, NULL, 0, 0, 0, 16, 0},
        {MQLITE_V5, 0, 10, 1, 1, "u", "p", 3600, 20, 4096, 0, 30},
        {MQLITE_V5, 1, 0, 2, 0, NULL, "pw-only", 0xFFFFFFFFu, 1, 128, 65535, 0},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        peer *p = peer_new(cases[i].version, "combo");
        mqlite_client *c = p->c;
        CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, cases[i].clean), 0);
        CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_KEEPALIVE_S, cases[i].keepalive), 0);
        if (cases[i].will_qos >= 0) {
            CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, "will/t"), 0);
            CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_WILL_PAYLOAD, "gone\0x", 6), 0);
            CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_WILL_QOS, cases[i].will_qos), 0);
            CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_WILL_RETAIN, cases[i].will_retain), 0);
        }
        if (cases[i].user)
            CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, cases[i].user), 0);
        if (cases[i].pass)
            CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_PASSWORD, cases[i].pass,
                                             strlen(cases[i].pass)),
                     0);
        if (cases[i].version == MQLITE_V5) {
            CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, cases[i].expiry), 0);
            if (cases[i].receive_max)
                CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_RECEIVE_MAX, cases[i].receive_max), 0);
            CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_MAX_PACKET_SIZE, cases[i].max_packet), 0);
            CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TOPIC_ALIAS_MAX, cases[i].alias_max), 0);
            if (cases[i].will_delay) {
                mqlite_props *wp = mqlite_props_new();
                CHECK_EQ(mqlite_props_add_int(wp, MQLITE_PROP_WILL_DELAY, cases[i].will_delay), 0);
                CHECK_EQ(mqlite_props_add_pair(wp, "k", "v"), 0);
                CHECK_EQ(mqlite_client_set_props(c, MQLITE_OPT_WILL_PROPS, wp), 0);
                mqlite_props_free(wp);
            }
        }
        int rc = mqlite_client_start(c);
        CHECK_EQ(rc, 0);
        if (rc) {
            fprintf(stderr, "case %zu: %s\n", i, mqlite_client_errmsg(c));
            peer_free(p);
            continue;
        }
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        if (k) {
            int before = tl_failures;
            CHECK_EQ(k->version, cases[i].version);
            CHECK_EQ(k->clean_start, cases[i].clean);
            CHECK_EQ(k->keepalive, cases[i].keepalive);
            CHECK(pr_view_is(k->client_id, "combo"));
            CHECK_EQ(k->will, cases[i].will_qos >= 0);
            CHECK_EQ(k->will_qos, cases[i].will_qos >= 0 ? cases[i].will_qos : 0);
            CHECK_EQ(k->will_retain, cases[i].will_qos >= 0 ? cases[i].will_retain : 0);
            if (cases[i].will_qos >= 0) {
                CHECK(pr_view_is(k->will_topic, "will/t"));
                CHECK_MEM(k->will_payload.p, k->will_payload.len, "gone\0x", 6);
            }
            CHECK_EQ(k->has_username, cases[i].user != NULL);
            if (cases[i].user)
                CHECK(pr_view_is(k->username, cases[i].user));
            CHECK_EQ(k->has_password, cases[i].pass != NULL);
            if (cases[i].pass)
                CHECK(pr_view_is(k->password, cases[i].pass));
            if (cases[i].version == MQLITE_V5) {
                CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_SESSION_EXPIRY),
                         cases[i].expiry ? (int64_t)cases[i].expiry : -1);
                CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_RECEIVE_MAX),
                         cases[i].receive_max ? (int64_t)cases[i].receive_max : -1);
                CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_MAX_PACKET_SIZE),
                         cases[i].max_packet ? (int64_t)cases[i].max_packet : -1);
                CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_TOPIC_ALIAS_MAX),
                         cases[i].alias_max ? (int64_t)cases[i].alias_max : -1);
                CHECK_EQ(pr_prop_int(k->will_props, MQLITE_PROP_WILL_DELAY),
                         cases[i].will_delay ? (int64_t)cases[i].will_delay : -1);
            }
            if (tl_failures != before)
                fprintf(stderr, "  (in case %zu)\n", i);
        }
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-3.1.2-22]: no password without a user name in 3.1.1, so
   the client refuses to connect with one and says why; 5.0 allows it
   (3.1.2.9), as the combinations test shows. */
static void test_connect_password_without_user_refused_v311(void)
{
    peer *p = peer_new(MQLITE_V311, "c");
    CHECK_EQ(mqlite_client_set_bytes(p->c, MQLITE_OPT_PASSWORD, "pw", 2), 0);
    int32_t rc = mqlite_client_start(p->c);
    CHECK(rc < 0);
    CHECK_HAS(mqlite_client_errmsg(p->c), "CONNECT");
    CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
    PEER_QUIET(p);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-3.1.3-7]: a zero-byte ClientId needs CleanSession 1, so
   start refuses Clean Start 0 with an empty identifier in 3.1.1 and says
   why; 5.0 (3.1.3.1) lets the server assign one, with either value. */
static void test_connect_empty_client_id_needs_clean_session(void)
{
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        peer *p = peer_new(v, "");
        CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0), 0);
        int32_t rc = mqlite_client_start(p->c);
        if (v == MQLITE_V5) {
            CHECK_EQ(rc, 0);
            const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
            CHECK(k && k->client_id.len == 0 && k->clean_start == 0);
        } else {
            CHECK_EQ(rc, MQLITE_ERR_CLIENT_ID);
            CHECK_HAS(mqlite_client_errmsg(p->c), "[MQTT-3.1.3-7]");
            CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
            PEER_QUIET(p);
            CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 1), 0);
            CHECK_EQ(mqlite_client_start(p->c), 0);
            const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
            CHECK(k && k->client_id.len == 0 && k->clean_start == 1);
        }
        peer_free(p);
    }
}

/* MQTT 3.1 (section 3.1, CONNECT payload; no statement ids): the Client
   Identifier is 1 to 23 characters, so an empty one is refused locally. */
static void test_connect_empty_client_id_refused_v31(void)
{
    for (int clean = 0; clean <= 1; clean++) {
        peer *p = peer_new(MQLITE_V31, "");
        CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, clean), 0);
        CHECK_EQ(mqlite_client_start(p->c), MQLITE_ERR_CLIENT_ID);
        CHECK_HAS(mqlite_client_errmsg(p->c), "1 to 23 characters");
        PEER_QUIET(p);
        peer_free(p);
    }
}

/* ======================================================================
 * CONNACK
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-3.2.2-2]: CONNACK session present is reported in the
   CONNECTED event, for both values. */
static void test_connack_session_present_reported(void)
{
    FOR_VERSIONS(v)
    {
        for (int sp = 0; sp <= 1; sp++) {
            peer *p = peer_new(v, "sp");
            mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
            PEER_CONNECT(p, sp);
            CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_CONNECTED);
            peer_free(p);
        }
    }
}

/* MQTT 5.0 [MQTT-3.2.2-4] (3.1.1 says the same in 3.2.2.2 without an id):
   after Clean Start 1 the client has no session, so a CONNACK with Session
   Present 1 closes the connection (5.0: DISCONNECT 0x82); nothing from the
   old connection is re-sent into it. */
static void test_connack_session_present_after_clean_start_closes(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t a = pub(p, "kept", "x", 1);
        EXPECT_PUBLISH(p, "kept", 1, a, 0);
        peer_cut(p);
        PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        mq_packet ack = pk_connack(v, 1, 0);
        CHECK_EQ(peer_send(p, &ack), MQLITE_ERR_PROTOCOL);
        if (v == MQLITE_V5) {
            const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
            CHECK(d && d->reason == 0x82);
        }
        PEER_QUIET(p);
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECT_FAILED);
        CHECK(e && mqlite_event_error(e) == MQLITE_ERR_PROTOCOL);
        CHECK(e && pr_has(mqlite_event_text(e), "Session Present"));
        PEER_NO_EVENT(p);
        /* A server that answers as it must gets the message as new. */
        PEER_CONNECT(p, 0);
        PEER_EVENT(p, MQLITE_EVENT_PUBLISH_LOST);
        PEER_QUIET(p);
        peer_free(p);
    }
}

/* MQTT 3.1.1 3.2.2.3 Table 3.1 (return codes 1-5; the statement ids of 3.2.2
   bind the server): each refusal is a CONNECT_FAILED event with the return
   code, the words of the table, and MQLITE_ERR_REFUSED. */
static void test_connack_refused_v311_codes(void)
{
    static const struct {
        int code;
        const char *words;
    } cases[] = {
        {1, "unacceptable protocol version"}, {2, "identifier rejected"}, {3, "Server unavailable"},
        {4, "bad user name or password"},     {5, "not authorized"},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        peer *p = peer_new(MQLITE_V311, "r");
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        mq_packet ack = pk_connack(MQLITE_V311, 0, cases[i].code);
        CHECK_EQ(peer_send(p, &ack), MQLITE_ERR_REFUSED);
        CHECK_HAS(mqlite_client_errmsg(p->c), cases[i].words);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECT_FAILED);
        if (e) {
            CHECK_EQ(mqlite_event_reason(e), cases[i].code);
            CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_REFUSED);
            CHECK_HAS(mqlite_event_text(e), cases[i].words);
        }
        /* The transport closes; no second event; the client can start over. */
        peer_cut(p);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.2.2-7] (a CONNACK of 0x80 or more closes the connection)
   and Table 2-6: the reason code, its name and the server's Reason String
   reach the application. */
static void test_connack_refused_v5_reason_codes(void)
{
    static const struct {
        int code;
        const char *words;
    } cases[] = {
        {0x80, "Unspecified error"},
        {0x81, "Malformed Packet"},
        {0x82, "Protocol Error"},
        {0x84, "Unsupported Protocol Version"},
        {0x85, "Client Identifier not valid"},
        {0x86, "Bad User Name or Password"},
        {0x87, "Not authorized"},
        {0x88, "Server unavailable"},
        {0x89, "Server busy"},
        {0x8A, "Banned"},
        {0x8C, "Bad authentication method"},
        {0x95, "Packet too large"},
        {0x97, "Quota exceeded"},
        {0x9C, "Use another server"},
        {0x9F, "Connection rate exceeded"},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        peer *p = peer_new(MQLITE_V5, "r");
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        mq_packet ack = pk_connack(MQLITE_V5, 0, cases[i].code);
        pr_props pp = {0};
        pp_str(&pp, MQLITE_PROP_REASON_STRING, "go away");
        ack.props = pp_view(&pp);
        CHECK_EQ(peer_send(p, &ack), MQLITE_ERR_REFUSED);
        pp_free(&pp);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECT_FAILED);
        if (e) {
            CHECK_EQ(mqlite_event_reason(e), cases[i].code);
            CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_REFUSED);
            CHECK_HAS(mqlite_event_text(e), cases[i].words);
            CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_REASON_STRING), "go away");
        }
        peer_cut(p);
        PEER_NO_EVENT(p);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.2.2-21], [MQTT-3.1.2-21]: the Server Keep Alive replaces
   the client's keep-alive, so PINGREQ comes after the server's interval. */
static void test_connack_server_keepalive_replaces_ours_v5(void)
{
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_SERVER_KEEPALIVE, 5);
    peer *p = online5_props(pp_view(&pp));
    pp_free(&pp);
    CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 5000);
    CHECK_EQ(peer_advance(p, 4999), 0);
    PEER_QUIET(p);
    CHECK_EQ(peer_advance(p, 1), 0);
    PEER_EXPECT(p, MQLITE_PKT_PINGREQ);
    peer_free(p);

    /* A Server Keep Alive of 0 turns keep-alive off. */
    pp_int(&pp, MQLITE_PROP_SERVER_KEEPALIVE, 0);
    p = online5_props(pp_view(&pp));
    pp_free(&pp);
    CHECK_EQ(mqlite_client_next_timeout_ms(p->c), -1);
    CHECK_EQ(peer_advance(p, 3600 * 1000), 0);
    PEER_QUIET(p);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.3.4-7], [MQTT-4.9.0-2]: no more than the server's
   Receive Maximum QoS 1/2 PUBLISH unacknowledged; the rest waits, in order,
   and goes out as acknowledgements come. [MQTT-3.3.4-8]: other packets are
   not held back by the full window. */
static void test_connack_receive_maximum_limits_window_v5(void)
{
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_RECEIVE_MAX, 2);
    peer *p = online5_props(pp_view(&pp));
    pp_free(&pp);
    int32_t id[5];
    for (int i = 0; i < 5; i++) {
        char t[16];
        snprintf(t, sizeof t, "w/%d", i);
        id[i] = pub(p, t, "x", i % 2 ? 2 : 1);
    }
    EXPECT_PUBLISH(p, "w/0", 1, id[0], 0);
    EXPECT_PUBLISH(p, "w/1", 2, id[1], 0);
    PEER_QUIET(p);
    CHECK_EQ(mqlite_client_inflight(p->c), 2);
    CHECK_EQ(mqlite_client_queued(p->c), 3);
    /* A SUBSCRIBE is not a PUBLISH: it goes out now. */
    int32_t sid = 0;
    CHECK_EQ(mqlite_client_subscribe(p->c, "s", 1, &sid), 0);
    PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
    /* PUBREC (success) keeps the QoS 2 flow counting; PUBACK frees a slot. */
    srv_ack(p, MQLITE_PKT_PUBREC, id[1], 0);
    EXPECT_ACK(p, MQLITE_PKT_PUBREL, id[1], 0);
    PEER_QUIET(p);
    srv_ack(p, MQLITE_PKT_PUBACK, id[0], 0);
    EXPECT_PUBLISH(p, "w/2", 1, id[2], 0);
    PEER_QUIET(p);
    srv_ack(p, MQLITE_PKT_PUBCOMP, id[1], 0);
    EXPECT_PUBLISH(p, "w/3", 2, id[3], 0);
    PEER_QUIET(p);
    /* A PUBREC with a failure code ends that flow and frees its slot. */
    srv_ack(p, MQLITE_PKT_PUBREC, id[3], 0x80);
    EXPECT_PUBLISH(p, "w/4", 1, id[4], 0);
    CHECK_EQ(mqlite_client_inflight(p->c), 2);
    CHECK_EQ(mqlite_client_queued(p->c), 0);
    EXPECT_PUBLISHED(p, id[0], 0, 0);
    EXPECT_PUBLISHED(p, id[1], 0, 0);
    EXPECT_PUBLISHED(p, id[3], 0x80, MQLITE_ERR_REFUSED);
    PEER_NO_EVENT(p);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.2.2-11]: above the server's Maximum QoS, publish fails at
   once with a message; a message queued before the CONNACK that is above
   it completes with an error instead of going out. */
static void test_connack_maximum_qos_enforced_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "q");
    int32_t early = pub(p, "early", "x", 2);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    mq_packet ack = pk_connack(MQLITE_V5, 0, 0);
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_MAX_QOS, 1);
    ack.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &ack), 0);
    pp_free(&pp);
    PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    EXPECT_PUBLISHED(p, early, 0, MQLITE_ERR_QOS_NOT_SUPPORTED);
    PEER_QUIET(p);
    int32_t pid = 0;
    CHECK_EQ(mqlite_client_publish(p->c, "t", "x", 1, 2, 0, &pid), MQLITE_ERR_QOS_NOT_SUPPORTED);
    CHECK_HAS(mqlite_client_errmsg(p->c), "Maximum QoS 1");
    CHECK_EQ(mqlite_client_queued(p->c) + mqlite_client_inflight(p->c), 0);
    PEER_QUIET(p);
    int32_t ok1 = pub(p, "t", "x", 1);
    EXPECT_PUBLISH(p, "t", 1, ok1, 0);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.2.2-14]: Retain Available 0 -> no PUBLISH with RETAIN. */
static void test_connack_retain_unavailable_v5(void)
{
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_RETAIN_AVAILABLE, 0);
    peer *p = online5_props(pp_view(&pp));
    pp_free(&pp);
    CHECK_EQ(mqlite_client_publish(p->c, "t", "x", 1, 0, 1, NULL), MQLITE_ERR_RETAIN_NOT_SUPPORTED);
    CHECK_HAS(mqlite_client_errmsg(p->c), "retain");
    PEER_QUIET(p);
    CHECK_EQ(mqlite_client_publish(p->c, "t", "x", 1, 0, 0, NULL), 0);
    EXPECT_PUBLISH(p, "t", 0, 0, 0);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.2.2-15]: the client never sends a packet over the
   server's Maximum Packet Size; a PUBLISH of exactly that size is fine, one
   byte more is refused at once with MQLITE_ERR_TOO_LARGE. */
static void test_connack_maximum_packet_size_v5(void)
{
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_MAX_PACKET_SIZE, 64);
    peer *p = online5_props(pp_view(&pp));
    pp_free(&pp);
    /* QoS 0, topic "t": 1 + 1 (length) + 2 + 1 + 1 (properties) + payload. */
    char big[80];
    memset(big, 'p', sizeof big);
    int32_t rc = mqlite_client_publish(p->c, "t", big, 58, 0, 0, NULL);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", mqlite_client_errmsg(p->c));
    const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    size_t n = 0;
    peer_last_bytes(p, &n);
    CHECK_EQ(n, 64);
    CHECK(k && k->payload.len == 58);
    CHECK_EQ(mqlite_client_publish(p->c, "t", big, 59, 0, 0, NULL), MQLITE_ERR_TOO_LARGE);
    CHECK_HAS(mqlite_client_errmsg(p->c), "Maximum Packet Size");
    /* QoS 1 adds a packet identifier: 60 bytes of payload is 2 too many. */
    CHECK_EQ(mqlite_client_publish(p->c, "t", big, 56, 1, 0, NULL), 0);
    CHECK_EQ(mqlite_client_publish(p->c, "t", big, 57, 1, 0, NULL), MQLITE_ERR_TOO_LARGE);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    PEER_QUIET(p);
    CHECK_EQ(mqlite_client_inflight(p->c), 1);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.2.2-15]: a message queued while disconnected that turns
   out to be over the server's Maximum Packet Size is never sent: QoS 1/2
   complete with MQLITE_ERR_TOO_LARGE, QoS 0 gives an ERROR event. */
static void test_queued_message_over_maximum_packet_size_fails_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "q");
    char big[200];
    memset(big, 'b', sizeof big);
    int32_t pid = 0;
    CHECK_EQ(mqlite_client_publish(p->c, "big1", big, sizeof big, 1, 0, &pid), 0);
    CHECK_EQ(mqlite_client_publish(p->c, "big0", big, sizeof big, 0, 0, NULL), 0);
    int32_t small = pub(p, "small", "s", 1);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    mq_packet ack = pk_connack(MQLITE_V5, 0, 0);
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_MAX_PACKET_SIZE, 100);
    ack.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &ack), 0);
    pp_free(&pp);
    PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    EXPECT_PUBLISH(p, "small", 1, small, 0);
    PEER_QUIET(p);
    EXPECT_PUBLISHED(p, pid, 0, MQLITE_ERR_TOO_LARGE);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_ERROR);
    CHECK(e && mqlite_event_error(e) == MQLITE_ERR_TOO_LARGE);
    CHECK(e && pr_has(mqlite_event_text(e), "Maximum Packet Size"));
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.2.2-16] / [MQTT-3.1.3-7] (the server assigns an
   identifier to an empty one) and [MQTT-3.1.3-2] (the ClientID identifies
   the session): the client reconnects with the assigned identifier. */
static void test_assigned_client_id_reused_on_reconnect_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "");
    mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
    mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 60);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    CHECK(k && k->client_id.len == 0);
    mq_packet ack = pk_connack(MQLITE_V5, 0, 0);
    pr_props pp = {0};
    pp_str(&pp, MQLITE_PROP_ASSIGNED_CLIENT_ID, "auto-7f3a");
    ack.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &ack), 0);
    pp_free(&pp);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    CHECK_STR(e ? pr_event_prop_str(e, MQLITE_PROP_ASSIGNED_CLIENT_ID) : NULL, "auto-7f3a");
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    CHECK(k && pr_view_is(k->client_id, "auto-7f3a"));
    peer_free(p);
}

/* ======================================================================
 * Packet identifiers
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-2.3.1-1], [MQTT-2.3.1-2]; 5.0 [MQTT-2.2.1-3]: non-zero
   and never one still in use. All 65535 identifiers in flight at once, then
   the next publish fails with MQLITE_ERR_NO_PACKET_ID (nothing queued);
   the identifiers freed by acknowledgements are the only ones handed out
   next, found by wrapping around past 65535. */
static void test_packet_ids_fill_all_then_reuse_only_freed(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        uint8_t *seen = calloc(65536, 1);
        int bad = 0;
        for (int i = 0; i < 65535; i++) {
            int32_t pid = 0;
            int32_t rc = mqlite_client_publish(p->c, "ids", "", 0, 1, 0, &pid);
            if (rc != 0 || pid < 1 || pid > 65535 || seen[pid]) {
                if (bad++ < 5)
                    fprintf(stderr, "publish %d: rc %s pid %d dup %d\n", i, mqlite_error_name(rc),
                            (int)pid, pid >= 1 && pid <= 65535 ? seen[pid] : -1);
                continue;
            }
            seen[pid] = 1;
            /* Read what went out every so often; every PUBLISH carries the
             * identifier publish returned, in order. */
            if (i % 1024 == 1023 || i == 65534) {
                const mq_packet *k;
                while ((k = peer_recv(p)) != NULL)
                    if (k->type != MQLITE_PKT_PUBLISH || !seen[k->packet_id])
                        bad++;
            }
        }
        CHECK_EQ(bad, 0);
        CHECK_EQ(mqlite_client_inflight(p->c), 65535);
        int32_t pid = -1;
        CHECK_EQ(mqlite_client_publish(p->c, "ids", "", 0, 1, 0, &pid), MQLITE_ERR_NO_PACKET_ID);
        CHECK_HAS(mqlite_client_errmsg(p->c), "65535");
        CHECK_EQ(mqlite_client_queued(p->c), 0);
        int32_t sid = -1;
        CHECK_EQ(mqlite_client_subscribe(p->c, "s", 0, &sid), MQLITE_ERR_NO_PACKET_ID);
        /* QoS 0 needs no identifier. */
        CHECK_EQ(mqlite_client_publish(p->c, "ids", "", 0, 0, 0, &pid), 0);
        CHECK_EQ(pid, 0);
        PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        static const int32_t freed[] = {65000, 7, 300};
        for (size_t i = 0; i < MQ_ARRAY_LEN(freed); i++) {
            srv_ack(p, MQLITE_PKT_PUBACK, freed[i], 0);
            EXPECT_PUBLISHED(p, freed[i], 0, 0);
        }
        /* Acknowledged twice (a stale PUBACK): nothing happens. */
        srv_ack(p, MQLITE_PKT_PUBACK, 7, 0);
        PEER_NO_EVENT(p);
        static const int32_t want[] = {7, 300, 65000};
        for (size_t i = 0; i < MQ_ARRAY_LEN(want); i++) {
            CHECK_EQ(mqlite_client_publish(p->c, "ids", "", 0, 1, 0, &pid), 0);
            CHECK_EQ(pid, want[i]);
            EXPECT_PUBLISH(p, "ids", 1, want[i], 0);
        }
        CHECK_EQ(mqlite_client_publish(p->c, "ids", "", 0, 1, 0, &pid), MQLITE_ERR_NO_PACKET_ID);
        free(seen);
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-2.3.1-2], 5.0 [MQTT-2.2.1-3]: SUBSCRIBE, UNSUBSCRIBE and
   PUBLISH share the identifier space; an identifier becomes free when its
   acknowledgement arrives (3.1.1 [MQTT-2.3.1-3]) but is not handed out again
   before the others. */
static void test_packet_ids_shared_by_subscribe_and_publish(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t a = pub(p, "a", "1", 1);
        int32_t s = -1;
        CHECK_EQ(mqlite_client_subscribe(p->c, "f", 1, &s), 0);
        int32_t b = pub(p, "b", "2", 2);
        int32_t u = -1;
        CHECK_EQ(mqlite_client_unsubscribe(p->c, "g", &u), 0);
        CHECK_EQ(a, 1);
        CHECK_EQ(s, 2);
        CHECK_EQ(b, 3);
        CHECK_EQ(u, 4);
        CHECK_EQ(mqlite_client_pending(p->c, s), 1);
        CHECK_EQ(mqlite_client_pending(p->c, u), 1);
        srv_ack(p, MQLITE_PKT_PUBACK, a, 0);
        uint8_t granted = 1;
        mq_packet sa = pk_list_ack(v, MQLITE_PKT_SUBACK, (uint16_t)s, &granted, 1);
        CHECK_EQ(peer_send(p, &sa), 0);
        CHECK_EQ(mqlite_client_pending(p->c, a), 0);
        CHECK_EQ(mqlite_client_pending(p->c, s), 0);
        CHECK_EQ(pub(p, "c", "3", 1), 5);
        peer_free(p);
    }
}

/* ======================================================================
 * Outgoing QoS 0 / 1 / 2
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-2.3.1-5], 5.0 [MQTT-2.2.1-2] and [MQTT-3.3.1-2]: QoS 0 is
   one PUBLISH without a packet identifier and DUP 0; nothing comes back and
   no event is made. */
static void test_publish_qos0_one_packet_no_event(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t pid = -1;
        CHECK_EQ(mqlite_client_publish(p->c, "q/0", "zero", 4, 0, 1, &pid), 0);
        CHECK_EQ(pid, 0);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        CHECK(k && k->qos == 0 && k->packet_id == 0 && k->dup == 0 && k->retain == 1 &&
              pr_view_is(k->payload, "zero"));
        PEER_QUIET(p);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_inflight(p->c), 0);
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-4.3.2-1], 5.0 [MQTT-4.3.2-1], [MQTT-4.3.2-2]: QoS 1 is
   PUBLISH (QoS 1, DUP 0, an unused identifier) then PUBACK; the flow ends in
   one PUBLISHED event with the identifier and the reason code. */
static void test_publish_qos1_flow(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t pid = pub(p, "q/1", "one", 1);
        EXPECT_PUBLISH(p, "q/1", 1, pid, 0);
        CHECK_EQ(mqlite_client_pending(p->c, pid), 1);
        CHECK_EQ(mqlite_client_inflight(p->c), 1);
        PEER_NO_EVENT(p);
        srv_ack(p, MQLITE_PKT_PUBACK, pid, 0);
        EXPECT_PUBLISHED(p, pid, 0, 0);
        CHECK_EQ(mqlite_client_pending(p->c, pid), 0);
        CHECK_EQ(mqlite_client_inflight(p->c), 0);
        PEER_QUIET(p);
        peer_free(p);
    }
}

/* MQTT 5.0 3.4.2.1 and [MQTT-4.4.0-2]: a PUBACK reason code is reported; a
   success code below 0x80 (No matching subscribers) is no error, 0x80 and
   above is MQLITE_ERR_REFUSED with the server's Reason String, and the
   message is treated as acknowledged (not re-sent). */
static void test_publish_qos1_puback_reason_codes_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "rc");
    mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
    mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 60);
    PEER_CONNECT(p, 0);
    int32_t a = pub(p, "a", "1", 1), b = pub(p, "b", "2", 1);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    srv_ack(p, MQLITE_PKT_PUBACK, a, 0x10);
    EXPECT_PUBLISHED(p, a, 0x10, 0);
    mq_packet k = pk_ack(MQLITE_V5, MQLITE_PKT_PUBACK, (uint16_t)b, 0x87);
    pr_props pp = {0};
    pp_str(&pp, MQLITE_PROP_REASON_STRING, "not for you");
    k.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &k), 0);
    pp_free(&pp);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_PUBLISHED);
    if (e) {
        CHECK_EQ(mqlite_event_packet_id(e), b);
        CHECK_EQ(mqlite_event_reason(e), 0x87);
        CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_REFUSED);
        CHECK_HAS(mqlite_event_text(e), "Not authorized");
        CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_REASON_STRING), "not for you");
    }
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    PEER_CONNECT(p, 1);
    PEER_QUIET(p);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-4.3.3-1], 5.0 [MQTT-4.3.3-2], [MQTT-4.3.3-4]: QoS 2 is
   PUBLISH, PUBREC, PUBREL (same identifier, flags 0010), PUBCOMP; the
   PUBLISHED event comes with PUBCOMP, not before. */
static void test_publish_qos2_flow(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t pid = pub(p, "q/2", "two", 2);
        EXPECT_PUBLISH(p, "q/2", 2, pid, 0);
        srv_ack(p, MQLITE_PKT_PUBREC, pid, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, pid, 0);
        size_t n = 0;
        const uint8_t *raw = peer_last_bytes(p, &n);
        CHECK(raw && raw[0] == 0x62);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_pending(p->c, pid), 1);
        srv_ack(p, MQLITE_PKT_PUBCOMP, pid, 0);
        EXPECT_PUBLISHED(p, pid, 0, 0);
        CHECK_EQ(mqlite_client_pending(p->c, pid), 0);
        PEER_QUIET(p);
        /* Acknowledgements out of place change nothing: PUBCOMP again,
         * PUBACK for a QoS 2 flow. */
        int32_t q = pub(p, "q/2", "again", 2);
        PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        srv_ack(p, MQLITE_PKT_PUBCOMP, q, 0);
        srv_ack(p, MQLITE_PKT_PUBACK, q, 0);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_pending(p->c, q), 1);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-4.4.0-2], [MQTT-4.3.3-4]: a PUBREC of 0x80 or more ends the
   flow: no PUBREL, a PUBLISHED event with the error, nothing re-sent on
   resume. */
static void test_publish_qos2_pubrec_failure_ends_flow_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "rc");
    mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
    mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 60);
    PEER_CONNECT(p, 0);
    int32_t pid = pub(p, "q/2", "two", 2);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    srv_ack(p, MQLITE_PKT_PUBREC, pid, 0x97);
    PEER_QUIET(p);
    EXPECT_PUBLISHED(p, pid, 0x97, MQLITE_ERR_REFUSED);
    CHECK_EQ(mqlite_client_inflight(p->c), 0);
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    PEER_CONNECT(p, 1);
    PEER_QUIET(p);
    peer_free(p);
}

/* MQTT 5.0 3.7.2.1: PUBCOMP 0x92 (Packet Identifier not found) "is not an
   error during recovery": the server accepted the message with PUBREC 0x00
   and handled the PUBREL before the connection dropped, so the re-sent
   PUBREL is answered with 0x92 and the delivery is still a success. */
static void test_pubcomp_0x92_after_resent_pubrel_is_success_v5(void)
{
    peer *p = online_persistent(MQLITE_V5);
    int32_t pid = pub(p, "t", "x", 2);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    srv_ack(p, MQLITE_PKT_PUBREC, pid, 0);
    EXPECT_ACK(p, MQLITE_PKT_PUBREL, pid, 0);
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    PEER_CONNECT(p, 1);
    EXPECT_ACK(p, MQLITE_PKT_PUBREL, pid, 0);
    srv_ack(p, MQLITE_PKT_PUBCOMP, pid, 0x92);
    EXPECT_PUBLISHED(p, pid, 0x92, 0);
    PEER_NO_EVENT(p);
    peer_free(p);
}

/* ======================================================================
 * Incoming QoS 0 / 1 / 2
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-4.3.2-2], [MQTT-4.3.3-2]; 5.0 [MQTT-3.3.4-1],
   [MQTT-4.3.2-4], [MQTT-4.3.3-8], [MQTT-4.3.3-11]: each QoS is answered as
   the spec says and each message is one MESSAGE event with topic, payload,
   QoS, retain, DUP and identifier. */
static void test_incoming_qos012_delivered_and_acknowledged(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        mq_packet k = pk_publish(v, "in/0", "zero", 0, 0);
        k.retain = 1;
        CHECK_EQ(peer_send(p, &k), 0);
        const mqlite_event *e = EXPECT_MESSAGE(p, "in/0", "zero", 0);
        CHECK(e && mqlite_event_retain(e) == 1 && mqlite_event_packet_id(e) == 0 &&
              mqlite_event_dup(e) == 0);
        PEER_QUIET(p);

        srv_publish(p, "in/1", "one", 1, 10, 0);
        e = EXPECT_MESSAGE(p, "in/1", "one", 1);
        CHECK(e && mqlite_event_packet_id(e) == 10 && mqlite_event_retain(e) == 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBACK, 10, 0);

        srv_publish(p, "in/2", "two", 2, 11, 0);
        EXPECT_MESSAGE(p, "in/2", "two", 2);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 11, 0);
        srv_ack(p, MQLITE_PKT_PUBREL, 11, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBCOMP, 11, 0);
        PEER_NO_EVENT(p);
        PEER_QUIET(p);

        /* An empty payload is a message too. */
        srv_publish(p, "in/e", "", 1, 12, 0);
        e = EXPECT_MESSAGE(p, "in/e", "", 1);
        size_t pl = 99;
        CHECK(e && mqlite_event_payload(e, &pl) && pl == 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBACK, 12, 0);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.3.2-17], [MQTT-3.3.2-4], [MQTT-3.3.2-20]: the message's
   properties reach the application through mqlite_event_props. */
static void test_incoming_message_properties_v5(void)
{
    peer *p = online(MQLITE_V5);
    mq_packet k = pk_publish(MQLITE_V5, "props", "{}", 1, 5);
    pr_props pp = {0};
    pp_int(&pp, MQLITE_PROP_PAYLOAD_FORMAT, 1);
    pp_str(&pp, MQLITE_PROP_CONTENT_TYPE, "application/json");
    pp_str(&pp, MQLITE_PROP_RESPONSE_TOPIC, "reply/here");
    if (mq_props_put_pair(&pp.b, &mq_default_alloc, mq_view_cstr("k1"), mq_view_cstr("v1")) ||
        mq_props_put_pair(&pp.b, &mq_default_alloc, mq_view_cstr("k2"), mq_view_cstr("v2")))
        abort();
    k.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &k), 0);
    pp_free(&pp);
    const mqlite_event *e = EXPECT_MESSAGE(p, "props", "{}", 1);
    if (e) {
        const mqlite_props *pr = mqlite_event_props(e);
        CHECK_EQ(mqlite_props_count(pr), 5);
        CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_CONTENT_TYPE), "application/json");
        CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_RESPONSE_TOPIC), "reply/here");
        int32_t i = mqlite_props_find(pr, MQLITE_PROP_USER, 0);
        CHECK(i >= 0);
        CHECK_STR(mqlite_props_key(pr, i, NULL), "k1");
        i = mqlite_props_find(pr, MQLITE_PROP_USER, i + 1);
        CHECK(i >= 0);
        CHECK_STR(mqlite_props_key(pr, i, NULL), "k2");
        CHECK_STR((const char *)mqlite_props_value(pr, i, NULL), "v2");
    }
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-4.3.3-2]; 5.0 [MQTT-4.3.3-10], [MQTT-4.3.3-12]: until
   PUBREL, a re-sent PUBLISH (DUP 1) with the same identifier is answered
   with PUBREC and not delivered again; after PUBCOMP the identifier starts
   a new message. */
static void test_incoming_qos2_delivered_once_until_pubrel(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        srv_publish(p, "x", "first", 2, 7, 0);
        EXPECT_MESSAGE(p, "x", "first", 2);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7, 0);
        srv_publish(p, "x", "first", 2, 7, 1);
        PEER_NO_EVENT(p);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7, 0);
        srv_publish(p, "x", "first", 2, 7, 1);
        PEER_NO_EVENT(p);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7, 0);
        srv_ack(p, MQLITE_PKT_PUBREL, 7, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBCOMP, 7, 0);
        /* A PUBREL repeated (the PUBCOMP was lost): PUBCOMP again, 5.0 with
         * 0x92 Packet Identifier not found. */
        srv_ack(p, MQLITE_PKT_PUBREL, 7, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBCOMP, 7, v == MQLITE_V5 ? 0x92 : 0);
        srv_publish(p, "x", "second", 2, 7, 0);
        const mqlite_event *e = EXPECT_MESSAGE(p, "x", "second", 2);
        CHECK(e && mqlite_event_dup(e) == 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7, 0);
        PEER_NO_EVENT(p);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-4.3.2-5] (3.1.1 [MQTT-4.3.2-2]): after PUBACK a PUBLISH with
   the same identifier is a new message, whatever its DUP flag. */
static void test_incoming_qos1_same_id_is_new_message(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        srv_publish(p, "y", "a", 1, 3, 0);
        EXPECT_MESSAGE(p, "y", "a", 1);
        EXPECT_ACK(p, MQLITE_PKT_PUBACK, 3, 0);
        srv_publish(p, "y", "a", 1, 3, 1);
        const mqlite_event *e = EXPECT_MESSAGE(p, "y", "a", 1);
        CHECK(e && mqlite_event_dup(e) == 1);
        EXPECT_ACK(p, MQLITE_PKT_PUBACK, 3, 0);
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-4.6.0-2], [MQTT-4.6.0-3]; 5.0 [MQTT-4.6.0-2],
   [MQTT-4.6.0-3]: PUBACK and PUBREC go out in the order the PUBLISH packets
   came in (all in one read). */
static void test_incoming_acks_in_publish_order(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        mq_buf all = {0};
        static const struct {
            int qos;
            uint16_t pid;
        } seq[] = {{1, 40}, {2, 9}, {1, 2}, {2, 65535}, {2, 1}, {1, 300}};
        for (size_t i = 0; i < MQ_ARRAY_LEN(seq); i++) {
            mq_packet k = pk_publish(v, "o", "m", seq[i].qos, seq[i].pid);
            CHECK_EQ(mq_encode_buf(&k, &all, &mq_default_alloc, NULL), 0);
        }
        CHECK_EQ(peer_feed(p, all.p, all.len), 0);
        mq_buf_free(&all, &mq_default_alloc);
        for (size_t i = 0; i < MQ_ARRAY_LEN(seq); i++)
            EXPECT_ACK(p, seq[i].qos == 1 ? MQLITE_PKT_PUBACK : MQLITE_PKT_PUBREC, seq[i].pid, 0);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.3.4-9] (the server must not exceed our Receive Maximum)
   and 3.3.4 / 4.9 (the receiver closes with 0x93 Receive Maximum exceeded
   when it does). A re-sent PUBLISH of a held identifier does not count. */
static void test_incoming_receive_maximum_exceeded_disconnects_0x93_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "rm");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_RECEIVE_MAX, 2), 0);
    const mq_packet *conn = PEER_CONNECT(p, 0);
    CHECK(conn && pr_prop_int(conn->props, MQLITE_PROP_RECEIVE_MAX) == 2);
    srv_publish(p, "r", "1", 2, 1, 0);
    srv_publish(p, "r", "2", 2, 2, 0);
    srv_publish(p, "r", "1", 2, 1, 1);
    /* QoS 1 is acknowledged at once and never fills the window. */
    srv_publish(p, "r", "q1", 1, 50, 0);
    EXPECT_MESSAGE(p, "r", "1", 2);
    EXPECT_MESSAGE(p, "r", "2", 2);
    EXPECT_MESSAGE(p, "r", "q1", 1);
    EXPECT_ACK(p, MQLITE_PKT_PUBREC, 1, 0);
    EXPECT_ACK(p, MQLITE_PKT_PUBREC, 2, 0);
    EXPECT_ACK(p, MQLITE_PKT_PUBREC, 1, 0);
    EXPECT_ACK(p, MQLITE_PKT_PUBACK, 50, 0);
    mq_packet k = pk_publish(MQLITE_V5, "r", "3", 2, 3);
    CHECK_EQ(peer_send(p, &k), MQLITE_ERR_RECEIVE_MAX);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x93);
    char rs[256];
    CHECK(d && pr_prop_str(d->props, MQLITE_PROP_REASON_STRING, rs, sizeof rs) != NULL);
    PEER_NO_EVENT(p);
    peer_cut(p);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    if (e) {
        CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_RECEIVE_MAX);
        CHECK_EQ(mqlite_event_reason(e), 0x93);
        CHECK_HAS(mqlite_event_text(e), "Receive Maximum");
    }
    peer_free(p);
}

/* ======================================================================
 * The outgoing window and the bounded queue
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-4.6.0-1] (order), 5.0 [MQTT-3.3.4-7] (window): with
   MQLITE_OPT_MAX_INFLIGHT 2, publishing more queues the rest; they leave in
   publish order as acknowledgements (in any order) free the window. QoS 0
   behind them waits its turn. */
static void test_publish_beyond_window_queues_in_order(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "win");
        CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_MAX_INFLIGHT, 2), 0);
        PEER_CONNECT(p, 0);
        int32_t id[4];
        id[0] = pub(p, "m/0", "0", 1);
        id[1] = pub(p, "m/1", "1", 2);
        id[2] = pub(p, "m/2", "2", 1);
        CHECK_EQ(mqlite_client_publish(p->c, "m/q0", "z", 1, 0, 0, NULL), 0);
        id[3] = pub(p, "m/3", "3", 2);
        EXPECT_PUBLISH(p, "m/0", 1, id[0], 0);
        EXPECT_PUBLISH(p, "m/1", 2, id[1], 0);
        PEER_QUIET(p);
        CHECK_EQ(mqlite_client_queued(p->c), 3);
        CHECK_EQ(mqlite_client_inflight(p->c), 2);
        srv_ack(p, MQLITE_PKT_PUBREC, id[1], 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, id[1], 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, id[1], 0);
        EXPECT_PUBLISH(p, "m/2", 1, id[2], 0);
        EXPECT_PUBLISH(p, "m/q0", 0, 0, 0);
        PEER_QUIET(p);
        srv_ack(p, MQLITE_PKT_PUBACK, id[0], 0);
        EXPECT_PUBLISH(p, "m/3", 2, id[3], 0);
        EXPECT_PUBLISHED(p, id[1], 0, 0);
        EXPECT_PUBLISHED(p, id[0], 0, 0);
        CHECK_EQ(mqlite_client_queued(p->c), 0);
        peer_free(p);
    }
}

/* Publishing before the connection exists (or while it is down) queues; the
   messages leave after CONNACK, in order, never before it (3.1.1
   [MQTT-3.1.0-1], 5.0 [MQTT-3.1.0-1]: CONNECT first). */
static void test_publish_while_disconnected_queues(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "off");
        CHECK_EQ(mqlite_client_publish(p->c, "d/0", "a", 1, 0, 0, NULL), 0);
        int32_t b = pub(p, "d/1", "b", 1);
        int32_t c = pub(p, "d/2", "c", 2);
        CHECK_EQ(mqlite_client_queued(p->c), 3);
        CHECK_EQ(mqlite_client_pending(p->c, b), 1);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        PEER_QUIET(p);
        mq_packet ack = pk_connack(v, 0, 0);
        CHECK_EQ(peer_send(p, &ack), 0);
        PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
        EXPECT_PUBLISH(p, "d/0", 0, 0, 0);
        EXPECT_PUBLISH(p, "d/1", 1, b, 0);
        EXPECT_PUBLISH(p, "d/2", 2, c, 0);
        PEER_NO_EVENT(p);
        /* Down again: new messages wait for the next connection. */
        srv_ack(p, MQLITE_PKT_PUBACK, b, 0);
        srv_ack(p, MQLITE_PKT_PUBREC, c, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, c, 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, c, 0);
        EXPECT_PUBLISHED(p, b, 0, 0);
        EXPECT_PUBLISHED(p, c, 0, 0);
        peer_cut(p);
        PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        int32_t d = pub(p, "d/3", "d", 1);
        PEER_QUIET(p);
        PEER_CONNECT(p, 0);
        EXPECT_PUBLISH(p, "d/3", 1, d, 0);
        peer_free(p);
    }
}

/* The queue is bounded by count: a full queue is an error with a message
   saying which limit, and nothing is queued (no identifier used up). */
static void test_queue_full_by_count_refuses_and_queues_nothing(void)
{
    peer *p = peer_new(MQLITE_V311, "qf");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_MAX_QUEUED, 3), 0);
    int32_t a = pub(p, "f", "1", 1);
    pub(p, "f", "2", 0);
    int32_t c = pub(p, "f", "3", 2);
    int32_t pid = -7;
    CHECK_EQ(mqlite_client_publish(p->c, "f", "4", 1, 1, 0, &pid), MQLITE_ERR_QUEUE_FULL);
    CHECK_EQ(pid, -7);
    const char *m = mqlite_client_errmsg(p->c);
    CHECK_HAS(m, "queue full");
    CHECK_HAS(m, "3 messages");
    CHECK_HAS(m, "MQLITE_OPT_MAX_QUEUED");
    CHECK_HAS(m, "nothing was queued");
    CHECK_EQ(mqlite_client_queued(p->c), 3);
    CHECK_EQ(mqlite_client_pending(p->c, c + 1), 0);
    PEER_CONNECT(p, 0);
    EXPECT_PUBLISH(p, "f", 1, a, 0);
    EXPECT_PUBLISH(p, "f", 0, 0, 0);
    EXPECT_PUBLISH(p, "f", 2, c, 0);
    /* Sent messages no longer count against the queue. */
    CHECK_EQ(pub(p, "f", "4", 1), c + 1);
    peer_free(p);
}

/* The queue is bounded by bytes (topic + payload + properties). */
static void test_queue_full_by_bytes_refuses_and_queues_nothing(void)
{
    peer *p = peer_new(MQLITE_V5, "qb");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_MAX_QUEUED_BYTES, 12), 0);
    pub(p, "t", "12345", 1);
    pub(p, "t", "1234", 1);
    CHECK_EQ(mqlite_client_publish(p->c, "t", "12", 2, 1, 0, NULL), MQLITE_ERR_QUEUE_FULL);
    CHECK_HAS(mqlite_client_errmsg(p->c), "11 bytes");
    CHECK_HAS(mqlite_client_errmsg(p->c), "MQLITE_OPT_MAX_QUEUED_BYTES");
    CHECK_EQ(mqlite_client_queued(p->c), 2);
    CHECK_EQ(mqlite_client_publish(p->c, "t", "", 0, 1, 0, NULL), 0);
    peer_free(p);
}

/* ======================================================================
 * Session resume
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-4.4.0-1], [MQTT-4.6.0-1], [MQTT-3.3.1-1]; 5.0
   [MQTT-4.4.0-1], [MQTT-4.6.0-1], [MQTT-3.3.1-1]: with the session present,
   the client re-sends the PUBREL of flows past PUBREC and every
   unacknowledged PUBLISH with DUP 1, its original identifier, in the
   original order; nothing is reported lost. */
static void test_resume_resends_dup_publish_and_pubrel_in_order(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "resume");
        mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
        if (v == MQLITE_V5)
            mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 600);
        PEER_CONNECT(p, 0);
        int32_t a = pub(p, "r/a", "A", 1);
        int32_t b = pub(p, "r/b", "B", 2);
        int32_t c = pub(p, "r/c", "C", 2);
        int32_t d = pub(p, "r/d", "D", 1);
        int32_t e = pub(p, "r/e", "E", 2);
        for (int i = 0; i < 5; i++)
            PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        srv_ack(p, MQLITE_PKT_PUBREC, c, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, c, 0);
        srv_ack(p, MQLITE_PKT_PUBREC, e, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, e, 0);
        srv_ack(p, MQLITE_PKT_PUBACK, d, 0);
        EXPECT_PUBLISHED(p, d, 0, 0);
        peer_cut(p);
        const mqlite_event *ev = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        CHECK(ev && mqlite_event_error(ev) == MQLITE_ERR_CONNECTION_LOST);
        CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        CHECK(k && k->clean_start == 0);
        PEER_QUIET(p);
        mq_packet ack = pk_connack(v, 1, 0);
        CHECK_EQ(peer_send(p, &ack), 0);
        PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, c, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, e, 0);
        EXPECT_PUBLISH(p, "r/a", 1, a, 1);
        EXPECT_PUBLISH(p, "r/b", 2, b, 1);
        PEER_QUIET(p);
        PEER_NO_EVENT(p);
        srv_ack(p, MQLITE_PKT_PUBACK, a, 0);
        srv_ack(p, MQLITE_PKT_PUBREC, b, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, b, 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, b, 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, c, 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, e, 0);
        EXPECT_PUBLISHED(p, a, 0, 0);
        EXPECT_PUBLISHED(p, b, 0, 0);
        EXPECT_PUBLISHED(p, c, 0, 0);
        EXPECT_PUBLISHED(p, e, 0, 0);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_inflight(p->c) + mqlite_client_queued(p->c), 0);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.2.2-5] (session state discarded when the server has
   none; 3.1.1 says the same in 3.2.2.2 without an id): every message in
   flight is reported PUBLISH_LOST with its topic, payload and identifier;
   messages never sent go out afresh (DUP 0); no PUBREL is re-sent. */
static void test_resume_without_session_reports_lost_and_sends_queued_afresh(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "lost");
        mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
        mqlite_client_set_int(p->c, MQLITE_OPT_MAX_INFLIGHT, 2);
        PEER_CONNECT(p, 0);
        int32_t a = pub(p, "l/a", "A", 1);
        int32_t b = pub(p, "l/b", "BB", 2);
        int32_t c = pub(p, "l/c", "C", 1);
        CHECK_EQ(mqlite_client_publish(p->c, "l/d", "D", 1, 0, 0, NULL), 0);
        int32_t e = pub(p, "l/e", "E", 2);
        PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
        srv_ack(p, MQLITE_PKT_PUBREC, b, 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, b, 0);
        PEER_QUIET(p);
        peer_cut(p);
        PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        mq_packet ack = pk_connack(v, 0, 0);
        CHECK_EQ(peer_send(p, &ack), 0);
        PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
        /* l/b was past PUBREC: the server owned it, so its flow completes
         * (PUBLISHED, no error); l/a may or may not have arrived: lost. */
        const mqlite_event *done = PEER_EVENT(p, MQLITE_EVENT_PUBLISHED);
        if (done) {
            CHECK_EQ(mqlite_event_packet_id(done), b);
            CHECK_EQ(mqlite_event_error(done), 0);
            CHECK_HAS(mqlite_event_text(done), "PUBREC");
        }
        int seen[2] = {0, 1};
        const mqlite_event *ev = PEER_EVENT(p, MQLITE_EVENT_PUBLISH_LOST);
        if (ev) {
            seen[0]++;
            size_t tl = 0, pl = 0;
            CHECK_STR(mqlite_event_topic(ev, &tl), "l/a");
            CHECK_EQ(tl, 3);
            const void *pay = mqlite_event_payload(ev, &pl);
            CHECK_MEM(pay, pl, "A", 1);
            CHECK_EQ(mqlite_event_packet_id(ev), a);
            CHECK_EQ(mqlite_event_qos(ev), 1);
            CHECK(mqlite_event_error(ev) != 0);
            CHECK_HAS(mqlite_event_text(ev), "may or may not");
        }
        CHECK(seen[0] == 1 && seen[1] == 1);
        PEER_NO_EVENT(p);
        CHECK_EQ(mqlite_client_pending(p->c, a), 0);
        CHECK_EQ(mqlite_client_pending(p->c, b), 0);
        EXPECT_PUBLISH(p, "l/c", 1, c, 0);
        EXPECT_PUBLISH(p, "l/d", 0, 0, 0);
        EXPECT_PUBLISH(p, "l/e", 2, e, 0);
        PEER_QUIET(p);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.2.2-5] / 3.1.1 [MQTT-4.3.3-2]: the incoming QoS 2
   identifiers held for PUBREL belong to the session: kept when the session
   is present (a re-sent PUBLISH is not delivered again), forgotten when it
   is not (the same identifier is a new message). */
static void test_incoming_qos2_ids_follow_the_session(void)
{
    FOR_VERSIONS(v)
    {
        for (int sp = 0; sp <= 1; sp++) {
            peer *p = peer_new(v, "in2");
            mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
            PEER_CONNECT(p, 0);
            srv_publish(p, "h", "held", 2, 21, 0);
            EXPECT_MESSAGE(p, "h", "held", 2);
            EXPECT_ACK(p, MQLITE_PKT_PUBREC, 21, 0);
            peer_cut(p);
            PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
            PEER_CONNECT(p, sp);
            srv_publish(p, "h", "held", 2, 21, 1);
            if (sp)
                PEER_NO_EVENT(p);
            else
                EXPECT_MESSAGE(p, "h", "held", 2);
            EXPECT_ACK(p, MQLITE_PKT_PUBREC, 21, 0);
            srv_ack(p, MQLITE_PKT_PUBREL, 21, 0);
            EXPECT_ACK(p, MQLITE_PKT_PUBCOMP, 21, 0);
            peer_free(p);
        }
    }
}

/* MQLITE_OPT_RESUBSCRIBE (default 1): when a reconnect finds no session, the
   subscriptions the server had granted are sent again (with their 5.0
   subscription identifier), refused and unsubscribed ones are not, and the
   application gets no SUBACK event for them. With the session present, or
   with the option 0, nothing is re-sent. */
static void test_resubscribe_after_session_loss(void)
{
    FOR_VERSIONS(v)
    {
        for (int mode = 0; mode < 3; mode++) { /* 0: sp 0, 1: sp 1, 2: option off */
            peer *p = peer_new(v, "resub");
            mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
            if (mode == 2)
                mqlite_client_set_int(p->c, MQLITE_OPT_RESUBSCRIBE, 0);
            PEER_CONNECT(p, 0);
            mqlite_packet *sub = mqlite_packet_new(MQLITE_PKT_SUBSCRIBE, v, NULL);
            CHECK_EQ(mqlite_packet_add_topic(sub, "keep/#", 1), 0);
            CHECK_EQ(mqlite_packet_add_topic(sub, "refused", 2), 0);
            CHECK_EQ(mqlite_packet_add_topic(sub, "gone", 0), 0);
            if (v == MQLITE_V5) {
                mqlite_props *pr = mqlite_props_new();
                mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 9);
                CHECK_EQ(mqlite_packet_set_props(sub, pr), 0);
                mqlite_props_free(pr);
            }
            int32_t sid = 0;
            CHECK_EQ(mqlite_client_send_packet(p->c, sub, &sid), 0);
            mqlite_packet_free(sub);
            PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
            uint8_t codes[] = {1, 0x80, 0};
            mq_packet sa = pk_list_ack(v, MQLITE_PKT_SUBACK, (uint16_t)sid, codes, 3);
            CHECK_EQ(peer_send(p, &sa), 0);
            PEER_EVENT(p, MQLITE_EVENT_SUBACK);
            int32_t uid = 0;
            CHECK_EQ(mqlite_client_unsubscribe(p->c, "gone", &uid), 0);
            PEER_EXPECT(p, MQLITE_PKT_UNSUBSCRIBE);
            uint8_t ok0 = 0;
            mq_packet ua = pk_list_ack(v, MQLITE_PKT_UNSUBACK, (uint16_t)uid, &ok0, 1);
            CHECK_EQ(peer_send(p, &ua), 0);
            PEER_EVENT(p, MQLITE_EVENT_UNSUBACK);
            peer_cut(p);
            PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
            PEER_CONNECT(p, mode == 1);
            if (mode != 0) {
                PEER_QUIET(p);
                peer_free(p);
                continue;
            }
            const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
            if (k) {
                uint32_t off = 0;
                mq_view f;
                uint8_t opts = 0;
                CHECK_EQ(k->count, 1);
                CHECK(mq_list_next(k, &off, &f, &opts) && pr_view_is(f, "keep/#") && opts == 1);
                if (v == MQLITE_V5)
                    CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_SUBSCRIPTION_ID), 9);
                uint8_t one = 1;
                mq_packet ra = pk_list_ack(v, MQLITE_PKT_SUBACK, k->packet_id, &one, 1);
                CHECK_EQ(peer_send(p, &ra), 0);
            }
            PEER_QUIET(p);
            PEER_NO_EVENT(p);
            peer_free(p);
        }
    }
}

/* ======================================================================
 * SUBSCRIBE / UNSUBSCRIBE
 * ====================================================================== */

/* MQTT 5.0 [MQTT-3.8.3-3] (No Local), [MQTT-3.3.1-13] (Retain As Published),
   [MQTT-3.3.1-10]/[MQTT-3.3.1-11] (Retain Handling), 3.8.2.1.2 (Subscription
   Identifier); [MQTT-2.2.1-6], [MQTT-3.9.3-1]: several filters in one
   SUBSCRIBE, options byte for byte, and a SUBACK event with one reason code
   per filter, in order, with the packet identifier. */
static void test_subscribe_several_filters_options_and_subid_v5(void)
{
    peer *p = online(MQLITE_V5);
    mqlite_packet *sub = mqlite_packet_new(MQLITE_PKT_SUBSCRIBE, MQLITE_V5, NULL);
    CHECK_EQ(mqlite_packet_add_topic(sub, "a/+", 0x01 | 0x04), 0);
    CHECK_EQ(mqlite_packet_add_topic(sub, "b/#", 0x02 | 0x08 | 0x10), 0);
    CHECK_EQ(mqlite_packet_add_topic(sub, "c", 0x00 | 0x20), 0);
    mqlite_props *pr = mqlite_props_new();
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 268435455), 0);
    CHECK_EQ(mqlite_props_add_pair(pr, "who", "test"), 0);
    CHECK_EQ(mqlite_packet_set_props(sub, pr), 0);
    mqlite_props_free(pr);
    int32_t pid = 0;
    CHECK_EQ(mqlite_client_send_packet(p->c, sub, &pid), 0);
    mqlite_packet_free(sub);
    CHECK(pid > 0);
    const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
    if (k) {
        CHECK_EQ(k->packet_id, pid);
        CHECK_EQ(k->count, 3);
        static const char *const filters[] = {"a/+", "b/#", "c"};
        static const uint8_t options[] = {0x05, 0x1a, 0x20};
        uint32_t off = 0;
        mq_view f;
        uint8_t o;
        for (int i = 0; i < 3; i++) {
            CHECK(mq_list_next(k, &off, &f, &o));
            CHECK(pr_view_is(f, filters[i]));
            CHECK_EQ(o, options[i]);
        }
        CHECK_EQ(pr_prop_int(k->props, MQLITE_PROP_SUBSCRIPTION_ID), 268435455);
    }
    uint8_t codes[] = {0x01, 0x02, 0x87};
    mq_packet sa = pk_list_ack(MQLITE_V5, MQLITE_PKT_SUBACK, (uint16_t)pid, codes, 3);
    pr_props pp = {0};
    pp_str(&pp, MQLITE_PROP_REASON_STRING, "c is private");
    sa.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &sa), 0);
    pp_free(&pp);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_SUBACK);
    if (e) {
        CHECK_EQ(mqlite_event_packet_id(e), pid);
        CHECK_EQ(mqlite_event_count(e), 3);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(mqlite_event_reason_at(e, i), codes[i]);
        CHECK_EQ(mqlite_event_reason_at(e, 3), MQLITE_ERR_RANGE);
        CHECK_HAS(mqlite_event_text(e), "refused");
        CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_REASON_STRING), "c is private");
    }
    CHECK_EQ(mqlite_client_pending(p->c, pid), 0);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-3.8.4-5], [MQTT-3.9.3-1], [MQTT-3.8.4-2]: a 3.1.1 SUBSCRIBE
   with several filters (QoS only in the options) and its SUBACK codes. */
static void test_subscribe_several_filters_v311(void)
{
    peer *p = online(MQLITE_V311);
    mqlite_packet *sub = mqlite_packet_new(MQLITE_PKT_SUBSCRIBE, MQLITE_V311, NULL);
    CHECK_EQ(mqlite_packet_add_topic(sub, "x/#", 0), 0);
    CHECK_EQ(mqlite_packet_add_topic(sub, "+/y", 1), 0);
    CHECK_EQ(mqlite_packet_add_topic(sub, "z", 2), 0);
    int32_t pid = 0;
    CHECK_EQ(mqlite_client_send_packet(p->c, sub, &pid), 0);
    mqlite_packet_free(sub);
    const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
    CHECK(k && k->count == 3 && k->packet_id == pid);
    uint8_t codes[] = {0x00, 0x01, 0x80};
    mq_packet sa = pk_list_ack(MQLITE_V311, MQLITE_PKT_SUBACK, (uint16_t)pid, codes, 3);
    CHECK_EQ(peer_send(p, &sa), 0);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_SUBACK);
    if (e) {
        CHECK_EQ(mqlite_event_count(e), 3);
        CHECK_EQ(mqlite_event_reason_at(e, 0), 0);
        CHECK_EQ(mqlite_event_reason_at(e, 1), 1);
        CHECK_EQ(mqlite_event_reason_at(e, 2), 0x80);
    }
    /* One filter through mqlite_client_subscribe. */
    CHECK_EQ(mqlite_client_subscribe(p->c, "one", 2, &pid), 0);
    k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
    CHECK(k && k->count == 1 && k->packet_id == pid);
    uint8_t two = 2;
    sa = pk_list_ack(MQLITE_V311, MQLITE_PKT_SUBACK, (uint16_t)pid, &two, 1);
    CHECK_EQ(peer_send(p, &sa), 0);
    e = PEER_EVENT(p, MQLITE_EVENT_SUBACK);
    CHECK(e && mqlite_event_count(e) == 1 && mqlite_event_reason_at(e, 0) == 2);
    CHECK(e && pr_has(mqlite_event_text(e), "acknowledged"));
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-3.10.4-4]; 5.0 [MQTT-3.10.4-5], [MQTT-3.11.3-1]:
   UNSUBSCRIBE and UNSUBACK with the same identifier; 5.0 carries one reason
   code per filter, 3.1.1 none. */
static void test_unsubscribe_and_unsuback_codes(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        mqlite_packet *un = mqlite_packet_new(MQLITE_PKT_UNSUBSCRIBE, v, NULL);
        CHECK_EQ(mqlite_packet_add_topic(un, "a/+", 0), 0);
        CHECK_EQ(mqlite_packet_add_topic(un, "never", 0), 0);
        int32_t pid = 0;
        CHECK_EQ(mqlite_client_send_packet(p->c, un, &pid), 0);
        mqlite_packet_free(un);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_UNSUBSCRIBE);
        CHECK(k && k->count == 2 && k->packet_id == pid);
        uint8_t codes[] = {0x00, 0x11};
        mq_packet ua = pk_list_ack(v, MQLITE_PKT_UNSUBACK, (uint16_t)pid, codes, 2);
        CHECK_EQ(peer_send(p, &ua), 0);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_UNSUBACK);
        if (e) {
            CHECK_EQ(mqlite_event_packet_id(e), pid);
            if (v == MQLITE_V5) {
                CHECK_EQ(mqlite_event_count(e), 2);
                CHECK_EQ(mqlite_event_reason_at(e, 1), 0x11);
            } else {
                CHECK_EQ(mqlite_event_count(e), 0);
            }
        }
        int32_t u1 = 0;
        CHECK_EQ(mqlite_client_unsubscribe(p->c, "one/#", &u1), 0);
        k = PEER_EXPECT(p, MQLITE_PKT_UNSUBSCRIBE);
        CHECK(k && k->count == 1 && k->packet_id == u1);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.9.3-2] / 3.1.1 [MQTT-3.8.4-5]: one code per filter; a
   SUBACK whose count does not match the SUBSCRIBE is a protocol error. */
static void test_suback_wrong_count_is_protocol_error(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int32_t pid = 0;
        CHECK_EQ(mqlite_client_subscribe(p->c, "a", 1, &pid), 0);
        PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
        uint8_t codes[] = {1, 1};
        mq_packet sa = pk_list_ack(v, MQLITE_PKT_SUBACK, (uint16_t)pid, codes, 2);
        CHECK_EQ(peer_send(p, &sa), MQLITE_ERR_PROTOCOL);
        if (v == MQLITE_V5) {
            const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
            CHECK(d && d->reason == 0x82);
        } else {
            PEER_QUIET(p);
        }
        PEER_NO_EVENT(p);
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        CHECK(e && mqlite_event_error(e) == MQLITE_ERR_PROTOCOL);
        CHECK(e && pr_has(mqlite_event_text(e), "wrong number of codes"));
        peer_free(p);
    }
}

/* A SUBSCRIBE made after start but before CONNACK waits for the CONNACK
   (3.1.1 [MQTT-3.1.0-1], 5.0 [MQTT-3.1.0-1]: CONNECT goes first) and is then
   sent; its SUBACK comes as usual. */
static void test_subscribe_before_connack_is_held(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "early");
        CHECK_EQ(mqlite_client_start(p->c), 0);
        int32_t pid = 0;
        CHECK_EQ(mqlite_client_subscribe(p->c, "e/#", 1, &pid), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        PEER_QUIET(p);
        mq_packet ack = pk_connack(v, 0, 0);
        CHECK_EQ(peer_send(p, &ack), 0);
        PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
        CHECK(k && k->packet_id == pid);
        uint8_t one = 1;
        mq_packet sa = pk_list_ack(v, MQLITE_PKT_SUBACK, (uint16_t)pid, &one, 1);
        CHECK_EQ(peer_send(p, &sa), 0);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_SUBACK);
        CHECK(e && mqlite_event_packet_id(e) == pid);
        peer_free(p);
    }
}

/* A SUBSCRIBE sent but unacknowledged when the connection drops is sent
   again on the next connection, with the same identifier (3.1.1
   [MQTT-2.3.1-3]: a re-sent packet keeps its identifier). */
static void test_unacknowledged_subscribe_resent_after_reconnect(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online_persistent(v);
        int32_t pid = 0;
        CHECK_EQ(mqlite_client_subscribe(p->c, "again", 0, &pid), 0);
        PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
        peer_cut(p);
        PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        PEER_CONNECT(p, 1);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
        CHECK(k && k->packet_id == pid);
        peer_free(p);
    }
}

/* Bad requests are refused with a code and a message naming the rule:
   MQTT 3.1.1 [MQTT-4.7.1-2], [MQTT-4.7.1-3], 5.0 [MQTT-4.7.1-1],
   [MQTT-4.7.1-2], [MQTT-4.8.2-1], [MQTT-3.8.3-4] (No Local on a shared
   subscription), subscription options QoS 3, and the state rules. */
static void test_subscribe_bad_requests_refused_with_message(void)
{
    peer *p = online(MQLITE_V5);
    int32_t pid = -5;
    CHECK_EQ(mqlite_client_subscribe(p->c, "a/#/b", 0, &pid), MQLITE_ERR_TOPIC_FILTER);
    CHECK_HAS(mqlite_client_errmsg(p->c), "'#' must be the last");
    CHECK_HAS(mqlite_client_errmsg(p->c), "a/#/b");
    CHECK_EQ(mqlite_client_subscribe(p->c, "a+", 0, &pid), MQLITE_ERR_TOPIC_FILTER);
    CHECK_HAS(mqlite_client_errmsg(p->c), "'+' must occupy an entire level");
    CHECK_EQ(mqlite_client_subscribe(p->c, "", 0, &pid), MQLITE_ERR_TOPIC_FILTER);
    CHECK_HAS(mqlite_client_errmsg(p->c), "at least one character");
    CHECK_EQ(mqlite_client_subscribe(p->c, "$share//x", 0, &pid), MQLITE_ERR_TOPIC_FILTER);
    CHECK_HAS(mqlite_client_errmsg(p->c), "ShareName");
    CHECK_EQ(mqlite_client_subscribe(p->c, NULL, 0, &pid), MQLITE_ERR_TOPIC_FILTER);
    CHECK(mqlite_client_subscribe(p->c, "q3", 3, &pid) < 0);
    CHECK_HAS(mqlite_client_errmsg(p->c), "SUBSCRIBE");
    CHECK(mqlite_client_subscribe(p->c, "$share/g/x", 0x04, &pid) < 0);
    CHECK_HAS(mqlite_client_errmsg(p->c), "SUBSCRIBE");
    CHECK_EQ(mqlite_client_subscribe(p->c, "x", 256, &pid), MQLITE_ERR_RANGE);
    CHECK_EQ(pid, -5);
    PEER_QUIET(p);
    mqlite_packet *wrong = mqlite_packet_new(MQLITE_PKT_PUBLISH, MQLITE_V5, NULL);
    CHECK_EQ(mqlite_client_send_packet(p->c, wrong, &pid), MQLITE_ERR_INVALID);
    CHECK_HAS(mqlite_client_errmsg(p->c), "SUBSCRIBE or UNSUBSCRIBE");
    mqlite_packet_free(wrong);
    wrong = mqlite_packet_new(MQLITE_PKT_SUBSCRIBE, MQLITE_V311, NULL);
    mqlite_packet_add_topic(wrong, "x", 0);
    CHECK_EQ(mqlite_client_send_packet(p->c, wrong, &pid), MQLITE_ERR_INVALID);
    CHECK_HAS(mqlite_client_errmsg(p->c), "protocol level");
    mqlite_packet_free(wrong);
    wrong = mqlite_packet_new(MQLITE_PKT_SUBSCRIBE, MQLITE_V5, NULL);
    CHECK(mqlite_client_send_packet(p->c, wrong, &pid) < 0); /* no filter */
    CHECK_HAS(mqlite_client_errmsg(p->c), "SUBSCRIBE");
    mqlite_packet_free(wrong);
    CHECK_EQ(mqlite_client_send_packet(p->c, NULL, &pid), MQLITE_ERR_INVALID);
    CHECK_EQ(pid, -5);
    PEER_QUIET(p);
    peer_free(p);

    /* Not started: nothing to subscribe on. */
    p = peer_new(MQLITE_V311, "idle");
    CHECK_EQ(mqlite_client_subscribe(p->c, "x", 0, &pid), MQLITE_ERR_NOT_CONNECTED);
    CHECK_HAS(mqlite_client_errmsg(p->c), "not connected");
    peer_free(p);
}

/* ======================================================================
 * Keep-alive and timeouts
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-3.1.2-23], 5.0 [MQTT-3.1.2-20]: PINGREQ when nothing was
   sent for the keep-alive; the deadline is what next_timeout_ms reports. No
   PINGRESP within the ping timeout (default: the keep-alive): the
   connection is declared lost with MQLITE_ERR_KEEPALIVE. */
static void test_keepalive_pingreq_then_lost_without_pingresp(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "ka");
        CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_KEEPALIVE_S, 10), 0);
        PEER_CONNECT(p, 0);
        CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 10000);
        CHECK_EQ(peer_advance(p, 9999), 0);
        PEER_QUIET(p);
        CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 1);
        CHECK_EQ(peer_advance(p, 1), 0);
        PEER_EXPECT(p, MQLITE_PKT_PINGREQ);
        PEER_QUIET(p);
        CHECK_EQ(peer_advance(p, 500), 0);
        CHECK_EQ(peer_send_hex(p, "d0 00"), 0);
        PEER_NO_EVENT(p);
        /* The next one is a keep-alive after the last PINGREQ. */
        CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 9500);
        CHECK_EQ(peer_advance(p, 9499), 0);
        PEER_QUIET(p);
        CHECK_EQ(peer_advance(p, 1), 0);
        PEER_EXPECT(p, MQLITE_PKT_PINGREQ);
        /* No answer this time. */
        CHECK_EQ(peer_advance(p, 9999), 0);
        PEER_QUIET(p);
        CHECK_EQ(peer_advance(p, 1), MQLITE_ERR_KEEPALIVE);
        CHECK_HAS(mqlite_client_errmsg(p->c), "no PINGRESP within 10000 ms");
        PEER_QUIET(p); /* 5.0 too: the server is gone, no DISCONNECT */
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        if (e) {
            CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_KEEPALIVE);
            CHECK_HAS(mqlite_event_text(e), "no PINGRESP");
        }
        CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-3.1.2-23], 5.0 [MQTT-3.1.2-20]: the PINGREQ is due a
   keep-alive after the last packet sent (here a PUBLISH; receiving its
   PUBACK later does not postpone it). MQLITE_OPT_PING_TIMEOUT_MS shortens
   the wait for PINGRESP. */
static void test_keepalive_ping_timeout_option(void)
{
    peer *p = peer_new(MQLITE_V311, "kb");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_KEEPALIVE_S, 4), 0);
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_PING_TIMEOUT_MS, 1500), 0);
    PEER_CONNECT(p, 0);
    CHECK_EQ(peer_advance(p, 3000), 0);
    int32_t pid = pub(p, "k", "v", 1);
    PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    CHECK_EQ(peer_advance(p, 500), 0);
    srv_ack(p, MQLITE_PKT_PUBACK, pid, 0);
    /* Last sent 3 s in: the PINGREQ is due at 7 s, 3.5 s from now. */
    CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 3500);
    CHECK_EQ(peer_advance(p, 3499), 0);
    PEER_QUIET(p);
    CHECK_EQ(peer_advance(p, 1), 0);
    PEER_EXPECT(p, MQLITE_PKT_PINGREQ);
    CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 1500);
    CHECK_EQ(peer_advance(p, 1499), 0);
    CHECK_EQ(peer_advance(p, 1), MQLITE_ERR_KEEPALIVE);
    CHECK_HAS(mqlite_client_errmsg(p->c), "1500 ms");
    peer_free(p);
}

/* Keep-alive 0 turns the mechanism off (3.1.1 3.1.2.10, 5.0 3.1.2.10). */
static void test_keepalive_zero_never_pings(void)
{
    peer *p = peer_new(MQLITE_V5, "k0");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_KEEPALIVE_S, 0), 0);
    PEER_CONNECT(p, 0);
    CHECK_EQ(mqlite_client_next_timeout_ms(p->c), -1);
    CHECK_EQ(peer_advance(p, 86400000), 0);
    PEER_QUIET(p);
    peer_free(p);
}

/* No CONNACK within MQLITE_OPT_CONNECT_TIMEOUT_MS: the attempt fails with
   MQLITE_ERR_TIMEOUT and an event that says so. */
static void test_connack_timeout(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = peer_new(v, "slow");
        CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 3000), 0);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        CHECK_EQ(mqlite_client_next_timeout_ms(p->c), 3000);
        CHECK_EQ(peer_advance(p, 2999), 0);
        CHECK_EQ(peer_advance(p, 1), MQLITE_ERR_TIMEOUT);
        CHECK_HAS(mqlite_client_errmsg(p->c), "no CONNACK within 3000 ms");
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECT_FAILED);
        if (e) {
            CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_TIMEOUT);
            CHECK_HAS(mqlite_event_text(e), "no CONNACK within 3000 ms");
        }
        PEER_NO_EVENT(p);
        peer_free(p);
    }
}

/* ======================================================================
 * DISCONNECT
 * ====================================================================== */

/* MQTT 5.0 [MQTT-3.14.2-1], [MQTT-3.14.4-1]; 3.1.1 [MQTT-3.14.4-2]: a
   graceful DISCONNECT (5.0 with its reason code), after which nothing more
   is sent on that connection; the transport closing then is the normal end
   (DISCONNECTED, error 0). Queued messages stay for the next connection. */
static void test_graceful_disconnect(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online(v);
        int reason = v == MQLITE_V5 ? 0x04 : 0;
        CHECK_EQ(mqlite_client_disconnect(p->c, reason), 0);
        CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_DISCONNECTING);
        unsigned char got[16];
        size_t n = mqlite_client_take_output(p->c, got, sizeof got);
        if (v == MQLITE_V5)
            CHECK_MEM(got, n, "\xe0\x01\x04", 3);
        else
            CHECK_MEM(got, n, "\xe0\x00", 2);
        int32_t pid = pub(p, "after", "x", 1);
        PEER_QUIET(p);
        CHECK_EQ(mqlite_client_disconnect(p->c, 0), MQLITE_ERR_NOT_CONNECTED);
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        if (e) {
            CHECK_EQ(mqlite_event_error(e), 0);
            CHECK_EQ(mqlite_event_reason(e), reason);
        }
        CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
        PEER_CONNECT(p, 0);
        EXPECT_PUBLISH(p, "after", 1, pid, 0);
        peer_free(p);
    }
}

/* MQTT 3.1.1 [MQTT-3.14.4-2], 5.0 [MQTT-3.14.4-1]: after its DISCONNECT the
   client sends nothing more on that connection, also when packets the
   server sent before it saw the DISCONNECT still arrive: a QoS 1/2 message
   is handed to the application but not acknowledged, and a PUBREC gets no
   PUBREL there; the next connection (session present) settles both. */
static void test_nothing_sent_after_own_disconnect(void)
{
    FOR_VERSIONS(v)
    {
        peer *p = online_persistent(v);
        int32_t pid = pub(p, "out", "o", 2);
        EXPECT_PUBLISH(p, "out", 2, pid, 0);
        CHECK_EQ(mqlite_client_disconnect(p->c, 0), 0);
        PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
        srv_publish(p, "late/1", "a", 1, 31, 0);
        srv_publish(p, "late/2", "b", 2, 32, 0);
        srv_ack(p, MQLITE_PKT_PUBREC, pid, 0);
        PEER_QUIET(p);
        EXPECT_MESSAGE(p, "late/1", "a", 1);
        EXPECT_MESSAGE(p, "late/2", "b", 2);
        PEER_NO_EVENT(p);
        peer_cut(p);
        PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
        PEER_CONNECT(p, 1);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, pid, 0);
        srv_ack(p, MQLITE_PKT_PUBCOMP, pid, 0);
        EXPECT_PUBLISHED(p, pid, 0, 0);
        srv_publish(p, "late/1", "a", 1, 31, 1); /* at least once */
        EXPECT_MESSAGE(p, "late/1", "a", 1);
        EXPECT_ACK(p, MQLITE_PKT_PUBACK, 31, 0);
        srv_publish(p, "late/2", "b", 2, 32, 1); /* exactly once */
        PEER_NO_EVENT(p);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 32, 0);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.14.2-1]: only DISCONNECT reason codes; 0x05 is not one. */
static void test_disconnect_bad_reason_or_state_refused(void)
{
    peer *p = online(MQLITE_V5);
    CHECK_EQ(mqlite_client_disconnect(p->c, 0x05), MQLITE_ERR_RANGE);
    CHECK_HAS(mqlite_client_errmsg(p->c), "0x05 is not a DISCONNECT reason code");
    CHECK_EQ(mqlite_client_disconnect(p->c, 256), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_CONNECTED);
    PEER_QUIET(p);
    peer_free(p);
    p = peer_new(MQLITE_V5, "idle");
    CHECK_EQ(mqlite_client_disconnect(p->c, 0), MQLITE_ERR_NOT_CONNECTED);
    CHECK_HAS(mqlite_client_errmsg(p->c), "not connected");
    peer_free(p);
}

/* MQTT 5.0 3.14.2.1 (server DISCONNECT reason codes) and 3.14.2.2.3 (Reason
   String): the server's DISCONNECT ends the connection with an event that
   carries its reason code, its name and the Reason String; the client sends
   nothing back ([MQTT-3.14.4-1] binds the sender). */
static void test_server_disconnect_v5_reports_reason_and_string(void)
{
    peer *p = online(MQLITE_V5);
    mq_packet d = pk_new(MQLITE_PKT_DISCONNECT, MQLITE_V5);
    d.reason = 0x8B;
    pr_props pp = {0};
    pp_str(&pp, MQLITE_PROP_REASON_STRING, "maintenance");
    d.props = pp_view(&pp);
    CHECK_EQ(peer_send(p, &d), MQLITE_ERR_CLOSED);
    pp_free(&pp);
    PEER_QUIET(p);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    if (e) {
        CHECK_EQ(mqlite_event_reason(e), 0x8B);
        CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_CLOSED);
        CHECK_HAS(mqlite_event_text(e), "Server shutting down");
        CHECK_STR(pr_event_prop_str(e, MQLITE_PROP_REASON_STRING), "maintenance");
    }
    peer_cut(p);
    PEER_NO_EVENT(p);
    CHECK_EQ(mqlite_client_state(p->c), MQLITE_STATE_IDLE);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.14.2-2]: the server must not send a Session Expiry
   Interval in DISCONNECT: the client treats it as a protocol error (0x82). */
static void test_server_disconnect_with_session_expiry_is_protocol_error_v5(void)
{
    peer *p = online(MQLITE_V5);
    CHECK_EQ(peer_send_hex(p, "e0 07 00 05 11 00 00 00 0a"), MQLITE_ERR_PROTOCOL);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x82);
    peer_cut(p);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    CHECK(e && mqlite_event_error(e) == MQLITE_ERR_PROTOCOL);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-4.8.0-1] (and 2.2.1: DISCONNECT is client to server only):
   a DISCONNECT from a 3.1.1 server is a protocol violation; the client closes
   without a packet of its own and says why. */
static void test_server_disconnect_v311_is_protocol_violation(void)
{
    peer *p = online(MQLITE_V311);
    CHECK_EQ(peer_send_hex(p, "e0 00"), MQLITE_ERR_UNEXPECTED_PACKET);
    PEER_QUIET(p);
    peer_cut(p);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    if (e) {
        CHECK_EQ(mqlite_event_error(e), MQLITE_ERR_UNEXPECTED_PACKET);
        CHECK_HAS(mqlite_event_text(e), "DISCONNECT");
    }
    peer_free(p);
}

/* ======================================================================
 * Bad input from the caller
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-4.7.1-1], [MQTT-4.7.3-1], [MQTT-1.5.3-1], [MQTT-3.3.1-4];
   5.0 [MQTT-4.7.0-1], [MQTT-4.7.3-1], [MQTT-1.5.4-1], [MQTT-3.3.1-4],
   [MQTT-3.3.4-6] (no Subscription Identifier from a client),
   [MQTT-3.2.2-18] (no Topic Alias when none was granted): each bad publish
   returns its code, a message naming the problem, and queues nothing. */
static void test_publish_bad_input_refused_with_message(void)
{
    enum {
        P_NONE,
        P_SUBID,
        P_ALIAS,
        P_EXPIRY_S,
        P_USER
    };
    static const struct {
        int version;
        const char *topic;
        int qos, props;
        int32_t code;
        const char *words;
    } cases[] = {
        {MQLITE_V311, "", 0, P_NONE, MQLITE_ERR_TOPIC_NAME, "at least one character"},
        {MQLITE_V5, "a/+/b", 1, P_NONE, MQLITE_ERR_TOPIC_NAME, "wildcard"},
        {MQLITE_V311, "a/#", 0, P_NONE, MQLITE_ERR_TOPIC_NAME,
         "must not be used within a Topic Name"},
        {MQLITE_V311, "caf\xc3", 0, P_NONE, MQLITE_ERR_UTF8, "well-formed UTF-8"},
        {MQLITE_V5, "\xff", 1, P_NONE, MQLITE_ERR_UTF8, "UTF-8"},
        {MQLITE_V5, "s\xed\xa0\x80", 0, P_NONE, MQLITE_ERR_UTF8_SURROGATE, "U+D800"},
        {MQLITE_V311, "ok", 3, P_NONE, MQLITE_ERR_RANGE, "QoS must be 0, 1 or 2, not 3"},
        {MQLITE_V5, "ok", -1, P_NONE, MQLITE_ERR_RANGE, "not -1"},
        {MQLITE_V311, "ok", 1, P_USER, MQLITE_ERR_UNSUPPORTED, "MQTT 5.0"},
        {MQLITE_V5, "ok", 1, P_SUBID, MQLITE_ERR_PROPERTY_PACKET, "0x0b"},
        {MQLITE_V5, "ok", 0, P_ALIAS, MQLITE_ERR_PROPERTY_PACKET, "0x23"},
        {MQLITE_V5, "ok", 0, P_EXPIRY_S, MQLITE_ERR_PROPERTY_PACKET, "0x11"},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        peer *p = online(cases[i].version);
        mqlite_props *pr = NULL;
        if (cases[i].props != P_NONE) {
            pr = mqlite_props_new();
            switch (cases[i].props) {
            case P_SUBID:
                mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 3);
                break;
            case P_ALIAS:
                mqlite_props_add_int(pr, MQLITE_PROP_TOPIC_ALIAS, 1);
                break;
            case P_EXPIRY_S:
                mqlite_props_add_int(pr, MQLITE_PROP_SESSION_EXPIRY, 1);
                break;
            default:
                mqlite_props_add_pair(pr, "k", "v");
                break;
            }
        }
        int32_t pid = -3;
        int32_t rc =
            mqlite_client_publish_props(p->c, cases[i].topic, "x", 1, cases[i].qos, 0, pr, &pid);
        mqlite_props_free(pr);
        int before = tl_failures;
        CHECK_EQ(rc, cases[i].code);
        CHECK_HAS(mqlite_client_errmsg(p->c), cases[i].words);
        CHECK_EQ(pid, -3);
        CHECK_EQ(mqlite_client_queued(p->c) + mqlite_client_inflight(p->c), 0);
        PEER_QUIET(p);
        PEER_NO_EVENT(p);
        if (tl_failures != before)
            fprintf(stderr, "  (case %zu: %s)\n", i, mqlite_client_errmsg(p->c));
        peer_free(p);
    }
    /* NULL arguments. */
    peer *p = online(MQLITE_V311);
    CHECK_EQ(mqlite_client_publish(p->c, NULL, "x", 1, 0, 0, NULL), MQLITE_ERR_TOPIC_NAME);
    CHECK_HAS(mqlite_client_errmsg(p->c), "topic is NULL");
    CHECK_EQ(mqlite_client_publish(p->c, "t", NULL, 5, 0, 0, NULL), MQLITE_ERR_INVALID);
    CHECK_HAS(mqlite_client_errmsg(p->c), "payload is NULL");
    CHECK_EQ(mqlite_client_publish(p->c, "t", NULL, 0, 0, 0, NULL), 0);
    /* Over MQTT's own limit (a 256 MB remaining length) without allocating. */
    CHECK_EQ(mqlite_client_publish(p->c, "t", "x", (size_t)268435456u, 0, 0, NULL),
             MQLITE_ERR_TOO_LARGE);
    CHECK_HAS(mqlite_client_errmsg(p->c), "over MQTT's limit");
    peer_free(p);
}

/* Calls in the wrong state or on a bad handle: an error code and a
   message, the handle unchanged. */
static void test_wrong_state_and_misuse_refused_with_message(void)
{
    peer *p = online(MQLITE_V311);
    mqlite_client *c = p->c;
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, 5), MQLITE_ERR_STATE);
    CHECK_HAS(mqlite_client_errmsg(c), "MQLITE_OPT_PROTOCOL shapes CONNECT");
    CHECK_EQ(mqlite_client_get_int(c, MQLITE_OPT_PROTOCOL), 4);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, "late"), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_start(c), MQLITE_ERR_STATE);
    CHECK_HAS(mqlite_client_errmsg(c), "already under way");
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", 1883), MQLITE_ERR_STATE);
    CHECK_HAS(mqlite_client_errmsg(c), "sans-I/O");
    CHECK_EQ(mqlite_client_io(c, 1, 1), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_poll(c, 0), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_wait(c, 1, 0), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_RECEIVE_MAX, 0), MQLITE_ERR_RANGE);
    CHECK_HAS(mqlite_client_errmsg(c), "MQLITE_OPT_RECEIVE_MAX must be 1..65535, not 0");
    CHECK_EQ(mqlite_client_set_int(c, 9999, 1), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, "w/#"), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_feed(c, NULL, 3), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_client_state(c), MQLITE_STATE_CONNECTED);
    /* Options that do not shape CONNECT may change any time. */
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_MAX_QUEUED, 5), 0);
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    CHECK_EQ(mqlite_client_feed(c, "\xd0\x00", 2), MQLITE_ERR_STATE);
    CHECK_HAS(mqlite_client_errmsg(c), "no connection to feed");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, "w/#"), MQLITE_ERR_TOPIC_NAME);
    CHECK_HAS(mqlite_client_errmsg(c), "will topic");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, "\xc0\x80"), MQLITE_ERR_UTF8);
    peer_free(p);

    CHECK_EQ(mqlite_client_start(NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_client_feed(NULL, "x", 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_client_publish(NULL, "t", "x", 1, 0, 0, NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_client_subscribe(NULL, "t", 0, NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_client_set_clock(NULL, 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_client_transport_closed(NULL), MQLITE_ERR_MISUSE);
    CHECK(mqlite_client_next_event(NULL) == NULL);
    CHECK_HAS(mqlite_client_errmsg(NULL), "invalid client handle");
    char buf[4];
    CHECK_EQ(mqlite_client_take_output(NULL, buf, sizeof buf), 0);
}

/* ======================================================================
 * Bad input from the network
 * ====================================================================== */

/* MQTT 3.1.1 [MQTT-4.8.0-1] (close on a protocol violation); 5.0 section
   4.13 and Table 2-6 (a client that finds a Malformed Packet or Protocol
   Error sends DISCONNECT with the Reason Code and closes; the numbered
   [MQTT-4.13.1-1] binds the server). Each broken server packet makes feed
   fail with the precise error; a 5.0 client sends DISCONNECT with the
   matching reason code and a Reason String, a 3.1.1 client just closes;
   then the DISCONNECTED event carries the error and a text saying why. */
static void test_malformed_server_packets_close_with_reason(void)
{
    static const struct {
        const char *what, *hex;
        int32_t code;
        int reason; /* 5.0 DISCONNECT reason */
        int v311;   /* also run at 3.1.1 (same bytes mean the same there) */
    } cases[] = {
        /* MQTT 3.1.1, 5.0 [MQTT-3.3.1-4] */
        {"PUBLISH QoS 3", "36 06 00 01 74 00 01 00", MQLITE_ERR_QOS3, 0x81, 0},
        {"packet type 0", "00 00", MQLITE_ERR_PACKET_TYPE, 0x81, 1},
        /* 5.0 [MQTT-2.1.3-1] */
        {"PUBREL flags 0000", "60 02 00 01", MQLITE_ERR_HEADER_FLAGS, 0x81, 1},
        /* 5.0 [MQTT-1.5.5-1] */
        {"remaining length not minimal", "d0 80 00", MQLITE_ERR_REMLEN_NOT_MINIMAL, 0x81, 1},
        {"remaining length over 4 bytes", "30 ff ff ff ff 7f", MQLITE_ERR_REMLEN_TOO_LONG, 0x81, 1},
        /* 5.0 [MQTT-3.2.0-2] */
        {"second CONNACK", "20 03 00 00 00", MQLITE_ERR_UNEXPECTED_PACKET, 0x82, 0},
        {"CONNECT from the server", "10 0d 00 04 4d 51 54 54 05 02 00 3c 00 00 00",
         MQLITE_ERR_UNEXPECTED_PACKET, 0x82, 0},
        {"SUBSCRIBE from the server", "82 06 00 01 00 00 01 61", MQLITE_ERR_UNEXPECTED_PACKET, 0x82,
         0},
        {"PINGREQ from the server", "c0 00", MQLITE_ERR_UNEXPECTED_PACKET, 0x82, 1},
        /* 5.0 [MQTT-4.12.0-6]: no AUTH unless the client asked for it */
        {"AUTH", "f0 00", MQLITE_ERR_UNEXPECTED_PACKET, 0x82, 0},
        /* 5.0 [MQTT-1.5.4-1] */
        {"topic not UTF-8", "30 05 00 01 ff 00 78", MQLITE_ERR_UTF8, 0x81, 0},
        /* 5.0 [MQTT-1.5.4-2] */
        {"topic with U+0000", "30 06 00 02 61 00 00 78", MQLITE_ERR_UTF8_NULL, 0x81, 0},
        /* 5.0 [MQTT-3.3.2-2] */
        {"wildcard in topic", "30 05 00 01 23 00 78", MQLITE_ERR_TOPIC_NAME, 0x90, 0},
        {"empty topic, no alias", "30 03 00 00 00", MQLITE_ERR_TOPIC_NAME, 0x90, 0},
        /* 5.0 [MQTT-3.3.2-8] */
        {"topic alias 0", "30 08 00 01 74 03 23 00 00 78", MQLITE_ERR_TOPIC_ALIAS, 0x94, 0},
        /* 5.0 [MQTT-3.1.2-26] (16 is the client's default maximum) */
        {"topic alias over the maximum", "30 08 00 01 74 03 23 00 11 78", MQLITE_ERR_TOPIC_ALIAS,
         0x94, 0},
        {"unknown topic alias", "30 07 00 00 03 23 00 01 78", MQLITE_ERR_TOPIC_ALIAS, 0x94, 0},
        /* 5.0 [MQTT-2.2.1-4]: the server's QoS 1 PUBLISH has a non-zero id */
        {"PUBLISH id 0", "32 06 00 01 74 00 00 00", MQLITE_ERR_PACKET_ID_ZERO, 0x82, 0},
        /* 5.0 2.2.2.2: a property not allowed in the packet */
        {"Topic Alias in PUBACK", "40 07 00 01 00 03 23 00 01", MQLITE_ERR_PROPERTY_PACKET, 0x81,
         0},
        {"unknown property", "40 06 00 01 00 02 7f 00", MQLITE_ERR_PROPERTY_ID, 0x81, 0},
        {"PUBACK reason not allowed", "40 03 00 01 05", MQLITE_ERR_REASON_CODE, 0x82, 0},
        {"truncated PUBLISH", "32 03 00 05 61", MQLITE_ERR_TRUNCATED, 0x81, 1},
        {"PUBACK too long (3.1.1)", "40 03 00 01 00", MQLITE_ERR_TRAILING, 0, 2},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
            if (v == MQLITE_V311 && !cases[i].v311)
                continue;
            if (v == MQLITE_V5 && cases[i].v311 == 2)
                continue;
            int before = tl_failures;
            peer *p = online(v);
            int32_t rc = peer_send_hex(p, cases[i].hex);
            CHECK_EQ(rc, cases[i].code);
            PEER_NO_EVENT(p);
            if (v == MQLITE_V5) {
                const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
                CHECK(d && d->reason == cases[i].reason);
                char rs[256];
                CHECK(d && pr_prop_str(d->props, MQLITE_PROP_REASON_STRING, rs, sizeof rs));
            }
            PEER_QUIET(p);
            peer_cut(p);
            const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
            if (e) {
                CHECK_EQ(mqlite_event_error(e), cases[i].code);
                if (v == MQLITE_V5)
                    CHECK_EQ(mqlite_event_reason(e), cases[i].reason);
                /* The text names the rule (the start of its description). */
                char head[24];
                snprintf(head, sizeof head, "%s", mqlite_strerror(cases[i].code));
                CHECK_HAS(mqlite_event_text(e), head);
            }
            PEER_NO_EVENT(p);
            if (tl_failures != before)
                fprintf(stderr, "  (case \"%s\", version %d)\n", cases[i].what, v);
            peer_free(p);
        }
    }
}

/* MQTT 5.0 3.1.2.11.4 / 4.13: a packet over the client's Maximum Packet
   Size is refused from its fixed header with 0x95 Packet too large. */
static void test_packet_over_our_maximum_size_closes_0x95_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "small");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_MAX_PACKET_SIZE, 32), 0);
    PEER_CONNECT(p, 0);
    char payload[40];
    memset(payload, 'z', sizeof payload - 1);
    payload[sizeof payload - 1] = 0;
    mq_packet k = pk_publish(MQLITE_V5, "t", payload, 0, 0);
    /* Only the fixed header is needed to refuse it. */
    mq_buf b = {0};
    CHECK_EQ(mq_encode_buf(&k, &b, &mq_default_alloc, NULL), 0);
    CHECK_EQ(peer_feed(p, b.p, 2), MQLITE_ERR_PACKET_TOO_LARGE);
    mq_buf_free(&b, &mq_default_alloc);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x95);
    peer_cut(p);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    CHECK(e && mqlite_event_error(e) == MQLITE_ERR_PACKET_TOO_LARGE);
    peer_free(p);
}

/* MQTT 3.1.1 [MQTT-3.2.0-1], 5.0 [MQTT-3.2.0-1]: the server's first packet
   is CONNACK. Anything else, or a malformed CONNACK, fails the attempt:
   CONNECT_FAILED with the error (5.0: after a DISCONNECT with the reason). */
static void test_bad_packet_before_connack_fails_attempt(void)
{
    static const struct {
        const char *hex;
        int32_t code;
        int reason;
    } cases[] = {
        {"30 04 00 01 74 00", MQLITE_ERR_UNEXPECTED_PACKET, 0x82},
        {"20 03 02 00 00", MQLITE_ERR_CONNACK_FLAGS, 0x81},
        {"20 03 01 80 00", MQLITE_ERR_CONNACK_FLAGS, 0x81},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        peer *p = peer_new(MQLITE_V5, "pre");
        CHECK_EQ(mqlite_client_start(p->c), 0);
        PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        CHECK_EQ(peer_send_hex(p, cases[i].hex), cases[i].code);
        const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
        CHECK(d && d->reason == cases[i].reason);
        peer_cut(p);
        const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_CONNECT_FAILED);
        CHECK(e && mqlite_event_error(e) == cases[i].code);
        PEER_NO_EVENT(p);
        peer_free(p);
    }
}

/* MQTT 5.0 [MQTT-3.14.4-1], 3.1.1 [MQTT-3.14.4-2] / [MQTT-4.8.0-1]: once the
   client has decided to close (its DISCONNECT for a protocol error is in the
   output, the server said DISCONNECT, or the keep-alive ran out) it sends
   nothing more on that connection, even when an acknowledgement in the same
   read opened the window; what did not go out is sent on the next
   connection as new (DUP 0), and a SUBSCRIBE made meanwhile waits too. */
static void test_nothing_sent_after_close_decided(void)
{
    for (int why = 0; why < 3; why++) { /* malformed, server DISCONNECT, keep-alive */
        FOR_VERSIONS(v)
        {
            if (why == 1 && v != MQLITE_V5)
                continue;
            peer *p = peer_new(v, "last");
            mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
            mqlite_client_set_int(p->c, MQLITE_OPT_MAX_INFLIGHT, 1);
            mqlite_client_set_int(p->c, MQLITE_OPT_KEEPALIVE_S, 5);
            PEER_CONNECT(p, 0);
            int32_t a = pub(p, "a", "1", 1);
            int32_t b = pub(p, "b", "2", 1);
            EXPECT_PUBLISH(p, "a", 1, a, 0);
            PEER_QUIET(p);
            mq_buf in = {0};
            mq_packet k = pk_ack(v, MQLITE_PKT_PUBACK, (uint16_t)a, 0);
            mq_encode_buf(&k, &in, &mq_default_alloc, NULL);
            int32_t want = MQLITE_ERR_PACKET_TYPE;
            if (why == 0) {
                mq_buf_append(&in, &mq_default_alloc, "\x00\x00", 2);
            } else if (why == 1) {
                k = pk_new(MQLITE_PKT_DISCONNECT, v);
                k.reason = 0x8B;
                mq_encode_buf(&k, &in, &mq_default_alloc, NULL);
                want = MQLITE_ERR_CLOSED;
            }
            if (why == 2) {
                /* PINGREQ unanswered, then the PUBACK comes just in time
                 * for the window but not for the keep-alive. */
                CHECK_EQ(peer_advance(p, 5000), 0);
                PEER_EXPECT(p, MQLITE_PKT_PINGREQ);
                CHECK_EQ(peer_advance(p, 5000), MQLITE_ERR_KEEPALIVE);
                want = 0;
            }
            CHECK_EQ(peer_feed(p, in.p, in.len), want);
            mq_buf_free(&in, &mq_default_alloc);
            int32_t sid = 0;
            CHECK_EQ(mqlite_client_subscribe(p->c, "later", 0, &sid), 0);
            /* Time passes before the caller closes: no PINGREQ either. */
            CHECK(peer_advance(p, 60000) < 0);
            if (why == 0 && v == MQLITE_V5)
                PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
            PEER_QUIET(p);
            peer_cut(p);
            const mqlite_event *e;
            int lost = 0;
            while ((e = peer_event(p)) != NULL)
                lost += mqlite_event_type(e) == MQLITE_EVENT_DISCONNECTED;
            CHECK_EQ(lost, 1);
            PEER_CONNECT(p, 1);
            const mq_packet *s = PEER_EXPECT(p, MQLITE_PKT_SUBSCRIBE);
            CHECK(s && s->packet_id == sid);
            EXPECT_PUBLISH(p, "b", 1, b, 0);
            PEER_QUIET(p);
            peer_free(p);
        }
    }
}

/* ======================================================================
 * Topic aliases from the server (5.0)
 * ====================================================================== */

/* MQTT 5.0 [MQTT-3.3.2-10]: the client accepts every alias 1..its Topic
   Alias Maximum: a PUBLISH with a topic and an alias sets it, one with an
   empty topic and the alias uses it, a new topic replaces it. */
static void test_topic_alias_set_reuse_replace_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "alias");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_TOPIC_ALIAS_MAX, 3), 0);
    const mq_packet *conn = PEER_CONNECT(p, 0);
    CHECK(conn && pr_prop_int(conn->props, MQLITE_PROP_TOPIC_ALIAS_MAX) == 3);
    CHECK_EQ(peer_send_hex(p, "30 0c 00 05 61 6c 2f 6f 6e 03 23 00 01 31"), 0); /* al/on, 1 */
    EXPECT_MESSAGE(p, "al/on", "1", 0);
    CHECK_EQ(peer_send_hex(p, "30 07 00 00 03 23 00 01 32"), 0); /* alias 1 */
    EXPECT_MESSAGE(p, "al/on", "2", 0);
    CHECK_EQ(peer_send_hex(p, "30 08 00 01 62 03 23 00 03 33"), 0); /* "b", 3 */
    EXPECT_MESSAGE(p, "b", "3", 0);
    CHECK_EQ(peer_send_hex(p, "30 08 00 01 63 03 23 00 01 34"), 0); /* "c" replaces 1 */
    EXPECT_MESSAGE(p, "c", "4", 0);
    CHECK_EQ(peer_send_hex(p, "32 09 00 00 00 09 03 23 00 01 35"), 0); /* QoS 1, alias 1 */
    const mqlite_event *e = EXPECT_MESSAGE(p, "c", "5", 1);
    CHECK(e && mqlite_event_packet_id(e) == 9);
    EXPECT_ACK(p, MQLITE_PKT_PUBACK, 9, 0);
    CHECK_EQ(peer_send_hex(p, "30 07 00 00 03 23 00 03 36"), 0);
    EXPECT_MESSAGE(p, "b", "6", 0);
    /* Alias 2 was never set. */
    CHECK_EQ(peer_send_hex(p, "30 07 00 00 03 23 00 02 37"), MQLITE_ERR_TOPIC_ALIAS);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x94);
    PEER_NO_EVENT(p);
    peer_cut(p);
    e = PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    CHECK(e && mqlite_event_error(e) == MQLITE_ERR_TOPIC_ALIAS && mqlite_event_reason(e) == 0x94);
    CHECK(e && pr_has(mqlite_event_text(e), "topic alias"));
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.3.2-7]: alias mappings do not carry over to the next
   connection: the old alias is unknown there (0x94). */
static void test_topic_alias_not_carried_across_connections_v5(void)
{
    peer *p = online_persistent(MQLITE_V5);
    CHECK_EQ(peer_send_hex(p, "30 08 00 01 61 03 23 00 01 31"), 0);
    EXPECT_MESSAGE(p, "a", "1", 0);
    peer_cut(p);
    PEER_EVENT(p, MQLITE_EVENT_DISCONNECTED);
    PEER_CONNECT(p, 1);
    CHECK_EQ(peer_send_hex(p, "30 07 00 00 03 23 00 01 32"), MQLITE_ERR_TOPIC_ALIAS);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x94);
    peer_free(p);
}

/* MQTT 5.0 [MQTT-3.1.2-27]: with Topic Alias Maximum 0 the server must send
   no alias; the client refuses any (0x94). */
static void test_topic_alias_refused_when_maximum_zero_v5(void)
{
    peer *p = peer_new(MQLITE_V5, "noalias");
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_TOPIC_ALIAS_MAX, 0), 0);
    const mq_packet *conn = PEER_CONNECT(p, 0);
    CHECK(conn && pr_prop_int(conn->props, MQLITE_PROP_TOPIC_ALIAS_MAX) == -1);
    CHECK_EQ(peer_send_hex(p, "30 08 00 01 61 03 23 00 01 31"), MQLITE_ERR_TOPIC_ALIAS);
    const mq_packet *d = PEER_EXPECT(p, MQLITE_PKT_DISCONNECT);
    CHECK(d && d->reason == 0x94);
    peer_free(p);
}

/* ======================================================================
 * Input split at every byte boundary
 * ====================================================================== */

/* The server's side of a scripted session, in two phases: phase 0 is what
   it sends before it has read anything after CONNECT (CONNACK and its own
   traffic), phase 1 what it sends after reading the client's first packets
   (acknowledgements of them), so that no split makes the script acknowledge
   a packet the client has not sent yet. */
static void split_input(int v, int phase, int32_t a, int32_t b, int32_t s, mq_buf *in)
{
    const mq_alloc *al = &mq_default_alloc;
    mq_packet k;
    if (phase == 0) {
        k = pk_connack(v, 0, 0);
        mq_encode_buf(&k, in, al, NULL);
        k = pk_publish(v, "in/0", "zero", 0, 0);
        mq_encode_buf(&k, in, al, NULL);
        k = pk_publish(v, "in/1", "one", 1, 100);
        mq_encode_buf(&k, in, al, NULL);
        k = pk_publish(v, "in/2", "two", 2, 101);
        mq_encode_buf(&k, in, al, NULL);
        k.dup = 1;
        mq_encode_buf(&k, in, al, NULL);
        k = pk_ack(v, MQLITE_PKT_PUBREL, 101, 0);
        mq_encode_buf(&k, in, al, NULL);
        k = pk_new(MQLITE_PKT_PINGRESP, v);
        mq_encode_buf(&k, in, al, NULL);
        return;
    }
    k = pk_ack(v, MQLITE_PKT_PUBACK, (uint16_t)a, 0);
    mq_encode_buf(&k, in, al, NULL);
    k = pk_ack(v, MQLITE_PKT_PUBREC, (uint16_t)b, 0);
    mq_encode_buf(&k, in, al, NULL);
    k = pk_ack(v, MQLITE_PKT_PUBCOMP, (uint16_t)b, 0);
    mq_encode_buf(&k, in, al, NULL);
    uint8_t two = 2;
    k = pk_list_ack(v, MQLITE_PKT_SUBACK, (uint16_t)s, &two, 1);
    mq_encode_buf(&k, in, al, NULL);
    if (v == MQLITE_V5) {
        pr_props pp = {0};
        pp_int(&pp, MQLITE_PROP_TOPIC_ALIAS, 2);
        pp_str(&pp, MQLITE_PROP_CONTENT_TYPE, "text/plain");
        k = pk_publish(v, "al/x", "aliased", 1, 102);
        k.props = pp_view(&pp);
        mq_encode_buf(&k, in, al, NULL);
        k.topic = mq_view_make(NULL, 0);
        k.packet_id = 103;
        mq_encode_buf(&k, in, al, NULL);
        pp_free(&pp);
        k = pk_new(MQLITE_PKT_DISCONNECT, v);
        k.reason = 0x8E;
        mq_encode_buf(&k, in, al, NULL);
    }
}

/* Feed `in` whole (cut 0), as two pieces split at `cut`, or one byte at a
   time (cut SIZE_MAX). Returns the first negative feed result or 0. */
static int feed_split(mqlite_client *c, const mq_buf *in, size_t cut)
{
    int rc = 0;
    if (cut == SIZE_MAX) {
        for (size_t i = 0; i < in->len && rc == 0; i++)
            rc = mqlite_client_feed(c, in->p + i, 1);
    } else if (cut == 0 || cut >= in->len) {
        rc = mqlite_client_feed(c, in->p, in->len);
    } else {
        rc = mqlite_client_feed(c, in->p, cut);
        if (rc == 0)
            rc = mqlite_client_feed(c, in->p + cut, in->len - cut);
    }
    return rc;
}

/* Append the client's packets since the last call to `out`, sorted, one
   hex line each: within one read the client may order independent packets
   differently (its PUBACK before or after a queued PUBLISH it sends when
   the CONNACK arrives), which MQTT allows; what it sends may not differ. */
static void split_output(peer *p, char *out, size_t cap)
{
    char lines[32][160];
    int n = 0;
    const mq_packet *k;
    while ((k = peer_recv(p)) != NULL && n < 32) {
        size_t len = 0;
        const uint8_t *b = peer_last_bytes(p, &len);
        lines[n][0] = 0;
        for (size_t i = 0; i < len && i < 70; i++)
            snprintf(lines[n] + 2 * i, 3, "%02x", b[i]);
        n++;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char t[160];
            memcpy(t, lines[j], sizeof t);
            memcpy(lines[j], lines[j - 1], sizeof t);
            memcpy(lines[j - 1], t, sizeof t);
        }
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s\n", lines[i]);
    }
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "--\n");
}

/* One scripted session with phase `phase` fed split at `cut` (the other
   whole): the events as text, and the client's output per phase. */
static void split_run(int v, int phase, size_t cut, char *log, char *out, size_t cap, size_t *len)
{
    peer *p = peer_new(v, "split");
    int32_t a = pub(p, "s/a", "A", 1);
    int32_t b = pub(p, "s/b", "B", 2);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    int32_t s = 0;
    CHECK_EQ(mqlite_client_subscribe(p->c, "s/#", 2, &s), 0);
    log[0] = out[0] = 0;
    split_output(p, out, cap);
    for (int ph = 0; ph < 2; ph++) {
        mq_buf in = {0};
        split_input(v, ph, a, b, s, &in);
        if (ph == phase)
            *len = in.len;
        int rc = feed_split(p->c, &in, ph == phase ? cut : 0);
        CHECK_EQ(rc, ph == 1 && v == MQLITE_V5 ? MQLITE_ERR_CLOSED : 0);
        mq_buf_free(&in, &mq_default_alloc);
        split_output(p, out, cap);
    }
    peer_cut(p);
    peer_log_events(p, log, cap);
    peer_free(p);
}

/* MQTT 3.1.1 and 5.0 chapter 2 (packets are a stream): any split of the
   server's bytes, including one byte per feed, gives the same events, in
   the same order, and the same packets from the client. */
static void test_every_split_gives_same_events(void)
{
    static char ref_log[8192], ref_out[8192], log[8192], out[8192];
    FOR_VERSIONS(v)
    {
        size_t len = 0;
        split_run(v, 0, 0, ref_log, ref_out, sizeof ref_log, &len);
        CHECK(strstr(ref_log, "MESSAGE") && strstr(ref_log, "PUBLISHED") &&
              strstr(ref_log, "SUBACK"));
        int runs = 0;
        for (int phase = 0; phase < 2; phase++) {
            split_run(v, phase, 0, log, out, sizeof log, &len);
            for (size_t cut = 1; cut <= len; cut++) {
                size_t c = cut == len ? SIZE_MAX : cut;
                size_t l2 = 0;
                split_run(v, phase, c, log, out, sizeof log, &l2);
                runs++;
                int before = tl_failures;
                CHECK_STR(log, ref_log);
                CHECK_STR(out, ref_out);
                if (tl_failures != before) {
                    fprintf(stderr, "  (version %d, phase %d, %s %zu)\n", v, phase,
                            c == SIZE_MAX ? "one byte at a time" : "split at", cut);
                    break;
                }
            }
        }
        CHECK(runs > 60);
    }
}

/* ======================================================================
 * Tracing
 * ====================================================================== */

/* MQLITE_OPT_TRACE: one TRACE event per whole packet, sent (_reason 1) or
   received (_reason 0), with exactly its bytes. */
static void test_trace_events_carry_each_packet(void)
{
    peer *p = peer_new(MQLITE_V5, "tr");
    p->keep_trace = 1;
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_TRACE, 1), 0);
    CHECK_EQ(mqlite_client_get_int(p->c, MQLITE_OPT_TRACE), 1);
    CHECK_EQ(mqlite_client_start(p->c), 0);
    const mq_packet *conn = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
    size_t cn = 0;
    const uint8_t *cb = peer_last_bytes(p, &cn);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_TRACE);
    if (e && conn) {
        size_t n = 0;
        const void *b = mqlite_event_payload(e, &n);
        CHECK_MEM(b, n, cb, cn);
        CHECK_EQ(mqlite_event_reason(e), 1);
        CHECK_HAS(mqlite_event_text(e), "sent");
    }
    CHECK_EQ(peer_send_hex(p, "20 03 00 00 00"), 0);
    e = PEER_EVENT(p, MQLITE_EVENT_TRACE);
    if (e) {
        size_t n = 0;
        const void *b = mqlite_event_payload(e, &n);
        CHECK_MEM(b, n, "\x20\x03\x00\x00\x00", 5);
        CHECK_EQ(mqlite_event_reason(e), 0);
        CHECK_HAS(mqlite_event_text(e), "received");
    }
    PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
    int32_t pid = pub(p, "t", "x", 1);
    e = PEER_EVENT(p, MQLITE_EVENT_TRACE);
    const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    size_t kn = 0;
    const uint8_t *kb = peer_last_bytes(p, &kn);
    if (e && k) {
        size_t n = 0;
        const void *b = mqlite_event_payload(e, &n);
        CHECK_MEM(b, n, kb, kn);
    }
    srv_ack(p, MQLITE_PKT_PUBACK, pid, 0);
    e = PEER_EVENT(p, MQLITE_EVENT_TRACE);
    CHECK(e && mqlite_event_reason(e) == 0);
    EXPECT_PUBLISHED(p, pid, 0, 0);
    /* Off again: no more TRACE events. */
    CHECK_EQ(mqlite_client_set_int(p->c, MQLITE_OPT_TRACE, 0), 0);
    pid = pub(p, "t", "y", 1);
    srv_ack(p, MQLITE_PKT_PUBACK, pid, 0);
    EXPECT_PUBLISHED(p, pid, 0, 0);
    PEER_NO_EVENT(p);
    peer_free(p);
}

/* ======================================================================
 * main
 * ====================================================================== */

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_connect_bytes_v311_defaults);
    RUN(test_connect_bytes_v31_uses_mqisdp);
    RUN(test_connect_bytes_v5_defaults);
    RUN(test_connect_bytes_v311_will_user_password);
    RUN(test_connect_bytes_v5_all_properties);
    RUN(test_connect_option_combinations);
    RUN(test_connect_password_without_user_refused_v311);
    RUN(test_connect_empty_client_id_needs_clean_session);
    RUN(test_connect_empty_client_id_refused_v31);
    RUN(test_connack_session_present_reported);
    RUN(test_connack_session_present_after_clean_start_closes);
    RUN(test_connack_refused_v311_codes);
    RUN(test_connack_refused_v5_reason_codes);
    RUN(test_connack_server_keepalive_replaces_ours_v5);
    RUN(test_connack_receive_maximum_limits_window_v5);
    RUN(test_connack_maximum_qos_enforced_v5);
    RUN(test_connack_retain_unavailable_v5);
    RUN(test_connack_maximum_packet_size_v5);
    RUN(test_queued_message_over_maximum_packet_size_fails_v5);
    RUN(test_assigned_client_id_reused_on_reconnect_v5);
    RUN(test_packet_ids_fill_all_then_reuse_only_freed);
    RUN(test_packet_ids_shared_by_subscribe_and_publish);
    RUN(test_publish_qos0_one_packet_no_event);
    RUN(test_publish_qos1_flow);
    RUN(test_publish_qos1_puback_reason_codes_v5);
    RUN(test_publish_qos2_flow);
    RUN(test_publish_qos2_pubrec_failure_ends_flow_v5);
    RUN(test_pubcomp_0x92_after_resent_pubrel_is_success_v5);
    RUN(test_incoming_qos012_delivered_and_acknowledged);
    RUN(test_incoming_message_properties_v5);
    RUN(test_incoming_qos2_delivered_once_until_pubrel);
    RUN(test_incoming_qos1_same_id_is_new_message);
    RUN(test_incoming_acks_in_publish_order);
    RUN(test_incoming_receive_maximum_exceeded_disconnects_0x93_v5);
    RUN(test_publish_beyond_window_queues_in_order);
    RUN(test_publish_while_disconnected_queues);
    RUN(test_queue_full_by_count_refuses_and_queues_nothing);
    RUN(test_queue_full_by_bytes_refuses_and_queues_nothing);
    RUN(test_resume_resends_dup_publish_and_pubrel_in_order);
    RUN(test_resume_without_session_reports_lost_and_sends_queued_afresh);
    RUN(test_incoming_qos2_ids_follow_the_session);
    RUN(test_resubscribe_after_session_loss);
    RUN(test_subscribe_several_filters_options_and_subid_v5);
    RUN(test_subscribe_several_filters_v311);
    RUN(test_unsubscribe_and_unsuback_codes);
    RUN(test_suback_wrong_count_is_protocol_error);
    RUN(test_subscribe_before_connack_is_held);
    RUN(test_unacknowledged_subscribe_resent_after_reconnect);
    RUN(test_subscribe_bad_requests_refused_with_message);
    RUN(test_keepalive_pingreq_then_lost_without_pingresp);
    RUN(test_keepalive_ping_timeout_option);
    RUN(test_keepalive_zero_never_pings);
    RUN(test_connack_timeout);
    RUN(test_graceful_disconnect);
    RUN(test_nothing_sent_after_own_disconnect);
    RUN(test_disconnect_bad_reason_or_state_refused);
    RUN(test_server_disconnect_v5_reports_reason_and_string);
    RUN(test_server_disconnect_with_session_expiry_is_protocol_error_v5);
    RUN(test_server_disconnect_v311_is_protocol_violation);
    RUN(test_publish_bad_input_refused_with_message);
    RUN(test_wrong_state_and_misuse_refused_with_message);
    RUN(test_malformed_server_packets_close_with_reason);
    RUN(test_packet_over_our_maximum_size_closes_0x95_v5);
    RUN(test_bad_packet_before_connack_fails_attempt);
    RUN(test_nothing_sent_after_close_decided);
    RUN(test_topic_alias_set_reuse_replace_v5);
    RUN(test_topic_alias_not_carried_across_connections_v5);
    RUN(test_topic_alias_refused_when_maximum_zero_v5);
    RUN(test_every_split_gives_same_events);
    RUN(test_trace_events_carry_each_packet);
    TEST_MAIN_END();
}
