/*
 * spy_model.c - the topic tree of `mqlite spy` (see spy_model.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "spy_model.h"

#include <stdlib.h>
#include <string.h>

void spy_model_init(spy_model *m, int64_t now_ms)
{
    memset(m, 0, sizeof *m);
    m->root.name = spy_xstrndup("", 0);
    m->root.topic = spy_xstrndup("", 0);
    m->root.expanded = 1;
    m->since_ms = now_ms;
}

static void node_free(spy_node *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
    if (n->saved.last && n->saved.last != n->last)
        spy_msg_free((spy_msg *)n->saved.last);
    spy_msg_free(n->last);
    free(n->name);
    free(n->topic);
}

void spy_model_free(spy_model *m)
{
    node_free(&m->root);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- rates */

static void rate_hit(spy_rate *r, int64_t now_ms)
{
    int64_t idx = now_ms / SPY_RATE_BUCKET_MS;
    if (idx - r->newest >= SPY_RATE_BUCKETS) {
        memset(r->bucket, 0, sizeof r->bucket);
    } else {
        for (int64_t k = r->newest + 1; k <= idx; k++)
            r->bucket[k % SPY_RATE_BUCKETS] = 0;
    }
    if (idx > r->newest)
        r->newest = idx;
    r->bucket[r->newest % SPY_RATE_BUCKETS]++;
}

int64_t spy_model_view_ms(const spy_model *m, int64_t now_ms)
{
    return m->paused ? m->paused_at_ms : now_ms;
}

double spy_model_rate(const spy_model *m, const spy_rate *r, int64_t now_ms)
{
    int64_t now = now_ms;
    int64_t idx = now / SPY_RATE_BUCKET_MS;
    uint64_t sum = 0;
    for (int64_t k = idx - SPY_RATE_BUCKETS + 1; k <= idx; k++)
        if (k >= 0 && k <= r->newest && k > r->newest - SPY_RATE_BUCKETS)
            sum += r->bucket[k % SPY_RATE_BUCKETS];
    int64_t span = (SPY_RATE_BUCKETS - 1) * SPY_RATE_BUCKET_MS + now % SPY_RATE_BUCKET_MS + 1;
    if (now - m->since_ms < span)
        span = now - m->since_ms;
    if (span < SPY_RATE_BUCKET_MS)
        span = SPY_RATE_BUCKET_MS; /* no wild rates in the first instant */
    return (double)sum * 1000.0 / (double)span;
}

/* ----------------------------------------------------------------- tree */

/* Compare a node name with a level given by pointer and length. */
static int cmp_level(const char *name, const char *lvl, size_t len)
{
    size_t nl = strlen(name);
    int r = memcmp(name, lvl, nl < len ? nl : len);
    if (r)
        return r;
    return nl < len ? -1 : nl > len ? 1 : 0;
}

/* Index of the child named lvl, or -(insertion point) - 1. */
static long kid_search(const spy_node *n, const char *lvl, size_t len)
{
    size_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_level(n->kids[mid]->name, lvl, len);
        if (r == 0)
            return (long)mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static spy_node *kid_insert(spy_model *m, spy_node *parent, size_t at, const char *lvl, size_t len)
{
    spy_node *k = spy_xrealloc(NULL, sizeof *k);
    memset(k, 0, sizeof *k);
    k->name = spy_xstrndup(lvl, len);
    k->parent = parent;
    k->depth = parent->depth + 1;
    k->expanded = k->depth < 2; /* top-level names start open */
    size_t plen = parent->topic_len + (parent == &m->root ? 0 : 1);
    k->topic_len = plen + len;
    k->topic = spy_xrealloc(NULL, k->topic_len + 1);
    memcpy(k->topic, parent->topic, parent->topic_len);
    if (plen > parent->topic_len)
        k->topic[parent->topic_len] = '/';
    memcpy(k->topic + plen, lvl, len);
    k->topic[k->topic_len] = '\0';
    k->live.own.newest = k->live.sub.newest = 0;
    k->born_epoch = m->paused ? m->epoch : 0;
    if (parent->nkids == parent->kids_cap) {
        parent->kids_cap = parent->kids_cap ? parent->kids_cap * 2 : 4;
        parent->kids = spy_xrealloc(parent->kids, parent->kids_cap * sizeof *parent->kids);
    }
    memmove(parent->kids + at + 1, parent->kids + at, (parent->nkids - at) * sizeof k);
    parent->kids[at] = k;
    parent->nkids++;
    m->nnodes++;
    if (!m->paused)
        m->changes++;
    return k;
}

/* Walk (and with `create`, grow) the tree along the levels of a topic. */
static spy_node *walk(spy_model *m, const char *topic, size_t len, int create)
{
    spy_node *n = &m->root;
    size_t i = 0;
    for (;;) {
        const char *slash = memchr(topic + i, '/', len - i);
        size_t end = slash && n->depth + 1 < SPY_MAX_DEPTH ? (size_t)(slash - topic) : len;
        long at = kid_search(n, topic + i, end - i);
        if (at >= 0)
            n = n->kids[at];
        else if (create)
            n = kid_insert(m, n, (size_t)(-at - 1), topic + i, end - i);
        else
            return NULL;
        if (end == len)
            return n;
        i = end + 1;
    }
}

spy_node *spy_model_find(spy_model *m, const char *topic)
{
    return walk(m, topic, strlen(topic), 0);
}

/* Copy on write: the first change to a node during a pause saves its view. */
static void save_view(spy_model *m, spy_node *n)
{
    if (m->paused && n->saved_epoch != m->epoch) {
        n->saved = n->live;
        n->saved_epoch = m->epoch;
    }
}

static void set_last(spy_model *m, spy_node *n, spy_msg *msg)
{
    int kept_by_view = m->paused && n->saved_epoch == m->epoch && n->saved.last == n->last;
    if (!kept_by_view)
        spy_msg_free(n->last);
    n->last = msg;
    n->live.last = msg;
}

spy_node *spy_model_add(spy_model *m, const char *topic, size_t len, spy_msg *msg, int64_t now_ms)
{
    spy_node *leaf = walk(m, topic, len, 1);
    int new_topic = !leaf->is_topic;
    for (spy_node *n = leaf; n; n = n->parent) {
        save_view(m, n);
        n->live.total++;
        rate_hit(&n->live.sub, now_ms);
        if (new_topic)
            n->live.topics++;
    }
    leaf->live.count++;
    rate_hit(&leaf->live.own, now_ms);
    set_last(m, leaf, msg);
    if (new_topic) {
        leaf->is_topic = 1;
        m->ntopics++;
    }
    if (m->paused)
        m->held++;
    return leaf;
}

static void release_saved(spy_node *n, uint32_t epoch)
{
    if (n->saved_epoch == epoch && n->saved.last && n->saved.last != n->last)
        spy_msg_free((spy_msg *)n->saved.last);
    n->saved.last = NULL;
    n->saved_epoch = 0;
    for (size_t i = 0; i < n->nkids; i++)
        release_saved(n->kids[i], epoch);
}

void spy_model_pause(spy_model *m, int on, int64_t now_ms)
{
    if (on == m->paused)
        return;
    if (on) {
        m->epoch++;
        m->paused_at_ms = now_ms;
        m->held = 0;
    } else {
        release_saved(&m->root, m->epoch);
        m->changes++;
    }
    m->paused = on;
}

static void clear_stats(spy_stats *s)
{
    s->count = s->total = 0; /* `topics` stays: the topics are still known */
    memset(&s->own, 0, sizeof s->own);
    memset(&s->sub, 0, sizeof s->sub);
}

static void clear_node(spy_node *n, uint32_t epoch)
{
    clear_stats(&n->live);
    if (n->saved_epoch == epoch)
        clear_stats(&n->saved);
    for (size_t i = 0; i < n->nkids; i++)
        clear_node(n->kids[i], epoch);
}

void spy_model_clear(spy_model *m, int64_t now_ms)
{
    clear_node(&m->root, m->paused ? m->epoch : 0);
    m->since_ms = now_ms;
    if (m->paused)
        m->paused_at_ms = now_ms;
    m->held = 0;
}

const spy_stats *spy_node_view(const spy_model *m, const spy_node *n)
{
    if (m->paused && n->saved_epoch == m->epoch)
        return &n->saved;
    return &n->live;
}

int spy_node_shown(const spy_model *m, const spy_node *n)
{
    return !(m->paused && n->born_epoch == m->epoch);
}
