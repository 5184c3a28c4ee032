/*
 * test_broker_harness.h - raw MQTT clients against an embedded broker, for
 * the tests/c/test_broker*.c suites (in the manner of mosquitto's
 * test/broker/ scripts: exact packets in, exact packets out).
 *
 * The broker listens on 127.0.0.1 port 0 and is driven from the test
 * thread: every wait for a packet runs mqlite_broker_poll() rounds, so
 * there is no thread and no race. Clients are plain sockets; packets are
 * built with the internal codec (mq_packet + mq_encode_buf) and decoded
 * with mq_decode in the client role, so what a test sees is what went over
 * TCP. Every wait is bounded.
 */
#ifndef TEST_BROKER_HARNESS_H
#define TEST_BROKER_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "mqlite.h"
#include "props.h"
#include "testlib.h"

#define TC_TIMEOUT 1
#define TC_CLOSED 2
#define TC_WAIT 2000 /* ms: how long a test waits for something expected */
#define TC_QUIET 150 /* ms: how long a test waits to see that nothing comes */

static inline uint64_t tc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the broker ---- */

static inline mqlite_broker *tb_new(int *port)
{
    mqlite_broker *b = mqlite_broker_new();
    if (!b) {
        fprintf(stderr, "mqlite_broker_new failed\n");
        abort();
    }
    int32_t p = 0;
    if (mqlite_broker_listen(b, "127.0.0.1", 0, &p) != 0 || p <= 0) {
        fprintf(stderr, "listen failed: %s\n", mqlite_broker_errmsg(b));
        abort();
    }
    /* $SYS off unless a test wants it: its retained messages would count. */
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    /* Tests provoke protocol errors on purpose: log them only on request. */
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL,
                          getenv("MQ_TEST_BROKER_LOG") ? MQLITE_LOG_DEBUG : MQLITE_LOG_ERROR);
    *port = p;
    return b;
}

/* Run broker rounds for about ms milliseconds. */
static inline void tb_run(mqlite_broker *b, int ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)ms;
    while (tc_now_ms() < end)
        mqlite_broker_poll(b, 5);
}

/* ---- raw clients ---- */

typedef struct tc {
    mqlite_broker *b;
    int fd;
    int version;
    int closed;
    int session_present;
    uint8_t *buf;
    size_t len, cap;
    uint8_t *pkt; /* bytes of the last packet received (views point here) */
    size_t pkt_len;
    mq_packet connack;
} tc;

static inline tc *tc_open(mqlite_broker *b, int port, int version)
{
    tc *c = calloc(1, sizeof *c);
    c->b = b;
    c->version = version;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        abort();
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    mqlite_broker_poll(b, 0);
    return c;
}

static inline void tc_free(tc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->pkt);
    free(c);
}

/* Close the socket without DISCONNECT (an "abnormal" loss), let the broker
 * see it. */
static inline void tc_drop(tc *c)
{
    close(c->fd);
    c->fd = -1;
    tb_run(c->b, 20);
    tc_free(c);
}

/* Send raw bytes; 0, or -1 when the broker has closed the connection. */
static inline int tc_send_raw(tc *c, const void *p, size_t n)
{
    const uint8_t *q = p;
    uint64_t end = tc_now_ms() + TC_WAIT;
    while (n) {
        ssize_t k = send(c->fd, q, n, MSG_NOSIGNAL);
        if (k > 0) {
            q += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (tc_now_ms() > end)
                return -1;
            mqlite_broker_poll(c->b, 1);
        } else {
            return -1;
        }
    }
    mqlite_broker_poll(c->b, 0);
    return 0;
}

static inline int tc_send_hex(tc *c, const char *hex)
{
    unsigned char buf[4096];
    size_t n = tl_hex(hex, buf, sizeof buf);
    return tc_send_raw(c, buf, n);
}

/* Encode a test packet (its version defaults to `version`) into *out
 * (free with mq_buf_free); a packet that does not encode is a bug in the
 * test: say so and abort. Shared by the plain and the TLS test clients. */
static inline void tc_encode(mq_packet *p, int version, mq_buf *out)
{
    if (!p->version)
        p->version = (uint8_t)version;
    const char *msg = NULL;
    int rc = mq_encode_buf(p, out, &mq_default_alloc, &msg);
    if (rc) {
        fprintf(stderr, "%s: test packet does not encode: %s (%s)\n", tl_current,
                mqlite_strerror(rc), msg ? msg : "");
        abort();
    }
}

/* Encode and send p (its version defaults to the client's). */
static inline int tc_send(tc *c, mq_packet *p)
{
    mq_buf out = {0};
    tc_encode(p, c->version, &out);
    int rc = tc_send_raw(c, out.p, out.len);
    mq_buf_free(&out, &mq_default_alloc);
    return rc;
}

/* Pull bytes from the socket (non-blocking). */
static inline void tc_pull(tc *c)
{
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k > 0) {
            c->len += (size_t)k;
            continue;
        }
        if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            c->closed = 1;
        return;
    }
}

/*
 * Receive one packet within timeout_ms: 0 (packet in *out, valid until the
 * next tc_recv), TC_TIMEOUT, TC_CLOSED, or a negative decode error.
 */
/*
 * Take one whole packet from the front of buf[*len]: 0 with it in *out (its
 * bytes moved to a fresh *pkt, where out's views point; *pkt_len set when
 * pkt_len is not NULL), 1 when more bytes are needed, or a negative decode
 * error. Shared by the plain and the TLS test clients.
 */
static inline int tc_take_packet(uint8_t *buf, size_t *len, int version, uint8_t **pkt,
                                 size_t *pkt_len, mq_packet *out)
{
    if (!*len)
        return 1;
    mq_decode_opts o = {(uint8_t)version, 0, MQ_ROLE_CLIENT, 0};
    size_t used = 0, need = 0;
    int rc = mq_decode(buf, *len, &o, out, &used, &need, NULL);
    if (rc != 0)
        return rc < 0 ? rc : 1;
    free(*pkt);
    *pkt = malloc(used);
    memcpy(*pkt, buf, used);
    if (pkt_len)
        *pkt_len = used;
    memmove(buf, buf + used, *len - used);
    *len -= used;
    return mq_decode(*pkt, used, &o, out, &used, &need, NULL);
}

static inline int tc_recv(tc *c, mq_packet *out, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int rc = tc_take_packet(c->buf, &c->len, c->version, &c->pkt, &c->pkt_len, out);
        if (rc <= 0)
            return rc;
        if (c->closed)
            return TC_CLOSED;
        if (tc_now_ms() >= end)
            return TC_TIMEOUT;
        mqlite_broker_poll(c->b, 1);
        tc_pull(c);
    }
}

/* Receive and check the packet type; returns 1 when it matched. */
static inline int tc_expect(tc *c, int type, mq_packet *out)
{
    mq_packet tmp;
    if (!out)
        out = &tmp;
    int rc = tc_recv(c, out, TC_WAIT);
    if (rc != 0 || out->type != type) {
        fprintf(stderr, "%s: expected %s, got %s (rc %d)\n", tl_current,
                mqlite_packet_type_name(type), rc ? "nothing" : mqlite_packet_type_name(out->type),
                rc);
        return 0;
    }
    return 1;
}

/* 1 if nothing arrives within TC_QUIET ms (and the connection stays up). */
static inline int tc_quiet(tc *c)
{
    mq_packet p;
    int rc = tc_recv(c, &p, TC_QUIET);
    if (rc == 0)
        fprintf(stderr, "%s: unexpected %s\n", tl_current, mqlite_packet_type_name(p.type));
    return rc == TC_TIMEOUT;
}

/* Wait for the broker to close the connection, skipping packets; the last
 * DISCONNECT reason seen (5.0) goes to *reason (-1: none). 1 if closed. */
static inline int tc_wait_closed(tc *c, int *reason, int timeout_ms)
{
    mq_packet p;
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    if (reason)
        *reason = -1;
    for (;;) {
        int left = (int)(end > tc_now_ms() ? end - tc_now_ms() : 0);
        int rc = tc_recv(c, &p, left);
        if (rc == TC_CLOSED)
            return 1;
        if (rc == TC_TIMEOUT)
            return 0;
        if (rc < 0)
            return 0;
        if (p.type == MQLITE_PKT_DISCONNECT && reason)
            *reason = p.reason;
    }
}

/* ---- packets ---- */

static inline mq_packet pk(int type)
{
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = (uint8_t)type;
    return p;
}

static inline mq_packet pk_connect(const char *id, int clean, int keepalive)
{
    mq_packet p = pk(MQLITE_PKT_CONNECT);
    p.client_id = mq_view_cstr(id);
    p.clean_start = (uint8_t)clean;
    p.keepalive = (uint16_t)keepalive;
    return p;
}

static inline mq_packet pk_publish(const char *topic, const char *payload, int qos, int retain, int pid)
{
    mq_packet p = pk(MQLITE_PKT_PUBLISH);
    p.topic = mq_view_cstr(topic);
    p.payload = mq_view_cstr(payload);
    p.qos = (uint8_t)qos;
    p.retain = (uint8_t)retain;
    p.packet_id = (uint16_t)pid;
    return p;
}

static inline mq_packet pk_ack(int type, int pid)
{
    mq_packet p = pk(type);
    p.packet_id = (uint16_t)pid;
    return p;
}

/* A property block under construction (free with pb_free). */
typedef struct pb {
    mq_buf b;
} pb;

static inline void pb_int(pb *x, int id, uint32_t v)
{
    if (mq_props_put_int(&x->b, &mq_default_alloc, (unsigned)id, v))
        abort();
}
static inline void pb_str(pb *x, int id, const char *s)
{
    if (mq_props_put_bytes(&x->b, &mq_default_alloc, (unsigned)id, mq_view_cstr(s)))
        abort();
}
static inline void pb_pair(pb *x, const char *k, const char *v)
{
    if (mq_props_put_pair(&x->b, &mq_default_alloc, mq_view_cstr(k), mq_view_cstr(v)))
        abort();
}
static inline mq_view pb_view(const pb *x)
{
    return mq_view_make(x->b.p, x->b.len);
}
static inline void pb_free(pb *x)
{
    mq_buf_free(&x->b, &mq_default_alloc);
}

/* The value of integer property id in block, or -1 when absent. */
static inline int64_t prop_int(mq_view block, int id)
{
    mq_prop p;
    return mq_props_get(block, (unsigned)id, &p) ? (int64_t)p.num : -1;
}

/* Count of property id in block. */
static inline int prop_count(mq_view block, int id)
{
    uint32_t off = 0;
    mq_prop p;
    int n = 0;
    while (mq_props_next(block, &off, &p))
        n += p.id == id;
    return n;
}

static inline int view_is(mq_view v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

/* ---- conversations ---- */

/* Open, send CONNECT p, expect CONNACK with `reason`; the client is
 * returned either way (closed after a refusal). */
static inline tc *tc_connect_pkt(mqlite_broker *b, int port, int version, mq_packet *p, int reason)
{
    tc *c = tc_open(b, port, version);
    p->version = (uint8_t)version;
    tc_send(c, p);
    mq_packet k;
    if (!tc_expect(c, MQLITE_PKT_CONNACK, &k)) {
        CHECK(0);
        return c;
    }
    CHECK_EQ(k.reason, reason);
    c->session_present = k.session_present;
    c->connack = k;
    return c;
}

static inline tc *tc_connect(mqlite_broker *b, int port, int version, const char *id, int clean)
{
    mq_packet p = pk_connect(id, clean, 60);
    return tc_connect_pkt(b, port, version, &p, 0);
}

/* 5.0 connect with a Session Expiry Interval. */
static inline tc *tc_connect5_exp(mqlite_broker *b, int port, const char *id, int clean, uint32_t exp)
{
    pb props = {{0}};
    pb_int(&props, MQLITE_PROP_SESSION_EXPIRY, exp);
    mq_packet p = pk_connect(id, clean, 60);
    p.props = pb_view(&props);
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    pb_free(&props);
    return c;
}

/* SUBSCRIBE one filter; returns the SUBACK code (or -1). */
static inline int tc_subscribe_props(tc *c, const char *filter, int options, int pid, mq_view props)
{
    mq_packet p = pk(MQLITE_PKT_SUBSCRIBE);
    mq_buf list = {0};
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr(filter), 1, (uint8_t)options);
    p.packet_id = (uint16_t)pid;
    p.list = mq_view_make(list.p, list.len);
    p.count = 1;
    p.props = props;
    tc_send(c, &p);
    mq_buf_free(&list, &mq_default_alloc);
    mq_packet k;
    if (!tc_expect(c, MQLITE_PKT_SUBACK, &k))
        return -1;
    CHECK_EQ(k.packet_id, pid);
    return k.count == 1 ? k.list.p[0] : -1;
}

static inline int tc_subscribe(tc *c, const char *filter, int options)
{
    return tc_subscribe_props(c, filter, options, 1, mq_view_make(NULL, 0));
}

static inline void tc_publish(tc *c, const char *topic, const char *payload, int qos, int retain,
                       int pid)
{
    mq_packet p = pk_publish(topic, payload, qos, retain, pid);
    tc_send(c, &p);
    if (qos == 1) {
        CHECK(tc_expect(c, MQLITE_PKT_PUBACK, NULL));
    } else if (qos == 2) {
        mq_packet ack = pk_ack(MQLITE_PKT_PUBREL, pid);
        CHECK(tc_expect(c, MQLITE_PKT_PUBREC, NULL));
        tc_send(c, &ack);
        CHECK(tc_expect(c, MQLITE_PKT_PUBCOMP, NULL));
    }
}

/* Expect a PUBLISH with topic and payload; returns 1 when it matched. */
static inline int tc_expect_msg(tc *c, const char *topic, const char *payload, mq_packet *out)
{
    mq_packet tmp;
    if (!out)
        out = &tmp;
    if (!tc_expect(c, MQLITE_PKT_PUBLISH, out))
        return 0;
    int ok = view_is(out->topic, topic) && view_is(out->payload, payload);
    if (!ok)
        fprintf(stderr, "%s: got PUBLISH %.*s: %.*s\n", tl_current, (int)out->topic.len,
                (const char *)out->topic.p, (int)out->payload.len,
                (const char *)out->payload.p);
    return ok;
}

static inline void tc_disconnect(tc *c)
{
    mq_packet d = pk(MQLITE_PKT_DISCONNECT);
    tc_send(c, &d);
    tb_run(c->b, 10);
    tc_free(c);
}

#endif
