/*
 * passwd.c - password and SCRAM credential files (see passwd.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "passwd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tls.h"

/* ---- hashing ---- */

static int pw_digest(const mq_pwent *e, mq_view pw, uint8_t out[64])
{
    if (e->kind == MQ_PW_PBKDF2) {
        if (PKCS5_PBKDF2_HMAC((const char *)pw.p, (int)pw.len, e->salt, e->salt_len,
                              (int)e->iterations, EVP_sha512(), 64, out) != 1)
            goto fail;
        return 0;
    }
    /* $6$: SHA-512 over password then salt (mosquitto 1.x). */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(md, pw.p, pw.len) == 1 &&
             EVP_DigestUpdate(md, e->salt, e->salt_len) == 1 &&
             EVP_DigestFinal_ex(md, out, &n) == 1 && n == 64;
    EVP_MD_CTX_free(md);
    if (ok)
        return 0;
fail:
    ERR_clear_error();
    return MQLITE_ERR_TLS;
}

int mq_scram_keys(const void *pw, size_t pwlen, const uint8_t *salt, size_t salt_len,
                  uint32_t iterations, uint8_t stored[32], uint8_t server[32])
{
    uint8_t salted[32], client_key[32];
    unsigned int n = 0;
    int ok = pwlen <= INT32_MAX && iterations >= 1 && iterations <= INT32_MAX &&
             PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)salt_len, (int)iterations,
                               EVP_sha256(), 32, salted) == 1 &&
             HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, client_key,
                  &n) != NULL &&
             EVP_Digest(client_key, 32, stored, &n, EVP_sha256(), NULL) == 1 &&
             HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, server, &n) !=
                 NULL;
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : MQLITE_ERR_TLS;
}

/* ---- parsing ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Decode base64 field [s, s + n) into exactly `want` bytes (0: 1..cap). */
static int b64_field(const char *s, size_t n, uint8_t *out, size_t cap, size_t want)
{
    long got = mq_b64_decode(s, n, out, cap);
    if (got <= 0 || (want && (size_t)got != want))
        return -1;
    return (int)got;
}

static int parse_iterations(const char *s, size_t n, uint32_t *out)
{
    char num[16];
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(num, &end, 10);
    if (errno || *end || num[0] == '-' || v < 1 || v > INT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "$7$101$salt$hash" or "$6$salt$hash" into e. 0 or a reason. */
static const char *parse_mosq_hash(char *h, mq_pwent *e)
{
    if (h[0] != '$' || (h[1] != '6' && h[1] != '7') || h[2] != '$')
        return "unknown hash type (only $6$ and $7$ are used by mosquitto_passwd)";
    e->kind = h[1] == '7' ? MQ_PW_PBKDF2 : MQ_PW_SHA512;
    char *p = h + 3;
    if (e->kind == MQ_PW_PBKDF2) {
        char *d = strchr(p, '$');
        if (!d || parse_iterations(p, (size_t)(d - p), &e->iterations))
            return "bad iteration count";
        p = d + 1;
    }
    char *d = strchr(p, '$');
    if (!d)
        return "missing hash";
    int n = b64_field(p, (size_t)(d - p), e->salt, sizeof e->salt, MQ_PW_SALT_LEN);
    if (n < 0)
        return "bad salt (12 bytes of base64 expected)";
    e->salt_len = (uint8_t)n;
    if (b64_field(d + 1, strlen(d + 1), e->hash, sizeof e->hash, 64) < 0)
        return "bad hash (64 bytes of base64 expected)";
    return NULL;
}

/* "SCRAM-SHA-256$4096:salt$stored:server" into e. */
static const char *parse_scram(char *h, mq_pwent *e)
{
    static const char tag[] = "SCRAM-SHA-256$";
    if (strncmp(h, tag, sizeof tag - 1) != 0)
        return "not a SCRAM-SHA-256 credential";
    char *p = h + sizeof tag - 1, *colon = strchr(p, ':'), *dollar = strchr(p, '$');
    if (!colon || !dollar || colon > dollar ||
        parse_iterations(p, (size_t)(colon - p), &e->iterations))
        return "bad iteration count";
    int n = b64_field(colon + 1, (size_t)(dollar - colon - 1), e->salt, sizeof e->salt, 0);
    if (n < 0)
        return "bad salt";
    e->salt_len = (uint8_t)n;
    p = dollar + 1;
    colon = strchr(p, ':');
    if (!colon || b64_field(p, (size_t)(colon - p), e->hash, 32, 32) < 0 ||
        b64_field(colon + 1, strlen(colon + 1), e->server_key, 32, 32) < 0)
        return "bad StoredKey:ServerKey (32 bytes of base64 each expected)";
    e->kind = MQ_PW_SCRAM_SHA256;
    return NULL;
}

typedef struct loader {
    const mq_alloc *a;
    const char *path;
    int line;
    mq_pw_warn_fn warn;
    void *ud;
    mq_pwent *v;
    uint32_t n, cap;
} loader;

static void warn(loader *l, const char *user, const char *why)
{
    if (!l->warn)
        return;
    char msg[MQ_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s:%d: entry for \"%s\" skipped: %s", l->path, l->line,
             user ? user : "", why);
    l->warn(l->ud, msg);
}

static int add_entry(loader *l, const mq_pwent *e, const char *user)
{
    if (l->n == l->cap) {
        uint32_t c = l->cap ? l->cap * 2 : 16;
        mq_pwent *p = mq_realloc(l->a, l->v, (size_t)c * sizeof *p);
        if (!p)
            return MQLITE_ERR_NOMEM;
        l->v = p;
        l->cap = c;
    }
    mq_pwent *d = &l->v[l->n];
    *d = *e;
    d->user = mq_memdup0(l->a, user, strlen(user));
    if (!d->user)
        return MQLITE_ERR_NOMEM;
    l->n++;
    return 0;
}

static int load_line(loader *l, char *line, int scram)
{
    if (line[0] == '#')
        return 0;
    char *colon = strchr(line, ':');
    if (!colon)
        return 0; /* mosquitto ignores lines without ':' */
    *colon = '\0';
    char *user = trim(line), *hash = colon + 1;
    if (!scram) {
        /* mosquitto splits at every ':'; the hash is the second field. */
        char *c2 = strchr(hash, ':');
        if (c2)
            *c2 = '\0';
    }
    hash = trim(hash);
    mq_pwent e;
    memset(&e, 0, sizeof e);
    const char *why = !user[0]   ? "empty user name"
                      : !hash[0] ? "no password hash (plain-text file? convert it with "
                                   "mqlite passwd -U)"
                      : scram    ? parse_scram(hash, &e)
                                 : parse_mosq_hash(hash, &e);
    if (why) {
        warn(l, user, why);
        return 0;
    }
    return add_entry(l, &e, user);
}

static int cmp_ent(const void *x, const void *y)
{
    const mq_pwent *a = x, *b = y;
    int c = strcmp(a->user, b->user);
    return c ? c : a->seq < b->seq ? -1 : 1;
}

/* Sort for mq_pwdb_find; of a user given twice, the last line wins (the
 * others are skipped with a warning). */
static void finish(loader *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        l->v[i].seq = i;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_ent);
    uint32_t w = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (i + 1 < l->n && strcmp(l->v[i].user, l->v[i + 1].user) == 0) {
            warn(l, l->v[i].user, "the user is given again later in the file");
            mq_free(l->a, l->v[i].user);
            continue;
        }
        l->v[w++] = l->v[i];
    }
    l->n = w;
}

int mq_pwdb_load(const mq_alloc *a, const char *path, int scram, mq_pwdb *out,
                 mq_pw_warn_fn warn_fn, void *ud, mq_err *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return mq_err_set(err, MQLITE_ERR_IO, "%s file %s: %s",
                          scram ? "SCRAM credential" : "password", path, strerror(errno));
    loader l;
    memset(&l, 0, sizeof l);
    l.a = a;
    l.path = path;
    l.warn = warn_fn;
    l.ud = ud;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int rc = 0;
    while (!rc && (got = getline(&line, &lcap, f)) >= 0) {
        l.line++;
        rc = load_line(&l, line, scram);
    }
    if (line) {
        OPENSSL_cleanse(line, lcap);
        free(line);
    }
    if (!rc && ferror(f))
        rc = mq_err_set(err, MQLITE_ERR_IO, "%s: read error", path);
    fclose(f);
    if (rc) {
        mq_pwdb tmp = {l.v, l.n};
        mq_pwdb_free(a, &tmp);
        return rc == MQLITE_ERR_NOMEM ? mq_err_code(err, rc) : rc;
    }
    l.line = 0;
    finish(&l);
    out->v = l.v;
    out->n = l.n;
    return 0;
}

void mq_pwdb_free(const mq_alloc *a, mq_pwdb *db)
{
    for (uint32_t i = 0; i < db->n; i++) {
        mq_free(a, db->v[i].user);
        OPENSSL_cleanse(&db->v[i], sizeof db->v[i]);
    }
    mq_free(a, db->v);
    db->v = NULL;
    db->n = 0;
}

const mq_pwent *mq_pwdb_find(const mq_pwdb *db, mq_view user)
{
    uint32_t lo = 0, hi = db->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const char *u = db->v[mid].user;
        size_t ul = strlen(u), n = ul < user.len ? ul : user.len;
        int c = n ? memcmp(u, user.p, n) : 0;
        if (!c)
            c = ul < user.len ? -1 : ul > user.len ? 1 : 0;
        if (!c)
            return &db->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int mq_pw_check(const mq_pwdb *db, mq_view user, mq_view password)
{
    const mq_pwent *e = db ? mq_pwdb_find(db, user) : NULL;
    if (e && e->kind == MQ_PW_SCRAM_SHA256)
        e = NULL;
    /* An unknown user costs one default PBKDF2 run, like a known one, so
     * that timing does not tell which user names exist. */
    mq_pwent dummy;
    memset(&dummy, 0, sizeof dummy);
    dummy.kind = MQ_PW_PBKDF2;
    dummy.iterations = MQ_PW_DEFAULT_ITERATIONS;
    dummy.salt_len = MQ_PW_SALT_LEN;
    const mq_pwent *use = e ? e : &dummy;
    uint8_t h[64];
    if (password.len > INT32_MAX || pw_digest(use, password, h))
        return 0;
    int ok = mq_ct_equal(h, use->hash, 64);
    OPENSSL_cleanse(h, sizeof h);
    return e != NULL && ok;
}

/* ---- writing ---- */

static int b64(char **w, char *end, const void *p, size_t n)
{
    size_t k = mq_b64_encode(p, n, *w, (size_t)(end - *w));
    if (!k)
        return MQLITE_ERR_BUFFER;
    *w += k;
    return 0;
}

int mq_pw_make_line(char *out, size_t cap, const char *user, const void *pw, size_t pwlen,
                    int kind, uint32_t iterations)
{
    if (!user[0] || strpbrk(user, ":\r\n"))
        return MQLITE_ERR_INVALID;
    mq_pwent e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.iterations = iterations ? iterations
                   : kind == MQ_PW_SCRAM_SHA256 ? MQ_SCRAM_DEFAULT_ITERATIONS
                                                : MQ_PW_DEFAULT_ITERATIONS;
    e.salt_len = kind == MQ_PW_SCRAM_SHA256 ? MQ_SCRAM_SALT_LEN : MQ_PW_SALT_LEN;
    if (mq_tls_random(e.salt, e.salt_len))
        return MQLITE_ERR_TLS;
    int rc = kind == MQ_PW_SCRAM_SHA256
                 ? mq_scram_keys(pw, pwlen, e.salt, e.salt_len, e.iterations, e.hash,
                                 e.server_key)
                 : pw_digest(&e, mq_view_make(pw, pwlen), e.hash);
    if (rc)
        return rc;
    int n;
    if (kind == MQ_PW_SCRAM_SHA256)
        n = snprintf(out, cap, "%s:SCRAM-SHA-256$%u:", user, (unsigned)e.iterations);
    else if (kind == MQ_PW_PBKDF2)
        n = snprintf(out, cap, "%s:$7$%u$", user, (unsigned)e.iterations);
    else
        n = snprintf(out, cap, "%s:$6$", user);
    if (n < 0 || (size_t)n >= cap)
        return MQLITE_ERR_BUFFER;
    char *w = out + n, *end = out + cap;
    rc = b64(&w, end, e.salt, e.salt_len);
    if (!rc && end - w > 1)
        *w++ = '$';
    if (!rc)
        rc = b64(&w, end, e.hash, kind == MQ_PW_SCRAM_SHA256 ? 32 : 64);
    if (!rc && kind == MQ_PW_SCRAM_SHA256) {
        if (end - w > 1)
            *w++ = ':';
        rc = b64(&w, end, e.server_key, 32);
    }
    OPENSSL_cleanse(&e, sizeof e);
    return rc;
}
