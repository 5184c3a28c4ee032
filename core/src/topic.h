/*
 * topic.h - topic names and topic filters: validation and matching
 * (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).
 * Pure functions over byte ranges; no allocation.
 */
#ifndef MQ_TOPIC_H
#define MQ_TOPIC_H

#include "common.h"

/* Validate a topic name: 1..65535 bytes, valid UTF-8 (mq_utf8_check, not
 * strict), no '+' or '#'. Returns 0, MQLITE_ERR_TOPIC_NAME or MQLITE_ERR_UTF8*.
 * If msg is not NULL it receives a static description of the rule broken. */
MQ_HIDDEN int mq_topic_check_name(mq_view t, const char **msg);

/* Validate a topic filter, including "$share/{group}/{filter}" syntax.
 * Returns 0, MQLITE_ERR_TOPIC_FILTER or MQLITE_ERR_UTF8*. */
MQ_HIDDEN int mq_topic_check_filter(mq_view f, const char **msg);

/* As mq_topic_check_filter for a protocol level: before 5.0 a "$share/"
 * filter that is not well-formed as a shared one is checked as an ordinary
 * filter (MQTT 3.1.1 4.7 gives "$share" no meaning; well-formed ones are
 * still treated as shared, as mosquitto does for 3.1.1 clients). */
MQ_HIDDEN int mq_topic_check_filter_v(mq_view f, int version, const char **msg);

/* Split a shared-subscription filter. Returns 1 when f starts with
 * "$share/" and is well-formed (then *group and *filter are set), 0 when it
 * is not a shared filter (then *filter = f), or MQLITE_ERR_TOPIC_FILTER. */
MQ_HIDDEN int mq_topic_split_shared(mq_view f, mq_view *group, mq_view *filter);

/* 1 if the (valid, non-shared) filter matches the (valid) topic name, else 0.
 * Wildcards at the first level do not match names beginning with '$'. */
MQ_HIDDEN int mq_topic_match(mq_view filter, mq_view topic);

/* 1 if the filter contains '+' or '#'. */
MQ_HIDDEN int mq_topic_has_wildcard(mq_view f);

#endif
