/*
 * spy_tui_draw.c - drawing the `mqlite spy` terminal UI (see spy_tui.h):
 * the visible rows of the topic tree, the status bar, the tree, the
 * message pane, the bottom line and the help overlay.
 */
#define _GNU_SOURCE /* wcwidth */
#define NCURSES_WIDECHAR 1
#include "spy_tui.h"

#ifndef MQLITE_SPY_NO_TUI

#include <curses.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#define NUM_W 16 /* " %7s %7s": count and rate */

/* ------------------------------------------------------------ text out */

/* Display width of one code point; control characters are not drawn. */
static int cp_width(uint32_t cp)
{
    if (cp == '\t')
        return 1;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
        return 0;
    int w = wcwidth((wchar_t)cp);
    return w < 0 ? 1 : w;
}

/* Draw at most `maxw` columns of UTF-8 text at (y, x); returns the columns
 * used. Tabs become spaces, control characters vanish, bytes that are not
 * UTF-8 (or anything non-ASCII in a non-UTF-8 locale) show as '?'. */
static int put_text(const tui *t, int y, int x, int maxw, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    char out[512];
    size_t o = 0;
    int used = 0;
    move(y, x);
    for (size_t i = 0; i < len && used < maxw;) {
        uint32_t cp = '?';
        size_t k = spy_utf8_next(u + i, len - i, &cp);
        int w = k ? cp_width(cp) : 1;
        if (used + w > maxw)
            break;
        if (o + 4 >= sizeof out) {
            addnstr(out, (int)o);
            o = 0;
        }
        if (k == 0 || (cp >= 0x80 && !t->utf8)) {
            out[o++] = '?';
        } else if (cp == '\t') {
            out[o++] = ' ';
        } else if (w > 0) {
            memcpy(out + o, u + i, k);
            o += k;
        }
        used += w;
        i += k ? k : 1;
    }
    addnstr(out, (int)o);
    return used;
}

static int put_cstr(const tui *t, int y, int x, int maxw, const char *s)
{
    return put_text(t, y, x, maxw, s, strlen(s));
}

static void blank(int y, int x, int w)
{
    if (w > 0)
        mvhline(y, x, ' ', w);
}

static void on(const tui *t, int pair, attr_t extra)
{
    attron(extra | (t->color && pair ? COLOR_PAIR(pair) : 0));
}

static void off(const tui *t, int pair, attr_t extra)
{
    attroff(extra | (t->color && pair ? COLOR_PAIR(pair) : 0));
}

static void fmt_count(char out[16], uint64_t n)
{
    if (n < 10000000ull)
        snprintf(out, 16, "%llu", (unsigned long long)n);
    else if (n < 10000000000ull)
        snprintf(out, 16, "%.1fM", (double)n / 1e6);
    else
        snprintf(out, 16, "%.1fG", (double)n / 1e9);
}

static void fmt_rate(char out[16], double r)
{
    if (r < 1000)
        snprintf(out, 16, "%.1f", r);
    else if (r < 1e6)
        snprintf(out, 16, "%.0f", r);
    else
        snprintf(out, 16, "%.1fM", r / 1e6);
}

void tui_note(tui *t, int64_t now_ms, const char *text)
{
    snprintf(t->note, sizeof t->note, "%s", text);
    t->note_until_ms = now_ms + 8000;
    t->dirty = 1;
}

/* ---------------------------------------------------------------- rows */

static int ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i]) {
            char a = hay[i], b = needle[i];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            if (a != b)
                break;
            i++;
        }
        if (i == n)
            return 1;
    }
    return n == 0;
}

static void row_push(tui *t, spy_node *n, int match, int open)
{
    if (t->nrows == t->rows_cap) {
        t->rows_cap = t->rows_cap ? t->rows_cap * 2 : 256;
        t->rows = spy_xrealloc(t->rows, t->rows_cap * sizeof *t->rows);
    }
    t->rows[t->nrows].node = n;
    t->rows[t->nrows].match = match;
    t->rows[t->nrows].open = open;
    t->nrows++;
}

/* Append the visible rows below n; 1 when any was appended. With a filter,
 * branches that do not match open by themselves to show the matches inside
 * them, and rows with neither a match nor a matching descendant are left out.
 * Depth is bounded by SPY_MAX_DEPTH. */
static int flatten(tui *t, spy_node *n)
{
    int any = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        spy_node *k = n->kids[i];
        if (!spy_node_shown(&t->m, k))
            continue;
        size_t mark = t->nrows;
        int match = t->filter[0] && ci_contains(k->topic, t->filter);
        int open = k->expanded || (t->filter[0] && !match);
        row_push(t, k, match, open);
        int below = open ? flatten(t, k) : 0;
        if (t->filter[0] && !match && !below)
            t->nrows = mark;
        else
            any = 1;
    }
    return any;
}

void tui_rows_build(tui *t)
{
    t->nrows = 0;
    flatten(t, &t->m.root);
}

long tui_row_of(const tui *t, const spy_node *n)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].node == n)
            return (long)i;
    return -1;
}

int tui_tree_height(void)
{
    return LINES - 3 > 1 ? LINES - 3 : 1;
}

/* Keep the selection on a shown row (its nearest shown ancestor, or the
 * first row) and that row on screen. */
static long fix_selection(tui *t, int h)
{
    long idx = -1;
    for (spy_node *n = t->sel; n && idx < 0; n = n->parent)
        if ((idx = tui_row_of(t, n)) >= 0)
            t->sel = n;
    if (idx < 0) {
        idx = t->nrows ? 0 : -1;
        t->sel = t->nrows ? t->rows[0].node : NULL;
    }
    if (idx >= 0 && (size_t)idx < t->top)
        t->top = (size_t)idx;
    if (idx >= 0 && (size_t)idx >= t->top + (size_t)h)
        t->top = (size_t)idx - (size_t)h + 1;
    if (t->nrows <= (size_t)h)
        t->top = 0;
    else if (t->top > t->nrows - (size_t)h)
        t->top = t->nrows - (size_t)h;
    return idx;
}

/* ---------------------------------------------------------- status bar */

static const char *state_name(const tui *t, int *good)
{
    int s = mqlite_client_state(t->sc.c);
    *good = s == MQLITE_STATE_CONNECTED;
    switch (s) {
    case MQLITE_STATE_CONNECTED:
        return "connected";
    case MQLITE_STATE_CONNECTING:
        return "connecting";
    case MQLITE_STATE_WAITING:
        return "disconnected, retrying";
    case MQLITE_STATE_DISCONNECTING:
        return "disconnecting";
    default:
        return "disconnected";
    }
}

static const char *version_name(int v)
{
    return v == MQLITE_V5 ? "MQTT 5.0" : v == MQLITE_V31 ? "MQTT 3.1" : "MQTT 3.1.1";
}

/* One piece of the status bar; returns the new x. */
static int bar_piece(tui *t, int x, const char *text, int pair, attr_t extra)
{
    on(t, pair, A_REVERSE | extra);
    x += put_cstr(t, 0, x, COLS - x, text);
    off(t, pair, A_REVERSE | extra);
    return x;
}

static void draw_bar(tui *t, int64_t now)
{
    char text[256], cnt[16], rate[16];
    int good;
    const char *state = state_name(t, &good);
    on(t, TUI_C_BAR, A_REVERSE);
    blank(0, 0, COLS);
    off(t, TUI_C_BAR, A_REVERSE);
    snprintf(text, sizeof text, " %s:%d %s | ", t->so->o.host, t->so->o.port,
             version_name(t->so->o.version));
    int x = bar_piece(t, 0, text, TUI_C_BAR, 0);
    x = bar_piece(t, x, state, good ? TUI_C_OK : TUI_C_BAD, A_BOLD);
    x = bar_piece(t, x, " | ", TUI_C_BAR, 0);
    if (t->m.paused) {
        snprintf(text, sizeof text, "PAUSED: display frozen, +%llu msgs counted",
                 (unsigned long long)t->m.held);
        x = bar_piece(t, x, text, TUI_C_BAD, A_BOLD);
        x = bar_piece(t, x, " | ", TUI_C_BAR, 0);
    }
    /* the totals are live even while paused: what is arriving now */
    fmt_count(cnt, t->m.root.live.total);
    fmt_rate(rate, spy_model_rate(&t->m, &t->m.root.live.sub, now));
    snprintf(text, sizeof text, "%zu topics | %s msgs | %s msg/s", t->m.ntopics, cnt, rate);
    bar_piece(t, x, text, TUI_C_BAR, 0);
}

/* ---------------------------------------------------------------- tree */

static void draw_row(tui *t, int y, int w, const tui_row *r, int selected, int64_t now)
{
    const spy_node *n = r->node;
    const spy_stats *v = spy_node_view(&t->m, n);
    int branch = n->nkids > 0, open = branch && r->open;
    char cnt[16], rate[16], nums[40], label[64] = "";
    fmt_count(cnt, branch ? v->total : v->count);
    fmt_rate(rate,
             spy_model_rate(&t->m, branch ? &v->sub : &v->own, spy_model_view_ms(&t->m, now)));
    snprintf(nums, sizeof nums, " %7s %7s", cnt, rate);
    attr_t a = selected ? A_REVERSE : 0;
    int pair = r->match ? TUI_C_MATCH : 0;
    on(t, pair, a | (r->match ? A_BOLD : 0));
    blank(y, 0, w);
    int indent = (n->depth - 1) * 2;
    if (indent > w - NUM_W - 12)
        indent = w - NUM_W - 12 > 0 ? w - NUM_W - 12 : 0;
    const char *mark = !branch ? "  "
                       : open  ? (t->utf8 ? "\u25be " : "- ")
                               : (t->utf8 ? "\u25b8 " : "+ ");
    int x = indent + put_cstr(t, y, indent, w - indent, mark);
    const char *name = n->name[0] ? n->name : "(empty level)";
    if (branch && !open)
        snprintf(label, sizeof label, " (%zu topic%s)", v->topics, v->topics == 1 ? "" : "s");
    int name_w = w - NUM_W - x - (int)strlen(label);
    x += put_cstr(t, y, x, name_w > 4 ? name_w : 4, name);
    if (x + (int)strlen(label) <= w - NUM_W)
        put_cstr(t, y, x, w - NUM_W - x, label);
    put_cstr(t, y, w - NUM_W, NUM_W, nums);
    off(t, pair, a | (r->match ? A_BOLD : 0));
}

static void draw_tree(tui *t, int w, int64_t now)
{
    int h = tui_tree_height();
    long sel = fix_selection(t, h);
    on(t, TUI_C_HEAD, A_BOLD);
    blank(1, 0, w);
    put_cstr(t, 1, 1, w - 1, t->filter[0] ? "TOPICS (filtered)" : "TOPICS");
    put_cstr(t, 1, w - NUM_W, NUM_W, "    MSGS   MSG/S");
    off(t, TUI_C_HEAD, A_BOLD);
    if (t->nrows == 0) {
        const char *why =
            t->filter[0] ? "  no topic matches the filter" : "  waiting for messages...";
        put_cstr(t, 3, 0, w, why);
        return;
    }
    for (int i = 0; i < h && t->top + (size_t)i < t->nrows; i++) {
        size_t r = t->top + (size_t)i;
        draw_row(t, 2 + i, w, &t->rows[r], (long)r == sel, now);
    }
}

/* ------------------------------------------------------- message pane */

/* Local time, to the millisecond. */
static void local_time(char out[48], int64_t wall_ms)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char a[32];
    strftime(a, sizeof a, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, 48, "%s.%03d", a, (int)(wall_ms % 1000));
}

static void detail_counts(tui *t, sbuf *b, const spy_node *n, const spy_stats *v, int64_t now)
{
    now = spy_model_view_ms(&t->m, now);
    sb_printf(b, "Topic: %s\n", n->topic);
    if (n->is_topic)
        sb_printf(b, "This topic: %llu msg%s, %.1f msg/s\n", (unsigned long long)v->count,
                  v->count == 1 ? "" : "s", spy_model_rate(&t->m, &v->own, now));
    if (n->nkids)
        sb_printf(b, "Subtree: %llu msg%s in %zu topic%s, %.1f msg/s\n",
                  (unsigned long long)v->total, v->total == 1 ? "" : "s", v->topics,
                  v->topics == 1 ? "" : "s", spy_model_rate(&t->m, &v->sub, now));
}

static void detail_message(tui *t, sbuf *b, const spy_msg *m, int width)
{
    char when[48];
    local_time(when, m->wall_ms);
    double ago = (double)(spy_wall_ms() - m->wall_ms) / 1000.0;
    sb_printf(b, "\nLast message: %s (%.1f s ago)\n", when, ago < 0 ? 0.0 : ago);
    if (t->cache_seq != m->seq || t->cache_width != width) {
        t->cache_kind = spy_payload_kind(m->payload, m->len);
        sb_reset(&t->cache);
        int per_line = width >= 78 ? 16 : width >= 42 ? 8 : 4;
        spy_payload_render(&t->cache, m->payload, m->len, t->cache_kind, per_line);
        t->cache_seq = m->seq;
        t->cache_width = width;
    }
    sb_printf(b, "QoS %d%s%s | %zu bytes, %s\n", m->qos, m->retain ? " | retained" : "",
              m->dup ? " | dup" : "", m->full_len, spy_payload_kind_name(t->cache_kind));
    if (m->len < m->full_len)
        sb_printf(b, "(only the first %zu bytes were kept: --max-payload)\n", m->len);
    if (m->nprops) {
        sb_puts(b, "Properties:\n");
        sbuf p = {0};
        spy_msg_props_text(&p, m);
        for (const char *s = sb_str(&p); *s;) {
            const char *e = strchr(s, '\n');
            sb_puts(b, "  ");
            sb_put(b, s, (size_t)(e - s + 1));
            s = e + 1;
        }
        sb_free(&p);
    }
    sb_puts(b, "Payload:\n");
    sb_put(b, t->cache.p, t->cache.len);
}

/* Width-limited pieces of one line: calls out(piece) for each. */
static size_t wrap_piece(const char *s, size_t len, int width)
{
    const unsigned char *u = (const unsigned char *)s;
    int used = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = '?';
        size_t k = spy_utf8_next(u + i, len - i, &cp);
        int w = k ? cp_width(cp) : 1;
        if (used + w > width && i > 0)
            break;
        used += w;
        i += k ? k : 1;
    }
    return i;
}

static void draw_detail(tui *t, int x0, int w, int64_t now)
{
    int h = tui_tree_height();
    on(t, TUI_C_HEAD, A_BOLD);
    blank(1, x0, w);
    put_cstr(t, 1, x0 + 1, w - 1, "MESSAGE");
    off(t, TUI_C_HEAD, A_BOLD);
    if (!t->sel)
        return;
    sbuf b = {0};
    const spy_stats *v = spy_node_view(&t->m, t->sel);
    detail_counts(t, &b, t->sel, v, now);
    if (v->last)
        detail_message(t, &b, v->last, w - 2);
    else
        sb_puts(&b, "\n(no message on this topic itself: it is a branch)\n");
    int line = 0, y = 2;
    for (const char *s = sb_str(&b); *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        size_t off_ = 0;
        do {
            size_t k = wrap_piece(s + off_, len - off_, w - 2);
            if (line++ >= t->detail_top && y < 2 + h)
                put_text(t, y++, x0 + 1, w - 2, s + off_, k);
            off_ += k;
        } while (off_ < len);
        s = e ? e + 1 : s + len;
    }
    t->detail_lines = line;
    sb_free(&b);
}

/* ---------------------------------------------------------- bottom line */

static const char *prompt_label(int p)
{
    switch (p) {
    case PROMPT_FILTER:
        return "filter topics: ";
    case PROMPT_TOPIC:
        return "publish - topic: ";
    case PROMPT_PAYLOAD:
        return "publish - payload: ";
    case PROMPT_QOS:
        return "publish - QoS 0, 1 or 2 [0]: ";
    default:
        return "publish - retain? y/N: ";
    }
}

static size_t count_matches(const tui *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nrows; i++)
        n += (size_t)t->rows[i].match;
    return n;
}

static void draw_bottom(tui *t, int64_t now)
{
    int y = LINES - 1;
    blank(y, 0, COLS);
    char line[600];
    if (t->prompt) {
        int x = put_cstr(t, y, 0, COLS, prompt_label(t->prompt));
        x += put_text(t, y, x, COLS - x - 1, t->input.p ? t->input.p : "", t->input.len);
        curs_set(1);
        move(y, x);
        return;
    }
    curs_set(0);
    if (now < t->note_until_ms) {
        on(t, 0, A_BOLD);
        put_cstr(t, y, 0, COLS, t->note);
        off(t, 0, A_BOLD);
        return;
    }
    if (t->filter[0])
        snprintf(line, sizeof line,
                 "filter \"%s\": %zu matching topics | n/N next/previous  / edit  Esc clear",
                 t->filter, count_matches(t));
    else
        snprintf(line, sizeof line,
                 "q quit  ? help  arrows move/expand  / filter  "
                 "P publish  p pause  c clear counts  J/K scroll message");
    on(t, TUI_C_DIM, 0);
    put_cstr(t, y, 0, COLS, line);
    off(t, TUI_C_DIM, 0);
}

/* --------------------------------------------------------------- help */

static const char *const help_text[] = {
    "mqlite spy - keys",
    "",
    "Up/Down, j/k      move            PgUp/PgDn, Home/End  page / ends",
    "Right, l          expand (again: go to the first child)",
    "Enter, Space      expand / collapse",
    "Left, h           collapse, or go to the parent",
    "*                 expand the whole subtree",
    "/                 filter topics (substring, ignores case)",
    "n / N             next / previous match    Esc  clear the filter",
    "P                 publish a message (topic, payload, QoS, retain)",
    "p                 pause / resume",
    "c                 clear counts and rates",
    "J / K             scroll the message pane",
    "q                 quit",
    "",
    "Pause freezes the display as it was; messages are still received",
    "and counted (the status bar shows how many). Resume shows them.",
    "Branches show the totals of their subtree, topics their own;",
    "rates are msg/s over the last 5 seconds.",
    "",
    "any key closes this help",
};

static void draw_help(tui *t)
{
    int n = (int)(sizeof help_text / sizeof help_text[0]);
    int w = 72 < COLS - 2 ? 72 : COLS - 2, h = n + 2 < LINES ? n + 2 : LINES;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    on(t, TUI_C_BAR, A_REVERSE);
    for (int i = 0; i < h; i++)
        blank(y0 + i, x0, w);
    for (int i = 0; i < n && i + 1 < h; i++)
        put_cstr(t, y0 + 1 + i, x0 + 2, w - 4, help_text[i]);
    off(t, TUI_C_BAR, A_REVERSE);
}

/* -------------------------------------------------------------- frame */

void tui_draw(tui *t, int64_t now_ms)
{
    erase();
    if (LINES < 6 || COLS < 40) {
        mvaddstr(0, 0, "mqlite spy: terminal too small");
        refresh();
        return;
    }
    tui_rows_build(t);
    int tree_w = COLS >= 100 ? COLS * 11 / 20 : COLS >= 70 ? COLS / 2 : COLS;
    draw_bar(t, now_ms);
    draw_tree(t, tree_w, now_ms);
    if (tree_w < COLS) {
        mvvline(1, tree_w, t->utf8 ? ACS_VLINE : '|', LINES - 2);
        draw_detail(t, tree_w + 1, COLS - tree_w - 1, now_ms);
    }
    if (t->help)
        draw_help(t);
    draw_bottom(t, now_ms);
    refresh();
    t->drawn_ms = now_ms;
    t->dirty = 0;
}

#endif /* MQLITE_SPY_NO_TUI */
