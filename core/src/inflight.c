/*
 * inflight.c - messages, packet identifier maps, outgoing flows and the
 * incoming QoS 2 set (see inflight.h for the rules kept here).
 */
#include "inflight.h"

#include "codec.h"

/* ---- messages ---- */

mq_msg *mq_msg_new(const mq_alloc *a, mq_view topic, mq_view props, mq_view payload,
                   uint8_t qos, uint8_t retain)
{
    size_t n = sizeof(mq_msg) + (size_t)topic.len + props.len + payload.len;
    mq_msg *m = mq_malloc(a, n);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->refs = 1;
    m->qos = qos;
    m->retain = retain;
    m->topic_len = topic.len;
    m->props_len = props.len;
    m->payload_len = payload.len;
    uint8_t *w = m->data;
    if (topic.len)
        memcpy(w, topic.p, topic.len);
    w += topic.len;
    if (props.len)
        memcpy(w, props.p, props.len);
    w += props.len;
    if (payload.len)
        memcpy(w, payload.p, payload.len);
    return m;
}

void mq_msg_unref(const mq_alloc *a, mq_msg *m)
{
    if (m && --m->refs == 0)
        mq_free(a, m);
}

/* ---- pid map ----
 * Keys are 1..65535; 0 marks an empty slot and a NULL value with a non-zero
 * key marks a tombstone (values stored are never NULL). */

static uint32_t slot_of(uint16_t pid, uint32_t cap)
{
    return ((uint32_t)pid * 40503u) & (cap - 1);
}

void *mq_pidmap_get(const mq_pidmap *m, uint16_t pid)
{
    if (!m->cap)
        return NULL;
    for (uint32_t i = slot_of(pid, m->cap), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        if (m->keys[i] == 0)
            return NULL;
        if (m->keys[i] == pid && m->vals[i])
            return m->vals[i];
    }
    return NULL;
}

static int rehash(mq_pidmap *m, const mq_alloc *a, uint32_t cap)
{
    uint16_t *keys = mq_calloc(a, cap * sizeof *keys);
    void **vals = mq_calloc(a, cap * sizeof *vals);
    if (!keys || !vals) {
        mq_free(a, keys);
        mq_free(a, vals);
        return MQLITE_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->keys[i] && m->vals[i]) {
            uint32_t j = slot_of(m->keys[i], cap);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
    }
    mq_free(a, m->keys);
    mq_free(a, m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->filled = m->used;
    return 0;
}

int mq_pidmap_put(mq_pidmap *m, const mq_alloc *a, uint16_t pid, void *val)
{
    /* Keep the load (tombstones included) under 3/4. */
    if ((m->filled + 1) * 4 > m->cap * 3) {
        uint32_t cap = m->cap ? m->cap : 8;
        while ((m->used + 1) * 2 > cap)
            cap *= 2;
        int rc = rehash(m, a, cap);
        if (rc)
            return rc;
    }
    uint32_t i = slot_of(pid, m->cap);
    while (m->keys[i] && m->vals[i])
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->filled++;
    m->keys[i] = pid;
    m->vals[i] = val;
    m->used++;
    return 0;
}

void *mq_pidmap_del(mq_pidmap *m, uint16_t pid)
{
    if (!m->cap)
        return NULL;
    for (uint32_t i = slot_of(pid, m->cap), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        if (m->keys[i] == 0)
            return NULL;
        if (m->keys[i] == pid && m->vals[i]) {
            void *v = m->vals[i];
            m->vals[i] = NULL; /* tombstone */
            m->used--;
            if (m->used == 0) {
                /* Empty: forget the tombstones too. */
                memset(m->keys, 0, m->cap * sizeof *m->keys);
                m->filled = 0;
            }
            return v;
        }
    }
    return NULL;
}

void mq_pidmap_free(mq_pidmap *m, const mq_alloc *a)
{
    mq_free(a, m->keys);
    mq_free(a, m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- flow lists ---- */

void mq_flist_append(mq_flist *l, mq_flow *f)
{
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
    l->count++;
}

void mq_flist_prepend(mq_flist *l, mq_flow *f)
{
    f->prev = NULL;
    f->next = l->head;
    if (l->head)
        l->head->prev = f;
    else
        l->tail = f;
    l->head = f;
    l->count++;
}

void mq_flist_unlink(mq_flist *l, mq_flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->next = f->prev = NULL;
    l->count--;
}

/* ---- outgoing queue ---- */

void mq_outq_init(mq_outq *q, uint32_t window)
{
    memset(q, 0, sizeof *q);
    q->window = window ? window : 1;
    q->next_pid = 1;
}

void mq_flow_free(const mq_alloc *a, mq_flow *f)
{
    if (!f)
        return;
    mq_msg_unref(a, f->msg);
    mq_free(a, f->subids);
    mq_free(a, f);
}

static void free_list(mq_flist *l, const mq_alloc *a)
{
    mq_flow *f = l->head;
    while (f) {
        mq_flow *n = f->next;
        mq_flow_free(a, f);
        f = n;
    }
    l->head = l->tail = NULL;
    l->count = 0;
}

void mq_outq_free(mq_outq *q, const mq_alloc *a)
{
    free_list(&q->inflight, a);
    free_list(&q->queued, a);
    mq_pidmap_free(&q->pids, a);
    mq_pidmap_free(&q->reserved, a);
    q->queued_bytes = 0;
}

int mq_outq_pid_in_use(const mq_outq *q, uint16_t pid)
{
    return mq_pidmap_get(&q->pids, pid) != NULL || mq_pidmap_get(&q->reserved, pid) != NULL;
}

/* Find an unused identifier, starting after the last one handed out so
 * that identifiers are not reused sooner than necessary. */
static int free_pid(mq_outq *q, uint16_t *out)
{
    if (q->pids.used + q->reserved.used >= 65535)
        return MQLITE_ERR_NO_PACKET_ID;
    uint16_t pid = q->next_pid ? q->next_pid : 1;
    while (mq_outq_pid_in_use(q, pid))
        pid = pid == 65535 ? 1 : (uint16_t)(pid + 1);
    q->next_pid = pid == 65535 ? 1 : (uint16_t)(pid + 1);
    *out = pid;
    return 0;
}

int mq_outq_reserve_pid(mq_outq *q, const mq_alloc *a, uint16_t *pid)
{
    uint16_t p;
    int rc = free_pid(q, &p);
    if (rc)
        return rc;
    rc = mq_pidmap_put(&q->reserved, a, p, (void *)1);
    if (rc)
        return rc;
    *pid = p;
    return 0;
}

void mq_outq_release_pid(mq_outq *q, uint16_t pid)
{
    mq_pidmap_del(&q->reserved, pid);
}

mq_flow *mq_outq_push(mq_outq *q, const mq_alloc *a, mq_msg *msg, uint8_t qos, uint8_t retain,
                      int force, int *err)
{
    uint64_t bytes = msg->topic_len + msg->payload_len + msg->props_len;
    *err = 0;
    if (!force && ((q->max_queued && q->queued.count >= q->max_queued) ||
                   (q->max_queued_bytes && q->queued_bytes + bytes > q->max_queued_bytes))) {
        *err = MQLITE_ERR_QUEUE_FULL;
        return NULL;
    }
    mq_flow *f = mq_calloc(a, sizeof *f);
    if (!f) {
        *err = MQLITE_ERR_NOMEM;
        return NULL;
    }
    if (qos) {
        int rc = free_pid(q, &f->pid);
        if (!rc)
            rc = mq_pidmap_put(&q->pids, a, f->pid, f);
        if (rc) {
            mq_free(a, f);
            *err = rc;
            return NULL;
        }
    }
    f->msg = mq_msg_ref(msg);
    f->qos = qos;
    f->retain = retain;
    f->state = MQ_FLOW_QUEUED;
    mq_flist_append(&q->queued, f);
    q->queued_bytes += bytes;
    return f;
}

mq_flow *mq_outq_restore(mq_outq *q, const mq_alloc *a, mq_msg *msg, uint8_t qos,
                         uint8_t retain, uint16_t pid, uint8_t state, uint8_t sent, int *err)
{
    *err = 0;
    if ((qos && (pid == 0 || mq_outq_pid_in_use(q, pid))) ||
        (state == MQ_FLOW_RELEASED && qos != 2)) {
        *err = MQLITE_ERR_INVALID;
        return NULL;
    }
    mq_flow *f = mq_calloc(a, sizeof *f);
    if (!f) {
        *err = MQLITE_ERR_NOMEM;
        return NULL;
    }
    if (qos && mq_pidmap_put(&q->pids, a, pid, f)) {
        mq_free(a, f);
        *err = MQLITE_ERR_NOMEM;
        return NULL;
    }
    f->msg = mq_msg_ref(msg);
    f->pid = qos ? pid : 0;
    f->qos = qos;
    f->retain = retain;
    f->sent = sent;
    if (state == MQ_FLOW_RELEASED) {
        f->state = MQ_FLOW_RELEASED;
        f->sent = 1;
        mq_flist_append(&q->inflight, f);
    } else {
        f->state = MQ_FLOW_QUEUED;
        mq_flist_append(&q->queued, f);
        q->queued_bytes += mq_flow_bytes(f);
    }
    return f;
}

mq_flow *mq_outq_next(mq_outq *q)
{
    mq_flow *f = q->queued.head;
    if (!f)
        return NULL;
    /* QoS 0 needs no window; a QoS 0 message behind a QoS 1/2 one waits
     * with it, so that order is kept. */
    if (f->qos && q->inflight.count >= q->window)
        return NULL;
    mq_flist_unlink(&q->queued, f);
    q->queued_bytes -= mq_flow_bytes(f);
    if (f->qos) {
        f->state = MQ_FLOW_PUBLISHED;
        mq_flist_append(&q->inflight, f);
    }
    return f;
}

void mq_outq_unsend(mq_outq *q, mq_flow *f)
{
    if (f->qos)
        mq_flist_unlink(&q->inflight, f);
    f->state = MQ_FLOW_QUEUED;
    mq_flist_prepend(&q->queued, f);
    q->queued_bytes += mq_flow_bytes(f);
}

void mq_outq_remove(mq_outq *q, mq_flow *f)
{
    if (f->state == MQ_FLOW_QUEUED) {
        mq_flist_unlink(&q->queued, f);
        q->queued_bytes -= mq_flow_bytes(f);
    } else {
        mq_flist_unlink(&q->inflight, f);
    }
    if (f->pid)
        mq_pidmap_del(&q->pids, f->pid);
}

int mq_outq_ack(mq_outq *q, int type, uint16_t pid, uint8_t reason, mq_flow **done)
{
    mq_flow *f = mq_pidmap_get(&q->pids, pid);
    *done = NULL;
    if (!f)
        return MQLITE_ERR_PACKET_ID_UNKNOWN;
    int want_state = type == MQLITE_PKT_PUBCOMP ? MQ_FLOW_RELEASED : MQ_FLOW_PUBLISHED;
    int want_qos = type == MQLITE_PKT_PUBACK ? 1 : 2;
    if (f->state != want_state || f->qos != want_qos)
        return MQLITE_ERR_PACKET_ID_UNKNOWN;
    /* MQTT 5.0 4.3.3: a PUBREC with a failure code ends the flow. */
    if (type == MQLITE_PKT_PUBREC && reason < 0x80) {
        f->state = MQ_FLOW_RELEASED;
        return MQ_ACK_PUBREL;
    }
    mq_outq_remove(q, f);
    *done = f;
    return MQ_ACK_DONE;
}

void mq_outq_requeue_inflight(mq_outq *q)
{
    mq_flow *f = q->inflight.tail;
    while (f) {
        mq_flow *prev = f->prev;
        if (f->state == MQ_FLOW_PUBLISHED) {
            mq_flist_unlink(&q->inflight, f);
            f->state = MQ_FLOW_QUEUED;
            mq_flist_prepend(&q->queued, f);
            q->queued_bytes += mq_flow_bytes(f);
        }
        f = prev;
    }
}

/* ---- incoming QoS 2 ---- */

int mq_inq_qos2_begin(mq_inq *q, const mq_alloc *a, uint16_t pid)
{
    if (mq_pidmap_get(&q->qos2, pid))
        return 0;
    int rc = mq_pidmap_put(&q->qos2, a, pid, (void *)1);
    return rc ? rc : 1;
}

int mq_inq_qos2_release(mq_inq *q, uint16_t pid)
{
    return mq_pidmap_del(&q->qos2, pid) != NULL;
}

void mq_inq_free(mq_inq *q, const mq_alloc *a)
{
    mq_pidmap_free(&q->qos2, a);
}
