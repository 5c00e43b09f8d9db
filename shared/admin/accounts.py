"""Customers, their keys and top-ups: the writes the CLI and the admin API share."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import psycopg

from shared import audit, db
from shared.admin import policy
from shared.billing import plans
from shared.errors import ApiError, bad_request, found
from shared.gateway import keys

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEY_OVERRIDES = tuple(policy.KEY_SETTINGS)  # the settings a key may override


def current_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def check_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email) or len(email) > 320:
        raise bad_request("email", "email must be a valid address like ops@example.com.")
    return email


async def require_customer(conn: db.Connection, customer_id: int) -> dict[str, Any]:
    """The customer row, kept from deletion for this transaction, or 404. A key-share lock is
    enough and conflicts with nothing the gateway takes: a stronger one here (before the month
    row a top-up updates) deadlocked against admissions, which hold the month row first."""
    cur = await conn.execute("SELECT * FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
    return found(await cur.fetchone(), f"Customer {customer_id}")


async def insert_key(
    conn: db.Connection, customer_id: int, kind: str, settings: dict[str, Any]
) -> tuple[dict[str, Any], keys.NewKey]:
    new = keys.generate()
    columns = ["customer_id", "key_hash", "key_last4", "kind", *settings]
    values = [customer_id, new.hash, new.last4, kind, *settings.values()]
    placeholders = ", ".join(["%s"] * len(values))
    cur = await conn.execute(
        f"INSERT INTO api_keys ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *", values
    )
    return await db.one(cur), new


async def create_customer(
    email: str,
    *,
    actor: str,
    plan_id: int | None = None,
    monthly_cap_cents: int | None = None,
    rpm_limit: int | None = None,
    max_concurrent: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any], keys.NewKey]:
    """Create a customer on ``plan_id`` (else the default plan) and its master key, in one
    transaction. A setting left out is the plan's."""
    email = check_email(email)
    try:
        async with db.connection() as conn, conn.transaction():
            return await insert_customer(
                conn,
                email,
                actor=actor,
                plan_id=plan_id,
                monthly_cap_cents=monthly_cap_cents,
                rpm_limit=rpm_limit,
                max_concurrent=max_concurrent,
            )
    except psycopg.errors.UniqueViolation as exc:
        raise ApiError(409, "DUPLICATE_EMAIL", f"A customer with email {email} already exists.") from exc


async def insert_customer(
    conn: db.Connection,
    email: str,
    *,
    actor: str,
    plan_id: int | None = None,
    monthly_cap_cents: int | None = None,
    rpm_limit: int | None = None,
    max_concurrent: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any], keys.NewKey]:
    """The customer and its master key, audited, in the caller's transaction (a checked email;
    a taken one raises ``UniqueViolation``)."""
    plan = await plans.require_plan(conn, plan_id)
    cur = await conn.execute(
        "INSERT INTO customers (email, plan_id, monthly_cap_cents, rpm_limit, max_concurrent) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING *",
        (email, plan["id"], monthly_cap_cents, rpm_limit, max_concurrent),
    )
    customer = await db.one(cur)
    key, new = await insert_key(conn, customer["id"], "master", {"label": "master", "role": keys.MASTER_ROLE})
    details = {"email": email, "plan_id": plan["id"]}
    await audit.record(conn, actor, "customer.create", f"customer:{customer['id']}", details)
    return customer, key, new


async def _check_key_room(conn: db.Connection, customer_id: int, max_active: int) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('kx_keys:' || %s, 0))", (customer_id,))
    cur = await conn.execute(
        "SELECT count(*) AS active FROM api_keys WHERE customer_id = %s AND revoked_at IS NULL",
        (customer_id,),
    )
    if (await db.one(cur))["active"] >= max_active:
        raise ApiError(
            409, "KEY_LIMIT", f"You have {max_active} keys in use, the most allowed; revoke one first."
        )


async def create_key(
    customer_id: int, *, actor: str, max_active: int | None = None, **settings: Any
) -> tuple[dict[str, Any], keys.NewKey]:
    """A sub-key; with ``max_active``, refused (409 KEY_LIMIT) when the customer already has
    that many keys in use (counted under a per-customer lock, so parallel requests cannot
    pass it)."""
    unknown = set(settings) - set(KEY_OVERRIDES)
    if unknown:
        raise bad_request(sorted(unknown)[0], f"{sorted(unknown)[0]} is not a key setting.")
    async with db.connection() as conn, conn.transaction():
        await require_customer(conn, customer_id)
        if max_active is not None:
            await _check_key_room(conn, customer_id, max_active)
        return await insert_sub_key(conn, customer_id, actor=actor, **settings)


async def insert_sub_key(
    conn: db.Connection, customer_id: int, *, actor: str, **settings: Any
) -> tuple[dict[str, Any], keys.NewKey]:
    """A sub-key (a ``caller`` unless ``settings`` say otherwise), audited, in the caller's
    transaction."""
    key, new = await insert_key(conn, customer_id, "sub", {"role": keys.DEFAULT_ROLE, **settings})
    details = {"customer_id": customer_id, "role": key["role"]}
    await audit.record(conn, actor, "key.create", f"key:{key['id']}", details)
    return key, new
