/*
 * conn.c - a client connection: socket input, packet decoding and
 * dispatch, batched output, closing, timeouts (see conn.h).
 */
#define _GNU_SOURCE
#include "conn.h"

#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "auth.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "session.h"

/* While a CONNECT waits for the application, input is held unparsed up to
 * this much; then reading pauses. */
#define PARKED_IN_MAX (64u * 1024u)

/* ---- transport: plain TCP or TLS ---- */

static long conn_read(mq_conn *c, void *buf, size_t cap)
{
    if (!c->tls)
        return mq_net_read(c->fd, buf, cap);
    long n = mq_tls_read(c->tls, buf, cap, NULL);
    c->tls_rd_ww = n == MQLITE_ERR_AGAIN && (mq_tls_wants(c->tls) & MQ_TLS_WANT_WRITE);
    return n;
}

static long conn_write(mq_conn *c, const void *buf, size_t len)
{
    if (!c->tls)
        return mq_net_write(c->fd, buf, len);
    long n = mq_tls_write(c->tls, buf, len, NULL);
    c->tls_wr_wr = n == MQLITE_ERR_AGAIN && (mq_tls_wants(c->tls) & MQ_TLS_WANT_READ);
    return n;
}

/* ---- output ---- */

static size_t out_pending(const mq_conn *c)
{
    return c->out.len - c->out_off;
}

size_t mq_conn_backlog(const mq_conn *c)
{
    return out_pending(c) + (c->s ? (size_t)c->s->q.queued_bytes : 0);
}

void mq_conn_mark_slow(mq_conn *c)
{
    if (c->slow || c->state == MQ_CONN_DEAD)
        return;
    c->slow = 1;
    c->slow_next = c->b->slow;
    c->b->slow = c;
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

static void more_add(mq_conn *c)
{
    if (c->more)
        return;
    c->more = 1;
    c->more_next = c->b->more;
    c->b->more = c;
}

static void update_events(mq_conn *c)
{
    if (c->state == MQ_CONN_DEAD)
        return;
    size_t pending = out_pending(c);
    /* TLS: a read can wait for writability, and the handshake either way. */
    uint8_t want_out = pending > 0 || c->tls_rd_ww ||
                       (c->tls_hs && (mq_tls_wants(c->tls) & MQ_TLS_WANT_WRITE));
    uint8_t in_off = c->ep_in_off;
    if (!in_off && (pending > MQ_CONN_OUT_HARD || (c->parked && c->in.len >= PARKED_IN_MAX)))
        in_off = 1;
    else if (in_off && pending < MQ_CONN_OUT_HARD / 2 && !(c->parked && c->in.len >= PARKED_IN_MAX))
        in_off = 0;
    /* Decrypted input OpenSSL holds raises no epoll event: read it next round. */
    if (!in_off && c->tls && !c->tls_hs && mq_tls_pending(c->tls))
        more_add(c);
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
    if (c->tls_hs)
        return 0;
    while (out_pending(c)) {
        long n = conn_write(c, c->out.p + c->out_off, out_pending(c));
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

/* Advance a TLS handshake; on completion, the client's identity. */
static void handshake(mq_conn *c)
{
    mqlite_broker *b = c->b;
    mq_err e;
    int rc = mq_tls_handshake(c->tls, &e);
    if (rc == MQLITE_ERR_AGAIN) {
        update_events(c);
        return;
    }
    if (rc) {
        b->st.tls_failed++;
        mq_blog(b, rc == MQLITE_ERR_CLOSED ? MQLITE_LOG_INFO : MQLITE_LOG_NOTICE,
                "TLS connection from %s (port %d) failed: %s", c->peer, c->l ? c->l->port : 0,
                e.msg);
        mq_conn_close(c, -1, 0, "TLS handshake failed");
        return;
    }
    c->tls_hs = 0;
    c->cert_ok = (uint8_t)mq_tls_peer_has_cert(c->tls);
    if (c->cert_ok) {
        /* Kept on the heap: most connections have no certificate, and idle
         * connections are what the broker holds by the thousand. */
        char cn[128];
        if (mq_tls_peer_cn(c->tls, cn, sizeof cn) && cn[0]) {
            c->cert_cn = mq_memdup0(&b->a, cn, strlen(cn));
            if (!c->cert_cn) {
                mq_conn_close(c, -1, 0, "out of memory");
                return;
            }
        }
    }
    /* The CONNECT may take the usual time from here. */
    c->deadline_ms = b->now_ms + b->o.connect_timeout_ms;
    mq_broker_wake_at(b, c->deadline_ms);
    mq_blog(b, MQLITE_LOG_DEBUG, "TLS from %s: %s %s%s%s", c->peer, mq_tls_version_name(c->tls),
            mq_tls_cipher_name(c->tls), c->cert_ok ? ", client certificate CN=" : "",
            c->cert_cn ? c->cert_cn : "");
    update_events(c);
    /* ClientHello-and-CONNECT clients (TLS 1.3 early data aside, a client
     * may send CONNECT with its Finished): look at input now. */
    if (mq_tls_pending(c->tls))
        more_add(c);
}

void mq_conn_on_writable(mq_conn *c)
{
    if (c->tls_hs) {
        handshake(c);
        return;
    }
    if (c->tls_rd_ww) {
        mq_conn_on_readable(c);
        if (c->state == MQ_CONN_DEAD)
            return;
    }
    mq_conn_flush(c);
}

/* ---- input ---- */

static void decode_failed(mq_conn *c, int err, const mq_packet *p, const mq_decode_info *info)
{
    if (c->state == MQ_CONN_NEW) {
        mq_proto_connect_failed(c, err, p, info);
        return;
    }
    if (err == MQLITE_ERR_PACKET_TOO_LARGE)
        c->b->st.too_large++;
    mq_proto_violation(c, err, info->type);
}

/* Decode and handle every whole packet in buf; returns the bytes used. */
static size_t parse(mq_conn *c, const uint8_t *buf, size_t len)
{
    mqlite_broker *b = c->b;
    size_t off = 0;
    while (off < len && c->state != MQ_CONN_DEAD && !c->parked) {
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
        c->raw = mq_view_make(buf + off, used);
        rc = mq_proto_packet(c, &p);
        c->raw = mq_view_make(NULL, 0);
        if (rc < 0 && c->state != MQ_CONN_DEAD)
            mq_proto_violation(c, rc, p.type);
        off += used;
    }
    return off;
}

/* Read what is there: plain, one recv; TLS, records until the buffer is
 * full or the socket empty. > 0 bytes, 0 closed, or an error. */
static long read_in(mq_conn *c)
{
    mqlite_broker *b = c->b;
    if (!c->tls)
        return conn_read(c, b->rbuf, b->rbuf_cap);
    size_t got = 0;
    for (;;) {
        long n = conn_read(c, b->rbuf + got, b->rbuf_cap - got);
        if (n <= 0)
            return got ? (long)got : n;
        got += (size_t)n;
        if (got == b->rbuf_cap)
            return (long)got;
    }
}

void mq_conn_on_readable(mq_conn *c)
{
    mqlite_broker *b = c->b;
    if (c->tls_hs) {
        handshake(c);
        return;
    }
    if (c->tls_wr_wr) {
        /* A TLS write waited for this: retry it first. */
        mq_conn_flush(c);
        if (c->state == MQ_CONN_DEAD)
            return;
    }
    long n = read_in(c);
    if (n == MQLITE_ERR_AGAIN) {
        if (c->tls)
            update_events(c);
        return;
    }
    if (n <= 0) {
        mq_conn_close(c, -1, 1, n == 0 ? "connection closed by peer" : "read error");
        return;
    }
    b->st.bytes_received += (uint64_t)n;
    c->last_rx_ms = b->now_ms;
    if (c->in.len == 0 && !c->parked) {
        size_t used = parse(c, b->rbuf, (size_t)n);
        if (c->state != MQ_CONN_DEAD && used < (size_t)n &&
            mq_buf_append(&c->in, &b->a, b->rbuf + used, (size_t)n - used))
            mq_conn_close(c, -1, 1, "out of memory");
    } else if (mq_buf_append(&c->in, &b->a, b->rbuf, (size_t)n)) {
        mq_conn_close(c, -1, 1, "out of memory");
        return;
    } else if (!c->parked) {
        size_t used = parse(c, c->in.p, c->in.len);
        if (c->state == MQ_CONN_DEAD)
            return;
        mq_buf_consume(&c->in, used);
    }
    if (c->state != MQ_CONN_DEAD && (c->tls || c->parked))
        update_events(c);
}

void mq_conn_resume(mq_conn *c)
{
    if (c->state == MQ_CONN_DEAD || c->parked)
        return;
    if (c->in.len) {
        size_t used = parse(c, c->in.p, c->in.len);
        if (c->state == MQ_CONN_DEAD)
            return;
        mq_buf_consume(&c->in, used);
    }
    if (!c->dirty)
        mq_broker_mark_dirty(c->b, c);
    update_events(c);
}

void mq_conn_read_more(mqlite_broker *b)
{
    mq_conn *list = b->more;
    b->more = NULL;
    while (list) {
        mq_conn *c = list;
        list = c->more_next;
        c->more_next = NULL;
        c->more = 0;
        if (c->state != MQ_CONN_DEAD && !c->ep_in_off)
            mq_conn_on_readable(c);
    }
}

/* ---- lifecycle ---- */

int mq_conn_accept(mqlite_broker *b, mq_listener *l, int fd, const char *peer, mq_conn **out)
{
    if (out)
        *out = NULL;
    mq_conn *c = mq_calloc(&b->a, sizeof *c);
    if (!c) {
        mq_net_close(fd);
        return MQLITE_ERR_NOMEM;
    }
    c->tag = MQ_EP_CONN;
    c->fd = fd;
    c->b = b;
    c->l = l;
    c->sec = l && l->sec ? l->sec : &b->gsec;
    c->state = MQ_CONN_NEW;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    if (l && l->tls) {
        mq_err e;
        if (mq_tls_new(l->tls, fd, NULL, &c->tls, &e)) {
            mq_blog(b, MQLITE_LOG_WARNING, "TLS connection from %s: %s", peer, e.msg);
            mq_net_close(fd);
            mq_free(&b->a, c);
            return e.code;
        }
        c->tls_hs = 1;
    }
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
    if (l)
        l->nconns++;
    c->last_rx_ms = b->now_ms;
    /* MQTT 3.1.1 3.1.4 / 5.0 4.2: a socket that sends no CONNECT in
     * reasonable time is closed; a TLS handshake has its own, shorter,
     * deadline, so that a peer stalling mid-handshake costs little. */
    c->deadline_ms = b->now_ms + (c->tls_hs && b->o.tls_handshake_timeout_ms <
                                                       b->o.connect_timeout_ms
                                      ? b->o.tls_handshake_timeout_ms
                                      : b->o.connect_timeout_ms);
    mq_broker_wake_at(b, c->deadline_ms);
    mq_blog(b, MQLITE_LOG_DEBUG, "new %sconnection from %s", c->tls ? "TLS " : "", peer);
    if (out)
        *out = c;
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
    if (c->l)
        c->l->nconns--;
    if (c->refuse)
        b->nrefusing--;
}

static void close_socket(mq_conn *c)
{
    write_out(c); /* best effort: a DISCONNECT or CONNACK may be waiting */
    mq_tls_close(c->tls);
    c->tls = NULL;
    c->tls_hs = 0;
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

/* Take c off a singly linked list of the broker (next pointer at `link`). */
static void list_drop(mq_conn **head, mq_conn *c, size_t link)
{
    for (mq_conn **pp = head; *pp; pp = (mq_conn **)((char *)*pp + link)) {
        if (*pp == c) {
            *pp = *(mq_conn **)((char *)c + link);
            return;
        }
    }
}

void mq_conn_close(mq_conn *c, int reason, int will, const char *why)
{
    if (c->state == MQ_CONN_DEAD)
        return;
    mqlite_broker *b = c->b;
    /* The record is freed at the end of the round: it must not stay on a
     * list that outlives the round. */
    if (c->more) {
        list_drop(&b->more, c, offsetof(mq_conn, more_next));
        c->more = 0;
    }
    if (c->slow) {
        list_drop(&b->slow, c, offsetof(mq_conn, slow_next));
        c->slow = 0;
    }
    if (reason >= 0 && c->version == MQLITE_V5 && c->state == MQ_CONN_ACTIVE)
        put_disconnect(c, reason);
    mq_auth_conn_gone(c);
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
    mq_auth_conn_gone(c);
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
    mq_free(a, c->username);
    mq_free(a, c->auth_method);
    mq_free(a, c->cert_cn);
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
            if (c->state == MQ_CONN_ACTIVE) {
                mq_conn_close(c, 0x8D, 1, "keep-alive timeout");
            } else if (c->tls_hs) {
                b->st.tls_failed++;
                mq_blog(b, MQLITE_LOG_NOTICE, "TLS connection from %s failed: handshake not "
                        "complete after %u ms", c->peer, (unsigned)b->o.tls_handshake_timeout_ms);
                mq_conn_close(c, -1, 0, "TLS handshake timeout");
            } else {
                mq_conn_close(c, -1, 0, c->auth ? "authentication not complete in time"
                                                : "no CONNECT in time");
            }
        } else {
            mq_broker_wake_at(b, due);
        }
        c = next;
    }
}
