"""The operator's KaixuPush views: deploy history, chunk jobs, push invoices and caps.

Lists follow the admin convention (newest first, ``limit`` + opaque ``cursor``, ``?id=`` for
one item). Writes (retrying a failed job, setting a customer's push cap or pricing) are
audited in the transaction that makes them.
"""

from __future__ import annotations

from typing import Any

from shared import audit, db, fields, params
from shared.admin import accounts, policy
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx
from shared.kaixupush import billing
from shared.kaixupush.manifest import check_project_id

_DEPLOYS = """
SELECT p.id, p.push_id, p.customer_id, p.project_id, pr.name AS project_name, p.netlify_site_id, p.branch,
       p.title, p.deploy_id, p.state, p.error, cardinality(p.required) AS required_count,
       (SELECT count(*) FROM push_files f WHERE f.push_row_id = p.id AND f.status = 'done') AS uploaded_count,
       p.file_count, p.url, p.ready_at, p.created_at, p.updated_at
FROM push_pushes p LEFT JOIN push_projects pr ON pr.id = p.project_row_id
"""
# received / staged_bytes: from the staged parts while there are any, else what the job kept
# of them (a finished job's parts are deleted); parts_staged says which.
_JOBS = """
SELECT j.id, p.push_id, j.customer_id, p.project_id, pr.name AS project_name, j.path, j.sha1, j.parts,
       coalesce(nullif(s.n, 0), j.received_parts) AS received,
       CASE WHEN s.n > 0 THEN s.bytes ELSE j.staged_bytes END AS staged_bytes, s.n > 0 AS parts_staged,
       j.bytes, j.status, j.attempts, j.last_error, j.last_error_code, j.next_attempt_at, j.created_at,
       j.updated_at
FROM push_jobs j JOIN push_pushes p ON p.id = j.push_row_id
LEFT JOIN push_projects pr ON pr.id = p.project_row_id
CROSS JOIN LATERAL (SELECT count(*)::int AS n, coalesce(sum(size), 0)::bigint AS bytes
                    FROM push_parts WHERE job_id = j.id) s
"""
_INVOICES = (
    "SELECT id, customer_id, month, pricing_version, total_cents, total_nanos, deploys, bytes, breakdown, "
    "created_at, updated_at FROM push_invoices i"
)
MAX_PRICING_VERSION = 2**31 - 1  # push_pricing_versions.version is an int
_JOB_STATUSES = ("receiving", "queued", "running", "retry_wait", "done", "failed", "expired")
_PRICING_VERSIONS = (
    "SELECT version, currency, base_month_cents, per_deploy_cents, per_gib_cents "
    "FROM push_pricing_versions ORDER BY version"
)


async def _one(base: str, id_column: str, row_id: int, what: str) -> dict[str, Any]:
    row = await db.fetch_one(f"{base} WHERE {id_column} = %s", (row_id,))
    return {"item": found(row, f"{what} {row_id}")}


def _choice(ctx: Ctx, name: str, allowed: tuple[str, ...]) -> str | None:
    value = ctx.query.get(name)
    if value is not None and value not in allowed:
        raise bad_request(name, f"{name} must be one of {', '.join(allowed)}.")
    return value


def _project_filter(ctx: Ctx) -> str | None:
    value = ctx.query.get("project_id")
    return None if value is None else check_project_id(value)


async def deploys(ctx: Ctx) -> dict[str, Any]:
    """GET ?customer_id=&project_id=&state= (or ?id=): deploy history, newest first."""
    if (row_id := params.int_param(ctx, "id")) is not None:
        return await _one(_DEPLOYS, "p.id", row_id, "Deploy")
    state = ctx.query.get("state")
    filters = {
        "p.customer_id": params.int_param(ctx, "customer_id"),
        "p.project_id": _project_filter(ctx),
        "p.push_id": ctx.query.get("push_id"),
        "p.state": state[:40] if state else None,
    }
    return await params.fetch_page(ctx, _DEPLOYS, filters, id_column="p.id")


async def jobs(ctx: Ctx) -> dict[str, Any]:
    """GET ?customer_id=&push_id=&status= (or ?id=): chunk jobs, newest first."""
    if (row_id := params.int_param(ctx, "id")) is not None:
        return await _one(_JOBS, "j.id", row_id, "Job")
    filters = {
        "j.customer_id": params.int_param(ctx, "customer_id"),
        "p.push_id": ctx.query.get("push_id"),
        "j.status": _choice(ctx, "status", _JOB_STATUSES),
    }
    return await params.fetch_page(ctx, _JOBS, filters, id_column="j.id")


async def _job_to_retry(conn: db.Connection, job_id: int, customer_id: int | None) -> dict[str, Any]:
    """The job, locked: 404 if it does not exist or is not ``customer_id``'s (when given: the
    screen names the customer it shows, so a stale row never retries someone else's job)."""
    cur = await conn.execute(
        "SELECT id, customer_id, status, last_error FROM push_jobs WHERE id = %s FOR UPDATE", (job_id,)
    )
    row = await cur.fetchone()
    if row is not None and customer_id is not None and row["customer_id"] != customer_id:
        row = None
    return found(row, f"Job {job_id}")


async def retry_job(ctx: Ctx) -> dict[str, Any]:
    """POST ?id=&action=retry (&customer_id=): queue a failed job again (attempts start over)."""
    if ctx.query.get("action") != "retry":
        raise bad_request("action", "action must be retry.")
    job_id = params.int_param(ctx, "id", required=True)
    customer_id = params.int_param(ctx, "customer_id")
    async with db.connection() as conn, conn.transaction():
        row = await _job_to_retry(conn, job_id, customer_id)
        if row["status"] != "failed":
            raise ApiError(
                409, "NOT_RETRYABLE", f"Job {job_id} is {row['status']}; only a failed job can be retried."
            )
        await conn.execute(
            "UPDATE push_jobs SET status = 'queued', attempts = 0, next_attempt_at = now(), "
            "updated_at = now() WHERE id = %s",
            (job_id,),
        )
        await audit.record(
            conn,
            ctx.actor or "admin",
            "push.job_retry",
            f"push_job:{job_id}",
            {"last_error": row["last_error"]},
        )
    return await _one(_JOBS, "j.id", job_id, "Job")


async def invoices(ctx: Ctx) -> dict[str, Any]:
    """GET ?customer_id=&month= (or ?id=): push invoices, newest first; ?view=billing&customer_id=
    the customer's push cap and pricing instead."""
    if _choice(ctx, "view", ("billing",)) == "billing":
        return await billing_settings(ctx)
    if (row_id := params.int_param(ctx, "id")) is not None:
        return await _one(_INVOICES, "i.id", row_id, "Push invoice")
    filters = {"i.customer_id": params.int_param(ctx, "customer_id"), "i.month": params.month_param(ctx)}
    return await params.fetch_page(ctx, _INVOICES, filters, id_column="i.id")


async def billing_settings(ctx: Ctx) -> dict[str, Any]:
    """GET ?view=billing&customer_id=: the push cap and pricing that apply to the customer now
    (version 1 and no cap until an admin sets them), and the pricing versions to choose from,
    so the screen shows what a save would change."""
    customer_id = params.int_param(ctx, "customer_id", required=True)
    async with db.connection() as conn:
        await accounts.require_customer(conn, customer_id)
        plan = await billing.plan_for(conn, customer_id)
        cur = await conn.execute(
            "SELECT updated_at FROM customer_push_billing WHERE customer_id = %s", (customer_id,)
        )
        saved = await cur.fetchone()
        cur = await conn.execute(_PRICING_VERSIONS)
        versions = await cur.fetchall()
    item = {
        "customer_id": customer_id,
        "monthly_cap_cents": plan.monthly_cap_cents,
        "pricing_version": plan.version,
        "pricing": next(v for v in versions if v["version"] == plan.version),
        "updated_at": saved["updated_at"] if saved else None,
    }
    return {"item": item, "pricing_versions": versions}


async def set_billing(ctx: Ctx) -> dict[str, Any]:
    """POST ?action=set_cap {customer_id, monthly_cap_cents (null: no cap), pricing_version?}."""
    if ctx.query.get("action") != "set_cap":
        raise bad_request("action", "action must be set_cap.")
    body = await ctx.json_object()
    fields.reject_unknown(body, ("customer_id", "monthly_cap_cents", "pricing_version"))
    customer_id = fields.int_field(body, "customer_id")
    if "monthly_cap_cents" not in body:
        raise bad_request("monthly_cap_cents", "monthly_cap_cents is required (null removes the cap).")
    cap = fields.int_field(body, "monthly_cap_cents", minimum=0, maximum=policy.MAX_CAP_CENTS, required=False)
    version = fields.int_field(body, "pricing_version", maximum=MAX_PRICING_VERSION, required=False)
    async with db.connection() as conn, conn.transaction():
        await accounts.require_customer(conn, customer_id)
        if version is not None:
            cur = await conn.execute("SELECT 1 FROM push_pricing_versions WHERE version = %s", (version,))
            if await cur.fetchone() is None:
                raise bad_request("pricing_version", f"Pricing version {version} does not exist.")
        cur = await conn.execute(
            "INSERT INTO customer_push_billing AS b (customer_id, pricing_version, monthly_cap_cents) "
            "VALUES (%s, coalesce(%s, 1), %s) ON CONFLICT (customer_id) DO UPDATE SET "
            "pricing_version = coalesce(%s, b.pricing_version), "
            "monthly_cap_cents = excluded.monthly_cap_cents, updated_at = now() "
            "RETURNING customer_id, pricing_version, monthly_cap_cents, updated_at",
            (customer_id, version, cap, version),
        )
        item = await db.one(cur)
        month = accounts.current_month()
        cur = await conn.execute(
            "SELECT 1 FROM push_invoices WHERE customer_id = %s AND month = %s", (customer_id, month)
        )
        if await cur.fetchone():  # this month's total follows a pricing change at once
            await billing.refresh_invoice(conn, customer_id, month)
        await audit.record(
            conn,
            ctx.actor or "admin",
            "push.billing_set",
            f"customer:{customer_id}",
            {"monthly_cap_cents": cap, "pricing_version": item["pricing_version"]},
        )
    return {"item": item}
