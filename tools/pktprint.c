/*
 * pktprint.c - human-readable packets (see pktprint.h).
 */
#include "pktprint.h"

#include <ctype.h>
#include <string.h>

void pkt_print_bytes(FILE *out, const void *data, size_t len, size_t max)
{
    const unsigned char *b = data;
    size_t n = len < max ? len : max;
    int text = 1;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 && b[i] != '\t' && b[i] != '\n')
            text = 0;
    if (text) {
        fputc('"', out);
        for (size_t i = 0; i < n; i++) {
            if (b[i] == '"' || b[i] == '\\')
                fputc('\\', out);
            if (b[i] == '\n')
                fputs("\\n", out);
            else
                fputc(b[i], out);
        }
        fputc('"', out);
    } else {
        fputs("0x", out);
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%02x", b[i]);
    }
    if (n < len)
        fprintf(out, "...(%zu bytes)", len);
}

void pkt_print_props(FILE *out, const mqlite_props *pr)
{
    int32_t n = mqlite_props_count(pr);
    if (n <= 0)
        return;
    fputs(" props={", out);
    for (int32_t i = 0; i < n; i++) {
        int32_t id = mqlite_props_id(pr, i);
        const char *name = mqlite_property_name(id);
        fprintf(out, "%s%s=", i ? ", " : "", name ? name : "?");
        size_t len;
        const char *key = mqlite_props_key(pr, i, &len);
        if (key) {
            pkt_print_bytes(out, key, len, 64);
            fputc(':', out);
        }
        const void *v = mqlite_props_value(pr, i, &len);
        if (v)
            pkt_print_bytes(out, v, len, 64);
        else
            fprintf(out, "%lld", (long long)mqlite_props_int(pr, i));
    }
    fputc('}', out);
}

static void field(FILE *out, const mqlite_packet *p, int32_t f, const char *name, int binary)
{
    size_t len;
    const void *v = mqlite_packet_bytes(p, f, &len);
    if (!v)
        return;
    fprintf(out, " %s=", name);
    if (binary)
        fprintf(out, "%zuB", len);
    else
        pkt_print_bytes(out, v, len, 200);
}

void pkt_print(FILE *out, const mqlite_packet *p)
{
    int32_t type = (int32_t)mqlite_packet_int(p, MQLITE_PF_TYPE);
    int32_t ver = (int32_t)mqlite_packet_int(p, MQLITE_PF_VERSION);
    fprintf(out, "%s", mqlite_packet_type_name(type));
    switch (type) {
    case MQLITE_PKT_CONNECT:
        fprintf(out, " v%d clean=%lld keepalive=%lld", ver,
                (long long)mqlite_packet_int(p, MQLITE_PF_CLEAN_START),
                (long long)mqlite_packet_int(p, MQLITE_PF_KEEPALIVE_S));
        field(out, p, MQLITE_PF_CLIENT_ID, "client_id", 0);
        field(out, p, MQLITE_PF_USERNAME, "username", 0);
        field(out, p, MQLITE_PF_PASSWORD, "password", 1);
        if (mqlite_packet_int(p, MQLITE_PF_WILL)) {
            fprintf(out, " will_qos=%lld will_retain=%lld",
                    (long long)mqlite_packet_int(p, MQLITE_PF_WILL_QOS),
                    (long long)mqlite_packet_int(p, MQLITE_PF_WILL_RETAIN));
            field(out, p, MQLITE_PF_WILL_TOPIC, "will_topic", 0);
            field(out, p, MQLITE_PF_WILL_PAYLOAD, "will_payload", 0);
            pkt_print_props(out, mqlite_packet_will_props(p));
        }
        break;
    case MQLITE_PKT_CONNACK: {
        int32_t rc = (int32_t)mqlite_packet_int(p, MQLITE_PF_REASON_CODE);
        fprintf(out, " session_present=%lld code=0x%02x (%s)",
                (long long)mqlite_packet_int(p, MQLITE_PF_SESSION_PRESENT), (unsigned)rc,
                mqlite_reason_string(type, rc, ver));
        break;
    }
    case MQLITE_PKT_PUBLISH:
        fprintf(out, " qos=%lld retain=%lld dup=%lld", (long long)mqlite_packet_int(p, MQLITE_PF_QOS),
                (long long)mqlite_packet_int(p, MQLITE_PF_RETAIN),
                (long long)mqlite_packet_int(p, MQLITE_PF_DUP));
        if (mqlite_packet_int(p, MQLITE_PF_QOS) > 0)
            fprintf(out, " id=%lld", (long long)mqlite_packet_int(p, MQLITE_PF_PACKET_ID));
        field(out, p, MQLITE_PF_TOPIC, "topic", 0);
        field(out, p, MQLITE_PF_PAYLOAD, "payload", 0);
        break;
    case MQLITE_PKT_SUBSCRIBE:
    case MQLITE_PKT_UNSUBSCRIBE:
        fprintf(out, " id=%lld", (long long)mqlite_packet_int(p, MQLITE_PF_PACKET_ID));
        for (int32_t i = 0; i < mqlite_packet_count(p); i++) {
            size_t len;
            const char *f = mqlite_packet_topic_at(p, i, &len);
            fprintf(out, " ");
            pkt_print_bytes(out, f, len, 200);
            if (type == MQLITE_PKT_SUBSCRIBE)
                fprintf(out, "(opts=0x%02x)", (unsigned)mqlite_packet_options_at(p, i));
        }
        break;
    case MQLITE_PKT_SUBACK:
    case MQLITE_PKT_UNSUBACK:
        fprintf(out, " id=%lld codes=[", (long long)mqlite_packet_int(p, MQLITE_PF_PACKET_ID));
        for (int32_t i = 0; i < mqlite_packet_count(p); i++)
            fprintf(out, "%s0x%02x", i ? "," : "", (unsigned)mqlite_packet_reason_at(p, i));
        fputc(']', out);
        break;
    case MQLITE_PKT_PUBACK:
    case MQLITE_PKT_PUBREC:
    case MQLITE_PKT_PUBREL:
    case MQLITE_PKT_PUBCOMP:
        fprintf(out, " id=%lld", (long long)mqlite_packet_int(p, MQLITE_PF_PACKET_ID));
        /* fall through */
    case MQLITE_PKT_DISCONNECT:
    case MQLITE_PKT_AUTH:
        if (ver == MQLITE_V5) {
            int32_t rc = (int32_t)mqlite_packet_int(p, MQLITE_PF_REASON_CODE);
            fprintf(out, " reason=0x%02x (%s)", (unsigned)rc, mqlite_reason_string(type, rc, ver));
        }
        break;
    default:
        break;
    }
    pkt_print_props(out, mqlite_packet_props(p));
    fputc('\n', out);
}
