/*
 * bench_client.c - publish throughput and round-trip latency of mqlite's
 * client against libmosquitto's, through the same local mosquitto, in the
 * same run (bench/client_vs_libmosquitto.sh starts the broker).
 *
 * Per library and case: one publisher connection and one subscriber
 * connection (MQTT 3.1.1), the subscriber subscribed at the case's QoS.
 *   throughput  N messages (bounded by -n and -T seconds); a message counts
 *               once it is fully acknowledged to the publisher (QoS 1/2:
 *               PUBACK / PUBCOMP; QoS 0: handed to the socket) AND received
 *               by the subscriber. Reported: completed messages per second,
 *               and lost / duplicated / out-of-order messages as the
 *               subscriber saw them (sequence numbers in the payload).
 *   latency     one message at a time: publish -> received by the
 *               subscriber, p50 / p99 over -k samples (bounded by -T).
 * Both sides keep the same window: at most -w QoS 1/2 messages in flight
 * (mqlite MQLITE_OPT_MAX_INFLIGHT; libmosquitto
 * mosquitto_max_inflight_messages_set), and the publishing code never has
 * more than 2 * w messages waiting in the library.
 *
 * mqlite is driven the way the library is meant to be: one thread, one
 * poll() over both sockets (mqlite_client_fd / _want_write / _io).
 * libmosquitto gets its own best setup: mosquitto_loop_start() (one network
 * thread per connection), publishing from the main thread, TCP_NODELAY on
 * ("libmosquitto") and, since Nagle is its default, also off
 * ("libmosquitto_nagle").
 *
 * Output: `name=value unit` lines, then `ratio.<case>=x` lines
 * (mqlite / libmosquitto) per case.
 *
 * usage: bench_client -p PORT [-h HOST] [-n N] [-T SECONDS] [-w WINDOW]
 *                     [-k SAMPLES] [-q QOS,...] [-s SIZE,...] [-l LIB,...]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "benchstat.h"
#include "mqlite.h"

#define MAX_CASES 64

typedef struct opts {
    const char *host;
    int port;
    long n;
    double max_s;
    int window;
    int samples;
    int qos[3], nqos;
    int size[4], nsize;
    int libs; /* bit 0 mqlite, 1 libmosquitto, 2 libmosquitto_nagle */
} opts;

/* One run's accounting, filled by the subscriber side. */
typedef struct tally {
    long n;
    uint32_t run;
    bstat_stream s;        /* sequence numbers seen (tools/benchstat.h) */
    long received;         /* distinct */
    long dups, ooo, foreign;
    long acked;
} tally;

/* CPU time (user + system) of the whole process, all threads, in seconds. */
static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The payload header shared with `mqlite bench` and bench_broker. */
static void fill_payload(unsigned char *buf, int size, uint32_t run, uint64_t seq)
{
    bstat_hdr h = {run, 0, (uint32_t)seq, bstat_now_us()};
    bstat_encode(buf, (size_t)size, &h);
}

static void tally_message(tally *t, const void *payload, size_t len)
{
    bstat_hdr h;
    if (bstat_decode(payload, len, &h) || h.run != t->run || h.seq >= (uint64_t)t->n ||
        bstat_stream_add(&t->s, h.seq) < 0) {
        t->foreign++;
        return;
    }
    /* the counters the waits and reports read */
    t->received = (long)t->s.distinct;
    t->dups = (long)t->s.dup;
    t->ooo = (long)t->s.ooo;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---------------------------------------------------------------------
 * Results
 * --------------------------------------------------------------------- */

typedef struct result {
    char lib[32];
    char name[32]; /* q1.64B, q1.latency */
    double value;  /* msg/s, or p50 us */
    double cpu_us; /* client CPU per completed message */
    double p99;
    int latency;
} result;

static result results[MAX_CASES * 4];
static int nresults;

static void report_throughput(const char *lib, int qos, int size, const tally *t, long n,
                              double elapsed, double cpu)
{
    long done = t->received < t->acked ? t->received : t->acked;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double cpu_us = done > 0 ? cpu * 1e6 / (double)done : 0;
    printf("%s.q%d.%dB.throughput=%.0f msg/s\n", lib, qos, size, rate);
    printf("%s.q%d.%dB.client_cpu=%.2f us/msg\n", lib, qos, size, cpu_us);
    printf("%s.q%d.%dB.completed=%ld msgs\n", lib, qos, size, done);
    printf("%s.q%d.%dB.elapsed=%.3f s\n", lib, qos, size, elapsed);
    printf("%s.q%d.%dB.lost=%ld msgs\n", lib, qos, size, n - t->received);
    printf("%s.q%d.%dB.duplicated=%ld msgs\n", lib, qos, size, t->dups);
    printf("%s.q%d.%dB.out_of_order=%ld msgs\n", lib, qos, size, t->ooo);
    fflush(stdout);
    result *r = &results[nresults++];
    snprintf(r->lib, sizeof r->lib, "%s", lib);
    snprintf(r->name, sizeof r->name, "q%d.%dB", qos, size);
    r->value = rate;
    r->cpu_us = cpu_us;
}

static void report_latency(const char *lib, int qos, double *us, int n)
{
    double p50 = percentile(us, n, 0.50), p99 = percentile(us, n, 0.99);
    printf("%s.q%d.latency_p50=%.1f us\n", lib, qos, p50);
    printf("%s.q%d.latency_p99=%.1f us\n", lib, qos, p99);
    printf("%s.q%d.latency_samples=%d samples\n", lib, qos, n);
    fflush(stdout);
    result *r = &results[nresults++];
    snprintf(r->lib, sizeof r->lib, "%s", lib);
    snprintf(r->name, sizeof r->name, "q%d.latency", qos);
    r->value = p50;
    r->p99 = p99;
    r->latency = 1;
}

static void print_ratios(void)
{
    static const char *peers[] = {"libmosquitto", "libmosquitto_nagle"};
    for (int i = 0; i < nresults; i++) {
        if (strcmp(results[i].lib, "mqlite"))
            continue;
        for (int p = 0; p < 2; p++)
            for (int j = 0; j < nresults; j++) {
                if (strcmp(results[j].lib, peers[p]) || strcmp(results[j].name, results[i].name))
                    continue;
                if (results[i].latency)
                    /* latency: lower is better; the ratio is peer / mqlite so that
                     * > 1 means mqlite is better, like the throughput ratio */
                    printf("ratio.%s.p50.mqlite_vs_%s=%.2f x\n", results[i].name, peers[p],
                           results[i].value > 0 ? results[j].value / results[i].value : 0);
                else {
                    printf("ratio.%s.mqlite/%s=%.2f x\n", results[i].name, peers[p],
                           results[j].value > 0 ? results[i].value / results[j].value : 0);
                    /* CPU: the peer's cost over ours, > 1 means mqlite is cheaper */
                    printf("ratio.%s.client_cpu.%s/mqlite=%.2f x\n", results[i].name, peers[p],
                           results[i].cpu_us > 0 ? results[j].cpu_us / results[i].cpu_us : 0);
                }
            }
    }
}

/* ---------------------------------------------------------------------
 * mqlite
 * --------------------------------------------------------------------- */

static mqlite_client *mq_connect(const opts *o, const char *id, int window)
{
    mqlite_client *c = mqlite_client_new(id);
    if (!c)
        return NULL;
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, 4);
    mqlite_client_set_int(c, MQLITE_OPT_MAX_INFLIGHT, window);
    mqlite_client_set_int(c, MQLITE_OPT_MAX_QUEUED, 0);
    mqlite_client_set_int(c, MQLITE_OPT_MAX_QUEUED_BYTES, 0);
    if (mqlite_client_connect(c, o->host, o->port) < 0) {
        fprintf(stderr, "bench: mqlite connect: %s\n", mqlite_client_errmsg(c));
        mqlite_client_free(c);
        return NULL;
    }
    double deadline = now_s() + 10;
    while (now_s() < deadline) {
        mqlite_client_poll(c, 100);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            if (mqlite_event_type(ev) == MQLITE_EVENT_CONNECTED)
                return c;
            if (mqlite_event_type(ev) == MQLITE_EVENT_CONNECT_FAILED) {
                fprintf(stderr, "bench: mqlite: %s\n", mqlite_event_text(ev));
                mqlite_client_free(c);
                return NULL;
            }
        }
    }
    fprintf(stderr, "bench: mqlite: no CONNACK\n");
    mqlite_client_free(c);
    return NULL;
}

/* One round over both clients: poll, I/O, events. */
static int mq_round(mqlite_client *pub, mqlite_client *sub, tally *t, int timeout_ms)
{
    struct pollfd p[2] = {{mqlite_client_fd(pub), POLLIN, 0}, {mqlite_client_fd(sub), POLLIN, 0}};
    if (mqlite_client_want_write(pub))
        p[0].events |= POLLOUT;
    if (mqlite_client_want_write(sub))
        p[1].events |= POLLOUT;
    if (poll(p, 2, timeout_ms) < 0 && errno != EINTR)
        return -1;
    mqlite_client *cs[2] = {pub, sub};
    for (int i = 0; i < 2; i++) {
        int r = (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        int w = (p[i].revents & POLLOUT) != 0;
        if (mqlite_client_io(cs[i], r, w) < 0) {
            fprintf(stderr, "bench: mqlite: %s\n", mqlite_client_errmsg(cs[i]));
            return -1;
        }
    }
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(pub)) != NULL)
        if (mqlite_event_type(ev) == MQLITE_EVENT_PUBLISHED && mqlite_event_error(ev) == 0)
            t->acked++;
    while ((ev = mqlite_client_next_event(sub)) != NULL)
        if (mqlite_event_type(ev) == MQLITE_EVENT_MESSAGE) {
            size_t len;
            const void *pl = mqlite_event_payload(ev, &len);
            tally_message(t, pl, len);
        }
    return 0;
}

static int mq_subscribe(mqlite_client *pub, mqlite_client *sub, const char *topic, int qos,
                        tally *t)
{
    int32_t pid;
    if (mqlite_client_subscribe(sub, topic, qos, &pid) < 0)
        return -1;
    double deadline = now_s() + 10;
    while (now_s() < deadline) {
        mqlite_client_poll(sub, 100);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(sub)) != NULL)
            if (mqlite_event_type(ev) == MQLITE_EVENT_SUBACK)
                return 0;
    }
    (void)pub;
    (void)t;
    return -1;
}

static void run_mqlite(const opts *o, int qos, int size, int latency, uint32_t run)
{
    char topic[96], id[64];
    snprintf(topic, sizeof topic, "bench/mqlite/%d/%u", (int)getpid(), run);
    snprintf(id, sizeof id, "mqb-pub-%u", run);
    mqlite_client *pub = mq_connect(o, id, o->window);
    snprintf(id, sizeof id, "mqb-sub-%u", run);
    mqlite_client *sub = mq_connect(o, id, o->window);
    long n = latency ? o->samples : o->n;
    tally t = {.n = n, .run = run};
    unsigned char *buf = malloc((size_t)size);
    double *us = latency ? calloc((size_t)n, sizeof *us) : NULL;
    if (!pub || !sub || !buf || (latency && !us) ||
        mq_subscribe(pub, sub, topic, qos, &t) < 0) {
        fprintf(stderr, "bench: mqlite setup failed\n");
        goto done;
    }
    double t0 = now_s(), deadline = t0 + o->max_s, c0 = cpu_s();
    if (!latency) {
        long published = 0;
        while (now_s() < deadline) {
            while (published < n && mqlite_client_queued(pub) < o->window) {
                fill_payload(buf, size, run, (uint64_t)published);
                if (mqlite_client_publish(pub, topic, buf, (size_t)size, qos, 0, NULL) < 0) {
                    fprintf(stderr, "bench: mqlite publish: %s\n", mqlite_client_errmsg(pub));
                    goto done;
                }
                published++;
            }
            if (qos == 0)
                t.acked = published - mqlite_client_queued(pub);
            if (t.received >= n && t.acked >= n)
                break;
            if (mq_round(pub, sub, &t, 100) < 0)
                break;
        }
        report_throughput("mqlite", qos, size, &t, n, now_s() - t0, cpu_s() - c0);
    } else {
        int k = 0;
        for (; k < n && now_s() < deadline; k++) {
            fill_payload(buf, size, run, (uint64_t)k);
            double s = now_s();
            if (mqlite_client_publish(pub, topic, buf, (size_t)size, qos, 0, NULL) < 0)
                break;
            while (t.received <= k && now_s() < deadline)
                if (mq_round(pub, sub, &t, 100) < 0)
                    goto done;
            us[k] = (now_s() - s) * 1e6;
            while (qos && t.acked <= k && now_s() < deadline) /* no overlap */
                if (mq_round(pub, sub, &t, 100) < 0)
                    goto done;
        }
        report_latency("mqlite", qos, us, k);
    }
done:
    if (pub)
        mqlite_client_free(pub);
    if (sub)
        mqlite_client_free(sub);
    bstat_stream_free(&t.s);
    free(buf);
    free(us);
}

/* ---------------------------------------------------------------------
 * libmosquitto
 * --------------------------------------------------------------------- */

typedef struct mosq_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tally t;
    long connected, connect_rc, subscribed;
} mosq_ctx;

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    mosq_ctx *x = ud;
    pthread_mutex_lock(&x->mu);
    x->connected = 1;
    x->connect_rc = rc;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    mosq_ctx *x = ud;
    pthread_mutex_lock(&x->mu);
    x->subscribed = 1;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m;
    (void)mid;
    mosq_ctx *x = ud;
    pthread_mutex_lock(&x->mu);
    x->t.acked++;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    mosq_ctx *x = ud;
    pthread_mutex_lock(&x->mu);
    tally_message(&x->t, msg->payload, (size_t)msg->payloadlen);
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* Wait (bounded) until *field >= value; 1 if it does. The callbacks change
 * the fields under x->mu and broadcast x->cv. */
static int wait_ge(mosq_ctx *x, const long *field, long value, double deadline)
{
    int ok = 1;
    pthread_mutex_lock(&x->mu);
    while (*field < value) {
        double left = deadline - now_s();
        if (left <= 0) {
            ok = 0;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double w = left < 0.1 ? left : 0.1;
        ts.tv_nsec += (long)(w * 1e9);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
    pthread_mutex_unlock(&x->mu);
    return ok;
}

static struct mosquitto *mosq_start(const opts *o, const char *id, mosq_ctx *x, int nodelay)
{
    struct mosquitto *m = mosquitto_new(id, true, x);
    if (!m)
        return NULL;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, nodelay);
    mosquitto_max_inflight_messages_set(m, (unsigned)o->window);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    if (mosquitto_connect(m, o->host, o->port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench: libmosquitto connect failed\n");
        mosquitto_destroy(m);
        return NULL;
    }
    if (!wait_ge(x, &x->connected, 1, now_s() + 10) || x->connect_rc != 0) {
        mosquitto_loop_stop(m, true);
        mosquitto_destroy(m);
        return NULL;
    }
    return m;
}

static void mosq_ctx_init(mosq_ctx *x)
{
    memset(x, 0, sizeof *x);
    pthread_mutex_init(&x->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cv, &a);
    pthread_condattr_destroy(&a);
}

static void run_mosquitto(const opts *o, const char *lib, int nodelay, int qos, int size,
                          int latency, uint32_t run)
{
    char topic[96], id[64];
    snprintf(topic, sizeof topic, "bench/%s/%d/%u", lib, (int)getpid(), run);
    /* Publisher and subscriber each have their callbacks' context; the
     * tally lives in the subscriber's, acks are counted in the publisher's. */
    mosq_ctx pc, sc;
    mosq_ctx_init(&pc);
    mosq_ctx_init(&sc);
    long n = latency ? o->samples : o->n;
    sc.t = (tally){.n = n, .run = run};
    unsigned char *buf = malloc((size_t)size);
    double *us = latency ? calloc((size_t)n, sizeof *us) : NULL;
    snprintf(id, sizeof id, "mob-pub-%u", run);
    struct mosquitto *pub = mosq_start(o, id, &pc, nodelay);
    snprintf(id, sizeof id, "mob-sub-%u", run);
    struct mosquitto *sub = mosq_start(o, id, &sc, nodelay);
    if (!pub || !sub || !buf || (latency && !us) ||
        mosquitto_subscribe(sub, NULL, topic, qos) != MOSQ_ERR_SUCCESS ||
        !wait_ge(&sc, &sc.subscribed, 1, now_s() + 10)) {
        fprintf(stderr, "bench: %s setup failed\n", lib);
        goto done;
    }
    double t0 = now_s(), deadline = t0 + o->max_s, c0 = cpu_s();
    if (!latency) {
        long published = 0;
        for (; published < n; published++) {
            /* keep at most 2 * window messages waiting in the library */
            if (!wait_ge(&pc, &pc.t.acked, published - 2L * o->window + 1, deadline))
                break;
            fill_payload(buf, size, run, (uint64_t)published);
            if (mosquitto_publish(pub, NULL, topic, size, buf, qos, false) != MOSQ_ERR_SUCCESS)
                break;
        }
        /* wait for both ends to finish */
        wait_ge(&pc, &pc.t.acked, n, deadline);
        wait_ge(&sc, &sc.t.received, n, deadline);
        double elapsed = now_s() - t0, cpu = cpu_s() - c0;
        pthread_mutex_lock(&pc.mu);
        pthread_mutex_lock(&sc.mu);
        sc.t.acked = pc.t.acked;
        tally snap = sc.t;
        pthread_mutex_unlock(&sc.mu);
        pthread_mutex_unlock(&pc.mu);
        report_throughput(lib, qos, size, &snap, n, elapsed, cpu);
    } else {
        int k = 0;
        for (; k < n && now_s() < deadline; k++) {
            fill_payload(buf, size, run, (uint64_t)k);
            double s = now_s();
            if (mosquitto_publish(pub, NULL, topic, size, buf, qos, false) != MOSQ_ERR_SUCCESS)
                break;
            if (!wait_ge(&sc, &sc.t.received, k + 1, deadline))
                break;
            us[k] = (now_s() - s) * 1e6;
            if (!wait_ge(&pc, &pc.t.acked, k + 1, deadline))
                break;
        }
        report_latency(lib, qos, us, k);
    }
done:
    if (pub) {
        mosquitto_disconnect(pub);
        mosquitto_loop_stop(pub, true);
        mosquitto_destroy(pub);
    }
    if (sub) {
        mosquitto_disconnect(sub);
        mosquitto_loop_stop(sub, true);
        mosquitto_destroy(sub);
    }
    bstat_stream_free(&sc.t.s);
    free(buf);
    free(us);
    pthread_mutex_destroy(&pc.mu);
    pthread_cond_destroy(&pc.cv);
    pthread_mutex_destroy(&sc.mu);
    pthread_cond_destroy(&sc.cv);
}

/* ---------------------------------------------------------------------
 * main
 * --------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = atoi(tok);
    free(copy);
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_client -p PORT [-h HOST] [-n MESSAGES] [-T SECONDS] "
                    "[-w WINDOW] [-k LATENCY_SAMPLES] [-q 0,1,2] [-s 64,1024] "
                    "[-l mqlite,libmosquitto,libmosquitto_nagle]\n");
}

int main(int argc, char **argv)
{
    opts o = {.host = "127.0.0.1", .n = 20000, .max_s = 10, .window = 20, .samples = 2000,
              .qos = {0, 1, 2}, .nqos = 3, .size = {64, 1024}, .nsize = 2, .libs = 7};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "-h"))
            o.host = v;
        else if (!strcmp(a, "-p"))
            o.port = atoi(v);
        else if (!strcmp(a, "-n"))
            o.n = atol(v);
        else if (!strcmp(a, "-T"))
            o.max_s = atof(v);
        else if (!strcmp(a, "-w"))
            o.window = atoi(v);
        else if (!strcmp(a, "-k"))
            o.samples = atoi(v);
        else if (!strcmp(a, "-q"))
            o.nqos = parse_list(v, o.qos, 3);
        else if (!strcmp(a, "-s"))
            o.nsize = parse_list(v, o.size, 4);
        else if (!strcmp(a, "-l")) {
            o.libs = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                o.libs |= !strcmp(tok, "mqlite") ? 1 : !strcmp(tok, "libmosquitto") ? 2
                        : !strcmp(tok, "libmosquitto_nagle") ? 4 : 0;
            free(copy);
        } else {
            usage();
            return 2;
        }
    }
    if (o.port < 1 || o.n < 1 || o.window < 1 || o.samples < 1) {
        usage();
        return 2;
    }
    for (int i = 0; i < o.nsize; i++)
        if (o.size[i] < BSTAT_HDR) {
            fprintf(stderr, "bench: payloads must be >= %d bytes\n", BSTAT_HDR);
            return 2;
        }
    mosquitto_lib_init();
    printf("config.messages=%ld msgs\nconfig.max_time=%.1f s\nconfig.window=%d msgs\n"
           "config.latency_samples=%d samples\n", o.n, o.max_s, o.window, o.samples);
    uint32_t run = (uint32_t)getpid() << 8;
    for (int qi = 0; qi < o.nqos; qi++) {
        for (int si = 0; si < o.nsize; si++) {
            if (o.libs & 1)
                run_mqlite(&o, o.qos[qi], o.size[si], 0, ++run);
            if (o.libs & 2)
                run_mosquitto(&o, "libmosquitto", 1, o.qos[qi], o.size[si], 0, ++run);
            if (o.libs & 4)
                run_mosquitto(&o, "libmosquitto_nagle", 0, o.qos[qi], o.size[si], 0, ++run);
        }
        if (o.libs & 1)
            run_mqlite(&o, o.qos[qi], 64, 1, ++run);
        if (o.libs & 2)
            run_mosquitto(&o, "libmosquitto", 1, o.qos[qi], 64, 1, ++run);
        if (o.libs & 4)
            run_mosquitto(&o, "libmosquitto_nagle", 0, o.qos[qi], 64, 1, ++run);
    }
    print_ratios();
    mosquitto_lib_cleanup();
    return 0;
}
