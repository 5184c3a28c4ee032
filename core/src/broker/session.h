/*
 * session.h - the broker's sessions: the table by client identifier,
 * session state kept while the client is offline (subscriptions, QoS 1/2
 * flows in mq_outq, incoming QoS 2 identifiers in mq_inq), expiry and wills.
 *
 * Rules kept here:
 *  - a persistent session outlives its connection: 3.1.1 clean session 0
 *    (3.1.1 [MQTT-3.1.2-4]), 5.0 Session Expiry Interval > 0
 *    (5.0 [MQTT-3.1.2-23]); it ends when the interval passes, capped by
 *    MQLITE_BOPT_SESSION_EXPIRY_MAX_S;
 *  - QoS 1/2 messages for an offline session are queued in its mq_outq up
 *    to MQLITE_BOPT_MAX_QUEUED messages / _MAX_QUEUED_BYTES; a message that
 *    does not fit is dropped and counted (MQLITE_BSTAT_MESSAGES_DROPPED);
 *    QoS 0 messages are not queued for offline sessions (3.1.1 and 5.0
 *    allow either; mosquitto's default);
 *  - a will is published when the connection ends without a normal
 *    DISCONNECT, after the Will Delay Interval or when the session ends,
 *    whichever is first (5.0 3.1.2.5, [MQTT-3.1.3-9]); never after a
 *    DISCONNECT 0x00 (5.0 [MQTT-3.1.2-10], 3.1.1 [MQTT-3.1.2-10]).
 */
#ifndef MQ_BROKER_SESSION_H
#define MQ_BROKER_SESSION_H

#include "broker.h"

MQ_HIDDEN mq_bsess *mq_bsess_find(mqlite_broker *b, mq_view id);

/* A new session in the table (id must not be in use). NULL on OOM. */
MQ_HIDDEN mq_bsess *mq_bsess_new(mqlite_broker *b, mq_view id);

/* End a session: publish its pending will, drop its subscriptions and
 * flows, free it. s->conn must be NULL. */
MQ_HIDDEN void mq_bsess_end(mqlite_broker *b, mq_bsess *s);

/* Free every session without publishing wills (broker teardown). */
MQ_HIDDEN void mq_bsess_free_all(mqlite_broker *b);

/* Write a new, unused client identifier into buf (NUL-terminated). */
MQ_HIDDEN void mq_bsess_assign_id(mqlite_broker *b, char *buf, size_t cap);

/* The connection c now serves s: timers of the offline state stop, a
 * pending will is cancelled (5.0 [MQTT-3.1.3-9]). */
MQ_HIDDEN void mq_bsess_attach(mqlite_broker *b, mq_bsess *s, mq_conn *c);

/* s lost its connection. publish_will: the end was abnormal (or 5.0
 * DISCONNECT 0x04), so the will is due; else it is discarded. The session
 * ends here when its expiry interval is 0. */
MQ_HIDDEN void mq_bsess_detach(mqlite_broker *b, mq_bsess *s, int publish_will);

/* Replace the session's will (ownership of `will` passes; may be NULL). */
MQ_HIDDEN void mq_bsess_set_will(mqlite_broker *b, mq_bsess *s, mq_msg *will, uint32_t delay_s,
                                 int has_expiry, uint32_t expiry_s);

/*
 * mq_bsess_deliver - hand a message to a session at `qos` with `retain`
 * and subscription identifiers ids[0..nids). Online: written at once when
 * nothing waits before it, else queued and pumped. Offline: QoS 1/2 queued.
 * Expired messages are not delivered (5.0 [MQTT-3.3.2-5]).
 */
MQ_HIDDEN void mq_bsess_deliver(mqlite_broker *b, mq_bsess *s, mq_msg *m, uint8_t qos,
                                uint8_t retain, const uint32_t *ids, uint32_t nids);

/* A session loaded from the persistence file: offline, ending in
 * left_ms (< 0: never). */
MQ_HIDDEN void mq_bsess_restore_offline(mqlite_broker *b, mq_bsess *s, int64_t left_ms);
/* A will loaded from the persistence file for the loaded session s
 * (ownership of `will` passes): due in left_ms (<= 0: at the first timer
 * pass), or when s ends if that is sooner (5.0 [MQTT-3.1.3-9]). Writes
 * nothing. */
MQ_HIDDEN void mq_bsess_restore_will(mqlite_broker *b, mq_bsess *s, mq_msg *will,
                                     uint32_t delay_s, int has_expiry, uint32_t expiry_s,
                                     int64_t left_ms);
/* Remove and free s without a will or persistence changes (loading). */
MQ_HIDDEN void mq_bsess_drop(mqlite_broker *b, mq_bsess *s);

/* Timers of offline sessions: will delays and expiry. */
MQ_HIDDEN void mq_bsess_tick(mqlite_broker *b);

#endif
