"""admin-overview: the operator's month at a glance (revenue, provider cost, margin), as JSON or CSV.

Revenue is what customers were charged for calls (``sell_nanos``), cost what the providers
charged the operator (``cost_nanos``) and margin the difference; KaixuPush charges are
revenue of their own, shown beside it (a deploy has no provider cost, so it is not in the
margin). Every figure is summed exactly in nanos, and each ``*_cents`` is rounded once from
its own exact sum: a margin in cents is the rounded margin, never rounded revenue minus
rounded cost, so a column of cents need not add up to its rounded total (the nanos do).

Three queries, whatever the number of customers: one scan of the month's usage events (the
``(month, created_at)`` index) rolled up by customer, by model, by provider, by day and in
total at once (``GROUPING SETS``); the month's customers with their plan, cap, spend and
KaixuPush charge; and the month's failed Stripe payments. "Near cap" uses the spend the cap
itself counts (``monthly_usage.spent_nanos`` against the cap with top-ups), at
``CAP_WARN_PCT`` like the cap alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from starlette.responses import Response

from shared import config, csv_stream, db, money, params
from shared.admin import accounts
from shared.errors import bad_request
from shared.http import Ctx

Row = dict[str, Any]

TOP_SPENDERS = 10
FORMATS = ("json", "csv")

# One pass over the month's events: a row per customer, per (provider, model), per provider,
# per UTC day and one grand total (the empty grouping set answers even for an empty month).
USAGE_ROLLUPS_SQL = """
WITH events AS (
    SELECT customer_id, provider, model, (created_at AT TIME ZONE 'UTC')::date AS day,
           sell_nanos, cost_nanos
    FROM usage_events WHERE month = %(month)s
)
SELECT CASE WHEN grouping(customer_id) = 0 THEN 'customer'
            WHEN grouping(model) = 0 THEN 'model'
            WHEN grouping(provider) = 0 THEN 'provider'
            WHEN grouping(day) = 0 THEN 'day'
            ELSE 'total' END AS rollup,
       customer_id, provider, model, day AS date, count(*) AS calls,
       coalesce(sum(sell_nanos), 0)::bigint AS revenue_nanos,
       coalesce(sum(cost_nanos), 0)::bigint AS cost_nanos
FROM events
GROUP BY GROUPING SETS ((customer_id), (provider, model), (provider), (day), ())
"""

# The month's customers: those with usage, a month row (spend, top-ups) or a KaixuPush
# charge. The cap is the one ADMIT enforces: the customer's own or its plan's, plus top-ups.
CUSTOMERS_SQL = """
SELECT c.id AS customer_id, c.email, p.name AS plan,
       coalesce(c.monthly_cap_cents, p.monthly_cap_cents) + coalesce(mu.topup_cents, 0) AS cap_cents,
       coalesce(mu.spent_nanos, 0) AS spent_nanos,
       coalesce(pi.total_nanos, 0) AS push_revenue_nanos
FROM customers c
JOIN plans p ON p.id = c.plan_id
LEFT JOIN monthly_usage mu ON mu.customer_id = c.id AND mu.month = %(month)s
LEFT JOIN push_invoices pi ON pi.customer_id = c.id AND pi.month = %(month)s
WHERE mu.customer_id IS NOT NULL OR pi.customer_id IS NOT NULL OR c.id = ANY(%(customer_ids)s)
"""

FAILED_PAYMENTS_SQL = """
SELECT f.event_id, f.event_type, f.session_id, f.customer_id, c.email, f.amount_cents, f.reason,
       f.created_at
FROM stripe_payment_failures f LEFT JOIN customers c ON c.id = f.customer_id
WHERE f.created_at >= %(start)s AND f.created_at < %(end)s
ORDER BY f.created_at DESC, f.event_id
"""


# ---------------------------------------------------------------------------- input


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of ``month`` and of the month after it, in UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def month_param(ctx: Ctx) -> str:
    """``month`` (default: this UTC month). A month still to come has nothing to show, and
    asking for one is more likely a typo than a wish: it is refused rather than shown empty."""
    month = params.month_param(ctx) or accounts.current_month()
    if month > accounts.current_month():
        raise bad_request("month", f"month may not be after the current month ({accounts.current_month()}).")
    if month < "0001-01":
        raise bad_request("month", "month must be a real month, like 2026-02.")
    return month


def format_param(ctx: Ctx) -> str:
    fmt = ctx.query.get("format") or "json"
    if fmt not in FORMATS:
        raise bad_request("format", f"format must be one of {', '.join(FORMATS)}.")
    return fmt


# ---------------------------------------------------------------------------- figures


def pct(numerator: int, denominator: int) -> str | None:
    """``numerator / denominator`` as a percentage with one decimal ("12.5"), rounded half away
    from zero in integers (no float ever touches money); None when there is nothing to divide by."""
    if denominator <= 0:
        return None
    tenths = money.half_up_div(1000 * abs(numerator), denominator)
    sign = "-" if numerator < 0 and tenths else ""
    return f"{sign}{tenths // 10}.{tenths % 10}"


def figures(revenue_nanos: int, cost_nanos: int) -> Row:
    """Revenue, cost and margin of one group: exact nanos, cents each rounded once, margin %."""
    exact = {
        "revenue_nanos": revenue_nanos,
        "cost_nanos": cost_nanos,
        "margin_nanos": revenue_nanos - cost_nanos,
    }
    return {**exact, **money.cents_of(exact, *exact), "margin_pct": pct(exact["margin_nanos"], revenue_nanos)}


def _push(push_nanos: int) -> Row:
    return {"push_revenue_nanos": push_nanos, "push_revenue_cents": money.cents(push_nanos)}


def _spend(customer: Row) -> Row:
    """How much of its cap a customer has used (the cap's own measure: the month's spend)."""
    spent, cap = customer["spent_nanos"], customer["cap_cents"]
    return {
        "spent_nanos": spent,
        "spent_cents": money.cents(spent),
        "cap_cents": cap,
        "cap_used_pct": pct(spent, money.nanos(cap)),
    }


def _by_revenue(*ties: str) -> Callable[[Row], tuple[Any, ...]]:
    """A sort key: highest revenue first, ties in the order of the ``ties`` columns."""
    return lambda row: (-row["revenue_nanos"], *(row[name] for name in ties))


def _customer_rows(usage: dict[int, Row], customers: dict[int, Row]) -> list[Row]:
    """One row per customer with calls or KaixuPush charges this month, highest revenue first."""
    rows = []
    for customer_id, info in customers.items():
        used = usage.get(customer_id)
        if used is None and not info["push_revenue_nanos"]:
            continue  # only a month row (a top-up, say): nothing sold this month
        used = used or {"calls": 0, "revenue_nanos": 0, "cost_nanos": 0}
        rows.append(
            {
                "customer_id": customer_id,
                "email": info["email"],
                "plan": info["plan"],
                "calls": used["calls"],
                **figures(used["revenue_nanos"], used["cost_nanos"]),
                **_push(info["push_revenue_nanos"]),
            }
        )
    return sorted(rows, key=_by_revenue("customer_id"))


def _near_cap(customers: list[Row]) -> list[Row]:
    """Customers whose month spend is at least ``CAP_WARN_PCT`` % of their cap (the cap
    alerts' test), the fullest first; a cap of zero or below with spend counts as full."""
    warn = config.settings().cap_warn_pct
    near = []
    for row in customers:
        spent, cap_nanos = row["spent_nanos"], money.nanos(row["cap_cents"])
        if spent > 0 and spent * 100 >= warn * cap_nanos:
            near.append(row)

    def fullness(row: Row) -> tuple[bool, Fraction, int]:
        cap_nanos = money.nanos(row["cap_cents"])
        ratio = Fraction(row["spent_nanos"], cap_nanos) if cap_nanos > 0 else Fraction(0)
        return (cap_nanos > 0, -ratio, row["customer_id"])

    return [
        {"customer_id": r["customer_id"], "email": r["email"], "plan": r["plan"], **_spend(r)}
        for r in sorted(near, key=fullness)
    ]


def _split(rollups: list[Row]) -> dict[str, list[Row]]:
    """The rollup query's rows by grouping set."""
    grouped: dict[str, list[Row]] = {"customer": [], "model": [], "provider": [], "day": [], "total": []}
    for row in rollups:
        grouped[row["rollup"]].append(row)
    return grouped


def _group(row: Row, *keys: str) -> Row:
    """One rollup row as the report shows it: its keys, calls and figures."""
    return {
        **{key: row[key] for key in keys},
        "calls": row["calls"],
        **figures(row["revenue_nanos"], row["cost_nanos"]),
    }


def _top_spenders(by_customer: list[Row], customers: dict[int, Row]) -> list[Row]:
    """The customers who bought most this month, with how much of their cap they have used."""
    keys = ("customer_id", "email", "plan", "calls", "revenue_nanos", "revenue_cents")
    top = [row for row in by_customer if row["revenue_nanos"] > 0][:TOP_SPENDERS]
    return [{**{k: row[k] for k in keys}, **_spend(customers[row["customer_id"]])} for row in top]


def assemble(month: str, rollups: list[Row], customers: list[Row], failures: list[Row]) -> Row:
    """The report from the three queries' rows (pure: every figure is computed here)."""
    grouped = _split(rollups)
    [total] = grouped["total"]
    by_id = {row["customer_id"]: row for row in customers}
    by_customer = _customer_rows({row["customer_id"]: row for row in grouped["customer"]}, by_id)
    push_nanos = sum(row["push_revenue_nanos"] for row in customers)
    return {
        "month": month,
        "cap_warn_pct": config.settings().cap_warn_pct,
        "totals": {
            "calls": total["calls"],
            **figures(total["revenue_nanos"], total["cost_nanos"]),
            **_push(push_nanos),
        },
        "by_customer": by_customer,
        "by_model": sorted(
            (_group(r, "provider", "model") for r in grouped["model"]), key=_by_revenue("provider", "model")
        ),
        "by_provider": sorted(
            (_group(r, "provider") for r in grouped["provider"]), key=_by_revenue("provider")
        ),
        "by_day": sorted((_group(r, "date") for r in grouped["day"]), key=lambda r: r["date"]),
        "top_spenders": _top_spenders(by_customer, by_id),
        "near_cap": _near_cap(customers),
        "failed_payments": failures,
    }


async def report(month: str) -> Row:
    """The month's overview: three queries in one read-only snapshot, so a call settling
    meanwhile cannot show in one table and not in another."""
    start, end = month_bounds(month)
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rollups = await (await conn.execute(USAGE_ROLLUPS_SQL, {"month": month})).fetchall()
        ids = [row["customer_id"] for row in rollups if row["rollup"] == "customer"]
        args = {"month": month, "customer_ids": ids}
        customers = await (await conn.execute(CUSTOMERS_SQL, args)).fetchall()
        failures = await (await conn.execute(FAILED_PAYMENTS_SQL, {"start": start, "end": end})).fetchall()
    return assemble(month, rollups, customers, failures)


# ---------------------------------------------------------------------------- CSV

CSV_HEADER = (
    "row_type", "month", "customer_id", "email", "plan", "calls", "revenue_cents", "revenue_nanos",
    "cost_cents", "cost_nanos", "margin_cents", "margin_nanos", "margin_pct", "push_revenue_cents",
    "push_revenue_nanos",
)  # fmt: skip


def csv_rows(overview: Row) -> list[list[Any]]:
    """One line per customer, then a ``total`` line whose cents are rounded from the exact
    totals (so they may differ from the sum of the rounded lines above; the nanos add up)."""
    month = overview["month"]
    total = {"customer_id": None, "email": None, "plan": None, **overview["totals"]}
    rows = [("customer", row) for row in overview["by_customer"]] + [("total", total)]
    return [[kind, month, *(_csv_value(row, name) for name in CSV_HEADER[2:])] for kind, row in rows]


def _csv_value(row: Row, name: str) -> Any:
    """A cell's value: the margin % as a number, so a negative margin is not taken for a
    formula (and quoted) by the injection guard."""
    value = row[name]
    return Decimal(value) if name == "margin_pct" and value is not None else value


def csv_response(overview: Row) -> Response:
    """The overview as a CSV file (one screenful of rows per customer: built whole, not
    streamed), guarded against formula injection by :func:`shared.csv_stream.encode`."""
    body = csv_stream.encode([CSV_HEADER, *csv_rows(overview)])
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="kaixu-overview-{overview["month"]}.csv"',
            "cache-control": "no-store",
        },
    )


async def view(ctx: Ctx) -> Response | Row:
    """GET ?month=YYYY-MM&format=json|csv → ``{"item": overview}`` or the CSV download."""
    month, fmt = month_param(ctx), format_param(ctx)
    overview = await report(month)
    return csv_response(overview) if fmt == "csv" else {"item": overview}
