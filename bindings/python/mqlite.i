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

%pythoncode %{
Error = _mqlite_c.Error
%}
