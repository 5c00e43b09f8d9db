"""admin-sell-prices: what the operator sells at, as versioned rules over the provider's cost.

A rule belongs to a plan or to one customer, and to one model or to every model. It is a
markup (``markup_pct``: 31 sells at cost x 1.31), a fixed price (per-token rates of its own,
for one model), or ``inherit`` (ends an override: the next scope's rule applies again). ADMIT
takes the first scope with a rule in force, in the order customer+model, customer,
plan+model, plan (``kx_sell_rule`` in sql/functions/pricing.sql); none sells at cost. Like
cost prices, rules are never edited: each change is a new version from ``effective_from``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response

from shared import audit, db, fields, params
from shared.billing import price_book
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx, JSONResponse

MIN_MARKUP_PCT = Decimal(-100)
MAX_MARKUP_PCT = Decimal(10_000)
_FIXED_KINDS = (*price_book.KINDS, "request_usd")

_SELECT = """
SELECT s.*, m.provider, m.name AS model, s.effective_from <= now() AS started
FROM sell_prices s LEFT JOIN models m ON m.id = s.model_id
"""
_INSERT = """
INSERT INTO sell_prices (plan_id, customer_id, model_id, effective_from, kind, markup_bp, input_nanos,
    output_nanos, cache_read_nanos, cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, created_by)
VALUES (%(plan_id)s, %(customer_id)s, %(model_id)s, %(effective_from)s, %(kind)s, %(markup_bp)s,
    %(input_nanos)s, %(output_nanos)s, %(cache_read_nanos)s, %(cache_write_5m_nanos)s,
    %(cache_write_1h_nanos)s, %(request_nanos)s, %(created_by)s)
RETURNING id
"""
EMPTY_RATES = {f"{kind}_nanos": None for kind in price_book.KINDS} | {"request_nanos": None}


def markup_bp(name: str, value: Any) -> int:
    """A percentage with at most two decimals (12.5, "31") -> basis points."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(name, f"{name} must be a percentage like 31 or 12.5.")
    try:
        pct = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad_request(name, f"{name} must be a percentage like 31 or 12.5.") from None
    if not pct.is_finite() or not MIN_MARKUP_PCT <= pct <= MAX_MARKUP_PCT:
        raise bad_request(name, f"{name} must be between {MIN_MARKUP_PCT} and {MAX_MARKUP_PCT} percent.")
    bp = pct * 100
    if bp != bp.to_integral_value():
        raise bad_request(name, f"{name} may have at most two decimals.")
    return int(bp)


def pct(bp: int) -> str:
    return format((Decimal(bp) / 100).normalize(), "f")


def rule_view(row: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it: markup in percent, fixed rates in USD per million tokens."""
    view = {
        name: row[name]
        for name in (
            "id",
            "plan_id",
            "customer_id",
            "model_id",
            "provider",
            "model",
            "kind",
            "effective_from",
        )
    }
    view |= {
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "in_force_from": row["started"],
    }
    view["markup_pct"] = pct(row["markup_bp"]) if row["kind"] == "markup" else None
    view["fixed"] = None
    if row["kind"] == "fixed":
        request = price_book.usd(row["request_nanos"])
        view["fixed"] = {**price_book.rates_view(row), "request_usd": request}
    return view


def _fixed(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise bad_request("fixed", 'fixed must be an object like {"input": "3", "output": "12"}.')
    fields.reject_unknown(value, _FIXED_KINDS)
    row = price_book.price_row({k: v for k, v in value.items() if k != "request_usd"}, None, "fixed.")
    rates = {f"{kind}_nanos": row[f"{kind}_nanos"] for kind in price_book.KINDS}
    request = value.get("request_usd")
    rates["request_nanos"] = 0 if request is None else price_book.request_nanos("fixed.request_usd", request)
    return rates


def parse_rule(body: dict[str, Any]) -> dict[str, Any]:
    """The kind and values of a rule from exactly one of markup_pct, fixed, inherit."""
    given = [name for name in ("markup_pct", "fixed", "inherit") if name in body]
    if len(given) != 1:
        raise bad_request("markup_pct", "Send exactly one of markup_pct, fixed or inherit: true.")
    if given == ["markup_pct"]:
        return {"kind": "markup", "markup_bp": markup_bp("markup_pct", body["markup_pct"]), **EMPTY_RATES}
    if given == ["fixed"]:
        if body.get("model_id") is None:
            raise bad_request("model_id", "A fixed price is for one model: send model_id.")
        return {"kind": "fixed", "markup_bp": None, **_fixed(body["fixed"])}
    if body["inherit"] is not True:
        raise bad_request("inherit", "inherit may only be true (it ends an override).")
    return {"kind": "inherit", "markup_bp": None, **EMPTY_RATES}


async def add_rule(
    conn: db.Connection,
    scope: dict[str, int | None],
    model_id: int | None,
    rule: dict[str, Any],
    when: datetime,
    actor: str,
) -> dict[str, Any]:
    """Store one rule version (scope: ``{"plan_id": ..}`` or ``{"customer_id": ..}``), audited."""
    values = {"plan_id": None, "customer_id": None, **scope, "model_id": model_id}
    cur = await conn.execute(_INSERT, {**values, **rule, "effective_from": when, "created_by": actor})
    rule_id = (await db.one(cur))["id"]
    target = f"plan:{scope['plan_id']}" if scope.get("plan_id") else f"customer:{scope['customer_id']}"
    details = {
        "rule_id": rule_id,
        "model_id": model_id,
        "kind": rule["kind"],
        "effective_from": when.isoformat(),
    }
    if rule["kind"] == "markup":
        details["markup_pct"] = pct(rule["markup_bp"])
    await audit.record(conn, actor, "sell_price.set", target, details)
    cur = await conn.execute(_SELECT + " WHERE s.id = %s", (rule_id,))
    return rule_view(await db.one(cur))


def _scope(source: Mapping[str, Any], read: Any) -> dict[str, int | None]:
    plan_id, customer_id = read(source, "plan_id"), read(source, "customer_id")
    if (plan_id is None) == (customer_id is None):
        raise bad_request("plan_id", "Name exactly one of plan_id or customer_id.")
    return {"plan_id": plan_id} if plan_id is not None else {"customer_id": customer_id}


async def _require_scope(conn: db.Connection, scope: dict[str, int | None]) -> None:
    if "plan_id" in scope:
        cur = await conn.execute("SELECT 1 FROM plans WHERE id = %s FOR KEY SHARE", (scope["plan_id"],))
        found(await cur.fetchone(), f"Plan {scope['plan_id']}")
    else:
        cur = await conn.execute(
            "SELECT 1 FROM customers WHERE id = %s FOR KEY SHARE", (scope["customer_id"],)
        )
        found(await cur.fetchone(), f"Customer {scope['customer_id']}")


async def _require_model(conn: db.Connection, model_id: int | None) -> None:
    if model_id is None:
        return
    cur = await conn.execute("SELECT 1 FROM models WHERE id = %s FOR KEY SHARE", (model_id,))
    if await cur.fetchone() is None:
        raise ApiError(400, "INVALID_INPUT", f"Model {model_id} does not exist.", field="model_id")


async def rules_of(conn: db.Connection, scope: dict[str, int | None]) -> list[dict[str, Any]]:
    """Every version of a plan's or a customer's rules, newest first."""
    column = "plan_id" if "plan_id" in scope else "customer_id"
    cur = await conn.execute(
        _SELECT + f" WHERE s.{column} = %s ORDER BY s.effective_from DESC, s.id DESC", (scope[column],)
    )
    return [rule_view(row) for row in await cur.fetchall()]


async def get(ctx: Ctx) -> dict[str, Any]:
    """GET ?plan_id= or ?customer_id=: every rule version of that plan or customer."""
    scope = _scope(ctx.query, lambda _query, name: params.int_param(ctx, name))
    async with db.connection() as conn:
        await _require_scope(conn, scope)
        return {"items": await rules_of(conn, scope)}


async def create(ctx: Ctx) -> Response:
    """POST {plan_id | customer_id, model_id?, markup_pct | fixed | inherit, effective_from?}."""
    body = await ctx.json_object()
    allowed = ("plan_id", "customer_id", "model_id", "markup_pct", "fixed", "inherit", "effective_from")
    fields.reject_unknown(body, allowed)
    scope = _scope(body, lambda source, name: fields.int_field(source, name, required=False))
    model_id = fields.int_field(body, "model_id", required=False)
    rule = parse_rule(body)
    async with db.connection() as conn, conn.transaction():
        await _require_scope(conn, scope)
        await _require_model(conn, model_id)
        when = await price_book.effective_from(conn, body)
        item = await add_rule(conn, scope, model_id, rule, when, str(ctx.actor))
    return JSONResponse({"item": item}, status_code=201)
