/*
 * log.h - the broker's log: one line per event on stderr, filtered by the
 * level set with MQLITE_BOPT_LOG_LEVEL (MQLITE_LOG_*). Connects (client id,
 * protocol level, address), disconnects with their reason and protocol
 * errors are logged; passwords never are.
 */
#ifndef MQ_BROKER_LOG_H
#define MQ_BROKER_LOG_H

#include "broker.h"

MQ_HIDDEN void mq_blog(const mqlite_broker *b, int level, const char *fmt, ...) MQ_PRINTF(3, 4);

static inline int mq_blog_on(const mqlite_broker *b, int level)
{
    return level <= b->o.log_level;
}

#endif
