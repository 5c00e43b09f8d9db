"""Handing a verified file to Netlify and recording it, for whole and chunked uploads alike.

A digest is sent once per push, to one path: Netlify asks for content by SHA-1 (the deploy's
``required`` list) and stores it once for every path of the manifest that has it, so sending
it again to each such path would only multiply the transfer. The usage event bills exactly
the bytes sent. A direct upload first *claims* the digest (a ``push_files`` row in
``uploading``), which makes a concurrent duplicate a 409 instead of a second transfer and
holds the bytes against the cap while they travel. Whatever delivered it, recording the
file as ``done`` happens once: only the transition writes the usage event, the audit row
and nothing else.
"""

from __future__ import annotations

from typing import Any

from shared import audit, db
from shared.errors import ApiError
from shared.kaixupush import billing, limits, pushes
from shared.kaixupush.netlify_api import BodyFactory, Netlify

STALE_CLAIM_S = 600  # a claim older than this belongs to a request that died


async def claim(push: dict[str, Any], sha1: str, size: int) -> str:
    """'claimed' (send it), 'done' (already delivered) or 'busy' (another request is sending it).
    The claim's bytes are checked against the push cap first (402)."""
    async with db.connection() as conn, conn.transaction():
        plan = await billing.plan_for(conn, push["customer_id"])
        if plan.monthly_cap_cents is not None:
            await limits.lock_customer(conn, push["customer_id"])
            await billing.check_cap(conn, push["customer_id"], extra_bytes=size)
        cur = await conn.execute(
            "INSERT INTO push_files AS f (push_row_id, sha1, bytes, mode, status) "
            "VALUES (%s, %s, %s, 'direct', 'uploading') "
            "ON CONFLICT (push_row_id, sha1) DO UPDATE SET bytes = excluded.bytes, claimed_at = now() "
            "WHERE f.status = 'uploading' AND f.claimed_at < now() - make_interval(secs => %s) "
            "RETURNING status",
            (push["id"], sha1, size, STALE_CLAIM_S),
        )
        if await cur.fetchone():
            return "claimed"
        cur = await conn.execute(
            "SELECT status FROM push_files WHERE push_row_id = %s AND sha1 = %s", (push["id"], sha1)
        )
        row = await cur.fetchone()
    return "done" if row and row["status"] == "done" else "busy"


async def release(push: dict[str, Any], sha1: str) -> None:
    """Give a claim back after a failed transfer, so the client can try again."""
    await db.execute(
        "DELETE FROM push_files WHERE push_row_id = %s AND sha1 = %s AND status = 'uploading'",
        (push["id"], sha1),
    )


async def is_done(push_row_id: int, sha1: str) -> bool:
    row = await db.fetch_one(
        "SELECT 1 FROM push_files WHERE push_row_id = %s AND sha1 = %s AND status = 'done'",
        (push_row_id, sha1),
    )
    return row is not None


async def send(
    netlify: Netlify, push: dict[str, Any], sha1: str, size: int, body: bytes | BodyFactory
) -> int:
    """PUT the content once, to one manifest path that has it; the bytes sent (to bill)."""
    path = await pushes.first_path(push["id"], sha1)
    if path is None:  # the manifest was pruned: the push finished meanwhile
        raise ApiError(409, "PUSH_CLOSED", f"Push {push['push_id']} no longer takes files.")
    await netlify.upload_file(push["deploy_id"], path, size, body)
    return size


async def finish(push: dict[str, Any], sha1: str, size: int, mode: str, actor: str) -> bool:
    """Mark the digest delivered; bill (``size``: the bytes :func:`send` sent) and audit it
    if this call made it so."""
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO push_files AS f (push_row_id, sha1, bytes, mode, status, uploaded_at) "
            "VALUES (%s, %s, %s, %s, 'done', now()) "
            "ON CONFLICT (push_row_id, sha1) DO UPDATE SET status = 'done', bytes = excluded.bytes, "
            "mode = excluded.mode, uploaded_at = now() WHERE f.status <> 'done' RETURNING sha1",
            (push["id"], sha1, size, mode),
        )
        if await cur.fetchone() is None:
            return False
        meta = {"push_id": push["push_id"], "sha1": sha1, "mode": mode}
        await billing.record(
            conn,
            customer_id=push["customer_id"],
            api_key_id=push["api_key_id"],
            push_row_id=push["id"],
            kind="file_upload",
            bytes_count=size,
            meta=meta,
        )
        await audit.record(
            conn, actor, "push.file_upload", f"push:{push['push_id']}", {**meta, "bytes": size}
        )
        await conn.execute("UPDATE push_pushes SET updated_at = now() WHERE id = %s", (push["id"],))
    return True
