"""admin-monitor: read the monitor (``gateway_events``), tail it live, prune old rows.

The list is newest first with cursor pagination; filters match the admin screen's columns
(``code`` picks the refusals of one kind: ``CAP_REACHED``, ``RATE_LIMITED``...).
``view=rates`` counts the last ``minutes`` (60 by default) per function: requests, 4xx, 5xx
and the share that failed, in one grouped query over the ``created_at`` index.
Pruning is a hard delete of rows older than N days, audited with how many went.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from shared import audit, db, fields, numbers, params
from shared.admin import monitor_tail
from shared.errors import bad_request, found
from shared.http import Ctx

LEVELS = ("info", "warn", "error")
VIEWS = ("rates",)
MAX_RATE_MINUTES = 1440
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_MAX_FILTER = 200
_TEXT_FILTERS = {
    "function": "function_name",
    "app": "app",
    "request_id": "request_id",
    "kind": "kind",
    "code": "code",
}
# The tail's columns plus the error code (the tail sends rows without it).
RATES = """
SELECT function_name,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 400 AND status < 500) AS status_4xx,
       count(*) FILTER (WHERE status >= 500) AS status_5xx,
       round(count(*) FILTER (WHERE status >= 400)::numeric / count(*), 4)::float8 AS error_rate
FROM gateway_events
WHERE created_at >= now() - make_interval(mins => %s) AND status IS NOT NULL
GROUP BY function_name
ORDER BY status_5xx DESC, error_rate DESC, requests DESC, function_name
"""


def _status_filter(ctx: Ctx) -> tuple[str, list[Any]] | None:
    """``status=404`` (exact) or ``status=5xx`` (a class)."""
    raw = ctx.query.get("status")
    if not raw:
        return None
    if _STATUS_CLASS.match(raw):
        low = int(raw[0]) * 100
        return "status >= %s AND status < %s", [low, low + 100]
    status = numbers.whole(raw)
    if status is not None and 100 <= status <= 599:
        return "status = %s", [status]
    raise bad_request("status", "status must be an HTTP status like 404 or a class like 5xx.")


def _filters(ctx: Ctx) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    level = ctx.query.get("level")
    if level:
        if level not in LEVELS:
            raise bad_request("level", f"level must be one of {', '.join(LEVELS)}.")
        where.append("level = %s")
        args.append(level)
    for name, column in _TEXT_FILTERS.items():
        value = ctx.query.get(name)
        if value:
            if len(value) > _MAX_FILTER:
                raise bad_request(name, f"{name} may be at most {_MAX_FILTER} characters.")
            where.append(f"{column} = %s")
            args.append(value)
    status = _status_filter(ctx)
    if status:
        where.append(status[0])
        args.extend(status[1])
    since = params.since_param(ctx)
    if since:
        where.append("created_at >= %s")
        args.append(since)
    return where, args


async def list_events(ctx: Ctx) -> dict[str, Any]:
    limit = params.limit_param(ctx)
    where, args = _filters(ctx)
    cursor = params.cursor_param(ctx)
    if cursor is not None:
        where.append("id < %s")
        args.append(cursor)
    condition = " AND ".join(where) or "TRUE"
    rows = await db.fetch_all(
        f"SELECT {monitor_tail.COLUMNS} FROM gateway_events WHERE {condition} ORDER BY id DESC LIMIT %s",
        (*args, limit + 1),
    )
    return params.page(rows, limit)


async def rates(ctx: Ctx) -> dict[str, Any]:
    """GET ?view=rates[&minutes=60]: per function, the requests of the last ``minutes`` that
    got an answer, how many were 4xx and 5xx, and ``error_rate`` (4xx + 5xx over requests,
    0..1); the functions with most server errors first."""
    minutes = params.int_param(ctx, "minutes") or 60
    if minutes > MAX_RATE_MINUTES:
        raise bad_request("minutes", f"minutes may be at most {MAX_RATE_MINUTES} (a day).")
    rows = await db.fetch_all(RATES, (minutes,))
    return {"items": rows, "minutes": minutes}


async def get(ctx: Ctx) -> Response | dict[str, Any]:
    """GET ?tail=1 (live SSE), ?view=rates, ?id= (one row with its details) or the filtered list."""
    if ctx.query.get("tail") in ("1", "true"):
        return await monitor_tail.open_tail(ctx)
    view = ctx.query.get("view")
    if view:
        if view not in VIEWS:
            raise bad_request("view", f"view must be one of {', '.join(VIEWS)}.")
        return await rates(ctx)
    event_id = params.int_param(ctx, "id")
    if event_id is None:
        return await list_events(ctx)
    row = await db.fetch_one("SELECT * FROM gateway_events WHERE id = %s", (event_id,))
    return {"item": found(row, f"Monitor event {event_id}")}


async def post(ctx: Ctx) -> dict[str, Any]:
    action = ctx.query.get("action")
    if action != "prune":
        raise bad_request("action", "action must be prune.")
    return await prune(ctx)


async def prune(ctx: Ctx) -> dict[str, Any]:
    """POST ?action=prune {days}: delete monitor rows older than ``days`` days (1..3650)."""
    body = await ctx.json_object()
    fields.reject_unknown(body, ("days",))
    days = fields.int_field(body, "days", minimum=1, maximum=3650)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "DELETE FROM gateway_events WHERE created_at < now() - make_interval(days => %s)", (days,)
        )
        deleted = cur.rowcount
        await audit.record(
            conn, ctx.actor or "admin", "monitor.prune", "gateway_events", {"days": days, "deleted": deleted}
        )
    return {"item": {"deleted": deleted, "days": days}}
