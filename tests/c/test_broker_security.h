/*
 * test_broker_security.h - fixtures shared by test_broker_tls.c and
 * test_broker_auth.c: certificates made at run time with the `openssl`
 * command in a temporary directory, a TLS test client built on core/src/tls.c
 * (the module the client library will use) that drives its non-blocking
 * handshake while polling the embedded broker, and a SCRAM-SHA-256 client
 * written from RFC 5802 with OpenSSL primitives (not with the broker's code).
 * Every wait is bounded.
 */
#ifndef TEST_BROKER_SECURITY_H
#define TEST_BROKER_SECURITY_H

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "test_broker_harness.h"
#include "tls.h"

/* ---- certificates ---- */

static char ts_dir[128];

static const char ts_gen_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "q() { \"$@\" >/dev/null 2>&1; }\n"
    "EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1'\n"
    "mk_ca() {\n"
    "  q openssl req -x509 $EC -nodes -keyout $1.key -out $1.crt -days 30 -subj \"/CN=$1 test CA\" "
    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign\n"
    "}\n"
    "mk_cert() {\n"
    "  q openssl req $EC -nodes -keyout $1.key -out $1.csr -subj \"$2\"\n"
    "  printf 'subjectAltName=%s\\nbasicConstraints=CA:FALSE\\n' \"$4\" > $1.ext\n"
    "  q openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial -out $1.crt "
    "-days 30 -extfile $1.ext\n"
    "}\n"
    "mk_ca ca\n"
    "mk_ca otherca\n"
    "mk_cert server /CN=localhost ca DNS:localhost,IP:127.0.0.1\n"
    "mk_cert wronghost /CN=wronghost.invalid ca DNS:wronghost.invalid\n"
    "mk_cert alice /CN=alice ca DNS:alice\n"
    "mk_cert nocn /O=no-common-name ca DNS:nocn\n"
    "mk_cert mallory /CN=mallory otherca DNS:mallory\n"
    /* A certificate that expired: `openssl x509 -days` cannot go back in
     * time (OpenSSL 3.0 has no -not_before), `openssl ca` can. */
    "mkdir -p db && : > db/index.txt && echo 1000 > db/serial\n"
    "printf '[ca]\\ndefault_ca=t\\n[t]\\ndir=.\\ndatabase=db/index.txt\\nserial=db/serial\\n"
    "new_certs_dir=db\\ncertificate=ca.crt\\nprivate_key=ca.key\\ndefault_md=sha256\\n"
    "policy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > ca.cnf\n"
    "q openssl req $EC -nodes -keyout expired.key -out expired.csr -subj /CN=localhost "
    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    "q openssl ca -batch -config ca.cnf -startdate 20200101000000Z -enddate 20200201000000Z "
    "-in expired.csr -out expired.crt -notext\n";

static void ts_cleanup(void)
{
    if (!ts_dir[0])
        return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ts_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", ts_dir);
    ts_dir[0] = '\0';
}

/* A file in the certificate directory (a rotating set of static buffers). */
static inline const char *ts_path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, 256, "%s/%s", ts_dir, name);
    return p;
}

/* Make the certificates once per process; abort when openssl fails. */
static inline void ts_make_certs(void)
{
    if (ts_dir[0])
        return;
    snprintf(ts_dir, sizeof ts_dir, "/tmp/mqlite-test-certs-XXXXXX");
    if (!mkdtemp(ts_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(ts_cleanup);
    FILE *f = fopen(ts_path("gen.sh"), "w");
    if (!f || fputs(ts_gen_script, f) < 0 || fclose(f) != 0)
        abort();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", ts_path("gen.sh"), ts_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl could not make the test certificates (%s)\n", cmd);
        abort();
    }
}

/* Write text to a new file in the directory; returns its path. */
static inline const char *ts_write(const char *name, const char *text)
{
    const char *p = ts_path(name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    return p;
}

/* ---- a TLS test client ---- */

typedef struct ttc {
    mqlite_broker *b; /* polled while waiting; NULL: an outside broker */
    int fd;
    int version;
    int closed;
    int hs_rc;        /* result of the handshake */
    mq_tls *tls;
    mq_err err;
    uint8_t *buf;
    size_t len, cap;
    uint8_t *pkt;
} ttc;

static inline mq_tls_ctx *ttc_ctx(const char *cafile, const char *cert, const char *key)
{
    mq_tls_conf c;
    memset(&c, 0, sizeof c);
    c.cafile = cafile;
    c.certfile = cert;
    c.keyfile = key;
    mq_tls_ctx *ctx = NULL;
    mq_err e;
    if (mq_tls_ctx_new(&mq_default_alloc, &c, &ctx, &e)) {
        fprintf(stderr, "client TLS context: %s\n", e.msg);
        abort();
    }
    return ctx;
}

/* Wait a little for fd (or run the broker a round). */
static inline void ttc_wait(ttc *c, int events)
{
    if (c->b) {
        mqlite_broker_poll(c->b, 1);
        return;
    }
    struct pollfd p = {c->fd, (short)events, 0};
    poll(&p, 1, 5);
}

/* Connect and run the handshake (bounded by TC_WAIT); hs_rc says how it went. */
static inline ttc *ttc_open(mqlite_broker *b, int port, mq_tls_ctx *ctx, const char *host,
                            int version)
{
    ttc *c = calloc(1, sizeof *c);
    c->b = b;
    c->version = version;
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        abort();
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    if (mq_tls_new(ctx, c->fd, host, &c->tls, &c->err)) {
        c->hs_rc = c->err.code;
        return c;
    }
    uint64_t end = tc_now_ms() + TC_WAIT;
    for (;;) {
        c->hs_rc = mq_tls_handshake(c->tls, &c->err);
        if (c->hs_rc != MQLITE_ERR_AGAIN)
            break;
        if (tc_now_ms() > end) {
            c->hs_rc = MQLITE_ERR_TIMEOUT;
            break;
        }
        ttc_wait(c, (mq_tls_wants(c->tls) & MQ_TLS_WANT_WRITE) ? POLLOUT : POLLIN);
    }
    return c;
}

static inline void ttc_free(ttc *c)
{
    if (!c)
        return;
    mq_tls_close(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->pkt);
    free(c);
}

static inline int ttc_send_raw(ttc *c, const void *p, size_t n)
{
    const uint8_t *q = p;
    uint64_t end = tc_now_ms() + TC_WAIT;
    while (n) {
        long k = mq_tls_write(c->tls, q, n, &c->err);
        if (k > 0) {
            q += k;
            n -= (size_t)k;
        } else if (k == MQLITE_ERR_AGAIN || k == 0) {
            if (tc_now_ms() > end)
                return -1;
            ttc_wait(c, (mq_tls_wants(c->tls) & MQ_TLS_WANT_READ) ? POLLIN : POLLOUT);
        } else {
            return -1;
        }
    }
    if (c->b)
        mqlite_broker_poll(c->b, 0);
    return 0;
}

static inline int ttc_send(ttc *c, mq_packet *p)
{
    mq_buf out = {0};
    tc_encode(p, c->version, &out);
    int rc = ttc_send_raw(c, out.p, out.len);
    mq_buf_free(&out, &mq_default_alloc);
    return rc;
}

static inline void ttc_pull(ttc *c)
{
    for (;;) {
        if (c->cap - c->len < 32768) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        long k = mq_tls_read(c->tls, c->buf + c->len, c->cap - c->len, &c->err);
        if (k > 0) {
            c->len += (size_t)k;
            continue;
        }
        if (k != MQLITE_ERR_AGAIN)
            c->closed = 1;
        return;
    }
}

/* As tc_recv: 0 (packet in *out), TC_TIMEOUT, TC_CLOSED or a decode error. */
static inline int ttc_recv(ttc *c, mq_packet *out, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int rc = tc_take_packet(c->buf, &c->len, c->version, &c->pkt, NULL, out);
        if (rc <= 0)
            return rc;
        if (c->closed)
            return TC_CLOSED;
        if (tc_now_ms() >= end)
            return TC_TIMEOUT;
        ttc_wait(c, POLLIN);
        ttc_pull(c);
    }
}

static inline int ttc_expect(ttc *c, int type, mq_packet *out)
{
    mq_packet tmp;
    if (!out)
        out = &tmp;
    int rc = ttc_recv(c, out, TC_WAIT);
    if (rc != 0 || out->type != type) {
        fprintf(stderr, "%s: TLS client expected %s, got %s (rc %d)\n", tl_current,
                mqlite_packet_type_name(type), rc ? "nothing" : mqlite_packet_type_name(out->type),
                rc);
        return 0;
    }
    return 1;
}

/* CONNECT over TLS; returns the CONNACK code or -1. */
static inline int ttc_connect(ttc *c, const char *id, const char *user, const char *pass)
{
    mq_packet p = pk_connect(id, 1, 60);
    if (user) {
        p.has_username = 1;
        p.username = mq_view_cstr(user);
    }
    if (pass) {
        p.has_password = 1;
        p.password = mq_view_cstr(pass);
    }
    if (ttc_send(c, &p))
        return -1;
    mq_packet k;
    return ttc_expect(c, MQLITE_PKT_CONNACK, &k) ? k.reason : -1;
}

/* 1 when the server refuses this TLS client: in the handshake, or (TLS 1.3,
 * where the client's certificate is checked after the client finished)
 * by closing instead of answering the CONNECT. */
static inline int ttc_refused(ttc *c)
{
    if (c->hs_rc != 0)
        return 1;
    mq_packet p = pk_connect("refused?", 1, 60);
    if (ttc_send(c, &p))
        return 1;
    mq_packet k;
    return ttc_recv(c, &k, TC_WAIT) == TC_CLOSED;
}

/* ---- SCRAM-SHA-256 client side (RFC 5802 section 3), for the tests ---- */

typedef struct tscram {
    char first_bare[256];
    char client_first[300];
    char final_msg[512];
    uint8_t server_key[32];
    char auth_message[2048];
} tscram;

static inline void tscram_first(tscram *s, const char *user, const char *nonce)
{
    snprintf(s->first_bare, sizeof s->first_bare, "n=%s,r=%s", user, nonce);
    snprintf(s->client_first, sizeof s->client_first, "n,,%s", s->first_bare);
}

/* From server-first-message, make client-final-message with the password.
 * 0, or -1 when server-first does not parse. */
static inline int tscram_final(tscram *s, const char *server_first, size_t sflen,
                               const char *password)
{
    char sf[512];
    if (sflen >= sizeof sf)
        return -1;
    memcpy(sf, server_first, sflen);
    sf[sflen] = '\0';
    char *r = strstr(sf, "r="), *salt = strstr(sf, ",s="), *it = strstr(sf, ",i=");
    if (r != sf || !salt || !it)
        return -1;
    char nonce[200], salt64[120];
    snprintf(nonce, sizeof nonce, "%.*s", (int)(salt - (r + 2)), r + 2);
    snprintf(salt64, sizeof salt64, "%.*s", (int)(it - (salt + 3)), salt + 3);
    int iters = atoi(it + 3);
    uint8_t saltb[64];
    int sl = EVP_DecodeBlock(saltb, (const uint8_t *)salt64, (int)strlen(salt64));
    size_t pad = strlen(salt64) >= 2 && salt64[strlen(salt64) - 1] == '='
                     ? (salt64[strlen(salt64) - 2] == '=' ? 2 : 1)
                     : 0;
    sl -= (int)pad;
    uint8_t salted[32], ckey[32], stored[32], csig[32], proof[32];
    unsigned int n;
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), saltb, sl, iters, EVP_sha256(), 32,
                      salted);
    HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ckey, &n);
    HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, s->server_key, &n);
    EVP_Digest(ckey, 32, stored, &n, EVP_sha256(), NULL);
    char without[256];
    snprintf(without, sizeof without, "c=biws,r=%s", nonce);
    snprintf(s->auth_message, sizeof s->auth_message, "%s,%s,%s", s->first_bare, sf, without);
    HMAC(EVP_sha256(), stored, 32, (const uint8_t *)s->auth_message, strlen(s->auth_message),
         csig, &n);
    for (int i = 0; i < 32; i++)
        proof[i] = ckey[i] ^ csig[i];
    char proof64[64];
    EVP_EncodeBlock((uint8_t *)proof64, proof, 32);
    snprintf(s->final_msg, sizeof s->final_msg, "%s,p=%s", without, proof64);
    return 0;
}

/* 1 if server-final-message "v=..." proves the server knew the key. */
static inline int tscram_verify(const tscram *s, const uint8_t *v, size_t n)
{
    uint8_t sig[32];
    unsigned int l;
    HMAC(EVP_sha256(), s->server_key, 32, (const uint8_t *)s->auth_message,
         strlen(s->auth_message), sig, &l);
    char want[64] = "v=";
    EVP_EncodeBlock((uint8_t *)want + 2, sig, 32);
    return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* ---- capturing the broker's log (stderr) ---- */

typedef struct tlog {
    int saved;
    char path[256];
} tlog;

static inline void tlog_start(tlog *l)
{
    fflush(stderr);
    snprintf(l->path, sizeof l->path, "%s", ts_path("broker.log"));
    int fd = open(l->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    l->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr; returns the log's text (free it). */
static inline char *tlog_stop(tlog *l)
{
    fflush(stderr);
    dup2(l->saved, 2);
    close(l->saved);
    FILE *f = fopen(l->path, "r");
    char *text = calloc(1, 1 << 20);
    if (f) {
        size_t n = fread(text, 1, (1 << 20) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

#endif
