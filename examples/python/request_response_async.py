"""Request/response over MQTT 5.0 with asyncio: the requester publishes
to `service/time` with a Response Topic and Correlation Data; the
responder answers on that topic with the same Correlation Data, which is
how the requester matches answers to questions.

usage: request_response_async.py [--port P] [--requests N]

Without --port it starts an in-process mqlite broker on a free port.
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Dict, Optional

import mqlite


async def responder(port: int, ready: asyncio.Event) -> None:
    """Answers every request on service/time with the time, until cancelled."""
    async with mqlite.AsyncClient(client_id="time-service", port=port, version=5) as c:
        await c.subscribe("service/time", qos=1)
        ready.set()
        async for req in c.messages():
            if req.response_topic is None:
                continue
            answer = f"{req.text}: it is {time.strftime('%H:%M:%S')}"
            await c.publish(req.response_topic, answer, qos=1,
                            properties={"correlation_data": req.correlation_data or b"",
                                        "content_type": "text/plain"})


class Requester:
    """Sends requests and resolves each one's future with its response."""

    def __init__(self, client: mqlite.AsyncClient) -> None:
        self.client = client
        self.reply_to = f"replies/{uuid.uuid4().hex}"
        self.waiting: Dict[bytes, "asyncio.Future[str]"] = {}

    async def start(self) -> None:
        await self.client.subscribe(self.reply_to, qos=1)
        asyncio.get_running_loop().create_task(self._route())

    async def _route(self) -> None:
        async for msg in self.client.messages():
            fut = self.waiting.pop(msg.correlation_data or b"", None)
            if fut is not None and not fut.done():
                fut.set_result(msg.text)

    async def ask(self, question: str, timeout: float = 5.0) -> str:
        corr = uuid.uuid4().bytes
        fut: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
        self.waiting[corr] = fut
        await self.client.publish("service/time", question, qos=1,
                                  properties={"response_topic": self.reply_to,
                                              "correlation_data": corr})
        return await asyncio.wait_for(fut, timeout)


async def run(port: int, requests: int) -> None:
    ready = asyncio.Event()
    service = asyncio.create_task(responder(port, ready))
    await asyncio.wait_for(ready.wait(), 10)
    async with mqlite.AsyncClient(port=port, version=5) as c:
        r = Requester(c)
        await r.start()
        answers = await asyncio.gather(*(r.ask(f"request {i}") for i in range(requests)))
        for a in answers:
            print(a, flush=True)
    service.cancel()
    try:
        await service
    except asyncio.CancelledError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int)
    ap.add_argument("--requests", type=int, default=3)
    a = ap.parse_args()
    broker: Optional[mqlite.Broker] = None
    if a.port is None:
        broker = mqlite.Broker(port=0).start()
        a.port = broker.port
    try:
        asyncio.run(run(a.port, a.requests))
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
