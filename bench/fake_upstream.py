"""A fast fake of the three providers for benchmarks: ``python bench/fake_upstream.py PORT``.

Plain asyncio HTTP/1.1 with keep-alive and precomputed answers, so the fake costs far less
than the gateway it is measuring. It answers OpenAI Chat Completions, Anthropic Messages and
Gemini generateContent / streamGenerateContent in their wire formats, streamed or not, with
fixed usage (12 input, 18 output tokens) and an optional delay (``--delay-ms``) before the
answer and between stream frames (``--frame-delay-ms``). ``--stream-bytes N`` makes OpenAI's
streams long: N bytes of text in ``--stream-frames`` deltas, reported as N / 4 output tokens
(about four bytes a token), enough for a stream's lease to grow step by step.
"""

from __future__ import annotations

import argparse
import asyncio
import json

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in requirements.txt
    uvloop = None

USAGE_IN, USAGE_OUT = 12, 18
DELTAS = ["Hel", "lo", " from", " the", " fake", "!"]
TEXT = "".join(DELTAS)


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nx-request-id: req_fake\r\n\r\n"
        + body
    )


OPENAI = _response(
    _json(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": USAGE_IN,
                "completion_tokens": USAGE_OUT,
                "total_tokens": USAGE_IN + USAGE_OUT,
            },
        }
    )
)
ANTHROPIC = _response(
    _json(
        {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
        }
    )
)
GEMINI = _response(
    _json(
        {
            "candidates": [{"content": {"parts": [{"text": TEXT}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": USAGE_IN,
                "candidatesTokenCount": USAGE_OUT,
                "totalTokenCount": USAGE_IN + USAGE_OUT,
            },
            "modelVersion": "gemini-2.5-flash",
        }
    )
)


def _openai_frames(deltas: list[str] = DELTAS, output_tokens: int = USAGE_OUT) -> list[bytes]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    frames = [{**base, "choices": [{"index": 0, "delta": {"content": d}}], "usage": None} for d in deltas]
    frames.append(
        {**base, "choices": [], "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": output_tokens}}
    )
    return [b"data: " + _json(f) + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]


def _anthropic_frames() -> list[bytes]:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"id": "msg_fake", "usage": {"input_tokens": USAGE_IN, "output_tokens": 1}},
            },
        )
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}},
        )
        for d in DELTAS
    ]
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": USAGE_OUT},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return [b"event: " + n.encode() + b"\ndata: " + _json(d) + b"\n\n" for n, d in events]


def _gemini_frames() -> list[bytes]:
    frames = []
    for i, delta in enumerate(DELTAS):
        last = i == len(DELTAS) - 1
        candidate = {"content": {"parts": [{"text": delta}], "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        usage = {"promptTokenCount": USAGE_IN}
        if last:
            usage["candidatesTokenCount"] = USAGE_OUT
        frames.append(b"data: " + _json({"candidates": [candidate], "usageMetadata": usage}) + b"\r\n\r\n")
    return frames


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
    b"x-request-id: req_fake\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
FRAMES = {"openai": _openai_frames(), "anthropic": _anthropic_frames(), "gemini": _gemini_frames()}
BODIES = {"openai": OPENAI, "anthropic": ANTHROPIC, "gemini": GEMINI}


def _route(path: bytes, body: bytes) -> tuple[str, bool] | None:
    wants_stream = b'"stream":true' in body or b'"stream": true' in body
    if path.startswith(b"/v1/chat/completions"):
        return "openai", wants_stream
    if path.startswith(b"/v1/messages"):
        return "anthropic", wants_stream
    if path.startswith(b"/v1beta/models/"):
        return "gemini", b":streamGenerateContent" in path
    return None


def long_stream(size: int, frames: int) -> dict[str, list[bytes]]:
    """The frames with OpenAI's stream ``size`` bytes long, in ``frames`` deltas of words."""
    words = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]
    cut = [size * i // frames for i in range(frames + 1)]
    deltas = [words[cut[i] : cut[i + 1]] for i in range(frames)]
    return {**FRAMES, "openai": _openai_frames(deltas, -(-size // 4))}


class FakeUpstream:
    def __init__(self, delay_s: float, frame_delay_s: float, frames: dict[str, list[bytes]] = FRAMES) -> None:
        self.delay_s = delay_s
        self.frame_delay_s = frame_delay_s
        self.frames = frames

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.partition(b"\r\n")
                length = 0
                for line in header_block.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                path = request_line.split(b" ")[1]
                await self.answer(writer, _route(path, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, writer: asyncio.StreamWriter, route: tuple[str, bool] | None) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if route is None:
            writer.write(NOT_FOUND)
            return
        provider, stream = route
        if not stream:
            writer.write(BODIES[provider])
            return
        writer.write(STREAM_HEAD)
        for frame in self.frames[provider]:
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            if self.frame_delay_s:
                await writer.drain()
                await asyncio.sleep(self.frame_delay_s)
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def serve(
    port: int, delay_ms: float, frame_delay_ms: float, stream_bytes: int, stream_frames: int
) -> None:
    frames = long_stream(stream_bytes, stream_frames) if stream_bytes else FRAMES
    fake = FakeUpstream(delay_ms / 1000, frame_delay_ms / 1000, frames)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--frame-delay-ms", type=float, default=0.0)
    parser.add_argument("--stream-bytes", type=int, default=0, help="OpenAI streams this long (0: six words)")
    parser.add_argument("--stream-frames", type=int, default=64)
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    asyncio.run(serve(args.port, args.delay_ms, args.frame_delay_ms, args.stream_bytes, args.stream_frames))


if __name__ == "__main__":
    main()
