/*
 * sys.h - the $SYS/broker/... topics: counters published as retained
 * QoS 0 messages every MQLITE_BOPT_SYS_INTERVAL_S seconds (only the values
 * that changed), in the names mosquitto uses where it has them.
 */
#ifndef MQ_BROKER_SYS_H
#define MQ_BROKER_SYS_H

#include "broker.h"

/* Publish what is due; schedules the next pass. */
MQ_HIDDEN void mq_bsys_tick(mqlite_broker *b);

#endif
