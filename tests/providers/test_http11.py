"""The upstream HTTP/1.1 transport on the wire cases providers and proxies actually produce."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared import http11


async def _serve_once(answer: bytes) -> tuple[asyncio.AbstractServer, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def _fetch(answer: bytes) -> tuple[int, bytes]:
    """POST to a server that answers ``answer``: the status and the whole body read."""

    async def run() -> tuple[int, bytes]:
        server, url = await _serve_once(answer)
        pool = http11.ConnectionPool()
        async with server:
            origin, head = http11.request_head("POST", url, {}, 2)
            response = await pool.request(origin, head, b"{}", 5)
            try:
                return response.status, await response.aread()
            finally:
                await response.aclose()
                await pool.aclose()

    return asyncio.run(run())


def test_a_body_ended_by_the_close_of_the_connection_is_complete():
    status, body = _fetch(
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"ok": true}'
    )
    assert status == 200 and json.loads(body) == {"ok": True}


def test_a_chunked_body_and_a_sized_body():
    chunked = _fetch(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert chunked == (200, b"hello")
    sized = _fetch(b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc")
    assert sized == (201, b"abc")


def test_a_body_cut_short_is_an_error():
    with pytest.raises(http11.RemoteProtocolError):  # a truncated body must not pass as complete
        _fetch(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
