/*
 * passwd.h - credential files: mosquitto's password file and mqlite's SCRAM
 * credential file. Read by the broker, written by `mqlite passwd`.
 *
 * Password file (mosquitto_passwd's format, so existing files work
 * unchanged): one `username:hash` per line, `#` starts a comment line,
 * lines without ':' are ignored, blanks around both fields trimmed. Hashes:
 *   $7$ITERATIONS$SALT$HASH  PBKDF2-HMAC-SHA512 (mosquitto 2.x, default 101
 *                            iterations), 12-byte salt, 64-byte hash
 *   $6$SALT$HASH             SHA-512(password || salt) (mosquitto <= 1.6)
 * SALT and HASH in base64 (standard alphabet, '=' padding). Entries that do
 * not parse are skipped with a warning, as mosquitto does; the user cannot
 * log in.
 *
 * SCRAM credential file (mqlite's own; RFC 5803's stored form, as
 * PostgreSQL also uses): one line per user
 *   username:SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY
 * SALT, STOREDKEY (H(ClientKey)) and SERVERKEY (HMAC(SaltedPassword,
 * "Server Key")) in base64; the password itself is not recoverable from it
 * (RFC 5802 section 9). `mqlite passwd --scram` writes it.
 *
 * Checks run in constant time in the password and hash bytes, and take the
 * same work for an unknown user as for a known one.
 */
#ifndef MQ_BROKER_PASSWD_H
#define MQ_BROKER_PASSWD_H

#include "common.h"

#define MQ_PW_SHA512 6         /* $6$ */
#define MQ_PW_PBKDF2 7         /* $7$ */
#define MQ_PW_SCRAM_SHA256 256 /* SCRAM-SHA-256 credential */

#define MQ_PW_DEFAULT_ITERATIONS 101 /* mosquitto_passwd 2.0's default */
#define MQ_SCRAM_DEFAULT_ITERATIONS 4096 /* RFC 7677 section 4 */
#define MQ_PW_SALT_LEN 12
#define MQ_SCRAM_SALT_LEN 16
#define MQ_PW_LINE_MAX 1024

typedef struct mq_pwent {
    char *user;
    int kind;               /* MQ_PW_* */
    uint32_t iterations;
    uint8_t salt_len;
    uint8_t salt[64];
    uint8_t hash[64];       /* $6$/$7$: the hash; SCRAM: StoredKey (32 bytes) */
    uint8_t server_key[32]; /* SCRAM only */
    uint32_t seq;           /* line order while loading */
} mq_pwent;

typedef struct mq_pwdb {
    mq_pwent *v;            /* sorted by user name */
    uint32_t n;
} mq_pwdb;

/* Called once per skipped line with a message naming file and line. */
typedef void (*mq_pw_warn_fn)(void *ud, const char *msg);

/*
 * mq_pwdb_load - read a password file (scram 0) or a SCRAM credential file
 * (scram 1). 0; MQLITE_ERR_IO (cannot read: message in err) or
 * MQLITE_ERR_NOMEM. Bad lines are skipped through warn (may be NULL).
 */
MQ_HIDDEN int mq_pwdb_load(const mq_alloc *a, const char *path, int scram, mq_pwdb *out,
                           mq_pw_warn_fn warn, void *ud, mq_err *err);
MQ_HIDDEN void mq_pwdb_free(const mq_alloc *a, mq_pwdb *db);

/* The entry of user (not NUL-terminated), or NULL. */
MQ_HIDDEN const mq_pwent *mq_pwdb_find(const mq_pwdb *db, mq_view user);

/* 1 if the password matches user's $6$/$7$ entry, else 0 (unknown users
 * cost the same work as known ones). */
MQ_HIDDEN int mq_pw_check(const mq_pwdb *db, mq_view user, mq_view password);

/*
 * mq_pw_make_line - one entry "user:HASH" (no newline) into out[cap]:
 * kind MQ_PW_PBKDF2 / MQ_PW_SHA512 / MQ_PW_SCRAM_SHA256 with a fresh random
 * salt; iterations 0 = the kind's default. Returns 0; MQLITE_ERR_INVALID (':'
 * or a newline in user, empty user); MQLITE_ERR_BUFFER; MQLITE_ERR_TLS
 * (no randomness).
 */
MQ_HIDDEN int mq_pw_make_line(char *out, size_t cap, const char *user, const void *pw,
                              size_t pwlen, int kind, uint32_t iterations);

/* SCRAM-SHA-256 keys from a password (RFC 5802 section 3): SaltedPassword
 * = Hi(password, salt, i); stored = H(HMAC(SaltedPassword, "Client Key"));
 * server = HMAC(SaltedPassword, "Server Key"). 0 or MQLITE_ERR_TLS. */
MQ_HIDDEN int mq_scram_keys(const void *pw, size_t pwlen, const uint8_t *salt, size_t salt_len,
                            uint32_t iterations, uint8_t stored[32], uint8_t server[32]);

#endif
