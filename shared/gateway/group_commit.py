"""Group commit: calls of one statement that arrive together are written together, as
TigerBeetle batches transfers. ADMIT and SETTLE go this way (``admissions``, ``settlements``).

A lone call waits for nothing: it leaves at once, alone, on its prepared statement. While that
round trip is out, other calls queue; the moment it returns, all of them leave in one
statement, one transaction and one round trip, waking one backend once instead of once each.
Every caller is answered with its own row, only once the transaction is committed.

Deadlocks: a batch runs its calls in customer and key order (every call's parameters name
both), and each call takes the customer's rows before the key's, so two batches take their
locks in one order. A batch that fails because the database is unavailable fails for each of
its callers; one that fails for any other reason (one bad call, a deadlock with some other
transaction) is split, each call written on its own, so that a bad one fails alone.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import orjson
import psycopg

from shared import db

Row = dict[str, Any]
Params = dict[str, Any]
_Waiting = tuple[Params, asyncio.Future[Row | None]]

MAX_BATCH = 128  # calls per transaction: bounds how long a batch holds month rows


def batch_call(sql_function: str, /, **types: str) -> str:
    """The batch form of :func:`shared.db.named_call`: one JSON array of the calls' arguments,
    run in its order (LATERAL runs the function once per element, in turn), each row tagged
    with the call's ``position``."""
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in {"position": "int", **types}.items())
    named = ", ".join(f"p_{name} => x.{name}" for name in types)
    return (
        f"SELECT x.position, s.* FROM jsonb_to_recordset(%s::jsonb) AS x({columns}) "
        f"CROSS JOIN LATERAL {sql_function}({named}) s"
    )


class GroupCommit:
    """One statement's queue on one event loop: calls waiting for the next flush, and at most
    one flush out."""

    def __init__(self, one: str, many: str) -> None:
        self.one, self.many = one, many
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Future[None] | None = None
        self.flushes = 0  # transactions written, for tests and the benchmark

    async def submit(self, params: Params) -> Row | None:
        """Run one call; returns its row once committed (or raises what its batch met)."""
        future: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((params, future))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._flush(batch)
        finally:
            self._flusher = None

    async def _flush(self, batch: list[_Waiting]) -> None:
        self.flushes += 1
        try:
            rows = await self._write([params for params, _ in batch])
        except BaseException as error:  # never leave callers hanging (a cancelled loop, a bug)
            if isinstance(error, psycopg.Error) and len(batch) > 1 and not isinstance(error, db.UNAVAILABLE):
                for one in batch:
                    await self._flush([one])
                return
            for _, future in batch:
                _resolve(future, error=error)
            if not isinstance(error, Exception):
                raise
        else:
            for (_, future), row in zip(batch, rows, strict=True):
                _resolve(future, row=row)

    async def _write(self, calls: list[Params]) -> list[Row | None]:
        """The rows the calls return, in their order: one round trip, one commit."""
        if len(calls) == 1:
            return [await db.fetch_one(self.one, calls[0])]
        order = sorted(range(len(calls)), key=lambda n: (calls[n]["customer_id"], calls[n]["api_key_id"]))
        document = orjson.dumps([{"position": n, **calls[n]} for n in order], default=_bytea).decode()
        rows: list[Row | None] = [None] * len(calls)
        for row in await db.fetch_all(self.many, (document,)):
            rows[row.pop("position")] = row
        return rows


def _bytea(value: object) -> str:
    """bytes in JSON as PostgreSQL's hex input for bytea."""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _resolve(
    future: asyncio.Future[Row | None], *, row: Row | None = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled (never in the pipeline, which shields it)
        return
    if error is None:
        future.set_result(row)
    else:
        future.set_exception(error)


class PerLoop:
    """A statement's :class:`GroupCommit` for the running loop (like the connection pool, one per
    process and loop)."""

    def __init__(self, one: str, many: str) -> None:
        self.one, self.many = one, many
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> GroupCommit:
        loop = asyncio.get_running_loop()
        current = self._queues.get(loop)
        if current is None:
            current = self._queues[loop] = GroupCommit(self.one, self.many)
        return current
