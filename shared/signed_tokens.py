"""Short-lived signed session tokens: ``<prefix>.<payload>.<signature>``.

The payload is base64url JSON with at least ``typ`` and ``exp``; the signature is an
HMAC-SHA256 of ``<prefix>.<payload>``. Each kind of session (admin, customer) has its own
prefix, ``typ`` and signing key, so a token of one kind is never accepted as the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue(
    prefix: str, typ: str, key: bytes, ttl_s: int, now: float | None = None, **claims: Any
) -> tuple[str, int]:
    """A new token and when it expires (epoch seconds)."""
    now = int(time.time() if now is None else now)
    payload = {"typ": typ, "iat": now, "exp": now + ttl_s, "jti": secrets.token_hex(8), **claims}
    body = f"{prefix}.{_b64(orjson.dumps(payload))}"
    return f"{body}.{_sign(key, body)}", now + ttl_s


def verify(token: str, prefix: str, typ: str, key: bytes) -> dict[str, Any] | None:
    """The payload of a valid, unexpired token of this kind; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, body).encode(), parts[2].encode()):  # bytes: any header text
        return None
    try:
        payload = orjson.loads(_unb64(parts[1]))
        expires = int(payload.get("exp", 0))
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        return None
    if payload.get("typ") != typ or expires <= time.time():
        return None
    return dict(payload)


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer`` header, or ''."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
