/*
 * codec.h - every MQTT control packet of protocol levels 3, 4 and 5 to and
 * from bytes (MQTT 3.1.1 chapters 2-3, MQTT 5.0 chapters 2-3).
 *
 * mq_packet is a flat record. Decoding fills it with views into the input:
 * no allocation, no copy. Encoding is two steps, as in coreMQTT: measure
 * (mq_encode_size, which also validates), then write (mq_encode_write) into
 * a buffer of exactly that size.
 *
 * List-carrying packets keep their list in wire form in `list`:
 *   SUBSCRIBE    repeated { u16 len, filter, u8 options }
 *   UNSUBSCRIBE  repeated { u16 len, filter }
 *   SUBACK, UNSUBACK (5.0)  one reason code byte per entry
 * and `count` entries. mq_list_next() walks it; mq_list_put_*() builds it.
 */
#ifndef MQ_CODEC_H
#define MQ_CODEC_H

#include "common.h"

#define MQ_MAX_PACKET_SIZE (MQ_VBI_MAX + 5u)

typedef struct mq_packet {
    uint8_t type;            /* MQLITE_PKT_* */
    uint8_t version;         /* 3, 4, 5 */
    uint8_t qos;             /* PUBLISH */
    uint8_t retain;          /* PUBLISH */
    uint8_t dup;             /* PUBLISH */
    uint8_t reason;          /* CONNACK code; 5.0 acks, DISCONNECT, AUTH */
    uint8_t session_present; /* CONNACK */
    uint8_t clean_start;     /* CONNECT */
    uint8_t will;            /* CONNECT: will present */
    uint8_t will_qos;
    uint8_t will_retain;
    uint8_t has_username;
    uint8_t has_password;
    uint16_t packet_id;
    uint16_t keepalive;      /* CONNECT, seconds */
    uint32_t count;          /* entries in list */
    mq_view topic;           /* PUBLISH */
    mq_view payload;         /* PUBLISH */
    mq_view props;           /* 5.0 property block (without its length) */
    mq_view protocol_name;   /* CONNECT (decode only; encode derives it) */
    mq_view client_id;
    mq_view will_props;
    mq_view will_topic;
    mq_view will_payload;
    mq_view username;
    mq_view password;
    mq_view list;            /* see above */
} mq_packet;

/* Decoder options */
typedef struct mq_decode_opts {
    uint8_t version;       /* level of the connection; 0 = take CONNECT's */
    uint8_t strict_utf8;
    uint8_t role;          /* MQ_ROLE_ANY, MQ_ROLE_SERVER (we receive from
                              clients), MQ_ROLE_CLIENT (we receive from a server) */
    uint32_t max_packet_size; /* 0 = MQ_MAX_PACKET_SIZE */
} mq_decode_opts;

#define MQ_ROLE_ANY 0
#define MQ_ROLE_SERVER 1
#define MQ_ROLE_CLIENT 2

/* Result of mq_decode when the input is an incomplete packet. */
#define MQ_NEED_MORE 1

/* Detail about a decoding failure, for messages. */
typedef struct mq_decode_info {
    uint8_t type;       /* packet type seen (0 before the header) */
    unsigned prop_id;   /* offending property, if any */
} mq_decode_info;

/*
 * mq_decode - decode one packet from buf[0..len).
 * Returns 0 (packet in *out, *used = its size), MQ_NEED_MORE (*need = total
 * size if the fixed header is complete, else len + 1), or a negative
 * MQLITE_ERR_*. info may be NULL. With MQLITE_ERR_PROTOCOL_LEVEL on a CONNECT,
 * out->version holds the level the client asked for (so that the server can
 * answer in a CONNACK that client understands).
 */
MQ_HIDDEN int mq_decode(const uint8_t *buf, size_t len, const mq_decode_opts *o, mq_packet *out,
                        size_t *used, size_t *need, mq_decode_info *info);

/* Peek at the fixed header only: 0 with *type, *total set; MQ_NEED_MORE; or
 * an error (over-long/non-minimal remaining length, too large). */
MQ_HIDDEN int mq_decode_header(const uint8_t *buf, size_t len, uint32_t max_packet_size,
                               uint8_t *byte1, size_t *total);

/*
 * mq_encode_size - validate p and compute its wire size.
 * Returns 0 and *size, or a negative MQLITE_ERR_*; *msg (may be NULL) gets a
 * static description of the failing rule.
 */
MQ_HIDDEN int mq_encode_size(const mq_packet *p, size_t *size, const char **msg);
/* Write p (validated by mq_encode_size) into out, which has room for size
 * bytes. Returns the number of bytes written. */
MQ_HIDDEN size_t mq_encode_write(const mq_packet *p, uint8_t *out);
/* Both steps into a growable buffer (appends). */
MQ_HIDDEN int mq_encode_buf(const mq_packet *p, mq_buf *b, const mq_alloc *a, const char **msg);

/* Walk the list of a SUBSCRIBE / UNSUBSCRIBE / SUBACK / UNSUBACK.
 * For SUBSCRIBE: filter + options; UNSUBSCRIBE: filter; acks: code in
 * *options. Returns 1 per entry, 0 at the end. *off starts at 0. */
MQ_HIDDEN int mq_list_next(const mq_packet *p, uint32_t *off, mq_view *filter, uint8_t *options);

/* Append a SUBSCRIBE entry (filter + options) or UNSUBSCRIBE entry to a list
 * buffer; the caller bumps count. */
MQ_HIDDEN int mq_list_put_filter(mq_buf *b, const mq_alloc *a, mq_view filter, int with_options,
                                 uint8_t options);

/* Validate a SUBSCRIBE options byte for a version (5.0 rules on retain
 * handling / reserved bits; 3.x: only QoS bits). no_local on shared filters
 * is checked by the caller with the filter at hand. */
MQ_HIDDEN int mq_sub_options_check(uint8_t options, int version);

/* Validate one list entry: the filter (topic filter rules) and, for
 * SUBSCRIBE, its options including no-local on shared filters. */
MQ_HIDDEN int mq_sub_entry_check(mq_view filter, uint8_t options, int version, int subscribe);

/* 1 if `reason` is a valid 5.0 reason code for packet type `type`. */
MQ_HIDDEN int mq_reason_valid(int type, unsigned reason);

/* The mq_packet inside a public mqlite_packet, or NULL (packet.c). */
MQ_HIDDEN const mq_packet *mq_packet_inner(const mqlite_packet *p);

/* Fixed header flag nibble for a packet. */
MQ_HIDDEN uint8_t mq_header_flags(const mq_packet *p);

#endif
