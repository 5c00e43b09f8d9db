"""Push billing: usage events, exact month totals, the monthly push cap.

Charges follow the customer's pricing version (``customer_push_billing``, else version 1:
10 cents per deploy that became ready, 25 cents per GiB uploaded, no base fee). Totals are
computed in nano-dollars from the month's events (bytes x price per GiB / 2^30 rounded half
up once, at the nano) and shown in cents rounded once from that exact sum.

Every event is written together with its month's ``push_invoices`` row, recomputed from
all the month's events under a per-customer-and-month lock, so the row is always exactly
the formula over the events, whatever ran concurrently.

The bytes billed are the bytes sent to Netlify: each required digest is sent once, however
many paths of the manifest have it (``delivery``).

The cap (``monthly_cap_cents``, NULL = none) is checked before money is committed: a deploy
at init (its fee plus the bytes the client declared), bytes at upload. The projection
counts what is already charged, deploys still in flight (each may become a billed deploy:
those within their upload window, and those whose files were all sent while the upkeep still
follows them, see ``pushes.FINALIZE_GRACE_S``) and bytes held by uploads in progress or
staged parts, of any month (the original counted staged bytes only for pushes created this
month).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from shared import config, db, money, params
from shared.admin import accounts
from shared.errors import ApiError
from shared.http import Ctx

GIB = 1 << 30
FINALIZE_GRACE_S = 86_400  # after the upload window, a push whose files were all sent is followed a day
# more (here, not in pushes, because pushes imports this module)
EVENT_KINDS = ("deploy_init", "file_upload", "deploy_ready", "deploy_error")
_ACTIVE_JOBS = ("receiving", "queued", "running", "retry_wait")

_SETTINGS = """
SELECT v.*, b.monthly_cap_cents
FROM push_pricing_versions v
LEFT JOIN customer_push_billing b ON b.customer_id = %(customer)s
WHERE v.version = coalesce(b.pricing_version, 1)
"""
_MONTH_EVENTS = """
SELECT count(*) FILTER (WHERE kind = 'deploy_init')::bigint AS deploys_init,
       count(*) FILTER (WHERE kind = 'deploy_ready')::bigint AS deploys_ready,
       count(*) FILTER (WHERE kind = 'deploy_error')::bigint AS deploys_failed,
       count(*) FILTER (WHERE kind = 'file_upload')::bigint AS files_uploaded,
       coalesce(sum(bytes) FILTER (WHERE kind = 'file_upload'), 0)::bigint AS bytes_uploaded
FROM push_usage_events WHERE customer_id = %s AND month = %s
"""
_IN_FLIGHT = """
SELECT
  (SELECT count(*) FROM push_pushes p
   WHERE p.customer_id = %(customer)s AND p.finished_at IS NULL
     AND (p.created_at > now() - make_interval(secs => %(retention_s)s)
          OR (p.created_at > now() - make_interval(secs => %(finalize_s)s)
              AND NOT EXISTS (SELECT 1 FROM unnest(p.required) r(sha1) WHERE NOT EXISTS (
                  SELECT 1 FROM push_files f
                  WHERE f.push_row_id = p.id AND f.sha1 = r.sha1 AND f.status = 'done')))))::bigint
  AS deploys_in_flight,
  (SELECT coalesce(sum(f.bytes), 0) FROM push_files f JOIN push_pushes p ON p.id = f.push_row_id
   WHERE p.customer_id = %(customer)s AND f.status = 'uploading')::bigint AS bytes_uploading,
  (SELECT coalesce(sum(s.size), 0) FROM push_parts s JOIN push_jobs j ON j.id = s.job_id
   WHERE j.customer_id = %(customer)s AND j.status = ANY(%(active)s))::bigint AS bytes_staged
"""


class Pricing(NamedTuple):
    version: int
    currency: str
    base_month_cents: int
    per_deploy_cents: int
    per_gib_cents: int
    monthly_cap_cents: int | None


def charges(plan: Pricing, deploys: int, bytes_uploaded: int) -> dict[str, int]:
    """The month's charge for ``deploys`` ready deploys and ``bytes_uploaded``, exact in nanos."""
    base = money.nanos(plan.base_month_cents)
    deploy = deploys * money.nanos(plan.per_deploy_cents)
    transfer = money.half_up_div(bytes_uploaded * money.nanos(plan.per_gib_cents), GIB)
    total = base + deploy + transfer
    return {
        "base_month_nanos": base,
        "deploy_cost_nanos": deploy,
        "deploy_cost_cents": money.cents(deploy),
        "transfer_cost_nanos": transfer,
        "transfer_cost_cents": money.cents(transfer),
        "total_nanos": total,
        "total_cents": money.cents(total),
    }


async def plan_for(conn: db.Connection, customer_id: int) -> Pricing:
    cur = await conn.execute(_SETTINGS, {"customer": customer_id})
    row = await cur.fetchone()
    if row is None:
        raise ApiError(503, "PUSH_PRICING_MISSING", "Push pricing version 1 is missing from the database.")
    return Pricing(
        row["version"],
        row["currency"],
        row["base_month_cents"],
        row["per_deploy_cents"],
        row["per_gib_cents"],
        row["monthly_cap_cents"],
    )


async def month_events(conn: db.Connection, customer_id: int, month: str) -> dict[str, int]:
    cur = await conn.execute(_MONTH_EVENTS, (customer_id, month))
    return await cur.fetchone()  # type: ignore[return-value]


async def breakdown(conn: db.Connection, customer_id: int, month: str) -> dict[str, Any]:
    """The month's push charges from its events, with the pricing that applies."""
    plan = await plan_for(conn, customer_id)
    usage = await month_events(conn, customer_id, month)
    return {
        "customer_id": customer_id,
        "month": month,
        "pricing_version": plan.version,
        "currency": plan.currency,
        "base_month_cents": plan.base_month_cents,
        "per_deploy_cents": plan.per_deploy_cents,
        "per_gib_cents": plan.per_gib_cents,
        "monthly_cap_cents": plan.monthly_cap_cents,
        **usage,
        **charges(plan, usage["deploys_ready"], usage["bytes_uploaded"]),
    }


async def _lock_month(conn: db.Connection, customer_id: int, month: str) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('kaixupush-invoice:' || %s || ':' || %s, 0))",
        (customer_id, month),
    )


async def refresh_invoice(conn: db.Connection, customer_id: int, month: str) -> dict[str, Any]:
    """Recompute the month's push_invoices row from its events (the caller is in a transaction)."""
    await _lock_month(conn, customer_id, month)
    figures = await breakdown(conn, customer_id, month)
    cur = await conn.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys, "
        "bytes, breakdown) VALUES (%(customer_id)s, %(month)s, %(pricing_version)s, %(total_cents)s, "
        "%(total_nanos)s, %(deploys_ready)s, %(bytes_uploaded)s, %(doc)s) "
        "ON CONFLICT (customer_id, month) DO UPDATE SET pricing_version = excluded.pricing_version, "
        "total_cents = excluded.total_cents, total_nanos = excluded.total_nanos, deploys = excluded.deploys, "
        "bytes = excluded.bytes, breakdown = excluded.breakdown, updated_at = now() RETURNING *",
        {**figures, "doc": Jsonb(figures)},
    )
    return await cur.fetchone()  # type: ignore[return-value]


async def record(
    conn: db.Connection,
    *,
    customer_id: int,
    api_key_id: int | None,
    push_row_id: int | None,
    kind: str,
    bytes_count: int = 0,
    meta: dict[str, Any] | None = None,
) -> bool:
    """Append a usage event and bring the month's invoice up to date, in the caller's
    transaction. A push has at most one init/ready/error event: a repeat records nothing
    and returns False."""
    month = accounts.current_month()
    await _lock_month(conn, customer_id, month)
    cur = await conn.execute(
        "INSERT INTO push_usage_events (customer_id, api_key_id, push_row_id, month, kind, bytes, meta) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (customer_id, api_key_id, push_row_id, month, kind, bytes_count, Jsonb(meta or {})),
    )
    if await cur.fetchone() is None:
        return False
    await refresh_invoice(conn, customer_id, month)
    return True


async def projection(conn: db.Connection, customer_id: int) -> dict[str, Any]:
    """What the month would cost if everything in flight ends billed."""
    plan = await plan_for(conn, customer_id)
    usage = await month_events(conn, customer_id, accounts.current_month())
    retention_s = config.settings().kaixupush_retention_h * 3600
    cur = await conn.execute(
        _IN_FLIGHT,
        {
            "customer": customer_id,
            "retention_s": retention_s,
            "finalize_s": retention_s + FINALIZE_GRACE_S,
            "active": list(_ACTIVE_JOBS),
        },
    )
    pending = await db.one(cur)
    deploys = usage["deploys_ready"] + pending["deploys_in_flight"]
    held = pending["bytes_uploading"] + pending["bytes_staged"]
    return {
        "plan": plan,
        "usage": usage,
        "pending": pending,
        "deploys": deploys,
        "bytes": usage["bytes_uploaded"] + held,
    }


async def check_cap(
    conn: db.Connection, customer_id: int, *, extra_deploys: int = 0, extra_bytes: int = 0
) -> None:
    """402 PUSH_CAP_REACHED when the projected month total would pass the customer's cap.
    The caller holds :func:`shared.kaixupush.limits.lock_customer`, so concurrent
    requests are projected one after the other and cannot overshoot together."""
    state = await projection(conn, customer_id)
    plan: Pricing = state["plan"]
    if plan.monthly_cap_cents is None:
        return
    projected = charges(plan, state["deploys"] + extra_deploys, state["bytes"] + extra_bytes)
    if projected["total_nanos"] <= money.nanos(plan.monthly_cap_cents):
        return
    raise ApiError(
        402,
        "PUSH_CAP_REACHED",
        "This would take the month's push charges past the customer's push cap.",
        month=accounts.current_month(),
        pricing_version=plan.version,
        monthly_cap_cents=plan.monthly_cap_cents,
        projected_total_cents=projected["total_cents"],
        current={**state["usage"], **state["pending"]},
        proposed={"extra_deploys": extra_deploys, "extra_bytes": extra_bytes},
    )


async def customer_month(ctx: Ctx) -> dict[str, Any]:
    """GET ?month= (default this month): the customer's push charges, and for the current
    month what is in flight and the projection the cap is checked against."""
    month = params.month_param(ctx) or accounts.current_month()
    async with db.connection() as conn:
        item = await breakdown(conn, ctx.customer, month)
        if month == accounts.current_month():
            state = await projection(conn, ctx.customer)
            projected = charges(state["plan"], state["deploys"], state["bytes"])
            item.update(state["pending"], projected_total_cents=projected["total_cents"])
    return {"item": item}
