"""Customer sign-in: a master key (or a key with the ``admin`` role) → a customer session token.

The token is typed (``kxc1.``, ``typ: customer``) and short-lived (CUSTOMER_SESSION_TTL_S),
names the customer and the key that signed in, and is signed with a key derived from the
deployment's session secret under its own label: an admin token is never a customer token,
nor the other way round. Every request re-reads the key and the customer (one indexed
query), so revoking or rotating that key, lowering its role or disabling the customer ends
the session at once. Failed sign-ins are throttled and audited like the admin login
(``customer.login_failed``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from shared import config, db, login_guard, signed_tokens
from shared.admin import auth as admin_auth
from shared.errors import ApiError
from shared.gateway import key_auth, keys
from shared.http import Ctx

TOKEN_PREFIX = "kxc1"
TOKEN_TYPE = "customer"
SIGN_IN_ROLE = "admin"  # the least role that may sign in to the portal

_KEY = """
SELECT k.id AS api_key_id, k.customer_id, k.role, k.key_last4, k.revoked_at IS NOT NULL AS revoked,
       c.email, c.is_active
FROM api_keys k JOIN customers c ON c.id = k.customer_id
"""


def _signing_key() -> bytes:
    cfg = config.settings()
    if not cfg.admin_token_secret and not cfg.admin_password:
        raise ApiError(
            503,
            "PORTAL_NOT_CONFIGURED",
            "The customer portal is disabled: set ADMIN_TOKEN_SECRET on the server to enable it.",
        )
    return hmac.new(admin_auth.signing_secret(), b"kaixu customer session v1", hashlib.sha256).digest()


def _refuse_unusable(row: dict[str, Any]) -> None:
    if not row["is_active"]:
        raise ApiError(403, "CUSTOMER_DISABLED", "This customer account is disabled.")
    if not key_auth.role_at_least(row["role"], SIGN_IN_ROLE):
        raise ApiError(
            403,
            "FORBIDDEN",
            f"Sign in with your master key or a key with the {SIGN_IN_ROLE} role; "
            f"this key is a {row['role']}.",
            required_role=SIGN_IN_ROLE,
            role=row["role"],
        )


def issue_token(customer_id: int, api_key_id: int) -> tuple[str, int]:
    """A session for this customer and key, and when it expires (epoch seconds)."""
    ttl = config.settings().customer_session_ttl_s
    claims = {"cid": customer_id, "kid": api_key_id}
    return signed_tokens.issue(TOKEN_PREFIX, TOKEN_TYPE, _signing_key(), ttl, **claims)


async def login(ctx: Ctx) -> dict[str, Any]:
    """POST {key}: a customer session token, its expiry, and who signed in."""
    body = await ctx.json_object()
    secret = body.get("key")
    if not isinstance(secret, str) or not secret.strip():
        raise ApiError(400, "INVALID_INPUT", "key is required: your kx_live_ key.", field="key")
    _signing_key()  # 503 before any key is looked at when the portal is off

    async def verify(conn: db.Connection) -> dict[str, Any] | None:
        if not secret.strip().startswith(keys.PREFIX) or len(secret) > 200:
            return None
        cur = await conn.execute(_KEY + " WHERE k.key_hash = %s", (keys.hash_key(secret.strip()),))
        row = await cur.fetchone()
        return None if row is None or row["revoked"] else row

    row = await login_guard.attempt(
        ctx, "customer", verify, lambda r: f"customer:{r['customer_id']}", record_success=True
    )
    if row is None:
        raise ApiError(401, "INVALID_CREDENTIALS", "This key is not known here, or it has been revoked.")
    _refuse_unusable(row)
    token, expires = issue_token(row["customer_id"], row["api_key_id"])
    return {
        "token": token,
        "expires_at": datetime.fromtimestamp(expires, UTC),
        "customer": {"id": row["customer_id"], "email": row["email"]},
        "key": {"id": row["api_key_id"], "key_last4": row["key_last4"], "role": row["role"]},
    }


async def require_customer(ctx: Ctx) -> str:
    """The auth hook of every ``customer-*`` function: a valid customer session whose key and
    customer are still usable. Fills ``ctx.customer_id`` and ``ctx.api_key_id``."""
    token = signed_tokens.bearer(ctx.headers.get("authorization", ""))
    payload = signed_tokens.verify(token, TOKEN_PREFIX, TOKEN_TYPE, _signing_key()) if token else None
    if payload is None:
        raise ApiError(
            401, "UNAUTHORIZED", "The customer session is missing, wrong or expired; sign in again."
        )
    row = await db.fetch_one(
        _KEY + " WHERE k.id = %s AND k.customer_id = %s", (payload.get("kid"), payload.get("cid"))
    )
    if row is None or row["revoked"]:
        raise ApiError(401, "UNAUTHORIZED", "The key this session signed in with was revoked; sign in again.")
    _refuse_unusable(row)
    ctx.customer_id, ctx.api_key_id = row["customer_id"], row["api_key_id"]
    return f"customer:{row['customer_id']}/key:{row['api_key_id']}"
