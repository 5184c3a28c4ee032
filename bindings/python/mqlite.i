/*
 * mqlite.i - the SWIG interface behind the Python package: the whole ABI of
 * mqlite.h, thin, plus a few batched helpers for the hot paths (draining
 * many events in one call). Private: users import `mqlite`, whose Pythonic
 * layer (python/mqlite/) wraps this module. No protocol logic lives here.
 *
 * Conventions:
 *  - a negative int32_t/int64_t return raises mqlite_c.Error(code, message),
 *    except where a negative value is documented data (fd, timeouts);
 *  - (const void *, size_t) inputs accept any buffer (bytes, bytearray,
 *    memoryview) without copying;
 *  - (pointer, length) outputs come back as bytes;
 *  - the GIL is released exactly in the calls that may wait.
 */
%module(package="mqlite", threads="1") mqlite_c

%{
#define SWIG_FILE_WITH_INIT
#include "mqlite.h"

static PyObject *mq_py_error;

/* Raise mqlite_c.Error(code, message). */
static void mq_py_raise(long long code, const char *msg)
{
    PyObject *args = Py_BuildValue("(Ls)", code, msg ? msg : mqlite_strerror((int32_t)code));
    if (args) {
        PyErr_SetObject(mq_py_error, args);
        Py_DECREF(args);
    }
}

static PyObject *mq_py_bytes(const void *p, size_t len)
{
    if (!p)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
}
%}

%init %{
    mq_py_error = PyErr_NewException("mqlite.mqlite_c.Error", NULL, NULL);
    if (mq_py_error) {
        Py_INCREF(mq_py_error);
        PyModule_AddObject(m, "Error", mq_py_error);
    }
%}

%include <stdint.i>

/* No default GIL release; only what may wait lets go. */
%nothread;

/* ---- return codes ---- */
%typemap(out) int32_t {
    if ($1 < 0) {
        mq_py_raise($1, NULL);
        SWIG_fail;
    }
    $result = PyLong_FromLong((long)$1);
}
%typemap(out) int64_t {
    if ($1 < 0) {
        mq_py_raise($1, NULL);
        SWIG_fail;
    }
    $result = PyLong_FromLongLong((long long)$1);
}
/* Negative values that are data, not errors. */
%typemap(out) int32_t mqlite_client_fd, int32_t mqlite_client_next_timeout_ms,
              int32_t mqlite_error_is_malformed, int32_t mqlite_error_reason,
              int32_t mqlite_error_is_fatal, int32_t mqlite_props_find {
    $result = PyLong_FromLong((long)$1);
}

/* ---- buffers in: any object with the buffer protocol ---- */
%typemap(in) (const void *buf, size_t len) (Py_buffer view, int have_view = 0) {
    if ($input == Py_None) {
        $1 = NULL;
        $2 = 0;
    } else {
        if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) != 0)
            SWIG_fail;
        have_view = 1;
        $1 = view.buf;
        $2 = (size_t)view.len;
    }
}
%typemap(freearg) (const void *buf, size_t len) {
    if (have_view$argnum)
        PyBuffer_Release(&view$argnum);
}
%typemap(typecheck) (const void *buf, size_t len) {
    $1 = PyObject_CheckBuffer($input) || $input == Py_None;
}
%apply (const void *buf, size_t len) {
    (const void *payload, size_t len), (const void *data, size_t len),
    (const void *value, size_t len), (const void *bytes, size_t len)
};

/* ---- simple out-parameters ---- */
%apply int32_t *OUTPUT { int32_t *err };
%apply int32_t *OUTPUT { int32_t *bound_port };
%apply unsigned long *OUTPUT { size_t *used, size_t *need };

/* ---- calls that may wait: release the GIL ---- */
%thread mqlite_client_poll;
%thread mqlite_broker_poll;
%thread mqlite_broker_run;
%thread mqlite_broker_load_config;
%thread mqlite_broker_listen;
%thread mqlite_client_connect;
%thread mqlite_client_wait;
%thread mqlite_client_wait_connected;
%thread mqlite_client_next_event_wait;

/* mqlite_broker_stop is called from other threads while the broker runs
 * with the GIL released: it takes no lock and touches an atomic flag. */
%thread mqlite_broker_stop;

/* ---- replaced by the helpers below (pointer + length outputs) ---- */
%ignore mqlite_packet_bytes;
%ignore mqlite_packet_topic_at;
%ignore mqlite_packet_encode;
%ignore mqlite_props_value;
%ignore mqlite_props_key;
%ignore mqlite_event_topic;
%ignore mqlite_event_payload;
%ignore mqlite_version;
%ignore mqlite_client_publish;
%ignore mqlite_client_publish_props;
%ignore mqlite_client_subscribe;
%ignore mqlite_client_unsubscribe;
%ignore mqlite_client_send_packet;
%ignore mqlite_client_take_output;
%ignore mqlite_client_new_with_allocator;
%ignore mqlite_broker_new_with_allocator;
%ignore mqlite_free;
%ignore mqlite_realloc_fn;

%include "mqlite.h"

%{
/* Raise with a C message that may quote the caller's bad bytes (so may not
 * be UTF-8): undecodable bytes are shown as escapes. */
static void mq_py_raise_quoting(long long code, const char *msg)
{
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "backslashreplace");
    PyObject *args = text ? Py_BuildValue("(LN)", code, text) : NULL;
    if (args) {
        PyErr_SetObject(mq_py_error, args);
        Py_DECREF(args);
    }
}

/* mqlite_packet_add_topic() and mqlite_props_add_pair() take NUL-terminated
 * strings, so a Python string with U+0000 inside would be cut short there
 * without a word. packet_add_topic_buf() and props_add_pair_buf() take
 * buffers (str encoded by the caller); this copies one to a C string and
 * refuses an embedded NUL with the code mqlite gives U+0000 in every
 * other MQTT string; everything else is checked by the C functions. */
static char *mq_py_cstr(PyObject *o, Py_buffer *view, int *rc)
{
    *rc = 0;
    if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE) != 0)
        return NULL;
    char *s = NULL;
    if (memchr(view->buf, 0, (size_t)view->len))
        *rc = MQLITE_ERR_UTF8_NULL;
    else if (!(s = PyMem_Malloc((size_t)view->len + 1)))
        PyErr_NoMemory();
    else {
        memcpy(s, view->buf, (size_t)view->len);
        s[view->len] = 0;
    }
    PyBuffer_Release(view);
    return s;
}
%}

%inline %{
/* The version string. */
static const char *version_string(void)
{
    const char *v;
    mqlite_version(&v);
    return v;
}

static PyObject *packet_bytes(const mqlite_packet *p, int32_t field)
{
    size_t len = 0;
    const void *v = mqlite_packet_bytes(p, field, &len);
    return mq_py_bytes(v, len);
}

static PyObject *packet_topic_at(const mqlite_packet *p, int32_t i)
{
    size_t len = 0;
    const char *v = mqlite_packet_topic_at(p, i, &len);
    return mq_py_bytes(v, len);
}

/* Decode one packet: (packet or None, used, need, err), always four items
 * (SWIG's own out-parameter list drops a NULL result). */
static PyObject *packet_decode(const void *buf, size_t len, int32_t version, int32_t flags,
                               uint32_t max_packet_size)
{
    size_t used = 0, need = 0;
    int32_t err = 0;
    mqlite_packet *p =
        mqlite_packet_decode(buf, len, version, flags, max_packet_size, &used, &need, &err);
    PyObject *obj = p ? SWIG_NewPointerObj(SWIG_as_voidptr(p), SWIGTYPE_p_mqlite_packet, 0)
                      : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("(Nnni)", obj, (Py_ssize_t)used, (Py_ssize_t)need, (int)err);
}

/* Encode to bytes; raises with the packet's message on failure. */
static PyObject *packet_encode(mqlite_packet *p)
{
    size_t len = 0;
    int32_t rc = mqlite_packet_encode(p, NULL, 0, &len);
    if (rc != MQLITE_ERR_BUFFER && rc < 0) {
        mq_py_raise(rc, mqlite_packet_errmsg(p));
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (!b)
        return NULL;
    rc = mqlite_packet_encode(p, PyBytes_AS_STRING(b), len, &len);
    if (rc < 0) {
        Py_DECREF(b);
        mq_py_raise(rc, mqlite_packet_errmsg(p));
        return NULL;
    }
    return b;
}

static PyObject *props_value(const mqlite_props *pr, int32_t i)
{
    size_t len = 0;
    const void *v = mqlite_props_value(pr, i, &len);
    return mq_py_bytes(v, len);
}

static PyObject *props_key(const mqlite_props *pr, int32_t i)
{
    size_t len = 0;
    const char *v = mqlite_props_key(pr, i, &len);
    return mq_py_bytes(v, len);
}

/* All properties as a list of (id, value): int, bytes, or (key, value). */
static PyObject *props_list(const mqlite_props *pr)
{
    int32_t n = mqlite_props_count(pr);
    PyObject *l = PyList_New(n > 0 ? n : 0);
    if (!l)
        return NULL;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = mqlite_props_id(pr, i);
        int32_t t = mqlite_property_type(id);
        PyObject *v;
        size_t len = 0, klen = 0;
        if (t == MQLITE_PTYPE_PAIR) {
            const char *k = mqlite_props_key(pr, i, &klen);
            const void *val = mqlite_props_value(pr, i, &len);
            v = Py_BuildValue("(y#y#)", k, (Py_ssize_t)klen, (const char *)val, (Py_ssize_t)len);
        } else if (t == MQLITE_PTYPE_UTF8 || t == MQLITE_PTYPE_BINARY) {
            const void *val = mqlite_props_value(pr, i, &len);
            v = PyBytes_FromStringAndSize((const char *)val, (Py_ssize_t)len);
        } else {
            v = PyLong_FromLongLong((long long)mqlite_props_int(pr, i));
        }
        PyObject *item = v ? Py_BuildValue("(iN)", (int)id, v) : NULL;
        if (!item) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, item);
    }
    return l;
}

/* mqlite_packet_add_topic() from a buffer; raises with the packet's message. */
static PyObject *packet_add_topic_buf(mqlite_packet *p, PyObject *filter, int32_t options)
{
    Py_buffer v;
    int rc;
    char *f = mq_py_cstr(filter, &v, &rc);
    if (!f) {
        if (rc)
            mq_py_raise(rc, NULL);
        return NULL;
    }
    rc = mqlite_packet_add_topic(p, f, options);
    PyMem_Free(f);
    if (rc < 0) {
        mq_py_raise_quoting(rc, mqlite_packet_errmsg(p));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* mqlite_props_add_pair() from two buffers. */
static PyObject *props_add_pair_buf(mqlite_props *pr, PyObject *key, PyObject *value)
{
    Py_buffer kv, vv;
    int rc;
    char *k = mq_py_cstr(key, &kv, &rc), *v = NULL;
    if (k)
        v = mq_py_cstr(value, &vv, &rc);
    if (!k || !v) {
        PyMem_Free(k);
        if (rc)
            mq_py_raise(rc, NULL);
        return NULL;
    }
    rc = mqlite_props_add_pair(pr, k, v);
    PyMem_Free(k);
    PyMem_Free(v);
    if (rc < 0) {
        mq_py_raise(rc, NULL);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *client_raise(mqlite_client *c, int32_t rc)
{
    mq_py_raise(rc, mqlite_client_errmsg(c));
    return NULL;
}

/* Publish; returns the packet id (0 for QoS 0). */
static PyObject *client_publish(mqlite_client *c, const char *topic, const void *payload,
                                size_t len, int32_t qos, int32_t retain,
                                const mqlite_props *props)
{
    int32_t pid = 0;
    int32_t rc = mqlite_client_publish_props(c, topic, payload, len, qos, retain, props, &pid);
    if (rc < 0)
        return client_raise(c, rc);
    return PyLong_FromLong(pid);
}

static PyObject *client_subscribe(mqlite_client *c, const char *filter, int32_t options)
{
    int32_t pid = 0;
    int32_t rc = mqlite_client_subscribe(c, filter, options, &pid);
    return rc < 0 ? client_raise(c, rc) : PyLong_FromLong(pid);
}

static PyObject *client_unsubscribe(mqlite_client *c, const char *filter)
{
    int32_t pid = 0;
    int32_t rc = mqlite_client_unsubscribe(c, filter, &pid);
    return rc < 0 ? client_raise(c, rc) : PyLong_FromLong(pid);
}

static PyObject *client_send_packet(mqlite_client *c, mqlite_packet *p)
{
    int32_t pid = 0;
    int32_t rc = mqlite_client_send_packet(c, p, &pid);
    return rc < 0 ? client_raise(c, rc) : PyLong_FromLong(pid);
}

static PyObject *client_take_output(mqlite_client *c, size_t cap)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!b)
        return NULL;
    size_t n = mqlite_client_take_output(c, PyBytes_AS_STRING(b), cap);
    if (_PyBytes_Resize(&b, (Py_ssize_t)n) != 0)
        return NULL;
    return b;
}

/* One event as a tuple:
 * (type, packet_id, reason, error, text, topic, payload, qos, retain, dup,
 *  session_present, props, codes)
 * topic/payload are bytes or None, props a list (see props_list) or None,
 * codes a tuple of ints or None. */
static PyObject *event_tuple(const mqlite_event *ev)
{
    int32_t type = mqlite_event_type(ev);
    size_t tl = 0, pl = 0;
    const char *topic = mqlite_event_topic(ev, &tl);
    const void *payload = mqlite_event_payload(ev, &pl);
    const mqlite_props *pr = mqlite_event_props(ev);
    PyObject *props = mqlite_props_count(pr) > 0 ? props_list(pr) : (Py_INCREF(Py_None), Py_None);
    if (!props)
        return NULL;
    PyObject *codes;
    int32_t n = mqlite_event_count(ev);
    if (n > 0) {
        codes = PyTuple_New(n);
        if (!codes) {
            Py_DECREF(props);
            return NULL;
        }
        for (int32_t i = 0; i < n; i++)
            PyTuple_SET_ITEM(codes, i, PyLong_FromLong(mqlite_event_reason_at(ev, i)));
    } else {
        Py_INCREF(Py_None);
        codes = Py_None;
    }
    return Py_BuildValue("(iiiisNNiiiiNN)", (int)type, (int)mqlite_event_packet_id(ev),
                         (int)mqlite_event_reason(ev), (int)mqlite_event_error(ev),
                         mqlite_event_text(ev), mq_py_bytes(topic, tl), mq_py_bytes(payload, pl),
                         (int)mqlite_event_qos(ev), (int)mqlite_event_retain(ev),
                         (int)mqlite_event_dup(ev), (int)mqlite_event_session_present(ev), props,
                         codes);
}

/* Take up to `max` pending events as a list of event tuples. */
static PyObject *client_drain(mqlite_client *c, int32_t max)
{
    PyObject *l = PyList_New(0);
    if (!l)
        return NULL;
    for (int32_t i = 0; i < max; i++) {
        const mqlite_event *ev = mqlite_client_next_event(c);
        if (!ev)
            break;
        PyObject *t = event_tuple(ev);
        if (!t || PyList_Append(l, t) != 0) {
            Py_XDECREF(t);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(t);
    }
    return l;
}

/* Listen; returns the bound port. */
static PyObject *broker_listen(mqlite_broker *b, const char *host, int32_t port)
{
    int32_t bound = 0, rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mqlite_broker_listen(b, host, port, &bound);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        mq_py_raise(rc, mqlite_broker_errmsg(b));
        return NULL;
    }
    return PyLong_FromLong(bound);
}
%}

/* ---- the Pythonic client's hot paths (python/mqlite/_core.py, client.py,
 * aio.py): one C call per loop round, per publish and per batch, so that no
 * per-message work is left to Python but building the Message itself. No
 * protocol logic: these only sequence mqlite_client_* calls. ---- */
%{
#include <poll.h>
#include <unistd.h>

/* A topic or filter argument as a NUL-terminated C string: a str (encoded
 * as UTF-8) or bytes. Returns 0, or a negative mqlite code for what mqlite
 * refuses in every other MQTT string (U+0000, lone surrogates), or -1000
 * with a Python exception set (wrong type). *msg says why for codes. */
static int mq_py_topic(PyObject *o, const char **s, const char **msg)
{
    Py_ssize_t n = 0;
    if (PyUnicode_Check(o)) {
        *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!*s) {
            PyErr_Clear();
            *msg = "topic: a lone surrogate is not valid UTF-8 (MQTT 5.0 [MQTT-1.5.4-1])";
            return MQLITE_ERR_UTF8_SURROGATE;
        }
    } else if (PyBytes_Check(o)) {
        *s = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    } else {
        PyErr_Format(PyExc_TypeError, "topic must be str, not %.100s", Py_TYPE(o)->tp_name);
        return -1000;
    }
    if (memchr(*s, 0, (size_t)n)) {
        *msg = "topic: U+0000 is not allowed in an MQTT string (MQTT 5.0 [MQTT-1.5.4-2])";
        return MQLITE_ERR_UTF8_NULL;
    }
    return 0;
}

static PyObject *mq_py_bool(int v)
{
    PyObject *r = v ? Py_True : Py_False;
    Py_INCREF(r);
    return r;
}

/* One event as a tuple for python/mqlite/_core.py:
 *   MESSAGE: (4, topic str, payload bytes, qos, retain, dup, packet_id, props)
 *   others:  (type, packet_id, reason, error, text, session_present, props,
 *             codes, topic bytes, payload bytes)
 * props is None or a props_list(); codes None or a tuple of ints. */
static PyObject *mq_py_event(const mqlite_event *ev)
{
    int32_t type = mqlite_event_type(ev);
    const mqlite_props *pr = mqlite_event_props(ev);
    PyObject *props = mqlite_props_count(pr) > 0 ? props_list(pr) : (Py_INCREF(Py_None), Py_None);
    if (!props)
        return NULL;
    size_t tl = 0, pl = 0;
    const char *topic = mqlite_event_topic(ev, &tl);
    const void *payload = mqlite_event_payload(ev, &pl);
    if (type == MQLITE_EVENT_MESSAGE) {
        PyObject *t = PyUnicode_DecodeUTF8(topic ? topic : "", (Py_ssize_t)tl, "strict");
        PyObject *p = PyBytes_FromStringAndSize(payload ? (const char *)payload : "",
                                                (Py_ssize_t)pl);
        if (!t || !p) {
            Py_XDECREF(t);
            Py_XDECREF(p);
            Py_DECREF(props);
            return NULL;
        }
        return Py_BuildValue("(iNNiNNiN)", (int)type, t, p, (int)mqlite_event_qos(ev),
                             mq_py_bool(mqlite_event_retain(ev)), mq_py_bool(mqlite_event_dup(ev)),
                             (int)mqlite_event_packet_id(ev), props);
    }
    PyObject *codes;
    int32_t n = mqlite_event_count(ev);
    if (n > 0) {
        codes = PyTuple_New(n);
        if (!codes) {
            Py_DECREF(props);
            return NULL;
        }
        for (int32_t i = 0; i < n; i++)
            PyTuple_SET_ITEM(codes, i, PyLong_FromLong(mqlite_event_reason_at(ev, i)));
    } else {
        Py_INCREF(Py_None);
        codes = Py_None;
    }
    /* The text may quote what the server sent (a reason string): never
     * fail on it. */
    const char *text = mqlite_event_text(ev);
    PyObject *txt = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    if (!txt) {
        Py_DECREF(props);
        Py_DECREF(codes);
        return NULL;
    }
    return Py_BuildValue("(iiiiNNNNNN)", (int)type, (int)mqlite_event_packet_id(ev),
                         (int)mqlite_event_reason(ev), (int)mqlite_event_error(ev), txt,
                         mq_py_bool(mqlite_event_session_present(ev)), props, codes,
                         mq_py_bytes(topic, tl), mq_py_bytes(payload, pl));
}

static PyObject *mq_py_drain(mqlite_client *c, int32_t max)
{
    PyObject *l = PyList_New(0);
    if (!l)
        return NULL;
    for (int32_t i = 0; i < max; i++) {
        const mqlite_event *ev = mqlite_client_next_event(c);
        if (!ev)
            break;
        PyObject *t = mq_py_event(ev);
        if (!t || PyList_Append(l, t) != 0) {
            Py_XDECREF(t);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(t);
    }
    return l;
}

static PyObject *mq_py_client_raise(mqlite_client *c, int32_t rc, const char *msg)
{
    mq_py_raise(rc, msg ? msg : mqlite_client_errmsg(c));
    return NULL;
}
%}

%inline %{
/* Take up to `max` events as mq_py_event() tuples. */
static PyObject *client_events(mqlite_client *c, int32_t max)
{
    return mq_py_drain(c, max);
}

/* mqlite_client_io(readable, writable), then take up to `max` events:
 * (rc, events). A lost connection is an event; rc only echoes io's. */
static PyObject *client_io_events(mqlite_client *c, int32_t readable, int32_t writable,
                                  int32_t max)
{
    int32_t rc = mqlite_client_io(c, readable, writable);
    PyObject *l = mq_py_drain(c, max);
    return l ? Py_BuildValue("(iN)", (int)rc, l) : NULL;
}

/* One round of the synchronous client's loop: wait (GIL released) up to
 * timeout_ms (-1: no limit) for the client's socket, its next deadline, or
 * `wake_fd` (an eventfd another thread may write to; -1: none), then
 * mqlite_client_io() and take up to `max` events: (woken, events). Like
 * mqlite_client_poll() it does not wait while events are queued. */
static PyObject *client_loop(mqlite_client *c, int32_t wake_fd, int32_t timeout_ms, int32_t max)
{
    struct pollfd p[2];
    int n = 0, fdi = -1, wki = -1, woke = 0, readable = 0, writable = 0, r;
    if (mqlite_client_pending_events(c) > 0)
        timeout_ms = 0;
    int32_t t = mqlite_client_next_timeout_ms(c);
    if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
        timeout_ms = t;
    int32_t fd = mqlite_client_fd(c);
    if (fd >= 0) {
        p[n].fd = fd;
        p[n].events = POLLIN | (mqlite_client_want_write(c) ? POLLOUT : 0);
        p[n].revents = 0;
        fdi = n++;
    }
    if (wake_fd >= 0) {
        p[n].fd = wake_fd;
        p[n].events = POLLIN;
        p[n].revents = 0;
        wki = n++;
    }
    if (n == 0 && timeout_ms < 0)
        timeout_ms = 0; /* nothing could ever end the wait */
    Py_BEGIN_ALLOW_THREADS
    r = poll(p, (nfds_t)n, timeout_ms);
    if (r > 0 && wki >= 0 && (p[wki].revents & POLLIN)) {
        uint64_t v;
        ssize_t got = read(wake_fd, &v, sizeof v);
        (void)got;
        woke = 1;
    }
    Py_END_ALLOW_THREADS
    if (r > 0 && fdi >= 0) {
        readable = (p[fdi].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        writable = (p[fdi].revents & (POLLOUT | POLLERR)) != 0;
    }
    mqlite_client_io(c, readable, writable);
    PyObject *l = mq_py_drain(c, max);
    return l ? Py_BuildValue("(NN)", mq_py_bool(woke), l) : NULL;
}

/* Publish (topic: str or bytes) and, with `flush`, hand it to the socket at
 * once (mqlite_client_io without waiting). Returns the packet id (0 for
 * QoS 0); raises mqlite_c.Error with the client's message. */
static PyObject *client_publish_io(mqlite_client *c, PyObject *topic, const void *payload,
                                   size_t len, int32_t qos, int32_t retain,
                                   const mqlite_props *props, int32_t flush)
{
    const char *t = NULL, *msg = NULL;
    int rc = mq_py_topic(topic, &t, &msg);
    if (rc == -1000)
        return NULL;
    if (rc < 0)
        return mq_py_client_raise(c, rc, msg);
    int32_t pid = 0;
    rc = mqlite_client_publish_props(c, t, payload, len, qos, retain, props, &pid);
    if (rc < 0)
        return mq_py_client_raise(c, rc, NULL);
    if (flush && mqlite_client_fd(c) >= 0)
        mqlite_client_io(c, 0, 0);
    return PyLong_FromLong(pid);
}

/* Publish items[start:] of a list or tuple: payloads (bytes-like or str)
 * to `topic`, or (topic, payload) pairs when topic is None; the socket is
 * fed every 64 messages and at the end. Stops at the first failure.
 * Returns (next, rc, msg): rc 0 when all were queued, else the code of the
 * failure at items[next] (MQLITE_ERR_QUEUE_FULL: wait for room, resume
 * from `next`) and msg its message (None: in mqlite_client_errmsg());
 * raises TypeError for an item of the wrong type. */
static PyObject *client_publish_many(mqlite_client *c, PyObject *topic, PyObject *items,
                                     int64_t start, int32_t qos, int32_t retain,
                                     const mqlite_props *props)
{
    if (!PyList_Check(items) && !PyTuple_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "items must be a list or a tuple");
        return NULL;
    }
    const char *t = NULL, *msg = NULL;
    int rc = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items), i = start < 0 ? 0 : (Py_ssize_t)start;
    if (topic != Py_None) {
        rc = mq_py_topic(topic, &t, &msg);
        if (rc == -1000)
            return NULL;
        if (rc < 0)
            return Py_BuildValue("(nis)", i, rc, msg);
    }
    int fd = mqlite_client_fd(c) >= 0;
    for (; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(items, i), *pl = it;
        const char *tt = t;
        if (topic == Py_None) {
            if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2) {
                PyErr_Format(PyExc_TypeError, "items[%zd] must be a (topic, payload) tuple", i);
                return NULL;
            }
            rc = mq_py_topic(PyTuple_GET_ITEM(it, 0), &tt, &msg);
            if (rc == -1000)
                return NULL;
            if (rc < 0)
                break;
            pl = PyTuple_GET_ITEM(it, 1);
        }
        const void *data;
        Py_ssize_t dlen;
        Py_buffer view;
        int have_view = 0;
        if (PyBytes_Check(pl)) {
            data = PyBytes_AS_STRING(pl);
            dlen = PyBytes_GET_SIZE(pl);
        } else if (PyUnicode_Check(pl)) {
            data = PyUnicode_AsUTF8AndSize(pl, &dlen);
            if (!data)
                return NULL;
        } else {
            if (PyObject_GetBuffer(pl, &view, PyBUF_SIMPLE) != 0) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "payload of items[%zd] must be bytes-like or "
                             "str, not %.100s", i, Py_TYPE(pl)->tp_name);
                return NULL;
            }
            have_view = 1;
            data = view.buf;
            dlen = view.len;
        }
        rc = mqlite_client_publish_props(c, tt, data, (size_t)dlen, qos, retain, props, NULL);
        if (have_view)
            PyBuffer_Release(&view);
        if (rc < 0)
            break;
        if (fd && (i & 63) == 63)
            mqlite_client_io(c, 0, 0);
    }
    if (mqlite_client_fd(c) >= 0)
        mqlite_client_io(c, 0, 0);
    if (rc < 0 && msg)
        return Py_BuildValue("(nis)", i, rc, msg);
    return Py_BuildValue("(niO)", i, rc < 0 ? rc : 0, Py_None);
}
%}

%pythoncode %{
Error = _mqlite_c.Error
%}
