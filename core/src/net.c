/*
 * net.c - non-blocking TCP for the client and the broker.
 */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

uint64_t mq_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mq_net_addrs_free(const mq_alloc *a, mq_addrs *addrs)
{
    mq_free(a, addrs->addr);
    mq_free(a, addrs->len);
    memset(addrs, 0, sizeof *addrs);
}

int mq_net_resolve(const mq_alloc *a, const char *host, int port, int passive, mq_addrs *out,
                   mq_err *err)
{
    memset(out, 0, sizeof *out);
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    /* Literal addresses must never wait on a resolver. */
    struct in6_addr tmp6;
    struct in_addr tmp4;
    if (host && (inet_pton(AF_INET, host, &tmp4) == 1 || inet_pton(AF_INET6, host, &tmp6) == 1))
        hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || !res)
        return mq_err_set(err, MQLITE_ERR_DNS, "cannot resolve \"%s\": %s", host ? host : "",
                          gai_strerror(rc));
    int n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    out->addr = mq_calloc(a, (size_t)n * sizeof *out->addr);
    out->len = mq_calloc(a, (size_t)n * sizeof *out->len);
    if (!out->addr || !out->len) {
        freeaddrinfo(res);
        mq_net_addrs_free(a, out);
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    }
    /* Interleave families: first the family getaddrinfo preferred, then
     * alternate, so that one broken family does not delay the other. */
    int fam0 = res->ai_family, k = 0;
    for (int round = 0; k < n; round++) {
        int want = (round % 2 == 0) ? fam0 : (fam0 == AF_INET ? AF_INET6 : AF_INET);
        int took = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if (ai->ai_family != want || ai->ai_addrlen > sizeof out->addr[0])
                continue;
            int dup = 0;
            for (int j = 0; j < k; j++)
                if (out->len[j] == ai->ai_addrlen &&
                    memcmp(&out->addr[j], ai->ai_addr, ai->ai_addrlen) == 0)
                    dup = 1;
            if (dup)
                continue;
            memcpy(&out->addr[k], ai->ai_addr, ai->ai_addrlen);
            out->len[k] = ai->ai_addrlen;
            k++;
            took = 1;
            break;
        }
        if (!took && round > 2 * n)
            break;
    }
    out->n = k;
    freeaddrinfo(res);
    if (k == 0)
        return mq_err_set(err, MQLITE_ERR_DNS, "no usable address for \"%s\"", host ? host : "");
    return 0;
}

void mq_net_addr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
        snprintf(buf, cap, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        snprintf(buf, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(buf, cap, "?");
    }
}

int mq_net_connect_start(const struct sockaddr *sa, socklen_t len, int nodelay, mq_err *err)
{
    char at[64];
    mq_net_addr_text(sa, at, sizeof at);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return mq_err_set(err, MQLITE_ERR_IO, "socket() for %s: %s", at, strerror(errno));
    if (nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, sa, len) == 0 || errno == EINPROGRESS)
        return fd;
    int e = errno;
    close(fd);
    return mq_err_set(err, MQLITE_ERR_IO, "connect to %s: %s", at, strerror(e));
}

int mq_net_connect_result(int fd, mq_err *err)
{
    int so = 0;
    socklen_t sl = sizeof so;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0)
        so = errno;
    if (so == 0)
        return 0;
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    char at[64] = "peer";
    if (getpeername(fd, (struct sockaddr *)&ss, &l) == 0)
        mq_net_addr_text((struct sockaddr *)&ss, at, sizeof at);
    return mq_err_set(err, MQLITE_ERR_IO, "connect: %s", strerror(so));
}

int mq_net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int *bound_port,
                  mq_err *err)
{
    char at[64];
    mq_net_addr_text(sa, at, sizeof at);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return mq_err_set(err, MQLITE_ERR_IO, "socket() for %s: %s", at, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return mq_err_set(err, MQLITE_ERR_IO, "cannot listen on %s: %s", at, strerror(e));
    }
    if (bound_port) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        *bound_port = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0) {
            if (ss.ss_family == AF_INET)
                *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    return fd;
}

int mq_net_accept(int lfd, char *peer, size_t peer_cap)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            return MQLITE_ERR_AGAIN;
        return MQLITE_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (peer && peer_cap)
        mq_net_addr_text((struct sockaddr *)&ss, peer, peer_cap);
    return fd;
}

long mq_net_read(int fd, void *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MQLITE_ERR_AGAIN;
        return MQLITE_ERR_IO;
    }
}

long mq_net_write(int fd, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MQLITE_ERR_AGAIN;
        return MQLITE_ERR_IO;
    }
}

void mq_net_close(int fd)
{
    if (fd >= 0)
        close(fd);
}
