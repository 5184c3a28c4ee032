/*
 * scram_client.c - SCRAM-SHA-256 client exchange (see scram_client.h).
 */
#include "scram_client.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tls.h"

#define NONCE_BYTES 24
#define ITER_MAX 10000000u

struct mq_scramc {
    mq_alloc a;
    char *first_bare;     /* client-first-message-bare */
    char nonce[64];       /* ours, base64 */
    uint8_t *password;
    size_t password_len;
    uint8_t server_sig[32];
    uint8_t sent_final;
};

static int hmac256(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    unsigned int n = 32;
    if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n) || n != 32) {
        ERR_clear_error();
        return MQLITE_ERR_TLS;
    }
    return 0;
}

int mq_scramc_start(const mq_alloc *a, const char *user, mq_view password, mq_scramc **st,
                    mq_buf *out, mq_err *err)
{
    *st = NULL;
    if (!user || !*user)
        return mq_err_set(err, MQLITE_ERR_INVALID,
                          "SCRAM-SHA-256 needs a user name (MQLITE_OPT_USERNAME)");
    mq_scramc *s = mq_calloc(a, sizeof *s);
    if (!s)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    s->a = *a;
    uint8_t raw[NONCE_BYTES];
    if (mq_tls_random(raw, sizeof raw)) {
        mq_free(a, s);
        return mq_err_set(err, MQLITE_ERR_TLS, "no random bytes for the SCRAM nonce");
    }
    mq_b64_encode(raw, sizeof raw, s->nonce, sizeof s->nonce);
    /* RFC 5802 5.1: saslname escapes ',' as "=2C" and '=' as "=3D". */
    size_t ulen = strlen(user), cap = 3 * ulen + strlen(s->nonce) + 8;
    s->first_bare = mq_malloc(a, cap);
    s->password = mq_malloc(a, password.len ? password.len : 1);
    if (!s->first_bare || !s->password) {
        mq_scramc_free(s);
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    }
    if (password.len)
        memcpy(s->password, password.p, password.len);
    s->password_len = password.len;
    size_t w = 0;
    memcpy(s->first_bare, "n=", 2);
    w = 2;
    for (size_t i = 0; i < ulen; i++) {
        if (user[i] == ',' || user[i] == '=') {
            memcpy(s->first_bare + w, user[i] == ',' ? "=2C" : "=3D", 3);
            w += 3;
        } else {
            s->first_bare[w++] = user[i];
        }
    }
    w += (size_t)snprintf(s->first_bare + w, cap - w, ",r=%s", s->nonce);
    if (mq_buf_append(out, a, "n,,", 3) || mq_buf_append(out, a, s->first_bare, w)) {
        mq_scramc_free(s);
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    }
    *st = s;
    return 0;
}

/* The value of attribute `k` in a comma-separated message, or an empty view. */
static mq_view attr(mq_view msg, char k)
{
    const char *p = (const char *)msg.p, *e = p + msg.len;
    while (p < e) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        const char *end = c ? c : e;
        if (end - p >= 2 && p[0] == k && p[1] == '=')
            return mq_view_make(p + 2, (size_t)(end - p - 2));
        p = end + 1;
    }
    return mq_view_make(NULL, 0);
}

int mq_scramc_final(mq_scramc *s, mq_view sf, mq_buf *out, mq_err *err)
{
    if (s->sent_final)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: a second server-first-message");
    if (sf.len == 0 || sf.len > 4096 || memchr(sf.p, 0, sf.len))
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: malformed server-first-message");
    mq_view r = attr(sf, 'r'), salt64 = attr(sf, 's'), it = attr(sf, 'i');
    size_t nl = strlen(s->nonce);
    if (r.len <= nl || memcmp(r.p, s->nonce, nl) != 0)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL,
                          "SCRAM: the server's nonce does not extend ours (RFC 5802 5.1)");
    char num[16];
    if (!it.len || it.len >= sizeof num)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: no iteration count");
    memcpy(num, it.p, it.len);
    num[it.len] = '\0';
    char *end;
    unsigned long iters = strtoul(num, &end, 10);
    if (*end || iters < 1 || iters > ITER_MAX)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: iteration count \"%s\" not 1..%u",
                          num, ITER_MAX);
    uint8_t salt[128];
    long sl = mq_b64_decode((const char *)salt64.p, salt64.len, salt, sizeof salt);
    if (sl <= 0)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: missing or malformed salt");
    uint8_t salted[32], ckey[32], stored[32], csig[32], skey[32], proof[32];
    if (PKCS5_PBKDF2_HMAC((const char *)s->password, (int)s->password_len, salt, (int)sl,
                          (int)iters, EVP_sha256(), 32, salted) != 1) {
        ERR_clear_error();
        return mq_err_set(err, MQLITE_ERR_TLS, "SCRAM: PBKDF2 failed");
    }
    /* AuthMessage = client-first-bare "," server-first "," final-without-proof */
    mq_buf am = {0}, without = {0};
    int rc = mq_buf_append(&without, &s->a, "c=biws,r=", 9) ||
             mq_buf_append(&without, &s->a, r.p, r.len) ||
             mq_buf_append(&am, &s->a, s->first_bare, strlen(s->first_bare)) ||
             mq_buf_append(&am, &s->a, ",", 1) || mq_buf_append(&am, &s->a, sf.p, sf.len) ||
             mq_buf_append(&am, &s->a, ",", 1) ||
             mq_buf_append(&am, &s->a, without.p, without.len)
                 ? MQLITE_ERR_NOMEM
                 : 0;
    if (!rc)
        rc = hmac256(salted, 32, "Client Key", 10, ckey);
    if (!rc && EVP_Digest(ckey, 32, stored, NULL, EVP_sha256(), NULL) != 1)
        rc = MQLITE_ERR_TLS;
    if (!rc)
        rc = hmac256(stored, 32, am.p, am.len, csig);
    if (!rc)
        rc = hmac256(salted, 32, "Server Key", 10, skey);
    if (!rc)
        rc = hmac256(skey, 32, am.p, am.len, s->server_sig);
    if (!rc) {
        for (int i = 0; i < 32; i++)
            proof[i] = ckey[i] ^ csig[i];
        char p64[64];
        size_t pl = mq_b64_encode(proof, 32, p64, sizeof p64);
        rc = mq_buf_append(out, &s->a, without.p, without.len) ||
                     mq_buf_append(out, &s->a, ",p=", 3) || mq_buf_append(out, &s->a, p64, pl)
                 ? MQLITE_ERR_NOMEM
                 : 0;
    }
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ckey, sizeof ckey);
    OPENSSL_cleanse(skey, sizeof skey);
    mq_buf_free(&am, &s->a);
    mq_buf_free(&without, &s->a);
    if (rc)
        return rc == MQLITE_ERR_NOMEM ? mq_err_code(err, rc)
                                      : mq_err_set(err, rc, "SCRAM: HMAC failed");
    s->sent_final = 1;
    return 0;
}

int mq_scramc_verify(mq_scramc *s, mq_view v, mq_err *err)
{
    if (!s->sent_final)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL,
                          "SCRAM: the server ended the exchange before our proof");
    mq_view e = attr(v, 'e');
    if (e.len)
        return mq_err_set(err, MQLITE_ERR_PROTOCOL, "SCRAM: the server says \"%.*s\"",
                          (int)(e.len > 100 ? 100 : e.len), (const char *)e.p);
    mq_view sig = attr(v, 'v');
    uint8_t got[48];
    long n = sig.len ? mq_b64_decode((const char *)sig.p, sig.len, got, sizeof got) : -1;
    if (n != 32 || !mq_ct_equal(got, s->server_sig, 32))
        return mq_err_set(err, MQLITE_ERR_PROTOCOL,
                          "SCRAM: the server's signature is wrong: it does not know the "
                          "password (RFC 5802 section 9)");
    return 0;
}

int mq_scramc_sent_final(const mq_scramc *s)
{
    return s->sent_final;
}

void mq_scramc_free(mq_scramc *s)
{
    if (!s)
        return;
    if (s->password) {
        OPENSSL_cleanse(s->password, s->password_len);
        mq_free(&s->a, s->password);
    }
    mq_free(&s->a, s->first_bare);
    OPENSSL_cleanse(s->server_sig, sizeof s->server_sig);
    mq_alloc a = s->a;
    mq_free(&a, s);
}
