/*
 * cmd_bench.c - `mqlite bench MODE [options]`: a load generator built on
 * mqlite's client, against any MQTT broker. All clients live in this one
 * process on one poll() loop (mqlite_client_fd / _want_write / _io), the
 * way an application embeds the client.
 *
 *   pub     N publishers, each on its own topic; counts acknowledged messages
 *   sub     N subscribers on a filter; counts what arrives (from `bench pub`)
 *   pairs   N publishers -> N subscribers, a topic per pair
 *   fanin   N publishers -> 1 subscriber, one topic
 *   fanout  1 publisher  -> N subscribers, one topic
 *   conns   N idle connections: connect rate, then held for the duration
 *
 * Load is closed-loop: a publisher is at most --window messages ahead of
 * the slowest subscriber that receives it (pub alone: of its own
 * acknowledgements), so queues stay bounded and latency means something.
 * Every payload carries run, publisher, sequence number and send time
 * (tools/benchstat.h). Every wait is bounded by the duration (-d) plus a
 * short drain.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "benchstat.h"
#include "cliopts.h"
#include "mqlite.h"
#include "tools.h"

#define MAX_CLIENTS 20000
#define SETUP_S 10.0 /* connect + subscribe, at most */
#define DRAIN_S 2.0  /* after the last publish, for what is still in flight */
#define MAX_RUNS 16  /* distinct senders a `sub` subscriber keeps apart */

enum {
    M_PUB,
    M_SUB,
    M_PAIRS,
    M_FANIN,
    M_FANOUT,
    M_CONNS
};
static const char *const mode_names[] = {"pub", "sub", "pairs", "fanin", "fanout", "conns"};

typedef struct bopts {
    int mode;
    const char *host;
    int port;
    int qos;
    int size;
    int clients;
    long count;      /* messages per publisher; 0 = until the duration ends */
    double duration; /* seconds */
    int version;
    int window;
    const char *topic; /* prefix (pub, pairs, fanin, fanout) or filter (sub) */
    int json, quiet;
} bopts;

/* One sender as a subscriber sees it: its run's streams, by publisher. */
typedef struct runstreams {
    uint32_t run;
    bstat_stream *s;
    uint32_t n;
} runstreams;

typedef struct bclient {
    mqlite_client *c;
    int is_pub, idx;
    int connected, subscribed;
    char topic[128];
    uint64_t sent, acked;
    runstreams runs[MAX_RUNS];
    int nruns;
} bclient;

typedef struct bench {
    bopts o;
    bclient *cl;
    int n, npub, nsub;
    bclient **pubs, **subs;
    struct pollfd *pfd;
    uint32_t run;
    uint8_t *buf;
    bstat_lat lat;
    uint64_t received, foreign, errors;
    int failed;
    double t0, connect_s;
} bench;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mqlite bench MODE [options]\n"
            "\n"
            "Load-test an MQTT broker with mqlite's client; all clients share one poll loop.\n"
            "\n"
            "modes:\n"
            "  pub      N publishers (a topic each); counts acknowledged messages\n"
            "  sub      N subscribers on a filter; counts what arrives (e.g. from 'bench pub')\n"
            "  pairs    N publishers -> N subscribers, a topic per pair\n"
            "  fanin    N publishers -> 1 subscriber\n"
            "  fanout   1 publisher -> N subscribers\n"
            "  conns    open N idle connections, report the connect rate, hold them\n"
            "\n"
            "options:\n"
            "  -h, --host HOST      broker host (default 127.0.0.1)\n"
            "  -p, --port PORT      broker port (default 1883)\n"
            "  -q, --qos QOS        0, 1 or 2 (default 0)\n"
            "  -s, --size BYTES     payload size, %d..268435455 (default 64)\n"
            "  -c, --clients N      publishers, subscribers or connections (default 1;\n"
            "                       fanin/fanout/pairs: 10)\n"
            "  -n, --count N        messages per publisher (default 0: until -d ends;\n"
            "                       sub: stop once N messages arrived)\n"
            "  -d, --duration SECS  run at most SECS seconds (default 10; conns: hold time)\n"
            "  -V, --protocol VER   mqttv31 | mqttv311 | mqttv5 (also 31, 311, 5; default 311)\n"
            "  -w, --window N       messages a publisher may be ahead, and QoS 1/2 in\n"
            "                       flight per publisher (default 20, mosquitto's\n"
            "                       max_inflight_messages: over 3.1.1 mosquitto 2.0 drops\n"
            "                       QoS 2 messages beyond it)\n"
            "  -t, --topic T        topic prefix (sub: filter; default mqlite-bench/<pid>,\n"
            "                       sub: mqlite-bench/#)\n"
            "      --json           print the summary as one JSON object\n"
            "      --quiet          no progress line\n"
            "      --help           this help\n"
            "\n"
            "The summary gives msgs/s, MB/s, latency p50/p99/max (from the send time in\n"
            "each payload; measured where messages are received, so not by pub alone),\n"
            "lost and duplicated messages. Exit status: 0 done, 1 a\n"
            "connection failed, 2 bad arguments.\n",
            BSTAT_HDR);
}

/* ---- arguments ---- */

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "mqlite bench: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (try 'mqlite bench --help')\n");
    return 2;
}

/* An option with a value: 0 taken, 2 usage error. */
static int take_value(bopts *o, const char *a, const char *v)
{
    long n;
    double d;
    char *end;
    if (!strcmp(a, "-h") || !strcmp(a, "--host")) {
        o->host = v;
    } else if (!strcmp(a, "-p") || !strcmp(a, "--port")) {
        if (cli_parse_long(v, 1, 65535, &n))
            return bad("invalid port '%s' for %s", v, a);
        o->port = (int)n;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--qos")) {
        if (cli_parse_long(v, 0, 2, &n))
            return bad("invalid QoS '%s' for %s (0, 1 or 2)", v, a);
        o->qos = (int)n;
    } else if (!strcmp(a, "-s") || !strcmp(a, "--size")) {
        if (cli_parse_long(v, BSTAT_HDR, 268435455L, &n))
            return bad("invalid payload size '%s' for %s (at least 24 bytes)", v, a);
        o->size = (int)n;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--clients")) {
        if (cli_parse_long(v, 1, MAX_CLIENTS, &n))
            return bad("invalid client count '%s' for %s (1..20000)", v, a);
        o->clients = (int)n;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--count")) {
        if (cli_parse_long(v, 0, BSTAT_MAX_SEQ, &n))
            return bad("invalid message count '%s' for %s", v, a);
        o->count = n;
    } else if (!strcmp(a, "-d") || !strcmp(a, "--duration")) {
        d = strtod(v, &end);
        if (!*v || *end || !(d > 0) || d > 86400)
            return bad("invalid duration '%s' for %s (seconds, > 0)", v, a);
        o->duration = d;
    } else if (!strcmp(a, "-V") || !strcmp(a, "--protocol")) {
        o->version = cli_version_of(v);
        if (o->version < 0)
            return bad("invalid protocol version '%s' for %s", v, a);
    } else if (!strcmp(a, "-w") || !strcmp(a, "--window")) {
        if (cli_parse_long(v, 1, 65535, &n))
            return bad("invalid window '%s' for %s (1..65535)", v, a);
        o->window = (int)n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
        o->topic = v;
    } else {
        return bad("unknown option '%s'%s", a, "");
    }
    return 0;
}

/* 0 run, 1 help shown, 2 usage error. */
static int parse_args(int argc, char **argv, bopts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 1883;
    o->size = 64;
    o->duration = 10;
    o->version = MQLITE_V311;
    o->window = 20;
    o->mode = -1;
    o->clients = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (a[0] == '-') {
            if (i + 1 >= argc)
                return bad("option %s needs a value%s", a, "");
            int rc = take_value(o, a, argv[++i]);
            if (rc)
                return rc;
        } else if (o->mode < 0) {
            for (int m = 0; m <= M_CONNS; m++)
                if (!strcmp(a, mode_names[m]))
                    o->mode = m;
            if (o->mode < 0)
                return bad("unknown mode '%s'%s", a, "");
        } else {
            return bad("unexpected argument '%s'%s", a, "");
        }
    }
    if (o->mode < 0)
        return bad("missing MODE: pub, sub, pairs, fanin, fanout or conns%s%s", "", "");
    if (!o->clients)
        o->clients = o->mode == M_PAIRS || o->mode == M_FANIN || o->mode == M_FANOUT ? 10 : 1;
    return 0;
}

/* ---- clients ---- */

static int setup_clients(bench *b)
{
    const bopts *o = &b->o;
    int n = o->clients;
    switch (o->mode) {
    case M_PUB:
        b->npub = n;
        break;
    case M_SUB:
        b->nsub = n;
        break;
    case M_PAIRS:
        b->npub = b->nsub = n;
        break;
    case M_FANIN:
        b->npub = n;
        b->nsub = 1;
        break;
    case M_FANOUT:
        b->npub = 1;
        b->nsub = n;
        break;
    default:
        b->nsub = n;
        break; /* conns: idle clients */
    }
    b->n = b->npub + b->nsub;
    b->cl = calloc((size_t)b->n, sizeof *b->cl);
    b->pubs = calloc((size_t)b->npub + 1, sizeof *b->pubs);
    b->subs = calloc((size_t)b->nsub + 1, sizeof *b->subs);
    b->pfd = calloc((size_t)b->n, sizeof *b->pfd);
    b->buf = malloc((size_t)o->size);
    if (!b->cl || !b->pubs || !b->subs || !b->pfd || !b->buf) {
        fprintf(stderr, "mqlite bench: out of memory\n");
        return -1;
    }
    char prefix[96];
    snprintf(prefix, sizeof prefix, "mqlite-bench/%ld", (long)getpid());
    const char *pre = o->topic ? o->topic : prefix;
    for (int i = 0; i < b->n; i++) {
        bclient *x = &b->cl[i];
        x->is_pub = i < b->npub;
        x->idx = x->is_pub ? i : i - b->npub;
        if (x->is_pub)
            b->pubs[x->idx] = x;
        else
            b->subs[x->idx] = x;
        /* pub and pairs: a topic per publisher / pair; fanin, fanout: one */
        int per = o->mode == M_PUB || o->mode == M_PAIRS;
        if (o->mode == M_SUB)
            snprintf(x->topic, sizeof x->topic, "%s", o->topic ? o->topic : "mqlite-bench/#");
        else if (per)
            snprintf(x->topic, sizeof x->topic, "%s/%d", pre, x->idx);
        else
            snprintf(x->topic, sizeof x->topic, "%s/all", pre);
        char id[64];
        snprintf(id, sizeof id, "mqb-%x-%c%d", (unsigned)b->run, x->is_pub ? 'p' : 's', x->idx);
        x->c = mqlite_client_new(id);
        if (!x->c || mqlite_client_set_int(x->c, MQLITE_OPT_PROTOCOL, o->version) < 0 ||
            mqlite_client_set_int(x->c, MQLITE_OPT_MAX_INFLIGHT, o->window) < 0 ||
            mqlite_client_set_int(x->c, MQLITE_OPT_MAX_QUEUED, 0) < 0) {
            fprintf(stderr, "mqlite bench: cannot create client %s\n", id);
            return -1;
        }
        if (mqlite_client_connect(x->c, o->host, o->port) < 0) {
            fprintf(stderr, "mqlite bench: %s:%d: %s\n", o->host, o->port,
                    mqlite_client_errmsg(x->c));
            return -1;
        }
    }
    return 0;
}

static void free_clients(bench *b)
{
    for (int i = 0; b->cl && i < b->n; i++) {
        bclient *x = &b->cl[i];
        if (x->c && x->connected)
            mqlite_client_disconnect(x->c, 0);
        for (int r = 0; r < x->nruns; r++) {
            for (uint32_t k = 0; k < x->runs[r].n; k++)
                bstat_stream_free(&x->runs[r].s[k]);
            free(x->runs[r].s);
        }
    }
    /* Let the DISCONNECTs go out (bounded), then close. */
    for (int round = 0; b->cl && round < 20; round++) {
        int any = 0;
        for (int i = 0; i < b->n; i++)
            if (b->cl[i].c && mqlite_client_fd(b->cl[i].c) >= 0 &&
                mqlite_client_want_write(b->cl[i].c)) {
                mqlite_client_io(b->cl[i].c, 0, 1);
                any = 1;
            }
        if (!any)
            break;
    }
    for (int i = 0; b->cl && i < b->n; i++)
        mqlite_client_free(b->cl[i].c);
    free(b->cl);
    free(b->pubs);
    free(b->subs);
    free(b->pfd);
    free(b->buf);
    bstat_lat_free(&b->lat);
}

/* The stream of (run, pub) in subscriber x, created on first sight. */
static bstat_stream *stream_of(bclient *x, uint32_t run, uint32_t pub)
{
    runstreams *rs = NULL;
    for (int r = 0; r < x->nruns && !rs; r++)
        if (x->runs[r].run == run)
            rs = &x->runs[r];
    if (!rs) {
        if (x->nruns == MAX_RUNS)
            return NULL;
        rs = &x->runs[x->nruns++];
        rs->run = run;
    }
    if (pub >= rs->n) {
        if (pub >= MAX_CLIENTS)
            return NULL;
        uint32_t n = pub + 1 > rs->n * 2 ? pub + 1 : rs->n * 2;
        bstat_stream *s = realloc(rs->s, n * sizeof *s);
        if (!s)
            return NULL;
        memset(s + rs->n, 0, (n - rs->n) * sizeof *s);
        rs->s = s;
        rs->n = n;
    }
    return &rs->s[pub];
}

static void on_message(bench *b, bclient *x, const mqlite_event *ev)
{
    size_t len;
    const void *p = mqlite_event_payload(ev, &len);
    bstat_hdr h;
    bstat_stream *s;
    if (bstat_decode(p, len, &h) || !(s = stream_of(x, h.run, h.pub)) ||
        bstat_stream_add(s, h.seq) < 0) {
        b->foreign++; /* counted, but no latency, loss or duplicate can be told */
        b->received++;
        return;
    }
    uint64_t now = bstat_now_us();
    b->received++;
    bstat_lat_add(&b->lat, now > h.sent_us ? now - h.sent_us : 0);
}

/* Take every event of x; -1 when its connection failed. */
static int handle_events(bench *b, bclient *x)
{
    const mqlite_event *ev;
    int rc = 0;
    for (int k = 0; k < 100000 && (ev = mqlite_client_next_event(x->c)) != NULL; k++) {
        switch (mqlite_event_type(ev)) {
        case MQLITE_EVENT_CONNECTED:
            x->connected = 1;
            break;
        case MQLITE_EVENT_CONNECT_FAILED:
        case MQLITE_EVENT_DISCONNECTED:
            if (!b->failed++) /* one line, not one per client */
                fprintf(stderr, "mqlite bench: %s:%d: %s\n", b->o.host, b->o.port,
                        mqlite_event_text(ev));
            x->connected = 0;
            rc = -1;
            break;
        case MQLITE_EVENT_SUBACK:
            if (mqlite_event_count(ev) > 0 && mqlite_event_reason_at(ev, 0) >= 0x80) {
                fprintf(stderr, "mqlite bench: subscription to %s refused (reason 0x%02x)\n",
                        x->topic, (unsigned)mqlite_event_reason_at(ev, 0));
                rc = -1;
            }
            x->subscribed = 1;
            break;
        case MQLITE_EVENT_PUBLISHED:
            if (mqlite_event_error(ev))
                b->errors++;
            else
                x->acked++;
            break;
        case MQLITE_EVENT_MESSAGE:
            on_message(b, x, ev);
            break;
        case MQLITE_EVENT_PUBLISH_LOST:
        case MQLITE_EVENT_ERROR:
            b->errors++;
            break;
        default:
            break;
        }
    }
    return rc;
}

/* One poll over every client, then I/O and events. -1 when a connection
 * failed. */
static int round_all(bench *b, int timeout_ms)
{
    for (int i = 0; i < b->n; i++) {
        mqlite_client *c = b->cl[i].c;
        b->pfd[i].fd = mqlite_client_fd(c);
        b->pfd[i].events = (short)(POLLIN | (mqlite_client_want_write(c) ? POLLOUT : 0));
        b->pfd[i].revents = 0;
        int t = mqlite_client_next_timeout_ms(c);
        if (t >= 0 && t < timeout_ms)
            timeout_ms = t;
    }
    if (poll(b->pfd, (nfds_t)b->n, timeout_ms) < 0 && errno != EINTR)
        return -1;
    int rc = 0;
    for (int i = 0; i < b->n; i++) {
        short re = b->pfd[i].revents;
        bclient *x = &b->cl[i];
        if (b->pfd[i].fd >= 0 || mqlite_client_next_timeout_ms(x->c) == 0)
            mqlite_client_io(x->c, (re & (POLLIN | POLLHUP | POLLERR)) != 0, (re & POLLOUT) != 0);
        if (handle_events(b, x) < 0)
            rc = -1;
    }
    return rc;
}

/* Wait until every client is connected (and subscribers subscribed). */
static int wait_ready(bench *b, int subscribe, double deadline)
{
    for (;;) {
        int all = 1;
        for (int i = 0; i < b->n; i++) {
            bclient *x = &b->cl[i];
            if (!x->connected) {
                all = 0;
                continue;
            }
            if (subscribe && !x->is_pub && !x->subscribed) {
                all = 0;
                if (mqlite_client_subscribe(x->c, x->topic, b->o.qos, NULL) < 0) {
                    fprintf(stderr, "mqlite bench: subscribe %s: %s\n", x->topic,
                            mqlite_client_errmsg(x->c));
                    return -1;
                }
                x->subscribed = -1; /* SUBSCRIBE sent; the SUBACK makes it 1 */
            } else if (subscribe && !x->is_pub && x->subscribed < 0) {
                all = 0;
            }
        }
        if (all)
            return 0;
        if (now_s() > deadline) {
            fprintf(stderr, "mqlite bench: %s:%d: clients not ready after %.0f s\n", b->o.host,
                    b->o.port, SETUP_S);
            return -1;
        }
        if (round_all(b, 50) < 0)
            return -1;
    }
}

/* ---- publishing ---- */

/* Distinct messages of publisher p that its slowest subscriber has. */
static uint64_t slowest(bench *b, int p)
{
    if (b->o.mode == M_PUB)
        return b->pubs[p]->acked;
    uint64_t min = UINT64_MAX;
    for (int s = 0; s < b->nsub; s++) {
        int routed = b->o.mode == M_FANIN ? 1 : b->o.mode == M_FANOUT ? 1 : s == p;
        if (!routed)
            continue;
        bclient *x = b->subs[s];
        bstat_stream *st = stream_of(x, b->run, (uint32_t)p);
        uint64_t got = st ? st->distinct : 0;
        if (got < min)
            min = got;
    }
    return min == UINT64_MAX ? 0 : min;
}

static int publish_some(bench *b, int stop)
{
    for (int p = 0; p < b->npub && !stop; p++) {
        bclient *x = b->pubs[p];
        uint64_t low = slowest(b, p);
        /* QoS 0 in `pub` mode has no acknowledgement: what left the queue */
        if (b->o.mode == M_PUB && b->o.qos == 0)
            low = x->sent - (uint64_t)mqlite_client_queued(x->c);
        for (int k = 0; k < 64; k++) {
            if (b->o.count && x->sent >= (uint64_t)b->o.count)
                break;
            if (x->sent - low >= (uint64_t)b->o.window || x->sent >= BSTAT_MAX_SEQ)
                break;
            bstat_hdr h = {b->run, (uint32_t)p, (uint32_t)x->sent, bstat_now_us()};
            bstat_encode(b->buf, (size_t)b->o.size, &h);
            if (mqlite_client_publish(x->c, x->topic, b->buf, (size_t)b->o.size, b->o.qos, 0,
                                      NULL) < 0) {
                fprintf(stderr, "mqlite bench: publish: %s\n", mqlite_client_errmsg(x->c));
                return -1;
            }
            x->sent++;
        }
    }
    return 0;
}

static uint64_t total_sent(const bench *b)
{
    uint64_t n = 0;
    for (int p = 0; p < b->npub; p++)
        n += b->pubs[p]->sent;
    return n;
}

static uint64_t total_acked(const bench *b)
{
    uint64_t n = 0;
    for (int p = 0; p < b->npub; p++)
        n += b->o.qos ? b->pubs[p]->acked
                      : b->pubs[p]->sent - (uint64_t)mqlite_client_queued(b->pubs[p]->c);
    return n;
}

/* Deliveries the subscribers should see for what was sent. */
static uint64_t expected(const bench *b)
{
    if (b->o.mode == M_FANOUT)
        return total_sent(b) * (uint64_t)b->nsub;
    return b->o.mode == M_PUB || b->o.mode == M_SUB ? 0 : total_sent(b);
}

static int all_sent(const bench *b)
{
    if (!b->o.count)
        return 0;
    for (int p = 0; p < b->npub; p++)
        if (b->pubs[p]->sent < (uint64_t)b->o.count)
            return 0;
    return 1;
}

/* Finished: sending is over (count reached or duration ended) and all
 * that was sent is acknowledged and delivered. */
static int complete(const bench *b, int stop)
{
    if (b->o.mode == M_SUB)
        return b->o.count && b->received >= (uint64_t)b->o.count;
    if (!(stop || all_sent(b)) || total_acked(b) < total_sent(b))
        return 0;
    return b->received >= expected(b);
}

static void progress(const bench *b, double t, int final)
{
    if (b->o.quiet || !isatty(2))
        return;
    if (final) {
        fprintf(stderr, "\r\033[K");
        return;
    }
    double el = t - b->t0;
    uint64_t done = b->o.mode == M_PUB ? total_acked(b) : b->received;
    fprintf(stderr, "\r\033[K[%4.0fs] %s: sent %llu, received %llu, %.0f msgs/s", el,
            mode_names[b->o.mode], (unsigned long long)total_sent(b),
            (unsigned long long)b->received, el > 0 ? (double)done / el : 0);
}

static int run_load(bench *b)
{
    double end = b->t0 + b->o.duration, drain_end = 0, next_progress = b->t0 + 1;
    int rc = 0;
    for (;;) {
        double t = now_s();
        if (t >= next_progress) {
            progress(b, t, 0);
            next_progress = t + 1;
        }
        int stop = t >= end;
        if (stop && !drain_end)
            drain_end = t + DRAIN_S;
        if (complete(b, stop) || (drain_end && (t >= drain_end || b->o.mode == M_SUB)))
            break;
        if (b->npub && publish_some(b, stop || all_sent(b)) < 0) {
            rc = -1;
            break;
        }
        if (round_all(b, b->npub && !stop && !all_sent(b) ? 5 : 50) < 0) {
            rc = -1;
            break;
        }
    }
    progress(b, now_s(), 1);
    return rc;
}

static int run_conns(bench *b)
{
    double end = b->t0 + b->o.duration, next_progress = b->t0 + 1;
    for (;;) {
        double t = now_s();
        if (t >= end)
            return 0;
        if (t >= next_progress && !b->o.quiet && isatty(2)) {
            fprintf(stderr, "\r\033[K[%4.0fs] conns: %d connections held", t - b->t0, b->n);
            next_progress = t + 1;
        }
        int ms = (int)((end - t) * 1000) + 1;
        if (round_all(b, ms < 200 ? ms : 200) < 0)
            return -1;
    }
}

/* ---- summary ---- */

typedef struct summary {
    uint64_t sent, acked, received, lost, dup, ooo;
    double elapsed, rate, mbps;
    uint32_t p50, p99, max;
} summary;

static void summarise(bench *b, summary *s)
{
    memset(s, 0, sizeof *s);
    s->sent = total_sent(b);
    s->acked = total_acked(b);
    s->received = b->received;
    s->elapsed = now_s() - b->t0;
    for (int i = 0; i < b->nsub; i++)
        for (int r = 0; r < b->subs[i]->nruns; r++)
            for (uint32_t k = 0; k < b->subs[i]->runs[r].n; k++) {
                const bstat_stream *st = &b->subs[i]->runs[r].s[k];
                s->dup += st->dup;
                s->ooo += st->ooo;
                if (b->o.mode == M_SUB)
                    s->lost += bstat_stream_gaps(st);
            }
    if (b->o.mode == M_PUB)
        s->lost = s->sent - s->acked;
    else if (b->o.mode != M_SUB && b->o.mode != M_CONNS)
        s->lost = expected(b) > s->received ? expected(b) - s->received : 0;
    uint64_t done = b->o.mode == M_PUB ? s->acked : s->received;
    s->rate = s->elapsed > 0 ? (double)done / s->elapsed : 0;
    s->mbps = s->rate * b->o.size / 1e6;
    s->p50 = bstat_lat_percentile(&b->lat, 0.50);
    s->p99 = bstat_lat_percentile(&b->lat, 0.99);
    s->max = b->lat.max;
}

static const char *version_name(int v)
{
    return v == MQLITE_V31 ? "3.1" : v == MQLITE_V5 ? "5.0" : "3.1.1";
}

static void print_json(const bench *b, const summary *s, int ok)
{
    const bopts *o = &b->o;
    printf("{\"mode\":\"%s\",\"ok\":%s,\"host\":\"%s\",\"port\":%d,\"protocol\":\"%s\","
           "\"qos\":%d,\"size\":%d,\"clients\":%d,\"publishers\":%d,\"subscribers\":%d,"
           "\"count\":%ld,\"duration_s\":%.3f,\"elapsed_s\":%.3f,",
           mode_names[o->mode], ok ? "true" : "false", o->host, o->port, version_name(o->version),
           o->qos, o->size, o->clients, b->npub, o->mode == M_CONNS ? 0 : b->nsub, o->count,
           o->duration, s->elapsed);
    if (o->mode == M_CONNS) {
        printf("\"connections\":%d,\"connect_s\":%.3f,\"connects_per_s\":%.1f}\n", b->n,
               b->connect_s, b->connect_s > 0 ? b->n / b->connect_s : 0);
        return;
    }
    printf("\"sent\":%llu,\"acked\":%llu,\"received\":%llu,\"lost\":%llu,\"duplicated\":%llu,"
           "\"out_of_order\":%llu,\"foreign\":%llu,\"errors\":%llu,\"msgs_per_s\":%.1f,\"mb_per_"
           "s\":%.3f,"
           "\"latency_us\":{\"p50\":%u,\"p99\":%u,\"max\":%u,\"samples\":%llu}}\n",
           (unsigned long long)s->sent, (unsigned long long)s->acked,
           (unsigned long long)s->received, (unsigned long long)s->lost, (unsigned long long)s->dup,
           (unsigned long long)s->ooo, (unsigned long long)b->foreign,
           (unsigned long long)b->errors, s->rate, s->mbps, s->p50, s->p99, s->max,
           (unsigned long long)b->lat.count);
}

static void print_text(const bench *b, const summary *s)
{
    const bopts *o = &b->o;
    printf("mqlite bench %s: %s:%d, MQTT %s, QoS %d, %d B payload, %d publisher(s), "
           "%d subscriber(s), %.2f s\n",
           mode_names[o->mode], o->host, o->port, version_name(o->version), o->qos, o->size,
           b->npub, o->mode == M_CONNS ? 0 : b->nsub, s->elapsed);
    if (o->mode == M_CONNS) {
        printf("  connections %d, connected in %.3f s (%.1f connects/s), held %.1f s\n", b->n,
               b->connect_s, b->connect_s > 0 ? b->n / b->connect_s : 0, o->duration);
        return;
    }
    if (b->npub)
        printf("  sent        %llu msgs, acknowledged %llu\n", (unsigned long long)s->sent,
               (unsigned long long)s->acked);
    if (b->nsub)
        printf("  received    %llu msgs (%llu without a bench header)\n",
               (unsigned long long)s->received, (unsigned long long)b->foreign);
    printf("  lost        %llu, duplicated %llu, out of order %llu\n", (unsigned long long)s->lost,
           (unsigned long long)s->dup, (unsigned long long)s->ooo);
    printf("  throughput  %.0f msgs/s, %.2f MB/s\n", s->rate, s->mbps);
    if (b->lat.count)
        printf("  latency     p50 %u us, p99 %u us, max %u us\n", s->p50, s->p99, s->max);
    else
        printf("  latency     none measured (measured where messages arrive: pairs, fanin,\n"
               "              fanout, or a `mqlite bench sub` for this pub)\n");
}

static void raise_nofile(int need)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < (rlim_t)need + 64) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

int cmd_bench(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    int rc = parse_args(argc, argv, &b.o);
    if (rc)
        return rc == 1 ? 0 : 2;
    raise_nofile(b.o.clients * 2);
    b.run = (uint32_t)getpid() ^ (uint32_t)(bstat_now_us() << 12);
    double t_setup = now_s();
    int failed =
        setup_clients(&b) < 0 || wait_ready(&b, b.o.mode != M_CONNS, t_setup + SETUP_S) < 0;
    if (!failed) {
        b.t0 = now_s();
        b.connect_s = b.t0 - t_setup;
        /* scripts (and tests) start their publishers once this is out */
        if (b.nsub && b.o.mode != M_CONNS)
            fprintf(stderr, "mqlite bench: %d subscriber(s) ready\n", b.nsub);
        else if (b.o.mode == M_CONNS)
            fprintf(stderr, "mqlite bench: %d connections open\n", b.n);
        failed = (b.o.mode == M_CONNS ? run_conns(&b) : run_load(&b)) < 0;
    }
    if (!failed || b.t0 > 0) {
        summary s;
        summarise(&b, &s);
        if (b.o.json)
            print_json(&b, &s, !failed);
        else
            print_text(&b, &s);
        fflush(stdout);
    }
    free_clients(&b);
    return failed ? 1 : 0;
}
