/*
 * session.c - the session table, offline state, expiry and wills (see
 * session.h for the rules kept here).
 */
#include "session.h"

#include <stdio.h>

#include "auth.h"
#include "conn.h"
#include "log.h"
#include "persist.h"
#include "router.h"
#include "trie.h"

/* ---- table ---- */

static uint32_t id_hash(mq_view id)
{
    return mq_trie_hash(id.p, id.len);
}

mq_bsess *mq_bsess_find(mqlite_broker *b, mq_view id)
{
    if (!b->stab_cap)
        return NULL;
    uint32_t h = id_hash(id);
    for (mq_bsess *s = b->stab[h & (b->stab_cap - 1)]; s; s = s->hnext)
        if (s->hash == h && s->id_len == id.len && memcmp(s->id, id.p, id.len) == 0)
            return s;
    return NULL;
}

static int table_grow(mqlite_broker *b)
{
    uint32_t cap = b->stab_cap ? b->stab_cap * 2 : 64;
    mq_bsess **t = mq_calloc(&b->a, (size_t)cap * sizeof *t);
    if (!t)
        return MQLITE_ERR_NOMEM;
    for (uint32_t i = 0; i < b->stab_cap; i++) {
        mq_bsess *s = b->stab[i];
        while (s) {
            mq_bsess *n = s->hnext;
            s->hnext = t[s->hash & (cap - 1)];
            t[s->hash & (cap - 1)] = s;
            s = n;
        }
    }
    mq_free(&b->a, b->stab);
    b->stab = t;
    b->stab_cap = cap;
    return 0;
}

static void table_del(mqlite_broker *b, mq_bsess *s)
{
    mq_bsess **pp = &b->stab[s->hash & (b->stab_cap - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    b->nsess--;
}

mq_bsess *mq_bsess_new(mqlite_broker *b, mq_view id)
{
    if (b->nsess >= b->stab_cap && table_grow(b))
        return NULL;
    /* One allocation with the identifier: idle sessions stay small. */
    mq_bsess *s = mq_calloc(&b->a, sizeof *s + id.len + 1);
    if (!s)
        return NULL;
    memcpy(s->id, id.p, id.len);
    s->id_len = (uint16_t)id.len;
    s->hash = id_hash(id);
    mq_outq_init(&s->q, b->o.max_inflight);
    s->q.max_queued = b->o.max_queued;
    s->q.max_queued_bytes = b->o.max_queued_bytes;
    uint32_t slot = s->hash & (b->stab_cap - 1);
    s->hnext = b->stab[slot];
    b->stab[slot] = s;
    b->nsess++;
    return s;
}

/* ---- offline list ---- */

static void offline_link(mqlite_broker *b, mq_bsess *s)
{
    if (s->on_offline)
        return;
    s->oprev = NULL;
    s->onext = b->offline;
    if (b->offline)
        b->offline->oprev = s;
    b->offline = s;
    s->on_offline = 1;
}

static void offline_unlink(mqlite_broker *b, mq_bsess *s)
{
    if (!s->on_offline)
        return;
    if (s->oprev)
        s->oprev->onext = s->onext;
    else
        b->offline = s->onext;
    if (s->onext)
        s->onext->oprev = s->oprev;
    s->onext = s->oprev = NULL;
    s->on_offline = 0;
}

static void session_free(mqlite_broker *b, mq_bsess *s)
{
    mq_router_remove_all(b, s);
    mq_outq_free(&s->q, &b->a);
    mq_inq_free(&s->inq, &b->a);
    mq_msg_unref(&b->a, s->will);
    mq_free(&b->a, s->username);
    mq_free(&b->a, s);
}

/* ---- wills ---- */

void mq_bsess_set_will(mqlite_broker *b, mq_bsess *s, mq_msg *will, uint32_t delay_s,
                       int has_expiry, uint32_t expiry_s)
{
    int had = s->will != NULL;
    mq_msg_unref(&b->a, s->will);
    s->will = will;
    s->will_delay_s = delay_s;
    s->will_has_expiry = (uint8_t)(has_expiry != 0);
    s->will_expiry_s = expiry_s;
    s->will_at_ms = 0;
    /* The file holds the will while the session has one, so that a
     * restart after a crash or a stop still sends it. */
    if (will)
        mq_persist_will_put(b, s);
    else if (had)
        mq_persist_will_del(b, s);
}

void mq_bsess_restore_will(mqlite_broker *b, mq_bsess *s, mq_msg *will, uint32_t delay_s,
                           int has_expiry, uint32_t expiry_s, int64_t left_ms)
{
    mq_msg_unref(&b->a, s->will);
    s->will = will;
    s->will_delay_s = delay_s;
    s->will_has_expiry = (uint8_t)(has_expiry != 0);
    s->will_expiry_s = expiry_s;
    /* Due now at the earliest: the first timer pass publishes it. */
    s->will_at_ms = b->now_ms + (uint64_t)(left_ms > 0 ? left_ms : 0);
    if (!s->will_at_ms)
        s->will_at_ms = 1;
    offline_link(b, s);
    mq_broker_wake_at(b, s->will_at_ms);
}

static void publish_will(mqlite_broker *b, mq_bsess *s)
{
    mq_msg *w = s->will;
    s->will = NULL;
    s->will_at_ms = 0;
    if (!w)
        return;
    mq_persist_will_del(b, s);
    /* MQTT 5.0 3.1.3.2.3: the Message Expiry Interval of a will runs from
     * its publication. */
    if (s->will_has_expiry)
        w->expiry_ms = b->now_ms + (uint64_t)s->will_expiry_s * 1000u;
    /* The ACL decides when the will is sent (as mosquitto 2.0 does). */
    if (!mq_auth_session_may_write(s, mq_msg_topic(w))) {
        b->st.acl_denied++;
        mq_blog(b, MQLITE_LOG_NOTICE, "ACL: denied will of \"%s\" (user \"%s\") to \"%.*s\"",
                s->id, s->username ? s->username : "", (int)w->topic_len, (const char *)w->data);
        mq_msg_unref(&b->a, w);
        return;
    }
    mq_blog(b, MQLITE_LOG_INFO, "publishing will of \"%s\" to \"%.*s\"", s->id,
            (int)w->topic_len, (const char *)w->data);
    mq_broker_publish(b, w, s);
    mq_msg_unref(&b->a, w);
}

/* ---- lifecycle ---- */

void mq_bsess_end(mqlite_broker *b, mq_bsess *s)
{
    /* MQTT 5.0 3.1.2.5: a pending will goes out when the session ends. */
    if (s->will)
        publish_will(b, s);
    offline_unlink(b, s);
    table_del(b, s);
    mq_persist_session_del(b, s);
    mq_blog(b, MQLITE_LOG_DEBUG, "session \"%s\" ended", s->id);
    session_free(b, s);
}

void mq_bsess_free_all(mqlite_broker *b)
{
    for (uint32_t i = 0; i < b->stab_cap; i++) {
        mq_bsess *s = b->stab[i];
        while (s) {
            mq_bsess *n = s->hnext;
            session_free(b, s);
            s = n;
        }
    }
    mq_free(&b->a, b->stab);
    b->stab = NULL;
    b->stab_cap = b->nsess = 0;
    b->offline = NULL;
}

void mq_bsess_assign_id(mqlite_broker *b, char *buf, size_t cap)
{
    /* MQTT 5.0 [MQTT-3.2.2-16]: new and not used by any other session. */
    do {
        uint64_t x = (b->started_ms << 20) ^ ++b->assign_seq ^ (uint64_t)(uintptr_t)b;
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 32;
        snprintf(buf, cap, "mqlite-%016llx", (unsigned long long)x);
    } while (mq_bsess_find(b, mq_view_cstr(buf)));
}

void mq_bsess_attach(mqlite_broker *b, mq_bsess *s, mq_conn *c)
{
    offline_unlink(b, s);
    s->conn = c;
    s->expire_at_ms = 0;
    /* MQTT 5.0 [MQTT-3.1.3-9]: reconnected within the Will Delay Interval. */
    if (s->will_at_ms)
        mq_bsess_set_will(b, s, NULL, 0, 0, 0);
    s->q.max_queued = b->o.max_queued;
    s->q.max_queued_bytes = b->o.max_queued_bytes;
}

void mq_bsess_detach(mqlite_broker *b, mq_bsess *s, int will)
{
    s->conn = NULL;
    if (!will)
        mq_bsess_set_will(b, s, NULL, 0, 0, 0);
    if (s->will && (s->will_delay_s == 0 || s->expiry_s == 0))
        publish_will(b, s);
    if (s->expiry_s == 0) {
        mq_bsess_end(b, s);
        return;
    }
    mq_persist_session_offline(b, s);
    if (s->will)
        s->will_at_ms = b->now_ms + (uint64_t)s->will_delay_s * 1000u;
    if (s->expiry_s != MQ_EXPIRY_NEVER)
        s->expire_at_ms = b->now_ms + (uint64_t)s->expiry_s * 1000u;
    if (s->will_at_ms || s->expire_at_ms) {
        offline_link(b, s);
        mq_broker_wake_at(b, s->will_at_ms);
        mq_broker_wake_at(b, s->expire_at_ms);
    }
}

void mq_bsess_restore_offline(mqlite_broker *b, mq_bsess *s, int64_t left_ms)
{
    if (left_ms < 0)
        return;
    s->expire_at_ms = b->now_ms + (uint64_t)left_ms;
    offline_link(b, s);
    mq_broker_wake_at(b, s->expire_at_ms);
}

void mq_bsess_drop(mqlite_broker *b, mq_bsess *s)
{
    offline_unlink(b, s);
    table_del(b, s);
    session_free(b, s);
}

void mq_bsess_tick(mqlite_broker *b)
{
    mq_bsess *s = b->offline;
    while (s) {
        mq_bsess *n = s->onext;
        if (s->will_at_ms && b->now_ms >= s->will_at_ms)
            publish_will(b, s);
        if (s->expire_at_ms && b->now_ms >= s->expire_at_ms) {
            mq_bsess_end(b, s);
        } else if (!s->will_at_ms && !s->expire_at_ms) {
            offline_unlink(b, s);
        } else {
            mq_broker_wake_at(b, s->will_at_ms);
            mq_broker_wake_at(b, s->expire_at_ms);
        }
        s = n;
    }
}

/* ---- delivery ---- */

static void flow_set_ids(mqlite_broker *b, mq_flow *f, const uint32_t *ids, uint32_t n)
{
    if (!n)
        return;
    if (n > 255)
        n = 255;
    f->subids = mq_malloc(&b->a, n * sizeof *ids);
    if (!f->subids)
        return;
    memcpy(f->subids, ids, n * sizeof *ids);
    f->nsubids = (uint8_t)n;
}

/* Slow client policy: 1 when the message is not to be delivered. */
static int over_backlog(mqlite_broker *b, mq_bsess *s, mq_conn *c, const mq_msg *m, uint8_t qos)
{
    if (!b->o.max_backlog_bytes ||
        mq_conn_backlog(c) + mq_msg_size(m) <= b->o.max_backlog_bytes)
        return 0;
    if (b->o.slow_policy == MQ_SLOW_DISCONNECT) {
        if (!c->slow)
            mq_blog(b, MQLITE_LOG_NOTICE, "client \"%s\" (%s) is too slow: %zu bytes wait for "
                    "it; disconnecting", s->id, c->peer, mq_conn_backlog(c));
        mq_conn_mark_slow(c);
        return qos == 0; /* QoS 1/2 stay with the session */
    }
    if (qos)
        return 0; /* bounded by max_queued_messages / _bytes */
    b->st.slow_dropped++;
    b->st.dropped++;
    return 1;
}

void mq_bsess_deliver(mqlite_broker *b, mq_bsess *s, mq_msg *m, uint8_t qos, uint8_t retain,
                      const uint32_t *ids, uint32_t nids)
{
    /* MQTT 5.0 [MQTT-3.3.2-5] */
    if (m->expiry_ms && b->now_ms >= m->expiry_ms)
        return;
    mq_conn *c = s->conn;
    if (!c && qos == 0)
        return;
    /* Read access is checked per message, retained and wills included. */
    if (!mq_auth_may_read(s, mq_msg_topic(m))) {
        mq_blog(b, MQLITE_LOG_DEBUG, "ACL: \"%s\" may not read \"%.*s\"", s->id,
                (int)m->topic_len, (const char *)m->data);
        return;
    }
    if (c && over_backlog(b, s, c, m, qos))
        return;
    if (c && qos == 0 && !s->q.queued.count && mq_conn_can_write(c)) {
        /* Too large for the client (5.0 [MQTT-3.1.2-25]) or no memory:
         * not sent, and counted. */
        if (mq_conn_put_publish(c, m, 0, 0, retain, 0, ids, nids))
            b->st.dropped++;
        return;
    }
    int err;
    mq_flow *f = mq_outq_push(&s->q, &b->a, m, qos, retain, 0, &err);
    if (!f) {
        b->st.dropped++;
        if (c && err == MQLITE_ERR_QUEUE_FULL && b->o.slow_policy == MQ_SLOW_DISCONNECT)
            mq_conn_mark_slow(c);
        mq_blog(b, MQLITE_LOG_DEBUG, "dropped a message for \"%s\": %s", s->id,
                mqlite_strerror(err));
        return;
    }
    flow_set_ids(b, f, ids, nids);
    mq_persist_flow_add(b, s, f);
    if (c)
        mq_conn_pump(c);
}
