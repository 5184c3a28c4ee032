/*
 * store.c - mqlite's SQLite files (mq_db) and the client's persistent
 * store (mq_store); see store.h for the rules kept here.
 */
#define _GNU_SOURCE /* flock(), O_CLOEXEC */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * mq_db
 * --------------------------------------------------------------------- */

const char *mq_db_sqlite_version(void)
{
    return sqlite3_libversion();
}

static int db_fail(mq_db *d, mq_err *err, const char *what)
{
    return mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\": %s: %s", "database", d->path, what,
                      d->db ? sqlite3_errmsg(d->db) : "cannot open");
}

static const char *kind_of(uint32_t app_id)
{
    switch (app_id) {
    case MQ_DB_APP_CLIENT: return "an mqlite client store";
    case MQ_DB_APP_BROKER: return "an mqlite broker persistence file";
    default: return "the database of another application";
    }
}

/*
 * The header check, before SQLite sees the file (SQLite file format,
 * https://www.sqlite.org/fileformat.html 1.3): a file that is not a
 * database, or is shorter than its header says, is refused here, so that
 * nothing is ever written to it.
 */
static int preflight(int fd, const char *path, const mq_db_schema *sc, mq_err *err)
{
    struct stat stt;
    if (fstat(fd, &stt) != 0)
        return mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\": %s", sc->kind, path, strerror(errno));
    if (!S_ISREG(stt.st_mode))
        return mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\" is not a regular file", sc->kind, path);
    uint64_t size = (uint64_t)stt.st_size;
    if (size == 0)
        return 0; /* new: SQLite makes a database of an empty file */
    uint8_t h[100];
    ssize_t n = pread(fd, h, sizeof h, 0);
    if (n < 0)
        return mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\": cannot read: %s", sc->kind, path,
                          strerror(errno));
    if (memcmp(h, "SQLite format 3", (size_t)n < 16 ? (size_t)n : 16) != 0)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" is not an SQLite database (wrong header); the file was "
                          "left untouched: move it away or give another path",
                          sc->kind, path);
    if (n < (ssize_t)sizeof h)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" is truncated (%llu bytes, shorter than the 100-byte SQLite "
                          "header); the file was left untouched",
                          sc->kind, path, (unsigned long long)size);
    uint32_t page = mq_get16(h + 16);
    if (page == 1)
        page = 65536;
    if (page < 512 || (page & (page - 1)))
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" is corrupt (page size %u in the header); the file was left "
                          "untouched",
                          sc->kind, path, (unsigned)page);
    if (size % page)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" is truncated or damaged (%llu bytes is not a whole number of "
                          "%u-byte pages); the file was left untouched",
                          sc->kind, path, (unsigned long long)size, (unsigned)page);
    /* The in-header page count is valid when "version-valid-for" equals
     * the change counter. */
    uint32_t pages = mq_get32(h + 28);
    if (pages && mq_get32(h + 92) == mq_get32(h + 24) && (uint64_t)pages * page > size)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" is truncated (its header counts %u pages of %u bytes, the "
                          "file has %llu bytes); the file was left untouched",
                          sc->kind, path, (unsigned)pages, (unsigned)page,
                          (unsigned long long)size);
    return 0;
}

/* Run `sql` and fetch one integer or text result. */
static int query_int(mq_db *d, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static int quick_check(mq_db *d, const mq_db_schema *sc, mq_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (res && strcmp(res, "ok") == 0) {
            sqlite3_finalize(st);
            return 0;
        }
        mq_err_set(err, MQLITE_ERR_IO,
                   "%s \"%s\" is corrupt (SQLite quick_check: %.120s); the file was left "
                   "untouched: restore a backup or move it away",
                   sc->kind, d->path, res ? res : "?");
        sqlite3_finalize(st);
        return MQLITE_ERR_IO;
    }
    mq_err_set(err, MQLITE_ERR_IO,
               "%s \"%s\" cannot be read as a database (%s); the file was left untouched", sc->kind,
               d->path, sqlite3_errmsg(d->db));
    sqlite3_finalize(st);
    return MQLITE_ERR_IO;
}

/* What the file holds: check it is ours, or empty, and not too new. */
static int check_owner(mq_db *d, const mq_db_schema *sc, int64_t *version, mq_err *err)
{
    int64_t app = 0, tables = 0;
    if (query_int(d, "PRAGMA user_version", version) || query_int(d, "PRAGMA application_id", &app) ||
        query_int(d, "SELECT count(*) FROM sqlite_master", &tables))
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" cannot be read (%s); the file was left untouched", sc->kind,
                          d->path, sqlite3_errmsg(d->db));
    int latest = sc->migrations[sc->nmigrations - 1].version;
    if (app && (uint32_t)app != sc->application_id)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "\"%s\" is %s, not a %s; the file was left untouched: give another path",
                          d->path, kind_of((uint32_t)app), sc->kind);
    if (*version == 0 && tables)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "\"%s\" is an SQLite database with tables but no mqlite schema "
                          "(another application's?); the file was left untouched: give another "
                          "path",
                          d->path);
    if (*version > latest)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "%s \"%s\" has schema version %lld, newer than this mqlite knows (%d): "
                          "it was written by a newer mqlite; the file was left untouched",
                          sc->kind, d->path, (long long)*version, latest);
    if (*version > 0 && !app)
        return mq_err_set(err, MQLITE_ERR_IO,
                          "\"%s\" has a schema version but is not marked as %s; the file was left "
                          "untouched",
                          d->path, kind_of(sc->application_id));
    return 0;
}

static int migrate(mq_db *d, const mq_db_schema *sc, int64_t from, mq_err *err)
{
    for (int i = 0; i < sc->nmigrations; i++) {
        const mq_db_migration *m = &sc->migrations[i];
        if (m->version <= from)
            continue;
        char head[256];
        snprintf(head, sizeof head,
                 "CREATE TABLE IF NOT EXISTS mqlite_migrations(version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at TEXT NOT NULL);"
                 "PRAGMA application_id=%lld; PRAGMA user_version=%d;",
                 (long long)sc->application_id, m->version);
        char *msg = NULL;
        int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(d->db, m->sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(d->db, head, NULL, NULL, &msg);
        if (rc == SQLITE_OK) {
            sqlite3_stmt *st;
            rc = sqlite3_prepare_v2(d->db,
                                    "INSERT OR REPLACE INTO mqlite_migrations VALUES(?, ?, "
                                    "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                                    -1, &st, NULL);
            if (rc == SQLITE_OK) {
                sqlite3_bind_int(st, 1, m->version);
                sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
                rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
                sqlite3_finalize(st);
            }
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\": migration to schema %d (%s) failed: %s",
                       sc->kind, d->path, m->version, m->description,
                       msg ? msg : sqlite3_errmsg(d->db));
            sqlite3_free(msg);
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            return MQLITE_ERR_IO;
        }
    }
    return 0;
}

/* Close without letting SQLite checkpoint into the file (error paths: the
 * file must stay as it was). */
static void close_untouched(mq_db *d)
{
    if (d->db) {
        int off = 1;
        sqlite3_db_config(d->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
        sqlite3_close_v2(d->db);
        d->db = NULL;
    }
}

static int open_lock_fd(const char *path, const mq_db_schema *sc, int *created, mq_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            *created = 1;
    }
    if (fd < 0)
        return mq_err_set(err, MQLITE_ERR_IO, "cannot open %s \"%s\": %s", sc->kind, path,
                          strerror(errno));
    /* flock() and SQLite's fcntl() locks are independent on Linux: this one
     * keeps a second process (or handle) off the file for our lifetime,
     * while sqlite3 shells can still read it. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (*created)
            unlink(path);
        if (e == EWOULDBLOCK)
            return mq_err_set(err, MQLITE_ERR_IO,
                              "%s \"%s\" is in use by another process or handle (one owner at "
                              "a time)",
                              sc->kind, path);
        return mq_err_set(err, MQLITE_ERR_IO, "cannot lock %s \"%s\": %s", sc->kind, path,
                          strerror(e));
    }
    return fd;
}

static int prepare_tx(mq_db *d, mq_err *err)
{
    if (!(d->begin = mq_db_prepare(d, "BEGIN", err)) ||
        !(d->commit = mq_db_prepare(d, "COMMIT", err)) ||
        !(d->sync_normal = mq_db_prepare(d, "PRAGMA synchronous=NORMAL", err)) ||
        !(d->sync_full_st = mq_db_prepare(d, "PRAGMA synchronous=FULL", err)))
        return MQLITE_ERR_IO;
    return 0;
}

int mq_db_open(mq_db *d, const mq_alloc *a, const char *path, const mq_db_schema *sc,
               int *created, mq_err *err)
{
    memset(d, 0, sizeof *d);
    d->lock_fd = -1;
    *created = 0;
    d->path = mq_memdup0(a, path, strlen(path));
    if (!d->path)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    int made = 0;
    int fd = open_lock_fd(path, sc, &made, err);
    if (fd < 0) {
        mq_free(a, d->path);
        d->path = NULL;
        return fd;
    }
    d->lock_fd = fd;
    int rc = preflight(fd, path, sc, err);
    if (!rc && sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
                   SQLITE_OK)
        rc = mq_err_set(err, MQLITE_ERR_IO, "cannot open %s \"%s\": %s", sc->kind, path,
                        d->db ? sqlite3_errmsg(d->db) : "out of memory");
    if (!rc)
        sqlite3_extended_result_codes(d->db, 1);
    if (!rc)
        rc = quick_check(d, sc, err);
    int64_t version = 0;
    if (!rc)
        rc = check_owner(d, sc, &version, err);
    if (rc) {
        close_untouched(d);
        close(fd);
        if (made)
            unlink(path);
        mq_free(a, d->path);
        memset(d, 0, sizeof *d);
        d->lock_fd = -1;
        return rc;
    }
    d->from_version = (int)version;
    *created = version == 0;
    /* From here on the file is ours. WAL: readers (a sqlite3 shell) never
     * block the writer, and a commit is one append. A busy timeout only
     * matters when another program writes to the file. */
    sqlite3_busy_timeout(d->db, 2000);
    sqlite3_stmt *wal = NULL;
    int wrc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &wal, NULL);
    if (wrc == SQLITE_OK)
        wrc = sqlite3_step(wal);
    if (wrc != SQLITE_ROW || !sqlite3_column_text(wal, 0) ||
        strcmp((const char *)sqlite3_column_text(wal, 0), "wal") != 0)
        rc = mq_err_set(err, MQLITE_ERR_IO, "%s \"%s\": cannot switch to WAL mode: %s", sc->kind,
                        path, wrc == SQLITE_ROW ? "the file system refused" : sqlite3_errmsg(d->db));
    sqlite3_finalize(wal);
    if (!rc)
        rc = mq_db_exec(d, "PRAGMA synchronous=FULL", err);
    d->sync_full = 1;
    if (!rc)
        rc = migrate(d, sc, version, err);
    if (!rc)
        rc = prepare_tx(d, err);
    if (rc) {
        mq_db_close(d, a);
        return rc;
    }
    return 0;
}

void mq_db_close(mq_db *d, const mq_alloc *a)
{
    if (d->db) {
        if (d->in_tx)
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_finalize(d->begin);
        sqlite3_finalize(d->commit);
        sqlite3_finalize(d->sync_normal);
        sqlite3_finalize(d->sync_full_st);
        /* Prepared statements of the owner are finalized by then; v2
         * closes once the last one is. */
        sqlite3_close_v2(d->db);
    }
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* after SQLite's own descriptors (POSIX locks) */
    mq_free(a, d->path);
    memset(d, 0, sizeof *d);
    d->lock_fd = -1;
}

int mq_db_exec(mq_db *d, const char *sql, mq_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    mq_err_set(err, MQLITE_ERR_IO, "database \"%s\": %s", d->path,
               msg ? msg : sqlite3_errmsg(d->db));
    sqlite3_free(msg);
    return MQLITE_ERR_IO;
}

sqlite3_stmt *mq_db_prepare(mq_db *d, const char *sql, mq_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_fail(d, err, "cannot prepare a statement");
        return NULL;
    }
    return st;
}

int mq_db_step_done(mq_db *d, sqlite3_stmt *st, mq_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return db_fail(d, err, "write failed");
}

int mq_db_begin(mq_db *d, mq_err *err)
{
    if (d->failed)
        return MQLITE_ERR_IO;
    if (d->in_tx)
        return 0;
    if (mq_db_step_done(d, d->begin, err)) {
        d->failed = 1;
        return MQLITE_ERR_IO;
    }
    d->in_tx = 1;
    return 0;
}

int mq_db_commit(mq_db *d, int full, mq_err *err)
{
    if (d->failed)
        return MQLITE_ERR_IO;
    if (d->in_tx) {
        if (mq_db_step_done(d, d->commit, err))
            goto fail;
        d->in_tx = 0;
    }
    /* PRAGMA synchronous cannot change inside a transaction (SQLite:
     * "Safety level may not be changed inside a transaction"), so a new
     * level applies from the next commit on. */
    if (!full != !d->sync_full) {
        if (mq_db_step_done(d, full ? d->sync_full_st : d->sync_normal, err))
            goto fail;
        d->sync_full = (uint8_t)(full != 0);
    }
    return 0;
fail:
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    d->in_tx = 0;
    d->failed = 1;
    return MQLITE_ERR_IO;
}

/* ---------------------------------------------------------------------
 * mq_store: the client's persistent store
 * --------------------------------------------------------------------- */

static const mq_db_migration store_migrations[] = {
    {1, "client store: meta, outgoing, incoming_qos2, subscriptions",
     "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
     /* Outgoing QoS 1/2 messages in acceptance order (seq). state:
      * 0 queued (never sent), 1 PUBLISHED (sent at least once: re-sent
      * with DUP), 2 RELEASED (PUBREC received, PUBREL sent). */
     "CREATE TABLE outgoing(seq INTEGER PRIMARY KEY, pid INTEGER NOT NULL,"
     " qos INTEGER NOT NULL, retain INTEGER NOT NULL, state INTEGER NOT NULL,"
     " topic BLOB NOT NULL, props BLOB, payload BLOB NOT NULL);"
     /* Incoming QoS 2 packet ids past PUBREC, awaiting PUBREL. */
     "CREATE TABLE incoming_qos2(pid INTEGER PRIMARY KEY);"
     /* Subscriptions the server granted (options byte, 5.0 id or 0). */
     "CREATE TABLE subscriptions(filter BLOB PRIMARY KEY, options INTEGER NOT NULL,"
     " subid INTEGER NOT NULL) WITHOUT ROWID;"},
    {2, "client store: outgoing.accepted_at (wall-clock ms when publish accepted it)",
     "ALTER TABLE outgoing ADD COLUMN accepted_at INTEGER NOT NULL DEFAULT 0;"},
};

static const mq_db_schema store_schema = {
    MQ_DB_APP_CLIENT, "client store", store_migrations,
    (int)(sizeof store_migrations / sizeof store_migrations[0])};

enum {
    S_OUT_ADD,
    S_OUT_STATE,
    S_OUT_DEL,
    S_IN_ADD,
    S_IN_DEL,
    S_IN_CLEAR,
    S_SUB_PUT,
    S_SUB_DEL,
    S_META_PUT,
    S_COUNT
};

static const char *const store_sql[S_COUNT] = {
    ("INSERT INTO outgoing(pid, qos, retain, state, topic, props, payload, accepted_at)"
     " VALUES(?, ?, ?, 0, ?, ?, ?, ?)"),
    "UPDATE outgoing SET state = ? WHERE seq = ?",
    "DELETE FROM outgoing WHERE seq = ?",
    "INSERT OR IGNORE INTO incoming_qos2(pid) VALUES(?)",
    "DELETE FROM incoming_qos2 WHERE pid = ?",
    "DELETE FROM incoming_qos2",
    "INSERT OR REPLACE INTO subscriptions(filter, options, subid) VALUES(?, ?, ?)",
    "DELETE FROM subscriptions WHERE filter = ?",
    "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
};

struct mq_store {
    mq_alloc a;
    mq_db db;
    sqlite3_stmt *st[S_COUNT];
    uint8_t pending;      /* 1 changes, 2 critical changes */
    uint8_t sync;         /* MQ_STORE_SYNC_* */
    int protocol;
    char *client_id;
    mq_err err;           /* the latched failure */
};

const char *mq_store_path(const mq_store *st)
{
    return st->db.path;
}

const char *mq_store_client_id(const mq_store *st)
{
    return st->client_id;
}

int mq_store_protocol(const mq_store *st)
{
    return st->protocol;
}

int mq_store_opened_version(const mq_store *st)
{
    return st->db.from_version;
}

void mq_store_set_sync(mq_store *st, int level)
{
    st->sync = (uint8_t)level;
    /* Applied now when nothing is pending, else by the next commit. */
    if (!st->db.in_tx && !st->db.failed)
        mq_db_commit(&st->db, level == MQ_STORE_SYNC_FULL, &st->err);
}

int mq_store_failed(const mq_store *st)
{
    return st->db.failed;
}

const char *mq_store_errmsg(const mq_store *st)
{
    return st->err.msg;
}

int mq_store_pending(const mq_store *st)
{
    return st->pending;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read meta: client id and protocol. */
static int read_meta(mq_store *st, mq_err *err)
{
    sqlite3_stmt *q = mq_db_prepare(&st->db, "SELECT key, value FROM meta", err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(q, 0);
        if (!k)
            continue;
        if (!strcmp(k, "client_id")) {
            const void *v = sqlite3_column_blob(q, 1);
            int n = sqlite3_column_bytes(q, 1);
            mq_free(&st->a, st->client_id);
            st->client_id = mq_memdup0(&st->a, v ? v : "", (size_t)n);
            if (!st->client_id) {
                sqlite3_finalize(q);
                return mq_err_code(err, MQLITE_ERR_NOMEM);
            }
        } else if (!strcmp(k, "protocol")) {
            st->protocol = sqlite3_column_int(q, 1);
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return mq_err_set(err, MQLITE_ERR_IO, "client store \"%s\": cannot read meta: %s",
                          st->db.path, sqlite3_errmsg(st->db.db));
    return 0;
}

static void meta_put_text(mq_store *st, const char *key, const char *v);

int mq_store_open(const mq_alloc *a, const char *path, const char *client_id, mq_store **out,
                  mq_err *err)
{
    *out = NULL;
    mq_store *st = mq_calloc(a, sizeof *st);
    if (!st)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    st->a = *a;
    st->sync = MQ_STORE_SYNC_FULL;
    int created = 0;
    int rc = mq_db_open(&st->db, a, path, &store_schema, &created, err);
    if (rc) {
        mq_free(a, st);
        return rc;
    }
    for (int i = 0; i < S_COUNT && !rc; i++)
        if (!(st->st[i] = mq_db_prepare(&st->db, store_sql[i], err)))
            rc = MQLITE_ERR_IO;
    if (!rc)
        rc = read_meta(st, err);
    if (!rc && !st->client_id) {
        /* New store: it belongs to this client from now on. */
        if (!client_id || !*client_id)
            rc = mq_err_set(err, MQLITE_ERR_CLIENT_ID,
                            "client store \"%s\" is new and the client has no identifier: a "
                            "store keeps one client's session, give the client an identifier",
                            path);
        else if (!(st->client_id = mq_memdup0(a, client_id, strlen(client_id))))
            rc = mq_err_code(err, MQLITE_ERR_NOMEM);
        else {
            meta_put_text(st, "client_id", client_id);
            rc = mq_store_commit(st, 1, err);
        }
    } else if (!rc && client_id && *client_id && strcmp(client_id, st->client_id) != 0) {
        rc = mq_err_set(err, MQLITE_ERR_CLIENT_ID,
                        "client store \"%s\" belongs to client \"%.60s\", not \"%.60s\": a store "
                        "keeps one client's session; use another file for this client",
                        path, st->client_id, client_id);
    }
    if (rc) {
        mq_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void mq_store_close(mq_store *st)
{
    if (!st)
        return;
    if (st->db.db && st->pending)
        mq_store_commit(st, 1, &st->err);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    mq_db_close(&st->db, &st->a);
    mq_free(&st->a, st->client_id);
    mq_alloc a = st->a;
    mq_free(&a, st);
}

int mq_store_load(mq_store *st, const mq_store_loader *l, mq_err *err)
{
    static const char *const q[3] = {
        "SELECT seq, pid, qos, retain, state, topic, props, payload FROM outgoing ORDER BY seq",
        "SELECT pid FROM incoming_qos2 ORDER BY pid",
        "SELECT filter, options, subid FROM subscriptions",
    };
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *s = mq_db_prepare(&st->db, q[i], err);
        if (!s)
            return MQLITE_ERR_IO;
        int rc, cb = 0;
        while (!cb && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            if (i == 0) {
                mq_store_out r;
                r.seq = sqlite3_column_int64(s, 0);
                r.pid = (uint16_t)sqlite3_column_int(s, 1);
                r.qos = (uint8_t)sqlite3_column_int(s, 2);
                r.retain = (uint8_t)sqlite3_column_int(s, 3);
                r.state = (uint8_t)sqlite3_column_int(s, 4);
                r.topic = mq_view_make(sqlite3_column_blob(s, 5), (size_t)sqlite3_column_bytes(s, 5));
                r.props = mq_view_make(sqlite3_column_blob(s, 6), (size_t)sqlite3_column_bytes(s, 6));
                r.payload = mq_view_make(sqlite3_column_blob(s, 7),
                                         (size_t)sqlite3_column_bytes(s, 7));
                if (r.qos < 1 || r.qos > 2 || r.state > MQ_STORE_RELEASED ||
                    (r.state == MQ_STORE_RELEASED && r.qos != 2) ||
                    sqlite3_column_int(s, 1) < 1 || sqlite3_column_int(s, 1) > 65535)
                    cb = mq_err_set(err, MQLITE_ERR_IO,
                                    "client store \"%s\": outgoing row %lld is invalid (qos %d, "
                                    "state %d, packet id %d)",
                                    st->db.path, (long long)r.seq, r.qos, r.state,
                                    sqlite3_column_int(s, 1));
                else
                    cb = l->out(l->ud, &r);
            } else if (i == 1) {
                int pid = sqlite3_column_int(s, 0);
                cb = pid < 1 || pid > 65535
                         ? mq_err_set(err, MQLITE_ERR_IO,
                                      "client store \"%s\": incoming packet id %d is invalid",
                                      st->db.path, pid)
                         : l->in(l->ud, (uint16_t)pid);
            } else {
                mq_view f = mq_view_make(sqlite3_column_blob(s, 0),
                                         (size_t)sqlite3_column_bytes(s, 0));
                cb = l->sub(l->ud, f, (uint8_t)sqlite3_column_int(s, 1),
                            (uint32_t)sqlite3_column_int64(s, 2));
            }
        }
        if (!cb && rc != SQLITE_DONE)
            cb = mq_err_set(err, MQLITE_ERR_IO, "client store \"%s\": cannot read: %s",
                            st->db.path, sqlite3_errmsg(st->db.db));
        sqlite3_finalize(s);
        if (cb)
            return cb;
    }
    return 0;
}

/* ---- changes ---- */

/* Start a change: 0 when the statement may be run. */
static int change(mq_store *st, int critical)
{
    if (mq_db_begin(&st->db, &st->err))
        return -1;
    if (st->pending < 1 + critical)
        st->pending = (uint8_t)(1 + critical);
    return 0;
}

static void run(mq_store *st, int which)
{
    if (mq_db_step_done(&st->db, st->st[which], &st->err))
        st->db.failed = 1;
}

void mq_store_out_add(mq_store *st, mq_flow *f)
{
    if (change(st, 1))
        return;
    sqlite3_stmt *s = st->st[S_OUT_ADD];
    mq_view t = mq_msg_topic(f->msg), p = mq_msg_props(f->msg), b = mq_msg_payload(f->msg);
    sqlite3_bind_int(s, 1, f->pid);
    sqlite3_bind_int(s, 2, f->qos);
    sqlite3_bind_int(s, 3, f->retain);
    sqlite3_bind_blob(s, 4, t.len ? (const void *)t.p : "", (int)t.len, SQLITE_STATIC);
    if (p.len)
        sqlite3_bind_blob(s, 5, p.p, (int)p.len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, b.len ? (const void *)b.p : "", (int)b.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, wall_ms());
    run(st, S_OUT_ADD);
    f->token = (uint64_t)sqlite3_last_insert_rowid(st->db.db);
}

void mq_store_out_state(mq_store *st, const mq_flow *f, int state)
{
    if (!f->token || change(st, state == MQ_STORE_RELEASED))
        return;
    sqlite3_bind_int(st->st[S_OUT_STATE], 1, state);
    sqlite3_bind_int64(st->st[S_OUT_STATE], 2, (int64_t)f->token);
    run(st, S_OUT_STATE);
}

void mq_store_out_del(mq_store *st, const mq_flow *f)
{
    if (!f->token || change(st, 0))
        return;
    sqlite3_bind_int64(st->st[S_OUT_DEL], 1, (int64_t)f->token);
    run(st, S_OUT_DEL);
}

void mq_store_in_add(mq_store *st, uint16_t pid)
{
    if (change(st, 1))
        return;
    sqlite3_bind_int(st->st[S_IN_ADD], 1, pid);
    run(st, S_IN_ADD);
}

void mq_store_in_del(mq_store *st, uint16_t pid)
{
    if (change(st, 0))
        return;
    sqlite3_bind_int(st->st[S_IN_DEL], 1, pid);
    run(st, S_IN_DEL);
}

void mq_store_in_clear(mq_store *st)
{
    if (change(st, 0))
        return;
    run(st, S_IN_CLEAR);
}

void mq_store_sub_put(mq_store *st, mq_view f, uint8_t options, uint32_t subid)
{
    if (change(st, 0))
        return;
    sqlite3_stmt *s = st->st[S_SUB_PUT];
    sqlite3_bind_blob(s, 1, f.p, (int)f.len, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, options);
    sqlite3_bind_int64(s, 3, subid);
    run(st, S_SUB_PUT);
}

void mq_store_sub_del(mq_store *st, mq_view f)
{
    if (change(st, 0))
        return;
    sqlite3_bind_blob(st->st[S_SUB_DEL], 1, f.p, (int)f.len, SQLITE_STATIC);
    run(st, S_SUB_DEL);
}

static void meta_put_text(mq_store *st, const char *key, const char *v)
{
    if (change(st, 0))
        return;
    sqlite3_stmt *s = st->st[S_META_PUT];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    /* As a blob: identifiers are UTF-8 but compared byte for byte. */
    sqlite3_bind_blob(s, 2, v, (int)strlen(v), SQLITE_STATIC);
    run(st, S_META_PUT);
}

void mq_store_set_protocol(mq_store *st, int version)
{
    if (st->protocol == version || change(st, 0))
        return;
    sqlite3_stmt *s = st->st[S_META_PUT];
    sqlite3_bind_text(s, 1, "protocol", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, version);
    run(st, S_META_PUT);
    st->protocol = version;
}

int mq_store_commit(mq_store *st, int durable, mq_err *err)
{
    if (st->db.failed)
        goto failed;
    if (!st->pending)
        return 0;
    (void)durable; /* one level for every commit: see store.h */
    if (mq_db_commit(&st->db, st->sync == MQ_STORE_SYNC_FULL, &st->err))
        goto failed;
    st->pending = 0;
    return 0;
failed:
    st->pending = 0;
    if (err && err != &st->err)
        mq_err_set(err, MQLITE_ERR_IO, "%s; the store stopped taking changes, nothing more is "
                   "sent (free the client and start again)",
                   st->err.msg[0] ? st->err.msg : "client store: write failed");
    return MQLITE_ERR_IO;
}
