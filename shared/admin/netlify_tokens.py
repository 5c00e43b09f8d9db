"""Customers' Netlify tokens: sealed at rest, never shown again, opened only by KaixuPush.

The token is encrypted with :mod:`shared.crypto` and bound to its customer (associated data),
so a row copied to another customer does not decrypt. The admin API only ever says whether a
customer has a token; :func:`token_for` is the one way back to the plaintext.
"""

from __future__ import annotations

from typing import Any

from shared import audit, crypto, db, fields, params
from shared.errors import ApiError, found
from shared.http import Ctx


def associated_data(customer_id: int) -> bytes:
    return f"kaixu:netlify-token:customer:{customer_id}".encode()


def _view(customer_id: int, row: dict[str, Any] | None) -> dict[str, Any]:
    return {"customer_id": customer_id, "has_token": row is not None, "updated_at": row and row["updated_at"]}


async def _require_customer(conn: db.Connection, customer_id: int) -> None:
    cur = await conn.execute("SELECT 1 FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
    found(await cur.fetchone(), f"Customer {customer_id}")


async def token_for(customer_id: int) -> str | None:
    """The customer's Netlify token, or None when none is set.

    Raises :class:`crypto.DecryptionError` when the stored token cannot be opened and
    :class:`crypto.EncryptionNotConfigured` without keys: a broken secret is an error."""
    row = await db.fetch_one(
        "SELECT token_enc FROM customer_netlify_tokens WHERE customer_id = %s", (customer_id,)
    )
    if row is None:
        return None
    return crypto.open_sealed(row["token_enc"], associated_data(customer_id))


def _sealed(customer_id: int, token: str) -> str:
    try:
        return crypto.seal(token, associated_data(customer_id))
    except crypto.EncryptionNotConfigured as exc:
        raise ApiError(503, "ENCRYPTION_NOT_CONFIGURED", str(exc)) from None


async def set_token(ctx: Ctx) -> dict[str, Any]:
    """PUT/POST {customer_id, token}: store (or replace) the customer's token."""
    body = await ctx.json_object()
    fields.reject_unknown(body, ("customer_id", "token"))
    customer_id = fields.int_field(body, "customer_id")
    token = fields.text_field(body, "token", max_length=1000)
    sealed = _sealed(customer_id, token)
    async with db.connection() as conn, conn.transaction():
        await _require_customer(conn, customer_id)
        cur = await conn.execute(
            "INSERT INTO customer_netlify_tokens (customer_id, token_enc, key_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (customer_id) DO UPDATE SET token_enc = excluded.token_enc, "
            "key_id = excluded.key_id, updated_at = now() RETURNING updated_at, (xmax = 0) AS inserted",
            (customer_id, sealed, crypto.key_id(sealed)),
        )
        row = await db.one(cur)
        details = {"key_id": crypto.key_id(sealed), "replaced": not row["inserted"]}
        await audit.record(
            conn, ctx.actor or "admin", "netlify_token.set", f"customer:{customer_id}", details
        )
    return {"item": _view(customer_id, row)}


async def clear_token(ctx: Ctx) -> dict[str, Any]:
    """DELETE ?customer_id=: forget the customer's token (KaixuPush falls back to the global one)."""
    customer_id = params.int_param(ctx, "customer_id", required=True)
    async with db.connection() as conn, conn.transaction():
        await _require_customer(conn, customer_id)
        cur = await conn.execute("DELETE FROM customer_netlify_tokens WHERE customer_id = %s", (customer_id,))
        details = {"existed": cur.rowcount > 0}
        await audit.record(
            conn, ctx.actor or "admin", "netlify_token.clear", f"customer:{customer_id}", details
        )
    return {"item": _view(customer_id, None)}


async def status(ctx: Ctx) -> dict[str, Any]:
    """GET ?customer_id=: whether the customer has a token (never the token)."""
    customer_id = params.int_param(ctx, "customer_id", required=True)
    async with db.connection() as conn:
        await _require_customer(conn, customer_id)
        cur = await conn.execute(
            "SELECT updated_at FROM customer_netlify_tokens WHERE customer_id = %s", (customer_id,)
        )
        row = await cur.fetchone()
    return {"item": _view(customer_id, row)}
