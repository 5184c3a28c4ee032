/*
 * config.c - mosquitto-format configuration files (see config.h and
 * docs/broker.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "acl.h"
#include "auth.h"
#include "codec.h"
#include "log.h"
#include "net.h"
#include "persist.h"
#include "retain.h"
#include "session.h"

enum { K_INT, K_BOOL, K_DURATION, K_LISTENER, K_PORT, K_BIND, K_LOG_TYPE, K_LOG_DEST,
       K_PERSISTENCE, K_LSTR, K_LBOOL, K_TLS_VERSION, K_SEC_FILE, K_ANONYMOUS, K_PER_LISTENER,
       K_MAX_CONNECTIONS, K_SLOW_POLICY, K_PERSIST_FILE, K_PERSIST_SYNC };

/* Per-listener strings (K_LSTR) and booleans (K_LBOOL): index into
 * plistener.str[] / .flag[]. Security files (K_SEC_FILE): into sec.file[]. */
enum { S_CAFILE, S_CAPATH, S_CERTFILE, S_KEYFILE, S_CIPHERS, S_CIPHERS13, S_NSTR };
enum { F_REQUIRE_CERT, F_IDENTITY, F_REQUEST_CERT, F_NFLAG };

#define NO_MAP INT64_MIN

typedef struct key_def {
    const char *name;
    int kind;
    int32_t opt;
    int64_t lo, hi;
    int64_t map_from, map_to; /* a value with a special meaning, e.g. 0 = no limit */
} key_def;

static const key_def keys[] = {
    {"listener", K_LISTENER, 0, 0, 65535, NO_MAP, 0},
    /* TLS, per listener (mosquitto: "available for all listeners"). */
    {"cafile", K_LSTR, S_CAFILE, 0, 0, NO_MAP, 0},
    {"capath", K_LSTR, S_CAPATH, 0, 0, NO_MAP, 0},
    {"certfile", K_LSTR, S_CERTFILE, 0, 0, NO_MAP, 0},
    {"keyfile", K_LSTR, S_KEYFILE, 0, 0, NO_MAP, 0},
    {"ciphers", K_LSTR, S_CIPHERS, 0, 0, NO_MAP, 0},
    {"ciphers_tls1.3", K_LSTR, S_CIPHERS13, 0, 0, NO_MAP, 0},
    {"require_certificate", K_LBOOL, F_REQUIRE_CERT, 0, 1, NO_MAP, 0},
    {"use_identity_as_username", K_LBOOL, F_IDENTITY, 0, 1, NO_MAP, 0},
    {"request_certificate", K_LBOOL, F_REQUEST_CERT, 0, 1, NO_MAP, 0}, /* mqlite's */
    {"tls_version", K_TLS_VERSION, 0, 0, 0, NO_MAP, 0},
    /* Security: global, or per listener with per_listener_settings true. */
    {"password_file", K_SEC_FILE, 0, 0, 0, NO_MAP, 0},
    {"acl_file", K_SEC_FILE, 1, 0, 0, NO_MAP, 0},
    {"scram_file", K_SEC_FILE, 2, 0, 0, NO_MAP, 0}, /* mqlite's */
    {"allow_anonymous", K_ANONYMOUS, 0, 0, 1, NO_MAP, 0},
    {"per_listener_settings", K_PER_LISTENER, 0, 0, 1, NO_MAP, 0},
    /* Limits. max_connections after a listener line is that listener's. */
    {"max_connections", K_MAX_CONNECTIONS, MQLITE_BOPT_MAX_CONNECTIONS, 0, INT32_MAX, -1, 0},
    {"max_connection_rate", K_INT, MQLITE_BOPT_MAX_CONNECTION_RATE, 0, UINT32_MAX, NO_MAP, 0},
    {"tls_handshake_timeout_ms", K_INT, MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS, 1, INT32_MAX,
     NO_MAP, 0},
    {"max_client_backlog_bytes", K_INT, MQLITE_BOPT_MAX_BACKLOG_BYTES, 0, INT64_MAX, NO_MAP, 0},
    {"slow_client_policy", K_SLOW_POLICY, MQLITE_BOPT_SLOW_CLIENT_POLICY, 0, 1, NO_MAP, 0},
    {"port", K_PORT, 0, 0, 65535, NO_MAP, 0},
    {"bind_address", K_BIND, 0, 0, 0, NO_MAP, 0},
    {"max_packet_size", K_INT, MQLITE_BOPT_MAX_PACKET_SIZE, 20, MQ_MAX_PACKET_SIZE, 0,
     MQ_MAX_PACKET_SIZE},
    {"max_inflight_messages", K_INT, MQLITE_BOPT_MAX_INFLIGHT, 1, 65535, 0, 65535},
    {"max_queued_messages", K_INT, MQLITE_BOPT_MAX_QUEUED, 0, UINT32_MAX, NO_MAP, 0},
    {"max_queued_bytes", K_INT, MQLITE_BOPT_MAX_QUEUED_BYTES, 0, INT64_MAX, NO_MAP, 0},
    {"retain_available", K_BOOL, MQLITE_BOPT_RETAIN_AVAILABLE, 0, 1, NO_MAP, 0},
    {"persistent_client_expiration", K_DURATION, MQLITE_BOPT_SESSION_EXPIRY_MAX_S, 0, 0,
     NO_MAP, 0},
    {"max_keepalive", K_INT, MQLITE_BOPT_MAX_KEEPALIVE_S, 1, 65535, 0, 65535},
    {"sys_interval", K_INT, MQLITE_BOPT_SYS_INTERVAL_S, 0, 86400 * 365, NO_MAP, 0},
    {"max_qos", K_INT, MQLITE_BOPT_MAX_QOS, 0, 2, NO_MAP, 0},
    {"max_topic_alias", K_INT, MQLITE_BOPT_TOPIC_ALIAS_MAX, 0, 65535, NO_MAP, 0},
    {"log_type", K_LOG_TYPE, 0, 0, 0, NO_MAP, 0},
    {"log_dest", K_LOG_DEST, 0, 0, 0, NO_MAP, 0},
    /* Persistence (docs/persistence.md): the file is opened and loaded
     * when the whole configuration is good. */
    {"persistence", K_PERSISTENCE, 0, 0, 0, NO_MAP, 0},
    {"persistence_file", K_PERSIST_FILE, 0, 0, 0, NO_MAP, 0},
    {"persistence_sync", K_PERSIST_SYNC, MQLITE_BOPT_PERSISTENCE_SYNC, 0, 2, NO_MAP, 0},
    {"persistence_sync_interval_ms", K_INT, MQLITE_BOPT_PERSISTENCE_INTERVAL_MS, 1, 3600000,
     NO_MAP, 0},
};

/* Security settings of a scope as the file gives them. */
typedef struct psec {
    char *file[3];        /* password, ACL, SCRAM; NULL = not given */
    int line[3];
    int anonymous;        /* -1 = not given */
} psec;

typedef struct plistener {
    int port;
    int line;
    char host[64];
    char *str[S_NSTR];    /* TLS files and ciphers; NULL = not given */
    int8_t flag[F_NFLAG]; /* -1 = not given */
    int tls_version;      /* MQ_TLS_*; -1 = not given */
    int64_t max_connections; /* -1 = not given */
    psec sec;
} plistener;

#define MAX_ARGS 4
#define REST_MAX 4096

typedef struct cfg {
    mqlite_broker *b;
    const char *path;
    int line;
    char *argv[MAX_ARGS];
    int argc;
    int extra;      /* more values than MAX_ARGS (fine for string values) */
    plistener ls[32];
    int nls;
    int port;       /* `port`; -1 = not given */
    char bind[64];  /* `bind_address`; "" = not given */
    int log_level;  /* from log_type / log_dest; -1 = not given */
    int per_listener; /* per_listener_settings */
    psec gsec;      /* security keys for the global scope */
    int persistence; /* `persistence`; -1 = not given */
    char *persist_file; /* `persistence_file`; NULL = not given */
    uint8_t check_only;  /* mqlite broker --check: the persistence file stays closed */
    char **persist_path; /* check_only: where the enabled file's path goes */
    char rest[REST_MAX]; /* the line after its key, for values with spaces */
} cfg;

static int fail(cfg *c, const char *fmt, ...) MQ_PRINTF(2, 3);
static int fail(cfg *c, const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mq_err_set(&c->b->err, MQLITE_ERR_CONFIG, "%s:%d: %s", c->path, c->line, msg);
}

static int need_args(cfg *c, int lo, int hi)
{
    int n = c->argc - 1 + c->extra;
    if (n >= lo && n <= hi)
        return 0;
    if (lo == hi)
        return fail(c, "%s takes %d value%s, not %d", c->argv[0], lo, lo == 1 ? "" : "s", n);
    return fail(c, "%s takes %d to %d values, not %d", c->argv[0], lo, hi, n);
}

static int parse_int(cfg *c, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return fail(c, "%s: \"%s\" is not a whole number", c->argv[0], s);
    if (v < lo || v > hi)
        return fail(c, "%s: %lld is out of range %lld..%lld", c->argv[0], v, (long long)lo,
                    (long long)hi);
    *out = v;
    return 0;
}

static int parse_bool(cfg *c, const char *s, int64_t *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return 0;
    }
    return fail(c, "%s: expected true or false, not \"%s\"", c->argv[0], s);
}

/* mosquitto's durations: a number and h, d, w, m (30 days) or y. */
static int parse_duration(cfg *c, const char *s, int64_t *out)
{
    static const struct { char unit; int64_t secs; } units[] = {
        {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}, {'m', 30 * 86400}, {'y', 365 * 86400}};
    size_t n = strlen(s);
    int64_t v;
    for (size_t i = 0; n > 1 && i < MQ_ARRAY_LEN(units); i++) {
        if (s[n - 1] != units[i].unit)
            continue;
        char num[24];
        if (n - 1 >= sizeof num)
            break;
        memcpy(num, s, n - 1);
        num[n - 1] = '\0';
        if (parse_int(c, num, 0, UINT32_MAX / units[i].secs, &v))
            return MQLITE_ERR_CONFIG;
        *out = v * units[i].secs;
        return 0;
    }
    return fail(c, "%s: \"%s\" is not a duration (a number followed by h, d, w, m or y)",
                c->argv[0], s);
}

static int log_type(cfg *c, const char *s)
{
    static const struct { const char *name; int level; } types[] = {
        {"none", 0}, {"error", MQLITE_LOG_ERROR}, {"warning", MQLITE_LOG_WARNING},
        {"notice", MQLITE_LOG_NOTICE}, {"information", MQLITE_LOG_INFO},
        {"debug", MQLITE_LOG_DEBUG}, {"all", MQLITE_LOG_DEBUG}, {"subscribe", -1},
        {"unsubscribe", -1}, {"websockets", -1}};
    for (size_t i = 0; i < MQ_ARRAY_LEN(types); i++) {
        if (strcmp(s, types[i].name) != 0)
            continue;
        /* mosquitto adds types up; the widest one given sets the level. */
        if (types[i].level > c->log_level)
            c->log_level = types[i].level;
        return 0;
    }
    return fail(c, "log_type: unknown type \"%s\"", s);
}

static int copy_host(cfg *c, char *dst, size_t cap, const char *s)
{
    if (strlen(s) >= cap)
        return fail(c, "%s: address \"%s\" is too long", c->argv[0], s);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int do_listener(cfg *c, const key_def *k)
{
    int64_t port;
    if (need_args(c, 1, 2) || parse_int(c, c->argv[1], k->lo, k->hi, &port))
        return MQLITE_ERR_CONFIG;
    if (c->nls == (int)MQ_ARRAY_LEN(c->ls))
        return fail(c, "too many listeners (at most %d)", (int)MQ_ARRAY_LEN(c->ls));
    plistener *l = &c->ls[c->nls];
    /* mosquitto: a listener without an address listens on every one. */
    if (copy_host(c, l->host, sizeof l->host, c->argc > 2 ? c->argv[2] : "0.0.0.0"))
        return MQLITE_ERR_CONFIG;
    l->port = (int)port;
    l->line = c->line;
    for (int i = 0; i < F_NFLAG; i++)
        l->flag[i] = -1;
    l->tls_version = -1;
    l->max_connections = -1;
    l->sec.anonymous = -1;
    c->nls++;
    return 0;
}

/* The listener the line belongs to, or a failure for keys that need one. */
static plistener *cur_listener(cfg *c)
{
    if (c->nls)
        return &c->ls[c->nls - 1];
    fail(c, "%s must follow a `listener` line (TLS is configured per listener)", c->argv[0]);
    return NULL;
}

/* The security scope the line belongs to (mosquitto's per_listener_settings). */
static psec *cur_sec(cfg *c)
{
    return c->per_listener && c->nls ? &c->ls[c->nls - 1].sec : &c->gsec;
}

/* The rest of the line as a new string in *slot (values may hold spaces). */
static int take_string(cfg *c, char **slot)
{
    if (c->argc < 2)
        return fail(c, "%s needs a value", c->argv[0]);
    char *v = mq_memdup0(&c->b->a, c->rest, strlen(c->rest));
    if (!v)
        return mq_err_code(&c->b->err, MQLITE_ERR_NOMEM);
    mq_free(&c->b->a, *slot);
    *slot = v;
    return 0;
}

static int do_tls_version(cfg *c)
{
    plistener *l = cur_listener(c);
    if (!l || need_args(c, 1, 1))
        return MQLITE_ERR_CONFIG;
    const char *v = c->argv[1];
    l->tls_version = strcmp(v, "tlsv1.3") == 0   ? MQ_TLS_V1_3
                     : strcmp(v, "tlsv1.2") == 0 ? MQ_TLS_V1_2
                     : strcmp(v, "tlsv1.1") == 0 ? MQ_TLS_V1_1
                                                 : -1;
    if (l->tls_version < 0)
        return fail(c, "tls_version: expected tlsv1.3, tlsv1.2 or tlsv1.1, not \"%s\"", v);
    return 0;
}

static int do_security_key(cfg *c, const key_def *k)
{
    int64_t v = 0;
    if (k->kind == K_PER_LISTENER) {
        if (need_args(c, 1, 1) || parse_bool(c, c->argv[1], &v))
            return MQLITE_ERR_CONFIG;
        if (c->nls)
            return fail(c, "per_listener_settings must come before the first listener");
        c->per_listener = (int)v;
        return 0;
    }
    psec *sc = cur_sec(c);
    if (k->kind == K_ANONYMOUS) {
        if (need_args(c, 1, 1) || parse_bool(c, c->argv[1], &v))
            return MQLITE_ERR_CONFIG;
        sc->anonymous = (int)v;
        return 0;
    }
    sc->line[k->opt] = c->line;
    return take_string(c, &sc->file[k->opt]);
}

static int do_listener_key(cfg *c, const key_def *k)
{
    int64_t v = 0;
    if (k->kind == K_TLS_VERSION)
        return do_tls_version(c);
    if (k->kind == K_MAX_CONNECTIONS && !c->nls)
        return -1; /* before any listener: the broker-wide option */
    plistener *l = cur_listener(c);
    if (!l)
        return MQLITE_ERR_CONFIG;
    if (k->kind == K_LSTR)
        return take_string(c, &l->str[k->opt]);
    if (need_args(c, 1, 1))
        return MQLITE_ERR_CONFIG;
    if (k->kind == K_MAX_CONNECTIONS) {
        if (parse_int(c, c->argv[1], -1, k->hi, &v))
            return MQLITE_ERR_CONFIG;
        l->max_connections = v < 0 ? 0 : v;
        return 0;
    }
    if (parse_bool(c, c->argv[1], &v))
        return MQLITE_ERR_CONFIG;
    l->flag[k->opt] = (int8_t)v;
    return 0;
}

static int do_key(cfg *c, const key_def *k)
{
    int64_t v = 0;
    switch (k->kind) {
    case K_LISTENER:
        return do_listener(c, k);
    case K_PORT:
        if (need_args(c, 1, 1) || parse_int(c, c->argv[1], k->lo, k->hi, &v))
            return MQLITE_ERR_CONFIG;
        c->port = (int)v;
        return 0;
    case K_BIND:
        if (need_args(c, 1, 1))
            return MQLITE_ERR_CONFIG;
        return copy_host(c, c->bind, sizeof c->bind, c->argv[1]);
    case K_LOG_TYPE:
        return need_args(c, 1, 1) ? MQLITE_ERR_CONFIG : log_type(c, c->argv[1]);
    case K_LOG_DEST:
        if (need_args(c, 1, 2))
            return MQLITE_ERR_CONFIG;
        if (strcmp(c->argv[1], "none") == 0)
            c->log_level = 0;
        else if (strcmp(c->argv[1], "stderr") != 0)
            return fail(c, "log_dest: only stderr (or none) is supported, not \"%s\"",
                        c->argv[1]);
        return 0;
    case K_PERSISTENCE:
        if (need_args(c, 1, 1) || parse_bool(c, c->argv[1], &v))
            return MQLITE_ERR_CONFIG;
        c->persistence = (int)v;
        return 0;
    case K_PERSIST_FILE:
        return take_string(c, &c->persist_file);
    case K_PERSIST_SYNC:
        if (need_args(c, 1, 1))
            return MQLITE_ERR_CONFIG;
        if (strcmp(c->argv[1], "always") == 0)
            v = MQLITE_PERSIST_SYNC_ALWAYS;
        else if (strcmp(c->argv[1], "batch") == 0)
            v = MQLITE_PERSIST_SYNC_BATCH;
        else if (strcmp(c->argv[1], "off") == 0)
            v = MQLITE_PERSIST_SYNC_OFF;
        else
            return fail(c, "persistence_sync: expected always, batch or off, not \"%s\"",
                        c->argv[1]);
        mq_broker_set_opt(c->b, k->opt, v);
        return 0;
    case K_SEC_FILE:
    case K_ANONYMOUS:
    case K_PER_LISTENER:
        return do_security_key(c, k);
    case K_LSTR:
    case K_LBOOL:
    case K_TLS_VERSION:
    case K_MAX_CONNECTIONS: {
        int rc = do_listener_key(c, k);
        if (rc >= 0)
            return rc;
        break; /* global max_connections: below */
    }
    case K_SLOW_POLICY:
        if (need_args(c, 1, 1))
            return MQLITE_ERR_CONFIG;
        if (strcmp(c->argv[1], "drop") == 0)
            v = MQ_SLOW_DROP_QOS0;
        else if (strcmp(c->argv[1], "disconnect") == 0)
            v = MQ_SLOW_DISCONNECT;
        else
            return fail(c, "slow_client_policy: expected drop or disconnect, not \"%s\"",
                        c->argv[1]);
        mq_broker_set_opt(c->b, k->opt, v);
        return 0;
    default:
        break;
    }
    if (need_args(c, 1, 1))
        return MQLITE_ERR_CONFIG;
    int64_t lo = k->map_from != NO_MAP && k->map_from < k->lo ? k->map_from : k->lo;
    int rc = k->kind == K_BOOL ? parse_bool(c, c->argv[1], &v)
             : k->kind == K_DURATION ? parse_duration(c, c->argv[1], &v)
                                     : parse_int(c, c->argv[1], lo, k->hi, &v);
    if (rc)
        return rc;
    if (k->map_from != NO_MAP && v == k->map_from)
        v = k->map_to;
    else if (k->kind == K_INT && v < k->lo)
        return fail(c, "%s: %lld is out of range %lld..%lld", c->argv[0], (long long)v,
                    (long long)k->lo, (long long)k->hi);
    if (mq_broker_set_opt(c->b, k->opt, v))
        return fail(c, "%s", c->b->err.msg);
    return 0;
}

/* Split line (modified in place) into c->argv. */
static int split(cfg *c, char *line)
{
    c->argc = 0;
    c->extra = 0;
    char *s = line;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            *s++ = '\0';
        if (!*s)
            break;
        if (c->argc == MAX_ARGS) {
            c->extra = 1;
            break;
        }
        c->argv[c->argc++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return 0;
}

static int do_line(cfg *c, char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '#')
        return 0;
    /* The value as one string too (paths may hold spaces). */
    const char *r = s;
    while (*r && *r != ' ' && *r != '\t')
        r++;
    while (*r == ' ' || *r == '\t')
        r++;
    if (strlen(r) >= sizeof c->rest)
        return fail(c, "line too long");
    memcpy(c->rest, r, strlen(r) + 1);
    if (split(c, s))
        return MQLITE_ERR_CONFIG;
    for (size_t i = 0; i < MQ_ARRAY_LEN(keys); i++)
        if (strcmp(c->argv[0], keys[i].name) == 0)
            return do_key(c, &keys[i]);
    return fail(c, "unknown option \"%s\"", c->argv[0]);
}

static int read_file(mqlite_broker *b, const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_err_set(&b->err, MQLITE_ERR_IO, "%s: %s", path, strerror(errno));
    mq_buf buf = {0};
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = mq_buf_append(&buf, &b->a, chunk, n);
    if (!rc && ferror(f))
        rc = mq_err_set(&b->err, MQLITE_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!rc)
        rc = mq_buf_append(&buf, &b->a, "", 1);
    if (rc) {
        mq_buf_free(&buf, &b->a);
        return rc == MQLITE_ERR_NOMEM ? mq_err_code(&b->err, rc) : rc;
    }
    *out = (char *)buf.p;
    return 0;
}

static int parse_all(cfg *c, char *text)
{
    char *line = text;
    c->line = 0;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        c->line++;
        if (do_line(c, line))
            return MQLITE_ERR_CONFIG;
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* ---- applying a parsed file: all or nothing ---- */

/* What a listener will be opened with. */
typedef struct prepared {
    mq_tls_ctx *tls;
    mq_bsec *sec;  /* own scope (per_listener_settings), not yet on b->secs */
} prepared;

static int file_fail(cfg *c, int line)
{
    char why[MQ_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", c->b->err.msg);
    return mq_err_set(&c->b->err, c->b->err.code ? c->b->err.code : MQLITE_ERR_CONFIG,
                      "%s:%d: %s", c->path, line, why);
}

/* Load a scope's files into sec (fresh). */
static int load_scope(cfg *c, const psec *ps, mq_bsec *sec)
{
    for (int k = 0; k < 3; k++) {
        if (!ps->file[k])
            continue;
        c->b->err.code = 0;
        if (mq_bsec_set_file(c->b, sec, k, ps->file[k]))
            return file_fail(c, ps->line[k]);
    }
    if (ps->anonymous >= 0)
        sec->allow_anonymous = (int8_t)ps->anonymous;
    return 0;
}

static int tls_conf(cfg *c, const plistener *l, mq_tls_conf *t)
{
    memset(t, 0, sizeof *t);
    int any = 0;
    for (int i = 0; i < S_NSTR; i++)
        any |= l->str[i] != NULL;
    any |= l->flag[F_REQUIRE_CERT] == 1 || l->flag[F_IDENTITY] == 1 ||
           l->flag[F_REQUEST_CERT] == 1 || l->tls_version >= 0;
    if (!any)
        return 0;
    c->line = l->line;
    /* mosquitto: certfile and keyfile together enable certificate TLS. */
    if (!l->str[S_CERTFILE] || !l->str[S_KEYFILE])
        return fail(c, "listener %d: TLS settings need both certfile and keyfile", l->port);
    int require = l->flag[F_REQUIRE_CERT] == 1, request = l->flag[F_REQUEST_CERT] == 1;
    if (l->flag[F_IDENTITY] == 1 && !require && !request)
        return fail(c, "listener %d: use_identity_as_username needs require_certificate true",
                    l->port);
    t->server = 1;
    t->cafile = l->str[S_CAFILE];
    t->capath = l->str[S_CAPATH];
    t->certfile = l->str[S_CERTFILE];
    t->keyfile = l->str[S_KEYFILE];
    t->ciphers = l->str[S_CIPHERS];
    t->ciphersuites = l->str[S_CIPHERS13];
    t->peer_cert = require ? MQ_TLS_PEER_REQUIRED : request ? MQ_TLS_PEER_OPTIONAL
                                                            : MQ_TLS_PEER_NONE;
    t->min_version = l->tls_version >= 0 ? l->tls_version : MQ_TLS_V1_2;
    return 1;
}

static int prepare(cfg *c, const plistener *l, prepared *pr)
{
    mqlite_broker *b = c->b;
    mq_tls_conf t;
    int rc = tls_conf(c, l, &t);
    if (rc < 0)
        return rc;
    if (rc == 1 && mq_tls_ctx_new(&b->a, &t, &pr->tls, &b->err))
        return file_fail(c, l->line);
    if (!c->per_listener)
        return 0;
    pr->sec = mq_malloc(&b->a, sizeof *pr->sec);
    if (!pr->sec)
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    mq_bsec_init(pr->sec);
    return load_scope(c, &l->sec, pr->sec);
}

static void unprepare(mqlite_broker *b, prepared *pr)
{
    mq_tls_ctx_free(pr->tls);
    if (pr->sec) {
        mq_bsec_clear(b, pr->sec);
        mq_free(&b->a, pr->sec);
    }
    memset(pr, 0, sizeof *pr);
}

/* Move the parts of src the file gave into the live scope dst. */
static void commit_scope(mqlite_broker *b, const psec *ps, mq_bsec *dst, mq_bsec *src)
{
    if (ps->file[0]) {
        mq_pwdb_free(&b->a, &dst->pw);
        dst->pw = src->pw;
        dst->has_pw = 1;
        mq_free(&b->a, dst->password_file);
        dst->password_file = src->password_file;
        src->pw.v = NULL;
        src->pw.n = 0;
        src->password_file = NULL;
    }
    if (ps->file[1]) {
        mq_acl_free(dst->acl);
        dst->acl = src->acl;
        mq_free(&b->a, dst->acl_file);
        dst->acl_file = src->acl_file;
        src->acl = NULL;
        src->acl_file = NULL;
    }
    if (ps->file[2]) {
        mq_pwdb_free(&b->a, &dst->scram);
        dst->scram = src->scram;
        dst->has_scram = 1;
        mq_free(&b->a, dst->scram_file);
        dst->scram_file = src->scram_file;
        src->scram.v = NULL;
        src->scram.n = 0;
        src->scram_file = NULL;
    }
    if (ps->anonymous >= 0) {
        dst->allow_anonymous = (int8_t)ps->anonymous;
        b->o.allow_anonymous = (uint8_t)ps->anonymous;
    }
}

static void close_new_listeners(mqlite_broker *b, int before)
{
    while (b->nls > before) {
        mq_listener *l = b->ls[--b->nls];
        mq_net_close(l->fd);
        mq_free(&b->a, l); /* its TLS context and scope are still in `prepared` */
    }
}

/* Open the listeners named, with their TLS and scopes. */
static int open_listeners(cfg *c, prepared *prs)
{
    mqlite_broker *b = c->b;
    int before = b->nls, rc = 0;
    for (int i = 0; i < c->nls && !rc; i++)
        rc = prepare(c, &c->ls[i], &prs[i]);
    for (int i = 0; i < c->nls && !rc; i++) {
        mq_listener *l = NULL;
        if (mq_broker_listen(b, c->ls[i].host, c->ls[i].port, NULL, &l)) {
            char why[MQ_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", b->err.msg);
            rc = mq_err_set(&b->err, MQLITE_ERR_IO, "%s:%d: %s", c->path, c->ls[i].line, why);
            break;
        }
        l->tls = prs[i].tls;
        l->sec = prs[i].sec;
        l->use_identity = c->ls[i].flag[F_IDENTITY] == 1;
        l->max_connections = c->ls[i].max_connections > 0 ? (uint32_t)c->ls[i].max_connections : 0;
    }
    if (rc) {
        for (int i = before; i < b->nls; i++)
            b->ls[i]->tls = NULL;
        close_new_listeners(b, before);
        for (int i = 0; i < c->nls; i++)
            unprepare(b, &prs[i]);
        return rc;
    }
    for (int i = 0; i < c->nls; i++) {
        if (prs[i].sec) { /* now owned by the broker */
            prs[i].sec->next = b->secs;
            b->secs = prs[i].sec;
        }
        if (prs[i].tls)
            mq_blog(b, MQLITE_LOG_INFO, "listener on port %d uses TLS", c->ls[i].port);
    }
    return 0;
}

static void add_port_listener(cfg *c)
{
    if (c->port < 0 && !c->bind[0])
        return;
    plistener *l = &c->ls[c->nls < (int)MQ_ARRAY_LEN(c->ls) ? c->nls++ : c->nls - 1];
    memset(l, 0, sizeof *l);
    l->port = c->port >= 0 ? c->port : 1883;
    for (int i = 0; i < F_NFLAG; i++)
        l->flag[i] = -1;
    l->tls_version = -1;
    l->max_connections = -1;
    l->sec.anonymous = -1;
    snprintf(l->host, sizeof l->host, "%s", c->bind[0] ? c->bind : "0.0.0.0");
}

static void cfg_free(cfg *c)
{
    const mq_alloc *a = &c->b->a;
    for (int i = 0; i < c->nls; i++) {
        for (int k = 0; k < S_NSTR; k++)
            mq_free(a, c->ls[i].str[k]);
        for (int k = 0; k < 3; k++)
            mq_free(a, c->ls[i].sec.file[k]);
    }
    for (int k = 0; k < 3; k++)
        mq_free(a, c->gsec.file[k]);
    mq_free(a, c->persist_file);
}

static int apply(cfg *c)
{
    mqlite_broker *b = c->b;
    mq_bsec g;
    mq_bsec_init(&g);
    int rc = load_scope(c, &c->gsec, &g);
    /* `persistence true` (without persistence_file: mqlite-broker.db in
     * the working directory); persistence_file alone does nothing, as in
     * mosquitto. Loaded before any listener opens. */
    int opened = 0;
    if (!rc && c->persistence == 1 && c->check_only) {
        /* --check must not create, lock or load the database a running
         * broker may hold: report the path instead. */
        const char *f = c->persist_file ? c->persist_file : "mqlite-broker.db";
        *c->persist_path = mq_memdup0(&b->a, f, strlen(f));
        if (!*c->persist_path)
            rc = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    } else if (!rc && c->persistence == 1 && !b->persist) {
        rc = mq_persist_open(b, c->persist_file ? c->persist_file : "mqlite-broker.db");
        opened = !rc;
    }
    prepared prs[MQ_ARRAY_LEN(c->ls) + 1];
    memset(prs, 0, sizeof prs);
    if (!rc) {
        add_port_listener(c);
        rc = open_listeners(c, prs);
    }
    if (!rc)
        commit_scope(b, &c->gsec, &b->gsec, &g);
    else if (opened) {
        /* A failed load changes nothing: keep the broker empty. */
        mq_persist_close(b);
        mq_bsess_free_all(b);
        mq_retain_free(b);
        mq_retain_init(b);
    }
    mq_bsec_clear(b, &g);
    return rc;
}

static int load(mqlite_broker *b, const char *path, int check_only, char **persist_path);

int mq_bconf_load(mqlite_broker *b, const char *path)
{
    return load(b, path, 0, NULL);
}

int mq_bconf_check(mqlite_broker *b, const char *path, char **persist_path)
{
    *persist_path = NULL;
    return load(b, path, 1, persist_path);
}

static int load(mqlite_broker *b, const char *path, int check_only, char **persist_path)
{
    char *text = NULL;
    int rc = read_file(b, path, &text);
    if (rc)
        return rc;
    cfg *c = mq_calloc(&b->a, sizeof *c);
    if (!c) {
        mq_free(&b->a, text);
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    }
    c->b = b;
    c->path = path;
    c->port = -1;
    c->log_level = -1;
    c->gsec.anonymous = -1;
    c->persistence = -1;
    c->check_only = (uint8_t)check_only;
    c->persist_path = persist_path;
    mq_bopts saved = b->o;
    rc = parse_all(c, text);
    if (!rc && c->log_level >= 0)
        b->o.log_level = c->log_level;
    if (!rc)
        rc = apply(c);
    if (rc)
        b->o = saved; /* a failed load changes nothing */
    cfg_free(c);
    mq_free(&b->a, c);
    mq_free(&b->a, text);
    if (!rc) {
        mq_free(&b->a, b->config_path);
        b->config_path = mq_memdup0(&b->a, path, strlen(path));
    }
    return rc;
}
