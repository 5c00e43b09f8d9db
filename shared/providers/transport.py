"""The HTTP side: one connection pool per event loop, and sending a call with every failure
before the first body byte turned into an UpstreamError.

Why one pool per process *and* event loop: reusing connections keeps TLS sessions to the
providers alive between requests (a fresh handshake costs 50-150 ms on every call
otherwise), but pooled connections belong to the loop that opened them and break on any
other one. uvicorn runs one loop per worker and Mangum one per Lambda process, so in
production this is one pool per process; tests that call ``asyncio.run()`` repeatedly (or
run a server loop in a thread) get one pool per loop instead of a broken shared one. The
same reasoning as the database pool in ``shared.db``; the dictionaries hold loops weakly.

Provider calls use the pool directly (the hot path); :func:`client` puts httpx's client API
over the same connections for the Netlify API.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx
import orjson

from shared import config
from shared.providers import errors
from shared.providers.base import Provider, UpstreamCall, UpstreamResponse, load_json
from shared.providers.http11 import ConnectionPool, Http11Transport, request_head

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def pool() -> ConnectionPool:
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None:
        limit = config.settings().upstream_max_connections
        current = _pools[loop] = ConnectionPool(max_connections=limit, max_idle_per_origin=50)
    return current


def client() -> httpx.AsyncClient:
    """The running loop's httpx client over the same pool (made on first use). Timeouts are
    set per request, so a config reload takes effect without replacing the client."""
    loop = asyncio.get_running_loop()
    current = _clients.get(loop)
    if current is None or current.is_closed:
        current = _clients[loop] = _Client(transport=Http11Transport(pool()), follow_redirects=False)
    return current


async def aclose() -> None:
    """Close the running loop's connections (at shutdown, or at the end of a test's loop)."""
    loop = asyncio.get_running_loop()
    current = _clients.pop(loop, None)
    if current is not None:
        await current.aclose()
    connections = _pools.pop(loop, None)
    if connections is not None:
        await connections.aclose()


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.AsyncClient):
    """Calls carry no session: httpx would otherwise parse every Set-Cookie into one jar that
    later calls send back."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, value: object) -> None:  # httpx's constructor assigns it
        pass


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
    except httpx.TransportError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    if response.is_success:
        return response
    try:
        raw = await response.aread()
    except httpx.TransportError as exc:
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
    except httpx.TransportError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    finally:
        await response.aclose()
