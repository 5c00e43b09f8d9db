"""Anthropic's Messages format, both ways: a request read into a :class:`Conversation`, and a
message, a stream or an error written back the way the ``anthropic`` SDK reads them.

To Anthropic itself the client's body goes through as it came and the answer comes back as
Anthropic wrote it (events included, when streamed); to OpenAI or Gemini it is translated,
and a field they cannot honour is a 400 naming it.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from starlette.responses import Response

from shared.compat import models
from shared.compat.reader import Reader, image_from_url, inline_image
from shared.errors import ApiError, bad_request
from shared.http import Ctx, JSONResponse
from shared.providers import Completion, Usage
from shared.providers.base import json_text
from shared.providers.conversation import (
    Conversation,
    Finish,
    Part,
    Text,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResult,
    Turn,
)
from shared.providers.sse import SSEEvent

_TRANSLATED = {
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream",
    "tools", "tool_choice", "metadata", "thinking",
}  # fmt: skip
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# ----------------------------------------------------------------------------- request


def _text_blocks(value: Any, where: str) -> str:
    """A string, or text blocks (``system``, a tool result's content) joined."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise bad_request(where, f"{where} must be a string or a list of text blocks.")
    texts = []
    for i, raw in enumerate(value):
        block = Reader(raw, f"{where}[{i}]")
        block.one_of("type", ("text",))
        texts.append(block.text("text", required=True) or "")
    return "\n\n".join(texts) if where == "system" else "".join(texts)


def _block(block: Reader, role: str) -> Part | None:
    kind = block.one_of("type", ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"))
    if kind == "text":
        return Text(block.text("text", required=True) or "")
    if kind == "image" and role == "user":
        source = block.child("source")
        assert source is not None
        if source.one_of("type", ("base64", "url")) == "url":
            return image_from_url(source.text("url", required=True) or "", source.where("url"))
        return inline_image(source.data.get("media_type"), source.data.get("data"), source.where("data"))
    if kind == "tool_use" and role == "assistant":
        arguments = block.data.get("input", {})
        if not isinstance(arguments, dict):
            raise block.fail("input", "must be an object")
        return ToolCall(
            block.text("id", required=True) or "",
            block.text("name", required=True) or "",
            json_text(arguments),
        )
    if kind == "tool_result" and role == "user":
        content = _text_blocks(block.data.get("content", ""), block.where("content"))
        is_error = bool(block.boolean("is_error"))
        return ToolResult(block.text("tool_use_id", required=True) or "", content, is_error)
    if kind in ("thinking", "redacted_thinking") and role == "assistant":
        return None  # earlier reasoning: only Anthropic reads it back (native requests keep it)
    raise block.fail("type", f"cannot be {kind} in a {role} message")


def _turns(message: Reader) -> list[Turn]:
    """A user message with tool results becomes a tool turn (then a user turn for the rest)."""
    role: Literal["user", "assistant"] | None = message.one_of("role", ("user", "assistant"))  # type: ignore[assignment]
    if role is None:
        raise message.fail("role", "is required")
    content = message.data.get("content")
    if isinstance(content, str):
        return [Turn(role, (Text(content),))]
    parts = [
        part
        for j, raw in enumerate(message.items("content", required=True))
        if (part := _block(Reader(raw, message.where(f"content[{j}]")), role)) is not None
    ]
    results = tuple(p for p in parts if isinstance(p, ToolResult))
    rest = tuple(p for p in parts if not isinstance(p, ToolResult))
    turns = [Turn("tool", results)] if results else []
    return turns + ([Turn(role, rest)] if rest or not results else [])


def _tools(body: Reader) -> tuple[Tool, ...]:
    tools = []
    for i, raw in enumerate(body.items("tools", max_items=128)):
        tool = Reader(raw, f"tools[{i}]")
        if tool.has("type") and tool.data["type"] != "custom":
            raise tool.fail("type", "must be a custom tool (server tools are Anthropic's own)")
        schema = tool.schema("input_schema", required=True)
        assert schema is not None
        tools.append(Tool(tool.text("name", required=True) or "", tool.text("description"), schema))
    return tuple(tools)


def _tool_choice(body: Reader) -> tuple[ToolChoice | None, bool | None]:
    choice = body.child("tool_choice", required=False)
    if choice is None:
        return None, None
    kind = choice.one_of("type", ("auto", "any", "tool", "none"))
    parallel = (
        None
        if choice.boolean("disable_parallel_tool_use") is None
        else not choice.data["disable_parallel_tool_use"]
    )
    if kind == "tool":
        return ToolChoice("named", choice.text("name", required=True)), parallel
    modes = {"auto": "auto", "any": "required", "none": "none"}
    return ToolChoice(modes[kind or "auto"]), parallel  # type: ignore[arg-type]


def _thinking_budget(body: Reader) -> int | None:
    thinking = body.child("thinking", required=False)
    if thinking is None or thinking.one_of("type", ("enabled", "disabled")) != "enabled":
        return None
    return thinking.integer("budget_tokens", low=1)


def parse(payload: Any) -> Conversation:
    body = Reader(payload)
    provider, model = models.resolve(body.data.get("model"))
    if provider == "anthropic":
        # US-only inference is billed above the price book's rates (1.1x, newer models).
        body.one_of("inference_geo", ("global",))
    elif unknown := sorted(set(body.data) - _TRANSLATED):
        raise bad_request(unknown[0], f"{unknown[0]} is not supported for {provider} models; leave it out.")
    max_tokens = body.integer("max_tokens")
    if max_tokens is None:
        raise body.fail("max_tokens", "is required")
    system = body.data.get("system")
    turns = [Turn("system", (Text(_text_blocks(system, "system")),))] if system else []
    for i, raw in enumerate(body.items("messages", required=True)):
        turns += _turns(Reader(raw, f"messages[{i}]"))
    metadata = body.child("metadata", required=False)
    choice, parallel = _tool_choice(body)
    return Conversation(
        provider=provider,
        model=model,
        turns=tuple(turns),
        max_tokens=max_tokens,
        temperature=body.number("temperature", 0, 1),
        top_p=body.number("top_p", 0, 1),
        stop=tuple(body.items("stop_sequences", max_items=16)),
        user=metadata.text("user_id", max_length=256) if metadata else None,
        tools=_tools(body),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        thinking_budget=_thinking_budget(body),
        native=body.data if provider == "anthropic" else None,
    )


def wants_stream(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("stream") is True


# ----------------------------------------------------------------------------- answers


def usage(billed: Usage, output_tokens: int | None = None) -> dict[str, Any]:
    """Anthropic counts cache reads and writes apart from ``input_tokens``."""
    writes = billed.cache_write_tokens + billed.cache_write_1h_tokens
    return {
        "input_tokens": max(billed.input_tokens - billed.cached_input_tokens - writes, 0),
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": billed.cached_input_tokens,
        "output_tokens": billed.output_tokens if output_tokens is None else output_tokens,
    }


def _content(answer: Completion) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}] if answer.text else []
    for call in answer.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": orjson.loads(call.arguments)}
        )
    return content


def _message(ctx: Ctx, conv: Conversation) -> dict[str, Any]:
    return {
        "id": f"msg_{ctx.request_id}",
        "type": "message",
        "role": "assistant",
        "model": f"{conv.provider}/{conv.model}",
        "stop_sequence": None,
    }


def message(conv: Conversation, answer: Completion, billed: Usage, ctx: Ctx) -> dict[str, Any]:
    """Anthropic's own answer as it came, or a translated one in its shape."""
    if conv.native is not None and answer.body is not None:
        return answer.body
    return {
        **_message(ctx, conv),
        "content": _content(answer),
        "stop_reason": _STOP_REASONS[answer.finish],
        "usage": usage(billed),
    }


def error_body(error: ApiError, ctx: Ctx) -> Response:
    """``{"type":"error","error":{type, message}}``; the gateway's code rides inside."""
    kind = _ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    inner = {"type": kind, "message": error.message, "code": error.code, **error.extra}
    body = {"type": "error", "error": inner, "request_id": ctx.request_id}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


# ----------------------------------------------------------------------------- streams


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


class AnthropicGrammar:
    """``message_start``, content blocks (text, ``tool_use`` with ``input_json_delta``),
    ``message_delta`` with the stop reason and usage, ``message_stop``. From Anthropic itself
    the events pass as they came."""

    def __init__(self) -> None:
        self.native = False
        self._open: int | None = None  # the content block being written
        self._open_is_text = False
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # tool-call index -> content block index
        self._finish = "end_turn"

    def head(self, call: Any) -> bytes:
        conv: Conversation = call.conv
        self.native = conv.native is not None
        if self.native:
            return b""
        start = {**_message(call.ctx, conv), "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": 0, "output_tokens": 0}
        return _event("message_start", {"message": start})

    def _start(self, block: dict[str, Any]) -> bytes:
        out = self._stop()
        self._open, self._blocks = self._blocks, self._blocks + 1
        self._open_is_text = block["type"] == "text"
        return out + _event("content_block_start", {"index": self._open, "content_block": block})

    def _stop(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return _event("content_block_stop", {"index": index})

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": index, "delta": delta})

    def item(self, item: Any) -> bytes:
        if self.native:
            if not isinstance(item, SSEEvent):
                return b""
            return (
                b"event: " + (item.event or "message").encode() + b"\ndata: " + item.data.encode() + b"\n\n"
            )
        if isinstance(item, str):
            out = (
                b""
                if self._open is not None and self._open_is_text
                else self._start({"type": "text", "text": ""})
            )
            assert self._open is not None
            return out + self._delta(self._open, {"type": "text_delta", "text": item})
        if isinstance(item, ToolCallDelta):
            return self._tool_piece(item)
        if isinstance(item, Finish):
            self._finish = _STOP_REASONS[item.reason]
        return b""

    def _tool_piece(self, item: ToolCallDelta) -> bytes:
        out = b""
        if item.id is not None:
            out = self._start({"type": "tool_use", "id": item.id, "name": item.name, "input": {}})
            assert self._open is not None
            self._tool_blocks[item.index] = self._open
        index = self._tool_blocks.get(item.index)
        if index is None or not item.arguments:
            return out
        return out + self._delta(index, {"type": "input_json_delta", "partial_json": item.arguments})

    def ping(self) -> bytes:
        return _event("ping", {})

    def error(self, message: str, code: str) -> bytes:
        return _event("error", {"error": {"type": "api_error", "message": message, "code": code}})

    def done(self, call: Any, billed: Usage, month: dict[str, Any]) -> bytes:
        if self.native:
            return b""  # Anthropic's own message_delta and message_stop went through
        return self._end(billed, self._finish)

    def _end(self, billed: Usage, reason: str) -> bytes:
        delta = {"delta": {"stop_reason": reason, "stop_sequence": None}, "usage": usage(billed)}
        return self._stop() + _event("message_delta", delta) + _event("message_stop", {})

    def stopped(self, call: Any, billed: Usage, month: dict[str, Any], message: str, code: str) -> bytes:
        """The ``error`` event the SDK raises on (the gateway's code inside), then the message's
        end with the usage billed, stopped as if at max_tokens: the budget ran out. The
        provider's own end never came, native or not (a native open block is left to the error)."""
        return self.error(message, code) + self._end(billed, "max_tokens")
