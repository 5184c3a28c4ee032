/*
 * bench_tls.c - MQTT over TLS against several brokers in turn (mqlite's and
 * mosquitto, started with the same certificates by bench/tls_vs_mosquitto.sh):
 *
 *   handshakes  T threads, each in a loop: TCP connect, full TLS handshake
 *               (no session resumption), CONNECT, CONNACK, DISCONNECT, close.
 *               Connections per second.
 *   messages    one publisher -> one subscriber on one topic over TLS, QoS 0
 *               and QoS 1 (20 in flight), 64 B and 1 KiB payloads; closed
 *               loop (the publisher is at most --window messages ahead of
 *               the subscriber). Deliveries per second, with lost /
 *               duplicated / out-of-order counts.
 *   fanin       4 publishers -> 1 subscriber, QoS 0, 64 B.
 *
 * Each line gives the broker's CPU time per operation (from
 * /proc/PID/schedstat), and the ratio of the first broker to the second.
 * The load generator is OpenSSL over blocking sockets, one thread per client
 * (TCP_NODELAY everywhere): the same code for every broker. Every wait is
 * bounded.
 *
 * usage: bench_tls --cafile CA --broker NAME=PORT[:PID] [--broker ...]
 *                  [--seconds S] [--threads T] [--window W] [--only SUBSTRING]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_BROKERS 4
#define MAX_PUBS 8
#define HDR 16 /* publisher u32, sequence u32, send time u64 */
#define IO_TIMEOUT_S 5

typedef struct target {
    char name[32];
    int port;
    int pid;
} target;

static const char *g_cafile;
static double g_seconds = 3.0;
static int g_threads = 4;
static uint32_t g_window = 1000;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* ---- one TLS MQTT connection (blocking) ---- */

typedef struct conn {
    int fd;
    SSL *ssl;
    uint8_t buf[1 << 16];
    size_t len;
} conn;

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, g_cafile, NULL) != 1) {
        fprintf(stderr, "bench_tls: cannot load %s\n", g_cafile);
        exit(1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Full handshakes every time: no session cache, no tickets. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    return ctx;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int c_write(conn *c, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int k = SSL_write(c->ssl, (const uint8_t *)p + done, (int)(n - done));
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* Next whole packet: its first byte in *type, its body in *body (blen bytes). 0/-1. */
static int c_packet(conn *c, uint8_t *type, const uint8_t **body, size_t *blen, size_t *used)
{
    for (;;) {
        if (c->len >= 2) {
            size_t rl = 0, mul = 1, i = 1;
            for (; i < c->len && i <= 4; i++) {
                rl += (c->buf[i] & 127u) * mul;
                mul *= 128;
                if (!(c->buf[i] & 128))
                    break;
            }
            if (i < c->len && !(c->buf[i] & 128) && c->len >= i + 1 + rl) {
                *type = c->buf[0];
                *body = c->buf + i + 1;
                *blen = rl;
                *used = i + 1 + rl;
                return 0;
            }
        }
        if (c->len == sizeof c->buf)
            return -1;
        int k = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len));
        if (k <= 0)
            return -1;
        c->len += (size_t)k;
    }
}

static void c_consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static int c_expect(conn *c, uint8_t type)
{
    uint8_t t;
    const uint8_t *b;
    size_t bl, used;
    if (c_packet(c, &t, &b, &bl, &used))
        return -1;
    c_consume(c, used);
    return (t >> 4) == (type >> 4) ? 0 : -1;
}

static size_t put_rl(uint8_t *w, size_t v)
{
    size_t n = 0;
    do {
        uint8_t d = (uint8_t)(v % 128);
        v /= 128;
        w[n++] = (uint8_t)(d | (v ? 128 : 0));
    } while (v);
    return n;
}

/* TCP + TLS + CONNECT/CONNACK (3.1.1, clean session). 0 or -1. */
static int c_open(conn *c, SSL_CTX *ctx, int port, const char *id)
{
    memset(c, 0, sizeof *c);
    c->fd = tcp_connect(port);
    if (c->fd < 0)
        return -1;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    if (SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    uint8_t p[128];
    size_t idl = strlen(id);
    if (idl > 64)
        return -1;
    uint8_t body[100];
    size_t n = 0;
    memcpy(body, "\0\4MQTT\4\2\0\x3c", 10);
    n = 10;
    body[n++] = (uint8_t)(idl >> 8);
    body[n++] = (uint8_t)idl;
    memcpy(body + n, id, idl);
    n += idl;
    p[0] = 0x10;
    size_t h = 1 + put_rl(p + 1, n);
    memcpy(p + h, body, n);
    if (c_write(c, p, h + n) || c_expect(c, 0x20))
        return -1;
    return 0;
}

static void c_close(conn *c, int polite)
{
    if (polite && c->ssl) {
        static const uint8_t disc[2] = {0xe0, 0};
        c_write(c, disc, 2);
        SSL_shutdown(c->ssl);
    }
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static int c_subscribe(conn *c, const char *topic, int qos)
{
    uint8_t p[256];
    size_t tl = strlen(topic), n = 2 + 2 + tl + 1;
    p[0] = 0x82;
    size_t h = 1 + put_rl(p + 1, n);
    p[h] = 0;
    p[h + 1] = 1;
    p[h + 2] = (uint8_t)(tl >> 8);
    p[h + 3] = (uint8_t)tl;
    memcpy(p + h + 4, topic, tl);
    p[h + 4 + tl] = (uint8_t)qos;
    return c_write(c, p, h + n) || c_expect(c, 0x90);
}

/* ---- handshakes ---- */

typedef struct hs_arg {
    const target *t;
    SSL_CTX *ctx;
    uint64_t end;
    int idx;
    uint64_t done, failed;
} hs_arg;

static void *hs_thread(void *arg)
{
    hs_arg *a = arg;
    char id[32];
    while (now_ns() < a->end) {
        snprintf(id, sizeof id, "hs-%d-%" PRIu64, a->idx, a->done);
        conn *c = malloc(sizeof *c);
        if (c_open(c, a->ctx, a->t->port, id) == 0) {
            a->done++;
            c_close(c, 1);
        } else {
            a->failed++;
            c_close(c, 0);
        }
        free(c);
    }
    return NULL;
}

typedef struct result {
    double rate, cpu_us;
    uint64_t ops, failed, lost, dup, ooo;
} result;

static void run_handshakes(const target *t, SSL_CTX *ctx, result *r)
{
    hs_arg args[64];
    pthread_t th[64];
    int n = g_threads > 64 ? 64 : g_threads;
    uint64_t cpu0 = cpu_ns(t->pid), t0 = now_ns();
    for (int i = 0; i < n; i++) {
        args[i] = (hs_arg){t, ctx, t0 + (uint64_t)(g_seconds * 1e9), i, 0, 0};
        pthread_create(&th[i], NULL, hs_thread, &args[i]);
    }
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        r->ops += args[i].done;
        r->failed += args[i].failed;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    r->rate = (double)r->ops / secs;
    uint64_t cpu = cpu_ns(t->pid) - cpu0;
    r->cpu_us = r->ops && t->pid > 0 ? (double)cpu / 1e3 / (double)r->ops : 0;
}

/* ---- messages ---- */

typedef struct flow {
    const target *t;
    SSL_CTX *ctx;
    int qos, size, npubs;
    uint64_t end;
    atomic_uint_fast64_t sent[MAX_PUBS];
    atomic_uint_fast64_t received;
    uint64_t next_seq[MAX_PUBS];
    uint64_t lost, dup, ooo;
    atomic_int stop, ready;
    conn sub;
    int failed;
} flow;

typedef struct pub_arg {
    flow *f;
    int idx;
} pub_arg;

static void *sub_thread(void *arg)
{
    flow *f = arg;
    conn *c = &f->sub;
    for (;;) {
        uint8_t t;
        const uint8_t *b;
        size_t bl, used;
        if (c_packet(c, &t, &b, &bl, &used)) {
            if (!atomic_load(&f->stop))
                f->failed = 1;
            return NULL;
        }
        if ((t >> 4) == 3) {
            size_t tl = (size_t)b[0] << 8 | b[1], off = 2 + tl;
            int qos = (t >> 1) & 3;
            uint16_t pid = 0;
            if (qos) {
                pid = (uint16_t)(b[off] << 8 | b[off + 1]);
                off += 2;
            }
            uint32_t p, seq;
            memcpy(&p, b + off, 4);
            memcpy(&seq, b + off + 4, 4);
            if (p < MAX_PUBS) {
                if (seq == f->next_seq[p])
                    f->next_seq[p]++;
                else if (seq > f->next_seq[p]) {
                    f->lost += seq - f->next_seq[p];
                    f->ooo++;
                    f->next_seq[p] = seq + 1u;
                } else {
                    f->dup++;
                }
            }
            atomic_fetch_add(&f->received, 1);
            c_consume(c, used);
            if (qos == 1) {
                uint8_t ack[4] = {0x40, 2, (uint8_t)(pid >> 8), (uint8_t)pid};
                if (c_write(c, ack, 4))
                    return NULL;
            }
            continue;
        }
        c_consume(c, used);
    }
}

static uint64_t total_sent(flow *f)
{
    uint64_t s = 0;
    for (int i = 0; i < f->npubs; i++)
        s += atomic_load(&f->sent[i]);
    return s;
}

static void *pub_thread(void *arg)
{
    pub_arg *pa = arg;
    flow *f = pa->f;
    conn *c = malloc(sizeof *c);
    char id[32];
    snprintf(id, sizeof id, "pub-%d", pa->idx);
    if (c_open(c, f->ctx, f->t->port, id)) {
        f->failed = 1;
        c_close(c, 0);
        free(c);
        return NULL;
    }
    atomic_fetch_add(&f->ready, 1);
    static const char topic[] = "bench/tls";
    size_t tl = sizeof topic - 1;
    size_t body = 2 + tl + (f->qos ? 2 : 0) + (size_t)f->size;
    uint8_t *pkt = calloc(1, body + 8);
    uint8_t *batch = malloc((body + 8) * 32);
    uint32_t seq = 0, inflight = 0;
    uint16_t pid = 0;
    while (now_ns() < f->end && !f->failed) {
        /* Closed loop: at most `window` ahead of the subscriber. */
        if (total_sent(f) - atomic_load(&f->received) > g_window) {
            sched_yield();
            continue;
        }
        size_t bl = 0;
        int k = 0;
        for (; k < 32 && (!f->qos || inflight < 20); k++) {
            size_t h = 0;
            pkt[h++] = (uint8_t)(0x30 | (f->qos << 1));
            h += put_rl(pkt + h, body);
            pkt[h++] = (uint8_t)(tl >> 8);
            pkt[h++] = (uint8_t)tl;
            memcpy(pkt + h, topic, tl);
            h += tl;
            if (f->qos) {
                pid = (uint16_t)(pid % 65535 + 1);
                pkt[h++] = (uint8_t)(pid >> 8);
                pkt[h++] = (uint8_t)pid;
                inflight++;
            }
            uint32_t p = (uint32_t)pa->idx;
            uint64_t ts = now_ns();
            memcpy(pkt + h, &p, 4);
            memcpy(pkt + h + 4, &seq, 4);
            memcpy(pkt + h + 8, &ts, 8);
            memcpy(batch + bl, pkt, h + (size_t)f->size);
            bl += h + (size_t)f->size;
            seq++;
        }
        if (bl && c_write(c, batch, bl)) {
            f->failed = 1;
            break;
        }
        atomic_fetch_add(&f->sent[pa->idx], (uint64_t)k);
        while (f->qos && inflight >= 20) {
            uint8_t t;
            const uint8_t *b;
            size_t blen, used;
            if (c_packet(c, &t, &b, &blen, &used)) {
                f->failed = 1;
                break;
            }
            c_consume(c, used);
            if ((t >> 4) == 4)
                inflight--;
        }
    }
    /* Wait for the outstanding acknowledgements. */
    while (f->qos && inflight && !f->failed) {
        uint8_t t;
        const uint8_t *b;
        size_t blen, used;
        if (c_packet(c, &t, &b, &blen, &used))
            break;
        c_consume(c, used);
        if ((t >> 4) == 4)
            inflight--;
    }
    free(pkt);
    free(batch);
    c_close(c, 1);
    free(c);
    return NULL;
}

static void run_messages(const target *t, SSL_CTX *ctx, int npubs, int qos, int size, result *r)
{
    flow *f = calloc(1, sizeof *f);
    f->t = t;
    f->ctx = ctx;
    f->qos = qos;
    f->size = size < HDR ? HDR : size;
    f->npubs = npubs;
    memset(r, 0, sizeof *r);
    if (c_open(&f->sub, ctx, t->port, "sub") || c_subscribe(&f->sub, "bench/tls", qos)) {
        r->failed = 1;
        c_close(&f->sub, 0);
        free(f);
        return;
    }
    pthread_t st, pt[MAX_PUBS];
    pub_arg pa[MAX_PUBS];
    pthread_create(&st, NULL, sub_thread, f);
    uint64_t cpu0 = cpu_ns(t->pid), t0 = now_ns();
    f->end = t0 + (uint64_t)(g_seconds * 1e9);
    for (int i = 0; i < npubs; i++) {
        pa[i] = (pub_arg){f, i};
        pthread_create(&pt[i], NULL, pub_thread, &pa[i]);
    }
    for (int i = 0; i < npubs; i++)
        pthread_join(pt[i], NULL);
    uint64_t sent = total_sent(f);
    /* Drain: everything sent should arrive (QoS 0 over TCP too). */
    uint64_t drain_end = now_ns() + 5000000000ull;
    while (atomic_load(&f->received) < sent && now_ns() < drain_end && !f->failed)
        sched_yield();
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t cpu = cpu_ns(t->pid) - cpu0;
    atomic_store(&f->stop, 1);
    shutdown(f->sub.fd, SHUT_RDWR);
    pthread_join(st, NULL);
    c_close(&f->sub, 0);
    r->ops = atomic_load(&f->received);
    r->rate = (double)r->ops / secs;
    r->cpu_us = r->ops && t->pid > 0 ? (double)cpu / 1e3 / (double)r->ops : 0;
    r->lost = sent > r->ops ? sent - r->ops : 0;
    r->dup = f->dup;
    r->ooo = f->ooo;
    r->failed = f->failed;
    free(f);
}

/* ---- driver ---- */

static void print(const char *scenario, const target *t, const result *r, const char *unit)
{
    printf("%-26s %-10s %10.0f %s  broker_cpu=%.1fus/op  lost=%" PRIu64 " dup=%" PRIu64
           " ooo=%" PRIu64 " failed=%" PRIu64 "\n",
           scenario, t->name, r->rate, unit, r->cpu_us, r->lost, r->dup, r->ooo, r->failed);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    target ts[MAX_BROKERS];
    int nt = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc && nt < MAX_BROKERS) {
            target *t = &ts[nt++];
            memset(t, 0, sizeof *t);
            char *spec = argv[++i], *eq = strchr(spec, '=');
            if (!eq) {
                fprintf(stderr, "--broker NAME=PORT[:PID]\n");
                return 2;
            }
            snprintf(t->name, sizeof t->name, "%.*s", (int)(eq - spec), spec);
            if (sscanf(eq + 1, "%d:%d", &t->port, &t->pid) < 1)
                return 2;
        } else if (!strcmp(argv[i], "--cafile") && i + 1 < argc) {
            g_cafile = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            g_seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            g_threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
            g_window = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_tls --cafile CA --broker NAME=PORT[:PID] [--broker ...]"
                            " [--seconds S] [--threads T] [--window W] [--only SUBSTRING]\n");
            return 2;
        }
    }
    if (!nt || !g_cafile) {
        fprintf(stderr, "bench_tls: --cafile and at least one --broker are needed\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a broker closing a connection is reported, not fatal */
    SSL_CTX *ctx = make_ctx();
    struct { const char *name; int kind, npubs, qos, size; } sc[] = {
        {"handshakes", 0, 0, 0, 0},
        {"messages qos0 64B", 1, 1, 0, 64},
        {"messages qos0 1KiB", 1, 1, 0, 1024},
        {"messages qos1 64B", 1, 1, 1, 64},
        {"messages qos1 1KiB", 1, 1, 1, 1024},
        {"fanin4 qos0 64B", 1, 4, 0, 64},
    };
    printf("# %d CPUs; %.1fs per run; %d handshake threads; window %u\n",
           (int)sysconf(_SC_NPROCESSORS_ONLN), g_seconds, g_threads, g_window);
    for (size_t s = 0; s < sizeof sc / sizeof sc[0]; s++) {
        if (only && !strstr(sc[s].name, only))
            continue;
        result rs[MAX_BROKERS];
        for (int i = 0; i < nt; i++) {
            if (sc[s].kind == 0)
                run_handshakes(&ts[i], ctx, &rs[i]);
            else
                run_messages(&ts[i], ctx, sc[s].npubs, sc[s].qos, sc[s].size, &rs[i]);
            print(sc[s].name, &ts[i], &rs[i], sc[s].kind == 0 ? "conn/s" : "msg/s ");
        }
        for (int i = 1; i < nt; i++)
            printf("%-26s ratio %s/%s = %.2f\n", sc[s].name, ts[0].name, ts[i].name,
                   rs[i].rate > 0 ? rs[0].rate / rs[i].rate : 0.0);
    }
    SSL_CTX_free(ctx);
    return 0;
}
