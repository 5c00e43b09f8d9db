"""SETTLE with group commit: the settlements that arrive while one is being written go
together in the next transaction, as TigerBeetle batches transfers.

A lone call waits for nothing: its settlement starts at once, alone, on the same prepared
statement as ever. While that round trip is out, other calls' settlements queue; the moment it
returns, all of them leave in one statement and one durable commit. A busy process thus
commits dozens of bills in one WAL flush, one round trip and one wake-up of one backend,
instead of one each; every caller is still answered only after its own bill is committed.

Deadlocks: a batch bills in (customer, key) order, so two batches take their customers' month
rows in the same order. A batch that fails as a whole is retried by its callers, each on its
own (their retry loop in the pipeline); one that fails for one bad settlement is split, so
that settlement fails alone.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import orjson
import psycopg

from shared import db

_ARGUMENTS = {
    "reservation_id": "bigint",
    "customer_id": "bigint",
    "api_key_id": "bigint",
    "month": "text",
    "provider": "text",
    "model": "text",
    "install_id": "text",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cost_nanos": "bigint",
    "sell_nanos": "bigint",
    "price_version_id": "bigint",
    "sell_version_id": "bigint",
    "outcome": "text",
    "estimated": "boolean",
    "request_id": "text",
    "function": "text",
    "app": "text",
    "build": "text",
    "status": "int",
    "duration_ms": "real",
    "summary": "text",
    "user_agent": "text",
    "clamped_to": "bigint",
    "stopped_code": "text",
}
SETTLE = db.named_call("kx_settle", **_ARGUMENTS)

# Many settlements in one statement: a JSON array of their arguments, settled in its order
# (LATERAL runs the function once per element, in turn), each row tagged with its position.
_COLUMNS = ", ".join(f"{name} {sql_type}" for name, sql_type in {"position": "int", **_ARGUMENTS}.items())
_NAMED = ", ".join(f"p_{name} => x.{name}" for name in _ARGUMENTS)
SETTLE_MANY = (
    f"SELECT x.position, s.* FROM jsonb_to_recordset(%s::jsonb) AS x({_COLUMNS}) "
    f"CROSS JOIN LATERAL kx_settle({_NAMED}) s"
)

MAX_BATCH = 128  # settlements per transaction: bounds how long a batch holds month rows

Row = dict[str, Any]
_Waiting = tuple[dict[str, Any], asyncio.Future[Row | None]]


class SettlementQueue:
    """One per event loop: settlements waiting for the next flush, and at most one flush out."""

    def __init__(self) -> None:
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Future[None] | None = None
        self.flushes = 0  # transactions written, for tests and the benchmark

    async def settle(self, params: dict[str, Any]) -> Row | None:
        """Settle one call; returns once its bill is committed (or raises what its batch met)."""
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
            rows = await _write([params for params, _ in batch])
        except BaseException as error:  # never leave callers hanging (a cancelled loop, a bug)
            if isinstance(error, psycopg.Error) and len(batch) > 1 and not isinstance(error, _RETRIED_WHOLE):
                # One bad settlement fails its whole statement: the others go on their own.
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


# Failures of the whole transaction, not of one settlement in it: its callers retry.
_RETRIED_WHOLE = (*db.UNAVAILABLE, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


async def _write(settlements: list[dict[str, Any]]) -> list[Row | None]:
    """The rows SETTLE returns, in the order of ``settlements``: one round trip, one commit."""
    if len(settlements) == 1:
        return [await db.fetch_one(SETTLE, settlements[0])]
    order = sorted(range(len(settlements)), key=lambda n: _lock_order(settlements[n]))
    document = orjson.dumps([{"position": n, **settlements[n]} for n in order]).decode()
    rows: list[Row | None] = [None] * len(settlements)
    for row in await db.fetch_all(SETTLE_MANY, (document,)):
        rows[row.pop("position")] = row
    return rows


def _lock_order(params: dict[str, Any]) -> tuple[int, int]:
    return params["customer_id"], params["api_key_id"]


def _resolve(
    future: asyncio.Future[Row | None], *, row: Row | None = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled (never in the pipeline, which shields it)
        return
    if error is None:
        future.set_result(row)
    else:
        future.set_exception(error)


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SettlementQueue] = weakref.WeakKeyDictionary()


def queue() -> SettlementQueue:
    """The running loop's queue (like the connection pool, one per process and loop)."""
    loop = asyncio.get_running_loop()
    current = _queues.get(loop)
    if current is None:
        current = _queues[loop] = SettlementQueue()
    return current
