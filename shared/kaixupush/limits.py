"""The per-customer push lock and the deploy rate limit.

Netlify allows about 3 deploys a minute per account, so the gateway limits deploy
creation per customer (``KAIXUPUSH_DEPLOYS_PER_MIN``, ``KAIXUPUSH_DEPLOYS_PER_DAY``; 0 turns
a window off). The windows slide and are exact: a deploy is admitted when fewer than the
limit were created in the last 60 s / 24 h. The pushes themselves are the log, counted
under the customer's push lock together with the cap, so concurrent inits are admitted one
at a time. A refused attempt writes nothing, and a push Netlify refused (``init_failed``)
does not count, unlike the original's counters that grew on every attempt.
"""

from __future__ import annotations

import math

import psycopg

from shared import config
from shared.http import ApiError

_NEWEST_AT_LIMIT = """
SELECT extract(epoch FROM created_at + make_interval(secs => %(window)s) - now()) AS frees_in
FROM push_pushes
WHERE customer_id = %(customer)s AND state <> 'init_failed'
  AND created_at > now() - make_interval(secs => %(window)s)
ORDER BY created_at DESC OFFSET %(offset)s LIMIT 1
"""


async def lock_customer(conn: psycopg.AsyncConnection, customer_id: int) -> None:
    """Serialise the customer's admissions (deploy rate, cap) until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('kaixupush:' || %s, 0))", (customer_id,)
    )


async def check_deploy_rate(conn: psycopg.AsyncConnection, customer_id: int) -> None:
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
