"""The upstream HTTP/1.1 transport on the wire cases providers and proxies actually produce."""

from __future__ import annotations

import asyncio

import httpx

from shared.providers.http11_httpx import Http11Transport


async def _serve_once(answer: bytes) -> tuple[asyncio.AbstractServer, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def _fetch(answer: bytes) -> httpx.Response:
    async def run() -> httpx.Response:
        server, url = await _serve_once(answer)
        async with server, httpx.AsyncClient(transport=Http11Transport()) as client:
            response = await client.post(url, content=b"{}")
            await response.aread()
            return response

    return asyncio.run(run())


def test_a_body_ended_by_the_close_of_the_connection_is_complete():
    response = _fetch(
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"ok": true}'
    )
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_a_chunked_body_and_a_sized_body():
    chunked = _fetch(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert chunked.content == b"hello"
    sized = _fetch(b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc")
    assert (sized.status_code, sized.content) == (201, b"abc")


def test_a_body_cut_short_is_an_error():
    try:
        _fetch(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    except httpx.RemoteProtocolError:
        return
    raise AssertionError("a truncated body must not pass as complete")
