/*
 * cmd_pub.c - `mqlite pub`: publish messages, flag-compatible with
 * mosquitto_pub for the common flags. Drives the client from its own
 * poll() loop (stdin and the client's socket), as any application may.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliopts.h"
#include "tools.h"

typedef struct pub_state {
    cli_opts o;
    int retain;
    const char *message;
    const char *file;
    int null_msg, stdin_lines, stdin_whole;
    int failures;
    int64_t sent;
} pub_state;

static void usage(FILE *out)
{
    fprintf(out, "usage: mqlite pub -t TOPIC (-m MSG | -f FILE | -l | -s | -n) [options]\n"
                 "       mqlite pub --store FILE [options]   (send what the store holds)\n"
                 "Publish messages; same flags as mosquitto_pub.\n\n"
                 "  -m MSG           message payload\n"
                 "  -f FILE          send FILE's content as one message\n"
                 "  -l               send each line of standard input as a message\n"
                 "  -s               send all of standard input as one message\n"
                 "  -n               send a zero-length message\n"
                 "  -r               retain the message\n");
    fputs(cli_common_help, out);
}

static int read_all(FILE *f, char **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b)
        return -1;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return -1;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    *buf = b;
    *len = n;
    return ferror(f) ? -1 : 0;
}

/* Handle the events of one round; returns -1 when the connection is gone. */
static int drain(mqlite_client *c, pub_state *st)
{
    const mqlite_event *ev;
    int gone = 0;
    while ((ev = mqlite_client_next_event(c)) != NULL) {
        switch (mqlite_event_type(ev)) {
        case MQLITE_EVENT_TRACE:
            cli_trace(ev, st->o.version);
            break;
        case MQLITE_EVENT_PUBLISHED:
            if (mqlite_event_error(ev)) {
                st->failures++;
                if (!st->o.quiet)
                    fprintf(stderr, "mqlite pub: %s\n", mqlite_event_text(ev));
            }
            break;
        case MQLITE_EVENT_DISCONNECTED:
        case MQLITE_EVENT_CONNECT_FAILED:
            if (mqlite_event_error(ev) && !st->o.quiet)
                fprintf(stderr, "mqlite pub: %s\n", mqlite_event_text(ev));
            gone = 1;
            break;
        default:
            break;
        }
    }
    return gone ? -1 : 0;
}

static int publish(mqlite_client *c, pub_state *st, const void *p, size_t n)
{
    if (mqlite_client_publish(c, st->o.topics[0], p, n, st->o.qos, st->retain, NULL) < 0) {
        if (!st->o.quiet)
            fprintf(stderr, "mqlite pub: %s\n", mqlite_client_errmsg(c));
        return -1;
    }
    st->sent++;
    return 0;
}

/* Standard input for -l, read with read(2) so that poll() on fd 0 tells the
 * truth (stdio would hide lines already in its buffer). */
typedef struct linebuf {
    char *p;
    size_t len, cap;
    int eof;
} linebuf;

/* Publish every complete line in lb; at end of input, the last partial one. */
static int publish_lines(mqlite_client *c, pub_state *st, linebuf *lb)
{
    size_t start = 0;
    for (size_t i = 0; i < lb->len; i++) {
        if (lb->p[i] != '\n')
            continue;
        if (publish(c, st, lb->p + start, i - start) < 0)
            return -1;
        start = i + 1;
    }
    if (lb->eof && start < lb->len) {
        if (publish(c, st, lb->p + start, lb->len - start) < 0)
            return -1;
        start = lb->len;
    }
    memmove(lb->p, lb->p + start, lb->len - start);
    lb->len -= start;
    return 0;
}

static int read_stdin(mqlite_client *c, pub_state *st, linebuf *lb)
{
    if (lb->cap - lb->len < 4096) {
        size_t cap = lb->cap ? lb->cap * 2 : 65536;
        char *p = realloc(lb->p, cap);
        if (!p)
            return -1;
        lb->p = p;
        lb->cap = cap;
    }
    ssize_t n = read(0, lb->p + lb->len, lb->cap - lb->len);
    if (n < 0 && errno != EINTR && errno != EAGAIN)
        return -1;
    if (n == 0)
        lb->eof = 1;
    if (n > 0)
        lb->len += (size_t)n;
    return publish_lines(c, st, lb);
}

/* One loop round over the client's socket and, with -l, standard input. */
static int round_trip(mqlite_client *c, pub_state *st, linebuf *lb)
{
    struct pollfd fds[2];
    int n = 0, want_stdin = !lb->eof;
    int cfd = mqlite_client_fd(c);
    if (cfd >= 0) {
        fds[n].fd = cfd;
        fds[n].events = POLLIN | (mqlite_client_want_write(c) ? POLLOUT : 0);
        fds[n++].revents = 0;
    }
    if (want_stdin) {
        fds[n].fd = 0;
        fds[n].events = POLLIN;
        fds[n++].revents = 0;
    }
    int timeout = mqlite_client_next_timeout_ms(c);
    if (timeout < 0 || timeout > 1000)
        timeout = 1000;
    if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
        return -1;
    int r = 0, w = 0;
    if (cfd >= 0) {
        r = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        w = (fds[0].revents & POLLOUT) != 0;
    }
    mqlite_client_io(c, r, w);
    if (want_stdin && (fds[n - 1].revents & (POLLIN | POLLHUP | POLLERR)) &&
        read_stdin(c, st, lb) < 0)
        return -1;
    return drain(c, st);
}

static int run(mqlite_client *c, pub_state *st)
{
    if (cli_connect(c, &st->o, "pub"))
        return 1;
    linebuf lb = {NULL, 0, 0, !st->stdin_lines};
    int rc = 0;
    if (st->message || st->null_msg) {
        const char *m = st->null_msg ? "" : st->message;
        rc = publish(c, st, m, strlen(m));
    } else if (st->file || st->stdin_whole) {
        FILE *f = st->file ? fopen(st->file, "rb") : stdin;
        char *buf = NULL;
        size_t len = 0;
        if (!f || read_all(f, &buf, &len) < 0) {
            fprintf(stderr, "mqlite pub: cannot read %s: %s\n", st->file ? st->file : "stdin",
                    strerror(errno));
            rc = -1;
        } else {
            rc = publish(c, st, buf, len);
        }
        free(buf);
        if (f && f != stdin)
            fclose(f);
    }
    /* Until stdin ends and every QoS flow is complete. */
    while (rc == 0 && (!lb.eof || mqlite_client_queued(c) || mqlite_client_inflight(c) ||
                       mqlite_client_want_write(c)))
        rc = round_trip(c, st, &lb);
    free(lb.p);
    if (rc == 0 && mqlite_client_disconnect(c, 0) == 0)
        for (int i = 0; i < 50 && mqlite_client_state(c) != MQLITE_STATE_IDLE; i++) {
            mqlite_client_poll(c, 100);
            drain(c, st);
        }
    return rc || st->failures ? 1 : 0;
}

int cmd_pub(int argc, char **argv)
{
    pub_state st;
    memset(&st, 0, sizeof st);
    cli_defaults(&st.o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int r = cli_parse_common(&st.o, argc, argv, &i, "pub");
        if (r == CLI_BAD)
            return 2;
        if (r == CLI_TOOK)
            continue;
        if (!strcmp(a, "-r"))
            st.retain = 1;
        else if (!strcmp(a, "-n"))
            st.null_msg = 1;
        else if (!strcmp(a, "-l"))
            st.stdin_lines = 1;
        else if (!strcmp(a, "-s"))
            st.stdin_whole = 1;
        else if ((!strcmp(a, "-m") || !strcmp(a, "-f")) && i + 1 < argc) {
            if (a[1] == 'm')
                st.message = argv[++i];
            else
                st.file = argv[++i];
        } else {
            fprintf(stderr, "mqlite pub: unknown option '%s' (see mqlite pub --help)\n", a);
            return 2;
        }
    }
    int sources = !!st.message + !!st.file + st.null_msg + st.stdin_lines + st.stdin_whole;
    /* With --store and nothing to send: deliver what the store still holds. */
    int resume_only = st.o.store && sources == 0 && st.o.ntopics == 0;
    if (!resume_only && (st.o.ntopics != 1 || sources != 1)) {
        fprintf(stderr, "mqlite pub: need exactly one -t TOPIC and one of -m, -f, -l, -s, -n "
                        "(or --store FILE alone, to send what the store still holds)\n");
        return 2;
    }
    mqlite_client *c = cli_client(&st.o, "pub");
    if (!c)
        return 1;
    int rc = run(c, &st);
    mqlite_client_free(c);
    return rc;
}
