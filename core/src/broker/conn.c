/*
 * conn.c - a client connection: socket input, packet decoding and
 * dispatch, batched output, closing, timeouts (see conn.h).
 */
#define _GNU_SOURCE
#include "conn.h"

#include <stdio.h>
#include <sys/epoll.h>

#include "log.h"
#include "net.h"
#include "proto.h"
#include "session.h"

/* ---- output ---- */

static size_t out_pending(const mq_conn *c)
{
    return c->out.len - c->out_off;
}

int mq_conn_can_write(const mq_conn *c)
{
    return c->state == MQ_CONN_ACTIVE && out_pending(c) < MQ_CONN_OUT_SOFT;
}

static uint8_t *out_reserve(mq_conn *c, size_t n)
{
    if (mq_buf_reserve(&c->out, &c->b->a, n))
        return NULL;
    if (!c->dirty)
        mq_broker_mark_dirty(c->b, c);
    return c->out.p + c->out.len;
}

int mq_conn_put_ack(mq_conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    /* 5.0 3.4.2.1: Reason Code 0x00 without properties may be omitted. */
    int with_reason = c->version == MQLITE_V5 && reason != 0;
    uint8_t *w = out_reserve(c, 5);
    if (!w)
        return MQLITE_ERR_NOMEM;
    w[0] = (uint8_t)(type << 4 | (type == MQLITE_PKT_PUBREL ? 2 : 0));
    w[1] = with_reason ? 3 : 2;
    mq_put16(w + 2, pid);
    if (with_reason)
        w[4] = reason;
    c->out.len += with_reason ? 5 : 4;
    return 0;
}

int mq_conn_put_packet(mq_conn *c, const mq_packet *p)
{
    size_t n;
    int rc = mq_encode_size(p, &n, NULL);
    if (rc)
        return rc;
    uint8_t *w = out_reserve(c, n);
    if (!w)
        return MQLITE_ERR_NOMEM;
    c->out.len += mq_encode_write(p, w);
    return 0;
}

/* Size of the 5.0 property block of an outgoing PUBLISH. */
static uint32_t publish_props_len(const mq_conn *c, const mq_msg *m, const uint32_t *ids,
                                  uint32_t nids)
{
    uint32_t n = m->props_len + (m->expiry_ms ? 5 : 0);
    for (uint32_t i = 0; i < nids; i++)
        n += 1 + (uint32_t)mq_vbi_size(ids[i]);
    (void)c;
    return n;
}

static uint8_t *put_publish_props(uint8_t *w, const mq_conn *c, const mq_msg *m,
                                  const uint32_t *ids, uint32_t nids, uint32_t plen)
{
    w = mq_put_vbi(w, plen);
    /* 5.0 3.3.2.3: properties are forwarded unchanged (user properties in
     * their order), minus the Topic Alias, which is per connection. */
    if (m->props_len)
        memcpy(w, m->data + m->topic_len, m->props_len);
    w += m->props_len;
    if (m->expiry_ms) {
        /* MQTT 5.0 [MQTT-3.3.2-6]: what is left of the interval. */
        uint64_t left = m->expiry_ms > c->b->now_ms ? m->expiry_ms - c->b->now_ms : 0;
        *w++ = MQLITE_PROP_MESSAGE_EXPIRY;
        w = mq_put32(w, (uint32_t)((left + 999) / 1000));
    }
    for (uint32_t i = 0; i < nids; i++) {
        *w++ = MQLITE_PROP_SUBSCRIPTION_ID;
        w = mq_put_vbi(w, ids[i]);
    }
    return w;
}

int mq_conn_put_publish(mq_conn *c, const mq_msg *m, uint8_t qos, uint16_t pid, uint8_t retain,
                        uint8_t dup, const uint32_t *ids, uint32_t nids)
{
    int v5 = c->version == MQLITE_V5;
    uint32_t plen = v5 ? publish_props_len(c, m, ids, nids) : 0;
    uint64_t body = 2u + m->topic_len + (qos ? 2u : 0u) + m->payload_len;
    if (v5)
        body += mq_vbi_size(plen) + plen;
    if (body > MQ_VBI_MAX)
        return MQLITE_ERR_TOO_LARGE;
    size_t total = 1 + mq_vbi_size((uint32_t)body) + (size_t)body;
    /* MQTT 5.0 [MQTT-3.1.2-24] */
    if (c->max_out && total > c->max_out)
        return MQLITE_ERR_TOO_LARGE;
    uint8_t *w = out_reserve(c, total);
    if (!w)
        return MQLITE_ERR_NOMEM;
    *w++ = (uint8_t)(0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0));
    w = mq_put_vbi(w, (uint32_t)body);
    w = mq_put16(w, (uint16_t)m->topic_len);
    memcpy(w, m->data, m->topic_len);
    w += m->topic_len;
    if (qos)
        w = mq_put16(w, pid);
    if (v5)
        w = put_publish_props(w, c, m, ids, nids, plen);
    if (m->payload_len)
        memcpy(w, m->data + m->topic_len + m->props_len, m->payload_len);
    c->out.len += total;
    c->b->st.msgs_sent++;
    return 0;
}

/* A flow that will not be sent: expired before onward delivery started
 * (5.0 [MQTT-3.3.2-5]), or too large for the client, which 5.0
 * [MQTT-3.1.2-25] treats as delivered. */
static void discard_flow(mq_conn *c, mq_flow *f)
{
    if (f->qos)
        mq_outq_remove(&c->s->q, f);
    mq_flow_free(&c->b->a, f);
}

void mq_conn_pump(mq_conn *c)
{
    if (c->state != MQ_CONN_ACTIVE || !c->s)
        return;
    mqlite_broker *b = c->b;
    mq_outq *q = &c->s->q;
    mq_flow *f;
    while (out_pending(c) < MQ_CONN_OUT_SOFT && (f = mq_outq_next(q)) != NULL) {
        if (!f->sent && f->msg->expiry_ms && b->now_ms >= f->msg->expiry_ms) {
            discard_flow(c, f);
            continue;
        }
        /* MQTT 3.1.1 and 5.0 [MQTT-3.3.1-1]: DUP on re-delivery only. */
        int rc = mq_conn_put_publish(c, f->msg, f->qos, f->pid, f->retain, f->sent && f->qos,
                                     f->subids, f->nsubids);
        if (rc == MQLITE_ERR_NOMEM) {
            mq_outq_unsend(q, f);
            break;
        }
        if (rc) {
            b->st.dropped++;
            mq_blog(b, MQLITE_LOG_DEBUG, "message to \"%s\" over its maximum packet size",
                    c->s->id);
            discard_flow(c, f);
            continue;
        }
        f->sent = 1;
        if (!f->qos)
            mq_flow_free(&b->a, f);
    }
}

/* ---- epoll interest ---- */

static void update_events(mq_conn *c)
{
    size_t pending = out_pending(c);
    uint8_t want_out = pending > 0;
    uint8_t in_off = c->ep_in_off;
    if (!in_off && pending > MQ_CONN_OUT_HARD)
        in_off = 1;
    else if (in_off && pending < MQ_CONN_OUT_HARD / 2)
        in_off = 0;
    if (want_out == c->ep_out && in_off == c->ep_in_off)
        return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (in_off ? 0u : (uint32_t)EPOLLIN) | (want_out ? (uint32_t)EPOLLOUT : 0u);
    ev.data.ptr = c;
    if (epoll_ctl(c->b->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->ep_out = want_out;
        c->ep_in_off = in_off;
    }
}

/* Write what the socket takes. 0, or MQLITE_ERR_IO. */
static int write_out(mq_conn *c)
{
    while (out_pending(c)) {
        long n = mq_net_write(c->fd, c->out.p + c->out_off, out_pending(c));
        if (n > 0) {
            c->out_off += (size_t)n;
            c->b->st.bytes_sent += (uint64_t)n;
            continue;
        }
        if (n == 0 || n == MQLITE_ERR_AGAIN)
            break;
        return MQLITE_ERR_IO;
    }
    if (c->out_off == c->out.len) {
        /* Small buffers go at once (idle connections stay small); large
         * ones stay: freeing and growing them every round made the C
         * library trim and regrow its heap (brk) all the time. Idle large
         * buffers are trimmed by mq_conn_tick(). */
        c->out.len = c->out_off = 0;
        if (c->out.cap <= 256)
            mq_buf_free(&c->out, &c->b->a);
    } else if (c->out_off > c->out.len / 2) {
        mq_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
    return 0;
}

void mq_conn_flush(mq_conn *c)
{
    if (c->state == MQ_CONN_DEAD)
        return;
    if (write_out(c)) {
        mq_conn_close(c, -1, 1, "write error");
        return;
    }
    /* Room again: queued messages may follow (flushed in this round). */
    if (c->s && c->s->q.queued.count && out_pending(c) < MQ_CONN_OUT_SOFT)
        mq_conn_pump(c);
    update_events(c);
}

void mq_conn_on_writable(mq_conn *c)
{
    mq_conn_flush(c);
}

/* ---- input ---- */

static void decode_failed(mq_conn *c, int err, const mq_packet *p, const mq_decode_info *info)
{
    if (c->state == MQ_CONN_NEW) {
        mq_proto_connect_failed(c, err, p, info);
        return;
    }
    mq_proto_violation(c, err, info->type);
}

/* Decode and handle every whole packet in buf; returns the bytes used. */
static size_t parse(mq_conn *c, const uint8_t *buf, size_t len)
{
    mqlite_broker *b = c->b;
    size_t off = 0;
    while (off < len && c->state != MQ_CONN_DEAD) {
        mq_decode_opts o = {c->version, 0, MQ_ROLE_SERVER, b->o.max_packet_size};
        mq_packet p;
        mq_decode_info info;
        size_t used = 0, need = 0;
        p.type = p.version = 0;
        int rc = mq_decode(buf + off, len - off, &o, &p, &used, &need, &info);
        if (rc == MQ_NEED_MORE)
            break;
        if (rc) {
            decode_failed(c, rc, &p, &info);
            break;
        }
        rc = mq_proto_packet(c, &p);
        if (rc < 0 && c->state != MQ_CONN_DEAD)
            mq_proto_violation(c, rc, p.type);
        off += used;
    }
    return off;
}

void mq_conn_on_readable(mq_conn *c)
{
    mqlite_broker *b = c->b;
    long n = mq_net_read(c->fd, b->rbuf, b->rbuf_cap);
    if (n == MQLITE_ERR_AGAIN)
        return;
    if (n <= 0) {
        mq_conn_close(c, -1, 1, n == 0 ? "connection closed by peer" : "read error");
        return;
    }
    b->st.bytes_received += (uint64_t)n;
    c->last_rx_ms = b->now_ms;
    if (c->in.len == 0) {
        size_t used = parse(c, b->rbuf, (size_t)n);
        if (c->state != MQ_CONN_DEAD && used < (size_t)n &&
            mq_buf_append(&c->in, &b->a, b->rbuf + used, (size_t)n - used))
            mq_conn_close(c, -1, 1, "out of memory");
        return;
    }
    if (mq_buf_append(&c->in, &b->a, b->rbuf, (size_t)n)) {
        mq_conn_close(c, -1, 1, "out of memory");
        return;
    }
    size_t used = parse(c, c->in.p, c->in.len);
    if (c->state == MQ_CONN_DEAD)
        return;
    mq_buf_consume(&c->in, used);
}

/* ---- lifecycle ---- */

int mq_conn_accept(mqlite_broker *b, int fd, const char *peer)
{
    mq_conn *c = mq_calloc(&b->a, sizeof *c);
    if (!c) {
        mq_net_close(fd);
        return MQLITE_ERR_NOMEM;
    }
    c->tag = MQ_EP_CONN;
    c->fd = fd;
    c->b = b;
    c->state = MQ_CONN_NEW;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        mq_net_close(fd);
        mq_free(&b->a, c);
        return MQLITE_ERR_IO;
    }
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->nconns++;
    c->last_rx_ms = b->now_ms;
    /* MQTT 3.1.1 3.1.4 / 5.0 4.2: a socket that sends no CONNECT in
     * reasonable time is closed. */
    c->deadline_ms = b->now_ms + b->o.connect_timeout_ms;
    mq_broker_wake_at(b, c->deadline_ms);
    mq_blog(b, MQLITE_LOG_DEBUG, "new connection from %s", peer);
    return 0;
}

static void unlink_conn(mq_conn *c)
{
    mqlite_broker *b = c->b;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    b->nconns--;
}

static void close_socket(mq_conn *c)
{
    write_out(c); /* best effort: a DISCONNECT or CONNACK may be waiting */
    epoll_ctl(c->b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    mq_net_close(c->fd);
    c->fd = -1;
}

static void put_disconnect(mq_conn *c, int reason)
{
    mq_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQLITE_PKT_DISCONNECT;
    p.version = MQLITE_V5;
    p.reason = (uint8_t)reason;
    if (!mq_reason_valid(MQLITE_PKT_DISCONNECT, p.reason))
        p.reason = 0x80;
    mq_conn_put_packet(c, &p);
}

void mq_conn_close(mq_conn *c, int reason, int will, const char *why)
{
    if (c->state == MQ_CONN_DEAD)
        return;
    mqlite_broker *b = c->b;
    if (reason >= 0 && c->version == MQLITE_V5 && c->state == MQ_CONN_ACTIVE)
        put_disconnect(c, reason);
    close_socket(c);
    if (c->state == MQ_CONN_ACTIVE) {
        b->st.connected--;
        mq_blog(b, MQLITE_LOG_NOTICE, "client \"%s\" (%s) disconnected: %s",
                c->s ? c->s->id : "", c->peer, why);
    } else {
        mq_blog(b, MQLITE_LOG_INFO, "connection from %s closed: %s", c->peer, why);
    }
    c->state = MQ_CONN_DEAD;
    unlink_conn(c);
    c->next = b->dead;
    b->dead = c;
    mq_bsess *s = c->s;
    c->s = NULL;
    if (s)
        mq_bsess_detach(b, s, will);
}

void mq_conn_shutdown(mq_conn *c)
{
    if (c->state == MQ_CONN_ACTIVE && c->version == MQLITE_V5)
        put_disconnect(c, 0x8B);
    close_socket(c);
    if (c->s)
        c->s->conn = NULL;
    c->s = NULL;
    c->state = MQ_CONN_DEAD;
    unlink_conn(c);
}

void mq_conn_free(mq_conn *c)
{
    const mq_alloc *a = &c->b->a;
    mq_buf_free(&c->in, a);
    mq_buf_free(&c->out, a);
    if (c->aliases) {
        for (uint16_t i = 0; i < c->nalias; i++)
            mq_free(a, (void *)c->aliases[i].p);
        mq_free(a, c->aliases);
    }
    mq_free(a, c);
}

/* Buffers above this stay allocated only while in use. */
#define IDLE_BUF_MAX 4096u

static void trim_buffers(mq_conn *c)
{
    if (c->out.len == 0 && c->out.cap > IDLE_BUF_MAX)
        mq_buf_free(&c->out, &c->b->a);
    if (c->in.len == 0 && c->in.cap > 0)
        mq_buf_free(&c->in, &c->b->a);
}

void mq_conn_tick(mqlite_broker *b)
{
    mq_conn *c = b->conns;
    while (c) {
        mq_conn *next = c->next;
        trim_buffers(c);
        uint64_t due = c->deadline_ms;
        if (c->state == MQ_CONN_ACTIVE)
            due = c->keepalive_s ? c->last_rx_ms + (uint64_t)c->keepalive_s * 1500u : 0;
        if (due && b->now_ms >= due) {
            /* 3.1.1 [MQTT-3.1.2-24], 5.0 [MQTT-3.1.2-22]: as if the network
             * failed, so the will is published; 5.0 reason 0x8D. */
            if (c->state == MQ_CONN_ACTIVE)
                mq_conn_close(c, 0x8D, 1, "keep-alive timeout");
            else
                mq_conn_close(c, -1, 0, "no CONNECT in time");
        } else {
            mq_broker_wake_at(b, due);
        }
        c = next;
    }
}
