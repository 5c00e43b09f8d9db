"""One incremental Server-Sent Events decoder for all three providers.

It is fed raw bytes exactly as they come off the socket and splits lines only on the
CR/LF bytes (``\\r\\n``, ``\\n`` or a bare ``\\r``), as the SSE spec says. It never splits
on U+2028, U+2029, U+0085 and friends, which ``str.splitlines()`` (and so httpx's
``aiter_lines()``) treats as line breaks: model text may carry them unescaped inside a
JSON ``data:`` line. Because CR and LF bytes never occur inside a multi-byte UTF-8
sequence, a line is decoded only once it is complete, so a chunk boundary inside a
character is harmless; a ``\\r`` that ends one chunk and a ``\\n`` that starts the next
count as one line break.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """``feed(bytes) -> [SSEEvent]`` for each chunk, then ``close() -> [SSEEvent]`` at EOF."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False  # the previous chunk ended in \r: a leading \n is its pair
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:  # an empty read must not forget a CR that ended the previous one
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        self._buffer += chunk
        events: list[SSEEvent] = []
        start = 0
        while match := _EOL.search(self._buffer, start):
            if match.group() == b"\r" and match.end() == len(self._buffer):
                self._skip_lf = True
            self._line(bytes(self._buffer[start : match.start()]), events)
            start = match.end()
        del self._buffer[:start]
        return events

    def close(self) -> list[SSEEvent]:
        """At EOF: take an unterminated last line and dispatch a frame that lacks its
        blank line. The spec would drop it, but recorded Anthropic streams end so."""
        events: list[SSEEvent] = []
        if self._buffer:
            self._line(bytes(self._buffer), events)
            self._buffer.clear()
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix(_BOM)
        if not line:
            self._dispatch(events)
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            self._field(name, value.removeprefix(" "))

    def _field(self, name: str, value: str) -> None:
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored, as the spec says.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._last_id))
        self._event = ""
        self._data = []
