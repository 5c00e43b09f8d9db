"""admin-customers: list, read, create (with the master key, shown once) and change policy.

A customer item carries what the admin screen shows in one row: policy, active key count,
whether a Netlify token is stored, and this month's spend (exact nanos and rounded cents).
"""

from __future__ import annotations

from typing import Any

from shared import db, money, params
from shared.admin import accounts, policy
from shared.errors import bad_request, found
from shared.http import Ctx, JSONResponse

_CREATE_SPEC = {
    name: policy.CUSTOMER_POLICY[name]
    for name in ("plan", "monthly_cap_cents", "rpm_limit", "max_concurrent")
}

_SELECT = """
SELECT c.id, c.email, c.plan, c.monthly_cap_cents, c.is_active, c.max_devices_per_key,
       c.require_install_id, c.allowed_providers, c.allowed_models, c.rpm_limit, c.rpd_limit,
       c.max_concurrent, c.created_at, c.updated_at,
       (SELECT count(*) FROM api_keys k WHERE k.customer_id = c.id AND k.revoked_at IS NULL) AS active_keys,
       EXISTS (SELECT 1 FROM customer_netlify_tokens t WHERE t.customer_id = c.id) AS has_netlify_token,
       coalesce(mu.spent_nanos, 0) AS month_spent_nanos, coalesce(mu.topup_cents, 0) AS month_topup_cents
FROM customers c
LEFT JOIN monthly_usage mu ON mu.customer_id = c.id AND mu.month = %(month)s
"""


def _view(row: dict[str, Any]) -> dict[str, Any]:
    item = dict(row)
    item["month"] = accounts.current_month()
    item["month_spent_cents"] = money.cents(row["month_spent_nanos"])
    item["month_cap_cents"] = row["monthly_cap_cents"] + row["month_topup_cents"]
    return item


async def _fetch(where: str, args: dict[str, Any], suffix: str = "") -> list[dict[str, Any]]:
    query = _SELECT + where + suffix
    rows = await db.fetch_all(query, {**args, "month": accounts.current_month()})
    return [_view(row) for row in rows]


async def get_customer(customer_id: int) -> dict[str, Any]:
    rows = await _fetch("WHERE c.id = %(id)s", {"id": customer_id})
    return found(rows[0] if rows else None, f"Customer {customer_id}")


async def list_customers(ctx: Ctx) -> dict[str, Any]:
    """Newest first; ``q`` keeps customers whose email contains it (case-insensitive)."""
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
        clauses.append("strpos(lower(c.email), lower(%(q)s)) > 0")
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
