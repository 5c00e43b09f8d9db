"""Sending files: whole (kaixupush-upload) or in parts (kaixupush-upload-chunk, then
kaixupush-upload-complete), and what each required file's state is (kaixupush-file-status).

Every upload names a digest of the push's manifest that Netlify asked for. A whole file is
checked against ``x-content-sha1`` before it goes anywhere; a file larger than
``KAIXUPUSH_PART_BYTES`` must come in parts, and no file may pass ``KAIXUPUSH_MAX_FILE_BYTES``
(413 FILE_TOO_LARGE, for parts as soon as ``parts`` says so, before a byte is read). Files
are taken only within the push's upload window (409 PUSH_EXPIRED after it).

Part rules (checked on every part, so a bad part is refused on arrival): parts are numbered
``0 .. parts-1``; every part except the last is exactly ``KAIXUPUSH_PART_BYTES`` long and the
last one 1 to ``KAIXUPUSH_PART_BYTES`` bytes (409 PART_SIZE otherwise); ``parts`` may not
change while the file is being received (409 PARTS_MISMATCH); an optional
``x-content-sha1`` header is the SHA-1 of that part and is verified (400 PART_SHA1_MISMATCH).
Sending a part again replaces it. A file's first part admits its job within the staging
quotas (see ``staging``: 413 FILE_TOO_LARGE, 429 STAGING_QUOTA or PUSH_JOBS_LIMIT). upload-complete
refuses missing parts (409 PARTS_INCOMPLETE naming them), then queues the file's job and runs
it at once, within the customer's places for concurrent work (``limits.busy``): the whole
file's SHA-1 is verified before Netlify sees a byte.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, overload

from starlette.responses import Response

from shared import audit, config, db, fields, params
from shared.errors import ApiError
from shared.http import Ctx, JSONResponse
from shared.kaixupush import billing, delivery, jobs, limits, paths, pushes, staging
from shared.kaixupush.manifest import check_sha1
from shared.kaixupush.netlify_api import Netlify, NetlifyError, resolve_token, to_api_error

MAX_PARTS = 10_000
SHA1_HEADER = "x-content-sha1"
_BUSY = ("queued", "running", "retry_wait")
_FILE_STATUS = """
SELECT r.sha1, f.status AS file_status, f.bytes, f.mode, j.id AS job_id, j.path, j.parts, j.status,
       j.attempts, j.last_error, j.last_error_code, j.next_attempt_at, j.updated_at,
       (SELECT count(*) FROM push_parts s WHERE s.job_id = j.id) AS received_parts,
       (SELECT coalesce(sum(s.size), 0) FROM push_parts s WHERE s.job_id = j.id)::bigint AS staged_bytes
FROM unnest(%(digests)s::text[]) AS r(sha1)
LEFT JOIN push_files f ON f.push_row_id = %(push)s AND f.sha1 = r.sha1
LEFT JOIN push_jobs j ON j.push_row_id = %(push)s AND j.sha1 = r.sha1
ORDER BY r.sha1
"""


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


@overload
def _header_sha1(ctx: Ctx, *, required: Literal[True]) -> str: ...
@overload
def _header_sha1(ctx: Ctx, *, required: bool) -> str | None: ...
def _header_sha1(ctx: Ctx, *, required: bool) -> str | None:
    raw = ctx.headers.get(SHA1_HEADER)
    if raw is None and not required:
        return None
    return check_sha1((raw or "").strip().lower(), SHA1_HEADER)


async def _target(push: dict[str, Any], raw_path: str | None, sha1: str) -> str:
    """The manifest path this upload is for (``path`` if given, else one with the digest)."""
    if raw_path:
        path = paths.normalize(raw_path)
        listed = await pushes.manifest_digest(push["id"], path)
        if listed is None:
            raise ApiError(409, "PATH_NOT_IN_MANIFEST", f"{path} is not in this push's manifest.", path=path)
        if listed != sha1:
            raise ApiError(
                409,
                "SHA1_NOT_MATCHING_MANIFEST",
                f"The manifest lists {path} with another digest.",
                path=path,
                expected=listed,
                got=sha1,
            )
        return path
    found = await pushes.paths_for(push["id"], sha1)
    if not found:
        raise ApiError(
            409, "SHA1_NOT_IN_MANIFEST", f"No file of this push's manifest has digest {sha1}.", sha1=sha1
        )
    return found[0]


def _require_required(push: dict[str, Any], sha1: str) -> None:
    if sha1 not in push["required"]:
        raise ApiError(
            409, "NOT_REQUIRED", "Netlify did not ask for this file (it already has it).", sha1=sha1
        )


async def _part_body(ctx: Ctx) -> bytes:
    """A part: at most KAIXUPUSH_PART_BYTES, refused as soon as the body passes it."""
    limit = config.settings().kaixupush_part_bytes
    try:
        return await ctx.body(limit)
    except ApiError as error:
        if error.status == 413:
            error.message = f"The body is larger than {limit} bytes: send it with kaixupush-upload-chunk."
            error.extra["max_bytes"] = limit
        raise


async def _whole_body(ctx: Ctx) -> bytes:
    """A whole file: a part's size at most, and never more than KAIXUPUSH_MAX_FILE_BYTES."""
    largest = config.settings().kaixupush_max_file_bytes
    if largest >= config.settings().kaixupush_part_bytes:
        return await _part_body(ctx)
    try:
        return await ctx.body(largest)
    except ApiError as error:
        if error.status == 413:
            raise staging.file_too_large(largest, largest + 1, "the largest file allowed") from None
        raise


def _skipped(push: dict[str, Any], sha1: str, **extra: Any) -> dict[str, Any]:
    return {"skipped": True, "reason": "already_uploaded", "push_id": push["push_id"], "sha1": sha1, **extra}


async def _open_push(ctx: Ctx, push_id: object) -> dict[str, Any]:
    push = await pushes.load(ctx.customer, push_id)
    pushes.require_open(push)
    return push


# ----------------------------------------------------------------------------- whole files


async def upload(ctx: Ctx) -> dict[str, Any]:
    """PUT ?push_id=&path= (or &sha1=) with x-content-sha1; the body is the whole file."""
    push = await _open_push(ctx, ctx.query.get("push_id"))
    sha1 = _header_sha1(ctx, required=True)
    if ctx.query.get("sha1") not in (None, sha1):
        raise ApiError(400, "SHA1_MISMATCH", "The sha1 parameter and the x-content-sha1 header differ.")
    path = await _target(push, ctx.query.get("path"), sha1)
    _require_required(push, sha1)
    if await delivery.is_done(push["id"], sha1):
        return _skipped(push, sha1, path=path)
    data = await _whole_body(ctx)
    if (got := _sha1(data)) != sha1:
        raise ApiError(
            400, "SHA1_MISMATCH", "The body's SHA-1 is not the x-content-sha1 header.", expected=sha1, got=got
        )
    netlify = Netlify(await resolve_token(ctx.customer))
    claimed = await delivery.claim(push, sha1, len(data))
    if claimed == "done":
        return _skipped(push, sha1, path=path)
    if claimed == "busy":
        raise ApiError(
            409, "UPLOAD_IN_PROGRESS", "Another request is sending this file right now.", sha1=sha1
        )
    try:
        sent = await delivery.send(netlify, push, sha1, len(data), data)
    except NetlifyError as error:
        await delivery.release(push, sha1)
        raise to_api_error(error) from None
    except BaseException:
        await delivery.release(push, sha1)
        raise
    await delivery.finish(push, sha1, sent, "direct", ctx.actor or "key")
    return {"uploaded": True, "push_id": push["push_id"], "path": path, "sha1": sha1, "bytes": len(data)}


# ----------------------------------------------------------------------------- parts


def _check_part_size(part: int, parts: int, size: int) -> None:
    part_bytes = config.settings().kaixupush_part_bytes
    last = part == parts - 1
    if (not last and size != part_bytes) or (last and size == 0):
        rule = f"1 to {part_bytes}" if last else f"exactly {part_bytes}"
        raise ApiError(
            409,
            "PART_SIZE",
            f"Part {part} of {parts} must be {rule} bytes; it was {size}.",
            part=part,
            parts=parts,
            part_bytes=part_bytes,
            got_bytes=size,
        )


def _job_state(job: dict[str, Any] | None, parts: int) -> str:
    """'take' (the job receives parts as it is), 'admit' (it must be created or re-opened
    within the quotas) or 'done'; 409 if it is busy or being sent in another number of parts."""
    if job is None or job["status"] in ("failed", "expired"):  # a new part re-opens a failed file
        return "admit"
    if job["status"] == "done":
        return "done"
    if job["status"] in _BUSY:
        raise ApiError(
            409,
            "JOB_BUSY",
            f"This file is already {job['status']}; wait for its job.",
            job_status=job["status"],
        )
    if job["parts"] != parts:
        raise ApiError(
            409,
            "PARTS_MISMATCH",
            f"This file is being sent in {job['parts']} parts, not {parts}.",
            expected_parts=job["parts"],
            parts=parts,
        )
    return "take"


async def _find_job(conn: db.Connection, push: dict[str, Any], sha1: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT * FROM push_jobs WHERE push_row_id = %s AND sha1 = %s FOR UPDATE", (push["id"], sha1)
    )
    return await cur.fetchone()


async def _admit_job(push: dict[str, Any], sha1: str, path: str, parts: int) -> dict[str, Any] | None:
    """The file's job, ready to take parts (None once the file is delivered). A new or
    re-opened job is admitted under the customer's lock, within the staging quotas, before
    the part's bytes are read: a refusal writes nothing."""
    job = await db.fetch_one(
        "SELECT * FROM push_jobs WHERE push_row_id = %s AND sha1 = %s", (push["id"], sha1)
    )
    state = _job_state(job, parts)
    if state != "admit":
        return job if state == "take" else None
    async with db.connection() as conn, conn.transaction():
        await limits.lock_customer(conn, push["customer_id"])
        job = await _find_job(conn, push, sha1)
        state = _job_state(job, parts)  # another request may have admitted it meanwhile
        if state != "admit":
            return job if state == "take" else None
        await staging.check_room(conn, push, parts, job["id"] if job else None)
        if job is None:
            cur = await conn.execute(
                "INSERT INTO push_jobs (push_row_id, customer_id, sha1, path, parts) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING *",
                (push["id"], push["customer_id"], sha1, path, parts),
            )
            return await cur.fetchone()
        if job["parts"] != parts:
            await conn.execute("DELETE FROM push_parts WHERE job_id = %s", (job["id"],))
        await staging.record_received(conn, job["id"])  # an expired job's kept counts are void
        cur = await conn.execute(
            "UPDATE push_jobs SET status = 'receiving', parts = %s, attempts = 0, last_error = NULL, "
            "last_error_code = NULL, updated_at = now() WHERE id = %s RETURNING *",
            (parts, job["id"]),
        )
        return await cur.fetchone()


async def _stage(
    push: dict[str, Any], sha1: str, parts: int, part: int, data: bytes, part_sha1: str
) -> int | None:
    """Stage the part in the file's job (capped customers: within the cap); the parts received
    so far, or None if the file was delivered meanwhile."""
    async with db.connection() as conn, conn.transaction():
        capped = (await billing.plan_for(conn, push["customer_id"])).monthly_cap_cents is not None
        if capped:
            await limits.lock_customer(conn, push["customer_id"])
        job = await _find_job(conn, push, sha1)
        state = _job_state(job, parts)
        if state == "done":
            return None
        if state == "admit":  # failed or expired since it was admitted: send the part again
            raise ApiError(
                409, "JOB_BUSY", "This file's job changed while the part arrived; send it again.", sha1=sha1
            )
        assert job is not None  # a job taking parts (_job_state)
        if capped:
            extra = len(data) - await staging.previous_size(conn, job["id"], part)
            await billing.check_cap(conn, push["customer_id"], extra_bytes=max(0, extra))
        await staging.put_part(conn, job["id"], part, data, part_sha1)
        return await staging.record_received(conn, job["id"])


async def upload_chunk(ctx: Ctx) -> dict[str, Any]:
    """PUT ?push_id=&sha1=&part=&parts= (&path=) with one part as the body."""
    push = await _open_push(ctx, ctx.query.get("push_id"))
    sha1 = check_sha1(ctx.query.get("sha1"), "sha1")
    parts = params.int_param(ctx, "parts", required=True, minimum=1)
    part = params.int_param(ctx, "part", required=True, minimum=0)
    if parts > MAX_PARTS:
        raise ApiError(400, "INVALID_INPUT", f"A file may have at most {MAX_PARTS} parts.", field="parts")
    if part >= parts:
        raise ApiError(400, "INVALID_INPUT", f"part must be from 0 to {parts - 1}.", field="part")
    staging.check_file_size(parts)
    path = await _target(push, ctx.query.get("path"), sha1)
    _require_required(push, sha1)
    if await delivery.is_done(push["id"], sha1):
        return _skipped(push, sha1, part=part)
    job = await _admit_job(push, sha1, path, parts)
    if job is None:
        return _skipped(push, sha1, part=part)
    data = await _part_body(ctx)
    _check_part_size(part, parts, len(data))
    part_sha1 = _sha1(data)
    if (claimed := _header_sha1(ctx, required=False)) and claimed != part_sha1:
        raise ApiError(
            400,
            "PART_SHA1_MISMATCH",
            f"Part {part} arrived damaged: its SHA-1 is not x-content-sha1.",
            part=part,
            expected=claimed,
            got=part_sha1,
        )
    received = await _stage(push, sha1, parts, part, data, part_sha1)
    if received is None:
        return _skipped(push, sha1, part=part)
    return {
        "push_id": push["push_id"],
        "sha1": sha1,
        "part": part,
        "parts": parts,
        "bytes": len(data),
        "received_parts": received,
        "job_id": job["id"],
    }


async def _queue(
    conn: db.Connection, ctx: Ctx, push: dict[str, Any], sha1: str, parts: int
) -> dict[str, Any]:
    """Check the job's parts are all there and queue it (a queued or running job is left be)."""
    cur = await conn.execute(
        "SELECT * FROM push_jobs WHERE push_row_id = %s AND sha1 = %s FOR UPDATE", (push["id"], sha1)
    )
    job = await cur.fetchone()
    if job is None:
        raise ApiError(
            404, "JOB_NOT_FOUND", "No parts of this file were received; send them first.", sha1=sha1
        )
    if job["status"] in ("done", *_BUSY):
        return job
    if job["parts"] != parts:
        raise ApiError(
            409,
            "PARTS_MISMATCH",
            f"This file is being sent in {job['parts']} parts, not {parts}.",
            expected_parts=job["parts"],
            parts=parts,
        )
    cur = await conn.execute("SELECT part FROM push_parts WHERE job_id = %s ORDER BY part", (job["id"],))
    received = {row["part"] for row in await cur.fetchall()}
    if missing := sorted(set(range(parts)) - received):
        raise ApiError(
            409,
            "PARTS_INCOMPLETE",
            f"{len(missing)} of {parts} parts are missing.",
            expected_parts=parts,
            received_parts=len(received),
            missing_parts=missing[:100],
        )
    cur = await conn.execute(
        "UPDATE push_jobs SET status = 'queued', next_attempt_at = now(), attempts = 0, last_error = NULL, "
        "last_error_code = NULL, updated_at = now() WHERE id = %s RETURNING *",
        (job["id"],),
    )
    await audit.record(
        conn,
        ctx.actor or "key",
        "push.file_queue",
        f"push:{push['push_id']}",
        {"sha1": sha1, "parts": parts, "job_id": job["id"]},
    )
    return await cur.fetchone()  # type: ignore[return-value]


async def upload_complete(ctx: Ctx) -> Response:
    """POST {push_id, sha1, parts}: 200 once delivered, 409 JOB_FAILED with the reason, or
    202 while the job waits for a retry (poll kaixupush-file-status)."""
    body = await ctx.json_object()
    fields.reject_unknown(body, ("push_id", "sha1", "parts"))
    push = await _open_push(ctx, body.get("push_id"))
    sha1 = check_sha1(body.get("sha1"), "sha1")
    parts = fields.int_field(body, "parts", minimum=1, maximum=MAX_PARTS)
    staging.check_file_size(parts)
    async with limits.busy(ctx.customer):
        return await _complete_job(ctx, push, sha1, parts)


async def _complete_job(ctx: Ctx, push: dict[str, Any], sha1: str, parts: int) -> Response:
    """Queue the file's job and run it inline (bounded by KAIXUPUSH_INLINE_S)."""
    async with db.connection() as conn, conn.transaction():
        job = await _queue(conn, ctx, push, sha1, parts)
    if job["status"] != "done":
        await jobs.run_now(job["id"], budget_s=config.settings().kaixupush_inline_s, actor=ctx.actor or "key")
    job = await db.fetch_row("SELECT * FROM push_jobs WHERE id = %s", (job["id"],))
    answer = {
        "push_id": push["push_id"],
        "sha1": sha1,
        "job_id": job["id"],
        "status": job["status"],
        "attempts": job["attempts"],
    }
    if job["status"] == "done":
        return JSONResponse({**answer, "bytes": job["bytes"]}, status_code=200)
    if job["status"] == "failed":
        raise ApiError(
            409,
            "JOB_FAILED",
            f"The file could not be delivered: {job['last_error']}",
            **{name: value for name, value in answer.items() if name != "status"},
            job_status="failed",
            reason=job["last_error"],
            reason_code=job["last_error_code"],
        )
    return JSONResponse(
        {
            **answer,
            "queued": True,
            "next_attempt_at": job["next_attempt_at"],
            "last_error": job["last_error"],
            "last_error_code": job["last_error_code"],
        },
        status_code=202,
    )


# ----------------------------------------------------------------------------- status


def _file_item(row: dict[str, Any]) -> dict[str, Any]:
    job = None
    if row["job_id"] is not None:
        job = {
            name: row[name]
            for name in (
                "job_id",
                "path",
                "parts",
                "received_parts",
                "staged_bytes",
                "status",
                "attempts",
                "last_error",
                "last_error_code",
                "next_attempt_at",
                "updated_at",
            )
        }
    uploaded = row["file_status"] == "done"
    return {
        "sha1": row["sha1"],
        "uploaded": uploaded,
        "bytes": row["bytes"] if uploaded else None,
        "mode": row["mode"] if uploaded else None,
        "job": job,
    }


async def file_status(ctx: Ctx) -> dict[str, Any]:
    """GET ?push_id= (&sha1=): per required digest, uploaded or not, and its job's progress."""
    push = await pushes.load(ctx.customer, ctx.query.get("push_id"))
    only = ctx.query.get("sha1")
    digests = push["required"] if only is None else [check_sha1(only, "sha1")]
    rows = await db.fetch_all(_FILE_STATUS, {"digests": digests, "push": push["id"]})
    items = [_file_item(row) for row in rows]
    if only is not None:
        if only not in push["required"]:
            raise ApiError(
                404, "NOT_REQUIRED", "Netlify did not ask for this digest in this push.", sha1=only
            )
        return {"item": items[0]}
    uploaded = sum(item["uploaded"] for item in items)
    return {
        "items": items,
        "next_cursor": None,
        "summary": {"required": len(items), "uploaded": uploaded, "missing": len(items) - uploaded},
    }
