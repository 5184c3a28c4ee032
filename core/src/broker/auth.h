/*
 * auth.h - who may connect, and as whom: security scopes (password file,
 * SCRAM credentials, ACL, allow_anonymous), the CONNECT decision, MQTT 5.0
 * enhanced authentication (AUTH, SCRAM-SHA-256 built in, re-authentication)
 * and the application's pulled authentication requests
 * (MQLITE_BOPT_AUTH_EXTERNAL, mqlite_broker_next_auth_request()).
 *
 * The CONNECT decision, in order:
 *  1. TLS identity: on a `use_identity_as_username` listener the verified
 *     certificate's CN is the user name (no certificate or no CN: CONNACK
 *     0x86 / 3.x 0x04), and the CONNECT's user name and password are ignored;
 *  2. MQLITE_BOPT_AUTH_EXTERNAL: the CONNECT waits (unparsed input held,
 *     bounded by the connect timeout) for the application's answer;
 *  3. an Authentication Method (5.0): SCRAM-SHA-256 against the scope's
 *     SCRAM credentials, anything else CONNACK 0x8C;
 *  4. a user name with a password file: the password must match (else
 *     0x86 / 0x04); without a user name: allow_anonymous (else 0x87 / 0x05).
 * Failed logins are logged with client id and address only; passwords and
 * authentication data are never logged.
 */
#ifndef MQ_BROKER_AUTH_H
#define MQ_BROKER_AUTH_H

#include "broker.h"
#include "codec.h"

/* ---- scopes ---- */

MQ_HIDDEN void mq_bsec_init(mq_bsec *s);
MQ_HIDDEN void mq_bsec_clear(mqlite_broker *b, mq_bsec *s);
/* A new per-listener scope on b->secs; NULL on OOM. */
MQ_HIDDEN mq_bsec *mq_bsec_new(mqlite_broker *b);
/* (Re)load a file into the scope; path NULL removes it. kind: 0 password
 * file, 1 ACL file, 2 SCRAM file. 0 or an error (message in b->err; the
 * scope is unchanged on failure). */
MQ_HIDDEN int mq_bsec_set_file(mqlite_broker *b, mq_bsec *s, int kind, const char *path);
/* allow_anonymous in force. */
MQ_HIDDEN int mq_bsec_anonymous(const mq_bsec *s);

/* ---- connections ---- */

/* Decide on a CONNECT that passed protocol checks (see above). Returns 0:
 * the connection was accepted, refused or parked. */
MQ_HIDDEN int mq_auth_connect(mq_conn *c, const mq_packet *p);

/* An AUTH packet arrived (5.0). 0 or a protocol violation code. */
MQ_HIDDEN int mq_auth_packet(mq_conn *c, const mq_packet *p);

/* The connection is closing: forget its requests and exchanges. */
MQ_HIDDEN void mq_auth_conn_gone(mq_conn *c);

/* Requests and wait lists at broker teardown. */
MQ_HIDDEN void mq_auth_free_all(mqlite_broker *b);

/* ACL decisions for c's / s's identity (1 allowed). A denial is logged
 * and counted by the caller. */
MQ_HIDDEN int mq_auth_may_publish(const mq_conn *c, mq_view topic);
MQ_HIDDEN int mq_auth_may_subscribe(const mq_conn *c, mq_view filter);
MQ_HIDDEN int mq_auth_may_read(const mq_bsess *s, mq_view topic);
MQ_HIDDEN int mq_auth_session_may_write(const mq_bsess *s, mq_view topic);

#endif
