/*
 * spy_model.h - what `mqlite spy` knows about the topics it saw: a tree of
 * topic levels with, per node, message counts and rates for the topic
 * itself and for its whole subtree, and the topic's last message.
 *
 * Rates are messages per second over a sliding window of SPY_RATE_BUCKETS
 * buckets of SPY_RATE_BUCKET_MS (5 s), counted from the start or the last
 * clear when that is more recent.
 *
 * Pause: while paused the model keeps counting every message, but what the
 * display reads (spy_node_view) stays as it was when the pause began: a
 * node's first change during the pause saves its old counters and last
 * message (copy on write), and topics first seen during the pause stay
 * hidden. Resuming shows everything that arrived meanwhile.
 *
 * No I/O and no clock of its own: every call that needs the time takes
 * `now_ms` (monotonic milliseconds).
 */
#ifndef MQLITE_SPY_MODEL_H
#define MQLITE_SPY_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "spy_msg.h"

#define SPY_RATE_BUCKETS 10
#define SPY_RATE_BUCKET_MS 500
/* Levels deeper than this are kept, unsplit, in the name of the node at
 * this depth, so a topic of thousands of '/' cannot exhaust the stack. */
#define SPY_MAX_DEPTH 64

typedef struct spy_rate {
    uint32_t bucket[SPY_RATE_BUCKETS];
    int64_t newest; /* index (now_ms / SPY_RATE_BUCKET_MS) of the newest bucket */
} spy_rate;

typedef struct spy_stats {
    uint64_t count; /* messages to exactly this topic */
    uint64_t total; /* messages to this topic and every topic below it */
    size_t topics;  /* topics in this subtree, itself included */
    spy_rate own, sub;
    const spy_msg *last;
} spy_stats;

typedef struct spy_node {
    char *name;  /* this level ("" for an empty level) */
    char *topic; /* the whole topic name up to this level */
    size_t topic_len;
    struct spy_node *parent;
    struct spy_node **kids; /* sorted by name */
    size_t nkids, kids_cap;
    int depth;    /* 1 for top-level names */
    int expanded; /* display state, kept here for convenience */
    int is_topic; /* a message arrived for exactly this topic */
    spy_stats live;
    spy_stats saved; /* the view at pause time, when saved_epoch is current */
    uint32_t saved_epoch;
    uint32_t born_epoch; /* pause epoch during which the node was created, or 0 */
    spy_msg *last;       /* owned */
} spy_node;

typedef struct spy_model {
    spy_node root;
    size_t ntopics, nnodes;
    int64_t since_ms; /* start or last clear */
    int paused;
    uint32_t epoch; /* current pause epoch (>= 1 once paused) */
    int64_t paused_at_ms;
    uint64_t held;    /* messages counted since the pause began */
    uint64_t changes; /* bumped whenever the set of visible nodes changes */
} spy_model;

void spy_model_init(spy_model *m, int64_t now_ms);
void spy_model_free(spy_model *m);
/* Count a message on `topic` and make `msg` (owned now) its last message.
 * Returns the topic's node. */
spy_node *spy_model_add(spy_model *m, const char *topic, size_t len, spy_msg *msg, int64_t now_ms);
void spy_model_pause(spy_model *m, int on, int64_t now_ms);
/* Zero every count and rate (topics and last messages stay). */
void spy_model_clear(spy_model *m, int64_t now_ms);

/* What the display shows for a node: live, or its state at pause time. */
const spy_stats *spy_node_view(const spy_model *m, const spy_node *n);
/* 0 for nodes created during the current pause. */
int spy_node_shown(const spy_model *m, const spy_node *n);
/* The time the display shows: now, or the moment of the pause. */
int64_t spy_model_view_ms(const spy_model *m, int64_t now_ms);
/* Messages per second of a rate at time now_ms (pass spy_model_view_ms()
 * for what the display shows, the real time for what arrives now). */
double spy_model_rate(const spy_model *m, const spy_rate *r, int64_t now_ms);
/* The node of a topic, or NULL. */
spy_node *spy_model_find(spy_model *m, const char *topic);

#endif
