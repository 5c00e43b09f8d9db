"""The HTTP side: one pooled client per event loop, and sending a call with every failure
before the first body byte turned into an UpstreamError.

Why one ``httpx.AsyncClient`` per process *and* event loop: reusing one client keeps TLS
connections to the providers alive between requests (a fresh handshake costs 50-150 ms
on every call otherwise), but an AsyncClient's pooled connections belong to the loop
that opened them and break on any other one. uvicorn runs one loop per worker and Mangum
one per Lambda process, so in production this is one client per process; tests that
call ``asyncio.run()`` repeatedly (or run a server loop in a thread) get one client per
loop instead of a broken shared one. The same reasoning as the database pool in
``shared.db``; the dictionary holds loops weakly, and clients of closed loops are dropped.
"""

from __future__ import annotations

import asyncio
import functools
import weakref

import httpx
import orjson

from shared import config
from shared.providers import errors
from shared.providers.base import Provider, UpstreamCall, load_json
from shared.providers.http11 import Http11Transport

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def client() -> httpx.AsyncClient:
    """The running loop's client (created on first use). Timeouts are set per request, so
    a config reload takes effect without replacing the client."""
    loop = asyncio.get_running_loop()
    current = _clients.get(loop)
    if current is None or current.is_closed:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        current = _clients[loop] = _Client(
            transport=Http11Transport(max_connections=200, max_idle_per_origin=50), follow_redirects=False
        )
    return current


async def aclose() -> None:
    """Close the running loop's client (at shutdown, or at the end of a test's loop)."""
    current = _clients.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.aclose()


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.AsyncClient):
    """Provider calls carry no session. httpx would parse every Set-Cookie into one jar that
    every customer's later calls send back (providers' CDN cookies), and that parsing was 7 %
    of the gateway's CPU: keep none."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, value: object) -> None:  # httpx's constructor assigns it
        pass


@functools.lru_cache(maxsize=512)
def _url(url: str) -> httpx.URL:
    """Parsed once: the same few provider URLs serve every call."""
    return httpx.URL(url)


def timeout_s() -> float:
    return config.settings().upstream_timeout_s


def api_key(provider: Provider) -> str:
    """The configured key, or PROVIDER_NOT_CONFIGURED before any network call."""
    key = provider.api_key(config.settings())
    if not key:
        raise errors.not_configured(provider.label)
    return key


async def send(provider: Provider, call: UpstreamCall, secret: str) -> httpx.Response:
    """POST ``call`` and return the response with its body not yet read (the caller reads
    or streams it and must close it). A non-2xx answer has its body read in full, mapped,
    and raised; so are timeouts and connection failures."""
    http = client()
    request = http.build_request(
        "POST", _url(call.url), headers=call.headers, content=orjson.dumps(call.body), timeout=timeout_s()
    )
    try:
        response = await http.send(request, stream=True)
    except httpx.RequestError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    if response.is_success:
        return response
    try:
        body = await response.aread()
    except httpx.RequestError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    finally:
        await response.aclose()
    details = provider.error_details(load_json(body))
    raise errors.from_response(provider.label, response.status_code, response.headers, details, [secret])


async def fetch(provider: Provider, call: UpstreamCall, secret: str) -> tuple[bytes, httpx.Headers]:
    """Send ``call`` and read the whole (2xx) body: for non-streamed completions."""
    response = await send(provider, call, secret)
    try:
        return await response.aread(), response.headers
    except httpx.RequestError as exc:
        raise errors.from_transport(provider.label, exc, timeout_s(), mid_stream=False) from exc
    finally:
        await response.aclose()
