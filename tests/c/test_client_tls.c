/*
 * test_client_tls.c - the client library's TLS and name resolution, as a
 * user of the public API meets them: mqlite's client over TLS to mqlite's
 * broker (same thread, both poll-driven) and to Debian's mosquitto, with and
 * without client certificates; the failures (wrong CA, wrong host name,
 * expired certificate, TLS to a plain port) as CONNECT_FAILED events in
 * words; a server that accepts and never answers the handshake, and a
 * resolver that never answers, while the caller's loop keeps running and
 * the connect timeout fires on schedule. Certificates are made with
 * `openssl` at run time (test_broker_security.h). Every wait is bounded.
 */
#include "test_broker_security.h"

/* A client set up for TLS with the given CA (NULL: none set). */
static mqlite_client *tls_client(const char *id, const char *cafile, int version)
{
    mqlite_client *c = mqlite_client_new(id);
    CHECK(c != NULL);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, version), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TLS, 1), 0);
    if (cafile)
        CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_CAFILE, cafile), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 3000), 0);
    return c;
}

/* Poll client and (optional) broker until the client's connect outcome:
 * MQLITE_EVENT_CONNECTED or _CONNECT_FAILED (or _DISCONNECTED); 0 on
 * timeout. The event's error and text are copied out. */
static int drive_connect(mqlite_client *c, mqlite_broker *b, int32_t *err, char *text,
                         size_t cap)
{
    uint64_t end = tc_now_ms() + 5000;
    while (tc_now_ms() < end) {
        if (b)
            mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, b ? 2 : 20);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            int32_t t = mqlite_event_type(ev);
            if (t == MQLITE_EVENT_CONNECTED || t == MQLITE_EVENT_CONNECT_FAILED ||
                t == MQLITE_EVENT_DISCONNECTED) {
                if (err)
                    *err = mqlite_event_error(ev);
                if (text)
                    snprintf(text, cap, "%s", mqlite_event_text(ev));
                return t;
            }
        }
    }
    return 0;
}

/* Wait for one event of `type` (the broker polled too); 1 when seen. */
static int drive_until(mqlite_client *c, mqlite_broker *b, int32_t type, char *payload,
                       size_t cap)
{
    uint64_t end = tc_now_ms() + 3000;
    while (tc_now_ms() < end) {
        if (b)
            mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, b ? 2 : 20);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            if (mqlite_event_type(ev) != type)
                continue;
            if (payload) {
                size_t n = 0;
                const void *p = mqlite_event_payload(ev, &n);
                snprintf(payload, cap, "%.*s", (int)n, (const char *)p);
            }
            return 1;
        }
    }
    return 0;
}

static mqlite_broker *tls_broker(int *plain_port, int *tls_port, int flags, const char *cert,
                                 const char *key)
{
    mqlite_broker *b = tb_new(plain_port);
    int32_t p = 0;
    if (mqlite_broker_listen_tls(b, "127.0.0.1", 0, ts_path(cert), ts_path(key),
                                 ts_path("ca.crt"), flags, &p) != 0) {
        fprintf(stderr, "listen_tls: %s\n", mqlite_broker_errmsg(b));
        abort();
    }
    *tls_port = p;
    return b;
}

/* Subscribe, publish to ourselves at QoS 1 over the TLS connection, get it. */
static void round_trip(mqlite_client *c, mqlite_broker *b, const char *topic)
{
    CHECK_EQ(mqlite_client_subscribe(c, topic, 1, NULL), 0);
    CHECK(drive_until(c, b, MQLITE_EVENT_SUBACK, NULL, 0));
    CHECK_EQ(mqlite_client_publish(c, topic, "over tls", 8, 1, 0, NULL), 0);
    char got[64] = "";
    CHECK(drive_until(c, b, MQLITE_EVENT_MESSAGE, got, sizeof got));
    CHECK_STR(got, "over tls");
}

/* mqlite client <-> mqlite broker over TLS, 3.1.1 and 5.0, host name
 * "localhost" (resolved through c-ares' hosts-file lookup, verified against
 * the certificate's DNS name). */
static void test_tls_client_to_mqlite_broker(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0, "server.crt", "server.key");
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        mqlite_client *c = tls_client("tls-rt", ts_path("ca.crt"), v);
        CHECK_EQ(mqlite_client_connect(c, "localhost", tp), 0);
        int32_t err = 0;
        char text[512] = "";
        CHECK_EQ(drive_connect(c, b, &err, text, sizeof text), MQLITE_EVENT_CONNECTED);
        round_trip(c, b, "tls/rt");
        /* A megabyte each way: 16 KiB TLS records, partial writes, and
         * decrypted bytes left inside OpenSSL between polls. */
        size_t big = 1u << 20;
        char *payload = malloc(big);
        for (size_t i = 0; i < big; i++)
            payload[i] = (char)('a' + i % 26);
        CHECK_EQ(mqlite_client_publish(c, "tls/rt", payload, big, 1, 0, NULL), 0);
        int got = 0;
        uint64_t end = tc_now_ms() + 5000;
        while (!got && tc_now_ms() < end) {
            mqlite_broker_poll(b, 0);
            mqlite_client_poll(c, 2);
            const mqlite_event *ev;
            while ((ev = mqlite_client_next_event(c)) != NULL)
                if (mqlite_event_type(ev) == MQLITE_EVENT_MESSAGE) {
                    size_t n = 0;
                    const void *p = mqlite_event_payload(ev, &n);
                    got = n == big && memcmp(p, payload, big) == 0 ? 1 : -1;
                }
        }
        CHECK_EQ(got, 1);
        free(payload);
        CHECK_EQ(mqlite_client_disconnect(c, 0), 0);
        CHECK(drive_until(c, b, MQLITE_EVENT_DISCONNECTED, NULL, 0));
        mqlite_client_free(c);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_TLS_HANDSHAKE_FAILED), 0);
    mqlite_broker_free(b);
}

/* A broker that requires client certificates: refused without one (the
 * event says why), accepted with alice's (and a key passphrase). */
static void test_tls_client_certificate(void)
{
    int pp, tp;
    mqlite_broker *b =
        tls_broker(&pp, &tp, MQLITE_BTLS_REQUIRE_CERT, "server.crt", "server.key");
    mqlite_client *c = tls_client("no-cert", ts_path("ca.crt"), MQLITE_V5);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", tp), 0);
    int32_t err = 0;
    char text[512] = "";
    int t = drive_connect(c, b, &err, text, sizeof text);
    CHECK(t == MQLITE_EVENT_CONNECT_FAILED || t == MQLITE_EVENT_DISCONNECTED);
    CHECK(strstr(text, "certificate") != NULL);
    if (!strstr(text, "certificate"))
        fprintf(stderr, "  event text: %s\n", text);
    mqlite_client_free(c);

    /* An encrypted copy of alice's key, opened with its passphrase. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in '%s' -aes256 -passout pass:s3cret -out '%s' 2>/dev/null",
             ts_path("alice.key"), ts_path("alice-enc.key"));
    CHECK_EQ(system(cmd), 0);
    c = tls_client("alice", ts_path("ca.crt"), MQLITE_V5);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_CERTFILE, ts_path("alice.crt")), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_KEYFILE, ts_path("alice-enc.key")), 0);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_KEY_PASSWORD, "wrong"), 0);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", tp), MQLITE_ERR_TLS);
    CHECK(strstr(mqlite_client_errmsg(c), "alice-enc.key") != NULL);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_KEY_PASSWORD, "s3cret"), 0);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", tp), 0);
    CHECK_EQ(drive_connect(c, b, &err, text, sizeof text), MQLITE_EVENT_CONNECTED);
    round_trip(c, b, "tls/cert");
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* What a user sees when verification fails: CONNECT_FAILED, MQLITE_ERR_TLS,
 * OpenSSL's reason in words; and the broker keeps serving others. */
static void expect_tls_failure(mqlite_broker *b, mqlite_client *c, const char *host, int port,
                               const char *words)
{
    CHECK_EQ(mqlite_client_connect(c, host, port), 0);
    int32_t err = 0;
    char text[512] = "";
    CHECK_EQ(drive_connect(c, b, &err, text, sizeof text), MQLITE_EVENT_CONNECT_FAILED);
    CHECK_EQ(err, MQLITE_ERR_TLS);
    CHECK(strstr(text, words) != NULL);
    if (!strstr(text, words))
        fprintf(stderr, "  expected \"%s\" in: %s\n", words, text);
    CHECK_EQ(mqlite_client_state(c), MQLITE_STATE_IDLE);
}

static void test_tls_client_verification_failures(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0, "server.crt", "server.key");
    /* Wrong CA. */
    mqlite_client *c = tls_client("wrong-ca", ts_path("otherca.crt"), MQLITE_V311);
    expect_tls_failure(b, c, "localhost", tp, "server certificate verify failed");
    /* ... accepted only with the loudly named insecure option. */
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TLS_INSECURE_SKIP_VERIFY, 1), 0);
    CHECK_EQ(mqlite_client_connect(c, "localhost", tp), 0);
    CHECK_EQ(drive_connect(c, b, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
    mqlite_client_free(c);

    /* Wrong host name: the certificate names localhost and 127.0.0.1. */
    c = tls_client("wrong-name", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_SERVER_NAME, "broker.example.org"), 0);
    expect_tls_failure(b, c, "127.0.0.1", tp, "hostname mismatch");
    /* ... accepted with the name check (only) turned off. */
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TLS_VERIFY_HOSTNAME, 0), 0);
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", tp), 0);
    CHECK_EQ(drive_connect(c, b, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
    mqlite_client_free(c);

    /* TLS to the plain port: the broker reads a ClientHello as MQTT. */
    c = tls_client("to-plain", ts_path("ca.crt"), MQLITE_V311);
    expect_tls_failure(b, c, "127.0.0.1", pp, "TLS port");
    mqlite_client_free(c);

    /* Minimum TLS 1.3 against a TLS 1.3 server works; bad values refused. */
    c = tls_client("tls13", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TLS_MIN_VERSION, 11), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_TLS_MIN_VERSION, 13), 0);
    CHECK_EQ(mqlite_client_get_int(c, MQLITE_OPT_TLS_MIN_VERSION), 13);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_ALPN, "mqtt"), 0);
    CHECK_EQ(mqlite_client_connect(c, "localhost", tp), 0);
    CHECK_EQ(drive_connect(c, b, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
    mqlite_client_free(c);

    /* A bad cipher list is refused at connect, in words. */
    c = tls_client("bad-cipher", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_CIPHERS, "NO-SUCH-CIPHER"), 0);
    CHECK_EQ(mqlite_client_connect(c, "localhost", tp), MQLITE_ERR_CONFIG);
    CHECK(strstr(mqlite_client_errmsg(c), "cipher") != NULL);
    mqlite_client_free(c);

    /* The broker kept serving: a good client still gets through. */
    c = tls_client("good", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_connect(c, "localhost", tp), 0);
    CHECK_EQ(drive_connect(c, b, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* A server whose certificate expired (2020). */
static void test_tls_client_expired_certificate(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0, "expired.crt", "expired.key");
    mqlite_client *c = tls_client("expired", ts_path("ca.crt"), MQLITE_V311);
    expect_tls_failure(b, c, "localhost", tp, "certificate has expired");
    mqlite_client_free(c);
    mqlite_broker_free(b);
}

/* A listening socket this test owns (127.0.0.1, free port). */
static int stall_listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(s, 4), 0);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return s;
}

/* Drive with mqlite_client_poll(0) only, as a caller's busy loop would;
 * every call must return at once. Returns the ms from connect to the
 * outcome event (CONNECT_FAILED expected), -1 if none within 3 s. */
static long poll0_until_failed(mqlite_client *c, uint64_t t0, int32_t *err, char *text,
                               size_t cap, long *worst_call_us, int *fd_ok, int accept_fd)
{
    *worst_call_us = 0;
    *fd_ok = 1;
    int peer = -1;
    for (int i = 0; i < 300000 && tc_now_ms() < t0 + 3000; i++) {
        if (accept_fd >= 0 && peer < 0)
            peer = accept(accept_fd, NULL, NULL); /* non-blocking: the test's socket */
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int32_t n = mqlite_client_poll(c, 0);
        clock_gettime(CLOCK_MONOTONIC, &z);
        long us = (z.tv_sec - a.tv_sec) * 1000000L + (z.tv_nsec - a.tv_nsec) / 1000L;
        if (us > *worst_call_us)
            *worst_call_us = us;
        if (mqlite_client_state(c) == MQLITE_STATE_CONNECTING && mqlite_client_fd(c) < 0)
            *fd_ok = 0;
        if (n > 0) {
            const mqlite_event *ev = mqlite_client_next_event(c);
            if (ev && mqlite_event_type(ev) == MQLITE_EVENT_CONNECT_FAILED) {
                *err = mqlite_event_error(ev);
                snprintf(text, cap, "%s", mqlite_event_text(ev));
                if (peer >= 0)
                    close(peer);
                return (long)(tc_now_ms() - t0);
            }
        }
        /* A caller's loop doing other work; keeps this test light. */
        poll(NULL, 0, 1);
    }
    if (peer >= 0)
        close(peer);
    return -1;
}

/* The handshake test: a server that accepts the TCP connection and
 * never answers the ClientHello. The caller's loop never waits:
 * mqlite_client_poll(0) returns at once every time, the fd and
 * next_timeout_ms stay truthful, and the connect timeout fires on schedule
 * with a clear error. */
static void test_tls_stalled_handshake_never_blocks_the_loop(void)
{
    int port;
    int ls = stall_listener(&port);
    fcntl(ls, F_SETFL, O_NONBLOCK);
    mqlite_client *c = tls_client("stall", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 400), 0);
    uint64_t t0 = tc_now_ms();
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    CHECK(tc_now_ms() - t0 < 50);
    /* Once the ClientHello is out, the client waits to read, not write. */
    for (int i = 0; i < 50 && mqlite_client_want_write(c); i++)
        mqlite_client_poll(c, 10);
    CHECK_EQ(mqlite_client_want_write(c), 0);
    CHECK(mqlite_client_fd(c) >= 0);
    int32_t left = mqlite_client_next_timeout_ms(c);
    CHECK(left > 0 && left <= 400);
    int32_t err = 0;
    char text[512] = "";
    long worst = 0;
    int fd_ok = 0;
    long took = poll0_until_failed(c, t0, &err, text, sizeof text, &worst, &fd_ok, ls);
    printf("  stalled handshake: CONNECT_FAILED after %ld ms (timeout 400); slowest "
           "poll(0) %ld us\n", took, worst);
    CHECK(took >= 390 && took < 800);
    CHECK(worst < 20000);
    CHECK(fd_ok);
    CHECK_EQ(err, MQLITE_ERR_TIMEOUT);
    CHECK(strstr(text, "TLS handshake timed out") != NULL);
    CHECK_EQ(mqlite_client_fd(c), -1);
    mqlite_client_free(c);
    close(ls);
}

/* The same stall driven by the caller's own loop: poll() on
 * mqlite_client_fd() for POLLIN (+ POLLOUT when mqlite_client_want_write())
 * with mqlite_client_next_timeout_ms() as the timeout, then
 * mqlite_client_io(). The loop sleeps in its own poll() until the deadline
 * (no busy wait: few rounds) and the timeout fires on schedule. */
static void test_tls_stalled_handshake_external_loop(void)
{
    int port;
    int ls = stall_listener(&port);
    mqlite_client *c = tls_client("stall-ext", ts_path("ca.crt"), MQLITE_V311);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 300), 0);
    uint64_t t0 = tc_now_ms();
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    int rounds = 0, failed = 0;
    int32_t err = 0;
    while (!failed && rounds < 1000 && tc_now_ms() < t0 + 3000) {
        rounds++;
        int fd = mqlite_client_fd(c);
        struct pollfd p = {fd, (short)(POLLIN | (mqlite_client_want_write(c) ? POLLOUT : 0)), 0};
        int32_t t = mqlite_client_next_timeout_ms(c);
        CHECK(fd >= 0);
        CHECK(t >= 0 && t <= 300);
        int n = poll(&p, 1, t);
        mqlite_client_io(c, n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)),
                         n > 0 && (p.revents & (POLLOUT | POLLERR)));
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL)
            if (mqlite_event_type(ev) == MQLITE_EVENT_CONNECT_FAILED) {
                failed = 1;
                err = mqlite_event_error(ev);
            }
    }
    uint64_t took = tc_now_ms() - t0;
    printf("  stalled handshake, external loop: CONNECT_FAILED after %llu ms in %d rounds\n",
           (unsigned long long)took, rounds);
    CHECK(failed);
    CHECK_EQ(err, MQLITE_ERR_TIMEOUT);
    CHECK(took >= 295 && took < 600);
    CHECK(rounds < 20);
    mqlite_client_free(c);
    close(ls);
}

/* A UDP socket this test owns, posing as a DNS server that never answers. */
static int silent_resolver(int *port)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return s;
}

/* The DNS test: mqlite_client_connect returns at once, the loop
 * never waits, the resolver was really asked, and the connect fails on
 * schedule with MQLITE_ERR_DNS. */
static void test_dns_silent_resolver_times_out_on_schedule(void)
{
    int port;
    int us = silent_resolver(&port);
    mqlite_client *c = mqlite_client_new("dns");
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_DNS_SERVERS, servers), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 500), 0);
    uint64_t t0 = tc_now_ms();
    CHECK_EQ(mqlite_client_connect(c, "broker.mqlite-test.invalid", 1883), 0);
    CHECK(tc_now_ms() - t0 < 50);
    CHECK_EQ(mqlite_client_state(c), MQLITE_STATE_CONNECTING);
    CHECK(mqlite_client_fd(c) >= 0);
    CHECK_EQ(mqlite_client_want_write(c), 0);
    int32_t left = mqlite_client_next_timeout_ms(c);
    CHECK(left > 0 && left <= 500);
    int32_t err = 0;
    char text[512] = "";
    long worst = 0;
    int fd_ok = 0;
    long took = poll0_until_failed(c, t0, &err, text, sizeof text, &worst, &fd_ok, -1);
    printf("  silent resolver: CONNECT_FAILED after %ld ms (timeout 500); slowest "
           "poll(0) %ld us\n", took, worst);
    CHECK(took >= 490 && took < 900);
    CHECK(worst < 20000);
    CHECK(fd_ok);
    CHECK_EQ(err, MQLITE_ERR_DNS);
    CHECK(strstr(text, "broker.mqlite-test.invalid") != NULL);
    CHECK(strstr(text, "500 ms") != NULL);
    /* The query did reach the test's resolver. */
    uint8_t q[512];
    CHECK(recv(us, q, sizeof q, 0) > 12);
    mqlite_client_free(c);
    close(us);
}

/* ---- a tiny DNS server that answers ---- */

/* Answer one query read from `s`: A -> 127.0.0.1, AAAA -> ::1. 1 if one was
 * answered. */
static int dns_answer_one(int s)
{
    uint8_t q[512], r[600];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 17)
        return 0;
    size_t qend = 12;
    while (qend < (size_t)n && q[qend])
        qend += q[qend] + 1u;
    qend += 5; /* root label, QTYPE, QCLASS */
    if (qend > (size_t)n)
        return 0;
    int type = (q[qend - 4] << 8) | q[qend - 3];
    memcpy(r, q, qend);
    r[2] = 0x81; /* response, recursion desired */
    r[3] = 0x80; /* recursion available, NOERROR */
    r[6] = 0;
    r[7] = (type == 1 || type == 28) ? 1 : 0; /* one answer */
    r[8] = r[9] = r[10] = r[11] = 0;
    size_t w = qend;
    if (r[7]) {
        uint8_t rr[] = {0xc0, 0x0c, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60, 0,
                        (uint8_t)(type == 1 ? 4 : 16)};
        memcpy(r + w, rr, sizeof rr);
        w += sizeof rr;
        if (type == 1) {
            uint8_t a[4] = {127, 0, 0, 1};
            memcpy(r + w, a, 4);
            w += 4;
        } else {
            uint8_t a6[16] = {0};
            a6[15] = 1;
            memcpy(r + w, a6, 16);
            w += 16;
        }
    }
    sendto(s, r, w, 0, (struct sockaddr *)&from, fl);
    return 1;
}

/* Name resolution through the client's loop: a test resolver answers AAAA
 * ::1 (nothing listens there) and A 127.0.0.1 (the broker): both families
 * are tried and the connection succeeds over IPv4. */
static void test_dns_resolves_and_tries_both_families(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0, "server.crt", "server.key");
    int port;
    int us = silent_resolver(&port);
    mqlite_client *c = mqlite_client_new("dns-ok");
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_DNS_SERVERS, servers), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 2000), 0);
    CHECK_EQ(mqlite_client_connect(c, "broker.mqlite-test.invalid", pp), 0);
    int answered = 0, outcome = 0;
    uint64_t end = tc_now_ms() + 3000;
    while (!outcome && tc_now_ms() < end) {
        answered += dns_answer_one(us);
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL)
            if (mqlite_event_type(ev) == MQLITE_EVENT_CONNECTED ||
                mqlite_event_type(ev) == MQLITE_EVENT_CONNECT_FAILED) {
                outcome = mqlite_event_type(ev);
                if (outcome != MQLITE_EVENT_CONNECTED)
                    fprintf(stderr, "  %s\n", mqlite_event_text(ev));
            }
    }
    CHECK_EQ(outcome, MQLITE_EVENT_CONNECTED);
    CHECK_EQ(answered, 2); /* one A and one AAAA question */
    mqlite_client_free(c);
    close(us);
    mqlite_broker_free(b);
}

/* A listener on [::1]:port whose accept queue is full: further SYNs are
 * dropped and a connect hangs, as towards a host behind a broken route.
 * Returns the listener (fds[] get the queued connections) or -1 when IPv6
 * loopback is not available or the queue never filled. */
static int blackhole6(int port, int *fds, int *nfds)
{
    *nfds = 0;
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons((uint16_t)port);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 0) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    for (int i = 0; i < 8; i++) {
        int c = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(c, (struct sockaddr *)&sa, sizeof sa);
        fds[(*nfds)++] = c;
        struct pollfd p = {c, POLLOUT, 0};
        if (poll(&p, 1, 100) == 0)
            return s; /* this one hangs: the queue is full */
    }
    for (int i = 0; i < *nfds; i++)
        close(fds[i]);
    close(s);
    return -1;
}

/* Both families, one of them dropping SYNs: the resolver answers ::1 (a
 * blackhole) and 127.0.0.1 (the broker, same port). The connect timeout is
 * shared by the addresses, so the client still connects over IPv4 within
 * the timeout instead of spending all of it on IPv6. */
static void test_dns_blackholed_family_leaves_time_for_the_other(void)
{
    int pp, tp;
    mqlite_broker *b = tls_broker(&pp, &tp, 0, "server.crt", "server.key");
    int fds[8], nfds = 0;
    int bh = blackhole6(pp, fds, &nfds);
    if (bh < 0) {
        fprintf(stderr, "  skipped: no IPv6 loopback to blackhole\n");
        mqlite_broker_free(b);
        return;
    }
    int port;
    int us = silent_resolver(&port);
    mqlite_client *c = mqlite_client_new("dns-bh");
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_DNS_SERVERS, servers), 0);
    CHECK_EQ(mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 2000), 0);
    uint64_t t0 = tc_now_ms();
    CHECK_EQ(mqlite_client_connect(c, "broker.mqlite-test.invalid", pp), 0);
    int outcome = 0;
    uint64_t took = 0;
    while (!outcome && tc_now_ms() < t0 + 4000) {
        dns_answer_one(us);
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL)
            if (mqlite_event_type(ev) == MQLITE_EVENT_CONNECTED ||
                mqlite_event_type(ev) == MQLITE_EVENT_CONNECT_FAILED) {
                outcome = mqlite_event_type(ev);
                took = tc_now_ms() - t0;
                if (outcome != MQLITE_EVENT_CONNECTED)
                    fprintf(stderr, "  %s\n", mqlite_event_text(ev));
            }
    }
    printf("  IPv6 blackholed: connected over IPv4 after %llu ms (timeout 2000)\n",
           (unsigned long long)took);
    CHECK_EQ(outcome, MQLITE_EVENT_CONNECTED);
    CHECK(took < 1600);
    mqlite_client_free(c);
    close(us);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    close(bh);
    mqlite_broker_free(b);
}

/* ---- Debian's mosquitto with TLS listeners ---- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    return ntohs(sa.sin_port);
}

static int wait_listening(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    for (int i = 0; i < 100; i++) { /* 5 s at most */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(s);
        if (ok)
            return 1;
        poll(NULL, 0, 50);
    }
    return 0;
}

static void stop_pid(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
        poll(NULL, 0, 50);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
}

/* mqlite's client against software nobody here wrote: mosquitto with one
 * TLS listener that does not ask for client certificates and one that
 * requires them. */
static void test_tls_client_against_mosquitto(void)
{
    if (system("command -v mosquitto >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  skipped: mosquitto is not installed\n");
        return;
    }
    int p1 = free_port(), p2 = free_port();
    char conf[2048];
    snprintf(conf, sizeof conf,
             "user root\nallow_anonymous true\nlog_dest none\n"
             "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
             "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
             "require_certificate true\n",
             p1, ts_path("ca.crt"), ts_path("server.crt"), ts_path("server.key"), p2,
             ts_path("ca.crt"), ts_path("server.crt"), ts_path("server.key"));
    const char *cpath = ts_write("mosquitto-client.conf", conf);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("mosquitto", "mosquitto", "-c", cpath, (char *)NULL);
        _exit(127);
    }
    CHECK(wait_listening(p1) && wait_listening(p2));
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        /* No client certificate needed. */
        mqlite_client *c = tls_client("mqlite-tls", ts_path("ca.crt"), v);
        CHECK_EQ(mqlite_client_connect(c, "localhost", p1), 0);
        CHECK_EQ(drive_connect(c, NULL, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
        round_trip(c, NULL, "mosq/tls");
        mqlite_client_free(c);
        /* Required: with alice's certificate. */
        c = tls_client("mqlite-alice", ts_path("ca.crt"), v);
        CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_CERTFILE, ts_path("alice.crt")), 0);
        CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_TLS_KEYFILE, ts_path("alice.key")), 0);
        CHECK_EQ(mqlite_client_connect(c, "localhost", p2), 0);
        CHECK_EQ(drive_connect(c, NULL, NULL, NULL, 0), MQLITE_EVENT_CONNECTED);
        round_trip(c, NULL, "mosq/cert");
        mqlite_client_free(c);
    }
    /* Required, and none given: refused, and the event says so. */
    mqlite_client *c = tls_client("mqlite-nocert", ts_path("ca.crt"), MQLITE_V5);
    CHECK_EQ(mqlite_client_connect(c, "localhost", p2), 0);
    char text[512] = "";
    int t = drive_connect(c, NULL, NULL, text, sizeof text);
    CHECK(t == MQLITE_EVENT_CONNECT_FAILED || t == MQLITE_EVENT_DISCONNECTED);
    CHECK(strstr(text, "certificate") != NULL);
    if (!strstr(text, "certificate"))
        fprintf(stderr, "  event text: %s\n", text);
    mqlite_client_free(c);
    /* Wrong CA against mosquitto. */
    c = tls_client("mqlite-wrongca", ts_path("otherca.crt"), MQLITE_V5);
    CHECK_EQ(mqlite_client_connect(c, "localhost", p1), 0);
    int32_t err = 0;
    CHECK_EQ(drive_connect(c, NULL, &err, text, sizeof text), MQLITE_EVENT_CONNECT_FAILED);
    CHECK_EQ(err, MQLITE_ERR_TLS);
    CHECK(strstr(text, "certificate verify failed") != NULL);
    mqlite_client_free(c);
    stop_pid(pid);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    ts_make_certs();
    RUN(test_tls_client_to_mqlite_broker);
    RUN(test_tls_client_certificate);
    RUN(test_tls_client_verification_failures);
    RUN(test_tls_client_expired_certificate);
    RUN(test_tls_stalled_handshake_never_blocks_the_loop);
    RUN(test_tls_stalled_handshake_external_loop);
    RUN(test_dns_silent_resolver_times_out_on_schedule);
    RUN(test_dns_resolves_and_tries_both_families);
    RUN(test_dns_blackholed_family_leaves_time_for_the_other);
    RUN(test_tls_client_against_mosquitto);
    TEST_MAIN_END();
}
