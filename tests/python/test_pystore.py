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
