"""Where parts of a chunked upload wait until their file is assembled.

Every part has a ``push_parts`` row (size, sha1, where it is). Its bytes live in that row
(``bytea``, the default: nothing else to run) or, when ``KAIXUPUSH_S3_BUCKET`` is set, in S3
under ``KAIXUPUSH_S3_PREFIX<job>/<part>`` (``KAIXUPUSH_S3_ENDPOINT_URL`` points boto3 at an
S3-compatible server; credentials come the usual AWS way). Each part remembers where it
went, so changing the setting never loses parts already staged. Parts are read back one at
a time, so assembling a file never holds more than one part in memory.

What may be staged is bounded whether or not the customer has a push cap. A file's job is
admitted (at its first part) with its whole size reserved: ``parts x KAIXUPUSH_PART_BYTES``,
which the part rules make an upper bound of what it can stage. Only digests Netlify asked
for get a job, a file is at most ``KAIXUPUSH_MAX_FILE_BYTES``, and the reservations of a
push's open jobs (those that hold or will hold parts: receiving, queued, running,
retry_wait, failed) stay within ``KAIXUPUSH_PUSH_STAGING_MAX_BYTES``, a customer's within
``KAIXUPUSH_CUSTOMER_STAGING_MAX_BYTES``, and a push has at most
``KAIXUPUSH_OPEN_JOBS_PER_PUSH`` open jobs (:func:`check_room`). Reserving the whole file up
front means an admitted file can always be completed: files never wait for each other's
room. Parts live at most ``KAIXUPUSH_RETENTION_H`` after their push was created (``jobs``).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from shared import config, db
from shared.errors import ApiError

_S3_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
ROOM_RETRY_S = 10
# Open jobs of the customer other than the one being (re)admitted; the status list is the
# predicate of the partial index push_jobs_customer_open.
_RESERVED = """
SELECT coalesce(sum(parts::bigint) FILTER (WHERE push_row_id = %(push)s), 0)::bigint AS push_parts,
       coalesce(sum(parts::bigint), 0)::bigint AS customer_parts,
       count(*) FILTER (WHERE push_row_id = %(push)s) AS push_jobs
FROM push_jobs
WHERE customer_id = %(customer)s AND id <> %(job)s
  AND status IN ('receiving', 'queued', 'running', 'retry_wait', 'failed')
"""

# What the jobs received, taken from their staged rows just before these are deleted.
_KEEP_COUNTS = """
UPDATE push_jobs j SET received_parts = s.n, staged_bytes = s.bytes
FROM (SELECT job_id, count(*)::int AS n, sum(size)::bigint AS bytes
      FROM push_parts WHERE job_id = ANY(%s) GROUP BY job_id) s
WHERE j.id = s.job_id
"""


class MissingPart(Exception):
    """A part the job needs is not staged (expired, or its S3 object is gone)."""


def file_too_large(limit: int, declared: int, reason: str) -> ApiError:
    return ApiError(
        413,
        "FILE_TOO_LARGE",
        f"This file would be at least {declared} bytes; {reason} is {limit} bytes.",
        max_file_bytes=limit,
        declared_bytes=declared,
    )


def check_file_size(parts: int) -> int:
    """The most a file of ``parts`` parts can stage; 413 FILE_TOO_LARGE if even its smallest
    possible size passes KAIXUPUSH_MAX_FILE_BYTES (refused before any byte is read)."""
    cfg = config.settings()
    smallest = (parts - 1) * cfg.kaixupush_part_bytes + 1
    if smallest > cfg.kaixupush_max_file_bytes:
        raise file_too_large(cfg.kaixupush_max_file_bytes, smallest, "the largest file allowed")
    return parts * cfg.kaixupush_part_bytes


def _no_room(scope: str, limit: int, reserved: int, needed: int) -> ApiError:
    return ApiError(
        429,
        "STAGING_QUOTA",
        f"The {scope}'s files being received already hold {reserved} of its {limit} bytes of "
        f"staging; this file needs {needed} more. Retry once some files are delivered.",
        headers={"retry-after": str(ROOM_RETRY_S)},
        scope=scope,
        limit_bytes=limit,
        reserved_bytes=reserved,
        needed_bytes=needed,
        retry_after_s=ROOM_RETRY_S,
    )


async def check_room(conn: db.Connection, push: dict[str, Any], parts: int, job_id: int | None) -> None:
    """Whether a file of ``parts`` parts may be admitted to the push (``job_id``: the job being
    re-opened, whose old reservation is replaced). The caller holds the customer's lock."""
    cfg = config.settings()
    needed = check_file_size(parts)
    push_cap, customer_cap = cfg.kaixupush_push_staging_max_bytes, cfg.kaixupush_customer_staging_max_bytes
    if needed > min(push_cap, customer_cap):
        raise file_too_large(min(push_cap, customer_cap), needed, "the staging quota")
    cur = await conn.execute(
        _RESERVED, {"push": push["id"], "customer": push["customer_id"], "job": job_id or 0}
    )
    held = await db.one(cur)
    if held["push_jobs"] >= cfg.kaixupush_open_jobs_per_push:
        raise ApiError(
            429,
            "PUSH_JOBS_LIMIT",
            f"At most {cfg.kaixupush_open_jobs_per_push} files of a push may be in transfer at once; "
            "finish one first.",
            headers={"retry-after": str(ROOM_RETRY_S)},
            limit=cfg.kaixupush_open_jobs_per_push,
            retry_after_s=ROOM_RETRY_S,
        )
    for scope, cap, reserved_parts in (
        ("push", push_cap, held["push_parts"]),
        ("customer", customer_cap, held["customer_parts"]),
    ):
        reserved = reserved_parts * cfg.kaixupush_part_bytes
        if reserved + needed > cap:
            raise _no_room(scope, cap, reserved, needed)


@functools.lru_cache(maxsize=4)
def _s3_client(endpoint_url: str) -> Any:
    import boto3  # only deployments that stage in S3 pay for importing it

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _s3() -> Any:
    return _s3_client(config.settings().kaixupush_s3_endpoint_url)


def _key(job_id: int, part: int) -> str:
    return f"{config.settings().kaixupush_s3_prefix}{job_id}/{part:05d}"


async def previous_size(conn: db.Connection, job_id: int, part: int) -> int:
    cur = await conn.execute("SELECT size FROM push_parts WHERE job_id = %s AND part = %s", (job_id, part))
    row = await cur.fetchone()
    return row["size"] if row else 0


async def put_part(conn: db.Connection, job_id: int, part: int, data: bytes, sha1: str) -> None:
    """Stage (or replace) one part, in the caller's transaction for the row."""
    bucket = config.settings().kaixupush_s3_bucket
    if bucket:
        await asyncio.to_thread(_s3().put_object, Bucket=bucket, Key=_key(job_id, part), Body=data)
    await conn.execute(
        "INSERT INTO push_parts (job_id, part, size, sha1, storage, data) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (job_id, part) DO UPDATE SET size = excluded.size, sha1 = excluded.sha1, "
        "storage = excluded.storage, data = excluded.data, updated_at = now()",
        (job_id, part, len(data), sha1, "s3" if bucket else "pg", None if bucket else data),
    )


async def record_received(conn: db.Connection, job_id: int) -> int:
    """Keep the job's count of staged parts and their bytes on the job itself (the admin list
    shows them after the parts are deleted); the parts received so far."""
    cur = await conn.execute(
        "UPDATE push_jobs j SET received_parts = s.n, staged_bytes = s.bytes, updated_at = now() "
        "FROM (SELECT count(*)::int AS n, coalesce(sum(size), 0)::bigint AS bytes "
        "      FROM push_parts WHERE job_id = %(job)s) s "
        "WHERE j.id = %(job)s RETURNING j.received_parts",
        {"job": job_id},
    )
    return int((await db.one(cur))["received_parts"])


async def read_part(job_id: int, part: int) -> bytes:
    row = await db.fetch_one(
        "SELECT storage, data FROM push_parts WHERE job_id = %s AND part = %s", (job_id, part)
    )
    if row is None:
        raise MissingPart(f"part {part} is not staged")
    if row["storage"] == "pg":
        return bytes(row["data"])
    try:
        answer = await asyncio.to_thread(
            _s3().get_object, Bucket=config.settings().kaixupush_s3_bucket, Key=_key(job_id, part)
        )
        return await asyncio.to_thread(answer["Body"].read)
    except Exception as exc:  # botocore's errors are generated classes; any failure means "gone"
        raise MissingPart(f"part {part} could not be read from S3 ({type(exc).__name__})") from None


async def delete_parts(job_ids: list[int]) -> int:
    """Forget the staged parts of these jobs (S3 objects first, then the rows)."""
    if not job_ids:
        return 0
    rows = await db.fetch_all(
        "SELECT job_id, part FROM push_parts WHERE job_id = ANY(%s) AND storage = 's3'", (job_ids,)
    )
    bucket = config.settings().kaixupush_s3_bucket
    keys = [{"Key": _key(row["job_id"], row["part"])} for row in rows]
    for start in range(0, len(keys) if bucket else 0, _S3_DELETE_BATCH):
        batch = {"Objects": keys[start : start + _S3_DELETE_BATCH], "Quiet": True}
        await asyncio.to_thread(_s3().delete_objects, Bucket=bucket, Delete=batch)
    await db.execute(_KEEP_COUNTS, (job_ids,))
    return await db.execute("DELETE FROM push_parts WHERE job_id = ANY(%s)", (job_ids,))
