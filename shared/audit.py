"""The audit log: who did what to which thing, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared import db


async def record(
    conn: db.Connection,
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_events (actor, action, target, details) VALUES (%s, %s, %s, %s)",
        (actor, action, target, Jsonb(details or {})),
    )
