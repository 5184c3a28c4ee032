/*
 * trie.h - a tree of topic levels shared by the subscription index
 * (router.c) and the retained store (retain.c).
 *
 * Each node is one level ("a" in "a/b"); its literal children sit in an
 * open-addressing hash table, and the wildcard children "+" and "#" have
 * their own pointers so that matching never hashes them. A node carries one
 * owner value (`val`); a node without value and without children is pruned.
 * Walks are iterative (an explicit stack) so that a topic of thousands of
 * levels cannot exhaust the C stack.
 */
#ifndef MQ_BROKER_TRIE_H
#define MQ_BROKER_TRIE_H

#include "common.h"

typedef struct mq_tnode mq_tnode;

struct mq_tnode {
    struct mq_tnode *parent;
    struct mq_tnode *plus, *hash; /* "+" and "#" children */
    struct mq_tnode **kids;       /* literal children, open addressing */
    uint32_t nkids, kcap;
    void *val;                    /* owner's value; NULL = none */
    uint32_t h;                   /* hash of name */
    uint32_t len;
    char name[];
};

/* One level of a topic or filter, as a view with its hash. */
typedef struct mq_level {
    const uint8_t *p;
    uint32_t len;
    uint32_t h;
} mq_level;

/* Levels of a topic/filter. Up to MQ_LEVELS_INLINE without allocation. */
#define MQ_LEVELS_INLINE 32
typedef struct mq_levels {
    mq_level *v;
    uint32_t n;
    mq_level inl[MQ_LEVELS_INLINE];
} mq_levels;

MQ_HIDDEN uint32_t mq_trie_hash(const uint8_t *p, uint32_t len);

/* Split t at '/'. 0 or MQLITE_ERR_NOMEM; free with mq_levels_free. */
MQ_HIDDEN int mq_levels_split(mq_levels *l, const mq_alloc *a, mq_view t);
MQ_HIDDEN void mq_levels_free(mq_levels *l, const mq_alloc *a);

/* A root node (empty name), or NULL on OOM. */
MQ_HIDDEN mq_tnode *mq_trie_root(const mq_alloc *a);

/* The literal child `lv` of n, or NULL. */
MQ_HIDDEN mq_tnode *mq_trie_find(const mq_tnode *n, const mq_level *lv);

/* The child `lv` of n ("+" and "#" go to their own slots), created when
 * missing. NULL on OOM (n unchanged). */
MQ_HIDDEN mq_tnode *mq_trie_child(const mq_alloc *a, mq_tnode *n, const mq_level *lv);

/* Free n and then each ancestor that has no value and no children left
 * (never the root). */
MQ_HIDDEN void mq_trie_prune(const mq_alloc *a, mq_tnode *n);

/* Free a whole tree; free_val(ctx, val) is called for each value. */
MQ_HIDDEN void mq_trie_free(const mq_alloc *a, mq_tnode *root, void (*free_val)(void *, void *),
                            void *ctx);

/* A growable stack of pointers for walks. 0 or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_stack_reserve(const mq_alloc *a, void ***stack, uint32_t *cap, uint32_t need);

#endif
