"""Admin authentication: ``ADMIN_PASSWORD`` → short-lived signed admin tokens.

Admin calls carry ``Authorization: Bearer <token>`` (from admin-login; the admin screen sends
it on every call, CSV downloads included, which it fetches and saves itself) or the
``x-admin-password`` header (for scripts and curl). Tokens are typed (``typ: admin``),
expiring, and signed with their own secret: ``ADMIN_TOKEN_SECRET``, or, when that is unset,
a key derived from the password, so changing the password signs every admin out. A
customer's session token (``shared.portal.session``) has another prefix, type and key: it
never opens an admin endpoint. Failed logins are throttled and audited by
``shared.login_guard``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from shared import config, login_guard, signed_tokens
from shared.errors import ApiError
from shared.http import Ctx

TOKEN_PREFIX = "kxa1"
TOKEN_TYPE = "admin"
ACTOR = "admin"


def _password() -> str:
    password = config.settings().admin_password
    if not password:
        raise ApiError(
            503,
            "ADMIN_NOT_CONFIGURED",
            "Admin access is disabled: set ADMIN_PASSWORD on the server to enable it.",
        )
    return password


def signing_secret() -> bytes:
    """The deployment's session secret: ``ADMIN_TOKEN_SECRET``, else derived from the password.
    Other kinds of session derive their own key from it (never use it as it is)."""
    cfg = config.settings()
    if cfg.admin_token_secret:
        return cfg.admin_token_secret.encode()
    return hmac.new(_password().encode(), b"kaixu admin token v1", hashlib.sha256).digest()


def issue_token(now: float | None = None) -> tuple[str, datetime]:
    ttl = config.settings().admin_token_ttl_s
    token, expires = signed_tokens.issue(TOKEN_PREFIX, TOKEN_TYPE, signing_secret(), ttl, now)
    return token, datetime.fromtimestamp(expires, UTC)


def _token_expiry(token: str) -> int | None:
    """When a valid admin token expires (epoch seconds); None for anything else."""
    payload = signed_tokens.verify(token, TOKEN_PREFIX, TOKEN_TYPE, signing_secret())
    return None if payload is None else int(payload["exp"])


def _bearer(ctx: Ctx) -> str:
    return signed_tokens.bearer(ctx.headers.get("authorization", ""))


def session_ends_at(ctx: Ctx) -> float:
    """When the admin session behind this (authorised) request ends: its token's expiry, or a
    token's lifetime from now for the password header. Long-lived streams stop there."""
    return _token_expiry(_bearer(ctx)) or time.time() + config.settings().admin_token_ttl_s


async def require_admin(ctx: Ctx) -> str:
    """The acting admin's name, or 401 (503 when admin access is not configured). A password
    header counts as a login attempt: same lockout, failures audited, so it is no side door
    for guessing."""
    _password()
    token = _bearer(ctx)
    if token and _token_expiry(token) is not None:
        return ACTOR
    given = ctx.headers.get("x-admin-password")
    if given and await _attempt(ctx, given, record_success=False):
        return ACTOR
    raise ApiError(401, "UNAUTHORIZED", "Admin credentials are missing, wrong or expired; log in again.")


async def _attempt(ctx: Ctx, password: str, *, record_success: bool) -> bool:
    async def verify(_conn: Any) -> bool | None:
        return hmac.compare_digest(password.encode(), _password().encode()) or None

    found = await login_guard.attempt(ctx, "admin", verify, lambda _: ACTOR, record_success=record_success)
    return found is not None


async def login(ctx: Ctx) -> dict[str, Any]:
    body = await ctx.json_object()
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "INVALID_INPUT", "password is required.", field="password")
    _password()
    if not await _attempt(ctx, password, record_success=True):
        raise ApiError(401, "INVALID_CREDENTIALS", "The admin password is wrong.")
    token, expires_at = issue_token()
    return {"token": token, "expires_at": expires_at}
