"""OpenAI Chat Completions: ``POST {base}/chat/completions`` (the base includes ``/v1``)."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.gateway.request import ChatRequest
from shared.providers.base import Provider, StreamParser, UpstreamCall, Usage, count, request_headers
from shared.providers.errors import ErrorDetails
from shared.providers.sse import SSEEvent


def usage_from(raw: Any) -> Usage | None:
    """``prompt_tokens`` already includes cached tokens and ``completion_tokens`` includes
    reasoning tokens. 2024 responses lack the ``*_details`` objects: they count as 0."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=count(raw.get("prompt_tokens")),
        output_tokens=count(raw.get("completion_tokens")),
        cached_input_tokens=count(details.get("cached_tokens") if isinstance(details, dict) else 0),
    )


def _first_choice(body: Any) -> dict[str, Any]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


class OpenAIStream(StreamParser):
    """No event names; usage comes in one extra ``choices: []`` chunk (only when
    ``include_usage`` was asked for) just before ``data: [DONE]``."""

    def feed(self, event: SSEEvent) -> list[str]:
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
        delta = _first_choice(chunk).get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
        return [text] if isinstance(text, str) and text else []


class OpenAI(Provider):
    name = "openai"
    label = "OpenAI"

    def build(self, req: ChatRequest, cfg: Settings, *, stream: bool) -> UpstreamCall:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [{"role": m.role, "content": m.text} for m in req.messages],
            "max_completion_tokens": req.max_tokens,
            "temperature": req.temperature,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}  # else the stream carries no usage
        headers = request_headers(stream, {"authorization": f"Bearer {cfg.openai_api_key}"})
        return UpstreamCall(f"{cfg.openai_base_url}/chat/completions", headers, body)

    def parse_completion(self, body: Any) -> tuple[str, Usage, str | None]:
        message = _first_choice(body).get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
        usage = usage_from(body.get("usage") if isinstance(body, dict) else None)
        response_id = body.get("id") if isinstance(body, dict) else None
        return text if isinstance(text, str) else "", usage or Usage(), response_id

    def stream_parser(self) -> StreamParser:
        return OpenAIStream(self.label)

    def error_details(self, body: Any) -> ErrorDetails:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ErrorDetails()
        message = error.get("message")
        return ErrorDetails(message=message if isinstance(message, str) else "")
