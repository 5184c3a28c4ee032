/*
 * tls.c - TLS over non-blocking sockets with OpenSSL 3 (see tls.h).
 */
#define _GNU_SOURCE
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct mq_tls_ctx {
    mq_alloc a;
    SSL_CTX *ssl;
    uint32_t refs;
    int server;
    int insecure;
    int skip_hostname;
    int peer_cert;
    uint8_t *alpn;   /* wire form: length-prefixed names */
    size_t alpn_len;
    char *key_password;
};

struct mq_tls {
    mq_tls_ctx *ctx;
    SSL *ssl;
    int fd;
    int wants;
    uint8_t established;
    uint8_t failed;   /* fatal error seen: no close_notify */
    uint8_t checked;  /* server: first byte looked at */
    char alpn[64];    /* negotiated protocol, "" when none */
};

/* ---- errors ---- */

/* Describe and clear OpenSSL's error queue: "what (reason)". */
static int ssl_fail(mq_err *err, int32_t code, const char *what)
{
    unsigned long e = ERR_get_error(), first = e;
    while (e)
        e = ERR_get_error();
    if (!err)
        return code;
    if (!first)
        return mq_err_set(err, code, "%s", what);
    const char *reason = ERR_reason_error_string(first);
    char buf[160];
    if (!reason) {
        ERR_error_string_n(first, buf, sizeof buf);
        reason = buf;
    }
    return mq_err_set(err, code, "%s: %s", what, reason);
}

static int file_fail(mq_err *err, const char *what, const char *path)
{
    char msg[MQ_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s \"%s\"", what, path);
    return ssl_fail(err, MQLITE_ERR_TLS, msg);
}

/* ---- context ---- */

static int pass_cb(char *buf, int size, int rwflag, void *ud)
{
    (void)rwflag;
    const char *pw = ud;
    if (!pw || size <= 0)
        return 0;
    size_t n = strlen(pw);
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, pw, n);
    return (int)n;
}

/* "mqtt,x" -> "\4mqtt\1x". 0 or an error. */
static int alpn_wire(mq_tls_ctx *c, const char *list, mq_err *err)
{
    size_t n = strlen(list);
    c->alpn = mq_malloc(&c->a, n + 1);
    if (!c->alpn)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    size_t w = 0;
    const char *s = list;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len > 255)
            return mq_err_set(err, MQLITE_ERR_CONFIG, "bad ALPN protocol list \"%s\"", list);
        c->alpn[w++] = (uint8_t)len;
        memcpy(c->alpn + w, s, len);
        w += len;
        s += len + (e ? 1 : 0);
    }
    c->alpn_len = w;
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    mq_tls_ctx *c = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301 3.2: no_application_protocol */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int ctx_versions(mq_tls_ctx *c, const mq_tls_conf *conf, mq_err *err)
{
    int v = conf->min_version == MQ_TLS_V1_3   ? TLS1_3_VERSION
            : conf->min_version == MQ_TLS_V1_1 ? TLS1_1_VERSION
                                               : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(c->ssl, v))
        return ssl_fail(err, MQLITE_ERR_TLS, "cannot set the minimum TLS version");
    if (conf->ciphers && !SSL_CTX_set_cipher_list(c->ssl, conf->ciphers))
        return ssl_fail(err, MQLITE_ERR_CONFIG, "bad cipher list");
    if (conf->ciphersuites && !SSL_CTX_set_ciphersuites(c->ssl, conf->ciphersuites))
        return ssl_fail(err, MQLITE_ERR_CONFIG, "bad TLS 1.3 cipher suite list");
    return 0;
}

static int ctx_identity(mq_tls_ctx *c, const mq_tls_conf *conf, mq_err *err)
{
    if (conf->key_password) {
        c->key_password = mq_memdup0(&c->a, conf->key_password, strlen(conf->key_password));
        if (!c->key_password)
            return mq_err_code(err, MQLITE_ERR_NOMEM);
        SSL_CTX_set_default_passwd_cb(c->ssl, pass_cb);
        SSL_CTX_set_default_passwd_cb_userdata(c->ssl, c->key_password);
    }
    if (!conf->certfile) {
        if (conf->server)
            return mq_err_set(err, MQLITE_ERR_CONFIG, "a TLS server needs a certificate (certfile)");
        if (conf->keyfile)
            return mq_err_set(err, MQLITE_ERR_CONFIG, "a key file without a certificate file");
        return 0;
    }
    const char *key = conf->keyfile ? conf->keyfile : conf->certfile;
    if (SSL_CTX_use_certificate_chain_file(c->ssl, conf->certfile) != 1)
        return file_fail(err, "cannot load certificate", conf->certfile);
    if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return mq_err_set(err, MQLITE_ERR_TLS,
                              "private key \"%s\" does not match the certificate \"%s\"", key,
                              conf->certfile);
        }
        return file_fail(err, "cannot load private key", key);
    }
    if (SSL_CTX_check_private_key(c->ssl) != 1)
        return file_fail(err, "private key does not match the certificate in", conf->certfile);
    return 0;
}

static int ctx_trust(mq_tls_ctx *c, const mq_tls_conf *conf, mq_err *err)
{
    if ((conf->cafile || conf->capath) &&
        SSL_CTX_load_verify_locations(c->ssl, conf->cafile, conf->capath) != 1)
        return file_fail(err, "cannot load CA certificates from",
                         conf->cafile ? conf->cafile : conf->capath);
    if (!conf->server && (conf->system_ca || (!conf->cafile && !conf->capath)) &&
        SSL_CTX_set_default_verify_paths(c->ssl) != 1)
        return ssl_fail(err, MQLITE_ERR_TLS, "cannot load the system CA store");
    if (conf->server) {
        if (conf->peer_cert != MQ_TLS_PEER_NONE && !conf->cafile && !conf->capath)
            return mq_err_set(err, MQLITE_ERR_CONFIG,
                              "client certificates need a CA to verify them (cafile or capath)");
        int mode = conf->peer_cert == MQ_TLS_PEER_REQUIRED
                       ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                   : conf->peer_cert == MQ_TLS_PEER_OPTIONAL ? SSL_VERIFY_PEER
                                                              : SSL_VERIFY_NONE;
        SSL_CTX_set_verify(c->ssl, mode, NULL);
        if (conf->peer_cert != MQ_TLS_PEER_NONE && conf->cafile) {
            /* Tell clients which CAs we accept (RFC 8446 4.2.4). */
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->cafile);
            if (names)
                SSL_CTX_set_client_CA_list(c->ssl, names);
        }
    } else {
        SSL_CTX_set_verify(c->ssl, conf->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    }
    return 0;
}

int mq_tls_ctx_new(const mq_alloc *a, const mq_tls_conf *conf, mq_tls_ctx **out, mq_err *err)
{
    *out = NULL;
    ERR_clear_error();
    mq_tls_ctx *c = mq_calloc(a, sizeof *c);
    if (!c)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    c->a = *a;
    c->refs = 1;
    c->server = conf->server;
    c->insecure = conf->insecure;
    c->skip_hostname = conf->skip_hostname;
    c->peer_cert = conf->peer_cert;
    c->ssl = SSL_CTX_new(conf->server ? TLS_server_method() : TLS_client_method());
    int rc = c->ssl ? 0 : ssl_fail(err, MQLITE_ERR_TLS, "cannot create a TLS context");
    if (!rc) {
        /* Partial writes and moving buffers: the owner's output buffer grows
         * and shifts between retries. Released buffers: an idle connection
         * holds no 34 KiB read/write buffers. */
        SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                     SSL_MODE_RELEASE_BUFFERS);
        /* A peer closing TCP without close_notify is an ordinary MQTT end
         * (MQTT has its own DISCONNECT); renegotiation is a CPU sink. */
        SSL_CTX_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
        rc = ctx_versions(c, conf, err);
    }
    if (!rc)
        rc = ctx_identity(c, conf, err);
    if (!rc)
        rc = ctx_trust(c, conf, err);
    if (!rc && conf->alpn && conf->alpn[0]) {
        rc = alpn_wire(c, conf->alpn, err);
        if (!rc && conf->server)
            SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
        else if (!rc && SSL_CTX_set_alpn_protos(c->ssl, c->alpn, (unsigned)c->alpn_len) != 0)
            rc = ssl_fail(err, MQLITE_ERR_TLS, "cannot set ALPN protocols");
    }
    if (rc) {
        ERR_clear_error();
        mq_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void mq_tls_ctx_free(mq_tls_ctx *c)
{
    if (!c || --c->refs)
        return;
    SSL_CTX_free(c->ssl);
    if (c->key_password) {
        OPENSSL_cleanse(c->key_password, strlen(c->key_password));
        mq_free(&c->a, c->key_password);
    }
    mq_free(&c->a, c->alpn);
    mq_alloc a = c->a;
    mq_free(&a, c);
}

/* ---- connections ---- */

static int is_ip_literal(const char *s)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static int client_name(mq_tls *t, const char *name, mq_err *err)
{
    if (!name || !name[0])
        return 0;
    int ip = is_ip_literal(name);
    /* RFC 6066 3: SNI carries host names only, never literal addresses. */
    if (!ip && !SSL_set_tlsext_host_name(t->ssl, name))
        return ssl_fail(err, MQLITE_ERR_TLS, "cannot set the TLS server name");
    if (t->ctx->insecure || t->ctx->skip_hostname)
        return 0;
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : X509_VERIFY_PARAM_set1_host(vp, name, 0);
    if (!ip)
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return ok ? 0 : ssl_fail(err, MQLITE_ERR_TLS, "cannot set the host name to verify");
}

int mq_tls_new(mq_tls_ctx *ctx, int fd, const char *server_name, mq_tls **out, mq_err *err)
{
    *out = NULL;
    ERR_clear_error();
    mq_tls *t = mq_calloc(&ctx->a, sizeof *t);
    if (!t)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    t->ctx = ctx;
    t->fd = fd;
    t->ssl = SSL_new(ctx->ssl);
    int rc = t->ssl && SSL_set_fd(t->ssl, fd) == 1
                 ? 0
                 : ssl_fail(err, MQLITE_ERR_TLS, "cannot create a TLS connection");
    if (!rc && !ctx->server)
        rc = client_name(t, server_name, err);
    if (rc) {
        SSL_free(t->ssl);
        mq_free(&ctx->a, t);
        ERR_clear_error();
        return rc;
    }
    if (ctx->server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    ctx->refs++;
    *out = t;
    return 0;
}

void mq_tls_close(mq_tls *t)
{
    if (!t)
        return;
    if (t->established && !t->failed) {
        /* One close_notify; we do not wait for the peer's. */
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    SSL_free(t->ssl);
    mq_tls_ctx *ctx = t->ctx;
    mq_free(&ctx->a, t);
    mq_tls_ctx_free(ctx);
}

/* What a failed handshake means, in words. */
static int handshake_fail(mq_tls *t, mq_err *err)
{
    long vr = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_error();
    t->failed = 1;
    if (vr != X509_V_OK && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        ERR_clear_error();
        return mq_err_set(err, MQLITE_ERR_TLS, "TLS handshake failed: %s certificate verify failed: %s",
                          t->ctx->server ? "client" : "server",
                          X509_verify_cert_error_string(vr));
    }
    int reason = ERR_GET_REASON(e);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason > SSL_AD_REASON_OFFSET)
        return ssl_fail(err, MQLITE_ERR_TLS,
                        "TLS handshake failed: the peer refused it with an alert");
    if (!e && errno)
        return mq_err_set(err, MQLITE_ERR_TLS, "TLS handshake failed: %s", strerror(errno));
    return ssl_fail(err, MQLITE_ERR_TLS, "TLS handshake failed");
}

/* Server side: a TLS connection starts with a handshake record (0x16). A
 * plain MQTT client sends CONNECT (0x10) and would only see the socket
 * close; say so in the log. 0, MQLITE_ERR_AGAIN, or an error. */
static int check_first_byte(mq_tls *t, mq_err *err)
{
    unsigned char b;
    ssize_t n = recv(t->fd, &b, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        t->wants = MQ_TLS_WANT_READ;
        return MQLITE_ERR_AGAIN;
    }
    if (n == 0)
        return mq_err_set(err, MQLITE_ERR_CLOSED, "closed before the TLS handshake");
    if (n < 0)
        return mq_err_set(err, MQLITE_ERR_TLS, "TLS handshake failed: %s", strerror(errno));
    t->checked = 1;
    if (b == 0x16)
        return 0;
    t->failed = 1;
    if ((b & 0xf0) == 0x10)
        return mq_err_set(err, MQLITE_ERR_TLS,
                          "not TLS: the client sent a plain MQTT CONNECT to a TLS port");
    return mq_err_set(err, MQLITE_ERR_TLS,
                      "not TLS: the first byte is 0x%02x, not a TLS handshake record", b);
}

int mq_tls_handshake(mq_tls *t, mq_err *err)
{
    if (t->established)
        return 0;
    t->wants = 0;
    if (t->ctx->server && !t->checked) {
        int rc = check_first_byte(t, err);
        if (rc)
            return rc;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->established = 1;
        const unsigned char *p = NULL;
        unsigned int n = 0;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (p && n < sizeof t->alpn) {
            memcpy(t->alpn, p, n);
            t->alpn[n] = '\0';
        }
        return 0;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        t->wants = MQ_TLS_WANT_READ;
        return MQLITE_ERR_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->wants = MQ_TLS_WANT_WRITE;
        return MQLITE_ERR_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        t->failed = 1;
        ERR_clear_error();
        return mq_err_set(err, MQLITE_ERR_CLOSED, "closed during the TLS handshake");
    case SSL_ERROR_SYSCALL:
        if (!ERR_peek_error() && !errno) {
            t->failed = 1;
            return mq_err_set(err, MQLITE_ERR_CLOSED, "closed during the TLS handshake");
        }
        return handshake_fail(t, err);
    default:
        return handshake_fail(t, err);
    }
}

int mq_tls_established(const mq_tls *t)
{
    return t->established;
}

int mq_tls_wants(const mq_tls *t)
{
    return t->wants;
}

/* Map SSL_get_error after a read or write that moved no bytes. */
static long io_fail(mq_tls *t, int r, int reading, mq_err *err)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        t->wants = MQ_TLS_WANT_READ;
        return MQLITE_ERR_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->wants = MQ_TLS_WANT_WRITE;
        return MQLITE_ERR_AGAIN;
    case SSL_ERROR_ZERO_RETURN: /* close_notify (or EOF: IGNORE_UNEXPECTED_EOF) */
        ERR_clear_error();
        if (reading)
            return 0;
        t->failed = 1;
        return mq_err_set(err, MQLITE_ERR_CLOSED, "the peer closed the TLS connection");
    case SSL_ERROR_SYSCALL:
        t->failed = 1;
        if (!ERR_peek_error()) {
            int e = errno;
            if (reading && !e)
                return 0;
            return mq_err_set(err, MQLITE_ERR_IO, "TLS %s: %s", reading ? "read" : "write",
                              e ? strerror(e) : "connection closed");
        }
        return ssl_fail(err, MQLITE_ERR_TLS, reading ? "TLS read failed" : "TLS write failed");
    default:
        t->failed = 1;
        return ssl_fail(err, MQLITE_ERR_TLS, reading ? "TLS read failed" : "TLS write failed");
    }
}

long mq_tls_read(mq_tls *t, void *buf, size_t cap, mq_err *err)
{
    size_t got = 0;
    t->wants = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(t->ssl, buf, cap, &got);
    if (r == 1)
        return got > (size_t)LONG_MAX ? LONG_MAX : (long)got;
    return io_fail(t, r, 1, err);
}

long mq_tls_write(mq_tls *t, const void *buf, size_t len, mq_err *err)
{
    size_t put = 0;
    t->wants = 0;
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(t->ssl, buf, len, &put);
    if (r == 1)
        return (long)put;
    return io_fail(t, r, 0, err);
}

size_t mq_tls_pending(const mq_tls *t)
{
    int n = SSL_pending(t->ssl);
    return n > 0 ? (size_t)n : 0;
}

/* ---- peer identity ---- */

int mq_tls_peer_has_cert(const mq_tls *t)
{
    if (!t->established)
        return 0;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    return x && SSL_get_verify_result(t->ssl) == X509_V_OK;
}

int mq_tls_peer_cn(const mq_tls *t, char *buf, size_t cap)
{
    if (!mq_tls_peer_has_cert(t) || cap == 0)
        return 0;
    X509_NAME *name = X509_get_subject_name(SSL_get0_peer_certificate(t->ssl));
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0)
        return 0;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
    int ok = n > 0 && (size_t)n < cap && memchr(utf8, 0, (size_t)n) == NULL;
    if (ok) {
        memcpy(buf, utf8, (size_t)n);
        buf[n] = '\0';
    }
    OPENSSL_free(utf8);
    return ok;
}

const char *mq_tls_version_name(const mq_tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *mq_tls_cipher_name(const mq_tls *t)
{
    const char *c = SSL_get_cipher_name(t->ssl);
    return c ? c : "";
}

const char *mq_tls_alpn(const mq_tls *t)
{
    return t->alpn;
}

/* ---- crypto helpers ---- */

int mq_tls_random(void *buf, size_t n)
{
    if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1) {
        ERR_clear_error();
        return MQLITE_ERR_TLS;
    }
    return 0;
}

size_t mq_b64_encode(const void *in, size_t n, char *out, size_t cap)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (cap < need || n > INT32_MAX / 2) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return w < 0 ? 0 : (size_t)w;
}

long mq_b64_decode(const char *in, size_t n, void *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /* mosquitto writes base64 with padding (its salt without, being 12
     * bytes); accept both, reject anything else. */
    size_t pad = 0;
    while (n && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1)
        return -1;
    size_t bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (bytes > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = in[i] ? strchr(alphabet, in[i]) : NULL;
        if (!p)
            return -1;
        acc = (acc << 6) | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            ((uint8_t *)out)[w++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)w;
}

int mq_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
