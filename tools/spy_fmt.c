/*
 * spy_fmt.c - text helpers of `mqlite spy` (see spy_fmt.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "spy_fmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_MAX_DEPTH 256

void *spy_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("mqlite spy: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

char *spy_xstrndup(const char *s, size_t n)
{
    char *d = spy_xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void sb_reserve(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = spy_xrealloc(b->p, cap);
    b->cap = cap;
}

void sb_put(sbuf *b, const void *data, size_t n)
{
    sb_reserve(b, n);
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sb_putc(sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_reset(sbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void sb_free(sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

const char *sb_str(const sbuf *b)
{
    return b->p ? b->p : "";
}

/* ---------------------------------------------------------------- UTF-8 */

size_t spy_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    /* shortest form, no surrogates, nothing above U+10FFFF */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

size_t spy_utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int spy_utf8_valid(const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = spy_utf8_next(s + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

int spy_is_text(const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') || s[i] == 0x7f)
            return 0;
    return spy_utf8_valid(data, n);
}

/* ------------------------------------------------------------ escaping */

void spy_iso8601(int64_t wall_ms, char out[32])
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", date, (int)(wall_ms % 1000));
}

void spy_escape_c(sbuf *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    sb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = spy_utf8_next(s + i, n - i, &cp);
        unsigned c = s[i];
        if (k > 1) {
            sb_put(b, s + i, k);
            i += k;
            continue;
        }
        if (c == '\\' || c == '"')
            sb_printf(b, "\\%c", c);
        else if (c == '\n')
            sb_puts(b, "\\n");
        else if (c == '\r')
            sb_puts(b, "\\r");
        else if (c == '\t')
            sb_puts(b, "\\t");
        else if (k == 0 || c < 0x20 || c == 0x7f)
            sb_printf(b, "\\x%02x", c);
        else
            sb_putc(b, (char)c);
        i++;
    }
    sb_putc(b, '"');
}

void spy_escape_json(sbuf *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c == '\n')
            sb_puts(b, "\\n");
        else if (c == '\r')
            sb_puts(b, "\\r");
        else if (c == '\t')
            sb_puts(b, "\\t");
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_putc(b, (char)c);
    }
    sb_putc(b, '"');
}

void spy_base64(sbuf *b, const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        if (i + 1 >= n)
            q[2] = '=';
        if (i + 2 >= n)
            q[3] = '=';
        sb_put(b, q, 4);
    }
}

void spy_hex(sbuf *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%02x", s[i]);
}

void spy_hexdump(sbuf *b, const void *data, size_t n, int per_line)
{
    const unsigned char *s = data;
    size_t w = per_line < 4 ? 4 : per_line > 32 ? 32 : (size_t)per_line;
    int wide = n > 0xffff;
    for (size_t off = 0; off < n; off += w) {
        sb_printf(b, wide ? "%08zx " : "%04zx ", off);
        for (size_t i = 0; i < w; i++) {
            if (i % 8 == 0)
                sb_putc(b, ' ');
            if (off + i < n)
                sb_printf(b, "%02x ", s[off + i]);
            else
                sb_puts(b, "   ");
        }
        sb_puts(b, " |");
        for (size_t i = 0; i < w && off + i < n; i++) {
            unsigned c = s[off + i];
            sb_putc(b, c >= 0x20 && c < 0x7f ? (char)c : '.');
        }
        sb_puts(b, "|\n");
    }
}

/* ------------------------------------------------------- JSON validator */

typedef struct jp {
    const char *s;
    size_t n, i;
    int depth;
} jp;

static void jp_ws(jp *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int jp_lit(jp *p, const char *word)
{
    size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
        return 0;
    p->i += k;
    return 1;
}

static int jp_digits(jp *p)
{
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start;
}

static int jp_number(jp *p)
{
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0')
        p->i++;
    else if (!jp_digits(p))
        return 0;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!jp_digits(p))
            return 0;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (!jp_digits(p))
            return 0;
    }
    return 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int jp_string(jp *p)
{
    p->i++; /* the opening quote */
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (p->i >= p->n)
            return 0;
        char e = p->s[p->i++];
        if (e == 'u') {
            for (int k = 0; k < 4; k++)
                if (p->i >= p->n || !is_hex(p->s[p->i++]))
                    return 0;
        } else if (!strchr("\"\\/bfnrt", e)) {
            return 0;
        }
    }
    return 0;
}

static int jp_value(jp *p);

/* An object or array after its opening bracket. */
static int jp_container(jp *p, char close)
{
    if (++p->depth > JSON_MAX_DEPTH)
        return 0;
    p->i++;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return 1;
    }
    for (;;) {
        jp_ws(p);
        if (close == '}') {
            if (p->i >= p->n || p->s[p->i] != '"' || !jp_string(p))
                return 0;
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i++] != ':')
                return 0;
        }
        if (!jp_value(p))
            return 0;
        jp_ws(p);
        if (p->i >= p->n)
            return 0;
        char c = p->s[p->i++];
        if (c == close) {
            p->depth--;
            return 1;
        }
        if (c != ',')
            return 0;
    }
}

static int jp_value(jp *p)
{
    jp_ws(p);
    if (p->i >= p->n)
        return 0;
    switch (p->s[p->i]) {
    case '{':
        return jp_container(p, '}');
    case '[':
        return jp_container(p, ']');
    case '"':
        return jp_string(p);
    case 't':
        return jp_lit(p, "true");
    case 'f':
        return jp_lit(p, "false");
    case 'n':
        return jp_lit(p, "null");
    default:
        return jp_number(p);
    }
}

int spy_json_valid(const char *data, size_t n)
{
    jp p = {data, n, 0, 0};
    if (!jp_value(&p))
        return 0;
    jp_ws(&p);
    return p.i == n;
}

/* ------------------------------------------------- JSON pretty-printer */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* End of the string literal starting at s[i] (index after its closing
 * quote), or 0 when it does not end. */
static size_t string_end(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* An object or array with balanced brackets and ended strings, and only
 * white space around it. */
static int json_shaped(const char *s, size_t n)
{
    char stack[JSON_MAX_DEPTH];
    int depth = 0, closed = 0;
    size_t i = 0;
    while (i < n && is_ws(s[i]))
        i++;
    if (i == n || (s[i] != '{' && s[i] != '['))
        return 0;
    for (; i < n; i++) {
        char c = s[i];
        if (closed) {
            if (!is_ws(c))
                return 0;
        } else if (c == '"') {
            size_t e = string_end(s, n, i);
            if (!e)
                return 0;
            i = e - 1;
        } else if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH)
                return 0;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[--depth] != c)
                return 0;
            closed = depth == 0;
        }
    }
    return closed;
}

static void newline_indent(sbuf *b, int depth)
{
    sb_putc(b, '\n');
    for (int k = 0; k < depth; k++)
        sb_puts(b, "  ");
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && is_ws(s[i]))
        i++;
    return i;
}

/* Lay out one structural character at s[*i]; returns the new depth. */
static int pretty_punct(sbuf *b, const char *s, size_t n, size_t *i, int depth)
{
    char c = s[*i];
    if (c == '{' || c == '[') {
        size_t j = skip_ws(s, n, *i + 1);
        sb_putc(b, c);
        if (j < n && s[j] == (c == '{' ? '}' : ']')) {
            sb_putc(b, s[j]);
            *i = j;
            return depth;
        }
        newline_indent(b, ++depth);
    } else if (c == '}' || c == ']') {
        newline_indent(b, --depth);
        sb_putc(b, c);
    } else if (c == ',') {
        sb_putc(b, c);
        size_t j = skip_ws(s, n, *i + 1);
        if (j < n && s[j] != '}' && s[j] != ']') /* near-JSON: `[1, 2,]` */
            newline_indent(b, depth);
    } else {
        sb_puts(b, ": ");
    }
    return depth;
}

int spy_json_pretty(sbuf *b, const char *s, size_t n)
{
    if (!json_shaped(s, n))
        return -1;
    int depth = 0, scalar = 0, gap = 0;
    for (size_t i = skip_ws(s, n, 0); i < n; i++) {
        char c = s[i];
        if (is_ws(c)) {
            gap = 1;
            continue;
        }
        if (strchr("{}[],:", c)) {
            depth = pretty_punct(b, s, n, &i, depth);
            scalar = gap = 0;
            continue;
        }
        if (scalar && gap)
            sb_putc(b, ' '); /* keep near-JSON tokens apart: `NaN 1` */
        if (c == '"') {
            size_t e = string_end(s, n, i);
            sb_put(b, s + i, e - i);
            i = e - 1;
        } else {
            sb_putc(b, c);
        }
        scalar = 1;
        gap = 0;
    }
    return 0;
}

/* ------------------------------------------------------------ payloads */

int spy_payload_kind(const void *data, size_t n)
{
    if (n == 0)
        return SPY_PAYLOAD_EMPTY;
    if (!spy_is_text(data, n))
        return SPY_PAYLOAD_BINARY;
    if (!json_shaped(data, n))
        return SPY_PAYLOAD_TEXT;
    return spy_json_valid(data, n) ? SPY_PAYLOAD_JSON : SPY_PAYLOAD_JSON_LENIENT;
}

const char *spy_payload_kind_name(int kind)
{
    switch (kind) {
    case SPY_PAYLOAD_EMPTY:
        return "empty";
    case SPY_PAYLOAD_TEXT:
        return "text";
    case SPY_PAYLOAD_JSON:
        return "JSON";
    case SPY_PAYLOAD_JSON_LENIENT:
        return "JSON-like (not strict JSON)";
    default:
        return "binary";
    }
}

void spy_payload_render(sbuf *b, const void *data, size_t n, int kind, int hex_per_line)
{
    switch (kind) {
    case SPY_PAYLOAD_EMPTY:
        sb_puts(b, "(empty payload)");
        break;
    case SPY_PAYLOAD_JSON:
    case SPY_PAYLOAD_JSON_LENIENT:
        if (spy_json_pretty(b, data, n) == 0)
            break;
        /* fall through */
    case SPY_PAYLOAD_TEXT:
        sb_put(b, data, n);
        break;
    default:
        spy_hexdump(b, data, n, hex_per_line);
        break;
    }
}
