/*
 * cliopts.h - the options `mqlite pub` and `mqlite sub` share, spelled as
 * mosquitto_pub / mosquitto_sub spell them, and the client they configure.
 */
#ifndef MQLITE_CLIOPTS_H
#define MQLITE_CLIOPTS_H

#include <stddef.h>
#include <stdint.h>

#include "mqlite.h"

typedef struct cli_opts {
    const char *host;
    int port;
    const char *id;
    const char *id_prefix;
    int version;
    int keepalive;
    int qos;
    int clean;          /* 0 with -c */
    int64_t session_expiry; /* -x; -1 = not given */
    const char *username, *password;
    const char *will_topic, *will_payload;
    int will_qos, will_retain;
    int debug;          /* -d */
    int quiet;
    const char *topics[64];
    int ntopics;
    int verbose;        /* sub -v */
    const char *store;  /* --store FILE: the client's persistent store */
    int port_given;
    /* TLS (mosquitto_pub's spelling): on when a CA, certificate or
     * --tls-use-os-certs is given */
    const char *cafile, *capath, *certfile, *keyfile, *key_password;
    const char *ciphers, *tls_alpn, *tls_server_name;
    int tls_version;    /* 0, 12, 13 */
    int tls_os_certs;
    int insecure;       /* --insecure: no host name check (as mosquitto_pub) */
    int insecure_all;   /* --tls-insecure-skip-verify: no checks at all */
} cli_opts;

/* Result of cli_parse_common for one argument. */
#define CLI_NOT_MINE 0
#define CLI_TOOK 1
#define CLI_BAD -1

void cli_defaults(cli_opts *o);
/* 1 when the options ask for TLS. */
int cli_tls(const cli_opts *o);
/* Try argv[*i] as a common option; advances *i past its value. */
int cli_parse_common(cli_opts *o, int argc, char **argv, int *i, const char *cmd);
/* A configured client (NULL after printing an error). */
mqlite_client *cli_client(const cli_opts *o, const char *cmd);
/* Connect and wait for CONNACK; prints the reason and returns non-zero on
 * failure. */
int cli_connect(mqlite_client *c, const cli_opts *o, const char *cmd);
/* s as a decimal in [lo, hi]: 0 and *out, or -1. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
/* "mqttv31"/"31", "mqttv311"/"311", "mqttv5"/"5" -> MQLITE_V31/V311/V5; -1 otherwise. */
int cli_version_of(const char *s);
/* Print a TRACE event for -d. */
void cli_trace(const mqlite_event *ev, int version);
/* The usage text of the common options. */
extern const char cli_common_help[];

#endif
