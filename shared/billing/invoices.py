"""Invoice snapshots: what a customer owes for a month, frozen and versioned.

A snapshot is computed from the exact nano-dollar costs in ``usage_events``. Each line (a
key, a provider/model) is rounded to cents once, half up, from its own exact sum; the
totals are rounded once from the exact sum of every event, never added up from rounded
lines, so three lines of 0.4999999 cents show 0 cents each and a total of 1 cent.

Snapshots are immutable: taking another one for the same customer and month stores
version + 1 (serialised per customer and month by an advisory lock, and guarded by the
unique constraint). Top-ups raise the month's cap; they are credit, not charges, so they
are listed but never added to what the customer owes (weak point 26 of the original).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from starlette.responses import Response

from shared import audit, db, fields, idempotency, money, params
from shared.admin import accounts
from shared.errors import bad_request, found
from shared.http import Ctx, JSONResponse, dumps

_SCOPE = "invoice.snapshot"
_LIST_COLUMNS = "id, customer_id, month, version, total_cents, created_at, created_by"
# One statement, so every line and the totals come from the same instant of the table.
_GROUPS = """
SELECT e.api_key_id, k.key_last4 AS last4, k.label, e.provider, e.model, count(*)::bigint AS calls,
       sum(e.input_tokens)::bigint AS input_tokens, sum(e.output_tokens)::bigint AS output_tokens,
       sum(e.cost_nanos)::bigint AS cost_nanos
FROM usage_events e JOIN api_keys k ON k.id = e.api_key_id
WHERE e.customer_id = %s AND e.month = %s
GROUP BY e.api_key_id, k.key_last4, k.label, e.provider, e.model
"""
_SUMS = ("calls", "input_tokens", "output_tokens", "cost_nanos")
_TOPUPS = (
    "SELECT id, amount_cents, source, actor, created_at FROM topups "
    "WHERE customer_id = %s AND month = %s ORDER BY id"
)


def _json_ready(value: dict[str, Any]) -> dict[str, Any]:
    """Datetimes to ISO-8601 UTC strings, as the API renders them."""
    ready: dict[str, Any] = orjson.loads(dumps(value))
    return ready


async def _rows(conn: db.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, args)
    return await cur.fetchall()


def _lines(groups: list[dict[str, Any]], by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Invoice lines per ``by`` (e.g. per key), most expensive first; each line is rounded to
    cents once, from its own exact nanos."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for group in groups:
        line = lines.setdefault(tuple(group[name] for name in by), {name: group[name] for name in by})
        for name in _SUMS:
            line[name] = line.get(name, 0) + group[name]
    for line in lines.values():
        line["cost_cents"] = money.cents(line["cost_nanos"])
    ordered = sorted(lines.items(), key=lambda item: (-item[1]["cost_nanos"], item[0]))
    return [line for _, line in ordered]


def _totals(groups: list[dict[str, Any]], push_nanos: int) -> dict[str, Any]:
    """Month totals: the cents are rounded once from the exact nano sum of every event; the
    amount owed, once from the exact sum of usage and push charges."""
    sums = {name: sum(group[name] for group in groups) for name in _SUMS}
    return {
        "calls": sums["calls"],
        "input_tokens": sums["input_tokens"],
        "output_tokens": sums["output_tokens"],
        "tokens": sums["input_tokens"] + sums["output_tokens"],
        "total_nanos": sums["cost_nanos"],
        "total_cents": money.cents(sums["cost_nanos"]),
        "push_nanos": push_nanos,
        "push_cents": money.cents(push_nanos),
        "grand_total_nanos": sums["cost_nanos"] + push_nanos,
        "grand_total_cents": money.cents(sums["cost_nanos"] + push_nanos),
    }


async def _push_section(conn: db.Connection, customer_id: int, month: str) -> dict[str, Any]:
    """KaixuPush charges of the month, read from push_invoices (kept exact by KaixuPush)."""
    invoices = await _rows(
        conn,
        "SELECT month, total_cents, total_nanos FROM push_invoices WHERE customer_id = %s AND month = %s",
        (customer_id, month),
    )
    total_nanos = sum(int(row["total_nanos"]) for row in invoices)
    return {
        "available": True,
        "invoices": invoices,
        "total_nanos": total_nanos,
        "total_cents": money.cents(total_nanos),
    }


async def compute(conn: db.Connection, customer: dict[str, Any], month: str) -> dict[str, Any]:
    """The snapshot document for one customer and month, from the database as it is now."""
    key = (customer["id"], month)
    groups = await _rows(conn, _GROUPS, key)
    topups = await _rows(conn, _TOPUPS, key)
    push = await _push_section(conn, *key)
    topups_cents = sum(row["amount_cents"] for row in topups)
    return _json_ready(
        {
            "customer": {
                "id": customer["id"],
                "email": customer["email"],
                "plan": customer["plan"],
                "monthly_cap_cents": customer["monthly_cap_cents"],
            },
            "month": month,
            "generated_at": datetime.now(UTC),
            "cap_cents": customer["monthly_cap_cents"] + topups_cents,
            "topups": {"items": topups, "total_cents": topups_cents},
            "by_key": _lines(groups, ("api_key_id", "last4", "label")),
            "by_model": _lines(groups, ("provider", "model")),
            "push": push,
            "totals": _totals(groups, push["total_nanos"]),
        }
    )


async def _customer(conn: db.Connection, customer_id: int) -> dict[str, Any]:
    cur = await conn.execute("SELECT * FROM customers WHERE id = %s", (customer_id,))
    return found(await cur.fetchone(), f"Customer {customer_id}")


async def take_snapshot(ctx: Ctx) -> Response:
    """POST {customer_id, month}: store the next version of the month's invoice (201).

    With an Idempotency-Key header a retried request replays the first one's snapshot (200)
    instead of storing another version."""
    body = await ctx.json_object()
    fields.reject_unknown(body, ("customer_id", "month"))
    customer_id = fields.int_field(body, "customer_id")
    month = fields.month_field(body)
    if month > accounts.current_month():
        raise bad_request("month", "month must not be in the future.")
    key = idempotency.header_key(ctx)
    async with db.connection() as conn, conn.transaction():
        customer = await _customer(conn, customer_id)
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('invoice:' || %s || ':' || %s, 0))",
            (customer_id, month),
        )
        if key and (earlier := await idempotency.claim(conn, _SCOPE, key, idempotency.request_hash(body))):
            return JSONResponse(earlier, status_code=200)
        item = await _store(conn, ctx.actor or "admin", customer, month)
        if key:
            await idempotency.store(conn, _SCOPE, key, {"item": item})
    return JSONResponse({"item": item}, status_code=201)


async def _store(conn: db.Connection, actor: str, customer: dict[str, Any], month: str) -> dict[str, Any]:
    """Insert the next version (the caller holds the customer-and-month lock) and audit it."""
    snapshot = await compute(conn, customer, month)
    cur = await conn.execute(
        "SELECT coalesce(max(version), 0) + 1 AS version FROM invoice_snapshots "
        "WHERE customer_id = %s AND month = %s",
        (customer["id"], month),
    )
    version = (await db.one(cur))["version"]
    snapshot["version"] = version
    total = snapshot["totals"]["grand_total_cents"]
    cur = await conn.execute(
        "INSERT INTO invoice_snapshots (customer_id, month, version, snapshot, total_cents, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
        (customer["id"], month, version, Jsonb(snapshot), total, actor),
    )
    item = await db.one(cur)
    await audit.record(
        conn,
        actor,
        "invoice.snapshot",
        f"customer:{customer['id']}",
        {"month": month, "version": version, "invoice_id": item["id"], "total_cents": total},
    )
    return item


async def get(ctx: Ctx) -> dict[str, Any]:
    """GET ?id= (one snapshot with its document), ?preview=1 (live, not stored) or the list."""
    snapshot_id = params.int_param(ctx, "id")
    if snapshot_id is not None:
        row = await db.fetch_one("SELECT * FROM invoice_snapshots WHERE id = %s", (snapshot_id,))
        return {"item": found(row, f"Invoice snapshot {snapshot_id}")}
    if ctx.query.get("preview") in ("1", "true"):
        return await _preview(ctx)
    return await _list(ctx)


async def _preview(ctx: Ctx) -> dict[str, Any]:
    customer_id = params.int_param(ctx, "customer_id", required=True)
    month = params.month_param(ctx) or accounts.current_month()
    async with db.connection() as conn:
        snapshot = await compute(conn, await _customer(conn, customer_id), month)
    return {"item": {"customer_id": customer_id, "month": month, "snapshot": snapshot}}


async def _list(ctx: Ctx) -> dict[str, Any]:
    """Versions newest first, optionally for one customer and/or month."""
    filters = {"customer_id": params.int_param(ctx, "customer_id"), "month": params.month_param(ctx)}
    return await params.fetch_page(ctx, f"SELECT {_LIST_COLUMNS} FROM invoice_snapshots", filters)
