"""Top-ups: credits that raise a customer's cap for one month (manual or paid via Stripe).

:func:`credit` takes the caller's connection so the credit commits together with whatever
guards it (an idempotency claim, a Stripe event claim): a retried click or a redelivered
webhook can never credit twice, and a failed request leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from shared import audit, db, fields, idempotency, params
from shared.admin import accounts, policy
from shared.errors import found
from shared.http import Ctx, JSONResponse

SCOPE = "admin-topups"
COLUMNS = "id, customer_id, month, amount_cents, source, actor, stripe_session_id, created_at"
_FIELDS = ("customer_id", "amount_cents", "month")


async def credit(
    conn: db.Connection,
    customer_id: int,
    amount_cents: int,
    *,
    actor: str,
    source: str,
    month: str,
    stripe_session_id: str | None = None,
) -> dict[str, Any]:
    """Credit ``month``'s cap (a negative amount takes credit back: a Stripe refund), record
    the top-up and audit it, on the caller's transaction."""
    await accounts.require_customer(conn, customer_id)
    cur = await conn.execute(
        f"INSERT INTO topups (customer_id, month, amount_cents, source, actor, stripe_session_id) "
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
        (customer_id, month, amount_cents, source, actor, stripe_session_id),
    )
    topup = await db.one(cur)
    await conn.execute(
        "INSERT INTO monthly_usage (customer_id, month, topup_cents) VALUES (%s, %s, %s) "
        "ON CONFLICT (customer_id, month) DO UPDATE "
        "SET topup_cents = monthly_usage.topup_cents + excluded.topup_cents, updated_at = now()",
        (customer_id, month, amount_cents),
    )
    details = {"amount_cents": amount_cents, "month": month, "source": source, "topup_id": topup["id"]}
    if stripe_session_id:
        details["stripe_session_id"] = stripe_session_id
    await audit.record(conn, actor, "topup.create", f"customer:{customer_id}", details)
    return topup


def parse_request(body: dict[str, Any]) -> dict[str, Any]:
    """``{customer_id, amount_cents, month?}``, shared by manual top-ups and Stripe checkout."""
    fields.reject_unknown(body, _FIELDS)
    return {
        "customer_id": fields.int_field(body, "customer_id"),
        "amount_cents": fields.int_field(body, "amount_cents", maximum=policy.MAX_CAP_CENTS),
        "month": fields.month_field(body, required=False),
    }


async def create_manual(ctx: Ctx) -> JSONResponse:
    """A manual top-up; with an Idempotency-Key, a retried request credits once."""
    request = parse_request(await ctx.json_object())
    key = idempotency.header_key(ctx)
    async with db.connection() as conn, conn.transaction():
        if key is not None:
            stored = await idempotency.claim(conn, SCOPE, key, idempotency.request_hash(request))
            if stored is not None:
                return JSONResponse({"item": stored})
        topup = await credit(
            conn,
            request["customer_id"],
            request["amount_cents"],
            actor=str(ctx.actor),
            source="manual",
            month=request["month"] or accounts.current_month(),
        )
        if key is not None:
            await idempotency.store(conn, SCOPE, key, topup)
    return JSONResponse({"item": topup}, status_code=201)


async def list_topups(ctx: Ctx) -> dict[str, Any]:
    topup_id = params.int_param(ctx, "id")
    if topup_id is not None:
        row = await db.fetch_one(f"SELECT {COLUMNS} FROM topups WHERE id = %s", (topup_id,))
        return {"item": found(row, f"Top-up {topup_id}")}
    customer_id = params.int_param(ctx, "customer_id", required=True)
    month = params.month_param(ctx)
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    rows = await db.fetch_all(
        f"SELECT {COLUMNS} FROM topups WHERE customer_id = %s AND (%s::text IS NULL OR month = %s) "
        "AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (customer_id, month, month, cursor, cursor, limit + 1),
    )
    return params.page(rows, limit)
