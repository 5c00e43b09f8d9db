"""OpenAI's Chat Completions format, both ways: a request read into a :class:`Conversation`,
and a completion, a stream or an error written back the way the ``openai`` SDK reads them.

To OpenAI itself the client's body goes through as it came (``Conversation.native``), and its
answer comes back as OpenAI wrote it. To Anthropic or Gemini the request is translated; a
field they cannot honour is a 400 naming it, never dropped.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from typing import Any

import orjson
from starlette.responses import Response

from shared.compat import models
from shared.compat.reader import Reader, image_from_url
from shared.errors import ApiError, bad_request
from shared.http import Ctx, JSONResponse
from shared.providers import Completion, Embeddings, Usage
from shared.providers.base import load_json
from shared.providers.conversation import (
    Conversation,
    Finish,
    Part,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResult,
    Turn,
)
from shared.providers.sse import SSEEvent

# Fields a translation to Anthropic or Gemini carries; any other is refused there.
_TRANSLATED = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
    "user", "n", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort",
}  # fmt: skip
# Fields with which OpenAI bills what the price book does not price: refused (naming the field)
# rather than billed at the wrong price. Flex and priority processing are priced apart too.
_UNPRICED = {
    "prediction": "its rejected tokens are billed as output the answer never shows",
    "audio": "audio tokens have prices of their own",
    "web_search_options": "searches are billed per call",
}
_SERVICE_TIERS = ("auto", "default")
_ROLES = ("system", "developer", "user", "assistant", "tool")
_EFFORTS = ("minimal", "low", "medium", "high")
_USAGE_CHUNK = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


# ----------------------------------------------------------------------------- request


def _parts(message: Reader, role: str) -> tuple[Part, ...]:
    content = message.data.get("content")
    if content is None or isinstance(content, str):
        return (Text(content or ""),)
    parts: list[Part] = []
    for j, raw in enumerate(message.items("content")):
        part = Reader(raw, message.where(f"content[{j}]"))
        kind = part.one_of("type", ("text", "image_url", "refusal"))
        if kind == "text":
            parts.append(Text(part.text("text", required=True) or ""))
        elif kind == "image_url" and role == "user":
            image = part.child("image_url")
            assert image is not None
            parts.append(image_from_url(image.text("url", required=True) or "", image.where("url")))
        elif kind != "refusal":
            raise part.fail("type", "must be text or, in a user message, image_url")
    return tuple(parts)


def _tool_calls(message: Reader) -> tuple[ToolCall, ...]:
    calls = []
    for j, raw in enumerate(message.items("tool_calls")):
        call = Reader(raw, message.where(f"tool_calls[{j}]"))
        function = call.child("function")
        assert function is not None
        arguments = function.text("arguments") or "{}"
        if not isinstance(load_json(arguments), dict):
            raise function.fail("arguments", "must be the JSON text of an object")
        calls.append(
            ToolCall(
                call.text("id", required=True) or "", function.text("name", required=True) or "", arguments
            )
        )
    return tuple(calls)


def _turn(message: Reader) -> Turn:
    role = message.one_of("role", _ROLES)
    if role is None:
        raise message.fail("role", "is required")
    if role == "tool":
        content = message.data.get("content")
        text = content if isinstance(content, str) else Turn("user", _parts(message, "tool")).text
        return Turn("tool", (ToolResult(message.text("tool_call_id", required=True) or "", text),))
    parts = _parts(message, role)
    if role == "assistant":
        parts += _tool_calls(message)
    return Turn(role, parts)  # type: ignore[arg-type]


def _tools(body: Reader) -> tuple[Tool, ...]:
    tools = []
    for i, raw in enumerate(body.items("tools", max_items=128)):
        tool = Reader(raw, f"tools[{i}]")
        tool.one_of("type", ("function",))
        function = tool.child("function")
        assert function is not None
        tools.append(
            Tool(
                name=function.text("name", required=True, max_length=128) or "",
                description=function.text("description"),
                parameters=function.schema("parameters") or {"type": "object", "properties": {}},
            )
        )
    return tuple(tools)


def _tool_choice(body: Reader) -> ToolChoice | None:
    value = body.data.get("tool_choice")
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    choice = Reader(value, "tool_choice")
    function = choice.child("function")
    assert function is not None
    return ToolChoice("named", function.text("name", required=True))


def _response_format(body: Reader) -> ResponseFormat | None:
    rf = body.child("response_format", required=False)
    if rf is None:
        return None
    kind = rf.one_of("type", ("text", "json_object", "json_schema"))
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "json_schema":
        spec = rf.child("json_schema")
        assert spec is not None
        return ResponseFormat(
            "json_schema",
            schema=spec.schema("schema") or {"type": "object"},
            name=spec.text("name", max_length=64) or "response",
            strict=spec.boolean("strict"),
        )
    return None


def _max_tokens(body: Reader, provider: str, model: str) -> int:
    """What the client asked for, else the model's own limit: the reservation must cover
    what the provider may write."""
    asked = body.integer("max_completion_tokens") or body.integer("max_tokens")
    if asked is not None:
        return asked
    return models.info(provider, model).max_output_tokens


def _priced_only(body: Reader) -> None:
    """A body passed through to OpenAI may ask for nothing the price book cannot price."""
    for name, why in _UNPRICED.items():
        if name in body.data:
            raise bad_request(name, f"{name} is not supported here: {why}; leave it out.")
    body.one_of("service_tier", _SERVICE_TIERS)
    if any(modality != "text" for modality in body.items("modalities", max_items=2)):
        raise body.fail("modalities", 'must be ["text"]: audio output has prices of its own')


def parse(payload: Any) -> Conversation:
    body = Reader(payload)
    provider, model = models.resolve(body.data.get("model"))
    if body.integer("n", low=1, high=128) not in (None, 1):
        raise body.fail("n", "must be 1: the gateway returns one choice")
    if provider == "openai":
        _priced_only(body)
    elif unknown := sorted(set(body.data) - _TRANSLATED):
        raise bad_request(unknown[0], f"{unknown[0]} is not supported for {provider} models; leave it out.")
    effort = body.one_of("reasoning_effort", _EFFORTS)
    return Conversation(
        provider=provider,
        model=model,
        turns=tuple(
            _turn(Reader(m, f"messages[{i}]")) for i, m in enumerate(body.items("messages", required=True))
        ),
        max_tokens=_max_tokens(body, provider, model),
        temperature=body.number("temperature", 0, 2),
        top_p=body.number("top_p", 0, 1),
        stop=body.stop("stop"),
        seed=body.integer("seed", low=-(2**63), high=2**63 - 1),
        user=body.text("user", max_length=256),
        tools=_tools(body),
        tool_choice=_tool_choice(body),
        parallel_tool_calls=body.boolean("parallel_tool_calls"),
        response_format=_response_format(body),
        reasoning_effort="low" if effort == "minimal" else effort,  # type: ignore[arg-type]
        native=body.data if provider == "openai" else None,
    )


def parse_embeddings(payload: Any) -> Conversation:
    """``{model, input: str | [str], encoding_format?, dimensions?, user?}``: each input one
    turn, so admission bounds and prices them like a prompt."""
    body = Reader(payload)
    provider, model = models.resolve(body.data.get("model"))
    raw = body.data.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(inputs, list)
        or not 0 < len(inputs) <= 2048
        or not all(isinstance(i, str) and i for i in inputs)
    ):
        raise body.fail(
            "input", "must be a non-empty string or a list of 1 to 2048 of them (token arrays are not taken)"
        )
    body.one_of("encoding_format", ("float", "base64"))
    if provider != "openai" and body.has("user"):
        raise body.fail("user", f"is not supported for {provider} models; leave it out")
    return Conversation(
        provider=provider,
        model=model,
        turns=tuple(Turn("user", (Text(text),)) for text in inputs),
        max_tokens=0,
        user=body.text("user", max_length=256),
        embedding=True,
        dimensions=body.integer("dimensions", low=1, high=65_536),
    )


def embeddings(
    conv: Conversation, answer: Embeddings, billed: Usage, payload: dict[str, Any]
) -> dict[str, Any]:
    """OpenAI's list of vectors; base64 (little-endian float32) when asked, as the SDK does
    by default."""
    encode = payload.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if encode else v,
        }
        for i, v in enumerate(answer.vectors)
    ]
    tokens = billed.input_tokens
    return {
        "object": "list",
        "data": data,
        "model": f"{conv.provider}/{conv.model}",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def wants_stream(payload: Any) -> tuple[bool, bool]:
    """(stream, include the usage chunk), read before the call is admitted."""
    if not isinstance(payload, dict):
        return False, False
    options = payload.get("stream_options")
    include = bool(options.get("include_usage")) if isinstance(options, dict) else False
    return payload.get("stream") is True, include


# ----------------------------------------------------------------------------- answers


def usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def completion(conv: Conversation, answer: Completion, billed: Usage, ctx: Ctx) -> dict[str, Any]:
    """OpenAI's own answer as it came, or a translated one in its shape."""
    if conv.native is not None and answer.body is not None:
        return answer.body
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = [_call(call) for call in answer.tool_calls]
    return {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{conv.provider}/{conv.model}",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
        "usage": usage(billed),
    }


def error_body(error: ApiError, ctx: Ctx) -> Response:
    """``{"error": {message, type, param, code}}``: the SDK raises its typed exception by the
    status and reads this object; the gateway's code and request id ride along inside."""
    kind = _ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    extra = {k: v for k, v in error.extra.items() if k != "field"}
    body = {
        "message": error.message,
        "type": kind,
        "param": error.extra.get("field"),
        "code": error.code,
        "request_id": ctx.request_id,
        **extra,
    }
    return JSONResponse({"error": body}, status_code=error.status, headers=error.headers)


# ----------------------------------------------------------------------------- streams


def _sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class OpenAIGrammar:
    """``chat.completion.chunk`` frames, then the usage chunk when the client asked for it
    (``stream_options.include_usage``), then ``data: [DONE]``. From OpenAI itself the chunks
    pass as they came, but for the usage chunk the gateway asked for on its own account."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.native = False
        self._chunk: dict[str, Any] = {}

    def head(self, call: Any) -> bytes:
        conv: Conversation = call.conv
        self.native = conv.native is not None
        self._chunk = {
            "id": f"chatcmpl-{call.ctx.request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": f"{conv.provider}/{conv.model}",
        }
        return b"" if self.native else self._frame({"role": "assistant", "content": ""})

    def _frame(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**self._chunk, "choices": [choice]})

    def item(self, item: Any) -> bytes:
        if self.native:
            if not isinstance(item, SSEEvent):
                return b""
            data = item.data.encode()
            if not self.include_usage and _USAGE_CHUNK.search(data):
                return b""
            return b"data: " + data + b"\n\n"
        if isinstance(item, str):
            return self._frame({"content": item})
        if isinstance(item, ToolCallDelta):
            call: dict[str, Any] = {"index": item.index, "function": {"arguments": item.arguments}}
            if item.id is not None:
                call |= {"id": item.id, "type": "function"}
                call["function"]["name"] = item.name
            return self._frame({"tool_calls": [call]})
        if isinstance(item, Finish):
            return self._frame({}, item.reason)
        return b""

    def ping(self) -> bytes:
        return b": ping\n\n"

    def error(self, message: str, code: str) -> bytes:
        return _sse({"error": {"message": message, "type": "api_error", "param": None, "code": code}})

    def done(self, call: Any, billed: Usage, month: dict[str, Any]) -> bytes:
        if self.native:
            return b""  # OpenAI's own [DONE] (and usage chunk, if asked for) went through
        return self._end(billed)

    def _end(self, billed: Usage) -> bytes:
        tail = _sse({**self._chunk, "choices": [], "usage": usage(billed)}) if self.include_usage else b""
        return tail + b"data: [DONE]\n\n"

    def stopped(self, call: Any, billed: Usage, month: dict[str, Any], message: str, code: str) -> bytes:
        """The error chunk the SDK raises on (the gateway's code inside), then the usage chunk
        when asked for and ``[DONE]``: the provider's own end never came, native or not."""
        return self.error(message, code) + self._end(billed)
