"""Streaming responses that end for good: their body generator closed, a stalled reader cut.

A hang-up stops the body (:func:`stream_until_hang_up`), but a generator suspended at ``yield``
is only finalised whenever the garbage collector gets to it; until then its ``finally``
(returning a database connection, leaving a live tail) would not run. This response closes
it as soon as the response ends, for whatever reason, then runs :meth:`closed`.

A client that stops reading without hanging up would hold the response (and what feeds it:
an upstream connection, a database cursor) for as long as it likes: a write that cannot go
out within ``STREAM_WRITE_TIMEOUT_S`` ends the response as if the client had left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from shared import config

log = logging.getLogger("kaixu.streams")


class ReaderStalled(Exception):
    """The client stopped reading: a write waited longer than ``STREAM_WRITE_TIMEOUT_S``."""


def bounded(send: Send) -> Send:
    """``send``, raising ReaderStalled when one write cannot go out in time."""
    seconds = config.settings().stream_write_timeout_s

    async def send_or_give_up(message: Message) -> None:
        try:
            async with asyncio.timeout(seconds):
                await send(message)
        except TimeoutError:
            raise ReaderStalled from None

    return send_or_give_up


async def _hang_up(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def stream_until_hang_up(response: StreamingResponse, receive: Receive, send: Send) -> None:
    """Stream ``response`` in this task, cancelled if the client hangs up first, and ended
    like a hang-up (logged, not raised) if the client stops reading.

    Starlette runs the body and the wait for the hang-up as two tasks of an anyio task group,
    whose bookkeeping (cancel scopes, task handles, their events) cost each open stream about
    5 KB; one small task that waits for the hang-up and cancels this one does the same. The
    wait also ends when the response is complete (the server then answers ``http.disconnect``
    too), by which time nothing is left to cancel.
    """
    writer = asyncio.current_task()
    assert writer is not None
    listener = asyncio.ensure_future(_hang_up(receive))
    streaming, hung_up = True, False

    def on_hang_up(_: asyncio.Future[None]) -> None:
        nonlocal hung_up
        if streaming:
            hung_up = True
            writer.cancel()

    listener.add_done_callback(on_hang_up)
    try:
        await StreamingResponse.stream_response(response, bounded(send))
    except asyncio.CancelledError:
        if not hung_up or writer.uncancel() > 0:  # cancelled from outside too: that stands
            raise
    except ReaderStalled:
        log.info("a client stopped reading a stream; it was ended")
    finally:
        streaming = False
        listener.cancel()


class ClosingStreamingResponse(StreamingResponse):
    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._generator = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await stream_until_hang_up(self, receive, send)
        finally:
            try:
                await self._generator.aclose()
            finally:
                await self.closed()

    async def closed(self) -> None:
        """Runs once the response is over for any reason, even if its body never started
        (where a generator's ``finally`` would not)."""
        if self._on_close is not None:
            self._on_close()
