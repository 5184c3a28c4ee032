/*
 * peer.h - a scripted MQTT server for the client tests (tests/c/test_session.c,
 * test_client_sansio.c, test_fault_matrix.c).
 *
 * The client runs in sans-I/O mode: the peer takes what the client wrote
 * (mqlite_client_take_output) and decodes it with the codec in the server
 * role, so a test reads the packets exactly as a server would; it builds
 * server packets as mq_packet records, encodes them with mq_encode_buf and
 * feeds the bytes (whole, or one byte at a time when `split` is set). Time
 * is the injected clock only (mqlite_client_set_clock): nothing sleeps.
 *
 * Every packet the peer decodes is kept until peer_free(), so the views in
 * a returned mq_packet stay valid for the whole test. Helpers that expect
 * something report a failure at the caller's line (the PEER_* macros) and
 * return NULL / a neutral value instead of aborting, so a test goes on.
 */
#ifndef MQ_TEST_PEER_H
#define MQ_TEST_PEER_H

#include <stdarg.h>

#include "codec.h"
#include "mqlite.h"
#include "props.h"
#include "testlib.h"

/* ---- failures reported at the caller's line ---- */

/* The test file that includes this header: failures name it, not peer.h. */
#ifdef __BASE_FILE__
#define PR_FILE __BASE_FILE__
#else
#define PR_FILE __FILE__
#endif

static void pr_fail(int line, const char *fmt, ...) MQ_PRINTF(2, 3);
static void pr_fail(int line, const char *fmt, ...)
{
    va_list ap;
    tl_failures++;
    fprintf(stderr, "%s:%d: %s: ", PR_FILE, line, tl_current);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* 1 if `hay` contains `needle` (both may be NULL: then 0). */
static inline int pr_has(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

#define CHECK_HAS(hay, needle)                                                                     \
    do {                                                                                           \
        const char *tl_h = (hay), *tl_n = (needle);                                                \
        tl_checks++;                                                                               \
        if (!pr_has(tl_h, tl_n))                                                                   \
            pr_fail(__LINE__, "\"%s\" does not contain \"%s\"", tl_h ? tl_h : "(null)",            \
                    tl_n ? tl_n : "(null)");                                                       \
    } while (0)

/* ---- the peer ---- */

typedef struct pr_kept {
    struct pr_kept *next;
    mq_packet p;
    size_t len;
    uint8_t bytes[];
} pr_kept;

typedef struct peer {
    mqlite_client *c;
    int version;    /* level the client was told to use */
    uint64_t now;   /* the injected clock */
    int split;      /* feed server bytes one at a time */
    int keep_trace; /* peer_event returns TRACE events too */
    uint8_t *rx;    /* client output not decoded yet */
    size_t rx_len, rx_cap;
    pr_kept *kept;
    int feed_rc;           /* the last negative feed result, or 0 */
    const mq_packet *last; /* the last packet peer_recv returned */
} peer;

static inline peer *peer_new(int version, const char *client_id)
{
    peer *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->c = mqlite_client_new(client_id);
    if (!p->c)
        abort();
    p->version = version;
    p->now = 1000;
    if (mqlite_client_set_int(p->c, MQLITE_OPT_PROTOCOL, version) != 0)
        abort();
    mqlite_client_set_clock(p->c, p->now);
    return p;
}

static inline void peer_free(peer *p)
{
    if (!p)
        return;
    mqlite_client_free(p->c);
    for (pr_kept *k = p->kept, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    free(p->rx);
    free(p);
}

/* Move every byte the client has for the network into p->rx. Returns the
 * number of bytes taken. */
static inline size_t peer_pull(peer *p)
{
    size_t total = 0;
    for (;;) {
        if (p->rx_cap - p->rx_len < 4096) {
            p->rx_cap = p->rx_cap ? p->rx_cap * 2 : 65536;
            p->rx = realloc(p->rx, p->rx_cap);
            if (!p->rx)
                abort();
        }
        size_t n = mqlite_client_take_output(p->c, p->rx + p->rx_len, p->rx_cap - p->rx_len);
        if (n == 0)
            return total;
        p->rx_len += n;
        total += n;
    }
}

/* Forget what the client wrote and the peer did not read (a cut). */
static inline void peer_drop_rx(peer *p)
{
    peer_pull(p);
    p->rx_len = 0;
}

/* The next whole packet the client sent, decoded as a server would, or NULL
 * when none is complete. A decoding failure is a test failure. */
static inline const mq_packet *peer_recv_at(peer *p, int line)
{
    peer_pull(p);
    if (p->rx_len == 0)
        return NULL;
    mq_decode_opts o = {0};
    o.version = (uint8_t)p->version;
    o.role = MQ_ROLE_SERVER;
    mq_packet tmp;
    size_t used = 0, need = 0;
    int rc = mq_decode(p->rx, p->rx_len, &o, &tmp, &used, &need, NULL);
    if (rc == MQ_NEED_MORE)
        return NULL;
    if (rc != 0) {
        pr_fail(line, "the client sent a packet the server cannot decode: %s (byte 1 0x%02x)",
                mqlite_error_name(rc), p->rx[0]);
        p->rx_len = 0;
        return NULL;
    }
    pr_kept *k = malloc(sizeof *k + used);
    if (!k)
        abort();
    memcpy(k->bytes, p->rx, used);
    k->len = used;
    /* Decode again from the kept copy so that the views point there. */
    rc = mq_decode(k->bytes, used, &o, &k->p, &used, &need, NULL);
    if (rc != 0)
        abort();
    k->next = p->kept;
    p->kept = k;
    memmove(p->rx, p->rx + used, p->rx_len - used);
    p->rx_len -= used;
    p->last = &k->p;
    return &k->p;
}
#define peer_recv(p) peer_recv_at((p), __LINE__)

/* The wire bytes of the packet peer_recv returned last. */
static inline const uint8_t *peer_last_bytes(const peer *p, size_t *len)
{
    const pr_kept *k = p->kept;
    *len = k ? k->len : 0;
    return k ? k->bytes : NULL;
}

/* The next packet, which must be of `type`; NULL (and a failure) if not. */
static inline const mq_packet *peer_expect_at(peer *p, int type, int line)
{
    tl_checks++;
    const mq_packet *k = peer_recv_at(p, line);
    if (!k) {
        pr_fail(line, "expected %s from the client, got nothing", mqlite_packet_type_name(type));
        return NULL;
    }
    if (k->type != type) {
        pr_fail(line, "expected %s from the client, got %s", mqlite_packet_type_name(type),
                mqlite_packet_type_name(k->type));
        return NULL;
    }
    return k;
}
#define PEER_EXPECT(p, type) peer_expect_at((p), (type), __LINE__)

/* The client has nothing more to send. */
static inline void peer_quiet_at(peer *p, int line)
{
    tl_checks++;
    const mq_packet *k = peer_recv_at(p, line);
    if (k)
        pr_fail(line, "expected no packet from the client, got %s (id %u)",
                mqlite_packet_type_name(k->type), k->packet_id);
    else if (p->rx_len)
        pr_fail(line, "expected no output from the client, %zu bytes pending", p->rx_len);
}
#define PEER_QUIET(p) peer_quiet_at((p), __LINE__)

/* ---- sending server packets ---- */

/* Feed raw bytes (split when p->split). Returns the first negative feed
 * result, else 0. */
static inline int peer_feed(peer *p, const void *bytes, size_t len)
{
    const uint8_t *b = bytes;
    int rc = 0;
    if (!p->split) {
        rc = mqlite_client_feed(p->c, b, len);
    } else {
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = mqlite_client_feed(p->c, b + i, 1);
    }
    if (rc < 0)
        p->feed_rc = rc;
    return rc;
}

/* Encode and feed one packet. A packet the codec refuses to encode is a
 * broken test. */
static inline int peer_send_at(peer *p, const mq_packet *k, int line)
{
    mq_buf b = {0};
    const char *msg = NULL;
    int rc = mq_encode_buf(k, &b, &mq_default_alloc, &msg);
    if (rc) {
        pr_fail(line, "test bug: cannot encode %s: %s", mqlite_packet_type_name(k->type),
                msg ? msg : mqlite_error_name(rc));
        mq_buf_free(&b, &mq_default_alloc);
        return rc;
    }
    rc = peer_feed(p, b.p, b.len);
    mq_buf_free(&b, &mq_default_alloc);
    return rc;
}
#define peer_send(p, k) peer_send_at((p), (k), __LINE__)

/* Feed bytes given in hex ("30 05 ..."). */
static inline int peer_send_hex(peer *p, const char *hex)
{
    unsigned char buf[1024];
    size_t n = tl_hex(hex, buf, sizeof buf);
    return peer_feed(p, buf, n);
}

/* Advance the injected clock by ms; returns mqlite_client_set_clock's result. */
static inline int peer_advance(peer *p, uint64_t ms)
{
    p->now += ms;
    return mqlite_client_set_clock(p->c, p->now);
}

/* ---- server packet builders ---- */

static inline mq_packet pk_new(int type, int version)
{
    mq_packet k;
    memset(&k, 0, sizeof k);
    k.type = (uint8_t)type;
    k.version = (uint8_t)version;
    return k;
}

static inline mq_packet pk_connack(int version, int session_present, int code)
{
    mq_packet k = pk_new(MQLITE_PKT_CONNACK, version);
    k.session_present = (uint8_t)session_present;
    k.reason = (uint8_t)code;
    return k;
}

static inline mq_packet pk_publish(int version, const char *topic, const char *payload, int qos,
                                   uint16_t pid)
{
    mq_packet k = pk_new(MQLITE_PKT_PUBLISH, version);
    k.topic = mq_view_cstr(topic);
    k.payload = mq_view_cstr(payload);
    k.qos = (uint8_t)qos;
    k.packet_id = qos ? pid : 0;
    return k;
}

static inline mq_packet pk_ack(int version, int type, uint16_t pid, int reason)
{
    mq_packet k = pk_new(type, version);
    k.packet_id = pid;
    k.reason = version == MQLITE_V5 ? (uint8_t)reason : 0;
    return k;
}

/* SUBACK / UNSUBACK with `n` codes from `codes` (which must outlive the
 * packet). A 3.x UNSUBACK carries none. */
static inline mq_packet pk_list_ack(int version, int type, uint16_t pid, const uint8_t *codes,
                                    uint32_t n)
{
    mq_packet k = pk_new(type, version);
    k.packet_id = pid;
    if (!(type == MQLITE_PKT_UNSUBACK && version != MQLITE_V5)) {
        k.list = mq_view_make(codes, n);
        k.count = n;
    }
    return k;
}

/* A property block under construction (wire form). */
typedef struct pr_props {
    mq_buf b;
} pr_props;

static inline void pp_int(pr_props *pp, unsigned id, uint32_t v)
{
    if (mq_props_put_int(&pp->b, &mq_default_alloc, id, v) != 0)
        abort();
}
static inline void pp_str(pr_props *pp, unsigned id, const char *s)
{
    if (mq_props_put_bytes(&pp->b, &mq_default_alloc, id, mq_view_cstr(s)) != 0)
        abort();
}
static inline mq_view pp_view(const pr_props *pp)
{
    return mq_view_make(pp->b.p, pp->b.len);
}
static inline void pp_free(pr_props *pp)
{
    mq_buf_free(&pp->b, &mq_default_alloc);
}

/* ---- events ---- */

/* The next event (TRACE skipped unless p->keep_trace), or NULL. */
static inline const mqlite_event *peer_event(peer *p)
{
    for (;;) {
        const mqlite_event *e = mqlite_client_next_event(p->c);
        if (!e || p->keep_trace || mqlite_event_type(e) != MQLITE_EVENT_TRACE)
            return e;
    }
}

static inline const mqlite_event *peer_expect_event_at(peer *p, int type, int line)
{
    tl_checks++;
    const mqlite_event *e = peer_event(p);
    if (!e) {
        pr_fail(line, "expected event %s, got none", mqlite_event_type_name(type));
        return NULL;
    }
    if (mqlite_event_type(e) != type) {
        pr_fail(line, "expected event %s, got %s (\"%s\")", mqlite_event_type_name(type),
                mqlite_event_type_name(mqlite_event_type(e)), mqlite_event_text(e));
        return NULL;
    }
    return e;
}
#define PEER_EVENT(p, type) peer_expect_event_at((p), (type), __LINE__)

static inline void peer_no_event_at(peer *p, int line)
{
    tl_checks++;
    const mqlite_event *e = peer_event(p);
    if (e)
        pr_fail(line, "expected no event, got %s (\"%s\")",
                mqlite_event_type_name(mqlite_event_type(e)), mqlite_event_text(e));
}
#define PEER_NO_EVENT(p) peer_no_event_at((p), __LINE__)

/* Append a one-line description of every pending event to log (for
 * comparing two runs). */
static inline void peer_log_events(peer *p, char *log, size_t cap)
{
    const mqlite_event *e;
    while ((e = peer_event(p)) != NULL) {
        size_t used = strlen(log);
        size_t tl = 0, pl = 0;
        const char *t = mqlite_event_topic(e, &tl);
        const void *pay = mqlite_event_payload(e, &pl);
        snprintf(log + used, cap - used,
                 "%s pid=%d reason=%d err=%d sp=%d qos=%d retain=%d dup=%d n=%d topic=%.*s "
                 "payload=%.*s props=%d text=%s\n",
                 mqlite_event_type_name(mqlite_event_type(e)), mqlite_event_packet_id(e),
                 mqlite_event_reason(e), mqlite_event_error(e), mqlite_event_session_present(e),
                 mqlite_event_qos(e), mqlite_event_retain(e), mqlite_event_dup(e),
                 mqlite_event_count(e), (int)tl, t ? t : "", (int)pl, pay ? (const char *)pay : "",
                 mqlite_props_count(mqlite_event_props(e)), mqlite_event_text(e));
    }
}

/* ---- common sequences ---- */

/* start -> CONNECT -> CONNACK(session_present) -> CONNECTED. Returns the
 * CONNECT the client sent (NULL on failure). */
static inline const mq_packet *peer_connect_at(peer *p, int session_present, int line)
{
    int rc = mqlite_client_start(p->c);
    if (rc != 0) {
        pr_fail(line, "mqlite_client_start: %s: %s", mqlite_error_name(rc),
                mqlite_client_errmsg(p->c));
        return NULL;
    }
    const mq_packet *conn = peer_expect_at(p, MQLITE_PKT_CONNECT, line);
    mq_packet ack = pk_connack(p->version, session_present, 0);
    rc = peer_send_at(p, &ack, line);
    if (rc != 0)
        pr_fail(line, "CONNACK feed failed: %s: %s", mqlite_error_name(rc),
                mqlite_client_errmsg(p->c));
    const mqlite_event *e = peer_expect_event_at(p, MQLITE_EVENT_CONNECTED, line);
    if (e && mqlite_event_session_present(e) != session_present)
        pr_fail(line, "CONNECTED session present %d, want %d", mqlite_event_session_present(e),
                session_present);
    return conn;
}
#define PEER_CONNECT(p, sp) peer_connect_at((p), (sp), __LINE__)

/* The transport dies: the peer drops what it did not read, the client is
 * told. */
static inline void peer_cut(peer *p)
{
    peer_drop_rx(p);
    mqlite_client_transport_closed(p->c);
}

/* The value of integer property `id` in a block, or -1. */
static inline int64_t pr_prop_int(mq_view block, unsigned id)
{
    mq_prop pr;
    return mq_props_get(block, id, &pr) ? (int64_t)pr.num : -1;
}

/* The string property `id` of a block as a NUL-terminated copy in buf, or
 * NULL when absent. */
static inline const char *pr_prop_str(mq_view block, unsigned id, char *buf, size_t cap)
{
    mq_prop pr;
    if (!mq_props_get(block, id, &pr))
        return NULL;
    snprintf(buf, cap, "%.*s", (int)pr.val.len, (const char *)pr.val.p);
    return buf;
}

/* Find property `id` in an event's list; its string value or NULL. */
static inline const char *pr_event_prop_str(const mqlite_event *e, int32_t id)
{
    const mqlite_props *pr = mqlite_event_props(e);
    int32_t i = mqlite_props_find(pr, id, 0);
    return i >= 0 ? (const char *)mqlite_props_value(pr, i, NULL) : NULL;
}

/* A view's bytes equal a C string. */
static inline int pr_view_is(mq_view v, const char *s)
{
    return mq_view_eq(v, mq_view_cstr(s));
}

#endif
