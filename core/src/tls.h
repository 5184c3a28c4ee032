/*
 * tls.h - TLS (OpenSSL 3) over a non-blocking socket, for the broker's
 * listeners and for the client. Like net.h, one of the two modules that
 * touch file descriptors; nothing here ever blocks or sleeps.
 *
 * Two objects:
 *  - mq_tls_ctx: what every connection of one listener (or one client)
 *    shares: certificates, trust store, verification policy, versions,
 *    ciphers, ALPN. Built once from an mq_tls_conf; immutable afterwards.
 *  - mq_tls: one connection over a caller-owned, non-blocking fd.
 *
 * The contract for a poll-driven owner (broker connection, client):
 *
 *   mq_tls_new(ctx, fd, host, &t)          after accept() / connect() done
 *   loop (on every readable/writable event, or a deadline):
 *     rc = mq_tls_handshake(t, &err)       0: done; MQLITE_ERR_AGAIN: poll
 *                                          for mq_tls_wants(t) and call again;
 *                                          MQLITE_ERR_TLS: failed, reason in err
 *   then, like mq_net_read / mq_net_write:
 *     mq_tls_read(t, buf, cap, &err)       > 0 bytes, 0 peer closed,
 *                                          MQLITE_ERR_AGAIN, MQLITE_ERR_TLS/_IO
 *     mq_tls_write(t, buf, len, &err)      >= 0 bytes (may be short),
 *                                          MQLITE_ERR_AGAIN, MQLITE_ERR_TLS/_IO
 *   mq_tls_close(t)                        close_notify (best effort) + free;
 *                                          the fd stays open: close it yourself
 *
 * Rules the owner must keep, because TLS is not a byte pipe:
 *  - After MQLITE_ERR_AGAIN, mq_tls_wants(t) says what the operation waits
 *    for: MQ_TLS_WANT_READ and/or MQ_TLS_WANT_WRITE. A read can wait for
 *    writability (TLS 1.3 key update, session tickets) and a write for
 *    readability: register the fd for what is wanted, not for what you were
 *    doing, and retry the same operation when it is ready. `want_write`
 *    reported to the caller's loop must include a read that wants to write.
 *  - A write that returned AGAIN must be retried with the same bytes at the
 *    start of the buffer (the buffer may move and may have grown:
 *    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE).
 *  - Decrypted bytes can wait inside OpenSSL with the socket empty: while
 *    mq_tls_pending(t) > 0, read again without waiting for the poller.
 *  - The handshake gets a deadline from the owner (the broker's handshake
 *    timeout, the client's connect timeout): a peer that stalls mid-handshake
 *    costs one fd and a few KiB until then, never a blocked loop.
 *
 * Errors are in words a user can act on: OpenSSL's reason ("certificate
 * verify failed: certificate has expired", "hostname mismatch", "wrong
 * version number"), plus what the peer apparently is when that helps
 * ("plain MQTT on a TLS port"). mq_tls_* never leave entries on OpenSSL's
 * (thread-local) error queue.
 *
 * Memory: OpenSSL allocates through its own allocator (changing it is
 * process-wide, which mqlite never does); our records use the mq_alloc given.
 */
#ifndef MQ_TLS_H
#define MQ_TLS_H

#include "common.h"

typedef struct mq_tls_ctx mq_tls_ctx;
typedef struct mq_tls mq_tls;

/* Minimum protocol versions (mq_tls_conf.min_version). */
#define MQ_TLS_V1_2 0 /* default: TLS 1.2 and 1.3 */
#define MQ_TLS_V1_3 1
#define MQ_TLS_V1_1 2 /* accepted for mosquitto's `tls_version tlsv1.1` */

/* Peer certificate policy of a server (mq_tls_conf.peer_cert). */
#define MQ_TLS_PEER_NONE 0     /* do not ask for one */
#define MQ_TLS_PEER_OPTIONAL 1 /* ask; verify it when given */
#define MQ_TLS_PEER_REQUIRED 2 /* ask; fail the handshake without a valid one */

typedef struct mq_tls_conf {
    int server;               /* 1: accept side (broker), 0: connect side (client) */
    const char *cafile;       /* PEM bundle of trusted CAs, or NULL */
    const char *capath;       /* c_rehash'ed directory of CAs, or NULL */
    int system_ca;            /* client: also trust the system store (used as well when
                                 neither cafile nor capath is given) */
    const char *certfile;     /* PEM certificate chain (server: required) */
    const char *keyfile;      /* PEM private key (NULL: certfile holds it) */
    const char *key_password; /* passphrase of an encrypted keyfile, or NULL */
    int peer_cert;            /* server: MQ_TLS_PEER_*; ignored by clients */
    int insecure;             /* client: skip all verification (development only) */
    int skip_hostname;        /* client: verify the chain but not the server's name */
    int min_version;          /* MQ_TLS_V1_2 (default), MQ_TLS_V1_3, MQ_TLS_V1_1 */
    const char *ciphers;      /* TLS <= 1.2 cipher list (OpenSSL syntax), or NULL */
    const char *ciphersuites; /* TLS 1.3 suites, or NULL */
    const char *alpn;         /* comma-separated protocols ("mqtt"), or NULL */
} mq_tls_conf;

/*
 * mq_tls_ctx_new - build a shared context. Files are read now (so a bad
 * path or key is reported here, with the file named), never later.
 * Returns 0 and *out; MQLITE_ERR_TLS / MQLITE_ERR_CONFIG (unreadable or
 * invalid certificate/key/CA, key not matching the certificate, bad cipher
 * list) or MQLITE_ERR_NOMEM, message in err.
 */
MQ_HIDDEN int mq_tls_ctx_new(const mq_alloc *a, const mq_tls_conf *conf, mq_tls_ctx **out,
                             mq_err *err);
/* Contexts are reference counted: each mq_tls holds one. NULL is a no-op. */
MQ_HIDDEN void mq_tls_ctx_free(mq_tls_ctx *ctx);

/*
 * mq_tls_new - a connection over fd (non-blocking, connected or accepted).
 * server_name (client only, may be NULL): sent as SNI unless it is an IP
 * literal, and checked against the server certificate (DNS name or IP
 * address) unless the context is insecure.
 * Returns 0 and *out; MQLITE_ERR_NOMEM / MQLITE_ERR_TLS, message in err.
 */
MQ_HIDDEN int mq_tls_new(mq_tls_ctx *ctx, int fd, const char *server_name, mq_tls **out,
                         mq_err *err);

/* Advance the handshake: 0 (complete), MQLITE_ERR_AGAIN, MQLITE_ERR_TLS
 * (failed: reason in err; close the connection), MQLITE_ERR_CLOSED (the
 * peer closed the connection before completing it). */
MQ_HIDDEN int mq_tls_handshake(mq_tls *t, mq_err *err);
/* 1 once the handshake completed. */
MQ_HIDDEN int mq_tls_established(const mq_tls *t);

#define MQ_TLS_WANT_READ 1
#define MQ_TLS_WANT_WRITE 2
/* What the last operation that returned MQLITE_ERR_AGAIN waits for
 * (MQ_TLS_WANT_*; 0 when nothing is waiting). */
MQ_HIDDEN int mq_tls_wants(const mq_tls *t);

/* See the contract above. err may be NULL. */
MQ_HIDDEN long mq_tls_read(mq_tls *t, void *buf, size_t cap, mq_err *err);
MQ_HIDDEN long mq_tls_write(mq_tls *t, const void *buf, size_t len, mq_err *err);
/* Decrypted bytes buffered inside OpenSSL, readable without the socket. */
MQ_HIDDEN size_t mq_tls_pending(const mq_tls *t);

/* Send close_notify (once, without waiting for the answer) and free t.
 * NULL is a no-op. The fd is not closed. */
MQ_HIDDEN void mq_tls_close(mq_tls *t);

/*
 * Peer identity, after the handshake.
 * mq_tls_peer_cn: 1 and the Common Name of the peer's verified certificate
 *   in buf (NUL-terminated); 0 when there is no verified certificate, it
 *   has no CN, the CN holds a NUL byte, or it does not fit in cap.
 * mq_tls_peer_has_cert: 1 if the peer presented a certificate that verified.
 */
MQ_HIDDEN int mq_tls_peer_cn(const mq_tls *t, char *buf, size_t cap);
MQ_HIDDEN int mq_tls_peer_has_cert(const mq_tls *t);
/* "TLSv1.3", cipher name, ALPN protocol ("" when none): static or owned by t. */
MQ_HIDDEN const char *mq_tls_version_name(const mq_tls *t);
MQ_HIDDEN const char *mq_tls_cipher_name(const mq_tls *t);
MQ_HIDDEN const char *mq_tls_alpn(const mq_tls *t);

/*
 * Crypto helpers shared by the password store, SCRAM and `mqlite passwd`
 * (OpenSSL underneath; no state).
 */
/* n random bytes from OpenSSL's CSPRNG: 0 or MQLITE_ERR_TLS. */
MQ_HIDDEN int mq_tls_random(void *buf, size_t n);
/* Base64 (standard alphabet, padded, no newlines). encode: returns the text
 * length, written to out (cap must hold 4 * ceil(n / 3) + 1 bytes).
 * decode: returns the byte count, or -1 for malformed input or when it
 * does not fit in cap. */
MQ_HIDDEN size_t mq_b64_encode(const void *in, size_t n, char *out, size_t cap);
MQ_HIDDEN long mq_b64_decode(const char *in, size_t n, void *out, size_t cap);
/* Constant-time equality of n bytes: 1 if equal. */
MQ_HIDDEN int mq_ct_equal(const void *a, const void *b, size_t n);

#endif
