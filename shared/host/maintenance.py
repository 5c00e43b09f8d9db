"""Periodic upkeep, off the request path: run by the ``maintenance`` function on a schedule
(with ``KAIXU_MAINTENANCE_SECRET``) and every minute by the local dev server.

- release reservations whose call never settled (a process died mid-call), so held money
  returns to the cap; the call is recorded as ``abandoned``;
- retry cap-alert webhooks that failed;
- KaixuPush: due upload jobs, expired staged parts, deploys still being finalised;
- prune expired throttle windows and old idempotency keys, and monitor rows older than
  ``MONITOR_RETENTION_DAYS`` (a bounded batch per run, so one run never holds the table long).
"""

from __future__ import annotations

import logging
from typing import Any

from shared import config, db, idempotency, throttle
from shared.billing import alerts
from shared.http import Ctx, secret_header
from shared.kaixupush import jobs as kaixupush_jobs

log = logging.getLogger("kaixu.maintenance")
_GRACE_S = 300  # beyond the upstream timeout, before a reservation counts as abandoned


async def release_stale_reservations() -> int:
    """Settle abandoned reservations one transaction each (see kx_release_reservation)."""
    older_than_s = config.settings().upstream_timeout_s + _GRACE_S
    stale = await db.fetch_all(
        "SELECT id FROM reservations WHERE created_at < now() - make_interval(secs => %s) ORDER BY id",
        (older_than_s,),
    )
    released = 0
    for row in stale:
        done = await db.fetch_row("SELECT kx_release_reservation(%s) AS released", (row["id"],))
        released += bool(done["released"])
    if released:
        log.warning("released %s stale reservation(s)", released)
    return released


_PRUNE_BATCH = 20_000


async def prune_monitor() -> int:
    """Delete the oldest monitor rows past the retention, at most a batch a run."""
    days = config.settings().monitor_retention_days
    if days <= 0:
        return 0
    return await db.execute(
        "DELETE FROM gateway_events WHERE id IN (SELECT id FROM gateway_events "
        "WHERE created_at < now() - make_interval(days => %s) ORDER BY id LIMIT %s)",
        (days, _PRUNE_BATCH),
    )


require_secret = secret_header(
    "x-kaixu-maintenance-secret", "KAIXU_MAINTENANCE_SECRET", lambda: config.settings().maintenance_secret
)


async def run(ctx: Ctx) -> dict[str, Any]:
    """POST maintenance (the schedule, or a scheduler with the secret): one run."""
    return {"item": await run_once()}


async def run_once() -> dict[str, Any]:
    return {
        "released_reservations": await release_stale_reservations(),
        "alerts_delivered": await alerts.deliver_due(),
        **await kaixupush_jobs.upkeep(),
        "pruned_throttle_windows": await throttle.prune(),
        "pruned_idempotency_keys": await idempotency.prune(),
        "pruned_monitor_rows": await prune_monitor(),
    }
