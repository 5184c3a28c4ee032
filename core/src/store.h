/*
 * store.h - durable state in an SQLite database (WAL mode): the client's
 * persistent store, and the database plumbing the broker's persistence
 * (broker/persist.c) shares with it.
 *
 * Two parts:
 *
 *  - mq_db: one SQLite file of mqlite's. Opening it never damages what is
 *    there: the file is locked against a second process (flock), its header
 *    is checked before SQLite sees it (magic, page size, truncation), then
 *    `PRAGMA quick_check` runs; a file that fails any check is left exactly
 *    as it was (no journal-mode change, no checkpoint on close) and the
 *    error says what is wrong and that the file was not touched. The schema
 *    has a version (PRAGMA user_version) and an owner (PRAGMA
 *    application_id); migrations 1..N are applied in order, each in its
 *    own transaction, and recorded in the table mqlite_migrations.
 *
 *  - mq_store: the client's session state (docs/persistence.md): outgoing
 *    QoS 1/2 messages with packet id and state (queued / PUBLISHED /
 *    RELEASED), incoming QoS 2 packet ids awaiting PUBREL, the
 *    subscription list, the client identifier and protocol level.
 *
 * Write discipline ("acknowledged means durable"): changes are made in one
 * open transaction and committed by mq_store_commit(). A change marked
 * critical (an incoming QoS 2 id before its PUBREC, the RELEASED state
 * before the PUBREL) must be committed before the bytes that depend on it
 * leave the process; the client commits before every write to its
 * transport and before it hands out an event. Every commit uses the
 * configured sync level (MQLITE_OPT_STORE_SYNC): FULL (default) fsyncs the
 * WAL, so what is committed survives a power cut; NORMAL only writes it,
 * so it survives a crash of the process but maybe not of the machine.
 * (SQLite cannot change the level inside a transaction, and which changes
 * of one transaction are critical is only known at its end, so the level
 * is per store, not per commit.)
 * A failing commit latches: the store reports MQLITE_ERR_IO from then on.
 */
#ifndef MQ_STORE_H
#define MQ_STORE_H

#include "common.h"
#include "inflight.h"

struct sqlite3;
struct sqlite3_stmt;

/* ---- mq_db: an mqlite SQLite file ---- */

typedef struct mq_db_migration {
    int version;             /* 1, 2, ... in order */
    const char *description; /* recorded in mqlite_migrations */
    const char *sql;         /* statements; run inside the migration's transaction */
} mq_db_migration;

typedef struct mq_db_schema {
    uint32_t application_id;          /* PRAGMA application_id of this kind of file */
    const char *kind;                 /* "client store", "broker persistence file" */
    const mq_db_migration *migrations;
    int nmigrations;                  /* the latest version is migrations[n - 1] */
} mq_db_schema;

typedef struct mq_db {
    struct sqlite3 *db;
    int lock_fd;          /* holds the flock; -1 when closed */
    uint8_t in_tx;        /* a transaction is open */
    uint8_t failed;       /* a commit failed: nothing more is written */
    uint8_t sync_full;    /* synchronous=FULL now in force (else NORMAL) */
    int from_version;     /* user_version found at open (0: new or empty) */
    struct sqlite3_stmt *begin, *commit, *sync_normal, *sync_full_st;
    char *path;
} mq_db;

/* Application ids of mqlite's files ("mqlC", "mqlB"). */
#define MQ_DB_APP_CLIENT 0x6d716c43u
#define MQ_DB_APP_BROKER 0x6d716c42u

/*
 * mq_db_open - open or create `path` as a file of `schema`'s kind and bring
 * its schema to the latest version. *created is 1 when the file was new or
 * had no schema yet. Errors (message in err, naming the file and saying it
 * was left untouched where that applies): MQLITE_ERR_IO (cannot open or
 * lock, in use by another process, not a database, truncated, corrupt,
 * another application's database, a newer schema), MQLITE_ERR_NOMEM.
 */
MQ_HIDDEN int mq_db_open(mq_db *d, const mq_alloc *a, const char *path, const mq_db_schema *schema,
                         int *created, mq_err *err);
/* Close (a pending transaction is rolled back); safe on a closed mq_db. */
MQ_HIDDEN void mq_db_close(mq_db *d, const mq_alloc *a);
/* Open the transaction if none is (0, or MQLITE_ERR_IO latched). */
MQ_HIDDEN int mq_db_begin(mq_db *d, mq_err *err);
/* Commit the open transaction, if any; `full` (fsync) or not applies from
 * the next commit on. 0 or MQLITE_ERR_IO (latched: d->failed). */
MQ_HIDDEN int mq_db_commit(mq_db *d, int full, mq_err *err);
/* Run SQL without results (0 or MQLITE_ERR_IO with the message). */
MQ_HIDDEN int mq_db_exec(mq_db *d, const char *sql, mq_err *err);
/* Prepare a statement; NULL with the message in err. */
MQ_HIDDEN struct sqlite3_stmt *mq_db_prepare(mq_db *d, const char *sql, mq_err *err);
/* Step a bound write statement and reset it: 0 or MQLITE_ERR_IO. */
MQ_HIDDEN int mq_db_step_done(mq_db *d, struct sqlite3_stmt *st, mq_err *err);
/* The SQLite library version, for logs ("3.40.1"). */
MQ_HIDDEN const char *mq_db_sqlite_version(void);

/* ---- mq_store: the client's persistent store ---- */

typedef struct mq_store mq_store;

/* Sync levels (MQLITE_OPT_STORE_SYNC). */
#define MQ_STORE_SYNC_NORMAL 1
#define MQ_STORE_SYNC_FULL 2

/* Stored states of an outgoing message. */
#define MQ_STORE_QUEUED 0
#define MQ_STORE_PUBLISHED 1
#define MQ_STORE_RELEASED 2

/* The latest schema version of the client store. */
#define MQ_STORE_SCHEMA_VERSION 2

/*
 * mq_store_open - open or create the client store at `path` for the client
 * `client_id` ("" = whatever identifier the store holds).
 * Errors: as mq_db_open; MQLITE_ERR_CLIENT_ID when the store belongs to
 * another client, or is new and client_id is "".
 */
MQ_HIDDEN int mq_store_open(const mq_alloc *a, const char *path, const char *client_id,
                            mq_store **out, mq_err *err);
MQ_HIDDEN void mq_store_close(mq_store *st);
MQ_HIDDEN const char *mq_store_path(const mq_store *st);
/* The client identifier the store belongs to (never NULL once open). */
MQ_HIDDEN const char *mq_store_client_id(const mq_store *st);
/* The protocol level of the last connection (3..5), 0 when none yet. */
MQ_HIDDEN int mq_store_protocol(const mq_store *st);
/* The schema version the file had when opened (0: new). */
MQ_HIDDEN int mq_store_opened_version(const mq_store *st);
MQ_HIDDEN void mq_store_set_sync(mq_store *st, int level);

/* Rows handed to mq_store_load's callbacks (views valid during the call). */
typedef struct mq_store_out {
    int64_t seq;          /* order of acceptance; the flow's token */
    uint16_t pid;
    uint8_t qos, retain, state;
    mq_view topic, props, payload;
} mq_store_out;

typedef struct mq_store_loader {
    void *ud;
    int (*out)(void *ud, const mq_store_out *row);
    int (*in)(void *ud, uint16_t pid);
    int (*sub)(void *ud, mq_view filter, uint8_t options, uint32_t subid);
} mq_store_loader;

/* Hand every stored row to the loader (outgoing in acceptance order). A
 * callback's non-zero result stops the load and is returned. */
MQ_HIDDEN int mq_store_load(mq_store *st, const mq_store_loader *l, mq_err *err);

/* Changes, in the open transaction (opened here when needed). Failures
 * latch and surface at mq_store_commit(). */
MQ_HIDDEN void mq_store_out_add(mq_store *st, mq_flow *f); /* sets f->token */
MQ_HIDDEN void mq_store_out_state(mq_store *st, const mq_flow *f, int state);
MQ_HIDDEN void mq_store_out_del(mq_store *st, const mq_flow *f);
MQ_HIDDEN void mq_store_in_add(mq_store *st, uint16_t pid); /* critical */
MQ_HIDDEN void mq_store_in_del(mq_store *st, uint16_t pid);
MQ_HIDDEN void mq_store_in_clear(mq_store *st);
MQ_HIDDEN void mq_store_sub_put(mq_store *st, mq_view filter, uint8_t options, uint32_t subid);
MQ_HIDDEN void mq_store_sub_del(mq_store *st, mq_view filter);
MQ_HIDDEN void mq_store_set_protocol(mq_store *st, int version);

/* 1 when changes wait for a commit; 2 when some of them are critical. */
MQ_HIDDEN int mq_store_pending(const mq_store *st);
/* Commit what is pending: `durable` (or a critical change) syncs at the
 * configured level. 0, or MQLITE_ERR_IO (latched; message in err). */
MQ_HIDDEN int mq_store_commit(mq_store *st, int durable, mq_err *err);
MQ_HIDDEN int mq_store_failed(const mq_store *st);
/* The latched failure's message ("" when none). */
MQ_HIDDEN const char *mq_store_errmsg(const mq_store *st);

#endif
