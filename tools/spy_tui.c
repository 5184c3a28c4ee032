/*
 * spy_tui.c - the `mqlite spy` terminal UI: set-up, the loop, keys and
 * prompts (drawing is in spy_tui_draw.c; see spy_tui.h).
 *
 * The loop never blocks on the network: one poll() watches standard input
 * and the client's socket (mqlite_client_fd / _want_write), for at most
 * 200 ms, then mqlite_client_io() does the socket work and runs the
 * client's timers (keep-alive, reconnect back-off). Events are taken at
 * most EVENT_BUDGET per round so that keys stay responsive under a flood.
 * Resizes arrive as KEY_RESIZE (ncurses' own SIGWINCH handler).
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include "spy_tui.h"

#include <stdio.h>

#ifdef MQLITE_SPY_NO_TUI

int spy_run_tui(const spy_opts *so)
{
    (void)so;
    fputs("mqlite spy: this build has no terminal UI (ncursesw was not found); "
          "use --plain or --json\n",
          stderr);
    return 1;
}

#else

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENT_BUDGET 5000
#define INPUT_MAX 65536

/* ------------------------------------------------------------- events */

static void on_message(tui *t, const mqlite_event *ev, int64_t now)
{
    size_t tlen = 0;
    const char *topic = mqlite_event_topic(ev, &tlen);
    spy_msg *m = spy_msg_from_event(ev, t->so->max_payload, spy_wall_ms());
    m->seq = ++t->msg_seq;
    spy_model_add(&t->m, topic, tlen, m, now);
}

static void on_published(tui *t, const mqlite_event *ev, int64_t now)
{
    char text[200];
    int32_t reason = mqlite_event_reason(ev);
    snprintf(text, sizeof text, "publish (packet id %d) acknowledged: %s",
             (int)mqlite_event_packet_id(ev),
             mqlite_reason_string(MQLITE_PKT_PUBACK, reason, t->so->o.version));
    tui_note(t, now, text);
}

static void on_event(tui *t, const mqlite_event *ev, int64_t now)
{
    int32_t type = mqlite_event_type(ev);
    if (type == MQLITE_EVENT_PUBLISHED) {
        on_published(t, ev, now);
        return;
    }
    char text[600];
    switch (spy_conn_event(&t->sc, ev)) {
    case SPY_EV_MESSAGE:
        on_message(t, ev, now);
        break;
    case SPY_EV_NOTE:
        tui_note(t, now, t->sc.note);
        break;
    case SPY_EV_FATAL: /* lost (the client reconnects), or every filter refused */
        snprintf(text, sizeof text, "%s%s", t->sc.note,
                 type == MQLITE_EVENT_DISCONNECTED || type == MQLITE_EVENT_CONNECT_FAILED
                     ? "; reconnecting (q quits)"
                     : ": nothing left to watch");
        tui_note(t, now, text);
        break;
    default:
        break;
    }
}

static void drain(tui *t, int64_t now)
{
    const mqlite_event *ev;
    for (int n = 0; n < EVENT_BUDGET && (ev = mqlite_client_next_event(t->sc.c)) != NULL; n++) {
        on_event(t, ev, now);
        t->dirty = 1;
    }
}

static void io_round(tui *t, int wait_ms)
{
    mqlite_client *c = t->sc.c;
    int fd = mqlite_client_fd(c);
    struct pollfd pf[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
    if (mqlite_client_want_write(c))
        pf[1].events |= POLLOUT;
    int32_t due = mqlite_client_next_timeout_ms(c);
    if (due >= 0 && due < wait_ms)
        wait_ms = due;
    if (mqlite_client_pending_events(c) > 0)
        wait_ms = 0;
    int n = poll(pf, fd >= 0 ? 2 : 1, wait_ms);
    spy_conn_io(&t->sc, n > 0 && fd >= 0 ? pf[1].revents : 0);
}

/* ---------------------------------------------------------- selection */

static void select_row(tui *t, long idx)
{
    if (t->nrows == 0)
        return;
    if (idx < 0)
        idx = 0;
    if ((size_t)idx >= t->nrows)
        idx = (long)t->nrows - 1;
    if (t->rows[idx].node != t->sel)
        t->detail_top = 0;
    t->sel = t->rows[idx].node;
}

static void move_sel(tui *t, long delta)
{
    tui_rows_build(t);
    long idx = tui_row_of(t, t->sel);
    select_row(t, idx < 0 ? 0 : idx + delta);
}

/* Open the ancestors of n, so that it stays in view without a filter. */
static void reveal(spy_node *n)
{
    for (spy_node *p = n ? n->parent : NULL; p; p = p->parent)
        p->expanded = 1;
}

/* The next (dir 1) or previous (-1) row whose topic matches the filter. */
static void next_match(tui *t, int dir, int64_t now)
{
    tui_rows_build(t);
    long n = (long)t->nrows, idx = tui_row_of(t, t->sel);
    for (long k = 1; k <= n; k++) {
        long i = ((idx + dir * k) % n + n) % n;
        if (t->rows[i].match) {
            select_row(t, i);
            reveal(t->sel);
            return;
        }
    }
    tui_note(t, now, t->filter[0] ? "no topic matches the filter" : "no filter: press / first");
}

static void expand_all(spy_node *n)
{
    n->expanded = 1;
    for (size_t i = 0; i < n->nkids; i++)
        expand_all(n->kids[i]);
}

static void key_left(tui *t)
{
    spy_node *n = t->sel;
    if (!n)
        return;
    if (n->nkids && n->expanded)
        n->expanded = 0;
    else if (n->parent && n->parent->parent)
        t->sel = n->parent;
}

static void key_right(tui *t)
{
    spy_node *n = t->sel;
    if (!n || !n->nkids)
        return;
    if (!n->expanded)
        n->expanded = 1;
    else
        move_sel(t, 1);
}

/* -------------------------------------------------------------- prompts */

static void prompt_open(tui *t, int kind, const char *text)
{
    t->prompt = kind;
    sb_reset(&t->input);
    sb_puts(&t->input, text);
}

static void apply_filter(tui *t)
{
    snprintf(t->filter, sizeof t->filter, "%s", sb_str(&t->input));
    tui_rows_build(t);
    long idx = tui_row_of(t, t->sel);
    if (idx >= 0 && t->rows[idx].match)
        return;
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].match) {
            select_row(t, (long)i);
            return;
        }
}

static void publish(tui *t, int retain, int64_t now)
{
    char text[600];
    mqlite_client *c = t->sc.c;
    int32_t id = 0;
    const char *topic = sb_str(&t->pub_topic);
    int32_t rc = mqlite_client_publish(c, topic, t->pub_payload.p, t->pub_payload.len, t->pub_qos,
                                       retain, &id);
    if (rc < 0)
        snprintf(text, sizeof text, "publish failed: %s", mqlite_client_errmsg(c));
    else if (mqlite_client_state(c) != MQLITE_STATE_CONNECTED)
        snprintf(text, sizeof text, "not connected: the message to %s is queued", topic);
    else
        snprintf(text, sizeof text, "published %zu bytes to %s (QoS %d%s)%s", t->pub_payload.len,
                 topic, t->pub_qos, retain ? ", retained" : "",
                 t->pub_qos ? ", waiting for the acknowledgement" : "");
    tui_note(t, now, text);
}

static void prompt_submit(tui *t, int64_t now)
{
    const char *in = sb_str(&t->input);
    switch (t->prompt) {
    case PROMPT_FILTER:
        apply_filter(t);
        reveal(t->sel);
        t->prompt = PROMPT_NONE;
        break;
    case PROMPT_TOPIC:
        if (!*in) {
            t->prompt = PROMPT_NONE;
            tui_note(t, now, "publish cancelled: no topic");
            break;
        }
        sb_reset(&t->pub_topic);
        sb_puts(&t->pub_topic, in);
        prompt_open(t, PROMPT_PAYLOAD, "");
        break;
    case PROMPT_PAYLOAD:
        sb_reset(&t->pub_payload);
        sb_put(&t->pub_payload, t->input.p, t->input.len);
        prompt_open(t, PROMPT_QOS, "");
        break;
    case PROMPT_QOS:
        if (in[0] && (in[1] || in[0] < '0' || in[0] > '2')) {
            tui_note(t, now, "QoS is 0, 1 or 2");
            sb_reset(&t->input);
            break;
        }
        t->pub_qos = in[0] ? in[0] - '0' : 0;
        prompt_open(t, PROMPT_RETAIN, "");
        break;
    default:
        t->prompt = PROMPT_NONE;
        publish(t, in[0] == 'y' || in[0] == 'Y', now);
        break;
    }
}

static void prompt_cancel(tui *t, int64_t now)
{
    if (t->prompt == PROMPT_FILTER)
        snprintf(t->filter, sizeof t->filter, "%s", t->filter_before);
    else
        tui_note(t, now, "publish cancelled");
    t->prompt = PROMPT_NONE;
}

static void input_backspace(sbuf *b)
{
    while (b->len > 0 && ((unsigned char)b->p[b->len - 1] & 0xc0) == 0x80)
        b->len--;
    if (b->len > 0)
        b->len--;
    if (b->p)
        b->p[b->len] = '\0';
}

static void key_prompt(tui *t, int is_code, wint_t ch, int64_t now)
{
    if ((is_code && ch == KEY_BACKSPACE) || (!is_code && (ch == 127 || ch == 8))) {
        input_backspace(&t->input);
    } else if ((is_code && ch == KEY_ENTER) || (!is_code && (ch == '\n' || ch == '\r'))) {
        prompt_submit(t, now);
        return;
    } else if (!is_code && ch == 27) {
        prompt_cancel(t, now);
        return;
    } else if (!is_code && ch == 21) { /* Ctrl-U */
        sb_reset(&t->input);
    } else if (!is_code && ch >= 0x20 && ch != 0x7f && t->input.len < INPUT_MAX) {
        char u[4];
        sb_put(&t->input, u, spy_utf8_put((uint32_t)ch, u));
    }
    if (t->prompt == PROMPT_FILTER)
        apply_filter(t);
}

/* ----------------------------------------------------------- key map */

static void start_publish(tui *t)
{
    sbuf topic = {0};
    if (t->sel) {
        sb_puts(&topic, t->sel->topic);
        if (!t->sel->is_topic)
            sb_putc(&topic, '/');
    }
    prompt_open(t, PROMPT_TOPIC, sb_str(&topic));
    sb_free(&topic);
}

static void toggle_pause(tui *t, int64_t now)
{
    spy_model_pause(&t->m, !t->m.paused, now);
    tui_note(t, now,
             t->m.paused ? "paused: the display is frozen; messages are still counted" : "resumed");
}

static void key_code(tui *t, int code)
{
    int page = tui_tree_height();
    switch (code) {
    case KEY_UP:
        move_sel(t, -1);
        break;
    case KEY_DOWN:
        move_sel(t, 1);
        break;
    case KEY_PPAGE:
        move_sel(t, -page);
        break;
    case KEY_NPAGE:
        move_sel(t, page);
        break;
    case KEY_HOME:
        move_sel(t, -(long)t->nrows - 1);
        break;
    case KEY_END:
        move_sel(t, (long)t->nrows + 1);
        break;
    case KEY_LEFT:
        key_left(t);
        break;
    case KEY_RIGHT:
        key_right(t);
        break;
    case KEY_ENTER:
        if (t->sel)
            t->sel->expanded = !t->sel->expanded;
        break;
    default:
        break; /* KEY_RESIZE: the next frame uses the new LINES / COLS */
    }
}

/* Keys that act on the view; 1 when `ch` was one of them. */
static int key_view(tui *t, wint_t ch)
{
    switch (ch) {
    case 'k':
        move_sel(t, -1);
        return 1;
    case 'j':
        move_sel(t, 1);
        return 1;
    case 'h':
        key_left(t);
        return 1;
    case 'l':
        key_right(t);
        return 1;
    case '\n':
    case '\r':
    case ' ':
        if (t->sel)
            t->sel->expanded = !t->sel->expanded;
        return 1;
    case '*':
        if (t->sel)
            expand_all(t->sel);
        return 1;
    case 'J':
    case 'K':
        t->detail_top += (ch == 'J' ? 1 : -1) * (tui_tree_height() / 2);
        if (t->detail_top > t->detail_lines - 1)
            t->detail_top = t->detail_lines - 1;
        if (t->detail_top < 0)
            t->detail_top = 0;
        return 1;
    default:
        return 0;
    }
}

static void key_char(tui *t, wint_t ch, int64_t now)
{
    if (key_view(t, ch))
        return;
    switch (ch) {
    case '/':
        snprintf(t->filter_before, sizeof t->filter_before, "%s", t->filter);
        prompt_open(t, PROMPT_FILTER, t->filter);
        break;
    case 'n':
    case 'N':
        next_match(t, ch == 'n' ? 1 : -1, now);
        break;
    case 27:
        t->filter[0] = '\0';
        reveal(t->sel);
        break;
    case 'P':
        start_publish(t);
        break;
    case 'p':
        toggle_pause(t, now);
        break;
    case 'c':
        spy_model_clear(&t->m, now);
        tui_note(t, now, "counts and rates cleared");
        break;
    case '?':
        t->help = 1;
        break;
    case 'q':
    case 'Q':
        t->quit = 1;
        break;
    case 12: /* Ctrl-L */
        clearok(curscr, TRUE);
        break;
    default:
        break;
    }
}

static void read_keys(tui *t)
{
    wint_t ch;
    int r;
    while ((r = get_wch(&ch)) != ERR) {
        int64_t now = spy_now_ms();
        int is_code = r == KEY_CODE_YES;
        t->dirty = 1;
        if (is_code && ch == KEY_RESIZE)
            continue;
        if (t->prompt)
            key_prompt(t, is_code, ch, now);
        else if (t->help)
            t->help = 0;
        else if (is_code)
            key_code(t, (int)ch);
        else
            key_char(t, ch, now);
    }
}

/* -------------------------------------------------------------- set-up */

static void restore_terminal(void)
{
    if (!isendwin())
        endwin();
}

static void start_colors(tui *t)
{
    if (t->so->no_color || !has_colors())
        return;
    start_color();
    use_default_colors();
    init_pair(TUI_C_BAR, COLOR_CYAN, -1);
    init_pair(TUI_C_OK, COLOR_GREEN, -1);
    init_pair(TUI_C_BAD, COLOR_RED, -1);
    init_pair(TUI_C_MATCH, COLOR_YELLOW, -1);
    init_pair(TUI_C_DIM, COLOR_BLUE, -1);
    init_pair(TUI_C_HEAD, COLOR_CYAN, -1);
    t->color = 1;
}

static int start_curses(tui *t)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fputs("mqlite spy: the terminal UI needs a terminal; in pipes use --plain or --json\n",
              stderr);
        return -1;
    }
    setlocale(LC_ALL, "");
    t->utf8 = !t->so->ascii && strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    if (!newterm(NULL, stdout, stdin)) {
        fputs("mqlite spy: cannot start the terminal UI (is TERM set?)\n", stderr);
        return -1;
    }
    atexit(restore_terminal);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    start_colors(t);
    return 0;
}

static int run(tui *t)
{
    int64_t deadline = t->so->timeout_s ? spy_now_ms() + t->so->timeout_s * 1000 : 0;
    while (!t->quit && !spy_quit_requested()) {
        int64_t now = spy_now_ms();
        if (deadline && now >= deadline)
            break;
        if (now - t->drawn_ms >= (t->dirty ? 50 : 1000))
            tui_draw(t, now);
        io_round(t, t->dirty ? 50 : 200);
        drain(t, spy_now_ms());
        read_keys(t);
    }
    return 0;
}

int spy_run_tui(const spy_opts *so)
{
    tui t;
    memset(&t, 0, sizeof t);
    t.so = so;
    spy_signals_install(); /* before ncurses, which then keeps ours */
    if (spy_conn_open(&t.sc, so, 1))
        return 1;
    if (start_curses(&t)) {
        spy_conn_close(&t.sc);
        return 2;
    }
    spy_model_init(&t.m, spy_now_ms());
    t.dirty = 1;
    int rc = run(&t);
    endwin();
    spy_conn_close(&t.sc);
    spy_model_free(&t.m);
    free(t.rows);
    sb_free(&t.input);
    sb_free(&t.pub_topic);
    sb_free(&t.pub_payload);
    sb_free(&t.cache);
    return rc;
}

#endif /* MQLITE_SPY_NO_TUI */
