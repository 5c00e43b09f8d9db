"""Kaixu API keys: ``kx_live_`` + 32 random bytes (base64url), stored only as a hash.

The hash is HMAC-SHA256 with ``KEY_PEPPER`` (plain SHA-256 without one), so a database
leak alone does not let anyone test guesses offline. A key is shown once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import NamedTuple

from shared import config
from shared.errors import ApiError

PREFIX = "kx_live_"
# What a key may do, least to most: read (KaixuPush status, billing), call models, deploy
# sites, manage the account (register projects), everything (the master key). New keys get
# the least power that is useful, ``caller``; more must be asked for.
ROLES = ("viewer", "caller", "deployer", "admin", "owner")
DEFAULT_ROLE = "caller"
MASTER_ROLE = "owner"
_MAX_KEY_LENGTH = 100


class NewKey(NamedTuple):
    secret: str
    hash: bytes
    last4: str


def hash_key(secret: str) -> bytes:
    pepper = config.settings().key_pepper
    if pepper:
        return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).digest()
    return hashlib.sha256(secret.encode()).digest()


def generate() -> NewKey:
    secret = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return NewKey(secret, hash_key(secret), secret[-4:])


def bearer_key(authorization: str | None) -> str:
    """The Kaixu key from an ``Authorization: Bearer`` header, or a 401 without a DB lookup."""
    if not authorization:
        raise ApiError(401, "MISSING_KEY", "Send your Kaixu key as 'Authorization: Bearer kx_live_...'.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, "INVALID_KEY", "The key is not a valid Kaixu key.")
    return checked_key(token)


def checked_key(token: str) -> str:
    """A Kaixu key as given (``x-api-key`` for Anthropic's SDK), or a 401 without a DB lookup."""
    token = token.strip()
    if not token.startswith(PREFIX) or len(token) > _MAX_KEY_LENGTH:
        raise ApiError(401, "INVALID_KEY", "The key is not a valid Kaixu key.")
    return token
