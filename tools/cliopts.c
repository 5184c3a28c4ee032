/*
 * cliopts.c - common options of `mqlite pub` / `mqlite sub` (see cliopts.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cliopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pktprint.h"

const char cli_common_help[] =
    "  -h HOST          broker host (default localhost)\n"
    "  -p PORT          broker port (default 1883; 8883 with TLS)\n"
    "  -t TOPIC         topic (sub: filter; may repeat)\n"
    "  -q QOS           quality of service 0, 1 or 2 (default 0)\n"
    "  -i ID            client id (default mqlite-<cmd>-<pid>)\n"
    "  -I PREFIX        client id prefix: PREFIX<pid>\n"
    "  -k SECS          keep-alive (default 60)\n"
    "  -V VERSION       mqttv31 | mqttv311 | mqttv5 (also 31, 311, 5; default 311)\n"
    "  -u USER, -P PASS user name and password\n"
    "  -c               persistent session (clean session / clean start off)\n"
    "  -x SECS          5.0 session expiry interval\n"
    "  --store FILE     persistent store (SQLite): queued and in-flight QoS 1/2\n"
    "                   messages and received QoS 2 ids survive a crash or restart;\n"
    "                   implies -c (and -x 86400 with -V 5 unless -x is given); the\n"
    "                   client id is the store's unless -i is given\n"
    "  --will-topic T, --will-payload P, --will-qos Q, --will-retain\n"
    "  --cafile FILE    trust the CAs in FILE (PEM) and connect with TLS\n"
    "  --capath DIR     trust the CAs in DIR (c_rehash) and connect with TLS\n"
    "  --tls-use-os-certs  trust the system's CA store and connect with TLS\n"
    "  --cert FILE, --key FILE   client certificate and key (PEM); --keypass PASS\n"
    "  --insecure       do not check the server's host name against its certificate\n"
    "  --tls-insecure-skip-verify  DANGER: accept any server certificate at all\n"
    "  --tls-version V  minimum tlsv1.2 (default) or tlsv1.3\n"
    "  --ciphers LIST   TLS 1.2 cipher list; --tls-alpn PROTO; --tls-server-name NAME\n"
    "  -d               print every packet sent and received (to stderr)\n"
    "  --quiet          no error messages\n"
    "  --help           this help\n";

void cli_defaults(cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "localhost";
    o->port = 1883; /* 8883 when TLS is on and -p is not given */
    o->version = MQLITE_V311;
    o->keepalive = 60;
    o->clean = 1;
    o->session_expiry = -1;
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_version_of(const char *s)
{
    if (!strcmp(s, "mqttv31") || !strcmp(s, "31"))
        return MQLITE_V31;
    if (!strcmp(s, "mqttv311") || !strcmp(s, "311"))
        return MQLITE_V311;
    if (!strcmp(s, "mqttv5") || !strcmp(s, "5"))
        return MQLITE_V5;
    return -1;
}

int cli_parse_common(cli_opts *o, int argc, char **argv, int *i, const char *cmd)
{
    const char *a = argv[*i];
    static const char *const with_value[] = {"-h", "-p", "-t", "-q", "-i", "-I", "-k", "-V",
                                             "-u", "-P", "-x", "--will-topic",
                                             "--will-payload", "--will-qos", "--cafile",
                                             "--capath", "--cert", "--key", "--keypass",
                                             "--tls-version", "--ciphers", "--tls-alpn",
                                             "--tls-server-name", "--store"};
    int takes = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
        if (!strcmp(a, with_value[k]))
            takes = 1;
    if (!takes) {
        if (!strcmp(a, "-c"))
            o->clean = 0;
        else if (!strcmp(a, "-d") || !strcmp(a, "--debug"))
            o->debug = 1;
        else if (!strcmp(a, "--will-retain"))
            o->will_retain = 1;
        else if (!strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(a, "--insecure"))
            o->insecure = 1;
        else if (!strcmp(a, "--tls-insecure-skip-verify"))
            o->insecure_all = 1;
        else if (!strcmp(a, "--tls-use-os-certs"))
            o->tls_os_certs = 1;
        else
            return CLI_NOT_MINE;
        return CLI_TOOK;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "mqlite %s: option %s needs a value\n", cmd, a);
        return CLI_BAD;
    }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(a, "-h")) {
        o->host = v;
    } else if (!strcmp(a, "-p")) {
        if (cli_parse_long(v, 1, 65535, &n))
            goto bad;
        o->port = (int)n;
        o->port_given = 1;
    } else if (!strcmp(a, "-t")) {
        if (o->ntopics >= 64) {
            fprintf(stderr, "mqlite %s: at most 64 topics\n", cmd);
            return CLI_BAD;
        }
        o->topics[o->ntopics++] = v;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--will-qos")) {
        if (cli_parse_long(v, 0, 2, &n))
            goto bad;
        if (!strcmp(a, "-q"))
            o->qos = (int)n;
        else
            o->will_qos = (int)n;
    } else if (!strcmp(a, "-i")) {
        o->id = v;
    } else if (!strcmp(a, "-I")) {
        o->id_prefix = v;
    } else if (!strcmp(a, "-k")) {
        if (cli_parse_long(v, 0, 65535, &n))
            goto bad;
        o->keepalive = (int)n;
    } else if (!strcmp(a, "-V")) {
        o->version = cli_version_of(v);
        if (o->version < 0)
            goto bad;
    } else if (!strcmp(a, "-u")) {
        o->username = v;
    } else if (!strcmp(a, "-P")) {
        o->password = v;
    } else if (!strcmp(a, "-x")) {
        if (cli_parse_long(v, 0, 4294967295L, &n))
            goto bad;
        o->session_expiry = n;
    } else if (!strcmp(a, "--store")) {
        o->store = v;
    } else if (!strcmp(a, "--cafile")) {
        o->cafile = v;
    } else if (!strcmp(a, "--capath")) {
        o->capath = v;
    } else if (!strcmp(a, "--cert")) {
        o->certfile = v;
    } else if (!strcmp(a, "--key")) {
        o->keyfile = v;
    } else if (!strcmp(a, "--keypass")) {
        o->key_password = v;
    } else if (!strcmp(a, "--ciphers")) {
        o->ciphers = v;
    } else if (!strcmp(a, "--tls-alpn")) {
        o->tls_alpn = v;
    } else if (!strcmp(a, "--tls-server-name")) {
        o->tls_server_name = v;
    } else if (!strcmp(a, "--tls-version")) {
        if (!strcmp(v, "tlsv1.2"))
            o->tls_version = 12;
        else if (!strcmp(v, "tlsv1.3"))
            o->tls_version = 13;
        else
            goto bad;
    } else if (!strcmp(a, "--will-topic")) {
        o->will_topic = v;
    } else {
        o->will_payload = v;
    }
    return CLI_TOOK;
bad:
    fprintf(stderr, "mqlite %s: invalid value '%s' for %s\n", cmd, v, a);
    return CLI_BAD;
}

#define SET(call)                                                                          \
    do {                                                                                   \
        if ((call) < 0) {                                                                  \
            fprintf(stderr, "mqlite %s: %s\n", cmd, mqlite_client_errmsg(c));              \
            mqlite_client_free(c);                                                         \
            return NULL;                                                                   \
        }                                                                                  \
    } while (0)

int cli_tls(const cli_opts *o)
{
    return o->cafile || o->capath || o->certfile || o->tls_os_certs || o->insecure_all;
}

mqlite_client *cli_client(const cli_opts *o, const char *cmd)
{
    char idbuf[128];
    const char *id = o->id;
    if (!id) {
        snprintf(idbuf, sizeof idbuf, "%s%ld", o->id_prefix ? o->id_prefix : "", (long)getpid());
        if (!o->id_prefix)
            snprintf(idbuf, sizeof idbuf, "mqlite-%s-%ld", cmd, (long)getpid());
        id = idbuf;
    }
    /* An existing store names its client: without -i, take its identifier. */
    if (o->store && !o->id && access(o->store, F_OK) == 0)
        id = "";
    mqlite_client *c = mqlite_client_new(id);
    if (!c) {
        fprintf(stderr, "mqlite %s: out of memory\n", cmd);
        return NULL;
    }
    if (o->store) {
        if (mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, o->store) < 0) {
            fprintf(stderr, "mqlite %s: --store: %s\n", cmd, mqlite_client_errmsg(c));
            mqlite_client_free(c);
            return NULL;
        }
        /* A store is only worth its session: the server must keep it too. */
        SET(mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0));
        if (o->session_expiry < 0 && o->version == MQLITE_V5)
            SET(mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, 86400));
    }
    SET(mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, o->version));
    SET(mqlite_client_set_int(c, MQLITE_OPT_KEEPALIVE_S, o->keepalive));
    SET(mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, o->store ? 0 : o->clean));
    if (o->session_expiry >= 0)
        SET(mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, o->session_expiry));
    if (o->username)
        SET(mqlite_client_set_str(c, MQLITE_OPT_USERNAME, o->username));
    if (o->password)
        SET(mqlite_client_set_str(c, MQLITE_OPT_PASSWORD, o->password));
    if (o->will_topic) {
        SET(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, o->will_topic));
        SET(mqlite_client_set_str(c, MQLITE_OPT_WILL_PAYLOAD,
                                  o->will_payload ? o->will_payload : ""));
        SET(mqlite_client_set_int(c, MQLITE_OPT_WILL_QOS, o->will_qos));
        SET(mqlite_client_set_int(c, MQLITE_OPT_WILL_RETAIN, o->will_retain));
    }
    if (o->debug)
        SET(mqlite_client_set_int(c, MQLITE_OPT_TRACE, 1));
    if (cli_tls(o)) {
        SET(mqlite_client_set_int(c, MQLITE_OPT_TLS, 1));
        const struct {
            int32_t opt;
            const char *v;
        } strs[] = {{MQLITE_OPT_TLS_CAFILE, o->cafile},
                    {MQLITE_OPT_TLS_CAPATH, o->capath},
                    {MQLITE_OPT_TLS_CERTFILE, o->certfile},
                    {MQLITE_OPT_TLS_KEYFILE, o->keyfile},
                    {MQLITE_OPT_TLS_KEY_PASSWORD, o->key_password},
                    {MQLITE_OPT_TLS_CIPHERS, o->ciphers},
                    {MQLITE_OPT_TLS_ALPN, o->tls_alpn},
                    {MQLITE_OPT_TLS_SERVER_NAME, o->tls_server_name}};
        for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
            if (strs[k].v)
                SET(mqlite_client_set_str(c, strs[k].opt, strs[k].v));
        if (o->tls_os_certs)
            SET(mqlite_client_set_int(c, MQLITE_OPT_TLS_USE_SYSTEM_CA, 1));
        if (o->insecure)
            SET(mqlite_client_set_int(c, MQLITE_OPT_TLS_VERIFY_HOSTNAME, 0));
        if (o->insecure_all)
            SET(mqlite_client_set_int(c, MQLITE_OPT_TLS_INSECURE_SKIP_VERIFY, 1));
        if (o->tls_version)
            SET(mqlite_client_set_int(c, MQLITE_OPT_TLS_MIN_VERSION, o->tls_version));
    }
    return c;
}

void cli_trace(const mqlite_event *ev, int version)
{
    size_t len = 0;
    const void *bytes = mqlite_event_payload(ev, &len);
    size_t used = 0;
    int32_t err = 0;
    mqlite_packet *p = mqlite_packet_decode(bytes, len, version, 0, 0, &used, NULL, &err);
    fprintf(stderr, "%s ", mqlite_event_reason(ev) ? "sent    " : "received");
    if (p) {
        pkt_print(stderr, p);
        mqlite_packet_free(p);
    } else {
        fprintf(stderr, "(%zu bytes: %s)\n", len, mqlite_strerror(err));
    }
}

int cli_connect(mqlite_client *c, const cli_opts *o, const char *cmd)
{
    int port = o->port_given || !cli_tls(o) ? o->port : 8883;
    if (mqlite_client_connect(c, o->host, port) < 0) {
        if (!o->quiet)
            fprintf(stderr, "mqlite %s: %s\n", cmd, mqlite_client_errmsg(c));
        return 1;
    }
    for (;;) {
        int32_t n = mqlite_client_poll(c, 1000);
        if (n < 0 && mqlite_client_pending_events(c) == 0) {
            if (!o->quiet)
                fprintf(stderr, "mqlite %s: %s\n", cmd, mqlite_client_errmsg(c));
            return 1;
        }
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            int32_t t = mqlite_event_type(ev);
            if (t == MQLITE_EVENT_TRACE)
                cli_trace(ev, o->version);
            else if (t == MQLITE_EVENT_CONNECTED)
                return 0;
            else if (t == MQLITE_EVENT_CONNECT_FAILED || t == MQLITE_EVENT_DISCONNECTED) {
                if (!o->quiet)
                    fprintf(stderr, "mqlite %s: %s\n", cmd, mqlite_event_text(ev));
                return 1;
            }
        }
    }
}
