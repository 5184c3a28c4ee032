/*
 * test_client_auth.c - MQTT 5.0 enhanced authentication in the client
 * (5.0 section 4.12): the built-in SCRAM-SHA-256 against mqlite's broker
 * (credentials made by the broker's password module, as `mqlite passwd
 * --scram` writes them), re-authentication in an open session, a pluggable
 * method whose server side is the broker's pulled authentication requests,
 * and the AUTH rules checked on bytes in sans-I/O mode. Every wait is
 * bounded.
 */
#include "test_broker_security.h"

#include "broker/passwd.h"

static const char *scram_file(void)
{
    char text[4096] = "";
    const char *users[][2] = {{"alice", "pencil"}, {"b,o=b", "s3cr3t"}};
    for (size_t i = 0; i < 2; i++) {
        char line[MQ_PW_LINE_MAX];
        if (mq_pw_make_line(line, sizeof line, users[i][0], users[i][1], strlen(users[i][1]),
                            MQ_PW_SCRAM_SHA256, 0))
            abort();
        strcat(text, line);
        strcat(text, "\n");
    }
    return ts_write("client-scram", text);
}

static mqlite_broker *scram_broker(int *port)
{
    mqlite_broker *b = tb_new(port);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_SCRAM_FILE, scram_file()), 0);
    return b;
}

static mqlite_client *scram_client(const char *user, const char *password)
{
    mqlite_client *c = mqlite_client_new("scram-c");
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, 5), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_AUTH_METHOD, "SCRAM-SHA-256"), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, user), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_PASSWORD, password), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 3000), 0);
    return c;
}

typedef struct seen {
    int type;
    int32_t error;
    int reason;
    char text[300];
    char payload[300];
    size_t payload_len;
    int connect_had_password; /* from MQLITE_OPT_TRACE: CONNECT bytes */
    int connect_had_method;
    char message[64];         /* the last MESSAGE payload that went by */
} seen;

/* Poll broker and client until an event of one of the wanted types; 1 if
 * seen. TRACE events are inspected on the way. */
static int drive(mqlite_client *c, mqlite_broker *b, int t1, int t2, seen *out)
{
    uint64_t end = tc_now_ms() + 4000;
    while (tc_now_ms() < end) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            int t = mqlite_event_type(ev);
            if (t == MQLITE_EVENT_TRACE && mqlite_event_reason(ev) == 1) {
                size_t n = 0;
                const uint8_t *p = mqlite_event_payload(ev, &n);
                mq_decode_opts o = {MQLITE_V5, 0, MQ_ROLE_SERVER, 0};
                mq_packet k;
                size_t used = 0, need = 0;
                if (n && (p[0] >> 4) == MQLITE_PKT_CONNECT &&
                    mq_decode(p, n, &o, &k, &used, &need, NULL) == 0) {
                    mq_prop m;
                    out->connect_had_password = k.has_password || k.has_username;
                    out->connect_had_method =
                        mq_props_get(k.props, MQLITE_PROP_AUTH_METHOD, &m) == 1;
                }
                continue;
            }
            if (t == MQLITE_EVENT_MESSAGE) {
                size_t n = 0;
                const void *p = mqlite_event_payload(ev, &n);
                snprintf(out->message, sizeof out->message, "%.*s", (int)n, (const char *)p);
            }
            if (t != t1 && t != t2)
                continue;
            out->type = t;
            out->error = mqlite_event_error(ev);
            out->reason = mqlite_event_reason(ev);
            snprintf(out->text, sizeof out->text, "%s", mqlite_event_text(ev));
            size_t n = 0;
            const void *p = mqlite_event_payload(ev, &n);
            out->payload_len = n;
            snprintf(out->payload, sizeof out->payload, "%.*s", (int)n, p ? (const char *)p : "");
            return 1;
        }
    }
    return 0;
}

/* MQTT 5.0 [MQTT-4.12.0-5]: the built-in SCRAM-SHA-256 logs in, the password
 * never travels (neither user name nor password in CONNECT), the CONNACK
 * carries our method and the server's signature, which the client checks;
 * a saslname with ',' and '=' works. */
static void test_scram_builtin_connects_without_sending_the_password(void)
{
    int port;
    mqlite_broker *b = scram_broker(&port);
    const char *users[][2] = {{"alice", "pencil"}, {"b,o=b", "s3cr3t"}};
    for (int i = 0; i < 2; i++) {
        mqlite_client *c = scram_client(users[i][0], users[i][1]);
        CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TRACE, 1), 0);
        CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
        seen s = {0};
        CHECK(drive(c, b, MQLITE_EVENT_CONNECTED, MQLITE_EVENT_CONNECT_FAILED, &s));
        CHECK_EQ(s.type, MQLITE_EVENT_CONNECTED);
        if (s.type != MQLITE_EVENT_CONNECTED)
            fprintf(stderr, "  %s\n", s.text);
        CHECK_EQ(s.connect_had_password, 0);
        CHECK_EQ(s.connect_had_method, 1);
        CHECK_EQ(mqlite_client_subscribe(c, "scram/t", 1, NULL), 0);
        CHECK(drive(c, b, MQLITE_EVENT_SUBACK, -1, &s));
        mqlite_client_free(c);
    }
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-4.12.0-4]: a wrong password is refused with CONNACK 0x87,
 * reported as CONNECT_FAILED. */
static void test_scram_wrong_password_refused(void)
{
    int port;
    mqlite_broker *b = scram_broker(&port);
    mqlite_client *c = scram_client("alice", "crayon");
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    seen s = {0};
    CHECK(drive(c, b, MQLITE_EVENT_CONNECTED, MQLITE_EVENT_CONNECT_FAILED, &s));
    CHECK_EQ(s.type, MQLITE_EVENT_CONNECT_FAILED);
    CHECK_EQ(s.reason, 0x87);
    CHECK_EQ(s.error, MQLITE_ERR_REFUSED);
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* MQTT 5.0 [MQTT-4.12.1-1]: re-authentication (AUTH 0x19) inside an open
 * session, twice; messages keep flowing; success arrives as
 * MQLITE_EVENT_AUTH with reason 0. */
static void test_scram_reauthentication_in_session(void)
{
    int port;
    mqlite_broker *b = scram_broker(&port);
    mqlite_client *c = scram_client("alice", "pencil");
    CHECK_EQ(mqlite_client_auth(c, 0x19, NULL, 0), MQLITE_ERR_NOT_CONNECTED);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    seen s = {0};
    CHECK(drive(c, b, MQLITE_EVENT_CONNECTED, MQLITE_EVENT_CONNECT_FAILED, &s));
    CHECK_EQ(s.type, MQLITE_EVENT_CONNECTED);
    CHECK_EQ(mqlite_client_subscribe(c, "re/#", 1, NULL), 0);
    CHECK(drive(c, b, MQLITE_EVENT_SUBACK, -1, &s));
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(mqlite_client_auth(c, 0x19, NULL, 0), 0);
        CHECK_EQ(mqlite_client_auth(c, 0x19, NULL, 0), MQLITE_ERR_STATE); /* one at a time */
        CHECK_EQ(mqlite_client_publish(c, "re/x", "during", 6, 1, 0, NULL), 0);
        memset(&s, 0, sizeof s);
        CHECK(drive(c, b, MQLITE_EVENT_AUTH, MQLITE_EVENT_DISCONNECTED, &s));
        CHECK_EQ(s.type, MQLITE_EVENT_AUTH);
        CHECK_EQ(s.reason, 0);
        CHECK_STR(mqlite_event_type_name(MQLITE_EVENT_AUTH), "AUTH");
        if (!s.message[0])
            CHECK(drive(c, b, MQLITE_EVENT_MESSAGE, -1, &s));
        CHECK_STR(s.message, "during");
    }
    CHECK_EQ(mqlite_client_state(c), MQLITE_STATE_CONNECTED);
    /* The library answers SCRAM's challenges itself. */
    CHECK_EQ(mqlite_client_auth(c, 0x18, "x", 1), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_auth(c, 0x00, NULL, 0), MQLITE_ERR_RANGE);
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* Answer the broker's next authentication request of `kind`, checking its
 * method and data. */
static int answer(mqlite_broker *b, mqlite_client *c, int kind, const char *want_data,
                  int reason, const char *data)
{
    uint64_t end = tc_now_ms() + 3000;
    while (tc_now_ms() < end) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
        const mqlite_auth_request *r = mqlite_broker_next_auth_request(b);
        if (!r)
            continue;
        CHECK_EQ(mqlite_auth_request_kind(r), kind);
        CHECK_STR(mqlite_auth_request_method(r), "X-TOKEN");
        size_t n = 0;
        const void *d = mqlite_auth_request_data(r, &n);
        CHECK(d && n == strlen(want_data) && memcmp(d, want_data, n) == 0);
        int64_t id = mqlite_auth_request_id(r);
        return data ? mqlite_broker_auth_reply_data(b, id, reason, data, strlen(data))
                    : mqlite_broker_auth_reply(b, id, reason);
    }
    return -1;
}

/* A pluggable method: the application sees each challenge as
 * MQLITE_EVENT_AUTH (reason 0x18, data as payload) and answers with
 * mqlite_client_auth(0x18) (5.0 [MQTT-4.12.0-2], [MQTT-4.12.0-3]); the
 * server side is the broker's pulled requests. Then a re-authentication. */
static void test_pluggable_method_challenge_and_response(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    CHECK_EQ(mqlite_broker_set_int(b, MQLITE_BOPT_AUTH_EXTERNAL, 1), 0);
    mqlite_client *c = mqlite_client_new("plug");
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, 5), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_AUTH_METHOD, "X-TOKEN"), 0);
    CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_AUTH_DATA, "hello", 5), 0);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    CHECK_EQ(answer(b, c, MQLITE_AUTH_CONNECT, "hello", 0x18, "challenge"), 0);
    seen s = {0};
    CHECK(drive(c, b, MQLITE_EVENT_AUTH, MQLITE_EVENT_CONNECT_FAILED, &s));
    CHECK_EQ(s.type, MQLITE_EVENT_AUTH);
    CHECK_EQ(s.reason, 0x18);
    CHECK_STR(s.payload, "challenge");
    CHECK_EQ(mqlite_client_auth(c, 0x19, NULL, 0), MQLITE_ERR_STATE); /* not before CONNACK */
    CHECK_EQ(mqlite_client_auth(c, 0x18, "response", 8), 0);
    CHECK_EQ(answer(b, c, MQLITE_AUTH_CONTINUE, "response", 0, NULL), 0);
    CHECK(drive(c, b, MQLITE_EVENT_CONNECTED, MQLITE_EVENT_CONNECT_FAILED, &s));
    CHECK_EQ(s.type, MQLITE_EVENT_CONNECTED);
    /* Re-authentication with the application's data. */
    CHECK_EQ(mqlite_client_auth(c, 0x18, "stray", 5), MQLITE_ERR_STATE);
    CHECK_EQ(mqlite_client_auth(c, 0x19, "again", 5), 0);
    CHECK_EQ(answer(b, c, MQLITE_AUTH_REAUTH, "again", 0x18, "prove it"), 0);
    memset(&s, 0, sizeof s);
    CHECK(drive(c, b, MQLITE_EVENT_AUTH, MQLITE_EVENT_DISCONNECTED, &s));
    CHECK_EQ(s.reason, 0x18);
    CHECK_STR(s.payload, "prove it");
    CHECK_EQ(mqlite_client_auth(c, 0x18, "proof", 5), 0);
    CHECK_EQ(answer(b, c, MQLITE_AUTH_CONTINUE, "proof", 0, NULL), 0);
    memset(&s, 0, sizeof s);
    CHECK(drive(c, b, MQLITE_EVENT_AUTH, MQLITE_EVENT_DISCONNECTED, &s));
    CHECK_EQ(s.type, MQLITE_EVENT_AUTH);
    CHECK_EQ(s.reason, 0);
    CHECK_EQ(mqlite_client_state(c), MQLITE_STATE_CONNECTED);
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* ---- the rules on bytes (sans-I/O) ---- */

static void feed_pkt(mqlite_client *c, mq_packet *p)
{
    mq_buf out = {0};
    p->version = MQLITE_V5;
    CHECK_EQ(mq_encode_buf(p, &out, &mq_default_alloc, NULL), 0);
    mqlite_client_feed(c, out.p, out.len);
    mq_buf_free(&out, &mq_default_alloc);
}

/* The first packet in the client's output, decoded into *k (bytes in buf). */
static int take_pkt(mqlite_client *c, uint8_t *buf, size_t cap, mq_packet *k)
{
    size_t n = mqlite_client_take_output(c, buf, cap);
    mq_decode_opts o = {MQLITE_V5, 0, MQ_ROLE_SERVER, 0};
    size_t used = 0, need = 0;
    return n && mq_decode(buf, n, &o, k, &used, &need, NULL) == 0;
}

static mqlite_client *sans_client(const char *method)
{
    mqlite_client *c = mqlite_client_new("sans");
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, 5);
    if (method) {
        mqlite_client_set_str(c, MQLITE_OPT_AUTH_METHOD, method);
        mqlite_client_set_bytes(c, MQLITE_OPT_AUTH_DATA, "d", 1);
    }
    mqlite_client_set_clock(c, 1000);
    CHECK_EQ(mqlite_client_start(c), 0);
    return c;
}

/* MQTT 5.0 [MQTT-4.12.0-6]: without a method in CONNECT the server must not
 * send AUTH; the client closes with a protocol error. [MQTT-4.12.0-7]: and
 * the client itself never sends one. */
static void test_auth_without_method_is_a_protocol_error(void)
{
    mqlite_client *c = sans_client(NULL);
    uint8_t buf[512];
    mq_packet k;
    CHECK(take_pkt(c, buf, sizeof buf, &k));
    CHECK_EQ(mqlite_client_auth(c, 0x18, "x", 1), MQLITE_ERR_STATE);
    CHECK(strstr(mqlite_client_errmsg(c), "MQTT-4.12.0-7") != NULL);
    /* AUTH 0x18 with no properties (our encoder would refuse to make it). */
    static const uint8_t auth[] = {0xf0, 0x02, 0x18, 0x00};
    mqlite_client_feed(c, auth, sizeof auth);
    CHECK(take_pkt(c, buf, sizeof buf, &k));
    CHECK_EQ(k.type, MQLITE_PKT_DISCONNECT);
    CHECK(k.reason >= 0x80);
    mqlite_client_free(c);
}

/* MQTT 5.0 [MQTT-4.12.0-5]: an AUTH with another method is refused, and so
 * is a CONNACK that does not repeat our method. */
static void test_auth_method_must_match(void)
{
    uint8_t buf[512];
    mq_packet k;
    for (int connack = 0; connack < 2; connack++) {
        mqlite_client *c = sans_client("X-TOKEN");
        CHECK(take_pkt(c, buf, sizeof buf, &k));
        CHECK_EQ(k.type, MQLITE_PKT_CONNECT);
        mq_prop m;
        CHECK_EQ(mq_props_get(k.props, MQLITE_PROP_AUTH_METHOD, &m), 1);
        CHECK(view_is(m.val, "X-TOKEN"));
        pb props = {{0}};
        pb_str(&props, MQLITE_PROP_AUTH_METHOD, "Y-OTHER");
        mq_packet a = pk(connack ? MQLITE_PKT_CONNACK : MQLITE_PKT_AUTH);
        a.reason = connack ? 0 : 0x18;
        a.props = pb_view(&props);
        feed_pkt(c, &a);
        pb_free(&props);
        CHECK(take_pkt(c, buf, sizeof buf, &k));
        CHECK_EQ(k.type, MQLITE_PKT_DISCONNECT);
        CHECK(k.reason >= 0x80);
        mqlite_client_free(c);
    }
}

/* Enhanced authentication needs MQTT 5.0: a 3.1.1 connect fails in words. */
static void test_auth_method_needs_v5(void)
{
    mqlite_client *c = mqlite_client_new("v311");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_AUTH_METHOD, "SCRAM-SHA-256"), 0);
    CHECK_EQ(mqlite_client_start(c), MQLITE_ERR_UNSUPPORTED);
    CHECK(strstr(mqlite_client_errmsg(c), "MQTT 5.0") != NULL);
    mqlite_client_free(c);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    ts_make_certs(); /* the temporary directory for the credential file */
    RUN(test_scram_builtin_connects_without_sending_the_password);
    RUN(test_scram_wrong_password_refused);
    RUN(test_scram_reauthentication_in_session);
    RUN(test_pluggable_method_challenge_and_response);
    RUN(test_auth_without_method_is_a_protocol_error);
    RUN(test_auth_method_must_match);
    RUN(test_auth_method_needs_v5);
    TEST_MAIN_END();
}
