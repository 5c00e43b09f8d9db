"""The connection pool and the few helpers every query function uses.

One pool per process and event loop: uvicorn runs one loop per worker, and Mangum drives
each Lambda invocation on the process's one loop, so in production this is one pool per
process. Tests also call Lambda handlers from the main thread while the HTTP server runs
on its own loop; keying by loop keeps each pool on the loop that opened it.

Connections are in autocommit mode: the hot path sends one statement (a server-side
function) per round trip, and multi-statement work opens ``conn.transaction()`` itself.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared import config

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
    weakref.WeakKeyDictionary()
)
# Callers queue here, not inside the pool: a pool waiter costs psycopg_pool a task and a
# condition each time, an asyncio semaphore only a future (12 % of the CPU at concurrency 64).
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

# Errors that mean "the database is unavailable", answered with 503 by the wrapper.
UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    conn.row_factory = dict_row  # type: ignore[assignment]


def _new_pool() -> AsyncConnectionPool:
    cfg = config.settings()
    if not cfg.database_url:
        raise RuntimeError("no database configured: set DATABASE_URL")
    kwargs: dict[str, Any] = {"autocommit": True}
    if cfg.uses_pooler:
        kwargs["prepare_threshold"] = None
    return AsyncConnectionPool(
        cfg.database_url,
        min_size=1,
        max_size=cfg.db_pool_max,
        kwargs=kwargs,
        configure=_configure,
        timeout=cfg.db_timeout_s,
        open=False,
    )


async def pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None:
        for old in [old for old in _pools if old.is_closed()]:  # a pool keeps its loop alive
            del _pools[old]
        current = _pools[loop] = _new_pool()
        _gates[loop] = asyncio.Semaphore(current.max_size)
        await current.open(wait=False)
    return current


@asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection]:
    current = await pool()
    gate = _gates[asyncio.get_running_loop()]
    if gate.locked():
        try:
            async with asyncio.timeout(config.settings().db_timeout_s):
                await gate.acquire()
        except TimeoutError:
            raise PoolTimeout("no database connection became free in time") from None
    else:
        await gate.acquire()
    try:
        async with current.connection() as conn:
            yield conn
    finally:
        gate.release()


async def fetch_one(sql: str, params: Any = None) -> dict[str, Any] | None:
    async with connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchone()  # type: ignore[return-value]


async def fetch_all(sql: str, params: Any = None) -> list[dict[str, Any]]:
    async with connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()  # type: ignore[return-value]


async def execute(sql: str, params: Any = None) -> int:
    async with connection() as conn:
        cur = await conn.execute(sql, params)
        return cur.rowcount


async def close() -> None:
    """Close this event loop's pool (at server shutdown, or at the end of a CLI command)."""
    _gates.pop(asyncio.get_running_loop(), None)
    current = _pools.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()
