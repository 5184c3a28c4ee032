/*
 * utf8.h - validation of MQTT UTF-8 Encoded Strings
 * (MQTT 3.1.1 section 1.5.3, MQTT 5.0 section 1.5.4).
 */
#ifndef MQ_UTF8_H
#define MQ_UTF8_H

#include "common.h"

/*
 * mq_utf8_check - 0 when p[0..len) is a valid MQTT UTF-8 string, else:
 *   MQLITE_ERR_UTF8           ill-formed (RFC 3629: overlong, truncated, > U+10FFFF)
 *   MQLITE_ERR_UTF8_SURROGATE an encoded U+D800..U+DFFF
 *   MQLITE_ERR_UTF8_NULL      U+0000
 *   MQLITE_ERR_UTF8_CONTROL   with strict != 0 only: U+0001..U+001F,
 *                             U+007F..U+009F or a non-character
 */
MQ_HIDDEN int mq_utf8_check(const uint8_t *p, size_t len, int strict);

#endif
