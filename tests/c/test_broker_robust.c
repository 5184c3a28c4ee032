/*
 * test_broker_robust.c - bad input and hostile peers: every malformed case
 * closes only its own connection (5.0: after DISCONNECT with the precise
 * reason code) while other clients keep working; the fuzz corpus and
 * random garbage; slow consumers and clients that never read stay
 * bounded; allocation failures; stop from another thread; two brokers in
 * one process; misuse of the API.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/time.h>

#include "broker/broker.h"
#include "test_broker_harness.h"

#ifndef MQ_TEST_SOURCE_DIR
#define MQ_TEST_SOURCE_DIR "."
#endif

/* A subscriber and a publisher that must keep working. */
typedef struct witness {
    tc *sub, *pub;
    int n;
} witness;

static void witness_open(witness *w, mqlite_broker *b, int port)
{
    w->sub = tc_connect(b, port, MQLITE_V5, "witness-sub", 1);
    CHECK_EQ(tc_subscribe(w->sub, "witness", 1), 1);
    w->pub = tc_connect(b, port, MQLITE_V311, "witness-pub", 1);
    w->n = 0;
}

/* 1 when a QoS 1 round trip through the broker still works. */
static int witness_ok(witness *w)
{
    char payload[16];
    snprintf(payload, sizeof payload, "%d", ++w->n);
    tc_publish(w->pub, "witness", payload, 1, 0, (w->n % 60000) + 1);
    mq_packet m;
    if (!tc_expect_msg(w->sub, "witness", payload, &m))
        return 0;
    mq_packet a = pk_ack(MQLITE_PKT_PUBACK, m.packet_id);
    tc_send(w->sub, &a);
    return 1;
}

static void witness_close(witness *w)
{
    tc_disconnect(w->sub);
    tc_disconnect(w->pub);
}

typedef struct bad_case {
    const char *name;
    const char *hex;
    int reason; /* 5.0 DISCONNECT reason expected; -1: closed without one */
} bad_case;

/* After CONNECT on a 5.0 connection. Ids: MQTT 5.0 unless noted. */
static const bad_case bad_v5[] = {
    /* [MQTT-3.3.1-4]: QoS 3 is a Malformed Packet. */
    {"publish qos 3", "36 07 00 01 61 00 01 00 78", 0x81},
    /* 1.5.5: a Variable Byte Integer of more than 4 bytes. */
    {"remaining length 5 bytes", "30 ff ff ff ff 7f", 0x81},
    /* [MQTT-1.5.5-1]: not the minimum number of bytes. */
    {"remaining length not minimal", "c0 80 00", 0x81},
    /* [MQTT-1.5.4-1]: ill-formed UTF-8 in the topic. */
    {"topic bad utf-8", "30 05 00 01 ff 00 78", 0x81},
    /* [MQTT-1.5.4-1]: an encoded surrogate. */
    {"topic surrogate", "30 07 00 03 ed a0 80 00 78", 0x81},
    /* [MQTT-1.5.4-2]: U+0000. */
    {"topic nul", "30 05 00 01 00 00 78", 0x81},
    /* [MQTT-2.1.3-1]: reserved flags of SUBSCRIBE must be 0010. */
    {"subscribe flags", "80 07 00 01 00 00 01 61 00", 0x81},
    /* [MQTT-2.1.3-1]: PUBREL flags must be 0010. */
    {"pubrel flags", "60 02 00 01", 0x81},
    /* [MQTT-3.3.1-2]: DUP must be 0 for QoS 0. */
    {"dup with qos 0", "38 05 00 01 61 00 78", 0x81},
    /* 2.1.2: packet type 0 is reserved. */
    {"packet type 0", "00 00", 0x81},
    /* 3.12: PINGREQ has no payload. */
    {"pingreq with payload", "c0 01 00", 0x81},
    /* 2.2.2.2: a property twice is a Protocol Error. */
    {"duplicate property", "30 09 00 01 61 04 01 01 01 01 78", 0x82},
    /* 2.2.2.2: an unknown property identifier is malformed. */
    {"unknown property", "30 06 00 01 61 02 05 00", 0x81},
    /* 2.2.2.2: a property not valid for the packet is malformed. */
    {"property not allowed", "30 09 00 01 61 05 11 00 00 00 00", 0x81},
    /* A field that runs past the packet's end. */
    {"truncated topic", "30 02 00 05", 0x81},
    /* [MQTT-4.7.0-1]: no wildcards in a Topic Name -> 0x90. */
    {"topic with wildcard", "30 05 00 02 61 23 00", 0x90},
    /* [MQTT-2.2.1-3]: QoS > 0 needs a non-zero Packet Identifier. */
    {"packet id 0", "32 06 00 01 61 00 00 00", 0x82},
    /* [MQTT-3.3.4-6]: no Subscription Identifier from a client. */
    {"subscription id in publish", "30 07 00 01 61 02 0b 01 78", 0x82},
    /* 3.8.3: a SUBSCRIBE without payload is a Protocol Error. */
    {"subscribe without filters", "82 03 00 01 00", 0x82},
    /* 3.10.3: likewise UNSUBSCRIBE. */
    {"unsubscribe without filters", "a2 03 00 01 00", 0x82},
    /* 3.8.3.1: Retain Handling 3 is a Protocol Error. */
    {"retain handling 3", "82 07 00 01 00 00 01 61 30", 0x82},
    /* 3.8.3.1: Maximum QoS 3 is a Protocol Error. */
    {"subscribe qos 3", "82 07 00 01 00 00 01 61 03", 0x82},
    /* MQTT 5.0 [MQTT-3.8.3-5]: reserved subscription option bits. */
    {"subscription options reserved bits", "82 07 00 01 00 00 01 61 c0", 0x81},
    /* MQTT 5.0 [MQTT-3.8.3-4]: No Local on a shared subscription. */
    {"no local on shared", "82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 61 04", 0x82},
    /* MQTT 5.0 [MQTT-4.7.1-1]: '#' must be last. */
    {"bad topic filter", "82 08 00 01 00 00 02 23 61 00", 0x8F},
    /* Packets only a server sends. */
    {"connack to server", "20 03 00 00 00", 0x82},
    /* 4.12: AUTH without an Authentication Method in CONNECT. */
    {"auth unexpected", "f0 00", 0x82},
    /* 3.4.2.1: a reason code PUBACK cannot carry. */
    {"puback bad reason", "40 03 00 01 05", 0x82},
};

/* After CONNECT on a 3.1.1 connection: closed, no DISCONNECT. Ids: 3.1.1. */
static const bad_case bad_v311[] = {
    {"publish qos 3 [MQTT-3.3.1-4]", "36 06 00 01 61 00 01 78", -1},
    {"remaining length 5 bytes (2.2.3)", "30 ff ff ff ff 7f", -1},
    {"topic bad utf-8 [MQTT-1.5.3-1]", "30 04 00 01 ff 78", -1},
    {"subscribe flags [MQTT-2.2.2-2]", "80 06 00 01 00 01 61 00", -1},
    {"pubrel flags [MQTT-2.2.2-2]", "60 02 00 01", -1},
    {"dup with qos 0 [MQTT-3.3.1-2]", "38 04 00 01 61 78", -1},
    {"subscribe reserved option bits [MQTT-3-8.3-4]", "82 06 00 01 00 01 61 04", -1},
    {"subscribe without filters [MQTT-3.8.3-3]", "82 02 00 01", -1},
    {"packet id 0 [MQTT-2.3.1-1]", "32 05 00 01 61 00 00", -1},
    {"auth is reserved in 3.1.1 (2.2.1)", "f0 00", -1},
    {"connack to server", "20 02 00 00", -1},
    {"topic with wildcard [MQTT-4.7.1-1]", "30 04 00 02 61 2b", -1},
};

static void run_cases(mqlite_broker *b, int port, witness *w, int version, const bad_case *cases,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tc *c = tc_connect(b, port, version, "bad", 1);
        tc_send_hex(c, cases[i].hex);
        int reason = -2;
        int closed = tc_wait_closed(c, &reason, TC_WAIT);
        if (!closed || reason != cases[i].reason)
            fprintf(stderr, "case \"%s\": closed %d, reason 0x%x (expected 0x%x)\n",
                    cases[i].name, closed, (unsigned)reason, (unsigned)cases[i].reason);
        CHECK(closed);
        CHECK_EQ(reason, cases[i].reason);
        tc_free(c);
        CHECK(witness_ok(w));
    }
}

/* MQTT 5.0 4.13 / 3.1.1 4.8: a malformed packet or protocol error closes
   that connection only (5.0: DISCONNECT with the reason first, then
   [MQTT-3.14.4-1]); every other client goes on. */
static void test_malformed_packets_close_only_that_connection(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    witness w;
    witness_open(&w, b, port);
    run_cases(b, port, &w, MQLITE_V5, bad_v5, MQ_ARRAY_LEN(bad_v5));
    run_cases(b, port, &w, MQLITE_V311, bad_v311, MQ_ARRAY_LEN(bad_v311));
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 2);
    witness_close(&w);
    mqlite_broker_free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.4-1]: a malformed CONNECT closes without CONNACK;
   MQTT 5.0 [MQTT-3.1.4-1]: a CONNACK with 0x81/0x82 may come first. */
static void test_malformed_connect(void)
{
    static const bad_case cases[] = {
        /* will QoS 3 */ {"v311 will qos 3", "10 12 00 04 4d 51 54 54 04 1e 00 3c 00 01 61 00 01 74 00 00", -1},
        /* password without user name [MQTT-3.1.2-22] */
        {"v311 password without user", "10 0f 00 04 4d 51 54 54 04 42 00 3c 00 01 61 00 00", -1},
        /* truncated */ {"v311 truncated", "10 0a 00 04 4d 51 54 54 04 02 00 3c", -1},
        {"v5 will qos 3", "10 14 00 04 4d 51 54 54 05 1e 00 3c 00 00 01 61 00 00 01 74 00 00", 0x81},
        {"v5 duplicate property", "10 14 00 04 4d 51 54 54 05 02 00 3c 06 21 00 01 21 00 01 00 01 61", 0x82},
        {"v5 bad protocol name", "10 0e 00 04 4d 51 54 58 05 02 00 3c 00 00 01 61", -1},
    };
    int port;
    mqlite_broker *b = tb_new(&port);
    witness w;
    witness_open(&w, b, port);
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        tc *c = tc_open(b, port, cases[i].reason == -1 ? MQLITE_V311 : MQLITE_V5);
        tc_send_hex(c, cases[i].hex);
        mq_packet k;
        int rc = tc_recv(c, &k, TC_WAIT);
        if (cases[i].reason == -1) {
            CHECK_EQ(rc, TC_CLOSED);
        } else {
            CHECK(rc == 0 && k.type == MQLITE_PKT_CONNACK && k.reason == cases[i].reason);
            CHECK(tc_wait_closed(c, NULL, TC_WAIT));
        }
        tc_free(c);
        CHECK(witness_ok(&w));
    }
    witness_close(&w);
    mqlite_broker_free(b);
}

/* Every file of the decoder's fuzz corpus, sent raw as the first bytes and
   again after a valid CONNECT of each level: the broker survives and keeps
   serving. */
static void test_fuzz_corpus_replay(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    witness w;
    witness_open(&w, b, port);
    const char *dir = MQ_TEST_SOURCE_DIR "/tests/fuzz/corpus/fuzz_decode";
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int files = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        unsigned char buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        files++;
        for (int v = 0; v <= MQLITE_V5; v++) {
            if (v == 1 || v == 2)
                continue;
            tc *c = v ? tc_connect(b, port, v, "corpus", 1) : tc_open(b, port, MQLITE_V5);
            if (n > 1)
                tc_send_raw(c, buf + 1, n - 1); /* byte 0 is the fuzzer's control byte */
            tb_run(b, 5);
            tc_free(c);
        }
        CHECK(witness_ok(&w));
    }
    if (d)
        closedir(d);
    CHECK(files >= 10);
    witness_close(&w);
    mqlite_broker_free(b);
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random bytes and bit-flipped valid packets after CONNECT: never a crash,
   never a leak (ASan), and the broker keeps serving. */
static void test_random_garbage(void)
{
    static const char *valid[] = {
        "30 0a 00 03 61 2f 62 00 68 65 6c 6c",           /* PUBLISH 5.0 */
        "34 0b 00 03 61 2f 62 00 07 03 01 01 78",        /* PUBLISH QoS 2 + props */
        "82 09 00 02 02 0b 07 00 01 23 01",              /* SUBSCRIBE + sub id */
        "a2 06 00 03 00 00 01 23",                       /* UNSUBSCRIBE */
        "e0 05 04 03 21 00 05",                          /* DISCONNECT, bad prop */
        "62 02 00 01", "40 02 00 01", "c0 00",
    };
    int port;
    mqlite_broker *b = tb_new(&port);
    witness w;
    witness_open(&w, b, port);
    uint32_t seed = 0x12345678u;
    for (int i = 0; i < 400; i++) {
        unsigned char buf[256];
        size_t n;
        if (i % 2) {
            n = tl_hex(valid[rng_next(&seed) % MQ_ARRAY_LEN(valid)], buf, sizeof buf);
            for (int k = 0; k < 3; k++)
                buf[rng_next(&seed) % n] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
        } else {
            n = 1 + rng_next(&seed) % 64;
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)rng_next(&seed);
        }
        tc *c = tc_connect(b, port, i % 3 ? MQLITE_V5 : MQLITE_V311, "garbage", 1);
        tc_send_raw(c, buf, n);
        tb_run(b, 2);
        tc_free(c);
        if (i % 50 == 0)
            CHECK(witness_ok(&w));
    }
    tb_run(b, 50);
    CHECK(witness_ok(&w));
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 2);
    witness_close(&w);
    mqlite_broker_free(b);
}

/* A subscriber that stops reading: what the broker holds for it is bounded
   (output buffer, then the queue limit, whose overflow is dropped and
   counted), and other clients are not slowed down. */
static void test_slow_consumer_bounded(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QUEUED, 100);
    witness w;
    witness_open(&w, b, port);
    tc *slow = tc_connect(b, port, MQLITE_V311, "slow", 1);
    CHECK_EQ(tc_subscribe(slow, "flood", 0), 0);
    tc *p = tc_connect(b, port, MQLITE_V311, "flooder", 1);
    static char big[4001];
    memset(big, 'f', 4000);
    int sent = 0;
    for (int i = 0; i < 4000; i++) { /* 16 MB, far above socket buffers */
        mq_packet pub = pk_publish("flood", big, 0, 0, 0);
        if (tc_send(p, &pub))
            break;
        sent++;
        if (i % 500 == 0)
            CHECK(witness_ok(&w));
    }
    tb_run(b, 50);
    CHECK_EQ(sent, 4000);
    CHECK(mqlite_broker_stat(b, MQLITE_BSTAT_MESSAGES_DROPPED) > 1000);
    CHECK(witness_ok(&w));
    tc_free(slow);
    tc_disconnect(p);
    witness_close(&w);
    mqlite_broker_free(b);
}

/* A client that sends QoS 1 PUBLISHes but never reads its PUBACKs: the
   broker stops reading from it once its replies pile up, instead of
   buffering without bound; others are served meanwhile. */
static void test_client_that_never_reads(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    witness w;
    witness_open(&w, b, port);
    tc *c = tc_open(b, port, MQLITE_V311);
    close(c->fd);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    mq_packet cp = pk_connect("deaf", 1, 0);
    tc_send(c, &cp);
    /* 1000 PUBLISHes per chunk, 4 KB of PUBACKs each. */
    mq_packet pub = pk_publish("deaf", "", 1, 0, 1);
    pub.version = MQLITE_V311;
    mq_buf chunk = {0};
    for (int i = 0; i < 1000; i++)
        mq_encode_buf(&pub, &chunk, &mq_default_alloc, NULL);
    size_t max_pending = 0, off = 0;
    int paused = 0;
    uint64_t end = tc_now_ms() + 20000;
    for (int sent = 0; sent < 3000 && tc_now_ms() < end;) {
        ssize_t k = send(c->fd, chunk.p + off, chunk.len - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            if (off == chunk.len) {
                off = 0;
                sent++;
            }
        }
        mqlite_broker_poll(b, k > 0 ? 0 : 1);
        for (mq_conn *x = b->conns; x; x = x->next) {
            size_t pending = x->out.len - x->out_off;
            if (pending > max_pending)
                max_pending = pending;
            paused |= x->ep_in_off;
        }
        if (paused && k <= 0)
            break;
    }
    if (!paused)
        fprintf(stderr, "max_pending %zu\n", max_pending);
    CHECK(paused); /* the broker stopped reading from it */
    CHECK(max_pending < 2 * 1024 * 1024);
    CHECK(witness_ok(&w));
    mq_buf_free(&chunk, &mq_default_alloc);
    tc_free(c);
    tb_run(b, 20);
    CHECK(witness_ok(&w));
    witness_close(&w);
    mqlite_broker_free(b);
}

/* ---- threads, processes, API ---- */

static void *run_thread(void *arg)
{
    mqlite_broker *b = arg;
    intptr_t rc = mqlite_broker_run(b);
    return (void *)rc;
}

static int blocking_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    return fd;
}

/* mqlite_broker_run in its own thread; mqlite_broker_stop from another
   thread makes it return 0. */
static void test_run_in_thread_and_stop(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, run_thread, b), 0);
    int fd = blocking_client(port);
    CHECK(fd >= 0);
    unsigned char conn[64], ack[8];
    size_t n = tl_hex("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 74", conn, sizeof conn);
    CHECK_EQ(send(fd, conn, n, MSG_NOSIGNAL), (ssize_t)n);
    CHECK_EQ(recv(fd, ack, 4, MSG_WAITALL), 4);
    CHECK_EQ(ack[0], 0x20);
    CHECK_EQ(ack[3], 0);
    mqlite_broker_stop(b);
    void *ret = NULL;
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK_EQ((intptr_t)ret, 0);
    CHECK_EQ(mqlite_broker_poll(b, 0), MQLITE_ERR_STATE);
    close(fd);
    mqlite_broker_free(b);
}

/* No global state: two brokers in one process keep their own clients,
   messages and counters. */
static void test_two_brokers_do_not_interfere(void)
{
    int p1, p2;
    mqlite_broker *b1 = tb_new(&p1), *b2 = tb_new(&p2);
    tc *s1 = tc_connect(b1, p1, MQLITE_V5, "same", 1);
    tc *s2 = tc_connect(b2, p2, MQLITE_V5, "same", 1);
    CHECK_EQ(tc_subscribe(s1, "t", 0), 0);
    CHECK_EQ(tc_subscribe(s2, "t", 0), 0);
    tc *p = tc_connect(b1, p1, MQLITE_V5, "pub", 1);
    tc_publish(p, "t", "for b1", 0, 1, 0);
    CHECK(tc_expect_msg(s1, "t", "for b1", NULL));
    mqlite_broker_poll(b2, 0);
    CHECK(tc_quiet(s2));
    CHECK(tc_quiet(s1)); /* take-over did not cross brokers */
    CHECK_EQ(mqlite_broker_stat(b1, MQLITE_BSTAT_RETAINED), 1);
    CHECK_EQ(mqlite_broker_stat(b2, MQLITE_BSTAT_RETAINED), 0);
    CHECK_EQ(mqlite_broker_stat(b1, MQLITE_BSTAT_CLIENTS_CONNECTED), 2);
    CHECK_EQ(mqlite_broker_stat(b2, MQLITE_BSTAT_CLIENTS_CONNECTED), 1);
    tc_disconnect(s1);
    tc_disconnect(s2);
    tc_disconnect(p);
    mqlite_broker_free(b1);
    mqlite_broker_free(b2);
}

/* Public entry points check their handle: MQLITE_ERR_MISUSE, no crash. */
static void test_api_misuse(void)
{
    CHECK_EQ(mqlite_broker_poll(NULL, 0), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_run(NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_set_int(NULL, MQLITE_BOPT_MAX_QOS, 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_get_int(NULL, MQLITE_BOPT_MAX_QOS), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_listen(NULL, NULL, 0, NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_load_config(NULL, "x"), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_port(NULL, 0), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_broker_stat(NULL, MQLITE_BSTAT_RETAINED), MQLITE_ERR_MISUSE);
    CHECK(mqlite_broker_errmsg(NULL) != NULL);
    mqlite_broker_stop(NULL);
    mqlite_broker_free(NULL);
    CHECK(mqlite_broker_new_with_allocator(NULL, NULL) == NULL);
    mqlite_broker *b = mqlite_broker_new();
    CHECK_EQ(mqlite_broker_port(b, 0), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_broker_set_int(b, 999, 1), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QOS, 3), MQLITE_ERR_RANGE);
    CHECK(strstr(mqlite_broker_errmsg(b), "MQLITE_BOPT_MAX_QOS") != NULL);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_QOS), 2);
    CHECK_EQ(mqlite_broker_get_int(b, 999), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_broker_stat(b, 999), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_broker_listen(b, "127.0.0.1", 70000, NULL), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_broker_listen(b, "no.such.host.invalid", 0, NULL), MQLITE_ERR_DNS);
    mqlite_broker_stop(b);
    CHECK_EQ(mqlite_broker_run(b), 0);
    mqlite_broker_free(b);
}

/* ---- allocation failures ---- */

typedef struct failalloc {
    long n, fail_at, live;
} failalloc;

static void *fa_fn(void *ud, void *p, size_t size)
{
    failalloc *fa = ud;
    if (size == 0) {
        if (p) {
            fa->live--;
            free(p);
        }
        return NULL;
    }
    if (++fa->n == fa->fail_at)
        return NULL;
    void *q = realloc(p, size);
    if (q && !p)
        fa->live++;
    return q;
}

/* A raw exchange that tolerates any outcome. */
static void soft_exchange(tc *c, const char *hex)
{
    tc_send_hex(c, hex);
    mq_packet k;
    while (tc_recv(c, &k, 20) == 0)
        ;
}

static long alloc_scenario(long fail_at)
{
    failalloc fa = {0, fail_at, 0};
    mqlite_broker *b = mqlite_broker_new_with_allocator(fa_fn, &fa);
    if (b) {
        int32_t port = 0;
        mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 1);
        if (mqlite_broker_listen(b, "127.0.0.1", 0, &port) == 0) {
            tc *s = tc_open(b, port, MQLITE_V5);
            tc *p = tc_open(b, port, MQLITE_V311);
            /* 5.0 CONNECT "s", session expiry 60; SUBSCRIBE "#" and "+" */
            soft_exchange(s, "10 13 00 04 4d 51 54 54 05 02 00 3c 05 11 00 00 00 3c 00 01 73");
            soft_exchange(s, "82 0d 00 01 02 0b 07 00 01 23 02 00 01 2b 01");
            soft_exchange(p, "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 70");
            soft_exchange(p, "33 08 00 03 61 2f 62 00 01 78");    /* QoS 1 retained */
            soft_exchange(p, "34 08 00 03 61 2f 63 00 02 79");    /* QoS 2 */
            soft_exchange(p, "62 02 00 02");
            soft_exchange(s, "50 02 00 01");
            tb_run(b, 5);
            tc_free(s); /* offline: the session stays with its queue */
            soft_exchange(p, "32 08 00 03 61 2f 64 00 03 7a");
            tc_free(p);
            tb_run(b, 5);
        }
        mqlite_broker_free(b);
    }
    CHECK_EQ(fa.live, 0);
    return fa.n;
}

/* Every allocation of the scenario fails once in turn: the broker never
   crashes and frees everything (SQLite's faultsim, curl's torture). */
static void test_allocation_failures(void)
{
    long total = alloc_scenario(0);
    CHECK(total > 20);
    for (long i = 1; i <= total; i++)
        alloc_scenario(i);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_malformed_packets_close_only_that_connection);
    RUN(test_malformed_connect);
    RUN(test_fuzz_corpus_replay);
    RUN(test_random_garbage);
    RUN(test_slow_consumer_bounded);
    RUN(test_client_that_never_reads);
    RUN(test_run_in_thread_and_stop);
    RUN(test_two_brokers_do_not_interfere);
    RUN(test_api_misuse);
    RUN(test_allocation_failures);
    TEST_MAIN_END();
}
