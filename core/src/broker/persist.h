/*
 * persist.h - the broker's persistence file (MQLITE_BOPT_PERSISTENCE_FILE,
 * config `persistence true` + `persistence_file`): an SQLite database in
 * WAL mode (store.h's mq_db) holding what must outlive the process:
 * retained messages, persistent sessions (client id, level, expiry, when
 * they went offline), their subscriptions, their queued and in-flight
 * outgoing QoS 1/2 messages (packet id, state), and the QoS 2 packet ids
 * they sent us that await PUBREL, and their wills (schema 2).
 * docs/persistence.md is the user's view.
 *
 * Only persistent sessions are written (Session Expiry Interval > 0;
 * 3.1.1 clean session 0): a session that ends with its connection has
 * nothing to recover.
 *
 * Write discipline: every change goes into one open transaction. With
 * sync `always` (default) and `off`, that transaction is committed before
 * any byte leaves the broker (mq_persist_gate() at the top of every
 * connection flush), so a PUBACK, PUBREC, PUBREL, PUBCOMP or PUBLISH
 * never gets ahead of the state it acknowledges; all changes of one poll
 * round share one commit. `always` fsyncs each commit (SQLite synchronous
 * FULL); `off` does not (it survives a crash of the broker, not of the
 * machine). `batch` commits at most every interval ms without holding
 * output back: a crash loses up to that much. A failing commit stops the
 * broker: nothing more is sent, mqlite_broker_poll() returns
 * MQLITE_ERR_IO with the reason.
 */
#ifndef MQ_BROKER_PERSIST_H
#define MQ_BROKER_PERSIST_H

#include "broker.h"

typedef struct mq_persist mq_persist;

/* Open (creating it if needed) and load `path` into a broker that holds
 * no sessions and no retained messages yet. Logs what it loaded at
 * MQLITE_LOG_NOTICE. 0; MQLITE_ERR_IO (message names the file and says it
 * was left untouched); MQLITE_ERR_STATE; MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_persist_open(mqlite_broker *b, const char *path);
/* Commit what is pending and close (broker teardown, or path NULL). */
MQ_HIDDEN void mq_persist_close(mqlite_broker *b);
MQ_HIDDEN void mq_persist_set_sync(mqlite_broker *b, int level);

/* Before c's bytes leave: 0 = write now (committed, or nothing pending,
 * or batch); 1 = not now: changes are pending and the round is not over,
 * c was queued for the end-of-round flush, which commits once for all;
 * MQLITE_ERR_IO once persistence failed (send nothing). */
MQ_HIDDEN int mq_persist_gate(mqlite_broker *b, mq_conn *c);
/* Commit now what is pending (unless batch): 0 or MQLITE_ERR_IO. */
MQ_HIDDEN int mq_persist_commit_now(mqlite_broker *b);
/* End of a round: the batch policy's timed commit; 0 or MQLITE_ERR_IO. */
MQ_HIDDEN int mq_persist_round(mqlite_broker *b);
/* The latched failure, or NULL. */
MQ_HIDDEN const char *mq_persist_failure(const mqlite_broker *b);

/* Changes. Each is a no-op without a persistence file, and the session
 * ones for sessions not marked persistent (s->persist). */
MQ_HIDDEN void mq_persist_retained(mqlite_broker *b, const mq_msg *m); /* put or clear */
MQ_HIDDEN void mq_persist_session_put(mqlite_broker *b, mq_bsess *s); /* online now */
MQ_HIDDEN void mq_persist_session_offline(mqlite_broker *b, mq_bsess *s);
MQ_HIDDEN void mq_persist_session_del(mqlite_broker *b, mq_bsess *s);
MQ_HIDDEN void mq_persist_sub_put(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t opts,
                                  uint32_t subid);
MQ_HIDDEN void mq_persist_sub_del(mqlite_broker *b, mq_bsess *s, mq_view filter);
MQ_HIDDEN void mq_persist_flow_add(mqlite_broker *b, mq_bsess *s, mq_flow *f);
MQ_HIDDEN void mq_persist_flow_state(mqlite_broker *b, mq_bsess *s, const mq_flow *f, int state);
MQ_HIDDEN void mq_persist_flow_del(mqlite_broker *b, mq_bsess *s, const mq_flow *f);
MQ_HIDDEN void mq_persist_in_add(mqlite_broker *b, mq_bsess *s, uint16_t pid);
MQ_HIDDEN void mq_persist_in_del(mqlite_broker *b, mq_bsess *s, uint16_t pid);
/* The session's will (s->will, with its delay and expiry) / no will. */
MQ_HIDDEN void mq_persist_will_put(mqlite_broker *b, mq_bsess *s);
MQ_HIDDEN void mq_persist_will_del(mqlite_broker *b, mq_bsess *s);

#endif
