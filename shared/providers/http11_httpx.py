"""httpx's client API over the lean HTTP/1.1 pool, for the callers that want it (the Netlify
API): redirects, query parameters, JSON bodies and streamed uploads, on the same connections
as the provider calls.

Kept apart from ``http11`` so that the gateway's hot path, which uses the pool directly, does
not import httpx. Failures cross into httpx's client as httpx's own exceptions (the pool's
family has the same names), so the client and its callers see nothing else.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterable, AsyncIterator

import httpx

from shared.providers import http11, transport


def _httpx_error(exc: http11.TransportError) -> httpx.TransportError:
    """The httpx exception of the same name (ReadTimeout for ReadTimeout, ...)."""
    kind: type[httpx.TransportError] = getattr(httpx, type(exc).__name__, httpx.TransportError)
    return kind(str(exc))


class _HttpxBody(httpx.AsyncByteStream):
    def __init__(self, response: http11.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except http11.TransportError as exc:
            raise _httpx_error(exc) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class Http11Transport(httpx.AsyncBaseTransport):
    """The pool's connections behind httpx's client API."""

    def __init__(self, pool: http11.ConnectionPool | None = None) -> None:
        self.pool = pool or http11.ConnectionPool()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        head = http11.encode_head(request.method.encode(), url.raw_path, request.headers.raw)
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            if isinstance(request.stream, httpx.ByteStream):  # already in memory: one write
                response = await self.pool.request(origin, head, await request.aread(), timeout)
            else:  # produced while it is sent: never read whole
                chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
                stream: AsyncIterable[bytes] = request.stream  # type: ignore[assignment]
                response = await self.pool.request_stream(origin, head, stream, chunked, timeout)
        except http11.TransportError as exc:
            raise _httpx_error(exc) from exc
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_HttpxBody(response),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


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


# One client per pool: the pool is per event loop (``transport.pool``), and a pool closed at
# the end of a loop takes its client with it.
_clients: weakref.WeakKeyDictionary[http11.ConnectionPool, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def client() -> httpx.AsyncClient:
    """The running loop's httpx client over the provider pool (made on first use). Timeouts
    are set per request, so a config reload takes effect without replacing the client."""
    pool = transport.pool()
    current = _clients.get(pool)
    if current is None or current.is_closed:
        current = _clients[pool] = _Client(transport=Http11Transport(pool), follow_redirects=False)
    return current
