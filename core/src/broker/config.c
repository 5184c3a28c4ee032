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

#include "codec.h"
#include "net.h"

enum { K_INT, K_BOOL, K_DURATION, K_LISTENER, K_PORT, K_BIND, K_LOG_TYPE, K_LOG_DEST,
       K_PERSISTENCE };

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
    {"port", K_PORT, 0, 0, 65535, NO_MAP, 0},
    {"bind_address", K_BIND, 0, 0, 0, NO_MAP, 0},
    {"allow_anonymous", K_BOOL, MQLITE_BOPT_ALLOW_ANONYMOUS, 0, 1, NO_MAP, 0},
    {"max_packet_size", K_INT, MQLITE_BOPT_MAX_PACKET_SIZE, 20, MQ_MAX_PACKET_SIZE, 0,
     MQ_MAX_PACKET_SIZE},
    {"max_inflight_messages", K_INT, MQLITE_BOPT_MAX_INFLIGHT, 1, 65535, 0, 65535},
    {"max_queued_messages", K_INT, MQLITE_BOPT_MAX_QUEUED, 0, UINT32_MAX, NO_MAP, 0},
    {"max_queued_bytes", K_INT, MQLITE_BOPT_MAX_QUEUED_BYTES, 0, INT64_MAX, NO_MAP, 0},
    {"retain_available", K_BOOL, MQLITE_BOPT_RETAIN_AVAILABLE, 0, 1, NO_MAP, 0},
    {"persistent_client_expiration", K_DURATION, MQLITE_BOPT_SESSION_EXPIRY_MAX_S, 0, 0,
     NO_MAP, 0},
    {"max_keepalive", K_INT, MQLITE_BOPT_MAX_KEEPALIVE_S, 1, 65535, 0, 65535},
    {"max_connections", K_INT, MQLITE_BOPT_MAX_CONNECTIONS, 0, INT32_MAX, -1, 0},
    {"sys_interval", K_INT, MQLITE_BOPT_SYS_INTERVAL_S, 0, 86400 * 365, NO_MAP, 0},
    {"max_qos", K_INT, MQLITE_BOPT_MAX_QOS, 0, 2, NO_MAP, 0},
    {"max_topic_alias", K_INT, MQLITE_BOPT_TOPIC_ALIAS_MAX, 0, 65535, NO_MAP, 0},
    {"log_type", K_LOG_TYPE, 0, 0, 0, NO_MAP, 0},
    {"log_dest", K_LOG_DEST, 0, 0, 0, NO_MAP, 0},
    {"persistence", K_PERSISTENCE, 0, 0, 0, NO_MAP, 0},
};

typedef struct plistener {
    int port;
    int line;
    char host[64];
} plistener;

#define MAX_ARGS 4

typedef struct cfg {
    mqlite_broker *b;
    const char *path;
    int line;
    char *argv[MAX_ARGS];
    int argc;
    plistener ls[32];
    int nls;
    int port;       /* `port`; -1 = not given */
    char bind[64];  /* `bind_address`; "" = not given */
    int log_level;  /* from log_type / log_dest; -1 = not given */
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
    int n = c->argc - 1;
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
    c->nls++;
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
        return v ? fail(c, "persistence true is not supported: sessions live in memory") : 0;
    default:
        break;
    }
    if (need_args(c, 1, 1))
        return MQLITE_ERR_CONFIG;
    int64_t lo = k->map_from != NO_MAP && k->map_from < k->lo ? k->map_from : k->lo;
    int rc = k->kind == K_BOOL       ? parse_bool(c, c->argv[1], &v)
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
    char *s = line;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            *s++ = '\0';
        if (!*s)
            break;
        if (c->argc == MAX_ARGS)
            return fail(c, "%s: too many values", c->argv[0]);
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

/* Open the listeners named; on failure close the ones opened here. */
static int open_listeners(cfg *c)
{
    mqlite_broker *b = c->b;
    int before = b->nls;
    if (c->port >= 0 || c->bind[0]) {
        plistener *l = &c->ls[c->nls < (int)MQ_ARRAY_LEN(c->ls) ? c->nls++ : c->nls - 1];
        l->port = c->port >= 0 ? c->port : 1883;
        l->line = 0;
        snprintf(l->host, sizeof l->host, "%s", c->bind[0] ? c->bind : "0.0.0.0");
    }
    for (int i = 0; i < c->nls; i++) {
        if (mq_broker_listen(b, c->ls[i].host, c->ls[i].port, NULL) == 0)
            continue;
        while (b->nls > before) {
            mq_listener *l = b->ls[--b->nls];
            mq_net_close(l->fd);
            mq_free(&b->a, l);
        }
        char why[MQ_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", b->err.msg);
        return mq_err_set(&b->err, MQLITE_ERR_IO, "%s:%d: %s", c->path, c->ls[i].line, why);
    }
    return 0;
}

int mq_bconf_load(mqlite_broker *b, const char *path)
{
    char *text = NULL;
    int rc = read_file(b, path, &text);
    if (rc)
        return rc;
    cfg c;
    memset(&c, 0, sizeof c);
    c.b = b;
    c.path = path;
    c.port = -1;
    c.log_level = -1;
    mq_bopts saved = b->o;
    rc = parse_all(&c, text);
    if (!rc && c.log_level >= 0)
        b->o.log_level = c.log_level;
    if (!rc)
        rc = open_listeners(&c);
    if (rc)
        b->o = saved; /* a failed load changes nothing */
    mq_free(&b->a, text);
    if (!rc) {
        mq_free(&b->a, b->config_path);
        b->config_path = mq_memdup0(&b->a, path, strlen(path));
    }
    return rc;
}
