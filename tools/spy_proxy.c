/*
 * spy_proxy.c - `mqlite spy --proxy LISTEN_PORT --to HOST:PORT`: a
 * forwarding proxy that decodes what it forwards.
 *
 * One poll() loop over the listener and both sockets of every connection;
 * all sockets non-blocking. Each direction has a bounded forwarding buffer:
 * while it is full the proxy stops reading that side (TCP back-pressure),
 * so nothing is ever dropped. Decoding works on a copy of the bytes: a
 * per-direction buffer fed to mqlite_packet_decode() as a stream. After a
 * malformed packet the decoder of that direction stops (the framing can no
 * longer be trusted) but forwarding goes on unchanged.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pktprint.h"
#include "spy.h"
#include "spy_fmt.h"

#define FLOW_BUF (64 * 1024)
#define DECODE_MAX (16u << 20) /* larger packets are skipped, not decoded */
#define DUMP_MAX 256           /* bytes of a malformed packet shown */

typedef struct flow {
    unsigned char buf[FLOW_BUF]; /* read from one side, not yet written to the other */
    size_t len;
    int eof;  /* the reading side closed */
    int shut; /* we shut down writing to the other side */
    uint64_t bytes;
    int to_broker;
    sbuf dec;    /* decoder input */
    size_t skip; /* bytes of an oversized packet still to pass undecoded */
    int stopped; /* decoding gave up (malformed) */
} flow;

typedef struct pconn {
    int id;
    int cfd, sfd;
    int connecting;
    flow up, down; /* up: client to broker */
    int version;   /* protocol level from the CONNECT, 0 before */
    const char *first_eof;
    char peer[64];
} pconn;

typedef struct proxy {
    const spy_opts *so;
    int lfd;
    struct addrinfo *upstream;
    pconn **conns;
    size_t n, cap;
    int next_id;
    struct pollfd *pfd;
    size_t pfd_cap;
} proxy;

/* ------------------------------------------------------------ printing */

static void stamp(const pconn *c, const flow *f)
{
    char ts[32];
    spy_iso8601(spy_wall_ms(), ts);
    if (!c)
        printf("%s ", ts);
    else if (!f)
        printf("%s #%d ", ts, c->id);
    else
        printf("%s #%d %s ", ts, c->id, f->to_broker ? "C->B" : "B->C");
}

/* Size of the packet at b[0..n) from its fixed header, or 0 when the
 * header is incomplete or its remaining length is not a valid one. */
static size_t frame_len(const unsigned char *b, size_t n)
{
    size_t rem = 0;
    for (size_t i = 1; i < n && i <= 4; i++) {
        rem |= (size_t)(b[i] & 0x7f) << (7 * (i - 1));
        if (!(b[i] & 0x80))
            return 1 + i + rem;
    }
    return 0;
}

static void report_bad(pconn *c, flow *f, int32_t err, const unsigned char *b, size_t n)
{
    stamp(c, f);
    printf("%s %s: %s\n", mqlite_error_is_malformed(err) ? "MALFORMED PACKET" : "PROTOCOL ERROR",
           mqlite_error_name(err), mqlite_strerror(err));
    size_t len = frame_len(b, n);
    if (len == 0 || len > n)
        len = n; /* framing unknown: show what there is */
    size_t shown = len < DUMP_MAX ? len : DUMP_MAX;
    sbuf hex = {0};
    for (size_t i = 0; i < shown; i++)
        sb_printf(&hex, "%s%02x", i ? " " : "", b[i]);
    stamp(c, f);
    printf("  bytes (%zu%s): %s%s\n", len, len > shown ? ", first shown" : "", sb_str(&hex),
           len > shown ? " ..." : "");
    sb_free(&hex);
    stamp(c, f);
    printf("  decoding of this direction stops here (the framing is lost); "
           "its bytes are still forwarded\n");
}

/* ------------------------------------------------------------- decoding */

static void dec_consume(flow *f, size_t n)
{
    memmove(f->dec.p, f->dec.p + n, f->dec.len - n);
    f->dec.len -= n;
}

static void stop_decoding(flow *f)
{
    f->stopped = 1;
    sb_free(&f->dec);
}

/* Skip a packet too large to hold; `need` is its whole size. */
static void skip_packet(pconn *c, flow *f, size_t need)
{
    stamp(c, f);
    printf("%s of %zu bytes: too large to decode here, forwarded undecoded\n",
           mqlite_packet_type_name((unsigned char)f->dec.p[0] >> 4), need);
    f->skip = need - f->dec.len;
    f->dec.len = 0;
}

/* Decode every whole packet in f->dec; 1 if a CONNECT set the version. */
static int decode_all(pconn *c, flow *f)
{
    int learned = 0;
    while (!f->stopped && f->dec.len > 0) {
        if (!f->to_broker && c->version == 0)
            break; /* B->C waits for the CONNECT's protocol level */
        size_t used = 0, need = 0;
        int32_t err = 0;
        int32_t flags = f->to_broker ? MQLITE_DECODE_SERVER : MQLITE_DECODE_CLIENT;
        mqlite_packet *p =
            mqlite_packet_decode(f->dec.p, f->dec.len, c->version, flags, 0, &used, &need, &err);
        if (!p && err) {
            report_bad(c, f, err, (const unsigned char *)f->dec.p, f->dec.len);
            stop_decoding(f);
            break;
        }
        if (!p) {
            if (need > DECODE_MAX)
                skip_packet(c, f, need);
            break;
        }
        if (mqlite_packet_int(p, MQLITE_PF_TYPE) == MQLITE_PKT_CONNECT) {
            c->version = (int)mqlite_packet_int(p, MQLITE_PF_VERSION);
            learned = 1;
        }
        stamp(c, f);
        pkt_print(stdout, p);
        mqlite_packet_free(p);
        dec_consume(f, used);
    }
    return learned;
}

static void decode_feed(pconn *c, flow *f, const unsigned char *data, size_t n)
{
    if (f->stopped)
        return;
    size_t k = f->skip < n ? f->skip : n;
    f->skip -= k;
    if (n > k)
        sb_put(&f->dec, data + k, n - k);
    if (decode_all(c, f) && f->to_broker)
        decode_all(c, &c->down);
    if (!f->to_broker && c->version == 0 && f->dec.len > FLOW_BUF) {
        stamp(c, f);
        printf("no CONNECT seen from the client: not decoding this direction\n");
        stop_decoding(f);
    }
}

/* ------------------------------------------------------------- plumbing */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Read what fits; -1 on a socket error. */
static int pump_read(pconn *c, flow *f, int fd)
{
    if (f->eof || f->len == FLOW_BUF)
        return 0;
    ssize_t n = recv(fd, f->buf + f->len, FLOW_BUF - f->len, 0);
    if (n > 0) {
        decode_feed(c, f, f->buf + f->len, (size_t)n);
        f->len += (size_t)n;
        f->bytes += (uint64_t)n;
    } else if (n == 0) {
        f->eof = 1;
        if (!c->first_eof)
            c->first_eof = f->to_broker ? "the client" : "the broker";
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        stamp(c, NULL);
        printf("%s: %s\n", f->to_broker ? "client socket" : "broker socket", strerror(errno));
        return -1;
    }
    return 0;
}

static int pump_write(pconn *c, flow *f, int fd)
{
    if (f->len == 0)
        return 0;
    ssize_t n = send(fd, f->buf, f->len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        stamp(c, NULL);
        printf("%s: %s\n", f->to_broker ? "broker socket" : "client socket", strerror(errno));
        return -1;
    }
    memmove(f->buf, f->buf + n, f->len - (size_t)n);
    f->len -= (size_t)n;
    return 0;
}

static void half_close(flow *f, int fd)
{
    if (f->eof && f->len == 0 && !f->shut) {
        shutdown(fd, SHUT_WR);
        f->shut = 1;
    }
}

/* The upstream connect finished (or failed); -1 when it failed. */
static int finish_connect(proxy *p, pconn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS)
        return 0;
    if (err) {
        stamp(c, NULL);
        printf("cannot connect to %s:%d: %s; closing the client's connection\n", p->so->to_host,
               p->so->to_port, strerror(err));
        return -1;
    }
    c->connecting = 0;
    return 0;
}

/* One poll round's work for one connection; 1 when it is over. */
static int conn_step(proxy *p, pconn *c, short rc, short rs)
{
    if (c->connecting && rs && finish_connect(p, c))
        return 1;
    if ((rc & (POLLIN | POLLHUP | POLLERR)) && pump_read(c, &c->up, c->cfd))
        return 1;
    if (c->connecting)
        return 0;
    if ((rs & (POLLIN | POLLHUP | POLLERR)) && pump_read(c, &c->down, c->sfd))
        return 1;
    if (pump_write(c, &c->up, c->sfd) || pump_write(c, &c->down, c->cfd))
        return 1;
    half_close(&c->up, c->sfd);
    half_close(&c->down, c->cfd);
    if (c->up.shut && c->down.shut) {
        stamp(c, NULL);
        printf("closed by %s (C->B %llu bytes, B->C %llu bytes)\n",
               c->first_eof ? c->first_eof : "both sides", (unsigned long long)c->up.bytes,
               (unsigned long long)c->down.bytes);
        return 1;
    }
    return 0;
}

static void conn_free(pconn *c)
{
    close(c->cfd);
    if (c->sfd >= 0)
        close(c->sfd);
    sb_free(&c->up.dec);
    sb_free(&c->down.dec);
    free(c);
}

/* Start the connection to the broker: first address that takes it. */
static int connect_upstream(proxy *p, pconn *c)
{
    for (struct addrinfo *ai = p->upstream; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        set_nonblock(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->sfd = fd;
            c->connecting = 1;
            return 0;
        }
        close(fd);
    }
    stamp(c, NULL);
    printf("cannot connect to %s:%d: %s; closing the client's connection\n", p->so->to_host,
           p->so->to_port, strerror(errno));
    return -1;
}

static void add_conn(proxy *p, int fd, const struct sockaddr_in *from)
{
    pconn *c = spy_xrealloc(NULL, sizeof *c);
    memset(c, 0, sizeof *c);
    c->id = ++p->next_id;
    c->cfd = fd;
    c->sfd = -1;
    c->up.to_broker = 1;
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    snprintf(c->peer, sizeof c->peer, "%s:%u", ip, (unsigned)ntohs(from->sin_port));
    stamp(c, NULL);
    printf("open: client %s, forwarding to %s:%d\n", c->peer, p->so->to_host, p->so->to_port);
    if (connect_upstream(p, c)) {
        conn_free(c);
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->conns = spy_xrealloc(p->conns, p->cap * sizeof *p->conns);
    }
    p->conns[p->n++] = c;
}

static void accept_all(proxy *p)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        int fd = accept(p->lfd, (struct sockaddr *)&from, &len);
        if (fd < 0)
            return; /* EAGAIN, or a connection that went away meanwhile */
        set_nonblock(fd);
        add_conn(p, fd, &from);
    }
}

/* ------------------------------------------------------------------ loop */

/* Interest of one socket: read while there is room, write while there is data. */
static void want(struct pollfd *pf, int fd, const flow *in, const flow *out, int connecting)
{
    pf->fd = fd;
    pf->events = 0;
    pf->revents = 0;
    if (connecting) {
        pf->events = fd == -1 ? 0 : POLLOUT;
        return;
    }
    if (!in->eof && in->len < FLOW_BUF)
        pf->events |= POLLIN;
    if (out->len > 0)
        pf->events |= POLLOUT;
    if (!pf->events)
        pf->fd = -1; /* nothing wanted: no POLLHUP spinning either */
}

static size_t build_pollfds(proxy *p)
{
    size_t need = 1 + 2 * p->n;
    if (need > p->pfd_cap) {
        p->pfd_cap = need * 2;
        p->pfd = spy_xrealloc(p->pfd, p->pfd_cap * sizeof *p->pfd);
    }
    p->pfd[0] = (struct pollfd){p->lfd, POLLIN, 0};
    for (size_t i = 0; i < p->n; i++) {
        pconn *c = p->conns[i];
        want(&p->pfd[1 + 2 * i], c->cfd, &c->up, &c->down, 0);
        want(&p->pfd[2 + 2 * i], c->sfd, &c->down, &c->up, c->connecting);
    }
    return need;
}

static void step_all(proxy *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        pconn *c = p->conns[i];
        if (conn_step(p, c, p->pfd[1 + 2 * i].revents, p->pfd[2 + 2 * i].revents))
            conn_free(c);
        else
            p->conns[k++] = c;
    }
    p->n = k;
}

static int run(proxy *p)
{
    int64_t deadline = p->so->timeout_s ? spy_now_ms() + p->so->timeout_s * 1000 : 0;
    while (!spy_quit_requested()) {
        int wait_ms = 250;
        if (deadline) {
            int64_t left = deadline - spy_now_ms();
            if (left <= 0)
                return 0;
            if (left < wait_ms)
                wait_ms = (int)left;
        }
        size_t n = build_pollfds(p);
        int r = poll(p->pfd, (nfds_t)n, wait_ms);
        if (r < 0 && errno != EINTR) {
            perror("mqlite spy: poll");
            return 1;
        }
        if (r > 0) {
            step_all(p);
            if (p->pfd[0].revents & POLLIN)
                accept_all(p);
        }
        fflush(stdout);
    }
    return 0;
}

/* --------------------------------------------------------------- set-up */

static int write_port_file(const char *path, int port)
{
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
        fprintf(stderr, "mqlite spy: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int listen_on(proxy *p)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p->so->proxy_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof a;
    if (p->lfd < 0 || setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(p->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(p->lfd, 64) < 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &len) < 0 || set_nonblock(p->lfd) < 0) {
        fprintf(stderr, "mqlite spy: cannot listen on 127.0.0.1:%d: %s\n", p->so->proxy_port,
                strerror(errno));
        return -1;
    }
    int port = ntohs(a.sin_port);
    stamp(NULL, NULL);
    printf("proxy listening on 127.0.0.1:%d, forwarding to %s:%d\n", port, p->so->to_host,
           p->so->to_port);
    fflush(stdout);
    return p->so->port_file ? write_port_file(p->so->port_file, port) : 0;
}

static int resolve(proxy *p)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", p->so->to_port);
    int rc = getaddrinfo(p->so->to_host, port, &hints, &p->upstream);
    if (rc) {
        fprintf(stderr, "mqlite spy: cannot resolve %s: %s\n", p->so->to_host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

int spy_run_proxy(const spy_opts *so)
{
    proxy p;
    memset(&p, 0, sizeof p);
    p.so = so;
    p.lfd = -1;
    spy_signals_install();
    int rc = 1;
    if (resolve(&p) == 0 && listen_on(&p) == 0)
        rc = run(&p);
    for (size_t i = 0; i < p.n; i++)
        conn_free(p.conns[i]);
    free(p.conns);
    free(p.pfd);
    if (p.upstream)
        freeaddrinfo(p.upstream);
    if (p.lfd >= 0)
        close(p.lfd);
    fflush(stdout);
    return rc;
}
