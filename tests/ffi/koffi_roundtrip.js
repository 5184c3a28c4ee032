#!/usr/bin/env node
/*
 * ABI proof from Node.js with koffi (an FFI from the npm registry; no C
 * compiler, no node-gyp: koffi ships its prebuilt addon in the package).
 *
 * The functions are declared with koffi's C-prototype strings, in the
 * header's own words: opaque handles via koffi.opaque(), the allocator as
 * koffi.proto(), out-parameters marked _Out_. The scenario is the one of
 * tests/ffi/ctypes_roundtrip.py: an embedded broker on port 0 driven by
 * mqlite_broker_poll() in the same loop as two clients (3.1.1 and 5.0),
 * QoS 0/1/2 both ways, text, binary with NUL bytes, empty and 64 KiB
 * payloads compared byte for byte, events drained, handles freed; once with
 * plain mqlite_*_new() and once with mqlite_*_new_with_allocator() and a
 * counting allocator written in JavaScript (a registered koffi callback
 * over libc realloc/free), which must end with 0 live allocations.
 *
 * Usage: node koffi_roundtrip.js [path/to/libmqlite.so.0]
 * koffi is looked up as usual (NODE_PATH / node_modules); tests/python/
 * test_ffi.py installs it into the build tree. Exit status 0 and a last
 * line "koffi: OK" on success. Every loop is bounded; traffic is loopback.
 */
'use strict';

const path = require('path');
const koffi = require('koffi');

const TAG = 'koffi';
const MAX_ROUNDS = 20000; // each round waits at most 1 ms in mqlite_broker_poll

class Failure extends Error {}

function check(cond, what) {
    if (!cond)
        throw new Failure(what);
}

const libPath = process.argv[2] ||
    path.join(process.env.MQLITE_BUILD_DIR || 'build', 'lib', 'libmqlite.so.0');

// ---- declarations, as in mqlite.h ----
koffi.opaque('mqlite_broker');
koffi.opaque('mqlite_client');
koffi.opaque('mqlite_event');
koffi.proto('void *mqlite_realloc_fn(void *ud, void *ptr, size_t size)');

const K = {
    OPT_PROTOCOL: 1, BOPT_SYS_INTERVAL_S: 12, BOPT_LOG_LEVEL: 14, LOG_ERROR: 1,
    ERR_STATE: -6, ERR_TOPIC_NAME: -122, STATE_IDLE: 0,
    EV_CONNECTED: 1, EV_CONNECT_FAILED: 2, EV_DISCONNECTED: 3, EV_MESSAGE: 4,
    EV_PUBLISHED: 5, EV_PUBLISH_LOST: 6, EV_SUBACK: 7, EV_UNSUBACK: 8, EV_ERROR: 9,
};

const PROTOTYPES = [
    'int32_t mqlite_version(_Out_ const char **text)',
    'const char *mqlite_strerror(int32_t code)',
    'const char *mqlite_error_name(int32_t code)',
    'const char *mqlite_event_type_name(int32_t type)',
    'mqlite_broker *mqlite_broker_new(void)',
    'mqlite_broker *mqlite_broker_new_with_allocator(mqlite_realloc_fn *fn, void *ud)',
    'int32_t mqlite_broker_set_int(mqlite_broker *b, int32_t option, int64_t value)',
    'int32_t mqlite_broker_listen(mqlite_broker *b, const char *host, int32_t port, ' +
        '_Out_ int32_t *bound_port)',
    'int32_t mqlite_broker_port(const mqlite_broker *b, int32_t i)',
    'int32_t mqlite_broker_poll(mqlite_broker *b, int32_t timeout_ms)',
    'void mqlite_broker_stop(mqlite_broker *b)',
    'const char *mqlite_broker_errmsg(const mqlite_broker *b)',
    'void mqlite_broker_free(mqlite_broker *b)',
    'mqlite_client *mqlite_client_new(const char *client_id)',
    'mqlite_client *mqlite_client_new_with_allocator(const char *client_id, ' +
        'mqlite_realloc_fn *fn, void *ud)',
    'int32_t mqlite_client_set_int(mqlite_client *c, int32_t option, int64_t value)',
    'int64_t mqlite_client_get_int(mqlite_client *c, int32_t option)',
    'int32_t mqlite_client_connect(mqlite_client *c, const char *host, int32_t port)',
    'int32_t mqlite_client_poll(mqlite_client *c, int32_t timeout_ms)',
    'int32_t mqlite_client_state(const mqlite_client *c)',
    'int32_t mqlite_client_subscribe(mqlite_client *c, const char *filter, int32_t options, ' +
        '_Out_ int32_t *packet_id)',
    'int32_t mqlite_client_unsubscribe(mqlite_client *c, const char *filter, ' +
        '_Out_ int32_t *packet_id)',
    'int32_t mqlite_client_publish(mqlite_client *c, const char *topic, const void *payload, ' +
        'size_t len, int32_t qos, int32_t retain, _Out_ int32_t *packet_id)',
    'int32_t mqlite_client_disconnect(mqlite_client *c, int32_t reason)',
    'const char *mqlite_client_errmsg(const mqlite_client *c)',
    'const mqlite_event *mqlite_client_next_event(mqlite_client *c)',
    'int32_t mqlite_client_pending_events(const mqlite_client *c)',
    'void mqlite_client_free(mqlite_client *c)',
    'int32_t mqlite_event_type(const mqlite_event *ev)',
    'int32_t mqlite_event_packet_id(const mqlite_event *ev)',
    'int32_t mqlite_event_reason(const mqlite_event *ev)',
    'int32_t mqlite_event_error(const mqlite_event *ev)',
    'const char *mqlite_event_text(const mqlite_event *ev)',
    'const char *mqlite_event_topic(const mqlite_event *ev, _Out_ size_t *len)',
    'const void *mqlite_event_payload(const mqlite_event *ev, _Out_ size_t *len)',
    'int32_t mqlite_event_qos(const mqlite_event *ev)',
    'int32_t mqlite_event_count(const mqlite_event *ev)',
    'int32_t mqlite_event_reason_at(const mqlite_event *ev, int32_t i)',
];

const lib = koffi.load(libPath);
const L = {};
for (const proto of PROTOTYPES) {
    const name = /(mqlite_\w+)\s*\(/.exec(proto)[1];
    L[name] = lib.func(proto);
}

function payloads(qos) {
    const big = Buffer.alloc(65536);
    for (let i = 0; i < big.length; i++)
        big[i] = (i * 7 + qos) & 0xff;
    return [Buffer.from('hello qos ' + qos),
            Buffer.from([0, 98, 105, 110, 0, 97, 114, 121, 255, 0, 1, qos, 0]),
            Buffer.alloc(0), big];
}

// Copy what we keep: accessors' pointers die at the next next_event.
function copyEvent(ev) {
    const n = [0];
    const e = {
        type: L.mqlite_event_type(ev), pid: L.mqlite_event_packet_id(ev),
        reason: L.mqlite_event_reason(ev), error: L.mqlite_event_error(ev),
        text: L.mqlite_event_text(ev), qos: L.mqlite_event_qos(ev), codes: [],
    };
    e.topic = L.mqlite_event_topic(ev, n);
    const p = L.mqlite_event_payload(ev, n);
    e.payload = p === null ? null
        : n[0] === 0 ? Buffer.alloc(0) : Buffer.from(koffi.decode(p, 'uint8_t', n[0]));
    for (let i = 0; i < L.mqlite_event_count(ev); i++)
        e.codes.push(L.mqlite_event_reason_at(ev, i));
    if (e.type === K.EV_CONNECT_FAILED || e.type === K.EV_ERROR || e.type === K.EV_PUBLISH_LOST)
        throw new Failure(`unexpected event ${L.mqlite_event_type_name(e.type)}: ${e.text}`);
    return e;
}

class Session {
    constructor(b, clients) {
        this.b = b;
        this.clients = clients;
        this.events = {};
        for (const name of Object.keys(clients))
            this.events[name] = [];
    }

    drain(name) {
        const c = this.clients[name];
        for (let i = 0; i < 100000; i++) {
            const ev = L.mqlite_client_next_event(c);
            if (ev === null)
                return;
            this.events[name].push(copyEvent(ev));
        }
        throw new Failure('event queue never emptied');
    }

    pump() {
        let rc = L.mqlite_broker_poll(this.b, 1);
        check(rc === 0, `mqlite_broker_poll: ${rc} ${L.mqlite_broker_errmsg(this.b)}`);
        for (const [name, c] of Object.entries(this.clients)) {
            rc = L.mqlite_client_poll(c, 0);
            check(rc >= 0, `${name}: mqlite_client_poll: ${rc} ${L.mqlite_client_errmsg(c)}`);
            this.drain(name);
        }
    }

    take(name, type) {
        return this.events[name].filter(e => e.type === type);
    }

    allHave(type) {
        return Object.keys(this.clients).every(n => this.take(n, type).length > 0);
    }

    wait(cond, what) {
        for (let i = 0; i < MAX_ROUNDS; i++) {
            if (cond())
                return;
            this.pump();
        }
        throw new Failure('timed out waiting for ' + what);
    }
}

function scenario(newBroker, newClient, label) {
    const b = newBroker();
    check(b !== null, 'mqlite_broker_new returned NULL');
    const clients = {};
    let stopped;
    try {
        check(L.mqlite_broker_set_int(b, K.BOPT_SYS_INTERVAL_S, 0) === 0, 'set $SYS');
        check(L.mqlite_broker_set_int(b, K.BOPT_LOG_LEVEL, K.LOG_ERROR) === 0, 'log level');
        const port = [-1];
        let rc = L.mqlite_broker_listen(b, '127.0.0.1', 0, port);
        check(rc === 0, `listen: ${rc} ${L.mqlite_broker_errmsg(b)}`);
        check(port[0] > 0 && L.mqlite_broker_port(b, 0) === port[0], 'bound port');
        for (const [name, version] of [['a', 4], ['b', 5]]) {
            const c = newClient(`ffi-${TAG}-${name}`);
            check(c !== null, 'mqlite_client_new returned NULL');
            clients[name] = c;
            check(L.mqlite_client_set_int(c, K.OPT_PROTOCOL, version) === 0, 'protocol');
            check(Number(L.mqlite_client_get_int(c, K.OPT_PROTOCOL)) === version, 'get protocol');
            rc = L.mqlite_client_connect(c, '127.0.0.1', port[0]);
            check(rc === 0, `connect: ${rc} ${L.mqlite_client_errmsg(c)}`);
        }
        const s = new Session(b, clients);
        s.wait(() => s.allHave(K.EV_CONNECTED), 'CONNECTED');

        // A usage error reaches the caller as a code and a message.
        rc = L.mqlite_client_publish(clients.a, 'bad/#', null, 0, 0, 0, null);
        check(rc === K.ERR_TOPIC_NAME, 'wildcard topic: ' + rc);
        check(L.mqlite_error_name(rc) === 'MQLITE_ERR_TOPIC_NAME', 'error name');
        check(L.mqlite_client_errmsg(clients.a).length > 0 && L.mqlite_strerror(rc).length > 0,
              'error words');

        const subIds = {};
        for (const [name, c] of Object.entries(clients)) {
            const pid = [0];
            rc = L.mqlite_client_subscribe(c, `ffi/to-${name}/#`, 2, pid);
            check(rc === 0 && pid[0] > 0, 'subscribe: ' + rc);
            subIds[name] = pid[0];
        }
        s.wait(() => s.allHave(K.EV_SUBACK), 'SUBACK');
        for (const name of Object.keys(clients)) {
            const ev = s.take(name, K.EV_SUBACK)[0];
            check(ev.pid === subIds[name] && ev.codes.length === 1 && ev.codes[0] === 2,
                  'SUBACK of ' + name);
        }

        const expected = new Map();
        const acks = { a: new Set(), b: new Set() };
        let nAcks = 0, biggest = 0;
        for (const [sender, receiver] of [['a', 'b'], ['b', 'a']]) {
            for (const qos of [0, 1, 2]) {
                payloads(qos).forEach((data, i) => {
                    const topic = `ffi/to-${receiver}/q${qos}/${i}`;
                    const pid = [-1];
                    const r = L.mqlite_client_publish(clients[sender], topic, data, data.length,
                                                      qos, 0, pid);
                    check(r === 0, `publish: ${r} ${L.mqlite_client_errmsg(clients[sender])}`);
                    check((pid[0] === 0) === (qos === 0), `packet id ${pid[0]} for QoS ${qos}`);
                    if (qos) {
                        acks[sender].add(pid[0]);
                        nAcks++;
                    }
                    expected.set(`${receiver} ${topic}`, { data, qos });
                    biggest = Math.max(biggest, data.length);
                });
            }
        }
        const nMsgs = expected.size;
        s.wait(() => {
            let got = 0, acked = 0;
            for (const name of Object.keys(clients)) {
                got += s.take(name, K.EV_MESSAGE).length;
                acked += s.take(name, K.EV_PUBLISHED).length;
            }
            return got >= nMsgs && acked >= nAcks;
        }, `${nMsgs} messages and ${nAcks} acknowledgements`);
        for (const name of Object.keys(clients)) {
            const seen = new Set();
            for (const ev of s.take(name, K.EV_MESSAGE)) {
                const key = `${name} ${ev.topic}`;
                const want = expected.get(key);
                check(want && !seen.has(key), 'unexpected or duplicate message ' + key);
                seen.add(key);
                check(Buffer.compare(ev.payload, want.data) === 0,
                      `payload of ${ev.topic} differs (${ev.payload.length} vs ` +
                      `${want.data.length} bytes)`);
                check(ev.qos === want.qos, 'QoS of ' + ev.topic);
            }
            const published = s.take(name, K.EV_PUBLISHED);
            check(published.length === acks[name].size, 'acknowledgements of ' + name);
            for (const ev of published)
                check(acks[name].has(ev.pid) && ev.error === 0 && ev.reason < 0x80,
                      'ack ' + ev.pid);
        }

        for (const [name, c] of Object.entries(clients))
            check(L.mqlite_client_unsubscribe(c, `ffi/to-${name}/#`, null) === 0, 'unsubscribe');
        s.wait(() => s.allHave(K.EV_UNSUBACK), 'UNSUBACK');
        for (const c of Object.values(clients))
            check(L.mqlite_client_disconnect(c, 0) === 0, 'disconnect');
        s.wait(() => s.allHave(K.EV_DISCONNECTED), 'DISCONNECTED');
        for (const [name, c] of Object.entries(clients)) {
            check(s.take(name, K.EV_DISCONNECTED)[0].error === 0, 'clean disconnect of ' + name);
            check(L.mqlite_client_state(c) === K.STATE_IDLE, 'idle after disconnect');
            s.drain(name);
            check(L.mqlite_client_pending_events(c) === 0, 'events drained');
        }
        console.log(`${TAG}[${label}]: ${nMsgs} messages byte-exact (QoS 0/1/2, both ways, ` +
                    `empty to ${biggest} bytes), ${nAcks} QoS>0 acknowledgements`);
    } finally {
        for (const c of Object.values(clients))
            L.mqlite_client_free(c);
        L.mqlite_broker_stop(b);
        stopped = L.mqlite_broker_poll(b, 0);
        L.mqlite_broker_free(b);
    }
    check(stopped === K.ERR_STATE, 'mqlite_broker_poll after mqlite_broker_stop: ' + stopped);
}

function main() {
    const text = [null];
    const number = L.mqlite_version(text);
    check(number >= 100 && text[0], 'mqlite_version');
    console.log(`${TAG}: mqlite ${text[0]} (${number}) from ${libPath} (koffi ${koffi.version})`);

    scenario(() => L.mqlite_broker_new(), id => L.mqlite_client_new(id), 'malloc');

    // A counting allocator in JavaScript over libc's realloc/free.
    const libc = koffi.load('libc.so.6');
    const realloc = libc.func('void *realloc(void *ptr, size_t size)');
    const free = libc.func('void free(void *ptr)');
    let live = 0, total = 0;
    const fn = koffi.register((ud, ptr, size) => {
        if (size === 0) {
            if (ptr !== null) {
                live--;
                free(ptr);
            }
            return null;
        }
        const q = realloc(ptr, size);
        if (q !== null && ptr === null) {
            live++;
            total++;
        }
        return q;
    }, 'mqlite_realloc_fn *');
    try {
        scenario(() => L.mqlite_broker_new_with_allocator(fn, null),
                 id => L.mqlite_client_new_with_allocator(id, fn, null), 'allocator');
    } finally {
        koffi.unregister(fn);
    }
    check(total > 0, 'the allocator was never called');
    check(live === 0, `${live} allocations never freed`);
    console.log(`${TAG}[allocator]: ${total} allocations through the JavaScript allocator, ` +
                '0 live after free');
    console.log(`${TAG}: OK`);
}

try {
    main();
} catch (e) {
    if (!(e instanceof Failure))
        throw e;
    console.error(`${TAG}: FAIL: ${e.message}`);
    process.exitCode = 1;
}
