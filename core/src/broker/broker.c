/*
 * broker.c - the mqlite_broker handle: options, listeners, the epoll loop
 * with write batching, timers, the eventfd that mqlite_broker_stop() uses,
 * and the public API of the "Broker" section of mqlite.h.
 *
 * One round of mqlite_broker_poll(): wait on epoll (until the earliest
 * timer at most); accept, read and handle packets as they come, appending
 * every reply and delivery to per-connection output buffers; run due
 * timers; then write each connection's output once (EPOLLOUT stays
 * registered only while output is left); then free what was closed.
 */
#define _GNU_SOURCE
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "persist.h"
#include "log.h"
#include "net.h"
#include "retain.h"
#include "router.h"
#include "session.h"
#include "sys.h"

#define RBUF_SIZE (64u * 1024u)
#define MAX_EVENTS 256
#define TIMER_SLACK_MS 20u
/* Connections accepted only to be refused with a CONNACK (limits): at most
 * this many at once, each for at most REFUSE_MS; beyond, closed at accept. */
#define MAX_REFUSING 64u
#define REFUSE_MS 2000u
/* Per-address connection rate: counters for this many addresses per second
 * (open addressing, RATE_PROBE slots tried); when full, not counted. */
#define RATE_SLOTS 1024u
#define RATE_PROBE 8u

struct mq_rate {
    uint64_t sec;
    uint32_t count;
    char ip[48];
};

static int bad(const mqlite_broker *b)
{
    return !b || b->magic != MQ_BROKER_MAGIC;
}

static void defaults(mq_bopts *o)
{
    o->max_packet_size = MQ_MAX_PACKET_SIZE;
    o->max_inflight = 20;
    o->max_queued = 1000;
    o->max_queued_bytes = 0;
    o->session_expiry_max_s = 0;
    o->sys_interval_s = 10;
    o->connect_timeout_ms = 10000;
    o->max_connections = 0;
    o->max_keepalive_s = 65535;
    o->receive_max = 65535;
    o->topic_alias_max = 10;
    o->retain_available = 1;
    o->allow_anonymous = 1;
    o->max_qos = 2;
    o->wildcard_subs = 1;
    o->shared_subs = 1;
    o->subscription_ids = 1;
    o->auth_external = 0;
    o->slow_policy = MQ_SLOW_DROP_QOS0;
    o->max_conn_rate = 0;
    o->tls_handshake_timeout_ms = 5000;
    o->max_backlog_bytes = 16u * 1024u * 1024u;
    o->log_level = MQLITE_LOG_WARNING;
    o->persist_sync = MQLITE_PERSIST_SYNC_ALWAYS;
    o->persist_interval_ms = 1000;
}

/* ---- services for the modules ---- */

void mq_broker_wake_at(mqlite_broker *b, uint64_t at)
{
    if (at && (!b->next_tick_ms || at < b->next_tick_ms))
        b->next_tick_ms = at;
}

void mq_broker_mark_dirty(mqlite_broker *b, mq_conn *c)
{
    c->dirty = 1;
    c->dirty_next = b->dirty;
    b->dirty = c;
}

int mq_broker_publish(mqlite_broker *b, mq_msg *m, const mq_bsess *from)
{
    /* 3.1.1 [MQTT-3.3.1-5], 5.0 [MQTT-3.3.1-5]: store (or clear) first,
     * then deliver as a normal message. */
    if (m->retain && mq_retain_store(b, m))
        mq_blog(b, MQLITE_LOG_WARNING, "out of memory: retained message not stored");
    else if (m->retain)
        mq_persist_retained(b, m);
    return mq_router_publish(b, m, from);
}

/* ---- lifecycle ---- */

static int init_io(mqlite_broker *b)
{
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->epfd < 0 || b->wakefd < 0)
        return MQLITE_ERR_IO;
    b->wake_tag = MQ_EP_WAKE;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &b->wake_tag;
    return epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wakefd, &ev) ? MQLITE_ERR_IO : 0;
}

MQLITE_API mqlite_broker *mqlite_broker_new_with_allocator(mqlite_realloc_fn fn, void *ud)
{
    if (!fn)
        return NULL;
    mq_alloc a = {fn, ud};
    mqlite_broker *b = mq_calloc(&a, sizeof *b);
    if (!b)
        return NULL;
    b->a = a;
    b->magic = MQ_BROKER_MAGIC;
    b->epfd = b->wakefd = -1;
    atomic_init(&b->stopping, 0);
    defaults(&b->o);
    mq_bsec_init(&b->gsec);
    b->now_ms = b->started_ms = mq_net_now_ms();
    b->rbuf_cap = RBUF_SIZE;
    b->rbuf = mq_malloc(&b->a, b->rbuf_cap);
    if (!b->rbuf || init_io(b) || mq_router_init(b) || mq_retain_init(b) ||
        mq_tls_random(b->secret, sizeof b->secret)) {
        mqlite_broker_free(b);
        return NULL;
    }
    mq_broker_wake_at(b, b->now_ms); /* first $SYS pass */
    return b;
}

MQLITE_API mqlite_broker *mqlite_broker_new(void)
{
    return mqlite_broker_new_with_allocator(mq_default_alloc.fn, mq_default_alloc.ud);
}

MQLITE_API void mqlite_broker_free(mqlite_broker *b)
{
    if (bad(b))
        return;
    while (b->conns) {
        mq_conn *c = b->conns;
        mq_conn_shutdown(c);
        mq_conn_free(c);
    }
    while (b->dead) {
        mq_conn *c = b->dead;
        b->dead = c->next;
        mq_conn_free(c);
    }
    mq_persist_close(b); /* commits what is pending; sessions stay in it */
    mq_bsess_free_all(b);
    mq_router_free(b);
    mq_retain_free(b);
    mq_auth_free_all(b);
    for (int i = 0; i < b->nls; i++) {
        mq_net_close(b->ls[i]->fd);
        mq_tls_ctx_free(b->ls[i]->tls);
        mq_free(&b->a, b->ls[i]);
    }
    mq_bsec_clear(b, &b->gsec);
    while (b->secs) {
        mq_bsec *sc = b->secs;
        b->secs = sc->next;
        mq_bsec_clear(b, sc);
        mq_free(&b->a, sc);
    }
    mq_free(&b->a, b->rate);
    mq_free(&b->a, b->ls);
    mq_net_close(b->epfd);
    mq_net_close(b->wakefd);
    mq_free(&b->a, b->rbuf);
    mq_free(&b->a, b->stack);
    mq_free(&b->a, b->config_path);
    mq_buf_free(&b->scratch, &b->a);
    b->magic = 0;
    mq_alloc a = b->a;
    mq_free(&a, b);
}

/* ---- options ---- */

typedef struct opt_def {
    int32_t id;
    int64_t lo, hi;
    const char *name;
} opt_def;

static const opt_def opt_defs[] = {
    {MQLITE_BOPT_MAX_PACKET_SIZE, 20, MQ_MAX_PACKET_SIZE, "MQLITE_BOPT_MAX_PACKET_SIZE"},
    {MQLITE_BOPT_MAX_INFLIGHT, 1, 65535, "MQLITE_BOPT_MAX_INFLIGHT"},
    {MQLITE_BOPT_MAX_QUEUED, 0, UINT32_MAX, "MQLITE_BOPT_MAX_QUEUED"},
    {MQLITE_BOPT_MAX_QUEUED_BYTES, 0, INT64_MAX, "MQLITE_BOPT_MAX_QUEUED_BYTES"},
    {MQLITE_BOPT_RETAIN_AVAILABLE, 0, 1, "MQLITE_BOPT_RETAIN_AVAILABLE"},
    {MQLITE_BOPT_ALLOW_ANONYMOUS, 0, 1, "MQLITE_BOPT_ALLOW_ANONYMOUS"},
    {MQLITE_BOPT_SESSION_EXPIRY_MAX_S, 0, UINT32_MAX, "MQLITE_BOPT_SESSION_EXPIRY_MAX_S"},
    {MQLITE_BOPT_MAX_KEEPALIVE_S, 1, 65535, "MQLITE_BOPT_MAX_KEEPALIVE_S"},
    {MQLITE_BOPT_RECEIVE_MAX, 1, 65535, "MQLITE_BOPT_RECEIVE_MAX"},
    {MQLITE_BOPT_TOPIC_ALIAS_MAX, 0, 65535, "MQLITE_BOPT_TOPIC_ALIAS_MAX"},
    {MQLITE_BOPT_MAX_QOS, 0, 2, "MQLITE_BOPT_MAX_QOS"},
    {MQLITE_BOPT_SYS_INTERVAL_S, 0, 86400 * 365, "MQLITE_BOPT_SYS_INTERVAL_S"},
    {MQLITE_BOPT_CONNECT_TIMEOUT_MS, 1, INT32_MAX, "MQLITE_BOPT_CONNECT_TIMEOUT_MS"},
    {MQLITE_BOPT_LOG_LEVEL, 0, MQLITE_LOG_DEBUG, "MQLITE_BOPT_LOG_LEVEL"},
    {MQLITE_BOPT_MAX_CONNECTIONS, 0, UINT32_MAX, "MQLITE_BOPT_MAX_CONNECTIONS"},
    {MQLITE_BOPT_WILDCARD_SUBS, 0, 1, "MQLITE_BOPT_WILDCARD_SUBS"},
    {MQLITE_BOPT_SHARED_SUBS, 0, 1, "MQLITE_BOPT_SHARED_SUBS"},
    {MQLITE_BOPT_SUBSCRIPTION_IDS, 0, 1, "MQLITE_BOPT_SUBSCRIPTION_IDS"},
    {MQLITE_BOPT_AUTH_EXTERNAL, 0, 1, "MQLITE_BOPT_AUTH_EXTERNAL"},
    {MQLITE_BOPT_MAX_CONNECTION_RATE, 0, UINT32_MAX, "MQLITE_BOPT_MAX_CONNECTION_RATE"},
    {MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS, 1, INT32_MAX, "MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS"},
    {MQLITE_BOPT_MAX_BACKLOG_BYTES, 0, INT64_MAX, "MQLITE_BOPT_MAX_BACKLOG_BYTES"},
    {MQLITE_BOPT_SLOW_CLIENT_POLICY, 0, 1, "MQLITE_BOPT_SLOW_CLIENT_POLICY"},
    {MQLITE_BOPT_PERSISTENCE_SYNC, 0, 2, "MQLITE_BOPT_PERSISTENCE_SYNC"},
    {MQLITE_BOPT_PERSISTENCE_INTERVAL_MS, 1, 3600000, "MQLITE_BOPT_PERSISTENCE_INTERVAL_MS"},
};

static const opt_def *opt_find(int32_t id)
{
    for (size_t i = 0; i < MQ_ARRAY_LEN(opt_defs); i++)
        if (opt_defs[i].id == id)
            return &opt_defs[i];
    return NULL;
}

static void opt_store(mqlite_broker *b, int32_t id, int64_t v)
{
    mq_bopts *o = &b->o;
    switch (id) {
    case MQLITE_BOPT_MAX_PACKET_SIZE: o->max_packet_size = (uint32_t)v; break;
    case MQLITE_BOPT_MAX_INFLIGHT: o->max_inflight = (uint32_t)v; break;
    case MQLITE_BOPT_MAX_QUEUED: o->max_queued = (uint32_t)v; break;
    case MQLITE_BOPT_MAX_QUEUED_BYTES: o->max_queued_bytes = (uint64_t)v; break;
    case MQLITE_BOPT_RETAIN_AVAILABLE: o->retain_available = (uint8_t)v; break;
    case MQLITE_BOPT_ALLOW_ANONYMOUS:
        o->allow_anonymous = (uint8_t)v;
        b->gsec.allow_anonymous = (int8_t)v;
        break;
    case MQLITE_BOPT_SESSION_EXPIRY_MAX_S: o->session_expiry_max_s = (uint32_t)v; break;
    case MQLITE_BOPT_MAX_KEEPALIVE_S: o->max_keepalive_s = (uint16_t)v; break;
    case MQLITE_BOPT_RECEIVE_MAX: o->receive_max = (uint16_t)v; break;
    case MQLITE_BOPT_TOPIC_ALIAS_MAX: o->topic_alias_max = (uint16_t)v; break;
    case MQLITE_BOPT_MAX_QOS: o->max_qos = (uint8_t)v; break;
    case MQLITE_BOPT_SYS_INTERVAL_S:
        o->sys_interval_s = (uint32_t)v;
        b->sys.next_ms = 0;
        mq_broker_wake_at(b, b->now_ms);
        break;
    case MQLITE_BOPT_CONNECT_TIMEOUT_MS: o->connect_timeout_ms = (uint32_t)v; break;
    case MQLITE_BOPT_LOG_LEVEL: o->log_level = (int)v; break;
    case MQLITE_BOPT_MAX_CONNECTIONS: o->max_connections = (uint32_t)v; break;
    case MQLITE_BOPT_WILDCARD_SUBS: o->wildcard_subs = (uint8_t)v; break;
    case MQLITE_BOPT_SHARED_SUBS: o->shared_subs = (uint8_t)v; break;
    case MQLITE_BOPT_AUTH_EXTERNAL: o->auth_external = (uint8_t)v; break;
    case MQLITE_BOPT_MAX_CONNECTION_RATE: o->max_conn_rate = (uint32_t)v; break;
    case MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS: o->tls_handshake_timeout_ms = (uint32_t)v; break;
    case MQLITE_BOPT_MAX_BACKLOG_BYTES: o->max_backlog_bytes = (uint64_t)v; break;
    case MQLITE_BOPT_SLOW_CLIENT_POLICY: o->slow_policy = (uint8_t)v; break;
    case MQLITE_BOPT_PERSISTENCE_SYNC:
        o->persist_sync = (uint8_t)v;
        mq_persist_set_sync(b, (int)v);
        break;
    case MQLITE_BOPT_PERSISTENCE_INTERVAL_MS: o->persist_interval_ms = (uint32_t)v; break;
    default: o->subscription_ids = (uint8_t)v; break;
    }
}

int mq_broker_set_opt(mqlite_broker *b, int32_t id, int64_t v)
{
    const opt_def *d = opt_find(id);
    if (!d)
        return mq_err_set(&b->err, MQLITE_ERR_OPTION, "unknown broker option %d", (int)id);
    if (v < d->lo || v > d->hi)
        return mq_err_set(&b->err, MQLITE_ERR_RANGE, "%s must be %lld..%lld, not %lld", d->name,
                          (long long)d->lo, (long long)d->hi, (long long)v);
    opt_store(b, id, v);
    return 0;
}

MQLITE_API int32_t mqlite_broker_set_int(mqlite_broker *b, int32_t option, int64_t value)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    return mq_broker_set_opt(b, option, value);
}

MQLITE_API int64_t mqlite_broker_get_int(mqlite_broker *b, int32_t option)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    const mq_bopts *o = &b->o;
    switch (option) {
    case MQLITE_BOPT_MAX_PACKET_SIZE: return o->max_packet_size;
    case MQLITE_BOPT_MAX_INFLIGHT: return o->max_inflight;
    case MQLITE_BOPT_MAX_QUEUED: return o->max_queued;
    case MQLITE_BOPT_MAX_QUEUED_BYTES: return (int64_t)o->max_queued_bytes;
    case MQLITE_BOPT_RETAIN_AVAILABLE: return o->retain_available;
    case MQLITE_BOPT_ALLOW_ANONYMOUS: return mq_bsec_anonymous(&b->gsec);
    case MQLITE_BOPT_SESSION_EXPIRY_MAX_S: return o->session_expiry_max_s;
    case MQLITE_BOPT_MAX_KEEPALIVE_S: return o->max_keepalive_s;
    case MQLITE_BOPT_RECEIVE_MAX: return o->receive_max;
    case MQLITE_BOPT_TOPIC_ALIAS_MAX: return o->topic_alias_max;
    case MQLITE_BOPT_MAX_QOS: return o->max_qos;
    case MQLITE_BOPT_SYS_INTERVAL_S: return o->sys_interval_s;
    case MQLITE_BOPT_CONNECT_TIMEOUT_MS: return o->connect_timeout_ms;
    case MQLITE_BOPT_LOG_LEVEL: return o->log_level;
    case MQLITE_BOPT_MAX_CONNECTIONS: return o->max_connections;
    case MQLITE_BOPT_WILDCARD_SUBS: return o->wildcard_subs;
    case MQLITE_BOPT_SHARED_SUBS: return o->shared_subs;
    case MQLITE_BOPT_SUBSCRIPTION_IDS: return o->subscription_ids;
    case MQLITE_BOPT_AUTH_EXTERNAL: return o->auth_external;
    case MQLITE_BOPT_MAX_CONNECTION_RATE: return o->max_conn_rate;
    case MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS: return o->tls_handshake_timeout_ms;
    case MQLITE_BOPT_MAX_BACKLOG_BYTES: return (int64_t)o->max_backlog_bytes;
    case MQLITE_BOPT_SLOW_CLIENT_POLICY: return o->slow_policy;
    case MQLITE_BOPT_PERSISTENCE_SYNC: return o->persist_sync;
    case MQLITE_BOPT_PERSISTENCE_INTERVAL_MS: return o->persist_interval_ms;
    default:
        return mq_err_set(&b->err, MQLITE_ERR_OPTION, "unknown broker option %d", (int)option);
    }
}

/* ---- listeners ---- */

static int add_listener(mqlite_broker *b, int fd, int port, const char *host, mq_listener **out)
{
    if (b->nls == b->cls) {
        int c = b->cls ? b->cls * 2 : 4;
        mq_listener **p = mq_realloc(&b->a, b->ls, (size_t)c * sizeof *p);
        if (!p)
            return MQLITE_ERR_NOMEM;
        b->ls = p;
        b->cls = c;
    }
    mq_listener *l = mq_calloc(&b->a, sizeof *l);
    if (!l)
        return MQLITE_ERR_NOMEM;
    l->tag = MQ_EP_LISTENER;
    l->fd = fd;
    l->port = port;
    snprintf(l->host, sizeof l->host, "%s", host);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = l;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        mq_free(&b->a, l);
        return MQLITE_ERR_IO;
    }
    b->ls[b->nls++] = l;
    *out = l;
    return 0;
}

int mq_broker_listen(mqlite_broker *b, const char *host, int port, int *bound,
                     mq_listener **out)
{
    if (port < 0 || port > 65535)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID, "port %d is not 0..65535", port);
    if (!host)
        host = "127.0.0.1";
    mq_addrs addrs;
    int rc = mq_net_resolve(&b->a, host, port, 1, &addrs, &b->err);
    if (rc)
        return rc;
    int fd = MQLITE_ERR_IO, got = 0;
    for (int i = 0; i < addrs.n && fd < 0; i++)
        fd = mq_net_listen((struct sockaddr *)&addrs.addr[i], addrs.len[i], 1024, &got, &b->err);
    mq_net_addrs_free(&b->a, &addrs);
    if (fd < 0)
        return fd;
    mq_listener *l = NULL;
    rc = add_listener(b, fd, got, host, &l);
    if (rc) {
        mq_net_close(fd);
        return mq_err_set(&b->err, rc, "cannot register listener on %s:%d", host, got);
    }
    if (bound)
        *bound = got;
    if (out)
        *out = l;
    mq_blog(b, MQLITE_LOG_INFO, "listening on %s port %d", host, got);
    return 0;
}

MQLITE_API int32_t mqlite_broker_listen(mqlite_broker *b, const char *host, int32_t port,
                                        int32_t *bound_port)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    int got = 0;
    int rc = mq_broker_listen(b, host, port, &got, NULL);
    if (!rc && bound_port)
        *bound_port = got;
    return rc;
}

MQLITE_API int32_t mqlite_broker_listen_tls(mqlite_broker *b, const char *host, int32_t port,
                                            const char *certfile, const char *keyfile,
                                            const char *cafile, int32_t flags,
                                            int32_t *bound_port)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    const int32_t known = MQLITE_BTLS_REQUIRE_CERT | MQLITE_BTLS_REQUEST_CERT |
                          MQLITE_BTLS_IDENTITY_AS_USERNAME | MQLITE_BTLS_MIN_TLS13;
    if (!certfile)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID, "a TLS listener needs a certificate file");
    if (flags & ~known)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID, "unknown MQLITE_BTLS_* flags 0x%x",
                          (unsigned)(flags & ~known));
    if ((flags & MQLITE_BTLS_IDENTITY_AS_USERNAME) &&
        !(flags & (MQLITE_BTLS_REQUIRE_CERT | MQLITE_BTLS_REQUEST_CERT)))
        return mq_err_set(&b->err, MQLITE_ERR_INVALID,
                          "MQLITE_BTLS_IDENTITY_AS_USERNAME needs client certificates "
                          "(MQLITE_BTLS_REQUIRE_CERT or _REQUEST_CERT)");
    mq_tls_conf conf;
    memset(&conf, 0, sizeof conf);
    conf.server = 1;
    conf.certfile = certfile;
    conf.keyfile = keyfile;
    conf.cafile = cafile;
    conf.peer_cert = (flags & MQLITE_BTLS_REQUIRE_CERT)   ? MQ_TLS_PEER_REQUIRED
                     : (flags & MQLITE_BTLS_REQUEST_CERT) ? MQ_TLS_PEER_OPTIONAL
                                                          : MQ_TLS_PEER_NONE;
    conf.min_version = (flags & MQLITE_BTLS_MIN_TLS13) ? MQ_TLS_V1_3 : MQ_TLS_V1_2;
    mq_tls_ctx *ctx;
    int rc = mq_tls_ctx_new(&b->a, &conf, &ctx, &b->err);
    if (rc)
        return rc;
    int got = 0;
    mq_listener *l = NULL;
    rc = mq_broker_listen(b, host, port, &got, &l);
    if (rc) {
        mq_tls_ctx_free(ctx);
        return rc;
    }
    l->tls = ctx;
    l->use_identity = (flags & MQLITE_BTLS_IDENTITY_AS_USERNAME) != 0;
    if (bound_port)
        *bound_port = got;
    return 0;
}

MQLITE_API int32_t mqlite_broker_port(const mqlite_broker *b, int32_t i)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    if (i < 0 || i >= b->nls)
        return MQLITE_ERR_RANGE;
    return b->ls[i]->port;
}

MQLITE_API int32_t mqlite_broker_load_config(mqlite_broker *b, const char *path)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    if (!path)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID, "configuration file path is NULL");
    return mq_bconf_load(b, path);
}

/* ---- the loop ---- */

/* Count a new connection from peer ("ip:port"): 1 when its address went
 * over MQLITE_BOPT_MAX_CONNECTION_RATE this second. */
static int rate_exceeded(mqlite_broker *b, const char *peer)
{
    if (!b->o.max_conn_rate)
        return 0;
    if (!b->rate && !(b->rate = mq_calloc(&b->a, RATE_SLOTS * sizeof *b->rate)))
        return 0;
    char ip[48];
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= sizeof ip)
        n = sizeof ip - 1;
    memcpy(ip, peer, n);
    ip[n] = '\0';
    uint64_t sec = b->now_ms / 1000u + 1u; /* 0 marks a free slot */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)ip[i]) * 16777619u;
    struct mq_rate *slot = NULL;
    for (uint32_t k = 0; k < RATE_PROBE; k++) {
        struct mq_rate *r = &b->rate[(h + k) % RATE_SLOTS];
        if (r->sec == sec && strcmp(r->ip, ip) == 0)
            return ++r->count > b->o.max_conn_rate;
        if (!slot && r->sec != sec)
            slot = r;
    }
    if (!slot)
        return 0; /* every probed slot busy this second: not counted */
    slot->sec = sec;
    slot->count = 1;
    memcpy(slot->ip, ip, n + 1);
    return 1 > b->o.max_conn_rate;
}

/* A limit refuses this connection: 0x97 (max connections) or 0x9F
 * (connection rate), else 0. */
static uint8_t over_limit(mqlite_broker *b, const mq_listener *l, const char *peer)
{
    uint32_t active = b->nconns - b->nrefusing;
    if ((b->o.max_connections && active >= b->o.max_connections) ||
        (l->max_connections && l->nconns >= l->max_connections)) {
        b->st.refused_max++;
        mq_blog(b, MQLITE_LOG_NOTICE, "refused connection from %s: max_connections %u reached",
                peer, (unsigned)(l->max_connections && l->nconns >= l->max_connections
                                     ? l->max_connections
                                     : b->o.max_connections));
        return 0x97;
    }
    if (rate_exceeded(b, peer)) {
        b->st.refused_rate++;
        mq_blog(b, MQLITE_LOG_NOTICE,
                "refused connection from %s: over %u new connections per second", peer,
                (unsigned)b->o.max_conn_rate);
        return 0x9F;
    }
    return 0;
}

static void on_listener(mqlite_broker *b, mq_listener *l)
{
    for (int i = 0; i < 64; i++) {
        char peer[56];
        int fd = mq_net_accept(l->fd, peer, sizeof peer);
        if (fd == MQLITE_ERR_AGAIN)
            return;
        if (fd < 0) {
            mq_blog(b, MQLITE_LOG_WARNING, "accept on port %d: %s", l->port, strerror(errno));
            return;
        }
        uint8_t refuse = over_limit(b, l, peer);
        if (!refuse) {
            mq_conn_accept(b, l, fd, peer, NULL);
            continue;
        }
        /* Plain TCP: say why in a CONNACK (5.0 0x97 / 0x9F, 3.x 0x03), within
         * bounds. TLS: close at once; a handshake is what a flood costs. */
        mq_conn *c = NULL;
        if (l->tls || b->nrefusing >= MAX_REFUSING || mq_conn_accept(b, l, fd, peer, &c)) {
            if (!c)
                mq_net_close(fd);
            continue;
        }
        c->refuse = refuse;
        b->nrefusing++;
        c->deadline_ms = b->now_ms + REFUSE_MS;
        mq_broker_wake_at(b, c->deadline_ms);
    }
}

static void on_event(mqlite_broker *b, const struct epoll_event *ev)
{
    uint8_t tag = *(const uint8_t *)ev->data.ptr;
    if (tag == MQ_EP_WAKE) {
        uint64_t v;
        ssize_t r = read(b->wakefd, &v, sizeof v);
        (void)r;
        return;
    }
    if (tag == MQ_EP_LISTENER) {
        on_listener(b, ev->data.ptr);
        return;
    }
    mq_conn *c = ev->data.ptr;
    if (c->state != MQ_CONN_DEAD && (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        mq_conn_on_readable(c);
    if (c->state != MQ_CONN_DEAD && (ev->events & EPOLLOUT))
        mq_conn_on_writable(c);
}

static void run_timers(mqlite_broker *b)
{
    b->next_tick_ms = 0;
    mq_conn_tick(b);
    mq_bsess_tick(b);
    mq_bsys_tick(b);
    mq_retain_sweep(b);
    /* Trim idle connection buffers now and then (mq_conn_tick). */
    if (b->nconns)
        mq_broker_wake_at(b, b->now_ms + 5000);
    /* Coalesce: with thousands of connections the earliest deadline moves
     * all the time; a pass at most every TIMER_SLACK_MS is plenty. */
    if (b->next_tick_ms && b->next_tick_ms < b->now_ms + TIMER_SLACK_MS)
        b->next_tick_ms = b->now_ms + TIMER_SLACK_MS;
}

static void end_round(mqlite_broker *b)
{
again:
    /* Slow clients first: closing publishes wills, which dirties others. */
    while (b->slow) {
        mq_conn *c = b->slow;
        b->slow = c->slow_next;
        c->slow_next = NULL;
        c->slow = 0;
        b->st.slow_disconnected++;
        /* 5.0: DISCONNECT 0x97 Quota exceeded; the will is published. */
        mq_conn_close(c, 0x97, 1, "slow client: backlog over its limit");
    }
    b->ending_round = 1;
    while (b->dirty) {
        mq_conn *c = b->dirty;
        b->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = 0;
        mq_conn_flush(c);
    }
    b->ending_round = 0;
    /* A flush that failed closed its connection and published its will,
     * which may have made another client slow. */
    if (b->slow)
        goto again;
    while (b->dead) {
        mq_conn *c = b->dead;
        b->dead = c->next;
        mq_conn_free(c);
    }
}

static int wait_ms(const mqlite_broker *b, int32_t timeout_ms)
{
    /* Work left from outside a round (mqlite_broker_auth_reply) or input
     * OpenSSL holds: do not sleep. */
    if (b->more || b->dirty || b->dead || b->slow)
        return 0;
    if (!b->next_tick_ms)
        return timeout_ms;
    uint64_t d = b->next_tick_ms > b->now_ms ? b->next_tick_ms - b->now_ms : 0;
    if (timeout_ms >= 0 && (uint64_t)timeout_ms < d)
        return timeout_ms;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}

MQLITE_API int32_t mqlite_broker_poll(mqlite_broker *b, int32_t timeout_ms)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    if (atomic_load(&b->stopping))
        return mq_err_set(&b->err, MQLITE_ERR_STATE, "the broker was stopped");
    b->now_ms = mq_net_now_ms();
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(b->epfd, evs, MAX_EVENTS, wait_ms(b, timeout_ms));
    if (n < 0 && errno != EINTR)
        return mq_err_set(&b->err, MQLITE_ERR_IO, "epoll_wait: %s", strerror(errno));
    b->now_ms = mq_net_now_ms();
    for (int i = 0; i < n; i++)
        on_event(b, &evs[i]);
    if (b->more)
        mq_conn_read_more(b);
    if (b->next_tick_ms && b->now_ms >= b->next_tick_ms)
        run_timers(b);
    end_round(b);
    if (mq_persist_round(b))
        return mq_err_set(&b->err, MQLITE_ERR_IO, "%s; the broker stopped",
                          mq_persist_failure(b));
    if (atomic_load(&b->stopping))
        return mq_err_set(&b->err, MQLITE_ERR_STATE, "the broker was stopped");
    return 0;
}

MQLITE_API int32_t mqlite_broker_run(mqlite_broker *b)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    for (;;) {
        int rc = mqlite_broker_poll(b, -1);
        if (rc == MQLITE_ERR_STATE)
            return 0;
        if (rc)
            return rc;
    }
}

MQLITE_API void mqlite_broker_stop(mqlite_broker *b)
{
    if (bad(b))
        return;
    /* Only an atomic store and write(2): both async-signal-safe. */
    atomic_store(&b->stopping, 1);
    uint64_t one = 1;
    ssize_t r = write(b->wakefd, &one, sizeof one);
    (void)r;
}

MQLITE_API const char *mqlite_broker_errmsg(const mqlite_broker *b)
{
    if (bad(b))
        return "invalid broker handle (NULL or freed)";
    return b->err.msg;
}

MQLITE_API int64_t mqlite_broker_stat(const mqlite_broker *b, int32_t stat)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    switch (stat) {
    case MQLITE_BSTAT_CLIENTS_CONNECTED: return b->st.connected;
    case MQLITE_BSTAT_CLIENTS_TOTAL: return b->nsess;
    case MQLITE_BSTAT_MESSAGES_RECEIVED: return (int64_t)b->st.msgs_received;
    case MQLITE_BSTAT_MESSAGES_SENT: return (int64_t)b->st.msgs_sent;
    case MQLITE_BSTAT_BYTES_RECEIVED: return (int64_t)b->st.bytes_received;
    case MQLITE_BSTAT_BYTES_SENT: return (int64_t)b->st.bytes_sent;
    case MQLITE_BSTAT_RETAINED: return b->nretained;
    case MQLITE_BSTAT_MESSAGES_DROPPED: return (int64_t)b->st.dropped;
    case MQLITE_BSTAT_SUBSCRIPTIONS: return b->st.subscriptions;
    case MQLITE_BSTAT_CONNECTIONS_REFUSED: return (int64_t)b->st.refused_max;
    case MQLITE_BSTAT_CONNECTIONS_RATE_LIMITED: return (int64_t)b->st.refused_rate;
    case MQLITE_BSTAT_AUTH_FAILED: return (int64_t)b->st.auth_failed;
    case MQLITE_BSTAT_ACL_DENIED: return (int64_t)b->st.acl_denied;
    case MQLITE_BSTAT_TLS_HANDSHAKE_FAILED: return (int64_t)b->st.tls_failed;
    case MQLITE_BSTAT_SLOW_DISCONNECTED: return (int64_t)b->st.slow_disconnected;
    case MQLITE_BSTAT_SLOW_DROPPED: return (int64_t)b->st.slow_dropped;
    case MQLITE_BSTAT_PACKETS_TOO_LARGE: return (int64_t)b->st.too_large;
    case MQLITE_BSTAT_AUTH_PENDING: return b->nauthq;
    default: return MQLITE_ERR_OPTION;
    }
}
