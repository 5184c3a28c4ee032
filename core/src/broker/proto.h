/*
 * proto.h - the packet handlers of a server-side connection: CONNECT and
 * CONNACK (connect.c); PUBLISH with its QoS 1/2 acknowledgements,
 * SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH and protocol
 * violations (proto.c).
 *
 * A handler returns 0, or a negative MQLITE_ERR_* for a protocol violation,
 * which mq_proto_violation() turns into the 5.0 DISCONNECT reason code of
 * mqlite_error_reason() and a closed connection. A handler that closes the
 * connection itself (a refused CONNECT) returns 0.
 */
#ifndef MQ_BROKER_PROTO_H
#define MQ_BROKER_PROTO_H

#include "conn.h"

MQ_HIDDEN int mq_proto_packet(mq_conn *c, const mq_packet *p);

/* Close c for a violation `err` found in a packet of `type` (5.0: with the
 * DISCONNECT reason code for err). */
MQ_HIDDEN void mq_proto_violation(mq_conn *c, int err, int type);

/* `in` without the properties drop1 and drop2 (a view into b->scratch,
 * or `in` itself when neither is there). 0 or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_proto_filter_props(mqlite_broker *b, mq_view in, uint8_t drop1, uint8_t drop2,
                                    mq_view *out);

/* connect.c */
MQ_HIDDEN int mq_proto_connect(mq_conn *c, const mq_packet *p);

/* Accept a CONNECT whose authentication succeeded: client identifier,
 * will, session, CONNACK (5.0: with the Authentication Method in use and
 * auth_data, when not empty). Returns 0. */
MQ_HIDDEN int mq_proto_connect_accept(mq_conn *c, const mq_packet *p, mq_view auth_data);

/* Refuse the connection: CONNACK with the code for the client's level,
 * then close (3.1.1 [MQTT-3.2.2-4] and 5.0 [MQTT-3.2.2-6]: no session
 * present; 5.0 [MQTT-3.2.2-7]). Logs why with client id and address.
 * Returns 0 for the packet handler. */
MQ_HIDDEN int mq_proto_refuse(mq_conn *c, uint8_t v5_reason, uint8_t v3_reason, mq_view id,
                              const char *why);
/* The first packet could not be decoded: answer with a CONNACK where the
 * spec asks for one, then close. */
MQ_HIDDEN void mq_proto_connect_failed(mq_conn *c, int err, const mq_packet *p,
                                       const mq_decode_info *info);

#endif
