/*
 * test_alloc_fail.c - every allocation of a whole client + broker session,
 * failed in turn (SQLite's faultsim, curl's torture, nghttp2's failmalloc).
 *
 * The session: an embedded broker listening on 127.0.0.1 port 0 and two
 * clients, "a" (MQTT 3.1.1) and "b" (MQTT 5.0, with a will), over real
 * loopback sockets, all driven from this thread: connect, subscribe, QoS
 * 0/1/2 publish both ways (payloads up to 3000 bytes, NULs included), a
 * retained message, unsubscribe, b's will (5.0 DISCONNECT 0x04), a's normal
 * DISCONNECT, then the broker stopped and freed. Broker and clients are made
 * with mqlite_*_new_with_allocator() and a counting allocator each, sharing
 * one counter, so "the N-th allocation" is the N-th of the whole session.
 *
 * A clean run counts the allocations; then for every N from 1 to that count
 * the session is run again with allocation N failing (once; the following
 * ones succeed) and the test checks that
 *  - nothing crashes (ASan in the sanitizer build) and nothing hangs (every
 *    wait is bounded: 300 ms per step, plus 2 s of grace before a step
 *    that shows no progress and no report counts as a silent failure);
 *  - the failure is reported cleanly: either the session still completed,
 *    byte for byte, or it stopped with a report: an MQLITE_ERR_NOMEM return,
 *    a NULL from a constructor, an event carrying MQLITE_ERR_NOMEM, a
 *    connection the broker closed (the client's DISCONNECTED event), a
 *    refused SUBACK/PUBACK code, the broker's MQLITE_BSTAT_MESSAGES_DROPPED,
 *    or an "out of memory" line in the broker's log. Received data is never
 *    wrong, whatever failed (payloads, QoS, retain flags, and the 5.0
 *    CONNACK properties the CONNECTED event carries);
 *  - every handle stays usable (mqlite_error_is_fatal(MQLITE_ERR_NOMEM) is
 *    0): after the failure, a probe reconnects what was disconnected (re-
 *    listens, re-creates what a constructor could not make) and does a QoS 1
 *    round trip both ways through the same handles;
 *  - at the end every allocation was freed (each allocator's live count 0).
 *
 * The codec (mqlite_packet_*, mqlite_props_*) has no handle and allocates
 * with malloc (documented in mqlite.h). Its sweep fails the N-th allocation
 * by interposing realloc(3) and free(3): common.c's default allocator makes
 * every allocation with realloc (malloc is realloc(NULL, n)) and frees with
 * free, so the test counts the codec's live blocks there (and ASan's leak
 * check covers it again in the sanitizer build).
 *
 * MQ_TEST_VERBOSE=1 prints each case's outcome; MQ_ALLOC_FAIL_ONLY=N runs
 * only session case N (to debug it: break in fa_fn when sh->n == N).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqlite.h"
#include "testlib.h"

static int verbose;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------------
 * The counting allocator: one counter for the whole session, a live count
 * per handle.
 * --------------------------------------------------------------------- */

typedef struct fa_shared {
    long n;       /* allocations and growths so far */
    long fail_at; /* 0: never fail */
    const char *failed_in;
    size_t failed_size;
} fa_shared;

typedef struct fa {
    fa_shared *sh;
    const char *name;
    long live;
    long calls;
} fa;

static void *fa_fn(void *ud, void *p, size_t size)
{
    fa *f = ud;
    if (size == 0) {
        if (p) {
            f->live--;
            free(p);
        }
        return NULL;
    }
    f->calls++;
    if (++f->sh->n == f->sh->fail_at) {
        /* a breakpoint here shows who asked */
        f->sh->failed_in = f->name;
        f->sh->failed_size = size;
        return NULL;
    }
    void *q = realloc(p, size);
    if (q && !p)
        f->live++;
    return q;
}

/* ---------------------------------------------------------------------
 * One run of the session
 * --------------------------------------------------------------------- */

#define NCLIENTS 2
#define MAX_MSGS 16
#define BIG 3000

typedef struct msg {
    char topic[48];
    unsigned char payload[BIG];
    size_t len;
    int qos, retain;
} msg;

typedef struct cstate {
    const char *name;
    mqlite_client *c;
    fa al;
    int version;
    int connected; /* CONNECTED events */
    int subacks, unsubacks, published, disconnected;
    int expect_close; /* we asked for the DISCONNECT */
    int nmsgs;
    msg msgs[MAX_MSGS];
} cstate;

typedef struct run {
    fa_shared sh;
    fa bal;
    mqlite_broker *b;
    int port;
    cstate cl[NCLIENTS]; /* [0] = "a" (3.1.1), [1] = "b" (5.0) */
    int budget_ms;       /* per wait */
    const char *step;
    int completed;
    /* what the failure looked like from outside */
    int nomem_rc, null_handle, nomem_event, closed, refused;
    int64_t dropped;
    int log_oom;
    char other[200];   /* a non-NOMEM error (first one) */
    char corrupt[200]; /* data that arrived wrong: never acceptable */
    char *log;
    size_t loglen;
    int rounds;
} run;

static void note(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *dst, size_t cap, const char *fmt, ...)
{
    if (dst[0])
        return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* An API result: 0 goes on, anything else stops the scenario. */
static int api(run *r, int32_t rc, const char *what)
{
    if (rc >= 0)
        return 1;
    if (rc == MQLITE_ERR_NOMEM)
        r->nomem_rc++;
    else
        note(r->other, sizeof r->other, "%s: %s in step %s", what, mqlite_error_name(rc), r->step);
    return 0;
}

static void on_event(run *r, cstate *s, const mqlite_event *ev)
{
    int type = mqlite_event_type(ev);
    int err = mqlite_event_error(ev);
    if (err == MQLITE_ERR_NOMEM)
        r->nomem_event++;
    switch (type) {
    case MQLITE_EVENT_CONNECTED:
        s->connected++;
        /* 5.0: the broker's CONNACK always carries Topic Alias Maximum 10
         * (its default); a CONNACK without its properties, or a property
         * list that silently came out empty, is wrong data. */
        if (s->version == MQLITE_V5) {
            const mqlite_props *pr = mqlite_event_props(ev);
            /* NULL: building the list ran out of memory, which the API
             * reports that way (a later call tries again). */
            if (!pr) {
                r->nomem_event++;
                pr = mqlite_event_props(ev);
            }
            int i = mqlite_props_find(pr, MQLITE_PROP_TOPIC_ALIAS_MAX, 0);
            if (pr && (i < 0 || mqlite_props_int(pr, i) != 10))
                note(r->corrupt, sizeof r->corrupt,
                     "%s: CONNECTED without Topic Alias Maximum 10 (%d properties)", s->name,
                     mqlite_props_count(pr));
        }
        break;
    case MQLITE_EVENT_CONNECT_FAILED:
    case MQLITE_EVENT_DISCONNECTED:
        s->disconnected++;
        if (!s->expect_close || type == MQLITE_EVENT_CONNECT_FAILED || err)
            r->closed++;
        break;
    case MQLITE_EVENT_SUBACK:
    case MQLITE_EVENT_UNSUBACK:
        for (int i = 0; i < mqlite_event_count(ev); i++)
            if (mqlite_event_reason_at(ev, i) >= 0x80)
                r->refused++;
        if (type == MQLITE_EVENT_SUBACK)
            s->subacks++;
        else
            s->unsubacks++;
        break;
    case MQLITE_EVENT_PUBLISHED:
        if (err || mqlite_event_reason(ev) >= 0x80)
            r->refused++;
        s->published++;
        break;
    case MQLITE_EVENT_PUBLISH_LOST:
        r->closed++;
        break;
    case MQLITE_EVENT_MESSAGE: {
        size_t tl = 0, pl = 0;
        const char *t = mqlite_event_topic(ev, &tl);
        const void *p = mqlite_event_payload(ev, &pl);
        if (s->nmsgs == MAX_MSGS || tl >= sizeof s->msgs[0].topic || pl > BIG) {
            note(r->corrupt, sizeof r->corrupt, "%s: unexpected message \"%.*s\" (%zu bytes)",
                 s->name, (int)(tl < 40 ? tl : 40), t ? t : "", pl);
            break;
        }
        msg *m = &s->msgs[s->nmsgs++];
        memcpy(m->topic, t, tl);
        m->topic[tl] = 0;
        if (pl)
            memcpy(m->payload, p, pl);
        m->len = pl;
        m->qos = mqlite_event_qos(ev);
        m->retain = mqlite_event_retain(ev);
        break;
    }
    default: /* ERROR: counted through its error code above */
        break;
    }
}

static void pump(run *r, int wait_ms)
{
    r->rounds++;
    if (r->b)
        mqlite_broker_poll(r->b, wait_ms);
    for (int i = 0; i < NCLIENTS; i++) {
        cstate *s = &r->cl[i];
        if (!s->c)
            continue;
        int32_t rc = mqlite_client_poll(s->c, 0);
        if (rc == MQLITE_ERR_NOMEM)
            r->nomem_rc++;
        const mqlite_event *ev;
        for (int k = 0; k < 1000 && (ev = mqlite_client_next_event(s->c)) != NULL; k++)
            on_event(r, s, ev);
    }
}

typedef int (*cond_fn)(const run *r, int arg);

/* Has the failure been reported by now, in any of the accepted ways? */
static int reported_now(run *r)
{
    if (r->closed || r->refused || r->nomem_event || r->nomem_rc || r->null_handle)
        return 1;
    if (r->b && mqlite_broker_stat(r->b, MQLITE_BSTAT_MESSAGES_DROPPED) > 0)
        return 1;
    fflush(stderr); /* the broker's log, captured: see capture_begin() */
    return r->log && strstr(r->log, "out of memory") != NULL;
}

/* Grace for a loaded machine (ctest -j, sanitizers): a step that ran out of
 * its budget with nothing reported gets this much longer before it counts
 * as a silent failure. */
#define GRACE_MS 2000

static int wait_for(run *r, cond_fn cond, int arg, const char *what)
{
    uint64_t end = now_ms() + (uint64_t)r->budget_ms;
    int graced = 0;
    for (;;) {
        if (cond(r, arg))
            return 1;
        /* Once the failure was reported, the scenario will not get past it:
         * stop at once. */
        if (r->sh.failed_in && reported_now(r)) {
            note(r->other, sizeof r->other, "gave up waiting for %s in step %s", what, r->step);
            return 0;
        }
        if (now_ms() >= end && !graced) {
            graced = 1;
            end += GRACE_MS;
        } else if (now_ms() >= end) {
            note(r->other, sizeof r->other, "timed out waiting for %s in step %s", what, r->step);
            return 0;
        }
        pump(r, 1);
    }
}

static int all_connected(const run *r, int n)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (r->cl[i].connected < n)
            return 0;
    return 1;
}
static int all_subacks(const run *r, int n)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (r->cl[i].subacks < n)
            return 0;
    return 1;
}
static int a_subacks(const run *r, int n)
{
    return r->cl[0].subacks >= n;
}
static int all_unsubacks(const run *r, int n)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (r->cl[i].unsubacks < n)
            return 0;
    return 1;
}
static int published_and_received(const run *r, int n)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (r->cl[i].published < n / 100 || r->cl[i].nmsgs < n % 100)
            return 0;
    return 1;
}
static int a_received(const run *r, int n)
{
    return r->cl[0].nmsgs >= n;
}
static int a_published(const run *r, int n)
{
    return r->cl[1].published >= n;
}
static int all_disconnected(const run *r, int n)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (r->cl[i].disconnected < n)
            return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 31u + seed) % 251u); /* NULs included */
}

/* The payload of message k (k = 0..2 = QoS) from client `from`. */
static size_t payload_of(int from, int k, unsigned char *buf)
{
    static const size_t sizes[3] = {5, 1000, BIG};
    fill(buf, sizes[k], (unsigned)(from * 3 + k));
    return sizes[k];
}

/* Received data must be exactly what was sent, whatever failed. */
static void verify(run *r, cstate *s, const char *topic, const void *data, size_t len, int qos,
                   int retain, int *found)
{
    for (int i = 0; i < s->nmsgs; i++) {
        msg *m = &s->msgs[i];
        if (strcmp(m->topic, topic) != 0)
            continue;
        (*found)++;
        if (m->len != len || (len && memcmp(m->payload, data, len) != 0) || m->qos != qos ||
            m->retain != retain)
            note(r->corrupt, sizeof r->corrupt,
                 "%s: \"%s\" arrived as %zu bytes QoS %d retain %d, sent %zu bytes QoS %d "
                 "retain %d",
                 s->name, topic, m->len, m->qos, m->retain, len, qos, retain);
    }
}

static void check_messages(run *r, int *ok)
{
    unsigned char buf[BIG];
    for (int from = 0; from < NCLIENTS; from++) {
        cstate *to = &r->cl[1 - from];
        for (int k = 0; k < 3; k++) {
            char topic[48];
            snprintf(topic, sizeof topic, "t/%s/%d", to->name, k);
            size_t n = payload_of(from, k, buf);
            int found = 0;
            verify(r, to, topic, buf, n, k, 0, &found);
            if (found != 1)
                *ok = 0;
            if (found > (k == 2 ? 1 : 2)) /* QoS 2: exactly once */
                note(r->corrupt, sizeof r->corrupt, "%s got \"%s\" %d times", to->name, topic,
                     found);
        }
    }
}

static mqlite_client *make_client(run *r, cstate *s)
{
    mqlite_client *c = mqlite_client_new_with_allocator(s->name, fa_fn, &s->al);
    if (!c) {
        r->null_handle++;
        return NULL;
    }
    /* Non-allocating options first: a failure later leaves them set. */
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, s->version);
    mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 1000);
    return c;
}

static int broker_up(run *r)
{
    if (!r->b) {
        r->b = mqlite_broker_new_with_allocator(fa_fn, &r->bal);
        if (!r->b) {
            r->null_handle++;
            return 0;
        }
        mqlite_broker_set_int(r->b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
        mqlite_broker_set_int(r->b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_WARNING);
    }
    if (mqlite_broker_port(r->b, 0) > 0)
        return 1;
    int32_t port = 0;
    if (!api(r, mqlite_broker_listen(r->b, "127.0.0.1", 0, &port), "mqlite_broker_listen"))
        return 0;
    r->port = port;
    return 1;
}

static void scenario(run *r)
{
    unsigned char buf[BIG];
    int32_t pid;
    cstate *a = &r->cl[0], *b = &r->cl[1];

    r->step = "broker";
    if (!broker_up(r))
        return;

    r->step = "clients";
    for (int i = 0; i < NCLIENTS; i++)
        if (!(r->cl[i].c = make_client(r, &r->cl[i])))
            return;
    /* b's will: 5.0, published when b disconnects with reason 0x04. */
    if (!api(r, mqlite_client_set_str(b->c, MQLITE_OPT_WILL_TOPIC, "will/b"), "set will topic") ||
        !api(r, mqlite_client_set_bytes(b->c, MQLITE_OPT_WILL_PAYLOAD, "b\0gone", 6),
             "set will payload") ||
        !api(r, mqlite_client_set_int(b->c, MQLITE_OPT_WILL_QOS, 1), "set will QoS"))
        return;

    r->step = "connect";
    for (int i = 0; i < NCLIENTS; i++)
        if (!api(r, mqlite_client_connect(r->cl[i].c, "127.0.0.1", r->port), "connect"))
            return;
    if (!wait_for(r, all_connected, 1, "CONNECTED"))
        return;

    r->step = "subscribe";
    if (!api(r, mqlite_client_subscribe(a->c, "t/a/#", 2, &pid), "subscribe a") ||
        !api(r, mqlite_client_subscribe(a->c, "will/#", 1, &pid), "subscribe a will") ||
        !api(r, mqlite_client_subscribe(b->c, "t/b/#", 2, &pid), "subscribe b") ||
        !wait_for(r, all_subacks, 1, "SUBACK") || !wait_for(r, a_subacks, 2, "a's SUBACKs"))
        return;

    r->step = "publish";
    for (int from = 0; from < NCLIENTS; from++) {
        for (int k = 0; k < 3; k++) {
            char topic[48];
            snprintf(topic, sizeof topic, "t/%s/%d", r->cl[1 - from].name, k);
            size_t n = payload_of(from, k, buf);
            if (!api(r, mqlite_client_publish(r->cl[from].c, topic, buf, n, k, 0, &pid), "publish"))
                return;
        }
    }
    /* Each client: 2 QoS>0 acknowledgements of its own, 3 messages in. */
    if (!wait_for(r, published_and_received, 2 * 100 + 3, "messages and acknowledgements"))
        return;

    r->step = "retained";
    if (!api(r, mqlite_client_publish(b->c, "r/x", "kept\0", 5, 1, 1, &pid), "publish retained") ||
        !wait_for(r, a_published, 3, "PUBACK of the retained message") ||
        !api(r, mqlite_client_subscribe(a->c, "r/#", 1, &pid), "subscribe r/#") ||
        !wait_for(r, a_received, 4, "the retained message"))
        return;

    r->step = "unsubscribe";
    if (!api(r, mqlite_client_unsubscribe(a->c, "t/a/#", &pid), "unsubscribe a") ||
        !api(r, mqlite_client_unsubscribe(b->c, "t/b/#", &pid), "unsubscribe b") ||
        !wait_for(r, all_unsubacks, 1, "UNSUBACK"))
        return;

    r->step = "will";
    b->expect_close = 1;
    /* MQTT 5.0 3.14.2.1: 0x04 Disconnect with Will Message. */
    if (!api(r, mqlite_client_disconnect(b->c, 4), "disconnect b with will") ||
        !wait_for(r, a_received, 5, "b's will"))
        return;

    r->step = "disconnect";
    a->expect_close = 1;
    if (!api(r, mqlite_client_disconnect(a->c, 0), "disconnect a") ||
        !wait_for(r, all_disconnected, 1, "DISCONNECTED"))
        return;

    r->step = "verify";
    int ok = 1;
    check_messages(r, &ok);
    int found = 0;
    verify(r, a, "r/x", "kept\0", 5, 1, 1, &found);
    ok &= found == 1;
    found = 0;
    verify(r, a, "will/b", "b\0gone", 6, 1, 0, &found);
    ok &= found == 1;
    if (!ok) {
        note(r->other, sizeof r->other, "messages missing at the end");
        return;
    }
    r->completed = 1;
}

/* After the failure: the same handles still do their job. Whatever state
 * the failure left them in (a connection still closing, a client idle, no
 * listener), bring them back and do a QoS 1 round trip both ways. */
static int probe(run *r, char *why, size_t cap)
{
    r->budget_ms = 3000;
    if (!broker_up(r)) {
        snprintf(why, cap, "the broker cannot be made or cannot listen again");
        return 0;
    }
    int subscribed[NCLIENTS] = {0};
    for (int i = 0; i < NCLIENTS; i++) {
        cstate *s = &r->cl[i];
        if (!s->c && !(s->c = make_client(r, s))) {
            snprintf(why, cap, "client %s cannot be made again", s->name);
            return 0;
        }
        s->expect_close = 0;
    }
    int published = 0;
    uint64_t end = now_ms() + 5000;
    for (;;) {
        for (int i = 0; i < NCLIENTS; i++) {
            cstate *s = &r->cl[i];
            int st = mqlite_client_state(s->c);
            if (st == MQLITE_STATE_IDLE) {
                int32_t rc = mqlite_client_connect(s->c, "127.0.0.1", r->port);
                if (rc) {
                    snprintf(why, cap, "client %s: connect: %s (%s)", s->name,
                             mqlite_error_name(rc), mqlite_client_errmsg(s->c));
                    return 0;
                }
                subscribed[i] = published = 0;
            } else if (st == MQLITE_STATE_CONNECTED && !subscribed[i]) {
                char f[32];
                snprintf(f, sizeof f, "probe/%s", s->name);
                s->subacks = 0;
                int32_t rc = mqlite_client_subscribe(s->c, f, 1, NULL);
                if (rc) {
                    snprintf(why, cap, "client %s: subscribe: %s", s->name, mqlite_error_name(rc));
                    return 0;
                }
                subscribed[i] = 1;
            }
        }
        if (!published && subscribed[0] && subscribed[1] && all_subacks(r, 1)) {
            for (int i = 0; i < NCLIENTS; i++) {
                char t[32];
                snprintf(t, sizeof t, "probe/%s", r->cl[1 - i].name);
                r->cl[1 - i].nmsgs = 0;
                int32_t rc = mqlite_client_publish(r->cl[i].c, t, "p", 1, 1, 0, NULL);
                if (rc) {
                    snprintf(why, cap, "client %s: publish: %s", r->cl[i].name,
                             mqlite_error_name(rc));
                    return 0;
                }
            }
            published = 1;
        }
        if (published && r->cl[0].nmsgs >= 1 && r->cl[1].nmsgs >= 1)
            return 1;
        if (now_ms() >= end) {
            snprintf(why, cap, "no QoS 1 round trip (states %d/%d, SUBACKs %d/%d, messages %d/%d)",
                     mqlite_client_state(r->cl[0].c), mqlite_client_state(r->cl[1].c),
                     r->cl[0].subacks, r->cl[1].subacks, r->cl[0].nmsgs, r->cl[1].nmsgs);
            return 0;
        }
        pump(r, 1);
    }
}

static void teardown(run *r)
{
    for (int i = 0; i < NCLIENTS; i++) {
        mqlite_client_free(r->cl[i].c);
        r->cl[i].c = NULL;
    }
    if (r->b) {
        r->dropped = mqlite_broker_stat(r->b, MQLITE_BSTAT_MESSAGES_DROPPED);
        mqlite_broker_stop(r->b);
        mqlite_broker_poll(r->b, 0);
        mqlite_broker_free(r->b);
        r->b = NULL;
    }
}

static void run_init(run *r, long fail_at, int budget_ms)
{
    memset(r, 0, sizeof *r);
    r->sh.fail_at = fail_at;
    r->budget_ms = budget_ms;
    r->bal = (fa){&r->sh, "broker", 0, 0};
    r->cl[0] = (cstate){.name = "a", .version = MQLITE_V311, .al = {&r->sh, "client a", 0, 0}};
    r->cl[1] = (cstate){.name = "b", .version = MQLITE_V5, .al = {&r->sh, "client b", 0, 0}};
}

static long live_of(const run *r)
{
    return r->bal.live + r->cl[0].al.live + r->cl[1].al.live;
}

/* The broker logs to stderr: capture it per run (mqlite's lines only; the
 * sanitizers write to fd 2 directly and still reach the test's output). */
static FILE *capture_begin(run *r)
{
    FILE *real = stderr;
    FILE *cap = open_memstream(&r->log, &r->loglen);
    if (cap)
        stderr = cap;
    return real;
}

static void capture_end(run *r, FILE *real)
{
    if (stderr != real) {
        fclose(stderr);
        stderr = real;
    }
    r->log_oom = r->log && (strstr(r->log, "out of memory") != NULL);
}

/* ---------------------------------------------------------------------
 * The sweep
 * --------------------------------------------------------------------- */

typedef struct tally {
    long cases, not_reached, completed, reported, nomem_rc, null_handle, nomem_event, closed,
        refused, dropped, log_oom, probes;
} tally;

static void one_case(long n, long total, tally *t)
{
    run r;
    run_init(&r, n, 300);
    FILE *real = capture_begin(&r);
    scenario(&r);
    char why[256] = "";
    int hit = r.sh.failed_in != NULL;
    int probe_ok = hit ? probe(&r, why, sizeof why) : 1;
    teardown(&r);
    capture_end(&r, real);

    t->cases++;
    int reported = r.nomem_rc || r.null_handle || r.nomem_event || r.closed || r.refused ||
                   r.dropped > 0 || r.log_oom;
    if (!hit) {
        t->not_reached++;
        CHECK(r.completed);
    } else if (r.completed) {
        t->completed++;
    } else {
        t->reported += reported;
        t->nomem_rc += r.nomem_rc > 0;
        t->null_handle += r.null_handle > 0;
        t->nomem_event += r.nomem_event > 0;
        t->closed += r.closed > 0;
        t->refused += r.refused > 0;
        t->dropped += r.dropped > 0;
        t->log_oom += r.log_oom;
    }
    t->probes += hit && probe_ok;
    int bad = (hit && !r.completed && !reported) || !probe_ok || r.corrupt[0] || live_of(&r);
    if (bad || verbose)
        fprintf(stderr,
                "%s allocation %ld/%ld (%s, %zu bytes): %s; step %s; %s%s%s%s%s; reports: nomem "
                "%d, null %d, nomem events %d, closed %d, refused %d, dropped %lld, log %d; "
                "live %ld/%ld/%ld\n",
                bad ? "FAIL" : "ok  ", n, total, hit ? r.sh.failed_in : "not reached",
                r.sh.failed_size, r.completed ? "completed" : "stopped", r.step,
                r.other[0] ? r.other : "-", probe_ok ? "" : "; probe: ", probe_ok ? "" : why,
                r.corrupt[0] ? "; WRONG DATA: " : "", r.corrupt, r.nomem_rc, r.null_handle,
                r.nomem_event, r.closed, r.refused, (long long)r.dropped, r.log_oom, r.bal.live,
                r.cl[0].al.live, r.cl[1].al.live);
    if (bad && r.log && r.loglen)
        fprintf(stderr, "  broker log:\n%s", r.log);
    CHECK(!hit || r.completed || reported);
    CHECK(probe_ok);
    CHECK_STR(r.corrupt, "");
    CHECK_EQ(r.bal.live, 0);
    CHECK_EQ(r.cl[0].al.live, 0);
    CHECK_EQ(r.cl[1].al.live, 0);
    free(r.log);
}

/* Every allocation of a full client + broker session fails once in turn. */
static void test_every_allocation_of_a_session_fails_cleanly(void)
{
    run r;
    run_init(&r, 0, 5000);
    uint64_t t0 = now_ms();
    scenario(&r);
    teardown(&r);
    uint64_t clean_ms = now_ms() - t0;
    CHECK(r.completed);
    CHECK_STR(r.other, "");
    CHECK_STR(r.corrupt, "");
    CHECK_EQ(live_of(&r), 0);
    long total = r.sh.n;
    printf("clean run: %ld allocations (broker %ld, client a %ld, client b %ld) in %d rounds, "
           "%llu ms\n",
           total, r.bal.calls, r.cl[0].al.calls, r.cl[1].al.calls, r.rounds,
           (unsigned long long)clean_ms);
    CHECK(total > 50);
    if (!r.completed)
        return;

    tally t = {0};
    uint64_t t1 = now_ms();
    const char *only = getenv("MQ_ALLOC_FAIL_ONLY");
    for (long n = 1; n <= total; n++)
        if (!only || atol(only) == n)
            one_case(n, total, &t);
    printf("session sweep: %ld cases in %llu ms: %ld completed despite the failure, %ld "
           "stopped with a report (NOMEM return %ld, NULL handle %ld, NOMEM event %ld, "
           "connection closed %ld, refused code %ld, broker dropped %ld, broker log %ld), "
           "%ld not reached; handles usable afterwards in %ld of %ld\n",
           t.cases, (unsigned long long)(now_ms() - t1), t.completed, t.reported, t.nomem_rc,
           t.null_handle, t.nomem_event, t.closed, t.refused, t.dropped, t.log_oom, t.not_reached,
           t.probes, t.cases - t.not_reached);
}

/* ---------------------------------------------------------------------
 * The codec: mqlite_packet_* and mqlite_props_* allocate with malloc
 * --------------------------------------------------------------------- */

static int codec_armed;
static long codec_n, codec_fail_at, codec_live;

/* Every allocation of common.c's default allocator is a realloc(3) call
 * (malloc is realloc(NULL, n)), every release a free(3) call. These two
 * pass everything on (to ASan's allocator in the sanitizer build) and,
 * while a codec case runs, count and fail. */
void *realloc(void *p, size_t size)
{
    static void *(*real)(void *, size_t);
    if (!real)
        real = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    if (codec_armed && size && ++codec_n == codec_fail_at)
        return NULL;
    void *q = real(p, size);
    if (codec_armed && q && !p)
        codec_live++;
    return q;
}

void free(void *p)
{
    static void (*real)(void *);
    static int resolving;
    if (!real) {
        if (resolving)
            return; /* dlsym freeing while we resolve: keep it (never seen) */
        resolving = 1;
        real = (void (*)(void *))dlsym(RTLD_NEXT, "free");
        resolving = 0;
    }
    if (codec_armed && p)
        codec_live--;
    real(p);
}

typedef struct ccase {
    int nomem;       /* a call said MQLITE_ERR_NOMEM (or NULL with it) */
    char wrong[160]; /* a call failed otherwise, or a result was wrong */
} ccase;

/* A codec call's result: 1 to go on, 0 to stop. */
static int cok(ccase *k, int32_t rc, const char *what)
{
    if (rc == 0)
        return 1;
    if (rc == MQLITE_ERR_NOMEM)
        k->nomem = 1;
    else
        note(k->wrong, sizeof k->wrong, "%s: %s", what, mqlite_error_name(rc));
    return 0;
}

static mqlite_props *make_props(ccase *k, int type)
{
    mqlite_props *pr = mqlite_props_new();
    if (!pr) {
        k->nomem = 1;
        return NULL;
    }
    int ok =
        cok(k, mqlite_props_add_pair(pr, "key", "value"), "add_pair") &&
        cok(k, mqlite_props_add_pair(pr, "k2", "a longer value, to grow the buffers"), "add_pair");
    if (ok && type == MQLITE_PKT_PUBLISH)
        ok = cok(k, mqlite_props_add_int(pr, MQLITE_PROP_MESSAGE_EXPIRY, 60), "add_int") &&
             cok(k, mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, "text/plain"), "add_str") &&
             cok(k, mqlite_props_add_bytes(pr, MQLITE_PROP_CORRELATION_DATA, "\0\1\2", 3),
                 "add_bytes");
    if (ok && type == MQLITE_PKT_CONNECT)
        ok = cok(k, mqlite_props_add_int(pr, MQLITE_PROP_SESSION_EXPIRY, 30), "add_int");
    if (ok &&
        (type == MQLITE_PKT_PUBACK || type == MQLITE_PKT_DISCONNECT || type == MQLITE_PKT_SUBACK))
        ok = cok(k, mqlite_props_add_str(pr, MQLITE_PROP_REASON_STRING, "why"), "add_str");
    if (ok && type == MQLITE_PKT_AUTH)
        ok = cok(k, mqlite_props_add_str(pr, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-1"), "add_str") &&
             cok(k, mqlite_props_add_bytes(pr, MQLITE_PROP_AUTH_DATA, "\0x", 2), "add_bytes");
    if (!ok) {
        mqlite_props_free(pr);
        return NULL;
    }
    return pr;
}

/* Fill a packet of each type with what it can carry. */
static int fill_packet(ccase *k, mqlite_packet *p, int type, int version)
{
    switch (type) {
    case MQLITE_PKT_CONNECT:
        return cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_CLIENT_ID, "codec", 5), "client id") &&
               cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_USERNAME, "user", 4), "user") &&
               cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_PASSWORD, "p\0w", 3), "password") &&
               cok(k, mqlite_packet_set_int(p, MQLITE_PF_WILL, 1), "will") &&
               cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_WILL_TOPIC, "will/t", 6), "will t") &&
               cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_WILL_PAYLOAD, "\0w", 2), "will p") &&
               cok(k, mqlite_packet_set_int(p, MQLITE_PF_WILL_QOS, 1), "will qos");
    case MQLITE_PKT_CONNACK:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_SESSION_PRESENT, 1), "sp");
    case MQLITE_PKT_PUBLISH:
        return cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "a/b", 3), "topic") &&
               cok(k, mqlite_packet_set_bytes(p, MQLITE_PF_PAYLOAD, "pay\0load", 8), "payload") &&
               cok(k, mqlite_packet_set_int(p, MQLITE_PF_QOS, 1), "qos") &&
               cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 7), "pid");
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 9), "pid") &&
               (version != MQLITE_V5 || type != MQLITE_PKT_PUBACK ||
                cok(k, mqlite_packet_set_int(p, MQLITE_PF_REASON_CODE, 0x10), "reason"));
    case MQLITE_PKT_SUBSCRIBE:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 3), "pid") &&
               cok(k, mqlite_packet_add_topic(p, "x/+/y", 1), "topic 1") &&
               cok(k, mqlite_packet_add_topic(p, "z/#", 2), "topic 2") &&
               cok(k, mqlite_packet_add_topic(p, "a longer filter/to grow/the list", 0), "topic 3");
    case MQLITE_PKT_UNSUBSCRIBE:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 4), "pid") &&
               cok(k, mqlite_packet_add_topic(p, "x/+/y", 0), "topic 1") &&
               cok(k, mqlite_packet_add_topic(p, "z/#", 0), "topic 2");
    case MQLITE_PKT_SUBACK:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 3), "pid") &&
               cok(k, mqlite_packet_add_reason(p, 1), "reason 1") &&
               cok(k, mqlite_packet_add_reason(p, 0x80), "reason 2");
    case MQLITE_PKT_UNSUBACK:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 4), "pid") &&
               (version != MQLITE_V5 || (cok(k, mqlite_packet_add_reason(p, 0), "reason 1") &&
                                         cok(k, mqlite_packet_add_reason(p, 0x11), "reason 2")));
    case MQLITE_PKT_DISCONNECT:
        return version != MQLITE_V5 ||
               cok(k, mqlite_packet_set_int(p, MQLITE_PF_REASON_CODE, 0x04), "reason");
    case MQLITE_PKT_AUTH:
        return cok(k, mqlite_packet_set_int(p, MQLITE_PF_REASON_CODE, 0x18), "reason");
    default: /* PINGREQ, PINGRESP */
        return 1;
    }
}

static int has_props(int type)
{
    return type != MQLITE_PKT_PINGREQ && type != MQLITE_PKT_PINGRESP;
}

/* Read a decoded packet as a binding would, and re-encode it. */
static void read_back(ccase *k, mqlite_packet *d, const uint8_t *wire, size_t len)
{
    size_t n = 0;
    for (int f = MQLITE_PF_TOPIC; f <= MQLITE_PF_PROTOCOL_NAME; f++)
        mqlite_packet_bytes(d, f, &n);
    for (int i = 0; i < mqlite_packet_count(d); i++)
        mqlite_packet_topic_at(d, i, &n);
    const mqlite_props *pr = mqlite_packet_props(d);
    for (int i = 0; i < mqlite_props_count(pr); i++) {
        mqlite_props_value(pr, i, &n);
        mqlite_props_key(pr, i, &n);
    }
    mqlite_props_find(pr, MQLITE_PROP_USER, 0);
    uint8_t again[512];
    size_t len2 = 0;
    if (cok(k, mqlite_packet_encode(d, again, sizeof again, &len2), "re-encode") &&
        (len2 != len || memcmp(again, wire, len) != 0))
        note(k->wrong, sizeof k->wrong, "decode + encode changed the bytes");
}

/* Build, encode, decode (copying and NOCOPY), read, re-encode, free one
 * packet type. Allocations through realloc(3) may fail at any point. */
static void codec_case(ccase *k, int type, int version)
{
    int32_t err = 0;
    mqlite_packet *p = mqlite_packet_new(type, version, &err);
    mqlite_props *pr = NULL;
    mqlite_packet *d = NULL;
    if (!p) {
        cok(k, err, "mqlite_packet_new");
        return;
    }
    if (!fill_packet(k, p, type, version))
        goto done;
    if (version == MQLITE_V5 && has_props(type)) {
        if (!(pr = make_props(k, type)) || !cok(k, mqlite_packet_set_props(p, pr), "set_props"))
            goto done;
        if (type == MQLITE_PKT_CONNECT) {
            mqlite_props_free(pr);
            if (!(pr = mqlite_props_new())) {
                k->nomem = 1;
                goto done;
            }
            if (!cok(k, mqlite_props_add_int(pr, MQLITE_PROP_WILL_DELAY, 5), "will delay") ||
                !cok(k, mqlite_props_add_pair(pr, "w", "v"), "will pair") ||
                !cok(k, mqlite_packet_set_will_props(p, pr), "set_will_props"))
                goto done;
        }
    }
    uint8_t wire[512];
    size_t len = 0;
    if (!cok(k, mqlite_packet_encode(p, wire, sizeof wire, &len), "encode"))
        goto done;
    for (int nocopy = 0; nocopy <= 1; nocopy++) {
        size_t used = 0, need = 0;
        d = mqlite_packet_decode(wire, len, version, nocopy ? MQLITE_DECODE_NOCOPY : 0, 0, &used,
                                 &need, &err);
        if (!d) {
            if (err == 0)
                note(k->wrong, sizeof k->wrong, "decode wants more (%zu bytes)", need);
            cok(k, err, "decode");
            goto done;
        }
        if (used != len)
            note(k->wrong, sizeof k->wrong, "decode used %zu of %zu bytes", used, len);
        read_back(k, d, wire, len);
        mqlite_packet_free(d);
        d = NULL;
        if (k->nomem || k->wrong[0])
            goto done;
    }
done:
    mqlite_packet_errmsg(p); /* readable after any failure */
    mqlite_packet_free(d);
    mqlite_props_free(pr);
    mqlite_packet_free(p);
}

/* Every allocation of the codec's build/encode/decode/read cycle of every
 * packet type (3.1.1 and 5.0) fails once in turn. */
static void test_every_codec_allocation_fails_cleanly(void)
{
    long cases = 0, reported = 0, absorbed = 0, total_all = 0;
    /* Resolve the real functions now: dlsym allocates and frees itself. */
    void *volatile warm = realloc(NULL, 1);
    free(warm);
    for (int version = MQLITE_V311; version <= MQLITE_V5; version++) {
        for (int type = MQLITE_PKT_CONNECT; type <= MQLITE_PKT_AUTH; type++) {
            if (type == MQLITE_PKT_AUTH && version != MQLITE_V5)
                continue;
            ccase k = {0};
            codec_n = codec_fail_at = codec_live = 0;
            codec_armed = 1;
            codec_case(&k, type, version);
            codec_armed = 0;
            long total = codec_n;
            total_all += total;
            CHECK(!k.nomem);
            CHECK_STR(k.wrong, "");
            CHECK_EQ(codec_live, 0);
            CHECK(total > 0); /* else realloc(3) is no longer how the codec allocates */
            for (long n = 1; n <= total; n++) {
                ccase f = {0};
                codec_n = codec_live = 0;
                codec_fail_at = n;
                codec_armed = 1;
                codec_case(&f, type, version);
                codec_armed = 0;
                cases++;
                if (f.nomem)
                    reported++;
                else
                    absorbed++; /* then it must still have produced the right bytes */
                if (f.wrong[0] || codec_live)
                    fprintf(stderr,
                            "FAIL codec %s v%d allocation %ld/%ld: %s; %ld blocks "
                            "leaked\n",
                            mqlite_packet_type_name(type), version, n, total,
                            f.wrong[0] ? f.wrong : "-", codec_live);
                CHECK_STR(f.wrong, "");
                CHECK_EQ(codec_live, 0);
            }
        }
    }
    printf("codec sweep: %ld allocations over 29 packet kinds, %ld cases: %ld reported "
           "MQLITE_ERR_NOMEM, %ld absorbed with correct results\n",
           total_all, cases, reported, absorbed);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    verbose = getenv("MQ_TEST_VERBOSE") != NULL;
    RUN(test_every_codec_allocation_fails_cleanly);
    RUN(test_every_allocation_of_a_session_fails_cleanly);
    TEST_MAIN_END();
}
