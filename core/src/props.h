/*
 * props.h - MQTT 5.0 properties (section 2.2.2): the table of identifiers,
 * validation of a received property block, iteration, and building.
 *
 * Inside mqlite a property block is kept in its wire form (the bytes after
 * the Property Length). Decoding validates it once and then reads it in
 * place: nothing is copied or allocated.
 */
#ifndef MQ_PROPS_H
#define MQ_PROPS_H

#include "common.h"

/* Context a property block appears in: a packet type (1..15) or the Will
 * Properties of CONNECT. */
#define MQ_PCTX_WILL 0

typedef struct mq_prop {
    uint8_t id;
    uint8_t type;   /* MQLITE_PTYPE_* */
    uint32_t num;   /* integer types */
    mq_view val;    /* string / binary / pair value */
    mq_view key;    /* pair key */
} mq_prop;

/* Data type of property id, or 0 when unknown. */
MQ_HIDDEN int mq_prop_type(unsigned id);
/* 1 if property id may appear in context ctx (MQ_PCTX_WILL or a packet type). */
MQ_HIDDEN int mq_prop_allowed(unsigned id, int ctx);

/*
 * mq_props_validate - check a whole block received in context ctx:
 * identifiers known (MQLITE_ERR_PROPERTY_ID) and allowed there
 * (MQLITE_ERR_PROPERTY_PACKET), values well-formed for their type
 * (MQLITE_ERR_TRUNCATED, MQLITE_ERR_PROPERTY_TYPE, MQLITE_ERR_UTF8*), no
 * forbidden duplicates (MQLITE_ERR_PROPERTY_DUPLICATE) and values within
 * what the spec allows (MQLITE_ERR_PROPERTY_VALUE). On error *bad_id gets the
 * offending property id (0 if none).
 */
MQ_HIDDEN int mq_props_validate(mq_view block, int ctx, int strict, unsigned *bad_id);

/* Iterate a validated block: returns 1 and fills *out, or 0 at the end.
 * *off starts at 0. */
MQ_HIDDEN int mq_props_next(mq_view block, uint32_t *off, mq_prop *out);

/* Find the first property `id`; 1 if found (then *out is set), else 0. */
MQ_HIDDEN int mq_props_get(mq_view block, unsigned id, mq_prop *out);
/* Integer property value or `def` when absent. */
MQ_HIDDEN uint32_t mq_props_u32(mq_view block, unsigned id, uint32_t def);

/* Append one property in wire form to b. Value checks as mqlite_props_add_*;
 * `block` duplicates are checked against what b already holds. */
MQ_HIDDEN int mq_props_put_int(mq_buf *b, const mq_alloc *a, unsigned id, uint32_t v);
MQ_HIDDEN int mq_props_put_bytes(mq_buf *b, const mq_alloc *a, unsigned id, mq_view v);
MQ_HIDDEN int mq_props_put_pair(mq_buf *b, const mq_alloc *a, mq_view key, mq_view val);

/* Wire size of a property block including its Property Length VBI. */
static inline size_t mq_props_wire_size(uint32_t block_len)
{
    return mq_vbi_size(block_len) + block_len;
}

/* ---- the public list object, embeddable in packets and events ---- */

typedef struct mq_pent {
    uint8_t id;
    uint8_t type;
    uint32_t num;
    uint32_t key_off, key_len; /* into text */
    uint32_t val_off, val_len;
} mq_pent;

struct mqlite_props {
    uint32_t magic;
    uint8_t embedded; /* owned by a packet or event: mqlite_props_free ignores it */
    mq_alloc a;
    mq_buf wire;      /* the property block in wire form */
    mq_buf text;      /* NUL-terminated copies of keys and values */
    mq_pent *ents;
    int32_t n, cap;
};

MQ_HIDDEN void mq_plist_init(mqlite_props *pr, const mq_alloc *a, int embedded);
MQ_HIDDEN void mq_plist_clear(mqlite_props *pr);
/* Replace the list with a copy of a validated wire block; 0 or NOMEM (then
 * the list is unchanged). */
MQ_HIDDEN int mq_plist_assign(mqlite_props *pr, mq_view block);
/* The list's wire form (empty view for NULL). */
MQ_HIDDEN mq_view mq_props_list_wire(const mqlite_props *pr);

#endif
