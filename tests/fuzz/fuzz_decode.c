/*
 * fuzz_decode.c - libFuzzer target for the packet decoder.
 *
 * Input: one control byte (bits 0-1: protocol level 3/4/5/unknown, bit 2:
 * strict UTF-8, bits 3-4: role) followed by a byte stream. Every packet the
 * decoder accepts must re-encode, and the re-encoded bytes must decode to
 * an equal packet: the decoder never accepts what the encoder would refuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "props.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_decode invariant broken: %s\n", what);
    abort();
}

static int views_eq(mq_view a, mq_view b)
{
    return mq_view_eq(a, b);
}

static void check_same(const mq_packet *a, const mq_packet *b)
{
    if (a->type != b->type || a->version != b->version || a->qos != b->qos ||
        a->retain != b->retain || a->dup != b->dup || a->reason != b->reason ||
        a->session_present != b->session_present || a->clean_start != b->clean_start ||
        a->will != b->will || a->will_qos != b->will_qos || a->will_retain != b->will_retain ||
        a->has_username != b->has_username || a->has_password != b->has_password ||
        a->packet_id != b->packet_id || a->keepalive != b->keepalive || a->count != b->count)
        fail("scalar fields differ after round trip");
    if (!views_eq(a->topic, b->topic) || !views_eq(a->payload, b->payload) ||
        !views_eq(a->props, b->props) || !views_eq(a->client_id, b->client_id) ||
        !views_eq(a->will_props, b->will_props) || !views_eq(a->will_topic, b->will_topic) ||
        !views_eq(a->will_payload, b->will_payload) || !views_eq(a->username, b->username) ||
        !views_eq(a->password, b->password) || !views_eq(a->list, b->list))
        fail("byte fields differ after round trip");
}

static void roundtrip(const mq_packet *p, const mq_decode_opts *o)
{
    size_t n;
    if (mq_encode_size(p, &n, NULL) != 0)
        fail("decoded packet does not re-encode");
    uint8_t *buf = malloc(n);
    if (!buf)
        return;
    if (mq_encode_write(p, buf) != n)
        fail("encode_write size differs from encode_size");
    mq_packet q;
    size_t used = 0, need = 0;
    mq_decode_opts o2 = *o;
    o2.max_packet_size = 0;
    if (mq_decode(buf, n, &o2, &q, &used, &need, NULL) != 0 || used != n)
        fail("re-encoded packet does not decode");
    check_same(p, &q);
    /* Walk lists and properties as a consumer would. */
    uint32_t off = 0;
    mq_view f;
    uint8_t opt;
    while (mq_list_next(&q, &off, &f, &opt))
        ;
    mq_prop pr;
    off = 0;
    while (mq_props_next(q.props, &off, &pr))
        ;
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t levels[4] = {3, 4, 5, 0};
    mq_decode_opts o = {0};
    o.version = levels[data[0] & 3];
    o.strict_utf8 = (data[0] >> 2) & 1;
    o.role = (data[0] >> 3) & 3;
    if (o.role == 3)
        o.role = MQ_ROLE_ANY;
    o.max_packet_size = (data[0] & 0x80) ? 64 : 0;
    data++;
    size--;
    size_t off = 0;
    while (off < size) {
        mq_packet p;
        size_t used = 0, need = 0;
        int rc = mq_decode(data + off, size - off, &o, &p, &used, &need, NULL);
        if (rc == MQ_NEED_MORE) {
            if (need <= size - off)
                fail("need more, but enough bytes were there");
            break;
        }
        if (rc < 0) {
            if (strcmp(mqlite_strerror(rc), "unknown error") == 0)
                fail("error code without a message");
            break;
        }
        if (used == 0 || used > size - off)
            fail("bad used count");
        if (p.type == MQLITE_PKT_CONNECT && o.version == 0)
            o.version = p.version;
        roundtrip(&p, &o);
        off += used;
    }
    /* The public object path over the same bytes. */
    size_t used = 0, need = 0;
    int32_t err = 0;
    mqlite_packet *pk =
        mqlite_packet_decode(data, size, o.version, 0, 0, &used, &need, &err);
    if (pk) {
        size_t n = 0;
        mqlite_packet_encode(pk, NULL, 0, &n);
        const mqlite_props *pp = mqlite_packet_props(pk);
        for (int32_t i = 0; i < mqlite_props_count(pp); i++) {
            size_t l;
            (void)mqlite_props_value(pp, i, &l);
            (void)mqlite_props_key(pp, i, &l);
        }
        for (int32_t i = 0; i < mqlite_packet_count(pk); i++)
            (void)mqlite_packet_topic_at(pk, i, &n);
        mqlite_packet_free(pk);
    }
    return 0;
}
