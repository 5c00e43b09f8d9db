"""The connection pool and the few helpers every query function uses.

One pool per process and event loop: uvicorn runs one loop per worker, and Mangum drives
each Lambda invocation on the process's one loop, so in production this is one pool per
process. Tests also call Lambda handlers from the main thread while the HTTP server runs
on its own loop; keying by loop keeps each pool on the loop that opened it.

Connections are in autocommit mode: the hot path sends one statement (a server-side
function) per round trip, and multi-statement work opens ``conn.transaction()`` itself.

Why a pool of our own rather than psycopg_pool: the gateway runs two statements per call,
and taking a connection from psycopg_pool (a task, a condition and bookkeeping per
checkout) and making a fresh cursor cost more client CPU than the statement itself. Here a
checkout is a semaphore and a list pop, and each connection keeps one cursor for the
one-statement helpers.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from shared import config

T = TypeVar("T")
Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Row]
Cursor = psycopg.AsyncCursor[Row]

_MAX_LIFETIME_S = 3600.0  # reconnect now and then: server-side memory, failovers, rotated passwords
_MAX_IDLE_S = 600.0  # close what a burst opened once it has sat unused this long


class PoolTimeout(psycopg.OperationalError):
    """No connection became free (or could be opened) within ``DB_TIMEOUT_S``."""


# Errors that mean "the database is unavailable", answered with 503 by the wrapper.
UNAVAILABLE = (psycopg.OperationalError,)


def is_nul_in_text(error: BaseException) -> bool:
    """PostgreSQL text cannot hold U+0000; psycopg refuses such a value before sending it, so
    nothing was written: the client sent it, and gets a 400 (the wrapper says so)."""
    return isinstance(error, psycopg.DataError) and "NUL (0x00)" in str(error)


class _Pooled:
    __slots__ = ("born", "conn", "cursor", "used")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cursor: Cursor = conn.cursor()
        self.born = self.used = time.monotonic()


class Pool:
    """At most ``max_size`` connections, opened on demand, reused most-recent first."""

    def __init__(self, url: str, max_size: int, timeout_s: float, kwargs: dict[str, Any]) -> None:
        self.max_size = max_size
        self._url = url
        self._timeout_s = timeout_s
        self._kwargs = kwargs
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[_Pooled] = []
        self._closed = False

    async def acquire(self) -> _Pooled:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout("no database connection became free in time") from None
        else:
            await self._slots.acquire()
        try:
            if self._idle:
                return self._idle.pop()
            return await self._connect()
        except BaseException:
            self._slots.release()
            raise

    async def release(self, pooled: _Pooled) -> None:
        """Back to the pool when it is idle and healthy; closed otherwise (a statement cut
        short by a cancellation, a broken socket, an old connection)."""
        try:
            conn = pooled.conn
            status = conn.info.transaction_status
            if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR) and not conn.closed:
                await conn.rollback()
                status = conn.info.transaction_status
            now = time.monotonic()
            if conn.broken:  # the server went away (restart, failover): its idle siblings did too
                await self._close_idle()
            if self._closed or status != TransactionStatus.IDLE or now - pooled.born > _MAX_LIFETIME_S:
                await conn.close()
                return
            pooled.used = now
            self._idle.append(pooled)
            while self._idle and now - self._idle[0].used > _MAX_IDLE_S:
                await self._idle.pop(0).conn.close()
        except psycopg.Error:
            await pooled.conn.close()
        finally:
            self._slots.release()

    async def _connect(self) -> _Pooled:
        try:
            async with asyncio.timeout(self._timeout_s):
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, row_factory=dict_row, **self._kwargs
                )
        except TimeoutError:
            raise PoolTimeout("could not connect to the database in time") from None
        return _Pooled(conn)

    async def close(self) -> None:
        self._closed = True
        await self._close_idle()

    async def _close_idle(self) -> None:
        while self._idle:
            await self._idle.pop().conn.close()

    @property
    def closed(self) -> bool:
        return self._closed


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()


def pool() -> Pool:
    """The running loop's pool, made on first use."""
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None or current.closed:
        cfg = config.settings()
        if not cfg.database_url:
            raise RuntimeError("no database configured: set DATABASE_URL")
        kwargs: dict[str, Any] = {"prepare_threshold": None} if cfg.uses_pooler else {}
        current = _pools[loop] = Pool(cfg.database_url, cfg.db_pool_max, cfg.db_timeout_s, kwargs)
    return current


@asynccontextmanager
async def connection() -> AsyncIterator[Connection]:
    current = pool()
    pooled = await current.acquire()
    try:
        yield pooled.conn
    finally:
        await current.release(pooled)


def named_call(sql_function: str, /, **types: str) -> str:
    """``SELECT * FROM sql_function(p_x => %(x)s::type, ...)``: arguments by name, so the SQL
    and the Python that fills it cannot drift apart by position (sql/functions/)."""
    arguments = ", ".join(f"p_{name} => %({name})s::{sql_type}" for name, sql_type in types.items())
    return f"SELECT * FROM {sql_function}({arguments})"


async def _run(sql: str, params: Any, read: Callable[[Cursor], Awaitable[T]]) -> T:
    """One statement on a pooled connection's own cursor: the hot path's shape."""
    current = pool()
    pooled = await current.acquire()
    try:
        await pooled.cursor.execute(sql, params)
        return await read(pooled.cursor)
    finally:
        await current.release(pooled)


async def _rowcount(cursor: Cursor) -> int:
    return cursor.rowcount


async def _fetchone(cursor: Cursor) -> Row | None:
    return await cursor.fetchone()


async def _fetchall(cursor: Cursor) -> list[Row]:
    return await cursor.fetchall()


async def one(cursor: Cursor) -> Row:
    """The row a statement always returns (an aggregate, ``INSERT ... RETURNING``)."""
    row = await cursor.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row


async def fetch_one(sql: str, params: Any = None) -> Row | None:
    return await _run(sql, params, _fetchone)


async def fetch_row(sql: str, params: Any = None) -> Row:
    """Like :func:`fetch_one`, for a statement that always returns a row."""
    return await _run(sql, params, one)


async def fetch_all(sql: str, params: Any = None) -> list[Row]:
    return await _run(sql, params, _fetchall)


async def execute(sql: str, params: Any = None) -> int:
    return await _run(sql, params, _rowcount)


async def close() -> None:
    """Close this event loop's pool (at server shutdown, or at the end of a CLI command)."""
    current = _pools.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()
