/*
 * conn.h - one client connection on the server side: bytes in, packets
 * decoded and checked, the protocol state machine (CONNECT, PUBLISH and
 * its QoS 1/2 acknowledgements, SUBSCRIBE, UNSUBSCRIBE, PING, DISCONNECT),
 * and output batched in a buffer flushed once per poll round.
 *
 * Memory per connection is bounded: input holds at most one partial packet
 * (never above the maximum packet size, checked from the fixed header);
 * output stops taking queued messages above MQ_CONN_OUT_SOFT bytes (the
 * rest wait in the session's mq_outq, whose limits drop and count), and
 * reading pauses while more than MQ_CONN_OUT_HARD bytes wait for a client
 * that sends without reading.
 */
#ifndef MQ_BROKER_CONN_H
#define MQ_BROKER_CONN_H

#include "broker.h"
#include "codec.h"

#define MQ_CONN_OUT_SOFT (128u * 1024u)
#define MQ_CONN_OUT_HARD (1024u * 1024u)

/* Take over a socket accepted on listener l (a TLS listener starts the
 * handshake). 0 with *out (may be NULL), or an error (fd closed). */
MQ_HIDDEN int mq_conn_accept(mqlite_broker *b, mq_listener *l, int fd, const char *peer,
                             mq_conn **out);

/* Handle input held back while the CONNECT waited for the application
 * (auth.c), and look at the socket again. */
MQ_HIDDEN void mq_conn_resume(mq_conn *c);

/* Read again from TLS connections whose decrypted input OpenSSL holds
 * (no epoll event will come for it). */
MQ_HIDDEN void mq_conn_read_more(mqlite_broker *b);

/* Bytes waiting for an online client: encoded output plus its queue. */
MQ_HIDDEN size_t mq_conn_backlog(const mq_conn *c);

/* Slow client policy "disconnect": close c at the end of the round (never
 * while routing). */
MQ_HIDDEN void mq_conn_mark_slow(mq_conn *c);

/* epoll said: readable (or hung up) / writable. */
MQ_HIDDEN void mq_conn_on_readable(mq_conn *c);
MQ_HIDDEN void mq_conn_on_writable(mq_conn *c);

/* Write pending output; register EPOLLOUT while some is left. */
MQ_HIDDEN void mq_conn_flush(mq_conn *c);

/*
 * mq_conn_close - end the connection: for 5.0, first a DISCONNECT with
 * `reason` when reason >= 0; then the socket is closed and the session
 * detached (publish_will: per session.h). The record is freed at the end
 * of the poll round. Never called while routing.
 */
MQ_HIDDEN void mq_conn_close(mq_conn *c, int reason, int publish_will, const char *why);

/* Free a closed connection record. */
MQ_HIDDEN void mq_conn_free(mq_conn *c);

/* Close at broker teardown: DISCONNECT 0x8B (server shutting down) to 5.0
 * clients, best-effort flush, no will, session left alone. */
MQ_HIDDEN void mq_conn_shutdown(mq_conn *c);

/* 1 if a message may be written now without queueing. */
MQ_HIDDEN int mq_conn_can_write(const mq_conn *c);

/*
 * mq_conn_put_publish - encode a PUBLISH of m into the output: QoS, packet
 * id, RETAIN, DUP as given; for 5.0 the message's properties, the remaining
 * Message Expiry Interval (5.0 [MQTT-3.3.2-6]) and subscription ids.
 * Returns 0, MQLITE_ERR_TOO_LARGE (over the client's Maximum Packet Size:
 * nothing written, 5.0 [MQTT-3.1.2-24]) or MQLITE_ERR_NOMEM.
 */
MQ_HIDDEN int mq_conn_put_publish(mq_conn *c, const mq_msg *m, uint8_t qos, uint16_t pid,
                                  uint8_t retain, uint8_t dup, const uint32_t *ids, uint32_t nids);

/* Output helpers for the packet handlers (proto.c, connect.c). Each
 * returns 0 or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_conn_put_ack(mq_conn *c, uint8_t type, uint16_t pid, uint8_t reason);
MQ_HIDDEN int mq_conn_put_packet(mq_conn *c, const mq_packet *p);

/* Send what the session's queue and window allow. */
MQ_HIDDEN void mq_conn_pump(mq_conn *c);

/* Connect timeouts and keep-alive (3.1.1 and 5.0 [MQTT-3.1.2-24] /
 * [MQTT-3.1.2-22]: 1.5 times the Keep Alive). */
MQ_HIDDEN void mq_conn_tick(mqlite_broker *b);

#endif
