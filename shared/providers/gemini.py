"""Google Gemini API: ``POST {base}/v1beta/models/{model}:generateContent``, and
``:streamGenerateContent?alt=sse`` for streams (frames end in ``\\r\\n\\r\\n``)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

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
    json_text,
    load_json,
    request_headers,
)
from shared.providers.conversation import (
    Conversation,
    Finish,
    FinishReason,
    Image,
    Part,
    Piece,
    Text,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Turn,
)
from shared.providers.errors import ErrorDetails, seconds
from shared.providers.sse import SSEEvent

_ROLES = {"user": "user", "assistant": "model", "tool": "user"}
# Thinking budgets for OpenAI's reasoning_effort.
EFFORT_BUDGETS = {"low": 1_024, "medium": 8_192, "high": 24_576}
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "named": "ANY"}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def usage_from(raw: Any) -> Usage | None:
    """``candidatesTokenCount`` excludes thoughts, which are billed as output;
    ``cachedContentTokenCount`` is a subset of ``promptTokenCount``; tool-use prompt tokens
    (URL context...) come on top of the prompt. Any count may be missing when zero."""
    if not isinstance(raw, dict):
        return None
    tool = count(raw.get("toolUsePromptTokenCount"))
    thoughts = count(raw.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=count(raw.get("promptTokenCount")) + tool,
        output_tokens=count(raw.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=count(raw.get("cachedContentTokenCount")),
        tool_prompt_tokens=tool,
        reasoning_tokens=thoughts,
    )


def _candidates(response: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = response.get("candidates")
    return [as_dict(c) for c in candidates] if isinstance(candidates, list) else []


def _parts(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Parts of the first candidate, without thought summaries. ``content`` may have no
    ``parts`` at all (a MAX_TOKENS stop spent on thinking)."""
    candidates = _candidates(response)
    parts = as_dict(candidates[0].get("content")).get("parts") if candidates else None
    if not isinstance(parts, list):
        return []
    return [part for part in map(as_dict, parts) if not part.get("thought")]


def _texts(parts: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for part in parts if isinstance(part.get("text"), str) and part["text"]]


def _calls(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [as_dict(part["functionCall"]) for part in parts if "functionCall" in part]


def _call_id(call: dict[str, Any]) -> str:
    """Gemini's calls may have no id; the client needs one to answer them."""
    given = call.get("id")
    return given if isinstance(given, str) and given else "call_" + os.urandom(12).hex()


def _finish(response: dict[str, Any], called: bool) -> FinishReason | None:
    candidates = _candidates(response)
    reason = candidates[0].get("finishReason") if candidates else None
    if as_dict(response.get("promptFeedback")).get("blockReason"):
        return "content_filter"
    if not isinstance(reason, str):
        return None
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if called else "stop"


def _unwrap(payload: Any) -> list[dict[str, Any]]:
    """Some Google errors come wrapped in a one-element JSON array."""
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]


def _part(part: Text | Image | ToolCall | ToolResult, names: dict[str, str]) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Image):  # only inline: Gemini.refusal turns URLs away
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    if isinstance(part, ToolCall):
        return {"functionCall": {"name": part.name, "args": as_dict(load_json(part.arguments))}}
    answer = load_json(part.content)
    response = answer if isinstance(answer, dict) else {"result": part.content}
    return {"functionResponse": {"name": names.get(part.call_id, ""), "response": response}}


def _contents(turns: tuple[Turn, ...]) -> list[dict[str, Any]]:
    """Gemini answers a call by the function's name: the names come from the calls."""
    names = {p.id: p.name for turn in turns for p in turn.parts if isinstance(p, ToolCall)}
    return [
        {"role": _ROLES[turn.role], "parts": [_part(part, names) for part in _spoken(turn.parts)]}
        for turn in turns
        if turn.role in _ROLES
    ]


def _spoken(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """Empty text beside a call (an assistant turn that only called tools) says nothing."""
    kept = tuple(part for part in parts if not (isinstance(part, Text) and not part.text))
    return kept or parts


def _generation_config(conv: Conversation) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": conv.max_tokens}
    optional = {"temperature": conv.temperature, "topP": conv.top_p, "seed": conv.seed}
    config |= {name: value for name, value in optional.items() if value is not None}
    if conv.stop:
        config["stopSequences"] = list(conv.stop)
    budget = conv.thinking_budget or EFFORT_BUDGETS.get(conv.reasoning_effort or "")
    if budget:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    rf = conv.response_format
    if rf is not None:
        config["responseMimeType"] = "application/json"
        if rf.schema is not None:  # full JSON Schema (responseSchema takes only a subset)
            config["responseJsonSchema"] = rf.schema
    return config


def _tools(conv: Conversation) -> dict[str, Any]:
    if not conv.tools:
        return {}
    declarations = [
        {"name": t.name, "parametersJsonSchema": t.parameters}
        | ({"description": t.description} if t.description else {})
        for t in conv.tools
    ]
    body: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    choice = conv.tool_choice
    if choice is not None:
        calling: dict[str, Any] = {"mode": _CHOICE_MODES[choice.mode]}
        if choice.mode == "named":
            calling["allowedFunctionNames"] = [choice.name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    return body


class GeminiStream(StreamParser):
    """Every chunk is a full response whose ``usageMetadata`` is cumulative: keep the last.
    There is no terminal marker: the stream is complete at EOF after a ``finishReason``.
    A function call arrives whole, in one chunk."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._saw_finish = False
        self._calls = 0

    def feed(self, event: SSEEvent) -> list[Piece]:
        pieces: list[Piece] = []
        for chunk in _unwrap(self.payload(event)):
            if "error" in chunk:
                raise self.error(as_dict(chunk["error"]).get("message"))
            usage = usage_from(chunk.get("usageMetadata"))
            if usage is not None:
                self.usage = usage
            parts = _parts(chunk)
            pieces.extend(_texts(parts))
            for call in _calls(parts):
                index, self._calls = self._calls, self._calls + 1
                arguments = json_text(call.get("args"))
                pieces.append(ToolCallDelta(index, _call_id(call), str(call.get("name")), arguments))
            finish = _finish(chunk, self._calls > 0)
            if finish is not None:
                self._saw_finish = True
                pieces.append(Finish(finish))
        return pieces

    def end(self) -> None:
        self.finished = self._saw_finish


class Gemini(Provider):
    name = "gemini"
    label = "Gemini"

    def refusal(self, conv: Conversation) -> str | None:
        if any(isinstance(p, Image) and p.url for turn in conv.turns for p in turn.parts):
            return "image_url"  # Gemini reads images inline; it does not fetch URLs
        if conv.user is not None:
            return "user"
        if conv.parallel_tool_calls is False:
            return "parallel_tool_calls"
        return None

    def build(self, conv: Conversation, cfg: Settings, *, stream: bool) -> UpstreamCall:
        system = [{"text": t.text} for t in conv.turns if t.role in ("system", "developer")]
        body: dict[str, Any] = {
            "contents": _contents(conv.turns),
            "generationConfig": _generation_config(conv),
        }
        if system:
            body["systemInstruction"] = {"parts": system}
        body |= _tools(conv)
        model = quote(conv.model, safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        headers = request_headers(stream, {"x-goog-api-key": cfg.gemini_api_key})
        return UpstreamCall(f"{cfg.gemini_base_url}/v1beta/models/{model}:{method}", headers, body)

    def parse_completion(self, body: dict[str, Any], conv: Conversation) -> Completion:
        parts = _parts(body)
        calls = tuple(
            ToolCall(_call_id(c), str(c.get("name")), json_text(c.get("args"))) for c in _calls(parts)
        )
        response_id = body.get("responseId")
        return Completion(
            text="".join(_texts(parts)),
            usage=usage_from(body.get("usageMetadata")) or Usage(),
            upstream_request_id=response_id if isinstance(response_id, str) else None,
            tool_calls=calls,
            finish=_finish(body, bool(calls)) or "stop",
            body=body,
        )

    def stream_parser(self, conv: Conversation) -> StreamParser:
        return GeminiStream(self.label)

    def build_embeddings(self, conv: Conversation, cfg: Settings) -> UpstreamCall:
        model = quote(conv.model, safe="")
        extra = {"outputDimensionality": conv.dimensions} if conv.dimensions is not None else {}
        requests = [
            {"model": f"models/{conv.model}", "content": {"parts": [{"text": text}]}} | extra
            for text in conv.inputs()
        ]
        headers = request_headers(False, {"x-goog-api-key": cfg.gemini_api_key})
        url = f"{cfg.gemini_base_url}/v1beta/models/{model}:batchEmbedContents"
        return UpstreamCall(url, headers, {"requests": requests})

    def parse_embeddings(self, body: dict[str, Any]) -> Embeddings:
        """Gemini reports no usage for embeddings."""
        vectors = [list(as_dict(e).get("values") or []) for e in body.get("embeddings") or []]
        return Embeddings(vectors, None)

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
