/*
 * retain.h - the retained message store: one message per topic, in a
 * topic-level trie, matched against topic filters when a subscription is
 * made.
 *
 * Rules kept here:
 *  - a PUBLISH with RETAIN 1 replaces the topic's retained message; with an
 *    empty payload it removes it and is not stored (3.1.1 [MQTT-3.3.1-10],
 *    [MQTT-3.3.1-11]; 5.0 [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7]);
 *  - messages sent because of a new subscription carry RETAIN 1
 *    (3.1.1 [MQTT-3.3.1-8], 5.0 3.3.1.3);
 *  - expired messages (5.0 Message Expiry Interval) are never sent and are
 *    swept out.
 */
#ifndef MQ_BROKER_RETAIN_H
#define MQ_BROKER_RETAIN_H

#include "broker.h"

MQ_HIDDEN int mq_retain_init(mqlite_broker *b);
MQ_HIDDEN void mq_retain_free(mqlite_broker *b);

/* Store m (a reference is taken) or, with an empty payload, clear the
 * topic. 0 or MQLITE_ERR_NOMEM (the store is unchanged). */
MQ_HIDDEN int mq_retain_store(mqlite_broker *b, mq_msg *m);

/* Send every retained message matching `filter` (valid, not shared) to s
 * at most at `qos`, with subscription identifier subid (0 = none). */
MQ_HIDDEN int mq_retain_send(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t qos,
                             uint32_t subid);

/* Remove expired retained messages. */
MQ_HIDDEN void mq_retain_sweep(mqlite_broker *b);

#endif
