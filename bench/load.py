"""A small HTTP/1.1 load driver on raw asyncio streams (keep-alive, one request in flight per
connection). It costs about 0.1 ms of CPU per request on this kind of 2-core machine, four
times what wrk costs, which is why wrk is preferred when installed; streams are timed here."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def exchange(self, request: bytes, marker: bytes | None = None) -> tuple[int, float | None]:
        """Send one request, read the whole response; return its status and, when ``marker``
        is given, the time (perf_counter) at which the marker first arrived."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        seen_at = None
        if b"transfer-encoding: chunked" in lower:
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.strip().split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if marker is not None and seen_at is None and marker in data:
                    seen_at = time.perf_counter()
                if size == 0:
                    break
        else:
            start = lower.find(b"content-length:")
            length = int(lower[start + 15 : lower.index(b"\r\n", start)]) if start >= 0 else 0
            data = await self.reader.readexactly(length)
            if marker is not None and marker in data:
                seen_at = time.perf_counter()
        return status, seen_at


async def _worker(
    conn: Connection, requests: itertools.cycle[bytes], result: Result, deadline: float, budget: list[int]
) -> None:
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        started = time.perf_counter()
        try:
            status, _ = await conn.exchange(next(requests))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            conn.close()
            await conn.open()
            continue
        if status == 200:
            result.latencies_s.append(time.perf_counter() - started)
        else:
            result.errors += 1


async def run_requests(
    host: str,
    port: int,
    request: bytes | Sequence[bytes],
    *,
    concurrency: int,
    total: int,
    max_seconds: float = 120.0,
) -> Result:
    """``total`` requests over ``concurrency`` keep-alive connections (or until the time runs
    out). Given several requests, the connections send them in turn."""
    conns = [Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    result, budget = Result(), [total]
    shared = itertools.cycle([request] if isinstance(request, bytes) else request)
    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(*(_worker(c, shared, result, deadline, budget) for c in conns))
    result.elapsed_s = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return result


async def time_to_marker(
    host: str, port: int, request: bytes, marker: bytes, *, concurrency: int, total: int, ramp_s: float = 0.0
) -> Result:
    """``total`` streams over ``concurrency`` connections, each opening its next stream as soon
    as the last one ended (a steady ``concurrency`` streams open); latencies are the time from
    sending a request to the first arrival of ``marker``. With ``ramp_s`` the connections start
    spread over that time (about one stream's length), so streams open at a steady rate rather
    than all at once."""
    conns = [Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    result, budget = Result(), [total]

    async def worker(conn: Connection, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        while budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            try:
                status, seen_at = await conn.exchange(request, marker)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                conn.close()
                await conn.open()
                continue
            if status == 200 and seen_at is not None:
                result.latencies_s.append(seen_at - started)
            else:
                result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, i * ramp_s / concurrency) for i, c in enumerate(conns)))
    result.elapsed_s = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return result


async def open_streams(
    host: str, port: int, request: bytes, count: int, batch: int = 100
) -> list[Connection]:
    """``count`` streams opened and left open: each sent its request and read the response
    head (200), then nothing more. Close them with :func:`close_all`."""
    opened: list[Connection] = []

    async def one() -> Connection:
        conn = Connection(host, port)
        await conn.open()
        assert conn.reader is not None and conn.writer is not None
        conn.writer.write(request)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            raise RuntimeError(f"an idle stream was refused: {head[:200]!r}")
        return conn

    for start in range(0, count, batch):  # in steps: a thousand connects at once overflow the backlog
        opened += await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return opened


def close_all(conns: list[Connection]) -> None:
    for conn in conns:
        conn.close()
