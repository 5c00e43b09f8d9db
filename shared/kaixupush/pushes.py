"""The push record: one Netlify deploy made through the gateway, and its state changes.

A push belongs to one customer; another customer's push id is simply not found. Its state
is Netlify's deploy state (refreshed from Netlify, never trusted from the client) plus three
of the gateway's own: ``creating`` before Netlify answered, ``init_failed`` when it refused
and ``expired`` (set by the upkeep) for a push that was not ready in time. ``ready`` and
``error`` are final: the push's billing event (``deploy_ready`` is charged, ``deploy_error``
is not) is written once, in the transaction that records it.

Files may be sent to a push for ``KAIXUPUSH_RETENTION_H`` from its creation, however recently
the last one came (:func:`require_open`): after that Netlify can no longer be handed the last
file, so a deploy cannot be finished once nobody watches it any more. A deploy whose files
were all sent in time is followed for a day more (:data:`FINALIZE_GRACE_S`), so it is billed
when it becomes ready even if its client never asks.

Netlify is asked for a push's state at most once per ``KAIXUPUSH_STATUS_CACHE_S`` (every
process together: the claim is an update of ``polled_at``); other refreshes answer from the
database, so polling ``kaixupush-status`` cannot spend the Netlify token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import audit, config, db
from shared.errors import ApiError
from shared.kaixupush import billing
from shared.kaixupush.manifest import SHA1
from shared.kaixupush.netlify_api import Netlify

FINAL_STATES = ("ready", "error")
EXPIRED = "expired"
PREPARING = ("creating", "new", "enqueued", "preparing")
FINALIZE_GRACE_S = billing.FINALIZE_GRACE_S  # after the upload window: for Netlify to publish
COLUMNS = (
    "id, push_id, customer_id, api_key_id, project_row_id, project_id, netlify_site_id, branch, title, "
    "draft, deploy_id, state, url, error, file_count, required, ready_at, finished_at, created_at, updated_at"
)
_UPLOADED = "SELECT count(*) AS n FROM push_files WHERE push_row_id = %s AND status = 'done'"
_CLAIM_POLL = """
UPDATE push_pushes SET polled_at = now()
WHERE id = %s AND finished_at IS NULL
  AND (polled_at IS NULL OR polled_at <= now() - make_interval(secs => %s))
RETURNING id
"""


def new_push_id() -> str:
    return "push_" + secrets.token_hex(10)


async def load(customer_id: int, push_id: object) -> dict[str, Any]:
    """The customer's push (without its manifest), or 404."""
    if not isinstance(push_id, str) or not push_id or len(push_id) > 64:
        raise ApiError(400, "INVALID_INPUT", "push_id is required.", field="push_id")
    row = await db.fetch_one(
        f"SELECT {COLUMNS} FROM push_pushes WHERE push_id = %s AND customer_id = %s", (push_id, customer_id)
    )
    if row is None:
        raise ApiError(404, "PUSH_NOT_FOUND", f"Push {push_id} was not found for this customer.")
    return row


def retention_s() -> float:
    return config.settings().kaixupush_retention_h * 3600


def upload_deadline(push: dict[str, Any]) -> datetime:
    """Until when files may be sent to the push: a fixed time after its creation."""
    created: datetime = push["created_at"]
    return created + timedelta(seconds=retention_s())


def require_open(push: dict[str, Any]) -> None:
    """Files can be sent while Netlify's deploy waits for them and the push's upload window
    is open, not before or after."""
    if push["deploy_id"] is None or push["finished_at"] is not None or push["state"] == "init_failed":
        raise ApiError(
            409,
            "PUSH_CLOSED",
            f"Push {push['push_id']} is {push['state']}; files can no longer be sent to it.",
        )
    deadline = upload_deadline(push)
    if datetime.now(UTC) >= deadline:
        raise ApiError(
            409,
            "PUSH_EXPIRED",
            f"Push {push['push_id']} expired: files could be sent to it until {deadline.isoformat()} "
            f"({config.settings().kaixupush_retention_h:g} h after its creation); start a new deploy.",
            expired_at=deadline,
        )


async def manifest_digest(push_row_id: int, path: str) -> str | None:
    row = await db.fetch_one(
        "SELECT manifest ->> %s AS sha1 FROM push_pushes WHERE id = %s", (path, push_row_id)
    )
    return row["sha1"] if row else None


async def paths_for(push_row_id: int, sha1: str) -> list[str]:
    """Every manifest path with this content."""
    rows = await db.fetch_all(
        "SELECT key FROM push_pushes, jsonb_each_text(manifest) WHERE id = %s AND value = %s ORDER BY key",
        (push_row_id, sha1),
    )
    return [row["key"] for row in rows]


async def first_path(push_row_id: int, sha1: str) -> str | None:
    """One manifest path with this content (the first in order): Netlify asks for content by
    SHA-1, and one upload of it serves every path that has it."""
    row = await db.fetch_one(
        "SELECT key FROM push_pushes, jsonb_each_text(manifest) WHERE id = %s AND value = %s "
        "ORDER BY key LIMIT 1",
        (push_row_id, sha1),
    )
    return row["key"] if row else None


async def missing(push: dict[str, Any]) -> list[str]:
    """Required digests Netlify has not been sent yet."""
    rows = await db.fetch_all(
        "SELECT r.sha1 FROM unnest(%s::text[]) AS r(sha1) WHERE NOT EXISTS (SELECT 1 FROM push_files f "
        "WHERE f.push_row_id = %s AND f.sha1 = r.sha1 AND f.status = 'done') ORDER BY r.sha1",
        (push["required"], push["id"]),
    )
    return [row["sha1"] for row in rows]


async def view(push: dict[str, Any]) -> dict[str, Any]:
    """The curated view a client or admin sees: never the raw Netlify object, never tokens."""
    uploaded = (await db.fetch_row(_UPLOADED, (push["id"],)))["n"]
    required = len(push["required"])
    return {
        "push_id": push["push_id"],
        "customer_id": push["customer_id"],
        "project_id": push["project_id"],
        "branch": push["branch"],
        "title": push["title"],
        "draft": push["draft"],
        "deploy_id": push["deploy_id"],
        "state": push["state"],
        "url": push["url"],
        "error": push["error"],
        "file_count": push["file_count"],
        "required_count": required,
        "uploaded_count": uploaded,
        "missing_count": max(0, required - uploaded),
        "ready_at": push["ready_at"],
        "created_at": push["created_at"],
        "updated_at": push["updated_at"],
    }


def public_url(deploy: dict[str, Any], draft: bool) -> str | None:
    """The site's URL, or the deploy's own permalink for a draft."""
    names = ("deploy_ssl_url", "deploy_url") if draft else ("ssl_url", "url", "deploy_ssl_url")
    for name in names:
        value = deploy.get(name)
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value[:500]
    return None


def required_digests(deploy: dict[str, Any]) -> list[str]:
    required = deploy.get("required")
    if not isinstance(required, list):
        return []
    return sorted({digest for digest in required if isinstance(digest, str) and SHA1.match(digest)})


async def apply_deploy(push: dict[str, Any], deploy: dict[str, Any], actor: str) -> dict[str, Any]:
    """Record what Netlify says about the push's deploy; bill a deploy that became ready."""
    state = str(deploy.get("state") or "unknown")[:40]
    message = deploy.get("error_message")
    error = str(message)[:500] if message else None
    required = required_digests(deploy) if push["state"] in PREPARING and state not in PREPARING else None
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            f"UPDATE push_pushes SET state = %(state)s, url = coalesce(%(url)s, url), error = %(error)s, "
            "required = coalesce(%(required)s, required), "
            "ready_at = CASE WHEN %(state)s = 'ready' THEN coalesce(ready_at, now()) ELSE ready_at END, "
            "finished_at = CASE WHEN %(state)s IN ('ready', 'error') THEN coalesce(finished_at, now()) "
            "ELSE finished_at END, updated_at = now() "
            f"WHERE id = %(id)s AND finished_at IS NULL RETURNING {COLUMNS}",
            {
                "state": state,
                "url": public_url(deploy, push["draft"]),
                "error": error,
                "required": required,
                "id": push["id"],
            },
        )
        updated = await cur.fetchone()
        if updated is None:  # finished meanwhile (a concurrent refresh): keep what it recorded
            return push
        if state in FINAL_STATES:
            await _record_final(conn, updated, actor)
    return updated


async def _record_final(conn: db.Connection, push: dict[str, Any], actor: str) -> None:
    kind = "deploy_ready" if push["state"] == "ready" else "deploy_error"
    meta = {"push_id": push["push_id"], "deploy_id": push["deploy_id"], "project_id": push["project_id"]}
    recorded = await billing.record(
        conn,
        customer_id=push["customer_id"],
        api_key_id=push["api_key_id"],
        push_row_id=push["id"],
        kind=kind,
        meta=meta,
    )
    if recorded:
        await audit.record(
            conn, actor, f"push.{kind}", f"push:{push['push_id']}", {**meta, "url": push["url"]}
        )


async def poll(push: dict[str, Any], netlify: Netlify, actor: str) -> tuple[dict[str, Any], bool]:
    """The push brought up to date: from Netlify (recorded; True) when nobody asked Netlify
    for it within ``KAIXUPUSH_STATUS_CACHE_S``, else as the database has it (False). A
    finished push is left as it is."""
    if push["deploy_id"] is None or push["finished_at"] is not None:
        return push, False
    claimed = await db.fetch_one(_CLAIM_POLL, (push["id"], config.settings().kaixupush_status_cache_s))
    if claimed is None:
        current = await db.fetch_one(f"SELECT {COLUMNS} FROM push_pushes WHERE id = %s", (push["id"],))
        return current or push, False
    return await apply_deploy(push, await netlify.get_deploy(push["deploy_id"]), actor), True


async def refresh(push: dict[str, Any], netlify: Netlify, actor: str) -> dict[str, Any]:
    """:func:`poll` without saying whether Netlify was asked."""
    return (await poll(push, netlify, actor))[0]
