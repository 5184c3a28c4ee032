/*
 * cmd_broker.c - `mqlite broker [-p PORT]... [-c CONFIG] [-v] [--port-file F]`:
 * run the embeddable broker as a program. Listens on 127.0.0.1:1883 unless
 * told otherwise; prints a one-line banner to stderr (version, listeners,
 * configuration file, whose TLS listeners, password and ACL files and limits
 * are described in docs/security.md); SIGINT and SIGTERM stop it cleanly through
 * mqlite_broker_stop(), the one call that is safe in a signal handler.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "mqlite.h"
#include "tools.h"

#define MAX_PORTS 16

/* The signal handler's only way to the broker: set before the handlers
 * are installed, read-only afterwards. */
static mqlite_broker *volatile sig_broker;

static void on_signal(int sig)
{
    (void)sig;
    mqlite_broker_stop(sig_broker);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mqlite broker [-p PORT]... [-c CONFIG] [-v] [--port-file FILE]\n"
            "                     [--persistence-file FILE [--persistence-sync MODE]]\n"
            "       mqlite broker --check -c CONFIG\n"
            "\n"
            "Run an MQTT 3.1/3.1.1/5.0 broker until SIGINT or SIGTERM.\n"
            "\n"
            "  -p, --port PORT    listen on 127.0.0.1:PORT (0: pick a free port and\n"
            "                     report it); may be repeated. Default: 1883 when\n"
            "                     neither -p nor a listener in CONFIG is given\n"
            "  -c, --config FILE  mosquitto-format configuration (see docs/broker.md):\n"
            "                     TLS listeners (certfile, keyfile, cafile, ...),\n"
            "                     password_file, acl_file, limits (docs/security.md)\n"
            "  -v, --verbose      log everything (debug); default: connects, disconnects\n"
            "                     and errors\n"
            "      --port-file F  write the first listener's port to F once listening\n"
            "      --persistence-file F  keep retained messages and persistent sessions\n"
            "                     (with their queued and in-flight messages) in the SQLite\n"
            "                     file F across restarts (docs/persistence.md)\n"
            "      --persistence-sync always|batch|off  when F is committed; default\n"
            "                     always: nothing is acknowledged before it is on disk\n"
            "      --check        validate CONFIG as the broker would load it (keys,\n"
            "                     values, password, ACL and TLS files, opening and\n"
            "                     closing its listeners), print \"CONFIG: OK\" or\n"
            "                     \"file:line: message\" and exit 0 or 1\n"
            "  -h, --help         this help\n");
}

typedef struct args {
    int ports[MAX_PORTS];
    int nports;
    const char *config;
    const char *port_file;
    const char *persist_file;
    int persist_sync; /* MQLITE_PERSIST_SYNC_*; -1 = not given */
    int verbose;
    int check;
} args;

static int parse_port(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

/* 0 ok, 1 help shown, 2 usage error. */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->persist_sync = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
            a->verbose = 1;
        } else if ((!strcmp(o, "-p") || !strcmp(o, "--port")) && has_value) {
            if (a->nports == MAX_PORTS || parse_port(argv[++i], &a->ports[a->nports]) != 0) {
                fprintf(stderr, "mqlite broker: bad port \"%s\" (0..65535, at most %d)\n",
                        argv[i], MAX_PORTS);
                return 2;
            }
            a->nports++;
        } else if ((!strcmp(o, "-c") || !strcmp(o, "--config")) && has_value) {
            a->config = argv[++i];
        } else if (!strcmp(o, "--check")) {
            a->check = 1;
        } else if (!strcmp(o, "--port-file") && has_value) {
            a->port_file = argv[++i];
        } else if (!strcmp(o, "--persistence-file") && has_value) {
            a->persist_file = argv[++i];
        } else if (!strcmp(o, "--persistence-sync") && has_value) {
            const char *m = argv[++i];
            a->persist_sync = !strcmp(m, "always") ? MQLITE_PERSIST_SYNC_ALWAYS
                              : !strcmp(m, "batch") ? MQLITE_PERSIST_SYNC_BATCH
                              : !strcmp(m, "off")   ? MQLITE_PERSIST_SYNC_OFF
                                                    : -1;
            if (a->persist_sync < 0) {
                fprintf(stderr, "mqlite broker: --persistence-sync: always, batch or off, not "
                                "\"%s\"\n", m);
                return 2;
            }
        } else {
            fprintf(stderr, "mqlite broker: unknown or incomplete option \"%s\"\n", o);
            usage(stderr);
            return 2;
        }
    }
    if (a->check && !a->config) {
        fprintf(stderr, "mqlite broker: --check needs -c CONFIG\n");
        return 2;
    }
    return 0;
}

/* --check: load the file into a broker that never runs. Listeners the file
 * names are opened and closed again, so a port in use is reported too. */
static int check_config(const char *path)
{
    mqlite_broker *b = mqlite_broker_new();
    if (!b) {
        fprintf(stderr, "mqlite broker: out of memory\n");
        return 1;
    }
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR);
    char *persist = NULL;
    int rc = mq_bconf_check(b, path, &persist) != 0;
    if (rc)
        fprintf(stderr, "%s\n", mqlite_broker_errmsg(b));
    else if (persist)
        printf("%s: OK (persistence file %s not opened by --check)\n", path, persist);
    else
        printf("%s: OK\n", path);
    mq_free(&b->a, persist);
    mqlite_broker_free(b);
    return rc;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Open listeners and load the configuration; 0 or the exit status. */
static int setup(mqlite_broker *b, const args *a, char *listeners, size_t cap)
{
    /* The command line's file wins over the configuration's. */
    if (a->persist_sync >= 0)
        mqlite_broker_set_int(b, MQLITE_BOPT_PERSISTENCE_SYNC, a->persist_sync);
    if (a->persist_file && mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE,
                                                 a->persist_file) != 0) {
        fprintf(stderr, "mqlite broker: %s\n", mqlite_broker_errmsg(b));
        return 1;
    }
    if (a->config && mqlite_broker_load_config(b, a->config) != 0) {
        fprintf(stderr, "mqlite broker: %s\n", mqlite_broker_errmsg(b));
        return 1;
    }
    if (a->persist_sync >= 0)
        mqlite_broker_set_int(b, MQLITE_BOPT_PERSISTENCE_SYNC, a->persist_sync);
    if (a->verbose)
        mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_DEBUG);
    size_t len = 0;
    int from_config = 0;
    while (mqlite_broker_port(b, from_config) >= 0) {
        len += (size_t)snprintf(listeners + len, cap - len, "%sport %d (config)",
                                len ? ", " : "", (int)mqlite_broker_port(b, from_config));
        from_config++;
    }
    int nports = a->nports;
    int ports[MAX_PORTS];
    memcpy(ports, a->ports, sizeof ports);
    if (nports == 0 && from_config == 0)
        ports[nports++] = 1883;
    for (int i = 0; i < nports && len < cap; i++) {
        int32_t bound = 0;
        if (mqlite_broker_listen(b, "127.0.0.1", ports[i], &bound) != 0) {
            fprintf(stderr, "mqlite broker: %s\n", mqlite_broker_errmsg(b));
            return 1;
        }
        len += (size_t)snprintf(listeners + len, cap - len, "%s127.0.0.1:%d", len ? ", " : "",
                                (int)bound);
    }
    return 0;
}

int cmd_broker(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (a.check)
        return check_config(a.config);
    mqlite_broker *b = mqlite_broker_new();
    if (!b) {
        fprintf(stderr, "mqlite broker: out of memory\n");
        return 1;
    }
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_NOTICE);
    char listeners[1024] = "";
    rc = setup(b, &a, listeners, sizeof listeners);
    if (!rc && a.port_file && write_port_file(a.port_file, (int)mqlite_broker_port(b, 0)))
        rc = 1;
    if (rc) {
        mqlite_broker_free(b);
        return rc;
    }
    const char *version;
    mqlite_version(&version);
    fprintf(stderr, "mqlite %s broker listening on %s; config %s\n", version, listeners,
            a.config ? a.config : "(none)");
    sig_broker = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = mqlite_broker_run(b);
    if (rc)
        fprintf(stderr, "mqlite broker: %s\n", mqlite_broker_errmsg(b));
    else
        fprintf(stderr, "mqlite broker: stopped\n");
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sig_broker = NULL;
    mqlite_broker_free(b);
    return rc ? 1 : 0;
}
