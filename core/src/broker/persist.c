/*
 * persist.c - the broker's persistence file; see persist.h for the rules.
 */
#define _GNU_SOURCE
#include "persist.h"

#include <sqlite3.h>
#include <time.h>

#include "log.h"
#include "net.h"
#include "retain.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "topic.h"

static const mq_db_migration persist_migrations[] = {
    {1, "broker: meta, retained, sessions, subscriptions, outgoing, incoming_qos2",
     "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
     /* expires_at: wall-clock ms (0 = never). */
     "CREATE TABLE retained(topic BLOB PRIMARY KEY, qos INTEGER NOT NULL, props BLOB,"
     " payload BLOB NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;"
     /* disconnected_at: wall-clock ms the session went offline, 0 = it was
      * online when the file was last written. */
     "CREATE TABLE sessions(client_id BLOB PRIMARY KEY, version INTEGER NOT NULL,"
     " expiry_s INTEGER NOT NULL, disconnected_at INTEGER NOT NULL, username BLOB)"
     " WITHOUT ROWID;"
     "CREATE TABLE subscriptions(client_id BLOB NOT NULL, filter BLOB NOT NULL,"
     " options INTEGER NOT NULL, subid INTEGER NOT NULL, PRIMARY KEY(client_id, filter))"
     " WITHOUT ROWID;"
     /* Broker -> client QoS 1/2 flows in delivery order (seq). state: 0
      * queued, 1 PUBLISHED (sent: re-sent with DUP), 2 RELEASED (PUBREL
      * sent). subids: 5.0 subscription identifiers, 4 bytes each. */
     "CREATE TABLE outgoing(seq INTEGER PRIMARY KEY, client_id BLOB NOT NULL,"
     " pid INTEGER NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
     " state INTEGER NOT NULL, topic BLOB NOT NULL, props BLOB, payload BLOB NOT NULL,"
     " expires_at INTEGER NOT NULL, subids BLOB);"
     "CREATE INDEX outgoing_by_client ON outgoing(client_id, seq);"
     /* Client -> broker QoS 2 ids past PUBREC, awaiting PUBREL. */
     "CREATE TABLE incoming_qos2(client_id BLOB NOT NULL, pid INTEGER NOT NULL,"
     " PRIMARY KEY(client_id, pid)) WITHOUT ROWID;"},
    /* The will of a persistent session, while it has one: set at CONNECT,
     * deleted when it is published or discarded. expiry_s: its Message
     * Expiry Interval, NULL = none. When it is due follows from the
     * session's disconnected_at (0: due delay_s after the restart). */
    {2, "broker: wills",
     "CREATE TABLE wills(client_id BLOB PRIMARY KEY, topic BLOB NOT NULL,"
     " qos INTEGER NOT NULL, retain INTEGER NOT NULL, props BLOB, payload BLOB NOT NULL,"
     " delay_s INTEGER NOT NULL, expiry_s INTEGER) WITHOUT ROWID;"},
};

static const mq_db_schema persist_schema = {
    MQ_DB_APP_BROKER, "broker persistence file", persist_migrations,
    (int)(sizeof persist_migrations / sizeof persist_migrations[0])};

enum {
    P_RET_PUT,
    P_RET_DEL,
    P_SESS_PUT,
    P_SESS_OFF,
    P_SESS_DEL,
    P_SESS_DEL_SUBS,
    P_SESS_DEL_OUT,
    P_SESS_DEL_IN,
    P_SESS_DEL_WILL,
    P_SUB_PUT,
    P_SUB_DEL,
    P_OUT_ADD,
    P_OUT_STATE,
    P_OUT_DEL,
    P_IN_ADD,
    P_IN_DEL,
    P_WILL_PUT,
    P_COUNT
};

static const char *const persist_sql[P_COUNT] = {
    "INSERT OR REPLACE INTO retained(topic, qos, props, payload, expires_at) VALUES(?,?,?,?,?)",
    "DELETE FROM retained WHERE topic = ?",
    ("INSERT OR REPLACE INTO sessions(client_id, version, expiry_s, disconnected_at, username)"
     " VALUES(?,?,?,0,?)"),
    "UPDATE sessions SET disconnected_at = ?, expiry_s = ? WHERE client_id = ?",
    "DELETE FROM sessions WHERE client_id = ?",
    "DELETE FROM subscriptions WHERE client_id = ?",
    "DELETE FROM outgoing WHERE client_id = ?",
    "DELETE FROM incoming_qos2 WHERE client_id = ?",
    "DELETE FROM wills WHERE client_id = ?",
    "INSERT OR REPLACE INTO subscriptions(client_id, filter, options, subid) VALUES(?,?,?,?)",
    "DELETE FROM subscriptions WHERE client_id = ? AND filter = ?",
    ("INSERT INTO outgoing(client_id, pid, qos, retain, state, topic, props, payload,"
     " expires_at, subids) VALUES(?,?,?,?,0,?,?,?,?,?)"),
    "UPDATE outgoing SET state = ? WHERE seq = ?",
    "DELETE FROM outgoing WHERE seq = ?",
    "INSERT OR IGNORE INTO incoming_qos2(client_id, pid) VALUES(?,?)",
    "DELETE FROM incoming_qos2 WHERE client_id = ? AND pid = ?",
    ("INSERT OR REPLACE INTO wills(client_id, topic, qos, retain, props, payload, delay_s,"
     " expiry_s) VALUES(?,?,?,?,?,?,?,?)"),
};

struct mq_persist {
    mq_db db;
    sqlite3_stmt *st[P_COUNT];
    uint8_t pending;
    uint64_t last_commit_ms;
    mq_err err; /* the latched failure */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic expiry (b->now_ms based) <-> wall clock. */
static int64_t to_wall(const mqlite_broker *b, uint64_t expiry_ms)
{
    if (!expiry_ms)
        return 0;
    int64_t left = expiry_ms > b->now_ms ? (int64_t)(expiry_ms - b->now_ms) : 0;
    return wall_ms() + left + 1;
}

static uint64_t from_wall(const mqlite_broker *b, int64_t at, int64_t wall_now, int *expired)
{
    *expired = 0;
    if (!at)
        return 0;
    if (at <= wall_now) {
        *expired = 1;
        return 0;
    }
    return b->now_ms + (uint64_t)(at - wall_now);
}

static int sync_full(const mqlite_broker *b)
{
    return b->o.persist_sync == MQLITE_PERSIST_SYNC_ALWAYS;
}

/* ---- changes ---- */

/* The statement to fill for a change, or NULL (no file, failed). */
static sqlite3_stmt *change(mqlite_broker *b, int which)
{
    mq_persist *p = b->persist;
    if (!p || p->db.failed)
        return NULL;
    if (mq_db_begin(&p->db, &p->err))
        return NULL;
    p->pending = 1;
    return p->st[which];
}

static void run(mqlite_broker *b, sqlite3_stmt *st)
{
    mq_persist *p = b->persist;
    if (mq_db_step_done(&p->db, st, &p->err))
        p->db.failed = 1;
}

static void bind_view(sqlite3_stmt *st, int i, mq_view v)
{
    /* Zero-length blobs stay blobs (not NULL): topics and payloads. */
    sqlite3_bind_blob(st, i, v.len ? (const void *)v.p : "", (int)v.len, SQLITE_STATIC);
}

static void bind_id(sqlite3_stmt *st, int i, const mq_bsess *s)
{
    sqlite3_bind_blob(st, i, s->id, s->id_len, SQLITE_STATIC);
}

void mq_persist_retained(mqlite_broker *b, const mq_msg *m)
{
    /* $SYS is the broker's own, rebuilt at start. */
    if (m->topic_len >= 5 && memcmp(m->data, "$SYS/", 5) == 0)
        return;
    int del = m->payload_len == 0;
    sqlite3_stmt *st = change(b, del ? P_RET_DEL : P_RET_PUT);
    if (!st)
        return;
    bind_view(st, 1, mq_msg_topic(m));
    if (!del) {
        sqlite3_bind_int(st, 2, m->qos);
        if (m->props_len)
            bind_view(st, 3, mq_msg_props(m));
        bind_view(st, 4, mq_msg_payload(m));
        sqlite3_bind_int64(st, 5, to_wall(b, m->expiry_ms));
    }
    run(b, st);
}

void mq_persist_session_put(mqlite_broker *b, mq_bsess *s)
{
    sqlite3_stmt *st = s->persist ? change(b, P_SESS_PUT) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    sqlite3_bind_int(st, 2, s->version);
    sqlite3_bind_int64(st, 3, s->expiry_s);
    if (s->username)
        sqlite3_bind_blob(st, 4, s->username, (int)strlen(s->username), SQLITE_STATIC);
    run(b, st);
}

void mq_persist_session_offline(mqlite_broker *b, mq_bsess *s)
{
    sqlite3_stmt *st = s->persist ? change(b, P_SESS_OFF) : NULL;
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, wall_ms());
    sqlite3_bind_int64(st, 2, s->expiry_s);
    bind_id(st, 3, s);
    run(b, st);
}

void mq_persist_session_del(mqlite_broker *b, mq_bsess *s)
{
    static const int del[] = {P_SESS_DEL, P_SESS_DEL_SUBS, P_SESS_DEL_OUT, P_SESS_DEL_IN,
                              P_SESS_DEL_WILL};
    if (!s->persist)
        return;
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        sqlite3_stmt *st = change(b, del[i]);
        if (!st)
            return;
        bind_id(st, 1, s);
        run(b, st);
    }
    for (mq_flow *f = s->q.queued.head; f; f = f->next)
        f->token = 0;
    for (mq_flow *f = s->q.inflight.head; f; f = f->next)
        f->token = 0;
}

void mq_persist_sub_put(mqlite_broker *b, mq_bsess *s, mq_view filter, uint8_t opts,
                        uint32_t subid)
{
    sqlite3_stmt *st = s->persist ? change(b, P_SUB_PUT) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    bind_view(st, 2, filter);
    sqlite3_bind_int(st, 3, opts);
    sqlite3_bind_int64(st, 4, subid);
    run(b, st);
}

void mq_persist_sub_del(mqlite_broker *b, mq_bsess *s, mq_view filter)
{
    sqlite3_stmt *st = s->persist ? change(b, P_SUB_DEL) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    bind_view(st, 2, filter);
    run(b, st);
}

void mq_persist_flow_add(mqlite_broker *b, mq_bsess *s, mq_flow *f)
{
    sqlite3_stmt *st = s->persist && f->qos ? change(b, P_OUT_ADD) : NULL;
    if (!st)
        return;
    const mq_msg *m = f->msg;
    bind_id(st, 1, s);
    sqlite3_bind_int(st, 2, f->pid);
    sqlite3_bind_int(st, 3, f->qos);
    sqlite3_bind_int(st, 4, f->retain);
    bind_view(st, 5, mq_msg_topic(m));
    if (m->props_len)
        bind_view(st, 6, mq_msg_props(m));
    bind_view(st, 7, mq_msg_payload(m));
    sqlite3_bind_int64(st, 8, to_wall(b, m->expiry_ms));
    if (f->nsubids)
        sqlite3_bind_blob(st, 9, f->subids, (int)(f->nsubids * sizeof(uint32_t)), SQLITE_STATIC);
    run(b, st);
    f->token = (uint64_t)sqlite3_last_insert_rowid(b->persist->db.db);
}

void mq_persist_flow_state(mqlite_broker *b, mq_bsess *s, const mq_flow *f, int state)
{
    sqlite3_stmt *st = s->persist && f && f->token ? change(b, P_OUT_STATE) : NULL;
    if (!st)
        return;
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_int64(st, 2, (int64_t)f->token);
    run(b, st);
}

void mq_persist_flow_del(mqlite_broker *b, mq_bsess *s, const mq_flow *f)
{
    sqlite3_stmt *st = s->persist && f->token ? change(b, P_OUT_DEL) : NULL;
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, (int64_t)f->token);
    run(b, st);
}

void mq_persist_in_add(mqlite_broker *b, mq_bsess *s, uint16_t pid)
{
    sqlite3_stmt *st = s->persist ? change(b, P_IN_ADD) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    sqlite3_bind_int(st, 2, pid);
    run(b, st);
}

void mq_persist_in_del(mqlite_broker *b, mq_bsess *s, uint16_t pid)
{
    sqlite3_stmt *st = s->persist ? change(b, P_IN_DEL) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    sqlite3_bind_int(st, 2, pid);
    run(b, st);
}

void mq_persist_will_put(mqlite_broker *b, mq_bsess *s)
{
    const mq_msg *w = s->will;
    sqlite3_stmt *st = s->persist && w ? change(b, P_WILL_PUT) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    bind_view(st, 2, mq_msg_topic(w));
    sqlite3_bind_int(st, 3, w->qos);
    sqlite3_bind_int(st, 4, w->retain);
    if (w->props_len)
        bind_view(st, 5, mq_msg_props(w));
    bind_view(st, 6, mq_msg_payload(w));
    sqlite3_bind_int64(st, 7, s->will_delay_s);
    if (s->will_has_expiry)
        sqlite3_bind_int64(st, 8, s->will_expiry_s);
    run(b, st);
}

void mq_persist_will_del(mqlite_broker *b, mq_bsess *s)
{
    sqlite3_stmt *st = s->persist ? change(b, P_SESS_DEL_WILL) : NULL;
    if (!st)
        return;
    bind_id(st, 1, s);
    run(b, st);
}

/* ---- commits ---- */

const char *mq_persist_failure(const mqlite_broker *b)
{
    return b->persist && b->persist->db.failed ? b->persist->err.msg : NULL;
}

static int commit(mqlite_broker *b)
{
    mq_persist *p = b->persist;
    if (p->db.failed)
        return MQLITE_ERR_IO;
    p->last_commit_ms = b->now_ms;
    if (!p->pending)
        return 0;
    p->pending = 0;
    if (mq_db_commit(&p->db, sync_full(b), &p->err) == 0)
        return 0;
    mq_blog(b, MQLITE_LOG_ERROR,
            "persistence: %s; nothing more is sent or acknowledged, the broker stops",
            p->err.msg);
    return MQLITE_ERR_IO;
}

int mq_persist_commit_now(mqlite_broker *b)
{
    mq_persist *p = b->persist;
    if (!p)
        return 0;
    if (p->db.failed)
        return MQLITE_ERR_IO;
    if (!p->pending || b->o.persist_sync == MQLITE_PERSIST_SYNC_BATCH)
        return 0;
    return commit(b);
}

int mq_persist_gate(mqlite_broker *b, mq_conn *c)
{
    mq_persist *p = b->persist;
    if (!p)
        return 0;
    if (p->db.failed)
        return MQLITE_ERR_IO;
    if (!p->pending || b->o.persist_sync == MQLITE_PERSIST_SYNC_BATCH)
        return 0;
    if (!b->ending_round) {
        if (!c->dirty)
            mq_broker_mark_dirty(b, c);
        return 1;
    }
    return commit(b);
}

int mq_persist_round(mqlite_broker *b)
{
    mq_persist *p = b->persist;
    if (!p)
        return 0;
    if (p->db.failed)
        return MQLITE_ERR_IO;
    if (!p->pending)
        return 0;
    if (b->o.persist_sync != MQLITE_PERSIST_SYNC_BATCH ||
        b->now_ms >= p->last_commit_ms + b->o.persist_interval_ms)
        return commit(b);
    mq_broker_wake_at(b, p->last_commit_ms + b->o.persist_interval_ms);
    return 0;
}

void mq_persist_set_sync(mqlite_broker *b, int level)
{
    (void)level;
    mq_persist *p = b->persist;
    if (p && !p->db.failed)
        mq_db_commit(&p->db, sync_full(b), &p->err);
}

/* ---- loading ---- */

typedef struct load_counts {
    long sessions, expired, subs, flows, in_ids, wills, retained, retained_expired;
} load_counts;

static mq_view col_view(sqlite3_stmt *q, int i)
{
    return mq_view_make(sqlite3_column_blob(q, i), (size_t)sqlite3_column_bytes(q, i));
}

static int bad_row(mqlite_broker *b, const char *table, const char *why)
{
    return mq_err_set(&b->err, MQLITE_ERR_IO,
                      "broker persistence file \"%s\": a row of %s is invalid (%s); the file was "
                      "left as it was",
                      b->persist->db.path, table, why);
}

static int read_fail(mqlite_broker *b)
{
    return mq_err_set(&b->err, MQLITE_ERR_IO,
                      "broker persistence file \"%s\" cannot be read: %s; the file was left as "
                      "it was",
                      b->persist->db.path, sqlite3_errmsg(b->persist->db.db));
}

static int load_retained(mqlite_broker *b, int64_t wall_now, load_counts *n)
{
    sqlite3_stmt *q = mq_db_prepare(&b->persist->db,
                                    "SELECT topic, qos, props, payload, expires_at FROM retained",
                                    &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int expired;
        uint64_t exp = from_wall(b, sqlite3_column_int64(q, 4), wall_now, &expired);
        if (expired) {
            n->retained_expired++;
            continue;
        }
        int qos = sqlite3_column_int(q, 1);
        if (qos < 0 || qos > 2 || sqlite3_column_bytes(q, 0) == 0) {
            err = bad_row(b, "retained", "QoS or topic");
            break;
        }
        mq_msg *m = mq_msg_new(&b->a, col_view(q, 0), col_view(q, 2), col_view(q, 3),
                               (uint8_t)qos, 1);
        if (!m) {
            err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
            break;
        }
        m->expiry_ms = exp;
        err = mq_retain_store(b, m) ? mq_err_code(&b->err, MQLITE_ERR_NOMEM) : 0;
        mq_msg_unref(&b->a, m);
        n->retained++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

/* Sessions first; rows of sessions that expired while the broker was
 * down are deleted (the transaction commits after a complete load). */
static int load_sessions(mqlite_broker *b, int64_t wall_now, load_counts *n)
{
    sqlite3_stmt *q = mq_db_prepare(
        &b->persist->db,
        "SELECT client_id, version, expiry_s, disconnected_at, username,"
        " EXISTS(SELECT 1 FROM wills w WHERE w.client_id = sessions.client_id) FROM sessions",
        &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        mq_view id = col_view(q, 0);
        int version = sqlite3_column_int(q, 1);
        int64_t expiry = sqlite3_column_int64(q, 2);
        int64_t off = sqlite3_column_int64(q, 3);
        if (id.len > 65535 || version < MQLITE_V31 || version > MQLITE_V5 || expiry <= 0 ||
            expiry > (int64_t)MQ_EXPIRY_NEVER || mq_bsess_find(b, id)) {
            err = bad_row(b, "sessions", "client id, level or expiry");
            break;
        }
        /* Online when the file was last written: its offline time starts
         * now (the moment of the crash is not known). */
        int64_t left = -1;
        if (expiry != (int64_t)MQ_EXPIRY_NEVER) {
            int64_t since = off ? wall_now - off : 0;
            left = expiry * 1000 - (since > 0 ? since : 0);
            /* 5.0 [MQTT-3.1.3-9]: its will was due when it ended; it is
             * loaded to end at the first timer pass, sending the will. */
            if (left <= 0 && sqlite3_column_int(q, 5)) {
                left = 0;
                n->expired++;
                n->sessions--;
            } else if (left <= 0) {
                mq_bsess *s = mq_bsess_new(b, id);
                if (!s) {
                    err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
                    break;
                }
                s->persist = 1;
                mq_persist_session_del(b, s);
                mq_bsess_drop(b, s);
                n->expired++;
                continue;
            }
        }
        mq_bsess *s = mq_bsess_new(b, id);
        if (!s) {
            err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
            break;
        }
        s->persist = 1;
        s->version = (uint8_t)version;
        s->expiry_s = (uint32_t)expiry;
        s->sec = &b->gsec;
        if (sqlite3_column_type(q, 4) != SQLITE_NULL) {
            mq_view u = col_view(q, 4);
            if (!(s->username = mq_memdup0(&b->a, u.p ? (const char *)u.p : "", u.len))) {
                err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
                break;
            }
        }
        mq_bsess_restore_offline(b, s, left);
        n->sessions++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

static int load_subs(mqlite_broker *b, load_counts *n)
{
    sqlite3_stmt *q = mq_db_prepare(
        &b->persist->db, "SELECT client_id, filter, options, subid FROM subscriptions", &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        mq_bsess *s = mq_bsess_find(b, col_view(q, 0));
        if (!s)
            continue; /* of an expired session */
        mq_view f = col_view(q, 1);
        if (!f.len || mq_topic_check_filter(f, NULL)) {
            err = bad_row(b, "subscriptions", "topic filter");
            break;
        }
        int existed;
        if (mq_router_subscribe(b, s, f, (uint8_t)sqlite3_column_int(q, 2),
                                (uint32_t)sqlite3_column_int64(q, 3), &existed)) {
            err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
            break;
        }
        n->subs++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

static int load_flow(mqlite_broker *b, sqlite3_stmt *q, mq_bsess *s, int64_t wall_now)
{
    int qos = sqlite3_column_int(q, 2), state = sqlite3_column_int(q, 5);
    int pid = sqlite3_column_int(q, 1);
    if (qos < 1 || qos > 2 || state < 0 || state > 2 || (state == 2 && qos != 2) || pid < 1 ||
        pid > 65535)
        return bad_row(b, "outgoing", "QoS, state or packet id");
    int expired;
    uint64_t exp = from_wall(b, sqlite3_column_int64(q, 9), wall_now, &expired);
    mq_msg *m = mq_msg_new(&b->a, col_view(q, 6), col_view(q, 7), col_view(q, 8), (uint8_t)qos,
                           (uint8_t)sqlite3_column_int(q, 3));
    if (!m)
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    /* An expired message not yet sent is dropped by the first pump
     * (5.0 [MQTT-3.3.2-5]); one in flight is completed. */
    m->expiry_ms = expired ? b->now_ms : exp;
    int e;
    mq_flow *f = mq_outq_restore(&s->q, &b->a, m, (uint8_t)qos,
                                 (uint8_t)sqlite3_column_int(q, 3), (uint16_t)pid,
                                 state == 2 ? MQ_FLOW_RELEASED : MQ_FLOW_QUEUED, state != 0, &e);
    mq_msg_unref(&b->a, m);
    if (!f)
        return e == MQLITE_ERR_NOMEM ? mq_err_code(&b->err, e)
                                     : bad_row(b, "outgoing", "packet id used twice");
    f->token = (uint64_t)sqlite3_column_int64(q, 0);
    mq_view ids = col_view(q, 10);
    size_t nids = ids.len / sizeof(uint32_t);
    if (nids && nids <= 255 && (f->subids = mq_malloc(&b->a, ids.len)) != NULL) {
        memcpy(f->subids, ids.p, nids * sizeof(uint32_t));
        f->nsubids = (uint8_t)nids;
    }
    return 0;
}

static int load_flows(mqlite_broker *b, int64_t wall_now, load_counts *n)
{
    sqlite3_stmt *q = mq_db_prepare(&b->persist->db,
                                    "SELECT seq, pid, qos, retain, client_id, state, topic, props,"
                                    " payload, expires_at, subids FROM outgoing ORDER BY seq",
                                    &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        mq_bsess *s = mq_bsess_find(b, col_view(q, 4));
        if (!s)
            continue;
        err = load_flow(b, q, s, wall_now);
        n->flows++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

static int load_in(mqlite_broker *b, load_counts *n)
{
    sqlite3_stmt *q =
        mq_db_prepare(&b->persist->db, "SELECT client_id, pid FROM incoming_qos2", &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        mq_bsess *s = mq_bsess_find(b, col_view(q, 0));
        int pid = sqlite3_column_int(q, 1);
        if (!s)
            continue;
        if (pid < 1 || pid > 65535) {
            err = bad_row(b, "incoming_qos2", "packet id");
            break;
        }
        if (mq_inq_qos2_begin(&s->inq, &b->a, (uint16_t)pid) < 0)
            err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
        n->in_ids++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

/* After the sessions: each will becomes due delay_s after its session
 * went offline, or after the restart for a session that was online when
 * the file was last written (the broker stopped or crashed under it: its
 * connection ended without DISCONNECT, 5.0 3.1.2.5). */
static int load_wills(mqlite_broker *b, int64_t wall_now, load_counts *n)
{
    sqlite3_stmt *q = mq_db_prepare(&b->persist->db,
                                    "SELECT w.client_id, w.topic, w.qos, w.retain, w.props,"
                                    " w.payload, w.delay_s, w.expiry_s, s.disconnected_at"
                                    " FROM wills w JOIN sessions s ON s.client_id = w.client_id",
                                    &b->err);
    if (!q)
        return MQLITE_ERR_IO;
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        mq_bsess *s = mq_bsess_find(b, col_view(q, 0));
        if (!s)
            continue;
        int qos = sqlite3_column_int(q, 2);
        int64_t delay = sqlite3_column_int64(q, 6), expiry = sqlite3_column_int64(q, 7);
        if (qos < 0 || qos > 2 || sqlite3_column_bytes(q, 1) == 0 || delay < 0 ||
            delay > (int64_t)UINT32_MAX || expiry < 0 || expiry > (int64_t)UINT32_MAX) {
            err = bad_row(b, "wills", "QoS, topic, delay or expiry");
            break;
        }
        mq_msg *m = mq_msg_new(&b->a, col_view(q, 1), col_view(q, 4), col_view(q, 5),
                               (uint8_t)qos, (uint8_t)(sqlite3_column_int(q, 3) != 0));
        if (!m) {
            err = mq_err_code(&b->err, MQLITE_ERR_NOMEM);
            break;
        }
        int64_t off = sqlite3_column_int64(q, 8);
        int64_t left = delay * 1000 - (off && wall_now > off ? wall_now - off : 0);
        mq_bsess_restore_will(b, s, m, (uint32_t)delay, sqlite3_column_type(q, 7) != SQLITE_NULL,
                              (uint32_t)expiry, left);
        n->wills++;
    }
    if (!err && rc != SQLITE_DONE)
        err = read_fail(b);
    sqlite3_finalize(q);
    return err;
}

int mq_persist_open(mqlite_broker *b, const char *path)
{
    if (b->persist)
        return mq_err_set(&b->err, MQLITE_ERR_STATE,
                          "a persistence file is already open (\"%s\")", b->persist->db.path);
    if (b->nsess || b->nretained)
        return mq_err_set(&b->err, MQLITE_ERR_STATE,
                          "set the persistence file before clients connect: the broker already "
                          "holds %u sessions and %u retained messages",
                          (unsigned)b->nsess, (unsigned)b->nretained);
    mq_persist *p = mq_calloc(&b->a, sizeof *p);
    if (!p)
        return mq_err_code(&b->err, MQLITE_ERR_NOMEM);
    int created = 0;
    int rc = mq_db_open(&p->db, &b->a, path, &persist_schema, &created, &b->err);
    if (rc) {
        mq_free(&b->a, p);
        return rc;
    }
    for (int i = 0; i < P_COUNT && !rc; i++)
        if (!(p->st[i] = mq_db_prepare(&p->db, persist_sql[i], &b->err)))
            rc = MQLITE_ERR_IO;
    b->persist = p;
    b->now_ms = mq_net_now_ms();
    int64_t wall_now = wall_ms();
    load_counts n;
    memset(&n, 0, sizeof n);
    /* Loading writes nothing but the deletion of expired sessions, so
     * the hooks stay quiet: sessions are created unmarked, then marked. */
    if (!rc)
        rc = load_retained(b, wall_now, &n);
    if (!rc)
        rc = load_sessions(b, wall_now, &n);
    if (!rc)
        rc = load_subs(b, &n);
    if (!rc)
        rc = load_flows(b, wall_now, &n);
    if (!rc)
        rc = load_in(b, &n);
    if (!rc)
        rc = load_wills(b, wall_now, &n);
    if (!rc && p->pending)
        rc = mq_db_commit(&p->db, sync_full(b), &b->err);
    if (rc) {
        /* Nothing half-loaded stays behind. */
        mq_bsess_free_all(b);
        mq_retain_free(b);
        mq_retain_init(b);
        mq_persist_close(b);
        return rc;
    }
    p->last_commit_ms = b->now_ms;
    mq_blog(b, MQLITE_LOG_NOTICE,
            "persistence: %s \"%s\" (schema %d%s, sync %s): %ld sessions (%ld subscriptions, "
            "%ld queued or in-flight messages, %ld QoS 2 ids awaiting PUBREL, %ld wills), "
            "%ld retained messages; %ld sessions and %ld retained messages had expired",
            created ? "created" : "loaded", path,
            persist_migrations[persist_schema.nmigrations - 1].version,
            p->db.from_version && p->db.from_version < persist_schema.nmigrations ? ", migrated"
                                                                                : "",
            b->o.persist_sync == MQLITE_PERSIST_SYNC_ALWAYS  ? "always"
            : b->o.persist_sync == MQLITE_PERSIST_SYNC_BATCH ? "batch"
                                                             : "off",
            n.sessions, n.subs, n.flows, n.in_ids, n.wills, n.retained, n.expired,
            n.retained_expired);
    return 0;
}

void mq_persist_close(mqlite_broker *b)
{
    mq_persist *p = b->persist;
    if (!p)
        return;
    if (p->pending && !p->db.failed)
        mq_db_commit(&p->db, 1, &p->err);
    for (int i = 0; i < P_COUNT; i++)
        sqlite3_finalize(p->st[i]);
    mq_db_close(&p->db, &b->a);
    mq_free(&b->a, p);
    b->persist = NULL;
}
