/*
 * bench_broker.c - one load generator, built on libmosquitto, run against
 * several MQTT brokers in turn (mqlite's and mosquitto, started by
 * bench/broker_vs_mosquitto.sh), scenario by scenario:
 *
 *   fanin   20 publishers -> 1 subscriber (one topic)
 *   fanout  1 publisher  -> 20 subscribers (one topic)
 *   pairs   10 publishers -> 10 subscribers (a topic per pair)
 *
 * at QoS 0, 1 and 2 with 64 B and 1 KiB payloads, printing deliveries per
 * second, p50/p99 latency and lost / duplicated / out-of-order counts per
 * line, and the ratio of the first broker to the second. With --idle N it
 * also measures the resident memory each broker process needs per idle
 * connection (VmRSS before and after N connections).
 *
 * Load is closed-loop: a publisher may be at most --window messages ahead
 * of the slowest subscriber that receives it, so queues stay bounded and
 * latency means something. Every payload carries publisher, sequence
 * number and send time (tools/benchstat.h, shared with `mqlite bench`). Subscribers are spread over two
 * threads and publishers over two more, so that the generator can use the
 * CPU a lean broker leaves; every client
 * sets TCP_NODELAY. Every loop is bounded in count and time. Each line
 * also gives the broker's CPU time per delivered message (from
 * /proc/PID/schedstat): what the broker costs, whoever saturates first.
 *
 * Two client engines, the same load:
 *   --client mosq  (default) libmosquitto does everything: publish, QoS
 *                  flows, reading. It reads each packet with about three
 *                  read(2) calls, so on a small machine it saturates before
 *                  a fast broker does.
 *   --client raw   libmosquitto connects and subscribes, then the sockets
 *                  are driven directly: PUBLISHes written in batches, acks
 *                  and messages read in bulk (QoS 1/2 flows done here, at
 *                  most 20 in flight per publisher, as libmosquitto). This
 *                  measures the brokers rather than the client library.
 *
 * usage: bench_broker --broker NAME=PORT[:PID] [--broker ...] [--seconds S]
 *                     [--window W] [--idle N] [--only SUBSTRING]
 *                     [--client mosq|raw]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchstat.h"

#define MAX_BROKERS 4
#define MAX_CLIENTS 64
#define MAX_SEQ (1u << 23)   /* per publisher per run */
#define DRAIN_NS 5000000000ull
#define SUB_THREADS 2        /* subscribers, and publishers, are each spread over this many threads */

enum { FANIN, FANOUT, PAIRS };
static const char *const mode_names[] = {"fanin", "fanout", "pairs"};

typedef struct target {
    char name[32];
    int port;
    int pid;
} target;

typedef struct result {
    double rate;           /* deliveries per second */
    double cpu_us;         /* broker CPU time per delivery */
    double p50_us, p99_us;
    uint64_t delivered, expected, lost, dup, ooo;
    int failed;
} result;

struct run;

/* A socket driven directly (--client raw). */
typedef struct rawio {
    int fd;
    uint8_t *in, *out;
    size_t inlen, incap, outlen, outcap;
    uint32_t inflight;
    uint16_t next_pid;
} rawio;

typedef struct client {
    struct mosquitto *m;
    struct run *r;
    int idx;
    int is_pub;
    atomic_int connected;
    atomic_int subscribed;
    uint64_t events; /* callbacks seen: progress marker for read loops */
    int thread;      /* subscriber thread that owns it */
    rawio io;
} client;

/* What subscriber s saw of publisher p. Owned by the subscriber thread. */
typedef bstat_stream pairstat;

typedef struct run {
    int mode, qos, size, npub, nsub, raw;
    char topic[MAX_CLIENTS][64];
    client pubs[MAX_CLIENTS], subs[MAX_CLIENTS];
    uint32_t sent[MAX_CLIENTS];                   /* publisher thread */
    atomic_uint_least32_t got[MAX_CLIENTS][MAX_CLIENTS]; /* [sub][pub] distinct */
    pairstat ps[MAX_CLIENTS][MAX_CLIENTS];
    bstat_lat lat[SUB_THREADS];                   /* µs, one per subscriber thread */
    uint64_t t_last_k[SUB_THREADS];
    atomic_int stop_pub, stop_sub;
    uint64_t t0;
    uint32_t window;
} run;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Does subscriber s receive publisher p? */
static int routes(const run *r, int s, int p)
{
    return r->mode == FANIN ? s == 0 : r->mode == FANOUT ? p == 0 : s == p;
}

/* ---- callbacks ---- */

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    client *c = ud;
    c->events++;
    if (rc == 0)
        atomic_store(&c->connected, 1);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
    (void)m, (void)mid, (void)n, (void)q;
    client *c = ud;
    c->events++;
    atomic_store(&c->subscribed, 1);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m, (void)mid;
    ((client *)ud)->events++;
}

static void record(client *c, const bstat_hdr *h)
{
    run *r = c->r;
    int k = c->thread;
    if (h->pub >= (uint32_t)r->npub || h->seq >= MAX_SEQ || !routes(r, c->idx, (int)h->pub))
        return;
    if (bstat_stream_add(&r->ps[c->idx][h->pub], h->seq) != 0)
        return; /* a duplicate (counted), or no memory */
    atomic_fetch_add_explicit(&r->got[c->idx][h->pub], 1, memory_order_relaxed);
    uint64_t us = bstat_now_us();
    bstat_lat_add(&r->lat[k], us > h->sent_us ? us - h->sent_us : 0);
    r->t_last_k[k] = now_ns();
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    client *c = ud;
    c->events++;
    bstat_hdr h;
    if (msg->payloadlen >= 0 && bstat_decode(msg->payload, (size_t)msg->payloadlen, &h) == 0)
        record(c, &h);
}

/* ---- client plumbing ---- */

/* --persistent: clean session 0, so that a broker with persistence writes
 * each client's session (subscriptions, queued and in-flight messages). */
static int g_persistent;

static int client_open(client *c, run *r, const target *t, int idx, int is_pub, int tag)
{
    char id[64];
    snprintf(id, sizeof id, "bench-%d-%s-%d-%d", (int)getpid(), is_pub ? "p" : "s", idx, tag);
    memset(c, 0, sizeof *c);
    c->r = r;
    c->idx = idx;
    c->is_pub = is_pub;
    c->m = mosquitto_new(id, !g_persistent, c);
    if (!c->m)
        return -1;
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_subscribe_callback_set(c->m, on_subscribe);
    mosquitto_publish_callback_set(c->m, on_publish);
    mosquitto_message_callback_set(c->m, on_message);
    return mosquitto_connect(c->m, "127.0.0.1", t->port, 600) == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* Service one client after poll: read while packets keep coming (a call
 * reads at most one packet), write what is pending. */
static int service(client *c, short revents)
{
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        for (int i = 0; i < 256; i++) {
            uint64_t before = c->events;
            if (mosquitto_loop_read(c->m, 1) != MOSQ_ERR_SUCCESS)
                return -1;
            if (c->events == before && i > 0)
                break;
        }
    }
    if (mosquitto_want_write(c->m) && mosquitto_loop_write(c->m, 1) != MOSQ_ERR_SUCCESS)
        return -1;
    return 0;
}

/* Poll a set of clients once. */
static int poll_clients(client **cs, int n, int timeout_ms)
{
    struct pollfd pfd[MAX_CLIENTS];
    for (int i = 0; i < n; i++) {
        pfd[i].fd = mosquitto_socket(cs[i]->m);
        pfd[i].events = (short)(POLLIN | (mosquitto_want_write(cs[i]->m) ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    int k = poll(pfd, (nfds_t)n, timeout_ms);
    for (int i = 0; k > 0 && i < n; i++)
        if (pfd[i].revents && service(cs[i], pfd[i].revents))
            return -1;
    return 0;
}

/* Pump clients until pred holds for all of them or the deadline passes. */
static int pump_until(client **cs, int n, atomic_int *(*field)(client *), uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++)
            all &= atomic_load(field(cs[i])) != 0;
        if (all)
            return 0;
        if (now_ns() > end || poll_clients(cs, n, 10))
            return -1;
    }
}

static atomic_int *f_connected(client *c)
{
    return &c->connected;
}
static atomic_int *f_subscribed(client *c)
{
    return &c->subscribed;
}

/* ---- the two worker threads ---- */

/* Lowest count of messages from p that any of its subscribers got. */
static uint32_t slowest(run *r, int p)
{
    uint32_t min = UINT32_MAX;
    for (int s = 0; s < r->nsub; s++)
        if (routes(r, s, p)) {
            uint32_t g = atomic_load_explicit(&r->got[s][p], memory_order_relaxed);
            min = g < min ? g : min;
        }
    return min;
}

static int publish_some(run *r, client **cs, int n, uint8_t *buf)
{
    int any = 0;
    for (int i = 0; i < n; i++) {
        client *c = cs[i];
        int p = c->idx;
        uint32_t low = slowest(r, p);
        for (int k = 0; k < 16 && r->sent[p] < MAX_SEQ && r->sent[p] - low < r->window; k++) {
            bstat_hdr h = {(uint32_t)getpid(), (uint32_t)p, r->sent[p], bstat_now_us()};
            bstat_encode(buf, (size_t)r->size, &h);
            if (mosquitto_publish(c->m, NULL, r->topic[p], r->size, buf, r->qos, false))
                return -1;
            r->sent[p]++;
            any = 1;
        }
    }
    return any;
}

typedef struct subarg {
    run *r;
    int k;
} subarg;

/* The subscribers thread k owns. */
static int own_subs(run *r, int k, client **cs)
{
    int n = 0;
    for (int i = 0; i < r->nsub; i++)
        if (r->subs[i].thread == k)
            cs[n++] = &r->subs[i];
    return n;
}

/* The publishers thread k owns. */
static int own_pubs(run *r, int k, client **cs)
{
    int n = 0;
    for (int i = 0; i < r->npub; i++)
        if (r->pubs[i].thread == k)
            cs[n++] = &r->pubs[i];
    return n;
}

static void *pub_thread(void *arg)
{
    run *r = ((subarg *)arg)->r;
    uint8_t *buf = calloc(1, (size_t)r->size);
    client *cs[MAX_CLIENTS];
    int n = own_pubs(r, ((subarg *)arg)->k, cs);
    while (n && buf && !atomic_load(&r->stop_sub)) {
        int any = atomic_load(&r->stop_pub) ? 0 : publish_some(r, cs, n, buf);
        if (any < 0 || poll_clients(cs, n, any ? 0 : 1))
            break;
    }
    free(buf);
    return NULL;
}

static void *sub_thread(void *arg)
{
    run *r = ((subarg *)arg)->r;
    client *cs[MAX_CLIENTS];
    int n = own_subs(r, ((subarg *)arg)->k, cs);
    while (n && !atomic_load(&r->stop_sub))
        if (poll_clients(cs, n, 5))
            break;
    return NULL;
}

/* ---- the raw engine ---- */

#define RAW_INFLIGHT 20 /* QoS 1/2 in flight per publisher, as libmosquitto */

static uint8_t *raw_room(uint8_t **buf, size_t *len, size_t *cap, size_t n)
{
    if (*cap - *len < n) {
        size_t c = *cap ? *cap : 65536;
        while (c - *len < n)
            c *= 2;
        uint8_t *p = realloc(*buf, c);
        if (!p)
            return NULL;
        *buf = p;
        *cap = c;
    }
    return *buf + *len;
}

static int raw_ack(rawio *io, uint8_t b1, uint16_t pid)
{
    uint8_t *w = raw_room(&io->out, &io->outlen, &io->outcap, 4);
    if (!w)
        return -1;
    w[0] = b1;
    w[1] = 2;
    w[2] = (uint8_t)(pid >> 8);
    w[3] = (uint8_t)pid;
    io->outlen += 4;
    return 0;
}

static int raw_flush(rawio *io)
{
    size_t off = 0;
    while (off < io->outlen) {
        ssize_t k = send(io->fd, io->out + off, io->outlen - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        return -1;
    }
    memmove(io->out, io->out + off, io->outlen - off);
    io->outlen -= off;
    return 0;
}

/* One whole packet at p (n bytes, body at p + hl). */
static int raw_packet(client *c, const uint8_t *p, size_t hl, size_t n)
{
    rawio *io = &c->io;
    uint8_t type = p[0] >> 4, qos = (p[0] >> 1) & 3;
    uint16_t pid = n >= hl + 2 ? (uint16_t)(p[hl] << 8 | p[hl + 1]) : 0;
    switch (type) {
    case 3: { /* PUBLISH to a subscriber */
        size_t tl = (size_t)(p[hl] << 8 | p[hl + 1]), off = hl + 2 + tl;
        if (qos)
            pid = (uint16_t)(p[off] << 8 | p[off + 1]), off += 2;
        bstat_hdr h;
        if (bstat_decode(p + off, n - off, &h) == 0)
            record(c, &h);
        return qos == 1 ? raw_ack(io, 0x40, pid) : qos == 2 ? raw_ack(io, 0x50, pid) : 0;
    }
    case 4: /* PUBACK */
    case 7: /* PUBCOMP */
        io->inflight -= io->inflight > 0;
        return 0;
    case 5: /* PUBREC -> PUBREL */
        return raw_ack(io, 0x62, pid);
    case 6: /* PUBREL -> PUBCOMP */
        return raw_ack(io, 0x70, pid);
    default:
        return 0;
    }
}

static int raw_read(client *c)
{
    rawio *io = &c->io;
    for (int round = 0; round < 8; round++) {
        if (!raw_room(&io->in, &io->inlen, &io->incap, 65536))
            return -1;
        ssize_t k = recv(io->fd, io->in + io->inlen, io->incap - io->inlen, 0);
        if (k == 0)
            return -1;
        if (k < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        io->inlen += (size_t)k;
        size_t off = 0;
        while (io->inlen - off >= 2) {
            const uint8_t *p = io->in + off;
            size_t rem = 0, hl = 1;
            for (int sh = 0; hl < 5 && hl < io->inlen - off; sh += 7) {
                rem |= (size_t)(p[hl] & 0x7f) << sh;
                if (!(p[hl++] & 0x80))
                    break;
            }
            if (hl + rem > io->inlen - off || (p[hl - 1] & 0x80))
                break;
            if (raw_packet(c, p, hl, hl + rem))
                return -1;
            off += hl + rem;
        }
        memmove(io->in, io->in + off, io->inlen - off);
        io->inlen -= off;
        if ((size_t)k < 65536)
            break;
    }
    return 0;
}

/* Append up to `count` PUBLISHes of publisher p to its output. */
static int raw_publish(run *r, int p, uint32_t count)
{
    client *c = &r->pubs[p];
    size_t tl = strlen(r->topic[p]);
    size_t rem = 2 + tl + (r->qos ? 2 : 0) + (size_t)r->size;
    size_t vbi = rem < 128 ? 1 : rem < 16384 ? 2 : 3;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *w = raw_room(&c->io.out, &c->io.outlen, &c->io.outcap, 1 + vbi + rem);
        if (!w)
            return -1;
        uint8_t *start = w;
        *w++ = (uint8_t)(0x30 | r->qos << 1);
        size_t x = rem;
        do {
            *w++ = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            x >>= 7;
        } while (x);
        *w++ = (uint8_t)(tl >> 8);
        *w++ = (uint8_t)tl;
        memcpy(w, r->topic[p], tl);
        w += tl;
        if (r->qos) {
            c->io.next_pid = (uint16_t)(c->io.next_pid == 65535 ? 1 : c->io.next_pid + 1);
            *w++ = (uint8_t)(c->io.next_pid >> 8);
            *w++ = (uint8_t)c->io.next_pid;
            c->io.inflight++;
        }
        bstat_hdr h = {(uint32_t)getpid(), (uint32_t)p, r->sent[p], bstat_now_us()};
        bstat_encode(w, (size_t)r->size, &h);
        w += r->size;
        c->io.outlen += (size_t)(w - start);
        r->sent[p]++;
    }
    return 0;
}

static int raw_publish_some(run *r, client **cs, int count)
{
    int any = 0;
    for (int i = 0; i < count; i++) {
        int p = cs[i]->idx;
        uint32_t ahead = r->sent[p] - slowest(r, p);
        uint32_t n = ahead < r->window ? r->window - ahead : 0;
        if (r->qos) {
            uint32_t fl = r->pubs[p].io.inflight;
            uint32_t room = fl < RAW_INFLIGHT ? RAW_INFLIGHT - fl : 0;
            n = n < room ? n : room;
        }
        if (n > 64)
            n = 64;
        if (r->sent[p] + n > MAX_SEQ)
            n = MAX_SEQ - r->sent[p];
        if (n && (raw_publish(r, p, n) || raw_flush(&r->pubs[p].io)))
            return -1;
        any |= n > 0;
    }
    return any;
}

static int raw_poll(client **cs, int n, int timeout_ms)
{
    struct pollfd pfd[MAX_CLIENTS];
    for (int i = 0; i < n; i++) {
        pfd[i].fd = cs[i]->io.fd;
        pfd[i].events = (short)(POLLIN | (cs[i]->io.outlen ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    int k = poll(pfd, (nfds_t)n, timeout_ms);
    for (int i = 0; k > 0 && i < n; i++) {
        if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && raw_read(cs[i]))
            return -1;
        if (cs[i]->io.outlen && raw_flush(&cs[i]->io))
            return -1;
    }
    return 0;
}

static void *raw_pub_thread(void *arg)
{
    run *r = ((subarg *)arg)->r;
    client *cs[MAX_CLIENTS];
    int n = own_pubs(r, ((subarg *)arg)->k, cs);
    while (n && !atomic_load(&r->stop_sub)) {
        int any = atomic_load(&r->stop_pub) ? 0 : raw_publish_some(r, cs, n);
        if (any < 0 || raw_poll(cs, n, any ? 0 : 1))
            break;
    }
    return NULL;
}

static void *raw_sub_thread(void *arg)
{
    run *r = ((subarg *)arg)->r;
    client *cs[MAX_CLIENTS];
    int n = own_subs(r, ((subarg *)arg)->k, cs);
    while (n && !atomic_load(&r->stop_sub))
        if (raw_poll(cs, n, 5))
            break;
    return NULL;
}

static void raw_attach(run *r)
{
    for (int i = 0; i < r->npub; i++)
        r->pubs[i].io.fd = mosquitto_socket(r->pubs[i].m);
    for (int i = 0; i < r->nsub; i++)
        r->subs[i].io.fd = mosquitto_socket(r->subs[i].m);
}

static void raw_free(client *c)
{
    free(c->io.in);
    free(c->io.out);
}

/* Broker CPU time so far (ns), from /proc/PID/schedstat; 0 if unknown. */
static uint64_t cpu_ns(int pid)
{
    char path[64];
    unsigned long long ns = 0;
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = pid ? fopen(path, "r") : NULL;
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
    }
    return ns;
}

/* ---- one run ---- */

static void run_setup(run *r, int mode, int qos, int size, uint32_t window)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->qos = qos;
    r->size = size;
    r->window = window;
    r->npub = mode == FANIN ? 20 : mode == FANOUT ? 1 : 10;
    r->nsub = mode == FANIN ? 1 : mode == FANOUT ? 20 : 10;
    for (int p = 0; p < r->npub; p++)
        snprintf(r->topic[p], sizeof r->topic[p], "bench/%d/%s/%d", (int)getpid(),
                 mode_names[mode], mode == PAIRS ? p : 0);
    for (int k = 0; k < SUB_THREADS; k++)
        r->lat[k].limit = 10u * 1000u * 1000u;
}

static void run_free(run *r)
{
    for (int i = 0; i < r->npub; i++)
        raw_free(&r->pubs[i]);
    for (int i = 0; i < r->nsub; i++)
        raw_free(&r->subs[i]);
    for (int i = 0; i < r->npub; i++)
        if (r->pubs[i].m) {
            mosquitto_disconnect(r->pubs[i].m);
            mosquitto_destroy(r->pubs[i].m);
        }
    for (int i = 0; i < r->nsub; i++)
        if (r->subs[i].m) {
            mosquitto_disconnect(r->subs[i].m);
            mosquitto_destroy(r->subs[i].m);
        }
    for (int s = 0; s < r->nsub; s++)
        for (int p = 0; p < r->npub; p++)
            bstat_stream_free(&r->ps[s][p]);
    for (int k = 0; k < SUB_THREADS; k++)
        bstat_lat_free(&r->lat[k]);
}

static int run_connect(run *r, const target *t, int tag)
{
    client *cs[2 * MAX_CLIENTS];
    int n = 0;
    for (int i = 0; i < r->nsub; i++, n++)
        if (client_open(&r->subs[i], r, t, i, 0, tag))
            return -1;
        else
            cs[n] = &r->subs[i];
    for (int i = 0; i < r->npub; i++, n++)
        if (client_open(&r->pubs[i], r, t, i, 1, tag))
            return -1;
        else
            cs[n] = &r->pubs[i];
    if (pump_until(cs, n, f_connected, 10000000000ull))
        return -1;
    for (int s = 0; s < r->nsub; s++) {
        int p = r->mode == PAIRS ? s : 0;
        if (mosquitto_subscribe(r->subs[s].m, NULL, r->topic[p], r->qos))
            return -1;
    }
    return pump_until(cs, r->nsub, f_subscribed, 10000000000ull);
}

static void run_stats(run *r, result *res)
{
    for (int s = 0; s < r->nsub; s++)
        for (int p = 0; p < r->npub; p++) {
            if (!routes(r, s, p))
                continue;
            uint64_t got = atomic_load(&r->got[s][p]);
            res->expected += r->sent[p];
            res->delivered += got;
            res->lost += r->sent[p] > got ? r->sent[p] - got : 0;
            res->dup += r->ps[s][p].dup;
            res->ooo += r->ps[s][p].ooo;
        }
    uint64_t t_last = r->t0;
    for (int k = 0; k < SUB_THREADS; k++) {
        t_last = r->t_last_k[k] > t_last ? r->t_last_k[k] : t_last;
        for (size_t i = 0; k > 0 && i < r->lat[k].n; i++) /* all samples into lat[0] */
            bstat_lat_add(&r->lat[0], r->lat[k].v[i]);
    }
    double secs = (double)(t_last - r->t0) / 1e9;
    res->rate = secs > 0 ? (double)res->delivered / secs : 0;
    res->p50_us = bstat_lat_percentile(&r->lat[0], 0.50);
    res->p99_us = bstat_lat_percentile(&r->lat[0], 0.99);
}

/* Wait until every message sent was delivered, or the drain deadline. */
static void drain(run *r)
{
    uint64_t end = now_ns() + DRAIN_NS;
    while (now_ns() < end) {
        uint64_t want = 0, have = 0;
        for (int s = 0; s < r->nsub; s++)
            for (int p = 0; p < r->npub; p++)
                if (routes(r, s, p)) {
                    want += r->sent[p];
                    have += atomic_load(&r->got[s][p]);
                }
        if (have >= want)
            return;
        usleep(2000);
    }
}

static void one_run(const target *t, int mode, int qos, int size, double seconds, uint32_t window,
                    int tag, int raw, result *res)
{
    static run r; /* large: keep it off the stack */
    memset(res, 0, sizeof *res);
    run_setup(&r, mode, qos, size, window);
    r.raw = raw;
    if (run_connect(&r, t, tag)) {
        fprintf(stderr, "bench: %s: cannot connect/subscribe\n", t->name);
        res->failed = 1;
        run_free(&r);
        return;
    }
    pthread_t tp[SUB_THREADS], ts[SUB_THREADS];
    subarg sa[SUB_THREADS];
    if (raw)
        raw_attach(&r);
    for (int i = 0; i < r.nsub; i++)
        r.subs[i].thread = i % SUB_THREADS;
    for (int i = 0; i < r.npub; i++)
        r.pubs[i].thread = i % SUB_THREADS;
    uint64_t cpu0 = cpu_ns(t->pid);
    r.t0 = now_ns();
    for (int k = 0; k < SUB_THREADS; k++) {
        sa[k].r = &r;
        sa[k].k = k;
        pthread_create(&ts[k], NULL, raw ? raw_sub_thread : sub_thread, &sa[k]);
    }
    for (int k = 0; k < SUB_THREADS; k++)
        pthread_create(&tp[k], NULL, raw ? raw_pub_thread : pub_thread, &sa[k]);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&r.stop_pub, 1);
    drain(&r);
    atomic_store(&r.stop_sub, 1);
    for (int k = 0; k < SUB_THREADS; k++) {
        pthread_join(tp[k], NULL);
        pthread_join(ts[k], NULL);
    }
    uint64_t cpu1 = cpu_ns(t->pid);
    run_stats(&r, res);
    if (cpu0 && res->delivered)
        res->cpu_us = (double)(cpu1 - cpu0) / 1e3 / (double)res->delivered;
    run_free(&r);
}

/* ---- idle connections ---- */

static long vm_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Child: open n idle libmosquitto connections, say how many are up on
 * `ready`, keep them until `go` closes. */
static void idle_child(const target *t, int base, int n, int ready, int go)
{
    struct mosquitto **ms = calloc((size_t)n, sizeof *ms);
    int ok = 0;
    for (int i = 0; i < n && ms; i++) {
        char id[64];
        snprintf(id, sizeof id, "idle-%d-%d", (int)getpid(), base + i);
        ms[i] = mosquitto_new(id, true, NULL);
        if (!ms[i] || mosquitto_connect(ms[i], "127.0.0.1", t->port, 600)) {
            fprintf(stderr, "bench: %s: idle connection %d: %s\n", t->name, base + i,
                    strerror(errno));
            break;
        }
        ok++;
        if (i % 256 == 255)
            for (int k = i - 255; k <= i; k++)
                mosquitto_loop_read(ms[k], 1); /* take the CONNACKs */
    }
    for (int i = 0; i < ok; i++)
        mosquitto_loop_read(ms[i], 1);
    if (write(ready, &ok, sizeof ok) != (ssize_t)sizeof ok)
        ok = 0;
    char b;
    while (read(go, &b, 1) > 0)
        ;
    for (int i = 0; i < ok; i++) {
        mosquitto_disconnect(ms[i]);
        mosquitto_destroy(ms[i]);
    }
    _exit(0);
}

/* RSS per idle connection in bytes, or -1. libmosquitto takes three
 * descriptors per client and this machine caps a process at 20,000, so the
 * connections are held by child processes of IDLE_PER_CHILD each. */
#define IDLE_PER_CHILD 5000
static double idle_memory(const target *t, int n)
{
    int nchild = (n + IDLE_PER_CHILD - 1) / IDLE_PER_CHILD, ready[2], go[2], up = 0;
    pid_t kids[64];
    if (nchild > 64 || pipe(ready) || pipe(go))
        return -1;
    long before = vm_rss_kb(t->pid);
    fflush(stdout);
    for (int c = 0; c < nchild; c++) {
        int share = c + 1 < nchild ? IDLE_PER_CHILD : n - c * IDLE_PER_CHILD;
        kids[c] = fork();
        if (kids[c] == 0) {
            close(ready[0]);
            close(go[1]);
            idle_child(t, c * IDLE_PER_CHILD, share, ready[1], go[0]);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int c = 0; c < nchild; c++) {
        struct pollfd pfd = {ready[0], POLLIN, 0};
        int got = 0;
        if (poll(&pfd, 1, 120000) != 1 || read(ready[0], &got, sizeof got) != sizeof got)
            break;
        up += got;
    }
    usleep(1500000);
    long after = vm_rss_kb(t->pid);
    close(go[1]);
    close(ready[0]);
    for (int c = 0; c < nchild; c++)
        waitpid(kids[c], NULL, 0);
    usleep(500000);
    if (up != n || before < 0 || after < 0) {
        fprintf(stderr, "bench: %s: %d of %d idle connections\n", t->name, up, n);
        return -1;
    }
    return (double)(after - before) * 1024.0 / n;
}

/* ---- main ---- */

static void print_result(const char *scen, const target *t, const result *r)
{
    printf("%s.%s.rate=%.0f msg/s\n", scen, t->name, r->rate);
    printf("%s.%s.p50=%.0f us\n", scen, t->name, r->p50_us);
    printf("%s.%s.p99=%.0f us\n", scen, t->name, r->p99_us);
    printf("%s.%s.delivered=%" PRIu64 " msgs\n", scen, t->name, r->delivered);
    printf("%s.%s.lost=%" PRIu64 " msgs\n", scen, t->name, r->lost);
    printf("%s.%s.dup=%" PRIu64 " msgs\n", scen, t->name, r->dup);
    printf("%s.%s.ooo=%" PRIu64 " msgs\n", scen, t->name, r->ooo);
    printf("%s.%s.broker_cpu=%.2f us/msg\n", scen, t->name, r->cpu_us);
    fflush(stdout);
}

static int parse_target(const char *s, target *t)
{
    memset(t, 0, sizeof *t);
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof t->name)
        return -1;
    memcpy(t->name, s, (size_t)(eq - s));
    return sscanf(eq + 1, "%d:%d", &t->port, &t->pid) >= 1 ? 0 : -1;
}

/* libmosquitto takes three descriptors per client (socket + socketpair):
 * 10,000 idle clients need ~30,000. Raising the hard limit needs root. */
static void raise_nofile(void)
{
    struct rlimit rl = {65536, 65536};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void scenarios(target *ts, int nt, double seconds, uint32_t window, const char *only,
                      int raw)
{
    static const int sizes[] = {64, 1024};
    int tag = 0;
    for (int mode = FANIN; mode <= PAIRS; mode++)
        for (int qos = 0; qos <= 2; qos++)
            for (int si = 0; si < 2; si++) {
                char scen[64];
                snprintf(scen, sizeof scen, "%s%s.qos%d.%dB", raw ? "raw." : "", mode_names[mode],
                         qos, sizes[si]);
                if (only && !strstr(scen, only))
                    continue;
                result res[MAX_BROKERS];
                for (int i = 0; i < nt; i++) {
                    /* Alternate who goes first, against drift. */
                    int k = (tag % 2) ? nt - 1 - i : i;
                    one_run(&ts[k], mode, qos, sizes[si], seconds, window, tag, raw, &res[k]);
                }
                tag++;
                for (int i = 0; i < nt; i++)
                    print_result(scen, &ts[i], &res[i]);
                if (nt >= 2 && res[1].rate > 0 && res[1].p99_us > 0)
                    printf("%s.ratio.rate=%.2f x\n%s.ratio.p99=%.2f x\n", scen,
                           res[0].rate / res[1].rate, scen, res[0].p99_us / res[1].p99_us);
                if (nt >= 2 && res[1].cpu_us > 0)
                    printf("%s.ratio.broker_cpu=%.2f x\n", scen, res[0].cpu_us / res[1].cpu_us);
                fflush(stdout);
            }
}

int main(int argc, char **argv)
{
    target ts[MAX_BROKERS];
    int nt = 0, idle = 0;
    double seconds = 2.0;
    uint32_t window = 100;
    const char *only = NULL;
    int raw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc && nt < MAX_BROKERS) {
            if (parse_target(argv[++i], &ts[nt++]))
                return fprintf(stderr, "bench: bad --broker %s\n", argv[i]), 2;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
            window = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--idle") && i + 1 < argc) {
            idle = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--persistent")) {
            g_persistent = 1;
        } else if (!strcmp(argv[i], "--client") && i + 1 < argc) {
            raw = !strcmp(argv[++i], "raw");
            if (!raw && strcmp(argv[i], "mosq"))
                return fprintf(stderr, "bench: --client mosq or raw\n"), 2;
        } else {
            fprintf(stderr, "usage: bench_broker --broker NAME=PORT[:PID]... [--seconds S] "
                            "[--window W] [--idle N] [--only SUBSTRING] [--client mosq|raw] "
                            "[--persistent]\n");
            return 2;
        }
    }
    if (!nt || seconds <= 0 || seconds > 60 || window < 1)
        return fprintf(stderr, "bench: need --broker; 0 < seconds <= 60; window >= 1\n"), 2;
    raise_nofile();
    mosquitto_lib_init();
    if (!only || strcmp(only, "memory") != 0)
        scenarios(ts, nt, seconds, window, only, raw);
    double mem[MAX_BROKERS] = {0};
    for (int i = 0; idle > 0 && i < nt; i++) {
        mem[i] = ts[i].pid ? idle_memory(&ts[i], idle) : -1;
        printf("memory.idle%d.%s.per_conn=%.0f bytes\n", idle, ts[i].name, mem[i]);
    }
    if (idle > 0 && nt >= 2 && mem[1] > 0)
        printf("memory.idle%d.ratio.per_conn=%.2f x\n", idle, mem[0] / mem[1]);
    mosquitto_lib_cleanup();
    return 0;
}
