/*
 * test_utf8.c - mq_utf8_check: RFC 3629 well-formedness and the MQTT rules
 * on top of it (MQTT 3.1.1 section 1.5.3, MQTT 5.0 section 1.5.4).
 */
#include "testlib.h"

#include "utf8.h"

#define UTF8 MQLITE_ERR_UTF8
#define SURR MQLITE_ERR_UTF8_SURROGATE
#define NUL0 MQLITE_ERR_UTF8_NULL
#define CTRL MQLITE_ERR_UTF8_CONTROL

typedef struct vec {
    const char *hex;
    int loose; /* expected with strict == 0 */
    int strict; /* expected with strict == 1 */
} vec;

static int check_hex(const char *hex, int strict)
{
    unsigned char buf[64];
    size_t n = tl_hex(hex, buf, sizeof buf);
    return mq_utf8_check(buf, n, strict);
}

static void run_table(const vec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int loose = check_hex(v[i].hex, 0), strict = check_hex(v[i].hex, 1);
        if (loose != v[i].loose || strict != v[i].strict)
            fprintf(stderr, "  vector \"%s\": got %d/%d, want %d/%d\n", v[i].hex, loose, strict,
                    v[i].loose, v[i].strict);
        CHECK_EQ(loose, v[i].loose);
        CHECK_EQ(strict, v[i].strict);
    }
}

/* Encode code point cp (not checked) the way RFC 3629 section 3 does. */
static size_t encode(uint32_t cp, uint8_t *b)
{
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (uint8_t)(0xc0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (uint8_t)(0xe0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    b[0] = (uint8_t)(0xf0 | cp >> 18);
    b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    b[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static void test_empty_string_is_valid(void)
{
    CHECK_EQ(mq_utf8_check(NULL, 0, 0), 0);
    CHECK_EQ(mq_utf8_check(NULL, 0, 1), 0);
    CHECK_EQ(mq_utf8_check((const uint8_t *)"", 0, 1), 0);
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: well-formed UTF-8 per
 * RFC 3629; every length boundary on both sides. */
static void test_boundary_code_points_are_valid(void)
{
    static const vec v[] = {
        {"20", 0, 0},                /* U+0020 */
        {"7e", 0, 0},                /* U+007E */
        {"c2 a0", 0, 0},             /* U+00A0 */
        {"df bf", 0, 0},             /* U+07FF, last 2-byte */
        {"e0 a0 80", 0, 0},          /* U+0800, first 3-byte */
        {"ed 9f bf", 0, 0},          /* U+D7FF, below the surrogates */
        {"ee 80 80", 0, 0},          /* U+E000, above the surrogates */
        {"ef b7 8f", 0, 0},          /* U+FDCF, below the non-characters */
        {"ef b7 b0", 0, 0},          /* U+FDF0, above them */
        {"ef bf bd", 0, 0},          /* U+FFFD */
        {"f0 90 80 80", 0, 0},       /* U+10000, first 4-byte */
        {"f0 9f 98 80", 0, 0},       /* U+1F600 */
        {"f4 8f bf bd", 0, 0},       /* U+10FFFD */
        {"f3 bf bf bd", 0, 0},       /* U+FFFFD */
        {"41 c3 a9 e2 82 ac f0 9f 98 80 5a", 0, 0},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: U+10FFFF is the last
 * code point; U+110000 and up are ill-formed (RFC 3629). */
static void test_code_points_above_10ffff_are_ill_formed(void)
{
    static const vec v[] = {
        {"f4 8f bf bf", 0, CTRL}, /* U+10FFFF: valid, but a non-character */
        {"f4 90 80 80", UTF8, UTF8}, /* U+110000 */
        {"f4 bf bf bf", UTF8, UTF8},
        {"f5 80 80 80", UTF8, UTF8},
        {"f7 bf bf bf", UTF8, UTF8}, /* U+1FFFFF */
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: overlong forms are not
 * well-formed (RFC 3629 section 3). */
static void test_overlong_forms_are_ill_formed(void)
{
    static const vec v[] = {
        {"c0 80", UTF8, UTF8},       /* U+0000 in 2 bytes: not a NUL */
        {"c0 af", UTF8, UTF8},       /* '/' in 2 bytes */
        {"c1 bf", UTF8, UTF8},       /* U+007F in 2 bytes */
        {"e0 80 80", UTF8, UTF8},    /* U+0000 in 3 bytes */
        {"e0 80 af", UTF8, UTF8},
        {"e0 9f bf", UTF8, UTF8},    /* U+07FF in 3 bytes */
        {"f0 80 80 80", UTF8, UTF8}, /* U+0000 in 4 bytes */
        {"f0 80 80 af", UTF8, UTF8},
        {"f0 8f bf bf", UTF8, UTF8}, /* U+FFFF in 4 bytes */
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: RFC 3629 removed the 5-
 * and 6-byte forms; F8..FF never appear. */
static void test_five_and_six_byte_leads_are_ill_formed(void)
{
    static const vec v[] = {
        {"f8 88 80 80 80", UTF8, UTF8},
        {"fb bf bf bf bf", UTF8, UTF8},
        {"fc 84 80 80 80 80", UTF8, UTF8},
        {"fd bf bf bf bf bf", UTF8, UTF8},
        {"fe", UTF8, UTF8},
        {"ff", UTF8, UTF8},
        {"41 fe fe ff ff", UTF8, UTF8},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1] */
static void test_lone_continuation_bytes_are_ill_formed(void)
{
    static const vec v[] = {
        {"80", UTF8, UTF8},
        {"bf", UTF8, UTF8},
        {"41 80 41", UTF8, UTF8},
        {"c3 a9 a9", UTF8, UTF8}, /* one continuation too many */
        {"80 bf 80 bf", UTF8, UTF8},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: a sequence cut short, at
 * the end of the string or by a byte that is not a continuation. */
static void test_truncated_sequences_are_ill_formed(void)
{
    static const vec v[] = {
        {"c2", UTF8, UTF8},
        {"e0 a0", UTF8, UTF8},
        {"e2 82", UTF8, UTF8},
        {"f0 90 80", UTF8, UTF8},
        {"f0 9f 98", UTF8, UTF8},
        {"f4", UTF8, UTF8},
        {"41 42 43 e2 82", UTF8, UTF8},
        {"e2 82 41", UTF8, UTF8},
        {"c3 20", UTF8, UTF8},
        {"f0 9f 98 41", UTF8, UTF8},
        {"e2 c3 a9", UTF8, UTF8},
        {"ed a0", UTF8, UTF8}, /* would be a surrogate, but is cut short first */
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: no encodings of code
 * points U+D800..U+DFFF, alone or paired (CESU-8). */
static void test_surrogates_are_rejected(void)
{
    static const vec v[] = {
        {"ed a0 80", SURR, SURR},          /* U+D800 */
        {"ed af bf", SURR, SURR},          /* U+DBFF */
        {"ed b0 80", SURR, SURR},          /* U+DC00 */
        {"ed bf bf", SURR, SURR},          /* U+DFFF */
        {"ed a0 bd ed b8 80", SURR, SURR}, /* U+1F600 as a CESU-8 pair */
        {"41 ed b2 80 41", SURR, SURR},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-2], 3.1.1 [MQTT-1.5.3-2]: no U+0000 anywhere. */
static void test_null_character_is_rejected(void)
{
    static const vec v[] = {
        {"00", NUL0, NUL0},
        {"41 00", NUL0, NUL0},
        {"00 41", NUL0, NUL0},
        {"c3 a9 00 c3 a9", NUL0, NUL0},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 1.5.4 (3.1.1 1.5.3): U+0001..U+001F and U+007F..U+009F SHOULD
 * NOT be included; strict mode rejects them, the default accepts them. */
static void test_control_characters_rejected_only_when_strict(void)
{
    static const vec v[] = {
        {"01", 0, CTRL},
        {"09", 0, CTRL},
        {"0a", 0, CTRL},
        {"1f", 0, CTRL},
        {"20", 0, 0},
        {"7e", 0, 0},
        {"7f", 0, CTRL},
        {"c2 80", 0, CTRL}, /* U+0080 */
        {"c2 9f", 0, CTRL}, /* U+009F */
        {"c2 a0", 0, 0},    /* U+00A0 */
        {"41 42 1b 5b 6d", 0, CTRL},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 1.5.4 (3.1.1 1.5.3): non-characters SHOULD NOT be included;
 * strict mode rejects U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF. */
static void test_noncharacters_rejected_only_when_strict(void)
{
    static const vec v[] = {
        {"ef b7 90", 0, CTRL},    /* U+FDD0 */
        {"ef b7 af", 0, CTRL},    /* U+FDEF */
        {"ef b7 8f", 0, 0},       /* U+FDCF */
        {"ef b7 b0", 0, 0},       /* U+FDF0 */
        {"ef bf be", 0, CTRL},    /* U+FFFE */
        {"ef bf bf", 0, CTRL},    /* U+FFFF */
        {"f0 9f bf be", 0, CTRL}, /* U+1FFFE */
        {"f0 9f bf bf", 0, CTRL}, /* U+1FFFF */
        {"f3 bf bf be", 0, CTRL}, /* U+FFFFE */
        {"f4 8f bf be", 0, CTRL}, /* U+10FFFE */
        {"f4 8f bf bf", 0, CTRL}, /* U+10FFFF */
        {"f0 9f bf bd", 0, 0},    /* U+1FFFD */
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-1.5.4-3], 3.1.1 [MQTT-1.5.3-3]: EF BB BF is U+FEFF wherever
 * it appears, an ordinary character, also in strict mode. */
static void test_bom_is_an_ordinary_character(void)
{
    static const vec v[] = {
        {"ef bb bf", 0, 0},
        {"ef bb bf 61 2f 62", 0, 0},
        {"61 ef bb bf 62", 0, 0},
        {"61 ef bb bf", 0, 0},
        {"ef bb bf ef bb bf", 0, 0},
        {"ef bb", UTF8, UTF8},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* The first error in the string decides the code. */
static void test_first_error_wins(void)
{
    static const vec v[] = {
        {"00 ed a0 80", NUL0, NUL0},
        {"ed a0 80 00", SURR, SURR},
        {"01 00", NUL0, CTRL},
        {"c0 80 00", UTF8, UTF8},
        {"7f ed a0 80", SURR, CTRL},
    };
    run_table(v, MQ_ARRAY_LEN(v));
}

/* The word-at-a-time path must see a bad byte at every offset, for every
 * alignment of the buffer. */
static void test_ascii_fast_path_finds_bad_byte_at_every_offset(void)
{
    static const struct {
        uint8_t byte;
        int loose, strict;
    } bad[] = {
        {0x00, NUL0, NUL0}, {0x01, 0, CTRL}, {0x1f, 0, CTRL},   {0x7f, 0, CTRL},
        {0x80, UTF8, UTF8}, {0xc3, UTF8, UTF8}, {0xff, UTF8, UTF8}, {0x20, 0, 0},
        {0x7e, 0, 0},
    };
    uint8_t buf[48];
    int failures = 0;
    for (size_t b = 0; b < MQ_ARRAY_LEN(bad); b++) {
        for (size_t align = 0; align < 8; align++) {
            for (size_t pos = align; pos < sizeof buf; pos++) {
                memset(buf, 'a', sizeof buf);
                buf[pos] = bad[b].byte;
                const uint8_t *p = buf + align;
                size_t n = sizeof buf - align;
                int l = mq_utf8_check(p, n, 0), s = mq_utf8_check(p, n, 1);
                if ((l != bad[b].loose || s != bad[b].strict) && failures++ < 5)
                    fprintf(stderr, "  byte %02x at %zu (align %zu): got %d/%d\n", bad[b].byte,
                            pos, align, l, s);
            }
        }
    }
    CHECK_EQ(failures, 0);
}

/* Multi-byte characters straddling 8-byte words, and truncated at the end
 * of buffers of every length. */
static void test_multibyte_at_every_offset(void)
{
    static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "\xef\xbb\xbf"};
    uint8_t buf[40];
    int failures = 0;
    for (size_t s = 0; s < MQ_ARRAY_LEN(seqs); s++) {
        size_t sl = strlen(seqs[s]);
        for (size_t pos = 0; pos + sl <= sizeof buf; pos++) {
            memset(buf, 'x', sizeof buf);
            memcpy(buf + pos, seqs[s], sl);
            failures += mq_utf8_check(buf, sizeof buf, 1) != 0;
            /* every proper prefix at the end of the string is truncated */
            for (size_t cut = 1; cut < sl; cut++)
                failures += mq_utf8_check(buf, pos + cut, 0) != UTF8;
            failures += mq_utf8_check(buf, pos + sl, 0) != 0;
        }
    }
    CHECK_EQ(failures, 0);
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: every Unicode scalar
 * value, encoded per RFC 3629, is accepted; every surrogate is reported as
 * one; strict mode flags exactly the controls and non-characters. */
static void test_every_code_point(void)
{
    int failures = 0;
    for (uint32_t cp = 1; cp <= 0x10ffff; cp++) {
        uint8_t b[4];
        size_t n = encode(cp, b);
        int surrogate = cp >= 0xd800 && cp <= 0xdfff;
        int nonchar = (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xffff) >= 0xfffe;
        int control = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
        int want = surrogate ? SURR : 0;
        int want_strict = surrogate ? SURR : (nonchar || control) ? CTRL : 0;
        if (mq_utf8_check(b, n, 0) != want || mq_utf8_check(b, n, 1) != want_strict) {
            if (failures++ < 5)
                fprintf(stderr, "  U+%04" PRIX32 " misjudged\n", cp);
        }
    }
    CHECK_EQ(failures, 0);
}

/* The Unicode Standard, Table 3-7 (Well-Formed UTF-8 Byte Sequences), written as byte
 * ranges, independently of the decoder: 1 if b[0..n) is one well-formed
 * sequence. */
static int table37(const uint8_t *b, size_t n)
{
    static const struct {
        uint8_t lo[4], hi[4];
        size_t n;
    } rows[] = {
        {{0x00}, {0x7f}, 1},
        {{0xc2, 0x80}, {0xdf, 0xbf}, 2},
        {{0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}, 3},
        {{0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}, 3},
        {{0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}, 3},
        {{0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}, 3},
        {{0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}, 4},
        {{0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}, 4},
        {{0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}, 4},
    };
    for (size_t r = 0; r < MQ_ARRAY_LEN(rows); r++) {
        if (rows[r].n != n)
            continue;
        size_t k = 0;
        while (k < n && b[k] >= rows[r].lo[k] && b[k] <= rows[r].hi[k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

static int is_surrogate_seq(const uint8_t *b, size_t n)
{
    return n == 3 && b[0] == 0xed && b[1] >= 0xa0 && b[1] <= 0xbf && b[2] >= 0x80 &&
           b[2] <= 0xbf;
}

/* Compare with Table 3-7 on one candidate sequence (callers keep NUL
 * bytes out, so U+0000 never decides the result). */
static int agrees(const uint8_t *b, size_t n)
{
    int rc = mq_utf8_check(b, n, 0);
    if (table37(b, n))
        return rc == 0;
    if (is_surrogate_seq(b, n))
        return rc == SURR;
    return rc < 0;
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: every 2-byte string, and
 * every 3-byte string with a 3-byte lead, against Table 3-7; 4-byte leads
 * with every second byte and the boundary values of the last two. */
static void test_agrees_with_unicode_table_3_7(void)
{
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                   0xa0, 0xbf, 0xc0, 0xc2, 0xf4, 0xff};
    int failures = 0;
    uint8_t b[4];
    for (unsigned i = 1; i < 0x10000; i++) {
        b[0] = (uint8_t)(i >> 8);
        b[1] = (uint8_t)i;
        if (b[0] >= 0x80 && b[1] != 0)
            failures += !agrees(b, 2);
    }
    for (unsigned i = 0xe00000; i < 0xf00000; i++) {
        b[0] = (uint8_t)(i >> 16);
        b[1] = (uint8_t)(i >> 8);
        b[2] = (uint8_t)i;
        if (b[1] && b[2])
            failures += !agrees(b, 3);
    }
    for (unsigned lead = 0xf0; lead <= 0xff; lead++)
        for (unsigned c1 = 1; c1 < 0x100; c1++)
            for (size_t c2 = 1; c2 < MQ_ARRAY_LEN(edge); c2++)
                for (size_t c3 = 1; c3 < MQ_ARRAY_LEN(edge); c3++) {
                    b[0] = (uint8_t)lead;
                    b[1] = (uint8_t)c1;
                    b[2] = edge[c2];
                    b[3] = edge[c3];
                    failures += !agrees(b, 4);
                }
    CHECK_EQ(failures, 0);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_empty_string_is_valid);
    RUN(test_boundary_code_points_are_valid);
    RUN(test_code_points_above_10ffff_are_ill_formed);
    RUN(test_overlong_forms_are_ill_formed);
    RUN(test_five_and_six_byte_leads_are_ill_formed);
    RUN(test_lone_continuation_bytes_are_ill_formed);
    RUN(test_truncated_sequences_are_ill_formed);
    RUN(test_surrogates_are_rejected);
    RUN(test_null_character_is_rejected);
    RUN(test_control_characters_rejected_only_when_strict);
    RUN(test_noncharacters_rejected_only_when_strict);
    RUN(test_bom_is_an_ordinary_character);
    RUN(test_first_error_wins);
    RUN(test_ascii_fast_path_finds_bad_byte_at_every_offset);
    RUN(test_multibyte_at_every_offset);
    RUN(test_every_code_point);
    RUN(test_agrees_with_unicode_table_3_7);
    TEST_MAIN_END();
}
