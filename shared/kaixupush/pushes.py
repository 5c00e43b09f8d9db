"""The push record: one Netlify deploy made through the gateway, and its state changes.

A push belongs to one customer; another customer's push id is simply not found. Its state
is Netlify's deploy state (refreshed from Netlify, never trusted from the client) plus two
of the gateway's own: ``creating`` before Netlify answered and ``init_failed`` when it
refused. ``ready`` and ``error`` are final: the push's billing event (``deploy_ready`` is
charged, ``deploy_error`` is not) is written once, in the transaction that records it.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from shared import audit, db
from shared.http import ApiError
from shared.kaixupush import billing
from shared.kaixupush.manifest import SHA1
from shared.kaixupush.netlify_api import Netlify

FINAL_STATES = ("ready", "error")
PREPARING = ("creating", "new", "enqueued", "preparing")
COLUMNS = (
    "id, push_id, customer_id, api_key_id, project_row_id, project_id, netlify_site_id, branch, title, "
    "draft, deploy_id, state, url, error, file_count, required, ready_at, finished_at, created_at, updated_at"
)
_UPLOADED = "SELECT count(*) AS n FROM push_files WHERE push_row_id = %s AND status = 'done'"


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


def require_open(push: dict[str, Any]) -> None:
    """Files can be sent while Netlify's deploy waits for them, not before or after."""
    if push["deploy_id"] is None or push["finished_at"] is not None or push["state"] == "init_failed":
        raise ApiError(
            409,
            "PUSH_CLOSED",
            f"Push {push['push_id']} is {push['state']}; files can no longer be sent to it.",
        )


async def manifest_digest(push_row_id: int, path: str) -> str | None:
    row = await db.fetch_one(
        "SELECT manifest ->> %s AS sha1 FROM push_pushes WHERE id = %s", (path, push_row_id)
    )
    return row["sha1"] if row else None


async def paths_for(push_row_id: int, sha1: str) -> list[str]:
    """Every manifest path with this content: Netlify is sent each of them."""
    rows = await db.fetch_all(
        "SELECT key FROM push_pushes, jsonb_each_text(manifest) WHERE id = %s AND value = %s ORDER BY key",
        (push_row_id, sha1),
    )
    return [row["key"] for row in rows]


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
    uploaded = (await db.fetch_one(_UPLOADED, (push["id"],)))["n"]
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


async def _record_final(conn: psycopg.AsyncConnection, push: dict[str, Any], actor: str) -> None:
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


async def refresh(push: dict[str, Any], netlify: Netlify, actor: str) -> dict[str, Any]:
    """Ask Netlify for the deploy's state and record it (a finished push is left as it is)."""
    if push["deploy_id"] is None or push["finished_at"] is not None:
        return push
    return await apply_deploy(push, await netlify.get_deploy(push["deploy_id"]), actor)
