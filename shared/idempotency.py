"""Idempotent writes: an ``Idempotency-Key`` header makes a retried request take effect once.

The key is claimed with an insert inside the write's own transaction, so:
- a retry after success replays the stored response (the same item, status 200);
- a concurrent duplicate blocks on the uncommitted claim, then replays what the first stored;
- a failed write rolls its claim back, so a retry can try again;
- the same key with a different body is a 409 (the client reused a key by mistake).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from psycopg.types.json import Jsonb

from shared import db
from shared.errors import ApiError, bad_request
from shared.http import Ctx, dumps

HEADER = "idempotency-key"
_MAX_LENGTH = 255


def header_key(ctx: Ctx) -> str | None:
    """The request's Idempotency-Key (1-255 printable ASCII characters), if it sent one."""
    raw = ctx.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > _MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise bad_request(
            "Idempotency-Key", f"Idempotency-Key must be 1-{_MAX_LENGTH} printable ASCII characters."
        )
    return key


def request_hash(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim(conn: db.Connection, scope: str, key: str, fingerprint: str) -> Any | None:
    """None when this transaction now owns ``key`` (do the write, then :func:`store`);
    otherwise the response stored by the request that owned it."""
    cur = await conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING key",
        (scope, key, fingerprint),
    )
    if await cur.fetchone():
        return None
    cur = await conn.execute(
        "SELECT request_hash, response FROM idempotency_keys WHERE scope = %s AND key = %s", (scope, key)
    )
    row = await cur.fetchone()
    if row is None:  # pruned between the two statements: rare, and safe to retry
        raise ApiError(409, "IDEMPOTENCY_RETRY", "This Idempotency-Key is being reset; retry the request.")
    if row["request_hash"] != fingerprint:
        raise ApiError(
            409,
            "IDEMPOTENCY_MISMATCH",
            "This Idempotency-Key was already used with a different request; use a new key.",
        )
    return row["response"]


async def store(conn: db.Connection, scope: str, key: str, response: Any) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET response = %s WHERE scope = %s AND key = %s",
        (Jsonb(response, dumps=lambda value: dumps(value).decode()), scope, key),
    )


async def prune(older_than_days: int = 7) -> int:
    """Forget keys older than any client would retry with."""
    return await db.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(days => %s)",
        (older_than_days,),
    )
