"""Google Gemini API: ``POST {base}/v1beta/models/{model}:generateContent``, and
``:streamGenerateContent?alt=sse`` for streams (frames end in ``\\r\\n\\r\\n``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
from shared.providers.errors import ErrorDetails, seconds
from shared.providers.sse import SSEEvent

_ROLES = {"user": "user", "assistant": "model"}


def usage_from(raw: Any) -> Usage | None:
    """``candidatesTokenCount`` excludes thoughts, which are billed as output;
    ``cachedContentTokenCount`` is a subset of ``promptTokenCount``; tool-use prompt tokens
    (URL context...) come on top of the prompt. Any count may be missing when zero."""
    if not isinstance(raw, dict):
        return None
    tool = count(raw.get("toolUsePromptTokenCount"))
    return Usage(
        input_tokens=count(raw.get("promptTokenCount")) + tool,
        output_tokens=count(raw.get("candidatesTokenCount")) + count(raw.get("thoughtsTokenCount")),
        cached_input_tokens=count(raw.get("cachedContentTokenCount")),
        tool_prompt_tokens=tool,
    )


def _candidates(response: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = response.get("candidates")
    return [as_dict(c) for c in candidates] if isinstance(candidates, list) else []


def _texts(response: dict[str, Any]) -> list[str]:
    """Text parts of the first candidate, without thought summaries. ``content`` may have
    no ``parts`` at all (a MAX_TOKENS stop spent on thinking)."""
    candidates = _candidates(response)
    parts = as_dict(candidates[0].get("content")).get("parts") if candidates else None
    if not isinstance(parts, list):
        return []
    return [
        part["text"]
        for part in map(as_dict, parts)
        if isinstance(part.get("text"), str) and part["text"] and not part.get("thought")
    ]


def _unwrap(payload: Any) -> list[dict[str, Any]]:
    """Some Google errors come wrapped in a one-element JSON array."""
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]


class GeminiStream(StreamParser):
    """Every chunk is a full response whose ``usageMetadata`` is cumulative: keep the last.
    There is no terminal marker: the stream is complete at EOF after a ``finishReason``."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._saw_finish = False

    def feed(self, event: SSEEvent) -> list[str]:
        texts: list[str] = []
        for chunk in _unwrap(self.payload(event)):
            if "error" in chunk:
                raise self.error(as_dict(chunk["error"]).get("message"))
            usage = usage_from(chunk.get("usageMetadata"))
            if usage is not None:
                self.usage = usage
            if any(c.get("finishReason") for c in _candidates(chunk)):
                self._saw_finish = True
            if as_dict(chunk.get("promptFeedback")).get("blockReason"):
                self._saw_finish = True  # a blocked prompt ends with no candidates at all
            texts.extend(_texts(chunk))
        return texts

    def end(self) -> None:
        self.finished = self._saw_finish


class Gemini(Provider):
    name = "gemini"
    label = "Gemini"

    def build(self, req: ChatRequest, cfg: Settings, *, stream: bool) -> UpstreamCall:
        system = [{"text": m.text} for m in req.messages if m.role in ("system", "developer")]
        contents = [
            {"role": _ROLES[m.role], "parts": [{"text": m.text}]} for m in req.messages if m.role in _ROLES
        ]
        body: dict[str, Any] = {
            "contents": contents,
            "generationConfig": {"maxOutputTokens": req.max_tokens, "temperature": req.temperature},
        }
        if system:
            body["systemInstruction"] = {"parts": system}
        model = quote(req.model, safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        headers = request_headers(stream, {"x-goog-api-key": cfg.gemini_api_key})
        return UpstreamCall(f"{cfg.gemini_base_url}/v1beta/models/{model}:{method}", headers, body)

    def parse_completion(self, body: Any) -> tuple[str, Usage, str | None]:
        body = as_dict(body)
        response_id = body.get("responseId")
        return "".join(_texts(body)), usage_from(body.get("usageMetadata")) or Usage(), response_id

    def stream_parser(self) -> StreamParser:
        return GeminiStream(self.label)

    def error_details(self, body: Any) -> ErrorDetails:
        """``{"error":{code,message,status,details}}``. A bad key is a 400 whose details hold
        ``ErrorInfo.reason: API_KEY_INVALID``; a 429's wait is in ``RetryInfo.retryDelay``."""
        items = _unwrap(body)
        error = as_dict(items[0].get("error")) if items else {}
        details = [as_dict(d) for d in error.get("details") or [] if isinstance(d, dict)]
        delays = [d["retryDelay"] for d in details if isinstance(d.get("retryDelay"), str)]
        message = error.get("message")
        return ErrorDetails(
            message=message if isinstance(message, str) else "",
            retry_after=seconds(delays[0]) if delays else None,
            bad_api_key=any(d.get("reason") == "API_KEY_INVALID" for d in details),
        )
