/*
 * trie.c - the topic-level tree under the router and the retained store.
 */
#include "trie.h"

uint32_t mq_trie_hash(const uint8_t *p, uint32_t len)
{
    /* FNV-1a: levels are short; this is cheap and spreads well enough. */
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int mq_levels_split(mq_levels *l, const mq_alloc *a, mq_view t)
{
    uint32_t n = 1;
    for (uint32_t i = 0; i < t.len; i++)
        n += t.p[i] == '/';
    l->v = l->inl;
    l->n = n;
    if (n > MQ_LEVELS_INLINE) {
        l->v = mq_malloc(a, (size_t)n * sizeof *l->v);
        if (!l->v) {
            l->v = l->inl;
            l->n = 0;
            return MQLITE_ERR_NOMEM;
        }
    }
    uint32_t k = 0, start = 0;
    for (uint32_t i = 0; i <= t.len; i++) {
        if (i == t.len || t.p[i] == '/') {
            mq_level *lv = &l->v[k++];
            lv->p = t.p + start;
            lv->len = i - start;
            lv->h = mq_trie_hash(lv->p, lv->len);
            start = i + 1;
        }
    }
    return 0;
}

void mq_levels_free(mq_levels *l, const mq_alloc *a)
{
    if (l->v != l->inl)
        mq_free(a, l->v);
    l->v = l->inl;
    l->n = 0;
}

static mq_tnode *node_new(const mq_alloc *a, const uint8_t *name, uint32_t len, uint32_t h)
{
    mq_tnode *n = mq_calloc(a, sizeof *n + len + 1);
    if (!n)
        return NULL;
    n->h = h;
    n->len = len;
    if (len)
        memcpy(n->name, name, len);
    return n;
}

mq_tnode *mq_trie_root(const mq_alloc *a)
{
    return node_new(a, NULL, 0, 0);
}

static int is_level(const mq_level *lv, char c)
{
    return lv->len == 1 && lv->p[0] == (uint8_t)c;
}

mq_tnode *mq_trie_find(const mq_tnode *n, const mq_level *lv)
{
    if (!n->kcap)
        return NULL;
    uint32_t mask = n->kcap - 1;
    for (uint32_t i = lv->h & mask;; i = (i + 1) & mask) {
        mq_tnode *k = n->kids[i];
        if (!k)
            return NULL;
        if (k->h == lv->h && k->len == lv->len && memcmp(k->name, lv->p, lv->len) == 0)
            return k;
    }
}

static void slot_put(mq_tnode **kids, uint32_t cap, mq_tnode *k)
{
    uint32_t i = k->h & (cap - 1);
    while (kids[i])
        i = (i + 1) & (cap - 1);
    kids[i] = k;
}

static int kids_grow(const mq_alloc *a, mq_tnode *n)
{
    uint32_t cap = n->kcap ? n->kcap * 2 : 4;
    mq_tnode **kids = mq_calloc(a, cap * sizeof *kids);
    if (!kids)
        return MQLITE_ERR_NOMEM;
    for (uint32_t i = 0; i < n->kcap; i++)
        if (n->kids[i])
            slot_put(kids, cap, n->kids[i]);
    mq_free(a, n->kids);
    n->kids = kids;
    n->kcap = cap;
    return 0;
}

mq_tnode *mq_trie_child(const mq_alloc *a, mq_tnode *n, const mq_level *lv)
{
    mq_tnode **wild = is_level(lv, '+') ? &n->plus : is_level(lv, '#') ? &n->hash : NULL;
    if (wild && *wild)
        return *wild;
    if (!wild) {
        mq_tnode *k = mq_trie_find(n, lv);
        if (k)
            return k;
        /* Keep the load under 3/4. */
        if ((n->nkids + 1) * 4 > n->kcap * 3 && kids_grow(a, n))
            return NULL;
    }
    mq_tnode *k = node_new(a, lv->p, lv->len, lv->h);
    if (!k)
        return NULL;
    k->parent = n;
    if (wild) {
        *wild = k;
    } else {
        slot_put(n->kids, n->kcap, k);
        n->nkids++;
    }
    return k;
}

/* Remove k from its parent's table (linear probing, backward shift). */
static void unlink_kid(mq_tnode *n, mq_tnode *k)
{
    if (n->plus == k) {
        n->plus = NULL;
        return;
    }
    if (n->hash == k) {
        n->hash = NULL;
        return;
    }
    uint32_t mask = n->kcap - 1, i = k->h & mask;
    while (n->kids[i] != k)
        i = (i + 1) & mask;
    n->kids[i] = NULL;
    n->nkids--;
    for (uint32_t j = (i + 1) & mask; n->kids[j]; j = (j + 1) & mask) {
        uint32_t home = n->kids[j]->h & mask;
        /* The entry at j may move to the hole at i unless its home lies
         * cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            n->kids[i] = n->kids[j];
            n->kids[j] = NULL;
            i = j;
        }
    }
}

static int node_empty(const mq_tnode *n)
{
    return !n->val && !n->nkids && !n->plus && !n->hash;
}

void mq_trie_prune(const mq_alloc *a, mq_tnode *n)
{
    while (n && n->parent && node_empty(n)) {
        mq_tnode *p = n->parent;
        unlink_kid(p, n);
        mq_free(a, n->kids);
        mq_free(a, n);
        n = p;
    }
}

int mq_stack_reserve(const mq_alloc *a, void ***stack, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return 0;
    uint32_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void **s = mq_realloc(a, *stack, (size_t)c * sizeof *s);
    if (!s)
        return MQLITE_ERR_NOMEM;
    *stack = s;
    *cap = c;
    return 0;
}

void mq_trie_free(const mq_alloc *a, mq_tnode *root, void (*free_val)(void *, void *), void *ctx)
{
    /* The parent pointers are not needed any more: they become the links
     * of a to-do list, so freeing needs no memory and no recursion. */
    if (!root)
        return;
    root->parent = NULL;
    mq_tnode *todo = root;
    while (todo) {
        mq_tnode *n = todo;
        todo = n->parent;
        mq_tnode *wild[2] = {n->plus, n->hash};
        for (int i = 0; i < 2; i++) {
            if (wild[i]) {
                wild[i]->parent = todo;
                todo = wild[i];
            }
        }
        for (uint32_t i = 0; i < n->kcap; i++) {
            if (n->kids[i]) {
                n->kids[i]->parent = todo;
                todo = n->kids[i];
            }
        }
        if (n->val && free_val)
            free_val(ctx, n->val);
        mq_free(a, n->kids);
        mq_free(a, n);
    }
}
