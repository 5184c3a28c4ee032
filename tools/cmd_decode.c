/*
 * cmd_decode.c - `mqlite decode [-V 31|311|5] HEX...`: decode MQTT packets
 * written in hex (arguments, or lines on standard input) and print each, or
 * the rule a malformed one breaks.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlite.h"
#include "pktprint.h"
#include "tools.h"

static int parse_version(const char *s)
{
    if (strcmp(s, "31") == 0 || strcmp(s, "mqttv31") == 0 || strcmp(s, "3") == 0)
        return MQLITE_V31;
    if (strcmp(s, "311") == 0 || strcmp(s, "mqttv311") == 0 || strcmp(s, "4") == 0)
        return MQLITE_V311;
    if (strcmp(s, "5") == 0 || strcmp(s, "mqttv5") == 0)
        return MQLITE_V5;
    return -1;
}

static size_t unhex(const char *s, unsigned char *out, size_t cap, int *bad)
{
    size_t n = 0;
    int hi = -1;
    *bad = 0;
    for (; *s; s++) {
        if (isspace((unsigned char)*s) || *s == ':' || *s == ',')
            continue;
        if (!isxdigit((unsigned char)*s)) {
            *bad = 1;
            return 0;
        }
        int v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
        if (hi < 0) {
            hi = v;
        } else if (n < cap) {
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        *bad = 1;
    return n;
}

/* Decode every packet in buf; returns 0 if all were valid. */
static int decode_stream(const unsigned char *buf, size_t len, int *version)
{
    size_t off = 0;
    int status = 0;
    while (off < len) {
        size_t used = 0, need = 0;
        int32_t err = 0;
        mqlite_packet *p = mqlite_packet_decode(buf + off, len - off, *version, 0, 0, &used, &need, &err);
        if (!p) {
            if (err == 0)
                printf("incomplete: %zu of %zu bytes\n", len - off, need);
            else
                printf("malformed (%s): %s\n", mqlite_error_name(err), mqlite_strerror(err));
            return 1;
        }
        if (mqlite_packet_int(p, MQLITE_PF_TYPE) == MQLITE_PKT_CONNECT)
            *version = (int)mqlite_packet_int(p, MQLITE_PF_VERSION);
        pkt_print(stdout, p);
        mqlite_packet_free(p);
        off += used;
    }
    return status;
}

int cmd_decode(int argc, char **argv)
{
    int version = MQLITE_V311, status = 0, given = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: mqlite decode [-V 31|311|5] [HEX...]\n"
                   "Decode MQTT packets given as hex (arguments, or one stream per line on\n"
                   "standard input) and print each packet, or the rule a malformed one breaks.\n"
                   "A CONNECT sets the protocol level for the packets after it.\n");
            return 0;
        }
        if (strcmp(argv[i], "-V") == 0 && i + 1 < argc) {
            version = parse_version(argv[++i]);
            if (version < 0) {
                fprintf(stderr, "mqlite decode: -V takes 31, 311 or 5, not '%s'\n", argv[i]);
                return 2;
            }
            continue;
        }
        static unsigned char buf[1 << 20];
        int bad;
        size_t n = unhex(argv[i], buf, sizeof buf, &bad);
        if (bad) {
            fprintf(stderr, "mqlite decode: '%s' is not hex\n", argv[i]);
            return 2;
        }
        given = 1;
        status |= decode_stream(buf, n, &version);
    }
    if (!given) {
        static char line[1 << 16];
        static unsigned char buf[1 << 15];
        while (fgets(line, sizeof line, stdin)) {
            int bad;
            size_t n = unhex(line, buf, sizeof buf, &bad);
            if (bad) {
                fprintf(stderr, "mqlite decode: not hex: %s", line);
                status = 1;
                continue;
            }
            if (n)
                status |= decode_stream(buf, n, &version);
        }
    }
    return status ? 1 : 0;
}
