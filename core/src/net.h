/*
 * net.h - the transport layer: non-blocking TCP sockets (IPv4 and IPv6) for
 * the client and the broker. The only module besides tls.c that touches
 * file descriptors; it never blocks and never raises SIGPIPE (MSG_NOSIGNAL
 * per send, not a process-wide signal disposition).
 */
#ifndef MQ_NET_H
#define MQ_NET_H

#include "common.h"

#include <sys/socket.h>

/* A resolved address list, owned by the caller (mq_net_addrs_free). */
typedef struct mq_addrs {
    struct sockaddr_storage *addr;
    socklen_t *len;
    int n;
} mq_addrs;

/* Resolve host:port for TCP (numeric hosts never touch DNS). IPv6 and IPv4
 * results are interleaved, first family first (RFC 8305 spirit).
 * 0, MQLITE_ERR_DNS (message in err) or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_net_resolve(const mq_alloc *a, const char *host, int port, int passive,
                             mq_addrs *out, mq_err *err);
MQ_HIDDEN void mq_net_addrs_free(const mq_alloc *a, mq_addrs *addrs);

/* Start a non-blocking connect. Returns the fd (>= 0; the connect may be in
 * progress: wait for writability, then mq_net_connect_result) or a negative
 * MQLITE_ERR_IO with the reason in err. */
MQ_HIDDEN int mq_net_connect_start(const struct sockaddr *sa, socklen_t len, int nodelay,
                                   mq_err *err);
/* After the fd became writable: 0 when connected, MQLITE_ERR_IO otherwise. */
MQ_HIDDEN int mq_net_connect_result(int fd, mq_err *err);

/* A listening, non-blocking, close-on-exec socket with SO_REUSEADDR.
 * Returns the fd or MQLITE_ERR_IO (message in err); *bound_port gets the
 * port actually bound. */
MQ_HIDDEN int mq_net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int *bound_port,
                            mq_err *err);
/* Accept one connection (non-blocking, close-on-exec, TCP_NODELAY). Returns
 * the fd, MQLITE_ERR_AGAIN when none is waiting, or MQLITE_ERR_IO. `peer`
 * (may be NULL) receives "ip:port" text. */
MQ_HIDDEN int mq_net_accept(int lfd, char *peer, size_t peer_cap);

/* Read up to cap bytes. Returns the count (> 0), 0 when the peer closed,
 * MQLITE_ERR_AGAIN when nothing is there, MQLITE_ERR_IO on error. */
MQ_HIDDEN long mq_net_read(int fd, void *buf, size_t cap);
/* Write up to len bytes. Returns the count (>= 0; may be short),
 * MQLITE_ERR_AGAIN, or MQLITE_ERR_IO (including a reset peer). */
MQ_HIDDEN long mq_net_write(int fd, const void *buf, size_t len);

MQ_HIDDEN void mq_net_close(int fd);
/* Format an address as "ip:port" ("[ip6]:port"). */
MQ_HIDDEN void mq_net_addr_text(const struct sockaddr *sa, char *buf, size_t cap);

/* Monotonic clock in milliseconds (client and broker, never the engine). */
MQ_HIDDEN uint64_t mq_net_now_ms(void);

#endif
