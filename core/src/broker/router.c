/*
 * router.c - subscriptions in a topic-level trie, and matching a published
 * topic against them (see router.h for the rules).
 */
#include "router.h"

#include "log.h"
#include "session.h"
#include "topic.h"
#include "trie.h"

/* What a trie node of the router holds. */
typedef struct rval {
    mq_bsub **subs;     /* non-shared subscriptions */
    uint32_t n, cap;
    mq_sgroup *groups;  /* shared subscription groups on this filter */
} rval;

struct mq_sgroup {
    mq_sgroup *next;
    mq_bsub **m;
    uint32_t n, cap;
    uint32_t rr;        /* next member to try */
    uint32_t nlen;
    char name[];
};

int mq_router_init(mqlite_broker *b)
{
    b->subs_root = mq_trie_root(&b->a);
    return b->subs_root ? 0 : MQLITE_ERR_NOMEM;
}

static void free_rval(void *ctx, void *v)
{
    const mq_alloc *a = ctx;
    rval *r = v;
    mq_sgroup *g = r->groups;
    while (g) {
        mq_sgroup *n = g->next;
        mq_free(a, g->m);
        mq_free(a, g);
        g = n;
    }
    mq_free(a, r->subs);
    mq_free(a, r);
}

void mq_router_free(mqlite_broker *b)
{
    /* Sessions free their mq_bsub records; only the index is left here. */
    mq_trie_free(&b->a, b->subs_root, free_rval, &b->a);
    b->subs_root = NULL;
    mq_free(&b->a, b->matches);
    mq_free(&b->a, b->subid_nodes);
    mq_free(&b->a, b->ids_tmp);
    b->matches = NULL;
    b->subid_nodes = NULL;
    b->ids_tmp = NULL;
}

/* ---- pointer arrays ---- */

static int arr_push(const mq_alloc *a, mq_bsub ***arr, uint32_t *n, uint32_t *cap, mq_bsub *x)
{
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 4;
        mq_bsub **p = mq_realloc(a, *arr, (size_t)c * sizeof *p);
        if (!p)
            return MQLITE_ERR_NOMEM;
        *arr = p;
        *cap = c;
    }
    x->idx = *n;
    (*arr)[(*n)++] = x;
    return 0;
}

/* Swap-remove x; the moved entry learns its new index. */
static void arr_del(mq_bsub **arr, uint32_t *n, mq_bsub *x)
{
    uint32_t i = x->idx;
    arr[i] = arr[--*n];
    arr[i]->idx = i;
}

/* ---- session's own list ---- */

static mq_bsub *find_own(const mq_bsess *s, mq_view filter)
{
    for (uint32_t i = 0; i < s->nsubs; i++) {
        mq_bsub *x = s->subs[i];
        if (x->flen == filter.len && memcmp(x->filter, filter.p, filter.len) == 0)
            return x;
    }
    return NULL;
}

static int own_push(mqlite_broker *b, mq_bsess *s, mq_bsub *x)
{
    if (s->nsubs == s->subcap) {
        uint32_t c = s->subcap ? s->subcap * 2 : 4;
        mq_bsub **p = mq_realloc(&b->a, s->subs, (size_t)c * sizeof *p);
        if (!p)
            return MQLITE_ERR_NOMEM;
        s->subs = p;
        s->subcap = c;
    }
    s->subs[s->nsubs++] = x;
    return 0;
}

static void own_del(mq_bsess *s, mq_bsub *x)
{
    for (uint32_t i = 0; i < s->nsubs; i++) {
        if (s->subs[i] == x) {
            s->subs[i] = s->subs[--s->nsubs];
            return;
        }
    }
}

/* ---- index ---- */

static mq_sgroup *group_get(mqlite_broker *b, rval *r, mq_view name)
{
    for (mq_sgroup *g = r->groups; g; g = g->next)
        if (g->nlen == name.len && memcmp(g->name, name.p, name.len) == 0)
            return g;
    mq_sgroup *g = mq_calloc(&b->a, sizeof *g + name.len + 1);
    if (!g)
        return NULL;
    memcpy(g->name, name.p, name.len);
    g->nlen = name.len;
    g->next = r->groups;
    r->groups = g;
    return g;
}

static void group_drop_if_empty(mqlite_broker *b, rval *r, mq_sgroup *g)
{
    if (g->n)
        return;
    for (mq_sgroup **pp = &r->groups; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    mq_free(&b->a, g->m);
    mq_free(&b->a, g);
}

/* Take x out of the trie; frees what became empty. */
static void index_del(mqlite_broker *b, mq_bsub *x)
{
    mq_tnode *node = x->node;
    rval *r = node->val;
    if (x->group) {
        arr_del(x->group->m, &x->group->n, x);
        group_drop_if_empty(b, r, x->group);
    } else {
        arr_del(r->subs, &r->n, x);
    }
    if (r->n == 0 && !r->groups) {
        free_rval(&b->a, r);
        node->val = NULL;
        mq_trie_prune(&b->a, node);
    }
}

/* Node for `filter` (without "$share/g/"), created on the way. */
static mq_tnode *node_for(mqlite_broker *b, mq_view filter)
{
    mq_levels lv;
    if (mq_levels_split(&lv, &b->a, filter))
        return NULL;
    mq_tnode *n = b->subs_root;
    for (uint32_t i = 0; n && i < lv.n; i++) {
        mq_tnode *k = mq_trie_child(&b->a, n, &lv.v[i]);
        if (!k)
            mq_trie_prune(&b->a, n);
        n = k;
    }
    mq_levels_free(&lv, &b->a);
    if (n && !n->val) {
        n->val = mq_calloc(&b->a, sizeof(rval));
        if (!n->val) {
            mq_trie_prune(&b->a, n);
            return NULL;
        }
    }
    return n;
}

static int index_add(mqlite_broker *b, mq_bsub *x, mq_view group, mq_view filter, int shared)
{
    mq_tnode *n = node_for(b, filter);
    if (!n)
        return MQLITE_ERR_NOMEM;
    rval *r = n->val;
    x->node = n;
    int rc;
    if (shared) {
        mq_sgroup *g = group_get(b, r, group);
        rc = g ? arr_push(&b->a, &g->m, &g->n, &g->cap, x) : MQLITE_ERR_NOMEM;
        if (g && rc)
            group_drop_if_empty(b, r, g);
        x->group = rc ? NULL : g;
    } else {
        rc = arr_push(&b->a, &r->subs, &r->n, &r->cap, x);
    }
    if (rc && r->n == 0 && !r->groups) {
        free_rval(&b->a, r);
        n->val = NULL;
        mq_trie_prune(&b->a, n);
    }
    return rc;
}

int mq_router_subscribe(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t opts,
                        uint32_t subid, int *existed)
{
    mq_bsub *x = find_own(s, filter);
    *existed = x != NULL;
    if (x) {
        /* MQTT 3.1.1 and 5.0 [MQTT-3.8.4-3]: replace, keep its place. */
        x->opts = opts;
        x->subid = subid;
        return 0;
    }
    mq_view group = {0}, f;
    int shared = mq_topic_split_shared(filter, &group, &f);
    if (shared < 0)
        return MQLITE_ERR_TOPIC_FILTER;
    x = mq_calloc(&b->a, sizeof *x + filter.len + 1);
    if (!x)
        return MQLITE_ERR_NOMEM;
    x->s = s;
    x->opts = opts;
    x->subid = subid;
    x->flen = (uint16_t)filter.len;
    memcpy(x->filter, filter.p, filter.len);
    int rc = own_push(b, s, x);
    if (!rc) {
        rc = index_add(b, x, group, f, shared);
        if (rc)
            s->nsubs--;
    }
    if (rc) {
        mq_free(&b->a, x);
        return rc;
    }
    b->st.subscriptions++;
    return 0;
}

static void sub_free(mqlite_broker *b, mq_bsub *x)
{
    index_del(b, x);
    mq_free(&b->a, x);
    b->st.subscriptions--;
}

int mq_router_unsubscribe(mqlite_broker *b, mq_bsess *s, mq_view filter)
{
    mq_bsub *x = find_own(s, filter);
    if (!x)
        return 0;
    own_del(s, x);
    sub_free(b, x);
    return 1;
}

void mq_router_remove_all(mqlite_broker *b, mq_bsess *s)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        sub_free(b, s->subs[i]);
    mq_free(&b->a, s->subs);
    s->subs = NULL;
    s->nsubs = s->subcap = 0;
}

/* ---- matching ---- */

static int match_slot(mqlite_broker *b, mq_bmatch **out)
{
    if (b->nmatches == b->matches_cap) {
        uint32_t c = b->matches_cap ? b->matches_cap * 2 : 16;
        mq_bmatch *p = mq_realloc(&b->a, b->matches, (size_t)c * sizeof *p);
        if (!p)
            return MQLITE_ERR_NOMEM;
        b->matches = p;
        b->matches_cap = c;
    }
    *out = &b->matches[b->nmatches++];
    return 0;
}

static void add_subid(mqlite_broker *b, mq_bmatch *m, uint32_t id)
{
    if (!id)
        return;
    if (b->nsubid_nodes == b->subid_nodes_cap) {
        uint32_t c = b->subid_nodes_cap ? b->subid_nodes_cap * 2 : 16;
        mq_subid_node *p = mq_realloc(&b->a, b->subid_nodes, (size_t)c * sizeof *p);
        if (!p)
            return; /* the delivery goes out without this identifier */
        b->subid_nodes = p;
        b->subid_nodes_cap = c;
    }
    mq_subid_node *sn = &b->subid_nodes[b->nsubid_nodes];
    sn->id = id;
    sn->next = m->subid_head;
    m->subid_head = (int32_t)b->nsubid_nodes++;
}

/* One subscription matched: merge per session (no gen check for shared). */
static void add_match(mqlite_broker *b, mq_bsub *x, const mq_bsess *from, int shared)
{
    mq_bsess *s = x->s;
    /* MQTT 5.0 [MQTT-3.8.3-3] */
    if ((x->opts & MQ_SUB_NO_LOCAL) && s == from)
        return;
    uint8_t qos = x->opts & MQ_SUB_QOS, rap = (x->opts & MQ_SUB_RAP) != 0;
    mq_bmatch *m;
    if (!shared && s->match_gen == b->match_gen) {
        m = &b->matches[s->match_idx];
        if (qos > m->qos)
            m->qos = qos;
        m->rap |= rap;
        add_subid(b, m, x->subid);
        return;
    }
    if (match_slot(b, &m)) {
        /* Out of memory: this session misses the message. Say so, as every
         * other delivery failure does (it used to vanish without a trace:
         * tests/c/test_alloc_fail.c). */
        b->st.dropped++;
        mq_blog(b, MQLITE_LOG_WARNING, "out of memory: a message to \"%s\" was not delivered",
                s->id);
        return;
    }
    if (!shared) {
        s->match_gen = b->match_gen;
        s->match_idx = b->nmatches - 1;
    }
    m->s = s;
    m->qos = qos;
    m->rap = rap;
    m->subid_head = -1;
    add_subid(b, m, x->subid);
}

/* MQTT 5.0 4.8.2: one member per group, round-robin, connected members
 * first; with none connected, the next member's session queues it. */
static mq_bsub *pick_member(mq_sgroup *g)
{
    if (!g->n)
        return NULL;
    uint32_t pick = g->rr % g->n;
    for (uint32_t k = 0; k < g->n; k++) {
        uint32_t i = (g->rr + k) % g->n;
        if (g->m[i]->s->conn) {
            pick = i;
            break;
        }
    }
    g->rr = pick + 1;
    return g->m[pick];
}

static void collect(mqlite_broker *b, const mq_tnode *n, const mq_bsess *from)
{
    const rval *r = n->val;
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        add_match(b, r->subs[i], from, 0);
    for (mq_sgroup *g = r->groups; g; g = g->next) {
        mq_bsub *x = pick_member(g);
        if (x)
            add_match(b, x, from, 1);
    }
}

static int walk(mqlite_broker *b, const mq_levels *lv, int dollar, const mq_bsess *from)
{
    /* Frames of two slots: node, level index. */
    uint32_t sp = 0;
    if (mq_stack_reserve(&b->a, &b->stack, &b->stack_cap, 2))
        return MQLITE_ERR_NOMEM;
    b->stack[sp++] = b->subs_root;
    b->stack[sp++] = (void *)(uintptr_t)0;
    while (sp) {
        uint32_t i = (uint32_t)(uintptr_t)b->stack[--sp];
        mq_tnode *n = b->stack[--sp];
        /* MQTT 3.1.1 and 5.0 [MQTT-4.7.2-1] */
        int wild_ok = !(dollar && i == 0);
        if (n->hash && wild_ok)
            collect(b, n->hash, from);
        if (i == lv->n) {
            collect(b, n, from);
            continue;
        }
        if (mq_stack_reserve(&b->a, &b->stack, &b->stack_cap, sp + 4))
            return MQLITE_ERR_NOMEM;
        mq_tnode *k = mq_trie_find(n, &lv->v[i]);
        if (k) {
            b->stack[sp++] = k;
            b->stack[sp++] = (void *)(uintptr_t)(i + 1);
        }
        if (n->plus && wild_ok) {
            b->stack[sp++] = n->plus;
            b->stack[sp++] = (void *)(uintptr_t)(i + 1);
        }
    }
    return 0;
}

/* The subscription ids of match m, in b->ids_tmp; returns the count. */
static uint32_t gather_ids(mqlite_broker *b, const mq_bmatch *m)
{
    uint32_t n = 0;
    for (int32_t i = m->subid_head; i >= 0; i = b->subid_nodes[i].next) {
        if (n == b->ids_cap) {
            uint32_t c = b->ids_cap ? b->ids_cap * 2 : 8;
            uint32_t *p = mq_realloc(&b->a, b->ids_tmp, (size_t)c * sizeof *p);
            if (!p)
                break;
            b->ids_tmp = p;
            b->ids_cap = c;
        }
        b->ids_tmp[n++] = b->subid_nodes[i].id;
    }
    return n;
}

int mq_router_publish(mqlite_broker *b, mq_msg *m, const mq_bsess *from)
{
    mq_view topic = mq_msg_topic(m);
    mq_levels lv;
    if (mq_levels_split(&lv, &b->a, topic))
        return MQLITE_ERR_NOMEM;
    if (++b->match_gen == 0)
        b->match_gen = 1;
    b->nmatches = 0;
    b->nsubid_nodes = 0;
    b->routing = 1;
    int rc = walk(b, &lv, topic.len && topic.p[0] == '$', from);
    mq_levels_free(&lv, &b->a);
    uint32_t n = b->nmatches;
    for (uint32_t i = 0; i < n; i++) {
        const mq_bmatch *x = &b->matches[i];
        /* MQTT 5.0 [MQTT-3.8.4-8] / 3.1.1 [MQTT-3.8.4-6]: the lower QoS. */
        uint8_t qos = m->qos < x->qos ? m->qos : x->qos;
        /* MQTT 5.0 [MQTT-3.3.1-12], [MQTT-3.3.1-13]; 3.1.1 [MQTT-3.3.1-9] */
        uint8_t retain = x->rap ? m->retain : 0;
        uint32_t nids = gather_ids(b, x);
        mq_bsess_deliver(b, x->s, m, qos, retain, b->ids_tmp, nids);
    }
    b->routing = 0;
    return rc ? rc : (int)n;
}
