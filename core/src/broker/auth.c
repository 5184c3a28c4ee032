/*
 * auth.c - security scopes, the CONNECT decision, enhanced authentication
 * (AUTH, SCRAM-SHA-256, re-authentication), the application's pulled
 * authentication requests, and ACL decisions for connections and sessions
 * (see auth.h), with the public API of mqlite.h's "Broker: security" part.
 */
#include "auth.h"

#include <stdio.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "conn.h"
#include "log.h"
#include "props.h"
#include "proto.h"
#include "scram.h"

#define REQ_MAGIC 0x6d714152u /* "mqAR" */

struct mqlite_auth_request {
    uint32_t magic;
    int32_t kind;               /* MQLITE_AUTH_* */
    int64_t id;
    struct mqlite_auth_request *next;
    int32_t version, port, tls;
    uint8_t has_user, has_pass, has_data;
    size_t pass_len, data_len;
    char *client_id, *username, *address, *cert_cn, *method;
    uint8_t *password, *data;
};

/* ======================================================================
 * Scopes
 * ====================================================================== */

void mq_bsec_init(mq_bsec *s)
{
    memset(s, 0, sizeof *s);
    s->allow_anonymous = -1;
}

void mq_bsec_clear(mqlite_broker *b, mq_bsec *s)
{
    mq_pwdb_free(&b->a, &s->pw);
    mq_pwdb_free(&b->a, &s->scram);
    mq_acl_free(s->acl);
    mq_free(&b->a, s->password_file);
    mq_free(&b->a, s->acl_file);
    mq_free(&b->a, s->scram_file);
    mq_bsec_init(s);
}

mq_bsec *mq_bsec_new(mqlite_broker *b)
{
    mq_bsec *s = mq_malloc(&b->a, sizeof *s);
    if (!s)
        return NULL;
    mq_bsec_init(s);
    s->next = b->secs;
    b->secs = s;
    return s;
}

int mq_bsec_anonymous(const mq_bsec *s)
{
    /* mosquitto 2: a password file makes anonymous access opt-in. */
    if (s->allow_anonymous >= 0)
        return s->allow_anonymous;
    return !s->has_pw && !s->has_scram;
}

static void pw_warn(void *ud, const char *msg)
{
    mq_blog(ud, MQLITE_LOG_WARNING, "%s", msg);
}

static int set_path(mqlite_broker *b, char **slot, const char *path)
{
    char *copy = path ? mq_memdup0(&b->a, path, strlen(path)) : NULL;
    if (path && !copy)
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    mq_free(&b->a, *slot);
    *slot = copy;
    return 0;
}

static int set_pwfile(mqlite_broker *b, mq_bsec *s, int scram, const char *path)
{
    mq_pwdb db = {NULL, 0};
    if (path) {
        int rc = mq_pwdb_load(&b->a, path, scram, &db, pw_warn, b, &b->err);
        if (rc)
            return rc;
    }
    if (set_path(b, scram ? &s->scram_file : &s->password_file, path)) {
        mq_pwdb_free(&b->a, &db);
        return MQLITE_ERR_NOMEM;
    }
    mq_pwdb *slot = scram ? &s->scram : &s->pw;
    mq_pwdb_free(&b->a, slot);
    *slot = db;
    if (scram)
        s->has_scram = path != NULL;
    else
        s->has_pw = path != NULL;
    if (path)
        mq_blog(b, MQLITE_LOG_INFO, "%s file %s: %u entries", scram ? "SCRAM" : "password",
                path, (unsigned)db.n);
    return 0;
}

int mq_bsec_set_file(mqlite_broker *b, mq_bsec *s, int kind, const char *path)
{
    if (kind != 1)
        return set_pwfile(b, s, kind == 2, path);
    mq_acl *acl = NULL;
    if (path) {
        int rc = mq_acl_load(&b->a, path, &acl, &b->err);
        if (rc)
            return rc;
    }
    if (set_path(b, &s->acl_file, path)) {
        mq_acl_free(acl);
        return MQLITE_ERR_NOMEM;
    }
    mq_acl_free(s->acl);
    s->acl = acl;
    return 0;
}

/* ======================================================================
 * Output helpers
 * ====================================================================== */

static void put_auth(mq_conn *c, uint8_t reason, mq_view data)
{
    mqlite_broker *b = c->b;
    mq_buf pb = {0};
    int rc = mq_props_put_bytes(&pb, &b->a, MQLITE_PROP_AUTH_METHOD, mq_view_cstr(c->auth_method));
    if (!rc && data.len)
        rc = mq_props_put_bytes(&pb, &b->a, MQLITE_PROP_AUTH_DATA, data);
    mq_packet k;
    memset(&k, 0, sizeof k);
    k.type = MQLITE_PKT_AUTH;
    k.version = MQLITE_V5;
    k.reason = reason;
    k.props = mq_view_make(pb.p, pb.len);
    if (!rc)
        mq_conn_put_packet(c, &k);
    mq_buf_free(&pb, &b->a);
}

/* 3.x CONNACK return code for a 5.0 reason given by the application. */
static uint8_t v3_code(uint8_t r)
{
    switch (r) {
    case 0x84: return 0x01;
    case 0x85: return 0x02;
    case 0x86: return 0x04;
    case 0x88: case 0x89: case 0x97: case 0x9F: return 0x03;
    default: return 0x05;
    }
}

/* A refusal for credentials: counted, logged (client id and address only). */
static int auth_refuse(mq_conn *c, mq_view id, uint8_t v5, const char *why)
{
    c->b->st.auth_failed++;
    char msg[160];
    snprintf(msg, sizeof msg, "authentication failed: %s", why);
    return mq_proto_refuse(c, v5, v3_code(v5), id, msg);
}

static int set_username(mq_conn *c, mq_view u)
{
    char *copy = mq_memdup0(&c->b->a, u.p, u.len);
    if (!copy)
        return MQLITE_ERR_NOMEM;
    mq_free(&c->b->a, c->username);
    c->username = copy;
    return 0;
}

static int stash_connect(mq_conn *c)
{
    c->connect_raw.len = 0;
    return mq_buf_append(&c->connect_raw, &c->b->a, c->raw.p, c->raw.len);
}

/* The client identifier of the stashed CONNECT (for logs). */
static mq_view stashed_id(const mq_conn *c)
{
    mq_decode_opts o = {0, 0, MQ_ROLE_SERVER, 0};
    mq_packet p;
    size_t used, need;
    if (c->connect_raw.len &&
        !mq_decode(c->connect_raw.p, c->connect_raw.len, &o, &p, &used, &need, NULL))
        return p.client_id;
    return mq_view_make(NULL, 0);
}

/* Decode the stashed CONNECT again and accept it. */
static int accept_stashed(mq_conn *c, mq_view auth_data)
{
    mq_decode_opts o = {0, 0, MQ_ROLE_SERVER, 0};
    mq_packet p;
    size_t used = 0, need = 0;
    int rc = mq_decode(c->connect_raw.p, c->connect_raw.len, &o, &p, &used, &need, NULL);
    c->auth = MQ_AUTH_NONE;
    if (rc) /* cannot happen: it decoded before */
        return mq_proto_refuse(c, 0x80, 0x03, mq_view_make(NULL, 0), "internal error");
    rc = mq_proto_connect_accept(c, &p, auth_data);
    mq_buf_free(&c->connect_raw, &c->b->a);
    return rc;
}

/* ======================================================================
 * Requests for the application
 * ====================================================================== */

static void req_free(const mq_alloc *a, struct mqlite_auth_request *r)
{
    if (!r)
        return;
    if (r->password)
        OPENSSL_cleanse(r->password, r->pass_len);
    mq_free(a, r->client_id);
    mq_free(a, r->username);
    mq_free(a, r->address);
    mq_free(a, r->cert_cn);
    mq_free(a, r->method);
    mq_free(a, r->password);
    mq_free(a, r->data);
    r->magic = 0;
    mq_free(a, r);
}

static int dup_view(const mq_alloc *a, char **out, mq_view v)
{
    *out = mq_memdup0(a, v.p, v.len);
    return *out ? 0 : MQLITE_ERR_NOMEM;
}

static int fill_request(mq_conn *c, struct mqlite_auth_request *r, const mq_packet *p,
                        mq_view method, mq_view data)
{
    const mq_alloc *a = &c->b->a;
    r->version = c->version;
    r->port = c->l ? c->l->port : 0;
    r->tls = c->tls != NULL;
    int rc = dup_view(a, &r->client_id, p ? p->client_id : mq_view_cstr(c->s ? c->s->id : ""));
    rc |= dup_view(a, &r->address, mq_view_cstr(c->peer));
    if (c->username || (p && p->has_username)) {
        r->has_user = 1;
        rc |= dup_view(a, &r->username, c->username ? mq_view_cstr(c->username) : p->username);
    }
    if (p && p->has_password) {
        r->has_pass = 1;
        r->pass_len = p->password.len;
        rc |= dup_view(a, (char **)&r->password, p->password);
    }
    if (c->cert_ok && c->cert_cn)
        rc |= dup_view(a, &r->cert_cn, mq_view_cstr(c->cert_cn));
    if (method.len)
        rc |= dup_view(a, &r->method, method);
    r->has_data = data.p != NULL;
    r->data_len = data.len;
    rc |= dup_view(a, (char **)&r->data, data);
    return rc ? MQLITE_ERR_NOMEM : 0;
}

/* Queue a request for c; c waits on b->authwait. */
static int ask_app(mq_conn *c, int kind, const mq_packet *p, mq_view method, mq_view data)
{
    mqlite_broker *b = c->b;
    struct mqlite_auth_request *r = mq_calloc(&b->a, sizeof *r);
    if (!r || fill_request(c, r, p, method, data)) {
        req_free(&b->a, r);
        return MQLITE_ERR_NOMEM;
    }
    r->magic = REQ_MAGIC;
    r->kind = kind;
    r->id = ++b->auth_seq;
    if (b->authq_tail)
        b->authq_tail->next = r;
    else
        b->authq = r;
    b->authq_tail = r;
    b->nauthq++;
    c->auth = MQ_AUTH_APP;
    c->auth_id = r->id;
    c->aw_next = b->authwait;
    b->authwait = c;
    mq_blog(b, MQLITE_LOG_DEBUG, "authentication request %lld for \"%.*s\" from %s",
            (long long)r->id, (int)mq_view_cstr(r->client_id).len, r->client_id, c->peer);
    return 0;
}

static void authwait_unlink(mq_conn *c)
{
    for (mq_conn **pp = &c->b->authwait; *pp; pp = &(*pp)->aw_next) {
        if (*pp == c) {
            *pp = c->aw_next;
            break;
        }
    }
    c->aw_next = NULL;
}

static void queue_drop(mqlite_broker *b, int64_t id)
{
    struct mqlite_auth_request *prev = NULL;
    for (struct mqlite_auth_request *r = b->authq; r; prev = r, r = r->next) {
        if (r->id != id)
            continue;
        if (prev)
            prev->next = r->next;
        else
            b->authq = r->next;
        if (b->authq_tail == r)
            b->authq_tail = prev;
        b->nauthq--;
        req_free(&b->a, r);
        return;
    }
}

void mq_auth_conn_gone(mq_conn *c)
{
    mqlite_broker *b = c->b;
    if (c->auth == MQ_AUTH_APP) {
        authwait_unlink(c);
        queue_drop(b, c->auth_id);
    }
    c->auth = MQ_AUTH_NONE;
    c->parked = 0;
    mq_scram_free(c->scram);
    c->scram = NULL;
    mq_buf_free(&c->connect_raw, &b->a);
}

void mq_auth_free_all(mqlite_broker *b)
{
    while (b->authq) {
        struct mqlite_auth_request *r = b->authq;
        b->authq = r->next;
        req_free(&b->a, r);
    }
    b->authq_tail = NULL;
    req_free(&b->a, b->auth_cur);
    b->auth_cur = NULL;
    b->authwait = NULL;
    b->nauthq = 0;
}

/* ======================================================================
 * CONNECT
 * ====================================================================== */

/* use_identity_as_username: the certificate's CN, or a refusal. */
static int tls_identity(mq_conn *c, const mq_packet *p)
{
    if (!c->l || !c->l->use_identity || !c->tls)
        return 0;
    if (!c->cert_ok || !c->cert_cn)
        return auth_refuse(c, p->client_id, 0x86,
                           "use_identity_as_username: no verified client certificate with a CN");
    return set_username(c, mq_view_cstr(c->cert_cn)) ? MQLITE_ERR_NOMEM : 1;
}

static int scram_begin(mq_conn *c, mq_view data, mq_view id)
{
    mqlite_broker *b = c->b;
    mq_buf out = {0};
    const char *why = "";
    mq_scram_free(c->scram);
    c->scram = NULL;
    int rc = mq_scram_start(&b->a, c->sec->has_scram ? &c->sec->scram : NULL, b->secret, data,
                            &c->scram, &out, &why);
    if (rc == 0) {
        put_auth(c, 0x18, mq_view_make(out.p, out.len));
        c->auth = MQ_AUTH_SCRAM;
    }
    mq_buf_free(&out, &b->a);
    if (rc == MQLITE_ERR_INVALID && c->state == MQ_CONN_NEW)
        return auth_refuse(c, id, 0x87, why);
    if (rc == MQLITE_ERR_INVALID) {
        b->st.auth_failed++;
        mq_blog(b, MQLITE_LOG_NOTICE, "re-authentication of \"%s\" (%s) failed: %s", c->s->id,
                c->peer, why);
        mq_conn_close(c, 0x87, 1, "re-authentication failed"); /* 5.0 [MQTT-4.12.1-2] */
        return 0;
    }
    return rc;
}

static int enhanced(mq_conn *c, const mq_packet *p, mq_view method, mq_view data)
{
    if (dup_view(&c->b->a, &c->auth_method, method))
        return MQLITE_ERR_NOMEM;
    if (c->b->o.auth_external) {
        if (stash_connect(c) || ask_app(c, MQLITE_AUTH_CONNECT, p, method, data))
            return MQLITE_ERR_NOMEM;
        c->parked = 1;
        return 0;
    }
    /* MQTT 5.0 [MQTT-4.12.0-1]: a method we do not offer -> 0x8C. */
    if (!mq_view_eq(method, mq_view_cstr(MQ_SCRAM_METHOD)) || !c->sec->has_scram)
        return auth_refuse(c, p->client_id, 0x8C, "unsupported authentication method");
    if (stash_connect(c))
        return MQLITE_ERR_NOMEM;
    return scram_begin(c, data, p->client_id);
}

int mq_auth_connect(mq_conn *c, const mq_packet *p)
{
    mqlite_broker *b = c->b;
    if (!c->sec)
        c->sec = c->l && c->l->sec ? c->l->sec : &b->gsec;
    int rc = tls_identity(c, p);
    if (rc < 0)
        return rc;
    if (c->state == MQ_CONN_DEAD)
        return 0;
    int by_cert = rc == 1;
    if (!by_cert && p->has_username && set_username(c, p->username))
        return MQLITE_ERR_NOMEM;
    mq_prop m, d;
    if (c->version == MQLITE_V5 && mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &m)) {
        if (!mq_props_get(p->props, MQLITE_PROP_AUTH_DATA, &d))
            d.val = mq_view_make(NULL, 0);
        return enhanced(c, p, m.val, d.val); /* SCRAM: its identity replaces it */
    }
    if (b->o.auth_external) {
        if (stash_connect(c) || ask_app(c, MQLITE_AUTH_CONNECT, p, mq_view_make(NULL, 0),
                                        mq_view_make(NULL, 0)))
            return MQLITE_ERR_NOMEM;
        c->parked = 1;
        return 0;
    }
    if (!by_cert && p->has_username && c->sec->has_pw &&
        !mq_pw_check(&c->sec->pw, p->username, p->password))
        return auth_refuse(c, p->client_id, 0x86, "bad user name or password");
    if (!by_cert && !p->has_username && !mq_bsec_anonymous(c->sec))
        return auth_refuse(c, p->client_id, 0x87, "anonymous clients are not allowed");
    return mq_proto_connect_accept(c, p, mq_view_make(NULL, 0));
}

/* ======================================================================
 * AUTH packets
 * ====================================================================== */

/* SCRAM client-final-message: accept the CONNECT, or complete a
 * re-authentication. */
static int scram_final(mq_conn *c, mq_view data)
{
    mqlite_broker *b = c->b;
    mq_buf out = {0};
    const char *why = "";
    int rc = mq_scram_finish(c->scram, data, &out, &why);
    int reauth = c->state == MQ_CONN_ACTIVE;
    /* 5.0 4.12.1: re-authentication proves the same identity again. */
    if (!rc && reauth && (!c->username || strcmp(c->username, mq_scram_user(c->scram)) != 0)) {
        rc = MQLITE_ERR_REFUSED;
        why = "re-authentication as a different user";
    }
    if (!rc && !reauth)
        rc = set_username(c, mq_view_cstr(mq_scram_user(c->scram)));
    mq_scram_free(c->scram);
    c->scram = NULL;
    if (rc == MQLITE_ERR_NOMEM) {
        mq_buf_free(&out, &b->a);
        return rc;
    }
    if (rc) {
        mq_buf_free(&out, &b->a);
        if (!reauth)
            return auth_refuse(c, stashed_id(c), 0x87, why);
        b->st.auth_failed++;
        mq_blog(b, MQLITE_LOG_NOTICE, "re-authentication of \"%s\" (%s) failed: %s", c->s->id,
                c->peer, why);
        /* 5.0 [MQTT-4.12.1-2] */
        mq_conn_close(c, 0x87, 1, "re-authentication failed");
        return 0;
    }
    mq_view v = mq_view_make(out.p, out.len);
    if (reauth) {
        c->auth = MQ_AUTH_NONE;
        put_auth(c, 0x00, v);
        mq_blog(b, MQLITE_LOG_INFO, "client \"%s\" re-authenticated", c->s->id);
        rc = 0;
    } else {
        rc = accept_stashed(c, v);
    }
    mq_buf_free(&out, &b->a);
    return rc;
}

int mq_auth_packet(mq_conn *c, const mq_packet *p)
{
    mq_prop m, d;
    /* MQTT 5.0 [MQTT-4.12.0-7]: no AUTH without a method in CONNECT. */
    if (!c->auth_method)
        return MQLITE_ERR_PROTOCOL;
    /* 5.0 [MQTT-4.12.0-5], [MQTT-4.12.1-1]: the same method throughout. */
    if (!mq_props_get(p->props, MQLITE_PROP_AUTH_METHOD, &m) ||
        !mq_view_eq(m.val, mq_view_cstr(c->auth_method))) {
        if (c->state == MQ_CONN_NEW) /* 5.0 [MQTT-4.12.0-4]: CONNACK 0x8C */
            return auth_refuse(c, stashed_id(c), 0x8C, "authentication method changed");
        return MQLITE_ERR_AUTH_METHOD; /* DISCONNECT 0x8C */
    }
    if (!mq_props_get(p->props, MQLITE_PROP_AUTH_DATA, &d))
        d.val = mq_view_make(NULL, 0);
    int active = c->state == MQ_CONN_ACTIVE;
    if (p->reason == 0x19) {
        /* 5.0 4.12.1: re-authentication, only once connected and idle. */
        if (!active || c->auth != MQ_AUTH_NONE)
            return MQLITE_ERR_PROTOCOL;
        if (c->b->o.auth_external)
            return ask_app(c, MQLITE_AUTH_REAUTH, NULL, m.val, d.val);
        if (strcmp(c->auth_method, MQ_SCRAM_METHOD) != 0)
            return MQLITE_ERR_AUTH_METHOD; /* authenticated by an application no longer asked */
        return scram_begin(c, d.val, mq_view_cstr(c->s->id));
    }
    if (p->reason != 0x18)
        return MQLITE_ERR_PROTOCOL; /* 5.0 3.15.2.1: 0x00 is the server's */
    if (c->auth == MQ_AUTH_SCRAM)
        return scram_final(c, d.val);
    if (c->auth == MQ_AUTH_CLIENT) {
        if (ask_app(c, MQLITE_AUTH_CONTINUE, NULL, m.val, d.val))
            return MQLITE_ERR_NOMEM;
        c->parked = !active; /* before CONNACK, nothing else may be handled */
        return 0;
    }
    /* 5.0 [MQTT-4.12.0-3]: AUTH 0x18 answers ours; we sent none. */
    return MQLITE_ERR_PROTOCOL;
}

/* ======================================================================
 * ACL decisions
 * ====================================================================== */

int mq_auth_may_publish(const mq_conn *c, mq_view topic)
{
    const mq_acl *acl = c->sec ? c->sec->acl : NULL;
    return !acl || mq_acl_check(acl, c->s->id, c->username, topic, MQ_ACL_WRITE);
}

int mq_auth_may_subscribe(const mq_conn *c, mq_view filter)
{
    const mq_acl *acl = c->sec ? c->sec->acl : NULL;
    return !acl || mq_acl_check_subscribe(acl, c->s->id, c->username, filter);
}

int mq_auth_may_read(const mq_bsess *s, mq_view topic)
{
    const mq_acl *acl = s->sec ? s->sec->acl : NULL;
    return !acl || mq_acl_check(acl, s->id, s->username, topic, MQ_ACL_READ);
}

int mq_auth_session_may_write(const mq_bsess *s, mq_view topic)
{
    const mq_acl *acl = s->sec ? s->sec->acl : NULL;
    return !acl || mq_acl_check(acl, s->id, s->username, topic, MQ_ACL_WRITE);
}

/* ======================================================================
 * Public API
 * ====================================================================== */

static int bad(const mqlite_broker *b)
{
    return !b || b->magic != MQ_BROKER_MAGIC;
}

static const struct mqlite_auth_request *req(const mqlite_auth_request *r)
{
    return r && r->magic == REQ_MAGIC ? r : NULL;
}

MQLITE_API const mqlite_auth_request *mqlite_broker_next_auth_request(mqlite_broker *b)
{
    if (bad(b))
        return NULL;
    req_free(&b->a, b->auth_cur);
    b->auth_cur = b->authq;
    if (!b->authq)
        return NULL;
    b->authq = b->authq->next;
    if (!b->authq)
        b->authq_tail = NULL;
    b->auth_cur->next = NULL;
    b->nauthq--;
    return b->auth_cur;
}

MQLITE_API int64_t mqlite_auth_request_id(const mqlite_auth_request *r)
{
    return req(r) ? r->id : MQLITE_ERR_MISUSE;
}

MQLITE_API int32_t mqlite_auth_request_kind(const mqlite_auth_request *r)
{
    return req(r) ? r->kind : MQLITE_ERR_MISUSE;
}

MQLITE_API const char *mqlite_auth_request_client_id(const mqlite_auth_request *r)
{
    return req(r) ? r->client_id : NULL;
}

MQLITE_API const char *mqlite_auth_request_username(const mqlite_auth_request *r)
{
    return req(r) && r->has_user ? r->username : NULL;
}

MQLITE_API const void *mqlite_auth_request_password(const mqlite_auth_request *r, size_t *len)
{
    int has = req(r) && r->has_pass;
    if (len)
        *len = has ? r->pass_len : 0;
    return has ? r->password : NULL;
}

MQLITE_API const char *mqlite_auth_request_address(const mqlite_auth_request *r)
{
    return req(r) ? r->address : NULL;
}

MQLITE_API const char *mqlite_auth_request_cert_cn(const mqlite_auth_request *r)
{
    return req(r) ? r->cert_cn : NULL;
}

MQLITE_API const char *mqlite_auth_request_method(const mqlite_auth_request *r)
{
    return req(r) ? r->method : NULL;
}

MQLITE_API const void *mqlite_auth_request_data(const mqlite_auth_request *r, size_t *len)
{
    int has = req(r) && r->has_data;
    if (len)
        *len = has ? r->data_len : 0;
    return has ? r->data : NULL;
}

MQLITE_API int32_t mqlite_auth_request_version(const mqlite_auth_request *r)
{
    return req(r) ? r->version : MQLITE_ERR_MISUSE;
}

MQLITE_API int32_t mqlite_auth_request_port(const mqlite_auth_request *r)
{
    return req(r) ? r->port : MQLITE_ERR_MISUSE;
}

MQLITE_API int32_t mqlite_auth_request_tls(const mqlite_auth_request *r)
{
    return req(r) ? r->tls : MQLITE_ERR_MISUSE;
}

static mq_conn *waiting(mqlite_broker *b, int64_t id)
{
    for (mq_conn *c = b->authwait; c; c = c->aw_next)
        if (c->auth_id == id)
            return c;
    return NULL;
}

MQLITE_API int32_t mqlite_broker_auth_set_username(mqlite_broker *b, int64_t request_id,
                                                   const char *username)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    mq_conn *c = waiting(b, request_id);
    if (!c)
        return mq_err_set(&b->err, MQLITE_ERR_NOT_FOUND,
                          "no connection waits for authentication request %lld",
                          (long long)request_id);
    if (!username) {
        mq_free(&b->a, c->username);
        c->username = NULL;
        return 0;
    }
    return set_username(c, mq_view_cstr(username)) ? mq_err_code(&b->err, MQLITE_ERR_NOMEM) : 0;
}

static int reply_connect(mq_conn *c, uint8_t reason, mq_view data)
{
    mqlite_broker *b = c->b;
    if (reason == 0x18) {
        put_auth(c, 0x18, data);
        c->auth = MQ_AUTH_CLIENT;
        c->parked = 0;
        return 0;
    }
    c->parked = 0;
    if (reason == 0)
        return accept_stashed(c, data);
    (void)b;
    return auth_refuse(c, stashed_id(c), reason, "refused by the application");
}

static void reply_reauth(mq_conn *c, uint8_t reason, mq_view data)
{
    if (reason == 0x18) {
        put_auth(c, 0x18, data);
        c->auth = MQ_AUTH_CLIENT;
        return;
    }
    c->auth = MQ_AUTH_NONE;
    if (reason == 0) {
        put_auth(c, 0x00, data);
        return;
    }
    c->b->st.auth_failed++;
    mq_blog(c->b, MQLITE_LOG_NOTICE, "re-authentication of \"%s\" (%s) refused by the application",
            c->s->id, c->peer);
    mq_conn_close(c, reason, 1, "re-authentication failed"); /* 5.0 [MQTT-4.12.1-2] */
}

static int check_reply(mqlite_broker *b, const mq_conn *c, int32_t reason, size_t len)
{
    int enhanced = c->auth_method != NULL;
    if (reason == 0x18 && !enhanced)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID,
                          "continue (0x18) needs an authentication method in the CONNECT");
    if (len && !enhanced)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID,
                          "authentication data needs an authentication method in the CONNECT");
    if (len > 65535)
        return mq_err_set(&b->err, MQLITE_ERR_RANGE, "authentication data over 65535 bytes");
    int type = c->state == MQ_CONN_ACTIVE ? MQLITE_PKT_DISCONNECT : MQLITE_PKT_CONNACK;
    if (reason == 0 || reason == 0x18 || (reason >= 0x80 && reason <= 0xff &&
                                          mq_reason_valid(type, (unsigned)reason)))
        return 0;
    return mq_err_set(&b->err, MQLITE_ERR_INVALID,
                      "reason code 0x%02x is not success, continue (0x18) or a %s failure code",
                      (unsigned)reason, type == MQLITE_PKT_CONNACK ? "CONNACK" : "DISCONNECT");
}

MQLITE_API int32_t mqlite_broker_auth_reply_data(mqlite_broker *b, int64_t request_id,
                                                 int32_t reason_code, const void *data,
                                                 size_t len)
{
    if (bad(b) || (len && !data))
        return MQLITE_ERR_MISUSE;
    mq_conn *c = waiting(b, request_id);
    if (!c)
        return mq_err_set(&b->err, MQLITE_ERR_NOT_FOUND,
                          "no connection waits for authentication request %lld (closed, "
                          "timed out or answered)",
                          (long long)request_id);
    int rc = check_reply(b, c, reason_code, len);
    if (rc)
        return rc;
    authwait_unlink(c);
    c->auth = MQ_AUTH_NONE;
    mq_view v = mq_view_make(data, len);
    if (c->state == MQ_CONN_ACTIVE)
        reply_reauth(c, (uint8_t)reason_code, v);
    else
        rc = reply_connect(c, (uint8_t)reason_code, v);
    if (rc && c->state != MQ_CONN_DEAD)
        mq_conn_close(c, -1, 0, "out of memory");
    /* Input that waited behind the CONNECT is handled now. */
    if (c->state != MQ_CONN_DEAD)
        mq_conn_resume(c);
    return 0;
}

MQLITE_API int32_t mqlite_broker_auth_reply(mqlite_broker *b, int64_t request_id,
                                            int32_t reason_code)
{
    return mqlite_broker_auth_reply_data(b, request_id, reason_code, NULL, 0);
}

MQLITE_API int32_t mqlite_broker_set_str(mqlite_broker *b, int32_t option, const char *value)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    int kind = option == MQLITE_BOPT_PASSWORD_FILE ? 0
               : option == MQLITE_BOPT_ACL_FILE    ? 1
               : option == MQLITE_BOPT_SCRAM_FILE  ? 2
                                                   : -1;
    if (kind < 0)
        return mq_err_set(&b->err, MQLITE_ERR_OPTION, "unknown broker string option %d",
                          (int)option);
    return mq_bsec_set_file(b, &b->gsec, kind, value);
}

MQLITE_API int32_t mqlite_broker_acl_add(mqlite_broker *b, const char *username, int32_t access,
                                         const char *filter)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    int pattern = (access & MQLITE_ACL_PATTERN) != 0;
    int acc = access & ~MQLITE_ACL_PATTERN;
    if (acc < 0 || acc > MQLITE_ACL_READWRITE)
        return mq_err_set(&b->err, MQLITE_ERR_INVALID, "bad ACL access 0x%x", (unsigned)access);
    mq_bsec *s = &b->gsec;
    int fresh = !s->acl;
    if (fresh && !(s->acl = mq_acl_new(&b->a)))
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    int rc = mq_acl_add(s->acl, username, pattern, acc, filter, &b->err);
    if (rc && fresh) {
        mq_acl_free(s->acl);
        s->acl = NULL;
    }
    return rc;
}

MQLITE_API int32_t mqlite_broker_acl_clear(mqlite_broker *b)
{
    if (bad(b))
        return MQLITE_ERR_MISUSE;
    mq_acl_free(b->gsec.acl);
    b->gsec.acl = NULL;
    mq_free(&b->a, b->gsec.acl_file);
    b->gsec.acl_file = NULL;
    return 0;
}
