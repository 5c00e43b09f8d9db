"""Kaixu-key authentication with roles, for endpoints a customer's tools call (KaixuPush).

A key carries a role (``api_keys.role``, see ``keys.ROLES``): viewer < caller < deployer <
admin < owner. Each endpoint
names the least role it needs, per method if they differ::

    function(__name__, auth=key_auth.require_role("viewer", POST="admin"), GET=get, POST=post)

The hook looks the key up by its hash on every request (revocation is immediate), refuses a
revoked key (401) and a disabled customer (403 CUSTOMER_DISABLED: the original skipped that
check for push), and fills ``ctx.customer_id`` / ``ctx.api_key_id``; the actor is ``key:<id>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shared import db
from shared.errors import ApiError
from shared.gateway import keys
from shared.http import Ctx

_RANK = {role: rank for rank, role in enumerate(keys.ROLES)}

_LOOKUP = """
SELECT k.id, k.customer_id, k.role, k.revoked_at IS NOT NULL AS revoked, c.is_active
FROM api_keys k JOIN customers c ON c.id = k.customer_id
WHERE k.key_hash = %s
"""


def role_at_least(role: str, minimum: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[minimum]


def require_role(minimum: str, **per_method: str) -> Callable[[Ctx], Awaitable[str]]:
    """An async auth hook: a valid key of an active customer with at least ``minimum``
    (or the role named for the request's method, e.g. ``POST="admin"``)."""
    for role in (minimum, *per_method.values()):
        if role not in _RANK:
            raise ValueError(f"unknown role {role!r}")
    needed_by_method = {method.upper(): role for method, role in per_method.items()}

    async def check(ctx: Ctx) -> str:
        secret = keys.bearer_key(ctx.headers.get("authorization"))
        row = await db.fetch_one(_LOOKUP, (keys.hash_key(secret),))
        if row is None:
            raise ApiError(401, "INVALID_KEY", "The Kaixu key is not known.")
        ctx.customer_id, ctx.api_key_id = row["customer_id"], row["id"]
        if row["revoked"]:
            raise ApiError(401, "KEY_REVOKED", "This Kaixu key has been revoked.")
        if not row["is_active"]:
            raise ApiError(403, "CUSTOMER_DISABLED", "This customer account is disabled.")
        needed = needed_by_method.get(ctx.request.method, minimum)
        if not role_at_least(row["role"], needed):
            raise ApiError(
                403,
                "FORBIDDEN",
                f"This needs a key with the {needed} role or higher; this key is a {row['role']}.",
                required_role=needed,
                role=row["role"],
            )
        return f"key:{row['id']}"

    return check
