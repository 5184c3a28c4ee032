"""mqlite.Client(store=...) and mqlite.Broker(persistence_file=...)
(docs/persistence.md), from Python."""
from __future__ import annotations

import pathlib
import uuid

import pytest

import mqlite


def test_client_store_names_its_owner_and_refuses_another(tmp_path: pathlib.Path) -> None:
    store = tmp_path / "client.db"
    owner = f"py-store-{uuid.uuid4().hex[:8]}"
    c = mqlite.Client(client_id=owner, store=str(store), clean_start=False)
    c.close()
    assert store.exists()
    with pytest.raises(mqlite.MqliteError) as e:
        mqlite.Client(client_id="someone-else", store=store)
    assert owner in str(e.value)


def test_messages_queued_for_a_persistent_session_survive_a_broker_restart(
        tmp_path: pathlib.Path) -> None:
    """MQTT 3.1.1 [MQTT-3.1.2-5]: QoS 1 messages for an offline persistent
    session are kept; with a persistence file, across a broker restart."""
    db = tmp_path / "broker.db"
    sid = f"py-keep-{uuid.uuid4().hex[:8]}"
    with mqlite.Broker(persistence_file=str(db)) as b:
        with mqlite.Client(client_id=sid, port=b.port, clean_start=False) as s:
            s.subscribe("pkeep/#", qos=1).wait(5)
        with mqlite.Client(client_id=f"{sid}-p", port=b.port) as p:
            p.publish("pkeep/a", b"while-away", qos=1).wait(5)
    with mqlite.Broker(persistence_file=str(db)) as b:
        with mqlite.Client(client_id=sid, port=b.port, clean_start=False) as s:
            assert s.session_present
            msg = s.receive(timeout=5)
            assert msg is not None and msg.payload == b"while-away"


def test_a_schema_1_client_store_is_migrated_and_keeps_its_rows(tmp_path: pathlib.Path) -> None:
    """The migration path (docs/persistence.md): a store written by an mqlite
    with schema 1 is brought to the current schema at open, each step recorded
    in mqlite_migrations, and its queued message is still there."""
    import sqlite3
    store = tmp_path / "old.db"
    db = sqlite3.connect(store)
    db.executescript("""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE outgoing(seq INTEGER PRIMARY KEY, pid INTEGER NOT NULL,
          qos INTEGER NOT NULL, retain INTEGER NOT NULL, state INTEGER NOT NULL,
          topic BLOB NOT NULL, props BLOB, payload BLOB NOT NULL);
        CREATE TABLE incoming_qos2(pid INTEGER PRIMARY KEY);
        CREATE TABLE subscriptions(filter BLOB PRIMARY KEY, options INTEGER NOT NULL,
          subid INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE mqlite_migrations(version INTEGER PRIMARY KEY,
          description TEXT NOT NULL, applied_at TEXT NOT NULL);
        INSERT INTO mqlite_migrations VALUES(1, 'client store: v1', '2026-01-01T00:00:00Z');
        PRAGMA application_id = 1836149827;  -- "mqlC"
        PRAGMA user_version = 1;
    """)
    db.execute("INSERT INTO meta VALUES('client_id', ?)", (b"old-client",))
    db.execute("INSERT INTO outgoing(pid, qos, retain, state, topic, payload)"
               " VALUES(7, 1, 0, 0, ?, ?)", (b"old/t", b"from schema 1"))
    db.commit()
    db.close()
    with mqlite.Broker() as b:
        with mqlite.Client(client_id="sub-old", port=b.port) as s:
            s.subscribe("old/#", qos=1).wait(5)
            c = mqlite.Client(client_id="", store=str(store), port=b.port, clean_start=False)
            with c:
                msg = s.receive(timeout=5)
                assert msg is not None and msg.payload == b"from schema 1"
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [r[0] for r in db.execute("SELECT version FROM mqlite_migrations ORDER BY version")] \
        == [1, 2]
    db.close()
