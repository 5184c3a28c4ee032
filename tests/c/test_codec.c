/*
 * test_codec.c - the MQTT codec: mqlite_packet_*, mqlite_props_*, and the
 * error / reason-code tables.
 *
 * An independent check: every wire vector below was written by hand from the
 * specifications (MQTT 3.1 "MQIsdp", MQTT 3.1.1, MQTT 5.0; the tables in
 * /work/shared/spec/README.md), never copied from the encoder's output. A
 * valid vector is checked both ways: packet built with setters + encode ==
 * the bytes, and decode of the bytes == every field. Rule tests cite the MQTT
 * version and the normative statement id (the .tsv files in
 * /work/shared/spec), or the section when the rule has no id.
 *
 * Decoding helpers copy each vector into a heap block of exactly its size (so
 * that AddressSanitizer catches any read past the input) and overwrite it as
 * soon as the decoder returns (so that a packet decoded without
 * MQLITE_DECODE_NOCOPY is seen to own its data).
 */
#include "testlib.h"

#include "mqlite.h"

#include "codec.h" /* mq_decode(): out->version on MQLITE_ERR_PROTOCOL_LEVEL */

#define BUFSZ 4096

/* ======================================================================
 * Helpers
 * ====================================================================== */

static void ok_line(int line, int ok, const char *what)
{
    tl_checks++;
    if (!ok) {
        tl_failures++;
        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, line, tl_current, what);
    }
}

/* A heap copy of a hex vector, exactly as long as the vector. */
static unsigned char *hex_dup(const char *h, size_t *n)
{
    unsigned char tmp[BUFSZ];
    *n = tl_hex(h, tmp, sizeof tmp);
    unsigned char *b = malloc(*n ? *n : 1);
    if (!b)
        abort();
    memcpy(b, tmp, *n);
    return b;
}

/* Replace the one "%s" in tmpl by s (both hex). */
static void splice(char *out, size_t cap, const char *tmpl, const char *s)
{
    const char *at = strstr(tmpl, "%s");
    if (!at || strlen(tmpl) + strlen(s) >= cap)
        abort();
    size_t pre = (size_t)(at - tmpl);
    memcpy(out, tmpl, pre);
    strcpy(out + pre, s);
    strcat(out, at + 2);
}

/* Decode a whole valid packet; it must consume every byte. */
static mqlite_packet *dec_line(int line, const char *h, int32_t ver, int32_t flags)
{
    size_t n, used = 0, need = 0;
    unsigned char *b = hex_dup(h, &n);
    int32_t err = 12345;
    mqlite_packet *p =
        mqlite_packet_decode(b, n, ver, flags & ~MQLITE_DECODE_NOCOPY, 0, &used, &need, &err);
    if (!p || err || used != n)
        fprintf(stderr, "  line %d: decoding %s (level %d): %s (%d), used %zu of %zu\n", line, h,
                (int)ver, mqlite_error_name(err), (int)err, used, n);
    ok_line(line, p != NULL, "decode returned a packet");
    ok_line(line, err == 0, "decode err == 0");
    ok_line(line, used == n, "decode used every byte");
    memset(b, 0xa5, n); /* the packet must not point into the input */
    free(b);
    return p;
}
#define DEC(h, ver) dec_line(__LINE__, h, ver, 0)
#define DECF(h, ver, flags) dec_line(__LINE__, h, ver, flags)

/* Decode a whole packet that breaks a rule: NULL, the exact code, and the
 * code's classification (malformed or not) and MQTT 5.0 reason code. */
static void dec_err_line(int line, const char *h, int32_t ver, int32_t flags, int32_t code,
                         int malformed, int32_t reason)
{
    size_t n, used = 0, need = 0;
    unsigned char *b = hex_dup(h, &n);
    int32_t err = 0;
    mqlite_packet *p = mqlite_packet_decode(b, n, ver, flags, 0, &used, &need, &err);
    if (p || err != code)
        fprintf(stderr, "  line %d: decoding %s (level %d): got %s (%d), want %s (%d)\n", line, h,
                (int)ver, p ? "a packet" : mqlite_error_name(err), (int)err,
                mqlite_error_name(code), (int)code);
    ok_line(line, p == NULL, "decode refused the packet");
    ok_line(line, err == code, "decode error code");
    if (mqlite_error_is_malformed(err) != malformed || mqlite_error_reason(err) != reason)
        fprintf(stderr, "  line %d: %s: is_malformed %d (want %d), reason 0x%02x (want 0x%02x)\n",
                line, mqlite_error_name(err), (int)mqlite_error_is_malformed(err), malformed,
                (unsigned)mqlite_error_reason(err), (unsigned)reason);
    ok_line(line, mqlite_error_is_malformed(err) == malformed, "mqlite_error_is_malformed");
    ok_line(line, mqlite_error_reason(err) == reason, "mqlite_error_reason");
    mqlite_packet_free(p);
    free(b);
}
#define DEC_MAL(h, ver, code) dec_err_line(__LINE__, h, ver, 0, code, 1, 0x81)
#define DEC_PROTO(h, ver, code) dec_err_line(__LINE__, h, ver, 0, code, 0, 0x82)
#define DEC_ERR(h, ver, flags, code, mal, reason)                                                  \
    dec_err_line(__LINE__, h, ver, flags, code, mal, reason)

/* Decode and return only the error (0 for a packet, which is freed). */
static int32_t dec_rc(const char *h, int32_t ver, int32_t flags)
{
    size_t n, used = 0, need = 0;
    unsigned char *b = hex_dup(h, &n);
    int32_t err = 12345;
    mqlite_packet *p = mqlite_packet_decode(b, n, ver, flags, 0, &used, &need, &err);
    if (p && (err != 0 || used != n))
        err = 99999;
    mqlite_packet_free(p);
    free(b);
    return p ? 0 : err;
}

static int32_t dec_bytes_rc(const unsigned char *src, size_t n, int32_t ver, int32_t flags)
{
    unsigned char *b = malloc(n ? n : 1);
    if (!b)
        abort();
    memcpy(b, src, n);
    size_t used = 0, need = 0;
    int32_t err = 12345;
    mqlite_packet *p = mqlite_packet_decode(b, n, ver, flags, 0, &used, &need, &err);
    if (p && (err != 0 || used != n))
        err = 99999;
    mqlite_packet_free(p);
    free(b);
    return p ? 0 : err;
}

/* Encode p: the measured size, then the bytes into a buffer of exactly that
 * size, must equal the hex vector; nothing is written past it. */
static void enc_line(int line, mqlite_packet *p, const char *h)
{
    unsigned char want[BUFSZ], got[BUFSZ];
    size_t wn = tl_hex(h, want, sizeof want - 1), need = 0, len = 0;
    int32_t rc = mqlite_packet_encode(p, NULL, 0, &need);
    ok_line(line, rc == MQLITE_ERR_BUFFER, "encode(NULL, 0) measures with MQLITE_ERR_BUFFER");
    ok_line(line, need == wn, "encode(NULL, 0) reports the size");
    memset(got, 0xee, sizeof got);
    rc = mqlite_packet_encode(p, got, wn, &len);
    if (rc)
        fprintf(stderr, "  line %d: encode: %s: %s\n", line, mqlite_error_name(rc),
                mqlite_packet_errmsg(p));
    ok_line(line, rc == 0, "encode succeeded");
    int same = len == wn && memcmp(got, want, wn) == 0;
    if (!same) {
        fprintf(stderr, "  line %d: encoded bytes differ\n  got: ", line);
        for (size_t i = 0; i < len && i < sizeof got; i++)
            fprintf(stderr, "%02x", got[i]);
        fprintf(stderr, "\n  exp: ");
        for (size_t i = 0; i < wn; i++)
            fprintf(stderr, "%02x", want[i]);
        fprintf(stderr, "\n");
    }
    ok_line(line, same, "encoded bytes == vector");
    ok_line(line, got[wn] == 0xee, "nothing written past the packet");
}
#define ENC(p, h) enc_line(__LINE__, p, h)

/* Encoding must fail with `code` and leave a useful message naming `word`. */
static void enc_err_line(int line, mqlite_packet *p, int32_t code, const char *word)
{
    unsigned char got[BUFSZ];
    size_t len = 777;
    int32_t rc = mqlite_packet_encode(p, got, sizeof got, &len);
    const char *msg = mqlite_packet_errmsg(p);
    if (rc != code || !msg || !*msg || (word && !strstr(msg, word)))
        fprintf(stderr, "  line %d: encode: got %s (%d) \"%s\", want %s with \"%s\"\n", line,
                mqlite_error_name(rc), (int)rc, msg ? msg : "(null)", mqlite_error_name(code),
                word ? word : "");
    ok_line(line, rc == code, "encode error code");
    ok_line(line, msg && *msg, "errmsg is not empty");
    ok_line(line, !word || (msg && strstr(msg, word)), "errmsg names the problem");
}
#define ENC_ERR(p, code, word) enc_err_line(__LINE__, p, code, word)

static mqlite_packet *new_line(int line, int32_t type, int32_t ver)
{
    int32_t err = 12345;
    mqlite_packet *p = mqlite_packet_new(type, ver, &err);
    ok_line(line, p != NULL && err == 0, "mqlite_packet_new");
    ok_line(line, p && mqlite_packet_errmsg(p) && !*mqlite_packet_errmsg(p),
            "a new packet has an empty errmsg");
    return p;
}
#define NEW(t, v) new_line(__LINE__, MQLITE_PKT_##t, v)

#define INT(p, f) mqlite_packet_int(p, MQLITE_PF_##f)
#define SET_INT(p, f, v) CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_##f, v), 0)
#define SET_STR(p, f, s) CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_##f, s, sizeof(s) - 1), 0)

/* A string/binary field: present, equal, NUL-terminated (an owned copy). */
static void field_line(int line, const mqlite_packet *p, int32_t f, const void *want, size_t wn)
{
    size_t len = 777;
    const unsigned char *got = mqlite_packet_bytes(p, f, &len);
    int ok = got && len == wn && (wn == 0 || memcmp(got, want, wn) == 0) && got[len] == 0;
    if (!ok)
        fprintf(stderr, "  line %d: field %d: got %s len %zu\n", line, (int)f,
                got ? "bytes" : "NULL", len);
    ok_line(line, ok, "string/binary field");
}
#define CHECK_FIELD(p, f, s) field_line(__LINE__, p, MQLITE_PF_##f, s, sizeof(s) - 1)

static void absent_line(int line, const mqlite_packet *p, int32_t f)
{
    size_t len = 777;
    const void *got = mqlite_packet_bytes(p, f, &len);
    ok_line(line, got == NULL && len == 0, "field is absent");
}
#define CHECK_ABSENT(p, f) absent_line(__LINE__, p, MQLITE_PF_##f)

/* ---- properties: one table both builds a list and checks one ---- */

typedef struct pexp {
    int32_t id;
    int64_t num;     /* integer properties */
    const char *key; /* User Property */
    const char *val; /* string, binary, User Property value */
    size_t vlen;
} pexp;

#define P_INT(id, v)                                                                               \
    {                                                                                              \
        MQLITE_PROP_##id, v, NULL, NULL, 0                                                         \
    }
#define P_STR(id, s)                                                                               \
    {                                                                                              \
        MQLITE_PROP_##id, 0, NULL, s, sizeof(s) - 1                                                \
    }
#define P_USER(k, v)                                                                               \
    {                                                                                              \
        MQLITE_PROP_USER, 0, k, v, sizeof(v) - 1                                                   \
    }
#define NPROPS(arr) (sizeof(arr) / sizeof((arr)[0]))

static void props_line(int line, const mqlite_props *pr, const pexp *e, size_t n)
{
    int32_t cnt = mqlite_props_count(pr);
    if (cnt != (int32_t)n)
        fprintf(stderr, "  line %d: %d properties, want %zu\n", line, (int)cnt, n);
    ok_line(line, cnt == (int32_t)n, "property count");
    if (cnt != (int32_t)n)
        return;
    for (size_t i = 0; i < n; i++) {
        int32_t ix = (int32_t)i;
        char what[80];
        snprintf(what, sizeof what, "property #%zu (id 0x%02x)", i, (unsigned)e[i].id);
        ok_line(line, mqlite_props_id(pr, ix) == e[i].id, what);
        size_t vlen = 777, klen = 777;
        const unsigned char *v = mqlite_props_value(pr, ix, &vlen);
        const char *k = mqlite_props_key(pr, ix, &klen);
        if (e[i].val) {
            ok_line(line, v && vlen == e[i].vlen && memcmp(v, e[i].val, vlen) == 0 && v[vlen] == 0,
                    what);
            ok_line(line, mqlite_props_int(pr, ix) == MQLITE_ERR_PROPERTY_TYPE, what);
        } else {
            if (mqlite_props_int(pr, ix) != e[i].num)
                fprintf(stderr, "  line %d: %s: value %lld, want %lld\n", line, what,
                        (long long)mqlite_props_int(pr, ix), (long long)e[i].num);
            ok_line(line, mqlite_props_int(pr, ix) == e[i].num, what);
            ok_line(line, v == NULL && vlen == 0, what);
        }
        if (e[i].key)
            ok_line(line, k && klen == strlen(e[i].key) && strcmp(k, e[i].key) == 0, what);
        else
            ok_line(line, k == NULL && klen == 0, what);
    }
    ok_line(line, mqlite_props_id(pr, (int32_t)n) == MQLITE_ERR_RANGE, "id past the end");
}
#define CHECK_PROPS(pr, arr) props_line(__LINE__, pr, arr, NPROPS(arr))
#define CHECK_NO_PROPS(p) CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), 0)

static mqlite_props *props_build(int line, const pexp *e, size_t n)
{
    mqlite_props *pr = mqlite_props_new();
    ok_line(line, pr != NULL, "mqlite_props_new");
    for (size_t i = 0; i < n; i++) {
        int32_t rc;
        if (e[i].key)
            rc = mqlite_props_add_pair(pr, e[i].key, e[i].val);
        else if (e[i].val && mqlite_property_type(e[i].id) == MQLITE_PTYPE_UTF8 &&
                 strlen(e[i].val) == e[i].vlen)
            rc = mqlite_props_add_str(pr, e[i].id, e[i].val);
        else if (e[i].val)
            rc = mqlite_props_add_bytes(pr, e[i].id, e[i].val, e[i].vlen);
        else
            rc = mqlite_props_add_int(pr, e[i].id, e[i].num);
        if (rc)
            fprintf(stderr, "  line %d: adding property #%zu (0x%02x): %s\n", line, i,
                    (unsigned)e[i].id, mqlite_error_name(rc));
        ok_line(line, rc == 0, "adding a property");
    }
    return pr;
}

static void set_props_line(int line, mqlite_packet *p, const pexp *e, size_t n, int will)
{
    mqlite_props *pr = props_build(line, e, n);
    int32_t rc = will ? mqlite_packet_set_will_props(p, pr) : mqlite_packet_set_props(p, pr);
    if (rc)
        fprintf(stderr, "  line %d: set_props: %s: %s\n", line, mqlite_error_name(rc),
                mqlite_packet_errmsg(p));
    ok_line(line, rc == 0, "setting properties");
    mqlite_props_free(pr);
}
#define SET_PROPS(p, arr) set_props_line(__LINE__, p, arr, NPROPS(arr), 0)
#define SET_WILL_PROPS(p, arr) set_props_line(__LINE__, p, arr, NPROPS(arr), 1)

/* ---- lists ---- */

static void topic_at_line(int line, const mqlite_packet *p, int32_t i, const char *filter,
                          int32_t opts)
{
    size_t len = 777;
    const char *f = mqlite_packet_topic_at(p, i, &len);
    ok_line(line, f && len == strlen(filter) && memcmp(f, filter, len) == 0 && f[len] == 0, filter);
    if (opts >= 0)
        ok_line(line, mqlite_packet_options_at(p, i) == opts, "subscription options");
}
#define CHECK_TOPIC_AT(p, i, f, o) topic_at_line(__LINE__, p, i, f, o)

/* ======================================================================
 * 1. Byte-exact vectors, both ways
 * ====================================================================== */

/* ---- CONNECT ---- */

/* MQTT 3.1: protocol name "MQIsdp", level 3; clean session, keep alive 60,
 * client id "abc". */
static const char CONNECT_V31_MIN[] = "10 11 00 06 4d 51 49 73 64 70 03 02 00 3c 00 03 61 62 63";

static void test_connect_v31_minimal_vector(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V31);
    SET_STR(p, CLIENT_ID, "abc");
    ENC(p, CONNECT_V31_MIN);
    mqlite_packet_free(p);

    /* A server passes level 0 until it has seen CONNECT. */
    p = DEC(CONNECT_V31_MIN, 0);
    CHECK_EQ(INT(p, TYPE), MQLITE_PKT_CONNECT);
    CHECK_EQ(INT(p, VERSION), MQLITE_V31);
    CHECK_FIELD(p, PROTOCOL_NAME, "MQIsdp");
    CHECK_EQ(INT(p, CLEAN_START), 1);
    CHECK_EQ(INT(p, KEEPALIVE_S), 60);
    CHECK_EQ(INT(p, WILL), 0);
    CHECK_EQ(INT(p, WILL_QOS), 0);
    CHECK_EQ(INT(p, WILL_RETAIN), 0);
    CHECK_EQ(INT(p, HAS_USERNAME), 0);
    CHECK_EQ(INT(p, HAS_PASSWORD), 0);
    CHECK_FIELD(p, CLIENT_ID, "abc");
    CHECK_ABSENT(p, USERNAME);
    CHECK_ABSENT(p, PASSWORD);
    CHECK_ABSENT(p, WILL_TOPIC);
    CHECK_ABSENT(p, WILL_PAYLOAD);
    CHECK_NO_PROPS(p);
    CHECK_EQ(mqlite_props_count(mqlite_packet_will_props(p)), 0);
    ENC(p, CONNECT_V31_MIN);
    mqlite_packet_free(p);
}

/* MQTT 3.1 with everything: flags 0xEC = user name, password, will retain,
 * will QoS 1, will flag, clean session 0; keep alive 0x1234. */
static const char CONNECT_V31_FULL[] = "10 23 00 06 4d 51 49 73 64 70 03 ec 12 34 00 03 61 62 63"
                                       " 00 03 6c 77 74 00 04 67 6f 6e 65 00 01 75 00 02 70 77";

static void test_connect_v31_full_vector(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V31);
    SET_INT(p, CLEAN_START, 0);
    SET_INT(p, KEEPALIVE_S, 0x1234);
    SET_STR(p, CLIENT_ID, "abc");
    SET_STR(p, WILL_TOPIC, "lwt");
    SET_STR(p, WILL_PAYLOAD, "gone");
    SET_INT(p, WILL_QOS, 1);
    SET_INT(p, WILL_RETAIN, 1);
    SET_STR(p, USERNAME, "u");
    SET_STR(p, PASSWORD, "pw");
    CHECK_EQ(INT(p, WILL), 1);
    CHECK_EQ(INT(p, HAS_USERNAME), 1);
    CHECK_EQ(INT(p, HAS_PASSWORD), 1);
    ENC(p, CONNECT_V31_FULL);
    mqlite_packet_free(p);

    p = DEC(CONNECT_V31_FULL, 0);
    CHECK_EQ(INT(p, VERSION), MQLITE_V31);
    CHECK_EQ(INT(p, CLEAN_START), 0);
    CHECK_EQ(INT(p, KEEPALIVE_S), 0x1234);
    CHECK_EQ(INT(p, WILL), 1);
    CHECK_EQ(INT(p, WILL_QOS), 1);
    CHECK_EQ(INT(p, WILL_RETAIN), 1);
    CHECK_EQ(INT(p, HAS_USERNAME), 1);
    CHECK_EQ(INT(p, HAS_PASSWORD), 1);
    CHECK_FIELD(p, CLIENT_ID, "abc");
    CHECK_FIELD(p, WILL_TOPIC, "lwt");
    CHECK_FIELD(p, WILL_PAYLOAD, "gone");
    CHECK_FIELD(p, USERNAME, "u");
    CHECK_FIELD(p, PASSWORD, "pw");
    ENC(p, CONNECT_V31_FULL);
    mqlite_packet_free(p);
}

/* MQTT 3.1.1 Figure 3.6 / 3.1.2.10 "Variable header non normative example":
 * "MQTT", level 4, flags 0xCE (user name 1, password 1, will retain 0, will
 * QoS 01, will 1, clean session 1, reserved 0), keep alive 10. Payload in the
 * order of [MQTT-3.1.3-1]: client id, will topic, will message, user, password. */
static const char CONNECT_V311_SPEC[] = "10 1a 00 04 4d 51 54 54 04 ce 00 0a"
                                        " 00 02 63 31 00 01 77 00 01 6d 00 01 75 00 01 70";

static void test_connect_v311_spec_example_vector(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V311);
    SET_INT(p, KEEPALIVE_S, 10);
    SET_STR(p, CLIENT_ID, "c1");
    SET_STR(p, WILL_TOPIC, "w");
    SET_STR(p, WILL_PAYLOAD, "m");
    SET_INT(p, WILL_QOS, 1);
    SET_STR(p, USERNAME, "u");
    SET_STR(p, PASSWORD, "p");
    ENC(p, CONNECT_V311_SPEC);
    mqlite_packet_free(p);

    /* The level written in CONNECT wins over the level passed in. */
    for (int32_t v = 0; v <= MQLITE_V5; v += (v ? 1 : 3)) {
        p = DEC(CONNECT_V311_SPEC, v);
        CHECK_EQ(INT(p, VERSION), MQLITE_V311);
        CHECK_FIELD(p, PROTOCOL_NAME, "MQTT");
        CHECK_EQ(INT(p, CLEAN_START), 1);
        CHECK_EQ(INT(p, KEEPALIVE_S), 10);
        CHECK_EQ(INT(p, WILL), 1);
        CHECK_EQ(INT(p, WILL_QOS), 1);
        CHECK_EQ(INT(p, WILL_RETAIN), 0);
        CHECK_FIELD(p, CLIENT_ID, "c1");
        CHECK_FIELD(p, WILL_TOPIC, "w");
        CHECK_FIELD(p, WILL_PAYLOAD, "m");
        CHECK_FIELD(p, USERNAME, "u");
        CHECK_FIELD(p, PASSWORD, "p");
        mqlite_packet_free(p);
    }
}

/* MQTT 3.1.1: empty client id (allowed with clean session 1,
 * [MQTT-3.1.3-7]), keep alive 0. */
static const char CONNECT_V311_MIN[] = "10 0c 00 04 4d 51 54 54 04 02 00 00 00 00";

static void test_connect_v311_empty_client_id_vector(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V311);
    SET_INT(p, KEEPALIVE_S, 0);
    ENC(p, CONNECT_V311_MIN);
    mqlite_packet_free(p);

    p = DEC(CONNECT_V311_MIN, 0);
    CHECK_EQ(INT(p, KEEPALIVE_S), 0);
    CHECK_FIELD(p, CLIENT_ID, "");
    CHECK_EQ(INT(p, WILL), 0);
    ENC(p, CONNECT_V311_MIN);
    mqlite_packet_free(p);
}

/* MQTT 5.0 3.1.2, the non-normative Variable Header example: "MQTT", version 5, flags
 * 0xCE, keep alive 10, properties length 5 = Session Expiry Interval (17)
 * of 10. Completed with an empty will property block. */
static const char CONNECT_V5_SPEC[] = "10 21 00 04 4d 51 54 54 05 ce 00 0a 05 11 00 00 00 0a"
                                      " 00 02 63 31 00 00 01 77 00 01 6d 00 01 75 00 01 70";

static void test_connect_v5_spec_example_vector(void)
{
    static const pexp props[] = {P_INT(SESSION_EXPIRY, 10)};
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    SET_INT(p, KEEPALIVE_S, 10);
    SET_PROPS(p, props);
    SET_STR(p, CLIENT_ID, "c1");
    SET_STR(p, WILL_TOPIC, "w");
    SET_STR(p, WILL_PAYLOAD, "m");
    SET_INT(p, WILL_QOS, 1);
    SET_STR(p, USERNAME, "u");
    SET_STR(p, PASSWORD, "p");
    ENC(p, CONNECT_V5_SPEC);
    mqlite_packet_free(p);

    p = DEC(CONNECT_V5_SPEC, 0);
    CHECK_EQ(INT(p, VERSION), MQLITE_V5);
    CHECK_EQ(INT(p, KEEPALIVE_S), 10);
    CHECK_EQ(INT(p, WILL_QOS), 1);
    CHECK_PROPS(mqlite_packet_props(p), props);
    CHECK_EQ(mqlite_props_count(mqlite_packet_will_props(p)), 0);
    CHECK_FIELD(p, CLIENT_ID, "c1");
    CHECK_FIELD(p, WILL_TOPIC, "w");
    CHECK_FIELD(p, USERNAME, "u");
    mqlite_packet_free(p);
}

/* MQTT 5.0 CONNECT with every CONNECT property and every Will property.
 * Flags 0xF6: user name, password, will retain, will QoS 2, will, clean
 * start. Two User Properties with the same key keep their order. */
static const char CONNECT_V5_FULL[] = "10 7f 00 04 4d 51 54 54 05 f6 00 0a"
                                      " 2f"
                                      " 11 00 00 00 0a"
                                      " 21 00 14"
                                      " 27 00 00 10 00"
                                      " 22 00 05"
                                      " 19 01"
                                      " 17 00"
                                      " 26 00 01 61 00 01 31"
                                      " 26 00 01 61 00 01 32"
                                      " 15 00 05 53 43 52 41 4d"
                                      " 16 00 02 01 02"
                                      " 00 03 63 69 64"
                                      " 2b"
                                      " 18 00 00 00 05"
                                      " 01 01"
                                      " 02 00 00 00 3c"
                                      " 03 00 0a 74 65 78 74 2f 70 6c 61 69 6e"
                                      " 08 00 03 72 2f 74"
                                      " 09 00 02 de ad"
                                      " 26 00 01 6b 00 01 76"
                                      " 00 03 77 2f 74"
                                      " 00 03 62 79 65"
                                      " 00 04 75 73 65 72"
                                      " 00 02 00 ff";

static const pexp CONNECT_V5_PROPS[] = {
    P_INT(SESSION_EXPIRY, 10),
    P_INT(RECEIVE_MAX, 20),
    P_INT(MAX_PACKET_SIZE, 4096),
    P_INT(TOPIC_ALIAS_MAX, 5),
    P_INT(REQUEST_RESPONSE_INFO, 1),
    P_INT(REQUEST_PROBLEM_INFO, 0),
    P_USER("a", "1"),
    P_USER("a", "2"),
    P_STR(AUTH_METHOD, "SCRAM"),
    P_STR(AUTH_DATA, "\x01\x02"),
};
static const pexp CONNECT_V5_WILL_PROPS[] = {
    P_INT(WILL_DELAY, 5),
    P_INT(PAYLOAD_FORMAT, 1),
    P_INT(MESSAGE_EXPIRY, 60),
    P_STR(CONTENT_TYPE, "text/plain"),
    P_STR(RESPONSE_TOPIC, "r/t"),
    P_STR(CORRELATION_DATA, "\xde\xad"),
    P_USER("k", "v"),
};

static void test_connect_v5_all_properties_vector(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    SET_INT(p, KEEPALIVE_S, 10);
    SET_PROPS(p, CONNECT_V5_PROPS);
    SET_STR(p, CLIENT_ID, "cid");
    SET_STR(p, WILL_TOPIC, "w/t");
    SET_STR(p, WILL_PAYLOAD, "bye");
    SET_WILL_PROPS(p, CONNECT_V5_WILL_PROPS);
    SET_INT(p, WILL_QOS, 2);
    SET_INT(p, WILL_RETAIN, 1);
    SET_STR(p, USERNAME, "user");
    SET_STR(p, PASSWORD, "\x00\xff");
    ENC(p, CONNECT_V5_FULL);
    mqlite_packet_free(p);

    p = DEC(CONNECT_V5_FULL, 0);
    CHECK_EQ(INT(p, VERSION), MQLITE_V5);
    CHECK_EQ(INT(p, CLEAN_START), 1);
    CHECK_EQ(INT(p, KEEPALIVE_S), 10);
    CHECK_EQ(INT(p, WILL), 1);
    CHECK_EQ(INT(p, WILL_QOS), 2);
    CHECK_EQ(INT(p, WILL_RETAIN), 1);
    CHECK_EQ(INT(p, HAS_USERNAME), 1);
    CHECK_EQ(INT(p, HAS_PASSWORD), 1);
    CHECK_FIELD(p, CLIENT_ID, "cid");
    CHECK_FIELD(p, WILL_TOPIC, "w/t");
    CHECK_FIELD(p, WILL_PAYLOAD, "bye");
    CHECK_FIELD(p, USERNAME, "user");
    CHECK_FIELD(p, PASSWORD, "\x00\xff");
    CHECK_PROPS(mqlite_packet_props(p), CONNECT_V5_PROPS);
    CHECK_PROPS(mqlite_packet_will_props(p), CONNECT_V5_WILL_PROPS);
    ENC(p, CONNECT_V5_FULL);
    mqlite_packet_free(p);
}

/* MQTT 5.0 3.1.2.9: a password without a user name is allowed (the 3.1.1
 * rule [MQTT-3.1.2-22] was dropped). Flags 0x42. */
static const char CONNECT_V5_PASSWORD_ONLY[] =
    "10 12 00 04 4d 51 54 54 05 42 00 00 00 00 01 61 00 02 70 77";

static void test_connect_v5_password_without_user_name_is_allowed(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    SET_INT(p, KEEPALIVE_S, 0);
    SET_STR(p, CLIENT_ID, "a");
    SET_STR(p, PASSWORD, "pw");
    ENC(p, CONNECT_V5_PASSWORD_ONLY);
    mqlite_packet_free(p);

    p = DEC(CONNECT_V5_PASSWORD_ONLY, 0);
    CHECK_EQ(INT(p, HAS_USERNAME), 0);
    CHECK_EQ(INT(p, HAS_PASSWORD), 1);
    CHECK_ABSENT(p, USERNAME);
    CHECK_FIELD(p, PASSWORD, "pw");
    mqlite_packet_free(p);
}

/* ---- CONNACK ---- */

static void test_connack_v31_v311_vectors(void)
{
    static const struct {
        int32_t ver, sp, rc;
        const char *hex;
    } v[] = {
        {MQLITE_V31, 0, 0, "20 02 00 00"},  {MQLITE_V31, 0, 5, "20 02 00 05"},
        {MQLITE_V311, 1, 0, "20 02 01 00"}, {MQLITE_V311, 0, 4, "20 02 00 04"},
        {MQLITE_V311, 0, 1, "20 02 00 01"},
    };
    for (size_t i = 0; i < NPROPS(v); i++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_CONNACK, v[i].ver);
        SET_INT(p, SESSION_PRESENT, v[i].sp);
        SET_INT(p, REASON_CODE, v[i].rc);
        ENC(p, v[i].hex);
        mqlite_packet_free(p);

        p = DEC(v[i].hex, v[i].ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_CONNACK);
        CHECK_EQ(INT(p, VERSION), v[i].ver);
        CHECK_EQ(INT(p, SESSION_PRESENT), v[i].sp);
        CHECK_EQ(INT(p, REASON_CODE), v[i].rc);
        CHECK_NO_PROPS(p);
        mqlite_packet_free(p);
    }
}

static void test_connack_v5_short_and_refusal_vectors(void)
{
    mqlite_packet *p = NEW(CONNACK, MQLITE_V5);
    ENC(p, "20 03 00 00 00");
    mqlite_packet_free(p);
    p = DEC("20 03 00 00 00", MQLITE_V5);
    CHECK_EQ(INT(p, SESSION_PRESENT), 0);
    CHECK_EQ(INT(p, REASON_CODE), 0);
    CHECK_NO_PROPS(p);
    mqlite_packet_free(p);

    /* 0x9C Use another server, with a Server Reference. */
    static const pexp props[] = {P_STR(SERVER_REFERENCE, "srv")};
    static const char hex[] = "20 09 00 9c 06 1c 00 03 73 72 76";
    p = NEW(CONNACK, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x9c);
    SET_PROPS(p, props);
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0x9c);
    CHECK_PROPS(mqlite_packet_props(p), props);
    mqlite_packet_free(p);
}

/* MQTT 5.0 CONNACK with every CONNACK property (3.2.2.3), session present. */
static const char CONNACK_V5_FULL[] = "20 4f 01 00 4c"
                                      " 11 00 00 00 78"
                                      " 21 00 0a"
                                      " 24 01"
                                      " 25 00"
                                      " 27 00 01 00 00"
                                      " 12 00 06 61 75 74 6f 2d 31"
                                      " 22 00 0a"
                                      " 1f 00 02 6f 6b"
                                      " 26 00 01 78 00 01 79"
                                      " 28 00"
                                      " 29 01"
                                      " 2a 01"
                                      " 13 00 1e"
                                      " 1a 00 04 72 65 73 70"
                                      " 1c 00 03 73 72 76"
                                      " 15 00 05 53 43 52 41 4d"
                                      " 16 00 02 7a 7a";

static const pexp CONNACK_V5_PROPS[] = {
    P_INT(SESSION_EXPIRY, 120),
    P_INT(RECEIVE_MAX, 10),
    P_INT(MAX_QOS, 1),
    P_INT(RETAIN_AVAILABLE, 0),
    P_INT(MAX_PACKET_SIZE, 65536),
    P_STR(ASSIGNED_CLIENT_ID, "auto-1"),
    P_INT(TOPIC_ALIAS_MAX, 10),
    P_STR(REASON_STRING, "ok"),
    P_USER("x", "y"),
    P_INT(WILDCARD_SUB_AVAILABLE, 0),
    P_INT(SUB_ID_AVAILABLE, 1),
    P_INT(SHARED_SUB_AVAILABLE, 1),
    P_INT(SERVER_KEEPALIVE, 30),
    P_STR(RESPONSE_INFO, "resp"),
    P_STR(SERVER_REFERENCE, "srv"),
    P_STR(AUTH_METHOD, "SCRAM"),
    P_STR(AUTH_DATA, "zz"),
};

static void test_connack_v5_all_properties_vector(void)
{
    mqlite_packet *p = NEW(CONNACK, MQLITE_V5);
    SET_INT(p, SESSION_PRESENT, 1);
    SET_PROPS(p, CONNACK_V5_PROPS);
    ENC(p, CONNACK_V5_FULL);
    mqlite_packet_free(p);

    p = DEC(CONNACK_V5_FULL, MQLITE_V5);
    CHECK_EQ(INT(p, SESSION_PRESENT), 1);
    CHECK_EQ(INT(p, REASON_CODE), 0);
    CHECK_PROPS(mqlite_packet_props(p), CONNACK_V5_PROPS);
    ENC(p, CONNACK_V5_FULL);
    mqlite_packet_free(p);
}

/* ---- PUBLISH ---- */

static void test_publish_v31_v311_vectors(void)
{
    static const struct {
        int32_t qos, dup, retain, pid;
        const char *hex, *payload;
    } v[] = {
        /* QoS 0, topic "a/b", payload "hello": no packet identifier
         * (3.1.1 [MQTT-2.3.1-5]). */
        {0, 0, 0, 0, "30 0a 00 03 61 2f 62 68 65 6c 6c 6f", "hello"},
        /* QoS 1, DUP, RETAIN: 0x3B; packet id 0x1234; payload "hi". */
        {1, 1, 1, 0x1234, "3b 09 00 03 61 2f 62 12 34 68 69", "hi"},
        /* QoS 2, packet id 0xFFFF, empty payload. */
        {2, 0, 0, 0xffff, "34 07 00 03 61 2f 62 ff ff", ""},
    };
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        for (size_t i = 0; i < NPROPS(v); i++) {
            mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_PUBLISH, ver);
            SET_STR(p, TOPIC, "a/b");
            CHECK_EQ(
                mqlite_packet_set_bytes(p, MQLITE_PF_PAYLOAD, v[i].payload, strlen(v[i].payload)),
                0);
            SET_INT(p, QOS, v[i].qos);
            SET_INT(p, DUP, v[i].dup);
            SET_INT(p, RETAIN, v[i].retain);
            SET_INT(p, PACKET_ID, v[i].pid);
            ENC(p, v[i].hex);
            mqlite_packet_free(p);

            p = DEC(v[i].hex, ver);
            CHECK_EQ(INT(p, TYPE), MQLITE_PKT_PUBLISH);
            CHECK_EQ(INT(p, VERSION), ver);
            CHECK_EQ(INT(p, QOS), v[i].qos);
            CHECK_EQ(INT(p, DUP), v[i].dup);
            CHECK_EQ(INT(p, RETAIN), v[i].retain);
            CHECK_EQ(INT(p, PACKET_ID), v[i].pid);
            CHECK_FIELD(p, TOPIC, "a/b");
            size_t len = 777;
            const char *pl = mqlite_packet_bytes(p, MQLITE_PF_PAYLOAD, &len);
            CHECK(pl != NULL);
            CHECK_EQ(len, strlen(v[i].payload));
            CHECK(pl && memcmp(pl, v[i].payload, len) == 0);
            CHECK_NO_PROPS(p);
            mqlite_packet_free(p);
        }
    }
}

static void test_publish_v5_no_properties_vector(void)
{
    static const char hex[] = "30 0b 00 03 61 2f 62 00 68 65 6c 6c 6f";
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    SET_STR(p, TOPIC, "a/b");
    SET_STR(p, PAYLOAD, "hello");
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_EQ(INT(p, QOS), 0);
    CHECK_FIELD(p, TOPIC, "a/b");
    CHECK_FIELD(p, PAYLOAD, "hello");
    CHECK_NO_PROPS(p);
    mqlite_packet_free(p);
}

/* MQTT 5.0 PUBLISH QoS 1 with every PUBLISH property; two Subscription
 * Identifiers (3.3.2.3.8 allows several; 128 is a two-byte VBI) and three
 * User Properties, one key repeated, in order ([MQTT-3.3.2-18]). */
static const char PUBLISH_V5_FULL[] = "32 49 00 03 61 2f 62 00 01"
                                      " 3f"
                                      " 01 01"
                                      " 02 00 00 0e 10"
                                      " 23 00 07"
                                      " 08 00 05 72 73 70 2f 31"
                                      " 09 00 03 01 02 03"
                                      " 26 00 02 75 31 00 02 76 31"
                                      " 26 00 02 75 32 00 02 76 32"
                                      " 26 00 02 75 31 00 02 76 33"
                                      " 0b 01"
                                      " 0b 80 01"
                                      " 03 00 04 6a 73 6f 6e"
                                      " 7b 7d";

static const pexp PUBLISH_V5_PROPS[] = {
    P_INT(PAYLOAD_FORMAT, 1),
    P_INT(MESSAGE_EXPIRY, 3600),
    P_INT(TOPIC_ALIAS, 7),
    P_STR(RESPONSE_TOPIC, "rsp/1"),
    P_STR(CORRELATION_DATA, "\x01\x02\x03"),
    P_USER("u1", "v1"),
    P_USER("u2", "v2"),
    P_USER("u1", "v3"),
    P_INT(SUBSCRIPTION_ID, 1),
    P_INT(SUBSCRIPTION_ID, 128),
    P_STR(CONTENT_TYPE, "json"),
};

static void test_publish_v5_all_properties_vector(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    SET_STR(p, TOPIC, "a/b");
    SET_INT(p, QOS, 1);
    SET_INT(p, PACKET_ID, 1);
    SET_PROPS(p, PUBLISH_V5_PROPS);
    SET_STR(p, PAYLOAD, "{}");
    ENC(p, PUBLISH_V5_FULL);
    mqlite_packet_free(p);

    p = DEC(PUBLISH_V5_FULL, MQLITE_V5);
    CHECK_EQ(INT(p, QOS), 1);
    CHECK_EQ(INT(p, DUP), 0);
    CHECK_EQ(INT(p, RETAIN), 0);
    CHECK_EQ(INT(p, PACKET_ID), 1);
    CHECK_FIELD(p, TOPIC, "a/b");
    CHECK_FIELD(p, PAYLOAD, "{}");
    const mqlite_props *pr = mqlite_packet_props(p);
    CHECK_PROPS(pr, PUBLISH_V5_PROPS);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_USER, 0), 5);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_USER, 6), 6);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_USER, 8), MQLITE_ERR_NOT_FOUND);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_SUBSCRIPTION_ID, 0), 8);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_SUBSCRIPTION_ID, 9), 9);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_WILL_DELAY, 0), MQLITE_ERR_NOT_FOUND);
    ENC(p, PUBLISH_V5_FULL);
    mqlite_packet_free(p);
}

/* MQTT 5.0 3.3.2.1: a zero-length Topic Name is allowed with a Topic Alias. */
static const char PUBLISH_V5_ALIAS_ONLY[] = "30 07 00 00 03 23 00 05 78";

static void test_publish_v5_empty_topic_with_alias_is_allowed(void)
{
    static const pexp props[] = {P_INT(TOPIC_ALIAS, 5)};
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "", 0), 0);
    SET_PROPS(p, props);
    SET_STR(p, PAYLOAD, "x");
    ENC(p, PUBLISH_V5_ALIAS_ONLY);
    mqlite_packet_free(p);

    p = DEC(PUBLISH_V5_ALIAS_ONLY, MQLITE_V5);
    CHECK_FIELD(p, TOPIC, "");
    CHECK_FIELD(p, PAYLOAD, "x");
    CHECK_PROPS(mqlite_packet_props(p), props);
    mqlite_packet_free(p);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static const struct {
    int32_t type;
    const char *v4;       /* 3.1 / 3.1.1 and the 5.0 short form: packet id 7 */
    const char *v5reason; /* 5.0: reason code, no property length */
    int32_t reason;
    const char *v5long; /* 5.0: reason code + Reason String "no" + User Property a=b */
    int32_t long_reason;
} ACKS[] = {
    {MQLITE_PKT_PUBACK, "40 02 00 07", "40 03 00 07 10", 0x10,
     "40 10 00 07 87 0c 1f 00 02 6e 6f 26 00 01 61 00 01 62", 0x87},
    {MQLITE_PKT_PUBREC, "50 02 00 07", "50 03 00 07 80", 0x80,
     "50 10 00 07 97 0c 1f 00 02 6e 6f 26 00 01 61 00 01 62", 0x97},
    {MQLITE_PKT_PUBREL, "62 02 00 07", "62 03 00 07 92", 0x92,
     "62 10 00 07 92 0c 1f 00 02 6e 6f 26 00 01 61 00 01 62", 0x92},
    {MQLITE_PKT_PUBCOMP, "70 02 00 07", "70 03 00 07 92", 0x92,
     "70 10 00 07 00 0c 1f 00 02 6e 6f 26 00 01 61 00 01 62", 0x00},
};
static const pexp ACK_PROPS[] = {P_STR(REASON_STRING, "no"), P_USER("a", "b")};

static void test_pub_acks_v31_v311_vectors(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        for (size_t i = 0; i < NPROPS(ACKS); i++) {
            mqlite_packet *p = new_line(__LINE__, ACKS[i].type, ver);
            SET_INT(p, PACKET_ID, 7);
            ENC(p, ACKS[i].v4);
            mqlite_packet_free(p);
            p = DEC(ACKS[i].v4, ver);
            CHECK_EQ(INT(p, TYPE), ACKS[i].type);
            CHECK_EQ(INT(p, PACKET_ID), 7);
            CHECK_EQ(INT(p, REASON_CODE), 0);
            mqlite_packet_free(p);
        }
    }
}

/* MQTT 5.0 3.4.2.1 (and 3.5.2.1, 3.6.2.1, 3.7.2.1): "The Reason Code and
 * Property Length can be omitted if the Reason Code is 0x00 (Success) and
 * there are no Properties"; 3.4.2.2.1: "If the Remaining Length is less than
 * 4 there is no Property Length and the value of 0 is used." */
static void test_pub_acks_v5_short_reason_and_long_forms(void)
{
    for (size_t i = 0; i < NPROPS(ACKS); i++) {
        int32_t t = ACKS[i].type;
        /* Short form: Success and no properties. */
        mqlite_packet *p = new_line(__LINE__, t, MQLITE_V5);
        SET_INT(p, PACKET_ID, 7);
        ENC(p, ACKS[i].v4);
        mqlite_packet_free(p);
        p = DEC(ACKS[i].v4, MQLITE_V5);
        CHECK_EQ(INT(p, PACKET_ID), 7);
        CHECK_EQ(INT(p, REASON_CODE), 0);
        CHECK_NO_PROPS(p);
        mqlite_packet_free(p);

        /* Reason code only. */
        p = new_line(__LINE__, t, MQLITE_V5);
        SET_INT(p, PACKET_ID, 7);
        SET_INT(p, REASON_CODE, ACKS[i].reason);
        ENC(p, ACKS[i].v5reason);
        mqlite_packet_free(p);
        p = DEC(ACKS[i].v5reason, MQLITE_V5);
        CHECK_EQ(INT(p, PACKET_ID), 7);
        CHECK_EQ(INT(p, REASON_CODE), ACKS[i].reason);
        CHECK_NO_PROPS(p);
        mqlite_packet_free(p);

        /* Reason code and properties (also reason 0x00 with properties). */
        p = new_line(__LINE__, t, MQLITE_V5);
        SET_INT(p, PACKET_ID, 7);
        SET_INT(p, REASON_CODE, ACKS[i].long_reason);
        SET_PROPS(p, ACK_PROPS);
        ENC(p, ACKS[i].v5long);
        mqlite_packet_free(p);
        p = DEC(ACKS[i].v5long, MQLITE_V5);
        CHECK_EQ(INT(p, PACKET_ID), 7);
        CHECK_EQ(INT(p, REASON_CODE), ACKS[i].long_reason);
        CHECK_PROPS(mqlite_packet_props(p), ACK_PROPS);
        ENC(p, ACKS[i].v5long);
        mqlite_packet_free(p);
    }

    /* Non-canonical but valid long forms decode and re-encode short. */
    mqlite_packet *p = DEC("40 04 00 07 00 00", MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0);
    CHECK_NO_PROPS(p);
    ENC(p, "40 02 00 07");
    mqlite_packet_free(p);
    p = DEC("50 04 00 07 10 00", MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0x10);
    ENC(p, "50 03 00 07 10");
    mqlite_packet_free(p);
}

/* ---- SUBSCRIBE ---- */

/* Three filters: "a/b" QoS 1, "c/#" QoS 2, "+" QoS 0; packet id 10. */
static const char SUBSCRIBE_V311[] = "82 12 00 0a 00 03 61 2f 62 01 00 03 63 2f 23 02 00 01 2b 00";

static void test_subscribe_v31_v311_vector(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_SUBSCRIBE, ver);
        SET_INT(p, PACKET_ID, 10);
        CHECK_EQ(mqlite_packet_add_topic(p, "a/b", 1), 0);
        CHECK_EQ(mqlite_packet_add_topic(p, "c/#", 2), 0);
        CHECK_EQ(mqlite_packet_add_topic(p, "+", 0), 0);
        CHECK_EQ(mqlite_packet_count(p), 3);
        ENC(p, SUBSCRIBE_V311);
        mqlite_packet_free(p);

        p = DEC(SUBSCRIBE_V311, ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_SUBSCRIBE);
        CHECK_EQ(INT(p, PACKET_ID), 10);
        CHECK_EQ(mqlite_packet_count(p), 3);
        CHECK_TOPIC_AT(p, 0, "a/b", 1);
        CHECK_TOPIC_AT(p, 1, "c/#", 2);
        CHECK_TOPIC_AT(p, 2, "+", 0);
        CHECK(mqlite_packet_topic_at(p, 3, NULL) == NULL);
        CHECK(mqlite_packet_topic_at(p, -1, NULL) == NULL);
        CHECK_EQ(mqlite_packet_options_at(p, 3), MQLITE_ERR_RANGE);
        ENC(p, SUBSCRIBE_V311);
        mqlite_packet_free(p);
    }
}

/* MQTT 5.0 SUBSCRIBE: Subscription Identifier 128 + User Property; options
 * "a/b" 0x1D = QoS 1, No Local, Retain As Published, Retain Handling 1;
 * "$share/g/c" 0x22 = QoS 2, Retain Handling 2; "d/+" 0x00. */
static const char SUBSCRIBE_V5[] = "82 26 00 0a 0a 0b 80 01 26 00 01 6b 00 01 76"
                                   " 00 03 61 2f 62 1d"
                                   " 00 0a 24 73 68 61 72 65 2f 67 2f 63 22"
                                   " 00 03 64 2f 2b 00";
static const pexp SUBSCRIBE_V5_PROPS[] = {P_INT(SUBSCRIPTION_ID, 128), P_USER("k", "v")};

static void test_subscribe_v5_options_and_properties_vector(void)
{
    mqlite_packet *p = NEW(SUBSCRIBE, MQLITE_V5);
    SET_INT(p, PACKET_ID, 10);
    SET_PROPS(p, SUBSCRIBE_V5_PROPS);
    CHECK_EQ(mqlite_packet_add_topic(p, "a/b", 0x1d), 0);
    CHECK_EQ(mqlite_packet_add_topic(p, "$share/g/c", 0x22), 0);
    CHECK_EQ(mqlite_packet_add_topic(p, "d/+", 0x00), 0);
    ENC(p, SUBSCRIBE_V5);
    mqlite_packet_free(p);

    p = DEC(SUBSCRIBE_V5, MQLITE_V5);
    CHECK_EQ(INT(p, PACKET_ID), 10);
    CHECK_PROPS(mqlite_packet_props(p), SUBSCRIBE_V5_PROPS);
    CHECK_EQ(mqlite_packet_count(p), 3);
    CHECK_TOPIC_AT(p, 0, "a/b", 0x1d);
    CHECK_TOPIC_AT(p, 1, "$share/g/c", 0x22);
    CHECK_TOPIC_AT(p, 2, "d/+", 0x00);
    ENC(p, SUBSCRIBE_V5);
    mqlite_packet_free(p);
}

/* ---- SUBACK ---- */

static void test_suback_vectors(void)
{
    static const struct {
        int32_t ver;
        const char *hex;
        int32_t codes[12];
        int32_t n;
    } v[] = {
        {MQLITE_V31, "90 05 00 0a 00 01 02", {0, 1, 2}, 3},
        {MQLITE_V311, "90 06 00 0a 00 01 02 80", {0, 1, 2, 0x80}, 4},
        {MQLITE_V5, "90 04 00 0a 00 01", {1}, 1},
        /* Every SUBACK reason code of MQTT 5.0 Table 2-6. */
        {MQLITE_V5,
         "90 0f 00 0a 00 00 01 02 80 83 87 8f 91 97 9e a1 a2",
         {0, 1, 2, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2},
         12},
    };
    for (size_t i = 0; i < NPROPS(v); i++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_SUBACK, v[i].ver);
        SET_INT(p, PACKET_ID, 10);
        for (int32_t k = 0; k < v[i].n; k++)
            CHECK_EQ(mqlite_packet_add_reason(p, v[i].codes[k]), 0);
        ENC(p, v[i].hex);
        mqlite_packet_free(p);

        p = DEC(v[i].hex, v[i].ver);
        CHECK_EQ(INT(p, PACKET_ID), 10);
        CHECK_EQ(mqlite_packet_count(p), v[i].n);
        for (int32_t k = 0; k < v[i].n; k++)
            CHECK_EQ(mqlite_packet_reason_at(p, k), v[i].codes[k]);
        CHECK_EQ(mqlite_packet_reason_at(p, v[i].n), MQLITE_ERR_RANGE);
        CHECK_NO_PROPS(p);
        mqlite_packet_free(p);
    }

    /* 5.0 with a Reason String. */
    static const pexp props[] = {P_STR(REASON_STRING, "r")};
    static const char hex[] = "90 09 00 0a 04 1f 00 01 72 00 80";
    mqlite_packet *p = NEW(SUBACK, MQLITE_V5);
    SET_INT(p, PACKET_ID, 10);
    SET_PROPS(p, props);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x00), 0);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x80), 0);
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_PROPS(mqlite_packet_props(p), props);
    CHECK_EQ(mqlite_packet_count(p), 2);
    CHECK_EQ(mqlite_packet_reason_at(p, 1), 0x80);
    mqlite_packet_free(p);
}

/* ---- UNSUBSCRIBE ---- */

static void test_unsubscribe_vectors(void)
{
    static const char v311[] = "a2 0c 00 0b 00 03 61 2f 62 00 03 63 2f 23";
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_UNSUBSCRIBE, ver);
        SET_INT(p, PACKET_ID, 11);
        CHECK_EQ(mqlite_packet_add_topic(p, "a/b", 0), 0);
        CHECK_EQ(mqlite_packet_add_topic(p, "c/#", 0), 0);
        ENC(p, v311);
        mqlite_packet_free(p);
        p = DEC(v311, ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_UNSUBSCRIBE);
        CHECK_EQ(INT(p, PACKET_ID), 11);
        CHECK_EQ(mqlite_packet_count(p), 2);
        CHECK_TOPIC_AT(p, 0, "a/b", -1);
        CHECK_TOPIC_AT(p, 1, "c/#", -1);
        CHECK_EQ(mqlite_packet_options_at(p, 0), MQLITE_ERR_RANGE);
        mqlite_packet_free(p);
    }

    static const pexp props[] = {P_USER("k", "v")};
    static const char v5[] = "a2 14 00 0b 07 26 00 01 6b 00 01 76 00 03 61 2f 62 00 03 63 2f 23";
    mqlite_packet *p = NEW(UNSUBSCRIBE, MQLITE_V5);
    SET_INT(p, PACKET_ID, 11);
    SET_PROPS(p, props);
    CHECK_EQ(mqlite_packet_add_topic(p, "a/b", 0), 0);
    CHECK_EQ(mqlite_packet_add_topic(p, "c/#", 0), 0);
    ENC(p, v5);
    mqlite_packet_free(p);
    p = DEC(v5, MQLITE_V5);
    CHECK_EQ(INT(p, PACKET_ID), 11);
    CHECK_PROPS(mqlite_packet_props(p), props);
    CHECK_TOPIC_AT(p, 0, "a/b", -1);
    CHECK_TOPIC_AT(p, 1, "c/#", -1);
    ENC(p, v5);
    mqlite_packet_free(p);
}

/* ---- UNSUBACK ---- */

static void test_unsuback_vectors(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_UNSUBACK, ver);
        SET_INT(p, PACKET_ID, 11);
        ENC(p, "b0 02 00 0b");
        mqlite_packet_free(p);
        p = DEC("b0 02 00 0b", ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_UNSUBACK);
        CHECK_EQ(INT(p, PACKET_ID), 11);
        CHECK_EQ(mqlite_packet_count(p), 0);
        mqlite_packet_free(p);
    }

    mqlite_packet *p = NEW(UNSUBACK, MQLITE_V5);
    SET_INT(p, PACKET_ID, 11);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x11), 0);
    ENC(p, "b0 04 00 0b 00 11");
    mqlite_packet_free(p);

    /* Every UNSUBACK reason code of MQTT 5.0 Table 2-6, with a Reason String. */
    static const pexp props[] = {P_STR(REASON_STRING, "x")};
    static const char hex[] = "b0 0e 00 0b 04 1f 00 01 78 00 11 80 83 87 8f 91";
    static const int32_t codes[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91};
    p = NEW(UNSUBACK, MQLITE_V5);
    SET_INT(p, PACKET_ID, 11);
    SET_PROPS(p, props);
    for (size_t i = 0; i < NPROPS(codes); i++)
        CHECK_EQ(mqlite_packet_add_reason(p, codes[i]), 0);
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_EQ(INT(p, PACKET_ID), 11);
    CHECK_PROPS(mqlite_packet_props(p), props);
    CHECK_EQ(mqlite_packet_count(p), 7);
    for (size_t i = 0; i < NPROPS(codes); i++)
        CHECK_EQ(mqlite_packet_reason_at(p, (int32_t)i), codes[i]);
    mqlite_packet_free(p);
}

/* ---- PINGREQ, PINGRESP ---- */

static void test_ping_vectors(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V5; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_PINGREQ, ver);
        ENC(p, "c0 00");
        mqlite_packet_free(p);
        p = new_line(__LINE__, MQLITE_PKT_PINGRESP, ver);
        ENC(p, "d0 00");
        mqlite_packet_free(p);
        p = DEC("c0 00", ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_PINGREQ);
        CHECK_EQ(INT(p, VERSION), ver);
        CHECK_EQ(INT(p, PACKET_ID), MQLITE_ERR_OPTION);
        mqlite_packet_free(p);
        p = DEC("d0 00", ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_PINGRESP);
        mqlite_packet_free(p);
    }
}

/* ---- DISCONNECT ---- */

static void test_disconnect_vectors(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V5; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_DISCONNECT, ver);
        ENC(p, "e0 00");
        mqlite_packet_free(p);
        p = DEC("e0 00", ver);
        CHECK_EQ(INT(p, TYPE), MQLITE_PKT_DISCONNECT);
        CHECK_EQ(INT(p, REASON_CODE), 0);
        mqlite_packet_free(p);
    }

    /* MQTT 5.0 3.14.2.1: Reason Code only; 3.14.2.2.1: "If the Remaining
     * Length is less than 2, a value of 0 is used." */
    mqlite_packet *p = NEW(DISCONNECT, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x04);
    ENC(p, "e0 01 04");
    mqlite_packet_free(p);
    p = DEC("e0 01 04", MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0x04);
    CHECK_NO_PROPS(p);
    mqlite_packet_free(p);
    p = DEC("e0 02 00 00", MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0);
    ENC(p, "e0 00");
    mqlite_packet_free(p);

    /* From a client: Session Expiry Interval, Reason String, User Property. */
    static const pexp cprops[] = {P_INT(SESSION_EXPIRY, 0), P_STR(REASON_STRING, "bye"),
                                  P_USER("a", "b")};
    static const char chex[] = "e0 14 04 12 11 00 00 00 00 1f 00 03 62 79 65 26 00 01 61 00 01 62";
    p = NEW(DISCONNECT, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x04);
    SET_PROPS(p, cprops);
    ENC(p, chex);
    mqlite_packet_free(p);
    p = DECF(chex, MQLITE_V5, MQLITE_DECODE_SERVER);
    CHECK_EQ(INT(p, REASON_CODE), 0x04);
    CHECK_PROPS(mqlite_packet_props(p), cprops);
    mqlite_packet_free(p);

    /* From a server: 0x9C Use another server + Server Reference. */
    static const pexp sprops[] = {P_STR(SERVER_REFERENCE, "other")};
    static const char shex[] = "e0 0a 9c 08 1c 00 05 6f 74 68 65 72";
    p = NEW(DISCONNECT, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x9c);
    SET_PROPS(p, sprops);
    ENC(p, shex);
    mqlite_packet_free(p);
    p = DECF(shex, MQLITE_V5, MQLITE_DECODE_CLIENT);
    CHECK_EQ(INT(p, REASON_CODE), 0x9c);
    CHECK_PROPS(mqlite_packet_props(p), sprops);
    mqlite_packet_free(p);
}

/* ---- AUTH ---- */

static void test_auth_vectors(void)
{
    /* MQTT 5.0 3.15.2.1: "The Reason Code and Property Length can be omitted
     * if the Reason Code is 0x00 (Success) and there are no Properties. In
     * this case the AUTH has a Remaining Length of 0." */
    mqlite_packet *p = NEW(AUTH, MQLITE_V5);
    ENC(p, "f0 00");
    mqlite_packet_free(p);
    p = DEC("f0 00", MQLITE_V5);
    CHECK_EQ(INT(p, TYPE), MQLITE_PKT_AUTH);
    CHECK_EQ(INT(p, REASON_CODE), 0);
    mqlite_packet_free(p);

    static const pexp props[] = {
        P_STR(AUTH_METHOD, "SCRAM"),
        P_STR(AUTH_DATA, "\x01\x02\x03"),
        P_STR(REASON_STRING, "more"),
        P_USER("a", "b"),
    };
    static const char hex[] = "f0 1e 18 1c 15 00 05 53 43 52 41 4d 16 00 03 01 02 03"
                              " 1f 00 04 6d 6f 72 65 26 00 01 61 00 01 62";
    p = NEW(AUTH, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x18);
    SET_PROPS(p, props);
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0x18);
    CHECK_PROPS(mqlite_packet_props(p), props);
    ENC(p, hex);
    mqlite_packet_free(p);

    /* Re-authenticate: 5.0 3.15.2.2.2, the method is always named. */
    p = DEC("f0 07 19 05 15 00 02 78 78", MQLITE_V5);
    CHECK_EQ(INT(p, REASON_CODE), 0x19);
    CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), 1);
    mqlite_packet_free(p);
    /* ... and an AUTH with a property block but no method is a protocol error. */
    CHECK_EQ(dec_bytes_rc((const unsigned char *)"\xf0\x02\x19\x00", 4, MQLITE_V5, 0),
             MQLITE_ERR_PROTOCOL);
}

/* MQTT 5.0 3.15.2.1 lets AUTH omit the Reason Code and the Property Length
 * only together, only for 0x00 with no properties; unlike DISCONNECT
 * (3.14.2.2.1) and the PUBLISH acks (3.4.2.2.1), AUTH has no "If the
 * Remaining Length is less than ..." rule that would allow a Reason Code
 * without a Property Length. So a non-zero AUTH reason code without
 * properties must still be followed by a Property Length of 0. */
static void test_auth_v5_reason_without_properties_encodes_property_length(void)
{
    /* The shortest legal non-zero AUTH: reason, Property Length, and the
     * Authentication Method 5.0 3.15.2.2.2 requires. */
    mqlite_packet *p = NEW(AUTH, MQLITE_V5);
    SET_INT(p, REASON_CODE, 0x18);
    size_t len = 0;
    CHECK_EQ(mqlite_packet_encode(p, NULL, 0, &len), MQLITE_ERR_PROTOCOL);
    mqlite_props *pr = mqlite_props_new();
    mqlite_props_add_str(pr, MQLITE_PROP_AUTH_METHOD, "x");
    CHECK_EQ(mqlite_packet_set_props(p, pr), 0);
    mqlite_props_free(pr);
    ENC(p, "f0 06 18 04 15 00 01 78");
    mqlite_packet_free(p);
    /* A reason code without its Property Length is truncated. */
    CHECK_EQ(dec_bytes_rc((const unsigned char *)"\xf0\x01\x18", 3, MQLITE_V5, 0),
             MQLITE_ERR_TRUNCATED);
}

/* ======================================================================
 * Remaining Length: MQTT 3.1.1 2.2.3 Table 2.4 / MQTT 5.0 1.5.5 Table 1-1
 * ====================================================================== */

/* A 3.1.1 PUBLISH QoS 0 to topic "t" (3 bytes) whose Remaining Length is
 * `rem`, so that its fixed header must be `hdr_hex` (from the table). */
static void publish_remlen_line(int line, uint32_t rem, const char *hdr_hex)
{
    unsigned char hdr[8];
    size_t hn = tl_hex(hdr_hex, hdr, sizeof hdr);
    size_t plen = rem - 3, total = hn + rem;
    unsigned char *payload = malloc(plen + 1), *want = malloc(total), *got = malloc(total + 1);
    if (!payload || !want || !got)
        abort();
    for (size_t i = 0; i < plen; i++)
        payload[i] = (unsigned char)(i * 7 + 1);
    memcpy(want, hdr, hn);
    want[hn] = 0x00;
    want[hn + 1] = 0x01;
    want[hn + 2] = 't';
    memcpy(want + hn + 3, payload, plen);

    mqlite_packet *p = new_line(line, MQLITE_PKT_PUBLISH, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "t", 1), 0);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_PAYLOAD, payload, plen), 0);
    size_t len = 0;
    got[total] = 0xee;
    int32_t rc = mqlite_packet_encode(p, got, total, &len);
    ok_line(line, rc == 0 && len == total, "encode at a Remaining Length boundary");
    ok_line(line, rc == 0 && memcmp(got, want, total) == 0, "Remaining Length bytes");
    ok_line(line, got[total] == 0xee, "nothing written past the packet");
    mqlite_packet_free(p);

    /* The fixed header alone tells the decoder the whole size. */
    size_t used = 0, need = 0;
    int32_t err = 12345;
    p = mqlite_packet_decode(want, hn, MQLITE_V311, 0, 0, &used, &need, &err);
    ok_line(line, p == NULL && err == 0 && need == total, "need from the fixed header");
    mqlite_packet_free(p);

    p = mqlite_packet_decode(want, total, MQLITE_V311, 0, 0, &used, &need, &err);
    ok_line(line, p != NULL && err == 0 && used == total, "decode at a Remaining Length boundary");
    const void *pl = mqlite_packet_bytes(p, MQLITE_PF_PAYLOAD, &len);
    ok_line(line, pl && len == plen && memcmp(pl, payload, plen) == 0, "decoded payload");
    mqlite_packet_free(p);
    free(payload);
    free(want);
    free(got);
}

static void test_remaining_length_table_boundaries(void)
{
    /* 0 (0x00): PINGREQ. */
    mqlite_packet *p = DEC("c0 00", MQLITE_V311);
    mqlite_packet_free(p);
    publish_remlen_line(__LINE__, 3, "30 03");
    publish_remlen_line(__LINE__, 127, "30 7f");
    publish_remlen_line(__LINE__, 128, "30 80 01");
    publish_remlen_line(__LINE__, 16383, "30 ff 7f");
    publish_remlen_line(__LINE__, 16384, "30 80 80 01");
    publish_remlen_line(__LINE__, 2097151, "30 ff ff 7f");
    publish_remlen_line(__LINE__, 2097152, "30 80 80 80 01");

    /* 268 435 455 (0xFF, 0xFF, 0xFF, 0x7F): the largest; checked from the
     * fixed header only (need = 1 + 4 + 268435455). */
    unsigned char b[5];
    size_t n = tl_hex("30 ff ff ff 7f", b, sizeof b), used = 0, need = 0;
    int32_t err = 12345;
    p = mqlite_packet_decode(b, n, MQLITE_V311, 0, 0, &used, &need, &err);
    CHECK(p == NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(need, 268435460u);
    mqlite_packet_free(p);
}

/* MQTT 5.0 1.5.5: "The maximum number of bytes in the Variable Byte Integer
 * field is four" (3.1.1 2.2.3: "The maximum number of bytes in the Remaining
 * Length field is four"): a fifth byte is a Malformed Packet. */
static void test_remaining_length_over_four_bytes_is_malformed(void)
{
    DEC_MAL("30 ff ff ff ff 7f", MQLITE_V311, MQLITE_ERR_REMLEN_TOO_LONG);
    DEC_MAL("30 80 80 80 80 01", MQLITE_V5, MQLITE_ERR_REMLEN_TOO_LONG);
    /* Known as soon as the fourth length byte still has its continuation bit. */
    DEC_MAL("c0 80 80 80 80", MQLITE_V5, MQLITE_ERR_REMLEN_TOO_LONG);
}

/* MQTT 5.0 [MQTT-1.5.5-1]: The encoded value MUST use the minimum number of
 * bytes necessary to represent the value. */
static void test_remaining_length_not_minimal_is_malformed(void)
{
    DEC_MAL("c0 80 00", MQLITE_V5, MQLITE_ERR_REMLEN_NOT_MINIMAL);
    DEC_MAL("30 85 00 00 03 61 2f 62", MQLITE_V5, MQLITE_ERR_REMLEN_NOT_MINIMAL);
    DEC_MAL("30 ff 80 00", MQLITE_V311, MQLITE_ERR_REMLEN_NOT_MINIMAL);
    DEC_MAL("30 80 80 80 00", MQLITE_V311, MQLITE_ERR_REMLEN_NOT_MINIMAL);
}

/* ======================================================================
 * 2. Streaming
 * ====================================================================== */

/* Every proper prefix: NULL, err 0, need > len; need = len + 1 while the
 * fixed header is incomplete, then the exact total. Each prefix is decoded
 * from a heap block of exactly its length. */
static void prefixes_line(int line, const char *h, int32_t ver, int32_t flags)
{
    size_t n;
    unsigned char *full = hex_dup(h, &n);
    size_t hdr = 2;
    while (hdr <= n && (full[hdr - 1] & 0x80))
        hdr++;
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char *b = malloc(k ? k : 1);
        if (!b)
            abort();
        memcpy(b, full, k);
        size_t used = 0, need = 0;
        int32_t err = 12345;
        mqlite_packet *p = mqlite_packet_decode(b, k, ver, flags, 0, &used, &need, &err);
        size_t want = k < hdr ? k + 1 : n;
        if (p || err || need != want || need <= k) {
            if (!bad++)
                fprintf(stderr, "  line %d: prefix %zu of %zu: %s, err %d, need %zu (want %zu)\n",
                        line, k, n, p ? "packet" : "NULL", (int)err, need, want);
        }
        mqlite_packet_free(p);
        free(b);
    }
    ok_line(line, bad == 0, "every proper prefix asks for more");
    free(full);
}
#define CHECK_PREFIXES(h, ver) prefixes_line(__LINE__, h, ver, 0)

static void test_every_proper_prefix_needs_more(void)
{
    CHECK_PREFIXES(CONNECT_V31_FULL, 0);
    CHECK_PREFIXES(CONNECT_V311_SPEC, 0);
    CHECK_PREFIXES(CONNECT_V5_FULL, 0);
    CHECK_PREFIXES(CONNACK_V5_FULL, MQLITE_V5);
    CHECK_PREFIXES(PUBLISH_V5_FULL, MQLITE_V5);
    CHECK_PREFIXES(SUBSCRIBE_V5, MQLITE_V5);
    CHECK_PREFIXES("40 10 00 07 87 0c 1f 00 02 6e 6f 26 00 01 61 00 01 62", MQLITE_V5);
    CHECK_PREFIXES("c0 00", MQLITE_V311);

    /* A two-byte Remaining Length: "30 80 01" + 128 bytes. */
    char h[3 * 140 + 16] = "30 80 01 00 01 74";
    for (int i = 0; i < 125; i++)
        strcat(h, " 5a");
    CHECK_PREFIXES(h, MQLITE_V311);
}

static void test_back_to_back_packets_decode_one_at_a_time(void)
{
    static const char stream[] = "30 0b 00 03 61 2f 62 00 68 65 6c 6c 6f" /* 13 */
                                 " 40 03 00 07 10"                        /* 5 */
                                 " c0 00"                                 /* 2 */
                                 " e0 01 04";                             /* 3 */
    static const struct {
        int32_t type;
        size_t used;
    } want[] = {{MQLITE_PKT_PUBLISH, 13},
                {MQLITE_PKT_PUBACK, 5},
                {MQLITE_PKT_PINGREQ, 2},
                {MQLITE_PKT_DISCONNECT, 3}};
    size_t n;
    unsigned char *b = hex_dup(stream, &n);
    size_t off = 0;
    for (size_t i = 0; i < NPROPS(want); i++) {
        size_t used = 0, need = 0;
        int32_t err = 12345;
        mqlite_packet *p =
            mqlite_packet_decode(b + off, n - off, MQLITE_V5, 0, 0, &used, &need, &err);
        CHECK(p != NULL);
        CHECK_EQ(err, 0);
        CHECK_EQ(used, want[i].used);
        CHECK_EQ(mqlite_packet_int(p, MQLITE_PF_TYPE), want[i].type);
        if (i == 0)
            CHECK_FIELD(p, PAYLOAD, "hello");
        if (i == 1)
            CHECK_EQ(INT(p, REASON_CODE), 0x10);
        mqlite_packet_free(p);
        off += used ? used : n;
    }
    CHECK_EQ(off, n);
    free(b);
}

/* MQTT 5.0 3.1.2.11.4 / 3.2.2.3.6 Maximum Packet Size: the size is enforced
 * from the fixed header alone (0x95 Packet too large). */
static void test_max_packet_size_is_enforced_from_the_fixed_header(void)
{
    unsigned char b[16];
    size_t n = tl_hex("30 ff ff ff 7f", b, sizeof b), used = 0, need = 0;
    int32_t err = 0;
    mqlite_packet *p = mqlite_packet_decode(b, n, MQLITE_V5, 0, 1000, &used, &need, &err);
    CHECK(p == NULL);
    CHECK_EQ(err, MQLITE_ERR_PACKET_TOO_LARGE);
    CHECK_EQ(mqlite_error_is_malformed(err), 0);
    CHECK_EQ(mqlite_error_reason(err), 0x95);
    mqlite_packet_free(p);

    /* One byte under the largest possible packet. */
    p = mqlite_packet_decode(b, n, MQLITE_V5, 0, 268435459u, &used, &need, &err);
    CHECK(p == NULL);
    CHECK_EQ(err, MQLITE_ERR_PACKET_TOO_LARGE);
    mqlite_packet_free(p);

    /* Exactly at the limit: "30 0a ..." is 12 bytes in all. */
    static const char pub[] = "30 0a 00 03 61 2f 62 68 65 6c 6c 6f";
    n = tl_hex(pub, b, sizeof b);
    err = 12345;
    p = mqlite_packet_decode(b, 2, MQLITE_V311, 0, 12, &used, &need, &err);
    CHECK(p == NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(need, 12);
    err = 0;
    p = mqlite_packet_decode(b, 2, MQLITE_V311, 0, 11, &used, &need, &err);
    CHECK(p == NULL);
    CHECK_EQ(err, MQLITE_ERR_PACKET_TOO_LARGE);
    p = mqlite_packet_decode(b, n, MQLITE_V311, 0, 12, &used, &need, &err);
    CHECK(p != NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(used, 12);
    mqlite_packet_free(p);
}

/* ======================================================================
 * 3. Malformed packets and protocol errors, one rule per test
 * ====================================================================== */

/* ---- fixed header ---- */

/* MQTT 3.1.1 2.2.1 Table 2.1 and MQTT 5.0 2.1.2 Table 2-1: packet type 0 is
 * "Reserved" / "Forbidden". */
static void test_reserved_packet_type_0_is_malformed(void)
{
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V5; ver++)
        DEC_MAL("00 00", ver, MQLITE_ERR_PACKET_TYPE);
    DEC_MAL("00 00", 0, MQLITE_ERR_PACKET_TYPE);
}

/* MQTT 3.1.1 2.2.1 Table 2.1: type 15 is "Reserved" and "Forbidden" (AUTH
 * exists only from MQTT 5.0). */
static void test_auth_type_15_before_v5_is_malformed(void)
{
    DEC_MAL("f0 00", MQLITE_V311, MQLITE_ERR_PACKET_TYPE);
    DEC_MAL("f0 00", MQLITE_V31, MQLITE_ERR_PACKET_TYPE);
    DEC_MAL("f0 02 18 00", MQLITE_V311, MQLITE_ERR_PACKET_TYPE);
}

/* A minimal valid packet of every non-PUBLISH type, per level. */
typedef struct flagvec {
    int32_t type;
    const char *v3, *v5; /* v3: levels 3 and 4 */
    uint8_t flags;       /* the required nibble */
} flagvec;

static const flagvec FLAGVECS[] = {
    {MQLITE_PKT_CONNECT, "10 0c 00 04 4d 51 54 54 04 02 00 00 00 00",
     "10 0d 00 04 4d 51 54 54 05 02 00 00 00 00 00", 0},
    {MQLITE_PKT_CONNACK, "20 02 00 00", "20 03 00 00 00", 0},
    {MQLITE_PKT_PUBACK, "40 02 00 07", "40 02 00 07", 0},
    {MQLITE_PKT_PUBREC, "50 02 00 07", "50 02 00 07", 0},
    {MQLITE_PKT_PUBREL, "62 02 00 07", "62 02 00 07", 2},
    {MQLITE_PKT_PUBCOMP, "70 02 00 07", "70 02 00 07", 0},
    {MQLITE_PKT_SUBSCRIBE, "82 08 00 01 00 03 61 2f 62 00", "82 09 00 01 00 00 03 61 2f 62 00", 2},
    {MQLITE_PKT_SUBACK, "90 03 00 01 00", "90 04 00 01 00 00", 0},
    {MQLITE_PKT_UNSUBSCRIBE, "a2 07 00 01 00 03 61 2f 62", "a2 08 00 01 00 00 03 61 2f 62", 2},
    {MQLITE_PKT_UNSUBACK, "b0 02 00 01", "b0 04 00 01 00 00", 0},
    {MQLITE_PKT_PINGREQ, "c0 00", "c0 00", 0},
    {MQLITE_PKT_PINGRESP, "d0 00", "d0 00", 0},
    {MQLITE_PKT_DISCONNECT, "e0 00", "e0 00", 0},
    {MQLITE_PKT_AUTH, NULL, "f0 00", 0},
};

/* Decode vector v with its first byte's flag nibble replaced by each of the
 * 16 values: only `good` decodes, every other is MQLITE_ERR_HEADER_FLAGS. */
static void flags_line(int line, const char *h, int32_t ver, uint8_t good)
{
    size_t n;
    unsigned char *b = hex_dup(h, &n);
    for (unsigned f = 0; f < 16; f++) {
        unsigned char *c = malloc(n);
        if (!c)
            abort();
        memcpy(c, b, n);
        c[0] = (unsigned char)((c[0] & 0xf0) | f);
        size_t used = 0, need = 0;
        int32_t err = 12345;
        mqlite_packet *p = mqlite_packet_decode(c, n, ver, 0, 0, &used, &need, &err);
        int ok = f == good ? (p != NULL && err == 0)
                           : (p == NULL && err == MQLITE_ERR_HEADER_FLAGS &&
                              mqlite_error_is_malformed(err) && mqlite_error_reason(err) == 0x81);
        if (!ok)
            fprintf(stderr, "  line %d: first byte 0x%02x (level %d): %s\n", line, c[0], (int)ver,
                    p ? "decoded" : mqlite_error_name(err));
        ok_line(line, ok, "fixed header flags");
        mqlite_packet_free(p);
        free(c);
    }
    free(b);
}

static void flags_for_types(int line, const int32_t *types, size_t nt)
{
    for (size_t t = 0; t < nt; t++)
        for (size_t i = 0; i < NPROPS(FLAGVECS); i++) {
            const flagvec *fv = &FLAGVECS[i];
            if (fv->type != types[t])
                continue;
            /* Levels 4 and 5 only: MQTT 3.1 marks unused flag bits "x" and
             * sets DUP on retries (test_v31_retried_pubrel_subscribe_
             * unsubscribe_with_dup_decode). */
            if (fv->v3)
                flags_line(line, fv->v3, fv->type == MQLITE_PKT_CONNECT ? 0 : MQLITE_V311,
                           fv->flags);
            flags_line(line, fv->v5, fv->type == MQLITE_PKT_CONNECT ? 0 : MQLITE_V5, fv->flags);
        }
}

/* MQTT 3.1.1 [MQTT-2.2.2-1]: Where a flag bit is marked as "Reserved" in
 * Table 2.2 - Flag Bits, it is reserved for future use and MUST be set to the
 * value listed in that table. [MQTT-2.2.2-2]: If invalid flags are received,
 * the receiver MUST close the Network Connection.
 * MQTT 5.0 [MQTT-2.1.3-1]: Where a flag bit is marked as "Reserved", it is
 * reserved for future use and MUST be set to the value listed. */
static void test_reserved_header_flags_must_be_zero(void)
{
    static const int32_t types[] = {
        MQLITE_PKT_CONNECT,  MQLITE_PKT_CONNACK, MQLITE_PKT_PUBACK,
        MQLITE_PKT_PUBREC,   MQLITE_PKT_PUBCOMP, MQLITE_PKT_SUBACK,
        MQLITE_PKT_UNSUBACK, MQLITE_PKT_PINGREQ, MQLITE_PKT_PINGRESP,
    };
    flags_for_types(__LINE__, types, NPROPS(types));
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.6.1-1]: Bits 3,2,1 and 0 of the fixed header in
 * the PUBREL Control Packet are reserved and MUST be set to 0,0,1 and 0
 * respectively. The Server MUST treat any other value as malformed. */
static void test_pubrel_header_flags_must_be_0010(void)
{
    static const int32_t types[] = {MQLITE_PKT_PUBREL};
    flags_for_types(__LINE__, types, 1);
    DEC_MAL("60 02 00 07", MQLITE_V5, MQLITE_ERR_HEADER_FLAGS);
}

/* MQTT 3.1 (MQIsdp) 2.1 "DUP": "This flag is set when the client or server
 * attempts to re-deliver a PUBLISH, PUBREL, SUBSCRIBE or UNSUBSCRIBE message.
 * This applies to messages where the value of QoS is greater than zero (0)";
 * PUBREL 3.6: "Retries are handled in the same way as PUBLISH messages". So
 * at level 3 a retried PUBREL is 0x6A, SUBSCRIBE 0x8A, UNSUBSCRIBE 0xAA (the
 * 3.1.1 rule [MQTT-3.6.1-1] etc. that fixes these bits to 0010 is new in
 * 3.1.1). */
static void test_v31_retried_pubrel_subscribe_unsubscribe_with_dup_decode(void)
{
    static const char *const retried[] = {"6a 02 00 07", "8a 08 00 01 00 03 61 2f 62 00",
                                          "aa 07 00 01 00 03 61 2f 62"};
    for (size_t i = 0; i < NPROPS(retried); i++) {
        int32_t err = dec_rc(retried[i], MQLITE_V31, 0);
        if (err)
            fprintf(stderr, "  MQTT 3.1 %s: %s\n", retried[i], mqlite_error_name(err));
        CHECK_EQ(err, 0);
        /* The same bytes are malformed from 3.1.1 on ([MQTT-3.6.1-1] etc.). */
        CHECK_EQ(dec_rc(retried[i], MQLITE_V311, 0), MQLITE_ERR_HEADER_FLAGS);
    }
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.8.1-1]: Bits 3,2,1 and 0 of the fixed header of
 * the SUBSCRIBE Control Packet are reserved and MUST be set to 0,0,1 and 0
 * respectively. The Server MUST treat any other value as malformed. */
static void test_subscribe_header_flags_must_be_0010(void)
{
    static const int32_t types[] = {MQLITE_PKT_SUBSCRIBE};
    flags_for_types(__LINE__, types, 1);
    DEC_MAL("80 08 00 01 00 03 61 2f 62 00", MQLITE_V311, MQLITE_ERR_HEADER_FLAGS);
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.10.1-1]: Bits 3,2,1 and 0 of the fixed header
 * of the UNSUBSCRIBE Control Packet are reserved and MUST be set to 0,0,1 and
 * 0 respectively. The Server MUST treat any other value as malformed. */
static void test_unsubscribe_header_flags_must_be_0010(void)
{
    static const int32_t types[] = {MQLITE_PKT_UNSUBSCRIBE};
    flags_for_types(__LINE__, types, 1);
    DEC_MAL("a0 07 00 01 00 03 61 2f 62", MQLITE_V311, MQLITE_ERR_HEADER_FLAGS);
}

/* MQTT 3.1.1 [MQTT-3.14.1-1]: The Server MUST validate that reserved bits
 * are set to zero and disconnect the Client if they are not zero.
 * MQTT 5.0 [MQTT-3.14.1-1]: The Client or Server MUST validate that reserved
 * bits are set to 0. If they are not zero it sends a DISCONNECT packet with
 * a Reason code of 0x81 (Malformed Packet). */
static void test_disconnect_header_flags_must_be_zero(void)
{
    static const int32_t types[] = {MQLITE_PKT_DISCONNECT};
    flags_for_types(__LINE__, types, 1);
}

/* MQTT 5.0 [MQTT-3.15.1-1]: Bits 3,2,1 and 0 of the Fixed Header of the AUTH
 * packet are reserved and MUST all be set to 0. The Client or Server MUST
 * treat any other value as malformed. */
static void test_auth_header_flags_must_be_zero(void)
{
    static const int32_t types[] = {MQLITE_PKT_AUTH};
    flags_for_types(__LINE__, types, 1);
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.3.1-4]: A PUBLISH Packet MUST NOT have both QoS
 * bits set to 1. (5.0 3.3.1.2: "it is a Malformed Packet".) */
static void test_publish_qos3_is_malformed(void)
{
    DEC_MAL("36 07 00 03 61 2f 62 00 01", MQLITE_V311, MQLITE_ERR_QOS3);
    DEC_MAL("3f 07 00 03 61 2f 62 00 01", MQLITE_V31, MQLITE_ERR_QOS3);
    DEC_MAL("36 08 00 03 61 2f 62 00 01 00", MQLITE_V5, MQLITE_ERR_QOS3);
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.3.1-2]: The DUP flag MUST be set to 0 for all
 * QoS 0 messages. */
static void test_publish_dup_with_qos0_is_malformed(void)
{
    DEC_MAL("38 05 00 03 61 2f 62", MQLITE_V311, MQLITE_ERR_HEADER_FLAGS);
    DEC_MAL("39 06 00 03 61 2f 62 00", MQLITE_V5, MQLITE_ERR_HEADER_FLAGS);
    /* DUP with QoS 1 is fine. */
    mqlite_packet *p = DEC("3a 07 00 03 61 2f 62 00 09", MQLITE_V311);
    CHECK_EQ(INT(p, DUP), 1);
    CHECK_EQ(INT(p, QOS), 1);
    CHECK_EQ(INT(p, PACKET_ID), 9);
    mqlite_packet_free(p);
}

/* ---- truncated and trailing ---- */

/* MQTT 5.0 1.2 Terminology, "Malformed Packet: A control packet that cannot
 * be parsed according to this specification": a field that runs past the
 * Remaining Length (3.1.1: the packet does not conform to chapter 3,
 * [MQTT-3.1.4-1] for CONNECT). */
static void test_truncated_fields_are_malformed(void)
{
    /* CONNECT: client id says 5 bytes, 2 left. */
    DEC_MAL("10 0e 00 04 4d 51 54 54 04 02 00 00 00 05 61 62", 0, MQLITE_ERR_TRUNCATED);
    /* CONNECT: no keep alive. */
    DEC_MAL("10 08 00 04 4d 51 54 54 04 02", 0, MQLITE_ERR_TRUNCATED);
    /* CONNECT: protocol name runs out. */
    DEC_MAL("10 04 00 04 4d 51", 0, MQLITE_ERR_TRUNCATED);
    /* CONNACK: one byte. */
    DEC_MAL("20 01 00", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    /* PUBLISH: topic says 5 bytes, 2 left. */
    DEC_MAL("30 04 00 05 61 2f", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    /* PUBLISH QoS 1: half a packet identifier. */
    DEC_MAL("32 06 00 03 61 2f 62 00", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    /* PUBACK: one byte. */
    DEC_MAL("40 01 00", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    DEC_MAL("62 01 00", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* SUBSCRIBE: no options byte after the filter. */
    DEC_MAL("82 07 00 01 00 03 61 2f 62", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    /* UNSUBSCRIBE: filter says 5 bytes, 1 left. */
    DEC_MAL("a2 05 00 01 00 05 61", MQLITE_V311, MQLITE_ERR_TRUNCATED);
    /* UNSUBACK: no packet identifier. */
    DEC_MAL("b0 00", MQLITE_V311, MQLITE_ERR_TRUNCATED);
}

/* MQTT 3.1.1 [MQTT-3.1.2-9]: If the Will Flag is set to 1, ... the Will
 * Topic and Will Message fields MUST be present in the payload.
 * MQTT 5.0 [MQTT-3.1.2-9]: If the Will Flag is set to 1, the Will Properties,
 * Will Topic, and Will Payload fields MUST be present in the Payload. */
static void test_connect_will_flag_without_will_fields_is_malformed(void)
{
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 06 00 00 00 00", 0, MQLITE_ERR_TRUNCATED);
    DEC_MAL("10 0f 00 04 4d 51 54 54 04 06 00 00 00 00 00 01 74", 0, MQLITE_ERR_TRUNCATED);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 06 00 00 00 00 00", 0, MQLITE_ERR_TRUNCATED);
}

/* MQTT 3.1.1 [MQTT-3.1.2-19]: If the User Name Flag is set to 1, a user name
 * MUST be present in the payload. MQTT 5.0 [MQTT-3.1.2-17]: If the User Name
 * Flag is set to 1, a User Name MUST be present in the Payload. */
static void test_connect_user_name_flag_without_user_name_is_malformed(void)
{
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 82 00 00 00 00", 0, MQLITE_ERR_TRUNCATED);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 82 00 00 00 00 00", 0, MQLITE_ERR_TRUNCATED);
}

/* MQTT 3.1.1 [MQTT-3.1.2-21]: If the Password Flag is set to 1, a password
 * MUST be present in the payload. MQTT 5.0 [MQTT-3.1.2-19]: If the Password
 * Flag is set to 1, a Password MUST be present in the Payload. */
static void test_connect_password_flag_without_password_is_malformed(void)
{
    DEC_MAL("10 0f 00 04 4d 51 54 54 04 c2 00 00 00 00 00 01 75", 0, MQLITE_ERR_TRUNCATED);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 42 00 00 00 00 00", 0, MQLITE_ERR_TRUNCATED);
}

/* MQTT 5.0 [MQTT-2.2.2-1]: If there are no properties, this MUST be
 * indicated by including a Property Length of zero. */
static void test_v5_missing_property_length_is_malformed(void)
{
    DEC_MAL("10 0a 00 04 4d 51 54 54 05 02 00 00", 0, MQLITE_ERR_TRUNCATED);
    DEC_MAL("20 02 00 00", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    DEC_MAL("30 05 00 03 61 2f 62", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    DEC_MAL("90 02 00 01", MQLITE_V5, MQLITE_ERR_TRUNCATED);
}

/* MQTT 3.1.1 [MQTT-3.1.2-18]: If the User Name Flag is set to 0, a user name
 * MUST NOT be present in the payload. */
static void test_connect_user_name_without_flag_is_trailing(void)
{
    DEC_MAL("10 0f 00 04 4d 51 54 54 04 02 00 00 00 00 00 01 75", 0, MQLITE_ERR_TRAILING);
}

/* MQTT 3.1.1 and 5.0, chapter 3: a packet without a payload ends after its
 * last variable header field, so more bytes inside the Remaining Length
 * cannot be parsed: a Malformed Packet (5.0 1.2). */
static void test_trailing_bytes_are_malformed(void)
{
    DEC_MAL("20 03 00 00 00", MQLITE_V311, MQLITE_ERR_TRAILING);
    DEC_MAL("20 04 00 00 00 ff", MQLITE_V5, MQLITE_ERR_TRAILING);
    DEC_MAL("40 03 00 07 00", MQLITE_V311, MQLITE_ERR_TRAILING);
    DEC_MAL("40 05 00 07 00 00 ff", MQLITE_V5, MQLITE_ERR_TRAILING);
    DEC_MAL("b0 03 00 0b 00", MQLITE_V311, MQLITE_ERR_TRAILING);
    DEC_MAL("c0 01 00", MQLITE_V311, MQLITE_ERR_TRAILING);
    DEC_MAL("d0 01 00", MQLITE_V5, MQLITE_ERR_TRAILING);
    /* MQTT 3.1.1 3.14: DISCONNECT has no variable header and no payload. */
    DEC_MAL("e0 01 00", MQLITE_V311, MQLITE_ERR_TRAILING);
    DEC_MAL("e0 03 00 00 ff", MQLITE_V5, MQLITE_ERR_TRAILING);
    DEC_MAL("f0 03 18 00 ff", MQLITE_V5, MQLITE_ERR_TRAILING);
}

/* ---- UTF-8 ---- */

typedef struct utf8case {
    const char *what, *tmpl; /* tmpl holds "%s" where a 3-byte string goes */
    int32_t ver;
} utf8case;

/* Every UTF-8 field that the codec reads, each with room for 3 bytes. */
static const utf8case UTF8_FIELDS[] = {
    {"PUBLISH topic 3.1.1", "30 05 00 03 %s", MQLITE_V311},
    {"PUBLISH topic 5.0", "30 06 00 03 %s 00", MQLITE_V5},
    {"CONNECT client id", "10 0f 00 04 4d 51 54 54 04 02 00 00 00 03 %s", 0},
    {"CONNECT user name", "10 11 00 04 4d 51 54 54 04 82 00 00 00 00 00 03 %s", 0},
    {"CONNECT will topic", "10 13 00 04 4d 51 54 54 04 06 00 00 00 00 00 03 %s 00 00", 0},
    {"CONNECT Authentication Method", "10 13 00 04 4d 51 54 54 05 02 00 00 06 15 00 03 %s 00 00",
     0},
    {"PUBLISH Content Type", "30 0c 00 03 61 2f 62 06 03 00 03 %s", MQLITE_V5},
    {"PUBACK Reason String", "40 0a 00 07 00 06 1f 00 03 %s", MQLITE_V5},
    {"User Property key", "30 0f 00 03 61 2f 62 09 26 00 03 %s 00 01 76", MQLITE_V5},
    {"User Property value", "30 0f 00 03 61 2f 62 09 26 00 01 6b 00 03 %s", MQLITE_V5},
    {"SUBSCRIBE topic filter", "82 08 00 01 00 03 %s 00", MQLITE_V311},
    {"UNSUBSCRIBE topic filter", "a2 07 00 01 00 03 %s", MQLITE_V311},
};

static void utf8_line(int line, const char *bad, int32_t loose, int32_t strict)
{
    for (size_t i = 0; i < NPROPS(UTF8_FIELDS); i++) {
        char h[256];
        splice(h, sizeof h, UTF8_FIELDS[i].tmpl, bad);
        int32_t l = dec_rc(h, UTF8_FIELDS[i].ver, 0);
        int32_t s = dec_rc(h, UTF8_FIELDS[i].ver, MQLITE_DECODE_STRICT_UTF8);
        if (l != loose || s != strict)
            fprintf(stderr, "  line %d: %s with %s: got %s/%s, want %s/%s\n", line,
                    UTF8_FIELDS[i].what, bad, mqlite_error_name(l), mqlite_error_name(s),
                    mqlite_error_name(loose), mqlite_error_name(strict));
        ok_line(line, l == loose, UTF8_FIELDS[i].what);
        ok_line(line, s == strict, UTF8_FIELDS[i].what);
        ok_line(line, !l || (mqlite_error_is_malformed(l) && mqlite_error_reason(l) == 0x81),
                "UTF-8 errors are Malformed Packet (0x81)");
    }
}

/* The control vector: "abc" decodes in every field, loose and strict. */
static void test_utf8_fields_accept_valid_strings(void)
{
    utf8_line(__LINE__, "61 62 63", 0, 0);
    utf8_line(__LINE__, "c3 a9 61", 0, 0); /* U+00E9 */
    utf8_line(__LINE__, "e2 82 ac", 0, 0); /* U+20AC */
}

/* MQTT 3.1.1 [MQTT-1.5.3-1] / MQTT 5.0 [MQTT-1.5.4-1]: The character data in
 * a UTF-8 Encoded String MUST be well-formed UTF-8 as defined by the Unicode
 * specification and restated in RFC 3629. (5.0 1.5.4: "it is a Malformed
 * Packet".) */
static void test_utf8_ill_formed_is_malformed(void)
{
    utf8_line(__LINE__, "61 c3 28", MQLITE_ERR_UTF8, MQLITE_ERR_UTF8); /* bad continuation */
    utf8_line(__LINE__, "c0 af 61", MQLITE_ERR_UTF8, MQLITE_ERR_UTF8); /* overlong '/' */
    utf8_line(__LINE__, "61 62 ff", MQLITE_ERR_UTF8, MQLITE_ERR_UTF8); /* never valid */
    utf8_line(__LINE__, "61 e2 82", MQLITE_ERR_UTF8, MQLITE_ERR_UTF8); /* cut short */
}

/* MQTT 3.1.1 [MQTT-1.5.3-1] / 5.0 [MQTT-1.5.4-1]: "In particular, the
 * character data MUST NOT include encodings of code points between U+D800
 * and U+DFFF." */
static void test_utf8_surrogate_is_malformed(void)
{
    utf8_line(__LINE__, "ed a0 80", MQLITE_ERR_UTF8_SURROGATE, MQLITE_ERR_UTF8_SURROGATE);
    utf8_line(__LINE__, "ed bf bf", MQLITE_ERR_UTF8_SURROGATE, MQLITE_ERR_UTF8_SURROGATE);
}

/* MQTT 3.1.1 [MQTT-1.5.3-2] / 5.0 [MQTT-1.5.4-2]: A UTF-8 Encoded String
 * MUST NOT include an encoding of the null character U+0000. */
static void test_utf8_null_character_is_malformed(void)
{
    utf8_line(__LINE__, "61 00 62", MQLITE_ERR_UTF8_NULL, MQLITE_ERR_UTF8_NULL);
    utf8_line(__LINE__, "00 61 62", MQLITE_ERR_UTF8_NULL, MQLITE_ERR_UTF8_NULL);
}

/* MQTT 5.0 1.5.4 (3.1.1 1.5.3): control characters U+0001..U+001F,
 * U+007F..U+009F and non-characters SHOULD NOT be included; with
 * MQLITE_DECODE_STRICT_UTF8 they are refused, otherwise accepted. */
static void test_utf8_control_characters_refused_only_in_strict_mode(void)
{
    utf8_line(__LINE__, "61 01 62", 0, MQLITE_ERR_UTF8_CONTROL);
    utf8_line(__LINE__, "61 1f 62", 0, MQLITE_ERR_UTF8_CONTROL);
    utf8_line(__LINE__, "61 62 7f", 0, MQLITE_ERR_UTF8_CONTROL);
    utf8_line(__LINE__, "c2 85 61", 0, MQLITE_ERR_UTF8_CONTROL); /* U+0085 */
    utf8_line(__LINE__, "ef bf bf", 0, MQLITE_ERR_UTF8_CONTROL); /* U+FFFF */
}

/* MQTT 3.1.1 [MQTT-1.5.3-3] / 5.0 [MQTT-1.5.4-3]: A UTF-8 encoded sequence
 * 0xEF 0xBB 0xBF is always interpreted as U+FEFF ("ZERO WIDTH NO-BREAK
 * SPACE") wherever it appears in a string and MUST NOT be skipped over or
 * stripped off by a packet receiver. */
static void test_utf8_bom_is_kept_even_in_strict_mode(void)
{
    mqlite_packet *p = DECF("30 06 00 04 ef bb bf 74", MQLITE_V311, MQLITE_DECODE_STRICT_UTF8);
    CHECK_FIELD(p, TOPIC,
                "\xef\xbb\xbf"
                "t");
    mqlite_packet_free(p);
}

/* ---- MQTT 5.0 properties ---- */

/* MQTT 5.0 [MQTT-1.5.5-1] applies to every Variable Byte Integer: the
 * Property Length too. */
static void test_property_length_not_minimal_is_malformed(void)
{
    DEC_MAL("30 07 00 03 61 2f 62 80 00", MQLITE_V5, MQLITE_ERR_REMLEN_NOT_MINIMAL);
    DEC_MAL("20 04 00 00 80 00", MQLITE_V5, MQLITE_ERR_REMLEN_NOT_MINIMAL);
    /* Over four bytes (1.5.5). */
    DEC_MAL("30 0a 00 03 61 2f 62 ff ff ff ff 7f", MQLITE_V5, MQLITE_ERR_REMLEN_TOO_LONG);
}

/* MQTT 5.0 [MQTT-1.5.5-1] and 2.2.2.1 ("The Identifier is encoded as a
 * Variable Byte Integer"): 0x81 0x00 is identifier 1 in a non-minimal form.
 * Both MQLITE_ERR_REMLEN_NOT_MINIMAL and MQLITE_ERR_PROPERTY_ID say Malformed
 * Packet (0x81); either is accepted. */
static void test_property_id_not_minimal_is_malformed(void)
{
    int32_t err = dec_rc("30 09 00 03 61 2f 62 03 81 00 01", MQLITE_V5, 0);
    CHECK(err == MQLITE_ERR_REMLEN_NOT_MINIMAL || err == MQLITE_ERR_PROPERTY_ID);
    CHECK_EQ(mqlite_error_is_malformed(err), 1);
    CHECK_EQ(mqlite_error_reason(err), 0x81);
}

/* MQTT 5.0 2.2.2.2: "A Control Packet which contains an Identifier which is
 * not valid for its packet type, or contains a value not of the specified
 * data type, is a Malformed Packet." Unknown identifiers: 0x04 and 128. */
static void test_unknown_property_id_is_malformed(void)
{
    DEC_MAL("30 08 00 03 61 2f 62 02 04 00", MQLITE_V5, MQLITE_ERR_PROPERTY_ID);
    DEC_MAL("30 08 00 03 61 2f 62 02 80 01", MQLITE_V5, MQLITE_ERR_PROPERTY_ID);
    DEC_MAL("20 05 00 00 02 00 00", MQLITE_V5, MQLITE_ERR_PROPERTY_ID);
    DEC_MAL("e0 04 00 02 2b 00", MQLITE_V5, MQLITE_ERR_PROPERTY_ID);
}

/* MQTT 5.0 2.2.2.2: an Identifier not valid for its packet type is a
 * Malformed Packet (Table 2-4 lists where each may appear). */
static void test_property_in_wrong_packet_is_malformed(void)
{
    /* Topic Alias in CONNECT. */
    DEC_MAL("10 10 00 04 4d 51 54 54 05 02 00 00 03 23 00 01 00 00", 0, MQLITE_ERR_PROPERTY_PACKET);
    /* Will Delay Interval among the CONNECT (not Will) properties. */
    DEC_MAL("10 12 00 04 4d 51 54 54 05 02 00 00 05 18 00 00 00 01 00 00", 0,
            MQLITE_ERR_PROPERTY_PACKET);
    /* Session Expiry Interval among the Will properties. */
    DEC_MAL("10 18 00 04 4d 51 54 54 05 06 00 00 00 00 00 05 11 00 00 00 01 00 01 74 00 00", 0,
            MQLITE_ERR_PROPERTY_PACKET);
    /* Reason String in PUBLISH. */
    DEC_MAL("30 0a 00 03 61 2f 62 04 1f 00 01 78", MQLITE_V5, MQLITE_ERR_PROPERTY_PACKET);
    /* Subscription Identifier in UNSUBSCRIBE. */
    DEC_MAL("a2 0a 00 01 02 0b 01 00 03 61 2f 62", MQLITE_V5, MQLITE_ERR_PROPERTY_PACKET);
    /* Maximum QoS in CONNECT. */
    DEC_MAL("10 0f 00 04 4d 51 54 54 05 02 00 00 02 24 01 00 00", 0, MQLITE_ERR_PROPERTY_PACKET);
    /* Session Expiry Interval in PUBACK. */
    DEC_MAL("40 09 00 07 00 05 11 00 00 00 01", MQLITE_V5, MQLITE_ERR_PROPERTY_PACKET);
    /* Authentication Method in DISCONNECT. */
    DEC_MAL("e0 07 00 05 15 00 02 61 62", MQLITE_V5, MQLITE_ERR_PROPERTY_PACKET);
}

/* MQTT 5.0 2.2.2.2: a value not of the specified data type is a Malformed
 * Packet: integers cut short by the end of the property block, strings
 * longer than the block, a Variable Byte Integer that is not minimal. */
static void test_property_value_of_wrong_length_is_malformed(void)
{
    /* Receive Maximum (Two Byte Integer) with one byte. */
    DEC_MAL("10 0f 00 04 4d 51 54 54 05 02 00 00 02 21 00 00 00", 0, MQLITE_ERR_TRUNCATED);
    /* Message Expiry Interval (Four Byte Integer) with three bytes. */
    DEC_MAL("30 0a 00 03 61 2f 62 04 02 00 00 01", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* Payload Format Indicator (Byte) with none. */
    DEC_MAL("30 07 00 03 61 2f 62 01 01", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* Content Type says 5 bytes, 1 left in the block. */
    DEC_MAL("30 0a 00 03 61 2f 62 04 03 00 05 61", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* User Property with a key and no value. */
    DEC_MAL("30 0a 00 03 61 2f 62 04 26 00 01 61", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* Subscription Identifier cut in the middle of its VBI. */
    DEC_MAL("30 08 00 03 61 2f 62 02 0b 80", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* Property Length longer than what is left of the packet. */
    DEC_MAL("30 08 00 03 61 2f 62 05 01 01", MQLITE_V5, MQLITE_ERR_TRUNCATED);
    /* Subscription Identifier 1 as 0x81 0x00 (5.0 [MQTT-1.5.5-1]). */
    DEC_MAL("82 0c 00 01 03 0b 81 00 00 03 61 2f 62 00", MQLITE_V5, MQLITE_ERR_PROPERTY_TYPE);
}

/* MQTT 5.0 3.x property definitions, e.g. 3.1.2.11.2: "It is a Protocol
 * Error to include the Session Expiry Interval more than once." */
static void test_duplicate_property_is_protocol_error(void)
{
    /* Session Expiry Interval twice in CONNECT. */
    DEC_PROTO("10 17 00 04 4d 51 54 54 05 02 00 00 0a 11 00 00 00 01 11 00 00 00 02 00 00", 0,
              MQLITE_ERR_PROPERTY_DUPLICATE);
    /* Topic Alias twice in PUBLISH (3.3.2.3.4). */
    DEC_PROTO("30 0c 00 03 61 2f 62 06 23 00 01 23 00 02", MQLITE_V5,
              MQLITE_ERR_PROPERTY_DUPLICATE);
    /* Reason String twice in PUBACK (3.4.2.2.2). */
    DEC_PROTO("40 0c 00 07 00 08 1f 00 01 78 1f 00 01 79", MQLITE_V5,
              MQLITE_ERR_PROPERTY_DUPLICATE);
    /* Maximum Packet Size twice in CONNACK (3.2.2.3.6). */
    DEC_PROTO("20 0d 00 00 0a 27 00 00 01 00 27 00 00 02 00", MQLITE_V5,
              MQLITE_ERR_PROPERTY_DUPLICATE);
    /* Payload Format Indicator twice in the Will properties (3.1.3.2.3). */
    DEC_PROTO("10 17 00 04 4d 51 54 54 05 06 00 00 00 00 00 04 01 00 01 01 00 01 74 00 00", 0,
              MQLITE_ERR_PROPERTY_DUPLICATE);
    /* User Property may repeat (3.3.2.3.7). */
    mqlite_packet *p =
        DEC("30 14 00 03 61 2f 62 0e 26 00 01 61 00 01 62 26 00 01 61 00 01 62", MQLITE_V5);
    CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), 2);
    mqlite_packet_free(p);
}

/* MQTT 5.0 3.3.2.3.8: "Multiple Subscription Identifiers will be included if
 * the publication is the result of a match to more than one subscription";
 * 3.8.2.1.2: "It is a Protocol Error to include the Subscription Identifier
 * more than once" in SUBSCRIBE. */
static void test_subscription_id_twice_allowed_in_publish_not_in_subscribe(void)
{
    mqlite_packet *p = DEC("30 0a 00 03 61 2f 62 04 0b 01 0b 02", MQLITE_V5);
    static const pexp two[] = {P_INT(SUBSCRIPTION_ID, 1), P_INT(SUBSCRIPTION_ID, 2)};
    CHECK_PROPS(mqlite_packet_props(p), two);
    mqlite_packet_free(p);
    DEC_PROTO("82 0d 00 01 04 0b 01 0b 02 00 03 61 2f 62 00", MQLITE_V5,
              MQLITE_ERR_PROPERTY_DUPLICATE);
}

/* MQTT 5.0 property values the spec forbids: Protocol Errors. */
static void test_forbidden_property_values_are_protocol_errors(void)
{
    /* 3.1.2.11.3: "It is a Protocol Error to include the Receive Maximum
     * value more than once or for it to have the value 0." */
    DEC_PROTO("10 10 00 04 4d 51 54 54 05 02 00 00 03 21 00 00 00 00", 0,
              MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 06 00 00 03 21 00 00", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    /* 3.1.2.11.4 / 3.2.2.3.6: "It is a Protocol Error to include the Maximum
     * Packet Size more than once, or for the value to be set to zero." */
    DEC_PROTO("10 12 00 04 4d 51 54 54 05 02 00 00 05 27 00 00 00 00 00 00", 0,
              MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 08 00 00 05 27 00 00 00 00", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    /* 3.3.2.3.8 / 3.8.2.1.2: "It is a Protocol Error if the Subscription
     * Identifier has a value of 0." */
    DEC_PROTO("30 09 00 03 61 2f 62 02 0b 00 78", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("82 0b 00 01 02 0b 00 00 03 61 2f 62 00", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    /* 3.1.2.11.7: Request Problem Information: "It is a Protocol Error to
     * include Request Problem Information more than once, or to have a value
     * other than 0 or 1." Same words for Request Response Information
     * (3.1.2.11.6). */
    DEC_PROTO("10 0f 00 04 4d 51 54 54 05 02 00 00 02 17 02 00 00", 0, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("10 0f 00 04 4d 51 54 54 05 02 00 00 02 19 02 00 00", 0, MQLITE_ERR_PROPERTY_VALUE);
    /* 3.2.2.3.4 Maximum QoS, 3.2.2.3.5 Retain Available, 3.2.2.3.11-13
     * Wildcard / Subscription Identifier / Shared Subscription Available:
     * "It is a Protocol Error to include ... more than once or to use a value
     * other than 0 or 1." */
    DEC_PROTO("20 05 00 00 02 24 02", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 05 00 00 02 25 02", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 05 00 00 02 28 02", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 05 00 00 02 29 02", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("20 05 00 00 02 2a 02", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    /* 3.3.2.3.2 Payload Format Indicator: 0 or 1 only (also in the Will). */
    DEC_PROTO("30 09 00 03 61 2f 62 02 01 02 78", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("10 15 00 04 4d 51 54 54 05 06 00 00 00 00 00 02 01 02 00 01 74 00 00", 0,
              MQLITE_ERR_PROPERTY_VALUE);
}

/* MQTT 5.0 [MQTT-3.3.2-8]: A sender MUST NOT send a PUBLISH packet containing
 * a Topic Alias which has the value 0. 3.3.4: "A Topic Alias value of 0 or
 * greater than the Maximum Topic Alias is a Protocol Error, the receiver uses
 * DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)". mqlite.h has
 * the precise code for it: MQLITE_ERR_TOPIC_ALIAS, "topic alias 0, above the
 * maximum, or unknown (0x94)". */
static void test_publish_topic_alias_0_is_topic_alias_invalid(void)
{
    DEC_ERR("30 0a 00 03 61 2f 62 03 23 00 00 78", MQLITE_V5, 0, MQLITE_ERR_TOPIC_ALIAS, 0, 0x94);
}

/* MQTT 5.0 [MQTT-3.3.2-14]: The Response Topic MUST NOT contain wildcard
 * characters. */
static void test_response_topic_with_wildcard_is_refused(void)
{
    DEC_PROTO("30 0d 00 03 61 2f 62 06 08 00 03 61 2f 23 78", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    DEC_PROTO("30 0d 00 03 61 2f 62 06 08 00 03 61 2b 62 78", MQLITE_V5, MQLITE_ERR_PROPERTY_VALUE);
    /* In the Will properties too. */
    DEC_PROTO("10 19 00 04 4d 51 54 54 05 06 00 00 00 00 00 06 08 00 03 61 2f 2b 00 01 74 00 00", 0,
              MQLITE_ERR_PROPERTY_VALUE);
}

/* ---- CONNECT ---- */

/* MQTT 3.1.1 and 5.0 [MQTT-3.1.2-3]: The Server MUST validate that the
 * reserved flag in the CONNECT packet is set to 0. (5.0: "If the reserved
 * flag is not 0 it is a Malformed Packet.") */
static void test_connect_reserved_flag_is_malformed(void)
{
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 03 00 00 00 00", 0, MQLITE_ERR_CONNECT_RESERVED);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 03 00 00 00 00 00", 0, MQLITE_ERR_CONNECT_RESERVED);
    DEC_MAL("10 0e 00 06 4d 51 49 73 64 70 03 01 00 00 00 00", 0, MQLITE_ERR_CONNECT_RESERVED);
}

/* MQTT 3.1.1 [MQTT-3.1.2-14]: If the Will Flag is set to 1, the value of
 * Will QoS can be 0 (0x00), 1 (0x01), or 2 (0x02). It MUST NOT be 3 (0x03).
 * MQTT 5.0 [MQTT-3.1.2-12] (same), 3.1.2.6: "A value of 3 (0x03) is a
 * Malformed Packet." */
static void test_connect_will_qos3_is_malformed(void)
{
    DEC_MAL("10 11 00 04 4d 51 54 54 04 1e 00 00 00 00 00 01 74 00 00", 0, MQLITE_ERR_WILL_QOS3);
    DEC_MAL("10 13 00 04 4d 51 54 54 05 1e 00 00 00 00 00 00 00 01 74 00 00", 0,
            MQLITE_ERR_WILL_QOS3);
}

/* MQTT 3.1.1 [MQTT-3.1.2-13]: If the Will Flag is set to 0, then the Will
 * QoS MUST be set to 0 (0x00). [MQTT-3.1.2-15]: If the Will Flag is set to 0,
 * then the Will Retain Flag MUST be set to 0. MQTT 5.0 [MQTT-3.1.2-11] and
 * [MQTT-3.1.2-13]: the same. */
static void test_connect_will_qos_or_retain_without_will_flag_is_malformed(void)
{
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 0a 00 00 00 00", 0, MQLITE_ERR_WILL_FLAGS);
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 12 00 00 00 00", 0, MQLITE_ERR_WILL_FLAGS);
    DEC_MAL("10 0c 00 04 4d 51 54 54 04 22 00 00 00 00", 0, MQLITE_ERR_WILL_FLAGS);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 22 00 00 00 00 00", 0, MQLITE_ERR_WILL_FLAGS);
    DEC_MAL("10 0d 00 04 4d 51 54 54 05 0a 00 00 00 00 00", 0, MQLITE_ERR_WILL_FLAGS);
}

/* MQTT 3.1.1 [MQTT-3.1.2-22]: If the User Name Flag is set to 0, the
 * Password Flag MUST be set to 0. (MQTT 3.1 has the same rule; 5.0 dropped
 * it: test_connect_v5_password_without_user_name_is_allowed.) */
static void test_connect_v311_password_without_user_name_is_malformed(void)
{
    DEC_MAL("10 10 00 04 4d 51 54 54 04 42 00 00 00 00 00 02 70 77", 0,
            MQLITE_ERR_PASSWORD_NO_USER);
    DEC_MAL("10 12 00 06 4d 51 49 73 64 70 03 42 00 00 00 00 00 02 70 77", 0,
            MQLITE_ERR_PASSWORD_NO_USER);
}

/* MQTT 3.1.1 [MQTT-3.1.2-1]: If the protocol name is incorrect the Server
 * MAY disconnect the Client... MQTT 5.0 [MQTT-3.1.2-1]: The protocol name
 * MUST be the UTF-8 String "MQTT". */
static void test_connect_wrong_protocol_name_is_refused(void)
{
    DEC_MAL("10 0c 00 04 4d 51 54 58 04 02 00 00 00 00", 0, MQLITE_ERR_PROTOCOL_NAME);
    DEC_MAL("10 0c 00 04 6d 71 74 74 04 02 00 00 00 00", 0, MQLITE_ERR_PROTOCOL_NAME);
    DEC_MAL("10 0d 00 05 4d 51 54 54 00 05 02 00 00 00 00", 0, MQLITE_ERR_PROTOCOL_NAME);
    DEC_MAL("10 08 00 00 04 02 00 00 00 00", 0, MQLITE_ERR_PROTOCOL_NAME);
}

static void protocol_level_line(int line, const char *h, int level)
{
    dec_err_line(line, h, 0, 0, MQLITE_ERR_PROTOCOL_LEVEL, 0, 0x84);
    /* The level the client asked for is reported, so that the server can
     * answer in a CONNACK that client understands. */
    size_t n, used = 0, need = 0;
    unsigned char *b = hex_dup(h, &n);
    mq_decode_opts o;
    memset(&o, 0, sizeof o);
    mq_packet k;
    memset(&k, 0, sizeof k);
    int rc = mq_decode(b, n, &o, &k, &used, &need, NULL);
    ok_line(line, rc == MQLITE_ERR_PROTOCOL_LEVEL, "mq_decode: MQLITE_ERR_PROTOCOL_LEVEL");
    ok_line(line, k.version == level, "mq_decode: out->version is the requested level");
    free(b);
}

/* MQTT 3.1.1 [MQTT-3.1.2-2]: The Server MUST respond to the CONNECT Packet
 * with a CONNACK return code 0x01 (unacceptable protocol level) and then
 * disconnect the Client if the Protocol Level is not supported by the
 * Server. MQTT 5.0 [MQTT-3.1.2-2]: ... the Server MAY send a CONNACK packet
 * with Reason Code 0x84 (Unsupported Protocol Version). */
static void test_connect_unsupported_level_reports_the_level(void)
{
    protocol_level_line(__LINE__, "10 0c 00 04 4d 51 54 54 06 02 00 00 00 00", 6);
    protocol_level_line(__LINE__, "10 0c 00 04 4d 51 54 54 00 02 00 00 00 00", 0x00);
    protocol_level_line(__LINE__, "10 0c 00 04 4d 51 54 54 ff 02 00 00 00 00", 0xff);
    /* "MQTT" is the name of levels 4 and 5 only. */
    protocol_level_line(__LINE__, "10 0c 00 04 4d 51 54 54 03 02 00 00 00 00", 3);
}

/* MQTT 3.1 ("MQIsdp") is level 3 only: "MQIsdp" with level 4 is not a
 * protocol this library speaks (3.1.1 [MQTT-3.1.2-1], [MQTT-3.1.2-2]). */
static void test_connect_mqisdp_with_level_4_is_refused(void)
{
    protocol_level_line(__LINE__, "10 0e 00 06 4d 51 49 73 64 70 04 02 00 00 00 00", 4);
    protocol_level_line(__LINE__, "10 0e 00 06 4d 51 49 73 64 70 05 02 00 00 00 00", 5);
}

/* MQTT 3.1.1 [MQTT-3.1.3-10] (Will Topic is a UTF-8 string) with
 * [MQTT-4.7.1-1] / MQTT 5.0 [MQTT-3.1.3-11] with [MQTT-4.7.0-1]: the Will
 * Topic is a Topic Name, so no wildcards and not empty. */
static void test_connect_will_topic_must_be_a_topic_name(void)
{
    DEC_ERR("10 13 00 04 4d 51 54 54 04 06 00 00 00 00 00 03 61 2f 23 00 00", 0, 0,
            MQLITE_ERR_TOPIC_NAME, 1, 0x90);
    DEC_ERR("10 10 00 04 4d 51 54 54 04 06 00 00 00 00 00 00 00 00", 0, 0, MQLITE_ERR_TOPIC_NAME, 1,
            0x90);
}

/* ---- CONNACK ---- */

/* MQTT 3.1.1 3.2.2.1 (no statement id): "Bits 7-1 are reserved and MUST be
 * set to 0." MQTT 5.0 [MQTT-3.2.2-1]: Byte 1 is the "Connect Acknowledge
 * Flags". Bits 7-1 are reserved and MUST be set to 0. MQTT 3.1 has no
 * Session Present bit: the whole byte is reserved. */
static void test_connack_reserved_flags_are_malformed(void)
{
    DEC_MAL("20 02 02 00", MQLITE_V311, MQLITE_ERR_CONNACK_FLAGS);
    DEC_MAL("20 02 80 00", MQLITE_V311, MQLITE_ERR_CONNACK_FLAGS);
    DEC_MAL("20 03 fe 00 00", MQLITE_V5, MQLITE_ERR_CONNACK_FLAGS);
    DEC_MAL("20 02 01 00", MQLITE_V31, MQLITE_ERR_CONNACK_FLAGS);
}

/* MQTT 3.1.1 [MQTT-3.2.2-4]: If a server sends a CONNACK packet containing a
 * non-zero return code it MUST set Session Present to 0. MQTT 5.0
 * [MQTT-3.2.2-6]: If a Server sends a CONNACK packet containing a non-zero
 * Reason Code it MUST set Session Present to 0. */
static void test_connack_session_present_with_refusal_is_refused(void)
{
    DEC_MAL("20 02 01 05", MQLITE_V311, MQLITE_ERR_CONNACK_FLAGS);
    DEC_MAL("20 03 01 80 00", MQLITE_V5, MQLITE_ERR_CONNACK_FLAGS);
}

/* MQTT 3.1.1 3.2.2.3 Table 3.1: return codes 6-255 are "Reserved for future
 * use"; [MQTT-3.2.2-6] only lets the Server use the listed ones. */
static void test_connack_v311_return_code_6_is_refused(void)
{
    DEC_PROTO("20 02 00 06", MQLITE_V311, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("20 02 00 80", MQLITE_V311, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("20 02 00 06", MQLITE_V31, MQLITE_ERR_REASON_CODE);
}

/* ---- packet identifiers ---- */

/* MQTT 3.1.1 [MQTT-2.3.1-1]: SUBSCRIBE, UNSUBSCRIBE, and PUBLISH (in cases
 * where QoS > 0) Control Packets MUST contain a non-zero 16-bit Packet
 * Identifier. MQTT 5.0 [MQTT-2.2.1-3] / [MQTT-2.2.1-4]: ... it MUST assign it
 * a non-zero Packet Identifier that is currently unused. */
static void test_packet_id_0_is_refused_in_publish_subscribe_unsubscribe(void)
{
    DEC_PROTO("32 07 00 03 61 2f 62 00 00", MQLITE_V311, MQLITE_ERR_PACKET_ID_ZERO);
    DEC_PROTO("34 08 00 03 61 2f 62 00 00 00", MQLITE_V5, MQLITE_ERR_PACKET_ID_ZERO);
    DEC_PROTO("82 08 00 00 00 03 61 2f 62 00", MQLITE_V311, MQLITE_ERR_PACKET_ID_ZERO);
    DEC_PROTO("82 09 00 00 00 00 03 61 2f 62 00", MQLITE_V5, MQLITE_ERR_PACKET_ID_ZERO);
    DEC_PROTO("a2 07 00 00 00 03 61 2f 62", MQLITE_V311, MQLITE_ERR_PACKET_ID_ZERO);
    DEC_PROTO("a2 08 00 00 00 00 03 61 2f 62", MQLITE_V5, MQLITE_ERR_PACKET_ID_ZERO);
}

/* MQTT 3.1.1 [MQTT-2.3.1-6] / [MQTT-2.3.1-7], MQTT 5.0 [MQTT-2.2.1-5] /
 * [MQTT-2.2.1-6]: acknowledgements carry the (non-zero) Packet Identifier of
 * the packet they acknowledge, so 0 can never be right. */
static void test_packet_id_0_is_refused_in_acks(void)
{
    static const char *const v311[] = {"40 02 00 00", "50 02 00 00",    "62 02 00 00",
                                       "70 02 00 00", "90 03 00 00 00", "b0 02 00 00"};
    static const char *const v5[] = {"40 02 00 00", "50 03 00 00 10",    "62 02 00 00",
                                     "70 02 00 00", "90 04 00 00 00 00", "b0 04 00 00 00 00"};
    for (size_t i = 0; i < NPROPS(v311); i++) {
        DEC_PROTO(v311[i], MQLITE_V311, MQLITE_ERR_PACKET_ID_ZERO);
        DEC_PROTO(v5[i], MQLITE_V5, MQLITE_ERR_PACKET_ID_ZERO);
    }
}

/* ---- SUBSCRIBE / UNSUBSCRIBE payloads ---- */

/* MQTT 3.1.1 [MQTT-3.8.3-3]: The payload of a SUBSCRIBE packet MUST contain
 * at least one Topic Filter / QoS pair. A SUBSCRIBE packet with no payload is
 * a protocol violation. MQTT 5.0 [MQTT-3.8.3-2]: The Payload MUST contain at
 * least one Topic Filter and Subscription Options pair; 3.8.3: "A SUBSCRIBE
 * packet with no Payload is a Protocol Error." (0x82, not 0x81) */
static void test_empty_subscribe_is_protocol_error(void)
{
    DEC_PROTO("82 02 00 01", MQLITE_V311, MQLITE_ERR_SUBSCRIBE_EMPTY);
    DEC_PROTO("82 03 00 01 00", MQLITE_V5, MQLITE_ERR_SUBSCRIBE_EMPTY);
}

/* MQTT 3.1.1 [MQTT-3.10.3-2]: The Payload of an UNSUBSCRIBE packet MUST
 * contain at least one Topic Filter. An UNSUBSCRIBE packet with no payload is
 * a protocol violation. MQTT 5.0 [MQTT-3.10.3-2] (same); 3.10.3: "An
 * UNSUBSCRIBE packet with no Payload is a Protocol Error." */
static void test_empty_unsubscribe_is_protocol_error(void)
{
    DEC_PROTO("a2 02 00 01", MQLITE_V311, MQLITE_ERR_UNSUBSCRIBE_EMPTY);
    DEC_PROTO("a2 03 00 01 00", MQLITE_V5, MQLITE_ERR_UNSUBSCRIBE_EMPTY);
}

/* MQTT 3.1.1 [MQTT-3.8.3-4] (printed "[MQTT-3-8.3-4]"): The Server MUST treat
 * a SUBSCRIBE packet as malformed and close the Network Connection if any of
 * Reserved bits in the payload are non-zero, or QoS is not 0,1 or 2. Bits
 * 7-2 of the Requested QoS byte are reserved in 3.1.1 (and 3.1). */
static void test_v311_subscription_options_reserved_bits_are_malformed(void)
{
    static const char *const opts[] = {"04", "08", "10", "20", "40", "80", "fc"};
    for (size_t i = 0; i < NPROPS(opts); i++) {
        char h[64];
        splice(h, sizeof h, "82 08 00 01 00 03 61 2f 62 %s", opts[i]);
        DEC_MAL(h, MQLITE_V311, MQLITE_ERR_SUB_OPTIONS);
        DEC_MAL(h, MQLITE_V31, MQLITE_ERR_SUB_OPTIONS);
    }
}

/* MQTT 3.1.1 [MQTT-3.8.3-4]: ... or QoS is not 0,1 or 2 (malformed). */
static void test_v311_subscribe_qos3_is_malformed(void)
{
    DEC_MAL("82 08 00 01 00 03 61 2f 62 03", MQLITE_V311, MQLITE_ERR_SUB_QOS3);
}

/* MQTT 5.0 [MQTT-3.8.3-5]: The Server MUST treat a SUBSCRIBE packet as
 * malformed if any of Reserved bits in the Payload are non-zero (bits 6 and
 * 7 of the Subscription Options). */
static void test_v5_subscription_options_reserved_bits_are_malformed(void)
{
    DEC_MAL("82 09 00 01 00 00 03 61 2f 62 40", MQLITE_V5, MQLITE_ERR_SUB_OPTIONS);
    DEC_MAL("82 09 00 01 00 00 03 61 2f 62 80", MQLITE_V5, MQLITE_ERR_SUB_OPTIONS);
    /* Bits 2-5 are options in 5.0. */
    mqlite_packet *p = DEC("82 09 00 01 00 00 03 61 2f 62 2e", MQLITE_V5);
    CHECK_EQ(mqlite_packet_options_at(p, 0), 0x2e);
    mqlite_packet_free(p);
}

/* MQTT 5.0 3.8.3.1 (no statement id): "It is a Protocol Error if the Maximum
 * QoS field has the value 3." (In 3.1.1 the same bits are malformed:
 * test_v311_subscribe_qos3_is_malformed.) */
static void test_v5_subscribe_qos3_is_protocol_error(void)
{
    int32_t err = dec_rc("82 09 00 01 00 00 03 61 2f 62 03", MQLITE_V5, 0);
    CHECK_EQ(err, MQLITE_ERR_SUB_QOS_INVALID);
    CHECK_EQ(mqlite_error_is_malformed(err), 0);
    CHECK_EQ(mqlite_error_reason(err), 0x82);
}

/* MQTT 5.0 3.8.3.1 (no statement id): "It is a Protocol Error to send a
 * Retain Handling value of 3." */
static void test_v5_retain_handling_3_is_protocol_error(void)
{
    DEC_PROTO("82 09 00 01 00 00 03 61 2f 62 30", MQLITE_V5, MQLITE_ERR_RETAIN_HANDLING);
    DEC_PROTO("82 09 00 01 00 00 03 61 2f 62 31", MQLITE_V5, MQLITE_ERR_RETAIN_HANDLING);
}

/* MQTT 5.0 [MQTT-3.8.3-4]: It is a Protocol Error to set the No Local bit to
 * 1 on a Shared Subscription. */
static void test_v5_no_local_on_shared_subscription_is_protocol_error(void)
{
    DEC_PROTO("82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 61 04", MQLITE_V5,
              MQLITE_ERR_NO_LOCAL_SHARED);
    /* No Local on an ordinary filter, or a shared one without it, is fine. */
    mqlite_packet *p = DEC("82 09 00 01 00 00 03 61 2f 62 04", MQLITE_V5);
    mqlite_packet_free(p);
    p = DEC("82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 61 01", MQLITE_V5);
    mqlite_packet_free(p);
}

/* MQTT 3.1.1 [MQTT-4.7.1-2] / MQTT 5.0 [MQTT-4.7.1-1]: The multi-level
 * wildcard character MUST be specified either on its own or following a
 * topic level separator. In either case it MUST be the last character
 * specified in the Topic Filter. */
static void test_topic_filter_hash_not_last_is_refused(void)
{
    DEC_ERR("82 0a 00 01 00 05 61 2f 23 2f 62 00", MQLITE_V311, 0, MQLITE_ERR_TOPIC_FILTER, 1,
            0x8f);
    DEC_ERR("a2 09 00 01 00 05 61 2f 23 2f 62", MQLITE_V311, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("82 08 00 01 00 00 02 61 23 00", MQLITE_V5, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
}

/* MQTT 3.1.1 [MQTT-4.7.1-3] / MQTT 5.0 [MQTT-4.7.1-2]: The single-level
 * wildcard can be used at any level in the Topic Filter, including first
 * and last levels. Where it is used, it MUST occupy an entire level of the
 * filter. */
static void test_topic_filter_plus_not_whole_level_is_refused(void)
{
    DEC_ERR("82 07 00 01 00 02 61 2b 00", MQLITE_V311, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("a2 07 00 01 00 00 02 61 2b", MQLITE_V5, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("82 08 00 01 00 00 02 2b 61 00", MQLITE_V5, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
}

/* MQTT 5.0 [MQTT-4.8.2-1]: A Shared Subscription's Topic Filter MUST start
 * with $share/ and MUST contain a ShareName that is at least one character
 * long. [MQTT-4.8.2-2]: The ShareName MUST NOT contain the characters "/",
 * "+" or "#", but MUST be followed by a "/" character. This "/" character
 * MUST be followed by a Topic Filter. */
static void test_shared_subscription_filter_syntax_is_checked(void)
{
    DEC_ERR("82 0f 00 01 00 00 09 24 73 68 61 72 65 2f 2f 78 00", MQLITE_V5, 0,
            MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("a2 0e 00 01 00 00 09 24 73 68 61 72 65 2f 2f 78", MQLITE_V5, 0,
            MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    /* "$share/g" and "$share/g/": no filter after the ShareName. */
    DEC_ERR("82 0e 00 01 00 00 08 24 73 68 61 72 65 2f 67 00", MQLITE_V5, 0,
            MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("82 0f 00 01 00 00 09 24 73 68 61 72 65 2f 67 2f 00", MQLITE_V5, 0,
            MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    /* "$share/g+/x": '+' in the ShareName. */
    DEC_ERR("82 11 00 01 00 00 0b 24 73 68 61 72 65 2f 67 2b 2f 78 00", MQLITE_V5, 0,
            MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
}

/* MQTT 3.1.1 and 5.0 [MQTT-4.7.3-1]: All Topic Names and Topic Filters MUST
 * be at least one character long. */
static void test_empty_topic_filter_is_refused(void)
{
    DEC_ERR("82 05 00 01 00 00 00", MQLITE_V311, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
    DEC_ERR("a2 04 00 01 00 00", MQLITE_V311, 0, MQLITE_ERR_TOPIC_FILTER, 1, 0x8f);
}

/* ---- PUBLISH topic ---- */

/* MQTT 3.1.1 and 5.0 [MQTT-3.3.2-2]: The Topic Name in the PUBLISH Packet
 * MUST NOT contain wildcard characters. */
static void test_publish_topic_with_wildcard_is_refused(void)
{
    DEC_ERR("30 05 00 03 61 2f 2b", MQLITE_V311, 0, MQLITE_ERR_TOPIC_NAME, 1, 0x90);
    DEC_ERR("30 06 00 03 61 2f 23 00", MQLITE_V5, 0, MQLITE_ERR_TOPIC_NAME, 1, 0x90);
    DEC_ERR("30 03 00 01 23", MQLITE_V31, 0, MQLITE_ERR_TOPIC_NAME, 1, 0x90);
}

/* MQTT 3.1.1 [MQTT-4.7.3-1]: All Topic Names and Topic Filters MUST be at
 * least one character long. */
static void test_v311_empty_topic_name_is_refused(void)
{
    DEC_ERR("30 02 00 00", MQLITE_V311, 0, MQLITE_ERR_TOPIC_NAME, 1, 0x90);
    DEC_ERR("32 04 00 00 00 01", MQLITE_V31, 0, MQLITE_ERR_TOPIC_NAME, 1, 0x90);
}

/* MQTT 5.0 3.3.2.1 (no statement id): "It is a Protocol Error if the Topic
 * Name is zero length and there is no Topic Alias." The precise reason 0x90
 * (Topic Name invalid) is accepted as well as 0x82. */
static void test_v5_empty_topic_name_without_alias_is_refused(void)
{
    int32_t err = dec_rc("30 03 00 00 00", MQLITE_V5, 0);
    CHECK_EQ(err, MQLITE_ERR_TOPIC_NAME);
    CHECK(mqlite_error_reason(err) == 0x90 || mqlite_error_reason(err) == 0x82);
    /* Other properties do not stand in for a Topic Alias. */
    CHECK_EQ(dec_rc("30 05 00 00 02 01 01", MQLITE_V5, 0), MQLITE_ERR_TOPIC_NAME);
}

/* ---- return and reason codes ---- */

/* MQTT 3.1.1 [MQTT-3.9.3-2]: SUBACK return codes other than 0x00, 0x01, 0x02
 * and 0x80 are reserved and MUST NOT be used. */
static void test_v311_suback_reserved_return_code_is_malformed(void)
{
    DEC_MAL("90 03 00 01 03", MQLITE_V311, MQLITE_ERR_SUBACK_CODE);
    DEC_MAL("90 04 00 01 00 81", MQLITE_V311, MQLITE_ERR_SUBACK_CODE);
    for (int c = 0; c < 256; c++) {
        unsigned char b[] = {0x90, 0x03, 0x00, 0x01, (unsigned char)c};
        int32_t err = dec_bytes_rc(b, sizeof b, MQLITE_V311, 0);
        int valid = c <= 2 || c == 0x80;
        if ((err == 0) != valid)
            fprintf(stderr, "  3.1.1 SUBACK code 0x%02x: %s\n", c, mqlite_error_name(err));
        CHECK_EQ(err == 0, valid);
    }
}

/* MQTT 3.1.1 Table 3.1: CONNACK return codes 0..5 only (one loop). */
static void test_v311_connack_return_codes_0_to_5_only(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char b[] = {0x20, 0x02, 0x00, (unsigned char)c};
        int32_t err = dec_bytes_rc(b, sizeof b, MQLITE_V311, 0);
        CHECK_EQ(err == 0, c <= 5);
    }
}

/* MQTT 5.0 Table 2-6 (/work/shared/spec/README.md), per packet: the only
 * reason codes each packet may carry. */
static const uint8_t RC_CONNACK[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
                                     0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f};
static const uint8_t RC_PUBACK[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t RC_PUBREL[] = {0x00, 0x92};
static const uint8_t RC_SUBACK[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2};
static const uint8_t RC_UNSUBACK[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91};
static const uint8_t RC_DISCONNECT[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8c,
                                        0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
                                        0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2};
static const uint8_t RC_AUTH[] = {0x00, 0x18, 0x19};

static const struct {
    int32_t type;
    const uint8_t *codes;
    size_t n;
    unsigned char vec[8]; /* minimal 5.0 packet; the code goes at `at` */
    size_t len, at;
} RC_TABLE[] = {
    {MQLITE_PKT_CONNACK, RC_CONNACK, sizeof RC_CONNACK, {0x20, 0x03, 0x00, 0, 0x00}, 5, 3},
    {MQLITE_PKT_PUBACK, RC_PUBACK, sizeof RC_PUBACK, {0x40, 0x03, 0x00, 0x07, 0}, 5, 4},
    {MQLITE_PKT_PUBREC, RC_PUBACK, sizeof RC_PUBACK, {0x50, 0x04, 0x00, 0x07, 0, 0x00}, 6, 4},
    {MQLITE_PKT_PUBREL, RC_PUBREL, sizeof RC_PUBREL, {0x62, 0x03, 0x00, 0x07, 0}, 5, 4},
    {MQLITE_PKT_PUBCOMP, RC_PUBREL, sizeof RC_PUBREL, {0x70, 0x04, 0x00, 0x07, 0, 0x00}, 6, 4},
    {MQLITE_PKT_SUBACK, RC_SUBACK, sizeof RC_SUBACK, {0x90, 0x04, 0x00, 0x07, 0x00, 0}, 6, 5},
    {MQLITE_PKT_UNSUBACK, RC_UNSUBACK, sizeof RC_UNSUBACK, {0xb0, 0x04, 0x00, 0x07, 0x00, 0}, 6, 5},
    {MQLITE_PKT_DISCONNECT, RC_DISCONNECT, sizeof RC_DISCONNECT, {0xe0, 0x02, 0, 0x00}, 4, 2},
    {MQLITE_PKT_AUTH, RC_AUTH, sizeof RC_AUTH, {0xf0, 0x06, 0, 0x04, 0x15, 0x00, 0x01, 0x78}, 8, 2},
};

static int rc_allowed(size_t t, int c)
{
    for (size_t i = 0; i < RC_TABLE[t].n; i++)
        if (RC_TABLE[t].codes[i] == c)
            return 1;
    return 0;
}

/* MQTT 5.0 [MQTT-3.2.2-8] (CONNACK), [MQTT-3.4.2-1] (PUBACK), [MQTT-3.5.2-1]
 * (PUBREC), [MQTT-3.6.2-1] (PUBREL), [MQTT-3.7.2-1] (PUBCOMP), [MQTT-3.9.3-2]
 * (SUBACK), [MQTT-3.11.3-2] (UNSUBACK), [MQTT-3.14.2-1] (DISCONNECT),
 * [MQTT-3.15.2-1] (AUTH): the sender MUST use one of that packet's Reason
 * Codes. All 256 values, for every packet that carries one. */
static void test_v5_reason_codes_not_allowed_in_a_packet_are_refused(void)
{
    for (size_t t = 0; t < NPROPS(RC_TABLE); t++) {
        int bad = 0;
        for (int c = 0; c < 256; c++) {
            unsigned char b[8];
            memcpy(b, RC_TABLE[t].vec, sizeof b);
            b[RC_TABLE[t].at] = (unsigned char)c;
            int32_t err = dec_bytes_rc(b, RC_TABLE[t].len, MQLITE_V5, 0);
            int allowed = rc_allowed(t, c);
            int ok = allowed ? err == 0
                             : (err == MQLITE_ERR_REASON_CODE && !mqlite_error_is_malformed(err) &&
                                mqlite_error_reason(err) == 0x82);
            if (!ok && bad++ < 4)
                fprintf(stderr, "  %s reason 0x%02x: %s\n",
                        mqlite_packet_type_name(RC_TABLE[t].type), c,
                        err ? mqlite_error_name(err) : "accepted");
            CHECK(ok);
            /* The names agree with the table. */
            const char *s = mqlite_reason_string(RC_TABLE[t].type, c, MQLITE_V5);
            CHECK(s != NULL);
            CHECK_EQ(s && strcmp(s, "Unknown reason code") != 0, allowed);
        }
    }
    /* The examples of the brief, once more by name. */
    DEC_PROTO("40 03 00 07 04", MQLITE_V5, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("e0 01 01", MQLITE_V5, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("f0 02 01 00", MQLITE_V5, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("20 03 00 01 00", MQLITE_V5, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("90 04 00 01 00 03", MQLITE_V5, MQLITE_ERR_REASON_CODE);
    DEC_PROTO("b0 04 00 01 00 01", MQLITE_V5, MQLITE_ERR_REASON_CODE);
}

/* ---- direction and state ---- */

/* MQTT 3.1.1 2.2.1 Table 2.1 / 5.0 2.1.2 Table 2-1 "Direction of flow": a
 * server receives only Client-to-Server packets, a client only
 * Server-to-Client ones. */
static void test_role_checks_refuse_packets_of_the_wrong_direction(void)
{
    int32_t S = MQLITE_DECODE_SERVER, C = MQLITE_DECODE_CLIENT, E = MQLITE_ERR_UNEXPECTED_PACKET;
    /* A server receiving server-to-client packets. */
    DEC_ERR("20 02 00 00", MQLITE_V311, S, E, 0, 0x82);
    DEC_ERR("20 03 00 00 00", MQLITE_V5, S, E, 0, 0x82);
    DEC_ERR("90 03 00 01 00", MQLITE_V311, S, E, 0, 0x82);
    DEC_ERR("b0 02 00 01", MQLITE_V311, S, E, 0, 0x82);
    DEC_ERR("d0 00", MQLITE_V5, S, E, 0, 0x82);
    /* A client receiving client-to-server packets. */
    DEC_ERR("82 08 00 01 00 03 61 2f 62 00", MQLITE_V311, C, E, 0, 0x82);
    DEC_ERR("a2 07 00 01 00 03 61 2f 62", MQLITE_V311, C, E, 0, 0x82);
    DEC_ERR("c0 00", MQLITE_V5, C, E, 0, 0x82);
    DEC_ERR(CONNECT_V311_MIN, MQLITE_V311, C, E, 0, 0x82);
    /* Both directions. */
    static const char *const both[] = {"30 06 00 03 61 2f 62 00",
                                       "40 02 00 07",
                                       "50 02 00 07",
                                       "62 02 00 07",
                                       "70 02 00 07",
                                       "e0 01 04",
                                       "f0 00"};
    for (size_t i = 0; i < NPROPS(both); i++) {
        CHECK_EQ(dec_rc(both[i], MQLITE_V5, S), 0);
        CHECK_EQ(dec_rc(both[i], MQLITE_V5, C), 0);
    }
    CHECK_EQ(dec_rc(CONNECT_V311_MIN, 0, S), 0);
    CHECK_EQ(dec_rc("20 02 00 00", MQLITE_V311, C), 0);
    CHECK_EQ(dec_rc("d0 00", MQLITE_V311, C), 0);
    CHECK_EQ(dec_rc("c0 00", MQLITE_V311, S), 0);
}

/* MQTT 3.1.1 2.2.1 Table 2.1: DISCONNECT is "Client to Server" only (5.0:
 * both directions). */
static void test_v311_client_receiving_disconnect_is_refused(void)
{
    DEC_ERR("e0 00", MQLITE_V311, MQLITE_DECODE_CLIENT, MQLITE_ERR_UNEXPECTED_PACKET, 0, 0x82);
    DEC_ERR("e0 00", MQLITE_V31, MQLITE_DECODE_CLIENT, MQLITE_ERR_UNEXPECTED_PACKET, 0, 0x82);
    CHECK_EQ(dec_rc("e0 00", MQLITE_V311, MQLITE_DECODE_SERVER), 0);
    CHECK_EQ(dec_rc("e0 00", MQLITE_V5, MQLITE_DECODE_CLIENT), 0);
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.1.0-1]: After a Network Connection is
 * established by a Client to a Server, the first Packet sent from the Client
 * to the Server MUST be a CONNECT Packet. Level 0 means "no CONNECT yet". */
static void test_non_connect_packet_with_level_0_is_refused(void)
{
    DEC_PROTO("c0 00", 0, MQLITE_ERR_UNEXPECTED_PACKET);
    DEC_PROTO("30 05 00 03 61 2f 62", 0, MQLITE_ERR_UNEXPECTED_PACKET);
    DEC_PROTO("82 08 00 01 00 03 61 2f 62 00", 0, MQLITE_ERR_UNEXPECTED_PACKET);
    DEC_PROTO("f0 00", 0, MQLITE_ERR_UNEXPECTED_PACKET);
}

/* MQTT 5.0 [MQTT-3.3.4-6]: A PUBLISH packet sent from a Client to a Server
 * MUST NOT contain a Subscription Identifier. A server decoder
 * (MQLITE_DECODE_SERVER) knows the packet came from a client. */
static void test_server_refuses_publish_with_subscription_id(void)
{
    static const char h[] = "30 09 00 03 61 2f 62 02 0b 01 78";
    CHECK_EQ(dec_rc(h, MQLITE_V5, MQLITE_DECODE_CLIENT), 0);
    int32_t err = dec_rc(h, MQLITE_V5, MQLITE_DECODE_SERVER);
    CHECK(err < 0);
    CHECK_EQ(mqlite_error_reason(err), 0x82);
}

/* MQTT 5.0 [MQTT-3.14.2-2]: The Session Expiry Interval MUST NOT be sent on a
 * DISCONNECT by the Server. A client decoder (MQLITE_DECODE_CLIENT) knows the
 * packet came from the server. */
static void test_client_refuses_disconnect_with_session_expiry(void)
{
    static const char h[] = "e0 07 00 05 11 00 00 00 01";
    CHECK_EQ(dec_rc(h, MQLITE_V5, MQLITE_DECODE_SERVER), 0);
    int32_t err = dec_rc(h, MQLITE_V5, MQLITE_DECODE_CLIENT);
    CHECK(err < 0);
    CHECK_EQ(mqlite_error_reason(err), 0x82);
}

/* ======================================================================
 * 4. The encoder refuses what the decoder refuses
 * ====================================================================== */

static void test_set_int_qos3_is_out_of_range(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    SET_INT(p, QOS, 1);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_QOS, 3), MQLITE_ERR_RANGE);
    CHECK(strstr(mqlite_packet_errmsg(p), "QOS") != NULL);
    CHECK_EQ(INT(p, QOS), 1); /* unchanged */
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_QOS, -1), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 65536), MQLITE_ERR_RANGE);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_RETAIN, 2), MQLITE_ERR_RANGE);
    mqlite_packet_free(p);

    p = NEW(CONNECT, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_WILL_QOS, 3), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_KEEPALIVE_S, 65536), MQLITE_ERR_RANGE);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    mqlite_packet_free(p);
}

static void test_set_int_field_not_in_packet_is_option_error(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_QOS, 1), MQLITE_ERR_OPTION);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(INT(p, QOS), MQLITE_ERR_OPTION);
    CHECK_EQ(INT(p, PACKET_ID), MQLITE_ERR_OPTION);
    /* Read-only fields. */
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_VERSION, 4), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_TYPE, 3), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_set_int(p, MQLITE_PF_HAS_USERNAME, 1), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_set_int(p, 999, 1), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_int(p, 999), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_PROTOCOL_NAME, "MQTT", 4), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "a", 1), MQLITE_ERR_OPTION);
    CHECK_EQ(INT(p, VERSION), MQLITE_V5);
    mqlite_packet_free(p);

    p = NEW(PUBLISH, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_will_props(p, NULL), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 0), MQLITE_ERR_OPTION);
    CHECK_EQ(mqlite_packet_add_reason(p, 0), MQLITE_ERR_OPTION);
    mqlite_packet_free(p);
}

/* MQTT 3.1.1 [MQTT-2.3.1-1] / 5.0 [MQTT-2.2.1-3]: the encoder too. */
static void test_encode_packet_id_0_is_refused(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    SET_STR(p, TOPIC, "a/b");
    SET_INT(p, QOS, 1);
    ENC_ERR(p, MQLITE_ERR_PACKET_ID_ZERO, "PUBLISH");
    size_t len = 777;
    unsigned char b[16];
    CHECK_EQ(mqlite_packet_encode(p, b, sizeof b, &len), MQLITE_ERR_PACKET_ID_ZERO);
    CHECK_EQ(len, 0);
    SET_INT(p, PACKET_ID, 1);
    ENC(p, "32 07 00 03 61 2f 62 00 01");
    mqlite_packet_free(p);

    static const int32_t types[] = {MQLITE_PKT_PUBACK,      MQLITE_PKT_PUBREC,    MQLITE_PKT_PUBREL,
                                    MQLITE_PKT_PUBCOMP,     MQLITE_PKT_SUBSCRIBE, MQLITE_PKT_SUBACK,
                                    MQLITE_PKT_UNSUBSCRIBE, MQLITE_PKT_UNSUBACK};
    for (int32_t ver = MQLITE_V311; ver <= MQLITE_V5; ver++)
        for (size_t i = 0; i < NPROPS(types); i++) {
            p = new_line(__LINE__, types[i], ver);
            if (types[i] == MQLITE_PKT_SUBSCRIBE)
                CHECK_EQ(mqlite_packet_add_topic(p, "a", 0), 0);
            if (types[i] == MQLITE_PKT_UNSUBSCRIBE)
                CHECK_EQ(mqlite_packet_add_topic(p, "a", 0), 0);
            if (types[i] == MQLITE_PKT_SUBACK || (types[i] == MQLITE_PKT_UNSUBACK && ver == 5))
                CHECK_EQ(mqlite_packet_add_reason(p, 0), 0);
            ENC_ERR(p, MQLITE_ERR_PACKET_ID_ZERO, NULL);
            mqlite_packet_free(p);
        }
}

/* MQTT 3.1.1 and 5.0 [MQTT-3.3.2-2]: setters check topic names at once. */
static void test_set_wildcard_topic_is_refused(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    SET_STR(p, TOPIC, "ok");
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "a/+", 3), MQLITE_ERR_TOPIC_NAME);
    CHECK(strstr(mqlite_packet_errmsg(p), "a/+") != NULL);
    CHECK_FIELD(p, TOPIC, "ok"); /* unchanged */
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "#", 1), MQLITE_ERR_TOPIC_NAME);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "a\0b", 3), MQLITE_ERR_UTF8_NULL);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "\xc3\x28", 2), MQLITE_ERR_UTF8);
    mqlite_packet_free(p);

    p = NEW(CONNECT, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_WILL_TOPIC, "w/#", 3), MQLITE_ERR_TOPIC_NAME);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(INT(p, WILL), 0);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_CLIENT_ID, "\xed\xa0\x80", 3),
             MQLITE_ERR_UTF8_SURROGATE);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_USERNAME, "u\0", 2), MQLITE_ERR_UTF8_NULL);
    CHECK_EQ(INT(p, HAS_USERNAME), 0);
    mqlite_packet_free(p);
}

/* MQTT 3.1.1 [MQTT-4.7.3-1]: empty topic names; 5.0 3.3.2.1: only with a
 * Topic Alias. */
static void test_encode_empty_topic_needs_alias(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "", 0), MQLITE_ERR_TOPIC_NAME);
    ENC_ERR(p, MQLITE_ERR_TOPIC_NAME, NULL); /* never set */
    mqlite_packet_free(p);

    p = NEW(PUBLISH, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, "", 0), 0);
    ENC_ERR(p, MQLITE_ERR_TOPIC_NAME, NULL);
    static const pexp other[] = {P_INT(MESSAGE_EXPIRY, 5)};
    SET_PROPS(p, other);
    ENC_ERR(p, MQLITE_ERR_TOPIC_NAME, NULL);
    mqlite_packet_free(p);
}

static void test_properties_on_v311_packet_are_unsupported(void)
{
    static const pexp props[] = {P_USER("a", "b")};
    mqlite_props *pr = props_build(__LINE__, props, NPROPS(props));
    for (int32_t ver = MQLITE_V31; ver <= MQLITE_V311; ver++) {
        mqlite_packet *p = new_line(__LINE__, MQLITE_PKT_PUBLISH, ver);
        CHECK_EQ(mqlite_packet_set_props(p, pr), MQLITE_ERR_UNSUPPORTED);
        CHECK(strstr(mqlite_packet_errmsg(p), "5.0") != NULL);
        CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), 0);
        /* An empty list (or NULL) is fine. */
        CHECK_EQ(mqlite_packet_set_props(p, NULL), 0);
        mqlite_packet_free(p);
        p = new_line(__LINE__, MQLITE_PKT_CONNECT, ver);
        CHECK_EQ(mqlite_packet_set_will_props(p, pr), MQLITE_ERR_UNSUPPORTED);
        CHECK(*mqlite_packet_errmsg(p) != '\0');
        mqlite_packet_free(p);
    }
    mqlite_props_free(pr);
}

/* MQTT 5.0 2.2.2.2 / Table 2-4: the setter refuses a property the packet may
 * not carry, naming it. */
static void test_set_property_not_allowed_in_packet_is_refused(void)
{
    static const pexp alias[] = {P_INT(TOPIC_ALIAS, 1)};
    mqlite_props *pr = props_build(__LINE__, alias, 1);
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_props(p, pr), MQLITE_ERR_PROPERTY_PACKET);
    CHECK(strstr(mqlite_packet_errmsg(p), "Topic Alias") != NULL);
    CHECK_EQ(mqlite_packet_set_will_props(p, pr), MQLITE_ERR_PROPERTY_PACKET);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    mqlite_packet_free(p);
    static const int32_t types[] = {MQLITE_PKT_PUBACK, MQLITE_PKT_SUBSCRIBE, MQLITE_PKT_PINGREQ,
                                    MQLITE_PKT_DISCONNECT, MQLITE_PKT_AUTH};
    for (size_t i = 0; i < NPROPS(types); i++) {
        p = new_line(__LINE__, types[i], MQLITE_V5);
        CHECK_EQ(mqlite_packet_set_props(p, pr), MQLITE_ERR_PROPERTY_PACKET);
        CHECK(*mqlite_packet_errmsg(p) != '\0');
        mqlite_packet_free(p);
    }
    mqlite_props_free(pr);

    /* Subscription Identifier twice: fine for PUBLISH, not for SUBSCRIBE. */
    static const pexp two[] = {P_INT(SUBSCRIPTION_ID, 1), P_INT(SUBSCRIPTION_ID, 2)};
    pr = props_build(__LINE__, two, 2);
    p = NEW(PUBLISH, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_props(p, pr), 0);
    mqlite_packet_free(p);
    p = NEW(SUBSCRIBE, MQLITE_V5);
    CHECK_EQ(mqlite_packet_set_props(p, pr), MQLITE_ERR_PROPERTY_DUPLICATE);
    mqlite_packet_free(p);
    mqlite_props_free(pr);
}

static void test_encode_buffer_too_small_reports_size(void)
{
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    SET_STR(p, TOPIC, "a/b");
    SET_STR(p, PAYLOAD, "hello");
    unsigned char b[32];
    memset(b, 0x5a, sizeof b);
    size_t len = 0;
    CHECK_EQ(mqlite_packet_encode(p, b, 11, &len), MQLITE_ERR_BUFFER);
    CHECK_EQ(len, 12);
    CHECK(strstr(mqlite_packet_errmsg(p), "12") != NULL);
    int untouched = 1;
    for (size_t i = 0; i < sizeof b; i++)
        untouched &= b[i] == 0x5a;
    CHECK(untouched);
    len = 0;
    CHECK_EQ(mqlite_packet_encode(p, NULL, 0, &len), MQLITE_ERR_BUFFER);
    CHECK_EQ(len, 12);
    CHECK_EQ(mqlite_packet_encode(p, b, 12, &len), 0);
    CHECK_EQ(len, 12);
    unsigned char want[12];
    tl_hex("30 0a 00 03 61 2f 62 68 65 6c 6c 6f", want, sizeof want);
    CHECK_MEM(b, len, want, sizeof want);
    mqlite_packet_free(p);
}

/* Every rule of section 3 that a setter can let through, refused at encode. */
static void test_encode_refuses_what_decode_refuses(void)
{
    /* MQTT 5.0 [MQTT-3.3.1-2] DUP with QoS 0. */
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    SET_STR(p, TOPIC, "t");
    SET_INT(p, DUP, 1);
    ENC_ERR(p, MQLITE_ERR_HEADER_FLAGS, "DUP");
    mqlite_packet_free(p);

    /* 3.1.1 [MQTT-3.1.2-22] password without user name. */
    p = NEW(CONNECT, MQLITE_V311);
    SET_STR(p, PASSWORD, "pw");
    ENC_ERR(p, MQLITE_ERR_PASSWORD_NO_USER, NULL);
    mqlite_packet_free(p);

    /* 3.1.1 [MQTT-3.1.2-13] will QoS without a will. */
    p = NEW(CONNECT, MQLITE_V311);
    SET_INT(p, WILL_QOS, 1);
    ENC_ERR(p, MQLITE_ERR_WILL_FLAGS, NULL);
    mqlite_packet_free(p);
    p = NEW(CONNECT, MQLITE_V5);
    SET_INT(p, WILL_RETAIN, 1);
    ENC_ERR(p, MQLITE_ERR_WILL_FLAGS, NULL);
    mqlite_packet_free(p);

    /* A will flag without a will topic. */
    p = NEW(CONNECT, MQLITE_V311);
    SET_INT(p, WILL, 1);
    ENC_ERR(p, MQLITE_ERR_TOPIC_NAME, NULL);
    mqlite_packet_free(p);

    /* 3.1.1 [MQTT-3.2.2-4] / 5.0 [MQTT-3.2.2-6] session present on a refusal;
     * MQTT 3.1 has no session present; 3.1.1 return code 6. */
    p = NEW(CONNACK, MQLITE_V311);
    SET_INT(p, SESSION_PRESENT, 1);
    SET_INT(p, REASON_CODE, 5);
    ENC_ERR(p, MQLITE_ERR_CONNACK_FLAGS, NULL);
    SET_INT(p, SESSION_PRESENT, 0);
    SET_INT(p, REASON_CODE, 6);
    ENC_ERR(p, MQLITE_ERR_REASON_CODE, NULL);
    mqlite_packet_free(p);
    p = NEW(CONNACK, MQLITE_V31);
    SET_INT(p, SESSION_PRESENT, 1);
    ENC_ERR(p, MQLITE_ERR_CONNACK_FLAGS, NULL);
    mqlite_packet_free(p);

    /* 5.0 reason codes not allowed in the packet. */
    static const struct {
        int32_t type, reason;
    } bad[] = {
        {MQLITE_PKT_CONNACK, 0x01},    {MQLITE_PKT_PUBACK, 0x04},  {MQLITE_PKT_PUBREC, 0x92},
        {MQLITE_PKT_PUBREL, 0x10},     {MQLITE_PKT_PUBCOMP, 0x80}, {MQLITE_PKT_DISCONNECT, 0x01},
        {MQLITE_PKT_DISCONNECT, 0x84}, {MQLITE_PKT_AUTH, 0x01},    {MQLITE_PKT_AUTH, 0x80}};
    for (size_t i = 0; i < NPROPS(bad); i++) {
        p = new_line(__LINE__, bad[i].type, MQLITE_V5);
        if (bad[i].type >= MQLITE_PKT_PUBACK && bad[i].type <= MQLITE_PKT_PUBCOMP)
            SET_INT(p, PACKET_ID, 1);
        else
            CHECK_EQ(INT(p, PACKET_ID), MQLITE_ERR_OPTION);
        SET_INT(p, REASON_CODE, bad[i].reason);
        ENC_ERR(p, MQLITE_ERR_REASON_CODE, NULL);
        mqlite_packet_free(p);
    }

    /* Reason codes in acks exist only in 5.0. */
    p = NEW(PUBACK, MQLITE_V311);
    SET_INT(p, PACKET_ID, 1);
    SET_INT(p, REASON_CODE, 0x10);
    ENC_ERR(p, MQLITE_ERR_UNSUPPORTED, "5.0");
    mqlite_packet_free(p);

    /* [MQTT-3.8.3-3] / [MQTT-3.10.3-2] empty lists. */
    p = NEW(SUBSCRIBE, MQLITE_V311);
    SET_INT(p, PACKET_ID, 1);
    ENC_ERR(p, MQLITE_ERR_SUBSCRIBE_EMPTY, NULL);
    mqlite_packet_free(p);
    p = NEW(UNSUBSCRIBE, MQLITE_V5);
    SET_INT(p, PACKET_ID, 1);
    ENC_ERR(p, MQLITE_ERR_UNSUBSCRIBE_EMPTY, NULL);
    mqlite_packet_free(p);
    p = NEW(SUBACK, MQLITE_V5);
    SET_INT(p, PACKET_ID, 1);
    int32_t rc = mqlite_packet_encode(p, NULL, 0, &(size_t){0});
    CHECK(rc < 0 && rc != MQLITE_ERR_BUFFER);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    mqlite_packet_free(p);
}

/* The list setters apply the SUBSCRIBE rules at once. */
static void test_add_topic_and_add_reason_validate(void)
{
    mqlite_packet *p = NEW(SUBSCRIBE, MQLITE_V311);
    CHECK_EQ(mqlite_packet_add_topic(p, "a/#/b", 0), MQLITE_ERR_TOPIC_FILTER);
    CHECK(strstr(mqlite_packet_errmsg(p), "a/#/b") != NULL);
    CHECK_EQ(mqlite_packet_add_topic(p, "a+", 0), MQLITE_ERR_TOPIC_FILTER);
    CHECK_EQ(mqlite_packet_add_topic(p, "", 0), MQLITE_ERR_TOPIC_FILTER);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 3), MQLITE_ERR_SUB_QOS3);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 0x04), MQLITE_ERR_SUB_OPTIONS);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 256), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_add_topic(p, NULL, 0), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_packet_count(p), 0);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    mqlite_packet_free(p);

    p = NEW(SUBSCRIBE, MQLITE_V5);
    CHECK_EQ(mqlite_packet_add_topic(p, "$share//x", 0), MQLITE_ERR_TOPIC_FILTER);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 0x30), MQLITE_ERR_RETAIN_HANDLING);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 0x40), MQLITE_ERR_SUB_OPTIONS);
    CHECK_EQ(mqlite_packet_add_topic(p, "$share/g/a", 0x04), MQLITE_ERR_NO_LOCAL_SHARED);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(mqlite_packet_add_topic(p, "$share/g/a", 0x01), 0);
    CHECK_EQ(mqlite_packet_count(p), 1);
    mqlite_packet_free(p);

    p = NEW(UNSUBSCRIBE, MQLITE_V5);
    CHECK_EQ(mqlite_packet_add_topic(p, "a", 1), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_add_topic(p, "a/#/b", 0), MQLITE_ERR_TOPIC_FILTER);
    mqlite_packet_free(p);

    p = NEW(SUBACK, MQLITE_V311);
    CHECK_EQ(mqlite_packet_add_reason(p, 3), MQLITE_ERR_SUBACK_CODE);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(mqlite_packet_add_reason(p, 256), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_add_reason(p, -1), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_count(p), 0);
    mqlite_packet_free(p);
    p = NEW(SUBACK, MQLITE_V5);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x04), MQLITE_ERR_REASON_CODE);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x11), MQLITE_ERR_REASON_CODE);
    mqlite_packet_free(p);
    p = NEW(UNSUBACK, MQLITE_V311);
    CHECK_EQ(mqlite_packet_add_reason(p, 0), MQLITE_ERR_OPTION);
    mqlite_packet_free(p);
    p = NEW(UNSUBACK, MQLITE_V5);
    CHECK_EQ(mqlite_packet_add_reason(p, 0x01), MQLITE_ERR_REASON_CODE);
    mqlite_packet_free(p);
}

/* Every reason code the 5.0 table allows encodes; every other is refused. */
static void test_v5_encoder_reason_codes_follow_the_table(void)
{
    for (size_t t = 0; t < NPROPS(RC_TABLE); t++) {
        int32_t type = RC_TABLE[t].type;
        int bad = 0;
        for (int c = 0; c < 256; c++) {
            mqlite_packet *p = new_line(__LINE__, type, MQLITE_V5);
            int32_t rc;
            if (type == MQLITE_PKT_SUBACK || type == MQLITE_PKT_UNSUBACK) {
                mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 7);
                rc = mqlite_packet_add_reason(p, c);
                if (rc == 0)
                    rc = mqlite_packet_encode(p, NULL, 0, &(size_t){0});
            } else {
                if (type >= MQLITE_PKT_PUBACK && type <= MQLITE_PKT_PUBCOMP)
                    mqlite_packet_set_int(p, MQLITE_PF_PACKET_ID, 7);
                if (type == MQLITE_PKT_AUTH) { /* 5.0 3.15.2.2.2 */
                    mqlite_props *pr = mqlite_props_new();
                    mqlite_props_add_str(pr, MQLITE_PROP_AUTH_METHOD, "x");
                    mqlite_packet_set_props(p, pr);
                    mqlite_props_free(pr);
                }
                mqlite_packet_set_int(p, MQLITE_PF_REASON_CODE, c);
                rc = mqlite_packet_encode(p, NULL, 0, &(size_t){0});
            }
            int allowed = rc_allowed(t, c);
            int ok = allowed ? rc == MQLITE_ERR_BUFFER : rc == MQLITE_ERR_REASON_CODE;
            if (!ok && bad++ < 4)
                fprintf(stderr, "  encode %s reason 0x%02x: %s\n", mqlite_packet_type_name(type), c,
                        mqlite_error_name(rc));
            CHECK(ok);
            mqlite_packet_free(p);
        }
    }
}

/* ======================================================================
 * 5. NOCOPY
 * ====================================================================== */

static void test_nocopy_accessors_point_into_the_input(void)
{
    unsigned char b[BUFSZ];
    size_t n = tl_hex(PUBLISH_V5_FULL, b, sizeof b), used = 0;
    int32_t err = 12345;
    mqlite_packet *p =
        mqlite_packet_decode(b, n, MQLITE_V5, MQLITE_DECODE_NOCOPY, 0, &used, NULL, &err);
    CHECK(p != NULL);
    CHECK_EQ(err, 0);
    size_t len = 0;
    const void *t = mqlite_packet_bytes(p, MQLITE_PF_TOPIC, &len);
    CHECK(t == b + 4);
    CHECK_EQ(len, 3);
    const void *pl = mqlite_packet_bytes(p, MQLITE_PF_PAYLOAD, &len);
    CHECK(pl == b + n - 2);
    CHECK_EQ(len, 2);
    /* Properties are always the list's own NUL-terminated copies. */
    const mqlite_props *pr = mqlite_packet_props(p);
    const unsigned char *v = mqlite_props_value(pr, 3, &len);
    CHECK(v != NULL && (v < b || v >= b + n));
    CHECK(v && v[len] == 0);
    mqlite_packet_free(p);

    n = tl_hex(CONNECT_V5_FULL, b, sizeof b);
    p = mqlite_packet_decode(b, n, 0, MQLITE_DECODE_NOCOPY, 0, &used, NULL, &err);
    CHECK(p != NULL);
    const unsigned char *cid = mqlite_packet_bytes(p, MQLITE_PF_CLIENT_ID, &len);
    CHECK(cid == b + 2 + 10 + 1 + 0x2f + 2);
    CHECK_EQ(len, 3);
    const unsigned char *name = mqlite_packet_bytes(p, MQLITE_PF_PROTOCOL_NAME, &len);
    CHECK(name == b + 4);
    CHECK_EQ(len, 4);
    const unsigned char *pw = mqlite_packet_bytes(p, MQLITE_PF_PASSWORD, &len);
    CHECK(pw == b + n - 2);
    mqlite_packet_free(p);

    n = tl_hex(SUBSCRIBE_V5, b, sizeof b);
    p = mqlite_packet_decode(b, n, MQLITE_V5, MQLITE_DECODE_NOCOPY, 0, &used, NULL, &err);
    CHECK(p != NULL);
    const char *f0 = mqlite_packet_topic_at(p, 0, &len);
    CHECK(f0 == (const char *)b + 15 + 2);
    CHECK_EQ(len, 3);
    /* Appending copies the list: the input may go away afterwards. */
    CHECK_EQ(mqlite_packet_add_topic(p, "e", 1), 0);
    memset(b, 0, sizeof b);
    CHECK_EQ(mqlite_packet_count(p), 4);
    CHECK_TOPIC_AT(p, 0, "a/b", 0x1d);
    CHECK_TOPIC_AT(p, 1, "$share/g/c", 0x22);
    CHECK_TOPIC_AT(p, 3, "e", 1);
    mqlite_packet_free(p);
}

static void test_copy_decode_owns_nul_terminated_copies(void)
{
    unsigned char b[BUFSZ];
    size_t n = tl_hex(CONNECT_V5_FULL, b, sizeof b), used = 0;
    int32_t err = 12345;
    mqlite_packet *p = mqlite_packet_decode(b, n, 0, 0, 0, &used, NULL, &err);
    CHECK(p != NULL);
    static const int32_t fields[] = {MQLITE_PF_CLIENT_ID,    MQLITE_PF_USERNAME,
                                     MQLITE_PF_PASSWORD,     MQLITE_PF_WILL_TOPIC,
                                     MQLITE_PF_WILL_PAYLOAD, MQLITE_PF_PROTOCOL_NAME};
    for (size_t i = 0; i < NPROPS(fields); i++) {
        size_t len = 0;
        const unsigned char *v = mqlite_packet_bytes(p, fields[i], &len);
        CHECK(v != NULL && (v < b || v >= b + n));
        CHECK(v && v[len] == 0);
    }
    memset(b, 0xff, sizeof b);
    CHECK_FIELD(p, CLIENT_ID, "cid");
    CHECK_FIELD(p, USERNAME, "user");
    CHECK_FIELD(p, WILL_PAYLOAD, "bye");
    CHECK_PROPS(mqlite_packet_will_props(p), CONNECT_V5_WILL_PROPS);
    mqlite_packet_free(p);

    n = tl_hex(SUBSCRIBE_V311, b, sizeof b);
    p = mqlite_packet_decode(b, n, MQLITE_V311, 0, 0, &used, NULL, &err);
    memset(b, 0xff, sizeof b);
    CHECK_TOPIC_AT(p, 0, "a/b", 1);
    CHECK_TOPIC_AT(p, 2, "+", 0);
    mqlite_packet_free(p);
}

/* ======================================================================
 * 6. Misuse
 * ====================================================================== */

static void test_null_handles_are_refused_without_crashing(void)
{
    size_t len = 777;
    unsigned char b[8];
    CHECK_EQ(mqlite_packet_encode(NULL, b, sizeof b, &len), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_int(NULL, MQLITE_PF_TYPE), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_set_int(NULL, MQLITE_PF_QOS, 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_set_bytes(NULL, MQLITE_PF_TOPIC, "a", 1), MQLITE_ERR_MISUSE);
    CHECK(mqlite_packet_bytes(NULL, MQLITE_PF_TOPIC, &len) == NULL);
    CHECK_EQ(len, 0);
    CHECK(mqlite_packet_props(NULL) == NULL);
    CHECK(mqlite_packet_will_props(NULL) == NULL);
    CHECK_EQ(mqlite_packet_set_props(NULL, NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_set_will_props(NULL, NULL), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_count(NULL), 0);
    CHECK_EQ(mqlite_packet_add_topic(NULL, "a", 0), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_packet_add_reason(NULL, 0), MQLITE_ERR_MISUSE);
    CHECK(mqlite_packet_topic_at(NULL, 0, &len) == NULL);
    CHECK_EQ(mqlite_packet_options_at(NULL, 0), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_packet_reason_at(NULL, 0), MQLITE_ERR_RANGE);
    CHECK_STR(mqlite_packet_errmsg(NULL), "");
    mqlite_packet_free(NULL);

    CHECK_EQ(mqlite_props_add_int(NULL, MQLITE_PROP_SESSION_EXPIRY, 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_add_str(NULL, MQLITE_PROP_CONTENT_TYPE, "x"), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_add_bytes(NULL, MQLITE_PROP_CORRELATION_DATA, "x", 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_add_pair(NULL, "k", "v"), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_count(NULL), 0);
    CHECK_EQ(mqlite_props_id(NULL, 0), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_int(NULL, 0), MQLITE_ERR_RANGE);
    CHECK(mqlite_props_value(NULL, 0, &len) == NULL);
    CHECK(mqlite_props_key(NULL, 0, &len) == NULL);
    CHECK_EQ(mqlite_props_find(NULL, MQLITE_PROP_USER, 0), MQLITE_ERR_NOT_FOUND);
    mqlite_props_free(NULL);

    /* Decoder arguments. */
    int32_t err = 0;
    CHECK(mqlite_packet_decode(b, 2, MQLITE_V311, 0, 0, NULL, NULL, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_INVALID);
    size_t used = 0, need = 0;
    CHECK(mqlite_packet_decode(NULL, 5, MQLITE_V311, 0, 0, &used, &need, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_INVALID);
    CHECK(mqlite_packet_decode(b, 2, 2, 0, 0, &used, &need, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_INVALID);
    CHECK(mqlite_packet_decode(b, 2, 6, 0, 0, &used, &need, &err) == NULL);
    CHECK_EQ(err, MQLITE_ERR_INVALID);
    err = 12345;
    CHECK(mqlite_packet_decode(NULL, 0, MQLITE_V311, 0, 0, &used, &need, &err) == NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(need, 1);
    /* err may be NULL. */
    tl_hex("c0 00", b, sizeof b);
    mqlite_packet *p = mqlite_packet_decode(b, 2, MQLITE_V311, 0, 0, &used, NULL, NULL);
    CHECK(p != NULL);
    mqlite_packet_free(p);
    CHECK(mqlite_packet_decode(b, 1, MQLITE_V311, 0, 0, &used, NULL, NULL) == NULL);

    /* Encoder without a length out-parameter. */
    p = NEW(PINGREQ, MQLITE_V311);
    CHECK_EQ(mqlite_packet_encode(p, b, sizeof b, NULL), MQLITE_ERR_MISUSE);
    mqlite_packet_free(p);
    p = NEW(PUBLISH, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, NULL, 3), MQLITE_ERR_INVALID);
    mqlite_packet_free(p);
}

static void test_packet_new_refuses_invalid_type_and_level(void)
{
    static const int32_t bad[][2] = {{0, MQLITE_V311},
                                     {16, MQLITE_V311},
                                     {-1, MQLITE_V5},
                                     {MQLITE_PKT_CONNECT, 2},
                                     {MQLITE_PKT_CONNECT, 6},
                                     {MQLITE_PKT_PUBLISH, 0},
                                     {MQLITE_PKT_AUTH, MQLITE_V311},
                                     {MQLITE_PKT_AUTH, MQLITE_V31}};
    for (size_t i = 0; i < NPROPS(bad); i++) {
        int32_t err = 0;
        CHECK(mqlite_packet_new(bad[i][0], bad[i][1], &err) == NULL);
        CHECK_EQ(err, MQLITE_ERR_INVALID);
        CHECK(mqlite_packet_new(bad[i][0], bad[i][1], NULL) == NULL);
    }
    /* Documented defaults. */
    mqlite_packet *p = NEW(CONNECT, MQLITE_V5);
    CHECK_EQ(INT(p, CLEAN_START), 1);
    CHECK_EQ(INT(p, KEEPALIVE_S), 60);
    CHECK_EQ(INT(p, TYPE), MQLITE_PKT_CONNECT);
    CHECK_EQ(INT(p, VERSION), MQLITE_V5);
    mqlite_packet_free(p);
}

/* mqlite_props_free on a list a packet owns is a no-op (ASan: no double
 * free); such a list is read-only. */
static void test_props_free_on_packet_props_is_a_no_op(void)
{
    mqlite_packet *p = DEC(PUBLISH_V5_FULL, MQLITE_V5);
    mqlite_props *own = (mqlite_props *)mqlite_packet_props(p);
    mqlite_props_free(own);
    mqlite_props_free((mqlite_props *)mqlite_packet_will_props(p));
    CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), (int32_t)NPROPS(PUBLISH_V5_PROPS));
    CHECK_EQ(mqlite_props_add_int(own, MQLITE_PROP_MESSAGE_EXPIRY, 1), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_add_pair(own, "k", "v"), MQLITE_ERR_MISUSE);
    CHECK_EQ(mqlite_props_count(mqlite_packet_props(p)), (int32_t)NPROPS(PUBLISH_V5_PROPS));
    mqlite_packet_free(p);

    p = NEW(CONNECT, MQLITE_V5);
    mqlite_props_free((mqlite_props *)mqlite_packet_props(p));
    mqlite_props_free((mqlite_props *)mqlite_packet_will_props(p));
    mqlite_packet_free(p);
}

/* ======================================================================
 * 7. Error and reason-code tables
 * ====================================================================== */

#define ERR(sym)                                                                                   \
    {                                                                                              \
        sym, #sym                                                                                  \
    }
static const struct {
    int32_t code;
    const char *name;
} ALL_ERRORS[] = {
    ERR(MQLITE_ERR_NOMEM),
    ERR(MQLITE_ERR_MISUSE),
    ERR(MQLITE_ERR_INVALID),
    ERR(MQLITE_ERR_RANGE),
    ERR(MQLITE_ERR_OPTION),
    ERR(MQLITE_ERR_STATE),
    ERR(MQLITE_ERR_BUFFER),
    ERR(MQLITE_ERR_NOT_FOUND),
    ERR(MQLITE_ERR_QUEUE_FULL),
    ERR(MQLITE_ERR_TIMEOUT),
    ERR(MQLITE_ERR_IO),
    ERR(MQLITE_ERR_CONNECTION_LOST),
    ERR(MQLITE_ERR_REFUSED),
    ERR(MQLITE_ERR_CLOSED),
    ERR(MQLITE_ERR_NOT_CONNECTED),
    ERR(MQLITE_ERR_DNS),
    ERR(MQLITE_ERR_TLS),
    ERR(MQLITE_ERR_CONFIG),
    ERR(MQLITE_ERR_UNSUPPORTED),
    ERR(MQLITE_ERR_AGAIN),
    ERR(MQLITE_ERR_NO_PACKET_ID),
    ERR(MQLITE_ERR_TOO_LARGE),
    ERR(MQLITE_ERR_MALFORMED),
    ERR(MQLITE_ERR_REMLEN_TOO_LONG),
    ERR(MQLITE_ERR_REMLEN_NOT_MINIMAL),
    ERR(MQLITE_ERR_PACKET_TYPE),
    ERR(MQLITE_ERR_HEADER_FLAGS),
    ERR(MQLITE_ERR_QOS3),
    ERR(MQLITE_ERR_TRUNCATED),
    ERR(MQLITE_ERR_TRAILING),
    ERR(MQLITE_ERR_UTF8),
    ERR(MQLITE_ERR_UTF8_NULL),
    ERR(MQLITE_ERR_UTF8_SURROGATE),
    ERR(MQLITE_ERR_UTF8_CONTROL),
    ERR(MQLITE_ERR_PROPERTY_ID),
    ERR(MQLITE_ERR_PROPERTY_PACKET),
    ERR(MQLITE_ERR_CONNECT_RESERVED),
    ERR(MQLITE_ERR_WILL_FLAGS),
    ERR(MQLITE_ERR_WILL_QOS3),
    ERR(MQLITE_ERR_PASSWORD_NO_USER),
    ERR(MQLITE_ERR_SUBSCRIBE_EMPTY),
    ERR(MQLITE_ERR_UNSUBSCRIBE_EMPTY),
    ERR(MQLITE_ERR_SUB_OPTIONS),
    ERR(MQLITE_ERR_SUB_QOS3),
    ERR(MQLITE_ERR_TOPIC_NAME),
    ERR(MQLITE_ERR_TOPIC_FILTER),
    ERR(MQLITE_ERR_PROTOCOL_NAME),
    ERR(MQLITE_ERR_SUBACK_CODE),
    ERR(MQLITE_ERR_CONNACK_FLAGS),
    ERR(MQLITE_ERR_PACKET_ID_PRESENT),
    ERR(MQLITE_ERR_PROPERTY_TYPE),
    ERR(MQLITE_ERR_PROTOCOL),
    ERR(MQLITE_ERR_PROPERTY_DUPLICATE),
    ERR(MQLITE_ERR_PROPERTY_VALUE),
    ERR(MQLITE_ERR_PACKET_ID_ZERO),
    ERR(MQLITE_ERR_PROTOCOL_LEVEL),
    ERR(MQLITE_ERR_RETAIN_HANDLING),
    ERR(MQLITE_ERR_NO_LOCAL_SHARED),
    ERR(MQLITE_ERR_REASON_CODE),
    ERR(MQLITE_ERR_UNEXPECTED_PACKET),
    ERR(MQLITE_ERR_PACKET_TOO_LARGE),
    ERR(MQLITE_ERR_TOPIC_ALIAS),
    ERR(MQLITE_ERR_RECEIVE_MAX),
    ERR(MQLITE_ERR_CLIENT_ID),
    ERR(MQLITE_ERR_PACKET_ID_UNKNOWN),
    ERR(MQLITE_ERR_KEEPALIVE),
    ERR(MQLITE_ERR_QOS_NOT_SUPPORTED),
    ERR(MQLITE_ERR_RETAIN_NOT_SUPPORTED),
    ERR(MQLITE_ERR_AUTH_METHOD),
};
#undef ERR

static void test_every_error_code_has_a_distinct_name_and_text(void)
{
    for (size_t i = 0; i < NPROPS(ALL_ERRORS); i++) {
        int32_t c = ALL_ERRORS[i].code;
        const char *text = mqlite_strerror(c), *name = mqlite_error_name(c);
        CHECK(text && *text);
        CHECK_STR(name, ALL_ERRORS[i].name);
        CHECK(text && strcmp(text, "unknown error") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(ALL_ERRORS[j].code != c);
            CHECK(strcmp(mqlite_strerror(ALL_ERRORS[j].code), text) != 0);
            CHECK(strcmp(mqlite_error_name(ALL_ERRORS[j].code), name) != 0);
        }
        /* The classes of mqlite.h: -100..-149 malformed (0x81); -150..-199
         * protocol error (0x82) or a more precise code; others 0x80. */
        CHECK_EQ(mqlite_error_is_malformed(c), c <= -100 && c > -150);
        int32_t r = mqlite_error_reason(c);
        if (c > -100)
            CHECK(r == 0x80 || r == 0x95);
        else if (c > -150)
            CHECK(r == 0x81 || r == 0x90 || r == 0x8f);
        else
            CHECK(r >= 0x82);
    }
    CHECK_STR(mqlite_error_name(MQLITE_OK), "MQLITE_OK");
    CHECK(*mqlite_strerror(MQLITE_OK) != '\0');
    CHECK_STR(mqlite_error_name(-9999), "MQLITE_ERR_UNKNOWN");
    CHECK(mqlite_strerror(-9999) != NULL && *mqlite_strerror(-9999));
    CHECK_EQ(mqlite_error_reason(0), 0x80);
    CHECK_EQ(mqlite_error_is_malformed(0), 0);
}

static void test_error_reason_precise_codes(void)
{
    static const int32_t map[][2] = {
        {MQLITE_ERR_PACKET_TOO_LARGE, 0x95},
        {MQLITE_ERR_TOO_LARGE, 0x95},
        {MQLITE_ERR_TOPIC_ALIAS, 0x94},
        {MQLITE_ERR_RECEIVE_MAX, 0x93},
        {MQLITE_ERR_TOPIC_NAME, 0x90},
        {MQLITE_ERR_TOPIC_FILTER, 0x8f},
        {MQLITE_ERR_PROTOCOL_LEVEL, 0x84},
        {MQLITE_ERR_CLIENT_ID, 0x85},
        {MQLITE_ERR_KEEPALIVE, 0x8d},
        {MQLITE_ERR_QOS_NOT_SUPPORTED, 0x9b},
        {MQLITE_ERR_RETAIN_NOT_SUPPORTED, 0x9a},
        {MQLITE_ERR_AUTH_METHOD, 0x8c},
        {MQLITE_ERR_MALFORMED, 0x81},
        {MQLITE_ERR_QOS3, 0x81},
        {MQLITE_ERR_PROTOCOL, 0x82},
        {MQLITE_ERR_PROPERTY_DUPLICATE, 0x82},
        {MQLITE_ERR_NOMEM, 0x80},
        {MQLITE_ERR_IO, 0x80},
    };
    for (size_t i = 0; i < NPROPS(map); i++)
        CHECK_EQ(mqlite_error_reason(map[i][0]), map[i][1]);
}

static void test_reason_string_table(void)
{
    static const struct {
        int32_t type, code, ver;
        const char *text;
    } v[] = {
        {MQLITE_PKT_CONNACK, 0, MQLITE_V311, "Connection Accepted"},
        {MQLITE_PKT_CONNACK, 1, MQLITE_V311, "Connection Refused, unacceptable protocol version"},
        {MQLITE_PKT_CONNACK, 2, MQLITE_V31, "Connection Refused, identifier rejected"},
        {MQLITE_PKT_CONNACK, 3, MQLITE_V311, "Connection Refused, Server unavailable"},
        {MQLITE_PKT_CONNACK, 4, MQLITE_V311, "Connection Refused, bad user name or password"},
        {MQLITE_PKT_CONNACK, 5, MQLITE_V31, "Connection Refused, not authorized"},
        {MQLITE_PKT_CONNACK, 6, MQLITE_V311, "Unknown reason code"},
        {MQLITE_PKT_CONNACK, 0x84, MQLITE_V311, "Unknown reason code"},
        {MQLITE_PKT_CONNACK, 0x00, MQLITE_V5, "Success"},
        {MQLITE_PKT_CONNACK, 0x84, MQLITE_V5, "Unsupported Protocol Version"},
        {MQLITE_PKT_CONNACK, 0x8a, MQLITE_V5, "Banned"},
        {MQLITE_PKT_CONNACK, 0x8e, MQLITE_V5, "Unknown reason code"},
        {MQLITE_PKT_SUBACK, 0x00, MQLITE_V311, "Granted QoS 0"},
        {MQLITE_PKT_SUBACK, 0x02, MQLITE_V311, "Granted QoS 2"},
        {MQLITE_PKT_SUBACK, 0x80, MQLITE_V311, "Failure"},
        {MQLITE_PKT_SUBACK, 0x03, MQLITE_V311, "Unknown reason code"},
        {MQLITE_PKT_SUBACK, 0x01, MQLITE_V5, "Granted QoS 1"},
        {MQLITE_PKT_SUBACK, 0x80, MQLITE_V5, "Unspecified error"},
        {MQLITE_PKT_SUBACK, 0xa2, MQLITE_V5, "Wildcard Subscriptions not supported"},
        {MQLITE_PKT_DISCONNECT, 0x00, MQLITE_V5, "Normal disconnection"},
        {MQLITE_PKT_DISCONNECT, 0x04, MQLITE_V5, "Disconnect with Will Message"},
        {MQLITE_PKT_DISCONNECT, 0x8e, MQLITE_V5, "Session taken over"},
        {MQLITE_PKT_DISCONNECT, 0x94, MQLITE_V5, "Topic Alias invalid"},
        {MQLITE_PKT_PUBACK, 0x00, MQLITE_V5, "Success"},
        {MQLITE_PKT_PUBACK, 0x10, MQLITE_V5, "No matching subscribers"},
        {MQLITE_PKT_PUBACK, 0x04, MQLITE_V5, "Unknown reason code"},
        {MQLITE_PKT_PUBREL, 0x92, MQLITE_V5, "Packet Identifier not found"},
        {MQLITE_PKT_UNSUBACK, 0x11, MQLITE_V5, "No subscription existed"},
        {MQLITE_PKT_AUTH, 0x18, MQLITE_V5, "Continue authentication"},
        {MQLITE_PKT_AUTH, 0x19, MQLITE_V5, "Re-authenticate"},
        {MQLITE_PKT_AUTH, 0x00, MQLITE_V5, "Success"},
        {0, 0, MQLITE_V5, "Unknown reason code"},
        {16, 0, MQLITE_V5, "Unknown reason code"},
        {MQLITE_PKT_PUBACK, -1, MQLITE_V5, "Unknown reason code"},
        {MQLITE_PKT_PUBACK, 256, MQLITE_V5, "Unknown reason code"},
    };
    for (size_t i = 0; i < NPROPS(v); i++)
        CHECK_STR(mqlite_reason_string(v[i].type, v[i].code, v[i].ver), v[i].text);
}

static void test_packet_type_names(void)
{
    static const char *const names[] = {"UNKNOWN",   "CONNECT",  "CONNACK",     "PUBLISH",
                                        "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                        "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                        "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
    for (int32_t t = 0; t < 16; t++)
        CHECK_STR(mqlite_packet_type_name(t), names[t]);
    CHECK_STR(mqlite_packet_type_name(16), "UNKNOWN");
    CHECK_STR(mqlite_packet_type_name(-1), "UNKNOWN");
}

/* ======================================================================
 * The property list API (MQTT 5.0 Table 2-4)
 * ====================================================================== */

static void test_property_types_and_names_follow_table_2_4(void)
{
    static const struct {
        int32_t id, type;
        const char *name;
    } t[] = {
        {0x01, MQLITE_PTYPE_BYTE, "Payload Format Indicator"},
        {0x02, MQLITE_PTYPE_U32, "Message Expiry Interval"},
        {0x03, MQLITE_PTYPE_UTF8, "Content Type"},
        {0x08, MQLITE_PTYPE_UTF8, "Response Topic"},
        {0x09, MQLITE_PTYPE_BINARY, "Correlation Data"},
        {0x0b, MQLITE_PTYPE_VBI, "Subscription Identifier"},
        {0x11, MQLITE_PTYPE_U32, "Session Expiry Interval"},
        {0x12, MQLITE_PTYPE_UTF8, "Assigned Client Identifier"},
        {0x13, MQLITE_PTYPE_U16, "Server Keep Alive"},
        {0x15, MQLITE_PTYPE_UTF8, "Authentication Method"},
        {0x16, MQLITE_PTYPE_BINARY, "Authentication Data"},
        {0x17, MQLITE_PTYPE_BYTE, "Request Problem Information"},
        {0x18, MQLITE_PTYPE_U32, "Will Delay Interval"},
        {0x19, MQLITE_PTYPE_BYTE, "Request Response Information"},
        {0x1a, MQLITE_PTYPE_UTF8, "Response Information"},
        {0x1c, MQLITE_PTYPE_UTF8, "Server Reference"},
        {0x1f, MQLITE_PTYPE_UTF8, "Reason String"},
        {0x21, MQLITE_PTYPE_U16, "Receive Maximum"},
        {0x22, MQLITE_PTYPE_U16, "Topic Alias Maximum"},
        {0x23, MQLITE_PTYPE_U16, "Topic Alias"},
        {0x24, MQLITE_PTYPE_BYTE, "Maximum QoS"},
        {0x25, MQLITE_PTYPE_BYTE, "Retain Available"},
        {0x26, MQLITE_PTYPE_PAIR, "User Property"},
        {0x27, MQLITE_PTYPE_U32, "Maximum Packet Size"},
        {0x28, MQLITE_PTYPE_BYTE, "Wildcard Subscription Available"},
        {0x29, MQLITE_PTYPE_BYTE, "Subscription Identifier Available"},
        {0x2a, MQLITE_PTYPE_BYTE, "Shared Subscription Available"},
    };
    int known[256] = {0};
    for (size_t i = 0; i < NPROPS(t); i++) {
        CHECK_EQ(mqlite_property_type(t[i].id), t[i].type);
        CHECK_STR(mqlite_property_name(t[i].id), t[i].name);
        known[t[i].id] = 1;
    }
    for (int32_t id = 0; id < 256; id++)
        if (!known[id]) {
            CHECK_EQ(mqlite_property_type(id), MQLITE_ERR_PROPERTY_ID);
            CHECK(mqlite_property_name(id) == NULL);
        }
    CHECK_EQ(mqlite_property_type(-1), MQLITE_ERR_PROPERTY_ID);
    CHECK(mqlite_property_name(1000) == NULL);
}

/* MQTT 5.0 2.2.2.2 and the per-property "It is a Protocol Error ..." rules,
 * applied when a list is built. */
static void test_props_add_validates_type_range_and_value(void)
{
    mqlite_props *pr = mqlite_props_new();
    CHECK(pr != NULL);
    CHECK_EQ(mqlite_props_add_int(pr, 0x04, 1), MQLITE_ERR_PROPERTY_ID);
    CHECK_EQ(mqlite_props_add_int(pr, 0x2b, 1), MQLITE_ERR_PROPERTY_ID);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_CONTENT_TYPE, 1), MQLITE_ERR_PROPERTY_TYPE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_USER, 1), MQLITE_ERR_PROPERTY_TYPE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_PAYLOAD_FORMAT, 256), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_TOPIC_ALIAS, 65536), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_MESSAGE_EXPIRY, 0x100000000LL), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_MESSAGE_EXPIRY, -1), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 268435456), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_RECEIVE_MAX, 0), MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_MAX_PACKET_SIZE, 0), MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_TOPIC_ALIAS, 0), MQLITE_ERR_TOPIC_ALIAS);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 0), MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_PAYLOAD_FORMAT, 2), MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_REQUEST_PROBLEM_INFO, 2),
             MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_MAX_QOS, 2), MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_RESPONSE_TOPIC, "a/#"),
             MQLITE_ERR_PROPERTY_VALUE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CORRELATION_DATA, "x"), MQLITE_ERR_PROPERTY_TYPE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_SESSION_EXPIRY, "x"), MQLITE_ERR_PROPERTY_TYPE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, "\xc3\x28"), MQLITE_ERR_UTF8);
    CHECK_EQ(mqlite_props_add_bytes(pr, MQLITE_PROP_CONTENT_TYPE, "a\0b", 3), MQLITE_ERR_UTF8_NULL);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, NULL), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_props_add_pair(pr, "k", "\xed\xa0\x80"), MQLITE_ERR_UTF8_SURROGATE);
    CHECK_EQ(mqlite_props_add_pair(pr, "\xff", "v"), MQLITE_ERR_UTF8);
    CHECK_EQ(mqlite_props_add_pair(pr, NULL, "v"), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_props_count(pr), 0); /* nothing added on failure */

    /* Duplicates: once-only properties refuse a second copy. */
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SESSION_EXPIRY, 1), 0);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SESSION_EXPIRY, 2),
             MQLITE_ERR_PROPERTY_DUPLICATE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, "x"), 0);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, "y"),
             MQLITE_ERR_PROPERTY_DUPLICATE);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 268435455), 0);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_SUBSCRIPTION_ID, 1), 0);
    CHECK_EQ(mqlite_props_add_pair(pr, "k", ""), 0);
    CHECK_EQ(mqlite_props_add_pair(pr, "k", ""), 0);
    CHECK_EQ(mqlite_props_add_bytes(pr, MQLITE_PROP_CORRELATION_DATA, "\0\1", 2), 0);
    CHECK_EQ(mqlite_props_add_int(pr, MQLITE_PROP_MESSAGE_EXPIRY, 0xffffffffLL), 0);
    static const pexp want[] = {
        P_INT(SESSION_EXPIRY, 1),
        P_STR(CONTENT_TYPE, "x"),
        P_INT(SUBSCRIPTION_ID, 268435455),
        P_INT(SUBSCRIPTION_ID, 1),
        P_USER("k", ""),
        P_USER("k", ""),
        P_STR(CORRELATION_DATA, "\0\1"),
        P_INT(MESSAGE_EXPIRY, 0xffffffffLL),
    };
    CHECK_PROPS(pr, want);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_SUBSCRIPTION_ID, -5), 2);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_SUBSCRIPTION_ID, 3), 3);
    CHECK_EQ(mqlite_props_find(pr, MQLITE_PROP_SUBSCRIPTION_ID, 4), MQLITE_ERR_NOT_FOUND);
    CHECK_EQ(mqlite_props_int(pr, 8), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_int(pr, -1), MQLITE_ERR_RANGE);
    mqlite_props_free(pr);

    /* The largest Subscription Identifier round-trips as a 4-byte VBI. */
    static const pexp big[] = {P_INT(SUBSCRIPTION_ID, 268435455)};
    static const char hex[] = "30 0b 00 03 61 2f 62 05 0b ff ff ff 7f";
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    SET_STR(p, TOPIC, "a/b");
    SET_PROPS(p, big);
    ENC(p, hex);
    mqlite_packet_free(p);
    p = DEC(hex, MQLITE_V5);
    CHECK_PROPS(mqlite_packet_props(p), big);
    mqlite_packet_free(p);
}

/* Replacing the properties of a packet replaces them (not appends), and the
 * caller keeps its list. */
static void test_set_props_replaces_and_copies(void)
{
    static const pexp a[] = {P_USER("a", "1")};
    static const pexp b[] = {P_STR(CONTENT_TYPE, "t")};
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V5);
    SET_STR(p, TOPIC, "t");
    mqlite_props *pa = props_build(__LINE__, a, 1);
    CHECK_EQ(mqlite_packet_set_props(p, pa), 0);
    mqlite_props_free(pa);
    SET_PROPS(p, b);
    CHECK_PROPS(mqlite_packet_props(p), b);
    ENC(p, "30 08 00 01 74 04 03 00 01 74");
    mqlite_packet_free(p);
}

/* ======================================================================
 * More vectors
 * ====================================================================== */

/* Binary Data (payload, password, will payload, Correlation Data,
 * Authentication Data) is not text: MQLITE_DECODE_STRICT_UTF8 must not look
 * at it. */
static void test_binary_fields_are_not_checked_as_utf8(void)
{
    mqlite_packet *p = DECF("30 0e 00 03 61 2f 62 05 09 00 02 00 ff 00 01 ff", MQLITE_V5,
                            MQLITE_DECODE_STRICT_UTF8);
    CHECK_FIELD(p, PAYLOAD, "\x00\x01\xff");
    static const pexp corr[] = {P_STR(CORRELATION_DATA, "\x00\xff")};
    CHECK_PROPS(mqlite_packet_props(p), corr);
    mqlite_packet_free(p);

    p = DECF("10 13 00 04 4d 51 54 54 04 c2 00 00 00 00 00 01 75 00 02 00 01", 0,
             MQLITE_DECODE_STRICT_UTF8);
    CHECK_FIELD(p, PASSWORD, "\x00\x01");
    mqlite_packet_free(p);

    /* Will payload 00 ff, Authentication Data 00 01 (with its method). */
    p = DECF("10 1f 00 04 4d 51 54 54 05 06 00 00 0a 15 00 02 78 78 16 00 02 00 01 00 00 00 00 01"
             " 74 00 02 00 ff",
             0, MQLITE_DECODE_STRICT_UTF8);
    CHECK_FIELD(p, WILL_PAYLOAD, "\x00\xff");
    static const pexp auth[] = {P_STR(AUTH_METHOD, "xx"), P_STR(AUTH_DATA, "\x00\x01")};
    CHECK_PROPS(mqlite_packet_props(p), auth);
    mqlite_packet_free(p);
}

/* A NOCOPY SUBSCRIBE grown with add_topic owns its list: it still encodes
 * after the input is gone. */
static void test_nocopy_subscribe_grown_then_encoded(void)
{
    unsigned char b[BUFSZ];
    size_t n = tl_hex(SUBSCRIBE_V5, b, sizeof b), used = 0;
    int32_t err = 12345;
    mqlite_packet *p =
        mqlite_packet_decode(b, n, MQLITE_V5, MQLITE_DECODE_NOCOPY, 0, &used, NULL, &err);
    CHECK(p != NULL);
    CHECK_EQ(mqlite_packet_add_topic(p, "e", 1), 0);
    memset(b, 0xcc, sizeof b);
    ENC(p, "82 2a 00 0a 0a 0b 80 01 26 00 01 6b 00 01 76"
           " 00 03 61 2f 62 1d"
           " 00 0a 24 73 68 61 72 65 2f 67 2f 63 22"
           " 00 03 64 2f 2b 00"
           " 00 01 65 01");
    mqlite_packet_free(p);
}

/* MQTT 3.1.1 and 5.0 [MQTT-4.7.3-3]: Topic Names and Topic Filters are UTF-8
 * Encoded Strings; they MUST NOT encode to more than 65,535 bytes. */
static void test_topic_of_65535_bytes_is_allowed_65536_is_not(void)
{
    size_t big = 65536;
    char *t = malloc(big + 1);
    unsigned char *out = malloc(big + 16);
    if (!t || !out)
        abort();
    memset(t, 'a', big);
    t[big] = 0;
    mqlite_packet *p = NEW(PUBLISH, MQLITE_V311);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, t, big), MQLITE_ERR_RANGE);
    CHECK(*mqlite_packet_errmsg(p) != '\0');
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_TOPIC, t, big - 1), 0);
    size_t len = 0;
    CHECK_EQ(mqlite_packet_encode(p, out, big + 16, &len), 0);
    /* Remaining Length 2 + 65535 = 65537 = 0x81 0x80 0x04. */
    CHECK_EQ(len, 1 + 3 + 2 + 65535);
    static const unsigned char head[] = {0x30, 0x81, 0x80, 0x04, 0xff, 0xff, 'a'};
    CHECK_MEM(out, sizeof head, head, sizeof head);
    mqlite_packet_free(p);

    size_t used = 0;
    int32_t err = 12345;
    p = mqlite_packet_decode(out, len, MQLITE_V311, 0, 0, &used, NULL, &err);
    CHECK(p != NULL);
    size_t tl = 0;
    const char *got = mqlite_packet_bytes(p, MQLITE_PF_TOPIC, &tl);
    CHECK_EQ(tl, 65535);
    CHECK(got && memcmp(got, t, tl) == 0);
    mqlite_packet_free(p);

    p = NEW(SUBSCRIBE, MQLITE_V5);
    CHECK_EQ(mqlite_packet_add_topic(p, t, 0), MQLITE_ERR_TOPIC_FILTER);
    mqlite_packet_free(p);

    mqlite_props *pr = mqlite_props_new();
    CHECK_EQ(mqlite_props_add_bytes(pr, MQLITE_PROP_CORRELATION_DATA, t, big), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_str(pr, MQLITE_PROP_CONTENT_TYPE, t), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_pair(pr, t, "v"), MQLITE_ERR_RANGE);
    CHECK_EQ(mqlite_props_add_bytes(pr, MQLITE_PROP_CORRELATION_DATA, t, big - 1), 0);
    CHECK_EQ(mqlite_props_count(pr), 1);
    mqlite_props_free(pr);
    free(t);
    free(out);
}

/* A 3.1.1 SUBSCRIBE of one filter, framed by hand. */
static int32_t subscribe_filter_rc(const char *f, int32_t ver)
{
    size_t fl = strlen(f), rem = 2 + (ver == MQLITE_V5) + 2 + fl + 1, i = 0;
    unsigned char b[300];
    if (rem > 127)
        abort();
    b[i++] = 0x82;
    b[i++] = (unsigned char)rem;
    b[i++] = 0x00;
    b[i++] = 0x01;
    if (ver == MQLITE_V5)
        b[i++] = 0x00;
    b[i++] = 0x00;
    b[i++] = (unsigned char)fl;
    memcpy(b + i, f, fl);
    i += fl;
    b[i++] = 0x00;
    return dec_bytes_rc(b, i, ver, 0);
}

/* MQTT 3.1.1 4.7.1.2 / 4.7.1.3 and MQTT 5.0 4.7.1.2 / 4.7.1.3: the
 * specification's own examples of valid and invalid topic filters. */
static void test_spec_topic_filter_examples(void)
{
    static const char *const valid[] = {"sport/tennis/player1/#",
                                        "sport/#",
                                        "#",
                                        "+",
                                        "+/tennis/#",
                                        "sport/+/player1",
                                        "+/+",
                                        "/+",
                                        "sport/+",
                                        "$SYS/#",
                                        "/finance",
                                        "sport/tennis/player1",
                                        "/"};
    static const char *const invalid[] = {
        "sport/tennis#", "sport/tennis/#/ranking", "sport+", "#/a", "a/#/", "++", "a/b+/c"};
    for (int32_t ver = MQLITE_V311; ver <= MQLITE_V5; ver++) {
        for (size_t i = 0; i < NPROPS(valid); i++) {
            int32_t rc = subscribe_filter_rc(valid[i], ver);
            if (rc)
                fprintf(stderr, "  \"%s\": %s\n", valid[i], mqlite_error_name(rc));
            CHECK_EQ(rc, 0);
        }
        for (size_t i = 0; i < NPROPS(invalid); i++)
            CHECK_EQ(subscribe_filter_rc(invalid[i], ver), MQLITE_ERR_TOPIC_FILTER);
    }
    CHECK_EQ(subscribe_filter_rc("$share/g/sport/#", MQLITE_V5), 0);
    CHECK_EQ(subscribe_filter_rc("$share/g/#", MQLITE_V5), 0);
    CHECK_EQ(subscribe_filter_rc("$share/#/x", MQLITE_V5), MQLITE_ERR_TOPIC_FILTER);
    CHECK_EQ(subscribe_filter_rc("$share/g/a/#/b", MQLITE_V5), MQLITE_ERR_TOPIC_FILTER);
}

/* Decoded packets can be edited and re-encoded. */
static void test_decoded_packet_edit_and_reencode(void)
{
    mqlite_packet *p = DEC("30 0a 00 03 61 2f 62 68 65 6c 6c 6f", MQLITE_V311);
    SET_INT(p, QOS, 2);
    SET_INT(p, PACKET_ID, 0x0102);
    SET_STR(p, TOPIC, "x");
    ENC(p, "34 0a 00 01 78 01 02 68 65 6c 6c 6f");
    mqlite_packet_free(p);

    p = DEC(CONNECT_V311_SPEC, 0);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_PASSWORD, NULL, 0), 0);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_USERNAME, NULL, 0), 0);
    SET_INT(p, WILL, 0);
    SET_INT(p, WILL_QOS, 0);
    CHECK_ABSENT(p, USERNAME);
    CHECK_ABSENT(p, WILL_TOPIC);
    ENC(p, "10 0e 00 04 4d 51 54 54 04 02 00 0a 00 02 63 31");
    mqlite_packet_free(p);
}

/* mqlite.h, mqlite_packet_set_bytes: "Passing data NULL with len 0 removes an
 * optional field (user name, password, will topic/payload)", and
 * mqlite_packet_bytes returns "NULL when the field is absent". MQTT 3.1.1
 * [MQTT-3.1.2-11] / 5.0 [MQTT-3.1.2-9]: a Will Topic is present exactly when
 * the Will Flag is 1, so removing it removes the will. */
static void test_removing_will_topic_removes_the_will(void)
{
    mqlite_packet *p = NEW(CONNECT, MQLITE_V311);
    SET_STR(p, CLIENT_ID, "c");
    SET_STR(p, WILL_TOPIC, "w");
    SET_STR(p, WILL_PAYLOAD, "m");
    CHECK_EQ(INT(p, WILL), 1);
    CHECK_EQ(mqlite_packet_set_bytes(p, MQLITE_PF_WILL_TOPIC, NULL, 0), 0);
    CHECK_ABSENT(p, WILL_TOPIC);
    CHECK_EQ(INT(p, WILL), 0);
    ENC(p, "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63");
    mqlite_packet_free(p);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv)
    RUN(test_connect_v31_minimal_vector);
    RUN(test_connect_v31_full_vector);
    RUN(test_connect_v311_spec_example_vector);
    RUN(test_connect_v311_empty_client_id_vector);
    RUN(test_connect_v5_spec_example_vector);
    RUN(test_connect_v5_all_properties_vector);
    RUN(test_connect_v5_password_without_user_name_is_allowed);
    RUN(test_connack_v31_v311_vectors);
    RUN(test_connack_v5_short_and_refusal_vectors);
    RUN(test_connack_v5_all_properties_vector);
    RUN(test_publish_v31_v311_vectors);
    RUN(test_publish_v5_no_properties_vector);
    RUN(test_publish_v5_all_properties_vector);
    RUN(test_publish_v5_empty_topic_with_alias_is_allowed);
    RUN(test_pub_acks_v31_v311_vectors);
    RUN(test_pub_acks_v5_short_reason_and_long_forms);
    RUN(test_subscribe_v31_v311_vector);
    RUN(test_subscribe_v5_options_and_properties_vector);
    RUN(test_suback_vectors);
    RUN(test_unsubscribe_vectors);
    RUN(test_unsuback_vectors);
    RUN(test_ping_vectors);
    RUN(test_disconnect_vectors);
    RUN(test_auth_vectors);
    RUN(test_auth_v5_reason_without_properties_encodes_property_length);
    RUN(test_remaining_length_table_boundaries);
    RUN(test_remaining_length_over_four_bytes_is_malformed);
    RUN(test_remaining_length_not_minimal_is_malformed);
    RUN(test_every_proper_prefix_needs_more);
    RUN(test_back_to_back_packets_decode_one_at_a_time);
    RUN(test_max_packet_size_is_enforced_from_the_fixed_header);
    RUN(test_reserved_packet_type_0_is_malformed);
    RUN(test_auth_type_15_before_v5_is_malformed);
    RUN(test_reserved_header_flags_must_be_zero);
    RUN(test_pubrel_header_flags_must_be_0010);
    RUN(test_v31_retried_pubrel_subscribe_unsubscribe_with_dup_decode);
    RUN(test_subscribe_header_flags_must_be_0010);
    RUN(test_unsubscribe_header_flags_must_be_0010);
    RUN(test_disconnect_header_flags_must_be_zero);
    RUN(test_auth_header_flags_must_be_zero);
    RUN(test_publish_qos3_is_malformed);
    RUN(test_publish_dup_with_qos0_is_malformed);
    RUN(test_truncated_fields_are_malformed);
    RUN(test_connect_will_flag_without_will_fields_is_malformed);
    RUN(test_connect_user_name_flag_without_user_name_is_malformed);
    RUN(test_connect_password_flag_without_password_is_malformed);
    RUN(test_v5_missing_property_length_is_malformed);
    RUN(test_connect_user_name_without_flag_is_trailing);
    RUN(test_trailing_bytes_are_malformed);
    RUN(test_utf8_fields_accept_valid_strings);
    RUN(test_utf8_ill_formed_is_malformed);
    RUN(test_utf8_surrogate_is_malformed);
    RUN(test_utf8_null_character_is_malformed);
    RUN(test_utf8_control_characters_refused_only_in_strict_mode);
    RUN(test_utf8_bom_is_kept_even_in_strict_mode);
    RUN(test_property_length_not_minimal_is_malformed);
    RUN(test_property_id_not_minimal_is_malformed);
    RUN(test_unknown_property_id_is_malformed);
    RUN(test_property_in_wrong_packet_is_malformed);
    RUN(test_property_value_of_wrong_length_is_malformed);
    RUN(test_duplicate_property_is_protocol_error);
    RUN(test_subscription_id_twice_allowed_in_publish_not_in_subscribe);
    RUN(test_forbidden_property_values_are_protocol_errors);
    RUN(test_publish_topic_alias_0_is_topic_alias_invalid);
    RUN(test_response_topic_with_wildcard_is_refused);
    RUN(test_connect_reserved_flag_is_malformed);
    RUN(test_connect_will_qos3_is_malformed);
    RUN(test_connect_will_qos_or_retain_without_will_flag_is_malformed);
    RUN(test_connect_v311_password_without_user_name_is_malformed);
    RUN(test_connect_wrong_protocol_name_is_refused);
    RUN(test_connect_unsupported_level_reports_the_level);
    RUN(test_connect_mqisdp_with_level_4_is_refused);
    RUN(test_connect_will_topic_must_be_a_topic_name);
    RUN(test_connack_reserved_flags_are_malformed);
    RUN(test_connack_session_present_with_refusal_is_refused);
    RUN(test_connack_v311_return_code_6_is_refused);
    RUN(test_packet_id_0_is_refused_in_publish_subscribe_unsubscribe);
    RUN(test_packet_id_0_is_refused_in_acks);
    RUN(test_empty_subscribe_is_protocol_error);
    RUN(test_empty_unsubscribe_is_protocol_error);
    RUN(test_v311_subscription_options_reserved_bits_are_malformed);
    RUN(test_v311_subscribe_qos3_is_malformed);
    RUN(test_v5_subscription_options_reserved_bits_are_malformed);
    RUN(test_v5_subscribe_qos3_is_protocol_error);
    RUN(test_v5_retain_handling_3_is_protocol_error);
    RUN(test_v5_no_local_on_shared_subscription_is_protocol_error);
    RUN(test_topic_filter_hash_not_last_is_refused);
    RUN(test_topic_filter_plus_not_whole_level_is_refused);
    RUN(test_shared_subscription_filter_syntax_is_checked);
    RUN(test_empty_topic_filter_is_refused);
    RUN(test_publish_topic_with_wildcard_is_refused);
    RUN(test_v311_empty_topic_name_is_refused);
    RUN(test_v5_empty_topic_name_without_alias_is_refused);
    RUN(test_v311_suback_reserved_return_code_is_malformed);
    RUN(test_v311_connack_return_codes_0_to_5_only);
    RUN(test_v5_reason_codes_not_allowed_in_a_packet_are_refused);
    RUN(test_role_checks_refuse_packets_of_the_wrong_direction);
    RUN(test_v311_client_receiving_disconnect_is_refused);
    RUN(test_non_connect_packet_with_level_0_is_refused);
    RUN(test_server_refuses_publish_with_subscription_id);
    RUN(test_client_refuses_disconnect_with_session_expiry);
    RUN(test_set_int_qos3_is_out_of_range);
    RUN(test_set_int_field_not_in_packet_is_option_error);
    RUN(test_encode_packet_id_0_is_refused);
    RUN(test_set_wildcard_topic_is_refused);
    RUN(test_encode_empty_topic_needs_alias);
    RUN(test_properties_on_v311_packet_are_unsupported);
    RUN(test_set_property_not_allowed_in_packet_is_refused);
    RUN(test_encode_buffer_too_small_reports_size);
    RUN(test_encode_refuses_what_decode_refuses);
    RUN(test_add_topic_and_add_reason_validate);
    RUN(test_v5_encoder_reason_codes_follow_the_table);
    RUN(test_nocopy_accessors_point_into_the_input);
    RUN(test_copy_decode_owns_nul_terminated_copies);
    RUN(test_null_handles_are_refused_without_crashing);
    RUN(test_packet_new_refuses_invalid_type_and_level);
    RUN(test_props_free_on_packet_props_is_a_no_op);
    RUN(test_every_error_code_has_a_distinct_name_and_text);
    RUN(test_error_reason_precise_codes);
    RUN(test_reason_string_table);
    RUN(test_packet_type_names);
    RUN(test_property_types_and_names_follow_table_2_4);
    RUN(test_props_add_validates_type_range_and_value);
    RUN(test_set_props_replaces_and_copies);
    RUN(test_binary_fields_are_not_checked_as_utf8);
    RUN(test_nocopy_subscribe_grown_then_encoded);
    RUN(test_topic_of_65535_bytes_is_allowed_65536_is_not);
    RUN(test_spec_topic_filter_examples);
    RUN(test_decoded_packet_edit_and_reencode);
    RUN(test_removing_will_topic_removes_the_will);
    TEST_MAIN_END();
}
