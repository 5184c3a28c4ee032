/*
 * utf8.c - validation of MQTT UTF-8 Encoded Strings
 * (MQTT 3.1.1 section 1.5.3, MQTT 5.0 section 1.5.4).
 *
 * Topics, client identifiers and property strings are almost always ASCII,
 * so whole 8-byte words are tested at once and only words holding a
 * non-ASCII, NUL or (strict) control byte are walked byte by byte.
 */
#include "utf8.h"

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* 1 if some byte of w is below n (1 <= n <= 0x80). Exact, not a heuristic,
 * as long as every byte of w is below 0x80: the first byte under n borrows
 * and sets its own high bit, no byte at or above n can. */
static int any_below(uint64_t w, unsigned n)
{
    return ((w - ONES * n) & HIGHS) != 0;
}

/* 1 if all 8 bytes are ASCII that needs no further look: not U+0000 and,
 * when strict, not U+0001..U+001F or U+007F. Byte order does not matter. */
static int word_plain(uint64_t w, int strict)
{
    if (w & HIGHS)
        return 0;
    if (!strict)
        return !any_below(w, 1);
    return !any_below(w, 0x20) && !any_below(w ^ (ONES * 0x7f), 1);
}

static int check_ascii(uint8_t c, int strict)
{
    /* MQTT 3.1.1 [MQTT-1.5.3-2], 5.0 [MQTT-1.5.4-2] */
    if (c == 0)
        return MQLITE_ERR_UTF8_NULL;
    /* MQTT 5.0 1.5.4, 3.1.1 1.5.3: control characters SHOULD NOT appear. */
    if (strict && (c < 0x20 || c == 0x7f))
        return MQLITE_ERR_UTF8_CONTROL;
    return 0;
}

/* Unicode non-characters: U+FDD0..U+FDEF and the last two code points of
 * every plane. */
static int is_nonchar(uint32_t cp)
{
    return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

/* Sequence length announced by a lead byte, its payload bits and the
 * smallest code point that length may carry; 0 for bytes that cannot lead:
 * continuation bytes and the 5- and 6-byte forms RFC 3629 removed. */
static size_t lead_len(uint8_t c, uint32_t *cp, uint32_t *min)
{
    if (c >= 0xc0 && c <= 0xdf) {
        *cp = c & 0x1fu;
        *min = 0x80;
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        *cp = c & 0x0fu;
        *min = 0x800;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf7) {
        *cp = c & 0x07u;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

/* Check the multi-byte sequence at p[0] (>= 0x80) with `left` bytes
 * available. Returns its length, or a negative MQLITE_ERR_UTF8*. */
static int check_seq(const uint8_t *p, size_t left, int strict)
{
    uint32_t cp, min;
    size_t n = lead_len(p[0], &cp, &min);
    if (n == 0 || left < n)
        return MQLITE_ERR_UTF8;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return MQLITE_ERR_UTF8;
        cp = cp << 6 | (p[k] & 0x3fu);
    }
    /* RFC 3629 section 3: overlong forms and anything past U+10FFFF are
     * ill-formed (MQTT 3.1.1 [MQTT-1.5.3-1], 5.0 [MQTT-1.5.4-1]). */
    if (cp < min || cp > 0x10ffff)
        return MQLITE_ERR_UTF8;
    /* MQTT 3.1.1 [MQTT-1.5.3-1], 5.0 [MQTT-1.5.4-1] */
    if (cp >= 0xd800 && cp <= 0xdfff)
        return MQLITE_ERR_UTF8_SURROGATE;
    /* MQTT 5.0 1.5.4, 3.1.1 1.5.3: C1 controls and non-characters SHOULD
     * NOT appear. U+FEFF (EF BB BF) is an ordinary character here
     * (MQTT 5.0 [MQTT-1.5.4-3]). */
    if (strict && (cp <= 0x9f || is_nonchar(cp)))
        return MQLITE_ERR_UTF8_CONTROL;
    return (int)n;
}

int mq_utf8_check(const uint8_t *p, size_t len, int strict)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8 && word_plain(load64(p + i), strict)) {
            i += 8;
            continue;
        }
        int rc;
        if (p[i] < 0x80) {
            rc = check_ascii(p[i], strict);
            if (rc)
                return rc;
            i++;
            continue;
        }
        rc = check_seq(p + i, len - i, strict);
        if (rc < 0)
            return rc;
        i += (size_t)rc;
    }
    return 0;
}
