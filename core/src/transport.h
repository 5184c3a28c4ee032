/*
 * transport.h - the client's connection, from a host name to an open byte
 * stream, without ever blocking: asynchronous name resolution (c-ares),
 * non-blocking TCP connect over every address (IPv6 and IPv4 interleaved),
 * then an optional TLS handshake (tls.c), and afterwards read/write over
 * TCP or TLS. The client handle (client.c) owns one and drives it from its
 * poll-driven loop; the session engine never sees it.
 *
 * Phases: IDLE -> RESOLVING -> CONNECTING -> HANDSHAKE -> OPEN (-> IDLE on
 * close or failure). During the first three, mq_tp_fd / mq_tp_want_write /
 * mq_tp_deadline say what to wait for, and mq_tp_step advances:
 *   - RESOLVING: the fd is an epoll fd gathering c-ares' sockets (readable
 *     when any of them is ready); want_write is 0; the deadline is the
 *     earlier of c-ares' retransmission and the resolution timeout.
 *   - CONNECTING: the TCP socket, writable when connected; the phase's
 *     timeout is shared by the addresses (one with others after it gets
 *     half of what is left), then the next address.
 *   - HANDSHAKE: the TCP socket; want_write as the handshake asks.
 * Every phase is bounded by `timeout_ms` (MQLITE_OPT_CONNECT_TIMEOUT_MS).
 */
#ifndef MQ_TRANSPORT_H
#define MQ_TRANSPORT_H

#include "common.h"
#include "net.h"
#include "tls.h"

#define MQ_TP_IDLE 0
#define MQ_TP_RESOLVING 1
#define MQ_TP_CONNECTING 2
#define MQ_TP_HANDSHAKE 3
#define MQ_TP_OPEN 4

/* Client TLS settings as the options set them (strings owned here). */
typedef struct mq_tp_tls {
    uint8_t enabled;
    uint8_t insecure;          /* skip all certificate checks */
    uint8_t verify_hostname;   /* default 1 */
    uint8_t system_ca;         /* also trust the system store */
    uint8_t min_version;       /* 12 or 13 */
    char *cafile, *capath, *certfile, *keyfile, *key_password;
    char *ciphers, *ciphersuites, *server_name, *alpn;
} mq_tp_tls;

typedef struct mq_transport {
    const mq_alloc *a;
    int phase;
    int fd;                    /* TCP socket, -1 when none */
    int efd;                   /* epoll fd while resolving, -1 otherwise */
    void *dns;                 /* ares_channel while resolving */
    uint8_t dns_done;          /* the resolver's callback ran */
    int32_t dns_status;        /* its outcome: 0 or MQLITE_ERR_* */
    char dns_msg[160];
    mq_addrs addrs;
    int addr_idx;
    uint64_t deadline;         /* of the current phase */
    uint64_t resolve_deadline;
    uint64_t tcp_end;          /* the TCP phase's overall deadline */
    char *host;
    int port;
    /* settings (copied by the owner's setters) */
    uint8_t nodelay;
    uint32_t timeout_ms;
    char *dns_servers;         /* "ip[:port],..." for c-ares, or NULL: system */
    mq_tp_tls tls;
    mq_tls_ctx *tls_ctx;       /* built at the first connect after a change */
    mq_tls *conn;              /* the TLS connection, when there is one */
} mq_transport;

MQ_HIDDEN void mq_tp_init(mq_transport *t, const mq_alloc *a);
/* Close and free everything, settings included. */
MQ_HIDDEN void mq_tp_free(mq_transport *t);

/* Set a string setting (MQLITE_OPT_TLS_* / MQLITE_OPT_DNS_SERVERS; NULL
 * clears). 0, MQLITE_ERR_OPTION (not ours), MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_tp_set_str(mq_transport *t, int32_t option, const char *v, size_t len,
                            mq_err *err);
/* Integer TLS settings: 0, MQLITE_ERR_OPTION, MQLITE_ERR_RANGE. */
MQ_HIDDEN int mq_tp_set_int(mq_transport *t, int32_t option, int64_t v, mq_err *err);
/* 1 and *v when option is one of ours, else 0. */
MQ_HIDDEN int mq_tp_get_int(const mq_transport *t, int32_t option, int64_t *v);

/*
 * mq_tp_start - begin connecting to host:port. Literal addresses skip the
 * resolver. Returns 0 (in progress: phase RESOLVING or CONNECTING) or an
 * error with the message in err (bad TLS settings, no socket, resolver
 * could not start). The host is copied.
 */
MQ_HIDDEN int mq_tp_start(mq_transport *t, const char *host, int port, uint64_t now,
                          mq_err *err);

/*
 * mq_tp_step - advance a connection under way after the caller's poll
 * (readable/writable on mq_tp_fd) or a deadline. Returns 1 when the stream
 * just became OPEN, 0 while still in progress, or a negative error (the
 * transport is closed again; the message in err says what failed, e.g.
 * "TLS handshake failed: server certificate verify failed: certificate has
 * expired" or "cannot resolve \"x\": timed out after 300 ms").
 */
MQ_HIDDEN int mq_tp_step(mq_transport *t, int readable, int writable, uint64_t now, mq_err *err);

/* 1 while resolving, connecting or in the handshake. */
MQ_HIDDEN int mq_tp_connecting(const mq_transport *t);
/* The fd to poll (-1 when idle). */
MQ_HIDDEN int mq_tp_fd(const mq_transport *t);
/* 1 when the fd must be polled for writability for the transport's own
 * sake (TCP connect, handshake or a TLS read waiting to write). */
MQ_HIDDEN int mq_tp_want_write(const mq_transport *t);
/* Deadline of the phase under way, or UINT64_MAX (also once OPEN: the
 * owner checks mq_tp_pending itself). */
MQ_HIDDEN uint64_t mq_tp_deadline(const mq_transport *t);

/* On an OPEN stream, as mq_net_read / mq_net_write: > 0 bytes (read),
 * >= 0 (write, may be short), 0 peer closed (read), MQLITE_ERR_AGAIN,
 * or an error with its message in err. */
MQ_HIDDEN long mq_tp_read(mq_transport *t, void *buf, size_t cap, mq_err *err);
MQ_HIDDEN long mq_tp_write(mq_transport *t, const void *buf, size_t len, mq_err *err);
/* Decrypted bytes waiting inside TLS (read them without polling). */
MQ_HIDDEN size_t mq_tp_pending(const mq_transport *t);

/* Close the connection (TLS close_notify best effort) and return to IDLE.
 * Settings are kept. */
MQ_HIDDEN void mq_tp_close(mq_transport *t);

#endif
