/*
 * mqlite.h - the one public header of mqlite, an MQTT 3.1 / 3.1.1 / 5.0
 * client library and embeddable broker.
 *
 * This header is the ABI. What it does not declare is not public.
 *
 * ABI shape (so that any FFI can call it without a C compiler):
 *  - handles are pointers to incomplete types; no struct crosses the ABI;
 *  - integers are fixed-width (int32_t, int64_t, uint16_t, uint32_t) or size_t;
 *  - strings are NUL-terminated UTF-8 and are copied on entry;
 *  - buffers are (const void *, size_t);
 *  - no varargs, no bit-fields, no callbacks across the ABI (events are pulled);
 *  - 0 is success, a negative MQLITE_ERR_* is failure, positive values are
 *    counts or identifiers where a function says so.
 *
 * Threads: mqlite starts no thread and has no mutable global state. Each
 * handle may be used by one thread at a time; different handles may be used
 * from different threads freely. Exceptions are documented per function.
 */
#ifndef MQLITE_H
#define MQLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MQLITE_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MQLITE_API __attribute__((visibility("default")))
#else
#define MQLITE_API
#endif

/* ======================================================================
 * Version
 * ====================================================================== */

#define MQLITE_VERSION_MAJOR 0
#define MQLITE_VERSION_MINOR 1
#define MQLITE_VERSION_PATCH 0
#define MQLITE_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH */
#define MQLITE_VERSION_NUMBER 100

/*
 * mqlite_version - the library's version at run time.
 *
 * Returns:   MQLITE_VERSION_NUMBER of the library actually loaded; if
 *            `text` is not NULL, *text receives the version string.
 * Ownership: *text points to a static string; never free it.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_version(const char **text);

/* ======================================================================
 * Errors
 *
 * Codes are negative and append-only; a retired number is never reused.
 *   -1 .. -99    library and usage errors
 *   -100 .. -149 malformed packet (MQTT 5.0 reason code 0x81)
 *   -150 .. -199 protocol error   (MQTT 5.0 reason code 0x82, or a more
 *                precise one: see mqlite_error_reason())
 * ====================================================================== */

#define MQLITE_OK 0
#define MQLITE_ERR_NOMEM -1          /* an allocation failed */
#define MQLITE_ERR_MISUSE -2         /* NULL or freed handle, call not allowed now */
#define MQLITE_ERR_INVALID -3        /* an argument is not valid */
#define MQLITE_ERR_RANGE -4          /* a number is out of its allowed range */
#define MQLITE_ERR_OPTION -5         /* unknown option or field */
#define MQLITE_ERR_STATE -6          /* not allowed in the handle's current state */
#define MQLITE_ERR_BUFFER -7         /* output buffer too small */
#define MQLITE_ERR_NOT_FOUND -8      /* no such item */
#define MQLITE_ERR_QUEUE_FULL -9     /* the bounded queue is full; nothing was queued */
#define MQLITE_ERR_TIMEOUT -10       /* a deadline passed */
#define MQLITE_ERR_IO -11            /* socket or file error */
#define MQLITE_ERR_CONNECTION_LOST -12 /* the network connection was lost */
#define MQLITE_ERR_REFUSED -13       /* the peer refused (CONNACK failure) */
#define MQLITE_ERR_CLOSED -14        /* the peer closed the connection */
#define MQLITE_ERR_NOT_CONNECTED -15 /* no connection to use */
#define MQLITE_ERR_DNS -16           /* host name resolution failed */
#define MQLITE_ERR_TLS -17           /* TLS failure */
#define MQLITE_ERR_CONFIG -18        /* bad configuration */
#define MQLITE_ERR_UNSUPPORTED -19   /* not supported by this build or peer */
#define MQLITE_ERR_AGAIN -20         /* nothing can be done now; try later */
#define MQLITE_ERR_NO_PACKET_ID -21  /* all 65535 packet identifiers in use */
#define MQLITE_ERR_TOO_LARGE -22     /* exceeds the negotiated maximum packet size */

#define MQLITE_ERR_MALFORMED -100            /* malformed packet */
#define MQLITE_ERR_REMLEN_TOO_LONG -101      /* variable byte integer over 4 bytes */
#define MQLITE_ERR_REMLEN_NOT_MINIMAL -102   /* variable byte integer not minimal */
#define MQLITE_ERR_PACKET_TYPE -103          /* reserved or unknown packet type */
#define MQLITE_ERR_HEADER_FLAGS -104         /* reserved fixed-header flag bits wrong */
#define MQLITE_ERR_QOS3 -105                 /* QoS 3 in PUBLISH */
#define MQLITE_ERR_TRUNCATED -106            /* a field runs past the packet's end */
#define MQLITE_ERR_TRAILING -107             /* bytes left over after the last field */
#define MQLITE_ERR_UTF8 -108                 /* ill-formed UTF-8 */
#define MQLITE_ERR_UTF8_NULL -109            /* U+0000 in a UTF-8 string */
#define MQLITE_ERR_UTF8_SURROGATE -110       /* encoded surrogate (U+D800..U+DFFF) */
#define MQLITE_ERR_UTF8_CONTROL -111         /* control character or non-character (strict mode) */
#define MQLITE_ERR_PROPERTY_ID -112          /* unknown property identifier */
#define MQLITE_ERR_PROPERTY_PACKET -113      /* property not allowed in this packet */
#define MQLITE_ERR_CONNECT_RESERVED -114     /* CONNECT reserved flag set */
#define MQLITE_ERR_WILL_FLAGS -115           /* will QoS/retain set without will flag */
#define MQLITE_ERR_WILL_QOS3 -116            /* will QoS 3 */
#define MQLITE_ERR_PASSWORD_NO_USER -117     /* password flag without user name flag (3.1.1) */
/* -118, -119: retired before 0.1 (now MQLITE_ERR_SUBSCRIBE_EMPTY / _UNSUBSCRIBE_EMPTY) */
#define MQLITE_ERR_SUB_OPTIONS -120          /* reserved subscription option bits set */
#define MQLITE_ERR_SUB_QOS3 -121             /* QoS 3 in subscription options (3.1.1: malformed;
                                                5.0: MQLITE_ERR_SUB_QOS_INVALID) */
#define MQLITE_ERR_TOPIC_NAME -122           /* invalid topic name */
#define MQLITE_ERR_TOPIC_FILTER -123         /* invalid topic filter */
#define MQLITE_ERR_PROTOCOL_NAME -124        /* protocol name does not match the level */
#define MQLITE_ERR_SUBACK_CODE -125          /* reserved SUBACK return code (3.1.1) */
#define MQLITE_ERR_CONNACK_FLAGS -126        /* reserved CONNACK acknowledge flags set */
#define MQLITE_ERR_PACKET_ID_PRESENT -127    /* (retired, never returned) */
#define MQLITE_ERR_PROPERTY_TYPE -128        /* property value malformed for its type */

#define MQLITE_ERR_PROTOCOL -150             /* protocol error */
#define MQLITE_ERR_PROPERTY_DUPLICATE -151   /* property given more than once */
#define MQLITE_ERR_PROPERTY_VALUE -152       /* property value not allowed */
#define MQLITE_ERR_PACKET_ID_ZERO -153       /* packet identifier 0 where one is required */
#define MQLITE_ERR_PROTOCOL_LEVEL -154       /* unsupported protocol level */
#define MQLITE_ERR_RETAIN_HANDLING -155      /* retain handling 3 */
#define MQLITE_ERR_NO_LOCAL_SHARED -156      /* no-local on a shared subscription */
#define MQLITE_ERR_REASON_CODE -157          /* reason code not allowed in this packet */
#define MQLITE_ERR_UNEXPECTED_PACKET -158    /* packet not allowed in this direction or state */
#define MQLITE_ERR_PACKET_TOO_LARGE -159     /* packet exceeds the maximum packet size (0x95) */
#define MQLITE_ERR_TOPIC_ALIAS -160          /* topic alias 0, above the maximum, or unknown (0x94) */
#define MQLITE_ERR_RECEIVE_MAX -161          /* more QoS>0 PUBLISH in flight than allowed (0x93) */
#define MQLITE_ERR_CLIENT_ID -162            /* client identifier not acceptable */
#define MQLITE_ERR_PACKET_ID_UNKNOWN -163    /* acknowledgement for an unknown packet id */
#define MQLITE_ERR_KEEPALIVE -164            /* keep-alive timeout (0x8D) */
#define MQLITE_ERR_QOS_NOT_SUPPORTED -165    /* QoS above the peer's maximum QoS (0x9B) */
#define MQLITE_ERR_RETAIN_NOT_SUPPORTED -166 /* retain not available (0x9A) */
#define MQLITE_ERR_AUTH_METHOD -167          /* authentication method mismatch (0x8C) */
#define MQLITE_ERR_SUBSCRIBE_EMPTY -168      /* SUBSCRIBE without topic filters */
#define MQLITE_ERR_UNSUBSCRIBE_EMPTY -169    /* UNSUBSCRIBE without topic filters */
#define MQLITE_ERR_SUB_QOS_INVALID -170      /* 5.0: maximum QoS 3 in subscription options */

/*
 * mqlite_strerror - what an error code means, in words.
 *
 * Returns:   a static, NUL-terminated English sentence naming the rule (with
 *            its MQTT statement id where there is one). Never NULL: an
 *            unknown code gives "unknown error".
 * Ownership: static; never free it.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_strerror(int32_t code);

/*
 * mqlite_error_name - the symbol of an error code, e.g. "MQLITE_ERR_QOS3".
 *
 * Returns:   a static string; "MQLITE_OK" for 0; "MQLITE_ERR_UNKNOWN" for a
 *            code this library does not know.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_error_name(int32_t code);

/*
 * mqlite_error_is_malformed - 1 if `code` means "malformed packet", else 0.
 *
 * MQTT 5.0 distinguishes a Malformed Packet (reason 0x81) from a Protocol
 * Error (0x82); this answers which of the two a decoding failure is.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_error_is_malformed(int32_t code);

/*
 * mqlite_error_reason - the MQTT 5.0 reason code a DISCONNECT (or CONNACK)
 * should carry for an error found in a received packet.
 *
 * Returns:   0x81 for malformed-packet codes, 0x82 for generic protocol
 *            errors, a precise code where one exists (0x95 packet too large,
 *            0x94 topic alias invalid, 0x93 receive maximum exceeded, 0x90
 *            topic name invalid, 0x8F topic filter invalid, 0x84 unsupported
 *            protocol version, 0x85 client identifier not valid, 0x8D keep
 *            alive timeout, 0x9B QoS not supported, 0x9A retain not
 *            supported, 0x8C bad authentication method), and 0x80
 *            (unspecified error) for anything else, including 0.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_error_reason(int32_t code);

/*
 * mqlite_reason_string - the name of an MQTT reason code in words.
 *
 * Parameters:
 *   packet_type  the packet that carries the code (MQLITE_PKT_*): the same
 *                value means different things in different packets (0x00
 *                is "Success", "Normal disconnection" or "Granted QoS 0").
 *   reason       the reason code (MQTT 5.0 Table 2-6), or for version 3/4
 *                the CONNACK return code / SUBACK return code.
 *   version      protocol level 3, 4 or 5.
 * Returns:   a static string; "Unknown reason code" when the value is not
 *            defined for that packet and version.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_reason_string(int32_t packet_type, int32_t reason, int32_t version);

/*
 * mqlite_error_is_fatal - 1 if, after a call returned `code`, the handle can
 * only be freed; 0 otherwise.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_error_is_fatal(int32_t code);

/* ======================================================================
 * Memory
 * ====================================================================== */

/*
 * A realloc-style allocator supplied by the caller, with its own user
 * pointer. mqlite calls it as:
 *   fn(ud, NULL, n)  allocate n bytes (n > 0),
 *   fn(ud, p, n)     resize p to n bytes (n > 0),
 *   fn(ud, p, 0)     free p (return value ignored).
 * On failure it returns NULL and leaves p untouched. It is the one function
 * pointer in the ABI; no mqlite function requires one.
 */
typedef void *(*mqlite_realloc_fn)(void *ud, void *ptr, size_t size);

/*
 * mqlite_free - free a buffer that an mqlite function documented as
 * "free with mqlite_free()". NULL is a no-op.
 * Since:     0.1
 */
MQLITE_API void mqlite_free(void *ptr);

/* ======================================================================
 * Codec: packets
 *
 * A mqlite_packet is any MQTT control packet of protocol level 3 (MQTT 3.1,
 * "MQIsdp"), 4 (3.1.1) or 5 (5.0). Build one with mqlite_packet_new() and
 * setters, or get one from mqlite_packet_decode(); read it with accessors;
 * turn it into bytes with mqlite_packet_encode().
 * ====================================================================== */

typedef struct mqlite_packet mqlite_packet;
typedef struct mqlite_props mqlite_props;

/* Packet types (fixed header bits 7-4). */
#define MQLITE_PKT_CONNECT 1
#define MQLITE_PKT_CONNACK 2
#define MQLITE_PKT_PUBLISH 3
#define MQLITE_PKT_PUBACK 4
#define MQLITE_PKT_PUBREC 5
#define MQLITE_PKT_PUBREL 6
#define MQLITE_PKT_PUBCOMP 7
#define MQLITE_PKT_SUBSCRIBE 8
#define MQLITE_PKT_SUBACK 9
#define MQLITE_PKT_UNSUBSCRIBE 10
#define MQLITE_PKT_UNSUBACK 11
#define MQLITE_PKT_PINGREQ 12
#define MQLITE_PKT_PINGRESP 13
#define MQLITE_PKT_DISCONNECT 14
#define MQLITE_PKT_AUTH 15

/* Protocol levels. */
#define MQLITE_V31 3
#define MQLITE_V311 4
#define MQLITE_V5 5

/* Integer fields of a packet (mqlite_packet_int / mqlite_packet_set_int). */
#define MQLITE_PF_QOS 1             /* PUBLISH: 0..2 */
#define MQLITE_PF_RETAIN 2          /* PUBLISH: 0/1 */
#define MQLITE_PF_DUP 3             /* PUBLISH: 0/1 */
#define MQLITE_PF_PACKET_ID 4       /* PUBLISH (QoS>0), acks, (UN)SUBSCRIBE, (UN)SUBACK */
#define MQLITE_PF_REASON_CODE 5     /* CONNACK return/reason code; 5.0 acks, DISCONNECT, AUTH */
#define MQLITE_PF_SESSION_PRESENT 6 /* CONNACK: 0/1 */
#define MQLITE_PF_KEEPALIVE_S 7     /* CONNECT: 0..65535 seconds */
#define MQLITE_PF_CLEAN_START 8     /* CONNECT: clean session (3.x) / clean start (5.0) */
#define MQLITE_PF_WILL 9            /* CONNECT: 1 if a will is present */
#define MQLITE_PF_WILL_QOS 10       /* CONNECT: 0..2 */
#define MQLITE_PF_WILL_RETAIN 11    /* CONNECT: 0/1 */
#define MQLITE_PF_VERSION 12        /* read-only: protocol level 3/4/5 */
#define MQLITE_PF_TYPE 13           /* read-only: MQLITE_PKT_* */
#define MQLITE_PF_HAS_USERNAME 14   /* CONNECT: 1 if a user name is present */
#define MQLITE_PF_HAS_PASSWORD 15   /* CONNECT: 1 if a password is present */

/* String and binary fields (mqlite_packet_bytes / mqlite_packet_set_bytes). */
#define MQLITE_PF_TOPIC 20          /* PUBLISH topic name (UTF-8) */
#define MQLITE_PF_PAYLOAD 21        /* PUBLISH payload (binary) */
#define MQLITE_PF_CLIENT_ID 22      /* CONNECT client identifier (UTF-8) */
#define MQLITE_PF_USERNAME 23       /* CONNECT user name (UTF-8) */
#define MQLITE_PF_PASSWORD 24       /* CONNECT password (binary) */
#define MQLITE_PF_WILL_TOPIC 25     /* CONNECT will topic (UTF-8) */
#define MQLITE_PF_WILL_PAYLOAD 26   /* CONNECT will payload (binary) */
#define MQLITE_PF_PROTOCOL_NAME 27  /* read-only: CONNECT protocol name */

/* Flags for mqlite_packet_decode(). */
#define MQLITE_DECODE_NOCOPY 1      /* strings/payloads stay views into the input */
#define MQLITE_DECODE_STRICT_UTF8 2 /* reject control characters and non-characters
                                       (MQTT 5.0 1.5.4 advice; [MQTT-1.5.3-1] note) */
#define MQLITE_DECODE_SERVER 4      /* decode as a server: only client-to-server
                                       packets are allowed */
#define MQLITE_DECODE_CLIENT 8      /* decode as a client: only server-to-client
                                       packets are allowed */

/*
 * mqlite_packet_new - a new, empty packet of the given type and level.
 *
 * Parameters:
 *   type     MQLITE_PKT_CONNECT .. MQLITE_PKT_AUTH (AUTH needs level 5).
 *   version  MQLITE_V31, MQLITE_V311 or MQLITE_V5.
 * Returns:   the packet, or NULL when type/version are invalid or memory ran
 *            out (then *err, if not NULL, says which: MQLITE_ERR_INVALID,
 *            MQLITE_ERR_NOMEM).
 * Defaults:  every field 0/empty; CONNECT: clean start 1, keep-alive 60 s;
 *            PUBREL/SUBSCRIBE/UNSUBSCRIBE have their reserved flags set.
 * Ownership: the caller owns the packet; free it with mqlite_packet_free().
 * Since:     0.1
 */
MQLITE_API mqlite_packet *mqlite_packet_new(int32_t type, int32_t version, int32_t *err);

/*
 * mqlite_packet_free - free a packet and everything its accessors returned.
 * NULL is a no-op.
 * Since:     0.1
 */
MQLITE_API void mqlite_packet_free(mqlite_packet *p);

/*
 * mqlite_packet_decode - decode one packet from the start of a byte stream.
 *
 * Streaming: `buf` may hold any prefix of a stream. When it holds less than
 * one whole packet, the result is NULL with *err = 0 and *need = the total
 * number of bytes the packet needs (known once the fixed header is in) or
 * len + 1 (when even the fixed header is incomplete). The maximum packet
 * size is enforced from the fixed header alone, before the body is needed.
 *
 * Parameters:
 *   buf, len         the bytes received so far.
 *   version          protocol level 3, 4 or 5 of the connection. For a
 *                    CONNECT packet the level written in the packet wins,
 *                    so a server may pass 0 until it has seen CONNECT.
 *   flags            MQLITE_DECODE_* or 0.
 *   max_packet_size  largest whole packet accepted (0 = MQTT's limit,
 *                    268435460 bytes).
 *   used             out: bytes consumed (the whole packet) on success.
 *   need             out, may be NULL: see above.
 *   err              out: 0 on success or "need more", else an MQLITE_ERR_*
 *                    naming the rule broken (see mqlite_strerror,
 *                    mqlite_error_is_malformed, mqlite_error_reason).
 * Returns:   the decoded packet (caller frees with mqlite_packet_free()), or
 *            NULL (need more, or an error in *err).
 * Ownership: without MQLITE_DECODE_NOCOPY the packet copies what it needs and
 *            `buf` may be reused at once; with it, strings and payloads
 *            returned by accessors point into `buf`, which must then outlive
 *            the packet (and such strings are not NUL-terminated).
 * Since:     0.1
 */
MQLITE_API mqlite_packet *mqlite_packet_decode(const void *buf, size_t len, int32_t version,
                                               int32_t flags, uint32_t max_packet_size,
                                               size_t *used, size_t *need, int32_t *err);

/*
 * mqlite_packet_encode - write the packet's wire bytes into buf[0..cap).
 *
 * The packet is validated first, by the same rules the decoder applies, so
 * mqlite never emits a packet it would itself reject.
 * Parameters:
 *   len   out: bytes written; with MQLITE_ERR_BUFFER, the bytes needed.
 * Returns:   0; MQLITE_ERR_BUFFER when cap is too small (buf untouched, pass
 *            buf NULL and cap 0 to measure); any validation error code, with
 *            the reason in mqlite_packet_errmsg().
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_encode(mqlite_packet *p, void *buf, size_t cap, size_t *len);

/*
 * mqlite_packet_errmsg - what went wrong in the last failing call on `p`.
 *
 * Returns:   a NUL-terminated message; "" when nothing failed yet; never NULL
 *            (also for p == NULL).
 * Ownership: the packet's; valid until the next call on p.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_packet_errmsg(const mqlite_packet *p);

/*
 * mqlite_packet_int - read an integer field (MQLITE_PF_QOS .. _HAS_PASSWORD).
 *
 * Returns:   the value (>= 0); MQLITE_ERR_OPTION for an unknown field or one
 *            the packet type does not have; MQLITE_ERR_MISUSE for p == NULL.
 * Since:     0.1
 */
MQLITE_API int64_t mqlite_packet_int(const mqlite_packet *p, int32_t field);

/*
 * mqlite_packet_set_int - set an integer field.
 *
 * Returns:   0; MQLITE_ERR_OPTION (field unknown, read-only, or not in this
 *            packet type); MQLITE_ERR_RANGE (value out of range, e.g. QoS 3,
 *            packet id above 65535). On failure the packet is unchanged and
 *            mqlite_packet_errmsg() names the field and range.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_set_int(mqlite_packet *p, int32_t field, int64_t value);

/*
 * mqlite_packet_bytes - read a string or binary field (MQLITE_PF_TOPIC ..).
 *
 * Parameters:
 *   len  out, may be NULL: the length in bytes.
 * Returns:   pointer to the bytes, or NULL when the field is absent, unknown
 *            or not in this packet type (then *len = 0).
 * Ownership: the packet's; valid until the field is set again or the packet
 *            is freed. NUL-terminated unless decoded with NOCOPY.
 * Since:     0.1
 */
MQLITE_API const void *mqlite_packet_bytes(const mqlite_packet *p, int32_t field, size_t *len);

/*
 * mqlite_packet_set_bytes - set a string or binary field (copied).
 *
 * Passing data NULL with len 0 removes an optional field (user name,
 * password, will topic/payload). UTF-8 fields are checked: MQLITE_ERR_UTF8*
 * when ill-formed. Topic fields are checked as topic names.
 * Returns:   0; MQLITE_ERR_OPTION; MQLITE_ERR_RANGE (over 65535 bytes where
 *            the field is length-prefixed); MQLITE_ERR_UTF8*, _TOPIC_NAME;
 *            MQLITE_ERR_NOMEM. On failure the packet is unchanged.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_set_bytes(mqlite_packet *p, int32_t field, const void *data,
                                           size_t len);

/*
 * mqlite_packet_props - the packet's MQTT 5.0 properties (read-only view).
 * mqlite_packet_will_props - the CONNECT will properties.
 *
 * Returns:   a properties object (possibly empty; never NULL for a valid p).
 * Ownership: the packet's; valid until the packet's properties are set again
 *            or it is freed. Never free it.
 * Since:     0.1
 */
MQLITE_API const mqlite_props *mqlite_packet_props(const mqlite_packet *p);
MQLITE_API const mqlite_props *mqlite_packet_will_props(const mqlite_packet *p);

/*
 * mqlite_packet_set_props / mqlite_packet_set_will_props - replace the
 * packet's (will) properties with a copy of `props` (NULL: none).
 *
 * Returns:   0; MQLITE_ERR_PROPERTY_PACKET when a property is not allowed in
 *            this packet type; MQLITE_ERR_UNSUPPORTED for levels 3/4 (no
 *            properties before 5.0); MQLITE_ERR_NOMEM.
 * Ownership: copied; the caller keeps and frees `props`.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_set_props(mqlite_packet *p, const mqlite_props *props);
MQLITE_API int32_t mqlite_packet_set_will_props(mqlite_packet *p, const mqlite_props *props);

/*
 * mqlite_packet_count - number of entries in a list-carrying packet:
 * topic filters of SUBSCRIBE/UNSUBSCRIBE, reason codes of SUBACK/UNSUBACK.
 * Returns:   the count (>= 0); 0 for other packet types.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_count(const mqlite_packet *p);

/*
 * mqlite_packet_add_topic - append a topic filter to SUBSCRIBE or
 * UNSUBSCRIBE. `options` is the SUBSCRIBE options byte (bits 0-1 maximum
 * QoS, 5.0: bit 2 no local, bit 3 retain as published, bits 4-5 retain
 * handling); it must be 0 for UNSUBSCRIBE.
 * Returns:   0; MQLITE_ERR_TOPIC_FILTER (with the rule in errmsg);
 *            MQLITE_ERR_SUB_OPTIONS / _SUB_QOS3 / _RETAIN_HANDLING /
 *            _NO_LOCAL_SHARED; MQLITE_ERR_OPTION for other packet types;
 *            MQLITE_ERR_NOMEM.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_add_topic(mqlite_packet *p, const char *filter, int32_t options);

/*
 * mqlite_packet_add_reason - append a return/reason code to SUBACK or
 * UNSUBACK (5.0 only for UNSUBACK).
 * Returns:   0; MQLITE_ERR_RANGE (not 0..255); MQLITE_ERR_REASON_CODE /
 *            MQLITE_ERR_SUBACK_CODE (not allowed there); MQLITE_ERR_OPTION;
 *            MQLITE_ERR_NOMEM.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_packet_add_reason(mqlite_packet *p, int32_t reason);

/*
 * mqlite_packet_topic_at - the i-th topic filter (0-based) of SUBSCRIBE or
 * UNSUBSCRIBE; *len receives its length. NULL when i is out of range.
 * Ownership: the packet's (NUL-terminated unless decoded with NOCOPY).
 * mqlite_packet_options_at - its SUBSCRIBE options byte, or MQLITE_ERR_RANGE.
 * mqlite_packet_reason_at - the i-th reason code of SUBACK/UNSUBACK, or
 *            MQLITE_ERR_RANGE.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_packet_topic_at(const mqlite_packet *p, int32_t i, size_t *len);
MQLITE_API int32_t mqlite_packet_options_at(const mqlite_packet *p, int32_t i);
MQLITE_API int32_t mqlite_packet_reason_at(const mqlite_packet *p, int32_t i);

/*
 * mqlite_packet_type_name - "CONNECT", "PUBLISH", ... for MQLITE_PKT_*, or
 * "UNKNOWN". Static string.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_packet_type_name(int32_t type);

/* ======================================================================
 * Codec: MQTT 5.0 properties
 * ====================================================================== */

/* Property identifiers (MQTT 5.0 Table 2-4). */
#define MQLITE_PROP_PAYLOAD_FORMAT 0x01
#define MQLITE_PROP_MESSAGE_EXPIRY 0x02
#define MQLITE_PROP_CONTENT_TYPE 0x03
#define MQLITE_PROP_RESPONSE_TOPIC 0x08
#define MQLITE_PROP_CORRELATION_DATA 0x09
#define MQLITE_PROP_SUBSCRIPTION_ID 0x0B
#define MQLITE_PROP_SESSION_EXPIRY 0x11
#define MQLITE_PROP_ASSIGNED_CLIENT_ID 0x12
#define MQLITE_PROP_SERVER_KEEPALIVE 0x13
#define MQLITE_PROP_AUTH_METHOD 0x15
#define MQLITE_PROP_AUTH_DATA 0x16
#define MQLITE_PROP_REQUEST_PROBLEM_INFO 0x17
#define MQLITE_PROP_WILL_DELAY 0x18
#define MQLITE_PROP_REQUEST_RESPONSE_INFO 0x19
#define MQLITE_PROP_RESPONSE_INFO 0x1A
#define MQLITE_PROP_SERVER_REFERENCE 0x1C
#define MQLITE_PROP_REASON_STRING 0x1F
#define MQLITE_PROP_RECEIVE_MAX 0x21
#define MQLITE_PROP_TOPIC_ALIAS_MAX 0x22
#define MQLITE_PROP_TOPIC_ALIAS 0x23
#define MQLITE_PROP_MAX_QOS 0x24
#define MQLITE_PROP_RETAIN_AVAILABLE 0x25
#define MQLITE_PROP_USER 0x26
#define MQLITE_PROP_MAX_PACKET_SIZE 0x27
#define MQLITE_PROP_WILDCARD_SUB_AVAILABLE 0x28
#define MQLITE_PROP_SUB_ID_AVAILABLE 0x29
#define MQLITE_PROP_SHARED_SUB_AVAILABLE 0x2A

/* Property data types (mqlite_property_type). */
#define MQLITE_PTYPE_BYTE 1
#define MQLITE_PTYPE_U16 2
#define MQLITE_PTYPE_U32 3
#define MQLITE_PTYPE_VBI 4
#define MQLITE_PTYPE_UTF8 5
#define MQLITE_PTYPE_BINARY 6
#define MQLITE_PTYPE_PAIR 7

/*
 * mqlite_property_type - the data type of property `id` (MQLITE_PTYPE_*),
 * or MQLITE_ERR_PROPERTY_ID when no such property exists.
 * mqlite_property_name - its name ("Message Expiry Interval"), or NULL.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_property_type(int32_t id);
MQLITE_API const char *mqlite_property_name(int32_t id);

/*
 * mqlite_props_new - an empty, growable list of properties, kept in the
 * order added (user properties keep their order on the wire).
 * Returns:   the list or NULL on OOM. Free with mqlite_props_free().
 * Since:     0.1
 */
MQLITE_API mqlite_props *mqlite_props_new(void);

/*
 * mqlite_props_free - free a list made by mqlite_props_new(). NULL is a
 * no-op. Never call it on a list a packet or event returned.
 * Since:     0.1
 */
MQLITE_API void mqlite_props_free(mqlite_props *props);

/*
 * mqlite_props_add_int - append an integer-typed property (Byte, Two Byte,
 * Four Byte or Variable Byte Integer).
 * Returns:   0; MQLITE_ERR_PROPERTY_ID (unknown id); MQLITE_ERR_PROPERTY_TYPE
 *            (the property is not an integer); MQLITE_ERR_RANGE (value does
 *            not fit the type); MQLITE_ERR_PROPERTY_VALUE (a value the spec
 *            forbids, e.g. Receive Maximum 0); MQLITE_ERR_PROPERTY_DUPLICATE
 *            (a property that may appear once already present);
 *            MQLITE_ERR_NOMEM. Nothing is added on failure.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_props_add_int(mqlite_props *props, int32_t id, int64_t value);

/*
 * mqlite_props_add_str - append a UTF-8 string property (copied).
 * mqlite_props_add_bytes - append a Binary Data property, or a UTF-8
 *            string given with an explicit length (copied).
 * mqlite_props_add_pair - append a User Property (key, value copied).
 * Returns:   as mqlite_props_add_int, plus MQLITE_ERR_UTF8* for strings that
 *            are not valid MQTT UTF-8 and MQLITE_ERR_RANGE above 65535 bytes.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_props_add_str(mqlite_props *props, int32_t id, const char *value);
MQLITE_API int32_t mqlite_props_add_bytes(mqlite_props *props, int32_t id, const void *value,
                                          size_t len);
MQLITE_API int32_t mqlite_props_add_pair(mqlite_props *props, const char *key, const char *value);

/*
 * mqlite_props_count - number of properties in the list (0 for NULL).
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_props_count(const mqlite_props *props);

/*
 * mqlite_props_id - identifier of the i-th property (0-based), or
 *            MQLITE_ERR_RANGE.
 * mqlite_props_int - value of the i-th property when it is an integer, or
 *            MQLITE_ERR_RANGE / MQLITE_ERR_PROPERTY_TYPE.
 * mqlite_props_value - bytes of the i-th string/binary property, or of the
 *            value of a user property; *len receives the length. NULL when
 *            out of range or not of such a type.
 * mqlite_props_key - key of the i-th user property, or NULL.
 * Ownership: pointers belong to the list (NUL-terminated) and live as long as
 *            the list, or for a list owned by a packet/event, as long as that.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_props_id(const mqlite_props *props, int32_t i);
MQLITE_API int64_t mqlite_props_int(const mqlite_props *props, int32_t i);
MQLITE_API const void *mqlite_props_value(const mqlite_props *props, int32_t i, size_t *len);
MQLITE_API const char *mqlite_props_key(const mqlite_props *props, int32_t i, size_t *len);

/*
 * mqlite_props_find - index of the first property with identifier `id` at
 * or after index `start`, or MQLITE_ERR_NOT_FOUND.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_props_find(const mqlite_props *props, int32_t id, int32_t start);

/* ======================================================================
 * Topics
 * ====================================================================== */

/*
 * mqlite_topic_check_name - validate a topic name (what PUBLISH carries):
 * non-empty, at most 65535 bytes, valid UTF-8 without U+0000, no '+' or '#'.
 * mqlite_topic_check_filter - validate a topic filter (what SUBSCRIBE
 * carries): as above, but '+' must fill a whole level and '#' must be the
 * whole last level; "$share/{group}/{filter}" needs a non-empty group without
 * '/', '+', '#' (5.0 [MQTT-4.8.2-1], [MQTT-4.8.2-2]) and a valid filter after
 * it.
 * Parameters: len is the length in bytes (the string need not be
 *            NUL-terminated).
 * Returns:   0, or MQLITE_ERR_TOPIC_NAME / _TOPIC_FILTER / _UTF8* /
 *            MQLITE_ERR_INVALID (NULL).
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_topic_check_name(const char *topic, size_t len);
MQLITE_API int32_t mqlite_topic_check_filter(const char *filter, size_t len);

/*
 * mqlite_topic_matches - 1 if topic name `topic` matches topic filter
 * `filter`, 0 if not, negative on invalid input. Filters starting with a
 * wildcard do not match names starting with '$' (5.0 [MQTT-4.7.2-1]). A
 * shared-subscription filter is matched by its filter part.
 * Threads:   safe from any thread.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_topic_matches(const char *filter, const char *topic);

/* ======================================================================
 * Client
 *
 * A mqlite_client is one MQTT client session: options, a connection (TCP
 * now; TLS later), the QoS 1/2 state that survives reconnects, and a queue
 * of events the caller pulls. It never starts a thread and never blocks in
 * a call documented as non-blocking.
 *
 * Two ways to drive it:
 *  - socket mode: mqlite_client_connect(), then either your own loop
 *    (mqlite_client_fd / _want_write / _next_timeout_ms, then
 *    mqlite_client_io after poll) or mqlite_client_poll(timeout) per round;
 *  - sans-I/O mode: mqlite_client_start() with no socket, then
 *    mqlite_client_feed() bytes from your transport, send what
 *    mqlite_client_take_output() gives, and drive time with
 *    mqlite_client_set_clock(). Same session engine, no sockets.
 * ====================================================================== */

typedef struct mqlite_client mqlite_client;
typedef struct mqlite_event mqlite_event;

/* Integer options (mqlite_client_set_int / mqlite_client_get_int). */
#define MQLITE_OPT_PROTOCOL 1            /* 3, 4 or 5; default 4 (3.1.1) */
#define MQLITE_OPT_KEEPALIVE_S 2         /* 0..65535; default 60; 0 = off */
#define MQLITE_OPT_CLEAN_START 3         /* 0/1; default 1 */
#define MQLITE_OPT_SESSION_EXPIRY_S 4    /* 5.0: 0..4294967295; default 0 */
#define MQLITE_OPT_RECEIVE_MAX 5         /* 5.0: 1..65535 we accept in flight; default 65535 */
#define MQLITE_OPT_MAX_PACKET_SIZE 6     /* 5.0: largest packet we accept; 0 = no limit */
#define MQLITE_OPT_TOPIC_ALIAS_MAX 7     /* 5.0: aliases we accept from the server; default 16 */
#define MQLITE_OPT_MAX_INFLIGHT 8        /* our window of QoS 1/2 in flight; default 65535,
                                            lowered to the server's Receive Maximum */
#define MQLITE_OPT_MAX_QUEUED 9          /* messages waiting to be sent; default 10000; 0 = no limit */
#define MQLITE_OPT_MAX_QUEUED_BYTES 10   /* bytes waiting to be sent; default 64 MiB; 0 = no limit */
#define MQLITE_OPT_CONNECT_TIMEOUT_MS 11 /* TCP connect + CONNACK; default 10000 */
#define MQLITE_OPT_PING_TIMEOUT_MS 12    /* wait for PINGRESP; default: the keep-alive */
#define MQLITE_OPT_RECONNECT 13          /* 0/1: reconnect automatically; default 0 */
#define MQLITE_OPT_RECONNECT_MIN_MS 14   /* first back-off; default 500 */
#define MQLITE_OPT_RECONNECT_MAX_MS 15   /* back-off cap; default 30000 */
#define MQLITE_OPT_RESUBSCRIBE 16        /* 0/1: re-send subscriptions when a reconnect
                                            finds no session; default 1 */
#define MQLITE_OPT_STRICT_UTF8 17        /* 0/1: reject control characters; default 0 */
#define MQLITE_OPT_TCP_NODELAY 18        /* 0/1: disable Nagle; default 1 */
#define MQLITE_OPT_WILL_QOS 19           /* 0..2; default 0 */
#define MQLITE_OPT_WILL_RETAIN 20        /* 0/1; default 0 */
#define MQLITE_OPT_REQUEST_PROBLEM_INFO 21  /* 5.0: 0/1; default 1 */
#define MQLITE_OPT_REQUEST_RESPONSE_INFO 22 /* 5.0: 0/1; default 0 */
#define MQLITE_OPT_MAX_EVENTS 23         /* events held before reading stops (flow control); default 100000 */
#define MQLITE_OPT_TRACE 24              /* 0/1: an MQLITE_EVENT_TRACE per packet sent or
                                            received; default 0 */

/* String and byte options (mqlite_client_set_str / mqlite_client_set_bytes). */
#define MQLITE_OPT_CLIENT_ID 40      /* default: the id given to mqlite_client_new */
#define MQLITE_OPT_USERNAME 41       /* default: none */
#define MQLITE_OPT_PASSWORD 42       /* bytes; default: none */
#define MQLITE_OPT_WILL_TOPIC 43     /* setting it enables the will; NULL removes it */
#define MQLITE_OPT_WILL_PAYLOAD 44   /* bytes; default empty */

/* Property lists (mqlite_client_set_props). */
#define MQLITE_OPT_CONNECT_PROPS 60  /* extra CONNECT properties (e.g. user properties) */
#define MQLITE_OPT_WILL_PROPS 61     /* will properties (5.0: will delay, expiry, ...) */

/*
 * TLS and name resolution (take effect at the next connect; set while idle).
 *
 * TLS runs over the same poll-driven interface as plain TCP: the handshake
 * is non-blocking and advanced by mqlite_client_io / _poll, with
 * mqlite_client_fd, _want_write and _next_timeout_ms telling the truth
 * throughout; MQLITE_OPT_CONNECT_TIMEOUT_MS bounds each phase (name
 * resolution, TCP connect over all addresses, TLS handshake, CONNACK). A failed
 * handshake arrives as MQLITE_EVENT_CONNECT_FAILED with error
 * MQLITE_ERR_TLS and OpenSSL's reason in words in mqlite_event_text, e.g.
 * "TLS handshake failed: server certificate verify failed: certificate has
 * expired". Files are read when mqlite_client_connect is called; a file
 * that cannot be used makes that call fail with MQLITE_ERR_TLS.
 *
 * Host names are resolved asynchronously (c-ares, through the same fd):
 * mqlite_client_connect returns at once; AAAA and A answers are both
 * tried, families interleaved. Literal addresses skip the resolver.
 */
/* Integer options. */
#define MQLITE_OPT_TLS 80                      /* 0/1: connect with TLS; default 0 */
#define MQLITE_OPT_TLS_VERIFY_HOSTNAME 81      /* 0/1: check the certificate names the
                                                  host (or MQLITE_OPT_TLS_SERVER_NAME);
                                                  default 1 */
#define MQLITE_OPT_TLS_INSECURE_SKIP_VERIFY 82 /* 0/1: DANGER, development only: accept
                                                  any certificate from anyone (no chain,
                                                  no name check); default 0 */
#define MQLITE_OPT_TLS_MIN_VERSION 83          /* 12 (TLS 1.2) or 13 (TLS 1.3); default 12 */
#define MQLITE_OPT_TLS_USE_SYSTEM_CA 84        /* 0/1: also trust the system store when a CA
                                                  file/dir is set; default 0 (the system
                                                  store is used when neither is set) */
/* String options (mqlite_client_set_str; NULL restores the default). */
#define MQLITE_OPT_TLS_CAFILE 90       /* PEM bundle of trusted CAs */
#define MQLITE_OPT_TLS_CAPATH 91       /* directory of hashed CA files (c_rehash) */
#define MQLITE_OPT_TLS_CERTFILE 92     /* client certificate chain, PEM */
#define MQLITE_OPT_TLS_KEYFILE 93      /* its private key, PEM (default: in CERTFILE) */
#define MQLITE_OPT_TLS_KEY_PASSWORD 94 /* passphrase of an encrypted key (wiped when freed) */
#define MQLITE_OPT_TLS_CIPHERS 95      /* TLS 1.2 cipher list, OpenSSL syntax */
#define MQLITE_OPT_TLS_CIPHERSUITES 96 /* TLS 1.3 cipher suites, OpenSSL syntax */
#define MQLITE_OPT_TLS_SERVER_NAME 97  /* SNI and the name verified; default: the host
                                          given to mqlite_client_connect */
#define MQLITE_OPT_TLS_ALPN 98         /* comma-separated ALPN protocols, e.g. "mqtt" */
#define MQLITE_OPT_DNS_SERVERS 99      /* "ip[:port],..." resolvers to ask instead of
                                          /etc/resolv.conf's (tests, split DNS) */

/*
 * MQTT 5.0 enhanced authentication (section 4.12; shape CONNECT: set while
 * idle; needs MQLITE_OPT_PROTOCOL 5).
 *
 * Built in: MQLITE_OPT_AUTH_METHOD "SCRAM-SHA-256" with no
 * MQLITE_OPT_AUTH_DATA runs SCRAM-SHA-256 (RFC 5802/7677) with
 * MQLITE_OPT_USERNAME and MQLITE_OPT_PASSWORD, which then do not travel in
 * CONNECT; the CONNACK's server signature is checked (a server that does
 * not know the password is disconnected). mqlite_client_auth(c, 0x19,
 * NULL, 0) re-authenticates inside the session.
 *
 * Pluggable: any other method (or SCRAM with MQLITE_OPT_AUTH_DATA set)
 * sends MQLITE_OPT_AUTH_DATA in CONNECT; each AUTH 0x18 from the server
 * arrives as MQLITE_EVENT_AUTH (data in mqlite_event_payload) and the
 * application answers with mqlite_client_auth(c, 0x18, data, len). The
 * outcome is the usual CONNECTED / CONNECT_FAILED event (the CONNACK's
 * properties, Authentication Data included, via mqlite_event_props).
 */
#define MQLITE_OPT_AUTH_METHOD 100     /* string; default none (no enhanced auth) */
#define MQLITE_OPT_AUTH_DATA 101       /* bytes: initial Authentication Data */

/* Client states (mqlite_client_state). */
#define MQLITE_STATE_IDLE 0          /* no connection, none wanted */
#define MQLITE_STATE_CONNECTING 1    /* TCP connect or CONNACK under way */
#define MQLITE_STATE_CONNECTED 2     /* CONNACK accepted */
#define MQLITE_STATE_DISCONNECTING 3 /* DISCONNECT being sent */
#define MQLITE_STATE_WAITING 4       /* waiting to reconnect */

/*
 * mqlite_client_new - a new client with client identifier `client_id`
 * (copied; NULL or "" asks the server to assign one where the protocol
 * allows it).
 *
 * Returns:   the client, or NULL when memory ran out.
 * Ownership: the caller frees it with mqlite_client_free().
 * Since:     0.1
 */
MQLITE_API mqlite_client *mqlite_client_new(const char *client_id);

/*
 * mqlite_client_new_with_allocator - as mqlite_client_new, with every
 * allocation of this client made through `fn(ud, ...)` (see
 * mqlite_realloc_fn). `fn` must stay valid until mqlite_client_free().
 * Returns:   the client, or NULL (fn NULL, or the first allocation failed).
 * Since:     0.1
 */
MQLITE_API mqlite_client *mqlite_client_new_with_allocator(const char *client_id,
                                                           mqlite_realloc_fn fn, void *ud);

/*
 * mqlite_client_free - close the connection (without DISCONNECT) and free
 * the client with its queues and events. NULL is a no-op.
 * Since:     0.1
 */
MQLITE_API void mqlite_client_free(mqlite_client *c);

/*
 * mqlite_client_set_int / mqlite_client_get_int - set or read an integer
 * option (MQLITE_OPT_*, see each for range and default).
 * Returns:   set: 0; MQLITE_ERR_OPTION (unknown option), MQLITE_ERR_RANGE
 *            (out of range), MQLITE_ERR_STATE (options that shape CONNECT
 *            can only change while idle). get: the value, or
 *            MQLITE_ERR_OPTION. The message is in mqlite_client_errmsg().
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_set_int(mqlite_client *c, int32_t option, int64_t value);
MQLITE_API int64_t mqlite_client_get_int(mqlite_client *c, int32_t option);

/*
 * mqlite_client_set_str - set a string option (copied; NULL clears it).
 * mqlite_client_set_bytes - the same with an explicit length (binary
 *            options such as the password and will payload).
 * Returns:   0; MQLITE_ERR_OPTION; MQLITE_ERR_RANGE (over 65535 bytes);
 *            MQLITE_ERR_UTF8* (invalid UTF-8 in a string option);
 *            MQLITE_ERR_TOPIC_NAME (will topic); MQLITE_ERR_STATE (not
 *            idle); MQLITE_ERR_NOMEM.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_set_str(mqlite_client *c, int32_t option, const char *value);
MQLITE_API int32_t mqlite_client_set_bytes(mqlite_client *c, int32_t option, const void *value,
                                           size_t len);

/*
 * mqlite_client_set_props - set a property list option
 * (MQLITE_OPT_CONNECT_PROPS, MQLITE_OPT_WILL_PROPS); copied; NULL clears.
 * Returns:   0; MQLITE_ERR_OPTION; MQLITE_ERR_PROPERTY_PACKET (a property
 *            not allowed there); MQLITE_ERR_STATE; MQLITE_ERR_NOMEM.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_set_props(mqlite_client *c, int32_t option,
                                           const mqlite_props *props);

/*
 * mqlite_client_errmsg - what went wrong in the last failing call on `c`,
 * in words a user can act on.
 * Returns:   never NULL ("" before any failure; a fixed text for c NULL).
 * Ownership: the client's; valid until the next call on c.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_client_errmsg(const mqlite_client *c);

/*
 * mqlite_client_connect - start connecting to host:port over TCP (or TLS,
 * MQLITE_OPT_TLS). Does not block: name resolution (asynchronous), the TCP
 * connect, the TLS handshake, CONNECT and CONNACK proceed as the loop
 * drives the client, and MQLITE_EVENT_CONNECTED or
 * MQLITE_EVENT_CONNECT_FAILED tells the outcome (a name that does not
 * resolve, or not in time: CONNECT_FAILED with MQLITE_ERR_DNS). `host` is
 * an IPv4 or IPv6 literal or a host name; every address it resolves to is
 * tried in turn.
 * Returns:   0; MQLITE_ERR_STATE (already connecting or connected);
 *            MQLITE_ERR_INVALID (host NULL, port not 1..65535);
 *            MQLITE_ERR_TLS (a certificate, key or CA file cannot be used);
 *            MQLITE_ERR_CONFIG (bad cipher list, ALPN list or DNS servers);
 *            MQLITE_ERR_DNS (the resolver cannot start); MQLITE_ERR_IO.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_connect(mqlite_client *c, const char *host, int32_t port);

/*
 * mqlite_client_auth - send a 5.0 AUTH packet with the configured
 * MQLITE_OPT_AUTH_METHOD and `data` (len bytes, copied; may be NULL/0).
 *   reason 0x18: continue - the answer to an MQLITE_EVENT_AUTH challenge
 *                (pluggable methods; 5.0 [MQTT-4.12.0-3]);
 *   reason 0x19: re-authenticate, once connected (5.0 [MQTT-4.12.1-1]);
 *                the server answers with AUTH 0x18 challenges and finally
 *                AUTH 0x00 (MQLITE_EVENT_AUTH, reason 0) or a DISCONNECT.
 *                With the built-in SCRAM-SHA-256, pass no data.
 * Works in socket and sans-I/O mode.
 * Returns:   0; MQLITE_ERR_STATE (no method configured - 5.0
 *            [MQTT-4.12.0-7] forbids AUTH then -, 0x19 before CONNACK or
 *            while one is under way, 0x18 with no exchange under way or
 *            for the built-in SCRAM); MQLITE_ERR_RANGE (other reasons);
 *            MQLITE_ERR_INVALID (data for the built-in SCRAM, or NULL
 *            with len > 0); MQLITE_ERR_NOT_CONNECTED; MQLITE_ERR_NOMEM.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_client_auth(mqlite_client *c, int32_t reason, const void *data,
                                      size_t len);

/*
 * mqlite_client_disconnect - send DISCONNECT (5.0: with `reason`, 0 =
 * normal; 4 = disconnect with will message) and close once it is written.
 * Stops auto-reconnect. Queued and in-flight messages stay in the client.
 * Returns:   0; MQLITE_ERR_NOT_CONNECTED; MQLITE_ERR_RANGE (bad reason).
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_disconnect(mqlite_client *c, int32_t reason);

/*
 * mqlite_client_disconnect_expiry - as mqlite_client_disconnect, and in 5.0
 * also change the Session Expiry Interval for the session being left:
 * `session_expiry_s` 0..4294967295, or -1 to leave it as CONNECT set it.
 * MQTT 5.0 3.14.2.2.2 forbids raising it from 0: that is MQLITE_ERR_INVALID.
 * Ignored for 3.1 / 3.1.1.
 * Returns:   as mqlite_client_disconnect; MQLITE_ERR_RANGE; MQLITE_ERR_INVALID.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_disconnect_expiry(mqlite_client *c, int32_t reason,
                                                   int64_t session_expiry_s);

/*
 * mqlite_client_fd - the socket to watch (readable always; writable when
 *            mqlite_client_want_write() says so), or -1 when there is none.
 *            While a host name is being resolved it is an epoll descriptor
 *            gathering the resolver's sockets (watch it for readability);
 *            the fd changes when resolution ends, as on every reconnect:
 *            read it again after each mqlite_client_io().
 * mqlite_client_want_write - 1 when output is waiting (or a TCP connect is
 *            in progress, or TLS needs to write to go on), else 0.
 * mqlite_client_next_timeout_ms - milliseconds until the client needs a
 *            call even without I/O (keep-alive, timeouts, reconnect,
 *            resolver retransmissions), 0 if due now (also when decrypted
 *            TLS bytes are waiting inside the library), -1 if no deadline.
 * mqlite_client_state - MQLITE_STATE_*.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_fd(const mqlite_client *c);
MQLITE_API int32_t mqlite_client_want_write(const mqlite_client *c);
MQLITE_API int32_t mqlite_client_next_timeout_ms(mqlite_client *c);
MQLITE_API int32_t mqlite_client_state(const mqlite_client *c);

/*
 * mqlite_client_io - do the work an external loop found ready: read when
 * `readable`, write when `writable`, and run due timers. Never blocks.
 * Returns:   0, or a negative code when the connection was lost in this call
 *            (an event says so too; with auto-reconnect the client goes on).
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_io(mqlite_client *c, int32_t readable, int32_t writable);

/*
 * mqlite_client_poll - one round of the loop: wait up to timeout_ms (0 =
 * don't wait, -1 = until something happens or a deadline) for the socket,
 * then mqlite_client_io(). Returns early when an event is already queued.
 * Returns:   number of events queued (>= 0), or a negative error as
 *            mqlite_client_io.
 * Threads:   blocks for at most timeout_ms; the only waiting call besides
 *            the _wait functions.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_poll(mqlite_client *c, int32_t timeout_ms);

/*
 * mqlite_client_publish - publish `len` bytes of `payload` to `topic` at
 * QoS 0, 1 or 2. The message is queued at once (also while disconnected)
 * and sent as the window allows.
 * mqlite_client_publish_props - the same with 5.0 properties (copied):
 *            payload format, message expiry, content type, response topic,
 *            correlation data, user properties.
 * Parameters:
 *   packet_id  out, may be NULL: the packet identifier of a QoS 1/2 message
 *              (stable until its MQLITE_EVENT_PUBLISHED); 0 for QoS 0.
 * Returns:   0; MQLITE_ERR_TOPIC_NAME (empty, wildcard, bad UTF-8),
 *            MQLITE_ERR_RANGE (QoS not 0..2), MQLITE_ERR_QOS_NOT_SUPPORTED /
 *            MQLITE_ERR_RETAIN_NOT_SUPPORTED (the server said so),
 *            MQLITE_ERR_TOO_LARGE (over the server's maximum packet size),
 *            MQLITE_ERR_PROPERTY_PACKET (property not allowed in PUBLISH),
 *            MQLITE_ERR_QUEUE_FULL (nothing queued), MQLITE_ERR_NO_PACKET_ID,
 *            MQLITE_ERR_NOMEM. On failure nothing was queued.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_publish(mqlite_client *c, const char *topic, const void *payload,
                                         size_t len, int32_t qos, int32_t retain,
                                         int32_t *packet_id);
MQLITE_API int32_t mqlite_client_publish_props(mqlite_client *c, const char *topic,
                                               const void *payload, size_t len, int32_t qos,
                                               int32_t retain, const mqlite_props *props,
                                               int32_t *packet_id);

/*
 * mqlite_client_subscribe - subscribe to one topic filter. `options` is the
 * SUBSCRIBE options byte: the maximum QoS (0..2) plus, in 5.0, 0x04 no
 * local, 0x08 retain as published, 0x10 / 0x20 retain handling 1 / 2.
 * mqlite_client_unsubscribe - unsubscribe from one filter.
 * mqlite_client_send_packet - send a SUBSCRIBE or UNSUBSCRIBE built with the
 *            codec (several filters, 5.0 subscription identifier and user
 *            properties); its packet identifier is assigned here.
 * The acknowledgement arrives as MQLITE_EVENT_SUBACK / _UNSUBACK with the
 * same packet identifier and one reason code per filter. Allowed from the
 * moment mqlite_client_connect() returns (in sans-I/O mode, at any time):
 * what is sent before CONNACK waits for it.
 * Returns:   0; MQLITE_ERR_TOPIC_FILTER; MQLITE_ERR_RANGE (options);
 *            MQLITE_ERR_NOT_CONNECTED (idle or waiting to reconnect);
 *            MQLITE_ERR_INVALID (a packet of another type or level);
 *            MQLITE_ERR_NO_PACKET_ID; MQLITE_ERR_NOMEM.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_subscribe(mqlite_client *c, const char *filter, int32_t options,
                                           int32_t *packet_id);
MQLITE_API int32_t mqlite_client_unsubscribe(mqlite_client *c, const char *filter,
                                             int32_t *packet_id);
MQLITE_API int32_t mqlite_client_send_packet(mqlite_client *c, mqlite_packet *packet,
                                             int32_t *packet_id);

/*
 * mqlite_client_queued - messages waiting to be sent (not yet in flight).
 * mqlite_client_inflight - QoS 1/2 messages sent and not yet acknowledged.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_queued(const mqlite_client *c);
MQLITE_API int32_t mqlite_client_inflight(const mqlite_client *c);

/*
 * Sans-I/O mode.
 *
 * mqlite_client_start - begin a session over a transport of your own: the
 *            CONNECT packet is ready in the output at once. Call it for
 *            every new transport connection (the previous one, if any, must
 *            have been ended with mqlite_client_transport_closed()).
 * mqlite_client_feed - bytes received from the peer (any split is fine).
 *            Returns 0, or a negative code when they broke the protocol (the
 *            output then holds a 5.0 DISCONNECT to send before closing, and
 *            an event says why).
 * mqlite_client_take_output - copy up to `cap` bytes of pending output into
 *            buf and drop them from the client. Returns the count (0: none).
 * mqlite_client_transport_closed - tell the client its transport is gone.
 * mqlite_client_set_clock - the current time in milliseconds (any epoch,
 *            never going back). Once set, the client uses it instead of
 *            its own monotonic clock, in every mode.
 * Returns:   0 / counts as said; MQLITE_ERR_STATE when the client is in
 *            socket mode; MQLITE_ERR_MISUSE for c NULL.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_start(mqlite_client *c);
MQLITE_API int32_t mqlite_client_feed(mqlite_client *c, const void *bytes, size_t len);
MQLITE_API size_t mqlite_client_take_output(mqlite_client *c, void *buf, size_t cap);
MQLITE_API int32_t mqlite_client_transport_closed(mqlite_client *c);
MQLITE_API int32_t mqlite_client_set_clock(mqlite_client *c, uint64_t now_ms);

/*
 * Blocking convenience layer, for simple programs and FFIs without an event
 * loop of their own. Built on mqlite_client_poll's machinery; events that
 * arrive while waiting stay queued for mqlite_client_next_event().
 *
 * mqlite_client_pending - 1 while `packet_id` is in use (a QoS 1/2 message
 *            queued or in flight, or a SUBSCRIBE/UNSUBSCRIBE awaiting its
 *            acknowledgement), 0 once its flow completed (or for an id not in
 *            use). Never blocks.
 * mqlite_client_wait - block until packet_id is no longer pending, at most
 *            timeout_ms (-1: no limit). Returns 0; MQLITE_ERR_TIMEOUT;
 *            MQLITE_ERR_NOT_CONNECTED when the client is idle (disconnected
 *            without auto-reconnect) with the flow still pending;
 *            MQLITE_ERR_STATE in sans-I/O mode. The outcome (success or the
 *            server's reason code) is in the MQLITE_EVENT_PUBLISHED /
 *            _SUBACK event.
 * mqlite_client_wait_connected - after mqlite_client_connect(), block until
 *            CONNACK accepted (0), refused or unreachable (the event's error,
 *            message in mqlite_client_errmsg()), or MQLITE_ERR_TIMEOUT.
 * mqlite_client_next_event_wait - mqlite_client_next_event(), waiting up to
 *            timeout_ms for one when none is queued; NULL on timeout or when
 *            the client is idle. Ownership as mqlite_client_next_event().
 * Threads:   these block the calling thread (and only it); one thread per
 *            client as always.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_pending(const mqlite_client *c, int32_t packet_id);
MQLITE_API int32_t mqlite_client_wait(mqlite_client *c, int32_t packet_id, int32_t timeout_ms);
MQLITE_API int32_t mqlite_client_wait_connected(mqlite_client *c, int32_t timeout_ms);
MQLITE_API const mqlite_event *mqlite_client_next_event_wait(mqlite_client *c,
                                                             int32_t timeout_ms);

/* ======================================================================
 * Events
 * ====================================================================== */

#define MQLITE_EVENT_CONNECTED 1      /* CONNACK accepted; see _session_present */
#define MQLITE_EVENT_CONNECT_FAILED 2 /* refused (reason) or unreachable (error) */
#define MQLITE_EVENT_DISCONNECTED 3   /* the connection ended (error, 5.0 reason) */
#define MQLITE_EVENT_MESSAGE 4        /* an application message arrived */
#define MQLITE_EVENT_PUBLISHED 5      /* a QoS 1/2 flow completed (packet id, reason);
                                         also a QoS 2 flow past PUBREC whose PUBCOMP a
                                         lost session can no longer send (no error) */
#define MQLITE_EVENT_PUBLISH_LOST 6   /* an in-flight message the server's new
                                         session does not know: it may or may not
                                         have arrived; topic and payload given */
#define MQLITE_EVENT_SUBACK 7         /* per-filter granted QoS / reason codes */
#define MQLITE_EVENT_UNSUBACK 8       /* per-filter reason codes (5.0) */
#define MQLITE_EVENT_ERROR 9          /* a failure not tied to the above; with
                                         MQLITE_ERR_NOMEM: events were lost because
                                         memory ran out (the text says how many) */
#define MQLITE_EVENT_TRACE 10         /* MQLITE_OPT_TRACE: one whole packet's bytes in
                                         _payload; _reason 1 = sent, 0 = received */
#define MQLITE_EVENT_AUTH 11          /* 5.0 AUTH from the server: _reason 0x18 (continue:
                                         answer with mqlite_client_auth) or 0x00
                                         (re-authentication succeeded); the server's
                                         Authentication Data in _payload */

/*
 * mqlite_client_next_event - take the oldest pending event, or NULL when
 * there is none.
 *
 * Ownership: the event, and every pointer its accessors return, belong to
 *   the client and stay valid until the next mqlite_client_next_event() or
 *   mqlite_client_free() on this client. Copy what you keep.
 * Threads:   like every mqlite_client_* call: one thread at a time.
 * Errors:    none; NULL means "queue empty" (also for c == NULL).
 * Since:     0.1
 */
MQLITE_API const mqlite_event *mqlite_client_next_event(mqlite_client *c);

/*
 * mqlite_client_pending_events - number of events waiting to be taken.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_client_pending_events(const mqlite_client *c);

/*
 * Event accessors. All take an event from mqlite_client_next_event() and
 * return 0 / NULL / empty when the field does not apply to its type.
 *
 * mqlite_event_type         MQLITE_EVENT_*.
 * mqlite_event_packet_id    PUBLISHED, PUBLISH_LOST, MESSAGE (QoS > 0),
 *                           SUBACK, UNSUBACK.
 * mqlite_event_reason       CONNECT_FAILED: CONNACK return/reason code;
 *                           DISCONNECTED: 5.0 DISCONNECT reason code (from
 *                           the server, or sent by us); PUBLISHED: PUBACK /
 *                           PUBREC / PUBCOMP reason code.
 * mqlite_event_error        MQLITE_ERR_* behind a failure, else 0.
 * mqlite_event_text         a sentence describing the event (e.g. "Connection
 *                           Refused, not authorized"); never NULL.
 * mqlite_event_session_present  CONNECTED: 1 if the server kept the session.
 * mqlite_event_topic        MESSAGE, PUBLISH_LOST: NUL-terminated topic; *len
 *                           (may be NULL) gets its length.
 * mqlite_event_payload      MESSAGE, PUBLISH_LOST: the payload (also
 *                           NUL-terminated for convenience; *len is exact).
 * mqlite_event_qos, mqlite_event_retain, mqlite_event_dup
 *                           MESSAGE: as received.
 * mqlite_event_props        MESSAGE, CONNECTED, DISCONNECTED, PUBLISHED,
 *                           SUBACK, UNSUBACK: 5.0 properties (an empty list
 *                           when there are none; NULL only when memory ran
 *                           out building it — a later call tries again).
 * mqlite_event_count        SUBACK/UNSUBACK: number of reason codes.
 * mqlite_event_reason_at    SUBACK/UNSUBACK: i-th code, or MQLITE_ERR_RANGE.
 * Ownership: as mqlite_client_next_event.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_event_type(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_packet_id(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_reason(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_error(const mqlite_event *ev);
MQLITE_API const char *mqlite_event_text(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_session_present(const mqlite_event *ev);
MQLITE_API const char *mqlite_event_topic(const mqlite_event *ev, size_t *len);
MQLITE_API const void *mqlite_event_payload(const mqlite_event *ev, size_t *len);
MQLITE_API int32_t mqlite_event_qos(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_retain(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_dup(const mqlite_event *ev);
MQLITE_API const mqlite_props *mqlite_event_props(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_count(const mqlite_event *ev);
MQLITE_API int32_t mqlite_event_reason_at(const mqlite_event *ev, int32_t i);

/*
 * mqlite_event_type_name - "CONNECTED", "MESSAGE", ... or "UNKNOWN". Static.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_event_type_name(int32_t type);

/* ======================================================================
 * Broker
 *
 * An embeddable MQTT 3.1 / 3.1.1 / 5.0 broker: one handle, one thread (the
 * caller's), epoll, non-blocking sockets. Embed it in a test or program and
 * drive it with mqlite_broker_poll(), or let mqlite_broker_run() loop until
 * mqlite_broker_stop().
 * ====================================================================== */

typedef struct mqlite_broker mqlite_broker;

/* Integer options (mqlite_broker_set_int / mqlite_broker_get_int). */
#define MQLITE_BOPT_MAX_PACKET_SIZE 1      /* largest packet accepted; default 268435460 */
#define MQLITE_BOPT_MAX_INFLIGHT 2         /* per client, outgoing QoS 1/2 window; default 20 */
#define MQLITE_BOPT_MAX_QUEUED 3           /* per client, messages queued; default 1000; 0 = no limit */
#define MQLITE_BOPT_MAX_QUEUED_BYTES 4     /* per client; default 0 = no limit */
#define MQLITE_BOPT_RETAIN_AVAILABLE 5     /* 0/1; default 1 */
#define MQLITE_BOPT_ALLOW_ANONYMOUS 6      /* 0/1; default 1, but 0 when a password or SCRAM
                                              file is set (MQLITE_BOPT_PASSWORD_FILE) and
                                              this option is not */
#define MQLITE_BOPT_SESSION_EXPIRY_MAX_S 7 /* cap on 5.0 session expiry and on 3.x
                                              persistent sessions; default 0 = never expire
                                              (mosquitto: persistent_client_expiration) */
#define MQLITE_BOPT_MAX_KEEPALIVE_S 8      /* 5.0 server keep alive cap; default 65535 */
#define MQLITE_BOPT_RECEIVE_MAX 9          /* incoming QoS 1/2 window per client; default 65535 */
#define MQLITE_BOPT_TOPIC_ALIAS_MAX 10     /* client -> broker aliases; default 10 */
#define MQLITE_BOPT_MAX_QOS 11             /* 0..2; default 2 */
#define MQLITE_BOPT_SYS_INTERVAL_S 12      /* $SYS refresh; default 10; 0 = off */
#define MQLITE_BOPT_CONNECT_TIMEOUT_MS 13  /* sockets that send no CONNECT; default 10000 */
#define MQLITE_BOPT_LOG_LEVEL 14           /* MQLITE_LOG_*; default MQLITE_LOG_WARNING */
#define MQLITE_BOPT_MAX_CONNECTIONS 15     /* 0 = no limit (default); further connections:
                                              5.0 CONNACK 0x97, 3.x 0x03 (TLS: closed) */
#define MQLITE_BOPT_WILDCARD_SUBS 16       /* 0/1; default 1 */
#define MQLITE_BOPT_SHARED_SUBS 17         /* 0/1; default 1 */
#define MQLITE_BOPT_SUBSCRIPTION_IDS 18    /* 0/1; default 1 */
#define MQLITE_BOPT_AUTH_EXTERNAL 19       /* 0/1; 1 = every CONNECT, 5.0 AUTH exchange and
                                              re-authentication waits for the application:
                                              mqlite_broker_next_auth_request(); default 0 */
#define MQLITE_BOPT_MAX_CONNECTION_RATE 20 /* new connections per source address per second;
                                              more: 5.0 CONNACK 0x9F, 3.x 0x03 (TLS:
                                              closed); 0 = no limit (default) */
#define MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS 21 /* TLS handshakes not complete by then are
                                              closed; default 5000 */
#define MQLITE_BOPT_MAX_BACKLOG_BYTES 22   /* per connected client: encoded output plus
                                              queued messages waiting for it; over it the
                                              slow client policy applies; default 16 MiB,
                                              0 = no limit */
#define MQLITE_BOPT_SLOW_CLIENT_POLICY 23  /* MQLITE_SLOW_*; default MQLITE_SLOW_DROP_QOS0 */

/* Slow client policies (MQLITE_BOPT_SLOW_CLIENT_POLICY). */
#define MQLITE_SLOW_DROP_QOS0 0  /* over the backlog, QoS 0 messages for it are dropped
                                    (counted); QoS 1/2 wait within max queued limits */
#define MQLITE_SLOW_DISCONNECT 1 /* over the backlog (or its queue full), the client is
                                    disconnected: 5.0 DISCONNECT 0x97; its session and
                                    will follow the usual rules */

/* String options (mqlite_broker_set_str): files in mosquitto's formats,
 * read at once; set again to reload, NULL to remove. They form the global
 * security scope (see docs/security.md). */
#define MQLITE_BOPT_PASSWORD_FILE 100      /* mosquitto_passwd format ($7$ / $6$ hashes) */
#define MQLITE_BOPT_ACL_FILE 101           /* mosquitto acl_file format; replaces the rules
                                              of mqlite_broker_acl_add() */
#define MQLITE_BOPT_SCRAM_FILE 102         /* SCRAM-SHA-256 credentials (mqlite passwd --scram) */

/* Log levels */
#define MQLITE_LOG_ERROR 1
#define MQLITE_LOG_WARNING 2
#define MQLITE_LOG_NOTICE 3 /* connects and disconnects */
#define MQLITE_LOG_INFO 4
#define MQLITE_LOG_DEBUG 5

/*
 * mqlite_broker_new - a new broker with default options and no listener.
 * mqlite_broker_new_with_allocator - the same, allocating through fn/ud.
 * Returns:   the broker, or NULL on OOM.
 * Ownership: free with mqlite_broker_free().
 * Since:     0.1
 */
MQLITE_API mqlite_broker *mqlite_broker_new(void);
MQLITE_API mqlite_broker *mqlite_broker_new_with_allocator(mqlite_realloc_fn fn, void *ud);

/*
 * mqlite_broker_free - close every connection and listener and free the
 * broker. NULL is a no-op. Not while another thread is in
 * mqlite_broker_poll/_run (stop it and let it return first).
 * Since:     0.1
 */
MQLITE_API void mqlite_broker_free(mqlite_broker *b);

/*
 * mqlite_broker_set_int / mqlite_broker_get_int - MQLITE_BOPT_* options.
 * Returns:   set: 0, MQLITE_ERR_OPTION, MQLITE_ERR_RANGE (message in
 *            mqlite_broker_errmsg()); get: the value or MQLITE_ERR_OPTION.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_set_int(mqlite_broker *b, int32_t option, int64_t value);
MQLITE_API int64_t mqlite_broker_get_int(mqlite_broker *b, int32_t option);

/*
 * mqlite_broker_set_str - a string option: MQLITE_BOPT_PASSWORD_FILE,
 * MQLITE_BOPT_ACL_FILE or MQLITE_BOPT_SCRAM_FILE (a path; NULL removes).
 *
 * The file is read now; connections already authenticated keep going,
 * later decisions use the new contents. Bad entries of a password or SCRAM
 * file are skipped with a warning in the log, as mosquitto does.
 * Returns:   0; MQLITE_ERR_OPTION (unknown option); MQLITE_ERR_IO (cannot
 *            read the file); MQLITE_ERR_CONFIG ("file:line: message" for a
 *            bad ACL line); MQLITE_ERR_NOMEM. On failure nothing changed.
 *            Message in mqlite_broker_errmsg().
 * Ownership: value is copied.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_set_str(mqlite_broker *b, int32_t option, const char *value);

/*
 * mqlite_broker_load_config - read a configuration file in mosquitto's
 * `key value` format (see docs/broker.md for the keys). Listeners it names
 * are opened by this call.
 * Returns:   0; MQLITE_ERR_CONFIG with "file:line: message" in
 *            mqlite_broker_errmsg() for an unknown key or bad value;
 *            MQLITE_ERR_IO when the file cannot be read or a listener
 *            cannot be opened.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_load_config(mqlite_broker *b, const char *path);

/*
 * mqlite_broker_listen - listen on host:port (host NULL = "127.0.0.1";
 * "0.0.0.0" or "::" for all addresses; port 0 = pick a free port).
 * Parameters:
 *   bound_port  out, may be NULL: the port actually bound.
 * Returns:   0; MQLITE_ERR_INVALID; MQLITE_ERR_IO (address in use, ...);
 *            MQLITE_ERR_DNS.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_listen(mqlite_broker *b, const char *host, int32_t port,
                                        int32_t *bound_port);

/* Flags of mqlite_broker_listen_tls(). */
#define MQLITE_BTLS_REQUIRE_CERT 1         /* clients must present a certificate the CA
                                              file verifies (require_certificate true) */
#define MQLITE_BTLS_REQUEST_CERT 2         /* ask for one; verify it when given */
#define MQLITE_BTLS_IDENTITY_AS_USERNAME 4 /* the certificate's Common Name is the user
                                              name; CONNECT user name and password are
                                              ignored (use_identity_as_username true) */
#define MQLITE_BTLS_MIN_TLS13 8            /* TLS 1.3 only (default: 1.2 and 1.3) */

/*
 * mqlite_broker_listen_tls - listen for MQTT over TLS (OpenSSL) on
 * host:port, as mqlite_broker_listen().
 *
 * Handshakes are non-blocking inside mqlite_broker_poll(): a client that
 * stalls mid-handshake delays nobody and is closed after
 * MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS. Failed handshakes are logged with
 * OpenSSL's reason ("certificate verify failed: ...", "not TLS: the client
 * sent a plain MQTT CONNECT to a TLS port") and counted
 * (MQLITE_BSTAT_TLS_HANDSHAKE_FAILED).
 *
 * Parameters:
 *   certfile  PEM certificate chain of the server (required).
 *   keyfile   PEM private key, unencrypted; NULL: in certfile.
 *   cafile    PEM CA bundle that verifies client certificates; required
 *             with MQLITE_BTLS_REQUIRE_CERT / _REQUEST_CERT, else may be NULL.
 *   flags     MQLITE_BTLS_* or 0.
 *   bound_port  out, may be NULL: the port actually bound.
 * Returns:   0; MQLITE_ERR_TLS / MQLITE_ERR_CONFIG (a file cannot be read,
 *            the key does not match the certificate, ...: the file is
 *            named in mqlite_broker_errmsg()); MQLITE_ERR_INVALID (no
 *            certfile, unknown flag, IDENTITY_AS_USERNAME without client
 *            certificates); as mqlite_broker_listen().
 * Ownership: files are read by this call; the paths are not kept.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_listen_tls(mqlite_broker *b, const char *host, int32_t port,
                                            const char *certfile, const char *keyfile,
                                            const char *cafile, int32_t flags,
                                            int32_t *bound_port);

/*
 * mqlite_broker_poll - one round: wait up to timeout_ms (0 = no wait, -1 =
 * until something happens) for sockets, serve what is ready, run timers.
 * Returns:   0, MQLITE_ERR_STATE after mqlite_broker_stop(), or another
 *            negative code on a fatal error.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_poll(mqlite_broker *b, int32_t timeout_ms);

/*
 * mqlite_broker_run - poll until mqlite_broker_stop() is called.
 * Returns:   0 when stopped, or a negative code on a fatal error.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_run(mqlite_broker *b);

/*
 * mqlite_broker_stop - ask a running broker to return from
 * mqlite_broker_run / _poll as soon as possible.
 * Threads:   safe from any thread and from a signal handler (an atomic flag
 *            and a write to an eventfd).
 * Since:     0.1
 */
MQLITE_API void mqlite_broker_stop(mqlite_broker *b);

/*
 * mqlite_broker_errmsg - what went wrong in the last failing call on `b`.
 * Never NULL. Ownership: the broker's; valid until the next call on b.
 * Since:     0.1
 */
MQLITE_API const char *mqlite_broker_errmsg(const mqlite_broker *b);

/*
 * mqlite_broker_port - the port of the i-th listener (0-based), or
 * MQLITE_ERR_RANGE.
 * Since:     0.1
 */
MQLITE_API int32_t mqlite_broker_port(const mqlite_broker *b, int32_t i);

#define MQLITE_BSTAT_CLIENTS_CONNECTED 1
#define MQLITE_BSTAT_CLIENTS_TOTAL 2       /* connected + persistent sessions offline */
#define MQLITE_BSTAT_MESSAGES_RECEIVED 3
#define MQLITE_BSTAT_MESSAGES_SENT 4
#define MQLITE_BSTAT_BYTES_RECEIVED 5
#define MQLITE_BSTAT_BYTES_SENT 6
#define MQLITE_BSTAT_RETAINED 7
#define MQLITE_BSTAT_MESSAGES_DROPPED 8    /* queue overflow for offline / slow clients */
#define MQLITE_BSTAT_SUBSCRIPTIONS 9
#define MQLITE_BSTAT_CONNECTIONS_REFUSED 10   /* over max_connections */
#define MQLITE_BSTAT_CONNECTIONS_RATE_LIMITED 11 /* over MQLITE_BOPT_MAX_CONNECTION_RATE */
#define MQLITE_BSTAT_AUTH_FAILED 12        /* logins and re-authentications refused */
#define MQLITE_BSTAT_ACL_DENIED 13         /* PUBLISH, SUBSCRIBE and wills the ACL refused */
#define MQLITE_BSTAT_TLS_HANDSHAKE_FAILED 14 /* failed or timed out */
#define MQLITE_BSTAT_SLOW_DISCONNECTED 15  /* clients closed by MQLITE_SLOW_DISCONNECT */
#define MQLITE_BSTAT_SLOW_DROPPED 16       /* QoS 0 messages dropped for slow clients
                                              (also in MQLITE_BSTAT_MESSAGES_DROPPED) */
#define MQLITE_BSTAT_PACKETS_TOO_LARGE 17  /* packets over the maximum packet size */
#define MQLITE_BSTAT_AUTH_PENDING 18       /* requests not yet taken with
                                              mqlite_broker_next_auth_request() */

/*
 * mqlite_broker_stat - a counter: MQLITE_BSTAT_*. Returns the value (>= 0)
 * or MQLITE_ERR_OPTION.
 * Since:     0.1
 */
MQLITE_API int64_t mqlite_broker_stat(const mqlite_broker *b, int32_t stat);

/* ======================================================================
 * Broker: access control and authentication by the application
 *
 * Two FFI-friendly ways for an embedding program to decide security
 * itself, without callbacks (docs/security.md has a worked example):
 *  - ACL rules given through the API (mqlite_broker_acl_add), with the
 *    semantics of mosquitto's acl_file, decided inside the broker for every
 *    PUBLISH, SUBSCRIBE, delivery (retained messages and wills included);
 *  - authentication pulled as requests: with MQLITE_BOPT_AUTH_EXTERNAL set,
 *    each CONNECT (and each 5.0 AUTH step and re-authentication) becomes a
 *    request that the broker holds, unanswered, until the application pulls
 *    it with mqlite_broker_next_auth_request() and answers with
 *    mqlite_broker_auth_reply(); meanwhile that connection's later input is
 *    held (bounded), other clients are served, and the connect timeout
 *    (MQLITE_BOPT_CONNECT_TIMEOUT_MS) closes it if no answer comes.
 * ====================================================================== */

/* ACL access (mqlite_broker_acl_add). */
#define MQLITE_ACL_DENY 0
#define MQLITE_ACL_READ 1
#define MQLITE_ACL_WRITE 2
#define MQLITE_ACL_READWRITE 3
#define MQLITE_ACL_PATTERN 0x100 /* OR-ed in: a `pattern` rule for every client, with
                                    %c (client id) and %u (user name) substituted */

/*
 * mqlite_broker_acl_add - add one ACL rule to the broker's global rule set,
 * as a line of mosquitto's acl_file would (`user NAME` + `topic ACCESS
 * FILTER`, or `pattern ACCESS FILTER`).
 *
 * Once any rule exists, only what the rules grant is allowed: PUBLISH
 * needs write (denied: 5.0 PUBACK/PUBREC 0x87, 3.x acknowledged and
 * dropped), each delivered message needs read (retained ones and wills
 * included), a will needs write when it is sent, and a SUBSCRIBE is refused
 * (5.0 0x87, 3.1.1 0x80) when no read rule can match anything it matches or
 * a deny rule covers it. Deny rules win over the others of the same user or
 * of the patterns; the user's rules are decided before the patterns.
 *
 * Parameters:
 *   username  the rule's user, or NULL for clients without a user name;
 *             ignored for MQLITE_ACL_PATTERN rules.
 *   access    MQLITE_ACL_DENY / _READ / _WRITE / _READWRITE, optionally
 *             | MQLITE_ACL_PATTERN.
 *   filter    a topic filter (wildcards allowed), UTF-8.
 * Returns:   0; MQLITE_ERR_INVALID (bad filter or access; message in
 *            mqlite_broker_errmsg()); MQLITE_ERR_NOMEM.
 * Ownership: strings are copied.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_acl_add(mqlite_broker *b, const char *username, int32_t access,
                                         const char *filter);

/*
 * mqlite_broker_acl_clear - remove every global ACL rule (the file's and
 * the API's): everything is allowed again.
 * Returns:   0, or MQLITE_ERR_MISUSE for an invalid handle.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_acl_clear(mqlite_broker *b);

typedef struct mqlite_auth_request mqlite_auth_request;

/* Kinds of authentication requests (mqlite_auth_request_kind). */
#define MQLITE_AUTH_CONNECT 1  /* a CONNECT: user name, password, certificate, and the
                                  5.0 Authentication Method / Data if any */
#define MQLITE_AUTH_CONTINUE 2 /* 5.0: the client's AUTH 0x18 after our continue */
#define MQLITE_AUTH_REAUTH 3   /* 5.0: AUTH 0x19, re-authentication of a connected client */

/*
 * mqlite_broker_next_auth_request - take the oldest authentication request
 * waiting for the application (MQLITE_BOPT_AUTH_EXTERNAL), or NULL.
 *
 * Answer each with mqlite_broker_auth_reply() (or _reply_data()), from the
 * thread that polls, at any time before the connect timeout; the answer is
 * sent at the next mqlite_broker_poll().
 * Ownership: the request and every pointer its accessors return belong to
 *   the broker and stay valid until the next mqlite_broker_next_auth_request()
 *   or mqlite_broker_free(). Copy what you keep. The password is a secret:
 *   do not log it.
 * Threads:   like every mqlite_broker_* call: the polling thread.
 * Errors:    none; NULL means "none waiting" (also for an invalid handle).
 * Since:     0.2
 */
MQLITE_API const mqlite_auth_request *mqlite_broker_next_auth_request(mqlite_broker *b);

/*
 * Authentication request accessors. Each returns 0 / NULL / empty when
 * the field is absent (and MQLITE_ERR_MISUSE or NULL for r == NULL).
 *
 * mqlite_auth_request_id         the id to answer with (> 0, unique per broker).
 * mqlite_auth_request_kind       MQLITE_AUTH_*.
 * mqlite_auth_request_client_id  the CONNECT's client identifier (may be ""
 *                                when the broker will assign one); for
 *                                CONTINUE / REAUTH of a connected client,
 *                                its identifier. Never NULL for a valid r.
 * mqlite_auth_request_username   the user name (CONNECT's; on a
 *                                use_identity_as_username listener the
 *                                certificate CN), or NULL when none.
 * mqlite_auth_request_password   the CONNECT's password bytes and *len, or
 *                                NULL when none (len may be NULL).
 * mqlite_auth_request_address    the client's "ip:port".
 * mqlite_auth_request_cert_cn    CN of the client's verified TLS
 *                                certificate, or NULL.
 * mqlite_auth_request_method     5.0 Authentication Method, or NULL.
 * mqlite_auth_request_data       5.0 Authentication Data and *len, or NULL.
 * mqlite_auth_request_version    protocol level 3, 4 or 5.
 * mqlite_auth_request_port       the local port it connected to.
 * mqlite_auth_request_tls        1 if the connection is TLS.
 * Ownership: as mqlite_broker_next_auth_request().
 * Since:     0.2
 */
MQLITE_API int64_t mqlite_auth_request_id(const mqlite_auth_request *r);
MQLITE_API int32_t mqlite_auth_request_kind(const mqlite_auth_request *r);
MQLITE_API const char *mqlite_auth_request_client_id(const mqlite_auth_request *r);
MQLITE_API const char *mqlite_auth_request_username(const mqlite_auth_request *r);
MQLITE_API const void *mqlite_auth_request_password(const mqlite_auth_request *r, size_t *len);
MQLITE_API const char *mqlite_auth_request_address(const mqlite_auth_request *r);
MQLITE_API const char *mqlite_auth_request_cert_cn(const mqlite_auth_request *r);
MQLITE_API const char *mqlite_auth_request_method(const mqlite_auth_request *r);
MQLITE_API const void *mqlite_auth_request_data(const mqlite_auth_request *r, size_t *len);
MQLITE_API int32_t mqlite_auth_request_version(const mqlite_auth_request *r);
MQLITE_API int32_t mqlite_auth_request_port(const mqlite_auth_request *r);
MQLITE_API int32_t mqlite_auth_request_tls(const mqlite_auth_request *r);

/*
 * mqlite_broker_auth_reply - answer request request_id.
 * mqlite_broker_auth_reply_data - the same, with 5.0 Authentication Data.
 *
 * reason_code:
 *   0x00  accept: CONNECT -> CONNACK 0x00 (with data, if given);
 *         REAUTH/CONTINUE of a connected client -> AUTH 0x00 (with data).
 *   0x18  continue (5.0 with an Authentication Method only): AUTH 0x18 with
 *         data; the client's next AUTH arrives as an MQLITE_AUTH_CONTINUE
 *         request.
 *   0x80..0xFF  refuse with that reason: before CONNACK, a CONNACK failure
 *         code (3.x: 0x86 -> 4, 0x87 -> 5, 0x84 -> 1, 0x85 -> 2, server
 *         codes -> 3, others -> 5), then close; a connected client gets a
 *         DISCONNECT with the code and is closed. Counted in
 *         MQLITE_BSTAT_AUTH_FAILED and logged with client id and address.
 * Returns:   0; MQLITE_ERR_NOT_FOUND (no connection waits for that id: it
 *            closed, timed out or was answered); MQLITE_ERR_INVALID (a
 *            reason not allowed here, continue or data without a 5.0
 *            Authentication Method); MQLITE_ERR_RANGE (data over 65535
 *            bytes). Message in mqlite_broker_errmsg().
 * Ownership: data is copied.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_auth_reply(mqlite_broker *b, int64_t request_id,
                                            int32_t reason_code);
MQLITE_API int32_t mqlite_broker_auth_reply_data(mqlite_broker *b, int64_t request_id,
                                                 int32_t reason_code, const void *data,
                                                 size_t len);

/*
 * mqlite_broker_auth_set_username - before answering request_id, set the
 * user name the client will have for ACL decisions and logs (e.g. the
 * identity your method proved); NULL: none.
 * Returns:   0; MQLITE_ERR_NOT_FOUND; MQLITE_ERR_NOMEM.
 * Ownership: username is copied.
 * Since:     0.2
 */
MQLITE_API int32_t mqlite_broker_auth_set_username(mqlite_broker *b, int64_t request_id,
                                                   const char *username);

#ifdef __cplusplus
}
#endif

#endif /* MQLITE_H */
