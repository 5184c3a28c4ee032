/*
 * router.h - the subscription index: a trie of topic-filter levels, and
 * matching of a published topic against it (MQTT 3.1.1 and 5.0 section 4.7;
 * 5.0 4.8.2 shared subscriptions).
 *
 * Rules kept here:
 *  - '+' matches one level, '#' the parent level and every level below;
 *    wildcards at the first level never match a topic starting with '$'
 *    (3.1.1 and 5.0 [MQTT-4.7.2-1]);
 *  - overlapping subscriptions of one session give one delivery at the
 *    highest granted QoS, carrying every matching subscription identifier
 *    (5.0 [MQTT-3.3.4-2], [MQTT-3.3.4-4]; 3.1.1 [MQTT-3.3.5-1]);
 *  - no-local: never back to the publishing session (5.0 [MQTT-3.8.3-3]);
 *  - a shared subscription "$share/g/f" delivers each message to one member
 *    of group g, round-robin, connected members first (5.0 4.8.2).
 */
#ifndef MQ_BROKER_ROUTER_H
#define MQ_BROKER_ROUTER_H

#include "broker.h"

/* Subscription options byte (SUBSCRIBE, 5.0 3.8.3.1). */
#define MQ_SUB_QOS 0x03
#define MQ_SUB_NO_LOCAL 0x04
#define MQ_SUB_RAP 0x08
#define MQ_SUB_RH_SHIFT 4

typedef struct mq_sgroup mq_sgroup;

/* One subscription of one session. */
struct mq_bsub {
    mq_bsess *s;
    mq_tnode *node;    /* where it hangs in the trie */
    mq_sgroup *group;  /* shared subscription group, or NULL */
    uint32_t idx;      /* position in the node's (or group's) array */
    uint32_t subid;    /* 5.0 Subscription Identifier, 0 = none */
    uint8_t opts;      /* MQ_SUB_*; QoS bits hold the granted QoS */
    uint16_t flen;
    char filter[];     /* as subscribed, "$share/..." included; NUL-terminated */
};

MQ_HIDDEN int mq_router_init(mqlite_broker *b);
MQ_HIDDEN void mq_router_free(mqlite_broker *b);

/*
 * mq_router_subscribe - add a subscription of s to `filter` (valid), or
 * replace the one s has with the identical filter (5.0 [MQTT-3.8.4-3],
 * 3.1.1 [MQTT-3.8.4-3]); *existed says which. 0 or MQLITE_ERR_NOMEM
 * (nothing changed).
 */
MQ_HIDDEN int mq_router_subscribe(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t opts,
                                  uint32_t subid, int *existed);

/* Remove s's subscription to `filter`: 1 if there was one, else 0. */
MQ_HIDDEN int mq_router_unsubscribe(mqlite_broker *b, mq_bsess *s, mq_view filter);

/* Remove every subscription of s. */
MQ_HIDDEN void mq_router_remove_all(mqlite_broker *b, mq_bsess *s);

/*
 * mq_router_publish - deliver m to every matching session (through
 * mq_bsess_deliver). `from` is the publishing session (for no-local), or
 * NULL. Returns the number of sessions the message went to (>= 0), or
 * MQLITE_ERR_NOMEM when matching could not run at all.
 */
MQ_HIDDEN int mq_router_publish(mqlite_broker *b, mq_msg *m, const mq_bsess *from);

#endif
