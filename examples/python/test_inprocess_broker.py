"""Testing MQTT code against an in-process broker: the `mqlite_broker`
fixture of mqlite.testing gives each test its own broker on a free port.

Run it with `pytest examples/python/test_inprocess_broker.py` (the package
must be importable). In a project, put `pytest_plugins = ["mqlite.testing"]`
in the top-level conftest.py instead of the import below.
"""
from __future__ import annotations

import asyncio
import json

import mqlite
from mqlite.testing import break_connection, mqlite_broker  # noqa: F401 (a fixture)


def thermostat(client: mqlite.Client, setpoint: float) -> None:
    """The code under test: read temperatures, publish heater commands."""
    for msg in client.messages(timeout=2):
        temp = msg.json()["temp_c"]
        client.publish("home/heater", "on" if temp < setpoint else "off", qos=1).wait(5)
        if msg.json().get("last"):
            return


def test_thermostat_switches_the_heater(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port) as device, \
            mqlite.Client(port=mqlite_broker.port) as observer:
        device.subscribe("home/temp", qos=1).wait(5)
        observer.subscribe("home/heater", qos=1).wait(5)
        for t, last in ((18.0, False), (22.5, True)):
            observer.publish("home/temp", json.dumps({"temp_c": t, "last": last}), qos=1)
        thermostat(device, setpoint=20.0)
        assert [m.text for m in observer.messages(timeout=1)] == ["on", "off"]


def test_last_will_on_a_broken_connection(mqlite_broker: mqlite.Broker) -> None:
    with mqlite.Client(port=mqlite_broker.port) as watcher:
        watcher.subscribe("home/+/status", qos=1).wait(5)
        device = mqlite.Client(port=mqlite_broker.port,
                               will={"topic": "home/device/status", "payload": "offline"})
        device.connect(timeout=5)
        break_connection(device)  # as a network failure would
        msg = watcher.receive(timeout=5)
        assert msg is not None and msg.text == "offline"
        device.close()


def test_asyncio_client(mqlite_broker: mqlite.Broker) -> None:
    async def main() -> str:
        async with mqlite.AsyncClient(port=mqlite_broker.port, version=5) as c:
            await c.subscribe("a/b", qos=2)
            await c.publish("a/b", "hello", qos=2)
            msg = await asyncio.wait_for(c.receive(), 5)
            return msg.text if msg else ""
    assert asyncio.run(main()) == "hello"
