"""admin-audit: the audit log, newest first, filtered by action, target, actor and time."""

from __future__ import annotations

from typing import Any

from shared import db, params
from shared.errors import bad_request
from shared.http import Ctx

_MAX_FILTER = 200


async def list_events(ctx: Ctx) -> dict[str, Any]:
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    clauses: list[str] = ["true"]
    args: list[Any] = []
    for name in ("action", "target", "actor"):
        value = ctx.query.get(name)
        if value:
            if len(value) > _MAX_FILTER:
                raise bad_request(name, f"{name} may be at most {_MAX_FILTER} characters.")
            clauses.append(f"{name} = %s")
            args.append(value)
    since = params.since_param(ctx)
    if since is not None:
        clauses.append("created_at >= %s")
        args.append(since)
    if cursor is not None:
        clauses.append("id < %s")
        args.append(cursor)
    rows = await db.fetch_all(
        "SELECT id, created_at, actor, action, target, details FROM audit_events "
        f"WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT %s",
        [*args, limit + 1],
    )
    return params.page(rows, limit)
