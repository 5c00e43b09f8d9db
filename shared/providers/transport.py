"""The HTTP side: one connection pool per event loop, and sending a call with every failure
before the first body byte turned into an UpstreamError.

Why one pool per process *and* event loop: reusing connections keeps TLS sessions to the
providers alive between requests (a fresh handshake costs 50-150 ms on every call
otherwise), but pooled connections belong to the loop that opened them and break on any
other one. uvicorn runs one loop per worker and Mangum one per Lambda process, so in
production this is one pool per process; tests that call ``asyncio.run()`` repeatedly (or
run a server loop in a thread) get one pool per loop instead of a broken shared one. The
same reasoning as the database pool in ``shared.db``; the dictionaries hold loops weakly.

Provider calls and the Netlify API (``shared.kaixupush.netlify_api``) use the same pool.
"""

from __future__ import annotations

import asyncio
import weakref

import orjson

from shared import config
from shared.providers import errors
from shared.providers.base import Provider, UpstreamCall, UpstreamResponse, load_json
from shared.providers.http11 import ConnectionPool, TransportError, request_head

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()


def pool() -> ConnectionPool:
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None:
        limit = config.settings().upstream_max_connections
        current = _pools[loop] = ConnectionPool(max_connections=limit, max_idle_per_origin=50)
    return current


async def aclose() -> None:
    """Close the running loop's connections (at shutdown, or at the end of a test's loop)."""
    connections = _pools.pop(asyncio.get_running_loop(), None)
    if connections is not None:
        await connections.aclose()


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
