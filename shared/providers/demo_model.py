"""The demo model: a deterministic stand-in for a provider, answering inside the gateway's
own process, so a new user sees a call admitted, streamed, metered and billed before they
have any provider key.

It speaks OpenAI's Chat Completions wire format (a JSON body, or ``chat.completion.chunk``
events ending with a usage chunk and ``data: [DONE]``), so the demo adapter reads it with the
OpenAI adapter's own parsers, and every way in (the gateway's contract, the OpenAI- and
Anthropic-compatible APIs) reaches it through the same translation as a real provider.

- Deterministic: the answer is a function of the model's name and the last user message (a
  hash of it picks the tip), so the same prompt always gets the same words, and tests and
  screenshots can rely on them.
- Tokens are words, by a rule anyone can check: a prompt's tokens are the whitespace-separated
  words of every message's text (at least 1), an answer's tokens its words. An answer stops at
  ``max_tokens`` words with finish ``length``, as a real model's would.
- A stream sends one word per event, ``delay_s`` apart (``KAIXU_DEMO_WORD_DELAY_S``): a
  realistic pace by default, 0 in the tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

TIPS = (
    "Open Usage in the admin screen to see this call's tokens and cost to the nano-dollar.",
    "Monitor lists this request with its status, its timing and the key that made it.",
    "Give the key a small cap and watch the gateway refuse the call that would pass it.",
    "Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY and call a real model the same way.",
)
_QUOTED_WORDS = 12


def count_tokens(text: str) -> int:
    """The demo's tokens: whitespace-separated words."""
    return len(text.split())


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list (images and the rest count
    for nothing)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def answer(model: str, prompt: str) -> str:
    """The demo model's answer to ``prompt`` (the last user message), always the same."""
    words = prompt.split()
    quoted = " ".join(words[:_QUOTED_WORDS]) + (" ..." if len(words) > _QUOTED_WORDS else "")
    heard = f'You said: "{quoted}".' if words else "You sent no words."
    tip = TIPS[hashlib.sha256(f"{model}\n{prompt}".encode()).digest()[0] % len(TIPS)]
    return (
        f"Hello! I am {model}, the Kaixu demo model. I answer inside the dev server, so no "
        f"provider key is needed. {heard} {tip} Like a real model's, this answer was admitted, "
        "streamed word by word, metered and billed at the demo price."
    )


class Reply:
    """What the demo model makes of one Chat Completions body: its words, usage and ids."""

    def __init__(self, body: dict[str, Any]) -> None:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        prompt = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        self.model = str(body.get("model") or "demo")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = answer(self.model, prompt).split()
        self.finish = "length" if isinstance(limit, int) and len(words) > limit else "stop"
        self.words = words[:limit] if isinstance(limit, int) else words
        self.usage = {
            "prompt_tokens": max(1, sum(count_tokens(_text(m.get("content"))) for m in messages)),
            "completion_tokens": len(self.words),
        }
        self.usage["total_tokens"] = self.usage["prompt_tokens"] + self.usage["completion_tokens"]
        digest = hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()
        self.id = f"chatcmpl-demo-{digest[:24]}"
        self.created = int(time.time())

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        """The text as a stream sends it, a word at a time: together exactly :attr:`text`."""
        return [word if i == 0 else f" {word}" for i, word in enumerate(self.words)]

    def completion(self) -> dict[str, Any]:
        """The non-streamed answer, as OpenAI writes one."""
        message = {"role": "assistant", "content": self.text}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish}],
            "usage": self.usage,
        }

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _delta(self, delta: dict[str, str], finish: str | None = None) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": finish}])

    def events(self) -> list[bytes]:
        """The stream's events in order: the role, one word each, the finish, the usage."""
        first = self._delta({"role": "assistant", "content": ""})
        words = [self._delta({"content": piece}) for piece in self.pieces()]
        finish = self._delta({}, self.finish)
        return [first, *words, finish, self._chunk([], usage=self.usage), b"data: [DONE]\n\n"]


class LocalResponse:
    """The demo model's answer as an upstream response (``base.UpstreamResponse``): a 200 whose
    body is made as it is read, a stream's words ``delay_s`` apart."""

    status = 200

    def __init__(self, body: dict[str, Any], *, stream: bool, delay_s: float) -> None:
        self._reply = Reply(body)
        self._stream = stream
        self._delay_s = delay_s
        self._chunks: AsyncGenerator[bytes, None] | None = None
        content_type = "text/event-stream" if stream else "application/json"
        self.headers = {"content-type": content_type, "x-request-id": self._reply.id}

    @property
    def is_success(self) -> bool:
        return True

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._chunks is None:
            self._chunks = self._body()
        return self._chunks

    async def _body(self) -> AsyncGenerator[bytes, None]:
        if not self._stream:
            yield orjson.dumps(self._reply.completion())
            return
        words = len(self._reply.words)
        for i, event in enumerate(self._reply.events()):
            if 1 < i <= words and self._delay_s > 0:  # between words (event 1 is the first)
                await asyncio.sleep(self._delay_s)
            yield event

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        """Stop making the answer (a client that hung up stops the demo model too)."""
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            await chunks.aclose()
