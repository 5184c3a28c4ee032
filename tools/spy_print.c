/*
 * spy_print.c - `mqlite spy --plain` and `--json`: one line per message on
 * standard output, for pipes (formats in spy_msg.h). Notes (a refused
 * '$SYS/#', a lost connection) go to standard error. No reconnects: a lost
 * connection ends the run with status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "spy.h"
#include "spy_msg.h"

typedef struct printer {
    const spy_opts *so;
    spy_conn sc;
    long printed;
    sbuf line;
} printer;

static void print_message(printer *pr, const mqlite_event *ev)
{
    size_t tlen = 0;
    const char *topic = mqlite_event_topic(ev, &tlen);
    spy_msg *m = spy_msg_from_event(ev, SIZE_MAX, spy_wall_ms());
    sb_reset(&pr->line);
    if (pr->so->mode == SPY_JSON)
        spy_msg_json(&pr->line, topic, tlen, m);
    else
        spy_msg_plain(&pr->line, topic, tlen, m);
    sb_putc(&pr->line, '\n');
    spy_msg_free(m);
    fwrite(pr->line.p, 1, pr->line.len, stdout);
    fflush(stdout);
    pr->printed++;
}

/* 1: done (-C reached), -1: failed, 0: go on. */
static int drain_events(printer *pr)
{
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(pr->sc.c)) != NULL) {
        switch (spy_conn_event(&pr->sc, ev)) {
        case SPY_EV_MESSAGE:
            print_message(pr, ev);
            if (pr->so->count && pr->printed >= pr->so->count)
                return 1;
            break;
        case SPY_EV_NOTE:
            if (!pr->so->o.quiet)
                fprintf(stderr, "mqlite spy: %s\n", pr->sc.note);
            break;
        case SPY_EV_FATAL:
            if (!pr->so->o.quiet)
                fprintf(stderr, "mqlite spy: %s\n", pr->sc.note);
            return -1;
        default:
            break;
        }
    }
    return 0;
}

static int run(printer *pr)
{
    int64_t deadline = pr->so->timeout_s ? spy_now_ms() + pr->so->timeout_s * 1000 : 0;
    for (;;) {
        int r = drain_events(pr);
        if (r)
            return r < 0 ? 1 : 0;
        if (spy_quit_requested())
            return 0;
        int32_t wait_ms = 200;
        if (deadline) {
            int64_t left = deadline - spy_now_ms();
            if (left <= 0) {
                if (pr->so->count && !pr->so->o.quiet)
                    fprintf(stderr, "mqlite spy: timed out after %ld s (%ld of %ld messages)\n",
                            pr->so->timeout_s, pr->printed, pr->so->count);
                return pr->so->count ? SPY_EXIT_TIMEOUT : 0;
            }
            if (left < wait_ms)
                wait_ms = (int32_t)left;
        }
        mqlite_client_poll(pr->sc.c, wait_ms);
    }
}

int spy_run_print(const spy_opts *so)
{
    printer pr = {.so = so};
    spy_signals_install();
    if (spy_conn_open(&pr.sc, so, 0))
        return 1;
    int rc = run(&pr);
    spy_conn_close(&pr.sc);
    sb_free(&pr.line);
    return rc;
}
