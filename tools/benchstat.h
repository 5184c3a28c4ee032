/*
 * benchstat.h - the bookkeeping every load generator of the project needs:
 * a payload header carrying who sent a message, its sequence number and
 * when; per-stream tallies of distinct, duplicated and out-of-order
 * messages; latency samples and their percentiles. Used by `mqlite bench`
 * (tools/cmd_bench.c) and bench/bench_broker.c. No I/O, no globals.
 */
#ifndef MQLITE_BENCHSTAT_H
#define MQLITE_BENCHSTAT_H

#include <stddef.h>
#include <stdint.h>

/* Payload header: magic, run tag, publisher index, sequence number, send
 * time (CLOCK_REALTIME, microseconds), all little-endian. Payloads are at
 * least this long; the rest is a fixed pattern. */
#define BSTAT_HDR 24

typedef struct bstat_hdr {
    uint32_t run;     /* tags one generator process: streams of other runs stay apart */
    uint32_t pub;     /* publisher index within the run */
    uint32_t seq;     /* 0, 1, 2, ... per publisher */
    uint64_t sent_us; /* bstat_now_us() when published */
} bstat_hdr;

/* Microseconds of CLOCK_REALTIME (comparable between processes). */
uint64_t bstat_now_us(void);
/* Write h and the pattern into buf[0..size) (size >= BSTAT_HDR). */
void bstat_encode(uint8_t *buf, size_t size, const bstat_hdr *h);
/* 0 and *h filled when payload starts with a header, else -1. */
int bstat_decode(const void *payload, size_t len, bstat_hdr *h);

/* What one receiver saw of one publisher. Zero-initialise; bstat_stream_free. */
typedef struct bstat_stream {
    uint8_t *seen;     /* bitmap of sequence numbers */
    uint32_t cap_bits; /* bits allocated */
    uint32_t hi;       /* highest sequence + 1 */
    uint64_t distinct, dup, ooo;
} bstat_stream;

/* Record seq: 0 first time, 1 duplicate, -1 out of memory or seq beyond
 * BSTAT_MAX_SEQ (not recorded). */
#define BSTAT_MAX_SEQ (1u << 28)
int bstat_stream_add(bstat_stream *s, uint32_t seq);
/* Messages below the highest sequence seen that never arrived. */
uint64_t bstat_stream_gaps(const bstat_stream *s);
void bstat_stream_free(bstat_stream *s);

/* Latency samples in microseconds, kept up to a cap (the maximum is exact). */
typedef struct bstat_lat {
    uint32_t *v;
    size_t n, cap, limit; /* limit 0: 16M samples */
    uint64_t count;       /* all samples, kept or not */
    uint32_t max;
} bstat_lat;

void bstat_lat_add(bstat_lat *l, uint64_t us);
/* Sorts the samples; p in [0, 1]. 0 when there are none. */
uint32_t bstat_lat_percentile(bstat_lat *l, double p);
void bstat_lat_free(bstat_lat *l);

#endif
