"""admin-usage: a customer's metered calls, and the month summary (totals, per key, per day).

Every filter is on stored columns (``month`` is written with each event), so the queries use
the ``(customer_id, month, id)`` index rather than computing months from timestamps. Cents
are rounded once from exact nano sums, never summed from rounded parts.
"""

from __future__ import annotations

from typing import Any

from shared import db, money, params
from shared.admin import accounts, policy
from shared.errors import bad_request, found
from shared.http import Ctx

_EVENT_COLUMNS = (
    "id, created_at, api_key_id, provider, model, input_tokens, output_tokens, cost_nanos, sell_nanos, "
    "price_version_id, sell_version_id, outcome, estimated, install_id, app, build, request_id, duration_ms, "
    "clamped_to, stopped_code"
)
_MAX_MODEL = 200


def _event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cost_cents": money.cents(row["cost_nanos"]), "sell_cents": money.cents(row["sell_nanos"])}


def filters(ctx: Ctx, customer_id: int) -> tuple[list[str], list[Any]]:
    clauses: list[str] = ["customer_id = %s"]
    args: list[Any] = [customer_id]
    month = params.month_param(ctx)
    if month:
        clauses.append("month = %s")
        args.append(month)
    api_key_id = params.int_param(ctx, "api_key_id")
    if api_key_id is not None:
        clauses.append("api_key_id = %s")
        args.append(api_key_id)
    provider = ctx.query.get("provider")
    if provider:
        if provider not in policy.PROVIDERS:
            raise bad_request("provider", f"provider must be one of {', '.join(policy.PROVIDERS)}.")
        clauses.append("provider = %s")
        args.append(provider)
    model = ctx.query.get("model")
    if model:
        if len(model) > _MAX_MODEL:
            raise bad_request("model", f"model may be at most {_MAX_MODEL} characters.")
        clauses.append("model = %s")
        args.append(model)
    return clauses, args


async def list_events(ctx: Ctx) -> dict[str, Any]:
    customer_id = params.int_param(ctx, "customer_id", required=True)
    if ctx.query.get("view") == "summary":
        return {"item": await summary(customer_id, params.month_param(ctx) or accounts.current_month())}
    if ctx.query.get("view"):
        raise bad_request("view", "view must be summary, or left out for the event list.")
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    clauses, args = filters(ctx, customer_id)
    if cursor is not None:
        clauses.append("id < %s")
        args.append(cursor)
    rows = await db.fetch_all(
        f"SELECT {_EVENT_COLUMNS} FROM usage_events WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT %s",
        [*args, limit + 1],
    )
    return params.page([_event_view(row) for row in rows], limit)


_TOTALS = """
SELECT coalesce(c.monthly_cap_cents, p.monthly_cap_cents) AS monthly_cap_cents,
       coalesce(mu.topup_cents, 0) AS topup_cents,
       coalesce(mu.spent_nanos, 0) AS spent_nanos, coalesce(mu.reserved_nanos, 0) AS reserved_nanos,
       coalesce(mu.calls, 0) AS calls, coalesce(mu.input_tokens, 0) AS input_tokens,
       coalesce(mu.output_tokens, 0) AS output_tokens
FROM customers c JOIN plans p ON p.id = c.plan_id
LEFT JOIN monthly_usage mu ON mu.customer_id = c.id AND mu.month = %(month)s
WHERE c.id = %(customer_id)s
"""
_PER_KEY = """
SELECT mk.api_key_id, k.key_last4, k.label, k.kind, k.revoked_at, mk.calls, mk.input_tokens,
       mk.output_tokens, mk.spent_nanos, mk.reserved_nanos
FROM monthly_key_usage mk JOIN api_keys k ON k.id = mk.api_key_id
WHERE mk.customer_id = %(customer_id)s AND mk.month = %(month)s
ORDER BY mk.spent_nanos DESC, mk.api_key_id
"""
_PER_DAY = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS date, count(*) AS calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       sum(cost_nanos)::bigint AS cost_nanos, sum(sell_nanos)::bigint AS sell_nanos
FROM usage_events WHERE customer_id = %(customer_id)s AND month = %(month)s
GROUP BY 1 ORDER BY 1
"""


def _with_tokens(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "tokens": row["input_tokens"] + row["output_tokens"]}


async def summary(customer_id: int, month: str) -> dict[str, Any]:
    """The month's totals (cap including top-ups), per-key rollups and per-day rollups."""
    args = {"customer_id": customer_id, "month": month}
    async with db.connection() as conn:
        totals = found(await (await conn.execute(_TOTALS, args)).fetchone(), f"Customer {customer_id}")
        per_key = await (await conn.execute(_PER_KEY, args)).fetchall()
        per_day = await (await conn.execute(_PER_DAY, args)).fetchall()
    base_cap = totals.pop("monthly_cap_cents")
    month_totals = {
        **_with_tokens(totals),
        "base_cap_cents": base_cap,
        "cap_cents": base_cap + totals["topup_cents"],
        "spent_cents": money.cents(totals["spent_nanos"]),
        "reserved_cents": money.cents(totals["reserved_nanos"]),
    }
    return {
        "customer_id": customer_id,
        "month": month,
        "totals": month_totals,
        "keys": [{**_with_tokens(r), "spent_cents": money.cents(r["spent_nanos"])} for r in per_key],
        "days": [{**_with_tokens(r), **money.cents_of(r, "cost_nanos", "sell_nanos")} for r in per_day],
    }
