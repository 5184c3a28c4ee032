/*
 * scram_client.h - the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677)
 * for MQTT 5.0 enhanced authentication (5.0 section 4.12), sans-I/O:
 *
 *   mq_scramc_start   -> client-first-message ("n,,n=user,r=nonce")
 *   mq_scramc_final   server-first-message -> client-final-message
 *   mq_scramc_verify  server-final-message ("v=...") -> 0 when the server
 *                     proved it holds the user's ServerKey
 *
 * No channel binding ("n,,"), no authorization identity; the password is
 * used as given (no SASLprep: ASCII passwords are unaffected). Secrets are
 * wiped when the state is freed.
 */
#ifndef MQ_SCRAM_CLIENT_H
#define MQ_SCRAM_CLIENT_H

#include "common.h"

#define MQ_SCRAMC_METHOD "SCRAM-SHA-256"

typedef struct mq_scramc mq_scramc;

/* Begin: *st gets a new state, *out (appended) the client-first-message.
 * 0, MQLITE_ERR_NOMEM, MQLITE_ERR_INVALID (empty user name), MQLITE_ERR_TLS
 * (no random bytes). */
MQ_HIDDEN int mq_scramc_start(const mq_alloc *a, const char *user, mq_view password,
                              mq_scramc **st, mq_buf *out, mq_err *err);
/* Take server-first-message; append client-final-message to *out.
 * 0; MQLITE_ERR_PROTOCOL (malformed, nonce not ours, iteration count out
 * of 1..10000000); MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_scramc_final(mq_scramc *st, mq_view server_first, mq_buf *out, mq_err *err);
/* Check server-final-message. 0, or MQLITE_ERR_PROTOCOL ("e=..." or a
 * signature that does not match: the server does not know the password). */
MQ_HIDDEN int mq_scramc_verify(mq_scramc *st, mq_view server_final, mq_err *err);
/* 1 once client-final-message was made (the next server data is final). */
MQ_HIDDEN int mq_scramc_sent_final(const mq_scramc *st);
MQ_HIDDEN void mq_scramc_free(mq_scramc *st);

#endif
