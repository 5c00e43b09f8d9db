"""A customer's own keys: list, create (the secret shown once), rotate, revoke, narrow.

The operator's key handlers (``shared.admin.keys``) do the work, scoped to the session's
customer (another customer's key id is not found) and bound by ``key_rules``: roles up to the
session's own and never the master's, settings within what the account allows, at most
PORTAL_MAX_KEYS keys in use. The master key can be rotated here (a leaked key is the
customer's emergency) but not revoked: that would lock the customer out of its account.
"""

from __future__ import annotations

from typing import Any

from shared import config, db, params
from shared.admin import accounts, customers, policy
from shared.admin import keys as admin_keys
from shared.errors import ApiError, bad_request, found
from shared.gateway import keys
from shared.http import Ctx, JSONResponse
from shared.portal import key_rules


async def _own_role(ctx: Ctx) -> str:
    row = await db.fetch_row("SELECT role FROM api_keys WHERE id = %s", (ctx.api_key_id,))
    return str(row["role"])


async def _check_settings(ctx: Ctx, changes: dict[str, Any], own_role: str) -> None:
    if "role" in changes:
        key_rules.check_role(changes["role"], own_role)
    account = await customers.get_customer(ctx.customer)
    effective = {name: setting["value"] for name, setting in account["effective"].items()}
    key_rules.check_settings(changes, effective, bool(account["require_install_id"]))


async def list_keys(ctx: Ctx) -> dict[str, Any]:
    """GET: the customer's keys, newest first (``?id=`` one of them)."""
    key_id = params.int_param(ctx, "id")
    if key_id is not None:
        row = await db.fetch_one(
            f"{admin_keys.SELECT} WHERE id = %s AND customer_id = %s", (key_id, ctx.customer)
        )
        return {"item": admin_keys.view(found(row, f"Key {key_id}"))}
    page = await params.fetch_page(ctx, admin_keys.SELECT, {"customer_id": ctx.customer})
    return {**page, "items": [admin_keys.view(row) for row in page["items"]]}


async def create_key(ctx: Ctx) -> JSONResponse:
    settings = policy.clean(await ctx.json_object(), policy.KEY_SETTINGS)
    settings.setdefault("role", keys.DEFAULT_ROLE)
    await _check_settings(ctx, settings, await _own_role(ctx))
    row, new = await accounts.create_key(
        ctx.customer,
        actor=str(ctx.actor),
        max_active=config.settings().portal_max_keys,
        **policy.db_values(settings),
    )
    return JSONResponse({"item": admin_keys.view(row, new)}, status_code=201)


def _keep_master(row: dict[str, Any]) -> None:
    if row["role"] == keys.MASTER_ROLE:
        raise ApiError(
            409, "MASTER_KEY", "The master key cannot be revoked here; rotate it to replace a leaked one."
        )


async def post(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    """``POST`` creates a key; ``POST ?id=&action=rotate|revoke`` acts on one of the customer's."""
    action = ctx.query.get("action")
    if not action:
        return await create_key(ctx)
    key_id = params.int_param(ctx, "id", required=True)
    own_role = await _own_role(ctx)

    def reachable(row: dict[str, Any]) -> None:
        key_rules.check_may_act_on(row, own_role)

    if action == "rotate":
        return await admin_keys.rotate_key(ctx, key_id, ctx.customer, reachable)
    if action == "revoke":

        def revocable(row: dict[str, Any]) -> None:
            reachable(row)
            _keep_master(row)

        return await admin_keys.revoke_key(ctx, key_id, ctx.customer, revocable)
    raise bad_request("action", "action must be rotate or revoke.")


async def update_key(ctx: Ctx) -> dict[str, Any]:
    """PATCH ?id= {settings}: only ever narrower than the account; the master key's role stays."""
    key_id = params.int_param(ctx, "id", required=True)
    changes = await admin_keys.requested_changes(ctx)
    own_role = await _own_role(ctx)
    await _check_settings(ctx, changes, own_role)

    def changeable(row: dict[str, Any]) -> None:
        key_rules.check_may_act_on(row, own_role)
        if row["role"] == keys.MASTER_ROLE and changes.get("role", keys.MASTER_ROLE) != keys.MASTER_ROLE:
            raise ApiError(409, "MASTER_KEY", "The master key keeps the owner role.", field="role")

    return await admin_keys.change_key(ctx, key_id, changes, ctx.customer, changeable)
