"""Calling the upstream LLM providers (OpenAI, Anthropic, Gemini) with one interface.

    completion = await complete(req)                  # text, usage, upstream_request_id
    async with open_stream(req) as stream:            # raises UpstreamError before byte 1
        async for text in stream: ...                 # may raise UPSTREAM_STREAM_ERROR
    stream.usage, stream.finished                     # last known usage; marker seen?

Every failure is an :class:`UpstreamError` carrying the status the gateway should answer.
Adapters (one module per provider) only translate; ``transport`` and ``stream`` do I/O.
"""

from __future__ import annotations

from shared import config
from shared.gateway.request import ChatRequest
from shared.providers import errors, transport
from shared.providers.anthropic import Anthropic
from shared.providers.base import Completion, Provider, Usage, load_json
from shared.providers.errors import UpstreamError
from shared.providers.gemini import Gemini
from shared.providers.openai import OpenAI
from shared.providers.stream import UpstreamStream

__all__ = [
    "PROVIDERS",
    "Completion",
    "UpstreamError",
    "UpstreamStream",
    "Usage",
    "aclose",
    "complete",
    "is_configured",
    "open_stream",
    "out_of_time",
]

PROVIDERS: dict[str, Provider] = {p.name: p for p in (OpenAI(), Anthropic(), Gemini())}
aclose = transport.aclose


def _provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}") from None


def is_configured(provider: str) -> bool:
    """Whether the gateway has an API key for ``provider``."""
    return bool(_provider(provider).api_key(config.settings()))


async def complete(req: ChatRequest) -> Completion:
    """One non-streamed completion. Raises UpstreamError (no key: before any network call)."""
    provider = _provider(req.provider)
    key = transport.api_key(provider)
    call = provider.build(req, config.settings(), stream=False)
    body, headers = await transport.fetch(provider, call, key)
    parsed = load_json(body)
    if not isinstance(parsed, dict):
        raise errors.unreadable(provider.label, headers)
    text, usage, response_id = provider.parse_completion(parsed)
    return Completion(text, usage, errors.request_id(headers) or response_id)


def out_of_time(provider: str) -> UpstreamError:
    """The error of a call cut at its host's deadline."""
    return errors.out_of_time(_provider(provider).label)


def open_stream(req: ChatRequest) -> UpstreamStream:
    """A stream to use as ``async with open_stream(req) as stream: async for text in stream``."""
    return UpstreamStream(_provider(req.provider), req)
