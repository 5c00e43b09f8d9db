"""A streamed completion: ``async with open_stream(conv) as stream: async for piece in stream``.

Entering the ``async with`` sends the request and raises UpstreamError for any failure
before the first byte (so the gateway can still answer with a plain HTTP error). Leaving
it closes the upstream response, which drops the connection mid-body: that is how a
client disconnect cancels generation at the provider, and stops us paying for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType

from shared import config, http11
from shared.providers import errors, transport
from shared.providers.base import Provider, StreamParser, UpstreamResponse, Usage
from shared.providers.conversation import Conversation, Piece
from shared.providers.sse import SSEDecoder, SSEEvent

_DRAIN_S = 0.2


class UpstreamStream:
    """What one upstream stream carries, with ``usage`` (last known, possibly partial) and
    ``finished`` (the provider's terminal marker was seen) readable at any time. It yields
    each provider event (an :class:`SSEEvent`, for a client that speaks the provider's own
    format) followed by the pieces read from it."""

    def __init__(self, provider: Provider, conv: Conversation) -> None:
        self._provider = provider
        self._conv = conv
        self._parser: StreamParser = provider.stream_parser(conv)
        self._response: UpstreamResponse | None = None
        self._iterator: AsyncGenerator[SSEEvent | Piece, None] | None = None

    @property
    def usage(self) -> Usage | None:
        return self._parser.usage

    @property
    def finished(self) -> bool:
        return self._parser.finished

    @property
    def upstream_request_id(self) -> str | None:
        return errors.request_id(self._response.headers) if self._response is not None else None

    async def __aenter__(self) -> UpstreamStream:
        key = transport.api_key(self._provider)
        call = self._provider.build(self._conv, config.settings(), stream=True)
        self._response = await transport.send(self._provider, call, key)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading and close the upstream connection (idempotent)."""
        if self._iterator is not None:
            await self._iterator.aclose()
        if self._response is not None:
            await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[SSEEvent | Piece]:
        if self._response is None:
            raise RuntimeError("use the stream inside `async with open_stream(conv) as stream`")
        if self._iterator is None:
            self._iterator = self._deltas(self._response)
        return self._iterator

    async def _deltas(self, response: UpstreamResponse) -> AsyncGenerator[SSEEvent | Piece, None]:
        """Decode bytes (never ``aiter_lines()``, which also splits on U+2028) into events and
        pieces, until the terminal marker or EOF. Transport failures become UpstreamError."""
        decoder = SSEDecoder()
        parser = self._parser
        chunks = response.aiter_bytes()
        try:
            async for chunk in chunks:
                for event in decoder.feed(chunk):
                    pieces = parser.feed(event)
                    yield event
                    for piece in pieces:
                        yield piece
                    if parser.finished:
                        await _drain(chunks)
                        return
        except http11.TransportError as exc:
            error = errors.from_transport(self._provider.label, exc, transport.timeout_s(), mid_stream=True)
            error.upstream_request_id = errors.request_id(response.headers)
            raise error from exc
        except errors.UpstreamError as exc:
            exc.upstream_request_id = exc.upstream_request_id or errors.request_id(response.headers)
            raise
        for event in decoder.close():
            pieces = parser.feed(event)
            yield event
            for piece in pieces:
                yield piece
        parser.end()


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the little that follows the end marker (the chunked terminator), so the pooled
    connection to the provider can be reused instead of paying a new TLS handshake; give up
    at once if more is coming."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass
    except (TimeoutError, http11.TransportError):
        pass
