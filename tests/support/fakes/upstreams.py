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
import copy
import json
import logging
import re
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


@dataclass
class Behaviour:
    """How the fake answers one request. Every field can be set with ``script()``."""

    text: str | None = None  # None: "Hello from <provider>!"
    deltas: list[str] | None = None  # explicit stream split; default: split on words
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

    def reply(self, provider: str) -> str:
        return f"Hello from {provider}!" if self.text is None else self.text

    def split(self, provider: str) -> list[str]:
        if self.deltas is not None:
            return list(self.deltas)
        return re.findall(r"\S+\s*|\s+", self.reply(provider))


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

    def completion(self) -> Reply:
        body = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": self.b.reply(self.name),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
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

        frames = [frame(choice({"role": "assistant", "content": "", "refusal": None}), None, "head")]
        frames += [frame(choice({"content": text}), None, "delta") for text in self.b.split(self.name)]
        frames.append(frame(choice({}, "stop"), None, "tail"))
        if include_usage:
            frames.append(frame([], self.usage(), "tail"))
        if not self.b.no_terminal:
            frames.append(Frame(b"data: [DONE]\n\n", "tail"))
        error = f"data: {_compact({'error': _OPENAI_MIDSTREAM})}\n\ndata: [DONE]\n\n".encode()
        return self.sse_reply(frames, error)


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

    def completion(self) -> Reply:
        content = [{"type": "text", "text": self.b.reply(self.name)}]
        body = self.message(content, self.usage(self.b.output_tokens), "end_turn")
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
            self.event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                pad=8,
            ),
            Frame(b'event: ping\ndata: {"type": "ping"}\n\n'),
        ]
        frames += [
            self.event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                "delta",
                pad=6,
            )
            for text in self.b.split(self.name)
        ]
        frames += [
            self.event("content_block_stop", {"type": "content_block_stop", "index": 0}, "tail", pad=8),
            self.event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
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


class GeminiWire(_Wire):
    name = "gemini"

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

    def response(self, text: str | None, usage: dict[str, Any], finish: bool) -> dict[str, Any]:
        content: dict[str, Any] = {"role": "model"}
        if text is not None:
            content = {"parts": [{"text": text}], "role": "model"}
        candidate: dict[str, Any] = {"content": content, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": "fake" + uuid.uuid4().hex[:19],
        }

    def completion(self) -> Reply:
        candidates = self.b.output_tokens - self.b.thoughts_tokens
        body = self.response(self.b.reply(self.name), self.usage(candidates), True)
        return self.json_reply(200, json.dumps(body, indent=2, ensure_ascii=False).encode())

    def stream(self, request: dict[str, Any]) -> Reply:
        """Each chunk is a whole response with cumulative usage; the last has finishReason."""
        deltas = self.b.split(self.name) or [""]
        total = self.b.output_tokens - self.b.thoughts_tokens
        frames = []
        for i, text in enumerate(deltas, start=1):
            last = i == len(deltas)
            chunk = self.response(text, self.usage(total * i // len(deltas)), last and not self.b.no_terminal)
            data = json.dumps(chunk, separators=(",", ": "), ensure_ascii=False)
            frames.append(Frame(f"data: {data}\r\n\r\n".encode(), "delta" if text else "tail"))
        error = {
            "error": {
                "code": 500,
                "message": "An internal error has occurred. Please retry or "
                "report in https://developers.generativeai.google/guide/troubleshooting",
                "status": "INTERNAL",
            }
        }
        return self.sse_reply(frames, f"data: {json.dumps(error)}\r\n\r\n".encode())


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


_GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")


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
        wire, stream = self._route(request)
        if wire is None:
            await _send_reply(
                send,
                Reply(404, {"content-type": "application/json"}, body=b'{"error": "no such fake endpoint"}'),
            )
            return
        if wire.b.delay_s:
            await asyncio.sleep(wire.b.delay_s)
        reply = self._refusal(wire, request) or self._answer(wire, request, stream)
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
        provider = (
            "openai"
            if path == "/v1/chat/completions"
            else "anthropic"
            if path == "/v1/messages"
            else "gemini"
            if _GEMINI_PATH.match(path)
            else None
        )
        client = scope.get("client") or (None, None)
        request = RecordedRequest(provider, scope["method"], path, query, headers, body, client[1])
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
        return request

    def _route(self, request: RecordedRequest) -> tuple[_Wire | None, bool]:
        if request.method != "POST" or request.provider is None:
            return None, False
        body = request.body if isinstance(request.body, dict) else {}
        behaviour = self._behaviour(request.provider)
        if request.provider == "gemini":
            match = _GEMINI_PATH.match(request.path)
            assert match is not None
            return GeminiWire(behaviour, match.group(1)), match.group(2) == "streamGenerateContent"
        wire_class = OpenAIWire if request.provider == "openai" else AnthropicWire
        return wire_class(behaviour, str(body.get("model", ""))), body.get("stream") is True

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
    def _answer(wire: _Wire, request: RecordedRequest, stream: bool) -> Reply:
        if not stream:
            return wire.completion()
        if isinstance(wire, GeminiWire) and request.query.get("alt") != "sse":
            return wire.json_reply(400, gemini_error(400))  # the JSON-array stream is not faked
        return wire.stream(request.body if isinstance(request.body, dict) else {})

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
