"""Sending a provider call with every failure before the first body byte turned into an
UpstreamError, on the process's connection pool (``shared.http11.pool``).

"""

from __future__ import annotations

import orjson

from shared import config
from shared.http11 import TransportError, pool, request_head
from shared.providers import errors
from shared.providers.base import Provider, UpstreamCall, UpstreamResponse, load_json


def timeout_s() -> float:
    return config.settings().upstream_timeout_s


def api_key(provider: Provider) -> str:
    """The configured key, or PROVIDER_NOT_CONFIGURED before any network call."""
    key = provider.api_key(config.settings())
    if not key:
        raise errors.not_configured(provider.label)
    return key


async def send(provider: Provider, call: UpstreamCall, secret: str) -> UpstreamResponse:
    """POST ``call`` and return the response with its body not yet read (the caller reads
    or streams it and must close it). A non-2xx answer has its body read in full, mapped,
    and raised; so are timeouts and connection failures. A local provider answers here
    without a network call."""
    local = provider.answer_locally(call, config.settings())
    if local is not None:
        return local
    body = orjson.dumps(call.body)
    origin, head = request_head("POST", call.url, call.headers, len(body))
    try:
        response = await pool().request(origin, head, body, timeout_s())
    except TransportError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    if response.is_success:
        return response
    try:
        raw = await response.aread()
    except TransportError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    finally:
        await response.aclose()
    details = provider.error_details(load_json(raw))
    raise errors.from_response(provider.label, response.status, response.headers, details, [secret])


async def fetch(provider: Provider, call: UpstreamCall, secret: str) -> tuple[bytes, dict[str, str]]:
    """Send ``call`` and read the whole (2xx) body: for non-streamed completions."""
    response = await send(provider, call, secret)
    try:
        return await response.aread(), response.headers
    except TransportError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    finally:
        await response.aclose()
