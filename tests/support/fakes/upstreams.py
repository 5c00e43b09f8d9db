"""A loopback fake of the OpenAI, Anthropic and Gemini APIs, for tests.

It is a real HTTP server (uvicorn on 127.0.0.1, in a background thread) speaking each
provider's wire format: JSON bodies shaped like the recorded fixtures, SSE framed byte for
byte as each provider frames it (Gemini frames end in ``\\r\\n\\r\\n``, Anthropic pads its
JSON before the closing brace), the providers' real error bodies, and their auth checks.
So the code under test runs its true network path: httpx, keep-alive, chunked streams,
timeouts, dropped connections and client-side cancellation.

Scripting is per test and thread-safe (the server runs on another thread)::

    fake.script("anthropic", text="Hi there", input_tokens=30, output_tokens=4)
    fake.script("openai", status=429, headers={"retry-after": "7"})
    fake.script("gemini", error_after=2, chunk_delay_s=0.05)
    fake.script(once=True, status=503)   # the next request to any provider only
    fake.script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    fake.script("anthropic", finish="length")   # -> stop_reason "max_tokens"

Besides chat, the fake answers the embeddings endpoints (OpenAI ``POST /v1/embeddings``, Gemini
``:embedContent`` and ``:batchEmbedContents``) with deterministic vectors (``embedding_values``).

Every received request is recorded (``fake.requests``), and streams are counted
(``streams_opened``, ``streams_closed``, ``streams_cancelled``) so a test can check that
leaving a stream early really cancelled the upstream request.

Fixture bodies, for a conftest or a test module::

    @pytest.fixture(scope="session")
    def upstream_server():
        yield from serve_fake_upstreams()

    @pytest.fixture
    def upstreams(upstream_server, monkeypatch):
        yield from use_fake_upstreams(upstream_server, monkeypatch)
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import logging
import re
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qs

from tests.support.fakes.server import LoopbackServer

PROVIDERS = ("openai", "anthropic", "gemini")
DEFAULT_KEYS = {
    "openai": "sk-fake-openai-key-0123456789",
    "anthropic": "sk-ant-fake-anthropic-key-0123456789",
    "gemini": "AIzaFakeGeminiKey0123456789",
}
ENV_VARS = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    "gemini": ("GEMINI_BASE_URL", "GEMINI_API_KEY"),
}

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


# --------------------------------------------------------------------------- scripting

# ``Behaviour.finish`` names a stop reason once for all three providers; each says it its own way.
# Gemini has no reason of its own for function calls: it says STOP.
_FINISH: dict[str, dict[str, str]] = {
    "stop": {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"},
    "length": {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"},
    "tool_calls": {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP"},
}


@dataclass
class Behaviour:
    """How the fake answers one request. Every field can be set with ``script()``."""

    text: str | None = None  # None: "Hello from <provider>!" (no text at all with tool_calls)
    deltas: list[str] | None = None  # explicit stream split; default: split on words
    tool_calls: list[dict[str, Any]] | None = None  # [{"name", "arguments": {...}, "id"?}], after any text
    finish: str | None = None  # "stop" | "length" | "tool_calls" (others verbatim); None: the natural one
    input_tokens: int = 12  # whole prompt, as the client should see it
    output_tokens: int = 5  # all output, reasoning/thinking included
    cached_tokens: int = 0  # cache reads (part of input_tokens)
    cache_write_tokens: int = 0  # Anthropic 5-minute cache writes (part of input_tokens)
    thoughts_tokens: int = 0  # Gemini thoughts / OpenAI reasoning (part of output_tokens)
    status: int = 200  # non-200: answer with the provider's real error body
    error_body: Any = None  # override that body (dict -> JSON, str -> as is)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    delay_s: float = 0.0  # before answering at all
    chunk_delay_s: float = 0.0  # before each streamed delta
    error_after: int | None = None  # stream: provider error event after N deltas
    no_terminal: bool = False  # stream: leave out [DONE] / message_stop / finishReason
    drop_after: int | None = None  # cut the connection after N deltas (non-stream: mid-body)
    recorded: str | None = None  # a recorded reply sent byte for byte (JSON, or SSE when streaming)

    def __post_init__(self) -> None:
        """A malformed tool call fails in the test that scripts it, not in the server thread."""
        for call in self.tool_calls or []:
            valid = isinstance(call, dict) and isinstance(call.get("name"), str)
            if not valid or not isinstance(call.get("arguments", {}), dict):
                raise TypeError(f"a tool call needs a str 'name' and dict 'arguments', got {call!r}")

    def has_text(self) -> bool:
        """Tool calls replace the default greeting; text the test set explicitly still comes first."""
        return self.text is not None or self.deltas is not None or not self.tool_calls

    def reply(self, provider: str) -> str:
        return f"Hello from {provider}!" if self.text is None else self.text

    def split(self, provider: str) -> list[str]:
        if self.deltas is not None:
            return list(self.deltas)
        if not self.has_text():
            return []
        return re.findall(r"\S+\s*|\s+", self.reply(provider))

    def stop(self, provider: str) -> str:
        """``provider``'s stop reason: ``finish`` translated (an unknown value is sent as is, for
        provider-specific reasons like "content_filter" or "SAFETY"), else how the reply ends."""
        reason = self.finish or ("tool_calls" if self.tool_calls else "stop")
        return _FINISH[reason][provider] if reason in _FINISH else reason


@dataclass(frozen=True)
class RecordedRequest:
    provider: str | None
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    client_port: int | None = None  # the same port twice means a kept-alive connection


# --------------------------------------------------------------------------- error bodies
# The providers' real error bodies (see the fixtures' SOURCES), keyed by status.

_OPENAI_ERRORS: dict[int, dict[str, Any]] = {
    400: {
        "message": "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, "
        "but got -1 instead.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "decimal_below_min_value",
    },
    401: {
        "message": "Incorrect API key provided: sk-VKMIs***************************************wjh3. "
        "You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    },
    404: {
        "message": "The model `gpt-5.2-proo` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    },
    429: {
        "message": "Rate limit reached for o4-mini in organization org-******* on tokens per min "
        "(TPM): Limit 200000, Used 162960, Requested 42288. Please try again in 1.574s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    },
    500: {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    },
}
_OPENAI_MIDSTREAM = {
    "message": "The server experienced an error while processing your request. "
    "We apologize for the inconvenience!",
    "type": "server_error",
    "param": None,
    "code": None,
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "invalid_request_error",
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
    ),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: claude-sonet-4-5"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed your account's rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
    404: "models/gemini-3.6-flahs is not found for API version v1beta, or is not supported for "
    "generateContent. Call ModelService.ListModels to see the list of available models and "
    "their supported methods.",
    429: "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    503: "The model is overloaded. Please try again later.",
}
_GEMINI_DETAILS: dict[int, list[dict[str, Any]]] = {
    429: [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",  # noqa: E501
                    "quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "250000",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"},
    ],
}
_GEMINI_BAD_KEY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}


def openai_error(status: int) -> bytes:
    """OpenAI error bodies are indented with 4 spaces on the wire."""
    error = _OPENAI_ERRORS.get(status) or _OPENAI_ERRORS[500 if status >= 500 else 400]
    return json.dumps({"error": error}, indent=4).encode()


def anthropic_error(status: int, request_id: str, message: str | None = None) -> bytes:
    """Anthropic error bodies are compact JSON, with the request id in the body too."""
    kind, default = _ANTHROPIC_ERRORS.get(status) or _ANTHROPIC_ERRORS[500 if status >= 500 else 400]
    message = message or default
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return _compact(body).encode()


def gemini_error(status: int) -> bytes:
    """Google error bodies are indented with 2 spaces."""
    error: dict[str, Any] = {
        "code": status,
        "message": _GEMINI_MESSAGES.get(status, "Internal error encountered."),
        "status": _GEMINI_STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"),
    }
    if status in _GEMINI_DETAILS:
        error["details"] = copy.deepcopy(_GEMINI_DETAILS[status])
    return json.dumps({"error": error}, indent=2).encode()


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _fragments(arguments: str) -> list[str]:
    """Streamed tool arguments come in pieces cut anywhere (mid-key, mid-string); 2-3 of them
    make a client that parses each piece on its own fail."""
    n = min(3, len(arguments))
    return [arguments[len(arguments) * i // n : len(arguments) * (i + 1) // n] for i in range(n)]


def _call_id(call: dict[str, Any], prefix: str, length: int) -> str:
    """The scripted id, else a fresh one shaped like the provider's (``call_…``, ``toolu_01…``)."""
    return str(call.get("id") or prefix + uuid.uuid4().hex[:length])


EMBEDDING_DIMENSIONS = 8  # vector length when the request does not ask for one


def embedding_values(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's vector for ``text``: the same text always gets the same vector, so a test can
    predict it. Multiples of 1/1024 in [-1, 1) are exact in float32, so the float and base64
    encodings of one input decode to the very same numbers."""
    digest = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    halves = [int.from_bytes(digest[i : i + 2], "little") for i in range(0, 2 * dimensions, 2)]
    return [(n % 2048 - 1024) / 1024 for n in halves]


def _float32_base64(values: list[float]) -> str:
    """What ``encoding_format: "base64"`` returns: the little-endian float32 array, base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


# --------------------------------------------------------------------------- wire formats


@dataclass(frozen=True)
class Frame:
    data: bytes
    kind: str = "head"  # "head" | "delta" | "tail": error/drop injection happens before deltas/tail


@dataclass(frozen=True)
class Reply:
    """What one provider sends for one request: a JSON body or a list of SSE frames."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: list[Frame] | None = None
    midstream_error: bytes = b""


class _Wire:
    """One provider's formats. Subclasses build bodies; the server drives the timing."""

    name = ""

    def __init__(self, behaviour: Behaviour, model: str) -> None:
        self.b = behaviour
        self.model = model
        self.request_id = "req_" + uuid.uuid4().hex[:24]

    def headers(self, content_type: str) -> dict[str, str]:
        return {"content-type": content_type, **self.b.headers}

    def json_reply(self, status: int, body: bytes) -> Reply:
        return Reply(status, self.headers("application/json"), body=body)

    def sse_reply(self, frames: list[Frame], midstream_error: bytes) -> Reply:
        headers = self.headers("text/event-stream; charset=utf-8")
        return Reply(200, headers, frames=frames, midstream_error=midstream_error)

    def error(self, status: int) -> Reply:
        raise NotImplementedError

    def completion(self) -> Reply:
        raise NotImplementedError

    def stream(self, request: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def embeddings(self, request: dict[str, Any]) -> Reply:
        raise NotImplementedError


class OpenAIWire(_Wire):
    name = "openai"

    def headers(self, content_type: str) -> dict[str, str]:
        base = {"x-request-id": self.request_id, "openai-version": "2020-10-01"}
        return {**base, **super().headers(content_type)}

    def usage(self) -> dict[str, Any]:
        b = self.b
        return {
            "prompt_tokens": b.input_tokens,
            "completion_tokens": b.output_tokens,
            "total_tokens": b.input_tokens + b.output_tokens,
            "prompt_tokens_details": {"cached_tokens": b.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": b.thoughts_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def error(self, status: int) -> Reply:
        return self.json_reply(status, openai_error(status))

    @staticmethod
    def tool_call(call: dict[str, Any]) -> dict[str, Any]:
        """OpenAI sends the arguments as a compact JSON string, not as an object."""
        function = {"name": call["name"], "arguments": _compact(call.get("arguments", {}))}
        return {"id": _call_id(call, "call_", 24), "type": "function", "function": function}

    def message(self) -> dict[str, Any]:
        """``content`` is null when the reply is only tool calls; ``tool_calls`` is left out
        when there are none."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.b.reply(self.name) if self.b.has_text() else None,
        }
        if self.b.tool_calls:
            message["tool_calls"] = [self.tool_call(call) for call in self.b.tool_calls]
        return {**message, "refusal": None, "annotations": []}

    def completion(self) -> Reply:
        body = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(),
                    "logprobs": None,
                    "finish_reason": self.b.stop(self.name),
                }
            ],
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake0000",
        }
        return self.json_reply(200, json.dumps(body, indent=2, ensure_ascii=False).encode())

    def stream(self, request: dict[str, Any]) -> Reply:
        """Usage comes in an extra ``choices: []`` chunk only if the request asked for it."""
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        chunk_id, created = "chatcmpl-" + uuid.uuid4().hex[:29], int(time.time())

        def frame(choices: list[Any], usage: Any, kind: str) -> Frame:
            chunk = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake0000",
                "choices": choices,
                "usage": usage,
                "obfuscation": "Xy3",
            }
            return Frame(f"data: {_compact(chunk)}\n\n".encode(), kind)

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[Any]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        first: dict[str, Any] = {"role": "assistant", "content": "" if self.b.has_text() else None}
        deltas = [frame(choice({"content": text}), None, "delta") for text in self.b.split(self.name)]
        for index, call in enumerate(self.b.tool_calls or []):
            opening, pieces = self.tool_deltas(index, self.tool_call(call))
            if index == 0 and not self.b.has_text():
                first.update(opening)  # as recorded: the first call rides on the role delta
            else:
                deltas.append(frame(choice(opening), None, "tail"))
            deltas += [frame(choice(piece), None, "delta") for piece in pieces]
        frames = [frame(choice({**first, "refusal": None}), None, "head"), *deltas]
        frames.append(frame(choice({}, self.b.stop(self.name)), None, "tail"))
        if include_usage:
            frames.append(frame([], self.usage(), "tail"))
        if not self.b.no_terminal:
            frames.append(Frame(b"data: [DONE]\n\n", "tail"))
        error = f"data: {_compact({'error': _OPENAI_MIDSTREAM})}\n\ndata: [DONE]\n\n".encode()
        return self.sse_reply(frames, error)

    @staticmethod
    def tool_deltas(index: int, call: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A call's opening delta (id, type, name, empty arguments), then its argument pieces,
        as in ``openai_stream_tool_call.txt``; the client joins the pieces per ``index``."""
        function = {"name": call["function"]["name"], "arguments": ""}
        opening = {"index": index, "id": call["id"], "type": "function", "function": function}
        pieces = [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in _fragments(call["function"]["arguments"])
        ]
        return {"tool_calls": [opening]}, pieces

    def embeddings(self, request: dict[str, Any]) -> Reply:
        """One vector per input (a string, strings, or token arrays). The openai SDK asks for
        ``encoding_format: "base64"`` by default and decodes the float32 bytes itself."""
        items = request.get("input")
        if isinstance(items, str) or (isinstance(items, list) and items and isinstance(items[0], int)):
            items = [items]
        dimensions = request.get("dimensions") or EMBEDDING_DIMENSIONS
        if not isinstance(items, list) or not items or not isinstance(dimensions, int) or dimensions < 1:
            return self.error(400)
        data = []
        for index, item in enumerate(items):
            values = embedding_values(item if isinstance(item, str) else _compact(item), dimensions)
            vector: Any = _float32_base64(values) if request.get("encoding_format") == "base64" else values
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = self.b.input_tokens * len(items)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        body = {"object": "list", "data": data, "model": self.model, "usage": usage}
        return self.json_reply(200, json.dumps(body, indent=2, ensure_ascii=False).encode())


class AnthropicWire(_Wire):
    name = "anthropic"

    def __init__(self, behaviour: Behaviour, model: str) -> None:
        super().__init__(behaviour, model)
        self.request_id = "req_011C" + uuid.uuid4().hex[:20]

    def headers(self, content_type: str) -> dict[str, str]:
        return {"request-id": self.request_id, **super().headers(content_type)}

    def usage(self, output_tokens: int) -> dict[str, Any]:
        b = self.b
        return {
            "input_tokens": b.input_tokens - b.cached_tokens - b.cache_write_tokens,
            "cache_creation_input_tokens": b.cache_write_tokens,
            "cache_read_input_tokens": b.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": b.cache_write_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def error(self, status: int) -> Reply:
        return self.json_reply(status, anthropic_error(status, self.request_id))

    def message(self, content: list[Any], usage: dict[str, Any], stop: str | None) -> dict[str, Any]:
        return {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    @staticmethod
    def tool_use(call: dict[str, Any]) -> dict[str, Any]:
        """Anthropic sends the arguments as an object (``input``), unlike OpenAI."""
        id_ = _call_id(call, "toolu_01", 22)
        return {"type": "tool_use", "id": id_, "name": call["name"], "input": call.get("arguments", {})}

    def completion(self) -> Reply:
        content = [{"type": "text", "text": self.b.reply(self.name)}] if self.b.has_text() else []
        content += [self.tool_use(call) for call in self.b.tool_calls or []]
        body = self.message(content, self.usage(self.b.output_tokens), self.b.stop(self.name))
        return self.json_reply(200, _compact(body).encode())

    @staticmethod
    def event(name: str, data: dict[str, Any], kind: str = "head", pad: int = 0) -> Frame:
        """Anthropic pads ``data:`` JSON with spaces before its closing brace."""
        text = _compact(data)
        return Frame(f"event: {name}\ndata: {text[:-1]}{' ' * pad}}}\n\n".encode(), kind)

    def stream(self, request: dict[str, Any]) -> Reply:
        usage = self.usage(1)  # message_start carries a placeholder output count
        delta_usage = {
            k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        }
        frames = [
            self.event(
                "message_start", {"type": "message_start", "message": self.message([], usage, None)}, pad=12
            ),
        ]
        for index, (block, opening, deltas) in enumerate(self.blocks()):
            frames += self.block(index, block, opening, deltas)
        frames += [
            self.event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.b.stop(self.name), "stop_sequence": None},
                    "usage": {**delta_usage, "output_tokens": self.b.output_tokens},
                },
                "tail",
                pad=7,
            ),
        ]
        if not self.b.no_terminal:
            frames.append(self.event("message_stop", {"type": "message_stop"}, "tail", pad=4))
        error = (
            b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
            b'"message": "Overloaded"}}\n\n'
        )
        return self.sse_reply(frames, error)

    def blocks(self) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
        """The content blocks to stream, each as (start block, empty opening deltas, deltas).
        Tool input arrives as JSON text (spaced like ``json.dumps``, as recorded), first ``""``."""
        blocks = []
        if self.b.has_text():
            texts = [{"type": "text_delta", "text": text} for text in self.b.split(self.name)]
            blocks.append(({"type": "text", "text": ""}, [], texts))
        for call in self.b.tool_calls or []:
            pieces = _fragments(json.dumps(call.get("arguments", {}), ensure_ascii=False))
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            opening = [{"type": "input_json_delta", "partial_json": ""}]
            blocks.append(({**self.tool_use(call), "input": {}}, opening, deltas))
        return blocks

    def block(
        self, index: int, block: dict[str, Any], opening: list[dict[str, Any]], deltas: list[dict[str, Any]]
    ) -> list[Frame]:
        """One content block: start, (the ping after the first start,) deltas, stop. Frames that
        carry nothing are never interrupted before the first block's deltas ("head")."""
        kind = "head" if index == 0 else "tail"

        def delta(data: dict[str, Any], kind: str) -> Frame:
            event = {"type": "content_block_delta", "index": index, "delta": data}
            return self.event("content_block_delta", event, kind, pad=6)

        start = {"type": "content_block_start", "index": index, "content_block": block}
        frames = [self.event("content_block_start", start, kind, pad=8)]
        if index == 0:
            frames.append(Frame(b'event: ping\ndata: {"type": "ping"}\n\n'))
        frames += [delta(data, kind) for data in opening]
        frames += [delta(data, "delta") for data in deltas]
        stop = {"type": "content_block_stop", "index": index}
        return [*frames, self.event("content_block_stop", stop, "tail", pad=8)]


class GeminiWire(_Wire):
    name = "gemini"

    def __init__(self, behaviour: Behaviour, model: str, method: str = "generateContent") -> None:
        super().__init__(behaviour, model)
        self.method = method  # from the path: the model and method are in the URL, not the body

    def headers(self, content_type: str) -> dict[str, str]:
        if content_type.startswith("text/event-stream"):
            return {**super().headers("text/event-stream"), "content-disposition": "attachment"}
        return super().headers("application/json; charset=UTF-8")

    def usage(self, candidates: int) -> dict[str, Any]:
        """Counts that are zero are left out, as Google does."""
        b = self.b
        usage = {
            "promptTokenCount": b.input_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": b.input_tokens + candidates + b.thoughts_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": b.input_tokens}],
            "thoughtsTokenCount": b.thoughts_tokens,
            "cachedContentTokenCount": b.cached_tokens,
        }
        return {k: v for k, v in usage.items() if v != 0}

    def error(self, status: int) -> Reply:
        return self.json_reply(status, gemini_error(status))

    def response(
        self, parts: list[dict[str, Any]] | None, usage: dict[str, Any], finish: str | None
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"role": "model"}
        if parts is not None:
            content = {"parts": parts, "role": "model"}
        candidate: dict[str, Any] = {"content": content, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": "fake" + uuid.uuid4().hex[:19],
        }

    def function_calls(self) -> list[dict[str, Any]]:
        """Gemini's calls carry no id and their arguments as an object (``args``)."""
        calls = self.b.tool_calls or []
        return [{"functionCall": {"name": c["name"], "args": c.get("arguments", {})}} for c in calls]

    def completion(self) -> Reply:
        candidates = self.b.output_tokens - self.b.thoughts_tokens
        parts = [{"text": self.b.reply(self.name)}] if self.b.has_text() else []
        body = self.response(parts + self.function_calls(), self.usage(candidates), self.b.stop(self.name))
        return self.json_reply(200, json.dumps(body, indent=2, ensure_ascii=False).encode())

    def chunks(self) -> list[tuple[list[dict[str, Any]], str]]:
        """Each streamed chunk's parts and frame kind: one per text delta, then every function
        call whole in one chunk (Gemini does not stream arguments in pieces)."""
        chunks = [([{"text": text}], "delta" if text else "tail") for text in self.b.split(self.name)]
        if self.b.tool_calls:
            chunks.append((self.function_calls(), "delta"))
        return chunks or [([{"text": ""}], "tail")]

    def stream(self, request: dict[str, Any]) -> Reply:
        """Each chunk is a whole response with cumulative usage; the last has finishReason."""
        chunks = self.chunks()
        total = self.b.output_tokens - self.b.thoughts_tokens
        frames = []
        for i, (parts, kind) in enumerate(chunks, start=1):
            finish = self.b.stop(self.name) if i == len(chunks) and not self.b.no_terminal else None
            chunk = self.response(parts, self.usage(total * i // len(chunks)), finish)
            data = json.dumps(chunk, separators=(",", ": "), ensure_ascii=False)
            frames.append(Frame(f"data: {data}\r\n\r\n".encode(), kind))
        error = {
            "error": {
                "code": 500,
                "message": "An internal error has occurred. Please retry or "
                "report in https://developers.generativeai.google/guide/troubleshooting",
                "status": "INTERNAL",
            }
        }
        return self.sse_reply(frames, f"data: {json.dumps(error)}\r\n\r\n".encode())

    def embeddings(self, request: dict[str, Any]) -> Reply:
        """``:embedContent`` answers one vector, ``:batchEmbedContents`` one per request; Gemini
        reports no usage for embeddings."""
        single = self.method == "embedContent"
        requests = [request] if single else request.get("requests")
        vectors = [self.values(r) for r in requests] if isinstance(requests, list) and requests else [None]
        if None in vectors:
            return self.error(400)
        body: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
        if single:
            body = {"embedding": {"values": vectors[0]}}
        return self.json_reply(200, json.dumps(body, indent=2).encode())

    @staticmethod
    def values(request: Any) -> list[float] | None:
        """The vector for one ``{content: {parts: [{text}]}, outputDimensionality?}``; None when
        the request is malformed (Google answers 400 INVALID_ARGUMENT)."""
        content = request.get("content") if isinstance(request, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return None
        dimensions = request.get("outputDimensionality") or EMBEDDING_DIMENSIONS
        if not isinstance(dimensions, int) or dimensions < 1:
            return None
        text = "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
        return embedding_values(text, dimensions)


# --------------------------------------------------------------------------- the server


class _Drop(Exception):
    """Raised inside the app to make uvicorn cut the connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Drop))


def _quiet_intentional_drops() -> None:
    """uvicorn logs an app exception as an error; a scripted drop is not one."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


_PATHS = {"/v1/chat/completions": "openai", "/v1/embeddings": "openai", "/v1/messages": "anthropic"}
_GEMINI_PATH = re.compile(
    r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$"
)
_GEMINI_OPERATIONS = {
    "generateContent": "complete",
    "streamGenerateContent": "stream",
    "embedContent": "embed",
    "batchEmbedContents": "embed",
}


class FakeUpstreams:
    """The fake providers on one loopback port. ``start()``, then point base URLs at
    ``openai_base_url`` / ``anthropic_base_url`` / ``gemini_base_url``; ``stop()`` at the end."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.keys = {**DEFAULT_KEYS, **(keys or {})}
        self._lock = threading.Condition()
        self._defaults: dict[str, Behaviour] = {}
        self._once: dict[str, list[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._opened = self._closed = self._cancelled = 0
        self._generation = 0  # bumped by reset(): late events of an earlier test are not counted
        self._http = LoopbackServer(
            self, "fake-upstreams", loop="asyncio", http="h11", timeout_graceful_shutdown=1
        )
        self.url = ""
        self.reset()

    # ----- lifecycle

    def start(self) -> FakeUpstreams:
        _quiet_intentional_drops()
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeUpstreams:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def gemini_base_url(self) -> str:
        return self.url

    def base_url(self, provider: str) -> str:
        return {
            "openai": self.openai_base_url,
            "anthropic": self.anthropic_base_url,
            "gemini": self.gemini_base_url,
        }[provider]

    # ----- scripting

    def reset(self) -> None:
        """Default behaviour for every provider; forget scripts, requests and counters."""
        with self._lock:
            self._defaults = {p: Behaviour() for p in PROVIDERS}
            self._once = {p: [] for p in PROVIDERS}
            self._requests.clear()
            self._opened = self._closed = self._cancelled = 0
            self._generation += 1

    def script(self, provider: str | None = None, *, once: bool = False, **changes: Any) -> None:
        """Change how ``provider`` (None: all three) answers. With ``once=True`` the change
        applies to the next request only (queued), else to every request until ``reset()``."""
        known = {f.name for f in fields(Behaviour)}
        if unknown := set(changes) - known:
            raise TypeError(f"unknown behaviour {sorted(unknown)}; choose from {sorted(known)}")
        with self._lock:
            for name in [provider] if provider else PROVIDERS:
                if once:
                    self._once[name].append(replace(self._defaults[name], **changes))
                else:
                    self._defaults[name] = replace(self._defaults[name], **changes)

    def _behaviour(self, provider: str) -> Behaviour:
        with self._lock:
            queue = self._once[provider]
            return copy.deepcopy(queue.pop(0) if queue else self._defaults[provider])

    # ----- observations

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def last_request(self, provider: str | None = None) -> RecordedRequest:
        matching = [r for r in self.requests if provider in (None, r.provider)]
        if not matching:
            raise AssertionError(f"the fake received no request for {provider or 'any provider'}")
        return matching[-1]

    @property
    def streams_opened(self) -> int:
        with self._lock:
            return self._opened

    @property
    def streams_closed(self) -> int:
        with self._lock:
            return self._closed

    @property
    def streams_cancelled(self) -> int:
        """Streams the client hung up on before the fake had sent everything."""
        with self._lock:
            return self._cancelled

    def wait_for(self, condition: Callable[[], bool], timeout: float = 3.0) -> bool:
        """Wait until ``condition()`` holds (checked whenever the fake's state changes)."""
        with self._lock:
            return self._lock.wait_for(condition, timeout=timeout)

    def _count(self, generation: int, opened: int = 0, closed: int = 0, cancelled: int = 0) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._opened += opened
            self._closed += closed
            self._cancelled += cancelled
            self._lock.notify_all()

    # ----- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            generation = self._generation
        raw = await _read_body(receive)
        request = self._record(scope, raw)
        wire, operation = self._route(request)
        if wire is None:
            await _send_reply(
                send,
                Reply(404, {"content-type": "application/json"}, body=b'{"error": "no such fake endpoint"}'),
            )
            return
        if wire.b.delay_s:
            await asyncio.sleep(wire.b.delay_s)
        reply = self._refusal(wire, request) or self._answer(wire, request, operation)
        if reply.frames is None:
            await _send_reply(send, reply, drop=wire.b.drop_after is not None and reply.status == 200)
        else:
            await self._stream(generation, reply, wire.b, receive, send)

    def _record(self, scope: dict[str, Any], raw: bytes) -> RecordedRequest:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        path = scope["path"]
        provider = _PATHS.get(path) or ("gemini" if _GEMINI_PATH.match(path) else None)
        client = scope.get("client") or (None, None)
        request = RecordedRequest(provider, scope["method"], path, query, headers, body, client[1])
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
        return request

    def _route(self, request: RecordedRequest) -> tuple[_Wire | None, str]:
        """The provider's wire and what is asked of it: "complete", "stream" or "embed"."""
        if request.method != "POST" or request.provider is None:
            return None, ""
        body = request.body if isinstance(request.body, dict) else {}
        behaviour = self._behaviour(request.provider)
        if request.provider == "gemini":
            match = _GEMINI_PATH.match(request.path)
            assert match is not None
            model, method = match.groups()
            return GeminiWire(behaviour, model, method), _GEMINI_OPERATIONS[method]
        wire_class = OpenAIWire if request.provider == "openai" else AnthropicWire
        wire = wire_class(behaviour, str(body.get("model", "")))
        if request.path == "/v1/embeddings":
            return wire, "embed"
        return wire, "stream" if body.get("stream") is True else "complete"

    def _refusal(self, wire: _Wire, request: RecordedRequest) -> Reply | None:
        """Auth first (as the real APIs do), then a scripted error status."""
        headers, key = request.headers, self.keys[wire.name]
        if isinstance(wire, OpenAIWire) and headers.get("authorization") != f"Bearer {key}":
            return wire.error(401)
        if isinstance(wire, AnthropicWire) and headers.get("x-api-key") != key:
            return wire.error(401)
        if isinstance(wire, GeminiWire):
            given = headers.get("x-goog-api-key") or request.query.get("key")
            if not given:
                return wire.error(403)
            if given != key:
                return wire.json_reply(400, json.dumps(_GEMINI_BAD_KEY, indent=2).encode())
        if isinstance(wire, AnthropicWire) and not headers.get("anthropic-version"):
            body = anthropic_error(400, wire.request_id, "anthropic-version: header is required")
            return wire.json_reply(400, body)
        if wire.b.status == 200:
            return None
        reply = wire.error(wire.b.status)
        body = wire.b.error_body
        if body is not None:
            reply = replace(reply, body=body.encode() if isinstance(body, str) else json.dumps(body).encode())
        return reply

    @staticmethod
    def _answer(wire: _Wire, request: RecordedRequest, operation: str) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if wire.b.recorded is not None and operation != "embed":
            if operation == "complete":
                return wire.json_reply(200, wire.b.recorded.encode())
            return wire.sse_reply([Frame(wire.b.recorded.encode(), "tail")], b"")
        if operation == "embed":
            return wire.embeddings(body)
        if operation == "complete":
            return wire.completion()
        if isinstance(wire, GeminiWire) and request.query.get("alt") != "sse":
            return wire.json_reply(400, gemini_error(400))  # the JSON-array stream is not faked
        return wire.stream(body)

    async def _stream(
        self, generation: int, reply: Reply, b: Behaviour, receive: Receive, send: Send
    ) -> None:
        """Send the frames with the scripted pauses, error or drop; notice a hang-up."""
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        self._count(generation, opened=1)
        cancelled = False
        try:
            await send(_start(200, reply.headers))
            cancelled = await self._send_frames(reply, b, gone, send)
            if not cancelled:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            self._count(generation, closed=1, cancelled=int(cancelled))

    @staticmethod
    async def _send_frames(reply: Reply, b: Behaviour, gone: asyncio.Event, send: Send) -> bool:
        """True when the client went away before the end."""
        sent = 0
        for frame in [*(reply.frames or []), Frame(b"", "tail")]:
            if frame.kind != "head":
                if b.error_after == sent:
                    await _body(send, reply.midstream_error)
                    return False
                if b.drop_after == sent:
                    raise _Drop
            if frame.kind == "delta" and b.chunk_delay_s:
                try:
                    await asyncio.wait_for(gone.wait(), b.chunk_delay_s)
                except TimeoutError:
                    pass
            if gone.is_set():
                return True
            if frame.data:
                await _body(send, frame.data)
            sent += frame.kind == "delta"
        return gone.is_set()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


def _start(status: int, headers: dict[str, str]) -> dict[str, Any]:
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return {"type": "http.response.start", "status": status, "headers": pairs}


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _send_reply(send: Send, reply: Reply, *, drop: bool = False) -> None:
    """A whole JSON reply; with ``drop``, half of it and then a cut connection."""
    headers = {**reply.headers, "content-length": str(len(reply.body))}
    await send(_start(reply.status, headers))
    if drop:
        await _body(send, reply.body[: len(reply.body) // 2])
        raise _Drop
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


# --------------------------------------------------------------------------- pytest helpers


def serve_fake_upstreams(keys: dict[str, str] | None = None) -> Iterator[FakeUpstreams]:
    """Body of a (session- or module-scoped) fixture: a started fake, stopped afterwards."""
    fake = FakeUpstreams(keys).start()
    try:
        yield fake
    finally:
        fake.stop()


def use_fake_upstreams(fake: FakeUpstreams, monkeypatch: Any) -> Iterator[FakeUpstreams]:
    """Body of a function-scoped fixture: reset ``fake`` and point the gateway's provider
    base URLs and keys at it (environment + ``shared.config.reload()``). On teardown the
    environment is restored (``monkeypatch.undo()``) and the config re-read from it."""
    from shared import config

    fake.reset()
    for provider, (url_var, key_var) in ENV_VARS.items():
        monkeypatch.setenv(url_var, fake.base_url(provider))
        monkeypatch.setenv(key_var, fake.keys[provider])
    config.reload()
    try:
        yield fake
    finally:
        monkeypatch.undo()
        config.reload()
