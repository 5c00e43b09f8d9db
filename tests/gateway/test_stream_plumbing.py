"""What every stream stands on: the relay's hand-off, and a response that ends when the client
hangs up (driven here as an ASGI server drives it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from shared.closing_stream import ClosingStreamingResponse
from shared.gateway.handoff import Handoff


def test_the_handoff_keeps_order_and_waits_both_ways():
    async def scenario() -> list[int]:
        handoff: Handoff[int] = Handoff(2)
        got: list[int] = []

        async def producer() -> None:
            for n in range(5):
                await handoff.put(n)

        task = asyncio.ensure_future(producer())
        await asyncio.sleep(0)
        assert handoff.full() and not task.done()  # the producer waits for room
        for _ in range(5):
            got.append(await handoff.get())
        await task
        assert handoff.empty()
        return got

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_get_given_up_loses_nothing():
    async def scenario() -> int:
        handoff: Handoff[int] = Handoff(1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await handoff.get()
        handoff.put_nowait(7)
        return await handoff.get()

    assert asyncio.run(scenario()) == 7


class Client:
    """The ASGI server's side: what was sent, and a hang-up to trigger."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Response(ClosingStreamingResponse):
    def __init__(self, content: AsyncGenerator[bytes, None]) -> None:
        super().__init__(content, media_type="text/plain")
        self.closed_count = 0

    async def closed(self) -> None:
        self.closed_count += 1


async def forever(stages: list[str]) -> AsyncGenerator[bytes, None]:
    try:
        yield b"first"
        stages.append("waiting")
        await asyncio.Event().wait()
        yield b"never"
    finally:
        stages.append("closed")


def test_a_hang_up_ends_the_body_and_closes_once():
    async def scenario() -> tuple[Client, Response, list[str]]:
        client, stages = Client(), []
        response = Response(forever(stages))
        serving = asyncio.ensure_future(response({"type": "http"}, client.receive, client.send))
        while "waiting" not in stages:
            await asyncio.sleep(0)
        client.gone.set()
        await asyncio.wait_for(serving, 5)  # returns normally: a hang-up is not an error
        return client, response, stages

    client, response, stages = asyncio.run(scenario())
    assert client.body() == b"first"
    assert stages == ["waiting", "closed"] and response.closed_count == 1


def test_a_complete_response_is_not_cancelled_by_its_own_end():
    async def scenario() -> tuple[Client, Response]:
        async def two() -> AsyncGenerator[bytes, None]:
            yield b"a"
            yield b"b"

        client = Client()
        response = Response(two())
        await response({"type": "http"}, client.receive, client.send)
        client.gone.set()  # the server says disconnect once complete; nothing is left to stop
        await asyncio.sleep(0.01)
        return client, response

    client, response = asyncio.run(scenario())
    assert client.body() == b"ab" and client.sent[-1]["more_body"] is False
    assert response.closed_count == 1


def test_a_cancellation_from_outside_still_cancels():
    async def scenario() -> tuple[bool, list[str], int]:
        client, stages = Client(), []
        response = Response(forever(stages))
        serving = asyncio.ensure_future(response({"type": "http"}, client.receive, client.send))
        while "waiting" not in stages:
            await asyncio.sleep(0)
        serving.cancel()  # a server shutting down, say
        await asyncio.wait((serving,))
        return serving.cancelled(), stages, response.closed_count

    assert asyncio.run(scenario()) == (True, ["waiting", "closed"], 1)
