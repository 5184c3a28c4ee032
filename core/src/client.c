/*
 * client.c - the public client handle: options, the TCP transport, the
 * poll-driven loop, auto-reconnect and the sans-I/O entry points, all over
 * one session engine (session.c).
 */
#define _GNU_SOURCE
#include "net.h"
#include "props.h"
#include "session.h"
#include "transport.h"
#include "topic.h"
#include "utf8.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

#define CLIENT_MAGIC 0x6d71636cu /* "mqcl" */
#define READ_CHUNK 65536
#define PUMP_LIMIT (256u * 1024u) /* output bytes prepared ahead of the socket */

#define MODE_NONE 0
#define MODE_SOCKET 1
#define MODE_SANS 2

struct mqlite_client {
    uint32_t magic;
    mq_alloc a;
    mq_session s;
    int mode;
    mq_transport tp;          /* resolver, TCP, TLS (transport.c) */
    uint8_t reconnect;
    uint8_t user_disconnect;  /* no reconnect after mqlite_client_disconnect */
    uint8_t clock_set;
    uint8_t waiting;          /* waiting to reconnect */
    uint8_t proto_set;        /* MQLITE_OPT_PROTOCOL given (else a store's level wins) */
    uint8_t store_sync;       /* MQLITE_OPT_STORE_SYNC */
    uint8_t store_reported;   /* the store's failure was reported in an event */
    char *host;
    int port;
    uint64_t clock;
    uint64_t reconnect_at;
    uint32_t backoff_ms;
    uint32_t reconnect_min_ms, reconnect_max_ms;
    uint32_t max_events;
    uint64_t rng;
    mq_event *cur;            /* returned by the last next_event */
    mq_err err;
};

static int ok(const mqlite_client *c)
{
    return c && c->magic == CLIENT_MAGIC;
}

static uint64_t now_of(mqlite_client *c)
{
    return c->clock_set ? c->clock : mq_net_now_ms();
}

/* Keep the client's message in step with the session's. */
static int32_t from_session(mqlite_client *c, int32_t rc)
{
    if (rc < 0) {
        c->err.code = c->s.err.code ? c->s.err.code : rc;
        if (c->s.err.code == rc)
            memcpy(c->err.msg, c->s.err.msg, sizeof c->err.msg);
        else
            mq_err_code(&c->err, rc);
        c->err.code = rc;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * Lifecycle and options
 * --------------------------------------------------------------------- */

MQLITE_API mqlite_client *mqlite_client_new_with_allocator(const char *client_id,
                                                           mqlite_realloc_fn fn, void *ud)
{
    if (!fn)
        return NULL;
    mq_alloc a = {fn, ud};
    mqlite_client *c = mq_calloc(&a, sizeof *c);
    if (!c)
        return NULL;
    c->a = a;
    mq_session_init(&c->s, &c->a);
    c->s.cfg.client_id = mq_memdup0(&c->a, client_id ? client_id : "",
                                    client_id ? strlen(client_id) : 0);
    if (!c->s.cfg.client_id || mq_session_reserve(&c->s) != 0) {
        mq_session_free(&c->s);
        mq_free(&a, c);
        return NULL;
    }
    c->magic = CLIENT_MAGIC;
    mq_tp_init(&c->tp, &c->a);
    c->reconnect_min_ms = 500;
    c->reconnect_max_ms = 30000;
    c->max_events = 100000;
    c->store_sync = MQ_STORE_SYNC_FULL;
    c->rng = (uint64_t)(uintptr_t)c ^ mq_net_now_ms() ^ 0x9e3779b97f4a7c15ull;
    return c;
}

MQLITE_API mqlite_client *mqlite_client_new(const char *client_id)
{
    return mqlite_client_new_with_allocator(client_id, mq_default_alloc.fn, NULL);
}

static void drop_transport(mqlite_client *c)
{
    mq_tp_close(&c->tp);
}

MQLITE_API void mqlite_client_free(mqlite_client *c)
{
    if (!ok(c))
        return;
    drop_transport(c);
    /* The store keeps the session for the next process: commit what is
     * pending and close it (nothing is deleted). */
    mq_store_close(mq_session_detach_store(&c->s));
    mq_event_free(&c->a, c->cur);
    mq_session_free(&c->s);
    mq_tp_free(&c->tp);
    mq_free(&c->a, c->host);
    c->magic = 0;
    mq_alloc a = c->a;
    mq_free(&a, c);
}

MQLITE_API const char *mqlite_client_errmsg(const mqlite_client *c)
{
    if (!ok(c))
        return "invalid client handle (NULL or freed)";
    return c->err.msg;
}

static int idle(const mqlite_client *c)
{
    return c->s.state == MQ_SS_IDLE && !mq_tp_connecting(&c->tp);
}

/* Options that shape CONNECT take effect on the next connection, so they
 * can be set whenever no connection attempt is under way. */
static int shapes_connect(int32_t opt)
{
    switch (opt) {
    case MQLITE_OPT_PROTOCOL:
    case MQLITE_OPT_KEEPALIVE_S:
    case MQLITE_OPT_CLEAN_START:
    case MQLITE_OPT_SESSION_EXPIRY_S:
    case MQLITE_OPT_RECEIVE_MAX:
    case MQLITE_OPT_MAX_PACKET_SIZE:
    case MQLITE_OPT_TOPIC_ALIAS_MAX:
    case MQLITE_OPT_WILL_QOS:
    case MQLITE_OPT_WILL_RETAIN:
    case MQLITE_OPT_REQUEST_PROBLEM_INFO:
    case MQLITE_OPT_REQUEST_RESPONSE_INFO:
    case MQLITE_OPT_CLIENT_ID:
    case MQLITE_OPT_USERNAME:
    case MQLITE_OPT_PASSWORD:
    case MQLITE_OPT_WILL_TOPIC:
    case MQLITE_OPT_WILL_PAYLOAD:
    case MQLITE_OPT_CONNECT_PROPS:
    case MQLITE_OPT_WILL_PROPS:
        return 1;
    default:
        return 0;
    }
}

typedef struct int_opt {
    int32_t id;
    const char *name;
    int64_t min, max;
} int_opt;

static const int_opt int_opts[] = {
    {MQLITE_OPT_PROTOCOL, "MQLITE_OPT_PROTOCOL", 3, 5},
    {MQLITE_OPT_KEEPALIVE_S, "MQLITE_OPT_KEEPALIVE_S", 0, 65535},
    {MQLITE_OPT_CLEAN_START, "MQLITE_OPT_CLEAN_START", 0, 1},
    {MQLITE_OPT_SESSION_EXPIRY_S, "MQLITE_OPT_SESSION_EXPIRY_S", 0, 4294967295LL},
    {MQLITE_OPT_RECEIVE_MAX, "MQLITE_OPT_RECEIVE_MAX", 1, 65535},
    {MQLITE_OPT_MAX_PACKET_SIZE, "MQLITE_OPT_MAX_PACKET_SIZE", 0, MQ_MAX_PACKET_SIZE},
    {MQLITE_OPT_TOPIC_ALIAS_MAX, "MQLITE_OPT_TOPIC_ALIAS_MAX", 0, 65535},
    {MQLITE_OPT_MAX_INFLIGHT, "MQLITE_OPT_MAX_INFLIGHT", 1, 65535},
    {MQLITE_OPT_MAX_QUEUED, "MQLITE_OPT_MAX_QUEUED", 0, 4294967295LL},
    {MQLITE_OPT_MAX_QUEUED_BYTES, "MQLITE_OPT_MAX_QUEUED_BYTES", 0, INT64_MAX},
    {MQLITE_OPT_CONNECT_TIMEOUT_MS, "MQLITE_OPT_CONNECT_TIMEOUT_MS", 1, 4294967295LL},
    {MQLITE_OPT_PING_TIMEOUT_MS, "MQLITE_OPT_PING_TIMEOUT_MS", 0, 4294967295LL},
    {MQLITE_OPT_RECONNECT, "MQLITE_OPT_RECONNECT", 0, 1},
    {MQLITE_OPT_RECONNECT_MIN_MS, "MQLITE_OPT_RECONNECT_MIN_MS", 1, 86400000},
    {MQLITE_OPT_RECONNECT_MAX_MS, "MQLITE_OPT_RECONNECT_MAX_MS", 1, 86400000},
    {MQLITE_OPT_RESUBSCRIBE, "MQLITE_OPT_RESUBSCRIBE", 0, 1},
    {MQLITE_OPT_STRICT_UTF8, "MQLITE_OPT_STRICT_UTF8", 0, 1},
    {MQLITE_OPT_TCP_NODELAY, "MQLITE_OPT_TCP_NODELAY", 0, 1},
    {MQLITE_OPT_WILL_QOS, "MQLITE_OPT_WILL_QOS", 0, 2},
    {MQLITE_OPT_WILL_RETAIN, "MQLITE_OPT_WILL_RETAIN", 0, 1},
    {MQLITE_OPT_REQUEST_PROBLEM_INFO, "MQLITE_OPT_REQUEST_PROBLEM_INFO", 0, 1},
    {MQLITE_OPT_REQUEST_RESPONSE_INFO, "MQLITE_OPT_REQUEST_RESPONSE_INFO", 0, 1},
    {MQLITE_OPT_MAX_EVENTS, "MQLITE_OPT_MAX_EVENTS", 1, 100000000},
    {MQLITE_OPT_TRACE, "MQLITE_OPT_TRACE", 0, 1},
    {MQLITE_OPT_STORE_SYNC, "MQLITE_OPT_STORE_SYNC", 1, 2},
};

static const int_opt *find_int_opt(int32_t id)
{
    for (size_t i = 0; i < MQ_ARRAY_LEN(int_opts); i++)
        if (int_opts[i].id == id)
            return &int_opts[i];
    return NULL;
}

MQLITE_API int32_t mqlite_client_set_int(mqlite_client *c, int32_t option, int64_t v)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    int64_t cur;
    if (mq_tp_get_int(&c->tp, option, &cur)) {
        if (!idle(c))
            return mq_err_set(&c->err, MQLITE_ERR_STATE,
                              "TLS options apply to the next connection: set them while idle");
        return mq_tp_set_int(&c->tp, option, v, &c->err);
    }
    const int_opt *o = find_int_opt(option);
    if (!o)
        return mq_err_set(&c->err, MQLITE_ERR_OPTION, "unknown integer option %d", (int)option);
    if (v < o->min || v > o->max)
        return mq_err_set(&c->err, MQLITE_ERR_RANGE, "%s must be %lld..%lld, not %lld", o->name,
                          (long long)o->min, (long long)o->max, (long long)v);
    if (shapes_connect(option) && !idle(c))
        return mq_err_set(&c->err, MQLITE_ERR_STATE,
                          "%s shapes CONNECT: set it before connecting (or while waiting to "
                          "reconnect)", o->name);
    mq_session_cfg *g = &c->s.cfg;
    switch (option) {
    case MQLITE_OPT_PROTOCOL:
        g->version = (uint8_t)v;
        c->proto_set = 1;
        break;
    case MQLITE_OPT_KEEPALIVE_S: g->keepalive_s = (uint16_t)v; break;
    case MQLITE_OPT_CLEAN_START: g->clean_start = (uint8_t)v; break;
    case MQLITE_OPT_SESSION_EXPIRY_S: g->session_expiry_s = (uint32_t)v; break;
    case MQLITE_OPT_RECEIVE_MAX: g->receive_max = (uint16_t)v; break;
    case MQLITE_OPT_MAX_PACKET_SIZE: g->max_packet_size = (uint32_t)v; break;
    case MQLITE_OPT_TOPIC_ALIAS_MAX:
        if (c->s.aliases)
            return mq_err_set(&c->err, MQLITE_ERR_STATE, "aliases in use");
        g->topic_alias_max = (uint16_t)v;
        break;
    case MQLITE_OPT_MAX_INFLIGHT:
        g->max_inflight = (uint32_t)v;
        c->s.out.window = (uint32_t)(v < c->s.srv_receive_max || !c->s.srv_receive_max
                                         ? v : c->s.srv_receive_max);
        break;
    case MQLITE_OPT_MAX_QUEUED: g->max_queued = c->s.out.max_queued = (uint32_t)v; break;
    case MQLITE_OPT_MAX_QUEUED_BYTES:
        g->max_queued_bytes = c->s.out.max_queued_bytes = (uint64_t)v;
        break;
    case MQLITE_OPT_CONNECT_TIMEOUT_MS: g->connect_timeout_ms = (uint32_t)v; break;
    case MQLITE_OPT_PING_TIMEOUT_MS: g->ping_timeout_ms = (uint32_t)v; break;
    case MQLITE_OPT_RECONNECT: c->reconnect = (uint8_t)v; break;
    case MQLITE_OPT_RECONNECT_MIN_MS: c->reconnect_min_ms = (uint32_t)v; break;
    case MQLITE_OPT_RECONNECT_MAX_MS: c->reconnect_max_ms = (uint32_t)v; break;
    case MQLITE_OPT_RESUBSCRIBE: g->resubscribe = (uint8_t)v; break;
    case MQLITE_OPT_STRICT_UTF8: g->strict_utf8 = (uint8_t)v; break;
    case MQLITE_OPT_TCP_NODELAY: c->tp.nodelay = (uint8_t)v; break;
    case MQLITE_OPT_WILL_QOS: g->will_qos = (uint8_t)v; break;
    case MQLITE_OPT_WILL_RETAIN: g->will_retain = (uint8_t)v; break;
    case MQLITE_OPT_REQUEST_PROBLEM_INFO: g->request_problem_info = (uint8_t)v; break;
    case MQLITE_OPT_REQUEST_RESPONSE_INFO: g->request_response_info = (uint8_t)v; break;
    case MQLITE_OPT_TRACE: g->trace = (uint8_t)v; break;
    case MQLITE_OPT_STORE_SYNC:
        c->store_sync = (uint8_t)v;
        if (c->s.store)
            mq_store_set_sync(c->s.store, (int)v);
        break;
    default: c->max_events = (uint32_t)v; break; /* MQLITE_OPT_MAX_EVENTS */
    }
    return 0;
}

MQLITE_API int64_t mqlite_client_get_int(mqlite_client *c, int32_t option)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    const mq_session_cfg *g = &c->s.cfg;
    int64_t v;
    switch (option) {
    case MQLITE_OPT_PROTOCOL: return g->version;
    case MQLITE_OPT_KEEPALIVE_S: return g->keepalive_s;
    case MQLITE_OPT_CLEAN_START: return g->clean_start;
    case MQLITE_OPT_SESSION_EXPIRY_S: return g->session_expiry_s;
    case MQLITE_OPT_RECEIVE_MAX: return g->receive_max;
    case MQLITE_OPT_MAX_PACKET_SIZE: return g->max_packet_size;
    case MQLITE_OPT_TOPIC_ALIAS_MAX: return g->topic_alias_max;
    case MQLITE_OPT_MAX_INFLIGHT: return g->max_inflight;
    case MQLITE_OPT_MAX_QUEUED: return g->max_queued;
    case MQLITE_OPT_MAX_QUEUED_BYTES: return (int64_t)g->max_queued_bytes;
    case MQLITE_OPT_CONNECT_TIMEOUT_MS: return g->connect_timeout_ms;
    case MQLITE_OPT_PING_TIMEOUT_MS: return g->ping_timeout_ms;
    case MQLITE_OPT_RECONNECT: return c->reconnect;
    case MQLITE_OPT_RECONNECT_MIN_MS: return c->reconnect_min_ms;
    case MQLITE_OPT_RECONNECT_MAX_MS: return c->reconnect_max_ms;
    case MQLITE_OPT_RESUBSCRIBE: return g->resubscribe;
    case MQLITE_OPT_STRICT_UTF8: return g->strict_utf8;
    case MQLITE_OPT_TCP_NODELAY: return c->tp.nodelay;
    case MQLITE_OPT_WILL_QOS: return g->will_qos;
    case MQLITE_OPT_WILL_RETAIN: return g->will_retain;
    case MQLITE_OPT_REQUEST_PROBLEM_INFO: return g->request_problem_info;
    case MQLITE_OPT_REQUEST_RESPONSE_INFO: return g->request_response_info;
    case MQLITE_OPT_MAX_EVENTS: return c->max_events;
    case MQLITE_OPT_TRACE: return c->s.cfg.trace;
    case MQLITE_OPT_STORE_SYNC: return c->store_sync;
    default:
        if (mq_tp_get_int(&c->tp, option, &v))
            return v;
        return mq_err_set(&c->err, MQLITE_ERR_OPTION, "unknown integer option %d", (int)option);
    }
}

static int set_buf(mqlite_client *c, mq_buf *b, const void *v, size_t len)
{
    mq_buf nb = {0};
    if (len && mq_buf_append(&nb, &c->a, v, len))
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    mq_buf_free(b, &c->a);
    *b = nb;
    return 0;
}

static int set_cstr(mqlite_client *c, char **dst, const void *v, size_t len, int present)
{
    char *s = NULL;
    if (present && !(s = mq_memdup0(&c->a, v, len)))
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    mq_free(&c->a, *dst);
    *dst = s;
    return 0;
}

/* MQLITE_OPT_STORE_PATH: open (or, with NULL, close) the persistent store. */
static int32_t set_store(mqlite_client *c, const char *v, size_t len)
{
    if (!v && len)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "value is NULL but len is %zu", len);
    if (!idle(c))
        return mq_err_set(&c->err, MQLITE_ERR_STATE,
                          "MQLITE_OPT_STORE_PATH: set it while no connection is under way");
    if (!v) {
        mq_store *st = mq_session_detach_store(&c->s);
        int rc = st ? mq_store_commit(st, 1, &c->err) : 0;
        mq_store_close(st);
        c->store_reported = 0;
        return rc;
    }
    if (c->s.store)
        return mq_err_set(&c->err, MQLITE_ERR_STATE,
                          "a store is already open (\"%.200s\"): set MQLITE_OPT_STORE_PATH to NULL "
                          "first", mq_store_path(c->s.store));
    if (len == 0 || memchr(v, 0, len))
        return mq_err_set(&c->err, MQLITE_ERR_INVALID,
                          "MQLITE_OPT_STORE_PATH: need a file path without NUL bytes");
    char *path = mq_memdup0(&c->a, v, len);
    if (!path)
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    mq_store *st = NULL;
    int rc = mq_store_open(&c->a, path, c->s.cfg.client_id, &st, &c->err);
    mq_free(&c->a, path);
    if (rc)
        return rc;
    mq_store_set_sync(st, c->store_sync);
    /* The store names the client: an empty identifier takes its own. */
    const char *id = mq_store_client_id(st);
    char *idcopy = NULL;
    if (!*c->s.cfg.client_id && !(idcopy = mq_memdup0(&c->a, id, strlen(id)))) {
        mq_store_close(st);
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    }
    rc = mq_session_attach_store(&c->s, st);
    if (rc) {
        mq_free(&c->a, idcopy);
        mq_store_close(st);
        return from_session(c, rc);
    }
    if (idcopy) {
        mq_free(&c->a, c->s.cfg.client_id);
        c->s.cfg.client_id = idcopy;
    }
    if (!c->proto_set && mq_store_protocol(st) >= MQLITE_V31 && mq_store_protocol(st) <= MQLITE_V5)
        c->s.cfg.version = (uint8_t)mq_store_protocol(st);
    c->store_reported = 0;
    return 0;
}

/* The checks every CONNECT field option shares: 0 or an error. */
static int32_t check_connect_bytes(mqlite_client *c, int32_t option, const void *v, size_t len)
{
    if (!v && len)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "value is NULL but len is %zu", len);
    if (!idle(c))
        return mq_err_set(&c->err, MQLITE_ERR_STATE,
                          "option %d shapes CONNECT: set it before connecting", (int)option);
    if (len > 65535)
        return mq_err_set(&c->err, MQLITE_ERR_RANGE, "option %d is %zu bytes; MQTT allows 65535",
                          (int)option, len);
    return 0;
}

/* MQLITE_OPT_AUTH_METHOD (UTF-8 string) / MQLITE_OPT_AUTH_DATA (bytes). */
static int32_t set_auth(mqlite_client *c, int32_t option, const void *v, size_t len)
{
    int32_t chk = check_connect_bytes(c, option, v, len);
    if (chk)
        return chk;
    mq_session_cfg *g = &c->s.cfg;
    if (option == MQLITE_OPT_AUTH_DATA) {
        g->has_auth_data = v != NULL;
        return set_buf(c, &g->auth_data, v, len);
    }
    if (v) {
        int rc = mq_utf8_check((const uint8_t *)v, len, 0);
        if (rc)
            return mq_err_set(&c->err, rc, "MQLITE_OPT_AUTH_METHOD: %s", mqlite_strerror(rc));
    }
    return set_cstr(c, &g->auth_method, v, len, v != NULL);
}

MQLITE_API int32_t mqlite_client_set_bytes(mqlite_client *c, int32_t option, const void *v,
                                           size_t len)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (option == MQLITE_OPT_STORE_PATH)
        return set_store(c, v, len);
    if (option >= MQLITE_OPT_TLS_CAFILE && option <= MQLITE_OPT_DNS_SERVERS) {
        if (!v && len)
            return mq_err_set(&c->err, MQLITE_ERR_INVALID, "value is NULL but len is %zu", len);
        if (!idle(c))
            return mq_err_set(&c->err, MQLITE_ERR_STATE,
                              "option %d applies to the next connection: set it while idle",
                              (int)option);
        return mq_tp_set_str(&c->tp, option, v, len, &c->err);
    }
    if (option == MQLITE_OPT_AUTH_METHOD || option == MQLITE_OPT_AUTH_DATA)
        return set_auth(c, option, v, len);
    if (option < MQLITE_OPT_CLIENT_ID || option > MQLITE_OPT_WILL_PAYLOAD)
        return mq_err_set(&c->err, MQLITE_ERR_OPTION, "unknown string option %d", (int)option);
    int32_t chk = check_connect_bytes(c, option, v, len);
    if (chk)
        return chk;
    mq_session_cfg *g = &c->s.cfg;
    mq_view view = mq_view_make(v, len);
    if (v && (option == MQLITE_OPT_CLIENT_ID || option == MQLITE_OPT_USERNAME)) {
        int rc = mq_utf8_check(view.p, view.len, 0);
        if (rc)
            return mq_err_set(&c->err, rc, "option %d: %s", (int)option, mqlite_strerror(rc));
    }
    if (v && option == MQLITE_OPT_WILL_TOPIC) {
        const char *msg = NULL;
        int rc = mq_topic_check_name(view, &msg);
        if (rc)
            return mq_err_set(&c->err, rc, "will topic: %s", msg ? msg : mqlite_strerror(rc));
    }
    if (option == MQLITE_OPT_CLIENT_ID && c->s.store) {
        const char *sid = mq_store_client_id(c->s.store);
        if (!v || strlen(sid) != len || memcmp(sid, v, len) != 0)
            return mq_err_set(&c->err, MQLITE_ERR_CLIENT_ID,
                              "the store \"%.200s\" belongs to client \"%.60s\": the identifier "
                              "cannot change while it is open", mq_store_path(c->s.store), sid);
    }
    switch (option) {
    case MQLITE_OPT_CLIENT_ID:
        return set_cstr(c, &g->client_id, v ? v : "", len, 1);
    case MQLITE_OPT_USERNAME:
        return set_cstr(c, &g->username, v, len, v != NULL);
    case MQLITE_OPT_PASSWORD:
        g->has_password = v != NULL;
        return set_buf(c, &g->password, v, len);
    case MQLITE_OPT_WILL_TOPIC:
        return set_cstr(c, &g->will_topic, v, len, v != NULL);
    default: /* MQLITE_OPT_WILL_PAYLOAD */
        return set_buf(c, &g->will_payload, v, len);
    }
}

MQLITE_API int32_t mqlite_client_set_str(mqlite_client *c, int32_t option, const char *v)
{
    return mqlite_client_set_bytes(c, option, v, v ? strlen(v) : 0);
}

MQLITE_API int32_t mqlite_client_set_props(mqlite_client *c, int32_t option,
                                           const mqlite_props *props)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (option != MQLITE_OPT_CONNECT_PROPS && option != MQLITE_OPT_WILL_PROPS)
        return mq_err_set(&c->err, MQLITE_ERR_OPTION, "unknown property option %d", (int)option);
    if (!idle(c))
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "properties shape CONNECT: set them first");
    mq_view w = mq_props_list_wire(props);
    int ctx = option == MQLITE_OPT_WILL_PROPS ? MQ_PCTX_WILL : MQLITE_PKT_CONNECT;
    unsigned bad = 0;
    int rc = w.len ? mq_props_validate(w, ctx, 0, &bad) : 0;
    if (rc)
        return mq_err_set(&c->err, rc, "property 0x%02x (%s) not allowed in %s: %s", bad,
                          mqlite_property_name((int32_t)bad) ? mqlite_property_name((int32_t)bad)
                                                             : "?",
                          ctx == MQ_PCTX_WILL ? "will properties" : "CONNECT",
                          mqlite_strerror(rc));
    return set_buf(c, option == MQLITE_OPT_WILL_PROPS ? &c->s.cfg.will_props
                                                      : &c->s.cfg.connect_props,
                   w.p, w.len);
}

/* ---------------------------------------------------------------------
 * Transport
 * --------------------------------------------------------------------- */

static uint32_t jitter(mqlite_client *c, uint32_t ms)
{
    /* xorshift64*: per-client state, no global. +-25 % jitter. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    uint64_t r = c->rng * 0x2545F4914F6CDD1Dull;
    uint32_t span = ms / 2 + 1;
    return ms - ms / 4 + (uint32_t)(r % span);
}

static void schedule_reconnect(mqlite_client *c, uint64_t now)
{
    if (!c->reconnect || c->user_disconnect || !c->host ||
        (c->s.store && mq_store_failed(c->s.store)))
        return;
    uint32_t b = c->backoff_ms ? c->backoff_ms * 2 : c->reconnect_min_ms;
    if (b > c->reconnect_max_ms)
        b = c->reconnect_max_ms;
    if (b < c->reconnect_min_ms)
        b = c->reconnect_min_ms;
    c->backoff_ms = b;
    c->waiting = 1;
    c->reconnect_at = now + jitter(c, b);
}

/* The connection is gone: tell the session, maybe plan a reconnect. */
static void lose(mqlite_client *c, int32_t err, uint64_t now)
{
    drop_transport(c);
    if (err && c->err.code == err && c->s.err.code != err)
        c->s.err = c->err; /* the transport's words for the event */
    mq_session_closed(&c->s, err, now);
    schedule_reconnect(c, now);
}

static void connect_failed(mqlite_client *c, int32_t err, const char *msg, uint64_t now)
{
    drop_transport(c);
    char text[300];
    snprintf(text, sizeof text, "cannot connect to %s:%d: %s", c->host ? c->host : "?", c->port,
             msg);
    mq_session_event(&c->s, MQLITE_EVENT_CONNECT_FAILED, err, text);
    schedule_reconnect(c, now);
}

/* Start the transport (resolver, TCP, TLS). 0 or an error (message in err). */
static int start_transport(mqlite_client *c, uint64_t now)
{
    c->tp.timeout_ms = c->s.cfg.connect_timeout_ms;
    return mq_tp_start(&c->tp, c->host, c->port, now, &c->err);
}

static int begin_attempt(mqlite_client *c, uint64_t now)
{
    c->waiting = 0;
    int rc = start_transport(c, now);
    if (rc)
        connect_failed(c, rc, c->err.msg, now);
    return rc;
}

/* Advance resolution, TCP connect and TLS handshake; once the stream is
 * open, CONNECT. */
static void step_transport(mqlite_client *c, int readable, int writable, uint64_t now)
{
    int rc = mq_tp_step(&c->tp, readable, writable, now, &c->err);
    if (rc < 0) {
        connect_failed(c, rc, c->err.msg, now);
        return;
    }
    if (rc == 0)
        return;
    rc = mq_session_begin(&c->s, now);
    if (rc)
        connect_failed(c, from_session(c, rc), c->s.err.msg, now);
}

MQLITE_API int32_t mqlite_client_connect(mqlite_client *c, const char *host, int32_t port)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode == MODE_SANS)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "this client is in sans-I/O mode");
    if (!idle(c) || c->waiting)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "already connecting or connected");
    if (!host || !*host || port < 1 || port > 65535)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "need a host and a port 1..65535 (got %s:%d)",
                          host ? host : "(null)", (int)port);
    if (c->s.store && mq_store_failed(c->s.store))
        return mq_err_set(&c->err, MQLITE_ERR_IO, "%s; the client does not connect again",
                          mq_store_errmsg(c->s.store));
    char *h = mq_memdup0(&c->a, host, strlen(host));
    if (!h)
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    mq_free(&c->a, c->host);
    c->host = h;
    c->port = port;
    c->mode = MODE_SOCKET;
    c->user_disconnect = 0;
    c->backoff_ms = 0;
    uint64_t now = now_of(c);
    return start_transport(c, now);
}

MQLITE_API int32_t mqlite_client_auth(mqlite_client *c, int32_t reason, const void *data,
                                      size_t len)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (!data && len)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "data is NULL but len is %zu", len);
    if (len > 65535)
        return mq_err_set(&c->err, MQLITE_ERR_RANGE, "authentication data of %zu bytes; MQTT "
                          "allows 65535", len);
    return from_session(c, mq_session_auth(&c->s, reason, mq_view_make(data, len), now_of(c)));
}

MQLITE_API int32_t mqlite_client_disconnect_expiry(mqlite_client *c, int32_t reason,
                                                   int64_t session_expiry_s)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (session_expiry_s < -1 || session_expiry_s > 4294967295LL)
        return mq_err_set(&c->err, MQLITE_ERR_RANGE,
                          "session expiry must be -1 (unchanged) or 0..4294967295, not %lld",
                          (long long)session_expiry_s);
    c->user_disconnect = 1;
    if (c->waiting || mq_tp_connecting(&c->tp)) {
        c->waiting = 0;
        drop_transport(c);
        return 0;
    }
    int rc = mq_session_disconnect(&c->s, reason, session_expiry_s, now_of(c));
    return from_session(c, rc);
}

MQLITE_API int32_t mqlite_client_disconnect(mqlite_client *c, int32_t reason)
{
    return mqlite_client_disconnect_expiry(c, reason, -1);
}

/* Commit the store's pending changes before any byte that depends on them
 * leaves (store.h). 0, or MQLITE_ERR_IO: nothing may be sent. */
static int store_sync(mqlite_client *c)
{
    mq_store *st = c->s.store;
    if (!st || (!mq_store_pending(st) && !mq_store_failed(st)))
        return 0;
    if (mq_store_commit(st, 0, &c->err) == 0)
        return 0;
    if (!c->store_reported) {
        c->store_reported = 1;
        mq_session_event(&c->s, MQLITE_EVENT_ERROR, MQLITE_ERR_IO, c->err.msg);
    }
    return MQLITE_ERR_IO;
}

/* Write what the session has for the socket. 0 or an error (connection lost). */
static int flush(mqlite_client *c, uint64_t now)
{
    mq_buf *o = &c->s.outbuf;
    size_t off = 0;
    int rc = store_sync(c);
    if (rc)
        return rc;
    while (off < o->len) {
        long n = mq_tp_write(&c->tp, o->p + off, o->len - off, &c->err);
        if (n == MQLITE_ERR_AGAIN)
            break;
        if (n < 0) {
            /* the message says why; a TLS alert stays a TLS error */
            rc = c->err.code = n == MQLITE_ERR_TLS ? MQLITE_ERR_TLS : MQLITE_ERR_CONNECTION_LOST;
            break;
        }
        off += (size_t)n;
        if (off == o->len) {
            o->len = 0;
            off = 0;
            mq_session_pump(&c->s, PUMP_LIMIT, now);
        }
    }
    mq_buf_consume(o, off);
    return rc;
}

static int do_read(mqlite_client *c, uint64_t now)
{
    uint8_t buf[READ_CHUNK];
    for (int i = 0; i < 16 && c->s.ev_count < c->max_events && c->tp.phase == MQ_TP_OPEN;
         i++) {
        long n = mq_tp_read(&c->tp, buf, sizeof buf, &c->err);
        if (n == MQLITE_ERR_AGAIN)
            return 0;
        if (n == 0)
            return mq_err_set(&c->err, MQLITE_ERR_CLOSED, "the server closed the connection");
        if (n == MQLITE_ERR_TLS) /* e.g. an alert: "tlsv13 alert certificate required" */
            return (int)n;
        if (n < 0)
            return c->err.code = MQLITE_ERR_CONNECTION_LOST; /* the message says why */
        int rc = mq_session_feed(&c->s, buf, (size_t)n, now);
        if (rc < 0)
            return from_session(c, rc);
        /* TLS hands out one record per read: go on while OpenSSL holds more. */
        if ((size_t)n < sizeof buf && !mq_tp_pending(&c->tp))
            return 0;
    }
    return 0;
}

/* After the session asked to close: send its last words, then close. */
static void close_after(mqlite_client *c, int32_t rc, uint64_t now)
{
    if (c->tp.phase == MQ_TP_OPEN && c->s.outbuf.len)
        flush(c, now);
    lose(c, rc, now);
}

static int32_t run_io(mqlite_client *c, int readable, int writable, uint64_t now)
{
    int32_t rc = 0;
    if (mq_tp_connecting(&c->tp)) {
        step_transport(c, readable, writable, now);
        if (c->tp.phase != MQ_TP_OPEN)
            return 0;
        readable = 0; /* the handshake consumed what was there */
    }
    if (mq_tp_pending(&c->tp))
        readable = 1;
    if (c->tp.phase == MQ_TP_OPEN && readable) {
        rc = do_read(c, now);
        if (rc < 0 && c->s.state != MQ_SS_IDLE) {
            int32_t why = rc == MQLITE_ERR_CLOSED && c->s.close_error ? c->s.close_error : rc;
            if (c->s.state == MQ_SS_DISCONNECTING && rc == MQLITE_ERR_CLOSED)
                why = 0;
            close_after(c, why, now);
            return rc;
        }
    }
    if (c->tp.phase == MQ_TP_OPEN && c->s.state != MQ_SS_IDLE) {
        rc = mq_session_tick(&c->s, now);
        if (rc < 0) {
            close_after(c, from_session(c, rc), now);
            return rc;
        }
        mq_session_pump(&c->s, PUMP_LIMIT, now);
        rc = flush(c, now);
        if (rc < 0) {
            lose(c, rc, now);
            return rc;
        }
        if (c->s.state == MQ_SS_DISCONNECTING && c->s.outbuf.len == 0)
            lose(c, 0, now);
    }
    if (c->waiting && now >= c->reconnect_at)
        begin_attempt(c, now);
    return 0;
}

MQLITE_API int32_t mqlite_client_io(mqlite_client *c, int32_t readable, int32_t writable)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode == MODE_SANS)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "this client is in sans-I/O mode");
    return run_io(c, readable != 0, writable != 0, now_of(c));
}

MQLITE_API int32_t mqlite_client_fd(const mqlite_client *c)
{
    return ok(c) ? mq_tp_fd(&c->tp) : -1;
}

MQLITE_API int32_t mqlite_client_want_write(const mqlite_client *c)
{
    if (!ok(c) || mq_tp_fd(&c->tp) < 0)
        return 0;
    if (mq_tp_connecting(&c->tp) || mq_tp_want_write(&c->tp))
        return mq_tp_want_write(&c->tp);
    return c->s.outbuf.len > 0 ||
           (c->s.state == MQ_SS_CONNECTED && c->s.out.queued.count &&
            (c->s.out.queued.head->qos == 0 || c->s.out.inflight.count < c->s.out.window));
}

MQLITE_API int32_t mqlite_client_state(const mqlite_client *c)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (mq_tp_connecting(&c->tp))
        return MQLITE_STATE_CONNECTING;
    if (c->waiting)
        return MQLITE_STATE_WAITING;
    switch (c->s.state) {
    case MQ_SS_CONNECTING: return MQLITE_STATE_CONNECTING;
    case MQ_SS_CONNECTED: return MQLITE_STATE_CONNECTED;
    case MQ_SS_DISCONNECTING: return MQLITE_STATE_DISCONNECTING;
    default: return MQLITE_STATE_IDLE;
    }
}

static uint64_t next_deadline(mqlite_client *c)
{
    uint64_t d = mq_session_deadline(&c->s);
    uint64_t t = mq_tp_deadline(&c->tp);
    if (t < d)
        d = t;
    /* Decrypted bytes wait inside OpenSSL with the socket empty: no poll
     * event will come for them, so they are due now (unless the event
     * queue is full, which stops reading anyway). */
    if (mq_tp_pending(&c->tp) && c->s.ev_count < c->max_events)
        d = 0;
    if (c->waiting && c->reconnect_at < d)
        d = c->reconnect_at;
    return d;
}

MQLITE_API int32_t mqlite_client_next_timeout_ms(mqlite_client *c)
{
    if (!ok(c))
        return -1;
    uint64_t d = next_deadline(c);
    if (d == UINT64_MAX)
        return -1;
    uint64_t now = now_of(c);
    if (d <= now)
        return 0;
    return d - now > INT32_MAX ? INT32_MAX : (int32_t)(d - now);
}

MQLITE_API int32_t mqlite_client_poll(mqlite_client *c, int32_t timeout_ms)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode == MODE_SANS)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "this client is in sans-I/O mode");
    if (c->s.ev_count)
        timeout_ms = 0;
    int32_t t = mqlite_client_next_timeout_ms(c);
    if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
        timeout_ms = t;
    int readable = 0, writable = 0;
    if (mqlite_client_fd(c) >= 0) {
        struct pollfd p = {mqlite_client_fd(c), 0, 0};
        if (c->s.ev_count < c->max_events || mq_tp_connecting(&c->tp))
            p.events |= POLLIN;
        if (mqlite_client_want_write(c))
            p.events |= POLLOUT;
        int n = poll(&p, 1, timeout_ms);
        if (n > 0) {
            readable = (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
            writable = (p.revents & (POLLOUT | POLLERR)) != 0;
        }
    } else if (timeout_ms != 0 && (c->waiting || timeout_ms > 0)) {
        poll(NULL, 0, timeout_ms);
    }
    int32_t rc = run_io(c, readable, writable, now_of(c));
    if (rc < 0 && !c->s.ev_count)
        return rc;
    return (int32_t)c->s.ev_count;
}

/* ---------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

MQLITE_API int32_t mqlite_client_publish_props(mqlite_client *c, const char *topic,
                                               const void *payload, size_t len, int32_t qos,
                                               int32_t retain, const mqlite_props *props,
                                               int32_t *packet_id)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (!topic)
        return mq_err_set(&c->err, MQLITE_ERR_TOPIC_NAME, "topic is NULL");
    if (!payload && len)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "payload is NULL but len is %zu", len);
    if (len > MQ_VBI_MAX)
        return mq_err_set(&c->err, MQLITE_ERR_TOO_LARGE, "payload of %zu bytes is over MQTT's "
                          "limit", len);
    uint16_t pid = 0;
    int rc = mq_session_publish(&c->s, mq_view_cstr(topic), mq_view_make(payload, len), qos,
                                retain, mq_props_list_wire(props), &pid, now_of(c));
    if (rc)
        return from_session(c, rc);
    if (packet_id)
        *packet_id = pid;
    return 0;
}

MQLITE_API int32_t mqlite_client_publish(mqlite_client *c, const char *topic, const void *payload,
                                         size_t len, int32_t qos, int32_t retain,
                                         int32_t *packet_id)
{
    return mqlite_client_publish_props(c, topic, payload, len, qos, retain, NULL, packet_id);
}

static int32_t send_one_filter(mqlite_client *c, int type, const char *filter, int32_t options,
                               int32_t *packet_id)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (!filter)
        return mq_err_set(&c->err, MQLITE_ERR_TOPIC_FILTER, "filter is NULL");
    if (options < 0 || options > 255)
        return mq_err_set(&c->err, MQLITE_ERR_RANGE, "options must be 0..255, not %d",
                          (int)options);
    mq_view f = mq_view_cstr(filter);
    const char *msg = NULL;
    int level = c->s.state == MQ_SS_IDLE ? c->s.cfg.version : c->s.version;
    int rc = mq_topic_check_filter_v(f, level, &msg);
    if (rc)
        return mq_err_set(&c->err, rc, "topic filter \"%.200s\": %s", filter,
                          msg ? msg : mqlite_strerror(rc));
    if (idle(c) && !c->waiting && c->mode != MODE_SANS)
        return mq_err_set(&c->err, MQLITE_ERR_NOT_CONNECTED,
                          "not connected: call mqlite_client_connect first");
    mq_buf list = {0};
    if (mq_list_put_filter(&list, &c->a, f, type == MQLITE_PKT_SUBSCRIBE, (uint8_t)options))
        return mq_err_code(&c->err, MQLITE_ERR_NOMEM);
    mq_packet t;
    memset(&t, 0, sizeof t);
    t.type = (uint8_t)type;
    t.version = c->s.state == MQ_SS_IDLE ? c->s.cfg.version : c->s.version;
    t.count = 1;
    t.list = mq_view_make(list.p, list.len);
    uint16_t pid = 0;
    rc = mq_session_send_list(&c->s, &t, &pid, now_of(c));
    mq_buf_free(&list, &c->a);
    if (rc)
        return from_session(c, rc);
    if (packet_id)
        *packet_id = pid;
    return 0;
}

MQLITE_API int32_t mqlite_client_subscribe(mqlite_client *c, const char *filter, int32_t options,
                                           int32_t *packet_id)
{
    return send_one_filter(c, MQLITE_PKT_SUBSCRIBE, filter, options, packet_id);
}

MQLITE_API int32_t mqlite_client_unsubscribe(mqlite_client *c, const char *filter,
                                             int32_t *packet_id)
{
    return send_one_filter(c, MQLITE_PKT_UNSUBSCRIBE, filter, 0, packet_id);
}

MQLITE_API int32_t mqlite_client_send_packet(mqlite_client *c, mqlite_packet *packet,
                                             int32_t *packet_id)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    const mq_packet *t = mq_packet_inner(packet);
    if (!t)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "packet is NULL or freed");
    if (idle(c) && !c->waiting && c->mode != MODE_SANS)
        return mq_err_set(&c->err, MQLITE_ERR_NOT_CONNECTED,
                          "not connected: call mqlite_client_connect first");
    uint16_t pid = 0;
    int rc = mq_session_send_list(&c->s, t, &pid, now_of(c));
    if (rc)
        return from_session(c, rc);
    if (packet_id)
        *packet_id = pid;
    return 0;
}

MQLITE_API int32_t mqlite_client_queued(const mqlite_client *c)
{
    return ok(c) ? (int32_t)c->s.out.queued.count : 0;
}

MQLITE_API int32_t mqlite_client_inflight(const mqlite_client *c)
{
    return ok(c) ? (int32_t)c->s.out.inflight.count : 0;
}

/* ---------------------------------------------------------------------
 * Events
 * --------------------------------------------------------------------- */

MQLITE_API const mqlite_event *mqlite_client_next_event(mqlite_client *c)
{
    if (!ok(c))
        return NULL;
    mq_event_free(&c->a, c->cur);
    /* A message is handed over only once what it changed in the store
     * (an incoming QoS 2 id) is committed: a crash after this cannot
     * deliver it a second time. A failing commit is reported as an event
     * of its own (store_sync). */
    if (c->s.store && mq_store_pending(c->s.store))
        store_sync(c);
    c->cur = mq_session_pop_event(&c->s);
    if (c->cur && c->cur->type == MQLITE_EVENT_CONNECTED)
        c->backoff_ms = 0;
    return (const mqlite_event *)(void *)c->cur;
}

MQLITE_API int32_t mqlite_client_pending_events(const mqlite_client *c)
{
    return ok(c) ? (int32_t)c->s.ev_count : 0;
}

/* ---------------------------------------------------------------------
 * Sans-I/O mode
 * --------------------------------------------------------------------- */

static int32_t sans_only(mqlite_client *c)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode == MODE_SOCKET)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "this client is in socket mode");
    c->mode = MODE_SANS;
    return 0;
}

MQLITE_API int32_t mqlite_client_start(mqlite_client *c)
{
    int32_t rc = sans_only(c);
    if (rc)
        return rc;
    return from_session(c, mq_session_begin(&c->s, now_of(c)));
}

MQLITE_API int32_t mqlite_client_feed(mqlite_client *c, const void *bytes, size_t len)
{
    int32_t rc = sans_only(c);
    if (rc)
        return rc;
    if (!bytes && len)
        return mq_err_set(&c->err, MQLITE_ERR_INVALID, "bytes is NULL but len is %zu", len);
    return from_session(c, mq_session_feed(&c->s, bytes, len, now_of(c)));
}

MQLITE_API size_t mqlite_client_take_output(mqlite_client *c, void *buf, size_t cap)
{
    if (sans_only(c) || !buf)
        return 0;
    mq_buf *o = &c->s.outbuf;
    if (o->len < cap)
        mq_session_pump(&c->s, cap, now_of(c));
    if (store_sync(c))
        return 0;
    size_t n = o->len < cap ? o->len : cap;
    if (n == 0)
        return 0; /* o->p may be NULL: memcpy(buf, NULL, 0) is undefined (UBSan) */
    memcpy(buf, o->p, n);
    mq_buf_consume(o, n);
    return n;
}

MQLITE_API int32_t mqlite_client_transport_closed(mqlite_client *c)
{
    int32_t rc = sans_only(c);
    if (rc)
        return rc;
    /* When the session itself asked for the close (protocol error from the
     * server, keep-alive or CONNACK timeout), pass its reason on, as
     * run_io() does in socket mode: the event must say why, not just
     * "connection lost" (test_incoming_receive_maximum_exceeded_...). */
    int32_t why = c->s.state == MQ_SS_DISCONNECTING ? 0
                  : c->s.close_error                ? c->s.close_error
                                                    : MQLITE_ERR_CONNECTION_LOST;
    mq_session_closed(&c->s, why, now_of(c));
    return 0;
}

MQLITE_API int32_t mqlite_client_set_clock(mqlite_client *c, uint64_t now_ms)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    c->clock_set = 1;
    c->clock = now_ms;
    if (c->mode != MODE_SANS)
        return 0;
    return from_session(c, mq_session_tick(&c->s, now_ms));
}

/* ---------------------------------------------------------------------
 * Blocking convenience layer: built on the poll-driven core, for simple
 * programs and FFIs without an event loop of their own.
 * --------------------------------------------------------------------- */

MQLITE_API int32_t mqlite_client_pending(const mqlite_client *c, int32_t packet_id)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (packet_id < 1 || packet_id > 65535)
        return 0;
    return mq_outq_pid_in_use(&c->s.out, (uint16_t)packet_id);
}

/* Milliseconds left until `deadline` (monotonic), or -1 for "no limit". */
static int32_t left_ms(uint64_t deadline, uint64_t now)
{
    if (deadline == UINT64_MAX)
        return -1;
    return deadline > now ? (int32_t)(deadline - now > INT32_MAX ? INT32_MAX : deadline - now) : 0;
}

static uint64_t deadline_of(int32_t timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : mq_net_now_ms() + (uint64_t)timeout_ms;
}

/* One blocking round that does not stop early for queued events (they are
 * the caller's, and stay queued). */
static int32_t wait_round(mqlite_client *c, int32_t timeout_ms)
{
    int32_t t = mqlite_client_next_timeout_ms(c);
    if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
        timeout_ms = t;
    int readable = 0, writable = 0;
    if (mqlite_client_fd(c) >= 0) {
        struct pollfd p = {mqlite_client_fd(c), POLLIN, 0};
        if (mqlite_client_want_write(c))
            p.events |= POLLOUT;
        if (poll(&p, 1, timeout_ms) > 0) {
            readable = (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
            writable = (p.revents & (POLLOUT | POLLERR)) != 0;
        }
    } else if (timeout_ms != 0) {
        poll(NULL, 0, timeout_ms < 0 ? 100 : timeout_ms);
    }
    return run_io(c, readable, writable, now_of(c));
}

MQLITE_API int32_t mqlite_client_wait(mqlite_client *c, int32_t packet_id, int32_t timeout_ms)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode != MODE_SOCKET)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "mqlite_client_wait needs socket mode");
    uint64_t end = deadline_of(timeout_ms);
    while (mqlite_client_pending(c, packet_id) == 1) {
        if (idle(c) && !c->waiting)
            return mq_err_set(&c->err, MQLITE_ERR_NOT_CONNECTED,
                              "packet %d is still pending and the client is not connected",
                              (int)packet_id);
        uint64_t now = mq_net_now_ms();
        if (now >= end)
            return mq_err_set(&c->err, MQLITE_ERR_TIMEOUT,
                              "packet %d not acknowledged within %d ms", (int)packet_id,
                              (int)timeout_ms);
        wait_round(c, left_ms(end, now));
    }
    return 0;
}

MQLITE_API int32_t mqlite_client_wait_connected(mqlite_client *c, int32_t timeout_ms)
{
    if (!ok(c))
        return MQLITE_ERR_MISUSE;
    if (c->mode != MODE_SOCKET)
        return mq_err_set(&c->err, MQLITE_ERR_STATE, "call mqlite_client_connect first");
    uint64_t end = deadline_of(timeout_ms);
    while (c->s.state != MQ_SS_CONNECTED) {
        if (idle(c) && !c->waiting) {
            /* The outcome is in the event queue; say it here too. */
            for (mq_event *ev = c->s.ev_head; ev; ev = ev->next)
                if (ev->type == MQLITE_EVENT_CONNECT_FAILED ||
                    ev->type == MQLITE_EVENT_DISCONNECTED)
                    return mq_err_set(&c->err, ev->error ? ev->error : MQLITE_ERR_REFUSED, "%s",
                                      ev->text);
            return mq_err_set(&c->err, MQLITE_ERR_NOT_CONNECTED, "not connected");
        }
        uint64_t now = mq_net_now_ms();
        if (now >= end)
            return mq_err_set(&c->err, MQLITE_ERR_TIMEOUT, "not connected within %d ms",
                              (int)timeout_ms);
        wait_round(c, left_ms(end, now));
    }
    return 0;
}

MQLITE_API const mqlite_event *mqlite_client_next_event_wait(mqlite_client *c,
                                                             int32_t timeout_ms)
{
    if (!ok(c))
        return NULL;
    uint64_t end = deadline_of(timeout_ms);
    while (c->s.ev_count == 0 && c->mode == MODE_SOCKET && (!idle(c) || c->waiting)) {
        uint64_t now = mq_net_now_ms();
        if (now >= end)
            break;
        wait_round(c, left_ms(end, now));
    }
    return mqlite_client_next_event(c);
}
