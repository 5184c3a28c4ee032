/*
 * config.h - the configuration file, in mosquitto's format: one
 * `key value...` per line, `#` starts a comment line, blank lines ignored,
 * CRLF accepted. Keys are those mqlite shares with mosquitto (see
 * docs/broker.md). Options are applied only when the whole file is valid;
 * listeners are opened last.
 */
#ifndef MQ_BROKER_CONFIG_H
#define MQ_BROKER_CONFIG_H

#include "broker.h"

/* 0; MQLITE_ERR_CONFIG ("file:line: message" in b->err); MQLITE_ERR_IO
 * (unreadable file, listener that cannot be opened); MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_bconf_load(mqlite_broker *b, const char *path);

/* As mq_bconf_load, for `mqlite broker --check`: the persistence file is
 * not opened (a running broker may hold it); when the file enables
 * persistence, *persist_path is set to its path (free with mq_free). */
MQ_HIDDEN int mq_bconf_check(mqlite_broker *b, const char *path, char **persist_path);

#endif
