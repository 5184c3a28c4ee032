/*
 * cmd_sub.c - `mqlite sub`: subscribe and print messages, flag-compatible
 * with mosquitto_sub for the common flags.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cliopts.h"
#include "tools.h"

typedef struct sub_state {
    cli_opts o;
    long count;         /* -C: exit after this many messages */
    long timeout_s;     /* -W */
    int no_newline;     /* -N */
    int no_retained;    /* -R */
    int exit_after_sub; /* -E */
    long received;
    int pending_subacks;
    int refused;
} sub_state;

static void usage(FILE *out)
{
    fprintf(out, "usage: mqlite sub -t FILTER [-t FILTER...] [options]\n"
                 "Subscribe and print each message's payload; same flags as mosquitto_sub.\n\n"
                 "  -v               print the topic before the payload\n"
                 "  -C N             exit after N messages\n"
                 "  -W SECS          exit (status 27) after SECS seconds without finishing\n"
                 "  -N               no newline after each payload\n"
                 "  -R               do not print retained (stale) messages\n"
                 "  -E               exit once the subscriptions are acknowledged\n");
    fputs(cli_common_help, out);
}

static void print_message(const mqlite_event *ev, const sub_state *st)
{
    size_t tl, pl;
    const char *topic = mqlite_event_topic(ev, &tl);
    const void *payload = mqlite_event_payload(ev, &pl);
    if (st->o.verbose) {
        fwrite(topic, 1, tl, stdout);
        fputc(' ', stdout);
    }
    fwrite(payload, 1, pl, stdout);
    if (!st->no_newline)
        fputc('\n', stdout);
    fflush(stdout);
}

/* 1 when done, -1 on failure, 0 to go on. */
static int on_event(const mqlite_event *ev, sub_state *st)
{
    switch (mqlite_event_type(ev)) {
    case MQLITE_EVENT_TRACE:
        cli_trace(ev, st->o.version);
        return 0;
    case MQLITE_EVENT_MESSAGE:
        if (st->no_retained && mqlite_event_retain(ev))
            return 0;
        print_message(ev, st);
        st->received++;
        return st->count && st->received >= st->count ? 1 : 0;
    case MQLITE_EVENT_SUBACK:
        for (int32_t i = 0; i < mqlite_event_count(ev); i++)
            if (mqlite_event_reason_at(ev, i) >= 0x80) {
                st->refused++;
                if (!st->o.quiet)
                    fprintf(stderr, "mqlite sub: subscription refused: %s (0x%02x)\n",
                            mqlite_reason_string(MQLITE_PKT_SUBACK, mqlite_event_reason_at(ev, i),
                                                 st->o.version),
                            (unsigned)mqlite_event_reason_at(ev, i));
            }
        if (--st->pending_subacks == 0) {
            if (st->refused == st->o.ntopics)
                return -1;
            if (st->exit_after_sub)
                return 1;
        }
        return 0;
    case MQLITE_EVENT_DISCONNECTED:
    case MQLITE_EVENT_CONNECT_FAILED:
        if (!st->o.quiet)
            fprintf(stderr, "mqlite sub: %s\n", mqlite_event_text(ev));
        return -1;
    default:
        return 0;
    }
}

static int run(mqlite_client *c, sub_state *st)
{
    if (cli_connect(c, &st->o, "sub"))
        return 1;
    for (int i = 0; i < st->o.ntopics; i++) {
        if (mqlite_client_subscribe(c, st->o.topics[i], st->o.qos, NULL) < 0) {
            fprintf(stderr, "mqlite sub: %s\n", mqlite_client_errmsg(c));
            return 1;
        }
        st->pending_subacks++;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long t0_ms = (long long)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    for (;;) {
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            int r = on_event(ev, st);
            if (r)
                return r < 0 ? 1 : 0;
        }
        if (st->timeout_s) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long long now_ms = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
            if (now_ms - t0_ms >= st->timeout_s * 1000LL) {
                if (!st->o.quiet)
                    fprintf(stderr, "mqlite sub: timed out after %ld s\n", st->timeout_s);
                return 27;
            }
        }
        if (mqlite_client_poll(c, 200) < 0 && mqlite_client_pending_events(c) == 0)
            return 1;
    }
}

int cmd_sub(int argc, char **argv)
{
    sub_state st;
    memset(&st, 0, sizeof st);
    cli_defaults(&st.o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int r = cli_parse_common(&st.o, argc, argv, &i, "sub");
        if (r == CLI_BAD)
            return 2;
        if (r == CLI_TOOK)
            continue;
        if (!strcmp(a, "-v"))
            st.o.verbose = 1;
        else if (!strcmp(a, "-N"))
            st.no_newline = 1;
        else if (!strcmp(a, "-R"))
            st.no_retained = 1;
        else if (!strcmp(a, "-E"))
            st.exit_after_sub = 1;
        else if ((!strcmp(a, "-C") || !strcmp(a, "-W")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1) {
                fprintf(stderr, "mqlite sub: %s needs a positive number\n", a);
                return 2;
            }
            if (a[1] == 'C')
                st.count = v;
            else
                st.timeout_s = v;
        } else {
            fprintf(stderr, "mqlite sub: unknown option '%s' (see mqlite sub --help)\n", a);
            return 2;
        }
    }
    if (st.o.ntopics == 0) {
        fprintf(stderr, "mqlite sub: need at least one -t FILTER\n");
        return 2;
    }
    mqlite_client *c = cli_client(&st.o, "sub");
    if (!c)
        return 1;
    int rc = run(c, &st);
    if (rc == 0 && mqlite_client_disconnect(c, 0) == 0)
        for (int i = 0; i < 20 && mqlite_client_state(c) != MQLITE_STATE_IDLE; i++)
            mqlite_client_poll(c, 100);
    mqlite_client_free(c);
    return rc;
}
