"""The per-customer push lock, the deploy rate limit and the guard on concurrent work.

Netlify allows about 3 deploys a minute per account, so the gateway limits deploy
creation per customer (``KAIXUPUSH_DEPLOYS_PER_MIN``, ``KAIXUPUSH_DEPLOYS_PER_DAY``; 0 turns
a window off). The windows slide and are exact: a deploy is admitted when fewer than the
limit were created in the last 60 s / 24 h. The pushes themselves are the log, counted
under the customer's push lock together with the cap, so concurrent inits are admitted one
at a time. A refused attempt writes nothing. A push Netlify refused (``init_failed``)
counts like any other: it cost a call on the Netlify token, so repeating refused inits
must not be free.

:func:`busy` bounds the inits and upload-completes a customer runs at once
(``KAIXUPUSH_CONCURRENT_PER_CUSTOMER``): each holds a ``push_busy`` row while it works, so
the bound holds across every process; a process that dies holding one frees it when the
row expires. Beyond it: 429 PUSH_BUSY with Retry-After.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared import config, db
from shared.errors import ApiError

BUSY_RETRY_S = 2
_NEWEST_AT_LIMIT = """
SELECT extract(epoch FROM created_at + make_interval(secs => %(window)s) - now()) AS frees_in
FROM push_pushes
WHERE customer_id = %(customer)s
  AND created_at > now() - make_interval(secs => %(window)s)
ORDER BY created_at DESC OFFSET %(offset)s LIMIT 1
"""


async def lock_customer(conn: db.Connection, customer_id: int) -> None:
    """Serialise the customer's admissions (deploy rate, cap) until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('kaixupush:' || %s, 0))", (customer_id,)
    )


async def check_deploy_rate(conn: db.Connection, customer_id: int) -> None:
    """429 PUSH_RATE_LIMITED (with Retry-After) when one more deploy would exceed a window."""
    cfg = config.settings()
    for scope, window_s, limit in (
        ("minute", 60, cfg.kaixupush_deploys_per_min),
        ("day", 86_400, cfg.kaixupush_deploys_per_day),
    ):
        if limit <= 0:
            continue
        cur = await conn.execute(
            _NEWEST_AT_LIMIT, {"window": window_s, "customer": customer_id, "offset": limit - 1}
        )
        row = await cur.fetchone()
        if row is None:
            continue
        retry = max(1, math.ceil(float(row["frees_in"])))
        raise ApiError(
            429,
            "PUSH_RATE_LIMITED",
            f"At most {limit} deploys per {scope} are allowed; retry in {retry} s.",
            headers={"retry-after": str(retry)},
            scope=scope,
            limit=limit,
            retry_after_s=retry,
        )


def _busy_ttl_s() -> float:
    """How long an init or upload-complete can take at most (its Netlify calls, the wait for
    a prepared deploy, the inline job), plus a margin: then its row is a dead process's."""
    cfg = config.settings()
    return cfg.kaixupush_prepare_timeout_s + cfg.kaixupush_inline_s + 4 * cfg.netlify_timeout_s + 60


@asynccontextmanager
async def busy(customer_id: int) -> AsyncIterator[None]:
    """Hold one of the customer's places for concurrent work, or 429 PUSH_BUSY."""
    limit = config.settings().kaixupush_concurrent_per_customer
    if limit <= 0:
        yield
        return
    row = await db.fetch_row("SELECT kx_push_enter(%s, %s, %s) AS id", (customer_id, limit, _busy_ttl_s()))
    if row["id"] is None:
        raise ApiError(
            429,
            "PUSH_BUSY",
            f"At most {limit} deploy inits and upload-completes may run at once; retry in {BUSY_RETRY_S} s.",
            headers={"retry-after": str(BUSY_RETRY_S)},
            limit=limit,
            retry_after_s=BUSY_RETRY_S,
        )
    try:
        yield
    finally:  # shielded: a request cancelled mid-way still gives its place back
        await asyncio.shield(db.execute("DELETE FROM push_busy WHERE id = %s", (row["id"],)))
