/*
 * scram.c - SCRAM-SHA-256 server exchange (see scram.h).
 */
#include "scram.h"

#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tls.h"

#define NONCE_BYTES 18
#define MSG_MAX 1024

struct mq_scram {
    mq_alloc a;
    int known;                 /* the user has a SCRAM entry */
    uint32_t iterations;
    uint8_t salt[64];
    uint8_t salt_len;
    uint8_t stored[32];
    uint8_t server[32];
    char gs2[8];               /* "n,," or "y,," */
    char user[256];
    char *first_bare;          /* client-first-message-bare */
    char *server_first;
    char nonce[128];           /* client nonce + server nonce */
};

/* RFC 5802 5.1: saslname, with "=2C" for ',' and "=3D" for '='. */
static int decode_saslname(const char *s, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            if (n - i < 3)
                return -1;
            if (memcmp(s + i, "=2C", 3) == 0)
                c = ',';
            else if (memcmp(s + i, "=3D", 3) == 0)
                c = '=';
            else
                return -1;
            i += 2;
        } else if (c == ',' || c == '\0') {
            return -1;
        }
        if (w + 1 >= cap)
            return -1;
        out[w++] = c;
    }
    out[w] = '\0';
    return w ? 0 : -1;
}

/* Attribute `k=` at the start of [*p, e): its value's extent; advances past
 * the following ','. */
static int attr(const char **p, const char *e, char k, const char **v, size_t *vn)
{
    const char *s = *p;
    if (e - s < 2 || s[0] != k || s[1] != '=')
        return -1;
    s += 2;
    const char *c = memchr(s, ',', (size_t)(e - s));
    *v = s;
    *vn = (size_t)((c ? c : e) - s);
    *p = c ? c + 1 : e;
    return 0;
}

static int printable_nonce(const char *v, size_t n)
{
    /* RFC 5802 7: printable ASCII except ','. */
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
            return 0;
    return n > 0;
}

static void fake_credentials(mq_scram *st, const uint8_t secret[32])
{
    unsigned int n = 0;
    uint8_t mac[32];
    HMAC(EVP_sha256(), secret, 32, (const uint8_t *)st->user, strlen(st->user), mac, &n);
    memcpy(st->salt, mac, MQ_SCRAM_SALT_LEN);
    st->salt_len = MQ_SCRAM_SALT_LEN;
    st->iterations = MQ_SCRAM_DEFAULT_ITERATIONS;
    /* A StoredKey no proof can match: H(x) == random would need a preimage. */
    mq_tls_random(st->stored, sizeof st->stored);
    mq_tls_random(st->server, sizeof st->server);
    ERR_clear_error();
}

static int parse_first(mq_scram *st, mq_view m, const char **why, const char **cnonce,
                       size_t *cn)
{
    const char *p = (const char *)m.p, *e = p + m.len;
    if (m.len < 3 || m.len > MSG_MAX || memchr(p, 0, m.len)) {
        *why = "client-first-message missing or too long";
        return MQLITE_ERR_INVALID;
    }
    if (p[0] == 'p') {
        *why = "channel binding is not supported (gs2 header \"p=\")";
        return MQLITE_ERR_INVALID;
    }
    if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',' || p[2] != ',') {
        *why = "bad gs2 header (authorization identities are not supported)";
        return MQLITE_ERR_INVALID;
    }
    memcpy(st->gs2, p, 3);
    st->gs2[3] = '\0';
    p += 3;
    const char *bare = p, *v;
    size_t vn;
    if (attr(&p, e, 'n', &v, &vn) || decode_saslname(v, vn, st->user, sizeof st->user)) {
        *why = "bad user name (n=) in client-first-message";
        return MQLITE_ERR_INVALID;
    }
    if (attr(&p, e, 'r', cnonce, cn) || !printable_nonce(*cnonce, *cn) || *cn > 64) {
        *why = "bad client nonce (r=) in client-first-message";
        return MQLITE_ERR_INVALID;
    }
    /* RFC 5802 5.1: "m=" is reserved for a mandatory extension we do not
     * know, so the exchange must fail; other extensions are ignored. */
    if (p < e && p[0] == 'm') {
        *why = "unsupported mandatory extension (m=)";
        return MQLITE_ERR_INVALID;
    }
    st->first_bare = mq_memdup0(&st->a, bare, (size_t)(e - bare));
    return st->first_bare ? 0 : MQLITE_ERR_NOMEM;
}

int mq_scram_start(const mq_alloc *a, const mq_pwdb *db, const uint8_t secret[32],
                   mq_view client_first, mq_scram **out, mq_buf *msg, const char **why)
{
    *out = NULL;
    mq_scram *st = mq_calloc(a, sizeof *st);
    if (!st)
        return MQLITE_ERR_NOMEM;
    st->a = *a;
    const char *cnonce;
    size_t cn;
    int rc = parse_first(st, client_first, why, &cnonce, &cn);
    if (rc) {
        mq_scram_free(st);
        return rc;
    }
    const mq_pwent *pe = db ? mq_pwdb_find(db, mq_view_cstr(st->user)) : NULL;
    if (pe && pe->kind == MQ_PW_SCRAM_SHA256) {
        st->known = 1;
        st->iterations = pe->iterations;
        st->salt_len = pe->salt_len;
        memcpy(st->salt, pe->salt, pe->salt_len);
        memcpy(st->stored, pe->hash, 32);
        memcpy(st->server, pe->server_key, 32);
    } else {
        fake_credentials(st, secret);
    }
    uint8_t rnd[NONCE_BYTES];
    char snonce[32], salt64[100];
    if (mq_tls_random(rnd, sizeof rnd)) {
        mq_scram_free(st);
        return MQLITE_ERR_NOMEM;
    }
    mq_b64_encode(rnd, sizeof rnd, snonce, sizeof snonce);
    mq_b64_encode(st->salt, st->salt_len, salt64, sizeof salt64);
    snprintf(st->nonce, sizeof st->nonce, "%.*s%s", (int)cn, cnonce, snonce);
    char sf[300];
    int n = snprintf(sf, sizeof sf, "r=%s,s=%s,i=%u", st->nonce, salt64,
                     (unsigned)st->iterations);
    st->server_first = mq_memdup0(a, sf, (size_t)n);
    if (!st->server_first || mq_buf_append(msg, a, sf, (size_t)n)) {
        mq_scram_free(st);
        return MQLITE_ERR_NOMEM;
    }
    *out = st;
    return 0;
}

static int hmac256(const uint8_t key[32], const void *d, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, 32, d, n, out, &len) != NULL && len == 32;
}

/* client-final-message-without-proof and the proof. */
static int parse_final(const mq_scram *st, mq_view m, const char **why, size_t *without,
                       uint8_t proof[32])
{
    const char *p = (const char *)m.p, *e = p + m.len, *v;
    size_t vn;
    char gs2b64[16];
    size_t gl = mq_b64_encode(st->gs2, strlen(st->gs2), gs2b64, sizeof gs2b64);
    if (m.len > MSG_MAX || memchr(p, 0, m.len) || attr(&p, e, 'c', &v, &vn) || vn != gl ||
        memcmp(v, gs2b64, gl) != 0) {
        *why = "channel binding (c=) does not match the gs2 header";
        return MQLITE_ERR_INVALID;
    }
    if (attr(&p, e, 'r', &v, &vn) || vn != strlen(st->nonce) || memcmp(v, st->nonce, vn) != 0) {
        *why = "nonce (r=) does not match";
        return MQLITE_ERR_INVALID;
    }
    /* Skip extensions up to ",p=". */
    const char *pp = NULL;
    for (const char *q = p; q + 2 <= e; q++)
        if ((q == (const char *)m.p || q[-1] == ',') && q[0] == 'p' && q[1] == '=')
            pp = q;
    if (!pp || pp == (const char *)m.p) {
        *why = "missing proof (p=)";
        return MQLITE_ERR_INVALID;
    }
    *without = (size_t)(pp - 1 - (const char *)m.p);
    if (mq_b64_decode(pp + 2, (size_t)(e - pp - 2), proof, 32) != 32) {
        *why = "bad proof (p=)";
        return MQLITE_ERR_INVALID;
    }
    return 0;
}

int mq_scram_finish(mq_scram *st, mq_view client_final, mq_buf *msg, const char **why)
{
    uint8_t proof[32], sig[32], key[32], check[32], ssig[32];
    size_t without = 0;
    int rc = parse_final(st, client_final, why, &without, proof);
    if (rc)
        return rc;
    /* AuthMessage = client-first-bare "," server-first "," final-without-proof */
    size_t fb = strlen(st->first_bare), sf = strlen(st->server_first);
    size_t n = fb + 1 + sf + 1 + without;
    char *am = mq_malloc(&st->a, n);
    if (!am)
        return MQLITE_ERR_NOMEM;
    memcpy(am, st->first_bare, fb);
    am[fb] = ',';
    memcpy(am + fb + 1, st->server_first, sf);
    am[fb + 1 + sf] = ',';
    memcpy(am + fb + 2 + sf, client_final.p, without);
    unsigned int hl = 0;
    int ok = hmac256(st->stored, am, n, sig);
    for (int i = 0; i < 32; i++)
        key[i] = proof[i] ^ sig[i];
    ok = ok && EVP_Digest(key, 32, check, &hl, EVP_sha256(), NULL) == 1;
    int match = ok && mq_ct_equal(check, st->stored, 32);
    ok = ok && hmac256(st->server, am, n, ssig);
    mq_free(&st->a, am);
    ERR_clear_error();
    OPENSSL_cleanse(key, sizeof key);
    if (!ok)
        return MQLITE_ERR_NOMEM;
    if (!match || !st->known) {
        *why = "wrong password or unknown user";
        return MQLITE_ERR_REFUSED;
    }
    char v[64];
    memcpy(v, "v=", 2);
    size_t vl = mq_b64_encode(ssig, 32, v + 2, sizeof v - 2);
    return mq_buf_append(msg, &st->a, v, 2 + vl);
}

const char *mq_scram_user(const mq_scram *st)
{
    return st->user;
}

void mq_scram_free(mq_scram *st)
{
    if (!st)
        return;
    mq_alloc a = st->a;
    mq_free(&a, st->first_bare);
    mq_free(&a, st->server_first);
    OPENSSL_cleanse(st, sizeof *st);
    mq_free(&a, st);
}
