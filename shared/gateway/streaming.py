"""Streamed calls: relay the provider's stream to the client in the client's own grammar.

The upstream is opened before the response starts, so a provider that refuses the call
gives the client a real HTTP error. Once streaming, the call is settled by whichever comes
first: the end of the upstream stream (``done`` frame), an upstream error or the host's
deadline (``error`` frame; see ``Call.deadline``), a step of its lease refused (``error``
frame with the refusal's code, then ``done``: see ``shared.gateway.leases``), or the client
hanging up (:meth:`StreamSession.finish`, which the response runs whatever happens). A hang-up
is billed for what was streamed: the provider's usage if it arrived, else an estimate recorded
as such. What the frames look like is a :class:`Grammar`: the gateway's own events here,
OpenAI's and Anthropic's in ``shared.compat``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, Protocol

from shared import config, db, providers, sse
from shared.closing_stream import ClosingStreamingResponse
from shared.gateway.handoff import Handoff
from shared.gateway.leases import Lease, LeaseRefused
from shared.gateway.pipeline import CLAMPED_FIELD, Call, admit, clamped_headers, upstream_failure
from shared.http import Ctx
from shared.providers import Usage
from shared.providers.conversation import Piece, ToolCallDelta
from shared.providers.sse import SSEEvent

log = logging.getLogger("kaixu.gateway")
_END = object()
Item = SSEEvent | Piece


class Grammar(Protocol):
    """How one stream is written for its client. ``item`` gets each provider event and each
    piece read from it, and answers the bytes to send (``b""``: nothing)."""

    def head(self, call: Call) -> bytes: ...
    def item(self, item: Item) -> bytes: ...
    def ping(self) -> bytes: ...
    def error(self, message: str, code: str) -> bytes: ...
    def done(self, call: Call, usage: Usage, month: dict[str, Any]) -> bytes: ...
    def stopped(self, call: Call, usage: Usage, month: dict[str, Any], message: str, code: str) -> bytes:
        """A stream whose lease could not grow: the error, then the end with the usage billed."""
        ...


class KaixuGrammar:
    """gateway-stream's events: ``meta``, ``delta`` (text), ``ping``, then ``done`` or ``error``."""

    def head(self, call: Call) -> bytes:
        meta: dict[str, Any] = {
            "provider": call.conv.provider,
            "model": call.conv.model,
            "month": call.month_before.view(),
        }
        if call.clamped_to is not None:
            meta[CLAMPED_FIELD] = call.clamped_to
        return sse.frame("meta", meta)

    def item(self, item: Item) -> bytes:
        return sse.frame("delta", {"text": item}) if isinstance(item, str) else b""

    def ping(self) -> bytes:
        return sse.frame("ping", {"t": int(time.time() * 1000)})

    def error(self, message: str, code: str) -> bytes:
        return sse.frame("error", {"error": message, "code": code})

    def done(self, call: Call, usage: Usage, month: dict[str, Any]) -> bytes:
        return sse.frame("done", {"usage": call.usage_view(usage), "month": month})

    def stopped(self, call: Call, usage: Usage, month: dict[str, Any], message: str, code: str) -> bytes:
        done = {"usage": call.usage_view(usage), "month": month, "stopped": code}
        return self.error(message, code) + sse.frame("done", done)


def generated_bytes(item: Item) -> int:
    """What the model wrote in one item: the bound on its tokens that a lease counts, and the
    estimate of a stream that never said its usage."""
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, ToolCallDelta):
        return len(item.arguments.encode()) + len((item.name or "").encode())
    return 0


class StreamSession:
    """One streamed call: the open upstream, what has been relayed, and its settlement."""

    def __init__(self, call: Call, grammar: Grammar) -> None:
        self.call = call
        self.grammar = grammar
        self._opener = providers.open_stream(call.conv)
        self.upstream: providers.UpstreamStream | None = None
        self._queue: Handoff[object] = Handoff(64)
        self._reader: asyncio.Future[None] | None = None
        self.lease = Lease(call, config.settings().lease_step_tokens, self._stop_soon)
        self._open = False

    @property
    def generated_bytes(self) -> int:
        """Text the provider sent (relayed, queued, or read after the client left)."""
        return self.lease.generated

    async def open(self) -> None:
        try:
            async with self.call.time_limit():
                self.upstream = await self._opener.__aenter__()
            self._open = True
            self.lease.start()
        except providers.UpstreamError as error:
            await self.call.settle(None, outcome="upstream_error", status=error.status, summary=error.message)
            raise upstream_failure(error) from None
        except BaseException:  # cancelled, or a bug: the reservation must not stay held
            await self.call.settle(
                None, outcome="upstream_error", status=500, summary="the stream did not open"
            )
            raise

    def billable_usage(self) -> tuple[Usage, bool]:
        """The usage to bill, and whether it is an estimate (the stream did not complete)."""
        upstream = self.upstream
        usage = upstream.usage if upstream else None
        if upstream and upstream.finished and usage:
            return usage, False
        return self.call.estimated_usage(usage, self.generated_bytes), True

    async def _relay(self, queue: Handoff[object]) -> None:
        """Read the upstream in its own task, so waiting for text never cancels a read; never
        past the lease (waiting for its next step when it must), and no more once a step was
        refused: the refusal is handed on after what was read."""
        assert self.upstream is not None
        lease = self.lease
        try:
            async for item in self.upstream:
                if not await lease.cover(generated_bytes(item)):
                    break
                await queue.put(item)
            else:
                await queue.put(_END)
                return
        except Exception as error:  # handed to the reader of the queue, raised there
            await queue.put(error)
            return
        await queue.put(lease.refusal)

    def _stop_soon(self, refusal: LeaseRefused) -> None:
        """A refused step stops a quiet stream too: the relay may be waiting for a provider
        that says nothing, so the refusal is queued now when there is room (a full queue is
        being read, and the relay hands the refusal on after it)."""
        if self._reader is not None and not self._queue.full():
            self._queue.put_nowait(refusal)

    async def _items(self) -> AsyncIterator[Item | None]:
        """Upstream events and pieces, with ``None`` whenever the stream was quiet for a ping
        interval; cut with the out-of-time error at the call's deadline, if it has one."""
        queue = self._queue
        self._reader = asyncio.ensure_future(self._relay(queue))
        interval = config.settings().stream_ping_s
        deadline = self.call.deadline
        loop = asyncio.get_running_loop()
        while True:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise providers.out_of_time(self.call.conv.provider)
            if self.lease.refusal is not None and queue.empty():  # all that was read is relayed
                raise self.lease.refusal
            try:
                async with asyncio.timeout(interval if left is None else min(interval, left)):
                    item = await queue.get()
            except TimeoutError:
                if left is None or left > interval:
                    yield None  # a quiet interval, not the deadline
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """The stream's frames. A settlement the database cannot take ends it with an ``error``
        frame, not a cut: the reservation stays, and maintenance bills it as abandoned."""
        async with aclosing(self._frames()) as frames:
            try:
                async for out in frames:
                    yield out
            except db.UNAVAILABLE:
                yield self.grammar.error("The database is unavailable; try again shortly.", "DB_UNAVAILABLE")

    async def _frames(self) -> AsyncGenerator[bytes, None]:
        call, grammar = self.call, self.grammar
        yield grammar.head(call)
        try:
            async for item in self._items():
                if item is None:
                    yield grammar.ping()
                    continue
                if out := grammar.item(item):
                    yield out
        except LeaseRefused as stop:
            # Stopped at the cap (or a revoked key...): the provider is let go, and the call is
            # billed what was read, estimated (its usage comes only at the end of a stream).
            await self._close_upstream()
            usage, estimated = self.billable_usage()
            month = await call.settle(
                usage,
                outcome="stopped",
                status=stop.status,
                estimated=estimated,
                summary=stop.message,
                stopped_code=stop.code,
            )
            yield grammar.stopped(call, usage, month, stop.message, stop.code)
            return
        except providers.UpstreamError as error:
            await self._close_upstream()
            usage, estimated = self.billable_usage()
            await call.settle(
                usage, outcome="stream_error", status=error.status, estimated=estimated, summary=error.message
            )
            yield grammar.error(error.message, error.code)
            return
        await self._close_upstream()
        usage, estimated = self.billable_usage()
        if not (self.upstream and self.upstream.finished):  # ended without its end marker
            message = "The provider's stream ended early; the reply may be incomplete."
            await call.settle(usage, outcome="stream_error", status=502, estimated=True, summary=message)
            yield grammar.error(message, "UPSTREAM_STREAM_ERROR")
            return
        # Whole, though perhaps without the provider's usage: then billed an estimate, as a chat is.
        month = await call.settle(usage, outcome="ok", status=200, estimated=estimated)
        yield grammar.done(call, usage, month)

    async def _close_upstream(self) -> None:
        if self._reader is not None:  # a read in flight: stop it before closing its generator
            self._reader.cancel()
            await asyncio.wait((self._reader,))
            self._reader = None
        if self._open:
            self._open = False  # self.upstream stays: its usage is what gets billed
            await self._opener.__aexit__(None, None, None)
        await self.lease.close()  # every settlement follows: no step may still be out

    async def _read_the_rest(self) -> None:
        """The client left mid-stream: read what the provider still sends, for at most
        ``STREAM_USAGE_WAIT_S`` and never past the deadline, so that the call is billed from the
        provider's own usage (hidden reasoning included), as the provider bills us."""
        if self._reader is None:  # the stream had already ended
            return
        loop = asyncio.get_running_loop()
        wait = config.settings().stream_usage_wait_s
        if self.call.deadline is not None:
            wait = min(wait, self.call.deadline - loop.time())
        if wait <= 0:
            return
        try:
            async with asyncio.timeout(wait):  # the relay counts (and leases) what it reads
                while (item := await self._queue.get()) is not _END and not isinstance(item, Exception):
                    pass
        except TimeoutError:
            pass

    async def finish(self) -> None:
        """Runs when the response ends for any reason; settles a call the client abandoned."""
        await self._read_the_rest()
        await self._close_upstream()
        usage, estimated = self.billable_usage()
        try:
            await self.call.settle(
                usage,
                outcome="client_disconnect",
                status=499,
                estimated=estimated,
                summary="the client disconnected mid-stream",
            )
        except db.UNAVAILABLE:
            log.warning("stream %s not settled: the database is unavailable", self.call.ctx.request_id)


class EventStreamResponse(ClosingStreamingResponse):
    """A streaming response whose session is always finished, even when the client leaves or
    stops reading."""

    def __init__(self, session: StreamSession) -> None:
        headers = {**sse.HEADERS, **clamped_headers(session.call)}
        super().__init__(session.frames(), media_type="text/event-stream", headers=headers)
        self.session = session

    async def closed(self) -> None:
        await asyncio.shield(asyncio.ensure_future(self.session.finish()))


async def serve_stream(ctx: Ctx) -> EventStreamResponse:
    """POST gateway-stream: the same call as gateway-chat, answered as Server-Sent Events."""
    return await stream(await admit(ctx, streamed=True), KaixuGrammar())


async def stream(call: Call, grammar: Grammar) -> EventStreamResponse:
    session = StreamSession(call, grammar)
    await session.open()
    return EventStreamResponse(session)
