/*
 * inflight.h - the QoS machinery both ends of a connection share: messages,
 * packet identifiers, the outgoing window and queue, and the incoming QoS 2
 * set. Used by the client session (session.c) and by the broker's
 * per-client sessions (broker/), so that both keep MQTT's delivery rules
 * with the same code:
 *
 *  - packet identifiers 1..65535, never reusing one still in use
 *    (3.1.1 [MQTT-2.3.1-2], 5.0 [MQTT-2.2.1-3], [MQTT-2.2.1-4]);
 *  - an outgoing window of at most `window` unacknowledged QoS 1/2 PUBLISH
 *    (5.0 Receive Maximum, [MQTT-3.3.4-7]); the rest waits in a bounded FIFO;
 *  - re-sending in the original order on session resume with DUP=1, PUBREL
 *    for flows past PUBREC (3.1.1 [MQTT-4.4.0-1], 5.0 [MQTT-4.4.0-1],
 *    [MQTT-4.6.0-1]);
 *  - incoming QoS 2 delivered once: the identifier is held from PUBLISH to
 *    PUBREL (5.0 [MQTT-4.3.3-9], 3.1.1 [MQTT-4.3.3-2] method B).
 *
 * Sans-I/O: nothing here encodes, sends or reads a clock.
 */
#ifndef MQ_INFLIGHT_H
#define MQ_INFLIGHT_H

#include "common.h"

/* ---- messages: immutable, reference counted, shared by fan-out ---- */

typedef struct mq_msg {
    uint32_t refs;
    uint8_t qos;          /* QoS it was published with */
    uint8_t retain;       /* RETAIN it was published with */
    uint8_t payload_format;
    uint32_t topic_len;
    uint32_t props_len;   /* 5.0 properties to forward (wire form) */
    uint32_t payload_len;
    uint64_t expiry_ms;   /* absolute time it expires, 0 = never */
    uint64_t seq;         /* owner-defined ordering number (broker, store) */
    uint8_t data[];       /* topic, props, payload */
} mq_msg;

/* A new message with refs = 1, or NULL on OOM. */
MQ_HIDDEN mq_msg *mq_msg_new(const mq_alloc *a, mq_view topic, mq_view props, mq_view payload,
                             uint8_t qos, uint8_t retain);
static inline mq_msg *mq_msg_ref(mq_msg *m)
{
    m->refs++;
    return m;
}
MQ_HIDDEN void mq_msg_unref(const mq_alloc *a, mq_msg *m);
static inline mq_view mq_msg_topic(const mq_msg *m)
{
    return mq_view_make(m->data, m->topic_len);
}
static inline mq_view mq_msg_props(const mq_msg *m)
{
    return mq_view_make(m->data + m->topic_len, m->props_len);
}
static inline mq_view mq_msg_payload(const mq_msg *m)
{
    return mq_view_make(m->data + m->topic_len + m->props_len, m->payload_len);
}
static inline size_t mq_msg_size(const mq_msg *m)
{
    return sizeof *m + m->topic_len + m->props_len + m->payload_len;
}

/* ---- packet identifier map: uint16 -> pointer, open addressing ---- */

typedef struct mq_pidmap {
    uint16_t *keys;   /* 0 = empty, 0xffff... see .c for tombstones */
    void **vals;
    uint32_t cap;     /* power of two, or 0 */
    uint32_t used;    /* live entries */
    uint32_t filled;  /* live + tombstones */
} mq_pidmap;

MQ_HIDDEN void *mq_pidmap_get(const mq_pidmap *m, uint16_t pid);
/* Insert (pid must not be present). 0 or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_pidmap_put(mq_pidmap *m, const mq_alloc *a, uint16_t pid, void *val);
/* Remove; returns the value or NULL. */
MQ_HIDDEN void *mq_pidmap_del(mq_pidmap *m, uint16_t pid);
MQ_HIDDEN void mq_pidmap_free(mq_pidmap *m, const mq_alloc *a);

/* ---- outgoing flows ---- */

#define MQ_FLOW_QUEUED 0      /* waiting for the window (or a connection) */
#define MQ_FLOW_PUBLISHED 1   /* PUBLISH sent, awaiting PUBACK / PUBREC */
#define MQ_FLOW_RELEASED 2    /* PUBREL sent, awaiting PUBCOMP */

typedef struct mq_flow {
    struct mq_flow *next, *prev;
    mq_msg *msg;
    uint16_t pid;        /* 0 for QoS 0 */
    uint8_t qos;         /* QoS of this delivery (may be below msg->qos) */
    uint8_t retain;      /* RETAIN flag of this delivery */
    uint8_t state;       /* MQ_FLOW_* */
    uint8_t sent;        /* sent at least once: re-sends carry DUP=1 */
    uint8_t nsubids;     /* broker: subscription identifiers to include */
    uint32_t *subids;
    uint64_t token;      /* owner's use (e.g. store row id) */
} mq_flow;

typedef struct mq_flist {
    mq_flow *head, *tail;
    uint32_t count;
} mq_flist;

/* Results of mq_outq_ack */
#define MQ_ACK_DONE 1      /* flow complete: caller reports and frees it */
#define MQ_ACK_PUBREL 2    /* PUBREC accepted: caller sends PUBREL */

typedef struct mq_outq {
    mq_flist inflight;     /* sent, unacknowledged, in send order */
    mq_flist queued;       /* waiting, FIFO */
    mq_pidmap pids;        /* pid -> flow (inflight and queued QoS>0) */
    mq_pidmap reserved;    /* other pids in use (SUBSCRIBE/UNSUBSCRIBE) */
    uint16_t next_pid;
    uint32_t window;       /* max QoS>0 flows in flight (>= 1) */
    uint32_t max_queued;   /* 0 = unlimited */
    uint64_t max_queued_bytes; /* 0 = unlimited */
    uint64_t queued_bytes;
} mq_outq;

MQ_HIDDEN void mq_outq_init(mq_outq *q, uint32_t window);
MQ_HIDDEN void mq_flow_free(const mq_alloc *a, mq_flow *f);
/* Free every flow and the maps. */
MQ_HIDDEN void mq_outq_free(mq_outq *q, const mq_alloc *a);

/* Take a free packet identifier and mark it used (reserved map) for a
 * non-PUBLISH packet; MQLITE_ERR_NO_PACKET_ID when all are in use. */
MQ_HIDDEN int mq_outq_reserve_pid(mq_outq *q, const mq_alloc *a, uint16_t *pid);
MQ_HIDDEN void mq_outq_release_pid(mq_outq *q, uint16_t pid);
MQ_HIDDEN int mq_outq_pid_in_use(const mq_outq *q, uint16_t pid);

/*
 * mq_outq_push - queue a message for delivery at `qos` (a reference is
 * taken). QoS > 0 flows get a packet identifier now, kept until the flow
 * completes. `force` ignores the queue limits (used for restored state).
 * Returns the new flow, or NULL with *err = MQLITE_ERR_QUEUE_FULL /
 * MQLITE_ERR_NO_PACKET_ID / MQLITE_ERR_NOMEM (nothing queued then).
 */
MQ_HIDDEN mq_flow *mq_outq_push(mq_outq *q, const mq_alloc *a, mq_msg *msg, uint8_t qos,
                                uint8_t retain, int force, int *err);

/*
 * mq_outq_restore - put back a flow read from durable storage (client store,
 * broker persistence) with its packet identifier `pid` (QoS > 0), beyond
 * the queue limits: state MQ_FLOW_RELEASED goes to the in-flight list (its
 * PUBREL is re-sent on resume), anything else to the end of the queue with
 * `sent` deciding DUP. Returns the flow, or NULL with *err =
 * MQLITE_ERR_INVALID (pid 0 or already in use, RELEASED without QoS 2) or
 * MQLITE_ERR_NOMEM.
 */
MQ_HIDDEN mq_flow *mq_outq_restore(mq_outq *q, const mq_alloc *a, mq_msg *msg, uint8_t qos,
                                   uint8_t retain, uint16_t pid, uint8_t state, uint8_t sent,
                                   int *err);

/*
 * mq_outq_next - the next queued flow that may be sent now, moved into the
 * in-flight list (QoS > 0, state PUBLISHED) or unlinked (QoS 0: the caller
 * sends and frees it). NULL when the queue is empty or the window is full.
 */
MQ_HIDDEN mq_flow *mq_outq_next(mq_outq *q);

/* Put an unsent flow (taken by mq_outq_next) back at the head of the queue,
 * e.g. when the packet would exceed the peer's maximum packet size. */
MQ_HIDDEN void mq_outq_unsend(mq_outq *q, mq_flow *f);

/*
 * mq_outq_ack - apply PUBACK / PUBREC / PUBCOMP (`type`) for pid with a 5.0
 * reason code. Returns MQ_ACK_DONE with *done = the flow (unlinked: the
 * caller reports and frees it; for PUBREC with reason >= 0x80 too),
 * MQ_ACK_PUBREL (PUBREC accepted, the flow is now RELEASED), or
 * MQLITE_ERR_PACKET_ID_UNKNOWN when no flow in the right state has pid.
 */
MQ_HIDDEN int mq_outq_ack(mq_outq *q, int type, uint16_t pid, uint8_t reason, mq_flow **done);

/* Remove a flow from whichever list holds it (unlinked, not freed). */
MQ_HIDDEN void mq_outq_remove(mq_outq *q, mq_flow *f);

/* Move every in-flight flow back in front of the queue, keeping order, so
 * that a new connection sends them first (with DUP where `sent`); flows in
 * state RELEASED stay in the in-flight list: their PUBREL is re-sent. */
MQ_HIDDEN void mq_outq_requeue_inflight(mq_outq *q);

/* Bytes a flow's message counts against max_queued_bytes. */
static inline uint64_t mq_flow_bytes(const mq_flow *f)
{
    return f->msg ? f->msg->topic_len + f->msg->payload_len + f->msg->props_len : 0;
}

/* ---- incoming QoS 2 identifiers awaiting PUBREL ---- */

typedef struct mq_inq {
    mq_pidmap qos2;  /* pid -> (void *)1 */
} mq_inq;

/* 1: new identifier (deliver the message), 0: already held (a re-sent
 * PUBLISH: do not deliver again), or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_inq_qos2_begin(mq_inq *q, const mq_alloc *a, uint16_t pid);
/* 1 if pid was held (now released), 0 if not. */
MQ_HIDDEN int mq_inq_qos2_release(mq_inq *q, uint16_t pid);
static inline uint32_t mq_inq_count(const mq_inq *q)
{
    return q->qos2.used;
}
MQ_HIDDEN void mq_inq_free(mq_inq *q, const mq_alloc *a);

/* List helpers */
MQ_HIDDEN void mq_flist_append(mq_flist *l, mq_flow *f);
MQ_HIDDEN void mq_flist_prepend(mq_flist *l, mq_flow *f);
MQ_HIDDEN void mq_flist_unlink(mq_flist *l, mq_flow *f);

#endif
