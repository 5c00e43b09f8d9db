"""admin-keys: a customer's keys, sub-key creation, rotation, revocation and overrides.

A key's secret appears exactly once, in the response that created it (creation or
rotation); afterwards only its last four characters are shown, and the hash never leaves
the database. Revocation is immediate: the gateway's admission locks the key row and reads
``revoked_at`` on every call, so no cache can let a revoked key through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import audit, db, fields, params
from shared.admin import accounts, policy
from shared.errors import ApiError, bad_request, found
from shared.gateway import keys
from shared.http import Ctx, JSONResponse

COLUMNS = (
    "id",
    "customer_id",
    "key_last4",
    "label",
    "kind",
    "role",
    "monthly_cap_cents",
    "rpm_limit",
    "rpd_limit",
    "max_devices",
    "max_concurrent",
    "require_install_id",
    "allowed_providers",
    "allowed_models",
    "rotated_from_id",
    "revoked_at",
    "created_at",
    "last_seen_at",
    "last_seen_install_id",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM api_keys"


def view(row: dict[str, Any], new: keys.NewKey | None = None) -> dict[str, Any]:
    """The public form of a key row (never the hash); with ``new``, its secret, once."""
    item = {column: row[column] for column in COLUMNS}
    if new is not None:
        item["key"] = new.secret
    return item


Check = Callable[[dict[str, Any]], None]  # a caller's own rule on the locked key row


def _allow_any(_row: dict[str, Any]) -> None:
    """The operator may act on every key."""


async def _locked_key(conn: db.Connection, key_id: int, owner: int | None, check: Check) -> dict[str, Any]:
    """The key row, locked; with ``owner``, a key of another customer is not found."""
    cur = await conn.execute(
        "SELECT * FROM api_keys WHERE id = %s AND customer_id = coalesce(%s, customer_id) FOR UPDATE",
        (key_id, owner),
    )
    row = found(await cur.fetchone(), f"Key {key_id}")
    check(row)
    return row


def _refuse_revoked(row: dict[str, Any], verb: str) -> None:
    if row["revoked_at"] is not None:
        raise ApiError(409, "KEY_REVOKED", f"Key {row['id']} is revoked; it cannot be {verb}.")


async def list_keys(ctx: Ctx) -> dict[str, Any]:
    key_id = params.int_param(ctx, "id")
    if key_id is not None:
        row = found(await db.fetch_one(f"{SELECT} WHERE id = %s", (key_id,)), f"Key {key_id}")
        return {"item": view(row)}
    customer_id = params.int_param(ctx, "customer_id", required=True)
    limit, cursor = params.limit_param(ctx), params.cursor_param(ctx)
    rows = await db.fetch_all(
        f"{SELECT} WHERE customer_id = %s AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (customer_id, cursor, cursor, limit + 1),
    )
    return params.page([view(row) for row in rows], limit)


async def create_key(ctx: Ctx) -> JSONResponse:
    body = await ctx.json_object()
    customer_id = fields.int_field(body, "customer_id")
    body.pop("customer_id")
    settings = policy.db_values(policy.clean(body, policy.KEY_SETTINGS))
    row, new = await accounts.create_key(customer_id, actor=str(ctx.actor), **settings)
    return JSONResponse({"item": view(row, new)}, status_code=201)


async def rotate_key(
    ctx: Ctx, key_id: int, owner: int | None = None, check: Check = _allow_any
) -> dict[str, Any]:
    """A new key with the old one's settings, and the old one revoked, in one transaction."""
    async with db.connection() as conn, conn.transaction():
        old = await _locked_key(conn, key_id, owner, check)
        _refuse_revoked(old, "rotated")
        settings = policy.db_values({name: old[name] for name in accounts.KEY_OVERRIDES})
        settings["rotated_from_id"] = old["id"]
        row, new = await accounts.insert_key(conn, old["customer_id"], old["kind"], settings)
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
        await audit.record(
            conn,
            str(ctx.actor),
            "key.rotate",
            f"key:{key_id}",
            {"customer_id": old["customer_id"], "new_key_id": row["id"], "new_key_last4": row["key_last4"]},
        )
    return {"item": view(row, new)}


async def revoke_key(
    ctx: Ctx, key_id: int, owner: int | None = None, check: Check = _allow_any
) -> dict[str, Any]:
    """Revoke now. Revoking a revoked key changes nothing and answers the same item."""
    async with db.connection() as conn, conn.transaction():
        row = await _locked_key(conn, key_id, owner, check)
        if row["revoked_at"] is None:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = %s RETURNING *", (key_id,)
            )
            row = await db.one(cur)
            await audit.record(
                conn, str(ctx.actor), "key.revoke", f"key:{key_id}", {"customer_id": row["customer_id"]}
            )
    return {"item": view(row)}


async def update_key(ctx: Ctx) -> dict[str, Any]:
    key_id = params.int_param(ctx, "id", required=True)
    return await change_key(ctx, key_id, await requested_changes(ctx))


async def requested_changes(ctx: Ctx) -> dict[str, Any]:
    changes = policy.clean(await ctx.json_object(), policy.KEY_SETTINGS)
    if not changes:
        raise bad_request("body", "Send at least one field to change.")
    return changes


async def change_key(
    ctx: Ctx, key_id: int, changes: dict[str, Any], owner: int | None = None, check: Check = _allow_any
) -> dict[str, Any]:
    """Apply and audit ``changes`` (already cleaned) to a key that is not revoked."""
    async with db.connection() as conn, conn.transaction():
        before = await _locked_key(conn, key_id, owner, check)
        _refuse_revoked(before, "changed")
        after = await policy.apply(
            conn,
            "api_keys",
            before,
            changes,
            actor=str(ctx.actor),
            action="key.update",
            target=f"key:{key_id}",
        )
    return {"item": view(after)}


async def post(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    """``POST`` creates a sub-key; ``POST ?id=&action=rotate|revoke`` acts on one key."""
    action = ctx.query.get("action")
    if not action:
        return await create_key(ctx)
    key_id = params.int_param(ctx, "id", required=True)
    if action == "rotate":
        return await rotate_key(ctx, key_id)
    if action == "revoke":
        return await revoke_key(ctx, key_id)
    raise bad_request("action", "action must be rotate or revoke.")


async def delete(ctx: Ctx) -> dict[str, Any]:
    return await revoke_key(ctx, params.int_param(ctx, "id", required=True))
