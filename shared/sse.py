"""Server-sent events as every stream here writes them (the gateway's answers, the monitor's
live tail): one ``event:`` line, one JSON ``data:`` line, a blank line."""

from __future__ import annotations

from typing import Any

from shared.http import dumps

# No proxy may buffer or transform a stream: a delta must reach the client when it is sent.
HEADERS = {"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"}


def frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"
