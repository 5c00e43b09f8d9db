"""A lean HTTP/1.1 transport for the upstream ``httpx.AsyncClient``.

Measured on the gateway's hot path, httpx's default transport (httpcore over anyio) spent
more CPU per call than the rest of the gateway together: a readability poll of every pooled
socket before reuse, anyio stream wrappers and per-request lock set-up. This transport
keeps httpx's client API (requests, responses, timeouts, exceptions) and replaces only the
wire: asyncio streams, keep-alive connections kept per origin, and httptools (the C parser
uvicorn uses) to read responses, streamed or not.

Reuse is safe without the poll: a connection the server closed shows EOF before reuse, and
a request on a reused connection that gets no byte back before the connection drops is
retried once on a fresh one (the keep-alive race every HTTP/1.1 client handles).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httptools
import httpx

_READ_SIZE = 64 * 1024
Origin = tuple[bytes, bytes, int]


class _Parsed:
    """Callbacks for httptools: collects the status line, headers and body pieces."""

    __slots__ = ("body", "complete", "headers", "headers_done", "keep_alive", "parser", "status", "until_eof")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.body: deque[bytes] = deque()
        self.complete = False
        self.keep_alive = True
        self.until_eof = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Read now: once the whole message is parsed the parser has reset this state.
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        # No length and not chunked: the body runs until the server closes (RFC 9112 §6.3).
        framed = any(
            name.lower() == b"content-length"
            or (name.lower() == b"transfer-encoding" and b"chunked" in value.lower())
            for name, value in self.headers
        )
        self.until_eof = not framed and self.status >= 200 and self.status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    @property
    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class _Exchange:
    """One request/response on a connection: writes the request, then parses the answer."""

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self.conn = conn
        self.read_timeout = read_timeout
        self.parsed = _Parsed()
        self.received = 0

    async def feed(self) -> bool:
        """Read and parse one piece; False at EOF."""
        async with asyncio.timeout(self.read_timeout):
            data = await self.conn.reader.read(_READ_SIZE)
        if not data:
            return False
        self.received += len(data)
        self.parsed.parser.feed_data(data)
        return True

    async def read_head(self) -> None:
        while not self.parsed.headers_done:
            if not await self.feed():
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


class _Body(httpx.AsyncByteStream):
    """The response body, read as it arrives; the connection returns to the pool only after
    a complete, keep-alive response, and is closed otherwise (e.g. a client that hung up)."""

    def __init__(
        self, transport: Http11Transport, origin: Origin, exchange: _Exchange, request: httpx.Request
    ) -> None:
        self.transport = transport
        self.origin = origin
        self.exchange = exchange
        self.request = request
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parsed = self.exchange.parsed
        while True:
            while parsed.body:
                yield parsed.body.popleft()
            if parsed.complete:
                return
            try:
                more = await self.exchange.feed()
            except TimeoutError as exc:
                raise httpx.ReadTimeout("Timed out reading the response.", request=self.request) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc) or "Connection lost.", request=self.request) from exc
            except httptools.HttpParserError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=self.request) from exc
            if not more and not parsed.complete:
                if parsed.until_eof:  # the close is the end of this body
                    parsed.complete, parsed.keep_alive = True, False
                    return
                raise httpx.RemoteProtocolError("Server disconnected mid-body.", request=self.request)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        exchange = self.exchange
        if exchange.parsed.complete and exchange.parsed.keep_alive and exchange.conn.usable:
            self.transport.release(self.origin, exchange.conn)
        else:
            exchange.conn.close()
            self.transport.forget()


class Http11Transport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 200, max_idle_per_origin: int = 50) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl: ssl.SSLContext | None = None

    def release(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        if len(idle) < self._max_idle:
            conn.reused = True
            idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    def forget(self) -> None:
        self._slots.release()

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None, request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            tls = self._ssl
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host.decode(),
                    port,
                    ssl=tls,
                    server_hostname=host.decode() if tls else None,
                    limit=_READ_SIZE * 4,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("Timed out connecting.", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or "Connection failed.", request=request) from exc
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("No upstream connection became free in time.", request=request) from exc
        try:
            exchange = await self._exchange(origin, request, timeouts)
        except BaseException:
            self._slots.release()
            raise
        parsed = exchange.parsed
        return httpx.Response(
            parsed.status,
            headers=parsed.headers,
            stream=_Body(self, origin, exchange, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _exchange(self, origin: Origin, request: httpx.Request, timeouts: dict) -> _Exchange:
        head = _request_head(request)
        body = await request.aread()
        for attempt in (1, 2):
            conn = self._checkout(origin) if attempt == 1 else None
            conn = conn or await self._connect(origin, timeouts.get("connect"), request)
            exchange = _Exchange(conn, timeouts.get("read"))
            try:
                conn.writer.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    conn.writer.write(body)
                async with asyncio.timeout(timeouts.get("write")):
                    await conn.writer.drain()
                await exchange.read_head()
                return exchange
            except TimeoutError as exc:  # before OSError, its base class
                conn.close()
                raise httpx.ReadTimeout("Timed out waiting for the response.", request=request) from exc
            except (OSError, httpx.RemoteProtocolError) as exc:
                conn.close()
                if conn.reused and exchange.received == 0 and attempt == 1:
                    continue  # the server had closed this idle connection: retry on a new one
                if isinstance(exc, httpx.RemoteProtocolError):
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                raise httpx.ReadError(str(exc) or "Connection lost.", request=request) from exc
            except httptools.HttpParserError as exc:
                conn.close()
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _request_head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"
