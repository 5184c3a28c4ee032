/*
 * spy_fmt.h - text helpers of `mqlite spy`: a growable string buffer,
 * UTF-8 checks, escaping (C-style, JSON), base64, hex dumps, ISO-8601 time
 * stamps, and a small JSON validator and tolerant pretty-printer. No I/O,
 * no global state.
 */
#ifndef MQLITE_SPY_FMT_H
#define MQLITE_SPY_FMT_H

#include <stddef.h>
#include <stdint.h>

/* A growable, always NUL-terminated string (p NULL until the first write). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Allocation for the tool: on failure print "mqlite spy: out of memory"
 * and exit(1) (the TUI's atexit handler restores the terminal). */
void *spy_xrealloc(void *p, size_t n);
char *spy_xstrndup(const char *s, size_t n);

void sb_put(sbuf *b, const void *data, size_t n);
void sb_putc(sbuf *b, char c);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_reset(sbuf *b); /* len 0, keeps the memory */
void sb_free(sbuf *b);
const char *sb_str(const sbuf *b); /* "" when nothing was written */

/* Decode one UTF-8 sequence (shortest form, no surrogates, <= U+10FFFF) at
 * s[0..n): bytes used, or 0 when s does not start with a valid one. */
size_t spy_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Encode cp into out; returns 1..4 (0 for an invalid code point). */
size_t spy_utf8_put(uint32_t cp, char out[4]);
int spy_utf8_valid(const void *data, size_t n);
/* Valid UTF-8 without control characters other than TAB, LF and CR. */
int spy_is_text(const void *data, size_t n);

/* "2025-01-02T03:04:05.678Z" (UTC) for wall-clock milliseconds. */
void spy_iso8601(int64_t wall_ms, char out[32]);

/* "\"...\"" with \\ \" \n \r \t and \xNN for other control bytes, DEL and
 * bytes that are not valid UTF-8: the result is one printable line. */
void spy_escape_c(sbuf *b, const void *data, size_t n);
/* A JSON string literal, quotes included; `data` must be valid UTF-8. */
void spy_escape_json(sbuf *b, const void *data, size_t n);
void spy_base64(sbuf *b, const void *data, size_t n);
void spy_hex(sbuf *b, const void *data, size_t n);
/* Lines "0000  48 65 6c ...  |Hel...|", `per_line` bytes each (4..32). */
void spy_hexdump(sbuf *b, const void *data, size_t n, int per_line);

/* 1 when data is one strict RFC 8259 JSON value (surrounding white space
 * allowed; nesting deeper than 256 counts as invalid). */
int spy_json_valid(const char *data, size_t n);
/* Re-indent JSON-shaped text, two spaces per level. Tolerant: it only
 * needs an object or array whose brackets balance and whose strings end,
 * so near-JSON (trailing commas, NaN, unquoted keys) is laid out too;
 * scalars are copied verbatim. Returns 0, or -1 (nothing appended) when the
 * text is not shaped like that. */
int spy_json_pretty(sbuf *b, const char *data, size_t n);

/* What a payload looks like, for display. */
#define SPY_PAYLOAD_EMPTY 0
#define SPY_PAYLOAD_TEXT 1
#define SPY_PAYLOAD_JSON 2         /* strict JSON object or array */
#define SPY_PAYLOAD_JSON_LENIENT 3 /* JSON-shaped, not strictly valid */
#define SPY_PAYLOAD_BINARY 4
int spy_payload_kind(const void *data, size_t n);
const char *spy_payload_kind_name(int kind);
/* The payload as display lines: text as is, JSON pretty-printed, binary as
 * a hex dump with `hex_per_line` bytes a line. */
void spy_payload_render(sbuf *b, const void *data, size_t n, int kind, int hex_per_line);

#endif
