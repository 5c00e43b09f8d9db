"""Streaming responses that end for good: their body generator closed, a stalled reader cut.

Starlette stops iterating when the client hangs up, but a generator suspended at ``yield``
is only finalised whenever the garbage collector gets to it; until then its ``finally``
(returning a database connection, leaving a live tail) would not run. This response closes
it as soon as the response ends, for whatever reason, then calls ``on_close`` (which runs
even when the body never started, where a generator's ``finally`` would not).

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


async def stream_to_reader(response: StreamingResponse, send: Send) -> None:
    """Stream ``response`` body; a stalled reader ends it like a hang-up (logged, not raised)."""
    try:
        await StreamingResponse.stream_response(response, bounded(send))
    except ReaderStalled:
        log.info("a client stopped reading a stream; it was ended")


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

    async def stream_response(self, send: Send) -> None:
        await stream_to_reader(self, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._generator.aclose()
            finally:
                if self._on_close is not None:  # runs even if the generator never started
                    self._on_close()
