/*
 * test_broker_tls.c - TLS listeners of the embedded broker, driven by the
 * TLS client of core/src/tls.c (the module the client library uses) in the
 * same thread: handshakes never block the loop, plain and TLS listeners side
 * by side, client certificates (required, optional, use_identity_as_username),
 * the failures a user meets (wrong CA, wrong host name, expired certificate,
 * plain MQTT on a TLS port, stalled handshakes) with their words, large
 * messages through partial TLS writes, configuration keys, and tls.c's client
 * side against Debian's mosquitto. Certificates are made with `openssl` at
 * run time.
 */
#include "test_broker_security.h"

static mqlite_broker *tls_broker(int *plain_port, int *tls_port, int flags)
{
    mqlite_broker *b = tb_new(plain_port);
    int32_t p = 0;
    int rc = mqlite_broker_listen_tls(b, "127.0.0.1", 0, ts_path("server.crt"),
                                      ts_path("server.key"), ts_path("ca.crt"), flags, &p);
    if (rc) {
        fprintf(stderr, "listen_tls: %s\n", mqlite_broker_errmsg(b));
        abort();
    }
    *tls_port = p;
    return b;
}

/* Plain and TLS listeners side by side: a message crosses from one to the
 * other in both directions, at QoS 0, 1 and 2, MQTT 3.1.1 and 5.0. */
static void test_tls_and_plain_listeners_exchange_messages(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0);
    mq_tls_ctx *ctx = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        ttc *t = ttc_open(b, tp, ctx, "localhost", v);
        CHECK_EQ(t->hs_rc, 0);
        CHECK_EQ(ttc_connect(t, "tls-sub", NULL, NULL), 0);
        tc *plain = tc_connect(b, pp, v, "plain", 1);
        CHECK_EQ(tc_subscribe(plain, "to-plain", 2), 2);
        /* SUBSCRIBE over TLS */
        mq_packet s = pk(MQLITE_PKT_SUBSCRIBE);
        mq_buf list = {0};
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("to-tls"), 1, 2);
        s.packet_id = 7;
        s.list = mq_view_make(list.p, list.len);
        s.count = 1;
        ttc_send(t, &s);
        mq_buf_free(&list, &mq_default_alloc);
        mq_packet k;
        CHECK(ttc_expect(t, MQLITE_PKT_SUBACK, &k));
        for (int qos = 0; qos <= 2; qos++) {
            tc_publish(plain, "to-tls", "hello", qos, 0, 10 + qos);
            CHECK(ttc_expect(t, MQLITE_PKT_PUBLISH, &k));
            CHECK(view_is(k.payload, "hello"));
            CHECK_EQ(k.qos, qos);
            if (qos == 1) {
                mq_packet a = pk_ack(MQLITE_PKT_PUBACK, k.packet_id);
                ttc_send(t, &a);
            } else if (qos == 2) {
                mq_packet a = pk_ack(MQLITE_PKT_PUBREC, k.packet_id);
                ttc_send(t, &a);
                CHECK(ttc_expect(t, MQLITE_PKT_PUBREL, &k));
                a = pk_ack(MQLITE_PKT_PUBCOMP, k.packet_id);
                ttc_send(t, &a);
            }
            mq_packet pub = pk_publish("to-plain", "from-tls", qos, 0, qos ? 20 + qos : 0);
            ttc_send(t, &pub);
            if (qos)
                CHECK(ttc_expect(t, qos == 1 ? MQLITE_PKT_PUBACK : MQLITE_PKT_PUBREC, NULL));
            if (qos == 2) {
                mq_packet rel = pk_ack(MQLITE_PKT_PUBREL, 22);
                ttc_send(t, &rel);
                CHECK(ttc_expect(t, MQLITE_PKT_PUBCOMP, NULL));
            }
            CHECK(tc_expect_msg(plain, "to-plain", "from-tls", &k));
            if (k.qos == 1) {
                mq_packet a = pk_ack(MQLITE_PKT_PUBACK, k.packet_id);
                tc_send(plain, &a);
            } else if (k.qos == 2) {
                mq_packet a = pk_ack(MQLITE_PKT_PUBREC, k.packet_id);
                tc_send(plain, &a);
                CHECK(tc_expect(plain, MQLITE_PKT_PUBREL, NULL));
                a = pk_ack(MQLITE_PKT_PUBCOMP, k.packet_id);
                tc_send(plain, &a);
            }
        }
        tc_disconnect(plain);
        mq_packet d = pk(MQLITE_PKT_DISCONNECT);
        ttc_send(t, &d);
        ttc_free(t);
        tb_run(b, 20);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 0);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_TLS_HANDSHAKE_FAILED), 0);
    mq_tls_ctx_free(ctx);
    mqlite_broker_free(b);
}

/* Megabyte payloads both ways: TLS records of 16 KiB, partial writes,
 * decrypted input buffered inside OpenSSL, and a burst of small messages. */
static void test_tls_large_and_many_messages(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0);
    mq_tls_ctx *ctx = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    ttc *t = ttc_open(b, tp, ctx, "localhost", MQLITE_V311);
    CHECK_EQ(ttc_connect(t, "big", NULL, NULL), 0);
    mq_packet s = pk(MQLITE_PKT_SUBSCRIBE);
    mq_buf list = {0};
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("big/#"), 1, 0);
    s.packet_id = 1;
    s.list = mq_view_make(list.p, list.len);
    s.count = 1;
    ttc_send(t, &s);
    mq_buf_free(&list, &mq_default_alloc);
    CHECK(ttc_expect(t, MQLITE_PKT_SUBACK, NULL));
    size_t n = 1u << 20;
    char *payload = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        payload[i] = (char)('a' + i % 26);
    payload[n] = '\0';
    mq_packet pub = pk_publish("big/one", payload, 0, 0, 0);
    CHECK_EQ(ttc_send(t, &pub), 0);
    mq_packet k;
    CHECK(ttc_expect(t, MQLITE_PKT_PUBLISH, &k));
    CHECK_EQ(k.payload.len, n);
    CHECK(k.payload.len == n && memcmp(k.payload.p, payload, n) == 0);
    for (int i = 0; i < 500; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "m%d", i);
        mq_packet p = pk_publish("big/small", msg, 0, 0, 0);
        ttc_send(t, &p);
    }
    int got = 0;
    while (got < 500 && ttc_recv(t, &k, TC_WAIT) == 0) {
        char want[32];
        snprintf(want, sizeof want, "m%d", got);
        if (!view_is(k.payload, want))
            break;
        got++;
    }
    CHECK_EQ(got, 500);
    free(payload);
    ttc_free(t);
    mq_tls_ctx_free(ctx);
    mqlite_broker_free(b);
}

/* Client certificates required: none -> the handshake fails; a certificate
 * of another CA -> fails; alice's -> accepted. Other clients are served
 * all the while, and each failure is counted. */
static void test_tls_client_certificate_required(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, MQLITE_BTLS_REQUIRE_CERT);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mq_tls_ctx *none = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    mq_tls_ctx *alice = ttc_ctx(ts_path("ca.crt"), ts_path("alice.crt"), ts_path("alice.key"));
    mq_tls_ctx *mallory =
        ttc_ctx(ts_path("ca.crt"), ts_path("mallory.crt"), ts_path("mallory.key"));
    tc *watcher = tc_connect(b, pp, MQLITE_V5, "watcher", 1);

    /* TLS 1.3: the client learns of the refusal when it reads. */
    ttc *t = ttc_open(b, tp, none, "localhost", MQLITE_V311);
    CHECK(ttc_refused(t));
    /* What the client side of tls.c reports (TLS 1.3: on its first read). */
    CHECK(strstr(t->err.msg, "certificate required") != NULL);
    ttc_free(t);
    t = ttc_open(b, tp, mallory, "localhost", MQLITE_V311);
    CHECK(ttc_refused(t));
    ttc_free(t);
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_TLS_HANDSHAKE_FAILED), 2);

    t = ttc_open(b, tp, alice, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, 0);
    CHECK_EQ(ttc_connect(t, "alice", NULL, NULL), 0);
    mq_packet ping = pk(MQLITE_PKT_PINGREQ);
    tc_send(watcher, &ping);
    CHECK(tc_expect(watcher, MQLITE_PKT_PINGRESP, NULL));
    ttc_free(t);
    tc_disconnect(watcher);
    mq_tls_ctx_free(none);
    mq_tls_ctx_free(alice);
    mq_tls_ctx_free(mallory);
    mqlite_broker_free(b);
}

/* Optional client certificates (MQLITE_BTLS_REQUEST_CERT): with or without
 * one the client connects; a certificate that does not verify fails. */
static void test_tls_client_certificate_optional(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, MQLITE_BTLS_REQUEST_CERT);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mq_tls_ctx *none = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    mq_tls_ctx *alice = ttc_ctx(ts_path("ca.crt"), ts_path("alice.crt"), ts_path("alice.key"));
    mq_tls_ctx *mallory =
        ttc_ctx(ts_path("ca.crt"), ts_path("mallory.crt"), ts_path("mallory.key"));
    ttc *t = ttc_open(b, tp, none, "localhost", MQLITE_V311);
    CHECK_EQ(ttc_connect(t, "anon", NULL, NULL), 0);
    ttc_free(t);
    t = ttc_open(b, tp, alice, "localhost", MQLITE_V311);
    CHECK_EQ(ttc_connect(t, "alice", NULL, NULL), 0);
    ttc_free(t);
    t = ttc_open(b, tp, mallory, "localhost", MQLITE_V311);
    CHECK(ttc_refused(t));
    ttc_free(t);
    mq_tls_ctx_free(none);
    mq_tls_ctx_free(alice);
    mq_tls_ctx_free(mallory);
    mqlite_broker_free(b);
}

/* use_identity_as_username: the certificate CN is the user name for the
 * ACL; the CONNECT's user name and password are ignored; a certificate
 * without a CN is refused with 0x86 (5.0) / 0x04 (3.1.1), as mosquitto. */
static void test_tls_identity_as_username(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp,
                                  MQLITE_BTLS_REQUIRE_CERT | MQLITE_BTLS_IDENTITY_AS_USERNAME);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    CHECK_EQ(mqlite_broker_acl_add(b, "alice", MQLITE_ACL_READWRITE, "alice/#"), 0);
    mq_tls_ctx *alice = ttc_ctx(ts_path("ca.crt"), ts_path("alice.crt"), ts_path("alice.key"));
    mq_tls_ctx *nocn = ttc_ctx(ts_path("ca.crt"), ts_path("nocn.crt"), ts_path("nocn.key"));
    ttc *t = ttc_open(b, tp, alice, "localhost", MQLITE_V5);
    CHECK_EQ(ttc_connect(t, "c1", "bob", "not-checked"), 0);
    mq_packet pub = pk_publish("alice/x", "ok", 1, 0, 1);
    ttc_send(t, &pub);
    mq_packet k;
    CHECK(ttc_expect(t, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0x10); /* allowed; nobody subscribed */
    pub = pk_publish("bob/x", "no", 1, 0, 2);
    ttc_send(t, &pub);
    CHECK(ttc_expect(t, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0x87);
    ttc_free(t);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        t = ttc_open(b, tp, nocn, "localhost", v);
        CHECK_EQ(t->hs_rc, 0);
        CHECK_EQ(ttc_connect(t, "c2", "bob", "x"), v == MQLITE_V5 ? 0x86 : 0x04);
        ttc_free(t);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_FAILED), 2);
    mq_tls_ctx_free(alice);
    mq_tls_ctx_free(nocn);
    mqlite_broker_free(b);
}

/* A client that stalls in the middle of its handshake (5 bytes of a
 * ClientHello, then nothing) never delays another: a second client
 * completes handshake, CONNECT and a message exchange while it waits; the
 * stalled one is closed at MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS. */
static void test_tls_stalled_handshake_blocks_nobody(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS, 400);
    mq_tls_ctx *ctx = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    tc *stall = tc_open(b, tp, MQLITE_V311);
    CHECK_EQ(tc_send_hex(stall, "1603010200"), 0);
    uint64_t t0 = tc_now_ms();
    ttc *t = ttc_open(b, tp, ctx, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, 0);
    CHECK_EQ(ttc_connect(t, "quick", NULL, NULL), 0);
    mq_packet ping = pk(MQLITE_PKT_PINGREQ);
    ttc_send(t, &ping);
    CHECK(ttc_expect(t, MQLITE_PKT_PINGRESP, NULL));
    uint64_t served = tc_now_ms() - t0;
    CHECK(served < 300);
    /* The stalled one goes at its deadline, not before, and not much after. */
    int reason;
    CHECK(tc_wait_closed(stall, &reason, 2000));
    uint64_t closed = tc_now_ms() - t0;
    CHECK(closed >= 350 && closed < 1200);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_TLS_HANDSHAKE_FAILED), 1);
    /* A raw poll round with a deadline never waits past it. */
    uint64_t p0 = tc_now_ms();
    mqlite_broker_poll(b, 50);
    CHECK(tc_now_ms() - p0 < 200);
    tc_free(stall);
    ttc_free(t);
    mq_tls_ctx_free(ctx);
    mqlite_broker_free(b);
}

/* A plain MQTT client on a TLS port: closed without a CONNACK, logged as
 * "plain MQTT CONNECT to a TLS port"; TLS clients are served after. */
static void test_tls_plain_connect_on_tls_port(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_NOTICE);
    tlog lg;
    tlog_start(&lg);
    tc *c = tc_open(b, tp, MQLITE_V311);
    mq_packet p = pk_connect("plain", 1, 60);
    tc_send(c, &p);
    mq_packet k;
    CHECK_EQ(tc_recv(c, &k, TC_WAIT), TC_CLOSED);
    tc_free(c);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR);
    char *log = tlog_stop(&lg);
    CHECK(strstr(log, "plain MQTT CONNECT to a TLS port") != NULL);
    free(log);
    mq_tls_ctx *ctx = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    ttc *t = ttc_open(b, tp, ctx, "localhost", MQLITE_V311);
    CHECK_EQ(ttc_connect(t, "after", NULL, NULL), 0);
    ttc_free(t);
    mq_tls_ctx_free(ctx);
    mqlite_broker_free(b);
}

/* tls.c's client side says what is wrong in words: an untrusted CA, a
 * certificate for another host, an expired certificate. */
static void test_tls_client_verification_errors(void)
{
    int pp;
    mqlite_broker *b = tb_new(&pp);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    int32_t good = 0, wrong = 0, expired = 0;
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("server.crt"), ts_path("server.key"),
                                      NULL, 0, &good), 0);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("wronghost.crt"),
                                      ts_path("wronghost.key"), NULL, 0, &wrong), 0);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("expired.crt"),
                                      ts_path("expired.key"), NULL, 0, &expired), 0);
    mq_tls_ctx *ca = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    mq_tls_ctx *other = ttc_ctx(ts_path("otherca.crt"), NULL, NULL);
    ttc *t = ttc_open(b, good, other, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, MQLITE_ERR_TLS);
    CHECK(strstr(t->err.msg, "certificate verify failed") != NULL);
    ttc_free(t);
    t = ttc_open(b, wrong, ca, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, MQLITE_ERR_TLS);
    CHECK(strstr(t->err.msg, "hostname mismatch") != NULL);
    ttc_free(t);
    t = ttc_open(b, good, ca, "127.0.0.1", MQLITE_V311); /* IP SAN */
    CHECK_EQ(t->hs_rc, 0);
    ttc_free(t);
    t = ttc_open(b, expired, ca, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, MQLITE_ERR_TLS);
    CHECK(strstr(t->err.msg, "certificate has expired") != NULL);
    fprintf(stderr, "  (expired: %s)\n", t->err.msg);
    ttc_free(t);
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_TLS_HANDSHAKE_FAILED), 3);
    mq_tls_ctx_free(ca);
    mq_tls_ctx_free(other);
    mqlite_broker_free(b);
}

/* Bad TLS listener settings fail at once, naming the file. */
static void test_tls_listener_errors(void)
{
    int pp;
    mqlite_broker *b = tb_new(&pp);
    int32_t port;
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, "/nonexistent/server.crt",
                                      ts_path("server.key"), NULL, 0, &port), MQLITE_ERR_TLS);
    CHECK(strstr(mqlite_broker_errmsg(b), "/nonexistent/server.crt") != NULL);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("server.crt"), ts_path("alice.key"),
                                      NULL, 0, &port), MQLITE_ERR_TLS);
    CHECK(strstr(mqlite_broker_errmsg(b), "does not match") != NULL);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("server.crt"), ts_path("server.key"),
                                      NULL, MQLITE_BTLS_REQUIRE_CERT, &port), MQLITE_ERR_CONFIG);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, ts_path("server.crt"), ts_path("server.key"),
                                      ts_path("ca.crt"), MQLITE_BTLS_IDENTITY_AS_USERNAME, &port),
             MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_broker_listen_tls(b, NULL, 0, NULL, NULL, NULL, 0, &port),
             MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_broker_port(b, 1), MQLITE_ERR_RANGE); /* nothing half-opened */
    mqlite_broker_free(b);
}

/* The configuration keys: per-listener TLS after each `listener` line,
 * plain and TLS listeners in one file, tls_version, errors with file:line. */
static void test_tls_config_file(void)
{
    mqlite_broker *b = mqlite_broker_new();
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    char text[2048];
    snprintf(text, sizeof text,
             "listener 0 127.0.0.1\n"
             "listener 0 127.0.0.1\n"
             "cafile %s\n"
             "certfile %s\n"
             "keyfile %s\n"
             "require_certificate true\n"
             "use_identity_as_username true\n"
             "tls_version tlsv1.3\n"
             "listener 0 127.0.0.1\n"
             "certfile %s\n"
             "keyfile %s\n"
             "ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
             "tls_version tlsv1.2\n",
             ts_path("ca.crt"), ts_path("server.crt"), ts_path("server.key"),
             ts_path("server.crt"), ts_path("server.key"));
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("tls.conf", text)), 0);
    int plain = mqlite_broker_port(b, 0), certs = mqlite_broker_port(b, 1),
        tls = mqlite_broker_port(b, 2);
    mq_tls_ctx *ca = ttc_ctx(ts_path("ca.crt"), NULL, NULL);
    mq_tls_ctx *alice = ttc_ctx(ts_path("ca.crt"), ts_path("alice.crt"), ts_path("alice.key"));
    tc *c = tc_connect(b, plain, MQLITE_V311, "p", 1);
    tc_disconnect(c);
    ttc *t = ttc_open(b, certs, alice, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, 0);
    CHECK_STR(mq_tls_version_name(t->tls), "TLSv1.3");
    CHECK_EQ(ttc_connect(t, "a", NULL, NULL), 0);
    ttc_free(t);
    t = ttc_open(b, tls, ca, "localhost", MQLITE_V311);
    CHECK_EQ(t->hs_rc, 0);
    CHECK_EQ(ttc_connect(t, "b", NULL, NULL), 0);
    ttc_free(t);
    /* Errors: TLS key outside a listener, half a key pair, bad version. */
    const char *bad[] = {
        "certfile /x\n",
        "listener 0 127.0.0.1\ncertfile /x\n",
        "listener 0 127.0.0.1\ntls_version tlsv9\n",
        "listener 0 127.0.0.1\nuse_identity_as_username true\ncertfile /x\nkeyfile /y\n",
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(bad); i++) {
        CHECK_EQ(mqlite_broker_load_config(b, ts_write("bad.conf", bad[i])), MQLITE_ERR_CONFIG);
        CHECK(strstr(mqlite_broker_errmsg(b), "bad.conf:") != NULL);
    }
    snprintf(text, sizeof text, "listener 0 127.0.0.1\ncertfile %s\nkeyfile /nonexistent.key\n",
             ts_path("server.crt"));
    CHECK(mqlite_broker_load_config(b, ts_write("bad.conf", text)) != 0);
    CHECK(strstr(mqlite_broker_errmsg(b), "/nonexistent.key") != NULL);
    CHECK_EQ(mqlite_broker_port(b, 3), MQLITE_ERR_RANGE); /* failed loads open nothing */
    mq_tls_ctx_free(ca);
    mq_tls_ctx_free(alice);
    mqlite_broker_free(b);
}

/* The client side of tls.c against software nobody here wrote: Debian's
 * mosquitto with a TLS listener (skipped when mosquitto is not installed). */
static void test_tls_client_against_mosquitto(void)
{
    if (system("command -v mosquitto >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  skipped: mosquitto is not installed\n");
        return;
    }
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(sock, (struct sockaddr *)&sa, sizeof sa);
    getsockname(sock, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);
    close(sock);
    char conf[1024];
    snprintf(conf, sizeof conf,
             "user root\nlistener %d 127.0.0.1\nallow_anonymous true\ncafile %s\ncertfile %s\n"
             "keyfile %s\nrequire_certificate true\nlog_dest none\n",
             port, ts_path("ca.crt"), ts_path("server.crt"), ts_path("server.key"));
    const char *cpath = ts_write("mosquitto.conf", conf);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("mosquitto", "mosquitto", "-c", cpath, (char *)NULL);
        _exit(127);
    }
    mq_tls_ctx *alice = ttc_ctx(ts_path("ca.crt"), ts_path("alice.crt"), ts_path("alice.key"));
    ttc *t = NULL;
    for (int i = 0; i < 100; i++) { /* until it listens: 5 s at most */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(s);
        if (ok)
            break;
        poll(NULL, 0, 50);
    }
    t = ttc_open(NULL, port, alice, "localhost", MQLITE_V5);
    CHECK_EQ(t->hs_rc, 0);
    CHECK_EQ(ttc_connect(t, "mqlite-tls", NULL, NULL), 0);
    ttc_free(t);
    kill(pid, SIGTERM);
    int st;
    for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
        poll(NULL, 0, 50);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    mq_tls_ctx_free(alice);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* the test clients' own writes */
    ts_make_certs();
    RUN(test_tls_and_plain_listeners_exchange_messages);
    RUN(test_tls_large_and_many_messages);
    RUN(test_tls_client_certificate_required);
    RUN(test_tls_client_certificate_optional);
    RUN(test_tls_identity_as_username);
    RUN(test_tls_stalled_handshake_blocks_nobody);
    RUN(test_tls_plain_connect_on_tls_port);
    RUN(test_tls_client_verification_errors);
    RUN(test_tls_listener_errors);
    RUN(test_tls_config_file);
    RUN(test_tls_client_against_mosquitto);
    TEST_MAIN_END();
}
