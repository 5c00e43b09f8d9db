"""OpenAI Chat Completions: ``POST {base}/chat/completions`` (the base includes ``/v1``)."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.providers.base import (
    Completion,
    Embeddings,
    Provider,
    StreamParser,
    UpstreamCall,
    Usage,
    as_dict,
    count,
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

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def usage_from(raw: Any) -> Usage | None:
    """``prompt_tokens`` already includes cached tokens and ``completion_tokens`` includes
    reasoning tokens. 2024 responses lack the ``*_details`` objects: they count as 0."""
    if not isinstance(raw, dict):
        return None
    prompt = as_dict(raw.get("prompt_tokens_details"))
    completion = as_dict(raw.get("completion_tokens_details"))
    return Usage(
        input_tokens=count(raw.get("prompt_tokens")),
        output_tokens=count(raw.get("completion_tokens")),
        cached_input_tokens=count(prompt.get("cached_tokens")),
        reasoning_tokens=count(completion.get("reasoning_tokens")),
    )


def _first_choice(body: Any) -> dict[str, Any]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def image_url(image: Image) -> str:
    return image.url or f"data:{image.media_type};base64,{image.data}"


def _content(turn: Turn) -> str | list[dict[str, Any]]:
    """A plain string unless the turn has images (as the gateway has always sent text)."""
    if not any(isinstance(part, Image) for part in turn.parts):
        return turn.text
    return [
        {"type": "text", "text": part.text}
        if isinstance(part, Text)
        else {"type": "image_url", "image_url": {"url": image_url(part)}}
        for part in turn.parts
        if isinstance(part, Text | Image)
    ]


def _messages(turn: Turn) -> list[dict[str, Any]]:
    if turn.role == "tool":
        return [
            {"role": "tool", "tool_call_id": part.call_id, "content": part.content}
            for part in turn.parts
            if isinstance(part, ToolResult)
        ]
    message: dict[str, Any] = {"role": turn.role, "content": _content(turn)}
    calls = [part for part in turn.parts if isinstance(part, ToolCall)]
    if calls:
        message["content"] = message["content"] or None
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return [message]


def _effort(conv: Conversation) -> str | None:
    """OpenAI takes an effort, not a budget: an Anthropic-style thinking budget maps to the
    effort whose budget it is nearest (the same steps as Anthropic's adapter, in reverse)."""
    if conv.reasoning_effort is not None or conv.thinking_budget is None:
        return conv.reasoning_effort
    return "low" if conv.thinking_budget <= 2_048 else "medium" if conv.thinking_budget <= 8_192 else "high"


def _options(conv: Conversation) -> dict[str, Any]:
    """The request's optional fields, each only when the client set it."""
    body: dict[str, Any] = {}
    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    optional = {"top_p": conv.top_p, "seed": conv.seed, "user": conv.user}
    optional |= {"reasoning_effort": _effort(conv), "parallel_tool_calls": conv.parallel_tool_calls}
    body |= {name: value for name, value in optional.items() if value is not None}
    if conv.stop:
        body["stop"] = list(conv.stop)
    if conv.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "parameters": t.parameters}
                | ({"description": t.description} if t.description else {}),
            }
            for t in conv.tools
        ]
    if conv.tool_choice is not None:
        choice = conv.tool_choice
        named = {"type": "function", "function": {"name": choice.name}}
        body["tool_choice"] = named if choice.mode == "named" else choice.mode
    if conv.response_format is not None:
        rf = conv.response_format
        if rf.kind == "json_object":
            body["response_format"] = {"type": "json_object"}
        else:
            schema: dict[str, Any] = {"name": rf.name, "schema": rf.schema or {}}
            if rf.strict is not None:
                schema["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
    return body


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return ()
    found = []
    for call in map(as_dict, calls):
        function = as_dict(call.get("function"))
        arguments = function.get("arguments")
        found.append(
            ToolCall(
                id=str(call.get("id") or ""),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else "{}",
            )
        )
    return tuple(found)


class OpenAIStream(StreamParser):
    """No event names; usage comes in one extra ``choices: []`` chunk (only when
    ``include_usage`` was asked for) just before ``data: [DONE]``."""

    def feed(self, event: SSEEvent) -> list[Piece]:
        if event.data.strip() == "[DONE]":
            self.finished = True
            return []
        chunk = self.payload(event)
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            error = chunk["error"]
            raise self.error(error.get("message") if isinstance(error, dict) else error)
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choice = _first_choice(chunk)
        delta = as_dict(choice.get("delta"))
        pieces: list[Piece] = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            pieces.append(text)
        for call in map(as_dict, delta.get("tool_calls") or []):
            function = as_dict(call.get("function"))
            arguments = function.get("arguments")
            pieces.append(
                ToolCallDelta(
                    index=count(call.get("index")),
                    id=call.get("id") if isinstance(call.get("id"), str) else None,
                    name=function.get("name") if isinstance(function.get("name"), str) else None,
                    arguments=arguments if isinstance(arguments, str) else "",
                )
            )
        if choice.get("finish_reason") in _FINISH:
            pieces.append(Finish(_FINISH[choice["finish_reason"]]))
        return pieces


class OpenAI(Provider):
    name = "openai"
    label = "OpenAI"

    def build(self, conv: Conversation, cfg: Settings, *, stream: bool) -> UpstreamCall:
        if conv.native is not None:  # the client's own Chat Completions body, model resolved
            body = {**conv.native, "model": conv.model}
        else:
            messages = [message for turn in conv.turns for message in _messages(turn)]
            body = {"model": conv.model, "messages": messages, "max_completion_tokens": conv.max_tokens}
            body |= _options(conv)
        body.pop("stream", None)
        options = body.pop("stream_options", None)
        if stream:
            body["stream"] = True
            # else the stream carries no usage; the client's other options stay
            body["stream_options"] = {**as_dict(options), "include_usage": True}
        headers = request_headers(stream, {"authorization": f"Bearer {cfg.openai_api_key}"})
        return UpstreamCall(f"{cfg.openai_base_url}/chat/completions", headers, body)

    def parse_completion(self, body: dict[str, Any], conv: Conversation) -> Completion:
        choice = _first_choice(body)
        message = as_dict(choice.get("message"))
        text = message.get("content")
        response_id = body.get("id")
        return Completion(
            text=text if isinstance(text, str) else "",
            usage=usage_from(body.get("usage")) or Usage(),
            upstream_request_id=response_id if isinstance(response_id, str) else None,
            tool_calls=_tool_calls(message),
            finish=_FINISH.get(str(choice.get("finish_reason")), "stop"),
            body=body,
        )

    def stream_parser(self, conv: Conversation) -> StreamParser:
        return OpenAIStream(self.label)

    def build_embeddings(self, conv: Conversation, cfg: Settings) -> UpstreamCall:
        """Always floats upstream: the gateway encodes base64 itself when the client asks."""
        body: dict[str, Any] = {"model": conv.model, "input": conv.inputs(), "encoding_format": "float"}
        if conv.dimensions is not None:
            body["dimensions"] = conv.dimensions
        if conv.user is not None:
            body["user"] = conv.user
        headers = request_headers(False, {"authorization": f"Bearer {cfg.openai_api_key}"})
        return UpstreamCall(f"{cfg.openai_base_url}/embeddings", headers, body)

    def parse_embeddings(self, body: dict[str, Any]) -> Embeddings:
        rows = sorted(
            (as_dict(row) for row in body.get("data") or []), key=lambda row: count(row.get("index"))
        )
        usage = as_dict(body.get("usage"))
        prompt = count(usage.get("prompt_tokens"))
        return Embeddings(
            [list(row.get("embedding") or []) for row in rows], Usage(input_tokens=prompt) if prompt else None
        )

    def error_details(self, body: Any) -> ErrorDetails:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ErrorDetails()
        message = error.get("message")
        return ErrorDetails(message=message if isinstance(message, str) else "")
