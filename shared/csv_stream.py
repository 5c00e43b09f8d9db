"""CSV downloads streamed from a server-side cursor, in constant memory.

A producer task reads the query through a named (server-side) cursor in batches and turns
each batch into CSV text; the response yields those chunks to the client. A small bounded
queue between them keeps at most a few batches in memory whatever the size of the export.
The database work runs in its own task, so a client that hangs up only makes the producer
stop after its current batch and return its connection cleanly, never mid-query.

Cells are written by the ``csv`` module (quotes, commas, newlines, any Unicode, UTF-8 on the
wire). Text that a spreadsheet would run as a formula (a cell starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) is prefixed with a single quote (OWASP's CSV injection
guard); numbers are written as numbers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg.rows import dict_row

from shared import db
from shared.closing_stream import ClosingStreamingResponse

log = logging.getLogger("kaixu.csv")

BATCH_ROWS = 2000
_QUEUE_BATCHES = 4
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DONE = object()

Row = dict[str, Any]


def safe_cell(value: Any) -> Any:
    """One value as a CSV cell: text guarded against formula injection, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode().strip('"')
    if isinstance(value, (list, dict)):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def encode(rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV lines for ``rows`` (RFC 4180 quoting, CRLF line ends), as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class Query:
    """An export: the SQL (with its parameters), the header line and how a row becomes cells."""

    sql: str
    args: tuple[Any, ...]
    header: Sequence[str]
    cells: Callable[[Row], Sequence[Any]]


class _Producer:
    """The task that reads the cursor and fills a bounded queue with CSV chunks."""

    def __init__(self, query: Query) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUE_BATCHES)
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(self._run(query))

    async def _run(self, query: Query) -> None:
        """Chunks, then ``_DONE`` or the exception that ended the export."""
        outcome: Any = _DONE
        try:
            async with (
                db.connection() as conn,
                conn.transaction(),
                conn.cursor(name="kx_export", row_factory=dict_row) as cursor,
            ):
                await cursor.execute(query.sql, query.args)
                while not self.stop.is_set():
                    rows = await cursor.fetchmany(BATCH_ROWS)
                    if not rows:
                        break
                    await self.queue.put(encode(query.cells(row) for row in rows))
        except Exception as exc:
            outcome = exc
        await self.queue.put(outcome)

    async def next(self) -> Any:
        chunk = await self.queue.get()
        if isinstance(chunk, Exception):
            raise chunk
        return chunk

    def close(self) -> None:
        """The response ended (maybe the client left): stop after the current batch."""
        if not self.task.done():
            self.stop.set()
            while not self.queue.empty():  # unblock a pending put
                self.queue.get_nowait()


async def _chunks(query: Query, producer: _Producer, first: Any) -> AsyncGenerator[bytes, None]:
    yield encode([query.header])
    chunk = first
    while chunk is not _DONE:
        yield chunk
        try:
            chunk = await producer.next()
        except Exception:
            log.exception("a CSV export failed while streaming; the download is cut short")
            raise


async def response(query: Query, filename: str) -> ClosingStreamingResponse:
    """The export as a streamed CSV download. The first batch is read before the response
    starts, so a database that is down or a failing query is a proper error (503), not a
    truncated file."""
    producer = _Producer(query)
    try:
        first = await producer.next()
    except BaseException:
        producer.close()
        raise
    return ClosingStreamingResponse(
        _chunks(query, producer, first),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "cache-control": "no-store",
        },
        on_close=producer.close,
    )
