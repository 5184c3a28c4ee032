/*
 * retain.c - retained messages by topic, matched against filters (see
 * retain.h for the rules kept here).
 */
#include "retain.h"

#include "session.h"
#include "trie.h"

/* Frame marker: emit this node and everything below it. */
#define ALL UINT32_MAX

int mq_retain_init(mqlite_broker *b)
{
    b->ret_root = mq_trie_root(&b->a);
    return b->ret_root ? 0 : MQLITE_ERR_NOMEM;
}

static void free_msg(void *ctx, void *v)
{
    mq_msg_unref(ctx, v);
}

void mq_retain_free(mqlite_broker *b)
{
    mq_trie_free(&b->a, b->ret_root, free_msg, &b->a);
    b->ret_root = NULL;
    b->nretained = b->nret_expiring = 0;
}

static void drop_msg(mqlite_broker *b, mq_tnode *n)
{
    mq_msg *old = n->val;
    if (old->expiry_ms)
        b->nret_expiring--;
    mq_msg_unref(&b->a, old);
    n->val = NULL;
    b->nretained--;
}

static int clear(mqlite_broker *b, const mq_levels *lv)
{
    mq_tnode *n = b->ret_root;
    for (uint32_t i = 0; n && i < lv->n; i++)
        n = mq_trie_find(n, &lv->v[i]);
    if (n && n->val) {
        drop_msg(b, n);
        mq_trie_prune(&b->a, n);
    }
    return 0;
}

static int set(mqlite_broker *b, const mq_levels *lv, mq_msg *m)
{
    mq_tnode *n = b->ret_root;
    for (uint32_t i = 0; i < lv->n; i++) {
        mq_tnode *k = mq_trie_child(&b->a, n, &lv->v[i]);
        if (!k) {
            mq_trie_prune(&b->a, n);
            return MQLITE_ERR_NOMEM;
        }
        n = k;
    }
    if (n->val)
        drop_msg(b, n);
    n->val = mq_msg_ref(m);
    b->nretained++;
    if (m->expiry_ms) {
        b->nret_expiring++;
        if (!b->ret_next_ms || m->expiry_ms < b->ret_next_ms)
            b->ret_next_ms = m->expiry_ms;
        mq_broker_wake_at(b, m->expiry_ms);
    }
    return 0;
}

int mq_retain_store(mqlite_broker *b, mq_msg *m)
{
    mq_levels lv;
    if (mq_levels_split(&lv, &b->a, mq_msg_topic(m)))
        return MQLITE_ERR_NOMEM;
    /* MQTT 3.1.1 [MQTT-3.3.1-10], [MQTT-3.3.1-11]; 5.0 [MQTT-3.3.1-6],
     * [MQTT-3.3.1-7]: an empty payload clears and is not stored. */
    int rc = m->payload_len ? set(b, &lv, m) : clear(b, &lv);
    mq_levels_free(&lv, &b->a);
    return rc;
}

static void emit(mqlite_broker *b, mq_bsess *s, const mq_tnode *n, uint8_t qos, uint32_t subid)
{
    mq_msg *m = n->val;
    if (!m || (m->expiry_ms && b->now_ms >= m->expiry_ms))
        return;
    /* MQTT 3.1.1 [MQTT-3.3.1-8]: RETAIN 1 for messages sent because of a new
     * subscription; 5.0 [MQTT-3.8.4-8]: at the lower of the two QoS. */
    mq_bsess_deliver(b, s, m, m->qos < qos ? m->qos : qos, 1, &subid, subid ? 1 : 0);
}

static int push(mqlite_broker *b, uint32_t *sp, mq_tnode *n, uint32_t i)
{
    if (mq_stack_reserve(&b->a, &b->stack, &b->stack_cap, *sp + 2))
        return MQLITE_ERR_NOMEM;
    b->stack[(*sp)++] = n;
    b->stack[(*sp)++] = (void *)(uintptr_t)i;
    return 0;
}

/* Push every literal child of n; at the root, not the "$..." ones
 * (3.1.1 and 5.0 [MQTT-4.7.2-1]). */
static int push_kids(mqlite_broker *b, uint32_t *sp, mq_tnode *n, uint32_t i, int root)
{
    for (uint32_t k = 0; k < n->kcap; k++) {
        mq_tnode *c = n->kids[k];
        if (!c || (root && c->len && c->name[0] == '$'))
            continue;
        if (push(b, sp, c, i))
            return MQLITE_ERR_NOMEM;
    }
    return 0;
}

static int is_level(const mq_level *lv, char c)
{
    return lv->len == 1 && lv->p[0] == (uint8_t)c;
}

static int walk(mqlite_broker *b, mq_bsess *s, const mq_levels *f, uint8_t qos, uint32_t subid)
{
    uint32_t sp = 0;
    int rc = push(b, &sp, b->ret_root, 0);
    while (!rc && sp) {
        uint32_t i = (uint32_t)(uintptr_t)b->stack[--sp];
        mq_tnode *n = b->stack[--sp];
        if (i == ALL || i == f->n) {
            emit(b, s, n, qos, subid);
            if (i == ALL)
                rc = push_kids(b, &sp, n, ALL, 0);
        } else if (is_level(&f->v[i], '#')) {
            /* "a/#" also matches "a" (5.0 4.7.1.2). */
            if (i > 0)
                emit(b, s, n, qos, subid);
            rc = push_kids(b, &sp, n, ALL, i == 0);
        } else if (is_level(&f->v[i], '+')) {
            rc = push_kids(b, &sp, n, i + 1, i == 0);
        } else {
            mq_tnode *k = mq_trie_find(n, &f->v[i]);
            if (k)
                rc = push(b, &sp, k, i + 1);
        }
    }
    return rc;
}

int mq_retain_send(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t qos, uint32_t subid)
{
    if (!b->nretained)
        return 0;
    mq_levels f;
    if (mq_levels_split(&f, &b->a, filter))
        return MQLITE_ERR_NOMEM;
    int rc = walk(b, s, &f, qos, subid);
    mq_levels_free(&f, &b->a);
    return rc;
}

void mq_retain_sweep(mqlite_broker *b)
{
    if (!b->nret_expiring || b->now_ms < b->ret_next_ms) {
        mq_broker_wake_at(b, b->nret_expiring ? b->ret_next_ms : 0);
        return;
    }
    b->ret_next_ms = 0;
    /* Collect first, prune after: pruning frees nodes the walk would visit. */
    mq_tnode **dead = NULL;
    uint32_t ndead = 0, cap = 0, sp = 0;
    int rc = push(b, &sp, b->ret_root, ALL);
    while (!rc && sp) {
        sp--;
        mq_tnode *n = b->stack[--sp];
        mq_msg *m = n->val;
        if (m && m->expiry_ms && b->now_ms >= m->expiry_ms) {
            if (ndead == cap) {
                uint32_t c = cap ? cap * 2 : 16;
                mq_tnode **p = mq_realloc(&b->a, dead, c * sizeof *p);
                if (!p)
                    break;
                dead = p;
                cap = c;
            }
            dead[ndead++] = n;
        } else if (m && m->expiry_ms && (!b->ret_next_ms || m->expiry_ms < b->ret_next_ms)) {
            b->ret_next_ms = m->expiry_ms;
        }
        rc = push_kids(b, &sp, n, ALL, 0);
    }
    for (uint32_t i = 0; i < ndead; i++) {
        drop_msg(b, dead[i]);
        mq_trie_prune(&b->a, dead[i]);
    }
    mq_free(&b->a, dead);
    mq_broker_wake_at(b, b->ret_next_ms);
}
