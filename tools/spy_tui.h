/*
 * spy_tui.h - the terminal UI of `mqlite spy`: its state, shared by the
 * loop and key handling (spy_tui.c) and the drawing (spy_tui_draw.c).
 *
 * Layout: a status bar (line 0), column headers (line 1), the topic tree
 * on the left and the selected topic's details on the right, and a bottom
 * line for prompts, notes and key hints. The screen is redrawn from the
 * model at most every 50 ms when something changed and at least once a
 * second (rates and "ago" times move on their own).
 */
#ifndef MQLITE_SPY_TUI_H
#define MQLITE_SPY_TUI_H

#include <stddef.h>
#include <stdint.h>

#include "spy.h"
#include "spy_fmt.h"
#include "spy_model.h"

#define PROMPT_NONE 0
#define PROMPT_FILTER 1
#define PROMPT_TOPIC 2
#define PROMPT_PAYLOAD 3
#define PROMPT_QOS 4
#define PROMPT_RETAIN 5

#define TUI_FILTER_MAX 256

typedef struct tui_row {
    spy_node *node;
    int match; /* the node's topic contains the filter */
    int open;  /* its children are shown (expanded, or opened by the filter) */
} tui_row;

typedef struct tui {
    const spy_opts *so;
    spy_conn sc;
    spy_model m;
    uint64_t msg_seq;

    tui_row *rows; /* the visible tree, rebuilt from the model */
    size_t nrows, rows_cap;
    spy_node *sel; /* selection, by node so that new topics do not move it */
    size_t top;    /* first row on screen */
    int detail_top;
    int detail_lines; /* lines the message pane had at the last draw */

    char filter[TUI_FILTER_MAX];        /* active topic filter, "" for none */
    char filter_before[TUI_FILTER_MAX]; /* restored when the prompt is cancelled */
    int prompt;                         /* PROMPT_* */
    sbuf input;                         /* prompt text, UTF-8 */
    sbuf pub_topic, pub_payload;
    int pub_qos;

    char note[512]; /* transient message on the bottom line */
    int64_t note_until_ms;
    int help;
    int utf8, color;
    int dirty;
    int64_t drawn_ms;
    int quit;

    /* the rendered payload of the selected message, kept across frames */
    uint64_t cache_seq;
    int cache_width;
    int cache_kind;
    sbuf cache;
} tui;

/* Colour pairs. */
#define TUI_C_BAR 1
#define TUI_C_OK 2
#define TUI_C_BAD 3
#define TUI_C_MATCH 4
#define TUI_C_DIM 5
#define TUI_C_HEAD 6

/* spy_tui_draw.c */
void tui_rows_build(tui *t);
long tui_row_of(const tui *t, const spy_node *n); /* -1 when not shown */
int tui_tree_height(void);
void tui_draw(tui *t, int64_t now_ms);
void tui_note(tui *t, int64_t now_ms, const char *text);

#endif
