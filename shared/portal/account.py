"""What a signed-in customer reads about its own account: the month, usage, invoices, pushes.

Every query is scoped to ``ctx.customer`` (the session's customer), so another customer's id
finds nothing: 404, never its data. The operator's side of the ledger stays with the
operator: provider cost, margin and price-book versions are never in a customer's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import HTMLResponse, Response

from shared import csv_stream, db, money, params
from shared.admin import accounts, usage
from shared.billing import invoice_html
from shared.errors import bad_request, found
from shared.http import Ctx

_PLAN = """
SELECT c.email, p.name AS plan, p.stripe_topups, p.prepaid, p.included_credit_cents
FROM customers c JOIN plans p ON p.id = c.plan_id WHERE c.id = %s
"""
_EVENT_COLUMNS = (
    "created_at", "api_key_id", "provider", "model", "input_tokens", "output_tokens", "sell_cents",
    "sell_nanos", "outcome", "estimated", "install_id", "app", "build", "request_id", "clamped_to",
    "stopped_code",
)  # fmt: skip
_EVENTS = (
    "SELECT id, created_at, api_key_id, provider, model, input_tokens, output_tokens, sell_nanos, outcome, "
    "estimated, install_id, app, build, request_id, duration_ms, clamped_to, stopped_code FROM usage_events"
)
VISIBLE_INVOICES = ("issued", "paid", "void")  # drafts are the operator's work in progress
_INVOICES = (
    "SELECT * FROM (SELECT id, customer_id, month, status, number, total_cents, created_at, issued_at, "
    "paid_at, voided_at FROM invoice_snapshots "
    f"WHERE status IN ({', '.join(repr(status) for status in VISIBLE_INVOICES)})) visible"
)
_DEPLOYS = (
    "SELECT id, push_id, project_id, branch, title, deploy_id, state, error, file_count, url, ready_at, "
    "created_at, updated_at FROM push_pushes"
)
_CHARGES = (
    "SELECT id, month, total_cents, total_nanos, deploys, bytes, breakdown, created_at, updated_at "
    "FROM push_invoices"
)


def without_costs(value: Any) -> Any:
    """A document with every provider-cost, margin and price-version field taken out."""
    if isinstance(value, dict):
        return {
            name: without_costs(item)
            for name, item in value.items()
            if not name.startswith(("cost_", "margin_", "price_version", "sell_version"))
        }
    if isinstance(value, list):
        return [without_costs(item) for item in value]
    return value


async def summary(ctx: Ctx) -> dict[str, Any]:
    """GET ?month=: spend against the cap, top-ups, credit left, per key and per day."""
    month = params.month_param(ctx) or accounts.current_month()
    month_summary = await usage.summary(ctx.customer, month)
    plan = found(await db.fetch_one(_PLAN, (ctx.customer,)), f"Customer {ctx.customer}")
    totals = month_summary["totals"]
    left_nanos = money.nanos(totals["cap_cents"]) - totals["spent_nanos"] - totals["reserved_nanos"]
    totals |= {
        "remaining_cents": money.cents(max(0, left_nanos)),
        "included_credit_cents": plan.pop("included_credit_cents"),
    }
    customer = {"id": ctx.customer, **plan}
    return {"item": without_costs({**month_summary, "customer": customer})}


async def check_own_key(ctx: Ctx) -> None:
    """A filter naming another customer's key is a 404, as its id would be anywhere else."""
    api_key_id = params.int_param(ctx, "api_key_id")
    if api_key_id is not None:
        owned = "SELECT id FROM api_keys WHERE id = %s AND customer_id = %s"
        found(await db.fetch_one(owned, (api_key_id, ctx.customer)), f"Key {api_key_id}")


async def events(ctx: Ctx) -> Response | dict[str, Any]:
    """GET ?month=&api_key_id=&provider=&model= : metered calls, newest first; ``format=csv``
    streams every matching call as a spreadsheet-safe CSV file."""
    form = ctx.query.get("format") or "json"
    if form not in ("json", "csv"):
        raise bad_request("format", "format must be json or csv.")
    await check_own_key(ctx)
    clauses, args = usage.filters(ctx, ctx.customer)
    if form == "csv":
        query = csv_stream.Query(
            f"{_EVENTS} WHERE {' AND '.join(clauses)} ORDER BY id",
            tuple(args),
            _EVENT_COLUMNS,
            _event_cells,
        )
        stamp = params.month_param(ctx) or datetime.now(UTC).strftime("%Y-%m-%d")
        return await csv_stream.response(query, f"kaixu-usage-{stamp}.csv")
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    if cursor is not None:
        clauses.append("id < %s")
        args.append(cursor)
    rows = await db.fetch_all(
        f"{_EVENTS} WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT %s", [*args, limit + 1]
    )
    return params.page([{**row, "sell_cents": money.cents(row["sell_nanos"])} for row in rows], limit)


def _event_cells(row: dict[str, Any]) -> list[Any]:
    row = {**row, "sell_cents": money.cents(row["sell_nanos"])}
    return [row[name] for name in _EVENT_COLUMNS]


async def invoices(ctx: Ctx) -> Response | dict[str, Any]:
    """GET the issued invoices (newest first; ``month=`` filters), ``?id=`` one of them with
    its document, ``?id=&format=html`` the printable invoice."""
    form = ctx.query.get("format") or "json"
    if form not in ("json", "html"):
        raise bad_request("format", "format must be json or html.")
    invoice_id = params.int_param(ctx, "id")
    if invoice_id is None:
        if form == "html":
            raise bad_request("format", "format=html needs the id of an invoice.")
        filters = {"customer_id": ctx.customer, "month": params.month_param(ctx)}
        return await params.fetch_page(ctx, _INVOICES, filters)
    row = found(
        await db.fetch_one(
            "SELECT * FROM invoice_snapshots WHERE id = %s AND customer_id = %s AND status = ANY(%s)",
            (invoice_id, ctx.customer, list(VISIBLE_INVOICES)),
        ),
        f"Invoice {invoice_id}",
    )
    if form == "html":
        return HTMLResponse(invoice_html.render(row), headers=invoice_html.HEADERS)
    return {"item": without_costs(row)}


async def kaixupush(ctx: Ctx) -> dict[str, Any]:
    """GET ?view=deploys (deploy history, ``project_id=`` filters) or ?view=charges (push
    invoices, ``month=`` filters), newest first."""
    view = ctx.query.get("view") or "deploys"
    if view == "deploys":
        project = ctx.query.get("project_id")
        return await params.fetch_page(ctx, _DEPLOYS, {"customer_id": ctx.customer, "project_id": project})
    if view == "charges":
        filters = {"customer_id": ctx.customer, "month": params.month_param(ctx)}
        return await params.fetch_page(ctx, _CHARGES, filters)
    raise bad_request("view", "view must be deploys or charges.")
