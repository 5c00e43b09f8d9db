"""Calling the upstream LLM providers (OpenAI, Anthropic, Gemini; and on the dev server the
local demo model) with one interface.

    completion = await complete(conv)                 # text, tool calls, usage, request id
    async with open_stream(conv) as stream:           # raises UpstreamError before byte 1
        async for piece in stream: ...                # text, tool-call pieces, the finish
    stream.usage, stream.finished                     # last known usage; marker seen?

Every failure is an :class:`UpstreamError` carrying the status the gateway should answer.
Adapters (one module per provider) only translate; ``transport`` and ``stream`` do I/O.
"""

from __future__ import annotations

from shared import config, http11
from shared.providers import errors, transport
from shared.providers.anthropic import Anthropic
from shared.providers.base import Completion, Embeddings, Provider, Usage, load_json
from shared.providers.conversation import Conversation
from shared.providers.demo import Demo
from shared.providers.errors import UpstreamError
from shared.providers.gemini import Gemini
from shared.providers.openai import OpenAI
from shared.providers.stream import UpstreamStream

__all__ = [
    "PROVIDERS",
    "Completion",
    "Conversation",
    "Embeddings",
    "UpstreamError",
    "UpstreamStream",
    "Usage",
    "aclose",
    "complete",
    "embed",
    "is_configured",
    "open_stream",
    "out_of_time",
    "refusal",
]

PROVIDERS: dict[str, Provider] = {p.name: p for p in (OpenAI(), Anthropic(), Gemini(), Demo())}
aclose = http11.aclose


def _provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}") from None


def is_configured(provider: str) -> bool:
    """Whether the gateway has an API key for ``provider``."""
    return bool(_provider(provider).api_key(config.settings()))


def refusal(conv: Conversation) -> str | None:
    """The first field of ``conv`` its provider cannot honour, or None."""
    return _provider(conv.provider).refusal(conv)


async def complete(conv: Conversation) -> Completion:
    """One non-streamed completion. Raises UpstreamError (no key: before any network call)."""
    provider = _provider(conv.provider)
    key = transport.api_key(provider)
    call = provider.build(conv, config.settings(), stream=False)
    body, headers = await transport.fetch(provider, call, key)
    parsed = load_json(body)
    if not isinstance(parsed, dict):
        raise errors.unreadable(provider.label, headers)
    completion = provider.parse_completion(parsed, conv)
    request_id = errors.request_id(headers) or completion.upstream_request_id
    return completion._replace(upstream_request_id=request_id)


async def embed(conv: Conversation) -> Embeddings:
    """Vectors for ``conv.inputs()``. Raises UpstreamError, as :func:`complete` does."""
    provider = _provider(conv.provider)
    key = transport.api_key(provider)
    body, headers = await transport.fetch(provider, provider.build_embeddings(conv, config.settings()), key)
    parsed = load_json(body)
    if not isinstance(parsed, dict):
        raise errors.unreadable(provider.label, headers)
    return provider.parse_embeddings(parsed)


def out_of_time(provider: str) -> UpstreamError:
    """The error of a call cut at its host's deadline."""
    return errors.out_of_time(_provider(provider).label)


def open_stream(conv: Conversation) -> UpstreamStream:
    """A stream to use as ``async with open_stream(conv) as stream: async for piece in stream``."""
    return UpstreamStream(_provider(conv.provider), conv)
