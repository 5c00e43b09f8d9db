"""admin-devices: the devices (install ids) seen on a customer's keys; revoke and un-revoke.

A device is identified by its key and install id (``id`` is ``<api_key_id>:<install_id>``).
Revoking one takes effect on its next call (403 DEVICE_REVOKED: the gateway reads the device
row under the key's lock) and frees its seat. Un-revoking takes the seat back, so it is
refused when every seat of the key is taken: it can never push a key past its seats.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from shared import audit, db, numbers, params
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx

_SELECT = """
SELECT d.api_key_id || ':' || d.install_id AS id, d.api_key_id, k.key_last4, k.label AS key_label,
       d.customer_id, d.install_id, d.first_seen_at, d.last_seen_at, d.revoked_at, d.revoked_by, d.user_agent
FROM key_devices d JOIN api_keys k ON k.id = d.api_key_id
"""
_MAX_INSTALL_ID = 128


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = orjson.dumps([row["first_seen_at"].isoformat(), row["api_key_id"], row["install_id"]])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(ctx: Ctx) -> tuple[datetime, int, str] | None:
    """Devices page by (first_seen_at, api_key_id, install_id), which never change."""
    raw = ctx.query.get("cursor")
    if not raw:
        return None
    try:
        first_seen, api_key_id, install_id = orjson.loads(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
        return datetime.fromisoformat(first_seen), int(api_key_id), str(install_id)
    except (ValueError, TypeError):
        raise bad_request("cursor", "cursor is not one this server issued.") from None


async def list_devices(ctx: Ctx) -> dict[str, Any]:
    return await list_for(ctx, params.int_param(ctx, "customer_id"))


async def list_for(ctx: Ctx, customer_id: int | None) -> dict[str, Any]:
    """One page of devices, of ``customer_id`` and/or the ``api_key_id`` asked for."""
    api_key_id = params.int_param(ctx, "api_key_id")
    if customer_id is None and api_key_id is None:
        raise bad_request("customer_id", "Give customer_id or api_key_id.")
    limit, cursor = params.limit_param(ctx), _decode_cursor(ctx)
    clauses: list[str] = []
    args: list[Any] = []
    if customer_id is not None:
        clauses.append("d.customer_id = %s")
        args.append(customer_id)
    if api_key_id is not None:
        clauses.append("d.api_key_id = %s")
        args.append(api_key_id)
    if cursor is not None:
        clauses.append("(d.first_seen_at, d.api_key_id, d.install_id) < (%s, %s, %s)")
        args.extend(cursor)
    order = " ORDER BY d.first_seen_at DESC, d.api_key_id DESC, d.install_id DESC LIMIT %s"
    rows = await db.fetch_all(_SELECT + " WHERE " + " AND ".join(clauses) + order, [*args, limit + 1])
    items = rows[:limit]
    return {"items": items, "next_cursor": _encode_cursor(items[-1]) if len(rows) > limit else None}


def _install_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("install_id", "install_id is required.")
    value = value.strip()
    if len(value) > _MAX_INSTALL_ID or not value.isprintable():
        raise bad_request("install_id", f"install_id must be 1-{_MAX_INSTALL_ID} printable characters.")
    return str(value)


def _api_key_id(value: Any) -> int:
    if isinstance(value, str):
        value = numbers.whole(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("api_key_id", "api_key_id must be the id of a key.")
    return value


def _target(ctx: Ctx, body: dict[str, Any]) -> tuple[int, str]:
    """The device from ``id=<api_key_id>:<install_id>``, else ``api_key_id`` + ``install_id``
    from the body or the query string."""
    composite = ctx.query.get("id")
    if composite:
        key_part, sep, install = composite.partition(":")
        if not sep or numbers.whole(key_part) is None:
            raise bad_request("id", "id must look like <api_key_id>:<install_id>.")
        return _api_key_id(key_part), _install_id(install)
    api_key_id = body.get("api_key_id", ctx.query.get("api_key_id"))
    install_id = body.get("install_id", ctx.query.get("install_id"))
    return _api_key_id(api_key_id), _install_id(install_id)


async def _optional_body(ctx: Ctx) -> dict[str, Any]:
    """The JSON object body, or {} when none was sent (the target may be in the query)."""
    raw = await ctx.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "INVALID_JSON", f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_JSON", "The request body must be a JSON object.")
    unknown = sorted(set(data) - {"api_key_id", "install_id"})
    if unknown:
        raise bad_request(unknown[0], f"{unknown[0]} is not a field of this request.")
    return data


async def _check_seat_free(conn: db.Connection, api_key_id: int) -> None:
    cur = await conn.execute(
        "SELECT nullif(coalesce(k.max_devices, c.max_devices_per_key), 0) AS seats, "
        "(SELECT count(*) FROM key_devices d WHERE d.api_key_id = k.id AND d.revoked_at IS NULL) AS used "
        "FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.id = %s",
        (api_key_id,),
    )
    row = await db.one(cur)
    if row["seats"] is not None and row["used"] >= row["seats"]:
        raise ApiError(
            409,
            "DEVICE_LIMIT",
            f"Every seat of key {api_key_id} is taken ({row['seats']}); revoke a device or add seats first.",
        )


async def _set_revoked(
    ctx: Ctx, api_key_id: int, install_id: str, revoke: bool, owner: int | None
) -> dict[str, Any]:
    """Lock the key (the gateway's lock order), then change the device and audit it. With
    ``owner``, a device of another customer is not found."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT id FROM api_keys WHERE id = %s AND customer_id = coalesce(%s, customer_id) FOR UPDATE",
            (api_key_id, owner),
        )
        cur = await conn.execute(
            "SELECT * FROM key_devices WHERE api_key_id = %s AND install_id = %s "
            "AND customer_id = coalesce(%s, customer_id) FOR UPDATE",
            (api_key_id, install_id, owner),
        )
        device = found(await cur.fetchone(), f"Device {install_id!r} of key {api_key_id}")
        if (device["revoked_at"] is not None) != revoke:
            if not revoke:
                await _check_seat_free(conn, api_key_id)
            await conn.execute(
                "UPDATE key_devices SET revoked_at = CASE WHEN %(revoke)s THEN now() END, "
                "revoked_by = CASE WHEN %(revoke)s THEN %(actor)s END "
                "WHERE api_key_id = %(key)s AND install_id = %(install)s",
                {"revoke": revoke, "actor": str(ctx.actor), "key": api_key_id, "install": install_id},
            )
            details = {
                "customer_id": device["customer_id"],
                "api_key_id": api_key_id,
                "install_id": install_id,
            }
            action = "device.revoke" if revoke else "device.unrevoke"
            await audit.record(conn, str(ctx.actor), action, f"device:{api_key_id}:{install_id}", details)
        cur = await conn.execute(
            _SELECT + " WHERE d.api_key_id = %s AND d.install_id = %s", (api_key_id, install_id)
        )
        return {"item": await cur.fetchone()}


async def act(ctx: Ctx, owner: int | None = None) -> dict[str, Any]:
    """``POST ?action=revoke|unrevoke`` with the device in ``id`` or the body/query; with
    ``owner``, only that customer's devices."""
    action = ctx.query.get("action")
    if action not in ("revoke", "unrevoke"):
        raise bad_request("action", "action must be revoke or unrevoke.")
    api_key_id, install_id = _target(ctx, await _optional_body(ctx))
    return await _set_revoked(ctx, api_key_id, install_id, action == "revoke", owner)
