"""Query-string parameters and cursor pagination, validated the same way everywhere.

Lists are newest first by id. A cursor is the opaque form of the last id of a page; the
next page holds ids below it, so pages stay stable while new rows arrive.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any, Literal, overload

from shared import db, numbers
from shared.errors import bad_request
from shared.http import Ctx

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@overload
def int_param(ctx: Ctx, name: str, *, required: Literal[True], minimum: int = 1) -> int: ...
@overload
def int_param(ctx: Ctx, name: str, *, required: bool = False, minimum: int = 1) -> int | None: ...
def int_param(ctx: Ctx, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        if required:
            raise bad_request(name, f"{name} is required.")
        return None
    value = numbers.whole(raw)
    if value is None or value < minimum:
        raise bad_request(name, f"{name} must be a whole number of at least {minimum}.")
    return value


def month_param(ctx: Ctx, name: str = "month") -> str | None:
    raw = ctx.query.get(name)
    if not raw:
        return None
    if not _MONTH.match(raw):
        raise bad_request(name, f"{name} must look like 2026-02.")
    return raw


def since_param(ctx: Ctx) -> datetime | None:
    """``since`` as ISO-8601; a time without a zone is UTC."""
    raw = ctx.query.get("since")
    if not raw:
        return None
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request("since", "since must be an ISO-8601 time like 2026-02-01T00:00:00Z.") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def limit_param(ctx: Ctx) -> int:
    limit = int_param(ctx, "limit") or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise bad_request("limit", f"limit may be at most {MAX_LIMIT}.")
    return limit


def cursor_param(ctx: Ctx) -> int | None:
    """The id to continue below, from ``cursor``; None for the first page."""
    raw = ctx.query.get("cursor")
    if not raw:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        kind, _, value = decoded.partition(":")
        cursor = numbers.whole(value)
        if kind != "id" or cursor is None:
            raise ValueError
        return cursor
    except ValueError:
        raise bad_request("cursor", "cursor is not one this server issued.") from None


def page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    """``{"items", "next_cursor"}`` from up to ``limit + 1`` rows fetched newest first."""
    items = rows[:limit]
    more = len(rows) > limit
    cursor = base64.urlsafe_b64encode(f"id:{items[-1][key]}".encode()).rstrip(b"=").decode() if more else None
    return {"items": items, "next_cursor": cursor}


async def fetch_page(
    ctx: Ctx, base: str, filters: dict[str, Any], *, id_column: str = "id"
) -> dict[str, Any]:
    """One page of ``base`` (a SELECT ... FROM ... without WHERE), newest first, filtered by
    equality on the non-None ``filters`` (column -> value; columns are code, never input)."""
    limit = limit_param(ctx)
    clauses, args = ["TRUE"], []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = %s")
            args.append(value)
    cursor = cursor_param(ctx)
    if cursor is not None:
        clauses.append(f"{id_column} < %s")
        args.append(cursor)
    rows = await db.fetch_all(
        f"{base} WHERE {' AND '.join(clauses)} ORDER BY {id_column} DESC LIMIT %s", (*args, limit + 1)
    )
    return page(rows, limit)
