"""Admin authentication: ``ADMIN_PASSWORD`` → short-lived signed admin tokens.

Admin calls carry ``Authorization: Bearer <token>`` (from admin-login) or the
``x-admin-password`` header (downloads use it). Tokens are typed (``typ: admin``),
expiring, and signed with their own secret: ``ADMIN_TOKEN_SECRET``, or, when that is unset,
a key derived from the password, so changing the password signs every admin out.
Failed logins are limited per client address (5 per 15 minutes) and every attempt is audited.
Past ``ADMIN_LOGIN_GLOBAL_BUDGET`` failures in that window from all addresses together (a
guesser with many addresses), every attempt waits first, longer as failures grow: guessing
slows to a crawl while the operator, with the right password, still gets in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from shared import audit, config, db, throttle
from shared.errors import ApiError
from shared.http import Ctx

TOKEN_PREFIX = "kxa1"
ACTOR = "admin"
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
GLOBAL_DELAY_S = 0.5  # the first wait past the global budget, doubled every 10 failures more
MAX_GLOBAL_DELAY_S = 8.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _password() -> str:
    password = config.settings().admin_password
    if not password:
        raise ApiError(
            503,
            "ADMIN_NOT_CONFIGURED",
            "Admin access is disabled: set ADMIN_PASSWORD on the server to enable it.",
        )
    return password


def _signing_key() -> bytes:
    cfg = config.settings()
    if cfg.admin_token_secret:
        return cfg.admin_token_secret.encode()
    return hmac.new(_password().encode(), b"kaixu admin token v1", hashlib.sha256).digest()


def _sign(body: str) -> str:
    return _b64(hmac.new(_signing_key(), body.encode(), hashlib.sha256).digest())


def issue_token(now: float | None = None) -> tuple[str, datetime]:
    now = time.time() if now is None else now
    expires = int(now) + config.settings().admin_token_ttl_s
    payload = {"typ": "admin", "iat": int(now), "exp": expires, "jti": secrets.token_hex(8)}
    body = f"{TOKEN_PREFIX}.{_b64(orjson.dumps(payload))}"
    return f"{body}.{_sign(body)}", datetime.fromtimestamp(expires, UTC)


def _token_expiry(token: str) -> int | None:
    """When a valid admin token expires (epoch seconds); None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(body).encode(), parts[2].encode()):  # bytes: any header text
        return None
    try:
        payload = orjson.loads(_unb64(parts[1]))
        expires = int(payload.get("exp", 0))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    return expires if payload.get("typ") == "admin" and expires > time.time() else None


def _bearer(ctx: Ctx) -> str:
    scheme, _, token = ctx.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def session_ends_at(ctx: Ctx) -> float:
    """When the admin session behind this (authorised) request ends: its token's expiry, or a
    token's lifetime from now for the password header. Long-lived streams stop there."""
    return _token_expiry(_bearer(ctx)) or time.time() + config.settings().admin_token_ttl_s


def _password_matches(given: str) -> bool:
    return hmac.compare_digest(given.encode(), _password().encode())


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


async def _global_delay_s() -> float:
    """How long an attempt waits while failures from every address exceed the budget."""
    row = await db.fetch_row(
        "SELECT count(*) AS failures FROM audit_events WHERE action = 'admin.login_failed' "
        "AND created_at > now() - make_interval(secs => %s)",
        (FAILURE_WINDOW_S,),
    )
    over = row["failures"] - config.settings().admin_login_global_budget
    return 0.0 if over < 0 else min(GLOBAL_DELAY_S * 2 ** (over // 10), MAX_GLOBAL_DELAY_S)


async def _attempt(ctx: Ctx, password: str, *, record_success: bool) -> bool:
    """Whether ``password`` is right, checked under a per-address lock so parallel guesses
    cannot pass the limit; failures are audited, and a locked-out address gets 429."""
    await asyncio.sleep(await _global_delay_s())
    subject = throttle.subject_hash(ctx.client_ip)
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('admin-login:' || %s))", (subject,))
        cur = await conn.execute(
            "SELECT count(*) AS failures, min(created_at) AS oldest FROM audit_events "
            "WHERE action = 'admin.login_failed' AND target = %s "
            "AND created_at > now() - make_interval(secs => %s)",
            (f"client:{subject}", FAILURE_WINDOW_S),
        )
        recent = await db.one(cur)
        if recent["failures"] >= MAX_FAILURES:
            outcome = "admin.login_locked"
        else:
            outcome = "admin.login" if _password_matches(password) else "admin.login_failed"
        if outcome != "admin.login" or record_success:
            actor = ACTOR if outcome == "admin.login" else "anonymous"
            await audit.record(conn, actor, outcome, f"client:{subject}")
    if outcome == "admin.login_locked":
        retry = FAILURE_WINDOW_S - (datetime.now(UTC) - recent["oldest"]).total_seconds()
        raise ApiError(
            429,
            "LOGIN_LOCKED",
            "Too many failed logins from this address; try again later.",
            headers={"retry-after": str(max(1, math.ceil(retry)))},
        )
    return outcome == "admin.login"


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
