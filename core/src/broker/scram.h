/*
 * scram.h - the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as an
 * MQTT 5.0 enhanced authentication method ("SCRAM-SHA-256", 5.0 section
 * 4.12): CONNECT (or AUTH 0x19) carries client-first-message, AUTH 0x18
 * answers server-first-message, AUTH 0x18 brings client-final-message, and
 * the CONNACK (or AUTH 0x00) carries server-final-message "v=...".
 *
 * Sans-I/O: messages in, messages out. No channel binding ("n,," and "y,,"
 * headers are accepted, "p=" is refused), no authorization identity.
 * Passwords are compared through the stored keys only; an unknown user is
 * given a salt derived from the user name and a broker secret and then
 * fails like a wrong password, so the exchange does not reveal which user
 * names exist (RFC 5802 section 9).
 */
#ifndef MQ_BROKER_SCRAM_H
#define MQ_BROKER_SCRAM_H

#include "passwd.h"

#define MQ_SCRAM_METHOD "SCRAM-SHA-256"

typedef struct mq_scram mq_scram;

/*
 * mq_scram_start - take client-first-message, look the user up in db
 * (SCRAM entries), write server-first-message to *out (appended).
 * secret: 32 bytes of the broker's, for unknown users' fake salts.
 * Returns 0; MQLITE_ERR_INVALID (malformed message: *why says how) or
 * MQLITE_ERR_NOMEM.
 */
MQ_HIDDEN int mq_scram_start(const mq_alloc *a, const mq_pwdb *db, const uint8_t secret[32],
                             mq_view client_first, mq_scram **st, mq_buf *out, const char **why);

/*
 * mq_scram_finish - take client-final-message; when the proof is right,
 * write server-final-message to *out and return 0. MQLITE_ERR_REFUSED:
 * wrong password or unknown user; MQLITE_ERR_INVALID: malformed or not
 * matching the first message (*why).
 */
MQ_HIDDEN int mq_scram_finish(mq_scram *st, mq_view client_final, mq_buf *out, const char **why);

/* The authenticated (or claimed) user name, NUL-terminated. */
MQ_HIDDEN const char *mq_scram_user(const mq_scram *st);

MQ_HIDDEN void mq_scram_free(mq_scram *st);

#endif
