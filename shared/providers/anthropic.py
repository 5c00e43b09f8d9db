"""Anthropic Messages: ``POST {base}/v1/messages`` (the base has no ``/v1``)."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.providers.base import (
    Completion,
    Provider,
    StreamParser,
    UpstreamCall,
    Usage,
    as_dict,
    count,
    json_text,
    load_json,
    request_headers,
)
from shared.providers.conversation import (
    Conversation,
    Finish,
    FinishReason,
    Image,
    Piece,
    Text,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Turn,
)
from shared.providers.errors import ErrorDetails
from shared.providers.sse import SSEEvent

API_VERSION = "2023-06-01"
MAX_TEMPERATURE = 1.0  # Anthropic's range is 0-1; OpenAI's is 0-2
# Thinking budgets for OpenAI's reasoning_effort (Anthropic's minimum budget is 1,024).
EFFORT_BUDGETS = {"low": 1_024, "medium": 4_096, "high": 16_384}
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_from(raw: Any) -> Usage | None:
    """Anthropic's ``input_tokens`` excludes cache traffic, so the prompt the client sees is
    input + cache writes + cache reads. Without the ``cache_creation`` breakdown every
    write is priced as a 5-minute write; with it, whatever is not a 1-hour write is."""
    if not isinstance(raw, dict):
        return None
    fresh = count(raw.get("input_tokens"))
    reads = count(raw.get("cache_read_input_tokens"))
    writes = count(raw.get("cache_creation_input_tokens"))
    breakdown = raw.get("cache_creation")
    writes_1h = count(breakdown.get("ephemeral_1h_input_tokens")) if isinstance(breakdown, dict) else 0
    if isinstance(breakdown, dict):
        writes = max(writes, count(breakdown.get("ephemeral_5m_input_tokens")) + writes_1h)
    return Usage(
        input_tokens=fresh + writes + reads,
        output_tokens=count(raw.get("output_tokens")),
        cached_input_tokens=reads,
        cache_write_tokens=writes - writes_1h,
        cache_write_1h_tokens=writes_1h,
    )


def _block(part: Text | Image | ToolCall | ToolResult) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        if part.url:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": part.media_type, "data": part.data},
        }
    if isinstance(part, ToolCall):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": as_dict(load_json(part.arguments)),
        }
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
    return result | ({"is_error": True} if part.is_error else {})


def _messages(turns: tuple[Turn, ...]) -> tuple[str, list[dict[str, Any]]]:
    """System and developer turns go to the top-level ``system`` field (Anthropic has no such
    role), tool results into user turns; consecutive turns of one role are merged, as the
    API wants them to alternate. Text-only turns stay plain strings."""
    system: list[str] = []
    merged: list[tuple[str, list[dict[str, Any]]]] = []
    for turn in turns:
        if turn.role in ("system", "developer"):
            system.append(turn.text)
            continue
        role = "assistant" if turn.role == "assistant" else "user"
        blocks = [_block(part) for part in turn.parts if not (isinstance(part, Text) and not part.text)]
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, blocks))
    messages = []
    for role, blocks in merged:
        text_only = all(block["type"] == "text" for block in blocks)
        content: Any = "\n\n".join(block["text"] for block in blocks) if text_only else blocks
        messages.append({"role": role, "content": content})
    return "\n\n".join(system), messages


def _tool_choice(conv: Conversation) -> dict[str, Any] | None:
    choice = conv.tool_choice
    kinds = {"auto": "auto", "none": "none", "required": "any", "named": "tool"}
    chosen: dict[str, Any] | None = None
    if choice is not None:
        chosen = {"type": kinds[choice.mode]} | ({"name": choice.name} if choice.mode == "named" else {})
    if conv.parallel_tool_calls is False and conv.tools:
        chosen = (chosen or {"type": "auto"}) | {"disable_parallel_tool_use": True}
    return chosen


def _options(conv: Conversation) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if conv.temperature is not None:
        body["temperature"] = min(conv.temperature, MAX_TEMPERATURE)
    if conv.top_p is not None:
        body["top_p"] = conv.top_p
    if conv.stop:
        body["stop_sequences"] = list(conv.stop)
    if conv.user:
        body["metadata"] = {"user_id": conv.user}
    budget = conv.thinking_budget or EFFORT_BUDGETS.get(conv.reasoning_effort or "")
    if budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    tools = [
        {"name": t.name, "input_schema": t.parameters}
        | ({"description": t.description} if t.description else {})
        for t in conv.tools
    ]
    choice = _tool_choice(conv)
    rf = conv.response_format
    if rf is not None:  # JSON output is a forced call of a tool whose input is the answer
        tools.append({"name": rf.name, "input_schema": rf.schema or {"type": "object"}})
        choice = {"type": "tool", "name": rf.name}
    if tools:
        body["tools"] = tools
    if choice:
        body["tool_choice"] = choice
    return body


def _answer_tool(conv: Conversation) -> str | None:
    """The name of the tool whose input is the JSON answer (see :func:`_options`)."""
    return conv.response_format.name if conv.response_format is not None and conv.native is None else None


class AnthropicStream(StreamParser):
    """Usage starts from ``message_start`` and is overwritten by every non-null key of each
    ``message_delta.usage``: those counts are cumulative, never to be added up. Tool-use
    blocks become tool-call pieces numbered in order; the JSON-answer tool's input is text."""

    def __init__(self, label: str, answer_tool: str | None) -> None:
        super().__init__(label)
        self._raw_usage: dict[str, Any] = {}
        self._answer_tool = answer_tool
        self._tool_index: dict[int, int] = {}  # content block index -> tool-call index
        self._answer_blocks: set[int] = set()

    def feed(self, event: SSEEvent) -> list[Piece]:
        data = self.payload(event)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        if kind == "error" or event.event == "error":
            error = data.get("error")
            raise self.error(error.get("message") if isinstance(error, dict) else None)
        if kind == "message_start":
            self._merge(as_dict(data.get("message")).get("usage"))
        elif kind == "message_delta":
            self._merge(data.get("usage"))
            reason = as_dict(data.get("delta")).get("stop_reason")
            if isinstance(reason, str):
                finish = _FINISH.get(reason, "stop")
                return [Finish("stop" if self._answer_blocks and finish == "tool_calls" else finish)]
        elif kind == "message_stop":
            self.finished = True
        elif kind == "content_block_start":
            return self._start(count(data.get("index")), as_dict(data.get("content_block")))
        elif kind == "content_block_delta":
            return self._delta(count(data.get("index")), as_dict(data.get("delta")))
        return []

    def _start(self, index: int, block: dict[str, Any]) -> list[Piece]:
        if block.get("type") != "tool_use":
            return []
        if block.get("name") == self._answer_tool:
            self._answer_blocks.add(index)
            return []
        self._tool_index[index] = len(self._tool_index)
        return [ToolCallDelta(self._tool_index[index], id=str(block.get("id")), name=str(block.get("name")))]

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Piece]:
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            return [delta["text"]]
        if (
            kind == "input_json_delta"
            and isinstance(delta.get("partial_json"), str)
            and delta["partial_json"]
        ):
            if index in self._answer_blocks:
                return [delta["partial_json"]]
            if index in self._tool_index:
                return [ToolCallDelta(self._tool_index[index], arguments=delta["partial_json"])]
        return []

    def _merge(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({key: value for key, value in usage.items() if value is not None})
            self.usage = usage_from(self._raw_usage)


class Anthropic(Provider):
    name = "anthropic"
    label = "Anthropic"

    def refusal(self, conv: Conversation) -> str | None:
        return "seed" if conv.seed is not None else None

    def build(self, conv: Conversation, cfg: Settings, *, stream: bool) -> UpstreamCall:
        if conv.native is not None:  # the client's own Messages body, model resolved
            body = {**conv.native, "model": conv.model}
            body.pop("stream", None)
        else:
            system, messages = _messages(conv.turns)
            body = {"model": conv.model, "max_tokens": conv.max_tokens, "messages": messages}
            body |= _options(conv)
            if system:
                body["system"] = system
        if stream:
            body["stream"] = True
        headers = request_headers(
            stream, {"x-api-key": cfg.anthropic_api_key, "anthropic-version": API_VERSION}
        )
        return UpstreamCall(f"{cfg.anthropic_base_url}/v1/messages", headers, body)

    def parse_completion(self, body: dict[str, Any], conv: Conversation) -> Completion:
        """Text blocks are the answer (thinking blocks are not); tool_use blocks are calls,
        but for the JSON-answer tool, whose input is the answer."""
        blocks = [as_dict(b) for b in body.get("content") or [] if isinstance(b, dict)]
        answer_tool = _answer_tool(conv)
        texts, calls = [], []
        for block in blocks:
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "tool_use" and block.get("name") == answer_tool:
                texts.append(json_text(block.get("input")))
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(str(block.get("id")), str(block.get("name")), json_text(block.get("input")))
                )
        finish = _FINISH.get(str(body.get("stop_reason")), "stop")
        response_id = body.get("id")
        return Completion(
            text="".join(texts),
            usage=usage_from(body.get("usage")) or Usage(),
            upstream_request_id=response_id if isinstance(response_id, str) else None,
            tool_calls=tuple(calls),
            finish="stop" if finish == "tool_calls" and not calls else finish,
            body=body,
        )

    def stream_parser(self, conv: Conversation) -> StreamParser:
        return AnthropicStream(self.label, _answer_tool(conv))

    def error_details(self, body: Any) -> ErrorDetails:
        """``{"type":"error","error":{"type","message"},"request_id"}``; 2024 bodies lack the id."""
        body = as_dict(body)
        error = as_dict(body.get("error"))
        message = error.get("message")
        request_id = body.get("request_id")
        return ErrorDetails(
            message=message if isinstance(message, str) else "",
            request_id=request_id if isinstance(request_id, str) else None,
        )
