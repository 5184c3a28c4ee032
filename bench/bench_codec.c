/*
 * bench_codec.c - codec throughput: encode and decode of PUBLISH (16 B,
 * 1 KiB, 64 KiB payloads, MQTT 3.1.1 and 5.0) and SUBSCRIBE.
 *
 * Prints one result per line as `name=value unit`. Each case runs for a
 * bounded time (MQLITE_BENCH_MS per case, default 300 ms) and at most a
 * bounded number of iterations; the best of 3 runs is reported.
 *
 * Decode is the zero-copy internal decoder the client and broker use: no
 * allocation, payload and topic are views into the input.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "codec.h"
#include "props.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint32_t sink;
static long bench_ms = 300;

typedef struct bcase {
    const char *name;
    mq_packet pkt;
    uint8_t *wire;
    size_t wire_len;
} bcase;

/* ns per operation, best of 3 timed runs. */
static double time_decode(const bcase *c, const mq_decode_opts *o)
{
    double best = 1e18;
    for (int run = 0; run < 3; run++) {
        long iters = 0;
        double t0 = now_ns(), deadline = t0 + (double)bench_ms * 1e6 / 3, t = t0;
        while (t < deadline && iters < 200000000L) {
            for (int i = 0; i < 1000; i++) {
                mq_packet p;
                size_t used, need;
                if (mq_decode(c->wire, c->wire_len, o, &p, &used, &need, NULL) != 0)
                    abort();
                sink += p.payload.len + p.packet_id;
            }
            iters += 1000;
            t = now_ns();
        }
        double ns = (t - t0) / (double)iters;
        if (ns < best)
            best = ns;
    }
    return best;
}

static double time_encode(const bcase *c, uint8_t *out)
{
    double best = 1e18;
    for (int run = 0; run < 3; run++) {
        long iters = 0;
        double t0 = now_ns(), deadline = t0 + (double)bench_ms * 1e6 / 3, t = t0;
        while (t < deadline && iters < 200000000L) {
            for (int i = 0; i < 1000; i++) {
                size_t n;
                if (mq_encode_size(&c->pkt, &n, NULL) != 0)
                    abort();
                sink += (uint32_t)mq_encode_write(&c->pkt, out);
            }
            iters += 1000;
            t = now_ns();
        }
        double ns = (t - t0) / (double)iters;
        if (ns < best)
            best = ns;
    }
    return best;
}

static void report(const char *op, const bcase *c, double ns)
{
    printf("%s_%s_ns=%.1f ns\n", op, c->name, ns);
    printf("%s_%s_pkts_per_s=%.0f pkt/s\n", op, c->name, 1e9 / ns);
    printf("%s_%s_MB_per_s=%.1f MB/s\n", op, c->name, (double)c->wire_len * 1e9 / ns / 1e6);
}

int main(void)
{
    const char *ms = getenv("MQLITE_BENCH_MS");
    if (ms && atol(ms) > 0)
        bench_ms = atol(ms);
    static uint8_t payload[65536];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 31);
    const size_t sizes[] = {16, 1024, 65536};
    const char *names[] = {"publish_16B", "publish_1KiB", "publish_64KiB"};
    bcase cases[8];
    int nc = 0;
    for (int v = 4; v <= 5; v++) {
        for (int s = 0; s < 3; s++) {
            bcase *c = &cases[nc++];
            static char namebuf[8][48];
            snprintf(namebuf[nc - 1], sizeof namebuf[0], "%s%s", names[s], v == 5 ? "_v5" : "");
            c->name = namebuf[nc - 1];
            memset(&c->pkt, 0, sizeof c->pkt);
            c->pkt.type = MQLITE_PKT_PUBLISH;
            c->pkt.version = (uint8_t)v;
            c->pkt.qos = 1;
            c->pkt.packet_id = 42;
            c->pkt.topic = mq_view_cstr("sensors/building-7/floor-3/temp");
            c->pkt.payload = mq_view_make(payload, sizes[s]);
        }
    }
    /* SUBSCRIBE with 4 filters. */
    mq_buf list = {0};
    const char *filters[] = {"a/b/c", "sensors/+/temp", "home/#", "$SYS/broker/uptime"};
    for (int i = 0; i < 4; i++)
        mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr(filters[i]), 1, 1);
    bcase *sc = &cases[nc++];
    memset(sc, 0, sizeof *sc);
    sc->name = "subscribe_4filters";
    sc->pkt.type = MQLITE_PKT_SUBSCRIBE;
    sc->pkt.version = 4;
    sc->pkt.packet_id = 7;
    sc->pkt.list = mq_view_make(list.p, list.len);
    sc->pkt.count = 4;

    uint8_t *out = malloc(70000);
    for (int i = 0; i < nc; i++) {
        bcase *c = &cases[i];
        if (mq_encode_size(&c->pkt, &c->wire_len, NULL) != 0)
            abort();
        c->wire = malloc(c->wire_len);
        mq_encode_write(&c->pkt, c->wire);
        mq_decode_opts o = {0};
        o.version = c->pkt.version;
        report("decode", c, time_decode(c, &o));
        report("encode", c, time_encode(c, out));
    }
    for (int i = 0; i < nc; i++)
        free(cases[i].wire);
    free(out);
    mq_buf_free(&list, &mq_default_alloc);
    return sink == 0xdeadbeef;
}
