"""admin-plans: the plan catalogue, what a customer gets unless its own settings say otherwise.

A plan carries a default monthly cap, rate limits, device seats, concurrency, allowlists, the
markup its customers buy at, credit included each month, whether Stripe top-ups are allowed and
whether it is prepaid. ADMIT reads the plan on every call, so a change reaches every customer
without an override of its own from its next call; a markup change is a new sell-rule version
(``sell_prices``), dated like every price.
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.responses import Response

from shared import audit, db, fields, params
from shared.admin import policy
from shared.billing import price_book, sell_prices
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx, JSONResponse


async def require_plan(conn: db.Connection, plan_id: int | None) -> dict[str, Any]:
    """The plan ``plan_id`` (None: the default plan), kept from deletion for this transaction;
    a missing one is a 400 on the field that named it, not a 404 of the request."""
    if plan_id is None:
        cur = await conn.execute("SELECT * FROM plans WHERE is_default FOR KEY SHARE")
        return found(await cur.fetchone(), "The default plan")
    cur = await conn.execute("SELECT * FROM plans WHERE id = %s FOR KEY SHARE", (plan_id,))
    plan = await cur.fetchone()
    if plan is None:
        raise ApiError(400, "INVALID_INPUT", f"plan_id: plan {plan_id} does not exist.", field="plan_id")
    return plan


async def id_by_name(name: str) -> int:
    row = await db.fetch_one("SELECT id FROM plans WHERE lower(name) = lower(%s)", (name,))
    if row is None:
        raise ApiError(400, "INVALID_INPUT", f"There is no plan named {name!r}.", field="plan")
    return int(row["id"])


# -- admin-plans ------------------------------------------------------------------------------

_SELECT = """
SELECT p.*, (SELECT count(*) FROM customers c WHERE c.plan_id = p.id) AS customers,
       (kx_sell_rule(NULL, p.id, NULL, now())).markup_bp AS markup_bp
FROM plans p
"""
_EXTRA = ("markup_pct", "effective_from", "is_default")


def _view(row: dict[str, Any]) -> dict[str, Any]:
    item = dict(row)
    item["markup_pct"] = sell_prices.pct(item.pop("markup_bp") or 0)
    return item


async def _one(conn: db.Connection, plan_id: int) -> dict[str, Any]:
    cur = await conn.execute(_SELECT + " WHERE p.id = %s", (plan_id,))
    item = _view(found(await cur.fetchone(), f"Plan {plan_id}"))
    item["sell_rules"] = await sell_prices.rules_of(conn, {"plan_id": plan_id})
    return item


async def get(ctx: Ctx) -> dict[str, Any]:
    """GET: every plan with its customer count and markup in force; ``?id=``: one, with its
    sell-rule versions."""
    plan_id = params.int_param(ctx, "id")
    async with db.connection() as conn:
        if plan_id is not None:
            return {"item": await _one(conn, plan_id)}
        cur = await conn.execute(_SELECT + " ORDER BY p.is_default DESC, lower(p.name)")
        return {"items": [_view(row) for row in await cur.fetchall()]}


def _clean(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plan settings, the extras: markup and default) of a request body, each checked."""
    fields.reject_unknown(body, (*policy.PLAN_SETTINGS, *_EXTRA))
    settings = policy.clean({k: v for k, v in body.items() if k not in _EXTRA}, policy.PLAN_SETTINGS)
    extras = {k: body[k] for k in _EXTRA if k in body}
    if "markup_pct" in extras:
        extras["markup_bp"] = sell_prices.markup_bp("markup_pct", extras.pop("markup_pct"))
    if "is_default" in extras and extras["is_default"] is not True:
        raise bad_request("is_default", "is_default may only be true: make another plan the default instead.")
    if "effective_from" in extras and "markup_bp" not in extras:
        raise bad_request("effective_from", "effective_from dates a markup change: send markup_pct with it.")
    return settings, extras


async def _apply_extras(conn: db.Connection, plan_id: int, extras: dict[str, Any], actor: str) -> None:
    if extras.get("is_default"):
        await conn.execute("UPDATE plans SET is_default = false WHERE is_default AND id <> %s", (plan_id,))
        await conn.execute("UPDATE plans SET is_default = true, updated_at = now() WHERE id = %s", (plan_id,))
        await audit.record(conn, actor, "plan.default", f"plan:{plan_id}", {})
    if "markup_bp" in extras:
        rule = {"kind": "markup", "markup_bp": extras["markup_bp"], **sell_prices.EMPTY_RATES}
        when = await price_book.effective_from(conn, extras)
        await sell_prices.add_rule(conn, {"plan_id": plan_id}, None, rule, when, actor)


async def create(ctx: Ctx) -> Response:
    """POST {name, monthly_cap_cents, ...settings, markup_pct?, is_default?} (201)."""
    settings, extras = _clean(await ctx.json_object())
    for name in ("name", "monthly_cap_cents"):
        if name not in settings:
            raise bad_request(name, f"{name} is required.")
    columns = ", ".join(settings)
    actor = str(ctx.actor)
    try:
        async with db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO plans ({columns}) VALUES ({', '.join(['%s'] * len(settings))}) RETURNING id",
                list(policy.db_values(settings).values()),
            )
            plan_id = (await db.one(cur))["id"]
            await audit.record(conn, actor, "plan.create", f"plan:{plan_id}", {"name": settings["name"]})
            await _apply_extras(conn, plan_id, extras, actor)
            item = await _one(conn, plan_id)
    except psycopg.errors.UniqueViolation:
        raise _duplicate(settings["name"]) from None
    return JSONResponse({"item": item}, status_code=201)


def _duplicate(name: str) -> ApiError:
    return ApiError(409, "DUPLICATE_PLAN", f"A plan named {name} already exists.")


async def update(ctx: Ctx) -> dict[str, Any]:
    """PATCH ?id= {settings..., markup_pct?, effective_from?, is_default: true?}: every customer
    without its own value follows from its next call."""
    plan_id = params.int_param(ctx, "id", required=True)
    settings, extras = _clean(await ctx.json_object())
    if not settings and not extras:
        raise bad_request("body", "Send at least one field to change.")
    actor = str(ctx.actor)
    try:
        async with db.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT * FROM plans WHERE id = %s FOR UPDATE", (plan_id,))
            before = found(await cur.fetchone(), f"Plan {plan_id}")
            await policy.apply(
                conn, "plans", before, settings, actor=actor, action="plan.update", target=f"plan:{plan_id}"
            )
            await _apply_extras(conn, plan_id, extras, actor)
            item = await _one(conn, plan_id)
    except psycopg.errors.UniqueViolation:
        raise _duplicate(settings.get("name", "")) from None
    return {"item": item}


async def delete(ctx: Ctx) -> dict[str, Any]:
    """DELETE ?id=: only a plan no customer is on, and never the default."""
    plan_id = params.int_param(ctx, "id", required=True)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(_SELECT + " WHERE p.id = %s FOR UPDATE OF p", (plan_id,))
        plan = found(await cur.fetchone(), f"Plan {plan_id}")
        if plan["is_default"]:
            raise ApiError(
                409, "PLAN_IS_DEFAULT", "The default plan cannot be deleted; make another the default."
            )
        if plan["customers"]:
            raise ApiError(
                409,
                "PLAN_IN_USE",
                f"{plan['customers']} customers are on this plan; move them to another first.",
            )
        await conn.execute("DELETE FROM plans WHERE id = %s", (plan_id,))
        await audit.record(conn, str(ctx.actor), "plan.delete", f"plan:{plan_id}", {"name": plan["name"]})
    return {"deleted": plan_id}
