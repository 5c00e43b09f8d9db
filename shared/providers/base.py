"""What every provider adapter shares: the normalised usage and result types, and the
small interface each adapter implements (build a request, parse a reply, parse a stream,
read an error body). Adapters are pure: no network here, so they are unit-testable."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

import orjson

from shared.config import Settings
from shared.providers.conversation import Conversation, FinishReason, Piece, ToolCall
from shared.providers.errors import ErrorDetails, UpstreamError, stream_error
from shared.providers.sse import SSEEvent


def request_headers(stream: bool, auth: dict[str, str]) -> dict[str, str]:
    accept = "text/event-stream" if stream else "application/json"
    return {"content-type": "application/json", "accept": accept, **auth}


class Usage(NamedTuple):
    """Token counts as the client should see them, uniform across providers.

    ``input_tokens`` is the whole prompt (cached and cache-written tokens included) and
    ``output_tokens`` everything billed as output (reasoning/thinking included), so that
    ``shared.pricing.cost_nanos`` needs one formula for all three providers.
    ``tool_prompt_tokens`` is the part of the prompt Gemini added itself (URL context...):
    billed as input, but not part of the prompt that decides the long-context tier.
    ``reasoning_tokens`` is the part of the output spent thinking, where the provider says.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    tool_prompt_tokens: int = 0
    reasoning_tokens: int = 0


class Completion(NamedTuple):
    """A non-streamed answer; ``body`` is the provider's own JSON, for a client that speaks
    the provider's format (it gets the answer as the provider wrote it)."""

    text: str
    usage: Usage
    upstream_request_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish: FinishReason = "stop"
    body: dict[str, Any] | None = None


class Embeddings(NamedTuple):
    """One vector per input, and the usage when the provider reports it (Gemini does not)."""

    vectors: list[list[float]]
    usage: Usage | None


class UpstreamCall(NamedTuple):
    """One HTTP request to a provider, ready to send."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]


class UpstreamResponse(Protocol):
    """What a provider answered, its body not yet read: an HTTP response from
    ``shared.http11``, or a local provider's answer made in this process."""

    status: int
    headers: dict[str, str]

    @property
    def is_success(self) -> bool: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


def count(value: Any) -> int:
    """A token count from JSON: absent, null or junk means 0 (providers omit zero counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: provider JSON is read defensively."""
    return value if isinstance(value, dict) else {}


def json_text(value: Any) -> str:
    """Compact JSON text of arguments a provider sent parsed (``{}`` for none)."""
    return orjson.dumps(value if value is not None else {}).decode()


def load_json(data: str | bytes) -> Any:
    """Parse JSON, or None when it is not JSON (an HTML error page from a proxy, say)."""
    try:
        return orjson.loads(data)
    except ValueError:
        return None


class StreamParser(ABC):
    """Turns one provider's SSE events into text deltas while tracking usage.

    ``usage`` is the last known usage (possibly partial), ``finished`` whether the
    provider's terminal marker was seen. Mid-stream error events raise UpstreamError.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.usage: Usage | None = None
        self.finished = False

    @abstractmethod
    def feed(self, event: SSEEvent) -> list[Piece]:
        """What one event carries: text deltas, tool-call pieces, the finish."""

    def end(self) -> None:  # noqa: B027 - a hook: only Gemini needs it
        """Called at EOF. Gemini has no marker: it finishes at EOF after a finishReason."""

    def payload(self, event: SSEEvent) -> Any:
        """The event's JSON; an unreadable event means the stream cannot be trusted."""
        data = load_json(event.data)
        if data is None:
            raise stream_error(self.label, "an event that is not JSON")
        return data

    def error(self, message: object) -> UpstreamError:
        return stream_error(self.label, message if isinstance(message, str) else "")


class Provider(ABC):
    """One upstream API: how to call it and how to read what it says."""

    name: str
    label: str

    def api_key(self, cfg: Settings) -> str:
        """The operator's key for this upstream: the setting ``{name}_api_key``."""
        return str(getattr(cfg, f"{self.name}_api_key"))

    def refusal(self, conv: Conversation) -> str | None:
        """The first field of ``conv`` this provider cannot honour (the client gets a 400
        naming it), or None."""
        return None

    def answer_locally(self, call: UpstreamCall, cfg: Settings) -> UpstreamResponse | None:
        """The answer of a provider that runs in this process (the demo model), or None for
        one reached over the network. Everything else (keys, parsing, errors) is the same."""
        return None

    @abstractmethod
    def build(self, conv: Conversation, cfg: Settings, *, stream: bool) -> UpstreamCall: ...

    @abstractmethod
    def parse_completion(self, body: dict[str, Any], conv: Conversation) -> Completion:
        """A non-streamed reply (``upstream_request_id``: the id in the body, if any)."""

    @abstractmethod
    def stream_parser(self, conv: Conversation) -> StreamParser: ...

    def build_embeddings(self, conv: Conversation, cfg: Settings) -> UpstreamCall:
        raise NotImplementedError(f"{self.label} has no embeddings here")

    def parse_embeddings(self, body: dict[str, Any]) -> Embeddings:
        raise NotImplementedError(f"{self.label} has no embeddings here")

    @abstractmethod
    def error_details(self, body: Any) -> ErrorDetails:
        """Read a non-2xx body (already JSON-decoded, or None)."""
