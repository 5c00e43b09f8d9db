"""admin-customers: list, read, create (with the master key, shown once) and change policy.

A customer item carries what the admin screen shows in one row: policy, active key count,
whether a Netlify token is stored, and this month's spend (exact nanos and rounded cents).
Its ``effective`` block gives each setting a plan provides as the value in force and where it
comes from: the customer's own override, its plan, or the deployment's default.
"""

from __future__ import annotations

from typing import Any

from shared import config, db, money, params
from shared.admin import accounts, policy
from shared.billing import plans, sell_prices
from shared.errors import bad_request, found
from shared.http import Ctx, JSONResponse

_CREATE_SPEC = {
    name: policy.CUSTOMER_POLICY[name]
    for name in ("plan_id", "monthly_cap_cents", "rpm_limit", "max_concurrent")
}

_SELECT = """
SELECT c.id, c.email, c.plan_id, p.name AS plan, c.monthly_cap_cents, c.is_active, c.max_devices_per_key,
       c.require_install_id, c.allowed_providers, c.allowed_models, c.rpm_limit, c.rpd_limit,
       c.max_concurrent, c.created_at, c.updated_at,
       (SELECT count(*) FROM api_keys k WHERE k.customer_id = c.id AND k.revoked_at IS NULL) AS active_keys,
       EXISTS (SELECT 1 FROM customer_netlify_tokens t WHERE t.customer_id = c.id) AS has_netlify_token,
       coalesce(mu.spent_nanos, 0) AS month_spent_nanos, coalesce(mu.topup_cents, 0) AS month_topup_cents,
       to_jsonb(p) AS plan_settings, to_jsonb(kx_sell_rule(c.id, c.plan_id, NULL, now())) AS markup_rule
FROM customers c
JOIN plans p ON p.id = c.plan_id
LEFT JOIN monthly_usage mu ON mu.customer_id = c.id AND mu.month = %(month)s
"""


def _defaults() -> dict[str, Any]:
    """What applies when neither the customer nor its plan sets a value."""
    cfg = config.settings()
    return {"rpm_limit": cfg.default_rpm_limit, "max_concurrent": cfg.default_max_concurrent}


def effective(customer: dict[str, Any], plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each inherited setting's value in force and its source, as ADMIT resolves it."""
    defaults = _defaults()
    settings = {}
    for name in policy.INHERITED:
        if customer[name] is not None:
            settings[name] = {"value": customer[name], "source": "customer"}
        elif plan[name] is not None:
            settings[name] = {"value": plan[name], "source": "plan"}
        else:
            settings[name] = {"value": defaults.get(name), "source": "default"}
    return settings


def _markup(rule: dict[str, Any] | None) -> dict[str, Any]:
    """The markup every model sells at unless a per-model rule says otherwise."""
    if rule is None:
        return {"value": "0", "source": "default"}
    source = "customer" if rule["customer_id"] else "plan" if rule["plan_id"] else "default"
    return {"value": sell_prices.pct(rule["markup_bp"] or 0), "source": source}


def _view(row: dict[str, Any]) -> dict[str, Any]:
    item = dict(row)
    plan = item.pop("plan_settings")
    item["effective"] = effective(row, plan) | {"markup_pct": _markup(item.pop("markup_rule"))}
    item["month"] = accounts.current_month()
    item["month_spent_cents"] = money.cents(row["month_spent_nanos"])
    item["month_cap_cents"] = item["effective"]["monthly_cap_cents"]["value"] + row["month_topup_cents"]
    return item


async def _fetch(where: str, args: dict[str, Any], suffix: str = "") -> list[dict[str, Any]]:
    query = _SELECT + where + suffix
    rows = await db.fetch_all(query, {**args, "month": accounts.current_month()})
    return [_view(row) for row in rows]


async def get_customer(customer_id: int) -> dict[str, Any]:
    rows = await _fetch("WHERE c.id = %(id)s", {"id": customer_id})
    return found(rows[0] if rows else None, f"Customer {customer_id}")


async def list_customers(ctx: Ctx) -> dict[str, Any]:
    """Newest first; ``q`` keeps customers whose email contains it (case-insensitive) or whose
    id it is, so a picker finds a customer by either without a 404 for an unknown id."""
    customer_id = params.int_param(ctx, "id")
    if customer_id is not None:
        return {"item": await get_customer(customer_id)}
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    q = (ctx.query.get("q") or "").strip()
    if len(q) > 320:
        raise bad_request("q", "q may be at most 320 characters.")
    clauses: list[str] = ["true"]
    args: dict[str, Any] = {"limit": limit + 1}
    if q:
        clauses.append("(strpos(lower(c.email), lower(%(q)s)) > 0 OR c.id::text = %(q)s)")
        args["q"] = q
    if cursor is not None:
        clauses.append("c.id < %(cursor)s")
        args["cursor"] = cursor
    rows = await _fetch("WHERE " + " AND ".join(clauses), args, " ORDER BY c.id DESC LIMIT %(limit)s")
    return params.page(rows, limit)


async def create_customer(ctx: Ctx) -> JSONResponse:
    body = await ctx.json_object()
    email = body.pop("email", None)
    if not isinstance(email, str):
        raise bad_request("email", "email is required, like ops@example.com.")
    settings = policy.clean(body, _CREATE_SPEC)
    customer, key, new = await accounts.create_customer(email, actor=str(ctx.actor), **settings)
    item = await get_customer(customer["id"])
    item.update({"key": new.secret, "key_id": key["id"], "key_last4": key["key_last4"]})
    return JSONResponse({"item": item}, status_code=201)


async def update_policy(ctx: Ctx) -> dict[str, Any]:
    customer_id = params.int_param(ctx, "id", required=True)
    changes = policy.clean(await ctx.json_object(), policy.CUSTOMER_POLICY)
    if not changes:
        raise bad_request("body", "Send at least one field to change.")
    async with db.connection() as conn, conn.transaction():
        before = await accounts.require_customer(conn, customer_id)
        if "plan_id" in changes:
            await plans.require_plan(conn, changes["plan_id"])
        await policy.apply(
            conn,
            "customers",
            before,
            changes,
            actor=str(ctx.actor),
            action="customer.update",
            target=f"customer:{customer_id}",
        )
    return {"item": await get_customer(customer_id)}
