/*
 * benchstat.c - payload header, stream tallies and latency percentiles for
 * the load generators (see benchstat.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "benchstat.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAGIC 0x6d71626eu /* "mqbn" */

uint64_t bstat_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void bstat_encode(uint8_t *buf, size_t size, const bstat_hdr *h)
{
    put32(buf, MAGIC);
    put32(buf + 4, h->run);
    put32(buf + 8, h->pub);
    put32(buf + 12, h->seq);
    put32(buf + 16, (uint32_t)h->sent_us);
    put32(buf + 20, (uint32_t)(h->sent_us >> 32));
    for (size_t i = BSTAT_HDR; i < size; i++)
        buf[i] = (uint8_t)(i * 7);
}

int bstat_decode(const void *payload, size_t len, bstat_hdr *h)
{
    const uint8_t *b = payload;
    if (len < BSTAT_HDR || get32(b) != MAGIC)
        return -1;
    h->run = get32(b + 4);
    h->pub = get32(b + 8);
    h->seq = get32(b + 12);
    h->sent_us = (uint64_t)get32(b + 16) | (uint64_t)get32(b + 20) << 32;
    return 0;
}

int bstat_stream_add(bstat_stream *s, uint32_t seq)
{
    if (seq >= BSTAT_MAX_SEQ)
        return -1;
    if (seq >= s->cap_bits) {
        uint32_t bits = s->cap_bits ? s->cap_bits : 8192;
        while (bits <= seq)
            bits *= 2;
        uint8_t *p = realloc(s->seen, bits / 8);
        if (!p)
            return -1;
        memset(p + s->cap_bits / 8, 0, (bits - s->cap_bits) / 8);
        s->seen = p;
        s->cap_bits = bits;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (s->seen[seq >> 3] & bit) {
        s->dup++;
        return 1;
    }
    s->seen[seq >> 3] |= bit;
    s->distinct++;
    if (seq + 1 < s->hi)
        s->ooo++;
    else
        s->hi = seq + 1;
    return 0;
}

uint64_t bstat_stream_gaps(const bstat_stream *s)
{
    return s->hi > s->distinct ? s->hi - s->distinct : 0;
}

void bstat_stream_free(bstat_stream *s)
{
    free(s->seen);
    memset(s, 0, sizeof *s);
}

void bstat_lat_add(bstat_lat *l, uint64_t us)
{
    uint32_t v = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    l->count++;
    if (v > l->max)
        l->max = v;
    size_t limit = l->limit ? l->limit : (size_t)16 << 20;
    if (l->n == l->cap) {
        if (l->cap >= limit)
            return; /* keep the first `limit` samples; max and count stay exact */
        size_t cap = l->cap ? l->cap * 2 : 4096;
        if (cap > limit)
            cap = limit;
        uint32_t *p = realloc(l->v, cap * sizeof *p);
        if (!p)
            return;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t bstat_lat_percentile(bstat_lat *l, double p)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, cmp_u32);
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->v[i < l->n ? i : l->n - 1];
}

void bstat_lat_free(bstat_lat *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}
