"""Login throttling shared by every sign-in (admin password, customer key).

Failed attempts are limited per client address (MAX_FAILURES per FAILURE_WINDOW_S) and every
attempt is audited as ``<scope>.login``, ``<scope>.login_failed`` or ``<scope>.login_locked``.
Past ``ADMIN_LOGIN_GLOBAL_BUDGET`` failures of one scope in that window from all addresses
together (a guesser with many addresses), every attempt waits first, longer as failures grow:
guessing slows to a crawl while the rightful user, with the right secret, still gets in.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from shared import audit, config, db, throttle
from shared.errors import ApiError
from shared.http import Ctx

MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
GLOBAL_DELAY_S = 0.5  # the first wait past the global budget, doubled every 10 failures more
MAX_GLOBAL_DELAY_S = 8.0

T = TypeVar("T")


async def _global_delay_s(scope: str) -> float:
    """How long an attempt waits while failures from every address exceed the budget."""
    row = await db.fetch_row(
        "SELECT count(*) AS failures FROM audit_events WHERE action = %s "
        "AND created_at > now() - make_interval(secs => %s)",
        (f"{scope}.login_failed", FAILURE_WINDOW_S),
    )
    over = row["failures"] - config.settings().admin_login_global_budget
    return 0.0 if over < 0 else min(GLOBAL_DELAY_S * 2 ** (over // 10), MAX_GLOBAL_DELAY_S)


async def attempt(
    ctx: Ctx,
    scope: str,
    verify: Callable[[db.Connection], Awaitable[T | None]],
    actor_of: Callable[[T], str],
    *,
    record_success: bool,
) -> T | None:
    """What ``verify`` found (None when the secret is wrong), checked under a per-address lock
    so parallel guesses cannot pass the limit; a locked-out address gets 429."""
    await asyncio.sleep(await _global_delay_s(scope))
    subject = throttle.subject_hash(ctx.client_ip)
    target = f"client:{subject}"
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s || ':' || %s))", (scope, subject))
        cur = await conn.execute(
            "SELECT count(*) AS failures, min(created_at) AS oldest FROM audit_events "
            "WHERE action = %s AND target = %s AND created_at > now() - make_interval(secs => %s)",
            (f"{scope}.login_failed", target, FAILURE_WINDOW_S),
        )
        recent = await db.one(cur)
        found = None if recent["failures"] >= MAX_FAILURES else await verify(conn)
        if recent["failures"] >= MAX_FAILURES:
            await audit.record(conn, "anonymous", f"{scope}.login_locked", target)
        elif found is None:
            await audit.record(conn, "anonymous", f"{scope}.login_failed", target)
        elif record_success:
            await audit.record(conn, actor_of(found), f"{scope}.login", target)
    if recent["failures"] >= MAX_FAILURES:
        retry = FAILURE_WINDOW_S - (datetime.now(UTC) - recent["oldest"]).total_seconds()
        raise ApiError(
            429,
            "LOGIN_LOCKED",
            "Too many failed logins from this address; try again later.",
            headers={"retry-after": str(max(1, math.ceil(retry)))},
        )
    return found
