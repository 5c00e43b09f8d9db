"""A lean HTTP/1.1 client: the provider calls on the gateway's hot path, and the Netlify API.

Why our own: measured on the hot path, httpx's default transport (httpcore over anyio)
spent more CPU per call than the rest of the gateway together, and httpx's client layer
(request and response models, header merging, URL handling) still cost a fifth of the
gateway's CPU on top of a lean transport. Here a connection is an ``asyncio.Protocol`` that
feeds bytes straight into httptools (the C parser uvicorn uses), and a call is one write and
as few wake-ups as the answer needs.

Reuse is safe without polling a pooled socket first: a connection the server closed shows
EOF before reuse, and a request on a reused connection that gets no byte back before the
connection drops is retried once on a fresh one (the keep-alive race every HTTP/1.1 client
handles). Failures are this module's own exception family (named as httpx names them), so
callers handle one family of errors, and calling a provider or Netlify imports no httpx (20
ms of a cold start).

A request body given as bytes (every provider call) goes out in one write, as above. A body
given as a stream (a file on its way to Netlify, which may be a gigabyte) is written piece
by piece, each piece only once the socket has taken the last one (``pause_writing`` /
``resume_writing``), so a slow server holds back the producer instead of the process
buffering the file. A stream cannot be sent twice, so it always gets a fresh connection
(which then joins the pool) rather than risking the keep-alive race on a reused one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit

import certifi
import httptools

from shared import config

Origin = tuple[str, str, int]  # scheme, host, port
_PAUSE_AT = 1 << 20  # unread body bytes at which the socket stops being read


class TransportError(Exception):
    """A request that got no complete answer: the connection failed, broke or timed out."""


class TimeoutException(TransportError):
    pass


class ConnectError(TransportError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadError(TransportError):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteError(TransportError):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class RemoteProtocolError(TransportError):
    pass


def ssl_context() -> ssl.SSLContext:
    """Verified TLS as httpx sets it up: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else
    certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


@functools.lru_cache(maxsize=512)
def split_url(url: str) -> tuple[Origin, bytes, bytes]:
    """(origin, request target, host header) of an absolute URL: the same few provider URLs
    serve every call, so each is parsed once."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, host, port), target.encode(), (parts.netloc.rpartition("@")[2]).encode()


def encode_head(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def request_head(method: str, url: str, headers: Mapping[str, str], body_length: int) -> tuple[Origin, bytes]:
    origin, target, host = split_url(url)
    fields = [(b"host", host), *((name.encode(), value.encode()) for name, value in headers.items())]
    fields.append((b"content-length", b"%d" % body_length))
    return origin, encode_head(method.encode(), target, fields)


class _Message:
    """httptools callbacks for one response: its status line, headers and body pieces."""

    __slots__ = (
        "body",
        "buffered",
        "complete",
        "headers",
        "headers_done",
        "keep_alive",
        "parser",
        "status",
        "until_eof",
    )

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.body: list[bytes] = []  # a deque's first block alone is 600 bytes; this stays short
        self.buffered = 0
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
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Connection(asyncio.Protocol):
    """One keep-alive connection. Bytes go from the socket into the current message's parser;
    a waiting reader is woken by new bytes, EOF or an error."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.message: _Message | None = None
        self.error: Exception | None = None
        self.eof = False
        self.received = 0
        self.reused = False
        self._waiter: asyncio.Future[bool] | None = None
        self._writable: asyncio.Future[bool] | None = None
        self._reading_paused = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        message = self.message
        if message is None:
            self._fail(RemoteProtocolError("The server sent bytes nobody asked for."))
            return
        try:
            message.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(str(exc) or "Malformed response."))
            return
        if message.buffered > _PAUSE_AT and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def eof_received(self) -> None:
        self.eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = ReadError(str(exc) or "Connection lost.")
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(True)
        self._writable = None

    # -- used by the pool and the response
    @property
    def usable(self) -> bool:
        transport = self.transport
        return not self.eof and self.error is None and transport is not None and not transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send(self, head: bytes, body: bytes) -> asyncio.Future[bool] | None:
        """Start a new message; the future (if any) resolves once the socket takes more."""
        self.message = _Message()
        self.received = 0
        self.transport.write(head + body if len(body) < 65536 else head)  # type: ignore[union-attr]
        if len(body) >= 65536:
            self.transport.write(body)  # type: ignore[union-attr]
        return self._writable

    def start(self, head: bytes) -> None:
        """Start a new message whose body follows piece by piece (see :func:`_send_stream`)."""
        self.message = _Message()
        self.received = 0
        self.transport.write(head)  # type: ignore[union-attr]

    def write(self, data: bytes) -> asyncio.Future[bool] | None:
        """Write more of the request; the future (if any) resolves once the socket takes more."""
        self.transport.write(data)  # type: ignore[union-attr]
        return self._writable

    async def wait(self, timeout: float | None) -> None:
        """Until something arrives; TimeoutError after ``timeout`` seconds of silence."""
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            if not await waiter:
                raise TimeoutError
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def taken(self, size: int) -> None:
        """``size`` body bytes were handed to the reader."""
        self.message.buffered -= size  # type: ignore[union-attr]

    def _fail(self, error: Exception) -> None:
        self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)


class Response:
    """A status, headers and a body read as it arrives. :meth:`aclose` returns the connection
    to the pool only after a complete keep-alive message, and closes it otherwise (a client
    that hung up mid-stream, say: that is how generation stops at the provider)."""

    def __init__(
        self, pool: ConnectionPool, origin: Origin, conn: _Connection, timeout: float | None
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._conn = conn
        self._timeout = timeout
        self._closed = False
        message = conn.message
        assert message is not None
        self.status = message.status
        self.raw_headers = message.headers
        self.headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in message.headers
        }

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        message = conn.message
        assert message is not None
        while True:
            while message.body:
                chunk = message.body.pop(0)
                conn.taken(len(chunk))
                yield chunk
            if message.complete:
                return
            if conn.error is not None:
                raise conn.error
            if conn.eof:
                if message.until_eof:  # the close is the end of this body
                    message.complete, message.keep_alive = True, False
                    return
                raise RemoteProtocolError("Server disconnected mid-body.")
            try:
                await conn.wait(self._timeout)
            except TimeoutError:
                raise ReadTimeout("Timed out reading the response.") from None

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        message = self._conn.message
        if message is not None and message.complete and message.keep_alive and self._conn.usable:
            self._pool.release(self._origin, self._conn)
        else:
            self._conn.close()
            self._pool.forget()


class ConnectionPool:
    """Keep-alive connections per origin, at most ``max_connections`` in use at once."""

    def __init__(self, *, max_connections: int = 200, max_idle_per_origin: int = 50) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl: ssl.SSLContext | None = None

    async def request(self, origin: Origin, head: bytes, body: bytes, timeout: float | None) -> Response:
        """Send one request and wait for the response head; ``timeout`` bounds the wait for a
        free slot, the connect, the write and every silence while reading."""
        if self._slots.locked():
            try:
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout("No upstream connection became free in time.") from None
        else:
            await self._slots.acquire()
        try:
            conn = await self._exchange(origin, head, body, timeout)
        except BaseException:
            self._slots.release()
            raise
        return Response(self, origin, conn, timeout)

    async def request_stream(
        self, origin: Origin, head: bytes, body: AsyncIterable[bytes], chunked: bool, timeout: float | None
    ) -> Response:
        """Send one request whose body is written as ``body`` produces it (``chunked``: framed
        as chunks, else the head carries its content-length), on a fresh connection."""
        await self._take_slot(timeout)
        try:
            conn = await self._connect(origin, timeout)
            try:
                await _send_stream(conn, head, body, chunked, timeout)
                await _read_head(conn, timeout)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._slots.release()
            raise
        return Response(self, origin, conn, timeout)

    async def _take_slot(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout("No upstream connection became free in time.") from None

    def release(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        conn.message = None
        if len(idle) < self._max_idle:
            conn.reused = True
            idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    def forget(self) -> None:
        self._slots.release()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl_context()
            tls = self._ssl
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise ConnectTimeout("Timed out connecting.") from None
        except OSError as exc:
            raise ConnectError(str(exc) or "Connection failed.") from None
        return conn

    async def _exchange(self, origin: Origin, head: bytes, body: bytes, timeout: float | None) -> _Connection:
        for attempt in (1, 2):
            conn = (self._checkout(origin) if attempt == 1 else None) or await self._connect(origin, timeout)
            try:
                await _send(conn, head, body, timeout)
                await _read_head(conn, timeout)
                return conn
            except TransportError as exc:
                conn.close()
                timed_out = isinstance(exc, TimeoutException)
                if conn.reused and conn.received == 0 and attempt == 1 and not timed_out:
                    continue  # the server had closed this idle connection: retry on a new one
                raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")


async def _send(conn: _Connection, head: bytes, body: bytes, timeout: float | None) -> None:
    writable = conn.send(head, body)
    if writable is not None:
        try:
            async with asyncio.timeout(timeout):
                await writable
        except TimeoutError:
            raise WriteTimeout("Timed out sending the request.") from None


async def _send_stream(
    conn: _Connection, head: bytes, body: AsyncIterable[bytes], chunked: bool, timeout: float | None
) -> None:
    """Write the head, then each piece of ``body`` once the socket has taken the previous one.
    A server that answers before the body is all sent (a refusal) stops the sending: its answer
    is read as usual, and the connection, left mid-request, is not reused."""
    conn.start(head)
    async for piece in body:
        if not piece:
            continue
        if _answered(conn):
            return
        if chunked:
            conn.write(b"%x\r\n" % len(piece))
            conn.write(piece)
            writable = conn.write(b"\r\n")
        else:
            writable = conn.write(piece)
        await _drained(conn, writable, timeout)
    if chunked and not _answered(conn):
        await _drained(conn, conn.write(b"0\r\n\r\n"), timeout)


def _answered(conn: _Connection) -> bool:
    message = conn.message
    assert message is not None
    if message.headers_done:
        message.keep_alive = False  # the request was cut short: this connection is done
        return True
    return False


async def _drained(conn: _Connection, writable: asyncio.Future[bool] | None, timeout: float | None) -> None:
    """Wait until the socket takes more; WriteError if the connection went away unanswered."""
    if writable is not None:
        try:
            async with asyncio.timeout(timeout):
                await writable
        except TimeoutError:
            raise WriteTimeout("Timed out sending the request.") from None
    if not conn.usable and not _answered(conn):
        raise conn.error or WriteError("The connection closed while the request was being sent.")


async def _read_head(conn: _Connection, timeout: float | None) -> None:
    message = conn.message
    assert message is not None
    while not message.headers_done:
        if conn.error is not None:
            raise conn.error
        if conn.eof:
            raise RemoteProtocolError("Server disconnected without sending a response.")
        try:
            await conn.wait(timeout)
        except TimeoutError:
            raise ReadTimeout("Timed out waiting for the response.") from None


# The process's pool, for the provider calls and the Netlify API alike.
# Why one pool per process *and* event loop: reusing connections keeps TLS sessions to the
# providers alive between requests (a fresh handshake costs 50-150 ms on every call
# otherwise), but pooled connections belong to the loop that opened them and break on any
# other one. uvicorn runs one loop per worker and Mangum one per Lambda process, so in
# production this is one pool per process; tests that call ``asyncio.run()`` repeatedly (or
# run a server loop in a thread) get one pool per loop instead of a broken shared one. The
# same reasoning as the database pool in ``shared.db``; the dictionaries hold loops weakly.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()


def pool() -> ConnectionPool:
    """The running loop's pool (made on first use)."""
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
