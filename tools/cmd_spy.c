/*
 * cmd_spy.c - `mqlite spy`: watch a broker (terminal UI, or --plain /
 * --json lines for pipes), or sit between a device and its broker as a
 * decoding proxy (--proxy). Options here; the modes are in spy_tui.c,
 * spy_print.c and spy_proxy.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spy.h"
#include "tools.h"

static void usage(FILE *out)
{
    fputs("usage: mqlite spy [options]                    terminal UI\n"
          "       mqlite spy --plain|--json [options]     one line per message\n"
          "       mqlite spy [--decode] --proxy LISTEN_PORT --to HOST:PORT\n"
          "\n"
          "Watch what goes through an MQTT broker (any broker, MQTT 3.1/3.1.1/5.0).\n"
          "\n"
          "Subscriptions: every -t FILTER (QoS 2 unless -q), or by default '#' plus\n"
          "'$SYS/#' (subscribed separately; a broker that refuses it is fine).\n"
          "With -V 5 the subscriptions ask for 'retain as published', so the retain\n"
          "flag shown is the one the publisher set.\n"
          "\n"
          "Terminal UI (the default; needs a terminal, ncursesw):\n"
          "  a live topic tree; branches show the message count and rate (msg/s over\n"
          "  the last 5 s) of their whole subtree, topics their own; the right pane\n"
          "  shows the selected topic's counts and last message: time, QoS, retain,\n"
          "  5.0 properties, and the payload as text, pretty-printed JSON, or a hex\n"
          "  dump for binary data.\n"
          "  keys: Up/Down/j/k move   PgUp/PgDn/Home/End   Right expand (again: go to\n"
          "        the first child)   Enter/Space expand or collapse   Left collapse\n"
          "        (or go to the parent)   * expand the whole subtree\n"
          "        / filter topics (substring, case-insensitive; Enter keeps it, Esc\n"
          "          drops it)   n / N next / previous match   Esc clear the filter\n"
          "        P publish (prompts for topic, payload, QoS, retain; Esc cancels)\n"
          "        p pause / resume: the display freezes as it was, while messages\n"
          "          are still received and counted (the status bar shows how many);\n"
          "          resuming shows them\n"
          "        J / K scroll the message pane   c clear counts and rates\n"
          "        ? help   q quit (status 0)\n"
          "  The UI never waits for the network; it reconnects (with back-off) when\n"
          "  the connection is lost, and says so in the status bar.\n"
          "  --max-payload BYTES  bytes kept of each topic's last message (default\n"
          "                       65536; the rest is counted, not shown)\n"
          "  --ascii              ASCII tree marks (the default follows the locale)\n"
          "  --no-color           no colors\n"
          "\n"
          "--plain: one line per message on standard output:\n"
          "    TIME TOPIC qos=Q retain=R PAYLOAD\n"
          "  TIME is ISO-8601 UTC with milliseconds (2025-01-02T03:04:05.678Z);\n"
          "  TOPIC is written as a quoted, escaped string when it holds spaces,\n"
          "  quotes, backslashes or control characters; PAYLOAD is a quoted string\n"
          "  with \\\\ \\\" \\n \\r \\t and \\xNN escapes when it is UTF-8, else 0x<hex>.\n"
          "--json: JSON Lines, one object per message:\n"
          "    {\"time\":..., \"topic\":..., \"qos\":1, \"retain\":false, \"dup\":false,\n"
          "     \"payload_bytes\":N, \"payload\":\"...\", \"properties\":{...}}\n"
          "  \"payload\" when the payload is valid UTF-8, else \"payload_base64\"\n"
          "  (standard base64). \"properties\" (5.0, only when present) uses snake_case\n"
          "  names (content_type, response_topic, message_expiry_interval, ...);\n"
          "  user properties are \"user_properties\": [[key, value], ...] in order,\n"
          "  subscription identifiers \"subscription_identifiers\": [n, ...]; binary\n"
          "  values (correlation_data) follow the payload's rule (NAME or NAME_base64).\n"
          "  -C N       exit (status 0) after N messages\n"
          "  -W SECS    stop after SECS seconds (all modes): status 0, or 27 when\n"
          "             -C N was given and not reached\n"
          "  A lost connection ends --plain/--json with status 1.\n"
          "\n"
          "--proxy LISTEN_PORT --to HOST:PORT (also spelled --decode --proxy ...):\n"
          "  a protocol sniffer. Listens on 127.0.0.1:LISTEN_PORT (0: a free port,\n"
          "  printed on the first line and written to --port-file FILE); for each\n"
          "  client that connects it opens a connection to HOST:PORT and forwards the\n"
          "  bytes both ways unchanged (many connections at once, bounded buffers:\n"
          "  a slow side slows the other, nothing is dropped). It decodes both\n"
          "  directions and prints every packet:\n"
          "    TIME #CONN C->B|B->C PACKET...\n"
          "  (C->B client to broker, B->C broker to client; the protocol level is\n"
          "  learned from the CONNECT). A malformed packet is flagged with the rule\n"
          "  it breaks (error name, text with the MQTT statement id) and its bytes\n"
          "  in hex; decoding of that direction of that connection then stops, since\n"
          "  the framing is lost, but the bytes are still forwarded: the proxy never\n"
          "  drops a device's traffic. A packet in the wrong direction (a CONNACK\n"
          "  from a client) is flagged as a protocol error the same way. Packets\n"
          "  over 16 MiB are forwarded but not decoded. Connection opens and closes\n"
          "  are printed too; the connection options below do not apply.\n"
          "\n"
          "Connection options (as mqlite sub):\n",
          out);
    fputs(cli_common_help, out);
    fputs("  --no-sys         do not add '$SYS/#' to the default '#'\n"
          "For spy, -q is the subscriptions' maximum QoS (default 2), -t a topic filter,\n"
          "and -d goes with --plain/--json only.\n",
          out);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "host:port", "[v6]:port" */
static int parse_hostport(spy_opts *so, char *arg)
{
    char *colon = strrchr(arg, ':');
    long port;
    if (!colon || colon == arg || parse_long(colon + 1, 1, 65535, &port))
        return -1;
    *colon = '\0';
    if (arg[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        arg++;
    }
    so->to_host = arg;
    so->to_port = (int)port;
    return 0;
}

/* An option of spy's own with a value; 1 taken, 0 not ours, -1 bad. */
static int parse_valued(spy_opts *so, const char *a, char *v)
{
    long n;
    if (!strcmp(a, "-C")) {
        if (parse_long(v, 1, 2147483647L, &n))
            return -1;
        so->count = n;
    } else if (!strcmp(a, "-W")) {
        if (parse_long(v, 1, 86400L * 365, &n))
            return -1;
        so->timeout_s = n;
    } else if (!strcmp(a, "--max-payload")) {
        if (parse_long(v, 16, 268435456L, &n))
            return -1;
        so->max_payload = (size_t)n;
    } else if (!strcmp(a, "--proxy")) {
        if (parse_long(v, 0, 65535, &n))
            return -1;
        so->proxy_port = (int)n;
        so->mode = SPY_PROXY;
    } else if (!strcmp(a, "--to")) {
        return parse_hostport(so, v) ? -1 : 1;
    } else if (!strcmp(a, "--port-file")) {
        so->port_file = v;
    } else {
        return 0;
    }
    return 1;
}

/* A flag of spy's own; 1 taken, 0 not ours. */
static int parse_flag(spy_opts *so, const char *a, int *decode)
{
    if (!strcmp(a, "--plain") || !strcmp(a, "--json")) {
        if (so->mode == SPY_TUI)
            so->mode = a[2] == 'p' ? SPY_PLAIN : SPY_JSON;
        else if (so->mode != SPY_PROXY)
            so->mode = -1; /* both given */
    } else if (!strcmp(a, "--decode")) {
        *decode = 1;
    } else if (!strcmp(a, "--no-sys")) {
        so->no_sys = 1;
    } else if (!strcmp(a, "--ascii")) {
        so->ascii = 1;
    } else if (!strcmp(a, "--no-color")) {
        so->no_color = 1;
    } else {
        return 0;
    }
    return 1;
}

static int parse_one(spy_opts *so, int argc, char **argv, int *i, int *decode)
{
    const char *a = argv[*i];
    static const char *const valued[] = {"-C",      "-W",   "--max-payload",
                                         "--proxy", "--to", "--port-file"};
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        if (strcmp(a, valued[k]))
            continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "mqlite spy: option %s needs a value\n", a);
            return -1;
        }
        char *v = argv[++*i];
        if (parse_valued(so, a, v) < 0) {
            fprintf(stderr, "mqlite spy: invalid value '%s' for %s\n", v, a);
            return -1;
        }
        return 0;
    }
    if (parse_flag(so, a, decode))
        return 0;
    int r = cli_parse_common(&so->o, argc, argv, i, "spy");
    if (r == CLI_TOOK)
        return 0;
    if (r == CLI_NOT_MINE)
        fprintf(stderr, "mqlite spy: unknown option '%s' (see mqlite spy --help)\n", a);
    return -1;
}

static int check(const spy_opts *so, int decode)
{
    const char *why = NULL;
    if (so->mode < 0)
        why = "--plain and --json exclude each other";
    else if (decode && so->mode != SPY_PROXY)
        why = "--decode needs --proxy LISTEN_PORT --to HOST:PORT";
    else if (so->mode == SPY_PROXY && !so->to_host)
        why = "--proxy needs --to HOST:PORT";
    else if (so->to_host && so->mode != SPY_PROXY)
        why = "--to goes with --proxy LISTEN_PORT";
    else if (so->count && so->mode != SPY_PLAIN && so->mode != SPY_JSON)
        why = "-C N goes with --plain or --json";
    else if (so->o.debug && so->mode == SPY_TUI)
        why = "-d goes with --plain or --json (it would write over the terminal UI)";
    if (why)
        fprintf(stderr, "mqlite spy: %s\n", why);
    return why ? -1 : 0;
}

int cmd_spy(int argc, char **argv)
{
    spy_opts so;
    memset(&so, 0, sizeof so);
    cli_defaults(&so.o);
    so.o.qos = 2; /* see messages at the QoS they were published with */
    so.max_payload = 65536;
    int decode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (parse_one(&so, argc, argv, &i, &decode))
            return 2;
    }
    if (check(&so, decode))
        return 2;
    switch (so.mode) {
    case SPY_PROXY:
        return spy_run_proxy(&so);
    case SPY_PLAIN:
    case SPY_JSON:
        return spy_run_print(&so);
    default:
        return spy_run_tui(&so);
    }
}
