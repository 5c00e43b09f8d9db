"""Invoice snapshots: a customer's month reconciled, frozen, versioned, then numbered.

A snapshot is the month's reconciliation (:mod:`shared.billing.reconcile`: usage at the
sell price per model and price version, KaixuPush, included credit, top-ups, Stripe
reversals, credit carried in), read from the exact nano-dollar figures and rounded to cents
once per line and once per total. The row's ``total_cents`` is the amount due (0 in credit).

Snapshots are immutable: taking another one for the same customer and month stores
version + 1 (serialised per customer and month by an advisory lock, and guarded by the
unique constraint). A snapshot is a draft until it is issued (numbered, gaplessly), then
paid or void: :mod:`shared.billing.invoice_states`. ``GET ?id=&format=html`` is the
printable invoice (:mod:`shared.billing.invoice_html`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from starlette.responses import HTMLResponse, Response

from shared import audit, db, fields, idempotency, money, params
from shared.admin import accounts
from shared.billing import invoice_html, reconcile
from shared.errors import bad_request, found
from shared.http import Ctx, JSONResponse, dumps

_SCOPE = "invoice.snapshot"
STATUSES = ("draft", "issued", "paid", "void")
LIST_COLUMNS = (
    "id, customer_id, month, version, status, number, total_cents, carried_out_nanos, created_at, "
    "created_by, issued_at, paid_at, voided_at"
)
# Per key, model and price versions, with the versions' rates: one statement, so every usage
# line, the by-key lines and the usage totals come from the same instant of the table.
_GROUPS = """
SELECT e.api_key_id, k.key_last4 AS last4, k.label, e.provider, e.model, e.price_version_id,
       e.sell_version_id, count(*)::bigint AS calls, sum(e.input_tokens)::bigint AS input_tokens,
       sum(e.output_tokens)::bigint AS output_tokens, sum(e.cost_nanos)::bigint AS cost_nanos,
       sum(e.sell_nanos)::bigint AS sell_nanos,
       mp.input_nanos AS cost_input_nanos, mp.output_nanos AS cost_output_nanos,
       mp.request_nanos AS cost_request_nanos, sp.kind AS sell_kind, sp.markup_bp AS sell_markup_bp,
       sp.input_nanos AS sell_input_nanos, sp.output_nanos AS sell_output_nanos,
       sp.request_nanos AS sell_request_nanos, greatest(mp.effective_from, sp.effective_from) AS prices_from
FROM usage_events e
JOIN api_keys k ON k.id = e.api_key_id
LEFT JOIN model_prices mp ON mp.id = e.price_version_id
LEFT JOIN sell_prices sp ON sp.id = e.sell_version_id
WHERE e.customer_id = %s AND e.month = %s
GROUP BY e.api_key_id, k.key_last4, k.label, e.provider, e.model, e.price_version_id, e.sell_version_id,
         mp.id, sp.id
"""
_TOPUPS = (
    "SELECT id, amount_cents, source, actor, created_at FROM topups "
    "WHERE customer_id = %s AND month = %s ORDER BY id"
)
_PUSH = (
    "SELECT month, total_cents, total_nanos, deploys, bytes FROM push_invoices "
    "WHERE customer_id = %s AND month = %s"
)
_CUSTOMER = """
SELECT c.id, c.email, c.plan_id, p.name AS plan,
       coalesce(c.monthly_cap_cents, p.monthly_cap_cents) AS monthly_cap_cents, p.included_credit_cents
FROM customers c JOIN plans p ON p.id = c.plan_id WHERE c.id = %s
"""


def month_after(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_before(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def _json_ready(value: dict[str, Any]) -> dict[str, Any]:
    """Datetimes to ISO-8601 UTC strings, as the API renders them."""
    ready: dict[str, Any] = orjson.loads(dumps(value))
    return ready


async def _rows(conn: db.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, args)
    return await cur.fetchall()


async def carried_in(conn: db.Connection, customer_id: int, month: str) -> int:
    """The credit earlier invoices carried into ``month`` (booked when they were issued)."""
    cur = await conn.execute(
        "SELECT carried_in_nanos FROM monthly_usage WHERE customer_id = %s AND month = %s",
        (customer_id, month),
    )
    row = await cur.fetchone()
    return int(row["carried_in_nanos"]) if row else 0


def _push_section(invoices: list[dict[str, Any]]) -> dict[str, Any]:
    """KaixuPush charges of the month, read from push_invoices (kept exact by KaixuPush)."""
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
    push = _push_section(await _rows(conn, _PUSH, key))
    brought = await carried_in(conn, *key)
    included = money.nanos(int(customer["included_credit_cents"]))
    usage = reconcile.usage_lines(groups)
    lines = reconcile.statement(
        usage,
        push["invoices"],
        topups,
        included_nanos=included,
        carried_in_nanos=brought,
        plan=customer["plan"],
        previous_month=month_before(month),
    )
    totals = reconcile.totals(
        usage,
        lines,
        push_nanos=push["total_nanos"],
        included_nanos=included,
        carried_in_nanos=brought,
        topups=topups,
    )
    topups_cents = sum(int(row["amount_cents"]) for row in topups)
    return _json_ready(
        {
            "customer": customer,
            "month": month,
            "generated_at": datetime.now(UTC),
            "cap_cents": int(customer["monthly_cap_cents"]) + topups_cents,
            "usage": usage,
            "by_key": reconcile.key_lines(groups),
            "push": push,
            "topups": {"items": topups, "total_cents": topups_cents},
            "lines": lines,
            "totals": totals,
            "carry_over": {
                "rule": reconcile.CARRY_RULE,
                "from_month": month_before(month),
                "carried_in_nanos": brought,
                "to_month": month_after(month),
                "carried_out_nanos": totals["carried_out_nanos"],
            },
        }
    )


async def customer_for_invoice(conn: db.Connection, customer_id: int) -> dict[str, Any]:
    """The customer as an invoice shows it: its plan's name, effective cap and included credit."""
    cur = await conn.execute(_CUSTOMER, (customer_id,))
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
        customer = await customer_for_invoice(conn, customer_id)
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
    """Insert the next version, a draft (the caller holds the customer-and-month lock), and
    audit it."""
    snapshot = await compute(conn, customer, month)
    cur = await conn.execute(
        "SELECT coalesce(max(version), 0) + 1 AS version FROM invoice_snapshots "
        "WHERE customer_id = %s AND month = %s",
        (customer["id"], month),
    )
    version = (await db.one(cur))["version"]
    snapshot["version"] = version
    due = snapshot["totals"]["due_cents"]
    cur = await conn.execute(
        "INSERT INTO invoice_snapshots (customer_id, month, version, snapshot, total_cents, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
        (customer["id"], month, version, Jsonb(snapshot), due, actor),
    )
    item = await db.one(cur)
    await audit.record(
        conn,
        actor,
        "invoice.snapshot",
        f"customer:{customer['id']}",
        {"month": month, "version": version, "invoice_id": item["id"], "total_cents": due},
    )
    return item


def _format(ctx: Ctx) -> str:
    value = ctx.query.get("format") or "json"
    if value not in ("json", "html"):
        raise bad_request("format", "format must be json or html.")
    return value


async def get(ctx: Ctx) -> Response | dict[str, Any]:
    """GET ?id= (one snapshot with its document; ``format=html``: the printable invoice),
    ?preview=1 (live, not stored) or the list (``status=`` filters it)."""
    snapshot_id = params.int_param(ctx, "id")
    form = _format(ctx)
    if snapshot_id is None and form == "html":
        raise bad_request("format", "format=html needs the id of a stored invoice.")
    if snapshot_id is not None:
        row = found(
            await db.fetch_one("SELECT * FROM invoice_snapshots WHERE id = %s", (snapshot_id,)),
            f"Invoice snapshot {snapshot_id}",
        )
        if form == "html":
            return HTMLResponse(invoice_html.render(row), headers=invoice_html.HEADERS)
        return {"item": row}
    if ctx.query.get("preview") in ("1", "true"):
        return await _preview(ctx)
    return await _list(ctx)


async def _preview(ctx: Ctx) -> dict[str, Any]:
    customer_id = params.int_param(ctx, "customer_id", required=True)
    month = params.month_param(ctx) or accounts.current_month()
    async with db.connection() as conn:
        snapshot = await compute(conn, await customer_for_invoice(conn, customer_id), month)
    return {"item": {"customer_id": customer_id, "month": month, "snapshot": snapshot}}


def _status_param(ctx: Ctx) -> str | None:
    status = ctx.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise bad_request("status", f"status must be one of {', '.join(STATUSES)}.")
    return status


async def _list(ctx: Ctx) -> dict[str, Any]:
    """Versions newest first, optionally for one customer, month and/or status."""
    filters = {
        "customer_id": params.int_param(ctx, "customer_id"),
        "month": params.month_param(ctx),
        "status": _status_param(ctx),
    }
    return await params.fetch_page(ctx, f"SELECT {LIST_COLUMNS} FROM invoice_snapshots", filters)
