"""Anthropic Messages: ``POST {base}/v1/messages`` (the base has no ``/v1``)."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.gateway.request import ChatRequest
from shared.providers.base import (
    Provider,
    StreamParser,
    UpstreamCall,
    Usage,
    as_dict,
    count,
    request_headers,
)
from shared.providers.errors import ErrorDetails
from shared.providers.sse import SSEEvent

API_VERSION = "2023-06-01"
MAX_TEMPERATURE = 1.0  # Anthropic's range is 0-1; OpenAI's is 0-2


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


def _messages(req: ChatRequest) -> tuple[str, list[dict[str, str]]]:
    """System and developer messages go to the top-level ``system`` field (Anthropic has no
    such role); consecutive turns of one role are merged, as the API wants them to alternate."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for message in req.messages:
        if message.role in ("system", "developer"):
            system.append(message.text)
        elif turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.text
        else:
            turns.append({"role": message.role, "content": message.text})
    return "\n\n".join(system), turns


class AnthropicStream(StreamParser):
    """Usage starts from ``message_start`` and is overwritten by every non-null key of each
    ``message_delta.usage``: those counts are cumulative, never to be added up."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._raw_usage: dict[str, Any] = {}

    def feed(self, event: SSEEvent) -> list[str]:
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
        elif kind == "message_stop":
            self.finished = True
        elif kind == "content_block_delta":
            delta = as_dict(data.get("delta"))
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
                return [delta["text"]]
        return []

    def _merge(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({key: value for key, value in usage.items() if value is not None})
            self.usage = usage_from(self._raw_usage)


class Anthropic(Provider):
    name = "anthropic"
    label = "Anthropic"

    def build(self, req: ChatRequest, cfg: Settings, *, stream: bool) -> UpstreamCall:
        system, messages = _messages(req)
        body: dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": messages,
            "temperature": min(req.temperature, MAX_TEMPERATURE),
        }
        if system:
            body["system"] = system
        if stream:
            body["stream"] = True
        headers = request_headers(
            stream, {"x-api-key": cfg.anthropic_api_key, "anthropic-version": API_VERSION}
        )
        return UpstreamCall(f"{cfg.anthropic_base_url}/v1/messages", headers, body)

    def parse_completion(self, body: Any) -> tuple[str, Usage, str | None]:
        """Only ``text`` blocks are the answer; thinking and tool_use blocks are not."""
        body = as_dict(body)
        blocks = body.get("content") if isinstance(body.get("content"), list) else []
        text = "".join(
            block["text"]
            for block in blocks
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
        return text, usage_from(body.get("usage")) or Usage(), body.get("id")

    def stream_parser(self) -> StreamParser:
        return AnthropicStream(self.label)

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
