"""Periodic upkeep, off the request path: run by the ``maintenance`` function on a schedule
(with ``KAIXU_MAINTENANCE_SECRET``) and every minute by the local dev server.

- release reservations whose call never settled (a process died mid-call), so held money
  returns to the cap; the call is recorded as ``abandoned``;
- retry cap-alert webhooks that failed;
- KaixuPush: due upload jobs, expired staged parts, deploys still being finalised;
- prune expired throttle windows and old idempotency keys.
"""

from __future__ import annotations

import logging
from typing import Any

from shared import alerts, config, db, idempotency, throttle
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
        done = await db.fetch_one("SELECT kx_release_reservation(%s) AS released", (row["id"],))
        released += bool(done["released"])
    if released:
        log.warning("released %s stale reservation(s)", released)
    return released


async def run_once() -> dict[str, Any]:
    return {
        "released_reservations": await release_stale_reservations(),
        "alerts_delivered": await alerts.deliver_due(),
        **await kaixupush_jobs.upkeep(),
        "pruned_throttle_windows": await throttle.prune(),
        "pruned_idempotency_keys": await idempotency.prune(),
    }
