"""Reading gateway-stream's Server-Sent Events in tests."""

from __future__ import annotations

import json


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """``event: name`` / ``data: json`` blocks, in order."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        frames.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return frames


def names(frames: list[tuple[str, dict]]) -> list[str]:
    return [name for name, _ in frames]
