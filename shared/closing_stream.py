"""A streaming response that always closes its body generator.

Starlette stops iterating when the client hangs up, but a generator suspended at ``yield``
is only finalised whenever the garbage collector gets to it; until then its ``finally``
(returning a database connection, leaving a live tail) would not run. This response closes
it as soon as the response ends, for whatever reason, then calls ``on_close`` (which runs
even when the body never started, where a generator's ``finally`` would not).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


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
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._generator.aclose()
            finally:
                if self._on_close is not None:  # runs even if the generator never started
                    self._on_close()
