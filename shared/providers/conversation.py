"""The neutral conversation each adapter translates to its provider, and what comes back.

Every way in speaks one of these: the gateway's own contract (text only), OpenAI's Chat
Completions and Anthropic's Messages (``shared.compat``). A request in either format can go
to any provider, so the model is the union of what the three providers share: system
instructions, user and assistant turns of text, images, tool calls and tool results, tools
with a JSON-schema, a tool choice, JSON output, and the usual sampling options. What a target
cannot honour is refused by the way in that parsed it, naming the field, never dropped.

``native`` is the client's own body when it already speaks the target's format (OpenAI to
OpenAI, Anthropic to Anthropic): the adapter then sends it through as is, so fields this
model does not know (``cache_control``, ``logprobs``, ``metadata``, ...) still arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
# Tokens an image may cost at most, for the admission bound (OpenAI's high detail at its
# largest is 1,105 tokens, Anthropic's 1,600, Gemini's 258 per tile of a few tiles).
IMAGE_TOKEN_BOUND = 3_000


class Text(NamedTuple):
    text: str


class Image(NamedTuple):
    """An image by URL (``https:``) or inline (``data`` is base64 with its ``media_type``)."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None


class ToolCall(NamedTuple):
    """A call the model asked for; ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str


class ToolResult(NamedTuple):
    """What the client's tool answered to the call ``call_id``."""

    call_id: str
    content: str
    is_error: bool = False


Part = Text | Image | ToolCall | ToolResult


class Turn(NamedTuple):
    """One message. ``tool`` turns carry only :class:`ToolResult` parts; ``system`` and
    ``developer`` turns only text (adapters without such roles lift them out, in order)."""

    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, Text))


class Tool(NamedTuple):
    name: str
    description: str | None
    parameters: dict[str, Any]


class ToolChoice(NamedTuple):
    mode: Literal["auto", "none", "required", "named"]
    name: str | None = None


class ResponseFormat(NamedTuple):
    """JSON output: any object (``json_object``) or one that fits ``schema``."""

    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None


@dataclass(frozen=True)
class Conversation:
    provider: str
    model: str
    turns: tuple[Turn, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    thinking_budget: int | None = None
    embedding: bool = False  # an embeddings request: each turn is one input to embed
    dimensions: int | None = None  # of the vectors, when the model can shorten them
    native: dict[str, Any] | None = field(default=None, compare=False)

    def text_bytes(self) -> int:
        """UTF-8 size of everything the model reads but images: at most one token a byte."""
        size = 0
        for turn in self.turns:
            for part in turn.parts:
                if isinstance(part, Text):
                    size += len(part.text.encode())
                elif isinstance(part, ToolCall):
                    size += len(part.name.encode()) + len(part.arguments.encode())
                elif isinstance(part, ToolResult):
                    size += len(part.content.encode())
        for tool in self.tools:
            size += len(tool.name.encode()) + len((tool.description or "").encode())
            size += len(repr(tool.parameters).encode())
        if self.response_format and self.response_format.schema:
            size += len(repr(self.response_format.schema).encode())
        return size

    def may_write_cache(self) -> bool:
        """Whether the provider may bill prompt tokens as cache writes, dearer than input: a
        body passed through as it came that marks ``cache_control`` anywhere (a block, a tool,
        the whole request). Only the reservation depends on it: a false alarm holds a little more."""
        return self.native is not None and _has_key(self.native, "cache_control")

    def with_max_tokens(self, tokens: int) -> Conversation:
        """The same request asking for at most ``tokens`` of output (a clamped call); a body
        passed through as it came says so in the field it used (OpenAI's
        ``max_completion_tokens`` or ``max_tokens``, Anthropic's ``max_tokens``)."""
        native = self.native
        if native is not None:
            named = [name for name in ("max_completion_tokens", "max_tokens") if native.get(name) is not None]
            if not named:
                named = ["max_completion_tokens" if self.provider == "openai" else "max_tokens"]
            native = {**native, **dict.fromkeys(named, tokens)}
        return replace(self, max_tokens=tokens, native=native)

    def inputs(self) -> list[str]:
        """The texts to embed, for an embeddings request."""
        return [turn.text for turn in self.turns]

    def images(self) -> int:
        return sum(isinstance(part, Image) for turn in self.turns for part in turn.parts)

    def image_bytes(self) -> int:
        """What the images take of the body: their URLs or base64 data, never fewer bytes."""
        images = (part for turn in self.turns for part in turn.parts if isinstance(part, Image))
        return sum(len(image.data or image.url or "") for image in images)


def _has_key(document: Any, key: str) -> bool:
    """Whether a JSON document has ``key`` in any of its objects (iterative: no nesting a
    client sends can exhaust the stack)."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if key in item:
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed tool call: the first piece of call ``index`` has its id and name,
    later pieces carry more of ``arguments``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Finish(NamedTuple):
    """The provider said why it stopped (streams end with one)."""

    reason: FinishReason


# What a stream yields: text deltas (``str``), tool-call pieces, and the finish.
Piece = str | ToolCallDelta | Finish
